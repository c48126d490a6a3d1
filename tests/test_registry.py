"""Champion / challenger promotion and rollback against a real MLflow store under tmp_path.

Three real LightGBM models of known quality on the same time-ordered holdout:
``mid`` (trained on the first 60 rows), ``bad`` (trained on shuffled labels) and ``good``
(trained on 350 rows). ``promote`` must refuse bad over mid, accept good over mid, and
``rollback`` must put mid back.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from _support_tuning import TinyModel, TinyTarget, _client, make_data, write_config

NAME = "dealerml-churn"


def _register(model: TinyModel, label: str) -> str:
    from training import tracking

    with tracking.training_run("churn", run_name=label) as run:
        run.log_model(model, metadata={"label": label})
        run.register(NAME)
    return run.registered[0][1]


def _cli(*args):
    """`dealerml ARGS` run in this process: these tests check what promote and rollback do and say, not the
    process boundary (a `python -c` subprocess spent seconds importing MLflow and LightGBM again). The
    --evaluator module (_support_tuning) is imported here already, as its PYTHONPATH made it importable there."""
    from typer.testing import CliRunner

    from training.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], prog_name="dealerml")


def _models():
    df = make_data()
    mid = TinyModel(n_estimators=20, min_child_samples=5).fit(df.iloc[:60], df["y"].iloc[:60])
    shuffled = np.random.default_rng(1).permutation(df["y"].iloc[:350].to_numpy())
    bad = TinyModel(n_estimators=40).fit(df.iloc[:350], shuffled)
    good = TinyModel(n_estimators=40).fit(df.iloc[:350], df["y"].iloc[:350])
    return mid, bad, good


def test_promote_refuses_worse_accepts_better_and_rollback_restores(home):
    from training import registry, tracking

    evaluate = TinyTarget().evaluate
    mid, bad, good = _models()
    s_mid, s_bad, s_good = (evaluate(m)["auc"] for m in (mid, bad, good))
    assert s_bad < s_mid < s_good - 0.02  # the premise of the test

    assert _register(mid, "mid") == "1"
    assert tracking.get_alias_version(NAME, "champion") == "1"  # first version is champion

    assert _register(bad, "bad") == "2"
    d = registry.promote(NAME, metric="auc", evaluate=evaluate, margin=0.0)
    assert d.decision == "refused" and not d.promoted
    assert d.challenger_score == pytest.approx(s_bad) and d.champion_score == pytest.approx(s_mid)
    assert tracking.get_alias_version(NAME, "champion") == "1"
    tags = tracking.get_version_tags(NAME, "2")
    assert tags["promotion.decision"] == "refused"
    assert float(tags["promotion.challenger_score"]) == pytest.approx(s_bad)
    assert float(tags["promotion.champion_score"]) == pytest.approx(s_mid)
    assert tags["promotion.user"] and tags["promotion.time"].endswith("Z")

    assert _register(good, "good") == "3"
    # a margin larger than the gain refuses ...
    d = registry.promote(NAME, metric="auc", evaluate=evaluate, margin=1.0)
    assert d.decision == "refused" and tracking.get_alias_version(NAME, "champion") == "1"
    # ... the configured margin accepts
    d = registry.promote(NAME, metric="auc", evaluate=evaluate, margin=0.01)
    assert d.decision == "promoted" and d.champion_after == "3"
    assert tracking.get_alias_version(NAME, "champion") == "3"
    est, info = tracking.load_model(NAME)
    assert info.metadata["label"] == "good"
    assert tracking.get_version_tags(NAME, "3")["promotion.decision"] == "promoted"

    # every decision has its evidence run: both versions and every figure of both evaluations
    client = _client(home)
    ev = client.get_run(d.evidence_run_id)
    assert tracking.get_version_tags(NAME, "3")["promotion.run_id"] == d.evidence_run_id
    assert ev.data.params["decision"] == "promoted" and ev.data.params["challenger_version"] == "3"
    assert ev.data.metrics["challenger.auc"] == pytest.approx(s_good) and ev.data.metrics["champion.auc"] == pytest.approx(s_mid)
    assert client.get_experiment(ev.info.experiment_id).name == "dealerml-promotion"
    assert registry.promote(NAME, metric="auc", evaluate=evaluate).decision == "unchanged"  # recorded too
    decisions = [r.data.params["decision"] for r in client.search_runs([ev.info.experiment_id])]
    assert sorted(decisions) == ["promoted", "refused", "refused", "unchanged"]

    frm, to = registry.rollback(NAME)
    assert (frm, to) == ("3", "1")
    assert tracking.get_alias_version(NAME, "champion") == "1"
    assert tracking.load_model(NAME)[1].metadata["label"] == "mid"
    from training.errors import ConfigError

    # the rolled-back version is no longer challenger: the next promote cannot undo the rollback
    assert tracking.get_alias_version(NAME, "challenger") is None
    with pytest.raises(ConfigError, match=r"no 'challenger' version .*\(v3, the last challenger promoted, was rolled "
                                          r"back from champion .*lost its 'challenger' alias.*; train or tune first"):
        registry.promote(NAME, metric="auc", evaluate=evaluate)  # says why there is none
    tracking.set_alias(NAME, "challenger", "3")  # even if someone points the alias at it again
    with pytest.raises(ConfigError, match="v3 was rolled back from champion"):
        registry.promote(NAME, metric="auc", evaluate=evaluate)
    assert tracking.get_alias_version(NAME, "champion") == "1"
    with pytest.raises(ConfigError, match="no previous champion"):
        registry.rollback(NAME)
    log = json.loads(tracking.get_model_tags(NAME)["dealerml.promotion_log"])
    assert [e["decision"] for e in log] == ["refused", "refused", "promoted", "rollback"]


def test_force_promotes_a_worse_model_and_records_it(home):
    from training import registry, tracking

    evaluate = TinyTarget().evaluate
    mid, bad, _ = _models()
    _register(mid, "mid")
    _register(bad, "bad")
    d = registry.promote(NAME, metric="auc", evaluate=evaluate, force=True)
    assert d.decision == "forced" and tracking.get_alias_version(NAME, "champion") == "2"
    assert tracking.get_version_tags(NAME, "2")["promotion.forced"] == "true"


def test_a_champion_moved_while_promote_scored_is_not_overwritten(home):
    """promote reads the champion, scores both models (minutes on a real backtest), then moves the alias:
    a rollback (or another promote) in between was overwritten unseen. It now refuses, changing nothing."""
    from mlflow import MlflowClient

    from training import registry, tracking
    from training.errors import ConfigError

    mid, bad, good = _models()
    for model, label in ((mid, "mid"), (good, "good"), (bad, "bad")):
        _register(model, label)  # v1 champion; v3 challenger
    tracking.set_alias(NAME, "champion", "2")  # as an earlier promote moved it: history [1, 2]
    scored = []

    def evaluate(est):  # the other process's rollback lands while this promote scores
        scored.append(est)
        if len(scored) == 2:
            registry.rollback(NAME)
        return TinyTarget().evaluate(est)

    with pytest.raises(ConfigError) as ei:
        registry.promote(NAME, metric="auc", evaluate=evaluate, force=True)
    assert str(ei.value) == ("the champion of dealerml-churn moved from v2 to v1 while this promote scored challenger "
                             "v3; nothing was changed: run promote again to compare the challenger with the champion now")
    assert tracking.get_alias_version(NAME, "champion") == "1"  # the rollback stands
    assert "promotion.decision" not in tracking.get_version_tags(NAME, "3")
    assert [e["decision"] for e in json.loads(tracking.get_model_tags(NAME)["dealerml.promotion_log"])] == ["rollback"]
    client = MlflowClient(tracking_uri=tracking.tracking_uri())
    evidence = client.search_runs([client.get_experiment_by_name("dealerml-promotion").experiment_id])[0]
    assert evidence.data.tags["promotion.complete"] == "false"
    assert evidence.data.tags["promotion.aborted"] == str(ei.value).split(";")[0]
    d = registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate, force=True)  # again: against v1
    assert (d.champion_version, d.champion_after) == ("1", "3")


def test_direction_aware_for_error_metrics(home):
    """For a lower-is-better metric (Brier) the lower challenger wins."""
    from sklearn.metrics import brier_score_loss

    from training import registry, tracking

    t = TinyTarget()
    test = t.df.iloc[350:]

    def evaluate(m):
        return {"brier": float(brier_score_loss(test["y"], m.predict_proba(test)))}

    mid, bad, good = _models()
    assert registry.metric_direction("brier") == "minimize"
    _register(mid, "mid")
    _register(good, "good")
    d = registry.promote(NAME, metric="brier", evaluate=evaluate, margin=0.0)
    assert d.direction == "minimize" and d.challenger_score < d.champion_score
    assert d.decision == "promoted" and tracking.get_alias_version(NAME, "champion") == "2"


def test_promote_and_rollback_cli(home, tmp_path):
    cfg = write_config(tmp_path, extra="promotion:\n  churn: {metric: auc, margin: 0.01}\n")
    mid, bad, good = _models()
    _register(mid, "mid")
    _register(good, "good")
    out = tmp_path / "decision.json"
    r = _cli("promote", "churn", "--config", cfg, "--evaluator", "_support_tuning:tiny_evaluator", "--json", out)
    assert r.exit_code == 0, (r.output[-2000:], r.exception)
    d = json.loads(out.read_text())
    assert d["decision"] == "promoted" and d["margin"] == 0.01 and d["champion_after"] == "2"
    r = _cli("rollback", "churn")
    assert r.exit_code == 0, (r.output[-2000:], r.exception)
    assert "from v2 to v1" in r.stdout


def test_promote_json_writes_an_undefined_figure_as_null(home, tmp_path):
    """`promote dealers --json` on the demo network (net growth negative, so its top_decile_net_growth_share is
    NaN) moved the champion, then ended in 'ValueError: Out of range float values are not JSON compliant: nan'
    (a traceback, exit 1) and wrote no file. The undefined figure is now null, as `backtest dealers` writes it."""
    cfg = write_config(tmp_path)
    mid, bad, good = _models()
    _register(mid, "mid")
    _register(good, "good")
    out = tmp_path / "decision.json"
    r = _cli("promote", "churn", "--config", cfg, "--evaluator", "_support_tuning:nan_figure_evaluator", "--json", out)
    assert r.exit_code == 0, (r.output[-2000:], r.exception)
    d = json.loads(out.read_text())
    assert d["decision"] == "promoted" and d["champion_after"] == "2"
    ev = d["evaluation"]
    assert ev["challenger"]["top_decile_net_growth_share"] is None and ev["champion"]["top_decile_net_growth_share"] is None
    assert ev["challenger"]["auc"] == d["challenger_score"] > ev["champion"]["auc"] == d["champion_score"]


def test_rollback_of_a_model_that_does_not_exist_names_the_models(home):
    """`rollback churm` said 'dealerml-churm has no champion in sqlite:///...; nothing to roll back', as if
    the model existed and had simply not been promoted; the registered churn model was left as it was."""
    from typer.testing import CliRunner

    from training.cli import app

    mid, bad, good = _models()
    _register(mid, "mid")
    for name in ("churm", "dealerml-churm", "dealerml-"):
        r = CliRunner().invoke(app, ["rollback", name])
        assert r.exit_code == 2, r.output
        assert " ".join(r.output.split()) == (f"error: rollback {name}: there is no model {name!r}; use demand, churn "
                                              "or dealers (or dealerml-demand, dealerml-churn, dealerml-dealers)")
    from training import tracking

    assert tracking.get_alias_version("dealerml-churn", "champion") == "1"
    r = CliRunner().invoke(app, ["rollback", "dealerml-churn"])
    assert r.exit_code == 2 and "dealerml-churn: champion v1 has no previous champion to roll back to" in r.output


def test_rollback_passes_over_a_previous_champion_deleted_from_the_registry(home):
    """v1 -> v2 -> v3 champions, then v2 deleted in the MLflow UI: rollback tagged v3 rolled back, then
    died in an MlflowException traceback ('Model Version ... version=2 not found') with v3 still champion,
    so the next promote refused v3 as 'rolled back from champion'. It now goes back to v1 and says so; with
    no earlier champion left it changes nothing."""
    from typer.testing import CliRunner

    from training import registry, tracking
    from training.cli import app
    from training.errors import ConfigError

    evaluate = TinyTarget().evaluate
    mid, bad, good = _models()
    _register(bad, "bad")  # v1, champion
    _register(mid, "mid")
    assert registry.promote(NAME, metric="auc", evaluate=evaluate).decision == "promoted"  # v2
    _register(good, "good")
    assert registry.promote(NAME, metric="auc", evaluate=evaluate).decision == "promoted"  # v3
    _client(home).delete_model_version(NAME, "2")
    r = CliRunner().invoke(app, ["rollback", "churn"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert ("dealerml-churn: champion moved back from v3 to v1 (passing over v2, champion before it but deleted from "
            "the registry since)") in " ".join(r.output.split())
    assert tracking.get_alias_version(NAME, "champion") == "1"
    assert tracking.champion_history(NAME) == ["1"]
    log = json.loads(tracking.get_model_tags(NAME)["dealerml.promotion_log"])
    assert log[-1]["decision"] == "rollback" and log[-1]["passed_over_deleted"] == ["2"]

    # nothing earlier left: refused, and the champion is not tagged rolled back
    tracking.set_alias(NAME, "champion", "3")  # history [1, 3]
    _client(home).delete_model_version(NAME, "1")
    before = tracking.get_version_tags(NAME, "3")
    with pytest.raises(ConfigError) as err:
        registry.rollback(NAME)
    assert str(err.value) == ("dealerml-churn: champion v3 has no previous champion to roll back to (the earlier "
                              "champion(s) v1 were deleted from the registry); nothing was changed")
    assert tracking.get_alias_version(NAME, "champion") == "3"
    assert tracking.get_version_tags(NAME, "3") == before


def test_promote_says_when_the_champion_it_would_be_scored_against_was_removed(home, tmp_path):
    """With the champion's version deleted in the MLflow UI, promote said 'first — challenger v2 auc=...,
    champion v- auc=n/a; champion is now v2', as if no model had ever been champion."""
    mid, bad, good = _models()
    _register(mid, "mid")  # v1, champion
    _register(good, "good")  # v2, challenger
    _client(home).delete_model_version(NAME, "1")
    cfg = write_config(tmp_path)
    r = _cli("promote", "churn", "--config", cfg, "--evaluator", "_support_tuning:tiny_evaluator")
    assert r.exit_code == 0, (r.output[-2000:], r.exception)
    assert "dealerml-churn: first — challenger v2" in r.stdout
    assert ("note: there was no champion to score it against: the last one, v1, is champion no more (its version or "
            "its 'champion' alias was removed from the registry), so v2 became champion without a comparison") in r.stdout
    _register(bad, "bad")  # v3: scored against v2 as usual, no note
    r = _cli("promote", "churn", "--config", cfg, "--evaluator", "_support_tuning:tiny_evaluator")
    assert r.exit_code == 0 and "refused" in r.stdout and "no champion to score" not in r.stdout, r.output


