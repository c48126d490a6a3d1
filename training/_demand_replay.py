"""The demand backtest's inventory replay: ``run_inventory_replay`` refits the forecaster at each
review epoch of a holdout, sizes (R, S) policies two ways (the forecast's error paths and the
normal formula) and replays the real demand through them; ``_short_history_replay`` replays the
short-history fallback's series apart, and ``replay_metrics`` turns a replay into MLflow metrics.

Apart from the backtest and its report because it is a different experiment on the same
forecaster (stock, not forecast accuracy) and alone about half the former module. Private to
``training.demand_backtest``, which re-exports ``run_inventory_replay`` and ``replay_metrics``
and keeps ``check_inventory_replay``; the replay reads ``fit_forecaster_policy`` from
``models.inventory`` at call time (patch it there).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from training._demand_report import _num


def _lead_time_bands(L: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Groups of series by replay lead time (whole periods) for the per-band figures: one group
    per value when there are at most 4, else up to 4 groups cut at the quartiles of the series'
    lead times (labels name the lead times in each, e.g. ``"L 5-7"``)."""
    vals = np.unique(L)
    if len(vals) <= 4:
        return [(f"L {int(v)}", L == v) for v in vals]
    edges = np.unique(np.quantile(L, [0.25, 0.5, 0.75], method="inverted_cdf"))
    bins = np.searchsorted(edges, L, side="left")  # L <= edges[0] -> 0, ...
    out = []
    for b in range(len(edges) + 1):
        m = bins == b
        if m.any():
            lo, hi = int(L[m].min()), int(L[m].max())
            out.append((f"L {lo}" if lo == hi else f"L {lo}-{hi}", m))
    return out


def _spread_summary(x: np.ndarray) -> float | dict[str, float | None]:
    """One number when every series has it, else its min / median / mean / max."""
    if len(x) and np.all(x == x[0]):
        return x[0].item()
    return {"min": _num(np.min(x)), "median": _num(np.median(x)), "mean": _num(np.mean(x)), "max": _num(np.max(x))}


def _epoch_fit(info: dict, short: dict | None = None) -> Any:
    """One review epoch's fit (``rolling_forecasts``' info; with ``short``, the short-history fallback's
    info at that cutoff) as :func:`models.inventory.fit_forecaster_policy` reads a fitted forecaster."""
    from types import SimpleNamespace

    sh = short or {}
    return SimpleNamespace(residuals_=info["residuals"], scale_=info["scale"], classes_=info["classes"],
                           fallback_=info.get("fallback"), served_residuals_=info.get("served_residuals") or {},
                           short_=sh.get("short"), short_residuals_=sh.get("residuals"), short_scale_=sh.get("scale"))


