"""The promotions table as read at start-up: the demand champion's default promo plan.

A registered forecaster keeps the plan of the campaigns its training run knew
(``DemandForecaster.set_planned_drivers``). ``dealerml forecast --alias`` / ``safety-stock --alias``
with ``--config`` read the config's promotions table as it is now and plan under it
(:func:`training.commands._alias_plan.calendar_plan`); the service does the same, once, when it builds
the demand backend (:func:`table_plan`, called by ``serving.demand.DemandBackend.build`` before it
predicts): a campaign added to ``data.promotions`` reaches the served forecasts and safety stock at the
next restart, without retraining. A request's own ``drivers`` still override this plan.

What it says: ``/model_info`` -> ``summary.promo_plan`` (where the plan comes from, how many periods of
how many series differ from the trained plan, when the table was read) and ``promo_plan`` on every
``/forecast`` and ``/safety_stock`` answer (the same in one line); one log line at start-up.

A promotions file that cannot be read fails the order book, and the service stays unready naming it
(``serving.loader.load_all``), as ``safety-stock --alias --config`` refuses it. A table the calendar step
cannot use (e.g. ``demand.levels`` without ``sku``, or any other error reading it for the champion's
periods) leaves the plan the champion was trained with, with a logged warning and ``source: trained``
naming why, as ``forecast --alias --config`` says a note and keeps that plan.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["table_plan"]

logger = logging.getLogger("dealerml.serving.demand")


def table_plan(estimator: Any, slot: Any, book: Any, cfg: Any, *, key_columns: list[str]) -> dict[str, Any] | None:
    """Make the config's promotions table (``book.promotions``, read with the order book at start-up) the
    champion's default plan where it plans other promo values for the champion's own forecast periods than
    the plan it was trained with (:func:`~training.commands._alias_plan.calendar_plan`, as the CLI does),
    and return what ``/model_info`` says of it (``source``: ``promotions_table``, ``trained`` or
    ``trained_without_table`` (:func:`_untrained`), ``read_at``,
    ``periods_changed``, ``series_changed``, ``examples``: up to 10 of those series, ``note``: the line every
    ``/forecast`` and ``/safety_stock`` answer gives as ``promo_plan``; no file path, which the log line has).

    ``slot``: the demand slot (its name, version and alias name the model in the note). ``key_columns``: the
    key columns the champion's ids split into (:func:`~training.commands._alias_plan.alias_key_columns`, as
    the CLI splits them: a plain champion's training run's demand.levels before the config's). None, and the champion untouched, when
    the config has no promotions table or the champion has no calendar plan of its own and no promo driver;
    one trained without the table (its promo: the share sold on promotion) keeps its plan, said (:func:`_untrained`),
    as ``forecast --alias --config`` plans and says then."""
    from serving.state import utc_now

    if getattr(book, "promotions", None) is None or not hasattr(estimator, "future_drivers"):
        return None
    model = f"{slot.name}/{slot.version}"  # as every answer's model_version
    cfg_file = str(getattr(cfg, "config_path", None) or getattr(cfg, "name", "the config"))
    read_at = utc_now()
    if getattr(getattr(estimator, "bottom_", estimator), "planned_drivers_", None) is None:
        return _untrained(estimator, model, book, cfg, cfg_file, read_at)
    # the answers name no file (/model_info gives the config's path to an admin key only; the log does) and no
    # time (read_at): every worker of the service answers the same line
    where = "the config's promotions table (data.promotions)"
    out: dict[str, Any] = {"source": "trained", "read_at": read_at, "periods_changed": 0, "series_changed": 0,
                           "examples": []}
    try:
        from training._demand_promotions import _promo_calendar, _promo_for
        from training.commands._alias_plan import calendar_plan, freq_remark
        from training.demand_config import demand_settings

        s = demand_settings(cfg)
        # the levels load_demand_series builds the series on (the order lines' columns among demand.levels)
        levels = [c for c in s.levels if c in book.order_lines.columns]
        calendar = _promo_calendar(book, s, levels)
        if calendar is None:  # demand.drivers has no promo: the table is not a driver of this config
            return None
        trained = estimator.future_drivers()
        promo_for = _promo_for(calendar, s.freq)
        plan, note = calendar_plan(estimator, {"promo_for": promo_for}, key_columns,
                                   config="the config", alias=str(getattr(slot, "alias", None) or "champion"))
        # read for the champion's own periods: a demand.freq edited since training is said
        read_as = freq_remark(estimator, promo_for, "the config")
        if plan is None and note:  # the ids do not split into a sku column: the table was not read
            raise ValueError(note.strip().removeprefix("note: "))
        if plan is not None:
            changed = ~np.isclose(plan["promo"].to_numpy(dtype="float64"),
                                  trained.reset_index(drop=True)["promo"].to_numpy(dtype="float64"))
            ids = [str(u) for u in pd.unique(plan["unique_id"].astype(str)[changed])]
            estimator.set_planned_drivers(plan)
            out.update(periods_changed=int(changed.sum()), series_changed=len(ids), examples=ids[:10])
    except Exception as err:  # noqa: BLE001 - the trained plan stands, said in the log and /model_info
        out["note"] = (f"promo planned as {model} was trained: {where} could not be used for its forecast periods "
                       f"at start-up: {type(err).__name__}: {err}")
        logger.warning("%s (config %s)", out["note"], cfg_file)
        return out
    out["source"] = "promotions_table"
    n, k = out["periods_changed"], out["series_changed"]
    out["note"] = (f"promo planned from {where} as read at start-up: {n} period(s) of {k} series "
                   f"differ from the plan {model} was trained with"
                   + (f" (e.g. {out['examples'][:3]}); the forecasts and safety stock served are made under the "
                      "table's campaigns" if n else "")
                   + read_as + "; a request's drivers override it")
    logger.info("%s (config %s)", out["note"], cfg_file)
    return out


def _untrained(estimator: Any, model: str, book: Any, cfg: Any, cfg_file: str, read_at: str) -> dict[str, Any] | None:
    """What ``/model_info`` says of a champion trained without the promotions table (an older dealerml's promo:
    the share of units sold on promotion, carried forward) under a config that plans promo from one: its plan
    stands, the table is not read for it (``source: trained_without_table``; nothing to re-read, no watch), and
    the note (:func:`~training.commands._alias_plan.untrained_promo_note`, as the CLI says it) asks for a
    retraining. None when the champion has no promo driver or the config's demand.drivers no promo."""
    if "promo" not in [str(c) for c in (getattr(getattr(estimator, "bottom_", estimator), "exog_", None) or [])]:
        return None
    from training._demand_promotions import _promo_calendar, _promo_for
    from training.commands._alias_plan import untrained_promo_note
    from training.demand_config import demand_settings

    try:
        s = demand_settings(cfg)
        calendar = _promo_calendar(book, s, [c for c in s.levels if c in book.order_lines.columns])
    except Exception as err:  # noqa: BLE001 - the champion's plan stands either way; said in the log
        logger.warning("the promotions table (data.promotions) could not be read for %s: %s: %s (config %s)",
                       model, type(err).__name__, err, cfg_file)
        calendar = None
    promo_for = None if calendar is None else _promo_for(calendar, s.freq)
    note = untrained_promo_note(estimator, promo_for, model=model, config="the config")
    if not note:
        return None
    logger.warning("%s (config %s)", note, cfg_file)
    return {"source": "trained_without_table", "read_at": read_at, "periods_changed": 0, "series_changed": 0,
            "examples": [], "note": note}
