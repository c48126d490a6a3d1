"""Time-ordered churn backtest: the LightGBM model beside the recency rule and BG/NBD.

Cutoffs for a test cutoff ``T`` and horizon ``H`` days (all label windows half-open):

- test:        features before ``T``,   label window ``[T, T+H)``;
- calibration: cutoff ``T - H``,       label window ``[T-H, T)`` (ends where test begins);
- training:    cutoffs ``T - H - Ht - k*step`` (k = 0..n-1) labelled over ``Ht`` days
               (``train_horizon_days``, default ``H``), so label windows end by ``T - H``.
               A shorter ``Ht`` (60 for H = 90 on Online Retail) moves the training
               snapshots closer to the scored period and gives them more history; the booster
               then ranks by "no order in Ht days" and the calibrator, fitted on H-day labels,
               turns its score into P(no order in H days).

So the calibration and test label windows never overlap anything the booster was trained
on, and the calibrator never sees the test period. Population at each cutoff: accounts
with an order in the ``lookback_days`` before it (``features.labels.churn_labels``).

Metrics (class 1 = churned, i.e. no order in the horizon): ROC AUC, PR AUC (average
precision), Brier score, expected calibration error over **10 equal-frequency bins**
(bins of ~n/10 accounts sorted by probability; weighted mean |observed rate - mean p|),
precision and lift of the top 10% by risk. Overall and per slice (region, channel type).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from training.data import check_cutoff_in_book, lines_as_of
from training.errors import ConfigError, DataError

__all__ = [
    "ChurnSettings",
    "TierSettings",
    "churn_settings",
    "churn_cutoffs",
    "snapshot",
    "recency_score",
    "bgnbd_churn_probability",
    "ece",
    "churn_metrics",
    "run_backtest",
    "BacktestResult",
    "FINAL_NAME",
    "last_orders",
    "dropped_unknown_accounts",
]

FINAL_NAME = "lightgbm"


class TierSettings(BaseModel):
    """Risk tiers from the expected value of a call and the call capacity.

    ``expected_value = probability x revenue_at_risk x save_rate - contact_cost`` where
    ``revenue_at_risk`` is the account's last-365-day revenue scaled to the horizon.
    high   = positive expected value, probability >= ``high_probability``, and within the
             capacity (top ``capacity_per_run`` by expected value, and at most
             ``capacity_per_group`` per value of the ``capacity_by`` column, e.g. the
             account manager, when given);
    medium = positive expected value and probability >= ``medium_probability`` (incl.
             accounts over capacity);
    low    = the rest.

    ``capacity_by`` and ``capacity_per_group`` go together: one without the other is refused
    when the section is validated (the config load), not first at scoring time.
    """

    model_config = ConfigDict(extra="forbid")
    high_probability: float = Field(0.5, ge=0, le=1)
    medium_probability: float = Field(0.25, ge=0, le=1)
    contact_cost: float = Field(50.0, ge=0)
    save_rate: float = Field(1.0, gt=0, le=1)
    capacity_per_run: int = Field(100, ge=0)
    capacity_by: str | None = None
    capacity_per_group: int | None = Field(None, ge=0)

    @model_validator(mode="wrap")
    @classmethod
    def _group_cap_needs_both_keys(cls, data: Any, handler: Any) -> TierSettings:
        # a wrap validator, so the problem is listed beside the section's other bad keys (an
        # "after" validator would only run once they were fixed)
        try:
            out = handler(data)
        except ValidationError as err:
            raw = data if isinstance(data, dict) else {}
            problem = cls.group_capacity_problem(raw.get("capacity_by"), raw.get("capacity_per_group"))
            if problem is None:
                raise
            mine = InitErrorDetails(type=PydanticCustomError("group_capacity", problem), loc=(), input=data)
            raise ValidationError.from_exception_data(err.title, [*err.errors(include_url=False), mine]) from None
        problem = cls.group_capacity_problem(out.capacity_by, out.capacity_per_group)
        if problem:
            raise PydanticCustomError("group_capacity", problem)
        return out

    @staticmethod
    def group_capacity_problem(by: str | None, per: int | None) -> str | None:
        """What is wrong when only one of the per-group cap's two keys is set (None if nothing)."""
        if per is not None and not by:
            return (f"churn.tiers.capacity_per_group is {per} but churn.tiers.capacity_by is not set: name the "
                    "column to cap by (e.g. capacity_by: account_manager, an accounts column), or remove "
                    "capacity_per_group")
        if by and per is None:
            return (f"churn.tiers.capacity_by is {by!r} but churn.tiers.capacity_per_group is not set: give the "
                    f"most high-risk accounts (and so alerts) per {by} and run, e.g. capacity_per_group: 10, or "
                    "remove capacity_by")
        return None


