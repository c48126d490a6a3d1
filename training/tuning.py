"""Optuna tuning on the time-ordered backtest, shared by every capability.

A capability describes *what* to tune with a :class:`TuningTarget` (its search space, its
rolling-origin folds, how to fit the final model); :func:`run_study` owns *how*: the Optuna
study and storage, pruning across folds, one nested MLflow run per trial under one parent
run, worker processes, retraining the best configuration and registering it as the
``challenger`` of ``dealerml-<target.name>``.

Storage
    default: ``JournalStorage(JournalFileBackend($DEALERML_HOME/optuna/journal.log))`` (several
    processes on one machine may share it); a ``postgresql://`` (or any SQLAlchemy) URL uses
    ``RDBStorage`` with a heartbeat, so a worker killed mid-trial leaves that trial RUNNING
    only until ``grace_period`` seconds pass, after which the next worker to ask for a trial
    (or the coordinator at the end) marks it FAILED; the other workers carry on.

Exactly N trials
    ``workers=K`` spawns K processes running ``dealerml tune <name> --worker ...`` on the same
    study; trial budgets are split so they sum to N (``N // K`` each, the first ``N % K``
    get one more). Trial numbers come from the storage, so they never repeat. If a worker
    dies, the coordinator runs the missing number of trials itself, so the study ends with
    N trials that completed or were pruned (plus the failed ones, which are kept and counted).
    Workers run in their own process groups and never outlive the coordinator: if it is
    interrupted (Ctrl-C, SIGTERM, SIGHUP, an error) it stops them before it exits.

Resuming
    A study name that already has trials is refused, unless ``resume=True`` (``--resume``):
    then the study continues until it holds N finished trials in total, and the best is chosen
    among all of them.

The pieces: the ``tuning:`` section and ``tuning.target`` (``training.tuning_config``), what a study's
trials are scored on (``training.tuning_identity``), the study's state, owner and refusals
(``training.tuning_study``), the storage and the worker processes (``training.tuning_runtime``), the
report of the best (``training.tuning_report``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from training.errors import ConfigError, hide_url_passwords
from training.tuning_config import TuningSettings
from training.tuning_identity import record_identity, refuse_other_identity, study_identity
from training.tuning_report import StudyResult, report_best
from training.tuning_runtime import (
    _spawn_workers,
    describe_storage,
    drop_unused_journal,
    exit_with_parent,
    make_storage,
    new_journal,
)
from training.tuning_study import (
    _claim,
    _counts,
    _fail_abandoned,
    _fail_stale,
    _refuse_study_state,
    _study,
)

__all__ = ["TuningTarget", "run_study", "run_worker", "split_trials"]


@runtime_checkable
class TuningTarget(Protocol):
    """What a capability gives the tuner.

    ``name``       "churn" / "demand": MLflow experiment ``dealerml-<name>`` and registered
                   model ``dealerml-<name>``.
    ``direction``  "maximize" (AUC) or "minimize" (MASE).
    ``metric``     name of the fold score, e.g. "auc" or "mase" (used for keys and reports).
    ``n_folds``    number of rolling-origin folds, fold 0 the EARLIEST cutoff; every fold
                   trains only on rows before its cutoff and scores the window after it.
    ``space(trial) -> dict``  a plain function: ``trial.suggest_*`` calls, returns the full
                   constructor params (fixed ones included).
    ``score_fold(params, fold) -> float``  fit with ``params`` on the fold's training rows and
                   return its backtest score (never a random split).
    ``fit_final(params) -> (estimator, metrics)``  fit on all data up to the latest cutoff;
                   ``metrics`` are the latest backtest's figures (logged on the parent run).

    Optional attributes the tuner uses when present: ``default_params`` (dict: the untuned
    configuration, scored on the same folds for the report), ``input_example`` (for the model
    signature), ``predict_method`` (the estimator method the MLflow pyfunc calls, e.g.
    ``"predict_frame"``; default ``predict_proba``/``predict``), ``model_metadata`` (dict: e.g.
    ``training_window``), ``evaluate(estimator) ->
    dict[str, float]`` (scores a fitted estimator on the latest backtest; used by ``promote``),
    ``fold_windows`` (list of str: what each fold tests on, e.g. its cutoff; printed and logged as
    ``tune.folds``), ``evaluation_params`` (dict: the params a training run logs to say what its
    backtest measured, e.g. ``backtest.test_cutoff``, for the latest fold), ``report_model`` (the
    name the training run's backtest gives the served model, e.g. ``lightgbm`` / ``Final``: the
    latest fold's figures are logged as ``<report_model>.<metric>`` beside ``untuned.<metric>``),
    ``final_baselines`` (dict model -> metrics on the latest fold, set by ``fit_final``),
    ``identity`` (dict: config key -> value of every setting that changes a trial's score beyond
    ``default_params`` and the folds, e.g. ``demand.horizon`` or ``churn.n_train_cutoffs``, plus
    fingerprints of the data scored such as ``demand series sha256``; recorded with the study, a
    ``--resume`` on other values is refused naming each), ``note`` (str or None: what the trials are scored on when it is not obvious; the command
    prints it once), ``run_params(estimator)`` (dict: the final model's settings under the param
    names the capability's training run logs, e.g. ``model.learning_rate``, so ``experiment compare``
    puts a tune run's settings on the same rows as a training run's), ``check_data()`` (raises
    what every trial would refuse from the data and settings alone, e.g. a book too short for the
    folds; called before the study and the MLflow run are made).
    """

    name: str
    direction: str
    metric: str
    n_folds: int

    def space(self, trial: Any) -> dict[str, Any]: ...

    def score_fold(self, params: dict[str, Any], fold: int) -> float: ...

    def fit_final(self, params: dict[str, Any]) -> tuple[Any, dict[str, float]]: ...


# --------------------------------------------------------------------------- trial budgets


def split_trials(n_trials: int, workers: int) -> list[int]:
    """Trial budgets per worker that sum to exactly ``n_trials``; no worker gets zero."""
    if n_trials < 1:
        raise ConfigError(f"--trials must be at least 1; got {n_trials}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1; got {workers}")
    workers = min(workers, n_trials)
    base, extra = divmod(n_trials, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


# --------------------------------------------------------------------------- objective


def _objective(target: TuningTarget, parent_run_id: str | None) -> Callable[[Any], float]:
    import optuna

    from training import tracking

    def objective(trial: Any) -> float:
        trial.set_user_attr("pid", os.getpid())
        try:
            # in the try: a search space that raises is said too (it was "no error recorded (the worker died?)")
            params = dict(target.space(trial))
            trial.set_user_attr("params", params)
            return _trial(trial, params)
        except optuna.TrialPruned:
            raise
        except Exception as e:  # kept on the trial: the study says why when no trial completes
            trial.set_user_attr("error", hide_url_passwords(f"{type(e).__name__}: {e}")[:500])
            raise

    def _trial(trial: Any, params: dict) -> float:
        scores: list[float] = []
        pruned = False
        with tracking.training_run(
            target.name,
            run_name=f"{trial.study.study_name}-trial-{trial.number}",
            parent_run_id=parent_run_id,
            tags={"optuna.study": trial.study.study_name, "optuna.trial": trial.number},
        ) as run:
            run.log_params(params)
            for fold in range(target.n_folds):
                s = float(target.score_fold(params, fold))
                scores.append(s)
                run.log_metrics({f"fold_{target.metric}": s}, step=fold)
                trial.report(sum(scores) / len(scores), step=fold)
                if trial.should_prune():
                    pruned = True
                    break
            value = sum(scores) / len(scores)
            run.log_metrics({target.metric: value, "folds_scored": len(scores)})
            run.set_tags({"optuna.state": "PRUNED" if pruned else "COMPLETE"})
        trial.set_user_attr("fold_scores", scores)
        if pruned:
            raise optuna.TrialPruned(f"pruned after fold {len(scores) - 1}")
        return value

    return objective


class _NoInterruptTraceback:
    """Logging filter: Optuna logs a trial stopped by Ctrl-C / SIGTERM with a full traceback; keep its
    one-line message (the trial is marked FAILED and ``--resume`` continues the study)."""

    def filter(self, record: Any) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, KeyboardInterrupt):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_interrupts() -> None:
    import logging

    for h in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoInterruptTraceback) for f in h.filters):
            h.addFilter(_NoInterruptTraceback())


def run_worker(
    target: TuningTarget,
    *,
    study_name: str,
    storage: str | None,
    n_trials: int,
    seed: int,
    parent_run_id: str | None,
    settings: TuningSettings | None = None,
    watch_parent: bool = False,
) -> int:
    """Run ``n_trials`` trials of an existing (or new) study in this process; returns how many ran.

    ``watch_parent`` (worker processes of ``_spawn_workers``): stop when the coordinator is gone,
    even one killed with SIGKILL, which cannot stop its workers itself (``exit_with_parent``)."""
    import optuna

    if watch_parent:
        exit_with_parent()
    s = settings or TuningSettings()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _quiet_interrupts()
    st = make_storage(storage, heartbeat_interval=s.heartbeat_interval, grace_period=s.grace_period)
    study = _study(target, st, study_name, seed, s.n_startup_trials)
    before = len(study.trials)
    study.optimize(_objective(target, parent_run_id), n_trials=n_trials, catch=(Exception,), gc_after_trial=False)
    return len(study.trials) - before


def _no_unused_journal(run: Callable[..., StudyResult]) -> Callable[..., StudyResult]:
    """``run_study`` that leaves no journal file behind when it fails before the study's first trial (an
    MLflow store that cannot be opened, a refusal after the storage was opened): only one it made itself
    and that holds its study alone, without trials; the default's folder too when it made that."""
    import functools

    @functools.wraps(run)
    def wrapped(target: TuningTarget, **kwargs: Any) -> StudyResult:
        made = new_journal(kwargs.get("storage"))
        try:
            return run(target, **kwargs)
        except BaseException:
            drop_unused_journal(made, kwargs["study_name"])
            raise

    return wrapped


