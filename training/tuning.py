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
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.errors import ConfigError, DealermlError, hide_url_passwords, refuse_at_in_credentials
from training.tuning_runtime import (  # the storage and worker-process half of this module; re-exported
    _spawn_workers,
    default_storage_path,
    describe_storage,
    drop_unused_journal,
    exit_with_parent,
    journal_path,
    make_storage,
    new_journal,
    worker_command,
)

__all__ = [
    "TuningTarget",
    "TuningSettings",
    "tuning_settings",
    "StudyResult",
    "run_study",
    "run_worker",
    "make_storage",
    "split_trials",
    "untuned_score",
    "untuned_scores",
    "target_options",
    "default_storage_path",
    "describe_storage",
    "exit_with_parent",
    "worker_command",
    "check_study",
    "setting_text",
    "cancellation_keys",
]


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


class TuningSettings(BaseModel):
    """The ``tuning:`` section of an experiment config (all optional; CLI flags win)."""

    model_config = ConfigDict(extra="forbid")

    trials: int = Field(20, ge=1, le=10_000)
    workers: int = Field(1, ge=1, le=64)
    storage: str | None = None
    study_name: str | None = None
    seed: int | None = None
    n_startup_trials: int = Field(5, ge=0)
    heartbeat_interval: int = Field(10, ge=1, description="seconds between worker heartbeats (RDB storage)")
    grace_period: int = Field(30, ge=2, description="seconds without heartbeat before a RUNNING trial is FAILED")
    register_best: bool = True
    target: dict[str, Any] = Field(default_factory=dict)
    """Free-form settings passed to the capability's target (e.g. its search-space bounds)."""

    @field_validator("study_name")
    @classmethod
    def _study_name(cls, v: str | None) -> str | None:
        # "" fell back to the default name, " " named a study of spaces
        if v is not None and not v.strip():
            raise ValueError(f"got {v!r}; expected a study name (e.g. nightly-churn), or leave the key out for "
                             "<config name>-<model>-<time>")
        return v

    @field_validator("storage")
    @classmethod
    def _storage_url(cls, v: str | None) -> str | None:
        # a password 'pa@ss': SQLAlchemy reads host 'ss@db', named (in clear) by the connect error
        return refuse_at_in_credentials(v, "database URL")


def check_study_name(name: str | None, option: str = "--study-name") -> None:
    """ConfigError for a study name that is empty or only spaces: ``--study-name ""`` fell back to the
    default name without a word, and ``" "`` started a study named by spaces."""
    if name is not None and not name.strip():
        raise ConfigError(f"{option} {name!r}: expected a study name (e.g. nightly-churn), not an empty or blank "
                          "one; leave out --study-name for <config name>-<model>-<time>")


def tuning_settings(cfg: Any, *, src: Any = None) -> TuningSettings:
    """Validate ``cfg.tuning``; ConfigError listing every bad key and value at once under its full
    key path, led by ``src`` (default: the config file), as the other sections do."""
    try:
        return TuningSettings.model_validate(getattr(cfg, "tuning", None) or {})
    except ValidationError as err:  # every bad key at once (training.config.section_errors)
        from training.config import section_errors

        src = src or getattr(cfg, "config_path", None) or getattr(cfg, "name", None) or "config"
        raise ConfigError(section_errors(err, "tuning", TuningSettings, src=src)) from None


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