class ChurnSettings(BaseModel):
    """The ``churn:`` section of an experiment config."""

    model_config = ConfigDict(extra="forbid")
    horizon_days: int = Field(90, ge=1, le=730)
    lookback_days: int = Field(365, ge=1)
    n_train_cutoffs: int = Field(6, ge=1, le=60)
    train_horizon_days: int | None = Field(None, ge=1, le=730)  # label window of training snapshots (None = horizon_days)
    train_step_days: int = Field(30, ge=1)
    min_history_days: int = Field(30, ge=0)
    calibration: Literal["isotonic", "sigmoid", "none"] = "isotonic"
    # final score = booster blended with BG/NBD in log-odds, weight chosen on the calibration
    # slice (models.churn.ChurnModel, blend="bgnbd"); "none" = the booster alone
    blend: Literal["none", "bgnbd"] = "bgnbd"
    bgnbd_penalizer: float = Field(0.001, ge=0)
    slices: list[str] = Field(default_factory=lambda: ["region", "channel_type"])
    min_slice_size: int = Field(30, ge=1)
    model: dict[str, Any] = Field(default_factory=dict)
    tiers: TierSettings = Field(default_factory=TierSettings)
    scores_table: str = "churn_scores"
    alerts_table: str = "churn_alerts"


def churn_settings(cfg: Any) -> ChurnSettings:
    """Validate ``cfg.churn`` (an ExperimentConfig, or a plain dict)."""
    section = cfg if isinstance(cfg, dict) else (getattr(cfg, "churn", None) or {})
    try:
        return ChurnSettings(**section)
    except ValidationError as exc:  # every bad key at once (training.config.section_errors)
        from training.config import section_errors

        src = getattr(cfg, "config_path", None) or "config"
        raise ConfigError(section_errors(exc, "churn", ChurnSettings, src=src)) from None


# ----------------------------------------------------------------- cutoffs
def churn_cutoffs(
    test_cutoff, settings: ChurnSettings, *, first_date=None, last_date=None, horizon_days: int | None = None
) -> dict[str, Any]:
    """Training / calibration / test cutoffs for one backtest (see module docstring).

    ``last_date`` (the book's last order, optional) only sharpens the message when nothing fits."""
    H = horizon_days or settings.horizon_days
    Ht = settings.train_horizon_days or H
    test = pd.Timestamp(test_cutoff).normalize()
    cal = test - pd.Timedelta(days=H)
    train = [cal - pd.Timedelta(days=Ht + k * settings.train_step_days) for k in range(settings.n_train_cutoffs)]
    if first_date is not None:
        earliest = pd.Timestamp(first_date).normalize() + pd.Timedelta(days=settings.min_history_days)
        train = [c for c in train if c >= earliest]
        if cal < earliest:
            train = []
    if not train:
        start = pd.Timestamp(first_date).date() if first_date is not None else "?"
        head = (f"no training cutoff fits before the calibration cutoff {cal.date()} with "
                f"{settings.min_history_days} days of history (data start {start})")
        need = 2 * H + Ht + settings.min_history_days
        if first_date is not None and last_date is not None:
            first = pd.Timestamp(first_date).normalize()
            end = pd.Timestamp(last_date).normalize() + pd.Timedelta(days=1)
            span = (end - first).days
            if span < need:
                raise DataError(
                    f"{head}: the order book is too short for a {H}-day churn horizon. It spans "
                    f"{first.date()} .. {(end - pd.Timedelta(days=1)).date()} ({span} days); a churn backtest "
                    f"needs at least {need} days: {settings.min_history_days} days of history "
                    f"(churn.min_history_days) + {Ht} days of training labels + {H} days of calibration "
                    f"labels + {H} days of test labels. Use a longer order book or a shorter "
                    f"--horizon-days (churn.horizon_days)"
                )
            latest = end - pd.Timedelta(days=H)
            raise DataError(
                f"{head}; pick a later --cutoff than {test.date()} (the latest whose {H}-day label window "
                f"the data cover is {latest.date()}) or a shorter --horizon-days than {H}"
            )
        raise DataError(f"{head}; pick a later --cutoff than {test.date()} or a shorter --horizon-days than {H}")
    train = sorted(train)
    # the guarantee, checked rather than assumed
    assert max(train) + pd.Timedelta(days=Ht) <= cal and cal + pd.Timedelta(days=H) <= test
    return {"train": train, "calibration": cal, "test": test, "horizon_days": H, "train_horizon_days": Ht}


