"""Session 10 CLI review: defects found in the day's changes, each shown by a test that failed
before its fix. Tiny inputs: well under a second each."""

from __future__ import annotations

import pandas as pd


def test_on_hand_key_columns_keep_leading_zeros(tmp_path):
    """--on-hand with the series' key columns (sku, location) instead of unique_id read them as
    numbers: SKU '007' at location '01' became the id '7/01', which matches no series, so the
    real series '007/01' got no advice and its stock went to a no_policy row as never sold."""
    from training.commands._demand_on_hand import _read_on_hand

    f = tmp_path / "oh.csv"
    f.write_text("sku,location,on_hand\n007,01,12\n0042,DC1,3\n")
    oh = _read_on_hand(f, ["sku", "location"])
    assert oh["unique_id"].tolist() == ["007/01", "0042/DC1"]
    assert oh["on_hand"].tolist() == [12.0, 3.0]


def test_category_drop_reason_names_no_category_it_does_not_know():
    """cat_share_max_drop is the largest fall of ANY category's share of spend; the dealer reason
    said 'its largest category's share of spend down 15 points' for an account whose largest
    category (A: 80 % -> 95 %) rose 15 points while a small one (B: 20 % -> 5 %) fell."""
    from features.accounts import account_features
    from models.potential import _feature_sentence

    cd = pd.Timestamp("2024-06-01")
    days, cats, amounts = [200, 150, 40, 30], ["A", "B", "A", "B"], [80.0, 20.0, 95.0, 5.0]
    ol = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4"], "account_id": "X", "sku": ["s1", "s2", "s1", "s2"],
                       "order_date": [cd - pd.Timedelta(days=d) for d in days], "category": cats,
                       "quantity": 1.0, "unit_price": amounts})
    f = account_features(ol, cutoff=cd)
    assert round(f["cat_share_max_drop"].iloc[0], 9) == 0.15 and f["cat_share_max_drop_category"].iloc[0] == "B"
    text = _feature_sentence("cat_share_max_drop", f["cat_share_max_drop"].iloc[0], 1.0)
    assert "largest category" not in text  # A, the largest, went up
    assert text == ("one category's share of its spend down 15 points, the largest fall among its categories "
                    "(last 90 days against the 180 before) (raises the forecast)")


def test_safety_stock_alias_with_champion_series_outside_todays_run(tmp_path, monkeypatch):
    """safety-stock --alias champion on a book with a lead_times table failed with a traceback
    ('cannot convert float NaN to integer' in horizon_needed) when the champion forecasts series
    this run does not plan (below today's demand.top_n, not sold since): their lead times were the
    book series' reindexed, NaN. They are left out and said; their stock is a no_policy row."""
    from _support_demand import _cli_book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _cli_book(tmp_path)
    run = CliRunner()
    res = run.invoke(app, ["train", "demand", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    top1 = tmp_path / "top1.yaml"
    top1.write_text(cfg.read_text().replace("demand: {horizon: 8,", "demand: {top_n: 1, horizon: 8,"))
    out = tmp_path / "ss.csv"
    res = run.invoke(app, ["safety-stock", "--config", str(top1), "--alias", "champion", "--out", str(out)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert ("left out 3 series of the champion that are not among this run's demand series "
            "(e.g. ['A1/south', 'B2/north', 'C3/south'])") in res.output
    pol = pd.read_csv(out).set_index("unique_id")
    assert pol.loc["A1/north", "action"] != "no_policy" and pol.loc["A1/north", "lead_time_days"] == 21.0
    rest = pol.drop(index="A1/north")
    assert (rest["action"] == "no_policy").all() and set(rest.loc[["A1/south", "B2/north", "C3/south"],
                                                                   "no_policy_reason"]) == {"below_top_n"}


def test_a_trend_without_a_value_is_said_by_its_two_figures():
    """orders_trend_pct / revenue_trend_pct are NaN when the 90 days before had nothing and the last
    90 days did (a new or returning dealer): the reason read 'orders trend pct not known yet',
    though the row holds both figures."""
    import numpy as np

    from models.potential import _feature_sentence

    row = pd.Series({"orders_last_90d": 3.0, "orders_prev_90d": 0.0, "revenue_last_90d": 812.0,
                     "revenue_prev_90d": 0.0, "value_prev_90d": np.nan, "value_90d": 812.0})
    assert _feature_sentence("orders_trend_pct", np.nan, 0.4, row) == (
        "3 orders in the last 90 days against 0 in the 90 days before (raises the forecast)")
    assert _feature_sentence("revenue_trend_pct", np.nan, -0.1, row) == (
        "812 bought in the last 90 days against 0 in the 90 days before (lowers the forecast)")
    # a figure unknown (the book does not reach back): said so, as before
    assert _feature_sentence("trend_90d", np.nan, 0.4, row) == (
        "the book does not reach back 180 days (raises the forecast)")


def test_outputs_written_together_stay_as_they_were_when_a_rename_fails(tmp_path):
    """write_files (backtest demand --json / --cv-out, forecast --out / --drivers-out) renamed the
    first output into place, then failed on the second (a folder made at its path since the check):
    the report was the new run's, the table the old one's. Now the first gets its previous file back."""
    from training.commands._common import json_writer, write_files

    a, d = tmp_path / "report.json", tmp_path / "cv"
    a.write_text("old report")
    (d / "x").mkdir(parents=True)
    try:
        write_files([(a, json_writer({"new": 1})), (d, json_writer({"rows": 2}))])
    except OSError:
        pass
    else:
        raise AssertionError("the write into a folder should fail")
    assert a.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv", "report.json"]  # no temp or kept file left
    # a new output (none before) is removed again
    b = tmp_path / "new.json"
    try:
        write_files([(b, json_writer({"new": 1})), (d, json_writer({"rows": 2}))])
    except OSError:
        pass
    assert not b.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cv", "report.json"]
    # and written together when all can be
    c = tmp_path / "cv.csv"
    write_files([(a, json_writer({"new": 1})), (c, lambda tmp: tmp.write_text("x\n1\n"))])
    assert a.read_text() == '{\n  "new": 1\n}' and c.read_text() == "x\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv", "cv.csv", "report.json"]
