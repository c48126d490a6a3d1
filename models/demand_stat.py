"""statsforecast members of DemandForecaster, run over a long table at one cutoff.

``full`` profile: each member with its own intervals (conformal ones for the intermittent
models, which refits them on 2 extra windows). ``fast`` profile: point forecasts only; the
caller gives every member split-conformal intervals from its selection-window errors, as it
does for LightGBM, which removes most of the per-series cost (see BENCHMARKS.md, Speed).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

__all__ = ["STAT_MEMBERS", "stat_forecast"]

STAT_MEMBERS = ("SeasonalNaive", "AutoETS", "AutoTheta", "CrostonSBA", "TSB", "IMAPA", "ADIDA")


def stat_forecast(long: pd.DataFrame, members: Sequence[str], *, season: int, h: int, offset: str,
                  levels: Sequence[int] | None, n_jobs: int = 1) -> pd.DataFrame:
    """Forecasts ``unique_id, ds, <member>[, <member>-lo-<lv>, <member>-hi-<lv>]`` for ``h``
    periods after the end of ``long``; ``levels=None`` gives point forecasts only."""
    from statsforecast import StatsForecast
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        TSB,
        AutoETS,
        AutoTheta,
        CrostonSBA,
        Naive,
        SeasonalNaive,
    )
    from statsforecast.utils import ConformalIntervals

    ci = ConformalIntervals(h=h, n_windows=2) if levels else None
    make = {
        "SeasonalNaive": lambda: SeasonalNaive(season_length=season),
        "AutoETS": lambda: AutoETS(season_length=season),
        "AutoTheta": lambda: AutoTheta(season_length=season),
        "CrostonSBA": lambda: CrostonSBA(prediction_intervals=ci),
        "TSB": lambda: TSB(alpha_d=0.1, alpha_p=0.1, prediction_intervals=ci),
        "IMAPA": lambda: IMAPA(prediction_intervals=ci),
        "ADIDA": lambda: ADIDA(prediction_intervals=ci),
    }
    models = [make[m]() for m in members] + [Naive(alias="_Naive")]
    sf = StatsForecast(models=models, freq=offset, n_jobs=n_jobs, fallback_model=Naive())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = sf.forecast(df=long, h=h, level=list(levels) if levels else None)
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    # A member that cannot run on a series (e.g. too short for its season) gives NaN:
    # fall back to the naive forecast and its intervals there.
    suffixes = ["", *[f"-{s}-{lv}" for lv in (levels or ()) for s in ("lo", "hi")]]
    for m in members:
        for suffix in suffixes:
            col, nav = f"{m}{suffix}", f"_Naive{suffix}"
            if col in fc.columns:
                fc[col] = fc[col].fillna(fc[nav])
    return fc.drop(columns=[c for c in fc.columns if c.startswith("_Naive")])
