"""Run an experiment config: the ``steps:`` it lists, under one parent MLflow run.

An experiment config (``experiments/*.yaml``) is a normal dealerml config plus a top-level
``steps:`` list, or just ``extends: <config>.yaml`` + ``steps:`` + the keys it overrides, e.g.::

    extends: online_retail.yaml
    name: online_retail-churn-tuning
    steps:
      - backtest_churn                       # dealerml backtest churn --config FILE --json <out>
      - train_churn: {cutoff: 2011-09-10}    # dealerml train churn --config FILE --cutoff 2011-09-10
      - tune_churn: {trials: 20}
      - promote_churn

A step is ``<verb>_<capability>`` with verb in backtest / train / tune / promote / score and
capability in demand / churn / dealers; its options become ``--key value`` flags (``true``
-> a bare ``--key``). Each step runs the same CLI command a user would type, in this process,
with ``DEALERML_PARENT_RUN_ID`` set so the MLflow runs it creates nest under the experiment's
parent run (experiment ``dealerml-experiment``). Backtest, tune and promote steps write their
JSON report under ``$DEALERML_HOME/experiments/<name>/<parent run id>/``; its numbers are logged on the
parent run as ``<step>.<model>.<metric>`` and the report as an artifact, so two runs of one
config can be compared metric by metric.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import paths
from training.errors import ConfigError

__all__ = ["Step", "ExperimentResult", "parse_steps", "run_experiment", "PARENT_ENV"]

PARENT_ENV = "DEALERML_PARENT_RUN_ID"
_JSON_VERBS = ("backtest", "tune", "promote")  # their commands write a JSON report with --json
_STEP_RE = re.compile(r"^(backtest|train|tune|promote|score)_(demand|churn|dealers)$")


@dataclass(frozen=True)
class Step:
    name: str
    verb: str
    capability: str
    options: dict[str, Any] = field(default_factory=dict)

    def argv(self, config_path: Path, out_dir: Path) -> list[str]:
        args = [self.verb, self.capability, "--config", str(config_path)]
        for k, v in self.options.items():
            flag = f"--{str(k).replace('_', '-')}"
            if v is True:
                args.append(flag)
            elif v is False or v is None:
                continue
            elif isinstance(v, list):
                for item in v:
                    args += [flag, str(item)]
            else:
                args += [flag, str(v)]
        if self.verb in _JSON_VERBS and "json" not in self.options:
            args += ["--json", str(self.json_path(out_dir))]
        return args

    def json_path(self, out_dir: Path) -> Path:
        return out_dir / f"{self.name}.json"


@dataclass
class ExperimentResult:
    name: str
    run_id: str
    out_dir: Path
    steps: list[str]
    metrics: dict[str, float]


def parse_steps(raw: Any, *, file: str = "<config>") -> list[Step]:
    """Validate the ``steps:`` list; raise ConfigError naming the file and the bad entry."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{file}: key 'steps' must be a non-empty list such as [backtest_churn, train_churn]")
    steps = []
    for i, item in enumerate(raw):
        options: dict[str, Any] = {}
        if isinstance(item, dict) and len(item) == 1:
            name, opts = next(iter(item.items()))
            if opts is not None and not isinstance(opts, dict):
                raise ConfigError(f"{file}: key 'steps[{i}].{name}' must map option names to values; got {opts!r}")
            options = dict(opts or {})
        elif isinstance(item, str):
            name = item
        else:
            raise ConfigError(f"{file}: key 'steps[{i}]' must be a step name or {{name: {{options}}}}; got {item!r}")
        m = _STEP_RE.match(str(name))
        if not m:
            raise ConfigError(
                f"{file}: key 'steps[{i}]': unknown step {name!r}; expected <verb>_<capability> with verb in "
                "backtest/train/tune/promote/score and capability in demand/churn/dealers"
            )
        if "config" in options:
            raise ConfigError(f"{file}: key 'steps[{i}].{name}.config' is set by the runner; remove it")
        steps.append(Step(str(name), m.group(1), m.group(2), options))
    return steps


def _read_raw(path: Path) -> dict[str, Any]:
    from training.config import read_yaml_mapping

    return read_yaml_mapping(path)


_PATH_KEYS = re.compile(r"^(path|.*_path|.*_file|.*_dir)$")


