"""The dealerml BentoML service: forecasts, safety stock, churn scores and alerts, dealer scores.

Start it with ``dealerml serve`` (or ``bentoml serve serving.service:DealerML``). At start-up
a background thread resolves the ``champion`` of each registered model once, loads it,
reads the order book named by the config (``$DEALERML_CONFIG``, default
``experiments/default.yaml``) and precomputes forecasts, churn scores and dealer scores with
the same ``features/`` code as training. ``/readyz`` answers 503 until every model is
loaded; a model that cannot be loaded keeps it 503 and is named in the log and in
``/model_info``. Requests never touch MLflow.

Every data endpoint needs an ``X-API-Key`` header (see :mod:`serving.auth`); ``/livez``,
``/readyz`` and ``/metrics`` are open.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
from typing import Annotated

import bentoml
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse, Response

from serving._log_filter import install_access_log_guard
from serving._query_checks import MAX_LISTED, QUERY_PARAMS, _error, _query_error
from serving.auth import (
    KEY_SCOPES,
    OPEN_PATHS,
    APIKeyMiddleware,
    KeyConfigError,
    covers_model,
    load_keyring,
)
from serving.errors import (
    BadRequest,
    JSONBodyMiddleware,
    NoMatch,
    RouteErrorMiddleware,
    TrailingSlashMiddleware,
    UnknownIds,
    install_log_filter,
)
from serving.limits import BodyLimitMiddleware, install_busy_answer
from serving.loader import (
    CHECK_ENV,
    champion_check_seconds,
    config_path,
    load_all,
    new_state,
    watch_champions,
)
from serving.metrics import bound_endpoint_labels
from serving.openapi import DocsVersionMiddleware
from serving.schemas import (
    LIMIT_ERRORS,
    MAX_IDS_ENV,
    MAX_PLAN_ROWS_ENV,
    ChurnAlertsResponse,
    ChurnScoresRequest,
    ChurnScoresResponse,
    DealerScoresRequest,
    DealerScoresResponse,
    ForecastRequest,
    ForecastResponse,
    ModelInfoResponse,
    SafetyStockRequest,
    SafetyStockResponse,
)
from serving.settings import (
    ALERTS_READERS_ENV,
    ALERTS_TIMEOUT_ENV,
    BODY_TIMEOUT_ENV,
    KEY_FAILURES_ENV,
    KEY_FAILURES_WINDOW_ENV,
    MAX_BODY_ENV,
    WORKERS_ENV,
    ServingSettings,
    alerts_limits,
    key_failure_limits,
    request_limits,
    serve_workers,
)
from serving.state import NotReady, NotServed
from training.errors import ConfigError

__all__ = ["DealerML"]

logger = logging.getLogger("dealerml.serving")

web = FastAPI(title="dealerml read endpoints", docs_url=None, redoc_url=None, openapi_url=None)


class _JSON(Response):
    """A JSON answer already shaped like the response schema (no second validation pass)."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _answer(fn, *args):
    """Run a backend call; map request-level errors to 4xx/503 JSON answers."""
    try:
        return _JSON(fn(*args))
    except UnknownIds as err:
        return _error(404, str(err), unknown_ids=err.ids[:MAX_LISTED], **err.extra)
    except (NoMatch, NotServed) as err:
        return _error(404, str(err))
    except BadRequest as err:
        return _error(422, str(err))
    except NotReady as err:
        answer = _error(503, str(err))
        if err.retry_after is not None:
            answer.headers["Retry-After"] = str(err.retry_after)
        return answer


ROUTES = {"/forecast": "POST", "/safety_stock": "POST", "/churn_scores": "POST", "/churn_alerts": "GET",
          "/dealer_scores": "POST", "/model_info": "GET", "/livez": "GET", "/readyz": "GET", "/metrics": "GET"}
"""Each endpoint and the one method it takes (other methods: 405 naming it)."""

# /metrics: a path that is not a route is counted as endpoint="other" (each path sent was a new series)
bound_endpoint_labels(set(ROUTES) | OPEN_PATHS)


