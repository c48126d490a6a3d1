"""Helpers shared by the command modules: error reporting and output paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from training.errors import ConfigError, DealermlError

__all__ = ["fail", "write_json", "check_out_path", "registered_text"]


def fail(err: Exception) -> None:
    """Print a user-facing error and exit non-zero (no traceback for known errors)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2 if isinstance(err, DealermlError) else 1)


def check_out_path(path: Path, option: str = "output", suffixes: tuple[str, ...] | None = None) -> Path:
    """Refuse an output path that cannot be written, before any work: an existing folder, a
    path below a file, or (with ``suffixes``) a name with another ending. Raises ConfigError."""
    path = Path(path)
    if path.is_dir():
        example = path / ("out" + (suffixes[0] if suffixes else ".json"))
        raise ConfigError(f"{option} {path} is a folder; give a file path inside it (e.g. {example})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path}: {parent} is a file, not a folder")
            break
    if suffixes and not path.name.lower().endswith(tuple(suffixes)):
        raise ConfigError(f"{option} must end in {', '.join(suffixes)}; got {path.name}")
    return path


def write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically: a temp file in the same folder, then rename (no temp file is left
    behind when writing fails)."""
    path = check_out_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=2, default=str, allow_nan=False))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def registered_text(registered: list[tuple[str, str]], alias: str = "challenger") -> str:
    """What a training run registered, in words: the first version of a name is champion too
    (what ``dealerml serve`` loads), later ones only ``alias`` until ``dealerml promote``."""
    from training import tracking

    parts = [f"{name} version {version} ({alias}"
             f"{', and champion: the first version' if tracking.get_alias_version(name, 'champion') == version else ''})"
             for name, version in registered]
    return "registered " + ("; ".join(parts) or "nothing")
