"""API keys with scopes, checked by a small ASGI middleware in front of the service.

Keys come from ``$DEALERML_API_KEYS`` (``key1:forecast,churn;key2:*``) or, when that is not
set, from the file named by ``$DEALERML_API_KEYS_FILE`` (same syntax; entries separated by
``;`` or new lines, ``#`` starts a comment). Scopes: ``forecast``, ``churn``, ``dealers``,
``admin``; ``*`` or ``admin`` grant every scope.

Presented keys (header ``X-API-Key``, or ``Authorization: Bearer <key>``) are compared with
``hmac.compare_digest`` against every configured key. A request carrying more than one (``X-API-Key``
or ``Authorization`` sent twice, or both headers with different keys) is a 400 naming the header, and
none of its keys is checked or counted as wrong (:func:`ambiguous_key`). Probes, metrics and the OpenAPI
document are open; every other path needs a valid key (401) and, for data endpoints, the
endpoint's scope (403). On an open path a key is checked but never refused (``/readyz`` shows the
reasons it is not ready - errors, paths, addresses - only to a request with a valid key, for the models its
scopes cover). Neither keys
nor request bodies are ever logged, and a 401 never echoes what was sent. The BentoML UI page
(``/``) is served with a Content-Security-Policy that keeps its third-party script (Google Tag
Manager) from loading next to a pasted key.

Wrong keys are throttled per client address (:class:`KeyFailureLimiter`): after
``$DEALERML_SERVE_KEY_FAILURES`` (default 20) wrong keys within
``$DEALERML_SERVE_KEY_FAILURES_WINDOW_SECONDS`` (default 60), every request of that address that needs a
key is answered 429 with ``Retry-After`` until the window ends, without its key being checked, and
``/readyz`` answers it as to a request without a key. The address is the ASGI client host: under
``bentoml serve`` that is uvicorn's, which takes ``X-Forwarded-For`` only from the peers named by
``$FORWARDED_ALLOW_IPS`` (default ``127.0.0.1,::1``). IPv6 addresses count per /64.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SCOPES",
    "ROUTE_SCOPES",
    "OPEN_PATHS",
    "KeyRing",
    "parse_keys",
    "load_keyring",
    "APIKeyMiddleware",
    "KEY_SCOPES",
    "presented_key",
    "ambiguous_key",
    "MODEL_SCOPES",
    "covers_model",
    "KeyFailureLimiter",
    "client_address",
    "MAX_TRACKED_ADDRESSES",
]

logger = logging.getLogger("dealerml.serving.auth")

SCOPES = ("forecast", "churn", "dealers", "admin")

# Data endpoint -> scope needed. ``None``: any valid key.
ROUTE_SCOPES: dict[str, str | None] = {
    "/forecast": "forecast",
    "/safety_stock": "forecast",
    "/churn_scores": "churn",
    "/churn_alerts": "churn",
    "/dealer_scores": "dealers",
    "/model_info": None,
}

# Served model (serving.loader.MODEL_NAMES key) -> the scope whose endpoints it answers: /model_info shows a
# key the models its scopes cover in full, the others by name and status only (admin: everything).
MODEL_SCOPES: dict[str, str] = {"demand": "forecast", "churn": "churn", "dealers": "dealers"}


def covers_model(scopes: frozenset[str], model: str) -> bool:
    """Whether a key with ``scopes`` sees served model ``model`` in full (/model_info, /readyz): the models
    of its scopes (``MODEL_SCOPES``), every one for ``admin``."""
    return "admin" in scopes or MODEL_SCOPES.get(model) in scopes

OPEN_PATHS = frozenset(
    {"/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json", "/"}
)
_OPEN_PREFIXES = ("/static_content/", "/assets/")
_READYZ = "/readyz"  # the one open path whose answer depends on the key (probes, /metrics: no key work)
# HTTP authentication schemes (IANA registry and common ones) a 401 may name back to the client;
# anything else in the scheme's place is most likely the key itself ("Authorization: <key>")
_KNOWN_SCHEMES = frozenset({"basic", "digest", "token", "apikey", "api-key", "key", "negotiate", "ntlm", "hoba",
                            "mutual", "dpop", "gnap", "privatetoken", "scram-sha-1", "scram-sha-256", "vapid",
                            "aws4-hmac-sha256", "jwt", "oauth"})


# The BentoML UI page ("/") loads Google Tag Manager (www.googletagmanager.com) into the page
# where an operator pastes an API key to try the endpoints: the browser is told to run scripts,
# load frames and send requests from this service only.
UI_CSP = (b"default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
          b"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-src 'none'; object-src 'none'; "
          b"base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


class KeyConfigError(ValueError):
    """The API key configuration is malformed (names the entry, never the key)."""


@dataclass(frozen=True)
class KeyRing:
    """The configured keys and their scopes."""

    entries: tuple[tuple[bytes, frozenset[str]], ...]
    source: str

    def __len__(self) -> int:
        return len(self.entries)

    def scopes_for(self, presented: str | bytes | None) -> frozenset[str] | None:
        """Scopes of ``presented`` or ``None`` if it matches no key (constant-time compare).

        Every configured key is compared, so the time taken does not say which one matched.
        """
        if not presented:
            return None
        if isinstance(presented, str):
            presented = presented.encode("utf-8", "surrogateescape")
        found: frozenset[str] | None = None
        for key, scopes in self.entries:
            if hmac.compare_digest(key, presented):
                found = scopes
        return found


def parse_keys(spec: str, *, source: str = "DEALERML_API_KEYS") -> KeyRing:
    """Parse ``key1:forecast,churn;key2:*`` (``;`` or new lines between entries)."""
    entries: list[tuple[bytes, frozenset[str]]] = []
    raw_entries = [
        line.split("#", 1)[0].strip()
        for chunk in spec.splitlines()
        for line in chunk.split(";")
    ]
    for index, entry in enumerate((e for e in raw_entries if e), start=1):
        key, sep, scope_text = entry.partition(":")
        key = key.strip()
        if not sep or not key:
            raise KeyConfigError(
                f"{source}: entry {index} must look like KEY:scope1,scope2 (or KEY:*); "
                "got an entry without ':' or without a key"
            )
        if len(key) < 8:
            raise KeyConfigError(
                f"{source}: entry {index}: keys must be at least 8 characters; got {len(key)}"
            )
        scopes = {s.strip() for s in scope_text.split(",") if s.strip()}
        if not scopes:
            raise KeyConfigError(f"{source}: entry {index} has no scopes (use * for all)")
        if "*" in scopes or "admin" in scopes:
            scopes = set(SCOPES)
        unknown = sorted(scopes - set(SCOPES))
        if unknown:
            raise KeyConfigError(
                f"{source}: entry {index} has unknown scope(s) {unknown}; "
                f"allowed: {list(SCOPES)} or *"
            )
        entries.append((key.encode("utf-8"), frozenset(scopes)))
    return KeyRing(tuple(entries), source)


def load_keyring(environ: dict[str, str] | None = None) -> KeyRing:
    """Keys from ``$DEALERML_API_KEYS``, else from ``$DEALERML_API_KEYS_FILE``, else none."""
    env = os.environ if environ is None else environ
    spec = env.get("DEALERML_API_KEYS")
    if spec:
        return parse_keys(spec, source="DEALERML_API_KEYS")
    path = env.get("DEALERML_API_KEYS_FILE")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            # a bento's worker runs in the bento's src folder, not where `bentoml serve` was started:
            # a relative path that `dealerml serve` found was not found there, and the message said only 'keys.txt'
            where = "" if Path(path).is_absolute() else (
                f" {Path(path).resolve()} (a relative path is read from the service's working directory "
                f"{Path.cwd()}, which for a bento is its src folder; give an absolute path)")
            raise KeyConfigError(
                f"DEALERML_API_KEYS_FILE={path}: cannot read the keys file{where} ({err.strerror})"
            ) from None
        return parse_keys(text, source=f"DEALERML_API_KEYS_FILE={path}")
    return KeyRing((), "none")


_NOT_STORED = ((b"cache-control", b"no-store"), (b"vary", b"X-API-Key, Authorization"))


def _not_stored(send):  # noqa: ANN001, ANN202
    """``send`` for an answer to a path that needs a key: ``Cache-Control: no-store`` and ``Vary`` on the key
    headers (unless the answer sets its own), so a cache in front never hands one key's answer (a CRM's
    alerts, an admin's /model_info) to a request with another key or none. Shared caches skip a request with
    an Authorization header, not one with X-API-Key, and some cache GET answers that say nothing."""

    async def wrapped(message) -> None:  # noqa: ANN001
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", ())}
            extra = [(k, v) for k, v in _NOT_STORED if k not in names]
            if extra:
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return wrapped


def _json(status: int, body: dict, extra: list[tuple[bytes, bytes]] | None = None) -> tuple[dict, bytes]:
    payload = json.dumps(body).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        + ([(b"www-authenticate", b'ApiKey header="X-API-Key"')] if status == 401 else [])
        + (extra or []),
    }
    return start, payload


KEY_SCOPES = "dealerml.api_key_scopes"
"""ASGI scope entry :class:`APIKeyMiddleware` sets on ``/readyz`` and on every request it lets through to a
keyed path: the scopes of the key it carried, ``None`` without a valid one (an invalid key on ``/readyz`` is
not a 401: probes keep working)."""

MAX_TRACKED_ADDRESSES = 10_000
"""Client addresses :class:`KeyFailureLimiter` keeps a window for (~200 bytes each); past this the one whose
last wrong key is oldest is forgotten."""


def client_address(scope) -> str:  # noqa: ANN001
    """The address failures are counted under: the ASGI client host; an IPv6 address as its /64 (one
    subscriber's allocation: counting each address of it would give one client 2**64 budgets)."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # not an IP (a unix socket, a test client's name): as it is
        return host[:200]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class KeyFailureLimiter:
    """Wrong API keys per client address in a fixed window that starts at the address's first wrong key.

    ``failures`` wrong keys within ``window_seconds`` block the address until that window ends (so at most
    ``failures`` keys are tried per window, ``2 x failures`` in any span of one window length); requests
    refused while it is blocked are not counted and do not extend it. At most ``max_addresses`` windows are
    kept (the least recently failed is dropped first). Runs on the event loop only (no lock needed)."""

    def __init__(self, failures: int, window_seconds: float, *, max_addresses: int = MAX_TRACKED_ADDRESSES,
                 clock=time.monotonic) -> None:  # noqa: ANN001
        self.failures = failures
        self.window = float(window_seconds)
        self.max_addresses = max_addresses
        self.clock = clock
        self._windows: OrderedDict[str, list[float]] = OrderedDict()  # address -> [window start, wrong keys]

    def __len__(self) -> int:
        return len(self._windows)

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may send keys again, or ``None`` when it is not blocked."""
        entry = self._windows.get(address)
        if entry is None:
            return None
        left = entry[0] + self.window - self.clock()
        if left <= 0:
            del self._windows[address]
            return None
        return left if entry[1] >= self.failures else None

    def failed(self, address: str) -> float | None:
        """Count a wrong key from ``address``; when this one blocks it, the seconds it is blocked for."""
        now = self.clock()
        entry = self._windows.get(address)
        if entry is None or now - entry[0] >= self.window:
            entry = self._windows[address] = [now, 0]
        entry[1] += 1
        self._windows.move_to_end(address)
        while len(self._windows) > self.max_addresses:
            self._windows.popitem(last=False)
        return entry[0] + self.window - now if entry[1] == self.failures else None


_throttled_counter = None


def _count_throttled() -> None:
    """``dealerml_api_key_throttled_total`` + 1 (created on first use: under ``bentoml serve`` that is after
    the worker has set up prometheus' multiprocess directory, so ``/metrics`` shows it)."""
    global _throttled_counter
    if _throttled_counter is None:
        import prometheus_client

        _throttled_counter = prometheus_client.Counter(
            "dealerml_api_key_throttled", "Requests answered 429 because their address sent too many wrong API keys")
    _throttled_counter.inc()


def presented_key(scope) -> tuple[bytes | None, str | None]:  # noqa: ANN001
    """The key a request carries (``X-API-Key``, else ``Authorization: Bearer <key>``) and, for another
    Authorization scheme, its name (``""`` when it is not a known scheme: it may be the key itself)."""
    presented = None
    other_scheme = None
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key":
            presented = value
            break
        if name == b"authorization":
            scheme, _, rest = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":  # "Bearer" alone: no key was sent
                presented = rest.strip() or None
            else:  # named back only when it is a scheme: "Authorization: <key>" must not echo the key
                lowered = scheme.decode("latin-1").lower()
                other_scheme = scheme.decode("latin-1") if lowered in _KNOWN_SCHEMES else ""
    return presented, other_scheme


def ambiguous_key(scope) -> str | None:  # noqa: ANN001
    """Why the request's credentials name no one key, or ``None``: ``X-API-Key`` or ``Authorization`` sent
    more than once (read as the first / the last of them, a proxy adding its own key decided which scopes
    a request ran under), or an ``X-API-Key`` beside an ``Authorization: Bearer`` with another key. Never
    names a key."""
    keys, auths = [], []
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key":
            keys.append(value)
        elif name == b"authorization":
            auths.append(value)
    one = ("send one key, in one X-API-Key header or one Authorization: Bearer header (which of them was meant "
           "cannot be told)")
    for header, values in (("X-API-Key", keys), ("Authorization", auths)):
        if len(values) > 1:
            return f"the {header} header is sent {len(values)} times; {one}"
    if keys and auths:
        scheme, _, rest = auths[0].strip().partition(b" ")
        if scheme.lower() == b"bearer" and rest.strip() != keys[0].strip():
            return f"the X-API-Key and Authorization: Bearer headers carry different keys; {one}"
    return None


class APIKeyMiddleware:
    """Pure ASGI middleware: 401 without a valid key, 403 without the endpoint's scope, 429 to an address
    that sent too many wrong keys (:class:`KeyFailureLimiter`)."""

    def __init__(self, app, keyring: KeyRing | None = None, limits=None, clock=time.monotonic) -> None:  # noqa: ANN001
        self.app = app
        if keyring is None:
            try:
                keyring = load_keyring()
            except KeyConfigError as err:  # the service reports it and stays unready
                logger.error("API keys not loaded, every data endpoint answers 401: %s", err)
                keyring = KeyRing((), "invalid")
        self.keyring = keyring
        if not len(self.keyring):
            logger.warning(
                "no API keys configured (set DEALERML_API_KEYS or DEALERML_API_KEYS_FILE): "
                "every data endpoint answers 401"
            )
        if limits is None:
            from serving.settings import KeyFailureLimits, key_failure_limits
            from training.errors import ConfigError

            try:
                limits = key_failure_limits()
            except ConfigError as err:  # the defaults; the service reports it and stays unready
                logger.error("%s; wrong API keys are throttled at the defaults", err)
                limits = KeyFailureLimits()
        # nothing to guess without configured keys (every key is refused): no throttling then
        self.limiter = (KeyFailureLimiter(limits.failures, limits.window_seconds, clock=clock)
                        if limits.failures and len(self.keyring) else None)

    def _why_401(self, presented: bytes | None, other_scheme: str | None) -> str:
        """What was wrong with the credentials (never echoes the key)."""
        if not len(self.keyring):
            return ("the service has no API keys configured (DEALERML_API_KEYS or DEALERML_API_KEYS_FILE), "
                    "so no key is accepted")
        if presented:
            return "the key sent matches no configured key; send a valid key in the X-API-Key header"
        if other_scheme:
            return (f"an Authorization header with the scheme {other_scheme!r} is not read; send the key in the "
                    "X-API-Key header or as Authorization: Bearer <key>")
        if other_scheme is not None:
            return ("an Authorization header without the Bearer scheme is not read; send the key in the "
                    "X-API-Key header or as Authorization: Bearer <key>")
        return "no key was sent; send a valid key in the X-API-Key header (or Authorization: Bearer <key>)"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/":
            async def send_with_csp(message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (b"content-security-policy", UI_CSP)]}
                await send(message)

            await self.app(scope, receive, send_with_csp)
            return
        if path.startswith(_OPEN_PREFIXES) or (path in OPEN_PATHS and path != _READYZ):
            await self.app(scope, receive, send)
            return
        presented, other_scheme = presented_key(scope)
        limiter = self.limiter
        address = client_address(scope) if limiter is not None else ""
        wait = limiter.retry_after(address) if limiter is not None else None
        ambiguous = ambiguous_key(scope) if wait is None else None
        if wait is not None or ambiguous:  # blocked: the key is not checked (its answer would tell a good key
            # from a bad one); several keys: none is checked, none counts as wrong
            granted = None
        else:
            granted = self.keyring.scopes_for(presented)
            blocked_for = limiter.failed(address) if granted is None and presented and limiter is not None else None
            if blocked_for is not None:  # once per block; the address, never the key
                logger.warning("%d wrong API keys from %s within %g s: its requests that need a key are answered "
                               "429 for %d s", limiter.failures, address, limiter.window, math.ceil(blocked_for))
        if path == _READYZ:  # open, never refused; what the key grants is passed on (it shows the reasons);
            # a blocked address gets the answer to no key
            await self.app({**scope, KEY_SCOPES: granted}, receive, send)
            return
        send = _not_stored(send)  # every answer below depends on the key sent
        if wait is not None:
            retry = max(1, math.ceil(wait))
            _count_throttled()
            start, body = _json(
                429,
                {"error": "too many wrong API keys from this address",
                 "detail": (f"{limiter.failures} requests from this address sent a key that matches no configured "
                            f"key within {limiter.window:g} s; requests that need a key are refused without "
                            f"checking it for {retry} s more (Retry-After)")},
                [(b"retry-after", str(retry).encode())],
            )
        elif ambiguous:
            start, body = _json(400, {"error": ambiguous})
        elif granted is None:
            start, body = _json(401, {"error": "missing or invalid API key",
                                      "detail": self._why_401(presented, other_scheme)})
        else:
            needed = ROUTE_SCOPES.get(path.rstrip("/") or "/", None)
            if needed is None or needed in granted:
                await self.app({**scope, KEY_SCOPES: granted}, receive, send)
                return
            start, body = _json(
                403,
                {
                    "error": f"this API key lacks the '{needed}' scope needed for {path}",
                    "detail": f"key scopes: {sorted(granted)}",
                },
            )
        await send(start)
        await send({"type": "http.response.body", "body": body})
