"""Cold safety-stock sizing benchmark: ``InventoryPolicy.fit`` in-process for N series.

Every sizing that the service's cache has not seen, ``dealerml safety-stock``, the inventory
replay of ``train demand`` and the demand benchmarks run ``InventoryPolicy.fit``; this times it
on its own, without a trained home, on a synthetic case shaped like the demand forecaster's
output (``make_case``): weekly histories of smooth / erratic / intermittent / lumpy / near-zero
series (104-130 weeks, some starting late), their Syntetos-Boylan classes
(``features.demand.demand_classes``), a flat point forecast (the last 26 weeks' mean), scaled
error paths from 4 rolling origins per series as ``DemandForecaster.residuals_`` has them (the
last origin's paths 2 steps short, as rolling windows near the end are), the naive scale,
per-series lead times of 1-3 weeks with a spread on half of the series.

Each (implementation, size) runs in a fresh subprocess, so its peak RSS is its own (mostly the
case's tables); ``alloc_peak_mb`` is the call's own peak allocation (tracemalloc, numpy arrays
included, from a second call). Usage::

    python bench/bench_safety_stock.py                       # 1,000 and 5,000 series, current code
    python bench/bench_safety_stock.py --reference --check   # also the per-series loop; equal answers?
    python bench/bench_safety_stock.py --serving             # the service's backend.safety_stock instead
    python bench/bench_safety_stock.py --profile 1000        # cProfile of one fit, top 30 by tottime

``--reference`` times ``tests/_inventory_reference.py`` (the per-series loop as it was before
the batched fit) on the same case; ``--check`` checks the current answers equal its. ``--serving``
times one cold ``POST /safety_stock`` body for every series (lead time 14 days) through the
service's real ``DemandBackend`` built on the case, without HTTP or JSON.
Prints a table and writes ``bench_out/safety_stock.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_case(n: int, *, h: int = 8, seed: int = 0, windows: int = 4, periods: int = 130):
    """A synthetic sizing problem for ``n`` series: ``(forecast, residuals, scale, lead_time,
    lead_time_std, history)`` as ``InventoryPolicy.fit`` takes them (weekly; units per week)."""
    from features.demand import demand_classes
    from models.demand_select import naive_scale

    rng = np.random.default_rng(seed)
    T = periods
    kind = rng.choice(["smooth", "erratic", "intermittent", "lumpy", "near_zero"], size=n, p=[0.3, 0.15, 0.25, 0.22, 0.08])
    Y = np.zeros((n, T))
    for i, k in enumerate(kind):
        if k == "smooth":
            Y[i] = rng.poisson(rng.uniform(3, 40), T)
        elif k == "erratic":
            Y[i] = rng.negative_binomial(1, 1 / (1 + rng.uniform(2, 20)), T)
        elif k == "intermittent":
            Y[i] = (rng.random(T) < rng.uniform(0.15, 0.6)) * (1 + rng.poisson(rng.uniform(0.5, 4), T))
        elif k == "lumpy":
            Y[i] = (rng.random(T) < rng.uniform(0.03, 0.3)) * np.round(rng.lognormal(rng.uniform(1, 3.5), 1.0, T))
        else:  # a sale or two long ago, nothing lately: forecast below one unit over lead time + review
            Y[i, rng.integers(0, T // 2, 2)] = rng.integers(1, 4, 2)
    start = np.where(rng.random(n) < 0.1, rng.integers(T - 40, T - 10, n), 0)  # ~10 % are new series
    for i in np.flatnonzero(start):
        Y[i, : start[i]] = np.nan
    uids = np.array([f"SKU{i:05d}/LOC{i % 3}" for i in range(n)], dtype=object)
    ds = pd.date_range("2022-01-03", periods=T + h, freq="W-MON")
    hist = pd.DataFrame({"unique_id": np.repeat(uids, T), "ds": np.tile(ds[:T], n), "y": Y.ravel()})
    hist = hist[np.isfinite(hist["y"].to_numpy())].reset_index(drop=True)
    cls = demand_classes(hist).set_index("unique_id")["demand_class"].reindex(uids).to_numpy()
    scale = naive_scale(Y, T - 1)

    def level(upto: int) -> np.ndarray:
        with warnings.catch_warnings():  # new series have no weeks before some origins
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(Y[:, max(0, upto - 26):upto], axis=1)
        return np.nan_to_num(m, nan=0.0)

    point = level(T) * rng.uniform(0.85, 1.15, n)
    fc = pd.DataFrame({"unique_id": np.repeat(uids, h), "ds": np.tile(ds[T:], n), "Final": np.repeat(point, h)})
    parts = []
    for w in range(windows):
        cut = T - h - 4 * w + (2 if w == 0 else 0)  # the latest origin has only h - 2 observed steps
        steps = min(h, T - cut)
        err = (Y[:, cut:cut + steps] - level(cut)[:, None]) / scale[:, None]
        ok = np.isfinite(err)
        r_i, r_k = np.nonzero(ok)
        parts.append(pd.DataFrame({"unique_id": uids[r_i], "demand_class": cls[r_i], "cutoff": ds[cut - 1],
                                   "step": r_k + 1, "r": err[ok]}))
    res = pd.concat(parts, ignore_index=True)
    L = pd.Series(rng.choice([1.0, 10 / 7, 2.0, 3.0], n), index=uids)
    sdL = pd.Series(np.where(rng.random(n) < 0.5, rng.choice([0.3, 0.5, 0.8], n), 0.0), index=uids)
    return fc, res, pd.Series(scale, index=uids), L, sdL, hist


def _fit(impl: str, case, service_level: float, n_sims: int):
    import scipy.stats  # noqa: F401  (the normal formula's import: loaded once per process, as in the service)

    fc, res, scale, L, sdL, hist = case
    if impl == "reference":
        from _inventory_reference import ReferencePolicy as Policy
    else:
        from models.inventory import InventoryPolicy as Policy
    return Policy(service_level, 1.0, n_sims=n_sims, random_state=0).fit(fc, res, scale, L, sdL, history=hist).policy_


def _backend(case, n_sims: int):
    """The service's real ``DemandBackend`` (serving/demand.py) on the case: a stand-in for a
    fitted ``DemandForecaster`` carrying what the backend reads (point forecasts, ``residuals_``,
    ``scale_`` and the fitted panel for the own-history bootstrap); its sizing cache is empty."""
    from types import SimpleNamespace

    from serving.demand import DemandBackend

    fc, res, scale, _, _, hist = case
    uids = list(dict.fromkeys(fc["unique_id"]))
    W = hist.pivot_table(index="unique_id", columns="ds", values="y").reindex(uids)
    panel = SimpleNamespace(Y=W.to_numpy(dtype=float), uids=np.asarray(uids, dtype=object), dates=pd.DatetimeIndex(W.columns))
    est = SimpleNamespace(residuals_=res, scale_=scale, panel_=panel)
    h = len(fc) // len(uids)
    return DemandBackend(model_name="dealerml-demand", model_version="bench", freq="W", uids=uids, keys=None,
                         dates=pd.DatetimeIndex(fc["ds"].iloc[:h]), mean=fc["Final"].to_numpy().reshape(len(uids), h),
                         bounds={}, last_observed=W.columns[-1], estimator=est,
                         policy_settings={"n_sims": n_sims, "lead_time_days": 14.0, "lead_time_std_days": 0.0,
                                          "review_period": 1.0})


def _serve(impl: str, case, n_sims: int):
    """A call of one cold ``backend.safety_stock`` call for every series (lead time 14 days, as
    bench_serving's /safety_stock scenarios): what an HTTP request costs minus transport and JSON."""
    import models.inventory
    from serving.schemas import SafetyStockRequest

    if impl == "reference":  # the service builds its policy from models.inventory at call time
        from _inventory_reference import ReferencePolicy

        models.inventory.InventoryPolicy = ReferencePolicy
    backend = _backend(case, n_sims)  # start-up work, before the clock
    req = SafetyStockRequest(series_ids=list(backend.uids), lead_time_days=14.0)
    return lambda: backend.safety_stock(req)


def _one(impl: str, n: int, n_sims: int, check: bool, serving: bool = False) -> dict:
    """Time one cold fit in this process (run in a fresh subprocess by ``main``)."""
    import resource

    case = make_case(n)
    _fit(impl, make_case(20, seed=1), 0.95, 200)  # imports, not timed
    if serving:
        _serve(impl, make_case(20, seed=1), 200)()
    call = _serve(impl, case, n_sims) if serving else (lambda: _fit(impl, case, 0.95, n_sims))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    w0, c0 = time.perf_counter(), time.process_time()
    pol = call()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    out = {"impl": impl, "series": n, "n_sims": n_sims, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_before_fit_mb": round(rss0, 1), "load_1min": round(os.getloadavg()[0], 2),
           "what": "backend.safety_stock" if serving else "InventoryPolicy.fit"}
    # the call's own allocations (numpy arrays included), from a second run under tracemalloc:
    # the process peak above is mostly the case's tables
    import tracemalloc

    call = _serve(impl, case, n_sims) if serving else call
    tracemalloc.start()
    call()
    out["alloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    if serving:
        out["own_history"] = sum(r["lead_time_demand_source"] == "own_history" for r in pol["rows"])
        if check:
            assert pol == _serve("reference", case, n_sims)()
            out["equal_to_reference"] = True
        return out
    out["own_history"] = int((pol["ltd_source"] == "own_history").sum())
    if check:
        ref = _fit("reference" if impl != "reference" else "current", case, 0.95, n_sims)
        pd.testing.assert_frame_equal(pol, ref, check_exact=True)
        out["equal_to_reference"] = True
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--n-sims", type=int, default=4000)
    ap.add_argument("--reference", action="store_true", help="also time the per-series reference loop")
    ap.add_argument("--check", action="store_true", help="check the current fit equals the reference to the bit")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile one fit of N series and stop")
    ap.add_argument("--sort", default="tottime", help="profile sort key (tottime, cumulative)")
    ap.add_argument("--impl", default="current", choices=["current", "reference"])
    ap.add_argument("--serving", action="store_true",
                    help="time the service's backend.safety_stock (serving/inventory.py) instead of InventoryPolicy.fit")
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "safety_stock.json"))
    a = ap.parse_args()
    if a.one:
        print(json.dumps(_one(a.impl, a.one, a.n_sims, a.check, a.serving)))
        return
    if a.profile:
        import cProfile
        import pstats

        case = make_case(a.profile)
        _fit(a.impl, make_case(20, seed=1), 0.95, 200)  # imports, not profiled
        prof = cProfile.Profile()
        prof.enable()
        _fit(a.impl, case, 0.95, a.n_sims)
        prof.disable()
        pstats.Stats(prof).sort_stats(a.sort).print_stats(30)
        return
    rows = []
    for n in a.sizes:
        for impl in (["reference"] if a.reference else []) + ["current"]:
            cmd = [sys.executable, __file__, "--one", str(n), "--impl", impl, "--n-sims", str(a.n_sims)]
            if a.check and impl == "current":
                cmd.append("--check")
            if a.serving:
                cmd.append("--serving")
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            rows.append(r)
            print(f"{r['what']} {r['impl']:>9} {r['series']:>6} series  wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
                  f"peak RSS {r['peak_rss_mb']:6.0f} MB (before {r['rss_before_fit_mb']:.0f}), allocated at peak "
                  f"{r['alloc_peak_mb']:5.1f} MB  load {r['load_1min']}"
                  + ("  equal to reference" if r.get("equal_to_reference") else ""), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
