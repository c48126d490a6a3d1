"""DemandForecaster: statistical + global LightGBM members, a choice per demand class made on
rolling-origin windows inside the training data, and calibrated intervals for every forecast.

Input: a long table ``unique_id, ds, y`` (units per period) plus optional numeric exogenous
columns that are known in advance (price, promotion). Output columns of ``predict`` and
``cross_validation``: ``unique_id, ds`` (``cutoff, y`` in CV), then for each model ``m``
(the members, ``Ensemble`` and the served forecast ``Final``) ``m, m-lo-80, m-hi-80, m-lo-95,
m-hi-95`` (one pair per requested level), and ``final_model`` (the member behind ``Final``).

How the final forecast is made, for a cutoff c and horizon h:
1. every member forecasts from the internal cutoffs c-h, c-2h, ... (``selection_windows``);
   their errors, scaled by each series' naive in-sample error, pick the best member per
   demand class (Syntetos-Boylan class as of c) - never using data after c;
2. the same errors give split-conformal intervals for LightGBM, Ensemble and Final;
   statsforecast members keep their own intervals (conformal for the intermittent ones)
   in the ``full`` profile and get split-conformal ones too in the ``fast`` profile;
3. every member forecasts from c; ``Final`` takes the chosen member's forecast per series.

Profiles (``profile``): ``full`` (all seven statsforecast members with their own intervals),
``fast`` (the cheap members, point forecasts + conformal intervals; for 10k+ series) and
``auto`` (fast above ``fast_above`` = 5,000 series). BENCHMARKS.md "Speed and memory" has the cost.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.demand import demand_classes, period_alias
from models.demand_cache import MemberCache
from models.demand_data import DEFAULT_SEASON, Panel, build_panel
from models.demand_lgbm import GlobalLGBM
from models.demand_select import (
    CONFORMAL,
    apply_conformal,
    conformal_table,
    crossfit_point,
    final_point,
    naive_scale,
    nest_intervals,
    parse_selection,
    select_models,
)
from models.demand_stat import STAT_MEMBERS, stat_forecast

__all__ = ["DemandForecaster", "NotFittedError", "STAT_MEMBERS", "ALL_MEMBERS", "FAST_MEMBERS", "AUTO_FAST_ABOVE"]

INTERMITTENT = ("CrostonSBA", "TSB", "IMAPA", "ADIDA")
ALL_MEMBERS = (*STAT_MEMBERS, "LightGBM")
# the fast profile's default members: the statsforecast models that cost well under a
# millisecond per series (AutoETS and AutoTheta are ~95 % of the full profile's cost)
FAST_MEMBERS = ("SeasonalNaive", "CrostonSBA", "TSB", "IMAPA", "ADIDA", "LightGBM")
AUTO_FAST_ABOVE = 5000  # profile "auto": fast when the table has more series than this
PROFILES = ("full", "fast", "auto")
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


class NotFittedError(ValueError, AttributeError):
    """Raised when predict / save is called before fit."""


class DemandForecaster:
    """Demand forecaster with intervals (scikit-learn style).

    Parameters
    ----------
    freq : ``D``, ``W`` or ``M``.
    h : horizon in periods that ``fit`` prepares and ``predict`` may ask for (<= h).
    season_length : periods per season; default 7 / 52 / 12 for D / W / M. A series with fewer
        than two seasons of history at a cutoff gets the members' non-seasonal versions (season 1).
    models : members to run (subset of ``ALL_MEMBERS``); None = the profile's default
        (``ALL_MEMBERS`` for full, ``FAST_MEMBERS`` for fast).
    profile : ``full``, ``fast`` or ``auto`` (fast when the table has more than
        ``fast_above`` series). ``fast`` runs the statsforecast members for point forecasts
        only and gives every member split-conformal intervals from its selection-window errors
        (as LightGBM always gets), defaults to ``FAST_MEMBERS`` and trains LightGBM on a random
        sample of whole series (at most ``max_rows`` rows). ``full`` is the original path.
    fast_above : series count above which ``auto`` means ``fast``.
    selection : ``class`` (per demand class), ``series`` or ``global``.
    selection_windows : internal rolling-origin windows (each h periods) used for the choice
        and the conformal intervals.
    conformal : which errors of ``Final`` calibrate its bands: ``in_sample`` (the chosen member's
        errors on the windows that chose it), ``cross_fit`` (each window's errors from the choice
        made on the other windows; needs 2+ windows, else as in_sample) or ``cross_fit_series``
        (two folds of series). The point forecast is the same for all three; ``residuals_``
        (safety stock) are the errors the bands use. Neither cross-fit passed the validation rule
        (BENCHMARKS.md "What was tried", session 8), so ``in_sample`` stays the default.
    level : interval levels in percent.
    min_train : fewest observed periods a series needs at a cutoff (default 2*h).
    lgbm_params : keyword arguments for :class:`models.demand_lgbm.GlobalLGBM`.
    exog : known-future numeric columns to use; None = every numeric column besides y.
    n_jobs : statsforecast processes. random_state : seed of LightGBM.
    """

    def __init__(
        self,
        freq: str = "W",
        h: int = 8,
        *,
        season_length: int | None = None,
        models: Sequence[str] | None = None,
        selection: str = "class",
        selection_windows: int = 2,
        level: Sequence[int] = (80, 95),
        min_train: int | None = None,
        lgbm_params: dict[str, Any] | None = None,
        exog: Sequence[str] | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
        profile: str = "auto",
        fast_above: int = AUTO_FAST_ABOVE,
        conformal: str = "in_sample",
    ) -> None:
        self.freq = freq
        self.h = h
        self.season_length = season_length
        self.models = models
        self.selection = selection
        self.selection_windows = selection_windows
        self.level = level
        self.min_train = min_train
        self.lgbm_params = lgbm_params
        self.exog = exog
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.profile = profile
        self.fast_above = fast_above
        self.conformal = conformal

    # -- checks -----------------------------------------------------------------------------
    def _check_params(self, h: int) -> None:
        period_alias(self.freq)
        if not isinstance(h, int | np.integer) or h < 1 or h > 520:
            raise ValueError(f"horizon h must be an integer between 1 and 520 periods; got {h!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {list(PROFILES)}; got {self.profile!r}")
        if self.models is not None:
            unknown = [m for m in self.models if m not in ALL_MEMBERS]
            if unknown or not self.models:
                raise ValueError(f"models must be a non-empty subset of {list(ALL_MEMBERS)}; got {list(self.models)}")
        for lv in self.level:
            if not 0 < lv < 100:
                raise ValueError(f"level must be percentages between 0 and 100; got {lv}")
        if self.selection_windows < 1:
            raise ValueError(f"selection_windows must be >= 1; got {self.selection_windows}")
        if self.conformal not in CONFORMAL:
            raise ValueError(f"conformal must be one of {list(CONFORMAL)}; got {self.conformal!r}")

    def _resolve(self, panel: Panel) -> None:
        """Fix the profile (``profile_``) and the members (``members_``) for this table."""
        fast = self.profile == "fast" or (self.profile == "auto" and panel.n > self.fast_above)
        self.profile_ = "fast" if fast else "full"
        default = FAST_MEMBERS if fast else ALL_MEMBERS
        self.members_ = tuple(self.models) if self.models is not None else default

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
        needs it. The Ensemble is kept where every member of it ran."""
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
            out["Ensemble"] = out[present].mean(axis=1)
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

    # -- one forecast origin with its selection and calibration --------------------------------
    def _actuals(self, panel: Panel, fc: pd.DataFrame) -> np.ndarray:
        pos = pd.Series(np.arange(panel.n), index=panel.uids)
        ii = pos.loc[fc["unique_id"]].to_numpy()
        tt = panel.dates.get_indexer(pd.DatetimeIndex(fc["ds"]))
        y = np.full(len(fc), np.nan)
        ok = tt >= 0
        y[ok] = panel.Y[ii[ok], tt[ok]]
        return y

    def _candidates(self) -> list[str]:
        """What the choice picks from: the members, and the Ensemble when 2+ of its members run."""
        members = self._members()
        return [*members, *(["Ensemble"] if sum(m in members for m in _ENSEMBLE_OF) >= 2 else [])]

    def _needed(self, panel: Panel, c: int, h: int, choice: pd.Series, candidates: list[str]) -> dict[str, np.ndarray]:
        """Per candidate, the eligible series at c whose served point uses it: its chosen one,
        and every member of the Ensemble where that is chosen (``_members_at``'s ``need``)."""
        uids = panel.uids[self._eligible(panel, c, h)]
        pick = pd.Series(uids).map(choice).fillna(candidates[0]).to_numpy()
        need = {m: pick == m for m in candidates}
        for m in _ENSEMBLE_OF:
            if m in need and "Ensemble" in need:
                need[m] = need[m] | need["Ensemble"]
        return need

    def _origin(self, panel: Panel, c: int, h: int, cache: dict, X_future: np.ndarray | None = None,
                point_only: bool = False) -> tuple[pd.DataFrame, dict]:
        """Forecasts from cutoff index c with the choice and bands learnt on the windows before it.

        ``point_only`` (the inventory replay): only ``Final``, its bands and residuals, the same
        to the bit; the members are run at c only for the series whose choice uses them
        (``_needed``), the frame has no member or Ensemble columns and ``info["conformal"]``
        only Final's table. The windows before c are run in full (the choice needs them)."""
        levels = self._levels()
        hist_parts = []
        for j in range(1, self.selection_windows + 1):
            ci = c - j * h
            if ci < self._min_train(h) - 1:
                break
            key = (ci, h)
            if key not in cache:
                cache[key] = self._members_at(panel, ci, h)
            part = cache[key]
            if part.empty:
                continue
            part = part.copy()
            part["y"] = self._actuals(panel, part)
            scale = pd.Series(naive_scale(panel.Y, ci), index=panel.uids)
            part["scale"] = scale.loc[part["unique_id"]].to_numpy()
            hist_parts.append(part)
        fc = None
        if not point_only:
            if (c, h) in cache and X_future is None:
                fc = cache[(c, h)].copy()
            else:
                fc = self._members_at(panel, c, h, X_future)
                if X_future is None:
                    cache[(c, h)] = fc
                fc = fc.copy()
            if fc.empty:
                raise self._no_series(panel, c, h)
        cls_df = demand_classes(panel.long(c, codes=True))
        cls_df["unique_id"] = panel.uids[cls_df["unique_id"].to_numpy()]
        classes = cls_df.set_index("unique_id")["demand_class"]
        candidates = self._candidates() if fc is None else [m for m in (*self._members(), "Ensemble") if m in fc.columns]
        if hist_parts:
            hist = pd.concat(hist_parts, ignore_index=True)
            hist = hist[np.isfinite(hist["y"])]
            choice, scores = select_models(hist, candidates, classes, self.selection)
        else:
            hist = None
            fallback = "AutoETS" if "AutoETS" in candidates else candidates[0]
            choice, scores = pd.Series(fallback, index=classes.index), pd.DataFrame()
        if fc is None:
            fc = self._members_at(panel, c, h, X_future, need=self._needed(panel, c, h, choice, candidates))
            if fc.empty:
                raise self._no_series(panel, c, h)
        fc["demand_class"] = fc["unique_id"].map(classes).fillna("unknown").to_numpy()
        fc["final_model"] = fc["unique_id"].map(choice).fillna(candidates[0]).to_numpy()
        scale_c = pd.Series(naive_scale(panel.Y, c), index=panel.uids).loc[fc["unique_id"]].to_numpy()
        # the chosen member, re-centred on its median error per class with selection "...+median"
        fc[FINAL], hist_final = final_point(fc, hist, candidates, choice, classes, scale_c, self.selection)
        tables = {}
        final_resid = pd.DataFrame(columns=["demand_class", "step", "r", "unique_id", "cutoff"])
        conformal = (*[x for x in STAT_MEMBERS if self._fast()], "LightGBM", "Ensemble", FINAL)
        for m in [x for x in conformal if x in fc.columns and (x == FINAL or not point_only)]:
            if hist is None:
                continue
            if m == FINAL:
                pred = hist_final
                if getattr(self, "conformal", "in_sample") != "in_sample":
                    # errors of a choice made without the rows they calibrate (None: one group only)
                    cf = crossfit_point(hist, candidates, classes, self.selection, self.conformal)
                    pred = hist_final if cf is None else cf
            else:
                pred = hist[m].to_numpy()
            resid = pd.DataFrame(
                {
                    "demand_class": hist["unique_id"].map(classes).fillna("unknown").to_numpy(),
                    "step": hist["step"].to_numpy(),
                    "r": (hist["y"].to_numpy() - pred) / hist["scale"].to_numpy(),
                }
            )
            if m == FINAL:
                final_resid = resid.assign(unique_id=hist["unique_id"].to_numpy(), cutoff=hist["cutoff"].to_numpy())
            tables[m] = conformal_table(resid, levels)
            ints = apply_conformal(
                fc[m].to_numpy(), scale_c, fc["demand_class"].to_numpy(), fc["step"].to_numpy(), tables[m], levels
            )
            for lv, (lo, hi) in ints.items():
                fc[f"{m}-lo-{lv}"] = lo
                fc[f"{m}-hi-{lv}"] = hi
            nest_intervals(fc, m, levels)
        if point_only:  # member columns hold only the rows the choice uses: leave them out
            fc = fc[[x for x in fc.columns if x == FINAL or x.startswith(f"{FINAL}-") or x not in candidates
                     and not any(x.startswith(f"{m}-lo-") or x.startswith(f"{m}-hi-") for m in candidates)]]
        info = {"choice": choice, "scores": scores, "classes": cls_df, "conformal": tables,
                "residuals": final_resid, "scale": pd.Series(naive_scale(panel.Y, c), index=panel.uids)}
        return fc, info

    def _no_series(self, panel: Panel, c: int, h: int) -> ValueError:
        return ValueError(
            f"no series has {self._min_train(h)} observed periods with some demand up to "
            f"{panel.dates[c].date()}; give longer series or a smaller horizon"
        )

    def _columns(self, fc: pd.DataFrame) -> list[str]:
        cols = []
        for m in (*[x for x in ALL_MEMBERS if x in self._members()], "Ensemble", FINAL):
            if m not in fc.columns:
                continue
            cols.append(m)
            for lv in self._levels():
                cols += [c for c in (f"{m}-lo-{lv}", f"{m}-hi-{lv}") if c in fc.columns]
        return cols

    # -- public API -------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, *, member_cache: MemberCache | None = None) -> DemandForecaster:
        """Check ``df``, run the selection windows and prepare forecasts for ``h`` periods.

        ``member_cache``: a :class:`models.demand_cache.MemberCache` that a ``cross_validation``
        with the same settings on the same ``df`` filled: its member forecasts at the selection
        windows' cutoffs are used instead of refitting them (the same numbers); the last origin
        is always run here."""
        self._check_params(self.h)
        panel = build_panel(df, self.freq, exog=self.exog)
        self._resolve(panel)
        self.notes_ = panel.notes
        cache: dict = {}
        if member_cache is not None:  # only the windows this fit reads, as if it had run them
            shared = member_cache.frames_for(self, panel)
            last = panel.Y.shape[1] - 1
            for j in range(1, self.selection_windows + 1):
                if (last - j * self.h, self.h) in shared:
                    cache[(last - j * self.h, self.h)] = shared[(last - j * self.h, self.h)]
        self.lgbm_ = None
        self._keep_lgbm_at = panel.Y.shape[1] - 1
        try:
            fc, info = self._origin(panel, panel.Y.shape[1] - 1, self.h, cache)
        finally:
            del self._keep_lgbm_at
        self.panel_ = panel
        self.forecast_ = fc
        self.choice_ = info["choice"]
        self.scores_ = info["scores"]
        self.classes_ = info["classes"]
        self.conformal_ = info["conformal"]
        self.residuals_ = info["residuals"]
        self.scale_ = info["scale"]
        self.exog_ = panel.exog
        self.last_ds_ = panel.dates[-1]
        self._cache = cache
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "forecast_"):
            raise NotFittedError("this DemandForecaster is not fitted yet; call fit(df) first")

    def _horizon_levels(self, h: int | None, level: Sequence[int] | None) -> tuple[int, list[int]]:
        """``h`` (default the fitted horizon) and ``level`` (default the fitted levels), checked."""
        h = self.h if h is None else h
        if not isinstance(h, int | np.integer) or not 1 <= h <= self.h:
            raise ValueError(f"h must be between 1 and the fitted horizon {self.h}; got {h!r}")
        levels = self._levels() if level is None else sorted(int(x) for x in level)
        bad = [lv for lv in levels if lv not in self._levels()]
        if bad:
            raise ValueError(f"level {bad} was not fitted; fitted levels are {self._levels()}")
        return h, levels

    def predict(self, h: int | None = None, level: Sequence[int] | None = None, X_df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecasts for the next ``h`` (<= the fitted h) periods after the last date of fit.

        ``X_df`` (``unique_id, ds`` + the exogenous columns of fit, for the h future periods)
        re-runs the LightGBM member with those drivers; without it the last known values are
        carried forward. ``level`` must be a subset of the fitted levels.
        """
        self._check_fitted()
        h, levels = self._horizon_levels(h, level)
        fc = self.forecast_
        if X_df is not None and self.exog_:
            Xf = self._future_exog(X_df)
            if parse_selection(self.selection)[1] or "LightGBM" not in self._members():
                fc, _ = self._origin(self.panel_, self.panel_.Y.shape[1] - 1, self.h, dict(self._cache), Xf)
            else:
                fc = self._with_drivers(Xf)
        return self._output(fc[fc["step"] <= h], levels)

    def _output(self, fc: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
        """The public columns of a forecast table, with the intervals of ``levels`` only."""
        cols = [c for c in self._columns(fc) if not any(c.endswith(f"-{lv}") for lv in self._levels() if lv not in levels)]
        return fc[["unique_id", "ds", *cols, "final_model"]].reset_index(drop=True)

    def warm(self) -> DemandForecaster:
        """Build now the lookups the first plan would build (``_plan_index``): a service calls
        this at start-up so no request pays for it. Returns self."""
        if hasattr(self, "panel_"):
            self._plan_index()
        return self

    def _plan_index(self) -> dict[str, Any]:
        """Lookups a plan needs, built once per fitted forecaster (kept beside the member cache,
        not saved): the forecast series at the last origin, their positions, and the rows of
        ``forecast_`` per series (so a plan for a few of 100k series reads only their rows)."""
        idx = self._cache.get("plan_index")
        if idx is None:
            p = self.panel_
            eligible = self._eligible(p, p.Y.shape[1] - 1, self.h)
            elig_uids = np.asarray(p.uids)[eligible].astype(str)
            idx = {"eligible": eligible, "uids": elig_uids, "pos": pd.Index(elig_uids),
                   "rows": self.forecast_.groupby(self.forecast_["unique_id"].astype(str), sort=False).indices}
            self._cache["plan_index"] = idx
        return idx

    def _with_drivers(self, X_future: np.ndarray, uids: Sequence[str] | None = None) -> pd.DataFrame:
        """The fitted forecast with the LightGBM member re-run on new future drivers.

        Only the drivers after the last date change, so the member choice, the statsforecast
        members and the conformal tables of fit stay; the LightGBM member (the booster kept from
        fit, or for forecasters saved before it was kept, refitted on the same history with the
        same seed: the same booster), the Ensemble, the served point of the series that use
        either, and the intervals about them are recomputed. Equals a full re-run of the last
        origin, without refitting every member on the selection windows.

        ``uids`` (default: every forecast series) are the series to re-run, in the order of the
        rows of ``X_future`` (len(uids) x h x k, raw driver values); only their rows are returned.
        """
        p, h = self.panel_, self.h
        c = p.Y.shape[1] - 1
        future = pd.date_range(p.dates[c], periods=h + 1, freq=p.offset)[1:]
        index = self._plan_index()
        eligible, elig_uids = index["eligible"], index["uids"]
        uids = elig_uids if uids is None else np.asarray(list(uids), dtype=str)
        pos = index["pos"].get_indexer(uids)
        if (pos < 0).any():
            raise ValueError(f"series {uids[pos < 0][:10].tolist()} have no forecast to re-run")
        kept = getattr(self, "lgbm_", None)
        if kept is not None and kept["c"] == c:  # fitted on the eligible series of this origin
            model, first, ref = kept["model"], kept["first"], kept["ref"]
            Y = p.Y[np.flatnonzero(eligible)[pos], first : c + 1]  # only the planned series' history
            Xf = X_future
            if ref is not None:
                Xf = np.concatenate([X_future, X_future / ref[pos]], axis=2)
            new = model.predict(Y, future, Xf, rows=pos)
        else:  # saved before the member was kept: refit it (same data and seed, same booster)
            full = np.repeat(p.X[eligible][:, c : c + 1, :], h, axis=1)
            full[pos] = X_future
            new = self._lgbm_forecast(p.subset(eligible), c, h, future, full)[pos]
        lgbm = pd.DataFrame({"unique_id": np.repeat(uids, h), "ds": np.tile(future.values, len(uids)),
                             "_new": new.reshape(-1)})
        fc = self.forecast_
        if len(uids) < len(elig_uids):
            fc = fc.iloc[np.concatenate([index["rows"][u] for u in uids])]
        fc = fc.merge(lgbm, on=["unique_id", "ds"], how="inner", validate="one_to_one")
        fc["LightGBM"] = fc.pop("_new").clip(lower=0.0)
        present = [m for m in _ENSEMBLE_OF if m in fc.columns]
        if "Ensemble" in fc.columns and len(present) >= 2:
            fc["Ensemble"] = fc[present].mean(axis=1)
        pick = fc["final_model"].to_numpy()
        for m in ("LightGBM", "Ensemble"):
            if m in fc.columns:
                fc.loc[pick == m, FINAL] = fc.loc[pick == m, m]
        levels = self._levels()
        scale_c = self.scale_.loc[fc["unique_id"]].to_numpy()
        for m in ("LightGBM", "Ensemble", FINAL):
            if m not in fc.columns or m not in self.conformal_:
                continue
            ints = apply_conformal(fc[m].to_numpy(), scale_c, fc["demand_class"].to_numpy(), fc["step"].to_numpy(),
                                   self.conformal_[m], levels)
            for lv, (lo, hi) in ints.items():
                fc[f"{m}-lo-{lv}"] = lo
                fc[f"{m}-hi-{lv}"] = hi
            nest_intervals(fc, m, levels)
        return fc

    def future_drivers(self) -> pd.DataFrame | None:
        """The known-future drivers ``predict`` uses when no ``X_df`` is given: each series' last
        known value carried over the ``h`` periods after the last date of fit, as a table
        (``unique_id, ds`` + one column per driver) to edit into a plan and pass as ``X_df``.
        None when the forecaster was fitted without drivers."""
        self._check_fitted()
        if not self.exog_:
            return None
        p = self.panel_
        future = pd.date_range(self.last_ds_, periods=self.h + 1, freq=p.offset)[1:]
        out = pd.DataFrame({"unique_id": np.repeat(p.uids.astype(str), self.h), "ds": np.tile(future.values, p.n)})
        for k, col in enumerate(self.exog_):
            out[col] = np.repeat(p.X[:, -1, k], self.h)
        return out

    def pyfunc_input_columns(self) -> list[tuple[str, str, bool]]:
        """The columns :meth:`predict_frame` reads, as ``(name, MLflow type, required)``, for the
        input signature of the logged model (``training.tracking``): ``unique_id`` and ``h``,
        and for a forecaster with drivers ``ds`` and one column per driver (a plan). All optional."""
        cols = [("unique_id", "string", False), ("h", "long", False)]
        if getattr(self, "exog_", None):
            cols += [("ds", "datetime", False), *[(str(c), "double", False) for c in self.exog_]]
        return cols

    def predict_frame(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """Table-in / table-out predict (for MLflow pyfunc and services): ``model_input`` has an
        optional ``unique_id`` column (series to return; all when absent) and an optional ``h``
        (the horizon, first row; default the fitted h). With a ``ds`` column it is a plan for a
        forecaster with drivers: ``unique_id, ds`` + every driver for each forecast period of the
        series to forecast (:meth:`predict_plan`; the template is :meth:`future_drivers`)."""
        h = int(model_input["h"].iloc[0]) if "h" in model_input.columns and len(model_input) else None
        if "ds" in model_input.columns:
            if not getattr(self, "exog_", None):
                raise ValueError("a ds column is a plan of drivers, and this forecaster was fitted without drivers; "
                                 "send unique_id (and h) only")
            if model_input["ds"].isna().any() or "unique_id" not in model_input.columns:
                raise ValueError(f"a plan needs unique_id, ds and {list(self.exog_)} on every row")
            return self.predict_plan(model_input[["unique_id", "ds", *self.exog_]], h)
        out = self.predict(h)
        if "unique_id" in model_input.columns:
            want = set(model_input["unique_id"].astype(str))
            unknown = sorted(want - set(out["unique_id"]))
            if unknown:
                raise ValueError(f"unknown unique_id(s) {unknown[:5]} ({len(unknown)} in all); the model knows {len(set(out['unique_id']))} series")
            out = out[out["unique_id"].isin(want)].reset_index(drop=True)
        return out

    def _future_exog(self, X_df: pd.DataFrame, uids: Sequence[str] | None = None) -> np.ndarray:
        """The drivers of ``X_df`` for the next h periods of ``uids`` (default: every series
        forecast) as a len(uids) x h x k array; every (series, period) pair needs a finite value."""
        need = ["unique_id", "ds", *self.exog_]
        miss = [c for c in need if c not in X_df.columns]
        if miss:
            raise ValueError(f"X_df is missing column(s) {miss}; it needs {need}")
        if uids is None:
            uids = self._plan_index()["uids"]
        future = pd.date_range(self.last_ds_, periods=self.h + 1, freq=self.panel_.offset)[1:]
        X = X_df.assign(unique_id=X_df["unique_id"].astype(str), ds=pd.to_datetime(X_df["ds"]))
        X = X.set_index(["unique_id", "ds"])[self.exog_]
        if not X.index.is_unique:
            dup = X.index[X.index.duplicated()][:5].tolist()
            raise ValueError(f"X_df has more than one row for (unique_id, ds) pairs such as {dup}")
        idx = pd.MultiIndex.from_product([list(uids), future], names=["unique_id", "ds"])
        got = X.reindex(idx).apply(pd.to_numeric, errors="coerce")
        bad = ~np.isfinite(got.to_numpy(dtype="float64"))
        if bad.any():
            n = int(bad.any(axis=1).sum())
            first = got.index[bad.any(axis=1)][0]
            raise ValueError(
                f"X_df lacks finite values for {n} (unique_id, ds) pairs of the next {self.h} periods "
                f"({future[0].date()} .. {future[-1].date()}), e.g. {first[0]} at {first[1].date()}"
            )
        return got.to_numpy(dtype="float64").reshape(len(uids), self.h, len(self.exog_))

    def predict_plan(self, X_df: pd.DataFrame, h: int | None = None, level: Sequence[int] | None = None) -> pd.DataFrame:
        """Forecasts of only the series in ``X_df``, with the planned drivers it gives them.

        ``X_df`` holds ``unique_id, ds`` and every driver of fit for each of the next ``h``
        (fitted) periods of each series in it; other series are not forecast. Only the LightGBM
        member (and what is built on it) moves, from the booster kept at fit, so a plan for a few
        series costs milliseconds. Same columns as :meth:`predict`.
        """
        self._check_fitted()
        if not self.exog_:
            raise ValueError("this forecaster was fitted without drivers; there is nothing to plan")
        h, levels = self._horizon_levels(h, level)
        uids = list(dict.fromkeys(X_df["unique_id"].astype(str))) if "unique_id" in X_df.columns else []
        forecast = self._plan_index()["rows"]
        unknown = [u for u in uids if u not in forecast]
        if unknown:
            raise ValueError(f"X_df names {len(unknown)} series without a forecast, e.g. {unknown[:5]}")
        Xf = self._future_exog(X_df, uids)
        if parse_selection(self.selection)[1] or "LightGBM" not in self._members():
            full = self.future_drivers()
            full = full[~full["unique_id"].isin(set(uids))]
            fc = self.predict(X_df=pd.concat([full, X_df[full.columns]], ignore_index=True))
            fc = fc[fc["unique_id"].isin(set(uids))]
        else:
            fc = self._with_drivers(Xf, uids)
        fc = fc.set_index("unique_id").loc[uids].reset_index()  # the plan's order of series
        return self._output(fc.groupby("unique_id", sort=False).head(h), levels)

    def cross_validation(self, df: pd.DataFrame, h: int, n_windows: int = 2, step_size: int | None = None, *,
                         member_cache: MemberCache | None = None) -> pd.DataFrame:
        """Rolling-origin forecasts: for each of ``n_windows`` cutoffs (the last ending h periods
        before the end, earlier ones ``step_size`` apart) refit on data up to the cutoff only.

        Returns ``unique_id, ds, cutoff, y``, ``demand_class`` (as of the cutoff), every model's
        forecast and intervals, and ``final_model``. ``self.cv_info_`` keeps the choice per
        window and the series left out of each window. ``member_cache`` (a
        :class:`models.demand_cache.MemberCache`) keeps the member forecasts for a later ``fit``
        on the same table with the same settings (and reuses any it already holds for them).
        """
        self._check_params(h)
        step_size = h if step_size is None else step_size
        if n_windows < 1 or step_size < 1:
            raise ValueError(f"n_windows and step_size must be >= 1; got {n_windows}, {step_size}")
        panel = build_panel(df, self.freq, exog=self.exog)
        self._resolve(panel)
        T = panel.Y.shape[1]
        cutoffs = [T - 1 - h - (n_windows - 1 - k) * step_size for k in range(n_windows)]
        if cutoffs[0] < self._min_train(h) - 1:
            raise ValueError(
                f"the data has {T} periods; {n_windows} windows of h={h} with step {step_size} need at least "
                f"{self._min_train(h) + h + (n_windows - 1) * step_size}"
            )
        cache: dict = {} if member_cache is None else member_cache.frames_for(self, panel)
        parts, infos = [], []
        for c in cutoffs:
            fc, info = self._origin(panel, c, h, cache)
            fc["y"] = self._actuals(panel, fc)
            left_out = sorted(set(panel.uids) - set(fc["unique_id"]))
            infos.append({"cutoff": panel.dates[c], "choice": info["choice"], "scores": info["scores"], "left_out": left_out,
                          "residuals": info["residuals"], "scale": info["scale"]})
            parts.append(fc)
        cv = pd.concat(parts, ignore_index=True)
        self.cv_info_ = {"windows": infos, "notes": panel.notes, "season_length": self._season(panel),
                         "train": panel.long(T - 1)}
        cols = self._columns(cv)
        return cv[["unique_id", "ds", "cutoff", "y", "demand_class", *cols, "final_model"]].reset_index(drop=True)

    def rolling_forecasts(self, df: pd.DataFrame, cutoffs: Sequence[pd.Timestamp], h: int, *,
                          point_only: bool = False) -> list[tuple[pd.DataFrame, dict]]:
        """Forecasts (as ``predict`` columns + ``step``, ``y`` where known) made from each cutoff
        date using only data up to it; the windows may run past the end of ``df``. Each item is
        (forecast, info) with info ``residuals`` (scaled error paths) and ``scale`` per series.

        ``point_only=True`` (the inventory replay) returns ``Final`` and its bands but no member
        columns, and runs each member at a cutoff only for the series whose choice uses it: the
        same ``Final``, bands, residuals and scale to the bit, without fitting members that
        nothing reads (``_origin``)."""
        self._check_params(h)
        panel = build_panel(df, self.freq, exog=self.exog)
        self._resolve(panel)
        cache: dict = {}
        out = []
        for cut in cutoffs:
            c = int(panel.dates.get_indexer([pd.Timestamp(cut)])[0])
            if c < 0:
                raise ValueError(f"cutoff {cut} is not a period of the series table")
            fc, info = self._origin(panel, c, h, cache, point_only=point_only)
            fc["y"] = self._actuals(panel, fc)
            out.append((fc, info))
        return out

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Write the fitted forecaster into the directory ``path`` (created)."""
        self._check_fitted()
        import json

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v for k, v in self.__dict__.items() if k != "_cache"}
        with open(path / "forecaster.pkl", "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        meta = {"class": "DemandForecaster", "freq": self.freq, "h": self.h, "models": list(self._members()),
                "profile": getattr(self, "profile_", "full"),
                "level": self._levels(), "n_series": int(self.panel_.n), "last_ds": str(self.last_ds_.date())}
        (path / "meta.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> DemandForecaster:
        """Read a forecaster written by :meth:`save`."""
        f = Path(path) / "forecaster.pkl"
        if not f.is_file():
            raise FileNotFoundError(f"no saved DemandForecaster at {path} (missing forecaster.pkl)")
        with open(f, "rb") as fh:
            state = pickle.load(fh)
        obj = cls.__new__(cls)
        # saved before profiles / the conformal setting existed
        obj.__dict__.update({"profile": "full", "fast_above": AUTO_FAST_ABOVE, "conformal": "in_sample"})
        obj.__dict__.update(state)
        obj._cache = {}
        return obj
