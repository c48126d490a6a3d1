"""Data-scientist command flows (QA pass): promote's --metric is checked before anything is
loaded, and ``backtest dealers`` defaults its cutoff like ``train dealers``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app


@pytest.mark.parametrize("cap, metric, allowed", [
    ("demand", "auc", "mase, rmsse, pinball, coverage_80, coverage_95, bias"),
    ("churn", "foo", "auc, pr_auc, brier, ece, lift_top10, precision_top10"),
    ("dealers", "mase", "spearman, top_decile_growth_capture, top_decile_net_growth_share, mae"),
])
def test_promote_refuses_a_metric_the_capability_does_not_have(tmp_path, monkeypatch, cap, metric, allowed):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    # the config does not even exist: the metric is refused before anything is read or downloaded
    r = CliRunner().invoke(app, ["promote", cap, "--config", str(tmp_path / "none.yaml"), "--metric", metric])
    assert r.exit_code == 2, r.output
    assert f"--metric {metric!r} is not a {cap} metric; {cap} promotion can compare {allowed}" in r.output
    assert not (tmp_path / "home").exists()


def test_backtest_dealers_defaults_to_the_latest_covered_cutoff(synthetic_config, synthetic_book, tmp_path,
                                                                monkeypatch):
    import training.dealers_backtest as db

    seen = {}

    def fake_backtest(book, *, cutoff, settings, seed, churn):
        seen["cutoff"] = cutoff
        return {"cutoff": str(cutoff.date()), "horizon_days": settings.horizon_days, "n_accounts": 1,
                "metrics": {}, "oracle": {"top_decile_growth_capture": 1.0, "top_decile_net_growth_share": 1.0},
                "setup": {"churn_source": "bgnbd", "churn_fallback_reason": "test"}}

    monkeypatch.setattr(db, "run_backtest", fake_backtest)
    out = tmp_path / "bt.json"
    r = CliRunner().invoke(app, ["backtest", "dealers", "--config", str(synthetic_config), "--json", str(out)])
    assert r.exit_code == 0, r.output
    last = pd.Timestamp(synthetic_book.order_lines["order_date"].max()).normalize()
    horizon = db.load_settings({}).horizon_days
    expected = last + pd.Timedelta(days=1) - pd.Timedelta(days=horizon)
    assert seen["cutoff"] == expected
    assert (f"cutoff {expected.date()} (the default: the day after the last order ({last.date()}) minus "
            f"dealers.horizon_days {horizon})") in r.output
    assert json.loads(out.read_text())["cutoff"] == str(expected.date())
    # an explicit --cutoff still wins
    r = CliRunner().invoke(app, ["backtest", "dealers", "--config", str(synthetic_config), "--cutoff", "2023-06-01",
                                 "--json", str(out)])
    assert r.exit_code == 0 and seen["cutoff"] == pd.Timestamp("2023-06-01") and "(--cutoff)" in r.output


def test_a_worker_exits_when_its_coordinator_is_killed_with_sigkill(tmp_path):
    # SIGKILL cannot be caught, so the coordinator cannot stop its workers: each worker watches
    # its parent pid and stops itself (training.tuning_runtime.exit_with_parent)
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    pid_file = tmp_path / "worker.pid"
    worker = ("import os, time, pathlib; from training.tuning_runtime import exit_with_parent; exit_with_parent(0.2); "
              f"tmp = pathlib.Path({str(pid_file)!r} + '.tmp'); tmp.write_text(str(os.getpid())); "
              f"os.replace(tmp, {str(pid_file)!r}); time.sleep(120)")  # whole or absent: never read half-written
    coordinator = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {worker!r}], "
                   "start_new_session=True); time.sleep(120)")
    root = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen([sys.executable, "-c", coordinator], cwd=root)
    deadline = time.time() + 60
    while not pid_file.exists():
        assert time.time() < deadline and parent.poll() is None
        time.sleep(0.1)
    child = int(pid_file.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the worker outlived its SIGKILLed coordinator by 10 s")
