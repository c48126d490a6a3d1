"""Real-world export breakage (QA pass over what a user brings first): European Excel files
(BOM, ';', decimal comma), thousands separators, day/month order, repeated or doubly-read
columns, a wrong separator. Each is read correctly
or stops with exit 2 and a message naming the file, column, rows and the setting that fixes
it; nothing is written then.

Tiny hand-made books and CliRunner: the whole file runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from _support_cli import _err
from typer.testing import CliRunner

from training.cli import app
from training.data import load_order_book
from training.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _lines(n_days: int = 60, start: str = "2024-01-01", n_accounts: int = 3) -> pd.DataFrame:
    rows = []
    for i, d in enumerate(pd.date_range(start, periods=n_days, freq="D")):
        rows.append({"order_id": f"O{i}", "order_date": d, "account_id": f"A{i % n_accounts}", "sku": f"S{i % 4}",
                     "quantity": 1000.0 + i if i % 3 == 0 else 2.5, "unit_price": 1234.5 if i % 2 else 8.01})
    return pd.DataFrame(rows)


def _config(tmp_path: Path, text: str | bytes, **table) -> Path:
    f = tmp_path / "ol.csv"
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    cfg = {"name": "qa", "data": {"order_lines": {"path": "ol.csv", **table}, "as_of": "2025-12-31"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "config.yaml"


def _validate(cfg: Path, tmp_path: Path):
    out = tmp_path / "report.json"
    res = CliRunner().invoke(app, ["data", "validate", "--config", str(cfg), "--json", str(out)])
    return res, out


def _euro_excel(df: pd.DataFrame) -> bytes:
    """What Excel writes in a German / French locale: BOM, ';', decimal comma, 1.234,50."""
    def num(v: float) -> str:
        whole, frac = f"{v:,.2f}".split(".")
        return whole.replace(",", ".") + "," + frac
    out = df.assign(order_date=df["order_date"].dt.strftime("%d.%m.%Y"),
                    quantity=df["quantity"].map(num), unit_price=df["unit_price"].map(num))
    return ("\ufeff" + out.to_csv(index=False, sep=";")).encode("utf-8")


def test_european_excel_file_is_refused_naming_the_setting_then_read_exactly(tmp_path):
    lines = _lines()
    cfg = _config(tmp_path, _euro_excel(lines), sep=";")
    res, out = _validate(cfg, tmp_path)
    msg = _err(res)
    assert "ol.csv: order_lines.quantity holds 60 number(s) written with a comma" in msg
    assert "'1.000,00'" in msg and "first rows [1, 2, 3, 4, 5]" in msg and "decimal: ','" in msg
    assert not out.exists()

    cfg = _config(tmp_path, _euro_excel(lines), sep=";", decimal=",")
    book = load_order_book(cfg)
    ol = book.order_lines.sort_values("order_id", key=lambda s: s.str[1:].astype(int)).reset_index(drop=True)
    assert ol["quantity"].tolist() == lines["quantity"].tolist()  # 1.000,00 is a thousand, 2,50 is 2.5
    assert ol["unit_price"].tolist() == lines["unit_price"].tolist()
    # 13.01.2024 settles the order: day first, without dayfirst: in the config
    assert ol["order_date"].tolist() == lines["order_date"].tolist()


def test_thousands_separators_are_refused_not_dropped_as_missing(tmp_path):
    lines = _lines()
    text = lines.assign(quantity=lines["quantity"].map(lambda v: f"{v:,.0f}" if v >= 1000 else str(v))).to_csv(index=False)
    res, out = _validate(_config(tmp_path, text), tmp_path)
    msg = _err(res)
    # before: the 20 lines of 1,000 units or more were dropped as missing_quantity, the run went on
    assert "order_lines.quantity holds 20 number(s) written with a comma, e.g. '1,000', '1,003', '1,006'" in msg
    assert "first rows [1, 4, 7, 10, 13]" in msg and "thousands: ','" in msg
    assert not out.exists()
    book = load_order_book(_config(tmp_path, text, thousands=","))
    assert sorted(book.order_lines["quantity"]) == sorted(lines["quantity"])


def test_decimal_and_thousands_must_differ(tmp_path):
    with pytest.raises(ConfigError, match=r"thousands and decimal must differ; both are ','"):
        load_order_book(_config(tmp_path, _lines().to_csv(index=False), decimal=",", thousands=","))


def _slash(df: pd.DataFrame, fmt: str) -> str:
    return df.assign(order_date=df["order_date"].dt.strftime(fmt)).to_csv(index=False)


def test_day_first_dates_are_read_day_first_when_a_value_settles_it(tmp_path):
    lines = _lines()  # 2024-01-01 .. 2024-02-29: 13/01/2024 and later settle it
    book = load_order_book(_config(tmp_path, _slash(lines, "%d/%m/%Y")))
    got = book.order_lines.set_index("order_id")["order_date"]
    assert got["O2"] == pd.Timestamp("2024-01-03")  # 03/01/2024 was read as March 1st before
    assert got["O40"] == pd.Timestamp("2024-02-10")
    assert sorted(got) == sorted(lines["order_date"])
    us = load_order_book(_config(tmp_path, _slash(lines, "%m/%d/%Y")))  # month first still works
    assert sorted(us.order_lines["order_date"]) == sorted(lines["order_date"])


@pytest.mark.parametrize(
    ("fmt", "table", "fragments"),
    [
        ("%d/%m/%Y", {"dayfirst": False}, ["'13/01/2024'", "rows [13, 14, 15, 16, 17]", "are day/month/year",
                                           "dayfirst: false; set dayfirst: true"]),
        ("%m/%d/%Y", {"dayfirst": True}, ["'01/13/2024'", "are month/day/year", "set dayfirst: false"]),
    ],
)
def test_day_month_order_contradicting_the_config_is_refused(tmp_path, fmt, table, fragments):
    res, out = _validate(_config(tmp_path, _slash(_lines(), fmt), **table), tmp_path)
    msg = _err(res)
    assert "ol.csv: order_lines.order_date" in msg
    for f in fragments:
        assert f in msg
    assert not out.exists()


def test_ambiguous_or_mixed_day_month_dates_are_refused(tmp_path):
    lines = _lines(n_days=12)  # 01/01 .. 12/01: either order reads every value
    msg = _err(_validate(_config(tmp_path, _slash(lines, "%d/%m/%Y")), tmp_path)[0])
    assert "'01/01/2024', '02/01/2024', '03/01/2024' can be read day first or month first" in msg
    assert "set dayfirst: true (31/01/2024) or dayfirst: false (01/31/2024)" in msg
    # the same file with the order said is read so
    book = load_order_book(_config(tmp_path, _slash(lines, "%d/%m/%Y"), dayfirst=True))
    assert book.order_lines["order_date"].max() == pd.Timestamp("2024-01-12")

    both = _lines(n_days=40)
    text = both.assign(order_date=[d.strftime("%d/%m/%Y" if i < 20 else "%m/%d/%Y")
                                   for i, d in enumerate(both["order_date"])]).to_csv(index=False)
    msg = _err(_validate(_config(tmp_path, text), tmp_path)[0])
    assert "mixes day/month/year dates ('13/01/2024'" in msg and "month/day/year dates ('01/21/2024'" in msg
    assert "rows [13, 14, 15, 16, 17]" in msg and "rows [21, 22, 23, 24, 25]" in msg


def test_a_year_last_value_neither_order_reads_is_unparseable_not_called_ambiguous(tmp_path):
    """'31/31/2020' in an ISO column was refused as 'can be read day first or month first ... (none has
    a day above 12)', both false; it reads in neither order, so it is an unparseable date of its row."""
    lines = _lines(n_days=30)
    text = lines.assign(order_date=[("31/31/2024" if i == 4 else d.strftime("%Y-%m-%d"))
                                    for i, d in enumerate(lines["order_date"])]).to_csv(index=False)
    book = load_order_book(_config(tmp_path, text))
    reason = book.report.to_dict()["tables"]["order_lines"]["reasons"]["unparseable_date"]
    assert reason["rows"] == 1 and reason["examples"][0]["order_date"] == "31/31/2024"
    assert len(book.order_lines) == len(lines) - 1
    # a decidable value still decides beside it: 25/01 is day first, so 03/01 is 3 January
    text = lines.assign(order_date=["31/31/2024", "25/01/2024", "03/01/2024"] + ["2024-01-05"] * (len(lines) - 3)
                        ).to_csv(index=False)
    book = load_order_book(_config(tmp_path, text))
    assert sorted(book.order_lines["order_date"].dt.strftime("%m-%d").unique())[:2] == ["01-03", "01-05"]


