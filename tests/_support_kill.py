"""Killing a child process at a chosen moment: it creates a file when it gets there, and the test waits
for that file (tests/test_crash_consistency.py, tests/test_half_registered.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def _wait_for(path: Path, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    """Wait until ``path`` exists; fail naming ``what`` if ``proc`` ends first or ``timeout`` s pass."""
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended (rc {proc.returncode}) before {what}: {proc.stderr.read()}")
        assert time.time() < deadline, f"the child never reached {what}"
        time.sleep(0.05)
