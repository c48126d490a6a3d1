"""Risk tiers for churn scores: high / medium / low from the expected value of a call and the
call capacity (``assign_tiers``; the settings are ``training.churn_backtest.TierSettings``).

Apart from the alert store (``training._alerts_store``) because choosing who is worth a call is a
policy on scores, with no database in it: ``training.churn_backtest`` tiers its backtest with it,
and ``dealerml alerts`` tiers a run before recording it. Private to ``training.alerts``, which
re-exports ``assign_tiers`` and ``TIERS``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.errors import ConfigError

TIERS = ("low", "medium", "high")


def assign_tiers(
    probability, revenue_at_risk, tiers, groups=None
) -> tuple[np.ndarray, np.ndarray]:
    """(tier per account, expected value per account) under ``tiers`` (a TierSettings).

    ``expected_value = probability * revenue_at_risk * save_rate - contact_cost``.

    The capacity caps ``high``, and so the alerts (an alert is an account newly ``high``): at
    most ``capacity_per_run`` accounts per run, and with ``capacity_by`` (a column, e.g. the
    account manager; ``groups`` holds its value per account, missing values form one group)
    at most ``capacity_per_group`` per value, both by expected value. Accounts already high
    count against the caps too. ``capacity_by`` and ``capacity_per_group`` go together: one
    without the other is refused (ConfigError) rather than silently capping nothing.
    """
    _check_group_capacity(tiers, groups)
    p = np.asarray(probability, dtype=float)
    rev = np.nan_to_num(np.asarray(revenue_at_risk, dtype=float), nan=0.0)
    ev = p * rev * tiers.save_rate - tiers.contact_cost
    worth = ev > 0
    out = np.full(len(p), "low", dtype=object)
    out[worth & (p >= tiers.medium_probability)] = "medium"
    cand = np.flatnonzero(worth & (p >= tiers.high_probability))
    cand = cand[np.argsort(-ev[cand], kind="mergesort")]
    if tiers.capacity_per_group is not None and groups is not None:
        g = np.asarray(pd.Series(groups).astype("object").fillna("(none)"))
        seen: dict[Any, int] = {}
        keep = []
        for i in cand:
            if seen.get(g[i], 0) < tiers.capacity_per_group:
                seen[g[i]] = seen.get(g[i], 0) + 1
                keep.append(i)
        cand = np.asarray(keep, dtype=int)
    cand = cand[: tiers.capacity_per_run]
    out[cand] = "high"
    return out, ev


def _check_group_capacity(tiers, groups) -> None:
    """The per-group cap needs both its keys, and the groups when it is on. TierSettings refuses
    one key without the other when it is validated; this catches settings built without
    validation (``model_copy(update=...)``, ``model_construct``) before they cap nothing."""
    from training.churn_backtest import TierSettings

    by, per = getattr(tiers, "capacity_by", None), getattr(tiers, "capacity_per_group", None)
    problem = TierSettings.group_capacity_problem(by, per)
    if problem:
        raise ConfigError(problem)
    if by and groups is None:
        raise ConfigError(f"churn.tiers.capacity_by {by!r}: no {by} values were given to cap by")
