"""``dealerml backtest dealers`` on a real subset of Online Retail: the JSON shape and sane values."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner


@pytest.mark.realdata
def test_backtest_json_shape_on_online_retail_subset(tmp_path, online_retail_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    raw = pd.read_csv(online_retail_path, dtype={"InvoiceNo": str, "StockCode": str})
    sub = raw[raw["CustomerID"].notna() & (raw["CustomerID"] % 3 == 0)]  # a third of the customers
    path = tmp_path / "or_subset.csv"
    sub.to_csv(path, index=False)
    cfg = {
        "name": "or-subset",
        "data": {"order_lines": {
            "path": str(path), "cancellation_prefix": "C",
            "columns": {"order_id": "InvoiceNo", "order_date": "InvoiceDate", "account_id": "CustomerID",
                        "sku": "StockCode", "quantity": "Quantity", "unit_price": "UnitPrice"},
            "derive_accounts_from": {"region": "Country"}}},
        "dealers": {"train": {"n_estimators": 40, "num_leaves": 7}},
    }
    cfg_path = tmp_path / "or.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "bt.json"
    from training.cli import app

    r = CliRunner().invoke(app, ["backtest", "dealers", "--config", str(cfg_path), "--cutoff", "2011-06-01",
                                 "--horizon-days", "182", "--json", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["final"] == "dealer_potential"
    assert res["final"] in res["metrics"]
    assert {"last_period_value", "bgnbd_gg"} <= set(res["metrics"])
    for v in res["metrics"].values():
        assert set(v) == {"spearman", "top_decile_growth_capture", "top_decile_net_growth_share", "mae"}
        assert -1 <= v["spearman"] <= 1 and 0 <= v["top_decile_growth_capture"] <= 1 and v["mae"] > 0
    # the book starts 2010-12-01: only a shortened training window fits before the cutoff
    assert res["train_horizon_days"] < 182
    assert all(c < "2011-06-01" for c in res["train_cutoffs"])
    assert res["n_accounts"] > 500
    # churn risk: with the default churn settings (90-day training labels, 30 days of history) no
    # churn training cutoff fits in the 6 months before the cutoff: BG/NBD risk for every account, said so
    st = res["setup"]
    assert st["churn_source"] == "bgnbd" and "no training cutoff fits" in st["churn_fallback_reason"]
    assert "churn risk: no churn model fits before 2011-06-01" in r.output
    assert res["metrics"]["dealer_potential_bgnbd_risk"] == res["metrics"]["dealer_potential"]
    # ranking by last period's value is a real baseline: it correlates with the outcome
    assert res["metrics"]["last_period_value"]["spearman"] > 0.3
    # the net reading of "share of realized growth", with the oracle bound of both readings
    o = res["oracle"]
    assert res["total_net_growth"] > 0 and o["top_decile_net_growth_share"] > 1.0
    assert 0 < o["top_decile_growth_capture"] <= 1
    for v in res["metrics"].values():
        assert v["top_decile_growth_capture"] <= o["top_decile_growth_capture"] + 1e-12
        assert v["top_decile_net_growth_share"] <= o["top_decile_net_growth_share"] + 1e-12

    # a cutoff whose outcome window runs past the book fails clearly and writes nothing
    out2 = tmp_path / "bt2.json"
    r = CliRunner().invoke(app, ["backtest", "dealers", "--config", str(cfg_path), "--cutoff", "2011-09-01",
                                 "--json", str(out2)])
    assert r.exit_code == 2
    assert "runs past the end of the order book" in r.output
    # train dealers has no --horizon-days: the fix names the config key, and the option as backtest dealers'
    assert "or a shorter dealers.horizon_days (--horizon-days on backtest dealers)" in " ".join(r.output.split())
    assert not out2.exists()
