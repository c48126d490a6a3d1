"""Segments and value tiers on small or lopsided books (helper-124, session 16).

Both are read against the book: the tiers' cut points are quantiles of its annual values (the top
2% "strategic", ...), the segments' "high" and "low" its robust scale. Where the book gives them
nothing to tell accounts apart they said the top of the list for everyone:

* Accounts of equal annual value all reached the tier whose cut point fell on their value: five
  accounts of 440 a year were all "strategic" (gold); in a book where most accounts bought nothing
  in the last year, every one of those was "growth" (silver). Tied accounts now share the lower tier.
* Two or three accounts ordering alike: every group disabled (its features constant), every
  account scored -inf for all five and took the first, "strategic key account", with the reason
  "closest profile, no strong signal". The segments now refuse to fit, naming the constant
  features; ``fit_pipeline`` turns that into its "too small a book" DataError.
Figures are from the order lines.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from features.dealers import dealer_features
from models.segments import SegmentModel, TierModel

CUT = pd.Timestamp("2024-01-01")


def _lines(spec: dict[str, tuple[list[int], float]]) -> pd.DataFrame:
    """account -> (order ages in days before the cutoff, amount per order); one line per order."""
    return pd.DataFrame([{"order_id": f"{a}-{d}", "order_date": CUT - pd.Timedelta(days=d), "account_id": a,
                          "sku": "S1", "quantity": 1.0, "unit_price": v, "line_amount": v}
                         for a, (ages, v) in spec.items() for d in ages])


def test_accounts_of_equal_value_share_the_lower_tier():
    # 16 accounts last ordered 400+ days ago (nothing in the last year), 4 active ones of distinct value
    spec = {f"L{i:02d}": ([400 + i], 50.0) for i in range(16)}
    spec |= {f"A{i}": ([300, 200, 100, 10], 100.0 * (i + 1)) for i in range(4)}
    lines = _lines(spec)
    annual = dealer_features(lines, cutoff=CUT)["annual_value"]
    recent = lines[lines["order_date"] >= CUT - pd.Timedelta(days=365)].groupby("account_id")["line_amount"].sum()
    assert annual.to_dict() == recent.reindex(annual.index).fillna(0.0).to_dict()
    assert (annual == 0).sum() == 16
    tiers = TierModel().fit(annual).predict(annual)
    # was "growth" / silver for all 16: the 70% cut point fell on their value, 0
    assert set(tiers.loc[annual == 0, "tier"]) == {"occasional"}
    assert set(tiers.loc[annual == 0, "programme"]) == {"bronze"}
    # the active accounts keep the tiers the interpolated cut points give
    assert tiers.loc[["A3", "A2", "A1", "A0"], "tier"].tolist() == ["strategic", "key", "growth", "growth"]

    same = pd.Series(440.0, index=list("abcde"))  # was "strategic" (the top 2%) for all five
    assert TierModel().fit(same).predict(same)["tier"].tolist() == ["occasional"] * 5
    # values that all differ: the interpolated cut points, as before (5 accounts: the top one strategic)
    v = pd.Series([100.0, 200.0, 300.0, 400.0, 500.0])
    tm = TierModel().fit(v)
    assert tm.thresholds_["strategic"] == pytest.approx(v.quantile(0.98))
    assert tm.predict(v)["tier"].tolist() == ["occasional", "occasional", "regular", "growth", "strategic"]
    # a tie straddling a cut point: the tier starts at the next value above the tied ones
    tied = pd.Series([1.0, 5.0, 5.0, 5.0, 9.0])
    tm = TierModel().fit(tied)
    assert tm.thresholds_["regular"] == 9.0 and tm.predict(tied)["tier"].tolist() == ["occasional"] * 4 + ["strategic"]


def test_segments_refuse_a_book_whose_accounts_order_alike():
    ages = list(range(700, 0, -17))
    lines = _lines({"A": (ages, 20.0), "B": (ages, 20.0), "C": (ages, 20.0)})
    feats = dealer_features(lines, cutoff=CUT)
    assert feats["annual_value"].nunique() == 1
    # was: all three "strategic_key_account", "closest profile, no strong signal"
    with pytest.raises(ValueError, match=r"no segment can be read from behaviour: the features every group rests on "
                                         r"do not vary across the 3 accounts fitted on \(constant: annual_value, "):
        SegmentModel().fit(feats)
    # one account ordering a little more: the segments fit, and the two alike are no key accounts
    more = _lines({"A": (ages, 20.0), "B": (ages, 20.0), "C": (ages, 22.0)})
    f2 = dealer_features(more, cutoff=CUT)
    pred = SegmentModel().fit(f2).predict(f2)
    assert (pred.loc[["A", "B"], "segment"] != "strategic_key_account").all()
    year = more[more["order_date"] >= CUT - pd.Timedelta(days=365)].groupby("account_id")["line_amount"].sum()
    quoted = 0
    for acc, text in pred["segment_reason"].items():  # the annual figures quoted are the lines' own
        for m in re.finditer(r"annual purchases ([\d,]+) \(book median ([\d,]+)\)", text):
            assert m.groups() == (f"{year[acc]:,.0f}", f"{year.median():,.0f}"), (acc, text)
            quoted += 1
    assert quoted >= 1
