"""An MLflow store and an Optuna storage in one PostgreSQL schema (a user passes the database of
MLFLOW_TRACKING_URI to ``tune --storage``): both keep their schema version in ``alembic_version``,
so the second to arrive failed after creating its tables beside the first's, with a message that
was untrue (Optuna: "no longer compatible ... Please try updating optuna") or opaque (MLflow: "Can't
locate revision identified by 'v3.2.0.a'"). Each is now refused before anything is created, naming
the database and what to do."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_an_optuna_storage_in_the_mlflow_database_is_refused_before_it_creates_anything(monkeypatch, fresh_pg_store):
    from training import tracking
    from training.errors import ConfigError
    from training.tuning_runtime import make_storage

    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_pg_store)
    tracking._configure().search_experiments()  # the MLflow store, as a first train makes it
    before = _tables(fresh_pg_store)
    with pytest.raises(ConfigError) as ei:
        make_storage(fresh_pg_store)
    shown = fresh_pg_store.replace("postgresql://", "postgresql+psycopg://")
    assert str(ei.value) == (
        f"Optuna storage {shown}: that database holds an MLflow store (its tables experiments, runs, registered_models, "
        "...); Optuna and MLflow each keep their schema version in a table named alembic_version, so they cannot share "
        "one schema: give --storage (or tuning.storage) its own database, or its own schema there (`create schema "
        "optuna`, then add ?options=-csearch_path%3Doptuna to the URL)")
    assert _tables(fresh_pg_store) == before  # no Optuna table left beside MLflow's
    with sa.create_engine(shown, poolclass=sa.pool.NullPool).connect() as conn:
        conn.exec_driver_sql("CREATE SCHEMA optuna")
        conn.commit()
    import optuna

    st = make_storage(fresh_pg_store + "?options=-csearch_path%3Doptuna")  # the way out the message gives
    optuna.create_study(storage=st, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="s", storage=st).trials) == 1


def test_an_mlflow_store_in_an_optuna_database_is_refused_before_it_creates_anything(monkeypatch, fresh_pg_store):
    import optuna

    from training import tracking
    from training.errors import ConfigError

    optuna.storages.RDBStorage(fresh_pg_store.replace("postgresql://", "postgresql+psycopg://"))
    before = _tables(fresh_pg_store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_pg_store)
    with pytest.raises(ConfigError) as ei:
        tracking.check_store()  # what train / tune call before their work
    assert str(ei.value) == (
        f"MLFLOW_TRACKING_URI {fresh_pg_store}: that database holds an Optuna storage (its tables studies, trials, "
        "version_info) and no MLflow store; Optuna and MLflow each keep their schema version in a table named "
        "alembic_version, so they cannot share one schema: give the MLflow store its own database, or its own schema "
        "there (`create schema mlflow`, then add ?options=-csearch_path%3Dmlflow to the URI)")
    assert _tables(fresh_pg_store) == before  # no MLflow table left beside Optuna's
