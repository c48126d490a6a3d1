"""Read one configured table (CSV / Parquet / DuckDB / SQLAlchemy URL) into a raw frame.

``read_table(name, src)`` returns a :class:`RawTable`: the user's mapped columns renamed to
the canonical names of ``training/contract.py``, values as read (text columns as ``str``;
CSV files are read entirely as text so ids such as ``C536379`` or ``00123`` survive). Typing,
cleaning and the quality report happen in :mod:`training.validate`.

A required canonical column that is not in the source raises :class:`DataError` naming the
source, the canonical column, the user column it was mapped from and the columns present.

Which columns to read lives in :mod:`training._sources_columns`, the CSV helpers (compression,
header, the messages for a file that cannot be read) in :mod:`training._sources_csv`; their names
are re-exported here.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from training._sources_columns import (  # noqa: F401 - re-exported: DERIVED_PREFIX is public
    DERIVED_PREFIX,
    _abbreviates,
    _one_column_each,
    _spacing,
    _wanted,
)
from training._sources_csv import (  # noqa: F401 - re-exported: training.user_files imports some from here
    _BAD_TEXT_RE,
    _compression,
    _csv_error,
    _csv_stream,
    _first_ragged_line,
    _first_undecodable_line,
    _no_repeated_columns,
    _raw_header,
    _sep_hint,
    _unreadable,
    _utf16_bom,
)
from training._sources_export_checks import (
    _text,
    refuse_dot_decimals,
    refuse_dot_grouped,
    refuse_dot_grouped_outside_layout,
    refuse_scientific_ids,
    refuse_utf8_read_as_single_byte,
)
from training.config import TableSource
from training.contract import TABLES
from training.errors import DataError

__all__ = ["RawTable", "read_table", "required_columns", "DERIVED_PREFIX"]


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
    if present and present[0].startswith("\u00ef\u00bb\u00bf"):  # a UTF-8 byte order mark read as latin-1 / cp1252
        raise DataError(
            f"{path}: {name} starts with a UTF-8 byte order mark (read as 'ï»¿' before '{present[0][3:]}'), so it is "
            f"UTF-8 text, not {src.encoding}: its accented letters would be read garbled; set encoding: utf-8 (or "
            f"remove encoding:) in the config's data.{name} entry"
        )
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
    import pyarrow.compute as pc

    arr = _text(s)
    if arr is None:
        return s
    if thousands == " ":  # spreadsheets group thousands with a non-breaking (or narrow) space, which looks the same
        groups = "[ \u00a0\u202f]"
    elif thousands == "'":  # and Swiss ones (Windows de-CH) with a typographic apostrophe: 1\u2019234.50
        groups = "['\u2019]"
    else:
        groups = f"[{thousands}]" if thousands else ("[. '\u00a0\u202f\u2019]" if decimal == "," else None)
    dec = f"[{decimal}]"
    if groups is None:  # decimal '.', no grouping: nothing to rewrite
        return s
    pattern = rf"^[+-]?(\d{{1,3}}(?:{groups}\d{{3}})+|\d+)(?:{dec}\d+)?$"
    trimmed = pc.utf8_trim_whitespace(arr)  # also a no-break space after the number (RE2's \s is ASCII only)
    ok = pc.fill_null(pc.match_substring_regex(trimmed, pattern), False)
    plain = pc.replace_substring_regex(trimmed, groups, "")
    if decimal != ".":
        plain = pc.replace_substring(plain, decimal, ".")
    out = pc.if_else(ok, plain, arr)
    return pd.Series(pd.arrays.ArrowExtensionArray(out), index=s.index)


_NEGATIVES = {  # negatives: setting -> (a negative as that layout writes it, its digits as group 1)
    # SAP: 6-, 1.234,50-; also the typographic minus or a dash a spreadsheet writes for it (6\u2212), which
    # was dropped row by row as not a number while 6- was read
    "trailing": r"^\s*(\d[\d.,' " "\u00a0\u202f\u2019" r"]*?)\s*[" "-\u2212\u2012\u2013\u2014" r"]\s*$",
    "parentheses": r"^\s*\(\s*(\d[\d.,' " "\u00a0\u202f\u2019" r"]*?)\s*\)\s*$",  # accounting: (6), (1,234.50)
}  # (the no-break spaces as characters: RE2 reads no \u escapes)


def _negatives_as_written(s: pd.Series, how: str) -> pd.Series:
    """Text numbers whose negatives are written ``6-`` (``negatives: trailing``) or ``(6)``
    (``parentheses``) with the minus sign first (-6); other values as they are. Non-text columns
    are returned unchanged."""
    import pyarrow.compute as pc

    arr = _text(s)
    if arr is None:
        return s
    out = pc.replace_substring_regex(arr, _NEGATIVES[how], r"-\1")
    return pd.Series(pd.arrays.ArrowExtensionArray(out), index=s.index)


def _finish(name: str, src: TableSource, df: pd.DataFrame, wanted: dict[str, str], present: list[str]) -> RawTable:
    out = pd.DataFrame({canon: df[user] for canon, user in wanted.items()}, index=pd.RangeIndex(len(df)))
    known = {c.name: c.dtype for c in TABLES[name]}
    # number columns of the contract, and accounts' extra attributes
    numbers = [c for c in out.columns if known.get(c) == "float" or (name == "accounts" and c not in known)]
    if src.negatives != "leading":  # SAP's 6- or accounting's (6): the minus sign first, before any other reading
        for c in numbers:
            out[c] = _negatives_as_written(out[c], src.negatives)
    source = src.describe()
    refuse_scientific_ids(name, source, out, wanted)
    refuse_utf8_read_as_single_byte(name, source, out, wanted, src.encoding)
    if src.decimal != "." or src.thousands is not None:
        if src.decimal == "," and src.thousands is None:
            refuse_dot_decimals(name, source, out, wanted, numbers)
        elif src.decimal == "," and src.thousands != ".":  # 1.200 beside 1 234,50: '.' is in neither role
            refuse_dot_grouped_outside_layout(name, source, out, wanted, numbers, src.thousands)
        for c in numbers:
            out[c] = _numbers_as_written(out[c], src.decimal, src.thousands)
    else:
        refuse_dot_grouped(name, source, out, wanted, numbers)
    return RawTable(name=name, source=source, frame=out, mapping=dict(wanted), columns_present=present)


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
