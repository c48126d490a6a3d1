"""The churn commands end to end on the synthetic network: backtest JSON, train (real MLflow
store under tmp_path, registry), score (atomic table in DuckDB), alerts twice (idempotent)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml
from conftest import write_config
from typer.testing import CliRunner

from training.cli import app


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "home"


SMALL_CHURN = {"n_train_cutoffs": 3, "model": {"n_estimators": 60},
               "tiers": {"high_probability": 0.3, "contact_cost": 1.0, "capacity_per_run": 20}}


@pytest.fixture()
def small_config(synthetic_config, tmp_path):
    """The session network's config with a small, fast churn section."""
    return write_config(synthetic_config, tmp_path / "churn.yaml", churn=SMALL_CHURN)


@pytest.fixture(scope="module")
def small_model(synthetic_book, tmp_path_factory):
    """A churn model of small_config's churn section fitted on the session network (test cutoff 2024-04-02),
    saved once for the tests that hand it to `alerts` / `score` by --model (read-only: copy it to change it)."""
    from training.churn_backtest import churn_cutoffs, churn_settings, fit_churn

    s = churn_settings(SMALL_CHURN)
    model, _, _ = fit_churn(synthetic_book, s, churn_cutoffs("2024-04-02", s, first_date="2022-01-01"), num_threads=1)
    out = tmp_path_factory.mktemp("small_churn_model")
    model.save(out)
    return out


@pytest.fixture()
def fast_config(synthetic_config, tmp_path):
    """The session network's config with the cheapest churn section train accepts (one training
    cutoff, 10 trees), for tests whose assertions are about what train / score / promote write,
    register and say, not about the model's quality (small_config's 3 cutoffs and 60 trees made
    each `train churn` about twice as long)."""
    return write_config(synthetic_config, tmp_path / "churn.yaml",
                        churn={"n_train_cutoffs": 1, "model": {"n_estimators": 10},
                               "tiers": {"high_probability": 0.3, "contact_cost": 1.0, "capacity_per_run": 20}})


