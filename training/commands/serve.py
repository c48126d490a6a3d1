"""``dealerml serve``: run the BentoML service on the current champions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from training.cli import app
from training.commands._common import fail
from training.errors import ConfigError

SERVICE = "serving.service:DealerML"


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="HTTP port.")] = 3000,
    host: Annotated[str, typer.Option("--host", help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Experiment config naming the order book (default $DEALERML_CONFIG or experiments/default.yaml).",
        ),
    ] = None,
    models: Annotated[
        str | None, typer.Option("--models", help="Comma-separated subset of demand,churn,dealers (default all).")
    ] = None,
) -> None:
    """Serve forecasts, safety stock, churn scores/alerts and dealer scores over HTTP.

    Loads the `champion` of dealerml-demand, dealerml-churn and dealerml-dealers once at
    start-up; /readyz answers 200 when all are loaded. API keys: set DEALERML_API_KEYS
    (e.g. 'planner-key-123:forecast;crm-key-4567:churn;ops-key-89ab:*') or
    DEALERML_API_KEYS_FILE (a file with the same entries, one per line).
    """
    from serving.auth import KeyConfigError, load_keyring
    from serving.loader import served_models

    env = dict(os.environ)
    if config is not None:
        if not config.exists():
            fail(ConfigError(f"--config {config}: file not found"))
        env["DEALERML_CONFIG"] = str(config.resolve())
    elif not Path(env.get("DEALERML_CONFIG", "experiments/default.yaml")).exists():
        fail(
            ConfigError(
                f"config {env.get('DEALERML_CONFIG', 'experiments/default.yaml')} not found; "
                "pass --config FILE or set DEALERML_CONFIG"
            )
        )
    if models:
        env["DEALERML_SERVE_MODELS"] = models
    try:
        served_models(env)
        ring = load_keyring(env)
    except (KeyConfigError, ValueError) as err:
        fail(ConfigError(str(err)))
        return
    if not len(ring):
        typer.secho(
            "warning: no API keys configured (DEALERML_API_KEYS / DEALERML_API_KEYS_FILE); "
            "every data endpoint will answer 401",
            fg=typer.colors.YELLOW,
            err=True,
        )
    # Online calls are tiny: one thread per LightGBM / BLAS call keeps latency flat.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    from training import paths

    env.setdefault("BENTOML_HOME", str(paths.home() / "bentoml"))
    import shutil
    import sys

    # the bentoml of this environment (the one dealerml's packages were installed with), not
    # whichever comes first on PATH
    own = Path(sys.executable).with_name("bentoml")
    bentoml_bin = str(own) if own.exists() else (shutil.which("bentoml") or str(own))
    argv = [bentoml_bin, "serve", SERVICE, "--port", str(port), "--host", host]
    typer.echo(f"dealerml serve: {' '.join(argv)} (config {env.get('DEALERML_CONFIG', 'experiments/default.yaml')})")
    typer.echo(f"  probes: http://{host}:{port}/livez  http://{host}:{port}/readyz")
    os.execvpe(argv[0], argv, env)
