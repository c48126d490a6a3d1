"""A version whose registration was killed is not served: "a failed run writes nothing partial: no
registered model from a crashed run".

The first `train` of a name sets 'champion' on its own version before it marks the version complete
(tag ``dealerml.registration``). Killed in between (SIGKILL), the version stayed pending and champion,
and `dealerml serve`, `score churn` / `score dealers` (and `forecast --alias`, `monitor` ..., every
reader of ``tracking.load_model``) loaded it until the next `train` deleted it. Now they refuse it,
naming the version, the gone process and the fix (run `dealerml train ...` again), by the test the
clean-up deletes it by; a registration still running in a live process, and a version pending from
another machine within ``$DEALERML_PENDING_VERSION_TTL_HOURS``, are loaded as before.

The kill at a chosen moment follows tests/test_crash_consistency.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _support_cli import _err
from _support_kill import _wait_for
from _support_registry_kills import register_tiny
from _support_tuning import TinyModel, _client, _env, make_data

NAME = "dealerml-churn"




def _killed_after_setting_champion(home: Path, tmp_path: Path) -> int:
    """A first registration of NAME killed (SIGKILL) right after it set 'champion' on its version; checks on
    the way that the version is loaded while its registration is still running. Returns the child's pid."""
    from training import tracking

    marker = tmp_path / "champion-set"
    child = textwrap.dedent(f"""
        import time
        from pathlib import Path
        import training._tracking_registry as R
        from _support_tuning import TinyModel, make_data
        from training import tracking
        set_alias = R.set_alias
        def paused(name, alias, version):  # killed right after the first version became champion
            set_alias(name, alias, version)
            if alias == "champion":
                Path({str(marker)!r}).write_text(str(version))
                time.sleep(120)
        R.set_alias = paused
        df = make_data()
        with tracking.training_run("churn") as run:
            run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
            run.register({NAME!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], env=_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, proc, "the champion alias")
        # still registering in a live process: loaded as before (no change for a registration running now)
        _, info = tracking.load_model(NAME, "champion")
        assert info.version == "1" and info.tags["dealerml.registration"] == "pending"
        assert tracking.killed_registration(NAME) is None
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    client = _client(home)
    assert client.get_registered_model(NAME).aliases == {"champion": 1, "challenger": 1}
    assert client.get_model_version(NAME, "1").tags["dealerml.registration"] == "pending"
    return proc.pid


def test_a_first_train_killed_after_setting_champion_is_not_served_or_scored(home, tmp_path, synthetic_config,
                                                                            monkeypatch):
    from typer.testing import CliRunner

    from serving.loader import resolve_champion
    from training import tracking
    from training.cli import app
    from training.commands.serve import _check_champions
    from training.errors import ConfigError

    pid = _killed_after_setting_champion(home, tmp_path)
    said = (rf"dealerml-churn@champion is version 1, whose registration never completed: .* killed after it set "
            rf"'champion' .*\(process {pid} on .* is gone; tag dealerml.registration=pending\), so it is not used\. "
            r"Run `dealerml train churn --config \.\.\.` again: its start deletes version 1, and the version it "
            r"registers takes 'champion'")
    with pytest.raises(ConfigError, match=said):  # score churn / dealers, forecast --alias, monitor ...
        tracking.load_model(NAME, "champion")
    with pytest.raises(ConfigError, match=r"dealerml-churn@challenger is version 1, whose registration never "
                                          r"completed: .* takes 'challenger'"):  # the same version behind 'challenger'
        tracking.model_info(NAME, "challenger")
    with pytest.raises(ConfigError, match=said):  # the service's loader
        resolve_champion(NAME)
    with pytest.raises(ConfigError, match=said + r".*; then start the service again"):  # dealerml serve, at start
        _check_champions(["churn"])
    # beside a sound champion of another model: the service could serve that one alone, and is told how
    other = _client(home)
    other.create_registered_model("dealerml-dealers")
    sound = other.create_model_version("dealerml-dealers", source=str(tmp_path))
    other.set_registered_model_alias("dealerml-dealers", "champion", sound.version)
    with pytest.raises(ConfigError, match=r"; then start the service again, or serve the others only: --models dealers$"):
        _check_champions(["churn", "dealers"])

    out = tmp_path / "scores.csv"
    res = CliRunner().invoke(app, ["score", "churn", "--config", str(synthetic_config), "--cutoff", "2024-06-01",
                                   "--out", str(out)])
    msg = _err(res)
    assert "dealerml-churn@champion is version 1, whose registration never completed" in msg
    assert "(the challenger is not used in its place)" in msg and not out.exists()

    # nothing was deleted by the readers: the next run's clean-up does it, and its version is champion
    client = _client(home)
    assert [str(mv.version) for mv in client.search_model_versions(f"name='{NAME}'")] == ["1"]
    assert register_tiny() == "2"
    assert client.get_registered_model(NAME).aliases == {"champion": 2, "challenger": 2}
    _, info = tracking.load_model(NAME, "champion")
    assert info.version == "2" and info.tags["dealerml.registration"] == "complete"
    assert tracking.killed_registration(NAME) is None


def test_a_version_pending_from_another_machine_is_refused_only_past_the_ttl(home, monkeypatch):
    import mlflow

    from training import tracking
    from training.errors import ConfigError

    df = make_data()
    with tracking.training_run("churn") as run:
        uri = run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
    tags = {"dealerml.registration": "pending", "dealerml.host": "another-machine", "dealerml.pid": "1"}
    mv = mlflow.register_model(uri, NAME, tags=tags)
    _client(home).set_registered_model_alias(NAME, "champion", mv.version)
    _, info = tracking.load_model(NAME)  # its process cannot be seen from here: within the TTL, as before
    assert info.version == "1"
    monkeypatch.setenv("DEALERML_PENDING_VERSION_TTL_HOURS", "0.000001")
    time.sleep(0.01)
    with pytest.raises(ConfigError, match=r"dealerml-churn@champion is version 1, whose registration never completed: "
                                          r".*\(registered from another-machine, it has been pending for longer than "
                                          r"1e-06 h \(\$DEALERML_PENDING_VERSION_TTL_HOURS\); tag"):
        tracking.load_model(NAME)
    monkeypatch.setenv("DEALERML_PENDING_VERSION_TTL_HOURS", "12h")  # a bad value is said, as by the clean-up
    with pytest.raises(ConfigError, match=r"\$DEALERML_PENDING_VERSION_TTL_HOURS must be a positive number"):
        tracking.load_model(NAME)
