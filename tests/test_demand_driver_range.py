"""Planned driver values outside the range the LightGBM member's forecast responds to: fit records each
driver's k-th smallest / largest value (k = min_child_samples: a split needs k training rows each side)
and its (min, max) over the member's training rows (``driver_ranges_``); a plan is checked against
the first two (``models.demand_driver_range.out_of_range``, ``DemandForecaster.driver_range_warnings``) and
``dealerml forecast --future`` warns, naming the driver, the rows, the range and the first rows.
A forecaster saved before the ranges were recorded checks nothing and does not fail; one whose member
recorded min / max only is checked against them. The member also
reads each driver divided by its series' mean: fit records that range too (``driver_relative_ranges_``)
and a plan's multiples of its series' mean outside it get their own entry (``kind``); a forecaster saved
before that record gets the raw check only. The service's answers are in test_serving_driver_range.py."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from _support_driver_range import (
    HI,
    KHI,
    KLO,
    LO,
    H,
    K,
    _fit_levels,
    _fit_prices,
    _kth,
    _level_panel,
    _old,
    _price_panel,
    _rng,
    _trained,
)
from typer.testing import CliRunner

from models.demand import DemandForecaster
from models.demand_driver_range import RELATIVE, out_of_range, warning_text
from training.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted() -> DemandForecaster:
    return _fit_prices()


@pytest.fixture(scope="module")
def levels() -> DemandForecaster:
    return _fit_levels()


def _plan(est: DemandForecaster) -> pd.DataFrame:
    """The template with s1 40 % above the max in its 2nd period and at the max in its 3rd, s2 just
    above the max and s4 below the min in their 1st, s5 at the min in its 3rd (each beyond KLO .. KHI)."""
    plan = est.future_drivers()
    d = sorted(plan["ds"].unique())
    for uid, k, v in (("s1", 1, HI * 1.4), ("s1", 2, HI), ("s2", 0, 12.6), ("s4", 0, 7.0), ("s5", 2, LO)):
        plan.loc[(plan["unique_id"] == uid) & (plan["ds"] == d[k]), "price"] = v
    return plan


def _raw(warned: list[dict] | None) -> list[dict]:
    """The entries of the raw-value check (those of the check relative to each series' mean have a ``kind``)."""
    return [w for w in warned or [] if "kind" not in w]


def test_fit_records_the_range_of_the_training_rows_only(fitted):
    # not 100 (first periods are never a training row)
    assert fitted.driver_ranges_ == {"price": (KLO, KHI, LO, HI, K)}
    assert (KLO, KHI) == (8.16, 11.84)
    rel = _trained(_price_panel()).assign(m=lambda t: t["unique_id"].map(_price_panel().groupby("unique_id")["price"].mean()))
    want = (*_kth(rel["price"] / rel["m"]), (rel["price"] / rel["m"]).min(), (rel["price"] / rel["m"]).max())
    assert fitted.driver_relative_ranges_["price"] == (*(pytest.approx(v, rel=1e-6) for v in want), K)
    df = _price_panel()
    assert df["price"].max() == 100.0
    # a forecaster without a member that reads drivers has nothing to check
    stat = DemandForecaster(freq="W", h=H, models=("AutoETS",), exog=["price"], selection_windows=1).fit(df)
    assert stat.driver_ranges_ == {} and stat.driver_range_warnings(_plan(stat)) == []


def test_a_plan_outside_the_range_is_counted_with_its_first_rows(fitted):
    plan = _plan(fitted)
    d = sorted(plan["ds"].unique())
    got = fitted.driver_range_warnings(plan)
    # s1's 12.5 and s5's 7.5 (the max and the min) are beyond KHI / KLO
    assert _raw(got) == [{"driver": "price", "rows": 5, "of_rows": 6 * H, "below": 2, "above": 3, **_rng(fitted),
                    "examples": [{"unique_id": "s1", "ds": pd.Timestamp(d[1]), "value": pytest.approx(17.5)},
                                 {"unique_id": "s1", "ds": pd.Timestamp(d[2]), "value": 12.5},
                                 {"unique_id": "s2", "ds": pd.Timestamp(d[0]), "value": 12.6}]}]
    # the same rows are also beyond the multiples of their series' mean trained on (the next entry)
    assert [(w["kind"], w["rows"], w["below"], w["above"]) for w in got[1:]] == [(RELATIVE, 5, 2, 3)]
    # inside the range (the edges included): nothing
    assert _raw(fitted.driver_range_warnings(fitted.future_drivers().assign(price=KHI))) == []
    inside = plan.assign(price=plan["price"].clip(KLO, KHI))
    assert _raw(fitted.driver_range_warnings(inside)) == []
    # only the planned series are read (a plan for s4 alone)
    only = fitted.driver_range_warnings(plan[plan["unique_id"] == "s4"])
    assert [(w["rows"], w["of_rows"], w["below"], w["above"]) for w in only] == [(1, H, 1, 0), (1, H, 1, 0)]


def test_the_member_does_not_respond_beyond_the_edge(fitted):
    """Why the warning: the K-th largest price, the highest price seen and 40 % above it give the same
    forecast (no split has fewer than K training rows above it); so do the K-th smallest and the lowest.
    Every split the booster made on price lies in KLO .. KHI."""
    plan = _plan(fitted)
    s1 = plan["unique_id"] == "s1"
    # the relative price too (each series' mean is near 11.5: KHI / 11.5 is past its K-th largest multiple)
    at = {v: fitted.predict_plan(plan[s1].assign(price=v))["LightGBM"].to_numpy() for v in (KHI, HI, HI * 1.4)}
    np.testing.assert_array_equal(at[KHI], at[HI])
    np.testing.assert_array_equal(at[HI], at[HI * 1.4])
    m = fitted.lgbm_["model"]
    tree = m.booster_.trees_to_dataframe()
    for j, (lo, hi) in enumerate(m.x_split_range_.T):
        thr = tree.loc[tree["split_feature"] == f"Column_{m.booster_.num_feature() - 2 + j}", "threshold"]
        assert len(thr) and thr.min() >= lo and thr.max() < hi, (j, thr.min(), thr.max(), lo, hi)


def test_one_extreme_row_no_longer_stretches_the_range():
    """s2's price is 60 in one period: the max is 60, but the forecast responds only up to the K-th largest
    price (< 12), so a plan at 30 (inside min .. max) is said, and 30 and 60 forecast the same."""
    df = _price_panel()
    df.loc[(df["unique_id"] == "s2") & (df["ds"] == df["ds"].unique()[30]), "price"] = 60.0
    est = DemandForecaster(freq="W", h=H, models=("AutoETS", "LightGBM"), exog=["price"], selection_windows=1,
                           lgbm_params={"n_estimators": 30}, random_state=0).fit(df)
    lo, hi = _kth(_trained(df)["price"])
    assert hi < 12 and est.driver_ranges_ == {"price": (lo, hi, LO, 60.0, K)}
    plan = est.future_drivers().assign(price=10.0)
    s1 = plan["unique_id"] == "s1"
    plan.loc[s1, "price"] = 30.0
    got = _raw(est.driver_range_warnings(plan))
    assert [(w["rows"], w["above"], w["below"], w["max"], w["hi"]) for w in got] == [(H, H, 0, 60.0, hi)]
    assert warning_text(got[0]).startswith(
        f"price is outside the range the forecast responds to in {H} of {6 * H} planned rows ({H} above {hi}), ")
    a = est.predict_plan(plan[s1])["LightGBM"].to_numpy()
    b = est.predict_plan(plan[s1].assign(price=60.0))["LightGBM"].to_numpy()
    np.testing.assert_array_equal(a, b)


def test_out_of_range_is_pure_and_reads_given_cells_only():
    ranges = {"price": (1.0, 2.0), "promo": (0.0, 1.0), "unused": (0.0, 1.0)}
    plan = pd.DataFrame({"unique_id": ["a", "a", "b", "b", "c", "c"],
                         "ds": pd.to_datetime(["2024-01-01", "2024-01-08"] * 3),
                         "price": [3.0, np.nan, 0.5, 4.0, 5.0, 1.5],
                         "promo": [0.0, 1.0, 0.5, 0.0, 1.0, 0.0]})
    before = plan.copy()
    got = out_of_range(plan, ranges, examples=2)
    pd.testing.assert_frame_equal(plan, before)  # the caller's table is not changed
    # price: 3, 4, 5 above, 0.5 below, the empty cell not read; promo: all inside; "unused": not in the plan
    assert got == [{"driver": "price", "rows": 4, "of_rows": 5, "below": 1, "above": 3, "min": 1.0, "max": 2.0,
                    "examples": [{"unique_id": "a", "ds": pd.Timestamp("2024-01-01"), "value": 3.0},
                                 {"unique_id": "b", "ds": pd.Timestamp("2024-01-01"), "value": 0.5}]}]
    assert out_of_range(plan, None) == [] and out_of_range(plan, {}) == []
    assert warning_text(got[0]) == (
        "price is outside the range the forecaster was trained on in 4 of 5 planned rows (3 above its max, 1 below "
        "its min; trained on 1 .. 2), e.g. (series, date, price) a 2024-01-01 3, b 2024-01-01 0.5, ...; the LightGBM "
        "member (the one that reads drivers) treats such values as the nearest edge of that range (1 or 2); the "
        "forecast still moves with such a price where its multiple of its series' mean is inside the range of those "
        "(checked on its own)")
    # a range with the K-th values (lo, hi, min, max, k): checked against lo .. hi, min / max kept
    got = out_of_range(plan, {"price": (1.0, 2.0, -3.0, 4.5, 20)}, examples=2)
    assert got == [{"driver": "price", "rows": 4, "of_rows": 5, "below": 1, "above": 3, "min": -3.0, "max": 4.5,
                    "lo": 1.0, "hi": 2.0, "min_child_samples": 20,
                    "examples": [{"unique_id": "a", "ds": pd.Timestamp("2024-01-01"), "value": 3.0},
                                 {"unique_id": "b", "ds": pd.Timestamp("2024-01-01"), "value": 0.5}]}]
    assert warning_text(got[0]) == (
        "price is outside the range the forecast responds to in 4 of 5 planned rows (3 above 2, 1 below 1), e.g. "
        "(series, date, price) a 2024-01-01 3, b 2024-01-01 0.5, ...; the forecast responds to price only between 1 "
        "and 2: the LightGBM member (the one that reads drivers) needs 20 training rows on each side of a split, and "
        "its training rows span -3 .. 4.5, so its trees treat any price at or above 2 as 2 and any at or below 1 as "
        "1; the forecast still moves with such a price where its multiple of its series' mean is inside the range of "
        "those (checked on its own)")


def test_rows_spread_from_a_sent_row_are_counted_and_shown_as_sent():
    """A hierarchy spreads a plan row for a summed id (A/*) over the series below it; the check reads each,
    but the warning counted them one by one and named them (a/1, a/2), not the row the planner wrote.
    With SENT_ROW / SENT_ID the rows are counted as sent and an example is the id as sent."""
    from models.demand_driver_range import SENT_ID, SENT_ROW

    ds = pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15"])
    plan = pd.DataFrame({"unique_id": ["a/1", "a/2", "b/1", "a/1", "a/2", "b/1"],
                         "ds": [ds[0], ds[0], ds[1], ds[2], ds[2], ds[2]],
                         "price": [3.0, 3.0, 0.5, 1.5, 1.5, 1.5],
                         SENT_ROW: [0, 0, 1, 2, 2, 2], SENT_ID: ["a/*", "a/*", "b/1", "*/*", "*/*", "*/*"]})
    got = out_of_range(plan, {"price": (1.0, 2.0)})
    assert got == [{"driver": "price", "rows": 2, "of_rows": 3, "below": 1, "above": 1, "min": 1.0, "max": 2.0,
                    "examples": [{"unique_id": "a/*", "ds": ds[0], "value": 3.0, "series": 2, "series_outside": 2},
                                 {"unique_id": "b/1", "ds": ds[1], "value": 0.5}]}]
    assert warning_text(got[0]).startswith(
        "price is outside the range the forecaster was trained on in 2 of 3 planned rows (1 above its max, 1 below its "
        "min; trained on 1 .. 2), e.g. (series, date, price) a/* 2024-01-01 3 (its 2 series), b/1 2024-01-08 0.5; ")
    # relative to each series' own mean: */* is outside for one of its three series only
    refs = {"price": np.array([2.0, 1.0, 1.0, 1.0, 1.0, 3.0])}
    got = out_of_range(plan, {}, relative={"price": (0.6, 1.6)}, refs=refs)
    assert [(w["rows"], w["of_rows"], w["below"], w["above"]) for w in got] == [(3, 3, 2, 1)]
    assert got[0]["examples"] == [
        {"unique_id": "a/*", "ds": ds[0], "value": 3.0, "relative": 3.0, "series": 2, "series_outside": 1},
        {"unique_id": "b/1", "ds": ds[1], "value": 0.5, "relative": 0.5},
        {"unique_id": "*/*", "ds": ds[2], "value": 1.5, "relative": 0.5, "series": 3, "series_outside": 1}]
    assert "e.g. (series, date, price (x its series' mean)) a/* 2024-01-01 3 (1 of its 2 series, e.g. 3.00 x), b/1 " \
           "2024-01-08 0.5 (0.50 x), */* 2024-01-15 1.5 (1 of its 3 series, e.g. 0.50 x); " in warning_text(got[0])


def test_a_member_fitted_before_the_kth_values_is_checked_against_min_max(fitted, tmp_path):
    """A forecaster saved with x_range_ only: its min / max are the range, with the old words; no crash."""
    from models.demand_driver_range import training_ranges

    old = copy.deepcopy(fitted)
    del old.lgbm_["model"].x_split_range_
    assert training_ranges(old.lgbm_, ["price"]) == {"price": (LO, HI)}
    old.driver_ranges_ = training_ranges(old.lgbm_, ["price"])  # as its fit recorded them
    old.driver_relative_ranges_ = training_ranges(old.lgbm_, ["price"], relative=True)
    old.save(tmp_path / "m")
    back = DemandForecaster.load(tmp_path / "m")
    got = back.driver_range_warnings(_plan(back))
    assert [(w.get("kind"), w["rows"], w["below"], w["above"], w["min"], w["max"], "lo" in w) for w in got] == [
        (None, 3, 1, 2, LO, HI, False), (RELATIVE, 3, 1, 2, pytest.approx(0.6549074397485154),
                                         pytest.approx(1.0914012136381495), False)]
    assert warning_text(got[0]).endswith("trained on 7.5 .. 12.5), e.g. (series, date, price) s1 2022-03-07 17.5, "
                                         "s2 2022-02-28 12.6, s4 2022-02-28 7; the LightGBM member (the one that reads "
                                         "drivers) treats such values as the nearest edge of that range (7.5 or "
                                         "12.5); the forecast still moves with such a price where its multiple of its "
                                         "series' mean is inside the range of those (checked on its own)")
    assert "trained on 0.65 .. 1.09 x its series' mean" in warning_text(got[1])


def test_a_forecaster_saved_before_the_ranges_checks_nothing(fitted, tmp_path, capsys):
    from training.commands.demand_forecast import _predict_with_plan

    plan = _plan(fitted)
    want = fitted.predict(X_df=plan)
    old = pickle.loads(pickle.dumps(_old(fitted)))
    assert not hasattr(old, "driver_ranges_") and old.driver_range_warnings(plan) is None
    pd.testing.assert_frame_equal(old.predict(X_df=plan), want)
    # saved to a directory and loaded (the registry's and the service's path)
    _old(fitted).save(tmp_path / "m")
    with open(tmp_path / "m" / "forecaster.pkl", "rb") as fh:
        assert "driver_ranges_" not in pickle.load(fh)
    back = DemandForecaster.load(tmp_path / "m")
    assert back.driver_ranges_ is None and back.driver_range_warnings(plan) is None
    pd.testing.assert_frame_equal(back.predict_plan(plan), fitted.predict_plan(plan), rtol=1e-12)
    # forecast --future with it: no warning, a note that nothing was checked, the same forecast
    f = tmp_path / "plan.csv"
    plan.to_csv(f, index=False)
    capsys.readouterr()
    fc, note = _predict_with_plan(back, H, f, None)
    assert "warning" not in capsys.readouterr().err
    assert note.endswith("\nthe planned values were not checked against the drivers' training range (this "
                         "forecaster was saved before it recorded them)")
    pd.testing.assert_frame_equal(fc, want, rtol=1e-12)
    # the same model with its ranges warns
    fc, note = _predict_with_plan(fitted, H, f, None)
    err = capsys.readouterr().err
    assert err.startswith(f"warning: --future {f}: price is outside the range the forecast responds to in "
                          "5 of 18 planned rows") and "not checked" not in note


def test_forecast_cli_warns_naming_the_driver_rows_range_and_first_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    data = tmp_path / "s.csv"
    _price_panel().to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: t\nseed: 1\ndata:\n  order_lines:\n    path: {data}\n"
        f"demand:\n  freq: W\n  horizon: {H}\n  windows: 1\n"
        f"  series: {{path: {data}, exog: {{price: price}}}}\n"
        "  models: [AutoETS, LightGBM]\n  lgbm: {n_estimators: 20}\n  selection_windows: 1\n"
    )
    d = pd.date_range("2022-02-28", periods=H, freq="W-MON")  # the 3 weeks after the last (2022-02-21)
    plan = pd.DataFrame({"unique_id": ["s1", "s1", "s4", "s2", "s0"], "ds": [d[1], d[2], d[0], d[0], d[2]],
                         "price": [17.5, 12.5, 7.0, 12.6, 9.0]})
    f = tmp_path / "plan.csv"
    plan.to_csv(f, index=False)
    out = tmp_path / "fc.csv"
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(out), "--future", str(f)])
    assert res.exit_code == 0, res.output
    # 12.5 (the max) is beyond the K-th largest price (KHI) too
    assert (f"warning: --future {f}: price is outside the range the forecast responds to in 4 of 5 planned "
            f"rows (3 above {KHI}, 1 below {KLO}), e.g. (series, date, price) s1 2022-03-07 17.5, s1 2022-03-14 12.5, "
            f"s4 2022-02-28 7, ...; the forecast responds to price only between {KLO} and {KHI}: the LightGBM member "
            f"(the one that reads drivers) needs {K} training rows on each side of a split, and its training rows span "
            f"7.5 .. 12.5, so its trees treat any price at or above {KHI} as {KHI} and any at or below {KLO} as "
            f"{KLO}; the forecast still moves with such a price where its multiple of its series' mean is inside the "
            "range of those (checked on its own)\n") in res.output
    assert f"wrote {6 * H} rows" in res.output and out.is_file()  # a warning, not an error
    # a plan inside the range: no warning
    plan.assign(price=9.0).to_csv(f, index=False)
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(out), "--future", str(f)])
    assert res.exit_code == 0 and "warning" not in res.output, res.output


