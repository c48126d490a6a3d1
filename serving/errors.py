"""Request-level errors the service turns into 4xx JSON answers, the request-body guard and
the log filter.

Backends raise :class:`UnknownIds` (404, lists the ids and, when there are few, the known
values), :class:`NoMatch` (404: every value is known but the filters together select
nothing) or :class:`BadRequest` (422, says the rule and the value); a model that is not
loaded raises :class:`serving.state.NotReady` (503).

:class:`JSONBodyMiddleware` answers a POST whose body is not JSON with 400 before BentoML
parses it as a form, and rewrites BentoML's schema-violation answers ("2 validation error
for XIODescriptor") as ``{"error": "invalid request body: 2 problems: ...", "detail":
[{"field", "msg", "expected", ...}]}``.

The log filter keeps request bodies out of the server log: BentoML logs rejected requests
with the pydantic error, whose text can quote the body; we keep the error type and the
location, with anything that is not a known field name (caller-chosen keys) replaced.

This module holds the exceptions and the ASGI middlewares; the 400 answer's text
(:func:`describe_validation_errors`) lives in ``serving._request_problems`` and the log filter in
``serving._log_filter``. Every name is importable from here as before.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from serving._log_filter import (  # noqa: F401 - re-exported: callers import them from here
    _FIELD_NAMES,
    _FILTER,
    _ID_KEYED,
    _NoBodiesFilter,
    install_log_filter,
    register_field_names,
    safe_loc,
)
from serving._request_problems import (  # noqa: F401 - re-exported: callers import them from here
    _SCHEMAS,
    MAX_DETAIL,
    MAX_NAME_CHARS,
    MAX_REQUEST_DEPTH,
    NO_BODY,
    NOT_JSON,
    _bounds,
    _describe,
    _num,
    _resolve,
    _schema,
    _short,
    describe_validation_errors,
    expected_for,
)
from serving.schemas import DATE_PATTERN  # noqa: F401 - importable from here as before the split

__all__ = [
    "UnknownIds",
    "NoMatch",
    "BadRequest",
    "JSONBodyMiddleware",
    "RouteErrorMiddleware",
    "TrailingSlashMiddleware",
    "describe_validation_errors",
    "route_of",
    "install_log_filter",
    "register_field_names",
]

BODY_SCOPE_KEY = "dealerml.body"
"""Scope key: the request body as :class:`serving.limits.BodyLimitMiddleware` read it (it keeps it for the
route anyway), so that a 400 names the values it refuses without a second copy."""

KNOWN_LISTED = 30
"""Unknown-value messages list the known values when there are at most this many."""


class UnknownIds(LookupError):
    """Some requested ids are not known to the served model.

    ``known_values``: the known values, listed in the message when there are at most
    :data:`KNOWN_LISTED`; ``extra``: more keys of the 404 answer (e.g. ``not_scored``)."""

    def __init__(self, kind: str, ids: list[str], *, known: int, hint: str = "",
                 known_values: list[str] | None = None, extra: dict[str, Any] | None = None,
                 message: str | None = None) -> None:
        self.kind = kind
        self.ids = ids
        self.known = known
        self.extra = dict(extra or {})
        shown = ids[:50]
        more = f" (and {len(ids) - len(shown)} more)" if len(ids) > len(shown) else ""
        why = f"; {hint}" if hint else ""
        listed = ""
        if known_values is not None and len(known_values) <= KNOWN_LISTED:
            listed = f": {list(known_values)}"
        super().__init__(
            message
            or f"{len(ids)} unknown {kind}(s): {shown}{more}; the served model knows {known}{listed}{why}"
        )


class NoMatch(LookupError):
    """Every requested value is known, but together the filters select nothing (404)."""


class BadRequest(ValueError):
    """A request that is well-formed but cannot be answered as asked (422)."""


class JSONBodyMiddleware:
    """ASGI middleware for the POST endpoints in ``models`` (path -> request model).

    A body sent with another Content-Type than ``application/json`` (curl's default form
    type, say) is answered 400 before BentoML would parse it as a form; a ``charset`` other than
    UTF-8 and any ``Content-Encoding`` (gzip, br, ...) are 415 (BentoML ignores both: a gzip body
    was answered "not valid JSON", a ``br`` header on a plain body was served as if absent);
    BentoML's 400 schema answers are rewritten by :func:`describe_validation_errors`."""

    def __init__(self, app: Any, models: dict[str, type] | None = None) -> None:
        self.app = app
        self.models = dict(models or {})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or scope.get("path") not in self.models:
            await self.app(scope, receive, send)
            return
        model = self.models[scope["path"]]
        ctype, encoding = "", ""
        for k, v in scope.get("headers") or ():
            if k.lower() == b"content-type":
                ctype = v.decode("latin-1")
            elif k.lower() == b"content-encoding":
                encoding = v.decode("latin-1").strip().lower()
        media = ctype.split(";")[0].strip().lower()
        if media and media != "application/json":
            await _send_json(send, 400, {"error": f"{NOT_JSON} (got Content-Type {media[:100]})"})
            return
        charset = _charset(ctype)
        if charset not in ("", "utf-8", "utf8"):
            await _send_json(send, 415, {"error": f"{NOT_JSON}, encoded as UTF-8 (got charset={charset[:50]})"})
            return
        if encoding not in ("", "identity"):  # BentoML would read gzip bytes as JSON: "not valid JSON"
            await _send_json(send, 415, {"error": f"Content-Encoding {encoding[:50]} is not accepted; {NOT_JSON}, "
                                                  "uncompressed (no Content-Encoding header)"})
            return
        query = scope.get("query_string") or b""
        if query:  # POST endpoints read only the body: `?horizon=4` would be silently ignored
            names = sorted({_short(k) for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)})
            fields = sorted(getattr(model, "model_fields", {}))
            await _send_json(send, 400, {"error": (
                f"POST {scope['path']} takes no query parameters; got {names[:10] or [_short(query.decode('latin-1'))]}; "
                f"send them as fields of the JSON body (the fields are {fields})")})
            return
        async def rewrite(start: dict, body: bytes) -> None:  # the body as BodyLimitMiddleware read it (same scope)
            await _send_rewritten(send, start, body, model, scope.get(BODY_SCOPE_KEY) or b"")

        await self.app(scope, receive, _holding(send, (400,), rewrite))


