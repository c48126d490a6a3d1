"""`dealerml serve` refuses a bad setup before starting anything."""

from __future__ import annotations

from typer.testing import CliRunner

from training.cli import app


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
