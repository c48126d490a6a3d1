"""The demand forecaster's tuning target for ``dealerml tune demand`` (protocol:
``training.tuning.TuningTarget``).

Fold ``f`` (0 = earliest) is a rolling-origin window: cutoff ``T_end - h - (n_folds - 1 - f) *
step`` periods; the forecaster (member choice and intervals included) is fit on data up to the
cutoff only and scored on the h periods after it by the served forecast's MASE
(``training.demand_backtest``). Tuned: the global LightGBM member's settings and how the
final forecast is chosen (per demand class / per series / one global choice).

Settings (``tuning.target`` or ``tuning.target.demand`` in the config): ``n_folds`` (default
2), ``step`` (periods between fold cutoffs; default the horizon), ``metric`` (``mase`` or
``rmsse``); any other key is an error. A study records what its trials are scored on
(:attr:`DemandTuningTarget.identity`: the demand settings a trial reads, ``tuning.target``, how the
order book was read, the series table's sha256); ``--resume`` on other values is refused naming each.

The tuned model is logged like ``dealerml train demand``'s (pyfunc ``predict_frame`` on
``unique_id, h`` rows). Promotion (:meth:`DemandTuningTarget.evaluate`) refits each candidate's
settings on the data before the last backtest window and scores that window (a rolling-origin
cross-validation), so it is not graded on periods it was fitted on.

Coherent levels (``demand.hierarchy: true``). Tuning scores each trial by the *bottom* level's
(SKU x location) coherent ``Final`` in the hierarchy's own backtest
(``training.demand_hier_backtest``): what stock is sized from, and under ``bottom_up`` the
bottom forecaster's own forecast. The tuned settings are the bottom forecaster's (and, as
``demand.lgbm`` in ``train demand``, the upper levels' forecaster's too); the retrained best is
registered as a hierarchical forecaster, like ``train demand``'s. Promotion scores a
hierarchical model with its own levels and reconciliation, its settings read from its bottom
forecaster, and compares the bottom level's figures (every level's are returned as
``level.<level>.<metric>``); a plain model is scored on the same bottom series and window, so a
plain and a hierarchical model compare on the same footing (``scored_on``; the registry refuses a
pair scored on different series or windows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from training.demand_config import DemandSettings, demand_settings, load_demand_series
from training.errors import ConfigError, DataError

__all__ = ["tuning_target", "config_identity", "DemandTuningTarget", "space", "TARGET_KEYS"]

TARGET_KEYS = ("n_folds", "step", "metric")
"""The settings ``tuning.target`` (or ``tuning.target.demand``) may hold."""
TARGET_DEFAULTS: dict[str, Any] = {"n_folds": 2, "step": None, "metric": "mase"}
"""Their values when the config leaves them out (``step`` None: the horizon)."""


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
    report_model = "Final"  # what train demand's backtest calls the served forecast (experiment compare)
    predict_method = "predict_frame"  # the pyfunc answers {unique_id, h} rows, as train demand's does

    def __init__(self, series: pd.DataFrame, settings: DemandSettings, *, seed: int = 0,
                 n_folds: int = TARGET_DEFAULTS["n_folds"], step: int | None = TARGET_DEFAULTS["step"],
                 metric: str = TARGET_DEFAULTS["metric"], levels: list[str] | None = None,
                 keyed: Callable[[], tuple[pd.DataFrame, list[str]]] | None = None,
                 as_of: Callable[[pd.Timestamp], pd.DataFrame | None] | None = None,
                 data_keys: dict[str, Any] | None = None, driver_leaks: list[str] | None = None,
                 planned_drivers: Callable[[int], pd.DataFrame] | None = None) -> None:
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
        self._step_set = step  # as configured (None: the horizon), for the study identity
        self._data_keys = dict(data_keys or {})  # how the data were read (tuning_target: data.order_lines.*)
        # the config's hierarchy (key columns top first) when demand.hierarchy is on: trials and the
        # final model are hierarchical, scored on the bottom level
        self.levels = [str(c) for c in levels] if settings.hierarchy and levels else None
        if settings.hierarchy and not self.levels:
            raise ConfigError("demand.hierarchy needs key columns: demand.levels (e.g. [sku, location]) for an order "
                              "book, or demand.series.columns.unique_id: [<parent>, <child>] for a series table")
        self._keyed = keyed  # loads the series with their key columns (to score a hierarchical model)
        # an order book's history as it stood at an instant (load_demand_series' info["as_of"]): a fold's
        # window, plain or hierarchical, forecasts from what a run at its cutoff could read (cancellations
        # dated later), so a hierarchical and a plain model are compared on the same histories
        self.as_of = as_of
        self.driver_leaks = list(driver_leaks or ())  # load_demand_series' info["driver_leaks"], said in note
        self.planned_drivers = planned_drivers  # load_demand_series' info["planned_drivers"]: the final model's plan
        self._keyed_series: tuple[pd.DataFrame, list[str]] | None = (series, self.levels) if self.levels else None
        self._final_fold: tuple[dict[str, Any], pd.DataFrame] | None = None  # fit_final's report and cv
        base = settings.forecaster_kwargs(seed)
        self.default_params = _default_params(base)
        # The statsforecast members read neither setting a trial changes (selection, lgbm_params):
        # their forecasts at each cutoff are made once per tuning run (or promote) and reused by every
        # trial, by the folds whose history up to that cutoff is the same, by fit_final's backtest
        # and final fit (models.demand_cache.MemberCache). Bounded: every cutoff the folds and the
        # final fit ask for (each fold's and its selection windows', the final fit's origin), per
        # forecaster kind (plain, and a hierarchy's bottom and upper levels).
        from models.demand_cache import MemberCache

        per_kind = self.n_folds * (int(base.get("selection_windows") or 2) + 1) + 1
        self.member_cache = MemberCache(stat_cutoffs=3 * per_kind)
        dates = pd.to_datetime(series["ds"])
        self.model_metadata = {"training_window": {"start": str(dates.min().date()), "end": str(dates.max().date())},
                               "freq": settings.freq, "horizon": self.h}

    @property
    def fold_windows(self) -> list[str]:
        """Each fold's cutoff and test window (the ``h`` periods after it), earliest first."""
        periods = sorted(pd.to_datetime(self.series["ds"]).unique())
        out = []
        for f in range(self.n_folds):
            end = len(periods) - 1 - (self.n_folds - 1 - f) * self.step
            if end - self.h < 0:
                out.append("not enough periods")  # the command prints "fold {f}: " before it
                continue
            d = lambda i: str(pd.Timestamp(periods[i]).date())  # noqa: E731
            out.append(f"cut at {d(end - self.h)}, test {d(end - self.h + 1)}..{d(end)} ({self.h} periods)")
        return out

    def check_data(self) -> None:
        """Refuse, before a study or an MLflow run is made, a table too short for the folds: every
        trial's backtest would refuse it (each fold's one window of h periods after min_train), so
        a run would end FAILED with no trial complete. The same check and message as a trial's."""
        from training.demand_backtest import check_backtest

        n = pd.to_datetime(self.series["ds"]).nunique()
        for f in range(self.n_folds):
            drop = (self.n_folds - 1 - f) * self.step
            where = (f"tuning fold {f} of {self.n_folds} (its test window ends {drop} period"
                     f"{'' if drop == 1 else 's'} before the last, tuning.target.step {self.step})")
            try:
                if n - 1 - drop < 0:
                    raise ValueError(f"the data has {n} period{'' if n == 1 else 's'}, fewer than that")
                check_backtest(self._fold_data(f), freq=self.settings.freq, h=self.h, n_windows=1,
                               forecaster_kwargs=self._kwargs(self.default_params))
            except ValueError as exc:
                raise DataError(f"{where}: {exc}; give a longer book, fewer folds (tuning.target.n_folds) or a "
                                "smaller tuning.target.step or demand.horizon") from None

    @property
    def identity(self) -> dict[str, Any]:
        """The settings that change a trial's score, under their config keys, and the sha256 of the series
        table scored (the data, and how demand.top_n and the order book's reading made it): recorded with the study, so a ``--resume`` on other values is refused naming
        each (``training.tuning_identity.study_identity``). Not here: what no trial reads (demand.lgbm and
        demand.selection, which the trials tune; inventory and serving settings; n_jobs; the seed)."""
        out = _settings_identity(self.settings, self._data_keys, n_folds=self.n_folds, step=self._step_set,
                                 metric=self.metric)
        from training.data import order_lines_sha256

        out["demand series sha256"] = order_lines_sha256(self.series)
        return out

    @property
    def evaluation_params(self) -> dict[str, Any]:
        """What the latest fold measured, under the keys ``train demand`` logs for its backtest."""
        out: dict[str, Any] = {"horizon": self.h, "windows": 1, "freq": self.settings.freq}
        if self._final_fold is not None:  # after fit_final: the latest fold's window, as train demand logs its own
            out["backtest.cutoffs"] = ",".join(self._final_fold[0]["cutoffs"])
        return out

    def final_plots(self) -> dict[str, Any]:
        """The plots ``train demand`` logs from its backtest (fan charts, accuracy by demand class) of the
        tuned model on the latest fold, after :meth:`fit_final`: the run of a tuned challenger logged none.
        (The service-level plot comes from train demand's inventory replay, which tuning does not run.)"""
        from training.demand_plots import accuracy_by_class, fan_charts

        if self._final_fold is None:
            return {}
        rep, cv = self._final_fold
        figs = {"plots/accuracy_by_class.png": accuracy_by_class(rep)}
        if not self.levels:  # a hierarchy's cv holds every level; train demand draws the bottom one
            figs["plots/fan_charts.png"] = fan_charts(self._fold_data(self.n_folds - 1), cv, seed=self.seed)
        return figs

    @property
    def note(self) -> str | None:
        """Said once by ``dealerml tune demand`` / ``promote demand`` when the trials are not scored on
        the plain served forecast (``demand.hierarchy``), and for a driver that gives away the periods
        without demand (``training.demand_driver_leaks``)."""
        said = ([self.tuned_on] if self.levels else []) + self.driver_leaks
        return "\n".join(said) or None

    def _kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        kw = self.settings.forecaster_kwargs(self.seed)
        kw.update({k: v for k, v in params.items() if k in ("selection", "lgbm_params")})
        return kw

    def _fold_data(self, fold: int, series: pd.DataFrame | None = None) -> pd.DataFrame:
        """Data up to the end of fold ``fold``'s test window (later rows are never read)."""
        series = self.series if series is None else series
        ds = pd.to_datetime(series["ds"])
        periods = sorted(ds.unique())
        drop = (self.n_folds - 1 - fold) * self.step
        end = periods[len(periods) - 1 - drop]
        return series[ds <= end]

    def _report(self, params: dict[str, Any], fold: int, hier: tuple[list[str], str] | None = None,
                series: pd.DataFrame | None = None, score_only: bool = False) -> dict[str, Any]:
        """The backtest report of ``params`` on fold ``fold``: plain, or with ``hier`` = (key
        columns, reconciliation) every level's (top-level keys: the bottom level's coherent Final).
        ``score_only`` (plain): Final's ``metric`` alone, the same figure, without scoring every
        other model and demand class (a trial reads only that)."""
        return self._report_and_cv(params, fold, hier, series, score_only)[0]

    def _report_and_cv(self, params: dict[str, Any], fold: int, hier: tuple[list[str], str] | None = None,
                       series: pd.DataFrame | None = None,
                       score_only: bool = False) -> tuple[dict[str, Any], pd.DataFrame]:
        """:meth:`_report` and the cross-validation frame it scored (fit_final keeps both; a trial
        drops the frame, so none stays alive between trials)."""
        data = self._fold_data(fold, series)
        if hier is not None:
            from training.demand_hier_backtest import run_hier_backtest

            report, cv = run_hier_backtest(data, levels=hier[0], method=hier[1], freq=self.settings.freq, h=self.h,
                                           n_windows=1, forecaster_kwargs=self._kwargs(params),
                                           member_cache=self.member_cache, history_as_of=self.as_of)
        else:
            from training.demand_backtest import run_backtest

            keys = [c for c in (self.levels or []) if c in data.columns]  # a plain model reads no key columns
            report, cv = run_backtest(data.drop(columns=keys), freq=self.settings.freq, h=self.h, n_windows=1,
                                      forecaster_kwargs=self._kwargs(params), member_cache=self.member_cache,
                                      score=("Final", self.metric) if score_only else None, history_as_of=self.as_of)
        # the window cutoffs (ISO dates), the same for both kinds of report
        report["cutoffs"] = sorted({str(pd.Timestamp(c).date()) for c in cv["cutoff"].unique()})
        return report, cv

    def _own_hier(self) -> tuple[list[str], str] | None:
        return (self.levels, self.settings.reconcile) if self.levels else None

    def _series_with_keys(self, levels: list[str], version: str) -> pd.DataFrame:
        """The series with the key columns ``levels`` (a hierarchical model's), or a clear refusal."""
        if self._keyed_series is None and self._keyed is not None:
            try:
                self._keyed_series = self._keyed()
            except ConfigError as exc:
                raise ConfigError(f"{version} is hierarchical (levels {levels}) but the config's demand series have no "
                                  f"key columns to rebuild them: {exc}") from None
        df = None if self._keyed_series is None else self._keyed_series[0]
        miss = [c for c in levels if df is None or c not in df.columns]
        if miss:
            have = [] if df is None else [c for c in df.columns if c not in ("unique_id", "ds", "y")]
            raise ConfigError(f"{version} is hierarchical (levels {levels}) but the config's demand series lack "
                              f"key column(s) {miss} (they have {have}): it cannot be scored on the same series "
                              "as the other model; promote with the config it was trained on (demand.levels, "
                              "demand.hierarchy: true)")
        return df

    # ------------------------------------------------------------ protocol
    def space(self, trial: Any) -> dict[str, Any]:
        return space(trial)

    def score_fold(self, params: dict[str, Any], fold: int) -> float:
        """The fold's ``metric`` of the served forecast; with ``demand.hierarchy``, of the bottom
        level's coherent forecast (what stock is sized from). Under ``bottom_up`` that forecast is
        the bottom forecaster's own, so the bottom series' plain backtest scores it: the same
        numbers (to the bit on 60 synthetic series x 2 folds) without fitting the upper levels
        and reconciling (35 s instead of 64 s there)."""
        hier = self._own_hier()
        if hier is not None and hier[1] == "bottom_up":
            hier = None
        v = self._report(params, fold, hier, score_only=True)["metrics"]["Final"][self.metric]
        return float("inf") if v is None else float(v)

    def run_params(self, estimator: Any) -> dict[str, Any]:  # noqa: ARG002 - the protocol's signature
        """The registered model's tuned settings under the names ``train demand`` logs them
        (``model.selection``, ``model.lgbm_params.*``, :func:`model_params`): ``experiment compare`` showed
        a tune run's ``best.lgbm_params.num_leaves`` and a training run's ``config.demand.lgbm.num_leaves``
        on two rows, each blank for the other run. After :meth:`fit_final`."""
        return model_params(self._kwargs(self._final_params))

    def fit_final(self, params: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        from models.demand import DemandForecaster

        self._final_params = dict(params)
        self._final_fold = self._report_and_cv(params, self.n_folds - 1, self._own_hier())  # final_plots, evaluation_params
        rep = self._final_fold[0]
        metrics = {k: float(v) for k, v in rep["metrics"]["Final"].items() if v is not None}
        # the other models of the same latest-fold backtest (statsforecast baselines, members)
        self.final_baselines = {m: {k: float(v) for k, v in vals.items() if isinstance(v, int | float)
                                    and not isinstance(v, bool)}
                                for m, vals in rep["metrics"].items() if m != "Final" and isinstance(vals, dict)}
        if self.levels:  # registered as train demand registers it: the coherent forecaster of every level
            from models.demand_hier import HierarchicalDemandForecaster

            model: Any = HierarchicalDemandForecaster(self.levels, method=self.settings.reconcile, forecaster={
                "freq": self.settings.freq, "h": self.h, **self._kwargs(params)}).fit(self.series,
                                                                                     member_cache=self.member_cache)
            by_level = {k: v["metrics"].get("Final") or {} for k, v in rep["hierarchy"]["by_level"].items()}
            self.model_metadata = {**self.model_metadata, "backtest_metrics": {**metrics, "by_level": by_level},
                                   "hierarchy": {"levels": self.levels, "method": self.settings.reconcile},
                                   "tuned_on": self.tuned_on}
        else:
            # its selection windows are the latest fold's backtest cutoffs, with the same settings
            model = DemandForecaster(freq=self.settings.freq, h=self.h, **self._kwargs(params)).fit(
                self.series, member_cache=self.member_cache)
        if self.planned_drivers is not None:  # a promotions calendar's next campaigns, as train demand plans them
            model.set_planned_drivers(self.planned_drivers(self.h))
        self._final = model
        return model, metrics

    @property
    def tuned_on(self) -> str:
        """What the trials are scored on (said by ``dealerml tune demand`` and kept with the model)."""
        if not self.levels:
            return f"the served forecast's {self.metric}"
        return (f"demand.hierarchy ({self.settings.reconcile} over {', '.join(self.levels)}): tuning trials and "
                f"promotion are scored on the bottom level ({'/'.join(self.levels)}), by its coherent forecast, the one "
                "stock is sized from; the tuned settings are the bottom forecaster's (the upper levels' forecaster "
                "uses them too) and tune registers the retrained best as a hierarchical forecaster")

    @property
    def input_example(self) -> pd.DataFrame:
        """One ``unique_id, h`` row for a series the final model forecasts (as ``train demand``)."""
        final = getattr(self, "_final", None)
        nodes = getattr(final, "nodes_", None)
        uids = getattr(getattr(final, "panel_", None), "uids", None)
        if nodes is not None and len(nodes):  # hierarchical: a served id (as train demand's example)
            uid = str(nodes["served_id"].iloc[-1])
        else:
            uid = str(uids[0]) if uids is not None and len(uids) else str(self.series["unique_id"].iloc[0])
        return pd.DataFrame({"unique_id": [uid], "h": [self.h]})

    def evaluate(self, estimator: Any) -> dict[str, Any]:
        """Scores of a forecaster's *settings* on the last backtest window (for ``dealerml promote``).

        The settings are refitted on the periods before the window's cutoff (rolling origin:
        statsforecast's cross-validation) and scored on the ``h`` periods after it, so a model
        fitted on the whole series is never graded on periods it has seen. Returns the Final
        forecast's metrics plus ``cutoff`` (ISO date of the window's cutoff), ``windows`` and
        ``baselines`` (the statsforecast baselines' metrics on the same window).

        A hierarchical model (``bottom_``) is refitted as it serves: its own levels and
        reconciliation, the bottom forecaster's ``selection`` / ``lgbm_params``; its top-level
        metrics are the bottom level's coherent Final (what stock is sized from), every level's
        are added as ``level.<level>.<metric>``. ``scored_on`` says which series and window were
        scored (a plain model: the same bottom series), for the registry's same-footing check."""
        hier = hasattr(estimator, "bottom_") and hasattr(estimator, "levels")
        src = estimator.bottom_ if hier else estimator
        params = {"selection": getattr(src, "selection", "class"),
                  "lgbm_params": dict(getattr(src, "lgbm_params", None) or {})}
        if hier:
            levels = [str(c) for c in estimator.levels]
            method = str(getattr(estimator, "method", "bottom_up"))
            series = self._series_with_keys(levels, "the model")
            rep = self._report(params, self.n_folds - 1, (levels, method), series)
        else:
            rep = self._report(params, self.n_folds - 1)
        out: dict[str, Any] = {k: float(v) for k, v in rep["metrics"]["Final"].items() if v is not None}
        from training.demand_backtest import BASELINES

        # the statsforecast baselines of the same window (not LightGBM / Ensemble, which move with the
        # settings): promote prints them under the decision and logs them as baseline.<model>.<metric>
        out["baselines"] = {m: {k: float(v) for k, v in vals.items() if isinstance(v, int | float)
                                and not isinstance(v, bool)}
                            for m, vals in rep["metrics"].items() if m in BASELINES and isinstance(vals, dict)}
        windows = rep["cutoffs"]
        if windows:
            out["cutoff"] = windows[-1]
            out["windows"] = windows
        n = int(rep["setup"].get("n_series_scored") or 0)
        out["n_series_scored"] = n
        if hier:
            out["hierarchy"] = f"{method} over {', '.join(levels)}"
            for name, lv in rep["hierarchy"]["by_level"].items():
                out.update({f"level.{name}.{k}": float(v) for k, v in (lv["metrics"].get("Final") or {}).items()
                            if v is not None})
            out["compared"] = f"the bottom level's ({'/'.join(levels)}) coherent Final"
        else:
            out["compared"] = "the Final forecast of every series"
        out["scored_on"] = (f"{n} bottom series, window cut at {out.get('cutoff', '?')}, {self.h} periods, "
                            f"{rep['setup'].get('n_forecasts', 'n/a')} forecasts scored")
        out["refit"] = f"settings refitted on the periods up to each cutoff, scored on the {self.h} after it"
        return out


def tuning_target(cfg: Any, book: Any = None) -> DemandTuningTarget:
    """Build the demand tuning target from an ExperimentConfig (``book`` is unused when the
    config names a ready series table; otherwise the order book is loaded here)."""
    s = demand_settings(cfg)
    series, info = load_demand_series(cfg, s)
    opts = _options(cfg)

    def keyed() -> tuple[pd.DataFrame, list[str]]:
        """The same series with their key columns (to score a hierarchical model under a plain config)."""
        df, info = load_demand_series(cfg, s.model_copy(update={"hierarchy": True}))
        return df, list(info.get("levels") or [])

    # what is scored under demand.hierarchy is the target's ``note``: dealerml tune / promote print it
    # once per command (not here: workers and every evaluator build a target too)
    return DemandTuningTarget(series, s, seed=int(getattr(cfg, "seed", 0) or 0), levels=info.get("levels"),
                              keyed=keyed, as_of=info.get("as_of"), data_keys=_data_keys(cfg, s),
                              driver_leaks=info.get("driver_leaks"), planned_drivers=info.get("planned_drivers"), **opts)


def _options(cfg: Any) -> dict[str, Any]:
    """The config's ``tuning.target`` settings for demand (those it sets), checked."""
    from training.tuning_config import target_options

    opts = target_options(cfg, "demand", TARGET_KEYS)
    for k in ("n_folds", "step"):
        if k in opts and opts[k] is not None and (isinstance(opts[k], bool) or not isinstance(opts[k], int)):
            raise ConfigError(f"{getattr(cfg, 'config_path', None) or 'config'}: tuning.target.{k} must be a "
                              f"whole number; got {opts[k]!r}")
    return opts


def model_params(forecaster_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The served forecaster's settings a trial tunes, as run params (``model.selection``,
    ``model.lgbm_params.<key>``): logged by ``train demand`` and by a tune run (``run_params``), so
    ``experiment compare`` lines the two up on one row each."""
    return {"model": {"selection": forecaster_kwargs["selection"],
                      "lgbm_params": dict(forecaster_kwargs.get("lgbm_params") or {})}}


def _default_params(base: dict[str, Any]) -> dict[str, Any]:
    """The untuned configuration (the settings a trial tunes) from the config's forecaster kwargs."""
    return {"selection": base["selection"], "lgbm_params": dict(base.get("lgbm_params") or {})}


def _settings_identity(s: DemandSettings, data_keys: dict[str, Any], *, n_folds: int, step: int | None,
                       metric: str) -> dict[str, Any]:
    """The settings part of :attr:`DemandTuningTarget.identity` (all of it but the series' sha256)."""
    keys = ["freq", "horizon", "top_n", "hierarchy", "models", "profile", "fast_above", "selection_windows",
            "season_length", "min_train", "short_history", "short_window"]
    out: dict[str, Any] = {f"demand.{k}": getattr(s, k) for k in keys}
    if s.hierarchy:
        out["demand.reconcile"] = s.reconcile
    out.update(data_keys)
    out.update({"tuning.target.n_folds": n_folds, "tuning.target.metric": metric,
                "tuning.target.step": step if step else "not set (demand.horizon)"})
    return out


def config_identity(cfg: Any) -> dict[str, str]:
    """What the config alone says a demand study's trials are scored on (``training.tuning_identity.
    settings_identity``): ``dealerml tune demand --resume`` refuses a study tuned on other settings with it
    before the series are loaded; the folds and the series' sha256 are checked after the load."""
    from training.tuning_identity import settings_identity

    s = demand_settings(cfg)
    opts = {**TARGET_DEFAULTS, **_options(cfg)}
    own = _settings_identity(s, _data_keys(cfg, s), n_folds=opts["n_folds"], step=opts["step"], metric=opts["metric"])
    fixed = _default_params(s.forecaster_kwargs(int(getattr(cfg, "seed", 0) or 0)))
    return settings_identity(DemandTuningTarget.name, opts["metric"], DemandTuningTarget.direction, own, space, fixed)


def _data_keys(cfg: Any, s: DemandSettings) -> dict[str, Any]:
    """How an order book was read into the series (its levels, cutoff and drivers, its cancellations'
    netting, the lines without an account), for the study identity; a ready series table
    (demand.series) reads none of them (its sha256 covers it)."""
    if s.series is not None:  # load_demand_series reads the table, not the order book
        return {}
    from training.tuning_identity import cancellation_keys

    out: dict[str, Any] = {f"demand.{k}": getattr(s, k) for k in ("levels", "cutoff", "drivers",
                                                                  "include_lines_without_account")}
    out.update(cancellation_keys(cfg))
    return out

