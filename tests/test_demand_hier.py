"""Coherent forecasts across SKU x location -> SKU -> total."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.demand_hier import HierarchicalDemandForecaster


@pytest.mark.parametrize("method", ["mint_ols", "mint_wls", "bottom_up"])
def test_reconciled_forecasts_add_up(method, tmp_path):
    rng = np.random.default_rng(5)
    ds = pd.date_range("2021-01-04", periods=40, freq="W-MON")
    rows = [pd.DataFrame({"sku": sku, "location": loc, "ds": ds, "y": rng.poisson(lam, 40).astype(float)})
            for sku, loc, lam in [("A", "L1", 5), ("A", "L2", 12), ("B", "L1", 3), ("B", "L2", 20), ("B", "L3", 8)]]
    df = pd.concat(rows, ignore_index=True)
    est = HierarchicalDemandForecaster(("sku", "location"), method=method,
                                       forecaster={"freq": "W", "h": 3, "models": ("AutoETS", "LightGBM"),
                                                   "lgbm_params": {"n_estimators": 20}})
    fc = est.fit(df).predict(3).set_index(["unique_id", "ds"])["Final"].unstack("ds")
    assert len(fc) == 1 + 2 + 5
    np.testing.assert_allclose(fc.loc["total/A"], fc.loc[["total/A/L1", "total/A/L2"]].sum(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fc.loc["total/B"], fc.loc[["total/B/L1", "total/B/L2", "total/B/L3"]].sum(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fc.loc["total"], fc.loc[["total/A", "total/B"]].sum(), rtol=1e-5, atol=1e-4)
    assert (fc.to_numpy() >= 0).all()
    full = est.predict(3)
    assert (full["Final-lo-80"] <= full["Final"] + 1e-9).all() and (full["Final"] <= full["Final-hi-80"] + 1e-9).all()
    assert "Base" in full.columns
    # a parent's band is the coherent point + the level's conformal quantile x its naive scale
    table, scale = est.coherent_conformal_, est.upper_.scale_
    # the SKU level has < 50 errors here: no table per demand class, the level's own
    assert est.coherent_keys_["total/B"] == "_total/sku" and est.coherent_keys_["total"] == "_total"
    q = table[("_total/sku", 0)]
    a = full[full["unique_id"] == "total/B"]
    want_hi = np.maximum(np.clip(a["Final"] + q[95][1] * scale["total/B"], 0, None), a["Final"])
    np.testing.assert_allclose(a["Final-hi-95"], want_hi, rtol=1e-9)
    est.save(tmp_path / "h")
    back = HierarchicalDemandForecaster.load(tmp_path / "h").predict(3)
    pd.testing.assert_frame_equal(back, full)
    # saved before parents had bands of their own: each node's own band moved onto its point
    import pickle

    st = pickle.loads((tmp_path / "h" / "hierarchy.pkl").read_bytes())
    del st["coherent_conformal_"]
    (tmp_path / "h" / "hierarchy.pkl").write_bytes(pickle.dumps(st))
    old = HierarchicalDemandForecaster.load(tmp_path / "h").predict(3)
    pd.testing.assert_frame_equal(old[["unique_id", "ds", "Final"]], full[["unique_id", "ds", "Final"]])
    t = old[old["unique_id"] == "total"]
    moved = np.clip(t["Base-hi-80"] + t["Final"] - t["Base"], 0, None)
    np.testing.assert_allclose(t["Final-hi-80"], np.maximum(moved, t["Final"]), rtol=1e-9)


def _panel(n_weeks: int = 60, seed: int = 7) -> pd.DataFrame:
    """Two regions x three SKUs with a price driver that moves demand."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=n_weeks, freq="W-MON")
    rows = []
    for region, sku, lam in [("N", "A", 6), ("N", "B", 14), ("N", "C", 2), ("S", "A", 9), ("S", "B", 4), ("S", "C", 20)]:
        price = 10 + rng.normal(0, 1, n_weeks)
        y = rng.poisson(lam * np.exp(-0.3 * (price - 10)))
        rows.append(pd.DataFrame({"region": region, "sku": sku, "ds": ds, "y": y.astype(float), "price": price}))
    return pd.concat(rows, ignore_index=True)


