"""Validation: every drop reason on tiny hand-made frames, exact counts, output dtypes, fatal
errors through the real CLI (non-zero exit, file + column named, no JSON written), and the
known dirt of the real Online Retail file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app
from training.data import load_order_book
from training.errors import DataError
from training.validate import (
    validate_accounts,
    validate_inventory,
    validate_lead_times,
    validate_order_lines,
    validate_service_events,
)

REPO = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"

COLS = ["order_id", "order_date", "account_id", "sku", "quantity", "unit_price"]


def _lines(rows: list[tuple]) -> pd.DataFrame:
    """Raw order lines as a CSV reader gives them: every value text, None for empty."""
    return pd.DataFrame([[None if v is None else str(v) for v in r] for r in rows], columns=COLS, dtype=object)


GOOD = ("1001", "2024-01-05 10:00:00", "A1", "S1", "2", "3.5")


def test_each_reason_counted_exactly() -> None:
    rows = [
        GOOD,
        ("1002", "2024-01-06", "A2.0", "S2", "1.0", "10"),  # kept; 'A2.0' is not a number so it stays as is
        ("1003", "2024-01-06", "17850.0", "S2", "1", "10"),  # kept, account -> '17850'
        ("C1004", "2024-01-07", "A1", "S1", "-2", "3.5"),  # cancellation + negative_quantity
        ("1005", "2024-01-07", "A1", "S1", "-1", "3.5"),  # negative_quantity only (a return)
        ("1006", "2024-01-07", "A1", "S1", "0", "3.5"),  # zero_quantity
        ("1007", "2024-01-07", "A1", "S1", "abc", "3.5"),  # missing_quantity (not a number)
        ("1008", "2024-01-07", None, "S1", "1", "3.5"),  # missing_account
        ("1009", "2024-01-07", None, "S1", "1", "0"),  # missing_account + non_positive_price
        ("1010", "2024-01-07", "A1", "S1", "1", "-5"),  # non_positive_price
        ("1011", "2024-01-07", "A1", "S1", "1", None),  # missing_price
        ("1012", "not a date", "A1", "S1", "1", "2"),  # unparseable_date
        ("1013", "2099-01-01", "A1", "S1", "1", "2"),  # future_date
        ("1014", "2024-01-08", "A1", None, "1", "2"),  # missing_sku
        (None, "2024-01-08", "A1", "S1", "1", "2"),  # missing_order_id
        GOOD,  # duplicate of row 1
        GOOD,  # duplicate of row 1
        ("1015", "2024-01-09", "ZZ", "S1", "1", "2"),  # unknown_account (with known_accounts)
    ]
    raw = _lines(rows)
    out, rep = validate_order_lines(  # window 0: C1004 drops itself only (netting: test_cancellations.py)
        raw, source="tiny.csv", cancellation_prefix="C", as_of="2025-01-01",
        known_accounts=["A1", "A2.0", "17850"], cancellation_window_days=0,
    )
    got = {k: (v["rows"], v["only_reason"]) for k, v in rep.reasons.items()}
    assert got == {
        "cancellation": (1, 0),
        "negative_quantity": (2, 1),
        "zero_quantity": (1, 1),
        "missing_quantity": (1, 1),
        "missing_account": (2, 1),
        "non_positive_price": (2, 1),
        "missing_price": (1, 1),
        "unparseable_date": (1, 1),
        "future_date": (1, 1),
        "missing_sku": (1, 1),
        "missing_order_id": (1, 1),
        "duplicate": (2, 2),
        "unknown_account": (1, 1),
    }
    assert rep.rows_in == 18 and rep.rows_out == 3 and rep.rows_dropped == 15
    assert list(out["order_id"]) == ["1001", "1002", "1003"]
    assert list(out["account_id"]) == ["A1", "A2.0", "17850"]
    assert rep.fixes["account_id_float"]["rows"] == 1
    # examples: the raw row number (1-based) and parsed values
    ex = rep.reasons["cancellation"]["examples"]
    assert ex == [{"row": 4, "order_id": "C1004", "order_date": "2024-01-07 00:00:00", "account_id": "A1", "sku": "S1", "quantity": -2, "unit_price": 3.5}]
    assert rep.reasons["unparseable_date"]["examples"][0]["order_date"] == "not a date"
    assert [e["row"] for e in rep.reasons["duplicate"]["examples"]] == [16, 17]
    json.dumps(rep.to_dict(), allow_nan=False)  # JSON-able
    assert "cancellation" in rep.render() and "tiny.csv" in rep.render()


def test_output_dtypes_defaults_and_order() -> None:
    raw = _lines([("2", "2024-02-01", "B", "S", "3", "2.5"), ("1", "2024-01-01 08:00", "A", "S", "1", "4")])
    out, rep = validate_order_lines(raw, as_of="2025-01-01")
    assert list(out.columns) == [
        "order_id", "order_date", "account_id", "sku", "quantity", "unit_price", "line_amount",
        "location", "channel", "category", "promo",
    ]
    assert str(out["order_date"].dtype) == "datetime64[ns]"
    for c in ("quantity", "unit_price", "line_amount", "promo"):
        assert out[c].dtype == np.float64, c
    for c in ("order_id", "account_id", "sku", "location", "channel", "category"):
        assert out[c].dtype == object and all(isinstance(v, str) for v in out[c]), c
    assert list(out["order_id"]) == ["1", "2"]  # sorted by order_date
    assert list(out["line_amount"]) == [4.0, 7.5]
    assert set(out["location"]) == {"ALL"} and set(out["channel"]) == {"unknown"}
    assert set(out["category"]) == {"ALL"} and set(out["promo"]) == {0.0}
    assert rep.defaults["location"] == "ALL" and rep.reasons == {}


def test_line_amount_only_and_optional_columns_filled() -> None:
    raw = pd.DataFrame(
        {
            "order_id": ["1", "2", "3"],
            "order_date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]).tz_localize("Europe/Berlin"),
            "account_id": [101.0, 102.0, 103.0],  # numeric ids from Parquet/SQL
            "sku": [7, 8, 9],
            "quantity": [2.0, 4.0, 1.0],
            "line_amount": [10.0, 8.0, None],
            "location": ["W1", None, "W2"],
            "promo": ["yes", "0", "maybe"],
        }
    )
    out, rep = validate_order_lines(raw, as_of="2025-01-01")
    assert list(out["unit_price"]) == [5.0, 2.0]
    assert list(out["account_id"]) == ["101", "102"] and list(out["sku"]) == ["7", "8"]
    assert str(out["order_date"].dtype) == "datetime64[ns]" and out["order_date"].iloc[0] == pd.Timestamp("2024-01-01")
    assert list(out["location"]) == ["W1", "ALL"]
    assert list(out["promo"]) == [1.0, 0.0]
    assert rep.reasons["missing_price"]["rows"] == 1
    assert rep.fixes["location_filled"]["rows"] == 1
    assert rep.defaults["unit_price"] == "line_amount / quantity"


def test_as_of_date_keeps_its_whole_day() -> None:
    raw = _lines([("1", "2024-03-31 23:59:00", "A", "S", "1", "1"), ("2", "2024-04-01 00:00:00", "A", "S", "1", "1")])
    out, rep = validate_order_lines(raw, as_of="2024-03-31")
    assert list(out["order_id"]) == ["1"] and rep.reasons["future_date"]["rows"] == 1
    with pytest.raises(DataError, match=r"future_date \(2 rows\)"):
        validate_order_lines(raw, as_of="2024-03-31 12:00")  # a time is exact: both lines are later


def test_dates_in_other_layouts() -> None:
    raw = _lines([("1", "31/01/2024 10:00", "A", "S", "1", "1"), ("2", "01/02/2024 10:00", "A", "S", "1", "1")])
    out, _ = validate_order_lines(raw, as_of="2025-01-01", dayfirst=True)
    assert list(out["order_date"].dt.strftime("%Y-%m-%d")) == ["2024-01-31", "2024-02-01"]
    out, _ = validate_order_lines(raw, as_of="2025-01-01", date_format="%d/%m/%Y %H:%M")
    assert list(out["order_date"].dt.month) == [1, 2]


@pytest.mark.parametrize(
    ("rows", "kwargs", "fragments"),
    [
        ([], {}, ["tiny.csv", "order_lines is empty", "0 rows"]),
        ([("1", "x", "A", "S", "1", "1"), ("2", "y", "A", "S", "1", "1")], {}, ["tiny.csv", "order_date", "'x'", "date"]),
        ([("1", "2024-01-01", "A", "S", "one", "1"), ("2", "2024-01-01", "A", "S", "two", "1"), ("3", "2024-01-01", "A", "S", "3", "1")], {}, ["quantity", "2 of 3", "'one'"]),
        ([("1", "2024-01-01", None, "S", "1", "1")], {}, ["account_id", "empty in all 1 rows"]),
        ([("C1", "2024-01-01", "A", "S", "-1", "1")], {"cancellation_prefix": "C"}, ["no order_lines left", "cancellation"]),
    ],
)
def test_fatal_problems_raise_data_error(rows: list[tuple], kwargs: dict, fragments: list[str]) -> None:
    with pytest.raises(DataError) as ei:
        validate_order_lines(_lines(rows), source="tiny.csv", mapping={"order_date": "InvoiceDate"}, as_of="2025-01-01", **kwargs)
    for f in fragments:
        assert f in str(ei.value), (f, str(ei.value))


def test_missing_column_names_mapping() -> None:
    raw = _lines([GOOD]).drop(columns=["quantity"])
    with pytest.raises(DataError, match=r"tiny.csv.*'quantity' \(mapped from 'Qty'\).*columns present"):
        validate_order_lines(raw, source="tiny.csv", mapping={"quantity": "Qty"})


def test_report_columns_stay_aligned_with_long_names() -> None:
    """'onboarding_date_unparseable' (27 characters) pushed its count out of the 'rows' column."""
    _, rep = validate_accounts(
        pd.DataFrame({"account_id": ["1", "2", "3"], "onboarding_date": ["2020-01-01", "bad", "2030-01-01"],
                      "region": ["N", None, "S"]}),
        as_of="2025-01-01",
    )
    lines = rep.render().splitlines()
    head = next(x for x in lines if "fixed (kept)" in x)
    rows = [x for x in lines[lines.index(head) + 1:] if x.startswith("  ") and x.split()[0] in rep.fixes]
    assert {x.split()[0] for x in rows} == {"onboarding_date_unparseable", "onboarding_date_future", "region_filled"}
    end = head.index("rows") + len("rows")  # counts are right-aligned under the header
    assert all(x[end - 1].isdigit() and x[end] == " " for x in rows), [head, *rows]


def test_other_tables() -> None:
    acc, rep = validate_accounts(
        pd.DataFrame({"account_id": ["1.0", "2", "2", None], "region": ["N", None, "S", "E"], "tier": ["a", "b", "c", "d"],
                      "onboarding_date": ["2020-01-01", "bad", "2020-01-02", "2020-01-03"]}),
        as_of="2025-01-01",
    )
    assert list(acc["account_id"]) == ["1", "2"] and list(acc["region"]) == ["N", "unknown"]
    assert list(acc["channel_type"]) == ["unknown", "unknown"] and list(acc["tier"]) == ["a", "b"]
    assert rep.reasons["duplicate_account"]["rows"] == 1 and rep.reasons["missing_account"]["rows"] == 1
    assert rep.fixes["onboarding_date_unparseable"]["rows"] == 1 and acc["onboarding_date"].isna().tolist() == [False, True]

    ev, rep = validate_service_events(
        pd.DataFrame({"event_date": ["2024-01-02", "2024-01-01", "2030-01-01", "2024-01-03"], "account_id": ["1", "2", "1", "9"],
                      "kind": ["Complaint", "ticket", "return", "ticket"], "resolution_days": ["3", "-1", "", "2"]}),
        as_of="2025-01-01", known_accounts=["1", "2"],
    )
    assert list(ev["kind"]) == ["ticket", "complaint"] and ev["resolution_days"].isna().tolist() == [True, False]
    assert rep.reasons["future_date"]["rows"] == 1 and rep.reasons["unknown_account"]["rows"] == 1

    inv, rep = validate_inventory(pd.DataFrame({"location": ["W1", "W1", None], "sku": ["S1", "S2", "S3"], "on_hand": ["5", "-2", "1"]}))
    assert list(inv["on_hand"]) == [5.0, -2.0] and inv["snapshot_date"].isna().all()
    assert rep.reasons["missing_location"]["rows"] == 1 and "negative on_hand" in rep.warnings[0]

    lt, rep = validate_lead_times(pd.DataFrame({"sku": ["S1", "S1", "S2", "S3"], "lead_time_days": ["7", "9", "-0.5", "3"],
                                                "lead_time_std_days": ["2", "1", "1", "-1"]}))
    assert list(lt["sku"]) == ["S1", "S3"] and list(lt["location"]) == ["ALL", "ALL"]
    assert lt["lead_time_std_days"].isna().tolist() == [False, True]
    assert rep.reasons["duplicate_key"]["rows"] == 1 and rep.reasons["invalid_lead_time"]["rows"] == 1


# ----------------------------------------------------------------------------- CLI


def _cli_case(tmp_path: Path, csv_text: str, price_col: str = "price") -> tuple[Path, Path]:
    data = tmp_path / "export.csv"
    data.write_text(csv_text)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "name: t\ndata:\n  order_lines:\n    path: export.csv\n"
        f"    columns: {{order_id: id, order_date: dt, account_id: cust, sku: item, quantity: qty, unit_price: {price_col}}}\n"
    )
    return cfg, tmp_path / "out" / "report.json"


@pytest.mark.parametrize(
    ("csv_text", "price_col", "fragments"),
    [
        ("id,dt,cust,item,qty,cost\n1,2024-01-05,A,X,2,3.5\n", "price", ["export.csv", "'unit_price' mapped from 'price'", "Columns present"]),
        ("id,dt,cust,item,qty,price\n1,yesterday,A,X,2,3.5\n2,05.13.2024x,A,X,1,1\n", "price", ["export.csv", "order_date (column 'dt')", "'yesterday'"]),
        ("id,dt,cust,item,qty,price\n", "price", ["export.csv", "order_lines is empty"]),
    ],
    ids=["missing-column", "unparseable-dates", "empty-table"],
)
def test_cli_fatal_errors_exit_nonzero_and_write_nothing(tmp_path: Path, csv_text: str, price_col: str, fragments: list[str]) -> None:
    cfg, out = _cli_case(tmp_path, csv_text, price_col)
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--json", str(out)])
    assert res.exit_code == 2, res.output
    for f in fragments:
        assert f in res.output, (f, res.output)
    assert not out.exists() and not out.parent.exists()


def test_cli_success_writes_json(tmp_path: Path) -> None:
    cfg, out = _cli_case(tmp_path, "id,dt,cust,item,qty,price\n1,2024-01-05,A,X,2,3.5\nC2,2024-01-06,A,X,-2,3.5\n1,2024-01-05,A,X,2,3.5\n")
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--json", str(out), "--as-of", "2024-12-31"])
    assert res.exit_code == 0, res.output
    assert "negative_quantity" in res.output and "duplicate" in res.output
    rep = json.loads(out.read_text())
    t = rep["tables"]["order_lines"]
    assert (t["rows_in"], t["rows_out"]) == (3, 1)
    assert t["reasons"]["duplicate"]["rows"] == 1 and t["reasons"]["negative_quantity"]["rows"] == 1
    assert rep["fingerprint"]["tables"]["order_lines"]["rows_out"] == 1
    assert len(rep["fingerprint"]["order_lines_sha256"]) == 64


# ----------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_online_retail_known_dirt(tmp_path: Path) -> None:
    """The counts the data README states: 541,909 rows, 135,080 without CustomerID, 9,288
    cancellation lines, 4,372 customers; and the cleaned book has only positive lines."""
    assert ONLINE_RETAIL.exists(), ONLINE_RETAIL
    book = load_order_book(REPO / "experiments" / "online_retail.yaml", as_of="2011-12-09")
    t = book.report.to_dict()["tables"]["order_lines"]
    assert t["rows_in"] == 541_909
    assert t["reasons"]["missing_account"]["rows"] == 135_080
    assert t["reasons"]["cancellation"]["rows"] == 9_288
    # the cancellations net what they cancel (30 days back): 2,208 lines in full, 3,635 in part
    assert t["reasons"]["cancelled"]["rows"] == 2_208 and t["fixes"]["quantity_net_of_cancellation"]["rows"] == 3_635
    assert not ((ol_ := book.order_lines)["sku"].eq("23166") & ol_["quantity"].ge(70_000)).any()  # C541433's 74,215
    assert "2,987 cancellation line(s) (48,687 of 273,035 cancelled units) found no earlier line" in " ".join(t["warnings"])
    # the lines without a customer id: not orders of an account, but demand of their SKU
    assert t["stats"]["lines_without_account_for_demand"] == 132_186 == len(book.unattributed_lines)
    assert book.unattributed_lines["account_id"].isna().all()
    assert len(book.demand_lines()) == len(book.order_lines) + 132_186
    assert t["reasons"]["non_positive_price"]["rows"] > 0
    assert "future_date" not in t["reasons"] and "unparseable_date" not in t["reasons"]
    ol = book.order_lines
    assert t["rows_out"] == len(ol)
    assert (ol["quantity"] > 0).all() and (ol["unit_price"] > 0).all()
    assert not ol["order_id"].str.startswith("C").any()
    assert not ol["account_id"].str.endswith(".0").any()
    assert ol["order_date"].is_monotonic_increasing
    assert ol["order_date"].min() == pd.Timestamp("2010-12-01 08:26:00")
    # accounts derived from Country: every cleaned customer, at most the README's 4,372
    assert book.accounts is not None and set(book.accounts["account_id"]) == set(ol["account_id"])
    assert len(book.accounts) <= 4_372 and book.accounts["region"].nunique() <= 38
    # the CLI writes the same report
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(REPO / "experiments" / "online_retail.yaml"), "--json", str(out), "--as-of", "2011-12-09"])
    assert res.exit_code == 0, res.output
    assert "135,080" in res.output and "9,288" in res.output
    rep = json.loads(out.read_text())
    assert rep["tables"]["order_lines"] == t
    assert rep["fingerprint"]["order_lines_sha256"] == book.fingerprint["order_lines_sha256"]


def test_nullable_integer_columns_from_databases() -> None:
    raw = pd.DataFrame(
        {
            "order_id": pd.array([1, 2, 3], dtype="Int64"),
            "order_date": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "account_id": pd.array([5, None, 7], dtype="Int64"),
            "sku": ["a", "b", "c"],
            "quantity": pd.array([1, 4, None], dtype="Int64"),
            "unit_price": [1.0, 2.0, 3.0],
        }
    )
    out, rep = validate_order_lines(raw, as_of="2025-01-01")
    assert list(out["order_id"]) == ["1"] and list(out["account_id"]) == ["5"]
    assert {k: v["rows"] for k, v in rep.reasons.items()} == {"missing_quantity": 1, "missing_account": 1}


def test_cli_bad_as_of_and_missing_config(tmp_path: Path) -> None:
    cfg, out = _cli_case(tmp_path, "id,dt,cust,item,qty,price\n1,2024-01-05,A,X,2,3.5\n")
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--as-of", "someday", "--json", str(out)])
    assert res.exit_code == 2 and "--as-of" in res.output and not out.exists()
    # a time alone was read as today at that time (pandas), a moving as-of date
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--as-of", "10:00", "--json", str(out)])
    assert res.exit_code == 2 and "--as-of must be a date or date-time like 2011-12-09; got '10:00'" in res.output
    assert not out.exists()
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(tmp_path / "nope.yaml"), "--json", str(out)])
    assert res.exit_code == 2 and "config file not found" in res.output and not out.exists()


def test_both_price_columns_fill_each_other() -> None:
    raw = _lines([("1", "2024-01-01", "A", "S", "2", None), ("2", "2024-01-02", "A", "S", "4", "2.5"), ("3", "2024-01-03", "A", "S", "1", None)])
    raw["line_amount"] = ["9", None, None]
    out, rep = validate_order_lines(raw, as_of="2025-01-01")
    assert list(out["unit_price"]) == [4.5, 2.5] and list(out["line_amount"]) == [9.0, 10.0]
    assert rep.fixes["unit_price_derived"]["rows"] == 1 and rep.fixes["line_amount_derived"]["rows"] == 1
    assert rep.reasons["missing_price"]["rows"] == 1  # row 3: neither price nor amount


def test_infinite_price_is_named_as_infinite_not_empty(tmp_path: Path) -> None:
    """A price of inf (text 'inf' / 'Infinity' / '1e999' in a CSV, float inf in Parquet) was reported as
    missing_price 'empty or not a number'; it is its own reason, naming the column and what is expected,
    with the rows and the value, and the report stays JSON (a Parquet inf example broke --json)."""
    text = _lines([GOOD, ("2", "2024-01-02", "A", "S", "1", "inf"), ("3", "2024-01-03", "A", "S", "1", "-Infinity"),
                   ("4", "2024-01-04", "A", "S", "1", "1e999"), ("5", "2024-01-05", "A", "S", "1", None),
                   ("6", "2024-01-06", "A", "S", "1", "abc")])
    binary = text.assign(unit_price=[3.5, np.inf, -np.inf, np.inf, np.nan, np.nan])  # Parquet / database floats
    for raw, shown in ((text, ["inf", "-Infinity", "1e999"]), (binary, ["inf", "-inf", "inf"])):
        out, rep = validate_order_lines(raw, as_of="2025-01-01")
        assert list(out["order_id"]) == ["1001"]
        inf = rep.reasons["infinite_price"]
        assert inf["description"] == ("unit_price (or line_amount, when that is the price source) is infinite "
                                      "(inf or -inf); expected a finite number > 0")
        assert inf["rows"] == 3 and [(e["row"], e["unit_price"]) for e in inf["examples"]] == list(zip([2, 3, 4], shown, strict=True))
        assert rep.reasons["missing_price"]["rows"] == 2  # the empty one and 'abc'
        json.dumps(rep.to_dict(), allow_nan=False)
        assert "infinite_price" in rep.render() and "unit_price=inf" in rep.render()
    # line_amount as the price source: the same reason
    amount = text.drop(columns="unit_price").assign(line_amount=["7", "inf", "2", "3", "4", "5"])
    _, rep = validate_order_lines(amount, as_of="2025-01-01")
    assert rep.reasons["infinite_price"]["rows"] == 1 and "missing_price" not in rep.reasons
    # the CLI (Parquet inf): the report and its --json, no traceback
    pq = tmp_path / "o.parquet"
    binary.to_parquet(pq)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {pq}}}\n")
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--as-of", "2024-12-31",
                                   "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "infinite_price" in res.output and "unit_price=inf" in res.output
    rep = json.loads((tmp_path / "r.json").read_text())["tables"]["order_lines"]
    assert rep["reasons"]["infinite_price"]["examples"][0]["unit_price"] == "inf"


def test_infinite_quantity_and_amount_are_named_not_read_as_empty() -> None:
    """A quantity of inf (text inf / -Infinity / 1e999, Parquet float inf) was dropped as missing_quantity
    'empty or not a number'; an inf line_amount beside a valid unit_price was 'fixed' as an *empty*
    line_amount (and an inf unit_price beside a valid amount as an empty unit_price); an empty unit_price
    beside an inf line_amount was missing_price. Each is now named as infinite, with its rows and values."""
    text = _lines([GOOD, ("2", "2024-01-02", "A", "S", "inf", "2"), ("3", "2024-01-03", "A", "S", "-Infinity", "2"),
                   ("4", "2024-01-04", "A", "S", "1e999", "2"), ("5", "2024-01-05", "A", "S", None, "2"),
                   ("6", "2024-01-06", "A", "S", "abc", "2")])
    binary = text.assign(quantity=[2.0, np.inf, -np.inf, np.inf, np.nan, np.nan])
    for raw, shown in ((text, ["inf", "-Infinity", "1e999"]), (binary, ["inf", "-inf", "inf"])):
        out, rep = validate_order_lines(raw, as_of="2025-01-01")
        assert list(out["order_id"]) == ["1001"]
        inf = rep.reasons["infinite_quantity"]
        assert inf["description"] == "quantity is infinite (inf or -inf); expected a finite number of units > 0"
        assert [(e["row"], e["quantity"]) for e in inf["examples"]] == list(zip([2, 3, 4], shown, strict=True))
        assert inf["rows"] == 3 and rep.reasons["missing_quantity"]["rows"] == 2  # the empty one and 'abc'
        json.dumps(rep.to_dict(), allow_nan=False)
    # both price columns: an infinite one beside a usable other is derived from it, counted under its own name
    raw = _lines([("1", "2024-01-01", "A", "S", "2", "3"), ("2", "2024-01-02", "A", "S", "2", "3"),
                  ("3", "2024-01-03", "A", "S", "4", "inf"), ("4", "2024-01-04", "A", "S", "1", None),
                  ("5", "2024-01-05", "A", "S", "1", None), ("6", "2024-01-06", "A", "S", "1", "2")])
    raw["line_amount"] = ["5", "inf", "10", "-Infinity", None, None]
    out, rep = validate_order_lines(raw, as_of="2025-01-01")
    assert list(out["order_id"]) == ["1", "2", "3", "6"]
    assert list(out["unit_price"]) == [3.0, 3.0, 2.5, 2.0] and list(out["line_amount"]) == [5.0, 6.0, 10.0, 2.0]
    assert rep.fixes["line_amount_infinite"] == {"rows": 1, "description": (
        "infinite line_amount (inf or -inf; rows [2]: inf; 1 = the first data row) set to quantity x unit_price; "
        "a finite number is expected")}
    assert rep.fixes["unit_price_infinite"] == {"rows": 1, "description": (
        "infinite unit_price (inf or -inf; rows [3]: inf; 1 = the first data row) set to line_amount / quantity; "
        "a finite number is expected")}
    assert rep.fixes["line_amount_derived"]["rows"] == 1 and "unit_price_derived" not in rep.fixes
    # no price left: row 4 (empty unit_price, line_amount -Infinity) is infinite, row 5 (both empty) missing
    assert [e["row"] for e in rep.reasons["infinite_price"]["examples"]] == [4]
    assert rep.reasons["infinite_price"]["examples"][0]["line_amount"] == "-Infinity"
    assert rep.reasons["missing_price"]["rows"] == 1 and rep.reasons["missing_price"]["examples"][0]["row"] == 5
    assert "line_amount_infinite" in rep.render()


def test_infinite_on_hand_lead_time_and_resolution_days_are_named_not_read_as_empty() -> None:
    """inf (text inf / -Infinity / 1e999, Parquet float inf) in the other tables was 'empty or not a number':
    on_hand dropped as missing_on_hand, lead_time_days as invalid_lead_time, resolution_days counted as
    resolution_days_unreadable; an inf lead_time_std_days was kept as an empty spread, sized as a spread of
    0. Each is now named as infinite with its rows and values; the lead-time row goes (sized as without one)."""
    for vals, shown in ((["5", "inf", "-Infinity", "1e999", "abc"], ["inf", "-Infinity", "1e999"]),
                        ([5.0, np.inf, -np.inf, np.inf, np.nan], ["inf", "-inf", "inf"])):
        inv, rep = validate_inventory(pd.DataFrame({"location": ["W1"] * 5, "sku": ["S1", "S2", "S3", "S4", "S5"],
                                                    "on_hand": vals}))
        assert list(inv["sku"]) == ["S1"] and rep.reasons["missing_on_hand"]["rows"] == 1
        inf = rep.reasons["infinite_on_hand"]
        assert inf["description"] == ("on_hand is infinite (inf or -inf); expected a finite number of units "
                                      "(negative = backorders)")
        assert [(e["row"], e["on_hand"]) for e in inf["examples"]] == list(zip([2, 3, 4], shown, strict=True))
        json.dumps(rep.to_dict(), allow_nan=False)

        lt, rep = validate_lead_times(pd.DataFrame({"sku": ["S1", "S2", "S3", "S4", "S5", "S6"],
                                                    "lead_time_days": [*vals, "7"],
                                                    "lead_time_std_days": ["1", "1", "1", "1", "1", vals[1]]}))
        assert list(lt["sku"]) == ["S1"] and lt["lead_time_std_days"].tolist() == [1.0]
        inf = rep.reasons["infinite_lead_time"]
        assert inf["description"].startswith("lead_time_days or lead_time_std_days is infinite (inf or -inf); "
                                              "expected a finite number of days >= 0")
        assert [(e["row"], e["lead_time_days"]) for e in inf["examples"][:3]] == list(zip([2, 3, 4], shown, strict=True))
        assert inf["examples"][3]["row"] == 6 and inf["examples"][3]["lead_time_std_days"] == shown[0]
        assert rep.reasons["invalid_lead_time"]["rows"] == 1  # 'abc' / empty
        assert "lead_time_std_days_unreadable" not in rep.fixes

        ev, rep = validate_service_events(pd.DataFrame({"event_date": [f"2024-01-0{i}" for i in range(1, 6)],
                                                        "account_id": ["A"] * 5, "kind": ["ticket"] * 5,
                                                        "resolution_days": vals}), as_of="2025-01-01")
        assert ev["resolution_days"].isna().tolist() == [False, True, True, True, True]
        assert rep.fixes["resolution_days_infinite"] == {"rows": 3, "description": (
            f"infinite resolution_days (inf or -inf; rows [2, 3, 4]: {', '.join(dict.fromkeys(shown))}; 1 = the first "
            "data row) set to empty (NaN), which churn reads as a case still open: fix the dates in the export; a "
            "finite number is expected")}
        assert rep.fixes.get("resolution_days_unreadable", {"rows": 0})["rows"] == (1 if vals[4] == "abc" else 0)


def test_text_price_or_amount_beside_a_usable_other_is_named_unreadable_not_empty() -> None:
    """A line_amount of 'abc' beside a valid unit_price was counted as line_amount_derived 'empty line_amount
    set to quantity x unit_price' (a unit_price 'n/a' beside a valid amount likewise as an empty unit_price):
    the cell was not empty. Still derived (the sale is real), but counted as line_amount_unreadable /
    unit_price_unreadable with the rows and values as written; empty and blank cells stay *_derived."""
    raw = _lines([("1", "2024-01-01", "A", "S", "2", "3"), ("2", "2024-01-02", "A", "S", "2", "3"),
                  ("3", "2024-01-03", "A", "S", "4", "xyz"), ("4", "2024-01-04", "A", "S", "1", "2"),
                  ("5", "2024-01-05", "A", "S", "2", "n/a"), ("6", "2024-01-06", "A", "S", "3", "4"),
                  ("7", "2024-01-07", "A", "S", "1", "5"), ("8", "2024-01-08", "A", "S", "1", "7")])
    raw["line_amount"] = ["6", "abc", None, "  ", "10", " - ", "inf", None]
    out, rep = validate_order_lines(raw, as_of="2025-01-01")
    assert list(out["order_id"]) == ["1", "2", "4", "5", "6", "7", "8"]
    assert list(out["line_amount"]) == [6.0, 6.0, 2.0, 10.0, 12.0, 5.0, 7.0]
    assert list(out["unit_price"]) == [3.0, 3.0, 2.0, 5.0, 4.0, 5.0, 7.0]
    assert rep.fixes["line_amount_unreadable"] == {"rows": 2, "description": (
        "line_amount that is not a number (rows [2, 6]: 'abc', '-'; 1 = the first data row) set to quantity x "
        "unit_price; a number is expected")}
    assert rep.fixes["unit_price_unreadable"] == {"rows": 1, "description": (
        "unit_price that is not a number (rows [5]: 'n/a'; 1 = the first data row) set to line_amount / quantity; "
        "a number is expected")}
    assert rep.fixes["line_amount_derived"]["rows"] == 2  # rows 4 (blank) and 8 (empty)
    assert rep.fixes["line_amount_infinite"]["rows"] == 1 and "unit_price_derived" not in rep.fixes
    # neither usable: still missing_price (row 3: 'xyz' and an empty amount)
    assert rep.reasons["missing_price"]["rows"] == 1 and rep.reasons["missing_price"]["examples"][0]["row"] == 3
    assert "line_amount_unreadable" in rep.render()
    # only the first 5 rows and 3 values are listed; a dropped line is not
    many = _lines([(str(i), f"2024-02-{i:02d}", "A", "S", "1", "2") for i in range(1, 21)])
    many["line_amount"] = ["a", "b", "c", "d", "a", "a"] + ["2"] * 13 + ["e"]
    many.loc[0, "sku"] = None  # row 1 dropped (missing_sku): not listed
    _, rep = validate_order_lines(many, as_of="2025-01-01")
    assert rep.fixes["line_amount_unreadable"] == {"rows": 6, "description": (
        "line_amount that is not a number (rows [2, 3, 4, 5, 6] ...: 'b', 'c', 'd' ...; 1 = the first data row) "
        "set to quantity x unit_price; a number is expected")}


def test_a_date_far_before_the_rest_of_the_book_is_dropped_and_named(tmp_path: Path) -> None:
    """One 1900-01-01 among 2022-2024 order dates (an export's placeholder) was kept silently: the history
    then spanned 124 years (a 1,428-line synthetic book forecast in 40 s instead of 3). It is dropped as
    isolated_date, with the rows, the date and the date the book now starts at; a book whose early dates
    are more than 1% of its rows, or closer than 5 years, is kept whole."""
    days = pd.date_range("2022-01-03", "2024-06-28", freq="7D")
    rows = [(str(i), str(d.date()), "A", "S", "1", "2") for i, d in enumerate(days)]  # 130 weekly lines
    raw = _lines([*rows[:5], ("x1", "1900-01-01", "A", "S", "1", "2"), *rows[5:]])
    out, rep = validate_order_lines(raw, as_of="2025-01-01")
    assert out["order_date"].min() == pd.Timestamp("2022-01-03") and "x1" not in set(out["order_id"])
    r = rep.reasons["isolated_date"]
    assert (r["rows"], r["only_reason"]) == (1, 1)
    assert r["examples"][0]["row"] == 6 and r["examples"][0]["order_date"] == "1900-01-01 00:00:00"
    assert rep.warnings == [
        "1 order line(s) dated 1900-01-01 (rows [6]; 1 = the first data row) lie more than 5 years before the next "
        "order date 2022-01-03 and were dropped (isolated_date): a typo or a placeholder date? Kept, they would "
        "stretch the history (and every weekly panel) back to them; fix them in the source to keep them"]
    # Parquet timestamps: the same
    binary = raw.assign(order_date=pd.to_datetime(raw["order_date"]))
    assert validate_order_lines(binary, as_of="2025-01-01")[1].reasons["isolated_date"]["rows"] == 1
    # kept: an early stretch of 2 of 130 rows (over 1%), or an early row 4 years before the rest
    early = _lines([("e1", "2012-01-02", "A", "S", "1", "2"), ("e2", "2012-02-06", "A", "S", "1", "2"), *rows])
    assert "isolated_date" not in validate_order_lines(early, as_of="2025-01-01")[1].reasons
    near = _lines([("n1", "2018-01-02", "A", "S", "1", "2"), *rows])
    assert "isolated_date" not in validate_order_lines(near, as_of="2025-01-01")[1].reasons
    # a future or unparseable date is not the rest of the book
    fut = _lines([("f", "2099-01-01", "A", "S", "1", "2"), ("b", "someday", "A", "S", "1", "2"), *rows[:3]])
    assert "isolated_date" not in validate_order_lines(fut, as_of="2025-01-01")[1].reasons
    # the CLI report shows it
    csv = tmp_path / "o.csv"
    raw.to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {csv}}}\n")
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--as-of", "2024-12-31"])
    assert res.exit_code == 0 and "isolated_date" in res.output and "dated 1900-01-01 (rows [6]" in res.output


def test_accounts_that_are_the_order_lines_are_refused(tmp_path: Path) -> None:
    """data.accounts pointing at the order-lines file (it has an account_id column) was accepted: every
    account's first order line was kept as its 'accounts' row (order_id, sku, quantity ... as attributes)
    and the other lines dropped as duplicate_account. Most rows repeating an id is a wrong table, not a few
    duplicates: refused naming the file, the column, the ids and their rows, and what was expected."""
    lines = pd.DataFrame({"order_id": [f"o{i}" for i in range(8)], "order_date": "2024-01-02",
                          "CustomerID": ["A", "B", "A", "A", "B", "C", "A", "B"], "sku": "S", "quantity": 1.0,
                          "unit_price": 2.0})
    path = tmp_path / "lines.csv"
    lines.to_csv(path, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {path}, columns: {{account_id: CustomerID}}}}\n"
                   f"  accounts: {{path: {path}, columns: {{account_id: CustomerID}}}}\n")
    with pytest.raises(DataError) as err:
        load_order_book(cfg, as_of="2025-01-01")
    assert str(err.value) == (
        f"{path}: accounts must hold one row per account, but 5 of 8 rows repeat an account_id (column "
        "'CustomerID') of an earlier row, e.g. A (rows 1, 3, 4, 7); B (rows 2, 5, 8) (1 = the first data row); it "
        "has order-line columns (order_id, order_date, sku, quantity, unit_price), so data.accounts may name the "
        "order lines file; expected one row per account_id with its attributes (region, channel_type, "
        "onboarding_date ...): give the accounts (customers) table, or leave data.accounts out "
        "(data.order_lines.derive_accounts_from builds it from order-line columns such as a country)")
    # a few repeats in an accounts export stay a drop reason (first kept)
    acc, rep = validate_accounts(pd.DataFrame({"account_id": ["A", "B", "A", "C"], "region": ["N", "S", "E", "W"]}))
    assert list(acc["account_id"]) == ["A", "B", "C"] and rep.reasons["duplicate_account"]["rows"] == 1


@pytest.mark.realdata
def test_stallion_parquet_zero_volume_months_dropped() -> None:
    """The Stallion panel through its Parquet mapping: 21,000 rows, the zero-volume months
    (12% per the data README) are not order lines and are reported as zero_quantity."""
    book = load_order_book(REPO / "experiments" / "stallion.yaml", as_of="2018-01-01")
    t = book.report.to_dict()["tables"]["order_lines"]
    assert t["rows_in"] == 21_000
    zero = t["reasons"]["zero_quantity"]["rows"]
    assert 0.11 < zero / 21_000 < 0.13
    raw = pd.read_parquet(REPO.parent / "shared" / "data" / "stallion" / "stallion.parquet", columns=["volume"])
    assert zero == int((raw["volume"] == 0).sum())
    ol = book.order_lines
    assert (ol["quantity"] > 0).all() and ol["account_id"].nunique() == 58 and ol["sku"].nunique() == 25


def test_promo_mapped_to_a_text_column_stops_validation() -> None:
    # one unreadable promo value is a fix (set to 0); a column of text is a mapping mistake
    raw = pd.DataFrame({"order_id": ["1", "2", "3"], "order_date": ["2024-01-01"] * 3, "account_id": ["a", "b", "c"],
                        "sku": ["x", "y", "z"], "quantity": [1.0, 2.0, 3.0], "unit_price": [1.0, 1.0, 1.0],
                        "promo": ["WHITE MUG", "RED MUG", "no"]})
    with pytest.raises(DataError, match=r"order_lines.promo.*should hold 0/1 flags.*2 of 3 non-empty values"):
        validate_order_lines(raw, as_of="2025-01-01")


def test_data_validate_checks_the_serving_section_as_the_service_does(tmp_path: Path) -> None:
    """`data validate` checked churn/demand/dealers/tuning but not `serving:`: a misspelt key or a
    max_body_bytes of 10 passed it and stopped only `dealerml serve` at start-up. It now runs the
    service's own check (serving.settings.serving_settings) and refuses with the same lines, before
    reading the data and without importing bentoml."""
    import subprocess
    import sys

    from serving.settings import serving_settings
    from training.config import load_config
    from training.errors import ConfigError

    csv = tmp_path / "o.csv"
    _lines([GOOD]).to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {csv}}}\n"
                   "serving: {models: [demand, dealer], max_body_bytes: 10, churn_cutof: 2024-07-01}\n")
    with pytest.raises(ConfigError) as ei:
        serving_settings(load_config(cfg))
    want = (f"{cfg}: invalid 'serving' section\n"
            "  key 'serving.models.1': Input should be 'demand', 'churn' or 'dealers'; got 'dealer'\n"
            "  key 'serving.max_body_bytes': Input should be greater than or equal to 1024; got 10\n"
            "  key 'serving.churn_cutof': unknown key; did you mean 'churn_cutoff'?")  # no '; got': 7ddc210
    assert str(ei.value) == want  # the service's words
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--json", str(out)])
    assert res.exit_code == 2 and res.output == f"error: {want}\n"
    assert not out.exists()
    # a good serving: section still passes
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {csv}}}\nserving: {{models: [churn], max_body_bytes: 2048}}\n")
    code = ("import sys; from typer.testing import CliRunner; from training.cli import app; "
            f"r = CliRunner().invoke(app, ['data', 'validate', '--config', {str(cfg)!r}, '--as-of', '2024-12-31']); "
            "print(r.exit_code, 'bentoml' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.stdout.split() == ["0", "False"], run.stderr[-2000:]


@pytest.mark.parametrize("target, refused", [
    ("scores.csv", "not a .csv / .parquet file"),
    ("notes.txt", "or a SQLAlchemy URL; got"),
    ("alerts.duckdb", None),
    ("postgresql+psycopg://crm@db/x", None),
])
def test_a_serving_alerts_target_that_is_no_database_is_refused_at_load(tmp_path: Path, target, refused) -> None:
    """serving.alerts_target `scores.csv` (or any suffix that is no database) passed the config check: the
    service started and answered every GET /churn_alerts with 503, and `dealerml alerts` refused it only when
    run. It is refused where the config is read (data validate, serve, alerts), under its key; a database passes."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata: {{order_lines: {{path: none.csv}}}}\nserving: {{alerts_target: '{target}'}}\n")
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg)])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    if refused:
        assert out.startswith(f"error: {cfg}: invalid 'serving' section key 'serving.alerts_target': the target "
                              f"'{target}': alerts keep their state in a database; expected a DuckDB file"), out
        assert refused in out
    else:  # the config passes; the missing order lines are what stops it
        assert "order_lines file not found" in out and "serving.alerts_target" not in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
