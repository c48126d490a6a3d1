"""What the operator sees when the service is not ready or a dependency misbehaves (session 11).

* ``/readyz`` names each model that is not ready and why (waiting / loading / failed with the version and
  error / not registered) and each setting that keeps the service unready, with passwords hidden; it was
  one sentence for every cause. The error texts (paths, addresses) only with a valid key: see
  tests/test_serving_readyz.py.
* ``/model_info`` answers at once while the alerts database takes connections and never answers (it
  waited ~9 s for a worker thread), and says what the last read of the alerts database found.
* A champion whose files cannot be loaded is named with its version and what to do; it is not retried
  while it stays the champion, and a champion moved to another version (rollback, promote) is loaded by
  the running service instead of only after a restart.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import in_env

from serving.devserver import LocalServer, prepare_home
from serving.state import ModelSlot, ServingState

pytestmark = pytest.mark.slow  # a trained home, in-process services and a real bentoml serve (~90 s)

KEY = "s11-ops-key-0001"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home with a trained churn champion (version 1) and a second version, a copy of it (own files)."""
    h = tmp_path_factory.mktemp("s11-home")
    config = prepare_home(h, n_accounts=120, n_skus=12, models=("churn",))
    from training import tracking

    # in-process: a python -c child paid the interpreter and the imports again
    with in_env(DEALERML_HOME=str(h), MLFLOW_TRACKING_URI=None):
        est, info = tracking.load_model("dealerml-churn")
        with tracking.training_run("churn", run_name="s11-copy") as run:
            run.log_model(est, predict_method="predict_proba", metadata=info.metadata)
            run.register("dealerml-churn")
    assert str(run.registered[0][1]) == "2", run.registered
    return h, config


@pytest.fixture()
def registry(home, monkeypatch):
    from training import tracking

    h, _ = home
    monkeypatch.setenv("DEALERML_HOME", str(h))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = tracking._configure()
    client.set_registered_model_alias("dealerml-churn", "champion", "1")
    yield client
    client.set_registered_model_alias("dealerml-churn", "champion", "1")


def _app_readyz(env: dict[str, str], monkeypatch, until: str,
                headers: dict[str, str] | None = None) -> tuple[httpx.Response, httpx.Response, dict | None]:
    """/readyz of an in-process service started with ``env``, once its body contains ``until``: sent with
    ``headers``, sent without a key, and the service's full answer (what a valid key is shown)."""
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with TestClient(service_app()) as c:
        deadline = time.monotonic() + 60
        while True:
            r = c.get("/readyz", headers=headers or {})
            if until in r.text or time.monotonic() > deadline:
                return r, c.get("/readyz"), bentoml.get_current_service().not_ready()
            time.sleep(0.1)


# ----------------------------------------------------------------- /readyz
def test_readyz_names_the_model_that_is_not_registered_and_the_missing_keys(home, registry, monkeypatch):
    """churn is loaded; dealers has no champion; no API key is configured. BentoML answered 503 'Service
    is not ready because .__is_ready__() returns False.' for all of that."""
    h, config = home
    r, _, body = _app_readyz({"DEALERML_CONFIG": str(config), "DEALERML_SERVE_MODELS": "churn,dealers",
                              "DEALERML_API_KEYS": ""}, monkeypatch, until="not_registered")
    assert r.status_code == 503 and r.headers["content-type"] == "application/json"
    from serving.service import NO_KEYS, READYZ_KEYS_NONE

    # no key is configured, so none can be valid: the probe sees the statuses and the setting names only
    assert r.json() == {"ready": False, "models": [{"name": "dealerml-dealers", "status": "not_registered",
                                                   "version": None,
                                                   "reason": "not registered: no version has the champion alias"}],
                        "settings": ["DEALERML_API_KEYS", "DEALERML_API_KEYS_FILE"],
                        "error": ("not ready: dealerml-dealers: not registered: no version has the champion alias; "
                                  "invalid or missing setting(s): DEALERML_API_KEYS, DEALERML_API_KEYS_FILE"),
                        "detail": READYZ_KEYS_NONE}
    assert str(h) not in r.text and "mlruns" not in r.text

    where = body["models"][0]["reason"].split(" in ", 1)[1].split(";", 1)[0]
    assert body["models"] == [{  # churn is ready: not listed
        "name": "dealerml-dealers", "status": "not_registered", "version": None,
        "reason": (f"not registered: no model version of 'dealerml-dealers' has alias 'champion' in {where}; train one "
                   "(dealerml train dealers ...) or promote one (dealerml promote dealers ...), or leave dealers out of "
                   "this deployment (dealerml serve --models, $DEALERML_SERVE_MODELS or serving.models); restart the "
                   "service once there is a champion ($DEALERML_SERVE_CHAMPION_CHECK_SECONDS=0: the alias is not "
                   "re-read)")}]  # the tests' check interval is 0 (conftest); 60 s by default, see the test below
    assert body["settings"] == [NO_KEYS] and body["ready"] is False
    assert body["error"] == f"not ready: dealerml-dealers: {body['models'][0]['reason']}; {NO_KEYS}"