def test_a_champion_the_config_cannot_score_does_not_block_every_challenger(home):
    """A churn champion trained with churn.horizon_days 60, after the config moved to 90: its evaluation raised
    'the model's horizon_days (60) differs ...', which ended every promote of a new challenger, --force too
    (the only way out was setting the alias in MLflow by hand), without saying which model it meant."""
    from training import registry, tracking
    from training.errors import ConfigError

    def evaluate(est):  # the real churn evaluator's refusal, for the model "trained on 60 days"
        if est.n_estimators == 20:
            raise ConfigError("the model's horizon_days (60) differs from the config's churn.horizon_days (90); "
                              "promotion compares models on the same labels")
        return TinyTarget().evaluate(est)

    mid, bad, good = _models()
    _register(mid, "mid")  # v1, champion, n_estimators 20
    _register(good, "good")  # v2
    with pytest.raises(ConfigError) as err:
        registry.promote(NAME, metric="auc", evaluate=evaluate)
    assert str(err.value) == ("dealerml-churn: champion v1: the model's horizon_days (60) differs from the config's "
                              "churn.horizon_days (90); promotion compares models on the same labels, so challenger v2 "
                              "cannot be compared with it; --force promotes the challenger without the comparison "
                              "(recorded as forced)")
    assert tracking.get_alias_version(NAME, "champion") == "1"
    d = registry.promote(NAME, metric="auc", evaluate=evaluate, force=True)
    assert d.decision == "forced" and d.champion_after == "2" and d.champion_score is None
    assert d.champion_metrics == {"not_scored": str(err.value).split(": ", 1)[1].split(", so challenger")[0]}
    assert tracking.get_alias_version(NAME, "champion") == "2"
    assert tracking.get_version_tags(NAME, "2")["promotion.forced"] == "true"
    tracking.set_alias(NAME, "challenger", "1")  # the challenger side is named too
    with pytest.raises(ConfigError, match=r"^challenger v1: the model's horizon_days \(60\) differs"):
        registry.promote(NAME, metric="auc", evaluate=evaluate)


