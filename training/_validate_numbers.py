"""Numeric column parsing of :mod:`training.validate`: ``_to_float`` and ``_to_flag``, the masks and
fix texts for infinite and unreadable cells, and the refusals of numbers written with a comma or a
currency sign/code (a column mapped by mistake is fatal, ``_fatal_if_mostly``).

Split from :mod:`training._validate_columns` (text/id helpers and message pieces, which it
imports) to keep each module under ~500 lines; the patterns and their refusals stay together here.
Private helper module of :mod:`training.validate` (import the public names from there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from training._validate_columns import (
    _FATAL_SHARE,
    _examples_values,
    _first_rows,
    _from,
    _lower,
    _pa_str,
    _pa_to_series,
    _to_str,
)
from training.contract import TABLES
from training.errors import DataError


def _to_float(
    raw: pd.Series, *, col: str, table: str, source: str, mapping: Mapping[str, str]
) -> pd.Series:
    """Parse a numeric column; fatal if most non-empty values are not numbers, or if the column is
    a boolean one (Parquet / database true/false: read as 1 and 0, a flag mapped as the quantity
    became a book of one-unit lines, and its false rows zero-quantity drops)."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        shown = ", ".join(str(v).lower() for v in pd.unique(raw.dropna())[:2])
        raise DataError(f"{source}: {table}.{col}{_from(col, mapping)} is a column of true/false values ({shown}), not "
                        f"numbers: check that data.{table}.columns maps {col} to the column of figures")
    if pd.api.types.is_numeric_dtype(raw.dtype):  # Parquet / database numbers: inf is not a number, as in a CSV
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        return num.where(np.isfinite(num.to_numpy()))
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _pa_str(raw)
    try:  # fast path: every non-empty value is a number
        num = pd.Series(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), index=raw.index, dtype="float64")
        st = None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        st = _pa_to_series(arr, raw.index)
        num = pd.to_numeric(st, errors="coerce").astype("float64")
    not_number = num.isna().to_numpy()  # inf is a number here (dropped, and named, by the caller)
    num = num.where(np.isfinite(num.to_numpy()))
    present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    if st is None:
        return num
    _refuse_comma_numbers(st, present & not_number, col=col, table=table, source=source, mapping=mapping)
    _refuse_currency_numbers(st, present & not_number, col=col, table=table, source=source, mapping=mapping)
    _refuse_export_numbers(st, present & not_number, col=col, table=table, source=source, mapping=mapping)
    _fatal_if_mostly(present & not_number, present, st,
                     f"{source}: {table}.{col}{_from(col, mapping)} should hold numbers", "are not numbers")
    return num


MAX_MONEY = 1e15
"""The largest price or amount an order line may hold, in its currency (a quadrillion: far beyond any
order line, even in a currency of small units). A price of 1e300 was read, and the book's revenue,
each account's revenue at risk and the dealer potentials were figures of 300 digits."""


MAX_RESOLUTION_DAYS = 36_500
"""The longest a service case may take to resolve, in days (100 years: beyond any book). A
resolution_days of 1e300 was read, and the case counted as open at every cutoff (raised + 1e300
days is never reached), silently, in the churn features open_events / resolution_days_mean_180d."""


def _refuse_beyond(num: pd.Series, raw: pd.Series, limit: float, *, col: str, table: str, source: str,
                   mapping: Mapping[str, str], expected: str, slip: str = "an id or amount",
                   signed: bool = True) -> None:
    """Finite numbers larger than ``limit`` (either sign) are refused, naming the rows and values as
    written: not dirt to drop row by row (the line may be a real sale in another unit, or an id or
    amount in the wrong column), and kept they made the forecasts' bands and stock absurd (one line
    of 1e300 units: an order of inf units)."""
    v = np.nan_to_num(num.to_numpy(dtype="float64"), nan=0.0, posinf=0.0, neginf=0.0)
    over = (np.abs(v) if signed else v) > limit  # unsigned: negatives are the caller's (e.g. set to empty)
    if not over.any():
        return
    pos = np.flatnonzero(over)
    vals = list(dict.fromkeys(str(x).strip() for x in raw.iloc[pos[:200]].tolist()))
    eg = ", ".join(vals[:3]) + (" ..." if len(vals) > 3 else "")
    raise DataError(
        f"{source}: {table}.{col}{_from(col, mapping)} holds {len(pos):,} value(s) beyond {limit:,.0f}"
        f"{' (either sign)' if signed else ''}, e.g. {eg} ({_first_rows(over)}); expected {expected} between "
        f"{f'-{limit:,.0f}' if signed else '0'} and {limit:,.0f}: check those rows (a figure in another unit, or "
        f"{slip} in the {col} column)"
    )