def _charset(ctype: str) -> str:
    """The ``charset`` parameter of a Content-Type header, lower case ("" when there is none)."""
    for param in ctype.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def _holding(send: Any, statuses: tuple[int, ...], finish: Any) -> Any:
    """An ASGI ``send`` that passes every response through except one whose status is in
    ``statuses``: that one is held until its body is complete, then ``finish(start, body)``
    answers instead (to rewrite it, or send it on unchanged)."""
    held: dict | None = None
    chunks: list[bytes] = []

    async def wrapped(message: dict) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and message.get("status") in statuses:
            held = message
            return
        if held is not None and message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                await finish(held, b"".join(chunks))
            return
        await send(message)

    return wrapped


def _without_body(send: Any) -> Any:
    """An ASGI ``send`` for a HEAD answered as a GET: the GET's status and headers (its
    Content-Length too, as HEAD asks), every body message emptied."""

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return wrapped


async def _send_json(send: Any, status: int, payload: dict, headers: list | None = None) -> None:
    body = json.dumps(payload).encode("utf-8")
    hdrs = [(k, v) for k, v in (headers or []) if k.lower() not in (b"content-length", b"content-type")]
    hdrs += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def _send_rewritten(send: Any, start: dict, body: bytes, model: type, request_body: bytes = b"") -> None:
    try:
        payload = json.loads(body)
        if not (isinstance(payload, dict) and "validation error for" in str(payload.get("error", ""))
                and isinstance(payload.get("detail"), list)):
            raise ValueError("not a schema answer")
        new = describe_validation_errors(payload["detail"], model, _parsed(request_body), request_body)
    except Exception:  # noqa: BLE001 - pass anything else through unchanged
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return
    await _send_json(send, 400, new, list(start.get("headers") or []))


def _parsed(body: bytes) -> Any:
    """The request body as JSON (to name the values the schema refused), else :data:`NO_BODY`."""
    try:
        return json.loads(body) if body.strip() else NO_BODY
    except (ValueError, RecursionError):  # not JSON (its own answer), or a number too long for int()
        return NO_BODY


