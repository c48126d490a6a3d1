"""A 400 for a request body names the value it refuses, not only the field and the rule.

The schema's words ("account_ids.3187: Input should be a valid string", "horizon: Input should be less
than or equal to 104") named the field and what it takes, never what was sent, though the OpenAPI
document promises "the value received": a client that sent ``"1"``, ``null`` or ``NaN`` in one of 5,000
ids or plan rows could not tell which. Each such problem now has ``got`` (JSON literals as sent, long
text cut, lists and objects by their size), also in the one-line error. Checked on the real service app
(``DealerML.to_asgi()``); the schema answers before any model is asked, so none is loaded."""

from __future__ import annotations

import pytest

KEY = "values-admin-key-01"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    tmp = tmp_path_factory.mktemp("values")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_CONFIG", str(tmp / "no-such-config.yaml"))  # the loader fails fast
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.setenv("DEALERML_API_KEYS", f"{KEY}:*")
        mp.delenv("DEALERML_SERVE_MODELS", raising=False)
        with TestClient(service_app(), raise_server_exceptions=False) as c:
            bentoml.get_current_service()._loader.join(timeout=60)
            c.headers["X-API-Key"] = KEY
            yield c


def _problem(client, path: str, raw: bytes) -> tuple[str, dict]:
    r = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json", r.text[:300]
    return r.json()["error"], r.json()["detail"][0]


@pytest.mark.parametrize(("path", "raw", "field", "got"), [
    ("/churn_scores", b'{"account_ids": ["D1", 17]}', "account_ids.1", "17"),
    ("/churn_scores", b'{"account_ids": ["D1", null]}', "account_ids.1", "null"),
    ("/churn_scores", b'{"account_ids": [NaN]}', "account_ids.0", "NaN"),
    ("/churn_scores", b'{"account_ids": [{"id": "D1"}]}', "account_ids.0", "a JSON object of 1 key"),
    ("/churn_scores", b'{"account_ids": "D1"}', "account_ids", "'D1'"),
    ("/churn_scores", b'{"account_ids": ["' + b"x" * 201 + b'"]}', "account_ids.0",
     "'" + "x" * 60 + "'... (201 characters)"),
    ("/forecast", b'{"series_ids": ["S1"], "horizon": 200}', "horizon", "200"),
    ("/forecast", b'{"series_ids": ["S1"], "horizon": "8"}', "horizon", "'8'"),
    ("/forecast", b'{"series_ids": ["S1"], "horizon": 8.5}', "horizon", "8.5"),
    ("/forecast", b'{"series_ids": ["S1"], "horizon": 1' + b"0" * 40 + b"}", "horizon", "a 41-digit number"),
    ("/forecast", b'{"series_ids": ["S1"], "levels": [80, Infinity]}', "levels.1", "Infinity"),
    ("/forecast", b'{"series_ids": ["S1"], "quantiles": [true]}', "quantiles.0", "true"),
    ("/forecast", b'{"series_ids": ["S1"], "drivers": [{"unique_id": "S1", "ds": "2024-01-01", "promo": "1"}]}',
     "drivers.0.promo", "'1'"),
    ("/safety_stock", b'{"series_ids": ["S1"], "service_level": 1.5}', "service_level", "1.5"),
    ("/safety_stock", b'{"series_ids": ["S1"], "on_hand": {"S1": -1e400}}', "on_hand.S1", "-Infinity"),
    ("/safety_stock", b'{"series_ids": ["S1"], "lead_times": {"S1": {"lead_time_days": -2}}}',
     "lead_times.S1.lead_time_days", "-2"),
    ("/dealer_scores", b'{"top_k": 0}', "top_k", "0"),
    ("/dealer_scores", b'{"region": [""]}', "region.0", "''"),
    ("/dealer_scores", b"[]", "<body>", "a list of 0 items"),
])
def test_a_refused_value_is_named(client, path, raw, field, got):
    error, problem = _problem(client, path, raw)
    assert problem["field"] == field and problem["got"] == got, problem
    assert f"{field}: {problem['msg']} (expected {problem['expected']}; got {got})" in error, error


@pytest.mark.parametrize(("path", "raw", "field"), [
    ("/churn_scores", b"{}", "account_ids"),  # missing: nothing was sent
    ("/churn_scores", b'{"account_ids": ["D1"], "acount_ids": 5}', "acount_ids"),  # unknown field: its value is moot
    ("/safety_stock", b'{"series_ids": ["S1"], "on_hand_date": "2024-02-30", "on_hand": {"S1": 1}}',
     "on_hand_date"),  # the message names it already
    ("/churn_scores", b'{"account_ids": []}', "account_ids"),  # the message says how many
])
def test_problems_whose_message_says_the_value_or_have_none_add_nothing(client, path, raw, field):
    error, problem = _problem(client, path, raw)
    assert problem["field"] == field and "got" not in problem, problem
    assert "; got " not in error and "(got " not in error, error


@pytest.mark.parametrize(("raw", "escape"), [
    (b'{"account_ids": ["D1\\ud83d"]}', "\\ud83d"),  # a string cut after the first half of an emoji
    (b'{"account_ids": ["\\ude00D1"]}', "\\ude00"),  # the second half alone
    (b'{"account_ids": ["ok \\ud83d\\ude00", "\\ud800\\u0041"]}', "\\ud800"),  # a whole pair is fine; not this
])
def test_a_lone_surrogate_escape_is_named_not_called_not_json(client, raw, escape):
    """JSON whose string escapes half a UTF-16 surrogate pair (a JavaScript client that cut a string inside
    a character) was answered "send a JSON body with Content-Type: application/json; the body is not valid
    JSON (unexpected end of hex escape ...)" or "(lone leading surrogate ...)" for a low half: it was JSON,
    sent as such, and nothing named the escape."""
    r = client.post("/churn_scores", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith(f"the body's string escape {escape} is half of a UTF-16 surrogate pair, without the "
                            "other half: no character (")
    assert "send a JSON body" not in error and "line 1 column" in error
    assert r.json()["detail"][0]["type"] == "json_invalid"
    ok = client.post("/churn_scores", content=b'{"account_ids": ["\\ud83d\\ude00"]}',
                     headers={"Content-Type": "application/json"})
    assert ok.status_code == 503  # past the schema (no model is loaded here)
