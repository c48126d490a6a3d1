"""DemandForecaster: estimator contract, no leakage in cross-validation, interval sanity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.demand import DemandForecaster, NotFittedError

FAST = dict(models=("SeasonalNaive", "AutoETS", "CrostonSBA", "LightGBM"), lgbm_params={"n_estimators": 30})


def _panel(n=12, T=80, seed=0, kind="poisson", start="2020-01-06"):
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, periods=T, freq="W-MON")
    rows = []
    for i in range(n):
        if kind == "poisson":
            lam = rng.uniform(2, 30)
            y = rng.poisson(lam, T).astype(float)
        elif kind == "gauss":
            y = np.clip(100 + rng.normal(0, 10, T), 0, None)
        else:  # intermittent
            y = rng.poisson(4, T) * (rng.random(T) < 0.35)
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": y.astype(float)}))
    return pd.concat(rows, ignore_index=True)


def test_contract_unfitted_fit_predict_shapes_and_roundtrip(tmp_path):
    est = DemandForecaster(freq="W", h=4, **FAST)
    assert est.h == 4 and not hasattr(est, "forecast_")  # __init__ only stores
    with pytest.raises(NotFittedError, match="not fitted"):
        est.predict(4)
    with pytest.raises(NotFittedError):
        est.save(tmp_path / "m")
    df = _panel()
    assert est.fit(df) is est
    fc = est.predict(4)
    assert len(fc) == 12 * 4 and fc["unique_id"].nunique() == 12
    assert fc.groupby("unique_id")["ds"].min().eq(df["ds"].max() + pd.Timedelta(weeks=1)).all()
    for m in ("SeasonalNaive", "AutoETS", "CrostonSBA", "LightGBM", "Ensemble", "Final"):
        for c in (m, f"{m}-lo-80", f"{m}-hi-80", f"{m}-lo-95", f"{m}-hi-95"):
            assert c in fc.columns and fc[c].notna().all(), c
    assert set(fc["final_model"]) <= {"SeasonalNaive", "AutoETS", "CrostonSBA", "LightGBM", "Ensemble"}
    assert len(est.predict(2)) == 24
    only80 = est.predict(3, level=[80])
    assert "Final-lo-80" in only80.columns and "Final-lo-95" not in only80.columns
    with pytest.raises(ValueError, match="between 1 and the fitted horizon 4"):
        est.predict(5)
    est.save(tmp_path / "m")
    back = DemandForecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(4), fc)
    sub = back.predict_frame(pd.DataFrame({"unique_id": ["s03"], "h": [2]}))
    assert sub["unique_id"].unique().tolist() == ["s03"] and len(sub) == 2
    with pytest.raises(ValueError, match="horizon h must be"):
        DemandForecaster(freq="W", h=0).fit(df)
    with pytest.raises(ValueError, match="models must be"):
        DemandForecaster(freq="W", h=4, models=("Prophet",)).fit(df)


def test_bad_input_is_named():
    df = _panel(n=2, T=30)
    with pytest.raises(ValueError, match="column y must be >= 0"):
        DemandForecaster(freq="W", h=4).fit(df.assign(y=-1.0))
    with pytest.raises(ValueError, match="missing \\['y'\\]"):
        DemandForecaster(freq="W", h=4).fit(df.drop(columns="y"))
    with pytest.raises(ValueError, match="share a unique_id"):
        DemandForecaster(freq="W", h=4).fit(pd.concat([df, df.head(1)]))


def test_cross_validation_matches_refit_on_truncated_data():
    """Each CV window equals a fit on the data up to its cutoff: the window (and everything
    after it) is never used for the choice of member or the intervals."""
    df = _panel(n=8, T=70, seed=3)
    est = DemandForecaster(freq="W", h=4, **FAST)
    cv = est.cross_validation(df, h=4, n_windows=2, step_size=4)
    cutoffs = sorted(cv["cutoff"].unique())
    assert len(cutoffs) == 2 and cutoffs[1] - cutoffs[0] == pd.Timedelta(weeks=4)
    assert cutoffs[1] == df["ds"].max() - pd.Timedelta(weeks=4)
    assert len(cv) == 8 * 4 * 2 and cv["y"].notna().all()
    first = cv[cv["cutoff"] == cutoffs[0]].reset_index(drop=True)
    refit = DemandForecaster(freq="W", h=4, **FAST).fit(df[df["ds"] <= cutoffs[0]]).predict(4)
    for col in ("Final", "Final-lo-80", "Final-hi-95", "LightGBM", "AutoETS"):
        np.testing.assert_allclose(first[col].to_numpy(), refit[col].to_numpy(), rtol=1e-9, err_msg=col)
    assert (first["final_model"] == refit["final_model"]).all()


@pytest.mark.parametrize("kind", ["gauss", "poisson"])
def test_intervals_ordered_and_cover_near_nominal(kind):
    df = _panel(n=120, T=60, seed=11, kind=kind)
    est = DemandForecaster(freq="W", h=4, models=("AutoETS", "LightGBM"), lgbm_params={"n_estimators": 30},
                           selection_windows=3)
    cv = est.cross_validation(df, h=4, n_windows=2)
    for m in ("AutoETS", "LightGBM", "Ensemble", "Final"):
        lo95, lo80, hi80, hi95 = (cv[f"{m}-{s}"].to_numpy() for s in ("lo-95", "lo-80", "hi-80", "hi-95"))
        assert (lo95 <= lo80 + 1e-9).all() and (lo80 <= hi80 + 1e-9).all() and (hi80 <= hi95 + 1e-9).all()
        assert (lo95 >= 0).all()
    cov80 = ((cv["y"] >= cv["Final-lo-80"]) & (cv["y"] <= cv["Final-hi-80"])).mean()
    cov95 = ((cv["y"] >= cv["Final-lo-95"]) & (cv["y"] <= cv["Final-hi-95"])).mean()
    # 960 forecasts of iid noise: nominal +- about 3 standard errors
    assert 0.75 <= cov80 <= 0.86, cov80
    assert 0.92 <= cov95 <= 0.985, cov95


# -- the fast profile (the scale path) ----------------------------------------------------------
FAST_PROFILE = dict(profile="fast", lgbm_params={"n_estimators": 30})


def test_fast_profile_contract_members_and_intervals(tmp_path):
    from models.demand import FAST_MEMBERS

    df = _panel(n=40, T=70, seed=5, kind="intermittent")
    est = DemandForecaster(freq="W", h=4, **FAST_PROFILE).fit(df)
    assert est.profile_ == "fast" and est.members_ == FAST_MEMBERS
    fc = est.predict(4)
    assert len(fc) == 40 * 4 and "AutoETS" not in fc.columns and "AutoTheta" not in fc.columns
    for m in (*FAST_MEMBERS, "Final"):
        lo95, lo80, hi80, hi95 = (fc[f"{m}-{s}"].to_numpy() for s in ("lo-95", "lo-80", "hi-80", "hi-95"))
        assert np.isfinite(lo95).all() and np.isfinite(hi95).all(), m
        assert (lo95 <= lo80 + 1e-9).all() and (lo80 <= fc[m].to_numpy() + 1e-9).all(), m
        assert (fc[m].to_numpy() <= hi80 + 1e-9).all() and (hi80 <= hi95 + 1e-9).all(), m
        assert (hi95 > lo95).any(), m  # not degenerate
    assert set(fc["final_model"]) <= set(FAST_MEMBERS)
    est.save(tmp_path / "m")
    back = DemandForecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(4), fc)
    assert '"profile": "fast"' in (tmp_path / "m" / "meta.json").read_text()
    # a forecaster saved before profiles existed loads as full and can still refit
    import pickle

    state = pickle.loads((tmp_path / "m" / "forecaster.pkl").read_bytes())
    for k in ("profile", "fast_above", "profile_", "members_"):
        state.pop(k)
    state["models"] = ("SeasonalNaive", "CrostonSBA")
    (tmp_path / "m" / "forecaster.pkl").write_bytes(pickle.dumps(state))
    old = DemandForecaster.load(tmp_path / "m")
    assert old.profile == "full" and old.fit(df).profile_ == "full"


def test_auto_profile_switches_on_series_count_and_bad_profile_is_named():
    df = _panel(n=12, T=60, seed=2)
    small = DemandForecaster(freq="W", h=4, models=("SeasonalNaive", "CrostonSBA"), fast_above=12).fit(df)
    assert small.profile_ == "full"
    big = DemandForecaster(freq="W", h=4, models=("SeasonalNaive", "CrostonSBA"), fast_above=11).fit(df)
    assert big.profile_ == "fast"
    # same point forecasts either way (statsforecast members), only the intervals differ
    a, b = small.predict(4), big.predict(4)
    np.testing.assert_allclose(a["SeasonalNaive"], b["SeasonalNaive"])
    np.testing.assert_allclose(a["CrostonSBA"], b["CrostonSBA"])
    assert not np.allclose(a["CrostonSBA-hi-95"], b["CrostonSBA-hi-95"])
    with pytest.raises(ValueError, match="profile must be one of"):
        DemandForecaster(freq="W", h=4, profile="quick").fit(df)


def test_fast_cross_validation_matches_refit_on_truncated_data():
    df = _panel(n=10, T=70, seed=4)
    cv = DemandForecaster(freq="W", h=4, **FAST_PROFILE).cross_validation(df, h=4, n_windows=2)
    first_cut = sorted(cv["cutoff"].unique())[0]
    first = cv[cv["cutoff"] == first_cut].reset_index(drop=True)
    refit = DemandForecaster(freq="W", h=4, **FAST_PROFILE).fit(df[df["ds"] <= first_cut]).predict(4)
    for col in ("Final", "Final-hi-95", "TSB", "TSB-lo-80", "LightGBM-hi-80", "SeasonalNaive-hi-95"):
        np.testing.assert_allclose(first[col].to_numpy(), refit[col].to_numpy(), rtol=1e-9, err_msg=col)


def test_fast_conformal_intervals_cover_near_nominal():
    df = _panel(n=150, T=60, seed=13, kind="gauss")
    cv = DemandForecaster(freq="W", h=4, selection_windows=3, **FAST_PROFILE).cross_validation(df, h=4, n_windows=2)
    for m in ("SeasonalNaive", "TSB", "Final"):
        cov80 = ((cv["y"] >= cv[f"{m}-lo-80"]) & (cv["y"] <= cv[f"{m}-hi-80"])).mean()
        cov95 = ((cv["y"] >= cv[f"{m}-lo-95"]) & (cv["y"] <= cv[f"{m}-hi-95"])).mean()
        # 1,200 forecasts of iid noise: nominal +- about 3 standard errors
        assert 0.75 <= cov80 <= 0.86, (m, cov80)
        assert 0.92 <= cov95 <= 0.985, (m, cov95)


def test_lgbm_series_sampling_caps_rows_and_keeps_whole_history(monkeypatch):
    import lightgbm as lgb

    from models.demand_lgbm import GlobalLGBM

    rng = np.random.default_rng(0)
    Y = rng.poisson(5, (200, 60)).astype(float)
    dates = pd.date_range("2022-01-03", periods=60, freq="W-MON")
    future = pd.date_range(dates[-1], periods=5, freq="W-MON")[1:]
    seen = {}
    real = lgb.Dataset

    def spy(X, y, *a, **k):
        seen["n"], seen["period"] = len(y), X[:, -2].copy()  # week of year column
        return real(X, y, *a, **k)

    monkeypatch.setattr(lgb, "Dataset", spy)
    out = GlobalLGBM(season_length=52, n_estimators=5, max_rows=2000, row_sample="series").fit_predict(Y, dates, future, "W")
    assert out.shape == (200, 4) and np.isfinite(out).all()
    assert 1500 <= seen["n"] <= 2000 and len(np.unique(seen["period"])) == 52  # whole years, not the last weeks
    GlobalLGBM(season_length=52, n_estimators=5, max_rows=2000).fit_predict(Y, dates, future, "W")
    assert seen["n"] >= 2000 and len(np.unique(seen["period"])) < 52  # 'recent' keeps the last weeks only
    with pytest.raises(ValueError, match="row_sample must be"):
        GlobalLGBM(row_sample="all").fit_predict(Y, dates, future, "W")


def test_short_series_do_not_take_the_season_away_from_long_ones():
    """One new item (< 2 seasons of history) gets the non-seasonal members; the long series
    keep theirs: SeasonalNaive repeats last year for a long series and the last value for the
    short one (before, one short series made every series non-seasonal)."""
    ds = pd.date_range("2020-01-06", periods=120, freq="W-MON")
    week = np.arange(120) % 52
    long_y = 20 + 15 * np.sin(2 * np.pi * week / 52) + np.arange(120) * 0.0
    rows = [pd.DataFrame({"unique_id": f"long{i}", "ds": ds, "y": np.round(long_y + i, 3)}) for i in range(3)]
    rows.append(pd.DataFrame({"unique_id": "new", "ds": ds[-30:], "y": np.arange(30, dtype=float) + 1}))
    df = pd.concat(rows, ignore_index=True)
    est = DemandForecaster(freq="W", h=4, models=("SeasonalNaive", "AutoETS"), selection="global").fit(df)
    fc = est.predict(4).set_index(["unique_id", "ds"])
    for i in range(3):
        last_year = df[df["unique_id"] == f"long{i}"].set_index("ds")["y"].iloc[-52:-48].to_numpy()
        np.testing.assert_allclose(fc.loc[f"long{i}", "SeasonalNaive"].to_numpy(), last_year)
    np.testing.assert_allclose(fc.loc["new", "SeasonalNaive"].to_numpy(), [30.0] * 4)


def test_lgbm_scale_window_scales_by_the_recent_mean_and_direct_strategy(monkeypatch):
    import lightgbm as lgb

    from models.demand_lgbm import GlobalLGBM

    rng = np.random.default_rng(1)
    n, T, h = 60, 40, 4
    level = np.where(np.arange(T) < 30, 2.0, 12.0)  # demand steps up 10 periods before the cutoff
    Y = rng.poisson(level, (n, T)).astype(float)
    Y[:5, -8:] = 0.0  # no demand in the last 8 periods: falls back to the whole-history mean
    dates = pd.date_range("2022-01-03", periods=T, freq="W-MON")
    future = pd.date_range(dates[-1], periods=h + 1, freq="W-MON")[1:]
    seen = {}
    real = lgb.Dataset

    def spy(X, y, *a, **k):
        seen["y"], seen["step"] = np.asarray(y), X[:, -1].copy()
        return real(X, y, *a, **k)

    monkeypatch.setattr(lgb, "Dataset", spy)
    out = GlobalLGBM(season_length=52, n_estimators=20, scale_window=8).fit_predict(Y, dates, future, "W")
    recent = seen["y"][: 8 * n].reshape(8, n)  # training rows are stacked newest period first
    assert np.allclose(recent[:, 5:].mean(axis=0), 1.0)  # scaled by the mean of the last 8 periods
    assert np.allclose(recent[:, :5], 0.0)
    assert out.shape == (n, h) and 8 < out[5:].mean() < 16  # forecasts at the new level, not the history's
    GlobalLGBM(season_length=52, n_estimators=5).fit_predict(Y, dates, future, "W")  # default: whole history
    whole = seen["y"][: (T - 1) * n].reshape(T - 1, n)
    assert np.allclose(whole.mean(axis=0), Y[:, 1:].mean(axis=1) / Y.mean(axis=1))  # whole-history mean
    n_recursive = len(seen["y"])
    out_d = GlobalLGBM(season_length=52, n_estimators=20, strategy="direct").fit_predict(Y, dates, future, "W")
    assert out_d.shape == (n, h) and np.isfinite(out_d).all() and (out_d >= 0).all()
    assert set(np.unique(seen["step"])) == {1, 2, 3, 4} and len(seen["y"]) > 3 * n_recursive
    with pytest.raises(ValueError, match="strategy must be"):
        GlobalLGBM(strategy="multi").fit_predict(Y, dates, future, "W")
    with pytest.raises(ValueError, match="scale_window must be"):
        GlobalLGBM(scale_window=0).fit_predict(Y, dates, future, "W")


def test_cross_fit_conformal_moves_only_the_final_bands(tmp_path):
    """``conformal='cross_fit'`` recalibrates Final's bands on errors of a choice made without
    each window; the point forecast, the choice and every member stay as they are."""
    df = _panel(n=30, T=50, seed=5, kind="intermittent")
    # per-series choice on few errors: leaving a window out changes some series' member
    kw = dict(freq="W", h=4, selection_windows=3, selection="series", profile="fast",
              models=("SeasonalNaive", "CrostonSBA", "TSB", "IMAPA"))
    a = DemandForecaster(**kw).fit(df)
    b = DemandForecaster(conformal="cross_fit", **kw).fit(df)
    assert DemandForecaster(**kw).conformal == "in_sample"  # the default is unchanged
    fa, fb = a.predict(4), b.predict(4)
    assert (fa["final_model"] == fb["final_model"]).all()
    same = [c for c in fa.columns if not c.startswith("Final-")]
    pd.testing.assert_frame_equal(fa[same], fb[same])
    assert not np.allclose(a.residuals_["r"], b.residuals_["r"])  # the errors behind the bands moved
    assert (fb["Final-lo-95"] <= fb["Final"] + 1e-9).all() and (fb["Final"] <= fb["Final-hi-95"] + 1e-9).all()
    b.save(tmp_path / "cf")
    back = DemandForecaster.load(tmp_path / "cf")
    assert back.conformal == "cross_fit"
    pd.testing.assert_frame_equal(back.predict(4), fb)
    with pytest.raises(ValueError, match="conformal must be one of .*got 'cross'"):
        DemandForecaster(conformal="cross", **kw).fit(df)