def _run(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, (r.output, r.exception)
    return r.output


@pytest.mark.slow
def test_backtest_train_score_alerts(home, small_config, tmp_path):
    out = tmp_path / "bt.json"
    _run("backtest", "churn", "--config", small_config, "--cutoff", "2024-04-02", "--horizon-days", 90, "--json", out)
    rep = json.loads(out.read_text())
    assert rep["final"] == "lightgbm" and 0 < rep["base_rate"] < 1
    assert set(rep["metrics"]) == {"lightgbm", "recency", "bgnbd"}
    assert all(set(v) == {"auc", "pr_auc", "brier", "ece", "lift_top10"} for v in rep["metrics"].values())

    text = _run("train", "churn", "--config", small_config, "--save-to", tmp_path / "model", "--json", tmp_path / "tr.json")
    assert "registered dealerml-churn version 1 (challenger, and champion: the first version)" in text
    # the printed table says what it was measured on: the test window and the cutoffs before it
    import re

    m = re.search(r"test cutoff (\S+): accounts with an order in the (\d+) days before it; churned = no order "
                  r"in \[(\S+), (\S+)\) \((\d+) days\)", text)
    assert m and m.group(1) == m.group(3) and int(m.group(5)) == 90, text
    assert "trained on cutoffs" in text and "calibrated at" in text
    from training import tracking

    info = tracking.model_info("dealerml-churn", "challenger")
    assert info.version == "1" and "champion" in info.aliases  # first version is also champion
    assert info.backtest_metrics["lightgbm"]["auc"] > 0.8
    # --json writes the backtest report train ran and logged: the backtest command's shape and baselines
    tr = json.loads((tmp_path / "tr.json").read_text())
    assert tr["final"] == "lightgbm" and set(tr["metrics"]) == {"lightgbm", "recency", "bgnbd"}
    assert tr["metrics"] == info.backtest_metrics and f"wrote {tmp_path / 'tr.json'}" in text

    _run("score", "churn", "--config", small_config, "--cutoff", "2024-06-01", "--out", "churn_scores")
    from training.scores import read_table

    scores = read_table(home / "dealerml.duckdb", "churn_scores")
    assert list(scores.columns[:8]) == ["account_id", "probability", "tier", "reason_1", "reason_2", "reason_3",
                                        "model_version", "scored_at"]
    assert scores["probability"].between(0, 1).all() and set(scores["tier"]) <= {"high", "medium", "low"}
    assert (scores["model_version"] == "dealerml-churn/1").all()
    assert scores["account_id"].is_unique and (scores["reason_1"] != "").mean() > 0.8
    assert (scores["tier"] == "high").sum() <= 20

    # the saved model folder gives the same probabilities, to a CSV file
    _run("score", "churn", "--config", small_config, "--cutoff", "2024-06-01", "--out", tmp_path / "s.csv",
         "--model", tmp_path / "model")
    csv = pd.read_csv(tmp_path / "s.csv", dtype={"account_id": str})
    m = scores.merge(csv, on="account_id")
    assert len(m) == len(scores) and (m["probability_x"] - m["probability_y"]).abs().max() < 1e-9

    # alerts: first run alerts the high tier, rerun adds nothing, next period only new crossings
    target = tmp_path / "alerts.duckdb"
    o1 = _run("alerts", "--config", small_config, "--cutoff", "2024-05-01", "--target", target)
    from training.alerts import read_alerts

    a1 = read_alerts(target)
    assert len(a1) > 0 and f"{len(a1)} new alerts" in o1
    o2 = _run("alerts", "--config", small_config, "--cutoff", "2024-05-01", "--target", target)
    assert "already recorded" in o2 and len(read_alerts(target)) == len(a1)
    _run("alerts", "--config", small_config, "--cutoff", "2024-06-01", "--target", target)
    a2 = read_alerts(target)
    new = a2[a2["cutoff"] == "2024-06-01"]
    high_before = set(a1["account_id"])
    high_now = set(scores.loc[scores["tier"] == "high", "account_id"])
    # alerted on 06-01 = high now and not high on 05-01
    from training.scores import open_db

    with open_db(target) as db:
        state = db.query("select * from churn_alerts_state")
    assert set(state.loc[state["tier"] == "high", "account_id"]) == high_now
    assert set(new["account_id"]) <= high_now and not (set(new["account_id"]) & high_before)


def test_clear_errors(home, small_config, tmp_path):
    r = CliRunner().invoke(app, ["score", "churn", "--config", str(small_config), "--cutoff", "2024-06-01",
                                 "--out", "churn_scores"])
    assert r.exit_code == 2 and "no churn model" in r.output
    bad = tmp_path / "bad.yaml"
    cfg = yaml.safe_load(small_config.read_text())
    cfg["churn"] = {"horizon_days": -5}
    bad.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["backtest", "churn", "--config", str(bad), "--json", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "churn.horizon_days" in r.output
    assert not (tmp_path / "x.json").exists()
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.slow
def test_alerts_cli_against_postgres(home, small_config, small_model, tmp_path):
    """`dealerml alerts` twice for one date, then the next period, into the real PostgreSQL."""
    import uuid

    from training.alerts import read_alerts
    from training.scores import open_db

    pg = "postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:5432/test"  # trust auth ignores it; never printed
    table = f"t_cli_alerts_{uuid.uuid4().hex[:8]}"
    cfg = yaml.safe_load(small_config.read_text())
    cfg["churn"]["alerts_table"] = table
    config = tmp_path / "pg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    args = ["alerts", "--config", config, "--target", pg, "--model", small_model]
    try:
        printed = _run(*args, "--cutoff", "2024-05-01")
        assert "s3cret-pw" not in printed and "postgres:***@127.0.0.1" in printed
        first = read_alerts(pg, table=table)
        assert len(first) > 0
        again = _run(*args, "--cutoff", "2024-05-01", "--webhook", "http://127.0.0.1:1/never-called")
        assert "already recorded" in again and "nothing posted to --webhook" in again  # and no POST tried
        assert len(read_alerts(pg, table=table)) == len(first)
        _run(*args, "--cutoff", "2024-06-01")
        both = read_alerts(pg, table=table)
        new = both[both["cutoff"] == "2024-06-01"]
        with open_db(pg) as db:
            state = db.query(f'select account_id, tier from "{table}_state"')
            runs = db.query(f'select cutoff, n_alerts from "{table}_runs" order by cutoff')
        import datetime as dt

        assert runs["cutoff"].tolist() == [dt.date(2024, 5, 1), dt.date(2024, 6, 1)]  # a date column in PostgreSQL
        assert runs["n_alerts"].tolist() == [len(first), len(new)]
        assert set(new["account_id"]) <= set(state.loc[state["tier"] == "high", "account_id"])
        assert len(new) > 0 and not set(new["account_id"]) & set(first["account_id"])  # high twice in a row: one alert
        assert len(both) == len(first) + len(new) and both.duplicated(["account_id", "cutoff"]).sum() == 0

        # the score table in PostgreSQL: typed columns a CRM can filter (scored_at was text)
        printed = _run("score", "churn", "--config", config, "--cutoff", "2024-06-01", "--model", small_model,
                       "--out", f"{pg}#{table}_scores")
        assert "s3cret-pw" not in printed and "postgres:***@127.0.0.1" in printed
        with open_db(pg) as db:
            types = db.query("select column_name, data_type from information_schema.columns where table_name = :t",
                             {"t": f"{table}_scores"}).set_index("column_name")["data_type"].to_dict()
            row = db.query(f'select * from "{table}_scores" order by probability desc limit 1').iloc[0]
        assert types["account_id"] == "text" and types["probability"] == "double precision"
        assert types["scored_at"] == types["cutoff"] == "timestamp without time zone"
        assert str(row["cutoff"]) == "2024-06-01 00:00:00" and row["tier"] in ("high", "medium", "low")
        assert abs((pd.Timestamp.now(tz="UTC").tz_localize(None) - row["scored_at"]).total_seconds()) < 600
    finally:
        with open_db(pg) as db:
            for t in (table, f"{table}_state", f"{table}_runs", f"{table}_scores"):
                db.execute(f'drop table if exists "{t}"')


def test_alerts_go_where_the_service_reads_them(home, small_config, small_model, tmp_path):
    """Without --target, `dealerml alerts` writes to the config's serving.alerts_target, the table
    the service's /churn_alerts reads (it wrote to $DEALERML_HOME/dealerml.duckdb, so the
    service showed no alert)."""
    from serving.settings import alerts_target
    from training.alerts import read_alerts
    from training.config import load_config

    crm = tmp_path / "crm.duckdb"
    cfg = yaml.safe_load(small_config.read_text())
    cfg["serving"] = {"alerts_target": str(crm)}
    config = tmp_path / "crm.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = _run("alerts", "--config", config, "--cutoff", "2024-05-01", "--model", small_model)
    assert alerts_target(load_config(config)) == str(crm)  # the service's rule
    alerts = read_alerts(crm)
    assert len(alerts) > 0 and f"{len(alerts)} new alerts for 2024-05-01 in {crm}#churn_alerts" in out
    assert not (home / "dealerml.duckdb").exists()


def test_unwritable_out_and_target_fail_before_scoring(home, tmp_path):
    """A folder as --out, --out or --target below a file: exit 2 with a message naming the
    target, before the model and the data are read (the config here does not even exist)."""
    (tmp_path / "scores.csv").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        (["score", "churn", "--out", tmp_path / "scores.csv"], "scores.csv is a folder"),
        (["score", "churn", "--out", tmp_path / "a_file" / "s.parquet"], "a_file is a file, not a folder"),
        (["score", "dealers", "--out", f"{tmp_path / 'a_file' / 'x.duckdb'}#t"], "a_file is a file, not a folder"),
        (["alerts", "--target", tmp_path / "a_file" / "a.sqlite"], "a_file is a file, not a folder"),
        # train's --json (the backtest report) is checked before the data load too
        (["train", "churn", "--json", tmp_path / "scores.csv"], "--json " + str(tmp_path / "scores.csv") + " is a folder"),
        (["train", "dealers", "--json", tmp_path / "a_file" / "bt.json"], "a_file is a file, not a folder"),
        # the backtests' --json in a folder no one may write in (even root): said before the data, not after
        (["backtest", "churn", "--json", "/proc/1/bt.json"],
         "error: --json /proc/1/bt.json: no permission to write in the folder /proc/1"),
        (["backtest", "dealers", "--json", "/proc/1/bt.json"],
         "error: --json /proc/1/bt.json: no permission to write in the folder /proc/1"),
    ]
    for args, msg in cases:
        r = CliRunner().invoke(app, [str(a) for a in [*args, "--config", tmp_path / "none.yaml", "--cutoff", "2024-06-01"]])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (args, r.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "scores.csv"]


def test_bad_webhook_fails_before_scoring(home, tmp_path):
    r = CliRunner().invoke(app, ["alerts", "--config", str(tmp_path / "none.yaml"), "--cutoff", "2024-06-01",
                                 "--target", str(tmp_path / "a.duckdb"), "--webhook", "crm.example.com/hook"])
    assert r.exit_code == 2 and "--webhook 'crm.example.com/hook': expected an http:// or https:// URL" in r.output
    assert not (tmp_path / "a.duckdb").exists()


def test_alerts_into_a_csv_fails_before_scoring(home, tmp_path):
    r = CliRunner().invoke(app, ["alerts", "--config", str(tmp_path / "none.yaml"), "--cutoff", "2024-06-01",
                                 "--target", str(tmp_path / "alerts.csv")])
    assert r.exit_code == 2 and "keep their state in a database" in r.output and "none.yaml" not in r.output
    assert not (tmp_path / "alerts.csv").exists()


def test_train_whose_report_cannot_be_written_registers_nothing(home, fast_config, tmp_path):
    """The report was written after the run had registered the model, so a report that could not be
    written (here its temp path is taken by a folder; a full disk in practice) failed the command
    with a version registered. It is now written inside the run: the run fails, nothing is
    registered, and no report or temp file is left."""
    out = tmp_path / "rep" / "tr.json"
    (tmp_path / "rep" / ".tr.json.tmp").mkdir(parents=True)  # the staged write fails inside the run
    r = CliRunner().invoke(app, ["train", "churn", "--config", str(fast_config), "--json", str(out)])
    assert r.exit_code == 2 and f"cannot write {out}: Is a directory" in r.output and not out.exists()
    from training import tracking

    assert tracking.get_alias_version("dealerml-churn", "challenger") is None
    assert tracking.get_alias_version("dealerml-churn", "champion") is None
    shutil.rmtree(tmp_path / "rep" / ".tr.json.tmp")
    text = _run("train", "churn", "--config", fast_config, "--json", out)
    assert "registered dealerml-churn version 1" in text and json.loads(out.read_text())["final"] == "lightgbm"
    assert sorted(p.name for p in out.parent.iterdir()) == ["tr.json"]


def test_train_whose_model_cannot_be_saved_registers_nothing(home, fast_config, tmp_path):
    """--save-to was written after the run had registered the model: a folder that could not be
    written (/proc/1, a read-only mount, a full disk) failed with a FileNotFoundError / OSError
    traceback once the version was registered as challenger. An unwritable folder is refused before
    the work; a save that fails (here a temp path taken by a folder) fails the run, registering nothing."""
    r = CliRunner().invoke(app, ["train", "churn", "--config", str(fast_config), "--save-to", "/proc/1/m"])
    assert r.exit_code == 2, (r.output, r.exception)
    assert " ".join(r.output.split()) == ("error: --save-to /proc/1/m: no permission to write in the folder /proc/1; "
                                          "give a folder you can write to")
    assert not home.exists()  # refused before the work: no store made
    model = tmp_path / "model"  # a previous --save-to folder, its booster's temp path taken
    model.mkdir()
    (model / "churn_model.json").write_text("{}")
    (model / ".booster.txt.tmp").mkdir()
    out = tmp_path / "tr.json"
    r = CliRunner().invoke(app, ["train", "churn", "--config", str(fast_config), "--save-to", str(model),
                                 "--json", str(out)])
    assert r.exit_code == 2, (r.output, r.exception)
    assert f"error: cannot write {model / 'booster.txt'}: Is a directory" in " ".join(r.output.split())
    from training import tracking

    assert tracking.get_alias_version("dealerml-churn", "challenger") is None
    assert tracking.get_alias_version("dealerml-churn", "champion") is None
    assert not out.exists() and (model / "churn_model.json").read_text() == "{}"
    assert sorted(p.name for p in model.iterdir()) == [".booster.txt.tmp", "churn_model.json"]
    (model / ".booster.txt.tmp").rmdir()
    text = _run("train", "churn", "--config", fast_config, "--save-to", model, "--json", out)
    assert "registered dealerml-churn version 1" in text and f"saved the model to {model}" in text
    assert sorted(p.name for p in model.iterdir()) == ["booster.txt", "churn_model.json"]
    from models.churn import ChurnModel

    assert ChurnModel.load(model).feature_names_ and json.loads(out.read_text())["final"] == "lightgbm"


def test_promote_refuses_a_challenger_fitted_on_another_book_unless_forced(home, fast_config, synthetic_dir, tmp_path):
    """A challenger trained with another book's config (here the book without 20 accounts) was promoted on
    this book's scores without a word, then (with a caution) promoted all the same: promote refits both
    models' settings on its --config's book, but the version that becomes champion is the one fitted and
    backtested on the other order lines, so its evidence is not comparable. Refused (exit 2, nothing scored
    or moved, both books named) unless --force, which promotes with the caution."""
    lines = pd.read_parquet(synthetic_dir / "order_lines.parquet")
    keep = ~lines["account_id"].isin(sorted(lines["account_id"].unique())[:20])
    other_lines = tmp_path / "other" / "order_lines.parquet"
    other_lines.parent.mkdir()
    lines[keep].to_parquet(other_lines, index=False)
    cfg = yaml.safe_load(fast_config.read_text())
    cfg["data"]["order_lines"]["path"] = str(other_lines)
    other = tmp_path / "other" / "churn.yaml"
    other.write_text(yaml.safe_dump(cfg))

    _run("train", "churn", "--config", fast_config)  # v1, champion
    _run("train", "churn", "--config", other)  # v2, challenger, fitted on the other book
    out = tmp_path / "decision.json"
    r = CliRunner().invoke(app, ["promote", "churn", "--config", str(fast_config), "--json", str(out)])
    refused = " ".join(r.output.split())
    assert r.exit_code == 2 and not out.exists(), r.output
    from training import tracking

    assert tracking.get_alias_version("dealerml-churn", "champion") == "1"
    assert "promote churn: challenger v2 was fitted on other order lines than the ones this promote scores on: its" in refused
    assert (f"read {other_lines} ({int(keep.sum())} order lines, 2022-01-01 .. 2024-06-30, sha256 ") in refused
    assert (f"{fast_config} reads {synthetic_dir / 'order_lines.parquet'} ({len(lines)} order lines") in refused
    assert ("Its evidence is not comparable: its run backtested it on the former, and promote would score its settings "
            "refitted on the latter, not the version the service would load as champion; so nothing was scored or "
            f"moved. Retrain it on this config (dealerml train churn --config {fast_config}) and promote that one, or "
            "pass --force") in refused
    text = _run("promote", "churn", "--config", fast_config, "--json", out, "--force")
    said = " ".join(text.split())
    from training.data import order_lines_sha256

    ours = order_lines_sha256(lines)[:12]
    assert (f"caution: challenger v2 was fitted on other order lines than the ones this promote scored on: its run "
            f"read {other_lines} ({int(keep.sum())} order lines, 2022-01-01 .. 2024-06-30, sha256 ") in said, said
    assert (f", {fast_config} reads {synthetic_dir / 'order_lines.parquet'} ({len(lines)} order lines, 2022-01-01 .. "
            f"2024-06-30, sha256 {ours}). Both models' settings were refitted on the latter") in said
    assert f"retrain it on this config (dealerml train churn --config {fast_config}) and promote that one" in said
    d = json.loads(out.read_text())
    assert d["fitted_on_other_data"].startswith("challenger v2 was fitted on other order lines")
    _run("train", "churn", "--config", fast_config)  # v3, on this book: nothing to say
    text = _run("promote", "churn", "--config", fast_config, "--json", out)
    assert "fitted on other order lines" not in text and "fitted_on_other_data" not in json.loads(out.read_text())


def test_a_churn_model_is_scored_on_the_lookback_it_was_trained_with(home, fast_config, tmp_path, caplog):
    """A challenger trained with churn.lookback_days 120 was scored (score, alerts), served and refitted by
    promote with the config's 365 days, another population than it was trained on, without a word: its
    lookback was not kept with it. It is now (like horizon_days): scoring and the service use it, saying so,
    and promote refuses a mismatch naming both values. A model saved before keeps the config's."""
    import logging
    from types import SimpleNamespace

    from models.churn import ChurnModel
    from serving.churn import ChurnBackend
    from training import tracking
    from training.config import load_config
    from training.data import load_order_book

    cfg = yaml.safe_load(fast_config.read_text())
    cfg["churn"]["lookback_days"] = 120
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(cfg))
    _run("train", "churn", "--config", fast_config)  # v1, champion, 365 days
    _run("train", "churn", "--config", short, "--save-to", tmp_path / "m120")  # v2, challenger, 120 days
    assert tracking.get_alias_version("dealerml-churn", "champion") == "1"
    assert ChurnModel.load(tmp_path / "m120").lookback_days == 120

    def score(config, out, *more):
        r = CliRunner().invoke(app, ["score", "churn", "--config", str(config), "--cutoff", "2024-06-01",
                                     "--out", str(tmp_path / out), *map(str, more)])
        assert r.exit_code == 0, (r.output, r.exception)
        return pd.read_csv(tmp_path / out), r

    own, _ = score(short, "own.csv", "--alias", "challenger")
    champ, _ = score(fast_config, "champ.csv", "--alias", "champion")
    assert len(own) < len(champ)  # 120 days hold fewer accounts than 365: the test tells them apart
    got, r = score(fast_config, "got.csv", "--alias", "challenger")
    assert sorted(got["account_id"]) == sorted(own["account_id"])
    assert got.set_index("account_id")["probability"].sort_index().tolist() == \
        own.set_index("account_id")["probability"].sort_index().tolist()
    said = " ".join(r.stderr.split())
    assert ("note: dealerml-churn/2 was trained with churn.lookback_days 120, not the config's 365: it scores its "
            "own population, the accounts with an order in the 120 days before 2024-06-01; set "
            "churn.lookback_days: 120 in the config to match it, or train a model with 365") in said, said
    assert "with no order in the 120 days before 2024-06-01" in r.stdout, r.stdout
    _, r = score(fast_config, "champ.csv", "--alias", "champion")  # the same lookback: nothing to say
    assert "trained with churn.lookback_days" not in r.output

    # the service scores it on its own population too, and says why the others have no score
    model, _ = tracking.load_model("dealerml-churn", "challenger")
    served = yaml.safe_load(fast_config.read_text())
    served["serving"] = {"churn_cutoff": "2024-06-01"}
    (tmp_path / "served.yaml").write_text(yaml.safe_dump(served))
    exp = load_config(tmp_path / "served.yaml")
    book = load_order_book(exp)
    with caplog.at_level(logging.WARNING, logger="dealerml.serving"):
        be = ChurnBackend.build(model, SimpleNamespace(name="dealerml-churn", version="2"), book, exp)
    assert sorted(be.rows) == sorted(own["account_id"].astype(str)) and be.lookback_days == 120
    assert "dealerml-churn/2 was trained with churn.lookback_days 120, not the config's 365" in caplog.text
    lapsed = sorted(set(champ["account_id"].astype(str)) - set(be.rows))[0]
    assert "-day lookback ending 2024-06-01" in be.not_scored_reason(lapsed)
    assert be.not_scored_reason(lapsed).endswith("before the 120-day lookback ending 2024-06-01")

    # promote refits and scores the settings on the config's population: a mismatch is refused, named
    r = CliRunner().invoke(app, ["promote", "churn", "--config", str(fast_config)])
    assert r.exit_code != 0
    assert ("challenger v2: the model's lookback_days (120) differs from the config's churn.lookback_days (365); "
            "promotion compares models on the same accounts") in " ".join(r.output.split()), r.output
    assert tracking.get_alias_version("dealerml-churn", "champion") == "1"

    # a model saved before the lookback was kept loads, and is scored with the config's (as it was)
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "m120", old)
    meta = json.loads((old / "churn_model.json").read_text())
    del meta["params"]["lookback_days"]
    (old / "churn_model.json").write_text(json.dumps(meta))
    assert ChurnModel.load(old).lookback_days is None
    got, r = score(fast_config, "old.csv", "--model", old)
    assert len(got) == len(champ) and "trained with churn.lookback_days" not in r.output


