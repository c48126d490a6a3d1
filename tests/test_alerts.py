"""Churn alert state machine: new crossings only, idempotent reruns, drop back and re-cross;
on DuckDB and on the real PostgreSQL; optional webhook POST to a local HTTP server."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest
from _support_alerts import PG_URL, _scores, _state_machine

from training.alerts import assign_tiers, read_alerts, record_alerts
from training.churn_backtest import TierSettings
from training.errors import DealermlError
from training.scores import open_db


def test_state_machine_duckdb(tmp_path):
    _state_machine(tmp_path / "dealerml.duckdb", "churn_alerts")


@pytest.mark.postgres
def test_state_machine_postgres():
    table = f"t_alerts_{uuid.uuid4().hex[:8]}"
    try:
        _state_machine(PG_URL, table)
    finally:
        with open_db(PG_URL) as db:
            for t in (table, f"{table}_state", f"{table}_runs"):
                db.execute(f'drop table if exists "{t}"')


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_posts_new_alerts_and_failure_rolls_back(tmp_path, monkeypatch):
    from training import _alerts_webhook

    monkeypatch.setattr(_alerts_webhook, "WEBHOOK_BACKOFF_S", (0.05, 0.05))  # retries (tests/test_alerts_webhook.py), quickly
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    target = tmp_path / "a.duckdb"
    try:
        _Hook.received, _Hook.status = [], 500
        with pytest.raises(DealermlError, match=r"answered 500: .*\(attempt 3 of 3; giving up\)") as err:
            record_alerts(_scores({"A": "high"}), target, "2024-01-01", webhook=f"{url}?token=s3cret-tok")
        assert len(read_alerts(target)) == 0 and len(_Hook.received) == 3  # nothing recorded: the next run retries
        assert "s3cret-tok" not in str(err.value) and f"{url}?***" in str(err.value)  # tokens stay out of logs
        assert "run `dealerml alerts` again with --cutoff 2024-01-01" in str(err.value)
        with pytest.raises(DealermlError, match="could not be reached") as err:
            record_alerts(_scores({"A": "high"}), target, "2024-01-01", webhook="http://bot:pw-s3cret@127.0.0.1:1/h")
        assert "pw-s3cret" not in str(err.value) and "http://***@127.0.0.1:1/h" in str(err.value)
        _Hook.status = 200
        r = record_alerts(_scores({"A": "high", "B": "low"}), target, "2024-01-01", webhook=url)
        assert len(r["new"]) == 1
        assert _Hook.received[-1]["cutoff"] == "2024-01-01"
        assert [a["account_id"] for a in _Hook.received[-1]["alerts"]] == ["A"]
        n_posts = len(_Hook.received)
        record_alerts(_scores({"A": "high", "B": "low"}), target, "2024-01-01", webhook=url)
        assert len(_Hook.received) == n_posts  # a rerun posts nothing
    finally:
        server.shutdown()


def test_tiers_follow_expected_value_and_capacity():
    t = TierSettings(high_probability=0.5, medium_probability=0.2, contact_cost=50, capacity_per_run=2)
    p = [0.9, 0.8, 0.7, 0.6, 0.3, 0.9, 0.1]
    rev = [1000, 2000, 100, 50, 1000, 10, 5000]
    tiers, ev = assign_tiers(p, rev, t)
    # EV: 850, 1550, 20, -20, 250, -41, 450
    assert ev.tolist() == pytest.approx([850, 1550, 20, -20, 250, -41, 450])
    assert tiers.tolist() == ["high", "high", "medium", "low", "medium", "low", "low"]
    # per-group capacity: one per manager
    t2 = TierSettings(high_probability=0.5, medium_probability=0.2, contact_cost=50,
                      capacity_per_run=10, capacity_by="manager", capacity_per_group=1)
    tiers2, _ = assign_tiers(p, rev, t2, groups=["m1", "m1", "m2", "m2", "m1", "m1", "m2"])
    assert tiers2.tolist() == ["medium", "high", "high", "low", "medium", "low", "low"]


_RUNNER = """
import sys
import pandas as pd
import httpx
from training.alerts import record_alerts
from training.scores import open_db
target, table, cutoff, webhook = sys.argv[1:5]
s = pd.DataFrame({"account_id": [f"A{i}" for i in range(30)], "probability": 0.9, "tier": "high"})
if "://" in target:  # load the database driver now: once started, the run must be quick
    with open_db(target) as db:
        db.query("select 1 as x")
