"""Labels for churn and value models, and time-ordered training snapshots.

Labels deliberately read the ``horizon_days`` *after* a cutoff (that is what they
predict); features for the same cutoff read only rows before it. Windows are half-open
whole-day ranges: the label window of cutoff ``c`` is ``[c, c + H days)``, and
``label_end = c + H days`` is its first day *not* included.

Time-ordered cutoffs (``time_ordered_cutoffs``) are spaced at least ``H`` days apart, so
the label window of each cutoff ends on or before the next cutoff: when the last cutoff is
the test set and the one before it validation, no training label looks into the
validation or test period, and no validation label into the test period.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from features.accounts import (
    _DAY_NS,
    _day_numbers,
    _line_amount,
    _require,
    account_features,
    as_cutoff,
)

__all__ = ["churn_labels", "next_period_value", "stack_snapshots", "time_ordered_cutoffs"]


def _check_days(name: str, value, unit: str = "days") -> int:
    try:
        v = int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive whole number of {unit}; got {value!r}") from exc
    if v <= 0 or v != value:
        raise ValueError(f"{name} must be a positive whole number of {unit}; got {value!r}")
    return v


def _days_and_accounts(order_lines: pd.DataFrame):
    _require(order_lines, "order_lines", ("order_date", "account_id"))
    days, valid = _day_numbers(order_lines["order_date"])
    valid &= order_lines["account_id"].notna().to_numpy()  # a line without account is nobody's
    return days, valid, order_lines["account_id"].to_numpy()


def _check_observable(days, valid, label_end_day: int, cut, horizon: int) -> None:
    if not valid.any():
        raise ValueError("order_lines has no parseable order_date; cannot build labels")
    last = int(days[valid].max())
    if last < label_end_day - 1:
        last_ts = pd.Timestamp(last * _DAY_NS)
        raise ValueError(
            f"label window [{cut.date()}, {(cut + pd.Timedelta(days=horizon)).date()}) is not "
            f"observable: the order book ends on {last_ts.date()}; choose a cutoff on or before "
            f"{(last_ts + pd.Timedelta(days=1) - pd.Timedelta(days=horizon)).date()} "
            f"or a horizon shorter than {horizon} days"
        )


def churn_labels(
    order_lines: pd.DataFrame,
    *,
    cutoff,
    horizon_days: int = 90,
    lookback_days: int = 365,
    require_observable: bool = True,
) -> pd.DataFrame:
    """Churn label per account at ``cutoff``.

    Population: accounts with at least one order in ``[cutoff - lookback_days, cutoff)``.
    ``churned`` = 1 if the account places no order in ``[cutoff, cutoff + horizon_days)``,
    else 0 (int64). ``label_end`` = cutoff + horizon_days (first day not in the window).
    Sorted by ``account_id``.

    With ``require_observable`` (default) a ValueError is raised when the order book's last
    order day is before the last day of the label window: otherwise every account would
    look churned simply because the data stops.
    """
    cut = as_cutoff(cutoff)
    horizon = _check_days("horizon_days", horizon_days)
    lookback = _check_days("lookback_days", lookback_days)
    days, valid, ids = _days_and_accounts(order_lines)
    cd = int(cut.value // _DAY_NS)
    if require_observable:
        _check_observable(days, valid, cd + horizon, cut, horizon)
    active = pd.unique(ids[valid & (days >= cd - lookback) & (days < cd)])
    active = np.sort(np.asarray(active, dtype=object)) if len(active) else np.asarray([], dtype=object)
    future = pd.Index(pd.unique(ids[valid & (days >= cd) & (days < cd + horizon)]))
    churned = (~pd.Index(active).isin(future)).astype(np.int64)
    return pd.DataFrame(
        {
            "account_id": active,
            "churned": churned,
            "label_end": pd.Series(
                np.full(len(active), (cut + pd.Timedelta(days=horizon)).to_datetime64()),
                dtype="datetime64[ns]",
            ),
        }
    )


def next_period_value(
    order_lines: pd.DataFrame,
    *,
    cutoff,
    horizon_days: int = 180,
    lookback_days: int | None = None,
    require_observable: bool = True,
) -> pd.DataFrame:
    """Revenue of each account in ``[cutoff, cutoff + horizon_days)`` (currency).

    Population: accounts with an order before ``cutoff`` (within ``lookback_days`` if
    given) - the same accounts ``account_features`` returns when ``lookback_days`` is None.
    ``next_value`` is 0.0 for accounts that buy nothing in the horizon; ``label_end`` as in
    ``churn_labels``. Sorted by ``account_id``.
    """
    cut = as_cutoff(cutoff)
    horizon = _check_days("horizon_days", horizon_days)
    days, valid, ids = _days_and_accounts(order_lines)
    cd = int(cut.value // _DAY_NS)
    if require_observable:
        _check_observable(days, valid, cd + horizon, cut, horizon)
    before = valid & (days < cd)
    if lookback_days is not None:
        before &= days >= cd - _check_days("lookback_days", lookback_days)
    active = pd.unique(ids[before])
    active = np.sort(np.asarray(active, dtype=object)) if len(active) else np.asarray([], dtype=object)
    inh = valid & (days >= cd) & (days < cd + horizon)
    amt = _line_amount(order_lines, inh)
    rev = pd.Series(amt).groupby(ids[inh]).sum() if inh.any() else pd.Series(dtype="float64")
    value = rev.reindex(pd.Index(active), fill_value=0.0).to_numpy(dtype="float64")
    return pd.DataFrame(
        {
            "account_id": active,
            "next_value": value,
            "label_end": pd.Series(
                np.full(len(active), (cut + pd.Timedelta(days=horizon)).to_datetime64()),
                dtype="datetime64[ns]",
            ),
        }
    )


def stack_snapshots(
    order_lines: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    service_events: pd.DataFrame | None = None,
    *,
    cutoffs: Sequence,
    horizon_days: int = 90,
    label_fn: Callable[..., pd.DataFrame] = churn_labels,
    label_kwargs: dict | None = None,
    feature_kwargs: dict | None = None,
) -> pd.DataFrame:
    """Features + labels for several cutoffs, stacked with a ``cutoff`` column.

    For each cutoff: ``account_features(..., cutoff=c)`` inner-joined on ``account_id``
    with ``label_fn(order_lines, cutoff=c, horizon_days=horizon_days, **label_kwargs)``
    (so the rows are the label's population). Rows are ordered by cutoff, then account.
    Categorical columns keep the same categories across cutoffs.
    """
    if len(cutoffs) == 0:
        raise ValueError("cutoffs must name at least one date; got an empty list")
    cuts = [as_cutoff(c) for c in cutoffs]
    if len(set(cuts)) != len(cuts):
        raise ValueError(f"cutoffs must be distinct; got {[str(c.date()) for c in cuts]}")
    frames = []
    for c in sorted(cuts):
        feats = account_features(order_lines, accounts, service_events, cutoff=c, **(feature_kwargs or {}))
        labels = label_fn(order_lines, cutoff=c, horizon_days=horizon_days, **(label_kwargs or {}))
        merged = feats.merge(labels, on="account_id", how="inner", validate="one_to_one")
        merged.insert(0, "cutoff", pd.Series(np.full(len(merged), c.to_datetime64()), dtype="datetime64[ns]"))
        frames.append(merged)
    return pd.concat(frames, ignore_index=True)


def time_ordered_cutoffs(last_date, *, horizon_days: int, n: int, step_days: int | None = None) -> list[pd.Timestamp]:
    """``n`` cutoffs, ascending, whose label windows are all observable and never overlap.

    ``last_date`` is the last day with data (inclusive). The last cutoff is
    ``last_date + 1 day - horizon_days`` so its label window ends exactly with the data;
    each earlier cutoff is ``step_days`` (default = ``horizon_days``) before the next.
    ``step_days >= horizon_days`` is required, which guarantees
    ``cutoffs[i] + horizon_days <= cutoffs[i + 1]``: the label window of an earlier
    cutoff ends on or before every later cutoff. Use ``cutoffs[-1]`` for test,
    ``cutoffs[-2]`` for validation, the rest for training.
    """
    horizon = _check_days("horizon_days", horizon_days)
    step = horizon if step_days is None else _check_days("step_days", step_days)
    count = _check_days("n", n, unit="cutoffs")
    if step < horizon:
        raise ValueError(
            f"step_days must be >= horizon_days ({horizon}) so label windows do not overlap "
            f"later cutoffs; got {step}"
        )
    end = pd.Timestamp(last_date).normalize() + pd.Timedelta(days=1)
    last_cut = end - pd.Timedelta(days=horizon)
    return [last_cut - pd.Timedelta(days=step * k) for k in range(count - 1, -1, -1)]
