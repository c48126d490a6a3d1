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
  itself), ``lgbm_positive_growth`` (the same forecast, ranked by a LightGBM estimate of
  E[max(0, next - last)]: the quantity the capture metric sums; reported, not final: it won on
  one of two synthetic validation cutoffs and lost on the other), ``last_period_value`` (forecast = last period, ranked by it), ``bgnbd_gg``
  (BG/NBD expected orders in H x Gamma-Gamma expected order value, fitted on history before C),
  ``dealer_potential_bgnbd_risk`` (the final ranking with 1 - BG/NBD P(alive) as every account's
  churn risk: what the backtest measured before it took churn risk from a churn model);
* **churn risk** of the final ranking, as ``dealerml score dealers`` serves it
  (``training.dealers_churn_risk``, whose names are importable from here too): a churn model
  (``training.churn_backtest``) fitted the way ``dealerml train churn`` fits its serving model,
  but with ``C`` as the last day of data: calibration cutoff ``C - H_churn`` (label window
  ``[C - H_churn, C)``), training label windows ending by ``C - H_churn``; so no churn label
  window reaches past ``C``. It scores the accounts that ordered in its lookback window before
  ``C`` with ``score_accounts``; the others keep 1 - BG/NBD P(alive). When the book before ``C``
  is too short for the churn model's cutoffs (or its snapshots hold one class), every account
  keeps the BG/NBD risk and ``setup.churn_source`` = ``"bgnbd"`` with the reason.

Metrics per model: ``spearman`` (rank correlation of its forecast with realized next-period
value), ``mae`` (of its forecast, currency), and ``top_decile_growth_capture``::

    capture = sum over the top 10% of accounts by the model's ranking score
                  of max(0, next_value - last_period_value)
              / sum over all accounts of max(0, next_value - last_period_value)

i.e. the share of all realized positive growth that sits in the decile the model would send
sales support to (top 10% = the ceil(0.1 n) highest scores; 1.0 = all growth captured,
0.1 = what a random decile captures on average).

``top_decile_net_growth_share`` is the other literal reading of "share of total realized
growth": *net* growth, declines included on both sides::

    net share = sum over the top decile of (next_value - last_period_value)
                / sum over all accounts of (next_value - last_period_value)

It can be negative (the decile shrank) or above 1 (the decile grew more than the whole book,
whose other accounts shrank on net); NaN when the book did not grow on net. ``oracle`` gives
both figures for the ranking by realized growth itself (the bound no model can beat; for the
net share the oracle ranks by net growth, for the capture by positive growth: the same order).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from training._config_numbers import NoBoolNumbers
from training.data import lines_as_of

# the churn risk of the ranking lives in its own module; its names stay importable from here
from training.dealers_churn_risk import (  # noqa: F401 - re-exported
    CHURN_MODEL_NAME,
    _one_class_reason,
    _score_churn,
    _too_short_reason,
    backtest_churn_risk,
    churn_model_risk,
    load_churn_model,
)
from training.errors import ConfigError, DataError

__all__ = [
    "DealersSettings", "load_settings", "top_decile_growth_capture", "top_decile_net_growth_share", "evaluate",
    "training_cutoffs", "scorer_from_settings", "fit_pipeline", "run_backtest", "promotion_evaluator",
    "backtest_churn_risk", "churn_model_risk", "load_churn_model",
]


