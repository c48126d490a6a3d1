"""What a run records about itself, for :mod:`training.tracking`: metric keys and lineage.

``metric_key`` (``auc__segment.retail``: the key scheme of the tracking module's doc) with
``_flatten`` / ``_clean_key``; the code and environment a run ran with (``_git_state``,
``_environment_tags``, ``_pip_requirements`` of ``_PIP_PACKAGES``, ``_user``); and
``_log_lineage``, which logs a run's config file, resolved config, seed, data fingerprint and
quality report when ``training_run`` starts it.

Split from :mod:`training.tracking` to keep each module under ~500 lines; its names are
re-exported there (import them from :mod:`training.tracking`). Used by ``training_run`` and
``TrainingRun`` there and by :mod:`training.registry` (``_user``); :mod:`training.model_env` reads
back what ``_pip_requirements`` writes. It does not import mlflow, and imports
:mod:`training.tracking` only for type checking.
"""

from __future__ import annotations

import getpass
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training._tracking_models import _jsonable
from training.errors import ConfigError
from training.model_env import running_version

if TYPE_CHECKING:
    from training.tracking import TrainingRun


_PIP_PACKAGES = (
    "mlflow",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
    "scikit-learn",
    "lightgbm",
    "statsforecast",
    "utilsforecast",
    "hierarchicalforecast",
    "pydantic",
    "pyyaml",
    "duckdb",
)
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _clean_key(key: str) -> str:
    return _BAD_KEY_CHARS.sub("_", key)


def metric_key(metric: str, slice: Mapping[str, Any] | str | None = None) -> str:  # noqa: A002
    """The MLflow key for ``metric`` on ``slice``: ``auc__segment.retail`` (see module doc).

    ``slice`` is a mapping ``{dimension: value}`` or a string ``"segment=retail"``.
    """
    key = _clean_key(metric)
    if slice is None:
        return key
    if isinstance(slice, str):
        if "=" not in slice:
            raise ValueError(f"slice must look like 'dimension=value'; got {slice!r}")
        dim, val = slice.split("=", 1)
        slice = {dim: val}
    for dim, val in slice.items():
        key += f"__{_clean_key(str(dim))}.{_clean_key(str(val))}"
    return key


def _git_state() -> tuple[str, bool]:
    """(commit sha, dirty) of the repository holding this code; ("unknown", False) outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown", False
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def _pip_requirements() -> list[str]:
    """``name==version`` of the installed :data:`_PIP_PACKAGES` (what ``training.model_env`` reads back)."""
    return [f"{pkg}=={v}" for pkg in _PIP_PACKAGES if (v := running_version(pkg)) is not None]


def _environment_tags() -> dict[str, str]:
    """``dealerml.env.<package>``: the Python and package versions (:data:`_PIP_PACKAGES`) a run ran with,
    on every run: only a logged model's ``requirements.txt`` said them, so a tune trial, a promotion's
    evidence or a run compared with another could not be told to have run on other versions."""
    import platform

    return {"dealerml.env.python": platform.python_version(),
            **{f"dealerml.env.{pkg}": v for pkg in _PIP_PACKAGES if (v := running_version(pkg)) is not None}}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _log_lineage(
    run: TrainingRun,
    kind: str,
    *,
    config: Any,
    config_path: str | Path | None,
    book: Any,
    seed: int | None,
    fingerprint: Mapping[str, Any] | None,
) -> None:
    if config_path is None and config is not None:
        config_path = getattr(config, "config_path", None)
    if config_path is not None:
        p = Path(config_path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        run.log_artifact(p, "config")
        run.set_tags({"dealerml.config_file": str(p)})
    params: dict[str, Any] = {}
    if config is not None:
        dump = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
        run.log_dict(dump, "config/resolved.json")
        if seed is None:
            seed = dump.get("seed")
        if dump.get("name"):
            params["config_name"] = dump["name"]
        section = dump.get(kind)
        if isinstance(section, Mapping) and section:
            params.update({f"config.{kind}.{k}": v for k, v in _flatten(section).items()})
    if seed is not None:
        params["seed"] = seed
    if params:
        run.log_params(params)
    fp = fingerprint if fingerprint is not None else getattr(book, "fingerprint", None)
    if fp is not None:
        fp = _jsonable(dict(fp))
        run.log_dict(fp, "data/fingerprint.json")
        run.set_tags({f"data.{k}": v for k, v in _flatten(fp).items()})
    report = getattr(book, "report", None)
    if report is not None and hasattr(report, "to_dict"):
        run.log_dict(report.to_dict(), "data/quality_report.json")
