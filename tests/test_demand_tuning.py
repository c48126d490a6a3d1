"""The demand tuning target follows training.tuning.TuningTarget and never reads past a fold."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
from _support_demand import _config, _small_config

from training.config import load_config
from training.demand_tuning import space, tuning_target
from training.tuning import TuningTarget


def test_demand_tuning_target_folds_and_final(tmp_path):
    cfg_path, ds = _config(tmp_path, target="{n_folds: 2, step: 3}", seed=2, start="2019-01-01", periods=40, n=6,
                           base=10, slope=5, models="[SeasonalNaive, AutoETS, LightGBM]", n_estimators=20)
    t = tuning_target(load_config(cfg_path))
    assert isinstance(t, TuningTarget) and t.direction == "minimize" and t.n_folds == 2
    # fold 0 ends 3 periods before the data: its rows never include the last 3 months
    assert pd.to_datetime(t._fold_data(0)["ds"]).max() == ds[-4]
    assert pd.to_datetime(t._fold_data(1)["ds"]).max() == ds[-1]
    params = space(optuna.trial.FixedTrial({"selection": "global", "n_estimators": 50, "learning_rate": 0.1,
                                            "num_leaves": 7, "min_child_samples": 5, "tweedie_variance_power": 1.2}))
    s0, s1 = t.score_fold(params, 0), t.score_fold(params, 1)
    assert 0 < s0 < 5 and 0 < s1 < 5 and s0 != s1
    model, metrics = t.fit_final(params)
    assert metrics["mase"] == s1 and model.lgbm_params["num_leaves"] == 7
    assert len(model.predict(3)) == 18


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, mlflow_template_db):
    """One ``tune demand`` study (1 trial) on ``_small_config``, its best registered as version 1 in a copy of
    the session's empty MLflow store: the three tests below read it (they ran the same study each)."""
    import shutil
    from types import SimpleNamespace

    from training.tuning import run_study

    tmp = tmp_path_factory.mktemp("tuned")
    (tmp / "home").mkdir()
    shutil.copy(mlflow_template_db, tmp / "home" / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg_path, ds = _small_config(tmp)
        t = tuning_target(load_config(cfg_path))
        res = run_study(t, n_trials=1, study_name="d", seed=1, storage=str(tmp / "j.log"), log=lambda m: None)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)  # the store is found from DEALERML_HOME, test by test
        yield SimpleNamespace(t=t, res=res, ds=ds)


def test_unknown_demand_tuning_target_key_is_an_error(tmp_path):
    import pytest

    from training.errors import ConfigError

    cfg_path, _ = _small_config(tmp_path, "{n_fold: 3}")
    with pytest.raises(ConfigError) as err:
        tuning_target(load_config(cfg_path))
    assert "tuning.target.n_fold" in str(err.value) and "allowed keys: metric, n_folds, step" in str(err.value)


def test_tuned_demand_model_serves_through_pyfunc_and_promotion_says_where(tuned):
    import mlflow.pyfunc

    from training import tracking

    t, res, ds = tuned.t, tuned.res, tuned.ds
    assert res.registered_version == "1"
    tracking.tracking_uri()  # points MLflow at $DEALERML_HOME's store
    model = mlflow.pyfunc.load_model("models:/dealerml-demand/1")
    out = model.predict(pd.DataFrame({"unique_id": ["s1"], "h": [3]}))
    assert len(out) == 3 and set(out["unique_id"].astype(str)) == {"s1"}
    est, _ = tracking.load_model("dealerml-demand", "challenger")
    ev = t.evaluate(est)
    # refitted up to the last window's cutoff (3 periods before the end), scored after it
    assert ev["cutoff"] == str(ds[-4].date()) and ev["windows"] == [ev["cutoff"]]
    assert ev["mase"] == res.final_metrics["mase"]


