"""Shared fixtures: a small synthetic dealer network and the paths of the real data sets.

Engineers append their own fixtures below; keep each one fast and session-scoped where the
data are read-only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

# The helper modules tests import (tests/_support_*.py) get pytest's assertion messages, as they did in
# the test modules they were moved from; registered before any test module imports them.
pytest.register_assert_rewrite(
    "_support_alerts", "_support_churn_reasons", "_support_cli", "_support_demand", "_support_experiment",
    "_support_tuning",
)

# OpenMP threads (LightGBM's libgomp) that wait at a barrier sleep instead of spinning. With
# two pytest-xdist workers on two cores, each fitting LightGBM with num_threads=2 (the churn
# default), plus whatever else runs on the machine, spinning threads burn the timeslices the
# thread they wait for needs: one churn backtest took 231 s instead of 14 s. Only how idle
# threads wait changes, not what is computed. Set before any test imports lightgbm (libgomp
# reads it once, when loaded); inherited by the CLI / serve subprocesses the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# An in-process service (to_asgi apps, built by many test files) starts a daemon thread that re-reads
# the champion aliases every 60 s for the rest of the pytest process, through whatever
# DEALERML_HOME / MLFLOW_TRACKING_URI a later test has set: one test's dead tracking server was read
# (and its warning logged) inside another test (CI at 75f375b). Off unless a test turns it on; the
# check is tested directly (tests/test_serving_state.py) and against a real server with its own value
# (tests/test_serving_ops.py).
os.environ.setdefault("DEALERML_SERVE_CHAMPION_CHECK_SECONDS", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()

SYNTHETIC_SIZE = dict(
    seed=7, n_accounts=300, n_skus=120, n_locations=2, start="2022-01-01", end="2024-06-30"
)
"""The size of the session's synthetic network (~65k order lines, generated in under a second)."""


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dealer network (read-only: copy it before changing files).

    300 accounts, 120 SKUs, 2 locations, 2022-01-01 .. 2024-06-30, seed 7; ground truth in
    ``truth_accounts.csv`` / ``truth_skus.csv`` (see ``training.synthetic``).
    """
    from training.synthetic import generate

    out = tmp_path_factory.mktemp("synthetic")
    generate(out, **SYNTHETIC_SIZE)
    return out


@pytest.fixture(scope="session")
def synthetic_config(synthetic_dir: Path) -> Path:
    """Path of the synthetic network's ready experiment config (``config.yaml``)."""
    return synthetic_dir / "config.yaml"


def write_config(synthetic_config: Path, out: Path, **sections: dict) -> Path:
    """The session network's config with its data paths made absolute and the given sections
    (e.g. ``churn=...``, ``dealers=...``) replaced, written to ``out``."""
    import yaml

    cfg = yaml.safe_load(synthetic_config.read_text())
    for t in cfg["data"].values():
        if isinstance(t, dict) and "path" in t:
            t["path"] = str((synthetic_config.parent / t["path"]).resolve())
    cfg.update(sections)
    out.write_text(yaml.safe_dump(cfg))
    return out


@pytest.fixture(scope="session")
def synthetic_book(synthetic_config: Path):  # noqa: ANN201 - training.data.OrderBook
    """The synthetic network loaded and validated by ``training.data.load_order_book``."""
    from training.config import load_config
    from training.data import load_order_book

    return load_order_book(load_config(synthetic_config))


def _shared(rel: str) -> Path:
    p = SHARED_DATA / rel
    if not p.is_file():
        pytest.fail(
            f"real data file not found: {p} (expected the shared data folder at {SHARED_DATA}, "
            "next to the repository; see /work/shared/data/README.md)",
            pytrace=False,
        )
    return p


@pytest.fixture(scope="session")
def online_retail_path() -> Path:
    """``../shared/data/online_retail/online_retail.csv.gz`` resolved from the repo root."""
    return _shared("online_retail/online_retail.csv.gz")


@pytest.fixture(scope="session")
def stallion_path() -> Path:
    """``../shared/data/stallion/stallion.parquet`` resolved from the repo root."""
    return _shared("stallion/stallion.parquet")


_ENV_KEYS = ("DEALERML_HOME", "MLFLOW_TRACKING_URI", "DEALERML_PARENT_RUN_ID", "DEALERML_CONFIG")


