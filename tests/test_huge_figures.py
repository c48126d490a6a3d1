"""Finite but absurd figures (1e300) in the tables beside the quantity: prices and amounts of order
lines, units on hand in the inventory table and in --on-hand. They were read, and the book's revenue,
revenue at risk, overstock advice ('promote or transfer -9223372036854775808 units') came out as
numbers of 300 digits. Each is refused when read, naming the file, column, rows, values and range."""

from __future__ import annotations

import pandas as pd
import pytest

from training.errors import DataError
from training.validate import validate_inventory, validate_order_lines

_LINES = {"order_id": ["O1", "O2", "O3"], "order_date": ["2024-01-02", "2024-01-03", "2024-01-04"],
          "account_id": "A1", "sku": "S1", "quantity": [1.0, 2.0, 3.0]}


@pytest.mark.parametrize(("cols", "col", "what"), [
    ({"unit_price": ["2.5", "1e300", "-3e15"]}, "unit_price", "a price per unit"),
    ({"unit_price": ["2.5", "1", "1"], "line_amount": ["2.5", "1e300", "-3e15"]}, "line_amount", "an amount per line"),
    ({"line_amount": ["2.5", "1e300", "-3e15"]}, "line_amount", "an amount per line"),
])
def test_a_huge_price_or_amount_is_refused_naming_rows_and_values(cols, col, what):
    raw = pd.DataFrame({**_LINES, **cols})
    with pytest.raises(DataError) as err:
        validate_order_lines(raw, source="ol.csv", as_of="2024-12-31")
    assert str(err.value) == (
        f"ol.csv: order_lines.{col} holds 2 value(s) beyond 1,000,000,000,000,000 (either sign), e.g. 1e300, -3e15 "
        f"(first rows [2, 3]; 1 = the first data row); expected {what} between -1,000,000,000,000,000 and "
        f"1,000,000,000,000,000: check those rows (a figure in another unit, or an id or a quantity in the {col} column)")
    # at the bound the line is read
    ok, _ = validate_order_lines(pd.DataFrame({**_LINES, col: ["1", "1e15", "-1e15"]}), source="ol.csv",
                                 as_of="2024-12-31")
    assert ok["order_id"].tolist() == ["O1", "O2"]  # the negative price is dropped as such (non_positive_price)


def test_huge_units_on_hand_in_the_inventory_table_are_refused():
    raw = pd.DataFrame({"location": "DC1", "sku": ["S1", "S2"], "on_hand": ["4", "1e300"]})
    with pytest.raises(DataError) as err:
        validate_inventory(raw, source="inv.csv")
    assert str(err.value) == (
        "inv.csv: inventory.on_hand holds 1 value(s) beyond 1,000,000,000,000 (either sign), e.g. 1e300 (first rows [2]; "
        "1 = the first data row); expected a number of units on hand between -1,000,000,000,000 and "
        "1,000,000,000,000: check those rows (a figure in another unit, or an id in the on_hand column)")


@pytest.mark.parametrize(("body", "col", "row", "shown"), [
    ("A1,north,1e300,0\nA1,south,7,1\n", "on_hand", 1, "1e+300"),
    ("A1,north,4,0\nA1,south,7,1e200\n", "on_order", 2, "1e+200"),
])
def test_huge_units_in_the_on_hand_file_are_refused(tmp_path, body, col, row, shown):
    from training.commands._demand_on_hand import _read_on_hand

    f = tmp_path / "oh.csv"
    f.write_text("sku,location,on_hand,on_order\n" + body)
    with pytest.raises(DataError) as err:
        _read_on_hand(f, ["sku", "location"])
    assert str(err.value) == (
        f"--on-hand {f}: column {col} holds 1 value(s) beyond 1,000,000,000,000 units (either sign), first rows "
        f"[{row}] (1 = the first data row), e.g. ['{shown}']; expected a number of units between -1,000,000,000,000 and "
        f"1,000,000,000,000: check those rows (a figure in another unit, or an id in the {col} column)")


def test_a_huge_lead_time_spread_is_named_without_its_300_digits():
    """A lead_time_std_days of 1e300 was named as 'needs a forecast of up to 3322857142857142870161124...' (300
    digits); the count is now written short."""
    from models._inventory_distribution import lead_times_beyond_forecaster

    L = pd.Series([1.0, 2.0], index=["A/x", "B/y"])
    sd = pd.Series([1e300 / 7, 0.0], index=L.index)
    said = lead_times_beyond_forecaster(L, sd, 1, "W")
    assert said.startswith("1 series' lead time + review period 1 + 2.326 x the lead-time spread needs a forecast of "
                           "up to 3.32e+299 W periods, beyond the forecaster's 520: A/x (lead_time_days 7, "
                           "lead_time_std_days 1e+300)"), said
    assert "needs a forecast of up to 14288 W periods" in lead_times_beyond_forecaster(
        pd.Series([100000 / 7], index=["C/z"]), 0.0, 1, "W")


def test_a_config_lead_time_beyond_a_hundred_years_is_refused(tmp_path):
    """demand.lead_time_days / lead_time_std_days of 1e300 passed while no series used them (every one had a
    lead_times row), and simulate inventory wrote the config's lead time as a period count of 300 digits."""
    from training.config import ExperimentConfig
    from training.demand_config import demand_settings
    from training.errors import ConfigError

    cfg = ExperimentConfig(name="t", data={"order_lines": {"path": "ol.csv"}},
                           demand={"lead_time_days": 1e300, "lead_time_std_days": 40000})
    with pytest.raises(ConfigError) as err:
        demand_settings(cfg)
    assert str(err.value).splitlines()[1:] == [
        "  key 'demand.lead_time_days': Input should be less than or equal to 36500; got 1e+300",
        "  key 'demand.lead_time_std_days': Input should be less than or equal to 36500; got 40000"]
    ok = ExperimentConfig(name="t", data={"order_lines": {"path": "ol.csv"}}, demand={"lead_time_days": 36500})
    assert demand_settings(ok).lead_time_days == 36500


def test_an_absurd_resolution_time_of_a_service_event_is_refused():
    """resolution_days 1e300 was read, and the case counted as open at every cutoff (raised + 1e300
    days is never reached): the churn features open_events / resolution_days_mean_180d, silently."""
    from training.validate import validate_service_events

    ev = {"event_date": ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"], "account_id": "A1", "kind": "ticket"}
    with pytest.raises(DataError) as err:
        validate_service_events(pd.DataFrame({**ev, "resolution_days": ["3", "1e300", "36501", "-2"]}),
                                source="se.csv", as_of="2024-12-31")
    assert str(err.value) == (
        "se.csv: service_events.resolution_days holds 2 value(s) beyond 36,500, e.g. 1e300, 36501 (first rows [2, 3]; "
        "1 = the first data row); expected a number of days from raised to resolved (empty while open) between 0 and "
        "36,500: check those rows (a figure in another unit, or a date or an id in the resolution_days column)")
    # 100 years is read; a negative one is set to empty as before (named in the report), an empty one is open
    ok, rep = validate_service_events(pd.DataFrame({**ev, "resolution_days": ["3", "36500", "", "-2"]}),
                                      source="se.csv", as_of="2024-12-31")
    assert ok["resolution_days"].fillna(-1).tolist() == [3.0, 36500.0, -1, -1]
