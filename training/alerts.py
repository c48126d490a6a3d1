"""Risk tiers and churn alerts: only accounts that newly crossed into high risk.

``assign_tiers`` turns probabilities into high / medium / low from the expected value of a
call and the call capacity (see ``training.churn_backtest.TierSettings``).

``record_alerts(scores, target, cutoff, ...)`` is the state machine. Three tables in the
target database (DuckDB file by default, PostgreSQL / SQLite by URL):

- ``<alerts>``: one row per alert (account_id, cutoff, probability, tier, reasons,
  expected_value, revenue_at_risk, model_version, created_at);
- ``<alerts>_state``: the last tier seen per account (account_id, tier, cutoff);
- ``<alerts>_runs``: one row per cutoff already processed (cutoff, run_at, n_alerts).

New tables type their dates: ``cutoff date``, ``created_at timestamp``, ``run_at timestamp``
(UTC, whole seconds), so a CRM can filter, index and join on them. SQLite has no date type:
there the columns are declared DATE / TIMESTAMP and hold ISO text (``YYYY-MM-DD``,
``YYYY-MM-DD HH:MM:SS``, what SQLite's date functions and Python's sqlite3 read). Tables
written by earlier versions keep text (``cutoff varchar(10)``, ``created_at`` /
``run_at varchar(32)``, ``YYYY-MM-DDTHH:MM:SS``): each column's type is read from the
existing table and its values are written in that type (a column of another type is
refused); a table is never altered (README "Churn alerts" has the SQL to migrate one).
``read_alerts`` and the service return the same text for both: ``cutoff`` ``YYYY-MM-DD``,
``created_at`` ``YYYY-MM-DDTHH:MM:SS``.

An account is alerted at cutoff ``c`` when its tier is ``high`` and its last recorded tier
is not ``high`` (absent, low or medium): a new crossing. Staying high alerts nothing;
dropping back and crossing again alerts again. Accounts missing from a run (no longer in
the population) leave the state, so a return followed by high risk alerts again.
Re-running a cutoff that is already in ``_runs`` adds nothing (idempotent); a cutoff
earlier than the latest processed one is refused. Everything - reading the state,
inserting alerts, replacing the state, logging the run and the optional webhook POST (last;
signed, with a stable delivery id and bounded retries: ``_post``) - happens inside one
transaction: if the delivery finally fails, nothing is recorded and the next run retries
(at-least-once delivery). Runs on one table are serialized (``open_db(serialize=)``):
a second run for the same date waits for the first, then finds the date in ``_runs``. An
existing table of one of these names without the expected columns is refused (DataError).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.errors import (
    AT_IN_CREDENTIALS,
    ConfigError,
    DataError,
    DealermlError,
    at_in_credentials,
    hide_url_passwords,
)
from training.scores import _check_ident, check_target, describe_target, open_db, target_errors

__all__ = ["assign_tiers", "record_alerts", "read_alerts", "alert_dates_as_text", "AlertRun", "TIERS"]

TIERS = ("low", "medium", "high")
_ALERT_COLUMNS = ["account_id", "cutoff", "probability", "tier", "reason_1", "reason_2", "reason_3",
                  "expected_value", "revenue_at_risk", "model_version", "created_at"]
# the date columns of the three tables and their type in new tables
_DATE_COLUMNS = {"cutoff": "date", "created_at": "timestamp", "run_at": "timestamp"}


def assign_tiers(
    probability, revenue_at_risk, tiers, groups=None
) -> tuple[np.ndarray, np.ndarray]:
    """(tier per account, expected value per account) under ``tiers`` (a TierSettings).

    ``expected_value = probability * revenue_at_risk * save_rate - contact_cost``.

    The capacity caps ``high``, and so the alerts (an alert is an account newly ``high``): at
    most ``capacity_per_run`` accounts per run, and with ``capacity_by`` (a column, e.g. the
    account manager; ``groups`` holds its value per account, missing values form one group)
    at most ``capacity_per_group`` per value, both by expected value. Accounts already high
    count against the caps too. ``capacity_by`` and ``capacity_per_group`` go together: one
    without the other is refused (ConfigError) rather than silently capping nothing.
    """
    _check_group_capacity(tiers, groups)
    p = np.asarray(probability, dtype=float)
    rev = np.nan_to_num(np.asarray(revenue_at_risk, dtype=float), nan=0.0)
    ev = p * rev * tiers.save_rate - tiers.contact_cost
    worth = ev > 0
    out = np.full(len(p), "low", dtype=object)
    out[worth & (p >= tiers.medium_probability)] = "medium"
    cand = np.flatnonzero(worth & (p >= tiers.high_probability))
    cand = cand[np.argsort(-ev[cand], kind="mergesort")]
    if tiers.capacity_per_group is not None and groups is not None:
        g = np.asarray(pd.Series(groups).astype("object").fillna("(none)"))
        seen: dict[Any, int] = {}
        keep = []
        for i in cand:
            if seen.get(g[i], 0) < tiers.capacity_per_group:
                seen[g[i]] = seen.get(g[i], 0) + 1
                keep.append(i)
        cand = np.asarray(keep, dtype=int)
    cand = cand[: tiers.capacity_per_run]
    out[cand] = "high"
    return out, ev


def _check_group_capacity(tiers, groups) -> None:
    """The per-group cap needs both its keys, and the groups when it is on. TierSettings refuses
    one key without the other when it is validated; this catches settings built without
    validation (``model_copy(update=...)``, ``model_construct``) before they cap nothing."""
    from training.churn_backtest import TierSettings

    by, per = getattr(tiers, "capacity_by", None), getattr(tiers, "capacity_per_group", None)
    problem = TierSettings.group_capacity_problem(by, per)
    if problem:
        raise ConfigError(problem)
    if by and groups is None:
        raise ConfigError(f"churn.tiers.capacity_by {by!r}: no {by} values were given to cap by")


class AlertRun(dict):
    """Result of one alerts run: ``new`` (DataFrame of alerts added), ``already_ran`` (bool)."""


def _hook_name(webhook: str) -> str:
    """The webhook URL for messages: credentials and query string (tokens) hidden."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(webhook)
    except ValueError:
        return "(the --webhook URL)"
    if not u.scheme or not u.netloc:  # not a URL ('crm.example.com/hook'): as given, no credentials or query
        shown = webhook.split("?", 1)[0]
        if "@" in shown:
            shown = "***@" + shown.rpartition("@")[2]
        return repr(shown + ("?***" if "?" in webhook else ""))
    cred = "***@" if (u.username or u.password) else ""
    host_port = u.netloc.rpartition("@")[2]  # as given, also with a port that is not a number
    return f"{u.scheme}://{cred}{host_port}{u.path}" + ("?***" if u.query else "")


