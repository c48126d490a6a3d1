"""``DealerScorer``: everything that scores dealers, fitted together and saved as one directory.

Holds the potential regressor (``models.potential.DealerPotential``), the BG/NBD and
Gamma-Gamma models (the ``bgnbd_gg`` customer-value baseline and the fallback churn risk
1 - P(alive)), the segment scorecard, and the value tiers. ``score(snapshot)`` turns an as-of
snapshot (``features.dealers.dealer_snapshot``) into the score table the CRM and the service
read; see ``score`` for its columns.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from models.potential import DealerPotential, explain, peer_headroom, potential_score
from models.segments import (
    DEFAULT_PROGRAMME,
    DEFAULT_TIER_SHARES,
    LifecycleRules,
    SegmentModel,
    TierModel,
    lifecycle_stage,
    not_growing_now,
)

__all__ = ["DealerScorer"]


class NotFittedError(RuntimeError):
    """Raised when ``DealerScorer`` is used before ``fit``."""


class DealerScorer:
    """Potential, segment, lifecycle, tier and reasons for each dealer.

    Parameters (units: days and the book's currency): ``horizon_days`` (the period),
    ``headroom_weight``, ``peer_quantile``, ``min_peers``, ``high_churn_risk``,
    ``use_attributes``, ``tier_thresholds`` / ``tier_shares`` / ``programme`` (see
    ``TierModel``), ``lifecycle`` (dict of ``LifecycleRules`` fields as growth_pct /
    decline_pct / young_days / overdue_ratio), ``potential_params`` (``DealerPotential`` kwargs).
    """

    def __init__(self, horizon_days: int = 182, headroom_weight: float = 0.25, peer_quantile: float = 0.75,
                 min_peers: int = 5, high_churn_risk: float = 0.5, use_attributes: bool = True,
                 tier_thresholds: dict | None = None, tier_shares: dict | None = None,
                 programme: dict | None = None, lifecycle: dict | None = None,
                 potential_params: dict | None = None) -> None:
        self.horizon_days = horizon_days
        self.headroom_weight = headroom_weight
        self.peer_quantile = peer_quantile
        self.min_peers = min_peers
        self.high_churn_risk = high_churn_risk
        self.use_attributes = use_attributes
        self.tier_thresholds = tier_thresholds
        self.tier_shares = tier_shares
        self.programme = programme
        self.lifecycle = lifecycle
        self.potential_params = potential_params

    def _rules(self) -> LifecycleRules:
        lc = dict(self.lifecycle or {})
        return LifecycleRules(
            growth_log_ratio=math.log1p(lc.get("growth_pct", 0.25)),
            decline_log_ratio=math.log1p(-lc.get("decline_pct", 0.25)),
            young_days=lc.get("young_days", 180.0), overdue_ratio=lc.get("overdue_ratio", 3.0),
            period_days=self.horizon_days)

    def fit(self, X_train: pd.DataFrame, y_train, snapshot: pd.DataFrame, positive_growth=None) -> DealerScorer:
        """Fit the regressor on stacked earlier snapshots (``X_train``: ``model_matrix`` rows,
        ``y_train``: value over the next ``horizon_days``), and the rest on ``snapshot`` (as of the
        fitting cutoff: BG/NBD + Gamma-Gamma, segment scales, tier cut points). ``positive_growth``:
        max(0, next - last period value) per training row, for the expected-growth model."""
        from models.bgnbd import BGNBD
        from models.gamma_gamma import GammaGamma

        if len(snapshot) == 0:
            raise ValueError("DealerScorer.fit needs a non-empty snapshot")
        self.potential_ = DealerPotential(**(self.potential_params or {})).fit(X_train, y_train, positive_growth)
        x, tx, T, m = _rfm(snapshot)
        self.bgnbd_ = BGNBD(penalizer=0.001).fit(x, tx, T)
        self.gamma_gamma_ = GammaGamma(penalizer=0.001).fit(x, m)
        self.segments_ = SegmentModel(use_attributes=self.use_attributes).fit(snapshot)
        self.tiers_ = TierModel(thresholds=self.tier_thresholds,
                                shares=self.tier_shares or dict(DEFAULT_TIER_SHARES),
                                programme=self.programme or dict(DEFAULT_PROGRAMME)).fit(snapshot["annual_value"])
        return self

    def _check(self) -> None:
        if not hasattr(self, "potential_"):
            raise NotFittedError("DealerScorer is not fitted; call fit(X_train, y_train, snapshot) first")

    def bgnbd_gg(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        """``bgnbd_gg_value`` (expected orders in the horizon x expected order value) and ``p_alive``."""
        self._check()
        x, tx, T, m = _rfm(snapshot)
        n_exp = self.bgnbd_.expected_purchases(float(self.horizon_days), x, tx, T)
        spend = self.gamma_gamma_.conditional_expected_value(x, np.where(x > 0, m, 0.0))
        return pd.DataFrame({"bgnbd_gg_value": np.nan_to_num(n_exp * spend),
                             "p_alive": self.bgnbd_.prob_alive(x, tx, T)}, index=snapshot.index)

    def score(self, snapshot: pd.DataFrame, churn_risk: pd.Series | None = None) -> pd.DataFrame:
        """Score table, one row per account (index ``account_id``), best potential first.

        potential / potential_low / potential_high: the potential score and its band (currency
        over the next ``horizon_days``); expected / expected_low / upside / expected_high: the
        forecast of next-period value (mean, quantiles); expected_growth = expected - last;
        last_period_value, annual_value; headroom, peer_value, peer_group; churn_risk and
        churn_source (``churn_model`` when ``churn_risk`` has the account, else ``bgnbd``: the
        risk is then 1 - BG/NBD P(alive));
        bgnbd_gg_value; segment (+ source, reason); lifecycle (+ reason); tier, programme;
        region; reason_1..3.
        """
        from features.dealers import model_matrix

        self._check()
        if len(snapshot) == 0:
            raise ValueError("nothing to score: the snapshot has no accounts")
        X = model_matrix(snapshot)
        pred = self.potential_.predict(X)
        t = pd.DataFrame(index=snapshot.index)
        t["expected"] = pred["expected"]
        t["expected_low"] = pred["low"]
        t["upside"] = pred["upside"]
        t["expected_high"] = pred["high"]
        if "positive_growth" in pred:
            t["expected_positive_growth"] = pred["positive_growth"]
        t["last_period_value"] = snapshot["last_period_value"].astype(float)
        t["annual_value"] = snapshot["annual_value"].astype(float)
        bg = self.bgnbd_gg(snapshot)
        t["bgnbd_gg_value"] = bg["bgnbd_gg_value"]
        fallback = 1.0 - bg["p_alive"]
        if churn_risk is not None:
            cr = pd.Series(churn_risk, dtype=float).reindex(t.index)
            t["churn_risk"] = cr.fillna(fallback)
            t["churn_source"] = np.where(cr.notna(), "churn_model", "bgnbd")
        else:
            t["churn_risk"] = fallback
            t["churn_source"] = "bgnbd"
        t = t.join(self.segments_.predict(snapshot))
        region = snapshot["region"].astype(object) if "region" in snapshot else pd.Series(np.nan, index=t.index)
        t["region"] = region.where(region.notna(), "unknown").astype(str)
        t = t.join(peer_headroom(t["last_period_value"], t["segment"], t["region"],
                                 quantile=self.peer_quantile, min_peers=self.min_peers))
        w = self.headroom_weight
        t["expected_growth"] = t["expected"] - t["last_period_value"]
        t["potential"] = potential_score(t["upside"], t["headroom"], t["churn_risk"], headroom_weight=w)
        t["potential_low"] = potential_score(t["expected_low"], t["headroom"], t["churn_risk"], headroom_weight=w)
        t["potential_high"] = potential_score(t["expected_high"], t["headroom"], t["churn_risk"], headroom_weight=w)
        t = t.join(lifecycle_stage(snapshot, self._rules()))
        t["segment_reason"] = not_growing_now(t["segment"], t["segment_reason"], t["lifecycle"],
                                              t["lifecycle_reason"])
        t = t.join(self.tiers_.predict(snapshot["annual_value"]))
        contrib = self.potential_.contributions(X)
        t = t.join(explain(X, contrib, t, headroom_weight=w, high_risk=self.high_churn_risk,
                           period_days=self.horizon_days, upside_quantile=self.potential_.upside_quantile,
                           high_quantile=self.potential_.quantiles[1]))
        return t.sort_values("potential", ascending=False, kind="stable")

    def predict(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        """Alias of ``score`` (the MLflow pyfunc calls ``predict``)."""
        return self.score(snapshot)

    def _params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "horizon_days", "headroom_weight", "peer_quantile", "min_peers", "high_churn_risk",
            "use_attributes", "tier_thresholds", "tier_shares", "programme", "lifecycle", "potential_params")}

    def save(self, path: Path) -> None:
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self._params()
        if params["potential_params"] and "quantiles" in params["potential_params"]:
            params["potential_params"] = {**params["potential_params"],
                                          "quantiles": list(params["potential_params"]["quantiles"])}
        (path / "dealer_scorer.json").write_text(json.dumps({"params": params, "tiers": self.tiers_.to_dict()}))
        self.potential_.save(path / "potential")
        self.bgnbd_.save(path / "bgnbd")
        self.gamma_gamma_.save(path / "gamma_gamma")
        self.segments_.save(path / "segments")

    @classmethod
    def load(cls, path: Path) -> DealerScorer:
        from models.bgnbd import BGNBD
        from models.gamma_gamma import GammaGamma

        path = Path(path)
        d = json.loads((path / "dealer_scorer.json").read_text())
        p = d["params"]
        if p.get("potential_params") and "quantiles" in p["potential_params"]:
            p["potential_params"]["quantiles"] = tuple(p["potential_params"]["quantiles"])
        m = cls(**p)
        m.tiers_ = TierModel.from_dict(d["tiers"])
        m.potential_ = DealerPotential.load(path / "potential")
        m.bgnbd_ = BGNBD.load(path / "bgnbd")
        m.gamma_gamma_ = GammaGamma.load(path / "gamma_gamma")
        m.segments_ = SegmentModel.load(path / "segments")
        return m


def _rfm(snapshot: pd.DataFrame):
    x = snapshot["bgnbd_frequency"].to_numpy(float)
    tx = snapshot["bgnbd_recency"].to_numpy(float)
    T = np.maximum(snapshot["bgnbd_T"].to_numpy(float), tx)
    m = snapshot["bgnbd_monetary"].to_numpy(float)
    return x, tx, T, m