def test_stallion_price_and_discount_ranges(stallion_path):
    """Four Stallion series (monthly, price_actual and discount_in_percent): the recorded ranges are
    the min / max of the periods after each series' first, and a price 40 % above the highest is said."""
    st = pd.read_parquet(stallion_path, columns=["agency", "sku", "date", "volume", "price_actual",
                                                 "discount_in_percent"])
    uid = st["agency"].astype(str) + "/" + st["sku"].astype(str)
    keep = uid.isin(sorted(uid[st["volume"] > 0].unique())[:4])
    df = pd.DataFrame({"unique_id": uid[keep].values, "ds": st["date"][keep].values, "y": st["volume"][keep].values,
                       "price": st["price_actual"][keep].values, "promo": st["discount_in_percent"][keep].values})
    est = DemandForecaster(freq="M", h=2, models=("AutoETS", "LightGBM"), exog=["price", "promo"], selection_windows=1,
                           lgbm_params={"n_estimators": 20}, random_state=0).fit(df)
    trained = df[df["ds"] > df["ds"].min()]  # every series starts 2013-01; the first month is no training row
    # the K-th smallest / largest (as the booster's float32 reads them), then min / max
    assert est.driver_ranges_ == {c: (*(pytest.approx(v, rel=1e-6) for v in _kth(trained[c])), trained[c].min(),
                                      trained[c].max(), K) for c in ("price", "promo")}
    plan = est.future_drivers()  # each series at its median price (its last one can be beyond the K-th values)
    plan["price"] = plan["unique_id"].map(trained.groupby("unique_id")["price"].median())
    first = plan["unique_id"] == plan["unique_id"].iloc[0]
    plan.loc[first, "price"] = trained["price"].max() * 1.4
    got = est.driver_range_warnings(plan)
    assert [(w["driver"], w["rows"], w["above"], w["below"]) for w in _raw(got)] == [("price", 2, 2, 0)]
    assert got[0]["examples"][0]["unique_id"] == plan["unique_id"].iloc[0]
    # relative to that series' own mean price: beyond the multiples trained on as well (and only there)
    rel = [w for w in got if w.get("kind") == RELATIVE]
    assert [(w["driver"], w["rows"], w["above"]) for w in rel] == [("price", 2, 2)]
    assert {e["unique_id"] for e in rel[0]["examples"]} == {plan["unique_id"].iloc[0]}


