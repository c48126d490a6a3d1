"""Bands of the series a fallback candidate serves (:func:`models.demand_select.pick_served`).

``Final``'s conformal table (:func:`models.demand_conformal.conformal_table`) holds the errors of the
candidates chosen per class (or series) on the selection windows. A series whose chosen candidate
has no forecast is served by the next one of its ranking, so its band is calibrated on that
candidate's errors instead (:func:`served_tables`, :func:`fallback_bands`): the errors ``Final``
would have made had it served, moved by the same ``+median`` shift, pooled per demand class as
``Final``'s own (in-sample errors: with ``conformal="cross_fit"`` only the chosen series' band is
cross-fitted). Where no table of the serving candidate's errors exists, the band is the widest of
the kept ones for the series' class, and the fallback record's ``reason`` says so.

Safety stock follows the band: :func:`served_residuals` keeps the same errors as scaled error paths
(``DemandForecaster.served_residuals_``), which :func:`models.inventory.fit_forecaster_policy` pools
per demand class for a fallback series instead of the chosen candidates' ``residuals_``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.demand_conformal import apply_conformal, conformal_table, nest_intervals

__all__ = ["served_tables", "fallback_bands", "served_residuals", "note_unsized"]


def served_tables(
    hist: pd.DataFrame | None,
    candidates: Sequence[str],
    classes: pd.Series,
    levels: Sequence[int],
    shift: np.ndarray | None = None,
    have: dict[str, dict] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, dict[tuple[str, int], dict[int, tuple[float, float]]]]:
    """Per candidate, the :func:`conformal_table` of the errors the served forecast would have made
    on the selection windows ``hist`` had that candidate served: ``(y - forecast) / scale`` of the
    candidate's forecasts, moved by Final's ``+median`` shift (``shift``, per row of ``hist`` in
    scaled units, from :func:`final_served`; None without it) and clipped at 0 as Final is.

    Final's own table holds the errors of the chosen candidates; a series served by a fallback
    candidate (:func:`pick_served`) takes its band from this one instead (:func:`fallback_bands`).
    ``have``: tables of the candidates' own errors already made on the same ``hist`` (reused when
    there is no shift: the same numbers); ``only``: the candidates to make (default all). A
    candidate without a finite error on the windows gets an empty table."""
    if hist is None or not len(hist):
        return {}
    dcls = hist["unique_id"].map(classes).fillna("unknown").to_numpy()
    out = {}
    for m in [c for c in candidates if (only is None or c in only) and c in hist.columns]:
        if shift is None and have is not None and m in have:
            out[m] = have[m]
            continue
        out[m] = conformal_table(pd.DataFrame({"demand_class": dcls, "step": hist["step"].to_numpy(),
                                               "r": _served_errors(hist, m, shift)}), levels)
    return out


def _served_errors(hist: pd.DataFrame, m: str, shift: np.ndarray | None) -> np.ndarray:
    """Per row of ``hist``: ``(y - served) / scale``, served = candidate ``m``'s forecast moved by
    Final's ``+median`` shift (scaled units) and clipped at 0 as Final is; ``m``'s own without it."""
    sc = hist["scale"].to_numpy(dtype=float)
    pred = hist[m].to_numpy(dtype=float)
    if shift is not None:
        pred = np.clip(pred + np.asarray(shift, dtype=float) * sc, 0.0, None)
    return (hist["y"].to_numpy(dtype=float) - pred) / sc


def served_residuals(
    hist: pd.DataFrame | None,
    candidates: Sequence[str],
    classes: pd.Series,
    shift: np.ndarray | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Per candidate of ``only`` (default all): the scaled error paths of :func:`served_tables`
    (the errors the served forecast would have made on the selection windows ``hist`` had that
    candidate served, with Final's ``+median`` shift), as ``DemandForecaster.residuals_`` holds
    Final's: ``demand_class, step, r, unique_id, cutoff`` for every series of the windows.

    The safety stock of a series a fallback candidate serves is sized on these, pooled per demand
    class as Final's (:func:`models.inventory.fit_forecaster_policy`), so it matches its band
    (:func:`fallback_bands`). A candidate without a finite error on the windows is left out."""
    if hist is None or not len(hist):
        return {}
    dcls = hist["unique_id"].map(classes).fillna("unknown").to_numpy()
    out = {}
    for m in [c for c in candidates if (only is None or c in only) and c in hist.columns]:
        r = _served_errors(hist, m, shift)
        if np.isfinite(r).any():
            out[m] = pd.DataFrame({"demand_class": dcls, "step": hist["step"].to_numpy(), "r": r,
                                   "unique_id": hist["unique_id"].to_numpy(), "cutoff": hist["cutoff"].to_numpy()})
    return out


