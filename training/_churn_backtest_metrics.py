"""The churn backtest's baselines and metrics: ``recency_score`` (the recency rule as a score),
``bgnbd_churn_probability`` (BG/NBD's P(no order in the horizon)), ``churn_metrics`` (ROC AUC,
PR AUC, Brier, ``ece`` over 10 equal-frequency bins, precision and lift of the top 10 %) and
``reliability_table`` (the reliability plot's bins).

Split from :mod:`training.churn_backtest` to keep each module under ~500 lines; pure functions of
arrays and feature frames, importing nothing of the backtest. Used by :mod:`training.churn_backtest`
(``run_backtest``, ``_slices``) and, through its re-exports, by the churn commands, churn tuning and
the promotion evaluator: import the names from :mod:`training.churn_backtest`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


# --------------------------------------------------------------- baselines
def recency_score(features: pd.DataFrame) -> np.ndarray:
    """The recency rule as a score in (0, 1): overdue-ness against the account's own rhythm.

    ``x = recency_days / usual_gap`` where ``usual_gap`` is the account's median gap
    between purchase days, or the median of all accounts' gaps when it has none (one
    purchase day); then ``x / (1 + x)``. Monotone, so ranking = 'most overdue first'.
    """
    rec = features["recency_days"].to_numpy(dtype=float)
    gap = features["gap_median_days"].to_numpy(dtype=float)
    pooled = np.nanmedian(gap) if np.isfinite(gap).any() else 30.0
    usual = np.where(np.isfinite(gap) & (gap > 0), gap, pooled)
    x = rec / np.maximum(usual, 1.0)
    return x / (1.0 + x)


def bgnbd_churn_probability(train_features: pd.DataFrame, score_features: pd.DataFrame, horizon_days: int,
                            penalizer: float = 0.001):
    """Fit BG/NBD on every account's history before the cutoff; P(no order in the horizon)."""
    from models.bgnbd import BGNBD

    cols = ["bgnbd_frequency", "bgnbd_recency", "bgnbd_T"]
    f = train_features[cols].to_numpy(dtype=float)
    m = BGNBD(penalizer=penalizer).fit(f[:, 0], f[:, 1], f[:, 2])
    s = score_features[cols].to_numpy(dtype=float)
    return m.prob_no_purchase(float(horizon_days), s[:, 0], s[:, 1], s[:, 2]), m


# ----------------------------------------------------------------- metrics
def ece(y, p, n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-frequency bins of the sorted probabilities."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    total = 0.0
    for idx in np.array_split(order, min(n_bins, len(y))):
        if len(idx):
            total += len(idx) * abs(y[idx].mean() - p[idx].mean())
    return float(total / len(y))


def reliability_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn rate per equal-frequency bin (for the reliability plot)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="mergesort")
    rows = [{"bin": i, "n": len(idx), "mean_p": p[idx].mean(), "observed": y[idx].mean()}
            for i, idx in enumerate(np.array_split(order, min(n_bins, len(y)))) if len(idx)]
    return pd.DataFrame(rows)


def _top_k(p: np.ndarray, frac: float) -> np.ndarray:
    k = max(1, int(math.ceil(frac * len(p))))
    return np.argsort(-p, kind="mergesort")[:k]


def churn_metrics(y, p) -> dict[str, float | None]:
    """auc, pr_auc, brier, ece, lift_top10, precision_top10 (None where undefined)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    base = float(y.mean()) if len(y) else float("nan")
    top = _top_k(p, 0.10) if len(p) else np.array([], dtype=int)
    prec = float(y[top].mean()) if len(top) else float("nan")
    out = {
        "auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
        "ece": ece(y, p) if len(y) else None,
        "lift_top10": prec / base if base > 0 else None,
        "precision_top10": prec if len(top) else None,
    }
    return {k: (None if v is None or not math.isfinite(v) else round(v, 6)) for k, v in out.items()}
