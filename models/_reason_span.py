"""A year's figure from a book with less than a year before the cutoff, said as what it is.

The dealer features over 365 days (``features.dealers``: ``annual_value`` scaled to a year when the
book is shorter, ``n_skus_365``, ``revenue_365d`` ...) are computed over the history the book has. On
Online Retail at 2011-06-01 that is 182 days, and the reasons said "annual purchases 222,374" (182 days
of purchases doubled, not an amount bought) and "110,668 bought in the last 365 days" (the 182 days on
record). :func:`on_record` rewords such a text with the days on record, as the churn reasons say
"in the 283 days on record". Private to ``models``.
"""

from __future__ import annotations

import math

_YEAR = 365.0
_LAST_YEAR = ("in the last 365 days", "in the last year")


def on_record(text: str, history_days: float | None) -> str:
    """``text`` where the book holds at least a year before the cutoff (or its length is unknown);
    else its year's figures said over the ``history_days`` on record."""
    try:
        h = float(history_days)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return text
    if not math.isfinite(h) or h >= _YEAR - 0.5:
        return text
    days = f"the {h:,.0f} days on record"
    if "annual purchases " in text:
        head, _, rest = text.partition("annual purchases ")
        figure, sep, tail = rest.partition(" ")
        text = f"{head}annualised purchases {figure} (from {days}){sep}{tail}"
    for words in _LAST_YEAR:
        text = text.replace(words, f"in {days}")
    return text
