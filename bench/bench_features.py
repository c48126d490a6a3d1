"""Benchmark: ``features.accounts.account_features`` on millions of synthetic order lines.

    .venv/bin/python bench/bench_features.py                 # 1M and 10M lines
    .venv/bin/python bench/bench_features.py --lines 1000000 # one size
    .venv/bin/python bench/bench_features.py --source numpy  # without the synthetic generator

By default the order book is engineer B's synthetic dealer network
(``training.synthetic.generate(lines_target=N)``, 2022-2024: order lines, accounts,
service events) read from its files with canonical dtypes, so the timing covers every
feature family on realistic data. ``--source numpy`` uses the quick
generator below instead (~N/200 accounts, 5k SKUs in 25 categories, 3 years, ~5 lines per
order). Generation and loading are reported but not part of the timed call. Each size runs in a fresh
subprocess; the kernel's peak-RSS mark is reset after generation (``/proc/self/clear_refs``)
so ``rss_peak_mib`` is the peak *during* the call, beside the RSS just before it (inputs
loaded) - the difference is what the feature computation itself needs. Goal: 10M lines <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

CUTOFF = "2025-01-01"  # the day after both generators' last order day: every line is read


def make_order_book(n_lines: int, *, seed: int = 0, lines_per_order: float = 5.0):
    """Synthetic canonical tables with about ``n_lines`` order lines."""
    rng = np.random.default_rng(seed)
    n_accounts = max(100, n_lines // 200)
    n_skus, n_cats = 5_000, 25
    start = np.datetime64("2022-01-01", "D")
    n_days = 3 * 365
    n_orders = max(1, int(n_lines / lines_per_order))
    # accounts differ in how often they order: draw orders by an account weight
    weight = rng.gamma(0.8, 1.0, n_accounts)
    o_acc = rng.choice(n_accounts, size=n_orders, p=weight / weight.sum())
    first = rng.integers(0, n_days // 2, n_accounts)
    churn_day = np.where(rng.random(n_accounts) < 0.2, rng.integers(n_days // 2, n_days, n_accounts), n_days)
    lo, hi = first[o_acc], churn_day[o_acc]
    o_day = lo + (rng.random(n_orders) * (hi - lo)).astype(np.int64)
    sizes = rng.poisson(lines_per_order - 1, n_orders) + 1
    scale = n_lines / sizes.sum()
    sizes = np.maximum(1, np.round(sizes * scale)).astype(np.int64)
    line_order = np.repeat(np.arange(n_orders), sizes)[:n_lines]
    if len(line_order) < n_lines:  # rounding left a few lines short: add them to random orders
        extra = rng.integers(0, n_orders, n_lines - len(line_order))
        line_order = np.sort(np.r_[line_order, extra])
    n = len(line_order)
    sku = rng.zipf(1.3, n) % n_skus
    qty = rng.integers(1, 20, n).astype("float64")
    price = (5 + (sku % 97)).astype("float64")
    acc_names = np.array([f"A{i:06d}" for i in range(n_accounts)], dtype=object)
    sku_names = np.array([f"S{i:05d}" for i in range(n_skus)], dtype=object)
    cat_names = np.array([f"C{i:02d}" for i in range(n_cats)], dtype=object)
    order_names = pd.Series(np.arange(n_orders)).map("O{:08d}".format).to_numpy(dtype=object)
    dates = (start + o_day[line_order]).astype("datetime64[ns]")
    ol = pd.DataFrame(
        {
            "order_id": order_names[line_order],
            "order_date": dates,
            "account_id": acc_names[o_acc[line_order]],
            "sku": sku_names[sku],
            "quantity": qty,
            "unit_price": price,
            "line_amount": qty * price,
            "location": "ALL",
            "channel": "field",
            "category": cat_names[sku % n_cats],
            "promo": (rng.random(n) < 0.1).astype("float64"),
        }
    ).sort_values("order_date", kind="stable", ignore_index=True)
    accounts = pd.DataFrame(
        {
            "account_id": acc_names,
            "region": rng.choice(["north", "south", "east", "west"], n_accounts),
            "channel_type": rng.choice(["distributor", "retail_chain", "shop", "ecommerce", "key_account"], n_accounts),
            "onboarding_date": (start + first - 30).astype("datetime64[ns]"),
        }
    )
    n_ev = n_accounts * 2
    events = pd.DataFrame(
        {
            "event_date": (start + rng.integers(0, n_days, n_ev)).astype("datetime64[ns]"),
            "account_id": acc_names[rng.integers(0, n_accounts, n_ev)],
            "kind": rng.choice(["complaint", "return", "ticket"], n_ev),
            "resolution_days": rng.exponential(5.0, n_ev).round(1),
        }
    )
    return ol, accounts, events


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_rss_mib() -> float:
    """Peak resident memory (VmHWM) of this process, MiB; getrusage as a fallback."""
    try:
        return _status_mib("VmHWM")
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5) and return the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_mib("VmRSS")
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synthetic_book(n_lines: int, workdir: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, float, float]:
    """Engineer B's synthetic dealer network, read straight from its files.

    The generated book is clean by construction, so it is read without
    ``load_order_book``'s validation (that has its own benchmark and needs several GiB
    more at 10M lines); dtypes are the canonical ones.
    """
    from training.synthetic import generate

    t0 = time.perf_counter()
    # the generator's line estimate runs ~3% short; aim a little higher so >= n_lines come out
    paths = generate(workdir, seed=11, lines_target=int(n_lines * 1.04))
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ol = pd.read_parquet(paths["order_lines"])
    accounts = pd.read_csv(paths["accounts"], dtype={"account_id": str}, parse_dates=["onboarding_date"])
    events = pd.read_csv(paths["service_events"], dtype={"account_id": str}, parse_dates=["event_date"])
    load_s = time.perf_counter() - t0
    return ol, accounts, events, gen_s, load_s


def _run_one(n_lines: int, source: str) -> dict:
    import tempfile

    from features.accounts import account_features

    load_s: float | None = None
    with tempfile.TemporaryDirectory(prefix="bench-features-") as workdir:
        if source == "synthetic":
            ol, accounts, events, gen_s, load_s = _synthetic_book(n_lines, workdir)
        else:
            t0 = time.perf_counter()
            ol, accounts, events = make_order_book(n_lines)
            gen_s = time.perf_counter() - t0
    gen_peak = _peak_rss_mib()
    rss_before = _reset_peak_rss()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    feats = account_features(ol, accounts, events, cutoff=CUTOFF)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    rss_peak = _peak_rss_mib()
    return {
        "source": source,
        "lines": len(ol),
        "lines_before_cutoff": int((ol["order_date"] < pd.Timestamp(CUTOFF)).sum()),
        "accounts_out": len(feats),
        "columns": feats.shape[1],
        "generate_s": round(gen_s, 1),
        "read_s": None if load_s is None else round(load_s, 1),
        "account_features_s": round(wall, 2),
        "account_features_cpu_s": round(cpu, 2),
        "generate_load_peak_rss_mib": round(gen_peak),
        "rss_before_mib": round(rss_before),
        "rss_peak_mib": round(rss_peak),
        "load1": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, action="append", help="order lines (repeatable); default 1M and 10M")
    ap.add_argument("--source", choices=["synthetic", "numpy"], default="synthetic",
                    help="synthetic = training.synthetic.generate + load_order_book (default); "
                         "numpy = the quick generator in this file")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_run_one(args.one, args.source)))
        return
    sizes = args.lines or [1_000_000, 10_000_000]
    print(f"account_features at cutoff {CUTOFF}; {os.cpu_count()} cores; load before {os.getloadavg()}")
    for n in sizes:
        res = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--source", args.source], capture_output=True, text=True, check=False
        )
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            raise SystemExit(res.returncode)
        print(res.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
