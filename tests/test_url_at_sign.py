"""A database URL whose password holds a bare '@' (``crm:${PGPASSWORD}@db``, README "Security notes"):
SQLAlchemy ends the password at its first '@' and reads the rest as the host, so the connection error
named the password's tail as a host it could not resolve, in clear. 36c7d75 refused such URLs up
front for data sources and score / alerts targets; these are the other places a user gives one:
``serving.alerts_target`` (``dealerml serve`` and the service), ``MLFLOW_TRACKING_URI`` and the Optuna
storage (``tune --storage`` / ``tuning.storage``). Each is refused naming where the URL came from and
the fix (%40), with no part of the password. Against the local PostgreSQL (127.0.0.1:5432): the
password's tail would otherwise be tried as a host name."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import yaml
from _support_cli import _err, _serve
from typer.testing import CliRunner

from serving.devserver import free_port
from training.cli import app

PASSWORD = "Sup3r@S3cret-pw"  # SQLAlchemy: password 'Sup3r', host 'S3cret-pw@127.0.0.1'
AT_FIX = ("its user name or password holds '@', which ends the password in a URL (the rest would be read as the "
          "host name): write each '@' in them as %40")


def _no_password(text: str) -> None:
    assert "Sup3r" not in text and "S3cret" not in text, text


def _alerts_config(tmp_path, synthetic_config, monkeypatch):
    monkeypatch.setenv("AT_TEST_PGPASSWORD", PASSWORD)
    cfg = yaml.safe_load(synthetic_config.read_text())
    for t in cfg["data"].values():
        if isinstance(t, dict) and "path" in t:
            t["path"] = str((synthetic_config.parent / t["path"]).resolve())
    cfg["serving"] = {"alerts_target": "postgresql+psycopg://crm:${AT_TEST_PGPASSWORD}@127.0.0.1:5432/test"}
    p = tmp_path / "alerts-at.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_serve_refuses_an_alerts_target_whose_password_holds_an_at_sign(tmp_path, monkeypatch, synthetic_config):
    """dealerml serve started the service, whose every GET /churn_alerts logged 'cannot connect to
    postgresql+psycopg://crm:***@127.0.0.1:5432/test: failed to resolve host 'S3cret-pw@127.0.0.1''."""
    cfg = _alerts_config(tmp_path, synthetic_config, monkeypatch)
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    r, _ = _serve(tmp_path, monkeypatch, "--config", str(cfg), "--port", str(free_port()))
    out = _err(r)
    _no_password(out)
    assert f"key 'serving.alerts_target': not a valid SQLAlchemy URL: {AT_FIX}" in out, out
    assert "got 'postgresql+psycopg://crm:***@127.0.0.1:5432/test'" in out, out
    assert not (tmp_path / "home" / "mlflow.db").exists()  # refused before the store is opened


def test_the_service_stays_unready_naming_the_alerts_target_without_its_password(tmp_path, monkeypatch,
                                                                                 synthetic_config, caplog):
    """The service itself (started by bentoml serve, not dealerml serve): unready, the reason (to an
    admin key) names serving.alerts_target, and neither it nor the log holds any of the password."""
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    key = "at-sign-admin-key-01"
    cfg = _alerts_config(tmp_path, synthetic_config, monkeypatch)
    monkeypatch.setenv("DEALERML_CONFIG", str(cfg))
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEALERML_API_KEYS", f"{key}:*")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with caplog.at_level(logging.INFO), TestClient(service_app(), raise_server_exceptions=False) as c:
        assert bentoml.get_current_service().__is_ready__() is False
        r = c.get("/readyz", headers={"X-API-Key": key})
    assert r.status_code == 503, r.text[:300]
    _no_password(r.text)
    settings = " ".join(r.json()["settings"])  # the settings' reasons, to an admin key
    assert f"key 'serving.alerts_target': not a valid SQLAlchemy URL: {AT_FIX}" in settings, r.text[:500]
    _no_password(" ".join(rec.getMessage() for rec in caplog.records))


