"""Stock of series the safety-stock run cannot size (never sold, too short to forecast, a lead
time beyond the champion's horizon) was said on the console only: a planner reading the policy
file did not see it. It is now a row of the file with action ``no_policy``, the reason code in
``no_policy_reason`` and the words in ``suggestion``; the sized rows are unchanged."""

from __future__ import annotations

import pandas as pd
import pytest


def _book_with_new_sku(tmp_path):
    from _support_demand import _cli_book

    cfg = _cli_book(tmp_path)
    lines = tmp_path / "lines.csv"
    # D4 at north: first sold in the book's last two weeks (the last one still open), too short to forecast
    extra = "".join(f"{d:%Y%m%d}D4north;{d:%d.%m.%Y};007;D4;4;2.5;north\n"
                    for d in pd.date_range("2024-05-06", periods=2, freq="W-MON"))
    lines.write_text(lines.read_text() + extra)
    inv = tmp_path / "inv.csv"
    # D4 holds 6 units; YY8 (never sold) holds nothing and is no row of the file
    inv.write_text(inv.read_text() + "north,D4,6,2024-05-10\nsouth,YY8,0,2024-05-10\n")
    return cfg


def test_a_new_sku_is_sized_from_the_short_history_fallback(tmp_path, monkeypatch):
    """With the default short-history fallback the SKU sold once (one observed period) is a sized
    row, flagged: ltd_source short_history and forecast_note; the never-sold one stays no_policy."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book_with_new_sku(tmp_path)
    out = tmp_path / "pol.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    pol = pd.read_csv(out).set_index("unique_id")
    sized = ["A1/north", "A1/south", "B2/north", "C3/south"]
    assert sorted(pol.index) == sorted([*sized, "D4/north", "ZZ9/north"])
    d4 = pol.loc["D4/north"]
    assert d4["action"] != "no_policy" and pd.isna(d4["no_policy_reason"]) and d4["ltd_source"] == "short_history"
    assert d4["forecast_note"].startswith("short history (1 period): fallback forecast")
    assert d4["reorder_point"] > d4["ltd_mean"] > 0 and d4["on_hand"] == 6.0
    assert pol.loc[sized, "forecast_note"].isna().all() and (pol.loc[sized, "ltd_source"] != "short_history").all()
    assert pol.loc["ZZ9/north", "no_policy_reason"] == "no_sales"
    assert "1 series with stock but no policy (action no_policy)" in res.output
    assert "1 of them have a short history and are sized from the fallback forecast's distribution" in res.output
    fc = tmp_path / "fc.csv"
    res = CliRunner().invoke(app, ["forecast", "--config", str(cfg), "--out", str(fc)])
    assert res.exit_code == 0, res.output
    f = pd.read_csv(fc)
    new = f[f["unique_id"] == "D4/north"]
    assert (new["final_model"] == "ShortHistory").all() and new["forecast_note"].str.startswith("short history (1 period)").all()
    assert f.loc[f["unique_id"] != "D4/north", "forecast_note"].isna().all()
    assert "1 series with a short history got a fallback forecast" in res.output


def test_stock_without_a_policy_is_a_row_of_the_policy_file(tmp_path, monkeypatch):
    """demand.short_history: skip (no forecast for series shorter than min_train): their stock is
    a no_policy row with reason too_short."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book_with_new_sku(tmp_path)
    cfg.write_text(cfg.read_text().replace("demand: {", "demand: {short_history: skip, ", 1))
    run = CliRunner()
    out = tmp_path / "pol.csv"
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    pol = pd.read_csv(out).set_index("unique_id")
    sized = ["A1/north", "A1/south", "B2/north", "C3/south"]
    assert sorted(pol.index) == sorted([*sized, "D4/north", "ZZ9/north"])
    assert (pol.loc[sized, "action"] != "no_policy").all() and pol.loc[sized, "no_policy_reason"].isna().all()
    zz, d4 = pol.loc["ZZ9/north"], pol.loc["D4/north"]
    assert zz["action"] == "no_policy" and zz["no_policy_reason"] == "no_sales" and zz["on_hand"] == 3.0
    assert zz["sku"] == "ZZ9" and zz["location"] == "north" and zz["freq"] == "W"
    assert zz["suggestion"].startswith("no policy for 3 units on hand: no sale in the series before the cutoff")
    assert "dead stock" in zz["suggestion"]
    assert d4["action"] == "no_policy" and d4["no_policy_reason"] == "too_short" and d4["on_hand"] == 6.0
    assert "not forecast: 1 observed period; the forecaster needs at least 16" in d4["suggestion"]
    assert "dead stock" not in d4["suggestion"]  # a new SKU is not dead stock
    # no sizing figure is made up for them
    for col in ("reorder_point", "order_up_to", "safety_stock", "order_qty", "lead_time_days"):
        assert pol.loc[["ZZ9/north", "D4/north"], col].isna().all(), col
    assert "2 series with stock but no policy (action no_policy)" in res.output
    assert "rows of pol.csv with action no_policy" in res.output

    # the same stock sent as --on-hand: the same rows, and the sized rows' numbers are those of a
    # run whose stock file holds the sized series only (the no_policy rows change none of them)
    oh = tmp_path / "stock.csv"
    oh.write_text("sku,location,on_hand,on_order\nA1,north,40,\nA1,south,7,\nB2,north,5,\nC3,south,11,\n"
                  "D4,north,6,\nZZ9,north,3,10\n")
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out), "--on-hand", str(oh)])
    assert res.exit_code == 0, res.output
    given = pd.read_csv(out).set_index("unique_id")
    assert given.loc["ZZ9/north", "no_policy_reason"] == "no_sales" and given.loc["ZZ9/north", "on_order"] == 10.0
    assert given.loc["ZZ9/north", "inventory_position"] == 13.0
    assert given.loc["ZZ9/north", "suggestion"].startswith("no policy for 3 units on hand and 10 on order:")
    assert given.loc["D4/north", "no_policy_reason"] == "too_short"
    only = tmp_path / "sized.csv"
    only.write_text("sku,location,on_hand,on_order\nA1,north,40,\nA1,south,7,\nB2,north,5,\nC3,south,11,\n")
    out2 = tmp_path / "pol2.csv"
    res = run.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out2), "--on-hand", str(only)])
    assert res.exit_code == 0, res.output
    plain = pd.read_csv(out2).set_index("unique_id")
    assert sorted(plain.index) == sorted(sized) and plain["no_policy_reason"].isna().all()
    same = plain.columns.drop("no_policy_reason")
    pd.testing.assert_frame_equal(given.loc[sized, same], plain.loc[sized, same])
    # the book's stock gives the same sized figures as the same stock sent as a file
    nums = ["reorder_point", "order_up_to", "safety_stock", "order_qty", "on_hand", "excess"]
    pd.testing.assert_frame_equal(pol.loc[sized, nums], plain.loc[sized, nums])


