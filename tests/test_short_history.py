"""The short-history fallback of DemandForecaster: a series with demand but fewer observed periods
than the members need (a new SKU) gets a ``Final`` forecast (``ShortHistory``: the mean of its
last 4 periods) with a band at every level, is scored apart in the backtest, sized for safety
stock from the fallback's distribution, and flagged on the planner outputs;
``short_history="skip"`` keeps the old behaviour (no forecast, a not-forecast reason)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.demand import DemandForecaster, not_forecast_reasons
from models.demand_short import SHORT_MODEL, short_note

KW = dict(models=("AutoETS", "CrostonSBA"), lgbm_params={"n_estimators": 10})
NEW = {"new2": [4.0, 6.0], "new3": [3.0, 0.0, 5.0], "new5": [7.0, 9.0, 6.0, 8.0, 10.0]}


def _panel(n=30, T=60, seed=0, new=NEW):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=T, freq="W-MON")
    parts = [pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": rng.poisson(rng.uniform(2, 25), T).astype(float)})
             for i in range(n)]
    for u, y in new.items():
        parts.append(pd.DataFrame({"unique_id": u, "ds": ds[-len(y):], "y": y}))
    parts.append(pd.DataFrame({"unique_id": "never", "ds": ds[-3:], "y": 0.0}))  # no demand: no forecast
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def fitted():
    return DemandForecaster(freq="W", h=4, **KW).fit(_panel())


def _check_bands(fc: pd.DataFrame, levels=(80, 95)) -> None:
    lo95, lo80, hi80, hi95 = (fc[f"Final-{s}-{lv}"] for s, lv in (("lo", 95), ("lo", 80), ("hi", 80), ("hi", 95)))
    assert (lo95 >= 0).all() and (lo95 <= lo80).all() and (lo80 <= fc["Final"]).all()
    assert (fc["Final"] <= hi80).all() and (hi80 <= hi95).all()
    assert fc[[f"Final-{s}-{lv}" for lv in levels for s in ("lo", "hi")]].notna().all().all()


def test_new_skus_get_a_fallback_forecast_with_ordered_nonnegative_bands(fitted):
    fc = fitted.predict()
    short = fc[fc["final_model"] == SHORT_MODEL]
    assert sorted(short["unique_id"].unique()) == ["new2", "new3", "new5"]
    assert len(short) == 3 * 4 and fc["unique_id"].nunique() == 33  # 30 established + 3 new; "never" has no demand
    means = short.groupby("unique_id")["Final"].agg(["min", "max"])
    for u, y in NEW.items():  # the mean of its last 4 observed periods (all when fewer), flat over the horizon
        assert means.loc[u, "min"] == pytest.approx(np.mean(y[-4:])) and means.loc[u, "max"] == pytest.approx(np.mean(y[-4:]))
    _check_bands(fc)
    # member columns stay empty for them; the established rows keep every member
    members = [c for c in fc.columns if c.startswith(("AutoETS", "CrostonSBA", "Ensemble"))]
    assert short[members].isna().all().all()
    assert fc.loc[fc["final_model"] != SHORT_MODEL, "AutoETS"].notna().all()
    # fewer periods, a wider band relative to the level (the mean of 2 periods is noisier than of 4)
    first = short.groupby("unique_id").first()
    rel = (first["Final-hi-95"] - first["Final-lo-95"]) / first["Final"]
    assert rel["new2"] > rel["new5"] > 0.5
    assert list(fitted.short_["unique_id"]) == ["new2", "new3", "new5"] and list(fitted.short_["n_periods"]) == [2, 3, 5]
    assert list(fitted.short_["window"]) == [2, 3, 4] and list(fitted.short_["window_total"]) == [10.0, 8.0, 33.0]
    # nothing left without a forecast but the series that never sold (dropped as all-zero by the panel)
    assert not_forecast_reasons(fitted, set(fc["unique_id"])) == {}
    assert short_note(2) == ("short history (2 periods): fallback forecast (mean of its 2 periods, band from "
                             "the errors of such means before the cutoff)")
    assert short_note(5, 4).startswith("short history (5 periods): fallback forecast (mean of its last 4 periods")
    assert short_note(1).startswith("short history (1 period): fallback forecast (mean of its only period")


def test_skip_keeps_the_old_behaviour_and_the_established_rows_are_the_same(fitted):
    old = DemandForecaster(freq="W", h=4, short_history="skip", **KW).fit(_panel())
    fc_old, fc_new = old.predict(), fitted.predict()
    assert set(fc_old["unique_id"]) == {f"s{i:02d}" for i in range(30)}
    reasons = not_forecast_reasons(old, set(fc_old["unique_id"]))
    assert reasons == {"new2": "2 observed periods; the forecaster needs at least 8",
                       "new3": "3 observed periods; the forecaster needs at least 8",
                       "new5": "5 observed periods; the forecaster needs at least 8"}
    same = fc_new[fc_new["final_model"] != SHORT_MODEL].reset_index(drop=True)
    pd.testing.assert_frame_equal(same, fc_old)
    with pytest.raises(ValueError, match="short_history must be one of"):
        DemandForecaster(freq="W", h=4, short_history="mean").fit(_panel())
    with pytest.raises(ValueError, match="short_window must be a whole number of periods >= 1; got 0"):
        DemandForecaster(freq="W", h=4, short_window=0).fit(_panel())
    # short_window=2: new5 is the mean of its last 2 periods
    two = DemandForecaster(freq="W", h=4, short_window=2, **KW).fit(_panel()).predict()
    assert two.loc[two["unique_id"] == "new5", "Final"].tolist() == [9.0] * 4


def test_save_load_and_a_forecaster_saved_before_the_fallback(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    back = DemandForecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(), fitted.predict())
    assert back.short_history == "fallback"
    # a pickle written before the fallback existed: no short_* attributes, no short_history
    old = DemandForecaster(freq="W", h=4, short_history="skip", **KW).fit(_panel())
    state = {k: v for k, v in old.__dict__.items() if k != "_cache" and not k.startswith("short")}
    (tmp_path / "old").mkdir()
    with open(tmp_path / "old" / "forecaster.pkl", "wb") as fh:
        pickle.dump(state, fh)
    legacy = DemandForecaster.load(tmp_path / "old")
    assert legacy.short_history == "skip"
    pd.testing.assert_frame_equal(legacy.predict(), old.predict())
    assert "new2" in not_forecast_reasons(legacy, set(legacy.predict()["unique_id"]))


@pytest.mark.parametrize("rates, cov80, cov95", [((3, 25), (0.70, 0.93), (0.88, 0.995)),
                                                 ((0.3, 3), (0.75, 0.99), (0.90, 1.0))])
def test_coverage_and_service_on_new_series_with_known_noise(rates, cov80, cov95):
    """300 new series, Poisson with known rates (fast and slow movers), 3 periods before the
    cutoff: the fallback's bands cover about their level of the next 4 periods (measured in
    cross-validation; the count floor keeps slow movers' bands honest), and the reorder point for
    a 2-week lead time at 95 % covers the next 2 weeks' demand in about 95 % of series."""
    from models.inventory import InventoryPolicy, fit_forecaster_policy

    rng = np.random.default_rng(3)
    T, h = 60, 4
    new = {f"n{i:03d}": rng.poisson(lam, 3 + h).astype(float) for i, lam in enumerate(rng.uniform(*rates, 300))}
    new = {u: y for u, y in new.items() if y[:3].sum() > 0}
    df = _panel(n=40, T=T, seed=1, new=new)
    est = DemandForecaster(freq="W", h=h, **KW)
    cv = est.cross_validation(df, h=h, n_windows=1)
    short = cv[cv["final_model"] == SHORT_MODEL]
    assert short["unique_id"].nunique() == len(new) and len(short) == len(new) * h
    _check_bands(short)
    for lv, band in ((80, cov80), (95, cov95)):
        cov = ((short["y"] >= short[f"Final-lo-{lv}"]) & (short["y"] <= short[f"Final-hi-{lv}"])).mean()
        assert band[0] <= cov <= band[1], (lv, cov)
    # the same cutoff, fitted: safety stock for the next 2 weeks
    cut = df["ds"].max() - pd.Timedelta(weeks=h)
    fit = DemandForecaster(freq="W", h=h, **KW).fit(df[df["ds"] <= cut])
    pol = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=1000), fit.predict(), fit, 2.0, 0.0).policy_
    pol = pol.set_index("unique_id").loc[list(new)]
    assert (pol["ltd_source"] == "short_history").all()
    ltd = pd.Series({u: y[3:5].sum() for u, y in new.items()})
    served = float((ltd <= pol["reorder_point"]).mean())
    assert 0.88 <= served <= 1.0, served


