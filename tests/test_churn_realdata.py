"""Churn backtest on the real Online Retail book (../shared/data): the report's shape, the
time-ordered split, and the model's ranking against the recency rule. The benchmark figures
themselves are in BENCHMARKS.md; this test does not pin them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_backtest(online_retail_path, tmp_path):
    out = tmp_path / "churn.json"
    r = CliRunner().invoke(app, ["backtest", "churn", "--config", "experiments/online_retail.yaml",
                                 "--cutoff", "2011-09-10", "--horizon-days", "90", "--json", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert set(rep) == {"final", "base_rate", "metrics", "by_slice"}
    assert set(rep["metrics"]) == {"lightgbm", "recency", "bgnbd"}
    # population and labels straight from the cleaned book: ordered in the 365 days before, none in the 90 after
    from training.config import load_config
    from training.data import load_order_book

    ol = load_order_book(load_config("experiments/online_retail.yaml")).order_lines
    cut = pd.Timestamp("2011-09-10")
    before = set(ol.loc[(ol["order_date"] < cut) & (ol["order_date"] >= cut - pd.Timedelta(days=365)), "account_id"])
    after = set(ol.loc[(ol["order_date"] >= cut) & (ol["order_date"] < cut + pd.Timedelta(days=90)), "account_id"])
    assert rep["base_rate"] == pytest.approx(len(before - after) / len(before), abs=1e-6)
    m = rep["metrics"]
    assert m["lightgbm"]["auc"] > m["recency"]["auc"] + 0.03
    assert m["lightgbm"]["auc"] > 0.65 and m["bgnbd"]["auc"] > 0.65
    assert "United Kingdom" in rep["by_slice"]["region"]