else:  # the file's driver too (imported only: the file is not opened, so not created, before the run)
    import duckdb
    import sqlalchemy
print("ready", flush=True)
sys.stdin.readline()  # go
try:
    r = record_alerts(s, target, cutoff, table=table, webhook=webhook)
    print("new", len(r["new"]), "already_ran", r["already_ran"], flush=True)
except Exception as exc:
    print("error", type(exc).__name__, exc, flush=True)
"""


class _SlowHook(BaseHTTPRequestHandler):
    posts: list = []
    got = threading.Event()

    def do_POST(self):  # noqa: N802
        type(self).posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        type(self).got.set()
        import time

        # the first run's transaction stays open while the second one starts (told to go once this POST
        # arrived; its imports and driver are loaded beforehand, so it reaches the lock in a moment)
        time.sleep(1.5)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("fresh", [True, False], ids=["first_run", "tables_exist"])
@pytest.mark.parametrize("kind", ["sqlite", "duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_runs_for_one_date_at_once_alert_once(tmp_path, kind, fresh):
    """A second `dealerml alerts` for the same date that starts while the first is still
    recording (cron overlap, a manual retry) waits, then finds the date done: no duplicate
    alerts, no second POST, no database error."""
    import subprocess
    import sys
    from pathlib import Path

    table = f"t_conc_{uuid.uuid4().hex[:8]}"
    target = {"sqlite": str(tmp_path / "a.sqlite"), "duckdb": str(tmp_path / "a.duckdb"), "postgres": PG_URL}[kind]
    server = HTTPServer(("127.0.0.1", 0), _SlowHook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    _SlowHook.posts, _SlowHook.got = [], threading.Event()
    procs = []
    try:
        if not fresh:  # the tables exist from an earlier run (every account low then)
            record_alerts(pd.DataFrame({"account_id": ["A0"], "probability": [0.1], "tier": ["low"]}),
                          target, "2024-04-01", table=table)
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-c", _RUNNER, target, table, "2024-05-01", url],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                          cwd=Path(__file__).resolve().parents[1]))
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        procs[0].stdin.write("go\n")
        procs[0].stdin.flush()
        assert _SlowHook.got.wait(30)  # the first run is inside its transaction, posting
        procs[1].stdin.write("go\n")
        procs[1].stdin.flush()
        out = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert out[0] == "new 30 already_ran False", out
        assert out[1] == "new 0 already_ran True", out
        assert len(_SlowHook.posts) == 1
        got = read_alerts(target, table=table)
        assert len(got) == 30 and got["account_id"].is_unique
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        server.shutdown()
        if kind == "postgres":
            with open_db(PG_URL) as db:
                for t in (table, f"{table}_state", f"{table}_runs"):
                    db.execute(f'drop table if exists "{t}"')


@pytest.mark.parametrize("kind", ["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_existing_table_of_another_tool_is_refused_clearly(tmp_path, kind):
    from training.errors import DataError

    table = f"t_other_{uuid.uuid4().hex[:8]}"
    target = {"sqlite": str(tmp_path / "a.sqlite"), "duckdb": str(tmp_path / "a.duckdb"), "postgres": PG_URL}[kind]
    try:
        for which in ("", "_state", "_runs"):
            with open_db(target) as db:
                for t in (table, f"{table}_state", f"{table}_runs"):
                    db.execute(f'drop table if exists "{t}"')
                db.execute(f'create table "{table}{which}" (id integer, msg text)')
            with pytest.raises(DataError, match=rf"{table}{which} exists but is not a dealerml alerts table: "
                                                r"it lacks column\(s\) \['(account_id|cutoff)'"):
                record_alerts(_scores({"A": "high"}), target, "2024-01-01", table=table)
            with open_db(target) as db:  # nothing was created or changed
                assert [db.table_exists(t) for t in (table, f"{table}_state", f"{table}_runs")] == [
                    which == "", which == "_state", which == "_runs"]
                assert db.query(f'select count(*) as n from "{table}{which}"')["n"].iloc[0] == 0
    finally:
        with open_db(target) as db:
            for t in (table, f"{table}_state", f"{table}_runs"):
                db.execute(f'drop table if exists "{t}"')


def test_existing_table_with_other_column_order_is_filled_by_name(tmp_path):
    """An alerts table created by an older version (or by hand) with the columns in another
    order gets each value in its own column, not by position."""
    target = tmp_path / "a.duckdb"
    cols = ("created_at varchar(32), model_version text, account_id varchar(64), cutoff varchar(10), "
            "probability double precision, tier varchar(8), reason_1 text, reason_2 text, reason_3 text, "
            "expected_value double precision, revenue_at_risk double precision")
    with open_db(target) as db:
        db.execute(f"create table churn_alerts ({cols})")
    record_alerts(_scores({"A": "high"}), target, "2024-01-01")
    got = read_alerts(target).iloc[0]
    assert got["account_id"] == "A" and got["model_version"] == "3" and got["cutoff"] == "2024-01-01"
    assert got["created_at"].startswith("20") and got["probability"] == 0.9


@pytest.mark.postgres
def test_long_account_ids_are_alerted_in_postgres():
    """Account ids are text of any length (docs/DATA.md); the alert tables held at most 64
    characters in PostgreSQL, so an ERP with longer ids failed the whole run."""
    table = f"t_long_{uuid.uuid4().hex[:8]}"
    long_id = "ACME-EMEA-" + "x" * 90
    try:
        r = record_alerts(_scores({long_id: "high", "B": "low"}), PG_URL, "2024-01-01", table=table)
        assert r["new"]["account_id"].tolist() == [long_id]
        assert read_alerts(PG_URL, table=table)["account_id"].tolist() == [long_id]
        r2 = record_alerts(_scores({long_id: "high"}), PG_URL, "2024-02-01", table=table)
        assert len(r2["new"]) == 0  # still high: the state knew the long id
    finally:
        with open_db(PG_URL) as db:
            for t in (table, f"{table}_state", f"{table}_runs"):
                db.execute(f'drop table if exists "{t}"')


@pytest.mark.parametrize("target, says", [
    ("x.duckdb#foo", "without '#table'"),
    ("alerts.csv", "not a .csv / .parquet file"),
    ("alerts.txt", "a DuckDB file (.duckdb/.ddb)"),
])
def test_alerts_target_must_be_a_database(tmp_path, target, says):
    """`dealerml alerts --target` named the score targets' '.csv/.parquet file' as an option and took
    'x.duckdb#foo' for a file name; it names what alerts take, before any data is read."""
    from typer.testing import CliRunner

    from training.cli import app

    r = CliRunner().invoke(app, ["alerts", "--config", str(tmp_path / "none.yaml"), "--cutoff", "2024-01-01",
                                 "--target", str(tmp_path / target)])
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert "alerts keep their state in a database" in out and says in out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("target, says", [
    ("postgresql+psycopg://crm:pa@ss@db/x", "postgresql+psycopg://crm:***@db/x: not a valid database URL (its user name "
                                            "or password holds '@', which ends the password in a URL"),
    ("postgresql+psycopg://db:port/x", "postgresql+psycopg://db:port/x: not a valid database URL (invalid literal"),
    ("{tmp}/f.txt/a.duckdb", "{tmp}/f.txt/a.duckdb: {tmp}/f.txt is a file, not a folder"),
])
@pytest.mark.parametrize("command", ["alerts", "score"])
def test_a_bad_target_is_named_as_the_option_given(tmp_path, command, target, says):
    """A --target that check_target refused (a password holding a bare '@', a port that is not a number, a
    path below a file) was called the "score target" by `dealerml alerts`, which has no score target, and
    by `score churn`, where the user typed --target. Both name the option and the value; a target taken
    from the config's serving.alerts_target names that key. Refused before any data or model is read."""
    from typer.testing import CliRunner

    from training.cli import app

    (tmp_path / "f.txt").write_text("x")
    target, says = target.format(tmp=tmp_path), says.format(tmp=tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndata: {order_lines: {path: none.csv}}\n")
    argv = (["alerts", "--config", str(cfg), "--cutoff", "2024-01-01", "--target", target] if command == "alerts"
            else ["score", "churn", "--config", str(cfg), "--cutoff", "2024-01-01", "--out", "t", "--target", target])
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2, r.output
    assert " ".join(r.output.split()).startswith(f"error: --target {says}"), r.output
    if command == "alerts":  # the same target from the config: named as its key there
        cfg.write_text(f"name: c\ndata: {{order_lines: {{path: none.csv}}}}\nserving: {{alerts_target: '{target}'}}\n")
        r = CliRunner().invoke(app, argv[:-2])
        if "@ss@" in target:  # refused at load, by serving.alerts_target's own check
            assert "key 'serving.alerts_target': not a valid SQLAlchemy URL" in " ".join(r.output.split()), r.output
        else:
            assert " ".join(r.output.split()).startswith(f"error: {cfg}: key 'serving.alerts_target' {says}"), r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "f.txt"]


