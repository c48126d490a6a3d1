"""The hierarchy's nodes and the per-node tables of the coherent forecaster
(:class:`models.demand_hier.HierarchicalDemandForecaster`): ``hierarchy`` (every level's summed
demand, the summing matrix S and the tags), ``node_ids`` (each bottom row's node id
``total/<sku>/<location>``), ``_node_table`` (node id -> served id ``A/*``, level and keys), the
tags read per node (``_level_of``, ``_bottom_ids``), ``_classes`` (demand class per series) and
``_rebuild`` (base forecasts rebuilt from a forecaster's scaled errors, for the parents' bands).

Split from :mod:`models.demand_hier` to keep each module under ~500 lines; the estimator class
stays there (its instances are pickled with that module path) and re-exports every name here
(``ALL``, ``hierarchy``, ``node_ids`` are public): import them from :mod:`models.demand_hier`, as
:mod:`models.demand_hier_as_of` and ``training.commands.demand`` do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.demand_data import Panel, parse_ds_column
from models.demand_select import naive_scale

_TOTAL = "_total"
ALL = "*"
"""The key value of a summed level in a served id: ``A/*`` is SKU A at every location, ``*/*`` the total."""


def node_ids(df: pd.DataFrame, levels: Sequence[str]) -> pd.Series:
    """Each row's bottom node id in the hierarchy: ``total/<key 1>/<key 2>...`` (key columns top first)."""
    levels = [str(c) for c in levels]
    node = "total/" + df[levels[0]].astype(str)
    for c in levels[1:]:
        node = node + "/" + df[c].astype(str)
    return node


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


def _node_table(df: pd.DataFrame, levels: list[str], bottom_nodes: dict[str, str]) -> pd.DataFrame:
    """Every node of the hierarchy, top first: ``unique_id`` (node id, ``total/A/L1``),
    ``served_id`` (``*/*``, ``A/*``, the plain bottom id), ``level`` (``total``, ``sku``,
    ``sku/location``) and one column per key (None where the level sums over it)."""
    n = len(levels)
    keys = df[levels].astype(str).drop_duplicates().sort_values(levels, kind="mergesort")
    served_of = {v: k for k, v in bottom_nodes.items()}
    rows = []
    for i in range(n + 1):
        part = keys[levels[:i]].drop_duplicates() if i else keys.head(1)[[]]
        for vals in (part.itertuples(index=False, name=None) if i else [()]):
            node = "/".join(["total", *vals])
            served = served_of.get(node, node) if i == n else "/".join([*vals, *[ALL] * (n - i)])
            rows.append({"unique_id": node, "served_id": served, "level": "/".join(levels[:i]) or "total",
                         **{c: (vals[j] if j < i else None) for j, c in enumerate(levels)}})
    out = pd.DataFrame(rows)
    dup = out["served_id"].duplicated(keep=False)
    if dup.any():
        raise ValueError(f"served ids of the hierarchy's levels collide: {out.loc[dup, 'served_id'].tolist()[:4]}")
    return out


def _level_of(tags: dict) -> pd.Series:
    """Upper node id -> its level's tag (e.g. ``_total/sku``); the bottom level is left out.
    (``|`` would split a conformal key in two: a key column named with one is respelled.)"""
    keys = list(tags)[:-1]
    return pd.Series({str(u): str(k).replace("|", "/") for k in keys for u in tags[k]}, dtype=object)


def _classes(fc: pd.DataFrame) -> pd.Series:
    """Demand class per series of a forecaster's forecast frame (as of its cutoff)."""
    if fc is None or fc.empty or "demand_class" not in fc.columns:
        return pd.Series(dtype=object)
    return fc.groupby("unique_id")["demand_class"].first()


def _bottom_ids(tags: dict) -> set[str]:
    return set(map(str, tags[list(tags)[-1]]))


def _rebuild(resid: pd.DataFrame, pan: Panel) -> pd.DataFrame:
    """Base forecasts ``unique_id, ds, cutoff, Final`` = y - r * scale from a forecaster's
    scaled errors in its internal windows (scale: the naive in-sample error at the window's
    cutoff, as the forecaster scaled them)."""
    if resid is None or len(resid) == 0:
        return pd.DataFrame(columns=["unique_id", "ds", "cutoff", "Final"])
    pos = pd.Series(np.arange(pan.n), index=pan.uids)
    cut = pan.dates.get_indexer(pd.DatetimeIndex(resid["cutoff"]))
    ii = pos.loc[resid["unique_id"]].to_numpy()
    tt = cut + resid["step"].to_numpy(dtype=int)
    scale = np.empty(len(resid))
    for c in np.unique(cut):
        at = cut == c
        scale[at] = naive_scale(pan.Y, int(c))[ii[at]]
    return pd.DataFrame({"unique_id": resid["unique_id"].to_numpy(), "ds": pan.dates[tt], "cutoff": pan.dates[cut],
                         "Final": pan.Y[ii, tt] - resid["r"].to_numpy(dtype=float) * scale})
