"""Helpers shared by the command modules: error reporting and output paths."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from training.errors import ConfigError, DealermlError

__all__ = ["fail", "write_json", "check_out_path", "check_separate_outputs", "write_files", "json_writer",
           "registered_text", "promote_hint", "note_model_environment"]


def fail(err: Exception) -> None:
    """Print a user-facing error and exit non-zero (no traceback for known errors)."""
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2 if isinstance(err, DealermlError) else 1)


def note_model_environment(info: Any) -> None:
    """One ``note:`` on stderr when the registered model just loaded (its ``ModelInfo``) was trained with
    other package versions than this environment runs (``training.model_env``); it is used all the same."""
    from training.model_env import model_mismatch_note

    note = model_mismatch_note(info)
    if note is not None:
        typer.echo(f"note: {note}", err=True)


def check_not_below_a_file(path: Path, option: str) -> None:
    """Refuse ``path`` when its nearest existing parent is a file (it could never be created)."""
    for parent in Path(path).parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path}: {parent} is a file, not a folder")
            break


def check_out_path(path: Path, option: str = "output", suffixes: tuple[str, ...] | None = None) -> Path:
    """Refuse an output path that cannot be written, before any work: an existing folder, a
    path below a file, a folder this process may not write in (its nearest existing folder:
    missing ones are made when the file is written), or (with ``suffixes``) a name with another
    ending. Raises ConfigError."""
    import os

    path = Path(path)
    if path.is_dir():
        example = path / ("out" + (suffixes[0] if suffixes else ".json"))
        raise ConfigError(f"{option} {path} is a folder; give a file path inside it (e.g. {example})")
    check_not_below_a_file(path, option)
    # the file goes in as a temp file renamed over it, so its folder must be writable (the file
    # itself need not be); said now, not after the fit it would hold
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: no permission to write in the folder {folder}; "
                          "give a path in a folder you can write to")
    if suffixes and not path.name.lower().endswith(tuple(suffixes)):
        raise ConfigError(f"{option} must end in {', '.join(suffixes)}; got {path.name}")
    return path


def check_separate_outputs(outputs: dict[str, Path | None]) -> None:
    """Refuse two outputs of one command at the same path, or one inside the other (``--cv-out o.csv
    --json o.csv`` wrote the table, then the report over it and said it wrote both; ``--json o.csv/r.json``
    failed after the long run with the table left behind; ``train churn --save-to m --json m`` failed
    after registering). ``outputs``: option -> path (None: not given)."""
    given = [(opt, Path(p), Path(p).resolve()) for opt, p in outputs.items() if p is not None]
    for i, (a, pa, ra) in enumerate(given):
        for b, pb, rb in given[i + 1:]:
            if ra == rb:
                raise ConfigError(f"{a} and {b} are the same path {pa}; give each its own")
            for (x, px, rx), (y, py, ry) in (((a, pa, ra), (b, pb, rb)), ((b, pb, rb), (a, pa, ra))):
                if rx in ry.parents:
                    raise ConfigError(f"{y} {py} is inside {x} {px}, which this command writes; "
                                      "give paths outside each other")


def write_files(outputs: list[tuple[Path, Callable[[Path], None]]]) -> None:
    """Write the outputs of one command together: each ``write(tmp)`` to a temp file beside its path,
    then all renamed into place, so a failed write leaves none of them (and no temp file) instead of
    the outputs written before it. A rename that fails (a folder made at a path since the check)
    gives the outputs renamed before it their previous file back (or removes them). SIGTERM (`kill`, a
    stopped container) unwinds the write like Ctrl-C, so no temp file stays (a half-written
    ``.NAME.tmp`` was left beside the output), then the process ends as SIGTERM'd."""
    from training._scores_atomic import _sigterm_as_interrupt

    with _sigterm_as_interrupt():
        commit_files(stage_files(outputs))


def stage_files(outputs: list[tuple[Path, Callable[[Path], None]]]) -> list[tuple[Path, Path]]:
    """The first half of :func:`write_files`: each output written to its temp file beside its path
    (none left behind when one fails). A training command stages its report inside its MLflow run,
    so a report that cannot be written fails the run before anything is registered, and puts it in
    place with :func:`commit_files` after the run (or drops it with :func:`discard_files`)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in outputs:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            staged.append((tmp, path))
            try:
                write(tmp)
            except OSError as exc:  # a full disk, a folder in the way: said, not a traceback
                raise ConfigError(f"cannot write {path}: {exc.strerror or exc} ({tmp}); nothing was written") from None
    except BaseException:
        discard_files(staged)
        raise
    return staged


def commit_files(staged: list[tuple[Path, Path]]) -> None:
    """Rename staged outputs into place together (see :func:`write_files`). A SIGTERM meanwhile unwinds
    like Ctrl-C (the temp files removed, the renamed ones undone), then ends the process as SIGTERM'd:
    a `train --json` SIGTERM'd here, after registering, left its ``.NAME.tmp`` beside the output."""
    from training._scores_atomic import _sigterm_as_interrupt

    with _sigterm_as_interrupt():
        try:
            _rename_together(staged)
        except BaseException:
            discard_files(staged)
            raise


