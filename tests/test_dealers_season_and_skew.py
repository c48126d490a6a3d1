"""Two dealer reasons that were true but misread (after 4d1cd3d).

* Lifecycle on a comparison that is not year on year includes the season: on Online Retail at
  2011-12-01 (one year of history, so June-November against December-May) "value +97% on the
  182 days before" read as the account's own trend. The reason now quotes, beside it, the median
  change of the accounts that bought in both periods (same cutoff, so the same two periods), and
  says the season counts in both. The stages (thresholds) are unchanged.
* The first reason gave the mean forecast above "75% of periods like it bring at most Y" (17 of
  400 synthetic dealers, 190 of 4,288 Online Retail ones at 2011-12-01): true for a right-skewed
  account, read as a contradiction. It now says why: the other 25% are larger and lift the average.
Figures are recomputed from the order lines / the fitted model, not read back from the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.dealers import dealer_features
from models.potential import DealerPotential, explain, forecast_sentence
from models.segments import LifecycleRules, lifecycle_stage

CUT = pd.Timestamp("2024-01-01")
SEASON = "; not year on year, so the season counts in both)"


def _lines(spec: dict[str, list[tuple[float, float]]], start_age: float) -> pd.DataFrame:
    """Order lines: account -> [(age in days before CUT, amount)], plus one order of a filler
    account ``start_age`` days before CUT so the book starts there."""
    rows = [("F-0", CUT - pd.Timedelta(days=start_age), "FILL", "S0", 1.0, 1.0)]
    for acc, orders in spec.items():
        for k, (age, amount) in enumerate(orders):
            rows.append((f"{acc}-{k}", CUT - pd.Timedelta(days=age), acc, "S1", 1.0, float(amount)))
    ol = pd.DataFrame(rows, columns=["order_id", "order_date", "account_id", "sku", "quantity", "unit_price"])
    ol["line_amount"] = ol["quantity"] * ol["unit_price"]
    return ol


def _window_sum(ol: pd.DataFrame, newest: float, oldest: float) -> pd.Series:
    """Value per account of the orders placed between ``newest`` and ``oldest`` days before CUT."""
    age = (CUT - ol["order_date"]).dt.total_seconds() / 86400
    w = ol[(age > newest) & (age <= oldest)]
    return w.groupby("account_id")["line_amount"].sum()


def _seasonal_book() -> pd.DataFrame:
    # 8 accounts that buy in both halves of a 400-day book, most of them more in the later half
    # (the season); UP more than them, DOWN less; NEW only in the later half, GONE only earlier
    later = [180, 170, 190, 150, 200, 120, 180, 60]
    spec = {f"A{i}": [(300.0, 100.0), (100.0, float(v))] for i, v in enumerate(later)}
    spec.update({"UP": [(300.0, 100.0), (100.0, 400.0)], "DOWN": [(300.0, 100.0), (100.0, 50.0)],
                 "NEW": [(60.0, 500.0)], "GONE": [(300.0, 80.0)]})
    return _lines(spec, start_age=400.0)


def test_lifecycle_reason_quotes_the_median_change_of_accounts_buying_in_both_periods():
    ol = _seasonal_book()
    feats = dealer_features(ol, cutoff=CUT, period_days=182)
    assert feats["yoy_log_ratio"].isna().all() and feats["growth_log_ratio"].notna().all()  # 400 days: no year ago
    lc = lifecycle_stage(feats, LifecycleRules(period_days=182))
    # recomputed from the order lines: last 182 days against the 182 days before
    now, base = _window_sum(ol, 0, 182), _window_sum(ol, 182, 364)
    both = now.index.intersection(base.index)
    med = float((now[both] / base[both] - 1).median())
    assert len(both) == 10 and round(med, 2) == 0.75  # the book's accounts rose 75%: the season
    note = f" (accounts that bought in both periods: median {med:+.0%}{SEASON}"
    up = now["UP"] / base["UP"] - 1
    assert lc.at["UP", "lifecycle"] == "growth"
    assert lc.at["UP", "lifecycle_reason"] == f"value {up:+.0%} on the 182 days before" + note
    assert lc.at["DOWN", "lifecycle"] == "decline"
    assert lc.at["DOWN", "lifecycle_reason"] == "value -50% on the 182 days before" + note
    # an account at the book's median is growth as before (thresholds unchanged: +25%), said with it
    assert lc.at["A0", "lifecycle"] == "growth"
    assert lc.at["A0", "lifecycle_reason"] == "value +80% on the 182 days before" + note
    assert lc.at["A5", "lifecycle"] == "maturity"
    assert lc.at["A5", "lifecycle_reason"] == "steady: value +20% on the 182 days before" + note
    # no percentage, no median: from or to nothing
    assert lc.at["GONE", "lifecycle_reason"] == "nothing bought in the last 182 days against 80 in the 182 days before"
    assert lc.at["NEW", "lifecycle_reason"] == "new account: first order 60 days ago"
    # the stages are the ones the thresholds give on the smoothed log ratio, median or not
    r = LifecycleRules(period_days=182)
    for acc in [f"A{i}" for i in range(8)] + ["UP", "DOWN"]:
        t = feats.at[acc, "growth_log_ratio"]
        want = "growth" if t >= r.growth_log_ratio else "decline" if t <= r.decline_log_ratio else "maturity"
        assert lc.at[acc, "lifecycle"] == want, acc


def test_year_on_year_needs_no_median_and_few_accounts_get_none():
    # two years of history: year on year, free of the season, said as before
    spec = {f"A{i}": [(450.0, 100.0), (300.0, 100.0), (100.0, 180.0)] for i in range(6)}
    feats = dealer_features(_lines(spec, start_age=700.0), cutoff=CUT, period_days=182)
    assert feats["yoy_log_ratio"].notna().all()
    lc = lifecycle_stage(feats, LifecycleRules(period_days=182))
    assert lc.at["A0", "lifecycle_reason"] == "value +80% on the same 182 days a year ago"
    # fewer than 5 accounts bought in both periods: no median to speak of
    spec = {f"A{i}": [(300.0, 100.0), (100.0, 180.0)] for i in range(4)}
    feats = dealer_features(_lines(spec, start_age=400.0), cutoff=CUT, period_days=182)
    lc = lifecycle_stage(feats, LifecycleRules(period_days=182))
    assert lc.at["A0", "lifecycle_reason"] == "value +80% on the 182 days before"


def test_the_90_day_comparison_quotes_its_own_median():
    # 200 days of history: neither the 182 days before nor a year ago, so the last 90 days against
    # the 90 before, and the median is over the accounts that bought in both of those
    later = [30, 40, 50, 45, 35, 80]
    spec = {f"A{i}": [(150.0, 20.0), (40.0, float(v))] for i, v in enumerate(later)}
    ol = _lines(spec, start_age=200.0)
    feats = dealer_features(ol, cutoff=CUT, period_days=182)
    assert feats["growth_log_ratio"].isna().all() and feats["trend_90d"].notna().all()
    lc = lifecycle_stage(feats, LifecycleRules(period_days=182))
    now, base = _window_sum(ol, 0, 90), _window_sum(ol, 90, 180)
    both = now.index.intersection(base.index)
    med = float((now[both] / base[both] - 1).median())
    assert len(both) == 6 and round(med, 3) == 1.125
    pct = now["A5"] / base["A5"] - 1
    assert lc.at["A5", "lifecycle_reason"] == (f"value {pct:+.0%} on the 90 days before (accounts that bought in "
                                               f"both periods: median {med:+.0%}{SEASON}")


def _row(expected, upside, high=None, last=10000.0):
    d = {"expected": expected, "upside": upside, "last_period_value": last}
    if high is not None:
        d["expected_high"] = high
    return pd.Series(d)


def test_the_first_reason_says_why_the_average_is_above_the_75_percent_level():
    head = "forecast 9,000 on average for the next 182 days against 10,000 in the last 182 days (-1,000); "
    # the 75% level at or above the average: as before
    assert forecast_sentence(_row(9000.0, 11000.0, 15000.0), "182 days") == (
        head + "75% of periods like it bring at most 11,000")
    assert forecast_sentence(_row(9000.0, 9000.4, 15000.0), "182 days") == (
        head + "75% of periods like it bring at most 9,000")  # prints equal: nothing to explain
    # below it: the larger quarter lifts the average, with the 90% level when it prints above the mean
    assert forecast_sentence(_row(9000.0, 8500.0, 30000.0), "182 days") == (
        head + "75% of periods like it bring at most 8,500; the other 25%, larger (the top 10% more than "
        "30,000), lift the average above that")
    # the 90% level raised to the mean (the quantile models put it below): not quoted
    assert forecast_sentence(_row(9000.0, 8500.0, 9000.0), "182 days") == (
        head + "75% of periods like it bring at most 8,500; the other 25%, larger, lift the average above that")
    assert forecast_sentence(_row(9000.0, 8500.0), "182 days").endswith("larger, lift the average above that")
    # most periods bring nothing
    assert forecast_sentence(_row(40.0, 0.2, 386.0, last=0.0), "182 days") == (
        "forecast 40 on average for the next 182 days against 0 in the last 182 days (+40); 75% of periods "
        "like it bring nothing; the average comes from the other 25% (the top 10% more than 386)")
    # other quantiles are named as they are
    assert forecast_sentence(_row(100.0, 80.0, 300.0, last=90.0), "91 days", 0.8, 0.95) == (
        "forecast 100 on average for the next 91 days against 90 in the last 91 days (+10); 80% of periods "
        "like it bring at most 80; the other 20%, larger (the top 5% more than 300), lift the average above that")


def test_the_skew_the_sentence_claims_is_the_models_own():
    # accounts whose next-period value is right-skewed (lognormal, sigma 1.6: the mean is above the
    # 75% quantile) beside symmetric ones; the sentence quotes the model's own three figures, and
    # on fresh draws from the same distributions they mean what the words say
    rng = np.random.default_rng(0)
    n = 3000
    skewed = rng.integers(0, 2, n)
    X = pd.DataFrame({"skewed": skewed.astype(float), "noise": rng.normal(size=n)})
    y = np.where(skewed == 1, rng.lognormal(np.log(1000.0), 1.6, n), rng.normal(2000.0, 200.0, n).clip(0))
    m = DealerPotential(n_estimators=60, num_leaves=4, min_child_samples=50).fit(X, y)
    Xq = pd.DataFrame({"skewed": [1.0, 0.0], "noise": [0.0, 0.0]}, index=["SKEW", "EVEN"])
    p = m.predict(Xq)
    table = pd.DataFrame({"expected": p["expected"], "upside": p["upside"], "expected_high": p["high"],
                          "last_period_value": [1000.0, 2000.0], "headroom": 0.0, "peer_value": 0.0,
                          "peer_group": "segment", "churn_risk": 0.1, "potential": 0.0}, index=Xq.index)
    contrib = pd.DataFrame(0.0, index=Xq.index, columns=["skewed", "noise", "bias"])
    reasons = explain(Xq, contrib, table, headroom_weight=0.25, period_days=182,
                      upside_quantile=m.upside_quantile, high_quantile=m.quantiles[1])
    e, up, hi = p.loc["SKEW", ["expected", "upside", "high"]]
    assert up < e < hi
    assert reasons.at["SKEW", "reason_1"].endswith(
        f"75% of periods like it bring at most {up:,.0f}; the other 25%, larger (the top 10% more than "
        f"{hi:,.0f}), lift the average above that")
    assert reasons.at["SKEW", "reason_1"].startswith(f"forecast {e:,.0f} on average")
    assert reasons.at["EVEN", "reason_1"].endswith(f"bring at most {p.at['EVEN', 'upside']:,.0f}")
    # fresh periods of a skewed account: about 75% at most the upside, about 10% above the high
    # figure, and their mean above the upside (the larger quarter lifts it), near the forecast
    fresh = rng.lognormal(np.log(1000.0), 1.6, 200_000)
    assert (fresh <= up).mean() == pytest.approx(0.75, abs=0.05)
    assert (fresh > hi).mean() == pytest.approx(0.10, abs=0.04)
    assert fresh.mean() > up and fresh.mean() == pytest.approx(e, rel=0.2)


def test_a_growing_retail_chain_in_decline_quotes_its_change_without_the_median():
    # the segment reason quotes the lifecycle reason in parentheses; with the median's own
    # parentheses inside it read "(value -39% on the 182 days before (accounts ...)):" on Online
    # Retail at 2011-12-01 (78 of 125 such reasons); the lifecycle_reason beside it keeps the median
    from models.segments import not_growing_now

    ol = _seasonal_book()
    lc = lifecycle_stage(dealer_features(ol, cutoff=CUT, period_days=182), LifecycleRules(period_days=182))
    idx = ["DOWN", "GONE"]
    seg = pd.Series("growing_retail_chain", index=idx)
    got = not_growing_now(seg, pd.Series("regular ordering", index=idx), lc.loc[idx, "lifecycle"],
                          lc.loc[idx, "lifecycle_reason"])
    assert lc.at["DOWN", "lifecycle_reason"].startswith("value -50% on the 182 days before (accounts that bought")
    tail = ": the segment is read from how it orders, not from its current trend"
    assert got["DOWN"] == "regular ordering; in decline now (value -50% on the 182 days before)" + tail
    assert got["GONE"] == ("regular ordering; in decline now (nothing bought in the last 182 days against 80 in the "
                           "182 days before)" + tail)
