"""Serving load benchmark: latency and throughput of a real ``bentoml serve`` on 127.0.0.1.

Scenarios (bounded request counts, so the run takes about a minute):
- single-account ``POST /churn_scores`` with 1 client and with 16 concurrent clients;
- a 1,000-account ``POST /churn_scores`` batch (1 client);
- a 100-series ``POST /forecast`` (horizon = the champion's, levels 80/95; 1 client);
- the same with a driver plan (the first driver set in every period) for 1 and for 100 of the
  series: the planned series are re-forecast from the champion's kept booster per request;
- ``POST /safety_stock`` for 1, 100 and 1,000 series (as many as are served, up to 1,000; lead
  time 14 days): "cold" asks a service level no call asked before (0.9 + i / 10^6 for call i),
  so every series is simulated; "warm" repeats one body, so every series is sized from the
  service's sizing cache (``serving.inventory.SizingCache``).

Usage::

    python bench/bench_serving.py                 # builds a synthetic home with champions in a tmp dir
    python bench/bench_serving.py --home DIR      # build (or reuse) a DEALERML_HOME with champions + config
    python bench/bench_serving.py --url URL --key KEY   # measure a server that is already running

Prints a table and writes ``bench_out/serving.json``. Goals (issue 7): p99 <= 20 ms for a
single-account score at 1 client, >= 300 scores/s at 16 clients. The load generator runs on
the same 2-core machine as the server, so client CPU is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _Conn:
    """One keep-alive HTTP/1.1 connection with pre-encoded requests (a wrk-like client, so the
    load generator's own CPU - it shares the 2 cores with the server - stays small)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        return status, body

    def close(self) -> None:
        self.writer.close()


def _raw(host: str, port: int, path: str, key: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


async def _run(url: str, key: str, make_body, path: str, n: int, concurrency: int, warmup: int = 20) -> dict:
    """``n`` requests from ``concurrency`` clients (each its own keep-alive connection), after
    ``warmup`` requests that are not measured."""
    host, port = url.split("//", 1)[1].split(":")
    port = int(port)
    bodies = [_raw(host, port, path, key, make_body()) for _ in range(n + warmup)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(n))
    conns = [_Conn(host, port) for _ in range(concurrency)]
    for c in conns:
        await c.open()
    for i in range(min(warmup, n)):  # warm-up (not measured)
        await conns[0].request(bodies[n + i])

    async def worker(conn: _Conn) -> None:
        for i in counter:
            t0 = time.perf_counter()
            status, _ = await conn.request(bodies[i])
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    lat = np.array(latencies) * 1000
    return {
        "requests": n,
        "concurrency": concurrency,
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "mean_ms": round(float(lat.mean()), 2),
        "requests_per_s": round(n / wall, 1),
        "wall_s": round(wall, 2),
        "statuses": statuses,
    }


def _discover(url: str, key: str) -> tuple[list[str], list[str], dict]:
    """Account ids the churn model scores and series ids the forecaster serves."""
    from serving.examples import scorable_accounts

    h = {"X-API-Key": key}
    info = httpx.get(f"{url}/model_info", headers=h, timeout=30).json()
    summary = {m["name"]: m.get("summary", {}) for m in info["models"]}
    dealers = httpx.post(f"{url}/dealer_scores", headers=h, json={"top_k": 5000}, timeout=60).json()["dealers"]
    accounts = [d["account_id"] for d in dealers]
    accounts = scorable_accounts(url, h, accounts)
    locations = summary.get("dealerml-demand", {}).get("filters", {}).get("location", [])
    series: list[str] = []
    if locations:
        fc = httpx.post(f"{url}/forecast", headers=h, json={"location": locations, "horizon": 1}, timeout=60).json()
        series = [s["unique_id"] for s in fc["series"]]
    if not accounts or not series:
        raise SystemExit(f"bench_serving: the server serves {len(accounts)} accounts and {len(series)} series")
    return accounts, series, info


def run_benchmarks(url: str, key: str) -> dict:
    accounts, series, info = _discover(url, key)
    rng = random.Random(0)
    results: dict = {}
    results["churn_single_1_client"] = asyncio.run(
        _run(url, key, lambda: {"account_ids": [rng.choice(accounts)]}, "/churn_scores", 600, 1)
    )
    results["churn_single_16_clients"] = asyncio.run(
        _run(url, key, lambda: {"account_ids": [rng.choice(accounts)]}, "/churn_scores", 3000, 16)
    )
    for k in ("churn_single_1_client", "churn_single_16_clients"):
        results[k]["scores_per_s"] = results[k]["requests_per_s"]
    # 1,000 ids per call; with fewer scored accounts than that, ids repeat (the answer is per distinct id)
    batch = [accounts[i % len(accounts)] for i in range(1000)]
    results["churn_batch_1000"] = asyncio.run(_run(url, key, lambda: {"account_ids": batch}, "/churn_scores", 40, 1))
    results["churn_batch_1000"]["distinct_accounts"] = len(set(batch))
    results["churn_batch_1000"]["scores_per_s"] = round(
        results["churn_batch_1000"]["requests_per_s"] * len(set(batch)), 0
    )
    fc_ids = series[:100]
    horizon = next(m for m in info["models"] if m["name"] == "dealerml-demand")["summary"]["horizon"]
    results["forecast_100_series"] = asyncio.run(
        _run(url, key, lambda: {"series_ids": fc_ids, "horizon": horizon, "levels": [80, 95]}, "/forecast", 60, 1)
    )
    results["forecast_100_series"]["series_per_request"] = len(fc_ids)
    results["forecast_100_series"]["scores_per_s"] = round(results["forecast_100_series"]["requests_per_s"] * len(fc_ids), 0)
    drivers = next(m for m in info["models"] if m["name"] == "dealerml-demand")["summary"].get("drivers") or []
    if drivers:
        first = httpx.post(f"{url}/forecast", headers={"X-API-Key": key}, json={"series_ids": fc_ids[:1], "horizon": horizon},
                           timeout=60).json()["series"][0]["forecast"]
        dates = [p["ds"] for p in first]
        for n_plan in (1, 100):
            plan = [{"unique_id": u, "ds": d, drivers[0]: 1.0} for u in fc_ids[:n_plan] for d in dates]
            name = f"forecast_plan_{n_plan}_series"
            results[name] = asyncio.run(_run(url, key, lambda plan=plan, n_plan=n_plan: {
                "series_ids": fc_ids[:n_plan], "horizon": horizon, "levels": [80, 95], "drivers": plan}, "/forecast", 60, 1))
            results[name]["scores_per_s"] = round(results[name]["requests_per_s"] * n_plan, 0)
    results.update(_safety_stock_scenarios(url, key, series))
    results["models"] = {m["name"]: m["version"] for m in info["models"]}
    results["served"] = {"accounts": len(accounts), "series": len(series)}
    return results


SAFETY_STOCK_RUNS = {1: (60, 60), 100: (10, 30), 1000: (3, 10)}
"""Series per call -> (cold calls, warm calls) measured; cold calls simulate every series."""


def _safety_stock_scenarios(url: str, key: str, series: list[str]) -> dict:
    out: dict = {}
    calls = iter(range(10**6))
    for n, (n_cold, n_warm) in SAFETY_STOCK_RUNS.items():
        ids = series[:n]  # fewer when the home serves fewer series (series_per_request says how many)
        body = {"series_ids": ids, "lead_time_days": 14.0}
        cold = asyncio.run(_run(url, key, lambda body=body: {**body, "service_level": 0.9 + next(calls) / 1e6},
                                "/safety_stock", n_cold, 1, warmup=1))
        warm = asyncio.run(_run(url, key, lambda body=body: {**body, "service_level": 0.95}, "/safety_stock", n_warm, 1,
                                warmup=1))
        for name, res in ((f"safety_stock_{n}_cold", cold), (f"safety_stock_{n}_warm", warm)):
            res["series_per_request"] = len(ids)
            res["scores_per_s"] = round(res["requests_per_s"] * len(ids), 0)
            out[name] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url")
    ap.add_argument("--key", default=os.environ.get("DEALERML_BENCH_KEY", "bench-key-0123456789"))
    ap.add_argument("--home", type=Path)
    ap.add_argument("--accounts", type=int, default=1200, help="synthetic network size when building a home")
    ap.add_argument("--workers", default="1,2", help="server worker processes to measure, comma separated")
    args = ap.parse_args()
    from serving.devserver import LocalServer, prepare_home

    t0 = time.perf_counter()
    if args.url:
        results = {"external": run_benchmarks(args.url, args.key)}
    else:
        home = args.home or Path(tempfile.mkdtemp(prefix="dealerml-bench-"))
        config = home / "synthetic" / "serving.yaml"
        if not (config.exists() and (home / "mlflow.db").exists()):  # reuse a prepared --home
            t1 = time.perf_counter()
            config = prepare_home(home, n_accounts=args.accounts, n_skus=100)
            print(f"prepared {home} (data + 3 champions) in {time.perf_counter() - t1:.0f}s", flush=True)
        env = {
            "DEALERML_HOME": str(home),
            "DEALERML_CONFIG": str(config),
            "DEALERML_API_KEYS": f"{args.key}:*",
        }
        results = {}
        for w in [int(x) for x in args.workers.split(",")]:
            with LocalServer(env={**env, "DEALERML_SERVE_WORKERS": str(w)}) as srv:
                _all_workers_ready(srv.url)
                results[f"workers_{w}"] = run_benchmarks(srv.url, args.key)
    results["machine"] = {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)}
    results["total_s"] = round(time.perf_counter() - t0, 1)
    out = ROOT / "bench_out"
    out.mkdir(exist_ok=True)
    (out / "serving.json").write_text(json.dumps(results, indent=2))
    print("| workers | scenario | requests | clients | p50 ms | p99 ms | requests/s | scores (series) /s | statuses |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for label, res in results.items():
        if not isinstance(res, dict) or "churn_single_1_client" not in res:
            continue
        for name in ("churn_single_1_client", "churn_single_16_clients", "churn_batch_1000", "forecast_100_series",
                     "forecast_plan_1_series", "forecast_plan_100_series",
                     *[f"safety_stock_{n}_{kind}" for n in SAFETY_STOCK_RUNS for kind in ("cold", "warm")]):
            if name not in res:
                continue
            r = res[name]
            print(f"| {label} | {name} | {r['requests']} | {r['concurrency']} | {r['p50_ms']} | {r['p99_ms']} | "
                  f"{r['requests_per_s']} | {r['scores_per_s']} | {r['statuses']} |")
    print(json.dumps({"machine": results["machine"], "total_s": results["total_s"],
                      **{k: {"models": v["models"], "served": v["served"]} for k, v in results.items() if isinstance(v, dict) and "models" in v}}))


def _all_workers_ready(url: str) -> None:
    """With several workers each answers /readyz for itself: wait for 20 ready answers in a row."""
    ok, deadline = 0, time.monotonic() + 300
    while ok < 20 and time.monotonic() < deadline:
        ok = ok + 1 if httpx.get(url + "/readyz", timeout=10).status_code == 200 else 0
        time.sleep(0.05)


if __name__ == "__main__":
    main()
