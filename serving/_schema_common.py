"""The building blocks of the service's request / response schemas: limits, bounded types, the bases.

The limit variables ($DEALERML_SERVE_MAX_IDS, $DEALERML_SERVE_MAX_PLAN_ROWS: read once when this module
is imported, a bad value kept in :data:`LIMIT_ERRORS`), the bounded value types (ids, levels,
quantiles, days, list filters), the strict ``_Request`` base (null is the field left out, unknown
fields refused) and ``_Response``, and the planned-drivers rows (``DriverRow``, ``Drivers``) that
/forecast and /safety_stock take. Used by the per-endpoint schema modules (``_schema_demand``,
``_schema_inventory``, ``_schema_accounts``); callers import every name from :mod:`serving.schemas`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

LIMIT_ERRORS: list[str] = []
"""Bad values of the limit variables below (the default is used; the service stays unready)."""


def limit_from_env(name: str, default: int, hi: int, environ: dict[str, str] | None = None,
                   errors: list[str] | None = None) -> int:
    """A whole-number limit from ``$name`` (1..``hi``), else ``default``. Read when this module is
    imported (the limits are part of the schemas and the OpenAPI document); a bad value is kept in
    ``errors`` (:data:`LIMIT_ERRORS`) and the default used."""
    errors = LIMIT_ERRORS if errors is None else errors
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    try:
        n = int(raw.replace("_", ""))
    except ValueError:
        n = 0
    if not 1 <= n <= hi:
        errors.append(f"${name} must be a whole number between 1 and {hi:,}; got {raw[:50]!r}")
        return default
    return n


MAX_IDS_ENV = "DEALERML_SERVE_MAX_IDS"
MAX_PLAN_ROWS_ENV = "DEALERML_SERVE_MAX_PLAN_ROWS"
ENV_LIMITS = {MAX_IDS_ENV: (5000, 100_000), MAX_PLAN_ROWS_ENV: (20_000, 1_000_000)}
"""(default, most) of each limit variable: read when this module is imported (below) and by
``dealerml serve`` before it starts the service (:func:`limit_errors`)."""


def limit_errors(environ: dict[str, str] | None = None) -> list[str]:
    """The problems of the limit variables in ``environ`` (the process environment by default), as
    the service keeps them in :data:`LIMIT_ERRORS`; empty when every one is unset or valid."""
    errors: list[str] = []
    for name, (default, hi) in ENV_LIMITS.items():
        limit_from_env(name, default, hi, environ, errors)
    return errors


MAX_IDS = limit_from_env(MAX_IDS_ENV, *ENV_LIMITS[MAX_IDS_ENV])
"""Ids per list (series_ids, sku, location, account_ids), on_hand entries, top_k, series a filter
may select. A cold /safety_stock simulates every series it has not sized (~2.5-17 ms each), so a
higher limit is a longer worst-case request."""
MAX_HORIZON = 104
MAX_UNKNOWN_FIELDS = 5000
"""More unknown fields than this in one JSON object are one problem, not one each (a 2.7 MB body
of 200,000 unknown fields held the event loop ~5 s building, sending and rewriting 200,000)."""
MAX_ROW_VALUES = 50
"""Named driver values in one plan row (a champion has a handful of drivers)."""
MAX_PLAN_ERRORS = 100
"""More problems than this in the plan rows are reported as one, naming the first bad row."""
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
"""A date given as text, YYYY-MM-DD with ASCII digits (a driver plan's ``ds``)."""


def _open_bounds(lo: float | None = None, hi: float | None = None) -> dict:
    """OpenAPI 3.0 spelling of exclusive bounds (BentoML serves 3.0 documents; pydantic
    writes the 3.1 numeric form, which 3.0 tools such as schemathesis reject)."""
    extra: dict = {}
    if lo is not None:
        extra.update(minimum=lo, exclusiveMinimum=True)
    if hi is not None:
        extra.update(maximum=hi, exclusiveMaximum=True)
    return extra


Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Level = Annotated[
    float,
    Field(gt=0, lt=100, allow_inf_nan=False, description="Interval coverage in percent",
          json_schema_extra=_open_bounds(0, 100)),
]
Quantile = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False, json_schema_extra=_open_bounds(0, 1))]
Days = Annotated[float, Field(gt=0, le=365, allow_inf_nan=False, json_schema_extra=_open_bounds(0))]
# a lead time may be 0 days (same-day supply: collected at a local DC, made or drop-shipped the same
# day): the reorder point then covers no lead time, the order-up-to level the review period alone
LeadDays = Annotated[float, Field(ge=0, le=365, allow_inf_nan=False)]

EMPTY_FILTER = "must not be empty; leave the field out for no filter"


def _not_empty(v: list | None) -> list | None:
    if v is not None and len(v) == 0:
        raise ValueError(EMPTY_FILTER)
    return v


Filter = Annotated[
    Annotated[list[Id], Field(json_schema_extra={"minItems": 1})] | None, AfterValidator(_not_empty)
]
"""An optional list filter: left out = no filter; an empty list is refused (400), not "all"."""


