"""Planned promotions (``data.promotions``): the contract table is validated row by row, and with
``demand.drivers: [promo]`` on an order book it gives the promo driver, the share of each period under
a campaign for the series' SKU (and location), known ahead, instead of the share of units sold on
promotion (0 wherever nothing sold: a leak, training.demand_driver_leaks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support_promotions import _calendar_book

from features.demand import planned_promo_share
from training.validate import validate_promotions


def test_the_table_is_validated_row_by_row():
    raw = pd.DataFrame({
        "sku": ["A", "B", "", "C", "D", "E"],
        "start_date": ["2024-01-03", "2024-02-01", "2024-01-01", "2024-03-10", "not a date", "2024-04-01"],
        "end_date": ["2024-01-05", "2024-02-14", "2024-01-02", "2024-03-01", "2024-03-02", "2024-04-02"],
        "location": ["", "north", "x", "y", "z", None],
        "discount": ["0.15", "1.5", "", "0.1", "0.2", "-0.1"],
    })
    out, rep = validate_promotions(raw, source="promo.csv")
    # the empty SKU, the end before its start and the unreadable start are dropped, each under its reason
    assert out["sku"].tolist() == ["A", "B", "E"]
    assert {k: v["rows"] for k, v in rep.reasons.items()} == {"missing_sku": 1, "end_before_start": 1,
                                                               "unparseable_start_date": 1}
    assert out["location"].tolist() == ["ALL", "north", "ALL"]  # empty: every location
    assert out["start_date"].tolist() == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-02-01"),
                                          pd.Timestamp("2024-04-01")]
    # a discount is a share: 1.5 and -0.1 are set to empty, the rows kept
    np.testing.assert_array_equal(out["discount"].to_numpy(), [0.15, np.nan, np.nan])
    assert rep.stats == {"skus": 3, "campaign_days": 3 + 14 + 2}


def _cal(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sku", "location", "start_date", "end_date"]).assign(
        start_date=lambda t: pd.to_datetime(t["start_date"]), end_date=lambda t: pd.to_datetime(t["end_date"]))


def test_the_share_of_each_period_under_a_campaign():
    weeks = pd.date_range("2024-01-01", periods=3, freq="W-MON")  # Mondays 1, 8, 15 January
    series = pd.DataFrame({"unique_id": ["A/n"] * 3 + ["A/s"] * 3 + ["B/n"] * 3, "ds": list(weeks) * 3,
                           "sku": ["A"] * 6 + ["B"] * 3, "location": ["n"] * 3 + ["s"] * 3 + ["n"] * 3})
    cal = _cal([
        ("A", "ALL", "2024-01-03", "2024-01-05"),  # Wed-Fri of week 1, every location
        ("A", "n", "2024-01-05", "2024-01-09"),    # Fri week 1 (again) to Tue week 2, north only
        ("B", "s", "2024-01-01", "2024-01-21"),    # B in the south: not B/n
    ])
    got = planned_promo_share(series, cal, "W")
    # A/n: week 1 Wed-Sun = 5 days (Fri counted once), week 2 Mon-Tue = 2; A/s: the ALL campaign only
    np.testing.assert_allclose(got, [5 / 7, 2 / 7, 0, 3 / 7, 0, 0, 0, 0, 0])
    # a series over all locations of a SKU counts a campaign at any of them
    by_sku = series[series["location"] == "n"].drop(columns="location").assign(unique_id=lambda t: t["sku"])
    np.testing.assert_allclose(planned_promo_share(by_sku, cal, "W"), [5 / 7, 2 / 7, 0, 1, 1, 1])
    # months: days over the month's own length (February 2024 has 29)
    months = pd.DataFrame({"unique_id": "A", "sku": "A", "ds": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    feb = _cal([("A", "ALL", "2024-01-30", "2024-02-02")])
    np.testing.assert_allclose(planned_promo_share(months, feb, "M"), [2 / 31, 2 / 29])
    assert planned_promo_share(series, cal.iloc[:0], "W").tolist() == [0.0] * 9


def _book(tmp_path, promotions: str | None, levels: str = "[sku, location]") -> object:
    from training.config import load_config

    rows = []
    for i, d in enumerate(pd.date_range("2024-01-03", periods=30, freq="W-WED")):
        for sku, loc in (("A", "n"), ("A", "s"), ("B", "n")):
            if (i + len(sku) + len(loc)) % 3:
                rows.append({"order_id": f"o{i}{sku}{loc}", "order_date": f"{d:%Y-%m-%d}", "account_id": "a",
                             "sku": sku, "location": loc, "quantity": 2, "unit_price": 1.0, "promo": int(i % 5 == 0)})
    # a cancellation on 5 April of units sold on 27 March: the book as it stood on 1 April differs (history_as_of)
    rows.append({"order_id": "Cx", "order_date": "2024-04-05", "account_id": "a", "sku": "A", "location": "n",
                 "quantity": -1, "unit_price": 1.0, "promo": 0})
    pd.DataFrame(rows).to_csv(tmp_path / "lines.csv", index=False)
    (tmp_path / "promo.csv").write_text("sku,start_date,end_date,location\nA,2024-02-05,2024-02-18,\n"
                                        "B,2024-03-04,2024-03-06,n\n")
    data = f"  promotions: {{path: {promotions}}}\n" if promotions else ""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {tmp_path / 'lines.csv'}, cancellation_prefix: C}}\n{data}"
                   f"demand: {{freq: W, horizon: 3, windows: 1, drivers: [promo], levels: {levels}}}\n")
    return load_config(cfg)


def test_the_promo_driver_comes_from_the_calendar_and_is_not_warned(tmp_path, monkeypatch):
    from training.demand_config import load_demand_series

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    df, info = load_demand_series(_book(tmp_path, str(tmp_path / "promo.csv")))
    assert info.get("driver_leaks") is None
    got = df.set_index(["unique_id", "ds"])["promo"]
    # A (every location) on promotion the weeks of 5 and 12 February, whole; B at n three days of 4 March
    on = got[got > 0]
    assert on.to_dict() == {("A/n", pd.Timestamp("2024-02-05")): 1.0, ("A/n", pd.Timestamp("2024-02-12")): 1.0,
                            ("A/s", pd.Timestamp("2024-02-05")): 1.0, ("A/s", pd.Timestamp("2024-02-12")): 1.0,
                            ("B/n", pd.Timestamp("2024-03-04")): pytest.approx(3 / 7)}
    # without the table: the share sold on promotion, and the warning
    df2, info2 = load_demand_series(_book(tmp_path, None))
    assert len(info2["driver_leaks"]) == 1 and "leave promo out of demand.drivers" in info2["driver_leaks"][0]
    assert ((df2["y"] == 0) <= (df2["promo"] == 0)).all()


def test_each_backtest_window_reads_the_calendar_too(tmp_path, monkeypatch):
    """The order book as it stood at a cutoff (history_as_of, used by every backtest window when cancellations
    net earlier lines) carries the same planned promo, not the share sold."""
    from training.data import load_order_book
    from training.demand_config import _history_as_of, demand_settings

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, str(tmp_path / "promo.csv"))
    book = load_order_book(cfg)
    s = demand_settings(cfg)
    lines = book.order_lines
    as_of = _history_as_of(book, s, ["sku", "location"], start=lines["order_date"].min())
    frame = as_of(pd.Timestamp("2024-04-01"))
    assert frame is not None  # the cancellation of 5 April had not been made yet
    on = frame.loc[frame["promo"] > 0, ["unique_id", "ds"]].astype(str).agg(" ".join, axis=1).tolist()
    assert on == ["A/n 2024-02-05", "A/n 2024-02-12", "A/s 2024-02-05", "A/s 2024-02-12", "B/n 2024-03-04"]


def test_series_without_a_sku_level_cannot_match_campaigns(tmp_path, monkeypatch):
    from training.demand_config import load_demand_series
    from training.errors import ConfigError

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError, match=r"data.promotions: the promo driver matches campaigns to each series' SKU; "
                                          r"demand.levels \['location'\] has no sku"):
        load_demand_series(_book(tmp_path, str(tmp_path / "promo.csv"), levels="[location]"))


def test_data_validate_reports_the_table(tmp_path, monkeypatch):
    from training.data import load_order_book

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    (tmp_path / "bad.csv").write_text("sku,start_date,end_date\nA,2024-02-05,2024-02-18\nB,2024-03-09,2024-03-01\n")
    book = load_order_book(_book(tmp_path, str(tmp_path / "bad.csv")))
    rep = book.report.tables["promotions"]
    assert (rep.rows_in, rep.rows_out) == (2, 1) and list(rep.reasons) == ["end_before_start"]
    assert book.promotions["sku"].tolist() == ["A"]


def test_planned_drivers_become_the_forecasts_default_plan():
    """set_planned_drivers: predict() without X_df, future_drivers() and the template follow the planned values;
    cells not given keep the carried value; a plan passed later is run from the fit, as before."""
    from models.demand import DemandForecaster

    rng = np.random.default_rng(0)
    ds = pd.date_range("2022-01-03", periods=80, freq="W-MON")
    rows = []
    for i in range(6):
        promo = (rng.random(80) < 0.25).astype(float)
        y = rng.poisson(5 + 15 * promo).astype(float)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y, "promo": promo}))
    df = pd.concat(rows, ignore_index=True)
    df.loc[df["ds"] == ds[-1], "promo"] = 0.0  # no campaign in the last week: carried, none ahead
    est = DemandForecaster(freq="W", h=4, models=("AutoETS", "LightGBM"), exog=["promo"], selection_windows=1,
                           lgbm_params={"n_estimators": 40}, random_state=0).fit(df)
    carried = est.predict()
    template = est.future_drivers()
    assert (template["promo"] == 0).all()
    plan = template.iloc[[0, 5]].assign(promo=1.0)  # s0 in week 1 and s1 in week 2 on promotion
    est.set_planned_drivers(plan.assign(extra=7.0))  # a column that is no driver is ignored
    got = est.predict()
    want = est.predict(X_df=template.set_index(["unique_id", "ds"]).assign(
        promo=lambda t: t["promo"].where(~t.index.isin(plan.set_index(["unique_id", "ds"]).index), 1.0)).reset_index())
    pd.testing.assert_frame_equal(got, want)
    moved = got["LightGBM"].to_numpy() != carried["LightGBM"].to_numpy()
    assert set(got.loc[moved, "unique_id"]) <= {"s0", "s1"} and moved.any()
    assert got.loc[0, "LightGBM"] > carried.loc[0, "LightGBM"]  # a campaign lifts the member's forecast
    assert est.future_drivers()["promo"].tolist() == [1.0 if i in (0, 5) else 0.0 for i in range(len(template))]
    # a plan passed to predict is still run from the fit (the carried values elsewhere), not from the default
    pd.testing.assert_frame_equal(est.predict(X_df=template), carried)


def test_forecast_plans_the_calendars_future_campaigns(tmp_path, monkeypatch):
    """forecast --config with data.promotions: a campaign after the history is in the drivers it used
    (--drivers-out), and tune demand's final model is given the same plan."""
    from typer.testing import CliRunner

    from training.cli import app
    from training.config import load_config
    from training.demand_tuning import tuning_target

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _calendar_book(tmp_path)
    out, used = tmp_path / "fc.csv", tmp_path / "drivers.csv"
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(out), "--drivers-out", str(used)])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output  # the calendar, not the share sold: nothing leaks
    # the note names where the plan came from: the calendar, not a carried last value
    assert "drivers ['promo']: ['promo'] from the promotions table (data.promotions" in res.output, res.output
    assert "carried forward" not in res.output
    d = pd.read_csv(used)
    on = d.loc[d["promo"] > 0, ["unique_id", "ds"]].values.tolist()
    assert on == [["A", "2024-09-23"]], d
    fc = pd.read_csv(out)
    assert fc["ds"].unique().tolist() == ["2024-09-16", "2024-09-23", "2024-09-30"]
    target = tuning_target(load_config(cfg))
    plan = target.planned_drivers(3)
    assert plan.loc[plan["promo"] > 0, ["unique_id", "ds"]].astype(str).values.tolist() == [["A", "2024-09-23"]]
