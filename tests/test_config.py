"""Experiment config loading: mapping, path resolution, ${VAR} expansion, errors naming file + key."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ExperimentConfig, TableSource, load_config
from training.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_minimal_config_defaults_and_relative_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    p = _write(
        tmp_path / "sub",
        """
name: tiny
data:
  order_lines:
    path: ../lines.csv.gz
    columns: {order_id: InvoiceNo}
""",
    )
    cfg = load_config(p)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.name == "tiny" and cfg.seed == 42
    assert cfg.config_path == p.resolve()
    src = cfg.data.order_lines
    assert src.path == (tmp_path / "lines.csv.gz").resolve()
    assert src.resolved_format() == "csv"
    assert src.source_column("order_id") == "InvoiceNo"
    assert src.source_column("sku") == "sku"  # unmapped -> same name
    assert cfg.data.accounts is None
    assert cfg.demand == {} and cfg.churn == {} and cfg.serving == {}
    assert list(cfg.data.sources()) == ["order_lines"]


def test_env_expansion_with_and_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EA_DATA_DIR", "/srv/exports")
    monkeypatch.delenv("EA_UNSET", raising=False)
    p = _write(
        tmp_path,
        """
name: ${EA_NAME:-fallback}
data:
  order_lines: {path: "${EA_DATA_DIR}/lines.parquet"}
  accounts: {path: "${EA_UNSET:-/opt}/acc.csv"}
