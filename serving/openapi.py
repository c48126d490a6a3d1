"""The dealerml service's OpenAPI document (``/docs.json``) as the service answers.

:class:`DocsVersionMiddleware` rewrites the document BentoML serves: the package version where
BentoML writes "None", ``nullable`` on request fields with a default, and the answers, API keys
and body limit of each route (:func:`document_answers`).

BentoML documents each POST endpoint with 200, 400, 404 and 500 answers (the 400 with a ``detail``
string; the service sends a list of problems there), and FastAPI documents GET /churn_alerts' bad
query as a 422 ``{"detail": [...]}`` the service never sends (it answers 400 ``{"error"}``). Neither
says that a key is needed or how large a body may be. :func:`document_answers` rewrites the
document as the service answers: every 4xx / 503 an endpoint gives, with the one error shape
(``{"error": ..., ...}``), the ``X-API-Key`` / ``Authorization: Bearer`` key of each route that needs
one, and the body limit in force.
"""

from __future__ import annotations

import json
from typing import Any

from serving.errors import _holding
from serving.settings import RequestLimits, request_limits

__all__ = ["DocsVersionMiddleware", "document_answers", "service_version", "ERROR_SCHEMA", "PROBLEM_SCHEMA"]

ERROR_SCHEMA = "ErrorAnswer"
PROBLEM_SCHEMA = "RequestProblem"
SECURITY = [{"ApiKey": []}, {"BearerKey": []}]
"""Either header carries the key (send one: both with different keys is a 400)."""

_ERROR = {
    "type": "object",
    "title": ERROR_SCHEMA,
    "description": "Every 4xx / 503 answer of the service: what is wrong, naming the field or parameter, the "
                   "rule and the value received",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong and what was expected, in one line"},
        "detail": {
            "description": "400 (a request body): one entry per problem, at most 100 (the error says how many); "
                           "401 / 403 / 429 and an unready /readyz: a sentence",
            "oneOf": [{"type": "array", "items": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}},
                      {"type": "string"}],
        },
        "unknown_ids": {"type": "array", "items": {"type": "string"},
                        "description": "404: the requested ids / filter values the served model does not know"},
        "not_forecast": {"type": "object", "additionalProperties": {"type": "string"},
                         "description": "404 of /forecast, /safety_stock: ids in the champion's history that "
                                        "were not forecast, and why"},
        "not_scored": {"type": "array", "items": {"type": "object"},
                       "description": "404 of /churn_scores: {account_id, reason} per id without a score"},
        "limit_bytes": {"type": "integer", "description": "413: the body limit in force, bytes"},
    },
}
_PROBLEM = {
    "type": "object",
    "title": PROBLEM_SCHEMA,
    "properties": {
        "field": {"type": "string", "description": "Where, dotted (horizon, drivers.3.ds, on_hand.<id>); "
                                                   "<body> for the body as a whole"},
        "loc": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string", "description": "What is wrong"},
        "type": {"type": "string", "description": "The kind of problem (missing, too_long, extra_forbidden, ...)"},
        "expected": {"type": "string", "nullable": True, "description": "What the field takes"},
        "got": {"type": "string", "description": "The value sent, when the msg does not say it: JSON literals as "
                                                 "sent ('8', true, null, NaN), long text cut, lists and objects by "
                                                 "their size; absent for a missing or unknown field"},
    },
}

