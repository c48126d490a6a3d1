"""What the CRM engineer reads from `dealerml score churn`: which accounts of the book got no
score, and why (the service says it per id under not_scored; the batch run said nothing)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app


def test_score_churn_names_the_accounts_it_left_out(synthetic_book, synthetic_config, tmp_path, monkeypatch):
    from training.churn_backtest import churn_cutoffs, churn_settings, fit_churn

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    s = churn_settings({"n_train_cutoffs": 1, "model": {"n_estimators": 10}})
    model, _, _ = fit_churn(synthetic_book, s, churn_cutoffs("2024-04-02", s, first_date="2022-01-01"), num_threads=1)
    model.save(tmp_path / "model")
    cut = pd.Timestamp("2024-06-01")
    r = CliRunner().invoke(app, ["score", "churn", "--config", str(synthetic_config), "--cutoff", "2024-06-01",
                                 "--out", str(tmp_path / "s.csv"), "--model", str(tmp_path / "model")])
    assert r.exit_code == 0, (r.output, r.exception)
    scores = pd.read_csv(tmp_path / "s.csv", dtype={"account_id": str})
    # independently from the order book: accounts whose last order is before the 365-day lookback
    ol = synthetic_book.order_lines
    last = ol[ol["order_date"] < cut].groupby("account_id")["order_date"].max()
    lapsed = sorted(last[last < cut - pd.Timedelta(days=365)].index)
    assert lapsed and not set(lapsed) & set(scores["account_id"])
    assert len(scores) + len(lapsed) == synthetic_book.accounts["account_id"].nunique()
    m = re.search(r"not scored: (\d+) with no order in the 365 days before 2024-06-01 \(e\.g\. ([^)]*)\)\. "
                  r"POST /churn_scores names each under not_scored with its reason", r.output)
    assert m, r.output
    assert int(m[1]) == len(lapsed) and m[2].split(", ") == lapsed[:3]


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_a_new_column_is_added_in_place_keeping_views_and_grants(kind, tmp_path):
    """`score dealers` gained annual_value; into a PostgreSQL table with a view over it the next
    refresh was refused ('cannot drop table dealer_scores because other objects depend on it'),
    as any new column of a later version would be. Columns added to the same ones (same types)
    now go onto the table in place; a dropped or retyped column still recreates it."""
    import uuid

    from training.scores import open_db, read_table, write_table

    target = PG_URL if kind == "postgres" else str(tmp_path / "s.duckdb")
    table = f"t_add_{uuid.uuid4().hex[:8]}"
    old = pd.DataFrame({"account_id": ["007", "12"], "tier": ["key", "regular"],
                        "scored_at": pd.to_datetime(["2025-01-01 06:00", "2025-01-01 06:00"])})
    try:
        write_table(old, target, table)
        with open_db(target) as db:
            db.execute(f'create view "{table}_v" as select account_id, tier from "{table}"')
            if kind == "postgres":
                db.execute(f'grant select on "{table}" to public')
        new = old.assign(tier=["strategic", "key"], annual_value=[260000.0, 80000.0], note=["a", None])
        write_table(new, target, table)
        got = read_table(target, table).sort_values("account_id").reset_index(drop=True)
        assert got["account_id"].tolist() == ["007", "12"] and got["tier"].tolist() == ["strategic", "key"]
        assert got["annual_value"].tolist() == [260000.0, 80000.0]
        with open_db(target, read_only=True) as db:
            assert db.query(f'select tier from "{table}_v" order by account_id')["tier"].tolist() == ["strategic", "key"]
            if kind == "postgres":
                assert db.query(f"select has_table_privilege('public', '{table}', 'select') as ok")["ok"].iloc[0]
        write_table(new.assign(annual_value=[1.0, 2.0]), target, table)  # the same columns again
        assert sorted(read_table(target, table)["annual_value"]) == [1.0, 2.0]
    finally:
        with open_db(target) as db:
            db.execute(f'drop view if exists "{table}_v"')
            db.execute(f'drop table if exists "{table}"')
