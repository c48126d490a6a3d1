"""Bring-your-own-data audit (a new user's first files): a folder, a spreadsheet or a
';'-separated series file named as a table, a series table whose dates show another period than
``--freq``, a plan with undecided day/month dates, fatal-message wording, a ``--json`` folder.
Each stops with exit 2 / a DataError naming the file, column, rows or value and what was
expected, and writes nothing; the success paths still read the same rows.

Small real subsets of ../shared/data read in place, or tiny frames; the whole file runs in
seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _support_cli import _err  # exit 2, no traceback, the message on one line
from typer.testing import CliRunner

from training.cli import app
from training.config import load_config
from training.data import load_order_book
from training.errors import ConfigError, DataError
from training.user_files import check_series_freq, folder_problem, workbook_problem

COLS = {"order_id": "Beleg", "order_date": "Datum", "account_id": "Kunde", "sku": "Artikel",
        "quantity": "Menge", "unit_price": "Preis"}


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def retail(online_retail_path) -> pd.DataFrame:
    """The first 3,000 Online Retail lines with a user's own (German) column names, as text."""
    df = pd.read_csv(online_retail_path, nrows=3000, dtype=str)
    return df.rename(columns={"InvoiceNo": "Beleg", "StockCode": "Artikel", "Quantity": "Menge",
                              "InvoiceDate": "Datum", "UnitPrice": "Preis", "CustomerID": "Kunde"})


@pytest.fixture(scope="module")
def stallion(stallion_path) -> pd.DataFrame:
    """Eight Stallion agency x SKU series (monthly, dates on the 1st) as a long table."""
    st = pd.read_parquet(stallion_path, columns=["agency", "sku", "date", "volume"])
    uid = st["agency"].astype(str) + "/" + st["sku"].astype(str)
    keep = uid.isin(sorted(uid.unique())[:8])
    return pd.DataFrame({"unique_id": uid[keep].values, "ds": st["date"][keep].values, "y": st["volume"][keep].values})


def _config(tmp_path: Path, path: str, **table) -> Path:
    cfg = {"name": "byo", "data": {"as_of": "2012-01-01", "order_lines": {"path": path, "columns": COLS, **table}}}
    (tmp_path / "byo.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "byo.yaml"


# ------------------------------------------------------------------ a folder or a workbook as a table


def test_a_folder_of_csv_files_is_refused_naming_a_file_to_use(tmp_path, retail):
    (tmp_path / "export").mkdir()
    retail.to_csv(tmp_path / "export" / "lines.csv", index=False)
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path, "export"))
    msg = str(ei.value)
    assert msg.startswith("order_lines: ") and "is a folder, which is read only as a dataset of Parquet files" in msg
    assert "['lines.csv']" in msg and f"e.g. {tmp_path / 'export' / 'lines.csv'}" in msg
    assert "magic bytes" not in msg  # not pyarrow's message about the CSV file


def test_an_empty_folder_is_refused_as_such(tmp_path):
    (tmp_path / "export").mkdir()
    with pytest.raises(DataError, match=r"export is an empty folder; expected a file \(CSV or Parquet\)"):
        load_order_book(_config(tmp_path, "export"))


def test_a_folder_with_format_csv_is_refused_without_a_traceback(tmp_path, retail):
    (tmp_path / "export").mkdir()
    retail.to_csv(tmp_path / "export" / "lines.csv", index=False)
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(_config(tmp_path, "export", format="csv"))])
    msg = _err(res)
    assert "export: order_lines: is a folder, but format: csv reads one file" in msg
    assert "data.order_lines.path" in msg and "IsADirectoryError" not in msg


def test_a_folder_of_parquet_files_is_still_read_also_without_suffixes(tmp_path, retail):
    (tmp_path / "export").mkdir()
    retail.iloc[:1500].to_parquet(tmp_path / "export" / "part-0.parquet", index=False)
    retail.iloc[1500:].to_parquet(tmp_path / "export" / "part-1", index=False)  # Spark-style, no suffix
    (tmp_path / "export" / "_SUCCESS").write_text("")
    assert folder_problem(tmp_path / "export") is None
    folder = load_order_book(_config(tmp_path, "export"))
    retail.to_csv(tmp_path / "lines.csv", index=False)
    one = load_order_book(_config(tmp_path, "lines.csv"))
    assert folder.report.tables["order_lines"].rows_in == 3000
    assert folder.fingerprint["order_lines_sha256"] == one.fingerprint["order_lines_sha256"]


