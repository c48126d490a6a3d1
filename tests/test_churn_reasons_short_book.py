"""Churn reasons on an order book shorter than the windows they compare (helper-124, session 16).

The trend and category sentences compare the last 90 days with the 90 (or 180) days before. On a
book of fewer days the features count only the lines on record, and the sentences stated those
as the whole window's: scored at its 149th day, Online Retail cut to 2010-12-01 .. 2011-04-28 said
"no orders in the last 90 days against 1 order worth 157 in the 90 days before" of 59 days on
record (687 of 1,477 window sentences), and a 120-day synthetic book "revenue in the last 90 days
down 10% on the 90 days before (327 vs 364)" and "share of spend on Winter down 32 points on the
previous 180 days" of 30 days (136 of 157). They now name the days on record and the book's start,
and give no percentage of a window the book does not hold. Figures are recomputed from the lines.
"""

from __future__ import annotations

import pandas as pd
from _support_churn_reasons import check_reason

from features.accounts import account_features
from models.reasons import reason_texts

CUT = pd.Timestamp("2024-05-01")
# account -> [(days before the cutoff, category, amount)], one order per entry; the book starts at
# the earliest, 120 days before the cutoff (2024-01-02): the 90 days before the last 90 hold 30 days
BOOK = {
    "DROP": [(120, "Winter", 50.0), (110, "Winter", 50.0), (100, "Winter", 50.0), (40, "Garden", 30.0)],
    "GONE": [(115, "Garden", 80.0), (95, "Garden", 77.0)],
    "KEEP": [(105, "Garden", 10.0), (60, "Garden", 10.0), (30, "Garden", 10.0), (5, "Garden", 10.0)],
}


def _lines(book: dict) -> pd.DataFrame:
    return pd.DataFrame([{"order_id": f"{a}{i}", "order_date": CUT - pd.Timedelta(days=d) + pd.Timedelta(hours=9),
                          "account_id": a, "sku": f"S-{c}", "category": c, "quantity": 1.0, "unit_price": v}
                         for a, orders in book.items() for i, (d, c, v) in enumerate(orders)])


def _said(lines: pd.DataFrame, contrib: dict) -> dict[str, list[str]]:
    feats = account_features(lines, cutoff=CUT)
    start = lines["order_date"].min()
    texts, _ = reason_texts(feats, pd.DataFrame([contrib] * len(feats)), k=3, book_start=start, cutoff=CUT)
    rows = feats.assign(cutoff=CUT).to_dict("records")
    for row, said in zip(rows, texts, strict=True):  # every sentence passes the figure checks of the features
        for t in said:
            assert check_reason(t, row), (row["account_id"], t)
    return dict(zip(feats["account_id"], texts, strict=True))


def _window(lines: pd.DataFrame, account: str, lo: int, hi: int) -> pd.DataFrame:
    """The account's lines dated in [cutoff - lo days, cutoff - hi days), by calendar day."""
    day = lines["order_date"].dt.normalize()
    return lines[(lines["account_id"] == account) & (day >= CUT - pd.Timedelta(days=lo))
                 & (day < CUT - pd.Timedelta(days=hi))]


def test_trend_on_a_120_day_book_names_the_days_on_record():
    lines = _lines(BOOK)
    said = _said(lines, {"orders_last_90d": 0.9, "bias": -2})
    assert (CUT - lines["order_date"].min().normalize()).days == 120
    last, before = _window(lines, "DROP", 90, 0), _window(lines, "DROP", 180, 90)
    assert (last["order_id"].nunique(), before["order_id"].nunique()) == (1, 3)
    # was "orders in the last 90 days down 67% on the 90 days before (1 vs 3)" of 30 days on record
    assert said["DROP"] == ["fewer orders in the last 90 days than in the 30 days on record before them "
                            "(1 vs 3; the book starts 2024-01-02)"]
    before = _window(lines, "GONE", 180, 90)
    assert _window(lines, "GONE", 90, 0).empty and (before["quantity"] * before["unit_price"]).sum() == 157
    # was "... against 2 orders worth 157 in the 90 days before"
    assert said["GONE"] == ["no orders in the last 90 days against 2 orders worth 157 in the 30 days on record "
                            "before them (the book starts 2024-01-02)"]
    assert said["KEEP"] == []  # 3 orders in the last 90 days against 1 before: no decline to say
    said = _said(lines, {"revenue_last_90d": 0.9, "bias": -2})
    assert said["DROP"] == ["less revenue in the last 90 days than in the 30 days on record before them "
                            "(30 vs 150; the book starts 2024-01-02)"]

    # the same accounts on a book that covers the 180 days (one order of another account 200 days
    # back): the 90 days before are known, and said as before
    full = _lines({**BOOK, "OLD": [(200, "Garden", 5.0)]})
    said = _said(full, {"orders_last_90d": 0.9, "bias": -2})
    assert said["DROP"] == ["orders in the last 90 days down 67% on the 90 days before (1 vs 3)"]
    assert said["GONE"] == ["no orders in the last 90 days against 2 orders worth 157 in the 90 days before"]