def test_readyz_of_an_unreachable_registry_says_so_once_with_the_password_hidden(home, monkeypatch):
    h, config = home
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    r, anon, _ = _app_readyz({"DEALERML_HOME": str(h), "DEALERML_CONFIG": str(config), "DEALERML_API_KEYS": f"{KEY}:*",
                              "DEALERML_SERVE_MODELS": "churn,dealers",
                              "MLFLOW_TRACKING_URI": f"http://ops:s3cr3t@127.0.0.1:{port}"},
                             monkeypatch, until="failed", headers={"X-API-Key": KEY})
    assert r.status_code == 503 and "s3cr3t" not in r.text
    assert anon.status_code == 503 and f"127.0.0.1:{port}" not in anon.text and "s3cr3t" not in anon.text
    assert anon.json()["error"] == "not ready: dealerml-churn, dealerml-dealers: failed to load"
    body = r.json()
    assert [(m["name"], m["status"]) for m in body["models"]] == [("dealerml-churn", "failed"),
                                                                   ("dealerml-dealers", "failed")]
    assert body["error"].startswith(f"not ready: dealerml-churn, dealerml-dealers: failed to load: cannot read the "
                                    f"MLflow registry at http://ops:***@127.0.0.1:{port}")  # one cause, said once
    assert body["settings"] == []


def test_readiness_of_waiting_loading_and_failed_models():
    st = ServingState([ModelSlot("demand", "dealerml-demand"), ModelSlot("churn", "dealerml-churn")], "cfg.yaml")
    st.phase = "the service is reading the order book of config cfg.yaml"
    assert st.not_ready() == [
        {"name": "dealerml-demand", "status": "pending", "version": None,
         "reason": "waiting to load: the service is reading the order book of config cfg.yaml"},
        {"name": "dealerml-churn", "status": "pending", "version": None,
         "reason": "waiting to load: the service is reading the order book of config cfg.yaml"}]
    st.phase = None
    st.start("demand")
    st.slots["demand"].version = "4"
    st.slots["demand"].loading_since -= 12.2
    assert st.not_ready()[0] == {"name": "dealerml-demand", "status": "loading", "version": "4",
                                 "reason": "loading version 4 for 12 s"}
    assert st.not_ready()[1]["reason"] == "waiting for the models before it to load"
    st.fail("demand", "OSError: cannot read postgresql://crm:pw@db:5432/crm")
    assert st.not_ready()[0] == {"name": "dealerml-demand", "status": "failed", "version": "4",
                                 "reason": "version 4 failed to load: OSError: cannot read postgresql://crm:***@db:5432/crm"}
    st.succeed("demand", backend="D")
    st.succeed("churn", backend="C")
    assert st.not_ready() == [] and st.ready


# ----------------------------------------------------------------- /model_info with a silent alerts database
def test_model_info_answers_at_once_while_the_alerts_database_never_answers(home, registry):
    """60 GET /churn_alerts against a database that takes the connection and never answers held every worker
    thread for the connect timeout (10 s; here too, so a loaded CI machine still asks /model_info while the first read waits), and /model_info waited for one of them."""
    h, config = home
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)  # the kernel completes the handshake; nobody ever answers
    port = silent.getsockname()[1]
    cfg = yaml.safe_load(Path(config).read_text())
    cfg.setdefault("serving", {})["alerts_target"] = f"postgresql+psycopg://crm:s3cr3t@127.0.0.1:{port}/crm?connect_timeout=10"
    silent_cfg = Path(config).with_name("silent-alerts.yaml")
    silent_cfg.write_text(yaml.safe_dump(cfg))
    env = {"DEALERML_HOME": str(h), "DEALERML_CONFIG": str(silent_cfg), "DEALERML_API_KEYS": f"{KEY}:*",
           "DEALERML_SERVE_MODELS": "churn"}
    headers = {"X-API-Key": KEY}
    try:
        with LocalServer(env=env, log_path=h / "server-silent-alerts.log") as srv:
            before = httpx.get(srv.url + "/model_info", headers=headers, timeout=30).json()["models"][0]["summary"]
            codes: list[int] = []

            def ask() -> None:
                codes.append(httpx.get(srv.url + "/churn_alerts", headers=headers, timeout=60).status_code)

            askers = [threading.Thread(target=ask, daemon=True) for _ in range(60)]
            for t in askers:
                t.start()
            time.sleep(1.0)
            t0 = time.monotonic()
            r = httpx.get(srv.url + "/model_info", headers=headers, timeout=30)
            took = time.monotonic() - t0
            # not waiting for a worker thread held by the 10 s connect timeout; 5 s, not 1 s, so a loaded
            # machine (1.1-2.6 s at load ~11) does not fail it, while a blocked answer (~10 s) still does
            assert r.status_code == 200 and took < 5.0, took
            assert before["alerts_db"] == {"status": "not_read", "checked_at": None, "reading_for_s": None}
            during = r.json()["models"][0]["summary"]["alerts_db"]
            assert during["status"] == "not_read" and during["reading_for_s"] >= 0.5, during
            t0 = time.monotonic()
            assert httpx.get(srv.url + "/readyz", timeout=30).status_code == 200
            assert time.monotonic() - t0 < 5.0
            for t in askers:
                t.join(60)
            assert codes == [503] * 60
            after = httpx.get(srv.url + "/model_info", headers=headers, timeout=30).json()["models"][0]["summary"]
            assert after["alerts_db"]["status"] == "failing" and after["alerts_db"]["checked_at"], after
            assert after["alerts_db"]["reading_for_s"] is None and after["n_accounts"] == before["n_accounts"]
            assert "s3cr3t" not in r.text + srv.log_text()
    finally:
        silent.close()


