"""Readiness state machine of the service: one slot per served model.

Each slot goes ``pending -> loading -> ready`` or ``-> failed``; a failed slot stays failed
(with the model name, version and error) until the process is restarted with a good
champion, or its champion alias moves to another version (``serving.loader.retry_moved_champions``),
so the service stays unready instead of crash-looping or serving something wrong.
The service is ready only when every slot is ready.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any


def utc_now() -> str:
    """Now, UTC, to the second, as every time the service reports (``2026-11-26T23:14:51+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

__all__ = ["PENDING", "LOADING", "READY", "FAILED", "ModelSlot", "ServingState", "NotReady", "NotServed"]

PENDING, LOADING, READY, FAILED = "pending", "loading", "ready", "failed"


LOADING_RETRY_AFTER_S = 5
"""``Retry-After`` of a 503 for a model still pending or loading (a model loads in seconds)."""


class NotReady(Exception):
    """A request needs a model that is not (yet) loaded; the message says why. ``retry_after``:
    seconds a client should wait before asking again (the answer's ``Retry-After``), or None
    where asking again will not help by itself (a model that failed to load)."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotServed(Exception):
    """A request needs a model this deployment does not load (``serving.models``, ``--models``)."""


@dataclass
class ModelSlot:
    """One served model: its registry identity, state and (once ready) its backend."""

    key: str  # "demand" | "churn" | "dealers"
    name: str  # registered model name, e.g. "dealerml-churn"
    state: str = PENDING
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    training_window: dict[str, str | None] = field(default_factory=dict)
    backtest_metrics: dict[str, float] = field(default_factory=dict)
    # the loaded model's recorded package versions against the service's (training.model_env.environment_check)
    environment: dict[str, Any] | None = None
    loaded_at: str | None = None
    error: str | None = None
    backend: Any = None
    # what the registry's champion alias pointed at when last checked (serving.loader.check_champions)
    registry_champion: str | None = None
    registry_checked_at: str | None = None
    # the dealer ranking's churn risk comes from the dealerml-churn champion it was built with (its backend's
    # ``churn_source``: "dealerml-churn/<version>" or "bgnbd"); the registry's churn champion when last
    # checked, so a promote / rollback of churn marks the ranking stale too (``score dealers`` takes the new one)
    churn_champion: str | None = None
    churn_checked: bool = False
    # for /readyz (not in describe(): /model_info keeps its schema)
    loading_since: float | None = None  # time.monotonic() when it started loading
    unregistered: bool = False  # failed because no version of it has the champion alias
    # the model itself failed to load (not the registry or the order book): the champion version it
    # tried (None: there was none), retried only once the alias moves (serving.loader.watch_champions)
    model_failed: bool = False
    failed_champion: str | None = None
    hint: str | None = None  # what the operator can do about the failure (readiness, log)
    _summary_of: tuple[Any, dict[str, Any]] | None = field(default=None, repr=False)  # (backend, its summary)

    def readiness(self, phase: str | None = None, *, detail: bool = True) -> dict[str, Any]:
        """``{"name", "status", "version", "reason"}`` for ``/readyz``: status is ``ready``, ``pending``
        (``phase``: what the loader is doing before it), ``loading``, ``not_registered`` or ``failed``;
        the reason says why in words (no secrets: passwords in URLs are hidden).

        ``detail=False`` (a request without a valid API key): the reason is built from the status,
        version and loading time only - no error text, file path, store address, config file or hint."""
        from training.errors import hide_url_passwords

        if not detail:
            return {"name": self.name, "status": self._public_status(), "version": self.version,
                    "reason": self._public_reason()}
        status, reason = self.state, None
        if self.state == PENDING:
            reason = f"waiting to load: {phase}" if phase else "waiting for the models before it to load"
        elif self.state == LOADING:
            took = "" if self.loading_since is None else f" for {time.monotonic() - self.loading_since:.0f} s"
            reason = f"loading{' version ' + self.version if self.version else ''}{took}"
        elif self.state == FAILED and self.unregistered:
            status, reason = "not_registered", f"not registered: {(self.error or '').removeprefix('ConfigError: ')}"
        elif self.state == FAILED:
            reason = f"{'version ' + self.version + ' ' if self.version else ''}failed to load: {self.error}"
        if reason is not None and self.state == FAILED and self.hint:
            reason = f"{reason}; {self.hint}"
        return {"name": self.name, "status": status, "version": self.version,
                "reason": None if reason is None else hide_url_passwords(reason)}

    def _public_status(self) -> str:
        return "not_registered" if self.state == FAILED and self.unregistered else self.state

    def _public_reason(self) -> str | None:
        """The reason without anything read from the environment, the registry or an exception."""
        if self.state == PENDING:  # the phase names the config file
            return "waiting to load"
        if self.state == LOADING:  # version and time only, as with detail
            return self.readiness()["reason"]
        if self.state == FAILED and self.unregistered:
            return "not registered: no version has the champion alias"
        if self.state == FAILED:
            return f"{'version ' + self.version + ' ' if self.version else ''}failed to load"
        return None

    @property
    def stale(self) -> bool:
        """The registry's champion moved away from the version this process serves (a promote or a
        rollback after start-up): the answers come from a version that is no longer the champion. The
        dealer ranking is stale too when the churn champion its churn risk came from moved
        (:meth:`churn_moved`): ``dealerml score dealers`` then ranks with the new one. The demand model is
        stale when the promotions table it plans under changed or cannot be read since start-up
        (:meth:`promo_message`): a restart plans under the table as it is now."""
        return self.state == READY and (self.registry_checked_at is not None and (
            self.registry_champion != self.version or self.churn_moved()) or self.promo_message() is not None)

    def promo_message(self) -> str | None:
        """What the champion check found of the promotions table the demand champion plans under
        (:mod:`serving._promo_watch`): changed or unreadable since start-up; None when as read then."""
        watch = getattr(self.backend, "promo_watch", None) if self.state == READY else None
        return None if watch is None else watch.message(f"{self.name} version {self.version}")

    def served_churn_version(self) -> str | None:
        """The dealerml-churn version whose probabilities the loaded dealer ranking uses (None: 1 - BG/NBD
        P(alive), no churn model)."""
        source = getattr(self.backend, "churn_source", None)
        if isinstance(source, str) and source.startswith("dealerml-churn/"):
            return source.rpartition("/")[2]
        return None

    def churn_moved(self) -> bool:
        """The registry's dealerml-churn champion (at the last check) is not the churn version the loaded
        dealer ranking took its churn risk from: a churn promote / rollback after start-up."""
        if self.key != "dealers" or self.state != READY or not self.churn_checked:
            return False
        return self.served_churn_version() != self.churn_champion

    def stale_message(self) -> str | None:
        if not self.stale:
            return None
        parts = []
        if self.registry_checked_at is not None and self.registry_champion != self.version:
            now = f"version {self.registry_champion}" if self.registry_champion else "no version (the alias was removed)"
            fix = f"restart the service to serve version {self.registry_champion}" if self.registry_champion else \
                "promote a version (dealerml promote / rollback) and restart the service"
            parts.append(f"the champion of {self.name} is now {now}; this service still serves version {self.version}, "
                         f"loaded at start-up (models are read once): {fix}")
        promo = self.promo_message()
        if promo is not None:
            parts.append(promo)
        if self.churn_moved():
            served = self.served_churn_version()
            was = f"dealerml-churn version {served}" if served else "1 - BG/NBD P(alive) (there was no churn champion)"
            now = (f"version {self.churn_champion}" if self.churn_champion
                   else "no version (the alias was removed; score dealers takes 1 - BG/NBD P(alive))")
            fix = (f"restart the service to rank with version {self.churn_champion}" if self.churn_champion
                   else "restart the service to rank with 1 - BG/NBD P(alive), or promote a churn version")
            parts.append(f"the churn champion (dealerml-churn) is now {now}; this service's dealer ranking "
                         f"({self.name} version {self.version}) still takes churn risk from {was}, as loaded at "
                         f"start-up, so its potentials and order differ from `dealerml score dealers`: {fix}")
        return "; ".join(parts)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.state,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "training_window": dict(self.training_window),
            "backtest_metrics": dict(self.backtest_metrics),
            "loaded_at": self.loaded_at,
            "error": self.error,
            "registry_champion": self.registry_champion,
            "registry_checked_at": self.registry_checked_at,
            "stale": self.stale,
            "stale_reason": self.stale_message(),
            "summary": dict(self._summary()),
            "environment": self.environment,
        }

    def _summary(self) -> dict[str, Any]:
        """``backend.summary()``, computed once per loaded backend (it counts every account or series,
        and /model_info answers on the event loop)."""
        backend = self.backend
        if self.state != READY or not hasattr(backend, "summary"):
            return {}
        cached = self._summary_of
        if cached is None or cached[0] is not backend:
            cached = self._summary_of = (backend, backend.summary())
        return cached[1]


class ServingState:
    """All slots plus the transitions; safe to read from request threads."""

    def __init__(self, slots: list[ModelSlot], config: str) -> None:
        self.slots = {s.key: s for s in slots}
        self.config = config
        self._lock = threading.Lock()
        self.champion_check_error: str | None = None  # the last champion check's error (logged once)
        self.registry_failed = False  # start-up stopped at the registry (retried by serving.loader.watch_champions)
        self.phase: str | None = None  # what the loader does before the models (registry, order book): /readyz

    def not_ready(self, *, detail: bool | Container[str] = True) -> list[dict[str, Any]]:
        """:meth:`ModelSlot.readiness` of every slot that is not ready (``/readyz``); ``detail=False``:
        status, version and a reason without error texts, paths or addresses (no valid API key); a
        collection of slot keys (``{"demand"}``): the reasons of those slots only (a key's scopes)."""
        def shown(key: str) -> bool:
            return detail if isinstance(detail, bool) else key in detail

        return [r for k, s in self.slots.items()
                if (r := s.readiness(self.phase, detail=shown(k)))["status"] != READY]

    @property
    def ready(self) -> bool:
        return all(s.state == READY for s in self.slots.values())

    def start(self, key: str) -> None:
        with self._lock:
            slot = self.slots[key]
            slot.state, slot.loading_since, slot.unregistered = LOADING, time.monotonic(), False
            slot.model_failed, slot.failed_champion, slot.hint = False, None, None

    def succeed(self, key: str, backend: Any) -> None:
        with self._lock:
            slot = self.slots[key]
            slot.backend = backend
            slot.error = None
            slot.loaded_at = utc_now()
            slot.state = READY

    def fail(self, key: str, error: str, *, unregistered: bool = False) -> None:
        """``unregistered``: no version of the model has the champion alias (``/readyz``: not_registered)."""
        with self._lock:
            slot = self.slots[key]
            slot.backend = None
            slot.error = error
            slot.unregistered = unregistered
            slot.state = FAILED

    def backend(self, key: str) -> Any:
        """The ready backend of ``key``; :class:`NotReady` naming the state and error, or
        :class:`NotServed` when this deployment does not load that model at all."""
        slot = self.slots.get(key)
        if slot is None:
            raise NotServed(
                f"this deployment does not serve the {key} model; it loads {', '.join(self.slots) or 'none'} "
                "(serving.models in the config, $DEALERML_SERVE_MODELS or dealerml serve --models)"
            )
        if slot.state == READY:
            return slot.backend
        if slot.state == FAILED:
            raise NotReady(
                f"model {slot.name} (version {slot.version or '?'}) failed to load: {slot.error}"
            )
        raise NotReady(f"model {slot.name} is {slot.state}; retry when /readyz answers 200",
                       retry_after=LOADING_RETRY_AFTER_S)
