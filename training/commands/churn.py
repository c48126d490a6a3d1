"""Churn commands: ``backtest churn``, ``train churn``, ``score churn`` and ``alerts``.

Heavy libraries (pandas, lightgbm, mlflow, matplotlib) are imported inside the functions.

What ``train churn`` writes besides the run's metrics (the ``--save-to`` check and staging, the MLflow
signature example, the plots) is in :mod:`training.commands._churn_train_outputs`; this module
re-exports those names (churn tuning and the experiment runner import them from here).
"""

from __future__ import annotations

from pathlib import Path

import typer

from training.cli import app, backtest_app, score_app, train_app
from training.commands._churn_train_outputs import (  # also re-exported: import them from here
    _check_save_to,
    _plots,
    _signature_example,
    _stage_model,
)
from training.commands._common import (
    check_out_path,
    fail,
    note_model_environment,
    registered_text,
    write_json,
)
from training.errors import ConfigError, DataError, DealermlError

__all__: list[str] = []

REGISTERED_NAME = "dealerml-churn"


def _load(config: Path, horizon_days: int | None = None):
    from training.churn_backtest import ChurnSettings, churn_settings
    from training.config import load_config
    from training.data import load_order_book

    cfg = load_config(config)
    s = churn_settings(cfg)
    if horizon_days is not None:
        s = ChurnSettings.model_validate({**s.model_dump(), "horizon_days": horizon_days})
    book = load_order_book(cfg)
    return cfg, s, book


def _last_labelled_cutoff(book, horizon_days: int):
    import pandas as pd

    last = pd.Timestamp(book.order_lines["order_date"].max()).normalize()
    return last + pd.Timedelta(days=1) - pd.Timedelta(days=horizon_days)


def _print_report(report: dict, extras: dict | None = None, cutoffs: dict | None = None,
                  lookback_days: int | None = None) -> None:
    if cutoffs:  # what the figures below were measured on: the test window and what came before it
        import pandas as pd

        test, h = pd.Timestamp(cutoffs["test"]), int(cutoffs["horizon_days"])
        end = (test + pd.Timedelta(days=h)).date()
        who = f"accounts with an order in the {lookback_days} days before it" if lookback_days else "active accounts"
        typer.echo(f"test cutoff {test.date()}: {who}; churned = no order in [{test.date()}, {end}) ({h} days)")
        train = ", ".join(str(pd.Timestamp(c).date()) for c in cutoffs.get("train", []))
        th = cutoffs.get("train_horizon_days", h)
        typer.echo(f"  trained on cutoffs {train} ({th}-day labels), calibrated at "
                   f"{pd.Timestamp(cutoffs['calibration']).date()}; every label window ends by the test cutoff")
    typer.echo(f"base rate (churned share of the test population): {report['base_rate']:.3f}")
    typer.echo(f"{'model':<12}{'auc':>8}{'pr_auc':>8}{'brier':>8}{'ece':>8}{'lift10':>8}")
    for m, v in report["metrics"].items():
        cells = "".join(f"{(v[k] if v[k] is not None else float('nan')):>8.3f}"
                        for k in ("auc", "pr_auc", "brier", "ece", "lift_top10"))
        typer.echo(f"{m:<12}{cells}")
    if extras:
        typer.echo(f"n test {extras.get('n_test')}, n train rows {extras.get('n_train')}, n calibration {extras.get('n_calibration')}")


def _as_data_error(exc: ValueError) -> DataError:
    return DataError(str(exc))


# --------------------------------------------------------------------- backtest
@backtest_app.command("churn")
def backtest_churn(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml)."),  # noqa: B008
    cutoff: str | None = typer.Option(None, "--cutoff", help="Test cutoff YYYY-MM-DD (default: the last cutoff whose label window the data cover)."),
    horizon_days: int | None = typer.Option(None, "--horizon-days", min=1, max=730, help="H: churned = no order in [cutoff, cutoff + H) (default: config or 90)."),
    json_out: Path = typer.Option(..., "--json", help="Where to write the report (JSON)."),  # noqa: B008
    threads: int = typer.Option(2, "--threads", min=1, help="LightGBM threads."),
) -> None:
    """Time-ordered backtest: LightGBM churn model vs the recency rule and BG/NBD."""
    try:
        from training.churn_backtest import run_backtest
        from training.data import parse_cutoff

        cut = parse_cutoff(cutoff) if cutoff else None  # a bad --cutoff fails before the data load
        check_out_path(json_out, "--json")  # an unwritable --json too, not after the backtest
        cfg, s, book = _load(config, horizon_days)
        if cut is None:
            cut = _last_labelled_cutoff(book, s.horizon_days)
        try:
            res = run_backtest(book, s, cut, seed=cfg.seed, num_threads=threads)
        except ValueError as exc:
            raise _as_data_error(exc) from None
        report = dict(res.report)
        write_json(report, json_out)
        _print_report(report, res.extras, res.cutoffs, s.lookback_days)
        typer.echo(f"wrote {json_out}")
    except DealermlError as err:
        fail(err)


