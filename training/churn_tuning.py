"""The churn model's tuning target for ``dealerml tune churn`` (protocol: ``training.tuning.TuningTarget``).

Folds are time-ordered churn backtests (``training.churn_backtest``): fold ``f`` tests at
``T_last - (n_folds - 1 - f) * fold_step_days`` where ``T_last`` is the last cutoff whose
label window the data cover; each fold trains on its earlier cutoffs, calibrates on the
cutoff ``H`` days before its test cutoff and scores ROC AUC of the calibrated probability on
the test cutoff (never a random split). Snapshots are computed once per cutoff and cached.

Settings (``tuning.target`` or ``tuning.target.churn`` in the config): ``n_folds`` (default
2), ``fold_step_days`` (default 30), ``metric`` (``auc``; or ``pr_auc``), ``num_threads``;
any other key is an error.

A study records what its trials are scored on (:attr:`ChurnTuningTarget.identity`: the churn
windows, calibration and blend, ``tuning.target``, the data's sha256); ``--resume`` on other
values is refused naming each (``training.tuning_identity.study_identity``).

Promotion (``dealerml promote churn``) refits each candidate's settings before the latest
labelled cutoff and scores that cutoff (:meth:`ChurnTuningTarget.evaluate`), never the
window the registered model was calibrated on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.churn_backtest import (
    ChurnSettings,
    check_model_windows,
    churn_cutoffs,
    churn_metrics,
    churn_settings,
    snapshot,
)
from training.errors import ConfigError

__all__ = ["tuning_target", "promotion_evaluator", "config_identity", "ChurnTuningTarget", "space", "TARGET_KEYS"]

TARGET_KEYS = ("n_folds", "fold_step_days", "metric", "num_threads")
"""The settings ``tuning.target`` (or ``tuning.target.churn``) may hold."""
TARGET_DEFAULTS: dict[str, Any] = {"n_folds": 2, "fold_step_days": 30, "metric": "auc", "num_threads": 1}
"""Their values when the config leaves them out."""


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
    report_model = "lightgbm"  # what train churn's backtest calls the served model (experiment compare)

    def __init__(self, book, settings: ChurnSettings, *, seed: int, n_folds: int = TARGET_DEFAULTS["n_folds"],
                 fold_step_days: int = TARGET_DEFAULTS["fold_step_days"], metric: str = TARGET_DEFAULTS["metric"],
                 num_threads: int = TARGET_DEFAULTS["num_threads"], data_keys: dict[str, Any] | None = None) -> None:
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
        self.fold_step_days = fold_step_days
        self._data_keys = dict(data_keys or {})  # how the book was read (tuning_target: data.order_lines.*)
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
        self._baselines: dict[tuple[pd.Timestamp, int], dict[str, dict[str, float]]] = {}
        self._baseline_p: dict[tuple[pd.Timestamp, int], dict[str, Any]] = {}  # their probabilities, same keys
        self._final_fold: tuple[Any, pd.DataFrame] | None = None
        self.default_params = self._full({k: v for k, v in settings.model.items()})
        self.model_metadata = {"training_window": {
            "train_cutoffs": [str(c.date()) for c in self.final_cuts["train"]],
            "calibration_cutoff": str(self.final_cuts["calibration"].date()),
            "horizon_days": H, "lookback_days": settings.lookback_days}}

    @property
    def fold_windows(self) -> list[str]:
        """Each fold's test cutoff and label window, earliest first (printed by ``dealerml tune``)."""
        H = self.settings.horizon_days
        return [f"test cutoff {c['test'].date()} (labels [{c['test'].date()}, "
                f"{(c['test'] + pd.Timedelta(days=H)).date()}), calibrated at {c['calibration'].date()})"
                for c in self.folds]

    @property
    def identity(self) -> dict[str, Any]:
        """The settings that change a trial's score, under their config keys, and the sha256 of the
        accounts and service events the features read (the order lines' is the book's own): recorded
        with the study, so a ``--resume`` on other values is refused naming each
        (``training.tuning_identity.study_identity``). Not here: what no trial reads (churn.model, which the
        trials tune; slices, tiers, tables; num_threads; the seed)."""
        from training.data import order_lines_sha256

        out = _settings_identity(self.settings, self._data_keys, n_folds=self.n_folds,
                                 fold_step_days=self.fold_step_days, metric=self.metric)
        for name, attr in (("accounts", "accounts"), ("service events", "service_events")):
            table = getattr(self.book, attr, None)
            if isinstance(table, pd.DataFrame):
                try:
                    out[f"{name} sha256"] = order_lines_sha256(table)
                except TypeError:  # a column of values pandas cannot hash (lists): not compared
                    pass
        return out

    @property
    def evaluation_params(self) -> dict[str, Any]:
        """What the latest fold measured, under the keys ``train churn`` logs for its backtest."""
        return {"backtest.test_cutoff": str(self.folds[-1]["test"].date()),
                "horizon_days": self.settings.horizon_days, "lookback_days": self.settings.lookback_days}

    # -------------------------------------------------------------- helpers
    def _full(self, params: dict[str, Any]) -> dict[str, Any]:
        return _full_params(params, self.settings, seed=self.seed, num_threads=self.num_threads)

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
        p = bt.churn_probability(test)
        metrics = {k: v for k, v in churn_metrics(test["churned"], p).items() if v is not None}
        self.final_baselines = self.baselines_at(latest)  # printed and logged beside the tuned model
        # the latest fold's probabilities of the tuned model and the baselines, for final_plots
        base_p = self._baseline_p[(pd.Timestamp(latest["test"]), self.settings.horizon_days)]
        self._final_fold = (bt, test.assign(p_lightgbm=np.asarray(p), **{f"p_{m}": np.asarray(q)
                                                                          for m, q in base_p.items()}))
        model = self._fit(params, self.final_cuts)
        model.num_threads = 1
        return model, metrics

    def final_plots(self) -> dict[str, Any]:
        """The plots ``train churn`` logs (reliability curve, lift chart, score distribution by tier,
        reasons frequency) of the tuned model on the latest fold beside the baselines, after
        :meth:`fit_final`: the run of a tuned challenger logged none, so its version had no plots."""
        from types import SimpleNamespace

        from training.churn_backtest import score_accounts
        from training.commands.churn import _plots

        if self._final_fold is None:
            return {}
        bt, test = self._final_fold
        cutoff = self.folds[-1]["test"]
        scored = score_accounts(self.book, bt, self.settings, cutoff, model_version="backtest", population=test)
        scored["churned"] = test["churned"].to_numpy()
        return _plots(SimpleNamespace(test=test), scored)

    @property
    def input_example(self) -> pd.DataFrame:
        from training.commands.churn import _signature_example

        cal = self._snap(self.final_cuts["calibration"])
        cols = [c for c in cal.columns if c not in ("cutoff", "churned", "label_end", "account_id",
                                                     "cat_share_max_drop_category")]
        return _signature_example(cal[cols].head(5))

    def evaluate(self, estimator) -> dict[str, Any]:
        """Scores of a candidate's *settings* on held-out labels (for ``dealerml promote``).

        A registered model was calibrated on the latest labelled window (its metadata's
        ``calibration_cutoff``), so scoring it there would grade it on labels it has seen. Like
        the dealers evaluator, this refits the candidate's settings (its LightGBM parameters,
        calibration, blend, seed) with ``training.churn_backtest.fit_churn`` on training and
        calibration label windows that end by the test cutoff ``T`` (the last cutoff whose
        label window ``[T, T+H)`` the book covers) and scores it on ``T``'s labels.
        Returns ``churn_metrics`` plus ``cutoff`` (ISO date), ``label_window`` and ``refit``.
        """
        from training.churn_backtest import fit_churn, snapshot

        get = getattr(estimator, "get_params", None)
        if get is None:
            raise ConfigError(f"cannot evaluate a {type(estimator).__name__} for churn promotion: it has no "
                              "get_params() to refit its settings with")
        params = {k: v for k, v in dict(get()).items() if k != "num_threads"}
        H = self.settings.horizon_days
        if int(params.get("horizon_days", H)) != H:
            raise ConfigError(f"the model's horizon_days ({params['horizon_days']}) differs from the config's "
                              f"churn.horizon_days ({H}); promotion compares models on the same labels")
        L = self.settings.lookback_days
        if params.get("lookback_days") is not None and int(params["lookback_days"]) != L:
            # refitted and scored on the config's population, it was compared as another model than the one served
            raise ConfigError(f"the model's lookback_days ({params['lookback_days']}) differs from the config's "
                              f"churn.lookback_days ({L}); promotion compares models on the same accounts")
        params["lookback_days"] = L  # a model saved before its lookback was kept: the config's, as then
        params["exclude"] = tuple(params.get("exclude") or ())
        cuts = self.folds[-1]
        assert cuts["test"] == self.t_last
        model, _, _ = fit_churn(self.book, self.settings.model_copy(update={"model": params}), cuts,
                                seed=int(params.get("random_state", self.seed)), num_threads=self.num_threads)
        if (cuts["test"], H) not in self._cache:
            self._cache[(cuts["test"], H)] = snapshot(self.book, cuts["test"], self.settings, horizon_days=H)[0]
        test = self._cache[(cuts["test"], H)]
        m = churn_metrics(test["churned"], model.churn_probability(test))
        out: dict[str, Any] = {k: v for k, v in m.items() if v is not None}
        out["baselines"] = self.baselines_at(cuts)
        end = cuts["test"] + pd.Timedelta(days=H)
        out["cutoff"] = str(cuts["test"].date())
        out["label_window"] = f"[{cuts['test'].date()}, {end.date()})"
        out["refit"] = (f"settings refitted on training labels ending by {cuts['calibration'].date()} and "
                        f"calibration labels ending by {cuts['test'].date()}")
        return out

    def run_params(self, estimator) -> dict[str, Any]:
        """The registered model's settings and windows under the names ``train churn`` logs them
        (``model.*``, ``backtest.*``, ``final.*``): ``experiment compare`` showed a tune run's
        ``best.learning_rate`` and a training run's ``model.learning_rate`` on two rows, each
        blank for the other run, and every setting the two share as a difference."""
        latest = self.folds[-1]
        return {**{f"model.{k}": v for k, v in estimator.get_params().items()},
                "backtest.calibration_cutoff": str(latest["calibration"].date()),
                "backtest.train_cutoffs": ",".join(str(c.date()) for c in latest["train"]),
                "final.calibration_cutoff": str(self.final_cuts["calibration"].date()),
                "final.train_cutoffs": ",".join(str(c.date()) for c in self.final_cuts["train"])}

    def baselines_at(self, cuts: dict) -> dict[str, dict[str, float]]:
        """BG/NBD and the recency rule on the test labels of ``cuts``, fitted as ``dealerml backtest
        churn`` fits them (BG/NBD on every account's history before the cutoff, the recency rule
        calibrated on the calibration cutoff): what a tuned or promoted model has to beat, since
        two models that beat each other by less than either beats BG/NBD are no win (once per cutoff)."""
        from models.churn import apply_score_calibrator, fit_score_calibrator
        from training.churn_backtest import bgnbd_churn_probability, recency_score, snapshot

        H = self.settings.horizon_days
        key = (pd.Timestamp(cuts["test"]), H)
        if key not in self._baselines:
            test, test_all = snapshot(self.book, cuts["test"], self.settings, horizon_days=H)
            cal = self._snap(cuts["calibration"])
            p_bgnbd, _ = bgnbd_churn_probability(test_all, test, H, self.settings.bgnbd_penalizer)
            rec = fit_score_calibrator("isotonic", recency_score(cal), cal["churned"].to_numpy())
            p_recency = apply_score_calibrator(rec, recency_score(test))
            self._baselines[key] = {name: {k: v for k, v in churn_metrics(test["churned"], p).items() if v is not None}
                                    for name, p in (("bgnbd", p_bgnbd), ("recency", p_recency))}
            self._baseline_p[key] = {"bgnbd": p_bgnbd, "recency": p_recency}
        return self._baselines[key]


