"""Demand commands: ``backtest demand`` and ``train demand``. ``forecast`` is in
``demand_forecast``, ``safety-stock`` and ``simulate inventory`` in ``demand_stock``, their shared
helpers in ``_demand_common``. Heavy libraries are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from training.cli import backtest_app, train_app
from training.commands._common import (
    check_out_path,
    check_separate_outputs,
    commit_files,
    fail,
    json_writer,
    registered_text,
    stage_files,
    staged_outputs,
    write_files,
)
from training.commands._demand_common import (
    _TABLE_SUFFIXES,
    _as_data_error,
    _fit,
    _fit_hier,
    _hier_levels,
    _replay_forecaster_kwargs,
    _settings_and_series,
    _source_record,
    _table_writer,
    _too_short_error,
)
from training.errors import DealermlError

__all__: list[str] = []


@backtest_app.command("demand")
def backtest_demand(
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the report (JSON).")],
    config: Annotated[Path | None, typer.Option("--config", help="Experiment config with a demand: section.")] = None,
    series: Annotated[Path | None, typer.Option("--series", help="Ready long table: unique_id, ds, y (+ numeric drivers), CSV or Parquet.")] = None,
    freq: Annotated[str | None, typer.Option("--freq", help="D, W or M.")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", help="Periods ahead (default: config or 8).")] = None,
    windows: Annotated[int | None, typer.Option("--windows", help="Rolling-origin windows (default 2).")] = None,
    step: Annotated[int | None, typer.Option("--step", help="Periods between window cutoffs (default: horizon).")] = None,
    top_n: Annotated[int | None, typer.Option("--top-n", help="Keep the N series with the largest total demand.")] = None,
    cv_out: Annotated[Path | None, typer.Option("--cv-out", help="Also write every window forecast (Parquet).")] = None,
) -> None:
    """Rolling-origin backtest of the demand forecaster against every statsforecast baseline."""
    try:
        from training.demand_backtest import run_backtest

        check_out_path(json_out, "--json")
        if cv_out is not None:
            check_out_path(cv_out, "--cv-out", _TABLE_SUFFIXES)
        check_separate_outputs({"--json": json_out, "--cv-out": cv_out})
        s, df, info, seed = _settings_and_series(
            config, series, freq, {"horizon": horizon, "windows": windows, "step": step, "top_n": top_n}
        )
        if series is not None and s.top_n:  # rows in messages are the file's (keep_top_series)
            from training.demand_config import keep_top_series

            df, _ = keep_top_series(df, s.top_n, s.freq, info["source"])
        try:
            if s.hierarchy and series is None:
                from training.demand_hier_backtest import run_hier_backtest

                report, cv = run_hier_backtest(df, levels=_hier_levels(info), method=s.reconcile, freq=s.freq,
                                               h=s.horizon, n_windows=s.windows, step_size=s.step,
                                               forecaster_kwargs=s.forecaster_kwargs(seed), history_as_of=info.get("as_of"))
            else:
                report, cv = run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step,
                                          forecaster_kwargs=s.forecaster_kwargs(seed), history_as_of=info.get("as_of"))
        except ValueError as exc:
            raise _too_short_error(exc, info["source"], s, "The backtest scores the members on its windows") from None
        report["setup"]["source"] = _source_record(info)
        # both or neither: a report that fails to write no longer leaves the window forecasts behind
        write_files([(json_out, json_writer(report))]
                    + ([(cv_out, _table_writer(cv, cv_out))] if cv_out is not None else []))
    except DealermlError as err:
        fail(err)
    _print_backtest(report)
    line = _windows_line(report.get("setup") or {})
    if line:
        typer.echo(line)
    typer.echo(f"skipped {len(report['skipped'])} series-windows; wrote {json_out}")
    filled = report.get("filled") or []
    if filled:  # periods absent from the table (or with an empty y) count as zero demand: say so
        n = sum(int(f.get("periods_filled", 0)) for f in filled)
        eg = [str(f["unique_id"]) for f in filled[:3]]
        typer.echo(f"note: {n:,} missing period(s) in {len(filled):,} series counted as zero demand (e.g. {eg}; "
                   "'filled' in the JSON)")


_CUTOFFS_ARE = "(each the last period trained on; forecasts from the next period)"


def _windows_line(setup: dict[str, Any]) -> str:
    """What the backtest scored, in one line: the table alone did not say which windows, how many series
    or how Final compares with the best baseline (``train demand`` says so; ``backtest demand`` only in
    the JSON's ``setup``)."""
    cutoffs = setup.get("cutoffs") or []
    if not cutoffs:
        return ""
    src = setup.get("source") or {}
    top = f" (demand.top_n / --top-n {src['top_n']})" if src.get("top_n") else ""
    # the dates are cutoffs, each window's last period trained on: 'windows from' read as its first forecast
    line = (f"scored {setup.get('n_series_scored', 0):,} series{top} on {len(cutoffs)} window(s) of "
            f"{setup.get('horizon')} {setup.get('freq')} period(s) each, with cutoffs {', '.join(map(str, cutoffs))} "
            f"{_CUTOFFS_ARE}")
    ratio, best = setup.get("final_mase_ratio_to_best_baseline"), setup.get("best_statsforecast_baseline")
    if ratio is not None and best:
        line += f"; Final MASE {ratio:.3f}x {best}'s, the best statsforecast baseline"
    return line


def _print_backtest(report: dict[str, Any]) -> None:
    """The backtest table: the served forecast (Final) beside every member and baseline."""
    m = report["metrics"]
    typer.echo(f"{'model':<14}{'MASE':>8}{'RMSSE':>8}{'pinball':>9}{'cov80':>7}{'cov95':>7}{'bias':>8}")
    for name, v in m.items():
        f = lambda x, p=3: "   -" if x is None else f"{x:.{p}f}"  # noqa: E731
        typer.echo(f"{name:<14}{f(v['mase']):>8}{f(v['rmsse']):>8}{f(v['pinball']):>9}{f(v['coverage_80'], 2):>7}{f(v['coverage_95'], 2):>7}{f(v['bias']):>8}")
    sh = report.get("short_history") or {}
    if sh:  # scored apart: those series have no member forecasts
        f = lambda x, p=3: "-" if x is None else f"{x:.{p}f}"  # noqa: E731
        typer.echo(f"short-history fallback (not in the table above): {sh['n_series_windows']} series-windows, "
                   f"MAE {f(sh['mae'])}, bias {f(sh['bias'])}, cov80 {f(sh.get('coverage_80'), 2)}, "
                   f"cov95 {f(sh.get('coverage_95'), 2)}")
    by_level = report.get("hierarchy", {}).get("by_level", {})
    if by_level:  # every level: the coherent Final, the level's own Base, its best baseline
        typer.echo(f"{'level':<16}{'series':>7}  {'model':<14}{'MASE':>8}{'cov80':>7}{'cov95':>7}")
    for name, lv in by_level.items():
        first = True
        for k, v in lv["metrics"].items():
            if k not in ("Final", "Base", lv["best_statsforecast_baseline"]) or not v or v.get("mase") is None:
                continue
            f = lambda x, p=3: "   -" if x is None else f"{x:.{p}f}"  # noqa: E731
            head = f"{name:<16}{lv['n_series']:>7}" if first else " " * 23
            typer.echo(f"{head}  {k:<14}{f(v['mase']):>8}{f(v.get('coverage_80'), 2):>7}{f(v.get('coverage_95'), 2):>7}")
            first = False


def _bottom_cv(cv, df, levels: list[str]):
    """The bottom level's rows of a hierarchical cross-validation frame, under the series' own
    ids (``<sku>/<location>``, as ``df``'s unique_id) instead of the hierarchy's node ids."""
    from models.demand_hier import node_ids

    keys = df[["unique_id", *levels]].drop_duplicates("unique_id")
    plain = dict(zip(node_ids(keys, levels), keys["unique_id"].astype(str), strict=True))
    part = cv[cv["unique_id"].isin(set(plain))]
    return part.assign(unique_id=part["unique_id"].map(plain))


_TRAIN_NEEDS_WINDOWS = "train demand registers a forecaster only with the evidence of its backtest windows"


@train_app.command("demand")
def train_demand(
    config: Annotated[Path, typer.Option("--config", help="Experiment config with a demand: section.")],
    replay: Annotated[bool, typer.Option("--replay/--no-replay", help="Also run the inventory replay and log its plot.")] = True,
    holdout: Annotated[int, typer.Option("--holdout", help="Replay holdout in periods.")] = 12,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the backtest report here (the JSON of "
                                                  "`backtest demand`), so one run gives both.")] = None,
) -> None:
    """Backtest, fit on all history, log metrics and plots to MLflow, register dealerml-demand."""
    try:
        if json_out is not None:
            check_out_path(json_out, "--json")  # before any work
        from models.demand_cache import MemberCache
        from training import tracking
        from training.config import load_config
        from training.demand_backtest import (
            check_backtest,
            check_inventory_replay,
            replay_metrics,
            run_backtest,
            run_inventory_replay,
        )
        from training.demand_plots import accuracy_by_class, fan_charts, service_vs_target

        cfg = load_config(config)
        s, df, info, seed = _settings_and_series(config, None, None, {})
        kw = s.forecaster_kwargs(seed)
        fingerprint = {"source": info["source"], "kind": info["kind"], "n_series": int(df["unique_id"].nunique()),
                       "n_rows": int(len(df)), "ds_min": str(df["ds"].min()), "ds_max": str(df["ds"].max())}
        if info.get("order_lines_sha256"):  # an order book (a series table has none): compare / promote tell books apart
            fingerprint["order_lines_sha256"] = info["order_lines_sha256"]
        # demand.hierarchy: the coherent forecaster of every level is backtested and registered;
        # the replay (and safety stock) stay on the bottom level, where stock sits
        levels = _hier_levels(info) if s.hierarchy else None
        # what the data and the settings alone refuse (a book too short for the backtest windows or
        # the replay's holdout) before the MLflow store and run are opened: a refusal leaves no
        # mlflow.db, run or version behind; the same checks, and messages, as inside the run below
        try:
            check_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step, forecaster_kwargs=kw)
        except ValueError as exc:
            raise _too_short_error(exc, info["source"], s, _TRAIN_NEEDS_WINDOWS) from None
        # the replay's settings, checked here before a run is opened and run the same way inside it; each
        # series' lead time from the book, as safety-stock and simulate inventory
        replay_kw = dict(freq=s.freq, lead_time_days=s.lead_time_days, lead_time_std_days=s.lead_time_std_days,
                         review_period=s.review_period, holdout=holdout, n_sims=min(s.n_sims, 2000), random_state=seed,
                         forecaster_kwargs=_replay_forecaster_kwargs(s, seed), lead_times=info.get("lead_times"),
                         history_as_of=info.get("as_of"))
        if replay:
            try:
                check_inventory_replay(df, **replay_kw)
            except ValueError as exc:
                raise _as_data_error(exc, info["source"]) from None
        with staged_outputs() as staged, tracking.training_run("demand", config=cfg, fingerprint=fingerprint,
                                                                seed=seed) as run:
            try:
                if levels:
                    from training.demand_hier_backtest import run_hier_backtest

                    # as below: the final fit takes each level's selection windows from the backtest
                    member_cache = MemberCache()
                    report, cv = run_hier_backtest(df, levels=levels, method=s.reconcile, freq=s.freq, h=s.horizon,
                                                   n_windows=s.windows, step_size=s.step, forecaster_kwargs=kw,
                                                   member_cache=member_cache, history_as_of=info.get("as_of"))
                    cv = _bottom_cv(cv, df, levels)  # the fan charts: SKU x location series, by their ids
                else:
                    # the final fit's selection windows are cutoffs of the backtest (same table and
                    # settings): it takes their member forecasts instead of refitting them
                    member_cache = MemberCache()
                    report, cv = run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step,
                                              forecaster_kwargs=kw, member_cache=member_cache,
                                              history_as_of=info.get("as_of"))
            except ValueError as exc:
                raise _too_short_error(exc, info["source"], s, _TRAIN_NEEDS_WINDOWS) from None
            from training.demand_tuning import model_params

            run.log_params({**model_params(kw),  # the tuned settings, under the names a tune run logs them
                            "freq": s.freq, "horizon": s.horizon, "windows": s.windows, "selection": s.selection,
                            "profile": s.profile, "fast_above": s.fast_above,
                            # a hierarchy's bottom level skips short series (models.demand_hier)
                            "short_history": "skip" if levels else s.short_history,
                            # the windows the backtest was scored on (what compare and the version's tags say)
                            **({"backtest.cutoffs": ",".join(report["setup"]["cutoffs"])}
                               if (report.get("setup") or {}).get("cutoffs") else {}),
                            **({"hierarchy": True, "reconcile": s.reconcile, "levels": ",".join(levels)} if levels else {})})
            for m, vals in report["metrics"].items():
                run.log_metrics({f"{m}.{k}": v for k, v in vals.items() if v is not None})
            for k, per in report["by_class"].items():
                run.log_metrics({f"{m}.{key}": v for m, vals in per.items() if isinstance(vals, dict)
                                 for key, v in vals.items() if v is not None}, slice={"demand_class": k})
            short = report.get("short_history") or {}  # the fallback's rows, scored apart from the headline
            if short:
                run.log_metrics({f"ShortHistory.{k}": float(v) for k, v in short.items()
                                 if isinstance(v, int | float) and not isinstance(v, bool)})
            for name, lv in report.get("hierarchy", {}).get("by_level", {}).items():  # e.g. Final.mase__level.sku
                run.log_metrics({f"{m}.{k}": v for m, vals in lv["metrics"].items() if isinstance(vals, dict)
                                 for k, v in vals.items() if v is not None}, slice={"level": name})
            report["setup"]["source"] = _source_record(info)
            run.log_dict(report, "backtest/report.json")
            _print_backtest(report)
            import matplotlib.pyplot as plt

            for fig, name in ((fan_charts(df, cv, seed=seed), "plots/fan_charts.png"),
                              (accuracy_by_class(report), "plots/accuracy_by_class.png")):
                run.log_figure(fig, name)
                plt.close(fig)
            if replay:
                try:
                    rep = run_inventory_replay(df, **replay_kw)
                except ValueError as exc:
                    raise _as_data_error(exc, info["source"]) from None
                run.log_dict(rep, "inventory/replay.json")
                for mets, sl in replay_metrics(rep):  # established series, and the short-history group apart
                    run.log_metrics(mets, slice=sl)
                fig = service_vs_target(rep)
                run.log_figure(fig, "plots/service_vs_target.png")
                plt.close(fig)
            import pandas as pd

            if levels:
                est = _fit_hier(s, df, seed, levels, info["source"], member_cache=member_cache,
                                planned=info.get("planned_drivers"))
                bottom = est.bottom_
                example = pd.DataFrame({"unique_id": [str(est.nodes_["served_id"].iloc[-1])], "h": [s.horizon]})
            else:
                est = bottom = _fit(s, df, seed, s.horizon, info["source"], member_cache=member_cache,
                                     planned=info.get("planned_drivers"))
                example = pd.DataFrame({"unique_id": [str(est.panel_.uids[0])], "h": [s.horizon]})
            run.set_tags({"dealerml.demand_profile": bottom.profile_})  # what "auto" resolved to
            metrics = dict(report["metrics"].get("Final", {}))
            if levels:  # /model_info shows each level's coherent accuracy beside the bottom level's
                run.set_tags({"dealerml.demand_hierarchy": ",".join(levels)})
                metrics["by_level"] = {k: v["metrics"].get("Final") or {}
                                       for k, v in report["hierarchy"]["by_level"].items()}
            meta = {"training_window": {"start": str(df["ds"].min()), "end": str(bottom.last_ds_.date())},
                    "backtest_metrics": metrics, "freq": s.freq, "horizon": s.horizon,
                    **({"hierarchy": {"levels": levels, "method": s.reconcile}} if levels else {})}
            run.log_model(est, input_example=example, metadata=meta, predict_method="predict_frame")
            run.register("dealerml-demand")
            # the report is written inside the run (a failed write registers nothing) and put in
            # place after it (a failed run leaves no report behind)
            if json_out is not None:
                staged += stage_files([(json_out, json_writer(report))])
        if json_out is not None:
            commit_files(staged)
            typer.echo(f"wrote {json_out}")
        setup, mets = report.get("setup", {}), report["metrics"]
        best = setup.get("best_statsforecast_baseline")
        versus = (f" vs {mets[best]['mase']:.3f} for {best}, the best statsforecast baseline "
                  f"({setup['final_mase_ratio_to_best_baseline']:.3f}x)"
                  if best in mets and setup.get("final_mase_ratio_to_best_baseline") is not None else "")
        where = f" on the windows with cutoffs {', '.join(setup['cutoffs'])} {_CUTOFFS_ARE}" if setup.get("cutoffs") else ""
        typer.echo(f"run {run.run_id}: Final MASE {mets['Final']['mase']:.3f}{versus}{where}; "
                   f"{registered_text(run.registered, config=config)}")
    except DealermlError as err:
        fail(err)
