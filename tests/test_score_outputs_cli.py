"""Session 10 rough edges in what the score / experiment commands are given on the command line.

- ``score churn|dealers --out NAME`` when NAME is a folder or a file here (was: a table NAME in the
  default DuckDB file);
- ``score churn`` / ``alerts`` check ``--cutoff`` against the book before the registry (and a
  ``--model`` folder before the data); ``score dealers`` reads ``--churn-scores`` before the data;
- ``experiment run FOLDER`` lists the YAML files in it; a misspelt config name is named;
- ``train churn --save-to FILE`` is checked before the training and registration it follows.

Tiny order books in tmp_path and CliRunner: seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from _support_cli import _err  # exit 2, no traceback, the message on one line
from typer.testing import CliRunner

from training.cli import app
from training.errors import ConfigError


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------ 2. --out NAME that is a path here
def _book(tmp_path: Path, end: str = "2024-12-31") -> Path:
    rows = []
    for a in range(8):
        for i, day in enumerate(pd.date_range("2024-01-01", end, freq="D")[a % 10 :: 10]):
            rows.append({"order_id": f"O{a}-{i}", "order_date": day.strftime("%Y-%m-%d"), "account_id": f"A{a:03d}",
                         "sku": f"S{i % 3}", "quantity": 1 + i % 4, "unit_price": 10.0})
    d = tmp_path / "c"
    d.mkdir()
    pd.DataFrame(rows).to_csv(d / "order_lines.csv", index=False)
    (d / "config.yaml").write_text(yaml.safe_dump({"name": "c", "data": {"order_lines": {"path": "order_lines.csv"},
                                                                        "as_of": end}}))
    return d / "config.yaml"


def test_out_naming_a_folder_or_file_here_is_refused_not_written_as_a_table(tmp_path, monkeypatch):
    """`score churn --out in` beside a folder `in` wrote a table 'in' into the default DuckDB file."""
    from training.scores import resolve_out

    cfg = _book(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "scores").write_text("account_id,probability\n")
    default = tmp_path / "home" / "dealerml.duckdb"
    for cmd in ("churn", "dealers"):
        msg = _err(_run("score", cmd, "--config", cfg, "--cutoff", "2024-06-01", "--out", "in"))
        assert msg == (f"error: --out in: 'in' is a folder here, but a name without a .csv / .parquet suffix is read "
                       f"as a table name in {default}; for a score file in that folder give in/scores.csv (or .parquet); "
                       f"for a table of that name give {default}#in"), msg
        msg = _err(_run("score", cmd, "--config", cfg, "--cutoff", "2024-06-01", "--out", "scores"))
        assert ("--out scores: 'scores' is a file without a .csv or .parquet suffix here, but a name without a .csv / "
                ".parquet suffix is read as a table name in") in msg and "must end in .csv or .parquet" in msg
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "2024-06-01", "--out", "in/"))
    assert "--out in/: 'in/' is a folder here" in msg and "neither a score file nor a table name" not in msg
    with pytest.raises(ConfigError, match=r"^--churn-scores in: 'in' is a folder here"):
        resolve_out("in", default, "--churn-scores")
    assert resolve_out(f"{default}#in", default) == (str(default), "in")  # the explicit way still writes 'in'
    assert resolve_out("churn_scores", default) == (str(default), "churn_scores")  # no such path: a table
    assert not (tmp_path / "home").exists() and list((tmp_path / "in").iterdir()) == []


_DB = "a DuckDB file (.duckdb/.ddb), a SQLite file (.sqlite/.sqlite3/.db) or a SQLAlchemy URL"


_MADE = "the file is made (or read) at that path, so remove or rename the folder"
_BAD_OUT_OR_TARGET = [
    # score churn --target is the database a table --out goes in: a score file is not one
    (["score", "churn", "--out", "t", "--target", "@"], f"--target '@': expected {_DB}"),
    (["score", "churn", "--out", "t", "--target", "{tmp}/x.csv"],
     f"--target '{{tmp}}/x.csv': expected {_DB}, not a .csv / .parquet file"),
    (["score", "churn", "--out", "{tmp}/s.parquet", "--target", "{tmp}/x.csv"],  # not passed over unused
     f"--target '{{tmp}}/x.csv': expected {_DB}, not a .csv / .parquet file"),
    (["score", "churn", "--out", "t", "--target", "{tmp}/db.duckdb"], "--target {tmp}/db.duckdb is a folder (empty), "
     f"not a DuckDB file: {_MADE}, or give a DuckDB file inside it (e.g. {{tmp}}/db.duckdb/dealerml.duckdb)"),
    (["alerts", "--target", "{tmp}/db.duckdb"], "--target {tmp}/db.duckdb is a folder (empty), not a DuckDB file: "
     f"{_MADE}, or give a DuckDB file inside it (e.g. {{tmp}}/db.duckdb/dealerml.duckdb)"),
    (["alerts", "--target", "sqlite:///{tmp}/db.sqlite"], "--target sqlite:///{tmp}/db.sqlite is a folder (empty), "
     f"not a SQLite file: {_MADE}, or give a SQLite file inside it (e.g. sqlite:///{{tmp}}/db.sqlite/dealerml.sqlite)"),
    # --out: named as --out with its value, never as a 'score target'
    (["score", "{cmd}", "--out", "{tmp}/dir.csv"], "--out {tmp}/dir.csv is a folder (empty), not a .csv / .parquet "
     f"score file: {_MADE}, or give a .csv / .parquet score file inside it (e.g. {{tmp}}/dir.csv/scores.csv)"),
    (["score", "{cmd}", "--out", "{tmp}/f.txt/s.csv"], "--out {tmp}/f.txt/s.csv: {tmp}/f.txt is a file, not a folder"),
    (["score", "{cmd}", "--out", "{tmp}/db.duckdb#t"], "--out {tmp}/db.duckdb#t: the database {tmp}/db.duckdb is a "
     f"folder (empty), not a DuckDB file: {_MADE}, or give a DuckDB file inside it (e.g. {{tmp}}/db.duckdb/dealerml.duckdb)"),
    (["score", "{cmd}", "--out", "{tmp}/x.csv#t"],  # was written to x.csv, the table name dropped
     f"--out {{tmp}}/x.csv#t: the database '{{tmp}}/x.csv': expected {_DB}, not a .csv / .parquet file"),
    (["score", "{cmd}", "--out", "@"], "--out '@': neither a score file nor a table name: a file must end in .csv"),
    # the default database: the option that names another, and another home (not a file inside the folder)
    (["score", "{cmd}", "--out", "t"], "--out t: the default database {tmp}/home/dealerml.duckdb is a folder (empty), "
     f"not a DuckDB file: {_MADE}, or name another database "),
    (["score", "dealers", "--out", "{tmp}/d.csv", "--churn-scores", "{tmp}/x.csv#t"],
     f"--churn-scores {{tmp}}/x.csv#t: the database '{{tmp}}/x.csv': expected {_DB}, not a .csv / .parquet file"),
]


@pytest.mark.parametrize("argv, says", [([a.replace("{cmd}", cmd) for a in argv], says) for argv, says in _BAD_OUT_OR_TARGET
                                        for cmd in (("churn", "dealers") if "{cmd}" in argv else ("",))])
def test_a_bad_out_or_target_names_the_option_given_and_what_it_takes(tmp_path, argv, says):
    """`score churn --target '@'` listed '.csv/.parquet file' among the forms --target takes (it takes a
    database: a .csv there wrote that file and dropped the table name); a folder given as `alerts --target`
    was told 'give a file inside it (e.g. .../scores.csv ...)', which alerts refuse; an --out of `score churn`
    / `score dealers` was called the 'score target'. Each names the option given, its value and forms it
    takes, before any data is read, and creates nothing."""
    for d in ("dir.csv", "db.duckdb", "db.sqlite", "home/dealerml.duckdb"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "f.txt").write_text("x")
    before = sorted(tmp_path.rglob("*"))
    argv = [a.format(tmp=tmp_path) for a in argv]
    r = _run(*argv[:2 if argv[0] == "score" else 1], "--config", tmp_path / "none.yaml", "--cutoff", "2024-06-01",
             *argv[2 if argv[0] == "score" else 1:])
    msg = _err(r)
    assert msg.startswith("error: " + says.format(tmp=tmp_path)), msg
    assert "score target" not in msg
    assert sorted(tmp_path.rglob("*")) == before


# ------------------------------------------------------------------ 3. --cutoff before the registry
def test_score_churn_checks_the_cutoff_against_the_book_before_the_registry(tmp_path):
    """With no churn model registered, a --cutoff after the book's end was reported as 'no churn model'."""
    cfg = _book(tmp_path, end="2024-06-30")
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "2024-09-01", "--out", tmp_path / "s.csv"))
    assert "--cutoff 2024-09-01 is after the end of the order book: its last order is on 2024-06" in msg
    assert "no churn model" not in msg
    msg = _err(_run("alerts", "--config", cfg, "--cutoff", "2024-09-01", "--target", tmp_path / "a.duckdb"))
    assert "--cutoff 2024-09-01 is after the end of the order book" in msg and "no churn model" not in msg
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "01/09/2024", "--out", tmp_path / "s.csv",
                    "--model", tmp_path / "nope"))
    assert "--cutoff must be written year first" in msg and "nope" not in msg
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "2024-06-01", "--out", tmp_path / "s.csv",
                    "--model", tmp_path / "nope"))
    assert (f"--model {tmp_path / 'nope'} does not exist; expected a folder written by `dealerml train churn "
            "--save-to DIR`") in msg
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "2024-06-01", "--out", tmp_path / "s.csv"))
    assert "no churn model to score with" in msg  # a good cutoff: then the registry is asked
    assert not (tmp_path / "s.csv").exists()


