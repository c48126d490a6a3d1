"""The request-body guard of the HTTP service: a size limit and a read deadline.

BentoML 1.4 has no request-size setting (``api_server.max_request_size`` of 0.x is dropped by
its config migration) and uvicorn has none either: a POST body was buffered whole
(``await request.body()``) and parsed on the event loop whatever its size. A 50 MB list of ids
took ~600 MB of server memory and ~1 s of a blocked event loop before its 400; a client that
went away mid-body was logged as a 500 with a ``ClientDisconnect`` traceback; a stalled upload
waited for BentoML's traffic timeout and its 504.

:class:`BodyLimitMiddleware` answers, as JSON ``{"error": ...}`` naming the limit:

- 413 for a ``Content-Length`` over the limit, on every path, without keeping any of the body:
  at once to a client that sent ``Expect: 100-continue`` (it never uploads the body), else once
  the client has sent it (read and dropped, up to the read deadline);
- 413 for a body without ``Content-Length`` (chunked) once it passes the limit, on the POST
  endpoints, which it reads here (at most the limit) and hands on whole;
- 408 when that body is not received in full within the read deadline;
- 400 when the client disconnects before the body is complete (nobody reads it; the access log
  and the request metrics say 400 instead of 500);
- 400 naming the offset when the body is not UTF-8 (latin-1 text, UTF-16): JSON is UTF-8, and the
  parser's own words were "invalid unicode code point at line 1 column 20"; and when it starts with
  a UTF-8 byte order mark (some Windows tools add one), which the parser called "expected value at
  line 1 column 1";
- 400 naming the key and where it is when a JSON object of the body names a key twice
  (``{"account_ids": ["x"], "account_ids": ["D00001"]}``), which the parser read as its last value.

Nothing over the limit is kept in memory; the connection is reused once the body has arrived.

:func:`install_busy_answer` makes BentoML's own concurrency limit (``traffic.max_concurrency``)
answer like these: its 429 said only ``{"error": "Too many requests"}``, with no ``Retry-After``,
no limit and no way to raise it. BentoML builds that middleware outside the service's own
(``_bentoml_impl/server/app.py``: the traffic middlewares come before ``service.middlewares``), so
no middleware of the service sees the 429; the class is looked up in its module when the app is
built, which is the hook used.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from serving.settings import RequestLimits, request_limits

__all__ = ["BodyLimitMiddleware", "busy_message", "install_busy_answer", "too_large_message"]

BUSY_RETRY_SECONDS = 1
"""``Retry-After`` of the 429 over the concurrency limit (a slot frees when a request ends)."""

logger = logging.getLogger("dealerml.serving")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def too_large_message(limits: RequestLimits, got: str) -> str:
    """The 413 text: what was sent, the limit and where it is set, and how to stay under it."""
    from serving.schemas import MAX_DRIVER_ROWS, MAX_IDS

    where = ("the default; set serving.max_body_bytes or $DEALERML_SERVE_MAX_BODY_BYTES"
             if limits.max_body_source == "default" else f"set by {limits.max_body_source}")
    return (f"request body too large: {got}; the limit is {limits.max_body_bytes:,} bytes "
            f"({_size(limits.max_body_bytes)}, {where}). A request takes at most {MAX_IDS:,} ids per list "
            f"and {MAX_DRIVER_ROWS:,} plan rows; split bigger batches into several requests")


def busy_message(per_worker: int) -> str:
    """The 429 text over BentoML's ``traffic.max_concurrency``: the limit, where it is set, what to do."""
    return (f"too many concurrent requests: this worker process already has its limit of {per_worker:,} request(s) "
            f"in progress (traffic.max_concurrency of the BentoML service 'dealerml', divided among its worker "
            f"processes); retry after {BUSY_RETRY_SECONDS} s (Retry-After), send fewer requests at once, or raise "
            "the limit, e.g. BENTOML_CONFIG_OPTIONS='services.dealerml.traffic.max_concurrency=512'")


