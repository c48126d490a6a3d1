"""The MLflow adapter against a real SQLite MLflow store under tmp_path.

A run records params, metrics by slice, plots, the config file, the data fingerprint and the
git commit; a logged model loads back (our loader and plain mlflow.pyfunc) with the same
predictions; a run that raises, or a process killed with SIGKILL, registers nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _support_tuning import FEATURES, ROOT, TinyModel, _client, _env, make_data, write_config

FINGERPRINT = {
    "source": "orders.csv",
    "rows": {"order_lines": 400, "accounts": 20},
    "date_min": "2024-01-01",
    "date_max": "2024-12-31",
    "sha256": "ab" * 32,
}


class _Book:
    """Just the two attributes of an OrderBook that tracking reads."""

    fingerprint = FINGERPRINT

    class report:  # noqa: N801 - mimics OrderBook.report
        @staticmethod
        def to_dict() -> dict:
            return {"dropped": {"cancellation": 3}}


def test_nothing_configured_at_import():
    code = "import sys, training.tracking, training.tuning, training.registry; print('mlflow' in sys.modules, 'optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False False"


def test_a_home_that_cannot_hold_the_store_is_a_clear_error(tmp_path, monkeypatch):
    """DEALERML_HOME below or at a file ended train churn/demand/dealers, after the whole fit, in a
    FileExistsError / FileNotFoundError traceback from the store folder's mkdir."""
    from training._tracking_store import _configure
    from training.errors import DealermlError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    f = tmp_path / "notes.txt"
    f.write_text("x")
    monkeypatch.setenv("DEALERML_HOME", str(f))
    with pytest.raises(DealermlError) as ei:
        _configure()
    assert str(ei.value) == (f"cannot create the folder of the MLflow store {f}: it is a file, not a folder; set "
                             "DEALERML_HOME to a folder you can write (or MLFLOW_TRACKING_URI to another store)")
    monkeypatch.setenv("DEALERML_HOME", str(f / "home"))
    with pytest.raises(DealermlError, match=rf"MLflow store {f / 'home'}: .*set DEALERML_HOME to a folder you can"):
        _configure()
    assert f.read_text() == "x"


@pytest.mark.parametrize("which", ["not_a_database", "folder_path"])
def test_a_store_mlflow_cannot_open_is_named_before_the_work(tmp_path, monkeypatch, which):
    """MLFLOW_TRACKING_URI at a file that is not a database (sqlite:///notes.txt) or at a folder path
    (MLflow's file store, which MLflow 3 refuses) gave a SQLAlchemy / MlflowException traceback from
    experiment compare, rollback, promote, tune and train (train churn after its whole backtest)."""
    from typer.testing import CliRunner

    from training import tracking
    from training.cli import app
    from training.errors import ConfigError

    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    if which == "not_a_database":
        uri = f"sqlite:///{notes}"
        expected = (f"cannot open the MLflow store at {uri}: {notes} is not an SQLite database; point "
                    "MLFLOW_TRACKING_URI at a database store (sqlite:///PATH/mlflow.db, postgresql://...) or unset it "
                    f"to use {tmp_path / 'home' / 'mlflow.db'} (DEALERML_HOME)")
    else:
        uri = str(tmp_path / "mlruns")
        expected = (f"cannot open the MLflow store at {uri}: it is a folder path (MLflow's file store), which this "
                    "MLflow no longer opens; point MLFLOW_TRACKING_URI at a database store (sqlite:///PATH/mlflow.db, "
                    f"postgresql://...) or unset it to use {tmp_path / 'home' / 'mlflow.db'} (DEALERML_HOME) "
                    "(`mlflow migrate-filestore` moves a file store's runs into a database)")
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError) as ei:
        tracking.check_store()  # what train churn / dealers call before their backtest
    assert str(ei.value) == expected
    for argv in (["experiment", "compare", "churn"], ["rollback", "churn"]):
        r = CliRunner().invoke(app, argv)
        assert r.exit_code == 2, (argv, r.output, r.exception)
        assert " ".join(r.output.split()) == f"error: {expected}", r.output
    assert notes.read_text() == "not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing created


