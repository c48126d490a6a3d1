"""``make demo``: the main job end to end on the embedded synthetic dealer network.

generate -> validate -> features -> demand (backtest, train, forecast, safety stock)
-> churn (backtest, train, score, alerts) -> dealers (backtest, train, score)
-> serve the champions, printing a working ``curl`` for every endpoint.

Every step runs the same ``dealerml`` command a user would type, so the demo proves the
CLI, not a private code path. Outputs go to ``$DEALERML_HOME`` (default ``./data``).
``python -m training.demo --no-serve`` stops before starting the service.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from training import paths

DEMO_KEY = "demo-key"
# The console script installed beside this interpreter (`python -m training.cli` would
# import the CLI twice and lose the registered commands).
_DEALERML = str(Path(sys.executable).with_name("dealerml"))
CONFIG = Path(__file__).resolve().parent.parent / "experiments" / "default.yaml"
CUTOFF = "2025-01-01"  # the day after the generator's default end date (2024-12-31)
DEALER_BACKTEST_CUTOFF = "2024-07-01"  # a 6-month outcome window inside the data


def _run(step: str, *args: str) -> None:
    print(f"\n==> {step}\n$ dealerml {' '.join(args)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run([_DEALERML, *args], check=False)
    if proc.returncode != 0:
        print(f"demo failed at step '{step}' (exit {proc.returncode})", file=sys.stderr)
        raise SystemExit(proc.returncode)
    print(f"    ({time.perf_counter() - t0:.1f} s)", flush=True)


def _serve_and_show(cfg: str, port: int) -> None:
    """Start ``dealerml serve``, wait until ready, print a working curl per endpoint, keep serving."""
    import httpx

    from serving.examples import curl_examples
    from training.tracking import _sigterm_as_interrupt

    # The demo's service takes the demo key only, so the curl lines printed below answer: a key
    # set in the caller's environment (DEALERML_API_KEYS wins over DEALERML_API_KEYS_FILE) would
    # make them 401, or silently shadow the caller's key file.
    keys = ("DEALERML_API_KEYS", "DEALERML_API_KEYS_FILE")
    own_keys = any(os.environ.get(k) for k in keys) and os.environ.get(keys[0]) != f"{DEMO_KEY}:*"
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env["DEALERML_API_KEYS"] = f"{DEMO_KEY}:*"
    url = f"http://127.0.0.1:{port}"
    print(f"\n==> serve the champions on {url} (API key '{DEMO_KEY}')", flush=True)
    if own_keys:
        print("    (your DEALERML_API_KEYS / DEALERML_API_KEYS_FILE are not used by the demo's service; "
              "`dealerml serve` uses them)", flush=True)
    proc = subprocess.Popen([_DEALERML, "serve", "--config", cfg, "--port", str(port)], env=env)
    try:
        # `kill` (or a stopped CI job) stops the service too, as Ctrl-C does: without this the
        # demo died and left the service running on the port
        with _sigterm_as_interrupt():
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"the service exited with code {proc.returncode} before it was ready")
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(1)
            else:
                raise SystemExit("the service did not become ready within 600 s; see its log above")
            print("\nThe service is ready. Try:\n")
            print(curl_examples(url, DEMO_KEY))
            print("\n(Ctrl-C stops the service.)\n", flush=True)
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="dealerml demo on the synthetic dealer network")
    parser.add_argument("--no-serve", action="store_true", help="stop before starting the service")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEALERML_PORT", "3000")))
    parser.add_argument("--seed", default="42")
    opts = parser.parse_args(argv)

    home = paths.home()
    os.environ["DEALERML_HOME"] = str(home)
    cfg = str(CONFIG)
    out = home / "demo"
    print(f"dealerml demo: state in {home}")

    _run("generate the synthetic dealer network", "data", "generate", "--out", str(paths.synthetic_dir()), "--seed", opts.seed)
    _run("validate the order book", "data", "validate", "--config", cfg, "--json", str(out / "quality_report.json"))
    _run("build as-of features", "features", "build", "--config", cfg, "--cutoff", CUTOFF, "--out", str(out / "features"))

    # Each `train` runs its capability's backtest (baselines beside the model) and logs it; --json
    # also writes it, so the demo does not run every backtest twice (`dealerml backtest ...` gives
    # the same report without training). The replay refits the forecaster once per period replayed
    # (~1 min each here): 4 periods keep the demo short; `simulate inventory --holdout 12` is longer.
    _run("backtest (baselines beside the model), train + register the demand model", "train", "demand", "--config", cfg,
         "--holdout", "4", "--json", str(out / "demand_backtest.json"))
    _run("forecast from the champion", "forecast", "--config", cfg, "--alias", "champion", "--out", str(out / "forecast.parquet"))
    _run("safety stock and warnings from the champion", "safety-stock", "--config", cfg, "--alias", "champion", "--service-level", "0.95", "--out", str(out / "safety_stock.csv"))

    _run("backtest (recency rule and BG/NBD beside the model), train + register the churn model", "train", "churn",
         "--config", cfg, "--json", str(out / "churn_backtest.json"))
    _run("score churn for the CRM", "score", "churn", "--config", cfg, "--cutoff", CUTOFF, "--out", str(out / "churn_scores.csv"))
    _run("churn alerts", "alerts", "--config", cfg, "--cutoff", CUTOFF)

    _run("backtest (last-period value and BG/NBD + Gamma-Gamma beside the model), train + register the dealer model",
         "train", "dealers", "--config", cfg, "--cutoff", DEALER_BACKTEST_CUTOFF, "--json", str(out / "dealers_backtest.json"))
    _run("score dealers", "score", "dealers", "--config", cfg, "--cutoff", CUTOFF, "--out", str(out / "dealer_scores.csv"))

    print("\nOutputs:")
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"  {p}")
    print(f"  MLflow runs and registry: mlflow ui --backend-store-uri {paths.mlflow_uri()}")

    if not opts.no_serve:
        _serve_and_show(cfg, opts.port)


if __name__ == "__main__":
    main()