def test_duckdb_alerts_table_named_in_another_case_is_the_same_table(tmp_path):
    """DuckDB names are case-insensitive: churn.alerts_table `Churn_Alerts` over an existing
    `churn_alerts` failed ('already exists' at the create, as the table was not found by its
    exact name); it is that table, carried on by the state machine, and read back under either name."""
    target = tmp_path / "dealerml.duckdb"
    record_alerts(_scores({"A": "high", "B": "low"}), target, "2024-01-01", table="churn_alerts")
    r = record_alerts(_scores({"A": "high", "B": "high"}), target, "2024-02-01", table="Churn_Alerts")
    assert list(r["new"]["account_id"]) == ["B"] and not r["already_ran"]  # A stayed high: no second alert
    for name in ("churn_alerts", "CHURN_ALERTS"):
        got = read_alerts(target, table=name, since="2024-01-01")
        assert list(zip(got["cutoff"], got["account_id"], strict=True)) == [("2024-01-01", "A"), ("2024-02-01", "B")]
    from serving.churn import ChurnBackend

    # the service's reader of the DuckDB file: the same table
    backend = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1", as_of=pd.Timestamp("2024-03-01"),
                           table=_scores({}), alerts_target=str(target), alerts_table="Churn_Alerts")
    assert [a["account_id"] for a in backend.alerts(None, 10)["alerts"]] == ["A", "B"]


