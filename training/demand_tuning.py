"""The demand forecaster's tuning target for ``dealerml tune demand`` (protocol:
``training.tuning.TuningTarget``).

Fold ``f`` (0 = earliest) is a rolling-origin window: cutoff ``T_end - h - (n_folds - 1 - f) *
step`` periods; the forecaster (member choice and intervals included) is fit on data up to the
cutoff only and scored on the h periods after it by the served forecast's MASE
(``training.demand_backtest``). Tuned: the global LightGBM member's settings and how the
final forecast is chosen (per demand class / per series / one global choice).

Settings (``tuning.target`` or ``tuning.target.demand`` in the config): ``n_folds`` (default
2), ``step`` (periods between fold cutoffs; default the horizon), ``metric`` (``mase`` or
``rmsse``); any other key is an error.

The tuned model is logged like ``dealerml train demand``'s (pyfunc ``predict_frame`` on
``unique_id, h`` rows). Promotion (:meth:`DemandTuningTarget.evaluate`) refits each candidate's
settings on the data before the last backtest window and scores that window (a rolling-origin
cross-validation), so it is not graded on periods it was fitted on.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.demand_config import DemandSettings, demand_settings, load_demand_series
from training.errors import ConfigError

__all__ = ["tuning_target", "DemandTuningTarget", "space", "TARGET_KEYS"]

TARGET_KEYS = ("n_folds", "step", "metric")
"""The settings ``tuning.target`` (or ``tuning.target.demand``) may hold."""


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
    predict_method = "predict_frame"  # the pyfunc answers {unique_id, h} rows, as train demand's does

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
        self._final = model
        return model, metrics

    @property
    def input_example(self) -> pd.DataFrame:
        """One ``unique_id, h`` row for a series the final model forecasts (as ``train demand``)."""
        final = getattr(self, "_final", None)
        uids = getattr(getattr(final, "panel_", None), "uids", None)
        uid = str(uids[0]) if uids is not None and len(uids) else str(self.series["unique_id"].iloc[0])
        return pd.DataFrame({"unique_id": [uid], "h": [self.h]})

    def evaluate(self, estimator: Any) -> dict[str, Any]:
        """Scores of a forecaster's *settings* on the last backtest window (for ``dealerml promote``).

        The settings are refitted on the periods before the window's cutoff (rolling origin:
        statsforecast's cross-validation) and scored on the ``h`` periods after it, so a model
        fitted on the whole series is never graded on periods it has seen. Returns the Final
        forecast's metrics plus ``cutoff`` (ISO date of the window's cutoff) and ``windows``."""
        params = {"selection": getattr(estimator, "selection", "class"),
                  "lgbm_params": dict(getattr(estimator, "lgbm_params", None) or {})}
        rep = self._report(params, self.n_folds - 1)
        out: dict[str, Any] = {k: float(v) for k, v in rep["metrics"]["Final"].items() if v is not None}
        windows = sorted(rep.get("selection") or {})
        if windows:
            out["cutoff"] = windows[-1]
            out["windows"] = windows
        out["refit"] = f"settings refitted on the periods up to each cutoff, scored on the {self.h} after it"
        return out


def tuning_target(cfg: Any, book: Any = None) -> DemandTuningTarget:
    """Build the demand tuning target from an ExperimentConfig (``book`` is unused when the
    config names a ready series table; otherwise the order book is loaded here)."""
    s = demand_settings(cfg)
    series, _ = load_demand_series(cfg, s)
    from training.tuning import target_options

    opts = target_options(cfg, "demand", TARGET_KEYS)
    for k in ("n_folds", "step"):
        if k in opts and opts[k] is not None and (isinstance(opts[k], bool) or not isinstance(opts[k], int)):
            raise ConfigError(f"{getattr(cfg, 'config_path', None) or 'config'}: tuning.target.{k} must be a "
                              f"whole number; got {opts[k]!r}")
    return DemandTuningTarget(series, s, seed=int(getattr(cfg, "seed", 0) or 0), **opts)
