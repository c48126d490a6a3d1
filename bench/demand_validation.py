"""Demand validation split: choose settings on windows that end before the benchmark's test.

    .venv/bin/python bench/demand_validation.py stallion --split val [--set '{"lgbm_params": {...}}'] [--json OUT]
        [--config FILE]

``val`` cuts the series at the benchmark's first test cutoff (Stallion 2016-12-01, Online Retail
2011-08-08) and runs the same backtest (horizon, windows, step of the experiment config) on what
is left, so every choice made on it is made without the test windows. ``test`` is the benchmark
itself; run it once per candidate, after the choice. Prints every model's MASE, coverage and bias,
the ratio to the best statsforecast baseline and the hindsight bound: the best member per series
and window picked *with* the answers, a ceiling for any selection or combination rule over the
same members (not a method). BENCHMARKS.md "What was tried" quotes its figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST_TEST_CUTOFF = {"stallion": "2016-12-01", "online_retail": "2011-08-08"}


def cutoff_lines(cv: pd.DataFrame) -> list[str]:
    """Final's coverage at each cutoff, over the rows with bands, as the report's table counts it
    (``training._demand_report``): a row without bands (no selection window before its cutoff) is left out
    and counted apart. The line counted those rows as misses (Online Retail's validation cutoff 2011-04-18:
    'cov80 0.060', where its 464 rows with bands covered 85 %) while saying they were left out of the table's."""
    lines = []
    for c, g in cv.groupby("cutoff"):
        cov, nob = {}, 0
        for lv in (80, 95):
            lo, hi = g[f"Final-lo-{lv}"].to_numpy(dtype=float), g[f"Final-hi-{lv}"].to_numpy(dtype=float)
            banded = np.isfinite(lo) & np.isfinite(hi)
            y = g["y"].to_numpy(dtype=float)[banded]
            cov[lv] = float(np.mean((y >= lo[banded]) & (y <= hi[banded]))) if banded.any() else None
            nob = max(nob, int((~banded).sum()))
        f = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        lines.append(f"Final at cutoff {pd.Timestamp(c).date()}: cov80 {f(cov[80])} cov95 {f(cov[95])} ({len(g)} rows"
                     + (f"; {nob} without bands (no selection window before this cutoff), left out of the coverage "
                        f"here and in the table above)" if nob else ")"))
    return lines


def main() -> None:
    from utilsforecast.losses import mase

    from training.config import load_config
    from training.demand_backtest import BASELINES, run_backtest
    from training.demand_config import demand_settings, load_demand_series

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", choices=sorted(FIRST_TEST_CUTOFF))
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--set", default="{}", help="JSON of DemandForecaster keyword overrides (dicts are merged)")
    ap.add_argument("--end", help="with --split val: cut the data here instead of the first test cutoff "
                    "(an earlier validation set, e.g. 2016-06-01 or 2015-12-01 for Stallion)")
    ap.add_argument("--json", type=Path, help="write the backtest report here")
    ap.add_argument("--config", type=Path, help="read the data and settings from this config instead of "
                    "experiments/<experiment>.yaml (e.g. a copy whose drivers are the planned values); the split "
                    "dates stay the experiment's")
    args = ap.parse_args()

    cfg = load_config(args.config or ROOT / "experiments" / f"{args.experiment}.yaml")
    s = demand_settings(cfg)
    df, _ = load_demand_series(cfg, s)
    if args.split == "val":
        end = pd.Timestamp(args.end or FIRST_TEST_CUTOFF[args.experiment])
        if end > pd.Timestamp(FIRST_TEST_CUTOFF[args.experiment]):
            ap.error(f"--end {args.end} reaches into the test windows (first test cutoff {FIRST_TEST_CUTOFF[args.experiment]})")
        df = df[df["ds"] <= end]
    kw = s.forecaster_kwargs(cfg.seed)
    for k, v in json.loads(args.set).items():
        kw[k] = {**(kw.get(k) or {}), **v} if isinstance(v, dict) else v
    t0 = time.perf_counter()
    rep, cv = run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step, forecaster_kwargs=kw)
    print(f"{args.experiment} {args.split}: cutoffs {rep['setup']['cutoffs']}, {time.perf_counter() - t0:.0f} s")
    print(f"{'model':<14}{'MASE':>8}{'cov80':>8}{'cov95':>8}{'pinball':>8}{'bias':>8}")
    for m, v in rep["metrics"].items():
        f = lambda x: "     -" if x is None else f"{x:8.3f}"  # noqa: E731
        print(f"{m:<14}{f(v['mase'])}{f(v['coverage_80'])}{f(v['coverage_95'])}{f(v.get('pinball'))}{f(v['bias'])}")
    for line in cutoff_lines(cv):  # the served bands per cutoff: is a miss one window or both?
        print(line)
    print(f"Final / best baseline ({rep['setup'].get('best_statsforecast_baseline')}): "
          f"{rep['setup'].get('final_mase_ratio_to_best_baseline'):.3f}")

    # hindsight bound over the members, on the series x windows the report scores
    train = df[df["unique_id"].isin(cv["unique_id"].unique())]
    season = int(rep["setup"]["scale_seasonality"])
    members = [m for m in (*BASELINES, "LightGBM", "Ensemble", "Final") if m in cv.columns]
    per = mase(cv[["unique_id", "ds", "cutoff", "y", *members]], members, season, train)
    per = per.replace([np.inf, -np.inf], np.nan).dropna()
    best = per[[m for m in BASELINES if m in per]].mean()
    print(f"hindsight best member per series x window: {per[members].min(axis=1).mean():.3f} "
          f"= {per[members].min(axis=1).mean() / best.min():.3f}x the best baseline ({best.idxmin()}); "
          f"median MASE Final {per['Final'].median():.3f} vs best baseline median {per[best.index].median().min():.3f}")
    if args.json:
        args.json.write_text(json.dumps(rep, indent=2, default=str))


if __name__ == "__main__":
    main()