def install_busy_answer() -> bool:
    """Make BentoML's max-concurrency 429 a JSON ``{"error": ..., "limit": N}`` naming the limit, with
    ``Retry-After`` (module docstring). BentoML 1.4 imports ``MaxConcurrencyMiddleware`` from
    ``bentoml._internal.server.http.traffic`` when it builds the app (``base_app.py``'s and
    ``_bentoml_impl/server/app.py``'s ``middlewares``), so a subclass put there at import of the
    service is the one it builds. False (BentoML's answer stays) when that module is not as expected."""
    try:
        from bentoml._internal.server.http import traffic
    except ImportError:  # pragma: no cover - another BentoML layout
        logger.warning("BentoML's traffic middleware not found: its 429 over max_concurrency stays unexplained")
        return False
    base = traffic.MaxConcurrencyMiddleware
    if getattr(base, "dealerml_busy_answer", False):
        return True
    if "_semaphore" not in base.__init__.__code__.co_names:  # what the subclass reads
        logger.warning("BentoML's MaxConcurrencyMiddleware changed: its 429 over max_concurrency stays unexplained")
        return False

    class MaxConcurrencyMiddleware(base):  # type: ignore[misc, valid-type]
        """BentoML's limit, answered with the message and ``Retry-After``."""

        dealerml_busy_answer = True

        def __init__(self, app: Any, max_concurrency: int, skip_paths: list[str] | None = None) -> None:
            super().__init__(app, max_concurrency, skip_paths)
            self.max_concurrency = max_concurrency

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if (scope.get("type") == "http" and scope.get("path") not in self.skip_paths
                    and self._semaphore.locked()):  # what the base checks, with no await in between
                await _answer(send, 429, busy_message(self.max_concurrency), limit=self.max_concurrency,
                              headers=[(b"retry-after", str(BUSY_RETRY_SECONDS).encode())])
                return
            await super().__call__(scope, receive, send)

    traffic.MaxConcurrencyMiddleware = MaxConcurrencyMiddleware
    return True


