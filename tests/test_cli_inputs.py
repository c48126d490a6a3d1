"""Bad files, config values and command-line inputs get a clear error (exit 2, "error: ...")
naming the file / column / value and what was expected, and a failed run writes nothing.

Tiny hand-made order books (a few hundred lines) and CliRunner: the whole file runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from training.cli import app
from training.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _lines(start: str = "2024-01-01", end: str = "2024-12-31", n_accounts: int = 8) -> pd.DataFrame:
    """Every account orders every ~10 days between start and end (dates as ISO text)."""
    rows = []
    days = pd.date_range(start, end, freq="D")
    for a in range(n_accounts):
        for i, d in enumerate(days[a % 10 :: 10]):
            rows.append({"order_id": f"O{a}-{i}", "order_date": d.strftime("%Y-%m-%d"), "account_id": f"A{a:03d}",
                         "sku": f"S{i % 3}", "quantity": 1 + i % 4, "unit_price": 10.0})
    return pd.DataFrame(rows)


def _book(tmp_path: Path, lines: pd.DataFrame | None = None, *, as_of: str = "2024-12-31", name: str = "c",
          csv_kw: dict | None = None, **table) -> Path:
    """A config naming one order_lines CSV (written from ``lines``)."""
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    (lines if lines is not None else _lines()).to_csv(d / "order_lines.csv", index=False, **(csv_kw or {}))
    cfg = {"name": name, "data": {"order_lines": {"path": "order_lines.csv", **table}, "as_of": as_of}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    return d / "config.yaml"


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _err(res) -> str:
    """The one-line-ish error text; a traceback shown to the user is a failure."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    assert "error: " in res.output
    return " ".join(res.output.split())


# ------------------------------------------------------------------ 1. mixed UTC offsets
def test_mixed_utc_offsets_keep_the_wall_clock_time(tmp_path):
    from training.config import load_config
    from training.data import load_order_book

    ol = _lines()
    ol.loc[0::3, "order_date"] = ol.loc[0::3, "order_date"] + "T10:00:00+02:00"
    ol.loc[1::3, "order_date"] = ol.loc[1::3, "order_date"] + "T10:00:00+01:00"  # a DST change
    cfg = _book(tmp_path, ol)
    res = _run("data", "validate", "--config", cfg)
    assert res.exit_code == 0, (res.output, res.exception)
    book = load_order_book(load_config(cfg))
    got = book.order_lines.set_index("order_id")["order_date"]
    assert got["O0-0"] == pd.Timestamp("2024-01-01 10:00") and got["O0-1"] == pd.Timestamp("2024-01-11 10:00")
    assert got["O0-2"] == pd.Timestamp("2024-01-21")  # the naive one, mixed in
    assert len(book.order_lines) == len(ol)


def test_mixed_offsets_in_the_pandas_date_path():
    from training._validate_dates import _parse_dates

    s = pd.Series(["2023-03-25 10:00:00+01:00", "2023-03-27 10:00:00+02:00", None, "27/03/2023 09:30 +0200",
                   "2023-03-28", "2023-03-28 11:00Z"])
    out = _parse_dates(s, col="d", table="t", source="s", mapping={}, date_format=None, dayfirst=True)
    assert out.dtype == "datetime64[ns]"
    assert out.tolist()[:2] == [pd.Timestamp("2023-03-25 10:00"), pd.Timestamp("2023-03-27 10:00")]
    assert out[3] == pd.Timestamp("2023-03-27 09:30") and out[4] == pd.Timestamp("2023-03-28")
    assert out[5] == pd.Timestamp("2023-03-28 11:00") and pd.isna(out[2])
    with_fmt = _parse_dates(s[:2], col="d", table="t", source="s", mapping={}, date_format="%Y-%m-%d %H:%M:%S%z",
                            dayfirst=False)
    assert with_fmt.tolist() == [pd.Timestamp("2023-03-25 10:00"), pd.Timestamp("2023-03-27 10:00")]


# ------------------------------------------------------------ 2. / 3. encodings
def test_unknown_encoding_is_a_config_error(tmp_path):
    cfg = _book(tmp_path, encoding="utf-99")
    msg = _err(_run("data", "validate", "--config", cfg))
    assert "data.order_lines.encoding" in msg and "'utf-99'" in msg and "latin-1" in msg