def _infinite(raw: pd.Series, among: np.ndarray) -> np.ndarray:
    """Which of the rows ``among`` (read as empty by :func:`_to_float`, which keeps finite numbers
    only) hold an infinite number: inf, -inf, Infinity or 1e999 as text, float inf from Parquet or
    a database. Reports name those as infinite, not as empty."""
    out = np.zeros(len(raw), dtype=bool)
    idx = np.flatnonzero(among)
    if not len(idx) or pd.api.types.is_bool_dtype(raw.dtype):
        return out
    vals = raw.iloc[idx]
    if pd.api.types.is_numeric_dtype(raw.dtype):
        num = pd.to_numeric(vals, errors="coerce").astype("float64").to_numpy()
    else:
        def number(v: Any) -> float:
            try:
                return float(str(v).strip())
            except (TypeError, ValueError):
                return float("nan")

        num = np.array([number(v) for v in vals.tolist()], dtype="float64")
    out[idx] = np.isinf(num)
    return out


def _infinite_cells(raw: pd.Series, parsed: pd.Series) -> np.ndarray:
    """The cells of ``raw`` that :func:`_to_float` (``parsed``) read as empty because they hold an
    infinite number (inf, -Infinity, 1e999, float inf): a mask over all rows."""
    return _infinite(raw, parsed.isna().to_numpy() & raw.notna().to_numpy())


def _infinite_fix_text(raw: pd.Series, mask: np.ndarray, col: str, how: str) -> str:
    """What a fix did to infinite cells of ``col``, with the first rows and their values as written:
    'infinite line_amount (inf or -inf; rows [2, 3]: inf, -Infinity; 1 = the first data row) set to ...'."""
    pos = np.flatnonzero(mask)
    vals = ", ".join(dict.fromkeys(str(v).strip() for v in raw.iloc[pos[:200]].tolist()))
    more = " ..." if len(pos) > 5 else ""
    return (f"infinite {col} (inf or -inf; rows {(pos[:5] + 1).tolist()}{more}: {vals}; 1 = the first data row) "
            f"{how}; a finite number is expected")


def _unreadable_cells(raw: pd.Series, parsed: pd.Series, infinite: np.ndarray) -> np.ndarray:
    """The cells of ``raw`` that hold text :func:`_to_float` (``parsed``) could not read as a number
    ('abc', 'n/a'): not empty (after trimming) and not ``infinite`` (:func:`_infinite_cells`)."""
    out = np.zeros(len(raw), dtype=bool)
    idx = np.flatnonzero(parsed.isna().to_numpy() & raw.notna().to_numpy() & ~infinite)
    if len(idx):  # only the cells the parse left empty: a whole column as text took 7 s at 10 M rows
        text = raw.iloc[idx].astype("string").str.strip()
        out[idx] = (text.notna() & (text != "")).to_numpy()
    return out


def _unreadable_fix_text(raw: pd.Series, mask: np.ndarray, col: str, how: str) -> str:
    """What a fix did to cells of ``col`` that are not numbers, with the first rows and (up to 3 of)
    their values as written: "line_amount that is not a number (rows [2, 7]: 'abc', 'n/a'; 1 = the
    first data row) set to ..."."""
    pos = np.flatnonzero(mask)
    vals = list(dict.fromkeys(str(v).strip() for v in raw.iloc[pos[:200]].tolist()))
    shown = ", ".join(repr(v) for v in vals[:3]) + (" ..." if len(vals) > 3 else "")
    more = " ..." if len(pos) > 5 else ""
    return (f"{col} that is not a number (rows {(pos[:5] + 1).tolist()}{more}: {shown}; 1 = the first data row) "
            f"{how}; a number is expected")


def _written_as(st: pd.Series, bad: np.ndarray, pattern: str) -> tuple[np.ndarray, str] | None:
    """The positions of the unreadable values (``bad``) that match ``pattern`` whole, and up to three
    distinct ones as examples; None when there are none."""
    if not bad.any():
        return None
    looks = np.zeros(len(st), dtype=bool)
    looks[bad] = st[bad].astype(str).str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
    if not looks.any():
        return None
    pos = np.flatnonzero(looks)
    return pos, ", ".join(repr(v) for v in list(dict.fromkeys(st.iloc[pos[:200]].astype(str)))[:3])


