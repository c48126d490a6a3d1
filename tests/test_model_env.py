"""A model trained with other package versions than the ones that load it is said so, not refused.

Every logged model records the exact versions it was trained with (its ``requirements.txt``), but the
service and the CLI unpickled its LightGBM boosters, scikit-learn calibrators and statsforecast models
with whatever was installed, and nothing told the operator when those differed. Now the service logs one
warning per model and shows ``environment`` in ``/model_info``; ``dealerml forecast --alias``, ``score
churn``, ``score dealers`` and ``safety-stock --alias`` print one ``note:`` on stderr.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import pytest
from _support_tuning import TinyModel, TinyTarget, make_data

from training.model_env import (
    environment_check,
    mismatch_note,
    model_mismatch_note,
    read_requirements,
)

LGBM = importlib.metadata.version("lightgbm")
OLD = "4.6.0" if LGBM != "4.6.0" else "4.5.0"  # a version this environment does not run


def _recorded_file(name: str, version: str) -> Path:
    """The requirements.txt of ``name`` version ``version`` in the local store (what load_model downloads)."""
    from urllib.parse import unquote, urlparse

    from training import tracking

    uri = tracking._configure().get_model_version_download_uri(name, version)
    path = Path(unquote(urlparse(str(uri)).path)) / "requirements.txt"
    assert path.is_file(), path
    return path


def _edit_lightgbm(req: Path, to: str) -> str:
    """Write ``lightgbm==<to>`` into the recorded requirements; returns the original text."""
    before = req.read_text()
    lines = [f"lightgbm=={to}" if line.startswith("lightgbm==") else line for line in before.splitlines()]
    assert f"lightgbm=={to}" in lines
    req.write_text("\n".join(lines) + "\n")
    return before


# ----------------------------------------------------------------- the comparison
def test_environment_check_names_each_package_with_both_versions():
    running = {"lightgbm": "4.7.0", "scikit-learn": "1.9.1", "pandas": "2.3.3"}.get
    same = environment_check({"lightgbm": "4.7.0", "scikit-learn": "1.9.1"}, running)
    assert same == {"matches": True, "mismatches": {}}
    diff = environment_check({"lightgbm": "4.6.0", "scikit-learn": "1.9.1", "statsforecast": "2.1.1",
                              "pandas": "2.3.3.0"}, running)  # 2.3.3.0 == 2.3.3 as versions
    assert diff == {"matches": False, "mismatches": {"lightgbm": {"trained": "4.6.0", "running": "4.7.0"},
                                                     "statsforecast": {"trained": "2.1.1", "running": None}}}
    assert mismatch_note("dealerml-churn", "3", diff) == (
        "model dealerml-churn version 3 was trained with lightgbm 4.6.0 (running 4.7.0), statsforecast 2.1.1 (not "
        "installed): its pickled models are read by other versions than they were trained with, which can warn, "
        "give other numbers or fail; install the versions it was trained with (constraints.txt: make install; the "
        "service's bento pins them in bentofile.yaml) or retrain it in this environment")
    assert mismatch_note("dealerml-churn", "3", same) is None
    # a model that records no versions (logged by other code): nothing can be said, nothing is claimed
    assert environment_check({}, running) == {"matches": None, "mismatches": {}}
    assert mismatch_note("x", "1", environment_check({})) is None


def test_recorded_requirements_are_read_by_name(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nmlflow==3.17.2\nPyYAML==6.0.4\nscikit_learn==1.9.1\npsycopg[binary]==3.3.9\n"
                   "numpy>=1.26\n-c other.txt\n")
    assert read_requirements(req) == {"mlflow": "3.17.2", "pyyaml": "6.0.4", "scikit-learn": "1.9.1",
                                      "psycopg": "3.3.9"}
    assert read_requirements(tmp_path / "missing.txt") == {}


def test_a_model_logged_by_the_tracking_code_records_and_compares_its_versions(home, caplog):
    """What tracking.log_model records is what load_model reads back: the running versions (equal), and
    after its requirements are edited, lightgbm named with both versions by the service's loader."""
    from serving.loader import resolve_champion
    from training import tracking

    df = make_data()
    with tracking.training_run("churn") as run:
        run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
        run.register("dealerml-churn")
    _, info = tracking.load_model("dealerml-churn")
    assert info.requirements["lightgbm"] == LGBM and info.requirements["scikit-learn"] == \
        importlib.metadata.version("scikit-learn")
    assert set(info.requirements) == {p.lower() for p in tracking._PIP_PACKAGES}
    assert info.environment() == {"matches": True, "mismatches": {}}
    _, desc = resolve_champion("dealerml-churn")
    assert desc["environment"] == {"matches": True, "mismatches": {}}

    _edit_lightgbm(_recorded_file("dealerml-churn", "1"), OLD)
    _, info = tracking.load_model("dealerml-churn")
    assert info.requirements["lightgbm"] == OLD
    assert info.environment() == {"matches": False, "mismatches": {"lightgbm": {"trained": OLD, "running": LGBM}}}
    _, desc = resolve_champion("dealerml-churn")
    assert desc["environment"]["mismatches"] == {"lightgbm": {"trained": OLD, "running": LGBM}}


