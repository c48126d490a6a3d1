"""Typed date columns of the alerts tables (cutoff date, created_at / run_at timestamp) and
the text tables of earlier versions, on real DuckDB files, SQLite files and the real
PostgreSQL: new tables are typed, old ones keep text (never altered, never mixed), every
cutoff comparison works on both, and the service answers the same JSON for both."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from _support_alerts import PG_URL, _scores, _state_machine

from serving.churn import ChurnBackend
from serving.schemas import ChurnAlertsResponse
from training.alerts import read_alerts, record_alerts
from training.errors import ConfigError, DataError
from training.scores import open_db

KINDS = ["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
README = Path(__file__).resolve().parents[1] / "README.md"

# the DDL of dealerml before typed dates (text dates), as deployments still have it
_LEGACY_DDL = {
    "": ("account_id text, cutoff varchar(10), probability double precision, tier varchar(8), "
         "reason_1 text, reason_2 text, reason_3 text, expected_value double precision, "
         "revenue_at_risk double precision, model_version text, created_at varchar(32)"),
    "_state": "account_id text primary key, tier varchar(8), cutoff varchar(10)",
    "_runs": "cutoff varchar(10) primary key, run_at varchar(32), n_alerts integer",
}
_DATE_COLS = [("", "cutoff"), ("", "created_at"), ("_state", "cutoff"), ("_runs", "cutoff"), ("_runs", "run_at")]


@pytest.fixture
def where(tmp_path, request):
    """(kind, target, table name prefix); PostgreSQL tables are dropped afterwards."""
    kind = request.param
    target = {"sqlite": str(tmp_path / "a.sqlite"), "duckdb": str(tmp_path / "a.duckdb"), "postgres": PG_URL}[kind]
    made: list[str] = []
    yield kind, target, made
    if kind == "postgres":
        with open_db(PG_URL) as db:
            for t in made:
                for s in _LEGACY_DDL:
                    db.execute(f'drop table if exists "{t}{s}"')


def _name(made: list[str], prefix: str) -> str:
    made.append(f"t_{prefix}_{uuid.uuid4().hex[:8]}")
    return made[-1]


def _types(target: str, kind: str, table: str) -> dict[tuple[str, str], str]:
    """(table suffix, column) -> declared type, as a CRM tool sees it."""
    out = {}
    with open_db(target, read_only=True) as db:
        for suffix, col in _DATE_COLS:
            if kind == "sqlite":
                info = db.query(f'pragma table_info("{table}{suffix}")')
                out[(suffix, col)] = info.set_index("name").loc[col, "type"].lower()
            else:
                out[(suffix, col)] = db.query(
                    "select data_type from information_schema.columns where table_name = :t and column_name = :c",
                    {"t": f"{table}{suffix}", "c": col})["data_type"].iloc[0].lower()
    return out


def _create_legacy(target: str, table: str) -> None:
    with open_db(target) as db:
        for suffix, cols in _LEGACY_DDL.items():
            db.execute(f'create table "{table}{suffix}" ({cols})')


def _stored_texts(target: str, table: str) -> dict[tuple[str, str], list]:
    """The raw stored values of every date column, cast to nothing."""
    with open_db(target, read_only=True) as db:
        return {(s, c): db.query(f'select {c} from "{table}{s}" order by {c}')[c].tolist() for s, c in _DATE_COLS}


@pytest.mark.parametrize("where", KINDS, indirect=True)
def test_new_tables_have_typed_date_columns(where):
    kind, target, made = where
    table = _name(made, "typed")
    _state_machine(target, table)  # new crossings, idempotent rerun, re-cross, earlier refused, since
    want = {"duckdb": {"cutoff": "date", "created_at": "timestamp", "run_at": "timestamp"},
            "postgres": {"cutoff": "date", "created_at": "timestamp without time zone",
                         "run_at": "timestamp without time zone"},
            "sqlite": {"cutoff": "date", "created_at": "timestamp", "run_at": "timestamp"}}[kind]
    assert _types(target, kind, table) == {(s, c): want[c] for s, c in _DATE_COLS}
    with open_db(target, read_only=True) as db:
        runs = db.query(f'select cutoff, run_at, n_alerts from "{table}_runs" order by cutoff')
        if kind == "sqlite":  # ISO text, in the format SQLite's date functions and Python's sqlite3 read
            types = db.query(f'select distinct typeof(cutoff) as c, typeof(created_at) as t from "{table}"')
            assert types.to_dict("records") == [{"c": "text", "t": "text"}]
            assert runs["cutoff"].tolist() == ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
            assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", v) for v in runs["run_at"])
            n = db.query(f"select count(*) as n from \"{table}\" where cutoff >= date('2024-03-01') "
                         "and created_at > datetime('now', '-1 hour')")["n"].iloc[0]
        else:
            assert [pd.Timestamp(c) for c in runs["cutoff"]] == [pd.Timestamp(f"2024-0{m}-01") for m in (1, 2, 3, 4)]
            now = pd.Timestamp.now(tz="UTC").tz_localize(None)
            assert all(abs((now - pd.Timestamp(t)).total_seconds()) < 600 for t in runs["run_at"])
            assert all(pd.Timestamp(t).microsecond == 0 for t in runs["run_at"])
            # what the CRM integrator runs: date literals and date arithmetic on the columns
            n = db.query(f"select count(*) as n from \"{table}\" where cutoff >= date '2024-03-01' "
                         "and created_at > current_timestamp::timestamp - interval '1 day' "
                         "and extract(month from cutoff) in (3, 4)")["n"].iloc[0]
    assert n == 3
    assert runs["n_alerts"].tolist() == [2, 2, 2, 1]


@pytest.mark.parametrize("where", KINDS, indirect=True)
def test_legacy_text_tables_keep_working_as_text(where):
    """A deployment whose tables an earlier version created (text dates): runs twice, the next
    period, refuses an earlier date, filters by since; the columns stay text and every value
    written is text in the old format (no typed value mixed in)."""
    kind, target, made = where
    table = _name(made, "legacy")
    _create_legacy(target, table)
    before = _types(target, kind, table)
    assert set(before.values()) <= {"varchar(10)", "varchar(32)", "character varying", "varchar"}
    _state_machine(target, table)
    assert _types(target, kind, table) == before  # never altered
    stored = _stored_texts(target, table)
    for (suffix, col), values in stored.items():
        assert values and all(isinstance(v, str) for v in values), (suffix, col, values[:3])
        pattern = r"\d{4}-\d\d-\d\d" if col == "cutoff" else r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
        assert all(re.fullmatch(pattern, v) for v in values), (suffix, col, values[:3])
    assert stored[("_runs", "cutoff")] == ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    # the next period after the four runs, then a rerun of it
    r5 = record_alerts(_scores({"A": "medium", "D": "high", "F": "high"}), target, "2024-05-01", table=table)
    assert r5["new"]["account_id"].tolist() == ["F"] and not r5["already_ran"]
    again = record_alerts(_scores({"A": "high"}), target, "2024-05-01", table=table)
    assert again["already_ran"] and again["n_existing"] == 1 and len(again["new"]) == 0


def _fix_created_at(target: str, table: str, legacy: bool) -> None:
    """Both tables get the same creation times, so their answers can be compared whole."""
    with open_db(target) as db:
        if legacy:
            db.execute(f"update \"{table}\" set created_at = cutoff || 'T06:30:00'")
        elif db.kind == "sqlite":
            db.execute(f"update \"{table}\" set created_at = cutoff || ' 06:30:00'")
        else:
            db.execute(f"update \"{table}\" set created_at = cast(cutoff as timestamp) + interval '6 hours 30 minutes'")


def _answer(target: str, table: str, since, limit: int) -> dict:
    be = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1",
                      as_of=pd.Timestamp("2024-05-01"), table=pd.DataFrame(columns=[
                          "account_id", "probability", "tier", "reason_1", "reason_2", "reason_3", "model_version"]),
                      alerts_target=target, alerts_table=table)
    body = be.alerts(None if since is None else pd.Timestamp(since).date(), limit)
    return ChurnAlertsResponse.model_validate(body).model_dump(mode="json")  # what GET /churn_alerts sends


@pytest.mark.parametrize("where", KINDS, indirect=True)
def test_service_answers_the_same_for_typed_and_legacy_tables(where):
    kind, target, made = where
    typed, legacy = _name(made, "svc_typed"), _name(made, "svc_legacy")
    _create_legacy(target, legacy)
    for t in (typed, legacy):
        _state_machine(target, t)
    _fix_created_at(target, typed, legacy=False)
    _fix_created_at(target, legacy, legacy=True)
    for since, limit in [(None, 1000), ("2024-02-01", 1000), ("2024-02-15", 2), ("2024-05-01", 10)]:
        a, b = _answer(target, typed, since, limit), _answer(target, legacy, since, limit)
        assert a == b, (since, limit)
    full = _answer(target, typed, None, 1000)
    assert full["matched"] == 7 and full["alerts"][0] == {
        "account_id": "A", "cutoff": "2024-01-01", "probability": 0.9, "tier": "high",
        "reasons": ["41 days overdue against its usual 14-day rhythm"], "expected_value": 100.0,
        "model_version": "3", "created_at": "2024-01-01T06:30:00"}
    part = _answer(target, typed, "2024-02-15", 2)
    assert (part["since"], part["matched"], part["count"]) == ("2024-02-15", 3, 2)
    assert [(x["cutoff"], x["account_id"]) for x in part["alerts"]] == [("2024-03-01", "E"), ("2024-04-01", "D")]
    # read_alerts (the service's reader for PostgreSQL / SQLite, and the tests') agrees too
    pd.testing.assert_frame_equal(read_alerts(target, table=typed), read_alerts(target, table=legacy))


@pytest.mark.parametrize("where", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_documented_migration_types_a_legacy_table_and_runs_go_on(where):
    """The README's SQL turns a text table into a typed one; the state and the alerts survive."""
    kind, target, made = where
    table = _name(made, "mig")
    _create_legacy(target, table)
    for cut, tiers in [("2024-01-01", {"A": "high", "B": "low"}), ("2024-02-01", {"A": "high", "B": "high"})]:
        record_alerts(_scores(tiers), target, cut, table=table)
    before = read_alerts(target, table=table)
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.S)
    label = {"postgres": "-- PostgreSQL", "duckdb": "-- DuckDB"}[kind]
    (sql,) = [b for b in blocks if b.startswith(label)]
    sql = sql.replace("churn_alerts", table)
    if kind == "postgres":  # as the README says: psql with ON_ERROR_STOP
        r = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
                            "-q", "-c", sql], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    else:
        con = duckdb.connect(target)
        try:
            con.execute(sql)
        finally:
            con.close()
    want = "timestamp without time zone" if kind == "postgres" else "timestamp"
    assert _types(target, kind, table) == {(s, c): "date" if c == "cutoff" else want for s, c in _DATE_COLS}
    pd.testing.assert_frame_equal(read_alerts(target, table=table), before)
    assert record_alerts(_scores({"A": "high", "B": "high"}), target, "2024-02-01", table=table)["already_ran"]
    with pytest.raises(ConfigError, match="later cutoff"):
        record_alerts(_scores({"A": "high"}), target, "2024-01-15", table=table)
    r = record_alerts(_scores({"A": "low", "B": "high", "C": "high"}), target, "2024-03-01", table=table)
    assert r["new"]["account_id"].tolist() == ["C"]  # B stayed high across the migration
    assert _types(target, kind, table)[("", "cutoff")] == "date"


