"""The segment scorecard: the five ``SEGMENTS`` and their labels, the behaviour features it reads
(``BEHAVIOUR``, ``behaviour_matrix``), the profiles, biases and key-value share of the groups,
the ``channel_type`` words that name a group, and ``SegmentModel`` (fit the robust scales, score,
assign with the attribute, give the reasons, save / load), with ``NotFittedError``.

The core of ``models.segments`` (its docstring describes the method), apart from the lifecycle,
the tiers, the k-means check and the reason words so that the scoring reads in one place. It
imports the trend (``_growth``, ``_trend_values``) from ``models._segments_lifecycle`` and the
reason words (``_describe``) from ``models._segments_words``; ``models._segments_tiers`` imports
``NotFittedError`` from here. Units: annual value and order value in currency, frequency in
orders a month, sizes in lines / units / SKUs, shares in [0, 1]. Private to ``models.segments``,
which re-exports the public names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from models._reason_span import on_record
from models._segments_lifecycle import _growth, _trend_values
from models._segments_words import _describe

SEGMENTS = (
    "strategic_key_account",
    "growing_retail_chain",
    "price_sensitive_small_shop",
    "channel_distributor",
    "ecommerce_reseller",
)


SEGMENT_LABELS = {
    "strategic_key_account": "strategic key account",
    "growing_retail_chain": "growing retail chain",
    "price_sensitive_small_shop": "price-sensitive small shop",
    "channel_distributor": "channel distributor",
    "ecommerce_reseller": "e-commerce reseller",
}


# channel_type attribute -> segment (lower-case substring match, first hit wins)
_CHANNEL_TYPE_KEYS = (
    (("key", "strategic"), "strategic_key_account"),
    (("e-com", "ecom", "online", "web", "reseller"), "ecommerce_reseller"),
    (("distrib", "wholesal"), "channel_distributor"),
    (("chain", "retail"), "growing_retail_chain"),
    (("shop", "small", "store"), "price_sensitive_small_shop"),
)


# behaviour features used by the scorecard and k-means; "log" ones are log1p-transformed
BEHAVIOUR = {
    "annual_value": "log",
    "avg_order_value": "log",
    "orders_per_month": "log",
    "avg_lines_per_order": "log",
    "avg_qty_per_line": "log",
    "n_skus_365": "log",
    "cv_interval": "raw",
    "growth": "raw",
    "promo_share": "raw",
    "price_index": "log",
    "online_share": "raw",
}


# subtracted from a segment's score: strategic key accounts are the few biggest, so an account
# needs about 1.5 robust standard deviations of annual value (x weight 2) before the group wins
# *when its other features are typical*. They seldom are: frequency and range rise with value, and
# their weights paid the bias for accounts of modest value (Online Retail: 13-16% of accounts, some
# at 1.65x the median annual value), hence also the floor below.
BIASES: dict[str, float] = {"strategic_key_account": 3.0}


KEY_VALUE_SHARE = 0.10
"""Strategic key accounts are read from behaviour only among the top 10% of the accounts fitted on by
annual value (``SegmentModel(key_value_share=...)``). The tightest round share that keeps every key
account recovered on the synthetic network (seeds 7, 1, 2, 3, 42: the lowest at the 94th percentile
from behaviour); a ``channel_type`` naming key accounts is the book's own word and is not held to it."""


PROFILES: dict[str, dict[str, float]] = {
    "strategic_key_account": {"annual_value": 2.0, "orders_per_month": 1.0, "n_skus_365": 1.0,
                              "avg_order_value": 0.5},
    "growing_retail_chain": {"growth": 1.0, "cv_interval": -1.0, "orders_per_month": 0.5,
                             "avg_lines_per_order": 1.0},
    "price_sensitive_small_shop": {"annual_value": -1.0, "avg_order_value": -1.0, "promo_share": 1.5,
                                   "avg_lines_per_order": -0.5},
    "channel_distributor": {"avg_qty_per_line": 2.0, "avg_order_value": 1.0, "orders_per_month": -0.5,
                            "avg_lines_per_order": -0.5},
    "ecommerce_reseller": {"online_share": 3.0, "orders_per_month": 0.5, "avg_order_value": -0.5},
}