def target_options(cfg: Any, name: str, allowed: Sequence[str]) -> dict[str, Any]:
    """The ``tuning.target`` settings for capability ``name``, checked against ``allowed``.

    ``tuning.target`` holds the settings directly (``{n_folds: 3}``) or per capability
    (``{churn: {n_folds: 3}, demand: {...}}``); both may be mixed, the capability's own mapping
    winning. Unknown keys raise one ConfigError naming every one as ``tuning.target[.<name>].<key>``
    with the key it most resembles and the allowed keys (they used to be dropped silently).
    """
    from training.config import close_keys

    raw = (getattr(cfg, "tuning", None) or {}).get("target") or {}
    where = getattr(cfg, "config_path", None) or getattr(cfg, "name", "config")
    allowed_s = ", ".join(sorted(allowed))
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: tuning.target must be a mapping such as {{n_folds: 2}}; got {raw!r}")
    caps = set(TUNABLE)
    flat = {k: v for k, v in raw.items() if k not in caps}
    own = raw.get(name) or {}
    if not isinstance(own, dict):
        raise ConfigError(f"{where}: tuning.target.{name} must be a mapping such as {{n_folds: 2}}; got {own!r}")
    lines = []  # every unknown key, flat and per capability, in one error
    for prefix, opts in (("tuning.target", flat), (f"tuning.target.{name}", own)):
        for k in sorted(str(k) for k in opts if k not in allowed):
            close = close_keys(k, allowed)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            lines.append(f"  key '{prefix}.{k}': unknown key for the {name} tuning target; {hint}allowed keys: "
                         f"{allowed_s}" + (f" (or per capability under tuning.target.{'/'.join(sorted(caps))})"
                                           if prefix == "tuning.target" else ""))
    if lines:
        raise ConfigError("\n".join([f"{where}: invalid 'tuning' section", *lines]))
    return {**flat, **own}


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
        params = dict(target.space(trial))
        trial.set_user_attr("params", params)
        trial.set_user_attr("pid", os.getpid())
        try:
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


def _no_trial_message(study: Any, study_name: str, pruned: int, failed: int) -> str:
    """Why no trial completed: the failed trials' errors (each distinct one once, with its trials)."""
    errors: dict[str, list[int]] = {}
    for t in study.trials:
        if t.state.name == "FAIL":
            errors.setdefault(t.user_attrs.get("error", "no error recorded (the worker died?)"), []).append(t.number)
    why = "; ".join(f"trial(s) {', '.join(map(str, nums[:5]))}{' ...' if len(nums) > 5 else ''}: {err}"
                    for err, nums in list(errors.items())[:3])
    return f"study {study_name}: no trial completed ({pruned} pruned, {failed} failed){': ' + why if why else ''}"


def _study(target: TuningTarget, storage: Any, study_name: str, seed: int, n_startup_trials: int, *,
           load_if_exists: bool = True) -> Any:
    import optuna

    if target.direction not in ("maximize", "minimize"):
        raise ConfigError(f"tuning target {target.name}: direction must be maximize or minimize; got {target.direction!r}")
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=target.direction,
        load_if_exists=load_if_exists,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(n_startup_trials, 1)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=0),
    )


_OWNER_ATTR = "dealerml.owner"  # the coordinator running the study: {host, pid, start}
_IDENTITY_ATTR = "dealerml.identity"  # what its trials were scored on (study_identity)
OWNER_SETTLE_S = 0.5  # how long a run that found the study already made waits before it reads the owner


class _SpaceRecorder:
    """A stand-in trial that records a search space's ``suggest_*`` calls (name, kind, range): what a
    study's trials were drawn from, without drawing (each returns its lowest value)."""

    def __init__(self) -> None:
        self.space: dict[str, str] = {}

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        self.space[name] = f"int [{low}, {high}]" + (f" step {step}" if step != 1 else "") + (" log" if log else "")
        return low

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> float:
        self.space[name] = f"float [{low:g}, {high:g}]" + (f" step {step:g}" if step else "") + (" log" if log else "")
        return low

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.space[name] = f"one of {list(choices)}"
        return choices[0]


