"""A planner's order book as Excel / ERP exports write it (helper audit, session 23): ';' between values,
decimal commas, dd/mm/yyyy dates with times, a UTF-8 byte order mark, Windows line endings, headers
with trailing spaces, ids with trailing blanks, latin-1 text. Each export either reads as the same book
as a plain file, or stops naming the file, column, rows and values and what to set: never silently
wrong numbers (1.200 read as 1.2, a French '1 200' or SAP's '6-' dropped as not a number, Excel's
'1.23457E+11' ids merged). Tiny files; the file runs in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.data import load_order_book
from training.errors import DataError

MAP = {"order_id": "InvoiceNo", "order_date": "InvoiceDate", "account_id": "CustomerID", "sku": "StockCode",
       "quantity": "Quantity", "unit_price": "UnitPrice"}
# (order, ISO date, account, sku, quantity, price): two accounts, a cancellation, one order of 1 200 units
ROWS = [
    ("536365", "2024-01-05 08:26", "017850", "85123A", 6, 2.55),
    ("536366", "2024-01-13 09:00", "017850", "71053", 1200, 3.39),
    ("536367", "2024-02-14 10:30", "13047", "85123A", 12, 2.55),
    ("C536368", "2024-02-20 11:00", "13047", "85123A", -2, 2.55),
    ("536369", "2024-03-25 12:00", "13047", "71053", 24, 1234.5),
    ("536370", "2024-04-02 13:15", "017850", "85123A", 48, 2.1),
]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))


def _plain(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v}"


def _csv(rows: list[list[str]], sep: str = ",", eol: str = "\n") -> str:
    return eol.join(sep.join(r) for r in rows) + eol


def _book(tmp_path: Path, text: str | bytes, name: str = "lines.csv", columns: dict | None = None, **opts):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    entry = {"path": name, "columns": columns or MAP, "cancellation_prefix": "C", **opts}
    cfg = tmp_path / f"{p.stem}.yaml"
    cfg.write_text(yaml.safe_dump({"name": "exports", "data": {"as_of": "2024-12-31", "order_lines": entry}}))
    return load_order_book(cfg)


def _plain_book(tmp_path: Path):
    head = [list(MAP.values())]
    body = [[o, d, a, s, _plain(q), _plain(p)] for o, d, a, s, q, p in ROWS]
    return _book(tmp_path, _csv(head + body), name="plain.csv")


def _refused(tmp_path: Path, text: str, **opts) -> str:
    with pytest.raises(DataError) as e:
        _book(tmp_path, text, **opts)
    return str(e.value)


def _with_quantities(quantities: list[str], sep: str = ",") -> str:
    head = [list(MAP.values())]
    return _csv(head + [[o, d, a, s, q, _plain(p)] for (o, d, a, s, _, p), q in zip(ROWS, quantities, strict=True)],
                sep=sep)


def test_european_excel_export_reads_as_the_plain_book(tmp_path):
    """';', decimal commas with '.' thousands, dd/mm/yyyy HH:MM, a BOM, CRLF, headers with trailing
    spaces, ids with trailing blanks and an empty last line: the same cleaned book (hash) as the plain file."""
    head = [[" InvoiceNo ", "StockCode ", "Quantity ", "InvoiceDate", "UnitPrice", "CustomerID"]]
    body = []
    for o, d, a, s, q, p in ROWS:
        y, m, rest = d[:4], d[5:7], d[8:]
        q_txt = f"{q:,.0f}".replace(",", ".")
        p_txt = f"{p:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
        body.append([o, s + " ", q_txt, f"{rest[:2]}/{m}/{y}{rest[2:]}", p_txt, a + " "])
    text = "\ufeff" + _csv(head + body, sep=";", eol="\r\n") + "\r\n"
    eu = _book(tmp_path, text, sep=";", decimal=",", dayfirst=True)
    plain = _plain_book(tmp_path)
    assert eu.fingerprint["order_lines_sha256"] == plain.fingerprint["order_lines_sha256"]
    assert eu.order_lines["quantity"].sum() == 6 + 1200 + 10 + 24 + 48  # the cancellation took 2 off
    assert sorted(eu.order_lines["account_id"].unique()) == ["017850", "13047"]


def test_latin1_export_with_its_encoding_reads_the_pound_sign(tmp_path):
    head = [list(MAP.values()) + ["Description"]]
    body = [[o, d, a, s, _plain(q), _plain(p), "Café set £"] for o, d, a, s, q, p in ROWS]
    book = _book(tmp_path, _csv(head + body, eol="\r\n").encode("latin-1"), encoding="latin-1")
    assert book.fingerprint["order_lines_sha256"] == _plain_book(tmp_path).fingerprint["order_lines_sha256"]


def test_non_breaking_space_thousands_are_read_with_thousands_space(tmp_path):
    """A spreadsheet groups thousands with a non-breaking space, which looks like the space that
    `thousands: ' '` names: the 1 200-unit order was dropped as missing_quantity."""
    qs = ["6", "1\u00a0200", "12", "-2", "24", "48"]
    book = _book(tmp_path, _with_quantities(qs), thousands=" ")
    assert book.order_lines["quantity"].sum() == 6 + 1200 + 10 + 24 + 48
    assert "missing_quantity" not in book.report.tables["order_lines"].reasons


@pytest.mark.parametrize("written", ["1\u00a0200", "1 200", "1'200"])
def test_space_grouped_thousands_without_a_setting_are_refused(tmp_path, written):
    """Without a setting, '1 200' was one unreadable value among many: the order was dropped as
    missing_quantity (the largest order of the book) and the run went on."""
    msg = _refused(tmp_path, _with_quantities(["6", written, "12", "-2", "24", "48"]))
    assert "order_lines.quantity (column 'Quantity') holds 1 number(s) written with a space or ' between thousands" in msg
    assert f"e.g. {written!r} (first rows [2]; 1 = the first data row)" in msg
    assert "set thousands: ' '" in msg and "lines.csv" in msg


@pytest.mark.parametrize("written, said", [
    ("2-", "with the minus sign after them or in parentheses"),
    ("(2)", "with the minus sign after them or in parentheses"),
    ("2,00-", "with the minus sign after them or in parentheses"),
    ("\u22122", "with a minus sign that is not the ASCII '-'"),
])
def test_negatives_written_after_or_in_parentheses_are_refused(tmp_path, written, said):
    """SAP writes a return as '2-', accounting formats as '(2)', some spreadsheets with the typographic
    minus: the cancellation line was dropped as missing_quantity, so it took no units off the order it
    cancels (12 units kept instead of 10)."""
    comma = "," in written  # a decimal-comma export: ';' between values
    msg = _refused(tmp_path, _with_quantities(["6", "1200", "12", written, "24", "48"], sep=";" if comma else ","),
                   **({"decimal": ",", "sep": ";"} if comma else {}))
    assert f"holds 1 number(s) written {said}" in msg
    assert f"e.g. {written!r} (first rows [4]; 1 = the first data row)" in msg
    assert "minus sign" in msg.split("expected numbers such as 1234.5 or -6: ")[1]


@pytest.mark.parametrize("how, written, opts", [
    ("trailing", "2-", {}),
    ("trailing", "2,00-", {"decimal": ",", "sep": ";"}),  # SAP with a decimal comma
    ("trailing", "1.200,00-", {"decimal": ",", "sep": ";"}),  # and thousands grouped
    ("parentheses", "(2)", {}),
    ("parentheses", "( 1,200.00 )", {"thousands": ",", "sep": ";"}),
])
def test_negatives_after_or_in_parentheses_are_read_with_the_negatives_setting(tmp_path, how, written, opts):
    """An SAP or accounting export that cannot be changed: negatives: trailing / parentheses reads its
    negatives, and the cancellation takes its units off the order it cancels, as the plain book's '-2' does."""
    sep = opts.get("sep", ",")
    value = -1200.0 if "200" in written else -2.0
    book = _book(tmp_path, _with_quantities(["6", "1200", "12", written, "24", "48"], sep=sep), negatives=how, **opts)
    plain = _book(tmp_path, _with_quantities(["6", "1200", "12", _plain(value), "24", "48"]), name="p.csv")
    import pandas as pd

    pd.testing.assert_frame_equal(book.order_lines, plain.order_lines)
    assert book.report.tables["order_lines"].rows_in == plain.report.tables["order_lines"].rows_in


