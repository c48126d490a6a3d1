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

Layout: the cutoffs and snapshots are in :mod:`training._churn_backtest_cutoffs`, the baselines and
metrics in :mod:`training._churn_backtest_metrics`, the CRM's scores (``score_accounts`` and the
model's windows) in :mod:`training._churn_backtest_scoring`. This module keeps the settings
(``ChurnSettings``, ``TierSettings``), ``fit_churn`` and ``run_backtest``, and re-exports every name
that moved: import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from training._churn_backtest_cutoffs import _stack, churn_cutoffs, snapshot
from training._churn_backtest_metrics import (  # noqa: F401 - re-exported: import them from here
    _top_k,
    bgnbd_churn_probability,
    churn_metrics,
    ece,
    recency_score,
    reliability_table,
)
from training._churn_backtest_scoring import (  # noqa: F401 - re-exported: import them from here
    SCORE_COLUMNS,
    _window_note,
    dropped_unknown_accounts,
    horizon_note,
    last_orders,
    lookback_note,
    model_horizon_days,
    model_lookback_days,
    score_accounts,
)
from training._config_numbers import NoBoolNumbers
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


class TierSettings(NoBoolNumbers):
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
    when the section is validated (the config load), not first at scoring time; so is a
    ``medium_probability`` above ``high_probability`` (equal is allowed: medium then holds only
    the accounts over capacity).
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
            problems = [cls.group_capacity_problem(raw.get("capacity_by"), raw.get("capacity_per_group")),
                        cls.probability_order_problem(raw.get("high_probability", 0.5),
                                                      raw.get("medium_probability", 0.25), set(raw))]
            mine = [InitErrorDetails(type=PydanticCustomError("tier_settings", p), loc=(), input=data)
                    for p in problems if p]
            if not mine:
                raise
            raise ValidationError.from_exception_data(err.title, [*err.errors(include_url=False), *mine]) from None
        problem = (cls.group_capacity_problem(out.capacity_by, out.capacity_per_group)
                   or cls.probability_order_problem(out.high_probability, out.medium_probability,
                                                    out.model_fields_set))
        if problem:
            raise PydanticCustomError("tier_settings", problem)
        return out

    @staticmethod
    def probability_order_problem(high: Any, medium: Any, given: Any = ()) -> str | None:
        """What is wrong when the medium tier's probability is above the high tier's (None if
        nothing, or when either is not a number: that is said under its own key); ``given``: the
        keys the config set (a value it left out is named as the default). Accepted, the accounts
        over the call capacity with a probability between the two fell to low."""
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (high, medium)) or medium <= high:
            return None
        m, h = (f"{v:g}" + ("" if k in given else ", the default") for k, v in
                (("medium_probability", medium), ("high_probability", high)))
        return (f"churn.tiers.medium_probability ({m}) is above churn.tiers.high_probability ({h}); "
                "expected medium_probability <= high_probability (the medium tier is the step below high: "
                "accounts over the call capacity between the two would be tiered low); lower "
                "medium_probability or raise high_probability")

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


class ChurnSettings(NoBoolNumbers):
    """The ``churn:`` section of an experiment config."""

    model_config = ConfigDict(extra="forbid")
    horizon_days: int = Field(90, ge=1, le=730)
    lookback_days: int = Field(365, ge=1)
    n_train_cutoffs: int = Field(6, ge=1, le=60)
    train_horizon_days: int | None = Field(None, ge=1, le=730)  # label window of training snapshots (None = horizon_days)
    train_step_days: int = Field(30, ge=1, le=3650)  # beyond ~250 years the cutoffs left pandas' dates: an
    min_history_days: int = Field(30, ge=0, le=3650)  # 'Out of bounds nanosecond timestamp' error naming no key
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
            f"or a churn.horizon_days (--horizon-days on backtest churn) shorter than {H}"
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
