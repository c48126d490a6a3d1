"""The 400 answer for a request body the schemas refuse: what is wrong, per field, and what the field
takes, in words read from the request model's JSON schema (``{"error": "invalid request body: 2
problems: ...", "detail": [{"field", "loc", "msg", "type", "expected"}]}``).

:func:`describe_validation_errors` builds it (at most :data:`MAX_DETAIL` problems; caller-chosen names
cut to :data:`MAX_NAME_CHARS` characters by :func:`_short`). Used by the middlewares of
:mod:`serving.errors` (which re-exports every name here) and :mod:`serving.limits`; the tests import
these names from ``serving.errors``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from serving.schemas import DATE_PATTERN

NOT_JSON = "send a JSON body with Content-Type: application/json"

MAX_DETAIL = 100
"""A 400 answer's ``detail`` lists at most this many problems (its message says how many)."""

MAX_REQUEST_DEPTH = 3
"""The deepest a valid request nests arrays / objects: the body, ``drivers``, a row (or the body,
``lead_times``, an entry)."""

MAX_NAME_CHARS = 100
"""Caller-chosen names (unknown fields, ids, query parameters) are cut to this many characters."""

NO_BODY = object()
"""The request body was not at hand (or not JSON): the problems name no values."""

MAX_GOT_CHARS = 60
"""A text value a problem names is cut to this many characters."""

_SAYS_ITS_VALUE = frozenset({
    "missing", "extra_forbidden", "value_error", "assertion_error", "json_invalid", "too_long", "too_short",
    "not_a_calendar_date", "too_many_fields", "too_many_values", "too_many_errors", "duplicate_key",
})
"""Problem types whose message names the value (or there is none: a missing field; an unknown field's value
does not matter): no ``got``."""


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


def _got(value: Any) -> str:
    """A value of the request as a problem names it: JSON literals as sent (``'8'``, ``true``, ``null``,
    ``NaN``), long text cut, lists and objects by their size."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 30 else f"a {len(text.lstrip('-')):,}-digit number"
    if isinstance(value, float):
        return json.dumps(value)  # NaN, Infinity, -Infinity as sent; 1e400 was read as Infinity
    if isinstance(value, str):
        if len(value) <= MAX_GOT_CHARS:
            return repr(value)
        return f"{value[:MAX_GOT_CHARS]!r}... ({len(value):,} characters)"
    if isinstance(value, list):
        return f"a list of {len(value):,} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"a JSON object of {len(value):,} key{'s' if len(value) != 1 else ''}"
    return type(value).__name__  # pragma: no cover - json.loads gives no other type


def _value_at(body: Any, loc: tuple) -> Any:
    """The value of ``body`` at the pydantic location ``loc`` (``[key]``: the key itself), else NO_BODY."""
    node = body
    for i, part in enumerate(loc):
        if part == "[key]" and i == len(loc) - 1:
            return loc[i - 1] if i else NO_BODY
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return NO_BODY
    return node


_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _lone_surrogate(raw: bytes) -> str | None:
    """The first ``\\uXXXX`` escape of ``raw`` (JSON text) that is half of a UTF-16 surrogate pair without
    the other half, as sent, else None. The parser said "unexpected end of hex escape" (a high half
    alone) or "lone leading surrogate" (a low half alone), after "send a JSON body"."""
    pending: bytes | None = None  # a high half waiting for its low half
    end = -1
    for m in _ESCAPE.finditer(raw):
        unit = m.group(1)
        code = int(unit[1:], 16) if len(unit) == 5 else None
        low = code is not None and 0xDC00 <= code <= 0xDFFF
        if pending is not None:
            if not (low and m.start() == end):
                return "\\" + pending.decode("ascii")
            pending = None  # the pair is whole
            continue
        if code is not None and 0xD800 <= code <= 0xDBFF:
            pending, end = unit, m.end()
        elif low:
            return "\\" + unit.decode("ascii")
    return None if pending is None else "\\" + pending.decode("ascii")


def describe_validation_errors(errors: list[dict], model: type | None = None, body: Any = NO_BODY,
                               raw: bytes = b"") -> dict[str, Any]:
    """The 400 answer for pydantic ``errors`` of a request body validated as ``model``.

    ``detail`` lists at most :data:`MAX_DETAIL` problems (the message says how many there are);
    caller-chosen names (unknown fields, ids) are cut to :data:`MAX_NAME_CHARS` characters. With the
    request ``body`` (parsed JSON), each problem whose message does not say the value names it (``got``):
    the schema's own words ("Input should be a valid number") did not, so a client that sent ``"1"`` or
    ``null`` in one of 5,000 ids or plan rows was not told which value was refused."""
    if errors and all(e.get("type") == "json_invalid" for e in errors):
        why = str(errors[0].get("msg", "")).removeprefix("Invalid JSON: ")
        expected = "a JSON object"
        lone = _lone_surrogate(raw) if "surrogate" in why or "hex escape" in why else None
        if lone is not None:  # JSON as sent by a client that cut a string inside a character (JS UTF-16)
            error = (f"the body's string escape {lone} is half of a UTF-16 surrogate pair, without the other half: "
                     f"no character ({why}); send the character itself, UTF-8 encoded, or the escapes of both "
                     "halves (\\ud83d\\ude00 for U+1F600)")
            expected = "a JSON object whose strings are Unicode text (no lone surrogate escape)"
        elif why.startswith("recursion limit exceeded"):  # valid JSON, nested deeper than pydantic's parser reads
            # what is wrong first: the client did send JSON as application/json, so NOT_JSON misled it
            error = (f"the body nests arrays / objects deeper than the JSON parser allows ({why}); a request "
                     f"nests them at most {MAX_REQUEST_DEPTH} levels deep (a drivers row, a lead_times entry)")
            expected = f"a JSON object nesting arrays / objects at most {MAX_REQUEST_DEPTH} levels deep"
        else:  # what is wrong first (the client most often did send application/json), then how to send it
            error = (f"the body is not valid JSON ({why}); {NOT_JSON}, one object as a JSON encoder writes it "
                     "(keys and strings in double quotes, no trailing comma, no comment)")
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
        problem = {
            "field": ".".join(map(str, loc)) or "<body>",
            "loc": list(loc),
            "msg": msg,
            "type": e.get("type"),
            "expected": expected_for(model, raw_loc),
        }
        value = NO_BODY if body is NO_BODY or e.get("type") in _SAYS_ITS_VALUE else _value_at(body, raw_loc)
        if value is not NO_BODY and not (raw_loc == () and isinstance(value, dict)):  # the body: only a non-object
            problem["got"] = _got(value)
        problems.append(problem)
    n = len(errors)
    parts = []
    for p in problems[:10]:
        said = "; ".join(x for x in (p["expected"] and f"expected {p['expected']}", p.get("got") and f"got {p['got']}")
                         if x)
        parts.append(f"{p['field']}: {p['msg']}" + (f" ({said})" if said else ""))
    more = f"; and {n - 10} more" if n > 10 else ""
    return {"error": f"invalid request body: {n} problem{'s' if n != 1 else ''}: {'; '.join(parts)}{more}",
            "detail": problems}
