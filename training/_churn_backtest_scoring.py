"""Churn scores for the CRM: ``score_accounts`` (probability, tier, reasons, expected value and
revenue at risk per account; the function behind ``dealerml score churn``, the service and the
dealers' churn risk), the model's own windows (``model_lookback_days``, ``model_horizon_days``) and
the notes when they differ from the config's (``lookback_note``, ``horizon_note``),
``SCORE_COLUMNS``, ``last_orders`` and ``dropped_unknown_accounts``.

Split from :mod:`training.churn_backtest` to keep each module under ~500 lines; it reads snapshots
through :mod:`training._churn_backtest_cutoffs` and names ``ChurnSettings`` in annotations only.
:mod:`training.churn_backtest` re-exports every name here: import them from there (the churn and
dealers commands, tuning, :mod:`training.dealers_churn_risk` and :mod:`serving.churn` do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from training._churn_backtest_cutoffs import snapshot
from training.data import check_cutoff_in_book
from training.errors import ConfigError, DataError

if TYPE_CHECKING:
    from training.churn_backtest import ChurnSettings


def model_lookback_days(model: Any, settings: ChurnSettings) -> int:
    """The population window ``model`` is scored on: the ``lookback_days`` it was trained with (kept
    with it), else (a model saved before it was kept) the config's ``churn.lookback_days``."""
    kept = getattr(model, "lookback_days", None)
    return settings.lookback_days if kept is None else int(kept)


def model_horizon_days(model: Any, settings: ChurnSettings) -> int:
    """The horizon ``model``'s probabilities are over: the ``horizon_days`` it was trained with (kept with
    it), else (a model saved without it) the config's ``churn.horizon_days``."""
    kept = getattr(model, "horizon_days", None)
    return settings.horizon_days if kept is None else int(kept)


def _window_note(key: str, days: int, config_days: int, who: str, what: str) -> str | None:
    """The note that ``who`` was trained with another ``churn.<key>`` than the config's (None when they
    agree); ``what`` says what the model's own value means for its scores."""
    if days == config_days:
        return None
    return (f"{who} was trained with churn.{key} {days}, not the config's {config_days}: {what}; set churn.{key}: "
            f"{days} in the config to match it, or train a model with {config_days}")


def lookback_note(model: Any, settings: ChurnSettings, cutoff, who: str) -> str | None:
    """What to say when ``model`` (``who``) was trained with another ``churn.lookback_days`` than the
    config's: it is scored on its own population (None when both agree)."""
    days = model_lookback_days(model, settings)
    return _window_note("lookback_days", days, settings.lookback_days, who,
                        f"it scores its own population, the accounts with an order in the {days} days before "
                        f"{pd.Timestamp(cutoff).date()}")


def horizon_note(model: Any, settings: ChurnSettings, cutoff, who: str) -> str | None:
    """What to say when ``model`` (``who``) was trained with another ``churn.horizon_days`` than the
    config's: its probabilities (and revenue at risk) are over its own horizon (None when both agree)."""
    days = model_horizon_days(model, settings)
    return _window_note("horizon_days", days, settings.horizon_days, who,
                        f"its probabilities are P(no order in the {days} days after {pd.Timestamp(cutoff).date()}) "
                        f"and its revenue at risk is {days} days of revenue")


SCORE_COLUMNS = ["account_id", "probability", "tier", "reason_1", "reason_2", "reason_3",
                 "model_version", "scored_at", "cutoff", "expected_value", "revenue_at_risk"]


