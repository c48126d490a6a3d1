"""Response models of the drivers-range warning of ``POST /forecast`` and ``POST /safety_stock``: a
planned driver value outside the range the champion's LightGBM member was trained on
(``models.demand_driver_range``), or a planned value divided by its series' mean outside the range of
those multiples it was trained on (``kind``). Used by ``ForecastResponse.warnings`` and
``SafetyStockResponse.warnings`` (serving.schemas) and filled by ``serving.demand.DemandBackend``
(``range_warnings``, in ``serving._demand_plan``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DriverRangeExample", "DriverRangeWarning"]


class DriverRangeExample(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    unique_id: str
    ds: dt.date
    value: float
    relative: float | None = Field(default=None, description="kind 'relative to its series' mean': the value "
                                   "divided by its series' mean (what the LightGBM member reads); else null")
    series: int | None = Field(default=None, description="A hierarchical champion's plan row naming a summed id "
                               "(<sku>/*, */*): the SKU x location series its value was given to and checked (value "
                               "and relative are those of the first one outside the range); else null")
    series_outside: int | None = Field(default=None, description="Of those series, how many are outside the range; "
                                       "else null")


class DriverRangeWarning(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    driver: str
    kind: Literal["value", "relative to its series' mean"] = Field(
        default="value", description="'value': the planned values against the range of all training rows' values; "
        "'relative to its series' mean': each planned value divided by its series' mean (up to the last date of fit) "
        "against the range of those multiples in the training rows (min / max are multiples then). A row can be in both")
    rows: int = Field(description="Plan rows of this request whose value of the driver is outside the range the "
                      "forecast responds to (lo .. hi; min .. max for a champion fitted before lo / hi were recorded)")
    of_rows: int = Field(description="Plan rows of this request that give the driver")
    below: int = Field(description="Of rows: below lo (below min for an older champion)")
    above: int = Field(description="Of rows: above hi (above max for an older champion)")
    min: float = Field(description="The smallest value of the driver in the rows the LightGBM member trained on")
    max: float = Field(description="The largest value of the driver in the rows the LightGBM member trained on")
    lo: float | None = Field(default=None, description="The min_child_samples-th smallest training value: a LightGBM "
                             "split needs that many training rows on each side (approximately: LightGBM counts them "
                             "from the hessian), so the trees treat every value at or below lo as lo (the other "
                             "reading of the driver, as it is or as a multiple of its series' mean, is checked on its "
                             "own); null for a champion fitted before it was recorded")
    hi: float | None = Field(default=None, description="The min_child_samples-th largest training value: the trees "
                             "treat every value at or above hi as hi; null for a champion fitted before it was "
                             "recorded")
    min_child_samples: int | None = Field(default=None, description="The LightGBM member's min_child_samples (k)")
    examples: list[DriverRangeExample] = Field(description="The first (up to 3) such plan rows, in the request's order")
    message: str = Field(description="The same in words, as `dealerml forecast --future` prints it")
