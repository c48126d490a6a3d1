"""Sources: the same rows from CSV, CSV.GZ / .BZ2 / .ZST, TSV, Parquet, a DuckDB file (table and
query) and a SQLite URL give the same cleaned table, report and fingerprint hash; ids stay text; missing
columns are named with the user's column and the columns present."""

from __future__ import annotations

import bz2
import gzip
import sqlite3
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from training.config import TableSource, load_config
from training.data import load_order_book
from training.errors import DataError
from training.sources import read_table

MAPPING = {
    "order_id": "Invoice",
    "order_date": "Date",
    "account_id": "Customer",
    "sku": "Item",
    "quantity": "Qty",
    "unit_price": "Price",
}

CSV = """Invoice,Date,Customer,Item,Qty,Price,Country,Note
536365,2010-12-01 08:26:00,17850.0,00123,6.0,2.55,United Kingdom,a
536365,2010-12-01 08:26:00,17850.0,71053,6.0,3.39,United Kingdom,b
C536379,2010-12-01 09:41:00,14527.0,D,-1.0,27.5,United Kingdom,c
536380,2010-12-01 09:41:00,,85123A,2.0,2.55,France,d
536381,2010-12-02 10:00:00,12583.0,22139,3.0,0.0,France,e
536382,2010-12-03 11:00:00,12583.0,22139,3.0,4.25,France,f
536382,2010-12-03 11:00:00,12583.0,22139,3.0,4.25,France,f
536383,2010-12-04 12:00:00,12583.0,84029G,1.0,3.0,Germany,g
"""


def _cfg(tmp_path: Path, source_yaml: str, name: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    cols = ", ".join(f"{k}: {v}" for k, v in MAPPING.items())
    p.write_text(
        f"name: {name}\ndata:\n  as_of: 2011-12-09\n  order_lines:\n{source_yaml}"
        f"    columns: {{{cols}}}\n    cancellation_prefix: C\n    derive_accounts_from: {{region: Country}}\n"
    )
    return p


@pytest.fixture()
def sources(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "book.csv").write_text(CSV)
    with gzip.open(tmp_path / "book.csv.gz", "wt") as fh:
        fh.write(CSV)
    (tmp_path / "book.csv.bz2").write_bytes(bz2.compress(CSV.encode()))
    # .zst through pyarrow: pandas alone would need the (uninstalled) zstandard package
    with pa.CompressedOutputStream(str(tmp_path / "book.csv.zst"), "zstd") as out:
        out.write(CSV.encode())
    (tmp_path / "book.tsv").write_text(CSV.replace(",", "\t"))  # a .tsv is tab-separated without sep:
    # Typed copies, as a Parquet export or a database table would hold them.
    typed = pd.read_csv(tmp_path / "book.csv", dtype={"Invoice": str, "Item": str})
    typed["Date"] = pd.to_datetime(typed["Date"])
    typed.to_parquet(tmp_path / "book.parquet", index=False)
    con = duckdb.connect(str(tmp_path / "book.duckdb"))
    con.execute("CREATE TABLE lines AS SELECT * FROM typed")
    con.close()
    with sqlite3.connect(tmp_path / "book.db") as sq:
        typed.assign(Date=typed["Date"].astype(str)).to_sql("lines", sq, index=False)
    return {
        "csv": _cfg(tmp_path, "    path: book.csv\n", "csv"),
        "csv.gz": _cfg(tmp_path, "    path: book.csv.gz\n", "csvgz"),
        "csv.bz2": _cfg(tmp_path, "    path: book.csv.bz2\n", "csvbz2"),
        "csv.zst": _cfg(tmp_path, "    path: book.csv.zst\n", "csvzst"),
        "tsv": _cfg(tmp_path, "    path: book.tsv\n", "tsv"),
        "parquet": _cfg(tmp_path, "    path: book.parquet\n", "parquet"),
        "duckdb-table": _cfg(tmp_path, "    path: book.duckdb\n    table: lines\n", "ddb"),
        "duckdb-query": _cfg(tmp_path, "    path: book.duckdb\n    query: SELECT * FROM lines WHERE Qty IS NOT NULL\n", "ddbq"),
        "sqlite-url": _cfg(tmp_path, "    url: sqlite:///book.db\n    table: lines\n", "sqlite"),
    }


def _comparable(book) -> dict:  # type: ignore[no-untyped-def]
    d = book.report.to_dict()["tables"]
    for t in d.values():
        t.pop("source")
    return d


def test_all_formats_give_the_same_book(sources: dict[str, Path]) -> None:
    books = {k: load_order_book(load_config(p)) for k, p in sources.items()}
    ref = books["csv"]
    ol = ref.order_lines
    assert list(ol["order_id"]) == ["536365", "536365", "536382", "536383"]
    # 8 rows in: cancellation (1), missing account (1), zero price (1), duplicate (1) -> 4 kept
    t = ref.report.to_dict()["tables"]["order_lines"]
    assert (t["rows_in"], t["rows_out"]) == (8, 4)
    assert {k: v["rows"] for k, v in t["reasons"].items()} == {
        "cancellation": 1, "negative_quantity": 1, "non_positive_price": 1, "missing_account": 1, "duplicate": 1,
    }
    assert list(ol["sku"]) == ["00123", "71053", "22139", "84029G"]  # leading zeros kept
    assert list(ol["account_id"]) == ["17850", "17850", "12583", "12583"]
    assert list(ref.accounts["region"]) == ["France", "United Kingdom"]
    for name, book in books.items():
        assert _comparable(book) == _comparable(ref), name
        assert book.fingerprint["order_lines_sha256"] == ref.fingerprint["order_lines_sha256"], name
        pd.testing.assert_frame_equal(book.order_lines, ol, obj=name)
        pd.testing.assert_frame_equal(book.accounts, ref.accounts, obj=name)


def test_fingerprint_fields(sources: dict[str, Path]) -> None:
    fp = load_order_book(load_config(sources["duckdb-table"])).fingerprint
    assert fp["tables"]["order_lines"]["rows_in"] == 8 and fp["tables"]["order_lines"]["rows_out"] == 4
    assert fp["tables"]["order_lines"]["source"].endswith("book.duckdb (table lines)")
    assert fp["order_date_min"] == "2010-12-01 08:26:00" and fp["order_date_max"] == "2010-12-04 12:00:00"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "duckdb-table", "sqlite-url"])
