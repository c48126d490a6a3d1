"""Reasons true of the book as of the cutoff they are scored at.

An audit of the plain-language reasons on Online Retail (the registered dealer model, fitted on the
book to 2011-12-10, scoring 2011-06-01) recomputed every figure of 2,715 score rows from the raw
lines. One kind was false: 204 accounts with 2 orders in the 182 days on record, 4 a year, read
"orders more often than most accounts: 4 orders a year (book median 2)". The median quoted was the fit
snapshot's, which holds the accounts that went quiet after the cutoff; of the 2,715 accounts at
2011-06-01 the median is 4 a year, and 49 % order less often than these accounts, 30 % more often.
Every figure here is recomputed from the order lines, not read back from the features.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from features.dealers import dealer_features
from models.segments import SegmentModel

START = pd.Timestamp("2024-01-02")
EARLY = pd.Timestamp("2024-07-01")  # the cutoff scored
LATE = pd.Timestamp("2024-12-31")  # the cutoff the model is fitted at


def _book() -> pd.DataFrame:
    """Before EARLY: 30 accounts order once, 30 twice (TWO..), 30 four times; after it, 60 new accounts
    order once. At EARLY the median account orders twice in the 181 days on record (about 4 a year); at
    LATE, with the 60 new ones and the others' rates over 364 days, once a year."""
    rng = np.random.default_rng(7)
    rows = [("FIRST", START, "ONE00", "S0", 1.0, 10.0)]  # the book starts on START
    plans = {"ONE": [20], "TWO": [30, 120], "FOUR": [15, 60, 105, 150]}  # days after START
    for kind, days in plans.items():
        for i in range(30):
            for k, d in enumerate(days):
                for j in range(1 + (i + k) % 3):
                    rows.append((f"{kind}{i}-{k}", START + pd.Timedelta(days=d + i % 7), f"{kind}{i:02d}",
                                 f"S{j}", float(rng.integers(2, 9)), 5.0))
    for i in range(60):
        rows.append((f"NEW{i}", EARLY + pd.Timedelta(days=20 + i), f"NEW{i:02d}", "S1", 3.0, 5.0))
    ol = pd.DataFrame(rows, columns=["order_id", "order_date", "account_id", "sku", "quantity", "unit_price"])
    ol["line_amount"] = ol["quantity"] * ol["unit_price"]
    return ol


