"""The driver-range warnings in the service's answers: POST /forecast and POST /safety_stock give, in
``warnings``, one entry per driver reading whose planned values lie outside the range the champion's
LightGBM member responds to (models.demand_driver_range; the model side is in
test_demand_driver_range.py), with the bound, the first rows and the message ``dealerml forecast
--future`` prints; the OpenAPI document describes them."""

from __future__ import annotations

import pandas as pd
import pytest
from _support_driver_range import (
    KHI,
    KLO,
    H,
    K,
    _fit_levels,
    _fit_prices,
    _old,
    _rng,
)

from models.demand import DemandForecaster
from models.demand_driver_range import RELATIVE, warning_text


@pytest.fixture(scope="module")
def fitted() -> DemandForecaster:
    return _fit_prices()


@pytest.fixture(scope="module")
def levels() -> DemandForecaster:
    return _fit_levels()


def _service_backend(est: DemandForecaster):
    """``est`` served as ``serving.demand.DemandBackend`` (weekly, 80 / 95 % intervals, a 7-day lead time and
    a review period of one week, so /safety_stock sizes within the 3-week horizon)."""
    from serving.demand import DemandBackend

    fc = est.predict().sort_values(["unique_id", "ds"])
    uids = fc["unique_id"].drop_duplicates().tolist()

    def grid(c):
        return fc[c].to_numpy().reshape(len(uids), H)

    return DemandBackend(model_name="m", model_version="m/1", freq="W", uids=uids, keys=None,
                         dates=pd.DatetimeIndex(sorted(fc["ds"].unique())), mean=grid("Final"),
                         bounds={lv: (grid(f"Final-lo-{lv}"), grid(f"Final-hi-{lv}")) for lv in (80, 95)},
                         last_observed=est.last_ds_, estimator=est,
                         members=fc.groupby("unique_id", sort=False)["final_model"].first().tolist(),
                         policy_settings={"review_period": 1.0, "lead_time_days": 7.0, "lead_time_std_days": 0.0})


def _service_plan(d: list[str]) -> list[dict]:
    """A request's plan over the forecast dates ``d``: s1 40 % above the max and at it, s4 below the min,
    s2 just above the max."""
    return [{"unique_id": "s1", "ds": d[1], "price": 17.5}, {"unique_id": "s1", "ds": d[2], "price": 12.5},
            {"unique_id": "s4", "ds": d[0], "price": 7.0}, {"unique_id": "s2", "ds": d[0], "price": 12.6}]


def _service_warnings(d: list[str], est: DemandForecaster) -> list[dict]:
    """What the service answers in ``warnings`` for :func:`_service_plan`: the raw check's entry, then the
    check's relative to each series' mean (all four rows are beyond KLO .. KHI, s1's 12.5 too)."""
    rlo, rhi, rmin, rmax, _ = est.driver_relative_ranges_["price"]
    return [{
        "kind": "value", "driver": "price", "rows": 4, "of_rows": 4, "below": 1, "above": 3, **_rng(est),
        "examples": [{"unique_id": "s1", "ds": d[1], "value": 17.5, "relative": None},
                     {"unique_id": "s1", "ds": d[2], "value": 12.5, "relative": None},
                     {"unique_id": "s4", "ds": d[0], "value": 7.0, "relative": None}],
        "message": (f"price is outside the range the forecast responds to in 4 of 4 planned rows (3 above {KHI}, 1 "
                    f"below {KLO}), e.g. (series, date, price) s1 {d[1]} 17.5, s1 {d[2]} 12.5, s4 {d[0]} 7, ...; the "
                    f"forecast responds to price only between {KLO} and {KHI}: the LightGBM member (the one that reads "
                    f"drivers) needs {K} training rows on each side of a split, and its training rows span 7.5 .. 12.5, "
                    f"so its trees treat any price at or above {KHI} as {KHI} and any at or below {KLO} as {KLO}; the "
                    "forecast still moves with such a price where its multiple of its series' mean is inside the range "
                    "of those (checked on its own)")}, {
        # the same rows divided by their series' mean (s1 11.475, s4 11.7275, s2 11.3832: the 100 of the first
        # period counts in it) against the K-th multiples trained on (0.71 .. 1.03); s1's 12.5 is 1.089 x
        "driver": "price", "kind": RELATIVE, "rows": 4, "of_rows": 4, "below": 1, "above": 3,
        "min": rmin, "max": rmax, "lo": rlo, "hi": rhi, "min_child_samples": K,
        "examples": [{"unique_id": "s1", "ds": d[1], "value": 17.5, "relative": pytest.approx(17.5 / 11.475)},
                     {"unique_id": "s1", "ds": d[2], "value": 12.5, "relative": pytest.approx(12.5 / 11.475)},
                     {"unique_id": "s4", "ds": d[0], "value": 7.0, "relative": pytest.approx(7.0 / 11.7275)}],
        "message": (f"price relative to its series' mean is outside the range the forecast responds to in 4 of 4 "
                    f"planned rows (3 above 1.03 x, 1 below 0.71 x), e.g. (series, date, price (x its series' mean)) "
                    f"s1 {d[1]} 17.5 (1.53 x), s1 {d[2]} 12.5 (1.09 x), s4 {d[0]} 7 (0.60 x), ...; the forecast "
                    "responds to price as a multiple of its series' mean (up to the last date of fit) only between "
                    f"0.71 and 1.03 x: the LightGBM member (the one that reads drivers) needs {K} training rows on each "
                    "side of a split, and its training rows span 0.65 .. 1.09 x, so its trees treat any multiple at or "
                    "above 1.03 x as 1.03 x and any at or below 0.71 x as 0.71 x; the forecast still moves with such a "
                    "price where the price itself is inside its range (checked on its own)")}]


