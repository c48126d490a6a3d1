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

Before any step runs (and before anything is created) the runner checks the whole experiment:
the merged config, every step's options against the command's own parameters (unknown
options, bad values, missing required ones), the capability sections and that the data files
exist; errors name the experiment file and the key. The merged config the steps read is kept
as ``<out dir>/<experiment file name>`` (and logged under ``config/effective``).

Layout: writing that merged config (``extends``, env vars, relative paths; ``effective_config``) is in
:mod:`training._experiment_effective`; this module keeps the steps, the checks and the runner, and
re-exports every name that moved: import them from here.
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
from training._experiment_effective import (  # noqa: F401 - re-exported: import them from here
    _PATH_KEYS,
    _absolutize,
    _keep_secret_placeholders,
    _merge,
    _read_raw,
    effective_config,
)
from training.errors import ConfigError, hide_url_passwords

__all__ = ["Step", "ExperimentResult", "parse_steps", "run_experiment", "validate_experiment", "check_step",
           "PARENT_ENV"]

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
            elif v is False:  # a switch on by default (register, replay): false is its --no- form, not nothing
                args += _switch_off(self.verb, self.capability, flag)
            elif v is None:
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
    decisions: dict[str, str] = field(default_factory=dict)
    """Each promote step's outcome in words (``promote_churn``: ``refused: champion stays v1``): its
    figures are among ``metrics``, but not what it did."""


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
    except Exception as exc:  # typer builds its commands on its own copy of click
        if hasattr(exc, "exit_code") and hasattr(exc, "show"):  # a usage error
            exc.show()
            return int(exc.exit_code)
        if type(exc).__name__ == "Exit" and hasattr(exc, "exit_code"):
            return int(exc.exit_code or 0)
        raise
    return int(rc or 0)


def run_experiment(
    path: str | Path,
    *,
    invoke: Callable[[Sequence[str]], int] | None = None,
    log: Callable[[str], None] = print,
) -> ExperimentResult:
    """Run every step of the config at ``path`` in order; stop at the first failing step.

    Before the parent run starts (so a bad config creates nothing) the merged config, every
    step's options (against the command's parameters), the capability sections and the data
    files are checked (:func:`validate_experiment`); errors name the experiment file and key.
    A failing step raises ConfigError naming it, and the parent run is marked FAILED.
    """
    from training import tracking
    from training.config import load_config
    from training.errors import DealermlError

    path = Path(path).expanduser().resolve()
    raw = _read_raw(path)
    steps = parse_steps(raw.get("steps"), file=str(path))
    invoke = invoke or _default_invoke
    # Everything is checked before any step runs or anything is created: the merged config,
    # every step's options against its command, the capability sections and the data files.
    with tempfile.TemporaryDirectory(prefix="dealerml-exp-") as tmp:
        tmp_cfg, sources = effective_config(path, raw, Path(tmp))
        label = str(path) if len(sources) == 1 else f"{path} (extends {sources[1]})"
        try:
            cfg = load_config(tmp_cfg)
            validate_experiment(cfg, steps, file=str(path))
        except DealermlError as exc:
            # the temp copy is gone once this returns: name the user's file instead
            msg = str(exc)
            for p in {str(tmp_cfg), str(tmp_cfg.resolve())}:
                msg = msg.replace(p, label)
            raise type(exc)(msg) from None
        effective_text = tmp_cfg.read_text(encoding="utf-8")
    metrics: dict[str, float] = {}
    decisions: dict[str, str] = {}
    with tracking.training_run(
        "experiment", config=cfg, config_path=path, run_name=f"{cfg.name}", tags={"dealerml.steps": ",".join(s.name for s in steps)}
    ) as run:
        out_dir = paths.home() / "experiments" / cfg.name / run.run_id
        out_dir.mkdir(parents=True, exist_ok=True)
        # the config the steps read, kept beside their reports (messages from a step name it)
        cli_cfg = out_dir / path.name
        cli_cfg.write_text(effective_text, encoding="utf-8")
        run.log_params({"steps": ",".join(s.name for s in steps)})
        run.log_artifact(cli_cfg, "config/effective")
        for src in sources[1:]:
            run.log_artifact(src, "config/extends")
        old = os.environ.get(PARENT_ENV)
        os.environ[PARENT_ENV] = run.run_id
        try:
            for step in steps:
                argv = step.argv(cli_cfg, out_dir)
                log(hide_url_passwords(f"step {step.name}: dealerml {' '.join(argv)}"))  # --out URL#table
                rc = invoke(argv)
                if rc != 0:
                    raise ConfigError(f"{path}: step {step.name} failed with exit code {rc}")
                report = Path(step.options.get("json") or step.json_path(out_dir))
                if step.verb in _JSON_VERBS and report.is_file():
                    data = json.loads(report.read_text())
                    run.log_dict(data, f"steps/{step.name}.json")
                    src = data.get("metrics", data)
                    if step.verb == "promote":  # its 'evaluation' repeats challenger_ / champion_metrics
                        src = {k: v for k, v in src.items() if k != "evaluation"}
                        for side in ("challenger_metrics", "champion_metrics"):  # the same baselines twice: once
                            if isinstance(src.get(side), dict) and "baselines" in src[side]:
                                src[side] = {k: v for k, v in src[side].items() if k != "baselines"}
                                src.setdefault("baselines", data[side]["baselines"])
                        decisions[step.name] = _decision_words(data)
                        run.set_tags({f"{step.name}.decision": str(data.get("decision")),
                                      f"{step.name}.champion_after": str(data.get("champion_after"))})
                    flat = _numbers(src, prefix=step.name)
                    run.log_metrics(flat)
                    metrics.update(flat)
        finally:
            if old is None:
                os.environ.pop(PARENT_ENV, None)
            else:
                os.environ[PARENT_ENV] = old
    return ExperimentResult(cfg.name, run.run_id, out_dir, [s.name for s in steps], metrics, decisions)