@web.exception_handler(RequestValidationError)
async def _bad_query(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a bad query parameter -> 400 {"error": ...} like the other routes."""
    strict = _query_error(request)
    if strict is not None:
        return strict
    allowed = QUERY_PARAMS.get(request.url.path, {})
    problems = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ())]
        name = loc[-1] if len(loc) > 1 else "?"
        got = e.get("input")
        expected = allowed.get(name, "")
        problems.append(
            f"query parameter {name!r}: {e.get('msg', 'invalid')}"
            + (f"; expected {expected}" if expected else "")
            + (f"; got {str(got)[:100]!r}" if isinstance(got, str) else "")
        )
    return _error(400, "invalid query: " + "; ".join(problems))


def _date_only(window: dict) -> dict:
    """Training-window bounds as dates ("2022-01-03 00:00:00" -> "2022-01-03")."""
    out = {}
    for k, v in (window or {}).items():
        if isinstance(v, str) and len(v) > 10 and v[10] in " T" and v[11:].strip("0:. ") == "":
            v = v[:10]
        out[k] = v
    return out


NO_KEYS = ("no API keys are configured (DEALERML_API_KEYS or DEALERML_API_KEYS_FILE), so every data endpoint "
           "would answer 401; set one, e.g. DEALERML_API_KEYS='ops-key-0000:*', and restart")


READYZ_KEY_SHOWS = ("the reasons (errors, file paths, store addresses, the config file) are shown to a request "
                    "with a valid API key, in the X-API-Key header or as Authorization: Bearer <key>: those of the "
                    "models its scopes cover (forecast: demand, churn: churn, dealers: dealers), all of them and the "
                    "settings' with an admin key")
READYZ_KEYS_NONE = ("the reasons (errors, file paths, store addresses, the config file) are shown to a request with a "
                    "valid API key (of the models its scopes cover; admin: all); this service has no valid key "
                    "configured, so they are in its log")
SETTING_NAMES = frozenset({
    "DEALERML_API_KEYS", "DEALERML_API_KEYS_FILE", CHECK_ENV, MAX_IDS_ENV, MAX_PLAN_ROWS_ENV, MAX_BODY_ENV,
    BODY_TIMEOUT_ENV, WORKERS_ENV, ALERTS_TIMEOUT_ENV, ALERTS_READERS_ENV, KEY_FAILURES_ENV, KEY_FAILURES_WINDOW_ENV,
    *(f"serving.{name}" for name in ServingSettings.model_fields),
})
"""The settings an unauthenticated /readyz may name (names only, never values or the config file)."""


def _setting_names(message: str, fallback: str) -> list[str]:
    """The known setting names in ``message`` (``$DEALERML_SERVE_WORKERS``, ``key 'serving.max_body_bytes'``),
    else ``fallback``; nothing else of the message (values, paths, the config file) is kept."""
    found = re.findall(r"DEALERML_[A-Z0-9_]+|serving\.[a-z_]+", message)
    return [n for n in dict.fromkeys(found) if n in SETTING_NAMES] or [fallback]


_SERVICE: DealerML | None = None
"""The service instance of this worker process (set by ``DealerML.__init__``), for :class:`ReadyzMiddleware`."""


class ReadyzMiddleware:
    """``GET /readyz`` answered from the service's state, on the event loop.

    BentoML's own answer to an unready service was one sentence for every cause ('Service is not
    ready because .__is_ready__() returns False.'), so the operator had to find the reason in the
    log or /model_info (which needs a key). Unready is now a 503 JSON naming each model that is not
    ready and why (``pending``: what the loader is doing first; ``loading`` for how long;
    ``failed``: the version and the error; ``not_registered``: no version has the champion alias)
    and each service setting that keeps it unready (API keys, request limits, workers); passwords
    in URLs are hidden. The route is open (probes call it), so the reasons - error texts, file
    paths, store addresses, the config file - are shown only with a valid API key, for the models its
    scopes cover (admin: every model and the settings);
    without one, or with an invalid one (not a 401: a probe keeps working), the 503 keeps each
    model's status and version and the names of the settings, and says that a key shows the rest
    (a 503 is ``Cache-Control: no-store``). Ready is BentoML's answer (200, a newline). Neither
    waits for a worker thread (BentoML asked ``__is_ready__`` on one): a pool taken by slow
    requests (a silent alerts database) no longer makes the probe time out."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app
        self.service: DealerML | None = None  # the instance this app's start-up made (several apps in tests)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "lifespan":  # BentoML makes the instance at start-up: remember which
            async def started(message) -> None:  # noqa: ANN001
                if message.get("type") == "lifespan.startup.complete":
                    self.service = _SERVICE
                await send(message)

            await self.app(scope, receive, started)
            return
        service = self.service or _SERVICE
        if (scope["type"] != "http" or scope.get("path") != "/readyz" or scope.get("method") not in ("GET", "HEAD")
                or service is None):
            await self.app(scope, receive, send)
            return
        # the reasons only with a valid key (APIKeyMiddleware checked it; an invalid one is no 401 here),
        # of the models its scopes cover (admin: all, and the settings' texts), as /model_info shows them
        problems = service.not_ready(scopes=scope.get(KEY_SCOPES))
        extra = []
        if problems is None:
            status, body, ctype = 200, b"\n", b"text/plain; charset=utf-8"
        else:
            status, ctype = 503, b"application/json"
            body = json.dumps(problems, separators=(",", ":")).encode("utf-8")
            extra = [(b"cache-control", b"no-store"), (b"vary", b"X-API-Key, Authorization")]
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


install_access_log_guard()  # BentoML's access log: a Content-Type that is not UTF-8 (serving._log_filter)
install_busy_answer()  # BentoML's 429 over traffic.max_concurrency: the limit, Retry-After (serving.limits)

try:  # read when the service class is defined, i.e. by `bentoml serve` / `dealerml serve`
    _WORKERS, _WORKERS_ERROR = serve_workers(), None
except ConfigError as _err:  # one worker that stays unready and says why (dealerml serve refuses it)
    _WORKERS, _WORKERS_ERROR = 1, str(_err)


@bentoml.asgi_app(web, path="/")
@bentoml.service(
    name="dealerml",
    # Worker processes; each loads the champions. $DEALERML_SERVE_WORKERS (default 1).
    workers=_WORKERS,
    traffic={"timeout": 120, "max_concurrency": 256},
    http={"cors": {"enabled": False}},
)
class DealerML:
    """Loads the champions once and answers from precomputed tables."""

    def __init__(self) -> None:
        # One OpenMP thread per LightGBM call: set before the loader imports LightGBM.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        install_log_filter()
        logging.getLogger("dealerml").setLevel(logging.INFO)  # start-up and model lines
        self.key_error: str | None = None
        try:
            if not len(load_keyring()):  # fails closed (401 everywhere): not ready either, so a deployment
                # whose key secret was not mounted never takes traffic from one that works
                self.key_error = NO_KEYS
                logger.error("service stays UNREADY: %s", NO_KEYS)
        except KeyConfigError as err:
            self.key_error = str(err)
            logger.error("service stays UNREADY: the API key configuration is invalid: %s", err)
        settings_errors = [_WORKERS_ERROR] if _WORKERS_ERROR else []
        try:
            check_every = champion_check_seconds()
        except Exception as err:  # noqa: BLE001 - ConfigError naming the variable
            settings_errors.append(str(err))
            check_every = 0.0
        try:  # the churn backend reads the same (the defaults, when a value is bad)
            alerts_limits()
        except ConfigError as err:
            settings_errors.append(str(err))
        try:  # APIKeyMiddleware reads the same (the defaults, when a value is bad)
            key_failure_limits()
        except ConfigError as err:
            settings_errors.append(str(err))
        self.settings_error: str | None = "; ".join(settings_errors) or None
        if self.settings_error:
            logger.error("service stays UNREADY: %s", self.settings_error)
        problems = list(LIMIT_ERRORS)  # $DEALERML_SERVE_MAX_IDS / _MAX_PLAN_ROWS, read with the schemas
        try:
            request_limits(config_path())  # BodyLimitMiddleware reads the same; a bad value falls back there
        except Exception as err:  # noqa: BLE001 - ConfigError naming the key or variable
            problems.append(str(err))
        self.limits_error: str | None = "; ".join(problems) or None
        if self.limits_error:
            logger.error("service stays UNREADY: the request limits are invalid: %s", self.limits_error)
        self.state = new_state()
        global _SERVICE
        _SERVICE = self
        self._loader = threading.Thread(
            target=load_all, args=(self.state, config_path()), name="dealerml-loader", daemon=True
        )
        self._loader.start()
        if check_every > 0:  # then re-reads the champion aliases (registry_champion / stale in /model_info)
            # and retries a start-up the registry stopped
            threading.Thread(target=watch_champions, args=(self.state, check_every, self._loader, None, config_path()),
                             name="dealerml-champion-check", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.key_error is None and self.limits_error is None and self.settings_error is None and self.state.ready

    def not_ready(self, *, scopes: frozenset[str] | None | bool = True) -> dict | None:
        """None when ready, else the ``/readyz`` 503 body: ``error`` (one line: every reason),
        ``models`` (each model that is not ready: name, status, version, reason) and ``settings``
        (each service setting that keeps it unready).

        ``scopes``: those of the request's valid API key (``/readyz`` is open), ``None`` without one;
        ``True`` (the default, in-process callers): everything. Without a key,
        ``settings`` are the names of those settings, the reasons are built from status and version
        only (no error text, file path, store address or config file) and ``detail`` says that a valid
        key shows them. A key shows the reasons of the models its scopes cover (``forecast``: demand,
        ``churn``: churn, ``dealers``: dealers), as ``/model_info`` does; ``admin`` / ``*`` every
        model's and the settings' texts."""
        from training.errors import hide_url_passwords

        admin = scopes is True or (scopes is not None and "admin" in scopes)
        groups = ((self.key_error, "DEALERML_API_KEYS"), (self.limits_error, "request limits"),
                  (self.settings_error, "service settings"))
        if admin:
            settings = [hide_url_passwords(e) for e, _ in groups if e]
        else:
            settings = list(dict.fromkeys(n for e, other in groups if e for n in _setting_names(e, other)))
        shown = (True if admin else False if scopes is None
                 else {k for k in self.state.slots if covers_model(scopes, k)})
        models = self.state.not_ready(detail=shown)
        if not settings and not models:
            return None
        seen: dict[str, list[str]] = {}  # one registry / order-book error failed every model: said once
        for m in models:
            seen.setdefault(m["reason"] or m["status"], []).append(m["name"])
        said = [f"{', '.join(names)}: {why}" for why, names in seen.items()]
        if admin:
            return {"ready": False, "error": "not ready: " + "; ".join(said + settings), "models": models,
                    "settings": settings}
        said += [f"invalid or missing setting(s): {', '.join(settings)}"] if settings else []
        return {"ready": False, "error": "not ready: " + "; ".join(said), "models": models, "settings": settings,
                "detail": READYZ_KEYS_NONE if self.key_error else READYZ_KEY_SHOWS}

    # ------------------------------------------------------------ demand
    @bentoml.api(route="/forecast")
    def forecast(self, request: ForecastRequest, /) -> ForecastResponse:
        """Point forecast with intervals / quantiles per period for the selected series."""
        return _answer(lambda: self.state.backend("demand").forecast(request))

    @bentoml.api(route="/safety_stock")
    def safety_stock(self, request: SafetyStockRequest, /) -> SafetyStockResponse:
        """Safety stock, reorder point, order-up-to and replenish / overstock warnings."""
        return _answer(lambda: self.state.backend("demand").safety_stock(request))

    # ------------------------------------------------------------ churn
    @bentoml.api(route="/churn_scores")
    async def churn_scores(self, request: ChurnScoresRequest, /) -> ChurnScoresResponse:
        """Churn probability, tier and three reasons per account (as of the last cutoff).

        Dict lookups only (microseconds per id), so it runs on the event loop: no thread hop."""
        return _answer(lambda: self.state.backend("churn").scores(request))

    @web.get("/churn_alerts", response_model=ChurnAlertsResponse)
    def churn_alerts(
        self,
        request: Request,
        since: Annotated[dt.date | None, Query(description="Only alerts on or after this date")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED, description="The newest N alerts")] = 1000,
    ):
        """Accounts that newly crossed into high risk (from the alerts table): the newest
        ``limit`` on or after ``since``, oldest first, and how many ``matched``.

        A slow or unreachable alerts database is a 503 within about
        ``$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS``, with ``Retry-After`` (see ``ChurnBackend._alerts_frame``)."""
        bad = _query_error(request)
        if bad is not None:
            return bad
        return _answer(lambda: self.state.backend("churn").alerts(since, limit))

    # ------------------------------------------------------------ dealers
    @bentoml.api(route="/dealer_scores")
    async def dealer_scores(self, request: DealerScoresRequest, /) -> DealerScoresResponse:
        """Dealers ranked by potential, filtered by region / segment / tier."""
        return _answer(lambda: self.state.backend("dealers").scores(request))


@web.get("/model_info", response_model=ModelInfoResponse, response_model_exclude_unset=True)
async def model_info(request: Request):
    """Each served model whose endpoints the key may call: name, version, alias, training window, backtest
    metrics; for churn, the alerts database as the last GET /churn_alerts found it (``summary.alerts_db``).
    The other served models are listed under ``other_models`` by name and status only, and ``config`` (a
    file path of the server) is shown to an admin key only: a key with the ``forecast`` scope saw the churn
    model's run, errors and alerts database. An admin (``*``) key gets every model, as before.

    Answered on the event loop from what the service holds, and not a method of the class: BentoML
    gives a class view its ``self`` through a sync dependency, run on a worker thread, and an alerts
    database that takes connections and never answers held them all (each GET /churn_alerts for the
    connect timeout): /model_info took ~9 s then."""
    bad = _query_error(request)
    if bad is not None:
        return bad
    service = bentoml.get_current_service()
    granted = request.scope.get(KEY_SCOPES) or frozenset()  # APIKeyMiddleware sets it; absent: nothing
    admin = "admin" in granted
    models, others = [], []
    for key, slot in service.state.slots.items():
        if not covers_model(granted, key):
            others.append({"name": slot.name, "status": slot.state})
            continue
        d = slot.describe()
        d["training_window"] = _date_only(d.get("training_window") or {})
        status = getattr(slot.backend, "alerts_status", None) if d["status"] == "ready" else None
        if status is not None:
            d["summary"] = {**d["summary"], "alerts_db": status()}
        models.append(d)
    answer = {"ready": service.__is_ready__(), "config": service.state.config if admin else None, "models": models}
    if others:  # absent when the key sees every model (the answer an admin key always had)
        answer["other_models"] = others
    return answer


POST_MODELS = {
    "/forecast": ForecastRequest,
    "/safety_stock": SafetyStockRequest,
    "/churn_scores": ChurnScoresRequest,
    "/dealer_scores": DealerScoresRequest,
}
DealerML.add_asgi_middleware(TrailingSlashMiddleware, paths=set(ROUTES) | OPEN_PATHS)  # /forecast/ is /forecast
DealerML.add_asgi_middleware(APIKeyMiddleware)  # outermost answer: 401 / 403 before anything else
DealerML.add_asgi_middleware(JSONBodyMiddleware, models=POST_MODELS)  # headers and query first, then
DealerML.add_asgi_middleware(BodyLimitMiddleware, paths=list(POST_MODELS))  # 413 / 408 before the body is parsed
DealerML.add_asgi_middleware(RouteErrorMiddleware, routes=ROUTES)  # 404 / 405 as {"error": ...}
DealerML.add_asgi_middleware(ReadyzMiddleware)  # /readyz: why not ready, without a worker thread
DealerML.add_asgi_middleware(DocsVersionMiddleware, post_paths=set(POST_MODELS))  # /docs.json: version, nullable, answers
