"""Session 10: ``--on-hand`` and ``--future`` files are read by the series tables' reader
(``user_files.read_user_table``), so a planner's Excel export gets the same treatment as a
``--series`` table: a UTF-16 ('Unicode text') or latin-1 export is named as such, a record with
more fields than the header (a decimal comma in a comma-separated file) is refused instead of read
shifted, numbers written with a comma are said to be so, a ``.tsv`` file is read tab-separated, a
folder names the tables in it; ``forecast --future`` says so before the fit.

Tiny files in tmp_path: seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _support_cli import _err  # exit 2, no traceback, the message on one line
from typer.testing import CliRunner

from training.cli import app
from training.errors import DataError


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _on_hand(path: Path):
    from training.commands._demand_on_hand import _read_on_hand

    return _read_on_hand(path)


def _plan(path: Path):
    from training.future_drivers import read_future_drivers

    template = pd.DataFrame({"unique_id": ["S1/DC1", "S1/DC1"], "ds": pd.to_datetime(["2024-07-01", "2024-08-01"]),
                             "promo": [0.0, 0.0]})
    return read_future_drivers(path, template)


# ------------------------------------------------------------------ 1. one reader for user tables
def test_a_utf16_or_latin1_on_hand_or_plan_file_says_it_is_not_utf8(tmp_path):
    """--on-hand / --future gave pandas' raw UnicodeDecodeError where --series says what the file is."""
    u16 = tmp_path / "oh.txt"
    u16.write_bytes("unique_id\ton_hand\nS1/DC1\t12\n".encode("utf-16"))  # Excel's 'Unicode text' export
    with pytest.raises(DataError) as ei:
        _on_hand(u16)
    assert str(ei.value) == (f"--on-hand {u16}: not UTF-8 text: it starts with a UTF-16 byte-order mark (e.g. "
                             "Excel's 'Unicode text' export); the file is read as UTF-8 CSV: save it as 'CSV UTF-8' "
                             "or Parquet")
    lat = tmp_path / "plan.csv"
    lat.write_bytes("unique_id,ds,promo\nS1/DC1,2024-07-01,1\nMünchen,2024-07-01,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"^--future {lat}: not UTF-8 text: byte 0xfc at offset 40; .*'CSV UTF-8'"):
        _plan(lat)


def test_the_cli_says_so_before_the_fit_and_writes_nothing(tmp_path):
    data = tmp_path / "s.csv"
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"), "y": 1.0}).to_csv(
        data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines:\n    path: {data}\ndemand:\n  freq: M\n  series: {{path: {data}}}\n")
    oh = tmp_path / "oh.csv"
    oh.write_bytes("unique_id,on_hand\na,12\n".encode("utf-16"))
    out = tmp_path / "pol.csv"
    msg = _err(_run("safety-stock", "--config", cfg, "--out", out, "--on-hand", oh))
    assert f"--on-hand {oh}: not UTF-8 text: it starts with a UTF-16 byte-order mark" in msg
    assert "UnicodeDecodeError" not in msg and not out.exists()


def test_a_record_with_more_fields_than_the_header_is_refused_not_shifted(tmp_path):
    """'S1/DC1,12,5' under 'unique_id,on_hand' was read with its first field as the index: unique_id
    '12' and on_hand 5, silently (every table: --on-hand, --future, --series)."""
    oh = tmp_path / "oh.csv"
    oh.write_text("unique_id,on_hand\nS1/DC1,12,5\nS2/DC1,3\n")
    with pytest.raises(DataError) as ei:
        _on_hand(oh)
    assert str(ei.value) == (f"--on-hand {oh}: cannot read it as CSV: line 2 of the file (1 = the header) has 3 "
                             "fields where the header has 2; a value holding the separator ',' must be quoted (a "
                             "number written with a decimal comma, 12,5, is two fields: write it with '.' as the "
                             "decimal mark)")
    from training.demand_config import read_series_file

    s = tmp_path / "series.csv"
    s.write_text("unique_id,ds,y\nA,2024-01-01,1\nA,2024-02-01,2,5\n")  # a later row: pandas' own ParserError
    with pytest.raises(DataError, match=r"series.csv: cannot read it as CSV: line 3 of the file \(1 = the header\) has "
                                        r"4 fields where the header has 3"):
        read_series_file(s)
    s.write_text("unique_id,ds,y\nA,2024-01-01,1,5\nA,2024-02-01,2,5\n")  # every row: was read shifted
    with pytest.raises(DataError, match=r"line 2 of the file \(1 = the header\) has 4 fields where the header has 3"):
        read_series_file(s)


def test_numbers_written_with_a_comma_are_named_as_such(tmp_path):
    oh = tmp_path / "oh.csv"
    oh.write_text('unique_id,on_hand\nS1/DC1,"12,5"\nS2/DC1,"1.234,50"\nS3/DC1,7\n')
    with pytest.raises(DataError) as ei:
        _on_hand(oh)
    assert str(ei.value) == (f"--on-hand {oh}: column on_hand must be a number of units in every row (negative = "
                             "backorders); 2 row(s) are not, first rows [1, 2], e.g. ['12,5', '1.234,50'] (numbers "
                             "written with a comma: write them with '.' as the decimal mark and no thousands "
                             "separator)")
    oh.write_text("unique_id,on_hand\nS1/DC1,many\n")  # other text: no comma hint
    with pytest.raises(DataError) as ei:
        _on_hand(oh)
    assert "e.g. ['many']" in str(ei.value) and "comma" not in str(ei.value)
    plan = tmp_path / "plan.csv"
    plan.write_text('unique_id,ds,promo\nS1/DC1,2024-07-01,"0,5"\nS1/DC1,2024-08-01,1\n')
    with pytest.raises(DataError, match=r"column promo is not a finite number in 1 row\(s\), first rows \[1\] \(values "
                                        r"\['0,5'\]\) \(numbers written with a comma: write them with '\.' as the "
                                        r"decimal mark and no thousands separator\); leave a cell empty"):
        _plan(plan)


def test_on_hand_reads_what_the_series_reader_reads(tmp_path):
    """A .tsv on-hand file was read comma-separated and refused; a folder named no file in it;
    files that worked (UTF-8 with a byte-order mark, Parquet, ids kept as text) read as before."""
    tsv = tmp_path / "oh.tsv"
    tsv.write_text("unique_id\ton_hand\n007\t12\nS2/DC1\t-3\n")
    assert _on_hand(tsv).to_dict("list") == {"unique_id": ["007", "S2/DC1"], "on_hand": [12.0, -3.0]}
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffunique_id,on_hand\n007,12\n".encode())
    assert _on_hand(bom).to_dict("list") == {"unique_id": ["007"], "on_hand": [12.0]}
    pq = tmp_path / "oh.parquet"
    pd.DataFrame({"unique_id": ["007"], "on_hand": [4]}).to_parquet(pq)
    assert _on_hand(pq).to_dict("list") == {"unique_id": ["007"], "on_hand": [4.0]}
    d = tmp_path / "stock"
    d.mkdir()
    (d / "today.csv").write_text("unique_id,on_hand\na,1\n")
    with pytest.raises(DataError) as ei:
        _on_hand(d)
    assert str(ei.value) == (f"--on-hand {d}: is a folder; expected a CSV or Parquet file such as {d / 'today.csv'} "
                             "(the folder holds today.csv)")


def test_forecast_future_folder_is_said_to_be_a_folder_before_the_fit(tmp_path):
    """`forecast --future FOLDER` said 'file not found' (and a workbook was found out after the fit)."""
    data = tmp_path / "s.csv"
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"), "y": 1.0}).to_csv(
        data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines:\n    path: {data}\ndemand:\n  freq: M\n  series: {{path: {data}}}\n")
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "q3.csv").write_text("unique_id,ds,promo\n")
    out = tmp_path / "fc.csv"
    msg = _err(_run("forecast", "--config", cfg, "--out", out, "--future", plans))
    assert msg == (f"error: --future {plans}: is a folder; expected a CSV or Parquet file such as {plans / 'q3.csv'} "
                   "(the folder holds q3.csv)")
    (tmp_path / "plan.xlsx").write_bytes(b"PK\x03\x04junk")
    msg = _err(_run("forecast", "--config", cfg, "--out", out, "--future", tmp_path / "plan.xlsx"))
    assert "plan.xlsx is a spreadsheet workbook (.xlsx); dealerml does not read workbooks" in msg
    assert "left out" not in msg and not out.exists()  # refused before the fit


