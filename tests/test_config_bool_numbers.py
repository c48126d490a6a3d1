"""YAML reads yes / no / on / off / true / false as booleans; a settings key that takes a number refused
them: ``demand.horizon: yes`` was taken as a horizon of 1 period, without a word."""

from __future__ import annotations

import pytest

from training.config import load_config
from training.errors import ConfigError


def _cfg(tmp_path, body: str):
    (tmp_path / "o.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-01,a,s,1,1\n")
    p = tmp_path / "c.yaml"
    p.write_text(f"name: t\ndata:\n  order_lines: {{path: {tmp_path / 'o.csv'}}}\n{body}")
    return load_config(p)


@pytest.mark.parametrize(("body", "read", "key"), [
    ("demand: {horizon: yes}\n", "training.demand_config:demand_settings", "demand.horizon"),
    ("demand: {lgbm: {n_estimators: on}}\n", "training.demand_config:demand_settings", "demand.lgbm.n_estimators"),
    ("demand: {service_level: true}\n", "training.demand_config:demand_settings", "demand.service_level"),
    ("churn: {horizon_days: yes}\n", "training.churn_backtest:churn_settings", "churn.horizon_days"),
    ("dealers: {horizon_days: true}\n", "dealers", "dealers.horizon_days"),
    ("tuning: {trials: yes}\n", "training.tuning_config:tuning_settings", "tuning.trials"),
    ("serving: {body_timeout_seconds: yes}\n", "serving.settings:serving_settings", "serving.body_timeout_seconds"),
])
def test_a_boolean_for_a_number_is_refused_naming_the_key(tmp_path, body, read, key):
    import importlib

    cfg = _cfg(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        if read == "dealers":
            from training.dealers_backtest import load_settings

            load_settings(cfg.dealers)
        else:
            mod, fn = read.split(":")
            getattr(importlib.import_module(mod), fn)(cfg)
    assert f"key '{key}': expected a number, not true / false (YAML reads yes, no, on and off as true / false)" in str(
        err.value), str(err.value)


def test_switches_still_take_booleans_and_numbers_still_numbers(tmp_path):
    from training.demand_config import demand_settings

    s = demand_settings(_cfg(tmp_path, "demand: {horizon: 5, hierarchy: true, service_level: 0.9}\n"))
    assert (s.horizon, s.hierarchy, s.service_level) == (5, True, 0.9)


def test_an_unquoted_yaml_date_for_a_text_key_is_the_date_written(tmp_path):
    """``demand.cutoff: 2024-10-01`` (unquoted, as data.as_of and serving.churn_cutoff are written) is a
    date to YAML, and the text keys refused it: "Input should be a valid string; got
    datetime.date(2024, 10, 1)". It is now the text written; a date-time keeps its time."""
    from training.dealers_backtest import load_settings
    from training.demand_config import demand_settings

    cfg = _cfg(tmp_path, "demand: {cutoff: 2024-10-01}\ndealers: {cutoff: 2024-10-01}\n")
    assert demand_settings(cfg).cutoff == "2024-10-01"
    assert load_settings(cfg.dealers).cutoff == "2024-10-01"
    cfg = _cfg(tmp_path, "demand: {cutoff: '2024-10-01'}\ndealers: {cutoff: 2024-10-01 08:30:00}\n")
    assert demand_settings(cfg).cutoff == "2024-10-01"
    assert load_settings(cfg.dealers).cutoff == "2024-10-01 08:30:00"
    # a date for a key that is no text is still refused under its key
    with pytest.raises(ConfigError, match=r"key 'demand.horizon': Input should be a valid integer"):
        demand_settings(_cfg(tmp_path, "demand: {horizon: 2024-10-01}\n"))


def test_the_seed_and_the_cancellation_window_refuse_booleans_too(tmp_path):
    """seed: yes was the seed 1 and data.order_lines.cancellation_window_days: yes a window of 1 day, without a
    word (the top-level keys and the table sources did not share the sections' check); and a YAML date in a
    message was written datetime.date(2024, 10, 1)."""
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, "seed: yes\n")
    assert str(err.value).splitlines()[1:] == [
        "  key 'seed': expected a number, not true / false (YAML reads yes, no, on and off as true / false); got True"]
    p = tmp_path / "w.yaml"
    p.write_text(f"name: t\ndata:\n  order_lines: {{path: {tmp_path / 'o.csv'}, cancellation_window_days: on}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(err.value).splitlines()[1:] == [
        "  key 'data.order_lines.cancellation_window_days': expected a number, not true / false (YAML reads yes, no, "
        "on and off as true / false); got True"]
    from training.demand_config import demand_settings

    with pytest.raises(ConfigError) as err:
        demand_settings(_cfg(tmp_path, "demand: {horizon: 2024-10-01}\n"))
    assert str(err.value).splitlines()[1:] == ["  key 'demand.horizon': Input should be a valid integer; got 2024-10-01"]
    assert _cfg(tmp_path, "seed: 7\n").seed == 7
