"""Values in the series-table messages print as a user writes them (QA pass): numbers plainly
(-5.0, inf), dates as YYYY-MM-DD (with the time only when there is one), never numpy's or
pandas' repr (np.float64(-5.0), Timestamp('2024-01-07 00:00:00'))."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.demand_data import build_panel
from training.cli import app

WEEKS = pd.date_range("2024-01-07", periods=30, freq="W-SUN")


def _table(y=None, ds=None, uid="a") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": WEEKS if ds is None else ds,
                         "y": np.arange(30, dtype=float) % 3 + 10 if y is None else y})


def _message(df: pd.DataFrame, freq: str = "W") -> str:
    with pytest.raises(ValueError) as exc:
        build_panel(df, freq)
    msg = str(exc.value)
    assert "np." not in msg and "Timestamp(" not in msg and "numpy" not in msg, msg
    return msg


def test_negative_and_infinite_y_print_plain_numbers():
    y = np.full(30, 4.0)
    y[3] = -5.0
    assert _message(_table(y)) == ("column y must be >= 0 (demand in units): 1 row(s) break it, first rows [4], "
                                   "e.g. -5.0")
    y[3], y[4] = 1.0, np.inf
    assert _message(_table(y)).endswith("column y must be a finite number (demand in units), not inf or -inf: 1 row(s) "
                                        "break it, first rows [5], e.g. inf")
    ints = _table(np.where(np.arange(30) == 2, -7, 3))  # an integer column stays integer: -7, not -7.0
    assert _message(ints).endswith("first rows [3], e.g. -7")
    text = _table(["3"] * 29 + ["abc"])
    assert _message(text).endswith("must be a number (demand in units): 1 row(s) break it, first rows [30], e.g. 'abc'")


def test_duplicate_periods_print_rows_and_dates():
    df = pd.concat([_table(), _table().head(1).assign(y=4.0)], ignore_index=True)
    assert _message(df) == ("2 rows share a unique_id and a W period (one row per series and period expected); "
                            "first: row 1 (unique_id 'a', ds 2024-01-07), row 31 (unique_id 'a', ds 2024-01-07)")
    timed = _table(ds=WEEKS + pd.Timedelta(hours=10, minutes=30))
    timed = pd.concat([timed, timed.head(1).assign(ds=pd.Timestamp("2024-01-07 11:00"))], ignore_index=True)
    assert _message(timed).endswith("first: row 1 (unique_id 'a', ds 2024-01-07 10:30), "
                                    "row 31 (unique_id 'a', ds 2024-01-07 11:00)")


def test_other_messages_print_weekdays_and_dates():
    two = pd.concat([_table(), _table(ds=WEEKS + pd.Timedelta(days=1), uid="b")], ignore_index=True)
    assert _message(two) == ("weekly series must all fall on one weekday; ds has Monday, Sunday "
                             "(e.g. 2024-01-08, 2024-01-07)")
    mid = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-15", periods=12, freq="MS")
                        + pd.Timedelta(days=14), "y": 1.0})
    assert _message(mid, "M") == ("monthly ds must be the first or the last day of a month; "
                                  "got e.g. 2024-02-15, 2024-03-15, 2024-04-15")
    nums = _table(ds=np.arange(20240101, 20240131))
    assert _message(nums).endswith("it holds numbers (int64), e.g. 20240101, 20240102, 20240103")


def test_cli_backtest_series_prints_plain_values(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    y = np.full(30, 4.0)
    y[3] = -5.0
    neg = tmp_path / "neg.csv"
    _table(y).to_csv(neg, index=False)
    dup = tmp_path / "dup.csv"
    pd.concat([_table(), _table().head(1)]).to_csv(dup, index=False)
    out = tmp_path / "out.json"
    for path, want in ((neg, "first rows [4], e.g. -5.0"),
                       (dup, "first: row 1 (unique_id 'a', ds 2024-01-07), row 31 (unique_id 'a', ds 2024-01-07)")):
        res = CliRunner().invoke(app, ["backtest", "demand", "--series", str(path), "--freq", "W", "--horizon", "4",
                                       "--windows", "1", "--json", str(out)])
        msg = " ".join(res.output.split())
        assert res.exit_code == 2 and want in msg and str(path) in msg, (res.exit_code, res.output)
        assert "Traceback" not in res.output and "np.float64" not in msg and "Timestamp(" not in msg
    assert not out.exists()


def test_infinite_y_and_drivers_of_a_series_table_are_refused_naming_file_column_rows_and_value(tmp_path, monkeypatch):
    """A ready series table with a driver of inf (CSV inf / -Infinity, Parquet float inf) was backtested with
    the inf fed to LightGBM; a driver cell 1e999 (text to pandas) silently made the column no driver at all;
    y = -inf was said to be below 0 and y = 1e999 'not a number'. Each is refused as infinite, naming the
    file, the column, the rows and the value, and what is expected."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    x = np.tile([0.0, 1.0], 15)
    base = _table().assign(promo=x)
    y = np.full(30, 4.0)
    y[2] = -np.inf
    assert _message(_table(y)) == ("column y must be a finite number (demand in units), not inf or -inf: 1 row(s) "
                                   "break it, first rows [3], e.g. -inf")
    assert _message(_table(["4"] * 29 + ["1e999"])).endswith("first rows [30], e.g. inf")
    xi = x.copy()
    xi[[5, 9]] = [np.inf, -np.inf]
    assert _message(base.assign(promo=xi)) == ("column promo must be a finite number (a driver; leave a cell empty when "
                                               "unknown), not inf or -inf: 2 row(s) break it, first rows [6, 10], "
                                               "e.g. inf, -inf")
    out = tmp_path / "out.json"
    text = base.astype({"promo": object})
    text.loc[7, "promo"] = "1e999"
    cases = [(text, "csv", "first rows [8], e.g. inf"), (base.assign(promo=xi), "parquet", "first rows [6, 10], e.g. inf, -inf")]
    for df, kind, want in cases:
        path = tmp_path / f"s.{kind}"
        df.to_csv(path, index=False) if kind == "csv" else df.to_parquet(path)
        res = CliRunner().invoke(app, ["backtest", "demand", "--series", str(path), "--freq", "W", "--horizon", "4",
                                       "--windows", "1", "--json", str(out)])
        msg = " ".join(res.output.split())
        assert res.exit_code == 2 and f"{path}: column promo must be a finite number" in msg and want in msg, res.output
    assert not out.exists()
    # a driver mapped under demand.series.exog: its name and the user's column
    from training.demand_config import read_series_file
    from training.errors import DataError

    path = tmp_path / "mapped.csv"
    text.rename(columns={"promo": "Aktion"}).to_csv(path, index=False)
    with pytest.raises(DataError) as exc:
        read_series_file(path, {"unique_id": "unique_id", "ds": "ds", "y": "y"}, {"promo": "Aktion"})
    assert str(exc.value) == (f"{path}: driver 'promo' (column 'Aktion' under demand.series.exog) must be a finite "
                              "number; 1 row(s) are infinite, first rows [8] (1 = the first data row), e.g. ['1e999']; "
                              "leave a cell empty when unknown")


