"""The steps of :func:`training.scores.write_table`'s atomic replace that open no connection
themselves: SQLite's rename that keeps the views over a table (``_sqlite_replace_keeping_views``,
``_view_reads``), the same-columns check that swaps rows in place (``_added_columns``), the file
write (``_write_file_atomic``: a temp file, fsync, ``os.replace``; ``_remove_stale_temp_files`` of
killed writers) and ``_sigterm_as_interrupt`` (SIGTERM unwinds a write like Ctrl-C).

Split from :mod:`training.scores` (``write_table``, ``open_db``, ``Database``) to keep each module
under ~500 lines; it builds on :mod:`training._scores_targets` only (``Database`` is named in
annotations, never imported at run time). Private helper module of :mod:`training.scores`, which
re-exports these names and is the only caller.
"""

from __future__ import annotations

import os
import re
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from training._scores_targets import _short, describe_target, target_errors
from training.errors import DataError

if TYPE_CHECKING:
    from training.scores import Database


def _sqlite_replace_keeping_views(db: Database, tmp: str, table: str, target: str | Path) -> None:
    """Drop ``table`` if it exists (a column was dropped or retyped) and rename ``tmp`` to it in SQLite,
    where a view naming ``table`` made the rename fail ('error in view v: no such table'; also a view
    the CRM made before the first run): SQLite checks every view at a rename unless
    ``legacy_alter_table`` is on, with which the views, which name the table, read the new one. A
    view that could be read before and cannot now (it reads a column this run no longer writes) is
    refused, naming it and the fix; the caller's transaction rolls back, so the previous table and
    its views stay as they were."""
    views = [v for v in db.query("select name from sqlite_master where type = 'view' order by name")["name"]
             if _view_reads(db, v) is None]  # one broken before this run is not this run's doing
    db.execute(f'drop table if exists "{table}"')
    db.execute("pragma legacy_alter_table = on")
    try:
        db.execute(f'alter table "{tmp}" rename to "{table}"')
    finally:
        db.execute("pragma legacy_alter_table = off")
    broken = {v: why for v in views if (why := _view_reads(db, v)) is not None}
    if broken:
        shown = "; ".join(f"view {v!r}: {why}" for v, why in broken.items())
        raise DataError(
            f"cannot write {describe_target(target, table)}: the new table lacks a column that a view over it "
            f"reads ({shown}); the new columns are {db.query(f'select * from {_q(table)} limit 0').columns.tolist()}. "
            f"Drop the view{'s' if len(broken) > 1 else ''}, run again and recreate "
            f"{'them' if len(broken) > 1 else 'it'} for the new columns. Nothing was written: the previous table "
            "and its views are unchanged")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _view_reads(db: Database, view: str) -> str | None:
    """None when ``view`` can be read, else why not (SQLite's message)."""
    try:
        db.query(f"select * from {_q(view)} limit 0")
    except target_errors() as exc:
        return _short(getattr(exc, "orig", None) or exc)
    return None


_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?$")


def _added_columns(db: Database, table: str, tmp: str) -> list[tuple[str, str]] | None:
    """The columns (name, type) ``tmp`` has beyond ``table`` when it has all of ``table``'s with the
    same types ([] when the same), else None (the table is recreated)."""
    old, new = dict(db.column_types(table)), dict(db.column_types(tmp))
    if any(new.get(c) != t for c, t in old.items()):
        return None
    added = [(c, t) for c, t in new.items() if c not in old]
    if any(not _TYPE_NAME.match(t) or t.upper() in ("USER-DEFINED", "ARRAY") for _, t in added):
        return None  # a type information_schema cannot spell back: recreate
    return added


def _write_file_atomic(df: pd.DataFrame, path: Path, on_chunk=None) -> None:
    """Write a temp file beside ``path`` and rename it over ``path``. The temp file is created
    new (``O_EXCL``: never through a link planted at its name) and readable by its owner only until
    it gets the mode of the file it replaces (a score file chmod 600 stayed 600 only until the next
    refresh: the new file had the umask's 644) or, for a new file, the umask's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_files(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)  # a symlink's target: the file it reads as
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        old_mode = 0o666 & ~umask
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        if path.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.chmod(tmp, old_mode)
        if on_chunk is not None:
            on_chunk(0, len(df))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_stale_temp_files(path: Path) -> None:
    """Temp files ``.NAME.PID-XXXXXXXX.tmp`` left by a writer that was killed (SIGKILL, power
    loss) are removed once their process is gone; a live concurrent writer's file is kept."""
    import glob

    for f in path.parent.glob(f".{glob.escape(path.name)}.*-*.tmp"):
        pid = f.name[len(path.name) + 2 :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                f.unlink(missing_ok=True)
            except OSError:  # another user's file in a shared folder (sticky /tmp): not ours to remove
                pass
        except OSError:  # alive (another user's process)
            pass


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a stopped container) during a write unwinds it like Ctrl-C, so the
    transaction rolls back and the temp file is removed; then the signal is delivered again to
    the handler that was there before (by default the process ends as SIGTERM'd, without a
    traceback). Only the main thread can install it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def _raise(signum, frame):  # noqa: ARG001
        fired.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    except KeyboardInterrupt:
        if not fired:  # a real Ctrl-C
            raise
        signal.signal(signal.SIGTERM, previous)
        os.kill(os.getpid(), signal.SIGTERM)  # the clean-up is done: now what SIGTERM meant before
        raise
    else:
        if fired:  # its interrupt was swallowed (raised in a __del__ / gc callback): the write is
            # whole, so the table is the new one; the signal still means what it meant before
            signal.signal(signal.SIGTERM, previous)
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
