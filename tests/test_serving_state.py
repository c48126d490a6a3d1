"""Readiness state machine and start-up loader failures, in process (fast)."""

from __future__ import annotations

import logging

import pytest

from serving.loader import _describe_info, load_all, new_state, served_models
from serving.settings import serving_settings
from serving.state import (
    FAILED,
    LOADING,
    PENDING,
    READY,
    ModelSlot,
    NotReady,
    NotServed,
    ServingState,
)
from training.errors import ConfigError


def test_state_transitions_and_readiness():
    st = ServingState([ModelSlot("demand", "dealerml-demand"), ModelSlot("churn", "dealerml-churn")], "cfg.yaml")
    assert not st.ready and st.slots["churn"].state == PENDING
    with pytest.raises(NotReady, match="dealerml-churn is pending"):
        st.backend("churn")
    st.start("churn")
    assert st.slots["churn"].state == LOADING
    st.succeed("churn", backend="B")
    assert st.backend("churn") == "B" and not st.ready
    st.start("demand")
    st.slots["demand"].version = "7"
    st.fail("demand", "OSError: bad file")
    assert st.slots["demand"].state == FAILED and not st.ready
    with pytest.raises(NotReady, match=r"dealerml-demand \(version 7\) failed to load: OSError: bad file"):
        st.backend("demand")
    st.succeed("demand", backend="D")
    assert st.ready and st.slots["demand"].state == READY
    d = st.slots["demand"].describe()
    assert d["status"] == "ready" and d["error"] is None and d["loaded_at"]


def test_a_model_the_deployment_does_not_load_is_a_404_naming_what_it_serves():
    """`dealerml serve --models churn,dealers`: /forecast answered 500 (a KeyError on the missing slot)."""
    import json

    from serving.service import _answer

    st = ServingState([ModelSlot("churn", "dealerml-churn"), ModelSlot("dealers", "dealerml-dealers")], "cfg.yaml")
    with pytest.raises(NotServed, match=r"does not serve the demand model; it loads churn, dealers \(serving.models"):
        st.backend("demand")
    resp = _answer(lambda: st.backend("demand").forecast(None))
    assert resp.status_code == 404
    assert "does not serve the demand model" in json.loads(resp.body)["error"]


def test_served_models_env_config_and_errors():
    assert served_models({}) == ["demand", "churn", "dealers"]
    assert served_models({}, ["churn"]) == ["churn"]
    assert served_models({"DEALERML_SERVE_MODELS": "churn, demand"}, ["dealers"]) == ["churn", "demand"]
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['forecasts'\]"):
        served_models({"DEALERML_SERVE_MODELS": "forecasts"})


def test_serving_settings_validation():
    class Cfg:
        serving = {"models": ["churn"], "churn_cutoff": "2024-07-01"}
        config_path = "x.yaml"

    s = serving_settings(Cfg)
    assert s.models == ["churn"] and str(s.churn_cutoff) == "2024-07-01"
    Cfg.serving = {"models": ["stock"]}
    with pytest.raises(ConfigError, match=r"x.yaml: invalid 'serving' section\n  key 'serving.models.0'"):
        serving_settings(Cfg)


def test_describe_info_flattens_metrics_and_keeps_version():
    info = {"version": 3, "run_id": "r", "training_window": {"start": "2022-01-03", "end": None},
            "backtest_metrics": {"lightgbm": {"auc": 0.81, "note": "x"}, "base_rate": 0.2, "bad": float("nan")}}
    d = _describe_info(info)
    assert d["version"] == "3" and d["run_id"] == "r"
    assert d["backtest_metrics"] == {"lightgbm.auc": 0.81, "base_rate": 0.2}
    assert d["training_window"] == {"start": "2022-01-03", "end": None}
    # a list (the churn model's training cutoffs) stays a list, a timestamp becomes text
    import pandas as pd

    d = _describe_info({**info, "training_window": {"train_cutoffs": ["2024-05-06", "2024-06-05"], "horizon_days": 90,
                                                    "end": pd.Timestamp("2024-12-31")}})
    assert d["training_window"] == {"train_cutoffs": ["2024-05-06", "2024-06-05"], "horizon_days": 90,
                                    "end": "2024-12-31 00:00:00"}


