"""Request contract of the service in process (fast): strict schemas, empty filters, messages,
the log filter's field names, churn reasons for ids without a score, newest alerts.

The same behaviour over HTTP (BentoML's own 400 answers rewritten, the content-type guard,
FastAPI query errors) is checked against the real server in ``tests/test_serving.py``.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pandas as pd
import pytest
from pydantic import ValidationError

from serving import schemas
from serving.churn import ChurnBackend, last_orders
from serving.dealers import DealersBackend
from serving.errors import (
    _NoBodiesFilter,
    describe_validation_errors,
    install_log_filter,
    safe_loc,
)


def _errors(model, body: str) -> list[dict]:
    with pytest.raises(ValidationError) as err:
        model.model_validate_json(body)
    return err.value.errors(include_input=False, include_context=False, include_url=False)


@pytest.mark.parametrize("model, body, field", [
    (schemas.DealerScoresRequest, '{"account_ids": []}', "account_ids"),
    (schemas.DealerScoresRequest, '{"region": []}', "region"),
    (schemas.DealerScoresRequest, '{"tier": [], "top_k": 3}', "tier"),
    (schemas.ForecastRequest, '{"series_ids": [], "location": ["DC1"]}', "series_ids"),
    (schemas.ForecastRequest, '{"sku": []}', "sku"),
])
def test_empty_list_filters_are_refused_naming_the_field(model, body, field):
    answer = describe_validation_errors(_errors(model, body), model)
    assert answer["error"].startswith("invalid request body: 1 problem: ")
    assert f"{field}: must not be empty; leave the field out for no filter" in answer["error"]
    assert answer["detail"][0]["field"] == field


@pytest.mark.parametrize("model, body, field, expected", [
    (schemas.ForecastRequest, '{"location": ["DC1"], "horizon": true}', "horizon", "an integer between 1 and 104"),
    (schemas.ForecastRequest, '{"location": ["DC1"], "horizon": "8"}', "horizon", "an integer between 1 and 104"),
    (schemas.SafetyStockRequest, '{"series_ids": ["a"], "service_level": "0.9"}', "service_level",
     "a finite number between 0.5 and 1, exclusive"),
    (schemas.DealerScoresRequest, '{"top_k": "5"}', "top_k", "an integer between 1 and 5000"),
    (schemas.DealerScoresRequest, '{"top_k": 2.0}', "top_k", "an integer between 1 and 5000"),
    (schemas.ChurnScoresRequest, '{"account_ids": [1]}', "account_ids.0", "a string of 1 to 200 characters"),
])
def test_wrong_json_types_are_not_coerced(model, body, field, expected):
    answer = describe_validation_errors(_errors(model, body), model)
    p = answer["detail"][0]
    assert p["field"] == field and p["type"] in ("int_type", "float_type", "string_type")
    assert expected in p["expected"] and expected in answer["error"]


def test_valid_requests_still_pass_ints_where_numbers_are_expected():
    r = schemas.SafetyStockRequest.model_validate_json(
        '{"series_ids": ["a"], "service_level": 0.95, "lead_time_days": 7, "on_hand": {"a": 10}}')
    assert r.lead_time_days == 7.0 and r.on_hand == {"a": 10.0}
    r = schemas.ForecastRequest.model_validate_json('{"location": ["DC1"], "horizon": 2, "levels": [80, 95.0]}')
    assert r.levels == [80.0, 95.0] and r.series_ids is None
    assert schemas.DealerScoresRequest.model_validate_json('{"top_k": 5}').region is None


def test_a_lead_time_may_be_zero_days_a_review_period_may_not():
    """Same-day supply (0 days) is a lead time (session 12); a review period of 0 days is not one."""
    r = schemas.SafetyStockRequest.model_validate_json(
        '{"series_ids": ["a"], "lead_time_days": 0, "lead_times": {"a": {"lead_time_days": 0}}}')
    assert r.lead_time_days == 0.0 and r.lead_times["a"].lead_time_days == 0.0
    prop = schemas.SafetyStockRequest.model_json_schema()["properties"]["lead_time_days"]["anyOf"][0]
    assert prop["minimum"] == 0 and "exclusiveMinimum" not in prop
    for body, field in (('{"series_ids": ["a"], "lead_time_days": -0.5}', "lead_time_days"),
                        ('{"series_ids": ["a"], "lead_times": {"a": {"lead_time_days": -1}}}', "lead_times.a.lead_time_days"),
                        ('{"series_ids": ["a"], "review_period_days": 0}', "review_period_days")):
        answer = describe_validation_errors(_errors(schemas.SafetyStockRequest, body), schemas.SafetyStockRequest)
        assert answer["detail"][0]["field"] == field, answer


@pytest.mark.parametrize("level", [0.3, 0.5, 1.0])
def test_service_level_bounds_are_in_the_schema(level):
    answer = describe_validation_errors(
        _errors(schemas.SafetyStockRequest, f'{{"series_ids": ["a"], "service_level": {level}}}'),
        schemas.SafetyStockRequest)
    assert "service_level" in answer["error"] and "between 0.5 and 1, exclusive" in answer["error"]
    prop = schemas.SafetyStockRequest.model_json_schema()["properties"]["service_level"]
    assert prop["minimum"] == 0.5 and prop["maximum"] == 1 and prop["exclusiveMinimum"] is True
    assert schemas.SafetyStockRequest.model_validate_json('{"series_ids": ["a"], "service_level": 0.51}')


def test_nan_level_and_message_title():
    answer = describe_validation_errors(
        _errors(schemas.ForecastRequest, '{"location": ["DC1"], "levels": [NaN], "zz": 1}'),
        schemas.ForecastRequest)
    assert answer["error"].startswith("invalid request body: 2 problems: ")
    assert "IODescriptor" not in answer["error"] and "validation error for" not in answer["error"]
    assert "levels.0: Input should be a finite number (expected a finite number between 0 and 100, exclusive)" \
        in answer["error"]
    assert "zz: Extra inputs are not permitted (expected only the fields [" in answer["error"]
    bad_json = describe_validation_errors(_errors(schemas.ChurnScoresRequest, '{"account_ids": ['))
    # what is wrong first, then how to send it (it began with the how, to a client that had sent application/json)
    assert bad_json["error"].startswith("the body is not valid JSON (EOF while parsing a list at line 1 column 17); "
                                        "send a JSON body with Content-Type: application/json, one object")


def test_log_filter_prints_known_field_names_only(caplog):
    install_log_filter()
    assert safe_loc(("account_ids", 3)) == "account_ids.3"
    assert safe_loc(('{"account_ids":["D00001"]}',)) == "<extra field>"
    assert safe_loc(("on_hand", "SKU-SECRET", "[key]")) == "on_hand.<id>.[key]"
    try:
        schemas.ChurnScoresRequest.model_validate_json('{"account_ids": ["a"], "BODY-MARKER-1": 1}')
    except ValidationError as exc:
        record = logging.LogRecord("bentoml", logging.ERROR, __file__, 1, "Exception on %s", ("/x",),
                                   (type(exc), exc, None))
    assert _NoBodiesFilter().filter(record)
    text = record.getMessage()
    assert "BODY-MARKER" not in text and "<extra field>" in text and record.exc_info is None


# ----------------------------------------------------------------- churn
def _churn_backend(alerts: pd.DataFrame | None = None) -> ChurnBackend:
    book = SimpleNamespace(
        accounts=pd.DataFrame({"account_id": ["A1", "A2", "A3", "A4"]}),
        order_lines=pd.DataFrame({
            "account_id": ["A1", "A2", "A2", "A4"],
            "order_date": pd.to_datetime(["2024-11-02", "2022-09-15", "2022-03-01", "2025-02-01"]),
        }),
    )
    cutoff = pd.Timestamp("2025-01-01")
    table = pd.DataFrame({"account_id": ["A1"], "probability": [0.2], "tier": ["low"], "reason_1": ["r1"],
                          "reason_2": [None], "reason_3": [None], "model_version": ["dealerml-churn/1"]})
    backend = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1", as_of=cutoff,
                           table=table, alerts_target="unused", alerts_table="churn_alerts",
                           lookback_days=365, last_orders=last_orders(book, cutoff))
    if alerts is not None:
        backend._alerts_frame = lambda: alerts  # type: ignore[method-assign]
    return backend


def test_churn_scores_answer_the_scorable_ids_and_say_why_not_the_others():
    b = _churn_backend()
    out = b.scores(SimpleNamespace(account_ids=["A1", "A2", "A3", "A4", "ZZ9", "A2"]))
    assert out["model_version"] == "dealerml-churn/1" == out["scores"][0]["model_version"]
    assert [s["account_id"] for s in out["scores"]] == ["A1"]
    reasons = {x["account_id"]: x["reason"] for x in out["not_scored"]}
    assert list(reasons) == ["A2", "A3", "A4", "ZZ9"]
    assert reasons["A2"] == ("not in the churn population: last order 2022-09-15, before the 365-day "
                             "lookback ending 2025-01-01")
    assert reasons["A3"].startswith("not in the churn population: no order before 2025-01-01")
    assert reasons["A4"].startswith("not in the churn population: no order before 2025-01-01")  # only later
    assert reasons["ZZ9"] == "unknown account id"
    from serving.errors import UnknownIds

    with pytest.raises(UnknownIds) as err:
        b.scores(SimpleNamespace(account_ids=["A2", "ZZ9"]))
    assert err.value.ids == ["A2", "ZZ9"] and len(err.value.extra["not_scored"]) == 2
    assert "A2: not in the churn population: last order 2022-09-15" in str(err.value)
    assert "ZZ9: unknown account id" in str(err.value)


def test_churn_alerts_limit_takes_the_newest_and_counts_matches():
    alerts = pd.DataFrame({"account_id": ["A1", "A2", "A3", "A4"],
                           "cutoff": ["2024-10-01", "2024-11-01", "2024-12-01", "2025-01-01"],
                           "probability": [0.9] * 4, "tier": ["high"] * 4})
    b = _churn_backend(alerts)
    out = b.alerts(None, 2)
    assert [a["account_id"] for a in out["alerts"]] == ["A3", "A4"]
    assert out["matched"] == 4 and out["count"] == 2
    out = b.alerts(pd.Timestamp("2024-11-01").date(), 10)
    assert [a["account_id"] for a in out["alerts"]] == ["A2", "A3", "A4"] and out["matched"] == 3
    schemas.ChurnAlertsResponse.model_validate(out)


# ----------------------------------------------------------------- dealers
def test_dealer_scores_programme_empty_filters_and_known_values():
    from serving.errors import UnknownIds

    table = pd.DataFrame({"account_id": ["A1", "A2"], "potential": [2.0, 1.0], "segment": ["s", "t"],
                          "lifecycle": ["growth", "maturity"], "tier": ["key", "core"],
                          "programme": ["gold", "silver"], "region": ["East", "West"]})
    b = DealersBackend(model_name="dealerml-dealers", model_version="1", as_of=pd.Timestamp("2025-01-01"), table=table)
    out = b.scores(schemas.DealerScoresRequest(region=["West"]))
    assert [d["programme"] for d in out["dealers"]] == ["silver"]
    schemas.DealerScoresResponse.model_validate(out)
    with pytest.raises(UnknownIds) as err:
        b.scores(schemas.DealerScoresRequest(region=["west"]))
    assert str(err.value) == "1 unknown region(s): ['west']; the served model knows 2: ['East', 'West']"