# ---- the check relative to each series' own mean ------------------------------------------------------------


def _cut(est: DemandForecaster, changes: list[tuple[str, int, float]]) -> pd.DataFrame:
    """The template (each series' last price, 1.1 x its level, carried forward) with ``(series, period, price)``."""
    plan = est.future_drivers()
    d = sorted(plan["ds"].unique())
    for uid, k, v in changes:
        plan.loc[(plan["unique_id"] == uid) & (plan["ds"] == d[k]), "price"] = v
    return plan


def test_fit_records_the_relative_range(levels):
    # a's 4.5 is in 19 training rows (< K): the K-th smallest price is a's 5
    assert levels.driver_ranges_ == {"price": (*_kth(_trained(_level_panel())["price"]), 4.5, 22.0, K)}
    assert levels.driver_ranges_["price"][:2] == (5.0, 22.0)
    assert levels.driver_relative_ranges_ == {"price": (*[pytest.approx(0.9), pytest.approx(1.1)] * 2, K)}
    np.testing.assert_allclose(levels.lgbm_["ref"][:, 0, 0], [5.0, 10.0, 20.0])  # what the check divides by
    stat = DemandForecaster(freq="W", h=H, models=("AutoETS",), exog=["price"], selection_windows=1).fit(_level_panel())
    assert stat.driver_relative_ranges_ == {}


