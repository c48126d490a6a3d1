"""Pure, as-of feature functions: tables in, a new table out; nothing read on/after ``cutoff``."""

from features.accounts import account_features
from features.labels import churn_labels, next_period_value, stack_snapshots, time_ordered_cutoffs

__all__ = [
    "account_features",
    "churn_labels",
    "next_period_value",
    "stack_snapshots",
    "time_ordered_cutoffs",
]