def test_processes_opening_a_new_store_together_all_open_it(tmp_path):
    """Two dealerml train churn started together on a fresh $DEALERML_HOME both created MLflow's tables
    (unlocked migrations) and one died after its backtest: 'table online_scoring_configs already exists'."""
    home = tmp_path / "home"
    code = textwrap.dedent("""
        import sys
        from training import tracking
        import mlflow.store.tracking.sqlalchemy_store
        print("ready", flush=True)
        sys.stdin.readline()  # go: every process has imported training and mlflow
        tracking._configure().search_experiments()
        print("opened")
    """)
    env = {**_env(home), "DEALERML_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:  # all ready, then all told at once (a fixed 6 s start left them idle once imported)
        assert p.stdout.readline().strip() == "ready", p.communicate(timeout=60)[1][-3000:]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and out.strip() == "opened", err[-3000:]
    assert _client(home).search_experiments()  # one good store


def test_processes_opening_a_new_postgresql_store_together_all_open_it(tmp_path, monkeypatch, fresh_pg_store):
    """Two dealerml train churn started together on a fresh PostgreSQL database: the second died after its
    backtest with 'cannot read the MLflow registry ...: IntegrityError: ... duplicate key value violates unique
    constraint "pg_type_typname_nsp_index" ... (alembic_version, 2200) already exists' (both created MLflow's
    tables unlocked). An advisory lock on the database makes the others wait."""
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - imported once, before the fork

    from training import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_pg_store)
    start, children = time.time() + 1.5, []
    for i in range(3):  # forked after the imports: the processes open the store at the same moment
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked child ends in os._exit, which coverage does not record
            code = 1
            try:
                err_to = open(tmp_path / f"child{i}.err", "w")  # noqa: SIM115
                os.dup2(err_to.fileno(), 2)
                while time.time() < start:
                    time.sleep(0.002)
                tracking._configure().search_experiments()
                code = 0
            except BaseException as exc:  # noqa: BLE001
                err_to.write(f"{type(exc).__name__}: {exc}")
                err_to.flush()
            finally:
                os._exit(code)
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    errs = [(tmp_path / f"child{i}.err").read_text()[-2000:] for i in range(3)]
    assert codes == [0, 0, 0], errs
    from mlflow import MlflowClient

    assert MlflowClient(tracking_uri=fresh_pg_store).search_experiments()  # one good store


def test_a_sqlite_store_uri_with_options_names_the_same_file(tmp_path, monkeypatch, mlflow_template_db):
    """MLFLOW_TRACKING_URI=sqlite:////PATH/mlflow.db?timeout=30 (a SQLAlchemy option, which MLflow accepts)
    was read as a file named 'mlflow.db?timeout=30': `dealerml serve`, promote and rollback said there was
    no MLflow store at it, and registry_lock held nothing, so two first registrations could both become
    champion. The file is the URI's path without its query: found, and its registry lock excludes."""
    import shutil
    import threading

    from training import _tracking_locks, tracking
    from training.errors import ConfigError

    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template_db, db)
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}?timeout=30")
    assert tracking.local_store_missing() is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}?timeout=30")
    assert tracking.local_store_missing() == tmp_path / "none.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}?timeout=30")
    monkeypatch.setattr(_tracking_locks, "REGISTRY_LOCK_TIMEOUT_S", 0.3)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:  # another registration holding the lock (a flock of its own, as another process's)
        with tracking.registry_lock("dealerml-churn"):
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(ConfigError) as ei, tracking.registry_lock("dealerml-churn"):
            pass
    finally:
        release.set()
        t.join(30)
    # the holder is this process (a thread's flock of its own), named with its command line
    assert str(ei.value) == (
        f"cannot set the aliases of dealerml-churn in sqlite:///{db}?timeout=30: another process has held its "
        f"registry lock (a flock on {db}: process {os.getpid()} ({_cmdline()})) for more than 0.3 s; try again "
        "when it has finished")


