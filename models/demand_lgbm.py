"""Global LightGBM demand model: one model over all series, recursive multi-step forecasts.

Each series is divided by its own scale (mean demand up to the cutoff, or over its last
``scale_window`` periods) so one Tweedie model serves slow and fast movers. Features for period t: lags of the scaled demand, rolling means /
std / share of non-zero periods over the periods before t, calendar (month or week of year,
day of week for daily data), log of the series scale, and the known-future drivers given
(e.g. price relative to the series' mean price up to the cutoff, promotion share).
Forecasts for t+1..t+h are made one step at a time, feeding predictions back as lags
(``strategy="direct"``: one model over all steps, the step a feature).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["GlobalLGBM"]


def _default_lags(season_length: int) -> tuple[int, ...]:
    lags = [1, 2, 3, 4, 6, 8]
    if season_length > 8:
        lags.append(season_length)
    return tuple(sorted(set(lags)))


def _split_range(Xtr: np.ndarray, at: int, kx: int, k: int) -> np.ndarray:
    """2 x kx: the k-th smallest and k-th largest finite value of columns ``at .. at + kx - 1`` of
    ``Xtr`` (float32, as LightGBM reads them; given as the shortest decimal of that float32, 0.9 not
    0.8999999762). A LightGBM split needs ``min_child_samples`` (k) rows each side, so no threshold
    lies below the first or at / above the second: every value at or below the first (at or above the
    second) takes the same path in every tree. (LightGBM counts those rows from the hessian, an
    approximation, so a rare split can lie outside.) NaN for a column with fewer than 2k finite values
    (the trees cannot split on it at all). One column at a time (O(rows), one column's copy at most)."""
    out = np.full((2, kx), np.nan)
    k = max(1, k)
    for j in range(kx):
        col = Xtr[:, at + j]
        col = col[np.isfinite(col)]
        if len(col) < 2 * k:
            continue
        col.partition((k - 1, len(col) - k))
        out[:, j] = [float(str(col[k - 1])), float(str(col[len(col) - k]))]
    return out


class GlobalLGBM:
    """Recursive global LightGBM forecaster over a wide panel (internal member of DemandForecaster).

    Parameters
    ----------
    season_length : periods per year (52 weekly, 12 monthly, 7 daily-week).
    lags : lags of the scaled demand; default 1,2,3,4,6,8 (+ season_length when > 8).
    windows : rolling windows (periods) for mean / std / non-zero share.
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings.
    tweedie_variance_power : Tweedie objective power (1 = Poisson, 2 = Gamma).
    objective : LightGBM objective (default ``tweedie``; e.g. ``poisson``, ``l2``).
    scale_window : each series is divided by its mean over its last ``scale_window`` periods up to
        the cutoff (the whole-history mean when that is zero or NaN; None = always the whole
        history, the default). 8 beat the whole-history mean on the Stallion and Online Retail
        validation windows (member MASE 4 % and 5 % lower; their configs set it) but lost 17 % on
        the synthetic network's and 5 % on the scale benchmark's series (BENCHMARKS.md).
    strategy : ``recursive`` (one-step model, predictions fed back as lags) or ``direct`` (one
        model over all steps with the step as a feature, features as of the forecast origin;
        h times the training rows before the ``max_rows`` cap).
    max_rows : cap on training rows, to bound fit time.
    row_sample : how the cap is met: ``recent`` keeps the most recent periods of every series;
        ``series`` keeps every period of a random sample of series (seeded by random_state), so
        a large panel still trains on whole years of history.
    num_threads, random_state : LightGBM threads and seed.
    """

    def __init__(
        self,
        *,
        season_length: int = 52,
        lags: Sequence[int] | None = None,
        windows: Sequence[int] = (4, 12),
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        tweedie_variance_power: float = 1.2,
        objective: str = "tweedie",
        scale_window: int | None = None,
        strategy: str = "recursive",
        max_rows: int = 1_500_000,
        row_sample: str = "recent",
        num_threads: int = 1,
        random_state: int = 0,
    ) -> None:
        self.season_length = season_length
        self.lags = lags
        self.windows = windows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.tweedie_variance_power = tweedie_variance_power
        self.objective = objective
        self.scale_window = scale_window
        self.strategy = strategy
        self.max_rows = max_rows
        self.row_sample = row_sample
        self.num_threads = num_threads
        self.random_state = random_state

    # -- features -------------------------------------------------------------------------
    def _lags(self) -> tuple[int, ...]:
        return tuple(self.lags) if self.lags is not None else _default_lags(self.season_length)

    def _calendar(self, dates: pd.DatetimeIndex, freq: str) -> np.ndarray:
        if freq == "M":
            return np.stack([dates.month.values], axis=1).astype(np.float32)
        if freq == "W":
            return np.stack(
                [dates.isocalendar().week.values.astype(float), dates.month.values], axis=1
            ).astype(np.float32)
        return np.stack([dates.dayofweek.values, dates.month.values], axis=1).astype(np.float32)

    def _features_at(self, Z: np.ndarray, t: int, cal_row: np.ndarray, X_t: np.ndarray | None,
                     log_scale: np.ndarray) -> np.ndarray:
        """Features of column t of the scaled panel Z (n x T), from columns < t only."""
        n = Z.shape[0]
        feats = []
        for lag in self._lags():
            feats.append(Z[:, t - lag] if t - lag >= 0 else np.full(n, np.nan))
        for w in self.windows:
            lo = max(0, t - w)
            block = Z[:, lo:t]
            if block.shape[1] == 0:
                feats += [np.full(n, np.nan)] * 3
                continue
            with np.errstate(invalid="ignore"), _quiet():
                feats.append(np.nanmean(block, axis=1))
                feats.append(np.nanstd(block, axis=1))
                feats.append(np.nanmean(block > 0, axis=1) if np.isfinite(block).any() else np.full(n, np.nan))
        feats.append(log_scale)
        cols = [np.column_stack(feats).astype(np.float32), np.tile(cal_row, (n, 1))]
        if X_t is not None:
            cols.append(X_t.astype(np.float32))
        return np.hstack(cols)

    # -- fit / predict on a wide panel --------------------------------------------------------
    def fit(
        self,
        Y: np.ndarray,
        dates: pd.DatetimeIndex,
        freq: str,
        X: np.ndarray | None = None,
        h: int = 1,
    ) -> GlobalLGBM:
        """Fit on the panel Y (n series x T periods, NaN before a series starts).

        ``X`` (n x T x k) holds known drivers already made relative (no look-ahead beyond what
        is known in advance). Keeps the booster and each series' scale, so :meth:`predict` can
        forecast any rows of the same panel with new future drivers without refitting, and
        ``x_range_`` (2 x k: each column of X's min and max over the training rows) and
        ``x_split_range_`` (2 x k: its ``min_child_samples``-th smallest and largest value there, as the
        booster reads it: the forecast is constant at or beyond them; :func:`_split_range`). ``h``
        is the number of steps the ``direct`` strategy learns (the recursive one learns one).
        """
        import lightgbm as lgb

        if self.row_sample not in ("recent", "series"):
            raise ValueError(f"row_sample must be 'recent' or 'series'; got {self.row_sample!r}")
        if self.strategy not in ("recursive", "direct"):
            raise ValueError(f"strategy must be 'recursive' or 'direct'; got {self.strategy!r}")
        if self.scale_window is not None and int(self.scale_window) < 1:
            raise ValueError(f"scale_window must be None or >= 1 periods; got {self.scale_window!r}")
        n, T = Y.shape
        with np.errstate(invalid="ignore"), _quiet():
            full = np.nanmean(Y, axis=1)
            scale = full if not self.scale_window else np.nanmean(Y[:, -int(self.scale_window):], axis=1)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, full)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        Z = Y / scale[:, None]
        log_scale = np.log1p(scale).astype(np.float32)
        cal = self._calendar(dates, freq)
        start = max(1, min(self._lags()))
        Ztr, Xtr_all, ls_tr = Z, X, log_scale
        n_rows = int((np.isfinite(Z[:, start:]) & np.isfinite(Z[:, start - 1 : -1])).sum())
        if self.row_sample == "series" and n_rows > self.max_rows:
            k = max(1, int(n * self.max_rows / n_rows))
            keep = np.sort(np.random.default_rng(self.random_state).choice(n, size=k, replace=False))
            Ztr, ls_tr = Z[keep], log_scale[keep]
            Xtr_all = None if X is None else X[keep]
        direct = self.strategy == "direct"
        steps = range(1, int(h) + 1) if direct else (1,)
        rows, targets = [], []
        total = 0
        # each driver's range over the rows the booster trains on (float64, as given): trees treat a value
        # beyond it as its edge, so a plan outside it is flagged (models.demand_driver_range)
        kx = 0 if Xtr_all is None else Xtr_all.shape[2]
        x_lo, x_hi = np.full(kx, np.inf), np.full(kx, -np.inf)
        for t in range(T - 1, start - 1, -1):  # newest first so the row cap keeps recent rows
            y_t = Ztr[:, t]
            for k in steps:  # direct: features as of origin t - k (columns <= t - k), step k as a feature
                o = t - k + 1
                if o < start:
                    continue
                ok = np.isfinite(y_t) & np.isfinite(Ztr[:, o - 1])
                if not ok.any():
                    continue
                F = self._features_at(Ztr, o, cal[t], None if Xtr_all is None else Xtr_all[:, t, :], ls_tr)
                if direct:
                    F = np.hstack([F, np.full((len(F), 1), k, dtype=np.float32)])
                rows.append(F[ok])
                targets.append(y_t[ok])
                if kx:
                    x_t = Xtr_all[ok, t, :]
                    x_lo = np.fmin(x_lo, np.fmin.reduce(x_t, axis=0, initial=np.inf))  # fmin: NaN ignored
                    x_hi = np.fmax(x_hi, np.fmax.reduce(x_t, axis=0, initial=-np.inf))
                total += int(ok.sum())
            if total >= self.max_rows:
                break
        if not rows:
            raise ValueError("LightGBM member: no training rows (every series is shorter than 2 periods)")
        Xtr = np.vstack(rows)
        ytr = np.concatenate(targets)
        params = {
            "objective": self.objective,
            "tweedie_variance_power": self.tweedie_variance_power,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "num_threads": self.num_threads,
            "seed": self.random_state,
            "deterministic": True,
            "verbosity": -1,
        }
        self.booster_ = lgb.train(params, lgb.Dataset(Xtr, ytr), num_boost_round=self.n_estimators)
        self.scale_ = scale
        # 2 x k (min, max) of each column of X over the training rows (NaN: no finite value); None without X
        self.x_range_ = None if not kx else np.where(np.isfinite([x_lo, x_hi]), [x_lo, x_hi], np.nan)
        # 2 x k (k-th smallest, k-th largest; k = min_child_samples) of each X column over the same rows, as the
        # booster reads them (float32): a split leaves >= k rows each side, so the forecast is the same for every
        # value at or below the first / at or above the second (NaN: < 2k finite rows; None without X)
        self.x_split_range_ = None if not kx else _split_range(Xtr, Xtr.shape[1] - kx - int(direct), kx,
                                                               int(self.min_child_samples))
        self.freq_ = freq
        self.n_periods_ = T
        self.h_ = int(h)
        return self

    def predict(
        self,
        Y: np.ndarray,
        future_dates: pd.DatetimeIndex,
        X_future: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Forecast ``future_dates`` for the series of the fitted panel (or the subset ``rows``).

        ``Y`` is the history given to :meth:`fit` of the series to forecast: the whole panel, or
        with ``rows`` (their positions in the fitted panel) just those rows, len(rows) x T.
        ``X_future`` (same rows x h x k) holds their future drivers, made relative as in fit.
        Every feature is the series' own, so a subset gets exactly the numbers it gets in a
        forecast of the whole panel. Returns a (rows) x h array.
        """
        if not hasattr(self, "booster_"):
            raise ValueError("this GlobalLGBM is not fitted; call fit first")
        if Y.shape[1] != self.n_periods_:
            raise ValueError(f"Y has {Y.shape[1]} periods; the model was fitted on {self.n_periods_}")
        scale = self.scale_ if rows is None else self.scale_[rows]
        if len(Y) != len(scale):
            raise ValueError(f"Y has {len(Y)} series; expected {len(scale)} (the rows to forecast)")
        n, T = Y.shape
        h = len(future_dates)
        Z = Y / scale[:, None]
        log_scale = np.log1p(scale).astype(np.float32)
        cal_f = self._calendar(future_dates, self.freq_)
        out = np.empty((n, h))
        booster = self.booster_
        if self.strategy == "direct" and h > self.h_:
            raise ValueError(f"the direct strategy learnt {self.h_} steps; asked for {h}")
        if self.strategy == "direct":
            for k in range(h):
                F = self._features_at(Z, T, cal_f[k], None if X_future is None else X_future[:, k, :], log_scale)
                F = np.hstack([F, np.full((n, 1), k + 1, dtype=np.float32)])
                out[:, k] = booster.predict(F, num_threads=self.num_threads) * scale
            return np.clip(out, 0.0, None)
        Zext = np.concatenate([Z, np.full((n, h), np.nan)], axis=1)
        for k in range(h):
            t = T + k
            F = self._features_at(Zext, t, cal_f[k], None if X_future is None else X_future[:, k, :], log_scale)
            pred = booster.predict(F, num_threads=self.num_threads)
            Zext[:, t] = pred
            out[:, k] = pred * scale
        return np.clip(out, 0.0, None)

    def fit_predict(
        self,
        Y: np.ndarray,
        dates: pd.DatetimeIndex,
        future_dates: pd.DatetimeIndex,
        freq: str,
        X: np.ndarray | None = None,
        X_future: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`fit` then :meth:`predict` for every series: an n x h array of forecasts."""
        self.fit(Y, dates, freq, X, h=len(future_dates))
        return self.predict(Y, future_dates, X_future)


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings inside a block."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