def _decision_words(data: dict[str, Any]) -> str:
    """A promote step's JSON in a few words: 'promoted: champion v1 -> v2', 'refused: champion stays v1'."""
    decision, before, after = data.get("decision"), data.get("champion_version"), data.get("champion_after")
    if decision in ("promoted", "forced") and before and str(before) != str(after):
        return f"{decision}: champion v{before} -> v{after}"
    if decision == "first":
        return f"first: v{after} is the champion"
    return f"{decision}: champion stays v{after}"


def _command(verb: str, capability: str) -> tuple[Any, Any]:
    """The command object ``dealerml <verb> <capability>`` runs (and a context), or None.

    Duck-typed: typer builds its commands on its own copy of click."""
    import typer.main

    from training.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("dealerml", [], resilient_parsing=True)
    cmd = root.get_command(ctx, verb)  # type: ignore[attr-defined]
    if cmd is not None and hasattr(cmd, "list_commands"):  # a group: tune, train, backtest, score
        cmd = cmd.get_command(ctx, capability)
    return cmd, ctx


def _switch_off(verb: str, capability: str, flag: str) -> list[str]:
    """The argv that sets switch ``flag`` to false: ``--no-register`` for ``register: false`` (leaving the flag
    out kept its default, true, so such a step registered), ``--register`` for ``no_register: false``; nothing
    for a plain flag (off by default)."""
    cmd, _ = _command(verb, capability)
    for p in getattr(cmd, "params", ()):
        if getattr(p, "is_flag", False) and p.secondary_opts:
            if flag in p.opts:
                return [p.secondary_opts[0]]
            if flag in p.secondary_opts:
                return [p.opts[0]]
    return []


