"""PostgreSQL source: the first 30,000 Online Retail lines plus dirty rows, written to a
uniquely named table in the local database ``test`` (typed columns, and a text-only staging
copy), validated through ``url:`` + ``table:`` / ``query:`` and from the same rows as CSV:
the reports, the cleaned frames and the fingerprint hashes must be identical."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from training.config import load_config
from training.data import load_order_book

pytestmark = [pytest.mark.postgres, pytest.mark.realdata]

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REPO = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
N = 30_000

MAP = "{order_id: InvoiceNo, order_date: InvoiceDate, account_id: CustomerID, sku: StockCode, quantity: Quantity, unit_price: UnitPrice}"


def _rows() -> pd.DataFrame:
    df = pd.read_csv(ONLINE_RETAIL, nrows=N, dtype={"InvoiceNo": str, "StockCode": str})
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    first = df.iloc[0].to_dict()
    dirty = [
        {**first, "InvoiceNo": "C999001", "Quantity": -3.0},  # cancellation + negative quantity
        {**first, "InvoiceNo": "999002", "InvoiceDate": pd.NaT},  # missing date
        {**first, "InvoiceNo": "999003", "InvoiceDate": pd.Timestamp("2030-01-01 10:00")},  # future
        {**first, "InvoiceNo": "999004", "Quantity": 0.0},  # zero quantity
        {**first, "InvoiceNo": "999005", "StockCode": None},  # missing sku
        {**first, "InvoiceNo": "999006", "UnitPrice": None},  # missing price
        {**first, "InvoiceNo": "999007", "CustomerID": 12345.0, "Country": "Narnia"},  # fine, new account
        first,  # exact duplicate of the first line
    ]
    return pd.concat([df, pd.DataFrame(dirty)], ignore_index=True)


@pytest.fixture(scope="module")
def pg_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    df = _rows()
    tag = uuid.uuid4().hex[:10]
    typed, text = f"ea_lines_{tag}", f"ea_lines_text_{tag}"
    folder = tmp_path_factory.mktemp("pg")
    csv_path = folder / "lines.csv"
    df.to_csv(csv_path, index=False)
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f'CREATE TABLE {typed} ("InvoiceNo" text, "StockCode" text, "Description" text, "Quantity" double precision, '
                '"InvoiceDate" timestamp, "UnitPrice" double precision, "CustomerID" double precision, "Country" text)'
            )
            conn.exec_driver_sql(
                f'CREATE TABLE {text} ("InvoiceNo" text, "StockCode" text, "Description" text, "Quantity" text, '
                '"InvoiceDate" text, "UnitPrice" text, "CustomerID" text, "Country" text)'
            )
            body = csv_path.read_text()
            with conn.connection.driver_connection.cursor() as cur:
                for name in (typed, text):
                    with cur.copy(f"COPY {name} FROM STDIN WITH (FORMAT csv, HEADER true)") as cp:
                        cp.write(body)
        yield {"typed": typed, "text": text, "csv": csv_path, "folder": folder, "n": len(df)}
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {typed}")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {text}")
        engine.dispose()


def _config(folder: Path, name: str, source: str) -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(
        f"name: {name}\ndata:\n  as_of: 2011-12-09\n  order_lines:\n{source}"
        f"    columns: {MAP}\n    cancellation_prefix: C\n    derive_accounts_from: {{region: Country}}\n"
    )
    return p


def _tables(book) -> dict:  # type: ignore[no-untyped-def]
    d = book.report.to_dict()["tables"]
    for t in d.values():
        t.pop("source")
    return d


def test_postgres_and_csv_give_identical_reports(pg_tables: dict) -> None:
    f = pg_tables["folder"]
    books = {
        "csv": load_order_book(load_config(_config(f, "csv", "    path: lines.csv\n"))),
        "pg-typed": load_order_book(load_config(_config(f, "pgt", f"    url: {PG_URL}\n    table: {pg_tables['typed']}\n"))),
        "pg-text": load_order_book(load_config(_config(f, "pgx", f"    url: {PG_URL}\n    table: public.{pg_tables['text']}\n"))),
        "pg-query": load_order_book(
            load_config(_config(f, "pgq", f'    url: {PG_URL}\n    query: SELECT * FROM {pg_tables["typed"]}\n'))
        ),
    }
    ref = books["csv"]
    t = ref.report.to_dict()["tables"]["order_lines"]
    assert t["rows_in"] == pg_tables["n"] == N + 8
    counts = {k: v["rows"] for k, v in t["reasons"].items()}
    # the dirty rows we added are each found
    assert counts["unparseable_date"] == 1 and counts["future_date"] == 1
    assert counts["zero_quantity"] == 1 and counts["missing_sku"] == 1 and counts["missing_price"] == 1
    assert counts["duplicate"] >= 1 and counts["cancellation"] >= 1 and counts["missing_account"] > 0
    assert "12345" in set(ref.order_lines["account_id"])
    assert ref.accounts is not None and ref.accounts.set_index("account_id").loc["12345", "region"] == "Narnia"
    for name, book in books.items():
        assert _tables(book) == _tables(ref), name
        assert book.fingerprint["order_lines_sha256"] == ref.fingerprint["order_lines_sha256"], name
        pd.testing.assert_frame_equal(book.order_lines, ref.order_lines, obj=name)
    src = books["pg-typed"].fingerprint["tables"]["order_lines"]["source"]
    assert src.startswith("postgresql+psycopg://postgres@127.0.0.1:5432/test") and pg_tables["typed"] in src


def test_postgres_missing_column_is_named(pg_tables: dict) -> None:
    from training.errors import DataError

    f = pg_tables["folder"]
    p = _config(f, "bad", f"    url: {PG_URL}\n    table: {pg_tables['typed']}\n")
    p.write_text(p.read_text().replace("quantity: Quantity", "quantity: Qty"))
    with pytest.raises(DataError) as ei:
        load_order_book(load_config(p))
    msg = str(ei.value)
    assert pg_tables["typed"] in msg and "'quantity' mapped from 'Qty'" in msg and "'Quantity'" in msg
