"""Dealer potential: expected next-period value, peer headroom and churn risk in one ranking.

``DealerPotential`` is a LightGBM regressor (Tweedie objective: value is >= 0 with a mass at 0
and a long right tail, and Tweedie predicts the *mean*) of an account's purchase value over the
next period (currency per ``horizon`` days) from as-of features, plus two quantile regressors
(default 10% and 90%) that give the uncertainty band.

The **potential score** ranks accounts by the upside support could unlock (currency over the
next period)::

    potential = (1 - churn_risk) * (upside_next + headroom_weight * headroom)

``upside_next`` is the ``upside_quantile`` (default 75%) forecast of next-period value: what the
account buys in a good period. Why not predicted growth (expected - last period)? On the
validation cutoff before the benchmark (Online Retail 2011-03-01, 91 days) that difference of
two noisy numbers ranked growers worst of all candidates (top-decile growth capture 0.14 against
0.38 for last period's value and 0.41-0.44 for the forecasts themselves); growth stays in the
table (``expected_growth``) and in the reasons.

``headroom`` (``peer_headroom``) is the gap between the upper quartile of look-alike peers'
period value (same segment and region; segment only, then the whole book, when fewer than
``min_peers`` peers) and the account's own last-period value, floored at 0. ``churn_risk`` is a
churn probability (the churn model's, else 1 - BG/NBD P(alive)). The band replaces
``upside_next`` with the low / high quantile forecasts (default 10% / 90%).

Reasons (``explain``): the growth or headroom sentence, then the features that moved the
account's own forecast most (LightGBM ``pred_contrib``) in words with the account's values, and
the churn risk when it is high. Every number in a reason is read from the account's row.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DealerPotential", "peer_headroom", "potential_score", "explain", "churn_sentence", "forecast_sentence"]


class NotFittedError(RuntimeError):
    """Raised when ``DealerPotential`` is used before ``fit``."""


class DealerPotential:
    """LightGBM expected next-period value with a quantile band.

    Parameters: ``n_estimators``, ``learning_rate``, ``num_leaves``, ``min_child_samples`` (the
    LightGBM settings of all three models), ``quantiles`` (low, high) of the band,
    ``upside_quantile`` (between them), ``tweedie_variance_power`` (1 < p < 2), ``random_state``,
    ``n_jobs``.
    """

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.05, num_leaves: int = 15,
                 min_child_samples: int = 20, quantiles: tuple[float, float] = (0.1, 0.9),
                 upside_quantile: float = 0.75, tweedie_variance_power: float = 1.5, random_state: int = 0, n_jobs: int = 1) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.quantiles = quantiles
        self.upside_quantile = upside_quantile
        self.tweedie_variance_power = tweedie_variance_power
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _params(self, objective: str, **extra) -> dict:
        return dict(objective=objective, n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                    num_leaves=self.num_leaves, min_child_samples=self.min_child_samples,
                    subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                    random_state=self.random_state, n_jobs=self.n_jobs, verbose=-1, **extra)

    def fit(self, X: pd.DataFrame, y, positive_growth=None) -> DealerPotential:
        """``X``: numeric / categorical as-of features; ``y``: value over the next period (>= 0).

        ``positive_growth`` (optional, >= 0): max(0, next-period value - last-period value) per
        row; when given, a fifth (Tweedie) model learns E[max(0, growth)] (``predict``'s
        ``positive_growth``), the quantity the top-decile growth capture sums.
        """
        import lightgbm as lgb

        y = np.asarray(y, dtype=float)
        if len(X) != len(y):
            raise ValueError(f"X and y must have the same length; got {len(X)} and {len(y)}")
        if len(X) < 20:
            raise ValueError(f"DealerPotential needs at least 20 training rows; got {len(X)}")
        bad = ~np.isfinite(y) | (y < 0)
        if bad.any():
            raise ValueError(f"y must be finite and >= 0; {int(bad.sum())} rows are not (first: {y[bad][:3].tolist()})")
        lo, hi = self.quantiles
        if not 0 < lo < self.upside_quantile < hi < 1:
            raise ValueError(f"quantiles must satisfy 0 < low < upside_quantile < high < 1; got "
                             f"{self.quantiles} and upside_quantile={self.upside_quantile}")
        self.feature_names_ = list(X.columns)
        self.categories_ = {c: list(X[c].cat.categories) for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)}
        Xf = self._frame(X)
        self.model_ = lgb.LGBMRegressor(**self._params(
            "tweedie", tweedie_variance_power=self.tweedie_variance_power)).fit(Xf, y)
        self.low_ = lgb.LGBMRegressor(**self._params("quantile", alpha=lo)).fit(Xf, y)
        self.high_ = lgb.LGBMRegressor(**self._params("quantile", alpha=hi)).fit(Xf, y)
        self.upside_ = lgb.LGBMRegressor(**self._params("quantile", alpha=self.upside_quantile)).fit(Xf, y)
        self.growth_ = None
        if positive_growth is not None:
            g = np.asarray(positive_growth, dtype=float)
            if len(g) != len(y) or (~np.isfinite(g) | (g < 0)).any():
                raise ValueError("positive_growth must be finite, >= 0 and as long as y")
            self.growth_ = lgb.LGBMRegressor(**self._params(
                "tweedie", tweedie_variance_power=self.tweedie_variance_power)).fit(Xf, g)
        return self

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("DealerPotential is not fitted; call fit(X, y) first")

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ValueError(f"X is missing feature column(s) {missing[:10]} (of {len(missing)})")
        Xf = X[self.feature_names_].copy()
        for c, cats in self.categories_.items():
            Xf[c] = pd.Categorical(Xf[c].astype(object), categories=cats)
        return Xf

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """``expected`` (mean), ``low``, ``upside``, ``high`` (quantiles) next-period value (currency).

        Quantiles are sorted per row so that low <= upside <= high, and low <= expected <= high.
        """
        self._check()
        Xf = self._frame(X)
        exp = np.clip(self.model_.predict(Xf), 0, None)
        lo = np.clip(self.low_.predict(Xf), 0, None)
        hi = np.clip(self.high_.predict(Xf), 0, None)
        up = np.clip(self.upside_.predict(Xf), 0, None)
        lo, up, hi = np.sort(np.stack([lo, up, hi]), axis=0)  # no quantile crossing
        lo = np.minimum(lo, exp)
        hi = np.maximum(hi, exp)
        out = pd.DataFrame({"expected": exp, "low": lo, "upside": up, "high": hi}, index=X.index)
        if getattr(self, "growth_", None) is not None:
            out["positive_growth"] = np.clip(self.growth_.predict(Xf), 0, None)
        return out

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the (log-link) expected value; last column ``bias``."""
        self._check()
        c = self.model_.predict(self._frame(X), pred_contrib=True)
        return pd.DataFrame(c, index=X.index, columns=[*self.feature_names_, "bias"])

    def save(self, path: Path) -> None:
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, m in (("expected", self.model_), ("low", self.low_), ("high", self.high_),
                        ("upside", self.upside_), ("growth", getattr(self, "growth_", None))):
            if m is None:
                continue
            m.booster_.save_model(str(path / f"{name}.txt"))
        params = {k: getattr(self, k) for k in ("n_estimators", "learning_rate", "num_leaves",
                                                 "min_child_samples", "tweedie_variance_power", "upside_quantile",
                                                 "random_state", "n_jobs")}
        params["quantiles"] = list(self.quantiles)
        (path / "potential.json").write_text(json.dumps(
            {"params": params, "feature_names": self.feature_names_, "categories": self.categories_}, default=str))

    @classmethod
    def load(cls, path: Path) -> DealerPotential:
        import lightgbm as lgb

        path = Path(path)
        d = json.loads((path / "potential.json").read_text())
        p = d["params"]
        p["quantiles"] = tuple(p["quantiles"])
        m = cls(**p)
        m.feature_names_ = d["feature_names"]
        m.categories_ = d["categories"]
        m.model_ = _BoosterRegressor(lgb.Booster(model_file=str(path / "expected.txt")))
        m.low_ = _BoosterRegressor(lgb.Booster(model_file=str(path / "low.txt")))
        m.high_ = _BoosterRegressor(lgb.Booster(model_file=str(path / "high.txt")))
        m.upside_ = _BoosterRegressor(lgb.Booster(model_file=str(path / "upside.txt")))
        g = path / "growth.txt"
        m.growth_ = _BoosterRegressor(lgb.Booster(model_file=str(g))) if g.exists() else None
        return m