def test_backtest_scores_short_rows_apart_and_keeps_the_headline():
    from training.demand_backtest import run_backtest

    df = _panel(n=30, T=60, seed=2, new={"a": [3.0, 4.0, 2.0, 5.0, 3.0, 4.0, 6.0], "b": [1.0, 0.0, 2.0, 1.0, 1.0, 0.0]})
    rep, cv = run_backtest(df, freq="W", h=4, n_windows=1, forecaster_kwargs=KW)
    old, cv_old = run_backtest(df, freq="W", h=4, n_windows=1, forecaster_kwargs={**KW, "short_history": "skip"})
    assert rep["metrics"] == old["metrics"] and rep["by_class"] == old["by_class"]
    assert rep["setup"]["n_series_scored"] == old["setup"]["n_series_scored"] == 30
    sh = rep["short_history"]
    assert "short_history" not in old
    assert sh["model"] == "ShortHistory" and sh["n_series_windows"] == 2 and sh["n_forecasts"] == 8
    assert sh["mae"] > 0 and sh["bias"] is not None and 0 <= sh["coverage_80"] <= sh["coverage_95"] <= 1
    assert set(sh["by_periods"]) == {"2", "3"}  # a: 3 periods at the cutoff, b: 2
    assert sh["mae_last"] is not None and sh["mae_mean_all"] is not None
    assert (cv["final_model"] == SHORT_MODEL).sum() == 8 and len(cv) == len(cv_old) + 8
    reasons = {x["unique_id"]: x["reason"] for x in old["skipped"]}
    assert reasons["a"] == "fewer than 8 periods or no demand up to the cutoff"
    assert not any(x["unique_id"] in ("a", "b") for x in rep["skipped"])


