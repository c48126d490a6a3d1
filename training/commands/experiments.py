"""``dealerml experiment run``, ``dealerml tune {demand,churn}``, ``dealerml promote``, ``dealerml rollback``.

What promote and rollback say beside their decision (baselines, where it was measured, the cautions for a
tuned challenger or one fitted on other data, the restart note) is in
:mod:`training.commands._experiments_evidence`; this module re-exports those names: import them from here.
"""

from __future__ import annotations

import importlib
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from training._config_promotion import DEFAULT_PROMOTION_METRIC as _DEFAULT_METRIC
from training.cli import app, experiment_app, tune_app
from training.commands._common import check_out_path, fail, write_json
from training.commands._experiments_evidence import (  # noqa: F401 - re-exported: import them from here
    _EXAMPLE_MARGIN,
    _baselines_said,
    _compared,
    _fitted_on_other_data,
    _OtherData,
    _restart_note,
    _selected_on,
    _where,
)
from training.errors import ConfigError, DealermlError


class Capability(StrEnum):
    demand = "demand"
    churn = "churn"
    dealers = "dealers"


def _import_spec(spec: str) -> Any:
    """``module:attribute`` -> the attribute."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ConfigError(f"expected module:function; got {spec!r}")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {spec!r}: {exc}") from None


def _capability_attr(capability: str, attr: str, modules: list[str]) -> Any | None:
    for mod in modules:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == mod or mod.startswith(exc.name + ".")):
                continue
            raise
        if hasattr(m, attr):
            return getattr(m, attr)
    return None


def _load_book(cfg: Any) -> Any:
    from training.data import load_order_book

    return load_order_book(cfg)


def require_store(what: str, alternative: str = "") -> None:
    """Refuse a command that reads the registry (promote, rollback, compare, score, alerts) on a local
    MLflow store that does not exist, instead of creating an empty one: it is almost always a wrong
    $DEALERML_HOME (or MLFLOW_TRACKING_URI). ``alternative``: another way to run it without a store
    (e.g. "pass --model DIR")."""
    from training import tracking

    db = tracking.local_store_missing()
    if db is not None:
        raise ConfigError(f"{what}: there is no MLflow store at {db} ({tracking.store_source()}); set DEALERML_HOME to the folder "
                          "you trained in (or MLFLOW_TRACKING_URI to the store), or train first"
                          + (f", or {alternative}" if alternative else "") + "; nothing was created")


def build_target(capability: str, cfg: Any, target_spec: str | None) -> tuple[Any, Any]:
    """(target, book) for ``dealerml tune``: ``--target module:function`` or the capability's own."""
    if target_spec:
        factory = _import_spec(target_spec)
        return factory(cfg, None), None
    factory = _capability_attr(capability, "tuning_target", [f"training.{capability}_tuning"])
    if factory is None:
        raise ConfigError(
            f"no tuning target for {capability}: training/{capability}_tuning.py must define "
            f"tuning_target(cfg, book) (see training/tuning.py: TuningTarget)"
        )
    check = _capability_attr(capability, "check_config", [f"training.{capability}_tuning"])
    if check is not None:  # a contradicting config is refused before the data load
        check(cfg)
    book = _load_book(cfg)
    return factory(cfg, book), book


def config_identity(capability: str, cfg: Any, target_spec: str | None) -> dict[str, str] | None:
    """What the config alone says a study's trials are scored on (the capability's ``config_identity``), so a
    ``--resume`` on other settings is refused before the data load; None for a ``--target`` of one's own."""
    if target_spec:
        return None
    fn = _capability_attr(capability, "config_identity", [f"training.{capability}_tuning"])
    return None if fn is None else fn(cfg)


