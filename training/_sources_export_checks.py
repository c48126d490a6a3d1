"""Checks of a table as read that catch spreadsheet / ERP export habits which would otherwise be read
silently wrong, for :mod:`training.sources` (run on every source in ``_finish``):

- ids a spreadsheet saved in scientific notation (``1.23457E+11``: rounded to 6 digits, so different
  accounts or SKUs became one);
- whole numbers grouped by '.' (``1.200`` for 1200) in a table read with the default layout
  ('.' the decimal mark, no thousands separator), where they were read as 1.2;
- under ``decimal: ','``, a column written with '.' as its decimal mark (``2.55``, no comma anywhere),
  where a price of ``1.250`` was read as 1250;
- under ``decimal: ','`` with ``thousands: ' '`` or ``"'"``, a value grouped by '.' (``1.200``), read as 1.2;
- UTF-8 text read under ``encoding: latin-1`` / ``cp1252`` ('MÃ¼nchen' for 'München').

Private helper module of :mod:`training.sources`; imports nothing from it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training._validate_columns import _from
from training.errors import DataError

_ID_COLUMNS = ("order_id", "account_id", "sku", "location")

_EXCEL_SCIENTIFIC = r"^\s*\d(?:\.\d+)?E\+\d{2,3}\s*$"
"""How a spreadsheet writes a long number in the General format: one digit, up to 5 decimals, E+NN."""

_DOT_GROUPED = r"^\s*[+-]?[1-9]\d{0,2}(?:\.\d{3})+\s*$"  # 1.200, 12.500, 1.234.567 (not 0.500)
_WHOLE = r"^\s*[+-]?\d+\s*$"
_DECIMAL = r"^\s*[+-]?\d*\.\d+\s*$"


def _text(s: pd.Series):  # type: ignore[no-untyped-def]
    """The column as an Arrow string array, or None when it is not text (Parquet / database numbers).
    Also how :mod:`training.sources` rewrites text numbers (``decimal:``, ``thousands:``, ``negatives:``)."""
    import pyarrow as pa

    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_string(s.dtype.pyarrow_dtype):
        return s.array.__arrow_array__()
    if isinstance(s.dtype, pd.StringDtype):
        return pa.array(s.astype(object).where(s.notna(), None).to_numpy(dtype=object), type=pa.string())
    if s.dtype == object:  # database text; mixed objects (numbers among the text) are not checked
        try:
            return pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
    return None


def _matches(arr, pattern: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    import pyarrow.compute as pc

    return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False)


def _shown(s: pd.Series, mask: np.ndarray) -> tuple[str, str]:
    """(up to three distinct values as written, 'first rows [..]; 1 = the first data row')."""
    pos = np.flatnonzero(mask)
    vals = list(dict.fromkeys(str(v).strip() for v in s.iloc[pos[:200]].tolist()))
    eg = ", ".join(repr(v) for v in vals[:3]) + (" ..." if len(vals) > 3 else "")
    return eg, f"first rows {(pos[:5] + 1).tolist()}; 1 = the first data row"


def refuse_scientific_ids(name: str, source: str, frame: pd.DataFrame, mapping: Mapping[str, str]) -> None:
    """Ids written as ``1.23457E+11`` are refused: a spreadsheet shows a number of 12 or more digits so and
    saves what it shows, rounded to 6 digits, so customers 123456789012 and 123457000001 were read as one
    account '1.23457E+11' (their orders summed, one churn score), silently."""
    for col in _ID_COLUMNS:
        if col not in frame.columns:
            continue
        arr = _text(frame[col])
        if arr is None:
            continue
        sci = _matches(arr, _EXCEL_SCIENTIFIC)
        if not sci.any():
            continue
        eg, rows = _shown(frame[col], sci)
        raise DataError(
            f"{source}: {name}.{col}{_from(col, mapping)} holds {int(sci.sum()):,} id(s) written in scientific "
            f"notation, e.g. {eg} ({rows}); a spreadsheet writes long numbers so and keeps only 6 digits, so "
            "different ids would be read as one: format the column as Text (or as a number with 0 decimals) "
            "before saving, or export it again from the source system"
        )


def dot_grouped(s: pd.Series) -> tuple[np.ndarray, int] | None:
    """(mask of the values written like 1.200, how many whole numbers are written without a '.') when
    ``s`` (text) holds both and no other number with a decimal point (2.5, 0.500): a column of whole
    numbers with '.' grouping thousands; else None (also for a column that is not text)."""
    arr = _text(s)
    if arr is None:
        return None
    grouped = _matches(arr, _DOT_GROUPED)
    if not grouped.any():
        return None
    whole = _matches(arr, _WHOLE)
    if not whole.any() or (_matches(arr, _DECIMAL) & ~grouped).any():
        return None
    return grouped, int(whole.sum())


def refuse_dot_grouped(name: str, source: str, frame: pd.DataFrame, mapping: Mapping[str, str],
                       columns: list[str]) -> None:
    """In a table read with the default layout, a number column whose only values with a '.' have
    exactly three digits after it (``1.200``, ``12.500``) beside whole numbers written without one
    (``6``, ``12``) is a column of whole numbers with '.' grouping thousands, as a German export writes
    quantities and stock counts: read with '.' as the decimal mark, every order of 1 000 units or more
    became 1.2 units, silently. Refused, naming the setting that reads it either way."""
    for col in columns:
        if col not in frame.columns:
            continue
        found = dot_grouped(frame[col])
        if found is None:
            continue
        grouped, whole = found
        eg, rows = _shown(frame[col], grouped)
        raise DataError(
            f"{source}: {name}.{col}{_from(col, mapping)} holds {int(grouped.sum()):,} value(s) such as {eg} ({rows}) "
            f"with exactly three digits after a '.', beside {whole:,} whole numbers written without one "
            "and no other number with a decimal point: either '.' groups thousands (1.200 for 1200, as a German "
            "export writes them), or these are figures with three decimals (a price in a 3-decimal currency, "
            f"kilograms); which one is not guessed: set decimal: ',' under data.{name} in the config if '.' groups "
            "thousands (1.200 = 1200), or thousands: ',' if they are decimals (1.200 = 1.2)"
        )


def refuse_dot_decimals(name: str, source: str, frame: pd.DataFrame, mapping: Mapping[str, str],
                        columns: list[str]) -> None:
    """Under ``decimal: ','`` (a '.' groups thousands), a number column without a single comma whose
    values are written with '.' as the decimal mark (``2.55``, ``6.0``) is not in that layout: its values
    with three digits after the '.' (a price of ``1.250``, ``0.125``) were read as thousands, 1250 and 125,
    silently (the others as written). Refused, naming both kinds of values."""
    for col in columns:
        if col not in frame.columns:
            continue
        arr = _text(frame[col])
        if arr is None or _matches(arr, ",").any():
            continue
        grouped = _matches(arr, r"^\s*[+-]?\d{1,3}(?:\.\d{3})+\s*$")
        if not grouped.any():
            continue
        dotted = _matches(arr, _DECIMAL) & ~grouped
        if not dotted.any():
            continue
        eg, rows = _shown(frame[col], grouped)
        eg_dot, _ = _shown(frame[col], dotted)
        raise DataError(
            f"{source}: {name}.{col}{_from(col, mapping)} is written with '.' as the decimal mark ({eg_dot}; no value "
            f"has a comma), but decimal: ',' under data.{name} reads '.' as a thousands separator, so "
            f"{int(grouped.sum()):,} value(s) such as {eg} ({rows}) would be read as thousands (1.250 as 1250): "
            f"remove decimal: ',' from data.{name} in the config (or export this column with decimal commas too)"
        )



def refuse_dot_grouped_outside_layout(name: str, source: str, frame: pd.DataFrame, mapping: Mapping[str, str],
                                      columns: list[str], thousands: str) -> None:
    """Under ``decimal: ','`` with ``thousands: ' '`` or ``"'"``, a '.' is neither the decimal mark nor the
    thousands separator, so a value such as ``1.200`` is read as written, 1.2, silently: in a French or Swiss
    export whose other figures read 1 234,50, it was 1200 units. Refused, naming the values and that
    ``decimal: ','`` alone reads '.', spaces and "'" as thousands separators."""
    for col in columns:
        if col not in frame.columns:
            continue
        arr = _text(frame[col])
        if arr is None:
            continue
        grouped = _matches(arr, _DOT_GROUPED)
        if not grouped.any():
            continue
        eg, rows = _shown(frame[col], grouped)
        raise DataError(
            f"{source}: {name}.{col}{_from(col, mapping)} holds {int(grouped.sum()):,} value(s) such as {eg} ({rows}) "
            f"with '.' before three digits, but under data.{name} decimal: ',' with thousands: {thousands!r} reads "
            "'.' as neither the decimal mark nor a thousands separator, so 1.200 would be read as 1.2: if '.' groups "
            f"thousands there, remove thousands: from data.{name} in the config (decimal: ',' alone reads 1.234,50, "
            "1 234,50 and 1'234,50); if they are decimals, export them with a decimal comma (1,200)"
        )

# what UTF-8's two-byte letters look like read as latin-1 / cp1252: a lead byte 0xC2..0xC5 shown as Â Ã Ä Å
# (° £ NBSP, the Western European letters, and Central European ones such as č ł ő), then a continuation byte
# 0x80..0xBF (cp1252 shows 0x80..0x9F as € ‚ ƒ ... Ÿ). Lead bytes up to 0xDF were taken before: a real latin-1
# 'CAFÉ' + no-break space or 'Ø°' was refused as UTF-8
_MOJIBAKE = "[\u00c2-\u00c5][\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178]"
_SINGLE_BYTE = ("latin_1", "iso8859-1", "cp1252", "iso8859-15")


def refuse_utf8_read_as_single_byte(name: str, source: str, frame: pd.DataFrame, mapping: Mapping[str, str],
                                    encoding: str) -> None:
    """A UTF-8 export read with ``encoding: latin-1`` (or cp1252) reads every accented letter as two
    ('München' as 'MÃ¼nchen'): the ids and regions are garbled, silently, and no longer match the
    same ids in another table or a request. Refused when text values decode as UTF-8 once written back
    in the table's encoding, naming the column, rows and both readings."""
    import codecs

    enc = codecs.lookup(encoding).name
    if enc not in _SINGLE_BYTE:
        return
    for col in frame.columns:
        arr = _text(frame[col])
        if arr is None:
            continue
        hit = _matches(arr, _MOJIBAKE)
        if not hit.any():
            continue
        vals = list(dict.fromkeys(str(v) for v in frame[col].iloc[np.flatnonzero(hit)[:200]].tolist()))
        other = _matches(arr, "[^\\x00-\\x7f]")  # every value with a letter beyond ASCII must be UTF-8 too
        others = list(dict.fromkeys(str(v) for v in frame[col].iloc[np.flatnonzero(other)].drop_duplicates()[:1000]))
        try:
            fixed = [v.encode(encoding).decode("utf-8") for v in vals[:3]]
            for v in others:
                v.encode(encoding).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue  # not UTF-8 written back: latin-1 text that happens to hold such a pair ('Ã¼' beside 'Ä')
        _, rows = _shown(frame[col], hit)
        shown = ", ".join(f"{v!r} (UTF-8: {f!r})" for v, f in zip(vals[:3], fixed, strict=True))
        raise DataError(
            f"{source}: {name} is read with encoding: {encoding}, but {name}.{col}{_from(col, mapping)} holds "
            f"{int(hit.sum()):,} value(s) such as {shown} ({rows}): the file is UTF-8 text; set encoding: utf-8 "
            f"(or remove encoding:) in the config's data.{name} entry"
        )


