"""Helpers shared by CLI tests: how a refused command reads (``_err``) and an in-process
``dealerml serve`` that stops before it would start bentoml (``_serve``).

Used by test_qa_files, test_byo_audit, test_score_outputs_cli, test_security_secrets,
test_store_and_outputs, test_url_at_sign, test_user_files and test_serving_cli.
"""

from __future__ import annotations

import time

from typer.testing import CliRunner

from training.cli import app


def _err(res) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output and "error: " in res.output
    return " ".join(res.output.split())


def _no_exec(*args, **kwargs):
    raise AssertionError("dealerml serve went on to start bentoml (it replaces this process)")


def _serve(tmp_path, monkeypatch, *args: str):
    monkeypatch.setenv("DEALERML_API_KEYS", "long-enough-key:*")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("os.execvpe", _no_exec)
    t0 = time.monotonic()
    r = CliRunner().invoke(app, ["serve", *args])
    return r, time.monotonic() - t0