def test_tune_demand_refuses_folds_too_short_before_the_study_and_the_run(tmp_path, monkeypatch):
    """10 monthly periods, h=3 (min_train 6: one window needs 9): fold 1 fits, fold 0 (3 periods
    earlier) does not. The study is refused naming the fold and the length, before any Optuna
    study or MLflow store is made (it used to open a run, fail every trial and end FAILED)."""
    import pytest

    from training.errors import DataError
    from training.tuning import run_study

    home = tmp_path / "home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg_path, _ = _config(tmp_path, target="{n_folds: 2, step: 3}", seed=5, start="2020-01-01", periods=10, n=3,
                          base=8, slope=4, models="[SeasonalNaive]", n_estimators=10)
    t = tuning_target(load_config(cfg_path))
    journal = tmp_path / "j.log"
    with pytest.raises(DataError) as err:
        run_study(t, n_trials=1, study_name="d", seed=1, storage=str(journal), log=lambda m: None)
    assert str(err.value).startswith("tuning fold 0 of 2 (its test window ends 3 periods before the last, "
                                     "tuning.target.step 3): the data has 7 periods; 1 window of h=3 with step 3 "
                                     "need at least 9; give a longer book"), err.value
    assert not home.exists() and not journal.exists()
    t.n_folds = 1  # one fold: the latest 10 periods fit its window
    t.check_data()


def test_tune_demand_cli_refused_by_the_data_leaves_no_journal(tmp_path, monkeypatch):
    """`dealerml tune demand` with the default storage on a config whose order book the loader refuses
    (here a series file given as order_lines): the check of the study name ran before the data load
    and created $DEALERML_HOME/optuna/journal.log (empty) behind the refused run; now nothing is
    left, neither the journal nor the home."""
    from typer.testing import CliRunner

    from training.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg_path, _ = _config(tmp_path, target="{n_folds: 2, step: 3}", seed=5, start="2020-01-01", periods=10, n=3,
                          base=8, slope=4, models="[SeasonalNaive]", n_estimators=10)
    r = CliRunner().invoke(app, ["tune", "demand", "--config", str(cfg_path), "--trials", "1"])
    assert r.exit_code == 2, r.output
    assert "order_lines is missing required column(s)" in r.output, r.output
    assert not home.exists(), sorted(str(p) for p in home.rglob("*"))
    # --resume of a study on a journal not made yet: refused, still without making it
    r = CliRunner().invoke(app, ["tune", "demand", "--config", str(cfg_path), "--study-name", "x", "--resume"])
    assert r.exit_code == 2 and "there is no study 'x' with trials in journal file" in r.output, r.output
    assert not home.exists()


def test_a_tuned_demand_challengers_run_has_its_plots_and_its_window(tmp_path, tuned):
    """tune demand registered its best as challenger from a run with no plots and no cutoff: train demand
    logs fan charts and accuracy by demand class from its backtest and its windows as backtest.cutoffs, so
    the tuned version had neither plots to look at nor a window for compare or its registry tags. Both come
    from the latest fold; the plots open as PNG images."""
    import io

    from mlflow.tracking import MlflowClient
    from PIL import Image

    from training import tracking

    res, ds = tuned.res, tuned.ds
    client = MlflowClient(tracking.tracking_uri())
    plots = [a.path for a in client.list_artifacts(res.parent_run_id, "plots")]
    assert sorted(plots) == ["plots/accuracy_by_class.png", "plots/fan_charts.png"]
    for path in plots:
        with open(client.download_artifacts(res.parent_run_id, path, str(tmp_path)), "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
            assert img.format == "PNG" and min(img.size) > 100
    cutoff = str(ds[-4].date())  # the latest fold's window: 3 periods before the end
    assert client.get_run(res.parent_run_id).data.params["backtest.cutoffs"] == cutoff
    assert client.get_model_version("dealerml-demand", "1").tags["backtest.cutoffs"] == cutoff


def test_promotion_scores_the_demand_baselines_on_the_same_window(tuned):
    """promote demand printed and logged no baseline (promote churn gives BG/NBD and the recency rule
    under its decision): a challenger that beats the champion but not SeasonalNaive looked like a win. The
    evaluation carries the statsforecast baselines of the same window, the figures the tune run logged
    for that fold, and promote prints them."""
    from mlflow.tracking import MlflowClient

    from training import tracking
    from training.commands.experiments import _baselines_said

    t, res = tuned.t, tuned.res
    est, _ = tracking.load_model("dealerml-demand", "challenger")
    ev = t.evaluate(est)
    logged = MlflowClient(tracking.tracking_uri()).get_run(res.parent_run_id).data.metrics
    assert set(ev["baselines"]) == {"SeasonalNaive"}  # LightGBM moves with the settings: not a baseline
    assert ev["baselines"]["SeasonalNaive"]["mase"] == logged["SeasonalNaive.mase"]
    assert _baselines_said([ev], "mase") == (
        f"baselines on the same labels: SeasonalNaive mase={logged['SeasonalNaive.mase']:.6g}")
