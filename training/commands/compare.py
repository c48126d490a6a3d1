"""``dealerml experiment compare``: the latest runs of a capability side by side, from the MLflow
store, without a browser: the metric by model (final and baselines), every metric of the final
model, the settings that differ, what each run registered, and whether the runs were measured
on the same data and the same backtest (if not, their numbers are not comparable and it says why).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from training._config_promotion import DEFAULT_PROMOTION_METRIC as _DEFAULT_METRIC
from training._tracking_registry import EVALUATION_PARAMS
from training.cli import experiment_app
from training.commands._common import fail, write_json
from training.errors import ConfigError, DealermlError
from training.lineage import NOT_GIVEN, TABLES_READ, other_tables, sha_key, table_label

FINAL_MODEL = {"churn": "lightgbm", "demand": "Final", "dealers": "dealer_potential"}
"""The metric prefix of the served model in each capability's training run (its backtest JSON's "final")."""

_SAME_DATA = "data.order_lines_sha256"
_DATA_FIGURES = ("data.n_rows", "data.n_series", "data.ds_min", "data.ds_max")
"""What a run without the fingerprint (``train demand`` logs the series it fitted, not the order lines'
sha256) says of its data: its size and dates, compared when no run has a fingerprint."""
_LINEAGE = ("config_name", "seed")


_EVALUATION = EVALUATION_PARAMS


def _evaluation_keys(params: dict[str, str]) -> list[str]:
    """Params that define what a run's backtest measured on: the test cutoff, the horizon, the
    windows, the scored population. (Training cutoffs and calibration slices are the model's own
    settings: runs that differ there are still compared on the same test.)"""
    return sorted(k for k in params if k in _EVALUATION)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    s = str(v)
    return s if len(s) <= 24 else s[:21] + "..."


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))  # noqa: E731
    return "\n".join(["  " + line(header), *("  " + line(r) for r in rows)])


def compare_runs(kind: str, runs: list[Any], metric: str) -> dict[str, Any]:
    """The comparison as data: per run its lineage; the metric by model; the final model's
    metrics; params that differ; comparability (same data, same evaluation) with the reasons."""
    from training.registry import LOWER_IS_BETTER

    final = FINAL_MODEL[kind]
    models = sorted({k.split(".", 1)[0] for r in runs for k in r.metrics if "." in k and "__" not in k
                     and k.split(".", 1)[1] == metric}, key=lambda m: (m != final, m))
    by_model = {m: [r.metrics.get(f"{m}.{metric}") for r in runs] for m in models}
    final_metrics = sorted({k.split(".", 1)[1] for r in runs for k in r.metrics
                            if k.startswith(f"{final}.") and "__" not in k})
    final_rows = {k: [r.metrics.get(f"{final}.{k}") for r in runs] for k in final_metrics}
    keys = sorted({k for r in runs for k in r.params})
    differ = {k: [r.params.get(k) for r in runs] for k in keys if len({r.params.get(k) for r in runs}) > 1
              and not _repeats_model_param(k, runs)}
    reasons = []
    shas = [r.tags.get(_SAME_DATA) for r in runs]
    if len({s for s in shas if s}) > 1:
        reasons.append(f"different data ({_SAME_DATA}: " + ", ".join((s or "-")[:12] for s in shas) + ")")
    missing = [f"#{i + 1}" for i, s in enumerate(shas) if not s]
    if missing and len(missing) < len(runs):  # not "different data": unknown data
        reasons.append(f"run(s) {', '.join(missing)} logged no data fingerprint ({_SAME_DATA}), so the same data "
                       "cannot be confirmed")
    # churn and dealers read accounts and service events too: other ones are other data (a run from before
    # their sha256 was logged is unknown there, said beside the verdict, not "different")
    differ_tables, unknown_tables = other_tables(kind, [r.tags for r in runs])
    for table, vals in differ_tables:
        key = "data." + sha_key(table)
        reasons.append(f"different {table_label(table)} ({key}: " + ", ".join((v or "-")[:12] for v in vals) + ")")
    unconfirmed = [f"{table_label(table)} unconfirmed: run(s) {', '.join(f'#{i + 1}' for i in idx)} logged no "
                   f"data.{sha_key(table)} (a run from before it was logged), so the same {table_label(table)} cannot be "
                   "confirmed" for table, idx in unknown_tables]
    figures: dict[str, str] = {}
    if len(runs) > 1 and not any(shas):  # e.g. demand: its size and dates, else it was called 'same data -...'
        held = [k for k in _DATA_FIGURES if all(r.tags.get(k) for r in runs)]
        differ_data = [k for k in held if len({r.tags[k] for r in runs}) > 1]
        if differ_data:
            reasons.append("different data (" + "; ".join(f"{k}: " + ", ".join(_fmt(r.tags[k]) for r in runs)
                                                         for k in differ_data) + ")")
        figures = {k: runs[0].tags[k] for k in held}
    eval_keys = sorted({k for r in runs for k in _evaluation_keys(r.params)})
    for i, r in enumerate(runs):  # a run that says nothing about its test cannot be called comparable
        if eval_keys and not _evaluation_keys(r.params):
            why = ("a tuning run from before tune logged its latest fold's test window, or one stopped before its final "
                   "fit" if _kind(r) == "tune" else "it logged no test cutoff / horizon")
            reasons.append(f"run #{i + 1} does not say what it was tested on ({why})")
    for k in eval_keys:
        vals = [r.params.get(k) for r in runs]
        if len(set(vals)) > 1 and all(v is not None for v in vals):
            reasons.append(f"different {k} (" + ", ".join(_fmt(v) for v in vals) + ")")
    same_eval = {k: runs[0].params.get(k) for k in eval_keys if all(r.params.get(k) == runs[0].params.get(k) for r in runs)}
    return {
        "experiment": f"dealerml-{kind}",
        "metric": metric,
        "direction": "lower is better" if metric.lower() in LOWER_IS_BETTER else "higher is better",
        "final_model": final,
        "runs": [{"run_id": r.run_id, "name": r.name, "kind": _kind(r), "status": r.status, "started": r.started,
                  "git_commit": r.tags.get("dealerml.git_commit"), "git_dirty": r.tags.get("dealerml.git_dirty") == "true",
                  "data_sha256": r.tags.get(_SAME_DATA),
                  "data_sha256_by_table": {t: r.tags.get("data." + sha_key(t)) for t in TABLES_READ[kind]},
                  "registered": list(r.registered),
                  "parent_run_id": r.tags.get("mlflow.parentRunId")} for r in runs],
        "by_model": by_model,
        "final_metrics": final_rows,
        "params_that_differ": differ,
        "comparable": not reasons,
        "not_comparable_because": reasons,
        "data_unconfirmed": unconfirmed,
        "measured_on": same_eval,
        "same_data_by": figures,
    }


def _sha_said(v: str) -> str:
    return "none given" if v == NOT_GIVEN else f"{v[:12]}..."


def _repeats_model_param(key: str, runs: list[Any]) -> bool:
    """A tune run's ``best.X`` that every run holding it also logged as ``model.X`` (the tuned model's
    settings on a training run's rows): one row, not two."""
    if not key.startswith("best."):
        return False
    twin = "model." + key[len("best."):]
    holders = [r for r in runs if key in r.params]
    return bool(holders) and all(r.params.get(twin) == r.params[key] for r in holders)


