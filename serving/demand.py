"""Demand backend: the champion forecaster's forecasts held in arrays, safety stock per request.

At start-up the champion ``DemandForecaster`` predicts every series it was fitted on for its
fitted horizon and levels (``predict()``); the point forecast ``Final`` and its interval
bounds are kept as ``(n_series, h)`` float arrays with a dict ``unique_id -> row``, so a
request is a lookup and a slice. Levels and quantiles are served only where the champion
has them (a quantile q < 0.5 is the lower bound of the ``100*(1-2q)`` % interval, q > 0.5
the upper bound of ``100*(2q-1)`` %); anything else is answered 422 naming what is
available, instead of an invented number.

``DemandBackend`` inherits its request-to-rows lookups (series ids, filters, horizon, levels and
quantiles) from ``serving._demand_rows`` and its ``drivers`` plan handling (the plan's forecast and
its out-of-range warnings) from ``serving._demand_plan``; ``FINAL`` comes from there too.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

from models.demand import not_forecast_reasons
from serving._demand_plan import FINAL, _PlanMixin
from serving._demand_rows import _RowsMixin
from serving.errors import BadRequest
from serving.schemas import MAX_IDS
from serving.settings import sizing_cache_entries

__all__ = ["DemandBackend", "FINAL"]


def _keys_from_ids(uids: list[str], levels: list[str]) -> pd.DataFrame | None:
    """Key columns from ``unique_id`` = keys joined by '/' (as ``features.demand`` builds them)."""
    if not levels:
        return None
    parts = [u.split("/") for u in uids]
    if any(len(p) != len(levels) for p in parts):
        return None
    return pd.DataFrame({"unique_id": uids, **{lv: [p[i] for p in parts] for i, lv in enumerate(levels)}})


def _is_hierarchical(estimator: Any) -> bool:
    return hasattr(estimator, "bottom_") and hasattr(estimator, "nodes_") and hasattr(estimator, "served")


def _hierarchy_forecast(estimator: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every level's coherent forecast in served ids, and what the backend needs to know of the
    levels. Bottom series the champion could not forecast (too short, no demand: 0 units in the
    reconciliation) are not in ``predict_frame``, as a plain champion leaves them out, and
    ``not_forecast`` names why."""
    fc = estimator.predict_frame(pd.DataFrame()).drop(columns=["level"])
    nodes = estimator.nodes_
    key_columns = [str(c) for c in estimator.levels]
    bottom_level = str(nodes["level"].iloc[-1])
    served = set(fc["unique_id"].astype(str))
    nodes = nodes[nodes["served_id"].isin(served)]
    level_of = dict(zip(nodes["served_id"], nodes["level"], strict=True))
    keys = {r["served_id"]: {c: str(r[c]) for c in key_columns if r[c] is not None and not pd.isna(r[c])}
            for r in nodes.to_dict("records")}
    bottom = nodes[nodes["level"] == bottom_level]
    names = list(dict.fromkeys(estimator.nodes_["level"]))
    patterns = {}
    for i, lv in enumerate(names):
        parts = [f"<{c}>" for c in key_columns[:i]] + ["*"] * (len(key_columns) - i)
        patterns[lv] = "/".join(parts) if lv != bottom_level else "/".join(f"<{c}>" for c in key_columns)
    return fc, {
        "estimator": estimator,  # plans: the bottom level re-run under them and every level reconciled
        "method": str(estimator.method),
        "key_columns": key_columns,
        "level_names": names,
        "bottom_level": bottom_level,
        "level_of": level_of,
        "keys": keys,
        "id_patterns": patterns,
        "bottom_keys": bottom[["served_id", *key_columns]].rename(columns={"served_id": "unique_id"}).astype(str),
    }