# a number written with a comma (decimal comma 8,01 / 1.234,5 or thousands 1,234.50), also with spaces
_COMMA_NUMBER = r"^[+-]?\d[\d.' \u00a0\u202f\u2019]*,[\d.,' \u00a0\u202f\u2019]*$"


def _refuse_comma_numbers(st: pd.Series, bad: np.ndarray, *, col: str, table: str, source: str,
                          mapping: Mapping[str, str]) -> None:
    """Numbers written with a comma (a decimal comma, or a thousands separator) are not dirt to
    drop row by row: dropping them loses e.g. every order of 1,000 units or more. Refuse them,
    naming the rows and the ``decimal:`` / ``thousands:`` setting that reads them."""
    found = _written_as(st, bad, _COMMA_NUMBER)
    if found is None:
        return
    pos, eg = found
    raise DataError(
        f"{source}: {table}.{col}{_from(col, mapping)} holds {len(pos):,} number(s) written with a comma, e.g. {eg} "
        f"(first rows {(pos[:5] + 1).tolist()}; 1 = the first data row); numbers are read with '.' as the decimal "
        f"mark and no thousands separator: set decimal: ',' (8,01 or 1.234,50) or thousands: ',' (1,234.50) "
        f"under data.{table} in the config"
    )


# a number with a currency sign or ISO code before or after it: £2.55, $ 1,200.00, 2,55 €, 12.50 GBP, EUR -3
_CURRENCY_CODES = ("AED AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF IDR ILS INR JPY KRW MXN MYR NOK NZD PHP PLN "
                   "RON RUB SAR SEK SGD THB TRY TWD USD ZAR")
"""ISO 4217 codes a number may be written with (a unit such as '12 PCS' is no currency)."""


_CURRENCY = r"[£$€¥₹]|" + "|".join(_CURRENCY_CODES.split())
"""Signs and codes that are a currency in any number column."""


_MONEY_CURRENCY = r"zł|Kč|Ft|kr|lei|Fr\.|" + _CURRENCY
"""In a price or amount column, also the signs written after the number in Poland, Czechia, Hungary,
Scandinavia, Romania and Switzerland (2,55 zł was 'not a number', with no word of the currency). Elsewhere
they are letters after a number like any unit ('10 Ft' of quantity is ten feet, as '12 PCS' is twelve
pieces): not a number, dropped and counted row by row (fatal when most are), not refused as a currency."""


_MONEY_COLUMNS = frozenset(c.name for cols in TABLES.values() for c in cols if c.unit.startswith("currency"))
"""The price and amount columns of the contract (unit_price, line_amount)."""


def _currency_number(signs: str) -> str:
    return (rf"^\s*(?:[+-]?\s*(?:{signs})\s*[+-]?\s*\d[\d.,' \u00a0\u202f\u2019]*"
            rf"|[+-]?\d[\d.,' \u00a0\u202f\u2019]*\s*(?:{signs}))\s*$")


def _refuse_currency_numbers(st: pd.Series, bad: np.ndarray, *, col: str, table: str, source: str,
                             mapping: Mapping[str, str]) -> None:
    """Numbers written with a currency sign or code (``£2.55``, ``12.50 GBP``) are not dirt to drop
    row by row either: a few such cells (one price pasted from another sheet) lost their order lines
    as ``missing_price``. The sign is not stripped, since a book with several currencies would be
    summed as one: refuse, naming the rows, values and signs."""
    currency = _MONEY_CURRENCY if col in _MONEY_COLUMNS else _CURRENCY
    found = _written_as(st, bad, _currency_number(currency))
    if found is None:
        return
    pos, eg = found
    signs = sorted(set(st.iloc[pos].astype(str).str.extract(f"({currency})", expand=False).dropna()))
    raise DataError(
        f"{source}: {table}.{col}{_from(col, mapping)} holds {len(pos):,} number(s) written with a currency sign "
        f"or code ({', '.join(signs)}), e.g. {eg} (first rows {(pos[:5] + 1).tolist()}; 1 = the first data row); "
        "expected plain numbers such as 2.55: export the column with a number format without the currency "
        "(one currency per book; a currency column can be mapped as currency:)"
    )