def _short_history_replay(est, panel, runs: list, cut_idx: list[int], common: set, *, h: int, R: int, holdout: int,
                          targets: Sequence[float], n_sims: int, random_state: int, history: pd.DataFrame,
                          L: int, sdL: float, L_all: np.ndarray | None, sdL_all: np.ndarray | None) -> dict[str, Any]:
    """The replay of the series the short-history fallback sizes (``short_history`` of
    :func:`run_inventory_replay`'s JSON), apart from the established series, whose figures it
    leaves as they are (it reads the same rolling forecasts and nothing of theirs).

    Group: every series the fallback forecasts at some review epoch (too few periods for the
    members at that cutoff, some demand before it) and that is not forecast by the members at
    every epoch. At each epoch its policy is what ``dealerml safety-stock`` would have set from
    data up to the cutoff: the fallback's (``fit_forecaster_policy`` with the demand before the
    cutoff: level-scaled error paths with the count floor, and the own-history floor for a
    lumpy past) while it is short, the members' (as the established series) once it has
    ``min_train`` periods, none (order-up-to 0: nothing stocked) before its first sale. One
    replay with the same arrivals rule and seed; the figures are read per cycle, by which
    policy sized the order that starts it: ``distribution`` / ``normal`` over the cycles the
    fallback sized (the normal formula on the fallback policy's ``mean_demand`` / ``sigma_d``,
    without the count floor), ``by_window`` the distribution's split by whether the periods the
    fallback averaged had any demand (without: level 0, the count floor, and the own-history
    floor where the past is lumpy), ``by_sizing`` by ``ltd_source`` (the fallback alone, or
    ``short_history+own_history``), ``after_graduating`` over those the members sized."""

    from models.inventory import (
        SHORT_OWN_SOURCE,
        InventoryPolicy,
        fit_forecaster_policy,
        normal_policy,
        replay,
    )
    from models.inventory_replay import replay_cycles_summary

    E = len(runs)
    T = panel.Y.shape[1]
    shorts = []
    for (fc, info), c in zip(runs, cut_idx, strict=True):
        sfc, sinfo = est._with_short(info.get("history_panel", panel), c, h, fc.iloc[:0], info)
        shorts.append((sfc, sinfo))
    group = sorted({u for sfc, _ in shorts if len(sfc) for u in sfc["unique_id"].unique()} - set(common))
    out: dict[str, Any] = {"n_series": len(group)}
    if not group:
        out["note"] = "no series was forecast by the short-history fallback at a review epoch"
        return out
    uids = np.array(group, dtype=object)
    pos = pd.Series(np.arange(panel.n), index=panel.uids)
    rows = pos.loc[uids].to_numpy()
    actual = np.nan_to_num(panel.Y[rows, T - holdout:], nan=0.0)  # before a series starts: no demand
    if L_all is not None:
        Lv = L_all[rows].astype(np.int64)
        L_fit: float | pd.Series = pd.Series(L_all[rows], index=uids)
        sdL_fit: float | pd.Series = pd.Series(sdL_all[rows], index=uids)
        sd_used = sdL_all[rows]
    else:
        Lv = np.full(len(uids), L, dtype=np.int64)
        L_fit, sdL_fit, sd_used = float(L), sdL, np.full(len(uids), sdL)
    src = np.full((len(uids), E), "none", dtype=object)
    empty_window = np.zeros((len(uids), E), dtype=bool)  # the fallback's window had no demand: level 0
    gset = set(group)
    for e, ((fc, _), (sfc, sinfo)) in enumerate(zip(runs, shorts, strict=True)):
        src[:, e] = np.where(pd.Index(uids).isin(set(fc["unique_id"]) & gset), "members", src[:, e])
        if len(sfc):
            src[:, e] = np.where(pd.Index(uids).isin(set(sfc["unique_id"])), "short", src[:, e])
            zero = set(sinfo["short"].loc[sinfo["short"]["window_total"] <= 0, "unique_id"])
            empty_window[:, e] = pd.Index(uids).isin(zero)
    S = {q: np.zeros((len(uids), E)) for q in targets}
    S_norm = {q: np.zeros((len(uids), E)) for q in targets}
    own = {q: np.zeros((len(uids), E), dtype=bool) for q in targets}  # sized short_history+own_history
    at = pd.Series(np.arange(len(uids)), index=uids)
    for e, ((fc, info), (sfc, sinfo)) in enumerate(zip(runs, shorts, strict=True)):
        fs = sfc[sfc["unique_id"].isin(gset)] if len(sfc) else sfc
        fm = fc[fc["unique_id"].isin(gset)]
        # the fallback's fit at this epoch, as fit_forecaster_policy reads it (one per epoch, every target)
        like = _epoch_fit(info, sinfo) if len(fs) else None
        members = _epoch_fit(info)  # as the established series: a fallback member's series on its error paths
        hist = info["history_panel"].long(cut_idx[e]) if "history_panel" in info else history  # as of the epoch
        for q in targets:
            if len(fs):
                # with the demand before the cutoff, as safety-stock and the service size them (a
                # lumpy past also sizes from its own history: short_history+own_history)
                pol = fit_forecaster_policy(InventoryPolicy(q, R, n_sims=n_sims, random_state=random_state + e), fs, like,
                                            L_fit, sdL_fit, history=hist).policy_
                # the sizer speaks string ids; the rows are the group's in its order
                i = pd.Index(uids.astype(str)).get_indexer(pol["unique_id"].astype(str))
                S[q][i, e] = pol["order_up_to"].to_numpy()
                own[q][i, e] = (pol["ltd_source"] == SHORT_OWN_SOURCE).to_numpy()
                S_norm[q][i, e] = normal_policy(pol["mean_demand"], pol["sigma_d"], pol["lead_time"],
                                                pol["lead_time_std"], R, q)["order_up_to"]
            if len(fm):
                pol = fit_forecaster_policy(InventoryPolicy(q, R, n_sims=n_sims, random_state=random_state + e), fm,
                                            members, L_fit, sdL_fit, history=hist).policy_
                i = at.loc[pol["unique_id"]].to_numpy()
                S[q][i, e] = pol["order_up_to"].to_numpy()
                S_norm[q][i, e] = normal_policy(pol["mean_demand"], pol["sigma_d"], pol["lead_time"],
                                                pol["lead_time_std"], R, q)["order_up_to"]
    Lrep = int(L) if L_all is None else Lv
    arrivals = {"lead_time_std": sd_used, "random_state": random_state, "series_ids": uids}
    short_cyc, grad_cyc = src == "short", src == "members"
    first = np.argmax(src != "none", axis=1)
    out.update({
        "definition": ("series the short-history fallback forecasts at some review epoch (fewer than min_train periods, "
                       "some demand before the cutoff) and the members not at every epoch; each epoch's policy from data "
                       "up to it: the fallback's while short, the members' once long enough, none (0) before the first "
                       "sale. Figures over the cycles whose order the fallback sized (by_window: split by whether the periods the "
                       "fallback averaged had demand; by_sizing: by ltd_source); after_graduating: those the members "
                       "sized"),
        "n_series_short_at_first_epoch": int((src[:, 0] == "short").sum()),
        "n_series_first_sale_in_holdout": int((first > 0).sum()),
        "n_series_graduating": int((short_cyc.any(axis=1) & grad_cyc.any(axis=1)).sum()),
        "n_policies_by_source": {"short_history": int(short_cyc.sum()), "members": int(grad_cyc.sum()),
                                 "none": int((src == "none").sum())},
        "periods_at_first_epoch": _spread_summary(np.array([float(np.isfinite(panel.Y[r, : cut_idx[0] + 1]).sum())
                                                            for r in rows])),
        "lead_time_periods": _spread_summary(Lv),
        "targets": {},
    })

    def fig(pc, mask):
        return {k: (v if k in ("n_cycles", "n_series") else _num(v)) for k, v in replay_cycles_summary(pc, mask).items()}

    for q in targets:
        rd = replay(actual, S[q], Lrep, R, per_cycle=True, **arrivals)["per_cycle"]
        rn = replay(actual, S_norm[q], Lrep, R, per_cycle=True, **arrivals)["per_cycle"]
        out["targets"][f"{q:.2f}"] = {
            "distribution": fig(rd, short_cyc), "normal": fig(rn, short_cyc),
            # level 0 (no demand in the periods averaged: only the count floor sizes them) or not
            "by_window": {"without_demand": fig(rd, short_cyc & empty_window),
                          "with_demand": fig(rd, short_cyc & ~empty_window)},
            # sized by the fallback alone, or raised to the own-history bootstrap (a lumpy past)
            "by_sizing": {"short_history": fig(rd, short_cyc & ~own[q]),
                          "short_history+own_history": fig(rd, short_cyc & own[q])},
            "after_graduating": {"distribution": fig(rd, grad_cyc), "normal": fig(rn, grad_cyc)}}
    return out