def score_accounts(book, model, settings: ChurnSettings, cutoff, *, model_version: str,
                   population: pd.DataFrame | None = None, reasons: bool = True) -> pd.DataFrame:
    """Scores for every account that ordered in the lookback window before ``cutoff``.

    Columns: account_id, probability (calibrated P(no order in the next H days)), tier
    (high/medium/low), reason_1..3 (empty string when fewer reasons apply), model_version,
    scored_at (UTC, ISO seconds), cutoff, expected_value and revenue_at_risk (currency:
    last-365-day revenue scaled to the model's horizon, ``model_horizon_days``).

    ``reasons=False`` leaves reason_1..3 empty without computing the per-account feature
    contributions and sentences (the dealer ranking reads only the probability; the reasons
    were about a fifth of ``dealerml score dealers`` on a 4,000-dealer book). Every other
    column is the same.
    """
    from datetime import UTC, datetime

    from models.reasons import reason_texts
    from training.alerts import assign_tiers

    check_cutoff_in_book(book, cutoff)
    if population is None:  # the population the model was trained on (its lookback_days), not the config's
        days = model_lookback_days(model, settings)
        if days != settings.lookback_days:
            settings = settings.model_copy(update={"lookback_days": days})
    pop = population if population is not None else snapshot(book, cutoff, settings, labels=False)[0]
    if len(pop) == 0:  # said with the book's dates: a cutoff before (or long after) its orders, by how much
        dates = book.order_lines["order_date"]
        first, last = pd.Timestamp(dates.min()).normalize(), pd.Timestamp(dates.max()).normalize()
        raise DataError(f"no account ordered in the {settings.lookback_days} days before {pd.Timestamp(cutoff).date()} "
                        f"(the model's population window); the order book's orders run from {first.date()} to "
                        f"{last.date()}: expected a cutoff with orders in the {settings.lookback_days} days before "
                        f"it, from {(first + pd.Timedelta(days=1)).date()} to {(last + pd.Timedelta(days=1)).date()}")
    p = model.churn_probability(pop)
    texts: list[list[str]] = [[]] * len(pop)
    if reasons:  # said of what the book covers: its first order date before the cutoff (models.reasons)
        first = book.order_lines["order_date"].min()  # datetime64, tz-naive (the order_lines contract)
        known = not pd.isna(first) and first < pd.Timestamp(cutoff).normalize()
        start = first
        # the service events' own first date: a table that starts later than the order book holds fewer
        # days of the service windows (models.reasons says those as its days on record)
        ev = getattr(book, "service_events", None)
        svc = ev["event_date"].min() if ev is not None and len(ev) else None
        texts = reason_texts(pop, model.contributions(pop), k=3, book_start=start if known else None,
                             cutoff=cutoff if known else None,
                             service_start=svc if known and svc is not None and not pd.isna(svc) else None)[0]
    # the revenue its probability puts at risk: over the model's own horizon (P(no order in its H days)),
    # not the config's churn.horizon_days (a 60-day model scored under 90 put 1.5x the revenue at risk)
    rev = pop["revenue_365d"].to_numpy(dtype=float) * model_horizon_days(model, settings) / 365.0
    groups = None
    by = settings.tiers.capacity_by
    if by:
        if by in pop.columns:
            groups = pop[by]
        elif book.accounts is not None and by in book.accounts.columns:  # e.g. account_manager
            groups = pop[["account_id"]].merge(book.accounts[["account_id", by]], on="account_id", how="left")[by]
        else:
            raise ConfigError(f"churn.tiers.capacity_by names column {by!r}, which neither the account "
                              f"features nor the accounts table have")
    tiers, ev = assign_tiers(p, rev, settings.tiers, groups)
    out = pd.DataFrame({"account_id": pop["account_id"].astype(str).to_numpy(), "probability": p, "tier": tiers})
    for j in range(3):
        out[f"reason_{j + 1}"] = [t[j] if len(t) > j else "" for t in texts]
    out["model_version"] = str(model_version)
    out["scored_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["cutoff"] = pd.Timestamp(cutoff).strftime("%Y-%m-%d")
    out["expected_value"] = ev
    out["revenue_at_risk"] = rev
    return out[SCORE_COLUMNS]


def last_orders(book: Any, cutoff: pd.Timestamp) -> dict[str, str | None]:
    """Account id -> date of its last order before ``cutoff`` (None: no order before it), for
    every account of the accounts table and the order book."""
    ol = book.order_lines
    before = ol.loc[ol["order_date"] < pd.Timestamp(cutoff), ["account_id", "order_date"]]
    last = before.groupby(before["account_id"].astype(str))["order_date"].max()
    out: dict[str, str | None] = {}
    accounts = getattr(book, "accounts", None)
    if accounts is not None and "account_id" in getattr(accounts, "columns", ()):
        out.update(dict.fromkeys(accounts["account_id"].astype(str), None))
    out.update(dict.fromkeys(ol["account_id"].astype(str).unique().tolist(), None))
    out.update({a: pd.Timestamp(d).date().isoformat() for a, d in last.items()})
    return out


def dropped_unknown_accounts(book: Any) -> list[str]:
    """Ids of the order book dropped as ``unknown_account`` (not in the accounts table)."""
    rep = getattr(getattr(book, "report", None), "tables", {}).get("order_lines")
    return list(getattr(rep, "dropped_ids", {}).get("unknown_account", []))
