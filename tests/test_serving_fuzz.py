"""Malformed requests against every endpoint of the real service app: 4xx with a message that
names the field / parameter, the value and what was expected; never 5xx.

The app is ``DealerML.to_asgi()`` (the same ASGI app, middlewares and BentoML request parsing
``bentoml serve`` runs) under starlette's TestClient. Its loader fails fast on a config that does
not exist; the test then hands it real backends: a ``DemandForecaster`` (AutoETS) fitted on four
small weekly series, a ``ChurnBackend`` over a score table with a real DuckDB alerts table, and a
``DealersBackend`` over a ranking table. Defects this file pins (found by throwing ~300 malformed
requests at a real ``dealerml serve``):

- a wrong method was a plain-text ``Method Not Allowed`` (``{"detail": ...}`` on the GET routes)
  and an unknown path a plain-text ``Not Found``; now ``{"error"}`` naming the method to use;
- query parameters on a POST endpoint (``POST /forecast?horizon=4``) were silently ignored and
  ``/model_info?x=1`` too; now 400 naming them;
- ``/churn_alerts?since=0`` was read as 1970-01-01 (a Unix time) and ``limit=2.0`` as 2, and
  ``since=20240101`` was refused with "Datetimes provided to dates should have zero time";
  now only YYYY-MM-DD and whole numbers, with one message saying so; repeated parameters refused;
- a driver value of the wrong type had no ``expected``; a plan row's ``ds`` said "expected a
  string" and took non-ASCII digits; ``on_hand`` naming other series was reported at ``<body>``
  with "expected a JSON object with the fields ..."; a 100 kB unknown field name was echoed in
  full and 2,000 unknown fields gave 2,000 ``detail`` entries;
- ``levels: [99.9999999]`` was answered "level 100 is not available";
- every 401 said the same thing whether no key, a wrong key or a Basic scheme was sent.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pytest

KEY, FC_KEY = "fuzz-admin-key-01", "fuzz-fc-key-0001"


def _demand_backend():
    from models.demand import DemandForecaster
    from serving.demand import DemandBackend

    rng = np.random.default_rng(0)
    ds = pd.date_range("2023-01-02", periods=60, freq="W-MON")
    parts = [pd.DataFrame({"unique_id": f"S{i}/DC{1 + i % 2}", "ds": ds, "y": rng.poisson(8, 60).astype(float)})
             for i in range(4)]
    est = DemandForecaster(freq="W", h=4, models=("AutoETS",)).fit(pd.concat(parts, ignore_index=True))
    cfg = SimpleNamespace(demand={"freq": "W", "levels": ["sku", "location"], "lead_time_days": 7.0},
                          config_path=None, name="fuzz", seed=0)
    return DemandBackend.build(est, SimpleNamespace(name="dealerml-demand", version="3"), None, cfg)


def _churn_backend(alerts_db: str):
    import duckdb

    from serving.churn import ChurnBackend, last_orders

    con = duckdb.connect(alerts_db)
    con.execute("create table churn_alerts (account_id varchar, cutoff date, probability double, tier varchar, "
                "reason_1 varchar, created_at timestamp)")
    con.execute("insert into churn_alerts values ('A1', '2024-10-01', 0.9, 'high', 'r', '2024-10-01 06:00:00'), "
                "('A2', '2024-12-01', 0.8, 'high', 'r', '2024-12-01 06:00:00')")
    con.close()
    book = SimpleNamespace(accounts=pd.DataFrame({"account_id": ["A1", "A2"]}),
                           order_lines=pd.DataFrame({"account_id": ["A1", "A2"],
                                                     "order_date": pd.to_datetime(["2024-11-02", "2024-12-01"])}))
    cutoff = pd.Timestamp("2025-01-01")
    table = pd.DataFrame({"account_id": ["A1"], "probability": [0.2], "tier": ["low"], "reason_1": ["r1"],
                          "reason_2": [None], "reason_3": [None], "model_version": ["dealerml-churn/1"]})
    return ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1", as_of=cutoff, table=table,
                        alerts_target=alerts_db, alerts_table="churn_alerts", lookback_days=365,
                        last_orders=last_orders(book, cutoff))


def _dealers_backend():
    from serving.dealers import DealersBackend

    table = pd.DataFrame({"account_id": ["A1", "A2"], "potential": [2.0, 1.0], "segment": ["s", "t"],
                          "lifecycle": ["growth", "maturity"], "tier": ["key", "core"],
                          "programme": ["gold", "silver"], "region": ["East", "West"]})
    return DealersBackend(model_name="dealerml-dealers", model_version="dealerml-dealers/1",
                          as_of=pd.Timestamp("2025-01-01"), table=table)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    tmp = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_CONFIG", str(tmp / "no-such-config.yaml"))  # the loader fails fast
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.setenv("DEALERML_API_KEYS", f"{KEY}:*;{FC_KEY}:forecast")
        mp.delenv("DEALERML_SERVE_MODELS", raising=False)

        backends = {"demand": _demand_backend(), "churn": _churn_backend(str(tmp / "alerts.duckdb")),
                    "dealers": _dealers_backend()}
        with TestClient(service_app(), raise_server_exceptions=False) as c:
            svc = bentoml.get_current_service()
            svc._loader.join(timeout=60)
            assert not svc._loader.is_alive()
            for key, backend in backends.items():
                svc.state.succeed(key, backend)
            assert c.get("/readyz").status_code == 200
            c.headers["X-API-Key"] = KEY
            yield c


def _error(r) -> str:
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], r.text[:300]
    return body["error"]


# ----------------------------------------------------------------- no 5xx, ever
_BIG = [f"x{i}" for i in range(100_000)]
_ROW = {"unique_id": "S0/DC1", "ds": "2023-02-27", "promo": 1}
_SWEEP = [  # (path, JSON body or raw bytes, expected status)
    ("/forecast", {}, 400), ("/forecast", None, 400), ("/forecast", [], 400), ("/forecast", "x", 400),
    ("/forecast", {"series_ids": None}, 400), ("/forecast", {"series_ids": [None]}, 400),
    ("/forecast", {"series_ids": "S0/DC1"}, 400), ("/forecast", {"series_ids": [""]}, 400),
    ("/forecast", {"series_ids": ["a" * 10_000]}, 400), ("/forecast", {"series_ids": _BIG}, 400),
    ("/forecast", {"series_ids": ["Ünïcødé/日本", "a\u0000b"]}, 404),
    ("/forecast", {"series_ids": ["S0/DC1", "S0/DC1"], "levels": [80, 80], "horizon": 4}, 200),
    ("/forecast", {"series_ids": ["S0/DC1"], "horizon": 0}, 400),
    ("/forecast", {"series_ids": ["S0/DC1"], "horizon": -1}, 400),
    ("/forecast", {"series_ids": ["S0/DC1"], "horizon": 10**9}, 400),
    ("/forecast", {"series_ids": ["S0/DC1"], "horizon": 10**30}, 400),
    ("/forecast", {"series_ids": ["S0/DC1"], "horizon": 5}, 422),
    ("/forecast", {"series_ids": ["S0/DC1"], "levels": [0]}, 400),
    ("/forecast", {"series_ids": ["S0/DC1"], "levels": [90]}, 422),
    ("/forecast", {"series_ids": ["S0/DC1"], "quantiles": [0.5]}, 422),
    ("/forecast", {"series_ids": ["S0/DC1"], "quantiles": [1e-300]}, 422),
    ("/forecast", {"sku": ["S0"], "location": ["DC2"]}, 404),
    ("/forecast", {"series_ids": ["S0/DC1"], "drivers": [_ROW]}, 422),  # this champion has no drivers
    ("/forecast", {"series_ids": ["S0/DC1"], "drivers": [_ROW] * 20_001}, 400),
    ("/forecast", b'{"series_ids": ["S0/DC1"], "horizon": NaN}', 400),
    ("/forecast", b'{"series_ids": ["S0/DC1"], "levels": [Infinity]}', 400),
    ("/forecast", b'{"series_ids": ["S0/DC1"], "levels": [1e400]}', 400),
    ("/forecast", b'{"series_ids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    ("/forecast", b'{"series_ids": ["\\ud800"]}', 400),
    ("/forecast", b'{"series_ids": ["S0/DC1"],}', 400),
    ("/forecast", b"\xef\xbb\xbf{}", 400),
    ("/safety_stock", {"series_ids": []}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "service_level": 0}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "service_level": 1}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "service_level": 1.5}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "service_level": None}, 200),  # null: the default 0.95
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": -1}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 0}, 200),  # same-day supply
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_times": {"S0/DC1": {"lead_time_days": 0}}}, 200),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_times": {"S0/DC1": {"lead_time_days": -0.5}}}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 1e9}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 365}, 422),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 1e-300, "review_period_days": 1e-300}, 200),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 7, "lead_time_std_days": -1}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 7, "on_hand": {"S0/DC1": -1}}, 200),  # backorders
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 7, "on_hand": {"S0/DC1": -2e12}}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 7, "on_hand": {"": 1}}, 400),
    ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 7, "on_hand": {"S0/DC1": 1e12},
                       "max_periods_of_cover": 1}, 200),
    ("/safety_stock", {"series_ids": ["nope"], "lead_time_days": 7}, 404),
    ("/safety_stock", b'{"series_ids": ["S0/DC1"], "on_hand": {"S0/DC1": Infinity}}', 400),
    ("/churn_scores", {}, 400), ("/churn_scores", {"account_ids": None}, 400),
    ("/churn_scores", {"account_ids": [1]}, 400), ("/churn_scores", {"account_ids": ["a" * 201]}, 400),
    ("/churn_scores", {"account_ids": _BIG}, 400), ("/churn_scores", {"account_ids": ["A1", "A1", "zz"]}, 200),
    ("/churn_scores", {"account_ids": ["日本語"]}, 404), ("/churn_scores", b"null", 400),
    ("/churn_scores", b'{"account_ids": [' + b"9" * 5000 + b"]}", 400),
    ("/dealer_scores", {"top_k": 0}, 400), ("/dealer_scores", {"top_k": 10**9}, 400),
    ("/dealer_scores", {"top_k": None}, 200), ("/dealer_scores", {"region": [""]}, 400),
    ("/dealer_scores", {"region": ["Mars"]}, 404), ("/dealer_scores", {"account_ids": ["A1", "A1"]}, 200),
    ("/dealer_scores", {"segment": [f"s{i}" for i in range(1001)]}, 400),
    ("/dealer_scores", b'{"top_k": 1' + b"0" * 5000 + b".5}", 400),
]


def test_malformed_bodies_are_4xx_with_a_message_never_5xx(client):
    for path, body, status in _SWEEP:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == status, (path, str(body)[:120], r.status_code, r.text[:300])
        if status != 200:
            assert "validation error for" not in _error(r), r.text[:300]


# ----------------------------------------------------------------- methods, paths, query strings
@pytest.mark.parametrize("method, path, use", [
    ("GET", "/forecast", "use POST with a JSON body"), ("PUT", "/safety_stock", "use POST"),
    ("GET", "/churn_scores", "use POST"), ("DELETE", "/dealer_scores", "use POST"),
    ("POST", "/churn_alerts", "use GET"), ("POST", "/model_info", "use GET"),
])
def test_a_wrong_method_is_a_405_naming_the_one_to_use(client, method, path, use):
    r = client.request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == ("GET" if "GET" in use else "POST")
    assert _error(r).startswith(f"{path} does not take {method}; {use}")


def test_head_on_a_get_route_answers_as_get_without_the_body(client):
    """HEAD /model_info and HEAD /churn_alerts were 405 'Allow: GET' (FastAPI's GET routes take no
    HEAD) while HEAD /readyz, /livez and /metrics answered: a monitor that checks with HEAD saw the
    service's own routes refuse the method their Allow header named."""
    for path in ("/model_info", "/churn_alerts?limit=1", "/readyz", "/livez"):  # /metrics: checked on bentoml serve
        get, head = client.get(path), client.head(path)
        assert get.status_code == head.status_code == 200, (path, head.status_code, head.headers)
        assert head.content == b"" and get.content, path
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert client.head("/model_info").headers["content-length"] == str(len(client.get("/model_info").content))
    bad = client.head("/churn_alerts?limit=0")  # the GET's 400, without its body
    assert bad.status_code == 400 and bad.content == b"" and "limit" in client.get("/churn_alerts?limit=0").text
    assert _send(client, "HEAD", "/model_info", headers={}).status_code == 401  # still needs a key
    assert client.head("/forecast").status_code == 405  # a POST route: HEAD is not a GET there


