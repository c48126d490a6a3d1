"""Plans of drivers with coherent levels (models.demand_hier_plan): the bottom level is re-run under
the plan and every level reconciled again, so a plan for one SKU x location moves its SKU total and
the grand total by the same amount (bottom-up); an empty plan is the unplanned forecast; bad plans
are refused naming the ids. Small: 5 SKU x location series, SeasonalNaive + LightGBM (30 trees)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.demand_hier import HierarchicalDemandForecaster

KW = {"freq": "W", "h": 3, "models": ("SeasonalNaive", "LightGBM"), "lgbm_params": {"n_estimators": 30},
      "random_state": 1}


def _book(short: bool = False) -> pd.DataFrame:
    """SKU A at L1, L2 and B at L1, L2, L3, weekly, with a promo driver that lifts demand 2.5x;
    ``short``: B/L3 sold only in the last 3 weeks (no forecast: too short)."""
    rng = np.random.default_rng(7)
    ds = pd.date_range("2021-01-04", periods=60, freq="W-MON")
    rows = []
    for sku, loc, lam in [("A", "L1", 6), ("A", "L2", 14), ("B", "L1", 3), ("B", "L2", 20), ("B", "L3", 8)]:
        promo = (rng.random(60) < 0.3).astype(float)
        y = rng.poisson(lam * (1 + 1.5 * promo)).astype(float)
        part = pd.DataFrame({"sku": sku, "location": loc, "ds": ds, "y": y, "promo": promo})
        rows.append(part.tail(3) if short and loc == "L3" else part)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def fitted() -> dict[str, HierarchicalDemandForecaster]:
    df = _book()
    return {m: HierarchicalDemandForecaster(("sku", "location"), method=m, forecaster=KW).fit(df)
            for m in ("bottom_up", "mint_ols")}


def _final(fc: pd.DataFrame) -> pd.DataFrame:
    return fc.set_index(["unique_id", "ds"])["Final"].unstack("ds")


def _weeks(est) -> list:
    return sorted(est.future_drivers()["ds"].unique())


def test_a_plan_for_one_series_moves_it_and_its_parents_by_the_same_amount(fitted):
    est = fitted["bottom_up"]
    assert est.bottom_.predict().groupby("unique_id")["final_model"].first()["A/L1"] == "LightGBM"
    base = est.predict()
    plan = pd.DataFrame({"unique_id": "A/L1", "ds": _weeks(est), "promo": 1.0})
    got = est.predict(X_df=plan)
    d = _final(got) - _final(base)
    lift = d.loc["total/A/L1"].to_numpy()
    assert (lift > 0.5).all()  # the promotion raises the planned series
    for parent in ("total/A", "total"):  # ... and every parent by exactly as much (bottom-up)
        np.testing.assert_allclose(d.loc[parent], lift, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d.drop(index=["total/A/L1", "total/A", "total"]), 0.0, atol=0)  # nothing else moves
    # the bottom level is the bottom forecaster's own plan (as a plain forecaster's predict_plan), coherent above
    own = est.bottom_.predict_plan(est.drivers_under(plan).query("unique_id == 'A/L1'"))
    np.testing.assert_allclose(_final(got).loc["total/A/L1"], own["Final"], rtol=1e-12)
    f = _final(got)
    np.testing.assert_allclose(f.loc["total/A"], f.loc[["total/A/L1", "total/A/L2"]].sum(), rtol=1e-9)
    for lv in (80, 95):  # bands as without a plan: every band holds its point
        assert (got[f"Final-lo-{lv}"] <= got["Final"] + 1e-9).all() and (got["Final"] <= got[f"Final-hi-{lv}"] + 1e-9).all()
    # an upper node's value goes to every series below it: A/* = A/L1 and A/L2 planned alike
    by_sku = est.predict(X_df=pd.DataFrame({"unique_id": "A/*", "ds": _weeks(est), "promo": 1.0}))
    both = est.predict(X_df=pd.concat([plan, plan.assign(unique_id="A/L2")]))
    pd.testing.assert_frame_equal(by_sku, both)
    # the pyfunc / service table: every level in served ids under the plan
    served = est.predict_frame(plan.assign(h=2))
    assert set(served["unique_id"]) == {"*/*", "A/*", "B/*", "A/L1", "A/L2", "B/L1", "B/L2", "B/L3"}
    s = served.set_index(["unique_id", "ds"])["Final"]
    np.testing.assert_allclose(s.loc["A/*"], _final(got).loc["total/A"].iloc[:2], rtol=1e-12)


def test_an_empty_plan_or_one_repeating_the_default_is_the_unplanned_forecast(fitted):
    for est in fitted.values():
        base = est.predict()
        pd.testing.assert_frame_equal(est.predict(X_df=pd.DataFrame(columns=["unique_id", "ds", "promo"])), base)
        pd.testing.assert_frame_equal(est.predict(X_df=est.future_drivers()), base)
        pd.testing.assert_frame_equal(est.predict(2, X_df=est.future_drivers().assign(promo=np.nan)), est.predict(2))


def test_mint_moves_every_level_by_its_planned_series_moves_and_nothing_else(fitted):
    """The upper levels read no drivers; their own forecasts are moved by the sum of their series' moves
    before MinTrace, so the plan reaches the parents whole (it reached the total by a fraction and moved
    unplanned series by up to 1.3 units when the parents' forecasts stayed unplanned)."""
    est, plain = fitted["mint_ols"], fitted["bottom_up"]
    plan = pd.DataFrame({"unique_id": "A/L1", "ds": _weeks(est), "promo": 1.0})
    base = _final(est.predict())
    got = _final(est.predict(X_df=plan))
    np.testing.assert_allclose(got.loc["total/A"], got.loc[["total/A/L1", "total/A/L2"]].sum(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got.loc["total"], got.loc[["total/A", "total/B"]].sum(), rtol=1e-5, atol=1e-4)
    d = got - base
    # the planned series moves as the bottom forecaster's own plan moves it (as under bottom-up) ...
    lift = (_final(plain.predict(X_df=plan)) - _final(plain.predict())).loc["total/A/L1"]
    assert (lift > 0.5).all()
    for node in ("total/A/L1", "total/A", "total"):  # ... and so does every parent
        np.testing.assert_allclose(d.loc[node], lift, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(d.drop(index=["total/A/L1", "total/A", "total"]), 0.0, atol=1e-3)  # nothing else


def test_bad_plans_are_refused_naming_the_ids(fitted):
    est = fitted["bottom_up"]
    w = _weeks(est)
    with pytest.raises(ValueError, match=r"1 id\(s\) that are not series of the hierarchy, e\.g\. \['X/L9'\]"):
        est.predict(X_df=pd.DataFrame({"unique_id": ["X/L9", "A/L1"], "ds": [w[0]] * 2, "promo": 1.0}))
    # an upper node planned against one of its children
    with pytest.raises(ValueError, match=r"different ids \['A/\*', 'A/L1'\]: e\.g\. promo of A/L1 at .*: A/\* sets 1, "
                                         r"A/L1 sets 0"):
        est.predict(X_df=pd.DataFrame({"unique_id": ["A/*", "A/L1"], "ds": [w[0]] * 2, "promo": [1.0, 0.0]}))
    with pytest.raises(ValueError, match=r"different ids \['\*/\*', 'B/\*'\]"):
        est.predict(X_df=pd.DataFrame({"unique_id": ["*/*", "B/*"], "ds": [w[1]] * 2, "promo": [1.0, 0.5]}))
    # the same value through a parent and a child is consistent
    est.predict(X_df=pd.DataFrame({"unique_id": ["A/*", "A/L1"], "ds": [w[0]] * 2, "promo": [1.0, 1.0]}))
    with pytest.raises(ValueError, match=r"ds is not a forecast period, e\.g\. \['2030-01-07'\]"):
        est.predict(X_df=pd.DataFrame({"unique_id": ["A/L1"], "ds": ["2030-01-07"], "promo": 1.0}))
    with pytest.raises(ValueError, match=r"\['price'\] are not drivers of this forecaster"):
        est.predict(X_df=pd.DataFrame({"unique_id": ["A/L1"], "ds": [w[0]], "price": 1.0}))
    with pytest.raises(ValueError, match=r"not finite numbers in 1 row"):
        est.predict(X_df=pd.DataFrame({"unique_id": ["A/L1"], "ds": [w[0]], "promo": np.inf}))


def test_range_warnings_name_the_ids_as_sent(fitted):
    """A plan row for a summed id (A/*, */*) with a promo outside the trained 0 .. 1 was warned about as the
    series it was spread to (A/L1, A/L2, ...) and counted once per series (3 rows sent: '8 of 8 planned
    rows'); the warning now counts the rows sent and names each id as sent, with how many series it reached."""
    from models.demand_driver_range import warning_text

    est = fitted["bottom_up"]
    w = _weeks(est)
    plan = pd.DataFrame({"unique_id": ["A/*", "*/*", "B/L1", "B/L2"], "ds": [w[0], w[1], w[2], w[0]],
                         "promo": [5.0, 3.0, 2.0, 1.0]})
    got = est.driver_range_warnings(plan)
    raw = [x for x in got if "kind" not in x]
    assert [(x["driver"], x["rows"], x["of_rows"], x["above"], x["below"]) for x in raw] == [("promo", 3, 4, 3, 0)]
    assert [(e["unique_id"], e["value"], e.get("series"), e.get("series_outside")) for e in raw[0]["examples"]] == [
        ("A/*", 5.0, 2, 2), ("*/*", 3.0, 5, 5), ("B/L1", 2.0, None, None)]
    assert (f"in 3 of 4 planned rows (3 above 1), e.g. (series, date, promo) A/* {w[0].date()} 5 (its 2 series), "
            f"*/* {w[1].date()} 3 (its 5 series), B/L1 {w[2].date()} 2; ") in warning_text(raw[0])
    # each relative example is one of the id's own series outside (its value / that series' mean)
    rel = next(x for x in got if x.get("kind"))
    assert [e["unique_id"] for e in rel["examples"]] == ["A/*", "*/*", "B/L1"] and rel["of_rows"] == 4
    # the plan itself is what it was: the summed ids still reach every series below them
    assert est.bottom_plan(plan).set_index("unique_id").loc["A/L2", "promo"].tolist() == [5.0, 3.0]


def test_a_series_without_a_forecast_is_refused_by_name_and_skipped_under_its_parent():
    est = HierarchicalDemandForecaster(("sku", "location"), forecaster=KW).fit(_book(short=True))
    assert "B/L3" not in set(est.bottom_.forecast_["unique_id"])
    w = _weeks(est)
    with pytest.raises(ValueError, match=r"1 SKU x location series without a forecast to re-run .* e\.g\. \['B/L3'\]"):
        est.predict(X_df=pd.DataFrame({"unique_id": "B/L3", "ds": w, "promo": 1.0}))
    by_sku = est.predict(X_df=pd.DataFrame({"unique_id": "B/*", "ds": w, "promo": 1.0}))
    children = est.predict(X_df=pd.DataFrame({"unique_id": ["B/L1"] * 3 + ["B/L2"] * 3, "ds": w * 2, "promo": 1.0}))
    pd.testing.assert_frame_equal(by_sku, children)


def test_the_planned_default_applies_and_is_saved(fitted, tmp_path):
    df = _book()
    est = HierarchicalDemandForecaster(("sku", "location"), forecaster=KW).fit(df)
    w = _weeks(est)
    campaign = pd.DataFrame({"unique_id": ["A/L2", "B/L2"], "ds": [w[1], w[2]], "promo": 1.0})
    base, planned = est.predict(), est.predict(X_df=campaign)
    est.set_planned_drivers(campaign)  # as training does with the promotions table's next campaigns
    pd.testing.assert_frame_equal(est.predict(), planned)
    assert est.future_drivers().query("promo > 0")[["unique_id", "ds"]].values.tolist() == campaign[
        ["unique_id", "ds"]].values.tolist()
    # a plan over the default: its cells replace the campaign's, the rest keeps it
    off = est.predict(X_df=campaign.iloc[:1].assign(promo=0.0))
    np.testing.assert_allclose(_final(off).loc["total/B/L2"], _final(planned).loc["total/B/L2"], rtol=1e-12)
    np.testing.assert_allclose(_final(off).loc["total/A/L2"], _final(base).loc["total/A/L2"], rtol=1e-12)
    assert _final(off).loc["total/A/L2", w[1]] < _final(planned).loc["total/A/L2", w[1]]
    est.save(tmp_path / "h")
    pd.testing.assert_frame_equal(HierarchicalDemandForecaster.load(tmp_path / "h").predict(), planned)
    # the logged model's input columns name the plan's
    assert est.pyfunc_input_columns()[2:] == [("ds", "datetime", False), ("promo", "double", False)]