def snapshot(book, cutoff, settings: ChurnSettings, *, horizon_days: int | None = None, labels: bool = True):
    """(population frame with features [+ ``churned``], all-accounts feature frame) at ``cutoff``."""
    from features.accounts import account_features
    from features.labels import churn_labels

    feats = account_features(lines_as_of(book, cutoff), book.accounts, book.service_events, cutoff=cutoff)
    H = horizon_days or settings.horizon_days
    if labels:
        lab = churn_labels(book.order_lines, cutoff=cutoff, horizon_days=H, lookback_days=settings.lookback_days)
        pop = feats.merge(lab, on="account_id", how="inner", validate="one_to_one")
    else:
        pop = feats[feats["recency_days"] <= settings.lookback_days].copy()
    pop.insert(0, "cutoff", pd.Timestamp(cutoff))
    return pop.reset_index(drop=True), feats


def _stack(book, cutoffs, settings, H) -> pd.DataFrame:
    frames = [snapshot(book, c, settings, horizon_days=H)[0] for c in cutoffs]
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------- baselines
def recency_score(features: pd.DataFrame) -> np.ndarray:
    """The recency rule as a score in (0, 1): overdue-ness against the account's own rhythm.

    ``x = recency_days / usual_gap`` where ``usual_gap`` is the account's median gap
    between purchase days, or the median of all accounts' gaps when it has none (one
    purchase day); then ``x / (1 + x)``. Monotone, so ranking = 'most overdue first'.
    """
    rec = features["recency_days"].to_numpy(dtype=float)
    gap = features["gap_median_days"].to_numpy(dtype=float)
    pooled = np.nanmedian(gap) if np.isfinite(gap).any() else 30.0
    usual = np.where(np.isfinite(gap) & (gap > 0), gap, pooled)
    x = rec / np.maximum(usual, 1.0)
    return x / (1.0 + x)


def bgnbd_churn_probability(train_features: pd.DataFrame, score_features: pd.DataFrame, horizon_days: int,
                            penalizer: float = 0.001):
    """Fit BG/NBD on every account's history before the cutoff; P(no order in the horizon)."""
    from models.bgnbd import BGNBD

    cols = ["bgnbd_frequency", "bgnbd_recency", "bgnbd_T"]
    f = train_features[cols].to_numpy(dtype=float)
    m = BGNBD(penalizer=penalizer).fit(f[:, 0], f[:, 1], f[:, 2])
    s = score_features[cols].to_numpy(dtype=float)
    return m.prob_no_purchase(float(horizon_days), s[:, 0], s[:, 1], s[:, 2]), m


# ----------------------------------------------------------------- metrics
def ece(y, p, n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-frequency bins of the sorted probabilities."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    total = 0.0
    for idx in np.array_split(order, min(n_bins, len(y))):
        if len(idx):
            total += len(idx) * abs(y[idx].mean() - p[idx].mean())
    return float(total / len(y))


def reliability_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn rate per equal-frequency bin (for the reliability plot)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="mergesort")
    rows = [{"bin": i, "n": len(idx), "mean_p": p[idx].mean(), "observed": y[idx].mean()}
            for i, idx in enumerate(np.array_split(order, min(n_bins, len(y)))) if len(idx)]
    return pd.DataFrame(rows)


def _top_k(p: np.ndarray, frac: float) -> np.ndarray:
    k = max(1, int(math.ceil(frac * len(p))))
    return np.argsort(-p, kind="mergesort")[:k]


