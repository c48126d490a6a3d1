"""Safety stock per request from the champion's forecast distribution (``models.inventory``).

The request fixes the target service level, the lead time (days, with optional spread; when
left out, each series' lead time comes from the order book's ``lead_times`` table, and a spread
given alone applies to those lead times) and the review period; ``models.inventory.InventoryPolicy`` simulates lead-time demand from the
champion's forecasts and its rolling-origin error paths (seeded per series, so a series
gets the same answer in any request, alone or with others, and as the batch CLI) and computes the normal formula beside it. On-hand comes from the request
or, when absent, from the order book's latest ``inventory`` snapshot; with on-hand the answer
carries the replenish / overstock warning and the suggested order.

The sizing of a series (safety stock, reorder point, order-up-to, the normal formula) depends
only on the series, its forecast, the service level, the lead time and its spread and the
review period - not on on-hand or the cover limit, which only decide the warning and the order.
So a backend keeps the sizing of unplanned series in a bounded LRU (``SizingCache``) keyed by
(series, service level, lead time, spread, review period in periods): a repeated request
simulates nothing, and a batch simulates only the series it has not seen at those settings.
Series with a driver plan in the request are always simulated (their forecast is the plan's).
The simulation is seeded per series, so a cached row is the row a fresh simulation gives,
to the bit (``tests/test_serving.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd

from serving.errors import BadRequest
from serving.settings import DEFAULT_CACHE_ENTRIES  # beside the $DEALERML_SS_CACHE_ENTRIES reader

__all__ = ["safety_stock_rows", "on_hand_by_series", "on_hand_dates_by_series", "lead_times_by_series", "SizingCache", "DEFAULT_CACHE_ENTRIES"]


# the policy columns one sizing keeps, in this order (what the answer and ``advise`` read)
_SIZED = ("ltd_mean", "ltd_source", "safety_stock", "reorder_point", "order_up_to", "normal_safety_stock",
          "normal_reorder_point", "mean_demand")


class SizingCache:
    """A thread-safe LRU of per-series sizings, at most ``max_entries`` of them (0 = off).

    Key: ``(unique_id, service level, lead time, lead-time spread, review period)``, the last
    three in forecast periods; value: the ``_SIZED`` columns of the series' policy row as Python
    floats / str. One cache belongs to one loaded champion (its backend), so the forecast,
    error paths, history, ``n_sims`` and seed behind a key never change.
    """

    def __init__(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        if int(max_entries) < 0:
            raise ValueError(f"the safety-stock cache size must be >= 0 entries; got {max_entries}")
        self.max_entries = int(max_entries)
        self._data: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get_many(self, keys: list[tuple]) -> dict[tuple, tuple]:
        """The cached sizings among ``keys`` (each found key becomes the most recently used)."""
        found: dict[tuple, tuple] = {}
        with self._lock:
            for k in keys:
                v = self._data.get(k)
                if v is not None:
                    self._data.move_to_end(k)
                    found[k] = v
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        return found

    def put_many(self, items: dict[tuple, tuple]) -> None:
        """Add sizings; the least recently used go beyond ``max_entries``."""
        if self.max_entries <= 0 or not items:
            return
        with self._lock:
            for k, v in items.items():
                self._data[k] = v
                self._data.move_to_end(k)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0



def _uid(keys: dict[str, str], key_columns: list[str]) -> str:
    return "/".join(keys[c] for c in key_columns)


def on_hand_by_series(inventory: pd.DataFrame | None, key_columns: list[str]) -> dict[str, float]:
    """On-hand per series id from the canonical ``inventory`` table (units): each (sku,
    location)'s latest snapshot, summed over the locations a series spans, as the batch CLI."""
    from training.demand_config import on_hand_by_series as by_series

    stock = by_series(inventory, list(key_columns))
    return {} if stock is None else {str(k): float(v) for k, v in stock.items()}