def _full_params(params: dict[str, Any], s: ChurnSettings, *, seed: int, num_threads: int) -> dict[str, Any]:
    """A trial's (or the untuned) model params with the settings every trial is fitted with."""
    return {**params, "calibration": s.calibration, "random_state": seed, "num_threads": num_threads,
            "blend": s.blend, "horizon_days": s.horizon_days, "bgnbd_penalizer": s.bgnbd_penalizer,
            "lookback_days": s.lookback_days}


def _settings_identity(s: ChurnSettings, data_keys: dict[str, Any], *, n_folds: int, fold_step_days: int,
                       metric: str) -> dict[str, Any]:
    """The settings part of :attr:`ChurnTuningTarget.identity` (all of it but the data's sha256)."""
    keys = ["horizon_days", "lookback_days", "n_train_cutoffs", "train_horizon_days", "train_step_days",
            "min_history_days", "calibration", "blend", "bgnbd_penalizer"]
    out: dict[str, Any] = {f"churn.{k}": getattr(s, k) for k in keys}
    if s.train_horizon_days is None:
        out["churn.train_horizon_days"] = "not set (churn.horizon_days)"
    out.update(data_keys)
    out.update({"tuning.target.n_folds": n_folds, "tuning.target.fold_step_days": fold_step_days,
                "tuning.target.metric": metric})
    return out