def test_score_dealers_reads_churn_scores_before_the_data_and_registry(tmp_path):
    """A missing --churn-scores file was reported after the data load and only once a dealers model
    was loaded: with none registered, the user heard about the registry first."""
    cfg = _book(tmp_path, end="2024-06-30")
    missing = tmp_path / "churn.csv"
    msg = _err(_run("score", "dealers", "--config", cfg, "--cutoff", "2024-06-01", "--out", tmp_path / "d.csv",
                    "--churn-scores", missing))
    assert f"--churn-scores {missing}: cannot read it" in msg and "alias" not in msg
    msg = _err(_run("score", "dealers", "--config", cfg, "--cutoff", "2024-09-01", "--out", tmp_path / "d.csv"))
    assert "--cutoff 2024-09-01 is after the end of the order book" in msg
    # an unwritable --out (a folder nobody may write in, even root): said before the data and the
    # registry, as score churn does, not after the scoring
    msg = _err(_run("score", "dealers", "--config", cfg, "--cutoff", "2024-06-01", "--out", "/proc/1/d.csv"))
    assert msg == "error: --out /proc/1/d.csv: no permission to write in the folder /proc/1"  # the option given
    assert not (tmp_path / "d.csv").exists()


# ------------------------------------------------------------------ 4. experiment run FOLDER
def test_experiment_run_on_a_folder_lists_its_configs_and_a_typo_is_named(tmp_path):
    d = tmp_path / "experiments"
    d.mkdir()
    for n in ("stallion.yaml", "churn.yaml"):
        (d / n).write_text("name: x\n")
    (d / "notes.txt").write_text("x")
    msg = _err(_run("experiment", "run", d))
    assert msg == (f"error: config {d} is a folder; expected a YAML file such as {d / 'churn.yaml'} (the folder "
                   "holds churn.yaml, stallion.yaml)")
    msg = _err(_run("experiment", "run", d / "stalion.yaml"))
    assert msg == f"error: config file not found: {d / 'stalion.yaml'}; did you mean {d / 'stallion.yaml'}?"
    msg = _err(_run("experiment", "run", d / "stallion"))
    assert msg.endswith(f"did you mean {d / 'stallion.yaml'}?")
    (d / "child.yaml").write_text("extends: ..\nsteps: [backtest_churn]\n")
    msg = _err(_run("experiment", "run", d / "child.yaml"))
    assert f"key 'extends': {tmp_path} is a folder; expected a YAML file" in msg and "not found" not in msg


# ------------------------------------------------------------------ more of the same kind
def test_train_churn_save_to_is_checked_before_training_and_registering(tmp_path):
    """`train churn --save-to FILE` trained, registered a version, then failed with a FileExistsError
    traceback; a folder of other files got the model's files mixed in."""
    cfg = _book(tmp_path)
    a_file = tmp_path / "model"
    a_file.write_text("x")
    msg = _err(_run("train", "churn", "--config", cfg, "--save-to", a_file))
    assert msg == f"error: --save-to {a_file} is a file; expected a folder to save the model in (created when missing)"
    msg = _err(_run("train", "churn", "--config", cfg, "--save-to", a_file / "m"))
    assert msg == f"error: --save-to {a_file / 'm'}: {a_file} is a file, not a folder"
    msg = _err(_run("train", "churn", "--config", cfg, "--save-to", cfg.parent))
    assert f"--save-to {cfg.parent} is a folder holding other files (['config.yaml', 'order_lines.csv'])" in msg
    assert not (tmp_path / "home").exists()  # nothing trained, no MLflow store created