def _widest(tables: Sequence[dict], levels: Sequence[int]) -> dict[tuple[str, int], dict[int, tuple[float, float]]]:
    """One table whose quantiles are, per demand class (and ``*``) and level, the lowest lower and
    the highest upper of ``tables`` (each resolved as :func:`apply_conformal` does)."""
    tables = [t for t in tables if t]
    keys = sorted({k for t in tables for k, s in t if s == 0} | {"*"})
    out = {}
    for k in keys:
        found = [r for r in (t.get((k, 0)) or t.get(("*", 0)) for t in tables) if r is not None]
        if found:
            out[(k, 0)] = {int(lv): (min(r[int(lv)][0] for r in found), max(r[int(lv)][1] for r in found))
                           for lv in levels}
    return out


def fallback_bands(
    fc: pd.DataFrame,
    fallback: pd.DataFrame,
    tables: dict[str, dict],
    kept: Sequence[dict],
    scale: np.ndarray,
    levels: Sequence[int],
    model: str = "Final",
) -> pd.DataFrame:
    """Set, in ``fc``, ``model``'s band for the series a fallback candidate serves (``fallback``
    rows with a ``served`` candidate, :func:`pick_served`): point + q * scale from
    ``tables[served]`` (:func:`served_tables`), so the band is calibrated on the errors of the
    candidate that serves the series, not on those of the candidate chosen for it.

    Where there is no table of the served candidate's errors (it has no error on the selection
    windows, or the forecaster was saved before these tables were kept), the band is the widest of
    the ``kept`` tables for the series' class (per level the lowest lower and the highest upper
    quantile of any of them) and the record's ``reason`` says so. ``scale`` is per row of ``fc``;
    ``fc`` needs ``unique_id, step, demand_class``. Returns the record (reasons completed)."""
    lo_cols = [f"{model}-lo-{int(lv)}" for lv in levels]
    if fallback is None or not len(fallback) or not all(c in fc.columns for c in lo_cols):
        return fallback
    fallback = fallback.copy()
    served = fallback[fallback["served"].notna()]
    wide = None
    uid = fc["unique_id"].astype(str).to_numpy()
    for m, grp in served.groupby("served", sort=True):
        rows = np.isin(uid, grp["unique_id"].astype(str).to_numpy())
        if not rows.any():
            continue
        table = tables.get(str(m)) or {}
        if not table:
            wide = _widest(list(kept), levels) if wide is None else wide
            table = wide
            at = fallback.index.isin(grp.index)
            fallback.loc[at, "reason"] = fallback.loc[at, "reason"] + (
                f"; no table of {m}'s errors on the selection windows was kept, so its band is the widest "
                "of the kept bands for its demand class")
        ints = apply_conformal(fc.loc[rows, model].to_numpy(dtype=float), np.asarray(scale, dtype=float)[rows],
                               fc.loc[rows, "demand_class"].to_numpy(), fc.loc[rows, "step"].to_numpy(), table, levels)
        for lv, (lo, hi) in ints.items():
            fc.loc[rows, f"{model}-lo-{lv}"] = lo
            fc.loc[rows, f"{model}-hi-{lv}"] = hi
    nest_intervals(fc, model, levels)
    return fallback


def note_unsized(fallback: pd.DataFrame, paths: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The fallback record with, for each served series whose member has no error paths in ``paths``
    (:func:`served_residuals`: no finite error on the selection windows), the reason completed: its
    safety stock is sized on its class's pool of the chosen candidates' errors (``residuals_``)."""
    if fallback is None or not len(fallback):
        return fallback
    lack = fallback["served"].notna() & ~fallback["served"].isin(list(paths))
    if not lack.any():
        return fallback
    fallback = fallback.copy()
    fallback.loc[lack, "reason"] = fallback.loc[lack, "reason"] + fallback.loc[lack, "served"].map(
        lambda m: f"; no error paths of {m} on the selection windows, so its safety stock is sized on its demand "
                  "class's errors of the chosen candidates")
    return fallback
