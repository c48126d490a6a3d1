"""What the operator who runs the service sees, against a real ``bentoml serve`` (churn only, small).

* A champion promoted (or rolled back) while the service runs: the service keeps the version it
  loaded at start-up; ``/model_info`` and the log say the registry's champion moved and that a
  restart serves it, and a restart does.
* ``/metrics`` keeps one series per route: paths that are not routes count as ``endpoint="other"``
  (each made-up path was its own series, without bound).
* No API keys configured: the service fails closed (401) and stays unready.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from conftest import in_env

from serving.devserver import LocalServer, prepare_home
from serving.schemas import ModelStatus

pytestmark = pytest.mark.slow

KEY = "ops-test-key-01"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    h = tmp_path_factory.mktemp("ops-home")
    config = prepare_home(h, n_accounts=120, n_skus=12, models=("churn",))
    return h, config


def _env(h: Path, config: Path, **extra: str) -> dict[str, str]:
    return {"DEALERML_HOME": str(h), "DEALERML_CONFIG": str(config), "DEALERML_API_KEYS": f"{KEY}:*",
            "DEALERML_SERVE_MODELS": "churn", **extra}


def _info(srv) -> dict:
    r = httpx.get(srv.url + "/model_info", headers={"X-API-Key": KEY}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["models"][0]


def _in_home(h: Path):
    """``$DEALERML_HOME=h`` (and no ``$MLFLOW_TRACKING_URI``) for in-process registry and CLI calls."""
    return in_env(DEALERML_HOME=str(h), MLFLOW_TRACKING_URI=None)


def _promote_a_copy(h: Path) -> str:
    """Register a copy of the churn champion and point the champion alias at it, as promote does
    (in-process: the service sees the registry, not which process wrote it)."""
    from training import tracking

    with _in_home(h):
        est, info = tracking.load_model("dealerml-churn")
        with tracking.training_run("churn", run_name="ops-promote") as run:
            run.log_model(est, predict_method="predict_proba", metadata=info.metadata)
            run.register("dealerml-churn")
        tracking.set_alias("dealerml-churn", "champion", run.registered[0][1])
    return str(run.registered[0][1])


def test_metrics_keep_one_series_per_route_whatever_paths_are_sent(home):
    h, config = home
    with LocalServer(env=_env(h, config), log_path=h / "server-metrics.log") as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for i in range(40):
                c.get(f"/probe-{i}")  # no key: 401
                c.get(f"/x/{i}", headers={"X-API-Key": KEY})  # a key: 404
            assert c.post("/churn_scores", json={"account_ids": ["D00001"]},
                          headers={"X-API-Key": KEY}).status_code in (200, 404)
            # a trailing slash is served as the route (677802d) and counted under it: BentoML's metrics
            # middleware labels the path before the rewrite, so these were endpoint="other"
            assert c.post("/churn_scores/", json={"account_ids": ["D00001"]},
                          headers={"X-API-Key": KEY}).status_code in (200, 404)
            assert c.get("/model_info//", headers={"X-API-Key": KEY}).status_code == 200
            assert c.get("/model_info/", headers={"X-API-Key": KEY}, params={"x": "1"}).status_code == 400
            assert c.get("/model_infox/", headers={"X-API-Key": KEY}).status_code == 404  # not a route: other
            text = c.get("/metrics").text
    endpoints = set(re.findall(r'bentoml_service_request_total\{endpoint="([^"]*)"', text))
    assert not any(e.startswith(("/probe-", "/x/")) for e in endpoints), sorted(endpoints)[:10]
    assert endpoints <= {"/forecast", "/safety_stock", "/churn_scores", "/churn_alerts", "/dealer_scores",
                         "/model_info", "/livez", "/readyz", "/metrics", "/healthz", "/", "/docs.json",
                         "/schema.json", "other"}, endpoints

    def count(endpoint: str, code: int) -> float:
        m = re.search(rf'bentoml_service_request_total\{{endpoint="{re.escape(endpoint)}",http_response_code="{code}"'
                      r'[^}]*\} ([0-9.e+]+)', text)
        return float(m.group(1)) if m else 0.0

    assert count("other", 401) == 40 and count("other", 404) == 41
    assert count("other", 200) == count("other", 400) == 0
    assert count("/churn_scores", 200) + count("/churn_scores", 404) == 2
    assert count("/model_info", 200) == 1 and count("/model_info", 400) == 1
    assert not any(e.endswith("/") and e != "/" for e in endpoints), sorted(endpoints)
    assert 'bentoml_service_request_duration_seconds_count{endpoint="/churn_scores"' in text


def test_two_deployments_of_one_home_each_count_their_own_requests(home):
    """Two ``dealerml serve`` of one DEALERML_HOME (``--models churn`` beside ``--models demand``, another
    port): both took BENTOML_HOME=$DEALERML_HOME/bentoml, whose metrics directory BentoML empties when a
    service starts. The first one's /metrics then dropped its counts, never counted its own requests again
    and reported the second one's as its own."""
    h, config = home

    def churn_200s(srv) -> float:
        text = httpx.get(srv.url + "/metrics", timeout=30).text
        m = re.search(r'bentoml_service_request_total\{endpoint="/churn_scores",http_response_code="200"[^}]*\} '
                      r'([0-9.e+]+)', text)
        return float(m.group(1)) if m else 0.0

    def ask(srv, n: int) -> None:
        for _ in range(n):
            r = httpx.post(srv.url + "/churn_scores", json={"account_ids": ["D00001"]}, headers={"X-API-Key": KEY},
                           timeout=30)
            assert r.status_code == 200, r.text

    first = LocalServer(env=_env(h, config), log_path=h / "server-first.log", via_cli=True)
    second = LocalServer(env=_env(h, config), log_path=h / "server-second.log", via_cli=True)
    for srv in (first, second):
        srv.env.pop("BENTOML_HOME")  # an operator's shell: dealerml serve picks it
    with first:
        ask(first, 3)
        assert churn_200s(first) == 3
        with second:
            ask(first, 2)
            ask(second, 4)
            assert churn_200s(first) == 5  # was 0: its counts gone, its new requests not counted
            assert churn_200s(second) == 4