class _BoosterRegressor:
    """A loaded booster with the ``predict`` of the fitted regressor."""

    def __init__(self, booster) -> None:
        self.booster_ = booster

    def predict(self, X, pred_contrib: bool = False):
        return self.booster_.predict(X, pred_contrib=pred_contrib)


# ------------------------------------------------------------------ headroom
def peer_headroom(value: pd.Series, segment: pd.Series, region: pd.Series, *,
                  quantile: float = 0.75, min_peers: int = 5) -> pd.DataFrame:
    """Headroom against look-alike peers, per account (same unit as ``value``).

    Peers: accounts with the same segment and region. When that group has fewer than
    ``min_peers`` accounts, the segment across regions; when still too few, the whole book.
    ``peer_value`` = the ``quantile`` (default upper quartile) of the peers' values (the account
    itself included); ``headroom`` = max(0, peer_value - value). ``peer_group`` says which.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1); got {quantile}")
    df = pd.DataFrame({"v": pd.Series(value, dtype=float).fillna(0.0), "s": segment.astype(str),
                       "r": region.astype(str)})
    q_sr = df.groupby(["s", "r"])["v"].transform(lambda x: x.quantile(quantile))
    n_sr = df.groupby(["s", "r"])["v"].transform("size")
    q_s = df.groupby("s")["v"].transform(lambda x: x.quantile(quantile))
    n_s = df.groupby("s")["v"].transform("size")
    q_all = float(df["v"].quantile(quantile))
    peer = np.where(n_sr >= min_peers, q_sr, np.where(n_s >= min_peers, q_s, q_all))
    group = np.where(n_sr >= min_peers, "segment and region", np.where(n_s >= min_peers, "segment", "all accounts"))
    out = pd.DataFrame({"peer_value": peer, "peer_group": group}, index=df.index)
    out["headroom"] = np.maximum(0.0, out["peer_value"] - df["v"])
    return out


def potential_score(upside, headroom, churn_risk, *, headroom_weight: float = 0.25) -> np.ndarray:
    """(1 - churn_risk) * (upside + headroom_weight * headroom), currency over the next period.

    A missing churn risk counts as 0.5 (unknown).
    """
    up = np.asarray(upside, dtype=float)
    head = np.asarray(headroom, dtype=float)
    risk = np.clip(np.nan_to_num(np.asarray(churn_risk, dtype=float), nan=0.5), 0.0, 1.0)
    return (1.0 - risk) * (up + headroom_weight * head)


# ------------------------------------------------------------------- reasons
_WORDS = {
    "recency_days": "{v:.0f} days since the last order",
    "tenure_days": "first order {v:.0f} days ago",
    "n_orders": "{v:.0f} orders so far",
    "orders_per_month": "{v:.1f} orders a month",
    "mean_interval_days": "orders every {v:.0f} days on average",
    "gap_mean_days": "orders every {v:.0f} days on average",
    # the dealer snapshot's overdue_ratio is over the mean gap (features.dealers), overdue_days and
    # gap_median_days over the median (features.accounts): named apart, as the churn reasons do
    "gap_median_days": "typical (median) gap of {v:.0f} days between orders",
    "overdue_ratio": "last order {v:.1f}x its mean gap between orders ago",
    "annual_value": "annual purchases {v:,.0f}",
    "last_period_value": "{v:,.0f} bought in the last period",
    "value_90d": "{v:,.0f} bought in the last 90 days",
    "revenue_last_90d": "{v:,.0f} bought in the last 90 days",
    "avg_order_value": "average order {v:,.0f}",
    "avg_lines_per_order": "{v:.1f} lines per order",
    "n_skus_365": "{v:.0f} SKUs bought in the last year",
    "promo_share": "{v:.0%} of purchases on promotion",
    "online_share": "{v:.0%} of value online",
    "n_purchase_days": "{v:.0f} days with an order",
    "n_orders_lifetime": "{v:.0f} orders so far",
    "revenue_lifetime": "{v:,.0f} bought in total",
    "bgnbd_frequency": "{v:.0f} repeat purchase days",
}


_WORDS.update({
    "n_skus_lifetime": "{v:,.0f} SKUs bought so far",
    "n_categories_lifetime": "{v:,.0f} categories bought so far",
    "n_categories_365": "{v:,.0f} categories bought in the last year",
    "avg_qty_per_line": "{v:,.1f} units per line",
    "gap_std_days": "gaps between orders vary by {v:,.0f} days",
    "gap_cv": "gaps between orders vary by {v:.0%} of their mean",
    "cv_interval": "gaps between orders vary by {v:.0%} of their mean",
    "orders_last_90d": "{v:,.0f} orders in the last 90 days",
    "orders_prev_90d": "{v:,.0f} orders in the 90 days before the last 90",
    "revenue_prev_90d": "{v:,.0f} bought in the 90 days before the last 90",
    "value_prev_90d": "{v:,.0f} bought in the 90 days before the last 90",
    "prev_period_value": "{v:,.0f} bought in the period before the last",
    "year_ago_period_value": "{v:,.0f} bought in the same period a year ago",
    "n_categories_dropped": "stopped buying {v:,.0f} of the categories it bought before",
    "promo_share_90d": "{v:.0%} of the last 90 days' spend on promotion",
    "service_events_180d": "{v:,.0f} service cases in the last 180 days",
    "resolution_days_mean_180d": "service cases took {v:,.0f} days on average to resolve",
    "open_events": "{v:,.0f} service cases still open",
    "onboarding_tenure_days": "onboarded {v:,.0f} days ago",
    "bgnbd_recency": "{v:,.0f} days between its first and last order",
    "bgnbd_T": "first order {v:,.0f} days ago",
    "bgnbd_monetary": "{v:,.0f} bought per repeat order day on average",
    "price_index": "pays {v:.0%} of the usual price",
    "history_days": "{v:,.0f} days of order history in the book",
})

# features that compare two figures of the row: described by the figures, not the ratio
# (ratio feature: (now column, base column, unit, now words, base words))
_COMPARED = {
    "orders_trend_ratio": ("orders_last_90d", "orders_prev_90d", " orders", "in the last 90 days", "in the 90 days before"),
    "orders_trend_pct": ("orders_last_90d", "orders_prev_90d", " orders", "in the last 90 days", "in the 90 days before"),
    "revenue_trend_ratio": ("revenue_last_90d", "revenue_prev_90d", " bought", "in the last 90 days", "in the 90 days before"),
    "revenue_trend_pct": ("revenue_last_90d", "revenue_prev_90d", " bought", "in the last 90 days", "in the 90 days before"),
    "trend_90d": ("value_90d", "value_prev_90d", " bought", "in the last 90 days", "in the 90 days before"),
    "growth_log_ratio": ("last_period_value", "prev_period_value", " bought", "in the last period", "in the period before"),
    "yoy_log_ratio": ("last_period_value", "year_ago_period_value", " bought", "in the last period",
                      "in the same period a year ago"),
}
_LOG_RATIOS = {"trend_90d", "growth_log_ratio", "yoy_log_ratio"}  # log((now + 1) / (base + 1))
_NOT_KNOWN = {  # what a missing value means, in words
    "mean_interval_days": "only one order day on record", "gap_mean_days": "only one order day on record",
    "gap_median_days": "only one order day on record", "gap_std_days": "fewer than three order days on record",
    "gap_cv": "fewer than three order days on record", "cv_interval": "only one order day on record",
    "overdue_ratio": "only one order day on record", "overdue_days": "only one order day on record",
    "growth_log_ratio": "the book does not reach back to the period before",
    "prev_period_value": "the book does not reach back to the period before",
    "yoy_log_ratio": "the book does not reach back a year", "year_ago_period_value": "the book does not reach back a year",
    "trend_90d": "the book does not reach back 180 days", "value_prev_90d": "the book does not reach back 180 days",
    "promo_share_90d": "nothing bought in the last 90 days",
    "resolution_days_mean_180d": "no service case resolved in the last 180 days",
    "open_events": "no record of which service cases are open", "onboarding_tenure_days": "no onboarding date",
    "cat_share_max_drop": "no category mix to compare over the last 270 days",
}


def _number(v: float) -> str:
    """A plain number, never in exponent notation (1.2e+05 is not for a sales report)."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}".rstrip("0").rstrip(".")


