"""Replay of a periodic-review (R, S) policy with backorders over a historical holdout: what
service and stock the order-up-to levels of ``models.inventory.InventoryPolicy`` would have
achieved on the demand that really came.

Units: demand and stock in units, time in whole periods of the series (day / week / month).
``replay`` runs the policy; ``replay_summary`` restricts its per-series totals to a group of
series (e.g. a lead-time band).

Two cycle service levels are reported, because they differ a lot where most periods have no
demand. Cycle c of series i is the R periods from the (mean) arrival of the order of review
epoch c to that of the next, c * R + L_i .. c * R + L_i + R - 1.

- ``cycle_service_level_end_net``: share of cycles that END with net inventory >= 0 (no
  backorder outstanding). This is the event the order-up-to level is sized for: S is the
  target quantile of demand over lead time + review, and with a constant S and deterministic
  arrivals the net inventory at the end of cycle c is exactly S - the demand of the L_i + R
  periods from epoch c's review on. The service-level target refers to this one.
- ``cycle_service_level``: share of cycles in which no demand went unserved from stock. A cycle
  with backorders carried into it but no demand of its own counts as served here and as a
  stock-out above, so this one is >= the end-net one: by 2.2 / 1.3 / 0.5 points at 90 / 95 / 98 %
  targets on the synthetic dealer network, 78 % of whose series-weeks have no demand, by 0.1-0.2
  on Online Retail, not at all on Stallion (BENCHMARKS.md). The issue-3 acceptance figures of
  Online Retail and Stallion were first read on this one.

Timing: the review of epoch e is at the start of period e * R, before that period's demand; an
order placed then with a lead time of L periods is received at the start of period e * R + L,
before that period's demand. A lead time of 0 (same-day supply) is therefore on the shelf before
the demand of the review's own period: cycle c is periods c * R .. c * R + R - 1 and the order-up-to
level covers the R periods of review alone, as ``InventoryPolicy`` sizes it (steps 1..L for the
reorder point, 1..L + R for the order-up-to level); L = 1 delays the same arrival by one period.

Lead times: a series without a spread has every order arrive exactly ``lead_time`` periods after
it is placed. With a spread (``lead_time_std`` > 0) each order's lead time is drawn from
Normal(L_i, sd_i) cut at 0 - the distribution ``InventoryPolicy`` sizes with - and rounded to
whole periods (half to even), from the series' own seeded stream (``_order_lead_times``). Orders
may cross (a later order arriving before an earlier one), as independent shipments do: forcing
them into sequence (arrival = max(own, previous order's)) would lengthen lead times beyond the
distribution the levels were sized for. Cycles keep the calendar windows of the mean lead time.
"""

from __future__ import annotations

import numpy as np

__all__ = ["on_hand_at_same_service", "replay", "replay_cycles_summary", "replay_summary"]

# the replay's lead-time draws come from a stream of their own per series, apart from the
# sizing's (models._inventory_distribution._series_rng stream 0)
_ARRIVALS_STREAM = 1


