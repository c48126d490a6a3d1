"""A malformed request body on each POST endpoint: a 4xx with a JSON ``{"error"}`` naming the problem,
never a 5xx nor a plain-text answer.

Checked on the real service app (``DealerML.to_asgi()``: the same middlewares and BentoML request
parsing ``bentoml serve`` runs) under starlette's TestClient, with no model loaded: the body is
refused before any model is asked (a valid body gets the 503 of a model that failed to load).
What other files pin is not repeated here: the sweep of bad values on ``/forecast`` and
``/churn_scores`` (test_serving_fuzz), a body over the size limit, compressed bodies, charsets and
non-UTF-8 bodies on ``/churn_scores`` (test_serving_limits, on ``bentoml serve``), a Content-Type
in latin-1 bytes (test_serving_raw_http). Here: every kind of malformed body on every POST endpoint.

Found (answers checked on ``bentoml serve`` too, the same): every one was already a 4xx with a JSON
body; only invalid JSON began with "send a JSON body with Content-Type: application/json;", which
the client had sent, before saying what was wrong. A malformed request line or header (uvicorn's own
plain-text 400 "Invalid HTTP request received.") is answered before the app and is out of its reach."""

from __future__ import annotations

import pytest

KEY = "bodies-admin-key-01"
POST_PATHS = ("/forecast", "/safety_stock", "/churn_scores", "/dealer_scores")
FIELDS = {"/forecast": "series_ids", "/safety_stock": "series_ids", "/churn_scores": "account_ids",
          "/dealer_scores": "top_k"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    tmp = tmp_path_factory.mktemp("bodies")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_CONFIG", str(tmp / "no-such-config.yaml"))  # the loader fails fast
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.setenv("DEALERML_API_KEYS", f"{KEY}:*")
        mp.delenv("DEALERML_SERVE_MODELS", raising=False)
        with TestClient(service_app(), raise_server_exceptions=False) as c:
            bentoml.get_current_service()._loader.join(timeout=60)
            c.headers["X-API-Key"] = KEY
            yield c


def _post(client, path: str, body: bytes, content_type: str | None = "application/json"):
    headers = {} if content_type is None else {"Content-Type": content_type}
    return client.post(path, content=body, headers=headers)


def _error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json", r.headers
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], r.text[:300]
    return body["error"]


def _valid(path: str) -> bytes:
    return b'{"%s": %s}' % (FIELDS[path].encode(), b"3" if path == "/dealer_scores" else b'["X1"]')


_NOT_JSON = [  # (body, what the parser says, after "the body is not valid JSON (")
    (b'{"account_ids": ', "EOF while parsing a value at line 1 column 16)"),
    (b"{'account_ids': ['A1']}", "key must be a string at line 1 column 2)"),
    (b'{"top_k": 3,}', "trailing comma at line 1 column 13)"),
    (b'{"top_k": 3} // all', "trailing characters at line 1 column 14)"),
    (b"{}{}", "trailing characters at line 1 column 3)"),
    (b"   ", "EOF while parsing a value at line 1 column 3)"),
    (b"\x00", "expected value at line 1 column 1)"),
]


@pytest.mark.parametrize("path", POST_PATHS)
def test_a_body_that_is_not_json_says_what_is_wrong_first(client, path):
    """It was "send a JSON body with Content-Type: application/json; the body is not valid JSON (...)",
    sent to a client that had done just that: the problem came second."""
    for body, why in _NOT_JSON:
        err = _error(_post(client, path, body), 400)
        assert err == (f"the body is not valid JSON ({why}; send a JSON body with Content-Type: application/json, "
                       "one object as a JSON encoder writes it (keys and strings in double quotes, no trailing "
                       "comma, no comment)"), (body, err)
    assert _post(client, path, _valid(path)).status_code == 503  # a valid body: past the checks, no model here


@pytest.mark.parametrize("path", POST_PATHS)
def test_a_body_that_is_json_but_not_an_object_names_what_was_sent(client, path):
    for body, got in ((b"[]", "a list of 0 items"), (b'["X1"]', "a list of 1 item"), (b'"X1"', "'X1'"),
                      (b"3", "3"), (b"null", "null"), (b"true", "true")):
        r = _post(client, path, body)
        err = _error(r, 400)
        assert err.startswith("invalid request body: 1 problem: <body>: Input should be an object (expected a JSON "
                              "object with the fields ["), (body, err)
        assert err.endswith(f"; got {got})") and f"'{FIELDS[path]}'" in err, (body, err)
        assert r.json()["detail"][0]["field"] == "<body>"


@pytest.mark.parametrize("path", POST_PATHS)
def test_a_body_sent_as_another_media_type_names_it(client, path):
    body = _valid(path)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xx",
                  "application/xml", "application/vnd.api+json", "text/json", "*/*"):
        err = _error(_post(client, path, body, ctype), 400)
        assert err == f"send a JSON body with Content-Type: application/json (got Content-Type {ctype.split(';')[0]})"
    # form fields as curl -d sends them: the same answer, not a parse of 'account_ids=X1'
    err = _error(_post(client, path, b"account_ids=X1", "application/x-www-form-urlencoded"), 400)
    assert err.endswith("(got Content-Type application/x-www-form-urlencoded)")
    # no Content-Type at all, and application/json in other cases or with charset utf8: read as JSON
    for ctype in (None, "Application/JSON", "application/json; charset=utf8"):
        assert _post(client, path, body, ctype).status_code == 503, ctype


@pytest.mark.parametrize("path", POST_PATHS)
def test_a_body_that_is_not_utf8_or_not_sent_as_utf8_is_named(client, path):
    """The non-UTF-8 bytes and charsets test_serving_limits checks on /churn_scores, on every endpoint."""
    for body, words in ((b'{"top_k": "\xfc"}', "bytes fc 22 7d at offset 11 cannot be decoded; "),
                        ("{}".encode("utf-16"), "bytes ff fe 7b 00 at offset 0 cannot be decoded (it starts with a "
                                                "UTF-16 byte order mark); "),
                        (b'{"x": "\xc0\xaf"}', "bytes c0 af 22 7d at offset 7 cannot be decoded; ")):
        assert _error(_post(client, path, body), 400) == (f"the request body is not UTF-8 text: {words}send the "
                                                          "JSON encoded as UTF-8")
    err = _error(_post(client, path, _valid(path), "application/json; charset=latin-1"), 415)
    assert err == "send a JSON body with Content-Type: application/json, encoded as UTF-8 (got charset=latin-1)"


def test_an_empty_body_is_read_as_an_empty_object(client):
    """BentoML reads no body as ``{}`` (a POST without one asks for the defaults): /dealer_scores takes
    it (the top dealers; 503 here, with no model), the others name the field they need. Said here so a
    change to it is seen."""
    assert _post(client, "/dealer_scores", b"").status_code == 503
    assert _error(_post(client, "/churn_scores", b""), 400).startswith(
        "invalid request body: 1 problem: account_ids: Field required (expected a list of 1 to ")
    assert _error(_post(client, "/safety_stock", b""), 400).startswith(
        "invalid request body: 1 problem: series_ids: Field required (expected a list of 1 to ")
    assert _error(_post(client, "/forecast", b""), 400).startswith(
        "invalid request body: 1 problem: <body>: give series_ids, or at least one of the filters sku / location")
