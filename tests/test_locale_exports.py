"""Order books exported in France, Germany, Spain, Italy, the Netherlands and Poland (a locale audit,
session 24): month names of those languages, the spreadsheet's 'no value' in the user's language in an id
column, and currency signs written after the number. Each is read as the plain book, or refused naming the
file, column, rows, values and what to do: never read silently wrong (a month dropped, the lines without a
customer made one account). Tiny files; a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.data import load_order_book
from training.errors import DataError

MAP = {"order_id": "Facture", "order_date": "Date", "account_id": "Client", "sku": "Article",
       "quantity": "Quantite", "unit_price": "Prix"}
# (order, day, month, year, account, sku, quantity, price): real Online Retail lines, one per month
ROWS = [
    ("536365", 1, 12, 2010, "17850", "85123A", 6, 2.55),
    ("540001", 4, 1, 2011, "13047", "71053", 1200, 3.39),
    ("542001", 14, 2, 2011, "17850", "84406B", 8, 2.75),
    ("545001", 25, 3, 2011, "13047", "85123A", 24, 2.55),
    ("548001", 6, 4, 2011, "12583", "22745", 12, 2.1),
    ("550001", 13, 5, 2011, "17850", "22748", 6, 2.1),
    ("555001", 20, 6, 2011, "12583", "71053", 48, 3.39),
    ("558001", 15, 7, 2011, "13047", "84406B", 4, 2.75),
    ("562001", 22, 8, 2011, "17850", "85123A", 32, 2.55),
    ("566001", 16, 9, 2011, "12583", "22745", 10, 2.1),
    ("572001", 20, 10, 2011, "13047", "22748", 6, 2.1),
    ("577001", 17, 11, 2011, "17850", "71053", 1000, 3.39),
    ("580001", 6, 12, 2011, "12583", "85123A", 12, 2.55),
]
FR = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."]
IT = ["gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"]
PL = ["sty", "lut", "mar", "kwi", "maj", "cze", "lip", "sie", "wrz", "paź", "lis", "gru"]
FR_FULL = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))


def _book(tmp_path: Path, lines: list[list[str]], *, encoding: str = "utf-8", bom: bool = True, **opts):
    """A ';'-separated export (with a UTF-8 byte order mark, as Excel writes 'CSV UTF-8') and its config."""
    text = "\r\n".join(";".join(r) for r in [list(opts.get("columns", MAP).values()), *lines]) + "\r\n"
    p = tmp_path / "export.csv"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    entry = {"path": p.name, "columns": MAP, "sep": ";", "decimal": ",", **opts}
    if encoding != "utf-8":
        entry["encoding"] = encoding
    cfg = tmp_path / "export.yaml"
    cfg.write_text(yaml.safe_dump({"name": "locale", "data": {"as_of": "2011-12-31", "order_lines": entry}},
                                  allow_unicode=True))
    return load_order_book(cfg)


def _comma(v: float) -> str:
    return f"{v:g}".replace(".", ",")


def _lines(date, account=lambda a, i: a, price=_comma, rows=ROWS) -> list[list[str]]:
    return [[o, date(d, m, y), account(a, i), s, _comma(q), price(p)]
            for i, (o, d, m, y, a, s, q, p) in enumerate(rows)]


def _refused(tmp_path: Path, lines: list[list[str]], **opts) -> str:
    with pytest.raises(DataError) as e:
        _book(tmp_path, lines, **opts)
    return str(e.value)


@pytest.mark.parametrize(("names", "layout", "words", "language"), [
    (FR, "{d:02d}-{mon}-{y}", "déc, janv, févr, mars, avr, mai, juin, juil", "French"),
    (FR_FULL, "{d} {mon} {y}", "décembre, janvier, février, mars, avril, mai, juin, juillet", "French"),
    (IT, "{d:02d}-{mon}-{y}", "dic, gen, mag, giu, lug, ago, set, ott", "Italian"),
    (PL, "{d} {mon} {y}", "gru, sty, lut, kwi, maj, cze, lip, sie", "Polish"),
])
def test_month_names_of_another_language_are_named_when_most_dates_do_not_parse(tmp_path, names, layout, words,
                                                                                 language):
    """A French, Italian or Polish export whose months mostly have no English spelling: over half the dates do
    not parse, and the refusal said only 'cannot be parsed as a date ... set date_format:' (which cannot read
    them); it names the month words and their language, and says to export the months as numbers."""
    msg = _refused(tmp_path, _lines(lambda d, m, y: layout.format(d=d, mon=names[m - 1], y=y)))
    first = layout.format(d=1, mon=names[11], y=2010)
    assert "export.csv: order_lines.order_date (column 'Date'): " in msg
    assert f"e.g. '{first}'" in msg and "(first rows [1, 2, " in msg
    assert (f"the words {words} are month names in {language}, and dates are read with English month names only "
            "(date_format: does not change that): export the column with months as numbers (31.12.2024) or as ISO "
            "dates (2024-12-31)") in msg
    assert "set date_format: / dayfirst:" not in msg


def test_french_august_beside_september_abbreviations_is_refused_not_dropped(tmp_path):
    """A French export of August to November: 'sept.', 'oct.', 'nov.' parse as English, 'août' (written without
    the '.' of the others, so not 'written the same way') did not, and August was dropped row by row as
    unparseable_date, a month without demand, silently."""
    rows = [r for r in ROWS if r[3] == 2011 and 8 <= r[2] <= 11]
    msg = _refused(tmp_path, _lines(lambda d, m, y: f"{d} {FR[m - 1]} {y}", rows=rows))
    assert ("order_lines.order_date (column 'Date'): 1 value(s) such as '22 août 2011' (first rows [1]; 1 = the first "
            "data row) cannot be parsed as a date") in msg
    assert "the words août are no English month names" in msg
    rows[0] = ("562001", 0, 0, 0, *rows[0][4:])  # text without a date is dirt, dropped and counted as before
    book = _book(tmp_path, _lines(lambda d, m, y: "not set" if not d else f"{d} {FR[m - 1]} {y}", rows=rows))
    assert book.report.tables["order_lines"].reasons["unparseable_date"]["rows"] == 1


@pytest.mark.parametrize("missing", ["#N/B", "#N/D", "#N/D!", "k.A.", "n.v.", "#WERT!"])
def test_no_customer_written_in_the_users_language_is_an_empty_account(tmp_path, missing):
    """A Dutch Excel writes a failed lookup #N/B (Italian and Polish #N/D, #N/D!), a German or Dutch export 'k.A.'
    / 'n.v.' for 'not given': the lines without a customer were one account '#N/B', scored for churn and
    ranked as a dealer. They are lines without an account: missing_account, still demand of their SKU."""
    book = _book(tmp_path, _lines(lambda d, m, y: f"{d:02d}.{m:02d}.{y}",
                                  account=lambda a, i: missing if i % 3 == 0 else a))
    assert sorted(book.order_lines["account_id"].unique()) == ["12583", "13047", "17850"]
    assert missing not in set(book.order_lines["account_id"])
    assert book.report.tables["order_lines"].reasons["missing_account"]["rows"] == 5
    assert len(book.unattributed_lines) == 5 and book.unattributed_lines["quantity"].sum() == 6 + 24 + 48 + 10 + 12


@pytest.mark.parametrize(("sign", "price"), [("zł", "2,55 zł"), ("Kč", "2,55 Kč"), ("kr", "2,55 kr")])
def test_prices_with_a_currency_written_after_them_in_central_europe_are_named(tmp_path, sign, price):
    """'2,55 zł' (a Polish shop's export) was 'not a number' in 13 of 13 values, with no word of the currency,
    and a few such cells among plain prices would have been dropped row by row as missing_price; refused as
    '£2.55' and '2,55 €' are, naming the sign."""
    msg = _refused(tmp_path, _lines(lambda d, m, y: f"{d:02d}.{m:02d}.{y}",
                                    price=lambda p: _comma(p) + " " + sign))
    assert (f"order_lines.unit_price (column 'Prix') holds 13 number(s) written with a currency sign or code ({sign}), "
            f"e.g. '{price}'") in msg
    assert "export the column with a number format without the currency" in msg



@pytest.mark.parametrize("unit", ["Ft", "kr", "lei", "Kč", "zł", "Fr."])
def test_letters_after_a_quantity_are_no_currency(tmp_path, unit):
    """The signs written after prices in Central Europe are currencies in price and amount columns only: a
    quantity written '10 Ft' (ten feet), '12 kr' or '5 lei' was refused as 'written with a currency sign (Ft)'.
    Elsewhere they are letters after a number like '12 PCS': not a number, dropped and counted row by row, and
    fatal when most values are; '£10' and '10 EUR' stay refused as a currency in every column."""
    cell = lambda q, i: _comma(q) + " " + unit if i == 1 else _comma(q)  # noqa: E731
    lines = [[o, f"{d:02d}.{m:02d}.{y}", a, s, cell(q, i), _comma(p)]
             for i, (o, d, m, y, a, s, q, p) in enumerate(ROWS)]
    book = _book(tmp_path, lines)
    assert book.report.tables["order_lines"].reasons["missing_quantity"]["rows"] == 1
    assert book.order_lines["quantity"].sum() == sum(r[6] for r in ROWS) - 1200
    msg = _refused(tmp_path, [[*r[:4], r[4] + " " + unit, r[5]] for r in _lines(lambda d, m, y: f"{d:02d}.{m:02d}.{y}")])
    assert "order_lines.quantity (column 'Quantite') should hold numbers but 13 of 13 non-empty values are not " \
           f"numbers, e.g. '6 {unit}'" in msg
    assert "currency" not in msg
    amounts = [[*r, _comma(round(q * p, 2)) + " " + unit] for r, (*_, q, p) in
               zip(_lines(lambda d, m, y: f"{d:02d}.{m:02d}.{y}"), ROWS, strict=True)]
    msg = _refused(tmp_path, amounts, columns={**MAP, "line_amount": "Montant"})
    assert f"order_lines.line_amount (column 'Montant') holds 13 number(s) written with a currency sign or code ({unit})" in msg


@pytest.mark.parametrize(("sign", "cell"), [("£", "£10"), ("EUR", "10 EUR"), ("$", "$ 10")])
def test_classic_currency_signs_in_a_quantity_are_still_named(tmp_path, sign, cell):
    """'£10' or '10 EUR' in a quantity column is a price mapped or pasted there: refused naming the sign, as
    before the Central European signs were added for prices."""
    lines = _lines(lambda d, m, y: f"{d:02d}.{m:02d}.{y}")
    lines[1][4] = cell
    msg = _refused(tmp_path, lines)
    assert (f"order_lines.quantity (column 'Quantite') holds 1 number(s) written with a currency sign or code "
            f"({sign}), e.g. '{cell}' (first rows [2]; 1 = the first data row)") in msg

def test_polish_and_german_exports_read_as_the_plain_book(tmp_path):
    """cp1250 with no-break spaces between thousands and dd.mm.yyyy (Polish Excel), and UTF-8 with a BOM, '.'
    thousands and SAP's trailing minus: both read to the same quantities, revenue and dates as the plain lines."""
    cancel = ("C577002", 18, 11, 2011, "17850", "71053", -1000, 3.39)
    rows = [*ROWS, cancel]
    want_qty = sum(q for *_, q, _ in ROWS) - 1000  # the cancellation takes 1000 units off the order it cancels
    want_rev = round(sum(q * p for *_, q, p in ROWS) - 1000 * 3.39, 2)

    def thousands(sep: str, neg: str):
        return lambda q: (f"{abs(q):,.0f}".replace(",", sep) + "-" if q < 0 and neg == "trailing"
                          else f"{q:,.0f}".replace(",", sep))

    for sep, neg, enc in (("\u00a0", "leading", "cp1250"), (".", "trailing", "utf-8")):
        fmt = thousands(sep, neg)
        lines = [[o, f"{d:02d}.{m:02d}.{y}", a, s, fmt(q), _comma(p)] for o, d, m, y, a, s, q, p in rows]
        opts = {"negatives": "trailing"} if neg == "trailing" else {}
        book = _book(tmp_path, lines, encoding=enc, bom=enc == "utf-8", cancellation_prefix="C", **opts)
        ol = book.order_lines
        assert ol["quantity"].sum() == want_qty
        assert round(ol["line_amount"].sum(), 2) == want_rev
        assert str(ol["order_date"].min()) == "2010-12-01 00:00:00"
        assert str(ol["order_date"].max()) == "2011-12-06 00:00:00"


@pytest.mark.parametrize(("opts", "quantity", "price"), [
    ({"decimal": ".", "thousands": "'"}, "1\u2019200", "1\u2019234.50"),  # Windows de-CH: 1’234.50
    ({}, "1\u2019200", "1\u2019234,50"),  # decimal: ',' (the file's default here) with the same apostrophe
    ({}, "1.200\u00a0", "1.234,50\u00a0"),  # a no-break space after the number
])
def test_swiss_apostrophe_and_trailing_no_break_space_read_as_the_number(tmp_path, opts, quantity, price):
    """Excel on Windows in Switzerland groups thousands with the typographic apostrophe (U+2019), not "'":
    the order of 1’200 units and the price of 1’234.50 were dropped row by row as missing_quantity /
    missing_price under thousands: "'" (and with no setting, not refused as "'" is). A value followed by a
    no-break space was refused as 'written with a comma: set decimal: ','' while decimal: ',' was set."""
    rows = ROWS[:4]
    cell = {1200: quantity, 2.75: price}

    def fmt(v: float) -> str:
        if v in cell:
            return cell[v]
        return f"{v:g}" if opts.get("decimal") == "." else _comma(v)

    lines = [[o, f"{d:02d}.{m:02d}.{y}", a, s, fmt(q), fmt(p)] for o, d, m, y, a, s, q, p in rows]
    book = _book(tmp_path, lines, **opts)
    assert sorted(book.order_lines["quantity"]) == [6, 8, 24, 1200]
    assert sorted(book.order_lines["unit_price"]) == [2.55, 2.55, 3.39, 1234.5]
    assert book.report.tables["order_lines"].reasons == {}


def test_swiss_apostrophe_without_a_setting_is_refused(tmp_path):
    """Without thousands: "'", 1’200 (U+2019) is refused as 1'200 is, not dropped as not a number."""
    lines = [[o, f"{d:02d}.{m:02d}.{y}", a, s, "1\u2019200" if q == 1200 else f"{q:g}", f"{p:g}"]
             for o, d, m, y, a, s, q, p in ROWS[:4]]
    msg = _refused(tmp_path, lines, decimal=".")
    assert ("order_lines.quantity (column 'Quantite') holds 1 number(s) written with a space or ' between thousands, "
            "e.g. '1\u2019200' (first rows [2]; 1 = the first data row)") in msg


@pytest.mark.parametrize("thousands", [" ", "'"])
def test_dot_grouped_figure_under_decimal_comma_and_space_thousands_is_refused(tmp_path, thousands):
    """decimal: ',' with thousands: ' ' (a French export: 1 234,50) or "'" (Swiss: 1'234,50): a quantity written
    1.200 (from another system, or another column's format) is in neither layout and was read as written, 1.2
    units instead of 1200, silently. Refused, naming the value and that decimal: ',' alone reads both."""
    sep = "\u00a0" if thousands == " " else "'"
    lines = [[o, f"{d:02d}.{m:02d}.{y}", a, s, "1.200" if q == 1200 else f"{q:g}",
              f"1{sep}234,50" if p == 2.75 else _comma(p)] for o, d, m, y, a, s, q, p in ROWS[:4]]
    msg = _refused(tmp_path, lines, thousands=thousands)
    assert ("order_lines.quantity (column 'Quantite') holds 1 value(s) such as '1.200' (first rows [2]; 1 = the first "
            f"data row) with '.' before three digits, but under data.order_lines decimal: ',' with thousands: "
            f"{thousands!r} reads '.' as neither the decimal mark nor a thousands separator, so 1.200 would be read as "
            "1.2: if '.' groups thousands there, remove thousands: from data.order_lines") in msg
    book = _book(tmp_path, lines)  # as the message says: decimal: ',' alone
    assert sorted(book.order_lines["quantity"]) == [6, 8, 24, 1200]
    assert sorted(book.order_lines["unit_price"]) == [2.55, 2.55, 3.39, 1234.5]


def test_semicolon_on_hand_file_with_decimal_commas_names_the_separator(tmp_path):
    """A French stock count for --on-hand, saved by Excel with ';' and decimal commas: the record with 12,5 has
    two fields where the header (read with ',') has one, and the refusal spoke of quoting ',' instead of the
    ';' separator the file uses."""
    from training.commands._demand_on_hand import _read_on_hand

    f = tmp_path / "stock.csv"
    f.write_text("sku;location;on_hand\n85123A;ALL;1 200\n71053;ALL;12,5\n")
    with pytest.raises(DataError) as e:
        _read_on_hand(f, ["sku", "location"])
    assert "the header is one column 'sku;location;on_hand': the file looks ';'-separated; write it " \
           "comma-separated with '.' as the decimal mark" in str(e.value)


def test_polish_export_read_under_another_single_byte_encoding_names_the_encoding(tmp_path):
    """A Polish Excel saves CSV in cp1250; read with encoding: cp1252 (a Western European colleague's config)
    the mapped header 'Ilość' was missing and the refusal asked 'did you mean 'Iloœæ'?': mapping that name
    reads the file with every Polish letter garbled. It names the file's encoding instead."""
    cols = {**MAP, "quantity": "Ilość"}
    text = ";".join(cols.values()) + "\r\n" + "536365;01.12.2010;17850;85123A;6;2,55\r\n"
    (tmp_path / "export.csv").write_bytes(text.encode("cp1250"))
    cfg = tmp_path / "export.yaml"
    entry = {"path": "export.csv", "columns": cols, "sep": ";", "decimal": ",", "encoding": "cp1252"}
    cfg.write_text(yaml.safe_dump({"name": "pl", "data": {"as_of": "2011-12-31", "order_lines": entry}},
                                  allow_unicode=True))
    with pytest.raises(DataError) as e:
        load_order_book(cfg)
    assert ("order_lines is missing required column(s): 'quantity' mapped from 'Ilość'; the header has 'Iloœæ', "
            "which is 'Ilość' in cp1250 text: set encoding: cp1250.") in str(e.value)
    assert "did you mean" not in str(e.value)
