"""Atomic score-table writes: DuckDB, SQLite, files and the real PostgreSQL.

A write that fails after partial rows, or a writer process killed mid-write, must leave
the previous table exactly as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.errors import ConfigError, DataError
from training.scores import open_db, read_table, resolve_out, table_exists, write_table

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _frame(n: int, tag: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [f"A{i:06d}" for i in range(n)],
            "probability": np.linspace(0, 1, n),
            "tier": ["high"] * n,
            "tag": [tag] * n,
        }
    )


def _poisoned(n: int, bad_row: int) -> pd.DataFrame:
    """A frame whose row ``bad_row`` cannot be stored: the write fails after earlier chunks."""
    df = _frame(n, "new")
    df["probability"] = df["probability"].astype(object)
    df.at[bad_row, "probability"] = {"not": "storable"}
    return df


@pytest.mark.parametrize("ext", [".duckdb", ".sqlite"])
def test_replace_and_failed_write_keeps_previous(tmp_path, ext):
    target = tmp_path / f"scores{ext}"
    write_table(_frame(10, "old"), target, "churn_scores")
    write_table(_frame(20, "v2"), target, "churn_scores")
    got = read_table(target, "churn_scores")
    assert len(got) == 20 and set(got["tag"]) == {"v2"}

    chunks = []
    with pytest.raises(DataError, match="previous table or file is unchanged"):
        write_table(_poisoned(3000, 2500), target, "churn_scores", chunksize=1000,
                    on_chunk=lambda i, n: chunks.append(n))
    assert chunks == [1000, 2000]  # partial rows really were written before the failure
    got = read_table(target, "churn_scores")
    assert len(got) == 20 and set(got["tag"]) == {"v2"}
    with open_db(target) as db:  # no temp table left behind
        tables = db.query(
            "select table_name from information_schema.tables" if ext == ".duckdb"
            else "select name as table_name from sqlite_master where type='table'"
        )
    assert tables["table_name"].tolist() == ["churn_scores"]


@pytest.mark.postgres
def test_postgres_replace_and_failed_write(tmp_path):
    table = f"t_scores_{uuid.uuid4().hex[:8]}"
    try:
        write_table(_frame(5, "old"), PG_URL, table)
        assert len(read_table(PG_URL, table)) == 5
        with pytest.raises(DataError, match="previous table or file is unchanged"):
            write_table(_poisoned(3000, 2500), PG_URL, table, chunksize=1000)
        got = read_table(PG_URL, table)
        assert len(got) == 5 and set(got["tag"]) == {"old"}
        write_table(_frame(7, "new"), PG_URL, table)
        assert set(read_table(PG_URL, table)["tag"]) == {"new"}
        with open_db(PG_URL) as db:
            left = db.query("select tablename from pg_tables where tablename like :p", {"p": f"{table}%"})
        assert left["tablename"].tolist() == [table]
    finally:
        with open_db(PG_URL) as db:
            db.execute(f'drop table if exists "{table}"')


_WRITER = """
import sys, numpy as np, pandas as pd
from training.scores import write_table
n = 400_000
df = pd.DataFrame({"account_id": np.arange(n).astype(str), "probability": np.random.rand(n), "tag": "new"})
def progress(i, rows):
    print(f"chunk {i}", flush=True)