def churn_metrics(y, p) -> dict[str, float | None]:
    """auc, pr_auc, brier, ece, lift_top10, precision_top10 (None where undefined)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    base = float(y.mean()) if len(y) else float("nan")
    top = _top_k(p, 0.10) if len(p) else np.array([], dtype=int)
    prec = float(y[top].mean()) if len(top) else float("nan")
    out = {
        "auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
        "ece": ece(y, p) if len(y) else None,
        "lift_top10": prec / base if base > 0 else None,
        "precision_top10": prec if len(top) else None,
    }
    return {k: (None if v is None or not math.isfinite(v) else round(v, 6)) for k, v in out.items()}


# ---------------------------------------------------------------- backtest
@dataclass
class BacktestResult:
    report: dict
    model: Any
    test: pd.DataFrame  # population at the test cutoff with churned + p_<model> columns
    cutoffs: dict
    extras: dict = field(default_factory=dict)


def check_model_windows(settings: ChurnSettings, horizon_days: int | None = None) -> None:
    """Refuse a ``churn.model.horizon_days`` / ``churn.model.lookback_days`` that contradicts
    ``churn.horizon_days`` (or ``horizon_days``) / ``churn.lookback_days``: the model is trained and
    calibrated on the config's labels and population, and would be kept with the other value."""
    H = horizon_days or settings.horizon_days
    kept = settings.model.get("horizon_days")
    if kept is not None and kept != H:
        raise ConfigError(f"churn.model.horizon_days ({kept}) differs from churn.horizon_days ({H}): the model is "
                          "trained and calibrated on churn.horizon_days labels; remove horizon_days from churn.model")
    kept = settings.model.get("lookback_days")
    if kept is not None and kept != settings.lookback_days:
        raise ConfigError(f"churn.model.lookback_days ({kept}) differs from churn.lookback_days "
                          f"({settings.lookback_days}): the population window is churn.lookback_days; remove "
                          "lookback_days from churn.model")


def _model_from_settings(settings: ChurnSettings, seed: int, num_threads: int | None = None,
                         horizon_days: int | None = None):
    from models.churn import ChurnModel

    params = dict(settings.model)
    params.setdefault("calibration", settings.calibration)
    params.setdefault("blend", settings.blend)
    params.setdefault("bgnbd_penalizer", settings.bgnbd_penalizer)
    check_model_windows(settings, horizon_days)
    # the label horizon the model is calibrated on, kept with it (its BG/NBD blend and revenue at risk use it)
    params["horizon_days"] = horizon_days or settings.horizon_days
    # the population window the model is fitted on, kept with it so that it is scored on the same one
    params["lookback_days"] = settings.lookback_days
    params.setdefault("random_state", seed)
    if num_threads is not None:
        params["num_threads"] = num_threads
    params.setdefault("num_threads", 2)
    try:
        return ChurnModel(**params)
    except TypeError as exc:
        raise ConfigError(f"churn.model: {exc}") from None


def fit_churn(book, settings: ChurnSettings, cutoffs: dict, seed: int = 0, num_threads: int | None = None):
    """Fit ChurnModel on the training cutoffs, calibrated on the calibration cutoff."""
    H = cutoffs["horizon_days"]
    train = _stack(book, cutoffs["train"], settings, cutoffs.get("train_horizon_days", H))
    cal, _ = snapshot(book, cutoffs["calibration"], settings, horizon_days=H)
    if train["label_end"].max() > cutoffs["calibration"]:
        raise AssertionError("a training label window overlaps the calibration period")
    for name, frame, cuts, h in (("training", train, cutoffs["train"], cutoffs.get("train_horizon_days", H)),
                                 ("calibration", cal, [cutoffs["calibration"]], H)):
        if frame["churned"].nunique() < 2:
            raise _one_class_error(name, frame, cuts, h, settings)
    model = _model_from_settings(settings, seed, num_threads, H).fit(train, train["churned"], cal, cal["churned"])
    return model, train, cal


