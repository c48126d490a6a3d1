"""API keys: parsing, scopes, constant-time lookup and the ASGI middleware's 401/403 answers."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving.auth import (
    OPEN_PATHS,
    ROUTE_SCOPES,
    APIKeyMiddleware,
    KeyConfigError,
    load_keyring,
    parse_keys,
)
from serving.errors import install_log_filter


def test_parse_keys_scopes_and_star():
    ring = parse_keys("planner-key-1:forecast; crm-key-000:churn,dealers\nops-key-0000:*  # all")
    assert ring.scopes_for("planner-key-1") == {"forecast"}
    assert ring.scopes_for("crm-key-000") == {"churn", "dealers"}
    assert ring.scopes_for("ops-key-0000") == {"forecast", "churn", "dealers", "admin"}
    assert ring.scopes_for("planner-key-") is None  # a prefix is not the key
    assert ring.scopes_for("") is None and ring.scopes_for(None) is None
    assert len(ring) == 3


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no-colon-key", "entry 1 must look like KEY:scope"),
        ("short:churn", "at least 8 characters"),
        ("long-enough-key:", "has no scopes"),
        ("long-enough-key:churn,billing", "unknown scope(s) ['billing']"),
    ],
)
def test_parse_keys_errors_name_entry_not_key(spec, message):
    with pytest.raises(KeyConfigError) as err:
        parse_keys(spec)
    assert message in str(err.value)
    assert "long-enough-key" not in str(err.value)  # the key itself is never echoed


def test_keys_file_and_env_precedence(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# CRM\ncrm-file-key-1:churn\n")
    assert load_keyring({"DEALERML_API_KEYS_FILE": str(f)}).scopes_for("crm-file-key-1") == {"churn"}
    env = {"DEALERML_API_KEYS": "env-key-00001:forecast", "DEALERML_API_KEYS_FILE": str(f)}
    ring = load_keyring(env)
    assert ring.scopes_for("env-key-00001") == {"forecast"}
    assert ring.scopes_for("crm-file-key-1") is None
    with pytest.raises(KeyConfigError, match="cannot read the keys file"):
        load_keyring({"DEALERML_API_KEYS_FILE": str(tmp_path / "missing.txt")})
    assert len(load_keyring({})) == 0


def _app(ring):
    async def ok(request):
        return JSONResponse({"path": request.url.path})

    routes = [Route(p, ok, methods=["GET", "POST"]) for p in
              ("/livez", "/readyz", "/metrics", "/forecast", "/churn_scores", "/churn_alerts",
               "/dealer_scores", "/model_info", "/safety_stock", "/other")]
    return APIKeyMiddleware(Starlette(routes=routes), keyring=ring)


def _call(app, method, path, headers=None):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, path, headers=headers or {}, json={} if method == "POST" else None)

    return asyncio.run(go())


def test_middleware_401_403_and_open_probes():
    app = _app(parse_keys("fc-key-00001:forecast;crm-key-0001:churn;adm-key-0001:admin"))
    for p in ("/livez", "/readyz", "/metrics"):
        assert _call(app, "GET", p).status_code == 200
    data = {"/forecast": "forecast", "/safety_stock": "forecast", "/churn_scores": "churn",
            "/churn_alerts": "churn", "/dealer_scores": "dealers"}
    for path, scope in data.items():
        method = "GET" if path == "/churn_alerts" else "POST"
        r = _call(app, method, path)
        assert r.status_code == 401 and r.json()["error"] == "missing or invalid API key"
        assert r.headers["www-authenticate"].startswith("ApiKey")
        assert _call(app, method, path, {"X-API-Key": "wrong-key-0001"}).status_code == 401
        good = "fc-key-00001" if scope == "forecast" else "crm-key-0001"
        expected = 200 if scope in ("forecast", "churn") else 403
        assert _call(app, method, path, {"X-API-Key": good}).status_code == expected
        bad = "crm-key-0001" if scope == "forecast" else "fc-key-00001"
        r = _call(app, method, path, {"X-API-Key": bad})
        assert r.status_code == 403 and f"'{scope}' scope" in r.json()["error"]
        assert _call(app, method, path, {"Authorization": "Bearer adm-key-0001"}).status_code == 200
    # model_info: any valid key; unknown paths still need a key
    assert _call(app, "GET", "/model_info", {"X-API-Key": "crm-key-0001"}).status_code == 200
    assert _call(app, "GET", "/model_info").status_code == 401
    assert _call(app, "GET", "/other").status_code == 401


def test_no_keys_configured_means_401_everywhere():
    app = _app(parse_keys(""))
    assert _call(app, "POST", "/churn_scores", {"X-API-Key": "anything-at-all"}).status_code == 401
    assert _call(app, "GET", "/readyz").status_code == 200


def test_log_filter_drops_request_body_from_validation_tracebacks(caplog):
    from pydantic import ValidationError

    from serving.schemas import ChurnScoresRequest

    install_log_filter()
    log = logging.getLogger("bentoml._internal.server.http_app")
    secret = b'{"account_ids": [], "note": "SECRET-BODY-VALUE"}'
    with caplog.at_level(logging.INFO, logger="bentoml._internal.server.http_app"):
        try:
            ChurnScoresRequest.model_validate_json(secret)
        except ValidationError:
            log.error("Exception on %s [%s]", "/churn_scores", "POST", exc_info=True)
    text = caplog.text
    assert "rejected request: 2 validation error(s)" in text
    assert "account_ids" in text and "extra_forbidden" in text
    assert "SECRET-BODY-VALUE" not in text and "Traceback" not in text


def test_every_route_of_the_service_is_scoped_or_open():
    """A route missing from ROUTE_SCOPES would take any valid key (a forecast-only key could read
    churn scores): every BentoML API and every FastAPI route of the service must be listed, with a
    scope unless it is /model_info (any key) or an open probe."""
    from serving.service import ROUTES, DealerML, web

    routes = {a.route for a in DealerML.apis.values()} | set(web.openapi()["paths"])
    assert {"/forecast", "/safety_stock", "/churn_scores", "/dealer_scores", "/churn_alerts", "/model_info"} <= routes
    for path in routes | set(ROUTES):
        assert path in OPEN_PATHS or path in ROUTE_SCOPES, f"{path} is neither scoped nor open"
        if path in ROUTE_SCOPES and path != "/model_info":
            assert ROUTE_SCOPES[path] in ("forecast", "churn", "dealers", "admin"), path


def test_answers_that_need_a_key_are_never_stored_by_a_cache_in_front():
    """A CRM's GET /churn_alerts or an admin's /model_info carried no Cache-Control nor Vary: a cache in
    front (one that caches GETs without headers, e.g. Varnish's defaults, which only skip requests with an
    Authorization header or a cookie) could hand them to a request with another key or none."""
    app = _app(parse_keys("crm-key-0001:churn;adm-key-0001:admin"))
    crm, adm = {"X-API-Key": "crm-key-0001"}, {"Authorization": "Bearer adm-key-0001"}
    for method, path, headers, status in (("GET", "/churn_alerts", crm, 200), ("GET", "/model_info", adm, 200),
                                          ("POST", "/churn_scores", crm, 200), ("GET", "/churn_alerts", {}, 401),
                                          ("POST", "/forecast", crm, 403), ("GET", "/other", crm, 200)):
        r = _call(app, method, path, headers)
        assert r.status_code == status, (path, r.text)
        assert r.headers.get("cache-control") == "no-store", (path, dict(r.headers))
        assert r.headers.get("vary") == "X-API-Key, Authorization", (path, dict(r.headers))
    for path in ("/livez", "/metrics"):  # open and the same for everyone: left to the caches
        assert "cache-control" not in _call(app, "GET", path).headers
