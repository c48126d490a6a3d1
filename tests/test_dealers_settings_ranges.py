"""Every number of the dealers: section has a range, refused when the section is read, naming the
key and the value: dealers.headroom_weight 1e300 was accepted (potential scores of 300 digits, ranked by
headroom alone), and so were an absurd min_peers, lifecycle figure or train size, and a NaN / inf /
negative tier amount."""

from __future__ import annotations

import pytest

from training.dealers_backtest import load_settings
from training.errors import ConfigError

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(("section", "said"), [
    ({"headroom_weight": 1e300}, "key 'dealers.headroom_weight': Input should be less than or equal to 10; got 1e+300"),
    ({"headroom_weight": -0.1}, "key 'dealers.headroom_weight': Input should be greater than or equal to 0; got -0.1"),
    ({"min_peers": 10**9}, "key 'dealers.min_peers': Input should be less than or equal to 1000; got 1000000000"),
    ({"peer_quantile": 1.0}, "key 'dealers.peer_quantile': Input should be less than 1; got 1.0"),
    ({"high_churn_risk": 0}, "key 'dealers.high_churn_risk': Input should be greater than 0; got 0"),
    ({"lifecycle": {"growth_pct": 1e300}},
     "key 'dealers.lifecycle.growth_pct': Input should be less than or equal to 10; got 1e+300"),
    ({"lifecycle": {"young_days": 1e6}},
     "key 'dealers.lifecycle.young_days': Input should be less than or equal to 3650; got 1000000.0"),
    ({"lifecycle": {"overdue_ratio": 1e300}},
     "key 'dealers.lifecycle.overdue_ratio': Input should be less than or equal to 100; got 1e+300"),
    ({"train": {"n_estimators": 10**9}},
     "key 'dealers.train.n_estimators': Input should be less than or equal to 10000; got 1000000000"),
    ({"train": {"num_leaves": 10**6}},
     "key 'dealers.train.num_leaves': Input should be less than or equal to 4096; got 1000000"),
    ({"train": {"min_child_samples": 10**9}},
     "key 'dealers.train.min_child_samples': Input should be less than or equal to 100000; got 1000000000"),
    ({"tier_thresholds": {"key": INF, "core": -5}},
     "key 'dealers.tier_thresholds': tier thresholds must be finite amounts >= 0 (EUR/year); "
     "got {'key': inf, 'core': -5.0}"),
    ({"tier_thresholds": {"key": NAN, "core": 0}},
     "key 'dealers.tier_thresholds': tier thresholds must be finite amounts >= 0 (EUR/year); got {'key': nan}"),
    ({"tier_shares": {"key": NAN, "core": 1.0}},
     "key 'dealers.tier_shares': tier shares must be >= 0 and sum to 1; got {'key': nan, 'core': 1.0} (sum nan)"),
])
def test_a_number_beyond_its_range_is_refused_naming_key_and_value(section, said):
    with pytest.raises(ConfigError) as err:
        load_settings(section)
    assert said in str(err.value), str(err.value)


def test_the_bounds_themselves_are_accepted():
    s = load_settings({"headroom_weight": 10, "min_peers": 1000, "tier_thresholds": {"key": 50000, "core": 0},
                       "lifecycle": {"growth_pct": 10, "young_days": 3650, "overdue_ratio": 100},
                       "train": {"n_estimators": 10000, "num_leaves": 4096, "min_child_samples": 100000}})
    assert (s.headroom_weight, s.min_peers, s.lifecycle.young_days, s.train.num_leaves) == (10, 1000, 3650, 4096)
