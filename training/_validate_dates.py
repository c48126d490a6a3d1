"""Date column parsing of :mod:`training.validate`: ``_parse_dates`` (Arrow fast path for ISO,
UTC offsets dropped to wall-clock time, day/month order decided or refused, Unix/Excel/time-of-day
hints), ``resolve_as_of`` (the exclusive upper bound for dates) and ``_isolated_early`` (a lone
placeholder or mistyped year far before all other dates).

Split from :mod:`training._validate_columns` (text/id helpers and message pieces, which it
imports) to keep each module under ~500 lines; every date rule and pattern stays together here.
Private helper module of :mod:`training.validate` (import the public names from there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.demand_data import TIME_ONLY_RE  # a time of day alone is no date (defined once, there)
from training._validate_columns import (
    _FATAL_SHARE,
    _examples_values,
    _first_rows,
    _from,
    _pa_str,
    _pa_to_series,
    _to_str,
)
from training.errors import DataError


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
            + (_month_names_hint(st, bad)
               or (f"expected the layout of the config's date_format: {date_format!r} under data.{table} (fix it to "
                   "match these values, or remove it to read ISO and inferred layouts)" if date_format else
                   "expected dates like 2024-03-31 or 2024-03-31 14:05:00 (set date_format: / dayfirst: in the config "
                   "for other layouts)"))
        )
    if bad.any():
        _refuse_foreign_month_names(st, bad, present, col=col, table=table, source=source, mapping=mapping)
    return out


def _shape(v: str) -> str:
    """A date as written with its words as 'a' and digits as '9': '01-Dez-2010 10:00' -> '99-a-9999 99:99'."""
    return re.sub(r"\d", "9", re.sub(r"[^\W\d_]+", "a", v.strip()))


def _refuse_foreign_month_names(st: pd.Series, bad: np.ndarray, present: np.ndarray, *, col: str, table: str,
                                source: str, mapping: Mapping[str, str]) -> None:
    """Dates written with month names read in English only: a German export's '01-Dez-2010' beside
    '04-Jan-2011' left every order of March (Mär), May (Mai), October (Okt) and December (Dez) as
    unparseable_date, 40 % of the book dropped row by row and the months without orders read as
    months without demand. Refused when unreadable values have the layout of values that parse, with
    words those do not have, naming the words, the values and the rows."""
    good = st[present & ~bad].astype(str).unique()[:5000]
    good_shapes = {_shape(v) for v in good}
    if not any(re.search(r"[^\W\d_]", sh) for sh in good_shapes):
        return  # no month names in the dates that parse: bad values are dirt (n/a, TOTAL ...)
    good_words = {w.lower() for v in good for w in re.findall(r"[^\W\d_]+", v)}
    bad_vals = pd.Series(st[bad].astype(str).unique()[:5000])
    words: dict[str, None] = {}
    hits = []
    for v in bad_vals:
        new = [w for w in re.findall(r"[^\W\d_]+", v) if w.lower() not in good_words]
        # or 'août' beside 'sept.': a date (digits, not 'not set') whose new words are all months ('3 days ago',
        # 'gen 2 reorder' are dirt: 'ago' and 'gen' are Spanish / Italian months, 'days' and 'reorder' none)
        if new and (_shape(v) in good_shapes
                    or (all(map(_foreign_month, new)) and re.search(r"\d", v))):
            hits.append(v)
            words.update(dict.fromkeys(new))
    if not hits:
        return
    hit = bad & st.astype(str).isin(set(hits)).to_numpy()
    # 'written the same way' only when it is so: 'août' is taken on its month name alone, and beside
    # '01-sept.-2010' its '03-août-2010' has no '.' (the sentence said they were written alike)
    shapes = {_shape(v) for v in hits}
    alike = [v for v in good if _shape(v) in shapes]
    others = (f"values written the same way can ({', '.join(repr(v) for v in alike[:2])})" if shapes <= good_shapes
              else f"other values of the column can ({', '.join(repr(v) for v in good[:2])})")
    raise DataError(
        f"{source}: {table}.{col}{_from(col, mapping)}: {int(hit.sum()):,} value(s) such as "
        f"{', '.join(repr(v) for v in hits[:3])} ({_first_rows(hit)}) cannot be parsed as a date, while {others}: "
        f"the words {', '.join(list(words)[:8])} are no "
        "English month names; dates are read with English month names only: export the column with months as "
        "numbers (31.12.2024) or as ISO dates (2024-12-31); dropped row by row, those months would have no orders"
    )


# month names and abbreviations other languages write, lower case, without accents or a final '.'
_FOREIGN_MONTHS = {
    "French": "janvier janv fevrier fevr fev mars avril avr mai juin juillet juil aout septembre octobre novembre "
              "decembre",
    "German": "januar jan februar feb marz maerz mar mrz mai juni juli oktober okt dezember dez",
    "Spanish": "enero ene febrero marzo abril abr mayo junio julio agosto ago septiembre setiembre octubre "
               "noviembre diciembre dic",
    "Italian": "gennaio gen febbraio marzo aprile maggio mag giugno giu luglio lug agosto ago settembre set "
               "ottobre ott novembre dicembre dic",
    "Dutch": "januari februari maart mrt april mei juni juli augustus oktober okt",
    "Polish": "styczen sty luty lut marzec kwiecien kwi maj czerwiec cze lipiec lip sierpien sie wrzesien wrz "
              "pazdziernik paz listopad lis grudzien gru stycznia lutego marca kwietnia maja czerwca lipca "
              "sierpnia wrzesnia pazdziernika listopada grudnia",
}


def _month_names_hint(st: pd.Series, bad: np.ndarray) -> str:
    """When the unreadable values hold month names of another language ('01-déc.-2010', '1 mai 2011'):
    a French export where most months have no English spelling was refused as 'cannot be parsed',
    with no word of why (only where some months parse is it :func:`_refuse_foreign_month_names`)."""
    vals = st[bad].dropna().astype(str).unique()[:5000]
    words = dict.fromkeys(w for v in vals for w in re.findall(r"[^\W\d_]+", v) if _foreign_month(w))
    if not words:
        return ""
    found = {_plain(w) for w in words}
    langs = [lang for lang, names in _FOREIGN_MONTHS.items() if found <= set(names.split()) | _ENGLISH_MONTHS]
    return (f"the words {', '.join(list(words)[:8])} are month names in {' or '.join(langs) or 'another language'}, "
            "and dates are read with English month names only (date_format: does not change that): export the "
            "column with months as numbers (31.12.2024) or as ISO dates (2024-12-31)")


_ENGLISH_MONTHS = set("january february march april may june july august september october november december "
                      "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_MONTH_WORDS = {w for names in _FOREIGN_MONTHS.values() for w in names.split()} | _ENGLISH_MONTHS


def _plain(word: str) -> str:
    """A word in lower case without accents: 'Déc' -> 'dec'."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


def _foreign_month(word: str) -> bool:
    """Whether a word is a month name other than English ('déc', 'Mär', 'mei'; 'déc' is not read as 'dec')."""
    return word.lower() not in _ENGLISH_MONTHS and _plain(word) in _MONTH_WORDS


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
