"""Over BentoML's concurrency limit (``traffic.max_concurrency``) the 429 says why and when to retry.

BentoML 1.4 answered it ``{"error": "Too many requests"}`` with no ``Retry-After``, no limit and no
way to raise it; its middleware sits outside the service's own, so the service could not rewrite
it (``serving.limits.install_busy_answer``). Checked against a real ``bentoml serve`` whose limit is
lowered to 1 with ``BENTOML_CONFIG_OPTIONS``: one POST whose body stalls holds the only slot. No
model is needed (the config does not exist: the service stays unready; the limit answers first)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from serving.devserver import LocalServer
from serving.limits import BUSY_RETRY_SECONDS, busy_message, install_busy_answer

KEY = "busy-admin-key-0001"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("busy")
    env = {"DEALERML_HOME": str(tmp / "home"), "DEALERML_CONFIG": str(tmp / "no-such-config.yaml"),
           "DEALERML_API_KEYS": f"{KEY}:*", "MLFLOW_TRACKING_URI": "",
           "BENTOML_CONFIG_OPTIONS": "services.dealerml.traffic.max_concurrency=1"}
    with LocalServer(env=env, wait_ready=False, log_path=tmp / "server.log") as srv:
        yield srv


def _hold_the_slot(srv) -> socket.socket:
    """A POST that sent 1 of its 100 body bytes: in progress until the body read deadline."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    sock.sendall(f"POST /churn_scores HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
    time.sleep(0.5)
    return sock


def test_over_the_concurrency_limit_the_429_names_the_limit_and_says_when_to_retry(server):
    sock = _hold_the_slot(server)
    try:
        for method, path, headers in (("POST", "/forecast", {"X-API-Key": KEY}), ("GET", "/model_info", {}),
                                      ("GET", "/no-such-path", {"X-API-Key": KEY})):
            r = httpx.request(method, server.url + path, json={} if method == "POST" else None, headers=headers,
                              timeout=10)
            assert r.status_code == 429, (path, r.text)
            assert r.headers["content-type"] == "application/json"
            assert r.headers["retry-after"] == str(BUSY_RETRY_SECONDS) == "1"
            body = r.json()
            assert body == {"error": busy_message(1), "limit": 1}
            assert "traffic.max_concurrency" in body["error"] and "limit of 1 request(s)" in body["error"]
        assert httpx.get(server.url + "/livez", timeout=10).status_code == 200  # probes bypass the limit
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 503  # (unready: no config)
    finally:
        sock.close()
    time.sleep(0.5)
    r = httpx.post(server.url + "/churn_scores", json={"account_ids": []}, headers={"X-API-Key": KEY}, timeout=10)
    assert r.status_code == 400 and "account_ids" in r.json()["error"]  # the slot is free again


def test_bentomls_middleware_is_the_one_that_answers():
    """The hook: BentoML builds the class found in its traffic module (fails when BentoML moves it)."""
    from bentoml._internal.server.http import traffic

    import serving.service  # noqa: F401 - installs it

    assert install_busy_answer() is True
    assert getattr(traffic.MaxConcurrencyMiddleware, "dealerml_busy_answer", False) is True
