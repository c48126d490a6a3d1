"""Read one configured table (CSV / Parquet / DuckDB / SQLAlchemy URL) into a raw frame.

``read_table(name, src)`` returns a :class:`RawTable`: the user's mapped columns renamed to
the canonical names of ``training/contract.py``, values as read (text columns as ``str``;
CSV files are read entirely as text so ids such as ``C536379`` or ``00123`` survive). Typing,
cleaning and the quality report happen in :mod:`training.validate`.

A required canonical column that is not in the source raises :class:`DataError` naming the
source, the canonical column, the user column it was mapped from and the columns present.
"""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from training.config import TableSource
from training.contract import TABLES
from training.errors import DataError

__all__ = ["RawTable", "read_table", "required_columns", "DERIVED_PREFIX"]

DERIVED_PREFIX = "__acct__"
"""Prefix of order-line columns read only to derive the accounts table (``derive_accounts_from``)."""


@dataclass(frozen=True)
class RawTable:
    """A table as read, with canonical column names."""

    name: str
    source: str  # human-readable, passwords masked
    frame: pd.DataFrame
    mapping: dict[str, str]  # canonical (or attribute / derived) name -> the user's column
    columns_present: list[str] = field(default_factory=list)  # all columns of the source


def required_columns(table: str) -> list[str]:
    """Canonical columns that must be present (order_lines also needs unit_price or line_amount)."""
    return [c.name for c in TABLES[table] if c.required]


def _wanted(name: str, src: TableSource, present: list[str], hint: str = "") -> dict[str, str]:
    """canonical/extra name -> source column, for the columns to read; raise on missing required
    (``hint`` is added to that message) or on two contract columns read from one column."""
    present_set = set(present)
    by_spacing: dict[str, list[str]] = {}
    for p in present:
        by_spacing.setdefault(_spacing(p), []).append(p)

    def found(user: str) -> str | None:
        """``user`` as present, or the one present column that differs from it only by spaces around or
        between words ('Item ', ' Invoice Date', 'Unit  Price': invisible in a spreadsheet)."""
        if user in present_set:
            return user
        same = by_spacing.get(_spacing(user), [])
        return same[0] if len(same) == 1 else None

    wanted: dict[str, str] = {}
    missing: list[tuple[str, str]] = []
    for col in TABLES[name]:
        user = src.source_column(col.name)
        if (got := found(user)) is not None:
            wanted[col.name] = got
        elif col.required or col.name in src.columns:
            # A column the user mapped explicitly must exist, even if optional.
            missing.append((col.name, user))
    if name == "order_lines" and "unit_price" not in wanted and "line_amount" not in wanted:
        if not any(c == "unit_price" or c == "line_amount" for c, _ in missing):
            missing.append(("unit_price", src.source_column("unit_price")))
    if name == "accounts":
        known = {c.name for c in TABLES[name]}
        for extra, user in src.columns.items():
            if extra in known:
                continue
            if (got := found(user)) is not None:
                wanted[extra] = got
            else:
                missing.append((extra, user))
    if name == "order_lines" and src.derive_accounts_from:
        for attr, user in src.derive_accounts_from.items():
            if (got := found(user)) is not None:
                wanted[DERIVED_PREFIX + attr] = got
            else:
                missing.append((f"accounts.{attr} (derive_accounts_from)", user))
    if missing:
        parts = []
        for canon, user in missing:
            how = f"mapped from '{user}'" if user != canon else f"looked up as '{user}' (not mapped in columns:)"
            close = difflib.get_close_matches(user, present, n=3, cutoff=0.6)
            close += [p for p in present if p.lower() == user.lower() and p not in close]
            if not close and len(user) >= 3:  # an abbreviation: 'Qty' for 'Quantity', 'Cust' for 'CustomerID'
                close = [p for p in present if _abbreviates(user, p)][:3]
            near = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""  # as config keys say it
            parts.append(f"'{canon}' {how}{near}")
        extra = ""
        if name == "order_lines" and any(c == "unit_price" for c, _ in missing):
            extra = " (order_lines needs unit_price or line_amount)"
        said = "; ".join(parts) + extra
        raise DataError(
            f"{src.describe()}: {name} is missing required column(s): {said}"
            + ("" if said.endswith("?") else ".") + f" Columns present: {present}{hint}"
        )
    _one_column_each(name, src, wanted)
    return wanted


