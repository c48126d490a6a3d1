"""A known-future driver read off the sales (0, or empty, in the periods without demand) gives away those
periods to a backtest: ``training.demand_driver_leaks.zero_demand_markers`` finds it with the counts
that show it, ``load_demand_series`` records it, and the demand commands warn (exit 0: nothing is
refused). Stallion's price_actual is such a driver (0 in 2,457 of its 2,551 months without volume)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
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
        "in periods without a sale), list 'price' under demand.series.carry_forward (its last value from a period "
        "with demand is used there), or leave it out of demand.series.exog"]
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


def test_stallion_price_actual_is_said_and_the_config_carries_it_forward():
    """The real case: Stallion's price_actual is 0 where the volume is 0 (the price is read off the sales);
    its discount is 0 in most months with volume too, so it is not said. experiments/stallion.yaml lists
    both under carry_forward, so its table has no such marker left."""
    from pathlib import Path

    from training.config import load_config
    from training.demand_config import demand_settings, load_demand_series, read_series_file

    cfg = load_config(Path(__file__).resolve().parents[1] / "experiments" / "stallion.yaml")
    src = demand_settings(cfg).series
    assert src.carry_forward == ["price", "promo"]
    raw = read_series_file(src.path, src.columns, src.exog)
    said = zero_demand_markers(raw, src.exog, "st")
    assert len(said) == 1
    assert ("driver 'price' (column 'price_actual') is 0 in 2,457 of the 2,551 periods without demand (96%), and "
            "demand is 0 in 2,457 of the 2,578 periods where it is 0 (95%)") in said[0]
    df, info = load_demand_series(cfg)
    assert info["driver_leaks"] == []
    unsold = df["y"] == 0
    # unsold months at price 0: 2,457 before, 192 after, all in 11 series whose month with volume nearest
    # before (or, before the first, after) was itself priced 0: a value of a month with demand, carried as is
    assert int((raw.loc[raw["y"] == 0, "price"] == 0).sum()) == 2457
    left = df[unsold & (df["price"] == 0)]
    assert (len(left), left["unique_id"].nunique()) == (192, 11)
    # months with volume keep their values, 0 included
    pd.testing.assert_series_equal(df.loc[~unsold, "price"], raw.loc[~unsold, "price"])


def test_carry_forward_gives_the_unsold_periods_the_last_sold_value():
    from training.demand_driver_leaks import carry_over_unsold

    ds = list(pd.date_range("2024-01-01", periods=6, freq="MS"))
    df = pd.DataFrame({"unique_id": ["a"] * 6 + ["b"] * 3, "ds": ds + ds[:3],
                       "y": [0, 5, 0, 3, np.nan, 0, 0, 0, 0], "p": [0, 10, 0, np.nan, 0, 7, 0, 0, 0],
                       "q": [1.0] * 9})
    rev = df.iloc[::-1]  # any row order: carried in date order within each series, rows kept in place
    got = carry_over_unsold(rev, ["p"])
    assert list(got.index) == list(rev.index)
    # a's first month takes its first sold value (10); March and May (y empty) the last one before; an empty
    # cell in a month with demand stays empty; June's 7 (a value, though unsold) is kept; b never sold: as is
    np.testing.assert_array_equal(got.sort_index()["p"].to_numpy(), [10, 10, 10, np.nan, 10, 7, 0, 0, 0])
    pd.testing.assert_series_equal(got["q"], rev["q"])  # drivers not named: untouched
    pd.testing.assert_frame_equal(rev, df.iloc[::-1])  # the caller's frame is not changed


def test_the_config_option_repairs_the_driver_and_the_warning_goes(tmp_path):
    from training.config import load_config
    from training.demand_config import load_demand_series
    from training.errors import ConfigError

    data = tmp_path / "s.csv"
    df = _panel()
    df.to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    base = (f"name: t\nseed: 1\ndata:\n  order_lines:\n    path: {data}\n"
            "demand:\n  freq: W\n  horizon: 3\n  windows: 1\n"
            f"  series: {{path: {data}, exog: {{price: sold_price}}, carry_forward: CARRY}}\n")
    cfg.write_text(base.replace("CARRY", "[price]"))
    got, info = load_demand_series(load_config(cfg))
    assert info["driver_leaks"] == []
    # every unsold week now has the price of the last week with a sale (the first weeks: the first sale's)
    want = df.sort_values(["unique_id", "ds"]).assign(
        p=lambda t: t["sold_price"].where(t["y"] > 0).groupby(t["unique_id"]).transform(lambda s: s.ffill().bfill()))
    np.testing.assert_allclose(got.sort_values(["unique_id", "ds"])["price"].to_numpy(), want["p"].to_numpy())
    assert (got["price"] > 0).all()
    # a name that is not a driver is refused, naming the key and the drivers there are
    cfg.write_text(base.replace("CARRY", "[promo]"))
    with pytest.raises(ConfigError, match=r"carry_forward \['promo'\]: not drivers under exog \(its names are "
                                          r"\['price'\]\)"):
        load_demand_series(load_config(cfg))


def test_an_order_books_promo_driver_is_said_to_leak(tmp_path, monkeypatch):
    """demand.drivers: [promo] on an order book: the share sold on promotion exists only where something sold,
    so it is said for every such config (backtest prints it), without counting; price alone is not said."""
    from training.config import load_config
    from training.demand_config import load_demand_series

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    rows = [{"order_id": f"o{i}{s}", "order_date": f"{d:%Y-%m-%d}", "account_id": "a", "sku": s, "quantity": 1 + i % 3,
             "unit_price": 2.0, "promo": int(i % 4 == 0)}
            for i, d in enumerate(pd.date_range("2024-01-01", periods=40, freq="W-WED")) for s in ("A", "B")
            if (i + (s == "B")) % 3]
    pd.DataFrame(rows).to_csv(tmp_path / "lines.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {tmp_path / 'lines.csv'}}}\n"
                   "demand: {freq: W, horizon: 3, windows: 1, drivers: DRIVERS}\n")
    cfg.write_text(cfg.read_text().replace("DRIVERS", "[promo]"))
    df, info = load_demand_series(load_config(cfg))
    assert ((df["y"] == 0) <= (df["promo"] == 0)).all()  # the leak itself: never promoted without a sale
    assert len(info["driver_leaks"]) == 1
    assert info["driver_leaks"][0] == (
        f"{cfg}: demand.drivers promo is the share of units sold on promotion in each period, read off the order "
        "lines: it is 0 in every period without a sale, so a backtest knows that a period with a promotion had demand "
        "(a leak that flatters the LightGBM member), while a planned promotion promises no sale. Where you have the "
        "planned promotions, give them as a series table's driver (demand.series.exog); else leave promo out of "
        "demand.drivers")
    cfg.write_text(cfg.read_text().replace("[promo]", "[price]"))
    assert load_demand_series(load_config(cfg))[1].get("driver_leaks") is None


def test_a_series_table_given_with_series_is_checked_too(tmp_path, monkeypatch):
    """``--series FILE`` keeps every numeric column besides y as a driver: the same check, the column's name."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    f = tmp_path / "s.csv"
    df = _panel()[["unique_id", "ds", "y", "sold_price"]]
    df.to_csv(f, index=False)
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["backtest", "demand", "--series", str(f), "--freq", "W", "--horizon", "3",
                              "--windows", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    n_zero = int((df["y"] == 0).sum())
    assert (f"warning: {f}: driver 'sold_price' is 0 in {n_zero:,} of the {n_zero:,} periods without demand"
            in res.output), res.output