@pytest.mark.parametrize("where", KINDS, indirect=True)
def test_a_date_column_of_another_type_is_refused(where):
    kind, target, made = where
    table = _name(made, "int")
    with open_db(target) as db:
        db.execute(f'create table "{table}" ({_LEGACY_DDL[""].replace("cutoff varchar(10)", "cutoff integer")})')
    with pytest.raises(DataError, match=rf"{table}: column\(s\) \{{'cutoff': '[A-Za-z]+'\}} hold neither dates "
                                        r"nor text; dealerml writes \{'cutoff': 'date'\}"):
        record_alerts(_scores({"A": "high"}), target, "2024-01-01", table=table)
    with open_db(target, read_only=True) as db:  # nothing created or written
        assert not db.table_exists(f"{table}_state") and not db.table_exists(f"{table}_runs")
        assert db.query(f'select count(*) as n from "{table}"')["n"].iloc[0] == 0


@pytest.mark.postgres
def test_timestamptz_columns_a_dba_chose_hold_utc(tmp_path):
    """A DBA who typed created_at / run_at as timestamp with time zone gets the UTC instant,
    whatever the session's time zone, and the service still answers UTC ISO text."""
    made: list[str] = []
    table = _name(made, "tz")
    try:
        _create_legacy(PG_URL, table)
        with open_db(PG_URL) as db:
            db.execute(f'alter table "{table}" alter column created_at type timestamptz using created_at::timestamptz')
            db.execute(f'alter table "{table}_runs" alter column run_at type timestamptz using run_at::timestamptz')
        record_alerts(_scores({"A": "high"}), f"{PG_URL}?options=-ctimezone%3DAmerica/New_York", "2024-01-01",
                      table=table)
        with open_db(PG_URL) as db:
            db.execute("set local timezone = 'UTC'")
            stored = db.query(f'select created_at, cutoff from "{table}"').iloc[0]
            run_at = db.query(f'select run_at from "{table}_runs"')["run_at"].iloc[0]
        now = pd.Timestamp.now(tz="UTC")
        assert abs((now - pd.Timestamp(stored["created_at"])).total_seconds()) < 600
        assert abs((now - pd.Timestamp(run_at)).total_seconds()) < 600
        assert stored["cutoff"] == "2024-01-01"  # the text column next to it stays text
        got = _answer(f"{PG_URL}?options=-ctimezone%3DAsia/Tokyo", table, None, 10)["alerts"][0]
        assert got["created_at"] == pd.Timestamp(stored["created_at"]).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S")
        assert got["cutoff"] == "2024-01-01"
    finally:
        with open_db(PG_URL) as db:
            for t in made:
                for s in _LEGACY_DDL:
                    db.execute(f'drop table if exists "{t}{s}"')


