"""The BUILT bento served as a container runs it: ``bentoml serve <bento folder>`` started from outside the
repo, with the bento's own ``envs`` (bentofile.yaml: DEALERML_CONFIG=experiments/default.yaml,
OMP_NUM_THREADS) and the dealerml package NOT importable from the checkout.

The other serving tests start ``bentoml serve serving.service:DealerML`` in the repo, and
test_serving_build only lists the bento's files, so none of them would notice a module the bento leaves
out (a new top-level package, a data file beside the code) or an env value that does not resolve inside
the bento: in this venv the editable install finds every dealerml module in the checkout whatever the
bento holds (and `bentoml serve` in the repo finds any other top-level folder of it). Here a
``sitecustomize`` drops that finder and records every module looked for and not found whose top-level
package is a folder or file of the checkout, so the service runs from the bento's ``src`` only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from serving.auth import KeyConfigError, load_keyring
from serving.devserver import REPO_ROOT, free_port, prepare_home

ADMIN_KEY = "adm-key-000001"

_NO_CHECKOUT = '''\
import os, sys
# the container has no dealerml package installed: only the bento's src (the worker's cwd) holds it
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
_CHECKOUT = os.environ["DEALERML_TEST_CHECKOUT"]


def _in_checkout(top):
    return os.path.isdir(os.path.join(_CHECKOUT, top)) or os.path.isfile(os.path.join(_CHECKOUT, top + ".py"))


class _Missing:
    """Records a module not found whose top-level package the checkout holds (serving, tests, bench ...)."""

    def find_spec(self, name, path=None, target=None):
        if _in_checkout(name.split(".")[0]) and not any(
                f is not self and hasattr(f, "find_spec") and f.find_spec(name, path, target) is not None
                for f in sys.meta_path):
            with open(os.environ["DEALERML_TEST_MISSING_LOG"], "a") as fh:
                fh.write(f"{name}\\n")
        return None

sys.meta_path.insert(0, _Missing())


_AT_START = set(sys.modules)  # site's own (a .pth's _distutils_hack): not the process's imports


def _dump_modules():  # the files of every module this process imported, for the package check, each 0.5 s
    # (a worker is stopped without running atexit)
    import time
    out = os.path.join(os.environ["DEALERML_TEST_MODULES_DIR"], str(os.getpid()))
    while True:
        with open(out + ".tmp", "w") as fh:
            fh.writelines(f"{getattr(m, '__file__', None)}\\n" for n, m in list(sys.modules.items())
                          if n not in _AT_START)
        os.replace(out + ".tmp", out)
        time.sleep(0.5)


import threading

threading.Thread(target=_dump_modules, daemon=True).start()
'''


def _not_installed_by_the_bento(files: list[str]) -> list[str]:
    """The distributions of site-packages modules among ``files`` that bentofile.yaml's packages (and their
    requirements, as installed here) do not bring: a container would not have them."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo = [Requirement(p) for p in yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())["python"]["packages"]]
    brought: set[str] = set()
    while todo:
        req = todo.pop()
        if canonicalize_name(req.name) in brought:
            continue
        brought.add(canonicalize_name(req.name))
        try:
            requires = md.distribution(req.name).requires or []
        except md.PackageNotFoundError:
            continue
        for line in requires:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(sub)
    owners = md.packages_distributions()
    missing = set()
    for f in files:
        if "site-packages/" not in f:
            continue
        top = f.split("site-packages/", 1)[1].split("/", 1)[0].split(".", 1)[0]
        dists = owners.get(top, [])
        if dists and not any(canonicalize_name(d) in brought for d in dists):
            missing.update(dists)
    return sorted(missing)


