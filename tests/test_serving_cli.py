"""`dealerml serve` refuses a bad setup before starting anything."""

from __future__ import annotations

import socket
import time

import pytest
import yaml
from _support_cli import _no_exec, _serve
from typer.testing import CliRunner

from serving.devserver import free_port
from training.cli import app
from training.errors import ConfigError


def test_serve_refuses_missing_config_and_bad_keys(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    r = runner.invoke(app, ["serve", "--config", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "nope.yaml: file not found" in r.output
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\n")
    monkeypatch.setenv("DEALERML_API_KEYS", "short:churn")
    r = runner.invoke(app, ["serve", "--config", str(cfg)])
    assert r.exit_code == 2 and "keys must be at least 8 characters" in r.output and "short" not in r.output.split("characters")[1]
    monkeypatch.setenv("DEALERML_API_KEYS", "long-enough-key:churn")
    r = runner.invoke(app, ["serve", "--config", str(cfg), "--models", "churn,stock"])
    assert r.exit_code == 2 and "unknown model(s) ['stock']" in r.output


def test_serve_refuses_a_port_in_use_naming_it(tmp_path, monkeypatch, synthetic_config):
    """bentoml serve on a taken port printed 'Could not bind' and a 40-line traceback."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        r, _ = _serve(tmp_path, monkeypatch, "--config", str(synthetic_config), "--port", str(port))
    assert r.exit_code == 2, r.output
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.output
    assert "pick another --port" in r.output and "Traceback" not in r.output


def test_serve_refuses_a_home_without_a_store_and_creates_none(tmp_path, monkeypatch, synthetic_config):
    """A typo in DEALERML_HOME: the service started, created an empty mlflow.db there and stayed unready
    for good, saying why only in its log."""
    home = tmp_path / "hmoe"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    r, took = _serve(tmp_path, monkeypatch, "--config", str(synthetic_config), "--port", str(free_port()))
    assert r.exit_code == 2, r.output
    assert f"there is no MLflow store at {home / 'mlflow.db'} (DEALERML_HOME={home})" in r.output
    assert not home.exists() and took < 30


def test_serve_refuses_models_without_a_champion_naming_the_others(tmp_path, monkeypatch, synthetic_config):
    from training import tracking

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = tracking._configure()  # a real store: a dealers champion only (its registry entry)
    client.create_registered_model("dealerml-dealers")
    client.create_model_version("dealerml-dealers", source="file:///nonexistent/model")
    client.set_registered_model_alias("dealerml-dealers", "champion", "1")
    r, _ = _serve(tmp_path, monkeypatch, "--config", str(synthetic_config), "--port", str(free_port()))
    assert r.exit_code == 2, r.output
    msg = " ".join(r.output.split())
    assert f"no champion of dealerml-demand, dealerml-churn in {tracking.tracking_uri()}: train one" in msg
    assert "or serve the others only: --models dealers" in msg


def test_serve_refuses_a_bad_serving_section_naming_the_keys(tmp_path, monkeypatch, synthetic_config):
    """An unknown model or a bad cutoff in serving: started a service that stayed unready."""
    cfg = yaml.safe_load(synthetic_config.read_text())
    cfg["serving"] = {"models": ["churn", "forecasts"], "churn_cutoff": "2024-13-01"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    r, _ = _serve(tmp_path, monkeypatch, "--config", str(bad), "--port", str(free_port()))
    assert r.exit_code == 2, r.output
    assert "key 'serving.models.1': Input should be 'demand', 'churn' or 'dealers'; got 'forecasts'" in r.output
    assert "key 'serving.churn_cutoff'" in r.output and not (tmp_path / "mlflow.db").exists()


def test_serve_refuses_to_start_without_api_keys(tmp_path, monkeypatch, synthetic_config):
    """It warned and started a service that answered 401 to everything (and now stays unready)."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("DEALERML_API_KEYS", raising=False)
    monkeypatch.delenv("DEALERML_API_KEYS_FILE", raising=False)
    monkeypatch.setattr("os.execvpe", _no_exec)
    r = CliRunner().invoke(app, ["serve", "--config", str(synthetic_config), "--port", str(free_port())])
    assert r.exit_code == 2, r.output
    assert "no API keys configured: set DEALERML_API_KEYS" in " ".join(r.output.split())


@pytest.mark.parametrize(("var", "value", "words"), [
    ("DEALERML_SERVE_WORKERS", "two", "$DEALERML_SERVE_WORKERS must be a whole number of worker processes between 1 and 64"),
    ("DEALERML_SERVE_WORKERS", "0", "$DEALERML_SERVE_WORKERS must be a whole number of worker processes between 1 and 64"),
    ("DEALERML_SERVE_CHAMPION_CHECK_SECONDS", "soon", "$DEALERML_SERVE_CHAMPION_CHECK_SECONDS must be 0 (never) or"),
    ("DEALERML_SERVE_KEY_FAILURES", "many", "$DEALERML_SERVE_KEY_FAILURES must be a whole number between 0 (no "
                                            "throttling) and 100,000 (wrong API keys one client address may send per "
                                            "window); got 'many'"),
    ("DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS", "90000", "$DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS must be a "
                                                            "whole number between 1 and 86,400 (seconds); got '90000'"),
])
def test_serve_refuses_a_bad_setting_naming_the_variable(tmp_path, monkeypatch, synthetic_config, var, value, words):
    """DEALERML_SERVE_WORKERS=two was Python's int() traceback at import, 0 a page of BentoML's schema errors."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setenv(var, value)
    r, _ = _serve(tmp_path, monkeypatch, "--config", str(synthetic_config), "--port", str(free_port()))
    assert r.exit_code == 2, r.output
    assert words in " ".join(r.output.split()) and "Traceback" not in r.output


@pytest.mark.parametrize(("var", "value"), [
    ("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "5s"),
    ("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "0"),
    ("DEALERML_SERVE_ALERTS_READERS", "four"),
    ("DEALERML_SERVE_MAX_BODY_BYTES", "4MB"),
    ("DEALERML_SERVE_BODY_TIMEOUT_SECONDS", "-1"),
    ("DEALERML_SERVE_MAX_IDS", "0"),
    ("DEALERML_SERVE_MAX_PLAN_ROWS", "lots"),
    ("DEALERML_SS_CACHE_ENTRIES", "-5"),
])
def test_serve_refuses_a_bad_service_setting_with_the_services_message(tmp_path, monkeypatch, synthetic_config,
                                                                        var, value):
    """The alerts reads' and the request limits' variables were read only by the started service, which
    stayed unready (its log and /readyz said why); `dealerml serve` now refuses them first, exit 2, with
    the message of the service's own reader - before the port, the registry and bentoml. The sizing cache's
    $DEALERML_SS_CACHE_ENTRIES (its demand slot failed to load) only when demand is served."""
    from serving.schemas import limit_errors
    from serving.settings import alerts_limits, request_limits, sizing_cache_entries

    home = tmp_path / "home"  # no MLflow store: a check that let the value through would fail on that instead
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.setenv(var, value)
    if var in ("DEALERML_SERVE_MAX_IDS", "DEALERML_SERVE_MAX_PLAN_ROWS"):  # kept in a list, as the service does
        want = "; ".join(limit_errors({var: value}))
    elif var == "DEALERML_SS_CACHE_ENTRIES":  # a ValueError, as serving.demand raised it (no '$', as before)
        with pytest.raises(ValueError) as err:
            sizing_cache_entries({var: value})
        want = str(err.value)
    else:
        with pytest.raises(ConfigError) as err:
            (alerts_limits if "ALERTS" in var else lambda env: request_limits(None, env))({var: value})
        want = str(err.value)
    assert want.removeprefix("$").startswith(f"{var} must be ") and repr(value) in want
    r, took = _serve(tmp_path, monkeypatch, "--config", str(synthetic_config), "--port", str(free_port()))
    assert r.exit_code == 2, r.output
    assert f"error: {want}" in " ".join(r.output.split()), r.output
    assert "Traceback" not in r.output and "no MLflow store" not in r.output and not home.exists() and took < 10
    if var == "DEALERML_SS_CACHE_ENTRIES":  # a churn-only service never reads it: serve goes on to the store check
        r, _ = _serve(tmp_path, monkeypatch, "--config", str(synthetic_config), "--port", str(free_port()),
                      "--models", "churn")
        assert r.exit_code == 2 and var not in r.output and "no MLflow store" in r.output, r.output


def test_serve_workers_setting():
    from serving.settings import serve_workers

    assert serve_workers({}) == 1 and serve_workers({"DEALERML_SERVE_WORKERS": " 4 "}) == 4
    for bad in ("two", "0", "-1", "1.5", "65", "٣"):
        with pytest.raises(ConfigError, match=r"\$DEALERML_SERVE_WORKERS must be a whole number"):
            serve_workers({"DEALERML_SERVE_WORKERS": bad})


def test_serve_names_a_postgresql_store_that_is_down_without_a_traceback(tmp_path, monkeypatch, synthetic_config):
    """MLFLOW_TRACKING_URI=postgresql://... with the server down: MLflow's store raised SQLAlchemy's
    OperationalError (not an MlflowException), so dealerml serve (and promote / rollback) ended in a
    60-line traceback, exit 1, instead of naming the store (its password hidden), exit 2."""
    secret = "Sup3r-S3cret-pw"
    uri = f"postgresql+psycopg://mlflow:{secret}@127.0.0.1:{free_port()}/test"
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setattr("mlflow.store.db.utils.MAX_RETRY_COUNT", 1)  # MLflow's own back-off: ~100 s, same end
    monkeypatch.setenv("DEALERML_API_KEYS", "long-enough-key:*")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr("os.execvpe", _no_exec)
    r = CliRunner().invoke(app, ["serve", "--config", str(synthetic_config), "--port", str(free_port())])
    assert r.exit_code == 2, r.output
    shown = uri.replace(secret, "***")
    assert f"cannot read the MLflow registry at {shown}: OperationalError: " in r.output, r.output
    assert "Connection refused" in r.output and secret not in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["rollback", "churn"])
    assert r.exit_code == 2 and f"cannot read the MLflow registry at {shown}" in r.output, r.output


def test_an_unreachable_database_store_is_named_in_seconds_before_the_work(tmp_path, monkeypatch, synthetic_config):
    """MLflow retries opening a database store for ~100 s (no setting shortens it), and train churn
    logs its run only after the backtest and the fit: a stopped PostgreSQL (or a typo in the port)
    was named after ~100 s of retries plus the whole training. One plain connection before MLflow
    (and before the work) names it in seconds; MLflow's retries are left as they are here."""
    secret = "Sup3r-S3cret-pw"
    uri = f"postgresql+psycopg://mlflow:{secret}@127.0.0.1:{free_port()}/test"
    shown = uri.replace(secret, "***")
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for args in (["train", "churn", "--config", str(synthetic_config)], ["rollback", "churn"]):
        t0 = time.monotonic()
        r = CliRunner().invoke(app, args)
        took = time.monotonic() - t0
        assert r.exit_code == 2, r.output
        assert f"cannot read the MLflow registry at {shown}: OperationalError: " in r.output, r.output
        assert "Connection refused" in r.output and secret not in r.output and "Traceback" not in r.output
        assert took < 30, f"{args[0]}: {took:.0f} s (MLflow's own retries take ~100 s)"
    assert not list(tmp_path.rglob("*.db")) and not (tmp_path / "mlruns").exists()  # nothing written


def test_a_database_store_missing_its_database_is_named_with_the_server_s_words(tmp_path, monkeypatch):
    """A real PostgreSQL server without the database the URI names: the server's own sentence, at once."""
    from training import tracking

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg://postgres:pw-not-shown@127.0.0.1:5432/no_such_db_dml")
    with pytest.raises(ConfigError, match=r'cannot read the MLflow registry at postgresql\+psycopg://postgres:\*\*\*@127\.0\.0\.1'
                       r':5432/no_such_db_dml: OperationalError: .*database "no_such_db_dml" does not exist'):
        tracking.check_store()
