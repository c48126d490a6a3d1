"""``monitor churn``: how the registered churn model's own scores at a past cutoff did, now that the book
holds the outcome (training.churn_monitor scores; this module loads the version and the book, prints
the table as ``backtest churn`` prints its, logs a run in ``dealerml-monitoring`` and writes the JSON).
Heavy libraries are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from training.cli import monitor_app
from training.commands._common import (
    check_out_path,
    commit_files,
    fail,
    json_writer,
    note_model_environment,
    stage_files,
    staged_outputs,
)
from training.errors import ConfigError, DealermlError

__all__: list[str] = []


def _registered(alias: str) -> tuple[Any, Any]:
    """The ``dealerml-churn`` version behind ``alias``, loaded as ``score churn --alias`` loads it."""
    from training import tracking
    from training.commands.churn import REGISTERED_NAME
    from training.commands.experiments import require_store

    require_store(f"monitor churn --alias {alias}: no {REGISTERED_NAME}@{alias} to monitor")
    try:
        model, info = tracking.load_model(REGISTERED_NAME, alias)
    except ConfigError as exc:
        raise ConfigError(f"no churn model to monitor: {exc}; run `dealerml train churn --config FILE`") from None
    model.num_threads = 1
    note_model_environment(info)
    return model, info


def _say(report: dict[str, Any], what: str) -> None:
    from training.commands.churn import _print_report

    mon = report["monitor"]
    start, end = mon["label_window"]
    typer.echo(f"{what} scored at {report['cutoff']}: {report['n_accounts']} accounts with an order in the "
               f"{mon['lookback_days']} days before it; churned = no order in [{start}, {end}) "
               f"({report['horizon_days']} days, the model's horizon); book's last order {mon['book_last_order']}")
    if mon.get("training_labels"):
        a, b = mon["training_labels"]
        where = ("overlaps them" if mon["in_sample"] else "is before them" if end <= a else "is after them")
        typer.echo(f"  its training and calibration labels: [{a}, {b}); this window {where}")
    _print_report(report)
    for col, groups in report["by_slice"].items():
        for val, g in groups.items():
            m = g["metrics"][report["final"]]
            auc = "n/a" if m["auc"] is None else f"{m['auc']:.3f}"
            typer.echo(f"  {col}={val}: n {g['n']}, base rate {g['base_rate']:.3f}, {report['final']} auc {auc}")
    for note in mon.get("notes", []):
        typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
    if mon["in_sample"]:
        typer.secho(f"WARNING: {mon['in_sample_note']}", fg=typer.colors.RED, bold=True, err=True)


@monitor_app.command("churn")
def monitor_churn(
    config: Annotated[Path, typer.Option("--config", "-c", help="Experiment config whose book holds the outcome of --cutoff.")],
    cutoff: Annotated[str, typer.Option("--cutoff", help="The past scoring date: features before it, outcome over the model's horizon after it.")],
    alias: Annotated[str, typer.Option("--alias", help="The registered dealerml-churn version to monitor.")] = "champion",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report (the backtest churn JSON's shape).")] = None,
) -> None:
    """Score the registered churn model's own scores at a past cutoff against what the book now holds."""
    try:
        from training import tracking
        from training.churn_backtest import horizon_note, lookback_note
        from training.churn_monitor import monitor_report
        from training.commands.churn import REGISTERED_NAME, _as_data_error, _load
        from training.data import parse_cutoff

        if json_out is not None:
            check_out_path(json_out, "--json")
        cut = parse_cutoff(cutoff)  # a malformed --cutoff fails before anything is read
        cfg, s, book = _load(config)
        model, minfo = _registered(alias)
        what = f"{REGISTERED_NAME}@{alias} (version {minfo.version})"
        # the model's own windows, said when the config's differ (labels over the model's horizon)
        notes = [n for n in (lookback_note(model, s, cut, what), horizon_note(model, s, cut, what)) if n]
        try:
            report = monitor_report(book, model, s, cut, model_version=f"{REGISTERED_NAME}/{minfo.version}",
                                    what=what, training_window=minfo.training_window)
        except ValueError as exc:
            raise _as_data_error(exc) from None
        report.pop("_test")
        mon = report["monitor"]
        if notes:  # the config's other windows, in the JSON too
            mon["notes"] = notes + mon.get("notes", [])
        tags = {"dealerml.model_name": REGISTERED_NAME, "dealerml.model_version": str(minfo.version),
                "dealerml.model_alias": alias, "dealerml.model_run_id": str(getattr(minfo, "run_id", "") or ""),
                "monitor.cutoff": report["cutoff"], "monitor.horizon_days": str(report["horizon_days"]),
                "monitor.in_sample": str(mon["in_sample"]).lower()}
        with staged_outputs() as staged, tracking.training_run("monitoring", config=cfg, config_path=config,
                                                                book=book, tags=tags,
                                                                run_name=f"monitor-churn-{alias}") as run:
            run.log_params({"alias": alias, "model_version": minfo.version, "cutoff": report["cutoff"],
                            "horizon_days": report["horizon_days"], "lookback_days": mon["lookback_days"],
                            "n_accounts": report["n_accounts"]})
            for m, vals in report["metrics"].items():
                run.log_metrics({f"{m}.{k}": v for k, v in vals.items() if v is not None})
            run.log_metrics({"base_rate": report["base_rate"], "n_accounts": report["n_accounts"]})
            for col, groups in report["by_slice"].items():
                for val, g in groups.items():
                    run.log_metrics({"base_rate": g["base_rate"], **{f"{m}.{k}": v for m, vals in g["metrics"].items()
                                                                     for k, v in vals.items() if v is not None}},
                                    slice={col: val})
            run.log_dict(report, "monitoring/churn_report.json")
            if json_out is not None:
                staged += stage_files([(json_out, json_writer(report))])
        if json_out is not None:
            commit_files(staged)
    except DealermlError as err:
        fail(err)
    _say(report, what)
    typer.echo(f"run {run.run_id} in dealerml-monitoring" + (f"; wrote {json_out}" if json_out is not None else ""))
