"""Request and response schemas of the dealerml service (pydantic, with bounds).

Bounds are part of the contract: a request outside them is answered 400 with the field,
the rule and (in the response only, never in logs) what was received.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_IDS",
    "MAX_IDS_ENV",
    "MAX_PLAN_ROWS_ENV",
    "LIMIT_ERRORS",
    "MAX_HORIZON",
    "MAX_DRIVER_ROWS",
    "DATE_PATTERN",
    "DriverRow",
    "ForecastRequest",
    "ForecastResponse",
    "SafetyStockRequest",
    "SafetyStockResponse",
    "ChurnScoresRequest",
    "ChurnScoresResponse",
    "ChurnAlertsResponse",
    "DealerScoresRequest",
    "DealerScoresResponse",
    "ModelInfoResponse",
    "OtherModel",
]

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
    ``/model_info`` -> ``summary.drivers``). Periods and drivers a plan leaves out keep the
    series' last known value, as an unplanned forecast does."""

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


# ---------------------------------------------------------------- forecast
class ForecastRequest(_Request):
    """Series by id, or by SKU / location filters (filters combine with AND); ``drivers`` plans
    prices / promotions for some of them (a what-if: only those series are re-forecast)."""

    series_ids: Filter = Field(None, max_length=MAX_IDS, description="unique_id values")
    sku: Filter = Field(None, max_length=MAX_IDS)
    location: Filter = Field(None, max_length=MAX_IDS)
    horizon: int = Field(8, ge=1, le=MAX_HORIZON,
                         description="Periods ahead (the model's freq), at most the champion's horizon (/model_info "
                                     "summary.horizon; beyond it: 422); left out: 8, or the champion's horizon when shorter")
    levels: list[Level] = Field(default_factory=lambda: [80.0, 95.0], max_length=10,
                                description="Interval coverages in percent, among the champion's; [] = no intervals "
                                            "(an output choice, unlike an empty filter, which is refused)")
    quantiles: list[Quantile] = Field(default_factory=list, max_length=20,
                                      description="Quantiles the levels give, e.g. 0.1 and 0.9 for 80; [] = none")
    drivers: Drivers = Field(None, max_length=MAX_DRIVER_ROWS,
                             description="Planned driver values for selected series (default: last known values)")

    @model_validator(mode="after")
    def _needs_selection(self) -> ForecastRequest:
        if self.series_ids is None and self.sku is None and self.location is None:
            raise ValueError("give series_ids, or at least one of the filters sku / location")
        return self


class Interval(_Response):
    level: float
    lo: float
    hi: float


class QuantileValue(_Response):
    q: float
    value: float


class ForecastPoint(_Response):
    ds: dt.date
    mean: float
    intervals: list[Interval]
    quantiles: list[QuantileValue]
    drivers: dict[str, float] | None = Field(None, description="The driver values this forecast assumes (champions with drivers)")


class SeriesForecast(_Response):
    unique_id: str
    keys: dict[str, str]
    model: str | None = Field(None, description="The member that serves this series (chosen per demand class on "
                                                "backtest windows); only LightGBM and Ensemble read drivers. "
                                                "ShortHistory: the short-history fallback (see note)")
    note: str | None = Field(None, description="Set when the forecast is not a member's: 'short history (N periods): "
                                               "fallback forecast ...' for a series with too few periods for the "
                                               "members (the mean of its periods, a band calibrated for such means)")
    drivers: str | None = Field(None, description="planned (the request's plan) or carried_forward (last known values); "
                                                   "null when the champion has no drivers")
    level: str | None = Field(None, description="A hierarchical champion's level of this series: total (*/*), sku "
                                                "(<sku>/*) or sku/location (<sku>/<location>), named by its key columns; "
                                                "null for a champion without a hierarchy")
    forecast: list[ForecastPoint]


class ForecastResponse(_Response):
    model_name: str
    model_version: str
    freq: str
    last_observed: dt.date
    series: list[SeriesForecast]


# ---------------------------------------------------------------- safety stock
def _PerSeries(low: float, inclusive: bool) -> Any:
    """A JSON object of series id -> units (at most MAX_IDS entries, one problem beyond)."""
    bound = {"ge": low} if inclusive else {"gt": low, "json_schema_extra": _open_bounds(low)}
    return Annotated[dict[Id, Annotated[float, Field(le=1e12, allow_inf_nan=False, **bound)]] | None,
                     WrapValidator(lambda v, handler: handler(_too_many_entries(v)))]