def _spacing(name: str) -> str:
    """A column name without spaces around it and with one space between words."""
    return " ".join(str(name).split())


def _abbreviates(short: str, name: str) -> bool:
    """``short``'s letters appear in ``name`` in order, starting with its first (case-insensitive)."""
    a, b = short.lower(), name.lower()
    if not b.startswith(a[0]):
        return False
    it = iter(b)
    return all(ch in it for ch in a)


def _one_column_each(name: str, src: TableSource, wanted: dict[str, str]) -> None:
    """A column of yours mapped to one contract column (``line_amount: price``) and also read as
    another, unmapped contract column that has its name (``price``... as ``unit_price`` when the
    file has a ``unit_price`` column mapped elsewhere) would copy one into the other: refuse it.
    Two explicit mappings to one column (``account_id: agency`` and ``location: agency``) are
    meant and allowed."""
    by_user: dict[str, list[str]] = {}
    for canon, user in wanted.items():
        if not canon.startswith(DERIVED_PREFIX):
            by_user.setdefault(user, []).append(canon)
    parts = []
    for user, canons in by_user.items():
        implicit = [c for c in canons if c not in src.columns]
        explicit = [c for c in canons if c in src.columns]
        if implicit and explicit:
            parts.append(f"your column '{user}' is mapped to {explicit} and would also be read as "
                         f"{implicit} (not mapped, so looked up under its own name)")
    if parts:
        raise DataError(
            f"{src.describe()}: {name}: {'; '.join(parts)}, one copying the other: map each of these contract "
            f"columns under data.{name}.columns to its own column of yours (or map both to it on purpose)"
        )


