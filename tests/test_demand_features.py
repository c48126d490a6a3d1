"""features.demand: hand-checked series, demand classes and the no-look-ahead guarantee."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.demand import aggregate_series, demand_classes, demand_series


def _lines(rows):
    df = pd.DataFrame(rows, columns=["order_date", "sku", "location", "quantity", "unit_price", "promo"])
    df["order_date"] = pd.to_datetime(df["order_date"], format="ISO8601")
    df["line_amount"] = df["quantity"] * df["unit_price"]
    return df.sort_values("order_date").reset_index(drop=True)


LINES = _lines([
    ("2024-01-01", "A", "L1", 3.0, 2.0, 0.0),   # Monday, week of Jan 1
    ("2024-01-03", "A", "L1", 1.0, 4.0, 1.0),   # same week, on promotion
    ("2024-01-10", "A", "L1", 2.0, 2.0, 0.0),   # week of Jan 8
    ("2024-01-09", "B", "L1", 5.0, 1.0, 0.0),   # B starts in the week of Jan 8
    ("2024-01-17", "A", "L2", 7.0, 1.0, 0.0),
])


def test_weekly_series_by_hand():
    s = demand_series(LINES, cutoff="2024-01-24", freq="W", levels=("sku", "location"))
    # cutoff Wednesday Jan 24: the last complete week is Jan 15-21
    a = s[s["unique_id"] == "A/L1"]
    assert a["ds"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert a["y"].tolist() == [4.0, 2.0, 0.0]
    assert a["price"].tolist() == pytest.approx([(3 * 2 + 1 * 4) / 4, 2.0, 2.0])  # carried forward
    assert a["promo"].tolist() == pytest.approx([0.25, 0.0, 0.0])
    b = s[s["unique_id"] == "B/L1"]
    assert b["ds"].min() == pd.Timestamp("2024-01-08") and b["y"].tolist() == [5.0, 0.0]
    assert set(s.columns) == {"unique_id", "ds", "y", "sku", "location", "price", "promo"}
    # a cutoff on the Sunday closing a week includes that week
    s2 = demand_series(LINES, cutoff="2024-01-21 23:00", freq="W", levels=("sku",))
    assert s2.groupby("unique_id")["ds"].max().eq(pd.Timestamp("2024-01-15")).all()
    assert s2.loc[s2["unique_id"] == "A", "y"].tolist() == [4.0, 2.0, 7.0]


def test_no_lookahead_appending_rows_after_cutoff_changes_nothing():
    cutoff = pd.Timestamp("2024-01-24")
    before = demand_series(LINES, cutoff=cutoff, freq="W")
    later = _lines([
        ("2024-01-24 10:00", "A", "L1", 100.0, 9.0, 1.0),  # same (partial) week as the cutoff
        ("2024-02-05", "A", "L1", 50.0, 9.0, 1.0),
        ("2024-03-01", "C", "L1", 8.0, 1.0, 0.0),          # a new SKU after the cutoff
    ])
    after = demand_series(pd.concat([LINES, later], ignore_index=True), cutoff=cutoff, freq="W")
    pd.testing.assert_frame_equal(before, after)
    original = LINES.copy()
    demand_series(LINES, cutoff=cutoff, freq="M")
    pd.testing.assert_frame_equal(LINES, original)  # input not mutated


def test_monthly_and_total_levels():
    s = demand_series(LINES, cutoff="2024-02-29", freq="M", levels=())
    assert s["unique_id"].unique().tolist() == ["total"]
    assert s["y"].tolist() == [18.0, 0.0]
    bottom = demand_series(LINES, cutoff="2024-01-24", freq="W", levels=("sku", "location"))
    by_sku = aggregate_series(bottom, ("sku",))
    assert by_sku.loc[by_sku["unique_id"] == "A", "y"].tolist() == [4.0, 2.0, 7.0]
    total = aggregate_series(bottom, ())
    assert total["y"].sum() == bottom["y"].sum() == 18.0


def test_demand_classes_by_hand():
    rows = {
        "smooth": [5, 5, 6, 4],
        "erratic": [1, 9, 1, 9],
        "intermittent": [0, 4, 0, 4],
        "lumpy": [0, 1, 0, 9],
        "none": [0, 0, 0, 0],
    }
    df = pd.DataFrame([(k, i, float(v)) for k, vals in rows.items() for i, v in enumerate(vals)],
                      columns=["unique_id", "ds", "y"])
    c = demand_classes(df).set_index("unique_id")
    assert c.loc["smooth", "demand_class"] == "smooth" and c.loc["smooth", "adi"] == 1.0
    assert c.loc["erratic", "cv2"] == pytest.approx(0.64) and c.loc["erratic", "demand_class"] == "erratic"
    assert c.loc["intermittent", "adi"] == 2.0 and c.loc["intermittent", "demand_class"] == "intermittent"
    assert c.loc["lumpy", "cv2"] == pytest.approx((4 / 5) ** 2) and c.loc["lumpy", "demand_class"] == "lumpy"
    assert c.loc["none", "demand_class"] == "zero" and np.isnan(c.loc["none", "adi"])


def test_partial_first_period_of_the_book_is_left_out():
    # the book starts on Wednesday Jan 3: the week of Jan 1 is only partly observed
    s = demand_series(LINES, cutoff="2024-01-24", freq="W", levels=("sku", "location"), start="2024-01-03")
    assert s.loc[s["unique_id"] == "A/L1", "ds"].min() == pd.Timestamp("2024-01-08")
    # a book starting on the Monday keeps that week
    s = demand_series(LINES, cutoff="2024-01-24", freq="W", levels=("sku", "location"), start="2024-01-01")
    assert s.loc[s["unique_id"] == "A/L1", "y"].tolist() == [4.0, 2.0, 0.0]