@pytest.mark.parametrize("where", KINDS, indirect=True)
def test_a_run_without_a_cutoff_is_named_in_words_not_as_none(where):
    """A NULL cutoff in <alerts>_runs (SQLite's primary key allows it; a text table of an earlier
    version without the key, on any database) made `dealerml alerts` die with "'<' not supported
    between instances of 'str' and 'NoneType'" (a traceback); a cutoff that is no date was taken as
    a later run's. Both are refused naming the table and the rows, and nothing is recorded."""
    kind, target, made = where
    table = _name(made, "null")
    record_alerts(_scores({"A": "high"}), target, "2024-01-01", table=table)
    runs = f"{table}_runs"
    with open_db(target) as db:
        if kind != "sqlite":  # as an earlier version's text table without the primary key
            db.execute(f'drop table "{runs}"')
            db.execute(f'create table "{runs}" (cutoff varchar(10), run_at varchar(32), n_alerts integer)')
            db.execute(f"insert into \"{runs}\" values ('2024-01-01', '2024-01-01T06:00:00', 1)")
            db.execute(f"insert into \"{runs}\" values ('01/02/2024', '2024-01-02T06:00:00', 0)")
        db.execute(f'insert into "{runs}" (cutoff, run_at, n_alerts) values (NULL, null, 0)')
    where_said = {"sqlite": f"{target}#{runs}", "duckdb": f"{target}#{runs}"}.get(kind, runs)
    rows = ("1 run row(s) without a date: 1 with an empty cutoff (NULL)" if kind == "sqlite" else
            "2 run row(s) without a date: 1 with an empty cutoff (NULL), 1 whose cutoff is not a date YYYY-MM-DD "
            "(e.g. '01/02/2024')")
    with pytest.raises(DataError) as err:
        record_alerts(_scores({"A": "low", "B": "high"}), target, "2024-02-01", table=table)
    said = str(err.value)
    assert where_said in said and (f" holds {rows}; each row records the cutoff (YYYY-MM-DD) a run of dealerml alerts "
                                   "processed, which orders the runs and says which accounts are new: set those rows' "
                                   "cutoff to the date they ran, or delete them; nothing was recorded") in said, said
    assert "None" not in said
    with open_db(target, read_only=True) as db:  # nothing recorded: one alert, A still high in the state
        assert db.query(f'select count(*) as n from "{table}"')["n"].iloc[0] == 1
        assert db.query(f'select tier from "{table}_state"')["tier"].tolist() == ["high"]