def test_safety_stock_is_sized_for_short_series_from_the_fallback_distribution(fitted):
    from scipy.stats import nbinom

    from models.inventory import InventoryPolicy, fit_forecaster_policy

    fc = fitted.predict()
    pol = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=1000), fc, fitted, 2.0, 0.0).policy_
    assert len(pol) == 33 and pol["unique_id"].is_monotonic_increasing
    short = pol.set_index("unique_id").loc[["new2", "new3", "new5"]]
    assert (short["ltd_source"] == "short_history").all()
    assert short["ltd_mean"].tolist() == pytest.approx([2 * 5.0, 2 * 8 / 3, 2 * 8.25])
    # lead-time demand over 2 weeks at 95 %: above its mean, and wider (relative) for 2 periods than for 4
    assert (short["safety_stock"] > 0).all() and np.isfinite(short[["reorder_point", "order_up_to"]]).all().all()
    rel = short["safety_stock"] / short["ltd_mean"]
    assert rel["new2"] > rel["new5"]
    assert short.loc["new2", "reorder_point"] >= nbinom.ppf(0.95, 10.5, 2 / 4)  # sold 10 in 2 weeks: 2 weeks ahead
    # a lead-time spread: simulated, finite
    wide = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=1000), fc, fitted, 1.5, 0.2).policy_
    w = wide.set_index("unique_id").loc[["new2", "new3", "new5"]]
    assert np.isfinite(w["reorder_point"]).all() and (w["reorder_point"] > 0).all()
    # the established series' sizing is the one without the new SKUs, to the bit
    est_rows = fc[fc["final_model"] != SHORT_MODEL]
    alone = InventoryPolicy(0.95, 1.0, n_sims=1000).fit(est_rows, fitted.residuals_, fitted.scale_, 2.0, 0.0).policy_
    pd.testing.assert_frame_equal(pol[pol["ltd_source"] != "short_history"].reset_index(drop=True), alone)


