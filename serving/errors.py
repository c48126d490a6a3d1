"""Request-level errors the service turns into 4xx JSON answers, and the log filter.

Backends raise :class:`UnknownIds` (404, lists the ids) or :class:`BadRequest` (422, says
the rule and the value); a model that is not loaded raises
:class:`serving.state.NotReady` (503). The log filter keeps request bodies out of the
server log: BentoML logs rejected requests with the pydantic error, whose text can quote
the body; we keep the error type and location only.
"""

from __future__ import annotations

import logging

__all__ = ["UnknownIds", "BadRequest", "install_log_filter"]


class UnknownIds(LookupError):
    """Some requested ids are not known to the served model."""

    def __init__(self, kind: str, ids: list[str], *, known: int, hint: str = "") -> None:
        self.kind = kind
        self.ids = ids
        self.known = known
        shown = ids[:50]
        more = f" (and {len(ids) - len(shown)} more)" if len(ids) > len(shown) else ""
        why = f"; {hint}" if hint else ""
        super().__init__(
            f"{len(ids)} unknown {kind}(s) (the served model knows {known}{why}): {shown}{more}"
        )


class BadRequest(ValueError):
    """A request that is well-formed but cannot be answered as asked (422)."""


class _NoBodiesFilter(logging.Filter):
    """Replace the traceback of a rejected (pydantic-invalid) request by a short summary."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or type(exc).__name__ != "ValidationError":
            return True
        try:
            errors = exc.errors(include_input=False, include_context=False, include_url=False)
            where = sorted({".".join(map(str, e.get("loc", ()))) or "<body>" for e in errors})
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
    for name in ("bentoml._internal.server.http_app", "bentoml.serve", "bentoml"):
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)
