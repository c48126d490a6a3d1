"""Known-future drivers that give away the periods without demand.

A driver given under ``demand.series.exog`` is read as known in advance: the backtest feeds each test
window its recorded values, and a plan feeds what the planner enters. A driver recorded *from* the
sales is not known in advance: Stallion's ``price_actual`` (and ``price_regular``) is 0 in 2,457 of
its 2,551 months without volume and in 121 of 18,449 with volume, because the price is read off the
sales. Fed to a backtest, such a value tells the model which test months have no demand (a leak
that flatters the backtest); a planner's plan carries the list price there instead, so the served
forecast does not behave as the backtest did. :func:`zero_demand_markers` finds a driver value (0, or
an empty cell) that marks the periods without demand: where the driver shows it, demand is 0 in at
least :data:`PRECISION` of the periods, and at least :data:`RECALL` of the periods without demand
show it. It says so; it refuses nothing (a "not listed" flag a planner does know ahead is such a
driver too). :func:`carry_over_unsold` (``demand.series.carry_forward``) is the repair: such a
driver's 0 or empty cells in periods without demand take the series' last value from a period with
demand, as an order book's ``price`` already is carried over periods without a sale (features.demand).
An order book's ``promo`` driver (``demand.drivers: [promo]``, the share of units sold on promotion)
leaks by construction, the other way round: it is above 0 only where something sold, so a backtest
knows that a promoted period had demand; :func:`order_book_promo` says so (no count needed). On the
synthetic network the LightGBM member scored MASE 1.205 with it, 1.252 with the generator's planned
campaign calendar as the driver instead and 1.301 without one (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["PRECISION", "RECALL", "MIN_ROWS", "carry_over_unsold", "order_book_promo", "zero_demand_markers"]

PRECISION = 0.9  # where the driver shows the marker, the share of periods with zero demand
RECALL = 0.5  # the share of the periods with zero demand that show the marker
MIN_ROWS = 20  # periods with the marker (and periods without demand) needed to say anything


def zero_demand_markers(df: pd.DataFrame, drivers: Mapping[str, str], source: str) -> list[str]:
    """One message per driver of ``drivers`` (``{name: column in the file}``, as ``demand.series.exog``;
    a name that is not a column of ``df`` is skipped) whose 0 or empty cells mark the periods of ``df``
    (``unique_id, ds, y`` + the drivers) without demand, with the counts that show it."""
    y = pd.to_numeric(df["y"], errors="coerce").to_numpy(dtype="float64")
    zero = y == 0
    n_zero = int(zero.sum())
    if n_zero < MIN_ROWS:
        return []
    out = []
    for name, column in drivers.items():
        if name not in df.columns:
            continue
        v = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype="float64")
        for what, mark in (("0", v == 0), ("empty", np.isnan(v))):
            n_mark = int(mark.sum())
            both = int((mark & zero).sum())
            if n_mark < MIN_ROWS or both < PRECISION * n_mark or both < RECALL * n_zero:
                continue
            col = "" if column == name else f" (column {column!r})"
            out.append(
                f"{source}: driver {name!r}{col} is {what} in {both:,} of the {n_zero:,} periods without demand "
                f"({both / n_zero:.0%}), and demand is 0 in {both:,} of the {n_mark:,} periods where it is {what} "
                f"({both / n_mark:.0%}): it looks recorded from the sales, not known ahead. As a known-future driver "
                "it tells a backtest which periods have no demand (a leak that flatters it), and a plan will not "
                f"know it. Give the values planned ahead (e.g. the list price in periods without a sale), list "
                f"{name!r} under demand.series.carry_forward (its last value from a period with demand is used "
                f"there), or leave it out of demand.series.exog")
            break
    return out


def carry_over_unsold(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``df`` (``unique_id, ds, y`` + drivers) with each driver of ``names`` that is 0 or empty in a period
    without demand (``y`` 0 or empty) replaced there by its series' last value from a period with
    demand (before the series' first such period: its first one; a series with none keeps its cells).
    Periods with demand keep their values, 0 included. A new frame, rows in ``df``'s order."""
    y = pd.to_numeric(df["y"], errors="coerce")
    unsold = (y.isna() | (y == 0)).to_numpy()
    order = df.sort_values(["unique_id", "ds"], kind="stable").index
    out = df.copy()
    uid = out.loc[order, "unique_id"]
    for name in names:
        v = pd.to_numeric(out[name], errors="coerce")
        gap = unsold & (v.isna() | (v == 0)).to_numpy()
        s = v.mask(gap).loc[order]  # the values of periods with demand (an empty one stays empty)
        s = s.groupby(uid, sort=False).ffill().groupby(uid, sort=False).bfill().reindex(out.index)
        # only the gaps take a carried value; a series without any value from a period with demand keeps its own
        out[name] = v.where(~gap | s.isna(), s)
    return out


def order_book_promo(source: str) -> str:
    """What ``demand.drivers: [promo]`` on an order book leaks, for ``source`` (the order lines)."""
    return (f"{source}: demand.drivers promo is the share of units sold on promotion in each period, read off the "
            "order lines: it is 0 in every period without a sale, so a backtest knows that a period with a "
            "promotion had demand (a leak that flatters the LightGBM member), while a planned promotion promises "
            "no sale. Where you have the planned promotions, give them as a series table's driver "
            "(demand.series.exog); else leave promo out of demand.drivers")