def test_latin1_file_read_as_utf8_names_the_column_and_the_fix(tmp_path):
    ol = _lines()
    ol["sku"] = ol["sku"].astype(object)
    ol.loc[len(ol) - 2, "sku"] = "Käse"
    cfg = _book(tmp_path, ol, csv_kw={"encoding": "latin-1"})
    msg = _err(_run("data", "validate", "--config", cfg))
    assert "column 'sku'" in msg and "set encoding:" in msg and "latin-1" in msg
    assert f"line {len(ol):,}" in msg  # header = line 1
    assert "#3" not in msg
    cfg.write_text(cfg.read_text().replace("path: order_lines.csv", "path: order_lines.csv\n    encoding: latin-1"))
    assert _run("data", "validate", "--config", cfg).exit_code == 0


# --------------------------------------------------------- 4. cutoffs after the data
def test_score_churn_refuses_a_cutoff_after_the_book(tmp_path, monkeypatch):
    import training.commands.churn as churn_cmd

    monkeypatch.setattr(churn_cmd, "_resolve_model", lambda *a: (object(), "test"))
    cfg = _book(tmp_path)
    out = tmp_path / "scores.csv"
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "2025-06-01", "--out", out))
    assert "--cutoff 2025-06-01" in msg and "2024-12-31" in msg and "latest valid cutoff is 2025-01-01" in msg
    assert not out.exists()


def test_score_accounts_refuses_a_cutoff_after_the_book(tmp_path):
    from training.churn_backtest import ChurnSettings, score_accounts

    class Book:
        order_lines = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-05 00:00", "2024-12-31 15:00"])})

    with pytest.raises(DataError, match="latest valid cutoff is 2025-01-01"):
        score_accounts(Book(), None, ChurnSettings(), "2025-01-02", model_version="x")


def test_score_dealers_and_features_build_refuse_a_cutoff_after_the_book(tmp_path):
    cfg = _book(tmp_path)
    out = tmp_path / "d.csv"
    msg = _err(_run("score", "dealers", "--config", cfg, "--cutoff", "2026-01-01", "--out", out, "--fit"))
    assert "--cutoff 2026-01-01" in msg and "latest valid cutoff is 2025-01-01" in msg and not out.exists()
    feats = tmp_path / "feats"
    msg = _err(_run("features", "build", "--config", cfg, "--cutoff", "2030-01-01", "--out", feats))
    assert "--cutoff 2030-01-01" in msg and "2024-12-31" in msg and "2025-01-01" in msg and not feats.exists()


