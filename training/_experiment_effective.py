"""The config an experiment's steps read: ``effective_config`` writes the experiment file merged onto the
config it ``extends`` (mappings key by key), with ``steps`` / ``extends`` removed, env vars expanded
(a URL's password given as ``${VAR}`` kept so, ``_keep_secret_placeholders``) and relative data paths
made absolute against each file's folder (``_absolutize``); ``_read_raw`` reads one YAML file.

Split from :mod:`training.experiment` to keep each module under ~500 lines; pure moves. Used by its
``run_experiment``; it re-exports every name here (tests import ``effective_config`` and ``_read_raw``
from there): import them from :mod:`training.experiment`. Imports nothing of it (no cycle).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from training.errors import ConfigError, hide_url_passwords


def _read_raw(path: Path) -> dict[str, Any]:
    from training.config import read_yaml_mapping

    try:
        return read_yaml_mapping(path)
    except ValueError as exc:  # PyYAML raises ValueError on an impossible date such as 2024-13-01
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


_PATH_KEYS = re.compile(r"^(path|.*_path|.*_file|.*_dir)$")


def _absolutize(raw: Any, base_dir: Path) -> Any:
    """Make relative file paths of a raw config absolute against ``base_dir`` (its file's folder).

    Covers every ``path`` / ``*_path`` / ``*_file`` / ``*_dir`` key at any depth (the data
    sources and capability sections such as ``demand.series.path``) and ``sqlite:///`` URLs.
    """
    if isinstance(raw, list):
        return [_absolutize(v, base_dir) for v in raw]
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, str) and _PATH_KEYS.match(str(k)) and "://" not in v:
            p = Path(os.path.expanduser(v))
            out[k] = v if p.is_absolute() else os.path.normpath(base_dir / p)
        elif isinstance(v, str) and str(k) == "url" and v.startswith("sqlite:///"):
            db = v[len("sqlite:///") :]
            ok = db and db != ":memory:" and not Path(db).is_absolute()
            out[k] = "sqlite:///" + os.path.normpath(base_dir / db) if ok else v
        else:
            out[k] = _absolutize(v, base_dir)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _keep_secret_placeholders(expanded: Any, raw: Any) -> Any:
    """``expanded`` with each URL whose password came from ``${VAR}`` put back as written
    (``postgresql://reader:${PGPASSWORD}@db/erp``): the effective copy is kept under
    $DEALERML_HOME/experiments and held the password in clear; the steps, which run in this
    process, expand it again when they load the copy."""
    if isinstance(expanded, dict) and isinstance(raw, dict):
        return {k: _keep_secret_placeholders(v, raw.get(k)) for k, v in expanded.items()}
    if isinstance(expanded, list) and isinstance(raw, list) and len(expanded) == len(raw):
        return [_keep_secret_placeholders(e, r) for e, r in zip(expanded, raw, strict=True)]
    if (isinstance(expanded, str) and isinstance(raw, str) and expanded != raw
            and hide_url_passwords(expanded) != expanded and hide_url_passwords(raw) == raw):
        return raw
    return expanded


def effective_config(path: Path, raw: dict[str, Any], tmp: Path) -> tuple[Path, list[Path]]:
    """Write the config the step commands read; returns (its path, the source files).

    The experiment file may say ``extends: other.yaml`` (relative to itself) and override any
    keys of it (mappings merge key by key). ``steps`` and ``extends`` are removed, because
    ``training.config.ExperimentConfig`` forbids unknown keys; env vars are expanded and
    relative data paths made absolute first, so the copy (in a temp folder) reads the same files;
    a URL's password given as ``${VAR}`` stays so (the copy is kept, see _keep_secret_placeholders).
    """
    import yaml

    from training.config import expand_env

    sources = [path]
    base_name = raw.get("extends")
    raw = {k: v for k, v in raw.items() if k not in ("steps", "extends")}
    merged = _absolutize(_keep_secret_placeholders(expand_env(raw, file=str(path)), raw), path.parent)
    if base_name is not None:
        base = (path.parent / os.path.expanduser(str(base_name))).resolve()
        if base.is_dir():
            from training.config import yaml_files_hint

            raise ConfigError(f"{path}: key 'extends': {base} is a folder; expected a YAML file{yaml_files_hint(base)} "
                              f"({base_name!r} is read relative to {path.parent})")
        if not base.is_file():
            raise ConfigError(f"{path}: key 'extends': config file not found: {base} "
                              f"({base_name!r} is read relative to {path.parent})")
        try:
            braw = _read_raw(base)
        except ConfigError as exc:
            raise ConfigError(f"{path}: key 'extends': {exc}") from None
        if "steps" in braw or "extends" in braw:
            raise ConfigError(f"{path}: key 'extends': {base} must be a plain config (no steps/extends)")
        merged = _merge(_absolutize(_keep_secret_placeholders(expand_env(braw, file=str(base)), braw), base.parent),
                        merged)
        sources.append(base)
    out = tmp / path.name
    out.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
    return out, sources
