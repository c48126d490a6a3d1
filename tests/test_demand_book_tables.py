"""The order book's own inventory and lead-time tables reach the demand series they describe,
the same way in the batch CLI (``training.demand_config.load_demand_series``) and the service
(``serving.inventory``): per-SKU lead times (empty location, loaded as 'ALL') apply at every
location; on-hand is each (sku, location)'s latest snapshot, summed over the locations a series
spans. Small hand-written tables, no model fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support_demand import _book

from serving.inventory import lead_times_by_series, on_hand_by_series
from training.config import load_config
from training.demand_config import demand_settings, load_demand_series


def test_book_lead_times_reach_every_series(tmp_path):
    cfg = load_config(_book(tmp_path, ["sku", "location"]))
    df, info = load_demand_series(cfg, demand_settings(cfg))
    assert sorted(df["unique_id"].unique()) == ["A1/north", "A1/south", "B2/north", "C3/south"]
    lt = info["lead_times"]
    # A1's row has no location: it applies at north and south (it was ignored: config 14 days used)
    assert lt.loc["A1/north", "lead_time_days"] == 21 and lt.loc["A1/south", "lead_time_std_days"] == 4
    assert lt.loc["B2/north", "lead_time_days"] == 10
    assert lt.loc["C3/south", "lead_time_days"] == 7  # the sku x location row wins over the sku's row
    # the service reads the same table the same way
    keys = {u: dict(zip(["sku", "location"], u.split("/"), strict=True)) for u in lt.index}
    from training.data import load_order_book

    served = lead_times_by_series(load_order_book(cfg).lead_times, keys)
    assert {u: served[u] for u in lt.index} == {u: (r.lead_time_days, r.lead_time_std_days) for u, r in lt.iterrows()}


@pytest.mark.parametrize("levels", [["sku", "location"], ["sku"]])
def test_book_on_hand_is_latest_per_location_summed_per_series(tmp_path, levels):
    cfg = load_config(_book(tmp_path, levels))
    df, info = load_demand_series(cfg, demand_settings(cfg))
    oh = info["on_hand"]
    if levels == ["sku"]:
        # A1: latest north 40 + latest south 7 (was one location's figure only)
        want = {"A1": 47.0, "B2": 5.0, "C3": 11.0}
    else:
        want = {"A1/north": 40.0, "A1/south": 7.0, "B2/north": 5.0, "C3/south": 11.0}
    assert {u: oh[u] for u in want} == want
    from training.data import load_order_book

    served = on_hand_by_series(load_order_book(cfg).inventory, levels)
    assert {u: served[u] for u in want} == want


def test_stock_and_lead_time_rows_no_series_can_use_are_reported(tmp_path):
    from training.data import load_order_book

    cfg = _book(tmp_path, ["sku", "location"])
    (tmp_path / "lt.csv").write_text("Item;Whs;Days;Sd\nA1;;21;4\nA1;west;9;1\n")
    rep = load_order_book(load_config(cfg)).report
    inv_w, lt_w = rep.tables["inventory"].warnings, rep.tables["lead_times"].warnings
    assert len(inv_w) == 1 and "1 inventory rows name a SKU that no order line has" in inv_w[0] and "ZZ9" in inv_w[0]
    assert len(lt_w) == 1 and "location" in lt_w[0] and "'west'" in lt_w[0]  # 'ALL' (empty) is not flagged
    assert "ZZ9" in rep.render()


def test_safety_stock_with_backorders_in_the_book(tmp_path, monkeypatch):
    """A negative on-hand (backorders; kept by validation) used to crash `safety-stock` with a
    traceback from InventoryPolicy.advise; it is net stock: replenish, the order covering it."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, ["sku", "location"])
    (tmp_path / "inv.csv").write_text("Whs,Item,Stock,Day\nnorth,A1,-12,2024-05-10\nsouth,A1,500,2024-05-10\n")
    cfg.write_text(cfg.read_text().replace(
        "demand: {freq: W,", "demand: {horizon: 6, windows: 1, selection_windows: 1, models: [SeasonalNaive, AutoETS], freq: W,"))
    out = tmp_path / "ss.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    ss = pd.read_csv(out).set_index("unique_id")
    a = ss.loc["A1/north"]
    assert a["on_hand"] == -12 and a["action"] == "replenish" and a["periods_of_cover"] == 0
    assert a["order_qty"] == np.ceil(a["order_up_to"] + 12)
    assert ss.loc["A1/south", "on_hand"] == 500 and ss["lead_time"].loc["A1/south"] == pytest.approx(3.0)  # 21 days
    # series without a stock row were left without advice silently; the run says how many and the snapshot dates
    assert ss.loc[["B2/north", "C3/south"], "action"].isna().all()
    assert ("on-hand from the order book's inventory for 2 of 4 series (latest snapshots dated 2024-05-10 .. 2024-05-10); "
            "2 series have no inventory row") in res.output