def test_features_build_into_a_place_it_cannot_write_says_so(tmp_path):
    """--out below a file (or in a read-only place) ended in a FileNotFoundError / NotADirectoryError
    traceback from the temporary folder's mkdir."""
    cfg = _book(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "notes.txt" / "feats"
    msg = _err(_run("features", "build", "--config", cfg, "--cutoff", "2024-06-30", "--out", out))
    assert msg == f"error: --out {out}: {tmp_path / 'notes.txt'} is a file, not a folder", msg
    assert (tmp_path / "notes.txt").read_text() == "x"
    if Path("/proc/self").is_dir():  # Linux: no one, root included, can create a folder in /proc
        msg = _err(_run("features", "build", "--config", cfg, "--cutoff", "2024-06-30", "--out", "/proc/feats"))
        assert msg.startswith("error: cannot write --out /proc/feats: ") and msg.endswith("; nothing was written"), msg


def test_demand_cutoff_after_the_book_is_refused(tmp_path):
    # a demand.cutoff after the data would pad every series with weeks of zero demand
    cfg = _book(tmp_path, name="d")
    raw = yaml.safe_load(cfg.read_text())
    raw["demand"] = {"freq": "W", "levels": ["sku"], "cutoff": "2025-06-01"}
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "r.json"
    msg = _err(_run("backtest", "demand", "--config", cfg, "--json", out))
    assert "demand.cutoff 2025-06-01 is after the end of the order book" in msg and "latest valid cutoff is 2025-01-01" in msg
    assert not out.exists()
    raw["demand"]["cutoff"] = "2025-01-02"  # one day too late: said in the singular
    cfg.write_text(yaml.safe_dump(raw))
    msg = _err(_run("backtest", "demand", "--config", cfg, "--json", out))
    assert "so the 1 day before the cutoff would look like days without orders" in msg, msg


# ---------------------------------------------------------------- 5. bad --cutoff
@pytest.mark.parametrize("cmd", [("train", "churn"), ("backtest", "churn"), ("score", "churn"),
                                 ("backtest", "dealers"), ("features", "build")])
@pytest.mark.parametrize("value", ["2024-13-01", "notadate"])
def test_bad_cutoff_names_the_option(tmp_path, cmd, value):
    cfg = _book(tmp_path)
    extra = {"backtest": ["--json", tmp_path / "r.json"], "score": ["--out", tmp_path / "s.csv"],
             "features": ["--out", tmp_path / "f"]}.get(cmd[0], [])
    msg = _err(_run(*cmd, "--config", cfg, "--cutoff", value, *extra))
    assert f"--cutoff must be a date like 2024-06-01 (YYYY-MM-DD); got '{value}'" in msg


def test_parse_cutoff():
    from training.data import parse_cutoff

    assert parse_cutoff("2024-03-01") == pd.Timestamp("2024-03-01")
    with pytest.raises(ConfigError, match="without a time of day"):
        parse_cutoff("2024-03-01 10:00")
    with pytest.raises(ConfigError, match="--as-of must be a date"):
        parse_cutoff("", "--as-of")


# ------------------------------------------------------- 6. advice the user can follow
def test_backtest_churn_unobservable_cutoff_gives_cli_advice(tmp_path):
    cfg = _book(tmp_path)
    msg = _err(_run("backtest", "churn", "--config", cfg, "--cutoff", "2024-12-01", "--json", tmp_path / "r.json"))
    assert "require_observable" not in msg
    assert "--cutoff on or before 2024-10-03" in msg and "--horizon-days" in msg
    assert not (tmp_path / "r.json").exists()


def test_labels_message_has_no_python_argument():
    from features.labels import churn_labels

    ol = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-05", "2024-12-31"]), "account_id": ["A", "B"]})
    with pytest.raises(ValueError) as info:
        churn_labels(ol, cutoff="2024-12-01", horizon_days=90)
    assert "require_observable" not in str(info.value) and "on or before 2024-10-03" in str(info.value)


def test_short_book_says_how_long_it_must_be(tmp_path):
    cfg = _book(tmp_path, _lines("2024-11-15", "2024-12-31"))
    msg = _err(_run("backtest", "churn", "--config", cfg, "--json", tmp_path / "r.json"))
    assert "too short for a 90-day churn horizon" in msg and "2024-11-15 .. 2024-12-31 (47 days)" in msg
    assert "needs at least 300 days" in msg and "pick a later cutoff" not in msg
    msg = _err(_run("train", "dealers", "--config", cfg))
    assert "2024-07-03" in msg and "day after the last order (2024-12-31) minus dealers.horizon_days 182" in msg
    assert "spans 2024-11-15 .. 2024-12-31 (47 days)" in msg and "at least 270 days" in msg


# -------------------------------------------------------------- 7. unreachable target
def test_unreachable_database_target_is_a_clean_error(tmp_path, monkeypatch):
    import training.commands.churn as churn_cmd

    scores = pd.DataFrame({"account_id": ["A"], "probability": [0.5], "tier": ["high"], "model_version": ["t"],
                           "scored_at": [pd.Timestamp("2024-06-01 08:00")], "cutoff": [pd.Timestamp("2024-06-01")]})
    monkeypatch.setattr(churn_cmd, "_scores", lambda *a: (scores, None))
    cfg = _book(tmp_path)
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "2024-06-01", "--out", "scores",
                    "--target", "postgresql+psycopg://nobody:secret@127.0.0.1:1/db"))
    assert "cannot connect to postgresql+psycopg://nobody:***@127.0.0.1:1/db" in msg and "secret" not in msg


