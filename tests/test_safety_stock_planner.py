"""A demand planner's week (s10 audit): the replenish decision on the inventory position (stock on
order counts), order quantities rounded the way suppliers take them (minimum order, pack size),
and outputs that name their series keys and units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support_demand import _cli_book

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
    # too much on order is overstock as stock on hand is (cover limit 5 periods of 10 = 50, tolerance 10):
    # 10 on hand + 100 on order is 60 above the ceiling; 10 + 50 is within the tolerance
    over = pol.advise(pd.DataFrame({"unique_id": ["A", "B"], "on_hand": [10.0, 10.0], "on_order": [100.0, 50.0]}))
    over = over.set_index("unique_id")
    assert over.loc["A", "action"] == "overstock" and over.loc["A", "excess"] == 60.0
    # 60 over with 10 on hand: the excess is on order, not stock to promote (s14)
    assert over.loc["A", "suggestion"] == ("over 5 periods of cover and the order-up-to level, counting 100 on order: "
                                           "reduce the open orders by 60 units")
    assert over.loc["A", "periods_of_cover"] == 1.0  # the stock on hand
    assert over.loc["B", "action"] == "ok"
    # on-order never hides backorders: -5 on hand + 20 on order = 15 < 22
    back = pol.advise(pd.DataFrame({"unique_id": ["A"], "on_hand": [-5.0], "on_order": [20.0]})).iloc[0]
    assert back["action"] == "replenish" and back["order_qty"] == 18.0
    # the order fills the backorders too, and says so (s14: 'order 1166 units (up to 963.8, counting 202 on
    # order)' for -404 on hand read as ordering past the order-up-to level)
    assert back["suggestion"] == "below the reorder point 22.0: order 18 units (up to 33.0, counting 20 on order, plus 5 backordered)"
    deep = pol.advise(pd.DataFrame({"unique_id": ["A"], "on_hand": [-10.0]})).iloc[0]
    assert deep["order_qty"] == 43.0
    assert deep["suggestion"] == "below the reorder point 22.0: order 43 units (up to 33.0, plus 10 backordered)"


def test_overstock_on_order_is_not_promoted_from_stock_not_on_hand():
    """Before: an overstock counting stock on order said 'reduce the open orders or promote or transfer
    N units' with N above the stock on hand - on Online Retail (s14) 910 units with -304 on hand
    (backorders) and 3037 on order, 1519 with 89 on hand: nothing there to promote or transfer.
    Ceiling 50 (cover limit 5 x 10), tolerance 10."""
    pol = _policy("ABCDE")
    adv = pol.advise(pd.DataFrame({"unique_id": list("ABCDE"), "on_hand": [-30.0, 0.0, 40.0, 100.0, 60.0],
                                   "on_order": [300.0, 80.0, 60.0, 20.0, 60.0]})).set_index("unique_id")
    assert (adv["action"] == "overstock").all()
    assert adv["excess"].to_dict() == {"A": 220.0, "B": 30.0, "C": 50.0, "D": 70.0, "E": 70.0}
    head = "over 5 periods of cover and the order-up-to level, counting "
    assert adv.loc["A", "suggestion"] == head + "300 on order: reduce the open orders by 220 units"
    assert adv.loc["B", "suggestion"] == head + "80 on order: reduce the open orders by 30 units"
    # 50 over with 40 on hand: 50 can be cut from the 60 on order, so no promotion is needed
    assert adv.loc["C", "suggestion"] == head + "60 on order: reduce the open orders by 50 units"
    # 70 over with 100 on hand and 20 on order: either, as before
    assert adv.loc["D", "suggestion"] == head + "20 on order: reduce the open orders or promote or transfer 70 units"
    # 70 over with 60 on hand and 60 on order: cancel the 60 and promote the other 10 from stock
    assert adv.loc["E", "suggestion"] == head + "60 on order: reduce the open orders by 60 units and promote or transfer 10 units"


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
    assert adv.loc["D", "suggestion"] == "below the reorder point 22.0: order 23 units (up to 33.0)"  # min below need
    monthly = pol.advise(pd.DataFrame({"unique_id": ["A", "B"], "on_hand": [1000.0, 1000.0]}), freq="M")
    assert monthly["suggestion"].str.startswith("over 5 months of cover").all()  # cover_limit_periods 5, monthly
    # an order is never below what reaches the order-up-to level, never 0, and only on replenish
    rep = adv["action"] == "replenish"
    assert (adv.loc[rep, "order_qty"] >= np.ceil(adv.loc[rep, "order_qty_unrounded"])).all()
    assert (adv.loc[rep, "order_qty"] > 0).all()
    ok = pol.advise(oh.assign(on_hand=33.0)).set_index("unique_id")  # at the order-up-to level
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


def test_cli_outputs_name_their_keys_units_and_order_rules(tmp_path, monkeypatch):
    """Before: the forecast and policy files had only unique_id ('A1/north'), a lead_time of 3.0
    with no unit (periods of the weekly forecast, for 21 days), no word of which lead times came
    from the book and which from the config, and --on-hand took neither stock on order nor the
    supplier's minimum order and pack size, nor the sku / location columns a stock export has."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _cli_book(tmp_path)
    run = CliRunner()
    fc_out = tmp_path / "fc.csv"
    res = run.invoke(app, ["forecast", "--config", str(cfg), "--out", str(fc_out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(fc_out)
    assert list(fc.columns[:4]) == ["unique_id", "sku", "location", "ds"]
    assert (fc["sku"] + "/" + fc["location"] == fc["unique_id"]).all()

    oh = tmp_path / "stock.csv"
    oh.write_text("sku,location,on_hand,on_order,min_order_qty,order_multiple\n"
                  "A1,north,0,,,12\nA1,south,0,1000,,\nB2,north,0,,50,\nZZ9,north,3,,,\n")
    out = tmp_path / "pol.csv"
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out), "--on-hand", str(oh)])
    assert res.exit_code == 0, res.output
    assert "1 of 4 sized series have no row in it" in res.output and "'C3/south'" in res.output
    pol = pd.read_csv(out).set_index("unique_id")
    assert pol.loc["A1/north", "sku"] == "A1" and pol.loc["C3/south", "location"] == "south"
    assert (pol["freq"] == "W").all()
    assert pol.loc["A1/north", "lead_time"] == pytest.approx(3.0) and pol.loc["A1/north", "lead_time_days"] == 21.0
    assert pol.loc["A1/north", "lead_time_std_days"] == 4.0 and pol.loc["A1/north", "lead_time_source"] == "lead_times"
    assert pol.loc["B2/north", "lead_time_days"] == 14.0 and pol.loc["B2/north", "lead_time_std_days"] == 3.0
    assert pol.loc["B2/north", "lead_time_source"] == "config"
    # an empty spread in the book is no spread (0), as the sizing takes it (not the config default)
    assert pol.loc["C3/south", "lead_time_days"] == 7.0 and pol.loc["C3/south", "lead_time_std"] == 0.0
    assert pol.loc["C3/south", "lead_time_std_days"] == 0.0
    a = pol.loc["A1/north"]
    assert a["action"] == "replenish" and a["order_qty"] == 12 * np.ceil(np.ceil(a["order_up_to"]) / 12)
    assert a["order_qty_unrounded"] == pytest.approx(a["order_up_to"]) and a["order_multiple"] == 12
    s = pol.loc["A1/south"]  # 1,000 on order: nothing more to order
    assert s["inventory_position"] == 1000 and s["action"] != "replenish" and s["order_qty"] == 0
    b = pol.loc["B2/north"]
    assert b["order_qty"] == max(50.0, np.ceil(b["order_up_to"])) and b["min_order_qty"] == 50
    assert np.isnan(pol.loc["C3/south", "on_hand"])
    # the overstock message says the forecast's period (it said 'over 12.0 periods of cover')
    big = tmp_path / "big.csv"
    big.write_text("unique_id,on_hand\nA1/north,100000\n")
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out), "--on-hand", str(big)])
    assert res.exit_code == 0, res.output
    over = pd.read_csv(out).set_index("unique_id").loc["A1/north"]
    assert over["action"] == "overstock" and over["suggestion"].startswith("over 12 weeks of cover and the order-up-to level")

    # without --on-hand: the book's inventory; its stock of a SKU that was never sold (ZZ9 at north, 3
    # units: dead stock) is named, not dropped without a word
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "the inventory holds stock of 1 series without a policy" in res.output and "'ZZ9/north': 3.0" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("unique_id,on_hand,order_multiple\nA1/north,1,6\nA1/south,1,0\nB2/north,1,box\n")
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(tmp_path / "x.csv"), "--on-hand", str(bad)])
    assert res.exit_code == 2, res.output
    assert "column order_multiple must be the pack size, units > 0 (empty: 1); 2 row(s) are not, first rows [2, 3]" in res.output
    assert str(bad) in res.output and not (tmp_path / "x.csv").exists()


