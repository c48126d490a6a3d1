"""``forecast --alias`` / ``safety-stock --alias`` with ``--config``: the promotions table as it is now.

A registered forecaster keeps the plan of the campaigns its training run knew
(``DemandForecaster.set_planned_drivers``). A campaign added to ``data.promotions`` after that run
reached its forecast only by retraining. Here the config's calendar is read for the version's own
forecast periods and, where it plans other values than the version's plan, it becomes the plan the
forecast is made under, and the run says how many periods changed.

The version's ids split into the key columns its training run built them from
(:func:`alias_key_columns`), and its periods are those of the ``demand.freq`` it was trained with: a
config edited since (``demand.levels`` in another order, another ``demand.freq``) reads the table for the
version's series and periods, not the config's, and says so. The service does the same at start-up
(``serving._demand_promo``, ``serving.demand.DemandBackend.build``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.commands._demand_common import _with_keys


def calendar_plan(est: Any, cinfo: dict[str, Any] | None, keys: list[str], *, config: Any,
                  alias: str) -> tuple[pd.DataFrame | None, str]:
    """``(plan, note)``: the version's default plan (its :meth:`future_drivers`) with ``promo`` as the
    config's promotions table plans it now (``cinfo["promo_for"]``, :func:`training.demand_config.load_demand_series`),
    and a line for the user; ``(None, "")`` when nothing changes: no calendar in the config, a version
    without a calendar plan of its own (its promo is another driver: the share sold on promotion), or
    the same values. ``keys``: the key columns the version's ids split into (``sku``, ``location``)."""
    promo_for = (cinfo or {}).get("promo_for")
    # a hierarchical forecaster plans its bottom forecaster's series (ids total/<sku>/<location>)
    if promo_for is None or getattr(getattr(est, "bottom_", est), "planned_drivers_", None) is None \
            or not hasattr(est, "future_drivers"):
        return None, ""
    template = est.future_drivers()
    if template is None or "promo" not in template.columns:
        return None, ""
    template = template.reset_index(drop=True)
    served = template["unique_id"].astype(str)
    if hasattr(est, "nodes_"):  # the bottom series' node ids as served (<sku>/<location>), which split into keys
        nodes = est.nodes_
        served = served.map(dict(zip(nodes["unique_id"].astype(str), nodes["served_id"].astype(str), strict=True)))
        served = served.fillna(template["unique_id"].astype(str))
    grid = _with_keys(pd.DataFrame({"unique_id": served, "ds": template["ds"]}), keys)
    if "sku" not in grid.columns:
        return None, (f"\nnote: {config}'s promotions table was not read for dealerml-demand@{alias}: its series ids "
                      f"do not split into a sku column (key columns {keys}), so the plan it was trained with stands")
    # the version's periods are of the demand.freq it was trained with: a config's other freq (edited since)
    # read the calendar by months for weekly periods (a share of 0, or of a month, not of the week)
    freq = getattr(getattr(est, "bottom_", est), "freq", None)
    new = promo_for(grid, **({"freq": freq} if freq is not None else {}))["promo"].to_numpy(dtype="float64")
    old = template["promo"].to_numpy(dtype="float64")
    changed = ~np.isclose(new, old)
    if not changed.any():
        return None, ""
    ids = pd.unique(served[changed])
    note = (f"\npromo planned from {config}'s promotions table as it is now: {int(changed.sum())} period(s) of "
            f"{len(ids)} series differ from the plan dealerml-demand@{alias} was trained with (e.g. "
            f"{list(ids[:3])}), so the forecast is made under the table's campaigns")
    return template.assign(promo=new), note + freq_remark(est, promo_for, config)


def untrained_promo_note(est: Any, promo_for: Any, *, model: str, config: Any) -> str:
    """The line said when the config plans promo from a promotions table (``promo_for``, None without one or
    without ``promo`` in demand.drivers) but the version ``model`` was trained without it (no calendar plan of
    its own, :meth:`DemandForecaster.set_planned_drivers` never called) and has a ``promo`` driver: an older
    dealerml's promo, the share of units sold on promotion, whose plan carries each series' last value
    forward. :func:`calendar_plan` leaves such a version as it is (its promo is another driver); without this
    line only "last known value carried forward" said so. "" otherwise, also for a version fitted on a book too
    young for the members (``all_short_``: the short-history fallback reads no drivers, so set_planned_drivers
    keeps no plan even when it was trained with the table, and a retraining would plan nothing). ``forecast`` /
    ``safety-stock --alias --config`` and the service (``serving._demand_promo.table_plan``) all say it."""
    base = getattr(est, "bottom_", est)
    if promo_for is None or getattr(base, "planned_drivers_", None) is not None \
            or getattr(est, "all_short_", None) or getattr(base, "all_short_", None) \
            or "promo" not in [str(c) for c in (getattr(base, "exog_", None) or [])]:
        return ""
    return (f"{model} was trained without the promotions table (its promo was the share of units sold on "
            f"promotion): its plan carries each series' last promo value forward and {config}'s campaigns are not "
            "used: retrain with this config to plan them")