def _one_class_error(name: str, frame: pd.DataFrame, cuts: list, h: int, settings: ChurnSettings) -> DataError:
    """Why the churn classifier cannot be fitted on ``frame`` (one label only) and what to change."""
    rows = len(frame)
    pos = int(frame["churned"].sum()) if rows else 0
    n_acc = int(frame["account_id"].nunique()) if rows else 0
    when = (f"cutoff {pd.Timestamp(cuts[0]).date()}" if len(cuts) == 1
            else f"cutoffs {pd.Timestamp(min(cuts)).date()} .. {pd.Timestamp(max(cuts)).date()}")
    head = (f"the order book is too small for a churn model ({n_acc} account{'' if n_acc == 1 else 's'})"
            if n_acc < 2 else f"every {name} label is the same")
    found = (f"the {name} snapshots hold {rows} account x cutoff row{'' if rows == 1 else 's'} ({n_acc} "
             f"account{'' if n_acc == 1 else 's'}, {len(cuts)} {when}): {pos} churned (no order in the {h} days "
             f"after the cutoff), {rows - pos} retained; the classifier needs both")
    horizon = ("--horizon-days on backtest, "
               f"{'churn.train_horizon_days' if name == 'training' and settings.train_horizon_days else 'churn.horizon_days'}"
               " in the config")
    if rows == 0:
        fix = (f"no account ordered in the {settings.lookback_days} days before the {when}: use a later --cutoff "
               "or an order book with more history")
    elif pos == 0:
        fix = (f"no account stopped ordering: use more history or more accounts (some of which lapse), other cutoffs "
               f"(--cutoff, churn.n_train_cutoffs, churn.train_step_days), or a horizon shorter than {h} days ({horizon})")
    else:
        fix = (f"every account stopped ordering: use more history or more accounts (some of which order again), "
               f"other cutoffs (a later --cutoff, churn.n_train_cutoffs, churn.train_step_days), or a horizon longer "
               f"than {h} days ({horizon})")
    return DataError(f"cannot fit the churn model: {head}; {found}. {fix[0].upper() + fix[1:]}")


def slice_columns(test: pd.DataFrame, accounts: pd.DataFrame | None, slices: list[str]) -> pd.DataFrame:
    """``test`` with every ``churn.slices`` column: an account feature (region, channel_type ...) or
    an extra attribute of the accounts table (e.g. credit_limit, account_manager), joined on
    account_id. ConfigError naming the key for a name that is neither (it was skipped silently)."""
    extra = [c for c in slices if c not in test.columns]
    missing = [c for c in extra if accounts is None or c not in accounts.columns]
    if missing:
        have = [] if accounts is None else sorted(c for c in accounts.columns if c != "account_id")
        raise ConfigError(f"churn.slices: {missing} are neither account features (region, channel_type ...) nor columns "
                          f"of the accounts table ({have or 'none is configured'}); map them under "
                          "data.accounts.columns or remove them")
    if not extra:
        return test
    attrs = accounts.drop_duplicates("account_id").set_index("account_id")
    return test.assign(**{c: test["account_id"].map(attrs[c]).to_numpy() for c in extra})


def _slices(test: pd.DataFrame, settings: ChurnSettings, models: list[str]) -> dict:
    out: dict[str, dict] = {}
    for col in settings.slices:
        if col not in test.columns or test[col].isna().all():
            continue
        groups = {}
        for val, g in test.groupby(test[col].astype("object"), dropna=True, observed=True):
            if len(g) < settings.min_slice_size:
                continue
            groups[str(val)] = {
                "n": int(len(g)),
                "base_rate": round(float(g["churned"].mean()), 6),
                "metrics": {m: churn_metrics(g["churned"], g[f"p_{m}"]) for m in models},
            }
        small = int(test[col].isna().sum())
        if groups:
            out[col] = groups
        if small:
            pass
    return out


def run_backtest(book, settings: ChurnSettings, cutoff, *, horizon_days: int | None = None, seed: int = 0,
                 num_threads: int | None = None) -> BacktestResult:
    """The model and both baselines on one time-ordered split; returns the JSON report."""
    from models.churn import apply_score_calibrator, fit_score_calibrator

    first = book.order_lines["order_date"].min()
    cuts = churn_cutoffs(cutoff, settings, first_date=first, last_date=book.order_lines["order_date"].max(),
                         horizon_days=horizon_days)
    H = cuts["horizon_days"]
    last = pd.Timestamp(book.order_lines["order_date"].max())
    latest = last.normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=H)
    if cuts["test"] > latest:  # checked before fitting anything
        raise DataError(
            f"the test label window [{cuts['test'].date()}, {(cuts['test'] + pd.Timedelta(days=H)).date()}) is not "
            f"observable: the order book ends on {last.date()}; choose a --cutoff on or before {latest.date()} "
            f"or a shorter --horizon-days than {H}"
        )
    model, train, cal = fit_churn(book, settings, cuts, seed=seed, num_threads=num_threads)
    test, test_all = snapshot(book, cuts["test"], settings, horizon_days=H)
    if cal["label_end"].max() > cuts["test"]:
        raise AssertionError("the calibration label window overlaps the test period")
    if len(test) == 0:
        raise DataError(f"no account ordered in the {settings.lookback_days} days before {cuts['test'].date()}")

    test[f"p_{FINAL_NAME}"] = model.churn_probability(test)
    rec_cal = fit_score_calibrator("isotonic", recency_score(cal), cal["churned"].to_numpy())
    test["p_recency"] = apply_score_calibrator(rec_cal, recency_score(test))
    test["p_bgnbd"], bg = bgnbd_churn_probability(test_all, test, H, settings.bgnbd_penalizer)

    models = [FINAL_NAME, "recency", "bgnbd"]
    y = test["churned"].to_numpy()
    metrics = {m: churn_metrics(y, test[f"p_{m}"]) for m in models}
    report = {
        "final": FINAL_NAME,
        "base_rate": round(float(y.mean()), 6),
        "metrics": {m: {k: v for k, v in metrics[m].items() if k != "precision_top10"} for m in models},
        "by_slice": _slices(slice_columns(test, book.accounts, settings.slices), settings, models),
    }
    extras = {
        "precision_top10": {m: metrics[m]["precision_top10"] for m in models},
        "n_test": int(len(test)),
        "n_train": int(len(train)),
        "n_calibration": int(len(cal)),
        "train_base_rate": round(float(train["churned"].mean()), 6),
        "calibration_base_rate": round(float(cal["churned"].mean()), 6),
        "bgnbd_params": bg.params_,
        "raw_metrics": churn_metrics(y, model._raw_proba(test)),
        "blend": {k: v for k, v in model.blend_.items() if k != "calibration_auc"},
        "blend_calibration_auc": model.blend_.get("calibration_auc"),
    }
    return BacktestResult(report=report, model=model, test=test, cutoffs=cuts, extras=extras)


