"""Selection rules, median re-centring and split-conformal tables of models.demand_select."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from models.demand_conformal import adaptive_alphas, apply_conformal, conformal_table
from models.demand_select import crossfit_point, final_point, parse_selection, select_models


def _hist(n_series: int = 30, h: int = 4, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Two windows of skewed (intermittent-like) actuals; member A forecasts the mean, B is worse."""
    rng = np.random.default_rng(seed)
    rows = []
    for cut in pd.to_datetime(["2020-01-05", "2020-02-02"]):
        for i in range(n_series):
            y = rng.exponential(10.0, h) * (rng.random(h) < 0.4)  # mean 4, median 0
            rows.append(pd.DataFrame({"unique_id": f"s{i}", "cutoff": cut, "step": np.arange(1, h + 1), "y": y,
                                      "A": 4.0, "B": 12.0, "scale": 5.0}))
    hist = pd.concat(rows, ignore_index=True)
    classes = pd.Series("lumpy", index=[f"s{i}" for i in range(n_series)])
    return hist, classes


def test_parse_selection_accepts_median_suffix_and_rejects_others():
    assert parse_selection("class") == ("class", False)
    assert parse_selection("series+median") == ("series", True)
    with pytest.raises(ValueError, match="selection must be one of"):
        parse_selection("class+mean")
    with pytest.raises(ValueError, match="got 'best'"):
        parse_selection("best")


def test_select_models_picks_lower_scaled_error_and_ignores_suffix():
    hist, classes = _hist()
    for how in ("class", "class+median"):
        choice, scores = select_models(hist, ["A", "B"], classes, how)
        assert set(choice) == {"A"}
        assert scores.loc["lumpy", "A"] < scores.loc["lumpy", "B"]


def test_final_point_without_median_is_the_chosen_member():
    hist, classes = _hist()
    choice = pd.Series("B", index=classes.index)
    fc = hist[hist["cutoff"] == hist["cutoff"].max()].drop(columns="y")
    point, hpoint = final_point(fc, hist, ["A", "B"], choice, classes, fc["scale"].to_numpy(), "class")
    assert np.allclose(point, 12.0) and np.allclose(hpoint, 12.0)
    point, hpoint = final_point(fc, None, ["A", "B"], choice, classes, fc["scale"].to_numpy(), "class+median")
    assert np.allclose(point, 12.0) and hpoint is None


def test_median_recentring_moves_to_median_and_lowers_absolute_error():
    hist, classes = _hist()
    choice = pd.Series("A", index=classes.index)
    fc = hist.drop(columns="y")
    point, hpoint = final_point(fc, hist, ["A", "B"], choice, classes, fc["scale"].to_numpy(), "class+median")
    expected = np.clip(4.0 + np.median((hist["y"] - 4.0) / 5.0) * 5.0, 0, None)
    assert np.allclose(point, expected) and np.allclose(hpoint, expected)
    assert expected < 1.0  # median of this demand is 0: the forecast drops from 4 towards 0
    mae_mean = np.abs(hist["y"] - 4.0).mean()
    mae_med = np.abs(hist["y"] - point).mean()
    assert mae_med < 0.9 * mae_mean


def test_median_recentring_is_per_class_with_pooled_fallback():
    hist, classes = _hist(n_series=30)
    classes.iloc[:15] = "smooth"
    hist.loc[hist["unique_id"].map(classes) == "smooth", "y"] = 9.0  # smooth series: y = 9 always
    classes = pd.concat([classes, pd.Series({"new": "erratic"})])  # a class without history
    choice = pd.Series("A", index=classes.index)
    fc = pd.DataFrame({"unique_id": ["s0", "s20", "new"], "A": 4.0, "B": 12.0})
    point, _ = final_point(fc, hist, ["A", "B"], choice, classes, np.full(3, 5.0), "class+median")
    assert point[0] == pytest.approx(9.0)  # smooth: shifted by its own median error (+5)
    assert point[1] < 1.0  # lumpy: its own median
    r = (hist["y"] - 4.0) / 5.0
    assert point[2] == pytest.approx(max(0.0, 4.0 + 5.0 * float(np.median(r))))  # unseen class: pooled


