"""The demand backtest report: scaled metrics equal utilsforecast's on the ids as given, and
series with a zero in-sample scale are named in ``skipped``, not scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
from utilsforecast.losses import mase

from training.demand_backtest import backtest_report


def test_report_matches_utilsforecast_and_names_zero_scale_series():
    rng = np.random.default_rng(0)
    ds = pd.date_range("2022-01-03", periods=30, freq="W-MON")
    ids = ["b-2", "a 1", "const", "z"]
    train = pd.concat(
        [pd.DataFrame({"unique_id": u, "ds": ds, "y": (np.full(30, 5.0) if u == "const" else rng.poisson(8, 30).astype(float))})
         for u in ids],
        ignore_index=True,
    )
    cutoffs = [ds[19], ds[23]]
    rows = []
    for c in cutoffs:
        for u in ids:
            fut = train[(train["unique_id"] == u) & (train["ds"] > c)].head(4)
            pred = fut["y"].to_numpy() + rng.normal(0, 2, len(fut))
            rows.append(fut.assign(cutoff=c, Final=pred, AutoETS=pred + 1.5, demand_class="smooth"))
    cv = pd.concat(rows, ignore_index=True)
    rep = backtest_report(cv, train[train["ds"] <= cutoffs[-1]], seasonality=1, levels=[80, 95])
    assert sorted((s["unique_id"], s["cutoff"]) for s in rep["skipped"]) == [
        ("const", str(cutoffs[0].date())), ("const", str(cutoffs[1].date()))]
    assert all("zero" in s["reason"] for s in rep["skipped"])
    kept = cv[cv["unique_id"] != "const"]
    want = mase(kept[["unique_id", "ds", "cutoff", "y", "Final", "AutoETS"]], ["Final", "AutoETS"], 1,
                train[train["ds"] <= cutoffs[-1]])
    for m in ("Final", "AutoETS"):
        assert rep["metrics"][m]["mase"] == float(want[m].mean())
    assert rep["setup"]["n_series_scored"] == 3
    assert rep["by_class"]["smooth"]["_n_series"] == 3


def test_service_plot_shows_the_reading_the_target_sizes_for():
    from training.demand_plots import service_vs_target

    t = {"0.9": {"distribution": {"cycle_service_level": 0.95, "cycle_service_level_end_net": 0.91},
                 "normal": {"cycle_service_level": 0.93, "cycle_service_level_end_net": None}},
         "0.95": {"distribution": {"cycle_service_level": 0.97, "cycle_service_level_end_net": 0.94},
                  "normal": {"cycle_service_level": 0.96, "cycle_service_level_end_net": 0.92}}}
    fig = service_vs_target({"targets": t})
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    solid = lines["distribution: no backorder at cycle end"]
    assert solid.get_linestyle() == "-" and list(solid.get_ydata()) == [0.91, 0.94]
    assert list(lines["distribution: no unserved demand"].get_ydata()) == [0.95, 0.97]
    assert np.isnan(lines["normal: no backorder at cycle end"].get_ydata()[0])
    # a replay of an older version (one reading) still plots
    old = {k: {m: {"cycle_service_level": v["cycle_service_level"]} for m, v in d.items()} for k, d in t.items()}
    labels = [ln.get_label() for ln in service_vs_target({"targets": old}).axes[0].get_lines()]
    assert "distribution: no unserved demand" in labels and "distribution: no backorder at cycle end" not in labels


def test_coverage_leaves_out_forecasts_without_a_band_and_says_how_many():
    """An early window with no internal window before it has no band: its rows were counted as
    misses (Online Retail's validation split read 38 % at 80 %); now they are left out and counted."""
    rng = np.random.default_rng(1)
    ds = pd.date_range("2022-01-03", periods=30, freq="W-MON")
    train = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": rng.poisson(8, 30).astype(float)}) for u in "abc"],
                      ignore_index=True)
    rows = []
    for c in (ds[19], ds[23]):
        for u in "abc":
            fut = train[(train["unique_id"] == u) & (train["ds"] > c)].head(4)
            y = fut["y"].to_numpy()
            # inside the band at the later cutoff on 3 of 4 steps, no band at the earlier one
            lo = np.where(np.arange(4) < 3, y - 1, y + 1) if c == ds[23] else np.full(4, np.nan)
            hi = lo + 2 if c == ds[23] else np.full(4, np.nan)
            rows.append(fut.assign(cutoff=c, Final=y, demand_class="smooth", **{
                "Final-lo-80": lo, "Final-hi-80": hi, "Final-lo-95": lo, "Final-hi-95": hi}))
    cv = pd.concat(rows, ignore_index=True)
    rep = backtest_report(cv, train[train["ds"] <= ds[23]], seasonality=1, levels=[80, 95])
    assert rep["metrics"]["Final"]["coverage_80"] == 0.75 and rep["metrics"]["Final"]["coverage_95"] == 0.75
    assert rep["setup"]["forecasts_without_bands"] == {"Final": 12}
    # every band present: no note
    full = cv[cv["cutoff"] == ds[23]]
    assert "forecasts_without_bands" not in backtest_report(full, train[train["ds"] <= ds[23]], seasonality=1)["setup"]


