"""Messages a user reads from the CLI and the book loader, said as the user wrote the value and with
what to do: the stock / lead-time rows of a SKU that no kept order line has, named as the files write
the SKU ('7.0') even where validation reads it otherwise ('7'); a folder at the DuckDB path."""

from __future__ import annotations

from pathlib import Path

import yaml

from training.data import load_order_book

LINES = """order_id,order_date,account_id,sku,quantity,unit_price
1,2024-01-02,C1,A1,3,1
2,2024-01-09,C1,A1,2,1
3,2024-01-10,C2,7.0,x,1
4,2024-01-11,C2,7.0,x,1
5,2024-01-12,C2,B2,1,1
"""


def _book(tmp_path: Path, inventory: str, lead_times: str):
    (tmp_path / "lines.csv").write_text(LINES)
    (tmp_path / "inventory.csv").write_text(inventory)
    (tmp_path / "lead_times.csv").write_text(lead_times)
    cfg = {"name": "s23", "data": {"as_of": "2024-06-01", "order_lines": {"path": "lines.csv"},
                                   "inventory": {"path": "inventory.csv"}, "lead_times": {"path": "lead_times.csv"}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return load_order_book(tmp_path / "c.yaml")


GONE = ("1 {} rows name a SKU that no kept order line has (sku: [{}]{}): every order line of it was cancelled or "
        "dropped (see the order_lines drop reasons); no demand series uses them")


def test_stock_of_a_sku_the_lines_write_as_7_0_is_said_to_have_no_kept_line_as_the_files_write_it(tmp_path):
    """SKU '7.0' on order lines whose every quantity is text (all dropped); the inventory writes it '7', the
    lead times '7.0', both read as SKU '7'. The warning was "no order line has (sku: ['7']; the order lines
    have e.g. ['A1', 'B2'])": the old wording, sending the user after a code mismatch in a SKU the lines
    have, and naming '7' for the lead times that write '7.0'. It now says no kept order line has it, named
    as each file writes it, and how the order lines write it where that differs."""
    book = _book(tmp_path, "location,sku,on_hand\nALL,7,5\nALL,8.0,1\n", "sku,lead_time_days\n7.0,3\n")
    inv = book.report.tables["inventory"].warnings
    assert inv[0] == GONE.format("inventory", "'7'", "; the order lines write it as ['7.0'], read as the same SKU")
    # a SKU no line has at all: the old wording, but the value as written ('8.0', read as '8')
    assert inv[1] == ("1 inventory rows name a SKU that no order line has (sku: ['8.0']; the order lines have "
                      "e.g. ['A1', 'B2']); no demand series uses them")
    assert book.report.tables["lead_times"].warnings == [GONE.format("lead_times", "'7.0'", "")]
    assert set(book.inventory["sku"]) == {"7", "8"}  # read as before: only the words changed


def test_a_sku_written_alike_in_both_files_is_said_as_before(tmp_path):
    """No rewrite: the message is the one tests/test_byo_audit.py pins (no 'write it as' clause)."""
    book = _book(tmp_path, "location,sku,on_hand\nALL,7.0,5\n", "sku,lead_time_days\n7.0,3\n")
    assert book.report.tables["inventory"].warnings == [GONE.format("inventory", "'7.0'", "")]
