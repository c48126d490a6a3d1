"""Value tiers and programme levels: ``TierModel`` (annual purchase value against absolute
thresholds, or the cut points of a share of accounts learned at ``fit``) with its defaults
``DEFAULT_TIER_SHARES`` and ``DEFAULT_PROGRAMME``.

Apart from the segments because a tier reads one figure, the annual value, and nothing of the
behaviour scorecard; it shares only ``NotFittedError`` with it (imported from
``models._segments_scorecard``). Units: annual value in currency per year, shares of accounts in
[0, 1]. Private to ``models.segments``, which re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models._segments_scorecard import NotFittedError

DEFAULT_TIER_SHARES = {"strategic": 0.02, "key": 0.08, "growth": 0.20, "regular": 0.30, "occasional": 0.40}
"""Share of accounts in each tier, from the top, when no absolute thresholds are given."""


DEFAULT_PROGRAMME = {"strategic": "gold", "key": "gold", "growth": "silver", "regular": "bronze",
                     "occasional": "bronze"}


@dataclass
class TierModel:
    """Value tier from annual purchase value (currency per year) and a programme level.

    thresholds: {tier: minimum annual value}, highest first (e.g. {"strategic": 250000,
        "key": 50000, "growth": 10000, "regular": 1000, "occasional": 0}); when None, the cut
        points are learned at ``fit`` so that ``shares`` of the accounts fall in each tier: the
        interpolated quantile of the annual values at 1 - (the tier's share + the shares above it),
        so that a small book's top account is ``strategic`` (one of 10 accounts); accounts of equal
        value share a tier, the lower one when the cut point falls on their value (the tier then
        starts at the next value above theirs).
    shares: {tier: share of accounts}, highest tier first, summing to 1.
    programme: {tier: "gold" | "silver" | "bronze"}.
    """

    thresholds: dict[str, float] | None = None
    shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIER_SHARES))
    programme: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROGRAMME))

    def fit(self, annual_value: pd.Series) -> TierModel:
        v = pd.Series(annual_value, dtype=float).dropna()
        if self.thresholds is not None:
            th = {k: float(x) for k, x in self.thresholds.items()}
            vals = list(th.values())
            if any(a < b for a, b in zip(vals, vals[1:], strict=False)):
                raise ValueError(f"tier thresholds must be listed highest first; got {th}")
        else:
            total = sum(self.shares.values())
            if abs(total - 1.0) > 1e-6 or any(s < 0 for s in self.shares.values()):
                raise ValueError(f"tier shares must be >= 0 and sum to 1; got {self.shares} (sum {total})")
            if len(v) == 0:
                raise ValueError("TierModel.fit needs at least one annual value when thresholds are learned")
            th, cum = {}, 0.0
            names = list(self.shares)
            vs = np.sort(v.to_numpy())
            for name in names[:-1]:
                cum += self.shares[name]
                q = float(v.quantile(1.0 - cum))
                # accounts of equal value share a tier: when they straddle the cut point (the cut falls on
                # their value), the tier starts at the next value above them, so that a tier and those above it
                # never take more accounts than the interpolated cut gives (five accounts of 440 a year were all
                # "strategic", the top 2%); values that all differ keep the interpolated cut
                below = int(np.searchsorted(vs, q, side="left"))  # accounts below the cut
                if below < (1.0 - cum) * (len(vs) - 1) - 1e-9:
                    above = vs[vs > vs[below]]
                    q = float(above[0]) if len(above) else float(np.nextafter(vs[-1], np.inf))
                th[name] = q
            th[names[-1]] = float("-inf")
        missing = sorted(set(th) - set(self.programme))
        if missing:
            raise ValueError(f"programme has no level for tier(s) {missing}; got {self.programme}")
        self.thresholds_ = th
        return self

    def predict(self, annual_value: pd.Series) -> pd.DataFrame:
        """``tier`` (first tier whose threshold the value reaches) and ``programme``."""
        if not hasattr(self, "thresholds_"):
            raise NotFittedError("TierModel is not fitted; call fit(annual_value) first")
        v = pd.Series(annual_value, dtype=float).fillna(0.0)
        names = list(self.thresholds_)
        tier = pd.Series(names[-1], index=v.index, dtype=object)
        for name in reversed(names):
            tier[v >= self.thresholds_[name]] = name
        return pd.DataFrame({"tier": tier, "programme": tier.map(self.programme)}, index=v.index)

    def to_dict(self) -> dict:
        return {"thresholds": self.thresholds, "shares": self.shares, "programme": self.programme,
                "thresholds_": getattr(self, "thresholds_", None)}

    @classmethod
    def from_dict(cls, d: dict) -> TierModel:
        m = cls(thresholds=d["thresholds"], shares=d["shares"], programme=d["programme"])
        if d.get("thresholds_") is not None:
            m.thresholds_ = {k: float(x) for k, x in d["thresholds_"].items()}
        return m
