"""Choosing a forecast per demand class (or per series) from rolling-origin windows that end on or
before the forecast cutoff; the chosen forecast's intervals come from the same windows
(:mod:`models.demand_conformal`).

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
``cross_fit_series``: the same with two fixed folds of series instead of windows. A series served
by a fallback candidate (:func:`pick_served`) takes the band of that candidate's errors instead
(:mod:`models.demand_fallback_bands`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "naive_scale", "parse_selection", "select_models", "final_point", "crossfit_point", "CONFORMAL", "Ranking",
    "select_ranked", "final_served", "pick_served", "FALLBACK_COLUMNS",
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


class Ranking:
    """The order in which a series' candidates serve it: its choice first, then the others by the
    scores of the group that made the choice (:func:`select_ranked`), best first. A served forecast
    falls back along it when the chosen candidate has no forecast (:func:`final_served`).

    ``how="series"``: the series' own scored candidates, then its class's order; a class with its
    own choice: the class's scored candidates, then the global order; otherwise (a small class,
    ``how="global"``, a series unknown to the windows) the global order. Within a group the
    candidates dropped for missing rows (score NaN, :func:`select_models`) come after the scored
    ones, in the next group's order (the global order ends in the candidates' own order)."""

    def __init__(self, candidates: Sequence[str], glob: pd.Series | None = None,
                 by_class: dict[str, list[str]] | None = None, classes: pd.Series | None = None,
                 per_series: pd.DataFrame | None = None, first: str | None = None) -> None:
        self.candidates = list(candidates)
        scored = [] if glob is None else list(glob.dropna().sort_values(kind="stable").index)
        if first is not None:
            scored = [first]
        self.glob = _then(scored, self.candidates)
        self.by_class = {str(k): _then(v, self.glob) for k, v in (by_class or {}).items()}
        self.classes = classes if classes is not None else pd.Series(dtype=object)
        self.per_series = per_series
        self.no_windows = glob is None

    @classmethod
    def fixed(cls, first: str, candidates: Sequence[str]) -> Ranking:
        """No selection windows: ``first`` (the default choice), then the candidates in their order."""
        return cls(candidates, first=first)

    def order(self, uid) -> tuple[list[str], str]:
        """(candidates in serving order, what ranked them, in words) for the series ``uid``."""
        if self.no_windows:
            return self.glob, "the default order (no selection windows before the cutoff)"
        k = self.classes.get(uid)
        base, by = (self.by_class[str(k)], f"its demand class {k}") if str(k) in self.by_class else (self.glob, "all series")
        if self.per_series is not None and uid in self.per_series.index:
            row = self.per_series.loc[uid].dropna()
            if len(row):
                return _then(list(row.sort_values(kind="stable").index), base), "its own errors"
        return base, by


def _then(first: Sequence[str], rest: Sequence[str]) -> list[str]:
    """``first``, then the items of ``rest`` not in it."""
    first = list(first)
    return first + [c for c in rest if c not in first]


def select_models(
    hist: pd.DataFrame,
    candidates: Sequence[str],
    classes: pd.Series,
    how: str = "class",
    min_class_series: int = 20,
) -> tuple[pd.Series, pd.DataFrame]:
    """:func:`select_ranked` without the :class:`Ranking`."""
    choice, scores, _ = select_ranked(hist, candidates, classes, how, min_class_series)
    return choice, scores


def select_ranked(
    hist: pd.DataFrame,
    candidates: Sequence[str],
    classes: pd.Series,
    how: str = "class",
    min_class_series: int = 20,
) -> tuple[pd.Series, pd.DataFrame, Ranking]:
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

    Returns (choice per unique_id, score table class x candidate + row ``all``, the
    :class:`Ranking` the served forecast falls back along). A dropped
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
    per = None
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
    own = {} if how == "global" else {
        k: list(row.dropna().sort_values(kind="stable").index) for k, row in by_class.iterrows()
        if row.notna().any() and n_series[k] >= min_class_series}
    ranking = Ranking(cands, glob, own, classes, per)
    scores = by_class.copy()
    scores.loc["all"] = glob
    notes = {k: _missing_note(miss_cls.loc[k], int(rows_cls[k]), ~comp_cls.loc[k]) for k in by_class.index}
    if len(miss_all):
        notes["all"] = _missing_note(miss_all.iloc[0], int(rows_all.iloc[0]), ~comp_all.iloc[0])
    scores["dropped"] = pd.Series(notes, dtype=object).reindex(scores.index).fillna("")
    return choice, scores, ranking


def _pick(frame: pd.DataFrame, candidates: Sequence[str], choice: pd.Series) -> np.ndarray:
    return _chosen(frame, candidates, choice)[0]


def _chosen(frame: pd.DataFrame, candidates: Sequence[str], choice: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(the chosen candidate's value, its name) per row of ``frame``."""
    sel = frame["unique_id"].map(choice).fillna(candidates[0]).to_numpy()
    idx = pd.Index(list(candidates)).get_indexer(sel)
    if (idx < 0).any():
        raise ValueError(f"choice names a model that is not a candidate: {sorted(set(sel[idx < 0]))[:3]}; candidates {list(candidates)}")
    return frame[list(candidates)].to_numpy(dtype=float)[np.arange(len(frame)), idx], sel.astype(object)


