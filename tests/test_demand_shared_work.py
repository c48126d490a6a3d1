"""Work the forecaster skips without changing a number: the replay's point-only refits
(``rolling_forecasts(point_only=True)``) and the member forecasts the final fit takes from the
backtest (``MemberCache``). Each faster path is compared with the plain one to the bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.demand import DemandForecaster
from models.demand_cache import MemberCache

# AutoETS + LightGBM make an Ensemble; per-series choice spreads the choice over the members
KW = dict(models=("SeasonalNaive", "AutoETS", "CrostonSBA", "LightGBM"), lgbm_params={"n_estimators": 20},
          selection_windows=2)


def _panel(n=16, T=70, seed=3):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    rows = []
    for i in range(n):
        if i % 3 == 0:
            y = rng.poisson(4, T) * (rng.random(T) < 0.35)
        else:
            y = rng.poisson(rng.uniform(2, 30), T) + 5 * np.sin(np.arange(T) / 4 + i)
        start = 0 if i % 5 else 12  # some series start later (fewer periods at a cutoff)
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds[start:], "y": np.clip(y[start:], 0, None).astype(float)}))
    return pd.concat(rows, ignore_index=True)


def _calls(monkeypatch) -> list:
    seen: list = []
    real = DemandForecaster._members_at

    def spy(self, panel, c, h, X_future=None, need=None):
        seen.append((c, h, None if need is None else {m: int(v.sum()) for m, v in need.items()}))
        return real(self, panel, c, h, X_future, need=need)

    monkeypatch.setattr(DemandForecaster, "_members_at", spy)
    return seen


@pytest.mark.parametrize("selection", ["series", "class+median"])
def test_point_only_refits_give_the_same_final_bands_and_residuals(monkeypatch, selection):
    df = _panel()
    cuts = sorted(df["ds"].unique())[-4:-1]
    plain = DemandForecaster(freq="W", h=5, selection=selection, **KW).rolling_forecasts(df, cuts, 5)
    calls = _calls(monkeypatch)
    fast = DemandForecaster(freq="W", h=5, selection=selection, **KW).rolling_forecasts(df, cuts, 5, point_only=True)
    picked = set()
    for (fp, ip), (ff, if_) in zip(plain, fast, strict=True):
        base = {"unique_id", "ds", "step", "cutoff", "demand_class", "final_model", "y"}
        cols = [c for c in fp.columns if c in base or c == "Final" or c.startswith("Final-")]
        assert list(ff.columns) == cols  # no member columns: they hold only what the choice uses
        pd.testing.assert_frame_equal(ff.reset_index(drop=True), fp[cols].reset_index(drop=True), check_exact=True)
        pd.testing.assert_frame_equal(if_["residuals"], ip["residuals"], check_exact=True)
        pd.testing.assert_series_equal(if_["scale"], ip["scale"], check_exact=True)
        pd.testing.assert_series_equal(if_["choice"], ip["choice"], check_exact=True)
        assert set(if_["conformal"]) == {"Final"} and if_["conformal"]["Final"] == ip["conformal"]["Final"]
        picked |= set(fp["final_model"])
    # the origins ran the members for the series that use them only; the windows ran in full
    T = df["ds"].nunique()
    origin = [(c, n) for c, _, n in calls if n is not None]
    assert [c for c, _ in origin] == [T - 4, T - 3, T - 2]
    assert len(calls) == 3 + 6  # and two full windows per origin, none shared at step 1
    if selection == "series":
        assert len(picked) >= 2  # the test exercises a mixed choice
    for _, need in origin:  # each series needs its chosen member (+ the Ensemble's): far from all
        assert sum(need.values()) < len(KW["models"]) * 16


def test_fit_with_the_backtests_member_cache_is_the_plain_fit(monkeypatch):
    df = _panel()
    kw = dict(freq="W", h=5, **KW)
    plain = DemandForecaster(**kw).fit(df)
    cache = MemberCache()
    calls = _calls(monkeypatch)
    cv_plain = DemandForecaster(**kw).cross_validation(df, h=5, n_windows=2)
    n_cv = len(calls)
    cv = DemandForecaster(**kw).cross_validation(df, h=5, n_windows=2, member_cache=cache)
    pd.testing.assert_frame_equal(cv, cv_plain, check_exact=True)
    before = len(calls)
    fitted = DemandForecaster(**kw).fit(df, member_cache=cache)
    T = df["ds"].nunique()
    # windows T-6 and T-11 were backtest cutoffs: only the last origin is run
    assert [c for c, _, _ in calls[before:]] == [T - 1] and n_cv == before - n_cv == 4
    for a in ("forecast_", "residuals_"):
        pd.testing.assert_frame_equal(getattr(fitted, a), getattr(plain, a), check_exact=True)
    pd.testing.assert_series_equal(fitted.choice_, plain.choice_, check_exact=True)
    pd.testing.assert_frame_equal(fitted.scores_, plain.scores_, check_exact=True)
    assert fitted.conformal_ == plain.conformal_
    pd.testing.assert_frame_equal(fitted.predict(), plain.predict(), check_exact=True)
    assert sorted(fitted._cache) == sorted(plain._cache)  # holds what a plain fit holds, no more


def test_member_cache_is_dropped_for_other_data_or_settings(monkeypatch):
    df = _panel()
    cache = MemberCache()
    DemandForecaster(freq="W", h=5, **KW).cross_validation(df, h=5, n_windows=2, member_cache=cache)
    assert len(cache.frames) == 4
    calls = _calls(monkeypatch)
    other = df.assign(y=np.where(df["unique_id"] == "s01", df["y"] + 1.0, df["y"]))
    DemandForecaster(freq="W", h=5, **KW).fit(other, member_cache=cache)  # other data: refits its windows
    assert len(calls) == 3 and cache.frames == {}
    DemandForecaster(freq="W", h=5, **KW).cross_validation(df, h=5, n_windows=2, member_cache=cache)
    del calls[:]
    DemandForecaster(freq="W", h=5, random_state=1, **KW).fit(df, member_cache=cache)  # other settings
    assert len(calls) == 3


@pytest.mark.parametrize("method", ["bottom_up", "mint_ols"])
def test_hierarchical_fit_with_the_backtests_member_cache_is_the_plain_fit(monkeypatch, method):
    # demand.hierarchy: the bottom (SKU x location, with its driver) and the upper levels' forecasters
    # each take their selection windows from the backtest's own part of the cache
    from models.demand_hier import HierarchicalDemandForecaster

    df = _panel()
    i = df["unique_id"].str.slice(1).astype(int)
    df = df.assign(sku="k" + (i // 2).astype(str), location="L" + (i % 2).astype(str),
                   price=10.0 + np.sin(np.arange(len(df)) / 3.0))

    def hier():
        return HierarchicalDemandForecaster(("sku", "location"), method=method, forecaster=dict(freq="W", h=5, **KW))

    plain = hier().fit(df)
    cv_plain = hier().cross_validation(df, h=5, n_windows=2)
    cache = MemberCache()
    calls = _calls(monkeypatch)
    cv = hier().cross_validation(df, h=5, n_windows=2, member_cache=cache)
    pd.testing.assert_frame_equal(cv, cv_plain, check_exact=True)
    before = len(calls)
    fitted = hier().fit(df, member_cache=cache)
    T = df["ds"].nunique()
    # both levels' windows (T-6, T-11) were backtest cutoffs: only each level's last origin is run
    assert before == 8 and [c for c, _, _ in calls[before:]] == [T - 1, T - 1]
    assert fitted.bottom_.exog_ == ["price"] and not fitted.upper_.exog_
    for part in ("bottom_", "upper_"):
        a, b = getattr(fitted, part), getattr(plain, part)
        for attr in ("forecast_", "residuals_", "scores_"):
            pd.testing.assert_frame_equal(getattr(a, attr), getattr(b, attr), check_exact=True)
        pd.testing.assert_series_equal(a.choice_, b.choice_, check_exact=True)
        assert a.conformal_ == b.conformal_
    assert plain.coherent_conformal_ and sorted(fitted.coherent_conformal_) == sorted(plain.coherent_conformal_)
    for k, v in plain.coherent_conformal_.items():
        np.testing.assert_array_equal(np.asarray(fitted.coherent_conformal_[k]), np.asarray(v))
    pd.testing.assert_series_equal(fitted.coherent_keys_, plain.coherent_keys_, check_exact=True)
    # every level's coherent forecast and bands, in node ids and as served
    pd.testing.assert_frame_equal(fitted.predict(), plain.predict(), check_exact=True)
    out = fitted.predict_frame(pd.DataFrame({"h": [5]}))
    pd.testing.assert_frame_equal(out, plain.predict_frame(pd.DataFrame({"h": [5]})), check_exact=True)
    assert set(out["level"]) == {"total", "sku", "sku/location"} and {"Final-lo-80", "Final-hi-95"} <= set(out.columns)


# -------------------------------------------------- tuning: statsforecast members once per cutoff

def _trials(n):
    import optuna

    from training.demand_tuning import space

    sel = ["series", "class", "global"]
    return [space(optuna.trial.FixedTrial({
        "selection": sel[i % 3], "n_estimators": 50, "learning_rate": 0.05 + 0.04 * i, "num_leaves": 7 + 6 * i,
        "min_child_samples": 5 + 3 * i, "tweedie_variance_power": 1.1 + 0.15 * i})) for i in range(n)]


def _targets(hierarchy=None, models=("SeasonalNaive", "AutoETS", "CrostonSBA", "LightGBM"), n_folds=2):
    """The same tuning target twice on a monthly panel with SKU / location keys and a driver: one
    with the member reuse (as dealerml tune builds it), one without (member_cache None: every trial
    forecasts every member, as before the reuse)."""
    from training.demand_config import DemandSettings
    from training.demand_tuning import DemandTuningTarget

    df = _panel(n=9, T=40).assign(ds=lambda d: d["ds"].map(dict(zip(sorted(d["ds"].unique()), pd.date_range(
        "2019-01-01", periods=40, freq="MS"), strict=True))))
    i = df["unique_id"].str.slice(1).astype(int)
    df = df.assign(sku="k" + (i // 3).astype(str), location="L" + (i % 3).astype(str),
                   price=10.0 + np.sin(np.arange(len(df)) / 3.0))
    s = DemandSettings(freq="M", horizon=3, selection_windows=2, models=list(models), lgbm={"n_estimators": 20},
                       hierarchy=hierarchy is not None, reconcile=hierarchy or "bottom_up")
    levels = ["sku", "location"] if hierarchy else None
    if not hierarchy:
        df = df.drop(columns=["sku", "location"])
    reuse, plain = (DemandTuningTarget(df, s, seed=1, n_folds=n_folds, levels=levels) for _ in range(2))
    plain.member_cache = None
    return reuse, plain


def _same(a, b):
    """Two reports (or their parts) equal to the bit; NaN equals NaN; the seconds they took aside."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            if k != "seconds":
                _same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b and type(a) is type(b)


