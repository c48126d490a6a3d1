"""Dealer scoring units: Gamma-Gamma recovery, segment rules, tiers, headroom, capture metric, reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.gamma_gamma import GammaGamma
from models.potential import peer_headroom, potential_score
from models.segments import LifecycleRules, SegmentModel, TierModel, lifecycle_stage
from training.dealers_backtest import top_decile_growth_capture, top_decile_net_growth_share


def test_gamma_gamma_recovers_known_parameters():
    rng = np.random.default_rng(0)
    p, q, v, n = 6.0, 4.0, 15.0, 20000
    x = rng.integers(1, 15, n)
    nu = rng.gamma(q, 1 / v, n)
    m = np.array([rng.gamma(p, 1 / nu[i], x[i]).mean() for i in range(n)])
    gg = GammaGamma().fit(x, m)
    assert gg.params_["p"] == pytest.approx(p, rel=0.1)
    assert gg.params_["q"] == pytest.approx(q, rel=0.1)
    assert gg.params_["v"] == pytest.approx(v, rel=0.15)
    assert gg.population_mean() == pytest.approx(p * v / (q - 1), rel=0.03)
    # shrinkage: a one-order account sits between its own value and the book mean
    e = gg.conditional_expected_value([1, 50], [100.0, 100.0])
    assert gg.population_mean() < e[0] < e[1] < 100.0


def test_gamma_gamma_errors_and_roundtrip(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        GammaGamma().population_mean()
    with pytest.raises(ValueError, match="monetary must be finite"):
        GammaGamma().fit([1, 2], [10.0, -1.0])
    gg = GammaGamma().fit([1, 2, 3, 4, 5], [10.0, 12.0, 9.0, 30.0, 11.0])
    gg.save(tmp_path / "gg")
    assert GammaGamma.load(tmp_path / "gg").params_ == gg.params_


def _population(n=60, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "annual_value": rng.lognormal(8, 0.4, n),
        "avg_order_value": rng.lognormal(5, 0.3, n),
        "orders_per_month": rng.lognormal(0.5, 0.3, n),
        "avg_lines_per_order": rng.lognormal(1.3, 0.3, n),
        "avg_qty_per_line": rng.lognormal(1.5, 0.3, n),
        "n_skus_365": rng.lognormal(3, 0.3, n),
        "cv_interval": rng.uniform(0.4, 0.8, n),
        "growth_log_ratio": rng.normal(0, 0.1, n),
        "promo_share": rng.uniform(0.0, 0.1, n),
        "price_index": rng.uniform(0.95, 1.05, n),
        "online_share": rng.uniform(0.0, 0.2, n),
        "channel_type": "unknown",
    }, index=[f"a{i}" for i in range(n)])
    special = {
        "KEY": dict(annual_value=3e6, orders_per_month=20, n_skus_365=400, avg_order_value=2e4),
        "DIST": dict(avg_qty_per_line=500, avg_order_value=5000, orders_per_month=0.3, avg_lines_per_order=1),
        "SHOP": dict(annual_value=200, avg_order_value=20, promo_share=0.6, avg_lines_per_order=1),
        "WEB": dict(online_share=1.0, orders_per_month=8, avg_order_value=40),
        "CHAIN": dict(growth_log_ratio=0.9, cv_interval=0.05, avg_lines_per_order=25),
        "PLAIN": {},
    }
    for name, vals in special.items():
        row = df.iloc[0].copy()
        row["annual_value"], row["avg_order_value"] = 3000.0, 150.0
        row["orders_per_month"], row["avg_lines_per_order"], row["avg_qty_per_line"] = 1.6, 3.7, 4.5
        row["n_skus_365"], row["cv_interval"], row["growth_log_ratio"] = 20.0, 0.6, 0.0
        row["promo_share"], row["price_index"], row["online_share"] = 0.05, 1.0, 0.1
        for k, v in vals.items():
            row[k] = v
        df.loc[name] = row
    return df


def test_segment_rules_on_hand_made_accounts():
    df = _population()
    pred = SegmentModel().fit(df).predict(df)
    assert pred.loc["KEY", "segment"] == "strategic_key_account"
    assert pred.loc["DIST", "segment"] == "channel_distributor"
    assert pred.loc["SHOP", "segment"] == "price_sensitive_small_shop"
    assert pred.loc["WEB", "segment"] == "ecommerce_reseller"
    assert pred.loc["CHAIN", "segment"] == "growing_retail_chain"
    # reasons quote the account's own values
    assert "500.0 units per line" in pred.loc["DIST", "segment_reason"]
    assert "100% of value through online channels" in pred.loc["WEB", "segment_reason"]
    assert "60% of lines on promotion" in pred.loc["SHOP", "segment_reason"]
    assert (pred["segment_source"] == "behaviour").all()
    # strategic key accounts are few: the bias keeps ordinary accounts out
    assert (pred["segment"] == "strategic_key_account").sum() <= 3


def test_segment_attribute_bonus_and_disabled_group():
    df = _population()
    df.loc["PLAIN", "channel_type"] = "distributor"
    df.loc["DIST", "channel_type"] = "independent_shop"
    m = SegmentModel().fit(df)
    pred = m.predict(df)
    assert pred.loc["PLAIN", "segment"] == "channel_distributor"  # typical behaviour: the attribute decides
    assert pred.loc["PLAIN", "segment_source"] == "attribute"
    assert pred.loc["PLAIN", "segment_reason"].startswith("channel type is 'distributor'")
    assert pred.loc["DIST", "segment"] == "channel_distributor"  # strong behaviour beats a wrong attribute
    hard = SegmentModel(attribute_weight=None).fit(df).predict(df)
    assert hard.loc["DIST", "segment"] == "price_sensitive_small_shop"
    # without any online channel data e-commerce cannot be recognised from behaviour
    no_web = df.assign(online_share=0.0)
    m2 = SegmentModel().fit(no_web)
    assert m2.disabled_ == ["ecommerce_reseller"]
    assert "ecommerce_reseller" not in set(m2.predict(no_web)["segment"])


def test_lifecycle_rules():
    df = pd.DataFrame({
        "growth_log_ratio": [np.log(1.5), np.log(0.5), 0.0, np.nan, 0.0],
        "tenure_days": [900, 900, 900, 60, 900], "history_days": [1000] * 5,
        "overdue_ratio": [1.0, 1.0, 1.0, np.nan, 5.0], "mean_interval_days": [10.0] * 5,
        "recency_days": [5, 5, 5, 5, 50],
    }, index=list("abcde"))
    lc = lifecycle_stage(df, LifecycleRules())
    assert lc["lifecycle"].tolist() == ["growth", "decline", "maturity", "growth", "decline"]
    assert lc.loc["a", "lifecycle_reason"] == "value +50% on the period before"
    assert lc.loc["e", "lifecycle_reason"] == "50 days since last order against a mean gap of 10 days between orders"
    # a short tenure that is only the start of the book is censored, not young
    lc2 = lifecycle_stage(df.assign(history_days=70.0), LifecycleRules())
    assert lc2.loc["d", "lifecycle"] == "maturity"


def test_tiers_shares_thresholds_and_programme():
    v = pd.Series(np.arange(1, 101, dtype=float) * 1000)
    tm = TierModel().fit(v)
    t = tm.predict(v)
    assert t["tier"].value_counts().to_dict() == {"occasional": 40, "regular": 30, "growth": 20, "key": 8, "strategic": 2}
    assert t.loc[99, "programme"] == "gold" and t.loc[75, "programme"] == "silver" and t.loc[0, "programme"] == "bronze"
    fixed = TierModel(thresholds={"strategic": 90000, "key": 50000, "growth": 10000, "regular": 1000, "occasional": 0})
    t2 = fixed.fit(v).predict(pd.Series([95000.0, 90000.0, 49999.0, 10000.0, 500.0]))
    assert t2["tier"].tolist() == ["strategic", "strategic", "growth", "growth", "occasional"]
    with pytest.raises(ValueError, match="highest first"):
        TierModel(thresholds={"a": 1.0, "b": 5.0}, programme={"a": "gold", "b": "gold"}).fit(v)
    with pytest.raises(ValueError, match="sum to 1"):
        TierModel(shares={"a": 0.5, "b": 0.4}, programme={"a": "gold", "b": "silver"}).fit(v)
    rt = TierModel.from_dict(tm.to_dict())
    assert rt.predict(v).equals(t)


def test_peer_headroom_maths():
    value = pd.Series([10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 5.0])
    seg = pd.Series(["s"] * 5 + ["s", "t"])
    reg = pd.Series(["r"] * 5 + ["x", "r"])
    h = peer_headroom(value, seg, reg, quantile=0.75, min_peers=5)
    # group (s, r) has 5 peers: upper quartile of 10..50 = 40
    assert h.loc[0, "peer_value"] == pytest.approx(40.0)
    assert h.loc[0, "headroom"] == pytest.approx(30.0)
    assert h.loc[4, "headroom"] == 0.0  # above the peers: no headroom
    # (s, x) has 1 account -> segment s (6 accounts: 10..50, 100): q75 = 47.5
    assert h.loc[5, "peer_group"] == "segment" and h.loc[5, "headroom"] == 0.0
    # t has 1 account -> whole book q75 of all 7
    assert h.loc[6, "peer_group"] == "all accounts"
    assert h.loc[6, "peer_value"] == pytest.approx(float(value.quantile(0.75)))
    s = potential_score([100.0, 100.0], [40.0, 40.0], [0.0, 0.5], headroom_weight=0.5)
    assert s.tolist() == [120.0, 60.0]


def test_top_decile_growth_capture_definition():
    last = np.zeros(20)
    nxt = np.zeros(20)
    nxt[[0, 1]] = [30.0, 10.0]  # total positive growth 40
    nxt[5] = -5.0  # negative growth does not count
    score = np.arange(20, 0, -1.0)  # account 0 best, 1 second: top ceil(2) = {0, 1}
    assert top_decile_growth_capture(score, last, nxt) == pytest.approx(1.0)
    assert top_decile_growth_capture(-score, last, nxt) == pytest.approx(0.0)
    score2 = score.copy()
    score2[1] = -1
    assert top_decile_growth_capture(score2, last, nxt) == pytest.approx(0.75)
    assert np.isnan(top_decile_growth_capture(score, last, last))


def test_top_decile_net_growth_share_counts_declines():
    last = np.full(20, 10.0)
    nxt = last.copy()
    nxt[[0, 1]] = [40.0, 20.0]  # +30, +10
    nxt[5] = 0.0  # -10: net total growth = 30
    score = np.arange(20, 0, -1.0)  # top ceil(2) = {0, 1}: +40 of a net +30
    assert top_decile_net_growth_share(score, last, nxt) == pytest.approx(40 / 30)
    # the positive-only capture of the same decile is 1.0: the two readings differ
    assert top_decile_growth_capture(score, last, nxt) == pytest.approx(1.0)
    worst = score.copy()
    worst[5], worst[2] = 100.0, 99.0  # decile {5, 2}: -10 + 0
    assert top_decile_net_growth_share(worst, last, nxt) == pytest.approx(-10 / 30)
    # undefined when the book did not grow on net
    shrink = last.copy()
    shrink[0] = 0.0
    assert np.isnan(top_decile_net_growth_share(score, last, shrink))


def test_training_cutoffs_never_reach_into_the_test_window():
    from training.dealers_backtest import TrainSettings, training_cutoffs
    from training.errors import DataError

    s = TrainSettings(n_cutoffs=4, step_days=28, min_history_days=60)
    start, cut = pd.Timestamp("2022-01-01"), pd.Timestamp("2024-07-01")
    cuts, h = training_cutoffs(start, cut, 182, s)
    assert h == 182
    assert all(c + pd.Timedelta(days=h) <= cut for c in cuts)
    assert cuts[-1] == cut - pd.Timedelta(days=182)
    assert any(abs((c - (cut - pd.Timedelta(days=365))).days) <= 28 for c in cuts)  # same season a year ago
    assert all((c - start).days >= 60 for c in cuts)
    # a short book: the label window shrinks so that a training cutoff still fits
    cuts, h = training_cutoffs(pd.Timestamp("2010-12-01"), pd.Timestamp("2011-06-01"), 182, s)
    assert h == (182 - 60) // 2
    assert cuts and all(c + pd.Timedelta(days=h) <= pd.Timestamp("2011-06-01") for c in cuts)
    with pytest.raises(DataError, match="not enough history"):
        training_cutoffs(pd.Timestamp("2011-05-01"), pd.Timestamp("2011-06-01"), 182, s)


def test_training_cutoffs_take_a_horizon_shorter_than_14_days():
    """dealers.horizon_days (and `backtest dealers --horizon-days`) accept 7..13, but every such horizon was
    refused with 'not enough history before cutoff ... (1089 days)' on a three-year book: the 14-day floor
    meant for a window shortened to fit a short book was applied to the horizon itself."""
    from training.dealers_backtest import TrainSettings, training_cutoffs
    from training.errors import DataError

    s = TrainSettings(n_cutoffs=3, step_days=28, min_history_days=60)
    cut = pd.Timestamp("2024-12-25")
    cuts, h = training_cutoffs(pd.Timestamp("2022-01-01"), cut, 7, s)
    assert h == 7 and cuts[-1] == cut - pd.Timedelta(days=7) and len(cuts) >= 3
    assert all(c + pd.Timedelta(days=7) <= cut for c in cuts)
    with pytest.raises(DataError, match="min_history_days=60 plus a label window of at least 7 days"):
        training_cutoffs(pd.Timestamp("2024-10-20"), cut, 7, s)  # 66 days of book: 60 + 7 do not fit


def test_dealers_settings_errors_name_the_key():
    from training.dealers_backtest import load_settings
    from training.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dealers\.horizn_days': unknown key"):
        load_settings({"horizn_days": 90})
    with pytest.raises(ConfigError, match=r"dealers\.programme"):
        load_settings({"programme": {"key": "platinum"}})
    assert load_settings(None).horizon_days == 182
    # a step of ~100000 days was accepted, then stepped the training cutoffs out of pandas' dates (a traceback)
    with pytest.raises(ConfigError, match=r"dealers\.train\.step_days': Input should be less than or equal to 3650"):
        load_settings({"train": {"step_days": 100000}})
    # thresholds not highest first and a band around upside_quantile the wrong way round were refused only after the
    # backtest's fit, with 'use an order book with more accounts' appended: now when the section is read
    with pytest.raises(ConfigError, match=r"dealers\.tier_thresholds': tier thresholds must be listed highest first"):
        load_settings({"tier_thresholds": {"strategic": 5000, "key": 75000, "occasional": 0}})
    with pytest.raises(ConfigError, match=r"dealers\.train': quantiles must satisfy 0 < low < upside_quantile < high "
                                          r"< 1; got quantiles \[0\.9, 0\.1\] and upside_quantile 0\.75"):
        load_settings({"train": {"quantiles": [0.9, 0.1]}})
    with pytest.raises(ConfigError, match=r"dealers\.tier_shares': tier shares must be >= 0 and sum to 1; got "
                                          r"\{'strategic': 0\.5, 'key': 0\.1\} \(sum 0\.6\)"):
        load_settings({"tier_shares": {"strategic": 0.5, "key": 0.1}})
