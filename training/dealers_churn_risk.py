"""Churn risk for the dealer ranking, from the churn model (split out of training.dealers_backtest).

The dealer potential ranking lowers accounts likely to stop ordering. In the backtest
(:func:`backtest_churn_risk`) that risk comes from a churn model fitted with the backtest cutoff
``C`` as the last day of data, so no churn label window reaches past ``C``; when none fits
(the book before ``C`` is too short for its cutoffs, or its snapshots hold one class) every
account keeps 1 - BG/NBD P(alive) and the setup says why, in the dealers run's own terms. For
``dealerml score dealers`` and the service (:func:`churn_model_risk`, :func:`load_churn_model`)
it comes from the registered ``dealerml-churn`` model. Both score accounts with
``training.churn_backtest.score_accounts``, the function behind ``dealerml score churn``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.errors import DataError

__all__ = ["CHURN_MODEL_NAME", "backtest_churn_risk", "churn_horizon_note", "churn_lookback_note", "churn_model_lookback", "churn_model_risk",
           "load_churn_model", "read_churn_scores"]

CHURN_MODEL_NAME = "dealerml-churn"


def churn_model_risk(book, cfg, cutoff, model) -> pd.Series:
    """account_id -> the churn model's probability as of ``cutoff``, scored by
    ``training.churn_backtest.score_accounts`` (the function behind ``dealerml score churn``)
    with the config's ``churn:`` settings. Only accounts that ordered in the churn model's own
    lookback window (``churn_model_lookback``: the ``lookback_days`` it was trained with) are
    scored; the dealer scorer falls back to 1 - BG/NBD P(alive) for the others. Empty when no
    account is in that window."""
    from training.churn_backtest import churn_settings

    return _score_churn(book, churn_settings(cfg), cutoff, model)


def churn_model_lookback(cfg, model) -> int:
    """The lookback (days) ``churn_model_risk`` scores ``model``'s population on: the ``lookback_days``
    it was trained with, else (a model saved before it was kept) the config's ``churn.lookback_days``."""
    from training.churn_backtest import churn_settings, model_lookback_days

    return model_lookback_days(model, churn_settings(cfg))


def churn_lookback_note(cfg, cutoff, model, who: str) -> str | None:
    """What to say when ``model`` (``who``) was trained with another ``churn.lookback_days`` than the
    config's (the dealers' churn risk then comes from its own population); None when both agree."""
    from training.churn_backtest import churn_settings, lookback_note

    return lookback_note(model, churn_settings(cfg), cutoff, who)


def churn_horizon_note(cfg, cutoff, model, who: str) -> str | None:
    """What to say when ``model`` (``who``) was trained with another ``churn.horizon_days`` than the
    config's: the dealers' churn risk (and so their potential) is then P(no order in its own horizon);
    None when both agree or the model kept no horizon."""
    from training.churn_backtest import churn_settings, model_horizon_days

    settings = churn_settings(cfg)
    days = model_horizon_days(model, settings)
    if days == settings.horizon_days:
        return None
    return (f"{who} was trained with churn.horizon_days {days}, not the config's {settings.horizon_days}: the "
            f"dealers' churn risk is its P(no order in the {days} days after {pd.Timestamp(cutoff).date()}); set "
            f"churn.horizon_days: {days} in the config to match it, or train a model with {settings.horizon_days}")


def _score_churn(book, settings, cutoff, model) -> pd.Series:
    """account_id -> ``score_accounts``' probability as of ``cutoff`` (see ``churn_model_risk``)."""
    from training.churn_backtest import score_accounts

    if hasattr(model, "num_threads"):
        model.num_threads = 1  # as `dealerml score churn` does
    try:
        # only the probability is read: no per-account contributions and reason sentences
        t = score_accounts(book, model, settings, pd.Timestamp(cutoff), model_version="for-dealers", reasons=False)
    except DataError as exc:
        if "no account ordered" in str(exc):
            return pd.Series(dtype=float, name="probability")
        raise
    except ValueError as exc:  # as the churn CLI does: a data problem, said in its words
        raise DataError(f"churn model scoring for dealers at {pd.Timestamp(cutoff).date()}: {exc}") from None
    return t.set_index("account_id")["probability"].astype(float)


