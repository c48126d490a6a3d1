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


def _cfg(synthetic_config, tmp_path, tuning: dict | None = None):
    from conftest import write_config

    from training.config import load_config

    sections = {"churn": {"horizon_days": 90, "n_train_cutoffs": 2, "train_step_days": 60,
                          "model": {"n_estimators": 20, "num_leaves": 7}}}
    if tuning is not None:
        sections["tuning"] = tuning
    return load_config(write_config(synthetic_config, tmp_path / "c.yaml", **sections))


def test_unknown_tuning_target_key_is_an_error(synthetic_book, synthetic_config, tmp_path):
    from training.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        tuning_target(_cfg(synthetic_config, tmp_path, {"target": {"n_fold": 3}}), synthetic_book)
    msg = str(err.value)
    assert "tuning.target.n_fold" in msg and "allowed keys: fold_step_days, metric, n_folds, num_threads" in msg
    with pytest.raises(ConfigError, match=r"tuning\.target\.churn\.folds"):
        tuning_target(_cfg(synthetic_config, tmp_path, {"target": {"churn": {"folds": 3}}}), synthetic_book)
    # the other capability's settings are left to it; the flat and per-capability forms both work
    t = tuning_target(_cfg(synthetic_config, tmp_path, {"target": {"churn": {"n_folds": 3},
                                                                   "demand": {"step": 4}}}), synthetic_book)
    assert t.n_folds == 3
    assert tuning_target(_cfg(synthetic_config, tmp_path, {"target": {"n_folds": 1}}), synthetic_book).n_folds == 1


def test_promotion_refits_settings_and_scores_held_out_labels(synthetic_book, synthetic_config, tmp_path):
    """The registered model is calibrated on the latest labelled window: evaluating it must not
    score it there, but refit its settings on labels that end by the test cutoff."""
    from training.churn_tuning import promotion_evaluator

    cfg = _cfg(synthetic_config, tmp_path)
    t = tuning_target(cfg, synthetic_book)
    params = {"n_estimators": 20, "num_leaves": 7}
    final, _ = t.fit_final(params)  # what tune/train registers: calibrated on the window at t_last
    assert t.final_cuts["calibration"] == t.t_last
    ev = promotion_evaluator(cfg, synthetic_book)(final)
    assert ev["cutoff"] == str(t.t_last.date())
    assert ev["label_window"] == f"[{t.t_last.date()}, {(t.t_last + pd.Timedelta(days=90)).date()})"
    assert "calibration labels ending by " + str(t.t_last.date()) in ev["refit"]
    # it measured the settings, not the fitted booster: a model with the same settings fitted on
    # other data gets the same score, and it is the backtest score of those settings
    backtest_model = t._fit(params, t.folds[0])
    assert t.evaluate(backtest_model)["auc"] == ev["auc"]
    leaky = t._snap(t.t_last)
    from training.churn_backtest import churn_metrics

    assert ev["auc"] != churn_metrics(leaky["churned"], final.churn_probability(leaky))["auc"]
    assert ev["auc"] == pytest.approx(t.score_fold(params, t.n_folds - 1))


def test_tune_refuses_churn_model_windows_that_contradict_the_config(synthetic_config, tmp_path, monkeypatch):
    """churn.model.horizon_days 60 under churn.horizon_days 90 was overridden by tune's _full with 90 without a
    word (the tuned model registered with 90-day labels and horizon); train churn refuses it, and so does tune,
    with the same message, before the data load."""
    from conftest import write_config
    from typer.testing import CliRunner

    from training.cli import app
    from training.config import load_config
    from training.errors import ConfigError

    def cfg(model, **churn):
        return write_config(synthetic_config, tmp_path / "bad.yaml",
                            churn={"n_train_cutoffs": 2, "model": {"n_estimators": 20, **model}, **churn})

    with pytest.raises(ConfigError) as err:
        tuning_target(load_config(cfg({"lookback_days": 120}, lookback_days=365)), book=object())
    assert str(err.value) == ("churn.model.lookback_days (120) differs from churn.lookback_days (365): the population "
                              "window is churn.lookback_days; remove lookback_days from churn.model")
    home = tmp_path / "home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    r = CliRunner().invoke(app, ["tune", "churn", "--config", str(cfg({"horizon_days": 60}, horizon_days=90)),
                                 "--trials", "1", "--no-register"])
    assert r.exit_code != 0
    assert ("churn.model.horizon_days (60) differs from churn.horizon_days (90): the model is trained and calibrated "
            "on churn.horizon_days labels; remove horizon_days from churn.model") in " ".join(r.output.split()), r.output
    assert not home.exists()  # refused before the store, the data and the study


def test_a_tuned_challengers_run_has_the_plots_a_training_run_has(synthetic_book, synthetic_config, tmp_path,
                                                                   monkeypatch):
    """tune churn registered its best as challenger from a run with no plots (train churn logs the
    reliability curve, lift chart, score distribution by tier and reasons frequency): the version a data
    scientist promotes had none to look at. They are drawn on the latest fold, the tuned model beside the
    baselines, and open as PNG images."""
    import io

    from mlflow.tracking import MlflowClient
    from PIL import Image

    from training import tracking
    from training.churn_tuning import tuning_target
    from training.tuning import run_study

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _cfg(synthetic_config, tmp_path, tuning={"target": {"n_folds": 1}})
    t = tuning_target(cfg, synthetic_book)
    res = run_study(t, n_trials=1, study_name="churn-plots", seed=1, config=cfg, book=synthetic_book,
                    log=lambda m: None)
    client = MlflowClient(tracking.tracking_uri())
    plots = {a.path: a.file_size for a in client.list_artifacts(res.parent_run_id, "plots")}
    assert set(plots) == {"plots/reliability.png", "plots/lift.png", "plots/score_by_tier.png", "plots/reasons.png"}
    for path in plots:
        with open(client.download_artifacts(res.parent_run_id, path, str(tmp_path)), "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
            assert img.format == "PNG" and min(img.size) > 100
    assert client.get_model_version("dealerml-churn", "1").run_id == res.parent_run_id
