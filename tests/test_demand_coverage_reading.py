"""What the backtest report's 80 / 95 % coverage is: the mean over series x cutoff of the share of
that window's rows inside the band (utilsforecast.losses.coverage, then a mean), which is the pooled
share of banded actuals inside their bands while every series x cutoff has all or none of its h
rows banded, and is not a mean over series (a series scored on fewer cutoffs weighs less)."""

import numpy as np
import pandas as pd

from training.demand_backtest import backtest_report

H = 4


def _cv(inside: dict[tuple[str, int], int]):
    """CV rows of series x cutoff index (0: ds[19], 1: ds[23]) with ``inside`` of the H steps in the band."""
    rng = np.random.default_rng(3)
    ds = pd.date_range("2022-01-03", periods=30, freq="W-MON")
    train = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": rng.poisson(8, 30).astype(float)}) for u in "abc"],
                      ignore_index=True)
    cutoffs = (ds[19], ds[23])
    rows = []
    for (u, k), n_in in inside.items():
        fut = train[(train["unique_id"] == u) & (train["ds"] > cutoffs[k])].head(H)
        y = fut["y"].to_numpy()
        lo = np.where(np.arange(H) < n_in, y - 1, y + 1)
        rows.append(fut.assign(cutoff=cutoffs[k], Final=y, demand_class="smooth", **{
            "Final-lo-80": lo, "Final-hi-80": lo + 2, "Final-lo-95": lo, "Final-hi-95": lo + 2}))
    return pd.concat(rows, ignore_index=True), train[train["ds"] <= ds[23]]


def _inside(cv: pd.DataFrame) -> pd.Series:
    banded = np.isfinite(cv["Final-lo-80"]) & np.isfinite(cv["Final-hi-80"])
    return ((cv["y"] >= cv["Final-lo-80"]) & (cv["y"] <= cv["Final-hi-80"]))[banded]


def test_coverage_is_the_pooled_share_when_series_have_different_numbers_of_windows():
    # a, b on both cutoffs; c on the later one only: per series 1, 0.5, 0.25 (mean 0.583),
    # per series x cutoff 1, 0.5, 1, 0.5, 0.25 (mean 0.65), pooled 13 of 20 rows = 0.65
    cv, train = _cv({("a", 0): 4, ("b", 0): 2, ("a", 1): 4, ("b", 1): 2, ("c", 1): 1})
    got = backtest_report(cv, train, seasonality=1)["metrics"]["Final"]
    ins = _inside(cv)
    assert got["coverage_80"] == got["coverage_95"] == ins.mean() == 0.65
    per_series = ins.groupby(cv.loc[ins.index, "unique_id"]).mean().mean()
    assert abs(per_series - 7 / 12) < 1e-12 and got["coverage_80"] != per_series


def test_a_whole_window_without_bands_keeps_it_pooled_a_single_missing_step_does_not():
    cv, train = _cv({("a", 0): 4, ("b", 0): 2, ("a", 1): 4, ("b", 1): 2, ("c", 1): 1})
    whole = cv.copy()
    whole.loc[(whole["unique_id"] == "b") & (whole["cutoff"] == whole["cutoff"].min()), ["Final-lo-80", "Final-hi-80"]] = np.nan
    got = backtest_report(whole, train, seasonality=1, levels=[80])["metrics"]["Final"]["coverage_80"]
    assert got == _inside(whole).mean() == 11 / 16
    # c's last step (a miss) without a band: c's window is 1 of 3, weighed as much as the 4-row ones,
    # so the figure (1 + 0.5 + 1 + 0.5 + 1/3) / 5 is no longer the pooled 13 of 19 rows
    step = cv.copy()
    step.loc[step.index[-1], ["Final-lo-80", "Final-hi-80"]] = np.nan
    got = backtest_report(step, train, seasonality=1, levels=[80])["metrics"]["Final"]["coverage_80"]
    assert abs(got - (3 + 1 / 3) / 5) < 1e-12
    assert abs(_inside(step).mean() - 13 / 19) < 1e-12 and abs(got - 13 / 19) > 0.01
