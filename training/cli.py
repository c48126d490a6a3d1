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

app = typer.Typer(
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

for _name, _sub in [
    ("data", data_app),
    ("features", features_app),
    ("backtest", backtest_app),
    ("train", train_app),
    ("score", score_app),
    ("tune", tune_app),
    ("simulate", simulate_app),
    ("experiment", experiment_app),
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


if __name__ == "__main__":  # pragma: no cover - entry point
    app()