def test_an_unknown_path_is_a_json_404_listing_the_endpoints(client):
    r = client.post("/forcast", json={"series_ids": ["S0/DC1"]})
    assert r.status_code == 404
    assert _error(r).startswith("no endpoint /forcast; the endpoints are POST /forecast, POST /safety_stock")
    assert _send(client, "GET", "/nope", headers={}).status_code == 401  # the key is checked first


def test_a_trailing_slash_is_the_route_not_a_redirect(client):
    """POST /churn_scores/ was a 307 with an empty body to http://<Host header>/churn_scores: a client that
    does not follow redirects (curl without -L, Java's HttpURLConnection on a POST) got no answer and no
    message, and behind a TLS-terminating proxy the Location said http://, so a client that follows it
    re-sent its X-API-Key (a custom header: requests keeps it) in clear text. The route is now served
    as it is without the slash, with all its checks."""
    r = client.post("/churn_scores/", json={"account_ids": ["A1"]}, follow_redirects=False)
    assert r.status_code == 200 and r.json()["scores"][0]["account_id"] == "A1", (r.status_code, r.headers)
    r = client.post("/forecast//", json={"series_ids": ["S0/DC1"], "horizon": 1}, follow_redirects=False)
    assert r.status_code == 200 and r.json()["series"][0]["unique_id"] == "S0/DC1", (r.status_code, r.headers)
    r = client.get("/model_info/", follow_redirects=False)
    assert r.status_code == 200 and r.json()["ready"] is True, (r.status_code, r.headers)
    r = client.get("/churn_alerts/", params={"limit": "0"}, follow_redirects=False)
    assert r.status_code == 400 and "'limit'" in _error(r), (r.status_code, r.headers)
    r = client.get("/readyz/", follow_redirects=False)
    assert r.status_code == 200 and r.text == "\n", (r.status_code, r.headers)
    # the body and query checks of the route apply, as do its key and scope
    r = client.post("/churn_scores/", content=b'{"account_ids": ["A1"], "account_ids": ["A2"]}',
                    headers={"content-type": "application/json"}, follow_redirects=False)
    assert r.status_code == 400 and "the key 'account_ids' appears 2 times" in _error(r), r.text[:300]
    r = client.post("/forecast/?horizon=1", json={"series_ids": ["S0/DC1"]}, follow_redirects=False)
    assert r.status_code == 400 and _error(r).startswith("POST /forecast takes no query parameters"), r.text[:300]
    r = client.get("/forecast/", follow_redirects=False)
    assert r.status_code == 405 and _error(r).startswith("/forecast does not take GET"), r.text[:300]
    r = client.post("/churn_scores/", json={"account_ids": ["A1"]}, headers={"X-API-Key": FC_KEY}, follow_redirects=False)
    assert r.status_code == 403 and "'churn' scope" in _error(r)
    r = client.post("/forcast/", json={"series_ids": ["S0/DC1"]}, follow_redirects=False)
    assert r.status_code == 404 and _error(r).startswith("no endpoint /forcast/; the endpoints are"), r.text[:300]

