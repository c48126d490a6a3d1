"""A book too small for the dealers model (one account) stops with a data error naming its
size, not a ValueError traceback from the model (QA pass over a user's first files)."""

from __future__ import annotations

import pandas as pd
import yaml
from typer.testing import CliRunner

from training.cli import app


def test_dealers_on_a_one_account_book_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    days = pd.date_range("2023-01-01", periods=500, freq="D")
    lines = pd.DataFrame({"order_id": [f"O{i}" for i in range(len(days))], "order_date": days, "account_id": "A0",
                          "sku": [f"S{i % 4}" for i in range(len(days))], "quantity": 2.0, "unit_price": 10.0})
    lines.to_csv(tmp_path / "ol.csv", index=False)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"name": "one", "data": {"order_lines": {"path": "ol.csv"}, "as_of": "2025-12-31"}}))
    res = CliRunner().invoke(app, ["backtest", "dealers", "--config", str(cfg), "--json", str(tmp_path / "bt.json")])
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)  # was 1 with a ValueError traceback
    assert "Traceback" not in res.output
    msg = " ".join(res.output.split())
    assert "needs at least 20 training rows" in msg and "1 accounts x" in msg and "more accounts" in msg
    assert not (tmp_path / "bt.json").exists()