def check_config(cfg: Any) -> None:
    """What ``dealerml tune churn`` refuses before the data load: a ``churn.model.horizon_days`` /
    ``lookback_days`` that contradicts ``churn.horizon_days`` / ``lookback_days``, as ``train churn``
    does (``_full`` set the config's over it without a word)."""
    check_model_windows(churn_settings(cfg))


def tuning_target(cfg: Any, book: Any = None) -> ChurnTuningTarget:
    """Build the churn tuning target from an ExperimentConfig (and its loaded order book)."""
    check_config(cfg)
    if book is None:
        from training.data import load_order_book

        book = load_order_book(cfg)
    s = churn_settings(cfg)
    from training.tuning_identity import cancellation_keys

    return ChurnTuningTarget(book, s, seed=int(getattr(cfg, "seed", 0) or 0), data_keys=cancellation_keys(cfg),
                             **_options(cfg))


def _options(cfg: Any) -> dict[str, Any]:
    """The config's ``tuning.target`` settings for churn (those it sets), checked."""
    from training.tuning_config import target_options

    # tuning.target.churn: {...} or tuning.target: {...}; unknown keys are errors
    opts = target_options(cfg, "churn", TARGET_KEYS)
    for k in ("n_folds", "fold_step_days", "num_threads"):
        if k in opts and (isinstance(opts[k], bool) or not isinstance(opts[k], int)):
            raise ConfigError(f"{getattr(cfg, 'config_path', None) or 'config'}: tuning.target.{k} must be a "
                              f"whole number; got {opts[k]!r}")
    return opts