def test_a_version_carries_the_data_and_cutoff_its_run_was_evaluated_on(home):
    """A registered version said nothing of what its figures were measured on (its tags were run_id, kind and
    the registration's own): a data scientist reading the registry had to open each run to see that two
    versions were backtested on other data or another cutoff. It now carries its run's data fingerprint and
    backtest cutoff / horizon under the run's own keys, and nothing of the model's settings."""
    from mlflow.tracking import MlflowClient

    from training import tracking

    mid, _, _ = _models()
    with tracking.training_run("churn", run_name="mid") as run:
        run.log_params({"backtest.test_cutoff": "2024-04-02", "horizon_days": 90, "lookback_days": 365,
                        "model.n_estimators": 20})
        run.set_tags({"data.order_lines_sha256": "ab" * 32, "data.order_date_min": "2022-01-01 00:00:00",
                      "data.order_date_max": "2024-06-30 00:00:00", "data.as_of": "2024-06-30 (whole day)",
                      "data.accounts_sha256": "cd" * 32, "data.service_events_sha256": "none"})
        run.log_model(mid, metadata={"label": "mid"})
        run.register(NAME)
    mv = MlflowClient().get_model_version(NAME, run.registered[0][1])
    assert mv.run_id == run.run_id
    said = {k: v for k, v in mv.tags.items() if k.startswith(("data.", "backtest.")) or k.endswith("_days")}
    assert said == {"backtest.test_cutoff": "2024-04-02", "horizon_days": "90", "lookback_days": "365",
                    "data.order_lines_sha256": "ab" * 32, "data.order_date_min": "2022-01-01 00:00:00",
                    "data.order_date_max": "2024-06-30 00:00:00", "data.as_of": "2024-06-30 (whole day)",
                    # the other tables a churn / dealers model reads (8afa5a1)
                    "data.accounts_sha256": "cd" * 32, "data.service_events_sha256": "none"}
    assert "model.n_estimators" not in mv.tags