# ------------------------------------------------------------------ webhook
WEBHOOK_SECRET_ENV = "DEALERML_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Dealerml-Signature"
TIMESTAMP_HEADER = "X-Dealerml-Timestamp"
DELIVERY_HEADER = "X-Dealerml-Delivery"
WEBHOOK_TIMEOUT_S = 10.0  # connecting, and each send and wait for the answer (an attempt in all: below)
WEBHOOK_TIMEOUT_ENV = "DEALERML_WEBHOOK_TIMEOUT_SECONDS"
WEBHOOK_ATTEMPT_S = 15.0
"""The most one POST attempt may take in all (connecting, sending, the whole answer), default of
``$DEALERML_WEBHOOK_TIMEOUT_SECONDS``. httpx's timeouts apply to each socket operation, so a receiver
(or proxy) trickling its answer a byte every few seconds held an attempt - and the alerts table's
lock - indefinitely. Receivers are built for GitHub's 10 s webhook limit and answer a small JSON POST
in well under a second; 15 s leaves room for a slow connect or TLS handshake on top of that, and keeps
a whole failed delivery to 3 x 15 + 1 + 4 = 50 s (65 s after two Retry-After: 10)."""
WEBHOOK_ATTEMPT_RANGE_S = (1.0, 120.0)
_WRITE_PIECE = 16 * 1024  # sends are bounded piece by piece, so a receiver that reads slowly is cut off too
WEBHOOK_BACKOFF_S = (1.0, 4.0)  # waits before the 2nd and 3rd attempt: 3 attempts in all
WEBHOOK_RETRY_AFTER_MAX_S = 10.0  # a longer Retry-After ends the run (nothing recorded) instead
# retried: the receiver was not reached, the connection broke or timed out, or it asked (429, 5xx)
_RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))


def webhook_secret() -> bytes | None:
    """The signing secret from ``$DEALERML_WEBHOOK_SECRET`` (never from a config file or the
    command line, and never printed); None when the variable is not set (POSTs go unsigned).
    Set but empty or blank is refused: it would sign with a key anyone can guess."""
    value = os.environ.get(WEBHOOK_SECRET_ENV)
    if value is None:
        return None
    if not value.strip():
        raise ConfigError(f"${WEBHOOK_SECRET_ENV} is set but empty: set it to the secret shared with the webhook "
                          "receiver (e.g. `openssl rand -hex 32`), or unset it to POST unsigned")
    return os.fsencode(value)  # the variable's bytes (UTF-8 text as UTF-8; raw bytes as they were set)


def webhook_timeout_seconds() -> float:
    """``$DEALERML_WEBHOOK_TIMEOUT_SECONDS``: the most one POST attempt may take in all (default 15,
    1..120; connecting and each wait for the answer stay bounded by 10 s, or by this when smaller).
    A bad value is a ConfigError naming the variable and the value, before the database is touched."""
    raw = os.environ.get(WEBHOOK_TIMEOUT_ENV, "").strip()
    if not raw:
        return WEBHOOK_ATTEMPT_S
    lo, hi = WEBHOOK_ATTEMPT_RANGE_S
    try:
        value = float(raw) if raw.isascii() else None  # float() also reads non-ASCII digits
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:  # nan and inf fail the range too
        raise ConfigError(f"${WEBHOOK_TIMEOUT_ENV} must be a number of seconds between {lo:g} and {hi:g} (the most "
                          f"one webhook POST attempt may take, answer included; default {WEBHOOK_ATTEMPT_S:g}); "
                          f"got {raw[:50]!r}")
    return value