def _feature_text(name: str, v: float, row) -> str:
    """The words of one feature's value; a year's figure from a book with less than a year before the
    cutoff is said over the days on record (``models._reason_span.on_record``)."""
    from models._reason_span import on_record

    history = None if row is None or "history_days" not in row else row["history_days"]
    return on_record(_feature_words(name, v, row), history)


def _feature_words(name: str, v: float, row) -> str:
    if name in _COMPARED:
        now_c, base_c, unit, now_w, base_w = _COMPARED[name]
        if row is not None and now_c in row and base_c in row and not pd.isna(row[now_c]) and not pd.isna(row[base_c]):
            return f"{float(row[now_c]):,.0f}{unit} {now_w} against {float(row[base_c]):,.0f} {base_w}"
        pct = float(np.expm1(v)) if name in _LOG_RATIOS else (v - 1 if name.endswith("_ratio") else v)
        what = "orders" if name.startswith("orders") else "value"
        return f"{what} {now_w} {pct:+.0%} on {base_w[3:]}"
    if name in ("recency_days", "tenure_days"):  # time of day kept: 11.4 days is 12 calendar days
        d = math.ceil(v - 1e-9)
        unit = "day" if d == 1 else "days"
        return f"{d:,} {unit} since the last order" if name == "recency_days" else f"first order {d:,} {unit} ago"
    if name in _WORDS:
        return _WORDS[name].format(v=v)
    if name == "overdue_days":
        return (f"{v:,.0f} days past its typical (median) gap between orders" if v >= 0
                else f"{-v:,.0f} days before its typical (median) gap between orders is up")
    if name == "cat_share_max_drop":
        # the largest fall of any category's share (not the largest category's): which one, the
        # model's features do not carry
        return (f"one category's share of its spend down {v * 100:.0f} points, the largest fall among its categories "
                "(last 90 days against the 180 before)")
    if name in ("season_sin", "season_cos"):
        return "the time of year of the cutoff (the same for every dealer)"
    for prefix, unit in (("revenue_", "bought"), ("n_orders_", "orders"), ("n_skus_", "SKUs bought"),
                         ("n_categories_", "categories bought"), ("complaints_", "complaints"),
                         ("returns_", "returns"), ("tickets_", "support tickets")):
        days = name[len(prefix):-1]
        if name.startswith(prefix) and name.endswith("d") and days.isdigit():
            return (f"{v:,.0f} bought in the last {days} days" if prefix == "revenue_"
                    else f"{v:,.0f} {unit} in the last {days} days")
    return f"{name.replace('_', ' ')} {_number(v)}"