def test_a_failed_cleanup_after_a_failed_registration_keeps_the_first_error(home, monkeypatch, caplog):
    """Setting the aliases failed and deleting the new version again failed too: the delete's error was the one
    raised, so the registration's own failure was hidden and nothing said which version was left behind."""
    import logging

    from mlflow import MlflowClient

    from training import tracking

    mid, _, _ = _models()
    with tracking.training_run("churn", run_name="mid") as run:
        uri = run.log_model(mid, metadata={"label": "mid"})

    def alias_down(self, *a, **k):
        raise RuntimeError("alias write refused")

    def delete_down(self, *a, **k):
        raise OSError("registry went away")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", alias_down)
    monkeypatch.setattr(MlflowClient, "delete_model_version", delete_down)
    with caplog.at_level(logging.WARNING, logger="training._tracking_registry"):
        with pytest.raises(RuntimeError) as err:
            tracking.register_model_uri(uri, NAME, alias="challenger", tags={"run_id": run.run_id})
    assert str(err.value) == "alias write refused"  # pytest's match= reads the notes too
    said = ("dealerml-churn version 1 was left in .*: its registration failed \\(RuntimeError\\) and deleting it "
            "failed too \\(OSError: registry went away\\); it stays tagged dealerml.registration=pending")
    assert len(err.value.__notes__) == 1
    assert re.match(said, err.value.__notes__[0]), err.value.__notes__
    assert [r.getMessage() for r in caplog.records] == err.value.__notes__
    monkeypatch.undo()
    left = _client(home).get_model_version(NAME, "1")
    assert left.tags["dealerml.registration"] == "pending"


