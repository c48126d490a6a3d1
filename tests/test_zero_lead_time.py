"""A lead time of 0 days (stock collected at a local DC, made or drop-shipped the same day) is a
valid lead time end to end (session 12). Before, the order book's lead_times row of 0 was dropped
(``invalid_lead_time``) and the series silently took the config's default (14 days: two weeks of
stock it does not need), and ``demand.lead_time_days``, ``--lead-time-days`` and the service's
``lead_time_days`` / ``lead_times`` refused 0. Negative or non-number lead times are still refused.

Hand-computed values: error paths +1 or -1 every period around a forecast of 10 (as
``tests/test_safety_stock_planner.py``), so demand over k periods is 9k or 11k, half the paths each; with
L = 0 and review R = 1 the reorder point is the 95 % quantile of demand over 0 periods (0) and
the order-up-to level over 1 period (11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from models.inventory import InventoryPolicy, horizon_needed, lead_time_fits, replay

Z95 = float(norm.ppf(0.95))


def _fit(L: float, sdL: float = 0.0, n_sims: int = 2000, ids: str = "AB") -> InventoryPolicy:
    h = 4
    fc = pd.concat([pd.DataFrame({"unique_id": u, "ds": pd.date_range("2024-01-01", periods=h, freq="W-MON"),
                                  "Final": 10.0}) for u in ids])
    res = pd.DataFrame([{"unique_id": f"p{j}", "demand_class": "smooth", "cutoff": c, "step": k, "r": rv}
                        for c in range(10) for j, rv in enumerate((1.0, -1.0)) for k in range(1, h + 1)])
    return InventoryPolicy(0.95, 1, n_sims=n_sims, cover_limit_periods=5).fit(
        fc, res, pd.Series(1.0, index=list(ids)), L, sdL)


def test_zero_lead_time_sizes_the_review_period_alone():
    p = _fit(0.0).policy_.iloc[0]
    # distribution method: no demand falls in a lead time of 0; the order-up-to level covers R = 1
    assert (p["reorder_point"], p["safety_stock"], p["ltd_mean"], p["order_up_to"]) == (0.0, 0.0, 0.0, 11.0)
    # normal formula: d = 10, sigma_d = 1 (RMS of +-1): SS = z sqrt(0) = 0, ROP = 10 x 0 + 0, OUT = 10 + z sqrt(1)
    assert (p["normal_safety_stock"], p["normal_reorder_point"]) == (0.0, 0.0)
    assert p["normal_order_up_to"] == pytest.approx(10.0 + Z95)
    assert p["mean_demand"] == 10.0 and p["sigma_d"] == 1.0
    # it fits any horizon that holds the review period
    assert lead_time_fits(0.0, 0.0, 1.0, 1).all() and horizon_needed(0.0, 0.0, 1.0) <= 2


def test_zero_lead_time_with_a_spread_draws_the_cut_normal():
    """Lead times drawn from Normal(0, 1 period) cut at 0 (half the paths 0): demand over them is
    9T or 11T, T = max(0, Z), so P(D <= x) = (Phi(x / 9) + Phi(x / 11)) / 2 for x >= 0; over T + R:
    (Phi(x / 9 - 1) + Phi(x / 11 - 1)) / 2."""
    p = _fit(0.0, 1.0, n_sims=20000).policy_.iloc[0]
    rop = brentq(lambda x: 0.5 * norm.cdf(x / 9) + 0.5 * norm.cdf(x / 11) - 0.95, 0.1, 100)  # 16.51
    oup = brentq(lambda x: 0.5 * norm.cdf(x / 9 - 1) + 0.5 * norm.cdf(x / 11 - 1) - 0.95, 0.1, 100)  # 26.77
    assert p["reorder_point"] == pytest.approx(rop, rel=0.02) and p["order_up_to"] == pytest.approx(oup, rel=0.02)
    assert p["ltd_mean"] == 0.0 and p["safety_stock"] == p["reorder_point"]  # the forecast over the mean lead time, 0
    # normal: sigma_LTD = sqrt(0 x 1 + 10^2 x 1^2) = 10; OUT = 10 + z sqrt(1 x 1 + 100)
    assert p["normal_safety_stock"] == pytest.approx(10 * Z95) and p["normal_reorder_point"] == pytest.approx(10 * Z95)
    assert p["normal_order_up_to"] == pytest.approx(10 + Z95 * np.sqrt(101))


def test_zero_lead_time_advice_replenishes_only_backorders():
    """Reorder point 0: an order placed now arrives before the next demand, so a position of 0 is
    the routine order of the review, and only a position below 0 (backorders) is a replenish warning."""
    adv = _fit(0.0, ids="ABCD").advise(pd.DataFrame({"unique_id": list("ABCD"), "on_hand": [-2.0, 0.0, 11.0, 100.0]}))
    adv = adv.set_index("unique_id")
    assert adv["action"].to_dict() == {"A": "replenish", "B": "order", "C": "ok", "D": "overstock"}
    assert adv["order_qty"].to_dict() == {"A": 13.0, "B": 11.0, "C": 0.0, "D": 0.0}  # 11 - (-2), 11 - 0
    assert adv.loc["A", "suggestion"] == "below the reorder point 0.0: order 13 units (up to 11.0, plus 2 backordered)"
    # cover limit 5 x 10 = 50 (above the order-up-to 11), tolerance one review's demand 10: 100 > 60
    assert adv.loc["D", "excess"] == 50.0


def test_replay_with_zero_lead_time_by_hand():
    """The order of a review arrives before the demand of the review's own period (L = 1: one
    period later). Constant demand 3, R = 1, S = 3: each review tops the position up to 3, the
    period's demand takes it to 0: no backorder, 0 on hand at every period end."""
    flat = np.full((1, 6), 3.0)
    r = replay(flat, np.full((1, 6), 3.0), 0, 1, per_series=True)
    assert (r["fill_rate"], r["cycle_service_level"], r["cycle_service_level_end_net"], r["avg_on_hand"]) == (1.0, 1.0, 1.0, 0.0)
    assert r["n_cycles"] == 6 and r["per_series"]["served"][0] == 18.0
    # R = 2, S = 6 (demand over the review period alone): on hand 3, 0, 3, 0, 3, 0 -> 1.5
    r2 = replay(flat, np.full((1, 3), 6.0), 0, 2)
    assert (r2["fill_rate"], r2["cycle_service_level_end_net"], r2["avg_on_hand"], r2["n_cycles"]) == (1.0, 1.0, 1.5, 3)
    # L = 1 needs S = 6 for the same demand (lead time + review = 2 periods): on hand 3 only at the start
    r1 = replay(flat, np.full((1, 6), 6.0), 1, 1)
    assert (r1["fill_rate"], r1["avg_on_hand"], r1["n_cycles"]) == (1.0, 0.5, 5)
    # demand 2, 5, 1, 3 with S = 3, R = 1, L = 0: net 3-2 = 1; up to 3, -5 -> -2 (3 served, 2 short);
    # up to 3 (5 ordered), -1 -> 2; up to 3, -3 -> 0. Served 2 + 3 + 1 + 3 = 9 of 11; cycle 2 fails
    r3 = replay(np.array([[2.0, 5.0, 1.0, 3.0]]), np.full((1, 4), 3.0), 0, 1, per_series=True)
    assert r3["fill_rate"] == pytest.approx(9 / 11) and r3["per_series"]["on_hand_sum"][0] == 3.0
    assert (r3["cycle_service_level"], r3["cycle_service_level_end_net"], r3["avg_on_hand"]) == (0.75, 0.75, 0.75)
    # a spread around 0 draws lead times of 0 or more (never negative) and runs
    rs = replay(flat, np.full((1, 6), 6.0), 0, 1, lead_time_std=1.0)
    assert rs["fill_rate"] <= 1.0 and rs["n_cycles"] == 6