def test_an_alerts_read_from_a_url_whose_password_holds_an_at_sign_logs_none_of_it(caplog):
    """A backend given such a URL (not through the serving: section) answers 503 and logs the cause
    without the password's tail as a host."""
    from serving.churn import ChurnBackend
    from serving.state import NotReady

    empty = pd.DataFrame(columns=["account_id", "probability", "tier", "reason_1", "reason_2", "reason_3",
                                  "model_version"])
    backend = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1",
                           as_of=pd.Timestamp("2024-06-01"), table=empty, alerts_table="churn_alerts",
                           alerts_target=f"postgresql+psycopg://crm:{PASSWORD}@127.0.0.1:5432/test")
    with caplog.at_level(logging.ERROR, logger="dealerml.serving"), pytest.raises(NotReady):
        backend.alerts(None, 10)
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    _no_password(logged)
    assert (f"alerts table postgresql+psycopg://crm:***@127.0.0.1:5432/test#churn_alerts: not a valid database "
            f"URL ({AT_FIX}") in logged, logged


def test_mlflow_tracking_uri_whose_password_holds_an_at_sign_is_refused(tmp_path, monkeypatch, synthetic_config):
    """rollback said 'cannot read the MLflow registry at postgresql+psycopg://reader:***@127.0.0.1:5432/test:
    OperationalError: ... failed to resolve host 'S3cret-pw@127.0.0.1''; train churn likewise. Now
    MLFLOW_TRACKING_URI is named with the fix, train before its work."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    for scheme in ("postgresql+psycopg", "mysql+pymysql"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"{scheme}://reader:{PASSWORD}@127.0.0.1:5432/test")
        for args in (["rollback", "churn"], ["train", "churn", "--config", str(synthetic_config)]):
            out = _err(CliRunner().invoke(app, args))
            _no_password(out)
            assert (f"MLFLOW_TRACKING_URI {scheme}://reader:***@127.0.0.1:5432/test: not a valid database URL "
                    f"({AT_FIX}") in out, (args, out)
    assert not (tmp_path / "home" / "mlruns").exists()


def test_tune_storage_whose_password_holds_an_at_sign_is_refused(tmp_path, monkeypatch, synthetic_config):
    """tune --storage said 'cannot open the Optuna storage postgresql+psycopg://reader:***@S3cret-pw@127.0.0.1/test:
    failed to resolve host 'S3cret-pw@127.0.0.1'' (its name shown by SQLAlchemy with the tail in clear)."""
    from training.tuning_runtime import describe_storage

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    url = f"postgresql://reader:{PASSWORD}@127.0.0.1:5432/test"
    assert describe_storage(url) == "postgresql+psycopg://reader:***@127.0.0.1:5432/test"
    out = _err(CliRunner().invoke(app, ["tune", "churn", "--config", str(synthetic_config), "--storage", url,
                                        "--trials", "1"]))
    _no_password(out)
    assert (f"--storage postgresql+psycopg://reader:***@127.0.0.1:5432/test: not a valid database URL ({AT_FIX}"
            in out), out
    monkeypatch.setenv("AT_TEST_PGPASSWORD", PASSWORD)
    cfg = yaml.safe_load(synthetic_config.read_text())
    for t in cfg["data"].values():
        if isinstance(t, dict) and "path" in t:
            t["path"] = str((synthetic_config.parent / t["path"]).resolve())
    cfg["tuning"] = {"storage": "postgresql+psycopg://reader:${AT_TEST_PGPASSWORD}@127.0.0.1:5432/test"}
    p = tmp_path / "tune-at.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = _err(CliRunner().invoke(app, ["tune", "churn", "--config", str(p), "--trials", "1"]))
    _no_password(out)
    assert f"key 'tuning.storage': not a valid database URL: {AT_FIX}" in out, out
    assert "got 'postgresql+psycopg://reader:***@127.0.0.1:5432/test'" in out, out