def test_missing_mapped_column_is_named(sources: dict[str, Path], fmt: str) -> None:
    cfg = load_config(sources[fmt])
    src = cfg.data.order_lines.model_copy(update={"columns": {**MAPPING, "quantity": "Quantity"}})
    with pytest.raises(DataError) as ei:
        read_table("order_lines", src)
    msg = str(ei.value)
    assert "'quantity' mapped from 'Quantity'" in msg
    assert "Columns present" in msg and "'Qty'" in msg
    assert "book." in msg  # the file / database is named


def test_csv_options_sep_encoding_and_text_ids(tmp_path: Path) -> None:
    p = tmp_path / "export.txt"
    p.write_bytes("Beleg;Datum;Kunde;Artikel;Menge;Preis\n0042;31.01.2024;Müller;007;2;1,5\n".encode("latin-1"))
    src = TableSource(
        path=p, format="csv", sep=";", encoding="latin-1",
        columns={"order_id": "Beleg", "order_date": "Datum", "account_id": "Kunde", "sku": "Artikel", "quantity": "Menge", "unit_price": "Preis"},
    )
    raw = read_table("order_lines", src)
    assert raw.frame.loc[0, "order_id"] == "0042" and raw.frame.loc[0, "account_id"] == "Müller"
    assert raw.frame.loc[0, "unit_price"] == "1,5"  # text as read; validation decides
    assert raw.mapping["account_id"] == "Kunde"