@contextmanager
def _progress(enabled: bool, label: str, total: int | None) -> Iterator[object]:
    """A rich progress bar on stderr (a no-op when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    cols = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total:
        cols.append(DownloadColumn())
    cols.append(TimeElapsedColumn())
    with Progress(*cols, console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(label, total=total)
        yield (prog, task)


class _CountingFile:
    """File wrapper that reports bytes read to a rich progress task."""

    def __init__(self, fh, bar):  # type: ignore[no-untyped-def]
        self._fh = fh
        self._bar = bar

    def read(self, n: int = -1) -> bytes:
        b = self._fh.read(n)
        if self._bar is not None:
            prog, task = self._bar
            prog.update(task, completed=self._fh.tell())
        return b

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._fh, name)


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


def _read_csv(name: str, src: TableSource, progress: bool) -> RawTable:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = src.path
    assert path is not None
    sep = src.csv_sep()
    try:
        if _compression(path) == "zstd":  # pandas would need the (uninstalled) zstandard package
            with pa.OSFile(str(path), "rb") as raw, _csv_stream(raw, path) as stream:
                header = pd.read_csv(stream, nrows=0, sep=sep, encoding=src.encoding)
        else:  # from the path: pandas decodes only what it needs for the header line
            header = pd.read_csv(path, nrows=0, sep=sep, encoding=src.encoding)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: {name} file is empty (no header line)") from None
    except (EOFError, OSError) as exc:  # a truncated .gz / .bz2, or one that is not compressed
        raise DataError(_unreadable(name, path, exc)) from None
    except UnicodeError as exc:  # UnicodeDecodeError, or utf-16 without a byte order mark
        if _utf16_bom(path):
            raise DataError(
                f"{path}: {name} is UTF-16 text (it starts with a UTF-16 byte order mark, as Excel's 'Unicode text' "
                f"export writes it), not {src.encoding}; set encoding: utf-16 in the config's data.{name} entry "
                "(and sep: tab for that export), or save the file as CSV UTF-8"
            ) from None
        eg = "latin-1 or cp1252" if codecs.lookup(src.encoding).name == "utf-8" else "utf-8, latin-1 or cp1252"
        raise DataError(
            f"{path}: cannot decode the header with encoding '{src.encoding}' ({exc}); set encoding: "
            f"(e.g. {eg}) in the config's data.{name} entry"
        ) from None
    present = [str(c) for c in header.columns]
    raw_names = _raw_header(path, sep, src.encoding)
    if raw_names is not None and len(raw_names) == len(present):
        present = raw_names  # pyarrow's names: repeated ones are not renamed 'x.1' as pandas does
    wanted = _wanted(name, src, present, hint=_sep_hint(present, sep))
    _no_repeated_columns(name, path, present, wanted)
    user_cols = list(dict.fromkeys(wanted.values()))
    # a compressed file is read serially: threaded readahead over a .gz / .bz2 that is cut short aborted the
    # process at exit ('terminate called without an active exception') after the error; decompressing is
    # serial anyway (online_retail.csv.gz reads no slower)
    read_opts = pacsv.ReadOptions(encoding=src.encoding, block_size=1 << 22, use_threads=_compression(path) is None)
    parse_opts = pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)
    conv_opts = pacsv.ConvertOptions(
        include_columns=user_cols,
        column_types={c: pa.string() for c in user_cols},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    size = path.stat().st_size
    try:
        with _progress(progress, f"reading {name} from {path.name}", size) as bar, open(path, "rb") as fh:
            stream = _csv_stream(pa.PythonFile(_CountingFile(fh, bar), mode="r"), path)
            table = pacsv.read_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts)
    except (pa.ArrowInvalid, UnicodeError) as exc:
        raise DataError(_csv_error(name, src, path, present, exc)) from None
    except (EOFError, OSError) as exc:
        raise DataError(_unreadable(name, path, exc)) from None
    df = _arrow_strings(table)
    return _finish(name, src, df, wanted, present)


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
    return ""


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


def _read_parquet(name: str, src: TableSource, progress: bool) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = src.path
    assert path is not None
    try:
        schema = pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read {name} as Parquet: {exc}") from None
    present = [str(n) for n in schema.names]
    wanted = _wanted(name, src, present)
    _no_repeated_columns(name, path, present, wanted)
    try:
        with _progress(progress, f"reading {name} from {path.name}", None):
            table = pq.read_table(path, columns=list(dict.fromkeys(wanted.values())))
    except (pa.ArrowException, OSError) as exc:  # a footer that reads but data pages that do not
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read {name} as Parquet: {msg}") from None
    df = _arrow_strings(table)
    return _finish(name, src, df, wanted, present)


def _quote_ident(name: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in name.split("."))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_duckdb(name: str, src: TableSource, progress: bool) -> RawTable:
    import duckdb

    path = src.path
    assert path is not None
    if not path.is_file():
        raise DataError(f"{path}: DuckDB file for {name} not found")
    base = _quote_ident(src.table) if src.table else f"({src.query}) AS q"
    with open(path, "rb") as fh:  # DuckDB said 'Cannot launch in-memory database in read-only mode!' of a CSV
        head = fh.read(12)
    if len(head) < 12 or head[8:12] != b"DUCK":
        raise DataError(f"{path}: {name} is not a DuckDB database file (format: duckdb, or a .duckdb / .ddb name); "
                        "set format: csv or parquet for a table file, or point to the .duckdb file")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot open DuckDB file for {name}: {_first_line(exc)}") from None
    try:
        try:
            present = [d[0] for d in con.execute(f"SELECT * FROM {base} LIMIT 0").description]
        except duckdb.Error as exc:  # its first line; the rest quotes the wrapping query and guesses such as pg_enum
            raise DataError(f"{src.describe()}: cannot read {name}: {_first_line(exc)}") from None
        wanted = _wanted(name, src, present)
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in dict.fromkeys(wanted.values()))
        with _progress(progress, f"reading {name} from {path.name}", None):
            df = _arrow_strings(con.execute(f"SELECT {cols} FROM {base}").fetch_arrow_table())
    finally:
        con.close()
    return _finish(name, src, df, wanted, present)


def _read_sql(name: str, src: TableSource, progress: bool) -> RawTable:
    import sqlalchemy as sa

    assert src.url is not None
    from training.scores import _connect_timeout_args

    _check_sqlite_file(name, src)
    try:  # a PostgreSQL server that never answers: 10 s, not for ever
        engine = sa.create_engine(src.url, **_connect_timeout_args(src.url))
    except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        raise DataError(f"{src.describe()}: cannot use this database URL for {name}: {exc}") from None
    try:
        with engine.connect() as conn:
            if src.table:
                schema, _, tname = src.table.rpartition(".")
                try:
                    tbl = sa.Table(tname, sa.MetaData(), schema=schema or None, autoload_with=conn)
                except sa.exc.NoSuchTableError:
                    raise DataError(f"{src.describe()}: table '{src.table}' for {name} does not exist") from None
                present = [c.name for c in tbl.columns]
                wanted = _wanted(name, src, present)
                stmt = sa.select(*[tbl.c[c] for c in dict.fromkeys(wanted.values())])
            else:
                res = conn.execute(sa.text(f"SELECT * FROM ({src.query}) AS q LIMIT 0"))
                present = list(res.keys())
                wanted = _wanted(name, src, present)
                cols = ", ".join('"' + c.replace('"', '""') + '"' for c in dict.fromkeys(wanted.values()))
                stmt = sa.text(f"SELECT {cols} FROM ({src.query}) AS q")
            with _progress(progress, f"reading {name} from the database", None) as bar:
                if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
                    df = _pg_copy(conn, stmt, engine.dialect, bar)
                else:
                    df = pd.read_sql(stmt, conn)
    except DataError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        msg = str(exc).splitlines()[0]
        raise DataError(f"{src.describe()}: cannot read {name}: {msg}") from None
    finally:
        engine.dispose()
    return _finish(name, src, df, wanted, present)


def _check_sqlite_file(name: str, src: TableSource) -> None:
    """A ``sqlite:///file`` that does not exist: say so (connecting would create an empty file)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(src.url or "")
    except Exception:  # noqa: BLE001 - create_engine reports a bad URL below
        return
    if u.get_backend_name() != "sqlite":
        return
    db = u.database or ""
    if not db or db == ":memory:" or db.startswith("file:") or u.query.get("uri"):
        return
    if not Path(db).is_file():
        raise DataError(f"{src.describe()}: SQLite database file for {name} not found: {db}")