# ------------------------------------------------------------------------ train
@train_app.command("churn")
def train_churn(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml)."),  # noqa: B008
    cutoff: str | None = typer.Option(None, "--cutoff", help="Backtest test cutoff (default: the last one the data label)."),
    threads: int = typer.Option(2, "--threads", min=1, help="LightGBM threads."),
    register: bool = typer.Option(True, "--register/--no-register", help="Register as dealerml-churn (alias challenger)."),
    save_to: Path | None = typer.Option(None, "--save-to", help="Also save the final model to this folder."),  # noqa: B008
    json_out: Path | None = typer.Option(None, "--json", help="Also write the backtest report here (the JSON of "  # noqa: B008
                                         "`backtest churn` at the same cutoff), so one run gives both."),
) -> None:
    """Backtest, then fit the serving model on the latest labelled windows; log to MLflow and register."""
    try:
        import pandas as pd

        from training.commands._common import (
            check_out_path,
            check_separate_outputs,
            commit_files,
            json_writer,
            stage_files,
            staged_outputs,
        )

        if json_out is not None:
            check_out_path(json_out, "--json")  # before any work
        if save_to is not None:
            _check_save_to(save_to)
        check_separate_outputs({"--save-to": save_to, "--json": json_out})

        from training import tracking
        from training.churn_backtest import (
            churn_cutoffs,
            fit_churn,
            run_backtest,
            score_accounts,
        )
        from training.data import parse_cutoff

        cut = parse_cutoff(cutoff) if cutoff else None  # a bad --cutoff fails before the data load
        tracking.check_store()  # the run is logged after the backtest and the fit: an unreachable store first
        cfg, s, book = _load(config)
        if cut is None:
            cut = _last_labelled_cutoff(book, s.horizon_days)
        try:
            res = run_backtest(book, s, cut, seed=cfg.seed, num_threads=threads)
            # serving model: calibrated on the backtest's test window, trained before it
            prod_cuts = churn_cutoffs(cut + pd.Timedelta(days=s.horizon_days), s,
                                      first_date=book.order_lines["order_date"].min(),
                                      last_date=book.order_lines["order_date"].max())
            model, train, cal = fit_churn(book, s, prod_cuts, seed=cfg.seed, num_threads=threads)
        except ValueError as exc:
            raise _as_data_error(exc) from None
        model.num_threads = 1  # online scoring
        _print_report(res.report, res.extras, res.cutoffs, s.lookback_days)
        scored = score_accounts(book, res.model, s, res.cutoffs["test"], model_version="backtest",
                                population=res.test)
        scored["churned"] = res.test["churned"].to_numpy()
        with staged_outputs() as staged, tracking.training_run("churn", config=cfg, config_path=config, book=book,
                                                                seed=cfg.seed) as run:
            run.log_params({
                **{f"model.{k}": v for k, v in model.get_params().items()},
                "horizon_days": s.horizon_days, "lookback_days": s.lookback_days,
                "backtest.test_cutoff": str(res.cutoffs["test"].date()),
                "backtest.calibration_cutoff": str(res.cutoffs["calibration"].date()),
                "backtest.train_cutoffs": ",".join(str(c.date()) for c in res.cutoffs["train"]),
                "final.calibration_cutoff": str(prod_cuts["calibration"].date()),
                "final.train_cutoffs": ",".join(str(c.date()) for c in prod_cuts["train"]),
            })
            run.log_metrics({"base_rate": res.report["base_rate"], **res.report["metrics"]})
            for col, groups in res.report["by_slice"].items():
                for val, g in groups.items():
                    run.log_metrics({"base_rate": g["base_rate"], **g["metrics"]}, slice={col: val})
            run.log_dict(res.report, "backtest/churn_backtest.json")
            for path, fig in _plots(res, scored).items():
                run.log_figure(fig, path)
            example = _signature_example(cal[model.feature_names_].head(5))
            run.log_model(model, input_example=example, predict_method="predict_proba", metadata={
                "training_window": {"train_cutoffs": [str(c.date()) for c in prod_cuts["train"]],
                                    "calibration_cutoff": str(prod_cuts["calibration"].date()),
                                    "horizon_days": s.horizon_days, "lookback_days": s.lookback_days},
                "backtest_metrics": res.report["metrics"],
            })
            if register:
                run.register(REGISTERED_NAME, alias="challenger")
            # the report is written inside the run (a failed write registers nothing) and put in
            # place after it (a failed run leaves no report behind)
            if json_out is not None:
                staged += stage_files([(json_out, json_writer(dict(res.report)))])
            if save_to is not None:  # likewise: a model that cannot be saved registers nothing
                staged += _stage_model(model, save_to)
        commit_files(staged)  # the report and the saved model, together
        if json_out is not None:
            typer.echo(f"wrote {json_out}")
        if save_to is not None:
            typer.echo(f"saved the model to {save_to}")
        typer.echo(f"run {run.run_id}; {registered_text(run.registered, config=config)}; see: {tracking.ui_command()}")
    except DealermlError as err:
        fail(err)