def test_a_price_cut_inside_the_raw_range_but_far_below_its_series_mean_is_said(levels, tmp_path, capsys):
    """c at 12 (0.6 x its mean of 20) in its first two periods: inside the raw range 4.5 .. 22 (a and b
    were priced so), beyond any multiple of a series' mean trained on (0.9 .. 1.1): one relative entry."""
    from training.commands.demand_forecast import _predict_with_plan

    plan = _cut(levels, [("c", 0, 12.0), ("c", 1, 12.0)])
    d = [str(pd.Timestamp(x).date()) for x in sorted(plan["ds"].unique())]
    got = levels.driver_range_warnings(plan)
    assert got == [{"driver": "price", "kind": RELATIVE, "rows": 2, "of_rows": 3 * H, "below": 2, "above": 0,
                    "min": pytest.approx(0.9), "max": pytest.approx(1.1), "lo": pytest.approx(0.9),
                    "hi": pytest.approx(1.1), "min_child_samples": K,
                    "examples": [{"unique_id": "c", "ds": pd.Timestamp(d[0]), "value": 12.0, "relative": 0.6},
                                 {"unique_id": "c", "ds": pd.Timestamp(d[1]), "value": 12.0, "relative": 0.6}]}]
    text = (f"price relative to its series' mean is outside the range the forecast responds to in 2 of 9 planned "
            f"rows (2 below 0.90 x), e.g. (series, date, price (x its series' mean)) c {d[0]} 12 (0.60 x), c {d[1]} 12 "
            "(0.60 x); the forecast responds to price as a multiple of its series' mean (up to the last date of fit) "
            "only between 0.90 and 1.10 x: the LightGBM member (the one that reads drivers) needs 20 training rows on "
            "each side of a split, and its training rows span 0.90 .. 1.10 x, so its trees treat any multiple at or "
            "above 1.10 x as 1.10 x and any at or below 0.90 x as 0.90 x; the forecast still moves with such a price "
            "where the price itself is inside its range (checked on its own)")
    assert warning_text(got[0]) == text
    # the same 12 for b (1.2 x its mean of 10) is above; every series at its mean: nothing
    assert [(w["rows"], w["below"], w["above"]) for w in levels.driver_range_warnings(_cut(levels, [("b", 2, 12.0)]))
            ] == [(1, 0, 1)]
    assert levels.driver_range_warnings(levels.future_drivers().assign(
        price=lambda t: t["unique_id"].map({"a": 5.0, "b": 10.0, "c": 20.0}))) == []
    # forecast --future says it on its own line, as the raw check's
    f = tmp_path / "plan.csv"
    plan.to_csv(f, index=False)
    capsys.readouterr()
    _predict_with_plan(levels, H, f, None)
    err = capsys.readouterr().err
    assert err == f"warning: --future {f}: {text}\n"