def test_forecast_alias_names_the_key_columns_from_the_config(tmp_path):
    """forecast --alias wrote unique_id only: the registered forecaster's ids are split into the
    config's demand.levels (or its series table's unique_id columns) when --config is given."""
    from models.demand import DemandForecaster
    from training.commands._demand_common import _with_keys
    from training.commands.demand_forecast import _alias_keys

    cfg = _cli_book(tmp_path)
    plain = DemandForecaster(freq="W", h=4)
    assert _alias_keys(plain, cfg) == ["sku", "location"] and _alias_keys(plain, None) == []
    fc = pd.DataFrame({"unique_id": ["A1/north", "B2/south"], "ds": pd.Timestamp("2024-07-01"), "Final": 1.0})
    out = _with_keys(fc, _alias_keys(plain, cfg))
    assert list(out.columns) == ["unique_id", "sku", "location", "ds", "Final"] and out["location"].tolist() == ["north", "south"]
    # ids that do not split into the keys (a SKU holding '/') get no key columns rather than wrong ones
    odd = fc.assign(unique_id=["A/1/north", "B2/south"])
    assert list(_with_keys(odd, ["sku", "location"]).columns) == ["unique_id", "ds", "Final"]
    series = tmp_path / "s.yaml"
    series.write_text("name: s\ndata:\n  order_lines: {path: x.csv}\ndemand:\n  series: {path: x.csv, columns: "
                      "{unique_id: [agency, sku], ds: date, y: volume}}\n")
    assert _alias_keys(plain, series) == ["agency", "sku"]
