"""``DealerML.to_asgi()`` for in-process service tests (starlette's TestClient).

BentoML registers its request metrics in prometheus_client's process-wide registry when an app
starts, so a second app in the same test process (one pytest-xdist worker runs several test
files in turn) raised ``DuplicateTimeseries``. ``service_app`` drops the metrics an earlier app
of this process registered first; each test file's app is closed before the next file starts."""

from __future__ import annotations


def service_app():
    import prometheus_client

    reg = prometheus_client.REGISTRY
    seen = set()
    for name, collector in list(reg._names_to_collectors.items()):
        if name.startswith("bentoml_") and id(collector) not in seen:
            seen.add(id(collector))
            reg.unregister(collector)
    from serving.service import DealerML

    return DealerML.to_asgi()
