"""Helpers shared by the command modules: error reporting and output paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from training.errors import DealermlError

__all__ = ["fail", "write_json"]


def fail(err: Exception) -> None:
    """Print a user-facing error and exit non-zero (no traceback for known errors)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2 if isinstance(err, DealermlError) else 1)


def write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically: a temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str, allow_nan=False))
    tmp.replace(path)
