"""`score churn` / `alerts` without --alias score with the champion, or with the challenger only when no
champion is registered. A champion whose files are gone from the store (deleted, or a store moved from where
it was trained) fell through to the challenger as if there were no champion: the scores table and the alerts
were written by a version the service does not serve, and only the model_version column said so. It is now
an error naming the champion's missing files, and nothing is written. A real MLflow store under tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import write_config
from typer.testing import CliRunner

from training.cli import app

CUTOFF = "2024-04-02"
FAST_CHURN = {"n_train_cutoffs": 1, "model": {"n_estimators": 10},
              "tiers": {"high_probability": 0.3, "contact_cost": 1.0, "capacity_per_run": 20}}


def _register_two_versions(synthetic_book, home: Path) -> Path:
    """dealerml-churn v1 (champion) and v2 (challenger), the same small model; returns v1's artifact folder."""
    from training import tracking
    from training.churn_backtest import churn_cutoffs, churn_settings, fit_churn

    s = churn_settings(FAST_CHURN)
    model, _, _ = fit_churn(synthetic_book, s, churn_cutoffs(CUTOFF, s, first_date="2022-01-01"), num_threads=1)
    for _ in range(2):
        with tracking.training_run("churn") as run:
            run.log_model(model, predict_method="predict_proba")
            run.register("dealerml-churn", alias="challenger")
    client = tracking._configure()
    assert str(client.get_model_version_by_alias("dealerml-churn", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("dealerml-churn", "challenger").version) == "2"
    folders = [p for p in (home / "mlruns").rglob("MLmodel")]
    assert len(folders) == 2
    v1 = client.get_model_version("dealerml-churn", "1").source.split("/")[-1]  # models:/m-<id>
    return next(p.parent for p in folders if v1 in str(p))


def test_champion_with_missing_files_is_an_error_not_the_challenger(synthetic_config, synthetic_book, tmp_path,
                                                                    monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = write_config(synthetic_config, tmp_path / "churn.yaml", churn=FAST_CHURN)
    champion_files = _register_two_versions(synthetic_book, home)
    out = tmp_path / "scores.csv"
    r = CliRunner().invoke(app, ["score", "churn", "--config", str(config), "--cutoff", CUTOFF, "--out", str(out)])
    assert r.exit_code == 0 and "model dealerml-churn/1" in r.output, r.output  # the champion, while its files are there

    shutil.rmtree(champion_files)
    out.unlink()
    for args in (["score", "churn", "--out", str(out)], ["alerts", "--target", str(tmp_path / "alerts.duckdb")]):
        r = CliRunner().invoke(app, [*args, "--config", str(config), "--cutoff", CUTOFF])
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output)
        assert text.startswith("error: no churn model to score with: champion: model dealerml-churn version 1: its "
                               f"files are recorded at {champion_files}, which does not exist here."), text
        assert "(the challenger is not used in its place)" in text and "dealerml-churn/2" not in text
    assert not out.exists() and not (tmp_path / "alerts.duckdb").exists()
    # asked for by name, the challenger still scores
    r = CliRunner().invoke(app, ["score", "churn", "--config", str(config), "--cutoff", CUTOFF, "--out", str(out),
                                 "--alias", "challenger"])
    assert r.exit_code == 0 and "model dealerml-churn/2" in r.output, r.output


def test_a_damaged_saved_model_is_named_not_a_traceback(synthetic_config, synthetic_book, tmp_path, monkeypatch):
    """A truncated churn_model.json, one without its keys, or a booster.txt that is not a LightGBM model ended
    `score churn --model DIR` (and the registry's champion) in a JSONDecodeError / KeyError / LightGBMError
    traceback (exit 1)."""
    home = tmp_path / "home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = write_config(synthetic_config, tmp_path / "churn.yaml", churn=FAST_CHURN)
    champion_files = _register_two_versions(synthetic_book, home)
    estimator = champion_files / "artifacts" / "estimator"
    good = (estimator / "churn_model.json").read_text()
    out = tmp_path / "scores.csv"
    for damage, said in (
        (lambda d: (d / "churn_model.json").write_text(good[:200]), "Unterminated string starting at"),
        (lambda d: (d / "churn_model.json").write_text("{}"), "missing key 'params'"),
        (lambda d: (d / "booster.txt").write_text("garbage\n"), "Model file doesn't specify the number of classes"),
    ):
        folder = tmp_path / "saved"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(estimator, folder)
        damage(folder)
        r = CliRunner().invoke(app, ["score", "churn", "--config", str(config), "--cutoff", CUTOFF, "--out", str(out),
                                     "--model", str(folder)])
        assert r.exit_code == 2 and "Traceback" not in r.output, (said, r.output)
        assert " ".join(r.output.split()).startswith(f"error: --model {folder} is not a readable saved ChurnModel: {said}")
    damage(estimator)  # the registered champion's own files
    r = CliRunner().invoke(app, ["score", "churn", "--config", str(config), "--cutoff", CUTOFF, "--out", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "error: no churn model to score with: champion: model dealerml-churn version 1: " in r.output
    assert "is not a readable saved ChurnModel: Model file doesn't specify the number of classes" in r.output
    assert not out.exists()
