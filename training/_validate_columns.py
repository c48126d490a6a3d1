"""Column parsing and coercion helpers of :mod:`training.validate`: ids, text, numbers,
dates, required-column checks, duplicate masks.

Private helper module of :mod:`training.validate` (import the public names from there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.demand_data import TIME_ONLY_RE  # a time of day alone is no date (defined once, there)
from training.errors import DataError

_FATAL_SHARE = 0.5  # a numeric/date column whose non-empty values are mostly unparseable is fatal


def resolve_as_of(as_of: Any = None) -> pd.Timestamp:
    """The exclusive upper bound for dates: ``as_of`` (a midnight means its whole day) or now."""
    if as_of is None:
        return pd.Timestamp.now().floor("s") + pd.Timedelta(seconds=1)
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    if ts == ts.normalize():
        return ts + pd.Timedelta(days=1)
    return ts + pd.Timedelta(microseconds=1)


def _pa_str(s: pd.Series):  # type: ignore[no-untyped-def]
    """Text values of a non-numeric column as a pyarrow string array: trimmed, '' -> null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_string(s.dtype.pyarrow_dtype):
        arr = s.array.__arrow_array__()  # zero-copy: file sources arrive as Arrow strings
    elif isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_large_string(s.dtype.pyarrow_dtype):
        arr = s.array.__arrow_array__().cast(pa.string())
    else:
        try:
            arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects (ints, bytes ...): print them
            arr = pa.array(s.map(lambda v: None if _isna(v) else str(v)).to_numpy(dtype=object), type=pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _pa_to_series(arr, index: pd.Index) -> pd.Series:  # type: ignore[no-untyped-def]
    return pd.Series(_arrow_to_objects(arr), index=index, dtype=object)


def _to_str(s: pd.Series) -> pd.Series:
    """Values as stripped ``str`` (object dtype), missing as None/NaN; float 17850.0 -> '17850'."""
    if pd.api.types.is_float_dtype(s.dtype):
        return _pa_to_series(_id_arrow(s)[0], s.index)
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("string").astype(object).where(s.notna(), np.nan)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype(str).where(s.notna(), np.nan).astype(object)
    return _pa_to_series(_pa_str(s), s.index)


_FLOATY_ID = r"^(-?\d+)\.0+$"


def _id_arrow(s: pd.Series):  # type: ignore[no-untyped-def]
    """(ids as an Arrow string array, numpy mask of values changed from '123.0' / float 123.0 to '123')."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64")
        ok = ~np.isnan(v)
        integral = ok & (np.abs(v) < 1e15)
        integral[integral] = v[integral] == np.floor(v[integral])
        arr = pa.array(np.where(integral, v, 0).astype(np.int64), mask=~integral).cast(pa.string())
        other = ok & ~integral
        if other.any():  # non-integral float ids: rare, print them
            arr = pc.replace_with_mask(arr, pa.array(other), pa.array([repr(float(x)) for x in v[other]], pa.string()))
        return arr, integral
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return _pa_str(_to_str(s)), np.zeros(len(s), dtype=bool)
    arr = _pa_str(s)
    mask = pc.fill_null(pc.match_substring_regex(arr, _FLOATY_ID), False)
    changed = mask.to_numpy(zero_copy_only=False)
    if changed.any():
        arr = pc.if_else(mask, pc.replace_substring_regex(arr, r"\.0+$", ""), arr)
    return arr, changed


def _normalise_id(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(ids as str, mask of values changed from '123.0' (or float 123.0) to '123')."""
    arr, changed = _id_arrow(s)
    return _pa_to_series(arr, s.index), pd.Series(changed, index=s.index)


def _is_null(x: Any) -> np.ndarray:
    import pyarrow.compute as pc

    if isinstance(x, pd.Series):
        return x.isna().to_numpy()
    return pc.is_null(x).to_numpy(zero_copy_only=False)


def _take(x: Any, order: np.ndarray) -> np.ndarray:
    """Rows ``order`` of a Series or Arrow array as a numpy array (text -> object of str)."""
    if isinstance(x, pd.Series):
        return x.to_numpy()[order]
    return _arrow_to_objects(x.take(order))


def _arrow_to_objects(arr) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Arrow text -> numpy object array with ONE Python str per distinct value (ids repeat a
    lot: this is ~8 bytes a row instead of ~60)."""
    import pyarrow.compute as pc

    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr)
    uniques = np.append(enc.dictionary.to_numpy(zero_copy_only=False).astype(object), None)
    idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    return uniques[idx]


def _startswith(s: Any, prefix: str) -> np.ndarray:
    import pyarrow.compute as pc

    arr = _pa_str(s) if isinstance(s, pd.Series) else s
    return pc.fill_null(pc.starts_with(arr, prefix), False).to_numpy(zero_copy_only=False)


def _lower(s: pd.Series) -> pd.Series:
    import pyarrow.compute as pc

    return _pa_to_series(pc.utf8_lower(_pa_str(s)), s.index)


def _examples_values(raw: pd.Series, mask: np.ndarray, n: int = 3) -> list[str]:
    vals = raw[mask].dropna().astype(str).unique()[:n]
    return [repr(v) for v in vals]


def _to_float(
    raw: pd.Series, *, col: str, table: str, source: str, mapping: Mapping[str, str]
) -> pd.Series:
    """Parse a numeric column; fatal if most non-empty values are not numbers."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("float64")
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
    _fatal_if_mostly(present & not_number, present, st,
                     f"{source}: {table}.{col}{_from(col, mapping)} should hold numbers", "are not numbers")
    return num


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
_COMMA_NUMBER = r"^[+-]?\d[\d.' \u00a0\u202f]*,[\d.,' \u00a0\u202f]*$"


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
_CURRENCY_NUMBER = (rf"^\s*(?:[+-]?\s*(?:{_CURRENCY})\s*[+-]?\s*\d[\d.,' \u00a0\u202f]*"
                    rf"|[+-]?\d[\d.,' \u00a0\u202f]*\s*(?:{_CURRENCY}))\s*$")


def _refuse_currency_numbers(st: pd.Series, bad: np.ndarray, *, col: str, table: str, source: str,
                             mapping: Mapping[str, str]) -> None:
    """Numbers written with a currency sign or code (``£2.55``, ``12.50 GBP``) are not dirt to drop
    row by row either: a few such cells (one price pasted from another sheet) lost their order lines
    as ``missing_price``. The sign is not stripped, since a book with several currencies would be
    summed as one: refuse, naming the rows, values and signs."""
    found = _written_as(st, bad, _CURRENCY_NUMBER)
    if found is None:
        return
    pos, eg = found
    signs = sorted(set(st.iloc[pos].astype(str).str.extract(f"({_CURRENCY})", expand=False).dropna()))
    raise DataError(
        f"{source}: {table}.{col}{_from(col, mapping)} holds {len(pos):,} number(s) written with a currency sign "
        f"or code ({', '.join(signs)}), e.g. {eg} (first rows {(pos[:5] + 1).tolist()}; 1 = the first data row); "
        "expected plain numbers such as 2.55: export the column with a number format without the currency "
        "(one currency per book; a currency column can be mapped as currency:)"
    )


def _fatal_if_mostly(bad: np.ndarray, present: np.ndarray, shown: pd.Series, what: str, verb: str) -> None:
    """DataError when more than ``_FATAL_SHARE`` of the non-empty values are unreadable: a
    column mapped by mistake, not dirt to drop row by row."""
    if present.sum() and bad.sum() > _FATAL_SHARE * present.sum():
        raise DataError(f"{what} but {bad.sum():,} of {present.sum():,} non-empty values {verb}, "
                        f"e.g. {', '.join(_examples_values(shown, bad))} ({_first_rows(bad)})")


ISOLATED_YEARS = 5  # an order date this far before all later ones, on few rows, is a typo or a placeholder
ISOLATED_SHARE = 0.01  # "few": at most this share of the dated rows (at least one row)


def _isolated_early(dates: pd.Series, valid: np.ndarray) -> tuple[np.ndarray, pd.Timestamp | None]:
    """Rows (among ``valid``) dated more than ``ISOLATED_YEARS`` before every later date, when they are at
    most ``ISOLATED_SHARE`` of the valid rows: a single 1900-01-01 (an export's empty-date placeholder) or
    a year typed wrong among 2022-2024 dates, which would stretch the weekly panels over a century. Also the
    first date kept (None when no row is flagged). Linear time unless the earliest 1% spread over the gap."""
    out = np.zeros(len(dates), dtype=bool)
    v = dates.to_numpy(dtype="datetime64[ns]")[valid].view("i8")
    k = max(int(ISOLATED_SHARE * len(v)), 1)  # at most k rows may be dropped so
    if len(v) <= k:
        return out, None
    gap = int(pd.Timedelta(days=round(365.25 * ISOLATED_YEARS)).value)
    kth = np.partition(v, k)[k]  # the (k+1)-th earliest date: it and all after it stay
    if kth - v.min() <= gap:
        return out, None
    u, counts = np.unique(v[v <= kth], return_counts=True)
    before = np.cumsum(counts)[:-1]  # rows at or before u[i]
    big = np.flatnonzero((np.diff(u) > gap) & (before <= k))
    if not len(big):
        return out, None
    first_kept = u[big[-1] + 1]
    out[valid] = v < first_kept
    return out, pd.Timestamp(first_kept)


def _first_rows(mask: np.ndarray, n: int = 5) -> str:
    """'first rows [..]; 1 = the first data row' for the rows where ``mask`` holds."""
    return f"first rows {(np.flatnonzero(mask)[:n] + 1).tolist()}; 1 = the first data row"


def _from(col: str, mapping: Mapping[str, str]) -> str:
    user = mapping.get(col, col)
    return f" (column '{user}')" if user != col else ""


def _parse_dates(
    raw: pd.Series,
    *,
    col: str,
    table: str,
    source: str,
    mapping: Mapping[str, str],
    date_format: str | None,
    dayfirst: bool | None,
    required: bool = True,
) -> pd.Series:
    """Parse dates to tz-naive datetime64[ns]; NaT where empty or unparseable.

    Fatal when no value parses at all or most non-empty values do not parse (a wrong
    ``date_format``/``dayfirst`` usually).
    """
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        out = raw
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        if out.dtype != "datetime64[ns]":  # Parquet ms / us timestamps can lie outside 1677..2262: NaT there,
            inside = (out >= pd.Timestamp.min) & (out <= pd.Timestamp.max)  # as the same text in a CSV
            out = out.where(inside)
        return out.astype("datetime64[ns]")
    if not date_format and not pd.api.types.is_numeric_dtype(raw.dtype):
        fast = _arrow_iso_dates(raw)
        if fast is not None:
            return fast
    st = _to_str(raw)
    present = st.notna().to_numpy()
    if not date_format:
        dayfirst = _day_month_order(st, dayfirst, col=col, table=table, source=source, mapping=mapping)
    out = _parse_str_dates(st, date_format, bool(dayfirst))
    bad = present & out.isna().to_numpy()
    n_present = int(present.sum())
    if required and n_present == 0:
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)} is empty in all {len(raw):,} rows; "
            "expected a date or date-time"
        )
    if n_present and (bad.sum() == n_present or bad.sum() > _FATAL_SHARE * n_present):
        what = "no value can" if bad.sum() == n_present else f"{bad.sum():,} of {n_present:,} non-empty values cannot"
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)}: {what} be parsed as a date, "
            f"e.g. {', '.join(_examples_values(st, bad))} ({_first_rows(bad)}); " + _epoch_hint(st, bad)
            + (f"expected the layout of the config's date_format: {date_format!r} under data.{table} (fix it to "
               "match these values, or remove it to read ISO and inferred layouts)" if date_format else
               "expected dates like 2024-03-31 or 2024-03-31 14:05:00 (set date_format: / dayfirst: in the config "
               "for other layouts)")
        )
    return out