def freq_remark(est: Any, promo_for: Any, config: Any) -> str:
    """`` (read for its periods of demand.freq W, which it was trained with, not <config>'s M)`` when the
    config's ``demand.freq`` (``promo_for.freq``) is not the one the version was trained with, else ""."""
    from features.demand import period_alias

    freq = getattr(getattr(est, "bottom_", est), "freq", None)
    config_freq = getattr(promo_for, "freq", None)
    if freq is None or config_freq is None or period_alias(freq) == period_alias(config_freq):
        return ""
    return (f" (read for its periods of demand.freq {period_alias(freq)}, which it was trained with, not "
            f"{config}'s {period_alias(config_freq)})")


def trained_levels(run_id: str | None) -> list[str] | None:
    """The demand.levels the training run ``run_id`` of a registered version set (its
    ``config.demand.levels`` param), None when it set none or the run is gone."""
    import ast

    from training import tracking

    raw = tracking.run_params(run_id).get("config.demand.levels") if run_id else None
    try:
        levels = ast.literal_eval(raw) if raw else None
    except (ValueError, SyntaxError):
        return None
    if isinstance(levels, str):
        levels = [levels]
    return [str(c) for c in levels] if isinstance(levels, list) and levels else None


def alias_key_columns(est: Any, settings: Any, run_id: str | None, *, config: Any,
                      what: str = "the key columns are written") -> tuple[list[str], str]:
    """``(keys, note)``: the key columns a registered forecaster's ids split into (``sku``, ``location``)
    under a config's demand settings ``settings``, as ``forecast`` / ``safety-stock --alias --config`` and
    the service split them. A hierarchical one knows its levels; for a plain one, the demand.levels its
    training run (``run_id``) recorded, else the config's (or its series table's unique_id columns).
    ``note`` (else ""): the training run's levels differ from the config's (e.g. ``[location, sku]``, which
    put every SKU under location and every location under sku, without a word), starting with ``what``."""
    if getattr(est, "levels", None) is not None and hasattr(est, "bottom_"):
        return [str(c) for c in est.levels], ""
    if settings.series is not None:
        ids = settings.series.columns.get("unique_id")
        return ([str(c) for c in ids] if isinstance(ids, list) else []), ""
    levels = [str(c) for c in settings.levels]
    trained = trained_levels(run_id)
    if trained is None or trained == levels:
        return levels, ""
    return trained, (f"{what} as dealerml-demand's training run built its ids, demand.levels {trained}, not "
                     f"{config}'s {levels}")


def trained_periods(est: Any, settings: Any, *, config: Any, model: str) -> tuple[str, float, float, str]:
    """``(freq, review_period, cover_limit_periods, note)`` for sizing stock from a registered forecaster under
    a config's demand settings ``settings``: ``freq`` is the demand.freq the version was trained with (its
    forecast periods, so the unit of the lead times, the review period, the cover and the on-hand dating it
    sizes with), and the config's ``demand.review_period`` / ``cover_limit_periods``, periods of the config's
    demand.freq, are converted to it. ``note`` (else ""): the config's demand.freq is another one (edited
    since training, W -> M), which sized the stock in months for weekly forecasts, silently.
    ``safety-stock --alias --config`` and the service (``serving.demand.DemandBackend.build``) both size with it."""
    from features.demand import period_alias
    from models.inventory import lead_time_periods

    config_freq = period_alias(settings.freq)
    review, cover = float(settings.review_period), float(settings.cover_limit_periods)
    own = getattr(getattr(est, "bottom_", est), "freq", None)
    if own is None or period_alias(own) == config_freq:
        return config_freq, review, cover, ""
    freq = period_alias(own)
    days = 1.0 / lead_time_periods(1.0, config_freq)  # days per period of the config's freq
    r, c = lead_time_periods(review * days, freq), lead_time_periods(cover * days, freq)
    return freq, r, c, (
        f"stock sized in periods of demand.freq {freq}, which {model} was trained with, not {config}'s "
        f"{config_freq}: lead times in days / {1.0 / lead_time_periods(1.0, freq):g}, demand.review_period "
        f"{review:g} ({config_freq}) = {r:.4g} periods, demand.cover_limit_periods {cover:g} ({config_freq}) = "
        f"{c:.4g} periods")


def book_as_trained(df: pd.DataFrame, info: dict[str, Any], keys: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(df, info)`` of a config's book (:func:`training.demand_config.load_demand_series`) with its series ids
    built as a registered version's are: the book's ids join the config's ``info["levels"]``, the version's split
    into ``keys`` (:func:`alias_key_columns`). A config edited since training (demand.levels ``[location, sku]``
    for a version trained on ``[sku, location]``) keyed the book's lead times, inventory and series ``ALL/A``
    where the version's are ``A/ALL``: its series found no lead time (left out as not among the run's series)
    and their stock was read as another series'. The ids are rejoined in ``keys``' order when both name the
    same columns in another order; else (no levels, other columns) the book is returned as it is."""
    levels = [str(c) for c in info.get("levels") or []]
    if not levels or levels == list(keys) or sorted(levels) != sorted(keys):
        return df, info
    order = [levels.index(k) for k in keys]

    def rekey(u: Any) -> str:
        parts = str(u).split("/")
        return "/".join(parts[i] for i in order) if len(parts) == len(levels) else str(u)

    out = dict(info, levels=list(keys))
    for name in ("lead_times", "on_hand", "on_hand_date"):
        if out.get(name) is not None:
            out[name] = out[name].rename(index=rekey)
    if out.get("below_top_n") is not None:
        out["below_top_n"] = frozenset(rekey(u) for u in out["below_top_n"])
    return df.assign(unique_id=df["unique_id"].map(rekey)), out