def _orders_a_year(ol: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """Orders a year of every account with an order before ``cutoff``: its orders over the days on record
    (the book is shorter than a year), x 365."""
    before = ol[ol["order_date"] < cutoff]
    days = (cutoff - before["order_date"].min()).total_seconds() / 86400
    return before.groupby("account_id")["order_id"].nunique() / days * 365


def test_segment_reasons_quote_the_median_of_the_book_at_the_cutoff_scored():
    ol = _book()
    model = SegmentModel().fit(dealer_features(ol, cutoff=LATE, period_days=182))
    pred = model.predict(dealer_features(ol, cutoff=EARLY, period_days=182))
    rate = _orders_a_year(ol, EARLY)
    med = rate.median()
    assert round(med) == 4 and round(_orders_a_year(ol, LATE).median()) == 1  # the two books differ
    n = 0
    for acc, text in pred["segment_reason"].items():
        for m in re.finditer(r"orders (more|less) often than most accounts: ([\d.]+) orders? a year "
                             r"\(book median ([\d.]+)\)", text):
            n += 1
            assert m[3] == f"{med:.1f}".removesuffix(".0"), (acc, text)
            assert (rate[acc] > med) == (m[1] == "more") and not np.isclose(rate[acc], med), (acc, rate[acc], med, text)
    assert n >= 20  # the four-a-year accounts still say it, against the median of 4
    two = pred.loc[pred.index.str.startswith("TWO"), "segment_reason"]
    assert not two.str.contains("than most accounts: 4 orders a year").any(), two.tolist()


def test_the_fitted_book_still_quotes_its_own_median():
    """Scoring the snapshot the model was fitted on quotes the same median as before: its own."""
    ol = _book()
    feats = dealer_features(ol, cutoff=LATE, period_days=182)
    model = SegmentModel().fit(feats)
    pred = model.predict(feats)
    med = model.medians()["avg_lines_per_order"]
    quoted = [m[1] for t in pred["segment_reason"] for m in re.finditer(r"lines per order \(book median ([\d.]+)\)", t)]
    assert quoted and set(quoted) == {f"{med:.1f}"}


def test_no_more_than_most_accounts_beside_a_higher_book_median():
    """The word is read against the fitted centre; beside the scored book's median it must still hold:
    an average order of 250 against a book median of 284 is no "larger orders than most accounts"."""
    from models._segments_words import _describe

    assert _describe("avg_order_value", 250.0, 0.5, median=284.0) is None
    assert _describe("avg_order_value", 284.0, 0.5, median=284.0) is None
    assert _describe("avg_order_value", 300.0, 0.5, median=284.0) == (
        "larger orders than most accounts: average order 300 (book median 284)")


def test_a_years_figure_from_a_shorter_book_is_said_over_the_days_on_record():
    """At EARLY the book holds 181 days: 'annual purchases X' was that value doubled, not an amount bought,
    and 'bought in the last 365 days' / 'in the last year' covered the 181 days on record. Said as such now,
    with the figure recomputed from the lines; a book of a year or more keeps the words."""
    from models._reason_span import on_record
    from models.potential import _feature_text

    ol = _book()
    feats = dealer_features(ol, cutoff=EARLY, period_days=182)
    days = (EARLY - ol["order_date"].min()).days
    assert days == 181 and (feats["history_days"].round() == days).all()
    acc = "FOUR00"
    bought = ol.loc[(ol["account_id"] == acc) & (ol["order_date"] < EARLY), "line_amount"].sum()
    row = feats.loc[acc]
    assert _feature_text("annual_value", row["annual_value"], row) == (
        f"annualised purchases {bought * 365 / days:,.0f} (from the 181 days on record)")
    assert _feature_text("n_skus_365", row["n_skus_365"], row) == f"{row['n_skus_365']:.0f} SKUs bought in the 181 days on record"
    late = dealer_features(ol, cutoff=LATE + pd.Timedelta(days=1), period_days=182).loc[acc]  # 365 days on record
    assert _feature_text("annual_value", late["annual_value"], late).startswith("annual purchases ")
    # the segment clauses too
    pred = SegmentModel().fit(feats).predict(feats)
    said = " ".join(pred["segment_reason"])
    assert "annual purchases" not in said and "in the last year" not in said
    assert on_record("buys more than most accounts: annual purchases 1,234 (book median 641)", 182) == (
        "buys more than most accounts: annualised purchases 1,234 (from the 182 days on record) (book median 641)")
    assert on_record("12 SKUs bought in the last year", None) == "12 SKUs bought in the last year"


def test_no_new_account_where_its_own_gap_reaches_back_past_the_books_start():
    """'new account: first order 141 days ago' for an account ordering every 97 days whose first order in
    the book came 41 days after the book's start: the data cannot tell it is new (an order before the
    book is as likely as not). Its own mean gap now counts in the margin, as the churn tenure sentence's
    does; an account whose first order came longer after the start than its gap is still new."""
    from models.segments import lifecycle_stage

    start, cut = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-07-01")
    rows = [("X0", start, "OTHER", "S0", 1.0, 10.0)]
    for k, d in enumerate((41, 41 + 97)):  # first order 41 days after the start, then 97 days later
        rows.append((f"OLD{k}", start + pd.Timedelta(days=d), "OLDISH", "S1", 2.0, 10.0))
    for k, d in enumerate((100, 120, 140)):  # first order 100 days after the start, every 20 days
        rows.append((f"NEW{k}", start + pd.Timedelta(days=d), "NEWBIE", "S1", 2.0, 10.0))
    ol = pd.DataFrame(rows, columns=["order_id", "order_date", "account_id", "sku", "quantity", "unit_price"])
    ol["line_amount"] = ol["quantity"] * ol["unit_price"]
    feats = dealer_features(ol, cutoff=cut, period_days=90)
    assert feats.at["OLDISH", "mean_interval_days"] == 97 and feats.at["OLDISH", "tenure_days"] == 141
    stages = lifecycle_stage(feats)
    assert not stages.at["OLDISH", "lifecycle_reason"].startswith("new account"), stages.loc["OLDISH"].tolist()
    assert stages.at["NEWBIE", "lifecycle_reason"].startswith("new account: first order 82 days ago")
