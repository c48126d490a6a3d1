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
equal at the total: hence the default.

Bands. The bottom level keeps its own split-conformal bands (moved with the coherent point
under MinTrace). A parent's band is split-conformal on the coherent forecast itself: in the
internal rolling-origin windows both forecasters already run before each cutoff
(``selection_windows``), the base forecasts of every node are rebuilt from their scaled
errors, reconciled with the same method, and each parent's error of that coherent forecast is
scaled by its naive in-sample error; quantiles (pooled over steps, finite-sample correction)
per level x demand class where that group has >= 50 errors, else per level, give
``coherent point + q * scale``. Before, a parent kept its own band moved onto the coherent
point: on Stallion's test windows the SKU level covered 65.6 / 84.0 % for 80 / 95 %, now
75.2 / 94.2 %, at +24 % scaled pinball (a few tiny lumpy SKUs; BENCHMARKS.md, "Parents' bands").
Reconciled columns replace ``Final``/``Final-lo-*``/``Final-hi-*``; the unreconciled ones are
kept as ``Base``/``Base-lo-*``/``Base-hi-*``.

Young books. When no bottom series has the periods the members need (``min_train``) and the
short-history fallback is on (the default), ``fit`` serves every level from it instead of refusing,
as a plain forecaster serves such a book (``all_short_``): the bottom level is the plain
forecaster's fallback forecast and band, every parent the sum of its bottom series' forecasts
(bottom-up whatever ``method``: there are no member forecasts to reconcile) with the band of the
fallback on its own summed demand moved onto that sum (no members' errors to calibrate a coherent
band on). The total is the exception when the fallback has too few errors (< 50) of means of as
many periods as the total averages (its ``k`` bucket; a table of fewer than h + 4 periods measures
only means of 1 to 3 periods, the default window being 4), where its band would pool every error,
slow SKUs' one-period means included: it takes the errors of its level bucket instead (``*|<level>``, >= 20
errors; :mod:`models.demand_short`) as ``sum * (1 + q)``, with the count floor; every error pooled
as before when that bucket has fewer. On young books cut from two synthetic networks (T = 3, 5, 10
weeks, h = 8, 17 origins each) the total's median 95 % band went from 9.7-27x its point to
2.1-2.7x, its 80 / 95 % coverage from 0.99-1.00 / 1.00 to 0.90-0.99 / 0.96-1.00 (above nominal,
closer to it; the SKU level's bands unchanged); at T = 3, 2 origins of 17 on each network had
fewer than 20 such errors and kept the pooled band (8.6-191x). In a mixed book the bottom
forecaster still skips short series (they count 0 units).

Ids. ``predict`` / ``cross_validation`` name the nodes as hierarchicalforecast does
(``total``, ``total/<sku>``, ``total/<sku>/<location>``). What users see (``served``,
``predict_frame``: ``dealerml forecast``, the registered model, the service) keeps the bottom
series' own ids, those of a forecaster without a hierarchy and of the inventory and lead-time
tables (``<sku>/<location>``), and spells a summed key ``*``: ``<sku>/*`` is the SKU at every
location, ``*/*`` the total. The bottom forecaster is fitted under the plain ids, so its
residuals, history and drivers size safety stock exactly as a plain forecaster's do.

Plans. Only the bottom level has drivers; a plan (or the promotions calendar's default plan,
``set_planned_drivers``) re-runs the bottom forecaster under it and every level is reconciled again
(:mod:`models.demand_hier_plan`, with ``predict_frame``).

Layout: the hierarchy's nodes and per-node tables (``hierarchy``, ``node_ids``, ``ALL``, the node
table, the rebuild of base forecasts from scaled errors) are in :mod:`models._demand_hier_nodes`,
re-exported here; the estimator stays in this module, the path its pickled instances name.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models._demand_hier_nodes import (  # noqa: F401 - _TOTAL re-exported with the rest
    _TOTAL,
    ALL,
    _bottom_ids,
    _classes,
    _level_of,
    _node_table,
    _rebuild,
    hierarchy,
    node_ids,
)
from models.demand import DemandForecaster, NotFittedError, TooShortError
from models.demand_cache import MemberCache
from models.demand_conformal import apply_conformal, conformal_table, nest_intervals
from models.demand_data import Panel, build_panel, parse_ds_column
from models.demand_hier_plan import _HierPlans
from models.demand_select import naive_scale
from models.demand_short import count_band, level_bucket

