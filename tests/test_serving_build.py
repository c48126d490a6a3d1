"""`bentoml build` packages the service from bentofile.yaml (containerize cannot run here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.devserver import REPO_ROOT


def _constraints() -> dict[str, str]:
    """``{normalized name: version}`` of constraints.txt's ``name==version`` lines."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_the_bento_pins_the_versions_the_models_are_trained_with():
    """bentofile.yaml listed ranges (lightgbm>=4.3,<5 ...), so a bento containerized later installed the newest
    versions in them, and the pickled boosters, calibrators and statsforecast models were read by other
    versions than the ones constraints.txt gives training (make install). Every package the bento lists is
    pinned (==) to constraints.txt's version, and every package a model records is one of them."""
    import yaml
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from training.tracking import _PIP_PACKAGES

    constraints = _constraints()
    python = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())["python"]
    assert "requirements_txt" not in python, "bentofile.yaml: the bento's packages are python.packages"
    fix = ("refresh both together: after `make install` and `.venv/bin/pip freeze --exclude-editable > "
           "constraints.txt` (see its header), set bentofile.yaml's python.packages to the same versions")
    listed, wrong = set(), []
    for line in python["packages"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        listed.add(name)
        want = constraints.get(name)
        assert want is not None, f"bentofile.yaml lists {req.name}, which constraints.txt does not pin; {fix}"
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or specs[0].version != want:
            wrong.append(f"{req.name}: bentofile.yaml has {line!r}, constraints.txt has {req.name}=={want} "
                         f"(write {req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}=={want})")
        for extra_pkg in (f"{name}-{e}" for e in req.extras):  # psycopg[binary]: psycopg-binary, same version
            if extra_pkg in constraints:
                assert constraints[extra_pkg] == want, f"constraints.txt: {extra_pkg}=={constraints[extra_pkg]} " \
                                                       f"but {name}=={want}; {fix}"
    assert not wrong, "the bento would install other versions than the models are trained with:\n  " + \
        "\n  ".join(wrong) + f"\n{fix}"
    recorded = {canonicalize_name(p) for p in _PIP_PACKAGES}
    assert recorded <= listed, (f"the models record {sorted(recorded - listed)}, which bentofile.yaml does not "
                                f"install; add them pinned to constraints.txt's versions ({fix})")
    assert python.get("lock_packages") is False  # exact pins: nothing for BentoML to lock (and no network at build)


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
    # the pins reach the bento's requirements (what containerize installs)
    reqs = (bentos[0] / "env" / "python" / "requirements.txt").read_text()
    assert "lightgbm==" in reqs and "scikit-learn==" in reqs and ">=" not in reqs, reqs
