"""Forecasts for series too short for the members: the short-history fallback of
:class:`models.demand.DemandForecaster` (``short_history="fallback"``, the default).

A series with some demand but fewer observed periods than the members need at a cutoff
(``min_train``, default 2*h) - a new SKU, a new SKU x location - gets:

* **point**: the mean of its last ``short_window`` (default 4) observed periods, or of all of them
  when it has fewer (``ShortHistory`` in ``final_model``). With fewer than two horizons of history a
  trend or a season cannot be told from noise, so the choice is between level estimates. Chosen on
  validation cutoffs before the benchmark windows (three each; MAE / mean error of the next h
  periods over every series short at the cutoff): Online Retail (972 series-windows) mean of all
  periods 83.6 / +14.9 units, last 4: 65.1 / -1.3 (last 3: 67.5, last 6: 76.4, last 1: 82.3); the
  synthetic network (866, h = 26) all 6.19 / +2.42, last 4: 5.94 / +1.65 (last 3: 5.91). New items
  often sell a lump at launch and then less (or stop): the mean of all periods over-forecasts them.
  A window whose periods had no demand forecasts 0, with the count floor's band (below). The
  global LightGBM member was considered instead: it is trained on the established series only,
  most of its features (lags up to 8, 12-period windows, the series' scale) are missing for a
  series with a few periods, and its split-conformal bands are calibrated on established series'
  errors, so neither its point nor its band would have been checked for these series.
* **band** for every level: split-conformal on *level-scaled* errors of the same estimator,
  ``r = (y - f) / f``, taken where they can be measured before the cutoff: at each selection
  window's cutoff ``c - j*h`` the mean ``f`` of the last ``k`` observed periods of a series stands
  in for a series whose window is ``k`` periods, and its errors over the next ``h`` periods (all
  on or before the cutoff) are recorded, for ``k`` up to the window and below ``min_train`` (a
  sample of at most ``MAX_POOL_SERIES`` series). The quantiles (finite-sample corrected, pooled
  over steps) are kept per bucket of ``k`` (1, 2, 3, 4-6, ... periods averaged: one period's mean
  is far noisier than four's) and of the level ``f`` (<1, 1-3, 3-10, 10-30, 30-100, 100+ units per
  period: the relative spread of count demand shrinks as the level grows); the ``k`` bucket alone
  where a (k, level) bucket has fewer than 50 errors, everything pooled after that. The table also
  keeps each level bucket alone (key ``*|<level>``, >= 20 errors), which no series here looks up: the
  total of an all-short hierarchy takes it where its ``k`` bucket was not measured
  (:mod:`models.demand_hier`, "Young books").
  Level-scaling because the naive one-step error that scales the other series' errors cannot be
  estimated from one or two periods. The errors include how much a mean of ``k`` periods misses
  the next ``h`` (the level's own estimation error), so short windows get wide bands. The band
  is ``f * (1 + q)``, clipped at 0, widened to a count floor where that is wider
  (:func:`count_band`: the Poisson predictive with the rate known only from the window's periods;
  established series seldom sell as little as a new SKU's first weeks, so the pooled errors alone
  covered 45 % of slow new series' demand with the 80 % band in the tests), and nested.
* **a table younger than h + 1 periods** (or without a sale by ``c - h``; a new catalogue of 10 weeks
  sized at a 17-week lead-time horizon): nothing measures these errors over h periods, so they are
  measured over the longest lookahead ``g < h`` the table has, on every window of g periods before
  the cutoff (g = 1: the one-step errors of each period), and the band (pooled over steps, as
  always) is used for all h steps; the error paths for safety stock have steps 1..g and are
  extended with their last step (``models.inventory``). ``info["lookahead"]`` (the forecaster's
  ``short_lookahead_``) is g; the planner outputs say so. Checked on young books cut from the
  synthetic network (2 years, 579 series, origins every 6 weeks, the last T weeks only; h = 8 / 17):
  80 / 95 % coverage 0.92 / 0.98 (T = 3, g = 2), 0.90 / 0.97 (T = 5, g = 4), 0.91 / 0.96 (T = 10,
  h = 17, g = 9), about the same at steps beyond g (steps 13-17: 0.90-0.92 / 0.96-0.98) as at steps
  1-2; with h + 1 periods (T = 10, h = 8) 0.91 / 0.96. Only a table of one period, or without a sale
  before its last period, gets no fallback forecast.
* **safety stock**: the same errors as whole paths (steps 1..h, so a level estimated too low
  stays too low over the lead time) in ``short_residuals_``, scaled by the series' level
  (``short_scale_``); ``models.inventory.fit_forecaster_policy`` sizes these series from them, with
  the same count floor on the reorder point and order-up-to level as on the band; given the
  history, a series with an intermittent / lumpy past of 26+ periods and 3+ sales takes the higher
  of that and its own-history bootstrap (``short_history+own_history``; BENCHMARKS.md has the test).

Series without any demand (all zero) get no forecast, as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.demand_conformal import conformal_table, nest_intervals

__all__ = ["SHORT_MODEL", "SHORT_HISTORY", "MAX_POOL_SERIES", "count_band", "empty_short_info", "short_bucket", "short_history_forecast", "short_note"]

SHORT_MODEL = "ShortHistory"
SHORT_HISTORY = ("fallback", "skip")
MAX_POOL_SERIES = 2000  # series sampled for the calibration windows (seeded)
MAX_PATHS_PER_BUCKET = 1000  # error paths kept per bucket for safety stock
_EDGES = ((1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 6, "4-6"), (7, 11, "7-11"), (12, 25, "12-25"), (26, 10**9, "26+"))
# window lengths measured for the calibration: every k up to 6, then about 30 % apart
_WINDOWS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 17, 22, 29, 38, 51, 67, 88, 116, 153, 200, 260, 340, 450)


def short_bucket(k: np.ndarray | int) -> np.ndarray:
    """Bucket label (``short:<k range>``) of a number of observed periods."""
    k = np.atleast_1d(np.asarray(k, dtype=np.int64))
    out = np.empty(len(k), dtype=object)
    for lo, hi, name in _EDGES:
        out[(k >= lo) & (k <= hi)] = f"short:{name}"
    return out


_LEVEL_EDGES = (1.0, 3.0, 10.0, 30.0, 100.0)  # units per period


def level_bucket(f: np.ndarray) -> np.ndarray:
    """Bucket label (``<1``, ``1-3``, ``3-10``, ``10-30``, ``30-100``, ``100+``) of a level (mean units per period)."""
    f = np.atleast_1d(np.asarray(f, dtype=float))
    names = ["<1", "1-3", "3-10", "10-30", "30-100", "100+"]
    return np.asarray(names, dtype=object)[np.searchsorted(np.asarray(_LEVEL_EDGES), f, side="right")]


def _key(k_label: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(np.asarray(k_label, dtype=str), "|"), level_bucket(f).astype(str)).astype(object)


def short_note(n_periods: int, window: int = 4, lookahead: int | None = None, h: int | None = None) -> str:
    """The words a planner output gives a fallback row (``window``: the periods averaged;
    ``lookahead`` < ``h``: its band was measured over fewer periods than the horizon, a young table)."""
    n, m = int(n_periods), min(int(n_periods), int(window))
    what = ("its only period" if n == 1 else f"its {n} periods" if m == n else f"its last {m} periods")
    band = "the errors of such means before the cutoff"
    if lookahead is not None and h is not None and int(lookahead) < int(h):
        g = int(lookahead)
        band = (f"the errors of such means over the {g} period{'' if g == 1 else 's'} after earlier cutoffs: "
                f"the table is too young to measure them over the {int(h)}-period horizon")
    return f"short history ({n} period{'' if n == 1 else 's'}): fallback forecast (mean of {what}, band from {band})"


def empty_short_info() -> dict:
    """The fallback's info when it forecasts nothing (or is off)."""
    return {"short": pd.DataFrame(columns=["unique_id", "n_periods", "window", "window_total", "level", "bucket"]),
            "conformal": {},
            "residuals": pd.DataFrame({"demand_class": pd.Series(dtype=object), "unique_id": pd.Series(dtype="int64"),
                                       "cutoff": pd.Series(dtype="int64"), "step": pd.Series(dtype="int64"),
                                       "r": pd.Series(dtype="float64")}),
            "scale": pd.Series(dtype=float)}


