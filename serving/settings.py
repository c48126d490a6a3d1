"""The ``serving:`` section of an experiment config (all keys optional).

::

    serving:
      models: [demand, churn, dealers]   # which champions this deployment loads
      churn_cutoff: 2024-07-01           # as-of date of the served churn scores
      dealers_cutoff: 2024-07-01         # as-of date of the served dealer ranking
      alerts_target: data/dealerml.duckdb  # where `dealerml alerts` writes (file or SQLAlchemy URL)

Cutoffs default to the day after the last order in the book (features read rows before it).
``$DEALERML_SERVE_MODELS`` overrides ``models``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from training.errors import ConfigError

__all__ = ["ServingSettings", "serving_settings", "alerts_target"]


class ServingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[Literal["demand", "churn", "dealers"]] | None = None
    churn_cutoff: dt.date | None = None
    dealers_cutoff: dt.date | None = None
    alerts_target: str | None = None


def serving_settings(cfg: Any) -> ServingSettings:
    """Validate ``cfg.serving``; ConfigError listing every bad key and value at once, each under
    its full key path (an unknown key says which was meant), as the other sections do."""
    section = dict(getattr(cfg, "serving", None) or {})
    try:
        return ServingSettings(**section)
    except ValidationError as exc:  # every bad key at once (training.config.section_errors)
        from training.config import section_errors

        src = getattr(cfg, "config_path", None) or "config"
        raise ConfigError(section_errors(exc, "serving", ServingSettings, src=src)) from None


def alerts_target(cfg: Any) -> str:
    """Where ``dealerml alerts`` writes and ``/churn_alerts`` reads the alerts table:
    ``serving.alerts_target``, else ``$DEALERML_HOME/dealerml.duckdb`` (one rule for both)."""
    from training import paths

    return str(serving_settings(cfg).alerts_target or paths.scores_db())