def test_a_row_can_be_outside_both_ranges(levels):
    """a at 3 (below 5 and 0.6 x its mean), c at 30 (above 22 and 1.5 x), c at 12 (0.6 x only): the raw
    entry counts the first two, the relative one all three; the pure check reads the refs it is given."""
    plan = _cut(levels, [("a", 0, 3.0), ("c", 0, 12.0), ("c", 2, 30.0)])
    d = [pd.Timestamp(x) for x in sorted(plan["ds"].unique())]
    got = levels.driver_range_warnings(plan)
    assert [(w.get("kind"), w["rows"], w["of_rows"], w["below"], w["above"]) for w in got] == [
        (None, 2, 9, 1, 1), (RELATIVE, 3, 9, 2, 1)]
    assert got[0]["examples"] == [{"unique_id": "a", "ds": d[0], "value": 3.0},
                                  {"unique_id": "c", "ds": d[2], "value": 30.0}]
    assert got[1]["examples"] == [{"unique_id": "a", "ds": d[0], "value": 3.0, "relative": pytest.approx(0.6)},
                                  {"unique_id": "c", "ds": d[0], "value": 12.0, "relative": 0.6},
                                  {"unique_id": "c", "ds": d[2], "value": 30.0, "relative": 1.5}]
    assert warning_text(got[0]).startswith("price is outside the range the forecast responds to in 2 of 9 "
                                           "planned rows (1 above 22, 1 below 5), ")
    # out_of_range with relative ranges but no refs (or none) is the raw check alone
    refs = {"price": plan["unique_id"].map({"a": 5.0, "b": 10.0, "c": 20.0}).to_numpy()}
    pure = out_of_range(plan, levels.driver_ranges_, relative=levels.driver_relative_ranges_, refs=refs)
    assert pure == got
    assert out_of_range(plan, levels.driver_ranges_, relative=levels.driver_relative_ranges_) == got[:1]


def test_a_forecaster_saved_before_the_relative_ranges_checks_the_raw_range_only(levels, tmp_path):
    plan = _cut(levels, [("a", 0, 3.0), ("c", 0, 12.0), ("c", 2, 30.0)])
    want = levels.driver_range_warnings(plan)[:1]
    old = copy.deepcopy(levels)
    del old.driver_relative_ranges_
    assert pickle.loads(pickle.dumps(old)).driver_range_warnings(plan) == want
    old.save(tmp_path / "m")
    back = DemandForecaster.load(tmp_path / "m")
    assert back.driver_relative_ranges_ is None and back.driver_range_warnings(plan) == want
    pd.testing.assert_frame_equal(back.predict_plan(plan), levels.predict_plan(plan), rtol=1e-12)
