"""Wrong API keys are throttled per client address, and /model_info shows a key only the models its scopes cover.

* Any keyed path (and ``/readyz``, whose answer differs for a valid key) let a client try keys as fast as it
  liked: with 8-character keys, a brute-force risk. Now ``$DEALERML_SERVE_KEY_FAILURES`` (default 20) wrong
  keys from one address within ``$DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS`` (default 60) make every request
  of it that needs a key a 429 with ``Retry-After`` until the window ends, without the key being checked;
  ``/readyz`` answers it as to a request without a key; probes and ``/metrics`` are never throttled.
* ``/model_info`` (any valid key) showed every model's run, errors and alerts database, and the server's
  config path, to a key with the ``forecast`` scope only.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving.auth import KEY_SCOPES, APIKeyMiddleware, KeyFailureLimiter, client_address, parse_keys
from serving.settings import KeyFailureLimits, key_failure_limits
from training.errors import ConfigError

FC, CRM, ADMIN = "fc-key-000001", "crm-key-00001", "adm-key-000001"
RING = parse_keys(f"{FC}:forecast;{CRM}:churn,dealers;{ADMIN}:*")
WRONG = "wrong-key-0001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


DEFAULTS = KeyFailureLimits()


def _app(ring=RING, limits=DEFAULTS, clock=None):
    seen = []

    async def ok(request):
        seen.append(request.scope.get(KEY_SCOPES, "unset"))
        return JSONResponse({"path": request.url.path})

    routes = [Route(p, ok, methods=["GET", "POST"]) for p in
              ("/livez", "/healthz", "/readyz", "/metrics", "/forecast", "/churn_scores", "/model_info", "/other")]
    app = APIKeyMiddleware(Starlette(routes=routes), keyring=ring, limits=limits, clock=clock or Clock())
    return app, seen


def _call(app, path, key=None, host="192.0.2.10", method="GET", headers=None):
    async def go():
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            h = {"X-API-Key": key} if key is not None else {}
            return await c.request(method, path, headers={**h, **(headers or {})})

    return asyncio.run(go())


def test_wrong_keys_block_their_address_until_the_window_ends():
    clock = Clock()
    app, _ = _app(clock=clock)
    for i in range(20):  # the limit: each still a 401 saying the key matches none
        r = _call(app, "/forecast", WRONG, method="POST")
        assert r.status_code == 401 and r.json()["error"] == "missing or invalid API key", i
        clock.now += 1
    for key in (WRONG, FC, None):  # blocked: a good key, a wrong one and none alike, the key not checked
        r = _call(app, "/forecast", key, method="POST")
        assert r.status_code == 429, key
        assert r.headers["retry-after"] == "40"  # the window started at the first wrong key, 20 s ago
        assert r.json() == {"error": "too many wrong API keys from this address",
                            "detail": "20 requests from this address sent a key that matches no configured key "
                                      "within 60 s; requests that need a key are refused without checking it "
                                      "for 40 s more (Retry-After)"}
        assert "www-authenticate" not in r.headers and FC not in r.text and WRONG not in r.text
    assert _call(app, "/model_info", ADMIN).status_code == 429  # every keyed path, unknown ones too
    assert _call(app, "/nope", ADMIN).status_code == 429
    # another address is not affected, with a valid key or a wrong one
    assert _call(app, "/forecast", FC, host="192.0.2.11", method="POST").status_code == 200
    assert _call(app, "/forecast", WRONG, host="192.0.2.11", method="POST").status_code == 401
    # probes and /metrics are never throttled
    for p in ("/livez", "/healthz", "/metrics"):
        assert _call(app, p, WRONG).status_code == 200, p
    clock.now += 39.5  # 0.5 s before the window ends: Retry-After rounds up
    r = _call(app, "/forecast", FC, method="POST")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    clock.now += 0.5  # the window is over: keys are checked again and a wrong one counts afresh
    assert _call(app, "/forecast", FC, method="POST").status_code == 200
    for _ in range(20):
        assert _call(app, "/forecast", WRONG, method="POST").status_code == 401
    assert _call(app, "/forecast", FC, method="POST").status_code == 429


def test_requests_while_blocked_do_not_extend_it_and_valid_keys_never_count():
    clock = Clock()
    app, _ = _app(limits=KeyFailureLimits(failures=3, window_seconds=10), clock=clock)
    for _ in range(50):  # a valid key, or one without the scope (403), is no failure
        assert _call(app, "/forecast", CRM, method="POST").status_code == 403
        assert _call(app, "/churn_scores", CRM, method="POST").status_code == 200
    for _ in range(3):
        assert _call(app, "/forecast", WRONG, method="POST").status_code == 401
    for _ in range(30):  # hammering a blocked address does not move the end of its window
        clock.now += 0.3
        assert _call(app, "/forecast", WRONG, method="POST").status_code == 429
    clock.now += 1.01  # the window that started at the first wrong key is over
    assert _call(app, "/churn_scores", CRM, method="POST").status_code == 200


def test_a_missing_key_is_not_a_failure():
    """No key tries nothing; counting it would let a client that lost its header lock its NAT neighbours out."""
    app, _ = _app(limits=KeyFailureLimits(failures=2, window_seconds=60))
    for headers in ({}, {"X-API-Key": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic eDp5"}):
        for _ in range(5):
            assert _call(app, "/forecast", method="POST", headers=headers).status_code == 401
    assert _call(app, "/forecast", FC, method="POST").status_code == 200
    # "Authorization: Bearer <wrong>" is a wrong key like X-API-Key
    for _ in range(2):
        assert _call(app, "/forecast", method="POST", headers={"Authorization": f"Bearer {WRONG}"}).status_code == 401
    assert _call(app, "/forecast", FC, method="POST").status_code == 429


def test_readyz_counts_wrong_keys_and_answers_a_blocked_address_as_without_a_key():
    """/readyz shows the reasons only to a valid key, so it could test keys; it is never refused (a probe)."""
    app, seen = _app(limits=KeyFailureLimits(failures=3, window_seconds=60))
    assert _call(app, "/readyz", ADMIN).status_code == 200 and seen[-1] == RING.scopes_for(ADMIN)
    for _ in range(3):
        assert _call(app, "/readyz", WRONG).status_code == 200 and seen[-1] is None
    r = _call(app, "/readyz", ADMIN)  # blocked: still answered, but as to no key
    assert r.status_code == 200 and seen[-1] is None
    assert _call(app, "/model_info", ADMIN).status_code == 429
    assert _call(app, "/readyz", ADMIN, host="192.0.2.99").status_code == 200 and seen[-1] == RING.scopes_for(ADMIN)


def test_throttling_off_and_without_configured_keys():
    app, _ = _app(limits=KeyFailureLimits(failures=0))
    for _ in range(100):
        assert _call(app, "/forecast", WRONG, method="POST").status_code == 401
    assert _call(app, "/forecast", FC, method="POST").status_code == 200
    # no keys configured: nothing to guess, every key is refused; the 401 keeps saying why
    app, _ = _app(ring=parse_keys(""), limits=KeyFailureLimits(failures=1))
    for _ in range(5):
        r = _call(app, "/forecast", WRONG, method="POST")
        assert r.status_code == 401 and "no API keys configured" in r.json()["detail"]


def test_the_tracked_addresses_are_bounded_dropping_the_oldest():
    clock = Clock()
    lim = KeyFailureLimiter(2, 60, max_addresses=100, clock=clock)
    for i in range(1000):
        lim.failed(f"10.0.{i // 256}.{i % 256}")
        lim.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(lim) == 100
    assert lim.retry_after("10.0.3.231") == 60  # the newest (i = 999) is kept and blocked
    assert lim.retry_after("10.0.0.0") is None  # the oldest was forgotten
    clock.now += 60
    assert lim.retry_after("10.0.3.231") is None and len(lim) == 99  # an ended window is dropped when read


def test_client_address_groups_ipv6_by_64():
    def addr(host):
        return client_address({"client": (host, 1)} if host is not None else {})

    assert addr("203.0.113.5") == "203.0.113.5"
    assert addr("2001:db8:1:2:aaaa::1") == addr("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert addr("2001:db8:1:3::1") != addr("2001:db8:1:2::1")
    assert addr("::ffff:198.51.100.4") == "198.51.100.4"
    assert addr("testclient") == "testclient" and addr(None) == ""


def test_the_block_is_logged_once_without_the_key(caplog):
    app, _ = _app(limits=KeyFailureLimits(failures=3, window_seconds=60))
    with caplog.at_level(logging.INFO, logger="dealerml.serving.auth"):
        for _ in range(6):
            _call(app, "/forecast", WRONG, method="POST", host="198.51.100.23")
    lines = [r.getMessage() for r in caplog.records if "wrong API keys" in r.getMessage()]
    assert lines == ["3 wrong API keys from 198.51.100.23 within 60 s: its requests that need a key are answered "
                     "429 for 60 s"]
    assert WRONG not in caplog.text


@pytest.mark.parametrize(("env", "message"), [
    ({"DEALERML_SERVE_KEY_FAILURES": "ten"},
     "$DEALERML_SERVE_KEY_FAILURES must be a whole number between 0 (no throttling) and 100,000 (wrong API keys one "
     "client address may send per window); got 'ten'"),
    ({"DEALERML_SERVE_KEY_FAILURES": "-1"}, "$DEALERML_SERVE_KEY_FAILURES must be a whole number between 0"),
    ({"DEALERML_SERVE_KEY_FAILURES": "100001"}, "got '100001'"),
    ({"DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS": "0"},
     "$DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS must be a whole number between 1 and 86,400 (seconds); got '0'"),
    ({"DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS": "1.5"}, "got '1.5'"),
])
def test_bad_settings_name_the_variable_and_value(env, message):
    with pytest.raises(ConfigError) as err:
        key_failure_limits(env)
    assert message in str(err.value)


def test_settings_defaults_and_values():
    assert key_failure_limits({}) == KeyFailureLimits(20, 60)
    assert key_failure_limits({"DEALERML_SERVE_KEY_FAILURES": " 0 ",
                               "DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS": "300"}) == KeyFailureLimits(0, 300)


def test_a_bad_setting_throttles_at_the_defaults(monkeypatch, caplog):
    monkeypatch.setenv("DEALERML_SERVE_KEY_FAILURES", "lots")
    with caplog.at_level(logging.ERROR, logger="dealerml.serving.auth"):
        mw = APIKeyMiddleware(None, keyring=RING)
    assert (mw.limiter.failures, mw.limiter.window) == (20, 60)
    assert "$DEALERML_SERVE_KEY_FAILURES must be a whole number" in caplog.text


# ----------------------------------------------------------------- the service (to_asgi)
@pytest.fixture()
def service(tmp_path, monkeypatch):
    """The in-process service with three ready models (no champions needed for these answers)."""
    monkeypatch.setenv("DEALERML_CONFIG", str(tmp_path / "no-such-config.yaml"))  # the loader fails fast
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEALERML_API_KEYS", f"{FC}:forecast;{CRM}:churn,dealers;{ADMIN}:*")
    monkeypatch.delenv("DEALERML_SERVE_MODELS", raising=False)
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    def start():
        app = service_app()
        c = TestClient(app, raise_server_exceptions=False, client=("192.0.2.50", 1234))
        c.__enter__()
        svc = bentoml.get_current_service()
        svc._loader.join(timeout=60)
        assert not svc._loader.is_alive()
        return app, c, svc

    started = []

    def make(**env):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        started.append(start())
        return started[-1]

    yield make
    for _, c, _ in started:
        c.__exit__(None, None, None)


def _info(c, key):
    r = c.get("/model_info", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    from serving.schemas import ModelInfoResponse

    ModelInfoResponse.model_validate(r.json())  # the published schema
    return r.json()


def test_model_info_shows_a_key_the_models_its_scopes_cover(service):
    _, c, svc = service()
    for key in ("demand", "churn", "dealers"):
        svc.state.succeed(key, object())
    svc.state.slots["dealers"].run_id = "run-of-dealers"
    admin = _info(c, ADMIN)  # as before: every model in full, the config, no other_models
    assert set(admin) == {"ready", "config", "models"}
    from serving.schemas import ModelStatus

    assert all(set(m) == set(ModelStatus.model_fields) for m in admin["models"])  # every field, as before
    assert admin["config"].endswith("no-such-config.yaml")
    assert [m["name"] for m in admin["models"]] == ["dealerml-demand", "dealerml-churn", "dealerml-dealers"]
    assert admin["models"][2]["run_id"] == "run-of-dealers" and "backtest_metrics" in admin["models"][0]

    fc = _info(c, FC)
    assert fc["config"] is None and fc["ready"] == admin["ready"]
    assert fc["models"] == [admin["models"][0]]  # demand, in full
    assert fc["other_models"] == [{"name": "dealerml-churn", "status": "ready"},
                                  {"name": "dealerml-dealers", "status": "ready"}]
    assert "run-of-dealers" not in c.get("/model_info", headers={"X-API-Key": FC}).text

    crm = _info(c, CRM)  # churn and dealers scopes
    assert crm["models"] == admin["models"][1:] and crm["config"] is None
    assert crm["other_models"] == [{"name": "dealerml-demand", "status": "ready"}]

    svc.state.fail("churn", "OSError: cannot read /srv/secret/booster.txt")
    fc = _info(c, FC)  # why ready is false, without the error
    assert fc["ready"] is False and {"name": "dealerml-churn", "status": "failed"} in fc["other_models"]
    assert "/srv/secret" not in c.get("/model_info", headers={"X-API-Key": FC}).text
    assert _info(c, CRM)["models"][0]["error"] == "OSError: cannot read /srv/secret/booster.txt"
    assert c.get("/model_info").status_code == 401


def test_the_service_throttles_an_address_and_counts_it_in_metrics(service):
    import time

    import prometheus_client
    from starlette.testclient import TestClient

    app, c, svc = service(DEALERML_SERVE_KEY_FAILURES="3", DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS="1")
    assert svc.settings_error is None

    def throttled():
        return prometheus_client.REGISTRY.get_sample_value("dealerml_api_key_throttled_total") or 0.0

    before = throttled()
    t0 = time.monotonic()
    for _ in range(3):
        assert c.post("/forecast", json={}, headers={"X-API-Key": WRONG}).status_code == 401
    r = c.get("/model_info", headers={"X-API-Key": ADMIN})
    assert r.status_code == 429 and r.headers["retry-after"] == "1" and set(r.json()) == {"error", "detail"}
    assert throttled() == before + 1
    assert c.get("/livez").status_code == 200  # (/metrics: over bentoml serve, test_serving_auth_serve)
    other = TestClient(app, raise_server_exceptions=False, client=("192.0.2.51", 1))  # the same app, another address
    assert other.get("/model_info", headers={"X-API-Key": ADMIN}).status_code == 200
    time.sleep(max(0.0, 1.05 - (time.monotonic() - t0)))
    assert c.get("/model_info", headers={"X-API-Key": ADMIN}).status_code == 200


def test_a_bad_throttle_setting_keeps_the_service_unready_naming_it(service):
    _, c, svc = service(DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS="a minute")
    assert "$DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS must be a whole number between 1 and 86,400 (seconds); " \
           "got 'a minute'" in svc.settings_error
    anon = c.get("/readyz").json()  # no key: the variable's name only
    assert "DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS" in anon["settings"] and "a minute" not in str(anon)
    full = c.get("/readyz", headers={"X-API-Key": ADMIN}).json()
    assert any("got 'a minute'" in s for s in full["settings"])


# ----------------------------------------------------------------- a real bentoml serve
@pytest.mark.slow
@pytest.mark.parametrize("forwarded_allow_ips", [None, ""])
def test_bentoml_serve_throttles_per_client_address(tmp_path, forwarded_allow_ips):
    """Under ``bentoml serve`` the client address is uvicorn's: ``X-Forwarded-For`` is used only from the peers
    ``$FORWARDED_ALLOW_IPS`` names (uvicorn's default: this host). With the default, a proxy on this host (here:
    the test) tells the clients apart; with ``FORWARDED_ALLOW_IPS=''`` the header is ignored, so a client cannot
    escape its block by sending another address in it. No champions: the middleware answers before any model."""
    import time

    from serving.devserver import LocalServer

    env = {"DEALERML_HOME": str(tmp_path / "home"), "DEALERML_CONFIG": str(tmp_path / "none.yaml"),
           "DEALERML_API_KEYS": f"{ADMIN}:*", "DEALERML_SERVE_KEY_FAILURES": "3",
           "DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS": "3"}
    if forwarded_allow_ips is not None:
        env["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    trusted = forwarded_allow_ips is None
    with LocalServer(env=env, wait_ready=False, log_path=tmp_path / "serve.log") as srv:
        def get(path, key, xff):
            return httpx.get(srv.url + path, headers={"X-API-Key": key, "X-Forwarded-For": xff}, timeout=30)

        t0 = time.monotonic()
        for i in range(3):  # spread over three claimed addresses: one address when the header is not trusted
            xff = "198.51.100.7" if trusted else f"198.51.100.{i}"
            assert get("/model_info", WRONG, xff).status_code == 401
        r = get("/model_info", ADMIN, "198.51.100.7" if trusted else "198.51.100.99")
        assert r.status_code == 429 and r.headers["retry-after"] in ("2", "3"), r.text
        assert r.json()["error"] == "too many wrong API keys from this address"
        assert get("/livez", WRONG, "198.51.100.7").status_code == 200
        other = get("/model_info", ADMIN, "203.0.113.9")
        assert other.status_code == (200 if trusted else 429)  # another client; untrusted: the same peer
        metrics = httpx.get(srv.url + "/metrics", timeout=30).text
        assert f"dealerml_api_key_throttled_total {1.0 if trusted else 2.0}" in metrics
        assert 'endpoint="/model_info",http_response_code="429"' in metrics
        time.sleep(max(0.0, 3.1 - (time.monotonic() - t0)))
        assert get("/model_info", ADMIN, "198.51.100.7").status_code == 200  # the window is over
        assert WRONG not in srv.log_text() and ADMIN not in srv.log_text()