# numbers as ERP / spreadsheet exports write them that no setting reads, each with what to do
_EXPORT_NUMBERS = (
    (r"^\s*[+-]?\d{1,3}(?:[ '\u00a0\u202f\u2019]\d{3})+(?:\.\d+)?\s*$",
     "with a space or ' between thousands",
     "set thousands: ' ' (a space, also the non-breaking one spreadsheets write) or thousands: \"'\" under "
     "data.{table} in the config; with a decimal comma (1 234,50), decimal: ','"),
    (r"^\s*[+-]?\d{1,3}(?:\.\d{3}){2,}\s*$",
     "with '.' between thousands",
     "set decimal: ',' (1.234.567 or 1.234,50) or thousands: '.' under data.{table} in the config"),
    # 6\u2212 (a typographic minus or a dash after the number) too: negatives: trailing reads it as 6-
    (r"^\s*\d[\d.,' \u00a0\u202f\u2019]*\s*[-\u2212\u2012\u2013\u2014]\s*$|^\s*\(\s*\d[\d.,' \u00a0\u202f\u2019]*\s*\)\s*$",
     "with the minus sign after them or in parentheses (6- or (6), as SAP and accounting formats write negatives)",
     "set negatives: trailing (6-) or negatives: parentheses ((6)) under data.{table} in the config, or export "
     "them with the minus sign first (-6): read as not numbers they would be dropped, and with them every return "
     "and cancellation line"),
    (r"^\s*[\u2212\u2012\u2013\u2014]\s*\d[\d.,' \u00a0\u202f\u2019]*\s*$",
     "with a minus sign that is not the ASCII '-' (the typographic \u2212 or a dash, as some spreadsheets write it)",
     "export them with the ASCII minus sign (-6): read as not numbers they would be dropped, and with them every "
     "return and cancellation line (no setting reads them)"),
)


def _refuse_export_numbers(st: pd.Series, bad: np.ndarray, *, col: str, table: str, source: str,
                           mapping: Mapping[str, str]) -> None:
    """Numbers written with a space / non-breaking space / ' / several '.' between thousands, or negatives
    written 6- or (6), are refused like the comma ones: dropped one by one as not numbers, they were
    every order of 1 000 units or more (a French export writes 1 200 with a non-breaking space) or every return and cancellation
    line (SAP's '6-': its cancellations then took no units off the orders they cancel), with nothing
    but a count of missing quantities in the report."""
    for pattern, written, todo in _EXPORT_NUMBERS:
        found = _written_as(st, bad, pattern)
        if found is None:
            continue
        pos, eg = found
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)} holds {len(pos):,} number(s) written {written}, e.g. {eg} "
            f"(first rows {(pos[:5] + 1).tolist()}; 1 = the first data row); expected numbers such as 1234.5 or -6: "
            f"{todo.format(table=table)}"
        )


def _fatal_if_mostly(bad: np.ndarray, present: np.ndarray, shown: pd.Series, what: str, verb: str) -> None:
    """DataError when more than ``_FATAL_SHARE`` of the non-empty values are unreadable: a
    column mapped by mistake, not dirt to drop row by row."""
    if present.sum() and bad.sum() > _FATAL_SHARE * present.sum():
        raise DataError(f"{what} but {bad.sum():,} of {present.sum():,} non-empty values {verb}, "
                        f"e.g. {', '.join(_examples_values(shown, bad))} ({_first_rows(bad)})")


_FLAG_WORDS = {"true": 1.0, "yes": 1.0, "y": 1.0, "t": 1.0, "false": 0.0, "no": 0.0, "n": 0.0, "f": 0.0}


def _to_flag(raw: pd.Series, *, col: str, table: str, source: str, mapping: Mapping[str, str]) -> pd.Series:
    """A 0/1 flag column (e.g. ``promo``) as float64, NaN where empty or unreadable.

    Numbers and the words true/false, yes/no, y/n, t/f are read; like the numeric columns
    (``_to_float``), it is fatal when most non-empty values are neither (a text column mapped by
    mistake) instead of silently reading every row as 0."""
    if pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_numeric_dtype(raw.dtype):
        return pd.to_numeric(raw, errors="coerce").astype("float64")
    st = _lower(raw)
    num = pd.to_numeric(st, errors="coerce").astype("float64")
    num = num.where(num.notna(), st.map(_FLAG_WORDS).astype("float64"))
    present = st.notna().to_numpy()
    _fatal_if_mostly(present & num.isna().to_numpy(), present, _to_str(raw),
                     f"{source}: {table}.{col}{_from(col, mapping)} should hold 0/1 flags (or true/false, yes/no)",
                     "are neither")
    return num