def behaviour_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """The raw behaviour columns of ``BEHAVIOUR`` (growth as a log ratio), log1p where marked."""
    out = {}
    for col, how in BEHAVIOUR.items():
        s = _growth(features) if col == "growth" else features[col].astype(float)
        out[col] = np.log1p(s.clip(lower=0)) if how == "log" else s
    return pd.DataFrame(out, index=features.index)


MIN_BOOK_MEDIAN = 20
"""Fewest accounts scored together whose own medians the segment reasons quote as the book median."""


def _book_medians(raw: pd.DataFrame) -> dict[str, float]:
    """The median of each behaviour feature but growth over ``raw`` (``_reason_values`` rows), in its
    own units: the "book median" the segment reasons quote (NaN where no account has a value)."""
    return {col: (float(raw[col].median()) if raw[col].notna().any() else float("nan"))
            for col in BEHAVIOUR if col != "growth"}


def _reason_values(features: pd.DataFrame) -> pd.DataFrame:
    """The behaviour features in their own units, as the reasons quote them (growth: the
    smoothed value ratio - 1; money and sizes clipped at 0 as ``behaviour_matrix`` reads them)."""
    out = {}
    for col, how in BEHAVIOUR.items():
        if col == "growth":
            out[col] = np.expm1(_growth(features))
        else:
            s = features[col].astype(float)
            out[col] = s.clip(lower=0) if how == "log" else s
    return pd.DataFrame(out, index=features.index)


class NotFittedError(RuntimeError):
    """Raised when a model of this module is used before ``fit``."""


