"""Store half of the MLflow adapter: connection, experiments, model registry, loading.

Private to :mod:`training.tracking`, which re-exports every name here and stays the public
entry point (import from there, not from this module); together they are the only code that
imports ``mlflow``. Nothing is configured at import time.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import paths
from training.errors import AT_IN_CREDENTIALS, ConfigError, at_in_credentials, hide_url_passwords

_REGISTRY_HISTORY_TAG = "dealerml.champion_history"



# --------------------------------------------------------------------------- store


def tracking_uri() -> str:
    """The MLflow tracking (and registry) URI in force now; see :func:`training.paths.mlflow_uri`."""
    return paths.mlflow_uri()


def shown_tracking_uri() -> str:
    """:func:`tracking_uri` for messages: a password in it (``MLFLOW_TRACKING_URI`` of a
    PostgreSQL store, ``https://user:pass@mlflow``) as ``***``."""
    return hide_url_passwords(tracking_uri())


def ui_command() -> str:
    """The shell command that opens the MLflow UI on the current store (password as ``***``)."""
    import shlex

    return f"mlflow ui --backend-store-uri {shlex.quote(shown_tracking_uri())}"  # a home with a space: one argument


def _scheme(uri: str) -> str:
    """A store URI's scheme without its driver (``postgresql+psycopg://`` -> ``postgresql``)."""
    return uri.split(":", 1)[0].split("+", 1)[0]


def _is_local_store(uri: str) -> bool:
    return _scheme(uri) in {"sqlite", "postgresql", "mysql", "mssql", "file"}


def _configure() -> Any:
    """Point MLflow's fluent API at :func:`tracking_uri` and return a client on it."""
    import os

    import mlflow
    from mlflow import MlflowClient

    # Per-file download progress bars flood CLI output and logs; opt back in with the env var.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    before = os.environ.get("MLFLOW_TRACKING_URI")
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # $DEALERML_HOME below a file, or in a read-only place: said, not a traceback
            from training.errors import DealermlError

            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(folder) else ""
            why = "it is a file, not a folder" if folder.is_file() else f"{exc.strerror or exc}{where}"
            raise DealermlError(
                f"cannot create the folder of the MLflow store {folder}: {why}; set "
                "DEALERML_HOME to a folder you can write (or MLFLOW_TRACKING_URI to another store)") from None
    uri = _with_connect_timeout(uri)
    _check_database_store(uri)
    _check_server_store(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # mlflow.set_tracking_uri also exports $MLFLOW_TRACKING_URI for subprocesses; that would pin
    # every later call (and every child process) to this store even after $DEALERML_HOME
    # changes. Put the environment back as the user had it; the fluent API keeps the URI.
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    if _scheme(uri) == "postgresql":
        _quiet_pipeline_noise()
    try:
        with _creation_lock(uri):
            return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except ConfigError:  # the creation lock's own message
        raise
    except Exception as err:  # noqa: BLE001 - a store MLflow cannot open: named, not a traceback
        raise _store_unopenable(err) from None


# PostgreSQL stores this process has opened once under the lock (their tables exist from then on)
_OPENED: set[str] = set()
_PG_CREATION_LOCK_KEY = 0x6465_616C_6572_6D6C  # 'dealerml': one advisory lock per database
PG_CREATION_LOCK_TIMEOUT_S = 120


class _PipelineNoise:
    """Logging filter for psycopg's 'error ignored terminating <psycopg.Pipeline [INERROR ...]>: pipeline
    aborted': a second error psycopg met ending a pipeline that a first error had aborted, logged as a
    warning while the first is raised (psycopg/_pipeline.py). MLflow raises and handles such a first error
    on every logged model (it logs the run's metrics again with the model, and skips the duplicates), so
    each train / tune on a PostgreSQL store printed an 'error' line on stderr for nothing."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


def _quiet_pipeline_noise() -> None:
    import logging

    log = logging.getLogger("psycopg")
    if not any(isinstance(f, _PipelineNoise) for f in log.filters):
        log.addFilter(_PipelineNoise())


@contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite store's folder, or a PostgreSQL advisory lock on the store's
    database, while MLflow opens it. Opening a new (or older) store creates (migrates) its tables,
    unlocked: two ``dealerml train churn`` started together on a fresh $DEALERML_HOME both created them,
    and one died after its backtest in a traceback ("table online_scoring_configs already exists"); on a
    fresh PostgreSQL database the second said "cannot read the MLflow registry ...: IntegrityError ...
    duplicate key value violates unique constraint "pg_type_typname_nsp_index" ... (alembic_version ...)"
    and lost its run. Waits for the other process (PostgreSQL: up to
    :data:`PG_CREATION_LOCK_TIMEOUT_S`); other stores: no lock."""
    if _scheme(uri) == "postgresql":
        with _pg_creation_lock(uri):
            yield
        return
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    try:
        fd = os.open(Path(uri[len("sqlite:///"):]).parent, os.O_RDONLY)
    except OSError:  # a folder that cannot be opened: MLflow names the problem as before
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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
        _take_pg_advisory_lock(conn, str(_PG_CREATION_LOCK_KEY), PG_CREATION_LOCK_TIMEOUT_S, lambda: ConfigError(
            f"cannot open the MLflow store at {shown_tracking_uri()}: another process has been creating "
            f"or upgrading its tables for more than {PG_CREATION_LOCK_TIMEOUT_S} s (it holds the advisory "
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
        if "lock timeout" in str(err):
            raise timed_out() from None
        raise _store_unreadable(err) from None


def _store_unopenable(err: Exception) -> ConfigError:
    """The error for a store MLflow failed to open (``train``, ``tune``, ``experiment compare`` printed
    its traceback): a ``sqlite:`` URI naming a file that is not a database, or a folder path (MLflow's
    file store, which MLflow 3 refuses), said with what to set instead."""
    from training import paths

    uri = tracking_uri()
    instead = (f"point MLFLOW_TRACKING_URI at a database store (sqlite:///PATH/mlflow.db, postgresql://...) or unset "
               f"it to use {paths.home() / 'mlflow.db'} (DEALERML_HOME)")
    if "filesystem tracking backend" in str(err):
        return ConfigError(f"cannot open the MLflow store at {shown_tracking_uri()}: it is a folder path (MLflow's file "
                           f"store), which this MLflow no longer opens; {instead} (`mlflow migrate-filestore` "
                           "moves a file store's runs into a database)")
    if uri.startswith("sqlite:///") and "not a database" in str(err):
        return ConfigError(f"cannot open the MLflow store at {shown_tracking_uri()}: {uri[len('sqlite:///'):]} is not "
                           f"an SQLite database; {instead}")
    return _store_unreadable(err)


def _with_connect_timeout(uri: str) -> str:
    """The URI MLflow connects with: a PostgreSQL store (psycopg / psycopg2) gets ``connect_timeout``
    (:data:`training.scores.CONNECT_TIMEOUT_S`) unless it sets one. libpq waits for ever, so a store
    that takes the connection and never answers hung the service's loader (unready, no log line, the
    champion check behind it) and ``dealerml serve`` / promote / train without a word."""
    if not uri.startswith("postgresql"):
        return uri
    from sqlalchemy.engine import make_url

    from training.scores import CONNECT_TIMEOUT_S, _connect_timeout_args

    try:
        if not _connect_timeout_args(uri):
            return uri
        return make_url(uri).update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)}).render_as_string(
            hide_password=False)
    except Exception:  # noqa: BLE001 - a URI SQLAlchemy cannot read: MLflow reports it as before
        return uri


# database stores this process has reached once (MLflow's own engine takes over from there)
_REACHED: set[str] = set()
_DATABASE_SCHEMES = ("postgresql", "mysql", "mariadb", "mssql")
_UNSUPPORTED_DATABASES = ("mysql", "mariadb")


def _check_database_store(uri: str) -> None:
    """Open one connection to a database store (PostgreSQL, MySQL, SQL Server) before MLflow does.

    MLflow retries opening a database store for about 100 s (exponential back-off, no setting
    shortens it) before it names the error, so a typo in ``MLFLOW_TRACKING_URI``, a stopped server
    or a missing database kept ``train`` / ``promote`` / ``dealerml serve`` silent for minutes.
    One plain connection (with the ``connect_timeout`` of :func:`_with_connect_timeout`) names it
    in seconds, as :func:`_store_unreadable` names a store MLflow failed to open. Checked once per
    process and store;
    SQLite and file stores are not checked (MLflow creates them)."""
    if uri in _REACHED or _scheme(uri) not in _DATABASE_SCHEMES:
        return
    if at_in_credentials(uri):  # a password 'pa@ss': the connect error named 'ss@host', the password's tail
        raise ConfigError(f"MLFLOW_TRACKING_URI {shown_tracking_uri()}: not a valid database URL ({AT_IN_CREDENTIALS})")
    if _scheme(uri) in _UNSUPPORTED_DATABASES:
        # no MySQL driver is installed with dealerml: train churn said "No module named 'MySQLdb'" after its
        # whole backtest; with one installed, the store would lack the creation and registry locks
        raise ConfigError(
            f"MLFLOW_TRACKING_URI {shown_tracking_uri()}: dealerml does not support a MySQL / MariaDB MLflow store "
            "(it installs no MySQL driver, and processes creating the store's tables or registering a model's "
            "first versions together are kept apart by locks only on SQLite and PostgreSQL); use "
            "postgresql://user@host/db or sqlite:///PATH/mlflow.db")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    try:
        engine = create_engine(uri, poolclass=NullPool)
    except Exception:  # noqa: BLE001 - a URI or driver SQLAlchemy cannot use: MLflow reports it as before
        return
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            names = _table_names(conn)
    except Exception as err:  # noqa: BLE001 - any driver's connection error: named, password hidden
        raise _store_unreadable(err) from None
    finally:
        engine.dispose()
    if {"alembic_version", *_OPTUNA_TABLES} <= names and "experiments" not in names:
        # MLflow created its first tables there, then died in alembic ("Can't locate revision identified by
        # 'v3.2.0.a'": Optuna's revision), leaving them beside Optuna's
        raise ConfigError(
            f"MLFLOW_TRACKING_URI {shown_tracking_uri()}: that database holds an Optuna storage (its tables "
            f"{', '.join(_OPTUNA_TABLES)}) and no MLflow store; Optuna and MLflow each keep their schema version in "
            "a table named alembic_version, so they cannot share one schema: give the MLflow store its own "
            "database, or its own schema there (`create schema mlflow`, then add ?options=-csearch_path%3Dmlflow "
            "to the URI)")
    _REACHED.add(uri)


_OPTUNA_TABLES = ("studies", "trials", "version_info")


def _table_names(conn: Any) -> set[str]:
    """The tables of the connection's default schema (PostgreSQL: the first of the search path); empty
    when they cannot be listed."""
    from sqlalchemy import inspect

    try:
        return set(inspect(conn).get_table_names())
    except Exception:  # noqa: BLE001 - a hint only
        return set()


def _check_server_store(uri: str) -> None:
    """Open one TCP connection to a tracking server (``http(s)://``) before MLflow does. MLflow's client
    retries a server that does not answer for about 4 minutes (7 retries, backoff 2) before it names
    the error, so ``rollback`` / ``promote`` / ``experiment compare`` / ``train`` against a server that
    is down (or a wrong port) said nothing for 4 minutes. A connection refused, a name that does not
    resolve or no answer within :data:`training.scores.CONNECT_TIMEOUT_S` is named at once; a server
    reached through a proxy ($HTTP(S)_PROXY) is left to MLflow. Checked once per process and server."""
    if uri in _REACHED or _scheme(uri) not in ("http", "https"):
        return
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    from training.scores import CONNECT_TIMEOUT_S

    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number: MLflow reports it as before
        return
    if not host or (urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host)):
        return
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise _store_unreadable(err) from None
    _REACHED.add(uri)


