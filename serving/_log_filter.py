"""The log filter that keeps request bodies out of the server log.

BentoML logs a rejected request with the pydantic error, whose text can quote the body; the filter
keeps the error type and the location, with anything that is not a known field name (caller-chosen
keys) replaced (:func:`safe_loc`). The service installs it at start-up (:func:`install_log_filter`);
:mod:`serving.errors` re-exports every name here, and the service and the tests import them from there.
"""

from __future__ import annotations

import logging
from typing import Any

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


# ---------------------------------------------------------------- BentoML's access log
_RAW_HEADERS = "dealerml.raw_headers"
"""Scope key: the request's own headers, handed on past BentoML's access log (:func:`install_access_log_guard`)."""
_LOGGED = (b"content-type", b"content-length")


def _loggable(headers: list) -> list | None:
    """``headers`` with the Content-Type / Content-Length values BentoML's access log cannot decode as UTF-8
    re-encoded (their latin-1 reading, as UTF-8), or None when every one decodes."""
    bad = False
    for k, v in headers:
        if k.lower() in _LOGGED:
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                bad = True
                break
    if not bad:
        return None
    return [(k, v.decode("latin-1").encode("utf-8") if k.lower() in _LOGGED else v) for k, v in headers]


def install_access_log_guard() -> bool:
    """Keep BentoML's access log from breaking answers whose request has a Content-Type that is not UTF-8.

    BentoML 1.4's ``AccessLogMiddleware`` (``bentoml/_internal/server/http/access.py``) decodes the request's
    Content-Type as UTF-8 when the answer's last body message passes (``request_content_type.decode()``), so
    ``Content-Type: application/\\xe9`` (bytes HTTP allows in a header) raised UnicodeDecodeError there: on
    every path, the client got the status line and headers, then no body and a closed connection, and the log a
    traceback. BentoML builds that middleware outside the service's own, from the class in its module
    (``_bentoml_impl/server/app.py``'s ``middlewares``), so a subclass put there logs the header's latin-1
    reading instead; the service still sees the header as sent. False when that module is not as expected."""
    try:
        from bentoml._internal.server.http import access
    except ImportError:  # pragma: no cover - another BentoML layout
        return False
    base = access.AccessLogMiddleware
    if getattr(base, "dealerml_guarded", False):
        return True

    class AccessLogMiddleware(base):  # type: ignore[misc, valid-type]
        """BentoML's access log, fed a decodable Content-Type; the app gets the request's own headers."""

        dealerml_guarded = True

        def __init__(self, app: Any, **options: Any) -> None:
            async def own_headers(scope: dict, receive: Any, send: Any) -> None:
                if _RAW_HEADERS in scope:
                    scope = {**scope, "headers": scope[_RAW_HEADERS]}
                    del scope[_RAW_HEADERS]
                await app(scope, receive, send)

            super().__init__(own_headers, **options)

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            headers = scope.get("headers") or [] if scope.get("type") == "http" else []
            safe = _loggable(list(headers))
            if safe is not None:
                scope = {**scope, "headers": safe, _RAW_HEADERS: headers}
            await super().__call__(scope, receive, send)

    access.AccessLogMiddleware = AccessLogMiddleware
    return True
