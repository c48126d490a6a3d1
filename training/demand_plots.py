"""Figures logged with a demand training run (matplotlib, Agg backend; nothing shown)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["fan_charts", "accuracy_by_class", "service_vs_target"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def fan_charts(history: pd.DataFrame, cv: pd.DataFrame, n: int = 6, seed: int = 0, model: str = "Final") -> Any:
    """History and the last window's forecast with 80 / 95 % bands for a sample of ``n`` series."""
    plt = _plt()
    last = cv[cv["cutoff"] == cv["cutoff"].max()]
    uids = last["unique_id"].drop_duplicates()
    rng = np.random.default_rng(seed)
    pick = list(rng.choice(uids.to_numpy(), size=min(n, len(uids)), replace=False))
    history = history[history["unique_id"].isin(pick)]
    if not pd.api.types.is_datetime64_any_dtype(history["ds"]):  # a series CSV keeps ds as text
        from models.demand_data import _parse_ds

        history = history.assign(ds=_parse_ds(history["ds"], lambda *a: None))
    cols = 2
    rows = int(np.ceil(len(pick) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.8 * rows), squeeze=False)
    for ax, u in zip(axes.ravel(), pick, strict=False):
        hst = history[history["unique_id"] == u].tail(60)
        f = last[last["unique_id"] == u]
        ax.plot(hst["ds"], hst["y"], color="black", lw=1, label="actual")
        if f"{model}-lo-95" in f.columns:
            ax.fill_between(f["ds"], f[f"{model}-lo-95"], f[f"{model}-hi-95"], alpha=0.2, color="C0", label="95%")
            ax.fill_between(f["ds"], f[f"{model}-lo-80"], f[f"{model}-hi-80"], alpha=0.35, color="C0", label="80%")
        ax.plot(f["ds"], f[model], color="C0", lw=1.5, label=f"{model} ({f['final_model'].iloc[0]})")
        ax.set_title(str(u), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes.ravel()[len(pick):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def accuracy_by_class(report: dict[str, Any], metric: str = "mase") -> Any:
    """Grouped bars: ``metric`` per demand class for every model of the backtest report."""
    plt = _plt()
    classes = sorted(report.get("by_class", {}))
    models = list(report["metrics"])
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(classes) + 2), 4))
    width = 0.8 / max(1, len(models))
    for j, m in enumerate(models):
        vals = [report["by_class"][k].get(m, {}).get(metric) or np.nan for k in classes]
        ax.bar(np.arange(len(classes)) + j * width, vals, width, label=m)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{k}\n(n={report['by_class'][k].get('_n_series', '?')})" for k in classes])
    ax.set_ylabel(metric.upper())
    ax.set_title(f"{metric.upper()} by demand class (lower is better)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def service_vs_target(replay_result: dict[str, Any]) -> Any:
    """Achieved cycle service level against the target, both methods, with the +-2 point band:
    the reading the target sizes for (no backorder at the end of the cycle,
    ``cycle_service_level_end_net``), solid; the no-unserved-demand reading, dashed."""
    plt = _plt()
    t = replay_result["targets"]
    xs = np.array([float(k) for k in t])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0.85, 1.0], [0.85, 1.0], color="grey", lw=1, label="target")
    ax.fill_between([0.85, 1.0], [0.83, 0.98], [0.87, 1.02], color="grey", alpha=0.15, label="+-2 points")
    for meth, mk in (("distribution", "o"), ("normal", "s")):
        for key, ls, what in (("cycle_service_level_end_net", "-", "no backorder at cycle end"),
                              ("cycle_service_level", "--", "no unserved demand")):
            if all(key in t[k][meth] for k in t):
                ys = [np.nan if t[k][meth][key] is None else t[k][meth][key] for k in t]
                ax.plot(xs, ys, marker=mk, ls=ls, label=f"{meth}: {what}")
    ax.set_xlabel("target cycle service level")
    ax.set_ylabel("achieved in replay")
    ax.set_xlim(0.85, 1.0)
    ax.set_ylim(0.8, 1.0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