def test_an_excel_workbook_is_refused_by_name_and_by_content(tmp_path, retail):
    (tmp_path / "lines.xlsx").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(ConfigError) as ei:
        load_config(_config(tmp_path, "lines.xlsx"))
    msg = str(ei.value)
    assert "key 'data.order_lines'" in msg and "cannot tell the format" in msg
    assert "is a spreadsheet workbook (.xlsx); dealerml does not read workbooks: save the sheet as CSV" in msg
    # the same workbook renamed .csv (or format: csv): not one garbled header column
    (tmp_path / "lines.csv").write_bytes((tmp_path / "lines.xlsx").read_bytes())
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(_config(tmp_path, "lines.csv"))])
    msg = _err(res)
    assert "lines.csv is a zip archive (an Excel .xlsx or OpenDocument workbook is one)" in msg
    assert "missing required column" not in msg
    (tmp_path / "old.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    assert "Excel 97-2003 workbook (.xls)" in workbook_problem(tmp_path / "old.csv")
    retail.to_csv(tmp_path / "real.csv", index=False)
    assert workbook_problem(tmp_path / "real.csv") is None


def test_a_ragged_csv_row_is_named_by_its_line(tmp_path, retail):
    import gzip

    text = retail.to_csv(index=False).splitlines()
    text.insert(101, '999999,22423,"REGENCY CAKESTAND,4.0,2011-06-01 07:38:00,12.75,15643.0,United Kingdom')
    for name, write in (("lines.csv", lambda p, t: p.write_text(t)),
                        ("lines.csv.gz", lambda p, t: p.write_bytes(gzip.compress(t.encode())))):
        write(tmp_path / name, "\n".join(text) + "\n")
        with pytest.raises(DataError) as ei:
            load_order_book(_config(tmp_path, name))
        msg = str(ei.value)
        # a compressed file is read serially, and pyarrow's serial reader adds 'Row #102: '
        assert re.search(rf"{re.escape(name)}: cannot parse order_lines as CSV \(sep=',', encoding='utf-8'\): "
                         r"CSV parse error: (Row #102: )?Expected", msg), msg
        assert "(first at line 102 of the file, 1 = the header: " in msg  # where the bad record starts
        assert "fields where the header has 8; a value holding the separator ',' must be quoted, and every quote " \
               "closed)" in msg


def test_excel_unicode_text_export_names_utf16_then_reads(tmp_path, retail):
    (tmp_path / "lines.txt").write_bytes(retail.to_csv(index=False, sep="\t").encode("utf-16"))
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path, "lines.txt", sep="tab"))
    msg = str(ei.value)
    assert "lines.txt: order_lines is UTF-16 text (it starts with a UTF-16 byte order mark" in msg
    assert "set encoding: utf-16 in the config's data.order_lines entry (and sep: tab for that export)" in msg
    assert "latin-1" not in msg
    book = load_order_book(_config(tmp_path, "lines.txt", sep="tab", encoding="utf-16"))
    retail.to_csv(tmp_path / "lines.csv", index=False)
    assert book.fingerprint["order_lines_sha256"] == load_order_book(_config(tmp_path, "lines.csv")).fingerprint[
        "order_lines_sha256"]


# ------------------------------------------------------------------ fatal message wording


