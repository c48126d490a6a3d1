"""models.inventory_replay: random arrivals and the two cycle service levels.

A seeded replay worked out by hand (one series whose orders take drawn lead times, one of them
overtaking an earlier order, beside a series without a spread whose backorder outlives a cycle
without demand: a stock-out for the end-net definition only); the draws themselves (seeded, per
series, the sizing's Normal cut at 0 and rounded); a spread of 0 giving the deterministic replay
to the bit; and the end-net cycle service being exactly the event the order-up-to level is sized
for, demand over lead time + review <= S.
"""

from __future__ import annotations

import numpy as np
import pytest
from _support_demand import _cases

from models.inventory import replay as replay_from_inventory
from models.inventory_replay import (
    _order_lead_times,
    _replay,
    on_hand_at_same_service,
    replay,
    replay_summary,
)

KEYS = ("cycle_service_level", "cycle_service_level_end_net", "fill_rate", "avg_on_hand", "n_cycles")


def _same(a: dict, b: dict, keys=KEYS) -> bool:
    """Equal to the bit on ``keys`` (nan == nan)."""
    return all((isinstance(a[k], float) and np.isnan(a[k]) and np.isnan(b[k])) or a[k] == b[k] for k in keys)


def test_seeded_random_arrivals_by_hand():
    ids = np.array(["a", "b"], dtype=object)
    # a: mean 2 periods, spread 1; b: 1 period, no spread. Seed 4 draws for a's orders of epochs
    # 0..5 (epoch 0 places none): 3 1 2 5 1 3 - the order of t3 (5 periods, due t8) is overtaken
    # by that of t4 (1 period, due t5). b's orders all take 1.
    draws = _order_lead_times(np.array([2, 1]), np.array([1.0, 0.0]), 6, 4, ids)
    assert draws.tolist() == [[3, 1, 2, 5, 1, 3], [1, 1, 1, 1, 1, 1]]
    actual = np.array([[4.0, 3, 5, 2, 6, 4], [0.0, 7, 0, 0, 3, 0]])
    S = np.array([[10.0] * 6, [5.0] * 6])
    # a (S = 10): t0 10 - 4 = 6 | t1 order 4 (due t2), 6 - 3 = 3 | t2 order 3 (due t4), 3 + 4 = 7,
    #   -5 = 2, cycle 0 ok | t3 order 5 (due t8), 2 - 2 = 0, cycle 1 ok (ends at 0) | t4 order 2
    #   (due t5: crosses), 0 + 3 = 3 for 6: 3 served, net -3, cycle 2 short | t5 order 6 (due t8),
    #   -3 + 2 = -1, nothing served, net -5, cycle 3 short. Cycles 0..3 count (c + 2 + 1 <= 6):
    #   2 of 4 ok by both definitions; served 17 of 24; on hand 6 3 2 0 0 0.
    # b (S = 5, L = 1): t1 5 on hand for 7: net -2, cycle 0 short | t2 order 7 (due t3), no demand:
    #   nothing unserved but net still -2 at the end -> cycle 1 is served, not end-net ok | t3 +7 =
    #   5 | t4 5 - 3 = 2 | t5 2. Cycles 0..4 count: 4 of 5 served, 3 of 5 end-net ok; served 8 of
    #   10; on hand 5 0 0 5 2 2.
    r = replay(actual, S, np.array([2, 1]), 1, per_series=True, lead_time_std=np.array([1.0, 0.0]), random_state=4,
               series_ids=ids)
    assert r["n_cycles"] == 9
    assert r["cycle_service_level"] == pytest.approx(6 / 9)
    assert r["cycle_service_level_end_net"] == pytest.approx(5 / 9)
    assert r["fill_rate"] == pytest.approx(25 / 34) and r["avg_on_hand"] == pytest.approx(25 / 12)
    ps = r["per_series"]
    assert ps["cycles_ok"].tolist() == [2, 4] and ps["cycles_ok_end_net"].tolist() == [2, 3]
    assert ps["n_cycles"].tolist() == [4, 5] and ps["served"].tolist() == [17.0, 8.0]
    assert ps["on_hand_sum"].tolist() == [11.0, 14.0]
    b = replay_summary(ps, np.array([False, True]))
    assert b["cycle_service_level"] == pytest.approx(4 / 5) and b["cycle_service_level_end_net"] == pytest.approx(3 / 5)
    # the same replay with those lead times given, and with every order of a on time (2 periods):
    # t2 then has 3 for 5 (short), t3 +4 -> 0, t4 +3 for 6, t5 +5 for 4 after -3: 1 of 4 ok
    assert _same(r, _replay(actual, S, np.array([2, 1]), 1, draws, False))
    det = replay(actual[:1], S[:1], 2, 1)
    assert det["cycle_service_level"] == det["cycle_service_level_end_net"] == pytest.approx(1 / 4)
    # the series without a spread replays alone exactly as in the batch
    alone = replay(actual[1:], S[1:], 1, 1, per_series=True)
    assert alone["per_series"]["cycles_ok_end_net"].tolist() == [3] and alone["fill_rate"] == pytest.approx(8 / 10)
    assert replay_from_inventory is replay  # still importable from models.inventory