def load_churn_model(aliases=("champion", "challenger"), on_load=None):
    """(model, "dealerml-churn/<version>") of the first registered alias, else (None, None).

    ``on_load(info)`` is called with the loaded version's ``ModelInfo`` (e.g. to say it was trained with
    other package versions: ``training.commands._common.note_model_environment``)."""
    from training import tracking

    for alias in aliases:
        if tracking.get_alias_version(CHURN_MODEL_NAME, alias) is None:
            continue
        # registered: a model that then fails to load is an error, not a silent fallback
        model, info = tracking.load_model(CHURN_MODEL_NAME, alias)
        if on_load is not None:
            on_load(info)
        return model, f"{CHURN_MODEL_NAME}/{info.version}"
    return None, None


def backtest_churn_risk(book, cutoff, churn=None, *, seed: int = 0, num_threads: int | None = None):
    """Churn risk for the backtest at ``cutoff`` from a churn model that has seen no label past it.

    The churn model is fitted by ``training.churn_backtest.fit_churn`` on the cutoffs
    ``churn_cutoffs(cutoff, ...)`` gives: calibration label window ``[cutoff - H, cutoff)``,
    training label windows ending by ``cutoff - H`` (as ``dealerml train churn`` lays out its
    serving model with the end of the book as ``cutoff``). Every label window's end is checked
    against ``cutoff`` after the fit. It then scores the accounts as of ``cutoff`` as
    ``churn_model_risk`` does.

    Returns ``(risk, setup, fit)``: ``risk`` = account_id -> probability (None when no churn model
    fits: the book before ``cutoff`` is too short for its cutoffs, or its snapshots hold one
    class; the ranking then uses 1 - BG/NBD P(alive) for every account); ``setup`` = the
    JSON-ready record (``churn_source`` "churn_model" | "bgnbd", ``churn_fallback_reason``,
    the churn model's cutoffs and label windows); ``fit`` = {"model", "train", "calibration"}
    (the fitted model and its labelled snapshots) or None.
    """
    from training.churn_backtest import ChurnSettings, churn_cutoffs, churn_settings, fit_churn

    if churn is None:
        s = ChurnSettings()
    elif isinstance(churn, ChurnSettings):
        s = churn
    else:
        s = churn_settings(churn)
    cutoff = pd.Timestamp(cutoff).normalize()
    setup: dict[str, Any] = {"churn_source": "churn_model", "churn_fallback_reason": None,
                             "churn_horizon_days": s.horizon_days, "churn_lookback_days": s.lookback_days}
    first = book.order_lines["order_date"].min()
    try:
        cuts = churn_cutoffs(cutoff, s, first_date=first)
    except DataError:
        setup.update(churn_source="bgnbd", churn_fallback_reason=_too_short_reason(cutoff, first, s))
        return None, setup, None
    try:
        model, train, cal = fit_churn(book, s, cuts, seed=seed, num_threads=num_threads)
    except DataError as exc:
        setup.update(churn_source="bgnbd", churn_fallback_reason=_one_class_reason(cutoff, exc))
        return None, setup, None
    except ValueError as exc:  # as the churn CLI does: a data problem, said in its words
        raise DataError(f"churn model for the dealers backtest at {cutoff.date()}: {exc}") from None
    label_end = max(train["label_end"].max(), cal["label_end"].max())
    if label_end > cutoff:  # the guarantee, checked on the frames the model was fitted on
        raise AssertionError(f"a churn label window ends {label_end.date()}, after the backtest cutoff {cutoff.date()}")
    risk = _score_churn(book, s, cutoff, model)
    setup.update({
        "churn_train_cutoffs": [str(c.date()) for c in cuts["train"]],
        "churn_train_horizon_days": int(cuts["train_horizon_days"]),
        "churn_calibration_cutoff": str(cuts["calibration"].date()),
        "churn_label_windows_end_by": str(pd.Timestamp(label_end).date()),
        "churn_n_train_rows": int(len(train)),
        "churn_n_calibration_rows": int(len(cal)),
    })
    if risk.empty:
        setup.update(churn_source="bgnbd", churn_fallback_reason=(
            f"no account ordered in the {s.lookback_days} days (churn.lookback_days) before {cutoff.date()}, so "
            f"the churn model scores none; {_FALLBACK}"))
        return None, setup, {"model": model, "train": train, "calibration": cal}
    return risk, setup, {"model": model, "train": train, "calibration": cal}


# The fallback reasons are read by whoever runs or reviews a dealers backtest, train or promote
# (CLI line, JSON setup, MLflow run): they say what happened in the dealers run's own terms and
# what to change there - the dealers cutoff and the config's churn: keys - not the churn CLI's
# flags (its --horizon-days is the churn horizon; backtest dealers' is the dealers horizon).
_FALLBACK = ("churn risk = 1 - BG/NBD P(alive) for every account in this backtest (dealer_potential and "
             "dealer_potential_bgnbd_risk are then the same ranking); `score dealers` and the service still take "
             "churn risk from a registered dealerml-churn model when there is one (`dealerml train churn` registers it)")