def test_service_forecast_and_safety_stock_flag_short_series(fitted):
    from serving import schemas
    from serving.demand import DemandBackend
    from serving.schemas import ForecastRequest, SafetyStockRequest

    cfg = SimpleNamespace(demand={"freq": "W", "horizon": 4}, config_path=None, name="t", seed=0)
    be = DemandBackend.build(fitted, SimpleNamespace(name="dealerml-demand", version="7"), None, cfg)
    assert "new3" in be.uids and be.not_forecast == {}
    ans = be.forecast(ForecastRequest(series_ids=["new3", "s01"], horizon=4, levels=[80, 95]))
    schemas.ForecastResponse.model_validate(ans)
    new3, s01 = ans["series"]
    assert new3["model"] == "ShortHistory" and new3["note"] == short_note(3) and s01["note"] is None
    assert new3["forecast"][0]["mean"] == pytest.approx(8 / 3)
    iv = {i["level"]: i for i in new3["forecast"][0]["intervals"]}
    assert 0 <= iv[95]["lo"] <= iv[80]["lo"] <= 8 / 3 <= iv[80]["hi"] <= iv[95]["hi"]
    ss = be.safety_stock(SafetyStockRequest(series_ids=["new3", "s01"], lead_time_days=14.0, on_hand={"new3": 0.0}))
    schemas.SafetyStockResponse.model_validate(ss)
    rows = {r["unique_id"]: r for r in ss["rows"]}
    assert rows["new3"]["lead_time_demand_source"] == "short_history"
    assert rows["new3"]["note"] == short_note(3) + "; safety stock sized from its distribution"
    assert rows["new3"]["reorder_point"] > rows["new3"]["lead_time_demand_mean"] > 0
    assert rows["new3"]["action"] == "replenish" and rows["new3"]["suggested_order"] > 0
    assert rows["s01"]["note"] is None and rows["s01"]["lead_time_demand_source"] == "class_pool"
    # a cached answer is the fresh one
    again = be.safety_stock(SafetyStockRequest(series_ids=["new3"], lead_time_days=14.0))
    assert again["rows"][0]["reorder_point"] == rows["new3"]["reorder_point"]


def test_plans_of_drivers_keep_the_fallback_rows_as_fitted():
    """Short-history series read no drivers: a forecast with a plan (predict(X_df), predict_plan,
    the service's drivers) keeps their fitted rows, and plans the others as before."""
    df = _panel(n=24, T=50, seed=5)
    df["price"] = 10.0 + (df["ds"].dt.isocalendar().week.astype(int) % 3)
    est = DemandForecaster(freq="W", h=4, models=("AutoETS", "LightGBM"), lgbm_params={"n_estimators": 10}).fit(df)
    base = est.predict()
    plan = est.future_drivers()
    plan["price"] = plan["price"] * 0.5
    moved = est.predict(X_df=plan)
    short = base["final_model"] == SHORT_MODEL
    assert short.sum() == 12 and set(moved["unique_id"]) == set(base["unique_id"])
    pd.testing.assert_frame_equal(moved[moved["final_model"] == SHORT_MODEL].reset_index(drop=True),
                                  base[short].reset_index(drop=True))
    mine = est.predict_plan(plan[plan["unique_id"].isin(["new3", "s01"])])
    assert mine["unique_id"].drop_duplicates().tolist() == ["new3", "s01"]
    pd.testing.assert_frame_equal(mine[mine["unique_id"] == "new3"].reset_index(drop=True),
                                  base[base["unique_id"] == "new3"].reset_index(drop=True))
    only = est.predict_plan(plan[plan["unique_id"] == "new5"])
    assert only["Final"].tolist() == pytest.approx([8.25] * 4)


