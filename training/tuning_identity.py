"""What a tuning study's trials are scored on (its identity), recorded with the study and checked on ``--resume``.

:func:`study_identity` lists the model, its metric, the target's own settings and data fingerprints,
the folds, the search space and the fixed settings; ``run_study`` records it with a new study
(:func:`record_identity`) and refuses a ``--resume`` on other values naming each
(:func:`refuse_other_identity`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from training.errors import ConfigError
from training.tuning_runtime import describe_storage

if TYPE_CHECKING:
    from training.tuning import TuningTarget

__all__ = ["study_identity", "settings_identity", "setting_text", "cancellation_keys", "refuse_other_identity", "record_identity"]

_IDENTITY_ATTR = "dealerml.identity"  # what its trials were scored on (study_identity)


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
    folds = [str(w) for w in (getattr(target, "fold_windows", None) or [])]
    data = {"folds": " | ".join(folds) if folds else f"{target.n_folds} fold(s)"}
    sha = ((getattr(book, "fingerprint", None) or {}).get("order_lines_sha256") if book is not None else None)
    if sha:
        data["order lines sha256"] = str(sha)
    # the target's own settings that change a trial's score (e.g. demand.horizon, churn.n_train_cutoffs)
    # and fingerprints of the data it scores, under their config keys (not the whole config: serving:
    # or alerts: settings change no score and must not block a resume)
    return _identity(target.name, target.metric, target.direction, getattr(target, "identity", None) or {},
                     target.space, getattr(target, "default_params", None), data)


def settings_identity(name: str, metric: str, direction: str, own: Mapping[str, Any],
                      space: Callable[[Any], Any], default_params: Mapping[str, Any] | None) -> dict[str, str]:
    """The part of :func:`study_identity` a config says before the data are loaded: the model, its metric, the
    target's settings ``own`` (its ``identity`` without the data's fingerprints), the search space and the
    fixed settings; not the folds (their dates are the data's) nor any sha256. What a capability's
    ``config_identity(cfg)`` returns, so ``check_study`` refuses a ``--resume`` on other settings before
    the data load (keys it lacks are checked by ``run_study`` once the data are loaded)."""
    return _identity(name, metric, direction, own, space, default_params, {})


def _identity(name: str, metric: str, direction: str, own: Mapping[str, Any], space: Callable[[Any], Any],
              default_params: Mapping[str, Any] | None, data: dict[str, str]) -> dict[str, str]:
    ident = {"model": name, "metric": f"{metric} ({direction})"}
    ident.update({str(k): setting_text(v) for k, v in dict(own).items()})
    ident.update(data)
    rec = _SpaceRecorder()
    try:
        space(rec)
        ident["search space"] = "; ".join(f"{k} {v}" for k, v in sorted(rec.space.items()))
    except Exception:  # noqa: BLE001 - a space that needs a real trial: not compared
        pass
    fixed = {k: v for k, v in (default_params or {}).items()
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


def refuse_other_identity(study: Any, identity: dict[str, str], study_name: str, storage: str | None) -> None:
    """ConfigError naming each key of ``identity`` whose value differs from the one ``study`` recorded, when it
    has trials (keys ``identity`` lacks, or the study did not record, are not compared)."""
    if study.trials:
        differ = _identity_differences(study.user_attrs.get(_IDENTITY_ATTR), identity)
        if differ:
            raise ConfigError(_identity_refusal(study_name, storage, differ))


def record_identity(study: Any, identity: dict[str, str], study_name: str, log: Callable[[str], None]) -> None:
    """Record ``identity`` with a study without trials; with one made before some of its keys were recorded,
    say so (``log``) and record them for later runs (the study's own values kept)."""
    had = study.user_attrs.get(_IDENTITY_ATTR)
    if not study.trials:
        study.set_user_attr(_IDENTITY_ATTR, identity)
    else:
        unchecked = _identity_unchecked(had, identity)
        if unchecked:  # a study made before these keys were recorded: said, then recorded for later runs
            log(_unchecked_note(study_name, unchecked))
            study.set_user_attr(_IDENTITY_ATTR, {**identity, **(had if isinstance(had, dict) else {})})
