"""A misspelt key in the demand: / churn: / dealers: / tuning: / serving: sections says which key was meant (or
lists the section's known keys) under its full key path, as the data: section does; it gave
pydantic's 'Extra inputs are not permitted' (QA pass)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from training.churn_backtest import churn_settings
from training.cli import app
from training.config import ExperimentConfig, load_config
from training.dealers_backtest import load_settings
from training.demand_config import demand_settings
from training.errors import ConfigError


def _cfg(**sections) -> ExperimentConfig:
    return ExperimentConfig(name="t", data={"order_lines": {"path": "ol.csv"}}, **sections)


def _error(fn, *args) -> str:
    with pytest.raises(ConfigError) as exc:
        fn(*args)
    msg = str(exc.value)
    assert "Extra inputs are not permitted" not in msg
    return msg


def test_demand_section_suggests_the_key():
    msg = _error(demand_settings, _cfg(demand={"selction_windows": 3, "series": {"path": "s.csv", "colums": {}},
                                               "zzz": 1}))
    assert "key 'demand.selction_windows': unknown key; did you mean 'selection_windows' or 'short_window'?" in msg
    assert "key 'demand.series.colums': unknown key; did you mean 'columns'?" in msg
    assert "key 'demand.zzz': unknown key; known keys: freq, horizon, windows," in msg
    # a bad value keeps its own message
    assert "key 'demand.horizon': Input should be greater than or equal to 1; got 0" in _error(
        demand_settings, _cfg(demand={"horizon": 0}))


def test_churn_section_suggests_the_key():
    assert _error(churn_settings, {"horizn_days": 30}) == (
        "config: invalid 'churn' section\n"
        "  key 'churn.horizn_days': unknown key; did you mean 'horizon_days' or 'train_horizon_days'?")
    assert _error(churn_settings, {"tiers": {"hig_probability": 0.3}}).endswith(
        "  key 'churn.tiers.hig_probability': unknown key; did you mean 'high_probability' or 'medium_probability'?")
    assert "  key 'churn.qqq': unknown key; known keys: horizon_days, " in _error(churn_settings, {"qqq": 1})


def test_churn_section_lists_every_bad_key():
    # it stopped at the first one: users with several mistakes fixed and reran once per key
    msg = _error(churn_settings, {"horizn_days": 30, "calibration": "platt",
                                  "tiers": {"hig_probability": 0.3, "capacity_per_run": -1}})
    assert msg.splitlines() == [
        "config: invalid 'churn' section",
        "  key 'churn.calibration': Input should be 'isotonic', 'sigmoid' or 'none'; got 'platt'",
        "  key 'churn.tiers.capacity_per_run': Input should be greater than or equal to 0; got -1",
        "  key 'churn.tiers.hig_probability': unknown key; did you mean 'high_probability' or 'medium_probability'?",
        "  key 'churn.horizn_days': unknown key; did you mean 'horizon_days' or 'train_horizon_days'?",
    ]


def test_dealers_section_suggests_the_key():
    msg = _error(load_settings, {"headrom_weight": 0.3, "lifecycle": {"growth": 0.1}})
    assert "key 'dealers.headrom_weight': unknown key; did you mean 'headroom_weight'?" in msg
    assert "key 'dealers.lifecycle.growth': unknown key; did you mean 'growth_pct'?" in msg


@pytest.mark.parametrize(("cmd", "section", "want"), [
    (["backtest", "demand"], {"demand": {"selction_windows": 3}},
     "key 'demand.selction_windows': unknown key; did you mean 'selection_windows' or 'short_window'?"),
    (["backtest", "churn"], {"churn": {"horizn_days": 30}},
     "key 'churn.horizn_days': unknown key; did you mean 'horizon_days' or 'train_horizon_days'?"),
    (["backtest", "dealers"], {"dealers": {"headrom_weight": 0.3}},
     "key 'dealers.headrom_weight': unknown key; did you mean 'headroom_weight'?"),
    (["tune", "churn"], {"tuning": {"trails": 5}}, "key 'tuning.trails': unknown key; did you mean 'trials'?"),
])
def test_cli_names_the_misspelt_key(tmp_path, monkeypatch, cmd, section, want):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    days = pd.date_range("2023-01-01", periods=60, freq="D")
    pd.DataFrame({"order_id": [f"O{i}" for i in range(60)], "order_date": days, "account_id": "A0", "sku": "S1",
                  "quantity": 1.0, "unit_price": 10.0}).to_csv(tmp_path / "ol.csv", index=False)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"order_lines": {"path": "ol.csv"}}, **section}))
    res = CliRunner().invoke(app, [*cmd, "--config", str(cfg), "--json", str(tmp_path / "out.json")])
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert want in res.output and str(cfg) in res.output and "Traceback" not in res.output


def test_every_bad_key_of_a_section_in_one_error(tmp_path):
    # demand / dealers / promotion list every mistake, unknown keys and bad values alike, each
    # under its full key path and without pydantic's "Value error, " prefix (QA: users with
    # several mistakes had to fix and rerun once per key)
    msg = _error(demand_settings, _cfg(demand={"horizon": 0, "windws": 2, "freq": "W", "levls": ["sku"]}))
    assert msg.splitlines()[0] == "t: invalid 'demand' section"  # the config's name when built in code
    assert "key 'demand.horizon': Input should be greater than or equal to 1; got 0" in msg
    assert "key 'demand.windws': unknown key; did you mean 'windows'?" in msg
    assert "key 'demand.levls': unknown key; did you mean 'levels'?" in msg
    assert len(msg.splitlines()) == 4

    msg = _error(load_settings, {"headrom_weight": 0.3, "min_peers": 0, "programme": {"A": "platinum"},
                                 "lifecycle": {"growth": 0.1}})
    lines = msg.splitlines()
    assert lines[0] == "invalid 'dealers' section" and len(lines) == 5, msg
    assert "  key 'dealers.headrom_weight': unknown key; did you mean 'headroom_weight'?" in lines
    assert "key 'dealers.min_peers': Input should be greater than or equal to 1; got 0" in msg
    assert "key 'dealers.programme': programme levels must be gold, silver or bronze; got {'A': 'platinum'}" in msg
    assert "key 'dealers.lifecycle.growth': unknown key; did you mean 'growth_pct'?" in msg
    assert "Value error" not in msg

    # promotion: every problem, not the first; the data: section's problems in the same error
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"order_lines": {"path": "ol.csv", "encodng": "utf-8"}},
                                   "promotion": {"chrun": {"metric": "auc"},
                                                 "demand": {"metric": "mape", "margin": -1}}}))
    msg = _error(load_config, cfg)
    assert msg.startswith(f"{cfg}: invalid experiment config\n")
    assert "key 'data.order_lines.encodng': unknown key; did you mean 'encoding'?" in msg
    assert "key 'promotion': 3 problems:" in msg
    assert "    unknown capability 'chrun' under promotion; did you mean 'churn'?" in msg
    assert "    promotion.demand.metric: unknown metric 'mape'; demand promotion can compare mase," in msg
    assert "    promotion.demand.margin must be a number >= 0; got -1" in msg


def test_a_list_or_mapping_for_one_value_is_shown_and_no_class_is_named(tmp_path):
    """A YAML list or mapping where one value was expected was not shown ("key 'data.as_of': Input should
    be a valid datetime", nothing after it), a path as "Input is not a valid path for <class
    'pathlib.Path'>", and a section given a scalar as "a valid dictionary or instance of TableSource",
    a class the user never wrote."""
    (tmp_path / "ol.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-01,a,s,1,1\n")

    def said(body: str) -> list[str]:
        p = tmp_path / "c.yaml"
        p.write_text(f"name: t\n{body}")
        with pytest.raises(ConfigError) as exc:
            load_config(p)
        return str(exc.value).splitlines()[1:]

    assert said("data:\n  order_lines: {path: [ol.csv]}\n  as_of: [2024]\n") == [
        "  key 'data.order_lines.path': Input should be a file path (text); got ['ol.csv']",
        "  key 'data.as_of': Input should be a valid datetime; got [2024]"]
    assert said("data:\n  order_lines: ol.csv\n") == [
        "  key 'data.order_lines': Input should be a valid dictionary (key: value pairs); got 'ol.csv'"]
    assert said("data:\n  order_lines: {path: ol.csv}\ndemand: []\n") == [
        "  key 'demand': Input should be a valid dictionary; got []"]
    msg = _error(demand_settings, _cfg(demand={"lgbm": 5, "levels": {"a": 1}}))
    assert msg.splitlines()[1:] == ["  key 'demand.levels': Input should be a valid list; got {'a': 1}",
                                    "  key 'demand.lgbm': Input should be a valid dictionary (key: value pairs); got 5"]
    # a long value is not dumped into the message
    msg = _error(load_settings, {"tier_thresholds": list(range(100))})
    assert msg.splitlines()[1:] == ["  key 'dealers.tier_thresholds': Input should be a valid dictionary"]


def test_an_unknown_key_holding_a_date_is_reported_as_the_key_not_its_value(tmp_path):
    """An unknown key whose value YAML read as a date ended '; got 2024-07-01', after the 'did you mean'
    hint, as if the date were what was wrong; other unknown keys name the key, the file and the
    suggestion only. A date where another value was expected still shows it (seed: 2024-07-01)."""
    p = tmp_path / "c.yaml"

    def said(body: str, fn=load_config) -> str:
        p.write_text(f"name: t\n{body}")
        with pytest.raises(ConfigError) as exc:
            fn(p)
        return str(exc.value)

    assert said("start_dat: 2024-07-01\ndata: {as_off: 2024-07-01 10:00:00, order_lines: {path: ol.csv}}\n") == (
        f"{p}: invalid experiment config\n"
        "  key 'data.as_off': unknown key; did you mean 'as_of'?\n"
        "  key 'start_dat': unknown key; known keys: name, seed, data, demand, churn, dealers, tuning, promotion, "
        "serving")
    assert said("data: {order_lines: {path: ol.csv}}\nchurn: {horizn_days: 2024-07-01}\n",
                lambda f: churn_settings(load_config(f))) == (
        f"{p}: invalid 'churn' section\n"
        "  key 'churn.horizn_days': unknown key; did you mean 'horizon_days' or 'train_horizon_days'?")
    assert said("seed: 2024-07-01\ndata: {order_lines: {path: ol.csv}}\n").endswith("; got 2024-07-01")