def test_no_window_before_the_cutoff_means_no_fallback_rather_than_a_crash():
    """With nothing before the cutoff to calibrate a band on (no sale before the last period), the
    short series get no forecast, as without the fallback. A cutoff less than h periods in (here 2 of
    4) is calibrated on the periods it has (the 2 after period 0), no longer left without a forecast."""
    from models.demand_short import short_history_forecast

    args = (np.array(["a", "b"]), pd.date_range("2024-01-01", periods=3, freq="W-MON"), "W-MON", 2, 4,
            np.zeros(2, bool), 8, 2, [80, 95])
    fc, info = short_history_forecast(np.array([[np.nan, np.nan, 3.0], [0.0, 0.0, 4.0]]), *args)
    assert fc.empty and info["short"].empty and info["residuals"].empty
    fc, info = short_history_forecast(np.array([[np.nan, 2.0, 3.0], [1.0, 0.0, 4.0]]), *args)
    assert info["lookahead"] == 2 and sorted(info["residuals"]["step"].unique()) == [1, 2]
    assert fc.groupby("unique_id")["Final"].first().to_dict() == {"a": 2.5, "b": 5 / 3} and len(fc) == 8


def test_overstock_on_a_short_history_policy_says_to_check_before_moving_stock(fitted):
    """A short-history policy rests on a few recent periods (at validation cutoffs those of series
    with a longer lumpy past covered 69-83 % at a 95 % target), so its overstock suggestion says so;
    an established series' overstock suggestion does not."""
    from models.inventory import InventoryPolicy, fit_forecaster_policy

    policy = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=1000, cover_limit_periods=4), fitted.predict(),
                                   fitted, 2.0, 0.0)
    adv = policy.advise(pd.DataFrame({"unique_id": ["new5", "s00"], "on_hand": [500.0, 5000.0]}), freq="W")
    adv = adv.set_index("unique_id")
    assert (adv["action"] == "overstock").all()
    assert adv.loc["new5", "suggestion"].endswith(
        "(sized from a short history, its last few periods only: check its sales before moving stock)")
    assert "short history" not in adv.loc["s00", "suggestion"] and "promote or transfer" in adv.loc["s00", "suggestion"]


def _short_est(T=70, mt=40, h=8, seed=3):
    """A panel sized with the fallback directly (no forecaster fit): 20 established series, a short
    series with a 30-period lumpy past and no sale in its last 6 periods, the same lumpy past over
    20 periods only, and a short smooth series with 30 periods."""
    from models.demand_short import short_history_forecast

    rng = np.random.default_rng(seed)
    uids = np.array([f"s{i:02d}" for i in range(20)] + ["lumpy30", "lumpy20", "smooth30"])
    Y = np.full((len(uids), T), np.nan)
    Y[:20] = rng.poisson(rng.uniform(2, 20, (20, 1)), (20, T))
    lumpy = np.zeros(30)
    lumpy[[0, 4, 9, 13, 18, 23]] = [12.0, 1.0, 20.0, 2.0, 15.0, 3.0]
    Y[20, -30:] = lumpy
    Y[21, -20:] = lumpy[-20:]
    Y[21, -20] = 9.0  # its first sale 20 periods ago: 4 sales, too short a past for its own history
    Y[22, -30:] = rng.poisson(6.0, 30)
    dates = pd.date_range("2022-01-03", periods=T, freq="W-MON")
    c = T - 1
    eligible = np.isfinite(Y).sum(1) >= mt
    fc, info = short_history_forecast(Y, uids, dates, "W-MON", c, h, eligible, mt, 2, [80, 95])
    est = SimpleNamespace(short_=info["short"], short_residuals_=info["residuals"], short_scale_=info["scale"])
    ii, tt = np.nonzero(np.isfinite(Y))
    history = pd.DataFrame({"unique_id": uids[ii], "ds": dates[tt], "y": Y[ii, tt]})
    return fc[["unique_id", "ds", "Final"]], est, history


