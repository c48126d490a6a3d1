"""Opening the MLflow store in force: a database or tracking server that cannot be reached is named at
once instead of after MLflow's minutes of retries (:func:`_check_database_store`,
:func:`_check_server_store`, :func:`check_store`), the client pointed at it (:func:`_configure`, under
:func:`training._tracking_locks._creation_lock`), and the ``dealerml-<kind>`` experiments.

Private to :mod:`training.tracking`, which re-exports the names callers use; with the other
``training/_tracking_*`` modules it is the only code that imports ``mlflow``. Nothing is configured
at import time.
"""

from __future__ import annotations

from typing import Any

from training import paths
from training._tracking_locks import _creation_lock
from training._tracking_uri import (
    _is_local_store,
    _scheme,
    _sqlite_file,
    _store_unopenable,
    _store_unreadable,
    _with_connect_timeout,
    shown_tracking_uri,
    tracking_uri,
)
from training.errors import AT_IN_CREDENTIALS, ConfigError, at_in_credentials


def _configure() -> Any:
    """Point MLflow's fluent API at :func:`tracking_uri` and return a client on it."""
    import os

    import mlflow
    from mlflow import MlflowClient

    # Per-file download progress bars flood CLI output and logs; opt back in with the env var.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    before = os.environ.get("MLFLOW_TRACKING_URI")
    uri = tracking_uri()
    db = _sqlite_file(uri)
    if db is not None:
        folder = db.parent
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
    db = _sqlite_file(uri)
    if (db is not None and db.exists()) or _scheme(uri) == "file" or ":" not in uri:
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