def _epoch_hint(st: pd.Series, bad: np.ndarray) -> str:
    """When the unreadable values are whole numbers of 10 or 13 digits: they look like Unix time;
    numbers 20000-80000 (with or without a fraction): Excel serial dates (a cell exported with a
    number format), not read since the 1900 and 1904 date systems are 4 years apart; when they are
    times of day: the date is missing."""
    vals = st[bad].dropna().astype(str).head(1000)
    if len(vals) and vals.str.fullmatch(r"\d{10}|\d{13}").all():
        return ("they look like Unix timestamps (seconds or milliseconds since 1970-01-01), which are not read: "
                "export the column as dates; ")
    if len(vals) and vals.str.fullmatch(r"\d{5}(?:\.\d+)?").all() and pd.to_numeric(vals).between(20000, 80000).all():
        first = float(vals.iloc[0])
        as_1900 = (pd.Timestamp("1899-12-30") + pd.to_timedelta(first, unit="D")).round("min")
        return (f"they look like Excel serial dates (days counted from 1899-12-30: {vals.iloc[0]} would be "
                f"{as_1900:%Y-%m-%d %H:%M}, or 4 years later in Excel's 1904 date system), which are not read: "
                "format the column as a date (yyyy-mm-dd hh:mm) in the sheet before saving it as CSV; ")
    if len(vals) and vals.str.fullmatch(TIME_ONLY_RE).all():
        return ("they are times of day without a date (a time column mapped as the date?): map the column with "
                "the date, or with date and time; ")
    return ""


