"""The model registry of the store in force: registering a version (the first one also champion, decided
under :func:`training._tracking_locks.registry_lock`), aliases, the champion history, and the tags of
models, versions and runs. Private to the MLflow adapter (:mod:`training.tracking`, which re-exports
these names). Nothing is configured at import time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from training._tracking_cleanup import (
    _PREVIOUS_ALIAS_TAG,
    _REGISTRATION_TAG,
    _incomplete,
    _process_tags,
    last_good_holder,
    restore_previous_alias,
)
from training._tracking_locks import registry_lock
from training._tracking_store import _configure
from training._tracking_uri import _store_unreadable, shown_tracking_uri
from training.errors import ConfigError, hide_url_passwords

_REGISTRY_HISTORY_TAG = "dealerml.champion_history"


def register_model_uri(model_uri: str, name: str, *, alias: str, tags: Mapping[str, str] | None = None) -> str:
    """Register ``model_uri`` as a new version of ``name`` with ``alias``; returns the version.

    The first version of a name without a champion also becomes ``champion``, decided under
    :func:`registry_lock` (of runs registering together, one is champion); where no lock is held
    (a tracking server) the lowest version number wins (:func:`_first_champion_unlocked`) and the
    ``challenger`` alias ends on the newest version (:func:`_settle_on_newest`). The version's tag
    ``dealerml.champion_at_registration`` and, with ``tags['run_id']``, that run's tags
    ``registry.<name>.version`` / ``.aliases`` / ``.champion`` say what it became; the version also carries
    that run's data fingerprint and backtest cutoff / horizon (:func:`evaluated_on`). If setting the
    aliases fails the new version is deleted again, so nothing half-registered remains.
    """
    import mlflow

    client = _configure()
    # "pending" until the aliases are set: a process killed in between (SIGKILL) leaves a pending
    # version, which the next run's clean-up deletes (drop_incomplete_versions)
    run_id = (tags or {}).get("run_id")
    known = evaluated_on(str(run_id)) if run_id else {}  # what its figures were measured on
    mv = mlflow.register_model(model_uri, name, tags={**known, **{k: str(v) for k, v in (tags or {}).items()},
                                                      _REGISTRATION_TAG: "pending", **_process_tags()})
    try:
        # "no champion yet, so this version is champion" is one step for every process registering
        # this name: two runs finishing together both read 'no champion' and each set the alias to
        # its own version (the last won, both runs said champion)
        with registry_lock(name) as locked:
            # ``alias`` (challenger) too, so it goes to the last registration in the lock's order, the one
            # whose run says so (set before the lock, an earlier version could take it back after a later
            # one had said challenger)
            # past versions whose registration was killed: the alias goes back to the last good one that held it
            previous = last_good_holder(client, name, alias, get_alias_version(name, alias))
            if previous is not None:  # given back if this registration dies before it completes
                client.set_model_version_tag(name, mv.version, _PREVIOUS_ALIAS_TAG, f"{alias}={previous}")
            set_alias_on(client, name, alias, str(mv.version))
            champion = get_alias_version(name, "champion")
            if alias != "champion" and champion is None:
                if locked:
                    set_alias(name, "champion", mv.version)
                    champion = str(mv.version)
                else:  # a tracking server: no lock, the version numbers it assigns break the tie
                    champion = _first_champion_unlocked(client, name, str(mv.version))
            elif alias == "champion":
                _push_history(name, mv.version)
                champion = str(mv.version)
            if not locked and alias == "challenger":
                _settle_on_newest(client, name, alias)
            client.set_model_version_tag(name, mv.version, CHAMPION_AT_REGISTRATION_TAG, champion)
            if run_id:  # what the run registered, as it happened (the log of a run that lost the race said champion)
                aliases = [alias] + (["champion"] if champion == str(mv.version) and alias != "champion" else [])
                for key, value in (("version", mv.version), ("aliases", ",".join(aliases)), ("champion", champion)):
                    client.set_tag(str(run_id), f"registry.{name}.{key}", str(value))
            client.set_model_version_tag(name, mv.version, _REGISTRATION_TAG, "complete")
    except BaseException as err:  # also Ctrl-C / SIGTERM: nothing half-registered remains
        _delete_failed_version(client, name, str(mv.version), err)
        raise
    return str(mv.version)


def _delete_failed_version(client: Any, name: str, version: str, err: BaseException) -> None:
    """Delete ``version`` of ``name``, whose registration failed with ``err``. When the deletion fails too,
    ``err`` stays the error raised (the deletion's error hid it: a registry that went down said only
    that the delete failed) and the version left behind is said beside it: a warning on the
    ``training._tracking_registry`` logger and a note on ``err``."""
    try:
        tags = client.get_model_version(name, version).tags or {}
        restore_previous_alias(client, name, version, tags)
        client.delete_model_version(name, version)
    except Exception as cleanup:  # noqa: BLE001 - the registration's own error is the one raised
        msg = (f"{name} version {version} was left in {shown_tracking_uri()}: its registration failed "
               f"({type(err).__name__}) and deleting it failed too ({type(cleanup).__name__}: "
               f"{hide_url_passwords(str(cleanup)[:300])}); it stays tagged {_REGISTRATION_TAG}=pending, so a run "
               "started after this process has ended deletes it, or delete it in the MLflow UI")
        logging.getLogger(__name__).warning(msg)
        err.add_note(msg)


def _live_versions(client: Any, name: str) -> list[Any]:
    """The versions of ``name`` a registration has to reckon with: not deleted, not failed, and not a
    pending one the clean-up would drop (its process gone: ``_incomplete``)."""
    import socket
    import time

    host, now_ms = socket.gethostname(), time.time() * 1000
    return [mv for mv in client.search_model_versions(f"name='{name}'")
            if str(getattr(mv, "status", "READY")) != "FAILED_REGISTRATION"
            and not _incomplete(mv.tags or {}, mv.creation_timestamp, host, now_ms)]


def _first_champion_unlocked(client: Any, name: str, version: str) -> str | None:
    """The champion once ``version``, registered with no champion set, is in, on a store without a
    registry lock (a tracking server, where two runs registering together both set the alias and both
    said champion). The server numbers versions one after another, so the lowest wins: ``version``
    claims champion only when no lower version is still being registered (tag ``dealerml.registration``
    = pending, its process alive) and no champion is set; otherwise it waits for the lower ones (which
    set the champion before they complete) and returns the champion they leave. The list is read
    before the alias, so a lower version that completed is seen with its champion. After setting
    the alias it is read again: the champion it names is returned (another process may have moved it)."""
    import time

    from training._tracking_locks import REGISTRY_LOCK_TIMEOUT_S

    deadline = time.monotonic() + REGISTRY_LOCK_TIMEOUT_S
    while True:
        lower = sorted(int(mv.version) for mv in _live_versions(client, name)
                        if int(mv.version) < int(version) and (mv.tags or {}).get(_REGISTRATION_TAG) == "pending")
        champion = get_alias_version(name, "champion")
        if champion is not None:
            return champion
        if not lower:
            break
        if time.monotonic() > deadline:
            raise ConfigError(f"cannot register {name} version {version} in {shown_tracking_uri()}: version(s) "
                              f"{', '.join('v' + str(v) for v in lower)} have been registering for more than "
                              f"{REGISTRY_LOCK_TIMEOUT_S} s without setting the champion; try again when they have "
                              "finished")
        time.sleep(0.2)
    set_alias(name, "champion", version)
    now = get_alias_version(name, "champion")
    return version if now is None else now


def _settle_on_newest(client: Any, name: str, alias: str) -> None:
    """Point ``alias`` at the newest live dealerml-registered version of ``name`` (without a lock the
    last writer wins, and an earlier version could take it back after a later one had said
    ``alias``). Read, list, set until they agree: the last process to write ends with a check."""
    for _ in range(10):
        now = get_alias_version(name, alias)
        newest = max((int(mv.version) for mv in _live_versions(client, name)
                      if (mv.tags or {}).get(_REGISTRATION_TAG)), default=None)
        if newest is None or now == str(newest):
            return
        set_alias_on(client, name, alias, str(newest))


CHAMPION_AT_REGISTRATION_TAG = "dealerml.champion_at_registration"
"""Version tag: the champion of the name once this version was registered (the version itself when it
became champion as the first one; another when a champion was there, also one registered a moment before)."""


def get_alias_version(name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None (also when the model name does not exist). A store that
    cannot be read is a ConfigError naming it: it was None too, so promote with the tracking server down
    for one call took the challenger for the first version (no champion to beat) and promoted it unscored."""
    return alias_versions([name], alias)[name]


