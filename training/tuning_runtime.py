"""Where tuning runs: the Optuna storage and the worker processes of ``training.tuning.run_study``.

Storage: a journal file (default ``$DEALERML_HOME/optuna/journal.log``, or a path) or an RDB URL
with a heartbeat (``postgresql://...``); see ``training.tuning`` for how a study uses them.
Worker processes: ``dealerml tune <name> --worker ...`` subprocesses, each in its own process
group, stopped (SIGTERM, then SIGKILL after 10 s) when the coordinator is interrupted, and
stopping themselves when the coordinator goes away (``exit_with_parent``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training import paths
from training.errors import AT_IN_CREDENTIALS, ConfigError, at_in_credentials

__all__ = [
    "default_storage_path",
    "describe_storage",
    "journal_path",
    "new_journal",
    "drop_unused_journal",
    "make_storage",
    "exit_with_parent",
    "worker_command",
]

# --------------------------------------------------------------------------- storage

def default_storage_path() -> Path:
    return paths.home() / "optuna" / "journal.log"


def new_journal(storage: str | None) -> tuple[Path, bool] | None:
    """(the journal file, whether its folder is new too) when ``storage`` names a journal file that does
    not exist yet, else None: what :func:`drop_unused_journal` may remove after a failed run."""
    try:
        path = journal_path(storage)
    except ConfigError:  # said by make_storage, in its turn
        return None
    if path is None or path.exists():
        return None
    return path, not path.parent.exists()


def drop_unused_journal(made: tuple[Path, bool] | None, study_name: str) -> None:
    """Remove a journal file a failed run made (``made``: :func:`new_journal` before the run) while it
    holds no trial and no study but ``study_name``, and the default's folder made with it when empty:
    a run refused before its first trial leaves nothing behind. Never raises (the run's error stands)."""
    if made is None:
        return
    path, new_folder = made
    try:
        if not path.exists():
            return
        import optuna

        studies = optuna.get_all_study_summaries(make_storage(str(path)), include_best_trial=False)
        if any(s.n_trials for s in studies) or any(s.study_name != study_name for s in studies):
            return  # trials to resume, or another run's study: kept
        path.unlink()
        if new_folder and not any(path.parent.iterdir()):
            path.parent.rmdir()
    except Exception:  # noqa: BLE001 - a clean-up only
        pass


def _normalize_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def describe_storage(storage: str | None) -> str:
    """Human-readable storage name with any password masked."""
    if storage is None:
        return f"journal file {default_storage_path()}"
    if "://" in storage:
        from training.scores import describe_target

        # describe_target: also a password holding '@', whose tail SQLAlchemy's own rendering shows
        return describe_target(_normalize_url(storage))
    return f"journal file {storage}"


def journal_path(storage: str | None) -> Path | None:
    """The journal file a storage names (None for a database URL), refused as :func:`make_storage`
    refuses it (a mistyped URL, a missing folder, a folder; the default's folder that cannot be
    made) but neither created nor opened."""
    if not storage:
        path = default_storage_path()
        if not path.exists():
            _check_creatable(path)
        return path
    if "://" in storage:
        if at_in_credentials(_normalize_url(storage)):  # else the connect error named the password's tail as the host
            raise ConfigError(f"--storage {describe_storage(storage)}: not a valid database URL ({AT_IN_CREDENTIALS})")
        return None
    scheme = storage.split(":", 1)[0].split("/", 1)[0].lower()
    if scheme.startswith(("postgres", "mysql", "sqlite", "oracle", "mssql")):
        # 'postgresql//host/db' or 'postgresql:/host/db': a URL with its '://' mistyped, not a file
        raise ConfigError(f"Optuna storage {storage}: looks like a database URL without '://'; write it as "
                          "postgresql://user@host:5432/db (or give a journal file path)")
    path = Path(os.path.expanduser(storage))
    if not path.parent.is_dir():
        # a typo in --storage must not silently create folders (only the default
        # location under $DEALERML_HOME is created on demand)
        raise ConfigError(
            f"Optuna storage {storage}: the folder {path.parent} does not exist; create it first, "
            f"fix the path, or leave --storage out to use {default_storage_path()}"
        )
    if path.is_dir():
        raise ConfigError(f"Optuna storage {storage} is a folder; give a journal file path such as "
                          f"{path / 'journal.log'}")
    return path


def _check_creatable(path: Path) -> None:
    """Refuse the default journal when its folder under $DEALERML_HOME cannot be made or written (the
    home below a file, no permission): said before the data load, not as a mkdir traceback after it."""
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is None:
        return
    if not folder.is_dir():
        why = f"{folder} is a file, not a folder"
    elif not os.access(folder, os.W_OK | os.X_OK):
        why = f"no permission to write in {folder}"
    else:
        return
    raise ConfigError(f"cannot create the Optuna journal {path}: {why}; set DEALERML_HOME to a folder you can "
                      "write, or give --storage a journal file path (or a database URL)")


def make_storage(storage: str | None, *, heartbeat_interval: int = 10, grace_period: int = 30) -> Any:
    """An Optuna storage: journal file (None or a path) or RDB with heartbeat (a URL)."""
    import optuna

    path = journal_path(storage)
    if path is not None:
        if not storage:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # made unwritable since the check
                raise ConfigError(f"cannot create the Optuna journal {path}: {exc.strerror or exc}; set "
                                  "DEALERML_HOME to a folder you can write, or give --storage a journal file path") from None
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    import warnings

    from training.scores import _connect_timeout_args

    url = _normalize_url(storage)
    _refuse_mlflow_schema(storage, url)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return optuna.storages.RDBStorage(
            url,
            # PostgreSQL: give up connecting after 10 s unless the URL sets connect_timeout, as
            # dealerml's own connections do (a server that took the connection and never answered hung
            # the tune, and each worker, for ever)
            engine_kwargs={"pool_pre_ping": True, **_connect_timeout_args(url)},
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
        )
    except Exception as exc:  # bad URL, unreachable server, missing database
        raise ConfigError(f"cannot open the Optuna storage {describe_storage(storage)}: {_db_error(exc)}"
                          + _expected_url(exc)) from None


def _expected_url(exc: BaseException) -> str:
    """What a storage URL that could not even be read should have been, said after its error: a scheme
    SQLAlchemy has no dialect for ("Can't load plugin: sqlalchemy.dialects:http"), a port that is not a
    number ("invalid literal for int() with base 10: 'abc'"), a database whose driver is not installed."""
    from sqlalchemy.exc import ArgumentError

    if isinstance(exc, ArgumentError | ValueError | ImportError):
        return ("; expected a database URL such as postgresql://user@host:5432/optuna (the PostgreSQL driver comes "
                "with dealerml), or a journal file path")
    return ""


MLFLOW_TABLES = ("experiments", "runs", "registered_models")
SHARED_SCHEMA_WHY = ("Optuna and MLflow each keep their schema version in a table named alembic_version, so they cannot "
                     "share one schema")


def _refuse_mlflow_schema(storage: str, url: str) -> None:
    """Refuse an Optuna storage URL whose schema holds an MLflow store (the PostgreSQL database of
    ``MLFLOW_TRACKING_URI``, the first one a user tries), before Optuna creates anything there: Optuna
    created its tables beside MLflow's, then read MLflow's revision in ``alembic_version`` and said
    "The runtime optuna version 5.0.0 is no longer compatible with the table schema (set up by optuna
    5.0.0). Please try updating optuna", which is untrue, and left its tables behind. A database that
    cannot be reached is left to Optuna, which names it as before."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.pool import NullPool

    from training.scores import _connect_timeout_args

    try:
        engine = create_engine(url, poolclass=NullPool, **_connect_timeout_args(url))
        try:
            with engine.connect() as conn:
                names = set(inspect(conn).get_table_names())
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - reported by RDBStorage below
        return
    if "alembic_version" in names and set(MLFLOW_TABLES) <= names:
        raise ConfigError(
            f"Optuna storage {describe_storage(storage)}: that database holds an MLflow store (its tables "
            f"{', '.join(MLFLOW_TABLES)}, ...); {SHARED_SCHEMA_WHY}: give --storage (or tuning.storage) its own database, "
            "or its own schema there (`create schema optuna`, then add ?options=-csearch_path%3Doptuna to the URL)")


def _db_error(exc: BaseException) -> str:
    """A driver error in plain words: without SQLAlchemy's '(module.Class)' prefix and its
    '(Background on this error at: ...)' link."""
    import re

    text = str(getattr(exc, "orig", None) or exc)
    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    text = re.sub(r"^\([\w.]+\)\s*", "", text.strip())
    return " ".join(text.split())


# --------------------------------------------------------------------------- worker processes


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """Send this process SIGTERM when its parent process goes away (its parent pid changes).

    A background thread polls the parent pid; SIGTERM then ends the current trial's run as
    KILLED (``tracking.training_run`` turns it into an interrupt) and the worker exits, so a
    worker never outlives its coordinator by more than a poll, whatever killed the coordinator."""
    import signal
    import threading

    ppid = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != ppid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, daemon=True, name="dealerml-exit-with-parent").start()


def _spawn_workers(
    argv: Sequence[str],
    budgets: list[int],
    *,
    study_name: str,
    storage: str | None,
    seed: int,
    parent_run_id: str,
    log: Callable[[str], None],
) -> list[int]:
    """Run the worker processes and wait for them; they never outlive this call. Returns their pids.

    Each worker starts in its own process group (its own session); if the coordinator is
    interrupted (an exception, Ctrl-C, SIGTERM or SIGHUP while waiting; the signals as
    KeyboardInterrupt) every worker group still running gets SIGTERM, then SIGKILL after 10 s,
    before the error propagates.
    """
    import signal
    import threading

    procs: list[subprocess.Popen] = []
    old_handlers: dict[int, Any] = {}

    def _on_signal(signum: int, frame: Any) -> None:
        # as an interrupt, like SIGTERM to a tune without workers (tracking.training_run): the parent run
        # KILLED, exit 130 and the command that resumes the study (a SystemExit(143) said none of it and
        # left the parent run FAILED)
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            old_handlers[sig] = signal.signal(sig, _on_signal)
    try:
        for i, k in enumerate(budgets):
            cmd = [*argv, "--worker", "--study-name", study_name, "--trials", str(k), "--seed", str(seed + i),
                   "--parent-run-id", parent_run_id]
            if storage is not None:
                cmd += ["--storage", storage]
            procs.append(subprocess.Popen(cmd, env=dict(os.environ), start_new_session=True))
            log(f"worker {i} (pid {procs[-1].pid}): {k} trial(s)")
        for i, p in enumerate(procs):
            rc = p.wait()
            if rc != 0:
                log(f"worker {i} (pid {p.pid}) exited with code {rc}")
        return [p.pid for p in procs]
    finally:
        for sig in old_handlers:  # a second signal must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        running = [p for p in procs if p.poll() is None]
        if running:
            log(f"stopping {len(running)} worker(s): pid {', '.join(str(p.pid) for p in running)}")
        _stop_groups(running)
        for sig, h in old_handlers.items():
            signal.signal(sig, h)


def _stop_groups(procs: Sequence[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM each process's group, then SIGKILL what is left after ``grace`` seconds; reap them."""
    import signal

    def _kill(p: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(p.pid, sig)  # the worker is its group's leader (start_new_session)
        except ProcessLookupError:
            pass
        except PermissionError:
            p.send_signal(sig)

    for p in procs:
        _kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _kill(p, signal.SIGKILL)
            p.wait()


def worker_command(name: str, config_path: str | Path, extra: Sequence[str] = ()) -> list[str]:
    """The command line that starts one tuning worker for ``dealerml tune <name>``."""
    return [sys.executable, "-c", "from training.cli import app; app(prog_name='dealerml')", "tune", name,
            "--config", str(config_path), *extra]
