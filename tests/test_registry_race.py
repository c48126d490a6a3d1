"""Two processes registering the first versions of a model name at the same moment (two ``dealerml train
churn`` finishing together on a store without a champion): each read 'no champion' and set the alias to
its own version, so the last writer won and both runs said they were champion. The check-and-set is now
one step under a lock of the store (SQLite: a flock on its file; PostgreSQL: an advisory lock): one
version is champion, the other run says it is a challenger, in its words and its run tags. A tracking
server (http://) offers no lock: there the lowest version number wins, and promote / rollback check
after moving the champion that no other move was lost.

Each racer widens the window between reading the champion and setting it (a sleep after the read), so
without the lock both read 'no champion' every time."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _support_tuning import TinyModel, _client, make_data

NAME = "dealerml-churn"
WINDOW_S = 1.0  # between a racer's read of the champion and what it does about it


def _racer(barrier, out: Path, i: int) -> None:
    """One training run that registers NAME when both racers are ready (a forked process)."""
    from training import _tracking_registry, tracking
    from training.commands._common import registered_text

    read = _tracking_registry.get_alias_version

    def slow_read(name: str, alias: str) -> str | None:
        version = read(name, alias)
        if alias == "champion":
            time.sleep(WINDOW_S)
        return version

    set_alias, claimed = _tracking_registry.set_alias, []

    def noted_set_alias(name: str, alias: str, version: str) -> None:
        if alias == "champion":
            claimed.append(str(version))
        set_alias(name, alias, version)

    df = make_data(120)
    model = TinyModel(n_estimators=3).fit(df, df["y"])
    _tracking_registry.get_alias_version = slow_read  # what register_model_uri reads under the lock
    _tracking_registry.set_alias = noted_set_alias
    with tracking.training_run("churn", run_name=f"racer{i}") as run:
        run.log_model(model)
        run.register(NAME)
        barrier.wait(timeout=120)  # both leave the run (and register) together
    _tracking_registry.get_alias_version, _tracking_registry.set_alias = read, set_alias
    out.write_text(json.dumps({"run_id": run.run_id, "version": run.registered[0][1], "claimed": claimed,
                               "said": registered_text(run.registered, config="tiny.yaml")}))


def _race(tmp_path: Path, client) -> None:
    """Run two racers; assert one champion and that each run says truthfully what it became."""
    ctx = multiprocessing.get_context("fork")  # the imports are shared; the store is opened in each racer
    barrier = ctx.Barrier(2)
    outs = [tmp_path / f"racer{i}.json" for i in range(2)]
    procs = [ctx.Process(target=_racer, args=(barrier, outs[i], i)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0, 0]
    got = [json.loads(o.read_text()) for o in outs]
    assert sorted(g["version"] for g in got) == ["1", "2"]
    champion = client.get_model_version_by_alias(NAME, "champion").version
    won, lost = sorted(got, key=lambda g: g["version"] != str(champion))
    assert (won["claimed"], lost["claimed"]) == ([won["version"]], [])  # both had claimed it, the last one kept it
    assert client.get_registered_model(NAME).tags["dealerml.champion_history"] == json.dumps([won["version"]])
    # the challenger alias is set under the same lock: it is the later registration's, as that run says
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == lost["version"]
    assert won["said"] in (  # the winner's words, read before or after the other run registered
        f"registered {NAME} version {won['version']} (challenger, and champion: the first version)",
        f"registered {NAME} version {won['version']} (no longer challenger: v{lost['version']} was registered "
        "after it, and champion: the first version)")
    assert lost["said"] == (
        f"registered {NAME} version {lost['version']} (challenger, not served: `dealerml promote churn --config "
        f"tiny.yaml` scores it against champion v{won['version']} on the latest backtest and moves the champion "
        "if it wins)")
    for g, aliases in ((won, "challenger,champion"), (lost, "challenger")):
        tags = client.get_run(g["run_id"]).data.tags
        assert {k: v for k, v in tags.items() if k.startswith("registry.")} == {
            f"registry.{NAME}.version": g["version"], f"registry.{NAME}.aliases": aliases,
            f"registry.{NAME}.champion": won["version"]}
        version_tags = client.get_model_version(NAME, g["version"]).tags
        assert version_tags["dealerml.champion_at_registration"] == won["version"]
        assert version_tags["dealerml.registration"] == "complete"


def test_two_runs_registering_together_on_sqlite_make_one_champion(home, tmp_path):
    _race(tmp_path, _client(home))


@pytest.mark.postgres
def test_two_runs_registering_together_on_postgresql_make_one_champion(tmp_path, monkeypatch, fresh_pg_store):
    from mlflow import MlflowClient

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_pg_store)  # a new database: the racers create MLflow's tables
    _race(tmp_path, MlflowClient(tracking_uri=fresh_pg_store, registry_uri=fresh_pg_store))


@pytest.fixture
def mlflow_server(tmp_path, mlflow_template_db):
    """A real ``mlflow server`` on a free port of 127.0.0.1 with a SQLite backend under ``tmp_path`` (a
    copy of the migrated template: no migrations at start-up); its URI. Stopped (its process group) after."""
    from serving.devserver import free_port

    srv = tmp_path / "server"
    srv.mkdir()
    shutil.copy(mlflow_template_db, srv / "mlflow.db")
    uri = f"http://127.0.0.1:{free_port()}"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{srv / 'mlflow.db'}",
         "--artifacts-destination", str(srv / "artifacts"), "--host", "127.0.0.1", "--port", uri.rsplit(":", 1)[1],
         "--workers", "1"], cwd=srv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180  # MLflow's server took 36 s to answer at load ~10
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "server.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


@pytest.mark.slow
def test_two_runs_registering_together_on_a_tracking_server_make_one_champion(tmp_path, monkeypatch, mlflow_server):
    """A tracking server (http://) offers no lock: both racers read 'no champion' and set it, both
    versions' tags said champion and the history kept only the last ("2"). The version number the server
    assigns breaks the tie: a version does not claim champion while a lower one is still being registered."""
    from mlflow import MlflowClient

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    _race(tmp_path, MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server))


def _unlocked_with_a_move_landing(monkeypatch, after: str, version: str):
    """The store offers no registry lock (as a tracking server) and another process's promote moves the
    champion to ``version`` right after this process calls ``tracking.<after>``; returns the tracking module."""
    from contextlib import contextmanager

    from training import tracking

    @contextmanager
    def no_lock(name):
        yield False

    monkeypatch.setattr(tracking, "registry_lock", no_lock)
    original, landed = getattr(tracking, after), []

    def then_the_other_move(*args):
        original(*args)
        if not landed:
            landed.append(True)
            tracking.set_alias(NAME, "champion", version)

    monkeypatch.setattr(tracking, after, then_the_other_move)
    return tracking


def _register_three(tracking) -> None:
    df = make_data(120)
    for i in range(3):  # v1 champion (the first), v3 challenger
        with tracking.training_run("churn", run_name=f"r{i}") as run:
            run.log_model(TinyModel(n_estimators=3 + i).fit(df, df["y"]))
            run.register(NAME)


def test_a_promote_whose_move_was_overwritten_without_a_lock_says_so(home, monkeypatch):
    """Without a registry lock (a tracking server) another promote could move the champion between this
    promote's check and its move, or just after it: both said promoted and one move was lost. The alias and
    history are read again after the move; the lost update is detected (not prevented) and refused."""
    from _support_tuning import TinyTarget

    from training import registry, tracking
    from training.errors import ConfigError

    _register_three(tracking)
    _unlocked_with_a_move_landing(monkeypatch, "set_alias", "2")
    with pytest.raises(ConfigError) as ei:
        registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate, force=True)
    uri = tracking.shown_tracking_uri()
    why = (f"the champion of {NAME} was moved by another process while this promote moved it to v3: it is v2 now, "
           f"champion history ['1', '3', '2'] (this promote left ['1', '3']); no registry lock is held on {uri} (a "
           "tracking server offers none)")
    assert str(ei.value) == f"{why}: check which version should be champion before running promote or rollback again"
    assert tracking.get_alias_version(NAME, "champion") == "2"
    client = _client(home)
    evidence = client.search_runs([client.get_experiment_by_name("dealerml-promotion").experiment_id])[0]
    assert (evidence.data.tags["promotion.complete"], evidence.data.tags["promotion.aborted"]) == ("false", why)


@pytest.mark.parametrize(("after", "history", "left"), [
    ("set_alias", "['1', '2', '1', '3']", "['1', '2', '1']"),  # before the history is rewritten: it shows the move
    ("set_champion_history", "['1', '3']", "['1']"),
])
def test_a_rollback_whose_move_was_overwritten_without_a_lock_says_so(home, monkeypatch, after, history, left):
    from training import registry, tracking
    from training.errors import ConfigError

    _register_three(tracking)
    tracking.set_alias(NAME, "champion", "2")  # history [1, 2]
    _unlocked_with_a_move_landing(monkeypatch, after, "3")
    with pytest.raises(ConfigError) as ei:
        registry.rollback(NAME)
    assert str(ei.value).startswith(
        f"the champion of {NAME} was moved by another process while this rollback moved it to v1: it is v3 now, "
        f"champion history {history} (this rollback left {left})")
    assert tracking.get_alias_version(NAME, "champion") == "3"


@pytest.mark.parametrize("uri", ["mysql://root@127.0.0.1/dealerml", "mariadb+pymysql://root:pw@127.0.0.1:3306/x"])
def test_a_mysql_store_is_refused_before_the_work(tmp_path, monkeypatch, uri):
    """No MySQL driver comes with dealerml, so train churn said "cannot read the MLflow registry at mysql://...:
    ModuleNotFoundError: No module named 'MySQLdb'" after its whole backtest; and such a store would have
    neither lock above. It is refused up front, saying so and what to use."""
    from typer.testing import CliRunner

    from training import tracking
    from training.cli import app
    from training.errors import ConfigError

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    expected = (f"MLFLOW_TRACKING_URI {uri.replace(':pw@', ':***@')}: dealerml does not support a MySQL / MariaDB "
                "MLflow store (it installs no MySQL driver, and processes creating the store's tables or registering "
                "a model's first versions together are kept apart by locks only on SQLite and PostgreSQL); use "
                "postgresql://user@host/db or sqlite:///PATH/mlflow.db")
    with pytest.raises(ConfigError) as ei:
        tracking.check_store()  # what train / tune call before their work
    assert str(ei.value) == expected
    r = CliRunner().invoke(app, ["rollback", "churn"])
    assert r.exit_code == 2 and " ".join(r.output.split()) == f"error: {expected}", r.output
    assert not (tmp_path / "home").exists()


def _no_registry_lock(monkeypatch, tracking) -> None:
    """The store offers no registry lock, as a tracking server."""
    from contextlib import contextmanager

    @contextmanager
    def no_lock(name):
        yield False

    monkeypatch.setattr(tracking, "registry_lock", no_lock)


def _a_log_write_landing(monkeypatch, tracking, times: int) -> list[dict]:
    """Another process appends to the promotion log from a read made before this process's write, so that
    write lands just after this one's (``times`` times) and drops its entry; returns the other's entries."""
    from training import registry

    original, others = tracking.set_model_tag, []

    def then_the_other_write(name: str, key: str, value: str) -> None:
        stale = tracking.get_model_tags(name).get(key)  # what the other process read before this write
        original(name, key, value)
        if key == registry._LOG_TAG and len(others) < times:
            others.append({"decision": "promoted", "by": f"the other process ({len(others) + 1})"})
            original(name, key, json.dumps([*(json.loads(stale) if stale else []), others[-1]]))

    monkeypatch.setattr(tracking, "set_model_tag", then_the_other_write)
    return others


def test_a_promotion_log_entry_lost_to_another_write_without_a_lock_is_written_again(home, monkeypatch):
    """dealerml.promotion_log is one JSON list read, appended to and written back: on a tracking server (no
    registry lock) two promotes / rollbacks each read it and the last write kept only its own entry. Without
    a lock the log is read again after the write and the entry appended again while it is missing."""
    from training import registry, tracking

    _register_three(tracking)
    tracking.set_alias(NAME, "champion", "2")  # history [1, 2]
    _no_registry_lock(monkeypatch, tracking)
    others = _a_log_write_landing(monkeypatch, tracking, times=2)
    assert registry.rollback(NAME) == ("2", "1")
    log = json.loads(tracking.get_model_tags(NAME)[registry._LOG_TAG])
    assert [e.get("by", e["decision"]) for e in log] == [o["by"] for o in others] + ["rollback"]
    assert (log[-1]["from"], log[-1]["to"]) == ("2", "1")


def test_a_promotion_log_entry_lost_every_time_is_said(home, monkeypatch):
    from training import registry, tracking
    from training.errors import ConfigError

    _register_three(tracking)
    tracking.set_alias(NAME, "champion", "2")
    _no_registry_lock(monkeypatch, tracking)
    _a_log_write_landing(monkeypatch, tracking, times=registry._LOG_ATTEMPTS)
    with pytest.raises(ConfigError) as ei:
        registry.rollback(NAME)
    assert str(ei.value).startswith(
        f"the promotion log of {NAME} (tag dealerml.promotion_log) lost this rollback entry to other processes "
        f"writing it {registry._LOG_ATTEMPTS} times; no registry lock is held on {tracking.shown_tracking_uri()} (a "
        "tracking server offers none). The decision took effect; the entry was {")
    assert tracking.get_alias_version(NAME, "champion") == "1"


def test_the_promotion_log_is_written_under_the_registry_lock(home, monkeypatch):
    """On a SQLite store the log's read-modify-write happens while the name's registry lock (a flock on the
    store's file) is held, by promote and by rollback: another process's flock on the file is refused then."""
    import fcntl

    from _support_tuning import TinyTarget

    from training import registry, tracking
    from training._tracking_uri import _sqlite_file

    _register_three(tracking)
    db, held, append = _sqlite_file(tracking.tracking_uri()), [], registry._append_log

    def append_checking_the_lock(name, entry, **kw):
        fd = os.open(db, os.O_RDONLY)  # a file description of its own, as another process's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        append(name, entry, **kw)

    monkeypatch.setattr(registry, "_append_log", append_checking_the_lock)
    d = registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate, force=True)
    assert d.champion_after == "3"
    assert registry.rollback(NAME) == ("3", "1")
    assert held == [True, True]
    assert [e["decision"] for e in json.loads(tracking.get_model_tags(NAME)[registry._LOG_TAG])] == [d.decision,
                                                                                                    "rollback"]
