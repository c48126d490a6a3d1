"""Safety stock, reorder point and order-up-to level from the forecast distribution, the normal
formula beside it, and stock warnings. The replay over a historical holdout (``replay``,
``replay_summary``) lives in ``models.inventory_replay`` and is importable from here.

Units: demand in units per period (the forecast's period: day / week / month); lead time and
review period in periods (``lead_time_periods`` converts days).

Distribution method: for each series, simulate demand paths ``max(0, forecast_k + scale * r_k)``
where ``r`` is a whole path of scaled forecast errors (steps 1..h) drawn from the forecaster's
rolling-origin windows for the series' demand class - keeping the correlation of errors across
steps - and the lead time is drawn from Normal(L, sd_L) truncated at 0. The reorder point is
the ``service_level`` quantile of demand over the lead time; the order-up-to level the
quantile over lead time + review period; safety stock = reorder point - mean forecast over the
lead time. Series whose forecast over lead time + review is below one unit have their paths
thinned to the mean of the unclipped paths (``_inventory_sim.thin``), so clipping at zero does not invent
demand while the error pool's own mean (the forecaster's bias on the class) is kept.

Intermittent and lumpy series (``own_history_classes``) with enough history (``fit(...,
history=...)``) take their paths from their OWN demand instead of the class pool, because one
pool for a class mixes a series that sells a lump of 26 twice a year with one that sells 2 every
other week (their order-up-to levels came out 0.09-1.83 x the right one on the synthetic
network): a bootstrap after Willemain, Smart & Schwarz (2004) - occurrence from a two-state
Markov chain of the series' zero / non-zero periods, sizes drawn from its non-zero demands and
jittered (``_own_paths``) - over its last ``history_periods`` periods before the forecast.
``recentre`` sets the mean: ``"blend"`` (default) scales the sizes so the mean over lead time +
review is halfway between the forecast's and the series' own, ``"forecast"`` to the forecast's,
``"none"`` keeps the history's; ``"bias_corrected"`` uses forecast + the class pool's mean error.
Chosen on 4 earlier origins of the synthetic network (h = 8, 95 % target; share of series whose
next lead-time demand exceeded the reorder point): class pool 7.6 % (lumpy 6.7 %, intermittent
9.0 %), own history re-centred to the forecast 10.2 %, blend 6.7 % (lumpy 5.5 %, intermittent
8.3 %) with 11 % less order-up-to stock, none 6.0 %. Full re-centring to the point forecast
under-stocks; the blend keeps the forecast moving the level (with none, the Online Retail replay
fell 5 points short).
Re-centring scales the SIZE of a sale; how often one comes stays the series' own (the chain). The
blend moves the paths' mean, but where fewer than 1 - ``service_level`` of the lead times see a sale
the reorder point stays 0 however high the forecast runs, while ``ltd_mean``, ``mean_demand`` and
the normal columns follow the forecast. So for a series that stopped selling the sizing follows its
own history, as chosen above (synthetic network, SKU00008/DC1: no sale in its last 70 of 104 weeks,
a sale within lead time + review on 135 of 4,000 paths, all from the chain's half pseudo-count; the
blend took their mean from 10.6 to 18.8 units, the forecast's 26.9; reorder point and order-up-to
0, normal reorder point 233.6); ``own_history_zero_notes`` says so on the row (the CLI's
``forecast_note``). ``min_nonzero`` counts the periods with a sale since the first, not only those in
the window, for a series silent for half the window or more (a live sparse series with fewer sales in
its window stays on the class pool): a series that stopped selling longer ago than ``history_periods`` (its window all zeros)
is sized from its own history too, as stopped (reorder point and order-up-to 0, no simulation: there
is no sale size to draw), where it used to fall to the class pool and be stocked for its forecast
while one stopped 70 periods ago got 0.

The lead time is drawn per path from Normal(L, sd_L) truncated at 0 and cut at the horizon minus
the review period; series whose lead time + review + 2.33 sd_L exceeds the horizon (more than 1 %
of paths would be cut) are refused with the horizon they need (``lead_time_fits``,
``horizon_needed``). Safety stock (reorder point - mean lead-time demand) can be negative: for
skewed demand (lumpy series) at modest service levels the quantile lies below the mean.

A lead time of 0 (same-day supply: collected at a local DC, made or drop-shipped the same day) is
a valid input: without a spread no demand falls in the lead time, so the reorder point and the
safety stock are 0 in both methods and the order-up-to level covers the review period alone
(``advise`` then says ``replenish`` only for a position below 0, i.e. backorders). With a spread,
half the lead times drawn from Normal(0, sd_L) cut at 0 are 0 and the reorder point is the quantile
over all paths (``ltd_mean``, the forecast over the mean lead time, stays 0: safety stock = reorder point).

Normal formula (baseline): sigma_LTD = sqrt(L * sigma_d^2 + d^2 * sd_L^2), with d the mean
forecast per period and sigma_d the one-step error sd (scale x RMS of the class's step-1 scaled
errors; for a series sized from its own history, the sd of that history's per-period demand,
so both methods use the same information); safety stock = z * sigma_LTD, reorder point = d * L + safety stock, order-up-to =
d * (L + R) + z * sqrt((L + R) * sigma_d^2 + d^2 * sd_L^2).

Layout: this module holds ``InventoryPolicy`` (parameters, ``fit``, ``save`` / ``load``); its
parts live in private modules whose public names are re-exported here (import them from this
module): ``models._inventory_distribution`` (lead times, random streams, error-path pools, the
own-history bootstrap, the normal formula), ``models._inventory_sim`` (the batched simulation),
``models._inventory_advice`` (``advise``: actions, order quantities, stock-date notes) and
``models._inventory_forecaster`` (sizing a fitted ``DemandForecaster``: fallback and
short-history series).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from models import _inventory_sim as _sim
from models._inventory_advice import (  # noqa: F401 - ORDER_RULES, order_rule_values: re-exported
    ORDER_RULES,
    _advise,
    forecast_offset,
    long_silence_notes,
    order_rule_values,
    own_history_zero_notes,
    sizing_start,
    stock_date_notes,
    stopped_series_notes,
)
from models._inventory_distribution import (
    LEAD_TIME_TAIL_Z,
    OWN_HISTORY_PERIODS,
    _history_by_series,
    _interval_sum,
    _paths_by_class,
    _per_series,
    _series_rng,
    horizon_needed,
    lead_time_fits,
    lead_time_periods,
    lead_times_beyond_forecaster,
    normal_policy,
    series_lead_times,
)
from models._inventory_forecaster import (
    SHORT_OWN_SOURCE,
    SHORT_SOURCE,
    fallback_served,
    fit_forecaster_policy,
    forecaster_history,
    served_source,
    short_history_series,
)

# the replay lives apart; importable from here as before
from models.inventory_replay import replay, replay_summary

__all__ = ["InventoryPolicy", "normal_policy", "lead_time_periods", "replay", "NotFittedError", "forecaster_history",
           "horizon_needed", "lead_time_fits", "lead_times_beyond_forecaster", "LEAD_TIME_TAIL_Z", "replay_summary", "series_lead_times",
           "fit_forecaster_policy", "short_history_series", "SHORT_SOURCE", "fallback_served", "served_source", "SHORT_OWN_SOURCE", "stock_date_notes",
           "sizing_start", "forecast_offset", "own_history_zero_notes", "long_silence_notes", "stopped_series_notes"]


class NotFittedError(ValueError, AttributeError):
    """Raised when the policy is used before fit."""



def _silence(y: np.ndarray) -> int:
    """Periods after the last sale of ``y`` (all of them when it holds none)."""
    at = np.flatnonzero(y > 0)
    return len(y) if not len(at) else len(y) - 1 - int(at[-1])


class InventoryPolicy:
    """Per-series safety stock, reorder point and order-up-to level (scikit-learn style).

    Parameters
    ----------
    service_level : target cycle service level (probability of no stock-out in a cycle).
    review_period : periods between orders (R of an (R, S) policy).
    n_sims : simulated demand paths per series. cover_limit_periods : on-hand above this many
    periods of forecast demand is flagged as overstock. random_state : seed; each series draws
    from its own stream of (seed, series id), so its numbers do not depend on the other series
    sized with it.
    thin_below_units : near-zero series, whose forecast over lead time + review is below this
    many units, have their simulated paths thinned to the unclipped paths' mean (see ``_inventory_sim.thin``).
    """

    def __init__(self, service_level: float = 0.95, review_period: float = 1.0, *, n_sims: int = 4000,
                 cover_limit_periods: float = 12.0, random_state: int = 0, thin_below_units: float = 1.0,
                 own_history_classes: tuple[str, ...] = ("intermittent", "lumpy"), history_periods: int = OWN_HISTORY_PERIODS,
                 min_history_periods: int = 26, min_nonzero: int = 3, recentre: str = "blend",
                 overstock_tolerance_units: float = 1.0) -> None:
        self.service_level = service_level
        self.review_period = review_period
        self.n_sims = n_sims
        self.cover_limit_periods = cover_limit_periods
        self.random_state = random_state
        self.thin_below_units = thin_below_units
        self.own_history_classes = tuple(own_history_classes)
        self.history_periods = history_periods
        self.min_history_periods = min_history_periods
        self.min_nonzero = min_nonzero
        self.recentre = recentre
        self.overstock_tolerance_units = overstock_tolerance_units

    def fit(self, forecast: pd.DataFrame, residuals: pd.DataFrame, scale: pd.Series,
            lead_time: float | pd.Series, lead_time_std: float | pd.Series = 0.0,
            point_col: str = "Final", history: pd.DataFrame | None = None, pools: pd.Series | None = None,
            pool_source: str = "class_pool") -> InventoryPolicy:
        """Compute the policy.

        forecast : ``unique_id, ds`` and ``point_col``, h rows per series in time order.
        residuals : scaled error paths ``unique_id, demand_class, cutoff, step, r`` (from
            ``DemandForecaster.residuals_`` or a CV window); paths are pooled per demand class.
        scale : per-series scale the residuals were divided by (``DemandForecaster.scale_``).
        lead_time, lead_time_std : periods; a number for all series or a Series by unique_id.
        history : optional long ``unique_id, ds, y`` demand the forecaster was fitted on. Series of
            ``own_history_classes`` with enough of it (``min_history_periods`` periods since the
            first sale, ``min_nonzero`` periods with a sale in the last ``history_periods`` (or since the
            first sale, for a series silent for half of them or more), those last ``history_periods``
            used) get their lead-time demand from a bootstrap of their own history (``_own_paths``)
            instead of the class's error pool; one without a sale in those last ``history_periods``
            (it stopped selling longer ago) gets a reorder point and order-up-to of 0, as its own
            history says. Rows at or after a series' first forecast period are ignored.
        pools : optional pool key (a ``demand_class`` of ``residuals``) per unique_id, for series that
            have no rows in ``residuals`` (the short-history fallback's series: the bucket of their
            number of observed periods); a key with fewer than 20 paths falls back to all paths.
        pool_source : the ``ltd_source`` of series sized from the pools (default ``class_pool``).
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
        sold: dict = {}  # periods with a sale since the first, window or not
        hist = _history_by_series(history, fc, uids, self.history_periods, sold) if history is not None else {}
        q = self.service_level
        n = int(self.n_sims)
        # per series: its class, the pool it draws from and whether it is sized from its own history
        cls_by = dict(zip(ser_cls.index, ser_cls.to_numpy(), strict=True))
        if pools is not None:
            cls_by.update({u: str(k) for u, k in pools.items()})
        keys = list(paths)
        pool_no = {k: p for p, k in enumerate(keys)}
        pool_T = np.ascontiguousarray(np.concatenate([paths[k] for k in keys]).T)  # steps x paths
        sizes = np.array([len(paths[k]) for k in keys])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        # the normal formula's per-period sd: scale x RMS of the pool's step-1 errors
        rms = [float(np.sqrt(np.mean(paths[k][:, 0] ** 2))) for k in keys]
        N = len(uids)
        cls_list, own, pno = [], [], np.empty(N, dtype=np.int64)
        stopped = np.zeros(N, dtype=bool)  # own-history series without a sale in their window: sized 0
        for i, u in enumerate(uids):
            k = cls_by.get(u, cls_of.get(u))
            cls_list.append(k)
            pno[i] = pool_no[k] if k in paths else pool_no["*"]
            y = hist.get(u)
            # min_nonzero sales in the window, or since the first sale for a series silent for half the window
            # or more: one that stopped selling over ~100 periods ago went to the class pool (the forecast's
            # level) while one stopped 60-70 periods ago got a reorder point of 0 from its own history; a live
            # sparse series (2 sales in the window, the last 5 periods ago) stays on the class pool
            ok = (k in self.own_history_classes and y is not None and len(y) >= self.min_history_periods
                  and (int((y > 0).sum()) >= self.min_nonzero
                       or (sold.get(u, 0) >= self.min_nonzero and _silence(y) >= self.history_periods // 2)))
            stopped[i] = ok and not (y > 0).any()
            own.append(_sim.OwnHistory(y) if ok and not stopped[i] else None)
        mean_ltd = _interval_sum(P, L)
        mean_pid = _interval_sum(P, L + R)
        rop, oup = np.empty(N), np.empty(N)
        step = _sim.chunk_size(n, h)
        # chunks of like series (class pool / own history, fixed lead time / a spread): each
        # series draws from its own stream, so the order they are sized in changes nothing
        kind = 2 * np.array([o is not None for o in own], dtype=int) + (sdL > 0)
        kind[stopped] = -1
        rop[stopped] = oup[stopped] = 0.0  # no sale in its window: no sale size to bootstrap, so 0
        for g in np.unique(kind[~stopped]):
            group = np.flatnonzero(kind == g)
            for a in range(0, len(group), step):
                rows = group[a:a + step]
                rngs = [_series_rng(self.random_state, uids[i]) for i in rows]
                rop[rows], oup[rows] = _sim.size_chunk(
                    rows, P=P, sc=sc, L=L, sdL=sdL, R=R, n=n, q=q, rngs=rngs, pool_T=pool_T, pool_off=starts[pno],
                    pool_len=sizes[pno], own=own, recentre=self.recentre, thin_below=self.thin_below_units,
                    mean_pid=mean_pid)
        is_own = np.array([o is not None for o in own], dtype=bool) | stopped
        mean_demand = np.empty(N)
        span = np.maximum(1, np.ceil(L + R)).astype(int)
        for w in np.unique(span):
            at = np.flatnonzero(span == w)
            mean_demand[at] = P[at, :w].mean(axis=1)
        # the normal baseline's per-period sd on the same information as the distribution
        # method: the series' own demand where its lead-time demand comes from its own history,
        # else scale x the class pool's step-1 RMS (a few tiny-scale series dominate a lumpy
        # class's pooled RMS: 0.5 units a week got sigma_d 349)
        sigma_d = np.array([float(np.std(hist[u], ddof=1)) if is_own[i] else sc[i] * rms[pno[i]]
                            for i, u in enumerate(uids)])
        pol = pd.DataFrame({
            "unique_id": list(uids), "demand_class": [k if k is not None else "unknown" for k in cls_list],
            "ltd_source": np.where(is_own, "own_history", pool_source).tolist(),
            "mean_demand": mean_demand, "lead_time": L, "lead_time_std": sdL, "ltd_mean": mean_ltd,
            "safety_stock": rop - mean_ltd, "reorder_point": rop, "order_up_to": oup, "sigma_d": sigma_d,
        })
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

    def advise(self, on_hand: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
        """Warnings from current stock (``unique_id, on_hand`` in units; a negative on-hand is net
        stock with backorders, as the order book's inventory table keeps it: replenish, the order
        covering the backorders, and 0 periods of cover).

        Optional columns, per series (absent or empty: the default):
        ``on_order`` - units ordered and not received yet (>= 0, default 0); the replenish
        decision and the order are taken on the inventory position, on-hand + on-order, so an
        order placed last week is not suggested again every week until it arrives;
        ``min_order_qty`` - the smallest order the supplier takes (>= 0, default none);
        ``order_multiple`` - pack / case size: orders are whole multiples of it (> 0, default 1 unit).

        ``action``: ``replenish`` when the inventory position is below the reorder point (a
        warning: the stock may not last the lead time of an order placed now); ``order`` when it is
        at or above the reorder point but below the order-up-to level (the routine order of this
        review). Both carry ``order_qty`` = order-up-to - position, rounded UP to whole units, then
        raised to ``min_order_qty`` and rounded UP to a multiple of ``order_multiple``: never below
        what reaches the order-up-to level, never 0 or negative; ``order_qty_unrounded`` keeps
        order-up-to - position. The policy is a periodic review (R, S): the order-up-to level
        covers lead time + review period, and the service level holds only if the position is
        raised to it at every review (what ``simulate inventory`` replays). Ordering only on
        ``replenish`` lets the position sit just above the reorder point, which covers the lead
        time alone, for a whole review period: in a simulation of weekly review, a 2-week lead time
        and Poisson demand at a 95 % target that delivered 80 % of cycles without a backorder
        (96 % when the ``order`` rows are ordered too). ``overstock`` when the stock covers more than
        ``cover_limit_periods`` periods of forecast demand *and* exceeds the order-up-to level
        by more than a tolerance (both on the inventory position: stock on order counts once it
        arrives, and the suggestion then says to reduce the open orders) - the larger of one review period's expected demand and
        ``overstock_tolerance_units`` - (``excess`` units above the larger of the two; suggest a
        promotion or a transfer to a location short of stock), else ``ok``. Without the
        tolerance, slow movers whose order-up-to level sits above the cover limit were flagged for
        a fraction of a unit over it (about 10 % of the synthetic network's normal snapshots),
        and stock the next review period consumes anyway is not worth a promotion or a transfer. The order-up-to condition matters for slow
        movers: one lump of intermittent demand can be many periods of *mean* demand, and
        stock the policy itself asks for is not overstock.

        ``freq`` (D / W / M, the forecast's period) only words the suggestion: "over 12 weeks of
        cover" instead of "over 12.0 periods of cover".
        """
        self._check()
        return _advise(self, on_hand, freq)

    def save(self, path: Path) -> Path:
        """Write the policy table and settings into the directory ``path``."""
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.policy_.to_parquet(path / "policy.parquet", index=False)
        (path / "params.json").write_text(json.dumps({
            "service_level": self.service_level, "review_period": self.review_period, "n_sims": self.n_sims,
            "cover_limit_periods": self.cover_limit_periods, "random_state": self.random_state,
            "thin_below_units": self.thin_below_units, "own_history_classes": list(self.own_history_classes),
            "history_periods": self.history_periods, "min_history_periods": self.min_history_periods,
            "min_nonzero": self.min_nonzero, "recentre": self.recentre,
            "overstock_tolerance_units": self.overstock_tolerance_units}))
        return path

    @classmethod
    def load(cls, path: Path) -> InventoryPolicy:
        path = Path(path)
        obj = cls(**json.loads((path / "params.json").read_text()))
        obj.policy_ = pd.read_parquet(path / "policy.parquet")
        return obj
