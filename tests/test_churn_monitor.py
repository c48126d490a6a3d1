"""``dealerml monitor churn``: the registered churn model's own scores at a past cutoff against the
outcome the book now holds (training.churn_monitor, training.commands.churn_monitor): trained on the
session network cut at 2024-02-29 (data.as_of), monitored with the whole book (to 2024-06-30); the
figures by hand from ``score churn``'s scores and the order lines."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from conftest import in_env, write_config
from typer.testing import CliRunner

from training.cli import app

FAST = {"n_train_cutoffs": 1, "model": {"n_estimators": 10}}
CUT = "2024-03-01"  # the trained version's labels end here: the first cutoff outside them


def _invoke(home, *args):
    with in_env(DEALERML_HOME=str(home), MLFLOW_TRACKING_URI=None):
        return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def monitored(synthetic_config, tmp_path_factory, mlflow_template_db):
    tmp = tmp_path_factory.mktemp("churn_monitor")
    (tmp / "home").mkdir()
    shutil.copy(mlflow_template_db, tmp / "home" / "mlflow.db")
    now = write_config(synthetic_config, tmp / "now.yaml", churn=FAST)
    cfg = yaml.safe_load(now.read_text())
    cfg["data"].pop("inventory", None)  # its snapshot (2024-06-30) is after the as_of
    cfg["data"]["as_of"] = "2024-02-29"
    (tmp / "train.yaml").write_text(yaml.safe_dump(cfg))
    res = _invoke(tmp / "home", "train", "churn", "--config", tmp / "train.yaml")
    assert res.exit_code == 0, res.output
    res = _invoke(tmp / "home", "score", "churn", "--config", now, "--cutoff", CUT, "--out", tmp / "scores.csv",
                  "--alias", "champion")
    assert res.exit_code == 0, res.output
    res = _invoke(tmp / "home", "monitor", "churn", "--config", now, "--cutoff", CUT, "--json", tmp / "m.json")
    assert res.exit_code == 0, res.output
    return SimpleNamespace(tmp=tmp, now=now, output=res.output, report=json.loads((tmp / "m.json").read_text()),
                           scores=pd.read_csv(tmp / "scores.csv", dtype={"account_id": str}))


def _labels_by_hand(book, accounts, cut: str, horizon: int) -> pd.Series:
    ol = book.order_lines
    c = pd.Timestamp(cut)
    ordered = set(ol.loc[(ol["order_date"] >= c) & (ol["order_date"] < c + pd.Timedelta(days=horizon)),
                         "account_id"].astype(str))
    return pd.Series([0 if a in ordered else 1 for a in accounts], index=list(accounts))


def test_auc_and_base_rate_equal_a_hand_computation(monitored, synthetic_book):
    from sklearn.metrics import brier_score_loss, roc_auc_score

    rep, sc = monitored.report, monitored.scores
    assert (rep["final"], rep["model_version"], rep["cutoff"], rep["horizon_days"]) == (
        "lightgbm", "dealerml-churn/1", CUT, 90)
    y = _labels_by_hand(synthetic_book, sc["account_id"], CUT, 90)
    assert rep["n_accounts"] == len(sc) and 0 < y.mean() < 1
    assert rep["base_rate"] == pytest.approx(y.mean(), abs=1e-6)
    m = rep["metrics"]["lightgbm"]
    assert m["auc"] == pytest.approx(roc_auc_score(y, sc["probability"]), abs=1e-6)
    assert m["brier"] == pytest.approx(brier_score_loss(y, sc["probability"]), abs=1e-6)
    assert set(rep["metrics"]) == {"lightgbm", "recency", "bgnbd"}
    assert all(set(v) == {"auc", "pr_auc", "brier", "ece", "lift_top10"} and v["auc"] > 0.6
               for v in rep["metrics"].values())
    assert "region" in rep["by_slice"]
    assert not rep["monitor"]["in_sample"] and rep["monitor"]["training_labels"][1] == CUT
    text = " ".join(monitored.output.split())
    assert "churned = no order in [2024-03-01, 2024-05-30) (90 days, the model's horizon)" in text
    assert "model auc pr_auc brier ece lift10" in text and "IN-SAMPLE" not in text
    assert "labels: [2023-09-03, 2024-03-01); this window is after them" in text


def test_the_run_is_logged_in_dealerml_monitoring_and_registers_nothing(monitored):
    import mlflow

    uri = f"sqlite:///{monitored.tmp / 'home' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("dealerml-monitoring")
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("monitor.cutoff") == CUT]
    assert len(runs) == 1
    run, rep = runs[0], monitored.report
    assert run.data.metrics["lightgbm.auc"] == pytest.approx(rep["metrics"]["lightgbm"]["auc"])
    assert run.data.metrics["bgnbd.brier"] == pytest.approx(rep["metrics"]["bgnbd"]["brier"])
    assert run.data.metrics["base_rate"] == pytest.approx(rep["base_rate"])
    tags = run.data.tags
    assert (tags["dealerml.model_name"], tags["dealerml.model_version"], tags["dealerml.model_alias"],
            tags["monitor.horizon_days"], tags["monitor.in_sample"]) == ("dealerml-churn", "1", "champion", "90", "false")
    assert len(tags["data.order_lines_sha256"]) == 64
    assert [str(v.version) for v in client.search_model_versions("name='dealerml-churn'")] == ["1"]


def test_a_cutoff_inside_the_training_labels_is_said_in_sample(monitored, tmp_path):
    out = tmp_path / "in.json"
    res = _invoke(monitored.tmp / "home", "monitor", "churn", "--config", monitored.now, "--cutoff", "2024-01-01",
                  "--json", out)
    assert res.exit_code == 0, res.output
    mon = json.loads(out.read_text())["monitor"]
    assert mon["in_sample"] and "60 days in common" in mon["in_sample_note"]
    text = " ".join(res.output.split())
    assert "WARNING: IN-SAMPLE: the label window [2024-01-01, 2024-03-31) overlaps" in text
    assert "this window overlaps them" in text


def test_a_cutoff_before_the_training_labels_is_said_a_backcast(monitored, tmp_path):
    out = tmp_path / "b.json"
    res = _invoke(monitored.tmp / "home", "monitor", "churn", "--config", monitored.now, "--cutoff", "2023-03-01",
                  "--json", out)
    assert res.exit_code == 0, res.output
    mon = json.loads(out.read_text())["monitor"]
    assert not mon["in_sample"] and any("a backcast" in n for n in mon["notes"])
    assert "this window is before them" in " ".join(res.output.split())


@pytest.mark.parametrize("case", ["not_yet", "no_alias", "no_store"])
def test_refusals_write_nothing(monitored, case, tmp_path):
    out = tmp_path / "r.json"
    home = monitored.tmp / "home" if case != "no_store" else tmp_path / "nohome"
    cut = "2024-05-01" if case == "not_yet" else CUT
    res = _invoke(home, "monitor", "churn", "--config", monitored.now, "--cutoff", cut, "--json", out,
                  *(["--alias", "nope"] if case == "no_alias" else []))
    assert res.exit_code == 2, res.output
    assert not out.exists() and not (tmp_path / "nohome").exists()
    want = {"not_yet": "the book ends 2024-06-30 (its last order); the 90-day outcome of 2024-05-01 needs orders up "
                       "to 2024-07-29: nothing to score yet, the latest cutoff whose whole outcome the book holds is "
                       "2024-04-02",
            "no_alias": "has alias 'nope'", "no_store": "there is no MLflow store at"}[case]
    assert want in " ".join(res.output.split())


def test_labels_use_the_models_horizon_not_the_configs(monitored, synthetic_book, tmp_path):
    from sklearn.metrics import roc_auc_score

    cfg = yaml.safe_load(monitored.now.read_text())
    cfg["churn"]["horizon_days"] = 60
    (tmp_path / "h60.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "h.json"
    res = _invoke(monitored.tmp / "home", "monitor", "churn", "--config", tmp_path / "h60.yaml", "--cutoff", CUT,
                  "--json", out)
    assert res.exit_code == 0, res.output
    rep, sc = json.loads(out.read_text()), monitored.scores
    assert rep["horizon_days"] == 90 and rep["monitor"]["label_window"] == [CUT, "2024-05-30"]
    assert "trained with churn.horizon_days 90, not the config's 60" in " ".join(res.output.split())
    assert any("churn.horizon_days 90, not the config's 60" in n for n in rep["monitor"]["notes"])
    y = _labels_by_hand(synthetic_book, sc["account_id"], CUT, 90)
    assert rep["metrics"]["lightgbm"]["auc"] == pytest.approx(roc_auc_score(y, sc["probability"]), abs=1e-6)
