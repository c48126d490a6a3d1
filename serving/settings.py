"""The ``serving:`` section of an experiment config (all keys optional).

::

    serving:
      models: [demand, churn, dealers]   # which champions this deployment loads
      churn_cutoff: 2024-07-01           # as-of date of the served churn scores
      dealers_cutoff: 2024-07-01         # as-of date of the served dealer ranking
      alerts_target: data/dealerml.duckdb  # where `dealerml alerts` writes (file or SQLAlchemy URL)
      max_body_bytes: 4194304            # a bigger request body is answered 413 (default 4 MiB)
      body_timeout_seconds: 60           # a body not received in full by then is answered 408

Cutoffs default to the day after the last order in the book (features read rows before it).
``$DEALERML_SERVE_MODELS`` overrides ``models``; ``$DEALERML_SERVE_MAX_BODY_BYTES`` and
``$DEALERML_SERVE_BODY_TIMEOUT_SECONDS`` override the two request limits (:func:`request_limits`);
``$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS`` and ``$DEALERML_SERVE_ALERTS_READERS`` bound the reads of
the alerts database (:func:`alerts_limits`); ``$DEALERML_SERVE_KEY_FAILURES`` and
``$DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS`` throttle an address that sends wrong API keys
(:func:`key_failure_limits`); ``$DEALERML_SS_CACHE_ENTRIES`` bounds the demand backend's safety-stock
sizing cache (:func:`sizing_cache_entries`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from training._config_numbers import NoBoolNumbers
from training.errors import ConfigError, refuse_at_in_credentials

__all__ = ["ServingSettings", "serving_settings", "alerts_target", "RequestLimits", "request_limits",
           "DEFAULT_MAX_BODY_BYTES", "DEFAULT_BODY_TIMEOUT_SECONDS", "MAX_BODY_ENV", "BODY_TIMEOUT_ENV",
           "WORKERS_ENV", "serve_workers", "AlertsLimits", "alerts_limits", "ALERTS_TIMEOUT_ENV",
           "ALERTS_READERS_ENV", "DEFAULT_ALERTS_TIMEOUT_SECONDS", "DEFAULT_ALERTS_READERS", "KeyFailureLimits",
           "key_failure_limits", "KEY_FAILURES_ENV", "KEY_FAILURES_WINDOW_ENV", "DEFAULT_KEY_FAILURES",
           "DEFAULT_KEY_FAILURES_WINDOW_SECONDS", "sizing_cache_entries", "CACHE_ENTRIES_ENV",
           "DEFAULT_CACHE_ENTRIES"]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
"""4 MiB. The biggest request the schemas take with ordinary ids (20,000 plan rows of ~60 bytes,
5,000 ids of ~15 characters per list) is ~1.5 MB; a body over the limit is 413 before it is read
(Content-Length) or as soon as it passes the limit (chunked), instead of being buffered whole and
parsed on the event loop (a 50 MB body cost ~600 MB of server memory and ~1 s of a blocked loop)."""
MIN_BODY_BYTES, MAX_BODY_BYTES = 1024, 1024**3
DEFAULT_BODY_TIMEOUT_SECONDS = 60.0
"""Below the service's 120 s traffic timeout, so a stalled upload is a 408, not BentoML's 504."""
MAX_BODY_ENV = "DEALERML_SERVE_MAX_BODY_BYTES"
BODY_TIMEOUT_ENV = "DEALERML_SERVE_BODY_TIMEOUT_SECONDS"
WORKERS_ENV = "DEALERML_SERVE_WORKERS"
MAX_WORKERS = 64
ALERTS_TIMEOUT_ENV = "DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS"
ALERTS_READERS_ENV = "DEALERML_SERVE_ALERTS_READERS"
DEFAULT_ALERTS_TIMEOUT_SECONDS = 5.0
"""The most a GET /churn_alerts waits for the alerts database: PostgreSQL statement timeout (and connect
timeout, libpq's at least 2 s, unless the URL sets one), SQLite busy timeout, and how long a request
waits for the read another request has in progress. A CRM poll of a table of a few thousand rows
takes milliseconds; a database that needs more is answered 503 (retry later) instead of holding a
worker thread (PostgreSQL had no statement timeout at all, the connect timeout was 10 s)."""
DEFAULT_ALERTS_READERS = 4
"""GET /churn_alerts that may wait for the alerts database at once (per worker); more are answered
503 at once instead of taking a thread, a slot of BentoML's max_concurrency and a connection."""
MAX_ALERTS_READERS = 64
KEY_FAILURES_ENV = "DEALERML_SERVE_KEY_FAILURES"
KEY_FAILURES_WINDOW_ENV = "DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS"
DEFAULT_KEY_FAILURES = 20
"""Wrong API keys one client address may send per window (per worker process); then every request of it
that needs a key is answered 429 until the window ends, without the key being checked. 20 a minute is far
above what a client with a mistyped key sends before someone looks, and caps guessing at 28,800 keys a day
per address (a random 8-character key of letters and digits has 2e14 values)."""
DEFAULT_KEY_FAILURES_WINDOW_SECONDS = 60
MAX_KEY_FAILURES = 100_000
MAX_KEY_FAILURES_WINDOW_SECONDS = 86_400
CACHE_ENTRIES_ENV = "DEALERML_SS_CACHE_ENTRIES"
DEFAULT_CACHE_ENTRIES = 50_000
"""Sizings a demand backend keeps by default: about 0.6 kB each, so ~30 MB per worker when full
(``$DEALERML_SS_CACHE_ENTRIES``; 0 turns the cache off)."""


class ServingSettings(NoBoolNumbers):  # body_timeout_seconds: yes was 1 s
    model_config = ConfigDict(extra="forbid")

    models: list[Literal["demand", "churn", "dealers"]] | None = None
    churn_cutoff: dt.date | None = None
    dealers_cutoff: dt.date | None = None
    alerts_target: str | None = None
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=MIN_BODY_BYTES, le=MAX_BODY_BYTES, strict=True)
    body_timeout_seconds: float = Field(DEFAULT_BODY_TIMEOUT_SECONDS, gt=0, le=3600, allow_inf_nan=False)

    @field_validator("alerts_target")
    @classmethod
    def _alerts_url(cls, v: str | None) -> str | None:
        # a password 'pa@ss' ('crm:${PGPASSWORD}@db'): SQLAlchemy reads host 'ss@db', so every GET
        # /churn_alerts logged the password's tail as the host it could not resolve
        v = refuse_at_in_credentials(v, "SQLAlchemy URL")
        if v is not None:  # a .csv / an unknown suffix: refused here, not at the first GET /churn_alerts (503)
            from training._scores_targets import _kind

            try:
                _kind(v, "the target", database=True, why="alerts keep their state in a database; ")
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return v


