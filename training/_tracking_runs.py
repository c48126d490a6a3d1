"""The runs of a ``dealerml-<kind>`` experiment as ``dealerml experiment compare`` shows them
(:func:`list_runs`). Private to the MLflow adapter (:mod:`training.tracking`, which re-exports these
names). Nothing is configured at import time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from training._tracking_store import _configure
from training._tracking_uri import shown_tracking_uri
from training.errors import ConfigError


@dataclass(frozen=True)
class RunSummary:
    """One run of ``dealerml-<kind>`` as ``dealerml experiment compare`` shows it."""

    run_id: str
    name: str
    status: str
    started: str  # UTC, "YYYY-MM-DD HH:MM"
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    registered: tuple[str, ...]  # e.g. ("v2 @challenger",)


def _all_runs(client: Any, experiment_id: str, page: int = 1000):
    """Every run of the experiment, newest first, read a page at a time."""
    token = None
    while True:
        batch = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=page,
                                   page_token=token)
        yield from batch
        token = getattr(batch, "token", None)
        if not token:
            return


def _elsewhere(client: Any, rid: str, kind: str) -> str:
    """Where a run id that is not one of ``dealerml-<kind>``'s is ('; it is a run of dealerml-dealers ...'), or ''."""
    for other in ("demand", "churn", "dealers", "experiment"):
        exp = client.get_experiment_by_name(f"dealerml-{other}") if other != kind else None
        if exp is not None and any(r.info.run_id.startswith(rid) for r in _all_runs(client, exp.experiment_id)):
            what = ("an experiment's parent run (its steps' runs are in dealerml-demand / -churn / -dealers)"
                    if other == "experiment" else f"compare it with `dealerml experiment compare {other}`")
            return f"; it is a run of dealerml-{other}: {what}"
    return ""


def list_runs(kind: str, *, last: int = 5, run_ids: tuple[str, ...] = ()) -> list[RunSummary]:
    """The newest ``last`` top-level runs of ``dealerml-<kind>`` (tuning trials left out), or the
    runs named by ``run_ids`` (full ids or unique prefixes, any run of the experiment), in that
    order. Raises ConfigError when the experiment, or a named run, does not exist."""
    client = _configure()
    exp = client.get_experiment_by_name(f"dealerml-{kind}")
    if exp is None:
        raise ConfigError(f"no dealerml-{kind} runs in {shown_tracking_uri()}: train one first (dealerml train {kind} ...)")
    if run_ids:
        every = list(_all_runs(client, exp.experiment_id))
        runs = []
        for rid in run_ids:
            hits = [r for r in every if r.info.run_id.startswith(rid)]
            if len(hits) != 1:
                what = "no run" if not hits else f"{len(hits)} runs"
                raise ConfigError(f"--run {rid}: {what} of dealerml-{kind} in {shown_tracking_uri()} start(s) with that id"
                                  + ("; give more characters" if hits else _elsewhere(client, rid, kind)))
            runs.append(hits[0])
    else:  # page until ``last`` top-level runs are found: a tuning study logs many trials in between
        runs = []
        for r in _all_runs(client, exp.experiment_id):
            if "optuna.trial" not in r.data.tags:
                runs.append(r)
                if len(runs) >= last:
                    break
    registered: dict[str, list[str]] = {}
    from mlflow.exceptions import MlflowException

    try:
        aliases: dict[str, list[str]] = {}
        for a, v in (client.get_registered_model(f"dealerml-{kind}").aliases or {}).items():
            aliases.setdefault(str(v), []).append(a)
        for mv in client.search_model_versions(f"name='dealerml-{kind}'"):
            label = f"v{mv.version}" + "".join(f" @{a}" for a in sorted(aliases.get(str(mv.version), [])))
            registered.setdefault(mv.run_id, []).append(label)
    except MlflowException:  # nothing registered yet
        pass
    out = []
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.gmtime((r.info.start_time or 0) / 1000))
        out.append(RunSummary(run_id=r.info.run_id, name=r.info.run_name or "", status=r.info.status, started=started,
                              params=dict(r.data.params), metrics=dict(r.data.metrics), tags=dict(r.data.tags),
                              registered=tuple(sorted(registered.get(r.info.run_id, [])))))
    return out