def dot_grouped_in_csv(path, columns: list[str]) -> tuple[str, np.ndarray, int, pd.Series] | None:  # type: ignore[no-untyped-def]
    """For the small files a command is handed (``--on-hand``, a ``demand.series`` table), read by
    pandas with '.' as the decimal mark: the first of ``columns`` that :func:`dot_grouped` finds,
    with its mask, count of whole numbers and values as text (None for Parquet files and folders)."""
    from pathlib import Path

    from training.config import PARQUET_SUFFIXES
    from training.user_files import _is_parquet

    path = Path(path)
    if not columns or path.is_dir() or path.name.lower().endswith(PARQUET_SUFFIXES) or _is_parquet(path):
        return None
    text = pd.read_csv(path, sep="\t" if ".tsv" in path.name.lower() else ",", usecols=columns, dtype=str,
                       index_col=False, keep_default_na=False)
    for col in columns:
        found = dot_grouped(text[col].str.strip())
        if found is not None:
            return col, found[0], found[1], text[col]
    return None


def refuse_dot_grouped_csv(path, columns: list[str], *, source: str, labels: Mapping[str, str] | None = None,  # type: ignore[no-untyped-def]
                           fix: str = "write the figures") -> None:
    """For a file a command is handed (``--on-hand``, a ``demand.series`` table): refuse the first of
    ``columns`` that holds units exported with '.' grouping thousands (1.200 beside 40, read as 1.2
    units, silently), naming ``source``, the column (``labels``: how to name it), rows and values."""
    found = dot_grouped_in_csv(path, columns)
    if found is None:
        return
    col, grouped, whole, text = found
    pos = np.flatnonzero(grouped)
    raise DataError(
        f"{source}: column {(labels or {}).get(col, col)} holds {len(pos)} value(s) such as "
        f"{text.iloc[pos[:3]].tolist()} (first rows {(pos[:5] + 1).tolist()}; 1 = the first data row) with exactly "
        f"three digits after a '.', beside {whole} whole numbers written without one: thousands grouped with '.' "
        f"(1.200 for 1200), which would be read as 1.2 units; {fix} without a thousands separator, with '.' as the "
        "decimal mark"
    )
