"""Atomic writes of score tables (churn scores, dealer scores, alerts) for the CRM.

A *target* is one of

- a DuckDB file (``*.duckdb``, ``*.ddb``; the default is ``training.paths.scores_db()``),
- a SQLite file (``*.sqlite``, ``*.sqlite3``, ``*.db``) or ``sqlite:///...`` URL,
- any other SQLAlchemy URL (``postgresql+psycopg://user@host:5432/db``),
- a plain file (``*.csv``, ``*.parquet``): then ``table`` is ignored.

``write_table(df, target, table)`` never leaves a half-written table: rows go to a
temporary table (or temporary file) first; then, in one transaction, the old table's rows are
swapped for them when it has the same columns and types, new columns of a later version being
added to it (grants, views and indexes on it stay), else (a column dropped or retyped) the old
table is dropped and the new one renamed (or one ``os.replace`` for a file): PostgreSQL refuses
that while a view depends on the table; SQLite's views read the new table, and a view that reads a
column the new table lacks is refused by name (:func:`_sqlite_replace_keeping_views`). A run that fails or is killed before
the commit leaves the previous table exactly as it was; SIGTERM rolls back and removes the
temp file like Ctrl-C, and the temp file of a SIGKILLed writer is removed by the next write.
Database and file-system errors become a ``DataError`` naming the target.

``Database`` is the small connection wrapper used for multi-statement transactions
(the alerts state machine); it speaks DuckDB natively and everything else via SQLAlchemy.

Layout: what a target is and the checks made before any work (``resolve_out``, ``check_target``,
``describe_target``, ``target_errors``, ``_masked``, ``_short``) are in
:mod:`training._scores_targets`; the steps of the atomic replace that open no connection (SQLite's
view-keeping rename, the added-columns check, the temp-file write, SIGTERM as Ctrl-C) in
:mod:`training._scores_atomic`. This module keeps the connections (``Database``, ``open_db``, and
``CONNECT_TIMEOUT_S`` / ``_connect_timeout_args``, which tests patch here) and ``write_table``,
``read_table``, ``table_exists``; it re-exports every name that moved: import them from here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from training._scores_atomic import (  # noqa: F401 - the write's steps, re-exported (_q, _view_reads ...)
    _TYPE_NAME,
    _added_columns,
    _q,
    _remove_stale_temp_files,
    _sigterm_as_interrupt,
    _sqlite_replace_keeping_views,
    _view_reads,
    _write_file_atomic,
)
from training._scores_targets import (  # noqa: F401 - re-exported: callers import these from here
    _DUCKDB_EXT,
    _FILE_EXT,
    _IDENT,
    _SQLITE_EXT,
    DATABASE_FORMS,
    _check_ident,
    _kind,
    _local_path,
    _masked,
    _short,
    check_target,
    describe_target,
    resolve_out,
    score_destination,
    target_errors,
)
from training.errors import ConfigError, DataError, hide_url_passwords

__all__ = ["write_table", "read_table", "table_exists", "Database", "open_db", "resolve_out", "check_target",
           "describe_target", "target_errors", "score_destination", "DATABASE_FORMS"]


# ----------------------------------------------------------------- Database
# PostgreSQL: the schema of the table the name :t resolves to on the search path (NULL: none)
_PG_SCHEMA_OF = ("(select n.nspname from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = "
                 "c.relnamespace where c.oid = to_regclass(quote_ident(:t)))")


class Database:
    """One open connection inside one transaction (see ``open_db``)."""

    def __init__(self, kind: str, conn: Any) -> None:
        self.kind = kind
        self._conn = conn

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        if self.kind == "duckdb":
            self._conn.execute(_to_duckdb_params(sql), params or {})
        else:
            from sqlalchemy import text

            self._conn.execute(text(sql), params or {})

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.kind == "duckdb":
            return self._conn.execute(_to_duckdb_params(sql), params or {}).df()
        from sqlalchemy import text

        res = self._conn.execute(text(sql), params or {})
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))

    @property
    def pg(self) -> bool:
        """Whether this is a PostgreSQL connection."""
        return self.kind == "sqlalchemy" and self._conn.dialect.name == "postgresql"

    def pg_schema_of(self, table: str) -> str | None:
        """PostgreSQL: the schema of the table an unquoted-schema ``"table"`` names, the first on the
        search path that has it (None: none has it)."""
        _check_ident(table)
        got = self.query("select " + _PG_SCHEMA_OF, {"t": table})
        return None if got.empty or got.iloc[0, 0] is None else str(got.iloc[0, 0])

    def column_types(self, table: str) -> list[tuple[str, str]]:
        """(column, type) of ``table`` in the current schema (DuckDB ...); PostgreSQL: of the table the
        name resolves to on the search path (``crm,public``: public's when crm has none, the one
        ``table_exists`` found and the SQL writes to); SQLite: the declared types (``PRAGMA table_info``)."""
        _check_ident(table)
        if self.kind == "sqlite":
            info = self.query(f'pragma table_info("{table}")')
            return [(str(c), str(t)) for c, t in zip(info["name"], info["type"], strict=True)] if len(info) else []
        cur = "current_schema()"
        if self.pg:  # the schema the name resolves to on the search path, as table_exists and the SQL do
            cur = _PG_SCHEMA_OF
        name = "lower(table_name) = lower(:t)" if self.kind == "duckdb" else "table_name = :t"  # see table_exists
        return list(self.query(
            f"select column_name, data_type from information_schema.columns where {name} "
            f"and table_schema = {cur} order by ordinal_position", {"t": table}).itertuples(index=False, name=None))

    def table_exists(self, table: str) -> bool:
        """Whether ``table`` exists, as the database resolves the name: DuckDB (and SQLite) names are
        case-insensitive even when quoted, so ``Churn_Scores`` is the table ``churn_scores`` (compared
        exactly, it was 'missing' and the rename onto it was refused: 'another entry with this name
        already exists'); PostgreSQL's quoted names are case-sensitive. DuckDB: in the current schema
        (main), where the unqualified name resolves and ``column_types`` looks (a ``crm.churn_scores``
        made in the file by someone else counted as ``churn_scores``, and the refresh failed with
        'Table with name churn_scores does not exist!')."""
        _check_ident(table)
        if self.kind == "duckdb":
            n = self._conn.execute(
                "select count(*) from information_schema.tables where lower(table_name) = lower(?) "
                "and table_schema = current_schema()", [table]
            ).fetchone()[0]
            return bool(n)
        from sqlalchemy import inspect

        return bool(inspect(self._conn).has_table(table))

    def insert_df(
        self,
        table: str,
        df: pd.DataFrame,
        *,
        create: bool = False,
        chunksize: int = 50_000,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> None:
        """Append ``df`` to ``table`` (``create=True``: create it from ``df``'s columns first)."""
        _check_ident(table)
        n = len(df)
        starts = range(0, max(n, 1), chunksize)
        for i, start in enumerate(starts):
            chunk = df.iloc[start : start + chunksize]
            if self.kind == "duckdb":
                name = f"_chunk_{uuid.uuid4().hex[:8]}"
                self._conn.register(name, chunk)
                try:
                    if create and i == 0:
                        self._conn.execute(f'create table "{table}" as select * from {name}')
                    else:
                        self._conn.execute(f'insert into "{table}" by name select * from {name}')
                finally:
                    self._conn.unregister(name)
            else:
                chunk.to_sql(
                    table,
                    self._conn,
                    if_exists="fail" if (create and i == 0) else "append",
                    index=False,
                    method="multi" if self.kind != "sqlite" else None,
                    chunksize=1000 if self.kind != "sqlite" else None,
                )
            if on_chunk is not None:
                on_chunk(i, min(start + chunksize, n))


def _to_duckdb_params(sql: str) -> str:
    """``:name`` (SQLAlchemy style) -> ``$name`` (DuckDB style)."""
    return re.sub(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)", r"$\1", sql)


def _duckdb_connect(path: str, read_only: bool, lock_timeout: float):
    """DuckDB allows one writing process per file: wait up to ``lock_timeout`` s for the lock."""
    import time

    import duckdb

    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def open_db(
    target: str | Path, *, read_only: bool = False, lock_timeout: float = 30.0, serialize: str | None = None
) -> Iterator[Database]:
    """Open ``target`` and run the block in one transaction: commit on success, roll back on error.

    DuckDB files are opened ``read_only`` when asked (readers such as the service), and a
    file locked by another process is retried for up to ``lock_timeout`` seconds.

    ``serialize=KEY``: transactions with the same key run one after the other, never
    interleaved (read-then-write state machines such as the alerts): DuckDB allows one writing
    process per file anyway; SQLite takes the write lock at BEGIN (``BEGIN IMMEDIATE``);
    PostgreSQL takes a transaction advisory lock on the key. Each waits up to ``lock_timeout`` s.
    """
    kind = _kind(target)
    if kind == "file":
        raise ConfigError(f"{target}: a .csv/.parquet file is not a database; use a DuckDB/SQLite file or a URL")
    if kind == "duckdb":
        if not read_only:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        import duckdb

        try:
            conn = _duckdb_connect(str(target), read_only, lock_timeout)
        except duckdb.Error as exc:
            raise DataError(f"cannot open the DuckDB file {target}: {_short(exc)}") from None
        try:
            conn.execute("begin transaction")
            try:
                yield Database("duckdb", conn)
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")
        finally:
            conn.close()
        return
    from sqlalchemy import create_engine

    url = str(target)
    if kind == "sqlite" and "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(url).resolve()}"
    from sqlalchemy.exc import ArgumentError, DBAPIError

    try:
        engine = create_engine(url, **({"connect_args": {"timeout": lock_timeout}} if kind == "sqlite"
                                        else _connect_timeout_args(url)))
    except (ArgumentError, ModuleNotFoundError, ValueError) as exc:
        raise DataError(f"cannot connect to {_masked(url)}: {hide_url_passwords(_short(exc))}") from None
    if kind == "sqlite":
        _sqlite_transactional_ddl(engine, immediate=serialize is not None and not read_only)
    try:
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise DataError(f"cannot connect to {_masked(url)}: {_short(exc.orig or exc)}") from None
        with conn:
            try:
                trans = conn.begin()  # SQLite with serialize: BEGIN IMMEDIATE waits for the write lock
            except DBAPIError as exc:
                why = _short(exc.orig or exc)
                if "locked" in why or "busy" in why:
                    raise DataError(f"{_masked(url)}: another process holds the write lock for more than "
                                    f"{lock_timeout:g} s ({why}); try again later") from None
                raise DataError(f"cannot open {_masked(url)}: {why}") from None
            try:
                if serialize is not None and conn.dialect.name == "postgresql":
                    from sqlalchemy import text

                    conn.execute(text(f"set local lock_timeout = {int(lock_timeout * 1000)}"))
                    try:
                        conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _lock_key(serialize)})
                    except DBAPIError as exc:
                        raise DataError(f"{_masked(url)}: another run of {serialize} held its lock for more than "
                                        f"{lock_timeout:g} s ({_short(exc.orig or exc)}); try again later") from None
                yield Database("sqlite" if kind == "sqlite" else "sqlalchemy", conn)
            except BaseException:
                trans.rollback()
                raise
            trans.commit()
    finally:
        engine.dispose()