class TrainSettings(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid")
    n_cutoffs: int = Field(6, ge=1, le=60)
    step_days: int = Field(28, ge=1, le=3650)  # ~100000 stepped the cutoffs out of pandas' dates: a traceback
    min_history_days: int = Field(60, ge=1, le=3650)
    n_estimators: int = Field(300, ge=10, le=10000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2, le=4096)
    min_child_samples: int = Field(20, ge=1, le=100000)
    quantiles: tuple[float, float] = (0.1, 0.9)
    upside_quantile: float = Field(0.75, gt=0, lt=1)
    same_season: bool = True

    @model_validator(mode="after")
    def _band_order(self):  # said when the section is read, not after the backtest's fit (as a 'small book')
        lo, hi = self.quantiles
        if not 0 < lo < self.upside_quantile < hi < 1:
            raise ValueError(f"quantiles must satisfy 0 < low < upside_quantile < high < 1; got quantiles "
                             f"{list(self.quantiles)} and upside_quantile {self.upside_quantile}")
        return self


class LifecycleSettings(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid")
    growth_pct: float = Field(0.25, gt=0, le=10)  # a fraction: 0.25 = +25%/year, at most +1000%
    decline_pct: float = Field(0.25, gt=0, lt=1)
    young_days: float = Field(180.0, ge=0, le=3650)
    overdue_ratio: float = Field(3.0, gt=0, le=100)


class DealersSettings(NoBoolNumbers):
    """The ``dealers:`` section of an experiment config (all keys optional)."""

    model_config = ConfigDict(extra="forbid")
    horizon_days: int = Field(182, ge=7, le=730)
    cutoff: str | None = None
    headroom_weight: float = Field(0.25, ge=0, le=10)  # 1e300: potentials of 300 digits, ranked by headroom alone
    peer_quantile: float = Field(0.75, gt=0, lt=1)
    min_peers: int = Field(5, ge=1, le=1000)
    high_churn_risk: float = Field(0.5, gt=0, lt=1)
    use_attributes: bool = True
    tier_thresholds: dict[str, float] | None = None
    tier_shares: dict[str, float] | None = None
    programme: dict[str, str] | None = None
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)

    @field_validator("tier_thresholds")
    @classmethod
    def _highest_first(cls, v):  # as models.dealers' TierModel needs them, said before the data load
        vals = list((v or {}).values())
        bad = {k: x for k, x in (v or {}).items() if not 0 <= x < math.inf}  # NaN fails too
        if bad:
            raise ValueError(f"tier thresholds must be finite amounts >= 0 (EUR/year); got {bad}")
        if any(a < b for a, b in zip(vals, vals[1:], strict=False)):
            raise ValueError(f"tier thresholds must be listed highest first (EUR/year); got {v}")
        return v

    @field_validator("tier_shares")
    @classmethod
    def _shares(cls, v):
        if v is not None and (not abs(sum(v.values()) - 1.0) <= 1e-6 or not all(0 <= x <= 1 for x in v.values())):
            raise ValueError(f"tier shares must be >= 0 and sum to 1; got {v} (sum {sum(v.values()):g})")
        return v

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
    except ValidationError as err:  # every bad key at once (training.config.section_errors)
        from training.config import section_errors

        raise ConfigError(section_errors(err, where, DealersSettings)) from None


# ------------------------------------------------------------------- metrics
def _top_decile_share(score, growth) -> float:
    """sum(growth[top ceil(0.1 n) by score]) / sum(growth); ties broken by account order (stable
    sort); NaN when there are no accounts or the total is not positive."""
    s = np.asarray(score, dtype=float)
    total = growth.sum()
    if len(s) == 0 or total <= 0:
        return float("nan")
    k = int(math.ceil(0.1 * len(s)))
    top = np.argsort(-np.nan_to_num(s, nan=-np.inf), kind="stable")[:k]
    return float(growth[top].sum() / total)


def top_decile_growth_capture(score, last_value, next_value) -> float:
    """Share of all realized positive growth held by the top 10% of accounts by ``score``.

    growth = next_value - last_value (currency over the period); only positive growth counts:
    ``sum(max(0, growth)[top ceil(0.1 n) by score]) / sum(max(0, growth))``. Ties in the score
    are broken by account order (stable sort). NaN when no account grew.
    """
    g = np.clip(np.asarray(next_value, dtype=float) - np.asarray(last_value, dtype=float), 0, None)
    return _top_decile_share(score, g)


def top_decile_net_growth_share(score, last_value, next_value) -> float:
    """Share of the book's total *net* realized growth held by the top 10% of accounts by ``score``.

    ``sum((next - last)[top ceil(0.1 n) by score]) / sum(next - last)``: declines count against
    both the decile and the total, so the share can be negative or above 1. Ties are broken by
    account order (stable sort). NaN when the book's total net growth is not positive.
    """
    return _top_decile_share(score, np.asarray(next_value, dtype=float) - np.asarray(last_value, dtype=float))


def evaluate(pred, score, last_value, next_value) -> dict[str, float]:
    """spearman (forecast vs realized), top_decile_growth_capture and top_decile_net_growth_share
    (by score), mae (forecast)."""
    from scipy.stats import spearmanr

    pred = np.asarray(pred, dtype=float)
    y = np.asarray(next_value, dtype=float)
    rho = spearmanr(pred, y).statistic if len(y) > 2 and np.std(pred) > 0 else float("nan")
    return {
        "spearman": float(rho),
        "top_decile_growth_capture": top_decile_growth_capture(score, last_value, y),
        "top_decile_net_growth_share": top_decile_net_growth_share(score, last_value, y),
        "mae": float(np.mean(np.abs(pred - y))),
    }


# ------------------------------------------------------------------ fitting
def training_cutoffs(book_start: pd.Timestamp, cutoff: pd.Timestamp, horizon_days: int,
                     s: TrainSettings) -> tuple[list[pd.Timestamp], int]:
    """Training cutoffs (ascending) and the training label window H_train (days).

    Every training label window ``[c, c + H_train)`` ends on or before ``cutoff``; every training
    cutoff has at least ``min_history_days`` of book before it. ``n_cutoffs`` cutoffs step back
    from ``cutoff - H_train``; with ``same_season`` up to ``n_cutoffs + 1`` more sit around
    ``cutoff - 365 days`` when the book reaches that far. Raises DataError when none fits.
    """
    span = (cutoff.normalize() - book_start.normalize()).days
    h = horizon_days
    if span - h < s.min_history_days:
        h = (span - s.min_history_days) // 2
    shortest = min(14, horizon_days)  # a shortened window keeps 14 days; a horizon under 14 days is its own
    if h < shortest:
        raise DataError(
            f"not enough history before cutoff {cutoff.date()}: the order book starts {book_start.date()} "
            f"({span} days); the dealer model needs min_history_days={s.min_history_days} plus a label "
            f"window of at least {shortest} days before the cutoff"
        )
    first = cutoff.normalize() - pd.Timedelta(days=h)
    cuts = []
    for k in range(s.n_cutoffs):
        c = first - pd.Timedelta(days=k * s.step_days)
        if (c - book_start.normalize()).days < s.min_history_days:
            break
        cuts.append(c)
    if s.same_season:
        # the same season a year earlier: cutoffs around cutoff - 365 days whose label window also
        # ends by the cutoff, so the growth the model learns is not the opposite half of the year
        for j in range(-(s.n_cutoffs // 2), s.n_cutoffs // 2 + 1):
            c = cutoff.normalize() - pd.Timedelta(days=365 - j * s.step_days)
            if c + pd.Timedelta(days=h) > cutoff.normalize() or (c - book_start.normalize()).days < s.min_history_days:
                continue
            if all(abs((c - x).days) >= 7 for x in cuts):
                cuts.append(c)
    return sorted(cuts), h


def scorer_from_settings(settings: DealersSettings, seed: int = 0):
    """An unfitted ``models.dealers.DealerScorer`` with the config's settings."""
    from models.dealers import DealerScorer

    t = settings.train
    return DealerScorer(
        horizon_days=settings.horizon_days, headroom_weight=settings.headroom_weight,
        peer_quantile=settings.peer_quantile, min_peers=settings.min_peers,
        high_churn_risk=settings.high_churn_risk, use_attributes=settings.use_attributes,
        tier_thresholds=settings.tier_thresholds, tier_shares=settings.tier_shares, programme=settings.programme,
        lifecycle=settings.lifecycle.model_dump(),
        potential_params=dict(n_estimators=t.n_estimators, learning_rate=t.learning_rate, num_leaves=t.num_leaves,
                              min_child_samples=t.min_child_samples, quantiles=tuple(t.quantiles),
                              upside_quantile=t.upside_quantile, random_state=seed),
    )


def fit_pipeline(order_lines, accounts, service_events, *, cutoff, settings: DealersSettings,
                 seed: int = 0, progress=None, template=None) -> dict:
    """Fit a ``DealerScorer`` as of ``cutoff`` from rows strictly before it.

    ``template``: an (un)fitted ``DealerScorer`` whose parameters are refitted instead of the
    ones built from ``settings`` (promotion compares two models' settings this way).

    Returns ``{"scorer", "snapshot" (as of cutoff), "train_cutoffs", "train_horizon_days",
    "n_train_rows"}``.
    """
    from features.dealers import dealer_snapshot, model_matrix
    from features.labels import next_period_value

    cutoff = pd.Timestamp(cutoff)
    H = settings.horizon_days
    hist = order_lines.loc[order_lines["order_date"] < cutoff]
    if hist.empty:
        raise DataError(f"the order book has no order before cutoff {cutoff.date()}")
    cuts, h_train = training_cutoffs(hist["order_date"].min(), cutoff, H, settings.train)
    if not cuts:
        raise DataError(f"no training cutoff fits before {cutoff.date()} with the dealers.train settings")
    frames, ys, gs = [], [], []
    for c in cuts:
        snap = dealer_snapshot(hist, accounts, service_events, cutoff=c, period_days=H)
        lab = next_period_value(hist, cutoff=c, horizon_days=h_train, require_observable=False)
        y = lab.set_index(lab["account_id"].astype(str))["next_value"].reindex(snap.index).fillna(0.0)
        # growth on windows of the same length: [c, c + h) against [c - h, c)
        w = hist.loc[(hist["order_date"] >= c - pd.Timedelta(days=h_train)) & (hist["order_date"] < c)]
        last = w.groupby(w["account_id"].astype(str))["line_amount"].sum().reindex(snap.index).fillna(0.0)
        frames.append(model_matrix(snap))
        ys.append(y.to_numpy() * (H / h_train))
        gs.append(np.clip(y.to_numpy() - last.to_numpy(), 0, None) * (H / h_train))
        if progress:
            progress(c)
    X = pd.concat(frames, ignore_index=True)
    for col in X.columns:  # categoricals may differ in categories across cutoffs
        if any(isinstance(f[col].dtype, pd.CategoricalDtype) for f in frames if col in f):
            X[col] = X[col].astype(object).astype("category")
    snap_now = dealer_snapshot(hist, accounts, service_events, cutoff=cutoff, period_days=H)
    if template is not None:
        from models.dealers import DealerScorer

        scorer = DealerScorer(**template._params())
    else:
        scorer = scorer_from_settings(settings, seed)
    try:
        scorer = scorer.fit(X, np.concatenate(ys), snap_now, positive_growth=np.concatenate(gs))
    except ValueError as exc:  # too small a book (one account ...): a data problem, said with its size
        raise DataError(
            f"dealers model as of {cutoff.date()}: {exc} ({len(snap_now):,} accounts x {len(cuts)} training "
            f"cutoffs = {len(X):,} rows); use an order book with more accounts or more dealers.train.n_cutoffs"
        ) from None
    return {"scorer": scorer, "snapshot": snap_now, "train_cutoffs": [str(c.date()) for c in cuts],
            "train_horizon_days": int(h_train), "n_train_rows": int(len(X))}


def run_backtest(book, *, cutoff, settings: DealersSettings, seed: int = 0, progress=None,
                 churn=None) -> dict:
    """The time-ordered backtest at ``cutoff``; see the module docstring.

    ``churn``: the churn model's settings: a ``ChurnSettings``, an experiment config (its
    ``churn:`` section) or that section as a dict (``training.churn_backtest.churn_settings``);
    None = the defaults of ``ChurnSettings``.

    Returns ``{"final", "metrics", "setup" (where the churn risk came from), "by_segment",
    "by_region" (regions with >= 30 accounts), "segments_check", "n_accounts", ...}`` and the
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
            f"of the order book ({last_day.date()}); choose an earlier --cutoff or a shorter dealers.horizon_days "
            "(--horizon-days on backtest dealers)"
        )
    # features as the book stood at the cutoff (no later cancellation nets them); the outcome reads ol
    fitted = fit_pipeline(lines_as_of(book, cutoff), book.accounts, book.service_events, cutoff=cutoff,
                          settings=settings, seed=seed, progress=progress)
    scorer, snap = fitted["scorer"], fitted["snapshot"]
    risk, setup, churn_fit = backtest_churn_risk(book, cutoff, churn, seed=seed)
    fitted["churn"] = churn_fit
    table = scorer.score(snap, churn_risk=risk)
    lab = next_period_value(ol, cutoff=cutoff, horizon_days=H)
    realized = lab.set_index(lab["account_id"].astype(str))["next_value"]
    y = realized.reindex(table.index).fillna(0.0)
    table["next_value"] = y
    last = table["last_period_value"]
    # the same ranking with 1 - BG/NBD P(alive) for every account (the backtest's churn risk before
    # it fitted a churn model), in its own order so its ties break as they did then
    bg = scorer.score(snap) if risk is not None else table
    metrics = {
        "dealer_potential": evaluate(table["expected"], table["potential"], last, y),
        "dealer_potential_bgnbd_risk": evaluate(bg["expected"], bg["potential"], bg["last_period_value"],
                                                realized.reindex(bg.index).fillna(0.0)),
        "lgbm_expected_value": evaluate(table["expected"], table["expected"], last, y),
        "last_period_value": evaluate(last, last, last, y),
        "bgnbd_gg": evaluate(table["bgnbd_gg_value"], table["bgnbd_gg_value"], last, y),
    }
    if "expected_positive_growth" in table:  # the alternative ranking: E[max(0, growth)] (not final)
        metrics["lgbm_positive_growth"] = evaluate(table["expected"], table["expected_positive_growth"], last, y)
    setup["churn_risk_accounts"] = {str(k): int(v) for k, v in table["churn_source"].value_counts().items()}
    def _slices(col: str, min_n: int) -> dict:
        out = {}
        for key, g in table.groupby(col):
            if len(g) >= min_n:
                out[str(key)] = {
                    "n": int(len(g)),
                    "dealer_potential": evaluate(g["expected"], g["potential"], g["last_period_value"], g["next_value"]),
                    "last_period_value": evaluate(g["last_period_value"], g["last_period_value"],
                                                  g["last_period_value"], g["next_value"]),
                }
        return out

    by_segment = _slices("segment", 10)
    by_region = _slices("region", 30)
    check = cluster_view(scorer.segments_.standardize(snap), table["segment"].reindex(snap.index), random_state=seed)
    check.pop("kmeans_labels", None)
    growth = np.clip(y - last, 0, None)
    inside = (table["potential_low"] <= table["potential"]) & (table["potential"] <= table["potential_high"])
    band_cover = float(((table["expected_low"] <= y) & (y <= table["expected_high"])).mean())
    return {
        "final": "dealer_potential",
        "metrics": metrics,
        "setup": setup,
        "cutoff": str(cutoff.date()),
        "horizon_days": H,
        "n_accounts": int(len(table)),
        "total_positive_growth": float(growth.sum()),
        "total_net_growth": float((y - last).sum()),
        "oracle": {  # ranking by realized growth: the upper bound of both readings
            "top_decile_growth_capture": top_decile_growth_capture(y - last, last, y),
            "top_decile_net_growth_share": top_decile_net_growth_share(y - last, last, y),
        },
        "train_cutoffs": fitted["train_cutoffs"],
        "train_horizon_days": fitted["train_horizon_days"],
        "n_train_rows": fitted["n_train_rows"],
        "band_coverage": band_cover,
        "band_ordered": bool(inside.all()),
        "by_segment": by_segment,
        "by_region": by_region,
        "segments_check": check,
        "lifecycle_counts": {str(k): int(v) for k, v in table["lifecycle"].value_counts().items()},
        "tier_counts": {str(k): int(v) for k, v in table["tier"].value_counts().items()},
        "table": table,
        "fitted": fitted,
    }


def promotion_evaluator(cfg, book=None):
    """``evaluate(estimator) -> metrics`` for ``dealerml promote dealers``.

    The latest backtest: cutoff = the day after the book's last order minus ``horizon_days``.
    Each candidate's *settings* are refitted on the rows before that cutoff (a model trained
    on the whole book has seen the outcome window, so scoring it there would flatter it), then
    its ``dealer_potential`` metrics are returned (spearman, top_decile_growth_capture, mae).
    The ranking uses the churn risk the backtest and the service use (``backtest_churn_risk``:
    a churn model fitted on labels that end by the cutoff, fitted once and shared by every
    candidate; 1 - BG/NBD P(alive) when none fits).
    Use: ``dealerml promote dealers --evaluator training.dealers_backtest:promotion_evaluator``.
    """
    from features.labels import next_period_value

    if book is None:
        from training.data import load_order_book

        book = load_order_book(cfg)
    settings = load_settings(cfg.dealers)
    ol = book.order_lines
    H = settings.horizon_days
    cutoff = ol["order_date"].max().normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=H)
    lab = next_period_value(ol, cutoff=cutoff, horizon_days=H)
    realized = lab.set_index(lab["account_id"].astype(str))["next_value"]
    risk_cache: dict[str, Any] = {}

    def evaluate(estimator) -> dict[str, float]:
        if getattr(estimator, "horizon_days", H) != H:
            raise ConfigError(f"the model's horizon_days ({estimator.horizon_days}) differs from the config's "
                              f"dealers.horizon_days ({H}); promotion compares models on the same period")
        fitted = fit_pipeline(lines_as_of(book, cutoff), book.accounts, book.service_events, cutoff=cutoff,
                              settings=settings, seed=cfg.seed, template=estimator)
        if "risk" not in risk_cache:  # same for every candidate: fitted once
            risk_cache["risk"], risk_cache["setup"], _ = backtest_churn_risk(book, cutoff, cfg, seed=cfg.seed)
        t = fitted["scorer"].score(fitted["snapshot"], churn_risk=risk_cache["risk"])
        y = realized.reindex(t.index).fillna(0.0)
        out: dict[str, Any] = evaluate_metrics(t, y)
        # what promote prints under the decision (as churn's evaluator says it): where it measured, and
        # the ranking by last period's value on the same accounts, which the served ranking has to beat
        last = t["last_period_value"]
        out["baselines"] = {"last_period_value": _metrics(last, last, last, y)}
        out["cutoff"] = str(cutoff.date())
        out["label_window"] = f"[{cutoff.date()}, {(cutoff + pd.Timedelta(days=H)).date()})"
        out["refit"] = f"settings refitted on the rows before {cutoff.date()}"
        return out

    evaluate.churn = risk_cache  # {"risk", "setup"} once called: where the ranking's churn risk came from
    return evaluate


_metrics = evaluate  # promotion_evaluator's own ``evaluate`` hides the module's


def evaluate_metrics(table: pd.DataFrame, y) -> dict[str, float]:
    """``dealer_potential`` metrics of a score table against realized next-period value ``y``."""
    return evaluate(table["expected"], table["potential"], table["last_period_value"], y)
