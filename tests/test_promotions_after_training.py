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


def test_the_calendar_is_read_for_the_periods_the_version_was_trained_with():
    """A config whose demand.freq was edited after training (W -> M): the version's ds are week starts, and
    the calendar read by months gave every campaign a share of 0 (no month start among them), silently; it
    is read by the version's own weeks now (3 days of a week: 3/7), and the note says which freq."""
    import numpy as np

    from models.demand import DemandForecaster
    from training._demand_promotions import _promo_for
    from training.commands._alias_plan import calendar_plan

    rng = np.random.default_rng(5)
    ds = pd.date_range("2021-01-04", periods=40, freq="W-MON")
    rows = [pd.DataFrame({"unique_id": u, "ds": ds, "promo": (rng.random(40) < 0.3).astype(float),
                          "y": rng.poisson(8, 40).astype(float)}) for u in ("A", "B")]
    est = DemandForecaster(freq="W", h=3, models=("SeasonalNaive", "LightGBM"), lgbm_params={"n_estimators": 10},
                           random_state=1).fit(pd.concat(rows, ignore_index=True))
    template = est.future_drivers()
    est.set_planned_drivers(template.assign(promo=0.0))  # trained with a calendar that planned nothing
    week2 = pd.Timestamp(sorted(template["ds"].unique())[1])
    calendar = pd.DataFrame({"sku": ["A"], "location": ["ALL"], "start_date": [week2],
                             "end_date": [week2 + pd.Timedelta(days=2)]})
    plan, note = calendar_plan(est, {"promo_for": _promo_for(calendar, "M")}, ["sku"], config="c.yaml",
                               alias="champion")
    assert plan is not None, "the campaign was read by months: no week of the version's got it"
    on = plan.loc[plan["promo"] > 0]
    assert on[["unique_id", "ds"]].values.tolist() == [["A", week2]] and on["promo"].tolist() == [3 / 7]
    assert "1 period(s) of 1 series differ" in note, note
    assert "read for its periods of demand.freq W, which it was trained with, not c.yaml's M" in note, note
    # the config's freq is the version's: no word of it
    _, same = calendar_plan(est, {"promo_for": _promo_for(calendar, "W")}, ["sku"], config="c.yaml", alias="x")
    assert "1 period(s) of 1 series differ" in same and "demand.freq" not in same, same
