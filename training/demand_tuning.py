"""The demand forecaster's tuning target for ``dealerml tune demand`` (protocol:
``training.tuning.TuningTarget``).

Fold ``f`` (0 = earliest) is a rolling-origin window: cutoff ``T_end - h - (n_folds - 1 - f) *
step`` periods; the forecaster (member choice and intervals included) is fit on data up to the
cutoff only and scored on the h periods after it by the served forecast's MASE
(``training.demand_backtest``). Tuned: the global LightGBM member's settings and how the
final forecast is chosen (per demand class / per series / one global choice).

Settings (``tuning.target`` or ``tuning.target.demand`` in the config): ``n_folds`` (default
2), ``step`` (periods between fold cutoffs; default the horizon), ``metric`` (``mase`` or
``rmsse``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.demand_config import DemandSettings, demand_settings, load_demand_series
from training.errors import ConfigError

__all__ = ["tuning_target", "DemandTuningTarget", "space"]


def space(trial: Any) -> dict[str, Any]:
    """Search space (a plain function of the Optuna trial)."""
    return {
        "selection": trial.suggest_categorical("selection", ["class", "series", "global"]),
        "lgbm_params": {
            "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=50),
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "tweedie_variance_power": trial.suggest_float("tweedie_variance_power", 1.05, 1.6),
        },
    }


class DemandTuningTarget:
    name = "demand"
    direction = "minimize"

    def __init__(self, series: pd.DataFrame, settings: DemandSettings, *, seed: int = 0, n_folds: int = 2,
                 step: int | None = None, metric: str = "mase") -> None:
        if metric not in ("mase", "rmsse"):
            raise ConfigError(f"tuning.target.metric for demand must be 'mase' or 'rmsse'; got {metric!r}")
        if n_folds < 1:
            raise ConfigError(f"tuning.target.n_folds must be >= 1; got {n_folds}")
        self.series = series
        self.settings = settings
        self.seed = seed
        self.n_folds = n_folds
        self.metric = metric
        self.h = settings.horizon
        self.step = step or self.h
        base = settings.forecaster_kwargs(seed)
        self.default_params = {"selection": base["selection"], "lgbm_params": dict(base.get("lgbm_params") or {})}
        dates = pd.to_datetime(series["ds"])
        self.model_metadata = {"training_window": {"start": str(dates.min().date()), "end": str(dates.max().date())},
                               "freq": settings.freq, "horizon": self.h}

    def _kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        kw = self.settings.forecaster_kwargs(self.seed)
        kw.update({k: v for k, v in params.items() if k in ("selection", "lgbm_params")})
        return kw

    def _fold_data(self, fold: int) -> pd.DataFrame:
        """Data up to the end of fold ``fold``'s test window (later rows are never read)."""
        ds = pd.to_datetime(self.series["ds"])
        periods = sorted(ds.unique())
        drop = (self.n_folds - 1 - fold) * self.step
        end = periods[len(periods) - 1 - drop]
        return self.series[ds <= end]

    def _report(self, params: dict[str, Any], fold: int) -> dict[str, Any]:
        from training.demand_backtest import run_backtest

        report, _ = run_backtest(self._fold_data(fold), freq=self.settings.freq, h=self.h, n_windows=1,
                                 forecaster_kwargs=self._kwargs(params))
        return report

    # ------------------------------------------------------------ protocol
    def space(self, trial: Any) -> dict[str, Any]:
        return space(trial)

    def score_fold(self, params: dict[str, Any], fold: int) -> float:
        v = self._report(params, fold)["metrics"]["Final"][self.metric]
        return float("inf") if v is None else float(v)

    def fit_final(self, params: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        from models.demand import DemandForecaster

        rep = self._report(params, self.n_folds - 1)
        metrics = {k: float(v) for k, v in rep["metrics"]["Final"].items() if v is not None}
        model = DemandForecaster(freq=self.settings.freq, h=self.h, **self._kwargs(params)).fit(self.series)
        return model, metrics

    @property
    def input_example(self) -> pd.DataFrame:
        return pd.DataFrame({"unique_id": [str(self.series["unique_id"].iloc[0])], "h": [self.h]})

    def evaluate(self, estimator: Any) -> dict[str, float]:
        """Scores of a fitted forecaster's settings on the latest fold (refit up to its cutoff)."""
        params = {"selection": getattr(estimator, "selection", "class"),
                  "lgbm_params": dict(getattr(estimator, "lgbm_params", None) or {})}
        rep = self._report(params, self.n_folds - 1)
        return {k: float(v) for k, v in rep["metrics"]["Final"].items() if v is not None}


def tuning_target(cfg: Any, book: Any = None) -> DemandTuningTarget:
    """Build the demand tuning target from an ExperimentConfig (``book`` is unused when the
    config names a ready series table; otherwise the order book is loaded here)."""
    s = demand_settings(cfg)
    series, _ = load_demand_series(cfg, s)
    opts = dict(((getattr(cfg, "tuning", None) or {}).get("target")) or {})
    opts = dict(opts.get("demand", opts))
    opts = {k: v for k, v in opts.items() if k in ("n_folds", "step", "metric")}
    return DemandTuningTarget(series, s, seed=int(getattr(cfg, "seed", 0) or 0), **opts)