def test_conformal_table_pools_steps_by_default_and_covers():
    rng = np.random.default_rng(1)
    n = 4000
    resid = pd.DataFrame({"demand_class": "smooth", "step": rng.integers(1, 5, n), "r": rng.normal(0, 1, n)})
    tab = conformal_table(resid, [80, 95])
    assert ("smooth", 0) in tab and ("*", 0) in tab
    assert not any(k[1] > 0 for k in tab)  # no per-step keys unless by_step
    lo, hi = tab[("smooth", 0)][80]
    assert lo == pytest.approx(-1.2816, abs=0.1) and hi == pytest.approx(1.2816, abs=0.1)
    assert ("smooth", 3) in conformal_table(resid, [80], by_step=True)
    # fresh draws from the same noise are covered at about the nominal rate
    y = rng.normal(0, 1, 20000)
    ints = apply_conformal(np.full(20000, 50.0), np.ones(20000), np.array(["smooth"] * 20000),
                           np.ones(20000, int), tab, [80, 95])
    for lv, (lo_, hi_) in ints.items():
        cov = np.mean((50 + y >= lo_) & (50 + y <= hi_))
        assert abs(cov - lv / 100) < 0.02


def test_forecaster_median_selection_moves_final_not_choice_or_bands():
    from models.demand import DemandForecaster

    rng = np.random.default_rng(3)
    T, n = 60, 24
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    # skewed weekly demand (mostly 0, occasional large orders): median error of a mean forecast < 0
    y = rng.poisson(20.0, (n, T)) * (rng.random((n, T)) < 0.3)
    df = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n)], T), "ds": np.tile(ds, n),
                       "y": y.reshape(-1).astype(float)})
    kw = dict(freq="W", h=4, models=("SeasonalNaive", "TSB"), selection_windows=2)
    a = DemandForecaster(selection="class", **kw).cross_validation(df, h=4, n_windows=2)
    b = DemandForecaster(selection="class+median", **kw).cross_validation(df, h=4, n_windows=2)
    assert (a["final_model"] == b["final_model"]).all()
    assert (b["Final"] <= a["Final"] + 1e-9).all() and (b["Final"] < a["Final"] - 1e-6).mean() > 0.9
    assert np.abs(b["y"] - b["Final"]).mean() < np.abs(a["y"] - a["Final"]).mean()
    # the bands are recomputed from the shifted errors: they still hold the point and cover alike
    assert (b["Final-lo-95"] <= b["Final"] + 1e-9).all() and (b["Final"] <= b["Final-hi-95"] + 1e-9).all()
    cov = {k: ((f["y"] >= f["Final-lo-95"]) & (f["y"] <= f["Final-hi-95"])).mean() for k, f in (("a", a), ("b", b))}
    assert abs(cov["a"] - cov["b"]) < 0.05 and cov["b"] > 0.85, cov
    with pytest.raises(ValueError, match="selection must be one of"):
        DemandForecaster(selection="class+mean", **kw).cross_validation(df, h=4, n_windows=1)


def _lucky_members(rng: np.random.Generator, n: int = 30, h: int = 4, k: int = 8, w: int = 4) -> tuple:
    """``w`` selection windows and one future window of y = 10 + N(0, 1); member j forecasts
    10 + b[j, window] with b ~ N(0, 2) shared by every series: its luck on that window. The
    member chosen on the windows is the luckiest there, and its luck does not carry over."""
    b = rng.normal(0, 2.0, (k, w + 1))
    cuts = pd.date_range("2020-01-05", periods=w + 1, freq="28D")
    parts = []
    for i in range(w + 1):
        d = {"unique_id": np.repeat([f"s{j}" for j in range(n)], h), "cutoff": cuts[i],
             "step": np.tile(np.arange(1, h + 1), n), "y": 10 + rng.normal(0, 1, n * h), "scale": 1.0}
        d.update({f"m{j}": 10 + b[j, i] for j in range(k)})
        parts.append(pd.DataFrame(d))
    classes = pd.Series("smooth", index=[f"s{j}" for j in range(n)])
    return pd.concat(parts[:w], ignore_index=True), parts[w], classes, [f"m{j}" for j in range(k)]


