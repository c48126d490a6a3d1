"""What the CRM engineer reads from `dealerml score churn`: which accounts of the book got no
score, and why (the service says it per id under not_scored; the batch run said nothing)."""

from __future__ import annotations

import re

import pandas as pd
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