def _pg_copy(conn, stmt, dialect, bar) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """PostgreSQL fast path: ``COPY (query) TO STDOUT`` as CSV, parsed by pyarrow as text.

    About 3x faster than row fetching for large tables; values arrive as text exactly like a
    CSV export, and validation parses them the same way (the reports are identical)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    buf = io.BytesIO()
    with conn.connection.driver_connection.cursor() as cur:
        cur.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0")  # column types, to keep numbers numeric
        oids = {d.name: d.type_code for d in cur.description or []}
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)") as cp:
            for chunk in cp:
                buf.write(chunk)
                if bar is not None:
                    bar[0].update(bar[1], description=f"reading from the database: {buf.tell() / 1e6:,.0f} MB")
    buf.seek(0)
    header = buf.readline().decode("utf-8").rstrip("\r\n")
    names = next(iter(__import__("csv").reader([header])))
    buf.seek(0)
    table = pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(block_size=1 << 22),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in names}, strings_can_be_null=True, null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    )
    df = _arrow_strings(table)
    for col, oid in oids.items():
        if oid in _PG_FLOAT_OIDS and col in df.columns:
            df[col] = pd.to_numeric(df[col]).astype("float64")
        elif oid in _PG_INT_OIDS and col in df.columns:
            df[col] = pd.to_numeric(df[col]).astype("Int64")
    return df


_PG_FLOAT_OIDS = {700, 701, 1700}  # real, double precision, numeric
_PG_INT_OIDS = {20, 21, 23}  # bigint, smallint, integer


def _arrow_strings(table) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """An Arrow table as pandas, text columns Arrow-backed (no Python objects: far less memory
    than object columns; validation works on them zero-copy); other types as numpy."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):  # DECIMAL -> float64 (numbers, not Decimal objects)
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    strings = {pa.string(): pd.ArrowDtype(pa.string()), pa.large_string(): pd.ArrowDtype(pa.large_string())}
    return table.to_pandas(types_mapper=strings.get, date_as_object=False)