def _future_coverage(hist, fut, classes, cands, hist_point) -> float:
    choice, _ = select_models(hist, cands, classes)
    point, _ = final_point(fut, None, cands, choice, classes, fut["scale"].to_numpy())
    tab = conformal_table(pd.DataFrame({"demand_class": "smooth", "step": hist["step"], "r": hist["y"] - hist_point}), [80])
    lo, hi = apply_conformal(point, np.ones(len(fut)), np.array(["smooth"] * len(fut)), fut["step"].to_numpy(), tab, [80])[80]
    return float(np.mean((fut["y"] >= lo) & (fut["y"] <= hi)))


def test_cross_fit_undoes_selection_bias_that_shrinks_in_sample_bands():
    rng = np.random.default_rng(0)
    cov = {"in_sample": [], "cross_fit": []}
    for _ in range(20):
        hist, fut, classes, cands = _lucky_members(rng)
        choice, _ = select_models(hist, cands, classes)
        _, in_sample = final_point(hist, hist, cands, choice, classes, hist["scale"].to_numpy())
        cross = crossfit_point(hist, cands, classes, "class", "cross_fit")
        # a held-out window takes the member chosen on the other three, never its own winner
        first = hist["cutoff"] == hist["cutoff"].min()
        rest_choice, _ = select_models(hist[~first], cands, classes)
        assert np.allclose(cross[first.to_numpy()], hist.loc[first, rest_choice.iloc[0]])
        cov["in_sample"].append(_future_coverage(hist, fut, classes, cands, in_sample))
        cov["cross_fit"].append(_future_coverage(hist, fut, classes, cands, cross))
    m = {k: float(np.mean(v)) for k, v in cov.items()}
    # the in-sample bands are far too narrow for the next window; cross-fitted ones much less so
    assert m["in_sample"] < 0.68, m
    assert m["cross_fit"] > m["in_sample"] + 0.08, m


def test_cross_fit_needs_two_groups_and_keeps_the_point_rule():
    rng = np.random.default_rng(1)
    hist, _, classes, cands = _lucky_members(rng, w=2)
    one = hist[hist["cutoff"] == hist["cutoff"].min()]
    assert crossfit_point(one, cands, classes, "class", "cross_fit") is None  # one window: nothing to leave out
    series = crossfit_point(one, cands, classes, "class", "cross_fit_series")  # two folds of series do
    assert series is not None and np.isfinite(series).all()
    # one member: nothing to select, so cross-fitting only moves the re-centring to the other window
    assert np.allclose(crossfit_point(hist, ["m0"], classes, "class", "cross_fit"), hist["m0"])
    cross = crossfit_point(hist, ["m0"], classes, "class+median", "cross_fit")
    for held in hist["cutoff"].unique():
        h_, o_ = hist[hist["cutoff"] == held], hist[hist["cutoff"] != held]
        assert np.allclose(cross[(hist["cutoff"] == held).to_numpy()], h_["m0"] + np.median(o_["y"] - o_["m0"]))
    with pytest.raises(ValueError, match="got 'in_sample'"):
        crossfit_point(hist, cands, classes, "class", "in_sample")