def check_store() -> None:
    """Reach a database store now (one connection, :func:`_check_database_store`), so a command
    that logs only at the end of minutes of work (``train churn``) names a store it cannot reach
    before the work, not after it. Nothing is created: a local SQLite store is made by the run
    itself, and not at all by a run that fails before it logs. A SQLite file that is there, or a
    folder path (MLflow's file store), is opened now (:func:`_store_unopenable` names one MLflow
    cannot open), not after the work."""
    uri = tracking_uri()
    _check_database_store(_with_connect_timeout(uri))
    _check_server_store(uri)
    if (uri.startswith("sqlite:///") and Path(uri[len("sqlite:///"):]).exists()) or _scheme(uri) == "file" or ":" not in uri:
        _configure()


def _experiment_id(client: Any, kind: str) -> str:
    name = f"dealerml-{kind}"
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if _is_local_store(tracking_uri()):
        location = (paths.home() / "mlruns" / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it between the two calls
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


# --------------------------------------------------------------------------- stale runs
_PID_TAG, _HOST_TAG, _START_TAG = "dealerml.pid", "dealerml.host", "dealerml.process_start"
_REGISTRATION_TAG = "dealerml.registration"


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, /proc); None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), after the command name


def _process_tags() -> dict[str, str]:
    """Tags that let a later start tell whether this run's process is still alive."""
    import os
    import socket

    tags = {_PID_TAG: str(os.getpid()), _HOST_TAG: socket.gethostname()}
    start = _process_start(os.getpid())
    if start is not None:
        tags[_START_TAG] = start
    return tags


