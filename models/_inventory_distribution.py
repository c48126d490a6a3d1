"""The lead-time demand distribution behind ``models.inventory.InventoryPolicy.fit``: lead times
in forecast periods and the horizon they need, each series' random stream, the error-path pools
per demand class, the own-history bootstrap of intermittent / lumpy series, and the normal
formula beside them (the method is described in ``models.inventory``'s docstring).

Apart from the policy class so the sizing's building blocks - pure functions of arrays and
tables, the ones ``tests/_inventory_reference.py`` re-implements and ``models.inventory_replay``
and ``models._inventory_forecaster`` reuse - read in one place. Units: demand per forecast
period (day / week / month), lead times and review period in periods. Private to
``models.inventory``, which re-exports the public names.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from models import _inventory_sim as _sim

_PERIOD_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}

# Simulated lead times are cut at the forecast horizon (minus the review period): the policy
# only sizes series for which at most 1 % of them would be cut, i.e. L + R + z_0.99 * sd_L <= h.
# A larger cut tail understates the upper quantiles of lead-time demand without saying so.
LEAD_TIME_TAIL_Z = 2.326

# periods of its own history an intermittent / lumpy series' bootstrap reads (InventoryPolicy's
# history_periods): one without a sale in them is sized as stopped (reorder point 0)
OWN_HISTORY_PERIODS = 104


def lead_time_fits(L, sd_L, R: float, h: int) -> np.ndarray:
    """Per series: does lead time + review + its 99 % tail fit in a forecast of ``h`` periods?"""
    return np.asarray(L, dtype=float) + float(R) + LEAD_TIME_TAIL_Z * np.asarray(sd_L, dtype=float) <= h + 1e-9


def horizon_needed(L, sd_L, R: float) -> int:
    """Forecast periods that size every series (``lead_time_fits``), plus one period of room."""
    need = np.asarray(L, dtype=float) + float(R) + LEAD_TIME_TAIL_Z * np.asarray(sd_L, dtype=float)
    return int(math.ceil(float(np.max(need)) - 1e-9)) + 1


def _periods_text(n: int) -> str:
    """A count of periods as a message gives it: 14288, or 3.32e+299 for a lead-time spread of 1e300
    days (its 300 digits were printed in full)."""
    return str(n) if n < 10**9 else f"{float(n):.3g}"


# DemandForecaster's longest horizon (models.demand: h between 1 and 520 periods)
MAX_FORECAST_PERIODS = 520


def lead_times_beyond_forecaster(L, sd_L, R: float, freq: str) -> str | None:
    """Words naming the series whose lead time + review + 2.33 x spread needs a forecast longer
    than the forecaster makes (``MAX_FORECAST_PERIODS``), None when every one fits. ``L`` /
    ``sd_L`` in periods: one value (the config's) or a Series by ``unique_id`` (the book's
    ``lead_times`` rows, the config's elsewhere). Without it a lead time such as 100000 days
    surfaced as "horizon h must be ... between 1 and 520; got 14289", a horizon nobody set."""
    R, days = float(R), _PERIOD_DAYS[freq]
    if not isinstance(L, pd.Series):
        if lead_time_fits(L, sd_L, R, MAX_FORECAST_PERIODS).all():
            return None
        return (f"a lead time of {float(L) * days:g} days with a spread of {float(sd_L) * days:g} (demand.lead_time_days / "
                f"lead_time_std_days, or simulate inventory's --lead-time-days) needs a forecast of {_periods_text(horizon_needed(L, sd_L, R))} {freq} periods (lead time + review period {R:g} + "
                f"{LEAD_TIME_TAIL_Z} x the spread, plus one), beyond the forecaster's {MAX_FORECAST_PERIODS}: "
                "lead times are in days")
    sd_L = pd.Series(sd_L, index=L.index) if not isinstance(sd_L, pd.Series) else sd_L.reindex(L.index)
    bad = ~lead_time_fits(L.to_numpy(dtype=float), sd_L.to_numpy(dtype=float), R, MAX_FORECAST_PERIODS)
    if not bad.any():
        return None
    order = np.argsort(-(L.to_numpy(dtype=float) + LEAD_TIME_TAIL_Z * sd_L.to_numpy(dtype=float))[bad], kind="stable")
    names = L.index[bad][order]
    eg = ", ".join(f"{u} (lead_time_days {float(L[u]) * days:g}, lead_time_std_days {float(sd_L[u]) * days:g})"
                   for u in names[:3])
    return (f"{int(bad.sum())} series' lead time + review period {R:g} + {LEAD_TIME_TAIL_Z} x the lead-time spread "
            f"needs a forecast of up to {_periods_text(horizon_needed(L[bad], sd_L[bad], R))} {freq} periods, beyond the "
            f"forecaster's {MAX_FORECAST_PERIODS}: {eg}; check those rows of the order book's lead_times table "
            "(else demand.lead_time_days): lead times are in days")


def _series_rng(random_state: int | None, uid, stream: int = 0) -> np.random.Generator:
    """A random stream per series, from the seed and the series id only: a series' numbers do
    not depend on which other series are sized with it (one request or many, any order).
    ``stream`` > 0 gives other streams of the same series (the replay's lead-time draws: 1)."""
    if random_state is None:
        return np.random.default_rng()
    key = int.from_bytes(hashlib.blake2b(str(uid).encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng([int(random_state), key] + ([int(stream)] if stream else []))



def lead_time_periods(days: float, freq: str) -> float:
    """Convert a lead time in days to forecast periods (D = 1 day, W = 7, M = 30.44)."""
    if freq not in _PERIOD_DAYS:
        raise ValueError(f"freq must be D, W or M; got {freq!r}")
    return float(days) / _PERIOD_DAYS[freq]


def series_lead_times(uids, table: pd.DataFrame | None, default_days: float, default_std_days: float,
                      freq: str) -> tuple[pd.Series, pd.Series]:
    """Each series' lead time and its spread in periods, by ``unique_id``: the row of ``table``
    (the order book's lead_times as ``training.demand_config`` loads it: index ``unique_id``,
    ``lead_time_days``, ``lead_time_std_days``), the defaults where it has none."""
    index = pd.Index(uids)
    days = pd.Series(float(default_days), index=index)
    sd_days = pd.Series(float(default_std_days), index=index)
    if table is not None:
        days = table["lead_time_days"].reindex(index).fillna(float(default_days)).astype(float)
        sd_days = table["lead_time_std_days"].reindex(index).fillna(float(default_std_days)).astype(float)
    lead_time_periods(0.0, freq)  # refuses an unknown freq
    return days / _PERIOD_DAYS[freq], sd_days / _PERIOD_DAYS[freq]



def _z(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def normal_policy(d: np.ndarray, sigma_d: np.ndarray, L: np.ndarray, sd_L: np.ndarray, R: float,
                  service_level: float) -> dict[str, np.ndarray]:
    """Textbook safety stock / reorder point / order-up-to (all arrays per series)."""
    z = _z(service_level)
    d, sigma_d, L, sd_L = (np.asarray(x, dtype=float) for x in (d, sigma_d, L, sd_L))
    s_ltd = np.sqrt(L * sigma_d**2 + d**2 * sd_L**2)
    s_pi = np.sqrt((L + R) * sigma_d**2 + d**2 * sd_L**2)
    ss = z * s_ltd
    return {"safety_stock": ss, "reorder_point": d * L + ss, "order_up_to": d * (L + R) + z * s_pi}


def _interval_sum(D: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sum of the first ``length`` (fractional) columns of each row of D (paths x steps)."""
    n, h = D.shape
    C = np.concatenate([np.zeros((n, 1)), np.cumsum(D, axis=1)], axis=1)
    length = np.clip(length, 0.0, float(h))
    k = np.floor(length).astype(int)
    frac = length - k
    nxt = np.minimum(k, h - 1)
    return C[np.arange(n), k] + frac * np.where(k < h, D[np.arange(n), nxt], 0.0)



def _history_by_series(history: pd.DataFrame, fc: pd.DataFrame, uids: np.ndarray, periods: int,
                       sales: dict | None = None) -> dict:
    """Each series' demand before its first forecast period, from its first sale on, last
    ``periods`` values in time order (periods missing inside the span count as 0). ``sales``: a
    dict filled with each series' number of periods with a sale over that whole span, the window's
    and before it (a series that stopped selling more than ``periods`` periods ago has none in its
    window: ``InventoryPolicy.fit`` sizes it as stopped)."""
    need = {"unique_id", "ds", "y"}
    if not need <= set(history.columns):
        raise ValueError(f"history needs columns {sorted(need)}; it has {list(history.columns)}")
    first = fc.groupby("unique_id")["ds"].min()
    hs = history[["unique_id", "ds", "y"]]
    hs = hs[hs["unique_id"].isin(set(uids))]
    hs = hs[hs["ds"].to_numpy() < first.reindex(hs["unique_id"]).to_numpy()]
    if hs.empty:
        return {}
    W = hs.pivot_table(index="unique_id", columns="ds", values="y", aggfunc="sum").sort_index(axis=1)
    V = np.nan_to_num(W.to_numpy(dtype=float), nan=0.0)  # periods missing inside the span: 0
    sold = V > 0
    first_sale = sold.argmax(axis=1)
    out = {}
    for r in np.flatnonzero(sold.any(axis=1)):
        y = V[r, first_sale[r]:]  # from the first sale: before it the series did not exist
        out[W.index[r]] = np.clip(y[-periods:], 0.0, None)
        if sales is not None:
            sales[W.index[r]] = int((y > 0).sum())
    return out


def _own_paths(y: np.ndarray, n: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Demand paths (n x h) bootstrapped from one series' own history (Willemain, Smart & Schwarz
    2004): whether a period has demand follows a two-state Markov chain estimated from the
    history's zero / non-zero transitions (started from the last period's state); each non-zero
    period's size is drawn from the history's non-zero sizes and jittered, x + z sqrt(x) with z
    standard normal (kept at x where that is <= 0), so sizes not seen yet can occur. Integer
    histories get integer sizes, rounded (the paper's 1 + INT(.) adds half a unit on average,
    +50 % on a series that sells one at a time). ``fit`` runs the same code for many series at
    once (``models._inventory_sim.own_paths``).
    """
    s = _sim.OwnHistory(y)
    U, pick, Z = np.empty((1, h, n)), np.empty((1, n, h), dtype=np.int64), np.empty((1, n, h))
    s.draw(rng, U[0], pick[0], Z[0])
    return _sim.own_paths([s], U, pick, Z)[:, 0].T


def _per_series(v: float | pd.Series, uids: np.ndarray, name: str) -> np.ndarray:
    if isinstance(v, pd.Series):
        out = v.reindex(uids)
        if out.isna().any():
            miss = list(out.index[out.isna()][:3])
            raise ValueError(f"{name} is missing for {int(out.isna().sum())} series, e.g. {miss}")
        return out.to_numpy(dtype=float)
    return np.full(len(uids), float(v))


def _paths_by_class(residuals: pd.DataFrame, h: int) -> tuple[dict, dict]:
    """Complete error paths (steps 1..h) per demand class, plus ``"*"`` = all classes."""
    if residuals is None or len(residuals) == 0:
        return {}, {}
    r = residuals[np.isfinite(residuals["r"])]
    wide = r.pivot_table(index=["demand_class", "unique_id", "cutoff"], columns="step", values="r")
    wide = wide.reindex(columns=range(1, h + 1))
    # paths shorter than h (rolling windows shorter than lead time + review) are extended with their last step
    wide = wide.ffill(axis=1).dropna()
    if wide.empty:
        return {}, {}
    paths = {"*": wide.to_numpy()}
    for k, g in wide.groupby(level="demand_class"):
        if len(g) >= 20:
            paths[str(k)] = g.to_numpy()
    return paths, {}