def replay(actual: np.ndarray, order_up_to: np.ndarray, lead_time: int | np.ndarray, review_period: int,
           *, per_series: bool = False, lead_time_std: float | np.ndarray = 0.0, random_state: int | None = 0,
           series_ids=None, per_cycle: bool = False) -> dict:
    """Periodic-review (R, S) replay with backorders over a holdout.

    actual : n series x T periods of real demand. order_up_to : n x E levels, one per review
    epoch (epoch e at the start of period e * R, set from data before that period).
    lead_time : whole periods, one number for every series or an integer array of n, one per
    series: the mean lead time; it places the cycles. lead_time_std : periods, one number or
    one per series; 0 (default) delivers every order of the series exactly ``lead_time``
    periods after it is placed, > 0 draws each order's lead time (module docstring; orders may
    cross). random_state, series_ids : seed and ids of the per-series streams of those draws
    (ids default to row numbers); a series' draws depend on the seed and its id only.

    Stock starts at the first level with an empty pipeline. A cycle counts only if all its R
    periods lie in the holdout (a series with L_i + R > T has none). Returns both cycle service
    levels (module docstring; over all counted cycles), fill rate (units served from stock /
    demand) and average on-hand (units per series-period, end of period); with ``per_series``
    also ``per_series``: arrays of n - ``cycles_ok``, ``cycles_ok_end_net``, ``n_cycles``,
    ``served``, ``demand``, ``on_hand_sum`` (summed over the T periods) - so any group of series
    can be summarised (``replay_summary``); with ``per_cycle`` also ``per_cycle``: n x E arrays
    per cycle (cycle e is the one epoch e's order starts) - ``ok``, ``ok_end_net``, ``counted``
    (all its R periods in the holdout), ``served``, ``demand``, ``on_hand_sum`` and ``periods``
    (its periods inside the holdout) - so any set of cycles can be summarised
    (``replay_cycles_summary``, e.g. the cycles whose order a given method sized). Neither option
    changes the overall figures. Without a spread the figures are those of the deterministic
    replay to the bit, whatever the seed (tested).
    """
    actual = np.asarray(actual, dtype=float)
    S = np.asarray(order_up_to, dtype=float)
    n, T = actual.shape
    Lv = _lead_time_array(lead_time, n)
    ids = np.arange(n) if series_ids is None else np.asarray(series_ids, dtype=object)
    if len(ids) != n:
        raise ValueError(f"series_ids must name the {n} series; got {len(ids)}")
    arrive = _order_lead_times(Lv, lead_time_std, S.shape[1], random_state, ids)
    return _replay(actual, S, Lv, int(review_period), arrive, per_series, per_cycle)


def _replay(actual: np.ndarray, S: np.ndarray, Lv: np.ndarray, R: int, arrive: np.ndarray | None,
            per_series: bool, per_cycle: bool = False) -> dict:
    """The replay with each order's lead time given: ``arrive`` (n x E whole periods) or None
    for ``Lv`` (the mean, whole periods) on every order. ``Lv`` places the cycles."""
    n, T = actual.shape
    E = S.shape[1]
    rows = np.arange(n)
    net = S[:, 0].copy()  # net inventory (on hand - backorders); pipeline empty, so IP = S_0
    longest = (int(Lv.max()) if arrive is None else int(arrive.max())) if n else 0
    pipeline = np.zeros((n, T + longest + 1))
    served = demand = 0.0
    onhand_sum = 0.0
    periods = 0
    cycle_ok = np.ones((n, E), dtype=bool)
    cycle_net_ok = np.zeros((n, E), dtype=bool)
    cycle_seen = np.zeros((n, E), dtype=bool)
    s_served = np.zeros(n)
    s_onhand = np.zeros(n)
    if per_cycle:
        c_served, c_demand, c_onhand = np.zeros((n, E)), np.zeros((n, E)), np.zeros((n, E))
        c_periods = np.zeros((n, E), dtype=np.int64)
    for t in range(T):
        e = t // R
        if t % R == 0 and e < E and t > 0:
            ip = net + pipeline[:, t:].sum(axis=1)
            q = np.clip(S[:, e] - ip, 0.0, None)
            pipeline[rows, t + (Lv if arrive is None else arrive[:, e])] += q
        net += pipeline[:, t]
        avail = np.clip(net, 0.0, None)
        d = actual[:, t]
        got = np.minimum(avail, d)
        served += float(got.sum())
        demand += float(d.sum())
        short = d > avail + 1e-9
        net -= d
        # the cycle that period t belongs to, per series: started by the arrival of the order of
        # epoch (t - L_i) // R
        c = (t - Lv) // R
        inc = (c >= 0) & (c < E)
        cycle_seen[rows[inc], c[inc]] = True
        cycle_ok[rows[inc], c[inc]] &= ~short[inc]
        end = inc & ((t - Lv) % R == R - 1)  # t is the cycle's last period
        cycle_net_ok[rows[end], c[end]] = net[end] >= -1e-9
        oh = np.clip(net, 0.0, None)
        onhand_sum += float(oh.sum())
        periods += n
        if per_series:
            s_served += got
            s_onhand += oh
        if per_cycle:
            ri, ci = rows[inc], c[inc]
            c_served[ri, ci] += got[inc]
            c_demand[ri, ci] += d[inc]
            c_onhand[ri, ci] += oh[inc]
            c_periods[ri, ci] += 1
    # only cycles whose R periods all lie in the holdout count
    full = cycle_seen & (np.arange(E)[None, :] * R + Lv[:, None] + R <= T)
    n_cycles = int(full.sum())
    out: dict = {
        "cycle_service_level": float(cycle_ok[full].mean()) if n_cycles else float("nan"),
        "cycle_service_level_end_net": float(cycle_net_ok[full].mean()) if n_cycles else float("nan"),
        "fill_rate": served / demand if demand > 0 else float("nan"),
        "avg_on_hand": onhand_sum / periods if periods else float("nan"),
        "n_cycles": n_cycles,
    }
    if per_series:
        out["per_series"] = {"cycles_ok": (cycle_ok & full).sum(axis=1), "cycles_ok_end_net": (cycle_net_ok & full).sum(axis=1),
                             "n_cycles": full.sum(axis=1), "served": s_served, "demand": actual.sum(axis=1),
                             "on_hand_sum": s_onhand, "periods": T}
    if per_cycle:
        out["per_cycle"] = {"ok": cycle_ok & full, "ok_end_net": cycle_net_ok & full, "counted": full,
                            "served": c_served, "demand": c_demand, "on_hand_sum": c_onhand, "periods": c_periods}
    return out