def test_promote_says_which_compared_model_was_trained_with_other_versions(home):
    """promote scores the challenger and the champion in this environment: a champion trained with another
    lightgbm may score otherwise than it did, so the decision carries a note (the CLI prints it), and none
    when both match."""
    from training import registry, tracking

    df = make_data()
    for n in (10, 20):
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=n).fit(df, df["y"]))
            run.register("dealerml-churn")
    evaluate = TinyTarget().evaluate
    d = registry.promote("dealerml-churn", metric="auc", evaluate=evaluate, force=True)
    assert d.environment_notes == ()
    with tracking.training_run("churn") as run:  # v3, challenger; v2 is the champion now
        run.log_model(TinyModel(n_estimators=30).fit(df, df["y"]))
        run.register("dealerml-churn")
    _edit_lightgbm(_recorded_file("dealerml-churn", "2"), OLD)
    d = registry.promote("dealerml-churn", metric="auc", evaluate=evaluate, force=True)
    assert d.challenger_version == "3" and d.champion_version == "2"
    assert len(d.environment_notes) == 1 and d.environment_notes[0].startswith(
        f"model dealerml-churn version 2 was trained with lightgbm {OLD} (running {LGBM})"), d.environment_notes


def test_the_cli_commands_that_load_a_registered_model_print_one_note(monkeypatch, capsys):
    """forecast --alias / safety-stock --alias (demand's _registered), score churn, score dealers (its
    scorer and the churn champion it reads) all say it through note_model_environment."""
    from training import tracking
    from training.commands import _demand_common
    from training.dealers_churn_risk import load_churn_model

    class Info:
        def __init__(self, name: str) -> None:
            self.name, self.version, self.requirements = name, "2", {"lightgbm": OLD}

        def environment(self):
            return environment_check(self.requirements)

    # the note of a loaded model's ModelInfo (CLI and promote): its name, version and environment()
    assert model_mismatch_note(Info("x")) == mismatch_note("x", "2", environment_check({"lightgbm": OLD})) is not None
    monkeypatch.setattr(tracking, "load_model", lambda name, alias="champion", **kw: (object(), Info(name)))
    monkeypatch.setattr(tracking, "get_alias_version", lambda name, alias: "2")
    _demand_common._registered("champion")
    err = capsys.readouterr().err
    assert err == f"note: model dealerml-demand version 2 was trained with lightgbm {OLD} (running {LGBM}): " \
                  f"{mismatch_note('x', 1, Info('x').environment()).split(': ', 1)[1]}\n"
    from training.commands._common import note_model_environment

    load_churn_model(("champion",), on_load=note_model_environment)
    assert capsys.readouterr().err.startswith(f"note: model dealerml-churn version 2 was trained with lightgbm {OLD}")
    load_churn_model(("champion",))  # without on_load (the backtest): nothing printed
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------- a served churn champion (trained for real)
@pytest.fixture(scope="module")
def churn_home(tmp_path_factory):
    from serving.devserver import prepare_home

    h = tmp_path_factory.mktemp("s12-env-home")
    return h, prepare_home(h, n_accounts=120, n_skus=12, models=("churn",))