def replay_metrics(rep: dict) -> list[tuple[dict[str, float], dict[str, str]]]:
    """The MLflow metrics of a :func:`run_inventory_replay` result, as ``(metrics, slice)`` pairs per
    target: ``distribution.*`` / ``normal.*`` of the established series, and
    ``short_history.distribution.*`` / ``short_history.normal.*`` over the cycles the short-history
    fallback sized (when the replay has such series), so runs compare on both in MLflow."""
    out = []
    groups = [("", rep.get("targets") or {})]
    if (rep.get("short_history") or {}).get("n_series"):
        groups.append(("short_history.", rep["short_history"].get("targets") or {}))
    for prefix, targets in groups:
        for t, v in targets.items():
            out.append(({f"{prefix}{meth}.{k}": x for meth in ("distribution", "normal")
                         for k, x in v[meth].items() if x is not None}, {"target": t}))
    return out


def run_inventory_replay(series: pd.DataFrame, *, freq: str, lead_time_days: float, lead_time_std_days: float = 0.0,
                         review_period: int = 1, holdout: int = 12, targets: Sequence[float] = (0.90, 0.95, 0.98),
                         n_sims: int = 2000, forecaster_kwargs: dict[str, Any] | None = None,
                         random_state: int = 0, lead_times: pd.DataFrame | None = None,
                         check_only: bool = False, history_as_of: Any = None) -> dict[str, Any] | None:
    """Replay an (R, S) policy over the last ``holdout`` periods for both methods.

    ``check_only``: only the checks made before the first refit (a holdout that does not fit the
    table, no series long enough at the first epoch: the same errors), then None, in a fraction of
    a second; :func:`check_inventory_replay`.

    At each review epoch the forecaster is refit on data before it (rolling origin), the
    distribution-based and the normal-formula order-up-to levels are set for every target,
    and :func:`models.inventory.replay` runs the real demand through them. Also reports the
    normal formula's average on-hand at the cycle service level the distribution method
    achieved (interpolated over a grid of normal-formula targets).

    Lead times: ``lead_times`` (the order book's table as ``training.demand_config`` loads it:
    index ``unique_id``, ``lead_time_days``, ``lead_time_std_days``) gives each series its own,
    the values ``dealerml safety-stock`` sizes with; series without a row, or every series when
    it is None, take ``lead_time_days`` / ``lead_time_std_days``. Each series' mean lead time is
    rounded to whole periods (half to even) for the replay and the policy sizes with the same
    rounded value plus the unrounded spread. A series without a spread has each order arrive
    exactly L_i periods after it is placed; one with a spread has each order's lead time drawn
    from Normal(L_i, spread) cut at 0 and rounded (orders may cross; ``models.inventory_replay``),
    the distribution both policies are sized with, seeded by ``random_state`` and the series id:
    the same draws for every target and both methods. Both cycle service levels are reported
    (``cycle_service_level_end_net`` is the one the targets size for). ``by_lead_time`` in each
    target repeats the figures per lead-time band (``_lead_time_bands``).

    ``history_as_of`` (``load_demand_series``' ``info["as_of"]``): each epoch is sized from the
    history as it stood then (``rolling_forecasts``), the real demand replayed is ``series``'.
    """

    from models.demand import DemandForecaster, TooShortError
    from models.demand_data import build_panel
    from models.inventory import (
        InventoryPolicy,
        fit_forecaster_policy,
        horizon_needed,
        lead_time_periods,
        lead_times_beyond_forecaster,
        normal_policy,
        replay,
        replay_summary,
        series_lead_times,
    )
    from models.inventory_replay import on_hand_at_same_service

    t0 = time.perf_counter()
    L = int(round(lead_time_periods(lead_time_days, freq)))
    sdL = lead_time_periods(lead_time_std_days, freq)
    R = int(review_period)
    panel = build_panel(series, freq)
    T = panel.Y.shape[1]
    if holdout < R or T - holdout < 8:
        raise (ValueError if holdout < R else TooShortError)(f"holdout of {holdout} periods does not fit {T} periods with review period {R} (it needs "
                         f"a holdout of at least the review period and 8 periods before it: {max(holdout, R) + 8}+ periods)")
    book = None
    if lead_times is not None and len(lead_times):
        book = lead_times[lead_times.index.isin(set(panel.uids))]
        book = book if len(book) else None
    if book is not None:
        # every series the forecaster could forecast, so the horizon covers the longest lead time
        # that can reach the replay
        L_ser, sdL_ser = series_lead_times(panel.uids, book, lead_time_days, lead_time_std_days, freq)
        L_all = np.round(L_ser.to_numpy(dtype=float))  # half to even, as round()
        sdL_all = sdL_ser.to_numpy(dtype=float)
        too_long = lead_times_beyond_forecaster(L_ser, sdL_ser, R, freq)
        h = horizon_needed(L_all, sdL_all, R)
    else:
        too_long = lead_times_beyond_forecaster(lead_time_periods(lead_time_days, freq), sdL, R, freq)
        h = horizon_needed(L, sdL, R)
    if too_long:  # one such row made the replay ask every series for that many periods of history
        raise ValueError(too_long)
    # own-history lead-time demand for intermittent / lumpy series, as the product sizes it;
    # each epoch's policy reads only the rows before its first forecast period
    history = panel.long(T - 1)
    E = holdout // R
    cut_idx = [T - holdout - 1 + e * R for e in range(E)]
    est = DemandForecaster(freq=freq, h=h, **(forecaster_kwargs or {}))
    # the headline is the series the members forecast at every epoch, sized from their errors on a
    # selection window h periods before it: at the first epoch a series needs min_train periods and
    # some demand h periods earlier (a young table is refused here, saying how long it must be)
    need, ci = est._min_train(h), cut_idx[0] - h
    n_obs = np.isfinite(panel.Y[:, : cut_idx[0] + 1]).sum(axis=1)
    past = panel.Y[:, : max(ci, -1) + 1]
    if ci < 0 or not ((np.isfinite(past).sum(axis=1) >= need) & (np.nansum(past, axis=1) > 0)).any():
        raise TooShortError(
            f"the replay refits the forecaster at {E} review epoch{'' if E == 1 else 's'} from "
            f"{panel.dates[cut_idx[0]].date()} (the holdout's first cutoff) and replays the series its members "
            f"forecast at every epoch, sized from their errors on the {h} periods before it; no series has the "
            f"{need + h} observed periods that takes by then ({need} at its {h}-period horizon + {h}; the longest has "
            f"{int(n_obs.max())}): it needs at least {need + h + holdout} periods of history with a holdout of {holdout}")
    if check_only:
        return None
    # only Final, its residuals and scale are read here: members run at each epoch's cutoff only
    # for the series whose choice uses them (the same numbers as the full refit)
    runs = est.rolling_forecasts(series, [panel.dates[c] for c in cut_idx], h, point_only=True,
                                 history_as_of=history_as_of)
    common = set(runs[0][0]["unique_id"])
    for fc, _ in runs[1:]:
        common &= set(fc["unique_id"])
    uids = np.array(sorted(common), dtype=object)
    if len(uids) == 0:
        raise ValueError("no series is forecast at every review epoch of the holdout")
    pos = pd.Series(np.arange(panel.n), index=panel.uids)
    rows = pos.loc[uids].to_numpy()
    actual = panel.Y[rows, T - holdout:]
    if book is not None:
        Lv = L_all[rows].astype(np.int64)
        L_fit: float | pd.Series = pd.Series(L_all[rows], index=uids)
        sdL_fit: float | pd.Series = pd.Series(sdL_all[rows], index=uids)
        n_book = int(book.index.isin(set(uids)).sum())
    else:
        Lv = np.full(len(uids), L, dtype=np.int64)
        L_fit, sdL_fit = float(L), sdL
        n_book = 0
    grid = sorted(set(np.round(np.concatenate([np.linspace(0.5, 0.99, 50), [0.995, 0.999], list(targets)]), 4)))
    S_dist = {q: np.zeros((len(uids), E)) for q in targets}
    S_norm = {q: np.zeros((len(uids), E)) for q in grid}
    for e, (fc, info) in enumerate(runs):
        f = fc[fc["unique_id"].isin(common)]
        hist = info["history_panel"].long(cut_idx[e]) if "history_panel" in info else history  # as of the epoch
        # this epoch's fit as fit_forecaster_policy reads it: a series a fallback member serves is sized
        # on that member's error paths, as safety-stock and /safety_stock size it
        like = _epoch_fit(info)
        for q in targets:
            pol = fit_forecaster_policy(InventoryPolicy(q, R, n_sims=n_sims, random_state=random_state + e), f, like,
                                        L_fit, sdL_fit, history=hist)
            p = pol.policy_.set_index("unique_id").loc[uids]
            S_dist[q][:, e] = p["order_up_to"].to_numpy()
        for q in grid:
            S_norm[q][:, e] = normal_policy(p["mean_demand"], p["sigma_d"], p["lead_time"], p["lead_time_std"], R, q)["order_up_to"]
    Lrep = int(L) if book is None else Lv  # the scalar replay exactly as before without a book
    sd_used = np.asarray(sdL_fit, dtype=float) if book is not None else np.full(len(uids), sdL)
    # each order's lead time drawn from the sizing's distribution where there is a spread; the
    # same draws (seed, series id) for every target and both methods
    arrivals = {"lead_time_std": sd_used, "random_state": random_state, "series_ids": uids}
    curve = [(q, replay(actual, S_norm[q], Lrep, R, per_series=True, **arrivals)) for q in grid]
    bands = _lead_time_bands(Lv)
    no_cycle = Lv + R > holdout
    counts = pd.Series(Lv).value_counts().sort_index()
    out: dict[str, Any] = {
        "lead_times_source": "book" if book is not None else "config",
        "lead_time_periods": _spread_summary(Lv),
        "lead_time_std_periods": _spread_summary(sd_used),
        "lead_time_distribution": {str(int(k)): int(v) for k, v in counts.items()},
        "n_series_lead_time_from_book": n_book,
        "n_series_lead_time_from_config": int(len(uids) - n_book),
        "config_lead_time_periods": L, "config_lead_time_std_periods": sdL,
        "arrivals": (("random: each order of a series with a lead-time spread takes a lead time drawn from "
                      "Normal(mean, spread) cut at 0 and rounded to whole periods, the distribution the policies are "
                      f"sized with (seed {random_state}, a stream per series; orders may cross); series without a "
                      "spread: deterministic") if np.any(sd_used > 0) else
                     "deterministic: each series' orders arrive its mean lead time (rounded to whole periods) after they are placed"),
        "cycle_service_level_definitions": {
            "cycle_service_level_end_net": "share of cycles ending with net inventory >= 0 (no backorder outstanding): "
                                           "P(demand over lead time + review <= order-up-to), what the target sizes for",
            "cycle_service_level": "share of cycles in which no demand went unserved from stock (a cycle with backorders "
                                   "but no demand of its own counts as served): >= the end-net one"},
        "review_period": R, "holdout_periods": holdout, "horizon_periods": h, "n_series": int(len(uids)),
        "n_series_without_full_cycle": int(no_cycle.sum()),
        "lead_time_bands": [{"band": name, "lead_time_periods": [int(Lv[m].min()), int(Lv[m].max())],
                             "n_series": int(m.sum()), "n_series_without_full_cycle": int((no_cycle & m).sum())}
                            for name, m in bands],
        "targets": {},
    }
    for q in targets:
        rd = replay(actual, S_dist[q], Lrep, R, per_series=True, **arrivals)
        rn_full = next(r for g, r in curve if abs(g - q) < 1e-9)
        rn = {k: v for k, v in rn_full.items() if k != "per_series"}
        # the normal formula's on-hand at the service the distribution method achieved, read on
        # the target's definition (cycles ending without a backorder); the no-unserved-demand
        # reading, which this figure used before, kept under its own name
        normals = [r for _, r in curve]
        same = on_hand_at_same_service(normals, rd["cycle_service_level_end_net"])
        same_old = on_hand_at_same_service(normals, rd["cycle_service_level"], reading="cycle_service_level")
        out["targets"][f"{q:.2f}"] = {
            "distribution": {k: _num(v) for k, v in rd.items() if k != "per_series"},
            "normal": {k: _num(v) for k, v in rn.items()},
            "normal_avg_on_hand_at_same_service": _num(same),
            "normal_avg_on_hand_at_same_cycle_service_level": _num(same_old),
            "by_lead_time": {
                name: {meth: {k: (v if k in ("n_cycles", "n_series") else _num(v))
                              for k, v in replay_summary(r["per_series"], m).items()}
                       for meth, r in (("distribution", rd), ("normal", rn_full))}
                for name, m in bands
            },
        }
    # the short-history fallback's series, replayed and reported apart (the figures above are
    # those of the established series, as before)
    out["short_history"] = _short_history_replay(
        est, panel, runs, cut_idx, common, h=h, R=R, holdout=holdout, targets=targets, n_sims=n_sims,
        random_state=random_state, history=history, L=L, sdL=sdL,
        L_all=L_all if book is not None else None, sdL_all=sdL_all if book is not None else None)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