def check_step(step: Step, index: int, *, file: str) -> None:
    """Each option of ``step`` must be an option of its command with a valid value, and the
    command's required options must be given; ConfigError naming the step and option."""
    cmd, ctx = _command(step.verb, step.capability)
    where = f"{file}: key 'steps[{index}].{step.name}"
    if cmd is None:
        raise ConfigError(f"{where}': there is no command 'dealerml {step.verb} {step.capability}'")
    params = [p for p in cmd.params if getattr(p, "param_type_name", "") == "option"]
    options: dict[str, Any] = {}
    for p in params:
        for o in (*p.opts, *p.secondary_opts):
            options[o] = p
    shown = ", ".join(sorted(k[2:].replace("-", "_") for k, p in options.items()
                             if k.startswith("--") and not p.hidden and k not in ("--config", "--help")))
    given = {"--config"}
    if step.verb in _JSON_VERBS:
        given.add("--json")
    for k, v in step.options.items():
        flag = f"--{str(k).replace('_', '-')}"
        p = options.get(flag)
        if p is None:
            from training.config import close_keys

            known = [o[2:].replace("-", "_") for o, q in options.items()
                     if o.startswith("--") and not q.hidden and o not in ("--config", "--help")]
            close = close_keys(k, known)
            near = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise ConfigError(f"{where}.{k}': 'dealerml {step.verb} {step.capability}' has no option {flag}; "
                              f"{near}its options: {shown}")
        given.update(p.opts)
        given.update(p.secondary_opts)
        if p.is_flag:
            if not isinstance(v, bool) and v is not None:
                raise ConfigError(f"{where}.{k}': {flag} is a switch; use true or false, got {v!r}")
            continue
        if v is None or v is False:
            continue
        if isinstance(v, list) and not p.multiple:
            raise ConfigError(f"{where}.{k}': {flag} takes one value; got a list {v!r}")
        if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict | list) for x in v)):
            # str() of a mapping passed every text option: `json: {a: 1}` wrote a file named "{'a': 1}"
            raise ConfigError(f"{where}.{k}': {flag} takes a value such as a number, a date or a path; "
                              f"got {v!r}")
        try:
            p.process_value(ctx, [str(x) for x in v] if isinstance(v, list) else str(v))
        except Exception as exc:  # click's BadParameter (typer's own copy of click)
            from training.cli import expected_value

            found = expected_value(exc)  # in the words the command line uses: "expected a whole number"
            if found is not None:
                raise ConfigError(f"{where}.{k}': {flag} {v!r}: expected {found[1]}") from None
            raise ConfigError(f"{where}.{k}': invalid value for {flag}: "
                              f"{getattr(exc, 'message', None) or exc}; got {v!r}") from None
        if flag == "--cutoff":  # a text option to click: checked here, not after the steps before it ran
            from training.data import parse_cutoff

            try:
                parse_cutoff(v.isoformat() if hasattr(v, "isoformat") else v, flag)
            except ConfigError as exc:
                raise ConfigError(f"{where}.{k}': {exc}") from None
    for p in params:
        if p.required and not (set(p.opts) & given):
            raise ConfigError(f"{where}': 'dealerml {step.verb} {step.capability}' needs option {p.opts[0]}; "
                              f"add {p.name}: <value> to the step")


