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

Layout: each topic's sentence (and the number wording the sentences share) is in
:mod:`models._reasons_sentences`; this module keeps the ``TOPICS`` table, ``topic_of``, ``reason_texts``
(ranking the topics per account) and the rules that drop a sentence another one implies, and re-exports
every name that moved: import them from here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from models._reasons_sentences import (  # noqa: F401 - re-exported: import them from here
    _LONG_GAP_DAYS,
    _TREND_DAYS,
    TENURE_UNKNOWN_DAYS,
    _breadth,
    _category_drop,
    _days,
    _f,
    _irregular,
    _n,
    _open,
    _plural,
    _promo,
    _quiet_recent,
    _resolution,
    _rhythm,
    _service,
    _service_window,
    _short,
    _tenure,
    _trend,
    _value,
    _volume,
)

__all__ = ["TOPICS", "reason_texts", "topic_of", "MIN_REFERENCE"]

MIN_REFERENCE = 20  # rows needed before the scored accounts' median serves as the reference
_REFERENCE_FEATURES = ("avg_order_value", "resolution_days_mean_180d")


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