def _probe(n: int = 25, hard: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` series, 4 rows each, y = 10, scale 1. B forecasts 10.6 on the easy series and 30 on the
    ``hard`` first ones; A forecasts 10.5 on the easy ones and nothing (NaN) on the hard ones."""
    rows = []
    for i in range(n):
        is_hard = i < hard
        rows += [(f"s{i}", 10.0, 1.0, np.nan if is_hard else 10.5, 30.0 if is_hard else 10.6)] * 4
    hist = pd.DataFrame(rows, columns=["unique_id", "y", "scale", "A", "B"])
    return hist, pd.Series("smooth", index=[f"s{i}" for i in range(n)])


def test_a_candidate_missing_rows_is_not_scored_on_the_easy_rows_only():
    # the mean skipped A's missing rows: A won with 0.50 (easy rows) against B's 4.48 (all rows)
    hist, classes = _probe()
    for how in ("class", "global", "series"):
        choice, scores = select_models(hist, ["A", "B"], classes, how)
        if how != "series":
            assert set(choice) == {"B"}, (how, choice.value_counts().to_dict())
        assert np.isnan(scores.loc["smooth", "A"]) and scores.loc["smooth", "B"] == pytest.approx(4.48)
        assert scores.loc["all", "dropped"] == scores.loc["smooth", "dropped"] == "A: 20 of 100 rows without a forecast"
    # per series: A is out only where it has no forecast; elsewhere it is compared on the same rows
    choice, _ = select_models(hist, ["A", "B"], classes, "series")
    assert (choice[[f"s{i}" for i in range(5)]] == "B").all() and (choice.drop([f"s{i}" for i in range(5)]) == "A").all()


def test_missing_rows_fewest_missing_compete_on_shared_rows_and_full_rows_are_unchanged():
    hist, classes = _probe(hard=0)
    # a row nobody forecast counts against nobody; A and B both miss it and are compared on the rest
    hist.loc[0, ["A", "B"]] = np.nan
    choice, scores = select_models(hist, ["A", "B"], classes)
    assert set(choice) == {"A"} and scores.loc["smooth", "A"] == pytest.approx(0.5)
    assert (scores["dropped"] == "").all()
    # every candidate misses a row: the one missing fewest competes alone (B misses 2, A 1)
    hist.loc[1, "A"] = np.nan
    hist.loc[[2, 3], "B"] = np.nan
    hist.loc[4:, "B"] = 10.0  # B would be perfect on the rows it has
    choice, scores = select_models(hist, ["A", "B"], classes)
    assert set(choice) == {"A"} and np.isnan(scores.loc["all", "B"])
    assert scores.loc["all", "dropped"] == "B: 2 of 99 rows without a forecast"
    # no missing forecast: the plain mean scaled error, as before
    full, classes = _hist()
    _, scores = select_models(full, ["A", "B"], classes)
    for m in ("A", "B"):
        assert scores.loc["lumpy", m] == pytest.approx(((full[m] - full["y"]).abs() / full["scale"]).mean(), rel=0, abs=0)


def _growing_noise(rng: np.random.Generator, sds: Sequence[float], n: int = 3000) -> pd.DataFrame:
    """Scaled errors r ~ N(0, sd) of one window per ``sds`` entry (cutoffs 28 days apart), two classes."""
    cuts = pd.date_range("2020-01-05", periods=len(sds), freq="28D")
    return pd.concat([pd.DataFrame({"demand_class": np.where(np.arange(n) % 2, "smooth", "erratic"),
                                    "step": np.arange(n) % 4 + 1, "r": rng.normal(0, sd, n), "cutoff": c})
                      for c, sd in zip(cuts, sds, strict=True)], ignore_index=True)


def _cover(tab: dict, r: np.ndarray, lv: int) -> float:
    lo, hi = tab[("*", 0)][lv]
    return float(np.mean((r >= lo) & (r <= hi)))


def test_adaptive_alphas_widen_bands_that_under_cover_when_the_noise_grows():
    rng = np.random.default_rng(0)
    # the noise grows by 30 % a window: a table pooled over the past under-covers the next window
    sds = [1.0, 1.3, 1.69]
    resid, nxt = _growing_noise(rng, sds), rng.normal(0, 1.69 * 1.3, 20000)
    fixed = conformal_table(resid, [80, 95])
    alphas = adaptive_alphas(resid, [80, 95])
    adapted = conformal_table(resid, [80, 95], alphas=alphas)
    # the check: the older windows' band misses the newest one too often, so alpha shrinks (rule, gamma 1)
    old, new = resid[resid["cutoff"] < resid["cutoff"].max()], resid[resid["cutoff"] == resid["cutoff"].max()]
    for lv in (80, 95):
        a = 1 - lv / 100
        miss = 1 - _cover(conformal_table(old, [lv]), new["r"].to_numpy(), lv)  # one class table each: same bounds
        assert miss > a + 0.05
        assert alphas[lv] == pytest.approx(float(np.clip(2 * a - miss, a / 4, 2 * a)), abs=0.01)
        cov_fixed, cov_adapted = _cover(fixed, nxt, lv), _cover(adapted, nxt, lv)
        assert cov_fixed < lv / 100 - 0.07, (lv, cov_fixed)
        assert abs(cov_adapted - lv / 100) < abs(cov_fixed - lv / 100) - 0.03, (lv, cov_fixed, cov_adapted)


def test_adaptive_alphas_stay_near_nominal_on_exchangeable_windows_and_need_two():
    rng = np.random.default_rng(1)
    resid = _growing_noise(rng, [1.0, 1.0, 1.0])
    alphas = adaptive_alphas(resid, [80, 95])
    assert alphas[80] == pytest.approx(0.20, abs=0.03) and alphas[95] == pytest.approx(0.05, abs=0.015)
    # an over-covering check narrows the band, within [alpha / 4, 2 alpha]
    shrinking = adaptive_alphas(_growing_noise(rng, [3.0, 1.0]), [80, 95])
    assert shrinking == {80: pytest.approx(0.4), 95: pytest.approx(0.1)}
    assert adaptive_alphas(_growing_noise(rng, [1.0, 9.0]), [80, 95]) == {80: pytest.approx(0.05),
                                                                           95: pytest.approx(0.0125)}
    assert adaptive_alphas(_growing_noise(rng, [1.0]), [80, 95]) is None  # one window: nothing to check against


def test_conformal_table_without_alphas_is_the_nominal_table_to_the_bit():
    resid = _growing_noise(np.random.default_rng(2), [1.0, 2.0], n=501)
    assert conformal_table(resid, [80, 95]) == conformal_table(resid, [80, 95], alphas={80: 1 - 80 / 100,
                                                                                         95: 1 - 95 / 100})


def test_forecaster_conformal_adapt_moves_only_finals_band_and_needs_two_windows():
    from models.demand import DemandForecaster

    rng = np.random.default_rng(4)
    T, n = 60, 24
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    # demand whose noise grows over time: the latest selection window misses more than the older ones
    y = np.clip(20 + rng.normal(0, 1, (n, T)) * np.linspace(1, 12, T), 0, None)
    df = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(n)], T), "ds": np.tile(ds, n),
                       "y": y.reshape(-1).round()})
    kw = dict(freq="W", h=4, models=("SeasonalNaive", "TSB"))
    cv = {(w, a): DemandForecaster(selection_windows=w, conformal_adapt=a, **kw).cross_validation(df, h=4, n_windows=2)
          for w in (1, 3) for a in (False, True)}
    pd.testing.assert_frame_equal(cv[(1, False)], cv[(1, True)])  # one selection window: the nominal level
    pd.testing.assert_frame_equal(DemandForecaster(selection_windows=3, **kw).cross_validation(df, h=4, n_windows=2),
                                  cv[(3, False)])  # off by default
    off, on = cv[(3, False)], cv[(3, True)]
    final = [c for c in off.columns if c.startswith("Final-")]
    pd.testing.assert_frame_equal(off.drop(columns=final), on.drop(columns=final))  # point, members, choice
    # only the level moves (the synthetic cases above test its direction): bands differ, still nested
    for lv in (80, 95):
        assert (off[f"Final-hi-{lv}"] - on[f"Final-hi-{lv}"]).abs().max() > 0.5
    assert (on["Final-lo-95"] <= on["Final-lo-80"]).all() and (on["Final-hi-80"] <= on["Final-hi-95"]).all()
