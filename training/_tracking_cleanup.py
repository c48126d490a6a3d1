"""Clean-up after processes that died mid-way: the tags that name the process of a run (or of a
version being registered), RUNNING runs of a gone process marked KILLED (:func:`mark_stale_runs`), and
versions whose registration never completed deleted (:func:`drop_incomplete_versions`). Both are best
effort and take a client. Private to the MLflow adapter (:mod:`training.tracking`). Nothing is
configured at import time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.errors import ConfigError

_PID_TAG, _HOST_TAG, _START_TAG = "dealerml.pid", "dealerml.host", "dealerml.process_start"
_REGISTRATION_TAG = "dealerml.registration"
# "<alias>=<version>": the version the alias was on before a registration moved it to its own pending
# version, put back when that version is deleted (a registration killed or failed after moving it)
_PREVIOUS_ALIAS_TAG = "dealerml.previous_alias"


def restore_previous_alias(client: Any, name: str, version: str, tags: Mapping[str, str]) -> None:
    """Before deleting ``version``, whose registration never completed (``tags``: its tags), put its alias
    back on the version that held it before (tag ``dealerml.previous_alias``), when the alias is still on
    ``version`` (or on none): a `train` killed while registering took 'challenger' off the challenger
    waiting for `promote`. Moved before the delete, so a clean-up killed in between leaves the alias on
    the good version (deleting first lost it for good). The version named is followed to the one it
    replaced while it too is pending and dead (:func:`last_good_holder`). Best effort."""
    from mlflow.exceptions import MlflowException

    alias, _, previous = str(tags.get(_PREVIOUS_ALIAS_TAG) or "").partition("=")
    if not alias or not previous:
        return
    try:
        holder = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        holder = None
    if holder not in (None, str(version)):
        return  # held by another version now: that registration's, not ours to undo
    previous = last_good_holder(client, name, alias, previous)
    if previous is None:
        return  # no good version held it: it goes with ``version``
    try:
        client.set_registered_model_alias(name, alias, previous)
    except MlflowException:  # that version was deleted since
        pass


def last_good_holder(client: Any, name: str, alias: str, version: str | None) -> str | None:
    """``version`` (which holds or held ``alias``), or, while it is a version whose registration was killed
    (pending, its process gone: ``_incomplete``), the one it took ``alias`` from (its ``dealerml.previous_alias``),
    and so on; None when the chain ends without a good one. Two `train`s killed one after the other while
    registering, the second having started before the first was killed, recorded the first's dead version as
    the one to give 'challenger' back to; once that was deleted the challenger waiting for `promote` had none."""
    import socket

    from mlflow.exceptions import MlflowException

    host, now_ms, seen = socket.gethostname(), time.time() * 1000, set()
    while version is not None and version not in seen:
        seen.add(version)
        try:
            mv = client.get_model_version(name, version)
        except MlflowException:
            return None  # deleted
        tags = mv.tags or {}
        if not _incomplete(tags, mv.creation_timestamp, host, now_ms):
            return str(version)
        held, _, before = str(tags.get(_PREVIOUS_ALIAS_TAG) or "").partition("=")
        version = before if held == alias and before else None
    return None


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, /proc); None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), after the command name


def _process_tags() -> dict[str, str]:
    """Tags that let a later start tell whether this run's process is still alive."""
    import os
    import socket

    tags = {_PID_TAG: str(os.getpid()), _HOST_TAG: socket.gethostname()}
    start = _process_start(os.getpid())
    if start is not None:
        tags[_START_TAG] = start
    return tags


def _alive(pid: int, start: str | None) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    # the pid may have been reused by a later process: compare start times when both are known
    now = _process_start(pid)
    return start is None or now is None or now == start


def _dead_process(tags: Mapping[str, str]) -> int | None:
    """The pid recorded in ``tags`` (``_process_tags``) when that process is gone, else None
    (alive, or no pid recorded)."""
    try:
        pid = int(tags.get(_PID_TAG, ""))
    except ValueError:
        return None
    return None if _alive(pid, tags.get(_START_TAG)) else pid


