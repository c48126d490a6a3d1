"""Has the promotions table changed since start-up?

The service plans the demand champion's forecasts under the config's promotions table as read at start-up
(:mod:`serving._demand_promo`); models and tables are read once, so a campaign added, moved or dropped
afterwards reaches the answers only at a restart. Until then a planner asking ``/forecast`` got the old
plan without a word. Now the champion check (``$DEALERML_SERVE_CHAMPION_CHECK_SECONDS``,
:func:`serving.loader.watch_champions`) also re-reads that table and compares it, cleaned as at start-up
(``validate_promotions``), with what the service planned under:

- it differs: ``/model_info`` marks the demand model ``stale``, its ``stale_reason`` says since when and
  that a restart plans under the new table (no retraining needed), and the log says it once per change;
- it can no longer be read (deleted, a bad row): stale too, naming the error, since a restart would
  stay unready until the table is fixed;
- it is back to what was read at start-up: no longer stale.

``/readyz`` stays 200 either way: the answers are what they were, from a plan that is now out of date.
A table is re-read whole at every check: campaign calendars are small, and a file's modification time
would miss an edit made while the service was reading it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["PromoWatch", "check_promotions", "table_fingerprint"]

logger = logging.getLogger("dealerml.serving.demand")


def table_fingerprint(df: pd.DataFrame) -> str:
    """A hash of a cleaned promotions table's rows, whatever their order (the plan does not depend on it)."""
    cols = sorted(df.columns)
    rows = pd.util.hash_pandas_object(df[cols], index=False).to_numpy()
    rows.sort()
    return hashlib.sha256(",".join(cols).encode() + rows.tobytes()).hexdigest()


@dataclass
class PromoWatch:
    """What the demand backend planned under: the table's source and its fingerprint at start-up, and what
    the last check found (``changed_at``: when a difference was first seen; ``error``: why it could not be
    read then)."""

    source: Any  # training.config.TableSource of data.promotions
    fingerprint: str
    read_at: str
    changed_at: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, cfg: Any, book: Any, read_at: str) -> PromoWatch | None:
        src = getattr(getattr(cfg, "data", None), "promotions", None)
        table = getattr(book, "promotions", None)
        if src is None or table is None:
            return None
        return cls(source=src, fingerprint=table_fingerprint(table), read_at=read_at)

    def read_now(self) -> str:
        """The table's fingerprint now, read and cleaned as ``load_order_book`` does at start-up."""
        from training._validate_tables import validate_promotions
        from training.sources import read_table

        src = self.source
        raw = read_table("promotions", src)
        df, _ = validate_promotions(raw.frame, source=raw.source, mapping=raw.mapping,
                                    date_format=src.date_format, dayfirst=src.dayfirst)
        return table_fingerprint(df)

    def message(self, model: str) -> str | None:
        """The stale reason's part for the promotions table, None while it is as read at start-up."""
        where = "the promotions table (data.promotions)"  # the log line names the file or table
        if self.error is not None:
            return (f"{where} could not be read at the last check ({self.error}); {model} still plans under the "
                    f"table as read at start-up ({self.read_at}), and a restart would stay unready until it is "
                    "fixed")
        if self.changed_at is not None:
            return (f"{where} has changed since start-up (read at {self.read_at}; a difference seen at "
                    f"{self.changed_at}): the forecasts and safety stock of {model} are still planned under the "
                    "campaigns read at start-up: restart the service to plan under the table as it is now "
                    "(no retraining needed)")
        return None


def check_promotions(state: Any) -> None:
    """Re-read the promotions table of every ready demand slot whose backend watches one, and record what
    it found (``/model_info``: ``stale`` / ``stale_reason``); each new finding is logged once."""
    from serving.state import READY, utc_now

    for slot in state.slots.values():
        watch = getattr(slot.backend, "promo_watch", None)
        if slot.state != READY or watch is None:
            continue
        before = watch.message(f"{slot.name} version {slot.version}")
        try:
            now = watch.read_now()
        except Exception as err:  # noqa: BLE001 - said in /model_info and the log; the service keeps serving
            from training.errors import hide_url_passwords

            first = str(err).splitlines()[0] if str(err) else ""
            watch.error = hide_url_passwords(f"{type(err).__name__}: {first}")
        else:
            watch.error = None
            if now == watch.fingerprint:
                watch.changed_at = None
            elif watch.changed_at is None:
                watch.changed_at = utc_now()
        after = watch.message(f"{slot.name} version {slot.version}")
        if after is not None and after != before:
            logger.warning("%s (%s)", after, watch.source.describe())
        elif after is None and before is not None:
            logger.info("the promotions table (data.promotions) is as read at start-up again: %s is no longer "
                        "stale on its account", slot.name)
