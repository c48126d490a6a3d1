"""Planned driver values outside the range the LightGBM member was trained on.

A tree splits a driver (price, discount) only at values it saw in training, so a planned value
above the largest (or below the smallest) price of the training rows is forecast exactly as that
edge value: a price rise 40 % beyond any price seen moves the forecast no more than the highest
price seen. Nothing fails; the planner should be told. ``training_ranges`` reads each driver's
range from the member kept at fit (``DemandForecaster.driver_ranges_``); ``out_of_range`` is the
pure check of a plan against them, used by ``DemandForecaster.driver_range_warnings``;
``warning_text`` says one driver's finding in words (``dealerml forecast --future``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["out_of_range", "training_ranges", "warning_text"]

EXAMPLES = 3  # rows shown per driver


def training_ranges(kept: Mapping[str, Any] | None, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """``{driver: (min, max)}`` of each driver's raw values over the rows the LightGBM member kept
    at fit (``DemandForecaster.lgbm_``) trained on; drivers without a finite value there are left
    out. Empty when nothing reads drivers (no drivers, no LightGBM member, a young table on the
    short-history fallback) or the member records no range."""
    model = None if kept is None else kept.get("model")
    rng = getattr(model, "x_range_", None)
    if rng is None or not len(names):
        return {}
    # the member's X is the raw drivers then the same drivers relative to each series' mean
    # (models.demand_members._lgbm_forecast): the first len(names) columns are the raw ones
    return {str(n): (float(rng[0, k]), float(rng[1, k])) for k, n in enumerate(names)
            if np.isfinite(rng[0, k]) and np.isfinite(rng[1, k])}


def out_of_range(plan: pd.DataFrame, ranges: Mapping[str, tuple[float, float]] | None, *,
                 examples: int = EXAMPLES) -> list[dict[str, Any]]:
    """Per driver of ``ranges`` with planned values outside its training range, in the order of
    ``ranges``: ``driver``; ``rows`` (rows of ``plan`` outside the range) of ``of_rows`` (rows with a
    value for it); ``below`` / ``above`` (how many under the min, over the max); ``min`` / ``max``
    (the training range); ``examples``: the first ``examples`` such rows of ``plan`` in its order
    as ``{unique_id, ds, value}``. ``plan`` holds ``unique_id, ds`` and any drivers; an empty
    (NaN) cell or a driver column it lacks is not checked. No ranges (a forecaster saved before
    they were recorded): an empty list."""
    out: list[dict[str, Any]] = []
    for name, (lo, hi) in (ranges or {}).items():
        if name not in plan.columns:
            continue
        v = pd.to_numeric(plan[name], errors="coerce").to_numpy(dtype="float64")
        given = np.isfinite(v)
        below, above = given & (v < lo), given & (v > hi)
        bad = below | above
        if not bad.any():
            continue
        first = np.flatnonzero(bad)[:examples]
        uids, dss = plan["unique_id"].to_numpy()[first], plan["ds"].to_numpy()[first]
        out.append({"driver": str(name), "rows": int(bad.sum()), "of_rows": int(given.sum()),
                    "below": int(below.sum()), "above": int(above.sum()), "min": float(lo), "max": float(hi),
                    "examples": [{"unique_id": str(u), "ds": pd.Timestamp(d), "value": float(x)}
                                 for u, d, x in zip(uids, dss, v[first], strict=True)]})
    return out


def _num(v: float) -> str:
    """A driver value as a planner writes it: ``20`` (whole), ``8.01``, ``-3.5``."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _date(ds: Any) -> str:
    """``2024-03-31`` (with the time only when it has one)."""
    t = pd.Timestamp(ds)
    return str(t.date()) if t == t.normalize() else str(t)


def warning_text(w: Mapping[str, Any]) -> str:
    """One driver of :func:`out_of_range` in words: the driver, how many planned rows lie outside its
    training range (above / below), the range, the first rows (series, date, value), and what the
    forecast does with them."""
    side = ", ".join(f"{n} {s}" for n, s in ((w["above"], "above its max"), (w["below"], "below its min")) if n)
    eg = ", ".join(f"{e['unique_id']} {_date(e['ds'])} {_num(e['value'])}" for e in w["examples"])
    more = "" if w["rows"] <= len(w["examples"]) else ", ..."
    lo, hi = _num(w["min"]), _num(w["max"])
    return (f"{w['driver']} is outside the range the forecaster was trained on in {w['rows']} of {w['of_rows']} "
            f"planned row{'' if w['of_rows'] == 1 else 's'} ({side}; trained on {lo} .. {hi}), e.g. (series, date, "
            f"{w['driver']}) {eg}{more}; the LightGBM member (the one that reads drivers) treats such values as the "
            f"nearest edge of that range ({lo} or {hi}), so the forecast does not respond to them beyond it")