def _alive(pid: int, start: str | None) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    # the pid may have been reused by a later process: compare start times when both are known
    now = _process_start(pid)
    return start is None or now is None or now == start


def _dead_process(tags: Mapping[str, str]) -> int | None:
    """The pid recorded in ``tags`` (``_process_tags``) when that process is gone, else None
    (alive, or no pid recorded)."""
    try:
        pid = int(tags.get(_PID_TAG, ""))
    except ValueError:
        return None
    return None if _alive(pid, tags.get(_START_TAG)) else pid


def mark_stale_runs(client: Any) -> list[str]:
    """Mark RUNNING runs of ``dealerml-*`` experiments whose process is gone as KILLED.

    Only runs tagged by this host (``dealerml.host``) with a process id (``dealerml.pid``)
    are judged: a run of another machine, or one recorded before these tags existed, is
    left alone. A run is stale when its process no longer exists, or the pid now belongs to
    a process started at another time. Returns the run ids marked; never raises (a store
    that cannot be searched only means nothing is cleaned up this time).
    """
    import socket

    marked: list[str] = []
    try:
        exps = [e.experiment_id for e in client.search_experiments(filter_string="name LIKE 'dealerml-%'")]
        if not exps:
            return marked
        host = socket.gethostname().replace("'", "")
        runs = client.search_runs(
            exps, filter_string=f"attributes.status = 'RUNNING' and tags.`{_HOST_TAG}` = '{host}'", max_results=1000)
        for r in runs:
            pid = _dead_process(r.data.tags)
            if pid is None:
                continue
            client.set_tag(r.info.run_id, "dealerml.stale", f"process {pid} on {host} was gone when a later run started")
            client.set_terminated(r.info.run_id, status="KILLED")
            marked.append(r.info.run_id)
    except Exception:  # noqa: BLE001 - clean-up is best effort, training goes on
        return marked
    return marked