def test_no_api_keys_fails_closed_and_stays_unready(home):
    """A deployment whose key secret was not mounted answered 401 to everything and was ready, so
    a rolling update replaced working pods with it."""
    h, config = home
    env = _env(h, config)
    env["DEALERML_API_KEYS"] = ""
    with LocalServer(env=env, wait_ready=False, log_path=h / "server-nokeys.log") as srv:
        deadline = time.monotonic() + 60
        loaded = re.compile(r"model dealerml-churn version \d+ \(alias champion, run \w+\) ready in")
        while not loaded.search(srv.log_text()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert loaded.search(srv.log_text()), srv.log_tail()  # the model loaded ...
        assert httpx.get(srv.url + "/readyz").status_code == 503  # ... but without keys it is not ready
        assert httpx.get(srv.url + "/livez").status_code == 200
        r = httpx.post(srv.url + "/churn_scores", json={"account_ids": ["D00001"]}, headers={"X-API-Key": "anything-1"})
        assert r.status_code == 401
        assert "service stays UNREADY: no API keys are configured (DEALERML_API_KEYS or DEALERML_API_KEYS_FILE)" in \
            srv.log_text()
        assert "service READY" not in srv.log_text()  # the loader said so once the models were in



def test_a_bad_worker_count_keeps_one_worker_unready_naming_the_variable(home):
    """bentoml serve with DEALERML_SERVE_WORKERS=two died at import with int()'s ValueError traceback."""
    h, config = home
    with LocalServer(env=_env(h, config, DEALERML_SERVE_WORKERS="two"), wait_ready=False,
                     log_path=h / "server-workers.log") as srv:
        assert httpx.get(srv.url + "/livez").status_code == 200
        assert httpx.get(srv.url + "/readyz").status_code == 503
        assert ("service stays UNREADY: $DEALERML_SERVE_WORKERS must be a whole number of worker processes between 1 "
                "and 64 (each loads the champions); got 'two'") in srv.log_text()
        assert "Traceback" not in srv.log_text()


# ----------------------------------------------------------------- last: moves the champion
def test_a_promote_while_serving_is_reported_and_a_restart_serves_it(home):
    h, config = home
    env = _env(h, config, DEALERML_SERVE_CHAMPION_CHECK_SECONDS="1")
    with LocalServer(env=env, log_path=h / "server-ops.log") as srv:
        info = _info(srv)
        assert info["version"] == "1" and info["registry_champion"] == "1" and info["stale"] is False
        assert ModelStatus.model_validate(info).model_dump().keys() == info.keys()  # the published schema: all of it
        new = _promote_a_copy(h)
        assert new == "2"
        deadline = time.monotonic() + 30
        while not _info(srv)["stale"] and time.monotonic() < deadline:
            time.sleep(0.5)
        info = _info(srv)
        assert info["stale"] is True and info["version"] == "1" and info["registry_champion"] == "2"
        assert info["stale_reason"] == ("the champion of dealerml-churn is now version 2; this service still serves "
                                        "version 1, loaded at start-up (models are read once): restart the service "
                                        "to serve version 2")
        assert srv.log_text().count("the champion of dealerml-churn is now version 2") == 1  # once, not per check
        assert httpx.get(srv.url + "/readyz").status_code == 200  # still serving: not a readiness problem
    with LocalServer(env=env, log_path=h / "server-ops-restart.log", via_cli=True) as srv:  # the documented fix
        info = _info(srv)
        assert info["version"] == "2" and info["registry_champion"] == "2" and info["stale"] is False
        out = _rollback(h)  # and the CLI that moves the champion says what a running service does
        assert "dealerml-churn: champion moved back from v2 to v1" in out
        said = " ".join(out.split())
        assert ("a running dealerml service keeps serving the dealerml-churn version it loaded at start-up until it "
                "is restarted (models are read once), then serves v1") in said
        assert "while it serves another version than v1 (such as v2), /model_info shows it as stale" in said
        deadline = time.monotonic() + 30
        while not _info(srv)["stale"] and time.monotonic() < deadline:
            time.sleep(0.5)
        info = _info(srv)
        assert info["stale"] is True and info["version"] == "2" and info["registry_champion"] == "1"


def _rollback(h: Path) -> str:
    """``dealerml rollback churn`` on ``h``, in-process (what it prints is checked, not the process)."""
    from typer.testing import CliRunner

    from training.cli import app

    res = CliRunner().invoke(app, ["rollback", "churn"], env={"DEALERML_HOME": str(h), "MLFLOW_TRACKING_URI": None})
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    return res.stdout


def test_a_rollback_to_the_version_the_service_serves_is_said_so_and_it_is_not_stale(home, tmp_path):
    """rollback said "a running dealerml service keeps serving dealerml-churn v2 until it is restarted" (the
    version rolled back from) to an operator whose service, started on v1 before the promote to v2, still
    served v1 and, once the check had run, was not stale. It now says the service serves what it loaded at
    start-up, and what /model_info shows either way."""
    import shutil

    h, config = home
    shutil.copy(h / "mlflow.db", tmp_path / "mlflow.db")  # the same model files, a registry of its own
    env = _env(tmp_path, config, DEALERML_SERVE_CHAMPION_CHECK_SECONDS="1")
    with LocalServer(env=env, log_path=tmp_path / "server-rollback.log") as srv:
        started_on = _info(srv)["version"]
        new = _promote_a_copy(tmp_path)
        deadline = time.monotonic() + 30
        while not _info(srv)["stale"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _info(srv)["stale"] is True
        said = " ".join(_rollback(tmp_path).split())
        assert f"dealerml-churn: champion moved back from v{new} to v{started_on}" in said
        assert f"keeps serving dealerml-churn v{new}" not in said
        assert ("a running dealerml service keeps serving the dealerml-churn version it loaded at start-up until it "
                f"is restarted (models are read once), then serves v{started_on}") in said
        assert f"one started on v{started_on} serves it and is not stale" in said
        deadline = time.monotonic() + 30
        while _info(srv)["stale"] and time.monotonic() < deadline:
            time.sleep(0.5)
        info = _info(srv)
        assert info["version"] == info["registry_champion"] == started_on and info["stale"] is False, info


def test_a_champion_moved_while_the_service_starts_is_the_one_served_and_not_stale(home, tmp_path, monkeypatch):
    """The loader read the champion aliases first, then the order book (minutes on a real book), then each
    champion: a promote in between was loaded, yet /model_info called it stale and told the operator to
    restart 'to serve version <the old one>' until the first check (for ever with the check at 0)."""
    import shutil

    from serving import loader
    from serving.loader import load_all, new_state
    from training import tracking

    h, config = home
    shutil.copy(h / "mlflow.db", tmp_path / "mlflow.db")  # the same model files, a registry of its own
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = tracking._configure()
    champion = client.get_model_version_by_alias("dealerml-churn", "champion")
    other = client.create_model_version("dealerml-churn", source=champion.source, run_id=champion.run_id,
                                        tags=dict(champion.tags))
    read_book = loader._load_book

    def promote_while_the_book_loads(cfg_file):
        out = read_book(cfg_file)
        client.set_registered_model_alias("dealerml-churn", "champion", other.version)  # what promote does
        return out

    monkeypatch.setattr(loader, "_load_book", promote_while_the_book_loads)
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    load_all(st, str(config))
    d = st.slots["churn"].describe()
    assert d["status"] == "ready" and d["version"] == str(other.version), d
    assert d["registry_champion"] == str(other.version) and d["stale"] is False and d["stale_reason"] is None, d
