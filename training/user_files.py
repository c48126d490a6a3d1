"""Small per-series files a user hands a command (``--on-hand``, ``--future``): read them with
the series ids kept as text, and refuse empty ids, with errors that name the option, the file and
the rows. Also the checks the readers of every user file share: a spreadsheet workbook or a folder
named as a table, a header that shows another separator, a series table's dates against ``--freq``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import PARQUET_SUFFIXES
from training.errors import DataError


def first_rows(mask: np.ndarray, n: int = 5) -> list[int]:
    """1-based numbers of the first ``n`` data rows where ``mask`` holds."""
    return (np.flatnonzero(mask)[:n] + 1).tolist()


_WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".numbers")


def workbook_problem(path: Path) -> str | None:
    """Why ``path`` is a spreadsheet workbook rather than a table dealerml reads (by its name, or
    by its first bytes: a zip archive, which an .xlsx / .ods is, or an Excel 97-2003 file), or a
    compressed file whose name does not end in .gz / .bz2 / .zst, else None. Read as CSV such a
    file gives one garbled header column or a decoding error, not a useful message."""
    path = Path(path)
    what = None
    if path.name.lower().endswith(_WORKBOOK_SUFFIXES):
        what = f"a spreadsheet workbook ({path.suffix})"
    elif path.is_file():
        try:
            with open(path, "rb") as fh:
                head = fh.read(10)
        except OSError:
            return None
        if head.startswith(b"PK\x03\x04"):
            what = "a zip archive (an Excel .xlsx or OpenDocument workbook is one), not text"
        elif head.startswith(b"\xd0\xcf\x11\xe0"):
            what = "an Excel 97-2003 workbook (.xls), not text"
        else:
            return _packed_problem(path, head)
    if what is None:
        return None
    return (f"{path} is {what}; dealerml does not read workbooks: save the sheet as CSV "
            "(File > Save As > CSV UTF-8) or Parquet and point to that file")


# the first bytes of a compressed file, the compression and the file-name ending that tells the readers to decompress
_PACKED = ((re.compile(rb"\x1f\x8b"), "gzip", ".gz"), (re.compile(rb"BZh[1-9]1AY&SY"), "bz2", ".bz2"),
           (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd", ".zst"))


def _packed_problem(path: Path, head: bytes) -> str | None:
    """A compressed file whose name does not say so (``lines.csv`` holding gzip bytes): the readers
    decompress by the name only, so it would be read as binary text ('cannot decode ... set
    encoding:', which is the wrong advice)."""
    for magic, comp, suffix in _PACKED:
        if magic.match(head) and not path.name.lower().endswith(suffix):
            return (f"{path} is {comp}-compressed, but its name does not end in {suffix}, so it would be read as "
                    f"plain text; rename it to {path.name}{suffix} (the name tells dealerml to decompress it) or "
                    "decompress it")
    return None


def folder_problem(path: Path) -> str | None:
    """Why folder ``path`` cannot be read as a Parquet dataset (the only way a folder is read):
    it is empty, or it holds files that are not ``.parquet`` (say, CSV exports), which the
    Parquet reader fails on; None when every file in it is Parquet (hidden and ``_`` files
    such as ``_SUCCESS`` aside, as the reader skips them)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    if not files:
        return f"{path} is an empty folder; expected a file (CSV or Parquet) or a folder of Parquet files"
    other = [p for p in files if not p.name.lower().endswith(PARQUET_SUFFIXES) and not _is_parquet(p)]
    if not other:
        return None
    shown = [str(p.relative_to(path)) for p in other[:3]]
    n_pq = len(files) - len(other)
    return (f"{path} is a folder, which is read only as a dataset of Parquet files, but {len(other)} of its "
            f"{len(files)} file(s) are not Parquet (e.g. {shown}); point to one file instead, e.g. {other[0]}"
            + (f", or move the {n_pq} .parquet file(s) into a folder of their own" if n_pq else ""))


def _is_parquet(path: Path) -> bool:
    """Whether the file starts with Parquet's magic bytes (files written without a suffix)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def refuse_one_column_header(df: pd.DataFrame, src: str, expected: str) -> None:
    """A comma-read table whose header is one column holding ';', a tab or '|': say which separator
    the file uses instead of reporting its columns as missing."""
    if len(df.columns) != 1:
        return
    for sep, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if sep in str(df.columns[0]):
            raise DataError(f"{src}: the header is one column {str(df.columns[0])!r}: the file looks "
                            f"{label}-separated; write it comma-separated with '.' as the decimal mark "
                            f"(expected {expected}), or as Parquet")


def _csv_name(name: str) -> bool:
    """Whether a (lower-case) file name says CSV: .csv / .tsv (also compressed, .csv.gz) or .txt."""
    return ".csv" in name or ".tsv" in name or name.endswith(".txt")


def read_user_table(path: Path, src: str, expected: str, *, text_cols: tuple[str, ...] | list[str] = ("unique_id",),
                    what: str = "the file", known_suffixes_only: bool = False, folders: bool = False) -> pd.DataFrame:
    """The one reader behind the small tables a user hands a command (``--series``, ``--on-hand``,
    ``--future``): CSV (``.tsv``: tab-separated) or Parquet, ``text_cols`` read as text ("007"
    stays "007"). Every problem is a DataError starting with ``src`` (e.g. "--on-hand plan.csv")
    that says what the file is and what is expected: a workbook, a folder (``folders``: a folder
    of Parquet files is read as one dataset), not UTF-8 text (a UTF-16 'Unicode text' export, a
    latin-1 / cp1252 file), empty, a record with more fields than the header (often a decimal
    comma in a comma-separated file), a header that shows another separator. ``expected`` says
    what the file should hold; ``known_suffixes_only``: refuse a name without a CSV / Parquet
    suffix instead of reading it as CSV (a Parquet file is known by its first bytes either way).
    The caller checks that the file exists (its own wording) and its columns."""
    from training.sources import _utf16_bom

    path = Path(path)
    if path.is_dir():
        if not folders:
            raise DataError(f"{src}: is a folder; expected a CSV or Parquet file{_files_in(path)}")
        problem = folder_problem(path)
        if problem:
            raise DataError(problem if src == str(path) else f"{src}: {problem}")
    else:
        book = workbook_problem(path)
        if book:
            raise DataError(book if src == str(path) else f"{src}: {book}")
    name = path.name.lower()
    parquet = path.is_dir() or name.endswith(PARQUET_SUFFIXES) or _is_parquet(path)
    if not parquet and known_suffixes_only and not _csv_name(name):
        raise DataError(f"{src}: unknown format; use .csv, .csv.gz, .tsv or .parquet (.pq, .parq)")
    sep = "\t" if ".tsv" in name else ","
    try:
        if parquet:
            return pd.read_parquet(path)
        # index_col=False: rows with more fields than the header (SKU1,12,5 under unique_id,on_hand) are
        # not read with their first field as the index, every value a column to the left; pandas warns
        # instead (and drops the extra field), which is turned into an error below
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(path, sep=sep, dtype={c: str for c in text_cols}, index_col=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{src}: the file is empty (expected {expected})") from None
    except UnicodeDecodeError as exc:
        why = ("it starts with a UTF-16 byte-order mark (e.g. Excel's 'Unicode text' export)"
               if _utf16_bom(path) else f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}")
        raise DataError(f"{src}: not UTF-8 text: {why}; {what} is read as UTF-8 CSV: save it as "
                        "'CSV UTF-8' or Parquet") from None
    except pd.errors.ParserError as exc:  # a ';' file whose decimal commas make some records two fields: say ';'
        try:
            header = pd.read_csv(path, sep=sep, nrows=0, index_col=False)
        except (pd.errors.ParserError, ValueError):
            header = pd.DataFrame()
        refuse_one_column_header(header, src, expected)
        raise DataError(f"{src}: cannot read it as CSV: {_ragged(path, str(exc), sep)}") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data problem for the user
        raise DataError(f"{src}: cannot read ({type(exc).__name__}: {exc})") from None
    refuse_one_column_header(df, src, expected)
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in seen):
        raise DataError(f"{src}: cannot read it as CSV: {_ragged(path, '', sep)}")
    return df


def _files_in(path: Path, n: int = 5) -> str:
    """' (it holds a.csv, b.parquet)': the tables in a folder given where a file is expected."""
    try:
        names = sorted(p.name for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    except OSError:
        return ""
    tables = [x for x in names if _csv_name(x.lower()) or x.lower().endswith(PARQUET_SUFFIXES)]
    if not tables:
        return f" ({path} holds no .csv or .parquet file)"
    more = f" and {len(tables) - n} more" if len(tables) > n else ""
    return f" such as {path / tables[0]} (the folder holds {', '.join(tables[:n])}{more})"


def _ragged(path: Path, msg: str, sep: str) -> str:
    """A record with more fields than the header, in words: where, and the usual cause."""
    import re

    from training.sources import _first_ragged_line

    at = _first_ragged_line(path, sep, "utf-8-sig", longer_only=True)
    if at is None:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if m is None:
            return msg.strip().splitlines()[0] if msg.strip() else "its records do not all have the header's fields"
        at = (int(m.group(2)), int(m.group(3)), int(m.group(1)))
    line, saw, n = at
    label = "tab" if sep == "\t" else repr(sep)
    return (f"line {line} of the file (1 = the header) has {saw} fields where the header has {n}; a value holding "
            f"the separator {label} must be quoted (a number written with a decimal comma, 12,5, is two fields: "
            "write it with '.' as the decimal mark)")


def comma_note(values: pd.Series) -> str:
    """' (numbers written with a comma: ...)' when most of the unreadable ``values`` look like a
    number with a decimal comma or a thousands separator (12,5 / 1.234,50 / 1,234), else ''."""
    from training._validate_numbers import _COMMA_NUMBER

    st = values.astype("string").str.strip().dropna()
    if st.empty or st.str.fullmatch(_COMMA_NUMBER).fillna(False).mean() <= 0.5:
        return ""
    return " (numbers written with a comma: write them with '.' as the decimal mark and no thousands separator)"


def infinite_note(values: pd.Series) -> str:
    """' (2 of them infinite: inf, -inf; a finite number is expected)' when some of the unreadable
    ``values`` are infinite (inf, -Infinity, 1e999, a Parquet float inf), else ''."""
    from models.demand_data import to_numbers

    inf = np.isinf(to_numbers(values).to_numpy(dtype="float64"))
    if not inf.any():
        return ""
    shown = ", ".join(dict.fromkeys(str(v).strip() for v in values[inf].head(200).tolist()))
    return f" ({int(inf.sum())} of them infinite: {shown}; a finite number is expected)"


def check_user_file(path: Path, src: str) -> None:
    """Before a long run: the file a command will read with :func:`read_series_table` exists and is
    neither a folder nor a workbook (what ``read_user_table`` would say, without reading it)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{src}: file not found")
    if path.is_dir():
        raise DataError(f"{src}: is a folder; expected a CSV or Parquet file{_files_in(path)}")
    book = workbook_problem(path)
    if book:
        raise DataError(f"{src}: {book}")


def read_series_table(path: Path, src: str, expected: str, text_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV or Parquet file with a ``unique_id`` column read as text (``--on-hand``, ``--future``):
    :func:`read_user_table`, after the file-not-found check. ``src`` prefixes every error
    (e.g. "--on-hand plan.csv"); ``expected`` says what the file should hold; ``text_cols``: more
    columns read as text (key columns such as sku, location: "007" stays "007")."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{src}: file not found")
    return read_user_table(path, src, expected, text_cols=("unique_id", *text_cols))


def text_ids(df: pd.DataFrame, src: str) -> pd.DataFrame:
    """``df`` with ``unique_id`` as text; an empty id in any row is an error naming the rows."""
    uid = df["unique_id"]
    bad = (uid.isna() | (uid.astype(str).str.strip() == "")).to_numpy()
    if bad.any():
        raise DataError(f"{src}: column unique_id is empty in {int(bad.sum())} row(s), first rows {first_rows(bad)} "
                        "(1 = the first data row)")
    df["unique_id"] = uid.astype(str)
    return df


_FREQ_WORD = {"D": "day", "W": "week", "M": "month"}
_FREQ_ADJ = {"D": "daily", "W": "weekly", "M": "monthly"}
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def check_series_freq(df: pd.DataFrame, freq: str, src: str, option: str = "--freq") -> None:
    """Refuse a ready series table whose dates say another period than ``freq``.

    A weekly or monthly table read as daily would be filled with zero-demand days between its
    dates (and a monthly one read as weekly with zero weeks), so the forecasts and the backtest
    would be about demand that never happened; a finer table read as coarser has several rows
    per series and period. Both stop naming the file, the period the dates show and the option
    to set. Dates that do not parse are left to the series validation (which names the rows)."""
    from models.demand_data import parse_ds_column

    f = str(freq).upper()
    if f not in _FREQ_WORD or not {"unique_id", "ds"} <= set(df.columns) or len(df) == 0:
        return
    try:
        ds = parse_ds_column(df["ds"])
    except (ValueError, TypeError):
        return
    ok = ds.notna().to_numpy()
    if not ok.any():
        return
    day = pd.DatetimeIndex(ds[ok]).normalize()
    dates = day.unique().sort_values()
    shape = None  # (freq the dates show, why)
    if len(dates) >= 4 and (dates.day == 1).all():
        shape = ("M", f"every ds is the 1st of a month ({len(dates)} dates, {dates[0].date()} .. {dates[-1].date()})")
    elif len(dates) >= 4 and dates.is_month_end.all():
        shape = ("M", f"every ds is the last day of a month ({len(dates)} dates, {dates[0].date()} .. {dates[-1].date()})")
    elif len(dates) >= 8 and dates.dayofweek.nunique() == 1:
        shape = ("W", f"every ds is a {_WEEKDAY_NAMES[int(dates.dayofweek[0])]} ({len(dates)} dates, "
                      f"{dates[0].date()} .. {dates[-1].date()})")
    order = {"D": 0, "W": 1, "M": 2}
    if shape is not None and order[shape[0]] > order[f]:
        raise DataError(
            f"{src}: {option} {f} reads the table as {_FREQ_ADJ[f]}, but {shape[1]}: the table looks "
            f"{_FREQ_ADJ[shape[0]]}. Read as {_FREQ_ADJ[f]}, every {_FREQ_WORD[f]} between its dates would count "
            f"as a {_FREQ_WORD[f]} without demand; use {option} {shape[0]}"
        )
    if f == "D":
        return
    uid = df["unique_id"].astype(str).to_numpy()[ok]
    per = day.to_period("W-SUN" if f == "W" else "M")
    key = pd.DataFrame({"u": uid, "p": per.asi8, "d": day})
    several = key.duplicated(["u", "p"], keep=False) & ~key.duplicated(["u", "d"], keep=False)
    if not several.any():
        return  # one row per series and period, or exact repeats of a date (reported by the validation)
    # dates on one weekday are weeks (only finer than a month); days when a series' dates are
    # typically less than a week apart; anything else (a weekly table whose weekday moves) is left
    # to the series validation's own message
    one_weekday = dates.dayofweek.nunique() == 1
    gaps = key.drop_duplicates(["u", "d"]).sort_values(["u", "d"]).groupby("u")["d"].diff().dt.days.dropna()
    if f == "M" and one_weekday:
        finer = "W"
    elif len(gaps) and gaps.median() < 7:
        finer = "D"
    else:
        return
    why = (f"all its dates are {_WEEKDAY_NAMES[int(dates.dayofweek[0])]}s" if one_weekday
           else f"its dates fall on {dates.dayofweek.nunique()} different weekdays")
    first = key[several.to_numpy()].iloc[0]
    same = key[(key["u"] == first["u"]) & (key["p"] == first["p"])]["d"].drop_duplicates().head(3)
    raise DataError(
        f"{src}: {option} {f} reads one row per series and {_FREQ_WORD[f]}, but the table has several, e.g. "
        f"unique_id '{first['u']}' on {', '.join(str(d.date()) for d in same)}; {why}: the table looks "
        f"{_FREQ_ADJ[finer]}. Use {option} {finer}, or sum it to one row per series "
        f"and {_FREQ_WORD[f]} first"
    )
