"""Plans of known-future drivers for the coherent forecaster
(:class:`models.demand_hier.HierarchicalDemandForecaster`; ``_HierPlans`` is its mixin).

Only the bottom level (SKU x location) has drivers: the upper levels are fitted on their summed
demand without any (their demand is a sum; a sum of promotions is no driver the members were
trained on). A plan therefore moves the bottom forecaster only, as a plan moves a forecaster
without a hierarchy (:meth:`models.demand.DemandForecaster.predict_plan`: the LightGBM member and
what is built on it, from the booster kept at fit), and the levels are reconciled again with the
fitted ``method``: bottom-up, a parent moves by the sum of its children's moves; MinTrace, the
changed bottom base forecasts enter the reconciliation beside the upper levels' unchanged ones.
Bands are made as without a plan (the bottom level's own conformal bands under the plan; each
parent's split-conformal band about its coherent point).

A plan is sparse: rows ``unique_id, ds`` + any of the bottom forecaster's drivers; an empty cell,
a row left out, a driver not given keep the default (each series' last known value carried over
the horizon, or the promotions calendar's campaigns: :meth:`set_planned_drivers`). ``unique_id``
is a bottom series' id (``<sku>/<location>``, the ids a forecaster without a hierarchy takes) or an
upper node's (``<sku>/*``, ``*/*``; or the node ids ``total/<sku>``, ``total``): an upper node's
value is given to every bottom series below it that has a forecast. Two rows that give one bottom
series, period and driver different values (``A/*`` promo 1 and ``A/L1`` promo 0 in the same week)
are refused, naming both ids, as are ids the hierarchy does not know, periods it does not forecast,
drivers it was not fitted with, non-finite values, and a bottom series named in the plan that has
no forecast to re-run (too short, no demand: counted as 0 units). An empty plan, or one that only
repeats the default, is the unplanned forecast.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

__all__: list[str] = []

_SHOWN = 5


class _HierPlans:
    """Plans of future drivers for a fitted hierarchical forecaster (mixin)."""

    bottom_: Any
    nodes_: pd.DataFrame
    levels: Any

    def _drivers(self) -> list[str]:
        return [str(c) for c in (getattr(self.bottom_, "exog_", None) or [])]

    def future_drivers(self) -> pd.DataFrame | None:
        """The bottom series' drivers ``predict`` uses without a plan (``unique_id`` the bottom
        series' own ids, ``ds`` + one column per driver), the template a plan edits; None when the
        bottom forecaster was fitted without drivers."""
        return self.bottom_.future_drivers() if self._drivers() else None

    def set_planned_drivers(self, X_df: pd.DataFrame) -> Self:
        """The bottom forecaster's default plan (e.g. the promotions calendar's next campaigns,
        :meth:`models.demand.DemandForecaster.set_planned_drivers`, in the bottom series' own ids):
        :meth:`predict` without a plan and :meth:`future_drivers` follow it, every level reconciled
        as always. Returns self."""
        self.bottom_.set_planned_drivers(X_df)
        return self

    def _ids(self) -> tuple[dict[str, int], pd.DataFrame]:
        """Every id a plan may name (served ids, then node ids where they do not clash) -> row of
        ``nodes_``, and the bottom rows of ``nodes_``."""
        nodes = self.nodes_.reset_index(drop=True)
        at = {str(u): i for i, u in enumerate(nodes["unique_id"])}
        at.update({str(u): i for i, u in enumerate(nodes["served_id"])})
        return at, nodes[nodes["level"] == nodes["level"].iloc[-1]]

    def bottom_plan(self, X_df: pd.DataFrame) -> pd.DataFrame:
        """``X_df`` (a sparse plan over any level, module docstring) as the values it sets per bottom
        series: ``unique_id`` (bottom series' own ids), ``ds``, one column per driver (NaN: not set).
        ValueError naming the ids, periods or drivers of a plan that cannot be applied."""
        long, drivers = self._spread(X_df)
        cols = ["unique_id", "ds", *drivers]
        if long is None:
            return pd.DataFrame(columns=cols)
        out = long.drop_duplicates(["unique_id", "ds", "driver"]).pivot(index=["unique_id", "ds"], columns="driver",
                                                                        values="value")
        return out.reindex(columns=drivers).reset_index()[cols]

    def _spread(self, X_df: pd.DataFrame) -> tuple[pd.DataFrame | None, list[str]]:
        """The values the plan ``X_df`` sets, one row per (row of ``X_df``, bottom series it reaches, driver):
        ``unique_id`` (the bottom series' own id), ``ds``, ``driver``, ``value``, ``source`` (the id as sent)
        and ``row`` (the row's position in ``X_df``); None when it sets none. And the drivers. The checks of
        :meth:`bottom_plan` (ValueError naming the ids, periods or drivers)."""
        drivers = self._drivers()
        if not drivers:
            raise ValueError("this hierarchical forecaster's bottom level was fitted without drivers; there is "
                             "nothing to plan")
        miss = [c for c in ("unique_id", "ds") if c not in X_df.columns]
        extra = [c for c in X_df.columns if c not in ("unique_id", "ds", "h", *drivers)]
        if miss or extra:
            raise ValueError(f"a plan has columns unique_id, ds and any of the drivers {drivers}; "
                             + (f"missing {miss}" if miss else f"{extra} are not drivers of this forecaster"))
        given = [c for c in drivers if c in X_df.columns]
        plan = X_df[["unique_id", "ds", *given]].assign(unique_id=X_df["unique_id"].astype(str),
                                                        ds=pd.to_datetime(X_df["ds"], errors="coerce"))
        at, bottom = self._ids()
        unknown = sorted(set(plan["unique_id"]) - set(at))
        if unknown:
            raise ValueError(f"the plan names {len(unknown)} id(s) that are not series of the hierarchy, e.g. "
                             f"{unknown[:_SHOWN]}; its ids look like {self.nodes_['served_id'].tail(2).tolist()} "
                             "(SKU x location) and " + ", ".join(self.nodes_["served_id"].head(2)))
        future = pd.DatetimeIndex(self.bottom_.future_drivers()["ds"].unique()).sort_values()
        off = plan.loc[~plan["ds"].isin(future), "ds"]
        if len(off):
            raise ValueError(f"the plan gives {len(off)} row(s) whose ds is not a forecast period, e.g. "
                             f"{[str(d)[:10] for d in off.head(3)]}; the forecaster forecasts {future[0].date()} .. "
                             f"{future[-1].date()}")
        vals = plan[given].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        bad = ~np.isfinite(vals) & plan[given].notna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            raise ValueError(f"the plan's driver values are not finite numbers in {len(rows)} row(s), e.g. "
                             f"{plan.iloc[rows[:3]][['unique_id', *given]].to_dict('records')}")
        forecast = set(self.bottom_.forecast_["unique_id"].astype(str))
        nodes = self.nodes_.reset_index(drop=True)
        names = bottom["served_id"].astype(str).to_numpy()
        is_bottom = nodes["level"].eq(nodes["level"].iloc[-1]).to_numpy()
        row = plan["unique_id"].map(at).to_numpy(dtype=int)
        explicit = sorted({str(nodes["served_id"].iloc[r]) for r in set(row[is_bottom[row]])} - forecast)
        if explicit:
            raise ValueError(f"the plan names {len(explicit)} SKU x location series without a forecast to re-run "
                             f"(too short or no demand up to the last date; counted as 0 units in the reconciliation), "
                             f"e.g. {explicit[:_SHOWN]}; leave them out of the plan")
        # each row's bottom series: itself, or every series below an upper node that has a forecast
        keys = [str(c) for c in self.levels]
        below: dict[int, np.ndarray] = {}
        for r in np.unique(row):
            n = nodes.iloc[int(r)]
            if is_bottom[r]:
                below[r] = np.asarray([str(n["served_id"])])
                continue
            m = np.ones(len(bottom), dtype=bool)
            for c in keys:
                if n[c] is not None and not pd.isna(n[c]):
                    m &= bottom[c].astype(str).to_numpy() == str(n[c])
            below[r] = np.asarray([u for u in names[m] if u in forecast])
        long = []
        for k, c in enumerate(given):
            set_ = ~np.isnan(vals[:, k])
            for i in np.flatnonzero(set_):
                to = below[row[i]]
                long.append(pd.DataFrame({"unique_id": to, "ds": plan["ds"].iloc[i], "driver": c,
                                          "value": vals[i, k], "source": plan["unique_id"].iloc[i], "row": i}))
        if not long:
            return None, drivers
        long = pd.concat(long, ignore_index=True)
        spread = long.groupby(["unique_id", "ds", "driver"])["value"].transform("nunique")
        if (spread > 1).any():
            c = long[spread > 1].sort_values(["unique_id", "ds", "driver", "source"])
            first = c.iloc[0]
            same = c[(c["unique_id"] == first["unique_id"]) & (c["ds"] == first["ds"]) & (c["driver"] == first["driver"])]
            said = ", ".join(f"{s} sets {v:g}" for s, v in zip(same["source"], same["value"], strict=True))
            ids = sorted(set(c["source"]))
            raise ValueError(f"the plan sets a driver of {c[['unique_id', 'ds', 'driver']].drop_duplicates().shape[0]} "
                             f"(series, period) pairs to different values through different ids {ids[:_SHOWN]}: e.g. "
                             f"{first['driver']} of {first['unique_id']} at {first['ds'].date()}: {said} (an upper "
                             "node's value is given to every series below it; plan it consistently with its children)")
        return long, drivers

    def drivers_under(self, X_df: pd.DataFrame | None) -> pd.DataFrame | None:
        """The bottom series' drivers under the plan ``X_df``: :meth:`future_drivers` with the values
        the plan sets laid over it (None without drivers)."""
        template = self.future_drivers()
        if template is None or X_df is None:
            return template
        sparse = self.bottom_plan(X_df)
        out = template.assign(unique_id=template["unique_id"].astype(str),
                              ds=pd.to_datetime(template["ds"])).set_index(["unique_id", "ds"])
        if len(sparse):
            out.update(sparse.set_index(["unique_id", "ds"]))  # NaN (not set) keeps the default
        return out.reset_index()[template.columns]

    def _bottom_under(self, X_df: pd.DataFrame, h: int | None) -> pd.DataFrame:
        """The bottom forecaster's forecast (its own ids) under the sparse plan ``X_df``: the series
        whose drivers it changes re-run (``predict_plan``), the others as without a plan."""
        b = self.bottom_
        base = b.predict(h)
        sparse = self.bottom_plan(X_df)
        if getattr(b, "all_short_", None) or not len(sparse):  # a young book: the fallback reads no drivers
            return base
        template = self.future_drivers()
        template = template[template["unique_id"].astype(str).isin(set(sparse["unique_id"]))]
        template = template.assign(unique_id=template["unique_id"].astype(str), ds=pd.to_datetime(template["ds"]))
        full = template.set_index(["unique_id", "ds"])
        full.update(sparse.set_index(["unique_id", "ds"]))  # NaN (not set) keeps the default
        full = full.reset_index()[template.columns]
        drivers = self._drivers()
        a = full[drivers].to_numpy(dtype="float64")
        t = template[drivers].to_numpy(dtype="float64")
        changed = ~((a == t) | (np.isnan(a) & np.isnan(t))).all(axis=1)
        touched = list(dict.fromkeys(full.loc[changed, "unique_id"]))
        if not touched:
            return base
        rows = full[full["unique_id"].isin(set(touched))]
        fc, record = b.predict_plan(rows, h, return_fallback=True)
        gone = [(str(u), str(r)) for u, r, m in zip(record["unique_id"], record["reason"], record["served"], strict=True)
                if m is None or pd.isna(m)]
        if gone:
            said = "; ".join(f"{u}: {r.removeprefix('not forecast: ')}" for u, r in gone[:_SHOWN])
            raise ValueError(f"{len(gone)} planned series cannot be forecast under this plan ({said}); plan other "
                             "driver values for them or leave them out of the plan")
        keep = base[~base["unique_id"].astype(str).isin(set(touched))]
        out = pd.concat([keep, fc[base.columns]], ignore_index=True)
        order = {u: i for i, u in enumerate(dict.fromkeys(base["unique_id"].astype(str)))}
        out = out.assign(_o=out["unique_id"].astype(str).map(order)).sort_values(["_o", "ds"], kind="mergesort")
        return out.drop(columns="_o").reset_index(drop=True)

    def _upper_under(self, upper: pd.DataFrame, bottom: pd.DataFrame, h: int | None) -> pd.DataFrame:
        """The upper levels' own forecasts (``upper``) moved by the sum of their bottom series' moves
        under the plan in force (``bottom``: a request's plan or the default one, against the bottom
        forecast with the drivers carried forward as fitted), for MinTrace. The upper forecaster reads
        no drivers, so MinTrace weighed a planned bottom against unplanned parents: a promotion for one
        series reached its SKU by a fraction and moved other series (synthetic network: the series
        +5.0 units, its SKU +1.2, the total +0.03, other series up to +-1.3). The move is coherent and
        MinTrace is a projection that keeps coherent forecasts (up to its non-negativity), so every
        level now moves by its series' moves, as under bottom-up, and nothing else moves."""
        b = self.bottom_
        if not self._drivers() or getattr(b, "all_short_", None) or upper.empty or bottom.empty:
            return upper
        h = b.h if h is None else h
        fit = b.forecast_
        fit = fit.loc[fit["step"] <= h, ["unique_id", "ds", "Final"]]
        d = bottom[["unique_id", "ds", "Final"]].merge(fit, on=["unique_id", "ds"], how="left", suffixes=("", "_fit"))
        d["move"] = (d["Final"] - d["Final_fit"]).fillna(0.0)
        if not (d["move"] != 0).any():
            return upper
        moves = self._as_nodes(d).pivot_table(index="unique_id", columns="ds", values="move", aggfunc="sum",
                                               fill_value=0.0)
        S = self.S_.set_index("unique_id") if "unique_id" in self.S_.columns else self.S_
        S = S[S.index.isin(set(upper["unique_id"].astype(str)))].reindex(columns=moves.index, fill_value=0.0)
        add = pd.DataFrame(S.to_numpy(dtype="float64") @ moves.to_numpy(dtype="float64"), index=S.index,
                           columns=moves.columns)
        add = add.rename_axis(index="unique_id", columns="ds").stack().rename("_move").reset_index()
        out = upper.merge(add, on=["unique_id", "ds"], how="left")
        move = out.pop("_move").fillna(0.0).to_numpy()
        for c in [c for c in out.columns if c == "Final" or c.startswith(("Final-lo-", "Final-hi-"))]:
            out[c] = out[c].to_numpy(dtype="float64") + move
        return out

    def driver_range_warnings(self, X_df: pd.DataFrame) -> list[dict[str, Any]] | None:
        """The plan's values outside the range the bottom forecaster's LightGBM member was trained on
        (:meth:`models.demand.DemandForecaster.driver_range_warnings`), an upper node's value read
        once per bottom series it is given to (the relative check divides by each one's mean), but
        counted and shown as the plan sent it: ``rows`` / ``of_rows`` are rows of ``X_df``, and an
        example of a row naming a summed id (``A/*``, ``*/*``) gives that id, with ``series`` (the
        bottom series its value reached and were checked) and ``series_outside`` (of them, outside).
        A plan row for ``A/*`` was said as its series ``A/L1``, ``A/L2`` ... and counted once each."""
        from models.demand_driver_range import SENT_ID, SENT_ROW

        long, drivers = self._spread(X_df) if self._drivers() else (None, [])
        if not drivers:
            return []
        if long is None:
            return self.bottom_.driver_range_warnings(pd.DataFrame(columns=["unique_id", "ds", *drivers]))
        per = long.pivot(index=["row", "unique_id", "ds"], columns="driver", values="value")
        per = per.reindex(columns=drivers).reset_index()
        sent = long.drop_duplicates("row").set_index("row")["source"]
        per[SENT_ID] = per["row"].map(sent).astype(str)
        return self.bottom_.driver_range_warnings(per.rename(columns={"row": SENT_ROW}))

    def pyfunc_input_columns(self) -> list[tuple[str, str, bool]]:
        """The columns :meth:`predict_frame` reads (``unique_id``, ``h``; with drivers ``ds`` and one
        column per driver: a plan). All optional."""
        cols = [("unique_id", "string", False), ("h", "long", False)]
        return cols + ([("ds", "datetime", False), *[(c, "double", False) for c in self._drivers()]]
                       if self._drivers() else [])

    def predict_frame(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """Table-in / table-out predict (MLflow pyfunc, the service): every level's coherent
        forecast in served ids (:meth:`served`), or the series of ``model_input``'s optional
        ``unique_id`` column; ``h`` (first row) the horizon, default the fitted one. With a ``ds``
        column ``model_input`` is a plan (module docstring; ``unique_id`` then names the planned
        series of any level, not the series returned) and every level's coherent forecast under it
        is returned."""
        h = int(model_input["h"].iloc[0]) if "h" in model_input.columns and len(model_input) else None
        plan = None
        if "ds" in model_input.columns:
            if not self._drivers():
                raise ValueError("a ds column is a plan of drivers, and this forecaster's bottom level was fitted "
                                 "without drivers; send unique_id (and h) only")
            plan = model_input.drop(columns=["h"], errors="ignore")
        out = self.served(self.predict(h, X_df=plan))
        # SKU x location series it could not forecast are left out, as DemandForecaster.predict leaves them out
        out = out[~self.not_forecast(out)].reset_index(drop=True)
        if "unique_id" in model_input.columns and plan is None:
            want = set(model_input["unique_id"].astype(str))
            unknown = sorted(want - set(out["unique_id"]))
            if unknown:
                raise ValueError(f"unknown unique_id(s) {unknown[:5]} ({len(unknown)} in all); the model knows "
                                 f"{out['unique_id'].nunique()} series over its levels {list(self.nodes_['level'].unique())}")
            out = out[out["unique_id"].isin(want)].reset_index(drop=True)
        return out
