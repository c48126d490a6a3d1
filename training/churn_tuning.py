"""The churn model's tuning target for ``dealerml tune churn`` (protocol: ``training.tuning.TuningTarget``).

Folds are time-ordered churn backtests (``training.churn_backtest``): fold ``f`` tests at
``T_last - (n_folds - 1 - f) * fold_step_days`` where ``T_last`` is the last cutoff whose
label window the data cover; each fold trains on its earlier cutoffs, calibrates on the
cutoff ``H`` days before its test cutoff and scores ROC AUC of the calibrated probability on
the test cutoff (never a random split). Snapshots are computed once per cutoff and cached.

Settings (``tuning.target`` in the config): ``n_folds`` (default 2), ``fold_step_days``
(default 30), ``metric`` (``auc``; or ``pr_auc``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.churn_backtest import (
    ChurnSettings,
    churn_cutoffs,
    churn_metrics,
    churn_settings,
    snapshot,
)
from training.errors import ConfigError

__all__ = ["tuning_target", "ChurnTuningTarget", "space"]


def space(trial: Any) -> dict[str, Any]:
    """LightGBM search space (a plain function of the Optuna trial)."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 63),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


class ChurnTuningTarget:
    name = "churn"
    direction = "maximize"

    def __init__(self, book, settings: ChurnSettings, *, seed: int, n_folds: int = 2,
                 fold_step_days: int = 30, metric: str = "auc", num_threads: int = 1) -> None:
        if metric not in ("auc", "pr_auc"):
            raise ConfigError(f"tuning.target.metric for churn must be 'auc' or 'pr_auc'; got {metric!r}")
        if n_folds < 1:
            raise ConfigError(f"tuning.target.n_folds must be >= 1; got {n_folds}")
        self.book = book
        self.settings = settings
        self.seed = seed
        self.n_folds = n_folds
        self.metric = metric
        self.num_threads = num_threads
        H = settings.horizon_days
        last = pd.Timestamp(book.order_lines["order_date"].max()).normalize()
        self.t_last = last + pd.Timedelta(days=1) - pd.Timedelta(days=H)
        first = book.order_lines["order_date"].min()
        self.folds = [
            churn_cutoffs(self.t_last - pd.Timedelta(days=(n_folds - 1 - f) * fold_step_days), settings, first_date=first)
            for f in range(n_folds)
        ]
        self.final_cuts = churn_cutoffs(self.t_last + pd.Timedelta(days=H), settings, first_date=first)
        self._cache: dict[tuple[pd.Timestamp, int], pd.DataFrame] = {}
        self.default_params = self._full({k: v for k, v in settings.model.items()})
        self.model_metadata = {"training_window": {
            "train_cutoffs": [str(c.date()) for c in self.final_cuts["train"]],
            "calibration_cutoff": str(self.final_cuts["calibration"].date()),
            "horizon_days": H}}

    # -------------------------------------------------------------- helpers
    def _full(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "calibration": self.settings.calibration, "random_state": self.seed,
                "num_threads": self.num_threads, "blend": self.settings.blend,
                "horizon_days": self.settings.horizon_days, "bgnbd_penalizer": self.settings.bgnbd_penalizer}

    def _snap(self, cutoff, horizon_days: int | None = None) -> pd.DataFrame:
        c = pd.Timestamp(cutoff)
        H = horizon_days or self.settings.horizon_days
        if (c, H) not in self._cache:
            self._cache[(c, H)] = snapshot(self.book, c, self.settings, horizon_days=H)[0]
        return self._cache[(c, H)]

    def _fit(self, params: dict[str, Any], cuts: dict):
        from models.churn import ChurnModel

        train = pd.concat([self._snap(c, cuts["train_horizon_days"]) for c in cuts["train"]], ignore_index=True)
        cal = self._snap(cuts["calibration"])
        return ChurnModel(**self._full(params)).fit(train, train["churned"], cal, cal["churned"])

    # ------------------------------------------------------------ protocol
    def space(self, trial: Any) -> dict[str, Any]:
        return space(trial)

    def score_fold(self, params: dict[str, Any], fold: int) -> float:
        cuts = self.folds[fold]
        model = self._fit(params, cuts)
        test = self._snap(cuts["test"])
        return float(churn_metrics(test["churned"], model.churn_probability(test))[self.metric])

    def fit_final(self, params: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        latest = self.folds[-1]
        bt = self._fit(params, latest)
        test = self._snap(latest["test"])
        metrics = {k: v for k, v in churn_metrics(test["churned"], bt.churn_probability(test)).items() if v is not None}
        model = self._fit(params, self.final_cuts)
        model.num_threads = 1
        return model, metrics

    @property
    def input_example(self) -> pd.DataFrame:
        from training.commands.churn import _signature_example

        cal = self._snap(self.final_cuts["calibration"])
        cols = [c for c in cal.columns if c not in ("cutoff", "churned", "label_end", "account_id",
                                                     "cat_share_max_drop_category")]
        return _signature_example(cal[cols].head(5))

    def evaluate(self, estimator) -> dict[str, float]:
        """Scores of a fitted model on the latest labelled cutoff (for ``dealerml promote``).

        Both challenger and champion are scored on the same accounts and labels; a model
        whose calibration used this window has seen its labels, so compare models trained
        the same way.
        """
        test = self._snap(self.t_last)
        m = churn_metrics(test["churned"], estimator.churn_probability(test))
        return {k: v for k, v in m.items() if v is not None}


def tuning_target(cfg: Any, book: Any = None) -> ChurnTuningTarget:
    """Build the churn tuning target from an ExperimentConfig (and its loaded order book)."""
    if book is None:
        from training.data import load_order_book

        book = load_order_book(cfg)
    s = churn_settings(cfg)
    opts = dict(((getattr(cfg, "tuning", None) or {}).get("target")) or {})
    opts = dict(opts.get("churn", opts))  # tuning.target.churn: {...} or tuning.target: {...}
    opts = {k: v for k, v in opts.items() if k in ("n_folds", "fold_step_days", "metric", "num_threads")}
    return ChurnTuningTarget(book, s, seed=int(getattr(cfg, "seed", 0) or 0), **opts)
