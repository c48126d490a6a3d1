"""How a registered demand forecaster's own forecasts did against the demand that has happened since
it was trained (``dealerml monitor demand``): no refit, the version's forecast as served
(``est.predict()``, its default plan included) scored on the book's complete periods that fall in
its forecast periods, with the backtest report's functions (:mod:`training._demand_report`) and the
version's last training date as the one cutoff. The per-series scale of MASE / RMSSE / pinball is
the in-sample seasonal-naive error of the history up to that date, as a backtest window computes
it. Pure frames here (no MLflow, no files): ``training.commands.demand_monitor`` loads, logs and
writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.errors import DataError

__all__ = ["served_frame", "monitor_report"]


def _day(ts: Any) -> str:
    return str(pd.Timestamp(ts).date())


def served_frame(est: Any) -> tuple[pd.DataFrame, Any, str]:
    """The version's forecast as served (``est.predict()``, its default plan included), in the ids
    users see (a hierarchy: ``<sku>/<location>``, ``<sku>/*``, ``*/*``, with its ``level``; the
    bottom series it could not forecast left out), and the plain forecaster of its (bottom) series:
    its history, classes and season."""
    if not hasattr(est, "bottom_"):
        return est.predict(), est, ""
    fc = est.served(est.predict())
    return fc[~est.not_forecast(fc)].reset_index(drop=True), est.bottom_, str(est.nodes_["level"].iloc[-1])


def _book_panel(df: pd.DataFrame, freq: str):
    from models.demand_data import build_panel

    # every series of the book, all-zero ones too (they had 0 demand: scored, not dropped)
    return build_panel(df[["unique_id", "ds", "y"]], freq, exog=[], drop_all_zero=False)


def _score(fc: pd.DataFrame, book: pd.DataFrame, own: pd.DataFrame, classes: pd.Series, *, cutoff: pd.Timestamp,
           elapsed: list, freq: str, season: int, levels: list[int], covered: bool,
           below: frozenset = frozenset()) -> dict[str, Any]:
    """The backtest report of the forecast rows ``fc`` (one cutoff) in ``elapsed`` against ``book``
    (long unique_id, ds, y; every period complete). ``own``: the version's own history, the scale's
    rows for its series the book does not hold (0 demand in ``elapsed`` when the book ``covered``
    them, else not scored); ``classes``: demand class by id; ``below``: ids the book holds but the
    config's demand.top_n left out (not scored: they are not 0)."""
    from models.demand_short import SHORT_MODEL
    from training._demand_report import backtest_report, short_history_report
    from training.demand_backtest import scale_seasonality

    panel = _book_panel(book, freq)
    rows = fc[fc["ds"].isin(elapsed)].assign(unique_id=lambda d: d["unique_id"].astype(str))
    book_ids = set(map(str, panel.uids))
    cut_by_top_n = sorted(set(rows["unique_id"]) & set(map(str, below)))
    rows = rows[~rows["unique_id"].isin(set(cut_by_top_n))] if cut_by_top_n else rows
    missing = sorted(set(rows["unique_id"]) - book_ids)
    if missing and len(missing) == rows["unique_id"].nunique():
        raise DataError(f"none of the {len(missing)} series the version forecasts is in the book (the version's ids "
                        f"e.g. {missing[:3]}, the book's e.g. {sorted(book_ids)[:3]}): check demand.levels and the "
                        "order lines the config reads")
    if missing and not covered:  # the book does not cover those periods: 0 would be a guess
        rows = rows[~rows["unique_id"].isin(set(missing))]
    # actuals: the book's demand in those periods (a period missing inside a series is 0, as the
    # backtest fills it; a series of the version the book does not hold sold nothing in them)
    pos = {u: i for i, u in enumerate(map(str, panel.uids))}
    col = {d: j for j, d in enumerate(panel.dates)}
    ii = rows["unique_id"].map(pos).to_numpy(dtype=float)
    jj = rows["ds"].map(col).to_numpy(dtype=int)
    y = np.zeros(len(rows))
    known = np.isfinite(ii)
    y[known] = np.nan_to_num(panel.Y[ii[known].astype(int), jj[known]], nan=0.0)
    rows = rows.assign(y=y, cutoff=cutoff, demand_class=rows["unique_id"].map(classes).fillna("unknown").to_numpy())
    # the history up to the cutoff the scale is taken from: the book's, and the version's own for its
    # series the book does not hold (the same denominator for every model)
    train = panel.long(len(panel.dates) - 1)
    own = own[own["unique_id"].astype(str).isin(set(missing))]
    train = pd.concat([train.assign(unique_id=train["unique_id"].astype(str)),
                       own.assign(unique_id=own["unique_id"].astype(str))], ignore_index=True)
    train = train[train["ds"] <= cutoff].sort_values(["unique_id", "ds"], ignore_index=True)
    seasonality = scale_seasonality(train, {"season_length": season}, h=0, n_windows=1)
    is_short = ((rows["final_model"] == SHORT_MODEL).to_numpy() if "final_model" in rows.columns
                else np.zeros(len(rows), dtype=bool))
    report = backtest_report(rows[~is_short], train, seasonality=seasonality, levels=levels,
                             extra={"freq": freq, "windows": 1})
    if is_short.any():
        report["short_history"] = short_history_report(rows[is_short], train, levels)
    report["n_series"] = int(rows["unique_id"].nunique())
    report["_missing"], report["_book_ids"], report["_seasonality"] = missing, book_ids, seasonality
    report["_top_n"] = cut_by_top_n
    return report