def study_identity(target: TuningTarget, book: Any = None) -> dict[str, str]:
    """What a study's trials are scored on, as the study records it (``dealerml.identity``): the model,
    its metric, the target's ``identity`` (its settings that change a trial's score under their config
    keys, e.g. ``demand.top_n``, and fingerprints of the data it scores, e.g. ``demand series sha256``),
    the folds (their cutoffs and windows), the order lines (sha256), the search space and the fixed
    settings every trial is fitted with. ``--resume`` (or a second run) with another of any of these
    would mix trials scored on different things and pick the best among them. A study made before a key
    was recorded resumes with a note naming the keys that could not be checked."""
    ident = {"model": target.name, "metric": f"{target.metric} ({target.direction})"}
    # the target's own settings that change a trial's score (e.g. demand.horizon, churn.n_train_cutoffs)
    # and fingerprints of the data it scores, under their config keys (not the whole config: serving:
    # or alerts: settings change no score and must not block a resume)
    own = getattr(target, "identity", None) or {}
    ident.update({str(k): setting_text(v) for k, v in dict(own).items()})
    folds = [str(w) for w in (getattr(target, "fold_windows", None) or [])]
    ident["folds"] = " | ".join(folds) if folds else f"{target.n_folds} fold(s)"
    sha = ((getattr(book, "fingerprint", None) or {}).get("order_lines_sha256") if book is not None else None)
    if sha:
        ident["order lines sha256"] = str(sha)
    rec = _SpaceRecorder()
    try:
        target.space(rec)
        ident["search space"] = "; ".join(f"{k} {v}" for k, v in sorted(rec.space.items()))
    except Exception:  # noqa: BLE001 - a space that needs a real trial: not compared
        pass
    fixed = {k: v for k, v in (getattr(target, "default_params", None) or {}).items()
             if k not in rec.space and k not in ("random_state", "num_threads", "seed")
             and (v is None or isinstance(v, str | int | float | bool))}
    if fixed:
        ident["fixed settings"] = ", ".join(f"{k}={v}" for k, v in sorted(fixed.items()))
    return ident


def setting_text(v: Any) -> str:
    """A setting's value as a study identity records it (and a refusal shows it): YAML-like."""
    if v is None:
        return "not set"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(setting_text(x) for x in v) + "]"
    return str(v)


def cancellation_keys(cfg: Any) -> dict[str, Any]:
    """``data.order_lines``' cancellation settings for a target's ``identity``: the window only where a
    prefix makes cancellation lines net (without one it changes nothing)."""
    ol = getattr(getattr(cfg, "data", None), "order_lines", None)
    prefix = getattr(ol, "cancellation_prefix", None)
    out: dict[str, Any] = {"data.order_lines.cancellation_prefix": prefix}
    if prefix:
        out["data.order_lines.cancellation_window_days"] = ol.cancellation_window_days
    return out


def _identity_differences(had: Any, now: dict[str, str]) -> list[str]:
    if not isinstance(had, dict):
        return []
    differ = [f"{k}: {had[k]} (this run: {now[k]})" for k in now if k in had and str(had[k]) != now[k]]
    return differ[:1] if differ and differ[0].startswith("model:") else differ  # another model: all else follows


def _identity_unchecked(had: Any, now: dict[str, str]) -> list[str]:
    """The keys of this run's identity the study did not record (a study made before dealerml recorded
    them): its earlier trials cannot be checked against them."""
    return [k for k in now if not isinstance(had, dict) or k not in had]


def _identity_refusal(study_name: str, storage: str | None, differ: list[str]) -> str:
    data = any(d.split(":", 1)[0].endswith("sha256") for d in differ)
    return (f"--resume: study {study_name!r} in {describe_storage(storage)} was tuned on other settings, so its "
            f"trials are not comparable with this run's: {'; '.join(differ)}; resume it with the config "
            + ("and the data " if data else "") + "it was made with, or choose a new --study-name")


def _unchecked_note(study_name: str, keys: list[str]) -> str:
    return (f"note: study {study_name!r} was made before dealerml recorded {', '.join(keys)} with its trials, so this "
            "run could not check that its earlier trials were scored on the same; they are recorded now (this run's "
            "values) and checked by later runs. If any of them changed since the study was made, its earlier trials "
            "are not comparable with this run's: stop and choose a new --study-name")


def _owner_tags() -> dict[str, str]:
    from training.tracking import _process_tags

    return _process_tags()


def _other_live_owner(study: Any) -> dict[str, str] | None:
    """The owner recorded on ``study`` when it is another process of this host that is still running
    (a coordinator tuning it now), else None (none, this process, dead, or another host's: unknown)."""
    import socket

    from training._tracking_store import _HOST_TAG, _PID_TAG, _dead_process

    owner = study.user_attrs.get(_OWNER_ATTR)
    if not isinstance(owner, dict) or owner.get(_HOST_TAG) != socket.gethostname():
        return None
    if owner.get(_PID_TAG) == str(os.getpid()) or _dead_process(owner) is not None or not owner.get(_PID_TAG):
        return None
    return owner