def test_times_of_day_without_a_date_are_not_read_as_today(tmp_path):
    """A time column mapped as the date ('08:26:00') was read as today at that time: every line a
    future_date ('no order_lines left') or, before the as-of time, kept as today's order. A time
    alone is not a date: one is an unparseable_date row, a whole column says what it holds."""
    lines = _lines(n_days=30)
    text = lines.assign(order_date=[("08:26" if i == 4 else d.strftime("%d/%m/%Y"))
                                    for i, d in enumerate(lines["order_date"])]).to_csv(index=False)
    book = load_order_book(_config(tmp_path, text))
    reason = book.report.to_dict()["tables"]["order_lines"]["reasons"]["unparseable_date"]
    assert reason["rows"] == 1 and reason["examples"][0]["order_date"] == "08:26"
    assert book.order_lines["order_date"].max() < pd.Timestamp("2024-02-01")
    msg = _err(_validate(_config(tmp_path, lines.assign(order_date="10:05:00 PM").to_csv(index=False)), tmp_path)[0])
    assert "order_lines.order_date: no value can be parsed as a date, e.g. '10:05:00 PM'" in msg
    assert "times of day without a date (a time column mapped as the date?)" in msg


def test_a_column_named_twice_in_the_header_is_refused(tmp_path):
    text = _lines().assign(channel="web").to_csv(index=False).replace("channel", "quantity", 1)
    msg = _err(_validate(_config(tmp_path, text), tmp_path)[0])  # which 'quantity' was read was left to chance
    assert "ol.csv: order_lines: the header names column 'quantity' 2 times (columns [5, 7]" in msg


