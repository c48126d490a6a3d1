"""Dealer backend: the champion ``DealerScorer``'s ranking, computed once, filtered per request.

At start-up the snapshot is built as ``dealerml score dealers`` builds it
(``features.dealers.dealer_snapshot`` over the rows before the cutoff = the day after the
last order, or ``serving.dealers_cutoff``) and scored by the champion; the ranked rows are
kept as JSON-ready dicts with numpy arrays of region / segment / tier for the filters, so a
request is a boolean mask and a slice: the ``top_k`` best (default 50), or, with ``account_ids``
and no ``top_k``, every dealer asked for, best first. Churn risk comes from the ``dealerml-churn`` champion
scored as of the same cutoff when one is registered (else 1 - BG/NBD P(alive)), exactly as
``dealerml score dealers`` takes it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from serving.errors import UnknownIds

__all__ = ["DealersBackend"]

REGISTERED_NAME = "dealerml-dealers"
logger = logging.getLogger("dealerml.serving")


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _str(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v)


def tier_thresholds(scorer: Any) -> dict[str, float]:
    """Tier -> the least annual value (currency per year) that reaches it, highest tier first:
    ``dealers.tier_thresholds`` as configured, or the cut points ``dealers.tier_shares`` gave at
    fitting (the lowest tier: 0)."""
    th = getattr(getattr(scorer, "tiers_", None), "thresholds_", None) or {}
    return {str(k): (float(v) if np.isfinite(v) else 0.0) for k, v in th.items()}


class DealersBackend:
    def __init__(self, *, model_name: str, model_version: str, as_of: pd.Timestamp, table: pd.DataFrame) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.as_of = pd.Timestamp(as_of)
        self.churn_source = "bgnbd"  # or the dealerml-churn version whose probabilities rank the dealers
        self.churn_lookback_days: int | None = None  # that churn model's population window (its own lookback)
        self.tier_thresholds: dict[str, float] = {}  # tier -> least annual value (the scorer's, fitted)
        self.records: list[dict[str, Any]] = []
        for r in table.to_dict("records"):
            self.records.append(
                {
                    "account_id": str(r["account_id"]),
                    "potential": float(r["potential"]),
                    "potential_low": _num(r.get("potential_low")),
                    "potential_high": _num(r.get("potential_high")),
                    "current_value": _num(r.get("last_period_value")),
                    "annual_value": _num(r.get("annual_value")),
                    "segment": _str(r.get("segment")),
                    "segment_reason": _str(r.get("segment_reason")),
                    "lifecycle": _str(r.get("lifecycle")),
                    "lifecycle_reason": _str(r.get("lifecycle_reason")),
                    "tier": _str(r.get("tier")),
                    "programme": _str(r.get("programme")),
                    "region": _str(r.get("region")),
                    "reasons": [r[k] for k in ("reason_1", "reason_2", "reason_3") if isinstance(r.get(k), str) and r[k]],
                }
            )
        self.position = {rec["account_id"]: i for i, rec in enumerate(self.records)}
        self.columns = {
            c: np.array([rec[c] if rec[c] is not None else "" for rec in self.records], dtype=object)
            for c in ("region", "segment", "tier")
        }
        self.values = {c: set(v.tolist()) for c, v in self.columns.items()}

    @classmethod
    def build(cls, estimator: Any, slot: Any, book: Any, cfg: Any, *, churn_champion=None) -> DealersBackend:
        """``churn_champion``: (model, "dealerml-churn/<version>") or (None, None); the loader
        passes the churn champion it already loaded, so it is read from the registry once."""
        from features.dealers import dealer_snapshot
        from serving.settings import serving_settings
        from training.data import lines_as_of

        chosen = serving_settings(cfg).dealers_cutoff
        ol = book.order_lines
        if chosen is not None:
            cut = pd.Timestamp(chosen)
        else:
            cut = pd.Timestamp(ol["order_date"].max()).normalize() + pd.Timedelta(days=1)
        hist = lines_as_of(book, cut)  # the book as it stood at the cutoff (itself at the book's end)
        hist = hist.loc[hist["order_date"] < cut]
        snap = dealer_snapshot(hist, book.accounts, book.service_events, cutoff=cut,
                               period_days=estimator.horizon_days)
        from serving.loader import set_single_thread, warn_environment

        set_single_thread(estimator)
        # churn risk as `dealerml score dealers` takes it: the churn champion scored as of the
        # same cutoff (the churn slot's champion when it is served), else 1 - BG/NBD P(alive)
        from training.dealers_churn_risk import (
            churn_horizon_note,
            churn_lookback_note,
            churn_model_lookback,
            churn_model_risk,
            load_churn_model,
        )

        churn_model, churn_version = churn_champion if churn_champion is not None else load_churn_model(
            ("champion",), on_load=lambda info: warn_environment(info.name, info.version, info.environment()))
        risk = None if churn_model is None else churn_model_risk(book, cfg, cut, churn_model)
        if churn_model is not None:  # scored on its own population (its lookback), said as score dealers says it
            who = f"{churn_version} (churn risk of /dealer_scores)"
            for note in (churn_lookback_note(cfg, cut, churn_model, who), churn_horizon_note(cfg, cut, churn_model, who)):
                if note:
                    logger.warning("%s", note)
        table = estimator.score(snap, churn_risk=risk).reset_index().rename(columns={"index": "account_id"})
        if not np.isfinite(table["potential"].to_numpy(dtype=float)).all():
            raise ValueError("the champion produced non-finite dealer potentials")
        backend = cls(model_name=slot.name, model_version=f"{slot.name}/{slot.version}", as_of=cut, table=table)
        backend.churn_source = churn_version or "bgnbd"
        backend.churn_lookback_days = None if churn_model is None else churn_model_lookback(cfg, churn_model)
        backend.tier_thresholds = tier_thresholds(estimator)
        return backend

    def summary(self) -> dict[str, Any]:
        return {
            "n_dealers": len(self.records),
            "as_of": self.as_of.date().isoformat(),
            "churn_source": self.churn_source,
            **({"churn_lookback_days": self.churn_lookback_days} if self.churn_lookback_days is not None else {}),
            "tier_thresholds": self.tier_thresholds,
            "filters": {c: sorted(x for x in v if x) for c, v in self.values.items()},
        }

    def scores(self, request: Any) -> dict[str, Any]:
        n = len(self.records)
        mask = np.ones(n, dtype=bool)
        for col in ("region", "segment", "tier"):
            wanted = getattr(request, col)
            if wanted is not None:  # the schema refuses an empty list: None = no filter
                unknown = [v for v in dict.fromkeys(wanted) if v not in self.values[col]]
                if unknown:
                    known = sorted(x for x in self.values[col] if x)
                    raise UnknownIds(col, unknown, known=len(known), known_values=known)
                mask &= np.isin(self.columns[col], list(wanted))
        missing: list[str] = []
        if request.account_ids is not None:
            # like /churn_scores: the known ids are answered and the others listed, so one dealer
            # new since the as-of date does not fail a CRM's whole batch; 404 only when none is known
            missing = [a for a in dict.fromkeys(request.account_ids) if a not in self.position]
            if len(missing) == len(set(request.account_ids)):
                raise UnknownIds("account id", missing, known=n)
            keep = np.zeros(n, dtype=bool)
            keep[[self.position[a] for a in request.account_ids if a in self.position]] = True
            mask &= keep
        hits = np.flatnonzero(mask)
        top_k = request.top_k
        if request.account_ids is not None and "top_k" not in request.model_fields_set:
            # dealers asked for by id (at most the id limit) all come back: the default top_k of
            # 50 used to drop the rest of a CRM batch of 120 ids without a word ("matched": 120)
            top_k = len(hits)
        top = hits[:top_k]
        dealers = [{"rank": int(i) + 1, **self.records[i]} for i in top]
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "as_of": self.as_of.date().isoformat(),
            "churn_source": self.churn_source,  # the churn version behind the potentials (or bgnbd)
            "matched": int(len(hits)),
            "dealers": dealers,
            "unknown_ids": missing,
        }