def test_churn_model_lookback_days_other_than_churn_lookback_days_is_refused():
    """churn.model is handed to the model as it is: a lookback_days there would be kept with the model while
    its population came from churn.lookback_days."""
    from training.churn_backtest import ChurnSettings, _model_from_settings
    from training.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _model_from_settings(ChurnSettings(lookback_days=365, model={"lookback_days": 120}), seed=0)
    assert str(err.value) == ("churn.model.lookback_days (120) differs from churn.lookback_days (365): the population "
                              "window is churn.lookback_days; remove lookback_days from churn.model")
    assert _model_from_settings(ChurnSettings(lookback_days=200), seed=0).lookback_days == 200


def test_churn_model_horizon_days_other_than_churn_horizon_days_is_refused():
    """churn.model.horizon_days was kept with the model over churn.horizon_days (a setdefault): a model trained
    and calibrated on 90-day labels said it had a 60-day horizon (its BG/NBD blend, revenue at risk and promote's
    check read that). It is refused, as churn.model.lookback_days is."""
    from training.churn_backtest import ChurnSettings, _model_from_settings
    from training.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _model_from_settings(ChurnSettings(horizon_days=90, model={"horizon_days": 60}), seed=0)
    assert str(err.value) == ("churn.model.horizon_days (60) differs from churn.horizon_days (90): the model is "
                              "trained and calibrated on churn.horizon_days labels; remove horizon_days from "
                              "churn.model")
    assert _model_from_settings(ChurnSettings(horizon_days=60), seed=0).horizon_days == 60
    assert _model_from_settings(ChurnSettings(horizon_days=60, model={"horizon_days": 60}), seed=0).horizon_days == 60


