"""Children for tests/test_registry_kills.py: each runs what a dealerml command runs, paused at a chosen
moment (it writes a marker file there, then sleeps) so the test can kill it (tests/_support_kill.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from _support_tuning import _env

NAME = "dealerml-churn"

_REGISTER = f"""
from _support_tuning import TinyModel, make_data
from training import tracking
df = make_data()
with tracking.training_run("churn") as run:
    run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
    run.register({NAME!r})
"""


def register_tiny(name: str = NAME) -> str:
    """Register a tiny churn model in this process's store (``$DEALERML_HOME``); its version."""
    from _support_tuning import TinyModel, make_data

    from training import tracking

    df = make_data()
    with tracking.training_run("churn") as run:
        run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
        run.register(name)
    return run.registered[0][1]


def start(home: Path, code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def registering(home: Path, paused: Path, waiting: Path | None = None) -> subprocess.Popen:
    """A `train` whose registration pauses right after it moved 'challenger' to its version (under the registry
    lock); ``waiting``: written when it is about to take that lock."""
    return start(home, textwrap.dedent(f"""
        import time
        from pathlib import Path
        import training._tracking_registry as R
        set_alias_on, lock = R.set_alias_on, R.registry_lock
        def paused(client, name, alias, version, **kw):
            set_alias_on(client, name, alias, version, **kw)
            Path({str(paused)!r}).write_text(str(version))
            time.sleep(120)
        def announced(name):
            if {str(waiting) if waiting else ''!r}:
                Path({str(waiting)!r}).write_text("x")
            return lock(name)
        R.set_alias_on, R.registry_lock = paused, announced
    """) + _REGISTER)


def cleaning(home: Path, waiting: Path) -> subprocess.Popen:
    """What a training run's start does first (``drop_incomplete_versions``), announcing when it has listed the
    versions and waits for the registry lock."""
    return start(home, f"""
        from pathlib import Path
        import training._tracking_locks as L
        from training import tracking
        lock = L.registry_lock
        def announced(name):
            Path({str(waiting)!r}).write_text("x")
            return lock(name)
        L.registry_lock = announced
        print(tracking.drop_incomplete_versions(tracking._configure()))
    """)


def moving(home: Path, paused: Path, call: str, *, before: bool = False) -> subprocess.Popen:
    """``registry.<call>`` pausing right after it moved 'champion' (``before``: right before)."""
    return start(home, f"""
        import time
        from pathlib import Path
        from _support_tuning import TinyTarget
        from training import registry, tracking
        set_alias = tracking.set_alias
        def paused(name, alias, version):
            if not {before!r}:
                set_alias(name, alias, version)
            if alias == "champion":
                Path({str(paused)!r}).write_text(str(version))
                time.sleep(120)
        tracking.set_alias = paused
        registry.{call}
    """)


_WRITER = f"""
import sys, time
from pathlib import Path
import training.commands._common as C
from _support_tuning import TinyModel, make_data
from training import tracking
rename = C._rename_together
def paused(staged):  # registered; the report not yet in place
    Path(sys.argv[2]).write_text("x")
    time.sleep(120)
    return rename(staged)
C._rename_together = paused
df = make_data()
# what `dealerml train churn --json OUT` does (training/commands/churn.py)
with C.staged_outputs() as staged, tracking.training_run("churn") as run:
    run.log_model(TinyModel(n_estimators=5).fit(df, df["y"]))
    run.register({NAME!r})
    staged += C.stage_files([(Path(sys.argv[1]), C.json_writer({{"auc": 0.9}}))])
C.commit_files(staged)
"""


def train_json(home: Path, out: Path, paused: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(out), str(paused)], env=_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