@pytest.mark.parametrize("where", KINDS, indirect=True)
def test_a_state_row_without_a_tier_is_refused_not_alerted_again(where):
    """A NULL or blank tier in <alerts>_state (a hand edit, an import) was read as the text 'None'
    (or ''), i.e. "not high", so an account alerted at the last run was alerted again, silently.
    It is refused naming the table, the rows and what to do, and nothing is recorded."""
    kind, target, made = where
    table = _name(made, "tier")
    record_alerts(_scores({"A": "high", "B": "high", "C": "low"}), target, "2024-01-01", table=table)
    with open_db(target) as db:
        db.execute(f"update \"{table}_state\" set tier = NULL where account_id = 'A'")
        db.execute(f"update \"{table}_state\" set tier = '' where account_id = 'B'")
        db.execute(f"update \"{table}_state\" set tier = 'HIGH' where account_id = 'C'")
    with pytest.raises(DataError) as err:
        record_alerts(_scores({"A": "high", "B": "high", "C": "high"}), target, "2024-02-01", table=table)
    said = str(err.value)
    where_said = {"sqlite": f"{target}#{table}_state", "duckdb": f"{target}#{table}_state"}.get(kind, f"{table}_state")
    assert where_said in said and (
        " holds 3 state row(s) without a valid tier: 2 with an empty tier (NULL or blank; account_id e.g. 'A', 'B'), "
        "1 whose tier is none of low, medium, high (e.g. 'C': 'HIGH'); each row records the tier (low, medium or "
        "high) an account had at the last run of dealerml alerts") in said, said
    assert "set those rows' tier to the tier they had (high if they were alerted), or delete them" in said
    assert said.endswith("nothing was recorded") and "None" not in said
    with open_db(target, read_only=True) as db:  # nothing recorded: the two alerts of the first run, one run
        assert db.query(f'select count(*) as n from "{table}"')["n"].iloc[0] == 2
        assert db.query(f'select count(*) as n from "{table}_runs"')["n"].iloc[0] == 1
    with open_db(target) as db:  # repaired as the message says: A and B were alerted, so high; C deleted
        db.execute(f"update \"{table}_state\" set tier = 'high' where account_id in ('A', 'B')")
        db.execute(f"delete from \"{table}_state\" where account_id = 'C'")
    run = record_alerts(_scores({"A": "high", "B": "high", "C": "high"}), target, "2024-02-01", table=table)
    assert run["new"]["account_id"].tolist() == ["C"]