def test_revenue_at_risk_is_over_the_models_own_horizon(synthetic_book, tmp_path):
    """A model trained with churn.horizon_days 60 scores P(no order in the next 60 days), but its revenue_at_risk
    (and so expected_value and the tiers) was last-365-day revenue scaled by the config's 90 days: 1.5x the
    revenue its probability is about. It is scaled by the model's own horizon; a model without one, the config's."""
    from models.churn import ChurnModel
    from training.churn_backtest import churn_cutoffs, churn_settings, fit_churn, score_accounts

    s60 = churn_settings({"horizon_days": 60, "n_train_cutoffs": 1, "model": {"n_estimators": 10},
                          "tiers": {"high_probability": 0.3, "contact_cost": 1.0, "capacity_per_run": 20}})
    model, _, _ = fit_churn(synthetic_book, s60, churn_cutoffs("2024-04-02", s60, first_date="2022-01-01"),
                            num_threads=1)
    model.save(tmp_path / "m60")
    model = ChurnModel.load(tmp_path / "m60")
    assert model.horizon_days == 60
    s90 = s60.model_copy(update={"horizon_days": 90})

    def score(settings, m=model):
        return score_accounts(synthetic_book, m, settings, "2024-06-01", model_version="t", reasons=False)

    own, got = score(s60), score(s90)
    rev = own["revenue_at_risk"].to_numpy()
    assert (rev > 0).any() and got["probability"].tolist() == own["probability"].tolist()
    assert got["revenue_at_risk"].tolist() == rev.tolist()
    assert got["expected_value"].tolist() == own["expected_value"].tolist()
    assert got["tier"].tolist() == own["tier"].tolist()
    # independently of score_accounts: the population's last-365-day revenue, scaled to 60 days
    from training.churn_backtest import snapshot

    pop = snapshot(synthetic_book, pd.Timestamp("2024-06-01"), s60, labels=False)[0]
    want = dict(zip(pop["account_id"].astype(str), pop["revenue_365d"].astype(float) * 60 / 365, strict=True))
    assert got["revenue_at_risk"].tolist() == pytest.approx([want[a] for a in got["account_id"]], rel=1e-12)

    # a model saved without a horizon (horizon_days None) keeps the config's, as before
    model.horizon_days = None
    old = score(s90)
    assert old["revenue_at_risk"].tolist() == pytest.approx((rev * 90 / 60).tolist(), rel=1e-12)


