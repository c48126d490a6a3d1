"""A member without a forecast: the Ensemble is NaN where one of its members is missing, and
Final falls back to the next candidate of its ranking (or the series is not forecast, with why)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support_demand import MEMBERS, _missing_at_last, _panel

from models.demand import DemandForecaster, not_forecast_reasons
from models.demand_conformal import apply_conformal, conformal_table
from models.demand_data import build_panel
from models.demand_fallback_bands import fallback_bands, served_tables
from models.demand_members import _MemberRuns
from models.demand_select import final_served, select_ranked


# -- selection level: the ranking and the served pick ----------------------------------------------
def _hist_fc(h: int = 3):
    """Windows where A < C < B (scaled error 1 < 2 < 3) for every series of class 'smooth'."""
    uids = [f"s{i}" for i in range(25)]
    rows = []
    for cut in pd.to_datetime(["2020-01-05", "2020-02-02"]):
        for u in uids:
            rows.append(pd.DataFrame({"unique_id": u, "cutoff": cut, "step": np.arange(1, h + 1), "y": 10.0,
                                      "A": 11.0, "B": 13.0, "C": 12.0, "scale": 1.0}))
    hist = pd.concat(rows, ignore_index=True)
    fc = pd.DataFrame({"unique_id": np.repeat(uids, h), "cutoff": pd.Timestamp("2020-03-01"),
                       "step": np.tile(np.arange(1, h + 1), len(uids))})
    fc["A"], fc["B"], fc["C"] = 1.0, 2.0, 3.0
    return hist, fc, pd.Series("smooth", index=uids)


def test_final_falls_back_to_the_next_best_of_its_class_and_records_it():
    hist, fc, classes = _hist_fc()
    choice, scores, ranking = select_ranked(hist, ["A", "B", "C"], classes)
    assert choice.eq("A").all() and ranking.order("s0")[0] == ["A", "C", "B"]
    fc.loc[fc["unique_id"] == "s1", "A"] = np.nan  # A fails on all of s1
    fc.loc[(fc["unique_id"] == "s2") & (fc["step"] == 2), "A"] = np.nan  # and on one period of s2
    fc.loc[(fc["unique_id"] == "s2") & (fc["step"] == 3), "C"] = np.nan  # where C misses one too: B serves
    fc.loc[fc["unique_id"] == "s3", ["A", "B", "C"]] = np.nan  # nothing forecasts s3
    out = final_served(fc, hist, ["A", "B", "C"], choice, classes, np.ones(len(fc)), "class", ranking=ranking)
    point, used = pd.Series(out["point"], index=fc.index), pd.Series(out["used"], index=fc.index)
    by = fc["unique_id"]
    assert (point[by == "s1"] == 3.0).all() and (used[by == "s1"] == "C").all()  # C's values, all its periods
    assert (point[by == "s2"] == 2.0).all() and (used[by == "s2"] == "B").all()  # one member over the horizon
    assert point[by == "s3"].isna().all() and used[by == "s3"].isna().all()
    rest = ~by.isin(["s1", "s2", "s3"])
    assert (point[rest] == 1.0).all() and (used[rest] == "A").all()
    rec = out["fallback"].set_index("unique_id")
    assert sorted(rec.index) == ["s1", "s2", "s3"]
    assert rec.loc["s1", "served"] == "C" and rec.loc["s1", "missing"] == 3 and rec.loc["s2", "missing"] == 1
    assert rec.loc["s3", "served"] is None
    assert "A (chosen by its demand class smooth) has no forecast for 3 of 3 periods; served by C" in rec.loc["s1", "reason"]
    assert rec.loc["s3", "reason"].startswith("not forecast: no candidate has a forecast for all 3 periods")


def test_series_selection_ranks_by_its_own_errors_then_its_class():
    hist, fc, classes = _hist_fc()
    hist.loc[hist["unique_id"] == "s1", "B"] = 10.5  # B is s1's best, then A, then C
    choice, _, ranking = select_ranked(hist, ["A", "B", "C"], classes, "series")
    assert choice["s1"] == "B" and ranking.order("s1") == (["B", "A", "C"], "its own errors")
    fc.loc[fc["unique_id"] == "s1", "B"] = np.nan
    out = final_served(fc, None, ["A", "B", "C"], choice, classes, np.ones(len(fc)), "series", ranking=ranking)
    assert (out["point"][(fc["unique_id"] == "s1").to_numpy()] == 1.0).all()  # A, its own second best


def test_a_fallback_series_band_is_calibrated_on_the_errors_of_the_candidate_serving_it():
    """A's errors on the windows are small and C's large: Final's table (the chosen A's errors) would
    give s1, served by C, a band far too narrow; it gets C's (with +median, C moved by Final's shift)."""
    rng = np.random.default_rng(1)
    hist, fc, classes = _hist_fc()
    hist["A"] = 10.0 + rng.normal(0, 0.2, len(hist))
    hist["C"] = 10.0 + rng.normal(0, 3.0, len(hist))
    fc.loc[fc["unique_id"] == "s1", "A"] = np.nan
    fc["demand_class"] = "smooth"
    scale, levels = np.ones(len(fc)), [80, 95]
    for how in ("class", "class+median"):
        choice, _, ranking = select_ranked(hist, ["A", "B", "C"], classes)
        out = final_served(fc, hist, ["A", "B", "C"], choice, classes, scale, how, ranking=ranking)
        f = fc.assign(Final=out["point"])
        final_table = conformal_table(pd.DataFrame({"demand_class": "smooth", "step": hist["step"],
                                                    "r": hist["y"] - out["hpoint"]}), levels)
        for lv, (lo, hi) in apply_conformal(f["Final"].to_numpy(), scale, f["demand_class"].to_numpy(),
                                            f["step"].to_numpy(), final_table, levels).items():
            f[f"Final-lo-{lv}"], f[f"Final-hi-{lv}"] = lo, hi
        tables = served_tables(hist, ["A", "B", "C"], classes, levels, out["shift"])
        shift = 0.0 if out["shift"] is None else out["shift"]
        want = conformal_table(pd.DataFrame({"demand_class": "smooth", "step": hist["step"],
                                             "r": hist["y"] - np.clip(hist["C"] + shift, 0, None)}), levels)
        assert tables["C"] == want
        rec = fallback_bands(f, out["fallback"], tables, [final_table], scale, levels)
        s1, s0 = f[f["unique_id"] == "s1"], f[f["unique_id"] == "s0"]
        width = (s1["Final-hi-80"] - s1["Final-lo-80"]).to_numpy(), (s0["Final-hi-80"] - s0["Final-lo-80"]).to_numpy()
        assert (width[0] > 5 * width[1]).all(), how
        lo, hi = want[("*", 0)][80]
        np.testing.assert_allclose(s1["Final-lo-80"], np.clip(s1["Final"] + lo, 0, None))
        np.testing.assert_allclose(s1["Final-hi-80"], s1["Final"] + hi)
        assert rec["reason"].tolist() == out["fallback"]["reason"].tolist()  # C had a table: nothing to add
    # C without a single error on the windows: the widest of the kept tables, and the reason says so
    f = fc.assign(Final=3.0, **{f"Final-{s}-{lv}": 0.0 for s in ("lo", "hi") for lv in levels})
    rec = fallback_bands(f, out["fallback"], {"C": {}}, [{("*", 0): {80: (-1.0, 1.0), 95: (-2.0, 2.0)}},
                                                        {("*", 0): {80: (-3.0, 0.5), 95: (-4.0, 1.0)}}], scale, levels)
    s1 = f[f["unique_id"] == "s1"]
    assert (s1["Final-lo-80"] == 0.0).all() and (s1["Final-hi-80"] == 4.0).all() and (s1["Final-hi-95"] == 5.0).all()
    assert rec["reason"].iloc[0].endswith("no table of C's errors on the selection windows was kept, so its band is "
                                          "the widest of the kept bands for its demand class")


# -- the Ensemble -----------------------------------------------------------------------------------
def test_ensemble_is_nan_where_one_of_its_members_has_no_forecast(monkeypatch):
    df = _panel()
    est = DemandForecaster(freq="W", h=4, models=("SeasonalNaive", "AutoETS", "LightGBM"), lgbm_params={"n_estimators": 20})
    panel = build_panel(df, "W")
    est._resolve(panel)
    real = _MemberRuns._lgbm_forecast

    def lgbm_missing_s0(self, sub, c, h, *a, **k):
        out = real(self, sub, c, h, *a, **k)
        out[list(sub.uids).index("s0")] = np.nan
        return out

    monkeypatch.setattr(_MemberRuns, "_lgbm_forecast", lgbm_missing_s0)
    out = est._members_at(panel, panel.Y.shape[1] - 1, 4)
    s0 = (out["unique_id"] == "s0").to_numpy()
    assert out.loc[s0, "AutoETS"].notna().all() and out.loc[s0, "Ensemble"].isna().all()  # not AutoETS alone
    assert np.allclose(out.loc[~s0, "Ensemble"], out.loc[~s0, ["AutoETS", "LightGBM"]].mean(axis=1))


# -- the forecaster: fit, predict, point_only --------------------------------------------------------


def test_fit_serves_the_fallback_member_and_names_the_rows(monkeypatch):
    df, T = _panel(), 40
    base = DemandForecaster(freq="W", h=4, selection="global", **MEMBERS).fit(df)
    chosen = str(base.choice_["s1"])
    order = base.scores_.loc["all", list(MEMBERS["models"])].astype(float).sort_values(kind="stable").index.tolist()
    assert order[0] == chosen
    nxt = order[1]
    _missing_at_last(monkeypatch, T, {"s1": [chosen], "s2": list(MEMBERS["models"])})
    est = DemandForecaster(freq="W", h=4, selection="global", **MEMBERS).fit(df)
    fc = est.predict()
    s1 = fc[fc["unique_id"] == "s1"]
    assert np.allclose(s1["Final"], s1[nxt]) and (s1["final_model"] == nxt).all()
    assert (s1["Final-lo-80"] <= s1["Final"]).all() and (s1["Final"] <= s1["Final-hi-80"]).all()
    assert fc[["Final", "Final-lo-80", "Final-hi-95"]].notna().all().all()
    assert "s2" not in set(fc["unique_id"])  # nothing forecasts it: not served as NaN
    others = fc[~fc["unique_id"].isin(["s1"])].reset_index(drop=True)
    before = base.predict()
    before = before[~before["unique_id"].isin(["s1", "s2"])].reset_index(drop=True)
    pd.testing.assert_series_equal(others["Final"], before["Final"])  # the others as before
    rec = est.fallback_.set_index("unique_id")
    assert sorted(rec.index) == ["s1", "s2"] and rec.loc["s1", "served"] == nxt and rec.loc["s2", "served"] is None
    # s1's safety stock is sized on the error paths its band is calibrated on (tests/test_fallback_safety_stock.py)
    assert set(est.served_residuals_) == {nxt} and not set(base.served_residuals_)
    assert conformal_table(est.served_residuals_[nxt], est._levels()) == est.served_conformal_[nxt]
    assert rec.loc["s1", "reason"].startswith(f"{chosen} (chosen by all series) has no forecast for 4 of 4 periods")
    why = not_forecast_reasons(est, set(fc["unique_id"]))
    assert why["s2"].startswith("no candidate has a forecast for all 4 periods")
    assert base.fallback_.empty
    # the forecast file's forecast_note and the policy file's no_policy_reason say so
    from training.commands._demand_common import _short_notes
    from training.commands.demand_stock import _not_forecast_reasons

    notes = dict(zip(["s0", "s1"], _short_notes(est, ["s0", "s1"]), strict=True))
    assert notes["s0"] == "" and notes["s1"] == rec.loc["s1", "reason"]
    assert _not_forecast_reasons(est)["s2"][0] == "no_member_forecast"
    # the service's /forecast note (serving.demand.DemandBackend)
    from serving.demand import DemandBackend

    uids = sorted(set(fc["unique_id"]))
    backend = DemandBackend(model_name="m", model_version="m/1", freq="W", uids=uids, keys=None,
                            dates=pd.DatetimeIndex(sorted(fc["ds"].unique())),
                            mean=fc.sort_values(["unique_id", "ds"])["Final"].to_numpy().reshape(len(uids), 4),
                            bounds={}, last_observed=est.last_ds_, estimator=est)
    assert backend.fallback_notes == {"s1": rec.loc["s1", "reason"]}
    assert backend.not_forecast["s2"].startswith("no candidate has a forecast")


def test_point_only_falls_back_as_the_full_run(monkeypatch):
    df, T = _panel(), 40
    base = DemandForecaster(freq="W", h=4, selection="global", **MEMBERS).fit(df)
    _missing_at_last(monkeypatch, T, {"s1": [str(base.choice_["s1"])]})
    est = DemandForecaster(freq="W", h=4, selection="global", **MEMBERS)
    cut = [pd.Timestamp(df["ds"].max())]
    (full, _), = est.rolling_forecasts(df, cut, 4)
    (lean, info), = est.rolling_forecasts(df, cut, 4, point_only=True)
    assert "s1" in set(info["fallback"]["unique_id"])
    pd.testing.assert_series_equal(full["Final"].reset_index(drop=True), lean["Final"].reset_index(drop=True))
    pd.testing.assert_series_equal(full["final_model"].reset_index(drop=True), lean["final_model"].reset_index(drop=True))
    for c in ("Final-lo-80", "Final-hi-95"):  # the fallback series' band too: its serving member's errors in both
        pd.testing.assert_series_equal(full[c].reset_index(drop=True), lean[c].reset_index(drop=True))
    assert np.isfinite(lean["Final"]).all()


def test_nothing_forecast_anywhere_is_refused_with_why(monkeypatch):
    df = _panel(n=2)
    _missing_at_last(monkeypatch, 40, {u: list(MEMBERS["models"]) for u in ("s0", "s1")})
    with pytest.raises(ValueError, match="no member has a forecast for every period of any series"):
        DemandForecaster(freq="W", h=4, selection="global", short_history="skip", **MEMBERS).fit(df)


def test_cross_validation_window_says_who_fell_back_and_who_was_left_out(monkeypatch):
    from training.demand_backtest import skipped_windows

    df, T, h = _panel(), 40, 4
    base = DemandForecaster(freq="W", h=h, selection="global", **MEMBERS).fit(df[df["ds"] <= df["ds"].unique()[T - 1 - h]])
    _missing_at_last(monkeypatch, T - h, {"s1": [str(base.choice_["s1"])], "s2": list(MEMBERS["models"])})
    est = DemandForecaster(freq="W", h=h, selection="global", **MEMBERS)
    cv = est.cross_validation(df, h=h, n_windows=2)
    last = est.cv_info_["windows"][-1]
    assert "s2" in last["left_out"] and cv.loc[cv["cutoff"] == last["cutoff"], "Final"].notna().all()
    assert set(last["fallback"]["unique_id"]) == {"s1", "s2"}
    skipped = [x for x in skipped_windows(est.cv_info_, est._min_train(h), short_history="fallback") if x["unique_id"] == "s2"]
    assert len(skipped) == 1 and skipped[0]["reason"].startswith("not forecast: no candidate has a forecast for all 4")
