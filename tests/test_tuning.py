"""Optuna tuning: seeded reproducibility, nested MLflow runs, challenger registration, and
two worker processes on the real PostgreSQL (one killed mid-trial).

The objective is a real small LightGBM on a few hundred time-ordered rows (``TinyTarget``),
scored on rolling-origin folds, so the tests are fast but exercise the real machinery.
``TinyModel``/``TinyTarget``/``tiny_target`` live in ``_support_tuning`` (shared with test_registry,
test_tracking and others; worker subprocesses load ``--target _support_tuning:tiny_target`` with tests/
on PYTHONPATH); the ``home`` / ``mlflow_template_db`` fixtures are in conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from _support_tuning import TinyTarget, _client, _CrippledTarget, _env, _worker_pids, write_config

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --------------------------------------------------------------------------- unit


def test_split_trials_sums_exactly():
    from training.tuning import split_trials

    assert split_trials(20, 2) == [10, 10]
    assert split_trials(7, 3) == [3, 2, 2]
    assert split_trials(2, 5) == [1, 1]
    assert sum(split_trials(101, 4)) == 101


def test_tiny_target_is_a_tuning_target():
    from training.tuning import TuningTarget

    assert isinstance(TinyTarget(), TuningTarget)


# --------------------------------------------------------------------------- single process


def _history(home: Path, storage: Path, study_name: str):
    import optuna

    from training.tuning_runtime import make_storage

    study = optuna.load_study(study_name=study_name, storage=make_storage(str(storage)))
    return [(t.number, t.state.name, t.params, t.value) for t in study.trials]


def test_seeded_study_is_reproducible_and_registers_challenger(home, tmp_path):
    from training import tracking
    from training.tuning import run_study
    from training.tuning_config import TuningSettings

    settings = TuningSettings(n_startup_trials=3)
    results = []
    for i in range(2):  # 5 trials: 3 random starts, then 2 chosen by TPE from them (each trial is an MLflow run)
        storage = tmp_path / f"journal{i}.log"
        res = run_study(TinyTarget(), n_trials=5, study_name="repro", seed=11, storage=str(storage),
                        settings=settings, log=lambda s: None)
        results.append((res, _history(home, storage, "repro")))
    (r1, h1), (r2, h2) = results
    assert h1 == h2  # same params, states and values, trial by trial
    assert r1.best_params == r2.best_params and r1.best_value == r2.best_value
    assert r1.n_complete + r1.n_pruned == 5 and r1.n_failed == 0
    # the untuned configuration was scored on the same folds and is reported beside it
    assert r1.untuned_value is not None and 0.5 < r1.untuned_value < 1
    assert len(r1.untuned_fold_scores) == 3 and len(r1.best_fold_scores) == 3
    assert np.mean(r1.best_fold_scores) == pytest.approx(r1.best_value)
    assert np.mean(r1.untuned_fold_scores) == pytest.approx(r1.untuned_value)
    assert r1.best_value >= max(v for _, s, _, v in h1 if s == "COMPLETE") - 1e-12
    # each run registered its retrained best as challenger; the first also became champion
    assert r1.registered_version == "1" and r2.registered_version == "2"
    assert tracking.get_alias_version("dealerml-tiny", "challenger") == "2"
    assert tracking.get_alias_version("dealerml-tiny", "champion") == "1"
    est, info = tracking.load_model("dealerml-tiny", "challenger")
    assert est.get_params()["n_estimators"] == r2.best_params["n_estimators"]
    assert info.backtest_metrics["auc"] == pytest.approx(r2.final_metrics["auc"])
    # one parent run with one nested child run per trial
    client = _client(home)
    exp = client.get_experiment_by_name("dealerml-tiny")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{r1.parent_run_id}'")
    assert len(children) == 5
    assert {c.data.tags["optuna.trial"] for c in children} == {str(i) for i in range(5)}
    parent = client.get_run(r1.parent_run_id)
    assert parent.data.metrics["best_auc"] == pytest.approx(r1.best_value)
    assert parent.data.params["best.num_leaves"] == str(r1.best_params["num_leaves"])


def test_untuned_configuration_is_kept_when_no_trial_beats_it(home, tmp_path):
    from training.tuning import run_study

    res = run_study(_CrippledTarget(), n_trials=3, study_name="c", seed=1, storage=str(tmp_path / "j.log"),
                    log=lambda s: None)
    assert res.best_is_untuned
    assert res.best_params == TinyTarget.default_params
    assert res.best_value == res.untuned_value


class _BrokenTarget(TinyTarget):
    """Every fold fails, as a target whose data breaks a model would."""

    def score_fold(self, params, fold):
        raise ValueError(f"fold {fold} holds no rows of class 1")


def test_a_study_where_every_trial_fails_says_why_and_registers_nothing(home, tmp_path):
    from training import tracking
    from training.errors import DealermlError
    from training.tuning import run_study

    with pytest.raises(DealermlError) as err:
        run_study(_BrokenTarget(), n_trials=3, study_name="broken", seed=1, storage=str(tmp_path / "j.log"),
                  log=lambda s: None)
    assert str(err.value) == ("study broken: no trial completed (0 pruned, 3 failed): "
                              "trial(s) 0, 1, 2: ValueError: fold 0 holds no rows of class 1")
    assert tracking.get_alias_version("dealerml-tiny", "challenger") is None


class _FirstTrialFails(TinyTarget):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def score_fold(self, params, fold):
        self.calls += 1
        if self.calls == 1:
            raise ValueError("the first fold of the first trial hit a bad moment")
        return super().score_fold(params, fold)


def test_one_worker_replaces_a_failed_trial_so_the_study_finishes_the_trials_asked_for(home, tmp_path):
    """With workers the missing trials were run again; with one worker a trial that raised counted in
    Optuna's n_trials, so `--trials 3` ended with 2 finished and the report's budget was short."""
    import optuna

    from training.tuning import run_study

    said: list[str] = []
    run_study(_FirstTrialFails(), n_trials=3, study_name="one-fails", seed=1, storage=str(tmp_path / "j.log"),
              register=False, log=said.append)
    study = optuna.load_study(study_name="one-fails", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))))
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert "1 trial(s) failed; running 1 more to finish 3" in said


class _SpaceNeedsASetting(TinyTarget):
    def space(self, trial) -> dict:
        raise KeyError("tuning.target.max_leaves")  # e.g. a bound read from a setting the config lacks


def test_a_search_space_that_fails_is_said_not_taken_for_a_dead_worker(home, tmp_path):
    """An error raised by the search space was not kept on the trial: every trial failed and the study said
    "no error recorded (the worker died?)", sending one after a crash that never happened."""
    from training.errors import DealermlError
    from training.tuning import run_study

    with pytest.raises(DealermlError) as err:
        run_study(_SpaceNeedsASetting(), n_trials=2, study_name="space", seed=1, storage=str(tmp_path / "j.log"),
                  register=False, log=lambda s: None)
    assert str(err.value) == ("study space: no trial completed (0 pruned, 2 failed): "
                              "trial(s) 0, 1: KeyError: 'tuning.target.max_leaves'")


def test_a_worker_that_dies_mid_trial_on_a_journal_has_its_trial_failed_and_counted(home, tmp_path):
    """A worker killed mid-trial on a journal storage (the default; no heartbeat) left its trial RUNNING: the run
    said "0 failed" (it counted neither failed nor finished) and the next --resume called it a trial "left running
    by the interrupted run". Once the workers have exited, the trials they left running are FAILED and counted."""
    import optuna

    from training.tuning import run_study
    from training.tuning_runtime import make_storage

    # a worker that starts its trial and dies in it, as one killed with SIGKILL
    dies = ("import os, sys, optuna; from training.tuning_runtime import make_storage; a = sys.argv; "
            "s = optuna.load_study(study_name=a[a.index('--study-name') + 1], "
            "storage=make_storage(a[a.index('--storage') + 1])); t = s.ask(); t.set_user_attr('pid', os.getpid()); "
            "os._exit(9)")
    storage = str(tmp_path / "j.log")
    said: list[str] = []
    res = run_study(TinyTarget(), n_trials=2, study_name="d", seed=1, storage=storage, workers=2,
                    worker_argv=[sys.executable, "-c", dies], register=False, log=said.append)
    states = [t.state.name for t in optuna.load_study(study_name="d", storage=make_storage(storage)).trials]
    assert sorted(states[:2]) == ["FAIL", "FAIL"] and states[2:] == ["COMPLETE", "COMPLETE"], states
    assert (res.n_complete, res.n_pruned, res.n_failed) == (2, 0, 2)
    assert "2 trial(s) failed or a worker died; running the 2 missing trial(s) here" in said, said
    assert sum("exited with code 9" in line for line in said) == 2