def test_a_mapped_column_also_read_under_its_own_name_is_refused(tmp_path):
    # line_amount mapped to the price column, while unit_price is still looked up as 'unit_price':
    # line amounts were silently the unit prices
    cfg = _config(tmp_path, _lines().to_csv(index=False), columns={"line_amount": "unit_price"})
    msg = _err(_validate(cfg, tmp_path)[0])
    assert "your column 'unit_price' is mapped to ['line_amount'] and would also be read as ['unit_price']" in msg


def test_one_column_header_says_which_separator_to_set(tmp_path):
    msg = _err(_validate(_config(tmp_path, _lines().to_csv(index=False, sep=";")), tmp_path)[0])
    assert "is missing required column(s)" in msg
    assert "the file looks ';'-separated, set sep: ';'" in msg
    # said once and first: each column's "did you mean '<the whole header>'?" buried it at the end
    assert "did you mean" not in msg and msg.count("order_id;order_date") == 1, msg


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("name: t\ndata:\n  order_lines:\n    path: ol.csv\n    colums: {sku: Item}\n",
         "key 'data.order_lines.colums': unknown key; did you mean 'columns'?"),
        ("name: t\ndata:\n  order_lines: {path: ol.csv}\n  acounts: {path: a.csv}\n",
         "key 'data.acounts': unknown key; did you mean 'accounts'?"),
        ("name: t\ndata:\n  order_lines: {path: ol.csv}\ndemnd: {}\n", "key 'demnd': unknown key; did you mean 'demand'?"),
        ("name: t\ndata:\n  order_lines: {path: ol.csv, zzz: 1}\n", "key 'data.order_lines.zzz': unknown key; known keys: path, url"),
    ],
)
def test_a_misspelt_config_key_names_the_key_it_means(tmp_path, yaml_text, expected):
    (tmp_path / "ol.csv").write_text(_lines().to_csv(index=False))
    (tmp_path / "config.yaml").write_text(yaml_text)
    msg = _err(_validate(tmp_path / "config.yaml", tmp_path)[0])
    assert "config.yaml: invalid experiment config" in msg and expected in msg


def test_series_table_day_first_dates_read_day_first_or_refused(tmp_path):
    from training.demand_config import read_series_file

    days = pd.date_range("2024-01-01", periods=40, freq="D")
    f = tmp_path / "daily.csv"
    pd.DataFrame({"unique_id": "A", "ds": days.strftime("%d/%m/%Y"), "y": 1.0}).to_csv(f, index=False)
    got = read_series_file(f)
    assert got["ds"].tolist() == list(days)  # 02/01/2024 is January 2nd, as 13/01/2024 shows

    months = pd.date_range("2023-01-01", periods=12, freq="MS")  # every day is the 1st: undecided
    f = tmp_path / "monthly.csv"
    pd.DataFrame({"unique_id": "A", "ds": months.strftime("%d/%m/%Y"), "y": 1.0}).to_csv(f, index=False)
    with pytest.raises(DataError, match=r"monthly.csv: series.ds: dates such as '01/01/2023', '01/02/2023', "
                                        r"'01/03/2023' can be read day first or month first .*write ds as ISO"):
        read_series_file(f)


def test_a_semicolon_plan_or_stock_file_says_so(tmp_path):
    from training.user_files import read_series_table

    f = tmp_path / "oh.csv"
    f.write_bytes("\ufeffunique_id;on_hand\nSKU1/DC1;12,5\n".encode())
    with pytest.raises(DataError, match=r"--on-hand oh.csv: the header is one column 'unique_id;on_hand': the file "
                                        r"looks ';'-separated; write it comma-separated"):
        read_series_table(f, "--on-hand oh.csv", "columns unique_id, on_hand")


def test_account_attribute_with_decimal_commas_is_refused_then_read_as_numbers(tmp_path):
    _config(tmp_path, _lines().to_csv(index=False))
    (tmp_path / "acc.csv").write_text("account_id;credit_limit\nA0;13.000,00\nA1;177.000,50\nA2;950,00\n")
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["data"]["accounts"] = {"path": "acc.csv", "sep": ";", "columns": {"credit_limit": "credit_limit"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    msg = _err(_validate(tmp_path / "config.yaml", tmp_path)[0])  # was kept as text without a word
    assert "acc.csv: accounts.credit_limit holds 3 number(s) written with a comma, e.g. '13.000,00'" in msg
    cfg["data"]["accounts"]["decimal"] = ","
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    acc = load_order_book(tmp_path / "config.yaml").accounts.set_index("account_id")["credit_limit"]
    assert acc.to_dict() == {"A0": 13000.0, "A1": 177000.5, "A2": 950.0}
