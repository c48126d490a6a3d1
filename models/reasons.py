"""Turn LightGBM contributions into reasons an account manager can read.

Features that tell one story (e.g. ``recency_days``, ``overdue_days``, ``overdue_ratio``,
``gap_median_days`` all say "later than usual") are grouped into a *topic*; a topic's
contribution is the sum of its features' ``pred_contrib`` (log-odds, + = toward churn).
For each account the topics are ranked by contribution and the top three with a positive
contribution *and* a sentence that the account's own values support are written out,
e.g. "orders in the last 90 days down 62% on the 90 days before (3 vs 8)". A topic whose
values do not support a risk reading (say, orders are up) is skipped rather than
described falsely. Numbers in the sentences are the feature values, rounded. A sentence that
another one implies ("no orders in the last 30 days" beside "last order 190 days ago", "no
orders" beside "no revenue" over the same days) is left out too, so the three slots say three
different things; "no orders in the last 90 days against 3 orders worth 1,582 in the 90 days
before" beside "last order 95 days ago" gives its slot to the next driver and fills one only when
no other driver does. An account's rhythm is its median gap between orders, called its typical
(median) gap wherever a sentence names it; the mean gap, which long pauses pull above the
median, is called the mean. Given the book's first order date (``book_start=``), a sentence
says only what the book covers: the 365-day order count over the days on record when the book
is shorter, and no "first order on record" age for an account first seen in its first days. A
window that reaches before the book's first order (the 90 days before the last 90 on a book of
fewer than 180 days, the previous 180 on one of fewer than 270) is said as its days on record,
with no percentage of a figure the book does not hold: "fewer orders in the last 90 days than in
the 30 days on record before them (1 vs 3; the book starts 2024-01-02)"; a window with no day on
record is not compared at all. The service sentences likewise say the days on record of a service
events table that starts inside their window (``service_start=``): "2 complaints in the 45 days on
record (the service events start 2024-03-17)".

A value that only means something against other accounts (average order value) is compared
with the median of the accounts scored together (``reference=`` can supply it instead):
"smaller orders than most accounts: average order value 95 against a median of 412 across
the 2,718 accounts scored". Without a reference (fewer than ``MIN_REFERENCE`` rows) the
topic is skipped. Attributes (region, channel type) and features without a topic say that
the model links the value to higher churn risk, which is what their positive contribution
means, rather than printing a bare value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["TOPICS", "reason_texts", "topic_of", "MIN_REFERENCE"]

MIN_REFERENCE = 20  # rows needed before the scored accounts' median serves as the reference
_REFERENCE_FEATURES = ("avg_order_value", "resolution_days_mean_180d")


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
    if med is not None and _days(mean) > _days(med):  # the median as the rhythm sentence says it (_days)
        return (f"irregular ordering: typical (median) gap {_plural(_days(med), 'day')}, but long pauses raise the "
                f"mean gap to {_plural(_days(mean), 'day')}; gaps vary {cv * 100:.0f}% around that mean")
    return f"irregular ordering: gaps between orders vary {cv * 100:.0f}% around their mean of {_plural(mean, 'day')}"


def _value(r: dict) -> str | None:
    v, ref = _f(r, "avg_order_value"), r.get("__ref__", {}).get("avg_order_value")
    if v is None or ref is None:
        return None
    med, n = ref
    if _n(v) == _n(med):  # "average order value 285 against a median of 285" says no difference
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


TOPICS: dict[str, tuple[tuple[str, ...], Callable[[dict], str | None]]] = {
    "rhythm": (("recency_days", "overdue_days", "overdue_ratio", "gap_median_days", "bgnbd_recency", "bgnbd_T"), _rhythm),
    "order_trend": (("orders_last_90d", "orders_prev_90d", "orders_trend_ratio", "orders_trend_pct",
                     "n_orders_90d", "n_orders_180d"), _trend("orders")),
    "revenue_trend": (("revenue_last_90d", "revenue_prev_90d", "revenue_trend_ratio", "revenue_trend_pct",
                       "revenue_90d", "revenue_180d"), _trend("revenue")),
    "quiet_recent": (("n_orders_30d", "revenue_30d", "n_skus_30d", "n_categories_30d"), _quiet_recent),
    "volume": (("n_orders_365d", "revenue_365d", "n_orders_lifetime", "revenue_lifetime", "n_purchase_days",
                "bgnbd_frequency"), _volume),
    "breadth": (("n_skus_90d", "n_skus_180d", "n_skus_365d", "n_skus_lifetime", "n_categories_90d",
                 "n_categories_180d", "n_categories_365d", "n_categories_lifetime"), _breadth),
    "category_drop": (("cat_share_max_drop", "n_categories_dropped"), _category_drop),
    "complaints": (("complaints_60d", "complaints_180d"), _service("complaints", "complaint")),
    "returns": (("returns_60d", "returns_180d"), _service("returns", "return")),
    "tickets": (("tickets_60d", "tickets_180d", "service_events_180d"), _service("tickets", "support ticket")),
    "open_cases": (("open_events",), _open),
    "resolution": (("resolution_days_mean_180d",), _resolution),
    "tenure": (("tenure_days", "onboarding_tenure_days"), _tenure),
    "irregular": (("gap_cv", "gap_std_days", "gap_mean_days"), _irregular),
    "order_value": (("avg_order_value", "bgnbd_monetary"), _value),
    "promo": (("promo_share", "promo_share_90d"), _promo),
}

_FEATURE_TOPIC = {f: t for t, (feats, _) in TOPICS.items() for f in feats}


def topic_of(feature: str) -> str:
    """The topic a feature belongs to (the feature's own name when it has none)."""
    return _FEATURE_TOPIC.get(feature, feature)


def _generic(feature: str) -> Callable[[dict], str | None]:
    """A feature without a topic: its value and what its positive contribution means."""

    def render(r: dict) -> str | None:
        v = r.get(feature)
        if v is None or (isinstance(v, float | np.floating) and not math.isfinite(v)):
            return None
        label = feature.replace("_", " ")
        if isinstance(v, str) or not isinstance(v, int | float | np.integer | np.floating):
            return f"{label} {v}: the model has learned higher churn among accounts with this {label}"
        return f"{label} of {float(v):,.2f}: the model links this value to higher churn risk"

    return render


def _references(features: pd.DataFrame, reference: dict[str, float] | None) -> dict[str, tuple[float, int]]:
    """feature -> (median, n accounts) used by comparative sentences."""
    out: dict[str, tuple[float, int]] = {}
    for f in _REFERENCE_FEATURES:
        if reference is not None and f in reference:
            out[f] = (float(reference[f]), int(reference.get("n_accounts", len(features))))
        elif f in features.columns:
            v = pd.to_numeric(features[f], errors="coerce")
            v = v[np.isfinite(v)]
            if len(v) >= MIN_REFERENCE:
                out[f] = (float(v.median()), int(len(v)))
    return out


def reason_texts(
    features: pd.DataFrame,
    contributions: pd.DataFrame,
    *,
    k: int = 3,
    reference: dict[str, float] | None = None,
    book_start=None,
    cutoff=None,
    service_start=None,
) -> tuple[list[list[str]], list[list[str]]]:
    """Top-``k`` reasons per row: (sentences, topics), each a list of up to ``k`` per row.

    ``features`` and ``contributions`` are aligned row by row (same length, same order);
    ``contributions`` has one column per model feature (+ optional ``bias``).
    ``reference``: e.g. ``{"avg_order_value": 412.0, "n_accounts": 2718}``, the population
    the comparative sentences compare with; default: the median of ``features`` itself when
    it has at least ``MIN_REFERENCE`` rows (else those sentences are skipped).
    ``book_start`` / ``cutoff`` (given together): the order book's first order date and the cutoff the
    features are computed at. When the book covers fewer than 365 days before the cutoff, the order
    count of the last 365 days is said over the days on record ("only 2 orders in the 283 days on
    record (the book starts 2010-12-01)"), and no account whose first order is within
    ``TENURE_UNKNOWN_DAYS`` (30) days of ``book_start``, or within its own typical (median) gap of it,
    is said to be new ("first order on record only N days ago"): it may have ordered before the book
    starts. The trend and category-shift sentences say the part of the earlier window the book holds
    ("in the 30 days on record before them", "on the 30 days on record before the last 90") when it
    starts inside it, and are left out when it holds none of it. Without them the sentences assume
    the book reaches back far enough.
    ``service_start`` (with ``cutoff``): the service events' first date, which may be later than the
    order book's. A service window it starts inside (the last 60 or 180 days) is said as its days on
    record ("2 complaints in the 45 days on record (the service events start 2024-03-17)", "service
    cases took 9 days on average to resolve in the 45 days on record (...)"), never as the whole
    window; a window with no day on record is not said. Without it the service events are assumed to
    cover the last 180 days.
    """
    if len(features) != len(contributions):
        raise ValueError(f"features and contributions must align; got {len(features)} and {len(contributions)} rows")
    if (book_start is None) != (cutoff is None):
        raise ValueError(f"book_start and cutoff go together; got book_start={book_start!r}, cutoff={cutoff!r}")
    if service_start is not None and cutoff is None:
        raise ValueError(f"service_start needs the cutoff (and book_start); got service_start={service_start!r}")
    book = service = None
    if book_start is not None:
        start, cut = (_day(x) for x in (book_start, cutoff))
        if pd.isna(start) or pd.isna(cut) or start >= cut:
            raise ValueError(f"book_start must be a date before the cutoff {cutoff!r}; got {book_start!r}")
        book = (start.date().isoformat(), (cut - start).days)  # (first order date, days on record before the cutoff)
        if service_start is not None:
            first = _day(service_start)
            if pd.isna(first):
                raise ValueError(f"service_start must be a date; got {service_start!r}")
            # (first event date, days on record before the cutoff; 0 when the events start on or after it)
            service = (first.date().isoformat(), max((cut - first).days, 0))
    contrib_cols = [c for c in contributions.columns if c != "bias"]
    topics = sorted({topic_of(c) for c in contrib_cols})
    col_topic = np.array([topics.index(topic_of(c)) for c in contrib_cols])
    C = contributions[contrib_cols].to_numpy(dtype=float)
    T = np.zeros((len(C), len(topics)))
    for j in range(len(topics)):
        T[:, j] = C[:, col_topic == j].sum(axis=1)
    order = np.argsort(-T, axis=1, kind="mergesort")
    records = features.to_dict("records")
    refs = _references(features, reference)
    texts: list[list[str]] = []
    names: list[list[str]] = []
    for i, row in enumerate(records):
        kept: list[tuple[str, str, float, bool]] = []  # (topic, text, silent days, says only that)
        spare: list[tuple[str, str, float, bool]] = []  # repeats a kept sentence in part (_repeats)
        for j in order[i]:
            if T[i, j] <= 0 or len(kept) >= k:
                break
            t = topics[j]
            render = TOPICS[t][1] if t in TOPICS else _generic(t)
            text = render({**row, "__ref__": refs, "__book__": book, "__service__": service})
            if not text:
                continue
            cand = (t, text, *_silence(t, text, row))
            if any(_implies(a, cand) for a in kept):  # "no orders in the last 30 days" after "last order 190 days ago"
                continue
            if any(_repeats(a, cand) for a in kept):
                spare.append(cand)
                continue
            spare += [a for a in kept if _repeats(cand, a)]
            kept = [a for a in kept if not _implies(cand, a) and not _repeats(cand, a)] + [cand]
        for cand in spare:  # a slot no other driver fills: the 90 days before are still worth saying
            if len(kept) < k and not any(_implies(a, cand) for a in kept):
                kept.append(cand)
        texts.append([a[1] for a in kept])
        names.append([a[0] for a in kept])
    return texts, names


def _day(x) -> pd.Timestamp:
    """A date as a tz-naive midnight (NaT stays NaT)."""
    t = pd.Timestamp(x)
    if t is not pd.NaT and t.tzinfo:
        t = t.tz_convert(None)
    return t.normalize()


def _silence(topic: str, text: str, row: dict) -> tuple[float, bool]:
    """(W, only): the sentence says the account ordered nothing in the last W days, and
    (``only``) says nothing else. An order ``R`` days ago (``recency_days``) is outside the last
    ``W`` days when ``R > W``; revenue is 0 exactly when there are no orders."""
    if topic == "rhythm":
        rec = _f(row, "recency_days")
        return (rec - 1 if rec is not None else 0.0), False
    if topic == "quiet_recent":
        return 30.0, True
    if topic in ("order_trend", "revenue_trend") and text.startswith("no "):
        if text.endswith("in the last 180 days"):
            return 180.0, True
        whole = re.match(r"no \w+ in the ([\d,]+) days on record \(", text)  # a book of fewer than 180 days
        return (float(whole[1].replace(",", "")), True) if whole else (90.0, False)
    return 0.0, False


def _repeats(a: tuple[str, str, float, bool], b: tuple[str, str, float, bool]) -> bool:
    """``b`` is a trend's "no orders in the last 90 days against 3 orders worth 1,582 in the 90 days
    before" and ``a`` the rhythm sentence of a last order more than 90 days ago ("last order 95 days
    ago"): the silence is said, and only the 90 days before are new, so ``b`` gives its slot to the
    next driver and comes back only for a slot no other driver fills."""
    return a[0] == "rhythm" and b[0] in ("order_trend", "revenue_trend") and bool(b[2]) and b[2] <= a[2]


def _implies(a: tuple[str, str, float, bool], b: tuple[str, str, float, bool]) -> bool:
    """Sentence ``a`` already says all that ``b`` says: ``b`` only states a silence no longer than
    ``a``'s ("no orders in the last 180 days" after "last order 190 days ago", or after "no revenue
    in the last 180 days"), ``b`` is the same sentence (orders and revenue of the 90 days before,
    once), or ``b`` is the first-order age or the single order of an account whose one order day
    ``a`` dates ("no order for 195 days (only one order day on record)")."""
    if b[3] and b[2] <= a[2]:
        return True
    if b[1] == a[1]:  # the orders and the revenue trend can say the same sentence
        return True
    one_day = a[0] == "rhythm" and a[1].endswith("(only one order day on record)")
    # ... and of one order day, its age and that it was one order ("only 1 order in the last 365 days")
    return one_day and (b[0] == "tenure" or (b[0] == "volume" and b[1].startswith("only 1 order ")))