def on_hand_dates_by_series(inventory: pd.DataFrame | None, key_columns: list[str]) -> dict[str, str | None]:
    """The snapshot date (ISO) of the on-hand :func:`on_hand_by_series` gives each series id, None
    where undated (``training.demand_config.on_hand_dates_by_series``, as the batch CLI)."""
    from training.demand_config import on_hand_dates_by_series as by_series

    dates = by_series(inventory, list(key_columns))
    return {} if dates is None else {str(k): v for k, v in dates.items()}


def lead_times_by_series(lead_times: pd.DataFrame | None, keys_by_uid: dict[str, dict[str, str]]) -> dict[str, tuple[float, float]]:
    """(lead time, spread) in days per series id from the ``lead_times`` table.

    A row with a location applies to that SKU there; a row without one to the SKU everywhere.
    Series without a location key (``demand.levels: [sku]``) of a SKU given only per location
    take the longest of its lead times and the largest spread (as ``training.demand_config``).
    """
    if lead_times is None or not len(lead_times) or "sku" not in lead_times.columns:
        return {}
    lt = lead_times.copy()
    std = lt["lead_time_std_days"] if "lead_time_std_days" in lt.columns else pd.Series(0.0, index=lt.index)
    lt["std_"] = pd.to_numeric(std, errors="coerce").fillna(0.0)
    by_pair: dict[tuple[str, str], tuple[float, float]] = {}
    by_sku: dict[str, tuple[float, float]] = {}
    has_loc = "location" in lt.columns
    for row in lt.itertuples(index=False):
        val = (float(row.lead_time_days), float(row.std_))
        loc = getattr(row, "location", None) if has_loc else None
        if loc is None or (isinstance(loc, float) and np.isnan(loc)) or str(loc) in ("", "ALL"):
            by_sku[str(row.sku)] = val
        else:
            by_pair[(str(row.sku), str(loc))] = val
    longest: dict[str, tuple[float, float]] = {}  # for series over every location (no location key)
    for (sku, _), (d, sd) in by_pair.items():
        old = longest.get(sku, (d, sd))
        longest[sku] = (max(old[0], d), max(old[1], sd))
    out = {}
    for uid, keys in keys_by_uid.items():
        sku, loc = keys.get("sku"), keys.get("location")
        if sku is None:
            continue
        if (sku, loc) in by_pair:
            out[uid] = by_pair[(sku, loc)]
        elif sku in by_sku:
            out[uid] = by_sku[sku]
        elif "location" not in keys and sku in longest:
            out[uid] = longest[sku]
    return out


def _history_of(backend: Any, uids: list[str]) -> pd.DataFrame | None:
    """The champion's fitted demand of these series only (None without a history)."""
    hist = getattr(backend, "history", None)
    if hist is None:
        return None
    idx = [backend.history_rows[u] for u in uids if u in backend.history_rows]
    return hist.iloc[np.concatenate(idx)] if idx else hist.iloc[:0]


def _stopped_notes(backend: Any, uids: list[str], sizing: dict[str, tuple], service_level: float,
                   freq: str, actions: dict[str, str]) -> dict[str, str]:
    """The note of each series that may have stopped selling (sized 0 from its own history while the forecast
    expects demand, or silent for long against its own rhythm, with what that means for its ``actions``), as
    the batch file's ``forecast_note`` says it (``models.inventory.stopped_series_notes``)."""
    from models.inventory import stopped_series_notes

    silences = getattr(backend, "silences", None)  # each series' last sale and gaps, computed once at load
    if silences is None or not uids:
        return {}
    pol = pd.DataFrame([dict(zip(_SIZED, sizing[u], strict=True), unique_id=u, service_level=service_level)
                        for u in uids])
    notes = stopped_series_notes(pol, None, freq, [actions.get(u) for u in uids], silences=silences)
    return {u: n for u, n in zip(uids, notes, strict=True) if n}


def _policy(request: Any, R: float, ps: dict[str, Any], cover: float):
    from models.inventory import InventoryPolicy

    return InventoryPolicy(request.service_level, R, n_sims=ps["n_sims"], cover_limit_periods=cover,
                           random_state=ps["random_state"])