@pytest.mark.parametrize("ext", ["duckdb", "sqlite"])
def test_scores_are_not_written_over_the_alerts_tables(tmp_path, ext):
    """`score churn --out churn_alerts` (or churn.alerts_table named like churn.scores_table) replaced the alerts
    history, the state or the run log with scores, silently: the history was gone and the next `alerts` run
    refused the table. write_table now refuses each of the three, leaving it as it was."""
    from training.errors import DataError
    from training.scores import read_table, write_table

    target = tmp_path / f"crm.{ext}"
    record_alerts(_scores({"A": "high", "B": "low"}), target, "2024-01-01", table="churn_alerts")
    before = {t: read_table(target, t) for t in ("churn_alerts", "churn_alerts_state", "churn_alerts_runs")}
    scores = _scores({"A": "high", "B": "high"}).assign(cutoff="2024-02-01")
    for table, what in (("churn_alerts", "history"), ("churn_alerts_state", "state (the last tier per account)"),
                        ("churn_alerts_runs", "run log (the cutoffs already run)")):
        with pytest.raises(DataError) as err:
            write_table(scores, target, table)
        assert str(err.value) == (f"{target}#{table} is the {what} table of `dealerml alerts`; writing scores there "
                                  "would replace it: choose another table (--out), and keep churn.scores_table and "
                                  "churn.alerts_table apart; the table is unchanged")
    for t, df in before.items():
        pd.testing.assert_frame_equal(read_table(target, t), df)
    write_table(scores, target, "churn_scores")  # any other table, as before
    assert len(read_table(target, "churn_scores")) == 2
    assert sorted(record_alerts(_scores({"A": "high", "B": "high"}), target, "2024-02-01")["new"]["account_id"]) == ["B"]


