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