def test_tuning_trials_forecast_the_statsforecast_members_once_per_cutoff():
    reuse, plain = _targets()
    trials = _trials(2)
    scores = []
    for params in trials:  # trial by trial, fold by fold, as training.tuning's objective runs them
        for fold in range(2):
            a, b = reuse._report(params, fold), plain._report(params, fold)
            _same(a, b)  # every model's metrics, by class, the choices, the setup
            scores.append(b["metrics"]["LightGBM"]["mase"])
            # a trial's score (Final's figure alone, without the other models' and classes'): the same
            assert reuse.score_fold(params, fold) == b["metrics"]["Final"]["mase"]
    store = reuse.member_cache.stat
    # fold 1's cutoff T-4 with windows T-7, T-10 and fold 0's T-7 with T-10, T-13 (step = horizon 3):
    # 4 cutoffs, each forecast once; the 2 trials x 2 folds x 3 cutoffs = 12 asks reuse 8 of them (each
    # score_fold after its report, same settings and fold, takes the report's whole frames, LightGBM too)
    T = 40
    dates = pd.date_range("2019-01-01", periods=T, freq="MS")
    assert dict(store.made) == {(dates[c], 3): 1 for c in (T - 4, T - 7, T - 10, T - 13)}
    assert (store.runs, store.reused) == (4, 8)
    assert len(set(scores)) == 4  # each trial's LightGBM settings did reach its member (and the reuse changed none)
    # the retrained best: its latest-fold backtest and final fit take the members from there (only
    # the final fit's own origin, the last period, is new), the same model and figures
    model, metrics = reuse.fit_final(trials[1])
    model_p, metrics_p = plain.fit_final(trials[1])
    assert metrics == metrics_p and reuse.final_baselines == plain.final_baselines
    assert store.runs == 5 and store.made[(dates[T - 1], 3)] == 1
    for attr in ("forecast_", "residuals_", "scores_"):
        pd.testing.assert_frame_equal(getattr(model, attr), getattr(model_p, attr), check_exact=True)
    pd.testing.assert_series_equal(model.choice_, model_p.choice_, check_exact=True)
    pd.testing.assert_frame_equal(model.predict(), model_p.predict(), check_exact=True)
    # promote's evaluation of the challenger and of another model (other settings): same figures
    _same(reuse.evaluate(model), plain.evaluate(model_p))
    assert store.runs == 5 and len(store.frames) == 5 <= store.size


