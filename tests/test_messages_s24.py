"""Small untruths found by session 24's audits, each checked against what the code does.

* A misspelt key in the config's ``promotion:`` section said "did you mean ...?" as the other sections do
  (it listed the allowed keys, or the capabilities as a Python list).
* ``backtest demand`` / ``train demand`` called the dates of their windows "windows from 2023-08-21", but
  each is the window's cutoff, the last period trained on: the forecasts start the period after.
* bench/demand_validation.py's per-cutoff line counted rows without bands as coverage misses.
* A quantity written ``6−`` (a typographic minus after the number) was dropped row by row as
  missing_quantity, while ``6-`` was refused naming ``negatives: trailing``, which reads it as -6.
* The refusal of a French 'août' beside 'sept.' said "values written the same way can" be read; they are
  written another way ('03-août-2010' beside '01-sept.-2010').

(The rollback note, which said a running service keeps serving the version rolled back from, is checked
against a real service in tests/test_serving_ops.py.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from training.config import load_config
from training.data import load_order_book
from training.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


def _config_error(tmp_path: Path, promotion: dict) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"order_lines": {"path": "ol.csv"}}, "promotion": promotion}))
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    return str(exc.value)


def test_a_misspelt_promotion_key_is_answered_with_did_you_mean(tmp_path):
    msg = _config_error(tmp_path, {"churn": {"metric": "auc", "margn": 0.005}})
    assert "key 'promotion': promotion.churn.margn: unknown key; did you mean 'margin'?" in msg, msg
    assert "allowed:" not in msg
    msg = _config_error(tmp_path, {"chrun": {"metric": "auc"}})
    assert "key 'promotion': unknown capability 'chrun' under promotion; did you mean 'churn'?" in msg, msg
    # nothing close: the keys it knows, as the other sections say them
    msg = _config_error(tmp_path, {"demand": {"xyz": 1, "directon": "minimize"}})
    assert "promotion.demand.directon: unknown key; did you mean 'direction'?" in msg, msg
    assert "promotion.demand.xyz: unknown key; known keys: metric, margin, direction" in msg, msg


def test_backtest_demand_calls_its_dates_cutoffs_and_they_are_the_last_period_trained_on():
    from training.commands.demand import _windows_line
    from training.demand_backtest import run_backtest

    rng = np.random.default_rng(3)
    weeks = pd.date_range("2023-01-02", periods=40, freq="W-MON")
    df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": weeks, "y": rng.poisson(5 + i, len(weeks)).astype(float)})
                    for i in range(3)])
    rep, cv = run_backtest(df, freq="W", h=3, n_windows=2, step_size=3)
    cutoffs = rep["setup"]["cutoffs"]
    assert cutoffs == ["2023-08-21", "2023-09-11"]
    # what the dates are: the first forecast of each window is the week after its date
    first = cv.groupby("cutoff")["ds"].min()
    assert [str((c + pd.Timedelta(weeks=1)).date()) for c in first.index] == [str(d.date()) for d in first]
    assert [str(c.date()) for c in first.index] == cutoffs
    line = _windows_line(rep["setup"])
    assert line.startswith("scored 3 series on 2 window(s) of 3 W period(s) each, with cutoffs 2023-08-21, "
                           "2023-09-11 (each the last period trained on; forecasts from the next period)"), line
    assert "window(s) from" not in line


def _demand_validation():
    spec = importlib.util.spec_from_file_location("bench_demand_validation", ROOT / "bench" / "demand_validation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_per_cutoff_coverage_leaves_rows_without_bands_out():
    nan = float("nan")
    a, b = pd.Timestamp("2011-04-18"), pd.Timestamp("2011-06-13")
    rows = [(a, 5.0, 4.0, 6.0, 3.0, 7.0), (a, 5.0, 6.0, 8.0, 5.5, 9.0), (a, 5.0, 0.0, 9.0, 0.0, 9.0),
            *[(a, 5.0, nan, nan, nan, nan)] * 5,  # no selection window before this cutoff: no bands
            (b, 2.0, 1.0, 3.0, 0.0, 4.0), (b, 9.0, 1.0, 3.0, 0.0, 4.0)]
    cv = pd.DataFrame(rows, columns=["cutoff", "y", "Final-lo-80", "Final-hi-80", "Final-lo-95", "Final-hi-95"])
    lines = _demand_validation().cutoff_lines(cv)
    assert lines == [
        "Final at cutoff 2011-04-18: cov80 0.667 cov95 0.667 (8 rows; 5 without bands (no selection window before "
        "this cutoff), left out of the coverage here and in the table above)",
        "Final at cutoff 2011-06-13: cov80 0.500 cov95 0.500 (2 rows)",
    ]
    only = _demand_validation().cutoff_lines(cv[cv["Final-lo-80"].isna()])
    assert only == ["Final at cutoff 2011-04-18: cov80 - cov95 - (5 rows; 5 without bands (no selection window "
                    "before this cutoff), left out of the coverage here and in the table above)"]


def _book(tmp_path: Path, minus: str, **opts):
    lines = ["order_id,order_date,account_id,sku,quantity,unit_price"]
    for i in range(20):
        q = f"6{minus}" if i in (3, 7) else str(5 + i % 3)
        lines.append(f"o{i},2024-01-{1 + i % 28:02d},a{i % 5},s{i % 4},{q},2.5")
    (tmp_path / "ol.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"as_of": "2024-12-31",
                                                         "order_lines": {"path": "ol.csv", **opts}}}))
    return load_order_book(cfg)


@pytest.mark.parametrize("minus", ["-", "\u2212"])
def test_a_minus_after_the_number_is_refused_naming_the_setting_and_read_under_it(tmp_path, minus):
    with pytest.raises(DataError) as exc:
        _book(tmp_path, minus)
    msg = str(exc.value)
    assert "order_lines.quantity holds 2 number(s) written with the minus sign after them" in msg, msg
    assert f"e.g. '6{minus}' (first rows [4, 8]" in msg and "set negatives: trailing (6-)" in msg
    book = _book(tmp_path, minus, negatives="trailing")
    rep = book.report.tables["order_lines"]
    assert rep.reasons["negative_quantity"]["rows"] == 2 and "missing_quantity" not in rep.reasons


def test_august_in_french_beside_september_is_not_said_to_be_written_the_same_way(tmp_path):
    lines = ["order_id,order_date,account_id,sku,quantity,unit_price"]
    dates = ["01-sept.-2010", "05-oct.-2010", "10-nov.-2010", "03-août-2010"]
    lines += [f"o{i},{dates[i % 4]},a{i % 5},s{i % 4},5,2.5" for i in range(20)]
    (tmp_path / "ol.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"as_of": "2024-12-31", "order_lines": {"path": "ol.csv"}}}))
    with pytest.raises(DataError) as exc:
        load_order_book(cfg)
    msg = str(exc.value)
    assert "written the same way" not in msg, msg
    assert ("cannot be parsed as a date, while other values of the column can ('01-sept.-2010', '05-oct.-2010'): "
            "the words août are no English month names") in msg, msg
    # where the layout is the same ('25-Mär-2024' beside '05-Jan-2024'), it still says so, with such values
    lines = ["order_id,order_date,account_id,sku,quantity,unit_price"]
    lines += [f"o{i},{['05-Jan-2024', '20-Feb-2024', '02-Apr-2024', '25-Mär-2024'][i % 4]},a1,s1,5,2.5"
              for i in range(20)]
    (tmp_path / "ol.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_order_book(cfg)
    assert "while values written the same way can ('05-Jan-2024', '20-Feb-2024')" in str(exc.value), str(exc.value)


def test_python_m_training_cli_has_the_commands_of_dealerml():
    """`python -m training.cli serve` said "No such command 'serve'": run as __main__, cli.py is a second module
    and the command modules register on `training.cli`'s app, not on it (two helpers met it this session)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "training.cli", "serve", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Usage: python -m training.cli serve" in out.stdout and "--port" in out.stdout