def test_a_date_column_mapped_to_prices_says_cannot_be_parsed_and_names_rows(tmp_path, retail):
    retail.to_csv(tmp_path / "lines.csv", index=False)
    cfg = _config(tmp_path, "lines.csv")
    cfg.write_text(cfg.read_text().replace("order_date: Datum", "order_date: Preis"))
    with pytest.raises(DataError) as ei:
        load_order_book(cfg)
    msg = str(ei.value)
    assert "order_lines.order_date (column 'Preis'): no value can be parsed as a date, e.g. '2.55'" in msg
    assert "(first rows [1, 2, 3, 4, 5]; 1 = the first data row)" in msg
    # most, not all, unreadable: the count says 'cannot' (it said 'can be parsed' before)
    mixed = retail.copy()
    mixed.loc[2:2001, "Datum"] = mixed.loc[2:2001, "Preis"]
    mixed.to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path, "lines.csv"))
    msg = str(ei.value)
    assert "order_lines.order_date (column 'Datum'): 2,000 of 3,000 non-empty values cannot be parsed as a date" in msg
    assert "(first rows [3, 4, 5, 6, 7]; 1 = the first data row)" in msg


def test_a_date_format_that_does_not_match_is_named_as_the_cause(tmp_path, retail):
    retail.to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path, "lines.csv", date_format="%d.%m.%Y"))
    msg = str(ei.value)
    assert "order_lines.order_date (column 'Datum'): no value can be parsed as a date, e.g. '2010-12-01 08:26:00'" in msg
    assert "expected the layout of the config's date_format: '%d.%m.%Y' under data.order_lines" in msg
    assert "expected dates like 2024-03-31" not in msg