def test_hierarchical_tuning_reuses_each_levels_members():
    # demand.hierarchy with MinTrace: trials are scored by the hierarchical backtest; the bottom and
    # the upper levels' members are each forecast once per cutoff (one fold: the folds share as above)
    reuse, plain = _targets("mint_ols", models=("SeasonalNaive", "CrostonSBA", "LightGBM"), n_folds=1)
    trials = _trials(2)
    for params in trials:  # what score_fold reads (the bottom level's coherent Final) and the rest
        _same(reuse._report(params, 0, reuse._own_hier()), plain._report(params, 0, plain._own_hier()))
    store = reuse.member_cache.stat
    assert sorted(store.made.values()) == [2, 2, 2] and (store.runs, store.reused) == (6, 6)  # (bottom, upper)
    model, metrics = reuse.fit_final(trials[0])
    model_p, metrics_p = plain.fit_final(trials[0])
    assert metrics == metrics_p and reuse.model_metadata == plain.model_metadata
    pd.testing.assert_frame_equal(model.predict(), model_p.predict(), check_exact=True)
    for part in ("bottom_", "upper_"):
        for attr in ("forecast_", "residuals_"):
            pd.testing.assert_frame_equal(getattr(getattr(model, part), attr), getattr(getattr(model_p, part), attr),
                                          check_exact=True)


