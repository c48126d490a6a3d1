"""What ``dealerml train demand`` computes, without MLflow: backtest, inventory replay, final fit,
each timed (wall, and CPU of this process + its reaped children, i.e. statsforecast's workers),
with everything they produce kept in a pickle so two runs (two commits, or the shared / plain
paths of one commit) can be compared number by number.

    .venv/bin/python bench/bench_train_demand.py run --config experiments/default.yaml --holdout 4 --out a.pkl
    .venv/bin/python bench/bench_train_demand.py run ... --plain --out b.pkl   # no shared member cache
    .venv/bin/python bench/bench_train_demand.py compare a.pkl b.pkl

``--plain`` runs the three parts as separate forecasters with nothing shared between them (the
path before the backtest -> final-fit member cache; the replay keeps its own refits). ``compare``
prints the largest absolute difference of every number (0 means identical; NaN must sit in the
same places) and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import inspect
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _timed(times: dict, name: str, fn):
    w, c = time.perf_counter(), _cpu()
    out = fn()
    times[name] = {"wall": round(time.perf_counter() - w, 2), "cpu": round(_cpu() - c, 2)}
    print(f"{name:10s} wall {times[name]['wall']:7.2f} s  cpu {times[name]['cpu']:7.2f} s", flush=True)
    return out


def _drop_seconds(d):
    if isinstance(d, dict):
        return {k: _drop_seconds(v) for k, v in d.items() if k != "seconds"}
    return d


def run(args) -> None:
    from models.demand import DemandForecaster
    from training.commands._demand_common import _settings_and_series
    from training.demand_backtest import run_backtest, run_inventory_replay

    s, df, info, seed = _settings_and_series(Path(args.config), None, None, {})
    kw = s.forecaster_kwargs(seed)
    shared = None
    if not args.plain and "member_cache" in inspect.signature(run_backtest).parameters:
        from models.demand import MemberCache

        shared = MemberCache()
    times: dict = {}
    bt_kw = {} if shared is None else {"member_cache": shared}
    report, cv = _timed(times, "backtest", lambda: run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows,
                                                                 step_size=s.step, forecaster_kwargs=kw, **bt_kw))
    rep = _timed(times, "replay", lambda: run_inventory_replay(
        df, freq=s.freq, lead_time_days=s.lead_time_days, lead_time_std_days=s.lead_time_std_days,
        review_period=s.review_period, holdout=args.holdout, n_sims=min(s.n_sims, 2000), forecaster_kwargs=kw,
        random_state=seed, lead_times=info.get("lead_times")))
    fit_kw = {} if shared is None else {"member_cache": shared}
    est = _timed(times, "fit", lambda: DemandForecaster(freq=s.freq, h=s.horizon, **kw).fit(df, **fit_kw))
    total = {k: round(sum(t[k] for t in times.values()), 2) for k in ("wall", "cpu")}
    print(f"{'total':10s} wall {total['wall']:7.2f} s  cpu {total['cpu']:7.2f} s", flush=True)
    out = {"report": _drop_seconds(report), "cv": cv, "replay": _drop_seconds(rep),
           "fit": {"forecast": est.predict(), "forecast_": est.forecast_, "choice": est.choice_, "scores": est.scores_,
                   "conformal": est.conformal_, "residuals": est.residuals_, "scale": est.scale_},
           "times": times, "total": total}
    with open(args.out, "wb") as fh:
        pickle.dump(out, fh)


def _diff(a, b, path: str, worst: dict) -> None:
    """Record the largest |a - b| under ``path``; inf for a structural difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            worst[path + " (keys)"] = np.inf
        for k in set(a) & set(b):
            _diff(a[k], b[k], f"{path}.{k}", worst)
        return
    if isinstance(a, pd.Series | pd.DataFrame) and isinstance(b, type(a)):
        if a.shape != b.shape or not a.index.equals(b.index) or (isinstance(a, pd.DataFrame) and list(a.columns) != list(b.columns)):
            worst[path + " (shape)"] = np.inf
            return
        cols = a.columns if isinstance(a, pd.DataFrame) else [None]
        for col in cols:
            x, y = (a, b) if col is None else (a[col], b[col])
            _diff(x.to_numpy(), y.to_numpy(), path if col is None else f"{path}[{col}]", worst)
        return
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            worst[path + " (len)"] = np.inf
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{i}]", worst)
        return
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        worst[path + " (shape)"] = np.inf
        return
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        xf, yf = x.astype(float), y.astype(float)
        if not np.array_equal(np.isnan(xf), np.isnan(yf)):
            worst[path + " (NaN)"] = np.inf
            return
        d = np.abs(xf - yf)
        worst[path] = float(np.nanmax(d)) if d.size and np.isfinite(d).any() else 0.0
    elif not np.array_equal(x, y):
        worst[path] = np.inf


def compare(args) -> int:
    with open(args.a, "rb") as fh:
        a = pickle.load(fh)
    with open(args.b, "rb") as fh:
        b = pickle.load(fh)
    worst: dict = {}
    for part in ("report", "cv", "replay", "fit"):
        _diff(a[part], b[part], part, worst)
    bad = {k: v for k, v in worst.items() if v != 0}
    print(f"{len(worst)} entries compared; max |difference| {max(worst.values()) if worst else 0.0}")
    for k, v in sorted(bad.items())[:30]:
        print(f"  {k}: {v}")
    for name in ("a", "b"):
        t = (a if name == "a" else b)
        print(name, {k: v for k, v in t["times"].items()}, "total", t["total"])
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--config", required=True)
    r.add_argument("--holdout", type=int, default=4)
    r.add_argument("--plain", action="store_true", help="share nothing between backtest and final fit")
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args()
    if args.cmd == "run":
        run(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
