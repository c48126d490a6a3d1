"""Member forecasts shared between DemandForecasters that run on the same data with the same
settings (``dealerml train demand``: the backtest's windows and the final fit's selection
windows are the same cutoffs).

``DemandForecaster`` keeps the forecasts of every member from a cutoff index ``c`` for ``h``
periods (a frame per ``(c, h)``) while it fits or cross-validates; each depends only on the
panel (series, dates, drivers), the cutoff, the horizon and the forecaster's settings, never on
which call asked for it. A :class:`MemberCache` hands the same frames to the next forecaster if,
and only if, all of those are the same (settings compared as their repr, the panel array by
array), and starts empty otherwise, so passing one can change no number, only skip refits.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

__all__ = ["MemberCache"]


def _settings(est: Any) -> str:
    names = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    vals = {p: getattr(est, p, None) for p in names}
    vals["profile_"] = getattr(est, "profile_", None)
    vals["members_"] = getattr(est, "members_", None)
    return f"{type(est).__module__}.{type(est).__qualname__}{sorted(vals.items())!r}"


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _same_panel(a: Any, b: Any) -> bool:
    if a is b:
        return True
    return (a.freq == b.freq and a.offset == b.offset and list(a.exog) == list(b.exog) and a.dates.equals(b.dates)
            and _same_array(np.asarray(a.uids), np.asarray(b.uids)) and _same_array(a.Y, b.Y) and _same_array(a.X, b.X))


class MemberCache:
    """Member forecasts by ``(cutoff index, h)`` for one panel and one set of forecaster settings.

    Pass the same instance as ``member_cache`` to ``DemandForecaster.cross_validation`` and then
    to ``fit`` (or to ``training.demand_backtest.run_backtest`` and ``fit``): the second call
    reuses the first one's member forecasts at the cutoffs both need. A different table or
    different settings empty it first."""

    def __init__(self) -> None:
        self._settings: str | None = None
        self._panel: Any = None
        self.frames: dict = {}
        self._parts: dict[str, MemberCache] = {}

    def part(self, name: str) -> MemberCache:
        """A cache of its own for one of several forecasters that share this one (the bottom and
        the upper levels of ``models.demand_hier.HierarchicalDemandForecaster``): each part keeps
        its own panel and settings."""
        return self._parts.setdefault(name, MemberCache())

    def frames_for(self, est: Any, panel: Any) -> dict:
        """The frames for ``est`` (settings resolved for ``panel``) on ``panel``: the kept ones when
        both match what they were made with, else a new empty dict (kept from now on)."""
        s = _settings(est)
        if self._panel is None or s != self._settings or not _same_panel(panel, self._panel):
            self._settings, self._panel, self.frames = s, panel, {}
        return self.frames
