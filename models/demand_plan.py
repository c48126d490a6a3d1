"""Forecasts of a fitted :class:`models.demand.DemandForecaster` with new known-future drivers
(a plan): the drivers table ``predict`` would use (``future_drivers``), a plan for some series
(``predict_plan``, re-running only the LightGBM member from the booster kept at fit), and the
table-in / table-out ``predict_frame`` that the MLflow pyfunc and the services call.

``_DriverPlans`` is a mixin of ``DemandForecaster``: it uses the fitted attributes and the
forecaster's ``predict`` / ``_output`` / ``_lgbm_forecast``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from models.demand_conformal import apply_conformal, nest_intervals
from models.demand_fallback_bands import fallback_bands
from models.demand_members import _ENSEMBLE_OF, FINAL
from models.demand_select import FALLBACK_COLUMNS, Ranking, parse_selection, pick_served
from models.demand_short import SHORT_MODEL

__all__: list[str] = []


class _DriverPlans:
    """Plans of future drivers for a fitted forecaster (mixin of ``DemandForecaster``)."""

    def warm(self) -> Self:
        """Build now the lookups the first plan would build (``_plan_index``): a service calls
        this at start-up so no request pays for it. Returns self."""
        if hasattr(self, "panel_"):
            self._plan_index()
        return self

    def _plan_index(self) -> dict[str, Any]:
        """Lookups a plan needs, built once per fitted forecaster (kept beside the member cache,
        not saved): the forecast series at the last origin, their positions, and the rows of
        ``forecast_`` per series (so a plan for a few of 100k series reads only their rows)."""
        idx = self._cache.get("plan_index")
        if idx is None:
            p = self.panel_
            eligible = self._eligible(p, p.Y.shape[1] - 1, self.h)
            elig_uids = np.asarray(p.uids)[eligible].astype(str)
            idx = {"eligible": eligible, "uids": elig_uids, "pos": pd.Index(elig_uids),
                   "rows": self.forecast_.groupby(self.forecast_["unique_id"].astype(str), sort=False).indices}
            self._cache["plan_index"] = idx
        return idx

    def _rerun(self, X_future: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The forecast of every series under the future drivers ``X_future`` (series x h x drivers), with
        the short-history fallback's rows as fitted, and the record of the series that fell back or are
        not forecast under them (``predict`` with ``X_df``, :meth:`set_planned_drivers`): a full re-run
        of the last origin where the choice re-centres or no LightGBM member is kept, else
        :meth:`_replan` (only the member and what is built on it move)."""
        if parse_selection(self.selection)[1] or "LightGBM" not in self._members():
            fc, info = self._origin(self.panel_, self.panel_.Y.shape[1] - 1, self.h, dict(self._cache), X_future)
            record = info["fallback"]
        else:
            fc, record = self._replan(X_future)
        return self._short_rows(fc), record

    def _ranking(self, candidates: list[str]) -> Ranking:
        """The ranking the fallback of a plan follows: the one fit kept (``ranking_``); for a forecaster
        saved before it was kept, the order of all series' scores (``scores_``; the default order
        without selection windows)."""
        kept = getattr(self, "ranking_", None)
        if kept is not None:
            return kept
        scores = getattr(self, "scores_", None)
        if scores is not None and "all" in scores.index:
            return Ranking(candidates, scores.loc["all", [c for c in candidates if c in scores.columns]].astype(float))
        return Ranking.fixed("AutoETS" if "AutoETS" in candidates else candidates[0], candidates)

    def _replan(self, X_future: np.ndarray, uids: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The fitted forecast with the LightGBM member re-run on new future drivers, and the record
        (:data:`models.demand_select.FALLBACK_COLUMNS`) of its series that fell back or are not forecast.

        Only the drivers after the last date change, so the member choice, the statsforecast
        members and the conformal tables of fit stay; the LightGBM member (the booster kept from
        fit, or for forecasters saved before it was kept, refitted on the same history with the
        same seed: the same booster), the Ensemble, the served point of each series and the
        intervals about them are recomputed. The served point follows fit's rule
        (:func:`models.demand_select.pick_served`): the chosen member where it has a forecast for every
        period under the plan, else the next of the series' ranking (``ranking_``) that has, else the
        series is not forecast (left out; the record says why); a series served by a fallback member
        gets the band of that member's errors (``served_conformal_``,
        :func:`models.demand_select.fallback_bands`). Equals a full re-run of the last origin,
        without refitting every member on the selection windows.

        ``uids`` (default: every forecast series) are the series to re-run, in the order of the
        rows of ``X_future`` (len(uids) x h x k, raw driver values); only their rows are returned.
        """
        p, h = self.panel_, self.h
        c = p.Y.shape[1] - 1
        future = pd.date_range(p.dates[c], periods=h + 1, freq=p.offset)[1:]
        index = self._plan_index()
        eligible, elig_uids = index["eligible"], index["uids"]
        uids = elig_uids if uids is None else np.asarray(list(uids), dtype=str)
        pos = index["pos"].get_indexer(uids)
        if (pos < 0).any():
            raise ValueError(f"series {uids[pos < 0][:10].tolist()} have no forecast to re-run")
        kept = getattr(self, "lgbm_", None)
        if kept is not None and kept["c"] == c:  # fitted on the eligible series of this origin
            model, first, ref = kept["model"], kept["first"], kept["ref"]
            Y = p.Y[np.flatnonzero(eligible)[pos], first : c + 1]  # only the planned series' history
            Xf = X_future
            if ref is not None:
                Xf = np.concatenate([X_future, X_future / ref[pos]], axis=2)
            new = model.predict(Y, future, Xf, rows=pos)
        else:  # saved before the member was kept: refit it (same data and seed, same booster)
            full = np.repeat(p.X[eligible][:, c : c + 1, :], h, axis=1)
            full[pos] = X_future
            new = self._lgbm_forecast(p.subset(eligible), c, h, future, full)[pos]
        lgbm = pd.DataFrame({"unique_id": np.repeat(uids, h), "ds": np.tile(future.values, len(uids)),
                             "_new": new.reshape(-1)})
        fc = self.forecast_
        if len(uids) < len(elig_uids):
            fc = fc.iloc[np.concatenate([index["rows"][u] for u in uids])]
        fc = fc.merge(lgbm, on=["unique_id", "ds"], how="inner", validate="one_to_one")
        fc["LightGBM"] = fc.pop("_new").clip(lower=0.0)
        present = [m for m in _ENSEMBLE_OF if m in fc.columns]
        if "Ensemble" in fc.columns and len(present) >= 2:
            fc["Ensemble"] = fc[present].mean(axis=1, skipna=False)  # as models.demand_members: NaN where one is missing
        # the served point by fit's rule on the plan's member forecasts (this path has no +median move)
        candidates = [m for m in (*self._members(), "Ensemble") if m in fc.columns]
        fc[FINAL], fc["final_model"], record = pick_served(fc, candidates, self.choice_, self._ranking(candidates))
        gone = set(record.loc[record["served"].isna(), "unique_id"])
        if gone:
            fc = fc[~fc["unique_id"].isin(gone)].reset_index(drop=True)
        levels = self._levels()
        scale_c = self.scale_.loc[fc["unique_id"]].to_numpy()
        for m in ("LightGBM", "Ensemble", FINAL):
            if m not in fc.columns or m not in self.conformal_:
                continue
            ints = apply_conformal(fc[m].to_numpy(), scale_c, fc["demand_class"].to_numpy(), fc["step"].to_numpy(),
                                   self.conformal_[m], levels)
            for lv, (lo, hi) in ints.items():
                fc[f"{m}-lo-{lv}"] = lo
                fc[f"{m}-hi-{lv}"] = hi
            nest_intervals(fc, m, levels)
        if FINAL in self.conformal_:
            served = getattr(self, "served_conformal_", None)
            if served is None:  # saved before they were kept: the members' own tables (this path has no shift)
                served = {m: t for m, t in self.conformal_.items() if m != FINAL}
            record = fallback_bands(fc, record, served, list(self.conformal_.values()), scale_c, levels)
        record = record.assign(cutoff=self.last_ds_)[FALLBACK_COLUMNS]
        return fc, record

    def future_drivers(self) -> pd.DataFrame | None:
        """The known-future drivers ``predict`` uses when no ``X_df`` is given: each series' last
        known value carried over the ``h`` periods after the last date of fit, except where
        :meth:`set_planned_drivers` gave planned values, as a table (``unique_id, ds`` + one column
        per driver) to edit into a plan and pass as ``X_df``. None when the forecaster was fitted
        without drivers."""
        self._check_fitted()
        if not self.exog_:
            return None
        planned = getattr(self, "planned_drivers_", None)
        if planned is not None:
            return planned.copy()
        p = self.panel_
        future = pd.date_range(self.last_ds_, periods=self.h + 1, freq=p.offset)[1:]
        out = pd.DataFrame({"unique_id": np.repeat(p.uids.astype(str), self.h), "ds": np.tile(future.values, p.n)})
        for k, col in enumerate(self.exog_):
            out[col] = np.repeat(p.X[:, -1, k], self.h)
        return out

    def set_planned_drivers(self, X_df: pd.DataFrame) -> Self:
        """Make the values of ``X_df`` (``unique_id, ds`` + any of the drivers of fit, for periods
        after the last date of fit; e.g. a promotions calendar's campaigns, known ahead) the
        forecaster's default plan: :meth:`predict` without ``X_df``, :meth:`future_drivers` (the
        template plans start from, in the CLI and the service) and the served forecast follow them.
        Cells it leaves empty, rows it lacks and drivers it does not give keep the carried last value;
        rows of unknown series or other dates are ignored. Only the LightGBM member reads drivers, so
        only it (and what is built on it) moves, as under any plan. Returns self."""
        self._check_fitted()
        if not self.exog_ or getattr(self, "all_short_", None):
            return self
        base = self.future_drivers().set_index(["unique_id", "ds"])
        given = [c for c in self.exog_ if c in X_df.columns]
        if given:
            X = X_df.assign(unique_id=X_df["unique_id"].astype(str), ds=pd.to_datetime(X_df["ds"]))
            X = X.drop_duplicates(["unique_id", "ds"], keep="last").set_index(["unique_id", "ds"])[given]
            X = X.apply(pd.to_numeric, errors="coerce").reindex(base.index)
            base[given] = X.where(np.isfinite(X.to_numpy(dtype="float64")), base[given])
        plan = base.reset_index()
        # the fitted forecast_ stays what plans are re-run from; predict() without X_df answers this one
        self.planned_forecast_, record = self._rerun(self._future_exog(plan))
        self.fallback_ = record  # the served forecast's record: series that fell back (or left out) under it
        self.planned_drivers_ = plan
        return self

    def driver_range_warnings(self, X_df: pd.DataFrame) -> list[dict[str, Any]] | None:
        """Planned driver values of ``X_df`` (``unique_id, ds`` + drivers; empty cells not checked)
        outside the range of the rows the LightGBM member trained on (``driver_ranges_``), per driver
        (:func:`models.demand_driver_range.out_of_range`): the member forecasts such a value as the
        nearest edge of the range, so the forecast does not respond to it beyond that. Only series the
        member re-forecasts under a plan are read (not the short-history fallback's). Each driver's
        entry is followed by one (``kind``: relative to its series' mean) for the rows whose value
        divided by the series' mean (the member's ``ref``, as :meth:`_replan` divides) is outside the
        range of those multiples (``driver_relative_ranges_``; None for a forecaster saved before:
        the raw range only). ``[]``: all inside, or no member reads drivers; None: the forecaster was
        saved before the ranges were recorded, and nothing is checked."""
        from models.demand_driver_range import out_of_range

        self._check_fitted()
        ranges = getattr(self, "driver_ranges_", None)
        if ranges is None:
            return None
        if not ranges or not len(X_df):
            return []
        index = self._plan_index()
        read = X_df["unique_id"].astype(str).isin(set(index["uids"])).to_numpy()
        plan = X_df[read] if not read.all() else X_df
        relative, refs = getattr(self, "driver_relative_ranges_", None), None
        kept = getattr(self, "lgbm_", None)
        if relative and kept is not None and kept.get("ref") is not None and kept["c"] == self.panel_.Y.shape[1] - 1:
            ref = kept["ref"][index["pos"].get_indexer(plan["unique_id"].astype(str)), 0, :]  # rows x drivers
            refs = {str(n): ref[:, k] for k, n in enumerate(self.exog_)}
        return out_of_range(plan, ranges, relative=relative, refs=refs)

    def pyfunc_input_columns(self) -> list[tuple[str, str, bool]]:
        """The columns :meth:`predict_frame` reads, as ``(name, MLflow type, required)``, for the
        input signature of the logged model (``training.tracking``): ``unique_id`` and ``h``,
        and for a forecaster with drivers ``ds`` and one column per driver (a plan). All optional."""
        cols = [("unique_id", "string", False), ("h", "long", False)]
        if getattr(self, "exog_", None):
            cols += [("ds", "datetime", False), *[(str(c), "double", False) for c in self.exog_]]
        return cols

    def predict_frame(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """Table-in / table-out predict (for MLflow pyfunc and services): ``model_input`` has an
        optional ``unique_id`` column (series to return; all when absent) and an optional ``h``
        (the horizon, first row; default the fitted h). With a ``ds`` column it is a plan for a
        forecaster with drivers: ``unique_id, ds`` + every driver for each forecast period of the
        series to forecast (:meth:`predict_plan`; the template is :meth:`future_drivers`)."""
        h = int(model_input["h"].iloc[0]) if "h" in model_input.columns and len(model_input) else None
        if "ds" in model_input.columns:
            if not getattr(self, "exog_", None):
                raise ValueError("a ds column is a plan of drivers, and this forecaster was fitted without drivers; "
                                 "send unique_id (and h) only")
            if model_input["ds"].isna().any() or "unique_id" not in model_input.columns:
                raise ValueError(f"a plan needs unique_id, ds and {list(self.exog_)} on every row")
            return self.predict_plan(model_input[["unique_id", "ds", *self.exog_]], h)
        out = self.predict(h)
        if "unique_id" in model_input.columns:
            want = set(model_input["unique_id"].astype(str))
            unknown = sorted(want - set(out["unique_id"]))
            if unknown:
                raise ValueError(f"unknown unique_id(s) {unknown[:5]} ({len(unknown)} in all); the model knows {len(set(out['unique_id']))} series")
            out = out[out["unique_id"].isin(want)].reset_index(drop=True)
        return out

    def _future_exog(self, X_df: pd.DataFrame, uids: Sequence[str] | None = None) -> np.ndarray:
        """The drivers of ``X_df`` for the next h periods of ``uids`` (default: every series
        forecast) as a len(uids) x h x k array; every (series, period) pair needs a finite value."""
        need = ["unique_id", "ds", *self.exog_]
        miss = [c for c in need if c not in X_df.columns]
        if miss:
            raise ValueError(f"X_df is missing column(s) {miss}; it needs {need}")
        if uids is None:
            uids = self._plan_index()["uids"]
        future = pd.date_range(self.last_ds_, periods=self.h + 1, freq=self.panel_.offset)[1:]
        X = X_df.assign(unique_id=X_df["unique_id"].astype(str), ds=pd.to_datetime(X_df["ds"]))
        X = X.set_index(["unique_id", "ds"])[self.exog_]
        if not X.index.is_unique:
            dup = X.index[X.index.duplicated()][:5].tolist()
            raise ValueError(f"X_df has more than one row for (unique_id, ds) pairs such as {dup}")
        idx = pd.MultiIndex.from_product([list(uids), future], names=["unique_id", "ds"])
        got = X.reindex(idx).apply(pd.to_numeric, errors="coerce")
        bad = ~np.isfinite(got.to_numpy(dtype="float64"))
        if bad.any():
            n = int(bad.any(axis=1).sum())
            first = got.index[bad.any(axis=1)][0]
            raise ValueError(
                f"X_df lacks finite values for {n} (unique_id, ds) pairs of the next {self.h} periods "
                f"({future[0].date()} .. {future[-1].date()}), e.g. {first[0]} at {first[1].date()}"
            )
        return got.to_numpy(dtype="float64").reshape(len(uids), self.h, len(self.exog_))

    def predict_plan(self, X_df: pd.DataFrame, h: int | None = None, level: Sequence[int] | None = None, *,
                     return_fallback: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        """Forecasts of only the series in ``X_df``, with the planned drivers it gives them.

        ``X_df`` holds ``unique_id, ds`` and every driver of fit for each of the next ``h``
        (fitted) periods of each series in it; other series are not forecast. Only the LightGBM
        member (and what is built on it) moves, from the booster kept at fit, so a plan for a few
        series costs milliseconds. Same columns as :meth:`predict`, and the same rule as fit and
        ``predict`` for the served forecast: where the chosen member has no forecast for every
        period under the plan, the next one of the series' ranking serves it (``final_model``
        names it; its band is calibrated on that member's errors), and where none has, the series
        is not forecast (left out, as ``predict`` leaves such series out).

        ``return_fallback=True`` also returns the record of the plan's series that fell back or are
        not forecast under it (:data:`models.demand_select.FALLBACK_COLUMNS`, as ``fallback_``;
        ``served`` None: not forecast; ``reason`` says why; ``cutoff`` the last date of fit).
        """
        self._check_fitted()
        if not self.exog_:
            raise ValueError("this forecaster was fitted without drivers; there is nothing to plan")
        h, levels = self._horizon_levels(h, level)
        uids = list(dict.fromkeys(X_df["unique_id"].astype(str))) if "unique_id" in X_df.columns else []
        forecast = self._plan_index()["rows"]
        unknown = [u for u in uids if u not in forecast]
        if unknown:
            raise ValueError(f"X_df names {len(unknown)} series without a forecast, e.g. {unknown[:5]}")
        # short-history fallback series read no drivers: they keep their fitted forecast
        short = set(self.forecast_.loc[self.forecast_["final_model"] == SHORT_MODEL, "unique_id"].astype(str))
        planned = [u for u in uids if u not in short]
        record = pd.DataFrame(columns=FALLBACK_COLUMNS)
        if not planned:
            fc = self.forecast_[self.forecast_["unique_id"].astype(str).isin(set(uids))]
        elif parse_selection(self.selection)[1] or "LightGBM" not in self._members():
            self._future_exog(X_df, planned)  # every planned (series, period) needs its drivers
            full = self.future_drivers()
            full = full[~full["unique_id"].isin(set(planned))]
            given = X_df[X_df["unique_id"].astype(str).isin(set(planned))]
            # a full re-run of the last origin, as predict(X_df=...), keeping its fallback record
            Xf = self._future_exog(pd.concat([full, given[full.columns]], ignore_index=True))
            fc, info = self._origin(self.panel_, self.panel_.Y.shape[1] - 1, self.h, dict(self._cache), Xf)
            fc, record = self._short_rows(fc), info["fallback"]
        else:
            fc, record = self._replan(self._future_exog(X_df, planned), planned)
            fc = self._short_rows(fc)
        fc = fc[fc["unique_id"].isin(set(uids))]
        # the plan's order of series; a series not forecast under the plan is left out (record: why)
        kept = [u for u in uids if u in set(fc["unique_id"])]
        fc = fc.set_index("unique_id").loc[kept].reset_index()
        out = self._output(fc.groupby("unique_id", sort=False).head(h), levels)
        if not return_fallback:
            return out
        record = record[record["unique_id"].astype(str).isin(set(uids))]
        record = record.assign(_o=record["unique_id"].astype(str).map({u: i for i, u in enumerate(uids)}))
        return out, record.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)
