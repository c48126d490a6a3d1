"""``dealerml forecast`` with ``demand.hierarchy``: a SKU x location series too short to forecast
is left out of the file and named, as the plain forecast and the service (serving.demand
``_hierarchy_forecast``) leave it out. It was written as a forecast (0 units and a 0-wide band
under bottom-up; under MinTrace whatever the reconciliation moved onto it), so the batch file
listed a series the API answers 404 "not forecast" for.

Small: a series table of 2 regions x 2 SKUs, 40 weeks, one bottom series with only
its last 2 weeks; SeasonalNaive + CrostonSBA, horizon 2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    ds = pd.date_range("2022-01-03", periods=40, freq="W-MON")
    rows = []
    for region, sku, lam in [("E", "A", 6), ("E", "B", 9), ("W", "A", 12), ("W", "B", 4)]:
        part = pd.DataFrame({"region": region, "sku": sku, "ds": ds, "y": rng.poisson(lam, len(ds)).astype(float)})
        rows.append(part.tail(2) if (region, sku) == ("W", "B") else part)  # new: 2 weeks, too short
    return pd.concat(rows, ignore_index=True)


def test_forecast_with_a_hierarchy_leaves_out_and_names_a_series_it_cannot_forecast(tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    path = tmp_path / "panel.csv"
    _panel().to_csv(path, index=False)
    cfg = tmp_path / "hier.yaml"
    cfg.write_text(f"name: p\nseed: 1\ndata:\n  order_lines:\n    path: {path}\ndemand:\n  freq: W\n  horizon: 2\n"
                   "  models: [SeasonalNaive, CrostonSBA]\n  selection_windows: 1\n  hierarchy: true\n"
                   f"  series:\n    path: {path}\n    columns: {{unique_id: [region, sku], ds: ds, y: y}}\n")
    out = tmp_path / "fc.csv"
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert "W/B" not in set(fc["unique_id"]) and "not_forecast" not in set(fc["final_model"].astype(str))
    assert "left out 1" in res.output and "W/B" in res.output
    assert sorted(fc["unique_id"].unique()) == ["*/*", "E/*", "E/A", "E/B", "W/*", "W/A"]
    # bottom-up: the parents still add up over the series written (the one left out counted 0)
    wide = fc.set_index(["unique_id", "ds"])["Final"].unstack("ds")
    np.testing.assert_allclose(wide.loc["W/*"], wide.loc["W/A"], rtol=1e-9)
    np.testing.assert_allclose(wide.loc["*/*"], wide.loc[["E/A", "E/B", "W/A"]].sum(), rtol=1e-9)


def test_the_registered_models_table_predict_leaves_it_out_too():
    """predict_frame (MLflow pyfunc) answered the series with 0 units while the service and the
    forecast file leave it out; asking for it by id is now the plain model's 'unknown unique_id'."""
    import pytest

    from models.demand_hier import HierarchicalDemandForecaster

    est = HierarchicalDemandForecaster(("region", "sku"), forecaster={"freq": "W", "h": 2, "selection_windows": 1,
                                                                      "models": ("SeasonalNaive", "CrostonSBA")})
    est.fit(_panel())
    out = est.predict_frame(pd.DataFrame())
    assert "W/B" not in set(out["unique_id"]) and {"W/*", "W/A", "*/*"} <= set(out["unique_id"])
    with pytest.raises(ValueError, match=r"unknown unique_id\(s\) \['W/B'\]"):
        est.predict_frame(pd.DataFrame({"unique_id": ["W/B"]}))