def webhook_delivery_id(target: str | Path, table: str, cut_s: str) -> str:
    """The ``X-Dealerml-Delivery`` of the alerts of ``cut_s`` in ``target#table``: a UUID derived
    from them (a file by its absolute path, a URL without its password), so every attempt and
    every re-run of that cutoff after a failed delivery carries the same id, and a receiver can
    de-duplicate on it; other cutoffs, tables or databases get other ids."""
    t = str(target)
    where = hide_url_passwords(t) if "://" in t else str(Path(t).expanduser().resolve())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dealerml-alerts:{where}#{table}@{cut_s}"))


def webhook_signature(secret: bytes, timestamp: str, delivery: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` of ``"<timestamp>.<delivery>." + body``
    (the exact body bytes), what the receiver recomputes (README "Churn alerts")."""
    msg = f"{timestamp}.{delivery}.".encode("ascii") + body
    return "sha256=" + hmac.new(secret, msg, hashlib.sha256).hexdigest()


def _retry_after(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date); None when
    absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # delta-seconds are ASCII digits ('²'.isdigit() too)
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _answer(r) -> str:
    """The first 200 characters of the receiver's answer, on one line."""
    text = " ".join((r.text or "").split())
    return (text[:200] + "...") if len(text) > 200 else (text or "(empty body)")


class _AttemptClock:
    """The deadline of the attempt in progress, shared by the connections of one delivery: every
    name lookup, connect, TLS handshake, read and write waits at most the time left (``run``), so an
    attempt ends by its deadline whatever the receiver trickles, in the headers or the body, or however
    long the resolver takes (only a name lookup runs in a thread of its own: ``_resolve``)."""

    def __init__(self) -> None:
        self.until: float | None = None  # time.monotonic() deadline; None: only httpx's own timeouts
        self.hit = False  # the deadline cut the attempt short (rather than a 10 s wait)
        self.unresolved: tuple[str, float] | None = None  # (host, seconds waited) when resolving it timed out

    def start(self, seconds: float) -> None:
        self.until, self.hit, self.unresolved = time.monotonic() + seconds, False, None

    def stop(self) -> None:
        self.until = None

    def run(self, op, timeout: float | None, expired: str):
        """``op(timeout)`` with ``timeout`` cut to the time left; ``expired`` names the httpcore
        timeout raised when no time is left (httpx turns it into its own, like any timeout)."""
        import httpcore

        if self.until is None:
            return op(timeout)
        left = self.until - time.monotonic()
        if left <= 0:
            self.hit = True
            raise getattr(httpcore, expired)("the attempt's deadline passed")
        if timeout is not None and timeout < left:
            return op(timeout)
        try:
            return op(left)
        except httpcore.TimeoutException:
            self.hit = True
            raise


class _ClockedBackend:
    """An httpcore network backend whose connections are bounded by ``clock`` (``_AttemptClock``)."""

    def __init__(self, inner, clock: _AttemptClock) -> None:
        self._inner, self._clock = inner, clock

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        """Connect to ``host`` (the receiver's or the proxy's) within the time left. A name is resolved
        here first, in a thread waited for at most that time (``_resolve``): the inner backend's
        ``socket.create_connection`` resolves it with no timeout at all, so a resolver that hangs held
        the attempt - and the alerts table's lock - indefinitely. Its addresses are then tried in
        order, as ``create_connection`` does; TLS still verifies and sends the name (httpcore passes
        the origin's host to ``start_tls``), and the Host header is the URL's."""
        import httpcore

        def connect(address):
            return self._clock.run(lambda t: self._inner.connect_tcp(address, port, timeout=t,
                                                                     local_address=local_address,
                                                                     socket_options=socket_options),
                                   timeout, "ConnectTimeout")

        if _is_ip_literal(host):
            return _ClockedStream(connect(host), self._clock)
        addresses = self._clock.run(lambda t: _resolve(host, port, t, self._clock), timeout, "ConnectTimeout")
        error = None
        for address in addresses:
            try:
                return _ClockedStream(connect(address), self._clock)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, within the time left; the last error when none answers
        raise error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        stream = self._clock.run(lambda t: self._inner.connect_unix_socket(path, timeout=t,
                                                                           socket_options=socket_options),
                                 timeout, "ConnectTimeout")
        return _ClockedStream(stream, self._clock)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int, timeout: float | None, clock: _AttemptClock) -> list[str]:
    """The addresses of ``host`` (``socket.getaddrinfo``, as ``socket.create_connection`` asks for
    them), waiting at most ``timeout`` s. The lookup runs in a daemon thread: getaddrinfo cannot be
    interrupted, so a lookup that hangs is left to finish on its own (it holds no socket and no
    lock, and does not keep the process from exiting) while the attempt ends with a ConnectTimeout
    and ``clock.unresolved`` set. A name that does not resolve is a ConnectError, as before."""
    import socket
    import threading

    import httpcore

    done = threading.Event()
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()

    t0 = time.monotonic()
    threading.Thread(target=lookup, name=f"dealerml-webhook-resolve {host}", daemon=True).start()
    if not done.wait(timeout):
        clock.unresolved = (host, time.monotonic() - t0)
        raise httpcore.ConnectTimeout(f"resolving {host!r} took longer than {timeout:g} s")
    if "error" in box:
        if isinstance(box["error"], OSError):  # what httpcore makes of create_connection's gaierror
            raise httpcore.ConnectError(str(box["error"])) from box["error"]
        raise box["error"]
    out = []
    for family, _, _, _, sockaddr in box["infos"]:
        address = sockaddr[0]
        if family == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3] and "%" not in address:
            address = f"{address}%{sockaddr[3]}"  # a link-local address keeps its scope
        if address not in out:
            out.append(address)
    if not out:
        raise httpcore.ConnectError(f"{host!r} has no address")
    return out


class _ClockedStream:
    def __init__(self, inner, clock: _AttemptClock) -> None:
        self._inner, self._clock = inner, clock

    def read(self, max_bytes: int, timeout=None) -> bytes:
        return self._clock.run(lambda t: self._inner.read(max_bytes, timeout=t), timeout, "ReadTimeout")

    def write(self, buffer: bytes, timeout=None) -> None:
        for i in range(0, len(buffer), _WRITE_PIECE):
            piece = buffer[i:i + _WRITE_PIECE]
            self._clock.run(lambda t, piece=piece: self._inner.write(piece, timeout=t), timeout, "WriteTimeout")

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        stream = self._clock.run(lambda t: self._inner.start_tls(ssl_context, server_hostname=server_hostname,
                                                                 timeout=t), timeout, "ConnectTimeout")
        return _ClockedStream(stream, self._clock)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


def _clocked_client(timeout: float):
    """(an httpx.Client as before - no redirects, proxies from the environment - whose connections,
    direct or through a proxy, are bounded by the returned ``_AttemptClock``; None in its place when
    this httpx does not let its network backend be wrapped)."""
    import httpx

    client = httpx.Client(timeout=timeout, follow_redirects=False)
    clock = _AttemptClock()
    try:
        pools = [t._pool for t in (client._transport, *client._mounts.values()) if t is not None]
        backends = [pool._network_backend for pool in pools]
    except AttributeError:  # httpx / httpcore internals changed (tests/test_alerts_webhook.py would say so)
        return client, None
    for pool, inner in zip(pools, backends, strict=True):
        pool._network_backend = _ClockedBackend(inner, clock)
    return client, clock


def _bounded_post(client, clock: _AttemptClock | None, deadline: float, url: str, body: bytes, headers: dict):
    """``client.post`` within ``deadline`` s (the answer read in full) when there is a ``clock``."""
    if clock is None:
        return client.post(url, content=body, headers=headers)
    clock.start(deadline)
    try:
        return client.post(url, content=body, headers=headers)
    finally:
        clock.stop()


def _post(webhook: str, payload: dict, cut_s: str, *, delivery: str, secret: bytes | None,
          notify=None, timeout: float | None = None, backoff: tuple[float, ...] | None = None,
          deadline: float | None = None) -> int:
    """POST ``payload`` (JSON) to ``webhook``; return the number of attempts it took.

    Headers: ``Content-Type: application/json``, ``User-Agent: dealerml/<version>``,
    ``X-Dealerml-Delivery`` (``delivery``, the same on every attempt and re-run),
    ``X-Dealerml-Timestamp`` (Unix seconds of the attempt) and with a ``secret``
    ``X-Dealerml-Signature`` (``webhook_signature``, computed anew for each attempt); without one
    the POST goes unsigned and ``notify`` says so once.

    Up to ``len(backoff) + 1`` attempts (3: waits of 1 s and 4 s, or the receiver's
    ``Retry-After`` when longer, up to ``WEBHOOK_RETRY_AFTER_MAX_S``) when the receiver cannot be
    reached, the connection breaks or times out (``timeout`` s to connect and for each wait, and
    ``deadline`` s - ``$DEALERML_WEBHOOK_TIMEOUT_SECONDS``, default 15 - for the whole attempt, answer
    included: ``_AttemptClock``), or it answers 429 or 5xx. A
    redirect or another 4xx is final at once (its answer is quoted). Raises DealermlError when
    the delivery finally fails: the caller's transaction then records nothing."""
    import httpx

    notify = notify or (lambda msg: print(msg, file=sys.stderr))
    backoff = WEBHOOK_BACKOFF_S if backoff is None else tuple(backoff)
    deadline = webhook_timeout_seconds() if deadline is None else deadline
    timeout = WEBHOOK_TIMEOUT_S if timeout is None else timeout
    hook = _hook_name(webhook)
    retry = (f"; nothing was recorded for {cut_s}: run `dealerml alerts` again with --cutoff {cut_s} to "
             "retry (the receiver may get these alerts twice if it did process a POST; the repeat carries "
             f"the same {DELIVERY_HEADER}: {delivery})")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if secret is None:
        notify(f"webhook: ${WEBHOOK_SECRET_ENV} is not set, so the POST to {hook} is not signed (no "
               f"{SIGNATURE_HEADER}); set it to the secret the receiver verifies with")
    attempts = len(backoff) + 1
    client, clock = _clocked_client(timeout)
    if clock is None:  # then at least no wait is longer than the attempt's deadline
        timeout = min(timeout, deadline)
        client.timeout = httpx.Timeout(timeout)
        notify(f"webhook: this httpx does not let dealerml bound an attempt's total time; each attempt to {hook} "
               f"is bounded only by {timeout:g} s per wait (a receiver trickling its answer is not cut off)")
    with client:
        for attempt in range(1, attempts + 1):
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", "User-Agent": f"dealerml/{_version()}",
                       DELIVERY_HEADER: delivery, TIMESTAMP_HEADER: ts}
            if secret is not None:
                headers[SIGNATURE_HEADER] = webhook_signature(secret, ts, delivery, body)
            wait_asked = None
            try:
                r = _bounded_post(client, clock, deadline, webhook, body, headers)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if isinstance(exc, httpx.TimeoutException) and clock is not None and clock.unresolved:
                    host, _ = clock.unresolved
                    problem = (f"timed out resolving the host name {host!r} (no address within "
                               + (f"{deadline:g} s, ${WEBHOOK_TIMEOUT_ENV})" if clock.hit else f"{timeout:g} s)"))
                elif isinstance(exc, httpx.TimeoutException) and clock is not None and clock.hit:
                    problem = (f"timed out (no complete answer within {deadline:g} s, "
                               f"${WEBHOOK_TIMEOUT_ENV})")
                elif isinstance(exc, httpx.TimeoutException):  # its text is only 'timed out'
                    problem = f"timed out ({type(exc).__name__} after {timeout:g} s)"
                else:
                    problem = f"could not be reached: {exc or type(exc).__name__}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # an unsupported scheme, a bad proxy ...: final
                raise DealermlError(f"webhook {hook} could not be reached: {exc or type(exc).__name__}{retry}") from None
            else:
                if 200 <= r.status_code < 300:
                    return attempt
                if 300 <= r.status_code < 400:
                    raise DealermlError(f"webhook {hook} answered {r.status_code} (a redirect to "
                                        f"{_hook_name(r.headers.get('location', '?'))}; redirects are not followed: "
                                        f"give the final URL){retry}")
                if r.status_code not in _RETRY_STATUS:  # the receiver refused this POST: retrying will not help
                    raise DealermlError(f"webhook {hook} answered {r.status_code}: {_answer(r)} (not retried: a "
                                        f"4xx other than 429 means the receiver refused the POST){retry}")
                problem = f"answered {r.status_code}: {_answer(r)}"
                wait_asked = _retry_after(r.headers.get("retry-after"))
            if attempt == attempts:
                break
            wait = backoff[attempt - 1]
            if wait_asked is not None:
                if wait_asked > WEBHOOK_RETRY_AFTER_MAX_S:
                    raise DealermlError(f"webhook {hook} {problem} and asked to retry after {wait_asked:g} s, longer "
                                        f"than dealerml waits ({WEBHOOK_RETRY_AFTER_MAX_S:g} s; attempt {attempt} of "
                                        f"{attempts}: not retried now){retry}")
                wait = max(wait, wait_asked)
            notify(f"webhook {hook} {problem}; retrying in {wait:g} s (attempt {attempt + 1} of {attempts})")
            time.sleep(wait)
    raise DealermlError(f"webhook {hook} {problem} (attempt {attempts} of {attempts}; giving up){retry}")


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("dealerml")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"

def record_alerts(
    scores: pd.DataFrame,
    target: str | Path,
    cutoff,
    *,
    table: str = "churn_alerts",
    webhook: str | None = None,
    notify=None,
) -> AlertRun:
    """Run the state machine for ``cutoff`` on ``scores`` (see module docstring).

    ``scores`` needs ``account_id, probability, tier`` and may carry ``reason_1..3``,
    ``expected_value``, ``revenue_at_risk``, ``model_version``.

    ``webhook``: POST the new alerts there (``_post``: signed with ``$DEALERML_WEBHOOK_SECRET``
    when set, a stable ``X-Dealerml-Delivery``, bounded retries, each attempt within
    ``$DEALERML_WEBHOOK_TIMEOUT_SECONDS``) before the transaction commits;
    ``notify(message)`` gets the notes of the delivery (unsigned, retrying; stderr by default).
    The result then carries ``delivery`` (the id) and ``attempts`` (0 when nothing was posted).
    """
    missing = [c for c in ("account_id", "probability", "tier") if c not in scores.columns]
    if missing:
        raise ConfigError(f"scores for alerts are missing column(s) {missing}")
    bad = sorted(set(scores["tier"].astype(str)) - set(TIERS))
    if bad:
        raise ConfigError(f"tier must be one of {TIERS}; got {bad}")
    if scores["account_id"].duplicated().any():
        dup = scores.loc[scores["account_id"].duplicated(), "account_id"].head(3).tolist()
        raise ConfigError(f"scores hold duplicated account_id(s), e.g. {dup}")
    cut = pd.Timestamp(cutoff).normalize()
    cut_s = cut.strftime("%Y-%m-%d")
    if len(table or "") > 57:
        raise ConfigError(f"alerts table name {table!r} is too long: at most 57 characters (it also names "
                          f"{table}_state and {table}_runs, and database names stop at 63)")
    state_t, runs_t = f"{table}_state", f"{_check_ident(table)}_runs"
    check_target(target)
    hook = None
    if webhook:  # an empty secret or a bad $DEALERML_WEBHOOK_TIMEOUT_SECONDS is refused before the database is touched
        hook = {"url": webhook, "secret": webhook_secret(), "notify": notify, "deadline": webhook_timeout_seconds(),
                "delivery": webhook_delivery_id(target, table, cut_s)}
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        return _record(scores, target, cut_s, now, table, state_t, runs_t, hook)
    except target_errors() as exc:
        raise DataError(f"alerts for {cut_s} in {describe_target(target, table)}: {_short(exc)}; nothing was "
                        "recorded") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _record(scores, target, cut_s, now, table, state_t, runs_t, hook) -> AlertRun:
    # serialize: two runs at the same time (cron overlap, a retry) must not both alert; the
    # second waits for the first, then finds the cutoff in _runs (already_ran)
    with open_db(target, serialize=f"alerts:{table}") as db:
        kinds = _ensure_tables(db, target, table, state_t, runs_t)
        done = db.query(f'select cutoff from "{runs_t}"')
        done_cuts = sorted(_iso(c, date_only=True) for c in done["cutoff"])
        if cut_s in done_cuts:
            prev = db.query(f'select * from "{table}" where cutoff = :c',
                            {"c": _stored(cut_s, kinds[table]["cutoff"], db.kind)})
            return AlertRun(new=prev.iloc[0:0], already_ran=True, n_existing=len(prev), cutoff=cut_s,
                            delivery=hook["delivery"] if hook else None, attempts=0)
        if done_cuts and cut_s < done_cuts[-1]:
            raise ConfigError(
                f"alerts already ran for a later cutoff ({done_cuts[-1]}); refusing {cut_s} "
                "because it would rewrite the state of later runs"
            )
        state = db.query(f'select account_id, tier from "{state_t}"')
        last = dict(zip(state["account_id"].astype(str), state["tier"].astype(str), strict=True))
        s = scores.copy()
        s["account_id"] = s["account_id"].astype(str)
        was_high = s["account_id"].map(lambda a: last.get(a) == "high")
        new = s[(s["tier"] == "high") & ~was_high].copy()
        new = _alert_frame(new, cut_s, now)
        if len(new):
            db.insert_df(table, _as_stored(new, kinds[table], db.kind))
        db.execute(f'delete from "{state_t}"')
        st = pd.DataFrame({"account_id": s["account_id"], "tier": s["tier"].astype(str), "cutoff": cut_s})
        if len(st):
            db.insert_df(state_t, _as_stored(st, kinds[state_t], db.kind))
        run = pd.DataFrame({"cutoff": [cut_s], "run_at": [now.isoformat(timespec="seconds")],
                            "n_alerts": [int(len(new))]})
        db.insert_df(runs_t, _as_stored(run, kinds[runs_t], db.kind))
        attempts = 0
        # last, inside the transaction: a delivery that finally fails raises, open_db rolls back the
        # alerts, the state and the run above, and nothing is recorded (the next run retries)
        if hook and len(new):
            attempts = _post(hook["url"], {"cutoff": cut_s, "alerts": _json_records(new)},
                             cut_s, delivery=hook["delivery"], secret=hook["secret"], notify=hook["notify"],
                             deadline=hook["deadline"])
    return AlertRun(new=new, already_ran=False, n_existing=0, cutoff=cut_s,
                    delivery=hook["delivery"] if hook else None, attempts=attempts)


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts with the values the table holds: every float in full (to_json
    rounded to 10 significant digits, so the webhook's probability 0.9972972592 was not the table's
    or GET /churn_alerts' 0.9972972591998471, and an amount under 5e-11 became 0.0); NaN / inf as null."""
    def plain(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, (float, np.floating)):
            return float(v) if np.isfinite(v) else None
        if isinstance(v, (np.integer, np.bool_)):
            return v.item()
        return None if pd.isna(v) else v
    return [{c: plain(v) for c, v in zip(frame.columns, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)]


def _alert_frame(new: pd.DataFrame, cut_s: str, now: datetime) -> pd.DataFrame:
    """The alert rows as text dates (what the webhook posts and ``read_alerts`` returns)."""
    out = pd.DataFrame({"account_id": new["account_id"].astype(str).to_numpy()})
    out["cutoff"] = cut_s
    out["probability"] = new["probability"].astype(float).to_numpy()
    out["tier"] = "high"
    for c in ("reason_1", "reason_2", "reason_3", "model_version"):
        out[c] = new[c].astype("object").where(new[c].notna(), None).to_numpy() if c in new else None
        out[c] = out[c].astype("object")
    for c in ("expected_value", "revenue_at_risk"):
        out[c] = new[c].astype(float).to_numpy() if c in new else np.nan
    out["created_at"] = now.isoformat(timespec="seconds")
    return out[_ALERT_COLUMNS]


# ------------------------------------------------------------------ date columns
def _stored(iso: str, kind: str, db_kind: str) -> Any:
    """``iso`` (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``, UTC) as a column of ``kind`` holds it:
    text as is (tables of earlier versions); SQLite DATE / TIMESTAMP as SQLite's ISO text; else
    a date or datetime (timezone-aware UTC for ``timestamp with time zone``)."""
    if kind == "text":
        return iso
    ts = pd.Timestamp(iso)
    if db_kind == "sqlite":
        return ts.strftime("%Y-%m-%d") if kind == "date" else ts.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "date":
        return ts.date()
    return (ts.tz_localize("UTC") if kind == "timestamptz" else ts).to_pydatetime()


def _as_stored(frame: pd.DataFrame, kinds: dict[str, str], db_kind: str) -> pd.DataFrame:
    """A copy of ``frame`` with its date columns in the representation of the table's columns."""
    out = frame.copy()
    for col in _DATE_COLUMNS:
        if col in out.columns:
            out[col] = pd.Series([_stored(v, kinds[col], db_kind) for v in out[col]], index=out.index, dtype=object)
    return out


def _iso(v: Any, *, date_only: bool) -> str | None:
    """A stored date as text: ``YYYY-MM-DD`` (``date_only``) or ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, str):  # text columns (earlier versions) and SQLite
        if date_only:
            return v[:10]
        return f"{v[:10]}T{v[11:]}" if len(v) > 10 and v[10] == " " else v
    ts = pd.Timestamp(v)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if date_only:
        return ts.strftime("%Y-%m-%d")
    return ts.isoformat(timespec="microseconds" if ts.microsecond else "seconds")


def alert_dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a frame read from an alerts table with its dates as text, whatever the column
    types (typed or text from earlier versions): ``cutoff`` ``YYYY-MM-DD``, ``created_at`` and
    ``run_at`` ``YYYY-MM-DDTHH:MM:SS`` (UTC), None when null."""
    out = frame.copy()
    for col in _DATE_COLUMNS:
        if col in out.columns:
            out[col] = pd.Series([_iso(v, date_only=col == "cutoff") for v in out[col]], index=out.index,
                                 dtype=object)
    return out


def _date_kind(type_name: str) -> str:
    """``date``, ``timestamp``, ``timestamptz``, ``text`` or ``other`` for a column type as the
    database names it (DuckDB ``DATE``, PostgreSQL ``timestamp without time zone``, SQLite's
    declared ``VARCHAR(10)`` ...)."""
    t = type_name.strip().lower()
    if t.startswith("timestamp") and ("with time zone" in t and "without" not in t or t.startswith("timestamptz")):
        return "timestamptz"
    if t.startswith(("timestamp", "datetime")):
        return "timestamp"
    if t == "date":
        return "date"
    if t == "" or any(w in t for w in ("char", "text", "string", "clob")):
        return "text"
    return "other"


def _ensure_tables(db, target, table: str, state_t: str, runs_t: str) -> dict[str, dict[str, str]]:
    """Create the three tables, or check that existing ones have the columns this version writes.

    Returns, per table, the kind of each of its date columns (``_date_kind``): new tables get
    the types of ``_DATE_COLUMNS``; existing ones keep theirs (text from earlier versions)."""
    ddl = {
        table: ("account_id text, cutoff date, probability double precision, tier varchar(8), "
                "reason_1 text, reason_2 text, reason_3 text, expected_value double precision, "
                "revenue_at_risk double precision, model_version text, created_at timestamp"),
        state_t: "account_id text primary key, tier varchar(8), cutoff date",
        runs_t: "cutoff date primary key, run_at timestamp, n_alerts integer",
    }
    kinds: dict[str, dict[str, str]] = {}
    for name, cols in ddl.items():
        want = [c.split()[0] for c in cols.split(", ")]
        if not db.table_exists(name):
            db.execute(f'create table "{name}" ({cols})')
            kinds[name] = {c: _DATE_COLUMNS[c] for c in want if c in _DATE_COLUMNS}
            continue
        have = _columns(db, name)
        missing = [c for c in want if c not in have]
        if missing:
            raise DataError(
                f"{describe_target(target, name)} exists but is not a dealerml alerts table: it lacks column(s) "
                f"{missing} (has {list(have)[:12]}; expected {want}). It may belong to another tool or an older "
                f"dealerml: rename or drop it, or set churn.alerts_table to another name")
        kinds[name] = {c: _date_kind(have[c]) for c in want if c in _DATE_COLUMNS}
        bad = {c: have[c] for c, k in kinds[name].items() if k == "other"}
        if bad:
            raise DataError(
                f"{describe_target(target, name)}: column(s) {bad} hold neither dates nor text; dealerml writes "
                f"{ {c: _DATE_COLUMNS[c] for c in bad} } (or text YYYY-MM-DD... in tables of earlier versions): "
                "change the column type, or set churn.alerts_table to another name")
    return kinds


def _columns(db, name: str) -> dict[str, str]:
    """Column name -> type name of ``name``, in table order."""
    if db.kind == "duckdb":
        # DuckDB names are case-insensitive (Database.table_exists): churn_alerts is Churn_Alerts's table
        cols = db.query("select column_name, data_type from information_schema.columns where "
                        "lower(table_name) = lower(:t) order by ordinal_position", {"t": name})
        return {str(c): str(t) for c, t in zip(cols["column_name"], cols["data_type"], strict=True)}
    from sqlalchemy import inspect

    out = {}
    for c in inspect(db._conn).get_columns(name):
        try:
            out[c["name"]] = c["type"].compile(dialect=db._conn.dialect)
        except Exception:  # noqa: BLE001 - a type the dialect cannot print: not a date
            out[c["name"]] = type(c["type"]).__name__
    return out


def read_alerts(target: str | Path, *, table: str = "churn_alerts", since=None,
                timeout: float | None = None) -> pd.DataFrame:
    """Alerts with ``cutoff >= since`` (all when None), oldest first; dates as text
    (``alert_dates_as_text``), the same for typed tables and text ones of earlier versions.

    ``timeout`` (seconds; the service passes ``$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS``): the most the
    read waits for the database, which then raises its own error (a target error): a SQLite / DuckDB
    file locked by a writer is waited for that long (30 s without it); on PostgreSQL it is the
    statement timeout of the read (``SET LOCAL``, so a pooler such as PgBouncer takes it too; none
    without it: a table locked by another session held the read for as long as the lock) and the
    connect timeout unless the URL sets one (at most ``training.scores.CONNECT_TIMEOUT_S``; libpq
    counts whole seconds, at least 2)."""
    if "://" not in str(target) and not Path(target).exists():
        return pd.DataFrame(columns=_ALERT_COLUMNS)
    if at_in_credentials(str(target)):  # else the connect error names the password's tail as the host
        raise ConfigError(f"alerts table {describe_target(target, table)}: not a valid database URL ({AT_IN_CREDENTIALS})")
    kw = {} if timeout is None else {"lock_timeout": float(timeout)}
    with open_db(_with_connect_timeout(target, timeout), read_only=True, **kw) as db:
        if timeout is not None and db.kind == "sqlalchemy" and db._conn.dialect.name == "postgresql":
            db.execute(f"set local statement_timeout = {max(1, int(float(timeout) * 1000))}")
        if not db.table_exists(table):
            return pd.DataFrame(columns=_ALERT_COLUMNS)
        if since is None:
            return alert_dates_as_text(db.query(f'select * from "{table}" order by cutoff, account_id'))
        s = pd.Timestamp(since).strftime("%Y-%m-%d")
        kind = _date_kind(_columns(db, table).get("cutoff", ""))
        return alert_dates_as_text(db.query(f'select * from "{table}" where cutoff >= :s order by cutoff, account_id',
                                            {"s": _stored(s, kind, db.kind)}))


def _with_connect_timeout(target: str | Path, timeout: float | None) -> str | Path:
    """A PostgreSQL URL (psycopg / psycopg2) without ``connect_timeout``, given one of ``timeout`` s
    (whole seconds, 2 .. ``CONNECT_TIMEOUT_S``); anything else as is."""
    if timeout is None or "://" not in str(target):
        return target
    import math

    from sqlalchemy.engine import make_url

    from training import scores

    try:
        u = make_url(str(target))
    except Exception:  # noqa: BLE001 - open_db names a URL that does not parse
        return target
    if (u.get_backend_name() != "postgresql" or u.get_driver_name() not in ("psycopg", "psycopg2")
            or "connect_timeout" in u.query):
        return target
    seconds = min(scores.CONNECT_TIMEOUT_S, max(2, math.ceil(float(timeout))))
    return u.update_query_dict({"connect_timeout": str(seconds)}).render_as_string(hide_password=False)
