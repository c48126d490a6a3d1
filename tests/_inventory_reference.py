"""The safety-stock simulation as it was before the vectorised ``InventoryPolicy.fit`` (commit
5ab1f70): one series at a time, kept verbatim as the reference that ``tests/test_inventory_fast.py``
and ``bench/bench_safety_stock.py --reference`` compare the current code with, to the bit.
Not a test module (no ``test_`` prefix); nothing in the product imports it."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from models.inventory import InventoryPolicy, horizon_needed, lead_time_fits, normal_policy

__all__ = ["ReferencePolicy"]


def _series_rng(random_state: int | None, uid, stream: int = 0) -> np.random.Generator:
    """A random stream per series, from the seed and the series id only: a series' numbers do
    not depend on which other series are sized with it (one request or many, any order).
    ``stream`` > 0 gives other streams of the same series (the replay's lead-time draws: 1)."""
    if random_state is None:
        return np.random.default_rng()
    key = int.from_bytes(hashlib.blake2b(str(uid).encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng([int(random_state), key] + ([int(stream)] if stream else []))



def _interval_sum(D: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sum of the first ``length`` (fractional) columns of each row of D (paths x steps)."""
    n, h = D.shape
    C = np.concatenate([np.zeros((n, 1)), np.cumsum(D, axis=1)], axis=1)
    length = np.clip(length, 0.0, float(h))
    k = np.floor(length).astype(int)
    frac = length - k
    nxt = np.minimum(k, h - 1)
    return C[np.arange(n), k] + frac * np.where(k < h, D[np.arange(n), nxt], 0.0)



class ReferencePolicy(InventoryPolicy):
    """``InventoryPolicy`` with the per-series ``fit`` of 5ab1f70."""

    def fit(self, forecast: pd.DataFrame, residuals: pd.DataFrame, scale: pd.Series,
            lead_time: float | pd.Series, lead_time_std: float | pd.Series = 0.0,
            point_col: str = "Final", history: pd.DataFrame | None = None) -> InventoryPolicy:
        """Compute the policy.

        forecast : ``unique_id, ds`` and ``point_col``, h rows per series in time order.
        residuals : scaled error paths ``unique_id, demand_class, cutoff, step, r`` (from
            ``DemandForecaster.residuals_`` or a CV window); paths are pooled per demand class.
        scale : per-series scale the residuals were divided by (``DemandForecaster.scale_``).
        lead_time, lead_time_std : periods; a number for all series or a Series by unique_id.
        history : optional long ``unique_id, ds, y`` demand the forecaster was fitted on. Series of
            ``own_history_classes`` with enough of it (``min_history_periods`` periods since the
            first sale, ``min_nonzero`` non-zero periods, the last ``history_periods`` used) get
            their lead-time demand from a bootstrap of their own history (``_own_paths``) instead
            of the class's error pool. Rows at or after a series' first forecast period are ignored.
        """
        if not 0.5 < self.service_level < 1:
            raise ValueError(f"service_level must be between 0.5 and 1; got {self.service_level}")
        if self.review_period <= 0:
            raise ValueError(f"review_period must be > 0 periods; got {self.review_period}")
        need = {"unique_id", "ds", point_col}
        if not need <= set(forecast.columns):
            raise ValueError(f"forecast needs columns {sorted(need)}; it has {list(forecast.columns)}")
        fc = forecast.sort_values(["unique_id", "ds"], kind="mergesort")
        uids = fc["unique_id"].drop_duplicates().to_numpy()
        h = int(fc.groupby("unique_id").size().max())
        P = fc[point_col].to_numpy(dtype=float).reshape(len(uids), h) if len(fc) == len(uids) * h else None
        if P is None:
            raise ValueError("forecast must have the same number of periods for every series")
        L = _per_series(lead_time, uids, "lead_time")
        sdL = _per_series(lead_time_std, uids, "lead_time_std")
        if (L < 0).any() or (sdL < 0).any():
            raise ValueError("lead times and their spread must be >= 0 periods")
        R = float(self.review_period)
        fits = lead_time_fits(L, sdL, R, h)
        if not fits.all():
            bad = np.flatnonzero(~fits)
            raise ValueError(
                f"lead time + review period + 2.33 x the lead-time spread exceeds the forecast horizon ({h} periods) for "
                f"{len(bad)} series, e.g. {[str(uids[i]) for i in bad[:5]]} (lead time {L[bad[0]]:.2f} +- {sdL[bad[0]]:.2f} periods, "
                f"review {R:g}); they need a forecast of {horizon_needed(L[bad], sdL[bad], R)} periods"
            )
        sc = scale.reindex(uids).fillna(1.0).to_numpy(dtype=float)
        paths, cls_of = _paths_by_class(residuals, h)
        if not paths:
            raise ValueError("no complete residual paths: the forecaster had no rolling-origin windows to learn errors from")
        ser_cls = residuals.drop_duplicates("unique_id").set_index("unique_id")["demand_class"] if len(residuals) else pd.Series(dtype=str)
        hist = _history_by_series(history, fc, uids, self.history_periods) if history is not None else {}
        q = self.service_level
        rows = []
        for i, u in enumerate(uids):
            rng = _series_rng(self.random_state, u)
            k = ser_cls.get(u, cls_of.get(u))
            Pm = paths.get(k, paths["*"])
            y = hist.get(u)
            own = (k in self.own_history_classes and y is not None and len(y) >= self.min_history_periods
                   and int((y > 0).sum()) >= self.min_nonzero)
            idx = rng.integers(0, len(Pm), self.n_sims) if (not own or self.recentre == "bias_corrected") else None
            Ls = np.clip(rng.normal(L[i], sdL[i], self.n_sims), 0.0, h - R) if sdL[i] > 0 else np.full(self.n_sims, L[i])
            mean_ltd = float(_interval_sum(P[i][None, :], np.array([L[i]]))[0])
            mean_pid = float(_interval_sum(P[i][None, :], np.array([L[i] + R]))[0])
            if own:
                D = _own_paths(y, self.n_sims, h, rng)
                if self.recentre in ("forecast", "bias_corrected", "blend"):
                    # the forecast drives the level: scale the sizes so the paths' mean over lead
                    # time + review equals the forecast's; occurrence and shape stay the series' own
                    sim = float(_interval_sum(D, Ls + R).mean())
                    F = np.broadcast_to(P[i], D.shape)
                    if self.recentre == "bias_corrected":
                        F = P[i][None, :] + sc[i] * Pm[idx]
                    want = float(_interval_sum(F, Ls + R).mean())
                    if self.recentre == "blend":
                        want = 0.5 * want + 0.5 * sim
                    D = D * (max(want, 0.0) / sim if sim > 0 else 0.0)
            else:
                raw = P[i][None, :] + sc[i] * Pm[idx]
                D = np.clip(raw, 0.0, None)
            if not own and mean_pid < self.thin_below_units:
                # thin to the mean of the unclipped paths (forecast + the pool's mean error), not to
                # the point forecast: only the demand that clipping invented is removed
                target = max(0.0, float(_interval_sum(raw, Ls + R).mean()))
                D = _thin(D, _interval_sum(D, Ls + R).mean(), target, rng)
            ltd = _interval_sum(D, Ls)
            pid = _interval_sum(D, Ls + R)
            rop = float(np.quantile(ltd, q, method="inverted_cdf"))
            s1 = Pm[:, 0]
            rows.append({
                "unique_id": u, "demand_class": k if k is not None else "unknown",
                "ltd_source": "own_history" if own else "class_pool",
                "mean_demand": float(P[i, : max(1, math.ceil(L[i] + R))].mean()),
                "lead_time": L[i], "lead_time_std": sdL[i], "ltd_mean": mean_ltd,
                "safety_stock": rop - mean_ltd, "reorder_point": rop,
                "order_up_to": float(np.quantile(pid, q, method="inverted_cdf")),
                # the normal baseline's per-period sd on the same information as the distribution
                # method: the series' own demand where its lead-time demand comes from its own
                # history, else scale x the class pool's step-1 RMS (a few tiny-scale series
                # dominate a lumpy class's pooled RMS: 0.5 units a week got sigma_d 349)
                "sigma_d": (float(np.std(y, ddof=1)) if own
                            else sc[i] * float(np.sqrt(np.mean(s1**2)))),
            })
        pol = pd.DataFrame(rows)
        norm = normal_policy(pol["mean_demand"], pol["sigma_d"], pol["lead_time"], pol["lead_time_std"], R, q)
        for key, v in norm.items():
            pol[f"normal_{key}"] = v
        pol["service_level"] = q
        pol["review_period"] = R
        self.policy_ = pol
        return self

def _thin(D: np.ndarray, sim_mean: float, target_mean: float, rng: np.random.Generator) -> np.ndarray:
    """Zero whole simulated paths so their mean demand matches ``target_mean``.

    ``max(0, forecast + error)`` with a forecast near zero keeps every positive error of the
    class's pool and clips every negative one, so the simulated demand of a series the
    forecaster expects (almost) nothing from averages far more than the unclipped
    ``forecast + error`` - a series with no sale in a year got a reorder point of several
    units. Keeping each path with probability ``target_mean / sim_mean`` keeps the size of a
    demand event but makes it as rare as the target says (a target of 0 gives all-zero paths:
    reorder point 0). The caller passes the unclipped mean, not the point forecast: thinning to
    the point forecast also threw away the pool's mean error, and for the intermittent / lumpy
    classes, whose point forecasts run low, that left reorder points of ~0 that the next
    lead time's demand exceeded in a third of the cases (synthetic network, 4 origins).
    """
    if sim_mean <= target_mean or sim_mean <= 0:
        return D
    keep = rng.random(D.shape[0]) < max(target_mean, 0.0) / sim_mean
    return D * keep[:, None]



def _history_by_series(history: pd.DataFrame, fc: pd.DataFrame, uids: np.ndarray, periods: int) -> dict:
    """Each series' demand before its first forecast period, from its first sale on, last
    ``periods`` values in time order (periods missing inside the span count as 0)."""
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
    V = W.to_numpy(dtype=float)
    out = {}
    for u, row in zip(W.index, V, strict=True):
        pos = np.flatnonzero(np.nan_to_num(row) > 0)
        if len(pos) == 0:
            continue
        y = np.nan_to_num(row[pos[0]:], nan=0.0)  # from the first sale: before it the series did not exist
        out[u] = np.clip(y[-periods:], 0.0, None)
    return out


def _own_paths(y: np.ndarray, n: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Demand paths (n x h) bootstrapped from one series' own history (Willemain, Smart & Schwarz
    2004): whether a period has demand follows a two-state Markov chain estimated from the
    history's zero / non-zero transitions (started from the last period's state); each non-zero
    period's size is drawn from the history's non-zero sizes and jittered, x + z sqrt(x) with z
    standard normal (kept at x where that is <= 0), so sizes not seen yet can occur. Integer
    histories get integer sizes, rounded (the paper's 1 + INT(.) adds half a unit on average,
    +50 % on a series that sells one at a time).
    """
    nz = y > 0
    sizes = y[nz]
    prev, nxt = nz[:-1], nz[1:]
    # transition probabilities with half a pseudo-count each way (a chain seen once is not certain)
    p01 = (np.sum(~prev & nxt) + 0.5) / (np.sum(~prev) + 1.0)
    p11 = (np.sum(prev & nxt) + 0.5) / (np.sum(prev) + 1.0)
    state = np.full(n, bool(nz[-1]))
    occ = np.empty((n, h), dtype=bool)
    for k in range(h):
        state = rng.random(n) < np.where(state, p11, p01)
        occ[:, k] = state
    x = sizes[rng.integers(0, len(sizes), (n, h))]
    j = x + rng.standard_normal((n, h)) * np.sqrt(x)
    if np.all(sizes == np.round(sizes)):
        j = np.round(j)
    j = np.where(j > 0, j, x)
    return np.where(occ, j, 0.0)


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
