"""Hostile inputs to the demand commands (session 20 hunt): each case a user can write, which
gave a traceback or a silent wrong answer before its fix. Tiny inputs: under a second each
unless said."""

from __future__ import annotations

import pandas as pd
import pytest

from training.config import ExperimentConfig
from training.demand_config import demand_settings
from training.errors import ConfigError, DataError


def _demand_error(**demand) -> list[str]:
    cfg = ExperimentConfig(name="t", data={"order_lines": {"path": "ol.csv"}}, demand=demand)
    with pytest.raises(ConfigError) as err:
        demand_settings(cfg)
    return str(err.value).splitlines()


def test_a_header_only_on_hand_file_with_key_columns_says_it_has_no_rows(tmp_path):
    """`--on-hand` with `sku,location,on_hand` and no data row raised pandas' "Expected a
    one-dimensional object, got a DataFrame" (a traceback) while building the unique_id."""
    from training.commands._demand_on_hand import _read_on_hand

    f = tmp_path / "oh.csv"
    f.write_text("sku,location,on_hand\n")
    with pytest.raises(DataError) as err:
        _read_on_hand(f, ["sku", "location"])
    assert str(err.value) == f"--on-hand {f}: no rows (expected one row per series: unique_id, on_hand)"


def test_on_hand_ids_that_disagree_with_the_key_columns_are_refused_naming_the_rows(tmp_path, monkeypatch):
    """An --on-hand file with both unique_id and sku, location: unique_id won without a word, so the 7
    units its location column counted at north went to A1/south. Rows where they name different series
    are refused, naming the rows and both ids; rows that agree, or whose key columns are empty, are read."""
    from _support_demand import _cli_book
    from typer.testing import CliRunner

    from training.cli import app
    from training.commands._demand_on_hand import _read_on_hand

    f = tmp_path / "oh.csv"
    f.write_text("unique_id,sku,location,on_hand\nA1/north,A1,north,50\nA1/south,A1,north,7\nB2/north,B2,north,5\n"
                 "C3/south,C9,south,11\n")
    want = (f"--on-hand {f}: the columns unique_id and sku, location name different series in 2 row(s), first rows "
            "[2, 4] (1 = the first data row): row 2: unique_id 'A1/south' but sku/location 'A1/north'; row 4: "
            "unique_id 'C3/south' but sku/location 'C9/south'; expected unique_id = sku/location joined with '/' in "
            "every row: correct those rows, or keep only unique_id or only the key columns")
    with pytest.raises(DataError) as err:
        _read_on_hand(f, ["sku", "location"])
    assert str(err.value) == want
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _cli_book(tmp_path)
    out = tmp_path / "ss.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--on-hand", str(f), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [f"error: {want}"]
    assert not out.exists()
    # agreeing ids (spaces around them aside), and a row whose key columns are empty, are read by unique_id
    f.write_text("unique_id,sku,location,on_hand\nA1/north,A1, north ,50\nA1/south,,,7\n")
    oh = _read_on_hand(f, ["sku", "location"])
    assert oh[["unique_id", "on_hand"]].values.tolist() == [["A1/north", 50.0], ["A1/south", 7.0]]