def test_the_negatives_setting_leaves_other_values_as_written(tmp_path):
    """negatives: trailing reads '6-' only: a leading minus still reads, a word is still not a number."""
    import pandas as pd

    from training.sources import _negatives_as_written

    s = pd.Series(["6-", "-6", "6", " 12 -", "x-", None, "(6)"], dtype="string[pyarrow]")
    assert _negatives_as_written(s, "trailing").tolist()[:5] == ["-6", "-6", "6", "-12", "x-"]
    assert _negatives_as_written(s, "parentheses").tolist()[-1] == "-6"


def test_whole_numbers_grouped_with_dots_are_refused_not_read_as_decimals(tmp_path):
    """A German export of whole quantities writes 1.200 for 1200: read with '.' as the decimal mark
    the order was 1.2 units, silently."""
    msg = _refused(tmp_path, _with_quantities(["6", "1.200", "12", "-2", "24", "48"]))
    assert ("order_lines.quantity (column 'Quantity') holds 1 value(s) such as '1.200' (first rows [2]; "
            "1 = the first data row) with exactly three digits after a '.', beside 5 whole numbers") in msg
    assert "set decimal: ',' under data.order_lines in the config if '.' groups thousands" in msg
    book = _book(tmp_path, _with_quantities(["6", "1.200", "12", "-2", "24", "48"]), decimal=",")
    assert book.order_lines["quantity"].max() == 1200
    book = _book(tmp_path, _with_quantities(["6", "1.200", "12", "-2", "24", "48"]), thousands=",")
    assert book.order_lines["quantity"].max() == 48 and book.order_lines["quantity"].min() == 1.2


