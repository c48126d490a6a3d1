"""Member forecasts shared between DemandForecasters that run on the same data with the same
settings (``dealerml train demand``: the backtest's windows and the final fit's selection
windows are the same cutoffs).

``DemandForecaster`` keeps the forecasts of every member from a cutoff index ``c`` for ``h``
periods (a frame per ``(c, h)``) while it fits or cross-validates; each depends only on the
panel (series, dates, drivers), the cutoff, the horizon and the forecaster's settings, never on
which call asked for it. A :class:`MemberCache` hands the same frames to the next forecaster if,
and only if, all of those are the same (settings compared as their repr, the panel array by
array), and starts empty otherwise, so passing one can change no number, only skip refits.

Statsforecast members across settings (``dealerml tune demand`` / ``promote demand``): a trial
changes only ``selection`` and ``lgbm_params``, which the statsforecast members never read, so a
``MemberCache(stat_cutoffs=N)`` also keeps their forecasts from a cutoff (the frame before
LightGBM and the Ensemble are added) under a digest of everything they are made from: the
settings other than those two (ones the members do not read either, such as ``random_state``,
still tell frames apart: a miss, never a wrong frame), the cutoff's date, the horizon, and the
eligible series' ids and demand up to the cutoff with its dates. Another trial, another fold
whose history up to that date is the same, or the final fit takes them from there; LightGBM, the
Ensemble, the choice and the bands are made again each time. At most ``N`` such frames are kept
(the least recently used dropped first).
"""

from __future__ import annotations

import hashlib
import inspect
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

__all__ = ["MemberCache"]


# what a tuning trial changes; the statsforecast members read neither
TRIAL_SETTINGS = ("selection", "lgbm_params")


def _settings(est: Any, skip: tuple[str, ...] = ()) -> str:
    names = [p for p in inspect.signature(type(est).__init__).parameters if p != "self" and p not in skip]
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


def _digest(settings: str, sub: Any, c: int, h: int) -> bytes:
    """What the statsforecast members' frame at cutoff index ``c`` of ``sub`` (the eligible series)
    is made from, as a BLAKE2b-256 digest: the settings, ``h``, the frequency, the dates up to ``c``,
    the ids and the demand up to ``c`` (bytes, so -0.0 / NaN payloads differ: a miss, never a false hit)."""
    d = hashlib.blake2b(digest_size=32)
    for part in (settings, str(h), str(sub.freq), str(sub.offset), str(c)):
        d.update(part.encode())
        d.update(b"\x00")
    d.update(np.ascontiguousarray(sub.dates[: c + 1].asi8).tobytes())
    d.update("\x00".join(map(str, sub.uids)).encode())
    d.update(b"\x00")
    Y = np.ascontiguousarray(sub.Y[:, : c + 1])
    d.update(str((Y.shape, Y.dtype.str)).encode())
    d.update(Y.tobytes())
    return d.digest()


class _StatStore:
    """The statsforecast members' frames by digest, at most ``size`` (least recently used dropped).
    ``runs`` counts the frames made (statsforecast called), ``reused`` the ones handed out again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.frames: OrderedDict[bytes, Any] = OrderedDict()
        self.runs = 0
        self.reused = 0
        self.made: Counter = Counter()  # runs by (cutoff date, h)

    def get(self, est: Any, sub: Any, c: int, h: int, make: Any) -> Any:
        key = _digest(_settings(est, TRIAL_SETTINGS), sub, c, h)
        if key in self.frames:
            self.frames.move_to_end(key)
            self.reused += 1
            return self.frames[key].copy()
        frame = make()
        self.runs += 1
        self.made[(sub.dates[c], h)] += 1
        self.frames[key] = frame.copy()
        while len(self.frames) > self.size:
            self.frames.popitem(last=False)
        return frame


class MemberCache:
    """Member forecasts by ``(cutoff index, h)`` for one panel and one set of forecaster settings.

    Pass the same instance as ``member_cache`` to ``DemandForecaster.cross_validation`` and then
    to ``fit`` (or to ``training.demand_backtest.run_backtest`` and ``fit``): the second call
    reuses the first one's member forecasts at the cutoffs both need. A different table or
    different settings empty it first.

    ``stat_cutoffs=N`` (> 0) also keeps up to ``N`` frames of the statsforecast members for
    forecasters whose settings differ only in ``selection`` / ``lgbm_params`` (the tuning trials),
    on any table with the same history up to the cutoff (module docstring); ``stat_runs`` /
    ``stat_reused`` count the frames made and reused. 0 (the default): not kept."""

    def __init__(self, stat_cutoffs: int = 0, *, _stat: _StatStore | None = None) -> None:
        self._settings: str | None = None
        self._panel: Any = None
        self.frames: dict = {}
        self._parts: dict[str, MemberCache] = {}
        self.stat = _stat if _stat is not None else (_StatStore(stat_cutoffs) if stat_cutoffs > 0 else None)

    @property
    def stat_runs(self) -> int:
        """Statsforecast member frames made: one per cutoff and history first asked for (its
        statsforecast calls, one per season group, included)."""
        return 0 if self.stat is None else self.stat.runs

    @property
    def stat_reused(self) -> int:
        return 0 if self.stat is None else self.stat.reused

    def part(self, name: str) -> MemberCache:
        """A cache of its own for one of several forecasters that share this one (the bottom and
        the upper levels of ``models.demand_hier.HierarchicalDemandForecaster``): each part keeps
        its own panel and settings; the statsforecast frames (``stat_cutoffs``) are shared, told
        apart by what they are made from."""
        return self._parts.setdefault(name, MemberCache(_stat=self.stat))

    def stat_members(self, est: Any, sub: Any, c: int, h: int, make: Any) -> Any:
        """The statsforecast members' frame of ``est`` at cutoff index ``c`` of ``sub`` (the eligible
        series): a copy of the kept one made from the same settings (but ``selection`` /
        ``lgbm_params``) and history, else ``make()`` (kept when ``stat_cutoffs`` > 0)."""
        if self.stat is None:
            return make()
        return self.stat.get(est, sub, c, h, make)

    def frames_for(self, est: Any, panel: Any) -> dict:
        """The frames for ``est`` (settings resolved for ``panel``) on ``panel``: the kept ones when
        both match what they were made with, else a new empty dict (kept from now on)."""
        s = _settings(est)
        if self._panel is None or s != self._settings or not _same_panel(panel, self._panel):
            self._settings, self._panel, self.frames = s, panel, {}
        return self.frames