__all__ = ["ALL", "HierarchicalDemandForecaster", "hierarchy", "node_ids"]


METHODS = ("bottom_up", "mint_ols", "mint_wls")


class HierarchicalDemandForecaster(_HierPlans):
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

        # a young book on the short-history fallback: its parents are the sums of its bottom series'
        # fallback forecasts (fit), whatever the method
        method = "bottom_up" if getattr(self, "all_short_", None) else self.method
        if method == "mint_ols":
            return HierarchicalReconciliation([MinTrace(method="ols", nonnegative=True)])
        if method == "mint_wls":
            return HierarchicalReconciliation([MinTrace(method="wls_struct", nonnegative=True)])
        if method == "bottom_up":
            return HierarchicalReconciliation([BottomUp()])
        raise ValueError(f"method must be one of {list(METHODS)}; got {self.method!r}")

    def _split(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
        """(bottom table with drivers, upper-level table, S, tags) in the hierarchy's ids."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}; got {self.method!r}")
        Y, S, tags = hierarchy(df, self.levels)
        levels = [str(c) for c in self.levels]
        node = node_ids(df, levels)
        # the bottom forecaster knows its series by their plain ids (the table's unique_id, else the
        # keys joined by '/'), as a forecaster without a hierarchy: its residuals, history and drivers
        # serve safety stock and plans under the ids of the inventory and lead-time tables
        plain = df["unique_id"].astype(str) if "unique_id" in df.columns else node.str.slice(len("total/"))
        pairs = pd.DataFrame({"plain": plain.to_numpy(), "node": node.to_numpy()}).drop_duplicates()
        clash = pairs[pairs["plain"].duplicated(keep=False) | pairs["node"].duplicated(keep=False)]
        if len(clash):
            raise ValueError(f"the series ids (unique_id) and the key columns {levels} must name the same series; "
                             f"{len(clash)} rows disagree, e.g. {clash.head(3).to_dict('records')}")
        bad = [c for c in levels if (df[c].astype(str) == ALL).any()]
        if bad:
            raise ValueError(f"key column(s) {bad} hold the value {ALL!r}, which the hierarchy's ids use for "
                             "'all' (e.g. 'A/*': SKU A at every location); rename that key value")
        self.bottom_nodes_ = dict(zip(pairs["plain"], pairs["node"], strict=True))
        self.nodes_ = _node_table(df, levels, self.bottom_nodes_)
        drivers = [c for c in df.columns if c not in ("unique_id", "ds", "y", *levels)
                   and pd.api.types.is_numeric_dtype(df[c])]
        bottom = pd.DataFrame({"unique_id": plain.to_numpy(), "ds": parse_ds_column(df["ds"]).to_numpy(),
                               "y": df["y"].to_numpy()})
        for c in drivers:
            bottom[c] = df[c].to_numpy()
        upper = Y[~Y["unique_id"].isin(set(node))].reset_index(drop=True)
        return bottom, upper, S, tags

    def _as_nodes(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` of the bottom forecaster (plain ids) in the hierarchy's node ids."""
        nodes = getattr(self, "bottom_nodes_", None)
        if not nodes or df is None or not len(df):  # saved before bottom series kept their plain ids
            return df
        uid = df["unique_id"].astype(str)
        return df.assign(unique_id=uid.map(nodes).fillna(uid))

    def _forecasters(self, h: int | None = None, short: bool = False) -> tuple[DemandForecaster, DemandForecaster]:
        kw = dict(self.forecaster or {})
        if h is not None:
            kw["h"] = h
        # the short-history fallback is used only when every bottom series is short (``short``, fit):
        # in a mixed book the reconciliation takes a series it cannot forecast as 0 units, and its
        # parents' bands are calibrated on the members' errors only
        kw["short_history"] = "fallback" if short else "skip"
        return DemandForecaster(**kw), DemandForecaster(**{**kw, "exog": []})

    def _coherent_point(self, base: pd.DataFrame, S: pd.DataFrame, tags: dict, cols: Sequence[str] = ("Final",)) -> tuple[pd.DataFrame, str]:
        """``base`` (``unique_id, ds`` + ``cols``, one origin) with a row for every node of S
        (nodes without a forecast: 0 units, no spread) and the reconciled ``Final`` as column
        ``name`` (second item)."""
        ids = S["unique_id"] if "unique_id" in S.columns else pd.Series(S.index)
        dates = np.sort(base["ds"].unique())
        have = set(base["unique_id"])
        missing = [u for u in ids if u not in have]
        if missing:  # no forecast (no demand up to the cutoff, too short): 0 units, no spread
            fill = pd.DataFrame({"unique_id": np.repeat(np.asarray(missing, dtype=object), len(dates)),
                                 "ds": np.tile(dates, len(missing))})
            for c in cols:
                fill[c] = 0.0
            for c in ("cutoff", "demand_class", "final_model"):
                if c in base.columns:
                    fill[c] = base[c].iloc[0] if c == "cutoff" else "not_forecast"
            base = pd.concat([base, fill], ignore_index=True)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # qpsolvers' sparse-conversion notices
            rec = self._reconciler().reconcile(Y_hat_df=base[["unique_id", "ds", "Final"]], S_df=S, tags=tags)
        name = [c for c in rec.columns if c.startswith("Final/")][0]
        return base.merge(rec[["unique_id", "ds", name]], on=["unique_id", "ds"], how="left"), name

    def _reconcile(self, fc: pd.DataFrame, S: pd.DataFrame, tags: dict, levels: list[int],
                   bands: tuple[dict, pd.Series, pd.Series] | None = None) -> pd.DataFrame:
        """Reconcile one origin's forecasts of every node. ``bands`` = (conformal table of the
        coherent forecast's scaled errors, naive scale per upper node at the origin, each upper
        node's key into the table: :meth:`_coherent_table`) gives the parents their bands;
        without it (or with an empty table) every node's own band is moved with its coherent
        point, as the bottom level's always is."""
        cols = ["Final", *[f"Final-{s}-{lv}" for lv in levels for s in ("lo", "hi")]]
        ids = S["unique_id"] if "unique_id" in S.columns else pd.Series(S.index)
        out, name = self._coherent_point(fc, S, tags, cols)
        for c in cols:
            out[c.replace("Final", "Base", 1)] = out[c]
        shift = out[name].to_numpy() - out["Final"].to_numpy()
        out["Final"] = out[name]
        for lv in levels:  # the node's own band moves with its coherent point; one that reached 0 keeps 0
            # (it was clipped there; MinTrace leaves ~1e-6 .. 1e-2 units on series forecast at 0, which
            # lifted their lower bound off 0 and made every week without demand a miss)
            lo = out[f"Final-lo-{lv}"].to_numpy(dtype=float)
            out[f"Final-lo-{lv}"] = np.where(lo <= 0, 0.0, np.clip(lo + shift, 0.0, None))
            out[f"Final-hi-{lv}"] = np.clip(out[f"Final-hi-{lv}"] + shift, 0.0, None)
        table, scale, keys = bands if bands is not None else ({}, pd.Series(dtype=float), pd.Series(dtype=object))
        upper = out["unique_id"].isin(set(scale.index)).to_numpy() & ~out["unique_id"].isin(_bottom_ids(tags)).to_numpy()
        if table and upper.any():  # parents: split-conformal on the coherent forecast's own errors
            part = out.loc[upper, ["unique_id", "ds", "Final"]].copy()
            step = part.groupby("unique_id")["ds"].rank(method="dense").astype(int).to_numpy()
            ints = apply_conformal(part["Final"].to_numpy(), scale.loc[part["unique_id"]].to_numpy(),
                                   part["unique_id"].map(keys).fillna("*").to_numpy(), step, table, levels)
            for lv, (lo, hi) in ints.items():
                part[f"Final-lo-{lv}"], part[f"Final-hi-{lv}"] = lo, hi
            nest_intervals(part, "Final", levels)  # >= 0, lo-95 <= lo-80, hi-80 <= hi-95
            for lv in levels:
                out.loc[upper, f"Final-lo-{lv}"] = part[f"Final-lo-{lv}"].to_numpy()
                out.loc[upper, f"Final-hi-{lv}"] = part[f"Final-hi-{lv}"].to_numpy()
        for lv in levels:  # every band holds its point
            out[f"Final-lo-{lv}"] = np.minimum(out[f"Final-lo-{lv}"], out["Final"])
            out[f"Final-hi-{lv}"] = np.maximum(out[f"Final-hi-{lv}"], out["Final"])
        order = {u: i for i, u in enumerate(ids)}
        out = out.assign(_o=out["unique_id"].map(order)).sort_values(["_o", "ds"], kind="mergesort")
        return out.drop(columns=[name, "_o"]).reset_index(drop=True)

    def _coherent_table(self, resid_b: pd.DataFrame, resid_u: pd.DataFrame, pan_b: Panel, pan_u: Panel,
                        S: pd.DataFrame, tags: dict, levels: list[int], classes: pd.Series) -> tuple[dict, pd.Series]:
        """Conformal table of the coherent forecast's scaled errors in the internal windows before
        one origin, and each upper node's key into it.

        ``resid_b`` / ``resid_u``: the bottom / upper forecaster's ``Final`` errors in those
        windows (``unique_id, cutoff, step, r`` with r = (y - forecast) / naive scale at the
        window's cutoff), from which the base forecasts are rebuilt and reconciled per window.
        Keys: ``<level>:<demand class>`` (``classes``: the upper nodes' classes at the origin)
        where that group has >= 50 errors, else ``<level>`` (the level's errors, however few);
        errors are pooled over steps; ``*`` (every upper level) only for a level without errors."""
        level_of = _level_of(tags)
        cls = classes.reindex(level_of.index).fillna("not_forecast").astype(str)
        base = pd.concat([self._as_nodes(_rebuild(resid_b, pan_b)), _rebuild(resid_u, pan_u)], ignore_index=True)
        if base.empty:
            return {}, level_of
        pos = pd.Series(np.arange(pan_u.n), index=pan_u.uids)
        parts = []
        for cut, g in base.groupby("cutoff", sort=True):
            rec, name = self._coherent_point(g[["unique_id", "ds", "Final"]], S, tags)
            rec = rec[rec["unique_id"].isin(pos.index) & rec["unique_id"].isin(level_of.index)]
            c = int(pan_u.dates.get_loc(pd.Timestamp(cut)))
            ii = pos.loc[rec["unique_id"]].to_numpy()
            tt = pan_u.dates.get_indexer(pd.DatetimeIndex(rec["ds"]))
            ok = tt > c
            y = pan_u.Y[ii[ok], tt[ok]]
            parts.append(pd.DataFrame({"unique_id": rec["unique_id"].to_numpy()[ok], "step": tt[ok] - c,
                                       "r": (y - rec[name].to_numpy()[ok]) / naive_scale(pan_u.Y, c)[ii[ok]]}))
        resid = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if resid.empty:
            return {}, level_of
        lvl = resid["unique_id"].map(level_of)
        table = conformal_table(resid.assign(demand_class=lvl), levels, min_group=1)
        by_class = conformal_table(resid.assign(demand_class=lvl + ":" + resid["unique_id"].map(cls)), levels)
        table.update({k: v for k, v in by_class.items() if k != ("*", 0)})
        key = level_of + ":" + cls
        return table, key.where([(k, 0) in table for k in key], level_of)

    def fit(self, df: pd.DataFrame, *, member_cache: MemberCache | None = None) -> HierarchicalDemandForecaster:
        """Fit both forecasters on all history and the parents' bands. ``member_cache``: one a
        :meth:`cross_validation` with the same settings on the same ``df`` filled; each level's
        forecaster takes its member forecasts at the selection windows' cutoffs from it instead
        of refitting them (``DemandForecaster.fit``: the same numbers)."""
        bottom, upper, S, tags = self._split(df)
        self.bottom_, self.upper_ = self._forecasters()
        self.all_short_ = None
        part = (lambda name: None) if member_cache is None else member_cache.part
        try:
            self.bottom_.fit(bottom, member_cache=part("bottom"))
        except TooShortError:
            # a young book: no bottom series has the periods the members need. With the fallback on
            # (the default) every level is forecast by it, as a plain forecaster serves such a book, and
            # the parents are made the sums of the bottom series' forecasts (bottom-up, whatever
            # ``method``: there are no member forecasts to reconcile); each parent keeps the band of
            # its own summed demand's fallback, moved onto that sum (no members' errors to calibrate a
            # coherent band on; the total's, where it would pool every error, from its level bucket's:
            # predict). Where the fallback cannot help either, its refusal says why.
            if (self.forecaster or {}).get("short_history", "fallback") != "fallback":
                raise
            self.bottom_, self.upper_ = self._forecasters(short=True)
            self.bottom_.fit(bottom)
            self.all_short_ = dict(self.bottom_.all_short_ or {}, method=self.method)
            self.upper_.fit(upper)
            self.S_, self.tags_ = S, tags
            self.coherent_conformal_, self.coherent_keys_ = {}, _level_of(tags)
            return self
        self.upper_.fit(upper, member_cache=part("upper"))
        self.S_, self.tags_ = S, tags
        self.coherent_conformal_, self.coherent_keys_ = self._coherent_table(
            self.bottom_.residuals_, self.upper_.residuals_, self.bottom_.panel_, self.upper_.panel_, S, tags,
            self.bottom_._levels(), _classes(self.upper_.forecast_))
        return self

    def predict(self, h: int | None = None, X_df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Every node's coherent forecast (node ids); ``X_df``: a sparse plan of the bottom series'
        drivers (:mod:`models.demand_hier_plan`), the upper levels' forecasts as without it."""
        if not hasattr(self, "bottom_"):
            raise NotFittedError("this HierarchicalDemandForecaster is not fitted yet; call fit(df) first")
        bottom = self.bottom_.predict(h) if X_df is None else self._bottom_under(X_df, h)
        upper = self.upper_.predict(h)
        if self.method != "bottom_up":  # MinTrace: the parents' own forecasts follow their series' plan
            upper = self._upper_under(upper, bottom, h)
        fc = pd.concat([upper, self._as_nodes(bottom)], ignore_index=True)
        table = getattr(self, "coherent_conformal_", None)  # None: saved before parents had their own bands
        keys = getattr(self, "coherent_keys_", None)
        bands = None if table is None or keys is None else (table, self.upper_.scale_, keys)
        out = self._reconcile(fc, self.S_, self.tags_, self.bottom_._levels(), bands)
        return self._young_total(out, self.bottom_._levels()) if getattr(self, "all_short_", None) else out

    def young_total_key(self) -> tuple[pd.Series | None, tuple[str, int] | None]:
        """The total's row of the upper fallback and the level-bucket key of its band when
        :meth:`_young_total` applies (an all-short book whose total's bucket of periods was not
        measured), else ``(row or None, None)``."""
        if not getattr(self, "all_short_", None):
            return None, None
        short, table = self.upper_.short_, self.upper_.short_conformal_
        own = short[short["unique_id"].astype(str) == "total"]  # the top node's id (hierarchy)
        if own.empty:
            return None, None
        t = own.iloc[0]
        key = ("*|" + str(level_bucket(float(t["level"]))[0]), 0)
        return t, (None if (t["bucket"], 0) in table or key not in table else key)

    def _young_total(self, out: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
        """``out`` (:meth:`_reconcile` of an all-short book) with the total's band from the errors of
        its level bucket (``*|<level>`` of the upper fallback's table) where its bucket of periods was
        not measured (module docstring, "Young books"); unchanged otherwise, and for a model saved
        before the fallback's table kept level buckets."""
        t, key = self.young_total_key()
        if key is None:
            return out
        table = self.upper_.short_conformal_
        at = (out["unique_id"].astype(str) == "total").to_numpy()
        point = out.loc[at, "Final"].to_numpy(dtype=float)
        for lv in levels:
            lo, hi = count_band(np.array([t["window_total"]]), np.array([t["window"]]), 1.0, lv)
            q = table[key][int(lv)]
            out.loc[at, f"Final-lo-{lv}"] = np.minimum(np.clip(point * (1.0 + q[0]), 0.0, None), np.minimum(lo[0], point))
            out.loc[at, f"Final-hi-{lv}"] = np.maximum(point * (1.0 + q[1]), np.maximum(hi[0], point))
        return out

    def cross_validation(self, df: pd.DataFrame, h: int, n_windows: int = 2, step_size: int | None = None, *,
                         member_cache: MemberCache | None = None, history_as_of: Any = None) -> pd.DataFrame:
        """Rolling-origin backtest of every level, reconciled per cutoff; ``cv_info_`` holds the
        bottom forecaster's (its ``train`` is the bottom table), ``upper_info_`` the upper one's,
        ``cv_estimator_`` the bottom forecaster and ``cv_history_`` every level's demand. The
        parents' bands at each cutoff come from the internal windows before it only
        (``cv_bands_``: cutoff -> (conformal table, each upper node's key into it)). ``member_cache``
        (:class:`models.demand_cache.MemberCache`) keeps each level's member forecasts for a later
        :meth:`fit` on the same table with the same settings.

        ``history_as_of`` (``training.demand_config``'s ``info["as_of"]``: the whole book's demand
        table as it stood at an instant, or None where unchanged): every level of each window
        forecasts from the history a run on its cutoff could read, the parents summed from the
        bottom series of ``df`` as they stood then (:mod:`models.demand_hier_as_of`), and the
        parents' bands are calibrated on those histories; forecasts are scored on ``df``."""
        bottom, upper, S, tags = self._split(df)
        est_b, est_u = self._forecasters(h)
        part = (lambda name: None) if member_cache is None else member_cache.part
        as_of = None
        if history_as_of is not None:
            from models.demand_hier_as_of import LevelsAsOf

            keys = self.nodes_[self.nodes_["unique_id"].isin(set(self.bottom_nodes_.values()))]
            keys = keys[["served_id", *[str(c) for c in self.levels]]].rename(columns={"served_id": "unique_id"})
            as_of = LevelsAsOf(history_as_of, bottom=bottom, keys=keys, levels=self.levels, freq=est_b.freq,
                               bottom_nodes=self.bottom_nodes_)
        cv_b = self._as_nodes(est_b.cross_validation(bottom, h=h, n_windows=n_windows, step_size=step_size,
                                                     member_cache=part("bottom"),
                                                     history_as_of=None if as_of is None else as_of.bottom))
        cv_u = est_u.cross_validation(upper, h=h, n_windows=n_windows, step_size=step_size, member_cache=part("upper"),
                                      history_as_of=None if as_of is None else as_of.upper)
        self.cv_info_, self.upper_info_, self.cv_estimator_ = est_b.cv_info_, est_u.cv_info_, est_b
        self.cv_history_ = pd.concat([upper[["unique_id", "ds", "y"]], self._as_nodes(bottom[["unique_id", "ds", "y"]])],
                                     ignore_index=True)
        self.S_, self.tags_ = S, tags
        pan_b = build_panel(bottom[["unique_id", "ds", "y"]], est_b.freq, exog=[])  # the forecasters' Y
        pan_u = build_panel(upper[["unique_id", "ds", "y"]], est_u.freq, exog=[])
        win_b = {pd.Timestamp(w["cutoff"]): w for w in est_b.cv_info_["windows"]}
        win_u = {pd.Timestamp(w["cutoff"]): w for w in est_u.cv_info_["windows"]}
        lv = est_b._levels()
        cv = pd.concat([cv_u, cv_b], ignore_index=True)
        parts, self.cv_bands_ = [], {}
        for cut, g in cv.groupby("cutoff", sort=True):
            wb, wu = win_b.get(pd.Timestamp(cut)), win_u.get(pd.Timestamp(cut))
            bands = None
            if wb is not None and wu is not None:
                # the internal windows' errors were measured on the history as it stood at this cutoff
                hb, hu = (pan_b, pan_u) if as_of is None else as_of.panels(pan_b, pan_u, pan_b.dates.get_loc(pd.Timestamp(cut)))
                table, keys = self._coherent_table(wb["residuals"], wu["residuals"], hb, hu, S, tags, lv,
                                                   _classes(cv_u[cv_u["cutoff"] == cut]))
                bands = (table, wu["scale"], keys)
                self.cv_bands_[pd.Timestamp(cut)] = (table, keys)
            parts.append(self._reconcile(g, S, tags, lv, bands))
        return pd.concat(parts, ignore_index=True)

    def served(self, fc: pd.DataFrame) -> pd.DataFrame:
        """A frame in node ids (:meth:`predict`) in the ids users see, with its ``level``.

        Bottom series keep the ids of a forecaster without a hierarchy (``<sku>/<location>``: the
        inventory and lead-time tables' ids); a summed key is :data:`ALL` (``A/*``: SKU A at every
        location; ``*/*``: the total). ``level``: ``total``, ``sku``, ``sku/location`` (top first)."""
        nodes = getattr(self, "nodes_", None)
        if nodes is None:
            raise NotFittedError("this HierarchicalDemandForecaster was saved before its series had served ids; "
                                 "fit and save it again (dealerml train demand)")
        m = nodes.set_index("unique_id")
        uid = fc["unique_id"].astype(str)
        unknown = sorted(set(uid) - set(m.index))
        if unknown:
            raise ValueError(f"{len(unknown)} id(s) are not nodes of the fitted hierarchy, e.g. {unknown[:3]}")
        out = fc.assign(unique_id=uid.map(m["served_id"]).to_numpy())
        out.insert(1, "level", uid.map(m["level"]).to_numpy())
        return out

    def not_forecast(self, served: pd.DataFrame) -> np.ndarray:
        """Rows of a :meth:`served` frame of bottom series the forecaster could not forecast (too
        short, no demand): 0 units for the reconciliation only, so their parents still add up."""
        if "final_model" not in served.columns:
            return np.zeros(len(served), dtype=bool)
        return ((served["level"] == self.nodes_["level"].iloc[-1])
                & (served["final_model"].astype(str) == "not_forecast")).to_numpy()

    def save(self, path: Path) -> Path:
        if not hasattr(self, "bottom_"):
            raise NotFittedError("this HierarchicalDemandForecaster is not fitted yet; call fit(df) first")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.bottom_.save(path / "bottom")
        self.upper_.save(path / "upper")
        with open(path / "hierarchy.pkl", "wb") as fh:
            pickle.dump({"levels": list(self.levels), "method": self.method, "forecaster": self.forecaster,
                         "S_": self.S_, "tags_": self.tags_, "coherent_conformal_": self.coherent_conformal_,
                         "coherent_keys_": self.coherent_keys_, "bottom_nodes_": self.bottom_nodes_,
                         "nodes_": self.nodes_, "all_short_": getattr(self, "all_short_", None)}, fh)
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
        obj.coherent_conformal_ = st.get("coherent_conformal_")  # absent: saved with moved parent bands
        obj.coherent_keys_ = st.get("coherent_keys_")
        obj.all_short_ = st.get("all_short_")  # absent: saved before young books were served (never all short)
        if st.get("nodes_") is not None:  # absent: saved before the served ids (bottom series under node ids)
            obj.bottom_nodes_, obj.nodes_ = st["bottom_nodes_"], st["nodes_"]
        return obj