def test_scaled_metrics_in_chunks_of_series_are_the_same_figures(monkeypatch):
    """The scaled metrics run on chunks of series (SCALED_CHUNK_ROWS training rows, so the join of
    the training rows with the cutoffs stays bounded at 100k series): every figure of the report is
    the one a single utilsforecast call gives, to the last bit, and the caller's frame is left as given."""
    from utilsforecast.losses import rmsse, scaled_mqloss

    import training._demand_report as db  # SCALED_CHUNK_ROWS is read here; _by_series_chunks lives here

    rng = np.random.default_rng(1)
    ds = pd.date_range("2022-01-03", periods=40, freq="W-MON")
    ids = [f"s{i:02d}" for i in range(37)]  # sorted as their codes, so the single calls sum in the same order
    train = pd.DataFrame({"unique_id": np.repeat(ids, 40), "ds": np.tile(ds, 37),
                          "y": rng.poisson(6, 37 * 40).astype(float)})
    rows = []
    for c in (ds[27], ds[31]):
        fut = train[(train["ds"] > c) & (train["ds"] <= c + 4 * ds.freq)]
        p = fut["y"].to_numpy() + rng.normal(0, 2, len(fut))
        rows.append(fut.assign(cutoff=c, Final=p, **{"Final-lo-80": p - 2, "Final-hi-80": p + 2, "Final-lo-95": p - 4,
                                                     "Final-hi-95": p + 4}, demand_class=np.where(fut["y"] > 6, "a", "b")))
    cv = pd.concat(rows, ignore_index=True)
    before = cv.copy()
    hist = train[train["ds"] <= ds[31]]
    monkeypatch.setattr(db, "SCALED_CHUNK_ROWS", 10**9)
    whole = backtest_report(cv, hist, seasonality=1)
    monkeypatch.setattr(db, "SCALED_CHUNK_ROWS", 90)  # ~3 series a chunk: 13 chunks
    chunked = backtest_report(cv, hist, seasonality=1)
    pd.testing.assert_frame_equal(cv, before)
    whole["setup"].pop("seconds", None), chunked["setup"].pop("seconds", None)
    assert chunked == whole
    base = cv[["unique_id", "ds", "cutoff", "y", "Final", "Final-lo-95", "Final-lo-80", "Final-hi-80", "Final-hi-95"]]
    m = chunked["metrics"]["Final"]
    assert m["mase"] == float(mase(base, ["Final"], 1, hist)["Final"].mean())
    assert m["rmsse"] == float(rmsse(base, ["Final"], 1, hist)["Final"].mean())
    qs = np.array([0.025, 0.1, 0.5, 0.9, 0.975])
    pin = scaled_mqloss(base, {"Final": ["Final-lo-95", "Final-lo-80", "Final", "Final-hi-80", "Final-hi-95"]}, qs, 1, hist)
    assert m["pinball"] == float(pin["Final"].mean())
    chunks = db._by_series_chunks(lambda b, t: mase(b, ["Final"], 1, t), base, hist, 90)
    pd.testing.assert_frame_equal(chunks, mase(base, ["Final"], 1, hist), check_exact=True)