def config_identity(cfg: Any) -> dict[str, str]:
    """What the config alone says a churn study's trials are scored on (``training.tuning_identity.
    settings_identity``): ``dealerml tune churn --resume`` refuses a study tuned on other settings with it
    before the order book is loaded; the folds and the data's sha256 are checked after the load."""
    from training.tuning_identity import cancellation_keys, settings_identity

    s = churn_settings(cfg)
    opts = {**TARGET_DEFAULTS, **_options(cfg)}
    fixed = _full_params(dict(s.model), s, seed=int(getattr(cfg, "seed", 0) or 0), num_threads=opts["num_threads"])
    own = _settings_identity(s, cancellation_keys(cfg), n_folds=opts["n_folds"], fold_step_days=opts["fold_step_days"],
                             metric=opts["metric"])
    return settings_identity(ChurnTuningTarget.name, opts["metric"], ChurnTuningTarget.direction, own, space, fixed)


def promotion_evaluator(cfg: Any, book: Any = None):
    """``evaluate(estimator) -> metrics`` for ``dealerml promote churn``: each candidate's
    settings refitted before the latest labelled cutoff and scored on it
    (:meth:`ChurnTuningTarget.evaluate`)."""
    if book is None:
        from training.data import load_order_book

        book = load_order_book(cfg)
    return ChurnTuningTarget(book, churn_settings(cfg), seed=int(getattr(cfg, "seed", 0) or 0)).evaluate
