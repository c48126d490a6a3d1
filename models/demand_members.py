"""The members of :class:`models.demand.DemandForecaster` and how they run at one cutoff.

``_MemberRuns`` (a mixin of ``DemandForecaster``; it reads the forecaster's settings) fits every
member on the series eligible at a cutoff index and returns their forecasts, with the
Ensemble, as ``unique_id, ds, step, cutoff`` + one column per member (and its interval
columns when the member has its own). The member names and the served-forecast name
(``FINAL``) live here so the modules that build on the members need not import
``models.demand``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.demand_conformal import nest_intervals
from models.demand_data import DEFAULT_SEASON, Panel
from models.demand_lgbm import GlobalLGBM
from models.demand_stat import STAT_MEMBERS, stat_forecast

__all__ = ["ALL_MEMBERS", "FAST_MEMBERS", "FINAL", "INTERMITTENT", "STAT_MEMBERS"]

INTERMITTENT = ("CrostonSBA", "TSB", "IMAPA", "ADIDA")
ALL_MEMBERS = (*STAT_MEMBERS, "LightGBM")
# the fast profile's default members: the statsforecast models that cost well under a
# millisecond per series (AutoETS and AutoTheta are ~95 % of the full profile's cost)
FAST_MEMBERS = ("SeasonalNaive", "CrostonSBA", "TSB", "IMAPA", "ADIDA", "LightGBM")
# LightGBM settings the fast profile starts from (lgbm_params override them): training rows
# from a random sample of whole series (every period) instead of the most recent periods
_FAST_LGBM = {"row_sample": "series", "max_rows": 400_000}
_ENSEMBLE_OF = ("AutoETS", "AutoTheta", "LightGBM")
FINAL = "Final"


def _member_groups(stat: Sequence[str], need: dict[str, np.ndarray] | None, n: int) -> list[tuple[list[str], np.ndarray | None]]:
    """The statsforecast calls of one cutoff as (members, series mask or None for all): without
    ``need`` every member on every series (one call, as always); with it the series grouped by the
    set of members they need (series that need none are left out)."""
    if need is None:
        return [(list(stat), None)]
    want = [m for m in stat if m in need]
    if not want:
        return []
    M = np.stack([np.asarray(need[m], dtype=bool).reshape(n) for m in want], axis=1)
    patterns, inverse = np.unique(M, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    return [([want[j] for j in np.flatnonzero(p)], inverse == g) for g, p in enumerate(patterns) if p.any()]


class _MemberRuns:
    """Member forecasts at one cutoff (mixin of ``DemandForecaster``, which stores the settings)."""

    def _fast(self) -> bool:
        return getattr(self, "profile_", "full") == "fast"

    def _members(self) -> tuple[str, ...]:
        return getattr(self, "members_", None) or tuple(self.models or ALL_MEMBERS)

    def _levels(self) -> list[int]:
        return sorted(int(x) for x in self.level)

    def _season(self, panel: Panel) -> int:
        return int(self.season_length or DEFAULT_SEASON[panel.freq])

    def _min_train(self, h: int) -> int:
        return int(self.min_train or max(2 * h, 4))

    # -- members at one cutoff ----------------------------------------------------------------
    def _eligible(self, panel: Panel, c: int, h: int) -> np.ndarray:
        sub = panel.Y[:, : c + 1]
        n_obs = np.isfinite(sub).sum(axis=1)
        return (n_obs >= self._min_train(h)) & (np.nansum(sub, axis=1) > 0)

    def _members_at(self, panel: Panel, c: int, h: int, X_future: np.ndarray | None = None,
                    need: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
        """Forecasts of every member from cutoff index c, for the eligible series.

        ``need`` (member -> boolean mask over the eligible series) runs only those members and
        statsforecast ones only for those series; the rest of their columns are NaN. Every
        statsforecast member forecasts each series on its own (a series' numbers do not depend
        on the other series or members in the call), so the rows it runs are the same to the bit
        as in the full call; LightGBM, a global model, runs on every eligible series when any
        needs it. The Ensemble (the mean of ``_ENSEMBLE_OF``'s members) is kept where every member of
        it has a forecast; NaN on a row where one of them has none."""
        elig = self._eligible(panel, c, h)
        if not elig.any():
            return pd.DataFrame()
        sub = panel.subset(elig)
        levels = self._levels()
        future = pd.date_range(panel.dates[c], periods=h + 1, freq=panel.offset)[1:]
        # a series with fewer than two seasons of history gets the non-seasonal versions of the
        # members (season 1); the others keep their season
        n_obs = np.isfinite(sub.Y[:, : c + 1]).sum(axis=1)
        full_season = self._season(panel)
        long_enough = n_obs >= 2 * full_season
        frames = {  # unique_id as row codes of sub until the end (cheap merges)
            "unique_id": np.repeat(np.arange(sub.n), h),
            "ds": np.tile(future.values, sub.n),
            "step": np.tile(np.arange(1, h + 1), sub.n),
        }
        out = pd.DataFrame(frames)
        members = self._members()
        stat = [m for m in members if m in STAT_MEMBERS]
        if stat:
            def with_stat(out: pd.DataFrame = out) -> pd.DataFrame:
                long = sub.long(c, codes=True)
                parts = []
                for group, among in _member_groups(stat, need, sub.n):
                    for s_len, rows in ((full_season, long_enough), (1, ~long_enough)):
                        rows = rows if among is None else rows & among
                        if rows.any():
                            part = long if rows.all() else long[rows[long["unique_id"].to_numpy()]]
                            parts.append(stat_forecast(part, group, season=s_len, h=h, offset=panel.offset,
                                                       levels=None if self._fast() else levels, n_jobs=self.n_jobs))
                if parts:
                    fc = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
                    out = out.merge(fc, on=["unique_id", "ds"], how="left")
                return out

            # a tuning run's trials differ in selection / lgbm_params only, which these members never
            # read: a MemberCache(stat_cutoffs=N) hands over the frame made from the same history
            shared = getattr(self, "_member_cache", None) if need is None else None
            out = with_stat() if shared is None else shared.stat_members(self, sub, c, h, with_stat)
        if "LightGBM" in members and (need is None or need.get("LightGBM", np.zeros(1, bool)).any()):
            keep = X_future is None and c == getattr(self, "_keep_lgbm_at", None)
            out["LightGBM"] = self._lgbm_forecast(sub, c, h, future, X_future, keep=keep).reshape(-1)
        if need is not None:  # members no series needs: all NaN, so every member has its column
            for m in members:
                if m not in out.columns:
                    out[m] = np.nan
        out["unique_id"] = sub.uids[out["unique_id"].to_numpy()]
        for m in members:
            nest_intervals(out, m, levels)
        present = [m for m in _ENSEMBLE_OF if m in out.columns]
        if len(present) >= 2:
            # NaN where a member of it has no forecast: a mean of the others would be another
            # forecast under the Ensemble's name (and score and serve as the Ensemble)
            out["Ensemble"] = out[present].mean(axis=1, skipna=False)
            if need is not None:
                ens = np.asarray(need.get("Ensemble", np.zeros(sub.n, dtype=bool)), dtype=bool)
                out.loc[~np.repeat(ens, h), "Ensemble"] = np.nan
        out["cutoff"] = panel.dates[c]
        return out

    def _lgbm_forecast(self, sub: Panel, c: int, h: int, future: pd.DatetimeIndex,
                       X_future: np.ndarray | None, keep: bool = False) -> np.ndarray:
        """The LightGBM member's forecasts for the series of ``sub`` from cutoff index ``c``.
        ``keep`` stores the fitted member (booster, scales, driver references) as ``lgbm_``, so
        :meth:`predict` with new drivers only re-runs its prediction."""
        # the seasonal lag: the full season unless most series have fewer than two of them
        full_season = self._season(sub)
        n_obs = np.isfinite(sub.Y[:, : c + 1]).sum(axis=1)
        season = full_season if np.median(n_obs) >= 2 * full_season else 1
        Y = sub.Y[:, : c + 1]
        first = int(np.argmax(np.isfinite(Y).any(axis=0)))
        Y = Y[:, first:]
        X = Xf = None
        if sub.X is not None:
            Xh = sub.X[:, first : c + 1, :]
            if X_future is None:
                if sub.X.shape[1] >= c + 1 + h:
                    X_future = sub.X[:, c + 1 : c + 1 + h, :]
                else:  # unknown future drivers: carry the last known value forward
                    X_future = np.repeat(sub.X[:, c : c + 1, :], h, axis=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ref = np.nanmean(np.abs(Xh), axis=1, keepdims=True)
            ref = np.where(np.isfinite(ref) & (ref > 0), ref, 1.0)
            X = np.concatenate([Xh, Xh / ref], axis=2)
            Xf = np.concatenate([X_future, X_future / ref], axis=2)
        fast = _FAST_LGBM if self._fast() else {}
        params = {"season_length": season, "random_state": self.random_state, **fast, **(self.lgbm_params or {})}
        model = GlobalLGBM(**params)
        out = model.fit_predict(Y, sub.dates[first : c + 1], future, sub.freq, X, Xf)
        if keep:
            self.lgbm_ = {"model": model, "first": first, "c": c, "ref": None if sub.X is None else ref}
        return out