# --------------------------------------------------------------------------- helpers


def _import_class(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import estimator class {path!r} recorded in the model: {exc}") from None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


# --------------------------------------------------------------------------- registry


def register_model_uri(model_uri: str, name: str, *, alias: str, tags: Mapping[str, str] | None = None) -> str:
    """Register ``model_uri`` as a new version of ``name`` with ``alias``; returns the version.

    The first version of a name without a champion also becomes ``champion``, decided under
    :func:`registry_lock` (of runs registering together, one is champion). The version's tag
    ``dealerml.champion_at_registration`` and, with ``tags['run_id']``, that run's tags
    ``registry.<name>.version`` / ``.aliases`` / ``.champion`` say what it became. If setting the
    aliases fails the new version is deleted again, so nothing half-registered remains.
    """
    import mlflow

    client = _configure()
    # "pending" until the aliases are set: a process killed in between (SIGKILL) leaves a pending
    # version, which the next run's clean-up deletes (drop_incomplete_versions)
    mv = mlflow.register_model(model_uri, name, tags={**{k: str(v) for k, v in (tags or {}).items()},
                                                      _REGISTRATION_TAG: "pending", **_process_tags()})
    try:
        # "no champion yet, so this version is champion" is one step for every process registering
        # this name: two runs finishing together both read 'no champion' and each set the alias to
        # its own version (the last won, both runs said champion)
        with registry_lock(name):
            # ``alias`` (challenger) too, so it goes to the last registration in the lock's order, the one
            # whose run says so (set before the lock, an earlier version could take it back after a later
            # one had said challenger)
            client.set_registered_model_alias(name, alias, mv.version)
            champion = get_alias_version(name, "champion")
            if alias != "champion" and champion is None:
                set_alias(name, "champion", mv.version)
                champion = str(mv.version)
            elif alias == "champion":
                _push_history(name, mv.version)
                champion = str(mv.version)
            client.set_model_version_tag(name, mv.version, CHAMPION_AT_REGISTRATION_TAG, champion)
            run_id = (tags or {}).get("run_id")
            if run_id:  # what the run registered, as it happened (the log of a run that lost the race said champion)
                aliases = [alias] + (["champion"] if champion == str(mv.version) and alias != "champion" else [])
                for key, value in (("version", mv.version), ("aliases", ",".join(aliases)), ("champion", champion)):
                    client.set_tag(str(run_id), f"registry.{name}.{key}", str(value))
            client.set_model_version_tag(name, mv.version, _REGISTRATION_TAG, "complete")
    except BaseException:  # also Ctrl-C / SIGTERM: nothing half-registered remains
        client.delete_model_version(name, mv.version)
        raise
    return str(mv.version)


CHAMPION_AT_REGISTRATION_TAG = "dealerml.champion_at_registration"
"""Version tag: the champion of the name once this version was registered (the version itself when it
became champion as the first one; another when a champion was there, also one registered a moment before)."""
REGISTRY_LOCK_TIMEOUT_S = 120
_PG_REGISTRY_LOCK_CLASS = 0x646D_6C72  # 'dmlr': with a model name's crc32, one advisory lock per name


@contextmanager
def registry_lock(name: str) -> Iterator[None]:
    """Hold the lock on registered model ``name`` of the store in force: the champion alias is read and
    set under it (:func:`register_model_uri`, ``registry.promote``), so two processes cannot both find
    'no champion' and both set it. A SQLite store: an exclusive ``flock`` on its database file (SQLite
    itself uses POSIX locks, which do not meet it); a PostgreSQL store: a session advisory lock on the
    pair (:data:`_PG_REGISTRY_LOCK_CLASS`, crc32 of the name). Both are released when the process dies.
    Waits up to :data:`REGISTRY_LOCK_TIMEOUT_S`, then a ConfigError. Other stores (a tracking server)
    offer no lock: nothing is held there."""
    _configure()  # the store's own checks first (a password holding '@', a store that is down: named as such)
    uri = _with_connect_timeout(tracking_uri())
    if _scheme(uri) == "postgresql":
        with _pg_registry_lock(uri, name):
            yield
        return
    db = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
    if db is None or not db.is_file():
        yield
        return
    import fcntl

    fd = os.open(db, os.O_RDONLY)
    try:
        deadline = time.monotonic() + REGISTRY_LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _registry_lock_timeout(name, f"a flock on {db}") from None
                time.sleep(0.02)
        yield
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


PENDING_TTL_ENV = "DEALERML_PENDING_VERSION_TTL_HOURS"
PENDING_TTL_HOURS = 24.0  # a registration takes seconds; a day-old pending version is dead


def _pending_ttl_ms() -> float:
    raw = os.environ.get(PENDING_TTL_ENV, "").strip()
    try:
        hours = float(raw) if raw else PENDING_TTL_HOURS
    except ValueError:
        hours = PENDING_TTL_HOURS
    return max(hours, 0.0) * 3_600_000


def _incomplete(tags: Mapping[str, str], created_ms: int | None, host: str, now_ms: float) -> bool:
    """A pending version is dead when its registering process on this host is gone; one
    registered on another host (whose processes cannot be seen from here) when it has been
    pending for longer than ``$DEALERML_PENDING_VERSION_TTL_HOURS`` (default 24)."""
    if tags.get(_REGISTRATION_TAG) != "pending":
        return False
    if tags.get(_HOST_TAG) == host and tags.get(_PID_TAG):
        return _dead_process(tags) is not None
    return created_ms is not None and now_ms - created_ms > _pending_ttl_ms()


def drop_incomplete_versions(client: Any) -> list[tuple[str, str]]:
    """Delete ``dealerml-*`` model versions whose registration never completed (tag
    ``dealerml.registration`` = pending): those whose registering process on this host is
    gone, and those of another host pending for longer than the TTL (``_incomplete``).
    Returns the (name, version) pairs deleted; never raises (best-effort clean-up)."""
    import socket

    dropped: list[tuple[str, str]] = []
    try:
        host = socket.gethostname()
        now_ms = time.time() * 1000
        for mv in client.search_model_versions("name LIKE 'dealerml-%'"):
            if not _incomplete(mv.tags or {}, mv.creation_timestamp, host, now_ms):
                continue
            client.delete_model_version(mv.name, mv.version)
            dropped.append((mv.name, str(mv.version)))
    except Exception:  # noqa: BLE001 - clean-up is best effort, training goes on
        return dropped
    return dropped


def get_alias_version(name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None (also when the model name does not exist). A store that
    cannot be read is a ConfigError naming it: it was None too, so promote with the tracking server down
    for one call took the challenger for the first version (no champion to beat) and promoted it unscored."""
    return alias_versions([name], alias)[name]


def local_store_missing() -> Path | None:
    """The SQLite file of the store in force when it does not exist (else None). Opening it would
    create an empty store, which then answers 'no champion' / 'no runs': almost always a wrong
    ``$DEALERML_HOME`` rather than a new project, so read-only callers refuse instead."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        if not db.is_file():
            return db
    return None


def store_source() -> str:
    """Where the store's address came from, for messages: ``MLFLOW_TRACKING_URI=...`` (password as
    ``***``) or ``DEALERML_HOME=...``."""
    import os

    from training import paths

    if os.environ.get("MLFLOW_TRACKING_URI"):
        return f"MLFLOW_TRACKING_URI={shown_tracking_uri()}"
    return f"DEALERML_HOME={paths.home()}"


def alias_versions(names: list[str] | tuple[str, ...], alias: str = "champion") -> dict[str, str | None]:
    """The version ``alias`` points at for each registered model in ``names`` (None: the model or
    the alias does not exist). A store that cannot be reached (a tracking server down, a bad URI) is a
    ConfigError naming the store, not read as 'no alias'."""
    from mlflow.exceptions import MlflowException

    try:
        client = _configure()
    except (MlflowException, ConfigError):
        raise
    except Exception as err:  # noqa: BLE001 - named, password hidden
        raise _store_unreadable(err) from None
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException as err:
            if getattr(err, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                out[name] = None
                continue
            raise ConfigError(f"cannot read the MLflow registry at {shown_tracking_uri()}: "
                              f"{hide_url_passwords(str(err)[:300])}") from None
    return out


def _store_unreadable(err: Exception) -> ConfigError:
    """A database store that is down fails in its driver when MLflow opens it: SQLAlchemy's
    OperationalError, not an MlflowException (dealerml serve / promote / rollback: a traceback)."""
    # SQLAlchemy appends the statement and a link ("[SQL: SELECT name FROM sqlite_master ...] (Background
    # on this error at: ...)"): noise to someone whose store is down
    why = re.sub(r"\[SQL:.*|\(Background on this error at:[^)]*\)", "", str(err), flags=re.S)
    why = " ".join(why.split())[:300]
    return ConfigError(f"cannot read the MLflow registry at {shown_tracking_uri()}: "
                       f"{type(err).__name__}: {hide_url_passwords(why)}")


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``; moves of ``champion`` are appended to the history tag."""
    client = _configure()
    client.set_registered_model_alias(name, alias, str(version))
    if alias == "champion":
        _push_history(name, str(version))


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name`` (no error when it is not set)."""
    from mlflow.exceptions import MlflowException

    client = _configure()
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException:
        pass


def _push_history(name: str, version: str) -> None:
    hist = champion_history(name)
    if not hist or hist[-1] != str(version):
        hist.append(str(version))
    set_model_tag(name, _REGISTRY_HISTORY_TAG, json.dumps(hist[-200:]))


def champion_history(name: str) -> list[str]:
    """Versions that have been champion, oldest first (the last is the current one)."""
    raw = get_model_tags(name).get(_REGISTRY_HISTORY_TAG)
    return list(json.loads(raw)) if raw else []


def set_champion_history(name: str, history: list[str]) -> None:
    set_model_tag(name, _REGISTRY_HISTORY_TAG, json.dumps([str(v) for v in history][-200:]))


def get_model_tags(name: str) -> dict[str, str]:
    client = _configure()
    return dict(client.get_registered_model(name).tags)


def set_model_tag(name: str, key: str, value: str) -> None:
    _configure().set_registered_model_tag(name, key, str(value)[:5000])


def run_tags(run_id: str) -> dict[str, str]:
    """A run's tags ({} when the store no longer holds the run)."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(_configure().get_run(run_id).data.tags)
    except MlflowException:
        return {}


def tags_if_other_lines(info: Any, order_lines_sha256: str | None) -> dict[str, str] | None:
    """The tags of the run behind a registered version (``info``: its ``model_info``) when that run read
    other order lines than ``order_lines_sha256`` (its ``data.order_lines_sha256`` tag), else None
    (the same lines, or either side without a fingerprint): promote and forecast / safety-stock
    ``--alias`` caution on a version fitted on another book."""
    if info is None or not getattr(info, "run_id", None) or not order_lines_sha256:
        return None
    tags = run_tags(info.run_id)
    theirs = tags.get("data.order_lines_sha256")
    return tags if theirs and theirs != order_lines_sha256 else None


def get_version_tags(name: str, version: str) -> dict[str, str]:
    return dict(_configure().get_model_version(name, str(version)).tags)


def set_version_tags(name: str, version: str, tags: Mapping[str, Any]) -> None:
    client = _configure()
    for k, v in tags.items():
        client.set_model_version_tag(name, str(version), str(k), str(v)[:5000])


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class ModelInfo:
    """What serving and ``GET /model_info`` report about one registered model version."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    estimator_class: str
    created_at: str
    training_window: Any = None
    backtest_metrics: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # {package: version} the model was trained with (its requirements.txt; read by load_model only)
    requirements: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self.__dict__)

    def environment(self) -> dict[str, Any]:
        """The recorded package versions against this environment's (:func:`training.model_env.environment_check`)."""
        from training.model_env import environment_check

        return environment_check(self.requirements)


def _version_for(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        if alias not in ("champion", "challenger"):  # train / promote never make it: say which aliases there are
            try:
                held = dict(client.get_registered_model(name).aliases or {})
            except MlflowException:  # no such model: train one, as below
                held = {}
            if held:
                number = (f"; {alias!r} is an alias, not a version number" if alias.strip().isdigit() else "")
                raise ConfigError(
                    f"no model version of {name!r} has alias {alias!r} in {shown_tracking_uri()}; its aliases are "
                    + ", ".join(f"{a} (v{v})" for a, v in sorted(held.items())) + number
                    + " (dealerml train / tune make the challenger, dealerml promote the champion)") from None
        raise ConfigError(
            f"no model version of {name!r} has alias {alias!r} in {shown_tracking_uri()}; "
            f"train one (dealerml train ...) or promote one (dealerml promote ...)"
        ) from None


def model_info(name: str, alias: str = "champion") -> ModelInfo:
    """Version, aliases, run id, training window and backtest metrics of ``name@alias``."""
    from mlflow.models import Model

    client = _configure()
    mv = _version_for(client, name, alias)
    with tempfile.TemporaryDirectory(prefix="dealerml-mlmodel-") as tmp:
        import mlflow.artifacts

        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{mv.version}/MLmodel", dst_path=tmp)
        meta = dict(Model.load(local).metadata or {})
    return _info_from(mv, meta)


def _info_from(mv: Any, meta: dict[str, Any], requirements: dict[str, str] | None = None) -> ModelInfo:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((mv.creation_timestamp or 0) / 1000))
    return ModelInfo(
        name=mv.name,
        version=str(mv.version),
        aliases=tuple(sorted(mv.aliases or [])),
        run_id=mv.run_id or (mv.tags or {}).get("run_id"),
        estimator_class=str(meta.get("estimator_class", "")),
        created_at=created,
        training_window=meta.get("training_window"),
        backtest_metrics=dict(meta.get("backtest_metrics") or {}),
        metadata=meta,
        tags=dict(mv.tags or {}),
        requirements=dict(requirements or {}),
    )


def _refuse_moved_artifacts(client: Any, name: str, version: str) -> None:
    """A version whose files are recorded at a local path that does not exist here: a ConfigError saying
    why. A local store records absolute artifact paths, so a $DEALERML_HOME copied or mounted at another
    path (a container volume, another machine) found the registry but not the files, and MLflow said only
    'Could not find an "MLmodel" configuration file at /tmp/dealerml-...'."""
    from urllib.parse import unquote, urlparse

    try:
        uri = str(client.get_model_version_download_uri(name, version))
    except Exception:  # noqa: BLE001 - the download below reports it
        return
    if not uri.startswith("file:"):
        return
    where = Path(unquote(urlparse(uri).path))
    if where.exists():
        return
    trained_home = next((p.parent for p in where.parents if p.name == "mlruns"), None)
    raise ConfigError(
        f"model {name} version {version}: its files are recorded at {where}, which does not exist here. The "
        "MLflow store keeps absolute artifact paths, so a store copied or mounted at another path "
        f"(DEALERML_HOME={paths.home()}) finds the registry but not the files: mount it at "
        f"{trained_home or 'the path it was trained in'}, or keep the registry on a tracking server that serves "
        "the artifacts (mlflow server --serve-artifacts) and set MLFLOW_TRACKING_URI"
    )


def load_model(name: str, alias: str = "champion", *, dst_dir: str | Path | None = None) -> tuple[Any, ModelInfo]:
    """Resolve ``models:/<name>@<alias>``, download it and load the estimator with its class's ``load``.

    Returns ``(estimator, ModelInfo)``; ``ModelInfo.requirements`` holds the package versions the model was
    trained with and ``ModelInfo.environment()`` compares them with this environment's. Files are downloaded to ``dst_dir`` (default: a new
    temporary folder that is kept, since an estimator may read its files lazily). Raises
    ConfigError if the alias does not exist or the recorded class cannot be imported.
    """
    import mlflow.artifacts
    from mlflow.models import Model

    client = _configure()
    mv = _version_for(client, name, alias)
    _refuse_moved_artifacts(client, name, str(mv.version))
    dst = Path(dst_dir) if dst_dir is not None else Path(tempfile.mkdtemp(prefix=f"dealerml-{name}-v{mv.version}-"))
    dst.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(dst)))
    meta = dict(Model.load(local / "MLmodel").metadata or {})
    class_path = meta.get("estimator_class")
    if not class_path:
        raise ConfigError(f"model {name} version {mv.version} has no estimator_class in its metadata")
    est_dir = local / "artifacts" / "estimator"
    if not est_dir.exists():
        raise ConfigError(f"model {name} version {mv.version}: estimator files missing at {est_dir}")
    estimator = _import_class(class_path).load(est_dir)
    from training.model_env import read_requirements

    return estimator, _info_from(mv, meta, read_requirements(local / "requirements.txt"))


