"""The /safety_stock request and answer schemas: the sizing options (service level, lead times, review
period), the request's stock (on hand, its count date, on order) and order rules, and per series the
safety stock, reorder point, order-up-to level and suggested order.

Built on :mod:`serving._schema_common`; the service and the tests import these names (and
:func:`latest_today`) from :mod:`serving.schemas`, which re-exports them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, WrapValidator, field_validator

from serving._schema_common import (
    DATE_PATTERN,
    MAX_DRIVER_ROWS,
    MAX_IDS,
    Days,
    Drivers,
    Id,
    LeadDays,
    _calendar_date,
    _open_bounds,
    _Request,
    _Response,
    _too_many_entries,
)
from serving._schema_driver_range import DriverRangeWarning


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
    note: str | None = None  # short history (N periods): sized from the fallback forecast's distribution; a series that may have stopped selling (no recent sale: its last sale and what the order rests on)
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
    warnings: list[DriverRangeWarning] = Field(
        [], description="Per driver, planned values of the request's 'drivers' outside the range the champion's "
                        "LightGBM member was trained on, as /forecast answers them: the stock is sized from the "
                        "forecast under the plan, which treats them as the nearest edge of that range. Not an error; "
                        "empty when every planned value is inside, without a plan, or for a champion saved before "
                        "the ranges were recorded")
    promo_plan: str | None = Field(
        None, description="Where the default plan of promo comes from, when the config has a promotions table and the "
                          "champion was trained with a calendar plan: the table as read at start-up (how many periods "
                          "of how many series differ from the plan the champion was trained with), or why the trained "
                          "plan stands; /model_info summary.promo_plan has the same with its figures. Also for a champion "
                          "trained without the table (its promo the share sold on promotion, carried forward): "
                          "that the table's campaigns are not used until it is retrained. null otherwise")
