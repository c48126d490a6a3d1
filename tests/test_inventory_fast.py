"""The batched ``InventoryPolicy.fit`` (``models._inventory_sim``) gives the per-series loop's
numbers to the bit.

The loop as it was (5ab1f70) is kept verbatim in ``tests/_inventory_reference.py``. The service's
sizing cache, the CLI, the replay and the figures in BENCHMARKS.md all rest on each series'
numbers depending only on (seed, series id, inputs), so the new code must reproduce them
exactly, not statistically: every float column is compared by its bit pattern.

The case mixes what the simulation branches on: own-history series (intermittent / lumpy with
enough history; integer and fractional sizes in one chunk), class-pool series (smooth, erratic,
a class with too few paths that falls back to the all-class pool, a series the residuals do not
know), near-zero forecasts that are thinned (and one whose pool has only negative errors: the
thinning target is 0), short histories that fall back to the pool, lead times with and without
a spread, fractional lead times and review periods, every ``recentre`` mode, several service
levels, and chunks of 1 series and of many.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _inventory_reference import ReferencePolicy

import models._inventory_sim as sim
from models._inventory_distribution import _own_paths
from models.inventory import InventoryPolicy


def _case(h: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    T = 80
    ds = pd.date_range("2023-01-02", periods=T + h, freq="W-MON")
    series = {}  # uid -> (class in the residuals or None, history or None, point forecast)
    for i in range(6):  # lumpy, integer sizes
        y = (rng.random(T) < 0.15) * rng.integers(5, 40, T)
        series[f"lumpy{i}"] = ("lumpy", y.astype(float), float(y.mean()) * rng.uniform(0.5, 1.5))
    for i in range(5):  # intermittent, fractional sizes (kilograms), one ending on a sale
        y = (rng.random(T) < 0.4) * rng.uniform(0.5, 3.0, T)
        y[-1] = 1.7 if i == 0 else y[-1]
        series[f"inter{i}"] = ("intermittent", y, float(y.mean()))
    for i in range(6):
        series[f"smooth{i}"] = ("smooth", None, rng.uniform(2, 30))
    for i in range(3):
        series[f"erratic{i}"] = ("erratic", None, rng.uniform(1, 10))
    for i in range(4):  # near zero: forecast over lead time + review below one unit -> thinned
        series[f"slow{i}"] = ("smooth" if i % 2 else "lumpy", None, [0.0, 1e-3, 0.05, 0.2][i])
    series["slow_neg"] = ("rare", None, 0.01)  # a class of < 20 paths (only negative errors): the '*' pool
    series["unknown"] = (None, None, 3.0)     # not in the residuals at all
    y = np.zeros(T)
    y[-10:] = [0, 3, 0, 0, 5, 0, 0, 0, 2, 0]
    series["young_lumpy"] = ("lumpy", y, 1.0)  # 10 periods since the first sale: too short, class pool
    y = np.zeros(T)
    y[[3, 40]] = 4.0
    series["two_sales"] = ("lumpy", y, 0.1)   # only 2 non-zero periods (< min_nonzero 3): class pool, thinned
    uids = list(series)
    fc = pd.DataFrame({"unique_id": np.repeat(uids, h), "ds": np.tile(ds[T:], len(uids)),
                       "Final": np.repeat([v[2] for v in series.values()], h)})
    rows = []
    for c, n_paths in (("smooth", 60), ("erratic", 30), ("lumpy", 50), ("intermittent", 40), ("rare", 5)):
        for p in range(n_paths):
            steps = h if p % 7 else h - 2  # some paths short: extended with their last step
            if c == "rare":
                r = -np.abs(rng.normal(0, 1, steps))
            elif c in ("lumpy", "intermittent"):
                r = np.where(rng.random(steps) < 0.2, rng.exponential(4, steps), -0.3)
            else:
                r = rng.normal(0.1, 1.0 if c == "smooth" else 2.5, steps)
            rows += [{"unique_id": f"{c}_p{p // 5}", "demand_class": c, "cutoff": p % 5, "step": k + 1, "r": r[k]}
                     for k in range(steps)]
    res = pd.DataFrame(rows)
    # the sized series' own classes come from their residual rows
    known = [u for u, v in series.items() if v[0] is not None]
    res = pd.concat([res, pd.DataFrame({"unique_id": known, "demand_class": [series[u][0] for u in known],
                                        "cutoff": 99, "step": 1, "r": 0.25})], ignore_index=True)
    hist = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds[:T], "y": v[1]}) for u, v in series.items()
                      if v[1] is not None], ignore_index=True)
    scale = pd.Series(rng.uniform(0.5, 3.0, len(uids)), index=uids)
    L = pd.Series(rng.choice([0.0, 1.0, 10 / 7, 2.0, 2.5], len(uids)), index=uids)
    sdL = pd.Series(np.where(rng.random(len(uids)) < 0.5, rng.choice([0.2, 0.6], len(uids)), 0.0), index=uids)
    return fc, res, scale, L, sdL, hist


def _assert_bits(new: pd.DataFrame, old: pd.DataFrame) -> None:
    assert list(new.columns) == list(old.columns)
    assert list(new.dtypes) == list(old.dtypes)
    for c in new.columns:
        a, b = new[c].to_numpy(), old[c].to_numpy()
        if a.dtype.kind == "f":
            diff = np.flatnonzero(a.view(np.int64) != b.view(np.int64))
            assert len(diff) == 0, f"{c} differs for {list(new['unique_id'].iloc[diff[:5]])}: {a[diff[:5]]} vs {b[diff[:5]]}"
        else:
            assert list(a) == list(b), c


@pytest.mark.parametrize("chunk_values", [sim.CHUNK_VALUES, 1])
def test_batched_fit_equals_the_per_series_loop_to_the_bit(monkeypatch, chunk_values):
    monkeypatch.setattr(sim, "CHUNK_VALUES", chunk_values)  # 1: every series alone in its chunk
    fc, res, scale, L, sdL, hist = _case()
    n_checked = 0
    for q, R, recentre in ((0.95, 1.0, "blend"), (0.6, 1.0, "forecast"), (0.99, 1.5, "none"), (0.9, 0.5, "bias_corrected")):
        kw = dict(n_sims=400, random_state=3, recentre=recentre)
        new = InventoryPolicy(q, R, **kw).fit(fc, res, scale, L, sdL, history=hist).policy_
        old = ReferencePolicy(q, R, **kw).fit(fc, res, scale, L, sdL, history=hist).policy_
        _assert_bits(new, old)
        n_checked += len(new)
    # the case reaches every branch it is meant to
    src = new.set_index("unique_id")["ltd_source"]
    assert (src == "own_history").sum() == 11 and src["young_lumpy"] == src["two_sales"] == "class_pool"
    assert new.set_index("unique_id").loc["unknown", "demand_class"] == "unknown"
    kw = dict(n_sims=400, random_state=3)
    p = InventoryPolicy(0.95, 1.0, **kw).fit(fc, res, scale, L, sdL, history=hist).policy_.set_index("unique_id")
    unthinned = InventoryPolicy(0.95, 1.0, thin_below_units=0.0, **kw).fit(fc, res, scale, L, sdL, history=hist)
    u = unthinned.policy_.set_index("unique_id")
    slow = ["slow0", "slow1", "slow2", "slow3", "slow_neg", "two_sales"]
    assert (p.loc[slow, "order_up_to"] < u.loc[slow, "order_up_to"]).sum() >= 4  # thinning took demand away
    assert (p.drop(index=slow)["order_up_to"] == u.drop(index=slow)["order_up_to"]).all()
    assert (p["lead_time_std"] > 0).any() and (p["lead_time_std"] == 0).any()
    assert n_checked == 4 * len(fc["unique_id"].unique())


def test_batched_fit_equals_the_loop_with_a_long_horizon_and_without_history():
    fc, res, scale, L, sdL, hist = _case(h=13, seed=1)
    L = L + 3.0  # lead time + review up to 9.5 of 13 periods: the means over > 8 periods
    for q in (0.8, 0.97):
        kw = dict(n_sims=300, random_state=0)
        _assert_bits(InventoryPolicy(q, 2.0, **kw).fit(fc, res, scale, L, sdL, history=hist).policy_,
                     ReferencePolicy(q, 2.0, **kw).fit(fc, res, scale, L, sdL, history=hist).policy_)
        _assert_bits(InventoryPolicy(q, 1.0, **kw).fit(fc, res, scale, 2.0).policy_,
                     ReferencePolicy(q, 1.0, **kw).fit(fc, res, scale, 2.0).policy_)


def test_batched_fit_equals_the_loop_when_lead_times_reach_the_horizon_or_zero():
    # lead time 5 +- 0.8 with review 1 in 8 periods: draws cut at 7, so lead time + review reaches
    # the last step (every step is built); lead time 0 with review 0.25: only the first step is
    fc, res, scale, _, _, hist = _case()
    uids = scale.index
    for L, sdL, R in ((5.0, 0.8, 1.0), (0.0, 0.0, 0.25), (0.0, 0.3, 1.0)):
        kw = dict(n_sims=300, random_state=11)
        Ls, sds = pd.Series(L, index=uids), pd.Series(sdL, index=uids)
        _assert_bits(InventoryPolicy(0.9, R, **kw).fit(fc, res, scale, Ls, sds, history=hist).policy_,
                     ReferencePolicy(0.9, R, **kw).fit(fc, res, scale, Ls, sds, history=hist).policy_)


def test_own_paths_of_one_series_are_the_old_draws():
    # _own_paths (one series) runs the batched bootstrap; the old function drew h uniforms of n
    # step by step, then the size picks and the jitter: same numbers from the same generator
    from _inventory_reference import _own_paths as old_own_paths

    for y in (np.array([0, 0, 3.0, 0, 7, 1, 0, 0, 2] * 6), np.array([0.0, 0.4, 0, 1.3, 0, 0, 2.2] * 8)):
        new = _own_paths(y, 1000, 6, np.random.default_rng(5))
        old = old_own_paths(y, 1000, 6, np.random.default_rng(5))
        assert new.shape == (1000, 6) and np.array_equal(new.view(np.int64), old.view(np.int64))