# --------------------------------------------------------------------------- listing runs


@dataclass(frozen=True)
class RunSummary:
    """One run of ``dealerml-<kind>`` as ``dealerml experiment compare`` shows it."""

    run_id: str
    name: str
    status: str
    started: str  # UTC, "YYYY-MM-DD HH:MM"
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    registered: tuple[str, ...]  # e.g. ("v2 @challenger",)


def _all_runs(client: Any, experiment_id: str, page: int = 1000):
    """Every run of the experiment, newest first, read a page at a time."""
    token = None
    while True:
        batch = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=page,
                                   page_token=token)
        yield from batch
        token = getattr(batch, "token", None)
        if not token:
            return


def list_runs(kind: str, *, last: int = 5, run_ids: tuple[str, ...] = ()) -> list[RunSummary]:
    """The newest ``last`` top-level runs of ``dealerml-<kind>`` (tuning trials left out), or the
    runs named by ``run_ids`` (full ids or unique prefixes, any run of the experiment), in that
    order. Raises ConfigError when the experiment, or a named run, does not exist."""
    client = _configure()
    exp = client.get_experiment_by_name(f"dealerml-{kind}")
    if exp is None:
        raise ConfigError(f"no dealerml-{kind} runs in {shown_tracking_uri()}: train one first (dealerml train {kind} ...)")
    if run_ids:
        every = list(_all_runs(client, exp.experiment_id))
        runs = []
        for rid in run_ids:
            hits = [r for r in every if r.info.run_id.startswith(rid)]
            if len(hits) != 1:
                what = "no run" if not hits else f"{len(hits)} runs"
                raise ConfigError(f"--run {rid}: {what} of dealerml-{kind} in {shown_tracking_uri()} start(s) with that id"
                                  + ("; give more characters" if hits else ""))
            runs.append(hits[0])
    else:  # page until ``last`` top-level runs are found: a tuning study logs many trials in between
        runs = []
        for r in _all_runs(client, exp.experiment_id):
            if "optuna.trial" not in r.data.tags:
                runs.append(r)
                if len(runs) >= last:
                    break
    registered: dict[str, list[str]] = {}
    from mlflow.exceptions import MlflowException

    try:
        aliases: dict[str, list[str]] = {}
        for a, v in (client.get_registered_model(f"dealerml-{kind}").aliases or {}).items():
            aliases.setdefault(str(v), []).append(a)
        for mv in client.search_model_versions(f"name='dealerml-{kind}'"):
            label = f"v{mv.version}" + "".join(f" @{a}" for a in sorted(aliases.get(str(mv.version), [])))
            registered.setdefault(mv.run_id, []).append(label)
    except MlflowException:  # nothing registered yet
        pass
    out = []
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.gmtime((r.info.start_time or 0) / 1000))
        out.append(RunSummary(run_id=r.info.run_id, name=r.info.run_name or "", status=r.info.status, started=started,
                              params=dict(r.data.params), metrics=dict(r.data.metrics), tags=dict(r.data.tags),
                              registered=tuple(sorted(registered.get(r.info.run_id, [])))))
    return out