# ---------------------------------------------------------------- 404 / 405 as JSON
class RouteErrorMiddleware:
    """ASGI middleware that answers a wrong method or an unknown path like every other error:
    ``{"error": ...}`` naming the method or path and what the service offers.

    ``routes``: path -> the one method it takes (e.g. ``{"/forecast": "POST"}``). A request with
    another method gets 405 with an ``Allow`` header. ``HEAD`` on a ``GET`` route is answered as the
    ``GET`` would be (status and headers), without the body: FastAPI's GET routes (``/model_info``,
    ``/churn_alerts``) took no HEAD and answered 405 ``Allow: GET``, while ``/readyz``, ``/livez``
    and ``/metrics`` took it. Any 404 / 405 answered further in whose body is not already
    ``{"error": ...}`` (the router's plain ``Not Found``) is rewritten, naming the endpoints."""

    def __init__(self, app: Any, routes: dict[str, str] | None = None) -> None:
        self.app = app
        self.routes = dict(routes or {})

    def _endpoints(self) -> str:
        return ", ".join(f"{m} {p}" for p, m in self.routes.items())

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "websocket" and "websocket.http.response" in (scope.get("extensions") or {}):
            await self._no_websocket(scope, send)
            return
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "")
        allowed = self.routes.get(path)
        if allowed is not None and method != allowed and not (method == "HEAD" and allowed == "GET"):
            how = " with a JSON body (Content-Type: application/json)" if allowed == "POST" else ""
            await _send_json(send, 405, {"error": f"{path} does not take {method[:20]}; use {allowed}{how}"},
                             [(b"allow", allowed.encode())])
            return
        if method == "HEAD" and allowed == "GET":
            scope, send = {**scope, "method": "GET"}, _without_body(send)

        async def rewrite(start: dict, body: bytes) -> None:
            if _is_error_answer(body) or method == "HEAD":
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            if start["status"] == 404:
                text = f"no endpoint {_short(path)}; the endpoints are {self._endpoints()}"
            else:
                text = f"{_short(path)} does not take {method[:20]}"
            await _send_json(send, start["status"], {"error": text}, list(start.get("headers") or []))

        await self.app(scope, receive, _holding(send, (404, 405), rewrite))


    async def _no_websocket(self, scope: dict, send: Any) -> None:
        """The service has no WebSocket endpoint: a WebSocket handshake (to any path) is refused as an HTTP
        answer with a message (the server's own refusal was a 403 without a body, and no key was asked)."""
        path = scope.get("path", "")
        allowed = self.routes.get(path.rstrip("/") or "/")
        if allowed is not None:
            how = " with a JSON body (Content-Type: application/json)" if allowed == "POST" else ""
            status, text = 400, f"{_short(path)} takes no WebSocket connection; send {allowed} {path.rstrip('/')}{how}"
        else:
            status, text = 404, f"no endpoint {_short(path)}; the endpoints are {self._endpoints()} (plain HTTP)"
        body = json.dumps({"error": text}).encode("utf-8")
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})


def route_of(path: str, paths: Any) -> str | None:
    """The path among ``paths`` that ``path`` is served as: itself, or ``/forecast`` for ``/forecast/``
    (any trailing slashes); None for any other path. :class:`TrailingSlashMiddleware` serves by it and
    the ``/metrics`` labels (:mod:`serving.metrics`) count by it."""
    if path in paths:
        return path
    if len(path) > 1 and path.endswith("/"):
        bare = path.rstrip("/")
        if bare in paths:
            return bare
    return None


class TrailingSlashMiddleware:
    """ASGI middleware that serves ``/forecast/`` (any trailing slashes) as ``/forecast``, for each path
    in ``paths``. The router answered it 307 with an empty body to ``http://<Host header>/forecast``: a
    client that does not follow redirects got no answer and no message, and behind a TLS-terminating
    proxy the ``Location`` said ``http://``, where a client that follows it re-sends its ``X-API-Key``
    in clear text. Outermost of the service's middlewares, so the key, body and query checks of the
    route apply as they do without the slash; other paths are left as they are."""

    def __init__(self, app: Any, paths: Any = ()) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope.get("type") == "http" and len(path) > 1 and path.endswith("/"):
            bare = route_of(path, self.paths)
            if bare is not None:
                scope = {**scope, "path": bare, "raw_path": bare.encode("latin-1")}
        await self.app(scope, receive, send)


def _is_error_answer(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and "error" in payload