def test_existing_study_name_is_refused(home, tmp_path):
    from training.errors import ConfigError
    from training.tuning import run_study

    storage = str(tmp_path / "j.log")
    run_study(TinyTarget(), n_trials=1, study_name="s", seed=1, storage=storage, register=False, log=lambda s: None)
    with pytest.raises(ConfigError, match="already has 1 trials") as err:
        run_study(TinyTarget(), n_trials=1, study_name="s", seed=1, storage=storage, log=lambda s: None)
    assert "choose a new --study-name, or add --resume" in str(err.value)


def test_resume_continues_an_interrupted_study_to_n_finished_trials(home, tmp_path):
    import optuna

    from training.tuning import run_study
    from training.tuning_runtime import make_storage

    storage = str(tmp_path / "j.log")
    first = run_study(TinyTarget(), n_trials=2, study_name="r", seed=1, storage=storage, register=False,
                      log=lambda s: None)
    # an interrupted run leaves a trial RUNNING in the journal (no heartbeat there)
    optuna.load_study(study_name="r", storage=make_storage(storage)).ask()
    logs: list[str] = []
    res = run_study(TinyTarget(), n_trials=5, study_name="r", seed=1, storage=storage, register=False,
                    resume=True, log=logs.append)
    assert res.n_already_finished == 2
    assert any("resuming study 'r': 2 of 5 trial(s) already finished" in m and "running 3 more" in m
               and "1 left running by the interrupted run marked failed" in m for m in logs), logs
    trials = optuna.load_study(study_name="r", storage=make_storage(storage)).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 5 and states.count("FAIL") == 1
    assert "RUNNING" not in states
    # the earlier trials take part in the best choice: the best is the best of all finished ones
    values = [t.value for t in trials if t.state.name == "COMPLETE"]
    assert res.best_value == pytest.approx(max(max(values), res.untuned_value))
    assert res.best_value >= first.best_value
    # nothing left to run: the best is chosen again, no new trial
    logs.clear()
    again = run_study(TinyTarget(), n_trials=5, study_name="r", seed=1, storage=storage, register=False,
                      resume=True, log=logs.append)
    assert again.n_already_finished == 5 and any("none left to run" in m for m in logs)
    assert len(optuna.load_study(study_name="r", storage=make_storage(storage)).trials) == 6


