"""A champion move (``promote``, ``rollback``) killed half-way, finished or undone by the next one.

A move is several writes: the alias, the champion history, the challenger alias (rollback), the
promotion log, the evidence run's ``promotion.complete``. A process killed (SIGKILL, SIGTERM: neither
unwinds here) after moving the alias and before the log left champion = the new version with no log
entry and an evidence run saying the promote never took effect; a killed rollback also left its history
ending on the version it had just left, so the next rollback went back to the rolled-back version. So a
move first writes what it is about to do as the registered model's tag :data:`MOVE_TAG` (with its process,
:func:`training._tracking_cleanup._process_tags`) and removes it when done; :func:`settle_killed_move`, run
by the next promote / rollback under the registry lock, finishes a move whose process is gone when the
alias had moved (the history, the challenger alias, the log entry marked ``completed_after_kill``, the
evidence complete) and undoes its version tags when it had not, and says which. Private to
:mod:`training.registry`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from training import tracking

MOVE_TAG = "dealerml.move_in_progress"


@contextmanager
def recorded_move(name: str, move: Mapping[str, Any]) -> Iterator[None]:
    """Hold ``move`` (``what``, ``from``, ``to``, ``history`` the move leaves, ``entry`` for the log, and
    optionally ``evidence_run_id``, ``drop_challenger``, ``undo_version`` and ``undo_tags``, each of its tags'
    value before the move, None when unset) as tag :data:`MOVE_TAG` while the block moves the champion;
    removed when the block ends or raises an error (which said what happened). A process killed in the block
    leaves it for :func:`settle_killed_move`."""
    from training._tracking_cleanup import _process_tags

    tracking.set_model_tag(name, MOVE_TAG, json.dumps({**move, **_process_tags()}, default=str))
    try:
        yield
    except Exception:
        _clear(name)
        raise
    _clear(name)


def _clear(name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        tracking._configure().delete_registered_model_tag(name, MOVE_TAG)
    except MlflowException:
        pass


def settle_killed_move(name: str, append_log: Callable[[str, dict[str, Any]], None], *,
                       locked: bool = False) -> str | None:
    """Finish or undo the move :data:`MOVE_TAG` records when its process is gone; returns what was done
    (also logged as a warning), None when there was nothing to settle. ``append_log(name, entry)`` appends
    to the promotion log. ``locked``: the caller holds the registry lock (a SQLite or PostgreSQL store),
    which every move holds while it is recorded, so a move recorded on another machine is dead too: a
    PostgreSQL store shared by two machines kept a promote killed on one unsettled from the other (its
    process 'cannot be seen from here'), and the next move's record replaced it for good. Without a lock
    (a tracking server) only this host's dead processes are judged."""
    from mlflow.exceptions import MlflowException

    from training._tracking_cleanup import _HOST_TAG, _PID_TAG, _dead_process

    try:
        raw = tracking.get_model_tags(name).get(MOVE_TAG)
    except MlflowException:
        return None
    if not raw:
        return None
    try:
        move = json.loads(raw)
    except ValueError:  # cut at the tag's length: nothing can be settled from it
        _clear(name)
        return None
    import socket

    host = move.get(_HOST_TAG)
    if host == socket.gethostname():
        pid, who = _dead_process(move), ""
    else:  # another machine's: its processes cannot be seen from here, but a live move holds the lock
        pid, who = (move.get(_PID_TAG) or "?") if locked else None, f" on {host or 'another machine'}"
    if pid is None:  # still running, or another machine's on a store without a lock
        return None
    what, frm, to = move["what"], move.get("from") or None, str(move["to"])
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    evidence = move.get("evidence_run_id")
    client = tracking._configure()
    if tracking.get_alias_version(name, "champion") == to:  # it took effect: the rest of its writes
        said = (f"the {what} of {name} from v{frm or '-'} to v{to} (process {pid}{who}) was killed after it moved "
                f"'champion'; its record was completed at {now}")
        if tracking.champion_history(name) != move["history"]:
            tracking.set_champion_history(name, move["history"])
        if move.get("drop_challenger") and tracking.get_alias_version(name, "challenger") == frm:
            tracking.delete_alias(name, "challenger")
        if not _logged(name, move["entry"]):  # killed after its log entry: not logged twice
            append_log(name, {**move["entry"], "completed_after_kill": now})
        if evidence:
            client.set_tag(evidence, "promotion.completed_after_kill", said)
            client.set_tag(evidence, "promotion.complete", "true")
    else:  # killed before the alias moved: nothing took effect; its version tags say so / go
        said = (f"the {what} of {name} from v{frm or '-'} to v{to} (process {pid}{who}) was killed before it moved "
                f"'champion', which stays v{tracking.get_alias_version(name, 'champion') or '-'}; nothing took effect")
        version = move.get("undo_version")
        for key, old in (move.get("undo_tags") or {}).items():
            try:  # back to the value before the move (an earlier decision's), or removed
                if old is None:
                    client.delete_model_version_tag(name, str(version), key)
                else:
                    client.set_model_version_tag(name, str(version), key, old)
            except MlflowException:
                pass
        if evidence:
            client.set_tag(evidence, "promotion.aborted", said)
    _clear(name)
    logging.getLogger("training.registry").warning(said)
    return said


def _logged(name: str, entry: Mapping[str, Any]) -> bool:
    """Whether the promotion log already holds ``entry`` (a move killed after writing it, or a settle
    killed after completing it, was logged again by the next one)."""
    from training.registry import read_log

    try:
        log = read_log(name)
    except ValueError:
        return False
    key = json.dumps(dict(entry), sort_keys=True, default=str)
    return any(json.dumps({k: v for k, v in e.items() if k != "completed_after_kill"}, sort_keys=True, default=str)
               == key for e in log if isinstance(e, dict))