def serving_settings(cfg: Any) -> ServingSettings:
    """Validate ``cfg.serving``; ConfigError listing every bad key and value at once, each under
    its full key path (an unknown key says which was meant), as the other sections do."""
    section = dict(getattr(cfg, "serving", None) or {})
    try:
        return ServingSettings(**section)
    except ValidationError as exc:  # every bad key at once (training.config.section_errors)
        from training.config import section_errors

        src = getattr(cfg, "config_path", None) or "config"
        raise ConfigError(section_errors(exc, "serving", ServingSettings, src=src)) from None


def alerts_target(cfg: Any) -> str:
    """Where ``dealerml alerts`` writes and ``/churn_alerts`` reads the alerts table:
    ``serving.alerts_target``, else ``$DEALERML_HOME/dealerml.duckdb`` (one rule for both)."""
    from training import paths

    return str(serving_settings(cfg).alerts_target or paths.scores_db())


@dataclass(frozen=True)
class RequestLimits:
    """What the service accepts of a request body, and where each value came from (for messages)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
    max_body_source: str = "default"
    body_timeout_source: str = "default"


def _env_number(env: dict[str, str], name: str, kind: type, lo: float, hi: float, what: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw.replace("_", ""))
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi or value != value:
        # a count as written (1,073,741,824; ':g' showed 1.07374e+09), seconds as ':g' (0.1, 300)
        shown = "{:,}" if kind is int else "{:g}"
        raise ConfigError(f"${name} must be {what} between {shown.format(lo)} and {shown.format(hi)}; "
                          f"got {raw[:50]!r}")
    return value


def _whole(env: dict[str, str], name: str, lo: int, hi: int, what: str) -> int | None:
    """``$name`` as a whole number ``lo..hi`` (ASCII digits only), None when unset or blank; else a
    ConfigError "``$name`` must be ``what``; got ..."."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not lo <= int(raw) <= hi:
        raise ConfigError(f"${name} must be {what}; got {raw[:50]!r}")
    return int(raw)


def request_limits(cfg_file: str | None = None, environ: dict[str, str] | None = None) -> RequestLimits:
    """The body limits of the service: ``$DEALERML_SERVE_MAX_BODY_BYTES`` /
    ``$DEALERML_SERVE_BODY_TIMEOUT_SECONDS``, else ``serving.max_body_bytes`` /
    ``serving.body_timeout_seconds`` of the config ``cfg_file``, else the defaults.

    A config that cannot be read gives the defaults (the loader reports it and keeps the service
    unready); a bad value in a readable config or in the environment is a ConfigError naming it."""
    env = os.environ if environ is None else environ
    size_src, time_src = "default", "default"
    settings = ServingSettings()
    if cfg_file:
        try:
            from training.config import load_config

            cfg = load_config(cfg_file)
        except Exception:  # noqa: BLE001 - reported by load_all with the order book
            cfg = None
        if cfg is not None:
            settings = serving_settings(cfg)
            section = dict(getattr(cfg, "serving", None) or {})
            size_src = "serving.max_body_bytes" if "max_body_bytes" in section else size_src
            time_src = "serving.body_timeout_seconds" if "body_timeout_seconds" in section else time_src
    size = _env_number(env, MAX_BODY_ENV, int, MIN_BODY_BYTES, MAX_BODY_BYTES, "a whole number of bytes")
    seconds = _env_number(env, BODY_TIMEOUT_ENV, float, 0.001, 3600, "a number of seconds")
    return RequestLimits(
        max_body_bytes=int(size) if size is not None else settings.max_body_bytes,
        body_timeout_seconds=float(seconds) if seconds is not None else settings.body_timeout_seconds,
        max_body_source=f"${MAX_BODY_ENV}" if size is not None else size_src,
        body_timeout_source=f"${BODY_TIMEOUT_ENV}" if seconds is not None else time_src,
    )