CONNECT_TIMEOUT_S = 10


def _connect_timeout_args(url: str) -> dict[str, Any]:
    """PostgreSQL (psycopg / psycopg2): give up connecting after :data:`CONNECT_TIMEOUT_S` s unless
    the URL sets ``connect_timeout``. libpq waits for ever by default: a server (or proxy) that takes
    the connection and never answers hung ``dealerml alerts`` / ``score``, and each GET /churn_alerts
    of the service held a worker thread and the alerts lock (one such target made /model_info wait
    behind them once the thread pool was taken)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if (u.get_backend_name() == "postgresql" and u.get_driver_name() in ("psycopg", "psycopg2")
            and "connect_timeout" not in u.query):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"dealerml:{name}".encode()).digest()[:8], "big", signed=True)


def _sqlite_transactional_ddl(engine, immediate: bool = False) -> None:
    """pysqlite runs DDL outside transactions by default; make BEGIN explicit (SQLAlchemy recipe).
    ``immediate``: take the write lock at BEGIN, so two read-then-write runs never interleave."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# ------------------------------------------------------------- write / read
def write_table(
    df: pd.DataFrame,
    target: str | Path,
    table: str | None = None,
    *,
    chunksize: int = 50_000,
    on_chunk: Callable[[int, int], None] | None = None,
) -> None:
    """Replace ``table`` in ``target`` with ``df`` atomically (see module docstring).

    ``on_chunk(chunk_index, rows_written)`` is called after each chunk (progress bars).
    """
    kind = _kind(target)
    check_target(target)
    table = None if kind == "file" else _check_ident(table or "")
    try:
        with _sigterm_as_interrupt():
            if kind == "file":
                _write_file_atomic(df, Path(target), on_chunk=on_chunk)
                return
            tmp = f"{table[:40]}__tmp_{uuid.uuid4().hex[:10]}"
            with open_db(target, serialize=f"table:{table}") as db:  # SQLite: two writers queue, not fail
                if db.table_exists(table):
                    _refuse_alerts_table(db, table, target)
                db.insert_df(tmp, df, create=True, chunksize=chunksize, on_chunk=on_chunk)
                if db.table_exists(table):
                    added = _added_columns(db, table, tmp)
                    if added is not None:
                        # same columns and types (a new version may add some): swap the rows in
                        # place, so what the CRM's DBA put on the table (grants, views over it,
                        # indexes) survives the refresh; a view over it made a new column a refusal
                        # (SQLite: the rename of the recreated table failed on any view over it)
                        for col, typ in added:
                            db.execute(f'alter table "{table}" add column "{col}" {typ}')
                        cols = ", ".join(f'"{c}"' for c in df.columns)
                        db.execute(f'delete from "{table}"')
                        db.execute(f'insert into "{table}" ({cols}) select {cols} from "{tmp}"')
                        db.execute(f'drop table "{tmp}"')
                        return
                    if db.kind != "sqlite":
                        home = db.pg_schema_of(table) if db.pg else None
                        db.execute(f'drop table "{table}"')
                        if home is not None and home != db.pg_schema_of(tmp):
                            # the table is on the search path behind the first schema (crm,public): keep
                            # it where it was, as the same-columns swap above does, rather than create
                            # it in crm while readers of public keep the old rows
                            db.execute(f'alter table "{tmp}" set schema {_q(home)}')
                if db.kind == "sqlite":  # a view naming the table (made before it, even) failed the rename
                    _sqlite_replace_keeping_views(db, tmp, table, target)
                    return
                db.execute(f'alter table "{tmp}" rename to "{table}"')
    except target_errors() as exc:
        raise DataError(f"cannot write {describe_target(target, table)}: {_short(exc)}; "
                        "the previous table or file is unchanged") from exc