def _cmdline() -> str:
    with open(f"/proc/{os.getpid()}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:200]


def test_a_sqlite_store_whose_creation_lock_is_held_too_long_is_named(tmp_path, monkeypatch):
    """The flock on a SQLite store's folder was waited for forever (the PostgreSQL lock gives up after
    CREATION_LOCK_TIMEOUT_S): a process stuck creating the tables hung every later train / serve with no
    word. Now the same bound and a message naming the folder and the process holding the flock."""
    from training import _tracking_locks, tracking
    from training.errors import ConfigError

    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    monkeypatch.setattr(_tracking_locks, "CREATION_LOCK_TIMEOUT_S", 0.5)
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(store)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(ConfigError) as ei:
            tracking._configure()
        assert time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.wait(30)
    assert str(ei.value) == (
        f"cannot open the MLflow store at {tracking.shown_tracking_uri()}: another process has been creating or "
        f"upgrading its tables for more than 0.5 s (it holds a flock on {store}: process {holder.pid} "
        f"({f'{sys.executable} -c {code} {store}'[:200]})); try again when it has finished")  # its command line
    assert tracking._configure().search_experiments()  # the flock gone: the store opens


def test_a_postgresql_store_whose_creation_lock_is_held_too_long_is_named(monkeypatch, fresh_pg_store):
    """Another process creating the tables for longer than the wait: a message saying so, not a traceback."""
    import sqlalchemy as sa

    from training import _tracking_locks, tracking
    from training.errors import ConfigError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_pg_store)
    monkeypatch.setattr(_tracking_locks, "CREATION_LOCK_TIMEOUT_S", 1)
    holder = sa.create_engine(fresh_pg_store, poolclass=sa.pool.NullPool)
    with holder.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_tracking_locks._PG_CREATION_LOCK_KEY})")
        t0 = time.monotonic()
        with pytest.raises(ConfigError) as ei:
            tracking._configure()
        assert time.monotonic() - t0 < 10
    holder.dispose()
    assert str(ei.value) == (
        f"cannot open the MLflow store at {fresh_pg_store}: another process has been creating or upgrading its "
        f"tables for more than 1 s (it holds the advisory lock {_tracking_locks._PG_CREATION_LOCK_KEY}; see "
        "pg_locks); try again when it has finished")


class _RaisingConn:
    """A connection whose advisory lock fails with ``err`` (as SQLAlchemy raises it)."""

    def __init__(self, err: Exception):
        self.err = err

    def exec_driver_sql(self, sql: str):
        if sql.startswith("SELECT pg_advisory_lock"):
            raise self.err

    def commit(self):
        pass


def test_a_lock_timeout_is_told_by_its_sqlstate_not_its_english_text():
    """The wait that ran out was told by the English text 'lock timeout': a server with lc_messages in another
    language said "cannot read the MLflow registry ... Zeitüberschreitung" instead of naming the lock held."""
    import psycopg
    import sqlalchemy.exc as sa_exc

    from training._tracking_locks import _take_pg_advisory_lock
    from training.errors import ConfigError

    def take(orig: Exception) -> str:
        err = sa_exc.OperationalError("SELECT pg_advisory_lock(1)", None, orig)
        with pytest.raises(ConfigError) as ei:
            _take_pg_advisory_lock(_RaisingConn(err), "1", 1, lambda: ConfigError("timed out"))
        return str(ei.value)

    german = "FEHLER:  Abbruch des Befehls wegen Zeitüberschreitung einer Sperre"
    assert take(psycopg.errors.LockNotAvailable(german)) == "timed out"  # SQLSTATE 55P03
    # another SQLSTATE is the store's failure, whatever its text says
    assert take(psycopg.errors.AdminShutdown("terminating connection (lock timeout)")).startswith(
        "cannot read the MLflow registry at ")
    # a driver that gives no SQLSTATE: the English text, as before
    assert take(RuntimeError("canceling statement due to lock timeout")) == "timed out"
    assert take(RuntimeError(german)).startswith("cannot read the MLflow registry at ")


