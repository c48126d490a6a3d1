"""Simulate the orders and service events of one chunk of accounts (vectorised numpy).

Orders come from a renewal process in *activity time*: each account has a daily intensity
(lifecycle x seasonality x weekday x promotions / its mean gap); gamma-distributed gaps of mean 1
are laid out on the cumulative intensity and mapped back to calendar days. A high gamma shape
gives a regular rhythm (retail chains), a shape below 1 a bursty one (small shops), and a falling
intensity stretches the gaps (orders thin out before churn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synthetic import _params as P
from training.synthetic._accounts import NO_DAY, Accounts
from training.synthetic._catalog import Calendar, Catalog


@dataclass
class ChunkResult:
    # order lines (one entry per line)
    day: np.ndarray
    acct: np.ndarray  # local account index
    sku: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    location: np.ndarray
    channel: np.ndarray
    promo: np.ndarray
    # service events
    ev_day: np.ndarray
    ev_acct: np.ndarray
    ev_kind: np.ndarray  # 0 complaint, 1 return, 2 ticket
    ev_resolution: np.ndarray  # days, NaN = still open at the end date
    dropped_category: np.ndarray  # per account


def _lifecycle(acc: Accounts, D: int, rng: np.random.Generator, cal: Calendar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(level, decline, stress): level = intensity multiplier without the decline part,
    decline = planted decline multiplier in [0, 1], stress = service-trouble level in [0, 1]."""
    dd = np.arange(D)[None, :]
    age = dd - acc.onboard[:, None]
    level = np.where(age >= 0, 1 - 0.7 * np.exp(-np.maximum(age, 0) / 120.0), 0.0)
    level *= np.exp(acc.trend[:, None] * (dd - acc.trend_ref[:, None]) / 365.25)
    noise = rng.lognormal(0.0, 0.2, (len(acc.ids), cal.month_idx.max() + 1))
    level *= noise[:, cal.month_idx]

    ds = acc.decline_start[:, None]
    cd = acc.churn_day[:, None]
    full = (acc.churn_kind == 1)[:, None]
    partial = (acc.churn_kind == 2)[:, None]
    since = np.maximum(dd - ds, 0)
    decline = np.exp(-acc.decline_rate[:, None] * since / 365.25)
    prog = np.clip((dd - ds) / np.maximum(cd - ds, 1), 0.0, 1.0)
    decline = np.where(full, 1 - 0.9 * prog**0.6, decline)
    decline = np.where(full & (dd >= cd), 0.0, decline)

    active_decl = (acc.decline_rate > 0)[:, None]
    stress = np.where(full, prog, 0.0)
    stress = np.where(active_decl, 0.4 * np.clip(since / 180.0, 0, 1), stress)
    stress = np.where(partial & (dd >= ds) & (dd < cd + 30), 0.5, stress)
    return level, decline, stress


