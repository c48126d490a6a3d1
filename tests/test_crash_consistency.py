"""Crash consistency of the writers the other files do not kill for real: "a failed run writes nothing
partial: no half-written tables, no registered model from a crashed run".

* `train` killed (SIGKILL, SIGTERM) while registering, after its pending version took the 'challenger'
  alias: `promote` then scored that version, its evidence run's clean-up deleted it, and writing the
  decision ended in MLflow's 'Model Version ... not found' traceback; and the alias the killed run had
  taken was lost with its version, so the challenger waiting for `promote` had none.
* `features build` killed (SIGKILL, SIGTERM): its half-written ``.OUT.tmp-PID`` folder stayed beside
  OUT for good (each run names its folder by its own pid, so no later run reused it).
* the shared file writer of `forecast` / `safety-stock` / `backtest --json` / `simulate --json`
  (``write_files``) SIGTERM'd mid-write: its half-written ``.NAME.tmp`` stayed beside the output.

Covered elsewhere: score tables and files (tests/test_scores.py), a training run killed inside its
block (tests/test_tracking.py), tune (tests/test_tuning.py, tests/test_ds_workflow_audit.py),
registry races (tests/test_registry_race.py), alerts run together (tests/test_alerts.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _support_kill import _wait_for
from _support_tuning import ROOT, TinyModel, TinyTarget, _client, _env, make_data

NAME = "dealerml-churn"


def _register() -> None:
    from training import tracking

    df = make_data()
    with tracking.training_run("churn") as run:
        run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
        run.register(NAME)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_train_killed_while_registering_leaves_the_challenger_promote_expects(home, tmp_path, sig):
    _register()  # v1: champion (and challenger)
    _register()  # v2: the challenger waiting for promote
    marker = tmp_path / "alias-moved"
    child = textwrap.dedent(f"""
        import time
        from pathlib import Path
        import training._tracking_registry as R
        from _support_tuning import TinyModel, make_data
        from training import tracking
        set_alias_on = R.set_alias_on
        def paused(client, name, alias, version, **kw):  # killed right after the alias moved to its version
            set_alias_on(client, name, alias, version, **kw)
            Path({str(marker)!r}).write_text(version)
            time.sleep(120)
        R.set_alias_on = paused
        df = make_data()
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
            run.register({NAME!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], env=_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, proc, "the registration")
        client = _client(home)
        assert client.get_registered_model(NAME).aliases == {"champion": 1, "challenger": 3}
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    aliases = client.get_registered_model(NAME).aliases
    if sig == signal.SIGTERM:  # unwound: the version is deleted and the alias given back at once
        assert aliases == {"champion": 1, "challenger": 2}
        assert sorted(int(mv.version) for mv in client.search_model_versions(f"name='{NAME}'")) == [1, 2]
    else:  # nothing ran: v3 stays pending, holding the alias, until a command drops it
        assert aliases == {"champion": 1, "challenger": 3}

    from training import registry

    decision = registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate)
    assert decision.challenger_version == "2" and decision.champion_version == "1"
    assert sorted(int(mv.version) for mv in client.search_model_versions(f"name='{NAME}'")) == [1, 2]
    assert client.get_registered_model(NAME).aliases["champion"] == (2 if decision.promoted else 1)
    _register()  # and the next run registers as usual
    assert client.get_registered_model(NAME).aliases["challenger"] == 4


def test_a_pending_challenger_without_a_previous_one_is_named_by_promote(home, tmp_path):
    """The first `train` after the champion's killed while registering: promote has nothing to score and says
    why, instead of scoring a version about to be deleted."""
    from training import registry, tracking
    from training.errors import ConfigError

    df = make_data()
    with tracking.training_run("churn") as run:
        uri = run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    from training._tracking_cleanup import _process_tags

    tags = {**_process_tags(), "dealerml.pid": str(gone.pid), "dealerml.registration": "pending"}
    import mlflow

    mv = mlflow.register_model(uri, NAME, tags=tags)
    client = _client(home)
    client.set_registered_model_alias(NAME, "champion", mv.version)
    client.set_registered_model_alias(NAME, "challenger", mv.version)
    with pytest.raises(ConfigError, match=r"has no 'challenger' version .*\(v1 of a training run killed while "
                                        r"registering it was dropped"):
        registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate)


