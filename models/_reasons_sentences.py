"""One sentence per churn-reason topic, from one account's feature values: ``_rhythm`` (overdue against its
typical gap), ``_trend`` (orders / revenue of the last 90 days against the 90 before), ``_quiet_recent``,
``_volume``, ``_breadth``, ``_category_drop``, ``_service`` (complaints, returns, tickets), ``_open``,
``_resolution``, ``_tenure``, ``_irregular``, ``_value``, ``_promo``; each returns None when the
account's values do not support a risk reading. Also the number wording they share (``_f``, ``_n``,
``_days``, ``_plural``) and the book and service-events windows they say (``_short``,
``_service_window``, ``TENURE_UNKNOWN_DAYS``).

Split from :mod:`models.reasons` to keep each module under ~500 lines; pure moves. Used by its ``TOPICS``
table and ``reason_texts`` (which rank the topics and drop sentences another one implies); it
re-exports every name here: import them from :mod:`models.reasons`. Imports nothing of it (no cycle).
"""

from __future__ import annotations

import math
from collections.abc import Callable

NEAR_MEDIAN = 0.10  # an average order within 10 % of the book median is no "larger / smaller than most"
PAUSE_RATIO = 1.25  # a mean gap at least 1.25 x the median one is said as raised by long pauses


def _f(row: dict, key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _days(x: float) -> int:
    """Whole days, a half rounded up: a median of an even number of gaps is often x.5 days, and
    ``_n`` rounds a half to even (43.5 -> 44, 46.5 -> 46). The rhythm sentence counts its overdue
    days and days to the next order from the gap it says, so that its three figures add up ("112
    days overdue against ... 44 days (last order 155 days ago)" did not)."""
    return math.floor(x + 0.5)


def _plural(n: float, word: str, plural: str | None = None) -> str:
    return f"{_n(n)} {word if round(n) == 1 else (plural or word + 's')}"


# ------------------------------------------------------------------ topics
def _rhythm(r: dict) -> str | None:
    rec, gap, over = _f(r, "recency_days"), _f(r, "gap_median_days"), _f(r, "overdue_days")
    if rec is None:
        return None
    if gap is not None and over is not None and over >= 1:
        # "typical (median) gap": the irregular-ordering sentence of the same account names the mean
        # gap, which long pauses pull above the median ("usual 4-day rhythm" beside "around its
        # 35-day average" read as a contradiction). The overdue days are the last order's age less
        # the gap as said (_days), so the figures add up; over >= 1 keeps that >= 1
        g, days_ago = _days(gap), _days(rec)
        return (f"{_plural(days_ago - g, 'day')} overdue against its typical (median) gap of {_plural(g, 'day')} "
                f"between orders (last order {_n(days_ago)} days ago)")
    if gap is None and rec >= 30:
        # "on record", not "so far": the book may not reach back to the account's first order
        return f"no order for {_n(rec)} days (only one order day on record)"
    if gap is not None and gap >= _LONG_GAP_DAYS:
        # not overdue, but an account that orders twice a year is not expected to order within a
        # 90-day horizon: the long rhythm is the risk (a high-risk account had no reason at all)
        g, days_ago = _days(gap), _days(rec)
        due = g - days_ago  # from the figures said, so that they add up
        when = f"in about {_plural(due, 'day')}" if due >= 1 else "about now"
        return (f"orders only about every {_n(g)} days, its typical (median) gap: last order {_plural(days_ago, 'day')} "
                f"ago, the next one due {when}")
    return None


_LONG_GAP_DAYS = 60  # a usual gap from which ordering that seldom is itself said as the rhythm risk


_TREND_DAYS = 90  # the last 90 days the trend and category sentences compare with what came before


def _short(r: dict, reach: int) -> tuple[int, str] | None:
    """(days on record, the book's first order date) of the window that ends ``_TREND_DAYS`` (90)
    days before the cutoff and reaches ``reach`` days before it, when the book starts inside that
    window (or after it: 0 days); None when the book covers all of it, or is not given. The
    features count only the lines on record, so such a window's figure is that of its days on
    record, said as such ("in the 30 days on record before them"), never as the whole window's."""
    book = r.get("__book__")
    if book is None or book[1] >= reach:
        return None
    return max(book[1] - _TREND_DAYS, 0), book[0]


def _trend(kind: str) -> Callable[[dict], str | None]:
    def render(r: dict) -> str | None:
        last, prev = _f(r, f"{kind}_last_90d"), _f(r, f"{kind}_prev_90d")
        if last is None or prev is None:
            return None
        what = "orders" if kind == "orders" else "revenue"
        short = _short(r, 2 * _TREND_DAYS)  # a book of fewer than 180 days: the 90 days before are in part unknown
        if short is not None and short[0] <= 0:  # none of the 90 days before is on record: nothing to compare with
            return None
        before = "in the 90 days before" if short is None else f"in the {_plural(short[0], 'day')} on record before them"
        book = "" if short is None else f" (the book starts {short[1]})"
        if prev > 0 and last <= 0:  # "down 100% (0 vs 3)" reads as a sum; say what happened
            # with both figures of the 90 days before, so the orders and the revenue sentence
            # say the same and one of them is enough (_implies)
            n_prev, rev_prev = _f(r, "orders_prev_90d"), _f(r, "revenue_prev_90d")
            if n_prev and rev_prev:
                return (f"no orders in the last 90 days against {_plural(n_prev, 'order')} worth {_n(rev_prev)} "
                        f"{before}{book}")
            return f"no {what} in the last 90 days against {_n(prev)} {before}{book}"
        if prev > 0 and last < prev:
            pct = (prev - last) / prev * 100
            if round(pct) < 1:  # "down 0%" is no decline to call about
                return None
            if short is not None:
                # fewer days on record before: no percentage of a 90-day figure the book does not hold; fewer in
                # 90 days than in fewer days before is a lower rate all the same
                less = "fewer orders" if kind == "orders" else "less revenue"
                return (f"{less} in the last 90 days than {before} ({_n(last)} vs {_n(prev)}; "
                        f"the book starts {short[1]})")
            # some revenue is left: never "down 100%" beside a non-zero figure
            return (f"{what} in the last 90 days down {min(pct, 99.0):.0f}% on the 90 days before "
                    f"({_n(last)} vs {_n(prev)})")
        if prev == 0 and last == 0:
            if short is not None:  # the book holds fewer than 180 days
                return f"no {what} in the {_plural(short[0] + _TREND_DAYS, 'day')} on record{book}"
            return f"no {what} in the last 180 days"
        return None

    return render


def _quiet_recent(r: dict) -> str | None:
    n30 = _f(r, "n_orders_30d")
    if n30 is not None and n30 == 0:
        return "no orders in the last 30 days"
    return None


def _volume(r: dict) -> str | None:
    n365, life = _f(r, "n_orders_365d"), _f(r, "n_orders_lifetime")
    if n365 is not None and n365 <= 3:
        book = r.get("__book__")
        if book is not None and book[1] < 365:  # the window reaches before the book's first order
            start, days = book
            return f"only {_plural(n365, 'order')} in the {_n(days)} days on record (the book starts {start})"
        return f"only {_plural(n365, 'order')} in the last 365 days"
    if life is not None and life <= 3:
        return f"only {_plural(life, 'order')} in its whole history"
    return None


def _breadth(r: dict) -> str | None:
    s90, slife = _f(r, "n_skus_90d"), _f(r, "n_skus_lifetime")
    c90, clife = _f(r, "n_categories_90d"), _f(r, "n_categories_lifetime")
    if s90 is not None and slife is not None and 0 < s90 < 0.5 * slife:
        return f"buying a narrower range: {_plural(s90, 'SKU')} in the last 90 days against {_n(slife)} over its history"
    if c90 is not None and clife is not None and 0 < c90 < clife:
        return f"{_plural(c90, 'category', 'categories')} bought in the last 90 days against {_n(clife)} over its history"
    return None


def _category_drop(r: dict) -> str | None:
    ndrop = _f(r, "n_categories_dropped")
    drop, cat = _f(r, "cat_share_max_drop"), r.get("cat_share_max_drop_category")
    has_cat = isinstance(cat, str) and cat not in ("", "ALL")
    # the previous 180 days are the 180 before the last 90 (features.accounts); on a book of fewer than
    # 270 days only part of them is on record, and the share of spend "on the previous 180 days" is that part's
    short = _short(r, _TREND_DAYS + 180)
    if short is not None and short[0] <= 0:
        return None
    before = "the previous 180 days" if short is None else f"the {_plural(short[0], 'day')} on record before the last 90"
    book = "" if short is None else f"the book starts {short[1]}"
    if ndrop is not None and ndrop >= 1:
        text = f"stopped buying {_plural(ndrop, 'category', 'categories')} it bought in {before}"
        notes = [book] if book else []
        if has_cat and drop is not None and drop >= 0.05:
            notes.insert(0, f"share of {cat} down {drop * 100:.0f} points")
        return text + (f" ({'; '.join(notes)})" if notes else "")
    if has_cat and drop is not None and drop >= 0.10:
        return f"share of spend on {cat} down {drop * 100:.0f} points on {before}" + (f" ({book})" if book else "")
    return None


def _service_window(r: dict, w: int) -> str | None:
    """The last ``w`` days of service events as a sentence says them: "in the last 180 days", or, when the
    service events start inside that window (``service_start=``), its days on record with their first
    date ("in the 45 days on record (the service events start 2024-03-17)"); None when no day of it is
    on record. The features count the events on record, so such a count is that of its days on record."""
    svc = r.get("__service__")
    if svc is None or svc[1] >= w:
        return f"in the last {w} days"
    if svc[1] <= 0:
        return None
    return f"in the {_plural(svc[1], 'day')} on record (the service events start {svc[0]})"


def _service(kind: str, label: str) -> Callable[[dict], str | None]:
    def render(r: dict) -> str | None:
        for w in (60, 180):
            v = _f(r, f"{kind}_{w}d")
            if v is not None and v >= 1:
                when = _service_window(r, w)
                return None if when is None else f"{_plural(v, label)} {when}"
        return None

    return render


def _open(r: dict) -> str | None:
    v = _f(r, "open_events")
    return f"{_plural(v, 'service case')} still open" if v is not None and v >= 1 else None


def _resolution(r: dict) -> str | None:
    # a resolution time is a risk reading only when slower than most: against the median of the
    # accounts scored with a resolved case (skipped without one, like the order value)
    v, ref = _f(r, "resolution_days_mean_180d"), r.get("__ref__", {}).get("resolution_days_mean_180d")
    if v is None or ref is None or v < 1 or v <= ref[0]:
        return None
    med, n = ref
    if _n(v) == _n(med):  # "took 3 days ... against a median of 3 days" says no difference
        return None
    when = _service_window(r, 180)
    if when is None:
        return None
    return (f"service cases took {_plural(v, 'day')} on average to resolve {when} against a median of "
            f"{_plural(med, 'day')} across the {_n(n)} accounts scored with a resolved case")


TENURE_UNKNOWN_DAYS = 30  # a first order this close to the book's first order may not be the account's first


def _tenure(r: dict) -> str | None:
    t = _f(r, "tenure_days")
    book = r.get("__book__")
    if t is not None and book is not None:
        # first order within TENURE_UNKNOWN_DAYS of the book's first order date, or within its own typical
        # (median) gap of it: the account may well have ordered before the book starts, so its age is unknown
        # and "first order on record only N days ago" would read as a new account (Online Retail, 2010-12-01)
        gap = _f(r, "gap_median_days")
        if book[1] - t < max(TENURE_UNKNOWN_DAYS, gap or 0.0):
            return None
    if t is not None and t < 365:
        return f"first order on record only {_plural(t, 'day')} ago"
    return None


def _irregular(r: dict) -> str | None:
    cv, mean, med = _f(r, "gap_cv"), _f(r, "gap_mean_days"), _f(r, "gap_median_days")
    if cv is None or mean is None or cv < 0.75:
        return None
    # the mean gap named as the mean, beside the median the rhythm sentence calls typical: "gaps ...
    # around its 35-day average" beside "its usual 4-day rhythm" read as two answers to one question
    # the median as the rhythm sentence says it (_days); "long pauses raise the mean gap to 20 days"
    # beside a typical gap of 19 names no long pause: a mean under PAUSE_RATIO x the median is said plainly
    if med is not None and _days(mean) >= PAUSE_RATIO * _days(med) and _days(mean) > _days(med):
        return (f"irregular ordering: typical (median) gap {_plural(_days(med), 'day')}, but long pauses raise the "
                f"mean gap to {_plural(_days(mean), 'day')}; gaps vary {cv * 100:.0f}% around that mean")
    return f"irregular ordering: gaps between orders vary {cv * 100:.0f}% around their mean of {_plural(mean, 'day')}"


def _value(r: dict) -> str | None:
    v, ref = _f(r, "avg_order_value"), r.get("__ref__", {}).get("avg_order_value")
    if v is None or ref is None:
        return None
    med, n = ref
    # "average order value 425 against a median of 423" says no real difference (a driver within
    # NEAR_MEDIAN of the median gives way to the next reason)
    if _n(v) == _n(med) or (med > 0 and abs(v / med - 1.0) < NEAR_MEDIAN):
        return None
    if v < med:
        side = "smaller"
    elif v > med:
        side = "larger"
    else:
        return None
    return (f"{side} orders than most accounts: average order value {_n(v)} against a median of {_n(med)} "
            f"across the {_n(n)} accounts scored")


def _promo(r: dict) -> str | None:
    p90, p = _f(r, "promo_share_90d"), _f(r, "promo_share")
    if p90 is not None and p is not None and p90 > p + 0.1:
        return f"{p90 * 100:.0f}% of its last-90-day spend on promotion against {p * 100:.0f}% over its history"
    return None