# ------------------------------------------------------------------------ score
def _resolve_model(model_path: Path | None, alias: str | None):
    """(model, version string): a saved folder, or the registry's champion / challenger."""
    from models.churn import ChurnModel

    if model_path is not None:
        try:
            return ChurnModel.load(model_path), f"file:{Path(model_path).resolve()}"
        except (FileNotFoundError, ValueError) as exc:  # no file, or a damaged one
            raise ConfigError(f"--model {exc}" if isinstance(exc, ValueError) else str(exc)) from None
    from training import tracking
    from training.commands.experiments import require_store

    # a home without a store: refused, not opened (that created an empty one, then 'no champion')
    require_store("no churn model to score with", "pass --model DIR (a folder written by "
                  "`dealerml train churn --save-to DIR`)")
    aliases = [alias] if alias else ["champion", "challenger"]
    errors: dict[str, str] = {}
    for a in aliases:
        try:
            model, info = tracking.load_model(REGISTERED_NAME, a)
        except ConfigError as exc:
            errors[a] = str(exc)
            if not alias and "has alias" not in str(exc):
                break  # a champion that cannot be loaded is an error: the challenger is not served, so not scored with
            continue
        model.num_threads = 1
        note_model_environment(info)
        return model, f"{REGISTERED_NAME}/{info.version}"
    fix = "run `dealerml train churn --config FILE` or pass --model DIR"
    if alias:
        raise ConfigError(f"no churn model to score with: {errors[alias]}; {fix}")
    missing = [a for a, e in errors.items() if "has alias" in e]
    if len(missing) == len(aliases):
        raise ConfigError(
            f"no churn model to score with: {REGISTERED_NAME} has no 'champion' version (and no 'challenger' "
            f"to fall back to) in {tracking.shown_tracking_uri()}; {fix}"
        )
    detail = "; ".join(f"{a}: {e}" for a, e in errors.items() if a not in missing)
    instead = "" if alias or "challenger" in errors else " (the challenger is not used in its place)"
    raise ConfigError(f"no churn model to score with: {detail}{instead}; {fix}")


def _scores(config: Path, cutoff: str, model_path: Path | None, alias: str | None):
    from training.churn_backtest import (
        horizon_note,
        lookback_note,
        model_lookback_days,
        score_accounts,
    )
    from training.data import check_cutoff_in_book, parse_cutoff

    cut = parse_cutoff(cutoff)  # a malformed --cutoff fails before anything is read
    if model_path is not None and not (Path(model_path) / "churn_model.json").is_file():  # before the data load
        what = "is not a saved ChurnModel (no churn_model.json)" if Path(model_path).is_dir() else "does not exist"
        raise ConfigError(f"--model {model_path} {what}; expected a folder written by "
                          "`dealerml train churn --save-to DIR`")
    cfg, s, book = _load(config)
    # the cutoff against the book before the registry: a cutoff after the book's end is said as such
    # whatever the registry holds, and no model is loaded for it
    check_cutoff_in_book(book, cut)
    model, version = _resolve_model(model_path, alias)
    # scored on the population it was trained on (its own lookback_days), said when the config's differs
    # and its probabilities are over the horizon it was trained with, said likewise
    who = version if model_path is None else f"the model in {model_path}"
    for note in (lookback_note(model, s, cut, who), horizon_note(model, s, cut, who)):
        if note:
            typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
    try:
        scores = score_accounts(book, model, s, cut, model_version=version)
    except ValueError as exc:
        raise _as_data_error(exc) from None
    scores.attrs["not_scored"] = _not_scored_note(book, scores, cut, model_lookback_days(model, s))
    return scores, s


