"""Webhook delivery of new churn alerts: one signed JSON POST per run, with a stable delivery
id, bounded retries and a deadline per attempt (``_post``).

Apart from the alert store (``training._alerts_store``) because delivery is HTTP, not SQL: the
store calls ``_post`` last inside its transaction, so a delivery that finally fails rolls back
the run (at-least-once delivery). Everything that bounds an attempt in time lives here: the
httpcore backend wrapper that cuts name lookups, connects, reads and writes to the attempt's
deadline (``_AttemptClock``, ``_ClockedBackend``, ``_ClockedStream``, ``_resolve``).

Private to ``training.alerts``, which re-exports the public names. ``_post`` reads the timing
constants (``WEBHOOK_TIMEOUT_S``, ``WEBHOOK_BACKOFF_S``, ``WEBHOOK_RETRY_AFTER_MAX_S``) from this
module when it runs: a test that shortens them patches them here.
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

from training.errors import ConfigError, DealermlError, hide_url_passwords


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
