"""The ``tuning:`` section of an experiment config and the capability targets' ``tuning.target`` settings.

:class:`TuningSettings` validates the section (CLI flags win over it), :func:`target_options` reads a
capability's ``tuning.target`` keys; neither imports Optuna or MLflow (``dealerml data check`` and
``experiment run`` read them before any tuning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator

from training._config_numbers import NoBoolNumbers
from training.errors import ConfigError, refuse_at_in_credentials

__all__ = ["TuningSettings", "tuning_settings", "check_study_name", "target_options", "TUNABLE"]

TUNABLE: dict[str, str] = {"churn": "training.churn_tuning", "demand": "training.demand_tuning"}
"""The capabilities ``dealerml tune`` knows, and the module holding each one's target."""


class TuningSettings(NoBoolNumbers):
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
                             "<config name>-<model>-<time>-<suffix>")
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
                          "one; leave out --study-name for <config name>-<model>-<time>-<suffix>")


def default_study_name(config_name: str, capability: str) -> str:
    """``<config name>-<model>-<time>-<6 hex>``: the time to the second, plus a random suffix, so two tunes
    started in the same second (an experiment re-run, two shells) do not pick the same name and the
    second is not refused for a name its user never chose."""
    import secrets
    import time

    return f"{config_name}-{capability}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def tuning_settings(cfg: Any, *, src: Any = None) -> TuningSettings:
    """Validate ``cfg.tuning``; ConfigError listing every bad key and value at once under its full
    key path, led by ``src`` (default: the config file), as the other sections do."""
    try:
        return TuningSettings.model_validate(getattr(cfg, "tuning", None) or {})
    except ValidationError as err:  # every bad key at once (training.config.section_errors)
        from training.config import section_errors

        src = src or getattr(cfg, "config_path", None) or getattr(cfg, "name", None) or "config"
        raise ConfigError(section_errors(err, "tuning", TuningSettings, src=src)) from None


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