# a date written day and month first, year last: 03/04/2024, 3.4.24, 03-04-2024 10:00
_DMY_RE = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](?:\d{4}|\d{2})(?!\d)"


def _day_month_order(st: pd.Series, dayfirst: bool | None, *, col: str, table: str, source: str,
                     mapping: Mapping[str, str], remedy: str | None = None) -> bool:
    """Whether dates like 03/04/2024 are day first. Values only one order reads decide it
    (25/04/2024: day first; 04/25/2024: month first). ``dayfirst`` None (not set): what they
    say, refused when none decides; a ``dayfirst`` they contradict, or values pointing both
    ways, are refused too: reading them would swap day and month silently."""
    uniq = pd.Series(st.dropna().unique(), dtype=object)
    parts = uniq.astype(str).str.extract(_DMY_RE)
    parts = parts.dropna()
    a, b = parts[0].astype(int), parts[1].astype(int)
    # a value neither order reads (31/31/2020, 00/05/2024) decides nothing: it is not a date either
    # way, and is dropped as one (it must not be quoted as 'read day first or month first')
    parts = parts[(a >= 1) & (b >= 1) & (a <= 31) & (b <= 31) & ((a <= 12) | (b <= 12))]
    if parts.empty:
        return bool(dayfirst)
    a, b = parts[0].astype(int), parts[1].astype(int)
    day_first = uniq[parts.index[(a > 12) & (b <= 12)]]
    month_first = uniq[parts.index[(b > 12) & (a <= 12)]]
    what = f"{source}: {table}.{col}{_from(col, mapping)}"
    ex = lambda v: ", ".join(repr(x) for x in v.head(3))  # noqa: E731

    def rows(vals: pd.Series) -> str:
        pos = np.flatnonzero(st.isin(set(vals.head(1000))).to_numpy())[:5] + 1
        return f"rows {pos.tolist()}"

    if len(day_first) and len(month_first):
        raise DataError(f"{what} mixes day/month/year dates ({ex(day_first)}: {rows(day_first)}) with month/day/year "
                        f"dates ({ex(month_first)}: {rows(month_first)}; 1 = the first data row): export one "
                        "layout (ISO 2024-03-31 is safest)")
    if len(day_first):
        if dayfirst is False:
            raise DataError(f"{what}: dates such as {ex(day_first)} ({rows(day_first)}; 1 = the first data row) "
                            "are day/month/year, but the config says dayfirst: false; set dayfirst: true")
        return True
    if len(month_first):
        if dayfirst is True:
            raise DataError(f"{what}: dates such as {ex(month_first)} ({rows(month_first)}; 1 = the first data row) "
                            "are month/day/year, but the config says dayfirst: true; set dayfirst: false")
        return False
    if dayfirst is None:
        remedy = remedy or ("set dayfirst: true (31/01/2024) or dayfirst: false (01/31/2024), or date_format:, "
                            "in the config's table entry")
        raise DataError(f"{what}: dates such as {ex(uniq[parts.index])} can be read day first or month first and "
                        f"no value decides it (none has a day above 12): {remedy}")
    return dayfirst


