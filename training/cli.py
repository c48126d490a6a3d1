"""The ``dealerml`` command line.

Verb-first groups (``backtest demand``, ``train churn``, ``score dealers`` ...). Each
capability registers its commands on these groups from its own module under
``training/commands/``; heavy libraries are imported inside the command functions so
``dealerml --help`` stays fast.
"""

from __future__ import annotations

import typer

__all__ = ["app"]

_SETTINGS = {"help_option_names": ["-h", "--help"]}

# click's exception classes as typer raises them (typer 0.29 vendors its own copy of click, so
# ``import click`` would name other classes)
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

# pydantic's error types (typer parses option values with it) in words: what the option expects
_EXPECTED = {
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number, not a fraction",
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
    "bool_parsing": "true or false", "date_parsing": "a date like 2024-03-31",
    "date_from_datetime_parsing": "a date like 2024-03-31", "datetime_parsing": "a date like 2024-03-31",
    "datetime_from_date_parsing": "a date like 2024-03-31",
}
_BOUNDS = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
           "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}


def expected_value(err: Exception) -> tuple[object, str] | None:
    """(the value given, what the option expected in words: 'a whole number', 'at most 730') for an
    option value typer's parsing refused (a pydantic ValidationError behind the BadParameter); None
    for other errors. Also used by ``experiment run``'s step check, so both say it alike."""
    cause = err.__cause__
    if getattr(err, "param", None) is None or not hasattr(cause, "errors"):
        return None
    first = (cause.errors() or [{}])[0]
    kind, info = first.get("type", ""), first.get("ctx") or {}
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        want = f"{words} {info.get(key)}"
    elif kind in _EXPECTED:
        want = _EXPECTED[kind]
    elif kind in ("literal_error", "enum"):
        want = f"one of {info.get('expected')}"
    else:
        want = str(first.get("msg", err)).replace("Input should be ", "").replace("Value error, ", "")
    return first.get("input"), want


def usage_error_text(err: Exception) -> str:
    """A usage error (a bad option value, an unknown option, a missing argument) as one plain line,
    ``error: --horizon 'abc': expected a whole number``, instead of typer's boxed panel, whose words
    ('Input should be a valid integer') named no value and which CI logs kept as box drawing."""
    param, ctx = getattr(err, "param", None), getattr(err, "ctx", None)
    found = expected_value(err)
    if found is not None:
        given, want = found
        name = max(param.opts, key=len) if getattr(param, "param_type_name", "") == "option" else param.human_readable_name
        text = f"{name} {given!r}: expected {want}"
    else:
        text = err.format_message()  # click's own words: "No such option: --bogus", "Invalid value for '--x': ..."
        text = (text[:1].lower() + text[1:] if text[1:2].islower() else text).rstrip(".")
    hint = ""
    if ctx is not None:
        what = "commands" if isinstance(ctx.command, typer.core.TyperGroup) else "options"
        hint = f" ({' '.join(['dealerml', *ctx.command_path.split()[1:], '--help'])} lists the {what})"
    return f"error: {text}{hint}"


class _PlainUsageErrors(typer.core.TyperGroup):
    """The top group: a usage error anywhere below it (parsing a subcommand's options, or raised by a
    command) is said in one plain line on stderr, exit 2, as the commands' own errors are
    (training.commands._common.fail); typer drew a box that CI logs keep as box-drawing characters."""

    def make_context(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with _plain_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        with _plain_usage_errors():
            return super().invoke(ctx)


class _plain_usage_errors:  # noqa: N801 - a context manager used like a function
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, tb) -> bool:  # type: ignore[no-untyped-def]
        if err is None or not isinstance(err, _UsageError) or type(err).__name__ == "NoArgsIsHelpError":
            return False  # the help that no_args_is_help printed is no error
        typer.secho(usage_error_text(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=err.exit_code) from None


app = typer.Typer(
    cls=_PlainUsageErrors,
    name="dealerml",
    help="Demand forecasts, safety stock, churn scores and dealer scores from one order book.",
    no_args_is_help=True,
    context_settings=_SETTINGS,
    pretty_exceptions_enable=False,
)

data_app = typer.Typer(help="Generate the synthetic dealer network; validate an order book.", no_args_is_help=True)
features_app = typer.Typer(help="Build as-of feature tables.", no_args_is_help=True)
backtest_app = typer.Typer(help="Rolling-origin / time-ordered backtests with baselines.", no_args_is_help=True)
train_app = typer.Typer(help="Train a model, log it to MLflow and register it.", no_args_is_help=True)
score_app = typer.Typer(help="Batch scores for the CRM and sales tools.", no_args_is_help=True)
tune_app = typer.Typer(help="Optuna tuning on the time-ordered backtest.", no_args_is_help=True)
simulate_app = typer.Typer(help="Replay simulations over a historical holdout.", no_args_is_help=True)
experiment_app = typer.Typer(help="Run experiment configs from experiments/*.yaml.", no_args_is_help=True)
monitor_app = typer.Typer(help="How registered models did on what has happened since they were trained.",
                          no_args_is_help=True)

for _name, _sub in [
    ("data", data_app),
    ("features", features_app),
    ("backtest", backtest_app),
    ("train", train_app),
    ("score", score_app),
    ("tune", tune_app),
    ("simulate", simulate_app),
    ("experiment", experiment_app),
    ("monitor", monitor_app),
]:
    app.add_typer(_sub, name=_name, context_settings=_SETTINGS)


def _register_commands() -> None:
    """Import the command modules; each decorates the groups above."""
    import importlib
    import pkgutil

    from training import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"training.commands.{info.name}")


_register_commands()


if __name__ == "__main__":  # `python -m training.cli` (tests/test_messages_s24.py runs it)
    # run as __main__, this file is a second module: the command modules register on `training.cli`'s app
    from training.cli import app as _registered

    _registered()
