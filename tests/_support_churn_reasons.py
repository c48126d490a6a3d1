"""``check_reason``: whether a churn reason sentence agrees with the account row it explains.

Used by test_churn_reasons, test_churn_reasons_service_record and test_churn_reasons_short_book.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd


def _num(s: str) -> float:
    return float(s.replace(",", ""))


def _days(x: float) -> int:  # whole days as the reasons say them: a half rounded up (models.reasons._days)
    return math.floor(float(x) + 0.5)


def _close(a: float, b) -> bool:
    # within half a unit of the value: a median gap of 10.5 days may be said 11 (models.reasons._days
    # rounds a half up, so that a rhythm sentence's figures add up), not only round()'s 10
    return b is not None and np.isfinite(b) and abs(a - float(b)) <= 0.5 + 1e-9


_PAT = re.compile


CHECKS = [
    (_PAT(r"^(\S+) days? overdue against its typical \(median\) gap of (\S+) days? between orders "
          r"\(last order (\S+) days ago\)$"),
     lambda m, r: r["overdue_days"] >= 1 and _close(_num(m[1]), r["overdue_days"])
     and _close(_num(m[2]), r["gap_median_days"]) and _close(_num(m[3]), r["recency_days"])),
    (_PAT(r"^orders only about every (\S+) days, its typical \(median\) gap: last order (\S+) days? ago, the next one due "
          r"(?:in about (\S+) days?|about now)$"),
     lambda m, r: r["gap_median_days"] >= 60 and r["overdue_days"] < 1 and _close(_num(m[1]), r["gap_median_days"])
     and _close(_num(m[2]), r["recency_days"])
     and (m[3] is None or _close(_num(m[3]), r["gap_median_days"] - r["recency_days"]))),
    (_PAT(r"^no order for (\S+) days \(only one order day on record\)$"),
     lambda m, r: _close(_num(m[1]), r["recency_days"]) and r["n_purchase_days"] == 1),
    (_PAT(r"^(orders|revenue) in the last 90 days down (\d+)% on the 90 days before \((\S+) vs (\S+)\)$"),
     lambda m, r: _close(_num(m[3]), r[f"{m[1]}_last_90d"]) and _close(_num(m[4]), r[f"{m[1]}_prev_90d"])
     and r[f"{m[1]}_last_90d"] < r[f"{m[1]}_prev_90d"]
     and _close(_num(m[2]), min(99.0, 100 * (r[f"{m[1]}_prev_90d"] - r[f"{m[1]}_last_90d"]) / r[f"{m[1]}_prev_90d"]))
     and r[f"{m[1]}_last_90d"] > 0),
    (_PAT(r"^no (orders|revenue) in the last 90 days against (\S+) in the 90 days before$"),
     lambda m, r: r[f"{m[1]}_last_90d"] == 0 and _close(_num(m[2]), r[f"{m[1]}_prev_90d"])),
    (_PAT(r"^no orders in the last 90 days against (\S+) orders? worth (\S+) in the 90 days before$"),
     lambda m, r: r["orders_last_90d"] == 0 and _close(_num(m[1]), r["orders_prev_90d"])
     and _close(_num(m[2]), r["revenue_prev_90d"])),
    # a book of fewer than 180 days: the part of the 90 days before that it holds, said as such
    (_PAT(r"^(fewer orders|less revenue) in the last 90 days than in the (\S+) days? on record before them "
          r"\((\S+) vs (\S+); the book starts (\S+)\)$"),
     lambda m, r: (k := "orders" if m[1] == "fewer orders" else "revenue")
     and _close(_num(m[3]), r[f"{k}_last_90d"]) and _close(_num(m[4]), r[f"{k}_prev_90d"])
     and r[f"{k}_last_90d"] < r[f"{k}_prev_90d"]
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[5])).days == _num(m[2]) + 90 < 180),
    (_PAT(r"^no orders in the last 90 days against (\S+) orders? worth (\S+) in the (\S+) days? on record before them "
          r"\(the book starts (\S+)\)$"),
     lambda m, r: r["orders_last_90d"] == 0 and _close(_num(m[1]), r["orders_prev_90d"])
     and _close(_num(m[2]), r["revenue_prev_90d"])
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[4])).days == _num(m[3]) + 90 < 180),
    (_PAT(r"^no (orders|revenue) in the last 90 days against (\S+) in the (\S+) days? on record before them "
          r"\(the book starts (\S+)\)$"),
     lambda m, r: r[f"{m[1]}_last_90d"] == 0 and _close(_num(m[2]), r[f"{m[1]}_prev_90d"])
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[4])).days == _num(m[3]) + 90 < 180),
    (_PAT(r"^no (orders|revenue) in the (\S+) days on record \(the book starts (\S+)\)$"),
     lambda m, r: r[f"{m[1]}_last_90d"] == 0 and r[f"{m[1]}_prev_90d"] == 0
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[3])).days == _num(m[2]) < 180),
    (_PAT(r"^stopped buying (\S+) categor(?:y|ies) it bought in the (\S+) days? on record before the last 90 "
          r"\((?:share of (.+) down (\d+) points; )?the book starts (\S+)\)$"),
     lambda m, r: _close(_num(m[1]), r["n_categories_dropped"])
     and (m[3] is None or (m[3] == r["cat_share_max_drop_category"] and _close(_num(m[4]), 100 * r["cat_share_max_drop"])))
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[5])).days == _num(m[2]) + 90 < 270),
    (_PAT(r"^share of spend on (.+) down (\d+) points on the (\S+) days? on record before the last 90 "
          r"\(the book starts (\S+)\)$"),
     lambda m, r: m[1] == r["cat_share_max_drop_category"] and _close(_num(m[2]), 100 * r["cat_share_max_drop"])
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[4])).days == _num(m[3]) + 90 < 270),
    (_PAT(r"^no (orders|revenue) in the last 180 days$"),
     lambda m, r: r[f"{m[1]}_last_90d"] == 0 and r[f"{m[1]}_prev_90d"] == 0),
    (_PAT(r"^no orders in the last 30 days$"), lambda m, r: r["n_orders_30d"] == 0),
    (_PAT(r"^only (\S+) orders? in the last 365 days$"), lambda m, r: _close(_num(m[1]), r["n_orders_365d"])),
    (_PAT(r"^only (\S+) orders? in the (\S+) days on record \(the book starts (\S+)\)$"),  # a book under 365 days
     lambda m, r: _close(_num(m[1]), r["n_orders_365d"]) and _num(m[2]) < 365
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[3])).days == _num(m[2])),
    (_PAT(r"^only (\S+) orders? in its whole history$"), lambda m, r: _close(_num(m[1]), r["n_orders_lifetime"])),
    (_PAT(r"^buying a narrower range: (\S+) SKUs? in the last 90 days against (\S+) over its history$"),
     lambda m, r: _close(_num(m[1]), r["n_skus_90d"]) and _close(_num(m[2]), r["n_skus_lifetime"])),
    (_PAT(r"^(\S+) categor(?:y|ies) bought in the last 90 days against (\S+) over its history$"),
     lambda m, r: _close(_num(m[1]), r["n_categories_90d"]) and _close(_num(m[2]), r["n_categories_lifetime"])),
    (_PAT(r"^stopped buying (\S+) categor(?:y|ies) it bought in the previous 180 days(?: \(share of (.+) down (\d+) points\))?$"),
     lambda m, r: _close(_num(m[1]), r["n_categories_dropped"])
     and (m[2] is None or (m[2] == r["cat_share_max_drop_category"] and _close(_num(m[3]), 100 * r["cat_share_max_drop"])))),
    (_PAT(r"^share of spend on (.+) down (\d+) points on the previous 180 days$"),
     lambda m, r: m[1] == r["cat_share_max_drop_category"] and _close(_num(m[2]), 100 * r["cat_share_max_drop"])),
    (_PAT(r"^(\S+) (complaints?|returns?|support tickets?) in the last (60|180) days$"),
     lambda m, r: _close(_num(m[1]), r[{"c": "complaints", "r": "returns", "s": "tickets"}[m[2][0]] + f"_{m[3]}d"])),
    # service events that start inside the window (helper-126): the count of their days on record
    (_PAT(r"^(\S+) (complaints?|returns?|support tickets?) in the (\S+) days? on record \(the service events start (\S+)\)$"),
     lambda m, r: _close(_num(m[1]), r[{"c": "complaints", "r": "returns", "s": "tickets"}[m[2][0]] + "_180d"])
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[4])).days == _num(m[3]) < 180),
    (_PAT(r"^(\S+) service cases? still open$"), lambda m, r: _close(_num(m[1]), r["open_events"])),
    (_PAT(r"^service cases took (\S+) days? on average to resolve in the (\S+) days? on record \(the service events "
          r"start (\S+)\) against a median of (\S+) days? across the (\S+) accounts scored with a resolved case$"),
     lambda m, r: _close(_num(m[1]), r["resolution_days_mean_180d"]) and _close(_num(m[4]), r["__median_resolution"])
     and r["resolution_days_mean_180d"] > r["__median_resolution"]
     and (pd.Timestamp(r["cutoff"]) - pd.Timestamp(m[3])).days == _num(m[2]) < 180),
    (_PAT(r"^service cases took (\S+) days? on average to resolve in the last 180 days against a median of (\S+) days? "
          r"across the (\S+) accounts scored with a resolved case$"),
     lambda m, r: _close(_num(m[1]), r["resolution_days_mean_180d"]) and _close(_num(m[2]), r["__median_resolution"])
     and r["resolution_days_mean_180d"] > r["__median_resolution"]),
    (_PAT(r"^first order on record only (\S+) days? ago$"),
     lambda m, r: _close(_num(m[1]), r["tenure_days"]) and r["tenure_days"] < 365),
    (_PAT(r"^irregular ordering: gaps between orders vary (\d+)% around their mean of (\S+) days?$"),
     lambda m, r: _close(_num(m[1]), 100 * r["gap_cv"]) and _close(_num(m[2]), r["gap_mean_days"])
     and not (_days(r["gap_mean_days"]) > _days(r["gap_median_days"])
              and _days(r["gap_mean_days"]) >= 1.25 * _days(r["gap_median_days"]))),
    (_PAT(r"^irregular ordering: typical \(median\) gap (\S+) days?, but long pauses raise the mean gap to (\S+) "
          r"days?; gaps vary (\d+)% around that mean$"),
     lambda m, r: _close(_num(m[1]), r["gap_median_days"]) and _close(_num(m[2]), r["gap_mean_days"])
     and _days(r["gap_mean_days"]) > _days(r["gap_median_days"])
     and _days(r["gap_mean_days"]) >= 1.25 * _days(r["gap_median_days"])  # a real pause, not 20 against 19
     and _close(_num(m[3]), 100 * r["gap_cv"])),
    (_PAT(r"^(smaller|larger) orders than most accounts: average order value (\S+) against a median of (\S+) "
          r"across the (\S+) accounts scored$"),
     lambda m, r: _close(_num(m[2]), r["avg_order_value"])
     and ((m[1] == "smaller") == (r["avg_order_value"] < r["__median_avg_order_value"]))
     and abs(r["avg_order_value"] / r["__median_avg_order_value"] - 1) >= 0.10  # not 425 against 423
     and _close(_num(m[3]), r["__median_avg_order_value"])),
    (_PAT(r"^(\d+)% of its last-90-day spend on promotion against (\d+)% over its history$"),
     lambda m, r: _close(_num(m[1]), 100 * r["promo_share_90d"]) and _close(_num(m[2]), 100 * r["promo_share"])),
    (_PAT(r"^(region|channel type) (.+): the model has learned higher churn among accounts with this (region|channel type)$"),
     lambda m, r: str(r[m[1].replace(" ", "_")]) == m[2] and m[1] == m[3]),
]


def check_reason(text: str, row: dict) -> bool:
    for pat, ok in CHECKS:
        m = pat.match(text)
        if m:
            return bool(ok(m, row))
    raise AssertionError(f"reason with no checker (add one): {text!r}")
