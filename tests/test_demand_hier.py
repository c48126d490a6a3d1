"""Coherent forecasts across SKU x location -> SKU -> total."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.demand_hier import HierarchicalDemandForecaster


@pytest.mark.parametrize("method", ["mint_ols", "bottom_up"])
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
    est.save(tmp_path / "h")
    back = HierarchicalDemandForecaster.load(tmp_path / "h").predict(3)
    pd.testing.assert_frame_equal(back, full)
