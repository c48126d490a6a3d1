"""Issue 6 acceptance, as CI runs it: ``dealerml tune churn --trials 20 --workers 2
--storage postgresql://...`` with the REAL churn tuning target on the synthetic dealer network.

Both worker processes must contribute to one study, no trial may be lost or duplicated, and the
best configuration is registered as the ``challenger`` of ``dealerml-churn``.
(The SIGKILL-mid-trial case is in ``test_tuning.py`` on a tiny target, where the kill point
can be timed.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.usefixtures("optuna_pg_schema")
def test_tune_churn_two_workers_on_postgres(synthetic_config: Path, tmp_path: Path):
    import optuna
    from mlflow import MlflowClient

    cfg = yaml.safe_load(synthetic_config.read_text())
    base = synthetic_config.parent
    for src in cfg["data"].values():  # make the generated relative paths absolute in the copy
        if isinstance(src, dict) and "path" in src and not os.path.isabs(src["path"]):
            src["path"] = str((base / src["path"]).resolve())
    cfg["churn"] = {"horizon_days": 90, "n_train_cutoffs": 3, "train_step_days": 60,
                    "model": {"n_estimators": 100}}
    cfg["tuning"] = {"n_startup_trials": 5, "heartbeat_interval": 2, "grace_period": 10,
                     "target": {"n_folds": 2, "num_threads": 1}}
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(cfg))

    home = tmp_path / "home"
    env = {**os.environ, "DEALERML_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    study = f"pytest-churn-{uuid.uuid4().hex[:10]}"
    out = tmp_path / "summary.json"
    cmd = [str(Path(sys.executable).with_name("dealerml")), "tune", "churn", "--config", str(config),
           "--trials", "10", "--workers", "2", "--storage", "postgresql://postgres@127.0.0.1:5432/test",
           "--study-name", study, "--json", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    trials = optuna.load_study(study_name=study, storage=optuna.storages.RDBStorage(PG_URL)).trials
    assert len(trials) == 10
    assert sorted(t.number for t in trials) == list(range(10))  # none lost, none duplicated
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    pids = [t.user_attrs["pid"] for t in trials]
    assert len(set(pids)) == 2 and min(pids.count(p) for p in set(pids)) >= 3  # both workers worked

    summary = json.loads(out.read_text())
    assert summary["n_complete"] + summary["n_pruned"] == 10 and summary["n_failed"] == 0
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version_by_alias("dealerml-churn", "challenger")
    assert str(mv.version) == str(summary["registered_version"])
    # the untuned configuration is the floor: the registered challenger never scores below it
    assert summary["best_value"] >= summary["untuned_value"] - 1e-12, summary