def _simulate(backend: Any, todo: list[tuple[int, str]], request: Any, planned: dict[int, np.ndarray],
              L: pd.Series, sdL: pd.Series, R: float, residuals: pd.DataFrame, scale: pd.Series) -> dict[str, tuple]:
    """Size the series ``todo`` (row, unique_id) with ``models.inventory.InventoryPolicy``: their
    forecast (the plan's where ``planned`` has one), lead times ``L`` / ``sdL`` and review ``R``
    in periods. Returns the ``_SIZED`` columns per series id."""
    rows = [r for r, _ in todo]
    uids = [u for _, u in todo]
    h = backend.h
    mean = backend.mean[np.asarray(rows), :]
    if any(r in planned for r in rows):
        mean = mean.copy()
        for j, r in enumerate(rows):
            if r in planned:
                mean[j] = planned[r]
    fc = pd.DataFrame(
        {
            "unique_id": np.repeat(np.asarray(uids, dtype=object), h),
            "ds": np.tile(backend.dates.to_numpy(), len(uids)),
            "Final": mean.ravel(),
        }
    )
    ps = backend.policy_settings
    try:
        from models.inventory import fit_forecaster_policy

        # short-history fallback series are sized from the fallback's error paths (as the batch CLI)
        pol = fit_forecaster_policy(_policy(request, R, ps, ps["cover_limit_periods"]), fc, backend.estimator,
                                    L[uids], sdL[uids], history=_history_of(backend, uids)).policy_
    except ValueError as err:
        raise BadRequest(f"safety stock cannot be sized as asked: {err}") from None
    cols = [pol[c].tolist() for c in _SIZED]  # Python floats / str, bit for bit the policy's values
    return {u: tuple(float(c[i]) if name != "ltd_source" else str(c[i]) for name, c in zip(_SIZED, cols, strict=True))
            for i, u in enumerate(pol["unique_id"].tolist())}


def _not_applied(request: Any, uid: str) -> str | None:
    """The message of a series sized without on-hand whose request gave it order rules: they were not
    applied (no order is suggested without stock), said instead of dropped without a word."""
    given = [c for c in ("on_order", "min_order_qty", "order_multiple") if uid in (getattr(request, c, None) or {})]
    if not given:
        return None
    named = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
    return ("no on-hand for this series (not in the request's on_hand, nor in the order book's inventory), so no "
            f"order is suggested and its {named} {'was' if len(given) == 1 else 'were'} not applied; send its on_hand")


