"""The query checks of the GET routes (``/churn_alerts``, ``/model_info``): which parameters each
takes and what each accepts (:data:`QUERY_PARAMS`, for the 400 messages), and ``_query_error``, the
400 for a query a route cannot take as sent (unknown or repeated parameters, a ``since`` that is not
YYYY-MM-DD, a ``limit`` that is not a whole number 1..:data:`MAX_LISTED`), stricter than FastAPI's
parsing (``_strict_value``); ``_error`` is the JSON error answer they build, which every route of
:mod:`serving.service` answers with too.

Split from :mod:`serving.service` to keep it under ~500 lines; private to it (the bento includes
``serving/**/*.py``).
"""

from __future__ import annotations

import datetime as dt
import re

from fastapi import Request
from starlette.responses import JSONResponse

from serving.schemas import DATE_PATTERN


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


MAX_LISTED = 5000

QUERY_PARAMS = {
    "/churn_alerts": {
        "since": "a date YYYY-MM-DD (alerts on or after it)",
        "limit": f"an integer between 1 and {MAX_LISTED} (the newest N alerts)",
    },
    "/model_info": {},
}
"""The query parameters of the GET routes and what each accepts (for the 400 messages)."""


def _strict_value(name: str, value: str) -> str | None:
    """Why a query value is refused, or None. Stricter than FastAPI's parsing, which takes
    ``since=0`` as 1970-01-01 (a Unix time) and ``limit=2.0`` as 2."""
    if name == "since":
        if not re.fullmatch(DATE_PATTERN, value):
            return ""
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "not a calendar date"
    elif name == "limit":
        if not re.fullmatch(r"[0-9]{1,12}", value) or not 1 <= int(value) <= MAX_LISTED:
            return ""
    return None


def _query_error(request: Request) -> JSONResponse | None:
    """400 for a query the GET route cannot take as sent: unknown or repeated parameters, a
    ``since`` that is not YYYY-MM-DD, a ``limit`` that is not a whole number 1..5000."""
    path = request.url.path
    allowed = QUERY_PARAMS.get(path, {})
    items = request.query_params.multi_items()
    unknown = sorted({k for k, _ in items if k not in allowed})
    if unknown:
        shown = [k[:50] for k in unknown[:10]]
        if not allowed:
            return _error(400, f"{path} takes no query parameters; got {shown}")
        return _error(400, f"unknown query parameter(s) {shown}; allowed: {sorted(allowed)}")
    problems = []
    for name in allowed:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            problems.append(f"query parameter {name!r} is given {len(values)} times; give it once")
            continue
        why = _strict_value(name, values[0]) if values else None
        if why is not None:
            problems.append(f"query parameter {name!r}: {why + '; ' if why else ''}expected {allowed[name]}; "
                            f"got {values[0][:100]!r}")
    return _error(400, "invalid query: " + "; ".join(problems)) if problems else None