def mark_stale_runs(client: Any) -> list[str]:
    """Mark RUNNING runs of ``dealerml-*`` experiments whose process is gone as KILLED.

    Only runs tagged by this host (``dealerml.host``) with a process id (``dealerml.pid``)
    are judged: a run of another machine, or one recorded before these tags existed, is
    left alone. A run is stale when its process no longer exists, or the pid now belongs to
    a process started at another time. Returns the run ids marked; never raises (a store
    that cannot be searched only means nothing is cleaned up this time).
    """
    import socket

    marked: list[str] = []
    try:
        exps = [e.experiment_id for e in client.search_experiments(filter_string="name LIKE 'dealerml-%'")]
        if not exps:
            return marked
        host = socket.gethostname().replace("'", "")
        runs = client.search_runs(
            exps, filter_string=f"attributes.status = 'RUNNING' and tags.`{_HOST_TAG}` = '{host}'", max_results=1000)
        for r in runs:
            pid = _dead_process(r.data.tags)
            if pid is None:
                continue
            client.set_tag(r.info.run_id, "dealerml.stale", f"process {pid} on {host} was gone when a later run started")
            client.set_terminated(r.info.run_id, status="KILLED")
            marked.append(r.info.run_id)
    except Exception:  # noqa: BLE001 - clean-up is best effort, training goes on
        return marked
    return marked


PENDING_TTL_ENV = "DEALERML_PENDING_VERSION_TTL_HOURS"
PENDING_TTL_HOURS = 24.0  # a registration takes seconds; a day-old pending version is dead


def _pending_ttl_ms() -> float:
    """``$DEALERML_PENDING_VERSION_TTL_HOURS`` (default :data:`PENDING_TTL_HOURS`) in milliseconds; a
    value that is not a positive, finite number of hours is a ConfigError naming it (``12h`` silently
    meant 24 h, ``nan`` never, and ``0`` or a negative one dropped another host's registration at once)."""
    raw = os.environ.get(PENDING_TTL_ENV, "").strip()
    if not raw:
        return PENDING_TTL_HOURS * 3_600_000
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not (math.isfinite(hours) and hours > 0):
        raise ConfigError(f"${PENDING_TTL_ENV} must be a positive number of hours (how long a model version "
                          f"another machine is registering may stay pending, e.g. 24 or 0.5); got {raw[:50]!r}")
    return hours * 3_600_000


def _incomplete(tags: Mapping[str, str], created_ms: int | None, host: str, now_ms: float) -> bool:
    """A pending version is dead when its registering process on this host is gone; one
    registered on another host (whose processes cannot be seen from here) when it has been
    pending for longer than ``$DEALERML_PENDING_VERSION_TTL_HOURS`` (default 24)."""
    if tags.get(_REGISTRATION_TAG) != "pending":
        return False
    if tags.get(_HOST_TAG) == host and tags.get(_PID_TAG):
        return _dead_process(tags) is not None
    return created_ms is not None and now_ms - created_ms > _pending_ttl_ms()


def drop_incomplete_versions(client: Any) -> list[tuple[str, str]]:
    """Delete ``dealerml-*`` model versions whose registration never completed (tag
    ``dealerml.registration`` = pending): those whose registering process on this host is
    gone, and those of another host pending for longer than the TTL (``_incomplete``).
    Returns the (name, version) pairs deleted; never raises (best-effort clean-up), except a ConfigError
    for a bad ``$DEALERML_PENDING_VERSION_TTL_HOURS`` (:func:`_pending_ttl_ms`), which would otherwise
    be swallowed here."""
    import socket

    from training._tracking_locks import registry_lock

    _pending_ttl_ms()  # a bad value is said before the best-effort part below
    dropped: list[tuple[str, str]] = []
    try:
        host = socket.gethostname()
        now_ms = time.time() * 1000
        for mv in client.search_model_versions("name LIKE 'dealerml-%'"):
            if not _incomplete(mv.tags or {}, mv.creation_timestamp, host, now_ms):
                continue
            # under the model's registry lock: a registration moving the alias between the check and the set
            # of restore_previous_alias would have its alias moved back to the older version; the alias goes
            # back before the version goes, so a clean-up killed in between loses no alias
            with registry_lock(mv.name):
                restore_previous_alias(client, mv.name, str(mv.version), mv.tags or {})
                client.delete_model_version(mv.name, mv.version)
            dropped.append((mv.name, str(mv.version)))
    except Exception:  # noqa: BLE001 - clean-up is best effort, training goes on
        return dropped
    return dropped
