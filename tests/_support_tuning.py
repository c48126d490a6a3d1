"""Helpers shared by the tuning / registry / tracking tests: a tiny real LightGBM model and tuning
target on a few hundred time-ordered rows, and small config, environment and MLflow-client helpers.

``TinyModel``/``TinyTarget``/``tiny_target`` are used by test_tuning, test_registry, test_tracking
and others, and by worker subprocesses (``--target _support_tuning:tiny_target`` with tests/ on
PYTHONPATH). The ``home`` / ``mlflow_template_db`` fixtures they go with are in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


FEATURES = ["x1", "x2", "x3", "x4"]


def make_data(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Time-ordered rows; y depends non-linearly on x1, x2 (x3, x4 are noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    logit = 1.5 * X[:, 0] - 1.0 * X[:, 1] ** 2 + 0.8 * X[:, 0] * X[:, 1] + 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    df = pd.DataFrame(X, columns=FEATURES)
    df["t"] = np.arange(n)
    df["y"] = y
    return df


class TinyModel:
    """A scikit-learn-style LightGBM classifier with save/load, for registry tests."""

    def __init__(self, n_estimators: int = 30, num_leaves: int = 8, learning_rate: float = 0.1,
                 min_child_samples: int = 10, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.random_state = random_state

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("n_estimators", "num_leaves", "learning_rate",
                                              "min_child_samples", "random_state")}

    def fit(self, X: pd.DataFrame, y) -> TinyModel:
        import lightgbm as lgb

        self.booster_ = lgb.train(
            {"objective": "binary", "num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
             "min_child_samples": self.min_child_samples, "seed": self.random_state, "verbose": -1,
             "num_threads": 1, "deterministic": True, "force_row_wise": True},
            lgb.Dataset(X[FEATURES], label=np.asarray(y)),
            num_boost_round=self.n_estimators,
        )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "booster_"):
            raise RuntimeError("TinyModel is not fitted; call fit first")
        return self.booster_.predict(X[FEATURES], num_threads=1)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True)
        self.booster_.save_model(str(path / "booster.txt"))
        (path / "params.json").write_text(json.dumps(self.get_params()))

    @classmethod
    def load(cls, path: Path) -> TinyModel:
        import lightgbm as lgb

        path = Path(path)
        m = cls(**json.loads((path / "params.json").read_text()))
        m.booster_ = lgb.Booster(model_file=str(path / "booster.txt"))
        return m


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


class TinyTarget:
    """A TuningTarget on ``make_data``: 3 rolling-origin folds of 50 rows after cutoffs 200/250/300."""

    metric = "auc"
    direction = "maximize"
    n_folds = 3
    default_params = {"n_estimators": 30, "num_leaves": 31, "learning_rate": 0.1, "min_child_samples": 20}

    def __init__(self, name: str = "tiny", sleep: float = 0.0, data_seed: int = 0) -> None:
        self.name = name
        self.sleep = sleep
        self.df = make_data(seed=data_seed)
        self.cutoffs = [200, 250, 300]
        self.input_example = self.df[FEATURES].head(5)
        self.model_metadata = {"training_window": [0, 350]}

    def space(self, trial) -> dict:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 5, 60),
            "num_leaves": trial.suggest_int("num_leaves", 2, 32),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 60),
        }

    def score_fold(self, params: dict, fold: int) -> float:
        c = self.cutoffs[fold]
        train, test = self.df.iloc[:c], self.df.iloc[c : c + 50]
        m = TinyModel(**params).fit(train, train["y"])
        if self.sleep:
            time.sleep(self.sleep)
        return _auc(test["y"], m.predict_proba(test))

    def evaluate(self, estimator) -> dict:
        test = self.df.iloc[350:]
        return {"auc": _auc(test["y"], estimator.predict_proba(test))}

    def fit_final(self, params: dict):
        train = self.df.iloc[:350]
        m = TinyModel(**params).fit(train, train["y"])
        return m, self.evaluate(m)


def tiny_target(cfg, book=None) -> TinyTarget:
    opts = dict((cfg.tuning or {}).get("target") or {})
    return TinyTarget(name=opts.get("name", "tiny"), sleep=float(opts.get("sleep", 0.0)))


def tiny_evaluator(cfg, book=None):
    return TinyTarget().evaluate


def nan_figure_evaluator(cfg, book=None):
    """tiny_evaluator's figure plus an undefined one (NaN), as the dealers' top_decile_net_growth_share of a
    book whose net growth is negative (the synthetic demo's)."""
    target = TinyTarget()
    return lambda estimator: {**target.evaluate(estimator), "top_decile_net_growth_share": float("nan")}


def write_config(tmp_path: Path, tuning: dict | None = None, extra: str = "") -> Path:
    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-01,a,s,1,1\n")
    cfg = {"name": "tiny", "seed": 7, "data": {"order_lines": {"path": str(csv)}}}
    if tuning is not None:
        cfg["tuning"] = tuning
    import yaml

    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(cfg) + extra)
    return p


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env["DEALERML_HOME"] = str(home)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _client(home: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class _CrippledTarget(TinyTarget):
    """Its search space only holds near-useless models, so the untuned defaults must win."""

    def space(self, trial) -> dict:
        return {"n_estimators": trial.suggest_int("n_estimators", 1, 2), "num_leaves": 2,
                "learning_rate": trial.suggest_float("learning_rate", 1e-4, 2e-4), "min_child_samples": 150}


def _worker_pids(proc: subprocess.Popen, n: int) -> tuple[list[int], list[str]]:
    """The pids of the first ``n`` workers a ``dealerml tune`` coordinator reports starting, and
    the lines it printed until then."""
    pids: list[int] = []
    lines: list[str] = []
    while len(pids) < n:
        line = proc.stdout.readline()
        assert line, "coordinator ended before starting workers:\n" + "".join(lines)
        lines.append(line)
        if line.startswith("worker ") and "(pid " in line:
            pids.append(int(line.split("(pid ")[1].split(")")[0]))
    return pids, lines