def test_bottom_up_keeps_the_bottom_forecast_of_a_plain_fit_with_its_drivers():
    # the bottom level is forecast exactly as without a hierarchy (same members, drivers and
    # selection); parents are sums. Before, one forecaster fitted every level together and
    # without drivers, so the bottom forecast changed when a hierarchy was asked for.
    from models.demand import DemandForecaster

    df = _panel()
    kw = {"freq": "W", "h": 4, "models": ("AutoETS", "LightGBM"), "lgbm_params": {"n_estimators": 20},
          "random_state": 3}
    hier = HierarchicalDemandForecaster(("region", "sku"), forecaster=kw).fit(df)
    fc = hier.predict(4).set_index(["unique_id", "ds"])
    plain_in = df.assign(unique_id="total/" + df["region"] + "/" + df["sku"])[["unique_id", "ds", "y", "price"]]
    plain = DemandForecaster(**kw).fit(plain_in)
    assert plain.exog_ == ["price"] and hier.bottom_.exog_ == ["price"] and not hier.upper_.exog_
    ref = plain.predict(4).set_index(["unique_id", "ds"])
    got = fc.loc[ref.index]
    np.testing.assert_allclose(got["Final"], ref["Final"], rtol=1e-9)
    np.testing.assert_allclose(got["Final-hi-95"], ref["Final-hi-95"], rtol=1e-9)
    wide = fc["Final"].unstack("ds")
    np.testing.assert_allclose(wide.loc["total/N"], wide.loc[["total/N/A", "total/N/B", "total/N/C"]].sum(), rtol=1e-9)
    np.testing.assert_allclose(wide.loc["total"], wide.loc[["total/N", "total/S"]].sum(), rtol=1e-9)
    # each parent keeps a band of its own around the coherent point
    assert (fc.loc["total", "Final-lo-80"] < fc.loc["total", "Final"]).all()
    assert (fc.loc["total", "Final-hi-80"] > fc.loc["total", "Final"]).all()


