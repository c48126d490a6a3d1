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
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["run_backtest", "backtest_report", "check_backtest", "check_inventory_replay", "BASELINES", "METRIC_KEYS"]

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
                # utilsforecast gives coverage per series x window; every one has h points,
                # so their mean is the share of all actuals inside the interval. Forecasts without
                # a band (no internal window to calibrate it before an early cutoff) are left out,
                # not counted as misses; backtest_report says how many there were.
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


def _metrics_by_class(cv: pd.DataFrame, train: pd.DataFrame, models: list[str], seasonality: int,
                      levels: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``_metrics`` of the whole frame and of each demand class (``cv.groupby("demand_class")``),
    with utilsforecast's scaled tables computed once: a row of them (a series x cutoff) is made
    from that series' rows at that cutoff only, so a class's table is the whole one's rows of the
    class's series x cutoffs, in the same order (cutoff, series) as utilsforecast gives the class
    alone, and its means the same numbers. A series' class can change between cutoffs: rows are
    picked by (series, cutoff). ``cv``'s unique_id: the integer codes of ``backtest_report``."""
    if cv.empty or isinstance(cv["demand_class"].dtype, pd.CategoricalDtype):  # groupby's categories: per class
        return _metrics(cv, train, models, seasonality, levels), {
            str(k): {**_metrics(g, train, models, seasonality, levels), "_n_series": int(g["unique_id"].nunique())}
            for k, g in cv.groupby("demand_class")}
    cls_codes, classes = pd.factorize(cv["demand_class"], sort=True)  # groupby's order; NaN (-1) in no class
    cutoffs = np.sort(cv["cutoff"].unique())
    uid = cv["unique_id"].to_numpy(dtype=np.int64)
    pair = uid * len(cutoffs) + np.searchsorted(cutoffs, cv["cutoff"].to_numpy())
    pair_class = np.full((int(uid.max()) + 1) * len(cutoffs), -2, dtype=np.int64)
    pair_class[pair] = cls_codes
    if (pair_class[pair] != cls_codes).any():  # a class per row, not per series x cutoff: each class on its own
        return _metrics(cv, train, models, seasonality, levels), {
            str(k): {**_metrics(g, train, models, seasonality, levels), "_n_series": int(g["unique_id"].nunique())}
            for k, g in cv.groupby("demand_class")}
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


def _lead_time_bands(L: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Groups of series by replay lead time (whole periods) for the per-band figures: one group
    per value when there are at most 4, else up to 4 groups cut at the quartiles of the series'
    lead times (labels name the lead times in each, e.g. ``"L 5-7"``)."""
    vals = np.unique(L)
    if len(vals) <= 4:
        return [(f"L {int(v)}", L == v) for v in vals]
    edges = np.unique(np.quantile(L, [0.25, 0.5, 0.75], method="inverted_cdf"))
    bins = np.searchsorted(edges, L, side="left")  # L <= edges[0] -> 0, ...
    out = []
    for b in range(len(edges) + 1):
        m = bins == b
        if m.any():
            lo, hi = int(L[m].min()), int(L[m].max())
            out.append((f"L {lo}" if lo == hi else f"L {lo}-{hi}", m))
    return out


def _spread_summary(x: np.ndarray) -> float | dict[str, float | None]:
    """One number when every series has it, else its min / median / mean / max."""
    if len(x) and np.all(x == x[0]):
        return x[0].item()
    return {"min": _num(np.min(x)), "median": _num(np.median(x)), "mean": _num(np.mean(x)), "max": _num(np.max(x))}


def _epoch_fit(info: dict, short: dict | None = None) -> Any:
    """One review epoch's fit (``rolling_forecasts``' info; with ``short``, the short-history fallback's
    info at that cutoff) as :func:`models.inventory.fit_forecaster_policy` reads a fitted forecaster."""
    from types import SimpleNamespace

    sh = short or {}
    return SimpleNamespace(residuals_=info["residuals"], scale_=info["scale"], classes_=info["classes"],
                           fallback_=info.get("fallback"), served_residuals_=info.get("served_residuals") or {},
                           short_=sh.get("short"), short_residuals_=sh.get("residuals"), short_scale_=sh.get("scale"))


def _short_history_replay(est, panel, runs: list, cut_idx: list[int], common: set, *, h: int, R: int, holdout: int,
                          targets: Sequence[float], n_sims: int, random_state: int, history: pd.DataFrame,
                          L: int, sdL: float, L_all: np.ndarray | None, sdL_all: np.ndarray | None) -> dict[str, Any]:
    """The replay of the series the short-history fallback sizes (``short_history`` of
    :func:`run_inventory_replay`'s JSON), apart from the established series, whose figures it
    leaves as they are (it reads the same rolling forecasts and nothing of theirs).

    Group: every series the fallback forecasts at some review epoch (too few periods for the
    members at that cutoff, some demand before it) and that is not forecast by the members at
    every epoch. At each epoch its policy is what ``dealerml safety-stock`` would have set from
    data up to the cutoff: the fallback's (``fit_forecaster_policy`` with the demand before the
    cutoff: level-scaled error paths with the count floor, and the own-history floor for a
    lumpy past) while it is short, the members' (as the established series) once it has
    ``min_train`` periods, none (order-up-to 0: nothing stocked) before its first sale. One
    replay with the same arrivals rule and seed; the figures are read per cycle, by which
    policy sized the order that starts it: ``distribution`` / ``normal`` over the cycles the
    fallback sized (the normal formula on the fallback policy's ``mean_demand`` / ``sigma_d``,
    without the count floor), ``by_window`` the distribution's split by whether the periods the
    fallback averaged had any demand (without: level 0, the count floor, and the own-history
    floor where the past is lumpy), ``by_sizing`` by ``ltd_source`` (the fallback alone, or
    ``short_history+own_history``), ``after_graduating`` over those the members sized."""

    from models.inventory import (
        SHORT_OWN_SOURCE,
        InventoryPolicy,
        fit_forecaster_policy,
        normal_policy,
        replay,
    )
    from models.inventory_replay import replay_cycles_summary

    E = len(runs)
    T = panel.Y.shape[1]
    shorts = []
    for (fc, info), c in zip(runs, cut_idx, strict=True):
        sfc, sinfo = est._with_short(info.get("history_panel", panel), c, h, fc.iloc[:0], info)
        shorts.append((sfc, sinfo))
    group = sorted({u for sfc, _ in shorts if len(sfc) for u in sfc["unique_id"].unique()} - set(common))
    out: dict[str, Any] = {"n_series": len(group)}
    if not group:
        out["note"] = "no series was forecast by the short-history fallback at a review epoch"
        return out
    uids = np.array(group, dtype=object)
    pos = pd.Series(np.arange(panel.n), index=panel.uids)
    rows = pos.loc[uids].to_numpy()
    actual = np.nan_to_num(panel.Y[rows, T - holdout:], nan=0.0)  # before a series starts: no demand
    if L_all is not None:
        Lv = L_all[rows].astype(np.int64)
        L_fit: float | pd.Series = pd.Series(L_all[rows], index=uids)
        sdL_fit: float | pd.Series = pd.Series(sdL_all[rows], index=uids)
        sd_used = sdL_all[rows]
    else:
        Lv = np.full(len(uids), L, dtype=np.int64)
        L_fit, sdL_fit, sd_used = float(L), sdL, np.full(len(uids), sdL)
    src = np.full((len(uids), E), "none", dtype=object)
    empty_window = np.zeros((len(uids), E), dtype=bool)  # the fallback's window had no demand: level 0
    gset = set(group)
    for e, ((fc, _), (sfc, sinfo)) in enumerate(zip(runs, shorts, strict=True)):
        src[:, e] = np.where(pd.Index(uids).isin(set(fc["unique_id"]) & gset), "members", src[:, e])
        if len(sfc):
            src[:, e] = np.where(pd.Index(uids).isin(set(sfc["unique_id"])), "short", src[:, e])
            zero = set(sinfo["short"].loc[sinfo["short"]["window_total"] <= 0, "unique_id"])
            empty_window[:, e] = pd.Index(uids).isin(zero)
    S = {q: np.zeros((len(uids), E)) for q in targets}
    S_norm = {q: np.zeros((len(uids), E)) for q in targets}
    own = {q: np.zeros((len(uids), E), dtype=bool) for q in targets}  # sized short_history+own_history
    at = pd.Series(np.arange(len(uids)), index=uids)
    for e, ((fc, info), (sfc, sinfo)) in enumerate(zip(runs, shorts, strict=True)):
        fs = sfc[sfc["unique_id"].isin(gset)] if len(sfc) else sfc
        fm = fc[fc["unique_id"].isin(gset)]
        # the fallback's fit at this epoch, as fit_forecaster_policy reads it (one per epoch, every target)
        like = _epoch_fit(info, sinfo) if len(fs) else None
        members = _epoch_fit(info)  # as the established series: a fallback member's series on its error paths
        hist = info["history_panel"].long(cut_idx[e]) if "history_panel" in info else history  # as of the epoch
        for q in targets:
            if len(fs):
                # with the demand before the cutoff, as safety-stock and the service size them (a
                # lumpy past also sizes from its own history: short_history+own_history)
                pol = fit_forecaster_policy(InventoryPolicy(q, R, n_sims=n_sims, random_state=random_state + e), fs, like,
                                            L_fit, sdL_fit, history=hist).policy_
                # the sizer speaks string ids; the rows are the group's in its order
                i = pd.Index(uids.astype(str)).get_indexer(pol["unique_id"].astype(str))
                S[q][i, e] = pol["order_up_to"].to_numpy()
                own[q][i, e] = (pol["ltd_source"] == SHORT_OWN_SOURCE).to_numpy()
                S_norm[q][i, e] = normal_policy(pol["mean_demand"], pol["sigma_d"], pol["lead_time"],
                                                pol["lead_time_std"], R, q)["order_up_to"]
            if len(fm):
                pol = fit_forecaster_policy(InventoryPolicy(q, R, n_sims=n_sims, random_state=random_state + e), fm,
                                            members, L_fit, sdL_fit, history=hist).policy_
                i = at.loc[pol["unique_id"]].to_numpy()
                S[q][i, e] = pol["order_up_to"].to_numpy()
                S_norm[q][i, e] = normal_policy(pol["mean_demand"], pol["sigma_d"], pol["lead_time"],
                                                pol["lead_time_std"], R, q)["order_up_to"]
    Lrep = int(L) if L_all is None else Lv
    arrivals = {"lead_time_std": sd_used, "random_state": random_state, "series_ids": uids}
    short_cyc, grad_cyc = src == "short", src == "members"
    first = np.argmax(src != "none", axis=1)
    out.update({
        "definition": ("series the short-history fallback forecasts at some review epoch (fewer than min_train periods, "
                       "some demand before the cutoff) and the members not at every epoch; each epoch's policy from data "
                       "up to it: the fallback's while short, the members' once long enough, none (0) before the first "
                       "sale. Figures over the cycles whose order the fallback sized (by_window: split by whether the periods the "
                       "fallback averaged had demand; by_sizing: by ltd_source); after_graduating: those the members "
                       "sized"),
        "n_series_short_at_first_epoch": int((src[:, 0] == "short").sum()),
        "n_series_first_sale_in_holdout": int((first > 0).sum()),
        "n_series_graduating": int((short_cyc.any(axis=1) & grad_cyc.any(axis=1)).sum()),
        "n_policies_by_source": {"short_history": int(short_cyc.sum()), "members": int(grad_cyc.sum()),
                                 "none": int((src == "none").sum())},
        "periods_at_first_epoch": _spread_summary(np.array([float(np.isfinite(panel.Y[r, : cut_idx[0] + 1]).sum())
                                                            for r in rows])),
        "lead_time_periods": _spread_summary(Lv),
        "targets": {},
    })

    def fig(pc, mask):
        return {k: (v if k in ("n_cycles", "n_series") else _num(v)) for k, v in replay_cycles_summary(pc, mask).items()}

    for q in targets:
        rd = replay(actual, S[q], Lrep, R, per_cycle=True, **arrivals)["per_cycle"]
        rn = replay(actual, S_norm[q], Lrep, R, per_cycle=True, **arrivals)["per_cycle"]
        out["targets"][f"{q:.2f}"] = {
            "distribution": fig(rd, short_cyc), "normal": fig(rn, short_cyc),
            # level 0 (no demand in the periods averaged: only the count floor sizes them) or not
            "by_window": {"without_demand": fig(rd, short_cyc & empty_window),
                          "with_demand": fig(rd, short_cyc & ~empty_window)},
            # sized by the fallback alone, or raised to the own-history bootstrap (a lumpy past)
            "by_sizing": {"short_history": fig(rd, short_cyc & ~own[q]),
                          "short_history+own_history": fig(rd, short_cyc & own[q])},
            "after_graduating": {"distribution": fig(rd, grad_cyc), "normal": fig(rn, grad_cyc)}}
    return out


def replay_metrics(rep: dict) -> list[tuple[dict[str, float], dict[str, str]]]:
    """The MLflow metrics of a :func:`run_inventory_replay` result, as ``(metrics, slice)`` pairs per
    target: ``distribution.*`` / ``normal.*`` of the established series, and
    ``short_history.distribution.*`` / ``short_history.normal.*`` over the cycles the short-history
    fallback sized (when the replay has such series), so runs compare on both in MLflow."""
    out = []
    groups = [("", rep.get("targets") or {})]
    if (rep.get("short_history") or {}).get("n_series"):
        groups.append(("short_history.", rep["short_history"].get("targets") or {}))
    for prefix, targets in groups:
        for t, v in targets.items():
            out.append(({f"{prefix}{meth}.{k}": x for meth in ("distribution", "normal")
                         for k, x in v[meth].items() if x is not None}, {"target": t}))
    return out


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


def run_inventory_replay(series: pd.DataFrame, *, freq: str, lead_time_days: float, lead_time_std_days: float = 0.0,
                         review_period: int = 1, holdout: int = 12, targets: Sequence[float] = (0.90, 0.95, 0.98),
                         n_sims: int = 2000, forecaster_kwargs: dict[str, Any] | None = None,
                         random_state: int = 0, lead_times: pd.DataFrame | None = None,
                         check_only: bool = False, history_as_of: Any = None) -> dict[str, Any] | None:
    """Replay an (R, S) policy over the last ``holdout`` periods for both methods.

    ``check_only``: only the checks made before the first refit (a holdout that does not fit the
    table, no series long enough at the first epoch: the same errors), then None, in a fraction of
    a second; :func:`check_inventory_replay`.

    At each review epoch the forecaster is refit on data before it (rolling origin), the
    distribution-based and the normal-formula order-up-to levels are set for every target,
    and :func:`models.inventory.replay` runs the real demand through them. Also reports the
    normal formula's average on-hand at the cycle service level the distribution method
    achieved (interpolated over a grid of normal-formula targets).

    Lead times: ``lead_times`` (the order book's table as ``training.demand_config`` loads it:
    index ``unique_id``, ``lead_time_days``, ``lead_time_std_days``) gives each series its own,
    the values ``dealerml safety-stock`` sizes with; series without a row, or every series when
    it is None, take ``lead_time_days`` / ``lead_time_std_days``. Each series' mean lead time is
    rounded to whole periods (half to even) for the replay and the policy sizes with the same
    rounded value plus the unrounded spread. A series without a spread has each order arrive
    exactly L_i periods after it is placed; one with a spread has each order's lead time drawn
    from Normal(L_i, spread) cut at 0 and rounded (orders may cross; ``models.inventory_replay``),
    the distribution both policies are sized with, seeded by ``random_state`` and the series id:
    the same draws for every target and both methods. Both cycle service levels are reported
    (``cycle_service_level_end_net`` is the one the targets size for). ``by_lead_time`` in each
    target repeats the figures per lead-time band (``_lead_time_bands``).

    ``history_as_of`` (``load_demand_series``' ``info["as_of"]``): each epoch is sized from the
    history as it stood then (``rolling_forecasts``), the real demand replayed is ``series``'.
    """

    from models.demand import DemandForecaster, TooShortError
    from models.demand_data import build_panel
    from models.inventory import (
        InventoryPolicy,
        fit_forecaster_policy,
        horizon_needed,
        lead_time_periods,
        normal_policy,
        replay,
        replay_summary,
        series_lead_times,
    )
    from models.inventory_replay import on_hand_at_same_service

    t0 = time.perf_counter()
    L = int(round(lead_time_periods(lead_time_days, freq)))
    sdL = lead_time_periods(lead_time_std_days, freq)
    R = int(review_period)
    panel = build_panel(series, freq)
    T = panel.Y.shape[1]
    if holdout < R or T - holdout < 8:
        raise (ValueError if holdout < R else TooShortError)(f"holdout of {holdout} periods does not fit {T} periods with review period {R} (it needs "
                         f"a holdout of at least the review period and 8 periods before it: {max(holdout, R) + 8}+ periods)")
    book = None
    if lead_times is not None and len(lead_times):
        book = lead_times[lead_times.index.isin(set(panel.uids))]
        book = book if len(book) else None
    if book is not None:
        # every series the forecaster could forecast, so the horizon covers the longest lead time
        # that can reach the replay
        L_ser, sdL_ser = series_lead_times(panel.uids, book, lead_time_days, lead_time_std_days, freq)
        L_all = np.round(L_ser.to_numpy(dtype=float))  # half to even, as round()
        sdL_all = sdL_ser.to_numpy(dtype=float)
        h = horizon_needed(L_all, sdL_all, R)
    else:
        h = horizon_needed(L, sdL, R)
    # own-history lead-time demand for intermittent / lumpy series, as the product sizes it;
    # each epoch's policy reads only the rows before its first forecast period
    history = panel.long(T - 1)
    E = holdout // R
    cut_idx = [T - holdout - 1 + e * R for e in range(E)]
    est = DemandForecaster(freq=freq, h=h, **(forecaster_kwargs or {}))
    # the headline is the series the members forecast at every epoch, sized from their errors on a
    # selection window h periods before it: at the first epoch a series needs min_train periods and
    # some demand h periods earlier (a young table is refused here, saying how long it must be)
    need, ci = est._min_train(h), cut_idx[0] - h
    n_obs = np.isfinite(panel.Y[:, : cut_idx[0] + 1]).sum(axis=1)
    past = panel.Y[:, : max(ci, -1) + 1]
    if ci < 0 or not ((np.isfinite(past).sum(axis=1) >= need) & (np.nansum(past, axis=1) > 0)).any():
        raise TooShortError(
            f"the replay refits the forecaster at {E} review epoch{'' if E == 1 else 's'} from "
            f"{panel.dates[cut_idx[0]].date()} (the holdout's first cutoff) and replays the series its members "
            f"forecast at every epoch, sized from their errors on the {h} periods before it; no series has the "
            f"{need + h} observed periods that takes by then ({need} at its {h}-period horizon + {h}; the longest has "
            f"{int(n_obs.max())}): it needs at least {need + h + holdout} periods of history with a holdout of {holdout}")
    if check_only:
        return None
    # only Final, its residuals and scale are read here: members run at each epoch's cutoff only
    # for the series whose choice uses them (the same numbers as the full refit)
    runs = est.rolling_forecasts(series, [panel.dates[c] for c in cut_idx], h, point_only=True,
                                 history_as_of=history_as_of)
    common = set(runs[0][0]["unique_id"])
    for fc, _ in runs[1:]:
        common &= set(fc["unique_id"])
    uids = np.array(sorted(common), dtype=object)
    if len(uids) == 0:
        raise ValueError("no series is forecast at every review epoch of the holdout")
    pos = pd.Series(np.arange(panel.n), index=panel.uids)
    rows = pos.loc[uids].to_numpy()
    actual = panel.Y[rows, T - holdout:]
    if book is not None:
        Lv = L_all[rows].astype(np.int64)
        L_fit: float | pd.Series = pd.Series(L_all[rows], index=uids)
        sdL_fit: float | pd.Series = pd.Series(sdL_all[rows], index=uids)
        n_book = int(book.index.isin(set(uids)).sum())
    else:
        Lv = np.full(len(uids), L, dtype=np.int64)
        L_fit, sdL_fit = float(L), sdL
        n_book = 0
    grid = sorted(set(np.round(np.concatenate([np.linspace(0.5, 0.99, 50), [0.995, 0.999], list(targets)]), 4)))
    S_dist = {q: np.zeros((len(uids), E)) for q in targets}
    S_norm = {q: np.zeros((len(uids), E)) for q in grid}
    for e, (fc, info) in enumerate(runs):
        f = fc[fc["unique_id"].isin(common)]
        hist = info["history_panel"].long(cut_idx[e]) if "history_panel" in info else history  # as of the epoch
        # this epoch's fit as fit_forecaster_policy reads it: a series a fallback member serves is sized
        # on that member's error paths, as safety-stock and /safety_stock size it
        like = _epoch_fit(info)
        for q in targets:
            pol = fit_forecaster_policy(InventoryPolicy(q, R, n_sims=n_sims, random_state=random_state + e), f, like,
                                        L_fit, sdL_fit, history=hist)
            p = pol.policy_.set_index("unique_id").loc[uids]
            S_dist[q][:, e] = p["order_up_to"].to_numpy()
        for q in grid:
            S_norm[q][:, e] = normal_policy(p["mean_demand"], p["sigma_d"], p["lead_time"], p["lead_time_std"], R, q)["order_up_to"]
    Lrep = int(L) if book is None else Lv  # the scalar replay exactly as before without a book
    sd_used = np.asarray(sdL_fit, dtype=float) if book is not None else np.full(len(uids), sdL)
    # each order's lead time drawn from the sizing's distribution where there is a spread; the
    # same draws (seed, series id) for every target and both methods
    arrivals = {"lead_time_std": sd_used, "random_state": random_state, "series_ids": uids}
    curve = [(q, replay(actual, S_norm[q], Lrep, R, per_series=True, **arrivals)) for q in grid]
    bands = _lead_time_bands(Lv)
    no_cycle = Lv + R > holdout
    counts = pd.Series(Lv).value_counts().sort_index()
    out: dict[str, Any] = {
        "lead_times_source": "book" if book is not None else "config",
        "lead_time_periods": _spread_summary(Lv),
        "lead_time_std_periods": _spread_summary(sd_used),
        "lead_time_distribution": {str(int(k)): int(v) for k, v in counts.items()},
        "n_series_lead_time_from_book": n_book,
        "n_series_lead_time_from_config": int(len(uids) - n_book),
        "config_lead_time_periods": L, "config_lead_time_std_periods": sdL,
        "arrivals": (("random: each order of a series with a lead-time spread takes a lead time drawn from "
                      "Normal(mean, spread) cut at 0 and rounded to whole periods, the distribution the policies are "
                      f"sized with (seed {random_state}, a stream per series; orders may cross); series without a "
                      "spread: deterministic") if np.any(sd_used > 0) else
                     "deterministic: each series' orders arrive its mean lead time (rounded to whole periods) after they are placed"),
        "cycle_service_level_definitions": {
            "cycle_service_level_end_net": "share of cycles ending with net inventory >= 0 (no backorder outstanding): "
                                           "P(demand over lead time + review <= order-up-to), what the target sizes for",
            "cycle_service_level": "share of cycles in which no demand went unserved from stock (a cycle with backorders "
                                   "but no demand of its own counts as served): >= the end-net one"},
        "review_period": R, "holdout_periods": holdout, "horizon_periods": h, "n_series": int(len(uids)),
        "n_series_without_full_cycle": int(no_cycle.sum()),
        "lead_time_bands": [{"band": name, "lead_time_periods": [int(Lv[m].min()), int(Lv[m].max())],
                             "n_series": int(m.sum()), "n_series_without_full_cycle": int((no_cycle & m).sum())}
                            for name, m in bands],
        "targets": {},
    }
    for q in targets:
        rd = replay(actual, S_dist[q], Lrep, R, per_series=True, **arrivals)
        rn_full = next(r for g, r in curve if abs(g - q) < 1e-9)
        rn = {k: v for k, v in rn_full.items() if k != "per_series"}
        # the normal formula's on-hand at the service the distribution method achieved, read on
        # the target's definition (cycles ending without a backorder); the no-unserved-demand
        # reading, which this figure used before, kept under its own name
        normals = [r for _, r in curve]
        same = on_hand_at_same_service(normals, rd["cycle_service_level_end_net"])
        same_old = on_hand_at_same_service(normals, rd["cycle_service_level"], reading="cycle_service_level")
        out["targets"][f"{q:.2f}"] = {
            "distribution": {k: _num(v) for k, v in rd.items() if k != "per_series"},
            "normal": {k: _num(v) for k, v in rn.items()},
            "normal_avg_on_hand_at_same_service": _num(same),
            "normal_avg_on_hand_at_same_cycle_service_level": _num(same_old),
            "by_lead_time": {
                name: {meth: {k: (v if k in ("n_cycles", "n_series") else _num(v))
                              for k, v in replay_summary(r["per_series"], m).items()}
                       for meth, r in (("distribution", rd), ("normal", rn_full))}
                for name, m in bands
            },
        }
    # the short-history fallback's series, replayed and reported apart (the figures above are
    # those of the established series, as before)
    out["short_history"] = _short_history_replay(
        est, panel, runs, cut_idx, common, h=h, R=R, holdout=holdout, targets=targets, n_sims=n_sims,
        random_state=random_state, history=history, L=L, sdL=sdL,
        L_all=L_all if book is not None else None, sdL_all=sdL_all if book is not None else None)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