class SeriesLeadTime(_Request):
    """One series' replenishment lead time, as a row of the order book's lead_times table."""

    lead_time_days: LeadDays
    lead_time_std_days: float = Field(0.0, ge=0, le=365, allow_inf_nan=False, description="Lead-time spread, days")


class SafetyStockRequest(_Request):
    series_ids: list[Id] = Field(min_length=1, max_length=MAX_IDS)
    service_level: float = Field(
        0.95, gt=0.5, lt=1, allow_inf_nan=False, description="Target cycle service level",
        json_schema_extra=_open_bounds(0.5, 1),
    )
    lead_time_days: LeadDays | None = Field(
        None,
        description="Mean replenishment lead time, days; 0 = same-day supply (default: the order book's "
        "lead_times table, else demand.lead_time_days of the config)",
    )
    lead_time_std_days: float = Field(0.0, ge=0, le=365, allow_inf_nan=False, description="Lead-time spread, days")
    review_period_days: Days | None = Field(
        None, description="Days between orders (default: demand.review_period of the config, in periods)"
    )
    lead_times: Annotated[dict[Id, SeriesLeadTime] | None,
                          WrapValidator(lambda v, handler: handler(_too_many_entries(v)))] = Field(
        None,
        max_length=MAX_IDS,
        description="Lead time per series id, {\"lead_time_days\": 21, \"lead_time_std_days\": 4} (spread default 0); "
        "wins over lead_time_days / lead_time_std_days, the order book's lead_times and the config for those series",
    )
    on_hand: Annotated[dict[Id, Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]] | None,
                       WrapValidator(lambda v, handler: handler(_too_many_entries(v)))] = Field(
        None,
        max_length=MAX_IDS,
        description="Units on hand per series id; negative = backorders, as in the inventory table (default: the "
        "order book's latest inventory snapshot)",
    )
    on_hand_date: dt.date | None = Field(
        None, description="Date the request's on_hand was counted, YYYY-MM-DD (default: unknown; the answer's "
        "on_hand_date is then null); not in the future. A count more than one period from the sizing's start is "
        "said in the row's message")
    on_order: _PerSeries(0.0, True) = Field(
        None,
        max_length=MAX_IDS,
        description="Units ordered and not received yet per series id (default 0): replenish is decided, and the "
        "order sized, on the inventory position on_hand + on_order",
    )
    min_order_qty: _PerSeries(0.0, True) = Field(
        None, max_length=MAX_IDS,
        description="Smallest order the supplier takes per series id, units (default: none); applied after sizing")
    order_multiple: _PerSeries(0.0, False) = Field(
        None, max_length=MAX_IDS,
        description="Pack / case size per series id: a suggested order is a whole multiple of it, rounded up "
        "(default 1 unit)")
    max_periods_of_cover: float | None = Field(
        None, ge=1, le=520, allow_inf_nan=False, description="On-hand above this many periods of demand is overstock (default 12)"
    )
    drivers: Drivers = Field(None, max_length=MAX_DRIVER_ROWS,
                             description="Planned driver values: stock is sized from the forecast under the plan")

    @field_validator("on_hand", "on_order", "min_order_qty", "order_multiple", "lead_times")
    @classmethod
    def _on_hand_ids(cls, v: dict[str, float] | None, info: ValidationInfo) -> dict[str, float] | None:
        """On-hand (and the order rules) only for requested series (checked on the field, so the
        400 names it); skipped when series_ids itself is invalid (that error is reported instead)."""
        ids = info.data.get("series_ids")
        if v and ids is not None:
            extra = sorted(set(v) - set(ids))
            if extra:
                shown = [u[:100] for u in extra[:20]]
                more = f" (and {len(extra) - 20} more)" if len(extra) > 20 else ""
                what = "on-hand" if info.field_name == "on_hand" else info.field_name
                raise ValueError(f"names {len(extra)} series not in series_ids: {shown}{more}; "
                                 f"give {what} only for the series you ask for")
        return v

    @field_validator("on_hand_date", mode="before")
    @classmethod
    def _stock_date_text(cls, v: Any) -> Any:
        """A calendar date YYYY-MM-DD (pydantic's own message did not say the value or the form). Text of
        that form that is no date (2024-02-30) says why, as a plan row's ``ds``; a JSON number is shown
        as a number, not as the text of one."""
        if v is None or isinstance(v, dt.date):
            return v
        text = str(v).strip()
        if isinstance(v, str) and len(text) == 10:
            if re.fullmatch(DATE_PATTERN, text):
                return dt.date.fromisoformat(_calendar_date(text))
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                pass
        got = (f"the number {v!r}" if isinstance(v, (int, float)) and not isinstance(v, bool)
               else repr(str(v)[:40]) if isinstance(v, str) else f"{type(v).__name__} {str(v)[:40]}")
        raise ValueError(f"must be a date like 2024-05-10 (YYYY-MM-DD); got {got}")

    @field_validator("on_hand_date")
    @classmethod
    def _stock_date(cls, v: dt.date | None, info: ValidationInfo) -> dt.date | None:
        """Not after today; only with the request's on_hand (the book's stock has its own date).
        "Today" is the latest date anywhere on Earth (UTC+14): a client east of the server dates its
        count with its own today, which can be the server's tomorrow."""
        if v is None:
            return v
        today = latest_today()
        if v > today:
            raise ValueError(f"{v.isoformat()} is in the future (today is {today.isoformat()} at the latest, in "
                             "UTC+14): a count cannot be dated later")
        if "on_hand" in info.data and not info.data["on_hand"]:
            raise ValueError("is the date of the request's on_hand; give on_hand too (the order book's stock "
                             "carries its own snapshot date)")
        return v


