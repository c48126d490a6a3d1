"""Coherent forecasts across levels (e.g. SKU x location -> SKU -> total) with hierarchicalforecast.

Every level's series is forecast by one :class:`models.demand.DemandForecaster` (the levels
give it more signal than the bottom alone); the served forecast ``Final`` and its intervals
are then reconciled with MinTrace (OLS, non-negative) or BottomUp so that children add up to
their parents. Reconciled columns replace ``Final``/``Final-lo-*``/``Final-hi-*``; the
unreconciled ones are kept as ``Base``/``Base-lo-*``/``Base-hi-*``.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.demand import DemandForecaster, NotFittedError

__all__ = ["HierarchicalDemandForecaster", "hierarchy"]

_TOTAL = "_total"


def hierarchy(df: pd.DataFrame, levels: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """All-level long table, summing matrix and tags for the key columns ``levels`` (top first).

    ``df`` is the bottom level with the key columns (e.g. ``features.demand.demand_series``
    output); unique_ids of the result are ``total``, ``total/<sku>``, ``total/<sku>/<location>``.
    """
    from hierarchicalforecast.utils import aggregate

    levels = list(levels)
    miss = [c for c in ["ds", "y", *levels] if c not in df.columns]
    if miss:
        raise ValueError(f"the bottom-level table needs key column(s) {miss}; it has {list(df.columns)}")
    work = df[["ds", "y", *levels]].copy()
    work[_TOTAL] = "total"
    for c in levels:
        work[c] = work[c].astype(str)
    spec = [[_TOTAL]] + [[_TOTAL, *levels[: i + 1]] for i in range(len(levels))]
    Y, S, tags = aggregate(work, spec)
    return Y.reset_index(drop=True) if "unique_id" in Y.columns else Y.reset_index(), S, tags


class HierarchicalDemandForecaster:
    """DemandForecaster over every level of a hierarchy + reconciliation (scikit-learn style).

    Parameters: ``levels`` key columns top-down (``("sku", "location")``), ``method``
    ``"mint_ols"`` or ``"bottom_up"``, ``forecaster`` keyword arguments for DemandForecaster
    (``freq``, ``h``, ``models`` ...).
    """

    def __init__(self, levels: Sequence[str] = ("sku", "location"), method: str = "mint_ols",
                 forecaster: dict[str, Any] | None = None) -> None:
        self.levels = levels
        self.method = method
        self.forecaster = forecaster

    def _reconciler(self):
        from hierarchicalforecast.core import HierarchicalReconciliation
        from hierarchicalforecast.methods import BottomUp, MinTrace

        if self.method == "mint_ols":
            return HierarchicalReconciliation([MinTrace(method="ols", nonnegative=True)])
        if self.method == "bottom_up":
            return HierarchicalReconciliation([BottomUp()])
        raise ValueError(f"method must be 'mint_ols' or 'bottom_up'; got {self.method!r}")

    def _reconcile(self, fc: pd.DataFrame, S: pd.DataFrame, tags: dict, levels: list[int]) -> pd.DataFrame:
        cols = ["Final", *[f"Final-{s}-{lv}" for lv in levels for s in ("lo", "hi")]]
        base = fc[["unique_id", "ds", *cols]].copy()
        # the point forecasts are reconciled; the calibrated bands move with them
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # qpsolvers' sparse-conversion notices
            rec = self._reconciler().reconcile(Y_hat_df=base[["unique_id", "ds", "Final"]], S_df=S, tags=tags)
        name = [c for c in rec.columns if c.startswith("Final/")][0]
        out = fc.merge(rec[["unique_id", "ds", name]], on=["unique_id", "ds"], how="left")
        for c in cols:
            out[c.replace("Final", "Base", 1)] = out[c]
        shift = out[name].to_numpy() - out["Final"].to_numpy()
        out["Final"] = out[name]
        for lv in levels:  # move the calibrated bands with the reconciled point
            out[f"Final-lo-{lv}"] = np.clip(out[f"Final-lo-{lv}"] + shift, 0.0, None)
            out[f"Final-hi-{lv}"] = np.clip(out[f"Final-hi-{lv}"] + shift, 0.0, None)
            out[f"Final-lo-{lv}"] = np.minimum(out[f"Final-lo-{lv}"], out["Final"])
            out[f"Final-hi-{lv}"] = np.maximum(out[f"Final-hi-{lv}"], out["Final"])
        return out.drop(columns=[name])

    def fit(self, df: pd.DataFrame) -> HierarchicalDemandForecaster:
        Y, S, tags = hierarchy(df, self.levels)
        kw = dict(self.forecaster or {})
        kw.setdefault("exog", [])
        self.base_ = DemandForecaster(**kw).fit(Y)
        self.S_, self.tags_ = S, tags
        return self

    def predict(self, h: int | None = None) -> pd.DataFrame:
        if not hasattr(self, "base_"):
            raise NotFittedError("this HierarchicalDemandForecaster is not fitted yet; call fit(df) first")
        fc = self.base_.predict(h)
        return self._reconcile(fc, self.S_, self.tags_, self.base_._levels())

    def cross_validation(self, df: pd.DataFrame, h: int, n_windows: int = 2, step_size: int | None = None) -> pd.DataFrame:
        Y, S, tags = hierarchy(df, self.levels)
        kw = dict(self.forecaster or {})
        kw.setdefault("exog", [])
        kw["h"] = h
        est = DemandForecaster(**kw)
        cv = est.cross_validation(Y, h=h, n_windows=n_windows, step_size=step_size)
        self.cv_info_ = est.cv_info_
        parts = []
        for _, g in cv.groupby("cutoff", sort=True):
            keep = set(g["unique_id"])
            if keep != set(S["unique_id"] if "unique_id" in S.columns else S.index):
                raise ValueError("some series of the hierarchy are too short to forecast at a cutoff; "
                                 "reconciliation needs every level: raise min_train or drop the short series")
            parts.append(self._reconcile(g, S, tags, est._levels()))
        return pd.concat(parts, ignore_index=True)

    def save(self, path: Path) -> Path:
        if not hasattr(self, "base_"):
            raise NotFittedError("this HierarchicalDemandForecaster is not fitted yet; call fit(df) first")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.base_.save(path / "base")
        with open(path / "hierarchy.pkl", "wb") as fh:
            pickle.dump({"levels": list(self.levels), "method": self.method, "forecaster": self.forecaster,
                         "S_": self.S_, "tags_": self.tags_}, fh)
        return path

    @classmethod
    def load(cls, path: Path) -> HierarchicalDemandForecaster:
        path = Path(path)
        with open(path / "hierarchy.pkl", "rb") as fh:
            st = pickle.load(fh)
        obj = cls(st["levels"], st["method"], st["forecaster"])
        obj.base_ = DemandForecaster.load(path / "base")
        obj.S_, obj.tags_ = st["S_"], st["tags_"]
        return obj
