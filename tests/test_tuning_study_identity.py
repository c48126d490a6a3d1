"""Two ``dealerml tune`` runs given one study name. A second run started while the first was tuning the
(new) study shared it silently: both ran their trials into it, each reported the other's too ("3 trials"
asked, "5 complete" / "6 complete" said) and each registered the same best as another challenger; a
``--resume`` then marked the live run's trials FAILED. And ``--resume`` with another model, book, search
space or fixed settings mixed trials scored on different things and picked the best among them. Now a
study records its coordinator and what its trials are scored on, and both are refused by name."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from _support_tuning import TinyTarget


class _FixedLeaves(TinyTarget):
    """num_leaves is not tuned: every trial is fitted with the config's (31)."""

    def space(self, trial) -> dict:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 5, 60),
            "num_leaves": self.default_params["num_leaves"],
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 60),
        }


class _OtherSpace(_FixedLeaves):
    def space(self, trial) -> dict:
        return {**super().space(trial), "learning_rate": trial.suggest_float("learning_rate", 0.05, 0.5, log=True)}


class _OtherFixed(_FixedLeaves):
    default_params = {**TinyTarget.default_params, "num_leaves": 8}


def test_resume_on_other_settings_is_refused_naming_the_difference(home, tmp_path):
    import optuna

    from training.errors import ConfigError
    from training.tuning import run_study
    from training.tuning_runtime import make_storage

    storage = str(tmp_path / "j.log")
    run_study(_FixedLeaves(), n_trials=2, study_name="s", seed=1, storage=storage, register=False, log=lambda s: None)
    where = f"--resume: study 's' in journal file {storage} was tuned on other settings, so its trials are not comparable with this run's: "
    end = "; resume it with the config it was made with, or choose a new --study-name"
    cases = [
        (TinyTarget(name="other"), "model: tiny (this run: other)"),  # another model: only that is said
        (type("Minimizing", (_FixedLeaves,), {"metric": "logloss", "direction": "minimize"})(),
         "metric: auc (maximize) (this run: logloss (minimize))"),
        (_OtherSpace(), "search space: learning_rate float [0.01, 0.3] log; min_child_samples int [5, 60]; n_estimators "
                        "int [5, 60] (this run: learning_rate float [0.05, 0.5] log; min_child_samples int [5, 60]; "
                        "n_estimators int [5, 60])"),
        (_OtherFixed(), "fixed settings: num_leaves=31 (this run: num_leaves=8)"),
    ]
    for target, differ in cases:
        with pytest.raises(ConfigError) as ei:
            run_study(target, n_trials=4, study_name="s", seed=1, storage=storage, register=False, resume=True,
                      log=lambda s: None)
        assert str(ei.value) == where + differ + end, target
    assert len(optuna.load_study(study_name="s", storage=make_storage(storage)).trials) == 2  # nothing ran
    res = run_study(_FixedLeaves(), n_trials=3, study_name="s", seed=1, storage=storage, register=False, resume=True,
                    log=lambda s: None)  # the same settings resume as before
    assert res.n_already_finished == 2 and res.n_complete + res.n_pruned == 3


def test_the_order_lines_are_part_of_what_a_study_is_scored_on():
    from types import SimpleNamespace

    from training.tuning_identity import _identity_differences, study_identity

    a = study_identity(TinyTarget(), SimpleNamespace(fingerprint={"order_lines_sha256": "aa" * 32}))
    b = study_identity(TinyTarget(), SimpleNamespace(fingerprint={"order_lines_sha256": "bb" * 32}))
    assert _identity_differences(a, b) == [f"order lines sha256: {'aa' * 32} (this run: {'bb' * 32})"]
    assert _identity_differences(a, a) == [] and _identity_differences(None, a) == []  # a study made before: not checked