def _tune(
    capability: str,
    config: Path,
    trials: int | None,
    storage: str | None,
    workers: int | None,
    study_name: str | None,
    seed: int | None,
    json_out: Path | None,
    target_spec: str | None,
    worker: bool,
    parent_run_id: str | None,
    no_register: bool,
    resume: bool = False,
) -> None:
    from training.config import load_config
    from training.tuning import run_study, run_worker
    from training.tuning_config import check_study_name, default_study_name, tuning_settings
    from training.tuning_runtime import describe_storage, worker_command
    from training.tuning_study import check_study

    study_for_hint = study_name
    try:
        check_study_name(study_name)  # before the config and the data are read
        if json_out is not None and not worker:
            check_out_path(json_out, "--json")  # not after the study and the registration
        cfg = load_config(config)
        settings = tuning_settings(cfg)
        n_trials = trials if trials is not None else settings.trials
        n_workers = workers if workers is not None else settings.workers
        storage = storage if storage is not None else settings.storage
        where = "--seed" if seed is not None else "tuning.seed" if settings.seed is not None else "seed"
        seed = seed if seed is not None else (settings.seed if settings.seed is not None else cfg.seed)
        if seed is not None and not 0 <= seed <= _MAX_SEED:  # numpy's range: a ValueError traceback in the first trial
            raise ConfigError(f"{where} {seed}: a seed must be a whole number from 0 to {_MAX_SEED}")
        if worker:
            if not study_name:
                raise ConfigError("--worker needs --study-name")
            target, book = build_target(capability, cfg, target_spec)
            run_worker(target, study_name=study_name, storage=storage, n_trials=n_trials, seed=seed,
                       parent_run_id=parent_run_id, settings=settings, watch_parent=True)
            return
        if resume and not (study_name or settings.study_name):
            raise ConfigError("--resume needs the --study-name (or tuning.study_name) of the study to continue")
        study_name = study_name or settings.study_name or default_study_name(cfg.name, capability)
        study_for_hint = study_name
        # a bad storage, a study name in use or (--resume) an unknown one: refused before the data load
        _check_journal_file(storage)
        check_study(study_name, storage, resume=resume, n_trials=n_trials, settings=settings,
                    identity=config_identity(capability, cfg, target_spec) if resume else None)
        target, book = build_target(capability, cfg, target_spec)
        note = getattr(target, "note", None)
        if note:  # once per command (workers and evaluators build the target too)
            typer.echo(f"note: {note}", err=True)
        extra = ["--target", target_spec] if target_spec else []
        typer.echo(f"tuning {capability}: {n_trials} trials, {n_workers} worker(s), study {study_name} "
                   f"on {describe_storage(storage)}")
        folds = list(getattr(target, "fold_windows", None) or [])
        if folds:
            typer.echo(f"{len(folds)} rolling-origin fold(s), each fitted only on data before its cutoff; trials are "
                       f"scored by the mean {target.metric} over them:")
            for i, w in enumerate(folds):
                typer.echo(f"  fold {i}: {w}")
        result = run_study(
            target, n_trials=n_trials, study_name=study_name, seed=seed, storage=storage, workers=n_workers,
            worker_argv=worker_command(capability, cfg.config_path or config, extra), settings=settings,
            config=cfg, book=book, register=not no_register, resume=resume, log=typer.echo,
        )
    except DealermlError as err:
        fail(err)
        return
    except KeyboardInterrupt:
        # Ctrl-C / SIGTERM: the parent run is KILLED and nothing registered; finished trials stay in the study
        if study_for_hint and not worker:
            # quoted for the shell: a study name 'nightly; v2' or a config path with a space pasted as printed
            # ran another command or resumed another study
            again = ["dealerml", "tune", capability, "--config", str(config), "--study-name", study_for_hint, "--resume",
                     *(["--trials", str(trials)] if trials is not None else []), *(["--storage", storage] if storage else [])]
            typer.secho(f"interrupted: nothing was registered; the finished trials stay in study {study_for_hint!r}. "
                        f"Continue it with: {shlex.join(again)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=130) from None
    from training import tracking

    typer.echo(f"best {target.metric} = {result.best_value:.6g}, untuned (the config's settings, same folds): "
               f"{'n/a' if result.untuned_value is None else f'{result.untuned_value:.6g}'} "
               f"(mean over {target.n_folds} fold(s); "
               f"{'higher' if target.direction == 'maximize' else 'lower'} is better); "
               f"{result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed"
               + (f" ({result.n_already_finished} finished before this run)" if result.n_already_finished else ""))
    if result.best_fold_scores:
        fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)  # noqa: E731
        typer.echo(f"  by fold (earliest first): best {fmt(result.best_fold_scores)}"
                   + (f"; untuned {fmt(result.untuned_fold_scores)}" if result.untuned_fold_scores else ""))
    latest = result.final_metrics.get(target.metric)
    if latest is not None:
        where = result.fold_windows[-1] if result.fold_windows else "the latest fold"
        beside = [f"untuned {result.untuned_fold_scores[-1]:.4g}"] if result.untuned_fold_scores else []
        beside += [f"{m} {v[target.metric]:.4g}" for m, v in result.latest_fold_baselines.items() if target.metric in v]
        typer.echo(f"  latest fold, {where}: tuned {target.metric} {latest:.4g}"
                   + (f" beside {', '.join(beside)}" if beside else "")
                   + "; the best was picked on these folds, so its figures here are optimistic")
    typer.echo(f"best params: {result.best_params}")
    if result.registered_version:
        from training.commands._common import promote_hint

        champion = tracking.get_alias_version(f"dealerml-{target.name}", "champion")
        typer.echo(f"registered dealerml-{target.name} v{result.registered_version} as challenger"
                   + (", and champion: the first version" if champion == str(result.registered_version) else
                      promote_hint(f"dealerml-{target.name}", champion, config)))
    typer.echo(f"MLflow run: {result.parent_run_id}\nsee it with: {tracking.ui_command()}")
    if json_out is not None:
        write_json(result.to_dict(), json_out)