def discard_files(staged: list[tuple[Path, Path]]) -> None:
    for tmp, _ in staged:
        if not tmp.is_dir() or tmp.is_symlink():  # a folder in the temp file's way is not ours
            tmp.unlink(missing_ok=True)


@contextmanager
def staged_outputs() -> Iterator[list[tuple[Path, Path]]]:
    """A list to :func:`stage_files` into inside a ``with``; dropped if the block fails (e.g. an
    MLflow run that fails to register when it ends), kept for :func:`commit_files` otherwise. A SIGTERM
    in the block (also once the run inside it has registered and given SIGTERM back) drops them and
    ends the process as SIGTERM'd; one killed by SIGKILL leaves them, replaced by the next write."""
    from training._scores_atomic import _sigterm_as_interrupt

    staged: list[tuple[Path, Path]] = []
    with _sigterm_as_interrupt():
        try:
            yield staged
        except BaseException:
            discard_files(staged)
            raise


def _rename_together(staged: list[tuple[Path, Path]]) -> None:
    """Rename each temp file over its path; when one fails, undo the ones before it: their previous
    file, kept as a hard link ``.NAME.prev`` until all are in place, goes back (a file system without
    hard links: the new one stays, as before), a path that had none is removed."""
    import os

    done: list[tuple[Path, Path | None, bool]] = []  # (path, its previous file kept, whether it had one)
    kept: list[Path] = []
    try:
        for tmp, path in staged:
            had, prev = path.is_file(), None
            if had and len(staged) > 1:
                prev = path.with_name(f".{path.name}.prev")
                try:
                    prev.unlink(missing_ok=True)
                    os.link(path, prev)
                    kept.append(prev)
                except OSError:
                    prev = None
            tmp.replace(path)
            done.append((path, prev, had))
    except BaseException:
        for path, prev, had in reversed(done):
            if prev is not None:
                prev.replace(path)
            elif not had:
                path.unlink(missing_ok=True)
        raise
    finally:
        for prev in kept:
            prev.unlink(missing_ok=True)


def _undefined_as_null(obj: Any) -> Any:
    """``obj`` with every NaN / infinite float (an undefined figure, e.g. the dealers' net growth share of a
    book that shrank) as None, which JSON writes as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _undefined_as_null(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_undefined_as_null(v) for v in obj]
    return obj


def json_writer(obj: Any) -> Callable[[Path], None]:
    """A :func:`write_files` writer of ``obj`` as JSON; the text is made now, so an object that is not
    JSON fails before any file is written. An undefined figure (NaN, inf) is written as null: `promote
    dealers --json` on a book whose net growth is negative ended in 'Out of range float values are not JSON
    compliant' (a traceback, exit 1) after the champion had moved, and wrote no file."""
    text = json.dumps(_undefined_as_null(obj), indent=2, default=str, allow_nan=False)
    return lambda tmp: tmp.write_text(text)


def write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically: a temp file in the same folder, then rename (no temp file is left
    behind when writing fails)."""
    write_files([(check_out_path(path), json_writer(obj))])


def registered_text(registered: list[tuple[str, str]], alias: str = "challenger", config: Any = None) -> str:
    """What a training run registered, in words: the first version of a name is champion too
    (what ``dealerml serve`` loads), later ones only ``alias`` until ``dealerml promote``, which
    it names (with ``config``, the command to type)."""
    from training import tracking

    parts = []
    for name, version in registered:
        champion = tracking.get_alias_version(name, "champion")
        held = tracking.get_alias_version(name, alias)
        # another run's version registered after this one holds the alias now (register_model_uri)
        mine = alias if held in (None, version) else f"no longer {alias}: v{held} was registered after it"
        if champion == version:
            parts.append(f"{name} version {version} ({mine}, and champion: the first version)")
        elif alias != "challenger":  # promote takes the 'challenger' version only: the hint below would not be true
            ch = tracking.get_alias_version(name, "challenger")
            parts.append(f"{name} version {version} ({mine}, not served; `dealerml promote "
                         f"{name.removeprefix('dealerml-')}` scores the 'challenger' version"
                         f"{f' (v{ch})' if ch else ''}, not this one)")
        else:
            parts.append(f"{name} version {version} ({mine}{promote_hint(name, champion, config)})")
    return "registered " + ("; ".join(parts) or "nothing")


def promote_hint(name: str, champion: str | None, config: Any = None) -> str:
    """', not served: dealerml promote churn --config X scores it against champion v1 ...' for a new
    challenger: a new version alone changes nothing the service or the score commands use."""
    if champion is None:
        return ""
    import shlex

    return (f", not served: `dealerml promote {name.removeprefix('dealerml-')} --config "
            f"{shlex.quote(str(config)) if config else 'CONFIG'}` "
            f"scores it against champion v{champion} on the latest backtest and moves the champion if it wins")