def _not_scored_note(book, scores, cut, lookback_days: int) -> str | None:
    """Which accounts the book knows that got no score, and why (the reasons ``/churn_scores``
    gives each under ``not_scored``), so a CRM can tell "left out" from "lost"."""
    import pandas as pd

    from training.churn_backtest import dropped_unknown_accounts, last_orders

    known = last_orders(book, cut)
    scored = set(scores["account_id"].astype(str))
    never = sorted(a for a, d in known.items() if a not in scored and d is None)
    lapsed = sorted(a for a, d in known.items() if a not in scored and d is not None)
    dropped = sorted(set(dropped_unknown_accounts(book)) - set(known))

    def eg(ids: list[str]) -> str:
        return f" (e.g. {', '.join(ids[:3])})"

    parts = []
    if lapsed:
        parts.append(f"{len(lapsed)} with no order in the {lookback_days} days before "
                     f"{pd.Timestamp(cut).date()}{eg(lapsed)}")
    if never:
        parts.append(f"{len(never)} of the accounts table with no order before it{eg(never)}")
    if dropped:
        parts.append(f"{len(dropped)} ids of the order lines that the accounts table lacks, dropped as "
                     f"unknown_account{eg(dropped)}")
    if not parts:
        return None
    return (f"not scored: {'; '.join(parts)}. POST /churn_scores names each under not_scored with its "
            "reason")


@score_app.command("churn")
def score_churn(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml) naming the data."),  # noqa: B008
    cutoff: str = typer.Option(..., "--cutoff", help="Score as of this date (features use rows before it)."),
    out: str = typer.Option(..., "--out", help="A table name (in --target), a .csv/.parquet file, or TARGET#table."),
    target: str | None = typer.Option(None, "--target", help="DuckDB/SQLite file or SQLAlchemy URL that a table --out goes in (default: $DEALERML_HOME/dealerml.duckdb)."),
    model_path: Path | None = typer.Option(None, "--model", help="A saved ChurnModel folder instead of the registry."),  # noqa: B008
    alias: str | None = typer.Option(None, "--alias", help="Registry alias (default: champion, else challenger)."),
) -> None:
    """Batch churn scores for the CRM; the table is replaced atomically."""
    try:
        from training.scores import describe_target, score_destination, write_table

        # a bad or unwritable --out / --target fails before the data load, named as the option it came from
        dest, table = score_destination(out, target, target_option="--target")
        scores, _ = _scores(config, cutoff, model_path, alias)
        note = scores.attrs.get("not_scored")
        write_table(_typed_for_table(scores), dest, table)
        counts = scores["tier"].value_counts().to_dict()
        typer.echo(f"wrote {len(scores)} scores to {describe_target(dest, table)} "
                   f"(high {counts.get('high', 0)}, medium {counts.get('medium', 0)}, low {counts.get('low', 0)}); "
                   f"model {scores['model_version'].iloc[0]}")
        if note:
            typer.echo(note)
    except DealermlError as err:
        fail(err)


def _typed_for_table(scores):
    """scored_at (UTC) and cutoff as timestamps, not text, like the dealer score table: a CRM
    filters them with date functions (``scored_at > now() - interval '1 day'`` in PostgreSQL)."""
    import pandas as pd

    out = scores.copy()
    out["scored_at"] = pd.to_datetime(out["scored_at"], utc=True).dt.tz_localize(None)
    out["cutoff"] = pd.to_datetime(out["cutoff"])
    return out