def test_missing_file_and_table(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: order_lines file not found"):
        read_table("order_lines", TableSource(path=tmp_path / "nope.csv"))
    with sqlite3.connect(tmp_path / "e.db") as sq:
        sq.execute("create table other (a int)")
    with pytest.raises(DataError, match="table 'lines' for order_lines does not exist"):
        read_table("order_lines", TableSource(url=f"sqlite:///{tmp_path / 'e.db'}", table="lines"))


def test_accounts_source_with_attributes_and_unknown_accounts(tmp_path: Path, sources: dict[str, Path]) -> None:
    (tmp_path / "acc.csv").write_text("cust,Land,Tier\n17850,UK,gold\n12583.0,FR,silver\n")
    cfg_text = sources["csv"].read_text().replace("    derive_accounts_from: {region: Country}\n", "")
    cfg_text += "  accounts:\n    path: acc.csv\n    columns: {account_id: cust, region: Land, tier: Tier}\n"
    p = tmp_path / "with_acc.yaml"
    p.write_text(cfg_text)
    book = load_order_book(load_config(p))
    assert list(book.accounts.columns) == ["account_id", "region", "channel_type", "onboarding_date", "tier"]
    assert list(book.accounts["account_id"]) == ["17850", "12583"]
    reasons = book.report.to_dict()["tables"]["order_lines"]["reasons"]
    assert reasons["unknown_account"]["rows"] == 1  # only 14527 (the cancelled invoice) is unknown
    assert reasons["unknown_account"]["examples"][0]["account_id"] == "14527"
    (tmp_path / "acc.csv").write_text("cust,Land,Tier\n17850,UK,gold\n")
    book = load_order_book(load_config(p))
    assert book.report.to_dict()["tables"]["order_lines"]["reasons"]["unknown_account"]["rows"] == 5
    assert set(book.order_lines["account_id"]) == {"17850"}


def test_typed_columns_date_decimal_int(tmp_path: Path) -> None:
    """DATE, DECIMAL and integer columns (Parquet / DuckDB exports) load as dates, numbers and text ids."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table(
        {
            "order_id": ["1", "2"],
            "order_date": pa.array([datetime.date(2024, 1, 1), datetime.date(2024, 1, 2)], pa.date32()),
            "account_id": pa.array([decimal.Decimal("17850"), decimal.Decimal("12")], pa.decimal128(10, 0)),
            "sku": pa.array([7, 8], pa.int64()),
            "quantity": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2.00")], pa.decimal128(10, 2)),
            "unit_price": [1.0, 2.0],
        }
    )
    pq.write_table(t, tmp_path / "typed.parquet")
    con = duckdb.connect(str(tmp_path / "typed.duckdb"))
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{tmp_path / 'typed.parquet'}')")
    con.close()
    for yaml_src in ("    path: typed.parquet\n", "    path: typed.duckdb\n    table: t\n"):
        p = tmp_path / "c.yaml"
        p.write_text(f"name: t\ndata:\n  as_of: 2025-01-01\n  order_lines:\n{yaml_src}")
        ol = load_order_book(load_config(p)).order_lines
        assert list(ol["account_id"]) == ["17850", "12"] and list(ol["sku"]) == ["7", "8"]
        assert list(ol["quantity"]) == [1.5, 2.0] and str(ol["order_date"].dtype) == "datetime64[ns]"
        assert list(ol["order_date"].dt.day) == [1, 2]


def test_compressed_files_misnamed_cut_short_or_not_compressed(tmp_path: Path) -> None:
    """A gzip file named .csv is said to be gzip (not 'set encoding: latin-1'); a .gz / .bz2 cut short
    (header or body) or a plain file named .gz is a DataError naming the file and the cause, never
    EOFError ('Aborted.') or a crash at exit."""
    import subprocess
    import sys

    import numpy as np

    (tmp_path / "lines.csv").write_bytes(gzip.compress(CSV.encode()))
    with pytest.raises(DataError, match=r"lines\.csv is gzip-compressed, but its name does not end in \.gz.*"
                                        r"rename it to lines\.csv\.gz"):
        read_table("order_lines", TableSource(path=tmp_path / "lines.csv", columns=MAPPING))
    (tmp_path / "plain.csv.gz").write_text(CSV)
    with pytest.raises(DataError, match=r"plain\.csv\.gz: cannot decompress order_lines as gzip .*not gzip-compressed"):
        read_table("order_lines", TableSource(path=tmp_path / "plain.csv.gz", columns=MAPPING))
    (tmp_path / "head.csv.gz").write_bytes(gzip.compress(CSV.encode())[:60])  # cut inside the header
    with pytest.raises(DataError, match=r"head\.csv\.gz: cannot decompress order_lines as gzip .*cut short"):
        read_table("order_lines", TableSource(path=tmp_path / "head.csv.gz", columns=MAPPING))
    rng = np.random.default_rng(0)  # random rows: the compressed file is long enough for the header to read
    body = "Invoice,Date,Customer,Item,Qty,Price\n" + "".join(
        f"{i},2010-12-01,{c},{s},{q},1.5\n" for i, (c, s, q) in enumerate(rng.integers(1, 10**6, (20000, 3))))
    for suffix, pack in ((".gz", gzip.compress), (".bz2", bz2.compress)):
        packed = pack(body.encode())
        p = tmp_path / f"body.csv{suffix}"
        p.write_bytes(packed[: len(packed) * 3 // 4])
        with pytest.raises(DataError, match=rf"body\.csv{suffix}: cannot decompress order_lines as .*cut short"):
            read_table("order_lines", TableSource(path=p, columns=MAPPING))
    # the process ends normally after the error (threaded readahead over a cut stream aborted it at exit)
    code = ("from pathlib import Path\nfrom training.config import TableSource\nfrom training.sources import read_table\n"
            f"try:\n    read_table('order_lines', TableSource(path=Path({str(tmp_path / 'body.csv.gz')!r}), "
            f"columns={MAPPING!r}))\nexcept Exception as e:\n    print(type(e).__name__)\n")
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert (run.returncode, run.stdout.strip()) == (0, "DataError"), run.stderr


def test_parquet_repeated_column_infinite_number_and_out_of_range_timestamp(tmp_path: Path) -> None:
    """Parquet reads as a CSV does: a column named twice is refused naming it; inf is not a number
    (infinite_quantity, as 'inf' in a CSV); a millisecond timestamp outside 1677..2262 is an
    unparseable date of its row (pandas' OutOfBoundsDatetime traceback before)."""
    import datetime

    import pyarrow.parquet as pq

    t = pa.table({
        "order_id": ["1", "2", "3"],
        "order_date": pa.array([datetime.datetime(2024, 1, 1), datetime.datetime(2300, 1, 1),
                                datetime.datetime(2024, 1, 2)], pa.timestamp("ms")),
        "account_id": ["a", "b", "c"], "sku": ["x", "y", "z"],
        "quantity": [1.0, 2.0, float("inf")], "unit_price": [1.0, 2.0, 3.0],
    })
    pq.write_table(t, tmp_path / "ok.parquet")
    p = tmp_path / "c.yaml"
    p.write_text("name: t\ndata:\n  as_of: 2025-01-01\n  order_lines: {path: ok.parquet}\n")
    book = load_order_book(load_config(p))
    assert list(book.order_lines["order_id"]) == ["1"]
    reasons = book.report.to_dict()["tables"]["order_lines"]["reasons"]
    assert reasons["unparseable_date"]["rows"] == 1 and reasons["infinite_quantity"]["rows"] == 1
    assert "missing_quantity" not in reasons
    assert "2300-01-01" in str(reasons["unparseable_date"]["examples"][0]["order_date"])
    pq.write_table(t.append_column("sku", pa.array(["u", "v", "w"])), tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"dup\.parquet: order_lines: the header names column 'sku' 2 times "
                                        r"\(columns \[4, 7\]"):
        read_table("order_lines", TableSource(path=tmp_path / "dup.parquet"))


def test_an_encoding_that_does_not_fit_the_bytes_is_named_not_a_traceback(tmp_path: Path) -> None:
    """encoding: utf-16 on a UTF-8 file raised UnicodeError ('UTF-16 stream does not start with BOM',
    not a UnicodeDecodeError) out of the header read as a traceback."""
    (tmp_path / "book.csv").write_text(CSV)
    with pytest.raises(DataError) as ei:
        read_table("order_lines", TableSource(path=tmp_path / "book.csv", encoding="utf-16", columns=MAPPING))
    assert str(ei.value) == (f"{tmp_path / 'book.csv'}: cannot decode the header with encoding 'utf-16' (UTF-16 stream "
                             "does not start with BOM); set encoding: (e.g. utf-8, latin-1 or cp1252) in the config's "
                             "data.order_lines entry")


def test_a_file_that_is_not_duckdb_and_a_bad_query_say_so_in_one_line(tmp_path: Path) -> None:
    """format: duckdb on a CSV said 'Cannot launch in-memory database in read-only mode!'; a query on a
    missing table added DuckDB's guess ('Did you mean "pg_enum"?') and our wrapping SELECT."""
    (tmp_path / "book.csv").write_text(CSV)
    with pytest.raises(DataError) as ei:
        read_table("order_lines", TableSource(path=tmp_path / "book.csv", format="duckdb", table="lines"))
    assert str(ei.value).startswith(f"{tmp_path / 'book.csv'}: order_lines is not a DuckDB database file")
    con = duckdb.connect(str(tmp_path / "b.duckdb"))
    con.execute("CREATE TABLE lines AS SELECT 1 AS a")
    con.close()
    with pytest.raises(DataError) as ei:
        read_table("order_lines", TableSource(path=tmp_path / "b.duckdb", query="SELECT * FROM nope"))
    assert str(ei.value) == (f"{tmp_path / 'b.duckdb'} (query): cannot read order_lines: Catalog Error: Table with "
                             "name nope does not exist!")
