"""Demand forecasting and safety-stock benchmarks (``make bench`` runs all parts).

    .venv/bin/python bench/bench_demand.py stallion      # backtest h=6, 2 windows, step 6 + replay
    .venv/bin/python bench/bench_demand.py online_retail # top-1000 SKUs weekly, h=8, 2 windows + replay
    .venv/bin/python bench/bench_demand.py scale --n 1000 10000                 # demand.profile auto
    .venv/bin/python bench/bench_demand.py scale --n 100000 --profile fast --n-jobs 2
    .venv/bin/python bench/bench_demand.py all

Each part writes ``$DEALERML_HOME/bench/demand_<part>.json`` (default ./data/bench). Timings
are wall-clock on whatever else the machine is running; CPU seconds are user + sys of the
child process that ran the part and of its own children (statsforecast's worker processes when
``--n-jobs`` > 1); peak memory is the max RSS of that child (workers not included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPLAY_HOLDOUT = 6  # review epochs replayed (periods); each epoch refits the forecaster
sys.path.insert(0, str(ROOT))


def _out(name: str) -> Path:
    from training.paths import home

    p = home() / "bench" / f"demand_{name}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _summary(report: dict) -> dict:
    return {"metrics": report["metrics"], "by_class": report["by_class"], "setup": report["setup"],
            "selection": report.get("selection"), "n_skipped": len(report["skipped"])}


def real(name: str) -> dict:
    from training.config import load_config
    from training.demand_backtest import run_backtest, run_inventory_replay
    from training.demand_config import INFO_FUNCTIONS, demand_settings, load_demand_series

    cfg = load_config(ROOT / "experiments" / f"{name}.yaml")
    s = demand_settings(cfg)
    df, info = load_demand_series(cfg, s)
    t0 = time.perf_counter()
    report, _ = run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step,
                             forecaster_kwargs=s.forecaster_kwargs(cfg.seed), history_as_of=info.get("as_of"))
    t_bt = time.perf_counter() - t0
    res = {"data": {k: v for k, v in info.items() if k not in INFO_FUNCTIONS}, "n_series": int(df["unique_id"].nunique()), "backtest": _summary(report),
           "backtest_seconds": round(t_bt, 1), "peak_rss_mib": round(_peak_mib(), 1)}
    _out(name).write_text(json.dumps(res, indent=2, default=str))  # the backtest is kept even if the replay fails
    print(json.dumps({"backtest_seconds": res["backtest_seconds"], "final": report["metrics"]["Final"],
                      "ratio": report["setup"].get("final_mase_ratio_to_best_baseline")}, default=str), flush=True)
    t0 = time.perf_counter()
    rep = run_inventory_replay(df, freq=s.freq, lead_time_days=s.lead_time_days, lead_time_std_days=s.lead_time_std_days,
                               review_period=s.review_period, holdout=REPLAY_HOLDOUT, n_sims=2000,
                               forecaster_kwargs=s.forecaster_kwargs(cfg.seed), random_state=cfg.seed,
                               lead_times=info.get("lead_times"),  # the book's per-series lead times, if it has a table
                               history_as_of=info.get("as_of"))  # each epoch sized from the book as it stood then
    rep["same_service_from_curve"] = _same_service(rep)
    res.update({"replay": rep, "replay_seconds": round(time.perf_counter() - t0, 1), "peak_rss_mib": round(_peak_mib(), 1)})
    return res


def _same_service(rep: dict) -> dict:
    """Per target: the normal formula's average on-hand at the service the distribution method
    achieved, on both readings of cycle service (as the replay reports them), and the
    distribution method's on-hand relative to it."""
    out = {}
    for q, t in rep["targets"].items():
        d = t["distribution"]
        row = {"distribution_avg_on_hand": d["avg_on_hand"]}
        for reading, key in (("cycle_service_level_end_net", "normal_avg_on_hand_at_same_service"),
                             ("cycle_service_level", "normal_avg_on_hand_at_same_cycle_service_level")):
            same = t.get(key)
            row[reading] = {"distribution": d[reading], "normal_avg_on_hand_at_same_service": same,
                            "distribution_vs_normal": d["avg_on_hand"] / same - 1 if same and d["avg_on_hand"] is not None else None}
        out[q] = row
    return {"targets": out}


