"""Planned driver values outside the range the LightGBM member's forecast responds to.

A LightGBM split needs ``min_child_samples`` (k, default 20) training rows on each side, so no tree
splits a driver (price, discount) below its k-th smallest training value or at / above its k-th
largest: every value at or below the first (at or above the second) is forecast the same, e.g. a
price rise 40 % beyond those prices moves the forecast no more than that price. The training rows'
min / max are a weaker bound: one bad row (a price of -3,122) stretches them, though the trees
cannot respond to it. Nothing fails; the planner should be told. The member also reads each driver
divided by its series' mean (``models.demand_members._lgbm_forecast``), the feature its trees learn a
response to a price change from, so a value inside the range of all series' values (prices differ
between SKUs) can still be beyond any multiple of its own series' mean trained on: that is checked too.
``training_ranges`` reads each driver's range, raw or relative, from the member kept at fit
(``DemandForecaster.driver_ranges_`` / ``driver_relative_ranges_``); ``out_of_range`` is the pure
check of a plan against them, used by ``DemandForecaster.driver_range_warnings``; ``warning_text``
says one driver's finding in words (``dealerml forecast --future``, the services' ``warnings``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RELATIVE", "SENT_ID", "SENT_ROW", "out_of_range", "training_ranges", "warning_text"]

EXAMPLES = 3  # rows shown per driver
RELATIVE = "relative to its series' mean"  # the kind of an entry of the relative check (the raw one has none)
SENT_ROW, SENT_ID = "_sent_row", "_sent_id"
"""Optional columns of a plan given to :func:`out_of_range` whose rows are a sent plan's rows spread over the
series they reach (a hierarchy's ``A/*`` given to ``A/L1``, ``A/L2``: ``models.demand_hier_plan``): the sent
row's position and the id it named. Rows are then counted and shown as sent (see :func:`out_of_range`)."""


def training_ranges(kept: Mapping[str, Any] | None, names: Sequence[str], *,
                    relative: bool = False) -> dict[str, tuple[float, ...]]:
    """Per driver, the range of its raw values (``relative``: its values divided by their series'
    mean, the member's ``ref``) that the LightGBM member kept at fit (``DemandForecaster.lgbm_``)
    responds to: ``(lo, hi, min, max, k)``, where ``lo`` / ``hi`` are the ``k``-th smallest / largest
    value of its training rows (``k`` = its ``min_child_samples``: a split needs ``k`` training rows
    each side, so the forecast is the same for every value at or below ``lo`` and at or above ``hi``;
    ``GlobalLGBM.x_split_range_``) and ``min`` / ``max`` those rows' span. A member fitted before that
    record (``x_range_`` only), or a driver with fewer than ``2 k`` training rows: ``(min, max)``.
    Drivers without a finite value there are left out. Empty when nothing reads drivers (no drivers,
    no LightGBM member, a young table on the short-history fallback) or the member records no range."""
    model = None if kept is None else kept.get("model")
    rng = getattr(model, "x_range_", None)
    if rng is None or not len(names):
        return {}
    # the member's X is the raw drivers then the same drivers relative to each series' mean
    # (models.demand_members._lgbm_forecast): the first len(names) columns are the raw ones
    at = len(names) if relative else 0
    if rng.shape[1] < at + len(names):
        return {}
    split = getattr(model, "x_split_range_", None)
    k = int(getattr(model, "min_child_samples", 0) or 0)
    out: dict[str, tuple[float, ...]] = {}
    for j, n in enumerate(names):
        lo, hi = rng[0, at + j], rng[1, at + j]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        s = None if split is None or split.shape[1] < at + len(names) else split[:, at + j]
        if s is not None and k and np.isfinite(s).all():
            out[str(n)] = (float(s[0]), float(s[1]), float(lo), float(hi), k)
        else:
            out[str(n)] = (float(lo), float(hi))
    return out


def out_of_range(plan: pd.DataFrame, ranges: Mapping[str, tuple[float, ...]] | None, *,
                 examples: int = EXAMPLES, relative: Mapping[str, tuple[float, ...]] | None = None,
                 refs: Mapping[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Per driver of ``ranges`` (:func:`training_ranges`) with planned values outside the range the
    forecast responds to, in the order of ``ranges``: ``driver``; ``rows`` (rows of ``plan`` outside
    it) of ``of_rows`` (rows with a value for it); ``below`` / ``above`` (how many under ``lo``, over
    ``hi``); ``min`` / ``max`` (the training rows' span); ``lo`` / ``hi`` / ``min_child_samples`` (the
    range checked: the k-th smallest / largest training value, k = min_child_samples; absent for a
    range of a member fitted before that record, checked against min / max); ``examples``: the first
    ``examples`` such rows of ``plan`` in its order as ``{unique_id, ds, value}``. ``plan`` holds
    ``unique_id, ds`` and any drivers; an empty (NaN) cell or a driver column it lacks is not
    checked. No ranges (a forecaster saved before they were recorded): an empty list.

    With ``relative`` (the same of the driver divided by its series' mean over the training rows) and ``refs`` (``{driver: array}``: each plan row's series mean, what the member
    divides by), each driver's entry is followed by one more for the rows whose value / mean lies
    outside ``relative``, the same keys plus ``kind`` (:data:`RELATIVE`), the ranges as
    multiples of the series' mean and ``relative`` in each example. A row can be in both entries.

    With the columns :data:`SENT_ROW` / :data:`SENT_ID` (rows spread from a sent plan's rows), ``rows``,
    ``of_rows``, ``below`` and ``above`` count sent rows (one with any series outside is outside; one with
    series on both sides counts on both), and an example is a sent row: its ``unique_id`` the id as sent,
    its value (and ``relative``) that of its first series outside, and, when that id is not the series'
    own, ``series`` (its rows here: the series it reached) and ``series_outside`` (of them, outside)."""
    out: list[dict[str, Any]] = []
    rel = relative if relative and refs is not None else {}
    for name in dict.fromkeys([*(ranges or {}), *rel]):
        if name not in plan.columns:
            continue
        v = pd.to_numeric(plan[name], errors="coerce").to_numpy(dtype="float64")
        if name in (ranges or {}):
            w = _outside(plan, name, v, None, ranges[name], examples)
            out += [w] if w else []
        if name in rel and name in refs:
            w = _outside(plan, name, v, v / np.asarray(refs[name], dtype="float64"), rel[name], examples)
            out += [{**w, "kind": RELATIVE}] if w else []
    return out


def _outside(plan: pd.DataFrame, name: str, v: np.ndarray, rel: np.ndarray | None, lohi: tuple[float, ...],
             examples: int) -> dict[str, Any] | None:
    """One entry of :func:`out_of_range`: the rows whose values ``v`` (or, given ``rel``, their
    multiples of the series' mean) lie outside ``lohi`` (``(lo, hi)``, or ``(lo, hi, min, max, k)``:
    see :func:`training_ranges`); None when none does."""
    lo, hi = lohi[0], lohi[1]
    x = v if rel is None else rel
    given = np.isfinite(x)
    below, above = given & (x < lo), given & (x > hi)
    bad = below | above
    if not bad.any():
        return None
    sent = plan[SENT_ROW].to_numpy() if SENT_ROW in plan.columns else None
    if sent is None:
        first = np.flatnonzero(bad)[:examples]
        count = lambda m: int(m.sum())  # noqa: E731
    else:  # one row per (sent row, series it reached): count and show the sent rows
        first = np.asarray([np.flatnonzero(bad & (sent == s))[0] for s in list(dict.fromkeys(sent[bad]))[:examples]],
                           dtype=int)
        count = lambda m: int(len(np.unique(sent[m])))  # noqa: E731
    uids, dss = plan["unique_id"].to_numpy()[first], plan["ds"].to_numpy()[first]
    eg = [{"unique_id": str(u), "ds": pd.Timestamp(d), "value": float(a)}
          for u, d, a in zip(uids, dss, v[first], strict=True)]
    if rel is not None:
        eg = [{**e, "relative": float(r)} for e, r in zip(eg, rel[first], strict=True)]
    if sent is not None:
        as_sent = plan[SENT_ID].to_numpy()[first]
        for e, i, u in zip(eg, first, as_sent, strict=True):
            if str(u) != e["unique_id"]:  # a summed id: said as sent, with the series it reached
                mine = given & (sent == sent[i])
                e.update({"unique_id": str(u), "series": int(mine.sum()), "series_outside": int((mine & bad).sum())})
    w = {"driver": str(name), "rows": count(bad), "of_rows": count(given),
         "below": count(below), "above": count(above), "min": float(lo), "max": float(hi), "examples": eg}
    if len(lohi) >= 5:  # checked against the k-th smallest / largest: min / max stay the training rows' span
        w.update({"min": float(lohi[2]), "max": float(lohi[3]), "lo": float(lo), "hi": float(hi),
                  "min_child_samples": int(lohi[4])})
    return w


def _num(v: float) -> str:
    """A driver value as a planner writes it: ``20`` (whole), ``8.01``, ``-3.5``."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _date(ds: Any) -> str:
    """``2024-03-31`` (with the time only when it has one)."""
    t = pd.Timestamp(ds)
    return str(t.date()) if t == t.normalize() else str(t)


def _examples_text(w: Mapping[str, Any]) -> str:
    """An entry's first rows as ``series date value`` (with ``(1.53 x)``, its multiple of the series'
    mean, for the relative kind), and ``, ...`` when more rows are outside."""
    rel = w.get("kind") == RELATIVE
    eg = ", ".join(f"{e['unique_id']} {_date(e['ds'])} {_num(e['value'])}" + _example_note(e, rel)
                   for e in w["examples"])
    return eg + ("" if w["rows"] <= len(w["examples"]) else ", ...")


def _example_note(e: Mapping[str, Any], rel: bool) -> str:
    """`` (1.53 x)`` for the relative kind; for a summed id sent (``A/*``) the series it reached:
    `` (its 3 series)``, `` (2 of its 3 series, e.g. 1.53 x)``."""
    if "series" not in e:
        return f" ({e['relative']:.2f} x)" if rel else ""
    n, k = e["series"], e["series_outside"]
    some = f"its {n} series" if k == n else f"{k} of its {n} series"
    return f" ({some}, e.g. {e['relative']:.2f} x)" if rel else f" ({some})"


def _minmax_side(w: Mapping[str, Any]) -> str:
    """``2 above its max, 1 below its min`` (the sides with rows) of an entry checked against min / max."""
    return ", ".join(f"{n} {s}" for n, s in ((w["above"], "above its max"), (w["below"], "below its min")) if n)


def warning_text(w: Mapping[str, Any]) -> str:
    """One driver of :func:`out_of_range` in words: the driver, how many planned rows lie outside the
    range the forecast responds to (above / below), the first rows (series, date, value), that range
    and why (LightGBM's min_child_samples; the training rows' span), and what the forecast does with
    such values; an entry of the relative check says the ranges and each row's value as multiples of
    its series' mean. An entry without ``lo`` (a member fitted before that record) says the min / max."""
    if "lo" not in w:
        return _minmax_text(w)
    d, rel = w["driver"], w.get("kind") == RELATIVE
    num = (lambda v: f"{v:.2f}") if rel else _num
    x = " x" if rel else ""
    lo, hi = num(w["lo"]), num(w["hi"])
    side = ", ".join(f"{n} {s}{x}" for n, s in ((w["above"], f"above {hi}"), (w["below"], f"below {lo}")) if n)
    eg = _examples_text(w)
    what, which = (f"{d} relative to its series' mean", f"{d} (x its series' mean)") if rel else (d, d)
    how = f"{d} as a multiple of its series' mean (up to the last date of fit)" if rel else d
    any_ = "any multiple" if rel else f"any {d}"
    return (f"{what} is outside the range the forecast responds to in {w['rows']} of {w['of_rows']} planned "
            f"row{'' if w['of_rows'] == 1 else 's'} ({side}), e.g. (series, date, {which}) {eg}; the forecast "
            f"responds to {how} only between {lo} and {hi}{x}: the LightGBM member (the one that reads drivers) needs "
            f"{w['min_child_samples']} training rows on each side of a split, and its training rows span "
            f"{num(w['min'])} .. {num(w['max'])}{x}, so its trees treat {any_} at or above {hi}{x} as {hi}{x} and any "
            f"at or below {lo}{x} as {lo}{x}{_OTHER[rel].format(d=d)}")


_OTHER = {
    False: "; the forecast still moves with such a {d} where its multiple of its series' mean is inside the range "
           "of those (checked on its own)",
    True: "; the forecast still moves with such a {d} where the {d} itself is inside its range (checked on its own)",
}
"""What one entry does not say: the member reads each driver both as it is and as a multiple of its series'
mean, so a row beyond one of the two ranges is still forecast from the other; beyond both, not at all."""


def _minmax_text(w: Mapping[str, Any]) -> str:
    """:func:`warning_text` of an entry checked against the training rows' min / max (a member fitted
    before the k-th values were recorded)."""
    if w.get("kind") == RELATIVE:
        return _relative_text(w)
    side, eg = _minmax_side(w), _examples_text(w)
    lo, hi = _num(w["min"]), _num(w["max"])
    return (f"{w['driver']} is outside the range the forecaster was trained on in {w['rows']} of {w['of_rows']} "
            f"planned row{'' if w['of_rows'] == 1 else 's'} ({side}; trained on {lo} .. {hi}), e.g. (series, date, "
            f"{w['driver']}) {eg}; the LightGBM member (the one that reads drivers) treats such values as the "
            f"nearest edge of that range ({lo} or {hi}){_OTHER[False].format(d=w['driver'])}")


def _relative_text(w: Mapping[str, Any]) -> str:
    """:func:`_minmax_text` of an entry of the relative check (multiples shown with two decimals)."""
    d = w["driver"]
    side, eg = _minmax_side(w), _examples_text(w)
    lo, hi = f"{w['min']:.2f}", f"{w['max']:.2f}"
    return (f"{d} relative to its series' mean is outside the range the forecaster was trained on in {w['rows']} of "
            f"{w['of_rows']} planned row{'' if w['of_rows'] == 1 else 's'} ({side}; trained on {lo} .. {hi} x its "
            f"series' mean), e.g. (series, date, {d} (x its series' mean)) {eg}; the LightGBM member (the one "
            f"that reads drivers) also reads {d} as a multiple of its series' mean up to the last date of fit, and "
            f"treats such multiples as the nearest edge of that range ({lo} or {hi} x){_OTHER[True].format(d=d)}")
