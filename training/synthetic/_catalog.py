"""Calendar, product catalogue and promotion campaigns of the synthetic network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.synthetic import _params as P


@dataclass
class Calendar:
    days: pd.DatetimeIndex
    doy: np.ndarray  # day of year, 1..366
    weekday: np.ndarray  # 0 = Monday
    month_idx: np.ndarray  # 0.. months since start
    year_idx: np.ndarray  # 0.. calendar years since start
    week_idx: np.ndarray  # 0.. Monday-based weeks since the start's week
    seg_factor: np.ndarray  # (n_segments, D): weekday x yearly season x holidays


def make_calendar(start: pd.Timestamp, end: pd.Timestamp) -> Calendar:
    days = pd.date_range(start, end, freq="D")
    doy = days.dayofyear.to_numpy()
    wd = days.weekday.to_numpy()
    month_idx = ((days.year - start.year) * 12 + days.month - start.month).to_numpy()
    year_idx = (days.year - start.year).to_numpy()
    week_idx = (np.arange(len(days)) + start.weekday()) // 7
    weekday = P.WEEKDAY / P.WEEKDAY.mean(axis=1, keepdims=True)
    season = 1 + P.SEASON_AMP[:, None] * np.cos(2 * np.pi * (doy[None, :] - P.SEASON_PEAK[:, None]) / 365.25)
    holiday = np.ones((len(P.SEGMENTS), len(days)))
    month, dom = days.month.to_numpy(), days.day.to_numpy()
    xmas = ((month == 12) & (dom >= 24)) | ((month == 1) & (dom == 1))
    august = month == 8
    black_friday = (month == 11) & (dom >= 20) & (dom <= 30)
    holiday[P.B2B] = np.where(xmas, 0.15, np.where(august, 0.8, 1.0))
    holiday[~P.B2B] = np.where(black_friday, 1.8, 1.0)
    seg_factor = weekday[:, wd] * season * holiday
    return Calendar(days, doy, wd, month_idx, year_idx, week_idx, seg_factor)


@dataclass
class Catalog:
    sku_ids: np.ndarray  # str
    category: np.ndarray  # int index into CATEGORIES
    weight: np.ndarray  # popularity (sums to 1)
    list_price: np.ndarray  # EUR at start
    qty_scale: np.ndarray
    lumpy: np.ndarray  # bool: high quantity dispersion
    trend: np.ndarray  # log growth per year of units per line
    switch_day: np.ndarray  # day index where predecessor -> successor (-1 if none)
    successor: np.ndarray  # sku index of successor (-1)
    predecessor: np.ndarray  # sku index of predecessor (-1)
    qty_season: np.ndarray  # (n_categories, D) multiplier of units per line
    promo: np.ndarray  # (n_skus, D) int16 campaign id or -1
    campaign_discount: np.ndarray  # (n_campaigns,)
    campaign_skus: list[np.ndarray]
    day_campaign: np.ndarray  # (D,) campaign id active that day (-1 if none)


def _allocate(n: int, shares: np.ndarray) -> np.ndarray:
    """Split n items over groups by share, at least one per group (largest remainder)."""
    raw = shares / shares.sum() * (n - len(shares))
    counts = np.floor(raw).astype(int) + 1
    rest = n - counts.sum()
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    counts[order[:rest]] += 1
    return counts


def make_catalog(rng: np.random.Generator, n_skus: int, cal: Calendar) -> Catalog:
    D = len(cal.days)
    n_cat = len(P.CATEGORIES)
    counts = _allocate(n_skus, P.CATEGORY_SHARE)
    category = rng.permutation(np.repeat(np.arange(n_cat), counts))
    sku_ids = np.array([f"SKU{i:05d}" for i in range(1, n_skus + 1)])
    # Long tail: Zipf-like popularity over a random ranking.
    rank = rng.permutation(n_skus) + 1
    weight = 1.0 / (rank + 5.0) ** 1.5
    weight /= weight.sum()
    list_price = np.round(P.CATEGORY_PRICE[category] * rng.lognormal(0.0, 0.45, n_skus), 2)
    list_price = np.maximum(list_price, 0.5)
    qty_scale = P.CATEGORY_QTY[category] * (P.CATEGORY_PRICE[category] / list_price) ** 0.3
    lumpy = rng.random(n_skus) < 0.2
    trend = rng.normal(0.0, 0.08, n_skus)

    # Successors: ~8% of SKUs replace a same-category predecessor mid-period.
    switch_day = np.full(n_skus, -1)
    successor = np.full(n_skus, -1)
    predecessor = np.full(n_skus, -1)
    n_pairs = int(round(0.08 * n_skus)) if D > 400 else 0
    used = np.zeros(n_skus, bool)
    top = np.argsort(-weight)[: max(1, n_skus // 20)]
    used[top] = True  # the very top sellers stay
    for new in rng.permutation(n_skus):
        if n_pairs == 0:
            break
        if used[new]:
            continue
        cands = np.flatnonzero((category == category[new]) & ~used)
        cands = cands[cands != new]
        if len(cands) == 0:
            continue
        old = cands[rng.integers(len(cands))]
        used[[new, old]] = True
        day = int(rng.integers(180, D - 180))
        switch_day[[new, old]] = day
        successor[old], predecessor[new] = new, old
        n_pairs -= 1

    qty_season = 1 + P.CATEGORY_SEASON_AMP[:, None] * np.cos(
        2 * np.pi * (cal.doy[None, :] - P.CATEGORY_SEASON_PEAK[:, None]) / 365.25
    )

    # Promotion campaigns: ~6 a year, 14 days each, on part of one or two categories.
    promo = np.full((n_skus, D), -1, dtype=np.int16)
    day_campaign = np.full(D, -1, dtype=np.int32)
    discounts, camp_skus = [], []
    # One campaign in every ~two-month block, so every year has about the same promotion load.
    block = 61
    starts = np.array([b + int(rng.integers(0, block - 14)) for b in range(0, D - block + 1, block)])
    for c, s in enumerate(starts):
        cats = rng.choice(n_cat, size=1 + int(rng.random() < 0.35), replace=False)
        members = np.flatnonzero(np.isin(category, cats))
        members = members[rng.random(len(members)) < 0.6]
        if len(members) == 0:
            members = np.flatnonzero(np.isin(category, cats))[:1]
        promo[np.ix_(members, np.arange(s, min(s + 14, D)))] = c
        day_campaign[s : s + 14] = c
        discounts.append(rng.uniform(0.10, 0.25))
        camp_skus.append(members)
    return Catalog(
        sku_ids=sku_ids,
        category=category,
        weight=weight,
        list_price=list_price,
        qty_scale=qty_scale,
        lumpy=lumpy,
        trend=trend,
        switch_day=switch_day,
        successor=successor,
        predecessor=predecessor,
        qty_season=qty_season,
        promo=promo,
        campaign_discount=np.array(discounts),
        campaign_skus=camp_skus,
        day_campaign=day_campaign,
    )