def synthetic(n: int, seed: int = 0):
    """n weekly series, 3 years: seasonal smooth, intermittent and lumpy Poisson/NB mixtures."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    T = 156
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    t = np.arange(T)
    level = rng.lognormal(1.0, 1.2, n)
    amp = rng.uniform(0, 0.5, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    p_demand = np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.15, 0.7, n))
    mu = level[:, None] * (1 + amp[:, None] * np.sin(2 * np.pi * t[None, :] / 52 + phase[:, None]))
    y = rng.poisson(mu) * (rng.random((n, T)) < p_demand[:, None])
    # one str object per series, shared by its rows: what pd.read_parquet gives (pyarrow
    # deduplicates strings); a fresh str per row would add ~0.9 GiB at 100k series
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    return pd.DataFrame({"unique_id": np.repeat(ids, T), "ds": np.tile(ds, n),
                         "y": y.reshape(-1).astype(float)})


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def scale_one(n: int, profile: str = "auto", n_jobs: int = 1, with_fit: bool = False) -> dict:
    """The backtest of ``n`` synthetic series; ``with_fit``: then the final fit on all history, as
    ``train demand`` does it (the same member cache, so the selection windows both need run once)."""
    import os

    from models.demand import DemandForecaster
    from models.demand_cache import MemberCache
    from training.demand_backtest import run_backtest

    df = synthetic(n)
    t0, c0 = time.perf_counter(), _cpu()
    kw = {"lgbm_params": {"n_estimators": 100}, "profile": profile, "n_jobs": n_jobs}
    cache = MemberCache() if with_fit else None
    report, cv = run_backtest(df, freq="W", h=8, n_windows=2, forecaster_kwargs=kw, member_cache=cache)
    bt_sec, bt_cpu = time.perf_counter() - t0, _cpu() - c0
    if with_fit:
        del cv
        DemandForecaster(freq="W", h=8, **kw).fit(df, member_cache=cache).predict(8)
    sec, cpu = time.perf_counter() - t0, _cpu() - c0
    m = report["metrics"]
    best = report["setup"].get("best_statsforecast_baseline")
    return {"n_series": n, "profile": profile, "n_jobs": n_jobs, "with_fit": with_fit,
            "backtest_seconds": round(bt_sec, 1), "backtest_cpu_seconds": round(bt_cpu, 1),
            "seconds": round(sec, 1), "cpu_seconds": round(cpu, 1),
            "cpu_ms_per_series": round(1000 * cpu / n, 2), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "peak_rss_mib": round(_peak_mib(), 1), "final_mase": m["Final"]["mase"], "best_baseline": best,
            "best_baseline_mase": m[best]["mase"] if best else None,
            "ratio": report["setup"].get("final_mase_ratio_to_best_baseline"),
            "coverage_80": m["Final"]["coverage_80"], "coverage_95": m["Final"]["coverage_95"],
            "members": {k: {"mase": v["mase"], "coverage_80": v["coverage_80"], "coverage_95": v["coverage_95"]} for k, v in m.items()},
            "selection": report.get("selection")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", nargs="?", default="all", choices=["stallion", "online_retail", "scale", "scale_one", "all"])
    ap.add_argument("--n", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--profile", choices=["full", "fast", "auto"], default="auto", help="demand.profile of the scale runs")
    ap.add_argument("--n-jobs", type=int, default=1, help="statsforecast worker processes (demand.n_jobs)")
    ap.add_argument("--with-fit", action="store_true", help="scale: the final fit + forecast after the backtest, as train demand")
    a = ap.parse_args()
    if a.part in ("stallion", "online_retail"):
        res = real(a.part)
        _out(a.part).write_text(json.dumps(res, indent=2, default=str))
        print(json.dumps({k: res[k] for k in ("n_series", "backtest_seconds", "replay_seconds", "peak_rss_mib")}))
    elif a.part == "scale_one":
        print(json.dumps(scale_one(a.n[0], a.profile, a.n_jobs, a.with_fit)))
    elif a.part == "scale":
        rows = []
        for n in a.n:  # a child process per size so peak memory is per size
            cmd = [sys.executable, __file__, "scale_one", "--n", str(n), "--profile", a.profile, "--n-jobs", str(a.n_jobs),
                   *(["--with-fit"] if a.with_fit else [])]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
        _out(f"scale_{a.profile}{'_fit' if a.with_fit else ''}").write_text(json.dumps(rows, indent=2))
    else:
        for p in ("stallion", "online_retail", "scale"):
            subprocess.run([sys.executable, __file__, p], check=True)


if __name__ == "__main__":
    main()
