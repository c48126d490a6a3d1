"""Request and response schemas of the dealerml service (pydantic, with bounds).

Bounds are part of the contract: a request outside them is answered 400 with the field,
the rule and (in the response only, never in logs) what was received.

The schemas live in private modules by endpoint, and every name is importable from here as
before (the service, :mod:`serving.errors`, :mod:`serving.limits`, :mod:`serving.openapi`, the
backends, the CLI and the tests import them from ``serving.schemas``): ``_schema_common`` (the
limit variables, bounded types, the ``_Request`` / ``_Response`` bases and the drivers plan),
``_schema_demand`` (/forecast), ``_schema_inventory`` (/safety_stock, :func:`latest_today`) and
``_schema_accounts`` (/churn_scores, /churn_alerts, /dealer_scores). The /model_info answer is
defined here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from serving._schema_accounts import (  # noqa: F401 - re-exported: callers import them from here
    ChurnAlert,
    ChurnAlertsResponse,
    ChurnScore,
    ChurnScoresRequest,
    ChurnScoresResponse,
    DealerScore,
    DealerScoresRequest,
    DealerScoresResponse,
    NotScored,
)
from serving._schema_common import (  # noqa: F401 - re-exported: callers import them from here
    _ROW,
    DATE_PATTERN,
    EMPTY_FILTER,
    ENV_LIMITS,
    LIMIT_ERRORS,
    MAX_DRIVER_ROWS,
    MAX_HORIZON,
    MAX_IDS,
    MAX_IDS_ENV,
    MAX_PLAN_ERRORS,
    MAX_PLAN_ROWS_ENV,
    MAX_ROW_VALUES,
    MAX_UNKNOWN_FIELDS,
    Days,
    DriverRow,
    Drivers,
    DriverValue,
    Filter,
    Id,
    LeadDays,
    Level,
    Quantile,
    _calendar_date,
    _few_plan_errors,
    _not_empty,
    _open_bounds,
    _Request,
    _Response,
    _too_many_entries,
    limit_errors,
    limit_from_env,
)
from serving._schema_demand import (  # noqa: F401 - re-exported: callers import them from here
    ForecastPoint,
    ForecastRequest,
    ForecastResponse,
    Interval,
    QuantileValue,
    SeriesForecast,
)
from serving._schema_inventory import (  # noqa: F401 - re-exported: callers import them from here
    SafetyStockRequest,
    SafetyStockResponse,
    SafetyStockRow,
    SeriesLeadTime,
    _PerSeries,
    latest_today,
)

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
                        "served is no longer the champion; a restart serves the new one. A demand model is stale too "
                        "when the promotions table it plans under changed (or cannot be read) since start-up: a "
                        "restart plans under the table as it is now")
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