# ----------------------------------------------------------------- a corrupt champion
def test_a_corrupt_champion_is_named_not_retried_and_a_moved_champion_is_loaded(home, registry, caplog, monkeypatch):
    """Version 2's model file is corrupt and it is the champion: the start-up fails naming it and what to
    do; the check does not load it again while it stays the champion; a rollback to version 1 is loaded
    by the running service (it stayed unready until a restart that /livez kept an orchestrator from doing)."""
    from serving.loader import load_all, new_state, watch_champions

    h, config = home
    monkeypatch.setenv("DEALERML_SERVE_CHAMPION_CHECK_SECONDS", "60")  # the service's default (0 in tests)
    source = str(registry.get_model_version_download_uri("dealerml-churn", "2"))  # file:///.../artifacts
    booster = Path(source.removeprefix("file://")) / "artifacts" / "estimator" / "booster.txt"
    assert booster.is_file(), source
    good = booster.read_bytes()
    booster.write_text("not a LightGBM model\n")
    try:
        registry.set_registered_model_alias("dealerml-churn", "champion", "2")
        st = new_state({"DEALERML_SERVE_MODELS": "churn"})
        with caplog.at_level(logging.INFO, logger="dealerml.serving.loader"):
            load_all(st, str(config))
            slot = st.slots["churn"]
            # the load error names the model, version and what the file is not (fe06304), LightGBM's words after
            assert slot.state == "failed" and slot.version == "2" and slot.error.startswith(
                "ConfigError: model dealerml-churn version 2: "), slot.error
            assert "is not a readable saved ChurnModel: " in slot.error
            hint = ("not retried while version 2 is the champion, as its files would fail alike: promote or roll back "
                    "to another version (dealerml promote / rollback churn); the service loads the new champion "
                    "within 60 s ($DEALERML_SERVE_CHAMPION_CHECK_SECONDS), or restart it")
            assert "(which failed to load)" not in hint
            assert st.not_ready() == [{"name": "dealerml-churn", "status": "failed", "version": "2",
                                       "reason": f"version 2 failed to load: {slot.error}; {hint}"}]
            assert (f"model dealerml-churn version 2 (alias champion) could not be loaded; service stays UNREADY: "
                    f"{slot.error}; {hint}") in caplog.messages
            stop = threading.Event()
            watcher = threading.Thread(target=watch_champions, args=(st, 0.2, None, stop, str(config)), daemon=True)
            watcher.start()
            try:
                time.sleep(1.5)  # several checks: the unchanged corrupt champion is not loaded again
                assert sum("could not be loaded" in m for m in caplog.messages) == 1 and slot.state == "failed"
                registry.set_registered_model_alias("dealerml-churn", "champion", "1")  # what rollback does
                deadline = time.monotonic() + 30
                while not st.ready and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                stop.set()
                watcher.join(30)
        assert st.ready and slot.version == "1" and slot.registry_champion == "1" and st.not_ready() == []
        assert ("the champion of dealerml-churn moved from version 2 (which failed to load) to version 1: loading it"
                in caplog.messages)
        assert slot.describe()["stale"] is False
    finally:
        booster.write_bytes(good)


def test_a_retry_that_meets_an_unreadable_order_book_waits_for_a_restart(home, registry, tmp_path, caplog):
    """The champion moved, but its config (here: gone) or order book cannot be read now: the model fails with
    that reason and is not retried at every check (each would read the book again and log it again)."""
    from serving.loader import retry_moved_champions

    st = ServingState([ModelSlot("churn", "dealerml-churn")], "cfg.yaml")
    st.start("churn")
    st.fail("churn", "LightGBMError: bad file")
    slot = st.slots["churn"]
    slot.version, slot.model_failed, slot.failed_champion, slot.registry_champion = "2", True, "2", "1"
    missing = str(tmp_path / "gone.yaml")
    with caplog.at_level(logging.INFO, logger="dealerml.serving.loader"):
        assert retry_moved_champions(st, missing) == ["churn"]
        assert slot.state == "failed" and slot.error.startswith(f"cannot use config {missing}")
        assert retry_moved_champions(st, missing) == []  # not again
    assert sum("cannot use config" in m for m in caplog.messages) == 1