_ONE = {"orders": "order", "SKUs": "SKU", "categories": "category", "complaints": "complaint", "returns": "return",
        "support tickets": "support ticket", "service cases": "service case", "days": "day",
        "repeat purchase days": "repeat purchase day", "lines": "line", "units": "unit"}


def _singular(text: str) -> str:
    """"1 categories bought ..." -> "1 category bought ..." (a count of one leads the text)."""
    for many, one in _ONE.items():
        if text.startswith(f"1 {many} "):
            return f"1 {one} {text[len(many) + 3:]}"
    return text


def _feature_sentence(name: str, value, contrib: float, row=None) -> str:
    """One feature's value and which way it moves the account's forecast, in words. ``row``
    (the account's model features) lets a ratio be said by the two figures it compares."""
    effect = "raises" if contrib > 0 else "lowers"
    if isinstance(value, (int, float, np.floating, np.integer)) and not pd.isna(value):
        text = _singular(_feature_text(name, float(value), row))
    elif pd.isna(value) and name in _COMPARED and row is not None and all(
            c in row and not pd.isna(row[c]) for c in _COMPARED[name][:2]):
        # a ratio without a value (orders_trend_pct after no orders in the 90 days before): its two
        # figures are known and said ("3 orders in the last 90 days against 0 ..."), not "not known yet"
        text = _singular(_feature_text(name, float("nan"), row))
    elif pd.isna(value):
        text = _NOT_KNOWN.get(name, f"{name.replace('_', ' ')} not known yet")
    else:
        text = f"{name.replace('_', ' ')} '{value}'"
    return f"{text} ({effect} the forecast)"