def _kind(r: Any) -> str:
    """``tune`` for a tuning study's parent run (its figures: the tuned settings on the latest fold), else ``train``."""
    return "tune" if r.tags.get("dealerml.step") == "tune" or "tune.n_trials" in r.params else "train"


def render(cmp: dict[str, Any]) -> str:
    runs = cmp["runs"]
    cols = [f"#{i + 1}" for i in range(len(runs))]
    out = [f"{cmp['experiment']}: {len(runs)} run(s), newest first"]
    out.append(_table(["#", "run", "kind", "started (UTC)", "status", "commit", "registered"], [
        [c, r["run_id"][:8], r["kind"], r["started"], r["status"],
         ((r["git_commit"] or "-")[:7] + (" dirty" if r["git_dirty"] else "")),
         ", ".join(r["registered"]) or "-"] for c, r in zip(cols, runs, strict=True)]))
    if cmp["by_model"]:
        out.append(f"\n{cmp['metric']} ({cmp['direction']}) by model:")
        out.append(_table(["model", *cols], [
            [m + (" (final)" if m == cmp["final_model"] else ""), *(_fmt(v) for v in vals)]
            for m, vals in cmp["by_model"].items()]))
    else:
        out.append(f"\nno run logged a metric '<model>.{cmp['metric']}'")
    tunes = [c for c, r in zip(cols, runs, strict=True) if r["kind"] == "tune"]
    if tunes and cmp["by_model"]:
        out.append(f"  tune run(s) {', '.join(tunes)}: {cmp['final_model']} = the tuned settings on the study's latest "
                   "fold, which also picked them (optimistic); untuned = the config's settings on that fold")
    if cmp["final_metrics"]:
        out.append(f"\n{cmp['final_model']} (final), every metric:")
        out.append(_table(["metric", *cols], [[k, *(_fmt(v) for v in vals)] for k, vals in cmp["final_metrics"].items()]))
    if len(runs) > 1:
        if cmp["params_that_differ"]:
            out.append("\nsettings that differ:")
            out.append(_table(["param", *cols], [[k, *(_fmt(v) for v in vals)] for k, vals in cmp["params_that_differ"].items()]))
        else:
            out.append("\nsettings: identical")
        if cmp["comparable"]:
            sha = runs[0]["data_sha256"]
            by = ", ".join(f"{k.removeprefix('data.')} {v}" for k, v in cmp.get("same_data_by", {}).items())
            known = [(t, v) for t, v in (runs[0].get("data_sha256_by_table") or {}).items()
                     if t != "order_lines" and v and all((r.get("data_sha256_by_table") or {}).get(t) for r in runs)]
            data = (f"same data {sha[:12]}..." + "".join(f", {table_label(t)} {_sha_said(v)}" for t, v in known) if sha
                    else f"same data by its size and dates, {by}" if by
                    else "same data unconfirmed: no run logged a data fingerprint")
            on = ", ".join(f"{k} {v}" for k, v in cmp.get("measured_on", {}).items())
            out.append(f"comparable: yes ({data}, same test: {on or 'no test cutoff or horizon logged'})")
        else:
            out.append("comparable: NO, the figures were measured on different things: "
                       + "; ".join(cmp["not_comparable_because"]))
        out.extend(f"  {u}" for u in cmp.get("data_unconfirmed") or [])
    return "\n".join(out)


