"""Session 10 (helper-write): score / alerts on a home without an MLflow store create nothing and
say so; the Optuna PostgreSQL storage gives up connecting; a command's outputs are written together
(a failure leaves none of them) and two outputs at one path are refused before the run."""

from __future__ import annotations

import pandas as pd
import pytest
from _support_cli import _err  # exit 2, no traceback, the message on one line
from conftest import write_config
from typer.testing import CliRunner

from training.cli import app


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def no_store(tmp_path, monkeypatch):
    home = tmp_path / "typo-home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


# ------------------------------------------------------------------ 1. score / alerts without a store
@pytest.mark.parametrize("argv, what, alternative", [
    (["score", "churn", "--out", "OUT/s.csv"], "no churn model to score with", "pass --model DIR"),
    (["alerts", "--target", "OUT/a.duckdb"], "no churn model to score with", "pass --model DIR"),
    (["score", "dealers", "--out", "OUT/d.csv"], "score dealers", "pass --fit"),
    (["score", "dealers", "--fit", "--churn-alias", "challenger", "--out", "OUT/d.csv"],
     "score dealers --churn-alias challenger", "pass --churn-scores FILE"),
])
def test_score_and_alerts_on_a_home_without_a_store_refuse_and_create_nothing(synthetic_config, tmp_path, no_store,
                                                                              argv, what, alternative):
    """They created an empty mlflow.db (MLflow's schema) in the home, then said there was no model."""
    argv = [str(tmp_path / a[4:]) if a.startswith("OUT/") else a for a in argv]
    msg = _err(_run(*argv, "--config", synthetic_config, "--cutoff", "2024-06-01"))
    assert msg.startswith(f"error: {what}: there is no MLflow store at {no_store / 'mlflow.db'} "
                          f"(DEALERML_HOME={no_store}); set DEALERML_HOME to the folder you trained in "
                          "(or MLFLOW_TRACKING_URI to the store), or train first, or "), msg
    assert alternative in msg and msg.endswith("; nothing was created")
    assert not no_store.exists() and not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, what", [
    (["forecast", "--alias", "champion", "--out", "OUT/f.csv"],
     "forecast --alias champion: no dealerml-demand@champion to forecast with"),
    (["safety-stock", "--alias", "champion", "--out", "OUT/p.csv", "--config", "CFG"], "safety-stock --alias champion"),
])
def test_demand_alias_on_a_home_without_a_store_refuses_and_creates_nothing(synthetic_config, tmp_path, no_store,
                                                                            argv, what):
    argv = [str(tmp_path / a[4:]) if a.startswith("OUT/") else str(synthetic_config) if a == "CFG" else a
            for a in argv]
    msg = _err(_run(*argv))
    assert msg.startswith(f"error: {what}: there is no MLflow store at {no_store / 'mlflow.db'} "), msg
    assert "leave out --alias" in msg and msg.endswith("; nothing was created")
    assert not no_store.exists() and not any(tmp_path.iterdir())


def test_a_tracking_uri_without_a_store_is_named(synthetic_config, tmp_path, no_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'x' / 'm.db'}")
    msg = _err(_run("score", "churn", "--config", synthetic_config, "--cutoff", "2024-06-01", "--out", tmp_path / "s.csv"))
    assert f"there is no MLflow store at {tmp_path / 'x' / 'm.db'} (MLFLOW_TRACKING_URI=sqlite:///" in msg
    assert not (tmp_path / "x").exists()


def test_model_dir_and_fit_still_score_without_a_store(synthetic_book, synthetic_config, tmp_path, no_store):
    from training.churn_backtest import churn_cutoffs, churn_settings, fit_churn

    s = churn_settings({"n_train_cutoffs": 1, "model": {"n_estimators": 10}})
    model, _, _ = fit_churn(synthetic_book, s, churn_cutoffs("2024-04-02", s, first_date="2022-01-01"), num_threads=1)
    model.save(tmp_path / "model")
    # score dealers --fit fits a dealer scorer: a small one (the default is 6+ cutoffs of 300 trees), since
    # what is checked is where its churn risk comes from, not the ranking's quality
    config = write_config(synthetic_config, tmp_path / "cfg.yaml",
                          dealers={"train": {"n_cutoffs": 2, "step_days": 60, "n_estimators": 40, "num_leaves": 7}})
    common = ("--config", config, "--cutoff", "2024-06-01")
    r = _run("score", "churn", *common, "--out", tmp_path / "s.csv", "--model", tmp_path / "model")
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "s.csv")) > 0
    r = _run("alerts", *common, "--target", tmp_path / "a.duckdb", "--model", tmp_path / "model")
    assert r.exit_code == 0 and "new alerts for 2024-06-01" in r.output, r.output
    r = _run("score", "dealers", *common, "--fit", "--out", tmp_path / "d.csv")
    assert r.exit_code == 0, r.output
    assert f"(no MLflow store at {no_store / 'mlflow.db'}, so no dealerml-churn champion)" in r.output
    assert (pd.read_csv(tmp_path / "d.csv")["churn_source"] == "bgnbd").all()
    assert not no_store.exists()


