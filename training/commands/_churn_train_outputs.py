"""What ``dealerml train churn`` writes besides the run's metrics: the ``--save-to`` check made before the
training (``_check_save_to``) and the model's files staged for it (``_stage_model``), the MLflow signature
example (``_signature_example``) and the backtest's plots (``_plots``: reliability, lift, score by tier,
reason frequency).

Split from :mod:`training.commands.churn` to keep each module under ~500 lines; pure moves. Used by its
``train_churn`` and, through its re-exports, by :mod:`training.churn_tuning` (``_plots``,
``_signature_example``) and :mod:`training.experiment` (``_check_save_to``): import them from
:mod:`training.commands.churn`. Imports nothing of the churn commands (no cycle).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from training.commands._common import check_not_below_a_file
from training.errors import ConfigError


def _stage_model(model: Any, folder: Path) -> list[tuple[Path, Path]]:
    """The model's files staged into ``folder`` (see ``stage_files``), put in place with the report once the
    run has registered. Saved after the run, a folder that could not be written (a read-only mount, a full
    disk) failed with a traceback once the version was registered and the challenger alias moved."""
    import shutil
    import tempfile

    from training.commands._common import stage_files

    with tempfile.TemporaryDirectory(prefix="dealerml-save-to-") as tmp:
        try:
            model.save(Path(tmp))
            return stage_files([(Path(folder) / f.name, lambda dst, f=f: shutil.copyfile(f, dst))
                                for f in sorted(Path(tmp).iterdir())])
        except OSError as exc:
            raise ConfigError(f"cannot write --save-to {folder}: {exc.strerror or exc}"
                              + (f" ({exc.filename})" if exc.filename else "") + "; nothing was registered") from None


def _check_save_to(path: Path) -> None:
    """``--save-to``, before the training and registration it comes after: a folder to create, an
    empty one, or one a previous ``--save-to`` wrote (its model is replaced); not a file, not a
    path below a file, not a folder of other files (the model's two files would be mixed in)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--save-to {p} is a file; expected a folder to save the model in (created when missing)")
    check_not_below_a_file(p, "--save-to")
    folder = next((q for q in [p, *p.absolute().parents] if q.exists()), None)
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--save-to {p}: no permission to write in the folder {folder}; give a folder you can write to")
    if p.is_dir() and not (p / "churn_model.json").is_file():
        other = sorted(x.name for x in p.iterdir())
        if other:
            raise ConfigError(f"--save-to {p} is a folder holding other files ({other[:3]}); give a new or empty "
                              "folder, or one a previous --save-to wrote (its model is replaced)")


def _signature_example(df):
    """MLflow signatures know no pandas categoricals: send them as strings, counts as floats."""
    out = df.copy()
    for c in out.columns:
        if str(out[c].dtype) == "category" or out[c].dtype == object:
            out[c] = out[c].astype("object").where(out[c].notna(), None).astype(str)
        else:
            out[c] = out[c].astype("float64")
    return out


def _plots(res, scored) -> dict[str, Any]:
    """Reliability curve, lift chart, score distribution by tier, reasons frequency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from training.churn_backtest import reliability_table

    test = res.test
    y = test["churned"].to_numpy()
    figs: dict[str, Any] = {}
    names = [c[2:] for c in test.columns if c.startswith("p_")]

    fig, ax = plt.subplots(figsize=(5, 5))
    for m in names:
        t = reliability_table(y, test[f"p_{m}"])
        ax.plot(t["mean_p"], t["observed"], marker="o", label=m)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="mean predicted churn probability (10 equal-frequency bins)", ylabel="observed churn rate",
           title="Reliability")
    ax.legend()
    figs["plots/reliability.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    frac = np.linspace(0.01, 1, 100)
    for m in names:
        order = np.argsort(-test[f"p_{m}"].to_numpy(), kind="mergesort")
        hits = np.cumsum(y[order])
        k = np.maximum(1, np.ceil(frac * len(y)).astype(int))
        ax.plot(frac * 100, hits[k - 1] / k / max(y.mean(), 1e-9), label=m)
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.set(xlabel="top % of accounts by risk", ylabel="lift (precision / base rate)", title="Lift")
    ax.legend()
    figs["plots/lift.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    for tier in ("low", "medium", "high"):
        v = scored.loc[scored["tier"] == tier, "probability"]
        if len(v):
            ax.hist(v, bins=np.linspace(0, 1, 26), alpha=0.6, label=f"{tier} (n={len(v)})")
    ax.set(xlabel="churn probability", ylabel="accounts", title="Score distribution by tier")
    ax.legend()
    figs["plots/score_by_tier.png"] = fig

    fig, ax = plt.subplots(figsize=(10, 4.5))
    reasons = pd.concat([scored[f"reason_{j}"] for j in (1, 2, 3)])
    reasons = reasons[reasons != ""].str.replace(r"[\d,.]+", "N", regex=True).str.slice(0, 70)
    top = reasons.value_counts().head(12)[::-1]
    ax.barh(top.index, top.to_numpy())
    ax.set(xlabel="accounts with this reason in their top 3 (N = a number)", title="Reason frequency")
    fig.tight_layout()
    figs["plots/reasons.png"] = fig
    return figs