@pytest.mark.parametrize("qs, expected_max", [
    (["6.000", "1.250", "12.000", "-2.000", "24.000", "48.000"], 48.0),  # SAP: every quantity with 3 decimals
    (["6", "1.250", "12", "-2", "2.5", "48"], 48.0),  # another decimal besides: '.' is the decimal mark
    (["6", "0.500", "12", "-2", "24", "48"], 48.0),  # 0.500 is no thousands group
])
def test_decimals_with_three_digits_are_still_read_as_decimals(tmp_path, qs, expected_max):
    book = _book(tmp_path, _with_quantities(qs))
    assert book.order_lines["quantity"].max() == expected_max
    assert (book.order_lines["quantity"] % 1 != 0).any()


def test_several_dot_groups_are_refused_naming_the_setting(tmp_path):
    """'1.200.000' among decimals ('2.5') is not a number: it was dropped as missing_quantity."""
    msg = _refused(tmp_path, _with_quantities(["6", "1.200.000", "12", "-2", "2.5", "48"]))
    assert ("holds 1 number(s) written with '.' between thousands, e.g. '1.200.000' (first rows [2]; "
            "1 = the first data row)") in msg
    assert "set decimal: ','" in msg


def test_inventory_counts_grouped_with_dots_are_refused(tmp_path):
    (tmp_path / "stock.csv").write_text("Item;Store;OnHand\n85123A;ALL;1.500\n71053;ALL;40\n")
    head = [list(MAP.values())]
    (tmp_path / "lines.csv").write_text(_csv(head + [[o, d, a, s, _plain(q), _plain(p)] for o, d, a, s, q, p in ROWS]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "exports", "data": {
        "as_of": "2024-12-31", "order_lines": {"path": "lines.csv", "columns": MAP},
        "inventory": {"path": "stock.csv", "sep": ";", "columns": {"sku": "Item", "location": "Store", "on_hand": "OnHand"}}}}))
    with pytest.raises(DataError) as e:
        load_order_book(cfg)
    assert "stock.csv" in str(e.value)
    assert "inventory.on_hand (column 'OnHand') holds 1 value(s) such as '1.500' (first rows [1]" in str(e.value)


def test_ids_saved_in_scientific_notation_are_refused(tmp_path):
    """Excel saves a 12-digit customer number as '1.23457E+11': two customers became one account."""
    head = [list(MAP.values())]
    ids = ["1.23457E+11", "1.23457E+11", "13047", "13047", "13047", "1.23457E+11"]
    body = [[o, d, a, s, _plain(q), _plain(p)] for (o, d, _, s, q, p), a in zip(ROWS, ids, strict=True)]
    msg = _refused(tmp_path, _csv(head + body))
    assert ("order_lines.account_id (column 'CustomerID') holds 3 id(s) written in scientific notation, "
            "e.g. '1.23457E+11' (first rows [1, 2, 6]; 1 = the first data row)") in msg
    assert "format the column as Text" in msg
    skus = ["4E5", "1E", "4E5", "4E5", "1E", "4E5"]
    body = [[o, d, a, s, _plain(q), _plain(p)] for (o, d, a, _, q, p), s in zip(ROWS, skus, strict=True)]
    assert sorted(_book(tmp_path, _csv(head + body)).order_lines["sku"].unique()) == ["1E", "4E5"]  # SKU codes stay


