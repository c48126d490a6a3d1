"""Small input-handling fixes found by the session-9 docs audit."""

from __future__ import annotations

import pandas as pd
import pytest

from training.validate import validate_order_lines


def _raw(currency: list[str | None]) -> pd.DataFrame:
    n = len(currency)
    return pd.DataFrame({"order_id": [str(i) for i in range(n)], "order_date": ["2024-01-01"] * n,
                         "account_id": ["A"] * n, "sku": ["S"] * n, "quantity": ["1"] * n,
                         "unit_price": ["2"] * n, "currency": currency})


def test_empty_currency_cells_are_not_called_a_second_currency():
    """One currency and an empty cell warned 'more than one currency ['EUR', 'unknown']'."""
    _, rep = validate_order_lines(_raw(["EUR", "EUR", None]), as_of="2025-01-01")
    text = " ".join(rep.warnings)
    assert "more than one currency" not in text
    assert "1 order line(s) have no currency (read as 'unknown'); the others are EUR" in text
    _, rep = validate_order_lines(_raw(["EUR", "GBP", None]), as_of="2025-01-01")
    assert "more than one currency in order_lines: ['EUR', 'GBP']" in " ".join(rep.warnings)


@pytest.mark.parametrize("suffix", [".parq", ".pq", ".parquet"])
def test_series_table_reads_every_parquet_suffix_the_order_book_reads(tmp_path, suffix):
    """`.parq` was refused as 'unknown format' by the series reader while the order-book loader reads it."""
    from training.demand_config import read_series_file

    p = tmp_path / f"s{suffix}"
    pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.to_datetime(["2024-01-01", "2024-01-08"]),
                  "y": [1.0, 2.0]}).to_parquet(p)
    out = read_series_file(p)
    df = out[0] if isinstance(out, tuple) else out
    assert list(df["y"]) == [1.0, 2.0]


def test_a_utf16_series_table_says_what_it_is(tmp_path):
    """A UTF-16 ('Unicode text') --series file gave pandas' raw UnicodeDecodeError."""
    from training.demand_config import read_series_file
    from training.errors import DataError

    p = tmp_path / "s.csv"
    p.write_text("unique_id,ds,y\na,2024-01-01,1\n", encoding="utf-16")
    with pytest.raises(DataError, match=r"s.csv: not UTF-8 text: it starts with a UTF-16 byte-order mark.*CSV UTF-8"):
        read_series_file(p)
    p.write_bytes("unique_id,ds,y\nMünchen,2024-01-01,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xfc at offset 16"):
        read_series_file(p)


def test_demand_written_with_a_decimal_comma_is_named_as_such():
    """y of '1,5' gave only 'must be a number'; a decimal comma is the usual cause, so say it."""
    from models.demand_data import build_panel

    df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=4, freq="W-MON").astype(str),
                       "y": ["1,5", "2,0", "3", "0,5"]})
    with pytest.raises(ValueError, match=r"column y must be a number \(demand in units\); these are written with a "
                                         r"decimal comma.*3 row\(s\) break it, first rows \[1, 2, 4\]"):
        build_panel(df, "W")
    df["y"] = ["1", "x", "3", "4"]  # other text: no comma hint
    with pytest.raises(ValueError, match=r"column y must be a number \(demand in units\): 1 row"):
        build_panel(df, "W")
