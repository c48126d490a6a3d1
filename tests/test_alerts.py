"""Churn alert state machine: new crossings only, idempotent reruns, drop back and re-cross;
on DuckDB and on the real PostgreSQL; optional webhook POST to a local HTTP server."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest

from training.alerts import assign_tiers, read_alerts, record_alerts
from training.churn_backtest import TierSettings
from training.errors import ConfigError, DealermlError
from training.scores import open_db

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _scores(tiers: dict[str, str]) -> pd.DataFrame:
    p = {"high": 0.9, "medium": 0.4, "low": 0.1}
    return pd.DataFrame(
        {
            "account_id": list(tiers),
            "probability": [p[t] for t in tiers.values()],
            "tier": list(tiers.values()),
            "reason_1": ["41 days overdue against its usual 14-day rhythm"] * len(tiers),
            "reason_2": [None] * len(tiers),
            "reason_3": [None] * len(tiers),
            "expected_value": [100.0] * len(tiers),
            "revenue_at_risk": [500.0] * len(tiers),
            "model_version": ["3"] * len(tiers),
        }
    )


def _state_machine(target, table):
    # run 1: A and B cross into high
    r1 = record_alerts(_scores({"A": "high", "B": "high", "C": "low", "D": "medium"}), target, "2024-01-01", table=table)
    assert sorted(r1["new"]["account_id"]) == ["A", "B"] and not r1["already_ran"]
    # same date again: nothing added
    r1b = record_alerts(_scores({"A": "high", "B": "high", "C": "high", "D": "medium"}), target, "2024-01-01", table=table)
    assert r1b["already_ran"] and len(r1b["new"]) == 0
    assert len(read_alerts(target, table=table)) == 2
    # run 2: A stays high (no alert), B drops to medium, C and D cross
    r2 = record_alerts(_scores({"A": "high", "B": "medium", "C": "high", "D": "high"}), target, "2024-02-01", table=table)
    assert sorted(r2["new"]["account_id"]) == ["C", "D"]
    # run 3: B re-crosses, E new in the population and high, D leaves the population
    r3 = record_alerts(_scores({"A": "high", "B": "high", "C": "high", "E": "high"}), target, "2024-03-01", table=table)
    assert sorted(r3["new"]["account_id"]) == ["B", "E"]
    # run 4: D comes back high: it left the state, so it is a new crossing
    r4 = record_alerts(_scores({"A": "high", "D": "high"}), target, "2024-04-01", table=table)
    assert sorted(r4["new"]["account_id"]) == ["D"]
    # an earlier cutoff than the latest processed is refused, and writes nothing
    with pytest.raises(ConfigError, match="later cutoff"):
        record_alerts(_scores({"Z": "high"}), target, "2024-03-15", table=table)
    all_alerts = read_alerts(target, table=table)
    assert list(zip(all_alerts["cutoff"], all_alerts["account_id"], strict=True)) == [
        ("2024-01-01", "A"), ("2024-01-01", "B"), ("2024-02-01", "C"), ("2024-02-01", "D"),
        ("2024-03-01", "B"), ("2024-03-01", "E"), ("2024-04-01", "D"),
    ]
    assert all_alerts["reason_1"].iloc[0].startswith("41 days overdue")
    assert len(read_alerts(target, table=table, since="2024-03-01")) == 3


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


def test_webhook_posts_new_alerts_and_failure_rolls_back(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    target = tmp_path / "a.duckdb"
    try:
        _Hook.received, _Hook.status = [], 500
        with pytest.raises(DealermlError, match="answered 500"):
            record_alerts(_scores({"A": "high"}), target, "2024-01-01", webhook=url)
        assert len(read_alerts(target)) == 0  # nothing recorded: the next run retries
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