def test_unix_timestamps_in_a_parquet_date_column_are_named_as_such(tmp_path, retail):
    df = retail.assign(Datum=pd.to_datetime(retail["Datum"]).astype("int64") // 10**6)  # epoch milliseconds
    df.to_parquet(tmp_path / "lines.parquet", index=False)
    with pytest.raises(DataError) as ei:
        load_order_book(_config(tmp_path, "lines.parquet"))
    msg = str(ei.value)
    assert "order_lines.order_date (column 'Datum'): no value can be parsed as a date, e.g. '1291191960000'" in msg
    assert "they look like Unix timestamps (seconds or milliseconds since 1970-01-01)" in msg


def test_a_number_column_mapped_to_text_names_its_first_rows(tmp_path, retail):
    retail.to_csv(tmp_path / "lines.csv", index=False)
    cfg = _config(tmp_path, "lines.csv")
    cfg.write_text(cfg.read_text().replace("quantity: Menge", "quantity: Description"))
    with pytest.raises(DataError) as ei:
        load_order_book(cfg)
    msg = str(ei.value)
    assert "order_lines.quantity (column 'Description') should hold numbers but" in msg
    assert "'WHITE HANGING HEART T-LIGHT HOLDER'" in msg and "first rows [1, 2, 3, 4, 5]" in msg


def _with_tables(tmp_path: Path, retail: pd.DataFrame, **tables: pd.DataFrame) -> Path:
    retail.to_csv(tmp_path / "lines.csv", index=False)
    cfg = yaml.safe_load(_config(tmp_path, "lines.csv").read_text())
    maps = {"inventory": {"location": "Lager", "sku": "Artikel", "on_hand": "Bestand"},
            "lead_times": {"sku": "Artikel", "lead_time_days": "LZ"}}
    for name, df in tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        cfg["data"][name] = {"path": f"{name}.csv", "columns": maps[name]}
    (tmp_path / "byo.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "byo.yaml"


def test_lead_times_with_nothing_valid_say_what_was_expected_and_show_a_row(tmp_path, retail):
    lt = pd.DataFrame({"Artikel": ["85123A", "71053", "84406B"], "LZ": ["-2", "-0.5", "two weeks"]})  # 0 is kept
    with pytest.raises(DataError) as ei:
        load_order_book(_with_tables(tmp_path, retail, lead_times=lt))
    msg = str(ei.value)
    assert "lead_times.csv: no lead_times rows left after validation (3 rows in)" in msg
    assert ("invalid_lead_time (3 rows): lead_time_days is empty, not a number or negative (< 0), e.g. row 1: "
            "sku=85123A") in msg
    assert "lead_time_days=-2" in msg


def test_no_order_lines_left_says_what_each_reason_means_with_a_row(tmp_path, retail):
    retail.to_csv(tmp_path / "lines.csv", index=False)
    ids = retail["Kunde"].dropna().str.replace(".0", "", regex=False).unique()
    pd.DataFrame({"Kunde": ["00" + i for i in ids]}).to_csv(tmp_path / "accounts.csv", index=False)
    cfg = yaml.safe_load(_config(tmp_path, "lines.csv").read_text())
    cfg["data"]["accounts"] = {"path": "accounts.csv", "columns": {"account_id": "Kunde"}}
    (tmp_path / "byo.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(DataError) as ei:
        load_order_book(tmp_path / "byo.yaml")
    msg = str(ei.value)
    assert "no order_lines left after validation (3,000 rows in); main reasons: unknown_account (" in msg
    assert "rows): account_id is not in the accounts table, e.g. row 1: order_id=536365" in msg
    assert "missing_account (" in msg and ("rows): account_id is empty (order_lines: no account's order; with no "
                                           "other fault still demand of its SKU), e.g. row ") in msg
    assert "its ids look like ['0012" in msg  # the id hint is still there


def test_negative_stock_warning_names_the_sku_and_location(tmp_path, retail):
    inv = pd.DataFrame({"Lager": ["DC1", "DC1"], "Artikel": ["85123A", "71053"], "Bestand": ["-12", "40"]})
    book = load_order_book(_with_tables(tmp_path, retail, inventory=inv))
    (warn,) = [w for w in book.report.tables["inventory"].warnings if "negative on_hand" in w]
    assert warn.startswith("1 inventory rows have negative on_hand (kept as backorders")
    assert "e.g. sku/location 85123A/DC1: -12" in warn
    assert book.inventory["on_hand"].tolist() == [-12.0, 40.0]


def test_validate_json_into_a_folder_is_refused_before_loading(tmp_path, retail):
    retail.to_csv(tmp_path / "lines.csv", index=False)
    (tmp_path / "out").mkdir()
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(_config(tmp_path, "lines.csv")),
                                   "--json", str(tmp_path / "out")])
    msg = _err(res)
    assert f"--json {tmp_path / 'out'} is a folder; give a file path inside it" in msg
    assert "Data quality report" not in res.output and list((tmp_path / "out").iterdir()) == []


# ------------------------------------------------------------------ ready series tables


def _backtest(series: Path, freq: str, tmp_path: Path):
    out = tmp_path / "bt.json"
    res = CliRunner().invoke(app, ["backtest", "demand", "--series", str(series), "--freq", freq,
                                   "--horizon", "2", "--windows", "1", "--json", str(out)])
    return res, out


def test_a_semicolon_series_file_says_it_is_semicolon_separated(tmp_path, stallion):
    f = tmp_path / "series.csv"
    stallion.to_csv(f, index=False, sep=";")
    res, out = _backtest(f, "M", tmp_path)
    msg = _err(res)
    assert "series.csv: the header is one column 'unique_id;ds;y': the file looks ';'-separated" in msg
    assert "missing column" not in msg and not out.exists()


def test_a_series_folder_or_workbook_is_refused_as_such(tmp_path, stallion):
    d = tmp_path / "tables"
    d.mkdir()
    stallion.to_parquet(d / "a.parquet", index=False)
    stallion.to_csv(d / "b.csv", index=False)
    res, out = _backtest(d, "M", tmp_path)
    msg = _err(res)
    assert "1 of its 2 file(s) are not Parquet (e.g. ['b.csv'])" in msg and "ArrowInvalid" not in msg
    (tmp_path / "s.xlsx").write_bytes(b"PK\x03\x04junk")
    res, out = _backtest(tmp_path / "s.xlsx", "M", tmp_path)
    assert "s.xlsx is a spreadsheet workbook (.xlsx)" in _err(res) and not out.exists()


def _weekly(stallion: pd.DataFrame) -> pd.DataFrame:
    """The Stallion months written as consecutive Mondays: a weekly table."""
    w = stallion.copy()
    months = sorted(w["ds"].unique())
    w["ds"] = w["ds"].map(dict(zip(months, pd.date_range("2013-01-07", periods=len(months), freq="W-MON"), strict=True)))
    w["ds"] = w["ds"].dt.strftime("%Y-%m-%d")
    return w


def test_a_weekly_table_read_daily_or_monthly_is_refused_naming_the_freq(tmp_path, stallion):
    f = tmp_path / "weekly.csv"
    _weekly(stallion).to_csv(f, index=False)
    res, out = _backtest(f, "D", tmp_path)
    msg = _err(res)
    assert "weekly.csv: --freq D reads the table as daily, but every ds is a Monday (60 dates, 2013-01-07 .." in msg
    assert "the table looks weekly" in msg and msg.endswith("use --freq W") and not out.exists()
    res, out = _backtest(f, "M", tmp_path)
    msg = _err(res)
    assert "--freq M reads one row per series and month, but the table has several" in msg
    assert "on 2013-01-07, 2013-01-14, 2013-01-21; all its dates are Mondays: the table looks weekly. Use --freq W" in msg
    assert not out.exists()


def test_monthly_and_daily_tables_at_the_wrong_freq(stallion):
    with pytest.raises(DataError, match=r"st: demand.freq: W reads the table as weekly, but every ds is the 1st of a "
                                        r"month \(60 dates, 2013-01-01 .. 2017-12-01\): the table looks monthly"):
        check_series_freq(stallion, "W", "st", "demand.freq:")
    with pytest.raises(DataError, match="use --freq M"):
        check_series_freq(stallion, "d", "st")
    daily = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01-01", periods=40, freq="D"), "y": 1.0})
    with pytest.raises(DataError, match=r"--freq W reads one row per series and week, but the table has several, e.g. "
                                        r"unique_id 'A' on 2024-01-01, 2024-01-02, 2024-01-03; its dates fall on 7 "
                                        r"different weekdays: the table looks daily. Use --freq D"):
        check_series_freq(daily, "W", "daily.csv")
    # the right period passes; so do month ends read monthly and too few dates to tell
    check_series_freq(stallion, "M", "st")
    check_series_freq(_weekly(stallion), "W", "w")
    check_series_freq(daily, "D", "d")
    ends = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01-31", periods=6, freq="ME"), "y": 1.0})
    check_series_freq(ends, "M", "e")
    with pytest.raises(DataError, match="last day of a month"):
        check_series_freq(ends, "D", "e")
    check_series_freq(_weekly(stallion).head(5), "D", "short")  # 5 Mondays: not enough to call it weekly


def test_a_weekly_table_at_the_right_freq_still_backtests(tmp_path, stallion):
    f = tmp_path / "weekly.csv"
    _weekly(stallion).to_csv(f, index=False)
    res, out = _backtest(f, "W", tmp_path)
    assert res.exit_code == 0, res.output
    assert out.exists() and "Final" in res.output


# ------------------------------------------------------------------ a --future plan


def _template(uids=("A/1", "B/2")) -> pd.DataFrame:
    ds = pd.date_range("2018-01-01", periods=3, freq="MS")
    return pd.DataFrame([{"unique_id": u, "ds": d, "price": 10.0, "promo": 0.0} for u in uids for d in ds])


def test_a_plan_with_undecided_day_month_dates_is_refused_not_swapped(tmp_path):
    from training.future_drivers import read_future_drivers

    f = tmp_path / "plan.csv"
    f.write_text("unique_id,ds,promo\nA/1,01/02/2018,20\nB/2,01/03/2018,30\n")
    with pytest.raises(DataError) as ei:
        read_future_drivers(f, _template())
    msg = str(ei.value)
    assert msg.startswith(f"--future {f}: plan.ds: dates such as '01/02/2018', '01/03/2018' can be read day first")
    assert "write ds as ISO dates (2024-03-31)" in msg
    # a value with a day above 12 settles it: day first, so 01/02/2018 is 1 February
    f.write_text("unique_id,ds,promo\nA/1,01/02/2018,20\nB/2,01/03/2018,30\nB/2,13/01/2018,\n")
    with pytest.raises(DataError, match=r"outside the forecast periods, first rows \[3\] \(values \['2018-01-13'\]\)"):
        read_future_drivers(f, _template())
    f.write_text("unique_id,ds,promo\nA/1,2018-02-01,20\nB/2,2018-03-01,30\n")
    merged, summary = read_future_drivers(f, _template())
    got = merged.set_index(["unique_id", "ds"])["promo"]
    assert got[("A/1", pd.Timestamp("2018-02-01"))] == 20.0 and got[("B/2", pd.Timestamp("2018-03-01"))] == 30.0
    assert summary["cells"] == 2 and got.sum() == 50.0


def test_gaps_and_empty_demand_in_a_series_table_are_said_to_count_as_zero(tmp_path, stallion):
    f = tmp_path / "gaps.csv"
    first = stallion["unique_id"].iloc[0]
    rows = stallion.index[stallion["unique_id"] == first]
    gappy = stallion.drop(rows[10:13]).astype({"y": object})
    gappy.loc[rows[20], "y"] = ""  # an empty y: also a period without a figure
    gappy.to_csv(f, index=False)
    res, out = _backtest(f, "M", tmp_path)
    assert res.exit_code == 0, res.output
    assert f"note: 4 missing period(s) in 1 series counted as zero demand (e.g. ['{first}']; 'filled' in the JSON)" \
        in res.output
    stallion.to_csv(tmp_path / "whole.csv", index=False)
    res, _ = _backtest(tmp_path / "whole.csv", "M", tmp_path)
    assert res.exit_code == 0 and "note:" not in res.output


def test_validate_checks_every_section_of_the_config_not_only_data(tmp_path, retail):
    retail.to_csv(tmp_path / "lines.csv", index=False)
    cfg = yaml.safe_load(_config(tmp_path, "lines.csv").read_text())
    for section, body, key in (("demand", {"freqq": "W"}, "key 'demand.freqq': unknown key; did you mean 'freq'?"),
                               ("churn", {"calibration": "isotonik"}, "key 'churn.calibration'"),
                               ("dealers", {"horizon_dayz": 90}, "key 'dealers.horizon_dayz'")):
        (tmp_path / "byo.yaml").write_text(yaml.safe_dump({**cfg, section: body}))
        out = tmp_path / "q.json"
        res = CliRunner().invoke(app, ["data", "validate", "--config", str(tmp_path / "byo.yaml"), "--json", str(out)])
        msg = _err(res)
        assert f"byo.yaml: invalid '{section}' section" in msg and key in msg
        assert not out.exists() and "Data quality report" not in res.output
    (tmp_path / "byo.yaml").write_text(yaml.safe_dump({**cfg, "demand": {"freq": "W"}}))
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(tmp_path / "byo.yaml")])
    assert res.exit_code == 0 and "Data quality report" in res.output


