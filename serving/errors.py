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
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from serving.schemas import DATE_PATTERN

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

KNOWN_LISTED = 30
"""Unknown-value messages list the known values when there are at most this many."""

NOT_JSON = "send a JSON body with Content-Type: application/json"

MAX_DETAIL = 100
"""A 400 answer's ``detail`` lists at most this many problems (its message says how many)."""

MAX_REQUEST_DEPTH = 3
"""The deepest a valid request nests arrays / objects: the body, ``drivers``, a row (or the body,
``lead_times``, an entry)."""

MAX_NAME_CHARS = 100
"""Caller-chosen names (unknown fields, ids, query parameters) are cut to this many characters."""


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


# ---------------------------------------------------------------- schema violations
def _resolve(node: dict | None, defs: dict) -> dict | None:
    """Follow ``$ref`` and drop the ``null`` branch of an optional field."""
    for _ in range(5):
        if not isinstance(node, dict):
            return None
        if "$ref" in node:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1])
            continue
        branches = [b for b in node.get("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            node = {**{k: v for k, v in node.items() if k != "anyOf"}, **branches[0]}
            continue
        return node
    return node


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _bounds(node: dict) -> str:
    lo, hi = node.get("minimum"), node.get("maximum")
    lo_open = node.get("exclusiveMinimum")
    hi_open = node.get("exclusiveMaximum")
    if isinstance(lo_open, (int, float)) and not isinstance(lo_open, bool):  # JSON Schema 2020 form
        lo, lo_open = lo_open, True
    if isinstance(hi_open, (int, float)) and not isinstance(hi_open, bool):
        hi, hi_open = hi_open, True
    if lo is not None and hi is not None:
        if bool(lo_open) == bool(hi_open):
            return f" between {_num(lo)} and {_num(hi)}, {'exclusive' if lo_open else 'inclusive'}"
        return f" {'greater than' if lo_open else 'at least'} {_num(lo)} and {'less than' if hi_open else 'at most'} {_num(hi)}"
    if lo is not None:
        return f" {'greater than' if lo_open else 'at least'} {_num(lo)}"
    if hi is not None:
        return f" {'less than' if hi_open else 'at most'} {_num(hi)}"
    return ""


def _describe(node: dict | None, defs: dict, depth: int = 0) -> str | None:
    node = _resolve(node, defs)
    if not node or depth > 3:
        return None
    kind = node.get("type")
    if kind == "integer":
        return "an integer" + _bounds(node)
    if kind == "number":
        return "a finite number" + _bounds(node)
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        if "enum" in node:
            return f"one of {node['enum']}"
        if node.get("format") == "date" or node.get("pattern") == DATE_PATTERN:
            return "a date YYYY-MM-DD"
        if node.get("pattern"):
            return f"a string matching {node['pattern']}"
        lo, hi = node.get("minLength"), node.get("maxLength")
        return "a string" + (f" of {lo} to {hi} characters" if lo is not None and hi is not None else "")
    if kind == "array":
        lo, hi = node.get("minItems"), node.get("maxItems")
        size = ""
        if lo is not None and hi is not None:
            size = f" of {lo} to {hi}"
        elif hi is not None:
            size = f" of at most {hi}"
        elif lo is not None:
            size = f" of at least {lo}"
        item = _describe(node.get("items"), defs, depth + 1)
        return f"a list{size}" + (f" items, each {item}" if item else " items")
    if kind == "object":
        if "properties" in node:
            text = f"a JSON object with the fields {sorted(node['properties'])}"
            if isinstance(node.get("additionalProperties"), dict):  # a plan row: named driver values
                value = _describe(node["additionalProperties"], defs, depth + 1)
                text += " and named values" + (f", each {value}" if value else "")
            return text
        value = _describe(node.get("additionalProperties"), defs, depth + 1)
        return "a JSON object of id -> " + (value or "value")
    return None


_SCHEMAS: dict[type, dict] = {}


def _schema(model: type) -> dict:
    if model not in _SCHEMAS:
        _SCHEMAS[model] = model.model_json_schema()
    return _SCHEMAS[model]


def expected_for(model: type | None, loc: tuple) -> str | None:
    """What the field at ``loc`` of ``model`` accepts, in words (from its JSON schema)."""
    if model is None:
        return None
    try:
        schema = _schema(model)
        defs = schema.get("$defs", {})
        node: dict | None = schema
        fields = sorted(schema.get("properties", {}))
        for part in loc:
            node = _resolve(node, defs)
            if node is None:
                return None
            if part == "[key]":
                return "a non-empty id of at most 200 characters"
            if isinstance(part, int):
                node = node.get("items")
            elif "properties" in node:
                if part in node["properties"]:
                    node = node["properties"][part]
                elif isinstance(node.get("additionalProperties"), dict):  # a named value (a driver)
                    node = node["additionalProperties"]
                else:  # an unknown field, at the top or in an entry (a lead_times entry): the fields it takes
                    return f"only the fields {sorted(node['properties'])}"
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:
                return None
        if not loc:
            return f"a JSON object with the fields {fields}"
        return _describe(node, defs)
    except Exception:  # noqa: BLE001 - a description is a nicety; never fail the answer
        return None


def _short(part: Any) -> Any:
    """A location part as the answer shows it: a caller-chosen key longer than
    :data:`MAX_NAME_CHARS` is cut (the answer should not echo a 100 kB field name)."""
    if isinstance(part, str) and len(part) > MAX_NAME_CHARS:
        return f"{part[:MAX_NAME_CHARS]}... ({len(part)} characters)"
    return part


def describe_validation_errors(errors: list[dict], model: type | None = None) -> dict[str, Any]:
    """The 400 answer for pydantic ``errors`` of a request body validated as ``model``.

    ``detail`` lists at most :data:`MAX_DETAIL` problems (the message says how many there are);
    caller-chosen names (unknown fields, ids) are cut to :data:`MAX_NAME_CHARS` characters."""
    if errors and all(e.get("type") == "json_invalid" for e in errors):
        why = str(errors[0].get("msg", "")).removeprefix("Invalid JSON: ")
        expected = "a JSON object"
        if why.startswith("recursion limit exceeded"):  # valid JSON, nested deeper than pydantic's parser reads
            # what is wrong first: the client did send JSON as application/json, so NOT_JSON misled it
            error = (f"the body nests arrays / objects deeper than the JSON parser allows ({why}); a request "
                     f"nests them at most {MAX_REQUEST_DEPTH} levels deep (a drivers row, a lead_times entry)")
            expected = f"a JSON object nesting arrays / objects at most {MAX_REQUEST_DEPTH} levels deep"
        else:
            error = f"{NOT_JSON}; the body is not valid JSON ({why})"
        return {"error": error,
                "detail": [{"field": "<body>", "loc": [], "msg": errors[0].get("msg"),
                            "type": "json_invalid", "expected": expected}]}
    problems = []
    for e in errors[:MAX_DETAIL]:
        raw_loc = tuple(e.get("loc") or ())
        loc = tuple(_short(x) for x in raw_loc)
        msg = str(e.get("msg", "invalid"))
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        problems.append({
            "field": ".".join(map(str, loc)) or "<body>",
            "loc": list(loc),
            "msg": msg,
            "type": e.get("type"),
            "expected": expected_for(model, raw_loc),
        })
    n = len(errors)
    parts = [f"{p['field']}: {p['msg']}" + (f" (expected {p['expected']})" if p["expected"] else "")
             for p in problems[:10]]
    more = f"; and {n - 10} more" if n > 10 else ""
    return {"error": f"invalid request body: {n} problem{'s' if n != 1 else ''}: {'; '.join(parts)}{more}",
            "detail": problems}


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
        async def rewrite(start: dict, body: bytes) -> None:
            await _send_rewritten(send, start, body, model)

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


async def _send_rewritten(send: Any, start: dict, body: bytes, model: type) -> None:
    try:
        payload = json.loads(body)
        if not (isinstance(payload, dict) and "validation error for" in str(payload.get("error", ""))
                and isinstance(payload.get("detail"), list)):
            raise ValueError("not a schema answer")
        new = describe_validation_errors(payload["detail"], model)
    except Exception:  # noqa: BLE001 - pass anything else through unchanged
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return
    await _send_json(send, 400, new, list(start.get("headers") or []))


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


# ---------------------------------------------------------------- the log filter
_FIELD_NAMES: set[str] = {"[key]"}
_ID_KEYED = {"on_hand", "on_order", "min_order_qty", "order_multiple", "lead_times"}  # dict fields keyed by caller ids


def register_field_names(*models: type) -> None:
    """Field names the log filter may print (the request models' own fields)."""
    for m in models:
        _FIELD_NAMES.update(getattr(m, "model_fields", {}))


def safe_loc(loc: Any) -> str:
    """A pydantic error location with anything caller-chosen replaced."""
    out: list[str] = []
    prev = None
    for part in tuple(loc or ()):
        if isinstance(part, int):
            out.append(str(part))
        elif isinstance(part, str) and part in _FIELD_NAMES:
            out.append(part)
        elif prev in _ID_KEYED:
            out.append("<id>")
        else:
            out.append("<extra field>")
        prev = part
    return ".".join(out) or "<body>"


class _NoBodiesFilter(logging.Filter):
    """Replace the traceback of a rejected (pydantic-invalid) request by a short summary."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or type(exc).__name__ != "ValidationError":
            return True
        try:
            errors = exc.errors(include_input=False, include_context=False, include_url=False)
            where = sorted({safe_loc(e.get("loc", ())) for e in errors})
            kinds = sorted({str(e.get("type", "?")) for e in errors})
            original = record.getMessage()
            record.msg = "%s; rejected request: %d validation error(s) at %s (%s)"
            record.args = (original, len(errors), where[:10], kinds[:10])
        except Exception:  # noqa: BLE001 - never break logging; still drop the body
            record.msg, record.args = "rejected request (validation error)", ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_FILTER = _NoBodiesFilter()


def install_log_filter() -> None:
    """Attach the filter to the loggers BentoML uses for rejected requests (idempotent)."""
    from serving import schemas

    register_field_names(schemas.ForecastRequest, schemas.SafetyStockRequest, schemas.ChurnScoresRequest,
                         schemas.DealerScoresRequest)
    for name in ("bentoml._internal.server.http_app", "bentoml.serve", "bentoml"):
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)