def latest_today() -> dt.date:
    """The calendar date where it is latest on Earth now (UTC+14, Kiribati's Line Islands)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=14)).date()


class SafetyStockRow(_Response):
    """Units (reorder point, order-up-to, safety stock). ``action``: replenish (below the reorder
    point), order (the routine order of this review, up to the order-up-to level), ok or overstock;
    null without on-hand. ``warning``: replenish | overstock | null. ``suggested_order`` is set on
    replenish and order rows: the service level holds only if both are ordered at every review."""

    unique_id: str
    keys: dict[str, str] = Field(default_factory=dict)  # the series' key columns, e.g. {"sku": ..., "location": ...}
    service_level: float
    lead_time_days: float
    lead_time_std_days: float
    lead_time_demand_mean: float
    lead_time_demand_source: str  # own_history (intermittent / lumpy series), class_pool, class_pool:<member> (a fallback member serves it), short_history or short_history+own_history
    note: str | None = None  # short history (N periods): sized from the fallback forecast's distribution
    safety_stock: float
    reorder_point: float
    order_up_to: float
    safety_stock_normal: float
    reorder_point_normal: float
    on_hand: float | None
    on_hand_date: dt.date | None = Field(
        None, description="Date of the inventory snapshot on_hand comes from (the order book's latest per sku x "
        "location; for a series over several locations the oldest of theirs; the request's on_hand_date for its "
        "on_hand); null when unknown: on_hand from the request without on_hand_date, or no snapshot_date")
    on_order: float | None = None  # units ordered, not received (0 unless the request says)
    inventory_position: float | None = None  # on_hand + on_order: what replenish and the order are decided on
    periods_of_cover: float | None
    suggested_order: float | None
    suggested_order_unrounded: float | None = None  # order_up_to - inventory_position, before the order rules
    min_order_qty: float | None = None
    order_multiple: float | None = None
    action: str | None = None
    warning: str | None
    message: str | None
    drivers: str | None = None  # planned / carried_forward, as on /forecast


class SafetyStockResponse(_Response):
    model_name: str
    model_version: str
    method: str
    freq: str
    last_observed: dt.date = Field(description="The last period of history the sizing starts after (its first day), "
                                               "as /forecast answers it")
    review_period_days: float | None = None  # the review period the order-up-to levels cover (request or config)
    rows: list[SafetyStockRow]


# ---------------------------------------------------------------- churn
class ChurnScoresRequest(_Request):
    account_ids: list[Id] = Field(min_length=1, max_length=MAX_IDS)


class ChurnScore(_Response):
    account_id: str
    probability: float
    tier: str
    reasons: list[str]
    model_version: str
    as_of: dt.date


class NotScored(_Response):
    """A requested account without a churn score, and why (lapsed, never ordered, unknown)."""

    account_id: str
    reason: str


class ChurnScoresResponse(_Response):
    model_name: str
    model_version: str  # "dealerml-churn/<version>", as on every score
    as_of: dt.date
    scores: list[ChurnScore]
    not_scored: list[NotScored] = Field(default_factory=list)


class ChurnAlert(_Response):
    """One account that crossed into high risk at the run dated ``cutoff``."""

    account_id: str
    cutoff: dt.date
    probability: float | None
    tier: str | None
    reasons: list[str]
    expected_value: float | None
    model_version: str | None
    created_at: str | None


class ChurnAlertsResponse(_Response):
    """The newest ``count`` of the ``matched`` alerts (on or after ``since``), oldest first."""

    since: dt.date | None
    matched: int
    count: int
    alerts: list[ChurnAlert]


# ---------------------------------------------------------------- dealers
class DealerScoresRequest(_Request):
    region: Filter = Field(None, max_length=1000)
    segment: Filter = Field(None, max_length=1000)
    tier: Filter = Field(None, max_length=1000)
    account_ids: Filter = Field(None, max_length=MAX_IDS)
    top_k: int = Field(50, ge=1, le=MAX_IDS)


class DealerScore(_Response):
    rank: int
    account_id: str
    potential: float
    potential_low: float | None
    potential_high: float | None
    current_value: float | None = Field(description="Purchases in the last period (the model's horizon, e.g. 182 days)")
    annual_value: float | None = Field(
        None, description="Purchases in the 365 days before the as-of date (currency per year): what the tier is "
                          "read from (dealers.tier_thresholds, or the cut points of dealers.tier_shares; "
                          "/model_info summary.tier_thresholds)")
    segment: str | None
    segment_reason: str | None = Field(
        None, description="Why the segment, in words with the account's figures and the book median "
                          "('broader baskets than most accounts: 5.3 lines per order (book median 1.8)'); a "
                          "growing retail chain in lifecycle decline says why it keeps the segment")
    lifecycle: str | None
    lifecycle_reason: str | None = Field(
        None, description="Why the lifecycle stage ('value -62% on the same 182 days a year ago')")
    tier: str | None
    programme: str | None  # gold / silver / bronze, from the tier
    region: str | None
    reasons: list[str]


class DealerScoresResponse(_Response):
    model_name: str
    model_version: str
    as_of: dt.date
    churn_source: str | None = Field(
        None, description="Where the ranking's churn risk comes from, which the potentials depend on: the "
                          "dealerml-churn version (e.g. 'dealerml-churn/2', the churn champion when the service "
                          "started; dealers outside its population take 1 - BG/NBD P(alive)), or 'bgnbd' (no churn "
                          "champion: 1 - BG/NBD P(alive) for all). /model_info marks the dealers stale when the "
                          "churn champion moved since")
    matched: int
    dealers: list[DealerScore]
    unknown_ids: list[str] = Field(
        default_factory=list, description="account_ids without a dealer score (no order before as_of, or not in "
                                          "the book); only when none has one is the answer a 404")


# ---------------------------------------------------------------- model info
class PackageVersions(_Response):
    trained: str = Field(description="The version the model was trained with (its recorded requirements)")
    running: str | None = Field(description="The version installed in the service; null: not installed")


class ModelEnvironment(_Response):
    matches: bool | None = Field(description="Every package the model records runs in the version it was trained "
                                 "with; null: the model records no versions")
    mismatches: dict[str, PackageVersions] = Field(
        default_factory=dict, description="Each package whose running version differs from the trained one")


class ModelStatus(_Response):
    name: str
    status: str
    version: str | None
    alias: str | None
    run_id: str | None
    training_window: dict[str, Any] = Field(description="Dates (start / end / cutoff) and, for churn, its training cutoffs, horizon_days and lookback_days")
    backtest_metrics: dict[str, float]
    loaded_at: str | None
    error: str | None
    registry_champion: str | None = Field(None, description="The version the registry's champion alias pointed at "
                                          "when last checked ($DEALERML_SERVE_CHAMPION_CHECK_SECONDS)")
    registry_checked_at: str | None = Field(None, description="When the champion alias was last read (UTC)")
    stale: bool = Field(False, description="The champion moved after start-up (promote / rollback): the version "
                        "served is no longer the champion; a restart serves the new one")
    stale_reason: str | None = Field(None, description="What moved and the fix, when stale")
    summary: dict[str, Any] = Field(default_factory=dict, description="What the loaded model serves (ids, filter values)")
    environment: ModelEnvironment | None = Field(
        None, description="The package versions the loaded model was trained with against the service's (a "
        "mismatch is served, and logged once): pickled models read by other versions can give other numbers; "
        "null until the model is loaded")


class OtherModel(_Response):
    name: str
    status: str


class ModelInfoResponse(_Response):
    ready: bool = Field(description="Every served model is loaded (as /readyz answers 200)")
    config: str | None = Field(description="The config file the service reads; null unless the key has the admin scope")
    models: list[ModelStatus] = Field(description="The served models the key's scopes cover (an admin key: all)")
    other_models: list[OtherModel] = Field(
        default_factory=list, description="The other served models, by name and status only; absent when there are none")
