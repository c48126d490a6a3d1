"""The ``promotion:`` section of an experiment config, for :mod:`training.config`.

``PROMOTION_METRICS`` (the metrics ``promotion.<capability>.metric`` may name),
``DEFAULT_PROMOTION_METRIC`` (the one judged by when it names none) and
``_check_promotion_section`` (every problem of the section at once), which
``ExperimentConfig`` runs on its ``promotion`` field.

Split from :mod:`training.config` to keep each module under ~500 lines; ``PROMOTION_METRICS`` and
``DEFAULT_PROMOTION_METRIC`` are re-exported there (import them from :mod:`training.config`). Imports
nothing from it.
"""

from __future__ import annotations

from typing import Any

from training._config_files import near_keys_text

PROMOTION_METRICS: dict[str, tuple[str, ...]] = {
    # what each capability's promotion evaluator returns (training.churn_backtest.churn_metrics,
    # training.demand_backtest.METRIC_KEYS, training.dealers_backtest.evaluate; a test checks them)
    "churn": ("auc", "pr_auc", "brier", "ece", "lift_top10", "precision_top10"),
    "demand": ("mase", "rmsse", "pinball", "coverage_80", "coverage_95", "bias"),
    "dealers": ("spearman", "top_decile_growth_capture", "top_decile_net_growth_share", "mae"),
}
"""Metrics ``promotion.<capability>.metric`` may name."""

DEFAULT_PROMOTION_METRIC: dict[str, str] = {"churn": "auc", "demand": "mase", "dealers": "spearman"}
"""The metric ``promote`` and ``compare`` judge by when ``promotion.<capability>.metric`` is not set."""


_KEYS = ("metric", "margin", "direction")


def _check_promotion_section(section: dict[str, Any]) -> None:
    """``promotion: {churn|demand|dealers: {metric, margin, direction}}``; ValueError naming the
    key, every problem of the section at once (one per line when there are several)."""
    problems: list[str] = []
    for cap, entry in section.items():
        if cap not in PROMOTION_METRICS:  # '; did you mean ...?' as the other sections say it
            problems.append(f"unknown capability {cap!r} under promotion" + near_keys_text(cap, sorted(PROMOTION_METRICS)))
            continue
        if entry is None:
            continue
        if not isinstance(entry, dict):
            problems.append(f"promotion.{cap} must be a mapping like {{metric: ..., margin: ...}}; got {entry!r}")
            continue
        for key in sorted(set(entry) - set(_KEYS), key=str):
            problems.append(f"promotion.{cap}.{key}: unknown key" + near_keys_text(key, _KEYS))
        metric = entry.get("metric")
        if metric is not None and metric not in PROMOTION_METRICS[cap]:
            problems.append(
                f"promotion.{cap}.metric: unknown metric {metric!r}; {cap} promotion can compare "
                f"{', '.join(PROMOTION_METRICS[cap])}"
            )
        margin = entry.get("margin")
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0):
            problems.append(f"promotion.{cap}.margin must be a number >= 0; got {margin!r}")
        direction = entry.get("direction")
        if direction is not None and direction not in ("maximize", "minimize"):
            problems.append(f"promotion.{cap}.direction must be maximize or minimize; got {direction!r}")
    if len(problems) == 1:
        raise ValueError(problems[0])
    if problems:
        raise ValueError(f"{len(problems)} problems:" + "".join(f"\n    {p}" for p in problems))