def test_the_service_answers_the_warnings_of_a_plan(fitted):
    from serving.schemas import ForecastRequest, ForecastResponse

    backend = _service_backend(fitted)
    d = backend.date_strings
    rows = _service_plan(d)
    out = backend.forecast(ForecastRequest.model_validate({"series_ids": ["s1", "s2", "s4"], "horizon": H,
                                                           "drivers": rows}))
    assert out["warnings"] == _service_warnings(d, fitted)
    got = ForecastResponse.model_validate(out)  # the declared schema keeps the field
    assert got.warnings[0].rows == 4 and str(got.warnings[0].examples[0].ds) == d[1]
    assert "warnings" in ForecastResponse.model_json_schema()["properties"]
    # inside the range, no plan, or a champion saved before the ranges: an empty list
    inside = [{**r, "price": 10.0} for r in rows]
    ok = {"series_ids": ["s1", "s2", "s4"], "horizon": H}
    assert backend.forecast(ForecastRequest.model_validate({**ok, "drivers": inside}))["warnings"] == []
    assert backend.forecast(ForecastRequest.model_validate(ok))["warnings"] == []
    backend.estimator = _old(fitted)
    assert backend.forecast(ForecastRequest.model_validate({**ok, "drivers": rows}))["warnings"] == []


def test_safety_stock_answers_the_warnings_of_a_plan(fitted):
    """/safety_stock sizes the stock from the forecast under the plan: the same entries and message as
    /forecast, in its own ``warnings``; ``[]`` inside the range, without a plan or for an old champion."""
    from serving.schemas import ForecastRequest, SafetyStockRequest, SafetyStockResponse

    backend = _service_backend(fitted)
    d = backend.date_strings
    rows = _service_plan(d)
    ask = {"series_ids": ["s1", "s2", "s4"]}
    out = backend.safety_stock(SafetyStockRequest.model_validate({**ask, "drivers": rows}))
    assert out["warnings"] == _service_warnings(d, fitted)
    assert out["warnings"] == backend.forecast(ForecastRequest.model_validate({**ask, "horizon": H,
                                                                              "drivers": rows}))["warnings"]
    assert [r["drivers"] for r in out["rows"]] == ["planned"] * 3  # sized under the plan, warned about it
    got = SafetyStockResponse.model_validate(out)  # the declared schema keeps the field
    assert got.warnings[0].above == 3 and str(got.warnings[0].examples[2].ds) == d[0]
    assert got.warnings[0].message == out["warnings"][0]["message"]
    # inside the range, no plan, or a champion saved before the ranges: an empty list
    inside = [{**r, "price": 10.0} for r in rows]
    assert backend.safety_stock(SafetyStockRequest.model_validate({**ask, "drivers": inside}))["warnings"] == []
    plain = backend.safety_stock(SafetyStockRequest.model_validate(ask))
    assert plain["warnings"] == [] and SafetyStockResponse.model_validate(plain).warnings == []
    backend.estimator = _old(fitted)
    assert backend.safety_stock(SafetyStockRequest.model_validate({**ask, "drivers": rows}))["warnings"] == []


def test_the_openapi_document_lists_the_warnings_of_both_endpoints():
    """The service's OpenAPI document (what /docs.json serves, before its error answers are added)
    gives ``warnings`` on the 200 answer of /forecast and /safety_stock, as a list of DriverRangeWarning."""
    import json

    from serving.service import DealerML

    spec = json.loads(json.dumps(DealerML.openapi_spec.asdict(), default=str))
    schemas = spec["components"]["schemas"]
    for path in ("/forecast", "/safety_stock"):
        answer = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        field = answer["properties"]["warnings"]
        assert field["type"] == "array" and field["default"] == [], (path, field)
        assert field["items"] == {"$ref": "#/components/schemas/DriverRangeWarning"}, (path, field)
        assert "warnings" not in answer.get("required", []), path  # an older client may leave it unread
    assert {"driver", "rows", "of_rows", "below", "above", "min", "max", "examples", "message"} <= set(
        schemas["DriverRangeWarning"]["properties"])


