"""``demand.lgbm``: the typed settings of the LightGBM member, read by :mod:`training.demand_config`
(which re-exports :class:`LgbmSettings`)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from training._config_numbers import NoBoolNumbers

__all__ = ["LgbmSettings"]

_LGBM_OBJECTIVES = ("tweedie", "poisson", "gamma", "regression", "regression_l2", "l2", "mse", "mean_squared_error",
                    "rmse", "l2_root", "root_mean_squared_error", "regression_l1", "l1", "mae", "mean_absolute_error",
                    "huber", "fair", "quantile", "mape", "mean_absolute_percentage_error")


class LgbmSettings(NoBoolNumbers):
    """``demand.lgbm``: the settings of the LightGBM member (``models.demand_lgbm.GlobalLGBM``'s
    keyword arguments), each optional. Typed and bounded here so that a misspelt key or a bad value
    is refused naming the key: before, ``foo: 1`` or ``n_estimators: many`` crashed the fit with a
    TypeError and ``learning_rate: -1`` with a LightGBMError (tracebacks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    season_length: int = Field(52, ge=1)
    lags: list[int] | None = Field(None, description="lags in periods, each >= 1 (default: from season_length)")
    windows: list[int] = Field([4, 12], description="rolling windows in periods, each >= 1")
    n_estimators: int = Field(150, ge=1)
    learning_rate: float = Field(0.05, gt=0, allow_inf_nan=False)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(20, ge=0)
    tweedie_variance_power: float = Field(1.2, ge=1.0, lt=2.0)
    objective: Literal[_LGBM_OBJECTIVES] = "tweedie"  # type: ignore[valid-type]
    scale_window: int | None = Field(None, ge=1)
    strategy: Literal["recursive", "direct"] = "recursive"
    max_rows: int = Field(1_500_000, ge=1)
    row_sample: Literal["recent", "series"] = "recent"
    num_threads: int = Field(1, ge=0)
    random_state: int = 0

    @field_validator("lags", "windows")
    @classmethod
    def _periods(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(x < 1 for x in v):
            raise ValueError(f"every entry must be a whole number of periods >= 1; got {v}")
        return v