def test_a_churn_model_with_another_horizon_than_the_config_says_so(synthetic_book, small_config, tmp_path, caplog):
    """A model trained with churn.horizon_days 60 scored under the config's 90 gives P(no order in 60 days) and
    60 days of revenue at risk (a359982), but score / alerts / the service said nothing of it, as they do of
    another lookback: they say so now; nothing when both agree or for a model saved without a horizon."""
    import logging
    from types import SimpleNamespace

    from serving.churn import ChurnBackend
    from training.churn_backtest import churn_cutoffs, churn_settings, fit_churn, horizon_note
    from training.config import load_config

    s60 = churn_settings({"horizon_days": 60, "n_train_cutoffs": 1, "model": {"n_estimators": 10}})
    model, _, _ = fit_churn(synthetic_book, s60, churn_cutoffs("2024-04-02", s60, first_date="2022-01-01"),
                            num_threads=1)
    model.save(tmp_path / "m60")
    s90 = s60.model_copy(update={"horizon_days": 90})
    want = ("m60 was trained with churn.horizon_days 60, not the config's 90: its probabilities are P(no order in the "
            "60 days after 2024-06-01) and its revenue at risk is 60 days of revenue; set churn.horizon_days: 60 in "
            "the config to match it, or train a model with 90")
    assert horizon_note(model, s90, "2024-06-01", "m60") == want
    assert horizon_note(model, s60, "2024-06-01", "m60") is None
    assert horizon_note(SimpleNamespace(horizon_days=None), s90, "2024-06-01", "m60") is None

    r = CliRunner().invoke(app, ["score", "churn", "--config", str(small_config), "--cutoff", "2024-06-01",
                                 "--model", str(tmp_path / "m60"), "--out", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, (r.output, r.exception)
    assert f"note: the model in {tmp_path / 'm60'} was trained with churn.horizon_days 60, not the config's 90" \
        in " ".join(r.stderr.split()), r.stderr

    served = yaml.safe_load(small_config.read_text())
    served["serving"] = {"churn_cutoff": "2024-06-01"}
    (tmp_path / "served.yaml").write_text(yaml.safe_dump(served))
    with caplog.at_level(logging.WARNING, logger="dealerml.serving"):
        ChurnBackend.build(model, SimpleNamespace(name="dealerml-churn", version="3"), synthetic_book,
                           load_config(tmp_path / "served.yaml"))
    assert want.replace("m60", "dealerml-churn/3", 1) in caplog.text, caplog.text


def test_the_training_window_names_the_lookback(home, synthetic_config, synthetic_book, tmp_path):
    """The training_window logged with a churn model (GET /model_info) named its horizon_days but not the
    lookback_days its population was drawn from: it does now, from train churn and from tune churn."""
    from training import tracking
    from training.churn_tuning import tuning_target
    from training.config import load_config

    config = write_config(synthetic_config, tmp_path / "c200.yaml",
                          churn={"lookback_days": 200, "n_train_cutoffs": 1, "model": {"n_estimators": 10}})
    _run("train", "churn", "--config", config)
    _, info = tracking.load_model("dealerml-churn", "challenger")
    assert info.training_window["lookback_days"] == 200 and info.training_window["horizon_days"] == 90
    window = tuning_target(load_config(config), synthetic_book).model_metadata["training_window"]
    assert window["lookback_days"] == 200 and window["horizon_days"] == 90