_STATUS = {
    "400": "A request the schema refuses (bounds, types, list lengths, unknown or repeated fields, empty "
           "filters), a body that is not UTF-8 JSON, query parameters on a POST endpoint, a bad query on a GET "
           "endpoint, or an API key sent twice",
    "401": "No API key, or one that matches none (X-API-Key: <key> or Authorization: Bearer <key>)",
    "403": "The key lacks the scope of this endpoint (forecast: /forecast, /safety_stock; churn: "
           "/churn_scores, /churn_alerts; dealers: /dealer_scores; admin or *: all)",
    "404": "Unknown ids or filter values (listed in unknown_ids), filters that together select nothing, or "
           "a model this deployment does not serve",
    "408": "The body was not received in full in time (serving.body_timeout_seconds, default 60 s)",
    "413": "The body is larger than {limit}",
    "415": "A compressed body (Content-Encoding) or a charset other than UTF-8",
    "422": "A well-formed request the served champion cannot answer (a level, quantile or horizon it does not "
           "have, a lead time beyond its horizon, a bad drivers plan); the error names what it has",
    "429": "Too many wrong API keys from this address, or more requests in progress at once than the service's "
           "limit (traffic.max_concurrency, the limit in the answer); retry after the Retry-After seconds",
    "503": "The model is not loaded (yet): see /readyz; while it is pending or loading the answer carries "
           "Retry-After (none when it failed to load)",
}
_RETRY = {"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}}
_OPEN = ("/livez", "/readyz", "/healthz", "/metrics")
"""Routes that need no key (probes, scrapers)."""


def _answer(status: str, max_body_bytes: int, extra: str = "") -> dict[str, Any]:
    text = _STATUS[status].format(limit=f"{max_body_bytes:,} bytes (the limit in force)") + extra
    out: dict[str, Any] = {"description": text,
                           "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}}
    if status == "429":
        out["headers"] = dict(_RETRY)
    return out


def document_answers(spec: dict, *, post_paths: set[str] | frozenset[str], max_body_bytes: int) -> None:
    """Rewrite ``spec`` (the OpenAPI 3.0 document BentoML serves) in place: the error answers, keys and
    body limit of each route (module docstring). ``post_paths``: the JSON-body endpoints."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[ERROR_SCHEMA], schemas[PROBLEM_SCHEMA] = _ERROR, _PROBLEM
    components["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "BearerKey": {"type": "http", "scheme": "bearer"},
    }
    body = (f"JSON (Content-Type: application/json), UTF-8, uncompressed, at most {max_body_bytes:,} bytes "
            "(413 beyond); each JSON key once per object")
    for path, ops in (spec.get("paths") or {}).items():
        for method, op in (ops or {}).items() if isinstance(ops, dict) else ():
            if not isinstance(op, dict):
                continue
            if path in _OPEN:
                op["security"] = []
                continue
            op["security"] = SECURITY
            responses = op.setdefault("responses", {})
            if path in post_paths and method == "post":
                statuses = ("400", "401", "403", "404", "408", "413", "415", "422", "429", "503")
                if isinstance(op.get("requestBody"), dict):
                    op["requestBody"]["description"] = body
            elif path == "/churn_alerts":
                responses.pop("422", None)  # FastAPI's; a bad query is a 400 {"error"}
                statuses = ("400", "401", "403", "404", "429", "503")
            else:  # /model_info: any valid key, no query
                responses.pop("422", None)
                statuses = ("400", "401", "429")
            for status in statuses:
                extra = ""
                if path == "/churn_alerts" and status == "503":
                    extra = "; or the alerts database cannot be read in time (Retry-After: 5)"
                responses[status] = _answer(status, max_body_bytes, extra)
            if "503" in responses:
                responses["503"]["headers"] = dict(_RETRY)


def service_version() -> str:
    """The version ``/docs.json`` gives when the service does not run from a bento: the installed
    dealerml package's (``importlib.metadata``), else ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dealerml")
    except PackageNotFoundError:
        return "unknown"


def _optional_request_fields() -> dict[str, set[str]]:
    """Per request schema name (as /docs.json names it: the model, or ``<model>IODescriptor`` for an
    endpoint's body), the fields with a default: the service takes ``null`` on them as left out."""
    from serving import schemas

    out: dict[str, set[str]] = {}
    for model in schemas._Request.__subclasses__():
        optional = {f.alias or n for n, f in model.model_fields.items() if not f.is_required()}
        out[model.__name__] = out[f"{model.__name__}IODescriptor"] = optional
    return out


def _mark_nullable(spec: dict) -> None:
    """Every request field with a default says ``nullable: true`` (OpenAPI 3.0), as the service takes
    null there as the field left out; BentoML drops the null branch of an optional type, so a client
    generated from the document refused null even on ``lead_time_days``."""
    optional = _optional_request_fields()
    bodies = [op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
              for path in (spec.get("paths") or {}).values() if isinstance(path, dict)
              for op in path.values() if isinstance(op, dict)]
    components = (spec.get("components") or {}).get("schemas") or {}
    for schema in [*bodies, *[components[name] for name in optional if name in components]]:
        names = optional.get(schema.get("title", ""), set()) if isinstance(schema, dict) else set()
        for name, prop in (schema.get("properties") or {}).items() if names else ():
            if name in names and isinstance(prop, dict):
                prop["nullable"] = True


class DocsVersionMiddleware:
    """``GET /docs.json`` with ``info.version`` set: BentoML writes the bento's version there, and
    the text ``"None"`` when the service is not served from a bento (``dealerml serve``, a checkout),
    which OpenAPI tools and clients read as a version; it is the dealerml package's version then.
    Request fields with a default are marked ``nullable`` (:func:`_mark_nullable`); the error answers,
    API keys and body limit are documented as the service answers (:func:`document_answers`)."""

    def __init__(self, app, post_paths: set[str] | frozenset[str] = frozenset()) -> None:  # noqa: ANN001
        self.app = app
        self.post_paths = frozenset(post_paths)  # the JSON-body endpoints
        self._max_body: int | None = None

    def max_body_bytes(self) -> int:
        """The body limit :class:`BodyLimitMiddleware` enforces (its default when the settings are bad)."""
        if self._max_body is None:
            from serving.loader import config_path

            try:
                self._max_body = request_limits(config_path()).max_body_bytes
            except Exception:  # noqa: BLE001 - a bad value keeps the service unready; the default applies
                self._max_body = RequestLimits().max_body_bytes
        return self._max_body

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope.get("path") != "/docs.json" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return

        async def finish(start: dict, body: bytes) -> None:
            try:
                spec = json.loads(body)
            except ValueError:
                spec = None
            info = spec.get("info") if isinstance(spec, dict) else None
            if isinstance(info, dict):
                if info.get("version") in (None, "", "None"):
                    info["version"] = service_version()
                _mark_nullable(spec)
                document_answers(spec, post_paths=self.post_paths, max_body_bytes=self.max_body_bytes())
                body = json.dumps(spec).encode("utf-8")
                headers = [(k, v) for k, v in start.get("headers") or () if k.lower() != b"content-length"]
                start = {**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, _holding(send, (200,), finish))