def test_query_parameters_on_post_endpoints_are_refused_not_ignored(client):
    r = client.post("/forecast?horizon=abc", json={"series_ids": ["S0/DC1"]})
    assert r.status_code == 400
    assert _error(r) == ("POST /forecast takes no query parameters; got ['horizon']; send them as fields of the "
                         "JSON body (the fields are ['drivers', 'horizon', 'levels', 'location', 'quantiles', "
                         "'series_ids', 'sku'])")
    r = client.get("/model_info", params={"verbose": "1"})
    assert r.status_code == 400 and _error(r) == "/model_info takes no query parameters; got ['verbose']"
    assert client.get("/model_info").json()["ready"] is True


@pytest.mark.parametrize("params, words", [
    ({"since": "0"}, "'since': expected a date YYYY-MM-DD (alerts on or after it); got '0'"),
    ({"since": "86400"}, "got '86400'"),
    ({"since": "20240101"}, "'since': expected a date YYYY-MM-DD (alerts on or after it); got '20240101'"),
    ({"since": "2024-01-01T00:00:00Z"}, "got '2024-01-01T00:00:00Z'"),
    ({"since": "٢٠٢٤-٠١-٠١"}, "expected a date YYYY-MM-DD"),
    ({"since": "2024-02-30"}, "'since': not a calendar date; expected a date YYYY-MM-DD"),
    ({"since": ""}, "got ''"),
    ({"limit": "2.0"}, "'limit': expected an integer between 1 and 5000 (the newest N alerts); got '2.0'"),
    ({"limit": "1e3"}, "got '1e3'"),
    ({"limit": "5001"}, "got '5001'"),
    ([("limit", "1"), ("limit", "2")], "query parameter 'limit' is given 2 times; give it once"),
    ({"sinse": "2024-01-01"}, "unknown query parameter(s) ['sinse']; allowed: ['limit', 'since']"),
])
def test_churn_alerts_query_is_read_strictly(client, params, words):
    r = client.get("/churn_alerts", params=params)
    assert r.status_code == 400, (params, r.text)
    assert words in _error(r), (params, r.json())