class SegmentModel:
    """Assign each account to one of ``SEGMENTS`` (attribute first, else the behaviour scorecard).

    Parameters
    ----------
    use_attributes:
        Let a recognisable ``channel_type`` decide the segment (default True).
    profiles:
        Override ``PROFILES`` (segment -> {feature: weight}).
    key_value_share:
        Behaviour names an account a strategic key account only when its annual value is at least
        ``key_value_floor_``, the value of the top ``key_value_share`` of the accounts fitted on
        (default ``KEY_VALUE_SHARE``, 10%; None: no floor). A ``channel_type`` naming the group
        is not held to it.
    """

    def __init__(self, use_attributes: bool = True, profiles: dict[str, dict[str, float]] | None = None,
                 biases: dict[str, float] | None = None, attribute_weight: float | None = 3.0,
                 key_value_share: float | None = KEY_VALUE_SHARE) -> None:
        self.use_attributes = use_attributes
        self.attribute_weight = attribute_weight
        self.profiles = profiles
        self.biases = biases
        self.key_value_share = key_value_share

    def fit(self, features: pd.DataFrame) -> SegmentModel:
        """Learn the robust centre and scale of each behaviour feature on a snapshot."""
        if len(features) == 0:
            raise ValueError("SegmentModel.fit needs at least one account; got 0 rows")
        share = self.key_value_share
        if share is not None and not 0 < share <= 1:
            raise ValueError(f"key_value_share must be a share in (0, 1] (0.10 = the top 10% by annual value) or None; "
                             f"got {share!r}")
        X = behaviour_matrix(features)
        self.center_ = {}
        self.scale_ = {}
        for col in X.columns:
            s = X[col].dropna()
            med = float(s.median()) if len(s) else 0.0
            iqr = float(s.quantile(0.75) - s.quantile(0.25)) if len(s) else 0.0
            std = float(s.std()) if len(s) > 1 else 0.0
            scale = iqr / 1.349 if iqr > 1e-12 else std
            self.center_[col] = med
            self.scale_[col] = scale if scale > 1e-12 else 0.0  # 0 = constant: feature ignored
        # the book medians the reasons quote, in the features' own units (not expm1 of the log
        # centre: with an even count that is not the midpoint the reader would compute)
        raw = _reason_values(features)
        self.median_ = _book_medians(raw)
        self.median_["growth"] = float(np.expm1(self.center_["growth"]))
        # the annual value of the top key_value_share of the accounts (linear quantile; NaN: no account has one)
        av = raw["annual_value"].dropna()
        self.key_value_floor_ = (None if share is None else float(av.quantile(1 - share)) if len(av) else float("nan"))
        self.profiles_ = {k: dict(v) for k, v in (self.profiles or PROFILES).items()}
        unknown = sorted({f for p in self.profiles_.values() for f in p} - set(BEHAVIOUR))
        if unknown:
            raise ValueError(f"profiles use unknown feature(s) {unknown}; known: {sorted(BEHAVIOUR)}")
        self.biases_ = {seg: float((self.biases if self.biases is not None else BIASES).get(seg, 0.0))
                        for seg in SEGMENTS}
        # a group whose profile rests mostly (> 50% of its weight) on features this book does not
        # have (constant, e.g. no channel column) cannot be recognised from behaviour: disabled
        self.disabled_ = sorted(
            seg for seg, prof in self.profiles_.items()
            if sum(abs(w) for f, w in prof.items() if self.scale_[f] == 0) > 0.5 * sum(abs(w) for w in prof.values())
        )
        if set(self.disabled_) >= set(SEGMENTS):
            # every account would score -inf for every group and take the first, "strategic key account"
            # (a book of 2 or 3 accounts ordering alike: all of them, with "closest profile, no strong signal")
            const = sorted(f for f in BEHAVIOUR if self.scale_[f] == 0)
            n = len(features)
            raise ValueError(
                f"no segment can be read from behaviour: the features every group rests on do not vary across the "
                f"{n:,} account{'' if n == 1 else 's'} fitted on (constant: {', '.join(const)})")
        return self

    def _check(self) -> None:
        if not hasattr(self, "center_"):
            raise NotFittedError("SegmentModel is not fitted; call fit(features) first")

    def standardize(self, features: pd.DataFrame) -> pd.DataFrame:
        """Behaviour features on the fitted robust z-scale, clipped to [-4, 4]; NaN -> 0 (typical)."""
        self._check()
        X = behaviour_matrix(features)
        Z = pd.DataFrame(index=X.index)
        for col in X.columns:
            sc = self.scale_[col]
            Z[col] = 0.0 if sc == 0 else ((X[col] - self.center_[col]) / sc).clip(-4, 4).fillna(0.0)
        return Z

    def scores(self, features: pd.DataFrame, *, floor: bool = True) -> pd.DataFrame:
        """Scorecard value of each segment per account (columns = ``SEGMENTS``); ``floor``: an account
        below ``key_value_floor_`` scores -inf as a strategic key account."""
        Z = self.standardize(features)
        S = pd.DataFrame(
            {seg: (sum(w * Z[f] for f, w in self.profiles_[seg].items()) - self.biases_[seg]
                   if seg not in self.disabled_ else -np.inf)
             for seg in SEGMENTS}, index=Z.index,
        )
        if floor:
            S.loc[self._below_key_floor(features), "strategic_key_account"] = -np.inf
        return S

    def _below_key_floor(self, features: pd.DataFrame) -> pd.Series:
        """Accounts whose annual value is under ``key_value_floor_`` (or unknown); none without a floor
        (``key_value_share=None``, or a model saved before the floor)."""
        fl = getattr(self, "key_value_floor_", None)
        if fl is None:
            return pd.Series(False, index=features.index)
        av = features["annual_value"].astype(float).clip(lower=0)
        return ~(av >= fl)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """``segment``, ``segment_source`` (attribute / behaviour) and ``segment_reason`` per account.

        ``features``: every account of the book as of the cutoff scored (as ``DealerScorer.score``
        passes its snapshot). The "book median" a reason quotes is theirs when there are at least
        ``MIN_BOOK_MEDIAN`` of them, else the fitted one: a model fitted on the book to 2011-12-10
        scoring 2011-06-01 on Online Retail quoted its fit snapshot's "book median 2" orders a year
        to 204 accounts ordering at the rate of 4, the median of the 2,715 accounts at that cutoff,
        as "orders more often than most accounts"."""
        self._check()
        Z = self.standardize(features)
        U = self.scores(features, floor=False)  # an attribute adds to these: a recorded key account is the book's own word
        S = U.copy()
        S.loc[self._below_key_floor(features), "strategic_key_account"] = -np.inf  # as scores() with the floor
        behaviour_seg = S.idxmax(axis=1)
        source = pd.Series("behaviour", index=features.index)
        attr = pd.Series(None, index=features.index, dtype=object)
        if self.use_attributes and "channel_type" in features:
            attr = features["channel_type"].astype(object).map(_segment_from_channel_type)
        has = attr.notna()
        if self.attribute_weight is None:  # the attribute decides outright
            seg = behaviour_seg.where(~has, attr)
        else:  # the attribute adds attribute_weight to its group's score
            for s_ in SEGMENTS:
                S.loc[has & (attr == s_), s_] = U.loc[has & (attr == s_), s_] + self.attribute_weight
            seg = S.idxmax(axis=1)
        # the attribute's group won: with the behaviour ("attribute and behaviour") or over it
        # ("attribute"); the attribute names another group that the behaviour outweighed: "behaviour"
        agree = has & (attr == seg)
        source = source.where(~agree, np.where(seg == behaviour_seg, "attribute and behaviour", "attribute"))
        raw = _reason_values(features)
        trend = _trend_values(features, None)  # the two values the growth compares
        medians = self.medians()
        if len(features) >= MIN_BOOK_MEDIAN:
            medians.update({f: m for f, m in _book_medians(raw).items() if np.isfinite(m)})
        # a year's figure of a book with less than a year before the cutoff: said over the days on record
        history = features["history_days"] if "history_days" in features else pd.Series(None, index=features.index)
        reasons = []
        for acc in features.index:
            s = seg.loc[acc]
            contrib = {f: w * Z.at[acc, f] for f, w in self.profiles_[s].items()}
            words = []
            for f, _c in sorted(((f, c) for f, c in contrib.items() if c > 0), key=lambda kv: -kv[1]):
                text = _describe(f, raw.at[acc, f], Z.at[acc, f], trend.at[acc, "now"], trend.at[acc, "base"],
                                 median=medians.get(f, np.nan))
                if text is not None:
                    words.append(on_record(text, history.loc[acc]))
            if agree.loc[acc]:
                words.insert(0, f"channel type is '{features.at[acc, 'channel_type']}'")
            elif has.loc[acc]:  # the attribute pointed elsewhere: said as outweighed, never as a reason
                words = words[:1] + [f"channel type '{features.at[acc, 'channel_type']}' points to "
                                     f"{SEGMENT_LABELS[attr.loc[acc]]}, but the behaviour outweighs it"]
            reasons.append("; ".join(words[:2]) if words else "closest profile, no strong signal")
        return pd.DataFrame({"segment": seg, "segment_source": source, "segment_reason": reasons},
                            index=features.index)

    def medians(self) -> dict[str, float]:
        """The book median of each behaviour feature in its own units (the accounts ``fit`` saw):
        what the reasons' "than most accounts" compares with. ``growth``: the value ratio - 1.
        A model saved before the medians were kept: from its robust centres."""
        self._check()
        if getattr(self, "median_", None):
            return dict(self.median_)
        return {f: float(np.expm1(c)) if BEHAVIOUR[f] == "log" or f == "growth" else float(c)
                for f, c in self.center_.items()}

    def save(self, path: Path) -> None:
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "segments.json").write_text(json.dumps({
            "use_attributes": self.use_attributes, "profiles": self.profiles, "biases": self.biases,
            "attribute_weight": self.attribute_weight,
            "center": self.center_, "scale": self.scale_, "profiles_fitted": self.profiles_,
            "biases_fitted": self.biases_, "disabled": self.disabled_,
            "key_value_share": self.key_value_share, "key_value_floor": _json_float(self.key_value_floor_),
            "median": {k: (None if not np.isfinite(v) else v) for k, v in self.median_.items()}}))

    @classmethod
    def load(cls, path: Path) -> SegmentModel:
        d = json.loads((Path(path) / "segments.json").read_text())
        # a model saved before the key-value floor: none (its segments as they were)
        m = cls(use_attributes=d["use_attributes"], profiles=d["profiles"], biases=d["biases"],
                attribute_weight=d["attribute_weight"], key_value_share=d.get("key_value_share"))
        m.center_, m.scale_, m.profiles_ = d["center"], d["scale"], d["profiles_fitted"]
        fl = d.get("key_value_floor")
        m.key_value_floor_ = None if m.key_value_share is None else (float("nan") if fl is None else float(fl))
        m.biases_, m.disabled_ = d["biases_fitted"], d["disabled"]
        if d.get("median") is not None:  # saved before: medians() reads the centres
            m.median_ = {k: float("nan") if v is None else float(v) for k, v in d["median"].items()}
        return m


def _json_float(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _segment_from_channel_type(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    v = str(value).strip().lower()
    if v in ("", "unknown", "nan", "none"):
        return None
    if v in SEGMENTS:
        return v
    for keys, seg in _CHANNEL_TYPE_KEYS:
        if any(k in v for k in keys):
            return seg
    return None
