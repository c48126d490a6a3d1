"""A known-future driver read off the sales (0, or empty, in the periods without demand) gives away those
periods to a backtest: ``training.demand_driver_leaks.zero_demand_markers`` finds it with the counts
that show it, ``load_demand_series`` records it, and the demand commands warn (exit 0: nothing is
refused). Stallion's price_actual is such a driver (0 in 2,457 of its 2,551 months without volume)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from training.cli import app
from training.demand_driver_leaks import zero_demand_markers

runner = CliRunner()


def _panel(n: int = 6, T: int = 60, seed: int = 1) -> pd.DataFrame:
    """Weekly series with a zero-demand week every ~4 weeks. ``sold_price`` is 0 in exactly those weeks
    (read off the sales), ``list_price`` is the same price carried into them (planned ahead), ``promo``
    is 0 in most weeks with and without demand, ``gap_price`` is empty where demand is 0."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    rows = []
    for i in range(n):
        price = np.round(rng.uniform(8, 12, T), 2)
        y = rng.poisson(20, T).astype(float)
        y[rng.random(T) < 0.25] = 0.0
        promo = np.where(rng.random(T) < 0.2, 0.1, 0.0)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y, "list_price": price,
                                  "sold_price": np.where(y > 0, price, 0.0), "promo": promo,
                                  "gap_price": np.where(y > 0, price, np.nan)}))
    return pd.concat(rows, ignore_index=True)


def test_a_driver_zero_exactly_where_demand_is_zero_is_said_with_its_counts():
    df = _panel()
    n_zero = int((df["y"] == 0).sum())
    t = df.rename(columns={"sold_price": "price"})
    got = zero_demand_markers(t, {"price": "sold_price", "list_price": "list_price", "promo": "promo"}, "f.csv")
    assert got == [
        f"f.csv: driver 'price' (column 'sold_price') is 0 in {n_zero:,} of the {n_zero:,} periods without demand "
        f"(100%), and demand is 0 in {n_zero:,} of the {n_zero:,} periods where it is 0 (100%): it looks recorded "
        "from the sales, not known ahead. As a known-future driver it tells a backtest which periods have no demand "
        "(a leak that flatters it), and a plan will not know it. Give the values planned ahead (e.g. the list price "
        "in periods without a sale), or leave 'price' out of demand.series.exog"]
    # an empty cell as the marker; the name is the column: not repeated
    empty = zero_demand_markers(df, {"gap_price": "gap_price"}, "f.csv")
    assert len(empty) == 1 and empty[0].startswith(f"f.csv: driver 'gap_price' is empty in {n_zero:,} of the ")


def test_a_marker_that_is_not_nearly_always_zero_demand_or_too_rare_is_not_said():
    df = _panel()
    # 0 also in some weeks with demand: said while demand is 0 in >= 90 % of the weeks at 0, not below
    sold = np.flatnonzero(df["y"].to_numpy() > 0)
    n_zero = int((df["y"] == 0).sum())
    for extra, said in ((n_zero // 10, True), (n_zero // 8, False)):  # precision 1/1.1 = 0.91; 1/1.125 = 0.89
        noisy = df.copy()
        noisy.loc[sold[:extra], "sold_price"] = 0.0
        assert (zero_demand_markers(noisy, {"sold_price": "sold_price"}, "f") != []) is said, (extra, n_zero)
    # 0 in only a third of the weeks without demand (recall < 0.5): not said
    part = df.copy()
    zero = np.flatnonzero(part["y"].to_numpy() == 0)
    part.loc[zero[len(zero) // 3:], "sold_price"] = 9.0
    assert zero_demand_markers(part, {"sold_price": "sold_price"}, "f") == []
    # fewer than 20 weeks without demand: nothing to go on
    few = df[(df["y"] > 0) | (df.index < 40)]
    assert int((few["y"] == 0).sum()) < 20
    assert zero_demand_markers(few, {"sold_price": "sold_price"}, "f") == []
    # a driver name that is not a column: skipped
    assert zero_demand_markers(df, {"nope": "nope"}, "f") == []


def test_backtest_warns_about_a_driver_read_off_the_sales_and_still_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    data = tmp_path / "s.csv"
    df = _panel()
    df.to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    body = (f"name: t\nseed: 1\ndata:\n  order_lines:\n    path: {data}\n"
            "demand:\n  freq: W\n  horizon: 3\n  windows: 1\n"
            f"  series: {{path: {data}, exog: EXOG}}\n"
            "  models: [SeasonalNaive, LightGBM]\n  lgbm: {n_estimators: 10}\n  selection_windows: 1\n")
    cfg.write_text(body.replace("EXOG", "{price: sold_price}"))
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["backtest", "demand", "--config", str(cfg), "--json", str(out)])
    assert res.exit_code == 0, res.output
    n_zero = int((df["y"] == 0).sum())
    assert (f"warning: {data}: driver 'price' (column 'sold_price') is 0 in {n_zero:,} of the {n_zero:,} periods "
            "without demand (100%)") in res.output
    assert out.is_file()
    # the same prices planned ahead: no warning
    cfg.write_text(body.replace("EXOG", "{price: list_price}"))
    res = runner.invoke(app, ["backtest", "demand", "--config", str(cfg), "--json", str(out)])
    assert res.exit_code == 0 and "warning" not in res.output, res.output


def test_tune_says_it_once_as_a_note_of_its_target(tmp_path):
    from training.config import load_config
    from training.demand_tuning import tuning_target

    data = tmp_path / "s.csv"
    _panel().to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 1\ndata:\n  order_lines:\n    path: {data}\n"
                   "demand:\n  freq: W\n  horizon: 3\n  windows: 1\n"
                   f"  series: {{path: {data}, exog: {{price: sold_price}}}}\n")
    target = tuning_target(load_config(cfg))
    assert target.note.startswith(f"{data}: driver 'price' (column 'sold_price') is 0 in ")
    cfg.write_text(cfg.read_text().replace("sold_price", "list_price"))
    assert tuning_target(load_config(cfg)).note is None


def test_stallion_price_actual_is_said(monkeypatch):
    """The real case: Stallion's price_actual is 0 where the volume is 0 (the price is read off the sales);
    its discount is 0 in most months with volume too, so it is not said."""
    from pathlib import Path

    from training.config import load_config
    from training.demand_config import load_demand_series

    cfg = load_config(Path(__file__).resolve().parents[1] / "experiments" / "stallion.yaml")
    _, info = load_demand_series(cfg)
    assert len(info["driver_leaks"]) == 1
    assert ("driver 'price' (column 'price_actual') is 0 in 2,457 of the 2,551 periods without demand (96%), and "
            "demand is 0 in 2,457 of the 2,578 periods where it is 0 (95%)") in info["driver_leaks"][0]