def test_logging_a_model_on_a_postgresql_store_prints_no_psycopg_error(tmp_path, monkeypatch, fresh_pg_store, caplog):
    """Every train / tune on a PostgreSQL store printed 'error ignored terminating <psycopg.Pipeline [INERROR,
    pipeline=ON] ...>: pipeline aborted' on stderr: MLflow logs the run's metrics again with the model and
    skips the duplicates, and psycopg warned about the aborted pipeline it had handed that error through."""
    import logging

    from training import tracking

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_pg_store)
    df = make_data()
    model = TinyModel(n_estimators=5).fit(df, df["y"])
    with caplog.at_level(logging.WARNING), tracking.training_run("churn") as run:
        run.log_metrics({f"m{i}": 0.01 * i for i in range(60)})  # as many as a churn backtest logs
        run.log_model(model, input_example=df[FEATURES].head(5))
        # psycopg meets that second error only when the pipeline still had results pending (timing: about
        # one model in three here), so its own line is logged once more the way psycopg logs it
        logging.getLogger("psycopg").warning("error ignored terminating %r: %s", "<psycopg.Pipeline [INERROR]>",
                                             "pipeline aborted")
        logging.getLogger("psycopg").warning("another psycopg warning")  # kept
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == ["another psycopg warning"]
    assert len(_client_at(fresh_pg_store).get_run(run.run_id).data.metrics) == 60


