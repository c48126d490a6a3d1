"""The promotions table's planned campaigns and a planner's --future file with ``demand.hierarchy:
true``: ``forecast --config`` reconciles every level under them (bottom-up: a parent moves by the sum
of its series' moves), and safety-stock / train demand give the hierarchy the same default plan as
a plain forecaster. Small: SKUs A, B at locations n, s, 90 weeks, AutoETS + LightGBM (40 trees)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app


def _calendar_book(tmp_path):
    """A weekly book of SKUs A, B at n and s (history to the week of 9 Sep 2024), a campaign every 6
    weeks, and one planned for A (every location) in the week of 23 Sep 2024, after the history."""
    rng = np.random.default_rng(1)
    rows = []
    for i, d in enumerate(pd.date_range("2023-01-04", periods=90, freq="W-WED")):
        for sku in ("A", "B"):
            for loc in ("n", "s"):
                promo = int(i % 6 == 0)
                rows.append({"order_id": f"o{i}{sku}{loc}", "order_date": f"{d:%Y-%m-%d}", "account_id": "a",
                             "sku": sku, "location": loc, "quantity": int(rng.poisson(4 + 12 * promo)) + 1,
                             "unit_price": 1.0})
    pd.DataFrame(rows).to_csv(tmp_path / "lines.csv", index=False)
    starts = pd.date_range("2023-01-02", periods=90, freq="W-MON")[::6]
    cal = [f"{sku},{s:%Y-%m-%d},{s + pd.Timedelta(days=6):%Y-%m-%d}" for s in starts for sku in ("A", "B")]
    cal.append("A,2024-09-23,2024-09-29")  # the second week after the history
    (tmp_path / "promo.csv").write_text("sku,start_date,end_date\n" + "\n".join(cal) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 1\ndata:\n  as_of: '2024-09-30'\n  order_lines: {{path: {tmp_path / 'lines.csv'}}}\n"
                   f"  promotions: {{path: {tmp_path / 'promo.csv'}}}\n"
                   "demand: {freq: W, horizon: 3, windows: 1, drivers: [promo], levels: [sku, location], hierarchy: true,"
                   " models: [AutoETS, LightGBM], lgbm: {n_estimators: 40}, selection_windows: 1, lead_time_days: 7}\n")
    return cfg


def test_forecast_reconciles_the_calendars_campaign_and_a_plan_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _calendar_book(tmp_path)
    out, used = tmp_path / "fc.csv", tmp_path / "drivers.csv"
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(out), "--drivers-out", str(used)])
    assert res.exit_code == 0, res.output
    d = pd.read_csv(used)  # the campaign after the history is the default plan of A's series
    assert d.loc[d["promo"] > 0, ["unique_id", "ds"]].values.tolist() == [["A/n", "2024-09-23"], ["A/s", "2024-09-23"]]
    # a planner's file turns it off for SKU A at every location (a summed id)
    (tmp_path / "off.csv").write_text("unique_id,ds,promo\nA/*,2024-09-23,0\n")
    off = tmp_path / "fc_off.csv"
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(off), "--future",
                                   str(tmp_path / "off.csv")])
    assert res.exit_code == 0, res.output
    assert "for 1 id(s)" in res.output and "a summed id's value goes to every SKU x location series" in res.output
    a = pd.read_csv(out).set_index(["unique_id", "ds"])["Final"]
    b = pd.read_csv(off).set_index(["unique_id", "ds"])["Final"]
    lift = (a - b).unstack("ds")
    wk = "2024-09-23"
    assert lift.loc["A/n", wk] > 1 and lift.loc["A/s", wk] > 1  # the campaign lifts both locations ...
    # ... and the SKU and the total by their sum; B is untouched
    np.testing.assert_allclose(lift.loc["A/*", wk], lift.loc["A/n", wk] + lift.loc["A/s", wk], rtol=1e-6)
    np.testing.assert_allclose(lift.loc["*/*"], lift.loc["A/*"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lift.loc[["B/n", "B/s", "B/*"]], 0.0, atol=1e-9)
    # an id the hierarchy does not have: refused naming it, nothing written
    (tmp_path / "bad.csv").write_text("unique_id,ds,promo\nC/*,2024-09-23,1\n")
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(tmp_path / "no.csv"), "--future",
                                   str(tmp_path / "bad.csv")])
    assert res.exit_code != 0 and "unique_id(s) the forecaster does not know, e.g. ['C/*']" in res.output, res.output
    assert not (tmp_path / "no.csv").exists()


@pytest.mark.parametrize("command", ["safety-stock", "train", "tune"])
def test_safety_stock_train_and_tune_give_the_hierarchy_the_calendars_plan(command, tmp_path, monkeypatch):
    from models.demand_hier import HierarchicalDemandForecaster

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _calendar_book(tmp_path)
    seen = []
    real = HierarchicalDemandForecaster.set_planned_drivers

    def spy(self, X_df):
        seen.append(X_df.loc[X_df["promo"] > 0, ["unique_id", "ds"]].astype(str).values.tolist())
        return real(self, X_df)

    monkeypatch.setattr(HierarchicalDemandForecaster, "set_planned_drivers", spy)
    if command == "tune":  # tune demand's final model (registered as train demand registers it)
        from training.config import load_config
        from training.demand_tuning import tuning_target

        model, _ = tuning_target(load_config(cfg)).fit_final({})
        assert isinstance(model, HierarchicalDemandForecaster) and model.bottom_.planned_drivers_ is not None
    else:
        args = (["safety-stock", "--config", str(cfg), "--out", str(tmp_path / "ss.csv")] if command == "safety-stock"
                else ["train", "demand", "--config", str(cfg), "--no-replay"])
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
    assert seen and seen[-1] == [["A/n", "2024-09-23"], ["A/s", "2024-09-23"]]
    if command == "train":  # the registered model keeps it: its served forecast follows the campaign
        from training import tracking

        est, _ = tracking.load_model("dealerml-demand", alias="champion")
        assert est.future_drivers().query("promo > 0")["unique_id"].tolist() == ["A/n", "A/s"]
