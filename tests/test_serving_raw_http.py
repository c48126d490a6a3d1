"""Requests only a raw socket sends (header bytes HTTP allows but clients rarely use), against a real
``bentoml serve`` of ``serving.service:DealerML``: an answer with a message, never a broken one.

No model is needed (the config does not exist: the service stays unready and answers 503 to a valid
request; the checks below answer first or do not depend on it)."""

from __future__ import annotations

import socket

import pytest

from serving.devserver import LocalServer

KEY = "raw-http-admin-key-01"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("raw_http")
    env = {"DEALERML_HOME": str(tmp / "home"), "DEALERML_CONFIG": str(tmp / "no-such-config.yaml"),
           "DEALERML_API_KEYS": f"{KEY}:*", "MLFLOW_TRACKING_URI": ""}
    with LocalServer(env=env, wait_ready=False, log_path=tmp / "server.log") as srv:
        yield srv


def _exchange(srv, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` (with ``Connection: close``) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("POST", "/churn_scores", b'{"account_ids": ["D1"]}', 400, "got Content-Type application/\u00e9"),
    ("GET", "/model_info", b"", 200, '"models"'),
    ("GET", "/nope", b"", 404, "no endpoint /nope"),
])
def test_a_content_type_that_is_not_utf8_gets_its_whole_answer(server, method, path, body, status, words):
    """``Content-Type: application/\\xe9`` (latin-1 bytes: HTTP allows them in a header value) broke
    BentoML's access log, which decodes it as UTF-8 once the answer's body passes: the client got the
    status line and a Content-Length, then no body and a closed connection; the log a traceback."""
    request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-API-Key: {KEY}\r\n"
               f"Content-Length: {len(body)}\r\n").encode() + b"Content-Type: application/\xe9\r\n\r\n" + body
    got, headers, answer = _exchange(server, request)
    assert got == status and headers["content-type"] == "application/json"
    assert len(answer) == int(headers["content-length"]) > 0, answer
    assert words in answer.decode("unicode_escape"), answer[:300]
    assert "UnicodeDecodeError" not in server.log_text()


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/forecast", 400, "/forecast takes no WebSocket connection; send POST /forecast with a JSON body"),
    ("/model_info", 400, "/model_info takes no WebSocket connection; send GET /model_info"),
    ("/ws", 404, "no endpoint /ws; the endpoints are POST /forecast"),
])
def test_a_websocket_handshake_is_refused_with_a_message(server, path, status, words):
    """The service has no WebSocket endpoint; a handshake (a client library pointed at the wrong URL
    scheme) was refused by the server with a 403 and no body, on every path, and without a key asked."""
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    got, headers, answer = _exchange(server, request)
    assert got == status and headers["content-type"] == "application/json", (got, headers, answer)
    assert words in answer.decode(), answer
