"""`bentoml build` packages the service from bentofile.yaml (containerize cannot run here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.devserver import REPO_ROOT


@pytest.mark.slow
def test_bentoml_build_succeeds_and_packages_the_code(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    exe = str(Path(sys.executable).with_name("bentoml"))
    res = subprocess.run([exe, "build", str(REPO_ROOT), "--output", "tag"], cwd=str(REPO_ROOT), env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "dealerml").glob("*/"))
    assert len(bentos) == 1
    src = bentos[0] / "src"
    for rel in ("serving/service.py", "serving/auth.py", "features/accounts.py", "models/churn.py",
                "training/tracking.py", "training/synthetic/__init__.py", "experiments/default.yaml"):
        assert (src / rel).is_file(), rel
    assert not list(src.rglob("*.db")) and not (src / "tests").exists() and not (src / "data").exists()
    bento_yaml = (bentos[0] / "bento.yaml").read_text()
    assert "serving.service:DealerML" in bento_yaml and "OMP_NUM_THREADS" in bento_yaml