_MAX_SEED = 2**32 - 1


def _check_journal_file(storage: str | None) -> None:
    """A file that exists, given as the journal (``--storage``, ``tuning.storage``), must be an Optuna journal:
    Optuna appended its records to any file (a config or a CSV passed as --storage) and then died in a
    JSONDecodeError traceback, the file changed."""
    import json

    from training.tuning_runtime import journal_path

    path = journal_path(storage)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        first = fh.readline(65536)
    try:
        record = json.loads(first)
    except ValueError:  # also bytes that are not UTF-8
        record = None
    if not (isinstance(record, dict) and "op_code" in record):
        raise ConfigError(f"Optuna storage {storage or path}: {path} is a file that is not an Optuna journal (its first "
                          "line is not a journal record); give the journal of the study, or a new file path for a new "
                          "one (the file was not changed)")


def _make_tune_command(capability: str) -> None:
    @tune_app.command(capability, help=f"Tune the {capability} model on its rolling-origin backtest (Optuna).")
    def _cmd(
        config: Path = typer.Option(..., "--config", help="Experiment config (YAML)."),  # noqa: B008
        trials: int | None = typer.Option(None, "--trials", min=1, help="Total number of trials (default: tuning.trials or 20)."),
        storage: str | None = typer.Option(None, "--storage", help="Optuna storage: journal file path or postgresql:// URL (default: journal file in $DEALERML_HOME/optuna)."),
        workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes sharing the study (default 1)."),
        study_name: str | None = typer.Option(None, "--study-name", help="Study name (default: <config name>-<model>-<time>-<random suffix>)."),
        seed: int | None = typer.Option(None, "--seed", help="Sampler seed (default: tuning.seed or the config's seed)."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the study summary here."),  # noqa: B008
        target: str | None = typer.Option(None, "--target", hidden=True, help="module:function building a custom TuningTarget(cfg, book=None)."),
        worker: bool = typer.Option(False, "--worker", hidden=True, help="Run as one worker of an existing study."),
        parent_run_id: str | None = typer.Option(None, "--parent-run-id", hidden=True),
        no_register: bool = typer.Option(False, "--no-register", help="Do not register the retrained best model."),
        resume: bool = typer.Option(False, "--resume", help="Continue the existing study --study-name (e.g. after an "
                                    "interrupted run) until it has --trials finished trials in total."),
    ) -> None:
        _tune(capability, config, trials, storage, workers, study_name, seed, json_out, target, worker,
              parent_run_id, no_register, resume)


for _cap in ("churn", "demand"):
    _make_tune_command(_cap)


def build_evaluator(capability: str, cfg: Any, evaluator_spec: str | None, book: Any = None) -> Any:
    """The function ``estimator -> {metric: value}`` on the latest backtest, from the capability
    (``book``: the config's order book when already loaded)."""
    if evaluator_spec:
        return _import_spec(evaluator_spec)(cfg, None)
    if book is None:
        book = _load_book(cfg)
    modules = [f"training.{capability}_tuning", f"training.{capability}_backtest",
               f"training.{capability}_promotion", f"training.{capability}"]
    factory = _capability_attr(capability, "promotion_evaluator", modules)
    if factory is not None:
        return factory(cfg, book)
    target_factory = _capability_attr(capability, "tuning_target", [f"training.{capability}_tuning"])
    if target_factory is not None:
        target = target_factory(cfg, book)
        if hasattr(target, "evaluate"):
            return target.evaluate
    raise ConfigError(
        f"no evaluation for promoting {capability}: define promotion_evaluator(cfg, book) -> "
        f"callable(estimator) -> dict in training/{capability}_tuning.py or training/{capability}_backtest.py "
        f"(or tuning_target(...).evaluate)"
    )


@app.command("promote", help="Move the champion alias to the challenger if it wins on the latest backtest.")
def promote_cmd(
    name: Capability = typer.Argument(..., help="Which model: demand, churn or dealers."),  # noqa: B008
    config: Path = typer.Option(..., "--config", help="Experiment config naming the data for the backtest."),  # noqa: B008
    margin: float | None = typer.Option(None, "--margin", min=0.0, help="Required improvement (default: promotion.<name>.margin or 0)."),
    metric: str | None = typer.Option(None, "--metric", help="Metric to compare (default: promotion.<name>.metric or auc/mase/spearman)."),
    force: bool = typer.Option(False, "--force", help="Promote even if not better (recorded as forced)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the decision here."),  # noqa: B008
    evaluator: str | None = typer.Option(None, "--evaluator", hidden=True, help="module:function(cfg, book=None) -> evaluate."),
) -> None:
    from training import registry
    from training.config import PROMOTION_METRICS, load_config

    cap = name.value
    try:
        if json_out is not None:
            check_out_path(json_out, "--json")  # not after the alias has moved
        if metric is not None and evaluator is None and metric not in PROMOTION_METRICS[cap]:
            raise ConfigError(f"--metric {metric!r} is not a {cap} metric; {cap} promotion can compare "
                              f"{', '.join(PROMOTION_METRICS[cap])}")
        cfg = load_config(config)
        section = dict((cfg.promotion or {}).get(cap) or {})
        metric = metric or section.get("metric") or _DEFAULT_METRIC[cap]
        margin_default = margin is None and section.get("margin") is None
        margin = float(margin if margin is not None else section.get("margin", 0.0))
        from training import tracking

        require_store(f"promote {cap}")
        registry.challenger_version(f"dealerml-{cap}", first=f"run dealerml train {cap} (or tune) first")
        try:  # a tuned challenger's folds: scored again on one of them, its figure is optimistic
            info = tracking.model_info(f"dealerml-{cap}", "challenger")
        except DealermlError:
            info = None
        tuned = dict(((info.metadata if info else None) or {}).get("tuning") or {})
        book = _load_book(cfg) if evaluator is None else None
        elsewhere = _fitted_on_other_data(cap, config, info, book)
        if elsewhere and not force:  # its figure would be for settings refitted here, not for the version that moves
            raise ConfigError(f"promote {cap}: {elsewhere.refusal()}")
        evaluate = build_evaluator(cap, cfg, evaluator, book=book)
        note = getattr(getattr(evaluate, "__self__", None), "note", None)
        if note:  # what is scored (demand.hierarchy), said once
            typer.echo(f"note: {note}", err=True)
        evaluations: list[dict[str, Any]] = []

        def recorded(estimator: Any) -> Any:
            out = evaluate(estimator)
            evaluations.append(dict(out) if isinstance(out, dict) else {metric: out})
            return out

        # the evidence run records the book both were scored on (its tables' sha256), as a training run does
        decision = registry.promote(f"dealerml-{cap}", metric=metric, margin=margin, force=force,
                                    evaluate=recorded, direction=section.get("direction"),
                                    data=getattr(book, "fingerprint", None))
    except DealermlError as err:
        fail(err)
        return
    typer.echo(decision.message())
    if decision.decision == "first":  # 'first' read as the model's first version; say when a champion was lost
        before = [v for v in tracking.champion_history(f"dealerml-{cap}") if v != str(decision.challenger_version)]
        if before:
            typer.echo(f"note: there was no champion to score it against: the last one, v{before[-1]}, is champion no "
                       "more (its version or its 'champion' alias was removed from the registry), so "
                       f"v{decision.challenger_version} became champion without a comparison")
    for note in decision.environment_notes:
        typer.echo(f"note: {note}", err=True)
    if margin_default and decision.decision == "promoted":
        typer.echo(f"note: margin 0: neither --margin nor promotion.{cap}.margin in {config} sets one, so any gain in "
                   f"{metric}, however small, promotes; set one (e.g. promotion: {{{cap}: {{margin: "
                   f"{_EXAMPLE_MARGIN[cap]}}}}} as in experiments/online_retail.yaml) or pass --margin")
    if decision.promoted and decision.champion_version and str(decision.champion_after) != str(decision.champion_version):
        typer.echo(_restart_note(f"dealerml-{cap}", decision.champion_version, decision.champion_after))
    base = _baselines_said(evaluations, metric)
    if base:
        typer.echo(base)
    where = _where(evaluations)
    if where:
        typer.echo(f"measured on {where}")
    compared = _compared(evaluations)
    if compared:
        typer.echo(f"compared on {compared}")
    caution = _selected_on(tuned, evaluations, margin)
    if caution:
        typer.secho(f"caution: {caution}", fg=typer.colors.YELLOW)
    if elsewhere and decision.decision != "unchanged":
        typer.secho(f"caution: {elsewhere}", fg=typer.colors.YELLOW)
    if json_out is not None:
        out = decision.to_dict()
        if caution:
            out["caution"] = caution
        if elsewhere and decision.decision != "unchanged":
            out["fitted_on_other_data"] = elsewhere
        # registry.promote scores the challenger first, then the champion (when there is one)
        out["evaluation"] = dict(zip(("challenger", "champion"), evaluations, strict=False))
        write_json(out, json_out)


@app.command("rollback", help="Point the champion alias back at the previous champion.")
def rollback_cmd(name: str = typer.Argument(..., help="Model: demand, churn, dealers (or dealerml-<name>).")) -> None:
    from training import registry

    full = name if name.startswith("dealerml-") else f"dealerml-{name}"
    try:
        # a misspelt name ('rollback churm') was said to be a model with no champion
        if full.removeprefix("dealerml-") not in Capability.__members__:
            raise ConfigError(f"rollback {name}: there is no model {name!r}; use demand, churn or dealers "
                              "(or dealerml-demand, dealerml-churn, dealerml-dealers)")
        require_store(f"rollback {name}")
        old, new = registry.rollback(full)
    except DealermlError as err:
        fail(err)
        return
    from training import tracking

    passed = tracking.get_version_tags(full, old).get("rollback.passed_over_deleted")
    typer.echo(f"{full}: champion moved back from v{old} to v{new}"
               + (f" (passing over {', '.join('v' + v for v in passed.split(','))}, champion before it but deleted "
                  "from the registry since)" if passed else ""))
    typer.echo(_restart_note(full, old, new))


@experiment_app.command("run", help="Run the steps an experiment config lists, under one MLflow run.")
def experiment_run(config: Path = typer.Argument(..., help="experiments/FILE.yaml")) -> None:  # noqa: B008
    from training import tracking
    from training.experiment import run_experiment

    try:
        result = run_experiment(config, log=typer.echo)
    except DealermlError as err:
        fail(err)
        return
    for k, v in sorted(result.metrics.items()):
        typer.echo(f"{k} = {v:.6g}")
    for step, words in result.decisions.items():
        typer.echo(f"{step}: {words}")
    typer.echo(f"experiment {result.name}: MLflow run {result.run_id} (experiment dealerml-experiment)")
    typer.echo(f"outputs: {result.out_dir}")
    typer.echo(f"see it with: {tracking.ui_command()}")
