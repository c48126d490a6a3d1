"""Churn alert capacity: at most ``churn.tiers.capacity_per_run`` alerts per run and at most
``capacity_per_group`` per value of ``capacity_by`` (the account manager), both configurable.
Worked by hand through assign_tiers -> record_alerts into the real PostgreSQL; the manager taken
from an accounts-table column by score_accounts (the path `score churn` / `alerts` take); one of
the two per-group keys without the other, or a negative cap, is a clear error.
"""

from __future__ import annotations

import dataclasses
import uuid

import pandas as pd
import pytest
from pydantic import ValidationError

from training.alerts import assign_tiers, read_alerts, record_alerts
from training.churn_backtest import TierSettings, churn_settings
from training.errors import ConfigError
from training.scores import open_db

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MANAGER = {"A": "m1", "B": "m1", "C": "m1", "D": "m2", "E": "m2", "F": None}
CAPS = TierSettings(high_probability=0.5, medium_probability=0.2, contact_cost=0.0, capacity_per_run=3,
                    capacity_by="account_manager", capacity_per_group=2)


def _scores(prob: dict[str, float]) -> pd.DataFrame:
    ids = list(prob)
    rev = [600.0 - 100 * i for i in range(len(ids))]  # expected value falls from A to F
    tiers, ev = assign_tiers([prob[a] for a in ids], rev, CAPS, groups=[MANAGER[a] for a in ids])
    return pd.DataFrame({"account_id": ids, "probability": [prob[a] for a in ids], "tier": tiers,
                         "reason_1": "r", "reason_2": None, "reason_3": None, "expected_value": ev,
                         "revenue_at_risk": rev, "model_version": "t"})


@pytest.mark.postgres
def test_alerts_per_run_and_per_manager_are_capped_in_postgres():
    table = f"t_s8_cap_{uuid.uuid4().hex[:8]}"
    try:
        # every account high-risk, expected value A > B > ... > F. Per manager (2): m1 keeps A, B
        # (C over), m2 D, E, no manager F; per run (3): A, B, D
        s1 = _scores(dict.fromkeys("ABCDEF", 0.9))
        assert s1.loc[s1["tier"] == "high", "account_id"].tolist() == ["A", "B", "D"]
        assert s1.set_index("account_id")["tier"]["C"] == "medium"  # over capacity: medium, not alerted
        r1 = record_alerts(s1, PG_URL, "2024-01-01", table=table)
        assert sorted(r1["new"]["account_id"]) == ["A", "B", "D"]
        # A drops out: C takes m1's free slot and the run's third; B and D stay high (no alert)
        s2 = _scores({**dict.fromkeys("ABCDEF", 0.9), "A": 0.1})
        assert s2.loc[s2["tier"] == "high", "account_id"].tolist() == ["B", "C", "D"]
        r2 = record_alerts(s2, PG_URL, "2024-02-01", table=table)
        assert r2["new"]["account_id"].tolist() == ["C"]
        got = read_alerts(PG_URL, table=table)
        per = got.assign(manager=got["account_id"].map(MANAGER)).groupby(["cutoff", "manager"]).size()
        assert per.to_dict() == {("2024-01-01", "m1"): 2, ("2024-01-01", "m2"): 1, ("2024-02-01", "m1"): 1}
        assert got.groupby("cutoff").size().max() <= CAPS.capacity_per_run
    finally:
        with open_db(PG_URL) as db:
            for t in (table, f"{table}_state", f"{table}_runs"):
                db.execute(f'drop table if exists "{t}"')


def test_capacity_keys_refused_alone_or_negative():
    p, rev = [0.9, 0.8], [100.0, 100.0]
    # refused when the settings are built (the config load) ...
    with pytest.raises(ValidationError, match=r"churn.tiers.capacity_per_group is 5 but churn.tiers.capacity_by is not set"):
        TierSettings(capacity_per_group=5)
    with pytest.raises(ValidationError, match=r"churn.tiers.capacity_by is 'account_manager' but churn.tiers."
                                              r"capacity_per_group is not set"):
        TierSettings(capacity_by="account_manager")
    # ... and still at scoring time for settings built without validation
    with pytest.raises(ConfigError, match=r"churn.tiers.capacity_per_group is 5 but churn.tiers.capacity_by is not set"):
        assign_tiers(p, rev, TierSettings().model_copy(update={"capacity_per_group": 5}))
    for key in ("capacity_per_run", "capacity_per_group"):
        with pytest.raises(ConfigError) as exc:
            churn_settings({"tiers": {key: -1, "capacity_by": "account_manager"}})
        assert f"churn.tiers.{key}" in str(exc.value) and "greater than or equal to 0" in str(exc.value)
    # a cap of 0 is allowed: no high tier, no alerts
    tiers, _ = assign_tiers(p, rev, TierSettings(capacity_per_run=0, contact_cost=0.0))
    assert tiers.tolist() == ["medium", "medium"]


@pytest.mark.slow
def test_score_accounts_caps_per_manager_from_the_accounts_table(synthetic_book):
    from training.churn_backtest import churn_cutoffs, fit_churn, score_accounts

    s = churn_settings({"n_train_cutoffs": 1, "model": {"n_estimators": 10},
                        "tiers": {"high_probability": 0.05, "medium_probability": 0.05, "contact_cost": 0.0, "capacity_per_run": 50,
                                  "capacity_by": "account_manager", "capacity_per_group": 3}})
    model, _, _ = fit_churn(synthetic_book, s, churn_cutoffs("2024-04-02", s, first_date="2022-01-01"), num_threads=1)
    acc = synthetic_book.accounts.copy()
    acc["account_manager"] = [f"am{i % 4}" for i in range(len(acc))]  # an extra accounts column
    book = dataclasses.replace(synthetic_book, accounts=acc)
    t = score_accounts(book, model, s, pd.Timestamp("2024-05-01"), model_version="t", reasons=False)
    high = t[t["tier"] == "high"].merge(acc[["account_id", "account_manager"]], on="account_id")
    # 4 managers x 3, under the run's 50; without the per-manager cap more would be high
    assert high.groupby("account_manager").size().to_dict() == {f"am{i}": 3 for i in range(4)}
    free = score_accounts(book, model, s.model_copy(update={"tiers": s.tiers.model_copy(
        update={"capacity_by": None, "capacity_per_group": None})}), pd.Timestamp("2024-05-01"), model_version="t",
        reasons=False)
    assert (free["tier"] == "high").sum() > 12
