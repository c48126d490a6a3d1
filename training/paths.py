"""Where dealerml keeps its local state (generated data, MLflow store, score tables).

Everything lives under one home directory: ``$DEALERML_HOME`` if set, else ``./data``
relative to the current working directory. Nothing is created on import; callers ask
for a path and create it when they write.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home", "synthetic_dir", "mlflow_uri", "scores_db"]


def home() -> Path:
    """The dealerml home directory (not created here)."""
    return Path(os.environ.get("DEALERML_HOME", "data")).resolve()


def synthetic_dir() -> Path:
    """Default folder of the generated synthetic dealer network."""
    return home() / "synthetic"


def mlflow_uri() -> str:
    """Tracking URI: ``$MLFLOW_TRACKING_URI`` if set, else a SQLite file in the home directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{home() / 'mlflow.db'}"


def scores_db() -> Path:
    """Default DuckDB file that holds batch scores and the churn alerts table."""
    return home() / "dealerml.duckdb"