def test_utf8_file_with_a_byte_order_mark_read_as_latin1_is_refused(tmp_path):
    """encoding: latin-1 on a UTF-8 export: the header's first name was 'ï»¿InvoiceNo' (a missing column
    when mapped; when not, every accented letter read garbled, silently)."""
    head = [list(MAP.values())]
    text = "\ufeff" + _csv(head + [[o, d, a, s, _plain(q), _plain(p)] for o, d, a, s, q, p in ROWS])
    msg = _refused(tmp_path, text, encoding="latin-1")
    assert "lines.csv: order_lines starts with a UTF-8 byte order mark" in msg
    assert "set encoding: utf-8 (or remove encoding:) in the config's data.order_lines entry" in msg


def test_on_hand_counts_grouped_with_dots_are_refused(tmp_path):
    """`safety-stock --on-hand stock.csv` from a German stock export: 1.500 units on hand were read
    as 1.5 and an order was suggested for stock that is there."""
    from training.commands._demand_on_hand import _read_on_hand

    f = tmp_path / "stock.csv"
    f.write_text("sku,location,on_hand,on_order\n85123A,ALL,1.500,0\n71053,ALL,40,12\n")
    with pytest.raises(DataError) as e:
        _read_on_hand(f, ["sku", "location"])
    assert str(e.value).startswith(f"--on-hand {f}: column on_hand holds 1 value(s) such as ['1.500'] (first rows [1]; "
                                   "1 = the first data row) with exactly three digits after a '.', beside 1 whole")
    f.write_text("sku,location,on_hand\n85123A,ALL,1.250\n71053,ALL,40.5\n")  # decimals: read as written
    assert _read_on_hand(f, ["sku", "location"])["on_hand"].tolist() == [1.25, 40.5]


def test_dates_with_month_names_in_another_language_are_refused(tmp_path):
    """A German export writes 05-Jan-2024 but 20-Feb-2024 ... 02-Apr-2024 and 14-Mär / 25-Mär: the
    March lines were dropped as unparseable_date (under half the book, so the run went on) and March
    read as a month without demand."""
    de = {"01": "Jan", "02": "Feb", "03": "Mär", "04": "Apr"}
    head = [list(MAP.values())]
    body = [[o, f"{d[8:10]}-{de[d[5:7]]}-{d[:4]}{d[10:]}", a, s, _plain(q), _plain(p)] for o, d, a, s, q, p in ROWS]
    msg = _refused(tmp_path, _csv(head + body))
    assert ("order_lines.order_date (column 'InvoiceDate'): 1 value(s) such as '25-Mär-2024 12:00' (first rows [5]; "
            "1 = the first data row) cannot be parsed as a date, while values written the same way can "
            "('05-Jan-2024 08:26', '13-Jan-2024 09:00'): the words Mär are no English month names") in msg
    body[4][1] = "n/a"  # text that is no date at all is dirt, dropped and counted as before
    book = _book(tmp_path, _csv(head + body))
    assert book.report.tables["order_lines"].reasons["unparseable_date"]["rows"] == 1


def test_dot_decimals_under_decimal_comma_are_refused(tmp_path):
    """decimal: ',' copied from the docs onto a file with '.' decimals: 2.55 stayed 2.55, but a price of
    1.250 was read as 1250, silently."""
    head = [list(MAP.values())]
    prices = ["2.55", "3.39", "1.250", "2.55", "0.85", "2.1"]
    body = [[o, d, a, s, _plain(q), p] for (o, d, a, s, q, _), p in zip(ROWS, prices, strict=True)]
    msg = _refused(tmp_path, _csv(head + body), decimal=",")
    assert ("order_lines.unit_price (column 'UnitPrice') is written with '.' as the decimal mark ('2.55', '3.39', "
            "'0.85' ...; no value has a comma), but decimal: ',' under data.order_lines reads '.' as a thousands "
            "separator, so 1 value(s) such as '1.250' (first rows [3]; 1 = the first data row) would be read as "
            "thousands (1.250 as 1250)") in msg
    prices[0] = "2,55"  # one comma: the column is in the decimal-comma layout, 1.250 is 1250 as documented
    body = [[o, d, a, s, _plain(q), p] for (o, d, a, s, q, _), p in zip(ROWS, prices, strict=True)]
    assert _book(tmp_path, _csv(head + body, sep=";"), sep=";", decimal=",").order_lines["unit_price"].max() == 1250


