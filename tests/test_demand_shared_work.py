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
