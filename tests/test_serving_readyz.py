"""``/readyz`` is open (probes call it without a key), and its 503 named why the service is not ready
with the load error's text: file paths, store addresses and the config file went to anyone who asked.
Now the reasons are shown only with a valid API key (any scope); without one - or with an invalid one,
which is not a 401 there, so a probe configured with an old key keeps working - the 503 keeps each
model's status and version and the names of the settings, and says that a valid key shows the rest.
"""

from __future__ import annotations

import socket

import pytest

from serving.state import ModelSlot, ServingState

KEY = "s11-readyz-key-01"  # churn scope only: it shows churn's reasons, not the dealer ranking's (session 12)
ADMIN = "s11-readyz-adm-01"
PATH = "/srv/dealerml/mlruns/7/0f3c9a/artifacts/estimator/booster.txt"
STORE = "postgresql://mlflow:pw-4711@db.internal.example:5432/mlflow"
LEAKS = ("/srv/dealerml", "mlruns", "db.internal", "postgresql", "pw-4711", "sqlite", "127.0.0.1", "config.yaml",
         "booster", "OSError", "ConfigError", "promote")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    return port


@pytest.fixture()
def app_env(tmp_path, monkeypatch):
    """An in-process service whose registry cannot be reached (its URL has a password and a port) and
    whose config file lives in a directory named like an internal path."""
    port = _closed_port()
    secret_dir = tmp_path / "etc-dealerml-internal"
    secret_dir.mkdir()
    env = {"DEALERML_HOME": str(tmp_path / "home"), "DEALERML_CONFIG": str(secret_dir / "config.yaml"),
           "DEALERML_SERVE_MODELS": "churn,dealers", "DEALERML_API_KEYS": f"{KEY}:churn;{ADMIN}:*",
           "MLFLOW_TRACKING_URI": f"http://ops:s3cr3t@127.0.0.1:{port}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return port, secret_dir


def _client():
    from _serving_app import service_app
    from starlette.testclient import TestClient

    return TestClient(service_app(), raise_server_exceptions=False)


def _started(c):
    import bentoml

    svc = bentoml.get_current_service()
    svc._loader.join(timeout=60)
    assert not svc._loader.is_alive()
    return svc


def test_readyz_shows_the_reasons_only_to_a_valid_key(app_env):
    port, secret_dir = app_env
    with _client() as c:
        svc = _started(c)
        # the registry cannot be reached: its address is the error of both models
        anon = c.get("/readyz")
        assert anon.status_code == 503 and anon.headers["content-type"] == "application/json"
        assert anon.headers["cache-control"] == "no-store"
        body = anon.json()
        assert body["models"] == [
            {"name": "dealerml-churn", "status": "failed", "version": None, "reason": "failed to load"},
            {"name": "dealerml-dealers", "status": "failed", "version": None, "reason": "failed to load"}]
        assert body["error"] == "not ready: dealerml-churn, dealerml-dealers: failed to load"
        assert body["settings"] == [] and body["ready"] is False
        from serving.service import READYZ_KEY_SHOWS

        assert body["detail"] == READYZ_KEY_SHOWS
        assert str(port) not in anon.text and "127.0.0.1" not in anon.text and "http" not in anon.text
        full = c.get("/readyz", headers={"X-API-Key": KEY})
        assert full.status_code == 503 and full.json()["detail"] == READYZ_KEY_SHOWS  # not every reason: says how
        assert full.json()["models"][0]["reason"].startswith(
            f"failed to load: cannot read the MLflow registry at http://ops:***@127.0.0.1:{port}")
        assert full.json()["models"][1] == body["models"][1]  # dealers: not in a churn key's scopes
        assert "s3cr3t" not in full.text
        admin = c.get("/readyz", headers={"X-API-Key": ADMIN}).json()
        assert "detail" not in admin and all(m["reason"].startswith("failed to load: cannot read the MLflow")
                                              for m in admin["models"])

        # what a model that fails to load says: the version, a file path, a store address
        st = svc.state
        st.slots["churn"].version = "4"
        st.fail("churn", f"OSError: cannot read {PATH} (store {STORE})")
        st.slots["churn"].hint = "promote or roll back to another version (dealerml promote / rollback churn)"
        st.fail("dealers", "ConfigError: no model version of 'dealerml-dealers' has alias 'champion' in "
                           f"sqlite:///{secret_dir}/mlflow.db; train one", unregistered=True)
        public = [{"name": "dealerml-churn", "status": "failed", "version": "4", "reason": "version 4 failed to load"},
                  {"name": "dealerml-dealers", "status": "not_registered", "version": None,
                   "reason": "not registered: no version has the champion alias"}]
        bad_keys = [{}, {"X-API-Key": "not-a-key-at-all"}, {"Authorization": "Bearer not-a-key-at-all"},
                    {"Authorization": "Basic b3BzOnMzY3IzdA=="}, {"Authorization": KEY},  # no scheme: not read
                    {"X-API-Key": ""}]
        answers = [c.get("/readyz", headers=h) for h in bad_keys]
        for h, r in zip(bad_keys, answers, strict=True):
            assert r.status_code == 503, (h, r.status_code)  # an invalid key is no 401 for a probe
            assert r.json()["models"] == public, h
            assert r.text == answers[0].text, h  # the same answer as without a key
            leaked = [w for w in (*LEAKS, str(secret_dir)) if w in r.text]
            assert not leaked, (h, leaked)
        assert answers[0].json()["error"] == ("not ready: dealerml-churn: version 4 failed to load; dealerml-dealers: "
                                              "not registered: no version has the champion alias")
        head = c.head("/readyz", headers={"X-API-Key": "not-a-key-at-all"})
        assert head.status_code == 503 and head.content == b""

        for h in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {ADMIN}"}):  # churn's reasons: both keys
            r = c.get("/readyz", headers=h)
            assert r.status_code == 503 and r.headers["cache-control"] == "no-store"
            models = r.json()["models"]
            assert models[0] == {"name": "dealerml-churn", "status": "failed", "version": "4",
                                 "reason": (f"version 4 failed to load: OSError: cannot read {PATH} (store "
                                            "postgresql://mlflow:***@db.internal.example:5432/mlflow); promote or "
                                            "roll back to another version (dealerml promote / rollback churn)")}
            assert "pw-4711" not in r.text
            if h.get("X-API-Key") == KEY:  # the dealer ranking is not in a churn key's scopes: its public reason
                assert models[1] == public[1] and str(secret_dir) not in r.text and "detail" in r.json()
            else:
                assert models[1]["status"] == "not_registered" and f"sqlite:///{secret_dir}/mlflow.db" in models[1]["reason"]
                assert "detail" not in r.json()

        # /model_info is unchanged: a valid key sees each model's error, no key is a 401
        info = c.get("/model_info", headers={"X-API-Key": KEY})
        assert info.status_code == 200 and info.json()["ready"] is False
        assert [m["error"] for m in info.json()["models"]][0] == f"OSError: cannot read {PATH} (store {STORE})"
        assert c.get("/model_info").status_code == 401
        assert c.get("/model_info", headers={"X-API-Key": "not-a-key-at-all"}).status_code == 401

        # ready: 200 and a newline, with or without a key, as before
        st.succeed("churn", backend=object())
        st.succeed("dealers", backend=object())
        for h in ({}, {"X-API-Key": "not-a-key-at-all"}, {"X-API-Key": KEY}):
            r = c.get("/readyz", headers=h)
            assert r.status_code == 200 and r.content == b"\n" and "cache-control" not in r.headers
            assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_readyz_without_a_key_names_the_bad_settings_not_their_values(app_env, monkeypatch):
    monkeypatch.setenv("DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS", "-1")
    monkeypatch.setenv("DEALERML_SERVE_MAX_BODY_BYTES", "12")
    with _client() as c:
        _started(c)
        anon = c.get("/readyz", headers={"X-API-Key": "not-a-key-at-all"}).json()
        scoped = c.get("/readyz", headers={"X-API-Key": KEY}).json()
        full = c.get("/readyz", headers={"X-API-Key": ADMIN}).json()
    assert scoped["settings"] == anon["settings"]  # the settings' texts: an admin key only
    assert anon["settings"] == ["DEALERML_SERVE_MAX_BODY_BYTES", "DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS"]
    assert anon["error"] == ("not ready: dealerml-churn, dealerml-dealers: failed to load; invalid or missing "
                             "setting(s): DEALERML_SERVE_MAX_BODY_BYTES, DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS")
    assert full["settings"] == ["$DEALERML_SERVE_MAX_BODY_BYTES must be a whole number of bytes between 1,024 and "
                                "1,073,741,824; got '12'",
                                "$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS must be a number of seconds between 0.1 and "
                                "300; got '-1'"]


def test_readyz_of_a_service_without_keys_says_where_the_reasons_are(app_env, monkeypatch):
    monkeypatch.setenv("DEALERML_API_KEYS", "")
    with _client() as c:
        _started(c)
        answers = [c.get("/readyz", headers=h) for h in ({}, {"X-API-Key": KEY})]  # no key is valid
    from serving.service import READYZ_KEYS_NONE

    for r in answers:
        assert r.status_code == 503 and r.text == answers[0].text
        body = r.json()
        assert body["settings"] == ["DEALERML_API_KEYS", "DEALERML_API_KEYS_FILE"]
        assert body["detail"] == READYZ_KEYS_NONE and "127.0.0.1" not in r.text


def test_setting_names_keep_known_names_only():
    from serving.service import _setting_names

    cfg_error = ("/etc/dealerml-internal/prod.yaml: invalid 'serving' section\n"
                 "  key 'serving.max_body_bytes': Input should be greater than or equal to 1024; got 5\n"
                 "  key 'serving.secret_thing': unknown key")
    assert _setting_names(cfg_error, "request limits") == ["serving.max_body_bytes"]
    assert _setting_names("serving.nope at /srv/x.yaml", "request limits") == ["request limits"]
    assert _setting_names("DEALERML_API_KEYS_FILE=/run/secrets/DEALERML_KEYS: cannot read the keys file",
                          "DEALERML_API_KEYS") == ["DEALERML_API_KEYS_FILE"]


def test_public_readiness_of_waiting_loading_and_failed_models():
    st = ServingState([ModelSlot("demand", "dealerml-demand"), ModelSlot("churn", "dealerml-churn")], "cfg.yaml")
    st.phase = "the service is reading the order book of config /etc/dealerml/prod.yaml"
    assert st.not_ready(detail=False) == [
        {"name": "dealerml-demand", "status": "pending", "version": None, "reason": "waiting to load"},
        {"name": "dealerml-churn", "status": "pending", "version": None, "reason": "waiting to load"}]
    st.phase = None
    st.start("demand")
    st.slots["demand"].version = "4"
    st.slots["demand"].loading_since -= 12.2
    assert st.not_ready(detail=False)[0] == {"name": "dealerml-demand", "status": "loading", "version": "4",
                                             "reason": "loading version 4 for 12 s"}
    st.fail("demand", f"OSError: cannot read {PATH}")
    assert st.not_ready(detail=False)[0] == {"name": "dealerml-demand", "status": "failed", "version": "4",
                                             "reason": "version 4 failed to load"}
    assert st.not_ready()[0]["reason"] == f"version 4 failed to load: OSError: cannot read {PATH}"  # default: detail