# ------------------------------------------------------------------ 2. Optuna storage connect timeout
@pytest.mark.parametrize("default_s, query", [(1, ""), (60, "?connect_timeout=1")])
def test_optuna_postgresql_storage_that_never_answers_fails_in_seconds(monkeypatch, default_s, query):
    """`dealerml tune --storage postgresql://...` against a server that takes the connection and
    never answers hung for ever (libpq has no connect timeout by default). The default (10 s; 1 s
    here) unless the URL sets connect_timeout (then its value: 1 s, not the 60 s default here)."""
    import socket
    import threading
    import time

    from training import scores
    from training.errors import ConfigError
    from training.tuning_runtime import make_storage

    monkeypatch.setattr(scores, "CONNECT_TIMEOUT_S", default_s)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever answers
    port = silent.getsockname()[1]
    got: list[str] = []

    def open_storage() -> None:
        try:
            make_storage(f"postgresql://optuna:s3cret-pw@127.0.0.1:{port}/test{query}")
        except ConfigError as err:
            got.append(str(err))

    t0 = time.monotonic()
    th = threading.Thread(target=open_storage, daemon=True)
    th.start()
    th.join(15)
    silent.close()
    assert not th.is_alive(), "still connecting after 15 s"
    assert time.monotonic() - t0 < 10
    assert len(got) == 1, got
    assert got[0].startswith(f"cannot open the Optuna storage postgresql+psycopg://optuna:***@127.0.0.1:{port}/test")
    assert "timeout" in got[0] and "s3cret-pw" not in got[0]


# ------------------------------------------------------------------ 3. outputs written together
def _series(tmp_path):
    import numpy as np

    p = tmp_path / "g.csv"
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"),
                  "y": np.random.default_rng(0).poisson(5, 30)}).to_csv(p, index=False)
    return p


@pytest.mark.parametrize("json_rel, want", [
    ("o/cv.csv", "--json and --cv-out are the same path {o}/cv.csv; give each its own"),
    ("o/cv.csv/r.json", "--json {o}/cv.csv/r.json is inside --cv-out {o}/cv.csv, which this command writes"),
])
def test_backtest_outputs_at_one_path_are_refused_before_the_run(tmp_path, no_store, json_rel, want):
    """--json o/cv.csv: the report overwrote the window forecasts and the command said it wrote both;
    --json o/cv.csv/r.json: the command failed after the backtest with o/cv.csv left behind."""
    series = _series(tmp_path)
    msg = _err(_run("backtest", "demand", "--series", series, "--freq", "M", "--horizon", 2,
                    "--cv-out", tmp_path / "o" / "cv.csv", "--json", tmp_path / json_rel))
    assert want.format(o=tmp_path / "o") in msg
    assert not (tmp_path / "o").exists()


def test_train_churn_save_to_and_json_at_one_path_are_refused_before_training(synthetic_config, tmp_path, no_store):
    """--save-to m --json m: trained, registered and saved the model, then failed on the report."""
    msg = _err(_run("train", "churn", "--config", synthetic_config, "--save-to", tmp_path / "m", "--json", tmp_path / "m"))
    assert f"--save-to and --json are the same path {tmp_path / 'm'}" in msg
    msg = _err(_run("train", "churn", "--config", synthetic_config, "--save-to", tmp_path / "m",
                    "--json", tmp_path / "m" / "r.json"))
    assert f"--json {tmp_path / 'm' / 'r.json'} is inside --save-to {tmp_path / 'm'}, which this command writes" in msg
    assert not any(tmp_path.iterdir())  # no model saved, no store created


def test_forecast_drivers_out_at_the_out_path_is_refused(tmp_path, no_store):
    msg = _err(_run("forecast", "--alias", "champion", "--out", tmp_path / "f.csv", "--drivers-out", tmp_path / "f.csv"))
    assert "--out and --drivers-out are the same path" in msg and not (tmp_path / "f.csv").exists()


def test_write_files_leaves_none_of_the_outputs_when_one_fails(tmp_path):
    import json

    from training.commands._common import json_writer, write_files
    from training.errors import ConfigError

    (tmp_path / "old.csv").write_text("kept\n")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("No space left on device")

    with pytest.raises(ConfigError, match=r"cannot write .*old.csv: No space left on device .*nothing was written"):
        write_files([(tmp_path / "cv.csv", lambda t: t.write_text("a,b\n")), (tmp_path / "old.csv", broken)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]  # no cv.csv, no temp files
    assert (tmp_path / "old.csv").read_text() == "kept\n"
    with pytest.raises(TypeError):  # not JSON (a tuple as a key): refused before any file is written
        write_files([(tmp_path / "cv.csv", lambda t: t.write_text("a,b\n")),
                     (tmp_path / "r.json", json_writer({("a", "b"): 1}))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]
    # an undefined figure (NaN, inf) is written as null, not refused (eb35d7c: promote dealers --json)
    write_files([(tmp_path / "nan.json", json_writer({"x": float("nan"), "y": [float("inf"), 1.0]}))])
    assert json.loads((tmp_path / "nan.json").read_text()) == {"x": None, "y": [None, 1.0]}
    (tmp_path / "nan.json").unlink()
    write_files([(tmp_path / "cv.csv", lambda t: t.write_text("a,b\n")), (tmp_path / "sub" / "r.json", json_writer({"x": 1}))])
    assert (tmp_path / "cv.csv").read_text() == "a,b\n" and (tmp_path / "sub" / "r.json").read_text() == '{\n  "x": 1\n}'


def test_backtest_of_a_series_a_baseline_forecasts_exactly_reports_no_ratio(tmp_path, no_store):
    """A straight line: a baseline's MASE is 0 (e.g. AutoETS, drift) and the ratio of Final to it failed with ZeroDivisionError."""
    import json

    p = tmp_path / "line.csv"
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"),
                  "y": range(30)}).to_csv(p, index=False)
    r = _run("backtest", "demand", "--series", p, "--freq", "M", "--horizon", 2, "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "r.json").read_text())
    setup = report["setup"]
    assert report["metrics"][setup["best_statsforecast_baseline"]]["mase"] == 0
    assert setup["final_mase_ratio_to_best_baseline"] is None