def test_category_shift_on_a_120_day_book_names_the_days_on_record():
    lines = _lines(BOOK)
    said = _said(lines, {"n_categories_dropped": 0.9, "cat_share_max_drop": 0.5, "bias": -2})
    # DROP bought only Winter in the 30 days on record before the last 90 and only Garden since
    before, last = _window(lines, "DROP", 270, 90), _window(lines, "DROP", 90, 0)
    assert set(before["category"]) == {"Winter"} and set(last["category"]) == {"Garden"}
    # was "stopped buying 1 category it bought in the previous 180 days (share of Winter down 100 points)"
    assert said["DROP"] == ["stopped buying 1 category it bought in the 30 days on record before the last 90 "
                            "(share of Winter down 100 points; the book starts 2024-01-02)"]
    full = _lines({**BOOK, "OLD": [(300, "Garden", 5.0)]})
    said = _said(full, {"n_categories_dropped": 0.9, "cat_share_max_drop": 0.5, "bias": -2})
    assert said["DROP"] == ["stopped buying 1 category it bought in the previous 180 days (share of Winter down 100 points)"]


def test_windows_the_book_does_not_hold_at_all_are_not_compared():
    # scored 80 days after the book's first order: none of the 90 days before the last 90 is on record
    row = {"orders_last_90d": 0, "orders_prev_90d": 2, "revenue_last_90d": 0.0, "revenue_prev_90d": 40.0,
           "n_categories_dropped": 1, "cat_share_max_drop": 0.6, "cat_share_max_drop_category": "Winter"}
    contrib = pd.DataFrame([{"orders_last_90d": 0.9, "n_categories_dropped": 0.5}])
    texts, _ = reason_texts(pd.DataFrame([row]), contrib, book_start=CUT - pd.Timedelta(days=80), cutoff=CUT)
    assert texts[0] == []
    # revenue of 0 in both windows of a 150-day book: its days on record, not "the last 180 days"
    free = {"revenue_last_90d": 0.0, "revenue_prev_90d": 0.0, "orders_last_90d": 2, "orders_prev_90d": 1}
    texts, _ = reason_texts(pd.DataFrame([free]), pd.DataFrame([{"revenue_last_90d": 0.9}]),
                            book_start="2023-12-03", cutoff=CUT)
    assert texts[0] == ["no revenue in the 150 days on record (the book starts 2023-12-03)"]
    assert check_reason(texts[0][0], {**free, "cutoff": CUT})


def test_a_comparison_whose_figures_print_alike_is_no_reason():
    # "service cases took 3 days on average ... against a median of 3 days" (the synthetic 120-day book: 3.4 against 2.6)
    n = 25
    feats = pd.DataFrame({"resolution_days_mean_180d": [3.4] + [2.6] * (n - 1),
                          "avg_order_value": [284.7] + [285.2] * (n - 1)})
    contrib = pd.DataFrame([{"resolution_days_mean_180d": 0.9, "avg_order_value": 0.5}] * n)
    assert reason_texts(feats, contrib)[0][0] == []
    feats.loc[0, ["resolution_days_mean_180d", "avg_order_value"]] = [3.6, 250.0]
    assert reason_texts(feats, contrib)[0][0] == [
        "service cases took 4 days on average to resolve in the last 180 days against a median of 3 days across "
        "the 25 accounts scored with a resolved case",
        "smaller orders than most accounts: average order value 250 against a median of 285 across the 25 accounts "
        "scored"]
