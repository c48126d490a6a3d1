"""Readiness state machine and start-up loader failures, in process (fast)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import Any

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


def test_a_loading_model_answers_503_with_retry_after_and_a_failed_one_without():
    """A client meeting a model still loading got a 503 with no Retry-After (only /churn_alerts sent
    one), so it could not tell "retry soon" from "broken": a pending or loading model now says when
    to ask again, a model that failed to load does not (asking again will not help by itself)."""
    import json

    from serving.service import _answer
    from serving.state import LOADING_RETRY_AFTER_S

    st = ServingState([ModelSlot("churn", "dealerml-churn"), ModelSlot("demand", "dealerml-demand")], "cfg.yaml")
    st.start("churn")
    loading = _answer(lambda: st.backend("churn").scores(None))
    assert loading.status_code == 503 and loading.headers["Retry-After"] == str(LOADING_RETRY_AFTER_S)
    assert "dealerml-churn is loading" in json.loads(loading.body)["error"]
    st.start("demand")
    st.fail("demand", "OSError: bad file")
    failed = _answer(lambda: st.backend("demand").forecast(None))
    assert failed.status_code == 503 and "Retry-After" not in failed.headers
    assert "failed to load: OSError: bad file" in json.loads(failed.body)["error"]


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
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DEALERML_CONFIG", str(tmp_path / "missing.yaml"))
    _empty_store()
    st = new_state({})
    with caplog.at_level(logging.ERROR, logger="dealerml.serving.loader"):
        load_all(st, str(tmp_path / "missing.yaml"))
    assert not st.ready
    assert all(s.state == FAILED and "missing.yaml" in s.error for s in st.slots.values())
    assert "service stays UNREADY" in caplog.text and "missing.yaml" in caplog.text


def test_a_bad_serving_section_is_named_as_the_config_not_the_order_book(tmp_path, monkeypatch, caplog,
                                                                          synthetic_config):
    """A config whose serving: section is refused was reported as 'cannot read the order book of config ...',
    sending the operator to a book that was fine; a book that cannot be read keeps those words."""
    import yaml

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _empty_store()
    cfg = yaml.safe_load(synthetic_config.read_text())
    for t in cfg["data"].values():
        if isinstance(t, dict) and "path" in t:
            t["path"] = str((synthetic_config.parent / t["path"]).resolve())
    bad_section = tmp_path / "bad_serving.yaml"
    bad_section.write_text(yaml.safe_dump({**cfg, "serving": {"max_body_bytes": "many"}}))
    bad_book = tmp_path / "bad_book.yaml"
    bad_book.write_text(yaml.safe_dump({**cfg, "data": {**cfg["data"], "order_lines": {"path": str(tmp_path / "gone.csv")}}}))
    for path, words in ((bad_section, f"cannot use config {bad_section}: ConfigError: "),
                        (bad_book, f"cannot read the order book of config {bad_book}: ")):
        st = new_state({"DEALERML_SERVE_MODELS": "churn"})
        load_all(st, str(path))
        assert st.slots["churn"].state == FAILED and st.slots["churn"].error.startswith(words), st.slots["churn"].error


def test_missing_champion_names_the_model(tmp_path, monkeypatch, caplog, synthetic_config):
    """A real (empty) MLflow store under tmp: no champion -> that slot fails, named, others untouched."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _empty_store()
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    with caplog.at_level(logging.ERROR, logger="dealerml.serving.loader"):
        load_all(st, str(synthetic_config))
    slot = st.slots["churn"]
    assert slot.state == FAILED and "no model version of 'dealerml-churn' has alias 'champion'" in slot.error
    assert "dealerml train churn" in slot.error and "--models" in slot.error
    assert "model dealerml-churn version ? (alias champion) could not be loaded; service stays UNREADY" in caplog.text


def _empty_store() -> None:
    """Create the (empty) MLflow store of $DEALERML_HOME, as any dealerml train does first."""
    from training import tracking

    assert tracking.get_alias_version("dealerml-churn", "champion") is None
    assert tracking.local_store_missing() is None