def test_churn_alerts_dates_far_out_are_answered(client):
    r = client.get("/churn_alerts", params={"since": "0001-01-01", "limit": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["matched"] == 2 and [a["account_id"] for a in body["alerts"]] == ["A2"]
    assert body["alerts"][0]["cutoff"] == "2024-12-01"
    r = client.get("/churn_alerts", params={"since": "9999-12-31"})
    assert r.status_code == 200 and r.json() == {"since": "9999-12-31", "matched": 0, "count": 0, "alerts": [],
                                                "note": None}  # the table is there: no note
    assert client.get("/churn_alerts", params={"since": "2024-11-01"}).json()["matched"] == 1


# ----------------------------------------------------------------- body messages
def _problems(client, path, body):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text[:300]
    return _error(r), r.json()["detail"]


def test_plan_rows_say_what_a_date_and_a_driver_value_are(client):
    for ds in ("2024-7-8", "2024-07-08T00:00:00", "٢٠٢٤-٠٧-٠٨"):
        err, detail = _problems(client, "/forecast", {"series_ids": ["S0/DC1"], "drivers": [{**_ROW, "ds": ds}]})
        assert detail[0]["field"] == "drivers.0.ds" and detail[0]["expected"] == "a date YYYY-MM-DD", ds
    for value, got in (("1", "'1'"), (True, "true"), (None, "null"), ([1], "a list of 1 item")):
        err, detail = _problems(client, "/forecast", {"series_ids": ["S0/DC1"], "drivers": [{**_ROW, "promo": value}]})
        assert err == ("invalid request body: 1 problem: drivers.0.promo: Input should be a valid number "
                       f"(expected a finite number between -1e+12 and 1e+12, inclusive; got {got})"), value
    err, _ = _problems(client, "/forecast", {"series_ids": ["S0/DC1"], "drivers": {"unique_id": "S0/DC1"}})
    assert ("each a JSON object with the fields ['ds', 'unique_id'] and named values, each a finite number "
            "between -1e+12 and 1e+12, inclusive") in err


def test_a_plan_row_date_not_on_the_calendar_is_named_as_such(client):
    """A plan row dated 2024-02-30 was answered 422 '2024-02-30 is not a forecast period' (by a champion
    with drivers), as if it were a real date outside the horizon; it is a 400 on drivers.<i>.ds naming the
    value, why it is no date and the YYYY-MM-DD expected."""
    for ds, why in (("2024-02-30", "2024-02 has 29 days"), ("2023-02-29", "2023-02 has 28 days"),
                    ("2024-04-31", "2024-04 has 30 days"), ("2024-13-01", "there is no month 13"),
                    ("2024-00-10", "there is no month 00"), ("2024-01-00", "there is no day 00"),
                    ("0000-01-01", "there is no year 0000 (years run 0001..9999)")):
        for path, body in (("/forecast", {"series_ids": ["S0/DC1"]}),
                           ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_time_days": 7})):
            rows = [_ROW, {**_ROW, "ds": ds}]
            err, detail = _problems(client, path, {**body, "drivers": rows})
            assert err == (f"invalid request body: 1 problem: drivers.1.ds: '{ds}' is not a calendar date: {why} "
                           "(expected a date YYYY-MM-DD)"), (path, ds, err)
            assert detail[0]["field"] == "drivers.1.ds" and detail[0]["type"] == "not_a_calendar_date"
    # a leap day is a date: past the schema (this champion has no drivers: the backend's 422)
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"], "drivers": [{**_ROW, "ds": "2024-02-29"}]})
    assert r.status_code == 422 and "trained without known-future drivers" in _error(r), r.text[:300]


_LEFT_OUT_BASES = {  # (path, request model name, a body that is answered 200 without the optional fields)
    "/forecast": ("ForecastRequest", {"series_ids": ["S0/DC1"]}),
    "/safety_stock": ("SafetyStockRequest", {"series_ids": ["S0/DC1"], "on_hand": {"S0/DC1": 3}}),
    "/dealer_scores": ("DealerScoresRequest", {"region": ["East"]}),
}


def test_null_is_the_field_left_out_on_every_optional_field(client):
    """An explicit null was the default for lead_time_days, review_period_days and max_periods_of_cover but
    a 400 for horizon, levels, quantiles, service_level, lead_time_std_days and top_k ('Input should be a
    valid integer'), so a client that writes unset options as null failed on some fields only. Every field
    with a default now answers null exactly as if it were left out (horizon: the champion's 4, not 8)."""
    from serving import schemas

    checked = []
    for path, (model_name, base) in _LEFT_OUT_BASES.items():
        model = getattr(schemas, model_name)
        for name, field in model.model_fields.items():
            if field.is_required():
                continue
            body = {k: v for k, v in base.items() if k != name}
            left_out, null = client.post(path, json=body), client.post(path, json={**body, name: None})
            assert null.status_code == left_out.status_code, (path, name, null.status_code, null.text[:300])
            assert null.json() == left_out.json(), (path, name, null.text[:300])
            checked.append(f"{path} {name}")
    assert {"/forecast horizon", "/forecast levels", "/forecast quantiles", "/safety_stock service_level",
            "/safety_stock lead_time_std_days", "/safety_stock lead_time_days", "/dealer_scores top_k",
            "/safety_stock max_periods_of_cover", "/safety_stock review_period_days"} <= set(checked)
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"], "horizon": None, "levels": None})
    assert r.status_code == 200 and len(r.json()["series"][0]["forecast"]) == 4  # the champion's horizon
    assert [i["level"] for i in r.json()["series"][0]["forecast"][0]["intervals"]] == [80.0, 95.0]
    # a lead_times entry's optional spread too
    entry = {"series_ids": ["S0/DC1"], "lead_times": {"S0/DC1": {"lead_time_days": 14}}}
    left_out = client.post("/safety_stock", json=entry)
    null = client.post("/safety_stock", json={**entry, "lead_times": {"S0/DC1": {"lead_time_days": 14,
                                                                                  "lead_time_std_days": None}}})
    assert left_out.status_code == null.status_code == 200 and null.json() == left_out.json(), null.text[:300]
    assert null.json()["rows"][0]["lead_time_std_days"] == 0.0
    # a required field sent as null stays a 400 naming it
    for path, body, words in (
        ("/safety_stock", {"series_ids": None}, "series_ids: Input should be a valid array (expected a list"),
        ("/churn_scores", {"account_ids": None}, "account_ids: Input should be a valid array (expected a list"),
        ("/safety_stock", {"series_ids": ["S0/DC1"], "lead_times": {"S0/DC1": {"lead_time_days": None}}},
         "lead_times.S0/DC1.lead_time_days: Input should be a valid number (expected a finite number"),
        ("/forecast", {"series_ids": ["S0/DC1"], "drivers": [{**_ROW, "ds": None}]},
         "drivers.0.ds: Input should be a valid string (expected a date YYYY-MM-DD; got null)"),
    ):
        err, _ = _problems(client, path, body)
        assert err.startswith(f"invalid request body: 1 problem: {words}"), (path, err)


def test_on_hand_for_other_series_is_reported_on_on_hand(client):
    err, detail = _problems(client, "/safety_stock", {"series_ids": ["S0/DC1"], "on_hand": {"S1/DC2": 3, "S2/DC1": 1}})
    assert detail[0]["field"] == "on_hand" and detail[0]["loc"] == ["on_hand"]
    assert ("on_hand: names 2 series not in series_ids: ['S1/DC2', 'S2/DC1']; give on-hand only for the series "
            "you ask for") in err
    assert "<body>" not in err


def test_a_same_day_lead_time_is_sized_not_refused(client):
    """Lead time 0 days (collected at a local DC, made or drop-shipped the same day) was a 400; now
    no demand falls in the lead time (reorder point, safety stock and their normal-formula twins
    0) and the order-up-to level covers the review period (1 week) alone: the same quantile of
    the same simulated first week as the reorder point of a 1-week (7-day) lead time."""
    body = {"series_ids": ["S0/DC1"], "lead_time_days": 0, "on_hand": {"S0/DC1": 0}}
    r = client.post("/safety_stock", json=body)
    assert r.status_code == 200, r.text[:300]
    z = r.json()["rows"][0]
    assert (z["lead_time_days"], z["lead_time_std_days"], z["lead_time_demand_mean"]) == (0.0, 0.0, 0.0)
    assert (z["reorder_point"], z["safety_stock"], z["reorder_point_normal"], z["safety_stock_normal"]) == (0, 0, 0, 0)
    week = client.post("/safety_stock", json={**body, "lead_time_days": 7}).json()["rows"][0]
    assert z["order_up_to"] == week["reorder_point"] > 0
    # at the reorder point 0 nothing is late: the routine order, no warning; only backorders warn
    assert (z["action"], z["warning"], z["suggested_order"]) == ("order", None, np.ceil(z["order_up_to"]))
    back = client.post("/safety_stock", json={**body, "on_hand": {"S0/DC1": -2}}).json()["rows"][0]
    assert (back["action"], back["warning"], back["suggested_order"]) == ("replenish", "replenish", np.ceil(z["order_up_to"] + 2))
    per = client.post("/safety_stock", json={"series_ids": ["S0/DC1"], "on_hand": {"S0/DC1": 0},
                                             "lead_times": {"S0/DC1": {"lead_time_days": 0}}}).json()["rows"][0]
    assert per == z
    # with a spread the cut normal is drawn: 0 on half the paths, a reorder point above 0
    sd = client.post("/safety_stock", json={**body, "lead_time_std_days": 3}).json()["rows"][0]
    assert sd["lead_time_std_days"] == 3.0 and 0 < sd["reorder_point"] < sd["order_up_to"]
    err, detail = _problems(client, "/safety_stock", {**body, "lead_time_days": -1})
    assert detail[0]["field"] == "lead_time_days"
    assert ("lead_time_days: Input should be greater than or equal to 0 (expected a finite number between 0 and 365, "
            "inclusive; got -1)") in err
    err, detail = _problems(client, "/safety_stock", {"series_ids": ["S0/DC1"], "lead_times": {"S0/DC1": {"lead_time_days": "x"}}})
    assert detail[0]["field"] == "lead_times.S0/DC1.lead_time_days" and "a finite number" in err


def test_a_tiny_pack_size_sizes_the_order_instead_of_a_500(client):
    """order_multiple 1e-300 (any number > 0 passes the schema) with an order of ~1e12 units: the
    pack count q / multiple overflowed to inf, the answer held an infinity and the JSON encoder
    made it a 500. A pack that small cannot move a whole-unit order: the order is the units."""
    body = {"series_ids": ["S0/DC1"], "lead_time_days": 7, "on_hand": {"S0/DC1": -1e12}}
    plain = client.post("/safety_stock", json=body)
    assert plain.status_code == 200, plain.text[:300]
    for tiny in (1e-300, 5e-324):
        r = client.post("/safety_stock", json={**body, "order_multiple": {"S0/DC1": tiny}})
        assert r.status_code == 200, (tiny, r.text[:300])
        row = r.json()["rows"][0]
        assert row["action"] == "replenish" and row["order_multiple"] == tiny
        assert row["suggested_order"] == plain.json()["rows"][0]["suggested_order"] == np.ceil(row["suggested_order_unrounded"])
        assert row["suggested_order"] > 1e12


def test_a_utf8_byte_order_mark_is_named(client):
    """A body starting with EF BB BF (PowerShell / .NET write one) was refused 'not valid JSON
    (expected value at line 1 column 1)', which does not say what is wrong with '{...}'."""
    for path in ("/forecast", "/churn_scores"):
        r = client.post(path, content=b'\xef\xbb\xbf{"account_ids": ["A1"]}', headers={"content-type": "application/json"})
        assert r.status_code == 400 and "starts with a UTF-8 byte order mark (bytes ef bb bf)" in _error(r), r.text
        assert "send the JSON without it" in _error(r)


def test_json_nested_too_deep_is_named_not_called_invalid(client):
    """A body nesting arrays 201 levels deep is valid JSON (the stdlib reads it) but over the parser's
    limit; it was answered 'the body is not valid JSON (recursion limit exceeded at line 1 column 217)',
    which sends a client looking for a syntax error that is not there and says nothing of the depth a
    request has."""
    raw = b'{"account_ids": ' + b"[" * 201 + b"]" * 201 + b"}"
    assert json.loads(raw)  # valid JSON
    r = client.post("/churn_scores", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    # what is wrong first: it began 'send a JSON body with Content-Type: application/json;', which the client did
    assert _error(r) == ("the body nests arrays / objects deeper than the JSON parser allows (recursion limit exceeded "
                         "at line 1 column 217); a request nests them at most 3 levels deep (a drivers row, a "
                         "lead_times entry)")
    assert r.json()["detail"][0]["expected"] == "a JSON object nesting arrays / objects at most 3 levels deep"
    r = client.post("/churn_scores", content=b'{"account_ids": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "the body is not valid JSON (EOF while parsing" in _error(r), r.text[:300]

def test_unknown_fields_are_cut_and_counted_not_echoed_in_full(client):
    err, detail = _problems(client, "/churn_scores", {"account_ids": ["A1"], "f" * 100_000: 1})
    assert len(err) < 500 and detail[0]["field"] == "f" * 100 + "... (100000 characters)"
    err, detail = _problems(client, "/churn_scores", {"account_ids": ["A1"], **{f"f{i}": 1 for i in range(2000)}})
    assert err.startswith("invalid request body: 2000 problems: f0: Extra inputs are not permitted")
    assert err.endswith("; and 1990 more") and len(detail) == 100


def test_an_unavailable_level_or_horizon_is_named_as_sent(client):
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"], "horizon": 4, "levels": [99.9999999]})
    assert r.status_code == 422
    assert _error(r) == "level 99.9999999 is not available; the champion has intervals at [80, 95] %"
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"], "horizon": 4, "quantiles": [0.1000001]})
    assert r.status_code == 422 and _error(r).startswith("quantile 0.1000001 is not available")
    # the champion forecasts 4 weeks; a request that leaves horizon out (default 8) gets all 4, not a 422
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"]})
    assert r.status_code == 200 and len(r.json()["series"][0]["forecast"]) == 4, r.text
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"], "horizon": 8})
    assert r.status_code == 422 and _error(r).endswith("was fitted for 4); got 8")


def test_a_repeated_quantile_is_answered_once_as_a_repeated_level_is(client):
    """levels [80, 80] gave one interval but quantiles [0.1, 0.1] two identical entries."""
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"], "horizon": 1, "levels": [80, 80],
                                       "quantiles": [0.9, 0.1, 0.9, 0.1]})
    assert r.status_code == 200, r.text[:300]
    point = r.json()["series"][0]["forecast"][0]
    assert [i["level"] for i in point["intervals"]] == [80.0]
    assert [q["q"] for q in point["quantiles"]] == [0.9, 0.1]  # in the order asked
    assert [q["value"] for q in point["quantiles"]] == [point["intervals"][0]["hi"], point["intervals"][0]["lo"]]


def test_a_review_period_beyond_the_horizon_is_named_in_the_422(client):
    """A review period too long for the champion's horizon was refused with 'pass a shorter
    lead_time_days or lead_time_std_days', naming the lead times only, even with a lead time of 0."""
    r = client.post("/safety_stock", json={"series_ids": ["S0/DC1"], "lead_time_days": 0, "review_period_days": 60})
    assert r.status_code == 422
    err = _error(r)
    assert "lead times [0.0] days, spreads [0.0] days, review period 60 days; they need" in err, err
    assert "pass a shorter lead_time_days, lead_time_std_days or review_period_days" in err
    r = client.post("/safety_stock", json={"series_ids": ["S0/DC1"], "lead_time_days": 0})  # the config's review period
    assert r.status_code == 200 and r.json()["review_period_days"] == 7.0


# ----------------------------------------------------------------- keys
def _send(client, method, path, *, headers, **kw):
    """A request with exactly these credentials (without the client's default key)."""
    req = client.build_request(method, path, **kw)
    del req.headers["X-API-Key"]
    req.headers.update(headers)
    return client.send(req)


def test_a_401_says_what_was_wrong_with_the_credentials(client):
    body = {"account_ids": ["A1"]}
    cases = [({}, "no key was sent"),
             ({"X-API-Key": ""}, "no key was sent"),
             ({"X-API-Key": "not-a-key-at-all"}, "the key sent matches no configured key"),
             ({"Authorization": f"Basic {KEY}"}, "an Authorization header with the scheme 'Basic'"),
             ({"Authorization": "Bearer"}, "no key was sent"),  # read as the scheme 'Bearer' not read
             ({"Authorization": "Bearer   "}, "no key was sent")]
    for headers, words in cases:
        r = _send(client, "POST", "/churn_scores", json=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "missing or invalid API key"
        assert r.json()["detail"].startswith(words) and KEY not in r.text, (headers, r.json())
    r = _send(client, "POST", "/churn_scores", json=body, headers={"Authorization": f"bearer {KEY}"})
    assert r.status_code == 200 and r.json()["scores"][0]["account_id"] == "A1"
    r = client.post("/churn_scores", json=body, headers={"X-API-Key": FC_KEY})
    assert r.status_code == 403 and "'churn' scope" in _error(r)
    assert dt.date.fromisoformat(client.post("/churn_scores", json=body).json()["as_of"]) == dt.date(2025, 1, 1)



def _send_pairs(client, method, path, pairs, **kw):
    """A request whose credentials are exactly ``pairs`` (header name, value), repeats kept."""
    req = client.build_request(method, path, **kw)
    req.headers = httpx.Headers([*((k, v) for k, v in req.headers.multi_items() if k.lower() != "x-api-key"), *pairs])
    return client.send(req)


def test_two_api_keys_in_one_request_are_refused_naming_the_header(client):
    """Two X-API-Key headers were read as the first, two Authorization headers as the last, and
    X-API-Key next to Authorization: Bearer with another key as the X-API-Key: which key (and so which
    scopes) a request ran under depended on header order, e.g. a proxy adding its own key. Now a 400
    naming the repeated header, before any key is checked (nothing counts as a wrong key)."""
    body = {"account_ids": ["A1"]}
    cases = [
        ([("X-API-Key", KEY), ("X-API-Key", "not-a-key-at-all")], "the X-API-Key header is sent 2 times"),
        ([("X-API-Key", "not-a-key-at-all"), ("X-API-Key", KEY)], "the X-API-Key header is sent 2 times"),
        ([("X-API-Key", KEY), ("X-API-Key", KEY), ("X-API-Key", KEY)], "the X-API-Key header is sent 3 times"),
        ([("Authorization", f"Bearer {FC_KEY}"), ("Authorization", f"Bearer {KEY}")],
         "the Authorization header is sent 2 times"),
        ([("Authorization", f"Basic {KEY}"), ("Authorization", f"Bearer {KEY}")],
         "the Authorization header is sent 2 times"),
        ([("X-API-Key", KEY), ("Authorization", f"Bearer {FC_KEY}")],
         "the X-API-Key and Authorization: Bearer headers carry different keys"),
        ([("Authorization", f"Bearer {KEY}"), ("X-API-Key", "")],
         "the X-API-Key and Authorization: Bearer headers carry different keys"),
    ]
    for pairs, words in cases:
        r = _send_pairs(client, "POST", "/churn_scores", pairs, json=body)
        assert r.status_code == 400, (pairs, r.status_code, r.text[:300])
        assert _error(r).startswith(words), (pairs, r.json())
        assert "send one key" in _error(r) and KEY not in r.text and FC_KEY not in r.text, r.json()
        assert "www-authenticate" not in r.headers
    r = _send_pairs(client, "GET", "/model_info", [("X-API-Key", KEY), ("X-API-Key", KEY)])
    assert r.status_code == 400 and _error(r).startswith("the X-API-Key header is sent 2 times"), r.text[:300]
    # one key, or the same key in both headers, or a key beside another scheme's credentials: as before
    for pairs in ([("X-API-Key", KEY)], [("X-API-Key", KEY), ("Authorization", f"Bearer {KEY}")],
                  [("X-API-Key", KEY), ("Authorization", "Basic dXNlcjpwYXNz")]):
        r = _send_pairs(client, "POST", "/churn_scores", pairs, json=body)
        assert r.status_code == 200 and r.json()["scores"][0]["account_id"] == "A1", (pairs, r.text[:300])
    # /readyz is never refused: an ambiguous key there is no key
    r = _send_pairs(client, "GET", "/readyz", [("X-API-Key", KEY), ("X-API-Key", KEY)])
    assert r.status_code == 200, r.text[:300]


# ----------------------------------------------------------------- load failures
def _raised(fn):
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - the error the loader would catch
        return err
    raise AssertionError("nothing raised")


def test_a_champion_failing_on_the_services_own_code_is_not_blamed_on_its_version(tmp_path, monkeypatch):
    """A champion that failed because the service's code or packages do not import (a half-updated
    install: "cannot import name 'x' from 'serving.settings'") was hinted 'promote or roll back to
    another version', which every version would fail alike. Failures of the model's own files keep
    that hint."""
    import importlib
    import pickle

    from serving.loader import _failure_hint
    from training._tracking_models import _import_class

    (tmp_path / "fz_halfinstalled.py").write_text("from serving.settings import no_such_setting\nclass M: ...\n")
    (tmp_path / "fz_syntax.py").write_text("def broken(:\n")
    (tmp_path / "fz_pkgmissing.py").write_text("def build():\n    import fz_no_such_package  # noqa\n")
    (tmp_path / "fz_attr.py").write_text("import serving.settings\ndef build():\n    return serving.settings.no_such_thing\n")
    (tmp_path / "fz_model.py").write_text("class Old: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fz_model

    pickled = pickle.dumps(fz_model.Old())
    del fz_model.Old  # a model pickled from a class this code no longer has
    code = {
        "import of the service's module": _raised(lambda: importlib.import_module("fz_halfinstalled")),
        "the same behind the estimator-class ConfigError": _raised(lambda: _import_class("fz_halfinstalled.M")),
        "syntax error": _raised(lambda: importlib.import_module("fz_syntax")),
        "missing package": _raised(lambda: importlib.import_module("fz_pkgmissing").build()),
        "attribute missing from a module": _raised(lambda: importlib.import_module("fz_attr").build()),
        "unpickled from a package not installed": _raised(lambda: pickle.loads(b"cfz_nopkg1\nOld\n.")),
    }
    model = {
        "unpickled class gone": _raised(lambda: pickle.loads(pickled)),
        "unpickled module gone": _raised(lambda: pickle.loads(b"cserving.fz_gone\nOld\n.")),
        "recorded class gone": _raised(lambda: _import_class("fz_model.Gone")),
        "recorded module gone": _raised(lambda: _import_class("serving.fz_gone.Old")),
        "corrupt file": _raised(lambda: pickle.loads(b"\x80\x04garbage")),
    }
    assert "cannot import name 'no_such_setting' from 'serving.settings'" in str(code["the same behind the estimator-class ConfigError"])
    for what, err in code.items():
        hint = _failure_hint("churn", "2", err)
        assert "the service's own code or its installed packages fail to import" in hint, (what, err, hint)
        assert "fix the installation" in hint and "restart the service" in hint and "promote or roll" not in hint, what
    assert "(ImportError: cannot import name 'no_such_setting'" in _failure_hint("churn", "2", code["the same behind the estimator-class ConfigError"])
    assert {k: type(e).__name__ for k, e in model.items()} == {
        "unpickled class gone": "AttributeError", "unpickled module gone": "ModuleNotFoundError",
        "recorded class gone": "ConfigError", "recorded module gone": "ConfigError", "corrupt file": "UnpicklingError"}
    assert {type(e).__name__ for e in code.values()} == {"ImportError", "ConfigError", "SyntaxError", "ModuleNotFoundError",
                                                          "AttributeError"}
    for what, err in model.items():
        hint = _failure_hint("churn", "2", err)
        assert hint.startswith("not retried while version 2 is the champion, as its files would fail alike: promote or roll "
                               "back to another version (dealerml promote / rollback churn)"), (what, err, hint)


def test_a_key_named_twice_in_a_json_object_is_refused_naming_it(client):
    """{"account_ids": ["nope"], "account_ids": ["A1"]} was served as the last list (BentoML's parser
    keeps the last value of a repeated key), whatever the client meant."""
    def post(path, raw):
        return client.post(path, content=raw.encode(), headers={"content-type": "application/json"})

    r = post("/churn_scores", '{"account_ids": ["nope"], "account_ids": ["A1"]}')
    assert r.status_code == 400, r.text[:300]
    assert _error(r) == ("invalid request body: 1 problem: account_ids: the key 'account_ids' appears 2 times in one JSON "
                         "object (the request body); send each key once (which of its values was meant cannot be told)")
    assert r.json()["detail"] == [{"field": "account_ids", "loc": ["account_ids"], "msg": _error(r).split("account_ids: ", 1)[1],
                                   "type": "duplicate_key", "expected": "each key at most once in a JSON object"}]
    r = post("/forecast", '{"series_ids": ["S0/DC1"], "horizon": 1, "drivers": [{"unique_id": "S0/DC1", "ds": "2023-02-27", '
                          '"promo": 1}, {"unique_id": "S0/DC1", "ds": "2023-03-06", "promo": 1, "ds": "2023-03-13", "ds": "x"}]}')
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "drivers.1.ds", r.text[:300]
    assert "the key 'ds' appears 3 times in one JSON object (drivers.1)" in _error(r)
    r = post("/safety_stock", '{"series_ids": ["S0/DC1"], "on_hand": {"S0/DC1": 5, "S0/DC1": 500}}')
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["on_hand", "S0/DC1"], r.text[:300]
    # the same key in different objects, and the same text as a value, are no duplicates
    r = post("/safety_stock", '{"series_ids": ["S0/DC1"], "on_hand": {"S0/DC1": 5}, "lead_times": {"S0/DC1": '
                              '{"lead_time_days": 7}}}')
    assert r.status_code == 200, r.text[:300]
    r = post("/churn_scores", '{"account_ids": ["A1", "account_ids"]}')
    assert r.status_code == 200 and [s["account_id"] for s in r.json()["scores"]] == ["A1"], r.text[:300]
    r = post("/churn_scores", '{"account_ids": ["A1"], "account_ids": ')  # not JSON: the parser's answer, as before
    assert r.status_code == 400 and "not valid JSON" in _error(r), r.text[:300]


def test_the_openapi_document_gives_the_package_version_outside_a_bento(client):
    """/docs.json said "version": "None" under a service not built into a bento (BentoML writes the
    bento's version there, else the text "None")."""
    from importlib.metadata import version

    r = client.get("/docs.json")
    assert r.status_code == 200 and r.headers["content-length"] == str(len(r.content)), r.text[:300]
    doc = r.json()
    assert doc["info"]["version"] == version("dealerml") != "None"
    assert doc["info"]["title"] == "dealerml" and "/forecast" in doc["paths"]


def test_empty_levels_or_quantiles_ask_for_none_of_them(client):
    """Unlike an empty filter (refused: it would read as 'every series'), ``levels: []`` and
    ``quantiles: []`` are a choice of outputs: none of them. ``quantiles: []`` is the field's default,
    and ``levels: []`` with quantiles is how a caller asks for the quantiles without the intervals."""
    base = {"series_ids": ["S0/DC1"], "horizon": 2}
    full = client.post("/forecast", json={**base, "quantiles": [0.1, 0.975]}).json()["series"][0]["forecast"]
    r = client.post("/forecast", json={**base, "levels": [], "quantiles": []})
    assert r.status_code == 200, r.text[:300]
    points = r.json()["series"][0]["forecast"]
    assert [(p["intervals"], p["quantiles"]) for p in points] == [([], [])] * 2
    assert [p["mean"] for p in points] == [p["mean"] for p in full]
    r = client.post("/forecast", json={**base, "levels": [], "quantiles": [0.1, 0.975]})
    assert r.status_code == 200, r.text[:300]
    points = r.json()["series"][0]["forecast"]
    assert all(p["intervals"] == [] for p in points)
    assert [p["quantiles"] for p in points] == [p["quantiles"] for p in full]
    assert full[0]["quantiles"][0]["value"] == full[0]["intervals"][0]["lo"]  # 0.1 = the 80 % band's low end


def test_the_openapi_document_lets_every_optional_field_be_null(client):
    """null on a field with a default is the field left out (161bece); /docs.json said no field took
    null (BentoML drops the null branch of an optional type), so a client generated from it refused to
    send null even for ``lead_time_days``, and schemathesis never tried it. OpenAPI 3.0: ``nullable``."""
    from serving.schemas import (
        ChurnScoresRequest,
        DealerScoresRequest,
        ForecastRequest,
        SafetyStockRequest,
        SeriesLeadTime,
    )

    doc = client.get("/docs.json").json()
    assert doc["openapi"].startswith("3.0")
    bodies = {op["requestBody"]["content"]["application/json"]["schema"]["title"]: op["requestBody"]["content"]["application/json"]["schema"]
              for path in doc["paths"].values() for op in path.values() if "requestBody" in op}
    checked = 0
    for model in (ForecastRequest, SafetyStockRequest, ChurnScoresRequest, DealerScoresRequest, SeriesLeadTime):
        schema = bodies.get(f"{model.__name__}IODescriptor") or doc["components"]["schemas"][model.__name__]
        for name, field in model.model_fields.items():
            assert schema["properties"][name].get("nullable", False) == (not field.is_required()), (model.__name__, name)
            checked += 1
    assert checked >= 25
    horizon = bodies["ForecastRequestIODescriptor"]["properties"]["horizon"]
    assert (horizon["default"], horizon["minimum"], horizon["maximum"], horizon["nullable"]) == (8, 1, 104, True)
    # the schema's 104 is the service's bound; the champion's own horizon is the one a client meets first
    assert "at most the champion's horizon (/model_info summary.horizon; beyond it: 422)" in horizon["description"]


def test_an_on_hand_date_of_year_one_is_noted_not_a_500(client):
    """on_hand_date 0001-01-01 (what .NET and Java clients send for an unset date) passed the schema and
    was a 500: the note on an old count subtracted it from the sizing start in pandas nanoseconds, which
    stop at 1677-09-21. It is noted like any other old count, with the days between."""
    body = {"series_ids": ["S0/DC1"], "lead_time_days": 7, "on_hand": {"S0/DC1": 5}}
    start = client.post("/safety_stock", json={**body, "on_hand_date": "2024-01-01"})
    assert start.status_code == 200, start.text[:300]
    begin = dt.date.fromisoformat(start.json()["rows"][0]["message"].split("sizing starts (")[1][:10])
    for day in ("0001-01-01", "1677-09-20", "1900-01-01"):
        r = client.post("/safety_stock", json={**body, "on_hand_date": day})
        assert r.status_code == 200, (day, r.text[:300])
        row = r.json()["rows"][0]
        days = (begin - dt.date.fromisoformat(day)).days
        assert row["on_hand_date"] == day
        assert f"stock counted {day}, {days} days before the sizing starts ({begin.isoformat()})" in row["message"], row


def test_an_unknown_field_of_a_lead_times_entry_says_the_fields_it_takes(client):
    """A top-level unknown field said 'expected only the fields [...]', but one inside a ``lead_times``
    entry (``{"lead_time_days": 7, "lead_time_std": 2}``, a typo of ``lead_time_std_days``) said only
    'Extra inputs are not permitted': nothing told the caller which fields an entry takes."""
    body = {"series_ids": ["S0/DC1"], "lead_times": {"S0/DC1": {"lead_time_days": 7, "lead_time_std": 2}}}
    err, detail = _problems(client, "/safety_stock", body)
    assert detail[0]["field"] == "lead_times.S0/DC1.lead_time_std"
    assert detail[0]["expected"] == "only the fields ['lead_time_days', 'lead_time_std_days']"
    assert err == ("invalid request body: 1 problem: lead_times.S0/DC1.lead_time_std: Extra inputs are not "
                   "permitted (expected only the fields ['lead_time_days', 'lead_time_std_days'])")


def test_an_on_hand_date_that_is_no_date_says_why_and_what_was_sent(client):
    """on_hand_date 2024-02-30 was 'must be a date like 2024-05-10 (YYYY-MM-DD); got '2024-02-30'', the
    same words as for 30/06/2024, though it has the form asked for (a plan row's ds says why it is no
    date); and a JSON number 20240630 was shown as the text '20240630', as if the client had sent that."""
    base = {"series_ids": ["S0/DC1"], "lead_time_days": 7, "on_hand": {"S0/DC1": 5}}
    err, detail = _problems(client, "/safety_stock", {**base, "on_hand_date": "2024-02-30"})
    assert detail[0]["field"] == "on_hand_date" and detail[0]["type"] == "not_a_calendar_date"
    assert err == ("invalid request body: 1 problem: on_hand_date: '2024-02-30' is not a calendar date: 2024-02 "
                   "has 29 days (expected a date YYYY-MM-DD)")
    err, _ = _problems(client, "/safety_stock", {**base, "on_hand_date": 20240630})
    assert "on_hand_date: must be a date like 2024-05-10 (YYYY-MM-DD); got the number 20240630" in err
    err, _ = _problems(client, "/safety_stock", {**base, "on_hand_date": "30/06/2024"})
    assert "on_hand_date: must be a date like 2024-05-10 (YYYY-MM-DD); got '30/06/2024'" in err


def test_the_openapi_document_gives_the_answers_keys_and_body_limit_a_client_meets(client):
    """/docs.json documented each POST endpoint with 200, 400, 404 and 500 only (the 400 with a
    ``detail`` string, where the service sends a list of problems), GET /churn_alerts with a 422
    ``{"detail": [...]}`` it never sends (a bad query is a 400 ``{"error"}``), no API key at all, and
    not the body size limit: a client generated from it knew of no 401 / 403 / 413 / 415 / 422 / 429 /
    503 and no way to send its key."""
    doc = client.get("/docs.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["BearerKey"] == {"type": "http", "scheme": "bearer"}
    error = doc["components"]["schemas"]["ErrorAnswer"]
    assert error["required"] == ["error"] and error["properties"]["error"]["type"] == "string"
    problem = doc["components"]["schemas"]["RequestProblem"]
    assert set(problem["properties"]) == {"field", "loc", "msg", "type", "expected", "got"}
    ref = {"$ref": "#/components/schemas/ErrorAnswer"}
    for path in ("/forecast", "/safety_stock", "/churn_scores", "/dealer_scores"):
        op = doc["paths"][path]["post"]
        assert op["security"] == [{"ApiKey": []}, {"BearerKey": []}], path
        for status in ("400", "401", "403", "404", "413", "415", "422", "429", "503"):
            assert op["responses"][status]["content"]["application/json"]["schema"] == ref, (path, status)
        assert "4,194,304 bytes" in op["requestBody"]["description"], path
        assert "4,194,304 bytes" in op["responses"]["413"]["description"], path
    alerts = doc["paths"]["/churn_alerts"]["get"]
    assert "422" not in alerts["responses"] and set(alerts["responses"]) >= {"200", "400", "401", "403", "404", "503"}
    assert alerts["responses"]["400"]["content"]["application/json"]["schema"] == ref
    assert "Retry-After" in alerts["responses"]["503"]["headers"]
    assert doc["paths"]["/model_info"]["get"]["security"] == [{"ApiKey": []}, {"BearerKey": []}]
    for path in ("/livez", "/readyz", "/metrics"):
        assert doc["paths"][path]["get"]["security"] == [], path  # open: probes and scrapers send no key
    # what the document says is what the service answers
    r = client.post("/forecast", json={"series_ids": ["S0/DC1"], "horizon": 0})
    assert r.status_code == 400 and set(r.json()) <= set(error["properties"])
    assert set(r.json()["detail"][0]) == set(problem["properties"])
    r = client.get("/churn_alerts", params={"limit": "0"})
    assert r.status_code == 400 and set(r.json()) <= set(error["properties"])
    r = client.post("/forecast", json={"series_ids": ["nope"]})
    assert r.status_code == 404 and set(r.json()) <= set(error["properties"])


def test_order_rules_for_a_series_without_on_hand_are_said_not_dropped(client):
    """A series with no on-hand (none in the request, none in the order book's inventory) is sized but
    gets no order; its on_order, min_order_qty and order_multiple from the request were dropped without
    a word (on_order null, message null), so a planner who sent 5 on order could not tell they were
    never counted. The row's message now names them and what to send."""
    base = {"series_ids": ["S0/DC1", "S1/DC2"], "lead_time_days": 7}
    r = client.post("/safety_stock", json={**base, "on_order": {"S0/DC1": 5}, "min_order_qty": {"S0/DC1": 4}})
    assert r.status_code == 200, r.text[:300]
    rows = {row["unique_id"]: row for row in r.json()["rows"]}
    s0, s1 = rows["S0/DC1"], rows["S1/DC2"]
    assert (s0["on_hand"], s0["on_order"], s0["action"], s0["suggested_order"]) == (None, None, None, None)
    assert s0["message"] == ("no on-hand for this series (not in the request's on_hand, nor in the order book's "
                             "inventory), so no order is suggested and its on_order and min_order_qty were not "
                             "applied; send its on_hand")
    assert s1["message"] is None  # nothing was asked for it
    plain = client.post("/safety_stock", json=base).json()["rows"]
    assert [(x["safety_stock"], x["reorder_point"]) for x in plain] == [(rows[x["unique_id"]]["safety_stock"],
                                                                        rows[x["unique_id"]]["reorder_point"]) for x in plain]
    # with on-hand the same fields are applied, as before
    r = client.post("/safety_stock", json={**base, "on_hand": {"S0/DC1": 0}, "on_order": {"S0/DC1": 5}})
    row = next(x for x in r.json()["rows"] if x["unique_id"] == "S0/DC1")
    assert row["on_order"] == 5.0 and row["inventory_position"] == 5.0 and "not applied" not in (row["message"] or "")


def test_churn_alerts_of_a_churn_model_that_failed_to_load_answer_no_retry_after(client):
    """GET /churn_alerts set Retry-After: 5 on every 503, also when the churn model had failed to load,
    where asking again will not help by itself (the other routes, and the OpenAPI text, say no header
    then). The alerts table's own 503s carry it (test_churn_alerts_db_locks)."""
    import bentoml

    svc = bentoml.get_current_service()
    ok = svc.state.backend("churn")
    svc.state.fail("churn", "OSError: bad file")
    try:
        failed = client.get("/churn_alerts?limit=1")
    finally:
        svc.state.succeed("churn", ok)
    assert failed.status_code == 503 and "Retry-After" not in failed.headers
    assert "failed to load: OSError: bad file" in failed.json()["error"]
    assert client.get("/churn_alerts?limit=1").status_code == 200
