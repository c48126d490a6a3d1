"""The locks that keep processes sharing one MLflow store apart: while a store is opened (its tables
created or migrated, :func:`_creation_lock`) and while a registered model's champion is read and set
(:func:`registry_lock`).

SQLite: an exclusive ``flock`` (on the store's folder; on its database file). PostgreSQL: a session
advisory lock (:func:`_take_pg_advisory_lock`), released when its connection closes, also when the
process dies. A tracking server (``http(s)://``) offers no lock: nothing is held there, and
:func:`registry_lock` yields False so that its callers check what they set instead. Private to the
MLflow adapter (:mod:`training.tracking`). Nothing is configured at import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from training._tracking_uri import (
    _scheme,
    _sqlite_file,
    _store_unreadable,
    _with_connect_timeout,
    shown_tracking_uri,
    tracking_uri,
)
from training.errors import ConfigError

# PostgreSQL stores this process has opened once under the lock (their tables exist from then on)
_OPENED: set[str] = set()
_PG_CREATION_LOCK_KEY = 0x6465_616C_6572_6D6C  # 'dealerml': one advisory lock per database
CREATION_LOCK_TIMEOUT_S = 120  # s: SQLite (flock) and PostgreSQL (advisory lock) alike


@contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite store's folder, or a PostgreSQL advisory lock on the store's
    database, while MLflow opens it. Opening a new (or older) store creates (migrates) its tables,
    unlocked: two ``dealerml train churn`` started together on a fresh $DEALERML_HOME both created them,
    and one died after its backtest in a traceback ("table online_scoring_configs already exists"); on a
    fresh PostgreSQL database the second said "cannot read the MLflow registry ...: IntegrityError ...
    duplicate key value violates unique constraint "pg_type_typname_nsp_index" ... (alembic_version ...)"
    and lost its run. Waits for the other process up to :data:`CREATION_LOCK_TIMEOUT_S`, then a
    ConfigError naming the lock (and, for SQLite, the process holding it when /proc/locks says; the
    flock waited forever); other stores: no lock."""
    if _scheme(uri) == "postgresql":
        with _pg_creation_lock(uri):
            yield
        return
    db = _sqlite_file(uri)
    if db is None:
        yield
        return
    try:
        fd = os.open(db.parent, os.O_RDONLY)
    except OSError:  # a folder that cannot be opened: MLflow names the problem as before
        yield
        return
    try:
        _flock_within(fd, CREATION_LOCK_TIMEOUT_S, 0.05, lambda: ConfigError(
            f"cannot open the MLflow store at {shown_tracking_uri()}: another process has been creating "
            f"or upgrading its tables for more than {CREATION_LOCK_TIMEOUT_S} s (it holds a flock on "
            f"{db.parent}{_flock_holder(fd)}); try again when it has finished"))
        yield
    finally:
        os.close(fd)  # releases the lock


def _flock_within(fd: int, timeout_s: float, poll_s: float, timed_out: Callable[[], Exception]) -> None:
    """Take an exclusive ``flock`` on ``fd``, polling every ``poll_s`` s; ``timed_out()`` is raised after
    ``timeout_s`` s of another process holding it."""
    import fcntl

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise timed_out() from None
            time.sleep(poll_s)


def _flock_holder(fd: int) -> str:
    """``: process <pid> (<command line>)`` for the process /proc/locks names as holding the flock on the
    file open as ``fd``; ``; see /proc/locks`` when it cannot be told (no /proc, another pid namespace)."""
    try:
        st = os.fstat(fd)
        inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return "; see /proc/locks"
    for line in lines:
        parts = line.split()
        if "->" in parts or len(parts) < 6 or parts[1] != "FLOCK" or parts[5] != inode:
            continue  # a waiter, another kind of lock or another file
        pid = parts[4]
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = ""
        return f": process {pid}" + (f" ({cmd[:200]})" if cmd else "")
    return "; see /proc/locks"


@contextmanager
def _pg_creation_lock(uri: str) -> Iterator[None]:
    """A session advisory lock on the PostgreSQL database of ``uri`` (released when its connection
    closes, also when the process dies), taken once per process and store: after MLflow has opened the
    store once, its tables exist and MLflow keeps that store for the process."""
    if uri in _OPENED:
        yield
        return
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    try:
        engine = create_engine(uri, poolclass=NullPool)
        conn = engine.connect()
    except Exception:  # noqa: BLE001 - a URI or server SQLAlchemy cannot use: MLflow names it as before
        yield
        return
    try:
        _take_pg_advisory_lock(conn, str(_PG_CREATION_LOCK_KEY), CREATION_LOCK_TIMEOUT_S, lambda: ConfigError(
            f"cannot open the MLflow store at {shown_tracking_uri()}: another process has been creating "
            f"or upgrading its tables for more than {CREATION_LOCK_TIMEOUT_S} s (it holds the advisory "
            f"lock {_PG_CREATION_LOCK_KEY}; see pg_locks); try again when it has finished"))
        yield
        _OPENED.add(uri)
    finally:
        conn.close()  # releases the advisory lock
        engine.dispose()