def test_a_study_another_live_tune_is_running_is_refused_and_its_trials_kept(home, tmp_path, monkeypatch):
    import optuna

    from training import tuning_study
    from training._tracking_cleanup import _process_start
    from training.errors import ConfigError
    from training.tuning import run_study
    from training.tuning_runtime import make_storage
    from training.tuning_study import check_study

    monkeypatch.setattr(tuning_study, "OWNER_SETTLE_S", 0.05)
    storage = str(tmp_path / "j.log")
    other = subprocess.Popen(["sleep", "60"])  # the other coordinator, alive
    try:
        study = optuna.create_study(study_name="busy", storage=make_storage(storage), direction="maximize")
        study.set_user_attr("dealerml.owner", {"dealerml.pid": str(other.pid), "dealerml.host": socket.gethostname(),
                                               "dealerml.process_start": _process_start(other.pid)})
        busy = (f"study 'busy' in journal file {storage} is being tuned now by another dealerml tune (pid {other.pid}); "
                "two runs would share its trials (each counting the other's and registering the same best): ")
        # it has made the study, no trial finished yet: a second run with the same name
        for check in (lambda: check_study("busy", storage, resume=False, n_trials=2),
                      lambda: run_study(TinyTarget(), n_trials=2, study_name="busy", seed=1, storage=storage,
                                        register=False, log=lambda s: None)):
            with pytest.raises(ConfigError) as ei:
                check()
            assert str(ei.value) == busy + ("choose another --study-name, or wait for it to finish and add --resume to "
                                            "run more of it")
        study.ask()  # its first trial, running
        with pytest.raises(ConfigError) as ei:
            run_study(TinyTarget(), n_trials=2, study_name="busy", seed=1, storage=storage, register=False,
                      resume=True, log=lambda s: None)
        assert str(ei.value) == busy + "wait for it to finish, then add --resume to run more of it"
        assert [t.state.name for t in optuna.load_study(study_name="busy", storage=make_storage(storage)).trials] == [
            "RUNNING"]  # its trial was not marked failed
    finally:
        other.kill()
        other.wait()
    # its coordinator gone: --resume takes the study over (the abandoned trial marked failed)
    res = run_study(TinyTarget(), n_trials=2, study_name="busy", seed=1, storage=storage, register=False, resume=True,
                    log=lambda s: None)
    assert res.n_complete + res.n_pruned == 2 and res.n_failed == 1


def test_an_experiment_whose_tune_step_names_a_study_in_use_is_refused_before_its_first_step(tmp_path, monkeypatch,
                                                                                              network):
    """experiment run with tuning.study_name of a study that has trials: its train_churn step trained and
    registered a version (a minute on the synthetic book), then the tune step was refused."""
    import optuna
    from _support_experiment import _exp

    from training.errors import ConfigError
    from training.experiment import run_experiment
    from training.tuning_runtime import make_storage

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    journal = tmp_path / "j.log"
    study = optuna.create_study(study_name="nightly", storage=make_storage(str(journal)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    calls: list = []
    body = f"extends: base.yaml\nname: e\ntuning: {{storage: {journal}, study_name: nightly}}\n"
    exp = _exp(tmp_path, network, body + "steps: [train_churn, {tune_churn: {trials: 2}}]\n")
    with pytest.raises(ConfigError) as err:
        run_experiment(exp, invoke=calls.append, log=lambda s: None)
    assert str(err.value) == (
        f"{exp}: key 'steps[1].tune_churn': study 'nightly' already has 1 trials (1 finished, 0 failed) in journal file "
        f"{journal}; choose a new --study-name, or add --resume to continue it until it has 2 finished trials")
    assert calls == []  # train_churn did not run
    # a later step resuming the study an earlier step makes is not refused for the study it does not hold yet
    exp = _exp(tmp_path, network, f"extends: base.yaml\nname: e\ntuning: {{storage: {tmp_path / 'k.log'}}}\nsteps: "
                                   "[{tune_churn: {study_name: a}}, {tune_churn: {study_name: a, resume: true, trials: 9}}]\n")
    run_experiment(exp, invoke=lambda argv: calls.append(argv) or 0, log=lambda s: None)
    assert [c[:2] for c in calls] == [["tune", "churn"], ["tune", "churn"]]


def test_sigterm_to_a_coordinator_with_workers_says_how_to_resume(home, tmp_path):
    """SIGTERM to `dealerml tune --workers 2` (a `kill`, a service manager stopping it) ended it with exit 143,
    no word, and its parent run FAILED; without workers the same signal said 'interrupted: ... Continue it
    with: ...', exit 130, the run KILLED. Both now say it."""
    import signal
    import sys

    from _support_tuning import ROOT, _client, _env, _worker_pids, write_config

    cfg = write_config(tmp_path, {"n_startup_trials": 50, "target": {"sleep": 1.0}})
    journal = tmp_path / "j.log"
    cmd = [sys.executable, "-u", "-c", "from training.cli import app; app(prog_name='dealerml')", "tune", "churn",
           "--config", str(cfg), "--target", "_support_tuning:tiny_target", "--trials", "12", "--workers", "2",
           "--storage", str(journal), "--study-name", "s"]
    proc = subprocess.Popen(cmd, env=_env(home), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids: list[int] = []
    try:
        pids, _ = _worker_pids(proc, 2)
        import time

        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
        rest = " ".join(proc.stdout.read().split())
        assert ("interrupted: nothing was registered; the finished trials stay in study 's'. Continue it with: dealerml "
                f"tune churn --config {cfg} --study-name s --resume --trials 12 --storage {journal}") in rest, rest
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
    runs = _client(home).search_runs([_client(home).get_experiment_by_name("dealerml-tiny").experiment_id],
                                     "tags.`dealerml.step` = 'tune'")
    assert [r.info.status for r in runs] == ["KILLED"]
    assert _client(home).search_model_versions("name = 'dealerml-tiny'") == []  # nothing registered
