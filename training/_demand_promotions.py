"""The planned campaigns (``data.promotions``) as the promo driver of an order book's demand series:
the calendar for the periods after the history (``info["planned_drivers"]``, the forecast's default
plan) or for any grid of periods (``info["promo_for"]``, e.g. a registered forecaster's own). Private
to :mod:`training.demand_config`, which puts both in ``load_demand_series``' info."""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.errors import ConfigError


def _planned_promo(keys: pd.DataFrame, last: pd.Timestamp, calendar: pd.DataFrame, freq: str):
    """``info["planned_drivers"]`` of :func:`load_demand_series`: ``h`` -> the promo driver the calendar
    plans for each series (``keys``: ``unique_id`` + its level columns) over the ``h`` periods after
    ``last``, as ``unique_id, ds, promo`` (``DemandForecaster.set_planned_drivers``)."""
    from features.demand import future_periods

    promo_for = _promo_for(calendar, freq)

    def planned(h: int) -> pd.DataFrame:
        return promo_for(keys.merge(pd.DataFrame({"ds": future_periods(last, h, freq)}), how="cross"))

    return planned


def _promo_for(calendar: pd.DataFrame, freq: str):
    """``info["promo_for"]`` of :func:`load_demand_series`: ``grid`` (``unique_id, ds`` + ``sku``, and
    ``location`` when it is a level) -> the promo driver the calendar plans for those periods, as
    ``unique_id, ds, promo`` in ``grid``'s row order. ``freq`` is the config's ``demand.freq`` (also
    ``promo_for.freq``); ``promo_for(grid, freq=...)`` reads the calendar for periods of another one, e.g.
    a registered forecaster trained before the config's ``demand.freq`` was edited, whose ``ds`` are the
    starts of its own periods (:func:`training.commands._alias_plan.calendar_plan`)."""
    from features.demand import planned_promo_share

    def promo_for(grid: pd.DataFrame, *, freq: str = freq) -> pd.DataFrame:
        return grid[["unique_id", "ds"]].assign(promo=planned_promo_share(grid, calendar, freq))

    promo_for.freq = freq  # type: ignore[attr-defined]
    return promo_for


def _promo_calendar(book: Any, s: Any, levels: list[str]) -> pd.DataFrame | None:
    """The planned campaigns (``data.promotions``) when the promo driver is asked for (``demand.drivers:
    [promo]``), else None; ConfigError when the series have no SKU to match them to."""
    promotions = getattr(book, "promotions", None)
    if promotions is None or "promo" not in s.drivers:
        return None
    if "sku" not in levels:
        raise ConfigError(f"data.promotions: the promo driver matches campaigns to each series' SKU; demand.levels "
                          f"{levels} has no sku (add it, or leave promo out of demand.drivers)")
    return promotions