def replay_cycles_summary(per_cycle: dict, mask: np.ndarray) -> dict[str, float]:
    """Both cycle service levels, fill rate and average on-hand over the counted cycles in
    ``mask`` (n x E booleans), from ``replay(..., per_cycle=True)["per_cycle"]``: the replay's
    definitions restricted to those cycles (fill rate: units served from stock / demand in their
    periods; on-hand: units per series-period over their periods). ``n_series``: series with at
    least one such cycle. nan where there is no cycle / no demand."""
    m = np.asarray(mask, dtype=bool) & per_cycle["counted"]
    return _ratios(per_cycle["ok"][m].sum(), per_cycle["ok_end_net"][m].sum(), int(m.sum()), per_cycle["served"][m].sum(),
                   per_cycle["demand"][m].sum(), per_cycle["on_hand_sum"][m].sum(), int(per_cycle["periods"][m].sum()),
                   int(m.any(axis=1).sum()))


def replay_summary(per_series: dict, mask: np.ndarray | None = None) -> dict[str, float]:
    """Both cycle service levels, fill rate and average on-hand of the series in ``mask`` (all
    when None), from ``replay(..., per_series=True)["per_series"]``: the same definitions as the
    replay's overall figures, restricted to those series (nan where a group has no cycle /
    no demand)."""
    m = np.ones(len(per_series["n_cycles"]), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    return _ratios(per_series["cycles_ok"][m].sum(), per_series["cycles_ok_end_net"][m].sum(),
                   int(per_series["n_cycles"][m].sum()), per_series["served"][m].sum(), per_series["demand"][m].sum(),
                   per_series["on_hand_sum"][m].sum(), int(m.sum()) * int(per_series["periods"]), int(m.sum()))


def _ratios(ok, ok_end_net, n_cycles: int, served, demand, on_hand_sum, periods: int, n_series: int) -> dict[str, float]:
    """The replay's figures from the sums over a group of cycles / series (nan where there is no
    cycle / no demand / no period): the one definition both summaries read."""
    demand = float(demand)
    return {
        "cycle_service_level": float(ok) / n_cycles if n_cycles else float("nan"),
        "cycle_service_level_end_net": float(ok_end_net) / n_cycles if n_cycles else float("nan"),
        "fill_rate": float(served) / demand if demand > 0 else float("nan"),
        "avg_on_hand": float(on_hand_sum) / periods if periods else float("nan"),
        "n_cycles": n_cycles,
        "n_series": n_series,
    }


def on_hand_at_same_service(curve, achieved: float, *, reading: str = "cycle_service_level_end_net") -> float | None:
    """Average on-hand (units per series-period) a family of policies would hold at the service
    ``achieved``: linear interpolation along ``curve``, a list of ``replay`` results of one method
    run at a grid of targets, ordered by their achieved ``reading`` (stable, so ties keep the
    grid's order; clamped to the curve's ends). ``reading`` is which cycle service level both
    ``achieved`` and the curve are read on: ``cycle_service_level_end_net`` (default: cycles
    ending without a backorder, what the target sizes for) or ``cycle_service_level`` (cycles with
    no unserved demand). None when ``achieved`` is not finite; curve points without a finite
    reading are left out.

    The backtest uses it as "the normal formula's on-hand at the service the distribution method
    achieved": read both sides on the same definition, or the comparison credits one method with
    the gap between the two definitions (module docstring)."""
    if reading not in ("cycle_service_level_end_net", "cycle_service_level"):
        raise ValueError(f"reading must be 'cycle_service_level_end_net' or 'cycle_service_level'; got {reading!r}")
    if achieved is None or not np.isfinite(achieved):
        return None
    pts = [(float(r[reading]), float(r["avg_on_hand"])) for r in curve
           if np.isfinite(r[reading]) and np.isfinite(r["avg_on_hand"])]
    if not pts:
        return None
    xs = np.array([x for x, _ in pts])
    ys = np.array([y for _, y in pts])
    order = np.argsort(xs, kind="mergesort")
    return float(np.interp(float(achieved), xs[order], ys[order]))


def _order_lead_times(L: np.ndarray, sd, n_orders: int, random_state: int | None, ids) -> np.ndarray | None:
    """Lead time in whole periods of each series' order at each review epoch (n x ``n_orders``),
    or None when no series has a spread (every order takes its series' ``L``). A series with
    sd_i > 0 draws Normal(L_i, sd_i) cut at 0 (as ``InventoryPolicy.fit`` draws its lead times)
    rounded half to even, from its own stream of (``random_state``, its id); one with sd_i = 0
    takes L_i on every order."""
    from models._inventory_distribution import _series_rng

    n = len(L)
    s = np.asarray(sd, dtype=float)
    s = np.full(n, float(s)) if s.ndim == 0 else s
    if s.shape != (n,):
        raise ValueError(f"lead_time_std must be one number or one per series ({n}); got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"lead_time_std must be >= 0 periods; got e.g. {s[~(np.isfinite(s) & (s >= 0))][:3].tolist()}")
    if not np.any(s > 0):
        return None
    out = np.repeat(L[:, None], n_orders, axis=1)
    for i in np.flatnonzero(s > 0):
        rng = _series_rng(random_state, ids[i], stream=_ARRIVALS_STREAM)
        out[i] = np.rint(np.clip(rng.normal(float(L[i]), s[i], n_orders), 0.0, None))
    return out


def _lead_time_array(lead_time, n: int) -> np.ndarray:
    """One whole number of periods per series. A single number is every series' and is cut to
    an integer as the scalar replay always did (``int``); an array must hold whole numbers
    (round them first: the replay moves whole periods). Negative lead times are refused."""
    a = np.asarray(lead_time)
    if a.ndim == 0:
        a = np.full(n, int(lead_time))
    if a.shape != (n,):
        raise ValueError(f"lead_time must be one number or one per series ({n}); got shape {a.shape}")
    af = a.astype(float)
    if not np.all(np.isfinite(af)) or np.any(af < 0) or np.any(af != np.round(af)):
        raise ValueError(f"lead_time must be whole periods >= 0; got e.g. {af[~((af >= 0) & (af == np.round(af)))][:3].tolist()}")
    return af.astype(np.int64)
