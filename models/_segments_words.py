"""The words of the segment reasons: ``_describe`` turns one behaviour feature of an account into
the sentence the reason quotes ("orders more often than most accounts: 3 orders a year (book
median 1)"), from the templates of ``_FEATURE_WORDS``; ``_rate`` and ``_PER_YEAR`` print order
counts.

Apart from the scorecard because it is text, not scoring: which features a reason names is the
scorecard's choice (``SegmentModel.predict``), how each is said - compared with the book, with the
account's figure and the book median, or nothing when the words would not be true - is decided
here, and the tests of those words (``_describe``) import it from here. Units: each feature in its
own (currency, orders a month, shares). Private to ``models.segments``.
"""

from __future__ import annotations

import numpy as np

# (figure, word when above the book's median, word when below, median figure or None). The words
# compare with the book ("more often than most accounts"), never an absolute "frequent" that a
# figure like 0.2 orders a month contradicts; the account's figure and the book median (of the
# accounts the segments were fitted on) follow, so the reader sees both in units they know.
_FEATURE_WORDS = {
    "annual_value": ("annual purchases {v:,.0f}", "buys more than most accounts", "buys less than most accounts",
                     "{m:,.0f}"),
    "avg_order_value": ("average order {v:,.0f}", "larger orders than most accounts",
                        "smaller orders than most accounts", "{m:,.0f}"),
    "orders_per_month": ("{v:.1f} orders a month", "orders more often than most accounts",
                         "orders less often than most accounts", "{m:.1f}"),
    "avg_lines_per_order": ("{v:.1f} lines per order", "broader baskets than most accounts",
                            "narrower baskets than most accounts", "{m:.1f}"),
    "avg_qty_per_line": ("{v:,.1f} units per line", "more units per line than most accounts",
                         "fewer units per line than most accounts", "{m:,.1f}"),
    "n_skus_365": ("{v:,.0f} SKUs bought in the last year", "a wider range than most accounts",
                   "a narrower range than most accounts", "{m:,.0f}"),
    "cv_interval": ("gaps between orders vary by {v:.0%} of their mean", "less regular ordering than most accounts",
                    "more regular ordering than most accounts", "{m:.0%}"),
    "growth": ("value {v:+.0%} on a comparable earlier period", "growing", "shrinking", None),
    "promo_share": ("{v:.0%} of lines on promotion", "buys on promotion more than most accounts",
                    "buys on promotion less than most accounts", "{m:.0%}"),
    "price_index": ("{v:.0%} of the usual price", "pays more than most accounts",
                    "pays less than most accounts", "{m:.0%}"),
    "online_share": ("{v:.0%} of value through online channels", "more online than most accounts",
                     "less online than most accounts", "{m:.0%}"),
}


def _rate(x: float) -> str:
    """4.0 -> "4", 1.25 -> "1.2": a count without a trailing ".0"."""
    return f"{x:.1f}".removesuffix(".0")


_PER_YEAR = 365.0 / 30.4  # orders_per_month is orders in 365 days / 365 x 30.4 (features.dealers)


def _describe(feature: str, value: float, z: float, now: float = np.nan, base: float = np.nan,
              median: float = np.nan) -> str | None:
    """The reason a behaviour feature gives, or None when its words would not be true.

    The word compares with the book ("orders more often than most accounts"); the account's figure
    and ``median`` (the book median, same units) follow, so that a figure which is high only
    against this book ("0.2 orders a month") is not called "frequent". Fewer than one order a month
    is said per year ("3 orders a year"). A figure that prints the same as the median says no
    difference: None. ``now`` / ``base``: the two values ``growth`` compares
    (``_trend_values``): growth from nothing is said as such rather than as "more than tenfold",
    and the growth word follows the value's own change (a fall smaller than the book's is no
    "growing": None). ``z`` is read against the fitted centre, ``median`` may be the scored book's
    (``SegmentModel.predict``): a figure on the other side of the median quoted, or at it, says no
    "more" / "less" than most accounts: None."""
    tmpl, hi, lo, mtmpl = _FEATURE_WORDS[feature]
    if feature == "growth":
        if base == 0 and now > 0:
            return f"growing: bought {now:,.0f} after nothing in a comparable earlier period"
        if base > 0 and np.isfinite(now):
            value = now / base - 1  # the values' own change, not the smoothed log ratio's
        if not np.isfinite(value) or (value > 0) != (z > 0) or round(value, 2) == 0:
            return None
        if value >= 9.0:
            return "growing: value more than tenfold a comparable earlier period"
        return f"{hi if z > 0 else lo}: {tmpl.format(v=value)}"
    word = hi if z > 0 else lo
    if not np.isfinite(median):  # a model saved without its centre: the figure alone
        return f"{word}: {tmpl.format(v=value)}"
    if (value > median) != (z > 0) or value == median:
        # the word is read against the fitted centre, the median quoted may be the scored book's:
        # "more often than most accounts" at the book median (or below it) is not true of the book
        return None
    if feature == "orders_per_month" and value < 1:
        year, myear = value * _PER_YEAR, median * _PER_YEAR
        fig, med = _rate(year), _rate(myear)
        text = f"{fig} order{'' if fig == '1' else 's'} a year (book median {med})"
    elif feature == "orders_per_month":
        fig, med = _rate(value), _rate(median)
        text = f"{fig} order{'' if fig == '1' else 's'} a month (book median {med})"  # not "1 orders a month"
    else:
        fig, med = mtmpl.format(m=value), mtmpl.format(m=median)  # the two figures, printed alike
        text = f"{tmpl.format(v=value)} (book median {med})"
    if fig == med:
        return None
    return f"{word}: {text}"
