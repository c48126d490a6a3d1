"""A tuning study's state in its storage: made or opened, claimed by one coordinator, refused when in use.

A new run needs a study name without trials, ``--resume`` one with trials (:func:`check_study`, before
the data load, and ``run_study`` again); a coordinator records itself on the study (:func:`_claim`) so a
second ``dealerml tune`` on it is refused while the first runs. Also the trial counts and the clean-up
of trials left RUNNING by a worker or a run that stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from training.errors import ConfigError
from training.tuning_config import TuningSettings
from training.tuning_identity import refuse_other_identity
from training.tuning_runtime import describe_storage, journal_path, make_storage

if TYPE_CHECKING:
    from training.tuning import TuningTarget

__all__ = ["check_study", "study_missing_message", "study_exists_message", "OWNER_SETTLE_S"]

_OWNER_ATTR = "dealerml.owner"  # the coordinator running the study: {host, pid, start}
OWNER_SETTLE_S = 0.5  # how long a run that found the study already made waits before it reads the owner


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


def _owner_tags() -> dict[str, str]:
    from training.tracking import _process_tags

    return _process_tags()


def _other_live_owner(study: Any) -> dict[str, str] | None:
    """The owner recorded on ``study`` when it is another process of this host that is still running
    (a coordinator tuning it now), else None (none, this process, dead, or another host's: unknown)."""
    import socket

    from training._tracking_cleanup import _HOST_TAG, _PID_TAG, _dead_process

    owner = study.user_attrs.get(_OWNER_ATTR)
    if not isinstance(owner, dict) or owner.get(_HOST_TAG) != socket.gethostname():
        return None
    if owner.get(_PID_TAG) == str(os.getpid()) or _dead_process(owner) is not None or not owner.get(_PID_TAG):
        return None
    return owner


def _busy_message(study_name: str, storage: str | None, owner: Mapping[str, str], *, resume: bool) -> str:
    from training._tracking_cleanup import _PID_TAG

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
                settings: TuningSettings | None = None, identity: dict[str, str] | None = None) -> None:
    """Refuse a bad storage, a study name already in use (without ``resume``) or an unknown one
    (with ``resume``) before the data are loaded (the same checks ``run_study`` makes); with ``identity``
    (the capability's ``config_identity``: what the config alone says a study's trials are scored on), a
    study whose trials were scored on other settings, naming each, as ``run_study`` would after the load."""
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
    if study is not None and identity:
        refuse_other_identity(study, identity, study_name, storage)
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


def _fail_abandoned(study: Any, storage: Any, pids: Collection[int] | None = None) -> int:
    """Mark the RUNNING trials of an interrupted run FAILED (``--resume``), or with ``pids`` those that the
    processes ``pids`` (worker processes that have exited) were running; returns how many."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if pids is None or t.user_attrs.get("pid") in pids:
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            n += 1
    return n

