"""Dealer potential: settings, as-of snapshots, the time-ordered backtest and the score table.

The backtest at cutoff ``C`` with outcome window ``H`` days:

* **population**: accounts with an order before ``C``;
* **realized**: ``next_value`` = value in ``[C, C + H)``; ``last_period_value`` = value in
  ``[C - H, C)``; realized growth = next - last;
* **training** (final model): snapshots at earlier cutoffs whose label windows end on or
  before ``C`` (never inside the test window). When the book has fewer than
  ``H + min_history_days`` days before ``C``, the training label window is shortened to
  ``H_train = (C - book start - min_history_days) / 2`` days and the label scaled by
  ``H / H_train`` (the value *rate* is learned); the settings and the run record this;
* **models** compared on the same accounts: ``dealer_potential`` (final: LightGBM expected
  value, ranked by the potential score), ``lgbm_expected_value`` (the same forecast ranked by
  itself), ``last_period_value`` (forecast = last period, ranked by it), ``bgnbd_gg``
  (BG/NBD expected orders in H x Gamma-Gamma expected order value, fitted on history before C).

Metrics per model: ``spearman`` (rank correlation of its forecast with realized next-period
value), ``mae`` (of its forecast, currency), and ``top_decile_growth_capture``::

    capture = sum over the top 10% of accounts by the model's ranking score
                  of max(0, next_value - last_period_value)
              / sum over all accounts of max(0, next_value - last_period_value)

i.e. the share of all realized positive growth that sits in the decile the model would send
sales support to (top 10% = the ceil(0.1 n) highest scores; 1.0 = all growth captured,
0.1 = what a random decile captures on average).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.errors import ConfigError, DataError

__all__ = [
    "DealersSettings", "load_settings", "top_decile_growth_capture", "evaluate",
    "build_snapshot", "training_cutoffs", "fit_pipeline", "score_snapshot", "run_backtest",
]


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_cutoffs: int = Field(6, ge=1, le=60)
    step_days: int = Field(28, ge=1)
    min_history_days: int = Field(60, ge=1)
    n_estimators: int = Field(300, ge=10)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(20, ge=1)
    quantiles: tuple[float, float] = (0.1, 0.9)
    upside_quantile: float = Field(0.75, gt=0, lt=1)


class LifecycleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    growth_pct: float = Field(0.25, gt=0)
    decline_pct: float = Field(0.25, gt=0, lt=1)
    young_days: float = Field(180.0, ge=0)
    overdue_ratio: float = Field(3.0, gt=0)


class DealersSettings(BaseModel):
    """The ``dealers:`` section of an experiment config (all keys optional)."""

    model_config = ConfigDict(extra="forbid")
    horizon_days: int = Field(182, ge=7, le=730)
    cutoff: str | None = None
    headroom_weight: float = Field(0.25, ge=0)
    peer_quantile: float = Field(0.75, gt=0, lt=1)
    min_peers: int = Field(5, ge=1)
    high_churn_risk: float = Field(0.5, gt=0, lt=1)
    use_attributes: bool = True
    tier_thresholds: dict[str, float] | None = None
    tier_shares: dict[str, float] | None = None
    programme: dict[str, str] | None = None
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)

    @field_validator("programme")
    @classmethod
    def _levels(cls, v):
        if v is not None:
            bad = {k: x for k, x in v.items() if x not in ("gold", "silver", "bronze")}
            if bad:
                raise ValueError(f"programme levels must be gold, silver or bronze; got {bad}")
        return v


def load_settings(section: dict[str, Any] | None, *, where: str = "dealers") -> DealersSettings:
    """Validate the ``dealers:`` section; ConfigError naming the key and the value."""
    try:
        return DealersSettings.model_validate(section or {})
    except ValidationError as err:
        lines = [f"invalid '{where}' section"]
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"  key '{where}.{loc}': {msg}; got {e.get('input')!r}")
        raise ConfigError("\n".join(lines)) from None


# ------------------------------------------------------------------- metrics
def top_decile_growth_capture(score, last_value, next_value) -> float:
    """Share of all realized positive growth held by the top 10% of accounts by ``score``.

    growth = next_value - last_value (currency over the period); only positive growth counts:
    ``sum(max(0, growth)[top ceil(0.1 n) by score]) / sum(max(0, growth))``. Ties in the score
    are broken by account order (stable sort). NaN when no account grew.
    """
    s = np.asarray(score, dtype=float)
    g = np.clip(np.asarray(next_value, dtype=float) - np.asarray(last_value, dtype=float), 0, None)
    total = g.sum()
    if len(s) == 0 or total <= 0:
        return float("nan")
    k = int(math.ceil(0.1 * len(s)))
    top = np.argsort(-np.nan_to_num(s, nan=-np.inf), kind="stable")[:k]
    return float(g[top].sum() / total)


def evaluate(pred, score, last_value, next_value) -> dict[str, float]:
    """spearman (forecast vs realized), top_decile_growth_capture (by score), mae (forecast)."""
    from scipy.stats import spearmanr

    pred = np.asarray(pred, dtype=float)
    y = np.asarray(next_value, dtype=float)
    rho = spearmanr(pred, y).statistic if len(y) > 2 and np.std(pred) > 0 else float("nan")
    return {
        "spearman": float(rho),
        "top_decile_growth_capture": top_decile_growth_capture(score, last_value, y),
        "mae": float(np.mean(np.abs(pred - y))),
    }


# ------------------------------------------------------------------ snapshots
_DROP = {"cat_share_max_drop_category", "label_end", "next_value", "history_days", "cutoff"}


def build_snapshot(order_lines: pd.DataFrame, accounts: pd.DataFrame | None,
                   service_events: pd.DataFrame | None, *, cutoff, period_days: int) -> pd.DataFrame:
    """As-of features of every account with an order before ``cutoff`` (index ``account_id``).

    ``features.accounts.account_features`` joined with the dealer behaviour columns of
    ``features.dealers.dealer_features`` (the latter's names win where both define one).
    """
    from features.accounts import account_features
    from features.dealers import dealer_features

    base = account_features(order_lines, accounts, service_events, cutoff=cutoff).set_index("account_id")
    base.index = base.index.astype(str)
    mine = dealer_features(order_lines, accounts, cutoff=cutoff, period_days=period_days)
    keep = base.drop(columns=[c for c in mine.columns if c in base.columns and c not in ("region", "channel_type")])
    mine = mine.drop(columns=["region", "channel_type"])
    return keep.join(mine, how="inner")


def model_matrix(snapshot: pd.DataFrame) -> pd.DataFrame:
    """Columns the regressor reads: numeric features and the categorical region / channel type."""
    cols = []
    for c in snapshot.columns:
        if c in _DROP:
            continue
        dt = snapshot[c].dtype
        if isinstance(dt, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt):
            cols.append(c)
    X = snapshot[cols].copy()
    for c in X.columns:
        if not isinstance(X[c].dtype, pd.CategoricalDtype):
            X[c] = X[c].astype(float)
    return X


def training_cutoffs(book_start: pd.Timestamp, cutoff: pd.Timestamp, horizon_days: int,
                     s: TrainSettings) -> tuple[list[pd.Timestamp], int]:
    """Training cutoffs (ascending) and the training label window H_train (days).

    Every training label window ``[c, c + H_train)`` ends on or before ``cutoff``; every training
    cutoff has at least ``min_history_days`` of book before it. Raises DataError when none fits.
    """
    span = (cutoff.normalize() - book_start.normalize()).days
    h = horizon_days
    if span - h < s.min_history_days:
        h = (span - s.min_history_days) // 2
    if h < 14:
        raise DataError(
            f"not enough history before cutoff {cutoff.date()}: the order book starts {book_start.date()} "
            f"({span} days); the dealer model needs min_history_days={s.min_history_days} plus a label "
            f"window of at least 14 days before the cutoff"
        )
    first = cutoff.normalize() - pd.Timedelta(days=h)
    cuts = []
    for k in range(s.n_cutoffs):
        c = first - pd.Timedelta(days=k * s.step_days)
        if (c - book_start.normalize()).days < s.min_history_days:
            break
        cuts.append(c)
    return sorted(cuts), h


def _bgnbd_gg(snap: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """BG/NBD + Gamma-Gamma expected value over the horizon, P(alive), fitted params."""
    from models.bgnbd import BGNBD
    from models.gamma_gamma import GammaGamma

    x = snap["bgnbd_frequency"].to_numpy(float)
    tx = snap["bgnbd_recency"].to_numpy(float)
    T = np.maximum(snap["bgnbd_T"].to_numpy(float), tx)
    bg = BGNBD(penalizer=0.001).fit(x, tx, T)
    n_exp = bg.expected_purchases(float(horizon_days), x, tx, T)
    alive = bg.prob_alive(x, tx, T)
    m = snap["bgnbd_monetary"].to_numpy(float)
    gg = GammaGamma(penalizer=0.001).fit(x, m)
    spend = gg.conditional_expected_value(x, np.where(x > 0, m, 0.0))
    return np.nan_to_num(n_exp * spend), alive, {"bgnbd": bg.params_, "gamma_gamma": gg.params_}


def fit_pipeline(order_lines, accounts, service_events, *, cutoff, settings: DealersSettings,
                 seed: int = 0, progress=None) -> dict:
    """Fit everything as of ``cutoff`` (training labels strictly before it).

    Returns ``{"potential": DealerPotential, "segments": SegmentModel, "tiers": TierModel,
    "train_cutoffs": [...], "train_horizon_days": H_train, "n_train_rows": n}``.
    """
    from features.labels import next_period_value
    from models.potential import DealerPotential
    from models.segments import SegmentModel, TierModel

    cutoff = pd.Timestamp(cutoff)
    H = settings.horizon_days
    book_start = order_lines["order_date"].min()
    cuts, h_train = training_cutoffs(book_start, cutoff, H, settings.train)
    if not cuts:
        raise DataError(f"no training cutoff fits before {cutoff.date()} with the dealers.train settings")
    frames, ys = [], []
    hist = order_lines.loc[order_lines["order_date"] < cutoff]
    for c in cuts:
        snap = build_snapshot(hist, accounts, service_events, cutoff=c, period_days=H)
        lab = next_period_value(hist, cutoff=c, horizon_days=h_train, require_observable=False)
        y = lab.set_index(lab["account_id"].astype(str))["next_value"].reindex(snap.index).fillna(0.0)
        frames.append(model_matrix(snap))
        ys.append(y.to_numpy() * (H / h_train))
        if progress:
            progress(c)
    X = pd.concat(frames, ignore_index=True)
    for c in X.columns:  # categoricals may differ in categories across cutoffs
        if any(isinstance(f[c].dtype, pd.CategoricalDtype) for f in frames if c in f):
            X[c] = X[c].astype(object).astype("category")
    y = np.concatenate(ys)
    t = settings.train
    pot = DealerPotential(n_estimators=t.n_estimators, learning_rate=t.learning_rate, num_leaves=t.num_leaves,
                          min_child_samples=t.min_child_samples, quantiles=tuple(t.quantiles),
                          upside_quantile=t.upside_quantile,
                          random_state=seed).fit(X, y)
    snap_now = build_snapshot(hist, accounts, service_events, cutoff=cutoff, period_days=H)
    seg = SegmentModel(use_attributes=settings.use_attributes).fit(snap_now)
    tiers = _tier_model(settings).fit(snap_now["annual_value"])
    return {"potential": pot, "segments": seg, "tiers": tiers, "train_cutoffs": [str(c.date()) for c in cuts],
            "train_horizon_days": int(h_train), "n_train_rows": int(len(X))}


def _tier_model(settings: DealersSettings):
    from models.segments import DEFAULT_PROGRAMME, DEFAULT_TIER_SHARES, TierModel

    return TierModel(thresholds=settings.tier_thresholds, shares=settings.tier_shares or dict(DEFAULT_TIER_SHARES),
                     programme=settings.programme or dict(DEFAULT_PROGRAMME))


def score_snapshot(order_lines, accounts, service_events, *, cutoff, fitted: dict,
                   settings: DealersSettings, churn_risk: pd.Series | None = None) -> pd.DataFrame:
    """The dealer score table as of ``cutoff`` (one row per account, index ``account_id``).

    Columns: potential, potential_low, potential_high, expected, expected_low, upside, expected_high,
    expected_growth, last_period_value, annual_value, headroom, peer_value, peer_group, churn_risk,
    churn_risk_source, bgnbd_gg_value, segment, segment_source, segment_reason, lifecycle,
    lifecycle_reason, tier, programme, region, reason_1..3.
    """
    import math as _m

    from models.potential import explain, peer_headroom, potential_score
    from models.segments import LifecycleRules, lifecycle_stage

    cutoff = pd.Timestamp(cutoff)
    H = settings.horizon_days
    hist = order_lines.loc[order_lines["order_date"] < cutoff]
    snap = build_snapshot(hist, accounts, service_events, cutoff=cutoff, period_days=H)
    if snap.empty:
        raise DataError(f"no account has an order before cutoff {cutoff.date()}")
    X = model_matrix(snap)
    pot = fitted["potential"]
    pred = pot.predict(X)
    gg_value, alive, _ = _bgnbd_gg(snap, H)
    table = pd.DataFrame(index=snap.index)
    table["expected"] = pred["expected"]
    table["expected_low"] = pred["low"]
    table["expected_high"] = pred["high"]
    table["upside"] = pred["upside"]
    table["last_period_value"] = snap["last_period_value"].astype(float)
    table["annual_value"] = snap["annual_value"].astype(float)
    table["bgnbd_gg_value"] = gg_value
    if churn_risk is not None:
        table["churn_risk"] = churn_risk.reindex(table.index).astype(float)
        table["churn_risk_source"] = np.where(table["churn_risk"].notna(), "churn model", "bgnbd")
        table["churn_risk"] = table["churn_risk"].fillna(pd.Series(1.0 - alive, index=table.index))
    else:
        table["churn_risk"] = 1.0 - alive
        table["churn_risk_source"] = "bgnbd"
    segs = fitted["segments"].predict(snap)
    table = table.join(segs)
    region = snap["region"].astype(object).fillna("unknown") if "region" in snap else pd.Series("unknown", index=snap.index)
    table["region"] = region.astype(str)
    head = peer_headroom(table["last_period_value"], table["segment"], table["region"],
                         quantile=settings.peer_quantile, min_peers=settings.min_peers)
    table = table.join(head)
    w = settings.headroom_weight
    table["expected_growth"] = table["expected"] - table["last_period_value"]
    table["potential"] = potential_score(table["upside"], table["headroom"], table["churn_risk"], headroom_weight=w)
    table["potential_low"] = potential_score(table["expected_low"], table["headroom"], table["churn_risk"],
                                             headroom_weight=w)
    table["potential_high"] = potential_score(table["expected_high"], table["headroom"], table["churn_risk"],
                                              headroom_weight=w)
    lc = settings.lifecycle
    rules = LifecycleRules(growth_log_ratio=_m.log1p(lc.growth_pct), decline_log_ratio=_m.log1p(-lc.decline_pct),
                           young_days=lc.young_days, overdue_ratio=lc.overdue_ratio)
    table = table.join(lifecycle_stage(snap, rules))
    table = table.join(fitted["tiers"].predict(snap["annual_value"]))
    contrib = pot.contributions(X)
    table = table.join(explain(X, contrib, table, headroom_weight=w, high_risk=settings.high_churn_risk))
    return table.sort_values("potential", ascending=False)


def run_backtest(book, *, cutoff, settings: DealersSettings, seed: int = 0, progress=None) -> dict:
    """The time-ordered backtest at ``cutoff``; see the module docstring.

    Returns ``{"final", "metrics", "by_segment", "segments_check", "n_accounts", ...}`` and the
    score table under ``"table"`` (not JSON; callers drop it).
    """
    from features.labels import next_period_value
    from models.segments import cluster_view

    cutoff = pd.Timestamp(cutoff)
    ol = book.order_lines
    H = settings.horizon_days
    last_day = ol["order_date"].max()
    if cutoff + pd.Timedelta(days=H) > last_day.normalize() + pd.Timedelta(days=1):
        raise DataError(
            f"the outcome window [{cutoff.date()}, {(cutoff + pd.Timedelta(days=H)).date()}) runs past the end "
            f"of the order book ({last_day.date()}); choose an earlier --cutoff or a shorter --horizon-days"
        )
    fitted = fit_pipeline(ol, book.accounts, book.service_events, cutoff=cutoff, settings=settings,
                          seed=seed, progress=progress)
    table = score_snapshot(ol, book.accounts, book.service_events, cutoff=cutoff, fitted=fitted, settings=settings)
    lab = next_period_value(ol, cutoff=cutoff, horizon_days=H)
    y = lab.set_index(lab["account_id"].astype(str))["next_value"].reindex(table.index).fillna(0.0)
    table["next_value"] = y
    last = table["last_period_value"]
    metrics = {
        "dealer_potential": evaluate(table["expected"], table["potential"], last, y),
        "lgbm_expected_value": evaluate(table["expected"], table["expected"], last, y),
        "last_period_value": evaluate(last, last, last, y),
        "bgnbd_gg": evaluate(table["bgnbd_gg_value"], table["bgnbd_gg_value"], last, y),
    }
    by_segment = {}
    for seg, g in table.groupby("segment"):
        if len(g) >= 10:
            by_segment[str(seg)] = {
                "n": int(len(g)),
                "dealer_potential": evaluate(g["expected"], g["potential"], g["last_period_value"], g["next_value"]),
                "last_period_value": evaluate(g["last_period_value"], g["last_period_value"],
                                              g["last_period_value"], g["next_value"]),
            }
    seg_model = fitted["segments"]
    hist = ol.loc[ol["order_date"] < cutoff]
    snap = build_snapshot(hist, book.accounts, book.service_events, cutoff=cutoff, period_days=H)
    check = cluster_view(seg_model.standardize(snap), table["segment"].reindex(snap.index), random_state=seed)
    check.pop("kmeans_labels", None)
    growth = np.clip(y - last, 0, None)
    inside = (table["potential_low"] <= table["potential"]) & (table["potential"] <= table["potential_high"])
    band_cover = float(((table["expected_low"] <= y) & (y <= table["expected_high"])).mean())
    return {
        "final": "dealer_potential",
        "metrics": metrics,
        "cutoff": str(cutoff.date()),
        "horizon_days": H,
        "n_accounts": int(len(table)),
        "total_positive_growth": float(growth.sum()),
        "train_cutoffs": fitted["train_cutoffs"],
        "train_horizon_days": fitted["train_horizon_days"],
        "n_train_rows": fitted["n_train_rows"],
        "band_coverage": band_cover,
        "band_ordered": bool(inside.all()),
        "by_segment": by_segment,
        "segments_check": check,
        "lifecycle_counts": {str(k): int(v) for k, v in table["lifecycle"].value_counts().items()},
        "tier_counts": {str(k): int(v) for k, v in table["tier"].value_counts().items()},
        "table": table,
        "fitted": fitted,
    }
