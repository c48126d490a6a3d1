"""A book whose churn training snapshots hold one label only (one account; every account
ordering once) says why, what was found (accounts x cutoffs, churned) and what to change,
instead of a bare 'only one class' (QA pass)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from training.cli import app


def _book(tmp_path, lines: pd.DataFrame) -> str:
    lines.to_csv(tmp_path / "ol.csv", index=False)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"order_lines": {"path": "ol.csv"}, "as_of": "2025-12-31"}}))
    return str(cfg)


def _run(cmd: list[str]) -> str:
    res = CliRunner().invoke(app, cmd)
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    return " ".join(res.output.split())


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_one_account_book_says_it_is_too_small(tmp_path):
    days = pd.date_range("2023-01-01", periods=500, freq="D")
    cfg = _book(tmp_path, pd.DataFrame({"order_id": [f"O{i}" for i in range(500)], "order_date": days,
                                        "account_id": "A0", "sku": "S1", "quantity": 2.0, "unit_price": 10.0}))
    want = ("error: cannot fit the churn model: the order book is too small for a churn model (1 account); the "
            "training snapshots hold 6 account x cutoff rows (1 account, 6 cutoffs 2023-03-22 .. 2023-08-19): "
            "0 churned (no order in the 90 days after the cutoff), 6 retained; the classifier needs both. No account "
            "stopped ordering: use more history or more accounts (some of which lapse), other cutoffs (--cutoff, "
            "churn.n_train_cutoffs, churn.train_step_days), or a horizon shorter than 90 days (--horizon-days on "
            "backtest, churn.horizon_days in the config)")
    out = tmp_path / "bt.json"
    assert _run(["backtest", "churn", "--config", cfg, "--json", str(out)]) == want
    assert not out.exists()
    assert _run(["train", "churn", "--config", cfg, "--no-register"]) == want


def test_every_account_churned_says_so(tmp_path):
    # one-off buyers: every account orders once, so every training label is 'churned'
    cfg = _book(tmp_path, pd.DataFrame({
        "order_id": [f"O{a}" for a in range(300)],
        "order_date": [pd.Timestamp("2023-01-01") + pd.Timedelta(days=2 * a) for a in range(300)],
        "account_id": [f"A{a}" for a in range(300)], "sku": "S1", "quantity": 1.0, "unit_price": 10.0}))
    msg = _run(["backtest", "churn", "--config", cfg, "--horizon-days", "60", "--json", str(tmp_path / "bt.json")])
    assert msg.startswith("error: cannot fit the churn model: every training label is the same; the training "
                          "snapshots hold ")
    assert "account x cutoff rows (" in msg and " accounts, 6 cutoffs " in msg
    assert "0 retained; the classifier needs both. Every account stopped ordering:" in msg
    assert "a horizon longer than 60 days (--horizon-days on backtest, churn.horizon_days in the config)" in msg
    assert "only one class" not in msg


def test_backtest_horizon_beyond_the_settings_bound_is_a_usage_error(tmp_path):
    """`backtest churn --horizon-days 2000` passed click's min=1 and then failed ChurnSettings' le=730 with a
    pydantic traceback (exit 1); it is now refused by the option itself, before the data are loaded."""
    cfg = _book(tmp_path, pd.DataFrame({"order_id": ["O1"], "order_date": ["2023-01-01"], "account_id": "A0",
                                        "sku": "S1", "quantity": 1.0, "unit_price": 1.0}))
    out = tmp_path / "bt.json"
    msg = _run(["backtest", "churn", "--config", cfg, "--horizon-days", "2000", "--json", str(out)])
    assert msg.strip() == "error: --horizon-days '2000': expected at most 730 (dealerml backtest churn --help lists the options)"
    assert "ValidationError" not in msg and not out.exists()


def test_step_and_history_days_beyond_ten_years_name_the_key(tmp_path):
    """churn.train_step_days / min_history_days of 100000 passed the section check and ended in 'error:
    seconds=17287776000000000000, ...' or 'Out of bounds nanosecond timestamp', naming no key."""
    cfg = _book(tmp_path, pd.DataFrame({"order_id": ["O1"], "order_date": ["2023-01-01"], "account_id": "A0",
                                        "sku": "S1", "quantity": 1.0, "unit_price": 1.0}))
    raw = yaml.safe_load(open(cfg))
    for key in ("train_step_days", "min_history_days"):
        raw["churn"] = {key: 100000}
        open(cfg, "w").write(yaml.safe_dump(raw))
        msg = _run(["backtest", "churn", "--config", cfg, "--json", str(tmp_path / "bt.json")])
        assert f"key 'churn.{key}': Input should be less than or equal to 3650; got 100000" in msg, msg


def test_a_book_too_short_for_the_horizon_names_the_config_key_train_churn_reads(tmp_path):
    """`train churn` has no --horizon-days: its 'too short' message named that option as the fix; it now names
    churn.horizon_days, and --horizon-days only as backtest churn's."""
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    cfg = _book(tmp_path, pd.DataFrame({"order_id": [f"O{i}" for i in range(200)], "order_date": days,
                                        "account_id": [f"A{i % 7}" for i in range(200)], "sku": "S1",
                                        "quantity": 2.0, "unit_price": 10.0}))
    msg = _run(["train", "churn", "--config", cfg, "--no-register"])
    assert "the order book is too short for a 90-day churn horizon" in msg, msg
    assert msg.endswith("Use a longer order book or a shorter churn.horizon_days (--horizon-days on backtest churn)")
    assert "shorter --horizon-days" not in msg


def test_a_churn_cutoff_before_the_book_names_the_books_dates(synthetic_book):
    """`score churn --cutoff 2021-06-01` (and the service's serving.churn_cutoff, and alerts) said only "no account
    ordered in the 365 days before 2021-06-01": not where the book's orders are, nor which cutoffs can be scored."""
    from types import SimpleNamespace

    from training.churn_backtest import churn_settings, score_accounts
    from training.errors import DataError

    with pytest.raises(DataError) as err:
        score_accounts(synthetic_book, SimpleNamespace(lookback_days=365), churn_settings({}), "2021-06-01",
                       model_version="x")
    assert str(err.value) == (
        "no account ordered in the 365 days before 2021-06-01 (the model's population window); the order book's orders "
        "run from 2022-01-01 to 2024-06-30: expected a cutoff with orders in the 365 days before it, from 2022-01-02 "
        "to 2024-07-01")
