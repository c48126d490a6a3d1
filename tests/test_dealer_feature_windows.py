"""The period windows of ``features.dealers`` are what its docstring says (helper-124, session 16).

The docstring said "(cutoff - P, cutoff)" and "(cutoff - 2P, cutoff - P]"; the code keeps a line
whose age is exactly P days in the last period: the windows are ``[cutoff - P, cutoff)`` and
``[cutoff - 2P, cutoff - P)``, as "the last W days" of ``features.accounts`` (``cd - W <= d < cd``).
"""

from __future__ import annotations

import pandas as pd

from features.accounts import account_features
from features.dealers import dealer_features

CUT = pd.Timestamp("2024-01-01")
P = 30


def _line(account: str, at: pd.Timestamp, amount: float) -> dict:
    return {"order_id": f"{account}-{at}", "order_date": at, "account_id": account, "sku": "S1",
            "quantity": 1.0, "unit_price": amount, "line_amount": amount}


def test_period_windows_include_their_start_and_exclude_their_end():
    day = pd.Timedelta(days=1)
    second = pd.Timedelta(seconds=1)
    lines = pd.DataFrame([
        _line("A", CUT - P * day, 1.0),  # exactly P days before: the last period's first instant
        _line("A", CUT - P * day - second, 10.0),  # a second earlier: the period before
        _line("A", CUT - second, 100.0),  # the cutoff itself is excluded; just before it is in
        _line("A", CUT, 1e6),  # on the cutoff: in no window
        _line("A", CUT - 2 * P * day, 1000.0),  # exactly 2P days before: the period before's first instant
        _line("A", CUT - 2 * P * day - second, 10000.0),  # a second earlier: in neither period
        _line("A", CUT - 365 * day, 7.0),  # exactly 365 days before: in the last 365 days
        _line("A", CUT - 400 * day, 0.5),  # history: the book covers the year-ago period
    ])
    f = dealer_features(lines, cutoff=CUT, period_days=P).loc["A"]
    assert f["last_period_value"] == 1.0 + 100.0
    assert f["prev_period_value"] == 10.0 + 1000.0
    assert f["value_90d"] == 1.0 + 10.0 + 100.0 + 1000.0 + 10000.0
    # [cutoff - 365 - P, cutoff - 365): the line exactly 365 days back is its end, excluded; 400 is too old
    assert f["year_ago_period_value"] == 0.0
    assert f["annual_value"] == 1.0 + 10.0 + 100.0 + 1000.0 + 10000.0 + 7.0
    # the same bounds as "the last W days" of the account features, on whole days
    acc = account_features(lines.assign(order_date=lines["order_date"].dt.normalize()), cutoff=CUT,
                           windows=(P, 2 * P, 365)).set_index("account_id").loc["A"]
    daily = dealer_features(lines.assign(order_date=lines["order_date"].dt.normalize()), cutoff=CUT,
                            period_days=P).loc["A"]
    assert daily["last_period_value"] == acc[f"revenue_{P}d"]
    assert daily["last_period_value"] + daily["prev_period_value"] == acc[f"revenue_{2 * P}d"]
    assert daily["annual_value"] == acc["revenue_365d"]