def _busy_message(study_name: str, storage: str | None, owner: Mapping[str, str], *, resume: bool) -> str:
    from training._tracking_store import _PID_TAG

    then = ("wait for it to finish, then add --resume to run more of it" if resume else
            "choose another --study-name, or wait for it to finish and add --resume to run more of it")
    return (f"study {study_name!r} in {describe_storage(storage)} is being tuned now by another dealerml tune "
            f"(pid {owner.get(_PID_TAG)}); two runs would share its trials (each counting the other's and "
            f"registering the same best): {then}")


def _claim(study: Any, study_name: str, storage: str | None, *, resume: bool, settle: bool) -> None:
    """Record this process as the study's coordinator, refusing when another live one is (``settle``: the
    study was not made by this run, so another run may have made or claimed it a moment ago: wait
    :data:`OWNER_SETTLE_S` before reading, and again after writing, so of two runs only one goes on)."""
    import optuna

    def reread() -> Any:
        return optuna.load_study(study_name=study_name, storage=study._storage)

    if settle:
        time.sleep(OWNER_SETTLE_S)
        study = reread()
    owner = _other_live_owner(study)
    if owner is not None:
        raise ConfigError(_busy_message(study_name, storage, owner, resume=resume))
    mine = _owner_tags()
    study.set_user_attr(_OWNER_ATTR, mine)
    if settle:
        time.sleep(OWNER_SETTLE_S)
        now = reread().user_attrs.get(_OWNER_ATTR)
        if now != mine and isinstance(now, dict):
            raise ConfigError(_busy_message(study_name, storage, now, resume=resume))


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


def _counts(study: Any) -> tuple[int, int, int]:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return (
        states.count(TrialState.COMPLETE),
        states.count(TrialState.PRUNED),
        states.count(TrialState.FAIL),
    )


def _fail_stale(study: Any, storage: Any, grace_period: int) -> None:
    """Mark trials whose worker stopped beating FAILED (RDB storage only)."""
    import optuna
    from optuna.trial import TrialState

    if not isinstance(storage, optuna.storages.RDBStorage):
        return
    deadline = time.monotonic() + grace_period + 5
    while any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False)):
        optuna.storages.fail_stale_trials(study)
        if time.monotonic() > deadline:
            break
        time.sleep(1)


def study_missing_message(study_name: str, storage: str | None, st: Any) -> str:
    """Why ``--resume`` of a study the storage does not hold is refused, naming the studies it holds."""
    try:
        import optuna

        names = sorted(s.study_name for s in optuna.get_all_study_summaries(st, include_best_trial=False)
                       if s.n_trials)
    except Exception:  # noqa: BLE001 - the list is a hint only
        names = []
    try:
        from training.config import close_keys

        close = close_keys(study_name, names)
    except Exception:  # noqa: BLE001
        close = []
    if close:
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
    elif len(names) <= 5:
        hint = f"studies with trials there: {', '.join(names)}" if names else "it holds no study with trials"
    else:
        hint = f"{len(names)} studies with trials there, none named like it"
    return (f"--resume: there is no study {study_name!r} with trials in {describe_storage(storage)} ({hint}); "
            "check --study-name and --storage, or leave out --resume to start a new study")


def study_exists_message(study: Any, study_name: str, storage: str | None, n_trials: int) -> str:
    """Why a new run on a study name that already has trials is refused, and what to type instead."""
    done, pruned, failed = _counts(study)
    finished = done + pruned
    more = (f"add --resume to continue it until it has {n_trials} finished trials" if finished < n_trials else
            f"add --resume with --trials above {finished} to run more of it (with --trials {n_trials} --resume it "
            "only re-registers its best)")
    return (f"study {study_name!r} already has {len(study.trials)} trials ({finished} finished, {failed} failed) in "
            f"{describe_storage(storage)}; choose a new --study-name, or {more}")