def test_no_policy_reasons_for_a_lead_time_beyond_the_horizon_and_a_series_the_model_never_saw():
    from training.commands._stock_no_policy import _no_policy_rows

    stock = pd.DataFrame({"unique_id": ["S/a", "N/a", "X/a", "Z/a", "T/a"], "on_hand": [5.0, 2.5, 0.0, -4.0, 1.0]})
    why = {"S/a": ("lead_time_beyond_horizon", "lead time + review + 2.33 x its spread exceeds the champion's "
                   "8-period horizon (set demand.horizon to at least 12 and retrain)")}
    info = {"top_n": 50, "below_top_n": frozenset({"T/a"})}
    rows = _no_policy_rows(stock, set(), why, {"N/a"}, info, "W").set_index("unique_id")
    assert list(rows.index) == ["S/a", "N/a", "Z/a", "T/a"]  # X/a holds nothing; backorders are stock too
    assert rows["no_policy_reason"].tolist() == ["lead_time_beyond_horizon", "not_in_model", "no_sales", "below_top_n"]
    assert rows.loc["S/a", "suggestion"] == (
        "no policy for 5 units on hand: lead time + review + 2.33 x its spread exceeds the champion's 8-period "
        "horizon (set demand.horizon to at least 12 and retrain); review it by hand")
    assert rows.loc["N/a", "suggestion"].startswith("no policy for 2.50 units on hand: not in the served forecaster's")
    assert rows.loc["T/a", "suggestion"] == ("no policy for 1 units on hand: not among the demand.top_n 50 series "
                                             "with the most units sold; review it by hand")
    assert rows.loc["Z/a", "on_hand"] == pytest.approx(-4.0)
