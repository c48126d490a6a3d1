"""What a tuning study reports: the best configuration, its figures on the parent MLflow run, the model.

:func:`report_best` runs once the trials are done, inside ``run_study``'s parent run: it picks the best
trial (or keeps the untuned configuration when no trial beat it on the same folds), logs the summary,
each fold's scores, every trial (``tuning/study.json``) and the latest fold as a backtest report beside
the untuned configuration and the baselines, fits the final model and asks for its registration as
``challenger``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from training.errors import DealermlError
from training.tuning_runtime import describe_storage
from training.tuning_study import _counts

if TYPE_CHECKING:
    from training.tuning import TuningTarget
    from training.tuning_config import TuningSettings

__all__ = ["StudyResult", "report_best", "untuned_scores", "untuned_score"]


@dataclass
class StudyResult:
    study_name: str
    storage: str
    best_params: dict[str, Any]
    best_value: float
    untuned_value: float | None
    n_complete: int
    n_pruned: int
    n_failed: int
    parent_run_id: str | None
    registered_version: str | None
    final_metrics: dict[str, float] = field(default_factory=dict)
    best_is_untuned: bool = False
    best_fold_scores: list[float] = field(default_factory=list)
    untuned_fold_scores: list[float] | None = None
    n_already_finished: int = 0
    """Finished trials the study held before this run (``resume``)."""
    fold_windows: list[str] = field(default_factory=list)
    """What each fold tested on (the target's ``fold_windows``: cutoff and test window), earliest first."""
    latest_fold_baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    """Other models' figures on the latest fold, where the target computes them (``final_baselines``)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _no_trial_message(study: Any, study_name: str, pruned: int, failed: int) -> str:
    """Why no trial completed: the failed trials' errors (each distinct one once, with its trials)."""
    errors: dict[str, list[int]] = {}
    for t in study.trials:
        if t.state.name == "FAIL":
            errors.setdefault(t.user_attrs.get("error", "no error recorded (the worker died?)"), []).append(t.number)
    why = "; ".join(f"trial(s) {', '.join(map(str, nums[:5]))}{' ...' if len(nums) > 5 else ''}: {err}"
                    for err, nums in list(errors.items())[:3])
    return f"study {study_name}: no trial completed ({pruned} pruned, {failed} failed){': ' + why if why else ''}"


def untuned_scores(target: TuningTarget) -> list[float] | None:
    """Backtest scores of ``target.default_params`` on each fold (the same folds), or None."""
    params = getattr(target, "default_params", None)
    if params is None:
        return None
    return [float(target.score_fold(dict(params), f)) for f in range(target.n_folds)]


def untuned_score(target: TuningTarget) -> float | None:
    """Mean backtest score of ``target.default_params`` on the same folds, or None."""
    scores = untuned_scores(target)
    return None if scores is None else sum(scores) / len(scores)


def report_best(target: TuningTarget, study: Any, parent: Any, *, study_name: str, storage: str | None,
                settings: TuningSettings, register: bool, already: int, log: Callable[[str], None]) -> StudyResult:
    """Record the study's outcome on the ``parent`` run (see the module docstring) and return it; its
    ``registered_version`` is known only once the parent run has ended cleanly (``run_study`` sets it).
    DealermlError, naming the failed trials' errors, when no trial completed."""
    done, pruned, failed = _counts(study)
    if done == 0:
        raise DealermlError(_no_trial_message(study, study_name, pruned, failed))
    best = study.best_trial
    best_params = dict(best.user_attrs.get("params", best.params))
    best_value = float(best.value)
    untuned_folds = untuned_scores(target)
    untuned = None if untuned_folds is None else sum(untuned_folds) / len(untuned_folds)
    best_folds = list(best.user_attrs.get("fold_scores") or [])
    best_is_untuned = untuned is not None and (
        untuned > best_value if target.direction == "maximize" else untuned < best_value
    )
    if best_is_untuned:
        # No trial beat the configuration in the config file on these folds: keep it, so the
        # challenger is never worse than the untuned model on the tuning folds.
        # both numbers named: '(0.630205 vs 0.642531)' did not say which was the untuned one, nor which way is better
        better = "lower" if target.direction == "minimize" else "higher"
        log(f"no trial beat the untuned configuration on the same folds (best trial {best_value:.6g} vs untuned "
            f"{untuned:.6g}, mean {target.metric} over {len(untuned_folds or [])} fold(s), {better} is better); "
            "keeping it")
        best_params, best_value = dict(target.default_params), float(untuned)
        best_folds = list(untuned_folds or [])
    parent.set_tags({"dealerml.best_is_untuned": str(best_is_untuned).lower()})
    parent.log_params({f"best.{k}": v for k, v in best_params.items()})
    summary = {f"best_{target.metric}": best_value, "trials_complete": done, "trials_pruned": pruned,
               "trials_failed": failed, "best_trial": -1 if best_is_untuned else best.number}
    if untuned is not None:
        summary[f"untuned_{target.metric}"] = untuned
    parent.log_metrics(summary)
    for f, v in enumerate(best_folds):
        parent.log_metrics({f"best_{target.metric}": v}, slice={"fold": f})
    for f, v in enumerate(untuned_folds or []):
        parent.log_metrics({f"untuned_{target.metric}": v}, slice={"fold": f})
    parent.log_dict({"best_params": best_params, "best_value": best_value, "untuned_value": untuned,
                     "trials": [{"number": t.number, "state": t.state.name, "value": t.value,
                                 "params": t.user_attrs.get("params", t.params),
                                 "fold_scores": t.user_attrs.get("fold_scores")}
                                for t in study.get_trials(deepcopy=False)]}, "tuning/study.json")
    estimator, metrics = target.fit_final(best_params)
    parent.log_metrics(metrics)
    final_plots = getattr(target, "final_plots", None)  # the plots a training run logs, on the latest fold
    for path, fig in (final_plots() if callable(final_plots) else {}).items():
        parent.log_figure(fig, path)
    # the latest fold as a backtest report (what `experiment compare` reads beside train runs): the
    # tuned model under the capability's report name, the untuned configuration and any baselines
    # on the same fold, and the params that say what that fold measured
    report_model = getattr(target, "report_model", None)
    if report_model:
        parent.log_metrics({report_model: dict(metrics)})
    if untuned_folds:
        parent.log_metrics({"untuned": {target.metric: untuned_folds[-1]}})
    baselines = {m: {k: float(v) for k, v in vals.items() if isinstance(v, int | float) and not isinstance(v, bool)}
                 for m, vals in (getattr(target, "final_baselines", None) or {}).items() if m != report_model}
    if baselines:
        parent.log_metrics(baselines)
    folds_desc = [str(w) for w in (getattr(target, "fold_windows", None) or [])]
    parent.log_params({**{str(k): v for k, v in (getattr(target, "evaluation_params", None) or {}).items()},
                       **({"tune.folds": " | ".join(folds_desc)[:500]} if folds_desc else {})})
    run_params = getattr(target, "run_params", None)
    if callable(run_params):  # the registered model's settings under a training run's names (compare lines them up)
        parent.log_params(run_params(estimator))
    if register and settings.register_best:
        meta = dict(getattr(target, "model_metadata", None) or {})
        meta.setdefault("backtest_metrics", dict(metrics))
        meta["tuning"] = {"study": study_name, "best_value": best_value, "untuned_value": untuned,
                          "folds": folds_desc}  # promote warns when it scores on one of these folds
        parent.log_model(estimator, input_example=getattr(target, "input_example", None), metadata=meta,
                         predict_method=getattr(target, "predict_method", None))
        parent.register(f"dealerml-{target.name}", alias="challenger")
    return StudyResult(
        study_name=study_name,
        storage=describe_storage(storage),
        best_params=best_params,
        best_value=best_value,
        best_is_untuned=best_is_untuned,
        best_fold_scores=best_folds,
        untuned_fold_scores=untuned_folds,
        untuned_value=untuned,
        n_complete=done,
        n_pruned=pruned,
        n_failed=failed,
        parent_run_id=parent.run_id,
        registered_version=None,
        final_metrics={k: float(v) for k, v in metrics.items()},
        n_already_finished=already,
        fold_windows=folds_desc,
        latest_fold_baselines=baselines,
    )
