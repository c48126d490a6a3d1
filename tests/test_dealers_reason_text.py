"""What sales leadership reads about a dealer: the lifecycle reason and the reasons of the
potential say what the account's own numbers say, in words (no log ratios, no 1.2e+05, no
"-100%" for an account that bought nothing, no "more than tenfold" for a new account)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.segments import LifecycleRules, lifecycle_stage


def test_lifecycle_from_or_to_nothing_is_said_in_words():
    # Online Retail at 2011-12-10 (182-day periods): 1,629 of 4,338 dealers read "value more than
    # tenfold the period before", 1,606 of them with nothing in that period (1,525 first ordered
    # in the last 182 days), and 521 read "value -100% on the period before"
    last = np.array([12601.83, 8438.34, 0.0, 150.0, 5000.0])
    prev = np.array([0.0, 0.0, 5032.70, 100.0, 10000.0])
    df = pd.DataFrame({
        "last_period_value": last, "prev_period_value": prev,
        "growth_log_ratio": np.log1p(last) - np.log1p(prev),
        "tenure_days": [95.0, 700.0, 900.0, 900.0, 900.0], "history_days": [1000.0] * 5,
        "overdue_ratio": [1.0, 1.0, 1.0, 1.0, 1.0], "mean_interval_days": [10.0] * 5, "recency_days": [5.0] * 5,
    }, index=["new", "back", "gone", "up", "down"])
    lc = lifecycle_stage(df, LifecycleRules(period_days=182))
    assert lc["lifecycle"].tolist() == ["growth", "growth", "decline", "growth", "decline"]
    assert lc["lifecycle_reason"].tolist() == [
        "new account: first order 95 days ago",
        "bought 8,438 in the last 182 days after nothing in the 182 days before",
        "nothing bought in the last 182 days against 5,033 in the 182 days before",
        "value +50% on the 182 days before",
        "value -50% on the 182 days before",
    ]
    # year on year when the book has it
    yoy = df.assign(year_ago_period_value=[0.0, 0.0, 7000.0, 100.0, 10000.0],
                    yoy_log_ratio=lambda d: np.log1p(d["last_period_value"]) - np.log1p(d["year_ago_period_value"]))
    lc = lifecycle_stage(yoy, LifecycleRules(period_days=182))
    assert lc.loc["back", "lifecycle_reason"] == ("bought 8,438 in the last 182 days after nothing in the same "
                                                  "182 days a year ago")
    assert lc.loc["gone", "lifecycle_reason"] == ("nothing bought in the last 182 days against 7,000 in the same "
                                                  "182 days a year ago")


def test_feature_reasons_are_words_with_the_rows_figures():
    # Online Retail at 2011-12-10: "trend 90d -0.51 (raises the forecast)", "avg qty per line 1.2e+03",
    # "price index 0.95", "gap std days 12", "bgnbd monetary 310"; synthetic: "growth log ratio -0.5",
    # "prev period value 1.2e+05", "resolution days mean 180d 4.5", "overdue days -3"
    from models.potential import _feature_sentence

    row = pd.Series({"value_90d": 1200.0, "value_prev_90d": 2000.0, "trend_90d": np.log(1201 / 2001),
                     "orders_last_90d": 3.0, "orders_prev_90d": 8.0, "orders_trend_ratio": 4 / 9,
                     "last_period_value": 5000.0, "prev_period_value": 123456.0,
                     "growth_log_ratio": np.log(5001 / 123457)})
    say = {f: _feature_sentence(f, v, c, row) for f, v, c in (
        ("trend_90d", row["trend_90d"], 0.3), ("orders_trend_ratio", row["orders_trend_ratio"], -0.2),
        ("growth_log_ratio", row["growth_log_ratio"], -0.1), ("prev_period_value", 123456.0, 0.2),
        ("avg_qty_per_line", 1234.5, -0.1), ("price_index", 0.95, -0.1), ("gap_std_days", 12.4, 0.1),
        ("resolution_days_mean_180d", 4.5, -0.1), ("overdue_days", -3.0, 0.1), ("overdue_days", 41.0, -0.1),
        ("bgnbd_monetary", 310.2, 0.1), ("season_sin", 0.5, 0.1), ("gap_cv", np.nan, 0.1),
        ("complaints_60d", 2.0, -0.1), ("n_categories_90d", 1.0, -0.1), ("some_new_feature", 123456.7, 0.1))}
    assert say == {
        "trend_90d": "1,200 bought in the last 90 days against 2,000 in the 90 days before (raises the forecast)",
        "orders_trend_ratio": "3 orders in the last 90 days against 8 in the 90 days before (lowers the forecast)",
        "growth_log_ratio": "5,000 bought in the last period against 123,456 in the period before (lowers the forecast)",
        "prev_period_value": "123,456 bought in the period before the last (raises the forecast)",
        "avg_qty_per_line": "1,234.5 units per line (lowers the forecast)",
        "price_index": "pays 95% of the usual price (lowers the forecast)",
        "gap_std_days": "gaps between orders vary by 12 days (raises the forecast)",
        "resolution_days_mean_180d": "service cases took 4 days on average to resolve (lowers the forecast)",
        "overdue_days": "41 days past its typical (median) gap between orders (lowers the forecast)",
        "bgnbd_monetary": "310 bought per repeat order day on average (raises the forecast)",
        "season_sin": "the time of year of the cutoff (the same for every dealer) (raises the forecast)",
        "gap_cv": "fewer than three order days on record (raises the forecast)",
        "complaints_60d": "2 complaints in the last 60 days (lowers the forecast)",
        "n_categories_90d": "1 category bought in the last 90 days (lowers the forecast)",
        "some_new_feature": "some new feature 123,457 (raises the forecast)",
    }
    assert _feature_sentence("overdue_days", -3.0, 0.1) == (
        "3 days before its typical (median) gap between orders is up (raises the forecast)")
    # the snapshot's overdue_ratio is over the mean gap, overdue_days over the median: never both "usual"
    assert _feature_sentence("overdue_ratio", 2.0, -0.1) == (
        "last order 2.0x its mean gap between orders ago (lowers the forecast)")
    assert _feature_sentence("gap_median_days", 14.0, -0.1) == (
        "typical (median) gap of 14 days between orders (lowers the forecast)")
    # without the row a ratio is still a percentage, never a log ratio
    assert _feature_sentence("trend_90d", np.log(0.5), 0.1) == (
        "value in the last 90 days -50% on the 90 days before (raises the forecast)")


def test_forecast_and_headroom_reasons_name_the_period():
    # "forecast 224,004 next period (...) against 240,307 in the last (-16,304)": the last what?
    from models.potential import explain

    X = pd.DataFrame({"value_90d": [1200.0], "value_prev_90d": [2000.0], "trend_90d": [np.log(1201 / 2001)]},
                     index=["D1"])
    contrib = pd.DataFrame({"value_90d": [0.0], "value_prev_90d": [0.0], "trend_90d": [-0.4], "bias": [8.0]},
                           index=["D1"])
    table = pd.DataFrame({"expected": [9000.0], "upside": [11000.0], "last_period_value": [10000.0],
                          "headroom": [20000.0], "peer_value": [30000.0], "peer_group": ["segment and region"],
                          "churn_risk": [0.1], "potential": [14400.0]}, index=["D1"])
    got = explain(X, contrib, table, headroom_weight=0.25, period_days=182).loc["D1"].tolist()
    assert got == [
        "forecast 9,000 on average for the next 182 days against 10,000 in the last 182 days (-1,000); "
        "75% of periods like it bring at most 11,000",
        "buys 10,000 per 182 days where peers (segment and region) reach 30,000: headroom 20,000",
        "1,200 bought in the last 90 days against 2,000 in the 90 days before (lowers the forecast)",
    ]


def test_dealers_asked_for_by_id_all_come_back():
    # a CRM batch of 120 dealer ids got 50 back ("matched": 120), the default top_k, from a real
    # `bentoml serve`; now every dealer asked for by id is answered unless top_k says otherwise
    from serving.dealers import DealersBackend
    from serving.schemas import DealerScoresRequest

    n = 130
    table = pd.DataFrame({"account_id": [f"D{i:05d}" for i in range(n)], "potential": np.arange(n, 0, -1.0),
                          "segment": "price_sensitive_small_shop", "lifecycle": "maturity", "tier": "regular",
                          "programme": "bronze", "region": ["North", "South"] * (n // 2)})
    backend = DealersBackend(model_name="dealerml-dealers", model_version="dealerml-dealers/1",
                             as_of=pd.Timestamp("2025-01-01"), table=table)
    ids = [f"D{i:05d}" for i in range(120, 0, -1)]
    got = backend.scores(DealerScoresRequest.model_validate({"account_ids": ids}))
    assert got["matched"] == 120 and len(got["dealers"]) == 120
    assert [d["account_id"] for d in got["dealers"]] == sorted(ids)  # best potential first
    assert [d["rank"] for d in got["dealers"]] == list(range(2, 122))  # rank among all dealers
    got = backend.scores(DealerScoresRequest.model_validate({"account_ids": ids, "top_k": 5}))
    assert got["matched"] == 120 and [d["account_id"] for d in got["dealers"]] == sorted(ids)[:5]
    got = backend.scores(DealerScoresRequest.model_validate({"account_ids": ids, "region": ["North"]}))
    assert got["matched"] == 60 and len(got["dealers"]) == 60
    got = backend.scores(DealerScoresRequest.model_validate({"region": ["North"]}))  # no ids: the best 50
    assert got["matched"] == 65 and len(got["dealers"]) == 50


def test_the_tier_can_be_checked_against_the_value_it_is_read_from():
    # the API gave tier "key" beside current_value 47,848 (the last 182 days) while the tier is read
    # from the annual value (75,000 a year and up in experiments/default.yaml), which neither the
    # answer nor the batch table carried; with tier_shares the cut points were nowhere at all
    from models.dealers import DealerScorer
    from models.segments import TierModel
    from serving.dealers import DealersBackend, tier_thresholds
    from serving.schemas import DealerScoresRequest, DealerScoresResponse

    annual = pd.Series(np.linspace(1000.0, 400000.0, 50), index=[f"D{i:03d}" for i in range(50)])
    scorer = DealerScorer()
    scorer.tiers_ = TierModel().fit(annual)  # default tier shares: cut points learned from the values
    th = tier_thresholds(scorer)
    assert list(th) == ["strategic", "key", "growth", "regular", "occasional"] and th["occasional"] == 0.0
    assert th["strategic"] > th["key"] > th["growth"] > th["regular"] > 0
    table = scorer.tiers_.predict(annual).assign(account_id=annual.index, annual_value=annual.to_numpy(),
                                                 potential=annual.to_numpy(), last_period_value=annual.to_numpy() / 2)
    backend = DealersBackend(model_name="dealerml-dealers", model_version="dealerml-dealers/1",
                             as_of=pd.Timestamp("2025-01-01"), table=table.iloc[::-1])
    backend.tier_thresholds = th
    out = DealerScoresResponse.model_validate(backend.scores(DealerScoresRequest.model_validate({"top_k": 50})))
    assert len(out.dealers) == 50
    for d in out.dealers:
        assert d.annual_value == annual[d.account_id] and d.current_value == annual[d.account_id] / 2
        assert d.tier == next(t for t, least in th.items() if d.annual_value >= least)
    assert backend.summary()["tier_thresholds"] == th
    fixed = DealerScorer()
    fixed.tiers_ = TierModel(thresholds={"strategic": 250000, "key": 75000, "growth": 20000, "regular": 5000,
                                         "occasional": 0}).fit(annual)
    assert tier_thresholds(fixed) == {"strategic": 250000.0, "key": 75000.0, "growth": 20000.0, "regular": 5000.0,
                                      "occasional": 0.0}


def test_one_unknown_dealer_id_does_not_fail_the_batch():
    # /dealer_scores {"account_ids": ["D00001", "NOPE"]} was a 404 for the whole batch (a dealer
    # onboarded since the as-of date), while /churn_scores answers the known ids and lists the rest
    from serving.dealers import DealersBackend
    from serving.errors import UnknownIds
    from serving.schemas import DealerScoresRequest, DealerScoresResponse

    table = pd.DataFrame({"account_id": ["D1", "D2", "D3"], "potential": [3.0, 2.0, 1.0], "tier": "regular",
                          "segment": "channel_distributor", "region": "North"})
    backend = DealersBackend(model_name="dealerml-dealers", model_version="dealerml-dealers/1",
                             as_of=pd.Timestamp("2025-01-01"), table=table)
    got = DealerScoresResponse.model_validate(backend.scores(
        DealerScoresRequest.model_validate({"account_ids": ["D3", "NOPE", "D1", "NOPE"]})))
    assert [d.account_id for d in got.dealers] == ["D1", "D3"] and got.matched == 2
    assert got.unknown_ids == ["NOPE"]
    assert backend.scores(DealerScoresRequest.model_validate({"account_ids": ["D2"]}))["unknown_ids"] == []
    with pytest.raises(UnknownIds) as err:  # no known id: still a 404 naming them
        backend.scores(DealerScoresRequest.model_validate({"account_ids": ["NOPE", "NADA"]}))
    assert err.value.ids == ["NOPE", "NADA"]


def test_day_counts_are_calendar_days_as_in_the_churn_reasons():
    # Online Retail keeps the time of day: a first order on 2011-11-28 14:00 is 11.4 days before the
    # 2011-12-10 cutoff and read "first order 11 days ago" (12 in the churn reasons of the same
    # account; 101 of 400 sampled dealers were a day short), and "first order 1 days ago"
    from models.potential import _feature_sentence

    df = pd.DataFrame({"last_period_value": [500.0, 800.0], "prev_period_value": [0.0, 0.0],
                       "growth_log_ratio": [np.log1p(500.0), np.log1p(800.0)], "tenure_days": [11.4, 0.6],
                       "history_days": [370.0, 370.0], "overdue_ratio": [1.0, 1.0],
                       "mean_interval_days": [np.nan, np.nan], "recency_days": [3.2, 0.6]}, index=["a", "b"])
    lc = lifecycle_stage(df, LifecycleRules(period_days=182))
    assert lc["lifecycle_reason"].tolist() == ["new account: first order 12 days ago",
                                               "new account: first order 1 day ago"]
    over = pd.DataFrame({"growth_log_ratio": [0.0], "tenure_days": [900.0], "history_days": [1000.0],
                         "overdue_ratio": [5.0], "mean_interval_days": [10.0], "recency_days": [49.3]})
    assert lifecycle_stage(over)["lifecycle_reason"].tolist() == ["50 days since last order against a mean gap of 10 days between orders"]
    assert _feature_sentence("recency_days", 11.4, 0.2) == "12 days since the last order (raises the forecast)"
    assert _feature_sentence("tenure_days", 1.0, -0.2) == "first order 1 day ago (lowers the forecast)"
    assert _feature_sentence("tenure_days", 30.0, -0.2) == "first order 30 days ago (lowers the forecast)"


def test_segment_reason_says_growth_from_nothing_in_words():
    # Online Retail at 2011-12-10: 741 of 4,338 dealers read "growing: value more than tenfold a
    # comparable earlier period", 740 of them with nothing in that period (their lifecycle reason
    # already said "new account" / "after nothing"; the segment reason did not)
    from models.segments import SegmentModel

    rng = np.random.default_rng(3)
    n = 40
    last = rng.uniform(800, 1200, n)
    prev = rng.uniform(800, 1200, n)
    df = pd.DataFrame({
        "annual_value": rng.lognormal(8, 0.4, n), "avg_order_value": rng.lognormal(5, 0.3, n),
        "orders_per_month": rng.lognormal(0.5, 0.3, n), "avg_lines_per_order": rng.lognormal(1.3, 0.3, n),
        "avg_qty_per_line": rng.lognormal(1.5, 0.3, n), "n_skus_365": rng.lognormal(3, 0.3, n),
        "cv_interval": rng.uniform(0.4, 0.8, n), "promo_share": rng.uniform(0.0, 0.1, n),
        "price_index": rng.uniform(0.95, 1.05, n), "online_share": rng.uniform(0.0, 0.2, n),
        "last_period_value": last, "prev_period_value": prev, "channel_type": "unknown",
    }, index=[f"a{i}" for i in range(n)])
    for name, now, base in (("NEW", 3450.41, 0.0), ("TEN", 3000.0, 200.0), ("UP", 866.24, 138.85)):
        df.loc[name] = df.iloc[0]
        df.loc[name, ["last_period_value", "prev_period_value", "cv_interval", "avg_lines_per_order"]] = [
            now, base, 0.05, 25.0]
    df["growth_log_ratio"] = np.log1p(df["last_period_value"]) - np.log1p(df["prev_period_value"])
    pred = SegmentModel().fit(df).predict(df)
    assert pred.loc[["NEW", "TEN", "UP"], "segment"].tolist() == ["growing_retail_chain"] * 3
    assert "growing: bought 3,450 after nothing in a comparable earlier period" in pred.loc["NEW", "segment_reason"]
    assert "tenfold" not in pred.loc["NEW", "segment_reason"]
    assert "growing: value more than tenfold a comparable earlier period" in pred.loc["TEN", "segment_reason"]
    # the values' own change (Online Retail: "+520%" for 866.24 against 138.85, +524%)
    assert "growing: value +524% on a comparable earlier period" in pred.loc["UP", "segment_reason"]


def test_lifecycle_of_an_account_silent_in_both_periods_is_decline():
    # Online Retail at 2011-12-10: 78 dealers whose last order was 365-374 days before the cutoff
    # (nothing in the last 182 days nor in the 182 before) were 'maturity', "steady: value +0% on
    # the 182 days before"
    df = pd.DataFrame({
        "last_period_value": [0.0, 0.0], "prev_period_value": [0.0, 500.0],
        "tenure_days": [372.0, 900.0], "history_days": [374.0, 1000.0], "overdue_ratio": [np.nan, 1.0],
        "mean_interval_days": [np.nan, 100.0], "recency_days": [371.4, 200.0],
    }, index=["silent", "gone"])
    df["growth_log_ratio"] = np.log1p(df["last_period_value"]) - np.log1p(df["prev_period_value"])
    lc = lifecycle_stage(df, LifecycleRules(period_days=182))
    assert lc.loc["silent"].tolist() == [
        "decline", "nothing bought in the last 182 days nor in the 182 days before: last order 372 days ago"]
    assert lc.loc["gone", "lifecycle_reason"] == "nothing bought in the last 182 days against 500 in the 182 days before"


def test_lifecycle_percentages_are_the_values_own_change():
    # Online Retail at 2011-12-10: "value +495% on the 182 days before" for 59.64 against 9.20 (+548%),
    # "value +166%" for 15.25 against 5.10 (+199%): 162 of 1,905 such reasons off by more than a
    # point, the expm1 of log((now + 1) / (base + 1))
    last = np.array([59.64, 15.25, 225.0])
    prev = np.array([9.20, 5.10, 200.0])
    df = pd.DataFrame({
        "last_period_value": last, "prev_period_value": prev,
        "growth_log_ratio": np.log1p(last) - np.log1p(prev),
        "tenure_days": [900.0] * 3, "history_days": [1000.0] * 3, "overdue_ratio": [1.0] * 3,
        "mean_interval_days": [10.0] * 3, "recency_days": [5.0] * 3,
    }, index=["a", "b", "c"])
    lc = lifecycle_stage(df, LifecycleRules(period_days=182))
    assert lc["lifecycle"].tolist() == ["growth", "growth", "maturity"]
    assert lc["lifecycle_reason"].tolist() == [
        "value +548% on the 182 days before", "value +199% on the 182 days before",
        "steady: value +12% on the 182 days before"]
