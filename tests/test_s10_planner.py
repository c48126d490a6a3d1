"""A demand planner's week (s10 audit): the replenish decision on the inventory position (stock on
order counts), order quantities rounded the way suppliers take them (minimum order, pack size),
and outputs that name their series keys and units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.inventory import InventoryPolicy


def _policy(ids="ABCDEFG"):
    # error paths +1 or -1 every period around a forecast of 10: reorder point 22 (lead time 2),
    # order-up-to 33 (lead time + review 3), as tests/test_inventory.py works out by hand
    h = 4
    fc = pd.concat([pd.DataFrame({"unique_id": u, "ds": pd.date_range("2024-01-01", periods=h, freq="W-MON"),
                                  "Final": 10.0}) for u in ids])
    res = pd.DataFrame([{"unique_id": f"p{j}", "demand_class": "smooth", "cutoff": c, "step": k, "r": rv}
                        for c in range(10) for j, rv in enumerate((1.0, -1.0)) for k in range(1, h + 1)])
    pol = InventoryPolicy(0.95, 1, n_sims=2000, cover_limit_periods=5).fit(fc, res, pd.Series(1.0, index=list(ids)), 2.0)
    p = pol.policy_.iloc[0]
    assert p["reorder_point"] == pytest.approx(22.0) and p["order_up_to"] == pytest.approx(33.0)
    return pol


def test_stock_on_order_is_not_ordered_again():
    """Before: advise compared on-hand alone with the reorder point, so an order placed last week
    (23 units, arriving after the lead time) was suggested again every week until it arrived."""
    pol = _policy("ABC")
    adv = pol.advise(pd.DataFrame({"unique_id": ["A", "B", "C"], "on_hand": [10.0, 10.0, 10.0],
                                   "on_order": [23.0, 5.0, np.nan]})).set_index("unique_id")
    assert adv.loc["A", "inventory_position"] == 33.0
    assert adv.loc["A", "action"] == "ok" and adv.loc["A", "order_qty"] == 0.0  # 10 + 23 >= 22: nothing to order
    assert adv.loc["B", "action"] == "replenish" and adv.loc["B", "order_qty"] == 18.0  # 33 - (10 + 5)
    assert "counting 5 on order" in adv.loc["B", "suggestion"]
    assert adv.loc["C", "on_order"] == 0.0 and adv.loc["C", "order_qty"] == 23.0  # empty: nothing on order
    # without the column: on-hand alone, as before
    plain = pol.advise(pd.DataFrame({"unique_id": ["A"], "on_hand": [10.0]})).iloc[0]
    assert plain["order_qty"] == 23.0 and plain["on_order"] == 0.0
    # on-order never hides backorders: -5 on hand + 20 on order = 15 < 22
    back = pol.advise(pd.DataFrame({"unique_id": ["A"], "on_hand": [-5.0], "on_order": [20.0]})).iloc[0]
    assert back["action"] == "replenish" and back["order_qty"] == 18.0


def test_minimum_order_and_pack_size_round_the_order_up():
    pol = _policy()
    oh = pd.DataFrame({
        "unique_id": list("ABCDEFG"),
        "on_hand": [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 21.5],
        "min_order_qty": [None, 40.0, 40.0, 10.0, None, None, None],
        "order_multiple": [12.0, None, 12.0, None, 0.1, 2.5, 6.0],
    })
    adv = pol.advise(oh).set_index("unique_id")
    need = 23.0  # ceil(33 - 10)
    assert (adv.loc[list("ABCDEF"), "order_qty_unrounded"] == need).all()
    assert adv["order_qty"].to_dict() == {"A": 24.0, "B": 40.0, "C": 48.0, "D": 23.0, "E": 23.0, "F": 25.0, "G": 12.0}
    assert "23 needed, rounded up to a multiple of 12" in adv.loc["A", "suggestion"]
    assert "raised to the minimum order 40 and rounded up to a multiple of 12" in adv.loc["C", "suggestion"]
    assert adv.loc["D", "suggestion"] == "order 23 units (up to 33.0)"  # the minimum is below the need
    # an order is never below what reaches the order-up-to level, never 0, and only on replenish
    rep = adv["action"] == "replenish"
    assert (adv.loc[rep, "order_qty"] >= np.ceil(adv.loc[rep, "order_qty_unrounded"])).all()
    assert (adv.loc[rep, "order_qty"] > 0).all()
    ok = pol.advise(oh.assign(on_hand=30.0)).set_index("unique_id")
    assert (ok["action"] == "ok").all() and (ok["order_qty"] == 0.0).all()  # a minimum order does not force an order


@pytest.mark.parametrize(("col", "value", "rule"), [
    ("on_order", -1.0, ">= 0"), ("min_order_qty", -3.0, ">= 0"), ("order_multiple", 0.0, "> 0"),
    ("order_multiple", "case", "> 0"), ("on_order", np.inf, ">= 0"),
])
def test_bad_order_rules_are_refused_naming_the_series(col, value, rule):
    pol = _policy("AB")
    oh = pd.DataFrame({"unique_id": ["A", "B"], "on_hand": [10.0, 10.0], col: [value, None]})
    with pytest.raises(ValueError, match=rf"{col} must be a number {rule}.*1 row\(s\).*'unique_id': 'A'"):
        pol.advise(oh)
