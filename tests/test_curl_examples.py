"""README "Bring your own data" step 5: `curl_examples(url, key)` prints a working curl per endpoint of
a running service. With a demand champion keyed by SKU alone (`demand.levels: [sku]`, as
experiments/online_retail.yaml has it) it posted `{"location": [null]}` to /forecast, got a 400 and
raised KeyError('series'): the function the README points a new user at crashed on the README's own
example config. /model_info now names a few served series (`summary.series_examples`) to start from.

Real service: a tiny `train demand` into a real MLflow store, `DealerML.to_asgi()` served by uvicorn
on a real port, every printed curl line run with curl.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import threading
import time

import httpx
import pytest
from conftest import write_config

KEY = "curl-admin-key-0001"


@pytest.fixture(scope="module")
def url(synthetic_config, tmp_path_factory):
    import uvicorn
    from _serving_app import service_app
    from typer.testing import CliRunner

    from training.cli import app

    tmp = tmp_path_factory.mktemp("curl")
    demand = {"freq": "W", "horizon": 4, "windows": 1, "models": ["SeasonalNaive", "LightGBM"],
              "lgbm": {"n_estimators": 20}, "selection_windows": 1, "top_n": 5, "levels": ["sku"],
              "n_sims": 500, "lead_time_days": 7.0}
    cfg = write_config(synthetic_config, tmp / "sku_only.yaml", demand=demand)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        res = CliRunner().invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay"])
        assert res.exit_code == 0, res.output
        mp.setenv("DEALERML_CONFIG", str(cfg))
        mp.setenv("DEALERML_API_KEYS", f"{KEY}:*")
        mp.setenv("DEALERML_SERVE_MODELS", "demand")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(service_app(), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"service not ready: {httpx.get(f'{base}/readyz', headers={'X-API-Key': KEY}).text}")
        try:
            yield base
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def test_model_info_names_served_series(url):
    info = httpx.get(f"{url}/model_info", headers={"X-API-Key": KEY}).json()
    summary = next(m["summary"] for m in info["models"] if m["name"] == "dealerml-demand")
    assert summary["filters"] == {}  # keyed by sku alone: no location filter to start from
    ids = summary["series_examples"]
    assert 1 <= len(ids) <= 3
    got = httpx.post(f"{url}/forecast", headers={"X-API-Key": KEY}, json={"series_ids": ids, "horizon": 1})
    assert got.status_code == 200 and [s["unique_id"] for s in got.json()["series"]] == ids


def test_every_printed_curl_answers_200_for_a_sku_keyed_champion(url):
    from serving.examples import curl_examples

    lines = [x for x in curl_examples(url, KEY).splitlines() if x.startswith("curl ")]
    paths = [x.rsplit("'", 2)[-2].split("?")[0].removeprefix(url) for x in lines]
    assert paths.count("/forecast") == 2 and "/safety_stock" in paths and "/model_info" in paths
    assert any('"sku":[' in x for x in lines)  # the filter example uses the filter this champion has
    for line in lines:
        out = subprocess.run([*shlex.split(line), "-o", "/dev/null", "-w", "%{http_code}"],
                             capture_output=True, text=True, timeout=60)
        assert out.stdout == "200", (line, out.stdout, out.stderr)
