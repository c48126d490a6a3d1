"""Messages a user reads from the CLI and the book loader, said as the user wrote the value and with
what to do: the stock / lead-time rows of a SKU that no kept order line has, named as the files write
the SKU ('7.0') even where validation reads it otherwise ('7'); a folder at the DuckDB path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _support_cli import _err  # exit 2, no traceback, the message on one line
from typer.testing import CliRunner

from training.cli import app
from training.data import load_order_book

LINES = """order_id,order_date,account_id,sku,quantity,unit_price
1,2024-01-02,C1,A1,3,1
2,2024-01-09,C1,A1,2,1
3,2024-01-10,C2,7.0,x,1
4,2024-01-11,C2,7.0,x,1
5,2024-01-12,C2,B2,1,1
"""


def _book(tmp_path: Path, inventory: str, lead_times: str):
    (tmp_path / "lines.csv").write_text(LINES)
    (tmp_path / "inventory.csv").write_text(inventory)
    (tmp_path / "lead_times.csv").write_text(lead_times)
    cfg = {"name": "s23", "data": {"as_of": "2024-06-01", "order_lines": {"path": "lines.csv"},
                                   "inventory": {"path": "inventory.csv"}, "lead_times": {"path": "lead_times.csv"}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return load_order_book(tmp_path / "c.yaml")


GONE = ("1 {} rows name a SKU that no kept order line has (sku: [{}]{}): every order line of it was cancelled or "
        "dropped (see the order_lines drop reasons); no demand series uses them")


def test_stock_of_a_sku_the_lines_write_as_7_0_is_said_to_have_no_kept_line_as_the_files_write_it(tmp_path):
    """SKU '7.0' on order lines whose every quantity is text (all dropped); the inventory writes it '7', the
    lead times '7.0', both read as SKU '7'. The warning was "no order line has (sku: ['7']; the order lines
    have e.g. ['A1', 'B2'])": the old wording, sending the user after a code mismatch in a SKU the lines
    have, and naming '7' for the lead times that write '7.0'. It now says no kept order line has it, named
    as each file writes it, and how the order lines write it where that differs."""
    book = _book(tmp_path, "location,sku,on_hand\nALL,7,5\nALL,8.0,1\n", "sku,lead_time_days\n7.0,3\n")
    inv = book.report.tables["inventory"].warnings
    assert inv[0] == GONE.format("inventory", "'7'", "; the order lines write it as ['7.0'], read as the same SKU")
    # a SKU no line has at all: the old wording, but the value as written ('8.0', read as '8')
    assert inv[1] == ("1 inventory rows name a SKU that no order line has (sku: ['8.0']; the order lines have "
                      "e.g. ['A1', 'B2']); no demand series uses them")
    assert book.report.tables["lead_times"].warnings == [GONE.format("lead_times", "'7.0'", "")]
    assert set(book.inventory["sku"]) == {"7", "8"}  # read as before: only the words changed


def test_a_sku_written_alike_in_both_files_is_said_as_before(tmp_path):
    """No rewrite: the message is the one tests/test_byo_audit.py pins (no 'write it as' clause)."""
    book = _book(tmp_path, "location,sku,on_hand\nALL,7.0,5\n", "sku,lead_time_days\n7.0,3\n")
    assert book.report.tables["inventory"].warnings == [GONE.format("inventory", "'7.0'", "")]


def test_a_location_written_1_0_in_every_file_matches_the_stock_to_its_lines(tmp_path):
    """Location codes exported as '1.0' (a float column written out) in the order lines and the stock: the
    inventory read its location as an id ('1.0' -> '1') while the order lines and lead times keep the text
    ('1.0'), so the stock matched no series and was called unused. Every table now reads location alike."""
    lines = "order_id,order_date,account_id,sku,quantity,unit_price,location\n" + "".join(
        f"{i},2024-01-{i + 1:02d},C1,A1,2,1,1.0\n" for i in range(1, 9))
    (tmp_path / "lines.csv").write_text(lines)
    (tmp_path / "inventory.csv").write_text("location,sku,on_hand\n1.0,A1,5\n")
    (tmp_path / "lead_times.csv").write_text("sku,location,lead_time_days\nA1,1.0,3\n")
    cfg = {"name": "s23", "data": {"as_of": "2024-06-01", "order_lines": {"path": "lines.csv"},
                                   "inventory": {"path": "inventory.csv"}, "lead_times": {"path": "lead_times.csv"}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    book = load_order_book(tmp_path / "c.yaml")
    assert set(book.order_lines["location"]) == set(book.inventory["location"]) == set(book.lead_times["location"]) \
        == {"1.0"}
    assert book.report.tables["inventory"].warnings == []


# ------------------------------------------------------------------ a folder at the DuckDB path
_FOLDER = ("is a folder holding 2 entries: ['dealerml.duckdb.wal', 'notes.txt'], not a DuckDB file: the file is made "
           "(or read) at that path, so remove or rename the folder, or ")


@pytest.fixture
def home_with_a_folder(tmp_path, monkeypatch) -> Path:
    """$DEALERML_HOME with a folder dealerml.duckdb (two entries), and a config (its data is never read)."""
    home = tmp_path / "home"
    (home / "dealerml.duckdb").mkdir(parents=True)
    (home / "dealerml.duckdb" / "notes.txt").write_text("x")
    (home / "dealerml.duckdb" / "dealerml.duckdb.wal").write_text("")
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"name": "s23", "data": {"order_lines": {"path": "lines.csv"}}}))
    return home


def _said(*args) -> str:
    return _err(CliRunner().invoke(app, [str(a) for a in args]))


@pytest.mark.parametrize("argv, option, instead", [
    (["score", "churn", "--out", "churn_scores"], "--out churn_scores",
     "name another database with --target (e.g. --target scores.duckdb), or point DEALERML_HOME at another folder"),
    (["score", "dealers", "--out", "dealer_scores"], "--out dealer_scores",
     "name another database as --out DATABASE#dealer_scores (e.g. --out scores.duckdb#dealer_scores), or point "
     "DEALERML_HOME at another folder"),
    (["score", "dealers", "--out", "{tmp}/d.csv", "--churn-scores", "churn_scores"], "--churn-scores churn_scores",
     "name another database as --churn-scores DATABASE#churn_scores (e.g. --churn-scores scores.duckdb#churn_scores), "
     "or point DEALERML_HOME at another folder"),
])
def test_a_folder_named_dealerml_duckdb_in_the_home_says_what_is_there_and_what_to_do(home_with_a_folder, tmp_path,
                                                                                       argv, option, instead):
    """A folder dealerml.duckdb in $DEALERML_HOME was said as "the default database ... is a folder; give a
    DuckDB file inside it (e.g. .../dealerml.duckdb/dealerml.duckdb)": a default the user never gave, no
    option to give another, nor that the folder is in the way. It now says what the folder holds, to remove
    or rename it, and the option (or DEALERML_HOME) that names another database; before any data is read."""
    argv = [a.format(tmp=tmp_path) for a in argv]
    msg = _said(*argv[:2], "--config", tmp_path / "c.yaml", "--cutoff", "2024-06-01", *argv[2:])
    db = home_with_a_folder / "dealerml.duckdb"
    assert msg == f"error: {option}: the default database {db} {_FOLDER}{instead}", msg
    assert not (tmp_path / "d.csv").exists()


def test_alerts_with_a_folder_at_the_default_or_configured_target_name_the_option_and_the_config_key(
        home_with_a_folder, tmp_path):
    db = home_with_a_folder / "dealerml.duckdb"
    cfg = tmp_path / "c.yaml"
    msg = _said("alerts", "--config", cfg, "--cutoff", "2024-06-01")
    assert msg == (f"error: the default alerts target {db} {_FOLDER}give --target (e.g. --target alerts.duckdb) or "
                   f"set serving.alerts_target in {cfg} (where GET /churn_alerts reads them), or point DEALERML_HOME "
                   "at another folder"), msg
    (tmp_path / "alerts.duckdb").mkdir()  # serving.alerts_target: a folder too
    cfg.write_text(yaml.safe_dump({"name": "s23", "data": {"order_lines": {"path": "lines.csv"}},
                                   "serving": {"alerts_target": str(tmp_path / "alerts.duckdb")}}))
    msg = _said("alerts", "--config", cfg, "--cutoff", "2024-06-01")
    assert msg == (f"error: {cfg}: key 'serving.alerts_target' {tmp_path / 'alerts.duckdb'} is a folder (empty), not "
                   "a DuckDB file: the file is made (or read) at that path, so remove or rename the folder, or set "
                   "serving.alerts_target to another path, or give --target (e.g. --target alerts.duckdb)"), msg


def test_the_service_with_a_folder_at_the_alerts_target_says_so_in_its_log_not_being_written(tmp_path, caplog):
    """GET /churn_alerts with a folder at the alerts target (a folder dealerml.duckdb in $DEALERML_HOME)
    answered 503 "its file is being written (dealerml alerts?); try again in a moment" for as long as the
    folder was there, and logged "cannot be opened (being written?): IO Error ... Is a directory". The
    client now gets the 503 of an alerts table that cannot be read (the log says why), and the log
    says what is at the path and what to do."""
    import pandas as pd

    from serving.churn import _ALERTS_DOWN, ChurnBackend
    from serving.state import NotReady

    folder = tmp_path / "dealerml.duckdb"
    folder.mkdir()
    backend = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1",
                           as_of=pd.Timestamp("2025-01-01"), table=pd.DataFrame({"account_id": [], "probability": []}),
                           alerts_target=str(folder), alerts_table="churn_alerts")
    with caplog.at_level("ERROR", logger="dealerml.serving"), pytest.raises(NotReady) as info:
        backend.alerts(None, 10)
    assert str(info.value) == _ALERTS_DOWN and "being written" not in caplog.text
    assert (f"GET /churn_alerts: cannot read the alerts table churn_alerts: the alerts target {folder} is a folder "
            "(empty), not a DuckDB file: the file is made (or read) at that path, so remove or rename the folder, or "
            "set serving.alerts_target in the service's config (or DEALERML_HOME) to where `dealerml alerts` writes, "
            "and start the service again") in caplog.text


@pytest.mark.parametrize("kind", ["no file", "duckdb without the table", "sqlite without the table", "table there"])
def test_churn_alerts_say_when_there_is_no_alerts_table_where_the_service_reads(tmp_path, kind):
    """GET /churn_alerts answered 0 alerts alike for a quiet day and for an alerts target that `dealerml alerts`
    never wrote (serving.alerts_target pointing elsewhere): a CRM polling it could not tell. ``note`` says it
    now; a table that is there, even empty of matches, has no note."""
    import sqlite3

    import duckdb
    import pandas as pd

    from serving.churn import ChurnBackend
    from serving.schemas import ChurnAlertsResponse

    target = tmp_path / ("alerts.sqlite" if kind.startswith("sqlite") else "alerts.duckdb")
    if kind.startswith("duckdb") or kind == "table there":
        con = duckdb.connect(str(target))
        con.execute("create table other (x int)")
        if kind == "table there":
            con.execute("create table churn_alerts (account_id varchar, cutoff date, probability double)")
            con.execute("insert into churn_alerts values ('A1', date '2024-01-01', 0.9)")
        con.close()
    elif kind.startswith("sqlite"):
        sqlite3.connect(target).execute("create table other (x int)").connection.close()
    backend = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1",
                           as_of=pd.Timestamp("2025-01-01"), table=pd.DataFrame({"account_id": [], "probability": []}),
                           alerts_target=str(target), alerts_table="churn_alerts")
    ans = backend.alerts(pd.Timestamp("2025-06-01"), 10)  # nothing on or after: 0 either way
    assert (ans["count"], ans["matched"]) == (0, 0)
    ChurnAlertsResponse(**ans)  # the answer's schema takes it
    if kind == "table there":
        assert ans["note"] is None
    else:
        assert ans["note"] == ("there is no alerts table 'churn_alerts' where this service reads alerts "
                               "(serving.alerts_target): `dealerml alerts` has not written there yet; run it, or "
                               "check that it and the service use the same target")
