"""backtest_report computes utilsforecast's scaled tables (MASE, RMSSE, scaled pinball) once and
reads the whole frame's and each demand class's figures off them: the figures must be exactly
those of scoring each class on its own (``_metrics`` per ``cv.groupby("demand_class")``, the
reference below), with series that change class between cutoffs, a class present at one cutoff
only, a zero-scale series left out, and chunked utilsforecast calls."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import training._demand_report as dbt  # the report and its private helpers; SCALED_CHUNK_ROWS is read here

H, SEASON, LEVELS = 3, 1, (80, 95)
CUTOFFS = pd.to_datetime(["2023-06-30", "2023-09-30"])


def _panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and a CV frame of 14 monthly series x 2 cutoffs: classes per series x cutoff."""
    rng = np.random.default_rng(3)
    ds = pd.date_range("2021-01-31", "2023-12-31", freq="ME")
    ids = [f"s{i:02d}" for i in range(14)]
    rows = []
    for i, u in enumerate(ids):
        level = 2.0 + 3 * i
        y = rng.poisson(level, len(ds)).astype(float) * (rng.random(len(ds)) < (0.4 if i % 3 == 0 else 1.0))
        if u == "s13":
            y[:] = 5.0  # constant history: zero scale at every cutoff, left out of the figures
        rows.append(pd.DataFrame({"unique_id": u, "ds": ds, "y": y}))
    train = pd.concat(rows, ignore_index=True)
    classes = ["smooth", "erratic", "intermittent", "lumpy"]
    cv_rows = []
    for k, cut in enumerate(CUTOFFS):
        for i, u in enumerate(ids):
            # every third series changes class at the second cutoff; "zero" exists at the second only
            c = classes[(i + (k if i % 3 == 0 else 0)) % 4]
            if k == 1 and i == 4:
                c = "zero"
            f = train[(train["unique_id"] == u) & (train["ds"] > cut)].head(H)
            point = f["y"].to_numpy() * rng.uniform(0.6, 1.4, H) + rng.normal(0, 1, H)
            sn = np.repeat(train[(train["unique_id"] == u) & (train["ds"] <= cut)]["y"].iloc[-1], H)
            d = pd.DataFrame({"unique_id": u, "ds": f["ds"].to_numpy(), "cutoff": cut, "y": f["y"].to_numpy(),
                              "demand_class": c, "SeasonalNaive": sn, "AutoETS": point * 0.9, "Final": point})
            for m, p in (("SeasonalNaive", sn), ("Final", point)):
                for lv, w in ((80, 1.3), (95, 2.0)):
                    d[f"{m}-lo-{lv}"] = p - w * (1 + 0.1 * i)
                    d[f"{m}-hi-{lv}"] = p + w * (1 + 0.1 * i)
            if i == 5 and k == 0:  # a forecast without a band
                d[["Final-lo-80", "Final-hi-80", "Final-lo-95", "Final-hi-95"]] = np.nan
            cv_rows.append(d)
    cv = pd.concat(cv_rows, ignore_index=True)
    train = train[train["ds"] <= CUTOFFS[-1]].reset_index(drop=True)
    return train, cv


def _reference(cv: pd.DataFrame, train: pd.DataFrame) -> tuple[dict, dict]:
    """The report's metrics and by_class as scored before: ``_metrics`` on the whole frame and on
    each class's rows, each call with the whole training table."""
    models = dbt._model_names(cv)
    ids, train_codes, cv_codes = dbt._series_codes(train["unique_id"], cv["unique_id"])
    tr = pd.DataFrame({"unique_id": train_codes, "ds": train["ds"].to_numpy(), "y": train["y"].to_numpy()})
    cutoffs = np.sort(cv["cutoff"].unique())
    scale = dbt._in_sample_scale(tr, cutoffs, SEASON, len(ids))
    bad = ~(scale[cv_codes, np.searchsorted(cutoffs, cv["cutoff"].to_numpy())] > 0)
    c = cv[~bad].copy()
    c["unique_id"] = cv_codes[~bad]
    by_class = {}
    for k, g in c.groupby("demand_class"):
        by_class[str(k)] = dbt._metrics(g, tr, models, SEASON, LEVELS)
        by_class[str(k)]["_n_series"] = int(g["unique_id"].nunique())
    return dbt._metrics(c, tr, models, SEASON, LEVELS), by_class


