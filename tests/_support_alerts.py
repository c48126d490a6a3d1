"""Helpers shared by the churn-alert tests: the PostgreSQL test database URL, a scores table
and the alert state-machine check run against each alert target.

Used by test_alerts and test_alerts_types.
"""

from __future__ import annotations

import pandas as pd
import pytest

from training.alerts import read_alerts, record_alerts
from training.errors import ConfigError

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
