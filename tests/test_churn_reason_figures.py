"""Churn reason figures against values recomputed from the order lines (helper-117, session 15).

On Online Retail at 2011-09-10, 65 of 3,365 accounts had a median gap of x.5 days (an even number
of gaps) and a rhythm sentence whose figures did not add up: "112 days overdue against its typical
(median) gap of 44 days between orders (last order 155 days ago)" (155 - 44 = 111), "orders only
about every 114 days ... last order 5 days ago, the next one due in about 110 days". The gap is
now said in whole days, a half up, and the overdue days / days to the next order are counted
from the figures said.
"""

from __future__ import annotations

import re
import statistics

import pandas as pd

from features.accounts import account_features
from models.reasons import reason_texts

CUT = pd.Timestamp("2011-09-10")
# account -> order days before the cutoff (one order per day)
BOOK = {
    "A": [-242, -199, -155],  # gaps 43, 44: median 43.5, last order 155 days ago (overdue)
    "B": [-234, -120, -5],  # gaps 114, 115: median 114.5, last order 5 days ago (a long rhythm)
    "C": [-241, -239, -236, -186, -126, -100],  # gaps 2, 3, 50, 60: median 26.5, mean 28.75 (irregular)
}


def _lines() -> pd.DataFrame:
    rows = [{"order_id": f"{a}{i}", "order_date": CUT + pd.Timedelta(days=d, hours=10), "account_id": a,
             "sku": "S1", "quantity": 2.0, "unit_price": 5.0}
            for a, days in BOOK.items() for i, d in enumerate(days)]
    return pd.DataFrame(rows)


def _truth(account: str) -> dict:
    days = sorted(BOOK[account])
    gaps = [b - a for a, b in zip(days, days[1:], strict=False)]
    return {"recency": -days[-1], "median": statistics.median(gaps), "mean": statistics.mean(gaps)}


def _num(s: str) -> float:
    return float(s.replace(",", ""))


def test_rhythm_figures_are_true_and_add_up():
    feats = account_features(_lines(), cutoff=CUT)
    contrib = pd.DataFrame([{"overdue_days": 0.9, "gap_median_days": 0.8, "gap_cv": 0.5}] * len(feats))
    texts, _ = reason_texts(feats, contrib, k=3)
    said = dict(zip(feats["account_id"], texts, strict=True))

    t = _truth("A")
    m = re.fullmatch(r"([\d,]+) days? overdue against its typical \(median\) gap of ([\d,]+) days? between orders "
                     r"\(last order ([\d,]+) days ago\)", said["A"][0])
    assert m, said["A"]
    over, gap, ago = map(_num, m.groups())
    assert ago == t["recency"] == 155
    assert abs(gap - t["median"]) <= 0.5 and abs(over - (t["recency"] - t["median"])) <= 0.5
    assert over + gap == ago, said["A"][0]  # was "112 ... 44 ... 155"

    t = _truth("B")
    m = re.fullmatch(r"orders only about every ([\d,]+) days, its typical \(median\) gap: last order ([\d,]+) days? ago, "
                     r"the next one due in about ([\d,]+) days?", said["B"][0])
    assert m, said["B"]
    gap, ago, due = map(_num, m.groups())
    assert ago == t["recency"] == 5 and abs(gap - t["median"]) <= 0.5
    assert gap - ago == due, said["B"][0]  # was "every 114 days ... 5 days ago ... in about 110 days"

    t = _truth("C")
    rhythm = next(s for s in said["C"] if "overdue" in s)
    irregular = next(s for s in said["C"] if s.startswith("irregular ordering"))
    m = re.fullmatch(r"([\d,]+) days? overdue against its typical \(median\) gap of ([\d,]+) days? between orders "
                     r"\(last order ([\d,]+) days ago\)", rhythm)
    over, gap, ago = map(_num, m.groups())
    assert ago == t["recency"] == 100 and over + gap == ago and abs(gap - t["median"]) <= 0.5
    m = re.fullmatch(r"irregular ordering: typical \(median\) gap ([\d,]+) days?, but long pauses raise the mean gap to "
                     r"([\d,]+) days?; gaps vary (\d+)% around that mean", irregular)
    assert m, irregular
    med2, mean2 = _num(m[1]), _num(m[2])
    assert med2 == gap, (rhythm, irregular)  # one account, one typical gap
    assert abs(mean2 - t["mean"]) <= 0.5