def test_a_config_folder_or_a_config_not_in_utf8_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match=r"config .* is a folder; expected a YAML file"):
        load_config(tmp_path)
    p = tmp_path / "mine.yaml"
    p.write_bytes("name: Bäckerei\ndata: {order_lines: {path: x.csv}}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(ei.value) == f"{p}: not UTF-8 text (byte b'\\xe4' on line 1); save the config as UTF-8"


def test_stock_at_a_location_without_order_lines_is_said_to_count_when_series_are_per_sku(tmp_path, retail):
    inv = pd.DataFrame({"Lager": ["ALL", "WH9", "WH9"], "Artikel": ["85123A", "85123A", "NOPE1"], "Bestand": ["10", "7", "3"]})
    path = _with_tables(tmp_path, retail, inventory=inv)
    cfg = yaml.safe_load(path.read_text())

    def warnings(demand: dict | None) -> list[str]:
        path.write_text(yaml.safe_dump({**cfg, **({"demand": demand} if demand is not None else {})}))
        return load_order_book(path).report.tables["inventory"].warnings

    per_sku = warnings({"levels": ["sku"]})
    assert len(per_sku) == 2
    assert per_sku[0].startswith("1 inventory rows name a SKU that no order line has (sku: ['NOPE1']")
    assert per_sku[1] == ("1 inventory rows name a location that no order line has (location: ['WH9']); kept: "
                          "demand.levels has no location (series per SKU over every location), so their on-hand is "
                          "summed into their SKU's series")
    for demand in (None, {"levels": ["sku", "location"]}):  # series per SKU x location: WH9 is used by none
        w = warnings(demand)
        assert len(w) == 2 and "(location: ['WH9']; the order lines have e.g. ['ALL']); no demand series uses them" in w[1]


def test_a_series_driver_that_is_not_numbers_is_refused_not_read_as_unknown(tmp_path, stallion_path):
    from training.demand_config import read_series_file

    st = pd.read_parquet(stallion_path, columns=["agency", "sku", "date", "volume", "price_actual"]).head(120)
    f = tmp_path / "panel.csv"
    st.assign(price_actual=st["price_actual"].map(lambda v: f"{v:.2f}".replace(".", ","))).to_csv(f, index=False)
    cols = {"unique_id": ["agency", "sku"], "ds": "date", "y": "volume"}
    with pytest.raises(DataError) as ei:
        read_series_file(f, cols, {"price": "price_actual"})
    msg = str(ei.value)
    assert "panel.csv: driver 'price' (column 'price_actual' under demand.series.exog) must be a number; 120 row(s)" in msg
    assert "first rows [1, 2, 3, 4, 5]" in msg and "write them with '.' as the decimal mark" in msg
    ok = st.astype({"price_actual": object})
    ok.loc[ok.index[2], "price_actual"] = None  # an empty cell: unknown, kept as NaN
    ok.to_csv(f, index=False)
    df = read_series_file(f, cols, {"price": "price_actual"})
    assert df["price"].isna().sum() == 1 and df["price"].notna().sum() == 119
    assert df["price"].iloc[0] == pytest.approx(float(st["price_actual"].iloc[0]))


def test_an_unreadable_resolution_days_or_lead_time_spread_is_counted_as_a_fix(tmp_path, retail):
    from training.validate import validate_lead_times, validate_service_events

    ev = pd.DataFrame({"event_date": ["2011-07-01", "2011-07-02", "2011-07-03"], "account_id": ["12347"] * 3,
                       "kind": ["complaint", "return", "ticket"], "resolution_days": ["3", "x", "-2"]})
    out, rep = validate_service_events(ev, as_of="2012-01-01")
    assert rep.fixes["resolution_days_unreadable"]["rows"] == 1
    assert "which churn reads as a case still open" in rep.fixes["resolution_days_unreadable"]["description"]
    assert rep.fixes["resolution_days_negative"]["rows"] == 1
    assert out["resolution_days"].isna().sum() == 2 and out["resolution_days"].max() == 3.0
    lt = pd.DataFrame({"sku": ["A", "B"], "lead_time_days": ["5", "7"], "lead_time_std_days": ["1", "about 2"]})
    out, rep = validate_lead_times(lt)
    assert rep.fixes["lead_time_std_days_unreadable"]["rows"] == 1 and out["lead_time_std_days"].isna().sum() == 1


def test_an_output_folder_is_refused_with_an_example_of_the_right_kind(tmp_path):
    from training.commands._common import check_out_path

    with pytest.raises(ConfigError, match=r"--out .* is a folder; give a file path inside it \(e.g. .*out\.csv\)"):
        check_out_path(tmp_path, "--out", (".csv", ".parquet"))
    with pytest.raises(ConfigError, match=r"\(e.g. .*out\.json\)"):
        check_out_path(tmp_path, "--json")


@pytest.mark.parametrize("text", ["01/12/2011", "1.12.11", "13-01-2011"])
def test_a_cutoff_with_the_year_last_is_refused_not_read_month_first(text):
    from training.data import parse_cutoff

    with pytest.raises(ConfigError) as ei:
        parse_cutoff(text)
    assert str(ei.value) == (f"--cutoff must be written year first, like 2024-06-01 (YYYY-MM-DD); got {text!r}: a date "
                             "with the year last is day first in some countries and month first in others")
    assert parse_cutoff("2011-12-01") == parse_cutoff("2011/12/01") == pd.Timestamp("2011-12-01")
    assert parse_cutoff(pd.Timestamp("2011-12-01")) == pd.Timestamp("2011-12-01")


def test_features_build_refuses_a_year_last_cutoff_before_reading(tmp_path):
    res = CliRunner().invoke(app, ["features", "build", "--config", str(tmp_path / "none.yaml"), "--cutoff", "01/12/2011",
                                   "--out", str(tmp_path / "f")])
    assert "--cutoff must be written year first" in _err(res) and not (tmp_path / "f").exists()


def test_validate_refuses_a_year_last_as_of(tmp_path):
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(tmp_path / "none.yaml"), "--as-of", "09/12/2011"])
    assert "--as-of must be written year first, like 2011-12-09 or 2011-12-09 18:00; got '09/12/2011'" in _err(res)


