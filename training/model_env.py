"""The package versions a registered model was trained with, against the ones running now.

Every model dealerml logs records the exact versions of the packages it depends on
(``training.tracking._pip_requirements``: ``lightgbm==4.7.0`` ... in the model's
``requirements.txt``). Its pickled LightGBM boosters, scikit-learn calibrators and statsforecast
models are read back by whatever is installed where it is loaded: another version may warn, give
other numbers or fail to load, and nothing said so. :func:`environment_check` compares the two;
the service logs it and shows it in ``/model_info`` (``environment``), and the CLI commands that
load a registered model print :func:`mismatch_note` on stderr (:func:`model_mismatch_note` for a loaded
model's ``ModelInfo``). Nothing is refused.

Shared by ``serving`` and the CLI (serving imports training, never the reverse).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["read_requirements", "running_version", "environment_check", "mismatch_text", "mismatch_note",
           "model_mismatch_note"]

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def read_requirements(path: str | Path) -> dict[str, str]:
    """``{package: version}`` of the ``name==version`` lines of a model's ``requirements.txt`` (other
    lines - ranges, options, comments - are left out), names in their PEP 503 form (``PyYAML`` ->
    ``pyyaml``); ``{}`` when the file does not exist."""
    from packaging.utils import canonicalize_name  # a dependency of mlflow and bentoml

    p = Path(path)
    if not p.is_file():
        return {}
    pins: dict[str, str] = {}
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _PIN.match(line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def running_version(package: str) -> str | None:
    """The installed version of ``package`` in this environment (None: not installed)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _same(a: str, b: str | None) -> bool:
    if b is None:
        return False
    from packaging.version import InvalidVersion, Version  # a dependency of mlflow and bentoml

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def environment_check(trained: Mapping[str, str],
                      running: Callable[[str], str | None] = running_version) -> dict[str, Any]:
    """``{"matches": bool | None, "mismatches": {package: {"trained": v, "running": v | None}}}``.

    ``matches`` is True when every recorded package runs in the version it was trained with, False
    when one differs (``running`` None: not installed), None when the model records no versions
    (logged by other code): then nothing can be said."""
    if not trained:
        return {"matches": None, "mismatches": {}}
    mismatches = {}
    for pkg, version in sorted(trained.items()):
        now = running(pkg)
        if not _same(version, now):
            mismatches[pkg] = {"trained": version, "running": now}
    return {"matches": not mismatches, "mismatches": mismatches}


def mismatch_text(check: Mapping[str, Any]) -> str:
    """``lightgbm 4.6.0 (running 4.7.0), scikit-learn 1.8.0 (not installed)`` from :func:`environment_check`."""
    parts = []
    for pkg, v in (check.get("mismatches") or {}).items():
        now = f"running {v['running']}" if v.get("running") else "not installed"
        parts.append(f"{pkg} {v['trained']} ({now})")
    return ", ".join(parts)


def mismatch_note(name: str, version: Any, check: Mapping[str, Any]) -> str | None:
    """One sentence for a log line or stderr when ``check`` found a mismatch, else None."""
    if check.get("matches") is not False:
        return None
    return (f"model {name} version {version} was trained with {mismatch_text(check)}: its pickled models are read "
            "by other versions than they were trained with, which can warn, give other numbers or fail; install "
            "the versions it was trained with (constraints.txt: make install; the service's bento pins them in "
            "bentofile.yaml) or retrain it in this environment")


def model_mismatch_note(info: Any) -> str | None:
    """:func:`mismatch_note` of a registered model just loaded: ``info`` is its
    ``training.tracking.ModelInfo`` (``name``, ``version``, ``environment()``)."""
    return mismatch_note(info.name, info.version, info.environment())