churn: {horizon_days: 90, note: "${EA_DATA_DIR}"}
""",
    )
    cfg = load_config(p)
    assert cfg.name == "fallback"
    assert cfg.data.order_lines.path == Path("/srv/exports/lines.parquet")
    assert cfg.data.order_lines.resolved_format() == "parquet"
    assert cfg.data.accounts is not None and cfg.data.accounts.path == Path("/opt/acc.csv")
    assert cfg.churn == {"horizon_days": 90, "note": "/srv/exports"}


def test_unset_env_without_default_names_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EA_NOPE", raising=False)
    p = _write(tmp_path, "name: x\ndata:\n  order_lines: {path: '${EA_NOPE}/a.csv'}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert str(p) in msg and "data.order_lines.path" in msg and "EA_NOPE" in msg


@pytest.mark.parametrize(
    ("yaml_text", "key", "fragment"),
    [
        ("name: x\ndata:\n  order_lines: {path: a.csv, colums: {}}\n", "data.order_lines.colums", "unknown key"),
        ("name: x\ndata:\n  order_lines: {path: a.csv}\ndemmand: {}\n", "demmand", "unknown key"),
        ("name: x\nseed: many\ndata:\n  order_lines: {path: a.csv}\n", "seed", "'many'"),
        # numpy's generators refuse a negative seed, which surfaced mid-run as a data error
        ("name: x\nseed: -1\ndata:\n  order_lines: {path: a.csv}\n", "seed", "greater than or equal to 0; got -1"),
        ("name: x\nseed: 4294967296\ndata:\n  order_lines: {path: a.csv}\n", "seed", "less than or equal to 2147483647"),
        ("name: x\ndata: {}\n", "data.order_lines", "required key is missing"),
        # an empty name named the MLflow runs '', the tuning study '-churn' and wrote to experiments/<run id>/
        ("name: ''\ndata:\n  order_lines: {path: a.csv}\n", "name",
         "the experiment needs a name (it names the MLflow runs, the tuning studies and the output folder "
         "$DEALERML_HOME/experiments/<name>/): write a non-blank name, e.g. name: stallion; got ''"),
        ("name: '  '\ndata:\n  order_lines: {path: a.csv}\n", "name", "write a non-blank name, e.g. name: stallion; got '  '"),
        ("name: x\ndata:\n  order_lines: {path: a.csv, url: 'sqlite://'}\n", "data.order_lines", "exactly one of"),
        ("name: x\ndata:\n  order_lines: {url: 'postgresql+psycopg://u@h/db'}\n", "data.order_lines", "needs 'table:' or 'query:'"),
        ("name: x\ndata:\n  order_lines: {path: a.duckdb}\n", "data.order_lines", "needs 'table:' or 'query:'"),
        ("name: x\ndata:\n  order_lines: {path: a.csv, table: t}\n", "data.order_lines", "only apply to DuckDB"),
        ("name: x\ndata:\n  order_lines: {path: a.xlsx}\n", "data.order_lines", "cannot tell the format"),
        ("name: x\ndata:\n  order_lines: {path: a.csv, columns: {acount_id: Cust}}\n", "data", "acount_id"),
        ("name: x\ndata:\n  order_lines: {path: a.csv, sep: ';;'}\n", "data.order_lines.sep", "one character; got ';;'"),
        # a layout pandas cannot use stopped mid-load with its traceback ("'Q' is a bad directive")
        ("name: x\ndata:\n  order_lines: {path: a.csv, date_format: '%d.%Q'}\n", "data.order_lines.date_format",
         "not a strftime layout ('Q' is a bad directive in format '%d.%Q')"),
        ("name: x\ndata:\n  order_lines: {path: a.csv, date_format: '%Y-%m-%d %'}\n", "data.order_lines.date_format",
         "stray %"),
        ("name: x\ndata:\n  order_lines: {path: a.csv, date_format: dd.mm.yyyy}\n", "data.order_lines.date_format",
         "strftime layout with % codes, e.g. '%d.%m.%Y %H:%M'"),
        # pydantic read a number as seconds since 1970: 20241231 became 1970-08-23 and every row 'future'
        ("name: x\ndata:\n  as_of: 20241231\n  order_lines: {path: a.csv}\n", "data.as_of",
         "write the date as YYYY-MM-DD (e.g. 2024-12-31); a number would be read as seconds since 1970-01-01; got 20241231"),
        ("name: x\ndata:\n  as_of: '20241231'\n  order_lines: {path: a.csv}\n", "data.as_of", "seconds since 1970"),
        ("name: x\ndata:\n  order_lines: {url: 'not a url', table: t}\n", "data.order_lines.url", "SQLAlchemy URL"),
        (
            "name: x\ndata:\n  order_lines: {path: a.csv, derive_accounts_from: [Country]}\n  accounts: {path: b.csv}\n",
            "data",
            "use one",
        ),
        ("name: x\ndata:\n  order_lines: {path: a.csv}\n  inventory: {path: i.csv, cancellation_prefix: C}\n", "data", "only applies to order_lines"),
    ],
)
def test_bad_configs_name_file_and_key(tmp_path: Path, yaml_text: str, key: str, fragment: str) -> None:
    p = _write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert str(p) in msg
    assert f"key '{key}'" in msg
    assert fragment in msg


NAME_RULE = ("the name is used for the MLflow run names, the tuning study names and the output folder "
             "$DEALERML_HOME/experiments/<name>/: use at most 200 bytes (UTF-8), without / or \\ or control "
             "characters, and not '.' or '..', e.g. name: stallion")


@pytest.mark.parametrize("name", ["a/b", "../../outside", "..", ".", "a\\b", "a\tb", "x" * 201, "é" * 101])
def test_a_name_that_cannot_name_a_folder_is_refused_at_load(tmp_path: Path, name: str) -> None:
    """Only `experiment run` refused `name: a/b`; every other command (data validate, train, tune, ...)
    loaded it and went on. load_config is where every command reads its config, so the rule lives there."""
    import json

    p = tmp_path / "c.yaml"
    p.write_text(f"name: {json.dumps(name)}\ndata:\n  order_lines: {{path: a.csv}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(ei.value) == f"{p}: invalid experiment config\n  key 'name': {NAME_RULE}; got {name!r}"


@pytest.mark.parametrize("name", ["stallion", "Online Retail 2011 (v2)", "a.b-c_d:e", "x" * 200, "é" * 100])
def test_a_name_that_can_name_a_folder_loads(tmp_path: Path, name: str) -> None:
    import json

    p = tmp_path / "c.yaml"
    p.write_text(f"name: {json.dumps(name)}\ndata:\n  order_lines: {{path: a.csv}}\n", encoding="utf-8")
    assert load_config(p).name == name


@pytest.mark.parametrize("argv", [["data", "validate"], ["train", "churn"], ["tune", "demand"], ["forecast", "--out", "f.csv"],
                                  ["backtest", "dealers", "--json", "b.json"]])
def test_every_command_refuses_a_name_with_a_slash_the_same_way(tmp_path: Path, monkeypatch, argv: list[str]) -> None:
    from _support_cli import _err
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "c.yaml"
    p.write_text("name: a/b\ndata:\n  order_lines: {path: a.csv}\n")
    msg = _err(CliRunner().invoke(app, [*argv, "--config", str(p)]))
    assert msg == f"error: {p}: invalid experiment config key 'name': {NAME_RULE}; got 'a/b'"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.yaml"]  # nothing written


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a second order_lines: pasted below the first read
    another file without a word. A merge key ('<<: *base') may still be overridden."""
    p = _write(tmp_path, "name: x\ndata:\n  order_lines: {path: a.csv}\n  as_of: 2024-01-01\n"
                         "  order_lines: {path: b.csv}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(ei.value) == (f"{p}: not valid YAML: key 'order_lines' is given twice in one mapping (YAML would keep "
                             "only the last one; remove or rename one): first at line 3, again at line 5, column 3")
    p = _write(tmp_path, "name: x\ndata: {order_lines: {path: a.csv}, as_of: 2024-01-01, as_of: 2024-06-30}\n")
    with pytest.raises(ConfigError, match=r"key 'as_of' is given twice in one mapping .*first at line 2, again at line 2"):
        load_config(p)  # both on one line (a flow mapping)
    p = _write(tmp_path, "name: x\ndata:\n  order_lines: &b {path: a.csv, sep: ';'}\n"
                         "  accounts:\n    <<: *b\n    path: b.csv\n")
    cfg = load_config(p)
    assert cfg.data.accounts.path.name == "b.csv" and cfg.data.accounts.sep == ";"


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    p = _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    p = _write(tmp_path, "- a list\n", "list.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(p)


def test_url_password_masked_and_sqlite_relative(tmp_path: Path) -> None:
    src = TableSource(url="postgresql+psycopg://bob:s3cret@db.example:5432/sales", table="public.lines")
    assert "s3cret" not in src.describe() and "***" in src.describe()
    assert src.resolved_format() == "sql"
    p = _write(tmp_path, "name: x\ndata:\n  order_lines: {url: 'sqlite:///book.db', query: 'select * from lines'}\n")
    cfg = load_config(p)
    assert cfg.data.order_lines.url == f"sqlite:///{tmp_path.resolve() / 'book.db'}"


def test_derive_accounts_list_form_and_as_of_date(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "name: x\ndata:\n  as_of: 2011-12-09\n  order_lines: {path: a.csv, derive_accounts_from: [Country], cancellation_prefix: C}\n",
    )
    cfg = load_config(p)
    assert cfg.data.order_lines.derive_accounts_from == {"Country": "Country"}
    assert cfg.data.as_of is not None and cfg.data.as_of.isoformat() == "2011-12-09T00:00:00"


def test_online_retail_config_loads() -> None:
    cfg = load_config(REPO / "experiments" / "online_retail.yaml")
    src = cfg.data.order_lines
    assert src.columns["order_id"] == "InvoiceNo" and src.columns["account_id"] == "CustomerID"
    assert src.cancellation_prefix == "C"
    assert src.path is not None and src.path.name == "online_retail.csv.gz"