def alias_versions(names: list[str] | tuple[str, ...], alias: str = "champion") -> dict[str, str | None]:
    """The version ``alias`` points at for each registered model in ``names`` (None: the model or
    the alias does not exist). A store that cannot be reached (a tracking server down, a bad URI) is a
    ConfigError naming the store, not read as 'no alias'."""
    from mlflow.exceptions import MlflowException

    try:
        client = _configure()
    except (MlflowException, ConfigError):
        raise
    except Exception as err:  # noqa: BLE001 - named, password hidden
        raise _store_unreadable(err) from None
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException as err:
            if getattr(err, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                out[name] = None
                continue
            raise ConfigError(f"cannot read the MLflow registry at {shown_tracking_uri()}: "
                              f"{hide_url_passwords(str(err)[:300])}") from None
    return out


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``; moves of ``champion`` are appended to the history tag."""
    set_alias_on(_configure(), name, alias, str(version))
    if alias == "champion":
        _push_history(name, str(version))


_ALIAS_INSERT_CONFLICT = ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")
"""What a store's error says when two processes inserted the same alias at once (SQLite, PostgreSQL, MySQL)."""


def set_alias_on(client: Any, name: str, alias: str, version: str, *, attempts: int = 5) -> None:
    """``client.set_registered_model_alias``, again when it lost an insert race. MLflow sets an alias by a
    read-then-insert (SQLAlchemy ``merge``): two processes setting an alias that does not exist yet both
    insert, and the second fails on the unique key (a tracking server answered ``BAD_REQUEST: ...
    UNIQUE constraint failed: registered_model_aliases...`` and that run's registration was undone). The
    row exists by then, so the next try updates it; what the alias ends on is decided by the callers as
    before (the lock, or :func:`_first_champion_unlocked` / :func:`_settle_on_newest` without one)."""
    import time

    from mlflow.exceptions import MlflowException

    for attempt in range(1, attempts + 1):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except MlflowException as err:
            if attempt == attempts or not any(s in str(err) for s in _ALIAS_INSERT_CONFLICT):
                raise
            time.sleep(0.05 * attempt)


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name`` (no error when it is not set)."""
    from mlflow.exceptions import MlflowException

    client = _configure()
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException:
        pass


def _push_history(name: str, version: str) -> None:
    hist = champion_history(name)
    if not hist or hist[-1] != str(version):
        hist.append(str(version))
    set_model_tag(name, _REGISTRY_HISTORY_TAG, json.dumps(hist[-200:]))


def champion_history(name: str) -> list[str]:
    """Versions that have been champion, oldest first (the last is the current one); [] when no model
    ``name`` is registered (promote and rollback read it before the alias, which says 'no champion')."""
    from mlflow.exceptions import MlflowException

    try:
        raw = get_model_tags(name).get(_REGISTRY_HISTORY_TAG)
    except MlflowException as err:
        if getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    return list(json.loads(raw)) if raw else []


def set_champion_history(name: str, history: list[str]) -> None:
    set_model_tag(name, _REGISTRY_HISTORY_TAG, json.dumps([str(v) for v in history][-200:]))


def get_model_tags(name: str) -> dict[str, str]:
    client = _configure()
    return dict(client.get_registered_model(name).tags)


def set_model_tag(name: str, key: str, value: str) -> None:
    _configure().set_registered_model_tag(name, key, str(value)[:5000])


def run_tags(run_id: str) -> dict[str, str]:
    """A run's tags ({} when the store no longer holds the run)."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(_configure().get_run(run_id).data.tags)
    except MlflowException:
        return {}


def run_params(run_id: str) -> dict[str, str]:
    """A run's params ({} when the store no longer holds the run)."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(_configure().get_run(run_id).data.params)
    except MlflowException:
        return {}


def tags_if_other_lines(info: Any, order_lines_sha256: str | None) -> dict[str, str] | None:
    """The tags of the run behind a registered version (``info``: its ``model_info``) when that run read
    other order lines than ``order_lines_sha256`` (its ``data.order_lines_sha256`` tag), else None
    (the same lines, or either side without a fingerprint): promote and forecast / safety-stock
    ``--alias`` caution on a version fitted on another book."""
    if info is None or not getattr(info, "run_id", None) or not order_lines_sha256:
        return None
    tags = run_tags(info.run_id)
    theirs = tags.get("data.order_lines_sha256")
    return tags if theirs and theirs != order_lines_sha256 else None


EVALUATION_PARAMS = frozenset({"backtest.test_cutoff", "backtest.cutoffs", "backtest_cutoff", "horizon", "horizon_days", "lookback_days",
                               "holdout", "windows", "freq", "config.demand.step"})
"""Run params that define what a run's backtest measured on (the test cutoff, the horizon, the windows, the
scored population); ``experiment compare`` calls runs comparable only when they agree."""
EVALUATION_TAGS = ("data.order_lines_sha256", "data.accounts_sha256", "data.service_events_sha256",
                   "data.order_date_min", "data.order_date_max", "data.as_of", "data.source")
"""Run tags that say which data a run read and was evaluated on."""


def evaluated_on(run_id: str) -> dict[str, str]:
    """What the run behind a version was evaluated on, under the run's own keys: its data
    (:data:`EVALUATION_TAGS`) and its backtest's cutoff and horizon (:data:`EVALUATION_PARAMS`); {} when
    the store no longer holds the run. Set as the version's tags at registration, so the registry says
    what each version's figures were measured on without opening its run."""
    from mlflow.exceptions import MlflowException

    try:
        data = _configure().get_run(run_id).data
    except MlflowException:
        return {}
    out = {k: data.tags[k] for k in EVALUATION_TAGS if data.tags.get(k)}
    out.update({k: v for k, v in data.params.items() if k in EVALUATION_PARAMS})
    return out


def get_version_tags(name: str, version: str) -> dict[str, str]:
    return dict(_configure().get_model_version(name, str(version)).tags)


def set_version_tags(name: str, version: str, tags: Mapping[str, Any]) -> None:
    client = _configure()
    for k, v in tags.items():
        client.set_model_version_tag(name, str(version), str(k), str(v)[:5000])