@pytest.fixture(autouse=True)
def _restore_dealerml_env():
    """Each test sees the environment the session started with for dealerml's own variables.

    A test that sets ``DEALERML_HOME`` or (through MLflow) ``MLFLOW_TRACKING_URI`` must not
    point a later test's server or CLI at its store.
    """
    before = {k: os.environ.get(k) for k in _ENV_KEYS}
    yield
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def in_env(**values: str | None):
    """Set (a value) or unset (None) environment variables for a block, then put each back as it
    was: for module-scoped fixtures, which cannot use ``monkeypatch``, e.g. in-process registry and
    CLI calls on a home ``in_env(DEALERML_HOME=str(h), MLFLOW_TRACKING_URI=None)``."""
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
"""The local PostgreSQL test database (trust auth); tests use uniquely named tables / studies in it."""


@pytest.fixture(scope="session")
def optuna_pg_schema() -> str:
    """Optuna's tables exist in the PostgreSQL test database before a test starts a study there.

    Each test uses its own study name, but the tables are shared: on a fresh database the first
    ``RDBStorage`` creates them, and ``create_all`` is not atomic, so two pytest-xdist workers
    opening a storage at the same moment can both try to create them and one fails. A
    PostgreSQL advisory lock makes the creation happen once; afterwards opening is read-only.
    """
    import optuna
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(hashtext('dealerml-tests-optuna-schema'))")
            try:
                optuna.storages.RDBStorage(PG_URL)
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(hashtext('dealerml-tests-optuna-schema'))")
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture(scope="session")
def _migrated_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with every migration applied, made once per worker by MLflow
    itself (the same code that makes a user's store): seconds of alembic DDL, each committed and
    synced, that every test training into a fresh $DEALERML_HOME would otherwise repeat."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-migrated") / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()
    client.search_registered_models()
    return db


@pytest.fixture(autouse=True)
def _fresh_sqlite_stores_start_migrated(request, monkeypatch):
    """A new local SQLite store that an in-process dealerml command creates starts as a copy of
    :func:`_migrated_mlflow_db` (taken under the product's own creation lock, at the moment MLflow
    would create it), so a test pays a file copy, not the migrations. Only the file's creation is
    shortened: MLflow opens, checks and writes the copy as it would its own; stores made by a
    subprocess (``dealerml`` CLI, ``bentoml serve``) and stores that exist already are untouched.
    ``@pytest.mark.own_mlflow_migrations`` opts a test out (one that checks creation itself)."""
    if request.node.get_closest_marker("own_mlflow_migrations"):
        return
    import shutil

    from training import _tracking_store as store

    real = store._creation_lock

    @contextlib.contextmanager
    def creation_lock(uri: str):
        with real(uri):
            db = store._sqlite_file(uri)
            if db is not None and not db.exists() and db.parent.is_dir():
                shutil.copyfile(request.getfixturevalue("_migrated_mlflow_db"), db)
            yield

    monkeypatch.setattr(store, "_creation_lock", creation_lock)


# --------------------------------------------------------------------------- MLflow homes, stores, networks
# Shared by the tuning, registry, tracking and experiment tests (they were imported from test_tuning,
# test_tracking and test_experiment before). A module that defines a fixture of the same name
# (``home`` in test_churn_cli and test_serving*, ``network`` in test_churn_reasons and
# test_safety_stock_synthetic) uses its own.


@pytest.fixture(scope="session")
def mlflow_template_db(_migrated_mlflow_db) -> Path:
    """An empty, migrated MLflow SQLite store, created once per worker (migrations take seconds):
    conftest's, which also starts every fresh in-process store; copy it, never write to it."""
    return _migrated_mlflow_db


@pytest.fixture
def home(tmp_path, monkeypatch, mlflow_template_db):
    """A fresh $DEALERML_HOME with its own (copied, empty) MLflow store."""
    import shutil

    h = tmp_path / "home"
    h.mkdir()
    shutil.copy(mlflow_template_db, h / "mlflow.db")
    monkeypatch.setenv("DEALERML_HOME", str(h))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DEALERML_PARENT_RUN_ID", raising=False)
    return h


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    from training.synthetic import generate

    out = tmp_path_factory.mktemp("net")
    generate(out, seed=3, n_accounts=80, n_skus=30, n_locations=1, start="2023-01-01", end="2024-12-31")
    return out


@pytest.fixture
def fresh_pg_store():
    """A new, empty PostgreSQL database (MLflow has no tables in it yet) as a store URI; dropped after."""
    import uuid

    import sqlalchemy as sa

    name = f"dealerml_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
