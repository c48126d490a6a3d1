"""The book's stock tables keyed by demand series id (``levels`` joined by '/'), as
:func:`training.demand_config.load_demand_series` reads them into a run's info: units on hand
(``on_hand_by_series``) and the date of that count (``on_hand_dates_by_series``) per series, which
the service reads too (:mod:`serving.inventory`), and the lead time with its spread per series
(``_lead_times``).

Split from :mod:`training.demand_config` to keep it under ~500 lines; that module imports these
names (``from training.demand_config import on_hand_by_series`` still works).
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _uid(df: pd.DataFrame, levels: list[str]) -> pd.Series | None:
    if not levels or any(c not in df.columns for c in levels):
        return None
    u = df[levels[0]].astype(str)
    for c in levels[1:]:
        u = u + "/" + df[c].astype(str)
    return u


def _by_series(table: pd.DataFrame | None, levels: list[str]) -> pd.DataFrame | None:
    """A sku/location table keyed by the demand series id (None when it cannot be)."""
    if table is None or len(table) == 0:
        return None
    u = _uid(table, levels)
    return None if u is None else table.assign(unique_id=u.values)


def on_hand_by_series(inventory: pd.DataFrame | None, levels: list[str]) -> pd.Series | None:
    """Units on hand per demand series id (``levels`` joined by '/'): the latest snapshot of each
    (sku, location), summed over the locations (or SKUs) one series spans; None when the
    inventory cannot be keyed by the levels. The batch CLI and the service both read it so."""
    if inventory is None or len(inventory) == 0 or _uid(inventory, levels) is None:
        return None
    inv = inventory
    if "snapshot_date" in inv.columns:
        inv = inv.sort_values("snapshot_date", kind="mergesort", na_position="first")
    inv = inv.drop_duplicates([c for c in ("sku", "location") if c in inv.columns], keep="last")
    return inv.assign(unique_id=_uid(inv, levels).values).groupby("unique_id")["on_hand"].sum()


def on_hand_dates_by_series(inventory: pd.DataFrame | None, levels: list[str]) -> pd.Series | None:
    """The date of the on-hand :func:`on_hand_by_series` gives each series (ISO text, or None):
    the snapshot date of its latest snapshot, and for a series summed over several (sku, location)
    the oldest of theirs (the stock is no fresher than that); None where a summed row has no
    ``snapshot_date``. None when the inventory has no snapshot dates or cannot be keyed by the
    levels. The batch CLI's ``on_hand_date`` and the service's both read it so."""
    if (inventory is None or len(inventory) == 0 or "snapshot_date" not in inventory.columns
            or _uid(inventory, levels) is None):
        return None
    inv = inventory.sort_values("snapshot_date", kind="mergesort", na_position="first")
    inv = inv.drop_duplicates([c for c in ("sku", "location") if c in inv.columns], keep="last")
    d = pd.to_datetime(inv["snapshot_date"], errors="coerce")
    g = pd.DataFrame({"unique_id": _uid(inv, levels).values, "d": d.values}).groupby("unique_id")["d"]
    oldest = g.min().where(g.count() == g.size())  # a summed row without a date: the series' date unknown
    return oldest.map(lambda x: None if pd.isna(x) else x.date().isoformat())


def _lead_times(table: pd.DataFrame | None, levels: list[str], uids: Any) -> pd.DataFrame | None:
    """Lead time (days) and its spread per series: the sku x location row, else the sku's row
    for every location (location empty, loaded as 'ALL'), else - for series without a location
    level - the longest of the sku's per-location rows, else None (the config's lead_time_days
    then applies). ``serving.inventory.lead_times_by_series`` follows the same rule."""
    if table is None or len(table) == 0 or "sku" not in levels:
        return None
    t = table.copy()
    if "lead_time_std_days" not in t.columns:
        t["lead_time_std_days"] = 0.0
    t["lead_time_std_days"] = t["lead_time_std_days"].fillna(0.0)
    if "location" not in t.columns:
        t["location"] = ""
    loc_blank = t["location"].isna() | (t["location"].astype(str).isin(["", "nan", "None", "ALL"]))
    per_sku = t[loc_blank].drop_duplicates("sku", keep="last").set_index("sku")
    exact = _by_series(t[~loc_blank], levels) if "location" in levels else None
    if "location" not in levels:
        # series over every location: a SKU given only per location takes its longest lead time
        # (and largest spread), never the config's default silently
        longest = t[~loc_blank].groupby("sku")[["lead_time_days", "lead_time_std_days"]].max()
        per_sku = pd.concat([per_sku, longest[~longest.index.isin(per_sku.index)]])
    exact = exact.drop_duplicates("unique_id", keep="last").set_index("unique_id") if exact is not None else None
    rows = []
    for u in uids:
        sku = str(u).split("/")[levels.index("sku")]
        if exact is not None and u in exact.index:
            r = exact.loc[u]
        elif sku in per_sku.index:
            r = per_sku.loc[sku]
        else:
            continue
        rows.append({"unique_id": u, "lead_time_days": float(r["lead_time_days"]), "lead_time_std_days": float(r["lead_time_std_days"])})
    return pd.DataFrame(rows).set_index("unique_id") if rows else None