def test_an_order_book_without_a_whole_period_says_so_instead_of_a_traceback(tmp_path, retail):
    retail.to_csv(tmp_path / "lines.csv", index=False)  # Wednesday 2010-12-01 only (the last line with a customer: 16:58; demand also counts the later lines without one, to 17:06)
    cfg = yaml.safe_load(_config(tmp_path, "lines.csv").read_text())
    (tmp_path / "byo.yaml").write_text(yaml.safe_dump({**cfg, "demand": {"freq": "W", "levels": ["sku"], "top_n": 50}}))
    out = tmp_path / "bt.json"
    res = CliRunner().invoke(app, ["backtest", "demand", "--config", str(tmp_path / "byo.yaml"), "--json", str(out)])
    msg = _err(res)
    assert "byo.yaml: no demand series: the order lines span 2010-12-01 08:26:00 .. 2010-12-01 17:06:00" in msg
    assert "hold no whole week (Monday to Sunday) with a sale (demand.freq: W;" in msg
    assert "load a longer history or use a shorter demand.freq" in msg and "TypeError" not in res.output
    assert not out.exists()


def test_a_weekly_table_whose_weekday_moves_is_not_called_daily():
    ds = list(pd.date_range("2024-01-01", periods=10, freq="W-MON")) + [pd.Timestamp("2024-03-10")]  # + a Sunday
    df = pd.DataFrame({"unique_id": "A", "ds": ds, "y": 1.0})
    check_series_freq(df, "W", "x")  # left to the series validation ('must all fall on one weekday')
    check_series_freq(df, "M", "x")  # several rows per month, but neither daily nor on one weekday