def test_an_alias_insert_lost_to_another_process_is_set_again_not_undone(home, monkeypatch):
    """MLflow sets an alias by read-then-insert: two runs registering together on a tracking server both
    inserted 'challenger' and the second failed on the unique key (CI: ``BAD_REQUEST: (sqlite3.IntegrityError)
    UNIQUE constraint failed: registered_model_aliases...``), so its registration was deleted and its run
    crashed. The row is there by then: setting it again updates it. Any other error is not retried."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training import tracking

    mid, _, _ = _models()
    with tracking.training_run("churn", run_name="mid") as run:
        uri = run.log_model(mid, metadata={"label": "mid"})
    real, calls = MlflowClient.set_registered_model_alias, []

    def lost_first_insert(self, name, alias, version):
        calls.append((alias, str(version)))
        if len(calls) == 1:  # the other process's row went in between this one's read and insert
            real(self, name, alias, version)
            raise MlflowException("BAD_REQUEST: (sqlite3.IntegrityError) UNIQUE constraint failed: "
                                  "registered_model_aliases.workspace, registered_model_aliases.name, "
                                  "registered_model_aliases.alias")
        return real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", lost_first_insert)
    version = tracking.register_model_uri(uri, NAME, alias="challenger", tags={"run_id": run.run_id})
    assert calls[:2] == [("challenger", "1"), ("challenger", "1")]
    client = _client(home)
    assert version == "1"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert client.get_model_version(NAME, "1").tags["dealerml.registration"] == "complete"

    def refused(self, name, alias, version):
        calls.append((alias, str(version)))
        raise MlflowException("PERMISSION_DENIED: alias writes are not allowed")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", refused)
    calls.clear()
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        tracking.register_model_uri(uri, NAME, alias="challenger", tags={"run_id": run.run_id})
    assert calls == [("challenger", "2")]  # once: not a lost insert
    monkeypatch.undo()
    assert [str(mv.version) for mv in _client(home).search_model_versions(f"name='{NAME}'")] == ["1"]


def test_a_champion_whose_files_are_gone_can_be_forced_out_but_not_rolled_back_to(home):
    """v1's files deleted from the store (or the store moved): promote refused every challenger with the
    missing-files error, --force too, so only setting the alias in MLflow by hand got a loadable champion back;
    and rollback moved the champion to such a version, which the service then failed to load at its restart."""
    import shutil
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    from training import registry, tracking
    from training.errors import ConfigError

    evaluate = TinyTarget().evaluate
    mid, bad, good = _models()
    _register(mid, "mid")  # v1, champion
    _register(good, "good")  # v2, challenger
    files = Path(unquote(urlparse(_client(home).get_model_version_download_uri(NAME, "1")).path))
    shutil.rmtree(files)
    with pytest.raises(ConfigError) as err:
        registry.promote(NAME, metric="auc", evaluate=evaluate)
    assert str(err.value).startswith(f"dealerml-churn: model dealerml-churn version 1: its files are recorded at {files}, "
                                     "which does not exist here.")
    assert str(err.value).endswith(", so challenger v2 cannot be compared with it; --force promotes the challenger "
                                   "without the comparison (recorded as forced)")
    assert tracking.get_alias_version(NAME, "champion") == "1"
    d = registry.promote(NAME, metric="auc", evaluate=evaluate, force=True)
    assert d.decision == "forced" and d.champion_after == "2" and d.champion_score is None
    assert d.champion_metrics["not_scored"].startswith("model dealerml-churn version 1: its files are recorded at")
    assert tracking.get_alias_version(NAME, "champion") == "2"

    before = tracking.get_version_tags(NAME, "2")
    with pytest.raises(ConfigError) as err:
        registry.rollback(NAME)
    assert str(err.value).startswith(f"dealerml-churn: cannot roll back from v2 to v1: model dealerml-churn version 1: "
                                     f"its files are recorded at {files}, which does not exist here.")
    assert str(err.value).endswith("; nothing was changed")
    assert tracking.get_alias_version(NAME, "champion") == "2" and tracking.champion_history(NAME) == ["1", "2"]
    assert tracking.get_version_tags(NAME, "2") == before


def test_a_version_whose_files_are_damaged_is_a_config_error_naming_it(home):
    """A registered version's estimator files damaged in the store (a booster.txt that is not a LightGBM model, a
    metadata file without its keys) ended score dealers / promote / the service's loader in a LightGBMError or
    KeyError traceback; it is now a ConfigError naming the model, the version and the estimator class."""
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    from training import tracking
    from training.errors import ConfigError

    mid, _, _ = _models()
    _register(mid, "mid")
    files = Path(unquote(urlparse(_client(home).get_model_version_download_uri(NAME, "1")).path))
    (files / "artifacts" / "estimator" / "booster.txt").write_text("garbage\n")
    with pytest.raises(ConfigError) as err:
        tracking.load_model(NAME, "champion")
    assert str(err.value).startswith("model dealerml-churn version 1: its files cannot be read as a TinyModel "
                                     "(LightGBMError: ")