def test_the_service_answers_the_relative_warnings(levels):
    from serving.schemas import (
        ForecastRequest,
        ForecastResponse,
        SafetyStockRequest,
        SafetyStockResponse,
    )

    backend = _service_backend(levels)
    d = backend.date_strings
    rows = [{"unique_id": "c", "ds": d[0], "price": 12.0}, {"unique_id": "a", "ds": d[1], "price": 5.0}]
    ask = {"series_ids": ["a", "c"], "drivers": rows}
    out = backend.forecast(ForecastRequest.model_validate({**ask, "horizon": H}))
    assert out["warnings"] == [{
        "driver": "price", "kind": RELATIVE, "rows": 1, "of_rows": 2, "below": 1, "above": 0,
        "min": pytest.approx(0.9), "max": pytest.approx(1.1), "lo": pytest.approx(0.9), "hi": pytest.approx(1.1),
        "min_child_samples": K, "examples": [{"unique_id": "c", "ds": d[0], "value": 12.0, "relative": 0.6}],
        "message": warning_text({**out["warnings"][0], "examples": [
            {"unique_id": "c", "ds": pd.Timestamp(d[0]), "value": 12.0, "relative": 0.6}]})}]
    assert "(1 below 0.90 x), e.g. (series, date, price (x its series' mean)) " \
        f"c {d[0]} 12 (0.60 x); the forecast responds to price as a multiple" in out["warnings"][0]["message"]
    got = ForecastResponse.model_validate(out).warnings[0]
    assert (got.kind, got.examples[0].relative, got.below) == (RELATIVE, 0.6, 1)
    stock = backend.safety_stock(SafetyStockRequest.model_validate(ask))
    assert stock["warnings"] == out["warnings"]
    assert SafetyStockResponse.model_validate(stock).warnings[0].kind == RELATIVE
    # a raw entry says kind "value" and no relative value in its examples, on the wire too
    raw = backend.forecast(ForecastRequest.model_validate({**ask, "horizon": H, "drivers": [{**rows[1], "price": 3.0}]}))
    first = ForecastResponse.model_validate(raw).warnings[0]
    assert (first.kind, first.examples[0].relative, [w["kind"] for w in raw["warnings"]]) == (
        "value", None, ["value", RELATIVE])
    assert raw["warnings"][0]["examples"][0]["relative"] is None


def test_the_openapi_document_describes_the_kind_and_the_relative_value():
    import json

    from serving.service import DealerML

    schemas = json.loads(json.dumps(DealerML.openapi_spec.asdict(), default=str))["components"]["schemas"]
    warning, example = schemas["DriverRangeWarning"], schemas["DriverRangeExample"]
    assert warning["properties"]["kind"]["enum"] == ["value", RELATIVE]
    assert warning["properties"]["kind"]["default"] == "value" and "kind" not in warning.get("required", [])
    assert "relative" in example["properties"] and "relative" not in example.get("required", [])
    # the bound the entries are counted against is described too (null for a champion fitted before it)
    assert {"lo", "hi", "min_child_samples"} <= set(warning["properties"])
    assert not {"lo", "hi", "min_child_samples"} & set(warning.get("required", []))


def test_the_response_schema_keeps_the_bound(fitted):
    from serving.schemas import ForecastRequest, ForecastResponse

    backend = _service_backend(fitted)
    d = backend.date_strings
    out = backend.forecast(ForecastRequest.model_validate({"series_ids": ["s1", "s2", "s4"], "horizon": H,
                                                           "drivers": _service_plan(d)}))
    got = ForecastResponse.model_validate(out).warnings[0]
    assert (got.lo, got.hi, got.min_child_samples) == (KLO, KHI, K)


def test_a_plan_row_naming_unknown_drivers_is_answered_with_their_names_cut(fitted):
    """A plan row naming a driver the champion does not have is a 422 naming it; a 1 MB name was echoed
    whole (a 1 MB answer, the body limit allows ~4 MB of them), unlike every other caller-chosen name
    (cut to 100 characters); and only the first five of 50 names were shown, without saying there were more."""
    from serving.errors import BadRequest
    from serving.schemas import ForecastRequest

    backend = _service_backend(fitted)
    d = backend.date_strings
    long = "p" * 1_000_000
    row = {"unique_id": "s1", "ds": d[0], long: 1.0, **{f"x{i}": 1.0 for i in range(49)}}
    with pytest.raises(BadRequest) as err:
        backend.forecast(ForecastRequest.model_validate({"series_ids": ["s1"], "horizon": H, "drivers": [row]}))
    text = str(err.value)
    assert len(text) < 1000, len(text)
    assert (f"drivers[0] (s1, {d[0]}) names unknown driver(s) ['{'p' * 100}... (1000000 characters)', 'x0', 'x1', "
            "'x2', 'x3'] (and 45 more); the champion's drivers are ['price']") in text