def _numbers_as_written(s: pd.Series, decimal: str, thousands: str | None) -> pd.Series:
    """Text numbers in the source's layout (``decimal:`` / ``thousands:``) rewritten as
    1234.5; values that do not follow the layout are left as they are (validation then reports
    them as not numbers). Non-text columns are returned unchanged."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_string(s.dtype.pyarrow_dtype)):
        if not (s.dtype == object and s.map(lambda v: isinstance(v, str) or v is None).all()):
            return s
        arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    else:
        arr = s.array.__arrow_array__()
    groups = f"[{thousands}]" if thousands else ("[. '\u00a0\u202f]" if decimal == "," else None)
    dec = f"[{decimal}]"
    if groups is None:  # decimal '.', no grouping: nothing to rewrite
        return s
    pattern = rf"^\s*[+-]?(\d{{1,3}}(?:{groups}\d{{3}})+|\d+)(?:{dec}\d+)?\s*$"
    ok = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    plain = pc.replace_substring_regex(pc.utf8_trim_whitespace(arr), groups, "")
    if decimal != ".":
        plain = pc.replace_substring(plain, decimal, ".")
    out = pc.if_else(ok, plain, arr)
    return pd.Series(pd.arrays.ArrowExtensionArray(out), index=s.index)


def _finish(name: str, src: TableSource, df: pd.DataFrame, wanted: dict[str, str], present: list[str]) -> RawTable:
    out = pd.DataFrame({canon: df[user] for canon, user in wanted.items()}, index=pd.RangeIndex(len(df)))
    if src.decimal != "." or src.thousands is not None:
        known = {c.name: c.dtype for c in TABLES[name]}
        for c in out.columns:  # number columns of the contract, and accounts' extra attributes
            if known.get(c) == "float" or (name == "accounts" and c not in known):
                out[c] = _numbers_as_written(out[c], src.decimal, src.thousands)
    return RawTable(name=name, source=src.describe(), frame=out, mapping=dict(wanted), columns_present=present)


def read_table(name: str, src: TableSource, *, progress: bool = False) -> RawTable:
    """Read the source of contract table ``name`` with canonical column names (no cleaning)."""
    if name not in TABLES:
        raise ValueError(f"unknown contract table {name!r}; known: {sorted(TABLES)}")
    fmt = src.resolved_format()
    if src.path is not None and fmt != "duckdb" and not src.path.exists():
        hint = ""
        if src.path.parent.name == "synthetic":
            hint = " (generate the synthetic dealer network first: dealerml data generate)"
        raise DataError(f"{src.path}: {name} file not found{hint}")
    if src.path is not None and src.path.is_dir():
        from training.user_files import folder_problem

        if fmt != "parquet":  # format: csv / duckdb on a folder: open() would raise IsADirectoryError
            raise DataError(f"{src.path}: {name}: is a folder, but format: {fmt} reads one file; point "
                            f"data.{name}.path at the file (a folder is read only as Parquet files)")
        problem = folder_problem(src.path)
        if problem:
            raise DataError(f"{name}: {problem}")
    if src.path is not None and fmt == "csv":
        from training.user_files import workbook_problem

        problem = workbook_problem(src.path)
        if problem:
            raise DataError(f"{name}: {problem}")
    if fmt == "csv":
        return _read_csv(name, src, progress)
    if fmt == "parquet":
        return _read_parquet(name, src, progress)
    if fmt == "duckdb":
        return _read_duckdb(name, src, progress)
    return _read_sql(name, src, progress)