def _refuse_alerts_table(db: Database, table: str, target: str | Path) -> None:
    """A score table written over one of ``dealerml alerts``' tables (``--out churn_alerts``, or ``churn.alerts_table``
    named like ``churn.scores_table``) replaced the alerts history, the last tier per account or the cutoffs already
    run, and the next ``alerts`` run then refused the table: refused here, before anything is written."""
    from training._alerts_store import _ALERT_COLUMNS

    have = {c.lower() for c, _ in db.column_types(table)}
    kinds = ((set(_ALERT_COLUMNS), "history"), ({"account_id", "tier", "cutoff"}, "state (the last tier per account)"),
             ({"cutoff", "run_at", "n_alerts"}, "run log (the cutoffs already run)"))
    what = next((w for cols, w in kinds if cols <= have and (not w.startswith("state") or have == cols)), None)
    if what is not None:
        raise DataError(f"{describe_target(target, table)} is the {what} table of `dealerml alerts`; writing scores "
                        "there would replace it: choose another table (--out), and keep churn.scores_table and "
                        "churn.alerts_table apart; the table is unchanged")


def table_exists(target: str | Path, table: str) -> bool:
    if _kind(target) == "file":
        return Path(target).exists()
    if _kind(target) == "duckdb" and not Path(target).exists():
        return False
    with open_db(target, read_only=True) as db:
        return db.table_exists(table)


def read_table(target: str | Path, table: str | None = None) -> pd.DataFrame:
    """Read a whole score table (or a .csv/.parquet score file)."""
    kind = _kind(target)
    if kind == "file":
        p = Path(target)
        # ids are text (docs/DATA.md): 00123 must not come back as the number 123
        return pd.read_csv(p, dtype={"account_id": str}) if p.suffix.lower() == ".csv" else pd.read_parquet(p)
    table = _check_ident(table or "")
    with open_db(target, read_only=True) as db:
        return db.query(f'select * from "{table}"')