def test_a_home_without_an_mlflow_store_is_named_and_no_store_is_created(tmp_path, monkeypatch, caplog,
                                                                          synthetic_config):
    """A typo in DEALERML_HOME: the service created an empty mlflow.db there and then said 'no model version
    has alias champion' for each model (after reading the order book), as if nothing had been trained."""
    home = tmp_path / "hmoe"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    st = new_state({})
    with caplog.at_level(logging.ERROR, logger="dealerml.serving.loader"):
        load_all(st, str(synthetic_config))
    assert not home.exists()  # nothing created
    for slot in st.slots.values():
        assert slot.state == FAILED
        assert slot.error.startswith(f"there is no MLflow store at {home / 'mlflow.db'} (DEALERML_HOME={home}); "
                                     "set DEALERML_HOME to the folder the models were trained in"), slot.error
    assert "order book" not in caplog.text and caplog.text.count("service stays UNREADY") == 1


def test_a_tracking_server_that_is_down_is_named_in_seconds(tmp_path, monkeypatch, caplog, synthetic_config):
    """MLFLOW_TRACKING_URI naming a server that does not answer: MLflow's client retried each call for
    about 4 minutes (7 retries, backoff 2), two calls per model, so the log named the cause after ~25 min."""
    from serving.devserver import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)  # the service's own defaults
    st = new_state({})
    t0 = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="dealerml.serving.loader"):
        load_all(st, str(synthetic_config))
    took = time.monotonic() - t0
    assert took < 20, took
    for slot in st.slots.values():
        assert slot.state == FAILED and slot.error.startswith(f"cannot read the MLflow registry at {uri}: "), slot.error
        assert slot.error.endswith(f"(MLFLOW_TRACKING_URI={uri}); fix it and start the service again")
    assert caplog.text.count("service stays UNREADY") == 1


def _registry_with_two_versions(name: str) -> Any:
    """A real store with versions 1 and 2 of ``name`` (the registry entries only), champion -> 1."""
    from training import tracking

    client = tracking._configure()
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source="file:///nonexistent/model")
    client.set_registered_model_alias(name, "champion", "1")
    return client


def test_a_champion_moved_after_start_up_is_reported_stale_with_the_fix(tmp_path, monkeypatch, caplog):
    """After promote / rollback the running service went on serving the version it loaded while
    /model_info still called it the champion, and nothing said a restart was needed."""
    from serving.loader import check_champions

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = _registry_with_two_versions("dealerml-churn")
    st = ServingState([ModelSlot("churn", "dealerml-churn")], "cfg.yaml")
    st.succeed("churn", backend="B")
    st.slots["churn"].version = "1"
    with caplog.at_level(logging.WARNING, logger="dealerml.serving.loader"):
        check_champions(st)
        d = st.slots["churn"].describe()
        assert d["registry_champion"] == "1" and d["registry_checked_at"] and d["stale"] is False
        assert d["stale_reason"] is None and not _loader_lines(caplog)
        client.set_registered_model_alias("dealerml-churn", "champion", "2")  # what promote does
        check_champions(st)
        check_champions(st)  # logged once per move, not once per check
    d = st.slots["churn"].describe()
    assert d["stale"] is True and d["registry_champion"] == "2" and d["version"] == "1"
    assert d["stale_reason"] == ("the champion of dealerml-churn is now version 2; this service still serves "
                                 "version 1, loaded at start-up (models are read once): restart the service to "
                                 "serve version 2")
    assert [m for m in _loader_lines(caplog) if "the champion of dealerml-churn is now version 2" in m] == [d["stale_reason"]]
    client.delete_registered_model_alias("dealerml-churn", "champion")
    check_champions(st)
    assert "is now no version (the alias was removed)" in st.slots["churn"].describe()["stale_reason"]
    client.set_registered_model_alias("dealerml-churn", "champion", "1")  # rolled back: fresh again
    check_champions(st)
    assert st.slots["churn"].describe()["stale"] is False


def _loader_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dealerml.serving.loader"]


def test_champion_check_interval_setting():
    from serving.loader import champion_check_seconds

    assert champion_check_seconds({}) == 60 and champion_check_seconds({"DEALERML_SERVE_CHAMPION_CHECK_SECONDS": "0"}) == 0
    assert champion_check_seconds({"DEALERML_SERVE_CHAMPION_CHECK_SECONDS": "5"}) == 5
    for bad in ("-1", "0.5", "soon", "nan", "1e9"):
        with pytest.raises(ConfigError, match=r"\$DEALERML_SERVE_CHAMPION_CHECK_SECONDS must be 0 \(never\) or"):
            champion_check_seconds({"DEALERML_SERVE_CHAMPION_CHECK_SECONDS": bad})


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
    monkeypatch.setattr(loader, "registry_champions", lambda names: {n: "4" for n in names})
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


