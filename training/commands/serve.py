"""``dealerml serve``: run the BentoML service on the current champions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from training.cli import app
from training.commands._common import fail
from training.errors import ConfigError, DealermlError

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

    Refuses to start (exit 2, naming the cause) without API keys, with an invalid serving: section
    (or demand: / churn: section of a served model),
    $DEALERML_SERVE_* or $DEALERML_SS_CACHE_ENTRIES setting, on a port in use, without an MLflow store
    or when a served model has no champion.
    """
    from serving.auth import KeyConfigError, load_keyring
    from serving.loader import champion_check_seconds, served_models
    from serving.schemas import limit_errors
    from serving.settings import (
        alerts_limits,
        key_failure_limits,
        request_limits,
        serve_workers,
        sizing_cache_entries,
    )

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
        if not len(load_keyring(env)):  # the service would answer 401 everywhere and stay unready
            raise ConfigError("no API keys configured: set DEALERML_API_KEYS (e.g. 'planner-key-123:forecast;"
                              "ops-key-0000:*') or DEALERML_API_KEYS_FILE (a file of such entries, one per line)")
        cfg_file = env.get("DEALERML_CONFIG", "experiments/default.yaml")
        served = served_models(env, _serving_section(cfg_file))
        _check_sections(cfg_file, served)
        # the service's own readers of its $DEALERML_SERVE_* settings: a bad value started a service that
        # stayed unready (saying why in its log and to /readyz) instead of stopping here
        serve_workers(env)
        key_failure_limits(env)
        champion_check_seconds(env)
        alerts_limits(env)  # $DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS / _READERS
        request_limits(None, env)  # $DEALERML_SERVE_MAX_BODY_BYTES / _BODY_TIMEOUT_SECONDS (serving: above)
        problems = limit_errors(env)  # $DEALERML_SERVE_MAX_IDS / _MAX_PLAN_ROWS
        if problems:
            raise ConfigError("; ".join(problems))
        if "demand" in served:  # $DEALERML_SS_CACHE_ENTRIES: read only by the demand backend (its slot failed)
            sizing_cache_entries(env)
        _check_port(host, port)
        _check_champions(served)
    except (KeyConfigError, ValueError, DealermlError) as err:
        fail(err if isinstance(err, DealermlError) else ConfigError(str(err)))
        return
    # Online calls are tiny: one thread per LightGBM / BLAS call keeps latency flat.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    from training import paths

    # one BentoML home per port: BentoML empties its metrics directory (BENTOML_HOME/prometheus_multiproc_dir)
    # when a service starts, so a second deployment of this home (--models, another port) emptied the first
    # one's: its /metrics lost its counts, stopped counting its own requests and showed the second's
    env.setdefault("BENTOML_HOME", str(paths.home() / "bentoml" / f"serve-{port}"))
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


def _serving_section(cfg_file: str) -> list[str] | None:
    """``serving.models`` of the config; a config whose ``serving:`` section is invalid (an unknown
    model, a bad cutoff or limit) is refused here instead of starting a service that stays unready."""
    from serving.settings import serving_settings
    from training.config import load_config

    return serving_settings(load_config(cfg_file)).models


def _check_sections(cfg_file: str, served: list[str]) -> None:
    """The config sections the served models read (demand:, churn:): a bad key started a service whose
    model stayed unready, its log saying to promote or roll back another version."""
    from serving.loader import check_sections
    from training.config import load_config

    check_sections(load_config(cfg_file), served)


def _check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on (bentoml printed 'Could not bind' and a traceback).
    SO_REUSEADDR as the server sets it: a socket of a stopped server in TIME_WAIT does not count."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise ConfigError(f"--host {host}: cannot resolve it ({err.strerror or err})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {err.strerror or err} (another dealerml serve or another program "
                f"has it: `ss -ltnp 'sport = :{port}'` shows which); stop it or pick another --port"
            ) from None


def _check_champions(served: list[str]) -> None:
    """Refuse to start when the registry is missing or cannot be read, or a served model has no
    champion: the service would start, stay unready for good and say why only in its log."""
    from serving.loader import MLFLOW_HTTP_DEFAULTS, MODEL_NAMES, registry_champions
    from training import tracking

    for var, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(var, value)
    champions = registry_champions([MODEL_NAMES[k] for k in served])
    missing = [k for k in served if champions.get(MODEL_NAMES[k]) is None]
    if missing:
        others = [k for k in served if k not in missing]
        raise ConfigError(
            f"no champion of {', '.join(MODEL_NAMES[k] for k in missing)} in {tracking.shown_tracking_uri()}: train one "
            f"(dealerml train {missing[0]} --config ...) or promote one (dealerml promote / rollback)"
            + (f", or serve the others only: --models {','.join(others)}" if others else "")
        )
    # a champion whose registration was killed (a first `train` killed after setting it): the service would
    # start and stay unready for it; said here as `score` says it (tracking.load_model refuses it)
    killed = {k: msg for k in served if (msg := tracking.killed_registration(MODEL_NAMES[k], "champion"))}
    if killed:
        others = [k for k in served if k not in killed]
        raise ConfigError("; ".join(killed.values()) + "; then start the service again"
                          + (f", or serve the others only: --models {','.join(others)}" if others else ""))