write_table(df, sys.argv[1], "churn_scores", chunksize=4_000, on_chunk=progress)
print("done", flush=True)
"""


@pytest.mark.parametrize("target_kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_killed_writer_leaves_previous_table(tmp_path, target_kind):
    if target_kind == "duckdb":
        target, schema_table = str(tmp_path / "scores.duckdb"), "churn_scores"
    else:  # a unique table name in the shared database, dropped at the end
        target, schema_table = PG_URL, f"t_kill_{uuid.uuid4().hex[:8]}"
    script = _WRITER.replace('"churn_scores"', repr(schema_table))
    try:
        write_table(_frame(10, "old"), target, schema_table)
        proc = subprocess.Popen(
            [sys.executable, "-c", script, target],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
        )
        seen = 0
        for line in proc.stdout:
            if line.startswith("chunk"):
                seen += 1
            if seen >= 3:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL  # really killed mid-write, not finished
        got = read_table(target, schema_table)
        assert len(got) == 10 and set(got["tag"]) == {"old"}
    finally:
        if target_kind == "postgres":
            with open_db(PG_URL) as db:
                db.execute(f'drop table if exists "{schema_table}"')
                left = db.query("select tablename from pg_tables where tablename like :p",
                                {"p": f"{schema_table}__tmp%"})
                for t in left["tablename"]:
                    db.execute(f'drop table if exists "{t}"')


def test_file_targets_atomic(tmp_path):
    for name in ("s.csv", "s.parquet"):
        p = tmp_path / name
        write_table(_frame(4, "old"), p)
        def boom(i, n):
            raise RuntimeError("killed after the rows were written")

        with pytest.raises(RuntimeError, match="killed"):
            write_table(_frame(10, "new"), p, on_chunk=boom)
        got = read_table(p)
        assert len(got) == 4 and set(got["tag"]) == {"old"}
        assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_resolve_out_and_bad_targets(tmp_path):
    assert resolve_out("scores.csv", "x.duckdb") == ("scores.csv", None)
    assert resolve_out("churn_scores", "x.duckdb") == ("x.duckdb", "churn_scores")
    assert resolve_out(f"{PG_URL}#cs", "x.duckdb") == (PG_URL, "cs")
    with pytest.raises(ConfigError, match="table name"):
        resolve_out("bad name; drop", "x.duckdb")
    with pytest.raises(ConfigError, match="score target"):
        write_table(_frame(1, "x"), tmp_path / "scores.txt", "t")
    assert not table_exists(tmp_path / "none.duckdb", "t")


def test_duckdb_reader_waits_for_a_writer_process(tmp_path):
    """DuckDB lets one process hold a file for writing; readers (the service) wait, then read."""
    import time

    target = tmp_path / "scores.duckdb"
    write_table(_frame(3, "old"), target, "churn_scores")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(1.5); c.close()",
         str(target)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    got = read_table(target, "churn_scores")
    assert len(got) == 3 and time.monotonic() - t0 > 0.3  # it really had to wait for the lock
    holder.wait(timeout=30)


def test_unwritable_targets_are_refused_clearly_before_work(tmp_path):
    """A folder as --out, a path below a file: a ConfigError naming the target (not an OSError
    traceback after the scoring), and nothing is written."""
    folder = tmp_path / "scores.csv"
    folder.mkdir()
    a_file = tmp_path / "config.yaml"
    a_file.write_text("x: 1\n")
    with pytest.raises(ConfigError, match=r"scores\.csv is a folder"):
        resolve_out(str(folder), "x.duckdb")
    (tmp_path / "home.duckdb").mkdir()
    with pytest.raises(ConfigError, match=r"home\.duckdb is a folder"):
        resolve_out("churn_scores", tmp_path / "home.duckdb")  # the default target
    for out in (f"{a_file}/s.csv", f"{a_file}/x.duckdb#t", f"{a_file}/x.sqlite#t", f"sqlite:///{a_file}/x.db#t"):
        with pytest.raises(ConfigError, match=r"config\.yaml is a file, not a folder"):
            resolve_out(out, "x.duckdb")
    with pytest.raises(ConfigError, match="is a folder"):
        write_table(_frame(3, "x"), folder)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        write_table(_frame(3, "x"), a_file / "x.duckdb", "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "home.duckdb", "scores.csv"]
    assert list(folder.iterdir()) == []


_FILE_WRITER = """
import sys, time, numpy as np, pandas as pd
from training.scores import write_table
df = pd.DataFrame({"account_id": np.arange(1000).astype(str), "probability": 0.5, "tag": "new"})
def stall(i, rows):  # the temp file is complete, the rename has not happened yet
    print("written", flush=True)
    time.sleep(60)
