"""A customer's service events reach the churn features and reasons truthfully: counts match
the events by hand, and a book that does not record resolution times (the optional
``resolution_days`` column absent) does not make every case ever raised "still open"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.accounts import account_features
from models.reasons import reason_texts
from training.validate import validate_order_lines, validate_service_events

CUTOFF = "2024-06-01"


def _lines() -> pd.DataFrame:
    days = pd.date_range("2023-06-01", "2024-05-20", freq="14D")
    raw = pd.DataFrame([{"order_id": f"{a}-{i}", "order_date": str(d.date()), "account_id": a, "sku": "S1",
                         "quantity": "2", "unit_price": "5"} for a in ("007", "7", "42") for i, d in enumerate(days)])
    return validate_order_lines(raw)[0]


def _events(with_resolution: bool) -> pd.DataFrame:
    raw = pd.DataFrame({
        "event_date": ["2023-07-01", "2024-04-10", "2024-05-02", "2024-05-20", "2024-05-25", "2024-07-01"],
        "account_id": ["007", "007", "007", "007", "7", "007"],
        "kind": ["Complaint", "complaint", "COMPLAINT", "return", "ticket", "complaint"],
        "resolution_days": ["3", "2", "", "40", "1", "1"],
    })
    if not with_resolution:
        raw = raw.drop(columns="resolution_days")
    return validate_service_events(raw, as_of="2024-12-31")[0]


def test_service_counts_and_open_cases_by_hand():
    f = account_features(_lines(), None, _events(True), cutoff=CUTOFF).set_index("account_id")
    # "007" and "7" are different accounts (ids are text)
    assert f.loc["007", "complaints_60d"] == 2 and f.loc["007", "complaints_180d"] == 2
    assert f.loc["007", "returns_60d"] == 1 and f.loc["7", "tickets_60d"] == 1 and f.loc["7", "complaints_180d"] == 0
    # open by the cutoff: 2024-05-02 (no resolution) and 2024-05-20 (+40 days); the 2024-07-01 one is after it
    assert f.loc["007", "open_events"] == 2 and f.loc["7", "open_events"] == 0 and f.loc["42", "open_events"] == 0


def test_no_resolution_column_means_open_cases_unknown():
    f = account_features(_lines(), None, _events(False), cutoff=CUTOFF)
    assert f["complaints_60d"].sum() == 2  # the counts still come through
    # was 4 "still open" for 007 (every event it ever raised) and 1 for 7
    assert f["open_events"].isna().all() and f["resolution_days_mean_180d"].isna().all()
    contrib = pd.DataFrame({"open_events": np.ones(len(f))})
    texts, _ = reason_texts(f, contrib)
    assert not any("still open" in t for row in texts for t in row)


def test_resolution_reason_only_when_slower_than_most():
    # 25 accounts whose cases took 1..25 days: a fast resolver's time is no churn reason
    f = pd.DataFrame({"account_id": [str(i) for i in range(25)], "resolution_days_mean_180d": np.arange(1.0, 26.0)})
    texts, topics = reason_texts(f, pd.DataFrame({"resolution_days_mean_180d": np.ones(25)}))
    assert texts[0] == [] and texts[12] == []  # 1 day ('1 days' before), and the median itself
    assert texts[24] == ["service cases took 25 days on average to resolve in the last 180 days against a median "
                         "of 13 days across the 25 accounts scored with a resolved case"]
    assert sum(bool(t) for t in texts) == 12


def test_churn_slices_by_an_extra_account_attribute():
    """churn.slices naming a mapped accounts column (credit_limit) was skipped silently, as was a
    typo; the attribute is now joined on account_id and an unknown name is a ConfigError."""
    from training.churn_backtest import ChurnSettings, _slices, slice_columns
    from training.errors import ConfigError

    rng = np.random.default_rng(0)
    test = pd.DataFrame({"account_id": [str(i) for i in range(80)], "region": "N", "churned": rng.integers(0, 2, 80),
                         "p_m": rng.random(80)})
    acc = pd.DataFrame({"account_id": [str(i) for i in range(80)], "credit_limit": [5000.0] * 40 + [25000.0] * 40})
    out = slice_columns(test, acc, ["region", "credit_limit"])
    assert out["credit_limit"].tolist() == acc["credit_limit"].tolist()
    rep = _slices(out, ChurnSettings(slices=["region", "credit_limit"]), ["m"])
    assert set(rep["credit_limit"]) == {"5000.0", "25000.0"} and rep["credit_limit"]["5000.0"]["n"] == 40
    with pytest.raises(ConfigError, match=r"churn.slices: \['regoin'\].*credit_limit"):
        slice_columns(test, acc, ["regoin"])
