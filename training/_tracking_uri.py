"""Which MLflow store is in force and how messages name it: its URI (with a connect timeout for
PostgreSQL), its scheme, the URI with its password hidden, where it came from, and the errors for a
store that cannot be opened or read.

The lowest layer of the MLflow adapter (:mod:`training.tracking` re-exports the public names): it
imports neither ``mlflow`` nor the other ``training/_tracking_*`` modules. Nothing is configured at
import time.
"""

from __future__ import annotations

import re
from pathlib import Path

from training import paths
from training.errors import ConfigError, hide_url_passwords


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


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` store: its path without the URI's query (SQLAlchemy's
    options, ``?timeout=30``, which MLflow accepts; read as part of the file name, that store was
    'missing' and its registry lock held nothing). None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def local_store_missing() -> Path | None:
    """The SQLite file of the store in force when it does not exist (else None). Opening it would
    create an empty store, which then answers 'no champion' / 'no runs': almost always a wrong
    ``$DEALERML_HOME`` rather than a new project, so read-only callers refuse instead."""
    db = _sqlite_file(tracking_uri())
    return db if db is not None and not db.is_file() else None


def store_source() -> str:
    """Where the store's address came from, for messages: ``MLFLOW_TRACKING_URI=...`` (password as
    ``***``) or ``DEALERML_HOME=...``."""
    import os

    from training import paths

    if os.environ.get("MLFLOW_TRACKING_URI"):
        return f"MLFLOW_TRACKING_URI={shown_tracking_uri()}"
    return f"DEALERML_HOME={paths.home()}"


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
        return ConfigError(f"cannot open the MLflow store at {shown_tracking_uri()}: {_sqlite_file(uri)} is not "
                           f"an SQLite database; {instead}")
    return _store_unreadable(err)


def _store_unreadable(err: Exception) -> ConfigError:
    """A database store that is down fails in its driver when MLflow opens it: SQLAlchemy's
    OperationalError, not an MlflowException (dealerml serve / promote / rollback: a traceback)."""
    # SQLAlchemy appends the statement and a link ("[SQL: SELECT name FROM sqlite_master ...] (Background
    # on this error at: ...)"): noise to someone whose store is down
    why = re.sub(r"\[SQL:.*|\(Background on this error at:[^)]*\)", "", str(err), flags=re.S)
    why = " ".join(why.split())[:300]
    return ConfigError(f"cannot read the MLflow registry at {shown_tracking_uri()}: "
                       f"{type(err).__name__}: {hide_url_passwords(why)}")