def test_a_parquet_timestamp_outside_the_nanosecond_range_names_its_row():
    """A series table's ds stored in milliseconds (Parquet) may hold a year such as 2300: the row is
    named, not pandas' 'Out of bounds nanosecond timestamp: 10413792000000000000'."""
    ds = pd.Series(WEEKS).astype("datetime64[ms]")
    ds.iloc[4] = pd.Timestamp("2300-01-01")
    msg = _message(_table(ds=ds))
    assert "column ds must be a date between 1677-09-21 and 2262-04-11" in msg and "first rows [5]" in msg, msg
    assert "2300-01-01" in msg and "Out of bounds" not in msg, msg


def test_a_series_ds_of_times_of_day_is_not_read_as_today():
    """ds '08:26' was read as today at 08:26: every row the same period, refused as duplicates."""
    ds = pd.Series(WEEKS.strftime("%Y-%m-%d"), dtype=object)
    ds.iloc[2] = "08:26"
    msg = _message(_table(ds=ds))
    assert msg.startswith("column ds must be a date like 2024-03-31") and "first rows [3], e.g. '08:26'" in msg, msg


def test_times_of_day_are_one_pattern_for_series_order_book_and_as_of():
    """The time-of-day pattern was written twice (models/demand_data.py and training/_validate_columns.py,
    the latter also used by `data validate --as-of`), free to drift apart; it is defined once in the lower
    layer (models/ may not import training/) and the series reader, the loader and --as-of all use it."""
    import re
    from pathlib import Path

    import training._validate_dates as loader
    from models.demand_data import TIME_ONLY_RE

    assert loader.TIME_ONLY_RE is TIME_ONLY_RE
    root = Path(__file__).resolve().parents[1]
    written = sorted(str(p.relative_to(root)) for pkg in ("features", "models", "training", "serving")
                     for p in (root / pkg).rglob("*.py") if r"\d{1,2}:\d{2}(?::\d{2}" in p.read_text())
    assert written == ["models/demand_data.py"], written
    for value in ("08:26", " 8:26:00.5 ", "10:05:00 PM", "10:00 a.m."):
        assert re.fullmatch(TIME_ONLY_RE, value), value
        ds = pd.Series(WEEKS.strftime("%Y-%m-%d"), dtype=object)
        ds.iloc[2] = value
        assert "first rows [3]" in _message(_table(ds=ds)), value
    for value in ("2024-01-07 08:26", "0826", "8:2"):
        assert not re.fullmatch(TIME_ONLY_RE, value), value