@experiment_app.command("compare")
def compare_cmd(
    capability: str = typer.Argument(..., help="demand, churn or dealers."),
    last: int = typer.Option(5, "--last", min=1, max=50, help="How many of the newest runs (tuning trials left out)."),
    run: list[str] = typer.Option([], "--run", help="A run id (or unique prefix) to compare; repeat the option. Overrides --last."),  # noqa: B006, B008
    metric: str | None = typer.Option(None, "--metric", help="Metric to show by model (default: auc / mase / spearman)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the comparison as JSON."),  # noqa: B008
) -> None:
    """Compare training runs of a capability: metric by model beside the baselines, the settings that differ, and whether they are comparable."""
    from training.config import PROMOTION_METRICS

    try:
        if capability not in FINAL_MODEL:
            raise ConfigError(f"capability {capability!r}: use one of {sorted(FINAL_MODEL)}")
        if json_out is not None:  # a folder or an unwritable --json: said first (it was a traceback after the table)
            from training.commands._common import check_out_path

            check_out_path(json_out, "--json")
        metric = metric or _DEFAULT_METRIC[capability]
        if metric not in PROMOTION_METRICS[capability]:
            raise ConfigError(f"--metric {metric!r} is not a {capability} metric; use one of "
                              f"{', '.join(PROMOTION_METRICS[capability])}")
        from training import tracking
        from training.commands.experiments import require_store

        require_store(f"experiment compare {capability}")
        empty = [i + 1 for i, r in enumerate(run) if not r.strip()]
        if empty:  # '' is a prefix of every run id: it was 'N runs ... start with that id; give more characters'
            raise ConfigError(f"--run number {empty[0]} is empty; give a run id (or a unique prefix of one)")
        runs = tracking.list_runs(capability, last=last, run_ids=tuple(r.strip() for r in run))
        if not runs:
            raise ConfigError(f"no dealerml-{capability} runs in {tracking.shown_tracking_uri()}")
        seen: dict[str, Any] = {}
        for given, r in zip(run, runs, strict=False) if run else ():
            if r.run_id in seen:  # the same run twice (an id and its prefix) was compared with itself as two runs
                typer.echo(f"note: --run {given} names run {r.run_id[:8]} again (--run {seen[r.run_id]}); "
                           "it is shown once", err=True)
            else:
                seen[r.run_id] = given
        runs = list({r.run_id: r for r in runs}.values())
        cmp = compare_runs(capability, runs, metric)
    except DealermlError as err:
        fail(err)
        return
    typer.echo(render(cmp))
    if json_out is not None:
        try:
            write_json(cmp, json_out)
        except DealermlError as err:
            fail(err)
