"""The demand backend tells a series it never saw from one it saw but could not forecast
(a SKU launched a few weeks before the end of the book): both 404, the
second with the reason under ``not_forecast`` instead of 'unknown series id'."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.demand import DemandForecaster
from serving.demand import DemandBackend
from serving.errors import UnknownIds
from serving.schemas import ForecastRequest


@pytest.fixture(scope="module")
def backend():
    rng = np.random.default_rng(0)
    ds = pd.date_range("2023-01-02", periods=60, freq="W-MON")
    parts = [pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(8, 60).astype(float)}) for i in range(4)]
    parts.append(pd.DataFrame({"unique_id": "new", "ds": ds[-5:], "y": [3.0, 4, 2, 5, 3]}))  # launched 5 weeks ago
    # short_history="skip": the behaviour before the short-history fallback (a champion saved before it
    # loads so); with the default the new SKU is served (test_new_sku_is_served_by_the_fallback)
    est = DemandForecaster(freq="W", h=4, models=("AutoETS",), short_history="skip").fit(pd.concat(parts, ignore_index=True))
    cfg = SimpleNamespace(demand={"freq": "W"}, config_path=None, name="t", seed=0)
    return DemandBackend.build(est, SimpleNamespace(name="dealerml-demand", version="3"), None, cfg)


def test_new_sku_is_served_by_the_fallback():
    """With the default short-history fallback the SKU launched 5 weeks ago is forecast (the
    mean of its last 4 weeks, flagged), and only an id never seen is a 404."""
    rng = np.random.default_rng(0)
    ds = pd.date_range("2023-01-02", periods=60, freq="W-MON")
    parts = [pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(8, 60).astype(float)}) for i in range(4)]
    parts.append(pd.DataFrame({"unique_id": "new", "ds": ds[-5:], "y": [3.0, 4, 2, 5, 3]}))
    est = DemandForecaster(freq="W", h=4, models=("AutoETS",)).fit(pd.concat(parts, ignore_index=True))
    cfg = SimpleNamespace(demand={"freq": "W"}, config_path=None, name="t", seed=0)
    be = DemandBackend.build(est, SimpleNamespace(name="dealerml-demand", version="3"), None, cfg)
    assert be.uids == ["new", "s0", "s1", "s2", "s3"] and be.not_forecast == {}
    got = be.forecast(ForecastRequest(series_ids=["new"], horizon=2))["series"][0]
    assert got["model"] == "ShortHistory" and got["note"].startswith("short history (5 periods): fallback forecast")
    assert [p["mean"] for p in got["forecast"]] == [pytest.approx(3.5)] * 2  # its last 4 weeks
    with pytest.raises(UnknownIds) as e:
        be.forecast(ForecastRequest(series_ids=["zz"], horizon=2))
    assert e.value.extra == {}


def test_not_forecast_series_are_named_with_the_reason(backend):
    assert backend.uids == ["s0", "s1", "s2", "s3"]
    assert backend.forecast(ForecastRequest(series_ids=["s1"], horizon=2))["model_version"] == "dealerml-demand/3"
    with pytest.raises(UnknownIds) as e:
        backend.forecast(ForecastRequest(series_ids=["new"], horizon=2))
    assert e.value.extra["not_forecast"] == {"new": "5 observed periods; the forecaster needs at least 8"}
    assert str(e.value).startswith("1 series id(s) are in the champion's history but were not forecast, e.g. new: "
                                   "5 observed periods; the forecaster needs at least 8")
    # mixed with an id it never saw: still 404 for all, the unknown one named as unknown
    with pytest.raises(UnknownIds) as e:
        backend.forecast(ForecastRequest(series_ids=["s1", "new", "zz"], horizon=2))
    assert e.value.ids == ["new", "zz"] and list(e.value.extra["not_forecast"]) == ["new"]
    assert "2 unknown series id(s): ['new', 'zz']" in str(e.value) and "1 of them are in its history" in str(e.value)
    with pytest.raises(UnknownIds) as e:
        backend.forecast(ForecastRequest(series_ids=["zz"], horizon=2))
    assert e.value.extra == {} and "1 unknown series id(s): ['zz']" in str(e.value)
