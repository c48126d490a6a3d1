"""Lifecycle stages (``lifecycle_stage``, its thresholds ``LifecycleRules``) and the account's
trend they are read from: ``_growth`` (the log value ratio: year on year, else period on period,
else the last 90 days on the 90 before) and ``_trend_values`` (the two values that ratio
compares, with their words), the book's median change that a reason on a non-year-on-year
comparison quotes (``_book_change``), and ``not_growing_now``, the clause a growing retail chain
in decline gets in its segment reason.

Apart from the segment scorecard because the stage is read from the account's current trend and
tenure, not from how it orders, and has its own thresholds and reasons; the scorecard reuses
``_growth`` (its ``growth`` feature) and ``_trend_values`` (the growth reason's figures) from
here, so this module imports nothing from the other segment modules. Units: values in currency,
ages and periods in days, trends as natural-log value ratios. Private to ``models.segments``,
which re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def _growth(features: pd.DataFrame) -> pd.Series:
    """Growth as a log value ratio: year on year for the same period when the history has it
    (free of the yearly season), else period on period, else the last 90 days on the 90 before."""
    g = pd.Series(np.nan, index=features.index, dtype=float)
    for col in ("yoy_log_ratio", "growth_log_ratio", "trend_90d"):
        if col in features:
            g = g.fillna(features[col].astype(float))
    return g


@dataclass(frozen=True)
class LifecycleRules:
    """Thresholds of ``lifecycle_stage`` (log ratios are natural logs of value ratios).

    growth_log_ratio: trend at or above this is growth (default log 1.25, +25%).
    decline_log_ratio: trend at or below this is decline (default log 0.75, -25%).
    young_days: tenure below this (days) and not declining is growth, when the first order is
        at least ``censor_margin_days``, and more than the account's own mean gap between orders,
        after the start of the book (else the tenure is unknown: an account ordering every 97 days
        whose first order in the book came 41 days after its start may well have ordered before it).
    overdue_ratio: days since the last order / mean gap between orders (mean_interval_days) at or above this is decline.
    period_days: the length of the period the trend compares (the scorer's horizon), for the
        words of the reasons ("in the last 182 days"); None: "in the last period".
    """

    growth_log_ratio: float = float(np.log(1.25))
    decline_log_ratio: float = float(np.log(0.75))
    young_days: float = 180.0
    overdue_ratio: float = 3.0
    censor_margin_days: float = 30.0
    period_days: float | None = None


def _days(age: float) -> str:
    """An age in days as calendar days ("12 days", "1 day"): dealer features keep the time of day,
    so an order 11.4 days before the (midnight) cutoff was placed 12 calendar days before it."""
    d = int(np.ceil(float(age) - 1e-9))
    return f"{d:,} day" if d == 1 else f"{d:,} days"


def _trend_values(features: pd.DataFrame, period_days: float | None) -> pd.DataFrame:
    """Per account, the two values the trend of ``_growth`` compares and their words: ``now``
    and ``base`` (currency; NaN when the features do not carry them) with ``now_words`` /
    ``base_words`` ("in the last 182 days" / "in the 182 days before"), same priority as
    ``_growth`` (year on year, else period on period, else the last 90 days on the 90 before)."""
    p = f"{period_days:.0f} days" if period_days else "period"
    out = pd.DataFrame({"now": np.nan, "base": np.nan, "now_words": "", "base_words": ""}, index=features.index)
    for ratio, now, base, now_w, base_w in (
            ("trend_90d", "value_90d", "value_prev_90d", "in the last 90 days", "in the 90 days before"),
            ("growth_log_ratio", "last_period_value", "prev_period_value", f"in the last {p}", f"in the {p} before"),
            ("yoy_log_ratio", "last_period_value", "year_ago_period_value", f"in the last {p}",
             f"in the same {p} a year ago")):
        if ratio in features and now in features and base in features:
            use = features[ratio].notna()
            out.loc[use, "now"] = features.loc[use, now].astype(float)
            out.loc[use, "base"] = features.loc[use, base].astype(float)
            out.loc[use, "now_words"] = now_w
            out.loc[use, "base_words"] = base_w
    return out


def lifecycle_stage(features: pd.DataFrame, rules: LifecycleRules | None = None) -> pd.DataFrame:
    """Growth / maturity / decline per account, with the reason in words.

    Trend = period-on-period log value ratio (``growth_log_ratio``, else ``trend_90d``).
    Decline: trend <= decline threshold, nothing bought in either period the trend compares, or
    the account is overdue (recency >= overdue_ratio x its mean gap between orders). Growth: trend >= growth threshold, or tenure < young_days. Else maturity.
    Returns ``lifecycle`` and ``lifecycle_reason``. A trend from or to nothing is said as such,
    not as a percentage: "new account: first order 95 days ago", "bought 12,602 in the last 182
    days after nothing in the 182 days before", "nothing bought in the last 182 days against
    5,033 in the 182 days before" (rather than "more than tenfold" / "-100%").
    A change on a comparison that is not year on year (the 182 or 90 days before) includes the
    season, so its reason adds the median change of the accounts that bought in both periods
    (``_book_change``): "value +97% on the 182 days before (accounts that bought in both periods:
    median +25%; not year on year, so the season counts in both)". The stage is read from the
    account's own change against the thresholds, as before.
    """
    r = rules or LifecycleRules()
    trend = _growth(features)
    basis = pd.Series("on the 90 days before", index=features.index)
    per = f"{r.period_days:.0f} days" if r.period_days else "period"
    for col, words in (("growth_log_ratio", f"on the {per} before"), ("yoy_log_ratio", f"on the same {per} a year ago")):
        if col in features:
            basis = basis.where(features[col].isna(), words)
    tenure = features["tenure_days"].astype(float)
    history = features["history_days"].astype(float) if "history_days" in features else pd.Series(np.inf, index=features.index)
    overdue = features["overdue_ratio"].astype(float) if "overdue_ratio" in features else pd.Series(np.nan, index=features.index)
    vals = _trend_values(features, r.period_days)
    book = _book_change(vals, basis)
    stage, reason = [], []
    for acc in features.index:
        t, ten, od = trend.loc[acc], tenure.loc[acc], overdue.loc[acc]
        now, base, now_w, base_w = vals.loc[acc, ["now", "base", "now_words", "base_words"]]
        gap = features.at[acc, "mean_interval_days"] if "mean_interval_days" in features else np.nan
        margin = max(r.censor_margin_days, float(gap) if np.isfinite(gap) else 0.0)
        young = ten < r.young_days and ten < history.loc[acc] - margin
        # the change said in words: the two values' own ratio, not the log((now + 1) / (base + 1))
        # the stage is read from (+495% for 59.64 against 9.20, where it is +548%)
        pct = now / base - 1 if np.isfinite(now) and np.isfinite(base) and base > 0 else np.expm1(t)
        if np.isfinite(t) and t >= r.growth_log_ratio and base == 0 and now > 0:
            # nothing to grow from: "more than tenfold" misreads a new or returning account
            stage.append("growth")
            reason.append(f"new account: first order {_days(ten)} ago" if young
                          else f"bought {now:,.0f} {now_w} after nothing {base_w}")
        elif np.isfinite(t) and now == 0 and base == 0:
            # silent in both periods: "steady: value +0%" read as a settled account
            stage.append("decline")
            last = (f": last order {_days(features.at[acc, 'recency_days'])} ago"
                    if "recency_days" in features and np.isfinite(features.at[acc, "recency_days"]) else "")
            reason.append(f"nothing bought {now_w} nor {base_w}{last}")
        elif np.isfinite(t) and t >= r.growth_log_ratio and np.expm1(t) >= 9.0:
            stage.append("growth")
            reason.append(f"value more than tenfold {basis.loc[acc].replace('on ', '', 1)}")
        elif np.isfinite(t) and t <= r.decline_log_ratio:
            stage.append("decline")
            reason.append(f"nothing bought {now_w} against {base:,.0f} {base_w}" if now == 0 and base > 0
                          else f"value {pct:+.0%} {basis.loc[acc]}")
        elif np.isfinite(od) and od >= r.overdue_ratio:
            stage.append("decline")
            gap = features.at[acc, "mean_interval_days"]
            reason.append(f"{_days(features.at[acc, 'recency_days'])} since last order against a mean gap of {gap:.0f} days between orders")
        elif np.isfinite(t) and t >= r.growth_log_ratio:
            stage.append("growth")
            reason.append(f"value {pct:+.0%} {basis.loc[acc]}")
        elif young:
            stage.append("growth")
            reason.append(f"new account: first order {_days(ten)} ago")
        else:
            stage.append("maturity")
            reason.append(f"steady: value {pct:+.0%} {basis.loc[acc]}" if np.isfinite(t)
                          else f"steady: ordering for {ten:.0f} days")
    reason = [_with_book_change(txt, book.get(basis.loc[acc])) for acc, txt in zip(features.index, reason, strict=True)]
    return pd.DataFrame({"lifecycle": stage, "lifecycle_reason": reason}, index=features.index)


_MIN_BOTH = 5
"""Fewest accounts buying in both compared periods for their median change to be quoted."""


def _book_change(vals: pd.DataFrame, basis: pd.Series) -> dict[str, float]:
    """Per comparison that is not year on year ("on the 182 days before", "on the 90 days
    before"), the median change (now / base - 1) of the accounts of this snapshot that bought in
    both periods (same cutoff, so the same two periods), when at least ``_MIN_BOTH`` did. Such a
    comparison includes the season (Online Retail at 2011-12-01: June-November against
    December-May), which moves every account alike; the median of the accounts that kept buying
    shows it. Accounts new in the later period or silent in it are left out: their change is not a
    percentage ("bought X after nothing", "nothing bought ... against X")."""
    now, base = vals["now"].astype(float), vals["base"].astype(float)
    both = np.isfinite(now) & np.isfinite(base) & (now > 0) & (base > 0)
    out = {}
    for label in basis.unique():
        if "a year ago" in label:
            continue  # year on year: free of the yearly season
        m = both & (basis == label)
        if int(m.sum()) >= _MIN_BOTH:
            out[label] = float((now[m] / base[m] - 1).median())
    return out


def _with_book_change(text: str, median: float | None) -> str:
    """A lifecycle reason that says a value change ("value +90% on the 182 days before", "steady:
    ...", "value more than tenfold ...") followed by the median change of the accounts that bought
    in both periods, when the comparison is not year on year (``_book_change``)."""
    if median is None or not text.startswith(("value ", "steady: value ")):
        return text
    return f"{text}{_BOTH_NOTE}{median:+.0%}; not year on year, so the season counts in both)"


_BOTH_NOTE = " (accounts that bought in both periods: median "


def not_growing_now(segment: pd.Series, segment_reason: pd.Series, lifecycle: pd.Series,
                    lifecycle_reason: pd.Series) -> pd.Series:
    """Segment reasons with, for a growing retail chain in ``decline``, why it keeps the segment:
    "...; in decline now (value -62% on the same 182 days a year ago): the segment is read from
    how it orders, not from its current trend". The segment is read from how the account orders,
    the lifecycle from its trend, so "growing retail chain" beside "decline" is no error, but read
    alone the two contradict each other. The lifecycle reason is quoted as it is (a decline may be
    an overdue order after a year of growth, so the clause does not say "not growing"), without
    the median of the accounts that bought in both periods (``_with_book_change``): the
    ``lifecycle_reason`` beside it has it, and inside these parentheses it read as nested ones."""
    hit = (segment == "growing_retail_chain") & (lifecycle == "decline")
    quoted = lifecycle_reason.astype(str).str.split(_BOTH_NOTE, n=1, regex=False).str[0]
    extra = ("in decline now (" + quoted
             + "): the segment is read from how it orders, not from its current trend")
    return segment_reason.where(~hit, segment_reason.astype(str) + "; " + extra)
