"""The churn tuning target follows the TuningTarget protocol and runs a real (tiny) study."""

from __future__ import annotations

import pandas as pd
import pytest

from training.churn_tuning import tuning_target


@pytest.mark.slow
def test_tuning_target_protocol_and_study(synthetic_book, synthetic_config, tmp_path, monkeypatch):
    import optuna

    from training import tracking
    from training.config import load_config
    from training.tuning import TuningTarget, run_study

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_config(synthetic_config)
    t = tuning_target(cfg, synthetic_book)
    assert isinstance(t, TuningTarget) and t.n_folds == 2
    # folds are time ordered and never share a test window with a later fold's training
    assert t.folds[0]["test"] < t.folds[1]["test"]
    assert max(t.folds[1]["train"]) + pd.Timedelta(days=90) <= t.folds[1]["calibration"]
    params = t.space(optuna.trial.FixedTrial({"n_estimators": 100, "learning_rate": 0.05, "num_leaves": 15,
                                               "min_child_samples": 20, "subsample": 0.8,
                                               "colsample_bytree": 0.8, "reg_lambda": 1.0}))
    s0 = t.score_fold(params, 0)
    assert 0.8 < s0 <= 1.0 and t.score_fold(params, 0) == s0  # deterministic
    res = run_study(t, n_trials=2, study_name="churn-test", seed=1, config=cfg, book=synthetic_book,
                    log=lambda m: None)
    assert res.n_complete + res.n_pruned == 2 and res.registered_version == "1"
    model, _ = tracking.load_model("dealerml-churn", "challenger")
    ev = t.evaluate(model)
    assert 0.8 < ev["auc"] <= 1.0