_SOURCE_WORDS = {"churn_model": "churn model", "bgnbd": "BG/NBD"}


def churn_sentence(r, headroom_weight: float) -> str:
    """The churn-risk reason of one score row (needs churn_risk, upside, headroom, potential;
    churn_source if present): how much the risk takes off the potential, when it takes any."""
    risk = float(r["churn_risk"])
    src = _SOURCE_WORDS.get(str(r.get("churn_source", "")), None)
    head = f"churn risk {risk:.0%}" + (f" ({src})" if src else "")
    gross = float(r["upside"]) + headroom_weight * float(r["headroom"])
    if gross > 0:
        return f"{head} discounts its upside: potential {float(r['potential']):,.0f} instead of {gross:,.0f}"
    return head


def forecast_sentence(r, per: str, upside_quantile: float = 0.75, high_quantile: float = 0.9) -> str:
    """The first reason: the mean forecast against the last period, and the upside (the
    ``upside_quantile`` forecast) said as what it is, a level most periods like it stay within.

    The mean and the quantiles come from separate models (Tweedie; quantile regressions), and
    value is right-skewed (most periods modest, a few large), so the 75 % quantile can lie below
    the mean (17 of 400 synthetic dealers, 190 of 4,288 Online Retail ones at 2011-12-01): "forecast
    9,000 on average ...; 75% of periods like it bring at most 8,500" is true but reads as a
    contradiction. Then the sentence says why: the larger quarter lifts the average above the 75 %
    level (a mean above the 75 % quantile is what a right skew means), with the ``high_quantile``
    forecast (``expected_high``) when it prints above the mean: "75% of periods like it bring at
    most 8,500; the other 25%, larger (the top 10% more than 30,000), lift the average above that";
    a 75 % level of nothing: "75% of periods like it bring nothing; the average comes from the other
    25% (the top 10% more than 300)". The figures are the row's own (``expected``, ``upside``,
    ``expected_high``)."""
    growth = r["expected"] - r["last_period_value"]
    share = f"{upside_quantile:.0%} of periods like it"
    up, mean = float(r["upside"]), float(r["expected"])
    tail = f"{share} bring nothing" if round(up) <= 0 else f"{share} bring at most {up:,.0f}"
    head = (f"forecast {mean:,.0f} on average for the next {per} against {r['last_period_value']:,.0f} "
            f"in the last {per} ({growth:+,.0f}); ")
    if round(up) >= round(mean):  # the 75 % level at or above the mean: no contradiction to explain
        return head + tail
    high = r.get("expected_high") if hasattr(r, "get") else None
    rest = f"the other {1 - upside_quantile:.0%}"
    top = (f" (the top {1 - high_quantile:.0%} more than {float(high):,.0f})"
           if high is not None and np.isfinite(float(high)) and round(float(high)) > round(mean) else "")
    if round(up) <= 0:  # most periods bring nothing: the average is all the others'
        return head + tail + f"; the average comes from {rest}{top}"
    return head + tail + f"; {rest}, larger{top}, lift the average above that"