def _absolutize(raw: Any, base_dir: Path) -> Any:
    """Make relative file paths of a raw config absolute against ``base_dir`` (its file's folder).

    Covers every ``path`` / ``*_path`` / ``*_file`` / ``*_dir`` key at any depth (the data
    sources and capability sections such as ``demand.series.path``) and ``sqlite:///`` URLs.
    """
    if isinstance(raw, list):
        return [_absolutize(v, base_dir) for v in raw]
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, str) and _PATH_KEYS.match(str(k)) and "://" not in v:
            p = Path(os.path.expanduser(v))
            out[k] = v if p.is_absolute() else os.path.normpath(base_dir / p)
        elif isinstance(v, str) and str(k) == "url" and v.startswith("sqlite:///"):
            db = v[len("sqlite:///") :]
            ok = db and db != ":memory:" and not Path(db).is_absolute()
            out[k] = "sqlite:///" + os.path.normpath(base_dir / db) if ok else v
        else:
            out[k] = _absolutize(v, base_dir)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def effective_config(path: Path, raw: dict[str, Any], tmp: Path) -> tuple[Path, list[Path]]:
    """Write the config the step commands read; returns (its path, the source files).

    The experiment file may say ``extends: other.yaml`` (relative to itself) and override any
    keys of it (mappings merge key by key). ``steps`` and ``extends`` are removed, because
    ``training.config.ExperimentConfig`` forbids unknown keys; env vars are expanded and
    relative data paths made absolute first, so the copy (in a temp folder) reads the same files.
    """
    import yaml

    from training.config import expand_env

    sources = [path]
    base_name = raw.get("extends")
    raw = {k: v for k, v in raw.items() if k not in ("steps", "extends")}
    merged = _absolutize(expand_env(raw, file=str(path)), path.parent)
    if base_name is not None:
        base = (path.parent / os.path.expanduser(str(base_name))).resolve()
        braw = _read_raw(base)
        if "steps" in braw or "extends" in braw:
            raise ConfigError(f"{path}: key 'extends': {base} must be a plain config (no steps/extends)")
        merged = _merge(_absolutize(expand_env(braw, file=str(base)), base.parent), merged)
        sources.append(base)
    out = tmp / path.name
    out.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
    return out, sources


def _default_invoke(argv: Sequence[str]) -> int:
    """Run one dealerml command in this process; returns its exit code."""
    import click

    from training.cli import app

    try:
        rc = app(list(argv), prog_name="dealerml", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    return int(rc or 0)


def run_experiment(
    path: str | Path,
    *,
    invoke: Callable[[Sequence[str]], int] | None = None,
    log: Callable[[str], None] = print,
) -> ExperimentResult:
    """Run every step of the config at ``path`` in order; stop at the first failing step.

    A failing step raises ConfigError naming it, and the parent run is marked FAILED.
    """
    from training import tracking
    from training.config import load_config

    path = Path(path).expanduser().resolve()
    raw = _read_raw(path)
    steps = parse_steps(raw.get("steps"), file=str(path))
    invoke = invoke or _default_invoke
    with tempfile.TemporaryDirectory(prefix="dealerml-exp-") as tmp:
        cli_cfg, sources = effective_config(path, raw, Path(tmp))
        cfg = load_config(cli_cfg)  # validates everything before any step runs
        metrics: dict[str, float] = {}
        with tracking.training_run(
            "experiment", config=cfg, config_path=path, run_name=f"{cfg.name}", tags={"dealerml.steps": ",".join(s.name for s in steps)}
        ) as run:
            out_dir = paths.home() / "experiments" / cfg.name / run.run_id
            out_dir.mkdir(parents=True, exist_ok=True)
            run.log_params({"steps": ",".join(s.name for s in steps)})
            run.log_artifact(cli_cfg, "config/effective")
            for src in sources[1:]:
                run.log_artifact(src, "config/extends")
            old = os.environ.get(PARENT_ENV)
            os.environ[PARENT_ENV] = run.run_id
            try:
                for step in steps:
                    argv = step.argv(cli_cfg, out_dir)
                    log(f"step {step.name}: dealerml {' '.join(argv)}")
                    rc = invoke(argv)
                    if rc != 0:
                        raise ConfigError(f"{path}: step {step.name} failed with exit code {rc}")
                    report = Path(step.options.get("json") or step.json_path(out_dir))
                    if step.verb in _JSON_VERBS and report.is_file():
                        data = json.loads(report.read_text())
                        run.log_dict(data, f"steps/{step.name}.json")
                        flat = _numbers(data.get("metrics", data), prefix=step.name)
                        run.log_metrics(flat)
                        metrics.update(flat)
            finally:
                if old is None:
                    os.environ.pop(PARENT_ENV, None)
                else:
                    os.environ[PARENT_ENV] = old
    return ExperimentResult(cfg.name, run.run_id, out_dir, [s.name for s in steps], metrics)


def _numbers(obj: Any, prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_numbers(v, f"{prefix}.{k}"))
    elif isinstance(obj, bool):
        pass
    elif isinstance(obj, int | float):
        out[prefix] = float(obj)
    return out
