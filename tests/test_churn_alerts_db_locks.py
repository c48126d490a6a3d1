"""GET /churn_alerts against a slow or locked alerts database (session 11).

A PostgreSQL alerts table locked by another session (``LOCK TABLE ... ACCESS EXCLUSIVE``) held every
GET /churn_alerts until the lock went (no statement timeout): each took a worker thread and a slot of
BentoML's max_concurrency for up to the 120 s request timeout (then a 504), /metrics waited behind them,
and with 256 of them every other endpoint (/forecast, /churn_scores) was refused with 429. Now at most
``$DEALERML_SERVE_ALERTS_READERS`` requests wait for the database (more are 503 at once), none waits
more than ``$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS`` (the read's statement timeout), SQLite / DuckDB
files locked by a writer are a 503 within that time too, and the alerts answer again once the database
does.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import pandas as pd
import psycopg
import pytest
import sqlalchemy.exc

from serving import churn
from serving.churn import ChurnBackend
from serving.settings import AlertsLimits, alerts_limits
from serving.state import NotReady
from training.errors import ConfigError

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
KEY = "s11-alertsdb-key-0001"
BUSY = ("the alerts table cannot be read just now: the alerts database is slow or unreachable and 2 request(s) are "
        "already waiting for it; try again later")
TIMED_OUT = ("the alerts table cannot be read just now: the alerts database did not answer within 1 s (slow, or a "
             "table locked by another session); try again later")
SLOW = ("the alerts table cannot be read just now: the alerts database did not answer within 1 s (slow or "
        "unreachable); try again later")
DOWN = "the alerts table cannot be read just now (the service log says why); try again later"
COLUMNS = ("account_id text, cutoff date, probability double precision, tier varchar(8), reason_1 text, "
           "reason_2 text, reason_3 text, expected_value double precision, revenue_at_risk double precision, "
           "model_version text, created_at timestamp")
ROW = ("'A1', '2024-06-01', 0.9, 'high', 'fewer orders', null, null, 120.0, 1000.0, 'dealerml-churn/1', "
       "'2024-06-01 06:00:00'")


@pytest.fixture(autouse=True)
def _short_retry(monkeypatch):
    monkeypatch.setattr(churn, "_ALERTS_RETRY_S", 0.3)  # a failed database is asked again after 0.3 s (5 s)


@pytest.fixture()
def pg_table():
    name = f"s11_alerts_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'create table "{name}" ({COLUMNS})')
        con.execute(f'insert into "{name}" values ({ROW})')
    yield name
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'drop table if exists "{name}"')


@contextmanager
def _locked(table: str):
    """``table`` locked by another session: every read of it waits until the block ends."""
    con = psycopg.connect(PG_DSN)
    try:
        con.execute(f'lock table "{table}" in access exclusive mode')
        yield
    finally:
        con.rollback()
        con.close()


def _backend(target: str, table: str, **limits) -> ChurnBackend:
    scores = pd.DataFrame({"account_id": ["A1"], "probability": [0.2], "tier": ["low"], "reason_1": ["r1"],
                           "reason_2": [None], "reason_3": [None], "model_version": ["dealerml-churn/1"]})
    return ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1", as_of=pd.Timestamp("2024-07-01"),
                        table=scores, alerts_target=target, alerts_table=table,
                        last_orders={"A1": "2024-06-20"}, **limits)


def _ask_all(backend: ChurnBackend, n: int) -> list[tuple[str, float]]:
    """``n`` concurrent reads: (answer, seconds) each; the answer is "ok" or the 503 message."""
    out: list[tuple[str, float]] = []

    def ask() -> None:
        t0 = time.monotonic()
        try:
            backend.alerts(None, 10)
            out.append(("ok", time.monotonic() - t0))
        except NotReady as err:
            out.append((str(err), time.monotonic() - t0))

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == n, "a read still waits after 30 s"
    return out


# ----------------------------------------------------------------- settings
def test_alerts_limits_come_from_the_environment_and_bad_values_are_named():
    assert alerts_limits({}) == AlertsLimits(timeout_seconds=5.0, readers=4)
    assert alerts_limits({"DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS": " 0.5 ", "DEALERML_SERVE_ALERTS_READERS": "2"}) == \
        AlertsLimits(timeout_seconds=0.5, readers=2)
    for name, raw, expected in (
            ("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "0", "a number of seconds between 0.1 and 300; got '0'"),
            ("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "nan", "a number of seconds between 0.1 and 300; got 'nan'"),
            ("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "5s", "a number of seconds between 0.1 and 300; got '5s'"),
            ("DEALERML_SERVE_ALERTS_READERS", "0", "a whole number of concurrent alerts reads between 1 and 64; got '0'"),
            ("DEALERML_SERVE_ALERTS_READERS", "2.0", "a whole number of concurrent alerts reads between 1 and 64; got '2.0'")):
        with pytest.raises(ConfigError) as info:
            alerts_limits({name: raw})
        assert str(info.value) == f"${name} must be {expected}", str(info.value)


def test_the_backend_takes_its_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "0.7")
    monkeypatch.setenv("DEALERML_SERVE_ALERTS_READERS", "3")
    be = _backend("none.duckdb", "churn_alerts")
    assert (be.alerts_timeout, be.alerts_readers) == (0.7, 3)
    monkeypatch.setenv("DEALERML_SERVE_ALERTS_READERS", "many")  # the service is unready and says why; both defaults here
    be = _backend("none.duckdb", "churn_alerts")
    assert (be.alerts_timeout, be.alerts_readers) == (5.0, 4)


# ----------------------------------------------------------------- PostgreSQL: a locked table
def test_reads_of_a_locked_postgresql_table_end_at_the_timeout_and_excess_ones_at_once(pg_table, caplog):
    backend = _backend(PG_URL, pg_table, alerts_timeout=1, alerts_readers=2)
    assert backend.alerts(None, 10)["count"] == 1
    backend._alerts_cache = None  # not the 2 s cache: the database
    with _locked(pg_table), caplog.at_level(logging.WARNING, logger="dealerml.serving"):
        t0 = time.monotonic()
        answers = _ask_all(backend, 8)
        took = time.monotonic() - t0
        assert backend.alerts_status()["status"] == "failing"
    assert took < 3.0, answers  # the read ends at the 1 s statement timeout (it waited for the lock's end)
    busy = [s for a, s in answers if a == BUSY]
    assert len(busy) == 6 and max(busy) < 0.9, answers  # two wait for the database; the others are told at once
    rest = [a for a, _ in answers if a != BUSY]
    assert TIMED_OUT in rest and set(rest) <= {TIMED_OUT, SLOW, DOWN}, rest  # the reader; the one queued behind it
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "canceling statement due to statement timeout" in logged
    assert "$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS = 1 s" in logged
    time.sleep(0.35)  # past the retry pause
    back = backend.alerts(None, 10)
    assert back["count"] == 1 and back["alerts"][0]["account_id"] == "A1"
    assert backend.alerts_status()["status"] == "ok"


def test_read_alerts_sets_the_statement_timeout_only_when_asked(pg_table):
    from training._alerts_store import _with_connect_timeout
    from training.alerts import read_alerts

    with _locked(pg_table):
        t0 = time.monotonic()
        with pytest.raises(sqlalchemy.exc.OperationalError) as info:
            read_alerts(PG_URL, table=pg_table, timeout=0.5)
        assert time.monotonic() - t0 < 2.5 and "statement timeout" in str(info.value)
    assert read_alerts(PG_URL, table=pg_table, timeout=0.5)["account_id"].tolist() == ["A1"]
    # the connect timeout: the alerts timeout in whole seconds, at least libpq's 2, at most the 10 s default;
    # a URL that sets its own keeps it
    assert _with_connect_timeout(PG_URL, 0.5).endswith("/test?connect_timeout=2")
    assert _with_connect_timeout(PG_URL, 4.2).endswith("/test?connect_timeout=5")
    assert _with_connect_timeout(PG_URL, 60).endswith("/test?connect_timeout=10")
    own = PG_URL + "?connect_timeout=3"
    assert _with_connect_timeout(own, 0.5) == own and _with_connect_timeout(PG_URL, None) == PG_URL
    assert _with_connect_timeout("postgresql+psycopg://u:pw@h/db", 1) == "postgresql+psycopg://u:pw@h/db?connect_timeout=2"


# ----------------------------------------------------------------- SQLite / DuckDB files held by a writer
def test_a_sqlite_file_locked_by_a_writer_is_a_503_within_the_timeout(tmp_path):
    path = tmp_path / "alerts.sqlite"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"create table churn_alerts ({COLUMNS})")
    con.execute(f"insert into churn_alerts values ({ROW})")
    backend = _backend(str(path), "churn_alerts", alerts_timeout=1, alerts_readers=2)
    con.execute("begin exclusive")  # a writer holding the file: readers waited SQLite's busy timeout, 30 s
    try:
        t0 = time.monotonic()
        with pytest.raises(NotReady) as info:
            backend.alerts(None, 10)
        assert time.monotonic() - t0 < 2.5
        assert str(info.value) == TIMED_OUT
    finally:
        con.execute("commit")
        con.close()
    time.sleep(0.35)
    assert backend.alerts(None, 10)["alerts"][0]["cutoff"] == "2024-06-01"


def test_a_duckdb_file_held_by_a_writing_process_is_a_503_at_once_naming_no_file(tmp_path, caplog):
    path = tmp_path / "alerts.duckdb"
    code = ("import duckdb, sys\n"
            f"con = duckdb.connect({str(path)!r})\n"
            f"con.execute({f'create table churn_alerts ({COLUMNS})'!r})\n"
            f"con.execute({f'insert into churn_alerts values ({ROW})'!r})\n"
            "print('holding', flush=True)\n"
            "sys.stdin.read()\n")
    writer = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        backend = _backend(str(path), "churn_alerts", alerts_timeout=1, alerts_readers=2)
        with caplog.at_level(logging.WARNING, logger="dealerml.serving"):
            t0 = time.monotonic()
            with pytest.raises(NotReady) as info:
                backend.alerts(None, 10)
            assert time.monotonic() - t0 < 1.0
        assert str(info.value) == ("the alerts table cannot be read just now: its file is being written (dealerml "
                                   "alerts?); try again in a moment")
        assert str(path) in caplog.text and "lock" in caplog.text.lower()  # the log names the file and the lock
        assert backend.alerts_status()["status"] == "failing"
    finally:
        writer.stdin.close()
        writer.wait(30)
    assert backend.alerts(None, 10)["alerts"][0]["account_id"] == "A1"  # asked again at once: no retry pause


# ----------------------------------------------------------------- the service while the alerts reads hang
@pytest.fixture()
def app(pg_table, tmp_path, monkeypatch):
    """An in-process service (real ASGI app, BentoML's thread limits and max_concurrency) serving a small
    demand champion and a churn backend whose alerts are ``pg_table``; alerts limits from the environment."""
    import bentoml
    import numpy as np
    from _serving_app import service_app
    from starlette.testclient import TestClient

    from models.demand import DemandForecaster
    from serving.demand import DemandBackend

    rng = np.random.default_rng(0)
    ds = pd.date_range("2023-01-02", periods=60, freq="W-MON")
    history = pd.concat([pd.DataFrame({"unique_id": f"S{i}/DC1", "ds": ds, "y": rng.poisson(8, 60).astype(float)})
                         for i in range(2)], ignore_index=True)
    est = DemandForecaster(freq="W", h=4, models=("AutoETS",)).fit(history)
    cfg = SimpleNamespace(demand={"freq": "W", "levels": ["sku", "location"], "lead_time_days": 7.0},
                          config_path=None, name="s11-alerts", seed=0)
    monkeypatch.setenv("DEALERML_CONFIG", str(tmp_path / "no-such-config.yaml"))  # the loader fails fast
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEALERML_API_KEYS", f"{KEY}:*")
    monkeypatch.setenv("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DEALERML_SERVE_ALERTS_READERS", "2")
    monkeypatch.delenv("DEALERML_SERVE_MODELS", raising=False)
    backends = {"demand": DemandBackend.build(est, SimpleNamespace(name="dealerml-demand", version="1"), None, cfg),
                "churn": _backend(PG_URL, pg_table)}
    with TestClient(service_app(), raise_server_exceptions=False) as c:
        svc = bentoml.get_current_service()
        svc._loader.join(timeout=60)
        for key, backend in backends.items():
            svc.state.succeed(key, backend)
        c.headers["X-API-Key"] = KEY
        yield c, pg_table


def test_forecast_and_churn_scores_answer_while_alerts_reads_hang_and_alerts_come_back(app):
    client, table = app
    assert client.get("/churn_alerts").json()["count"] == 1
    time.sleep(2.1)  # past the 2 s cache
    answers: list = []

    def ask() -> None:
        t0 = time.monotonic()
        r = client.get("/churn_alerts")
        answers.append((r.status_code, r.json().get("error"), r.headers.get("retry-after"), time.monotonic() - t0))

    with _locked(table):
        askers = [threading.Thread(target=ask, daemon=True) for _ in range(12)]
        for t in askers:
            t.start()
        time.sleep(0.3)  # two reads wait for the locked table now
        for method, path, body in (("POST", "/forecast", {"series_ids": ["S0/DC1"], "horizon": 4}),
                                   ("POST", "/churn_scores", {"account_ids": ["A1"]}),
                                   ("GET", "/model_info", None)):  # (/metrics: measured over bentoml serve)
            t0 = time.monotonic()
            r = client.request(method, path, json=body)
            assert r.status_code == 200 and time.monotonic() - t0 < 3.0, (path, r.status_code, time.monotonic() - t0)
        for t in askers:
            t.join(30)
    assert len(answers) == 12 and {a[0] for a in answers} == {503}, answers
    assert all(a[2] == "5" for a in answers)  # Retry-After
    busy = [a for a in answers if a[1] == BUSY]
    assert len(busy) == 10 and max(a[3] for a in busy) < 3.0, answers
    assert TIMED_OUT in {a[1] for a in answers} and max(a[3] for a in answers) < 5.0, answers
    time.sleep(0.35)  # past the retry pause
    r = client.get("/churn_alerts")
    assert r.status_code == 200 and r.json()["alerts"][0]["account_id"] == "A1"
    status = client.get("/model_info").json()["models"]
    assert [m["summary"]["alerts_db"]["status"] for m in status if m["name"] == "dealerml-churn"] == ["ok"]


def test_a_bad_alerts_setting_keeps_the_service_unready_naming_it(tmp_path, monkeypatch):
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    monkeypatch.setenv("DEALERML_CONFIG", str(tmp_path / "no-such-config.yaml"))
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEALERML_API_KEYS", f"{KEY}:*")
    monkeypatch.setenv("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "-1")
    with TestClient(service_app(), raise_server_exceptions=False) as c:
        svc = bentoml.get_current_service()
        svc._loader.join(timeout=60)
        r = c.get("/readyz", headers={"X-API-Key": KEY})  # the reasons: a valid key
    assert r.status_code == 503
    assert r.json()["settings"] == ["$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS must be a number of seconds between 0.1 "
                                    "and 300; got '-1'"]