def test_a_zero_lead_time_row_is_kept_and_negatives_are_still_refused():
    from training.validate import validate_lead_times

    lt, rep = validate_lead_times(pd.DataFrame({"sku": ["A", "B", "C", "D"], "lead_time_days": ["0", "-1", "two", "3"]}),
                                  source="lt.csv")
    assert lt["sku"].tolist() == ["A", "D"] and lt["lead_time_days"].tolist() == [0.0, 3.0]
    bad = rep.reasons["invalid_lead_time"]
    assert rep.source == "lt.csv" and bad["rows"] == 2
    assert bad["description"] == "lead_time_days is empty, not a number or negative (< 0)"
    assert [(e["row"], e["sku"], e["lead_time_days"]) for e in bad["examples"]] == [(2, "B", -1), (3, "C", "two")]


def test_config_key_takes_zero_and_names_itself_for_negatives():
    from pydantic import ValidationError

    from training.demand_config import DemandSettings

    assert DemandSettings(lead_time_days=0).lead_time_days == 0.0
    with pytest.raises(ValidationError, match="lead_time_days"):
        DemandSettings(lead_time_days=-1)


def _cli_book(tmp_path):
    """tests/test_safety_stock_planner.py's four-series weekly book; C3 at south is collected the same day
    (0 days, no spread), B2 has no row (the config's 14 +- 3 days)."""
    from _support_demand import _cli_book as planner_book

    return planner_book(tmp_path, c3_south_days=0)


def test_cli_safety_stock_sizes_a_zero_lead_time_from_the_book(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _cli_book(tmp_path)
    oh = tmp_path / "stock.csv"
    oh.write_text("sku,location,on_hand\nC3,south,0\nA1,north,0\n")
    out = tmp_path / "pol.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out), "--on-hand", str(oh)])
    assert res.exit_code == 0, res.output
    pol = pd.read_csv(out).set_index("unique_id")
    c = pol.loc["C3/south"]
    assert (c["lead_time_days"], c["lead_time_std_days"], c["lead_time"], c["lead_time_source"]) == (0.0, 0.0, 0.0, "lead_times")
    assert (c["reorder_point"], c["safety_stock"], c["normal_reorder_point"], c["normal_safety_stock"]) == (0.0, 0.0, 0.0, 0.0)
    assert c["order_up_to"] > 0 and c["normal_order_up_to"] > 0  # one week of review
    # nothing on hand with a reorder point of 0 is the routine order, not a warning
    assert c["action"] == "order" and c["order_qty"] == np.ceil(c["order_up_to"])
    a = pol.loc["A1/north"]  # a 21-day row beside it is sized as before
    assert (a["lead_time_days"], a["lead_time_source"], a["action"]) == (21.0, "lead_times", "replenish")
    assert pol.loc["B2/north", "lead_time_source"] == "config"


@pytest.mark.parametrize(("args", "said"), [
    (["--lead-time-days", "-1"], "--lead-time-days: must be greater than or equal to 0; got -1"),
    ([], "key 'demand.lead_time_days': Input should be greater than or equal to 0; got -1"),
])
def test_cli_refuses_a_negative_lead_time_naming_the_option_or_key(tmp_path, monkeypatch, args, said):
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _cli_book(tmp_path)
    if not args:
        cfg.write_text(cfg.read_text().replace("lead_time_days: 14", "lead_time_days: -1"))
    res = CliRunner().invoke(app, ["simulate", "inventory", "--config", str(cfg), "--json", str(tmp_path / "r.json"),
                                   *args])
    assert res.exit_code != 0
    assert said in res.output, res.output