# ----------------------------------------------------------------- scoring
def model_lookback_days(model: Any, settings: ChurnSettings) -> int:
    """The population window ``model`` is scored on: the ``lookback_days`` it was trained with (kept
    with it), else (a model saved before it was kept) the config's ``churn.lookback_days``."""
    kept = getattr(model, "lookback_days", None)
    return settings.lookback_days if kept is None else int(kept)


def model_horizon_days(model: Any, settings: ChurnSettings) -> int:
    """The horizon ``model``'s probabilities are over: the ``horizon_days`` it was trained with (kept with
    it), else (a model saved without it) the config's ``churn.horizon_days``."""
    kept = getattr(model, "horizon_days", None)
    return settings.horizon_days if kept is None else int(kept)


def _window_note(key: str, days: int, config_days: int, who: str, what: str) -> str | None:
    """The note that ``who`` was trained with another ``churn.<key>`` than the config's (None when they
    agree); ``what`` says what the model's own value means for its scores."""
    if days == config_days:
        return None
    return (f"{who} was trained with churn.{key} {days}, not the config's {config_days}: {what}; set churn.{key}: "
            f"{days} in the config to match it, or train a model with {config_days}")


def lookback_note(model: Any, settings: ChurnSettings, cutoff, who: str) -> str | None:
    """What to say when ``model`` (``who``) was trained with another ``churn.lookback_days`` than the
    config's: it is scored on its own population (None when both agree)."""
    days = model_lookback_days(model, settings)
    return _window_note("lookback_days", days, settings.lookback_days, who,
                        f"it scores its own population, the accounts with an order in the {days} days before "
                        f"{pd.Timestamp(cutoff).date()}")


def horizon_note(model: Any, settings: ChurnSettings, cutoff, who: str) -> str | None:
    """What to say when ``model`` (``who``) was trained with another ``churn.horizon_days`` than the
    config's: its probabilities (and revenue at risk) are over its own horizon (None when both agree)."""
    days = model_horizon_days(model, settings)
    return _window_note("horizon_days", days, settings.horizon_days, who,
                        f"its probabilities are P(no order in the {days} days after {pd.Timestamp(cutoff).date()}) "
                        f"and its revenue at risk is {days} days of revenue")


SCORE_COLUMNS = ["account_id", "probability", "tier", "reason_1", "reason_2", "reason_3",
                 "model_version", "scored_at", "cutoff", "expected_value", "revenue_at_risk"]