# ------------------------------------------------------ 8. missing SQLite file not created
def test_missing_sqlite_file_is_not_created(tmp_path):
    cfg = _book(tmp_path)
    cfg.write_text(cfg.read_text().replace("path: order_lines.csv", "url: sqlite:///nope.db\n    table: lines"))
    msg = _err(_run("data", "validate", "--config", cfg))
    assert "nope.db" in msg and "not found" in msg
    assert not (cfg.parent / "nope.db").exists()


# ------------------------------------------------------------- 9. data generate --out
def test_generate_refuses_a_folder_of_user_files(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "accounts.csv").write_text("my,own\n1,2\n")
    (user / "config.yaml").write_text("name: mine\n")
    msg = _err(_run("data", "generate", "--out", user, "--accounts", 20, "--skus", 12, "--locations", 1,
                    "--start", "2024-01-01", "--end", "2024-12-31"))
    assert "did not write" in msg and "accounts.csv" in msg and "new or empty folder" in msg
    assert (user / "accounts.csv").read_text() == "my,own\n1,2\n" and sorted(p.name for p in user.iterdir()) == [
        "accounts.csv", "config.yaml"]
    f = tmp_path / "some.yaml"
    f.write_text("x: 1\n")
    msg = _err(_run("data", "generate", "--out", f, "--accounts", 20))
    assert "is a file, not a folder" in msg and f.read_text() == "x: 1\n"
    # a start before 1677 overflowed pandas' calendar into a 1 TiB allocation (MemoryError traceback)
    msg = _err(_run("data", "generate", "--out", tmp_path / "g", "--accounts", 20, "--skus", 12, "--locations", 1,
                    "--start", "1700-01-01", "--end", "2023-12-31"))
    assert "start/end must lie between 1900-01-01 and 2200-12-31; got 1700-01-01 .. 2023-12-31" in msg
    assert not (tmp_path / "g").exists()
    if Path("/proc/self").is_dir():  # Linux: no one, root included, can create a folder in /proc
        msg = _err(_run("data", "generate", "--out", "/proc/dealerml-g", "--accounts", 20, "--skus", 12,
                        "--locations", 1, "--start", "2023-01-01", "--end", "2023-12-31"))
        assert "data generate: cannot write --out /proc/dealerml-g: " in msg, msg


def test_generate_refuses_accounts_with_lines(tmp_path):
    """--lines sets the number of accounts: --accounts 60 --lines 3000 wrote 20 accounts without a word."""
    out = tmp_path / "g"
    msg = _err(_run("data", "generate", "--out", out, "--accounts", 60, "--lines", 3000, "--skus", 12,
                    "--locations", 1))
    assert msg == ("error: data generate: --accounts 60 and --lines 3000 both set the size of the network (--lines "
                   "picks the number of accounts that gives about that many order lines); give one of them"), msg
    assert not out.exists()
    res = _run("data", "generate", "--out", out, "--lines", 3000, "--skus", 12, "--locations", 1)
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out / "accounts.csv")) == 21  # the number --lines 3000 picks, not --accounts' default 400