def check_study(study_name: str, storage: str | None, *, resume: bool, n_trials: int,
                settings: TuningSettings | None = None) -> None:
    """Refuse a bad storage, a study name already in use (without ``resume``) or an unknown one
    (with ``resume``) before the data are loaded (the same checks :func:`run_study` makes)."""
    import optuna

    s = settings or TuningSettings()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = journal_path(storage)
    if path is not None and not path.exists():
        # a journal not made yet holds no study; opening it here would create it (and the default's
        # folder), left empty behind a run the data load then refuses: run_study makes it
        _refuse_study_state(None, study_name, storage, None, resume=resume, n_trials=n_trials)
        return
    st = make_storage(storage, heartbeat_interval=s.heartbeat_interval, grace_period=s.grace_period)
    try:
        study = optuna.load_study(study_name=study_name, storage=st)
    except KeyError:  # no such study
        study = None
    _refuse_study_state(study, study_name, storage, st, resume=resume, n_trials=n_trials)
    owner = None if study is None else _other_live_owner(study)
    if owner is not None:  # another dealerml tune is running it: said before the data load
        raise ConfigError(_busy_message(study_name, storage, owner, resume=resume))


def _refuse_study_state(study: Any, study_name: str, storage: str | None, st: Any, *, resume: bool,
                        n_trials: int) -> None:
    """``--resume`` needs a study with trials (an unknown or misspelt name must not silently start a
    new study and register its best); a new run needs a name that has none."""
    has_trials = bool(study is not None and study.trials)
    if resume and not has_trials:
        raise ConfigError(study_missing_message(study_name, storage, st))
    if has_trials and not resume:
        raise ConfigError(study_exists_message(study, study_name, storage, n_trials))


def _fail_abandoned(study: Any, storage: Any) -> int:
    """Mark the RUNNING trials of an interrupted run FAILED (``--resume``); returns how many."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        n += 1
    return n


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
    had = study.user_attrs.get(_IDENTITY_ATTR)
    if study.trials:
        differ = _identity_differences(had, identity)
        if differ:  # refused before anything is written to the study
            raise ConfigError(_identity_refusal(study_name, storage, differ))
    _claim(study, study_name, storage, resume=resume, settle=not made)
    if not study.trials:
        study.set_user_attr(_IDENTITY_ATTR, identity)
    else:
        unchecked = _identity_unchecked(had, identity)
        if unchecked:  # a study made before these keys were recorded: said, then recorded for later runs
            log(_unchecked_note(study_name, unchecked))
            study.set_user_attr(_IDENTITY_ATTR, {**identity, **(had if isinstance(had, dict) else {})})
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
            _spawn_workers(worker_argv or [], budgets, study_name=study_name, storage=storage, seed=run_seed,
                           parent_run_id=parent.run_id, log=log)
            _fail_stale(study, st, s.grace_period)
            done, pruned, failed = _counts(study)
            missing = n_trials - done - pruned
            if missing > 0:
                log(f"{failed} trial(s) failed or a worker died; running the {missing} missing trial(s) here")
                run_worker(target, study_name=study_name, storage=storage, n_trials=missing,
                           seed=run_seed + len(budgets), parent_run_id=parent.run_id, settings=s)
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
            log(f"no trial beat the untuned configuration ({untuned:.6g} vs {best_value:.6g}); keeping it")
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
        version = None
        if register and s.register_best:
            meta = dict(getattr(target, "model_metadata", None) or {})
            meta.setdefault("backtest_metrics", dict(metrics))
            meta["tuning"] = {"study": study_name, "best_value": best_value, "untuned_value": untuned,
                              "folds": folds_desc}  # promote warns when it scores on one of these folds
            parent.log_model(estimator, input_example=getattr(target, "input_example", None), metadata=meta,
                             predict_method=getattr(target, "predict_method", None))
            parent.register(f"dealerml-{target.name}", alias="challenger")
    if parent.registered:
        version = parent.registered[0][1]
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
        registered_version=version,
        final_metrics={k: float(v) for k, v in metrics.items()},
        n_already_finished=already,
        fold_windows=folds_desc,
        latest_fold_baselines=baselines,
    )




TUNABLE: dict[str, str] = {"churn": "training.churn_tuning", "demand": "training.demand_tuning"}
Direction = Literal["maximize", "minimize"]