FALLBACK_COLUMNS = ["unique_id", "cutoff", "chosen", "served", "missing", "periods", "ranked_by", "reason"]


def pick_served(frame: pd.DataFrame, candidates: Sequence[str], choice: pd.Series,
                ranking: Ranking | None) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The served candidate's value and name per row of ``frame``, and the record of fallbacks.

    A series (at one ``cutoff`` when ``frame`` has that column) is served by its chosen candidate
    when that has a forecast on every one of its rows; otherwise by the first candidate of its
    :class:`Ranking` order that has, on all its rows (one candidate over the whole horizon, never
    a mix of steps); when none has, its rows are NaN and the name None (not forecast). Without a
    ``ranking`` the chosen candidate's values are returned as they are (NaN included).

    The record (:data:`FALLBACK_COLUMNS`) has one row per series (and cutoff) that fell back or
    was not forecast: ``chosen``, ``served`` (None: not forecast), ``missing`` (rows the chosen
    candidate has no forecast for, of ``periods``), ``ranked_by`` and ``reason`` in words."""
    point, used = _chosen(frame, candidates, choice)
    empty = pd.DataFrame(columns=FALLBACK_COLUMNS)
    bad = ~np.isfinite(point)
    if ranking is None or not bad.any():
        return point, used, empty
    cands = list(candidates)
    vals = frame[cands].to_numpy(dtype=float)
    keys = ["unique_id", "cutoff"] if "cutoff" in frame.columns else ["unique_id"]
    grp = frame[keys].reset_index(drop=True)
    hit = grp.loc[bad].drop_duplicates()
    rows_of = grp.groupby(keys if len(keys) > 1 else keys[0], sort=False).indices
    records = []
    for key in hit.itertuples(index=False):
        key = tuple(key)
        rows = rows_of[key if len(keys) > 1 else key[0]]
        uid = key[0]
        chosen = str(used[rows[0]])
        order, by = ranking.order(uid)
        order = _then([chosen], [c for c in order if c in cands])
        have = np.isfinite(vals[rows]).sum(axis=0)
        n = len(rows)
        miss = {c: n - int(have[cands.index(c)]) for c in order}
        served = next((c for c in order if miss[c] == 0), None)
        where = f"chosen by {by}" if by != "its own errors" else "chosen on its own errors"
        if served is None:
            point[rows] = np.nan
            used[rows] = None
            tried = ", ".join(f"{c} {miss[c]}" for c in order)
            reason = (f"not forecast: no candidate has a forecast for all {n} periods ({chosen} {where}; periods "
                      f"without a forecast of {n}: {tried})")
        else:
            point[rows] = vals[rows, cands.index(served)]
            used[rows] = served
            reason = (f"{chosen} ({where}) has no forecast for {miss[chosen]} of {n} periods; served by {served}, "
                      f"the next best ranked by {by} on the selection windows with a forecast for every period")
        records.append({"unique_id": uid, "cutoff": key[1] if len(keys) > 1 else None, "chosen": chosen,
                        "served": served, "missing": miss[chosen], "periods": n, "ranked_by": by, "reason": reason})
    return point, used, pd.DataFrame(records, columns=FALLBACK_COLUMNS)


def final_served(
    fc: pd.DataFrame,
    hist: pd.DataFrame | None,
    candidates: Sequence[str],
    choice: pd.Series,
    classes: pd.Series,
    scale: np.ndarray,
    how: str = "class",
    min_group: int = 20,
    ranking: Ranking | None = None,
) -> dict:
    """:func:`final_point` with the fallback: each series of ``fc`` and of ``hist`` takes the
    candidate :func:`pick_served` serves it by (its choice, or the next one of its ``ranking`` that
    has a forecast for every period), then the ``+median`` move as in :func:`final_point` (learnt
    on the served forecasts of ``hist``). Returns ``point`` and ``hpoint`` (as
    :func:`final_point`), ``used`` (the served candidate per row of ``fc``, None where not forecast),
    ``fallback`` (the record of ``fc``'s series that fell back or were not forecast) and ``shift``
    (the ``+median`` move of each row of ``hist``, in scaled units; None without it: what
    :func:`models.demand_fallback_bands.served_tables` moves every candidate's errors by)."""
    _, recentre = parse_selection(how)
    point, used, record = pick_served(fc, candidates, choice, ranking)
    out = {"point": point, "hpoint": None, "used": used, "fallback": record, "shift": None}
    if hist is None or len(hist) == 0:
        return out
    hpoint = pick_served(hist, candidates, choice, ranking)[0]
    out["hpoint"] = hpoint
    if not recentre:
        return out
    r = (hist["y"].to_numpy(dtype=float) - hpoint) / hist["scale"].to_numpy(dtype=float)
    hcls = hist["unique_id"].map(classes).fillna("unknown").to_numpy()
    ok = np.isfinite(r)
    if not ok.any():
        return out
    pooled = float(np.median(r[ok]))
    grp = pd.Series(r[ok]).groupby(hcls[ok])
    med = grp.median().where(grp.size() >= min_group, pooled)
    fcls = fc["unique_id"].map(classes).fillna("unknown")
    shift_fc = fcls.map(med).fillna(pooled).to_numpy(dtype=float)
    shift_h = pd.Series(hcls).map(med).fillna(pooled).to_numpy(dtype=float)
    out["point"] = np.clip(point + shift_fc * np.asarray(scale, dtype=float), 0.0, None)
    out["hpoint"] = np.clip(hpoint + shift_h * hist["scale"].to_numpy(dtype=float), 0.0, None)
    out["shift"] = shift_h
    return out


def final_point(
    fc: pd.DataFrame,
    hist: pd.DataFrame | None,
    candidates: Sequence[str],
    choice: pd.Series,
    classes: pd.Series,
    scale: np.ndarray,
    how: str = "class",
    min_group: int = 20,
    ranking: Ranking | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The served point forecast for the rows of ``fc`` and of ``hist`` (for its residuals).

    Each row takes its series' chosen candidate (with a ``ranking``, the next one where the chosen
    has no forecast: :func:`final_served`). With ``how`` ending in ``+median`` the forecast
    is then moved by ``m_k * scale``, where ``m_k`` is the median scaled error
    ``(y - forecast) / scale`` of the chosen forecasts of demand class ``k`` on ``hist`` (the
    rolling windows before the cutoff; all classes pooled when a class has fewer than
    ``min_group`` errors), and clipped at 0. ``scale`` is the per-row scale of ``fc``; ``hist``
    carries its own ``scale`` column. Returns (forecast for fc, forecast for hist or None).
    """
    out = final_served(fc, hist, candidates, choice, classes, scale, how, min_group, ranking)
    return out["point"], out["hpoint"]


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
        choice, _, ranking = select_ranked(rest, candidates, classes, how, min_class_series)
        out[held], _ = final_point(this, rest, candidates, choice, classes, this["scale"].to_numpy(dtype=float), how,
                                   ranking=ranking)
    return out
