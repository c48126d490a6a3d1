"""A planner's hand check of the policy file against a forecast file (docs/DATA.md, "What forecast and
safety-stock write"): ``ltd_mean`` is the forecast summed over the lead time in periods (a fraction of
the next period for a lead time that is not whole), ``mean_demand`` the forecast's mean over the first
ceil(lead time + review period) periods, and the ``normal_*`` columns the textbook formula on them.

safety-stock forecasts more periods than ``demand.horizon`` when a lead time needs them, and the
forecaster picks its members on windows of that many periods, so ``dealerml forecast`` at the config's
horizon wrote another forecast than the one sized (synthetic network, 8 vs 13 weeks: another member for
every series, a lead time's demand up to 114 units apart) and nothing said which one to check against.
The run now names it: ``dealerml forecast --horizon N``."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import norm


def test_the_policy_is_the_forecast_it_names_summed_over_the_lead_time(tmp_path, monkeypatch):
    from _support_demand import _cli_book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    # C3 at south: 45.5 days = 6.5 weeks, no spread; + review 1 -> a forecast of ceil(7.5) + 1 = 9 weeks > horizon 8
    cfg = _cli_book(tmp_path, c3_south_days=45.5)
    pol_out, fc_out = tmp_path / "pol.csv", tmp_path / "fc.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(pol_out)])
    assert res.exit_code == 0, res.output
    assert ("note: safety-stock forecasts 9 periods (the longest lead time + review period + 2.33 x its spread, plus "
            "one), more than demand.horizon 8: ltd_mean, mean_demand and the policy come from that forecast, which "
            "`dealerml forecast --horizon 9` writes") in res.stderr
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--horizon", "9", "--out", str(fc_out)])
    assert res.exit_code == 0, res.output
    pol = pd.read_csv(pol_out).set_index("unique_id")
    final = pd.read_csv(fc_out).sort_values(["unique_id", "ds"]).groupby("unique_id")["Final"].apply(list)
    z = norm.ppf(0.95)
    # lead times in weeks, from the book's rows (A1 21 +- 4 days everywhere, C3 at south 45.5 days, no spread)
    # and the config's 14 +- 3 days for B2
    for u, days, sd_days in (("A1/north", 21, 4), ("A1/south", 21, 4), ("B2/north", 14, 3), ("C3/south", 45.5, 0)):
        p, f = pol.loc[u], final[u]
        L, sdL, R = days / 7, sd_days / 7, 1
        assert [p["lead_time"], p["lead_time_std"], p["review_period"]] == pytest.approx([L, sdL, R], rel=1e-12)
        k = math.floor(L)
        assert p["ltd_mean"] == pytest.approx(sum(f[:k]) + (L - k) * f[k], rel=1e-9)
        d = sum(f[:math.ceil(L + R)]) / math.ceil(L + R)
        assert p["mean_demand"] == pytest.approx(d, rel=1e-9)
        assert p["safety_stock"] == pytest.approx(p["reorder_point"] - p["ltd_mean"], abs=1e-9)
        s = p["sigma_d"]
        ss = z * math.sqrt(L * s**2 + d**2 * sdL**2)
        assert p["normal_safety_stock"] == pytest.approx(ss, rel=1e-9)
        assert p["normal_reorder_point"] == pytest.approx(d * L + ss, rel=1e-9)
        out = d * (L + R) + z * math.sqrt((L + R) * s**2 + d**2 * sdL**2)
        assert p["normal_order_up_to"] == pytest.approx(out, rel=1e-9)
        assert p["order_up_to"] >= p["reorder_point"]
