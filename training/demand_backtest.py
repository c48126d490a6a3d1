"""Rolling-origin demand backtest and its report.

Runs :meth:`models.demand.DemandForecaster.cross_validation` and scores the served forecast
(``Final``) and every member in the same windows:

- ``mase`` / ``rmsse``: utilsforecast, each series scaled by its in-sample seasonal-naive error
  up to the window's cutoff (season 1 when the history is shorter than two seasons), averaged
  over series x windows with a finite, non-zero scale;
- ``pinball``: utilsforecast ``scaled_mqloss`` over the quantiles the intervals and the point
  imply (2.5, 10, 50, 90, 97.5 % for levels 80 and 95), same scaling;
- ``coverage_80`` / ``coverage_95``: share of actuals inside the interval (utilsforecast, mean
  over series x windows);
- ``bias``: (sum of forecasts - sum of actuals) / sum of actuals over all windows; > 0 = over-forecast.

The JSON: ``{"final": "Final", "metrics": {model: {...}}, "by_class": {class: {model: {...}}},
"skipped": [{"unique_id", "reason"}], "filled": [...], "setup": {...}, "selection": {...}}``, and
``short_history`` when the short-history fallback forecast some series x windows: those rows
(no member forecasts) are left out of ``metrics`` / ``by_class`` so every model is scored on the
same rows, and reported there apart (count, MAE, bias, coverage; ``short_history_report``).

Layout
    The code lives here and in two private modules, split by responsibility so each stays
    readable; the names callers use are re-exported here (import them from this module):
    :mod:`training._demand_report` (scoring a CV frame: ``backtest_report``,
    ``short_history_report``, utilsforecast's scaled tables in chunks of series,
    ``BASELINES``, ``METRIC_KEYS``) and :mod:`training._demand_replay` (the inventory replay:
    ``run_inventory_replay``, ``replay_metrics``). Running the backtest (``run_backtest``,
    ``scale_seasonality``, ``skipped_windows``) and the checks ``train demand`` makes before it
    opens a run (``check_backtest``, ``check_inventory_replay``) stay here.
    ``SCALED_CHUNK_ROWS`` is not re-exported: the report reads it from
    :mod:`training._demand_report`, so patch it there.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from training._demand_replay import replay_metrics, run_inventory_replay  # noqa: F401 - re-exported
from training._demand_report import BASELINES, METRIC_KEYS, backtest_report, short_history_report

__all__ = ["run_backtest", "backtest_report", "check_backtest", "check_inventory_replay", "BASELINES", "METRIC_KEYS"]


def scale_seasonality(train: pd.DataFrame, cv_info: dict[str, Any], h: int, n_windows: int) -> int:
    """The season of the scaled metrics: the forecaster's, when every series of ``train`` has
    two seasons before the first window; else 1 (the naive error)."""
    season = int(cv_info["season_length"])
    min_len = int(train.groupby("unique_id").size().min()) if len(train) else 0
    return season if min_len >= 2 * season + h * n_windows else 1


def skipped_windows(cv_info: dict[str, Any], min_train: int, note: str = "", short_history: str = "skip") -> list[dict[str, Any]]:
    """The series (and series x windows) a cross-validation left out, with the reason. With the
    short-history fallback only series without demand (or not started) up to a cutoff are left out;
    and series no member forecast for every period (the window's ``fallback`` record) are, with that reason."""
    out = list(cv_info["notes"]["skipped"])
    train = cv_info.get("train")
    first = (train.groupby("unique_id")["ds"].min() if short_history == "fallback" and train is not None
             else pd.Series(dtype="datetime64[ns]"))
    for w in cv_info["windows"]:
        cut = pd.Timestamp(w["cutoff"])
        fb = w.get("fallback")
        no_member = ({} if fb is None or not len(fb) else
                     {str(u): str(r) for u, r, m in zip(fb["unique_id"], fb["reason"], fb["served"], strict=True)
                      if m is None or m != m})
        for u in w["left_out"]:
            if str(u) in no_member:  # eligible, but no member forecast every period (models.demand_select.pick_served)
                reason = no_member[str(u)]
            elif short_history != "fallback":
                reason = f"fewer than {min_train} periods or no demand up to the cutoff"
            elif u in first.index and first[u] > cut:
                reason = f"no period up to the cutoff (first period {pd.Timestamp(first[u]).date()})"
            else:
                reason = "no demand up to the cutoff"
            out.append({"unique_id": str(u), "cutoff": str(cut.date()), "reason": f"{reason}{note}"})
    return out


def run_backtest(series: pd.DataFrame, *, freq: str, h: int, n_windows: int, step_size: int | None = None,
                 forecaster_kwargs: dict[str, Any] | None = None, member_cache=None,
                 score: tuple[str, str] | None = None, history_as_of: Any = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Cross-validate a DemandForecaster on a long table and build the report (no I/O).
    ``member_cache`` (``models.demand_cache.MemberCache``) keeps the member forecasts for a final
    ``fit`` on the same table with the same settings (``train demand``); ``score`` (model,
    metric) reports that figure only (``backtest_report``: a tuning trial's score);
    ``history_as_of`` (``load_demand_series``' ``info["as_of"]``): each window forecasts from the
    history as it stood at its cutoff (``DemandForecaster.cross_validation``), scored on ``series``;
    the report's ``history_as_of_cutoff`` says whether that was so. The in-sample scale of MASE /
    RMSSE is ``series``' (the same denominator for every model)."""
    from models.demand import DemandForecaster

    t0 = time.perf_counter()
    est = DemandForecaster(freq=freq, h=h, **(forecaster_kwargs or {}))
    cv = est.cross_validation(series, h=h, n_windows=n_windows, step_size=step_size, member_cache=member_cache,
                              history_as_of=history_as_of)
    elapsed = time.perf_counter() - t0
    info = est.cv_info_
    train = info["train"]
    seasonality = scale_seasonality(train, info, h, n_windows)
    skipped = skipped_windows(info, est._min_train(h), short_history=est.short_history)
    # the short-history fallback's rows (no member forecasts) are scored apart: the headline
    # metrics stay on the rows every model forecasts, as without the fallback
    from models.demand_short import SHORT_MODEL

    is_short = (cv["final_model"] == SHORT_MODEL).to_numpy()
    short_cv = cv[is_short]
    cv_all, cv = cv, (cv[~is_short] if is_short.any() else cv)  # no copy of the frame when nothing is short
    selection = {}
    for w in info["windows"]:
        ch = w["choice"]
        cls = cv[cv["cutoff"] == w["cutoff"]].drop_duplicates("unique_id").set_index("unique_id")["demand_class"]
        by = pd.DataFrame({"cls": cls, "m": ch.reindex(cls.index)}).groupby("cls")["m"].agg(lambda s: s.value_counts().to_dict())
        selection[str(pd.Timestamp(w["cutoff"]).date())] = {str(k): v for k, v in by.items()}
    report = backtest_report(
        cv, train, seasonality=seasonality, levels=est._levels(), skipped=skipped, filled=info["notes"]["filled"],
        extra={"freq": freq, "horizon": h, "windows": n_windows, "step_size": step_size or h,
               "seconds": round(elapsed, 2), "n_series_input": int(series["unique_id"].nunique())}, score=score,
    )
    report["selection"] = selection
    report["history_as_of_cutoff"] = history_as_of is not None
    # series whose chosen member had no forecast in a window, served by the next one of their ranking
    served_by_next = [{"unique_id": str(r.unique_id), "cutoff": str(pd.Timestamp(w["cutoff"]).date()),
                       "chosen": str(r.chosen), "served": str(r.served), "reason": str(r.reason)}
                      for w in info["windows"] if w.get("fallback") is not None
                      for r in w["fallback"].itertuples() if r.served is not None and r.served == r.served]
    if served_by_next:
        report["fallback"] = served_by_next
    if len(short_cv):
        report["short_history"] = short_history_report(short_cv, train, est._levels())
    return report, cv_all


def check_backtest(series: pd.DataFrame, *, freq: str, h: int, n_windows: int, step_size: int | None = None,
                   forecaster_kwargs: dict[str, Any] | None = None) -> None:
    """What :func:`run_backtest` (and ``run_hier_backtest``: its levels span the same periods)
    refuses before it fits anything, from the table and the settings alone: ValueError for bad
    settings, TooShortError naming the periods the windows need. Fast: ``train demand`` calls it
    before it opens an MLflow store or run, so a refused book leaves neither behind."""
    from models.demand import DemandForecaster

    DemandForecaster(freq=freq, h=h, **(forecaster_kwargs or {})).check_windows(series, h, n_windows, step_size)


def check_inventory_replay(series: pd.DataFrame, **kwargs: Any) -> None:
    """What :func:`run_inventory_replay` with the same arguments refuses before its first refit
    (the same errors), without running it; as :func:`check_backtest`, for ``train demand``."""
    run_inventory_replay(series, **kwargs, check_only=True)
