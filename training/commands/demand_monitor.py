"""``monitor demand``: how the registered forecaster's own forecasts did against the demand that has
happened since it was trained (training.demand_monitor scores; this module loads the version and the
book, prints the table, logs a run in ``dealerml-monitoring`` and writes the JSON). Heavy libraries
are imported inside the functions."""

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
    stage_files,
    staged_outputs,
)
from training.commands._demand_common import _registered, _settings_and_series, _source_record
from training.errors import DealermlError

__all__: list[str] = []



def _fingerprint(info: dict[str, Any], df: Any) -> dict[str, Any]:
    """The book's fingerprint as ``train demand`` records it (data.* tags: compare / promote read them)."""
    fp = {"source": info["source"], "kind": info["kind"], "n_series": int(df["unique_id"].nunique()),
          "n_rows": int(len(df)), "ds_min": str(df["ds"].min()), "ds_max": str(df["ds"].max())}
    if info.get("order_lines_sha256"):
        fp["order_lines_sha256"] = info["order_lines_sha256"]
    return fp


def _say(report: dict[str, Any], what: str) -> None:
    from training.commands.demand import _print_backtest

    mon, setup, mets = report["monitor"], report["setup"], report["metrics"]
    typer.echo(f"{what}: forecast from {mon['cutoff']} (its last training period), {mon['periods_elapsed']} of its "
               f"{mon['horizon']} periods have happened ({', '.join(report['periods'])}); {report['n_series']} series "
               f"scored, scale: in-sample seasonal-naive error up to {mon['cutoff']} (season {mon['seasonality']})")
    if report.get("hierarchy"):
        typer.echo(f"hierarchical version: the table is its bottom level ({report['setup'].get('bottom_level')}); "
                   "each level below it, against the book's demand summed to that level")
    _print_backtest(report)
    best = setup.get("best_statsforecast_baseline")
    if best in mets and setup.get("final_mase_ratio_to_best_baseline") is not None:
        typer.echo(f"Final MASE {mets['Final']['mase']:.3f} vs {mets[best]['mase']:.3f} for {best}, the best "
                   f"statsforecast baseline ({setup['final_mase_ratio_to_best_baseline']:.3f}x)")
    for key, words in _SERIES_NOTES:  # the series the monitor left out or counted as 0, each said once
        if ids := mon[key]:
            typer.echo(f"note: {len(ids)} series " + words.format(eg=ids[:3]), err=True)
    if report.get("skipped"):
        typer.echo(f"note: {len(report['skipped'])} series left out of the scaled metrics: their history up to "
                   f"{mon['cutoff']} is constant (in-sample seasonal-naive error 0; 'skipped' in the JSON)", err=True)
    if mon.get("not_scored"):
        typer.echo(f"note: {mon['not_scored']}", err=True)


# monitor record key -> what its series are, after "note: N series " ({eg}: the first three ids)
_SERIES_NOTES = (
    ("missing_from_book_as_zero", "of the version are not in the book: counted as 0 demand in the periods scored "
                                  "(the book covers them; e.g. {eg})"),
    ("missing_from_book_not_scored", "of the version are not in the book, which starts after the version's last "
                                     "training period: not scored (e.g. {eg})"),
    ("new_series_not_scored", "of the book are new to the version (no forecast): not scored (e.g. {eg}; "
                              "'monitor.new_series_not_scored' in the JSON)"),
    ("below_top_n_not_scored", "of the version are left out of the book by its demand.top_n: not scored (e.g. {eg})"),
)

@monitor_app.command("demand")
def monitor_demand(
    config: Annotated[Path | None, typer.Option("--config", help="Experiment config whose book (or demand.series table) holds the demand since the version was trained.")] = None,
    series: Annotated[Path | None, typer.Option("--series", help="Ready long table: unique_id, ds, y, CSV or Parquet (instead of --config).")] = None,
    freq: Annotated[str | None, typer.Option("--freq", help="D, W or M of --series (default: the version's).")] = None,
    alias: Annotated[str, typer.Option("--alias", help="The registered dealerml-demand version to monitor.")] = "champion",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report (JSON).")] = None,
) -> None:
    """Score the registered forecaster's own forecasts on the demand that has happened since it was trained."""
    try:
        from training import tracking
        from training.commands.experiments import require_store
        from training.demand_monitor import monitor_report

        if json_out is not None:
            check_out_path(json_out, "--json")
        require_store(f"monitor demand --alias {alias}: no dealerml-demand@{alias} to monitor")
        est, minfo = _registered(alias)
        what = f"dealerml-demand@{alias} (version {minfo.version})"
        if series is not None and freq is None:
            freq = str(getattr(est, "bottom_", est).freq)
        s, df, info, _ = _settings_and_series(config, series, freq, {})
        report = monitor_report(est, df, freq=s.freq, source=info["source"], what=what,
                                below_top_n=info.get("below_top_n") or frozenset())
        report["setup"]["source"] = _source_record(info)
        # the backtest JSON's shape, with the version, the periods scored and the series first
        report = {"final": report.pop("final"), "model_version": f"dealerml-demand/{minfo.version}",
                  "periods": report.pop("periods"), "n_series": report.pop("n_series"), **report}
        cfg = None
        if config is not None:
            from training.config import load_config

            cfg = load_config(config)
        mon = report["monitor"]
        tags = {"dealerml.model_name": "dealerml-demand", "dealerml.model_version": str(minfo.version),
                "dealerml.model_alias": alias, "dealerml.model_run_id": str(getattr(minfo, "run_id", "") or ""),
                "monitor.cutoff": mon["cutoff"], "monitor.periods": ",".join(report["periods"])}
        with staged_outputs() as staged, tracking.training_run("monitoring", config=cfg, fingerprint=_fingerprint(info, df),
                                                                tags=tags, run_name=f"monitor-demand-{alias}") as run:
            run.log_params({"alias": alias, "model_version": minfo.version, "cutoff": mon["cutoff"],
                            "horizon": mon["horizon"], "periods_elapsed": mon["periods_elapsed"],
                            "n_series": report["n_series"], "scale_seasonality": mon["seasonality"]})
            for m, vals in report["metrics"].items():
                run.log_metrics({f"{m}.{k}": v for k, v in vals.items() if v is not None})
            for k, per in report["by_class"].items():
                run.log_metrics({f"{m}.{key}": v for m, vals in per.items() if isinstance(vals, dict)
                                 for key, v in vals.items() if v is not None}, slice={"demand_class": k})
            for name, lv in report.get("hierarchy", {}).get("by_level", {}).items():  # e.g. Final.mase__level.sku
                run.log_metrics({f"{m}.{k}": v for m, vals in lv["metrics"].items() if isinstance(vals, dict)
                                 for k, v in vals.items() if v is not None}, slice={"level": name})
            run.log_metrics({"periods_elapsed": mon["periods_elapsed"], "n_series": report["n_series"]})
            run.log_dict(report, "monitoring/report.json")
            if json_out is not None:
                staged += stage_files([(json_out, json_writer(report))])
        if json_out is not None:
            commit_files(staged)
    except DealermlError as err:
        fail(err)
    _say(report, what)
    typer.echo(f"run {run.run_id} in dealerml-monitoring" + (f"; wrote {json_out}" if json_out is not None else ""))