def _arrow_iso_dates(raw: pd.Series) -> pd.Series | None:
    """All non-empty values ISO dates / date-times: parse in Arrow (fast, no Python objects).
    None when any value needs the slower pandas parser (or all are empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _pa_str(raw)
    if arr.null_count == len(arr):
        return None
    try:
        ts = pc.cast(arr, pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        stripped = _strip_offsets(arr)
        if stripped is arr:
            return None
        try:  # ISO date-times with UTC offsets (mixed ones too): their wall-clock time
            ts = pc.cast(stripped, pa.timestamp("ns"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return pd.Series(ts.to_numpy(zero_copy_only=False), index=raw.index).astype("datetime64[ns]")


# A time of day followed by a UTC offset or zone letter: "10:00:00+02:00", "10:00Z", "10:00 +0200".
# Group 1 is the value without the offset (a bare date such as 2024-03-01 never matches).
_OFFSET_RE = r"^(.*\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(?:Z|z|(?:UTC|GMT)?\s*[+-]\d{2}(?::?\d{2})?|UTC|GMT)$"


def _strip_offsets(arr):  # type: ignore[no-untyped-def]
    """Arrow text dates without their UTC offsets (the local wall-clock time is kept, as the
    data contract says); the same array object when no value has an offset."""
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring_regex(arr, _OFFSET_RE)).as_py():
        return arr
    return pc.replace_substring_regex(arr, _OFFSET_RE, r"\1")


def _drop_tz(r: pd.Series) -> pd.Series:
    """Parsed dates as tz-naive datetime64[ns], each value keeping its own wall-clock time
    (also when the values carry different offsets and pandas returns objects)."""
    if pd.api.types.is_datetime64_any_dtype(r.dtype):
        if getattr(r.dt, "tz", None) is not None:
            r = r.dt.tz_localize(None)
        return r.astype("datetime64[ns]")

    def naive(v: Any) -> Any:
        if isinstance(v, pd.Timestamp | np.datetime64) or hasattr(v, "tzinfo"):
            try:
                ts = pd.Timestamp(v)
            except (ValueError, TypeError):
                return pd.NaT
            return ts.tz_localize(None) if ts.tzinfo is not None else ts
        return pd.NaT

    return pd.to_datetime(r.map(naive), errors="coerce").astype("datetime64[ns]")


def _parse_str_dates(st: pd.Series, date_format: str | None, dayfirst: bool) -> pd.Series:
    import warnings

    def attempt(s: pd.Series, **kw: Any) -> pd.Series:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "mixed time zones": _drop_tz handles them per value
            try:
                r = pd.to_datetime(s, errors="coerce", **kw)
            except (ValueError, TypeError):
                r = pd.to_datetime(s, errors="coerce", utc=True, **kw)
        return _drop_tz(r)

    if not date_format or "%z" not in date_format and "%Z" not in date_format:
        import pyarrow as pa

        arr = pa.array(st.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        stripped = _strip_offsets(arr)
        if stripped is not arr:
            st = _pa_to_series(stripped, st.index)
    if date_format:
        return attempt(st, format=date_format)
    out = attempt(st, format="ISO8601")
    # a time of day without a date ('08:26:00', a time column mapped as the date) is not a date: pandas
    # would read it as today at that time, kept as today's order or dropped as future_date
    clock = st.astype("string").str.fullmatch(TIME_ONLY_RE).fillna(False).to_numpy(dtype=bool)
    if clock.any():
        st = st.mask(clock)
    todo = st.notna() & out.isna()
    if todo.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub = attempt(st[todo], dayfirst=dayfirst)
            still = sub.isna()
            if still.any() and still.sum() <= 200_000:
                sub[still] = attempt(st[todo][still], format="mixed", dayfirst=dayfirst)
        out[todo] = sub
    return out


def _missing_required(df: pd.DataFrame, cols: Sequence[str], *, table: str, source: str, mapping: Mapping[str, str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        parts = [f"'{c}'" + (f" (mapped from '{mapping[c]}')" if mapping.get(c, c) != c else "") for c in missing]
        raise DataError(
            f"{source}: {table} is missing required column(s) {', '.join(parts)}; "
            f"columns present: {list(df.columns)}"
        )


def _check_not_empty(df: pd.DataFrame, *, table: str, source: str) -> None:
    if len(df) == 0:
        raise DataError(f"{source}: {table} is empty (0 rows); expected at least one row")


def _check_not_all_missing(s: Any, *, col: str, table: str, source: str, mapping: Mapping[str, str]) -> None:
    if _is_null(s).all():
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)} is empty in all {len(s):,} rows; it is required"
        )

def _codes(s: pd.Series) -> np.ndarray:
    """Integer codes with equal codes <=> equal values (missing = -1), without Python objects
    for Arrow text columns."""
    if isinstance(s.dtype, pd.ArrowDtype):
        import pyarrow.compute as pc

        arr = s.array.__arrow_array__()
        arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
        idx = pc.dictionary_encode(arr).indices
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return pd.factorize(s, use_na_sentinel=True)[0].astype(np.int64)


def _dup_mask(raw: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Exact duplicates of an earlier row over ``cols`` (compared through per-column codes)."""
    codes = [_codes(raw[c]) for c in cols]
    h = np.zeros(len(raw), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in codes:  # a 64-bit row hash finds the candidates ...
            h = h * np.uint64(1_000_003) + pd.util.hash_array(c)
    cand = np.flatnonzero(pd.Series(h).duplicated(keep=False).to_numpy())
    out = np.zeros(len(raw), dtype=bool)
    if len(cand):  # ... and the exact codes decide among them
        out[cand] = pd.DataFrame({i: c[cand] for i, c in enumerate(codes)}).duplicated(keep="first").to_numpy()
    return out


def _str_col(
    raw: pd.DataFrame, col: str, default: str | None, defaults: dict[str, str], fixes: dict[str, tuple[np.ndarray, str]]
) -> pd.Series:
    """An optional text column: filled with ``default`` where missing (a fix) or absent (a default)."""
    if col not in raw.columns:
        if default is not None:
            defaults[col] = default
        return pd.Series(default, index=raw.index, dtype=object)
    s = _to_str(raw[col])
    if default is not None:
        miss = s.isna().to_numpy()
        if miss.any():
            fixes[f"{col}_filled"] = (miss, f"empty {col} set to {default!r}")
            s = s.where(~miss, default)
    return s.astype(object)


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


def unknown_id_hint(ids: Any, unknown: np.ndarray, known: Any, *, table: str, col: str = "account_id",
                    other: str = "the accounts table") -> str | None:
    """When at least half of a table's ids are not in the other table, a sentence showing ids
    of both, so a format mismatch ('0012347' vs '12347', 'K17' vs '17') is visible; else None."""
    unknown = np.asarray(unknown, dtype=bool)
    n_unknown = int(unknown.sum())
    if n_unknown == 0:
        return None
    vals = ids if isinstance(ids, pd.Series) else pd.Series(ids.to_pylist(), dtype=object)  # pandas or pyarrow
    present = int(vals.notna().sum())
    zeros = _zero_padded_matches(vals[unknown], known)
    if n_unknown < 0.5 * present:
        if not zeros:
            return None
        pairs, n_ids, n_rows = zeros
        return (f"{n_rows:,} {table} rows ({n_ids:,} {col} value(s)) are not in {other} only because of leading "
                f"zeros (e.g. {pairs}) and are dropped as unknown_account: ids are compared as text, so '007' "
                "and '7' differ: write the id the same way in both tables")
    ex = sorted({str(v) for v in vals[unknown]})[:3]
    kn = sorted({str(v) for v in known})[:3]
    return (f"{n_unknown:,} of {present:,} {table} rows have {'an' if col[0] in 'aeiou' else 'a'} {col} that is not in {other} (e.g. {ex}; "
            f"its ids look like {kn}); ids are compared as text, so '007' and '7' differ: "
            "write the id the same way in both tables")


def _zero_padded_matches(unknown_ids: pd.Series, known: Any) -> tuple[str, int, int] | None:
    """Unknown ids that equal a known id once leading zeros are stripped ('123' vs '00123'):
    (up to three 'unknown' vs 'known' pairs, how many such ids, how many rows), or None.

    Below the half-of-the-rows threshold of ``unknown_id_hint`` such ids would otherwise be
    dropped as ``unknown_account`` with nothing saying why (a few accounts zero-padded by one
    system and not the other)."""
    unknown_ids = unknown_ids.dropna().astype(str)
    if unknown_ids.empty:
        return None
    by_stripped: dict[str, str] = {}
    for k in sorted({str(v) for v in known}):
        by_stripped.setdefault(k.lstrip("0") or "0", k)
    stripped = unknown_ids.str.lstrip("0").replace("", "0")
    hit = stripped.isin(by_stripped.keys()).to_numpy()
    if not hit.any():
        return None
    matched = sorted(set(unknown_ids[hit]))
    pairs = ", ".join(f"{u!r} vs {by_stripped[u.lstrip('0') or '0']!r}" for u in matched[:3])
    return pairs, len(matched), int(hit.sum())