@pytest.mark.parametrize("kind", ["duckdb", "sqlite", "postgresql"])
def test_a_recorded_or_earlier_date_is_answered_before_the_data_load(tmp_path, kind):
    """`dealerml alerts` for a date already recorded, or before the latest recorded one, loaded the book
    and scored every account before it said so (3 min 43 s on Online Retail at load 2-4 to refuse an
    earlier date): the runs table answers it first. The config here names an order book that does not
    exist, so a run that reads the data fails on it; a new date still does, and is still scored."""
    from typer.testing import CliRunner

    from training.cli import app

    table = f"h173_pre_{kind}"
    target = {"duckdb": str(tmp_path / "a.duckdb"), "sqlite": str(tmp_path / "a.sqlite"), "postgresql": PG_URL}[kind]
    _drop_pg(kind, table)
    try:
        record_alerts(_scores({"A": "high", "B": "high", "C": "low"}), target, "2024-02-01", table=table)
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"name: c\ndata: {{order_lines: {{path: none.csv}}}}\nchurn: {{alerts_table: {table}}}\n")
        run = lambda day: CliRunner().invoke(app, ["alerts", "--config", str(cfg), "--cutoff", day, "--target", target])  # noqa: E731
        r = run("2024-02-01")
        assert r.exit_code == 0, r.output
        assert r.output.strip() == "alerts for 2024-02-01 already recorded (2); nothing added"
        r = run("2024-01-01")
        assert r.exit_code == 2, r.output
        assert " ".join(r.output.split()) == ("error: alerts already ran for a later cutoff (2024-02-01); refusing "
                                              "2024-01-01 because it would rewrite the state of later runs")
        r = run("2024-03-01")  # a new date reads the data (here: none)
        assert r.exit_code == 2 and "none.csv" in r.output, r.output
        assert len(read_alerts(target, table=table)) == 2
    finally:
        _drop_pg(kind, table)


def _drop_pg(kind, table):
    if kind == "postgresql":
        from training.scores import open_db

        with open_db(PG_URL) as db:
            for t in (table, f"{table}_state", f"{table}_runs"):
                db.execute(f'drop table if exists "{t}"')


def test_an_unreachable_postgresql_is_tried_once(tmp_path, monkeypatch):
    """`dealerml alerts --target postgresql+psycopg://...` with a server that cannot be reached fails at the
    early runs-table check (recorded_run), after one connection attempt, naming the target without its
    password and the driver's reason; it is not taken for "no runs table yet", which would load the book,
    score it and try (and time out) again at record_alerts. 127.0.0.1:31780 is a closed port (refused at once);
    the attempts are counted on SQLAlchemy's Engine.connect."""
    import sqlalchemy
    from typer.testing import CliRunner

    from training.cli import app

    attempts = []
    connect = sqlalchemy.engine.Engine.connect
    monkeypatch.setattr(sqlalchemy.engine.Engine, "connect",
                        lambda self, *a, **k: attempts.append(str(self.url)) or connect(self, *a, **k))
    cfg = tmp_path / "c.yaml"  # an order book that does not exist: a run that reads the data fails on it
    cfg.write_text("name: c\ndata: {order_lines: {path: none.csv}}\n")
    r = CliRunner().invoke(app, ["alerts", "--config", str(cfg), "--cutoff", "2024-02-01",
                                 "--target", "postgresql+psycopg://crm:s3cret@127.0.0.1:31780/x"])
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert out.startswith("error: cannot connect to postgresql+psycopg://crm:***@127.0.0.1:31780/x: "), out
    assert "refused" in out.lower() and "s3cret" not in out and "none.csv" not in out, out
    assert len(attempts) == 1, attempts