def test_lead_time_draws_follow_the_sizing_distribution_per_series():
    ids = np.array([f"s{i}" for i in range(4000)], dtype=object)
    L = np.full(4000, 4)
    d = _order_lead_times(L, np.full(4000, 1.15), 5, 0, ids)
    assert d.dtype == np.int64 and (d >= 0).all()
    # Normal(4, 1.15) rounded: mean 4, variance 1.15^2 + about 1/12 for the rounding
    assert d.mean() == pytest.approx(4.0, abs=0.03) and d.var() == pytest.approx(1.15**2 + 1 / 12, rel=0.05)
    # cut at 0 before rounding, as the sizing cuts its draws: Normal(0, 1) gives 0 when below 0.5
    z = _order_lead_times(np.zeros(4000, dtype=np.int64), np.ones(4000), 5, 0, ids)
    assert (z == 0).mean() == pytest.approx(0.6915, abs=0.015)
    # seeded, and per series: a series draws the same alone, in a batch, in any order
    again = _order_lead_times(L, np.full(4000, 1.15), 5, 0, ids)
    assert (again == d).all()
    assert (_order_lead_times(L[:1], np.array([1.15]), 5, 0, ids[7:8]) == d[7]).all()
    assert (_order_lead_times(L[:3], np.full(3, 1.15), 5, 0, ids[[9, 2, 5]]) == d[[9, 2, 5]]).all()
    assert not (_order_lead_times(L, np.full(4000, 1.15), 5, 1, ids) == d).all()
    # a series without a spread takes its mean on every order; no spread anywhere: no draws at all
    mixed = _order_lead_times(np.array([3, 4]), np.array([0.0, 2.0]), 5, 0, ids[:2])
    assert mixed[0].tolist() == [3] * 5
    assert _order_lead_times(np.array([3, 4]), 0.0, 5, 0, ids[:2]) is None
    with pytest.raises(ValueError, match="lead_time_std must be >= 0"):
        _order_lead_times(np.array([3, 4]), np.array([1.0, -1.0]), 5, 0, ids[:2])
    with pytest.raises(ValueError, match="one per series"):
        replay(np.ones((2, 4)), np.ones((2, 4)), 1, 1, lead_time_std=np.ones(3))
    with pytest.raises(ValueError, match="series_ids must name the 2 series"):
        replay(np.ones((2, 4)), np.ones((2, 4)), 1, 1, lead_time_std=1.0, series_ids=["a"])


def test_spread_zero_is_the_deterministic_replay_to_the_bit():
    n_cases = 0
    for actual, S, L, R, Ls in _cases():
        n = len(actual)
        ids = np.array([f"x{i}" for i in range(n)], dtype=object)
        for lead in (L, Ls):
            det = replay(actual, S, lead, R, per_series=True)
            for kw in ({"lead_time_std": 0.0, "random_state": 5}, {"lead_time_std": np.zeros(n), "random_state": None,
                                                                     "series_ids": ids}):
                r = replay(actual, S, lead, R, per_series=True, **kw)
                assert _same(det, r), (L, R, kw)
                assert all(np.array_equal(det["per_series"][k], r["per_series"][k]) for k in det["per_series"])
            # a spread too small to move any order by a whole period: the random path, same figures
            tiny = replay(actual, S, lead, R, per_series=True, lead_time_std=1e-3, random_state=5, series_ids=ids)
            assert _same(det, tiny)
        n_cases += 1
    assert n_cases == 24


