"""Planned drivers of the demand backend (``serving.demand.DemandBackend``): a request's ``drivers``
plan checked row by row (one 422 naming every bad row), forecast with the champion's
``predict_plan`` over each planned series' carried-forward values (a hierarchical champion's: the
bottom level re-run under the plan and every level reconciled, ``_hier_plan``), and the plan's values outside
the range the champion's LightGBM member was trained on (``warnings`` of /forecast and
/safety_stock).

``_PlanMixin`` holds these methods; ``DemandBackend`` inherits them. ``FINAL`` (the point-forecast
column) lives here because the plan reads it too; ``serving.demand`` re-exports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from serving.errors import BadRequest

FINAL = "Final"


def _names(unknown: list[str]) -> str:
    """The first five unknown driver names of a plan row as a 422 names them: each cut to
    ``MAX_NAME_CHARS`` characters (a 1 MB name was echoed whole, a 1 MB answer), and how many more."""
    from serving.errors import _short

    more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
    return f"{[_short(k) for k in unknown[:5]]}{more}"


class _PlanMixin:
    """The ``drivers`` plan of a request, for ``DemandBackend`` (its attributes, set in ``DemandBackend.__init__``)."""

    uids: list[str]
    row: dict[str, int]
    h: int
    freq: str
    model_version: str
    levels: list[int]
    dates: pd.DatetimeIndex
    date_strings: list[str]
    driver_names: list[str]
    carried: np.ndarray | None
    estimator: Any
    hierarchy: dict[str, Any] | None

    # ------------------------------------------------------------------ planned drivers
    def plan(self, request: Any, rows: list[int], horizon: int | None = None) -> dict[int, dict[str, Any]]:
        """Forecasts under the request's ``drivers`` plan for the planned series among ``rows``:
        ``{row: {"mean": (h,), "bounds": {level: (lo, hi)}, "drivers": (h, k)}}`` (empty without
        a plan). Every bad plan row is named (index, series, period, driver) in one 422."""
        drivers = getattr(request, "drivers", None)
        if not drivers:
            return {}
        if not self.driver_names or self.carried is None:
            raise BadRequest(
                f"the champion {self.model_version} was trained without known-future drivers, so it takes no "
                "plan; leave out 'drivers' (drivers come from demand.drivers / demand.series.exog of the config)"
            )
        horizon = self.h if horizon is None else horizon
        # a request that left horizon out was told of "the requested horizon", which it never sent
        asked = (f"the requested horizon of {horizon} periods" if "horizon" in getattr(request, "model_fields_set", ())
                 else f"the {horizon} periods answered when horizon is left out")
        if self.hierarchy is not None:
            return self._hier_plan(drivers, rows, horizon, asked)
        selected = {self.uids[r]: r for r in rows}
        period = {d: t for t, d in enumerate(self.date_strings)}
        names = self.driver_names
        col = {n: k for k, n in enumerate(names)}
        problems: list[str] = []
        values: dict[int, np.ndarray] = {}
        seen: set[tuple[str, int, str]] = set()
        for i, row in enumerate(drivers):
            given = dict(row.model_extra or {})
            where = f"drivers[{i}] ({row.unique_id}, {row.ds})"
            if not given:
                problems.append(f"{where} gives no driver value; the champion's drivers are {names}")
                continue
            unknown = [k for k in given if k not in col]
            if unknown:
                problems.append(f"{where} names unknown driver(s) {_names(unknown)}; the champion's drivers are {names}")
                continue
            r = selected.get(row.unique_id)
            if r is None:
                why = ("is not selected by series_ids / the filters of this request" if row.unique_id in self.row
                       else "is not a series the champion forecasts")
                problems.append(f"{where}: series {row.unique_id!r} {why}")
                continue
            t = period.get(row.ds)
            if t is None:
                problems.append(f"{where}: {row.ds} is not a forecast period; {self._period_hint(row.ds)}")
                continue
            if t >= horizon:
                problems.append(f"{where}: {row.ds} is after {asked} (its last period is "
                                f"{self.date_strings[horizon - 1]}); send a horizon up to {self.h} to plan it")
                continue
            if r not in values:
                values[r] = self.carried[r].copy()
            for k, v in given.items():
                if (row.unique_id, t, k) in seen:
                    problems.append(f"{where} sets {k!r} again for that series and period")
                    continue
                seen.add((row.unique_id, t, k))
                values[r][t, col[k]] = float(v)
        if problems:
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise BadRequest(f"{len(problems)} bad drivers row(s): " + "; ".join(problems[:10]) + more)
        planned = list(values)
        X_df = pd.DataFrame(np.concatenate([values[r] for r in planned]), columns=names)
        X_df.insert(0, "ds", np.tile(self.dates.to_numpy(), len(planned)))
        X_df.insert(0, "unique_id", np.repeat(np.asarray([self.uids[r] for r in planned], dtype=object), self.h))
        try:
            fc, fallback = self.estimator.predict_plan(X_df, return_fallback=True)
        except ValueError as err:
            raise BadRequest(f"the plan cannot be forecast: {err}") from None
        # under the plan the chosen member of a series may have no forecast: the next one of its ranking
        # serves it (its note says so), or none does and the series is not forecast (a 422 saying why)
        why = {str(u): str(r) for u, r, m in zip(fallback["unique_id"], fallback["reason"], fallback["served"], strict=True)}
        gone = [u for u, m in zip(fallback["unique_id"].astype(str), fallback["served"], strict=True) if m is None or pd.isna(m)]
        if gone:
            said = "; ".join(f"{u}: {why[u].removeprefix('not forecast: ')}" for u in gone[:5])
            more = "" if len(gone) <= 5 else f"; and {len(gone) - 5} more"
            raise BadRequest(f"{len(gone)} planned series cannot be forecast under this plan ({said}{more}); "
                             "plan other driver values for them or leave them out of 'drivers'")
        n, h = len(planned), self.h
        if len(fc) != n * h:
            raise BadRequest(f"the plan gave {len(fc)} forecast rows for {n} series x {h} periods")
        mean = fc[FINAL].to_numpy(dtype="float64").reshape(n, h)
        bounds = {lv: (fc[f"{FINAL}-lo-{lv}"].to_numpy(dtype="float64").reshape(n, h),
                       fc[f"{FINAL}-hi-{lv}"].to_numpy(dtype="float64").reshape(n, h)) for lv in self.levels}
        if not np.isfinite(mean).all() or not all(np.isfinite(a).all() for pair in bounds.values() for a in pair):
            raise BadRequest("the plan's driver values give non-finite forecasts; check their scale")
        model = fc["final_model"].to_numpy().reshape(n, h)[:, 0]
        return {r: {"mean": mean[j], "bounds": {lv: (lo[j], hi[j]) for lv, (lo, hi) in bounds.items()},
                    "drivers": values[r], "model": model[j], "note": why.get(self.uids[r])}
                for j, r in enumerate(planned)}

    def _hier_plan(self, drivers: Any, rows: list[int], horizon: int, asked: str) -> dict[int, dict[str, Any]]:
        """:meth:`plan` of a hierarchical champion: rows may name any series the champion serves, of any
        level (an upper node's value goes to every SKU x location series below it, and is refused where
        a row gives one of them another value); the bottom level is re-run under the plan and every level
        reconciled (``models.demand_hier_plan``). Returns the selected ``rows`` whose forecast the plan
        changes (a parent of a planned series; under MinTrace possibly others) or whose drivers it sets."""
        est = self.hierarchy.get("estimator") if self.hierarchy else None
        if est is None:
            raise BadRequest(f"the champion {self.model_version} takes no plan; leave out 'drivers'")
        period = {d: t for t, d in enumerate(self.date_strings)}
        names = self.driver_names
        problems: list[str] = []
        given_at: dict[tuple[str, int], dict[str, float]] = {}
        for i, row in enumerate(drivers):
            given = dict(row.model_extra or {})
            where = f"drivers[{i}] ({row.unique_id}, {row.ds})"
            unknown = [k for k in given if k not in names]
            if not given or unknown:
                problems.append(f"{where} gives no driver value; the champion's drivers are {names}" if not given else
                                f"{where} names unknown driver(s) {_names(unknown)}; the champion's drivers are {names}")
                continue
            if row.unique_id not in self.row:
                problems.append(f"{where}: series {row.unique_id!r} is not a series the champion forecasts (its ids: "
                                f"{', '.join(self.hierarchy['id_patterns'].values())})")
                continue
            t = period.get(row.ds)
            if t is None or t >= horizon:
                problems.append(f"{where}: {row.ds} is not a forecast period; {self._period_hint(row.ds)}" if t is None
                                else f"{where}: {row.ds} is after {asked} (its last period is "
                                f"{self.date_strings[horizon - 1]}); send a horizon up to {self.h} to plan it")
                continue
            cell = given_at.setdefault((row.unique_id, t), {})
            for k, v in given.items():
                if k in cell:
                    problems.append(f"{where} sets {k!r} again for that series and period")
                    continue
                cell[k] = float(v)
        if problems:
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise BadRequest(f"{len(problems)} bad drivers row(s): " + "; ".join(problems[:10]) + more)
        X_df = pd.DataFrame([{"unique_id": u, "ds": self.dates[t], **v} for (u, t), v in given_at.items()],
                            columns=["unique_id", "ds", *names])
        try:
            fc = est.predict_frame(X_df)
            used = est.drivers_under(X_df)
        except ValueError as err:
            raise BadRequest(f"the plan cannot be forecast: {err}") from None
        fc = fc.assign(unique_id=fc["unique_id"].astype(str)).set_index(["unique_id", "ds"])
        idx = pd.MultiIndex.from_product([self.uids, self.dates])
        got = fc.reindex(idx)
        n, h = len(self.uids), self.h
        mean = got[FINAL].to_numpy(dtype="float64").reshape(n, h)
        bounds = {lv: (got[f"{FINAL}-lo-{lv}"].to_numpy(dtype="float64").reshape(n, h),
                       got[f"{FINAL}-hi-{lv}"].to_numpy(dtype="float64").reshape(n, h)) for lv in self.levels}
        model = got["final_model"].to_numpy().reshape(n, h)[:, 0]
        drv = (used.assign(unique_id=used["unique_id"].astype(str), ds=pd.to_datetime(used["ds"]))
               .set_index(["unique_id", "ds"]).reindex(idx)[names].to_numpy(dtype="float64").reshape(n, h, -1))
        out: dict[int, dict[str, Any]] = {}
        for r in rows:
            if not np.isfinite(mean[r]).all():
                raise BadRequest(f"the plan left {self.uids[r]} without a forecast")
            same = lambda a, b: np.allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)  # noqa: E731
            moved = not same(mean[r], self.mean[r]) or any(not same(lo[r], self.bounds[lv][0][r]) or
                                                           not same(hi[r], self.bounds[lv][1][r])
                                                           for lv, (lo, hi) in bounds.items())
            planned = r not in self.upper_rows and not same(drv[r], self.carried[r])
            if not (moved or planned):
                continue
            m = self.members[r] if r in self.upper_rows else str(model[r])
            out[r] = {"mean": mean[r], "bounds": {lv: (lo[r], hi[r]) for lv, (lo, hi) in bounds.items()},
                      "drivers": drv[r], "model": m, "planned": planned,
                      "note": self.fallback_notes.get(self.uids[r]) if m == self.members[r] else None}
        return out

    def _period_hint(self, ds: str) -> str:
        """What a plan row whose date is no forecast period should give: a date between two periods (a
        weekday inside a week, 2024-12-31 for the week dated 2024-12-30) is told the two periods around it
        (it was told only the first and last period, and had to guess how the periods are dated)."""
        span = f"the champion forecasts {self.date_strings[0]} .. {self.date_strings[-1]} ({self.freq})"
        pos = int(self.dates.searchsorted(pd.Timestamp(ds), side="right")) - 1
        if 0 <= pos < len(self.dates) - 1:
            return (f"it lies between the periods dated {self.date_strings[pos]} and {self.date_strings[pos + 1]}, "
                    f"and a plan row gives a period's own date; {span}")
        return span

    def range_warnings(self, request: Any) -> list[dict[str, Any]]:
        """The request's planned driver values outside the range the champion's LightGBM member was
        trained on, per driver (``DemandForecaster.driver_range_warnings``: rows, of_rows, below, above,
        min, max, the first rows as examples; then, with ``kind``, the same for the values relative to
        their series' mean) with its ``message``; only values the plan sets are read
        (call after :meth:`plan` has accepted it). Empty for a champion without the record."""
        from models.demand_driver_range import warning_text

        hier = (self.hierarchy or {}).get("estimator")  # a hierarchy's: an upper node's values read per series below
        check = getattr(hier if hier is not None else self.estimator, "driver_range_warnings", None)
        drivers = getattr(request, "drivers", None)
        if check is None or not drivers:
            return []
        given = pd.DataFrame([{**(row.model_extra or {}), "unique_id": row.unique_id, "ds": row.ds} for row in drivers])
        given["ds"] = pd.to_datetime(given["ds"])
        out = []
        for w in check(given) or []:
            # every entry says its kind and every example its relative value (None for the raw check's), so a
            # client reads one shape whether or not it was built from the OpenAPI document
            examples = [{"relative": None, **e, "ds": e["ds"].date().isoformat()} for e in w["examples"]]
            out.append({"kind": "value", **w, "examples": examples, "message": warning_text(w)})
        return out

