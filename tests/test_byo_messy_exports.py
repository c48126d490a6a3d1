"""Messy real exports of a new user's own order book (helper audit, session 17): ids written
with leading zeros in one table only, ... Each either reads right or stops / warns naming the
file, column, rows and values and what was expected. Tiny frames; the file runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from training.data import load_order_book
from training.errors import DataError

LINES = pd.DataFrame({
    "Invoice No": [f"A{i}" for i in range(12)],
    "Invoice Date": [f"2024-0{1 + i % 6}-1{i % 10} 10:00:00" for i in range(12)],
    "Customer No": ["123", "123", "456", "456", "789", "789", "1001", "1001", "2002", "2002", "3003", "3003"],
    "Item": ["X1", "X2"] * 6,
    "Qty": ["2"] * 12,
    "Unit Price": ["1.50"] * 12,
})
MAP = {"order_id": "Invoice No", "order_date": "Invoice Date", "account_id": "Customer No", "sku": "Item",
       "quantity": "Qty", "unit_price": "Unit Price"}


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _config(tmp_path: Path, **tables) -> Path:
    data = {"as_of": "2024-12-31", "order_lines": {"path": "lines.csv", "columns": MAP}, **tables}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"name": "messy", "data": data}))
    return tmp_path / "c.yaml"


def test_a_few_zero_padded_account_ids_are_named_not_silently_dropped(tmp_path):
    """One system pads two of six customer numbers ('00123' for '123'): under half the rows,
    so the half-the-rows hint stayed silent and 4 lines and 2 accounts vanished as
    unknown_account with nothing saying why."""
    LINES.to_csv(tmp_path / "lines.csv", index=False)
    pd.DataFrame({"Customer No": ["00123", "0456", "789", "1001", "2002", "3003"],
                  "Region": ["UK"] * 6}).to_csv(tmp_path / "acc.csv", index=False)
    pd.DataFrame({"Date": ["2024-03-01", "2024-03-02", "2024-03-03"], "Customer No": ["123", "789", "1001"],
                  "Kind": ["complaint", "ticket", "ticket"]}).to_csv(tmp_path / "ev.csv", index=False)
    cfg = _config(tmp_path, accounts={"path": "acc.csv", "columns": {"account_id": "Customer No", "region": "Region"}},
                  service_events={"path": "ev.csv", "columns": {"event_date": "Date", "account_id": "Customer No",
                                                                 "kind": "Kind"}})
    book = load_order_book(cfg)
    rep = book.report.tables["order_lines"]
    assert rep.reasons["unknown_account"]["rows"] == 4
    assert sorted(book.order_lines["account_id"].unique()) == ["1001", "2002", "3003", "789"]
    warn = [w for w in rep.warnings if "leading zeros" in w]
    assert warn == ["4 order_lines rows (2 account_id value(s)) are not in the accounts table only because of "
                    "leading zeros (e.g. '123' vs '00123', '456' vs '0456') and are dropped as unknown_account: ids "
                    "are compared as text, so '007' and '7' differ: write the id the same way in both tables"]
    ev = book.report.tables["service_events"]
    assert any("1 service_events rows (1 account_id value(s)) are not in the accounts table only because of "
               "leading zeros (e.g. '123' vs '00123')" in w for w in ev.warnings), ev.warnings


def test_unknown_ids_without_a_zero_padded_twin_get_no_leading_zero_warning(tmp_path):
    LINES.to_csv(tmp_path / "lines.csv", index=False)
    pd.DataFrame({"Customer No": ["99123", "456", "789", "1001", "2002", "3003"]}).to_csv(tmp_path / "acc.csv", index=False)
    book = load_order_book(_config(tmp_path, accounts={"path": "acc.csv", "columns": {"account_id": "Customer No"}}))
    rep = book.report.tables["order_lines"]
    assert rep.reasons["unknown_account"]["rows"] == 2
    assert not [w for w in rep.warnings if "leading zeros" in w]


def test_excel_serial_dates_are_refused_saying_what_they_are(tmp_path):
    """A date cell saved with a number format comes out as 40513.452778: the message said only
    'no value can be parsed as a date'. It now says they look like Excel serial dates, what the
    first would be, and how to export them (they are not converted: Excel's 1904 date system
    would put every order 4 years off)."""
    lines = LINES.copy()
    lines["Invoice Date"] = [f"{45292 + 7 * i}.4375" for i in range(12)]  # 2024-01-01 10:30 + i weeks
    lines.to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path))
    msg = str(ei.value)
    assert "order_lines.order_date (column 'Invoice Date'): no value can be parsed as a date, e.g. '45292.4375'" in msg
    assert ("they look like Excel serial dates (days counted from 1899-12-30: 45292.4375 would be 2024-01-01 10:30, "
            "or 4 years later in Excel's 1904 date system), which are not read: format the column as a date "
            "(yyyy-mm-dd hh:mm) in the sheet before saving it as CSV") in msg


def test_five_digit_order_numbers_mapped_as_the_date_are_not_called_excel_dates(tmp_path):
    lines = LINES.copy()
    lines["Invoice Date"] = [str(90000 + i) for i in range(12)]
    lines.to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path))
    assert "no value can be parsed as a date" in str(ei.value) and "Excel" not in str(ei.value)


@pytest.mark.parametrize(("cell", "sign"), [("£1.50", "£"), ("1.50 GBP", "GBP"), ("-€ 1.50", "€")])
def test_a_few_prices_with_a_currency_sign_stop_the_run_naming_rows_and_values(tmp_path, cell, sign):
    """Two of twelve prices pasted as '£1.50' were dropped as missing_price (their orders lost
    from demand, churn and dealer value) with only a count in the report. Like numbers written
    with a comma, they now stop the run, naming the column, rows, values and the sign."""
    lines = LINES.copy()
    lines.loc[[3, 7], "Unit Price"] = cell
    lines.to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path))
    assert str(ei.value).endswith(
        f"lines.csv: order_lines.unit_price (column 'Unit Price') holds 2 number(s) written with a currency sign or "
        f"code ({sign}), e.g. {cell!r} (first rows [4, 8]; 1 = the first data row); expected plain numbers such as "
        "2.55: export the column with a number format without the currency (one currency per book; a currency "
        "column can be mapped as currency:)")


@pytest.mark.parametrize(("cells", "reason"), [
    # '12 PCS' (a unit after the number) matched the three-capitals currency pattern and stopped the run
    # as 'written with a currency sign or code (PCS)'; only ISO codes are currencies
    ({"Qty": {3: "12 PCS"}}, "missing_quantity"),
    ({"Unit Price": {3: "n/a", 5: "EUR"}}, "missing_price"),
])
def test_text_that_is_no_number_with_a_currency_is_still_dropped_as_dirt(tmp_path, cells, reason):
    lines = LINES.copy()
    for col, at in cells.items():
        for row, cell in at.items():
            lines.loc[[row], col] = cell
    lines.to_csv(tmp_path / "lines.csv", index=False)
    book = load_order_book(_config(tmp_path))
    n = sum(len(at) for at in cells.values())
    assert book.report.tables["order_lines"].reasons[reason]["rows"] == n
    assert len(book.order_lines) == 12 - n


def test_a_header_line_repeated_mid_file_is_named_as_such(tmp_path):
    """Two exports concatenated: the second one's header line sat in the data and was counted as
    an unparseable date, a missing quantity and a missing price (and an unknown account) at once."""
    text = LINES.to_csv(index=False).splitlines(keepends=True)
    (tmp_path / "lines.csv").write_text("".join(text[:7] + [text[0]] + text[7:]))
    book = load_order_book(_config(tmp_path))
    rep = book.report.tables["order_lines"]
    assert rep.rows_in == 13 and len(book.order_lines) == 12
    assert rep.reasons["repeated_header"]["rows"] == 1 and rep.reasons["repeated_header"]["only_reason"] == 1
    assert rep.reasons["repeated_header"]["examples"][0]["row"] == 7
    assert set(rep.reasons) == {"repeated_header"}


def test_header_names_with_stray_spaces_are_read_as_the_mapped_columns(tmp_path):
    """'Item ' and ' Invoice Date' (spaces a spreadsheet does not show) stopped the run as missing
    columns; a column that differs from the mapped name only by spaces around or between words is
    now read as it. Case still has to match (the message suggests the other spelling)."""
    lines = LINES.rename(columns={"Item": "Item ", "Invoice Date": " Invoice  Date"})
    lines.to_csv(tmp_path / "lines.csv", index=False)
    book = load_order_book(_config(tmp_path))
    assert len(book.order_lines) == 12
    assert book.order_lines["sku"].value_counts().to_dict() == {"X1": 6, "X2": 6}
    assert str(book.order_lines["order_date"].min()) == "2024-01-10 10:00:00"
    lines.rename(columns={"Qty": "QTY"}).to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(DataError, match="'quantity' mapped from 'Qty'; did you mean 'QTY'"):
        load_order_book(_config(tmp_path))


def test_two_columns_equal_but_for_spaces_are_not_guessed_between(tmp_path):
    lines = LINES.rename(columns={"Qty": "Qty "})
    lines[" Qty"] = "5"
    lines.to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(DataError, match="'quantity' mapped from 'Qty'; did you mean 'Qty ' or ' Qty'"):
        load_order_book(_config(tmp_path))


def test_empty_rows_below_the_data_are_named_as_such(tmp_path):
    """',,,,,' lines a spreadsheet writes below the data were counted under six reasons (missing order
    id, unparseable date, missing account, sku, quantity and price) with 'only reason' 0 in each."""
    (tmp_path / "lines.csv").write_text(LINES.to_csv(index=False) + ",,,,,\n , ,,,,\n\n")
    book = load_order_book(_config(tmp_path))
    rep = book.report.tables["order_lines"]
    assert len(book.order_lines) == 12
    assert set(rep.reasons) == {"empty_row"}
    assert rep.reasons["empty_row"]["only_reason"] == 2
    assert [e["row"] for e in rep.reasons["empty_row"]["examples"]] == [13, 14]


def test_a_boolean_column_mapped_as_a_figure_is_refused_naming_it(tmp_path):
    """A Parquet (or database) true/false column mapped as the quantity (a flag such as 'Shipped') was read
    as 1 and 0: the true rows a book of one-unit lines, the false ones dropped as zero quantity, with only
    a 'half the lines dropped' warning (none when every row was true). Refused, naming the column."""
    lines = LINES.assign(Shipped=[True] * 11 + [False])
    lines.to_parquet(tmp_path / "lines.parquet")
    data = {"as_of": "2024-12-31", "order_lines": {"path": "lines.parquet", "columns": {**MAP, "quantity": "Shipped"}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"name": "messy", "data": data}))
    with pytest.raises(DataError) as err:
        load_order_book(tmp_path / "c.yaml")
    assert str(err.value) == (f"{tmp_path / 'lines.parquet'}: order_lines.quantity (column 'Shipped') is a column of "
                              "true/false values (true, false), not numbers: check that data.order_lines.columns maps "
                              "quantity to the column of figures")
    from training.validate import validate_inventory

    with pytest.raises(DataError, match=r"^inv: inventory.on_hand is a column of true/false values \(true\), not numbers"):
        validate_inventory(pd.DataFrame({"location": "L", "sku": ["A"], "on_hand": [True]}), source="inv")


def test_a_boolean_demand_or_stock_column_is_refused(tmp_path):
    """The same for a ready series table's y (a Parquet true/false column was forecast as demand of 1 and 0)
    and for --on-hand's on_hand / on_order (1 unit and none)."""
    from models.demand_data import build_panel
    from training.commands._demand_on_hand import _read_on_hand

    df = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01-01", periods=4, freq="W-MON"),
                       "y": [True, False, True, True]})
    with pytest.raises(ValueError) as err:
        build_panel(df, "W")
    assert str(err.value) == ("column y must be a number (demand in units); it is a column of true/false values (true, "
                              "false): check which column is read as y")
    f = tmp_path / "oh.parquet"
    pd.DataFrame({"sku": ["A"], "location": ["L"], "on_hand": [3.0], "on_order": [True]}).to_parquet(f)
    with pytest.raises(DataError) as err:
        _read_on_hand(f, ["sku", "location"])
    assert str(err.value) == (f"--on-hand {f}: column on_order must be a number of units; it is a column of true/false "
                              "values (true): check the file")