def _client_at(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_a_tracking_server_that_is_down_is_named_in_seconds_by_the_cli(tmp_path):
    """MLFLOW_TRACKING_URI at a server that is down: MLflow's client retried for about 4 minutes before
    rollback / experiment compare / train said anything (measured: rollback churn 4 min 8 s)."""
    from serving.devserver import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {**_env(tmp_path / "home"), "MLFLOW_TRACKING_URI": uri}
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT",
                "HTTP_PROXY", "http_proxy"):
        env.pop(var, None)  # MLflow's own defaults, as a user has them
    base = [sys.executable, "-c", "from training.cli import app; app(prog_name='dealerml')"]
    for argv in (["rollback", "churn"], ["experiment", "compare", "churn"]):
        t0 = time.monotonic()
        p = subprocess.run([*base, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert time.monotonic() - t0 < 30
        assert p.returncode == 2, p.stderr[-2000:]
        assert p.stderr.startswith(f"error: cannot read the MLflow registry at {uri}: ConnectionRefusedError: "), p.stderr
        assert "Traceback" not in p.stderr


def test_an_alias_no_version_has_names_the_aliases_there_are(home):
    """forecast / safety-stock --alias staging (or 1, meaning version 1) said 'no model version of
    'dealerml-churn' has alias 'staging'; train one (dealerml train ...) or promote one', though neither
    makes a 'staging' alias; it now names the aliases the model has."""
    from training import tracking
    from training.errors import ConfigError

    df = make_data()
    for _ in range(2):
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
            run.register("dealerml-churn")
    uri = tracking.shown_tracking_uri()
    with pytest.raises(ConfigError) as err:
        tracking.load_model("dealerml-churn", "staging")
    assert str(err.value) == (f"no model version of 'dealerml-churn' has alias 'staging' in {uri}; its aliases are "
                              "challenger (v2), champion (v1) (dealerml train / tune make the challenger, dealerml "
                              "promote the champion)")
    with pytest.raises(ConfigError, match=r"its aliases are challenger \(v2\), champion \(v1\); '1' is an alias, "
                                          r"not a version number"):
        tracking.model_info("dealerml-churn", "1")
    with pytest.raises(ConfigError, match=r"has alias 'staging' in .*; train one \(dealerml train"):
        tracking.load_model("dealerml-dealers", "staging")  # no such model: train one, as before


def test_metric_key_scheme():
    from training.tracking import metric_key

    assert metric_key("auc", {"segment": "retail"}) == "auc__segment.retail"
    assert metric_key("auc", "region=United Kingdom") == "auc__region.United Kingdom"
    assert metric_key("mase", {"demand_class": "lumpy", "level": "sku=1"}) == "mase__demand_class.lumpy__level.sku_1"
    with pytest.raises(ValueError, match="dimension=value"):
        metric_key("auc", "retail")


def test_run_records_lineage_metrics_plots_and_model(home, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow.pyfunc

    from training import tracking
    from training.config import load_config

    cfg_path = write_config(tmp_path, extra="churn:\n  horizon_days: 90\n")
    cfg = load_config(cfg_path)
    df = make_data()
    model = TinyModel(n_estimators=20).fit(df, df["y"])
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    with tracking.training_run("churn", config=cfg, book=_Book()) as run:
        run.log_params({"model": {"n_estimators": 20}})
        run.log_metrics({"auc": 0.81, "brier": float("nan")})
        run.log_metrics({"auc": 0.74}, slice={"segment": "retail"})
        run.log_figure(fig, "plots/reliability.png")
        assert not plt.fignum_exists(fig.number)  # logged, then closed: pyplot no longer holds it
        run.log_model(model, input_example=df[FEATURES].head(5),
                      metadata={"training_window": ["2024-01-01", "2024-12-31"], "backtest_metrics": {"auc": 0.81}})
        run.register("dealerml-churn")
    client = _client(home)
    r = client.get_run(run.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params["model.n_estimators"] == "20"
    assert r.data.params["seed"] == "7" and r.data.params["config.churn.horizon_days"] == "90"
    assert r.data.metrics["auc"] == pytest.approx(0.81)
    assert r.data.metrics["auc__segment.retail"] == pytest.approx(0.74)
    assert "brier" not in r.data.metrics and r.data.tags["dealerml.skipped_metrics"] == "brier"
    assert r.data.tags["data.sha256"] == "ab" * 32
    assert r.data.tags["data.rows.order_lines"] == "400"
    assert r.data.tags["data.date_min"] == "2024-01-01"
    commit = r.data.tags["mlflow.source.git.commit"]
    assert len(commit) == 40 and r.data.tags["dealerml.git_commit"] == commit
    # the recorded commit is HEAD or (others commit to this tree meanwhile) one of its ancestors
    assert subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=ROOT).returncode == 0
    assert r.data.tags["dealerml.git_dirty"] in ("true", "false")
    arts = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"config", "data", "plots"} <= arts
    assert {a.path for a in client.list_artifacts(run.run_id, "config")} == {"config/tiny.yaml", "config/resolved.json"}
    assert {a.path for a in client.list_artifacts(run.run_id, "data")} == {"data/fingerprint.json", "data/quality_report.json"}
    # artifacts live under $DEALERML_HOME/mlruns
    assert (home / "mlruns" / "dealerml-churn").is_dir()
    # the first registered version is challenger and (no champion yet) champion
    assert run.registered == [("dealerml-churn", "1")]
    est, info = tracking.load_model("dealerml-churn")
    assert info.version == "1" and set(info.aliases) == {"champion", "challenger"} and info.run_id == run.run_id
    assert info.training_window == ["2024-01-01", "2024-12-31"] and info.backtest_metrics == {"auc": 0.81}
    assert info.estimator_class == "_support_tuning.TinyModel"
    np.testing.assert_allclose(est.predict_proba(df), model.predict_proba(df))
    assert tracking.model_info("dealerml-churn", "challenger").version == "1"
    pyf = mlflow.pyfunc.load_model("models:/dealerml-churn@champion")
    np.testing.assert_allclose(pyf.predict(df[FEATURES].head(7)), model.predict_proba(df.head(7)))
    sig = pyf.metadata.signature
    assert sig is not None and [c.name for c in sig.inputs.inputs] == FEATURES
    import mlflow.artifacts

    reqs = Path(mlflow.artifacts.download_artifacts("models:/dealerml-churn/1/requirements.txt",
                                                    dst_path=str(tmp_path / "req"))).read_text()
    assert "lightgbm==" in reqs and "mlflow==" in reqs and "pandas==" in reqs


def test_crashed_run_registers_nothing_and_is_failed(home):
    from training import tracking
    from training.errors import ConfigError

    df = make_data()
    with pytest.raises(RuntimeError, match="training crashed"):
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
            run.register("dealerml-churn")
            raise RuntimeError("training crashed")
    client = _client(home)
    assert client.get_run(run.run_id).info.status == "FAILED"
    assert client.search_registered_models() == []
    with pytest.raises(ConfigError, match="no model version of 'dealerml-churn' has alias 'champion'"):
        tracking.load_model("dealerml-churn")


def _child_at_the_end_of_a_run(home, tmp_path) -> tuple[subprocess.Popen, str]:
    """A process that logged a model and asked for its registration, then waits inside the run;
    returns (process, run id) once it is there."""
    marker = tmp_path / "logged"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from _support_tuning import TinyModel, make_data
        from training import tracking
        df = make_data()
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
            run.register("dealerml-churn")
            Path({str(marker)!r}).write_text(run.run_id)
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "child never reached the end of its run"
        time.sleep(0.1)
    return proc, marker.read_text()


def test_killed_process_registers_nothing(home, tmp_path):
    proc, run_id = _child_at_the_end_of_a_run(home, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    client = _client(home)
    assert client.get_run(run_id).info.status == "RUNNING"  # never finished
    assert client.search_registered_models() == []  # and registered nothing
    assert client.search_model_versions("name='dealerml-churn'") == []
    # the next training command marks it KILLED (its process is gone); a run whose process is
    # alive (this one's) and a run without process tags (recorded by an older dealerml) stay
    from training import tracking

    exp = client.get_experiment_by_name("dealerml-churn").experiment_id
    untagged = client.create_run(exp, tags={"dealerml.kind": "churn"}).info.run_id
    with tracking.training_run("churn") as outer:
        with tracking.training_run("demand", nested=True):
            pass
        assert client.get_run(outer.run_id).info.status == "RUNNING"
    stale = client.get_run(run_id)
    assert stale.info.status == "KILLED" and f"process {proc.pid}" in stale.data.tags["dealerml.stale"]
    assert client.get_run(untagged).info.status == "RUNNING"
    assert client.get_run(outer.run_id).info.status == "FINISHED"


def test_sigterm_ends_the_run_killed_and_registers_nothing(home, tmp_path):
    # `kill` (SIGTERM) is handled like Ctrl-C: the run is KILLED at once, not left RUNNING
    proc, run_id = _child_at_the_end_of_a_run(home, tmp_path)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    client = _client(home)
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.search_model_versions("name='dealerml-churn'") == []


def test_a_version_whose_registration_never_completed_is_deleted(home):
    # a process killed between creating a version and setting its alias leaves it "pending";
    # the next run deletes it when that process is gone, and keeps a live process's
    import socket

    import mlflow

    from training import tracking

    df = make_data()
    with tracking.training_run("churn") as run:
        uri = run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    dead = mlflow.register_model(uri, "dealerml-churn", tags={"dealerml.registration": "pending", "dealerml.pid": str(gone.pid),
                                                              "dealerml.host": host})
    live = mlflow.register_model(uri, "dealerml-churn", tags={"dealerml.registration": "pending", "dealerml.pid": str(os.getpid()),
                                                              "dealerml.host": host})
    with tracking.training_run("churn"):
        pass
    client = _client(home)
    left = {str(mv.version) for mv in client.search_model_versions("name='dealerml-churn'")}
    assert str(dead.version) not in left and str(live.version) in left
    # a normal registration ends "complete"
    with tracking.training_run("churn") as run:
        run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
        run.register("dealerml-churn")
    (name, version), = run.registered
    assert client.get_model_version(name, version).tags["dealerml.registration"] == "complete"
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_a_pending_version_of_another_host_is_deleted_after_the_ttl(home, monkeypatch):
    # another machine's processes cannot be seen from here: its pending version is kept while
    # it could still be registering, and deleted once pending for longer than the TTL
    import mlflow

    from training import tracking

    df = make_data()
    with tracking.training_run("churn") as run:
        uri = run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
    other = mlflow.register_model(uri, "dealerml-churn", tags={"dealerml.registration": "pending", "dealerml.pid": "1",
                                                               "dealerml.host": "another-host.example"})
    client = _client(home)

    def versions():
        return {str(mv.version) for mv in client.search_model_versions("name='dealerml-churn'")}

    with tracking.training_run("churn"):  # default TTL (24 h): just registered, kept
        pass
    assert str(other.version) in versions()
    monkeypatch.setenv("DEALERML_PENDING_VERSION_TTL_HOURS", "0.0001")  # 0.36 s
    time.sleep(0.5)
    with tracking.training_run("churn"):
        pass
    assert str(other.version) not in versions()


@pytest.mark.parametrize("raw", ["12h", "nan", "inf", "0", "-1"])
def test_a_bad_pending_version_ttl_is_refused_naming_it(raw, monkeypatch):
    # '12h' silently meant the default 24 h and 'nan' meant never; the clean-up, which swallows every
    # error (best effort), must not swallow this one
    from training._tracking_cleanup import _pending_ttl_ms, drop_incomplete_versions
    from training.errors import ConfigError

    monkeypatch.setenv("DEALERML_PENDING_VERSION_TTL_HOURS", raw)
    want = rf"\$DEALERML_PENDING_VERSION_TTL_HOURS must be a positive number of hours .*; got '{raw}'"
    with pytest.raises(ConfigError, match=want):
        _pending_ttl_ms()
    with pytest.raises(ConfigError, match=want):
        drop_incomplete_versions(object())  # a client it never gets to use
    monkeypatch.setenv("DEALERML_PENDING_VERSION_TTL_HOURS", " 0.5 ")
    assert _pending_ttl_ms() == 1_800_000
    monkeypatch.delenv("DEALERML_PENDING_VERSION_TTL_HOURS")
    assert _pending_ttl_ms() == 24 * 3_600_000


def test_runs_cannot_register_as_champion_and_bad_aliases_fail_fast(home, monkeypatch):
    from training import tracking
    from training.errors import ConfigError

    with pytest.raises(ConfigError, match="only through `dealerml promote`"):
        tracking.check_alias("champion")
    with pytest.raises(ConfigError, match="not a valid registry alias"):
        tracking.check_alias("champion!")
    assert tracking.check_alias("candidate-2") == "candidate-2"
    # a registration that fails after the run finished marks it FAILED and leaves no version
    df = make_data()

    def broken(*a, **k):
        raise RuntimeError("registry down")

    monkeypatch.setattr(tracking, "register_model_uri", broken)
    with pytest.raises(RuntimeError, match="registry down"):
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
            run.register("dealerml-churn")
    client = _client(home)
    got = client.get_run(run.run_id)
    assert got.info.status == "FAILED" and got.data.tags["dealerml.registration_failed"] == "true"
    assert client.search_model_versions("name='dealerml-churn'") == []


def test_parent_run_env_nests_runs(home, monkeypatch):
    from training import tracking

    with tracking.training_run("experiment") as parent:
        monkeypatch.setenv("DEALERML_PARENT_RUN_ID", parent.run_id)
        with tracking.training_run("churn") as child:
            child.log_metrics({"auc": 0.7})
    client = _client(home)
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent.run_id
    assert client.get_run(parent.run_id).info.status == "FINISHED"
    assert client.get_run(child.run_id).info.status == "FINISHED"


def test_a_sigterm_whose_interrupt_was_swallowed_still_registers_nothing(home):
    """A SIGTERM that lands while Python runs a __del__ (or a gc callback) raises its interrupt
    there, where Python prints "Exception ignored" and goes on: train went on to register a
    version after a `kill` (seen in the session-9 audit). The run now ends KILLED anyway."""
    from training import tracking

    class Finalizer:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs in here: its KeyboardInterrupt is ignored

    df = make_data()
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
            run.register("dealerml-churn")
            f = Finalizer()
            del f  # the interrupt is swallowed here
    client = _client(home)
    assert client.get_run(run.run_id).info.status == "KILLED"
    assert client.search_model_versions("name='dealerml-churn'") == []


def test_every_run_says_the_python_and_package_versions_it_ran_with(home):
    """Only a logged model's requirements.txt said which lightgbm, statsforecast ... a run used: a run
    without a model (a tune trial, a promotion's evidence) said nothing, and no run said it where its tags
    are read. Every run now tags dealerml.env.<package> with the installed version."""
    import importlib.metadata
    import platform

    from mlflow.tracking import MlflowClient

    from training import tracking

    with tracking.training_run("churn", run_name="env") as run:  # no model logged
        pass
    tags = MlflowClient(tracking.tracking_uri()).get_run(run.run_id).data.tags
    assert tags["dealerml.env.python"] == platform.python_version()
    for pkg in ("lightgbm", "scikit-learn", "statsforecast", "pandas", "mlflow"):
        assert tags[f"dealerml.env.{pkg}"] == importlib.metadata.version(pkg)