def score_accounts(book, model, settings: ChurnSettings, cutoff, *, model_version: str,
                   population: pd.DataFrame | None = None, reasons: bool = True) -> pd.DataFrame:
    """Scores for every account that ordered in the lookback window before ``cutoff``.

    Columns: account_id, probability (calibrated P(no order in the next H days)), tier
    (high/medium/low), reason_1..3 (empty string when fewer reasons apply), model_version,
    scored_at (UTC, ISO seconds), cutoff, expected_value and revenue_at_risk (currency:
    last-365-day revenue scaled to the model's horizon, ``model_horizon_days``).

    ``reasons=False`` leaves reason_1..3 empty without computing the per-account feature
    contributions and sentences (the dealer ranking reads only the probability; the reasons
    were about a fifth of ``dealerml score dealers`` on a 4,000-dealer book). Every other
    column is the same.
    """
    from datetime import UTC, datetime

    from models.reasons import reason_texts
    from training.alerts import assign_tiers

    check_cutoff_in_book(book, cutoff)
    if population is None:  # the population the model was trained on (its lookback_days), not the config's
        days = model_lookback_days(model, settings)
        if days != settings.lookback_days:
            settings = settings.model_copy(update={"lookback_days": days})
    pop = population if population is not None else snapshot(book, cutoff, settings, labels=False)[0]
    if len(pop) == 0:
        raise DataError(f"no account ordered in the {settings.lookback_days} days before {pd.Timestamp(cutoff).date()}")
    p = model.churn_probability(pop)
    texts: list[list[str]] = [[]] * len(pop)
    if reasons:  # said of what the book covers: its first order date before the cutoff (models.reasons)
        first = book.order_lines["order_date"].min()  # datetime64, tz-naive (the order_lines contract)
        known = not pd.isna(first) and first < pd.Timestamp(cutoff).normalize()
        start = first
        # the service events' own first date: a table that starts later than the order book holds fewer
        # days of the service windows (models.reasons says those as its days on record)
        ev = getattr(book, "service_events", None)
        svc = ev["event_date"].min() if ev is not None and len(ev) else None
        texts = reason_texts(pop, model.contributions(pop), k=3, book_start=start if known else None,
                             cutoff=cutoff if known else None,
                             service_start=svc if known and svc is not None and not pd.isna(svc) else None)[0]
    # the revenue its probability puts at risk: over the model's own horizon (P(no order in its H days)),
    # not the config's churn.horizon_days (a 60-day model scored under 90 put 1.5x the revenue at risk)
    rev = pop["revenue_365d"].to_numpy(dtype=float) * model_horizon_days(model, settings) / 365.0
    groups = None
    by = settings.tiers.capacity_by
    if by:
        if by in pop.columns:
            groups = pop[by]
        elif book.accounts is not None and by in book.accounts.columns:  # e.g. account_manager
            groups = pop[["account_id"]].merge(book.accounts[["account_id", by]], on="account_id", how="left")[by]
        else:
            raise ConfigError(f"churn.tiers.capacity_by names column {by!r}, which neither the account "
                              f"features nor the accounts table have")
    tiers, ev = assign_tiers(p, rev, settings.tiers, groups)
    out = pd.DataFrame({"account_id": pop["account_id"].astype(str).to_numpy(), "probability": p, "tier": tiers})
    for j in range(3):
        out[f"reason_{j + 1}"] = [t[j] if len(t) > j else "" for t in texts]
    out["model_version"] = str(model_version)
    out["scored_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["cutoff"] = pd.Timestamp(cutoff).strftime("%Y-%m-%d")
    out["expected_value"] = ev
    out["revenue_at_risk"] = rev
    return out[SCORE_COLUMNS]


def last_orders(book: Any, cutoff: pd.Timestamp) -> dict[str, str | None]:
    """Account id -> date of its last order before ``cutoff`` (None: no order before it), for
    every account of the accounts table and the order book."""
    ol = book.order_lines
    before = ol.loc[ol["order_date"] < pd.Timestamp(cutoff), ["account_id", "order_date"]]
    last = before.groupby(before["account_id"].astype(str))["order_date"].max()
    out: dict[str, str | None] = {}
    accounts = getattr(book, "accounts", None)
    if accounts is not None and "account_id" in getattr(accounts, "columns", ()):
        out.update(dict.fromkeys(accounts["account_id"].astype(str), None))
    out.update(dict.fromkeys(ol["account_id"].astype(str).unique().tolist(), None))
    out.update({a: pd.Timestamp(d).date().isoformat() for a, d in last.items()})
    return out


def dropped_unknown_accounts(book: Any) -> list[str]:
    """Ids of the order book dropped as ``unknown_account`` (not in the accounts table)."""
    rep = getattr(getattr(book, "report", None), "tables", {}).get("order_lines")
    return list(getattr(rep, "dropped_ids", {}).get("unknown_account", []))