def test_a_relative_keys_file_that_is_missing_is_named_where_it_was_looked_for(tmp_path, monkeypatch):
    """A bento's worker runs in the bento's src folder: DEALERML_API_KEYS_FILE=keys.txt, found by
    `dealerml serve` in the folder it was started from, was 'cannot read the keys file' with no hint where."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyConfigError) as err:
        load_keyring({"DEALERML_API_KEYS_FILE": "keys.txt"})
    assert str(err.value) == (
        f"DEALERML_API_KEYS_FILE=keys.txt: cannot read the keys file {tmp_path / 'keys.txt'} (a relative path is "
        f"read from the service's working directory {tmp_path}, which for a bento is its src folder; give an "
        "absolute path) (No such file or directory)")
    with pytest.raises(KeyConfigError) as err:  # an absolute path is the path: nothing added
        load_keyring({"DEALERML_API_KEYS_FILE": str(tmp_path / "keys.txt")})
    assert str(err.value) == f"DEALERML_API_KEYS_FILE={tmp_path / 'keys.txt'}: cannot read the keys file (No such file or directory)"


def _build(bentoml_home: Path, out: dict) -> None:
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "True"}
    res = subprocess.run([str(Path(sys.executable).with_name("bentoml")), "build", str(REPO_ROOT), "--output", "tag"],
                         cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=300)
    out["build"] = res


@pytest.mark.slow
def test_the_built_bento_serves_from_its_own_src_with_its_own_envs(tmp_path, mlflow_template_db):
    home, bentoml_home = tmp_path / "home", tmp_path / "bentoml"
    home.mkdir()
    shutil.copy(mlflow_template_db, home / "mlflow.db")  # the migrations, done once per session
    built: dict = {}
    builder = threading.Thread(target=_build, args=(bentoml_home, built))
    builder.start()  # the build (~10 s, mostly one core idle) beside the training
    prepare_home(home)  # writes $DEALERML_HOME/synthetic, where experiments/default.yaml reads the book
    builder.join()
    res = built["build"]
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (bento,) = (bentoml_home / "bentos" / "dealerml").glob("*/")
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    envs = {e["name"]: str(e["value"]) for e in info["envs"]}
    assert envs == {"OMP_NUM_THREADS": "1", "DEALERML_CONFIG": "experiments/default.yaml"}
    assert (bento / "src" / envs["DEALERML_CONFIG"]).is_file()  # the baked-in config is inside the bento

    site, missing, modules = tmp_path / "site", tmp_path / "missing.log", tmp_path / "modules"
    site.mkdir()
    modules.mkdir()
    (site / "sitecustomize.py").write_text(_NO_CHECKOUT)
    outside = tmp_path / "elsewhere"  # not the repo: nothing may be read relative to the checkout
    outside.mkdir()
    port = int(os.environ.get("DEALERML_TEST_BENTO_PORT") or free_port())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        **envs,  # what the container's Dockerfile sets (ENV) from the bento's envs
        "BENTOML_HOME": str(tmp_path / "bentoml-serve"), "BENTOML_DO_NOT_TRACK": "True", "PYTHONUNBUFFERED": "1",
        "DEALERML_HOME": str(home), "DEALERML_API_KEYS": f"{ADMIN_KEY}:*",
        "PYTHONPATH": str(site), "DEALERML_TEST_MISSING_LOG": str(missing), "DEALERML_TEST_CHECKOUT": str(REPO_ROOT),
        "DEALERML_TEST_MODULES_DIR": str(modules),
        "DEALERML_SERVE_CHAMPION_CHECK_SECONDS": "0", "OMP_WAIT_POLICY": "PASSIVE",
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("bentoml")), "serve", str(bento),
                                 "--host", "127.0.0.1", "--port", str(port)],
                                cwd=str(outside), env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url, hdr = f"http://127.0.0.1:{port}", {"X-API-Key": ADMIN_KEY}
    try:
        deadline, last = time.monotonic() + 180, "no answer"
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"bentoml serve exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                r = httpx.get(url + "/readyz", headers=hdr, timeout=5)
                if r.status_code == 200:
                    break
                last = r.text
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.5)
        else:
            raise AssertionError(f"/readyz not 200 after 180 s: {last}\n{log.read_text()[-3000:]}")

        assert httpx.get(url + "/docs.json").json()["info"]["version"] == bento.name  # the bento's code answers
        model_info = httpx.get(url + "/model_info", headers=hdr, timeout=30).json()
        assert model_info["config"] == "experiments/default.yaml"
        assert [(m["name"], m["status"], m["version"]) for m in model_info["models"]] == [
            ("dealerml-demand", "ready", "1"), ("dealerml-churn", "ready", "1"), ("dealerml-dealers", "ready", "1")]
        assert f"{bento / 'src' / 'experiments' / 'default.yaml'}" in log.read_text()  # resolved in the bento

        fc = httpx.post(url + "/forecast", json={"location": ["DC1"], "horizon": 2}, headers=hdr, timeout=60).json()
        series = [s["unique_id"] for s in fc["series"]]
        assert len(series) == 60 and all(s.endswith("/DC1") for s in series)  # prepare_home: 60 SKUs, DC1 + DC2
        ss = httpx.post(url + "/safety_stock", json={"series_ids": series[:2], "lead_time_days": 7},
                        headers=hdr, timeout=60)
        assert ss.status_code == 200, ss.text
        dealers = httpx.post(url + "/dealer_scores", json={"top_k": 3}, headers=hdr, timeout=60).json()
        assert dealers["matched"] == 200 and len(dealers["dealers"]) == 3  # prepare_home: 200 accounts
        ids = [d["account_id"] for d in dealers["dealers"]]
        churn = httpx.post(url + "/churn_scores", json={"account_ids": ids}, headers=hdr, timeout=60).json()
        assert sorted(s["account_id"] for s in churn["scores"]) == sorted(ids)
        assert all(0.0 <= s["probability"] <= 1.0 for s in churn["scores"])
        alerts = httpx.get(url + "/churn_alerts", headers=hdr, timeout=60)
        assert alerts.status_code == 200 and alerts.json()["count"] == 0  # `dealerml alerts` has not run
        time.sleep(1.5)  # the modules the requests imported are in the dumps
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
    looked_for = sorted(set(missing.read_text().split())) if missing.exists() else []
    assert "Error in sitecustomize" not in log.read_text()  # else the checkout stayed importable
    assert looked_for == [], f"the bento's service looked for modules the bento does not hold: {looked_for}"
    files = [f for dump in modules.iterdir() for f in dump.read_text().split()]
    assert any(f.startswith(str(bento / "src" / "models")) for f in files)  # the worker's modules were dumped
    assert _not_installed_by_the_bento(files) == [], "the service imports packages bentofile.yaml does not install"
    assert not list((bento / "src").rglob("*.db")) and not (bento / "src" / "data").exists()  # nothing written in it