def test_utf8_text_read_as_latin1_is_refused(tmp_path):
    """encoding: latin-1 on a UTF-8 file without a byte order mark: the SKU 'Müsli-1' was read as
    'MÃ¼sli-1', silently, and no longer matched the same SKU in an --on-hand file or a request."""
    head = [list(MAP.values())]
    body = [[o, d, a, s + ("-Müsli" if s == "71053" else ""), _plain(q), _plain(p)] for o, d, a, s, q, p in ROWS]
    msg = _refused(tmp_path, _csv(head + body), encoding="latin-1")
    assert ("lines.csv: order_lines is read with encoding: latin-1, but order_lines.sku (column 'StockCode') holds "
            "2 value(s) such as '71053-MÃ¼sli' (UTF-8: '71053-Müsli') (first rows [2, 5]; 1 = the first data row): "
            "the file is UTF-8 text; set encoding: utf-8") in msg
    body = [[o, d, a, s + ("-Ã¼" if s == "71053" else "-Ä"), _plain(q), _plain(p)] for o, d, a, s, q, p in ROWS]
    book = _book(tmp_path, _csv(head + body).encode("latin-1"), encoding="latin-1")  # no UTF-8 when written back
    assert sorted(book.order_lines["sku"].unique()) == ["71053-Ã¼", "85123A-Ä"]


def test_a_report_title_above_the_header_is_named(tmp_path):
    head = [list(MAP.values())]
    text = "Sales report 2024\n\n" + _csv(head + [[o, d, a, s, _plain(q), _plain(p)] for o, d, a, s, q, p in ROWS])
    msg = _refused(tmp_path, text)
    assert "the header was read as the one column 'Sales report 2024'" in msg
    assert "remove the lines above the header (the header must be the file's first line)" in msg


def test_series_units_grouped_with_dots_are_refused(tmp_path):
    """A `demand.series` / `--series` table saved from a German sheet: 1.200 units read as 1.2."""
    from training.demand_config import read_series_file as read_series

    f = tmp_path / "series.csv"
    f.write_text("unique_id,ds,y\nA,2024-01-01,40\nA,2024-01-08,1.200\nA,2024-01-15,12\n")
    with pytest.raises(DataError) as e:
        read_series(f)
    assert str(e.value).startswith(f"{f}: column 'y' (y) holds 1 value(s) such as ['1.200'] (first rows [2]; "
                                   "1 = the first data row) with exactly three digits after a '.', beside 2 whole")
    f.write_text("unique_id,ds,y\nA,2024-01-01,40.5\nA,2024-01-08,1.200\nA,2024-01-15,12\n")
    assert read_series(f)["y"].tolist() == [40.5, 1.2, 12.0]


@pytest.mark.parametrize("token", ["NULL", "#N/A", "#NV", "nan"])
def test_null_words_in_id_columns_are_empty_ids_not_one_account(tmp_path, token):
    """A database export writes NULL for a sale without a customer, a sheet #N/A (#NV in German) for a
    lookup that found none: every such line was one account 'NULL', ordering all the time, scored for
    churn and dealers. They are lines without an account now (missing_account; still demand of their SKU)."""
    head = [list(MAP.values())]
    body = [[o, d, token if i in (1, 4) else a, s, _plain(q), _plain(p)]
            for i, (o, d, a, s, q, p) in enumerate(ROWS)]
    book = _book(tmp_path, _csv(head + body))
    assert token not in set(book.order_lines["account_id"])
    rep = book.report.tables["order_lines"]
    assert rep.reasons["missing_account"]["rows"] == 2
    assert rep.stats["lines_without_account_for_demand"] == 2


def test_latin1_letters_before_a_high_character_are_not_taken_for_utf8(tmp_path):
    """A real latin-1 export whose 'É' is followed by a no-break space ('CAFÉ PARIS') or whose 'Ø' by '°'
    decodes by chance like UTF-8's two-byte letters when their lead byte is 0xC9 / 0xD8: it was refused as
    'the file is UTF-8 text'. Only the lead bytes of the letters a UTF-8 export garbles (Â Ã Ä Å) count now,
    and a UTF-8 file read as latin-1 ('MÃ¼nchen') is still refused."""
    import pandas as pd

    from training._sources_export_checks import refuse_utf8_read_as_single_byte
    from training.errors import DataError

    real = pd.DataFrame({"region": ["CAF\u00c9\u00a0PARIS", "SKU-\u00d8\u00b0", "Lyon"]})
    refuse_utf8_read_as_single_byte("accounts", "a.csv", real, {}, "latin-1")  # no error
    garbled = pd.DataFrame({"region": ["M\u00c3\u00bcnchen", "Lyon"]})
    with pytest.raises(DataError, match="UTF-8"):
        refuse_utf8_read_as_single_byte("accounts", "a.csv", garbled, {}, "latin-1")
