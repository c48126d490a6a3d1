"""CSV file helpers of :mod:`training.sources`: compression by file name, the header as written,
and the messages for a file that cannot be read.

``_compression`` / ``_csv_stream`` (.gz, .bz2, .zst), ``_raw_header`` (names as written, repeats
kept), ``_sep_hint`` (a header that is one column holding another separator),
``_no_repeated_columns`` (also for Parquet), and the messages: ``_unreadable`` (cut short / not
compressed), ``_csv_error`` (bad encoding or a ragged row, with the first line at fault, found by
``_first_undecodable_line`` / ``_first_ragged_line``) and ``_utf16_bom``.

Split from :mod:`training.sources` to keep each module under ~500 lines; used by its
``_read_csv`` / ``_read_parquet``, and by :mod:`training.user_files` (``_utf16_bom``,
``_first_ragged_line``, through the re-exports of :mod:`training.sources`). Imports nothing from it.
"""

from __future__ import annotations

import re
from pathlib import Path

from training.config import TableSource
from training.errors import DataError


def _compression(path: Path) -> str | None:
    n = path.name.lower()
    for suf, comp in ((".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd")):
        if n.endswith(suf):
            return comp
    return None


def _csv_stream(raw, path: Path):  # type: ignore[no-untyped-def] - pyarrow NativeFile in and out
    """``raw`` decompressed as the file name says (.gz, .bz2, .zst), else ``raw`` itself."""
    import pyarrow as pa

    comp = _compression(path)
    return raw if comp is None else pa.CompressedInputStream(raw, comp)


def _unreadable(name: str, path: Path, exc: BaseException) -> str:
    """The message for a file the operating system or the decompressor could not read to its end:
    for a compressed one, that it is cut short or not compressed as its name says."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    comp = _compression(path)
    if comp is None:
        return f"{path}: cannot read {name}: {msg}"
    return (f"{path}: cannot decompress {name} as {comp} (the name ends in {path.suffix}): {msg}; the file is cut "
            f"short (an incomplete download or copy) or not {comp}-compressed: copy it again, or name it without "
            f"{path.suffix} if it is plain text")


def _utf16_bom(path: Path) -> bool:
    """Whether an uncompressed file starts with a UTF-16 byte order mark."""
    if _compression(path) is not None:
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(2) in (b"\xff\xfe", b"\xfe\xff")
    except OSError:
        return False


def _raw_header(path: Path, sep: str, encoding: str) -> list[str] | None:
    """The header line's names as written (None when it cannot be read so)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with pa.OSFile(str(path), "rb") as raw, _csv_stream(raw, path) as stream:
            reader = pacsv.open_csv(
                stream, read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 16),
                parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=True))
            return [str(n) for n in reader.schema.names]
    except (pa.ArrowInvalid, UnicodeError, OSError):
        return None


def _sep_hint(present: list[str], sep: str) -> str:
    """When the header is one column holding another separator: say which ``sep:`` to set."""
    if len(present) != 1:
        return ""
    for cand, label in ((";", ";"), ("\t", "tab"), ("|", "|"), (",", ",")):
        if cand != sep and present[0].count(cand) >= 1:
            return (f". The header is one column holding '{label}': the file looks {label!r}-separated, "
                    f"set sep: {label!r} in the config's table entry")
    # no separator at all: a report title above the header, as ERP report exports write one
    return (". The first line holds no separator: if it is a title or report line above the header, remove "
            "the lines above the header (the header must be the file's first line)")


def _no_repeated_columns(name: str, path: Path, present: list[str], wanted: dict[str, str]) -> None:
    """A column to read that the header names twice: which one is meant is unknown, refuse it."""
    for canon, user in wanted.items():
        at = [i + 1 for i, c in enumerate(present) if c == user]
        if len(at) > 1:
            raise DataError(
                f"{path}: {name}: the header names column '{user}' {len(at)} times (columns {at}; read as "
                f"'{canon}'); rename the copies so that each column has its own name"
            )


_BAD_TEXT_RE = re.compile(r"In CSV column #(\d+): CSV conversion error to string: invalid UTF8 data")


def _csv_error(name: str, src: TableSource, path: Path, present: list[str], exc: Exception) -> str:
    """The message for a CSV pyarrow cannot read: a text-decoding failure names the column (not
    pyarrow's 0-based index), the first bad line and the ``encoding:`` fix."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    m = _BAD_TEXT_RE.search(msg)
    if m is None and not isinstance(exc, UnicodeError):
        where = ""
        if "Expected" in msg and "columns, got" in msg:  # a ragged row: say on which line it starts
            at = _first_ragged_line(path, src.csv_sep(), src.encoding)
            if at is not None:
                where = (f" (first at line {at[0]:,} of the file, 1 = the header: {at[1]} fields where the header has "
                         f"{at[2]}; a value holding the separator {src.csv_sep()!r} must be quoted, and every quote "
                         "closed)")
        return f"{path}: cannot parse {name} as CSV (sep={src.csv_sep()!r}, encoding={src.encoding!r}): {msg}{where}"
    where = ""
    if m is not None and int(m.group(1)) < len(present):
        where = f" in column '{present[int(m.group(1))]}'"
    line = _first_undecodable_line(path, src.encoding)
    at = f" (first at line {line:,})" if line is not None else ""
    return (
        f"{path}: {name} has text that is not valid {src.encoding}{where}{at}; the file was probably "
        f"saved in another encoding: set encoding: (e.g. latin-1 or cp1252) in the config's "
        f"data.{name} entry"
    )


def _first_ragged_line(path: Path, sep: str, encoding: str, *, longer_only: bool = False) -> tuple[int, int, int] | None:
    """(1-based line where the first record with another number of fields than the header starts
    (``longer_only``: more fields), its fields, the header's) for an error message; None when
    unknown (compressed other than gzip / bz2, unreadable). Blank lines are skipped, as the reader
    skips them."""
    import bz2
    import csv
    import gzip

    opener = {"gzip": gzip.open, "bz2": bz2.open, None: open}.get(_compression(path))
    if opener is None:
        return None
    try:
        with opener(path, "rt", encoding=encoding, errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=sep)
            header = next(reader, None)
            if header is None:
                return None
            start = reader.line_num + 1
            for rec in reader:
                if rec and (len(rec) > len(header) if longer_only else len(rec) != len(header)):
                    return start, len(rec), len(header)
                start = reader.line_num + 1
    except (OSError, csv.Error):
        return None
    return None


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    """1-based number of the first line that does not decode (None when unknown)."""
    import bz2
    import codecs
    import gzip

    opener = {"gzip": gzip.open, "bz2": bz2.open, None: open}.get(_compression(path))
    if opener is None:
        return None
    dec = codecs.getincrementaldecoder(encoding)()
    try:
        with opener(path, "rb") as fh:
            for i, line in enumerate(fh, start=1):
                try:
                    dec.decode(line)
                except UnicodeDecodeError:
                    return i
    except OSError:
        return None
    return None