def explain(X: pd.DataFrame, contributions: pd.DataFrame, table: pd.DataFrame, *,
            headroom_weight: float, high_risk: float = 0.5, n: int = 3, period_days: int | None = None,
            upside_quantile: float = 0.75, high_quantile: float = 0.9) -> pd.DataFrame:
    """``reason_1..n`` per account, in words with the account's own values; ``period_days`` (the
    scorer's horizon) names the period: "in the last 182 days" (else "in the last period");
    ``upside_quantile`` / ``high_quantile`` are the quantiles ``upside`` / ``expected_high`` were
    forecast at (``forecast_sentence``).

    ``table`` needs ``expected``, ``upside``, ``last_period_value``, ``headroom``, ``peer_value``,
    ``peer_group``, ``churn_risk``, ``potential`` (``churn_source`` optional). First the forecast against last period; then the peer
    headroom when its term is at least 10% of the upside; churn risk when at least ``high_risk``;
    the rest are the features with the largest |contribution| to the account's forecast.
    """
    feats = contributions.drop(columns="bias")
    per = f"{period_days:.0f} days" if period_days else "period"
    rows = []
    for acc in X.index:
        r = table.loc[acc]
        head_term = (1 - r["churn_risk"]) * headroom_weight * r["headroom"]
        out = [forecast_sentence(r, per, upside_quantile, high_quantile)]
        h_txt = (f"buys {r['last_period_value']:,.0f} per {per} where peers ({r['peer_group']}) reach "
                 f"{r['peer_value']:,.0f}: headroom {r['headroom']:,.0f}")
        if r["churn_risk"] >= high_risk:
            out.append(churn_sentence(r, headroom_weight))
        if r["headroom"] > 0 and head_term >= 0.1 * max(r["upside"], 1e-9):
            out.insert(1, h_txt)
        c = feats.loc[acc]
        order = c.abs().sort_values(ascending=False).index
        for f in order:
            if len(out) >= n + 2:
                break
            if c[f] == 0:
                break
            out.append(_feature_sentence(f, X.at[acc, f], float(c[f]), X.loc[acc]))
        rows.append(out[:n] + [""] * (n - len(out[:n])))
    return pd.DataFrame(rows, index=X.index, columns=[f"reason_{i + 1}" for i in range(n)])