@pytest.fixture()
def trained_with_other_lightgbm(churn_home, monkeypatch):
    """The churn champion's recorded requirements say lightgbm OLD (restored after the test)."""
    h, _ = churn_home
    monkeypatch.setenv("DEALERML_HOME", str(h))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    req = _recorded_file("dealerml-churn", "1")
    before = _edit_lightgbm(req, OLD)
    yield
    req.write_text(before)


def _service_model_info() -> dict:
    """/model_info of an in-process service serving the churn champion (admin key)."""
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    with TestClient(service_app()) as c:
        svc = bentoml.get_current_service()
        svc._loader.join(timeout=120)
        assert svc.state.ready, svc.state.not_ready()
        r = c.get("/model_info", headers={"X-API-Key": "s12-env-admin-01"})
        assert r.status_code == 200, r.text
        return r.json()["models"][0]


def _serve_env(monkeypatch, config: Path) -> None:
    for k, v in {"DEALERML_CONFIG": str(config), "DEALERML_SERVE_MODELS": "churn",
                 "DEALERML_API_KEYS": "s12-env-admin-01:*"}.items():
        monkeypatch.setenv(k, v)


def _score_churn(config: Path, out: Path):
    from typer.testing import CliRunner

    from training.cli import app

    return CliRunner().invoke(app, ["score", "churn", "--config", str(config), "--cutoff", "2024-06-01",
                                     "--out", str(out)])


@pytest.mark.slow  # a trained churn champion (~15 s), an in-process service and a CLI scoring
def test_a_champion_trained_with_another_lightgbm_is_served_logged_shown_and_noted(
        churn_home, trained_with_other_lightgbm, monkeypatch, caplog, tmp_path):
    from serving.loader import load_all, new_state

    h, config = churn_home
    want = {"matches": False, "mismatches": {"lightgbm": {"trained": OLD, "running": LGBM}}}
    line = (f"model dealerml-churn version 1 was trained with lightgbm {OLD} (running {LGBM}): its pickled models "
            "are read by other versions than they were trained with")
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    with caplog.at_level(logging.WARNING, logger="dealerml.serving.loader"):
        load_all(st, str(config))
    assert st.ready  # served all the same
    warnings = [r.getMessage() for r in caplog.records if r.name == "dealerml.serving.loader"
                and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(line), warnings
    assert st.slots["churn"].describe()["environment"] == want

    _serve_env(monkeypatch, config)
    info = _service_model_info()
    assert info["status"] == "ready" and info["version"] == "1" and info["environment"] == want

    res = _score_churn(config, tmp_path / "scores.csv")
    assert res.exit_code == 0, res.stderr
    notes = [x for x in res.stderr.splitlines() if x.startswith("note: model dealerml-churn")]
    assert notes == [f"note: {line}, which can warn, give other numbers or fail; install the versions it was "
                     "trained with (constraints.txt: make install; the service's bento pins them in bentofile.yaml) "
                     "or retrain it in this environment"], res.stderr
    assert (tmp_path / "scores.csv").stat().st_size > 0


@pytest.mark.slow
def test_a_champion_trained_here_matches_and_says_nothing(churn_home, monkeypatch, caplog, tmp_path):
    from serving.loader import load_all, new_state

    h, config = churn_home
    monkeypatch.setenv("DEALERML_HOME", str(h))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    st = new_state({"DEALERML_SERVE_MODELS": "churn"})
    with caplog.at_level(logging.WARNING, logger="dealerml.serving.loader"):
        load_all(st, str(config))
    assert st.ready and "was trained with" not in caplog.text
    assert st.slots["churn"].describe()["environment"] == {"matches": True, "mismatches": {}}
    _serve_env(monkeypatch, config)
    assert _service_model_info()["environment"] == {"matches": True, "mismatches": {}}
    res = _score_churn(config, tmp_path / "scores.csv")
    assert res.exit_code == 0 and "was trained with" not in res.stderr, res.stderr
