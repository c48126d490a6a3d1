"""The time-ordered cut of a churn backtest: ``churn_cutoffs`` (training / calibration / test
cutoffs for a test cutoff and horizon, or a ``DataError`` saying which cutoff or horizon would
fit the book) and ``snapshot`` (the population at a cutoff with its account features and,
optionally, its ``churned`` label; ``_stack`` stacks the training cutoffs' snapshots). The rules
of the cut (which label window ends where) are in :mod:`training.churn_backtest`'s docstring, the
"module docstring" ``churn_cutoffs`` refers to.

Split from :mod:`training.churn_backtest` (settings, fit, backtest) to keep each module under ~500
lines; ``ChurnSettings`` is named in annotations only, never imported at run time. Used by
:mod:`training.churn_backtest` (``fit_churn``, ``run_backtest``), :mod:`training._churn_backtest_scoring`
(``score_accounts``) and, through the re-exports of :mod:`training.churn_backtest`, by the churn
commands, tuning, the dealers' churn risk and the service: import the names from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from training.data import lines_as_of
from training.errors import DataError

if TYPE_CHECKING:
    from training.churn_backtest import ChurnSettings


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
                    f"churn.horizon_days (--horizon-days on backtest churn)"
                )
            latest = end - pd.Timedelta(days=H)
            raise DataError(
                f"{head}; pick a later --cutoff than {test.date()} (the latest whose {H}-day label window "
                f"the data cover is {latest.date()}) or a churn.horizon_days (--horizon-days on backtest churn) shorter "
                f"than {H}"
            )
        raise DataError(f"{head}; pick a later --cutoff than {test.date()} or a churn.horizon_days (--horizon-days "
                        f"on backtest churn) shorter than {H}")
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
