"""The /forecast request and answer schemas: series chosen by id or by sku / location filters, an
optional drivers plan, and per series its forecast points with intervals and quantiles.

Built on :mod:`serving._schema_common`; the service and the tests import these names from
:mod:`serving.schemas`, which re-exports them.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from serving._schema_common import (
    MAX_DRIVER_ROWS,
    MAX_HORIZON,
    MAX_IDS,
    Drivers,
    Filter,
    Level,
    Quantile,
    _Request,
    _Response,
)
from serving._schema_driver_range import DriverRangeWarning


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
                             description="Planned driver values for selected series (default: the champion's own plan: "
                                         "last known values, and for promo the campaigns of the promotions "
                                         "table as read at start-up, else as trained; see promo_plan)")

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
    drivers: str | None = Field(None, description="planned (the request's plan) or carried_forward (the champion's "
                                                   "default: last known values, and for promo the campaigns of the "
                                                   "promotions table as read at start-up, else as trained: see "
                                                   "promo_plan); null when the champion has "
                                                   "no drivers")
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
    warnings: list[DriverRangeWarning] = Field(
        [], description="Per driver, planned values of the request's 'drivers' outside the range the champion's "
                        "LightGBM member was trained on: it forecasts them as the nearest edge of that range, so the "
                        "forecast does not respond to them beyond it. Not an error; empty when every planned value "
                        "is inside, without a plan, or for a champion saved before the ranges were recorded")
    promo_plan: str | None = Field(
        None, description="Where the default plan of promo comes from, when the config has a promotions table and the "
                          "champion was trained with a calendar plan: the table as read at start-up (how many periods "
                          "of how many series differ from the plan the champion was trained with), or why the trained "
                          "plan stands; /model_info summary.promo_plan has the same with its figures. Also for a champion "
                          "trained without the table (its promo the share sold on promotion, carried forward): "
                          "that the table's campaigns are not used until it is retrained. null otherwise")