def safety_stock_rows(backend: Any, rows: list[int], request: Any,
                      planned: dict[int, np.ndarray] | None = None) -> dict[str, Any]:
    """Answer a ``SafetyStockRequest`` for the series at ``rows`` of ``backend``; ``planned``
    replaces the point forecast of some rows (the forecast under the request's driver plan)."""
    from models.inventory import horizon_needed, lead_time_fits, lead_time_periods

    est = backend.estimator
    residuals = getattr(est, "residuals_", None)
    scale = getattr(est, "scale_", None)
    if residuals is None or scale is None:
        raise BadRequest(
            f"the champion {backend.model_version} carries no forecast "
            "error paths (residuals_), so it cannot size safety stock; retrain it"
        )
    rows = sorted(set(rows), key=lambda r: backend.uids[r])  # canonical order: same request, same answer
    uids = [backend.uids[r] for r in rows]
    ps = backend.policy_settings
    std_given = "lead_time_std_days" in request.model_fields_set
    if request.lead_time_days is not None:
        lt_days = {u: (float(request.lead_time_days), float(request.lead_time_std_days)) for u in uids}
    else:  # the order book's lead_times table; the config's demand.lead_time_days elsewhere
        default = (float(ps["lead_time_days"]), float(ps["lead_time_std_days"]))
        lt_days = {u: backend.lead_times.get(u, default) for u in uids}
        if std_given:  # a spread alone: each series' own mean lead time with the asked spread
            lt_days = {u: (m, float(request.lead_time_std_days)) for u, (m, _) in lt_days.items()}
    for u, lt in (getattr(request, "lead_times", None) or {}).items():  # per series: wins over the rest
        lt_days[u] = (float(lt.lead_time_days), float(lt.lead_time_std_days))
    freq = backend.freq
    L_of = {u: lead_time_periods(lt_days[u][0], freq) for u in uids}
    sdL_of = {u: lead_time_periods(lt_days[u][1], freq) for u in uids}
    L, sdL = pd.Series(L_of), pd.Series(sdL_of)
    R = ps["review_period"] if request.review_period_days is None else lead_time_periods(request.review_period_days, freq)
    review_days = (float(request.review_period_days) if request.review_period_days is not None
                   else float(R) / lead_time_periods(1.0, freq))  # periods x days per period
    h = backend.h
    fits = lead_time_fits(L[uids].to_numpy(), sdL[uids].to_numpy(), R, h)
    too_long = [u for u, ok in zip(uids, fits, strict=True) if not ok]
    if too_long:
        # simulated lead times are cut at the horizon; more than 1 % cut would understate the
        # upper quantiles without saying so (models.inventory.lead_time_fits)
        raise BadRequest(
            f"lead time + review period + 2.33 x the lead-time spread exceed the champion's forecast horizon "
            f"({h} periods of {freq}) for {len(too_long)} series, e.g. {too_long[:10]} (lead times "
            f"{[lt_days[u][0] for u in too_long[:10]]} days, spreads {[lt_days[u][1] for u in too_long[:10]]} days, "
            f"review period {review_days:g} days; they need "
            f"{horizon_needed(L[too_long].to_numpy(), sdL[too_long].to_numpy(), R)} periods); "
            "pass a shorter lead_time_days, lead_time_std_days or review_period_days, leave those series out, or "
            "train the forecaster with a longer demand.horizon"
        )
    planned = planned or {}
    sl = float(request.service_level)
    key = {u: (u, sl, float(L_of[u]), float(sdL_of[u]), float(R)) for u in uids}
    cache: SizingCache | None = getattr(backend, "sizing_cache", None)
    # planned series are sized from the plan's forecast: never read from or written to the cache
    reusable = [key[u] for u, r in zip(uids, rows, strict=True) if r not in planned]
    cached = cache.get_many(reusable) if cache is not None and cache.max_entries > 0 else {}
    sizing = {u: cached[key[u]] for u in uids if key[u] in cached}  # planned keys were never looked up
    todo = [(r, u) for r, u in zip(rows, uids, strict=True) if u not in sizing]
    if todo:
        fresh = _simulate(backend, todo, request, planned, L, sdL, R, residuals, scale)
        sizing.update(fresh)
        if cache is not None:
            cache.put_many({key[u]: fresh[u] for r, u in todo if r not in planned})
    on_hand = dict(backend.on_hand)
    # the snapshot date of the book's on-hand; a request's own on-hand has the request's
    # on_hand_date, else none (unknown)
    on_hand_dates = {u: d for u, d in getattr(backend, "on_hand_dates", {}).items() if u not in (request.on_hand or {})}
    if request.on_hand:
        on_hand.update({k: float(v) for k, v in request.on_hand.items()})
        counted = getattr(request, "on_hand_date", None)
        if counted is not None:
            on_hand_dates.update({k: counted.isoformat() for k in request.on_hand})
    known = {u: on_hand[u] for u in uids if u in on_hand}
    advice: dict[str, dict[str, Any]] = {}
    if known:
        cover = request.max_periods_of_cover if request.max_periods_of_cover is not None else ps["cover_limit_periods"]
        policy = _policy(request, R, ps, cover)
        policy.policy_ = pd.DataFrame(
            [dict(zip(_SIZED, sizing[u], strict=True), unique_id=u) for u in known]
        ).assign(review_period=R)
        stock = pd.DataFrame({"unique_id": list(known), "on_hand": list(known.values())})
        for col in ("on_order", "min_order_qty", "order_multiple"):  # per series; absent: the default
            given = getattr(request, col, None)
            if given:
                stock[col] = [given.get(u) for u in known]
        advice = policy.advise(stock, freq=freq).set_index("unique_id").to_dict("index")
        # a count more than one period from the sizing's start: said in the message, as the batch file's suggestion
        from models.inventory import forecast_offset, stock_date_notes

        notes = stock_date_notes([on_hand_dates.get(u) for u in known], backend.last_observed,
                                 forecast_offset(backend.estimator, backend.freq))
        for u, note in zip(known, notes, strict=True):
            if note:
                said = advice[u]["suggestion"]
                advice[u]["suggestion"] = f"{said}; {note}" if said else note
    # a series that stopped selling (sized 0 from its own history while its forecast expects demand, or silent for
    # long against its own rhythm): said, and on an ordering row that the order rests on demand it has not shown since
    zero_notes = _stopped_notes(backend, uids, sizing, sl, freq, {u: str(a["action"]) for u, a in advice.items()})
    out = []
    for u in uids:
        p = dict(zip(_SIZED, sizing[u], strict=True))
        a = advice.get(u)
        message = None if a is None or not a["suggestion"] else str(a["suggestion"])
        if a is None:
            message = _not_applied(request, u)
        out.append(
            {
                "unique_id": u,
                "keys": dict(backend.keys_by_uid[backend.row[u]]) if hasattr(backend, "keys_by_uid") else {},
                "service_level": sl,
                "lead_time_days": lt_days[u][0],
                "lead_time_std_days": lt_days[u][1],
                "lead_time_demand_mean": p["ltd_mean"],
                "lead_time_demand_source": p["ltd_source"],
                "note": "; ".join(x for x in (
                    None if u not in getattr(backend, "notes", {}) else
                    backend.notes[u] + "; safety stock sized from its distribution", zero_notes.get(u)) if x) or None,
                "safety_stock": p["safety_stock"],
                "reorder_point": p["reorder_point"],
                "order_up_to": p["order_up_to"],
                "safety_stock_normal": p["normal_safety_stock"],
                "reorder_point_normal": p["normal_reorder_point"],
                "on_hand": None if a is None else float(a["on_hand"]),
                "on_hand_date": None if a is None else on_hand_dates.get(u),
                "on_order": None if a is None else float(a["on_order"]),
                "inventory_position": None if a is None else float(a["inventory_position"]),
                "periods_of_cover": None if a is None or not np.isfinite(a["periods_of_cover"]) else float(a["periods_of_cover"]),
                "suggested_order": None if a is None else float(a["order_qty"]),
                "suggested_order_unrounded": None if a is None else float(a["order_qty_unrounded"]),
                "min_order_qty": None if a is None else float(a["min_order_qty"]),
                "order_multiple": None if a is None else float(a["order_multiple"]),
                "action": None if a is None else str(a["action"]),
                "warning": None if a is None or a["action"] not in ("replenish", "overstock") else str(a["action"]),
                "message": message,
                "drivers": (None if getattr(backend, "carried", None) is None
                            else "planned" if backend.row[u] in planned else "carried_forward"),
            }
        )
    return {
        "model_name": backend.model_name,
        "model_version": backend.model_version,
        "method": (f"simulated lead-time demand ({ps['n_sims']} paths): a bootstrap of the series' own history for "
                   "intermittent / lumpy series with enough of it (lead_time_demand_source own_history), the champion's "
                   "forecast error paths of the demand class otherwise (class_pool; class_pool:<member> for a series a fallback "
                   "member serves: that member's error paths), and for series with a short history "
                   "the error paths of the fallback (a mean of few periods) times their level (short_history; the higher of that and "
                   "a bootstrap of their own history where they have 26+ periods of intermittent / lumpy past: "
                   "short_history+own_history); "
                   "normal formula beside it"),
        "freq": freq,
        "last_observed": backend.last_observed.date().isoformat(),  # as /forecast answers it
        "review_period_days": review_days,
        "rows": out,
    }