class DemandBackend(_RowsMixin, _PlanMixin):
    """Precomputed forecast arrays of one champion plus the request-time maths."""

    def __init__(
        self,
        *,
        model_name: str,
        model_version: str,
        freq: str,
        uids: list[str],
        keys: pd.DataFrame | None,
        dates: pd.DatetimeIndex,
        mean: np.ndarray,
        bounds: dict[int, tuple[np.ndarray, np.ndarray]],
        last_observed: pd.Timestamp,
        estimator: Any = None,
        members: list[str | None] | None = None,
        inventory: pd.DataFrame | None = None,
        lead_times: pd.DataFrame | None = None,
        policy_settings: dict[str, Any] | None = None,
        sizing_cache_entries: int | None = None,
        hierarchy: dict[str, Any] | None = None,
        promo_plan: dict[str, Any] | None = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.freq = freq
        self.uids = list(uids)
        self.row = {u: i for i, u in enumerate(self.uids)}
        self.dates = pd.DatetimeIndex(dates)
        self.date_strings = [d.date().isoformat() for d in self.dates]
        self.mean = mean
        self.bounds = bounds
        self.levels = sorted(bounds)
        self.h = mean.shape[1]
        self.last_observed = pd.Timestamp(last_observed)
        self.estimator = estimator
        # the member each series is served by (e.g. LightGBM, CrostonSBA): only LightGBM and the
        # Ensemble read drivers, so a plan moves only the series they serve
        self.members = list(members) if members is not None else [None] * len(self.uids)
        self.inventory = inventory
        # the demand the champion was fitted on: intermittent / lumpy series size safety stock
        # from their own history (models.inventory), as `dealerml safety-stock` does
        from models.inventory import forecaster_history

        self.history = forecaster_history(estimator) if estimator is not None else None
        # row positions per series, so a request reads only its series' rows (at 100k series the
        # whole table is ~15 M rows)
        self.history_rows = self.history.groupby("unique_id", sort=False).indices if self.history is not None else {}
        # each series' last sale and gaps (the long-silence note), once: the history does not change while serving
        from models._inventory_advice import sale_silences

        self.silences = sale_silences(self.history) if self.history is not None else None
        self.policy_settings = {"n_sims": 4000, "cover_limit_periods": 12.0, "random_state": 0, **(policy_settings or {})}
        self.key_columns: list[str] = []
        self.keys_by_uid: list[dict[str, str]] = [{} for _ in self.uids]
        self.index: dict[str, dict[str, set[int]]] = {}
        # a hierarchical champion (models.demand_hier): which served rows are SKU totals / the total;
        # ``keys`` then covers the bottom series only, so the filters select SKU x location series
        self.hierarchy = hierarchy
        # where the default promo plan comes from (serving._demand_promo.table_plan); None: no promotions table
        self.promo_plan = promo_plan
        # the promotions table planned under, re-read by the champion check (serving._promo_watch): a table
        # changed since start-up marks the model stale in /model_info; set by build
        self.promo_watch: Any = None
        self.upper_rows: set[int] = set()
        if keys is not None and len(keys):
            k = keys.set_index("unique_id") if "unique_id" in keys.columns else keys
            self.key_columns = [str(c) for c in k.columns]
            k = k.reindex(self.uids)
            for col in self.key_columns:
                values = k[col].tolist()
                idx: dict[str, set[int]] = {}
                for i, v in enumerate(values):
                    if hierarchy is not None and pd.isna(v):  # an upper level: not selected by filters
                        continue
                    v = str(v)
                    idx.setdefault(v, set()).add(i)
                    self.keys_by_uid[i][col] = v
                self.index[col] = idx
        if hierarchy is not None:
            bottom = hierarchy["bottom_level"]
            for u, lv in hierarchy["level_of"].items():
                if lv != bottom and u in self.row:
                    self.upper_rows.add(self.row[u])
                    self.keys_by_uid[self.row[u]] = dict(hierarchy["keys"].get(u, {}))
        self.not_forecast = not_forecast_reasons(estimator, set(self.uids))
        # series forecast by the short-history fallback: their note on /forecast and /safety_stock
        from models.demand_short import short_note

        short = getattr(estimator, "short_", None)
        self.notes: dict[str, str] = ({} if short is None or not len(short) else
                                      {str(u): short_note(n, m) for u, n, m in zip(short["unique_id"], short["n_periods"],
                                                                                    short["window"], strict=True)
                                       if str(u) in self.row})
        # series whose chosen member had no forecast from the cutoff, served by the next one of their
        # ranking (the estimator's fallback_, models.demand_select.pick_served): their note on /forecast
        fb = getattr(estimator, "fallback_", None)
        self.fallback_notes: dict[str, str] = (
            {} if fb is None or not len(fb) else
            {str(u): str(r) for u, r, m in zip(fb["unique_id"], fb["reason"], fb["served"], strict=True)
             if m is not None and not pd.isna(m) and str(u) in self.row})
        # known-future drivers: the values an unplanned forecast assumes (each series' last known
        # value), as an (n_series, h, k) array; a request's plan overrides some of them
        self.driver_names: list[str] = []
        self.carried: np.ndarray | None = None
        template = None
        # a hierarchy's bottom forecaster: its series' drivers (the upper levels have none: NaN rows, not answered)
        if estimator is not None and getattr(estimator, "exog_", None) and hasattr(estimator, "predict_plan"):
            template = estimator.future_drivers()
        if template is not None:
            self.driver_names = [str(c) for c in estimator.exog_]
            t = template.assign(unique_id=template["unique_id"].astype(str), ds=pd.to_datetime(template["ds"]))
            got = t.set_index(["unique_id", "ds"]).reindex(pd.MultiIndex.from_product([self.uids, self.dates]))
            self.carried = got[self.driver_names].to_numpy(dtype="float64").reshape(len(self.uids), self.h, -1)
            if hasattr(estimator, "warm"):
                estimator.warm()  # plan lookups built at start-up, not on the first planned request
        from serving.inventory import (
            lead_times_by_series,
            on_hand_by_series,
            on_hand_dates_by_series,
        )

        self.on_hand = on_hand_by_series(inventory, self.key_columns) if self.key_columns else {}
        self.on_hand_dates = on_hand_dates_by_series(inventory, self.key_columns) if self.key_columns else {}
        self.lead_times = lead_times_by_series(
            lead_times, {u: self.keys_by_uid[i] for i, u in enumerate(self.uids) if i not in self.upper_rows}
        )
        # the sizings of unplanned series per (series, service level, lead time, spread, review):
        # repeated /safety_stock requests simulate nothing (serving.inventory.SizingCache)
        from serving.inventory import DEFAULT_CACHE_ENTRIES, SizingCache

        self.sizing_cache = SizingCache(DEFAULT_CACHE_ENTRIES if sizing_cache_entries is None else sizing_cache_entries)

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, estimator: Any, slot: Any, book: Any, cfg: Any) -> DemandBackend:
        """Predict every series once with the champion and keep the arrays.

        A hierarchical champion (``models.demand_hier``) serves every level's coherent forecast:
        bottom series under their plain ids, SKU totals as ``<sku>/*``, the total as ``*/*``
        (:func:`_hierarchy_forecast`); its bottom forecaster sizes safety stock.

        Where the config has a promotions table and the champion a calendar plan of its own, the table as
        read now becomes its default plan first (:func:`serving._demand_promo.table_plan`)."""
        from serving._demand_promo import logger, table_plan
        from training.commands._alias_plan import alias_key_columns
        from training.demand_config import demand_settings

        settings = demand_settings(cfg)
        # the key columns the champion's ids split into (answers' keys, filters, the promotions table's SKUs), as
        # `forecast --alias --config` splits them: a plain champion's training run's demand.levels win over the
        # config's ([location, sku] matched every campaign's SKU with a location: all dropped, without a word)
        key_columns, keys_note = alias_key_columns(
            estimator, settings, getattr(slot, "run_id", None), config="the config",
            what="the champion's series ids are split into key columns (keys, filters, the promotions table)")
        if keys_note:
            logger.warning("%s (config %s)", keys_note,
                           getattr(cfg, "config_path", None) or getattr(cfg, "name", "the config"))
        # the config's promotions table as read now: the default plan where it differs from the trained one
        promo_plan = table_plan(estimator, slot, book, cfg, key_columns=key_columns)
        hierarchy = None
        if _is_hierarchical(estimator):
            fc, hierarchy = _hierarchy_forecast(estimator)
            estimator = estimator.bottom_  # plain ids: residuals, history and reasons for safety stock
        else:
            fc = estimator.predict()
        if FINAL not in fc.columns:
            raise ValueError(f"the forecaster's predict() has no {FINAL!r} column; got {list(fc.columns)[:12]}")
        fc = fc.sort_values(["unique_id", "ds"], kind="mergesort")
        uids = fc["unique_id"].astype(str).drop_duplicates().tolist()
        dates = pd.DatetimeIndex(sorted(fc["ds"].unique()))
        n, h = len(uids), len(dates)
        if n * h != len(fc):
            raise ValueError(
                f"the forecaster returned {len(fc)} rows for {n} series x {h} periods; "
                "expected one row per series and period"
            )

        def grid(col: str) -> np.ndarray:
            return fc[col].to_numpy(dtype="float64").reshape(n, h)

        mean = grid(FINAL)
        chosen = (fc["final_model"].astype(str).to_numpy().reshape(n, h)[:, 0].tolist()
                  if "final_model" in fc.columns else [None] * n)
        if hierarchy is not None:  # a parent is served by the reconciliation, not by one member
            bottom = hierarchy["bottom_level"]
            chosen = [hierarchy["method"] if hierarchy["level_of"][u] != bottom else m
                      for u, m in zip(uids, chosen, strict=True)]
        bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for col in fc.columns:
            if col.startswith(f"{FINAL}-lo-"):
                lv = int(col.rsplit("-", 1)[1])
                hi_col = f"{FINAL}-hi-{lv}"
                if hi_col in fc.columns:
                    bounds[lv] = (grid(col), grid(hi_col))
        bad = ~np.isfinite(mean)
        if bad.any():
            raise ValueError(f"the champion's forecast has {int(bad.sum())} non-finite values")
        for lv, (lo, hi) in bounds.items():
            nonfinite = int((~np.isfinite(lo)).sum() + (~np.isfinite(hi)).sum())
            if nonfinite:
                raise ValueError(f"the champion's {lv}% interval has {nonfinite} non-finite bounds")
        panel = getattr(estimator, "panel_", None)
        keys = getattr(panel, "keys", None) if hierarchy is None else hierarchy["bottom_keys"]
        if keys is not None and "unique_id" not in keys.columns:
            keys = keys.assign(unique_id=panel.uids)
        if keys is None:
            keys = _keys_from_ids(uids, key_columns)
        # the champion's own demand.freq is the unit of its periods: the config's review period and cover limit
        # (periods of the config's demand.freq, maybe edited since training, W -> M) are converted to it, as
        # `safety-stock --alias --config` converts them (they were taken as weeks for a monthly config, silently)
        from training.commands._alias_plan import trained_periods

        freq, review, cover, freq_note = trained_periods(estimator, settings, config="the config", model="the champion")
        if freq_note:
            logger.warning("%s (config %s)", freq_note,
                           getattr(cfg, "config_path", None) or getattr(cfg, "name", "the config"))
        inventory = getattr(book, "inventory", None)
        last = getattr(estimator, "last_ds_", dates[0])
        backend = cls(
            model_name=slot.name,
            model_version=f"{slot.name}/{slot.version}",  # as on every batch table
            freq=freq,
            uids=uids,
            keys=keys,
            dates=dates,
            mean=mean,
            bounds=bounds,
            last_observed=last,
            estimator=estimator,
            members=chosen,
            inventory=inventory,
            lead_times=getattr(book, "lead_times", None),
            policy_settings={
                "n_sims": settings.n_sims,
                "cover_limit_periods": cover,
                "random_state": int(getattr(cfg, "seed", 0) or 0),
                "review_period": review,
                "lead_time_days": float(settings.lead_time_days),
                "lead_time_std_days": float(settings.lead_time_std_days),
            },
            sizing_cache_entries=sizing_cache_entries(),
            hierarchy=hierarchy,
            promo_plan=promo_plan,
        )
        # planned under the table (or kept the trained plan despite it): watch it; not a champion trained without it
        if promo_plan is not None and promo_plan["source"] != "trained_without_table":
            from serving._promo_watch import PromoWatch

            backend.promo_watch = PromoWatch.of(cfg, book, promo_plan["read_at"])
        return backend

    def summary(self) -> dict[str, Any]:
        out = self._summary()
        if self.hierarchy is not None:
            hz = self.hierarchy
            counts: dict[str, int] = {}
            for u in self.uids:
                counts[hz["level_of"][u]] = counts.get(hz["level_of"][u], 0) + 1
            out["hierarchy"] = {
                "method": hz["method"],
                "key_columns": hz["key_columns"],
                "levels": [{"level": lv, "n_series": counts.get(lv, 0), "ids": hz["id_patterns"][lv]}
                           for lv in hz["level_names"]],
                "safety_stock_level": hz["bottom_level"],
            }
        return out

    def _summary(self) -> dict[str, Any]:
        return {
            "n_series": len(self.uids),
            "freq": self.freq,
            "horizon": self.h,
            "levels": self.levels,
            "last_observed": self.last_observed.date().isoformat(),
            "filters": {c: sorted(v) for c, v in self.index.items() if c != "sku"},
            # a few ids it serves (SKU x location series of a hierarchy): without a location filter (a
            # champion keyed by sku alone, or a series table) they are a client's only way to one
            "series_examples": list(islice((u for i, u in enumerate(self.uids) if i not in self.upper_rows), 3)),
            "drivers": self.driver_names,  # names a request's "drivers" plan can set
            "promo_plan": None if self.promo_plan is None else dict(self.promo_plan),
        }

    # ------------------------------------------------------------------ endpoints
    def forecast(self, request: Any) -> dict[str, Any]:
        rows = self._rows_for(request)
        if len(rows) > MAX_IDS:
            raise BadRequest(f"the filters match {len(rows)} series; at most {MAX_IDS} per request")
        h = request.horizon
        if "horizon" not in getattr(request, "model_fields_set", {"horizon"}):
            h = min(h, self.h)  # left out: 8 periods, or all the champion has when it was fitted for fewer
        self._check_horizon(h)
        levels, quantiles = self._levels_for(request.levels, request.quantiles)
        planned = self.plan(request, rows, h)
        idx = np.asarray(rows)
        need = {*levels, *[k for _, k, _ in quantiles if k]}
        mean_a = self.mean[idx, :h]
        lo_a = {lv: self.bounds[lv][0][idx, :h] for lv in need}
        hi_a = {lv: self.bounds[lv][1][idx, :h] for lv in need}
        drv_a = None if self.carried is None else self.carried[idx, :h, :]
        if planned:
            mean_a, drv_a = mean_a.copy(), drv_a.copy()
            lo_a = {lv: a.copy() for lv, a in lo_a.items()}
            hi_a = {lv: a.copy() for lv, a in hi_a.items()}
            for j, r in enumerate(rows):
                if r in planned:
                    p = planned[r]
                    mean_a[j] = p["mean"][:h]
                    drv_a[j] = p["drivers"][:h]
                    for lv in need:
                        lo_a[lv][j] = p["bounds"][lv][0][:h]
                        hi_a[lv][j] = p["bounds"][lv][1][:h]
        mean = mean_a.tolist()
        lo = {lv: a.tolist() for lv, a in lo_a.items()}
        hi = {lv: a.tolist() for lv, a in hi_a.items()}
        drv = None if drv_a is None else drv_a.tolist()
        names = self.driver_names
        dates = self.date_strings[:h]
        series = []
        for j, r in enumerate(rows):
            points = []
            for t in range(h):
                points.append(
                    {
                        "ds": dates[t],
                        "mean": mean[j][t],
                        "intervals": [{"level": float(lv), "lo": lo[lv][j][t], "hi": hi[lv][j][t]} for lv in levels],
                        "quantiles": [
                            {"q": q, "value": (lo if side == "lo" else hi)[k][j][t]}
                            for q, k, side in quantiles
                        ],
                        "drivers": None if drv is None or r in self.upper_rows else dict(zip(names, drv[j][t], strict=True)),
                    }
                )
            # a planned series: the member and fallback note of the plan (models.demand_plan.predict_plan)
            fallback_note = planned[r]["note"] if r in planned else self.fallback_notes.get(self.uids[r])
            series.append({"unique_id": self.uids[r], "keys": self.keys_by_uid[r],
                           "model": planned[r]["model"] if r in planned else self.members[r],
                           "note": self.notes.get(self.uids[r]) or fallback_note,
                           "drivers": None if drv is None or r in self.upper_rows else (
                               "planned" if planned.get(r, {}).get("planned", r in planned) else "carried_forward"),
                           "level": None if self.hierarchy is None else self.hierarchy["level_of"][self.uids[r]],
                           "forecast": points})
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "freq": self.freq,
            "last_observed": self.last_observed.date().isoformat(),
            "series": series,
            "warnings": self.range_warnings(request) if planned else [],
            "promo_plan": None if self.promo_plan is None else self.promo_plan["note"],
        }

    def safety_stock(self, request: Any) -> dict[str, Any]:
        from serving.inventory import safety_stock_rows

        rows = self._rows_for(request)
        upper = [self.uids[r] for r in rows if r in self.upper_rows]
        if upper:
            bottom = self.hierarchy["bottom_level"]
            want = self.keys_by_uid[self.row[upper[0]]].items()  # a child of the first one, as an example
            example = next((u for i, u in enumerate(self.uids) if i not in self.upper_rows
                            and want <= self.keys_by_uid[i].items()), None)
            raise BadRequest(
                f"safety stock is sized per {' x '.join(self.hierarchy['key_columns'])} series (where stock sits), "
                f"not for the summed level(s) of {len(upper)} requested id(s) {upper[:10]}; ask for their "
                f"{bottom} series, e.g. {example!r} (/forecast with the filter "
                f"{self.hierarchy['key_columns'][0]} lists them)"
            )
        planned = self.plan(request, rows)
        out = safety_stock_rows(self, rows, request, {r: p["mean"] for r, p in planned.items()})
        # the stock is sized from the forecast under the plan: its values outside the training range, as /forecast
        out["warnings"] = self.range_warnings(request) if planned else []
        out["promo_plan"] = None if self.promo_plan is None else self.promo_plan["note"]
        return out
