"""A campaign added to ``data.promotions`` after ``train demand`` reaches ``forecast --alias`` /
``safety-stock --alias`` with ``--config``: the registered version keeps the plan its run knew, and the
config's calendar as it is now is read for the version's own forecast periods (training.commands._alias_plan)."""

from __future__ import annotations

import pandas as pd
from _support_promotions import _calendar_book
from typer.testing import CliRunner

from training.cli import app


def test_a_campaign_added_after_training_reaches_the_registered_forecast(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    cfg = _calendar_book(tmp_path)
    run = CliRunner()
    res = run.invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay"])
    assert res.exit_code == 0, res.output
    before, used0 = tmp_path / "before.csv", tmp_path / "used0.csv"
    res = run.invoke(app, ["forecast", "--alias", "champion", "--config", str(cfg), "--out", str(before),
                           "--drivers-out", str(used0)])
    assert res.exit_code == 0, res.output
    assert "promotions table as it is now" not in res.output  # the same calendar: the version's own plan
    d0 = pd.read_csv(used0)
    assert d0.loc[d0["promo"] > 0, ["unique_id", "ds"]].values.tolist() == [["A", "2024-09-23"]]

    # marketing adds a campaign for B in the first forecast week, after the model was registered
    with open(tmp_path / "promo.csv", "a") as f:
        f.write("B,2024-09-16,2024-09-22\n")
    after, used1 = tmp_path / "after.csv", tmp_path / "used1.csv"
    res = run.invoke(app, ["forecast", "--alias", "champion", "--config", str(cfg), "--out", str(after),
                           "--drivers-out", str(used1)])
    assert res.exit_code == 0, res.output
    assert "promotions table as it is now: 1 period(s) of 1 series differ" in res.output, res.output
    d1 = pd.read_csv(used1)
    assert sorted(d1.loc[d1["promo"] > 0, ["unique_id", "ds"]].values.tolist()) == [["A", "2024-09-23"],
                                                                                      ["B", "2024-09-16"]]
    f0, f1 = (pd.read_csv(p).set_index(["unique_id", "ds"]) for p in (before, after))
    assert f1.loc[("A", "2024-09-23"), "LightGBM"] == f0.loc[("A", "2024-09-23"), "LightGBM"]
    assert f1.loc[("B", "2024-09-16"), "LightGBM"] > f0.loc[("B", "2024-09-16"), "LightGBM"]  # the campaign lifts it

    # without --config the version's own plan stands (nothing to read the calendar from)
    own = tmp_path / "own.csv"
    res = run.invoke(app, ["forecast", "--alias", "champion", "--out", str(own)])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_csv(own).set_index(["unique_id", "ds"])[["LightGBM"]], f0[["LightGBM"]])

    # safety-stock --alias sizes from the forecast under the table's campaigns too
    stock = tmp_path / "ss.csv"
    res = run.invoke(app, ["safety-stock", "--alias", "champion", "--config", str(cfg), "--out", str(stock)])
    assert res.exit_code == 0, res.output
    assert "promotions table as it is now: 1 period(s) of 1 series differ" in res.output, res.output


def test_the_calendar_plans_a_hierarchical_forecasters_bottom_series():
    """calendar_plan on a coherent model: its bottom series' ids split into sku / location, a campaign for
    SKU A at every location plans A's series only, and set_planned_drivers moves A's levels, not B's."""
    import numpy as np

    from models.demand_hier import HierarchicalDemandForecaster
    from training._demand_promotions import _promo_for
    from training.commands._alias_plan import calendar_plan

    rng = np.random.default_rng(3)
    ds = pd.date_range("2021-01-04", periods=60, freq="W-MON")
    rows = []
    for sku, loc, lam in [("A", "L1", 6), ("A", "L2", 14), ("B", "L1", 9)]:
        promo = (rng.random(60) < 0.3).astype(float)
        rows.append(pd.DataFrame({"sku": sku, "location": loc, "ds": ds, "promo": promo,
                                  "y": rng.poisson(lam * (1 + 1.5 * promo)).astype(float)}))
    est = HierarchicalDemandForecaster(("sku", "location"), forecaster={
        "freq": "W", "h": 3, "models": ("SeasonalNaive", "LightGBM"), "lgbm_params": {"n_estimators": 30},
        "random_state": 1}).fit(pd.concat(rows, ignore_index=True))
    template = est.future_drivers()
    est.set_planned_drivers(template.assign(promo=0.0))  # trained with a calendar that planned nothing
    base = est.predict().set_index(["unique_id", "ds"])["Final"]
    week1 = pd.Timestamp(template["ds"].min())
    calendar = pd.DataFrame({"sku": ["A"], "location": ["ALL"], "start_date": [week1],
                             "end_date": [week1 + pd.Timedelta(days=6)]})
    plan, note = calendar_plan(est, {"promo_for": _promo_for(calendar, "W")}, ["sku", "location"],
                               config="c.yaml", alias="champion")
    assert "2 period(s) of 2 series differ" in note and "'A/L1'" in note, note
    on = plan.loc[plan["promo"] > 0, ["unique_id", "ds"]].values.tolist()
    assert on == [["A/L1", week1], ["A/L2", week1]]
    est.set_planned_drivers(plan)
    moved = (est.predict().set_index(["unique_id", "ds"])["Final"] - base).abs() > 1e-9
    assert {u for u, _ in moved[moved].index} <= {"total/A/L1", "total/A/L2", "total/A", "total"}
    assert moved[("total/A", week1)] and not moved.loc["total/B"].any()
    # the same calendar again: nothing differs, no plan
    assert calendar_plan(est, {"promo_for": _promo_for(calendar, "W")}, ["sku", "location"], config="c.yaml",
                         alias="champion") == (None, "")