def _features(config: Path, out: Path, cutoff: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "dealerml"), "features", "build", "--config", str(config),
                             "--cutoff", cutoff, "--out", str(out), "--no-progress"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_features_build_leaves_its_previous_output_and_no_half_folder(synthetic_config, tmp_path, sig):
    out = tmp_path / "feats"
    first = _features(synthetic_config, out, "2024-01-01")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    proc = _features(synthetic_config, out, "2024-02-01")
    try:
        _wait_for(tmp_path / f".feats.tmp-{proc.pid}" / "account_features.parquet", proc, "its first table")
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -sig  # killed mid-build, not finished
    assert json.loads((out / "manifest.json").read_text())["cutoff"] == "2024-01-01"  # the previous output
    left = sorted(p.name for p in tmp_path.iterdir())
    if sig == signal.SIGTERM:  # unwound: the half folder removed at once, and no traceback
        assert left == ["feats"] and "Traceback" not in proc.stderr.read()
    else:  # nothing can run on SIGKILL: the next build of the same OUT removes it
        assert left == [f".feats.tmp-{proc.pid}", "feats"]
    again = _features(synthetic_config, out, "2024-02-01")
    assert again.wait(timeout=120) == 0, again.stderr.read()
    assert json.loads((out / "manifest.json").read_text())["cutoff"] == "2024-02-01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats"]


def test_a_build_killed_between_its_two_renames_gets_its_previous_output_back(tmp_path):
    """Killed after moving OUT aside (``.OUT.old-PID``) and before the new one took its place, OUT was gone;
    the next build of OUT puts the previous output back first. A live build's folders are left alone."""
    from training.commands.features import _clean_after_killed_builds

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    old, half, live = (tmp_path / f".feats.old-{gone.pid}", tmp_path / f".feats.tmp-{gone.pid}",
                       tmp_path / f".feats.tmp-{os.getpid()}")
    for d in (old, half, live):
        d.mkdir()
    (old / "manifest.json").write_text('{"cutoff": "2024-01-01"}')
    _clean_after_killed_builds(tmp_path / "feats")
    assert json.loads((tmp_path / "feats" / "manifest.json").read_text())["cutoff"] == "2024-01-01"
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "feats"]


_WRITER = """
import sys, time
from pathlib import Path
from training.commands._common import write_files
def slow(tmp):  # half the file written, then a wait: SIGTERM lands mid-write
    tmp.write_text("unique_id,ds,forecast\\n" + "A,2024-01-01,1\\n" * 1000)
    print("half", flush=True)
    time.sleep(60)
write_files([(Path(sys.argv[1]), slow)])
"""


def test_a_sigterm_mid_write_of_a_command_output_leaves_no_temp_file(tmp_path):
    out = tmp_path / "forecast.csv"
    out.write_text("unique_id,ds,forecast\nOLD,2024-01-01,1\n")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "half"
        assert (tmp_path / ".forecast.csv.tmp").exists()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM and "Traceback" not in proc.stderr.read()
    assert out.read_text() == "unique_id,ds,forecast\nOLD,2024-01-01,1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecast.csv"]


def test_an_interrupt_between_the_two_renames_puts_the_previous_output_back(tmp_path, monkeypatch):
    """features build replaces OUT by two renames (OUT aside, the new folder in). A SIGTERM (KeyboardInterrupt)
    or an OSError between them deleted the finished folder in its clean-up and left OUT missing until the
    next build; the previous OUT is put back now."""
    import os

    from training.commands import features as cmd

    out, tmp = tmp_path / "feat", tmp_path / ".feat.tmp-1"
    out.mkdir()
    (out / "manifest.json").write_text("old")  # a previous build's output
    tmp.mkdir()
    (tmp / "manifest.json").write_text("new")
    real, calls = os.replace, []

    def interrupted(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new folder's move into place
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(cmd.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cmd._replace_dir(tmp, out)
    assert [p.name for p in out.iterdir()] == ["manifest.json"] and (out / "manifest.json").read_text() == "old"