class _Request(BaseModel):
    """Strict JSON types: ``"8"`` or ``true`` is not an integer, ``"0.9"`` is not a number
    (an integer is still a number); unknown fields are refused.

    An explicit JSON ``null`` for a field that has a default is taken as the field left out (the
    default, and the same answer), on every request model: ``lead_time_days``, ``review_period_days``
    and ``max_periods_of_cover`` took null while ``horizon``, ``levels``, ``quantiles``,
    ``service_level``, ``lead_time_std_days`` and ``top_k`` were 400 "Input should be a valid ...",
    so a client that writes its unset options as null (many serialisers do) failed on some fields
    only. It is dropped before validation, so "left out" rules see it as left out (``horizon``: the
    champion's when shorter than 8). A required field (``series_ids`` of /safety_stock,
    ``account_ids``, a ``lead_times`` entry's ``lead_time_days``) sent as null stays a 400 naming it."""

    model_config = ConfigDict(strict=True, extra="forbid", hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_left_out(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [name for name, field in cls.model_fields.items()
                     if not field.is_required() and name in data and data[name] is None]
            if nulls:
                data = {k: v for k, v in data.items() if k not in nulls}
        return data

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_UNKNOWN_FIELDS:
            unknown = [k for k in data if k not in cls.model_fields]
            if len(unknown) > MAX_UNKNOWN_FIELDS:
                raise PydanticCustomError(
                    "too_many_fields", "{count} unknown fields (more than {limit}), e.g. {shown}",
                    {"count": f"{len(unknown):,}", "limit": f"{MAX_UNKNOWN_FIELDS:,}", "shown": [str(k)[:100] for k in unknown[:5]]})
        return data


def _too_many_entries(v: Any, limit: int = MAX_IDS) -> Any:
    """A JSON object of id -> value longer than ``limit`` is one problem before its values are
    read (pydantic checks a dict's length after validating every value: 250,000 bad on-hand
    values were 250,000 problems and ~5 s of a blocked event loop)."""
    if isinstance(v, dict) and len(v) > limit:
        raise PydanticCustomError("too_long", "Dictionary should have at most {max_length} items, not {actual_length}",
                                  {"max_length": limit, "actual_length": f"{len(v):,}"})
    return v


class _Response(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


# ---------------------------------------------------------------- planned drivers
MAX_DRIVER_ROWS = limit_from_env(MAX_PLAN_ROWS_ENV, *ENV_LIMITS[MAX_PLAN_ROWS_ENV])
DriverValue = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]


def _calendar_date(value: str) -> str:
    """``value`` (YYYY-MM-DD in ASCII digits) if it is a day of the calendar, else a problem naming it
    and why (``2024-02-30`` was answered "not a forecast period", as if it were a date)."""
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        year, month, day = (int(x) for x in value.split("-"))
        if year == 0:
            why = "there is no year 0000 (years run 0001..9999)"
        elif not 1 <= month <= 12:
            why = f"there is no month {month:02d}"
        else:
            days = calendar.monthrange(year, month)[1]
            why = "there is no day 00" if day == 0 else f"{year:04d}-{month:02d} has {days} days"
        raise PydanticCustomError(
            "not_a_calendar_date", "{value} is not a calendar date: {why}",
            {"value": repr(value), "why": why}) from None
    return value


class DriverRow(BaseModel):
    """One planned period of one series: ``unique_id``, ``ds`` (a forecast period, YYYY-MM-DD)
    and a value for one or more of the champion's drivers, by name (e.g. ``"promo": 1``; see
    ``/model_info`` -> ``summary.drivers``). Periods and drivers a plan leaves out keep what an
    unplanned forecast uses: the series' last known value, and for promo the campaigns of the
    promotions table as the service read it at start-up (else as the champion was trained with;
    ``promo_plan`` of the answer says which)."""

    model_config = ConfigDict(strict=True, extra="allow", hide_input_in_errors=True)

    unique_id: Id
    ds: Annotated[str, StringConstraints(pattern=DATE_PATTERN)] = Field(description="A forecast period, YYYY-MM-DD")
    __pydantic_extra__: dict[str, DriverValue] = Field(init=False)

    @field_validator("ds")
    @classmethod
    def _real_date(cls, v: str) -> str:
        return _calendar_date(v)

    @model_validator(mode="before")
    @classmethod
    def _few_values(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_ROW_VALUES + 2:
            raise PydanticCustomError(
                "too_many_values", "a plan row names at most {limit} driver values; this one has {count}",
                {"limit": MAX_ROW_VALUES, "count": f"{len([k for k in data if k not in ('unique_id', 'ds')]):,}"})
        return data


_ROW = TypeAdapter(DriverRow)


def _few_plan_errors(value: Any, handler: Any) -> Any:
    """The plan rows as validated, or their problems; more than :data:`MAX_PLAN_ERRORS` are one
    problem naming the first bad row (3,400 rows of 100 bad values each, 4 MB, were 340,000
    problems and ~10 s of a blocked event loop)."""
    try:
        return handler(value)
    except ValidationError as exc:
        count = exc.error_count()
        if count <= MAX_PLAN_ERRORS:
            raise
    first = ""
    for i, row in enumerate(value if isinstance(value, list) else []):
        try:
            _ROW.validate_python(row, strict=True)
        except ValidationError as row_exc:
            e = row_exc.errors(include_url=False, include_context=False, include_input=False)[0]
            where = ".".join(str(x)[:100] for x in ("drivers", i, *e["loc"]))
            first = f"; the first is {where}: {e['msg']}"
            break
    raise PydanticCustomError("too_many_errors", "{count} problems in the plan rows (more than {limit}){first}",
                              {"count": f"{count:,}", "limit": MAX_PLAN_ERRORS, "first": first})


Drivers = Annotated[
    Annotated[list[DriverRow], Field(json_schema_extra={"minItems": 1})] | None, AfterValidator(_not_empty),
    WrapValidator(_few_plan_errors),
]