def test_a_store_moved_from_where_it_was_trained_names_the_path_to_mount(tmp_path, monkeypatch, synthetic_config):
    """A home copied or mounted elsewhere (a container volume): the registry is found, the files (recorded
    with absolute paths) are not, and MLflow said only 'Could not find an "MLmodel" configuration file at
    /tmp/dealerml-dealerml-churn-v1-.../MLmodel'."""
    from training import tracking

    trained = tmp_path / "trained-home"  # where the version's files were written; gone here
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "mounted"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = tracking._configure()
    client.create_registered_model("dealerml-churn")
    files = trained / "mlruns" / "dealerml-churn" / "models" / "m-0123" / "artifacts"
    client.create_model_version("dealerml-churn", source=files.as_uri())
    client.set_registered_model_alias("dealerml-churn", "champion", "1")
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    load_all(st, str(synthetic_config))
    error = st.slots["churn"].error
    assert st.slots["churn"].state == FAILED and st.slots["churn"].version == "1"
    assert error.startswith(f"ConfigError: model dealerml-churn version 1: its files are recorded at {files}, which "
                            "does not exist here."), error
    assert f"(DEALERML_HOME={tmp_path / 'mounted'}) finds the registry but not the files: mount it at {trained}," in error
    # what to do: every version fails alike, so not 'promote or roll back to another version'
    hint = st.slots["churn"].hint
    assert hint.startswith("not a fault of this model version: the MLflow store's files are recorded under another "
                           "path") and "promote or roll back" not in hint, hint
    # one version's files deleted from a store that is where it was trained: another version may load
    (trained / "mlruns").mkdir(parents=True)
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    load_all(st, str(synthetic_config))
    assert st.slots["churn"].hint.startswith("not retried while version 1 is the champion, as its files would fail "
                                             "alike: promote or roll back"), st.slots["churn"].hint


def test_a_start_up_stopped_by_the_registry_is_retried_until_it_can_be_read(tmp_path, monkeypatch, synthetic_config,
                                                                            caplog):
    """A store not mounted yet (or a tracking server down for a minute) at start-up left the service unready
    for good while /livez kept an orchestrator from restarting it."""
    import threading

    from serving.devserver import REPO_ROOT
    from serving.loader import watch_champions
    from training import tracking

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    with caplog.at_level(logging.INFO, logger="dealerml.serving.loader"):
        load_all(st, str(synthetic_config))
        assert st.registry_failed and st.slots["churn"].error.startswith("there is no MLflow store at")
        stop = threading.Event()
        watcher = threading.Thread(target=watch_champions, args=(st, 0.2, None, stop, str(synthetic_config)))
        watcher.start()
        try:
            time.sleep(0.5)
            assert st.slots["churn"].error.startswith("there is no MLflow store at")  # retried, still missing
            # the store arrives whole (made elsewhere, then moved in), with a champion whose files do not
            staging = tmp_path / "staging"
            code = ("from tests.test_serving_state import _registry_with_two_versions\n"
                    "_registry_with_two_versions('dealerml-churn')\n")
            env = {**os.environ, "DEALERML_HOME": str(staging)}
            subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO_ROOT), check=True, capture_output=True)
            os.replace(staging / "mlflow.db", tmp_path / "mlflow.db")
            deadline = time.monotonic() + 30
            while st.registry_failed and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            watcher.join(timeout=30)
    slot = st.slots["churn"]
    assert not st.registry_failed and slot.state == FAILED and slot.registry_champion == "1"
    assert slot.error.startswith("ConfigError: model dealerml-churn version 1: its files are recorded at"), slot.error
    lines = _loader_lines(caplog)
    assert "start-up retried: the registry can be read now" in lines
    assert sum("there is no MLflow store" in m for m in lines) == 1  # the retries that failed alike: not again
    assert tracking.local_store_missing() is None


def test_promote_with_the_tracking_server_down_names_it(tmp_path, monkeypatch, synthetic_config):
    """get_alias_version read 'server unreachable' as 'no such alias': promote said 'no challenger; run
    dealerml train first', and one failed call for the champion made a challenger 'the first version'."""
    from typer.testing import CliRunner

    from serving.devserver import free_port
    from training import tracking
    from training.cli import app

    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(ConfigError, match=f"cannot read the MLflow registry at {uri}: "):
        tracking.get_alias_version("dealerml-churn", "champion")
    r = CliRunner().invoke(app, ["promote", "churn", "--config", str(synthetic_config)])
    assert r.exit_code == 2 and f"cannot read the MLflow registry at {uri}" in r.output, r.output
    assert "no 'challenger' version" not in r.output