class BodyLimitMiddleware:
    """ASGI middleware: the body-size limit and read deadline (module docstring).

    ``paths``: the POST endpoints whose bodies are read here; ``limits``: the
    :class:`~serving.settings.RequestLimits` (default: :func:`~serving.settings.request_limits`
    of the served config and environment, read when the app is built; a bad value there falls
    back to the defaults here - the service itself stays unready and says why)."""

    def __init__(self, app: Any, paths: list[str] | tuple[str, ...] = (), limits: RequestLimits | None = None) -> None:
        self.app = app
        self.paths = frozenset(paths)
        if limits is None:
            from serving.loader import config_path

            try:
                limits = request_limits(config_path())
            except Exception:  # noqa: BLE001 - DealerML.__init__ reports it and stays unready
                limits = RequestLimits()
        self.limits = limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for k, v in scope.get("headers") or ():
            if k.lower() == b"content-length":
                try:
                    declared = int(v)
                except ValueError:  # uvicorn refuses these before the app sees them
                    declared = None
        limit = self.limits.max_body_bytes
        deadline = asyncio.get_running_loop().time() + self.limits.body_timeout_seconds  # the whole body's
        if declared is not None and declared > limit:
            await self._too_large(scope, receive, send, f"Content-Length is {declared:,} bytes", deadline,
                                  body_done=False)
            return
        if scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        got = 0
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        expected = f" of {declared:,}" if declared is not None else ""
                        logger.info("client disconnected after %d%s body bytes of POST %s", got, expected,
                                    scope.get("path"))
                        await _answer(send, 400, f"the client disconnected after sending {got:,}{expected} "
                                                 "bytes of the request body")
                        return
                    body = message.get("body", b"")
                    got += len(body)
                    if got > limit:
                        break
                    chunks.append(body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            seconds = self.limits.body_timeout_seconds
            src = ("serving.body_timeout_seconds or $DEALERML_SERVE_BODY_TIMEOUT_SECONDS"
                   if self.limits.body_timeout_source == "default" else self.limits.body_timeout_source)
            expected = f" of {declared:,}" if declared is not None else ""
            await _answer(send, 408, f"the request body was not received within {seconds:g} s ({got:,}{expected} "
                                     f"bytes arrived; the read deadline is set by {src})",
                          headers=[(b"connection", b"close")])
            return
        if got > limit:
            await self._too_large(scope, receive, send, f"more than {limit:,} bytes were sent (no Content-Length)",
                                  deadline, body_done=not message.get("more_body", False))
            return
        whole = b"".join(chunks)
        del chunks
        try:
            whole.decode("utf-8")  # ~1 ms a MB; the JSON parser would only say "invalid unicode code point"
        except UnicodeDecodeError as err:
            bad = whole[err.start:err.start + 4].hex(" ")
            hint = " (it starts with a UTF-16 byte order mark)" if whole[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
            await _answer(send, 400, f"the request body is not UTF-8 text: bytes {bad} at offset {err.start:,} "
                                     f"cannot be decoded{hint}; send the JSON encoded as UTF-8")
            return
        if whole.startswith(b"\xef\xbb\xbf"):  # the parser said only "expected value at line 1 column 1"
            await _answer(send, 400, "the request body starts with a UTF-8 byte order mark (bytes ef bb bf), which "
                                     "JSON sent over a network must not have (RFC 8259); send the JSON without it")
            return
        duplicate = _duplicate_key(whole)  # ~1.5x a plain parse, of bodies that can be valid only (below)
        if duplicate is not None:
            await _send_duplicate(send, *duplicate)
            return
        from serving.errors import BODY_SCOPE_KEY

        scope[BODY_SCOPE_KEY] = whole  # for JSONBodyMiddleware's 400 (the same scope dict): the values it names
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict, receive: Any, send: Any, what: str, deadline: float,
                         body_done: bool) -> None:
        """413. A client that waits for ``100 Continue`` is answered at once and never sends the body.
        Any other client is sending it anyway and reads no answer before it is done, so the rest is
        read and dropped first (nothing is kept), up to the read deadline, after which the connection
        is closed. Answered early instead, uvicorn drops the rest only until its keep-alive timeout
        (5 s) and then closes a connection the client is still writing to: 22 of 50 concurrent 43 MB
        uploads got a connection error instead of the 413."""
        close = False
        if not body_done and not _expects_continue(scope):
            try:
                async with asyncio.timeout_at(deadline):
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect" or not message.get("more_body", False):
                            break
            except TimeoutError:
                close = True
        await _answer(send, 413, too_large_message(self.limits, what), limit_bytes=self.limits.max_body_bytes,
                      headers=[(b"connection", b"close")] if close else None)


def _most_objects() -> int:
    """The most JSON objects a request the schemas take can hold: the body, a plan row each, a
    ``lead_times`` entry each and the per-series maps."""
    from serving.schemas import MAX_DRIVER_ROWS, MAX_IDS

    return MAX_DRIVER_ROWS + MAX_IDS + 16


def _duplicate_key(body: bytes) -> tuple[list, str, int] | None:
    """(where, key, how often) of the first JSON object of ``body`` that names a key more than once,
    else None. BentoML's parser (pydantic) keeps the last value silently: ``{"account_ids": ["x"],
    "account_ids": ["D00001"]}`` was served as the second list. Bodies that are not JSON, or have
    more ``{`` than a valid request has objects (refused by the schema anyway; their parse here
    would cost more than theirs), are left to the parser."""
    if body.count(b"{") > _most_objects():
        return None
    found: list = []

    def pairs_hook(pairs: list) -> dict:
        obj = dict(pairs)
        if len(obj) != len(pairs) and not found:
            found.extend((obj, pairs))
        return obj

    try:
        tree = json.loads(body, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the parser's 400 says so
        return None
    if not found:
        return None
    obj, pairs = found
    seen: set = set()
    key = next(k for k, _ in pairs if k in seen or seen.add(k))
    return _path_to(tree, obj) or [], key, sum(k == key for k, _ in pairs)


def _path_to(node: Any, target: dict, depth: int = 0) -> list | None:
    """The keys / indexes from ``node`` down to the object ``target`` (by identity)."""
    if node is target:
        return []
    if depth > 200:
        return None
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, child in items:
        if isinstance(child, dict | list):
            below = _path_to(child, target, depth + 1)
            if below is not None:
                return [k, *below]
    return None


async def _send_duplicate(send: Any, path: list, key: str, times: int) -> None:
    """400 in the form of the schema's answers (serving.errors.describe_validation_errors)."""
    from serving.errors import _send_json, _short

    loc = [_short(x) for x in (*path, key)]
    field = ".".join(map(str, loc))
    where = "the request body" if not path else ".".join(map(str, loc[:-1]))
    msg = (f"the key {loc[-1]!r} appears {times} times in one JSON object ({where}); send each key once "
           "(which of its values was meant cannot be told)")
    await _send_json(send, 400, {
        "error": f"invalid request body: 1 problem: {field}: {msg}",
        "detail": [{"field": field, "loc": loc, "msg": msg, "type": "duplicate_key",
                    "expected": "each key at most once in a JSON object"}]})


def _expects_continue(scope: dict) -> bool:
    return any(k.lower() == b"expect" and v.strip().lower() == b"100-continue" for k, v in scope.get("headers") or ())


async def _answer(send: Any, status: int, message: str, headers: list | None = None, **extra: Any) -> None:
    from serving.errors import _send_json

    await _send_json(send, status, {"error": message, **extra}, headers)
