"""The dealers run's churn fallback reason speaks the dealers run's language: what happened
(in numbers that are checked to be the real condition) and what to change there - the dealers
cutoff and the config's churn: keys - not the churn CLI's flags (its --horizon-days is the churn
horizon; backtest dealers' --horizon-days is the dealers horizon). The session synthetic
network (2022-01-01 .. 2024-06-30).
"""

from __future__ import annotations

import pandas as pd
import pytest

from training.churn_backtest import ChurnSettings, _one_class_error, churn_cutoffs, churn_settings
from training.dealers_backtest import _one_class_reason, backtest_churn_risk
from training.errors import DataError

SMALL_CHURN = {"n_train_cutoffs": 2, "model": {"n_estimators": 40}}
FLAGS = ("--horizon-days", "--cutoff than", "backtest, churn.", "Use a later --cutoff")


def test_too_short_book_reason_names_the_dealers_cutoff_and_churn_keys(synthetic_book):
    risk, setup, fit = backtest_churn_risk(synthetic_book, "2022-05-01", SMALL_CHURN)
    assert risk is None and fit is None and setup["churn_source"] == "bgnbd"
    reason = setup["churn_fallback_reason"]
    assert reason.startswith("no churn model fits before 2022-05-01 (no training cutoff fits: the order book "
                             "before it spans 120 days from 2022-01-01, and the churn model needs 210: 30 days of "
                             "history (churn.min_history_days) + 90 days of training labels (churn.horizon_days) + "
                             "90 days of calibration labels (churn.horizon_days)); churn risk = 1 - BG/NBD P(alive) "
                             "for every account in this backtest")
    assert "a later dealers backtest cutoff (--cutoff, or dealers.cutoff;" in reason
    assert not any(f in reason for f in FLAGS), reason
    # the 210 days are the real condition: a cutoff 210 days after the first order fits, 209 does not
    s = churn_settings(SMALL_CHURN)
    first = synthetic_book.order_lines["order_date"].min().normalize()
    assert first == pd.Timestamp("2022-01-01")
    churn_cutoffs(first + pd.Timedelta(days=210), s, first_date=first)
    with pytest.raises(DataError):
        churn_cutoffs(first + pd.Timedelta(days=209), s, first_date=first)
    # with its own training label window the key named is churn.train_horizon_days
    _, setup, _ = backtest_churn_risk(synthetic_book, "2022-05-01", {**SMALL_CHURN, "train_horizon_days": 60})
    assert ("needs 180: 30 days of history (churn.min_history_days) + 60 days of training labels "
            "(churn.train_horizon_days)") in setup["churn_fallback_reason"]


def test_one_label_reason_keeps_what_was_found_and_drops_the_churn_cli_advice():
    frame = pd.DataFrame({"account_id": ["A1", "A2", "A1", "A2"], "churned": [0, 0, 0, 0]})
    cuts = [pd.Timestamp("2023-01-01"), pd.Timestamp("2023-02-01")]
    exc = _one_class_error("training", frame, cuts, 90, ChurnSettings())
    assert "--horizon-days on backtest" in str(exc)  # the churn CLI's own advice
    reason = _one_class_reason(pd.Timestamp("2023-12-01"), exc)
    assert reason.startswith(
        "no churn model fits before 2023-12-01 (every training label is the same; the training snapshots hold 4 "
        "account x cutoff rows (2 accounts, 2 cutoffs 2023-01-01 .. 2023-02-01): 0 churned (no order in the 90 days "
        "after the cutoff), 4 retained; the classifier needs both); churn risk = 1 - BG/NBD P(alive)")
    assert "churn.n_train_cutoffs, churn.train_step_days" in reason and "dealers.cutoff" in reason
    assert not any(f in reason for f in FLAGS), reason


@pytest.mark.slow
def test_score_dealers_without_a_churn_model_says_how_to_get_one(synthetic_config, tmp_path, monkeypatch):
    from conftest import write_config
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = write_config(synthetic_config, tmp_path / "cfg.yaml", churn=SMALL_CHURN, dealers={
        "horizon_days": 182, "train": {"n_cutoffs": 1, "n_estimators": 10, "num_leaves": 3}})
    r = CliRunner().invoke(app, ["score", "dealers", "--config", str(cfg), "--cutoff", "2024-06-01", "--fit",
                                 "--out", str(tmp_path / "d.csv")])
    assert r.exit_code == 0, (r.output, r.exception)
    # a home without a store (nothing trained yet): no champion, and no empty store created
    assert "churn model for 0 accounts (no MLflow store at " in r.output
    assert "so no dealerml-churn champion)" in r.output
    assert f"for churn-model risk: `dealerml train churn --config {cfg}` registers dealerml-churn" in r.output