def test_generate_again_into_its_own_folder(tmp_path):
    from training.synthetic import generate

    out = tmp_path / "syn"
    kw = dict(n_accounts=20, n_skus=12, n_locations=1, start="2024-01-01", end="2024-12-31")
    generate(out, seed=1, **kw)
    (out / "notes.txt").write_text("mine")
    generate(out, seed=2, **kw)  # its own folder (its config.yaml says so): the generated files are replaced
    assert "synthetic-seed2" in (out / "config.yaml").read_text() and (out / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------- 10. smaller
def test_default_alias_error_names_champion(monkeypatch):
    from training import tracking
    from training.commands.churn import _resolve_model

    def missing(name, alias):
        raise ConfigError(f"no model version of {name!r} has alias {alias!r} in sqlite:///x; train one")

    monkeypatch.setattr(tracking, "load_model", missing)
    monkeypatch.setattr(tracking, "local_store_missing", lambda: None)  # a store that holds no such alias
    with pytest.raises(ConfigError) as info:
        _resolve_model(None, None)
    msg = str(info.value)
    assert "has no 'champion' version (and no 'challenger' to fall back to)" in msg
    assert "has alias 'challenger'" not in msg
    with pytest.raises(ConfigError, match="has alias 'gold'"):
        _resolve_model(None, "gold")


def test_out_with_an_unknown_suffix_says_what_is_accepted(tmp_path):
    cfg = _book(tmp_path)
    msg = _err(_run("score", "churn", "--config", cfg, "--cutoff", "2024-06-01", "--out", "out/churn.xlsx"))
    assert "'out/churn.xlsx'" in msg and ".csv or .parquet" in msg and "e.g. churn_scores" in msg


def test_dealers_section_error_names_the_file_once(tmp_path):
    cfg = _book(tmp_path)
    text = yaml.safe_load(cfg.read_text())
    text["dealers"] = {"horizon_days": 3}
    cfg.write_text(yaml.safe_dump(text))
    msg = _err(_run("backtest", "dealers", "--config", cfg, "--cutoff", "2024-06-01", "--json", tmp_path / "r.json"))
    assert "key 'dealers.horizon_days'" in msg and msg.count(str(cfg)) == 1


def test_promo_mapped_to_a_text_column_is_fatal():
    from training._validate_numbers import _to_flag

    kw = dict(col="promo", table="order_lines", source="f.csv", mapping={"promo": "Description"})
    ok = _to_flag(pd.Series(["1", "0", "yes", "FALSE", None, "junk"]), **kw)
    assert ok.tolist()[:4] == [1.0, 0.0, 1.0, 0.0] and np.isnan(ok.tolist()[5])
    with pytest.raises(DataError, match=r"order_lines.promo \(column 'Description'\) should hold 0/1 flags.*'WHITE MUG'"):
        _to_flag(pd.Series(["WHITE MUG", "RED BOX", "1", "BLUE CUP"]), **kw)


def test_unknown_promotion_metric_is_refused(tmp_path):
    from training.config import load_config

    cfg = _book(tmp_path)
    text = yaml.safe_load(cfg.read_text())
    text["promotion"] = {"churn": {"metric": "accuracy_xx", "margin": 0.01}}
    cfg.write_text(yaml.safe_dump(text))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    msg = str(info.value)
    assert "promotion.churn.metric" in msg and "'accuracy_xx'" in msg and "auc, pr_auc" in msg
    text["promotion"] = {"churn": {"metric": "pr_auc"}, "demand": {"metric": "mase"}}
    cfg.write_text(yaml.safe_dump(text))
    assert load_config(cfg).promotion["churn"]["metric"] == "pr_auc"


def test_promotion_metrics_match_what_the_evaluators_return():
    from training.churn_backtest import churn_metrics
    from training.config import PROMOTION_METRICS
    from training.demand_backtest import METRIC_KEYS

    assert set(PROMOTION_METRICS["churn"]) == set(churn_metrics([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.7]))
    assert set(PROMOTION_METRICS["demand"]) == set(METRIC_KEYS)
    from training.dealers_backtest import evaluate

    got = evaluate(np.arange(20.0), np.arange(20.0), np.ones(20), np.arange(20.0) + 2)
    assert set(PROMOTION_METRICS["dealers"]) == set(got)


def test_train_dealers_refuses_alias_champion_before_any_work(tmp_path):
    cfg = _book(tmp_path, name="al")
    msg = _err(_run("train", "dealers", "--config", cfg, "--alias", "champion"))
    assert "only through `dealerml promote`" in msg
    msg = _err(_run("train", "dealers", "--config", cfg, "--alias", "champion!"))
    assert "not a valid registry alias" in msg


def test_a_yaml_value_that_is_not_a_date_is_a_config_error(tmp_path):
    from training.config import load_config
    from training.errors import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text("name: x\ndata:\n  order_lines: {path: a.csv}\n  as_of: 2024-13-01\n")
    with pytest.raises(ConfigError, match="not a valid date"):
        load_config(p)


def test_every_visible_option_says_what_it_does():
    """`--help` of every command explains every option (score churn --config, alerts --alias,
    train churn --threads and simulate inventory --lead-time-days printed nothing)."""
    from typer.main import get_command

    missing = []

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
        for p in getattr(cmd, "params", []):
            if p.param_type_name == "option" and not p.hidden and not p.help and "--help" not in p.opts:
                missing.append(f"dealerml {' '.join(path)} {p.opts[0]}")

    walk(get_command(app), [])
    assert missing == []
