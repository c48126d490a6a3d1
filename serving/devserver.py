"""Run a real ``bentoml serve`` of the dealerml service in a subprocess (tests, benchmarks).

``with LocalServer(env={...}) as srv: srv.url`` picks a free port on 127.0.0.1, starts
``bentoml serve serving.service:DealerML``, waits until ``/livez`` answers and, unless
``wait_ready=False``, until ``/readyz`` answers 200; the server's combined log is kept in a
file (``srv.log_text()``) so callers can check what it said. On exit the process group is
terminated (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

__all__ = ["free_port", "LocalServer", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """A ``bentoml serve`` subprocess bound to 127.0.0.1 on a free port."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        wait_ready: bool = True,
        timeout: float = 180.0,
        log_path: Path | None = None,
        via_cli: bool = False,
    ) -> None:
        self.via_cli = via_cli  # start with `dealerml serve` instead of `bentoml serve`
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self.env.setdefault("BENTOML_DO_NOT_TRACK", "True")
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self._own_bentoml_home = None
        if "BENTOML_HOME" not in (env or {}):
            self._own_bentoml_home = tempfile.mkdtemp(prefix="bentoml-home-")
            self.env["BENTOML_HOME"] = self._own_bentoml_home
        self.wait_ready = wait_ready
        self.timeout = timeout
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="dealerml-serve-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LocalServer:
        # free_port() closes its socket before the server binds, so another process (a second
        # pytest worker, a benchmark) can take the port in between: retry on a fresh port then
        for attempt in range(3):
            try:
                return self._start()
            except RuntimeError as err:
                if attempt == 2 or "address already in use" not in str(err).lower():
                    raise
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
                if self._own_bentoml_home:  # __exit__ removed it
                    os.makedirs(self._own_bentoml_home, exist_ok=True)
        raise AssertionError("unreachable")

    def _start(self) -> LocalServer:
        if self.via_cli:
            argv = [str(Path(sys.executable).with_name("dealerml")), "serve"]
        else:
            argv = [str(Path(sys.executable).with_name("bentoml")), "serve", "serving.service:DealerML"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            argv,
            cwd=str(REPO_ROOT),
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_for("/livez")
            if self.wait_ready:
                self.wait_for("/readyz")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def wait_for(self, path: str, timeout: float | None = None) -> None:
        """Poll ``path`` until it answers 200; raise with the server log tail otherwise."""
        deadline = time.monotonic() + (timeout or self.timeout)
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"bentoml serve exited with {self.proc.returncode}; log:\n{self.log_tail()}"
                )
            try:
                r = httpx.get(self.url + path, timeout=2.0)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as err:
                last = type(err).__name__
            time.sleep(0.25)
        raise TimeoutError(f"{self.url}{path} not 200 after {timeout or self.timeout:.0f}s ({last}); log:\n{self.log_tail()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self._own_bentoml_home:
            import shutil

            shutil.rmtree(self._own_bentoml_home, ignore_errors=True)


TINY_SETTINGS = {
    "demand": {
        "freq": "W",
        "horizon": 8,
        "windows": 1,
        "selection_windows": 1,  # one origin less to fit than the default 2 (the suite's time budget)
        # No AutoETS: its per-series fits were 2/3 of `train demand`'s CPU here and no test asks for that
        # member. Chosen per series, so the champion still serves a mix (LightGBM, which reads the promo
        # driver, and statsforecast members): by class, LightGBM won every class without AutoETS.
        "models": ["SeasonalNaive", "CrostonSBA", "LightGBM"],
        "selection": "series",
        "lgbm": {"n_estimators": 30},
        "n_sims": 1000,
        "lead_time_days": 14.0,
        "drivers": ["promo"],  # as experiments/default.yaml: planned promotions are a known-future driver
    },
    "churn": {"n_train_cutoffs": 2, "model": {"n_estimators": 40}, "tiers": {"capacity_per_run": 20}},
    "dealers": {"train": {"n_cutoffs": 2, "n_estimators": 30}},
}
"""Small model settings so a whole home trains in well under a minute on 2 cores."""


def _dealerml(*commands: list[str], env: dict[str, str], log: Path) -> None:
    """Run ``dealerml <args>`` for each of ``commands``, in order, in ONE child process (the real
    CLI app, as ``dealerml`` runs it): each ``dealerml`` process paid ~4 CPU-s of interpreter and
    imports (pandas, MLflow, LightGBM, statsforecast) before its work. Output goes to ``log``; the
    first command that fails stops the rest and raises with the log's tail."""
    import json

    with open(log, "ab") as fh:
        res = subprocess.run([sys.executable, "-m", "serving.devserver", json.dumps(commands)], cwd=str(REPO_ROOT),
                             env=env, stdout=fh, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()
        failed = next((x[2:] for x in reversed(lines) if x.startswith("$ dealerml ")), "dealerml")
        tail = "\n".join(lines[-40:])
        raise RuntimeError(f"{failed} failed with exit code {res.returncode}:\n{tail}")


def _run_commands(commands: list[list[str]]) -> int:
    """The child of :func:`_dealerml`: the commands through ``training.cli.app`` one after another."""
    from training.cli import app

    for args in commands:
        print(f"\n$ dealerml {' '.join(args)}", flush=True)
        try:
            app(args=args, prog_name="dealerml")
        except SystemExit as done:  # click ends every standalone run with sys.exit
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if code != 0:
                return code
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def prepare_home(
    home: Path,
    *,
    n_accounts: int = 200,
    n_skus: int = 60,
    seed: int = 7,
    models: tuple[str, ...] = ("demand", "churn", "dealers"),
    settings: dict | None = None,
) -> Path:
    """Generate a synthetic network under ``home`` and train + register each model's champion.

    Uses the real CLI (``dealerml data generate``, then every ``dealerml train <model>`` in one
    child process) against the MLflow store of ``DEALERML_HOME=home``. Returns the experiment config the service should
    read. The first registered version of each model becomes its ``champion``.
    """
    import yaml

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEALERML_HOME": str(home), "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": ""}
    env.pop("MLFLOW_TRACKING_URI")
    log = home / "prepare.log"
    syn = home / "synthetic"
    _dealerml(
        ["data", "generate", "--out", str(syn), "--seed", str(seed), "--accounts", str(n_accounts),
         "--skus", str(n_skus), "--locations", "2", "--start", "2022-01-01", "--end", "2024-06-30"],
        env=env,
        log=log,
    )
    cfg = yaml.safe_load((syn / "config.yaml").read_text())
    cfg["name"] = "serving-test"
    for key, section in (settings or TINY_SETTINGS).items():
        cfg[key] = section
    config = syn / "serving.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    _dealerml(*(["train", model, "--config", str(config), *(["--no-replay"] if model == "demand" else [])]
                for model in models), env=env, log=log)
    return config


if __name__ == "__main__":  # python -m serving.devserver '<json list of dealerml argument lists>'
    import json

    sys.exit(_run_commands(json.loads(sys.argv[1])))
