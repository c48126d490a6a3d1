"""Ids of a customer's tables written differently (int account ids in Parquet / DuckDB against
zero-padded text in the accounts file): the lines and events are dropped as unknown_account,
as the contract says (ids are text), and the error / report shows ids of both tables, so the
mismatch is visible instead of only 'unknown_account (N rows)'."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from training.data import load_order_book
from training.errors import DataError


def _write(tmp_path, accounts: list[str], events: bool = True):
    pd.DataFrame({"doc": [1, 2, 3, 4], "ts": pd.to_datetime(["2024-01-02", "2024-01-05", "2024-02-01", "2024-02-03"]),
                  "cust": [12413, 12413, 7, 12427], "item": [85123, 85123, 22, 22], "qty": [1.0, 2.0, 3.0, 4.0],
                  "price": [2.5, 2.5, 1.0, 1.0]}).to_parquet(tmp_path / "lines.parquet", index=False)
    pd.DataFrame({"KdNr": accounts}).to_csv(tmp_path / "acc.csv", index=False)
    con = duckdb.connect(str(tmp_path / "svc.duckdb"))
    con.execute("CREATE OR REPLACE TABLE ev AS SELECT * FROM (VALUES (DATE '2024-01-10', 12413, 'complaint'), "
                "(DATE '2024-01-11', 12427, 'ticket')) t(d, kd, art)")
    con.close()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ndata:\n  as_of: '2024-06-30'\n"
                   "  order_lines: {path: lines.parquet, columns: {order_id: doc, order_date: ts, account_id: cust, sku: item,"
                   " quantity: qty, unit_price: price}}\n"
                   "  accounts: {path: acc.csv, columns: {account_id: KdNr}}\n"
                   + ("  service_events: {path: svc.duckdb, table: ev, columns: {event_date: d, account_id: kd, kind: art}}\n"
                      if events else ""))
    return cfg


def test_padded_account_ids_name_both_sides(tmp_path):
    cfg = _write(tmp_path, ["0012413", "0012427", "0000007"])
    with pytest.raises(DataError) as err:
        load_order_book(cfg)
    msg = str(err.value)
    assert "unknown_account (4 rows)" in msg and "lines.parquet" in msg
    assert "4 of 4 order_lines rows have an account_id that is not in the accounts table" in msg
    assert "'12413'" in msg and "'0012413'" in msg


def test_most_ids_unknown_is_a_warning_with_both_sides(tmp_path):
    cfg = _write(tmp_path, ["7", "0012413", "0012427"], events=False)  # only account 7 matches: 3 of 4 lines dropped
    book = load_order_book(cfg)
    assert book.order_lines["account_id"].tolist() == ["7"]
    w = book.report.tables["order_lines"].warnings
    w = [x for x in w if "order_lines rows have" in x]  # beside the generic "75% ... dropped" warning
    assert len(w) == 1 and "3 of 4 order_lines rows" in w[0] and "'0012413'" in w[0] and "'12427'" in w[0]
    # one of the two events names an account written without the zeros: kept one, warned
    book = load_order_book(_write(tmp_path, ["7", "12413", "0012427"]))
    assert book.service_events["account_id"].tolist() == ["12413"]
    w = book.report.tables["service_events"].warnings
    assert len(w) == 1 and "1 of 2 service_events rows" in w[0] and "'12427'" in w[0] and "'0012427'" in w[0]
    assert "1 of 2 service_events rows" in book.report.render()


def test_service_says_why_an_account_of_the_order_book_has_no_score(tmp_path):
    """An account whose order lines were dropped because the accounts table lacks it was
    answered 'unknown account id' by /churn_scores (documented as: in neither the accounts
    table nor the order book), though the customer's order book has it."""
    from serving.churn import ChurnBackend, last_orders

    book = load_order_book(_write(tmp_path, ["12413", "7"], events=False))
    assert book.report.tables["order_lines"].dropped_ids == {"unknown_account": ["12427"]}
    assert "dropped_ids" not in book.report.tables["order_lines"].to_dict()  # not in the JSON report
    cut = pd.Timestamp("2024-03-01")
    be = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1", as_of=cut,
                      table=pd.DataFrame(columns=["account_id", "probability", "tier", "reason_1", "reason_2",
                                                  "reason_3", "model_version"]),
                      alerts_target=str(tmp_path / "a.duckdb"), alerts_table="churn_alerts",
                      last_orders=last_orders(book, cut),
                      unknown_accounts=book.report.tables["order_lines"].dropped_ids["unknown_account"])
    assert be.not_scored_reason("12427").startswith("not in the accounts table: its order lines were dropped")
    assert be.not_scored_reason("99999") == "unknown account id"


def test_event_kinds_outside_the_contract_say_what_they_count_as(tmp_path):
    from training.validate import validate_service_events

    ev, rep = validate_service_events(pd.DataFrame({"event_date": ["2024-01-02", "2024-01-03"], "account_id": ["7", "7"],
                                                    "kind": ["Reklamation", "complaint"]}), as_of="2024-06-30")
    assert ev["kind"].tolist() == ["reklamation", "complaint"]
    assert len(rep.warnings) == 1 and "['reklamation']" in rep.warnings[0]
    assert "not as complaints, returns or tickets" in rep.warnings[0]


def test_negative_resolution_days_say_they_count_as_open():
    from training.validate import validate_service_events

    ev, rep = validate_service_events(pd.DataFrame({"event_date": ["2024-01-02"], "account_id": ["7"], "kind": ["complaint"],
                                                    "resolution_days": ["-2"]}), as_of="2024-06-30")
    assert ev["resolution_days"].isna().all()
    assert "churn reads as a case still open" in rep.render()
