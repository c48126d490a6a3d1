"""Safety stock, reorder point and order-up-to level from the forecast distribution, the normal
formula beside it, stock warnings, and a replay over a historical holdout.

Units: demand in units per period (the forecast's period: day / week / month); lead time and
review period in periods (``lead_time_periods`` converts days).

Distribution method: for each series, simulate demand paths ``max(0, forecast_k + scale * r_k)``
where ``r`` is a whole path of scaled forecast errors (steps 1..h) drawn from the forecaster's
rolling-origin windows for the series' demand class - keeping the correlation of errors across
steps - and the lead time is drawn from Normal(L, sd_L) truncated at 0. The reorder point is
the ``service_level`` quantile of demand over the lead time; the order-up-to level the
quantile over lead time + review period; safety stock = reorder point - mean forecast over the
lead time. Series whose forecast over lead time + review is below one unit have their paths
thinned to the mean of the unclipped paths (``_thin``), so clipping at zero does not invent
demand while the error pool's own mean (the forecaster's bias on the class) is kept.

Normal formula (baseline): sigma_LTD = sqrt(L * sigma_d^2 + d^2 * sd_L^2), with d the mean
forecast per period and sigma_d the one-step error sd (scale x RMS of the class's step-1 scaled
errors); safety stock = z * sigma_LTD, reorder point = d * L + safety stock, order-up-to =
d * (L + R) + z * sqrt((L + R) * sigma_d^2 + d^2 * sd_L^2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["InventoryPolicy", "normal_policy", "lead_time_periods", "replay", "NotFittedError"]

_PERIOD_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}


class NotFittedError(ValueError, AttributeError):
    """Raised when the policy is used before fit."""


def lead_time_periods(days: float, freq: str) -> float:
    """Convert a lead time in days to forecast periods (D = 1 day, W = 7, M = 30.44)."""
    if freq not in _PERIOD_DAYS:
        raise ValueError(f"freq must be D, W or M; got {freq!r}")
    return float(days) / _PERIOD_DAYS[freq]


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


class InventoryPolicy:
    """Per-series safety stock, reorder point and order-up-to level (scikit-learn style).

    Parameters
    ----------
    service_level : target cycle service level (probability of no stock-out in a cycle).
    review_period : periods between orders (R of an (R, S) policy).
    n_sims : simulated demand paths per series. cover_limit_periods : on-hand above this many
    periods of forecast demand is flagged as overstock. random_state : seed.
    thin_below_units : near-zero series, whose forecast over lead time + review is below this
    many units, have their simulated paths thinned to the unclipped paths' mean (see ``_thin``).
    """

    def __init__(self, service_level: float = 0.95, review_period: float = 1.0, *, n_sims: int = 4000,
                 cover_limit_periods: float = 12.0, random_state: int = 0, thin_below_units: float = 1.0) -> None:
        self.service_level = service_level
        self.review_period = review_period
        self.n_sims = n_sims
        self.cover_limit_periods = cover_limit_periods
        self.random_state = random_state
        self.thin_below_units = thin_below_units

    def fit(self, forecast: pd.DataFrame, residuals: pd.DataFrame, scale: pd.Series,
            lead_time: float | pd.Series, lead_time_std: float | pd.Series = 0.0,
            point_col: str = "Final") -> InventoryPolicy:
        """Compute the policy.

        forecast : ``unique_id, ds`` and ``point_col``, h rows per series in time order.
        residuals : scaled error paths ``unique_id, demand_class, cutoff, step, r`` (from
            ``DemandForecaster.residuals_`` or a CV window); paths are pooled per demand class.
        scale : per-series scale the residuals were divided by (``DemandForecaster.scale_``).
        lead_time, lead_time_std : periods; a number for all series or a Series by unique_id.
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
        if (L + R).max() > h:
            raise ValueError(f"lead time + review period ({(L + R).max():.2f} periods) exceeds the forecast horizon {h}; forecast further ahead")
        sc = scale.reindex(uids).fillna(1.0).to_numpy(dtype=float)
        paths, cls_of = _paths_by_class(residuals, h)
        if not paths:
            raise ValueError("no complete residual paths: the forecaster had no rolling-origin windows to learn errors from")
        ser_cls = residuals.drop_duplicates("unique_id").set_index("unique_id")["demand_class"] if len(residuals) else pd.Series(dtype=str)
        rng = np.random.default_rng(self.random_state)
        q = self.service_level
        rows = []
        for i, u in enumerate(uids):
            k = ser_cls.get(u, cls_of.get(u))
            Pm = paths.get(k, paths["*"])
            idx = rng.integers(0, len(Pm), self.n_sims)
            raw = P[i][None, :] + sc[i] * Pm[idx]
            D = np.clip(raw, 0.0, None)
            Ls = np.clip(rng.normal(L[i], sdL[i], self.n_sims), 0.0, h - R) if sdL[i] > 0 else np.full(self.n_sims, L[i])
            mean_ltd = float(_interval_sum(P[i][None, :], np.array([L[i]]))[0])
            mean_pid = float(_interval_sum(P[i][None, :], np.array([L[i] + R]))[0])
            if mean_pid < self.thin_below_units:
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
                "mean_demand": float(P[i, : max(1, math.ceil(L[i] + R))].mean()),
                "lead_time": L[i], "lead_time_std": sdL[i], "ltd_mean": mean_ltd,
                "safety_stock": rop - mean_ltd, "reorder_point": rop,
                "order_up_to": float(np.quantile(pid, q, method="inverted_cdf")),
                "sigma_d": sc[i] * float(np.sqrt(np.mean(s1**2))),
            })
        pol = pd.DataFrame(rows)
        norm = normal_policy(pol["mean_demand"], pol["sigma_d"], pol["lead_time"], pol["lead_time_std"], R, q)
        for key, v in norm.items():
            pol[f"normal_{key}"] = v
        pol["service_level"] = q
        pol["review_period"] = R
        self.policy_ = pol
        return self

    def _check(self) -> None:
        if not hasattr(self, "policy_"):
            raise NotFittedError("this InventoryPolicy is not fitted yet; call fit(...) first")

    def advise(self, on_hand: pd.DataFrame) -> pd.DataFrame:
        """Warnings from current stock (``unique_id, on_hand`` in units).

        ``action``: ``replenish`` when on-hand is below the reorder point (``order_qty`` =
        order-up-to - on-hand), ``overstock`` when on-hand covers more than
        ``cover_limit_periods`` periods of forecast demand *and* exceeds the order-up-to level
        (``excess`` units above the larger of the two; suggest a promotion or a transfer to a
        location short of stock), else ``ok``. The order-up-to condition matters for slow
        movers: one lump of intermittent demand can be many periods of *mean* demand, and
        stock the policy itself asks for is not overstock.
        """
        self._check()
        if not {"unique_id", "on_hand"} <= set(on_hand.columns):
            raise ValueError(f"on_hand needs columns unique_id, on_hand; it has {list(on_hand.columns)}")
        df = self.policy_.merge(on_hand[["unique_id", "on_hand"]], on="unique_id", how="inner")
        d = df["mean_demand"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            cover = np.where(d > 0, df["on_hand"] / d, np.inf)
        df["periods_of_cover"] = cover
        limit = self.cover_limit_periods
        rep = df["on_hand"] < df["reorder_point"]
        ceiling = np.maximum(limit * d, df["order_up_to"].to_numpy())
        over = ~rep & (cover > limit) & (df["on_hand"].to_numpy() > ceiling)
        df["action"] = np.where(rep, "replenish", np.where(over, "overstock", "ok"))
        df["order_qty"] = np.where(rep, np.ceil(np.clip(df["order_up_to"] - df["on_hand"], 0, None)), 0.0)
        df["excess"] = np.where(over, np.floor(df["on_hand"] - ceiling), 0.0)
        df["suggestion"] = np.select(
            [rep, over],
            [
                "order " + df["order_qty"].astype(int).astype(str) + " units (up to " + df["order_up_to"].round(1).astype(str) + ")",
                "over " + str(limit) + " periods of cover and the order-up-to level: promote or transfer "
                + df["excess"].astype(int).astype(str) + " units",
            ],
            default="",
        )
        return df[["unique_id", "on_hand", "reorder_point", "order_up_to", "safety_stock", "periods_of_cover",
                   "action", "order_qty", "excess", "suggestion"]]

    def save(self, path: Path) -> Path:
        """Write the policy table and settings into the directory ``path``."""
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.policy_.to_parquet(path / "policy.parquet", index=False)
        (path / "params.json").write_text(json.dumps({
            "service_level": self.service_level, "review_period": self.review_period, "n_sims": self.n_sims,
            "cover_limit_periods": self.cover_limit_periods, "random_state": self.random_state,
            "thin_below_units": self.thin_below_units}))
        return path

    @classmethod
    def load(cls, path: Path) -> InventoryPolicy:
        path = Path(path)
        obj = cls(**json.loads((path / "params.json").read_text()))
        obj.policy_ = pd.read_parquet(path / "policy.parquet")
        return obj


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


def replay(actual: np.ndarray, order_up_to: np.ndarray, lead_time: int, review_period: int) -> dict[str, float]:
    """Periodic-review (R, S) replay with backorders over a holdout.

    actual : n series x T periods of real demand. order_up_to : n x E levels, one per review
    epoch (epoch e at the start of period e * R, set from data before that period). Orders
    arrive ``lead_time`` periods after they are placed; stock starts at the first level.
    A cycle is the R periods from one order's arrival to the next; it is a stock-out cycle if
    any demand in it is not served from stock. Returns cycle service level, fill rate (units
    served from stock / demand) and average on-hand (units per series-period, end of period).
    """
    actual = np.asarray(actual, dtype=float)
    S = np.asarray(order_up_to, dtype=float)
    n, T = actual.shape
    L, R = int(lead_time), int(review_period)
    E = S.shape[1]
    net = S[:, 0].copy()  # net inventory (on hand - backorders); pipeline empty, so IP = S_0
    pipeline = np.zeros((n, T + L + 1))
    served = demand = 0.0
    onhand_sum = 0.0
    periods = 0
    cycle_ok = np.ones((n, E), dtype=bool)
    cycle_seen = np.zeros((n, E), dtype=bool)
    for t in range(T):
        e = t // R
        if t % R == 0 and e < E and t > 0:
            ip = net + pipeline[:, t:].sum(axis=1)
            q = np.clip(S[:, e] - ip, 0.0, None)
            pipeline[:, t + L] += q
        net += pipeline[:, t]
        avail = np.clip(net, 0.0, None)
        d = actual[:, t]
        served += float(np.minimum(avail, d).sum())
        demand += float(d.sum())
        short = d > avail + 1e-9
        net -= d
        # the cycle that period t belongs to: started by the arrival of the order of epoch (t - L) // R
        c = (t - L) // R
        if 0 <= c < E:
            cycle_seen[:, c] = True
            cycle_ok[:, c] &= ~short
        onhand_sum += float(np.clip(net, 0.0, None).sum())
        periods += n
    full = cycle_seen.copy()
    # only cycles whose R periods all lie in the holdout count
    for c in range(E):
        if c * R + L + R > T:
            full[:, c] = False
    n_cycles = int(full.sum())
    return {
        "cycle_service_level": float(cycle_ok[full].mean()) if n_cycles else float("nan"),
        "fill_rate": served / demand if demand > 0 else float("nan"),
        "avg_on_hand": onhand_sum / periods if periods else float("nan"),
        "n_cycles": n_cycles,
    }