def test_stock_of_a_sku_whose_every_line_was_dropped_is_not_said_to_have_no_order_line(tmp_path, retail):
    """`data validate` said "1 inventory rows name a SKU that no order line has (sku: ['85123A']" for a SKU
    the order lines do have, all of whose lines were dropped (here: a quantity that is not a number), so the
    user looked for a code mismatch that was not there; it now says no kept order line has it, and why.
    A SKU the lines do not have at all is said as before."""
    lines = retail.copy()
    lines.loc[lines["Artikel"] == "85123A", "Menge"] = "x"
    inv = pd.DataFrame({"Lager": ["ALL", "ALL"], "Artikel": ["85123A", "NOPE1"], "Bestand": ["10", "3"]})
    lt = pd.DataFrame({"Artikel": ["85123A"], "LZ": ["7"]})
    book = load_order_book(_with_tables(tmp_path, lines, inventory=inv, lead_times=lt))
    gone = ("1 {} rows name a SKU that no kept order line has (sku: ['85123A']): every order line of it was "
            "cancelled or dropped (see the order_lines drop reasons); no demand series uses them")
    w = book.report.tables["inventory"].warnings
    assert w[0] == gone.format("inventory"), w
    assert w[1].startswith("1 inventory rows name a SKU that no order line has (sku: ['NOPE1']; the order lines have"), w
    assert book.report.tables["lead_times"].warnings == [gone.format("lead_times")]
