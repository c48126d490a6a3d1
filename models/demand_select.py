"""Choosing a forecast per demand class (or per series) and calibrating intervals, both from
rolling-origin windows that end on or before the forecast cutoff.

Errors are scaled per series by its in-sample one-step naive mean absolute error as of the
window's cutoff, so series of any size pool together. Intervals are split-conformal: the
empirical quantiles of the signed scaled errors, per demand class pooled over forecast steps
(per step only with ``by_step=True``), over everything when a class has fewer than ``min_group``
errors.

``selection`` strings: ``class``, ``series`` or ``global``, optionally with ``+median``
(e.g. ``class+median``): the chosen forecast is then moved by the median of its scaled errors
per demand class on the same windows (:func:`final_point`). The mean absolute error (MASE) is
minimised by the median, and for intermittent and lumpy demand the median lies well below the
mean that the members forecast.

``conformal`` strings (:data:`CONFORMAL`) say which errors of the chosen forecast calibrate its
band. ``in_sample``: the errors on the same windows that made the choice (the winner of a window
tends to have done well there, so these may be optimistic). ``cross_fit``: the errors of each
selection window come from the choice (and re-centring) made on the other windows only
(:func:`crossfit_point`); with one window there is nothing to leave out and ``in_sample`` is used.
``cross_fit_series``: the same with two fixed folds of series instead of windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "naive_scale", "parse_selection", "select_models", "final_point", "conformal_table", "apply_conformal",
    "nest_intervals", "crossfit_point", "CONFORMAL",
]

SELECTIONS = ("class", "series", "global")
CONFORMAL = ("in_sample", "cross_fit", "cross_fit_series")


def naive_scale(Y: np.ndarray, upto: int) -> np.ndarray:
    """Per-series mean |y_t - y_{t-1}| over observed periods <= upto (fallback mean |y|, then 1)."""
    sub = Y[:, : upto + 1]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d = np.nanmean(np.abs(np.diff(sub, axis=1)), axis=1) if sub.shape[1] > 1 else np.full(len(sub), np.nan)
        m = np.nanmean(np.abs(sub), axis=1)
    s = np.where(np.isfinite(d) & (d > 0), d, m)
    return np.where(np.isfinite(s) & (s > 0), s, 1.0)


def parse_selection(how: str) -> tuple[str, bool]:
    """``"class+median"`` -> ``("class", True)``; ``"series"`` -> ``("series", False)``."""
    base, _, extra = str(how).partition("+")
    if base not in SELECTIONS or extra not in ("", "median"):
        raise ValueError(
            f"selection must be one of {list(SELECTIONS)}, optionally with '+median' (e.g. 'class+median'); got {how!r}"
        )
    return base, extra == "median"


def _missing_note(miss: pd.Series, rows: int, dropped: pd.Series) -> str:
    """``"A: 20 of 100 rows without a forecast"`` for each dropped candidate ('' when none)."""
    return "; ".join(f"{c}: {int(miss[c])} of {rows} rows without a forecast" for c in dropped.index[dropped])


def select_models(
    hist: pd.DataFrame,
    candidates: Sequence[str],
    classes: pd.Series,
    how: str = "class",
    min_class_series: int = 20,
) -> tuple[pd.Series, pd.DataFrame]:
    """Pick the candidate with the lowest mean scaled absolute error, compared like with like.

    ``hist`` has ``unique_id``, ``y``, ``scale`` and one column per candidate; ``classes``
    maps unique_id -> demand class. ``how`` is ``class`` (one choice per demand class),
    ``series`` (per series, falling back to its class's choice when it has no errors) or
    ``global`` (a ``+median`` suffix is accepted and ignored here: see :func:`final_point`).
    A class with fewer than ``min_class_series`` series takes the global choice.

    Missing forecasts. A group (a demand class, a series, or everything) is judged on its rows
    (series x window x step) with a known ``y`` and ``scale`` where at least one candidate has a
    forecast. Only the candidates that miss the fewest of those rows compete there (normally the
    ones that miss none); a candidate missing more is dropped from that group, and the others are
    scored on the rows where all of them have a forecast (every row of the group when they miss
    none). A mean that skipped a candidate's missing rows would score it on a part of the group
    only: a member with no forecast on the 5 hardest of 25 series won with 0.50 against 4.48.
    Dropping is simpler than scoring everyone on the shared rows, where one member that failed
    on most series would leave every candidate judged on a handful of rows.

    Returns (choice per unique_id, score table class x candidate + row ``all``). A dropped
    candidate's score is NaN and the table's column ``dropped`` names it with the rows it missed
    (``"A: 20 of 100 rows without a forecast"``; '' when none was dropped). Drops from the choice of
    a single series (``how="series"``) are not listed.
    """
    how, _ = parse_selection(how)
    cands = [c for c in candidates if c in hist.columns]
    err = pd.DataFrame({c: (hist[c] - hist["y"]).abs() / hist["scale"] for c in cands})
    known = (hist["y"].notna() & hist["scale"].notna()).to_numpy()
    has = pd.DataFrame({c: hist[c].notna().to_numpy() & known for c in cands}, index=err.index)
    row_in = has.any(axis=1)  # a row of its groups: some candidate forecast it
    lacks = (~has).where(row_in, False)
    dclass = hist["unique_id"].map(classes).fillna("unknown").to_numpy()
    uid = hist["unique_id"].to_numpy()

    def like_with_like(keys) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
        """Errors kept only where the row's group compares its competing candidates, per row;
        missing counts, competing candidates and row counts per group."""
        miss = lacks.groupby(keys).sum()
        compete = miss.eq(miss.min(axis=1), axis=0)
        at = compete.reindex(keys).to_numpy()
        common = (has.to_numpy() | ~at).all(axis=1) & row_in.to_numpy()
        kept = err.where(at & common[:, None])
        return kept, miss, compete, row_in.groupby(keys).sum()

    kept_all, miss_all, comp_all, rows_all = like_with_like(np.zeros(len(err), dtype=int))
    glob = kept_all[cands].mean()
    global_best = str(glob.idxmin()) if glob.notna().any() else cands[0]
    kept_cls, miss_cls, comp_cls, rows_cls = like_with_like(dclass)
    by_class = kept_cls.groupby(dclass)[cands].mean()
    n_series = pd.Series(uid).groupby(dclass).nunique()
    # a class with few series has too few errors for its own choice: it takes the global one
    class_best = {
        k: (str(row.idxmin()) if row.notna().any() and n_series[k] >= min_class_series else global_best)
        for k, row in by_class.iterrows()
    }
    uids = classes.index
    if how == "global":
        choice = pd.Series(global_best, index=uids)
    else:
        choice = pd.Series([class_best.get(classes[u], global_best) for u in uids], index=uids)
        if how == "series":
            kept_ser, *_ = like_with_like(uid)
            per = kept_ser.groupby(uid)[cands].mean()
            ok = per.notna().any(axis=1)
            best = per[ok].idxmin(axis=1)
            choice.loc[best.index.intersection(uids)] = best.loc[best.index.intersection(uids)]
    scores = by_class.copy()
    scores.loc["all"] = glob
    notes = {k: _missing_note(miss_cls.loc[k], int(rows_cls[k]), ~comp_cls.loc[k]) for k in by_class.index}
    if len(miss_all):
        notes["all"] = _missing_note(miss_all.iloc[0], int(rows_all.iloc[0]), ~comp_all.iloc[0])
    scores["dropped"] = pd.Series(notes, dtype=object).reindex(scores.index).fillna("")
    return choice, scores


def _pick(frame: pd.DataFrame, candidates: Sequence[str], choice: pd.Series) -> np.ndarray:
    sel = frame["unique_id"].map(choice).fillna(candidates[0]).to_numpy()
    idx = pd.Index(list(candidates)).get_indexer(sel)
    if (idx < 0).any():
        raise ValueError(f"choice names a model that is not a candidate: {sorted(set(sel[idx < 0]))[:3]}; candidates {list(candidates)}")
    return frame[list(candidates)].to_numpy(dtype=float)[np.arange(len(frame)), idx]


def final_point(
    fc: pd.DataFrame,
    hist: pd.DataFrame | None,
    candidates: Sequence[str],
    choice: pd.Series,
    classes: pd.Series,
    scale: np.ndarray,
    how: str = "class",
    min_group: int = 20,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The served point forecast for the rows of ``fc`` and of ``hist`` (for its residuals).

    Each row takes its series' chosen candidate. With ``how`` ending in ``+median`` the forecast
    is then moved by ``m_k * scale``, where ``m_k`` is the median scaled error
    ``(y - forecast) / scale`` of the chosen forecasts of demand class ``k`` on ``hist`` (the
    rolling windows before the cutoff; all classes pooled when a class has fewer than
    ``min_group`` errors), and clipped at 0. ``scale`` is the per-row scale of ``fc``; ``hist``
    carries its own ``scale`` column. Returns (forecast for fc, forecast for hist or None).
    """
    _, recentre = parse_selection(how)
    point = _pick(fc, candidates, choice)
    if hist is None or len(hist) == 0:
        return point, None
    hpoint = _pick(hist, candidates, choice)
    if not recentre:
        return point, hpoint
    r = (hist["y"].to_numpy(dtype=float) - hpoint) / hist["scale"].to_numpy(dtype=float)
    hcls = hist["unique_id"].map(classes).fillna("unknown").to_numpy()
    ok = np.isfinite(r)
    if not ok.any():
        return point, hpoint
    pooled = float(np.median(r[ok]))
    grp = pd.Series(r[ok]).groupby(hcls[ok])
    med = grp.median().where(grp.size() >= min_group, pooled)
    fcls = fc["unique_id"].map(classes).fillna("unknown")
    shift_fc = fcls.map(med).fillna(pooled).to_numpy(dtype=float)
    shift_h = pd.Series(hcls).map(med).fillna(pooled).to_numpy(dtype=float)
    point = np.clip(point + shift_fc * np.asarray(scale, dtype=float), 0.0, None)
    hpoint = np.clip(hpoint + shift_h * hist["scale"].to_numpy(dtype=float), 0.0, None)
    return point, hpoint


def crossfit_point(
    hist: pd.DataFrame,
    candidates: Sequence[str],
    classes: pd.Series,
    how: str = "class",
    mode: str = "cross_fit",
    min_class_series: int = 20,
) -> np.ndarray | None:
    """The final forecast for every row of ``hist`` from a choice made without that row's group.

    Groups: the selection windows (``hist["cutoff"]``) for ``cross_fit``; two folds of series
    (a fixed CRC32 hash of ``unique_id``, so reruns agree) for ``cross_fit_series``, where a class
    needs ``min_class_series // 2`` series in the other fold for its own choice (the served rule's
    threshold on half the series). Each group's rows take the candidate chosen by
    :func:`select_models` on the other groups' errors and, with ``+median``, that group's shift
    (:func:`final_point`). Returns None when there is only one group (nothing to leave out).
    """
    import zlib

    if mode not in CONFORMAL or mode == "in_sample":
        raise ValueError(f"crossfit_point mode must be 'cross_fit' or 'cross_fit_series'; got {mode!r}")
    if mode == "cross_fit":
        groups = pd.to_datetime(hist["cutoff"]).to_numpy()
    else:
        groups = np.array([zlib.crc32(str(u).encode()) % 2 for u in hist["unique_id"]])
        min_class_series = max(1, min_class_series // 2)
    uniq = pd.unique(groups)
    if len(uniq) < 2:
        return None
    out = np.full(len(hist), np.nan)
    for g in uniq:
        held = groups == g
        rest, this = hist[~held], hist[held]
        choice, _ = select_models(rest, candidates, classes, how, min_class_series)
        out[held], _ = final_point(this, rest, candidates, choice, classes, this["scale"].to_numpy(dtype=float), how)
    return out


def conformal_table(
    resid: pd.DataFrame, levels: Sequence[int], min_group: int = 50, by_step: bool = False
) -> dict[tuple[str, int], dict[int, tuple[float, float]]]:
    """Quantiles of signed scaled errors per demand class (pooled over steps) with a pooled fallback.

    ``resid`` has ``demand_class``, ``step`` and ``r`` = (y - forecast) / scale. Keys
    ``(class, 0)`` (pooled over steps), ``("*", 0)`` (everything) and, with ``by_step``,
    ``(class, step)``. Values: level -> (lower, upper) quantile of r with the finite-sample
    conformal correction. Pooling over steps is the default: on validation windows before the
    benchmark windows (BENCHMARKS.md) per-step tables from two windows were too noisy and
    under-covered at 80 %.
    """
    resid = resid[np.isfinite(resid["r"])]
    table: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}

    def q(r: np.ndarray) -> dict[int, tuple[float, float]]:
        n = len(r)
        out = {}
        for lv in levels:
            a = 1 - lv / 100
            hi = min(1.0, np.ceil((n + 1) * (1 - a / 2)) / n)
            lo = max(0.0, np.floor((n + 1) * (a / 2)) / n)
            out[int(lv)] = (float(np.quantile(r, lo, method="lower")), float(np.quantile(r, hi, method="higher")))
        return out

    if len(resid) == 0:
        return table
    table[("*", 0)] = q(resid["r"].to_numpy())
    for k, g in resid.groupby("demand_class"):
        if len(g) >= min_group:
            table[(str(k), 0)] = q(g["r"].to_numpy())
        for s, gs in g.groupby("step") if by_step else ():
            if len(gs) >= min_group:
                table[(str(k), int(s))] = q(gs["r"].to_numpy())
    return table


def apply_conformal(
    point: np.ndarray,
    scale: np.ndarray,
    dclass: np.ndarray,
    step: np.ndarray,
    table: dict[tuple[str, int], dict[int, tuple[float, float]]],
    levels: Sequence[int],
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Intervals point + q * scale (clipped at 0) from a :func:`conformal_table`."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    n = len(point)
    # resolve each distinct (class, step) once, then map rows to it
    keys = pd.DataFrame({"k": np.asarray(dclass).astype(str), "s": np.asarray(step).astype(int)})
    uniq, inv = np.unique(keys["k"] + "|" + keys["s"].astype(str), return_inverse=True)
    resolved = []
    for u in uniq:
        k, st = u.split("|")
        resolved.append(table.get((k, int(st))) or table.get((k, 0)) or table.get(("*", 0)))
    for lv in levels:
        lo = np.full(n, np.nan)
        hi = np.full(n, np.nan)
        if table:
            qlo = np.array([r[int(lv)][0] for r in resolved])
            qhi = np.array([r[int(lv)][1] for r in resolved])
            lo, hi = qlo[inv], qhi[inv]
        lo = np.clip(point + lo * scale, 0.0, None)
        hi = np.clip(point + hi * scale, 0.0, None)
        out[int(lv)] = (lo, hi)
    return out


def nest_intervals(df: pd.DataFrame, model: str, levels: Sequence[int]) -> None:
    """Clip a model's point and bounds at 0 and make the bounds nested (in place).

    Lower bounds are sorted so the widest level gets the smallest, upper bounds the same way
    up; this also repairs libraries that label lower bounds in the wrong order.
    """
    lv = sorted(int(x) for x in levels)
    if model in df.columns:
        df[model] = df[model].clip(lower=0.0)
    lo_cols = [f"{model}-lo-{x}" for x in lv]
    hi_cols = [f"{model}-hi-{x}" for x in lv]
    if not all(c in df.columns for c in lo_cols + hi_cols):
        return
    lo = np.clip(df[lo_cols].to_numpy(dtype=float), 0.0, None)
    hi = np.clip(df[hi_cols].to_numpy(dtype=float), 0.0, None)
    lo = -np.sort(-lo, axis=1)  # level ascending -> lower bound descending
    hi = np.sort(hi, axis=1)
    lo = np.minimum(lo, hi)
    df[lo_cols] = lo
    df[hi_cols] = hi