def _level_sums(book: pd.DataFrame, nodes: pd.DataFrame, keys: list[str], level: str) -> pd.DataFrame | None:
    """The book's demand summed to the nodes of ``level`` (``nodes_`` of a hierarchy: served_id, level,
    its key columns), in served ids (``A/*``, ``*/*``); None when the book's ids do not split into ``keys``."""
    parts = book["unique_id"].astype(str).str.split("/", regex=False)
    if not (parts.str.len() == len(keys)).all():
        return None
    cols = {k: parts.str[i] for i, k in enumerate(keys)}
    lv = nodes[nodes["level"] == level]
    used = [k for k in keys if lv[k].notna().all()]
    frame = pd.DataFrame({**cols, "ds": book["ds"].to_numpy(), "y": book["y"].to_numpy()})
    sums = frame.groupby([*used, "ds"], as_index=False)["y"].sum() if used else frame.groupby("ds", as_index=False)["y"].sum()
    ids = lv.assign(**{k: lv[k].astype(str) for k in used})
    sums = sums.merge(ids[[*used, "served_id"]], on=used, how="inner") if used else sums.assign(served_id=ids["served_id"].iloc[0])
    return sums.rename(columns={"served_id": "unique_id"})[["unique_id", "ds", "y"]]


def monitor_report(est: Any, df: pd.DataFrame, *, freq: str, source: str, what: str,
                   below_top_n: frozenset = frozenset()) -> dict[str, Any]:
    """Score the version ``est`` (``what``: 'dealerml-demand@champion (version 3)', for messages) on
    the long table ``df`` (the book as ``load_demand_series`` reads it: its last, still-open period
    already left out, so every period of ``df`` is complete; ``below_top_n``: the series its
    demand.top_n left out). Returns the backtest report's dict
    (``final``, ``metrics``, ``by_class``, ``skipped``, ``setup`` ...) with ``periods``,
    ``n_series`` and a ``monitor`` record (cutoff, horizon, series counted as 0, new series); a
    hierarchy's bottom level is the headline, each level in ``hierarchy.by_level``. Raises
    DataError when nothing can be scored."""
    fc, plain, bottom_level = served_frame(est)
    vfreq = str(plain.freq)
    if vfreq.upper() != str(freq).upper():
        raise DataError(f"{source}: its demand is read by {freq!r} periods; {what} forecasts {vfreq!r} periods "
                        f"(set demand.freq: {vfreq} in the config, or pass --freq {vfreq} with --series)")
    cutoff = pd.Timestamp(plain.last_ds_)
    periods = sorted(pd.to_datetime(fc["ds"].unique()))
    if not periods:
        raise DataError(f"{what} has no forecast rows to score")
    book_last = pd.Timestamp(df["ds"].max())
    if book_last < periods[0]:
        raise DataError(f"nothing to score yet: the book's last complete period is {_day(book_last)}, the forecast "
                        f"of {what} starts {_day(periods[0])}")
    elapsed = [d for d in periods if d <= book_last]
    grid = set(pd.DatetimeIndex(pd.to_datetime(df["ds"].unique())))
    off_grid = [d for d in elapsed if d not in grid]
    if off_grid:
        raise DataError(f"{source}: the version's forecast periods {[_day(d) for d in off_grid[:3]]} are not periods "
                        f"of the book (its periods run {_day(df['ds'].min())} .. {_day(book_last)}); the book's "
                        "periods start on other days than the version's")
    covered = pd.Timestamp(df["ds"].min()) <= cutoff  # the book reaches back to the version's last training period
    common = dict(cutoff=cutoff, elapsed=elapsed, freq=vfreq, season=int(plain._season(plain.panel_)),
                  levels=plain._levels(), covered=covered)

    def classes_of(f: Any, ids: Any = None) -> pd.Series:
        c = f.classes_.assign(unique_id=f.classes_["unique_id"].astype(str)).drop_duplicates("unique_id")
        out = c.set_index("unique_id")["demand_class"]
        return out.rename(index=ids) if ids is not None else out

    own = plain.panel_.long(len(plain.panel_.dates) - 1)
    bottom = fc if not bottom_level else fc[fc["level"] == bottom_level].drop(columns=["level"])
    report = _score(bottom, df[["unique_id", "ds", "y"]], own, classes_of(plain), below=below_top_n, **common)
    cut_by_top_n = report.pop("_top_n")
    missing, book_ids = report.pop("_missing"), report.pop("_book_ids")
    seasonality = report.pop("_seasonality")
    not_scored = ""
    if bottom_level:  # every level above the bottom: the book's demand summed to its nodes
        served = est.nodes_.set_index("unique_id")["served_id"].astype(str).to_dict()
        keys = [str(k) for k in est.levels]
        by_level: dict[str, Any] = {}
        for level in [lv for lv in est.nodes_["level"].unique() if lv != bottom_level]:
            sums = _level_sums(df, est.nodes_, keys, level)
            if sums is None:
                not_scored = (f"the levels above {bottom_level} are not scored: the book's ids do not split into "
                              f"the version's key columns {keys}")
                by_level = {}
                break
            part = _score(fc[fc["level"] == level].drop(columns=["level"]), sums, own.iloc[:0],
                          classes_of(est.upper_, served), **common)
            by_level[str(level)] = {"n_series": part["n_series"], "metrics": part["metrics"],
                                    "best_statsforecast_baseline": part["setup"].get("best_statsforecast_baseline")}
        report["hierarchy"] = {"levels": keys, "by_level": by_level}
        report["setup"]["bottom_level"] = str(bottom_level)
    new = sorted(book_ids - set(map(str, plain.panel_.uids)))
    report["periods"] = [_day(d) for d in elapsed]
    report["setup"]["horizon"] = len(periods)
    report["monitor"] = {
        "cutoff": _day(cutoff), "horizon": int(len(periods)), "periods_elapsed": len(elapsed),
        "forecast_periods": [_day(d) for d in periods], "book_last_complete_period": _day(book_last),
        "seasonality": seasonality,
        "missing_from_book_as_zero": missing if covered else [],
        "missing_from_book_not_scored": [] if covered else missing,
        "new_series_not_scored": new,
        "below_top_n_not_scored": cut_by_top_n,
        **({"not_scored": not_scored} if not_scored else {}),
    }
    return report