def test_infinite_stock_and_order_rules_are_named_as_infinite(tmp_path):
    """An --on-hand file with on_hand / on_order / min_order_qty / order_multiple of inf (CSV inf, -Infinity,
    1e999; Parquet float inf) was refused as 'must be units >= 0 ... are not', which inf is, without saying
    why; the message now says how many are infinite, their values, and that a finite number is expected."""
    import numpy as np

    oh = tmp_path / "oh.csv"
    oh.write_text("unique_id,on_hand\nS1,5\nS2,inf\nS3,-Infinity\nS4,many\n")
    with pytest.raises(DataError) as ei:
        _on_hand(oh)
    assert str(ei.value) == (f"--on-hand {oh}: column on_hand must be a number of units in every row (negative = "
                             "backorders); 3 row(s) are not, first rows [2, 3, 4], e.g. ['inf', '-Infinity', 'many'] (2 of "
                             "them infinite: inf, -Infinity; a finite number is expected)")
    for col in ("on_order", "min_order_qty", "order_multiple"):
        pq = tmp_path / f"{col}.parquet"
        pd.DataFrame({"unique_id": ["S1", "S2", "S3"], "on_hand": [5.0, 6.0, 7.0], col: [1.0, np.inf, np.nan]}).to_parquet(pq)
        with pytest.raises(DataError) as ei:
            _on_hand(pq)
        assert str(ei.value).startswith(f"--on-hand {pq}: column {col} must be ")
        assert str(ei.value).endswith("1 row(s) are not, first rows [2], e.g. [inf] (1 of them infinite: inf; a finite "
                                      "number is expected)")
    oh.write_text("unique_id,on_hand,on_order\nS1,5,1\nS2,6,1e999\n")  # text to pandas, beyond float range
    with pytest.raises(DataError) as ei:
        _on_hand(oh)
    assert str(ei.value).endswith("e.g. ['1e999'] (1 of them infinite: 1e999; a finite number is expected)")
    oh.write_text("unique_id,on_hand\nS1,many\n")  # no infinity: no note
    with pytest.raises(DataError) as ei:
        _on_hand(oh)
    assert "of them infinite" not in str(ei.value) and str(ei.value).endswith("e.g. ['many']")