# ----------------------------------------------------------------------- alerts
@app.command("alerts")
def alerts(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml) naming the data."),  # noqa: B008
    cutoff: str = typer.Option(..., "--cutoff", help="Run date: score as of it and alert new high-risk crossings."),
    target: str | None = typer.Option(None, "--target", help="DuckDB/SQLite file or SQLAlchemy URL (default: the config's "
                                      "serving.alerts_target, where the service reads alerts, else $DEALERML_HOME/dealerml.duckdb)."),
    webhook: str | None = typer.Option(None, "--webhook", help="POST the new alerts, when there are any, as JSON "
                                       "{\"cutoff\": ..., \"alerts\": (the new rows of the alerts table)} to this URL before recording "
                                       "them, signed (X-Dealerml-Signature: sha256=HMAC of 'TIMESTAMP.DELIVERY.BODY') "
                                       "with the secret in $DEALERML_WEBHOOK_SECRET (unsigned without it), with "
                                       "X-Dealerml-Delivery, the same for every re-run of this cutoff. A timeout "
                                       "(10 s to connect or for each wait; an attempt in all at most "
                                       "$DEALERML_WEBHOOK_TIMEOUT_SECONDS, default 15 s), no connection, 429 or 5xx "
                                       "is retried twice, 1 s and 4 s later (or "
                                       "after the answer's Retry-After, up to 10 s); a redirect or another 4xx is not. "
                                       "No 2xx in the end: nothing is recorded and the command fails; run it again "
                                       "with the same --cutoff to retry. At least once: a receiver should "
                                       "de-duplicate on X-Dealerml-Delivery."),
    model_path: Path | None = typer.Option(None, "--model", help="A saved ChurnModel folder instead of the registry."),  # noqa: B008
    alias: str | None = typer.Option(None, "--alias", help="Registry alias (default: champion, else challenger)."),
) -> None:
    """Churn alerts: accounts that newly crossed into high risk since the last run (idempotent)."""
    try:
        from training.alerts import record_alerts
        from training.errors import hide_url_passwords
        from training.scores import DATABASE_FORMS, check_target, describe_target

        if webhook is not None:  # named with its credentials and query hidden
            import httpx

            from training.alerts import _hook_name

            if not webhook.lower().startswith(("http://", "https://")):
                raise ConfigError(f"--webhook {_hook_name(webhook)}: expected an http:// or https:// URL")
            try:  # a URL httpx cannot parse failed with a traceback after the scoring
                httpx.URL(webhook)
            except httpx.InvalidURL as exc:
                raise ConfigError(f"--webhook {_hook_name(webhook)}: not a valid URL ({exc})") from None
            from training.alerts import webhook_secret, webhook_timeout_seconds

            webhook_secret()  # set but empty: refused before the scoring
            webhook_timeout_seconds()  # a bad $DEALERML_WEBHOOK_TIMEOUT_SECONDS too
        from training.config import load_config

        given = "--target"  # how a refusal names the target: as the option, or the config key, it came from
        instead = ""  # how to name another target, when the one taken cannot be (a folder at its path)
        cfg = None  # read once, here or after the --target checks (a bad --target is named before the config)
        if target is None:  # where the service's /churn_alerts reads them
            from serving.settings import alerts_target, serving_settings

            cfg = load_config(config)
            target = alerts_target(cfg)
            keyed = serving_settings(cfg).alerts_target
            given = f"{cfg.config_path}: key 'serving.alerts_target'" if keyed else "the default alerts target"
            instead = ("set serving.alerts_target to another path, or give --target (e.g. --target alerts.duckdb)"
                       if keyed else "give --target (e.g. --target alerts.duckdb) or set serving.alerts_target in "
                       f"{cfg.config_path or 'the config'} (where GET /churn_alerts reads them), or point "
                       "DEALERML_HOME at another folder")
        why = "alerts keep their state in a database; "
        if "#" in str(target):  # score targets take DATABASE#table; the alert tables are named by churn.alerts_table
            raise ConfigError(f"{given} {hide_url_passwords(str(target))}: {why}expected {DATABASE_FORMS}, without "
                              "'#table' (the alerts table is named by the config's churn.alerts_table; its state "
                              "tables are named after it)")
        check_target(target, what=given, database=True, why=why, instead=instead)  # a bad --target: before the load
        # a date already recorded, or one before the latest recorded, is said before the data load and
        # the scoring (which took minutes on a real book to refuse it); record_alerts decides the rest
        from training.alerts import recorded_run
        from training.churn_backtest import churn_settings
        from training.data import parse_cutoff

        cfg = cfg if cfg is not None else load_config(config)
        res = recorded_run(target, parse_cutoff(cutoff), table=churn_settings(cfg).alerts_table)
        if res is None:
            scores, s = _scores(config, cutoff, model_path, alias)
            res = record_alerts(scores, target, cutoff, table=s.alerts_table, webhook=webhook,
                                notify=lambda msg: typer.echo(msg, err=True))
        if res["already_ran"]:
            typer.echo(f"alerts for {res['cutoff']} already recorded ({res['n_existing']}); nothing added"
                       + (" and nothing posted to --webhook (a recorded date was delivered, or recorded without "
                          "a webhook, when it first ran; GET /churn_alerts?since=DATE lists its alerts)" if webhook else ""))
        else:
            typer.echo(f"{len(res['new'])} new alerts for {res['cutoff']} in {describe_target(target, s.alerts_table)}")
            if res.get("attempts"):
                from training.alerts import _hook_name

                typer.echo(f"posted to {_hook_name(webhook)} (X-Dealerml-Delivery: {res['delivery']}"
                           + (f", after {res['attempts']} attempts" if res["attempts"] > 1 else "") + ")")
    except DealermlError as err:
        fail(err)
