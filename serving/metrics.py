"""Keep the ``endpoint`` label of BentoML's request metrics to the service's own routes.

BentoML 1.4's traffic-metrics middleware (the outermost one, ahead of the API-key check) labels
every request with its raw path, so each distinct path anyone sends, with or without a key, adds
its own series to ``/metrics`` (a histogram of 17 buckets, its sum and count, a counter and a
gauge): measured against a real ``bentoml serve``, 5,000 requests to made-up paths (5 s from one
client, all answered 401) took ``/metrics`` from 5 kB to 18.6 MB (100,000 series), the worker
from 415 to 728 MB, and a scrape to 10 s, Prometheus' default scrape timeout. Nothing ever
removes them. :func:`bound_endpoint_labels` wraps the middleware's metrics so a path that is not
one of the routes is counted under ``endpoint="other"``; the routes keep their own series.

A route sent with trailing slashes (``POST /forecast/``) is served as the route
(:class:`serving.errors.TrailingSlashMiddleware`), but the metrics middleware, outermost, labels
it before that rewrite: it is counted under the route it is served as (it was ``"other"``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from serving.errors import route_of

__all__ = ["OTHER", "bound_endpoint_labels"]

logger = logging.getLogger("dealerml.serving")

OTHER = "other"
"""The ``endpoint`` label of every request to a path that is not a route (no path is spelt so)."""


class _KnownEndpoints:
    """A prometheus metric whose ``labels(endpoint=...)`` maps a route with trailing slashes to the route
    and other unknown paths to :data:`OTHER`."""

    def __init__(self, metric: Any, known: frozenset[str]) -> None:
        self._metric = metric
        self._known = known

    def labels(self, *args: Any, **kwargs: Any) -> Any:
        endpoint = kwargs.get("endpoint")
        if endpoint is not None and endpoint not in self._known:
            kwargs["endpoint"] = route_of(endpoint, self._known) or OTHER  # /forecast/ is served as /forecast
        return self._metric.labels(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metric, name)


def bound_endpoint_labels(routes: Iterable[str]) -> bool:
    """Patch BentoML's traffic-metrics middleware (once per process) so its ``endpoint`` label
    takes only ``routes`` and :data:`OTHER`. Returns False, with a warning, when this BentoML
    has no such middleware (the labels are then BentoML's own)."""
    known = frozenset(routes)
    # The pinned BentoML (constraints.txt) has this module and these classes; the two fallbacks are
    # for a BentoML that moved them, which tests/test_serving_ops.py (metrics against a real server:
    # made-up paths must count as "other") would show by failing.
    try:
        from bentoml._internal.server.http import instruments
    except ImportError:  # pragma: no cover - only with a BentoML other than the pinned one
        instruments = None
    patched = False
    for cls in (getattr(instruments, "RunnerTrafficMetricsMiddleware", None),
                getattr(instruments, "HTTPTrafficMetricsMiddleware", None)):
        if cls is None or not hasattr(cls, "_setup"):
            continue
        if getattr(cls, "_dealerml_known_endpoints", None) is not None:
            cls._dealerml_known_endpoints = known
            patched = True
            continue
        original = cls._setup

        def _setup(self: Any, *args: Any, _original: Any = original, _cls: Any = cls, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            for name, value in list(vars(self).items()):
                if name.startswith("metrics_") and name != "metrics_client" and hasattr(value, "labels"):
                    setattr(self, name, _KnownEndpoints(value, _cls._dealerml_known_endpoints))

        cls._setup = _setup
        cls._dealerml_known_endpoints = known
        patched = True
    if not patched:  # pragma: no cover - only with a BentoML other than the pinned one
        logger.warning("metrics: BentoML's traffic metrics were not found; /metrics labels every path sent")
    return patched
