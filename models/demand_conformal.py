"""Split-conformal bands of a chosen forecast, from its scaled errors on rolling-origin windows.

Moved out of :mod:`models.demand_select` (which chooses the forecast). ``resid`` tables hold
``demand_class``, ``step`` and ``r`` = (y - forecast) / scale, the scale being the series' in-sample
one-step naive mean absolute error as of each window's cutoff, so series of any size pool together.
:func:`conformal_table` turns them into quantiles per demand class (pooled over steps by default),
:func:`apply_conformal` into bands, :func:`nest_intervals` keeps bands nested and non-negative and
:func:`adaptive_alphas` is the tested, not adopted, adaptive level (BENCHMARKS.md, session 22).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["conformal_table", "adaptive_alphas", "apply_conformal", "nest_intervals"]


def conformal_table(
    resid: pd.DataFrame, levels: Sequence[int], min_group: int = 50, by_step: bool = False,
    alphas: dict[int, float] | None = None,
) -> dict[tuple[str, int], dict[int, tuple[float, float]]]:
    """Quantiles of signed scaled errors per demand class (pooled over steps) with a pooled fallback.

    ``resid`` has ``demand_class``, ``step`` and ``r`` = (y - forecast) / scale. Keys
    ``(class, 0)`` (pooled over steps), ``("*", 0)`` (everything) and, with ``by_step``,
    ``(class, step)``. Values: level -> (lower, upper) quantile of r with the finite-sample
    conformal correction. Pooling over steps is the default: on validation windows before the
    benchmark windows (BENCHMARKS.md) per-step tables from two windows were too noisy and
    under-covered at 80 %. ``alphas`` (level -> miss rate to calibrate for, from
    :func:`adaptive_alphas`) replaces 1 - level / 100; the table stays keyed by the nominal level.
    """
    resid = resid[np.isfinite(resid["r"])]
    table: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}

    def q(r: np.ndarray) -> dict[int, tuple[float, float]]:
        n = len(r)
        out = {}
        for lv in levels:
            a = 1 - lv / 100 if alphas is None else alphas[int(lv)]
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


def adaptive_alphas(resid: pd.DataFrame, levels: Sequence[int], gamma: float = 1.0) -> dict[int, float] | None:
    """Miss rates to calibrate for, corrected by the bands' own miss rate before the cutoff.

    A batch form of adaptive conformal inference (Gibbs & Candes 2021). ``resid`` has
    ``demand_class``, ``step``, ``r`` and ``cutoff`` (one value per selection window). The band
    of the latest window is rebuilt from the older windows only (:func:`conformal_table`) and its
    miss rate counted over all classes; each level's alpha = 1 - level / 100 becomes
    ``clip(alpha - gamma * (miss - alpha), alpha / 4, 2 * alpha)``: a band that missed too often
    one window ahead is widened, one that missed too rarely narrowed. None with fewer than two
    windows (nothing to check against: the nominal levels apply).
    """
    resid = resid[np.isfinite(resid["r"])]
    cut = pd.unique(resid["cutoff"])
    if len(cut) < 2:
        return None
    latest = resid["cutoff"] == max(cut)
    new, old = resid[latest], resid[~latest]
    table = conformal_table(old, levels)
    if not table or new.empty:
        return None
    keys = new["demand_class"].astype(str).to_numpy()
    r = new["r"].to_numpy(dtype=float)
    out = {}
    for lv in levels:
        bounds = {k: (table.get((k, 0)) or table[("*", 0)])[int(lv)] for k in np.unique(keys)}
        lo = np.array([bounds[k][0] for k in keys])
        hi = np.array([bounds[k][1] for k in keys])
        miss = float(np.mean((r < lo) | (r > hi)))
        a = 1 - lv / 100
        out[int(lv)] = float(np.clip(a - gamma * (miss - a), a / 4, 2 * a))
    return out


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