def test_unreadable_order_book_fails_every_slot_with_the_reason(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setenv("DEALERML_CONFIG", str(tmp_path / "missing.yaml"))
    st = new_state({})
    with caplog.at_level(logging.ERROR, logger="dealerml.serving.loader"):
        load_all(st, str(tmp_path / "missing.yaml"))
    assert not st.ready
    assert all(s.state == FAILED and "missing.yaml" in s.error for s in st.slots.values())
    assert "service stays UNREADY" in caplog.text and "missing.yaml" in caplog.text


def test_missing_champion_names_the_model(tmp_path, monkeypatch, caplog, synthetic_config):
    """A real (empty) MLflow store under tmp: no champion -> that slot fails, named, others untouched."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    with caplog.at_level(logging.ERROR, logger="dealerml.serving.loader"):
        load_all(st, str(synthetic_config))
    slot = st.slots["churn"]
    assert slot.state == FAILED and "no model version of 'dealerml-churn' has alias 'champion'" in slot.error
    assert "model dealerml-churn version ? (alias champion) could not be loaded; service stays UNREADY" in caplog.text


def test_churn_champion_is_loaded_once_and_shared_with_the_dealer_ranking(monkeypatch):
    """Start-up reads each champion from the registry once: the dealer ranking reuses the churn
    slot's champion instead of loading dealerml-churn a second time."""
    import serving.loader as loader
    from training import tracking

    calls: list[str] = []

    class Info:
        def __init__(self, name):
            self.version, self.run_id, self.alias, self.training_window = "4", f"run-{name}", "champion", {}

    def fake_load_model(name, alias="champion", **kw):
        calls.append(name)
        return {"model": name}, Info(name)

    monkeypatch.setattr(tracking, "load_model", fake_load_model)
    monkeypatch.setattr(tracking, "model_info", lambda name, alias="champion": Info(name))
    monkeypatch.setattr(tracking, "get_alias_version", lambda name, alias: "4")
    monkeypatch.setattr(loader, "_load_book", lambda cfg_file: ("cfg", type("Book", (), {"order_lines": []})()))
    seen = {}

    def fake_builder(key):
        def build(estimator, slot, book, cfg, **kw):
            if key == "dealers":
                seen["churn_for_dealers"] = kw["churn_champion"]
            return f"backend-{key}"
        return build

    monkeypatch.setattr(loader, "_builder", fake_builder)
    # dealers listed before churn: the loader still loads churn first and hands it over
    st = ServingState([ModelSlot("dealers", "dealerml-dealers"), ModelSlot("churn", "dealerml-churn")], "cfg.yaml")
    load_all(st, "cfg.yaml")
    assert st.ready
    assert sorted(calls) == ["dealerml-churn", "dealerml-dealers"]  # each exactly once
    model, version = seen["churn_for_dealers"]
    assert model == {"model": "dealerml-churn"} and version == "dealerml-churn/4"
    # churn not served: the dealer ranking reads the churn champion itself, once
    calls.clear()
    st = ServingState([ModelSlot("dealers", "dealerml-dealers")], "cfg.yaml")
    load_all(st, "cfg.yaml")
    assert st.ready and sorted(calls) == ["dealerml-churn", "dealerml-dealers"]
    assert seen["churn_for_dealers"][1] == "dealerml-churn/4"
    # no churn champion registered: BG/NBD fallback (None, None), nothing loaded for it
    calls.clear()
    monkeypatch.setattr(tracking, "get_alias_version", lambda name, alias: None)
    load_all(ServingState([ModelSlot("dealers", "dealerml-dealers")], "cfg.yaml"), "cfg.yaml")
    assert calls == ["dealerml-dealers"] and seen["churn_for_dealers"] == (None, None)