def test_top_n_messages_count_the_files_rows_not_those_of_the_kept_series(tmp_path, monkeypatch):
    """--top-n / demand.top_n kept the top series before the rows were checked, so a bad cell on the file's
    data row 56 (the 26th row of series 'a', after 30 rows of the small series 'c') was said to be on row 26;
    a y of 'abc' ended in pandas' "Cannot use method 'nlargest' with dtype object" traceback. The table is now
    checked as read before the ranking: rows are the file's data rows (1 = the first data row), and a bad cell of
    a series outside the top N (the 'abc' of 'c') is refused too, as without --top-n (the ranking reads every y)."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    base = pd.concat([_table(uid=u).assign(y=lambda d, k=k: d["y"] + k, promo=np.tile([0.0, 1.0], 15))
                      for u, k in (("c", -9.0), ("a", 40.0), ("b", 30.0))], ignore_index=True).astype(object)
    assert list(base.loc[[29, 30, 55], "unique_id"]) == ["c", "a", "a"]  # file data rows 30, 31, 56
    out = tmp_path / "out.json"

    def edit(col: str, row: int, value: object) -> pd.DataFrame:
        df = base.copy()
        df.loc[row, col] = value
        return df

    cases = [
        (edit("y", 55, -5), "column y must be >= 0 (demand in units): 1 row(s) break it, first rows [56], e.g. -5"),
        (edit("y", 55, "inf"), "column y must be a finite number (demand in units), not inf or -inf: 1 row(s) break it, "
                               "first rows [56], e.g. inf"),
        (edit("ds", 55, "notadate"), "1 row(s) break it, first rows [56], e.g. 'notadate'"),
        (edit("promo", 55, "inf"), "column promo must be a finite number (a driver; leave a cell empty when unknown), "
                                   "not inf or -inf: 1 row(s) break it, first rows [56], e.g. inf"),  # config: below
        (edit("y", 9, "abc"), "column y must be a number (demand in units): 1 row(s) break it, first rows [10], e.g. 'abc'"),
        (edit("ds", 55, base.loc[54, "ds"]), "2 rows share a unique_id and a W period (one row per series and period "
                                             "expected); first: row 55 (unique_id 'a', ds 2024-06-23), row 56 "
                                             "(unique_id 'a', ds 2024-06-23)"),
    ]
    for i, (df, want) in enumerate(cases):
        path = tmp_path / f"s{i}.csv"
        df.to_csv(path, index=False)
        for cmd in (["backtest", "demand", "--horizon", "2", "--windows", "1"], ["simulate", "inventory"]):
            res = CliRunner().invoke(app, [*cmd, "--series", str(path), "--freq", "W", "--top-n", "2", "--json", str(out)])
            msg = " ".join(res.output.split())
            assert res.exit_code == 2 and f"{path}: " in msg and want in msg, (cmd, want, res.output)
            assert "Traceback" not in res.output
        # demand.series in a config, its columns mapped, demand.top_n: the same rows
        mapped = tmp_path / f"m{i}.csv"
        df.rename(columns={"unique_id": "item", "ds": "week", "y": "units"}).to_csv(mapped, index=False)
        cfg = tmp_path / f"c{i}.yaml"
        cfg.write_text(f"name: t\ndata:\n  order_lines:\n    path: {mapped}\ndemand:\n  freq: W\n  horizon: 2\n  windows: 1\n"
                       f"  top_n: 2\n  series:\n    path: {mapped}\n    columns: {{unique_id: item, ds: week, y: units}}\n"
                       "    exog: {promo: promo}\n")
        if "promo" in want:  # a mapped driver is read (and refused) with the file, before the ranking
            want = ("driver 'promo' (column 'promo' under demand.series.exog) must be a finite number; 1 row(s) are "
                    "infinite, first rows [56] (1 = the first data row), e.g. ['inf']")
        res = CliRunner().invoke(app, ["backtest", "demand", "--config", str(cfg), "--json", str(out)])
        msg = " ".join(res.output.split())
        assert res.exit_code == 2 and f"{mapped}: " in msg and want in msg, (want, res.output)
    assert not out.exists()
    # a clean table: the two series with the most units, as before
    path = tmp_path / "good.csv"
    base.to_csv(path, index=False)
    res = CliRunner().invoke(app, ["backtest", "demand", "--series", str(path), "--freq", "W", "--top-n", "2",
                                   "--horizon", "2", "--windows", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["setup"]["n_series_input"] == 2
    from training.demand_config import keep_top_series

    kept, below = keep_top_series(pd.read_csv(path), 2, "W", str(path))
    assert sorted(kept["unique_id"].unique()) == ["a", "b"] and below == frozenset({"c"})
    assert list(kept.index) == list(range(60))
