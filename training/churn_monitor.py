"""How a registered churn model's own scores at a past cutoff did, now that the book holds the outcome
(``dealerml monitor churn``): no refit. The version scores its population at the cutoff exactly as
``score churn`` does (:func:`training.churn_backtest.score_accounts`: its own ``lookback_days``, the
features as of the cutoff); each account is labelled from the book over the version's own
``horizon_days`` (churned = no order in ``[cutoff, cutoff + H)``, the backtest's labels), and the
backtest's metrics and baselines are computed on the same accounts and cutoff as
:func:`training.churn_backtest.run_backtest` computes them (recency rule calibrated on the snapshot
``H`` days earlier, BG/NBD fitted on every account's history before the cutoff, the same slices).

Pure frames here (no MLflow, no files): ``training.commands.churn_monitor`` loads, logs and writes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.errors import DataError

__all__ = ["check_outcome_in_book", "training_labels_end", "in_sample_note", "monitor_report"]


def _day(ts: Any) -> str:
    return str(pd.Timestamp(ts).date())


def check_outcome_in_book(book: Any, cutoff: Any, horizon_days: int, train_end: pd.Timestamp | None = None) -> None:
    """Refuse a cutoff whose ``horizon_days`` label window the book does not hold whole (its last order
    day before the window's last day: every account would look churned because the data stops)."""
    dates = book.order_lines["order_date"]
    if len(dates) == 0 or pd.isna(dates.max()):
        raise DataError("the order book has no dated order; nothing to score")
    cut = pd.Timestamp(cutoff).normalize()
    last = pd.Timestamp(dates.max()).normalize()
    need = cut + pd.Timedelta(days=horizon_days - 1)  # the window's last day
    if last >= need:
        return
    latest = last + pd.Timedelta(days=1) - pd.Timedelta(days=horizon_days)
    if train_end is not None and latest < train_end:
        after = (f"; the earliest cutoff outside its training labels is {_day(train_end)}, whose outcome needs "
                 f"orders up to {_day(train_end + pd.Timedelta(days=horizon_days - 1))}")
    else:
        after = ""
    raise DataError(f"the book ends {_day(last)} (its last order); the {horizon_days}-day outcome of {_day(cut)} "
                    f"needs orders up to {_day(need)}: nothing to score yet, the latest cutoff whose whole outcome "
                    f"the book holds is {_day(latest)}{after}")


def training_labels_end(training_window: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(first training cutoff, end of its last label window) of a version's ``training_window``
    (``train churn`` / ``tune``: train_cutoffs, calibration_cutoff, horizon_days): every label the
    version was fitted or calibrated on lies in ``[first, end)``. None when it records none."""
    tw = training_window if isinstance(training_window, dict) else {}
    try:
        cal = pd.Timestamp(tw["calibration_cutoff"])
        end = cal + pd.Timedelta(days=int(tw["horizon_days"]))
        first = min([pd.Timestamp(c) for c in tw.get("train_cutoffs") or []] or [cal])
    except (KeyError, TypeError, ValueError):
        return None
    return first, end


def in_sample_note(training_window: Any, cutoff: Any, horizon_days: int, what: str) -> str | None:
    """What to say loudly when the label window ``[cutoff, cutoff + H)`` overlaps the labels ``what``
    was trained / calibrated on (None when it does not)."""
    span = training_labels_end(training_window)
    if span is None:
        return None
    first, end = span
    cut = pd.Timestamp(cutoff).normalize()
    stop = cut + pd.Timedelta(days=horizon_days)
    if cut >= end or stop <= first:
        return None
    days = (min(stop, end) - max(cut, first)).days
    return (f"IN-SAMPLE: the label window [{_day(cut)}, {_day(stop)}) overlaps the labels {what} was trained and "
            f"calibrated on ([{_day(first)}, {_day(end)}), {days} days in common): these figures are not how it "
            f"serves; use a cutoff on or after {_day(end)}")


def monitor_report(book: Any, model: Any, settings: Any, cutoff: Any, *, model_version: str, what: str,
                   training_window: Any = None) -> dict[str, Any]:
    """The backtest report (``final``, ``base_rate``, ``metrics``, ``by_slice``) of ``model`` (a
    registered ChurnModel, ``what`` naming it in messages) at ``cutoff`` on ``book``, with
    ``model_version``, ``cutoff``, ``horizon_days``, ``n_accounts`` and a ``monitor`` record (the
    windows, the in-sample note, the scores file's rows). ``settings``: the config's ChurnSettings
    (its slices, BG/NBD penalizer); the population and labels use the model's own windows.
    Raises DataError when the book does not hold the outcome."""
    from models.churn import apply_score_calibrator, fit_score_calibrator
    from training.churn_backtest import (
        FINAL_NAME,
        _slices,
        bgnbd_churn_probability,
        churn_metrics,
        model_horizon_days,
        model_lookback_days,
        recency_score,
        score_accounts,
        slice_columns,
        snapshot,
    )

    H, L = model_horizon_days(model, settings), model_lookback_days(model, settings)
    span = training_labels_end(training_window)
    cut = pd.Timestamp(cutoff).normalize()
    check_outcome_in_book(book, cut, H, span[1] if span else None)
    own = settings.model_copy(update={"horizon_days": H, "lookback_days": L})
    # the version's scores as `score churn` writes them (its population, features as of the cutoff)
    scores = score_accounts(book, model, settings, cut, model_version=model_version, reasons=False)
    # the backtest's test snapshot at the cutoff: the same population, its labels from the book
    test, test_all = snapshot(book, cut, own, horizon_days=H)
    scored = scores[["account_id", "probability"]].assign(account_id=lambda d: d["account_id"].astype(str))
    test = test.assign(account_id=test["account_id"].astype(str)).merge(scored, on="account_id", how="inner",
                                                                        validate="one_to_one")
    if len(test) != len(scores):  # the population is the same rule: checked rather than assumed
        raise DataError(f"{len(scores)} accounts scored at {_day(cut)} but {len(test)} of them labelled from the "
                        "book: the population and the labels disagree")
    test[f"p_{FINAL_NAME}"] = test.pop("probability").to_numpy()
    notes = []
    # the recency rule calibrated as the backtest calibrates it: on the snapshot H days earlier, whose
    # labels [cutoff - H, cutoff) end where the scored outcome begins
    cal, _ = snapshot(book, cut - pd.Timedelta(days=H), own, horizon_days=H)
    if len(cal) and cal["churned"].nunique() == 2:
        rec_cal = fit_score_calibrator("isotonic", recency_score(cal), cal["churned"].to_numpy())
        test["p_recency"] = apply_score_calibrator(rec_cal, recency_score(test))
    else:
        test["p_recency"] = recency_score(test)
        notes.append(f"the recency rule is not calibrated: the snapshot at {_day(cut - pd.Timedelta(days=H))} has "
                     f"{len(cal)} accounts and {cal['churned'].nunique() if len(cal) else 0} label(s); its AUC and "
                     "lift stand, its Brier and ECE are of the raw score")
    test["p_bgnbd"], _ = bgnbd_churn_probability(test_all, test, H, settings.bgnbd_penalizer)
    models = [FINAL_NAME, "recency", "bgnbd"]
    y = test["churned"].to_numpy()
    metrics = {m: churn_metrics(y, test[f"p_{m}"]) for m in models}
    tests = pd.Timestamp(cut + pd.Timedelta(days=H))
    report = {
        "final": FINAL_NAME,
        "model_version": model_version,
        "cutoff": _day(cut),
        "horizon_days": int(H),
        "n_accounts": int(len(test)),
        "base_rate": round(float(y.mean()), 6),
        "metrics": {m: {k: v for k, v in metrics[m].items() if k != "precision_top10"} for m in models},
        "by_slice": _slices(slice_columns(test, book.accounts, settings.slices), settings, models),
    }
    note = in_sample_note(training_window, cut, H, what)
    if span is None:
        notes.append(f"{what} records no training window: whether this outcome was among its training labels "
                     "cannot be told")
    elif cut + pd.Timedelta(days=H) <= span[0]:
        notes.append(f"the label window ends by {_day(span[0])}, before {what}'s training labels begin: a backcast "
                     "(it was fitted on later data), not how it serves")
    report["monitor"] = {
        "label_window": [_day(cut), _day(tests)], "lookback_days": int(L),
        "book_last_order": _day(book.order_lines["order_date"].max()),
        "training_labels": [_day(span[0]), _day(span[1])] if span else None,
        "in_sample": note is not None, **({"in_sample_note": note} if note else {}),
        **({"notes": notes} if notes else {}),
    }
    report["_test"] = test  # for the command (the accounts' probabilities and labels); popped before writing
    return report
