"""Accounts of the synthetic network and their planted life story (segment, stage, churn)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synthetic import _params as P

NO_DAY = 10**9
"""Sentinel day index for 'never' (churn, decline start)."""

STAGES = ("growth", "maturity", "decline")
CHURN_KINDS = ("none", "full", "partial")


@dataclass
class Accounts:
    ids: np.ndarray  # str
    segment: np.ndarray  # int index into SEGMENTS
    region: np.ndarray  # int index into REGIONS
    channel_type: np.ndarray  # int index into CHANNEL_TYPES
    size: np.ndarray  # lognormal size x segment scale
    onboard: np.ndarray  # day index (negative = before start)
    stage: np.ndarray  # int index into STAGES, as of the end date
    trend: np.ndarray  # log growth per year of the order intensity (before any decline)
    trend_ref: np.ndarray  # day index where the trend multiplier is 1
    churn_kind: np.ndarray  # int index into CHURN_KINDS
    churn_day: np.ndarray  # full: first day with zero intensity; partial: drop day; else NO_DAY
    decline_start: np.ndarray  # day index where the planted decline begins; else NO_DAY
    decline_rate: np.ndarray  # log decline per year for active decliners
    home_location: np.ndarray  # int index into locations
    dropped_category: np.ndarray  # int category index or -1 (set once assortments are known)


def make_accounts(rng: np.random.Generator, n: int, D: int, n_locations: int) -> Accounts:
    """Draw the accounts and their planted stages; D is the number of days in the period."""
    n_seg = len(P.SEGMENTS)
    region = rng.choice(len(P.REGIONS), size=n, p=P.REGION_SHARE)
    u = rng.random(n)
    cum = np.cumsum(P.REGION_SEGMENT_MIX[region], axis=1)
    segment = (u[:, None] > cum).sum(axis=1).clip(0, n_seg - 1)
    # Every group is present, however small the network.
    for s in range(n_seg):
        if not (segment == s).any():
            free = np.flatnonzero(np.bincount(segment, minlength=n_seg)[segment] > 1)
            segment[free[rng.integers(len(free))]] = s
    ids = np.array([f"D{i:05d}" for i in range(1, n + 1)])
    ct_cum = np.cumsum(P.CHANNEL_TYPE_P[segment], axis=1)
    channel_type = (rng.random(n)[:, None] > ct_cum).sum(axis=1).clip(0, len(P.CHANNEL_TYPES) - 1)
    size = rng.lognormal(0.0, 0.5, n) * P.SIZE_SCALE[segment]

    new = rng.random(n) < 0.22
    onboard = np.where(new, rng.integers(0, max(D - 240, 1), n), -rng.integers(60, 3650, n))

    stage = np.empty(n, dtype=int)
    for s in range(n_seg):
        idx = np.flatnonzero(segment == s)
        stage[idx] = rng.choice(3, size=len(idx), p=P.STAGE_MIX[s])
    stage[onboard > D - 540] = 0  # accounts younger than ~18 months are still growing

    churn_kind = np.zeros(n, dtype=int)
    churn_day = np.full(n, NO_DAY)
    decline_start = np.full(n, NO_DAY)
    earliest = np.maximum(270, onboard + 240)
    can_churn = earliest < D - 1
    full = (rng.random(n) < P.FULL_CHURN_P[segment]) & can_churn
    cd = rng.integers(np.minimum(earliest, D - 2), D)
    length = rng.integers(90, 181, n)
    churn_kind[full] = 1
    churn_day[full] = cd[full]
    decline_start[full] = cd[full] - length[full]

    can_partial = ~full & (np.maximum(270, onboard + 240) < D - 60)
    partial = can_partial & (rng.random(n) < P.PARTIAL_CHURN_P[segment])
    drop = rng.integers(np.minimum(earliest, D - 61), D - 60)
    churn_kind[partial] = 2
    churn_day[partial] = drop[partial]
    decline_start[partial] = drop[partial] - 60

    # Full churners go through growth or maturity before their decline.
    stage[full & (stage == 2)] = 1
    active_decline = (stage == 2) & ~full
    decline_start[active_decline] = D - rng.integers(120, 400, active_decline.sum())
    decline_rate = np.where(active_decline, rng.uniform(0.6, 1.2, n), 0.0)
    trend = np.where(stage == 0, rng.uniform(0.25, 0.6, n), rng.normal(0.0, 0.04, n))
    trend_ref = np.minimum(D - 1, np.where(full, decline_start, D - 1))
    # Each region ships from "its" warehouse; with more than five warehouses a region has several.
    home_location = (region + len(P.REGIONS) * rng.integers(0, -(-n_locations // len(P.REGIONS)), n)) % n_locations
    final_stage = np.where(full, 2, stage)
    return Accounts(
        ids=ids,
        segment=segment,
        region=region,
        channel_type=channel_type,
        size=size,
        onboard=onboard,
        stage=final_stage,
        trend=trend,
        trend_ref=trend_ref,
        churn_kind=churn_kind,
        churn_day=churn_day,
        decline_start=decline_start,
        decline_rate=decline_rate,
        home_location=home_location,
        dropped_category=np.full(n, -1),
    )


def take(acc: Accounts, idx: np.ndarray) -> Accounts:
    """The sub-population ``idx`` (a chunk)."""
    return Accounts(**{k: v[idx] for k, v in acc.__dict__.items()})
