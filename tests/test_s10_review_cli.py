"""Session 10 CLI review: defects found in the day's changes, each shown by a test that failed
before its fix. Tiny inputs: well under a second each."""

from __future__ import annotations

import pandas as pd


def test_on_hand_key_columns_keep_leading_zeros(tmp_path):
    """--on-hand with the series' key columns (sku, location) instead of unique_id read them as
    numbers: SKU '007' at location '01' became the id '7/01', which matches no series, so the
    real series '007/01' got no advice and its stock went to a no_policy row as never sold."""
    from training.commands.demand import _read_on_hand

    f = tmp_path / "oh.csv"
    f.write_text("sku,location,on_hand\n007,01,12\n0042,DC1,3\n")
    oh = _read_on_hand(f, ["sku", "location"])
    assert oh["unique_id"].tolist() == ["007/01", "0042/DC1"]
    assert oh["on_hand"].tolist() == [12.0, 3.0]


def test_category_drop_reason_names_no_category_it_does_not_know():
    """cat_share_max_drop is the largest fall of ANY category's share of spend; the dealer reason
    said 'its largest category's share of spend down 15 points' for an account whose largest
    category (A: 80 % -> 95 %) rose 15 points while a small one (B: 20 % -> 5 %) fell."""
    from features.accounts import account_features
    from models.potential import _feature_sentence

    cd = pd.Timestamp("2024-06-01")
    days, cats, amounts = [200, 150, 40, 30], ["A", "B", "A", "B"], [80.0, 20.0, 95.0, 5.0]
    ol = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4"], "account_id": "X", "sku": ["s1", "s2", "s1", "s2"],
                       "order_date": [cd - pd.Timedelta(days=d) for d in days], "category": cats,
                       "quantity": 1.0, "unit_price": amounts})
    f = account_features(ol, cutoff=cd)
    assert round(f["cat_share_max_drop"].iloc[0], 9) == 0.15 and f["cat_share_max_drop_category"].iloc[0] == "B"
    text = _feature_sentence("cat_share_max_drop", f["cat_share_max_drop"].iloc[0], 1.0)
    assert "largest category" not in text  # A, the largest, went up
    assert text == ("one category's share of its spend down 15 points, the largest fall among its categories "
                    "(last 90 days against the 180 before) (raises the forecast)")
