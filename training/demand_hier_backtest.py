"""Backtest of coherent forecasts (``demand.hierarchy``): the usual report for the bottom level
plus the accuracy of every level above it.

``run_hier_backtest`` cross-validates a :class:`models.demand_hier.HierarchicalDemandForecaster`
and scores it with :func:`training.demand_backtest.backtest_report`:

- the top-level keys of the report (``final``, ``metrics``, ``by_class``, ``skipped``, ``setup``)
  describe the bottom level (SKU x location), as for a forecast without a hierarchy, with
  ``Final`` the coherent forecast and every statsforecast baseline beside it;
- ``hierarchy.by_level`` gives, per level (``total``, ``sku``, ``sku/location`` ...), the
  number of series and the metrics of the coherent ``Final``, of ``Base`` (that level's own
  forecast before reconciliation) and of the baselines fitted on that level's series. The
  coherent ``Final``'s bands above the bottom level are split-conformal on the coherent
  forecast's own errors (``models.demand_hier``), ``Base``'s are that level's own.

Every level is scaled by its own in-sample seasonal-naive error up to each cutoff.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from training.demand_backtest import backtest_report, scale_seasonality, skipped_windows

__all__ = ["run_hier_backtest"]


def _level_name(tag: str) -> str:
    parts = [p for p in tag.split("/") if p != "_total"]
    return "/".join(parts) if parts else "total"


def run_hier_backtest(series: pd.DataFrame, *, levels: Sequence[str], method: str, freq: str, h: int,
                      n_windows: int, step_size: int | None = None,
                      forecaster_kwargs: dict[str, Any] | None = None,
                      member_cache=None, history_as_of: Any = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Cross-validate coherent forecasts over ``levels`` (key columns of ``series``, top first)
    and build the report (no I/O). Returns the report and the reconciled cross-validation frame
    of every level (``unique_id`` in the hierarchy's ids, e.g. ``total/<sku>/<location>``).
    ``member_cache`` (``models.demand_cache.MemberCache``) keeps each level's member forecasts
    for a final ``HierarchicalDemandForecaster.fit`` on the same table with the same settings;
    ``history_as_of`` (``load_demand_series``' ``info["as_of"]``): every level of each window
    forecasts from the history as it stood at its cutoff, scored on ``series``; the report's
    ``history_as_of_cutoff`` says whether that was so."""
    from models.demand_hier import HierarchicalDemandForecaster

    t0 = time.perf_counter()
    est = HierarchicalDemandForecaster(levels, method=method, forecaster={"freq": freq, "h": h, **(forecaster_kwargs or {})})
    cv = est.cross_validation(series, h=h, n_windows=n_windows, step_size=step_size, member_cache=member_cache,
                              history_as_of=history_as_of)
    elapsed = time.perf_counter() - t0
    cv = cv[cv["y"].notna()].reset_index(drop=True)  # nodes not forecast at a cutoff were filled for the reconciliation only
    history, info, bottom_est = est.cv_history_, est.cv_info_, est.cv_estimator_
    seasonality = scale_seasonality(history, info, h, n_windows)
    lv = bottom_est._levels()
    least = bottom_est._min_train(h)
    skipped = [x for i in (est.upper_info_, info) for x in skipped_windows(
        i, least, " (forecast as 0 units for the reconciliation, not scored)")]
    names = {_level_name(t): set(map(str, ids)) for t, ids in est.tags_.items()}
    bottom = list(names)[-1]
    report = backtest_report(
        cv[cv["unique_id"].isin(names[bottom])], history, seasonality=seasonality, levels=lv,
        skipped=skipped, filled=info["notes"]["filled"],
        extra={"freq": freq, "horizon": h, "windows": n_windows, "step_size": step_size or h,
               "seconds": round(elapsed, 2), "n_series_input": int(series.groupby(list(levels)).ngroups)},
    )
    by_level: dict[str, Any] = {}
    for name, ids in names.items():
        part = cv[cv["unique_id"].isin(ids)]
        rep = backtest_report(part, history, seasonality=seasonality, levels=lv)
        base = part.drop(columns=[c for c in part.columns if c == "Final" or c.startswith("Final-")])
        base = base.rename(columns={c: c.replace("Base", "Final", 1) for c in base.columns if c == "Base" or c.startswith("Base-")})
        rep_base = backtest_report(base, history, seasonality=seasonality, levels=lv)
        metrics = {"Final": rep["metrics"].get("Final"), "Base": rep_base["metrics"].get("Final"),
                   **{m: v for m, v in rep["metrics"].items() if m != "Final"}}
        by_level[name] = {"n_series": len(ids), "n_series_scored": rep["setup"]["n_series_scored"], "metrics": metrics,
                          "best_statsforecast_baseline": rep["setup"].get("best_statsforecast_baseline"),
                          "final_mase_ratio_to_best_baseline": rep["setup"].get("final_mase_ratio_to_best_baseline")}
    report["hierarchy"] = {"levels": [str(c) for c in levels], "method": method, "by_level": by_level,
                           "parent_bands": "split-conformal on the coherent forecast's errors in the internal "
                                           "windows, per level x demand class (>= 50 errors) else per level"}
    # each window read every level as the book stood at its cutoff (docs/DATA.md "As of a cutoff")
    report["history_as_of_cutoff"] = history_as_of is not None
    return report, cv