def test_a_lead_time_beyond_the_forecasters_reach_is_named_by_series_not_as_a_horizon(tmp_path, monkeypatch):
    """A lead_times row of 100000 days (a unit slip) made `safety-stock` and `simulate inventory`
    say "horizon h must be an integer between 1 and 520 periods; got 14289" (a horizon nobody set)
    or ask every series for 42879 periods of history; now both name the series, its days and
    the limit, and write nothing."""
    from _support_demand import _cli_book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _cli_book(tmp_path, c3_south_days=100000)
    expected = ("1 series' lead time + review period 1 + 2.326 x the lead-time spread needs a forecast of up to "
                "14288 W periods, beyond the forecaster's 520: C3/south (lead_time_days 100000, lead_time_std_days 0); "
                "check those rows of the order book's lead_times table (else demand.lead_time_days): lead times are in days")
    run = CliRunner()
    out = tmp_path / "ss.csv"
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [f"error: {cfg}: {expected}"]
    assert not out.exists()
    js = tmp_path / "sim.json"
    res = run.invoke(app, ["simulate", "inventory", "--config", str(cfg), "--json", str(js), "--holdout", "8"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines()[-1].endswith(expected), res.output
    assert not js.exists()


def test_the_configs_lead_time_beyond_the_forecasters_reach_names_the_setting():
    from models.inventory import lead_time_periods, lead_times_beyond_forecaster

    W = lead_time_periods
    assert lead_times_beyond_forecaster(W(14, "W"), W(3, "W"), 1, "W") is None
    assert lead_times_beyond_forecaster(W(3600, "W"), 0.0, 1, "W") is None  # 514.3 + 1 periods fit 520
    assert lead_times_beyond_forecaster(W(5000, "W"), W(10, "W"), 1, "W") == (
        "a lead time of 5000 days with a spread of 10 (demand.lead_time_days / lead_time_std_days, or simulate "
        "inventory's --lead-time-days) needs a forecast of 720 W periods "
        "(lead time + review period 1 + 2.326 x the spread, plus one), beyond the forecaster's 520: lead times are in days")
    # daily: 520 days is the reach, so a 600-day lead time is named in days too
    assert "a lead time of 600 days " in lead_times_beyond_forecaster(600.0, 0.0, 1, "D")


def test_demand_lgbm_keys_and_values_are_checked_with_the_section():
    """demand.lgbm went to LightGBM unchecked: a misspelt key crashed with "GlobalLGBM.__init__()
    got an unexpected keyword argument", `n_estimators: many` with "'<=' not supported", and
    `learning_rate: -1` / `objective: foo` with a LightGBMError (tracebacks, after loading the book)."""
    assert _demand_error(lgbm={"num_leafs": 8, "n_estimators": "many", "learning_rate": -1, "objective": "foo",
                               "windows": [0, 4]}) == [
        "t: invalid 'demand' section",
        "  key 'demand.lgbm.windows': every entry must be a whole number of periods >= 1; got [0, 4]",
        "  key 'demand.lgbm.n_estimators': Input should be a valid integer, unable to parse string as an integer; "
        "got 'many'",
        "  key 'demand.lgbm.learning_rate': Input should be greater than 0; got -1",
        "  key 'demand.lgbm.objective': Input should be 'tweedie', 'poisson', 'gamma', 'regression', 'regression_l2', "
        "'l2', 'mse', 'mean_squared_error', 'rmse', 'l2_root', 'root_mean_squared_error', 'regression_l1', 'l1', "
        "'mae', 'mean_absolute_error', 'huber', 'fair', 'quantile', 'mape' or 'mean_absolute_percentage_error'; "
        "got 'foo'",
        "  key 'demand.lgbm.num_leafs': unknown key; did you mean 'num_leaves' or 'num_threads'?",
    ]
    # what the user wrote reaches the forecaster, and nothing else (the defaults stay GlobalLGBM's)
    cfg = ExperimentConfig(name="t", data={"order_lines": {"path": "ol.csv"}},
                           demand={"lgbm": {"n_estimators": 20, "lags": [1, 52]}})
    assert demand_settings(cfg).forecaster_kwargs()["lgbm_params"] == {"n_estimators": 20, "lags": [1, 52]}
    plain = ExperimentConfig(name="t", data={"order_lines": {"path": "ol.csv"}}, demand={"horizon": 4})
    assert demand_settings(plain).forecaster_kwargs()["lgbm_params"] is None


def test_a_key_column_named_twice_and_an_infinite_lead_time_are_refused_with_the_section():
    """demand.levels [sku, sku] crashed with pandas' "cannot insert sku, already exists";
    demand.lead_time_days .inf crashed safety-stock with "cannot convert float infinity to integer"."""
    assert _demand_error(levels=["sku", "sku"], lead_time_days=float("inf"), lead_time_std_days=float("inf")) == [
        "t: invalid 'demand' section",
        "  key 'demand.levels': each key column may be named once; ['sku'] appear more than once in ['sku', 'sku']",
        "  key 'demand.lead_time_days': Input should be a finite number; got inf",
        "  key 'demand.lead_time_std_days': Input should be a finite number; got inf",
    ]


@pytest.mark.parametrize("kind", ["parquet", "csv", "csv_mixed_offsets"])
def test_a_plan_with_zoned_dates_plans_its_wall_clock_periods(tmp_path, kind):
    """`forecast --future` with dates carrying a time zone (a Parquet timestamp in Asia/Tokyo, or
    text with +09:00) read them in UTC: Monday 2024-06-24 00:00+09:00 became Sunday 06-23, and
    the plan was refused as "outside the forecast periods" though it named the right weeks."""
    import pandas as pd

    from training.future_drivers import read_future_drivers

    weeks = pd.date_range("2024-06-24", periods=3, freq="W-MON")
    template = pd.DataFrame({"unique_id": ["a"] * 3, "ds": weeks, "promo": 0.0})
    plan = pd.DataFrame({"unique_id": ["a"] * 3, "ds": weeks, "promo": [1.0, 0.0, 1.0]})
    if kind == "parquet":
        f = tmp_path / "plan.parquet"
        plan.assign(ds=weeks.tz_localize("Asia/Tokyo")).to_parquet(f)
    else:
        f = tmp_path / "plan.csv"
        offsets = ["+09:00", "-05:00", "+09:00"] if kind == "csv_mixed_offsets" else ["+09:00"] * 3
        plan.assign(ds=[f"{d:%Y-%m-%d}T00:00:00{o}" for d, o in zip(weeks, offsets, strict=True)]).to_csv(f, index=False)
    merged, _ = read_future_drivers(f, template)
    assert merged["ds"].tolist() == weeks.tolist()
    assert merged["promo"].tolist() == [1.0, 0.0, 1.0]


def test_features_build_refuses_a_key_named_twice_and_a_horizon_beyond_the_churn_commands(tmp_path, monkeypatch):
    """`features build --levels sku,location,sku` stopped with pandas' "cannot insert sku, already
    exists"; `--horizon-days 100000` with "Out of bounds nanosecond timestamp: 10349251200000000000"
    (the churn commands cap it at 730). Neither writes the folder."""
    from _support_demand import _book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, ["sku", "location"])
    out = tmp_path / "feats"
    run = CliRunner()
    res = run.invoke(app, ["features", "build", "--config", str(cfg), "--cutoff", "2024-05-01", "--out", str(out),
                           "--levels", "sku,location,sku"])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == ("error: --levels names ['sku'] more than once ('sku,location,sku'); give each key "
                                  "column once, e.g. sku,location")
    res = run.invoke(app, ["features", "build", "--config", str(cfg), "--cutoff", "2024-05-01", "--out", str(out),
                           "--horizon-days", "100000"])
    assert res.exit_code == 2 and res.output.strip() == (
        "error: --horizon-days '100000': expected at most 730 (dealerml features build --help lists the options)")
    assert not out.exists()


def _huge_lines(tmp_path, *quantities):
    """``_book``'s order lines with lines of ``quantities`` units of A1 at north in the week of 2023-06-12
    (data rows 201, 202 ...)."""
    from _support_demand import _book

    cfg = _book(tmp_path, ["sku", "location"])
    cfg.write_text(cfg.read_text().replace("demand: {freq: W,", "demand: {horizon: 4, windows: 1, freq: W,"))
    lines = tmp_path / "lines.csv"
    text = lines.read_text().splitlines()
    text += [f"X{i};{13 + i}.06.2023;007;A1;{q};2.5;north" for i, q in enumerate(quantities)]
    lines.write_text("\n".join(text) + "\n")
    return cfg


_DEMAND_RUNS = (["forecast", "--out"], "fc.csv"), (["safety-stock", "--out"], "ss.csv"), (["backtest", "demand", "--json"], "bt.json")


def test_units_too_large_to_add_up_are_named_not_read_as_a_week_without_demand(tmp_path, monkeypatch):
    """Two lines of 1e308 units in one week add up to inf; pandas' compensated sum gave NaN and the
    zero-fill made it a week with no demand: forecasts and stock sized on a silently wrong history.
    Lines each within the order-line bound (6e11 units) whose week adds up past it (1.2e12) are
    named the same way: squared, such figures overflow the bands."""
    from typer.testing import CliRunner

    from features.demand import demand_series
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    ol = pd.DataFrame({"order_date": pd.to_datetime(["2023-06-13", "2023-06-14", "2023-06-20"]),
                       "sku": "A1", "location": "north", "quantity": [1e308, 1e308, 3.0]})
    with pytest.raises(ValueError) as err:
        demand_series(ol, cutoff="2023-06-30", freq="W", levels=("sku", "location"))
    assert str(err.value) == (
        "order_lines.quantity: the units of 1 series-period(s) add up to more than 1,000,000,000,000 units (or more "
        "than a number can hold), e.g. A1/north in the period from 2023-06-12 (its largest line: 1e+308 units); "
        "expected at most 1,000,000,000,000 units per period: check those order lines")
    cfg = _huge_lines(tmp_path, 6e11, 6e11)
    want = ("order_lines.quantity: the units of 1 series-period(s) add up to more than 1,000,000,000,000 units (or more "
            "than a number can hold), e.g. A1/north in the period from 2023-06-12 (its largest line: 6e+11 units); "
            "expected at most 1,000,000,000,000 units per period: check those order lines")
    run = CliRunner()
    for cmd, name in _DEMAND_RUNS:
        out = tmp_path / name
        res = run.invoke(app, [*cmd, str(out), "--config", str(cfg)])
        assert res.exit_code == 2, res.output
        assert res.output.strip().splitlines() == [f"error: {cfg}: {want}"]
        assert not out.exists()


def test_a_huge_but_finite_quantity_is_refused_at_load_naming_rows_and_values(tmp_path, monkeypatch):
    """One order line of 1e300 units (finite, so it passed as a quantity) made safety-stock write an order of
    inf units and an order-up-to of 2.8e299; 1e155 an order of 2.8e154 (its square overflows). Quantities
    beyond 1e12 units (either sign) are refused when the book is read, naming the file, column, rows, values
    and the range expected: by every command that reads the book, with nothing written."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _huge_lines(tmp_path, 1e300, 3, -2e12)
    want = (f"error: {tmp_path / 'lines.csv'}: order_lines.quantity (column 'Qty') holds 2 value(s) beyond "
            "1,000,000,000,000 (either sign), e.g. 1e+300, -2000000000000.0 (first rows [201, 203]; 1 = the first "
            "data row); expected a number of units per order line between -1,000,000,000,000 and "
            "1,000,000,000,000: check those rows (a figure in another unit, or an id or amount in the quantity column)")
    run = CliRunner()
    for cmd, name in (*_DEMAND_RUNS, (["data", "validate", "--json"], "q.json")):
        out = tmp_path / name
        res = run.invoke(app, [*cmd, str(out), "--config", str(cfg)])
        assert res.exit_code == 2, res.output
        assert res.output.strip().splitlines() == [want]
        assert not out.exists()
    # at the bound itself the line is read (a trillion units is odd, but a number the models can size)
    cfg = _huge_lines(tmp_path, 1e12)
    res = run.invoke(app, ["data", "validate", "--config", str(cfg)])
    assert res.exit_code == 0, res.output


def test_a_series_table_with_a_huge_but_finite_demand_names_the_row(tmp_path):
    """A ``demand.series`` / ``--series`` table with y = 1e300 in one row gave the same absurd bands:
    refused naming the column, row and value, and the most a period may hold."""
    from models.demand_data import build_panel

    df = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01-01", periods=6, freq="W-MON"),
                       "y": [3.0, 4.0, 1e300, 2.0, 1e12, 5.0]})
    with pytest.raises(ValueError) as err:
        build_panel(df, "W")
    assert str(err.value) == ("column y must be at most 1,000,000,000,000 (demand in units per period): 1 row(s) "
                              "break it, first rows [3], e.g. 1e+300")


def test_key_values_with_the_id_separator_that_join_into_one_id_are_named(tmp_path, monkeypatch):
    """SKU 'A/B' at 'X' and SKU 'A' at 'B/X' both join into the id 'A/B/X': `features build` wrote
    two rows per week under that id and one demand class for both (silently), and the forecast said
    "76 rows share a unique_id ... row 30" about rows of a table the user never saw."""
    from typer.testing import CliRunner

    from features.demand import demand_series
    from training.cli import app

    ol = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-09", "2024-01-10"]),
                       "sku": ["A/B", "A", "A/B", "A"], "location": ["X", "B/X", "X", "B/X"], "quantity": 1.0})
    want = ("1 series id(s) joined from the key columns ['sku', 'location'] would name different series, e.g. "
            "'A/B/X' is both ('A', 'B/X') and ('A/B', 'X'): a key value holds '/', the separator of the joined id; "
            "replace the '/' in those values (e.g. with '-')")
    with pytest.raises(ValueError) as err:
        demand_series(ol, cutoff="2024-01-31", freq="W", levels=("sku", "location"))
    assert str(err.value) == want
    # one key with a '/' alone is no clash
    ok = demand_series(ol[ol["sku"] == "A/B"], cutoff="2024-01-31", freq="W", levels=("sku", "location"))
    assert ok["unique_id"].unique().tolist() == ["A/B/X"] and ok["y"].tolist() == [1.0, 1.0, 0.0, 0.0]

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    (tmp_path / "lines.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price,location\n" + "".join(
        f"o{i},{d:%Y-%m-%d},c1,{sku},2,3.5,{loc}\n"
        for i, d in enumerate(pd.date_range("2023-01-02", periods=40, freq="W-TUE"))
        for sku, loc in (("A/B", "X"), ("A", "B/X"))))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ndata:\n  as_of: '2024-06-30'\n  order_lines: {path: lines.csv}\n")
    out = tmp_path / "feats"
    res = CliRunner().invoke(app, ["features", "build", "--config", str(cfg), "--cutoff", "2023-09-01", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == f"error: {want}"
    assert not out.exists()


def test_data_generate_names_a_negative_seed(tmp_path):
    """`data generate --seed -1` said "error: data generate: expected non-negative integer" (numpy's
    words, naming no option) after validating everything else; now --seed is refused as the other
    options are, before anything is written."""
    from typer.testing import CliRunner

    from training.cli import app

    out = tmp_path / "net"
    res = CliRunner().invoke(app, ["data", "generate", "--out", str(out), "--seed", "-1", "--accounts", "20", "--skus", "12"])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == "error: --seed '-1': expected at least 0 (dealerml data generate --help lists the options)"
    assert not out.exists()


@pytest.mark.parametrize(("column", "meant"), [("on_orders", "on_order"), ("OnOrder", "on_order"),
                                               ("min_order_quantity", "min_order_qty"), ("Order-Multiple", "order_multiple")])
def test_an_on_hand_column_that_misspells_an_optional_one_is_named_not_ignored(tmp_path, column, meant):
    """`--on-hand` with 500 units under 'on_orders' (or 'OnOrder') read no on_order column at all:
    the advice ordered those 500 units again, without a word. Other extra columns stay allowed."""
    from training.commands._demand_on_hand import _read_on_hand

    f = tmp_path / "oh.csv"
    f.write_text(f"sku,location,on_hand,{column}\nA1,north,12,500\n")
    with pytest.raises(DataError) as err:
        _read_on_hand(f, ["sku", "location"])
    assert str(err.value) == (f"--on-hand {f}: column {column!r} is not one dealerml reads; did you mean {meant!r}? "
                              "Rename it (the optional columns are on_order, min_order_qty, order_multiple, "
                              "snapshot_date), or the advice is sized without it")
    fine = tmp_path / "fine.csv"
    fine.write_text("sku,location,on_hand,on_order,description,warehouse_name\nA1,north,12,500,bolts,North DC\n")
    oh = _read_on_hand(fine, ["sku", "location"])
    assert oh.to_dict("records") == [{"unique_id": "A1/north", "on_hand": 12.0, "on_order": 500.0}]


def test_an_optional_order_line_column_in_another_case_is_said_in_the_quality_report(tmp_path):
    """A book whose warehouse column is headed 'Location' (names are case-sensitive) read no location:
    every line became 'ALL' and two warehouses' demand one series per SKU, and `data validate` said
    only "defaults: location='ALL'". The report now names the column that was not read."""
    from training.config import load_config
    from training.data import load_order_book

    (tmp_path / "lines.csv").write_text(
        "order_id,order_date,account_id,sku,quantity,unit_price,Location,PROMO\n"
        "o1,2024-01-02,c1,A1,2,3.5,DC1,0\no2,2024-01-03,c1,A1,1,3.5,DC2,1\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ndata:\n  as_of: '2024-06-30'\n  order_lines: {path: lines.csv}\n")
    rep = load_order_book(load_config(cfg)).report.tables["order_lines"]
    assert rep.defaults["location"] == "ALL" and rep.defaults["promo"] == "0"
    assert rep.warnings == [
        "column 'Location' is not read as 'location' (column names are case-sensitive), so location is 'ALL' on every "
        "line; map it under data.order_lines.columns (location: Location) or rename it",
        "column 'PROMO' is not read as 'promo' (column names are case-sensitive), so promo is '0' on every line; map "
        "it under data.order_lines.columns (promo: PROMO) or rename it",
    ]
    # mapped, it is read and nothing is said
    cfg.write_text("name: t\ndata:\n  as_of: '2024-06-30'\n  order_lines: {path: lines.csv, columns: {location: Location, "
                   "promo: PROMO}}\n")
    book = load_order_book(load_config(cfg))
    assert book.report.tables["order_lines"].warnings == []
    assert sorted(book.order_lines["location"]) == ["DC1", "DC2"]


def test_forecast_alias_writes_the_key_columns_the_models_ids_were_built_from(tmp_path, monkeypatch):
    """`forecast --alias champion --config c.yaml` split the champion's ids (sku/location) by the
    config's demand.levels: a config listing [location, sku] wrote every SKU under location and
    every location under sku, without a word. The training run's recorded levels win now (said)."""
    from _support_demand import _cli_book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _cli_book(tmp_path)
    run = CliRunner()
    res = run.invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay"])
    assert res.exit_code == 0, res.output
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(cfg.read_text().replace("levels: [sku, location]", "levels: [location, sku]"))
    assert "levels: [location, sku]" in swapped.read_text()
    out = tmp_path / "fc.csv"
    res = run.invoke(app, ["forecast", "--alias", "champion", "--config", str(swapped), "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert list(fc.columns[:3]) == ["unique_id", "sku", "location"]
    assert (fc["unique_id"] == fc["sku"] + "/" + fc["location"]).all()
    assert set(fc["sku"]) <= {"A1", "B2", "C3"} and set(fc["location"]) <= {"north", "south"}
    assert (f"note: the key columns are written as dealerml-demand's training run built its ids, demand.levels "
            f"['sku', 'location'], not {swapped}'s ['location', 'sku']") in res.output