_LATER_CUTOFF = ("a later dealers backtest cutoff (--cutoff, or dealers.cutoff; the latest the book allows is its "
                 "last order day + 1 - dealers.horizon_days)")


def _too_short_reason(cutoff: pd.Timestamp, first, s) -> str:
    """The book before ``cutoff`` is shorter than the churn model's history + training label +
    calibration label windows (``churn_cutoffs`` found no training cutoff)."""
    first = pd.Timestamp(first).normalize()
    Ht = s.train_horizon_days or s.horizon_days
    span, need = (cutoff - first).days, s.min_history_days + Ht + s.horizon_days
    ht_key = "churn.train_horizon_days" if s.train_horizon_days else "churn.horizon_days"
    return (f"no churn model fits before {cutoff.date()} (no training cutoff fits: the order book before it spans "
            f"{span} days from {first.date()}, and the churn model needs {need}: {s.min_history_days} days of "
            f"history (churn.min_history_days) + {Ht} days of training labels ({ht_key}) + {s.horizon_days} days "
            f"of calibration labels (churn.horizon_days)); {_FALLBACK}. For a churn model here: {_LATER_CUTOFF}, a "
            f"longer order book, or shorter churn.horizon_days / churn.train_horizon_days / churn.min_history_days")


def _one_class_reason(cutoff: pd.Timestamp, exc: Exception) -> str:
    """``fit_churn`` found snapshots with one label only. Its message's first sentence says what
    it found; its advice names the churn CLI's options, so it is replaced by the dealers run's."""
    import re

    found = re.split(r"\. (?=[A-Z])", str(exc), maxsplit=1)[0].removeprefix("cannot fit the churn model: ")
    return (f"no churn model fits before {cutoff.date()} ({found}); {_FALLBACK}. For a churn model here: more "
            f"history or more accounts, {_LATER_CUTOFF}, other churn training cutoffs (churn.n_train_cutoffs, "
            f"churn.train_step_days) or another churn horizon (churn.horizon_days, churn.train_horizon_days)")


def read_churn_scores(spec: str) -> pd.Series:
    """account_id -> churn probability from a churn score table or file (``dealerml score dealers --churn-scores``),
    as ``score churn`` writes it; ``attrs["cutoffs"]``: the dates of its ``cutoff`` column. A probability that is not a
    number in [0, 1], or an account listed twice with different probabilities, is a DataError naming them."""
    from training import paths
    from training.scores import read_table, resolve_out

    target, table = resolve_out(spec, paths.scores_db(), "--churn-scores")
    try:
        df = read_table(target, table)
    except Exception as exc:  # missing file / table: say which
        raise DataError(f"--churn-scores {spec}: cannot read it ({exc})") from None
    missing = sorted({"account_id", "probability"} - set(df.columns))
    if missing:
        raise DataError(f"--churn-scores {spec}: missing column(s) {missing}; has {sorted(df.columns)[:12]}")
    df = df.reset_index(drop=True)  # row numbers below count data rows from 1
    p = pd.to_numeric(df["probability"], errors="coerce")  # text such as 'high' is named below, not a traceback
    bad = ~p.between(0, 1)
    if bad.any():
        rows = ", ".join(f"row {i + 1}: " + (repr(v) if isinstance(v, str) else "empty" if pd.isna(v) else str(v))
                         for i, v in df["probability"][bad].head(3).items())
        raise DataError(f"--churn-scores {spec}: column probability must be a number in [0, 1]; {int(bad.sum())} "
                        f"rows are not (first: {rows})")
    ids = df["account_id"].astype(str)
    spread = p.groupby(ids).agg(["min", "max", "size"])
    clash = spread[(spread["size"] > 1) & (spread["max"] > spread["min"])]
    if len(clash):  # which one is the churn risk? refuse rather than pick one
        ex = ", ".join(f"{a} ({int(r['size'])} rows, {r['min']:.3f} .. {r['max']:.3f})"
                       for a, r in clash.head(3).iterrows())
        raise DataError(f"--churn-scores {spec}: {len(clash)} account_id(s) appear more than once with different "
                        f"probabilities (e.g. {ex}); expected one row per account, as `score churn` writes")
    out = p.set_axis(ids).groupby(level=0).last()
    dates = pd.to_datetime(df["cutoff"], errors="coerce").dropna() if "cutoff" in df.columns else None
    out.attrs["cutoffs"] = sorted({d.date() for d in dates}) if dates is not None else []  # as score churn writes
    return out