def serve_workers(environ: dict[str, str] | None = None) -> int:
    """``$DEALERML_SERVE_WORKERS``: worker processes of the service (default 1). A value that is not a
    whole number 1..64 is a ConfigError naming the variable (``two`` was Python's int() traceback at
    import, ``0`` a page of BentoML's schema validation)."""
    env = os.environ if environ is None else environ
    workers = _whole(env, WORKERS_ENV, 1, MAX_WORKERS,
                     f"a whole number of worker processes between 1 and {MAX_WORKERS} (each loads the champions)")
    return 1 if workers is None else workers


@dataclass(frozen=True)
class AlertsLimits:
    """How long a GET /churn_alerts may wait for the alerts database and how many may wait at once."""

    timeout_seconds: float = DEFAULT_ALERTS_TIMEOUT_SECONDS
    readers: int = DEFAULT_ALERTS_READERS


def alerts_limits(environ: dict[str, str] | None = None) -> AlertsLimits:
    """``$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS`` (default 5, 0.1..300) and ``$DEALERML_SERVE_ALERTS_READERS``
    (default 4, a whole number 1..64). A bad value is a ConfigError naming the variable (the service stays
    unready and says so, as for the other settings)."""
    env = os.environ if environ is None else environ
    seconds = _env_number(env, ALERTS_TIMEOUT_ENV, float, 0.1, 300, "a number of seconds")
    readers = _whole(env, ALERTS_READERS_ENV, 1, MAX_ALERTS_READERS,
                     f"a whole number of concurrent alerts reads between 1 and {MAX_ALERTS_READERS}")
    return AlertsLimits(timeout_seconds=DEFAULT_ALERTS_TIMEOUT_SECONDS if seconds is None else float(seconds),
                        readers=DEFAULT_ALERTS_READERS if readers is None else readers)


@dataclass(frozen=True)
class KeyFailureLimits:
    """How many wrong API keys an address may send per window before it is answered 429 (0: never)."""

    failures: int = DEFAULT_KEY_FAILURES
    window_seconds: int = DEFAULT_KEY_FAILURES_WINDOW_SECONDS


def key_failure_limits(environ: dict[str, str] | None = None) -> KeyFailureLimits:
    """``$DEALERML_SERVE_KEY_FAILURES`` (default 20, 0 = no throttling, up to 100,000) wrong API keys per client
    address within ``$DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS`` (default 60, 1..86,400). A bad value is a
    ConfigError naming the variable and the value (the service uses the defaults, stays unready and says why;
    ``dealerml serve`` refuses to start)."""
    env = os.environ if environ is None else environ
    failures = _whole(env, KEY_FAILURES_ENV, 0, MAX_KEY_FAILURES,
                      f"a whole number between 0 (no throttling) and {MAX_KEY_FAILURES:,} (wrong API keys one client "
                      "address may send per window)")
    window = _whole(env, KEY_FAILURES_WINDOW_ENV, 1, MAX_KEY_FAILURES_WINDOW_SECONDS,
                    f"a whole number between 1 and {MAX_KEY_FAILURES_WINDOW_SECONDS:,} (seconds)")
    return KeyFailureLimits(failures=DEFAULT_KEY_FAILURES if failures is None else failures,
                            window_seconds=DEFAULT_KEY_FAILURES_WINDOW_SECONDS if window is None else window)


def sizing_cache_entries(environ: dict[str, str] | None = None) -> int:
    """``$DEALERML_SS_CACHE_ENTRIES``: how many safety-stock sizings the demand backend keeps (default
    :data:`DEFAULT_CACHE_ENTRIES`, 0 = no cache). Kept here, not in ``serving.demand`` (~2 s to import),
    so ``dealerml serve`` checks it before it starts the service; a bad value is a ValueError naming the
    variable (the demand slot fails to load and the service stays unready, saying why)."""
    env = os.environ if environ is None else environ
    value = env.get(CACHE_ENTRIES_ENV)
    if value is None or not value.strip():
        return DEFAULT_CACHE_ENTRIES
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"{CACHE_ENTRIES_ENV} must be a whole number of entries >= 0 (0 turns the cache off); "
                         f"got {value!r}")
    return n