@pytest.mark.parametrize("chunk_rows", [dbt.SCALED_CHUNK_ROWS, 100])  # 100: utilsforecast on chunks of series
def test_batched_report_equals_per_class_scoring(monkeypatch, chunk_rows):
    monkeypatch.setattr(dbt, "SCALED_CHUNK_ROWS", chunk_rows)
    train, cv = _panel()
    rep = dbt.backtest_report(cv, train, seasonality=SEASON, levels=LEVELS)
    metrics, by_class = _reference(cv, train)
    assert rep["metrics"] == metrics
    assert rep["by_class"] == by_class
    # bit for bit (json keeps -0.0 and every digit) and in the same key order
    assert json.dumps(rep["by_class"]) == json.dumps(by_class) and json.dumps(rep["metrics"]) == json.dumps(metrics)
    assert sorted(by_class) == ["erratic", "intermittent", "lumpy", "smooth", "zero"]
    assert {s["unique_id"] for s in rep["skipped"]} == {"s13"}
    assert by_class["zero"]["_n_series"] == 1 and by_class["zero"]["Final"]["mase"] is not None
    assert rep["metrics"]["AutoETS"]["pinball"] is None and rep["metrics"]["AutoETS"]["coverage_80"] is None
    # the score fast path: the same figure
    fast = dbt.backtest_report(cv, train, seasonality=SEASON, levels=LEVELS, score=("Final", "rmsse"))
    assert fast["metrics"] == {"Final": {"rmsse": rep["metrics"]["Final"]["rmsse"]}} and fast["by_class"] == {}


def test_the_panel_tells_classes_apart():
    """Picking a class's rows by series alone (a series in every class it had at any cutoff), or
    swapping two classes, gives other figures: the comparison above would see a mix-up."""
    train, cv = _panel()
    rep = dbt.backtest_report(cv, train, seasonality=SEASON, levels=LEVELS)
    figs = {k: v["Final"] for k, v in rep["by_class"].items()}
    assert len({json.dumps(v) for v in figs.values()}) == len(figs)
    models = dbt._model_names(cv)
    ids, train_codes, cv_codes = dbt._series_codes(train["unique_id"], cv["unique_id"])
    tr = pd.DataFrame({"unique_id": train_codes, "ds": train["ds"].to_numpy(), "y": train["y"].to_numpy()})
    c = cv[cv["unique_id"] != "s13"].copy()
    c["unique_id"] = cv_codes[(cv["unique_id"] != "s13").to_numpy()]
    for k in ("smooth", "erratic", "intermittent", "lumpy"):
        by_series = c[c["unique_id"].isin(c.loc[c["demand_class"] == k, "unique_id"])]
        assert dbt._metrics(by_series, tr, models, SEASON, LEVELS)["Final"] != figs[k]


def test_a_class_per_row_not_per_series_cutoff_is_scored_on_its_rows():
    """A frame whose class changes within a series x cutoff (not what the forecaster makes) is
    still scored as ``cv.groupby("demand_class")`` picks it."""
    train, cv = _panel()
    cv.loc[cv.groupby(["unique_id", "cutoff"]).cumcount() == 0, "demand_class"] = "first"
    rep = dbt.backtest_report(cv, train, seasonality=SEASON, levels=LEVELS)
    metrics, by_class = _reference(cv, train)
    assert rep["metrics"] == metrics and rep["by_class"] == by_class and "first" in by_class