def test_inventory_rows_repeating_a_snapshot_key_are_reported(tmp_path):
    """Two rows for one SKU, location and snapshot date (an export per bin or lot) used to leave
    one row's figure silently (the last; an equal second bin was even dropped as a duplicate
    row only). They are now dropped as duplicate_snapshot with examples: first kept."""
    from training.data import load_order_book

    cfg = _book(tmp_path, ["sku", "location"])
    (tmp_path / "inv.csv").write_text("Whs,Item,Stock,Day\nnorth,A1,30,2024-05-10\nnorth,A1,10,2024-05-10\n"
                                      "north,A1,5,2024-05-01\nsouth,A1,7,2024-05-10\n")
    book = load_order_book(load_config(cfg))
    rep = book.report.tables["inventory"]
    assert rep.rows_out == 3 and rep.reasons["duplicate_snapshot"]["rows"] == 1
    assert "on_hand=10" in rep.render() and "sum bins or lots" in rep.render()
    df, info = load_demand_series(load_config(cfg))
    assert info["on_hand"]["A1/north"] == 30.0 and info["on_hand"]["A1/south"] == 7.0


def test_sku_level_series_take_the_longest_location_lead_time(tmp_path):
    """demand.levels [sku]: a SKU whose lead times are given only per location used the config's
    lead_time_days silently; it now takes the longest of them (and the largest spread), in the CLI
    and the service alike. A row for every location (empty location) still wins."""
    from training.data import load_order_book

    cfg = _book(tmp_path, ["sku"])
    (tmp_path / "lt.csv").write_text("Item;Whs;Days;Sd\nA1;;21;4\nB2;north;10;2\nB2;south;16;3\nC3;;30;5\nC3;south;7;1\n")
    cfg = load_config(cfg)
    df, info = load_demand_series(cfg, demand_settings(cfg))
    lt = info["lead_times"]
    want = {"A1": (21.0, 4.0), "B2": (16.0, 3.0), "C3": (30.0, 5.0)}
    assert {u: (r.lead_time_days, r.lead_time_std_days) for u, r in lt.iterrows()} == want
    served = lead_times_by_series(load_order_book(cfg).lead_times, {u: {"sku": u} for u in want})
    assert served == want


