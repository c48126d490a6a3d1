"""Each level's history as it stood at a backtest cutoff, for the coherent forecaster
(:meth:`models.demand_hier.HierarchicalDemandForecaster.cross_validation`).

An order book whose cancellations net earlier lines gives ``history_as_of`` (``training.demand_config``'s
``info["as_of"]``): the demand table of the WHOLE book as it stood at an instant (every series with a
sale before it, not only the ``demand.top_n`` kept; the key columns and drivers beside ``unique_id, ds,
y``), or None when nothing differs from the final book. The hierarchy has two forecasters and reads
it twice:

- the bottom one (plain ids, drivers) gets the rows of the hierarchy's own bottom series, in its ids;
- the upper one gets every parent summed from the bottom level AFTER the overlay (the final book's
  bottom panel with the as-of periods written over it, :func:`models.demand_data.panel_as_of`), so a
  parent is the sum of all its children whatever rows the as-of table holds, and a series left out
  of the hierarchy (``top_n``) never reaches a parent.

The same panels, at each backtest cutoff, calibrate the parents' bands (``_coherent_table``): the
internal windows' errors were measured on the history as it stood then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from models.demand_data import Panel, build_panel, panel_as_of, parse_ds_column, period_end

__all__ = ["LevelsAsOf"]

_Frame = pd.DataFrame | None


class LevelsAsOf:
    """``history_as_of`` of the whole book split into the bottom and the upper forecaster's.

    ``bottom``: the hierarchy's bottom table (plain ids, ``ds``, ``y``, drivers: ``_split``);
    ``keys``: plain id -> key columns ``levels`` (top first); ``bottom_nodes``: plain id -> node id
    (``HierarchicalDemandForecaster.bottom_nodes_``). Answers are kept per instant: each forecaster and the band calibration ask once per cutoff.
    """

    def __init__(self, history_as_of: Callable[[pd.Timestamp], _Frame], *, bottom: pd.DataFrame,
                 keys: pd.DataFrame, levels: Sequence[str], freq: str, bottom_nodes: dict[str, str]) -> None:
        self._as_of = history_as_of
        self._levels = [str(c) for c in levels]
        self._drivers = [c for c in bottom.columns if c not in ("unique_id", "ds", "y")]
        self._plain_of = {v: k for k, v in bottom_nodes.items()}
        self._keys = keys
        # every bottom series of the hierarchy, all-zero ones included: a parent sums them all
        self._panel = build_panel(bottom[["unique_id", "ds", "y"]], freq, exog=[], drop_all_zero=False)
        self._memo: dict[pd.Timestamp, tuple[_Frame, _Frame]] = {}

    def bottom(self, at: pd.Timestamp) -> _Frame:
        """The bottom forecaster's ``history_as_of``: the hierarchy's bottom series as they stood at ``at``."""
        return self._at(at)[0]

    def upper(self, at: pd.Timestamp) -> _Frame:
        """The upper forecaster's ``history_as_of``: every parent summed from the bottom level as it stood at ``at``."""
        return self._at(at)[1]

    def panels(self, pan_b: Panel, pan_u: Panel, c: int) -> tuple[Panel, Panel]:
        """``pan_b`` / ``pan_u`` (the final book's bottom and upper panels) with their periods up to
        cutoff index ``c`` as they stood at its end (the histories the forecasters read there)."""
        at = period_end(pan_b, c)
        return panel_as_of(pan_b, c, self.bottom(at)), panel_as_of(pan_u, c, self.upper(at))

    def _at(self, at: pd.Timestamp) -> tuple[_Frame, _Frame]:
        at = pd.Timestamp(at)
        if at not in self._memo:
            self._memo[at] = self._split(at)
        return self._memo[at]

    def _split(self, at: pd.Timestamp) -> tuple[_Frame, _Frame]:
        from models.demand_hier import hierarchy, node_ids

        raw = self._as_of(at)
        if raw is None or not len(raw):
            return None, None
        if all(c in raw.columns for c in self._levels):  # the order book's table: its key columns name the node
            plain = node_ids(raw, self._levels).map(self._plain_of)
        else:  # a table of plain ids only
            plain = raw["unique_id"].astype(str).where(raw["unique_id"].astype(str).isin(set(self._plain_of.values())))
        keep = plain.notna().to_numpy()
        if not keep.any():
            return None, None
        bottom = pd.DataFrame({"unique_id": plain[keep].to_numpy(), "ds": parse_ds_column(raw.loc[keep, "ds"]).to_numpy(),
                               "y": raw.loc[keep, "y"].to_numpy()})
        for c in self._drivers:
            if c in raw.columns:
                bottom[c] = raw.loc[keep, c].to_numpy()
        pan = self._panel
        c = int(pan.dates.searchsorted(at)) - 1  # the last period that ended before ``at``
        if c < 0:
            return bottom, None
        p = panel_as_of(pan, c, bottom)
        if p is pan:
            return bottom, None
        long = p.long(c).merge(self._keys, on="unique_id", how="left")
        table, _, _ = hierarchy(long, self._levels)
        upper = table[~table["unique_id"].isin(set(self._plain_of))]
        return bottom, upper[["unique_id", "ds", "y"]].reset_index(drop=True)