def _check_step_inputs(cfg: Any, steps: Sequence[Step], *, file: str) -> None:
    """What each step's command refuses up front, refused before the first step instead of after the
    steps before it (a promote step's --metric that is not one of its capability's, a --json or --save-to
    it cannot write, a tune step's mistyped --storage, --resume without a study name, or a study name
    already in use, failed only once the backtests, trainings and tunings before it had run)."""
    from training.commands._common import check_out_path
    from training.config import PROMOTION_METRICS

    studies_made: set[tuple[str, str]] = set()  # (storage, study) of the tune steps before this one
    for i, step in enumerate(steps):
        opts = step.options
        where = f"{file}: key 'steps[{i}].{step.name}"
        try:
            if opts.get("json"):
                check_out_path(Path(str(opts["json"])), "--json")
            if step.verb == "score" and opts.get("out") is not None:  # a bad --out failed after the steps before it
                from training.scores import score_destination

                score_destination(str(opts["out"]), None if opts.get("target") is None else str(opts["target"]))
            if step.verb == "train" and step.capability == "churn" and opts.get("save_to"):
                from training.commands.churn import _check_save_to

                _check_save_to(Path(str(opts["save_to"])))
            metric = opts.get("metric")
            if step.verb == "promote" and metric and not opts.get("evaluator") \
                    and str(metric) not in PROMOTION_METRICS[step.capability]:
                raise ConfigError(f"--metric {metric!r} is not a {step.capability} metric; {step.capability} "
                                  f"promotion can compare {', '.join(PROMOTION_METRICS[step.capability])}")
            if step.verb == "tune":
                from training.tuning_config import check_study_name

                check_study_name(None if opts.get("study_name") is None else str(opts["study_name"]))
            if step.verb == "tune" and not opts.get("worker"):
                from training.tuning_config import tuning_settings
                from training.tuning_runtime import journal_path

                settings = tuning_settings(cfg, src=file)
                storage = opts.get("storage") or settings.storage
                journal_path(str(storage) if storage else None)
                if opts.get("resume") and not (opts.get("study_name") or settings.study_name):
                    raise ConfigError("--resume needs the --study-name (or tuning.study_name) of the study to continue")
                name = opts.get("study_name") or settings.study_name
                if name and (str(storage or ""), str(name)) not in studies_made:
                    # a study name already in use (or, with --resume, one the storage does not hold): refused
                    # here, not after the steps before it had trained and registered a version
                    from training.commands.experiments import config_identity
                    from training.tuning_study import check_study

                    trials = opts.get("trials")
                    resume = bool(opts.get("resume"))
                    ident = config_identity(step.capability, cfg, opts.get("target")) if resume else None
                    check_study(str(name), str(storage) if storage else None, resume=resume,
                                n_trials=int(trials) if trials is not None else settings.trials, settings=settings,
                                identity=ident)
                if name:
                    studies_made.add((str(storage or ""), str(name)))
        except ConfigError as exc:
            raise ConfigError(f"{where}': {exc}") from None


def validate_experiment(cfg: Any, steps: Sequence[Step], *, file: str) -> None:
    """Check what the steps will read before the first one runs; ConfigError naming the key.

    Steps' options (:func:`check_step`), the ``churn``/``demand``/``dealers`` sections, the
    ``tuning`` section and its target settings (for each tune step without a custom
    ``target``), and that every data file the config names exists.
    """
    from training.churn_backtest import churn_settings
    from training.dealers_backtest import load_settings
    from training.demand_config import demand_settings

    # the name (it names the output folder $DEALERML_HOME/experiments/<name>/) is checked by load_config
    for i, step in enumerate(steps):
        check_step(step, i, file=file)
    _check_step_inputs(cfg, steps, file=file)
    churn_settings(cfg)
    demand = demand_settings(cfg)
    try:
        load_settings(cfg.dealers, where="dealers")
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    tune_caps = {s.capability for s in steps if s.verb == "tune" and not s.options.get("target")}
    if cfg.tuning or tune_caps:
        from training.tuning_config import target_options, tuning_settings

        tuning_settings(cfg, src=file)
        for cap in sorted(tune_caps):
            module = __import__(f"training.{cap}_tuning", fromlist=["TARGET_KEYS"])
            target_options(cfg, cap, module.TARGET_KEYS)
    for name, src in cfg.data.sources().items():
        if src.path is not None and not src.path.exists():
            raise ConfigError(f"{file}: key 'data.{name}.path': file not found: {src.path}")
    series = getattr(demand, "series", None)
    if series is not None and not Path(series.path).exists():
        raise ConfigError(f"{file}: key 'demand.series.path': file not found: {series.path}")


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
