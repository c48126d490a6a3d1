"""models.inventory: the normal formula and the distribution method against hand-computed
cases, stock warnings, and the (R, S) replay on a case worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from models.inventory import (
    InventoryPolicy,
    NotFittedError,
    lead_time_periods,
    normal_policy,
    replay,
)


def test_normal_formula_exact():
    z = norm.ppf(0.95)
    p = normal_policy(np.array([10.0]), np.array([2.0]), np.array([4.0]), np.array([1.0]), 1.0, 0.95)
    assert p["safety_stock"][0] == pytest.approx(z * math.sqrt(4 * 4 + 100 * 1))
    assert p["reorder_point"][0] == pytest.approx(40 + z * math.sqrt(116))
    assert p["order_up_to"][0] == pytest.approx(50 + z * math.sqrt(5 * 4 + 100))
    assert lead_time_periods(14, "W") == 2.0 and lead_time_periods(1, "D") == 1.0


def _case(point=10.0, h=4, r=(1.0, -1.0)):
    fc = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01-01", periods=h, freq="W-MON"), "Final": point})
    res = pd.DataFrame([
        {"unique_id": f"p{j}", "demand_class": "smooth", "cutoff": 0, "step": k, "r": rv}
        for j, rv in enumerate(r) for k in range(1, h + 1)
    ] * 10)
    res["cutoff"] = np.repeat(np.arange(10), len(r) * h)  # 20 complete paths: 10 of +1, 10 of -1
    return fc, res


def test_distribution_method_by_hand():
    # Error paths are either +1 every period or -1 every period (scale 1): demand over a lead
    # time of 2 periods is 22 or 18 with equal chance, over lead time + review (3) 33 or 27.
    fc, res = _case()
    scale = pd.Series({"A": 1.0})
    p95 = InventoryPolicy(0.95, 1, n_sims=2000, random_state=1).fit(fc, res, scale, 2.0).policy_.iloc[0]
    assert p95["ltd_mean"] == pytest.approx(20.0)
    assert p95["reorder_point"] == pytest.approx(22.0)
    assert p95["safety_stock"] == pytest.approx(2.0)
    assert p95["order_up_to"] == pytest.approx(33.0)
    p40 = InventoryPolicy(0.55, 1, n_sims=2000, random_state=1).fit(fc, res, scale, 2.0).policy_.iloc[0]
    assert p40["reorder_point"] == pytest.approx(22.0)  # P(LTD <= 18) = 0.5 < 0.55
    # fractional lead time 1.5: 15 +- 1.5
    p = InventoryPolicy(0.95, 1, n_sims=2000).fit(fc, res, scale, 1.5).policy_.iloc[0]
    assert p["reorder_point"] == pytest.approx(16.5)
    # the normal formula beside it uses sigma_d = scale * RMS(step-1 errors) = 1
    assert p95["sigma_d"] == pytest.approx(1.0)
    assert p95["normal_safety_stock"] == pytest.approx(norm.ppf(0.95) * math.sqrt(2.0))


def test_lead_time_spread_widens_the_distribution_and_errors_are_clear():
    fc, res = _case(r=(0.0,))
    scale = pd.Series({"A": 1.0})
    fixed = InventoryPolicy(0.95, 1, n_sims=4000).fit(fc, res, scale, 2.0).policy_.iloc[0]
    assert fixed["safety_stock"] == pytest.approx(0.0)  # no forecast error, fixed lead time
    spread = InventoryPolicy(0.95, 1, n_sims=4000, random_state=0).fit(fc, res, scale, 2.0, 0.5).policy_.iloc[0]
    # demand rate 10 exactly, lead time ~ N(2, 0.5): reorder point ~ 10 * (2 + 1.645 * 0.5)
    assert spread["reorder_point"] == pytest.approx(10 * (2 + norm.ppf(0.95) * 0.5), rel=0.03)
    with pytest.raises(ValueError, match="exceeds the forecast horizon 4"):
        InventoryPolicy(0.95, 3).fit(fc, res, scale, 2.0)
    with pytest.raises(ValueError, match="service_level must be between"):
        InventoryPolicy(1.2).fit(fc, res, scale, 1.0)
    with pytest.raises(NotFittedError):
        InventoryPolicy().advise(pd.DataFrame({"unique_id": ["A"], "on_hand": [1.0]}))


def test_advise_replenish_overstock_ok(tmp_path):
    fc, res = _case()
    fc = pd.concat([fc, fc.assign(unique_id="B"), fc.assign(unique_id="C")])
    scale = pd.Series({"A": 1.0, "B": 1.0, "C": 1.0})
    pol = InventoryPolicy(0.95, 1, n_sims=2000, cover_limit_periods=5).fit(fc, res, scale, 2.0)
    adv = pol.advise(pd.DataFrame({"unique_id": ["A", "B", "C"], "on_hand": [10.0, 80.0, 30.0]})).set_index("unique_id")
    assert adv.loc["A", "action"] == "replenish" and adv.loc["A", "order_qty"] == 23.0  # 33 - 10
    assert adv.loc["B", "action"] == "overstock" and adv.loc["B", "excess"] == 30.0      # 80 - 5 x 10
    assert "promote or transfer" in adv.loc["B", "suggestion"]
    assert adv.loc["C", "action"] == "ok" and adv.loc["C", "order_qty"] == 0
    pol.save(tmp_path / "p")
    pd.testing.assert_frame_equal(InventoryPolicy.load(tmp_path / "p").policy_, pol.policy_)


def test_advise_slow_movers_policy_stock_is_not_overstock():
    # intermittent: forecast 0.5 per period; 93 error paths of -0.5 (no demand) and 10 paths with
    # a lump of 10 in step 1 -> lead-time (2) demand is 10.5 with chance ~0.1: reorder point 10.5,
    # order-up-to 10.5, mean demand 0.5, so 12 periods of cover = 6 units
    h = 4
    rows = []
    paths = [(f"p{j}", "intermittent", j < 10) for j in range(100)] + [(u, "intermittent", False) for u in "STUY"]
    paths += [(f"z{j}", "zero", False) for j in range(20)] + [("Z", "zero", False)]
    for uid, cls, lump in paths:
        for k in range(1, h + 1):
            r = 0.0 if cls == "zero" else (10.0 if lump and k == 1 else -0.5)
            rows.append({"unique_id": uid, "demand_class": cls, "cutoff": 0, "step": k, "r": r})
    res_all = pd.DataFrame(rows)
    ds = pd.date_range("2024-01-01", periods=h, freq="W-MON")
    fc = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "Final": v}) for u, v in
                    (("S", 0.5), ("T", 0.5), ("U", 0.5), ("Y", 1e-12), ("Z", 0.0))])
    scale = pd.Series({"S": 1.0, "T": 1.0, "U": 1.0, "Y": 1.0, "Z": 1.0})
    pol = InventoryPolicy(0.95, 1, n_sims=4000, cover_limit_periods=12).fit(fc, res_all, scale, 2.0)
    p = pol.policy_.set_index("unique_id")
    assert p.loc["S", "reorder_point"] == pytest.approx(10.5) and p.loc["S", "order_up_to"] == pytest.approx(10.5)
    assert p.loc["Z", "reorder_point"] == 0.0 and p.loc["Z", "order_up_to"] == 0.0
    # forecast ~0 with the same intermittent error pool: clipping at 0 would keep every lump
    # (reorder point 10); thinned to the forecast's mean, no demand is simulated
    assert p.loc["Y", "reorder_point"] == 0.0 and p.loc["Y", "order_up_to"] == 0.0
    unthinned = InventoryPolicy(0.95, 1, n_sims=4000, thin_below_units=0.0).fit(fc, res_all, scale, 2.0)
    assert unthinned.policy_.set_index("unique_id").loc["Y", "reorder_point"] == pytest.approx(10.0)
    adv = pol.advise(pd.DataFrame({"unique_id": ["S", "T", "U", "Y", "Z"], "on_hand": [10.5, 50.0, 3.0, 0.0, 0.0]}))
    adv = adv.set_index("unique_id")
    # holding one lump is what the policy asks for: ok, although it is 21 periods of mean demand
    assert adv.loc["S", "action"] == "ok" and adv.loc["S", "periods_of_cover"] > 12
    # far above the order-up-to level: overstock, excess counted from the order-up-to level
    assert adv.loc["T", "action"] == "overstock" and adv.loc["T", "excess"] == 39.0  # floor(50 - 10.5)
    assert adv.loc["U", "action"] == "replenish" and adv.loc["U", "order_qty"] == 8.0  # ceil(10.5 - 3)
    # no demand expected, no stock: nothing to do (not 'replenish', not an 'overstock' of 0 units)
    assert adv.loc["Y", "action"] == "ok" and adv.loc["Z", "action"] == "ok" and adv.loc["Z", "excess"] == 0.0


def test_replay_by_hand():
    S = np.full((1, 4), 10.0)
    calm = replay(np.array([[5.0, 5, 5, 5]]), S, lead_time=1, review_period=1)
    assert calm["cycle_service_level"] == 1.0 and calm["fill_rate"] == 1.0
    assert calm["avg_on_hand"] == pytest.approx(1.25) and calm["n_cycles"] == 3
    spike = replay(np.array([[5.0, 12, 5, 5]]), S, lead_time=1, review_period=1)
    # period 1: 5 on hand for 12 ordered (cycle 0 short); period 2: backorder of 7 not cleared
    # by the arriving 5 (cycle 1 short); period 3: 12 arrive, 5 served (cycle 2 fine)
    assert spike["cycle_service_level"] == pytest.approx(1 / 3)
    assert spike["fill_rate"] == pytest.approx(15 / 27)


def test_thinning_keeps_the_pools_mean_error():
    # a slow series whose point forecast (0.1 per period) runs low: in its class's error pool,
    # 20 % of the paths carry a lump of 10 units in step 1 (r = 10, scale 1), the rest 0. The
    # unclipped paths average 0.3 + 0.2 x 10 = 2.3 units over lead time (2) + review (1), so a
    # lump in the lead time has chance 0.2 > 5 %: reorder point 0.2 + 10. Thinning to the point
    # forecast (0.3 units) kept only ~2.6 % of the lumps and gave a reorder point of 0.2.
    h = 4
    rows = [{"unique_id": f"p{j}", "demand_class": "lumpy", "cutoff": 0, "step": k,
             "r": 10.0 if (j < 20 and k == 1) else 0.0} for j in range(100) for k in range(1, h + 1)]
    fc = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01-01", periods=h, freq="W-MON"), "Final": 0.1})
    pol = InventoryPolicy(0.95, 1, n_sims=4000, random_state=0).fit(fc, pd.DataFrame(rows), pd.Series({"A": 1.0}), 2.0)
    p = pol.policy_.iloc[0]
    assert p["reorder_point"] == pytest.approx(10.2) and p["order_up_to"] == pytest.approx(10.3)