def test_short_series_with_a_lumpy_past_take_the_higher_of_fallback_and_own_history():
    """Short series with >= 26 periods since the first sale, >= 3 sales and an intermittent / lumpy
    past (session 11: their fallback reorder points covered 88-90 % at a 95 % target) are sized at
    the higher of the fallback's and their own-history bootstrap's reorder point / order-up-to
    (ltd_source short_history+own_history); every other row is the fallback's, to the bit."""
    from models.inventory import SHORT_OWN_SOURCE, InventoryPolicy, fit_forecaster_policy

    fc, est, history = _short_est()
    assert sorted(est.short_["unique_id"]) == ["lumpy20", "lumpy30", "smooth30"]
    L = pd.Series({"lumpy20": 2.0, "lumpy30": 2.5, "smooth30": 3.0})
    base = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=2000), fc, est, L, 0.3).policy_.set_index("unique_id")
    new = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=2000), fc, est, L, 0.3,
                                history=history).policy_.set_index("unique_id")
    assert (base["ltd_source"] == "short_history").all()
    assert new["ltd_source"].to_dict() == {"lumpy20": "short_history", "lumpy30": SHORT_OWN_SOURCE,
                                           "smooth30": "short_history"}
    pd.testing.assert_frame_equal(new.drop(index="lumpy30"), base.drop(index="lumpy30"))
    # lumpy30: no sale in its last 4 periods, so the fallback's level is 0 and only the count floor
    # holds it up; its own past (lumps of 1-20 every ~5 periods) asks for more
    own = InventoryPolicy(0.95, 1.0, n_sims=2000).fit(
        fc[fc["unique_id"] == "lumpy30"], est.short_residuals_, est.short_scale_, L, 0.3,
        history=history, pools=pd.Series({"lumpy30": "lumpy"})).policy_.set_index("unique_id")
    assert own.loc["lumpy30", "ltd_source"] == "own_history"
    for col in ("reorder_point", "order_up_to"):
        assert new.loc["lumpy30", col] == max(base.loc["lumpy30", col], own.loc["lumpy30", col])
    assert new.loc["lumpy30", "reorder_point"] > base.loc["lumpy30", "reorder_point"] + 5
    assert new.loc["lumpy30", "safety_stock"] == new.loc["lumpy30", "reorder_point"] - new.loc["lumpy30", "ltd_mean"]
    cols = ["ltd_mean", "mean_demand", "sigma_d", "normal_reorder_point", "demand_class"]
    assert new.loc["lumpy30", cols].tolist() == base.loc["lumpy30", cols].tolist()


def test_established_and_young_short_series_are_unchanged_with_history(fitted):
    """With the forecaster's history passed (as the CLI and the service do), the established series
    are sized as by InventoryPolicy.fit alone, and short series with < 26 periods keep the fallback."""
    from models.inventory import InventoryPolicy, fit_forecaster_policy, forecaster_history

    fc = fitted.predict()
    H = forecaster_history(fitted)
    pol = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=1000), fc, fitted, 2.0, 0.3, history=H).policy_
    old = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=1000), fc, fitted, 2.0, 0.3).policy_
    short = pol["ltd_source"] == "short_history"
    assert sorted(pol.loc[short, "unique_id"]) == ["new2", "new3", "new5"]
    pd.testing.assert_frame_equal(pol[short], old[old["ltd_source"] == "short_history"])
    est_rows = fc[fc["final_model"] != SHORT_MODEL]
    alone = InventoryPolicy(0.95, 1.0, n_sims=1000).fit(est_rows, fitted.residuals_, fitted.scale_, 2.0, 0.3,
                                                        history=H).policy_
    pd.testing.assert_frame_equal(pol[~short].reset_index(drop=True), alone)