def test_simulate_inventory_replays_each_series_with_its_book_lead_time(tmp_path, monkeypatch):
    """`simulate inventory` replayed one lead time (the config's) for every series and said so;
    it now takes each series' lead time from the book's lead_times table, as safety-stock does
    (A1 21 days -> 3 weeks at both locations, B2/north 10 days -> 1, C3/south 7 days -> 1)."""
    import json

    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, ["sku", "location"])
    cfg.write_text(cfg.read_text().replace(
        "demand: {freq: W,", "demand: {horizon: 6, windows: 1, selection_windows: 1, models: [SeasonalNaive, AutoETS], freq: W,"))
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["simulate", "inventory", "--config", str(cfg), "--holdout", "6", "--targets", "0.9",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "one lead time for every series" not in res.output
    assert "lead times (book: 4 series from the order book, 0 from the config)" in res.output
    rep = json.loads(out.read_text())
    assert rep["lead_times_source"] == "book" and rep["n_series_lead_time_from_book"] == 4
    assert {str(k): v for k, v in rep["lead_time_distribution"].items()} == {"1": 2, "3": 2}


def test_forecast_names_the_series_too_short_to_forecast(tmp_path, monkeypatch):
    """A SKU first sold three weeks before the end of the book had no forecast and the run did
    not say so ('wrote ... 4 series' of 5)."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, ["sku", "location"])
    with open(tmp_path / "lines.csv", "a") as fh:
        for d in ("29.04.2024", "06.05.2024", "13.05.2024"):
            fh.write(f"N{d};{d};007;NEW9;40;2.5;north\n")
    cfg.write_text(cfg.read_text().replace(
        "demand: {freq: W,", "demand: {horizon: 6, windows: 1, selection_windows: 1, models: [SeasonalNaive, AutoETS], freq: W,"))
    out = tmp_path / "fc.csv"
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    # the default short-history fallback forecasts it, flagged (final_model ShortHistory, forecast_note)
    fc = pd.read_csv(out)
    assert set(fc["unique_id"]) == {"A1/north", "A1/south", "B2/north", "C3/south", "NEW9/north"}
    assert set(fc.loc[fc["unique_id"] == "NEW9/north", "final_model"]) == {"ShortHistory"}
    assert "1 series with a short history got a fallback forecast" in res.output and "NEW9/north" in res.output
    # demand.short_history: skip: left out and named, as before the fallback
    cfg.write_text(cfg.read_text().replace("demand: {", "demand: {short_history: skip, ", 1))
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(out)["unique_id"]) == {"A1/north", "A1/south", "B2/north", "C3/south"}
    assert "left out 1 of 5 series that have no forecast: fewer than 12 periods" in res.output
    assert "NEW9/north" in res.output


@pytest.mark.parametrize("with_unattributed", [True, False])
def test_stock_of_a_sku_sold_only_without_an_account_is_not_called_unused(tmp_path, with_unattributed):
    """Lines with an empty account are demand of their SKU (demand.include_lines_without_account,
    default true): a SKU / location sold only that way (cash or web-shop sales; 266 SKU x locations
    of Online Retail) is a demand series, so its stock and lead-time rows are used. The report said
    "no order line has ... no demand series uses them" for them, having looked at the lines with an
    account only; it still says so when the setting leaves those lines out."""
    from training.data import load_order_book

    cfg = _book(tmp_path, ["sku", "location"])
    lines = pd.read_csv(tmp_path / "lines.csv", sep=";", dtype=str, keep_default_na=False)
    cash = [{"Doc": f"K{i}", "Date": f"{d:%d.%m.%Y}", "Cust": "", "Item": "D4", "Qty": "3", "Price": "1.5", "Whs": "east"}
            for i, d in enumerate(pd.date_range("2023-06-05", periods=50, freq="W-MON"))]
    pd.concat([lines, pd.DataFrame(cash)]).to_csv(tmp_path / "lines.csv", sep=";", index=False)
    with (tmp_path / "inv.csv").open("a") as f:
        f.write("east,D4,6,2024-05-10\n")
    (tmp_path / "lt.csv").write_text("Item;Whs;Days;Sd\nA1;;21;4\nD4;east;5;1\n")
    if not with_unattributed:
        cfg.write_text(cfg.read_text().replace("demand: {", "demand: {include_lines_without_account: false, "))
    config = load_config(cfg)
    rep = load_order_book(config).report
    inv_w, lt_w = rep.tables["inventory"].warnings, rep.tables["lead_times"].warnings
    df, info = load_demand_series(config, demand_settings(config))
    if with_unattributed:
        assert "D4/east" in set(df["unique_id"]) and info["on_hand"]["D4/east"] == 6.0
        assert info["lead_times"].loc["D4/east", "lead_time_days"] == 5
        assert lt_w == []
        assert len(inv_w) == 1 and "ZZ9" in inv_w[0] and "D4" not in inv_w[0] and "east" not in inv_w[0]
    else:
        assert "D4/east" not in set(df["unique_id"])
        assert any("D4" in w for w in inv_w) and any("'east'" in w for w in inv_w)
        assert any("D4" in w for w in lt_w)