def test_end_net_service_is_demand_over_lead_time_plus_review_within_the_level():
    # a constant level, deterministic arrivals: cycle c ends with net inventory S - the demand of
    # the L + R periods from epoch c's review (orders never negative), so the end-net cycle
    # service is the share of those windows whose demand is <= S - what the sizing targets
    for actual, S, L, R, _ in _cases():
        n, T = actual.shape
        S1 = np.repeat(S[:, :1], S.shape[1], axis=1)
        r = replay(actual, S1, L, R, per_series=True)
        want = np.zeros(n, dtype=int)
        count = np.zeros(n, dtype=int)
        for c in range(S.shape[1]):
            if c * R + L + R <= T:
                want += actual[:, c * R: c * R + L + R].sum(axis=1) <= S1[:, 0] + 1e-9
                count += 1
        assert r["per_series"]["n_cycles"].tolist() == count.tolist()
        assert r["per_series"]["cycles_ok_end_net"].tolist() == want.tolist(), (L, R)
        # unserved demand only where demand comes: never fewer cycles served than ending >= 0
        assert (r["per_series"]["cycles_ok"] >= r["per_series"]["cycles_ok_end_net"]).all()


def test_on_hand_at_same_service_reads_the_targets_definition():
    # two points of a normal-formula curve whose readings differ (no unserved demand is >= no
    # backorder at cycle end); the distribution method achieved 0.92 end-net, 0.98 no-unserved
    curve = [{"cycle_service_level": 0.99, "cycle_service_level_end_net": 0.96, "avg_on_hand": 160.0},
             {"cycle_service_level": 0.95, "cycle_service_level_end_net": 0.90, "avg_on_hand": 100.0}]
    # end-net: 100 + (0.92 - 0.90) / (0.96 - 0.90) * 60 = 120 (the default, the target's reading)
    assert on_hand_at_same_service(curve, 0.92) == pytest.approx(120.0)
    # the old reading: 100 + (0.98 - 0.95) / (0.99 - 0.95) * 60 = 145
    assert on_hand_at_same_service(curve, 0.98, reading="cycle_service_level") == pytest.approx(145.0)
    # clamped to the curve's ends; no figure without an achieved service
    assert on_hand_at_same_service(curve, 0.5) == 100.0 and on_hand_at_same_service(curve, 1.0) == 160.0
    assert on_hand_at_same_service(curve, float("nan")) is None
    with pytest.raises(ValueError, match="reading must be"):
        on_hand_at_same_service(curve, 0.9, reading="fill_rate")


def test_on_hand_at_same_service_on_real_replays():
    # one series, L = R = 1, 3 units of demand in the first period and none after. S = 2: t0 2 on
    # hand for 3 (net -1); t1 orders 3 (due t2), no demand, net -1: cycle 0 has no unserved demand
    # but ends backordered; t2, t3 on hand 2. Cycles 0..2 count: no-unserved 3/3, end-net 2/3,
    # on hand 0 0 2 2 = 1.0. S = 3: t0 3 for 3 (net 0), t1 orders 3, t2, t3 on hand 3: 3/3 and 3/3,
    # on hand 0 0 3 3 = 1.5.
    actual = np.array([[3.0, 0, 0, 0]])
    low, high = (replay(actual, np.full((1, 4), s), 1, 1) for s in (2.0, 3.0))
    assert (low["cycle_service_level"], low["cycle_service_level_end_net"], low["avg_on_hand"]) == (1.0, 2 / 3, 1.0)
    assert (high["cycle_service_level"], high["cycle_service_level_end_net"], high["avg_on_hand"]) == (1.0, 1.0, 1.5)
    # a policy achieving 5/6 of cycles without a backorder at their end sits half-way: 1.25 units
    assert on_hand_at_same_service([low, high], 5 / 6) == pytest.approx(1.25)
    # on the old reading both policies serve every cycle, so it cannot tell them apart
    assert on_hand_at_same_service([low, high], 1.0, reading="cycle_service_level") in (1.0, 1.5)