@_no_unused_journal
def run_study(
    target: TuningTarget,
    *,
    n_trials: int,
    study_name: str,
    seed: int,
    storage: str | None = None,
    workers: int = 1,
    worker_argv: Sequence[str] | None = None,
    settings: TuningSettings | None = None,
    config: Any = None,
    book: Any = None,
    register: bool = True,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> StudyResult:
    """Tune ``target`` with ``n_trials`` trials and register the retrained best as ``challenger``.

    With ``workers > 1`` the trials run in ``workers`` subprocesses started as
    ``worker_argv + [--worker --study-name .. --storage .. --trials k --seed s+i
    --parent-run-id ..]`` (the CLI passes ``dealerml tune <name> --config FILE``).
    Everything is recorded under one parent MLflow run in ``dealerml-<target.name>``.

    A study that already has trials is refused unless ``resume``: then trials the interrupted
    run left RUNNING are marked FAILED (nothing else may be working on the study), and new
    trials run until the study holds ``n_trials`` finished (complete or pruned) ones; the best
    is chosen among all of them, the earlier ones included.
    """
    import optuna

    from training import tracking

    # what the target refuses from its data and settings alone (a book too short for the folds)
    # before the study and the MLflow run are made: a refusal leaves neither behind
    check = getattr(target, "check_data", None)
    if callable(check):
        check()
    s = settings or TuningSettings()
    budgets = split_trials(n_trials, workers)
    if len(budgets) > 1 and worker_argv is None:
        raise ConfigError("workers > 1 needs worker_argv (the command that starts one worker)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = make_storage(storage, heartbeat_interval=s.heartbeat_interval, grace_period=s.grace_period)
    made = False
    if not resume:  # made here, atomically: a run that finds it made already is not alone on it
        try:
            study = _study(target, st, study_name, seed, s.n_startup_trials, load_if_exists=False)
            made = True
        except optuna.exceptions.DuplicatedStudyError:
            pass
    if not made:
        study = _study(target, st, study_name, seed, s.n_startup_trials)
    already = 0
    run_seed = seed
    _refuse_study_state(study, study_name, storage, st, resume=resume, n_trials=n_trials)  # as check_study
    identity = study_identity(target, book)
    refuse_other_identity(study, identity, study_name, storage)  # refused before anything is written to the study
    _claim(study, study_name, storage, resume=resume, settle=not made)
    record_identity(study, identity, study_name, log)
    if study.trials:
        abandoned = _fail_abandoned(study, st)
        done0, pruned0, failed0 = _counts(study)
        already = done0 + pruned0
        # a fresh sampler seed, so the resumed run does not replay the first run's random start
        run_seed = seed + len(study.trials)
        todo = max(n_trials - already, 0)
        log(f"resuming study {study_name!r}: {already} of {n_trials} trial(s) already finished "
            f"({done0} complete, {pruned0} pruned, {failed0} failed"
            + (f"; of them {abandoned} left running by the interrupted run marked failed" if abandoned else "")
            + (f"); running {todo} more" if todo else "); none left to run, choosing the best of them"))
    remaining = max(n_trials - already, 0)
    budgets = split_trials(remaining, workers) if remaining else []
    if len(budgets) > 1 and worker_argv is None:
        raise ConfigError("workers > 1 needs worker_argv (the command that starts one worker)")
    with tracking.training_run(
        target.name,
        config=config,
        book=book,
        seed=seed,
        run_name=f"tune-{study_name}" + ("-resumed" if already else ""),
        tags={"optuna.study": study_name, "optuna.storage": describe_storage(storage), "dealerml.step": "tune"},
    ) as parent:
        parent.log_params({"tune.n_trials": n_trials, "tune.workers": max(len(budgets), 1), "tune.seed": seed,
                           "tune.direction": target.direction, "tune.metric": target.metric,
                           "tune.n_folds": target.n_folds, "tune.resumed_finished_trials": already})
        if len(budgets) == 1:
            run_worker(target, study_name=study_name, storage=storage, n_trials=remaining, seed=run_seed,
                       parent_run_id=parent.run_id, settings=s)
        elif len(budgets) > 1:
            pids = _spawn_workers(worker_argv or [], budgets, study_name=study_name, storage=storage, seed=run_seed,
                                  parent_run_id=parent.run_id, log=log)
            # the trials a worker that died left RUNNING: FAILED now that every worker has exited (a journal has
            # no heartbeat, so they stayed RUNNING, counted neither failed nor finished), then any other whose
            # heartbeat stopped (RDB)
            _fail_abandoned(study, st, pids=pids)
            _fail_stale(study, st, s.grace_period)
        # trials that raised (or whose worker died) count in Optuna's n_trials: the missing ones run once more
        # here, so the study holds the n_trials finished ones asked for; with one worker not when every trial
        # failed (the same error again)
        done, pruned, failed = _counts(study)
        missing = n_trials - done - pruned
        if budgets and missing > 0 and (len(budgets) > 1 or done + pruned > already):
            log(f"{failed} trial(s) failed or a worker died; running the {missing} missing trial(s) here"
                if len(budgets) > 1 else f"{failed} trial(s) failed; running {missing} more to finish {n_trials}")
            run_worker(target, study_name=study_name, storage=storage, n_trials=missing,
                       seed=run_seed + len(budgets), parent_run_id=parent.run_id, settings=s)
        result = report_best(target, study, parent, study_name=study_name, storage=storage, settings=s,
                             register=register, already=already, log=log)
    if parent.registered:
        result.registered_version = parent.registered[0][1]
    return result
