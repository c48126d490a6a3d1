"""Coherent forecasts (``demand.hierarchy``) on a validation split: every level's accuracy and the
parents' bands, as served (split-conformal on the coherent forecast) and as before (each parent's
own band moved onto the coherent point), from one cross-validation.

    .venv/bin/python bench/demand_hier_validation.py CONFIG --end 2016-12-01 [--json OUT]

``CONFIG`` is an experiment config with ``demand.hierarchy: true`` (e.g. experiments/stallion.yaml
plus ``hierarchy: true`` and ``levels: [sku, agency]``); ``--end`` cuts the series there (for
Stallion 2016-12-01 is the first test cutoff, 2016-06-01 and 2015-12-01 are earlier validation
splits). Horizon, windows and step are the config's. The "moved" bands are rebuilt from the
``Base`` columns: clip(own band + (coherent - own point), 0), held around the coherent point.
BENCHMARKS.md "Coherent forecasts across levels" quotes its figures.
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


def _moved(part: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
    """``part`` with the Final bands replaced by each node's own (Base) band moved onto Final."""
    out = part.copy()
    shift = out["Final"].to_numpy() - out["Base"].to_numpy()
    for lv in levels:
        out[f"Final-lo-{lv}"] = np.minimum(np.clip(out[f"Base-lo-{lv}"].to_numpy() + shift, 0, None), out["Final"])
        out[f"Final-hi-{lv}"] = np.maximum(np.clip(out[f"Base-hi-{lv}"].to_numpy() + shift, 0, None), out["Final"])
    return out


def main() -> None:
    from models.demand_hier import HierarchicalDemandForecaster
    from training.config import load_config
    from training.demand_backtest import backtest_report, scale_seasonality
    from training.demand_config import demand_settings, load_demand_series
    from training.demand_hier_backtest import _level_name

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--end", required=True, help="cut the series here (last period kept)")
    ap.add_argument("--json", type=Path, help="write the per-level figures here")
    args = ap.parse_args()

    cfg = load_config(args.config)
    s = demand_settings(cfg)
    if not s.hierarchy:
        ap.error(f"{args.config}: demand.hierarchy must be true")
    df, info = load_demand_series(cfg, s)
    df = df[pd.to_datetime(df["ds"]) <= pd.Timestamp(args.end)]
    t0, c0 = time.perf_counter(), time.process_time()
    est = HierarchicalDemandForecaster(info["levels"], method=s.reconcile,
                                       forecaster={"freq": s.freq, "h": s.horizon, **s.forecaster_kwargs(cfg.seed)})
    cv = est.cross_validation(df, h=s.horizon, n_windows=s.windows, step_size=s.step)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    cv = cv[cv["y"].notna()].reset_index(drop=True)
    history = est.cv_history_
    season = scale_seasonality(history, est.cv_info_, s.horizon, s.windows)
    lv = est.cv_estimator_._levels()
    out: dict = {"end": args.end, "cutoffs": sorted(str(pd.Timestamp(c).date()) for c in cv["cutoff"].unique()),
                 "seconds_wall": round(wall, 1), "seconds_cpu": round(cpu, 1), "levels": {}}
    print(f"split {args.end}: cutoffs {out['cutoffs']}, {wall:.0f} s wall, {cpu:.0f} s CPU")
    print(f"{'level':<14}{'n':>5}  {'bands':<8}{'MASE':>8}{'pinball':>9}{'cov80':>8}{'cov95':>8}{'w80':>10}{'w95':>10}")
    for tag, ids in est.tags_.items():
        name = _level_name(tag)
        part = cv[cv["unique_id"].isin(set(map(str, ids)))]
        row = {}
        for label, frame in (("coherent", part), ("moved", _moved(part, lv))):
            m = backtest_report(frame[["unique_id", "ds", "cutoff", "y", "demand_class", "Final",
                                       *[c for c in frame.columns if c.startswith("Final-")]]],
                                history, seasonality=season, levels=lv)["metrics"]["Final"]
            w = {x: float((frame[f"Final-hi-{x}"] - frame[f"Final-lo-{x}"]).mean()) for x in lv}
            row[label] = {**m, **{f"width_{x}": w[x] for x in lv}}
            print(f"{name:<14}{len(ids):>5}  {label:<8}{m['mase']:8.3f}{m['pinball']:9.3f}{m['coverage_80']:8.3f}"
                  f"{m['coverage_95']:8.3f}{w[80]:10.1f}{w[95]:10.1f}")
        out["levels"][name] = {"n_series": len(ids), "n_points": int(len(part)), **row}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
