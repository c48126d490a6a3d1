"""DemandForecaster: statistical + global LightGBM members, a choice per demand class made on
rolling-origin windows inside the training data, and calibrated intervals for every forecast.

Input: a long table ``unique_id, ds, y`` (units per period) plus optional numeric exogenous
columns that are known in advance (price, promotion). Output columns of ``predict`` and
``cross_validation``: ``unique_id, ds`` (``cutoff, y`` in CV), then for each model ``m``
(the members, ``Ensemble`` and the served forecast ``Final``) ``m, m-lo-80, m-hi-80, m-lo-95,
m-hi-95`` (one pair per requested level), and ``final_model`` (the member behind ``Final``, or
``ShortHistory`` for a series too short for the members: see ``short_history`` below and
:mod:`models.demand_short`; its member columns are empty).

How the final forecast is made, for a cutoff c and horizon h:
1. every member forecasts from the internal cutoffs c-h, c-2h, ... (``selection_windows``);
   their errors, scaled by each series' naive in-sample error, pick the best member per
   demand class (Syntetos-Boylan class as of c) - never using data after c;
2. the same errors give split-conformal intervals for LightGBM, Ensemble and Final;
   statsforecast members keep their own intervals (conformal for the intermittent ones)
   in the ``full`` profile and get split-conformal ones too in the ``fast`` profile;
3. every member forecasts from c; ``Final`` takes the chosen member's forecast per series. Where
   that member has no forecast for some period of a series, the series (all its periods) is served
   by the next candidate of its ranking with a forecast for every period (by the same validation
   scores, :class:`models.demand_select.Ranking`; ``final_model`` names it, Final's band is about it);
   where none has, the series is not forecast. ``fallback_`` records both, with why.

Profiles (``profile``): ``full`` (all seven statsforecast members with their own intervals),
``fast`` (the cheap members, point forecasts + conformal intervals; for 10k+ series) and
``auto`` (fast above ``fast_above`` = 5,000 series). BENCHMARKS.md "Speed and memory" has the cost.

The class is defined here (saved forecasters, the MLflow pyfunc and pickles name it
``models.demand.DemandForecaster``); its methods are grouped in mixins: the members at one
cutoff (``models.demand_members``), one forecast origin and ``rolling_forecasts``
(``models.demand_origin``), plans of future drivers (``models.demand_plan``; planned values
outside the drivers' training range, ``driver_ranges_``: ``models.demand_driver_range``), and the
short-history fallback's part of fit and predict (``models._demand_short_fit``).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.demand import period_alias
from models._demand_short_fit import _ShortHistory
from models.demand_cache import MemberCache
from models.demand_data import Panel, build_panel
from models.demand_driver_range import training_ranges
from models.demand_members import _ENSEMBLE_OF as _ENSEMBLE_OF
from models.demand_members import _FAST_LGBM as _FAST_LGBM
from models.demand_members import ALL_MEMBERS, FAST_MEMBERS, FINAL, STAT_MEMBERS, _MemberRuns
from models.demand_members import INTERMITTENT as INTERMITTENT
from models.demand_members import _member_groups as _member_groups
from models.demand_origin import TooShortError, _Origins
from models.demand_plan import _DriverPlans
from models.demand_select import CONFORMAL, FALLBACK_COLUMNS
from models.demand_short import SHORT_HISTORY, SHORT_MODEL

# the names imported "as" themselves were defined in this module before it was split into
# demand_members / demand_origin / demand_plan; they stay importable from here
__all__ = ["DemandForecaster", "NotFittedError", "not_forecast_reasons", "STAT_MEMBERS", "ALL_MEMBERS", "FAST_MEMBERS", "AUTO_FAST_ABOVE",
           "SHORT_MODEL", "TooShortError"]

AUTO_FAST_ABOVE = 5000  # profile "auto": fast when the table has more series than this
PROFILES = ("full", "fast", "auto")


class NotFittedError(ValueError, AttributeError):
    """Raised when predict / save is called before fit."""


class DemandForecaster(_DriverPlans, _Origins, _MemberRuns, _ShortHistory):
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
    conformal_adapt : correct the level of ``Final``'s bands by their own miss rate one window ahead
        before the cutoff (``models.demand_conformal.adaptive_alphas``; needs 2+ selection windows,
        else the nominal level). Off: on Stallion's validation splits it moved coverage away from
        nominal (a one-window shock is corrected one window late), and it cannot act on Online
        Retail's (one selection window); BENCHMARKS.md "What was tried", session 22.
    level : interval levels in percent.
    min_train : fewest observed periods a series needs at a cutoff for the members (default 2*h).
    short_history : ``fallback`` (default): a series with some demand but fewer than ``min_train``
        observed periods gets a ``Final`` forecast from the short-history fallback (the mean of its
        last ``short_window`` observed periods, ``final_model`` ``ShortHistory``, bands from
        level-scaled errors of such means measured before the cutoff with a Poisson floor; member
        columns empty; :mod:`models.demand_short`); when no series has ``min_train`` periods (a young
        table), every series with demand is on the fallback (``all_short_`` says how many, the most
        periods any has and the periods the members need; the table has no member columns), and
        ``fit`` refuses (``TooShortError``) only where the fallback forecasts nothing either (a table
        of one period, or without a sale before its last period); on a table younger than h + 1
        periods the fallback's band is measured over fewer periods than h (``short_lookahead_``);
        ``skip``: such series get no forecast (the behaviour before the fallback; forecasters saved
        before it load as ``skip``).
    short_window : periods the fallback averages (the last ones; default 4, chosen on validation
        cutoffs of Online Retail and the synthetic network, see :mod:`models.demand_short`).
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
        short_history: str = "fallback",
        short_window: int = 4,
        conformal_adapt: bool = False,
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
        self.short_history = short_history
        self.short_window = short_window
        self.conformal_adapt = conformal_adapt

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
        if getattr(self, "short_history", "skip") not in SHORT_HISTORY:
            raise ValueError(f"short_history must be one of {list(SHORT_HISTORY)}; got {self.short_history!r}")
        sw = getattr(self, "short_window", 4)
        if not isinstance(sw, int | np.integer) or isinstance(sw, bool) or sw < 1:
            raise ValueError(f"short_window must be a whole number of periods >= 1; got {sw!r}")

    def _resolve(self, panel: Panel) -> None:
        """Fix the profile (``profile_``) and the members (``members_``) for this table."""
        fast = self.profile == "fast" or (self.profile == "auto" and panel.n > self.fast_above)
        self.profile_ = "fast" if fast else "full"
        default = FAST_MEMBERS if fast else ALL_MEMBERS
        self.members_ = tuple(self.models) if self.models is not None else default

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
        is always run here (its statsforecast members taken from the cache when it keeps them
        across settings, ``stat_cutoffs``)."""
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
        c = panel.Y.shape[1] - 1
        self.all_short_ = None
        if getattr(self, "short_history", "skip") == "fallback" and not self._eligible(panel, c, self.h).any():
            # a young book: no series has the periods the members need, every series with demand
            # is forecast (and sized) by the short-history fallback, as the short series of a mixed book
            fc, info, short = self._short_only(panel, c, self.h)
        else:
            self._keep_lgbm_at = c
            self._member_cache = member_cache  # its statsforecast frames, when it keeps them (stat_cutoffs)
            try:
                fc, info = self._origin(panel, c, self.h, cache)
            finally:
                del self._keep_lgbm_at, self._member_cache
            fc, short = self._with_short(panel, c, self.h, fc, info)
        self.panel_ = panel
        self.forecast_ = fc
        self.short_ = short["short"]
        self.short_conformal_ = short["conformal"]
        self.short_residuals_ = short["residuals"]
        self.short_scale_ = short["scale"]
        # periods after a cutoff the fallback's band and error paths were measured over: h, or fewer on a
        # table too young for h (models.demand_short); None without fallback rows
        self.short_lookahead_ = short.get("lookahead")
        self.choice_ = info["choice"]
        self.scores_ = info["scores"]
        self.classes_ = info["classes"]
        self.conformal_ = info["conformal"]
        self.residuals_ = info["residuals"]
        self.scale_ = info["scale"]
        # series whose chosen member had no forecast from the last cutoff: served by the next one of
        # their ranking, or (served None) not forecast; with why (models.demand_select.pick_served)
        self.fallback_ = info.get("fallback", pd.DataFrame(columns=FALLBACK_COLUMNS))
        # what a plan's fallback reads (models.demand_plan): the ranking, and each candidate's band table
        self.ranking_, self.served_conformal_ = info.get("ranking"), info.get("served_conformal", {})
        # and the error paths a fallback series' safety stock is sized on (models.inventory.fit_forecaster_policy)
        self.served_residuals_ = info.get("served_residuals", {})
        self.exog_ = panel.exog
        # each driver's (min, max) over the LightGBM member's training rows: a plan beyond them is
        # forecast as at the edge and said so (driver_range_warnings); {}: no member reads drivers
        self.driver_ranges_ = training_ranges(self.lgbm_, panel.exog)
        # and of each driver / its series' mean (what the trees learn a price response from); None: saved before
        self.driver_relative_ranges_ = training_ranges(self.lgbm_, panel.exog, relative=True)
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
        carried forward, except where :meth:`set_planned_drivers` gave planned ones.
        ``level`` must be a subset of the fitted levels.
        """
        self._check_fitted()
        h, levels = self._horizon_levels(h, level)
        fc = self.forecast_
        if X_df is None and getattr(self, "planned_forecast_", None) is not None:
            fc = self.planned_forecast_
        if X_df is not None and self.exog_:
            Xf = self._future_exog(X_df)
            if not getattr(self, "all_short_", None):  # fallback rows only (a young table): they read no drivers
                fc = self._rerun(Xf)[0]
        return self._output(fc[fc["step"] <= h], levels)

    def _output(self, fc: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
        """The public columns of a forecast table, with the intervals of ``levels`` only."""
        cols = [c for c in self._columns(fc) if not any(c.endswith(f"-{lv}") for lv in self._levels() if lv not in levels)]
        return fc[["unique_id", "ds", *cols, "final_model"]].reset_index(drop=True)

    def _window_cutoffs(self, T: int, h: int, n_windows: int, step_size: int) -> list[int]:
        """The cutoff indices of ``n_windows`` rolling-origin windows (the last ending at period
        ``T - 1``, earlier ones ``step_size`` apart); TooShortError, saying how many periods they
        need, when the first leaves fewer than ``min_train`` periods before it."""
        cutoffs = [T - 1 - h - (n_windows - 1 - k) * step_size for k in range(n_windows)]
        if cutoffs[0] < self._min_train(h) - 1:
            raise TooShortError(
                f"the data has {T} period{'' if T == 1 else 's'}; {n_windows} window{'' if n_windows == 1 else 's'} "
                f"of h={h} with step {step_size} need at least {self._min_train(h) + h + (n_windows - 1) * step_size}"
            )
        return cutoffs

    def check_windows(self, df: pd.DataFrame, h: int, n_windows: int = 2, step_size: int | None = None) -> None:
        """The checks :meth:`cross_validation` makes of ``df``'s length before it fits anything (bad
        settings: ValueError; too few periods for the windows: TooShortError, the same message),
        in a fraction of a second: a caller that records a run (``train demand``) refuses a table
        too short before it opens one."""
        self._check_params(h)
        step_size = h if step_size is None else step_size
        if n_windows < 1 or step_size < 1:
            raise ValueError(f"n_windows and step_size must be >= 1; got {n_windows}, {step_size}")
        # the periods do not depend on the drivers: the id, date and demand columns give the same axis
        panel = build_panel(df[["unique_id", "ds", "y"]], self.freq, exog=[])
        self._window_cutoffs(panel.Y.shape[1], h, n_windows, step_size)

    def cross_validation(self, df: pd.DataFrame, h: int, n_windows: int = 2, step_size: int | None = None, *,
                         member_cache: MemberCache | None = None, history_as_of: Any = None) -> pd.DataFrame:
        """Rolling-origin forecasts: for each of ``n_windows`` cutoffs (the last ending h periods
        before the end, earlier ones ``step_size`` apart) refit on data up to the cutoff only.

        Returns ``unique_id, ds, cutoff, y``, ``demand_class`` (as of the cutoff), every model's
        forecast and intervals, and ``final_model``. ``self.cv_info_`` keeps the choice per
        window and the series left out of each window. ``member_cache`` (a
        :class:`models.demand_cache.MemberCache`) keeps the member forecasts for a later ``fit``
        on the same table with the same settings (and reuses any it already holds for them); one
        made with ``stat_cutoffs`` also keeps the statsforecast members' for other ``selection`` /
        ``lgbm_params`` (tuning trials) and for other tables with the same history up to a cutoff.

        ``history_as_of`` (a callable: the first instant after a cutoff's last period -> the long
        table as the data stood then, or None when that is ``df``'s history): each window forecasts
        from the history a run on that day could read (an order book's cancellations dated after the
        cutoff had not netted the lines they cancel yet: ``training.demand_config``'s ``as_of``) and
        is scored on ``df``. Without it every window reads ``df`` up to its cutoff.
        """
        self._check_params(h)
        step_size = h if step_size is None else step_size
        if n_windows < 1 or step_size < 1:
            raise ValueError(f"n_windows and step_size must be >= 1; got {n_windows}, {step_size}")
        panel = build_panel(df, self.freq, exog=self.exog)
        self._resolve(panel)
        T = panel.Y.shape[1]
        cutoffs = self._window_cutoffs(T, h, n_windows, step_size)
        cache: dict = {} if member_cache is None else member_cache.frames_for(self, panel)
        parts, infos = [], []
        self._member_cache = member_cache  # its statsforecast frames, when it keeps them (stat_cutoffs)
        try:
            for c in cutoffs:
                p, cc = self._history_at(panel, c, history_as_of, member_cache, cache)
                fc, info = self._origin(p, c, h, cc)
                fc, short = self._with_short(p, c, h, fc, info)
                fc["y"] = self._actuals(panel, fc)
                left_out = sorted(set(panel.uids) - set(fc["unique_id"]))
                infos.append({"cutoff": panel.dates[c], "choice": info["choice"], "scores": info["scores"],
                              "left_out": left_out, "residuals": info["residuals"], "scale": info["scale"],
                              "short": short["short"], "fallback": info.get("fallback")})
                parts.append(fc)
        finally:
            del self._member_cache
        cv = pd.concat(parts, ignore_index=True)
        del parts  # the windows' frames, copied into cv: a copy of the frame less at the peak
        self.cv_info_ = {"windows": infos, "notes": panel.notes, "season_length": self._season(panel),
                         "train": panel.long(T - 1)}
        # the columns in order (a copy); concat's RangeIndex kept, as reset_index(drop=True) gave it
        return cv[["unique_id", "ds", "cutoff", "y", "demand_class", *self._columns(cv), "final_model"]]

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
        # saved before profiles / the conformal setting / the short-history fallback existed (such a
        # forecaster has no fallback rows: it keeps serving what it served, as "skip"); before the
        # drivers' training ranges were recorded (None: a plan is not checked; relative ones None: raw only)
        obj.__dict__.update({"profile": "full", "fast_above": AUTO_FAST_ABOVE, "conformal": "in_sample",
                             "short_history": "skip", "short_window": 4, "driver_ranges_": None,
                             "driver_relative_ranges_": None})
        obj.__dict__.update(state)
        obj._cache = {}
        return obj


def _periods(n: int) -> str:
    return f"{n} observed period" + ("" if n == 1 else "s")


def not_forecast_reasons(estimator: Any, served: set[str]) -> dict[str, str]:
    """Why each series of the champion's history has no forecast (``DemandForecaster``: no demand
    at all, no member with a forecast for every period (``fallback_``), or - with ``short_history="skip"``, for forecasters saved before the fallback, or when
    nothing before the cutoff calibrates its band - fewer observed periods than the members need);
    empty for other estimators."""
    panel = getattr(estimator, "panel_", None)
    need = getattr(estimator, "_min_train", None)
    if panel is None or need is None or getattr(panel, "Y", None) is None:
        return {}
    need = int(need(int(getattr(estimator, "h", 1))))
    Y = panel.Y
    n_obs = np.isfinite(Y).sum(axis=1)
    total = np.nansum(Y, axis=1)
    # series with the periods the members need but no member forecast for every period (fallback_)
    fb = getattr(estimator, "fallback_", None)
    no_member = ({} if fb is None or not len(fb) else
                 {str(u): str(r).removeprefix("not forecast: ") for u, r, m in zip(fb["unique_id"], fb["reason"], fb["served"], strict=True)
                  if m is None or pd.isna(m)})
    out = {}
    for i, u in enumerate(map(str, panel.uids)):
        if u in served:
            continue
        if u in no_member:
            out[u] = no_member[u]
        elif total[i] <= 0:
            out[u] = f"no demand in its {_periods(int(n_obs[i]))}"
        else:
            out[u] = f"{_periods(int(n_obs[i]))}; the forecaster needs at least {need}"
    return out