def test_statsforecast_members_are_made_again_when_what_they_read_differs(monkeypatch):
    df = _panel(n=8)  # eight cross-validations: half the series (intermittent and late-starting ones still among them)
    cache = MemberCache(stat_cutoffs=20)
    kw = dict(freq="W", h=5, **KW)
    DemandForecaster(**kw).cross_validation(df, h=5, n_windows=2, member_cache=cache)
    assert cache.stat_runs == 4
    # other LightGBM settings and choice, and rows after the last cutoff: the members are reused
    longer = df.copy()
    calls = _calls(monkeypatch)
    kw2 = {**kw, "lgbm_params": {"n_estimators": 30}, "selection": "global"}
    cv = DemandForecaster(**kw2).cross_validation(longer, h=5, n_windows=2, member_cache=cache)
    assert cache.stat_runs == 4 and cache.stat_reused == 4 and len(calls) == 4
    pd.testing.assert_frame_equal(cv, DemandForecaster(**kw2).cross_validation(df, h=5, n_windows=2), check_exact=True)
    # a demand figure before the cutoffs, or a setting the members read: made again
    early = df.assign(y=np.where((df["unique_id"] == "s01") & (df["ds"] == df["ds"].min()), df["y"] + 1.0, df["y"]))
    cv = DemandForecaster(**kw2).cross_validation(early, h=5, n_windows=2, member_cache=cache)
    assert cache.stat_runs == 8
    pd.testing.assert_frame_equal(cv, DemandForecaster(**kw2).cross_validation(early, h=5, n_windows=2), check_exact=True)
    DemandForecaster(**{**kw2, "season_length": 4}).cross_validation(df, h=5, n_windows=2, member_cache=cache)
    assert cache.stat_runs == 12
    # a MemberCache without stat_cutoffs (train demand's) keeps none across settings
    plain = MemberCache()
    DemandForecaster(**kw).cross_validation(df, h=5, n_windows=2, member_cache=plain)
    DemandForecaster(**kw2).cross_validation(df, h=5, n_windows=2, member_cache=plain)
    assert plain.stat is None and plain.stat_runs == 0