def test_backtest_of_a_series_table_with_key_columns_reports_every_level(tmp_path):
    import json

    from typer.testing import CliRunner

    from training.cli import app

    path = tmp_path / "panel.csv"
    _panel().to_csv(path, index=False)
    base = (f"name: p\nseed: 1\ndata:\n  order_lines:\n    path: {path}\ndemand:\n  freq: W\n  horizon: 4\n  windows: 2\n  models: [AutoETS, CrostonSBA, LightGBM]\n"
            "  lgbm: {n_estimators: 20}\n  selection_windows: 1\n"
            f"  series:\n    path: {path}\n    columns: {{unique_id: [region, sku], ds: ds, y: y}}\n"
            "    exog: {price: price}\n")
    runner = CliRunner()
    plain_cfg, hier_cfg = tmp_path / "plain.yaml", tmp_path / "hier.yaml"
    plain_cfg.write_text(base)
    hier_cfg.write_text(base + "  hierarchy: true\n")
    res = runner.invoke(app, ["backtest", "demand", "--config", str(plain_cfg), "--json", str(tmp_path / "p.json")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["backtest", "demand", "--config", str(hier_cfg), "--json", str(tmp_path / "h.json"),
                              "--cv-out", str(tmp_path / "cv.parquet")])
    assert res.exit_code == 0, res.output
    plain, hier = (json.loads((tmp_path / f).read_text()) for f in ("p.json", "h.json"))
    assert hier["hierarchy"]["levels"] == ["region", "sku"] and hier["hierarchy"]["method"] == "bottom_up"
    levels = hier["hierarchy"]["by_level"]
    assert list(levels) == ["total", "region", "region/sku"]
    assert [levels[k]["n_series"] for k in levels] == [1, 2, 6]
    # bottom-up: the bottom level scores exactly as the plain backtest of the same table
    for m in ("Final", "AutoETS", "LightGBM"):
        assert hier["metrics"][m]["mase"] == pytest.approx(plain["metrics"][m]["mase"], rel=1e-9)
    assert levels["region/sku"]["metrics"]["Final"]["mase"] == pytest.approx(plain["metrics"]["Final"]["mase"], rel=1e-9)
    assert levels["total"]["metrics"]["Base"]["mase"] is not None and levels["total"]["metrics"]["AutoETS"]["mase"] is not None
    # each level's coverage is printed beside its MASE (the report's numbers)
    assert any(x.split() == ["level", "series", "model", "MASE", "cov80", "cov95"] for x in res.output.splitlines())
    row = next(x.split() for x in res.output.splitlines() if x.startswith("total "))
    tf = levels["total"]["metrics"]["Final"]
    assert row == ["total", "1", "Final", f"{tf['mase']:.3f}", f"{tf['coverage_80']:.2f}", f"{tf['coverage_95']:.2f}"]
    cv = pd.read_parquet(tmp_path / "cv.parquet")
    for _, g in cv.groupby("cutoff"):
        wide = g.set_index(["unique_id", "ds"])["Final"].unstack("ds")
        kids = [u for u in wide.index if u.count("/") == 2]
        np.testing.assert_allclose(wide.loc["total"], wide.loc[kids].sum(), rtol=1e-9)
    # a series table whose id is one column has no levels to reconcile
    one = tmp_path / "one.yaml"
    one.write_text(base.replace("unique_id: [region, sku]", "unique_id: sku") + "  hierarchy: true\n")
    res = runner.invoke(app, ["backtest", "demand", "--config", str(one), "--json", str(tmp_path / "o.json")])
    assert res.exit_code == 2 and "demand.series.columns.unique_id: [<parent>, <child>]" in res.output


def _driven_panel(n_sku: int = 24, n_loc: int = 3, n_weeks: int = 60, seed: int = 0) -> pd.DataFrame:
    """SKU x location demand = level x exp(-0.8 (price - 10)) + N(0, 2) units, with the price
    known in advance and drawn anew every week for every series: the bottom forecaster (with the
    driver) predicts the children well, the parents' own forecaster (no drivers) does not."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=n_weeks, freq="W-MON")
    rows = []
    for k in range(n_sku):
        for j in range(n_loc):
            price = 10 + rng.normal(0, 0.7, n_weeks)
            y = np.maximum(0, rng.uniform(10, 30) * np.exp(-0.8 * (price - 10)) + rng.normal(0, 2, n_weeks))
            rows.append(pd.DataFrame({"sku": f"S{k:02d}", "loc": f"L{j}", "ds": ds, "y": y, "price": price}))
    return pd.concat(rows, ignore_index=True)


def test_parent_bands_are_calibrated_on_the_coherent_forecast():
    # Parents' bands come from the coherent forecast's own errors in the internal windows.
    # Before, a parent kept its own band (fitted around a forecast without the price driver,
    # errors ~4x the coherent one's) moved onto the coherent point: it covered ~100 % for 80 %.
    df = _driven_panel()
    est = HierarchicalDemandForecaster(("sku", "loc"), forecaster={
        "freq": "W", "h": 4, "models": ("AutoETS", "LightGBM"), "lgbm_params": {"n_estimators": 40},
        "selection_windows": 3})
    cv = est.cross_validation(df, h=4, n_windows=2, step_size=4)

    def cover(p, pre, lv):
        return float(((p["y"] >= p[f"{pre}-lo-{lv}"] - 1e-9) & (p["y"] <= p[f"{pre}-hi-{lv}"] + 1e-9)).mean())

    for table, keys in est.cv_bands_.values():  # 24 SKUs x 12 errors: a table of the class
        assert keys["total/S00"] == "_total/sku:smooth" and keys["total"] == "_total"
        assert ("_total/sku:smooth", 0) in table and ("_total", 0) in table
    sku = cv[cv["unique_id"].str.count("/") == 1].copy()
    assert len(sku) == 24 * 4 * 2
    assert 0.72 <= cover(sku, "Final", 80) <= 0.90
    assert 0.90 <= cover(sku, "Final", 95) <= 0.995
    shift = sku["Final"] - sku["Base"]
    for lv in (80, 95):  # the old bands: each parent's own, moved onto the coherent point
        sku[f"M-lo-{lv}"] = np.minimum(np.clip(sku[f"Base-lo-{lv}"] + shift, 0, None), sku["Final"])
        sku[f"M-hi-{lv}"] = np.maximum(np.clip(sku[f"Base-hi-{lv}"] + shift, 0, None), sku["Final"])
    assert cover(sku, "M", 80) >= 0.97
    assert (sku["Final-hi-95"] - sku["Final-lo-95"]).mean() < 0.5 * (sku["M-hi-95"] - sku["M-lo-95"]).mean()
    # the bottom level keeps the bottom forecaster's bands exactly (bottom-up: Final = Base)
    bottom = cv[cv["unique_id"].str.count("/") == 2]
    for c in ("Final", "Final-lo-80", "Final-hi-80", "Final-lo-95", "Final-hi-95"):
        np.testing.assert_array_equal(bottom[c].to_numpy(), bottom[c.replace("Final", "Base")].to_numpy())
    # every node: 0 <= lo-95 <= lo-80 <= point <= hi-80 <= hi-95
    q = cv[["Final-lo-95", "Final-lo-80", "Final", "Final-hi-80", "Final-hi-95"]].to_numpy()
    assert (q[:, 0] >= 0).all() and (np.diff(q, axis=1) >= -1e-9).all()


def test_served_ids_keep_the_bottom_series_ids_and_spell_a_sum_with_a_star(tmp_path):
    # users (the service, `dealerml forecast`, the registered model) see the bottom series under
    # the ids a plain forecaster gives them (those of the inventory / lead-time tables)
    rng = np.random.default_rng(1)
    ds = pd.date_range("2021-01-04", periods=30, freq="W-MON")
    df = pd.concat([pd.DataFrame({"sku": s, "location": loc, "ds": ds, "y": rng.poisson(lam, 30).astype(float)})
                    for s, loc, lam in [("A", "L1", 5), ("A", "L2", 9), ("B", "L1", 4)]], ignore_index=True)
    df["unique_id"] = df["sku"] + "/" + df["location"]
    est = HierarchicalDemandForecaster(("sku", "location"), forecaster={"freq": "W", "h": 2, "models": ("AutoETS",)}).fit(df)
    assert sorted(est.bottom_.forecast_["unique_id"].unique()) == ["A/L1", "A/L2", "B/L1"]
    fc = est.predict_frame(pd.DataFrame())
    assert fc.drop_duplicates("unique_id")[["unique_id", "level"]].values.tolist() == [
        ["*/*", "total"], ["A/*", "sku"], ["B/*", "sku"], ["A/L1", "sku/location"], ["A/L2", "sku/location"],
        ["B/L1", "sku/location"]]
    node = est.predict(2)
    np.testing.assert_array_equal(fc["Final"].to_numpy(), node["Final"].to_numpy())  # same rows, relabelled
    wide = fc.set_index(["unique_id", "ds"])["Final"].unstack("ds")
    np.testing.assert_allclose(wide.loc["A/*"], wide.loc[["A/L1", "A/L2"]].sum(), rtol=1e-9)
    one = est.predict_frame(pd.DataFrame({"unique_id": ["A/*"], "h": [1]}))
    assert one["unique_id"].tolist() == ["A/*"] and one["Final"].iloc[0] == pytest.approx(wide.loc["A/*"].iloc[0])
    with pytest.raises(ValueError, match=r"unknown unique_id\(s\) \['C/\*'\]"):
        est.predict_frame(pd.DataFrame({"unique_id": ["C/*"]}))
    with pytest.raises(ValueError, match="a ds column is a plan of drivers, and this forecaster's bottom level was "
                                         "fitted without drivers"):
        est.predict_frame(pd.DataFrame({"unique_id": ["A/L1"], "ds": [ds[-1]]}))
    est.save(tmp_path / "h")
    pd.testing.assert_frame_equal(HierarchicalDemandForecaster.load(tmp_path / "h").predict_frame(pd.DataFrame()), fc)
    # '*' means 'all' in a served id: a key holding it is refused, naming the column
    with pytest.raises(ValueError, match=r"key column\(s\) \['location'\] hold the value '\*'"):
        HierarchicalDemandForecaster(("sku", "location"), forecaster={"freq": "W", "h": 2, "models": ("AutoETS",)}).fit(
            df.assign(location=df["location"].replace("L2", "*"), unique_id=df["sku"] + "/" + df["location"].replace("L2", "*")))


def test_a_moved_band_that_reached_zero_keeps_zero():
    """MinTrace puts a little on a series forecast at 0 (solver residue): its band, clipped at 0,
    must still hold 0, or every week without demand reads as a miss (bottom coverage under
    mint_ols read 0.17 at 80 % on the synthetic network)."""
    from models.demand_hier import hierarchy

    ds = pd.date_range("2024-01-01", periods=2, freq="W-MON")
    bottom = pd.DataFrame({"sku": ["A"] * 4, "location": ["L1", "L1", "L2", "L2"], "ds": list(ds) * 2, "y": 1.0})
    _, S, tags = hierarchy(bottom, ["sku", "location"])
    base = {"total/A/L1": (0.0, 0.0, 2.0), "total/A/L2": (10.0, 5.0, 15.0), "total/A": (14.0, 9.0, 19.0),
            "total": (14.0, 9.0, 19.0)}
    fc = pd.DataFrame([{"unique_id": u, "ds": d, "Final": f, "Final-lo-80": lo, "Final-hi-80": hi,
                        "cutoff": ds[0] - pd.Timedelta(weeks=1)} for u, (f, lo, hi) in base.items() for d in ds])
    out = HierarchicalDemandForecaster(("sku", "location"), method="mint_ols")._reconcile(fc, S, tags, [80])
    out = out.set_index("unique_id")
    l1, l2 = out.loc["total/A/L1"], out.loc["total/A/L2"]
    assert (l1["Final"] > 0.5).all()  # MinTrace moved part of the parents' 4 extra units onto it
    assert (l1["Final-lo-80"] == 0).all()  # ... and its band still holds 0
    np.testing.assert_allclose(l1["Final-hi-80"], 2.0 + l1["Final"])  # the upper bound moves
    np.testing.assert_allclose(l2["Final-lo-80"], 5.0 + l2["Final"] - 10.0)  # a band above 0 moves whole