write_table(df, sys.argv[1], on_chunk=stall)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_file_writer_leaves_no_temp_file(tmp_path, sig):
    """SIGTERM during a file write removes the temp file; after SIGKILL (which no process can
    handle) the next write removes the dead writer's temp file. The previous file is intact."""
    p = tmp_path / "scores.csv"
    write_table(_frame(4, "old"), p)
    proc = subprocess.Popen([sys.executable, "-c", _FILE_WRITER, str(p)], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "written"
        assert len(list(tmp_path.glob(".scores.csv.*.tmp"))) == 1
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = read_table(p)
    assert len(got) == 4 and set(got["tag"]) == {"old"}
    if sig == signal.SIGTERM:  # cleaned up, then ended as a SIGTERM'd process does: no traceback
        assert proc.returncode == -signal.SIGTERM and "Traceback" not in proc.stderr.read()
        assert list(tmp_path.glob(".scores.csv.*.tmp")) == []
    write_table(_frame(6, "next"), p)  # the next run works and cleans up after a killed one
    assert set(read_table(p)["tag"]) == {"next"}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["scores.csv"]


_SWALLOWING_WRITER = """
import os, signal, sys, time, numpy as np, pandas as pd
from training.scores import write_table
df = pd.DataFrame({"account_id": np.arange(1000).astype(str), "probability": 0.5, "tag": "new"})
class Finalizer:
    def __del__(self):  # the handler runs in here: its interrupt is printed as ignored
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
def chunk(i, rows):
    f = Finalizer()
    del f
write_table(df, sys.argv[1], on_chunk=chunk)
print("went on after the SIGTERM", flush=True)
"""


def test_a_swallowed_sigterm_still_ends_the_writer_after_a_whole_write(tmp_path):
    """A SIGTERM whose interrupt Python ignored (raised in a __del__) let the command go on as
    if nothing was asked; the write completes (whole, never partial) and then the process ends
    as SIGTERM'd."""
    p = tmp_path / "scores.csv"
    write_table(_frame(4, "old"), p)
    proc = subprocess.run([sys.executable, "-c", _SWALLOWING_WRITER, str(p)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert proc.returncode == -signal.SIGTERM and "went on" not in proc.stdout
    got = read_table(p)
    assert len(got) == 1000 and set(got["tag"]) == {"new"}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["scores.csv"]


@pytest.mark.postgres
def test_postgres_schema_through_the_search_path():
    """`URL#schema.table` is refused with the way that works: the schema on the URL's search path."""
    schema = f"t_schema_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ConfigError, match=r"search_path%3Dmy_schema"):
        resolve_out(f"{PG_URL}#{schema}.churn_scores", "x.duckdb")
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        with open_db(PG_URL) as db:
            db.execute(f'create schema "{schema}"')
        target, table = resolve_out(f"{url}#churn_scores", "x.duckdb")
        write_table(_frame(3, "old"), target, table)
        write_table(_frame(5, "new"), target, table)
        with open_db(PG_URL) as db:
            got = db.query("select schemaname, tablename from pg_tables where schemaname = :s", {"s": schema})
        assert got["tablename"].tolist() == ["churn_scores"]
        assert set(read_table(target, table)["tag"]) == {"new"}
    finally:
        with open_db(PG_URL) as db:
            db.execute(f'drop schema if exists "{schema}" cascade')


@pytest.mark.postgres
def test_postgres_search_path_with_public_behind_writes_the_table_it_resolves_to():
    """`score --out 'URL?options=-csearch_path%3Dcrm,public#t'` with `t` so far only in public (written
    before the schema went on the search path): the run scored every account and then failed with
    '(psycopg.errors.DuplicateColumn) column "account_id" of relation "t" already exists', since the
    table was found on the search path but its columns were looked up in crm only. It now refreshes
    the table the name resolves to, where the URL's readers read it, also when a retyped column
    recreates it (it stays in public rather than moving to crm)."""
    schema, table = f"t_schema_{uuid.uuid4().hex[:8]}", f"t_scores_{uuid.uuid4().hex[:8]}"
    url = f"{PG_URL}?options=-csearch_path%3D{schema},public"
    try:
        with open_db(PG_URL) as db:
            db.execute(f'create schema "{schema}"')
        write_table(_frame(3, "old"), PG_URL, table)  # in public
        write_table(_frame(5, "new"), url, table)  # same columns: rows swapped in place
        with open_db(PG_URL) as db:
            where = db.query("select schemaname from pg_tables where tablename = :t", {"t": table})
            tags = db.query(f'select tag, count(*) as n from public."{table}" group by tag')
        assert where["schemaname"].tolist() == ["public"]
        assert dict(zip(tags["tag"], tags["n"], strict=True)) == {"new": 5}
        retyped = _frame(4, "retyped").assign(tag=7)  # tag text -> bigint: the table is recreated
        write_table(retyped, url, table)
        with open_db(PG_URL) as db:
            where = db.query("select schemaname from pg_tables where tablename like :t", {"t": table + "%"})
            tags = db.query(f'select tag, count(*) as n from public."{table}" group by tag')
        assert where["schemaname"].tolist() == ["public"]
        assert dict(zip(tags["tag"], tags["n"], strict=True)) == {7: 4}
        assert read_table(url, table)["tag"].tolist() == [7] * 4
    finally:
        with open_db(PG_URL) as db:
            db.execute(f'drop schema if exists "{schema}" cascade')
            db.execute(f'drop table if exists public."{table}"')


def test_csv_score_file_keeps_text_ids(tmp_path):
    """`score churn --out s.csv` then `score dealers --churn-scores s.csv`: ids such as 00123
    must come back as written, or those accounts silently lose their churn score."""
    p = tmp_path / "s.csv"
    write_table(pd.DataFrame({"account_id": ["00123", "0042", "17850"], "probability": [0.1, 0.2, 0.3]}), p)
    assert read_table(p)["account_id"].tolist() == ["00123", "0042", "17850"]


_SLOW_WRITER = """
import sys, time, numpy as np, pandas as pd
from training.scores import write_table
df = pd.DataFrame({"account_id": np.arange(5000).astype(str), "probability": 0.5, "tag": sys.argv[2]})
def stall(i, rows):
    if i == 0:
        print("writing", flush=True)
        time.sleep(2)
write_table(df, sys.argv[1], "churn_scores", chunksize=1000, on_chunk=stall)
print("done", flush=True)
"""


def test_two_writers_of_one_sqlite_table_queue(tmp_path):
    """Two `score churn` into one SQLite file at once: the second waits for the first instead of
    failing with 'database is locked'; the last one wins, whole."""
    target = str(tmp_path / "scores.sqlite")
    write_table(_frame(3, "old"), target, "churn_scores")
    first = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, target, "first"], stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert first.stdout.readline().strip() == "writing"  # inside its transaction
        write_table(_frame(7, "second"), target, "churn_scores")
        assert first.stdout.readline().strip() == "done"
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    got = read_table(target, "churn_scores")
    assert len(got) == 7 and set(got["tag"]) == {"second"}


@pytest.mark.parametrize("ext", [".sqlite", ".duckdb"])
def test_a_file_that_is_not_a_database_is_named(tmp_path, ext):
    from training.alerts import record_alerts

    p = tmp_path / f"scores{ext}"
    p.write_text("account_id,probability\nA,0.5\n")  # a CSV export saved under the wrong name
    s = pd.DataFrame({"account_id": ["A"], "probability": [0.9], "tier": ["high"]})
    for run in (lambda: write_table(s, p, "churn_scores"), lambda: record_alerts(s, p, "2024-01-01")):
        with pytest.raises(DataError, match=rf"(cannot open|cannot open the DuckDB file) .*scores\{ext}.*"
                                            r"(not a database|not a valid DuckDB database)") as err:
            run()
        assert "lock" not in str(err.value)
    assert p.read_text() == "account_id,probability\nA,0.5\n"


@pytest.mark.postgres
def test_postgres_refresh_keeps_grants_and_views():
    """The CRM's DBA grants a reader role SELECT on the score table and builds a view over it.
    A refresh with the same columns keeps both (drop + rename lost the grant and was refused
    while the view existed); a refresh with other columns recreates the table and, while a view
    depends on it, is refused with the database's reason and the previous table intact."""
    table, role = f"t_grants_{uuid.uuid4().hex[:8]}", f"t_reader_{uuid.uuid4().hex[:8]}"
    try:
        write_table(_frame(3, "old"), PG_URL, table)
        with open_db(PG_URL) as db:
            db.execute(f'create role "{role}"')
            db.execute(f'grant select on "{table}" to "{role}"')
            db.execute(f'create view "{table}_v" as select account_id, tag from "{table}"')
        write_table(_frame(5, "new"), PG_URL, table)
        with open_db(PG_URL) as db:
            assert db.query(f"select has_table_privilege('{role}', '{table}', 'select') as ok")["ok"].iloc[0]
            view = db.query(f'select * from "{table}_v"')
            left = db.query("select tablename from pg_tables where tablename like :p", {"p": f"{table}%"})
        assert len(view) == 5 and set(view["tag"]) == {"new"}
        assert left["tablename"].tolist() == [table]  # no temp table left
        other = _frame(2, "other").drop(columns="tier")
        with pytest.raises(DataError, match="other objects depend on it"):
            write_table(other, PG_URL, table)
        assert set(read_table(PG_URL, table)["tag"]) == {"new"}
    finally:
        with open_db(PG_URL) as db:
            db.execute(f'drop view if exists "{table}_v"')
            db.execute(f'drop table if exists "{table}"')
            db.execute(f'drop role if exists "{role}"')


def test_sqlite_refresh_keeps_the_crms_views_and_indexes(tmp_path):
    """The CRM builds a view (and an index) over the score table in the SQLite file. The next run's
    drop + rename failed ('error in view ...: no such table') and never refreshed again. Now the rows
    are swapped in place (same or added columns: view and index stay); a dropped column recreates the
    table and the views read the new one, unless a view reads that column: then the run is refused
    naming the view, and the previous table and view are unchanged."""
    import sqlite3

    target = tmp_path / "crm.sqlite"
    write_table(_frame(3, "old"), target, "churn_scores")
    con = sqlite3.connect(target)
    con.execute("create view high_risk as select account_id, tag from churn_scores where tier = 'high'")
    con.execute("create index churn_scores_account on churn_scores (account_id)")
    con.commit()
    con.close()

    def objects() -> list[tuple[str, str]]:
        with sqlite3.connect(target) as c:
            return sorted(c.execute("select type, name from sqlite_master").fetchall())

    before = [("index", "churn_scores_account"), ("table", "churn_scores"), ("view", "high_risk")]
    assert objects() == before
    write_table(_frame(5, "new"), target, "churn_scores")  # same columns: in place
    view = read_table(target, "high_risk")
    assert len(view) == 5 and set(view["tag"]) == {"new"} and objects() == before
    write_table(_frame(4, "wider").assign(segment="x"), target, "churn_scores")  # a column added in place
    assert read_table(target, "churn_scores").columns.tolist() == ["account_id", "probability", "tier", "tag", "segment"]
    assert set(read_table(target, "high_risk")["tag"]) == {"wider"} and objects() == before
    write_table(_frame(2, "narrow").drop(columns="probability"), target, "churn_scores")  # recreated
    assert set(read_table(target, "high_risk")["tag"]) == {"narrow"}
    assert [o for o in objects() if o[0] != "index"] == [("table", "churn_scores"), ("view", "high_risk")]

    with pytest.raises(DataError) as err:  # the view reads `tag`, which this run no longer writes
        write_table(_frame(6, "x").drop(columns="tag"), target, "churn_scores")
    assert str(err.value) == (
        f"cannot write {target}#churn_scores: the new table lacks a column that a view over it reads "
        "(view 'high_risk': no such column: tag); the new columns are ['account_id', 'probability', 'tier']. "
        "Drop the view, run again and recreate it for the new columns. Nothing was written: the previous table "
        "and its views are unchanged")
    assert set(read_table(target, "high_risk")["tag"]) == {"narrow"} and len(read_table(target, "churn_scores")) == 2
    assert [o for o in objects() if o[0] != "index"] == [("table", "churn_scores"), ("view", "high_risk")]


def test_duckdb_table_names_that_differ_only_in_case_are_one_table(tmp_path):
    """DuckDB resolves names case-insensitively, even quoted: `Churn_Scores` is the table
    `churn_scores`. The existence check compared the name exactly, so it took the table for a new
    one and its rename onto it was refused ('another entry with this name already exists'). Now
    the table is refreshed like any other (in place while the columns match: a view stays)."""
    import duckdb

    target = tmp_path / "crm.duckdb"
    write_table(_frame(3, "old"), target, "churn_scores")
    with duckdb.connect(str(target)) as con:
        con.execute("create view high_risk as select account_id, tag from churn_scores")
    write_table(_frame(5, "v2"), target, "Churn_Scores")  # same columns: in place, the name stays
    write_table(_frame(4, "v3").assign(segment="x"), target, "CHURN_SCORES")  # a column added in place
    got = read_table(target, "churn_scores")
    assert len(got) == 4 and set(got["tag"]) == {"v3"} and "segment" in got.columns
    assert set(read_table(target, "high_risk")["tag"]) == {"v3"}
    with duckdb.connect(str(target), read_only=True) as con:
        names = sorted(r[0] for r in con.execute("select table_name from information_schema.tables").fetchall())
    assert names == ["churn_scores", "high_risk"]
    write_table(_frame(2, "v4").drop(columns="tier"), target, "Churn_Scores")  # recreated (a column dropped)
    assert set(read_table(target, "churn_scores")["tag"]) == {"v4"} and table_exists(target, "CHURN_scores")


def test_duckdb_table_of_the_same_name_in_another_schema_is_not_the_target(tmp_path):
    """A DuckDB score file in which someone made `crm.churn_scores` (a copy for the CRM) before the
    first `score --out book.duckdb#churn_scores`: the existence check looked in every schema, the
    column lookup in the current one only (as 5fe5448 found for PostgreSQL), so the run scored
    every account and then failed with 'cannot write ...: Catalog Error: Table with name
    churn_scores does not exist!'. Likewise a crm.churn_alerts: reading the alerts died in a
    CatalogException, `alerts` refused 'book.duckdb#churn_alerts exists but is not a dealerml alerts
    table'. The unqualified name is main's table, as DuckDB resolves it; crm's stay untouched."""
    import duckdb

    from training.alerts import read_alerts, record_alerts

    target = tmp_path / "book.duckdb"
    with duckdb.connect(str(target)) as con:
        con.execute("create schema crm")
        con.execute("create table crm.churn_scores (account_id varchar, note varchar)")
        con.execute("insert into crm.churn_scores values ('X', 'the CRM copy')")
        con.execute("create table crm.churn_alerts as select 'X' as account_id")
    assert not table_exists(target, "churn_scores")
    write_table(_frame(3, "first"), target, "churn_scores")
    write_table(_frame(5, "second"), target, "churn_scores")  # same columns: refreshed in place
    got = read_table(target, "churn_scores")
    assert len(got) == 5 and set(got["tag"]) == {"second"} and table_exists(target, "churn_scores")
    scores = pd.DataFrame({"account_id": ["A", "B"], "probability": [0.9, 0.2], "tier": ["high", "low"],
                           "reason_1": ["r", "r"], "reason_2": ["", ""], "reason_3": ["", ""],
                           "expected_value": [10.0, 1.0], "revenue_at_risk": [100.0, 10.0], "model_version": "t"})
    assert read_alerts(target).empty  # crm.churn_alerts is not the alerts table
    record_alerts(scores, target, "2024-01-01")
    assert read_alerts(target)["account_id"].tolist() == ["A"]
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select * from crm.churn_scores").fetchall() == [("X", "the CRM copy")]
        assert con.execute("select * from crm.churn_alerts").fetchall() == [("X",)]
        where = con.execute("select table_schema, table_name from information_schema.tables "
                            "where table_name not like '%tmp%' order by 1, 2").fetchall()
    assert ("main", "churn_scores") in where and ("main", "churn_alerts") in where
    assert [t for s, t in where if s == "crm"] == ["churn_alerts", "churn_scores"]


def test_sqlite_view_made_before_the_first_run_reads_the_new_table(tmp_path):
    """The CRM may set up its view before dealerml first writes the table (SQLite lets a view name a
    table that does not exist yet): the first run's rename failed on it ('error in view ...')."""
    import sqlite3

    target = tmp_path / "crm.sqlite"
    with sqlite3.connect(target) as con:
        con.execute("create view high_risk as select account_id, tag from churn_scores where tier = 'high'")
    write_table(_frame(3, "first"), target, "churn_scores")
    assert set(read_table(target, "high_risk")["tag"]) == {"first"} and len(read_table(target, "high_risk")) == 3
