"""``make demo`` ends by serving: stopping the demo with SIGTERM (``kill``, a stopped CI job) also
stops the ``dealerml serve`` it started, as Ctrl-C does (it used to die alone and leave the
service on the port). The real ``dealerml serve`` here, on a registry whose champion's files are
missing (it never becomes ready, so the demo is still waiting for it when it is stopped)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(url: str) -> bool:
    try:
        return httpx.get(f"{url}/livez", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_sigterm_stops_the_service_the_demo_started(tmp_path):
    (tmp_path / "lines.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-01,A,S,1,1\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndata:\n  order_lines: {path: lines.csv}\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # a caller's own key must not make the demo's printed curls (key demo-key) answer 401
    env = {**os.environ, "DEALERML_HOME": str(tmp_path / "home"), "DEALERML_SERVE_MODELS": "churn",
           "DEALERML_API_KEYS": "mine-0000:*"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # `dealerml serve` refuses a home without a store or a champion: a churn champion in the registry
    # whose files are not there starts a service that stays unready
    code = ("from training import tracking\n"
            "c = tracking._configure()\n"
            "c.create_registered_model('dealerml-churn')\n"
            "c.create_model_version('dealerml-churn', source='file:///nonexistent/mlruns/m/artifacts')\n"
            "c.set_registered_model_alias('dealerml-churn', 'champion', '1')\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    demo = subprocess.Popen([sys.executable, "-c", f"from training import demo; demo._serve_and_show({str(cfg)!r}, {port})"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _alive(url) and time.monotonic() < deadline and demo.poll() is None:
            time.sleep(0.5)
        assert _alive(url), "dealerml serve did not start"
        assert httpx.get(f"{url}/model_info", headers={"X-API-Key": "demo-key"}, timeout=10).status_code == 200
        assert httpx.get(f"{url}/model_info", headers={"X-API-Key": "mine-0000"}, timeout=10).status_code == 401
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) is not None
        deadline = time.monotonic() + 30
        while _alive(url) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(url), "the service outlived the demo"
    finally:
        if demo.poll() is None:
            demo.kill()
