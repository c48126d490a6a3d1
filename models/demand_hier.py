"""Coherent forecasts across levels (e.g. SKU x location -> SKU -> total) with hierarchicalforecast.

The bottom level (SKU x location) is forecast by its own :class:`models.demand.DemandForecaster`,
with its known-future drivers, exactly as without a hierarchy; the upper levels (SKU totals,
the grand total) by a second one, on their summed demand. The served forecast ``Final`` is then
made coherent (children add up to their parents):

- ``bottom_up`` (default): every parent is the sum of its bottom series, so the bottom level is
  the plain forecast, unchanged;
- ``mint_ols`` / ``mint_wls``: MinTrace (OLS, or WLS with structural weights; non-negative)
  over the base forecasts of every level.

On Stallion's three validation splits (BENCHMARKS.md, "Coherent forecasts across levels")
MinTrace made the bottom level 1.3-27x worse in MASE (it spreads a parent's correction over its
children in equal or count-based shares, so slow series get large relative errors), and
bottom-up was as good as or better than the parents' own forecasts at the SKU level and about
equal at the total: hence the default. Each node keeps its own calibrated bands (split-conformal
on that node's backtest windows), moved with the coherent point. Reconciled columns replace
``Final``/``Final-lo-*``/``Final-hi-*``; the unreconciled ones are kept as
``Base``/``Base-lo-*``/``Base-hi-*``.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.demand import DemandForecaster, NotFittedError
from models.demand_data import parse_ds_column

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
    work["ds"] = parse_ds_column(work["ds"])  # text dates are summed by day, not by spelling
    work[_TOTAL] = "total"
    for c in levels:
        work[c] = work[c].astype(str)
    spec = [[_TOTAL]] + [[_TOTAL, *levels[: i + 1]] for i in range(len(levels))]
    Y, S, tags = aggregate(work, spec)
    return Y.reset_index(drop=True) if "unique_id" in Y.columns else Y.reset_index(), S, tags


METHODS = ("bottom_up", "mint_ols", "mint_wls")


class HierarchicalDemandForecaster:
    """DemandForecaster per level group + reconciliation (scikit-learn style).

    Parameters: ``levels`` key columns top-down (``("sku", "location")``), ``method``
    ``"bottom_up"`` (default), ``"mint_ols"`` or ``"mint_wls"``, ``forecaster`` keyword
    arguments for DemandForecaster (``freq``, ``h``, ``models`` ...). The bottom forecaster
    reads the table's numeric columns besides ``y`` as known-future drivers (or ``exog`` when
    given); the upper levels have none (their demand is a sum; their drivers are not defined).
    """

    def __init__(self, levels: Sequence[str] = ("sku", "location"), method: str = "bottom_up",
                 forecaster: dict[str, Any] | None = None) -> None:
        self.levels = levels
        self.method = method
        self.forecaster = forecaster

    def _reconciler(self):
        from hierarchicalforecast.core import HierarchicalReconciliation
        from hierarchicalforecast.methods import BottomUp, MinTrace

        if self.method == "mint_ols":
            return HierarchicalReconciliation([MinTrace(method="ols", nonnegative=True)])
        if self.method == "mint_wls":
            return HierarchicalReconciliation([MinTrace(method="wls_struct", nonnegative=True)])
        if self.method == "bottom_up":
            return HierarchicalReconciliation([BottomUp()])
        raise ValueError(f"method must be one of {list(METHODS)}; got {self.method!r}")

    def _split(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
        """(bottom table with drivers, upper-level table, S, tags) in the hierarchy's ids."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}; got {self.method!r}")
        Y, S, tags = hierarchy(df, self.levels)
        levels = [str(c) for c in self.levels]
        uid = "total/" + df[levels[0]].astype(str)
        for c in levels[1:]:
            uid = uid + "/" + df[c].astype(str)
        drivers = [c for c in df.columns if c not in ("unique_id", "ds", "y", *levels)
                   and pd.api.types.is_numeric_dtype(df[c])]
        bottom = pd.DataFrame({"unique_id": uid.to_numpy(), "ds": parse_ds_column(df["ds"]).to_numpy(),
                               "y": df["y"].to_numpy()})
        for c in drivers:
            bottom[c] = df[c].to_numpy()
        upper = Y[~Y["unique_id"].isin(set(bottom["unique_id"]))].reset_index(drop=True)
        return bottom, upper, S, tags

    def _forecasters(self, h: int | None = None) -> tuple[DemandForecaster, DemandForecaster]:
        kw = dict(self.forecaster or {})
        if h is not None:
            kw["h"] = h
        return DemandForecaster(**kw), DemandForecaster(**{**kw, "exog": []})

    def _reconcile(self, fc: pd.DataFrame, S: pd.DataFrame, tags: dict, levels: list[int]) -> pd.DataFrame:
        cols = ["Final", *[f"Final-{s}-{lv}" for lv in levels for s in ("lo", "hi")]]
        ids = S["unique_id"] if "unique_id" in S.columns else pd.Series(S.index)
        dates = np.sort(fc["ds"].unique())
        have = set(fc["unique_id"])
        missing = [u for u in ids if u not in have]
        if missing:  # no forecast yet (no demand up to the cutoff, too short): 0 units, no spread
            fill = pd.DataFrame({"unique_id": np.repeat(np.asarray(missing, dtype=object), len(dates)),
                                 "ds": np.tile(dates, len(missing))})
            for c in cols:
                fill[c] = 0.0
            for c in ("cutoff", "demand_class", "final_model"):
                if c in fc.columns:
                    fill[c] = fc[c].iloc[0] if c == "cutoff" else "not_forecast"
            fc = pd.concat([fc, fill], ignore_index=True)
        base = fc[["unique_id", "ds", *cols]].copy()
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
        for lv in levels:  # each node's calibrated band moves with its coherent point
            out[f"Final-lo-{lv}"] = np.clip(out[f"Final-lo-{lv}"] + shift, 0.0, None)
            out[f"Final-hi-{lv}"] = np.clip(out[f"Final-hi-{lv}"] + shift, 0.0, None)
            out[f"Final-lo-{lv}"] = np.minimum(out[f"Final-lo-{lv}"], out["Final"])
            out[f"Final-hi-{lv}"] = np.maximum(out[f"Final-hi-{lv}"], out["Final"])
        order = {u: i for i, u in enumerate(ids)}
        out = out.assign(_o=out["unique_id"].map(order)).sort_values(["_o", "ds"], kind="mergesort")
        return out.drop(columns=[name, "_o"]).reset_index(drop=True)

    def fit(self, df: pd.DataFrame) -> HierarchicalDemandForecaster:
        bottom, upper, S, tags = self._split(df)
        self.bottom_, self.upper_ = self._forecasters()
        self.bottom_.fit(bottom)
        self.upper_.fit(upper)
        self.S_, self.tags_ = S, tags
        return self

    def predict(self, h: int | None = None) -> pd.DataFrame:
        if not hasattr(self, "bottom_"):
            raise NotFittedError("this HierarchicalDemandForecaster is not fitted yet; call fit(df) first")
        fc = pd.concat([self.upper_.predict(h), self.bottom_.predict(h)], ignore_index=True)
        return self._reconcile(fc, self.S_, self.tags_, self.bottom_._levels())

    def cross_validation(self, df: pd.DataFrame, h: int, n_windows: int = 2, step_size: int | None = None) -> pd.DataFrame:
        """Rolling-origin backtest of every level, reconciled per cutoff; ``cv_info_`` holds the
        bottom forecaster's (its ``train`` is the bottom table), ``upper_info_`` the upper one's,
        ``cv_estimator_`` the bottom forecaster and ``cv_history_`` every level's demand."""
        bottom, upper, S, tags = self._split(df)
        est_b, est_u = self._forecasters(h)
        cv_b = est_b.cross_validation(bottom, h=h, n_windows=n_windows, step_size=step_size)
        cv_u = est_u.cross_validation(upper, h=h, n_windows=n_windows, step_size=step_size)
        self.cv_info_, self.upper_info_, self.cv_estimator_ = est_b.cv_info_, est_u.cv_info_, est_b
        self.cv_history_ = pd.concat([upper[["unique_id", "ds", "y"]], bottom[["unique_id", "ds", "y"]]],
                                     ignore_index=True)
        self.S_, self.tags_ = S, tags
        cv = pd.concat([cv_u, cv_b], ignore_index=True)
        parts = [self._reconcile(g, S, tags, est_b._levels()) for _, g in cv.groupby("cutoff", sort=True)]
        return pd.concat(parts, ignore_index=True)

    def save(self, path: Path) -> Path:
        if not hasattr(self, "bottom_"):
            raise NotFittedError("this HierarchicalDemandForecaster is not fitted yet; call fit(df) first")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.bottom_.save(path / "bottom")
        self.upper_.save(path / "upper")
        with open(path / "hierarchy.pkl", "wb") as fh:
            pickle.dump({"levels": list(self.levels), "method": self.method, "forecaster": self.forecaster,
                         "S_": self.S_, "tags_": self.tags_}, fh)
        return path

    @classmethod
    def load(cls, path: Path) -> HierarchicalDemandForecaster:
        path = Path(path)
        if not (path / "bottom").exists():
            raise ValueError(f"{path} holds a hierarchical forecaster saved by an older dealerml (one forecaster "
                             "for every level); fit and save it again")
        with open(path / "hierarchy.pkl", "rb") as fh:
            st = pickle.load(fh)
        obj = cls(st["levels"], st["method"], st["forecaster"])
        obj.bottom_ = DemandForecaster.load(path / "bottom")
        obj.upper_ = DemandForecaster.load(path / "upper")
        obj.S_, obj.tags_ = st["S_"], st["tags_"]
        return obj
