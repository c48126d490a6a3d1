"""Panels, fitted forecasters and ranges shared by the driver-range tests (test_demand_driver_range.py:
the model and ``dealerml forecast --future``; test_serving_driver_range.py: the service's ``warnings``)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from models.demand import DemandForecaster

H = 3
LO, HI = 7.5, 12.5  # the price range of the training rows, set in _price_panel
K = 20  # LightGBM's min_child_samples, GlobalLGBM's default


def _kth(values) -> tuple[float, float]:
    """The K-th smallest and K-th largest of ``values``."""
    v = np.sort(np.asarray(values, dtype="float64"))
    return float(v[K - 1]), float(v[-K])


def _trained(df: pd.DataFrame) -> pd.DataFrame:
    """The rows the member trains on: all but each series' first period (it has no lag)."""
    return df[df["ds"] > df.groupby("unique_id")["ds"].transform("min")]


def _price_panel(n: int = 6, T: int = 60, seed: int = 5) -> pd.DataFrame:
    """Weekly series whose demand falls with price (8 .. 12, two decimals). The first period of every
    series has price 100: the member never trains on a first period (it has no lag), so 100 is not
    in the range; s0 has the lowest price (7.5, period 5) and s3 the highest (12.5, period 40)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    rows = []
    for i in range(n):
        price = np.round(rng.uniform(8, 12, T), 2)
        price[0] = 100.0
        if i == 0:
            price[5] = LO
        if i == 3:
            price[40] = HI
        y = rng.poisson(np.clip(40 - 3 * price, 1, None)).astype(float)
        y[0] = rng.poisson(10)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y, "price": price}))
    return pd.concat(rows, ignore_index=True)


KLO, KHI = _kth(_trained(_price_panel())["price"])  # 8.16 .. 11.84: where the forecast responds to price


def _fit_prices() -> DemandForecaster:
    """The forecaster of the ``fitted`` fixture (each test file keeps its own module-scoped one)."""
    est = DemandForecaster(freq="W", h=H, models=("AutoETS", "LightGBM"), exog=["price"], selection_windows=1,
                           lgbm_params={"n_estimators": 30}, random_state=0)
    return est.fit(_price_panel())


def _rng(est: DemandForecaster) -> dict:
    """The range keys of a price entry of ``est`` (its recorded (lo, hi, min, max, k))."""
    lo, hi, mn, mx, k = est.driver_ranges_["price"]
    return {"min": mn, "max": mx, "lo": lo, "hi": hi, "min_child_samples": k}


def _old(est: DemandForecaster) -> DemandForecaster:
    """``est`` as a forecaster saved before the ranges were recorded (no driver_ranges_, a member without x_range_)."""
    old = copy.deepcopy(est)
    del old.driver_ranges_
    del old.lgbm_["model"].x_range_
    return old


def _level_panel(T: int = 60, seed: int = 3) -> pd.DataFrame:
    """Three weekly series at different price levels (a 5, b 10, c 20), each price cycling 0.9, 1.0, 1.1 x
    its level, so each series' mean price is its level: the raw prices trained on span 4.5 .. 22 (a's 0.9 x
    to c's 1.1 x), the prices relative to their series' mean 0.9 .. 1.1. Demand falls with the relative price."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    rows = []
    for uid, level in (("a", 5.0), ("b", 10.0), ("c", 20.0)):
        price = level * np.tile([0.9, 1.0, 1.1], T // 3)
        y = rng.poisson(np.clip(60 - 40 * price / level, 1, None)).astype(float)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y, "price": price}))
    return pd.concat(rows, ignore_index=True)


def _fit_levels() -> DemandForecaster:
    """The forecaster of the ``levels`` fixture."""
    est = DemandForecaster(freq="W", h=H, models=("AutoETS", "LightGBM"), exog=["price"], selection_windows=1,
                           lgbm_params={"n_estimators": 30}, random_state=0)
    return est.fit(_level_panel())
