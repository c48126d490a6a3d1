"""The demand backtest's report: scoring a cross-validation frame into the report dict
(``backtest_report``; ``training.demand_backtest``'s docstring describes the metrics and the JSON)
and the short-history fallback's rows apart (``short_history_report``).

Holds utilsforecast's scaled tables (MASE, RMSSE, scaled pinball: one row per series x cutoff,
computed in chunks of whole series of ``SCALED_CHUNK_ROWS`` training rows, ``_by_series_chunks``)
and their means per model and per demand class (``_metrics``, ``_metrics_by_class``,
``_summarise``), the integer series codes and in-sample scale the report computes them with, and
``BASELINES`` / ``METRIC_KEYS``. Apart from running the backtest because it is pure scoring of
frames (no forecaster): ``training.demand_hier_backtest`` and the bench score their own frames
with it. Private to ``training.demand_backtest``, which re-exports the public names; the report
reads ``SCALED_CHUNK_ROWS`` here at call time, so patch it here (it is not re-exported).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

BASELINES = ("SeasonalNaive", "AutoETS", "AutoTheta", "CrostonSBA", "TSB", "IMAPA", "ADIDA")
METRIC_KEYS = ("mase", "rmsse", "pinball", "coverage_80", "coverage_95", "bias")


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _model_names(cv: pd.DataFrame) -> list[str]:
    known = (*BASELINES, "LightGBM", "Ensemble", "Final")
    return [m for m in known if m in cv.columns]


# training rows per utilsforecast call of the scaled metrics (MASE, RMSSE, pinball): each call joins
# the training rows of its series with every cutoff (a copy of them per cutoff) before it filters
# them: the backtest's peak (the report +1,050 MiB at 20k weekly series, 3 years, 2 windows; ~5 GiB
# at 100k). In chunks of series it is bounded; the figures are the same (_by_series_chunks).
SCALED_CHUNK_ROWS = 1_000_000


def _by_series_chunks(fn: Any, base: pd.DataFrame, train: pd.DataFrame, chunk_rows: int) -> Any:
    """``fn(base_part, train_part)`` (a utilsforecast scaled metric: one row per series x cutoff,
    sorted by cutoff and series) on chunks of whole series of about ``chunk_rows`` training rows,
    put back in that order: the same table as ``fn(base, train)``, each row made from its own
    series' rows only, in the same order, so the same means. One call when ``train`` is no larger."""
    if len(train) <= chunk_rows:
        return fn(base, train)
    uniq = pd.unique(base["unique_id"])
    pos = pd.Index(uniq).get_indexer(train["unique_id"])  # -1: no forecast (utilsforecast's inner join drops them)
    n_chunks = -(-int((pos >= 0).sum()) // chunk_rows)
    if n_chunks <= 1:
        return fn(base, train)
    part_train = np.where(pos >= 0, pos * n_chunks // max(len(uniq), 1), -1)
    part_base = pd.Index(uniq).get_indexer(base["unique_id"]) * n_chunks // max(len(uniq), 1)
    out = [fn(base[part_base == k], train[part_train == k]) for k in range(n_chunks)]
    keys = [c for c in ("cutoff", "unique_id") if c in base.columns]
    return pd.concat(out, ignore_index=True).sort_values(keys, kind="stable", ignore_index=True)


def _quantile_columns(models: list[str], levels: Sequence[int]) -> tuple[list[float], dict[str, list[str]]]:
    """The quantiles of the pinball loss (the intervals' bounds and the point) and each model's columns of them."""
    lv = sorted(levels)
    qs = [*((100 - level) / 200 for level in reversed(lv)), 0.5, *(1 - (100 - level) / 200 for level in lv)]
    qcols = {m: [f"{m}-lo-{x}" for x in reversed(lv)] + [m] + [f"{m}-hi-{x}" for x in lv] for m in models}
    return qs, qcols


def _base(cv: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    cols = ["unique_id", "ds", "cutoff", "y", *[c for c in cv.columns if any(c == m or c.startswith(m + "-") for m in models)]]
    return pd.DataFrame({c: cv[c] for c in cols}, copy=False)  # the columns, not a copy of them


def _scaled_tables(base: pd.DataFrame, train: pd.DataFrame, models: list[str], seasonality: int,
                   levels: Sequence[int], keys: Sequence[str]) -> dict[str, pd.DataFrame | None]:
    """utilsforecast's scaled metrics of ``keys`` (mase, rmsse, pinball): one row per series x cutoff
    (sorted by cutoff and series), one column per model; None for a key not asked (pinball: or no
    model with every quantile column)."""
    from utilsforecast.losses import mase, rmsse, scaled_mqloss

    with np.errstate(divide="ignore", invalid="ignore"):
        ms = _by_series_chunks(lambda b, t: mase(b, models, seasonality, t), base, train, SCALED_CHUNK_ROWS) if "mase" in keys else None
        rs = _by_series_chunks(lambda b, t: rmsse(b, models, seasonality, t), base, train, SCALED_CHUNK_ROWS) if "rmsse" in keys else None
    qs, qcols = _quantile_columns(models, levels)
    have_q = [m for m in models if all(c in base.columns for c in qcols[m])]
    pin = None
    if have_q and "pinball" in keys:
        with np.errstate(divide="ignore", invalid="ignore"):
            pin = _by_series_chunks(lambda b, t: scaled_mqloss(b, {m: qcols[m] for m in have_q}, np.array(qs), seasonality, t),
                                    base, train, SCALED_CHUNK_ROWS)
    return {"mase": ms, "rmsse": rs, "pinball": pin}


def _summarise(base: pd.DataFrame, tables: dict[str, pd.DataFrame | None], models: list[str],
               keys: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """``keys`` of every model: the scaled metrics the means of ``tables``' rows (finite ones),
    coverage and bias from ``base`` (the CV rows of those series x cutoffs)."""
    from utilsforecast.losses import coverage

    out: dict[str, dict[str, float | None]] = {m: {} for m in models}
    pin = tables.get("pinball")
    for m in models:
        for key in ("mase", "rmsse"):
            tab = tables.get(key)
            if tab is not None:
                v = tab[m].replace([np.inf, -np.inf], np.nan)
                out[m][key] = _num(v.mean())
        if "pinball" in keys:
            out[m]["pinball"] = _num(pin[m].replace([np.inf, -np.inf], np.nan).mean()) if pin is not None and m in pin.columns else None
        for level in (80, 95):
            if f"coverage_{level}" not in keys:
                continue
            if f"{m}-lo-{level}" in base.columns:
                # utilsforecast gives coverage per series x cutoff (the share of its rows inside the
                # band, lo <= y <= hi) and the figure is the mean of those, each series x cutoff weighing the same: a
                # series scored on one cutoff counts half as much as one scored on two (not a mean
                # over series). It is the share of all banded actuals inside their bands only while
                # every series x cutoff has the same number of banded rows: cross_validation gives
                # h rows to each, and a band is missing for a whole cutoff (no internal window to
                # calibrate it before an early cutoff), not a single step. Rows without a band are
                # left out, not counted as misses (backtest_report says how many there were); the
                # short-history fallback's rows are not in this frame (run_backtest scores them
                # apart), so pooling every banded row of a --cv-out file gives another figure.
                # tests/test_h203_coverage_reading.py pins this definition.
                lo, hi = base[f"{m}-lo-{level}"].to_numpy(dtype=float), base[f"{m}-hi-{level}"].to_numpy(dtype=float)
                banded = np.isfinite(lo) & np.isfinite(hi)
                cov = coverage(base if banded.all() else base[banded], [m], level=level)
                out[m][f"coverage_{level}"] = _num(cov[m].mean()) if banded.any() else None
            else:
                out[m][f"coverage_{level}"] = None
        if "bias" in keys:
            ysum = float(base["y"].sum())
            out[m]["bias"] = _num((float(base[m].sum()) - ysum) / ysum) if ysum > 0 else None
    return out


def _metrics(cv: pd.DataFrame, train: pd.DataFrame, models: list[str], seasonality: int,
             levels: Sequence[int], keys: Sequence[str] = METRIC_KEYS) -> dict[str, dict[str, float | None]]:
    """``keys`` (a subset of METRIC_KEYS) of every model; each model's figures are computed on its
    own columns (utilsforecast scores every model column on its own), so asking for fewer models or
    keys gives the same figures for those asked."""
    if cv.empty:
        return {m: dict.fromkeys(keys) for m in models}
    base = _base(cv, models)
    return _summarise(base, _scaled_tables(base, train, models, seasonality, levels, keys), models, keys)


def _metrics_each_class(cv: pd.DataFrame, train: pd.DataFrame, models: list[str], seasonality: int,
                        levels: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`_metrics_by_class`'s figures the plain way: ``_metrics`` of the frame, then of each class
    on its own (its fallback where the class is not one per series x cutoff)."""
    return _metrics(cv, train, models, seasonality, levels), {
        str(k): {**_metrics(g, train, models, seasonality, levels), "_n_series": int(g["unique_id"].nunique())}
        for k, g in cv.groupby("demand_class")}


def _metrics_by_class(cv: pd.DataFrame, train: pd.DataFrame, models: list[str], seasonality: int,
                      levels: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``_metrics`` of the whole frame and of each demand class (``cv.groupby("demand_class")``),
    with utilsforecast's scaled tables computed once: a row of them (a series x cutoff) is made
    from that series' rows at that cutoff only, so a class's table is the whole one's rows of the
    class's series x cutoffs, in the same order (cutoff, series) as utilsforecast gives the class
    alone, and its means the same numbers. A series' class can change between cutoffs: rows are
    picked by (series, cutoff). ``cv``'s unique_id: the integer codes of ``backtest_report``."""
    if cv.empty or isinstance(cv["demand_class"].dtype, pd.CategoricalDtype):  # groupby's categories: per class
        return _metrics_each_class(cv, train, models, seasonality, levels)
    cls_codes, classes = pd.factorize(cv["demand_class"], sort=True)  # groupby's order; NaN (-1) in no class
    cutoffs = np.sort(cv["cutoff"].unique())
    uid = cv["unique_id"].to_numpy(dtype=np.int64)
    pair = uid * len(cutoffs) + np.searchsorted(cutoffs, cv["cutoff"].to_numpy())
    pair_class = np.full((int(uid.max()) + 1) * len(cutoffs), -2, dtype=np.int64)
    pair_class[pair] = cls_codes
    if (pair_class[pair] != cls_codes).any():  # a class per row, not per series x cutoff: each class on its own
        return _metrics_each_class(cv, train, models, seasonality, levels)
    base = _base(cv, models)
    tables = _scaled_tables(base, train, models, seasonality, levels, METRIC_KEYS)
    overall = _summarise(base, tables, models, METRIC_KEYS)
    tab_class = {}
    for key, tab in tables.items():
        if tab is not None:
            tp = tab["unique_id"].to_numpy(dtype=np.int64) * len(cutoffs) + np.searchsorted(cutoffs, tab["cutoff"].to_numpy())
            tab_class[key] = pair_class[tp]
    by_class: dict[str, Any] = {}
    for i, k in enumerate(classes):
        rows = cls_codes == i
        g = base[rows]
        sub = {key: (tab[tab_class[key] == i] if tab is not None else None) for key, tab in tables.items()}
        by_class[str(k)] = {**_summarise(g, sub, models, METRIC_KEYS), "_n_series": int(pd.unique(uid[rows]).size)}
    return overall, by_class


def _series_codes(train_ids: pd.Series, cv_ids: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer codes of the ids of the training table and of the CV frame (same code, same id)."""
    train_codes, ids = pd.factorize(train_ids)
    cv_codes = pd.Index(ids).get_indexer(cv_ids)
    new = cv_codes < 0  # a forecast series without training rows (not made by the forecaster)
    if new.any():
        extra, more = pd.factorize(pd.Series(cv_ids)[new])
        cv_codes[new] = len(ids) + extra
        ids = np.concatenate([np.asarray(ids, dtype=object), np.asarray(more, dtype=object)])
    return np.asarray(ids, dtype=object), train_codes.astype(np.int64), cv_codes.astype(np.int64)


def _in_sample_scale(train: pd.DataFrame, cutoffs: np.ndarray, seasonality: int, n_ids: int) -> np.ndarray:
    """The in-sample seasonal-naive error per series code (``train``'s unique_id: 0 .. n_ids - 1) and
    cutoff (NaN: no rows). Its own function so its copies of the training table are freed on return."""
    tr = train.sort_values(["unique_id", "ds"])
    scale = np.full((n_ids, len(cutoffs)), np.nan)
    for k, cutoff in enumerate(cutoffs):
        t = tr[tr["ds"] <= cutoff]
        d = (t["y"] - t.groupby("unique_id")["y"].shift(seasonality)).abs()
        sc = d.groupby(t["unique_id"]).mean()
        scale[sc.index.to_numpy(), k] = sc.to_numpy()
    return scale


def backtest_report(cv: pd.DataFrame, train: pd.DataFrame, *, seasonality: int, levels: Sequence[int] = (80, 95),
                    skipped: list[dict] | None = None, filled: list[dict] | None = None,
                    extra: dict[str, Any] | None = None, score: tuple[str, str] | None = None) -> dict[str, Any]:
    """Score a cross-validation frame (``DemandForecaster.cross_validation``) into the report dict.

    Series x windows whose scale (in-sample naive error) is zero are left out of the scaled
    metrics and listed in ``skipped``. ``score`` = (model, metric), e.g. ``("Final", "mase")``
    (a tuning trial's score): ``metrics`` holds that figure only, the same number as in the
    full report, and ``by_class`` is empty.
    """
    skipped = list(skipped or [])
    models = _model_names(cv) if score is None else [m for m in _model_names(cv) if m == score[0]]
    # Integer series codes instead of the ids: utilsforecast joins the training table with the
    # cutoffs for every scaled metric (15 joins per report), on strings the report's largest cost
    # at 100k series. Same figures; ids are put back where the report names a series.
    ids, train_codes, cv_codes = _series_codes(train["unique_id"], cv["unique_id"])
    train = pd.DataFrame({"unique_id": train_codes, "ds": train["ds"].to_numpy(), "y": train["y"].to_numpy()}, copy=False)
    # Zero-scale series (constant history) make scaled errors infinite: drop and report them.
    cutoffs = np.sort(cv["cutoff"].unique())
    scale = _in_sample_scale(train, cutoffs, seasonality, len(ids))
    cv_scale = scale[cv_codes, np.searchsorted(cutoffs, cv["cutoff"].to_numpy())]
    bad = ~(cv_scale > 0)
    if bad.any():
        for (u, c), _ in pd.DataFrame({"u": cv_codes[bad], "c": cv["cutoff"].to_numpy()[bad]}).groupby(["u", "c"]):
            skipped.append({"unique_id": str(ids[u]), "cutoff": str(pd.Timestamp(c).date()),
                            "reason": "in-sample seasonal-naive error is zero (constant history): scaled metrics undefined"})
    # a shallow copy with its own unique_id column (the codes), not a copy of every column
    cv = (cv[~bad] if bad.any() else cv).copy(deep=False)
    cv["unique_id"] = cv_codes[~bad]
    if score is None:  # the scaled tables once, the whole frame's and each class's figures from them
        overall, by_class = _metrics_by_class(cv, train, models, seasonality, levels)
    else:
        overall, by_class = _metrics(cv, train, models, seasonality, levels, (score[1],)), {}
    report: dict[str, Any] = {"final": "Final", "metrics": overall, "by_class": by_class}
    report["skipped"] = skipped
    report["filled"] = list(filled or [])
    report["setup"] = {"scale_seasonality": seasonality, "levels": list(levels),
                       "n_series_scored": int(cv["unique_id"].nunique()), "n_forecasts": int(len(cv)),
                       "cutoffs": [str(pd.Timestamp(c).date()) for c in sorted(cv["cutoff"].unique())], **(extra or {})}
    no_band = {}
    for m in models:
        cols = [f"{m}-{side}-{lv}" for lv in levels for side in ("lo", "hi") if f"{m}-{side}-{lv}" in cv.columns]
        if cols:
            n = int((~np.isfinite(cv[cols].to_numpy(dtype=float)).all(axis=1)).sum())
            if n:
                no_band[m] = n
    if no_band:  # left out of the coverage figures (not counted as misses)
        report["setup"]["forecasts_without_bands"] = no_band
    stat = {m: v["mase"] for m, v in report["metrics"].items() if m in BASELINES and v.get("mase") is not None}
    if stat and report["metrics"].get("Final", {}).get("mase") is not None:
        best = min(stat, key=stat.get)
        report["setup"]["best_statsforecast_baseline"] = best
        # a baseline with MASE 0 (a straight-line series that drift forecasts exactly) has no ratio:
        # null, not a ZeroDivisionError traceback after the whole backtest
        report["setup"]["final_mase_ratio_to_best_baseline"] = (
            _num(report["metrics"]["Final"]["mase"] / stat[best]) if stat[best] else None)
    return report


def short_history_report(short: pd.DataFrame, train: pd.DataFrame, levels: Sequence[int]) -> dict[str, Any]:
    """The short-history fallback's rows of a cross-validation (``final_model`` ShortHistory),
    scored apart from the headline (those series have no member forecasts): count, MAE, bias,
    coverage per level, the same per bucket of observed periods, and for reference the MAE of two
    other simple estimators on the same rows (the last observed value; the mean of every observed
    period)."""
    from models.demand_short import short_bucket

    y, f = short["y"].to_numpy(dtype=float), short["Final"].to_numpy(dtype=float)
    ok = np.isfinite(y)
    short, y, f = short[ok], y[ok], f[ok]
    if not len(short):
        return {}
    # each (series, cutoff)'s history up to the cutoff: its number of periods, last value, mean of the last 4
    tr = train[train["unique_id"].isin(set(short["unique_id"]))].sort_values(["unique_id", "ds"])
    ref = []
    for cut in short["cutoff"].unique():
        t = tr[tr["ds"] <= cut].groupby("unique_id")["y"]
        ref.append(pd.DataFrame({"n": t.size(), "last": t.last(), "mean_all": t.mean()})
                   .assign(cutoff=cut))
    ref = pd.concat(ref).reset_index().rename(columns={"index": "unique_id"}) if ref else pd.DataFrame()
    keyed = short[["unique_id", "cutoff"]].merge(ref, on=["unique_id", "cutoff"], how="left")
    n_per = keyed["n"].to_numpy(dtype=float)

    def block(m: np.ndarray) -> dict[str, Any]:
        ys, fs = y[m], f[m]
        out: dict[str, Any] = {"n_series_windows": int(short[m][["unique_id", "cutoff"]].drop_duplicates().shape[0]),
                               "n_forecasts": int(m.sum()), "mae": _num(np.mean(np.abs(ys - fs))),
                               "bias": _num((fs.sum() - ys.sum()) / ys.sum()) if ys.sum() > 0 else None}
        for lv in levels:
            lo, hi = short[f"Final-lo-{lv}"].to_numpy(dtype=float)[m], short[f"Final-hi-{lv}"].to_numpy(dtype=float)[m]
            out[f"coverage_{lv}"] = _num(np.mean((ys >= lo) & (ys <= hi)))
        for name in ("last", "mean_all"):
            v = keyed[name].to_numpy(dtype=float)[m]
            out[f"mae_{name}"] = _num(np.mean(np.abs(ys - v)))
        return out

    report = {"model": "ShortHistory", **block(np.ones(len(y), dtype=bool)),
              "reference": "mae_last: the last observed value; mae_mean_all: the mean of every observed period up "
                           "to the cutoff (same rows); not part of the headline metrics", "by_periods": {}}
    labels = short_bucket(np.nan_to_num(n_per, nan=1).astype(int))
    for b in sorted(set(labels), key=lambda x: int(x.split(":")[1].split("-")[0].rstrip("+"))):
        report["by_periods"][b.split(":")[1]] = block(labels == b)
    return report