def test_resume_cli_needs_a_study_name(home, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    cfg = write_config(tmp_path)
    r = CliRunner().invoke(app, ["tune", "churn", "--config", str(cfg), "--target", "_support_tuning:tiny_target",
                                 "--resume"])
    assert r.exit_code == 2 and "--resume needs the --study-name" in r.output


def test_a_storage_file_that_is_not_a_journal_or_a_seed_numpy_refuses_are_said_first(home, tmp_path):
    """--storage naming an existing file that is not an Optuna journal (a config passed as --storage, a CSV)
    got Optuna's records appended to it, then a JSONDecodeError traceback; --seed -5 ran to the first trial
    and died in numpy's 'Seed must be between 0 and 2**32 - 1' traceback. Both are refused before the work,
    the file unchanged."""
    from typer.testing import CliRunner

    from training.cli import app

    cfg = write_config(tmp_path)
    base = ["tune", "churn", "--config", str(cfg), "--target", "_support_tuning:tiny_target", "--trials", "1"]
    notes = tmp_path / "notes.txt"
    notes.write_text("account_id,probability\n")
    r = CliRunner().invoke(app, [*base, "--storage", str(notes)])
    assert r.exit_code == 2, (r.output, r.exception)
    assert " ".join(r.output.split()) == (
        f"error: Optuna storage {notes}: {notes} is a file that is not an Optuna journal (its first line is not a "
        "journal record); give the journal of the study, or a new file path for a new one (the file was not changed)")
    assert notes.read_text() == "account_id,probability\n"
    for seed in ("-5", str(2**32)):
        r = CliRunner().invoke(app, [*base, "--seed", seed, "--storage", str(tmp_path / "j.log")])
        assert r.exit_code == 2, (r.output, r.exception)
        assert " ".join(r.output.split()) == f"error: --seed {seed}: a seed must be a whole number from 0 to 4294967295"
    cfg.write_text(cfg.read_text() + "tuning: {seed: -1}\n")
    r = CliRunner().invoke(app, [*base, "--storage", str(tmp_path / "j.log")])
    assert r.exit_code == 2 and "error: tuning.seed -1: a seed must be a whole number" in r.output, r.output
    assert not (tmp_path / "j.log").exists() and _versions_of(home) == []
    r = CliRunner().invoke(app, [*base, "--storage", str(tmp_path / "j.log"), "--seed", "0"])  # a new journal: fine
    assert r.exit_code == 0, (r.output, r.exception)
    r = CliRunner().invoke(app, [*base[:-1], "2", "--storage", str(tmp_path / "j.log"), "--seed", "0", "--resume",
                                 "--study-name", _study_of(r.output)])  # and the journal it made is one
    assert r.exit_code == 0, (r.output, r.exception)


def _versions_of(home) -> list[str]:
    return [str(v.version) for v in _client(home).search_model_versions("name='dealerml-churn'")]


def _study_of(output: str) -> str:
    import re

    return re.search(r"study (\S+) on journal file", output).group(1)


def test_storage_with_missing_folder_is_refused_and_not_created(home, tmp_path):
    from training.errors import ConfigError
    from training.tuning_runtime import default_storage_path, make_storage

    bad = tmp_path / "nonexistent_dir" / "x" / "journal.log"
    with pytest.raises(ConfigError, match="the folder .*nonexistent_dir/x does not exist") as err:
        make_storage(str(bad))
    assert str(bad) in str(err.value) and "--storage" in str(err.value)
    assert not (tmp_path / "nonexistent_dir").exists()
    with pytest.raises(ConfigError, match="is a folder"):
        make_storage(str(tmp_path))
    # the default location under $DEALERML_HOME is created on demand
    assert not default_storage_path().parent.exists()
    make_storage(None)
    assert default_storage_path().parent.is_dir()


def test_a_run_failing_before_its_first_trial_leaves_no_journal(home, tmp_path, monkeypatch):
    """$DEALERML_HOME below a file: with --storage, run_study made the journal (its study created) and then
    failed opening the MLflow store, leaving the file; without, the default journal's mkdir ended in a
    NotADirectoryError traceback after the data load. Now the journal it made is removed, and the default
    one is refused up front naming the folder."""
    import optuna
    from typer.testing import CliRunner

    from training.cli import app
    from training.errors import DealermlError
    from training.tuning import run_study
    from training.tuning_runtime import make_storage

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("DEALERML_HOME", str(blocker / "home"))
    journal = tmp_path / "j.log"
    with pytest.raises(DealermlError, match="cannot create the folder of the MLflow store"):
        run_study(TinyTarget(), n_trials=1, study_name="s", seed=1, storage=str(journal), log=lambda m: None)
    assert not journal.exists()
    cfg = write_config(tmp_path)
    r = CliRunner().invoke(app, ["tune", "churn", "--config", str(cfg), "--target", "_support_tuning:tiny_target",
                                 "--trials", "1"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.output.strip() == (f"error: cannot create the Optuna journal {blocker / 'home' / 'optuna' / 'journal.log'}: "
                                f"{blocker} is a file, not a folder; set DEALERML_HOME to a folder you can write, or "
                                "give --storage a journal file path (or a database URL)")
    # a journal that already held a study is never removed, even when the run then fails
    monkeypatch.setenv("DEALERML_HOME", str(home))
    run_study(TinyTarget(), n_trials=1, study_name="kept", seed=1, storage=str(journal), register=False,
              log=lambda m: None)
    monkeypatch.setenv("DEALERML_HOME", str(blocker / "home"))
    with pytest.raises(DealermlError, match="cannot create the folder of the MLflow store"):
        run_study(TinyTarget(), n_trials=1, study_name="other", seed=1, storage=str(journal), log=lambda m: None)
    assert [st.study_name for st in optuna.get_all_study_summaries(make_storage(str(journal)))] == ["kept", "other"]


@pytest.mark.skipif(not Path("/proc/1").is_dir(), reason="needs Linux /proc (a folder no one, root included, may write in)")
def test_tune_and_promote_json_in_an_unwritable_folder_is_refused_first(home, tmp_path):
    """tune --json in a folder it may not write in ran the whole study and registered the challenger,
    then failed writing the summary; promote --json failed after the alias had moved. Both now refuse
    it before any work: no journal, no run, no version."""
    from typer.testing import CliRunner

    from training import tracking
    from training.cli import app

    cfg = write_config(tmp_path)
    journal = tmp_path / "j.log"
    r = CliRunner().invoke(app, ["tune", "churn", "--config", str(cfg), "--target", "_support_tuning:tiny_target",
                                 "--trials", "1", "--storage", str(journal), "--json", "/proc/1/s.json"])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == ("error: --json /proc/1/s.json: no permission to write in the folder /proc/1; "
                                "give a path in a folder you can write to")
    assert not journal.exists() and tracking.get_alias_version("dealerml-tiny", "challenger") is None
    r = CliRunner().invoke(app, ["promote", "churn", "--config", str(cfg), "--json", "/proc/1/p.json"])
    assert r.exit_code == 2 and "error: --json /proc/1/p.json: no permission to write in the folder /proc/1" in r.output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_to_the_coordinator_stops_its_workers(home, tmp_path):
    cfg = write_config(tmp_path, {"n_startup_trials": 50, "target": {"sleep": 1.0}})
    cmd = [sys.executable, "-u", "-c", "from training.cli import app; app(prog_name='dealerml')", "tune", "churn",
           "--config", str(cfg), "--target", "_support_tuning:tiny_target", "--trials", "12", "--workers", "2",
           "--storage", str(tmp_path / "j1.log"), "--study-name", "s", "--no-register"]
    proc = subprocess.Popen(cmd, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids: list[int] = []
    lines: list[str] = []
    try:
        pids, lines = _worker_pids(proc, 2)
        time.sleep(3)  # the workers are inside their trials
        assert all(_alive(p) for p in pids)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
        # each worker still owes ~15 s of trials: they must be gone now, not when they finish
        deadline = time.time() + 3
        while time.time() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        assert not [p for p in pids if _alive(p)], "workers outlived the coordinator:\n" + "".join(lines)
        rest = proc.stdout.read()
        assert "stopping 2 worker(s)" in rest
    finally:
        for p in pids:  # never leave the test's own workers behind
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


# --------------------------------------------------------------------------- PostgreSQL, worker processes


def _pg_study(name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(PG_URL))


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.usefixtures("optuna_pg_schema")
def test_tune_cli_two_workers_share_one_postgres_study(home, tmp_path):
    study = f"pytest-{uuid.uuid4().hex[:10]}"
    cfg = write_config(tmp_path, {"n_startup_trials": 2, "heartbeat_interval": 1, "grace_period": 4})
    out = tmp_path / "summary.json"
    cmd = [sys.executable, "-c", "from training.cli import app; app(prog_name='dealerml')", "tune", "churn",
           "--config", str(cfg), "--target", "_support_tuning:tiny_target", "--trials", "6", "--workers", "2",
           "--storage", "postgresql://postgres@127.0.0.1:5432/test", "--study-name", study, "--json", str(out)]
    proc = subprocess.run(cmd, env=_env(home), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = _pg_study(study).trials
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers contributed
    summary = json.loads(out.read_text())
    assert summary["n_complete"] + summary["n_pruned"] == 6 and summary["n_failed"] == 0
    assert summary["registered_version"] == "1"
    assert "registered dealerml-tiny v1 as challenger" in proc.stdout


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.usefixtures("optuna_pg_schema")
def test_worker_killed_mid_trial_is_failed_and_the_rest_complete(home, tmp_path):
    study = f"pytest-kill-{uuid.uuid4().hex[:10]}"
    cfg = write_config(tmp_path, {"n_startup_trials": 50, "heartbeat_interval": 1, "grace_period": 2,  # the least allowed
                                  "target": {"sleep": 0.4}})
    cmd = [sys.executable, "-u", "-c", "from training.cli import app; app(prog_name='dealerml')", "tune", "churn",
           "--config", str(cfg), "--target", "_support_tuning:tiny_target", "--trials", "6", "--workers", "2",
           "--storage", PG_URL, "--study-name", study, "--json", str(tmp_path / "s.json"), "--no-register"]
    proc = subprocess.Popen(cmd, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids, lines = _worker_pids(proc, 2)
    victim = pids[0]
    deadline = time.time() + 120
    killed_number = None
    while time.time() < deadline and killed_number is None:
        try:
            for t in _pg_study(study).trials:
                if t.state.name == "RUNNING" and t.user_attrs.get("pid") == victim and t.intermediate_values:
                    os.kill(victim, signal.SIGKILL)  # mid-trial: at least one fold reported
                    killed_number = t.number
                    break
        except KeyError:
            pass
        time.sleep(0.1)
    assert killed_number is not None, "the victim worker never ran a trial"
    rest, _ = proc.communicate(timeout=240)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output[-3000:]
    trials = {t.number: t for t in _pg_study(study).trials}
    assert trials[killed_number].state.name == "FAIL"
    assert len(trials) == len(set(trials))  # no duplicate numbers
    good = [t for t in trials.values() if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(good) == 6  # the coordinator ran the trials the dead worker owed
    assert all(t.state.name != "RUNNING" for t in trials.values())
    assert "exited with code -9" in output
    assert pids[1] in {t.user_attrs["pid"] for t in good}  # the other worker carried on


def test_an_empty_or_blank_study_name_is_refused(home, tmp_path):
    """tune --study-name "" fell back to the default name without a word, and " " started a study named by a
    space (shown as 'study   on journal file ...'); both are refused naming the option, before any work, as is
    tuning.study_name: "" in the config."""
    import yaml
    from typer.testing import CliRunner

    from training.cli import app

    cfg = write_config(tmp_path)
    base = ["tune", "churn", "--config", str(cfg), "--target", "_support_tuning:tiny_target", "--trials", "1"]
    for name in ("", " "):
        r = CliRunner().invoke(app, [*base, "--study-name", name])
        assert r.exit_code == 2, (r.output, r.exception)
        assert (f"--study-name {name!r}: expected a study name (e.g. nightly-churn), not an empty or blank one; "
                "leave out --study-name for <config name>-<model>-<time>-<suffix>") in " ".join(r.output.split()), r.output
        assert "tuning churn" not in r.output
    assert not (home / "optuna").exists()
    raw = yaml.safe_load(cfg.read_text())
    raw.setdefault("tuning", {})["study_name"] = ""
    cfg.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 2 and "tuning.study_name" in r.output and "expected a study name" in r.output, r.output


def test_two_tunes_started_in_the_same_second_get_their_own_default_study(home, tmp_path, monkeypatch):
    # CI: an experiment re-run started its tune step within the second of the first run's, and the default
    # name <config>-<model>-<time> was refused as a study "already has 3 trials", a name the user never chose
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20261128-001613")
    cfg = write_config(tmp_path)
    base = ["tune", "churn", "--config", str(cfg), "--target", "_support_tuning:tiny_target", "--trials", "1",
            "--storage", str(tmp_path / "j.log")]
    names = []
    for _ in range(2):
        r = CliRunner().invoke(app, base)
        assert r.exit_code == 0, (r.output, r.exception)
        line = next(s for s in r.output.splitlines() if s.startswith("tuning churn:"))
        names.append(line.split(" study ")[1].split(" on ")[0])
    assert names[0] != names[1], names
    assert all(n.startswith("tiny-churn-20261128-001613-") and len(n.rsplit("-", 1)[1]) == 6 for n in names), names
