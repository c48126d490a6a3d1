"""Reading the model registry for the loader: the champion version of each served model, the
champion's estimator, and what ``/model_info`` shows of it (version, alias, run id, training window,
backtest metrics, the package versions it was trained with).

Every read goes through ``training.tracking`` (the one MLflow adapter). Used by
:mod:`serving.loader`, which re-exports these names and calls ``resolve_champion`` /
``registry_champions`` through its own namespace (where the tests patch them), and by
``dealerml serve``, which imports them from ``serving.loader``.
"""

from __future__ import annotations

import logging
from typing import Any

from training.errors import ConfigError

logger = logging.getLogger("dealerml.serving.loader")


ALIAS = "champion"


# ----------------------------------------------------------------- champions
def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


def _describe_info(info: Any) -> dict[str, Any]:
    """Version, run id, training window and backtest metrics from a ModelInfo (duck-typed)."""
    window = _get(info, "training_window", default=None) or {}
    if not isinstance(window, dict):
        window = {"start": str(window[0]), "end": str(window[1])} if window else {}
    if not window:
        start = _get(info, "train_start", "data_start")
        end = _get(info, "train_end", "data_end", "cutoff")
        window = {"start": start, "end": end}
    metrics = _get(info, "backtest_metrics", "metrics", default=None) or {}
    clean: dict[str, float] = {}

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
            return
        try:
            f = float(obj)
        except (TypeError, ValueError):
            return
        if f == f and abs(f) != float("inf"):
            clean[prefix] = f

    walk("", dict(metrics))
    return {
        "version": None if _get(info, "version") is None else str(_get(info, "version")),
        "alias": _get(info, "alias", default=ALIAS),
        "run_id": _get(info, "run_id"),
        "training_window": {k: _plain(v) for k, v in window.items()},
        "backtest_metrics": clean,
    }


def resolve_champion(name: str) -> tuple[Any, dict[str, Any]]:
    """Load the ``champion`` of registered model ``name``; returns (estimator, description).

    Uses ``training.tracking.load_model`` (the one MLflow adapter). The version is resolved
    before the artifact is read, so a corrupt artifact is reported with its version.
    """
    from training import tracking

    desc: dict[str, Any] = {"version": None}
    if hasattr(tracking, "model_info"):
        try:
            desc = _describe_info(tracking.model_info(name))
        except Exception as err:  # noqa: BLE001 - reported with the load error below
            logger.debug("model_info(%s) failed: %s", name, err)
    try:
        estimator, info = tracking.load_model(name, alias=ALIAS)
    except Exception as err:
        err.dealerml_version = desc.get("version")  # type: ignore[attr-defined]
        raise
    full = _describe_info(info)
    for k, v in desc.items():
        if not full.get(k):
            full[k] = v
    environment = getattr(info, "environment", None)  # the package versions it was trained with vs these
    full["environment"] = environment() if callable(environment) else None
    return estimator, full


def registry_champions(names: list[str]) -> dict[str, str | None]:
    """The champion version of each name in the registry (None: none); ConfigError naming the
    store and where its address came from when it is missing or cannot be read."""
    from training import tracking

    missing = tracking.local_store_missing()
    if missing is not None:
        raise ConfigError(
            f"there is no MLflow store at {missing} ({tracking.store_source()}); set DEALERML_HOME to the folder the "
            "models were trained in (or MLFLOW_TRACKING_URI to the registry) and start the service again; nothing was created"
        )
    try:
        return tracking.alias_versions(names, ALIAS)
    except ConfigError as err:
        raise ConfigError(f"{err} ({tracking.store_source()}); fix it and start the service again") from None


def _plain(v: Any) -> Any:
    """A JSON value for /model_info: numbers, text and lists stay what they are (a list of
    training cutoffs stays a list), anything else (timestamps ...) becomes text."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return str(v)