def _renewal(rng: np.random.Generator, lam: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event (account, day) pairs of a gamma renewal process with time-varying intensity."""
    na, D = lam.shape
    cum = np.cumsum(lam, axis=1)
    total = cum[:, -1]
    n_gaps = np.ceil(total + 6 * np.sqrt(total / shape + 1) + 5).astype(np.int64)
    rep = np.repeat(np.arange(na), n_gaps)
    k = shape[rep]
    gaps = rng.gamma(k, 1.0 / k)
    cs = np.cumsum(gaps)
    starts = np.concatenate([[0], np.cumsum(n_gaps)[:-1]])
    before = np.concatenate([[0.0], cs])[starts]
    phase = rng.random(na) * gaps[starts]  # stationary-ish start: no event pile-up at day 0
    s = cs - np.repeat(before + phase, n_gaps)
    keep = (s > 0) & (s < total[rep] - 1e-9)
    s, rep = s[keep], rep[keep]
    offsets = np.concatenate([[0.0], np.cumsum(total)[:-1]])
    flat = (cum + offsets[:, None]).ravel()
    idx = np.searchsorted(flat, s + offsets[rep], side="left")
    key = np.unique(idx)  # several events on one day = one order
    return key // D, key % D


def simulate_chunk(
    rng: np.random.Generator, acc: Accounts, cat: Catalog, cal: Calendar, n_locations: int
) -> ChunkResult:
    na = len(acc.ids)
    D = len(cal.days)
    S = len(cat.sku_ids)
    seg = acc.segment
    level, decline, stress = _lifecycle(acc, D, rng, cal)

    campaign_on = (cat.day_campaign >= 0)[None, :]
    lam = (
        level
        * decline
        * cal.seg_factor[seg]
        * (1 + P.CAMPAIGN_BOOST[seg][:, None] * campaign_on)
        * (acc.size[:, None] ** 0.3 / P.MEAN_GAP_DAYS[seg][:, None])
    )
    o_acct, o_day = _renewal(rng, lam, P.GAP_SHAPE[seg])
    n_orders = len(o_acct)

    # Assortment: each account buys from a popularity-biased random subset of the catalogue.
    keys = np.log(cat.weight)[None, :] + rng.gumbel(size=(na, S))
    assort = np.argsort(-keys, axis=1, kind="stable").astype(np.int32)
    breadth = np.rint(P.BREADTH[seg] * S * acc.size**0.3 * rng.uniform(0.7, 1.3, na))
    k = np.clip(breadth, 2, S).astype(np.int64)

    # Basket size shrinks with the decline.
    o_dec = decline[o_acct, o_day]
    mean_lines = P.LINES_PER_ORDER[seg[o_acct]] * acc.size[o_acct] ** 0.2 * np.sqrt(o_dec)
    n_lines = 1 + rng.poisson(np.maximum(mean_lines - 1, 0))
    n_lines = np.minimum(n_lines, k[o_acct])
    o_channel_cum = np.cumsum(P.ORDER_CHANNEL_P[seg[o_acct]], axis=1)
    o_channel = (rng.random(n_orders)[:, None] > o_channel_cum).sum(axis=1).clip(0, len(P.CHANNELS) - 1)

    order = np.repeat(np.arange(n_orders), n_lines)
    acct = o_acct[order]
    day = o_day[order]
    # A line picks a SKU of the account's assortment in proportion to its popularity.
    in_assort = np.arange(S)[None, :] < k[:, None]
    cw = np.cumsum(np.where(in_assort, cat.weight[assort], 0.0), axis=1)
    cw /= cw[:, -1:]
    cw[:, -1] = 1.0
    flat = (cw + np.arange(na)[:, None]).ravel()
    pick = np.searchsorted(flat, acct + rng.random(len(order)) * 0.999999, side="right")
    sku = assort.ravel()[np.minimum(pick, na * S - 1)].astype(np.int64)

    # Promotion-sensitive accounts switch some lines to the promoted SKUs of the day.
    camp = cat.day_campaign[day]
    tilt = (camp >= 0) & (rng.random(len(sku)) < P.PROMO_TILT[seg[acct]])
    for c in np.unique(camp[tilt]):
        sel = np.flatnonzero(tilt & (camp == c))
        members = cat.campaign_skus[c]
        w = cat.weight[members] / cat.weight[members].sum()
        sku[sel] = members[np.searchsorted(np.cumsum(w), rng.random(len(sel)) * 0.999999)]

    # Product succession: the successor is not sold before launch, the predecessor not after.
    sw = cat.switch_day[sku]
    sku = np.where((cat.predecessor[sku] >= 0) & (day < sw), cat.predecessor[sku], sku)
    sw = cat.switch_day[sku]
    sku = np.where((cat.successor[sku] >= 0) & (day >= sw), cat.successor[sku], sku)

    # Partial churn: the account's main-but-not-only category fades out over 60 days, then stops.
    pos_w = np.diff(cw, axis=1, prepend=0.0)
    n_cat = len(P.CATEGORIES)
    shares = np.bincount(
        (np.arange(na)[:, None] * n_cat + cat.category[assort]).ravel(), weights=pos_w.ravel(), minlength=na * n_cat
    ).reshape(na, n_cat)
    ranked = np.argsort(-shares, axis=1, kind="stable")
    top_share = shares[np.arange(na), ranked[:, 0]]
    second_ok = shares[np.arange(na), ranked[:, 1]] >= 0.05
    choice = np.where((top_share > 0.6) & second_ok, ranked[:, 1], ranked[:, 0])
    dropped = np.where(acc.churn_kind == 2, choice, -1)
    line_cat = cat.category[sku]
    drop_day = acc.churn_day[acct]
    fading = np.clip((day - (drop_day - 60)) / 60.0, 0.0, 1.0)
    gone = (line_cat == dropped[acct]) & ((day >= drop_day) | (rng.random(len(sku)) < 0.8 * fading))
    keep = ~gone
    # Category seasonality: off-season lines are thinned out (a snow blower is not reordered in
    # July); the first line of an order always stays, so the order rhythm is kept.
    first_line = np.r_[True, order[1:] != order[:-1]]
    keep_p = cat.qty_season[line_cat, day] / (1 + P.CATEGORY_SEASON_AMP[line_cat])
    keep &= first_line | (rng.random(len(sku)) < keep_p)
    # One line per (order, sku).
    okey = order.astype(np.int64) * S + sku
    _, first = np.unique(okey, return_index=True)
    uniq = np.zeros(len(sku), bool)
    uniq[first] = True
    keep &= uniq
    order, acct, day, sku, line_cat = order[keep], acct[keep], day[keep], sku[keep], line_cat[keep]

    # Quantity: segment x size x category/season x SKU trend x promotion x decline; lumpy SKUs
    # get overdispersed quantities.
    pid = cat.promo[sku, day]
    promo = pid >= 0
    s_seg = seg[acct]
    mean_q = (
        P.BASE_QTY[s_seg]
        * acc.size[acct] ** 0.5
        * cat.qty_scale[sku]
        * np.sqrt(cat.qty_season[line_cat, day])
        * np.exp(cat.trend[sku] * (day - D / 2) / 365.25)
        * decline[acct, day] ** 0.3
        * np.where(promo, P.PROMO_QTY_LIFT[s_seg], 1.0)
    )
    r = np.where(cat.lumpy[sku], 0.6, 6.0)
    extra = np.maximum(mean_q - 1, 1e-6)
    quantity = 1.0 + rng.poisson(rng.gamma(r, extra / r))

    acct_price = rng.lognormal(0.0, 0.02, na)
    disc = np.where(promo, cat.campaign_discount[np.maximum(pid, 0)], 0.0)
    unit_price = np.round(
        cat.list_price[sku]
        * (1 + P.PRICE_INCREASE_PER_YEAR) ** cal.year_idx[day]
        * (1 - P.PRICE_DISCOUNT[s_seg])
        * acct_price[acct]
        * (1 - disc),
        2,
    )
    unit_price = np.maximum(unit_price, 0.01)

    home = acc.home_location[acct]
    if n_locations > 1:
        other = (home + 1 + rng.integers(0, n_locations - 1, len(sku))) % n_locations
        location = np.where(rng.random(len(sku)) < 0.15, other, home)
    else:
        location = home

    ev = _service_events(rng, acc, level, decline, stress, cal)
    o = np.lexsort((sku, acct, day))
    return ChunkResult(
        day=day[o],
        acct=acct[o],
        sku=sku[o],
        quantity=quantity[o],
        unit_price=unit_price[o],
        location=location[o],
        channel=o_channel[order][o],
        promo=promo[o].astype(float),
        dropped_category=dropped,
        **ev,
    )


def _service_events(
    rng: np.random.Generator, acc: Accounts, level: np.ndarray, decline: np.ndarray, stress: np.ndarray, cal: Calendar
) -> dict[str, np.ndarray]:
    """Complaints, returns and tickets: a baseline rate that rises with the planted stress."""
    D = level.shape[1]
    dd = np.arange(D)[None, :]
    alive = (level > 0) & (dd < np.where(acc.churn_kind == 1, acc.churn_day, NO_DAY)[:, None])
    b2b_week = np.where(cal.weekday < 5, 7 / 5, 0.0)[None, :]
    rate = (P.SERVICE_PER_YEAR[acc.segment] / 365.25 * acc.size**0.3)[:, None] * (1 + 4 * stress) * alive * b2b_week
    counts = rng.poisson(rate)
    a, d = np.nonzero(counts)
    a, d = np.repeat(a, counts[a, d]), np.repeat(d, counts[a, d])
    s = stress[a, d]
    p_complaint = 0.30 + 0.40 * s
    p_return = 0.40 - 0.20 * s
    u = rng.random(len(a))
    kind = np.where(u < p_complaint, 0, np.where(u < p_complaint + p_return, 1, 2))
    mean_res = np.array([6.0, 4.0, 2.0])[kind] * (1 + 1.5 * s)
    res = np.round(rng.gamma(2.0, mean_res / 2.0), 1)
    res = np.where(d + res > D - 1, np.nan, res)  # not resolved by the end date
    o = np.lexsort((kind, a, d))
    return {"ev_day": d[o], "ev_acct": a[o], "ev_kind": kind[o], "ev_resolution": res[o]}