def test_a_postgresql_store_that_never_answers_fails_the_start_up_in_seconds(monkeypatch, synthetic_config, caplog):
    """MLFLOW_TRACKING_URI=postgresql://... on a server (or proxy) that takes the connection and never
    answers: libpq waited for ever, so the loader hung (unready, 'pending', no log line, the champion
    check and start-up retry waiting behind it) and dealerml serve with it. connect_timeout ends it."""
    import socket
    import threading

    from training import scores

    monkeypatch.setattr(scores, "CONNECT_TIMEOUT_S", 1)
    monkeypatch.setattr("mlflow.store.db.utils.MAX_RETRY_COUNT", 1)  # MLflow's own back-off: 10 tries, same end
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever answers
    port = silent.getsockname()[1]
    secret = "Sup3r-S3cret-pw"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"postgresql+psycopg://mlflow:{secret}@127.0.0.1:{port}/test")
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO, logger="dealerml.serving.loader"):
        th = threading.Thread(target=load_all, args=(st, str(synthetic_config)), daemon=True)
        th.start()
        th.join(20)
    silent.close()
    assert not th.is_alive(), "the loader was still connecting after 20 s"
    assert time.monotonic() - t0 < 15
    slot = st.slots["churn"]
    assert slot.state == FAILED and st.registry_failed
    assert slot.error.startswith(f"cannot read the MLflow registry at postgresql+psycopg://mlflow:***@127.0.0.1:{port}/test:"
                                 " OperationalError: (psycopg.errors.ConnectionTimeout)"), slot.error
    assert secret not in caplog.text and "service stays UNREADY: cannot read the MLflow registry" in caplog.text


def test_a_dealer_ranking_failed_by_a_corrupt_churn_champion_is_loaded_again_after_its_rollback(monkeypatch):
    """The dealer ranking loads the churn champion: with churn's version 2 corrupt, both slots fail (dealers
    with churn's error, at its own unchanged version 1). Rolling churn back to 1 reloaded churn only; dealers
    stayed unready until a restart (its own champion never moved) while /readyz told the operator to roll
    dealers back. A retry of churn now retries a failed dealer ranking with it."""
    import serving.loader as loader
    from training import tracking

    aliases = {"dealerml-churn": "2", "dealerml-dealers": "1"}

    class Info:
        def __init__(self, name):
            self.version, self.run_id, self.alias, self.training_window = aliases[name], f"run-{name}", "champion", {}

    def fake_load_model(name, alias="champion", **kw):
        if name == "dealerml-churn" and aliases[name] == "2":
            raise RuntimeError("LightGBMError: not a LightGBM model (version 2's booster.txt)")
        return {"model": name}, Info(name)

    monkeypatch.setattr(tracking, "load_model", fake_load_model)
    monkeypatch.setattr(tracking, "model_info", lambda name, alias="champion": Info(name))
    monkeypatch.setattr(tracking, "get_alias_version", lambda name, alias: aliases[name])
    monkeypatch.setattr(loader, "_load_book", lambda cfg_file: ("cfg", type("Book", (), {"order_lines": []})()))
    monkeypatch.setattr(loader, "_builder", lambda key: lambda estimator, slot, book, cfg, **kw: f"backend-{key}")
    monkeypatch.setattr(loader, "registry_champions", lambda names: {n: aliases[n] for n in names})
    st = ServingState([ModelSlot("churn", "dealerml-churn"), ModelSlot("dealers", "dealerml-dealers")], "cfg.yaml")
    load_all(st, "cfg.yaml")
    churn, dealers = st.slots["churn"], st.slots["dealers"]
    assert churn.state == dealers.state == FAILED and "version 2's booster.txt" in dealers.error
    assert (churn.failed_champion, dealers.failed_champion) == ("2", "1")
    aliases["dealerml-churn"] = "1"  # dealerml rollback churn
    loader.check_champions(st)
    assert loader.retry_moved_champions(st, "cfg.yaml") == ["churn", "dealers"]
    assert st.ready and churn.version == "1" and dealers.version == "1"
    assert loader.retry_moved_champions(st, "cfg.yaml") == []