def _take_pg_advisory_lock(conn: Any, key: str, timeout_s: int, timed_out: Callable[[], ConfigError]) -> None:
    """Take the session advisory lock ``pg_advisory_lock(key)`` on ``conn`` (held until the connection
    closes, also when the process dies), waiting up to ``timeout_s``: then ``timed_out()``; any other
    failure is the store's (``_store_unreadable``), named, not a traceback. No transaction stays open."""
    try:
        conn.exec_driver_sql(f"SET lock_timeout = '{timeout_s}s'")
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
        conn.commit()
    except Exception as err:  # noqa: BLE001 - a wait that timed out, or the store failing: each named
        if _lock_not_available(err):
            raise timed_out() from None
        raise _store_unreadable(err) from None


_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE lock_not_available: what a lock_timeout that ran out raises


def _lock_not_available(err: Exception) -> bool:
    """Whether ``err`` (SQLAlchemy's, or the driver's own) is PostgreSQL's lock_not_available, by its SQLSTATE
    (psycopg ``sqlstate``, psycopg2 ``pgcode``): the English text "lock timeout" was read, so a server whose
    messages are in another language (lc_messages) said "cannot read the MLflow registry" instead of naming
    the lock. The text is read only when the driver gives no SQLSTATE."""
    for e in (err, getattr(err, "orig", None)):
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and code:
            return code == _LOCK_NOT_AVAILABLE
    return "lock timeout" in str(err)


REGISTRY_LOCK_TIMEOUT_S = 120
_PG_REGISTRY_LOCK_CLASS = 0x646D_6C72  # 'dmlr': with a model name's crc32, one advisory lock per name


@contextmanager
def registry_lock(name: str) -> Iterator[bool]:
    """Hold the lock on registered model ``name`` of the store in force: the champion alias is read and
    set under it (:func:`training._tracking_registry.register_model_uri`, ``registry.promote``), so
    two processes cannot both find 'no champion' and both set it. A SQLite store: an exclusive
    ``flock`` on its database file (SQLite itself uses POSIX locks, which do not meet it); a PostgreSQL
    store: a session advisory lock on the pair (:data:`_PG_REGISTRY_LOCK_CLASS`, crc32 of the name).
    Both are released when the process dies. Waits up to :data:`REGISTRY_LOCK_TIMEOUT_S`, then a
    ConfigError. Yields whether a lock is held: other stores (a tracking server) offer none, and
    the callers then check what they set afterwards (``_tracking_registry``, ``registry.promote``)."""
    # imported here: the store module opens the store under this module's _creation_lock
    from training._tracking_store import _configure

    _configure()  # the store's own checks first (a password holding '@', a store that is down: named as such)
    uri = _with_connect_timeout(tracking_uri())
    if _scheme(uri) == "postgresql":
        with _pg_registry_lock(uri, name):
            yield True
        return
    db = _sqlite_file(uri)
    if db is None or not db.is_file():
        yield False
        return
    fd = os.open(db, os.O_RDONLY)
    try:
        _flock_within(fd, REGISTRY_LOCK_TIMEOUT_S, 0.02,
                      lambda: _registry_lock_timeout(name, f"a flock on {db}{_flock_holder(fd)}"))
        yield True
    finally:
        os.close(fd)  # releases the lock


def _registry_lock_timeout(name: str, what: str) -> ConfigError:
    return ConfigError(f"cannot set the aliases of {name} in {shown_tracking_uri()}: another process has held its "
                       f"registry lock ({what}) for more than {REGISTRY_LOCK_TIMEOUT_S} s; try again when it has "
                       "finished")


@contextmanager
def _pg_registry_lock(uri: str, name: str) -> Iterator[None]:
    import zlib

    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(zlib.crc32(name.encode()).to_bytes(4, "big"), "big", signed=True)  # an int4
    engine = create_engine(uri, poolclass=NullPool)
    try:
        conn = engine.connect()
    except Exception as err:  # noqa: BLE001 - MLflow reached this store a moment ago: named, not a traceback
        engine.dispose()
        raise _store_unreadable(err) from None
    try:
        _take_pg_advisory_lock(conn, f"{_PG_REGISTRY_LOCK_CLASS}, {key}", REGISTRY_LOCK_TIMEOUT_S,
                               lambda: _registry_lock_timeout(
                                   name, f"the advisory lock ({_PG_REGISTRY_LOCK_CLASS}, {key}); see pg_locks"))
        yield
    finally:
        conn.close()  # releases the advisory lock
        engine.dispose()