def count_band(total: np.ndarray, n: np.ndarray, periods: float | np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` % interval of demand over ``periods`` periods for series that sold
    ``total`` units in ``n`` periods, if demand were Poisson with a rate known only from those
    periods (Jeffreys prior): the posterior predictive is negative binomial with ``total + 0.5``
    and ``n / (n + periods)``. Real demand is at least this dispersed (overdispersed counts,
    ramp-ups), so the fallback's band and safety stock are never narrower than it; for a slow
    mover (one sale in three weeks) it is what keeps 0 and 2 units inside the band."""
    from scipy.stats import nbinom

    a = 1.0 - float(level) / 100.0
    r = np.asarray(total, dtype=float) + 0.5
    p = np.asarray(n, dtype=float) / (np.asarray(n, dtype=float) + np.asarray(periods, dtype=float))
    return nbinom.ppf(a / 2, r, p).astype(float), nbinom.ppf(1 - a / 2, r, p).astype(float)


def _calibration(Y: np.ndarray, c: int, h: int, min_train: int, windows: int, rng: np.random.Generator,
                 window: int = 4) -> pd.DataFrame:
    """Level-scaled errors of the mean of the last k observed periods, k < min_train and k <=
    ``window`` (the fallback's estimator for a series with k periods, or with more when k is the
    window), at the selection windows' cutoffs before c: ``demand_class`` (bucket of k and of the
    level), ``unique_id`` (a path id), ``cutoff`` (index), ``step``, ``r``. Reads only periods <= c."""
    parts = []
    kmax = max(1, min(int(min_train) - 1, int(window)))
    ks = sorted({k for k in _WINDOWS if k <= kmax} | {kmax})
    next_id = 0
    for j in range(1, windows + 1):
        ci = c - j * h
        if ci < 0:
            break
        past = Y[:, : ci + 1]
        n_obs = np.isfinite(past).sum(axis=1)
        after = Y[:, ci + 1: ci + 1 + h]
        ok = (n_obs >= 1) & np.isfinite(after).all(axis=1) & (after.shape[1] == h)
        rows = np.flatnonzero(ok)
        if len(rows) > MAX_POOL_SERIES:
            rows = np.sort(rng.choice(rows, size=MAX_POOL_SERIES, replace=False))
        if not len(rows):
            continue
        P = np.nan_to_num(past[rows], nan=0.0)
        cs = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(P, axis=1)], axis=1)
        A = after[rows]
        for k in (k for k in ks if k <= ci + 1):
            have = n_obs[rows] >= k
            f = (cs[:, ci + 1] - cs[:, ci + 1 - k]) / k
            use = have & (f > 0)  # a window without demand is a series the fallback never forecasts
            if not use.any():
                continue
            r = (A[use] - f[use, None]) / f[use, None]
            m = int(use.sum())
            parts.append(pd.DataFrame({
                "demand_class": np.repeat(_key(np.repeat(short_bucket(k)[0], m), f[use]), h),
                "unique_id": np.repeat(np.arange(next_id, next_id + m), h),  # one id per error path
                "cutoff": ci, "step": np.tile(np.arange(1, h + 1), m), "r": r.reshape(-1)}))
            next_id += m
    if not parts:
        return empty_short_info()["residuals"]
    return pd.concat(parts, ignore_index=True)


def short_history_forecast(Y: np.ndarray, uids: np.ndarray, dates: pd.DatetimeIndex, offset: str, c: int, h: int,
                           eligible: np.ndarray, min_train: int, windows: int, levels: list[int],
                           classes: pd.Series | None = None, random_state: int = 0,
                           window: int = 4) -> tuple[pd.DataFrame, dict]:
    """Fallback forecasts from cutoff index ``c`` for the series with demand that are not
    ``eligible`` for the members: the mean of each one's last ``min(n, window)`` observed periods.
    Returns (rows as the forecaster's frame: ``unique_id, ds, step, cutoff, Final``, bands,
    ``demand_class``, ``final_model``; info) with info ``short`` (per series: ``unique_id,
    n_periods`` (observed), ``window`` (periods averaged), ``window_total`` (their units), ``level``
    (the forecast per period), ``bucket`` (the key of its band and safety-stock paths)),
    ``conformal`` (the quantile table), ``residuals`` (error paths for safety stock) and ``scale``
    (level per series)."""
    past = Y[:, : c + 1]
    n_obs = np.isfinite(past).sum(axis=1)
    total = np.nansum(past, axis=1)
    short = ~eligible & (n_obs >= 1) & (total > 0)
    empty_info = empty_short_info()
    if not short.any():
        return pd.DataFrame(), empty_info
    rng = np.random.default_rng([int(random_state), int(c), 7])
    calib = _calibration(Y[:, : c + 1], c, h, min_train, windows, rng, window)
    lookahead = int(h)
    # a table too young to measure the errors over h periods after an earlier cutoff (fewer than h + 1
    # periods, or no sale by c - h): the errors over the longest lookahead g < h it can measure, on every
    # window of g periods before c (g = 1: the one-step errors of each period); see the module's docstring
    for g in range(min(int(h) - 1, int(c)), 0, -1):
        if not calib.empty:
            break
        calib = _calibration(Y[:, : c + 1], c, g, min_train, max(int(windows), int(c) // g), rng, window)
        lookahead = g
    if calib.empty:  # nothing before the cutoff to calibrate a band on: no forecast, as without the fallback
        return pd.DataFrame(), empty_info
    # quantiles per (periods, level) bucket where it has >= 50 errors, else per periods bucket, else all
    by_k = calib.assign(demand_class=calib["demand_class"].str.split("|").str[0])
    table = conformal_table(by_k, levels, min_group=50)
    table.update({key: v for key, v in conformal_table(calib, levels, min_group=50).items() if key != ("*", 0)})
    # and per level bucket alone (>= 20 errors; looked up by models.demand_hier for a young book's total only)
    by_level = calib.assign(demand_class="*|" + calib["demand_class"].str.split("|").str[1])
    table.update({key: v for key, v in conformal_table(by_level, levels, min_group=20).items() if key != ("*", 0)})
    if not table:  # nothing before the cutoff to calibrate a band on: no forecast, as without the fallback
        return pd.DataFrame(), empty_info
    rows = np.flatnonzero(short)
    n = n_obs[rows]
    m = np.minimum(n, int(window))  # observed periods are contiguous up to c: the last m columns
    cs = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(np.nan_to_num(past[rows], nan=0.0), axis=1)], axis=1)
    w_total = cs[:, c + 1] - cs[np.arange(len(rows)), c + 1 - m]
    level = w_total / m
    fine = _key(short_bucket(m), level)
    bucket = np.array([b if (b, 0) in table else b.split("|")[0] for b in fine], dtype=object)
    future = pd.date_range(dates[c], periods=h + 1, freq=offset)[1:]
    u = np.asarray(uids)[rows]
    fc = pd.DataFrame({"unique_id": np.repeat(u, h), "ds": np.tile(future.values, len(rows)),
                       "step": np.tile(np.arange(1, h + 1), len(rows)), "cutoff": dates[c]})
    point = np.repeat(level, h)
    fc["Final"] = point
    for lv in levels:
        q = np.array([(table.get((b, 0)) or table[("*", 0)])[int(lv)] for b in bucket])
        lo, hi = count_band(w_total, m, 1.0, lv)  # never narrower than Poisson noise + the level's own error
        fc[f"Final-lo-{lv}"] = np.repeat(np.minimum(np.clip(level * (1.0 + q[:, 0]), 0.0, None), lo), h)
        fc[f"Final-hi-{lv}"] = np.repeat(np.maximum(level * (1.0 + q[:, 1]), hi), h)
    nest_intervals(fc, "Final", levels)
    for lv in levels:  # every band holds its point
        fc[f"Final-lo-{lv}"] = np.minimum(fc[f"Final-lo-{lv}"], fc["Final"])
        fc[f"Final-hi-{lv}"] = np.maximum(fc[f"Final-hi-{lv}"], fc["Final"])
    cls = classes.reindex(u).fillna("unknown").to_numpy() if classes is not None else np.full(len(u), "unknown")
    fc["demand_class"] = np.repeat(cls, h)
    fc["final_model"] = SHORT_MODEL
    # error paths for safety stock, under the key each series' band used: at most MAX_PATHS_PER_BUCKET
    # whole paths per key (seeded); a periods bucket's paths are those of all its level buckets
    keep = []
    for frame in (calib, by_k):
        for key, g in frame.groupby("demand_class", sort=True):
            if key not in set(bucket):
                continue
            ids = pd.unique(g["unique_id"])
            if len(ids) > MAX_PATHS_PER_BUCKET:
                ids = rng.choice(ids, size=MAX_PATHS_PER_BUCKET, replace=False)
            keep.append(g[g["unique_id"].isin(set(ids))])
    paths = pd.concat(keep, ignore_index=True) if keep else calib
    info = {"short": pd.DataFrame({"unique_id": u, "n_periods": n.astype(int), "window": m.astype(int),
                                   "window_total": w_total, "level": level, "bucket": bucket}),
            "conformal": table, "residuals": paths.reset_index(drop=True),
            "scale": pd.Series(level, index=pd.Index(u, name="unique_id")), "lookahead": lookahead}
    return fc, info
