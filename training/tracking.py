"""The one adapter between dealerml and MLflow: runs, lineage, models and the registry.

Every training path records itself through :func:`training_run`; serving resolves its
models once at start-up with :func:`load_model` / :func:`model_info`. No other module
imports ``mlflow`` (except this module's private modules ``training/_tracking_*.py``). Nothing is configured at import time: the tracking URI is read from
:func:`training.paths.mlflow_uri` each time a run starts or a model is resolved.

Store
    ``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///$DEALERML_HOME/mlflow.db`` with run
    artifacts under ``$DEALERML_HOME/mlruns/<experiment>``. Experiments are named
    ``dealerml-<kind>`` (``dealerml-churn``, ``dealerml-demand``, ``dealerml-dealers``, ...).

What a run records (see :func:`training_run`)
    * the config file as artifact ``config/<file name>`` and the resolved config as
      ``config/resolved.json``; the capability's section as params ``config.<kind>.<key>``;
    * the data fingerprint (``book.fingerprint``) as tags ``data.<key>`` (source, row counts,
      date range, sha256) and artifact ``data/fingerprint.json`` (+ ``data/quality_report.json``);
    * the code version: tags ``mlflow.source.git.commit`` (shown by the UI), ``dealerml.git_commit``,
      ``dealerml.git_dirty`` (``true`` when tracked files had uncommitted changes);
    * the seed as param ``seed``;
    * the Python and package versions as tags ``dealerml.env.<package>`` (``dealerml.env.lightgbm`` ...).

Metric keys
    MLflow keys may only hold letters, digits, ``_ - . / space`` (and ``:`` off Windows), so
    ``log_metrics({"auc": 0.8}, slice={"segment": "retail"})`` logs ``auc__segment.retail``:
    ``<metric>__<dimension>.<value>`` (several dimensions are joined with ``__`` in the order
    given; characters MLflow refuses become ``_``). Nested dicts flatten with ``.``:
    ``{"lightgbm": {"auc": x}}`` -> ``lightgbm.auc``. Non-finite values are skipped (and listed
    in the tag ``dealerml.skipped_metrics``) because the MLflow UI cannot plot them.

Registration is deferred
    ``run.register(name)`` only notes the wish; the model version is created after the ``with``
    block exits without an exception and the run is marked FINISHED. A block that raises marks
    the run FAILED (KILLED for Ctrl-C or SIGTERM) and registers nothing; a process killed with
    SIGKILL never reaches the end, so it registers nothing either; its run stays RUNNING until
    the next run starts on the same host, which marks it KILLED (tag ``dealerml.stale``; see
    ``mark_stale_runs``). A version is tagged ``dealerml.registration`` = pending until its
    aliases are set; one whose process died in between is deleted by the next run
    (``drop_incomplete_versions``), and one registered from another machine once it has been
    pending for longer than ``$DEALERML_PENDING_VERSION_TTL_HOURS`` (default 24). When ``name`` has no ``champion`` yet, the first registered
    version also gets ``champion``; otherwise a run cannot register as ``champion``
    (``check_alias``): the champion moves through ``dealerml promote``.

Layout
    The rest lives in private modules, whose public names are re-exported here (import them from
    this module): :mod:`training._tracking_uri` (the store's URI and how messages name it),
    :mod:`training._tracking_store` (opening and checking the store), :mod:`training._tracking_locks`
    (store-creation and registry locks), :mod:`training._tracking_registry` (registering, aliases,
    tags, champion history), :mod:`training._tracking_cleanup` (stale runs, half-registered
    versions), :mod:`training._tracking_models` (loading registered models),
    :mod:`training._tracking_runs` (listing runs), :mod:`training._tracking_lineage` (metric keys and
    what a run records about its code, environment, config and data),
    :mod:`training._tracking_guards` (``check_alias``, SIGTERM ending a run like Ctrl-C) and
    :mod:`training._tracking_model_log` (helpers of ``TrainingRun.log_model``). The run
    itself (``training_run``, ``TrainingRun``) and the pyfunc wrapper stay here: unpickling finds
    ``_EstimatorPyfunc`` under this module's name, and tests patch names here that the run looks
    up at call time (``register_model_uri``, ``_PYFUNC_CLASS``).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from training._tracking_cleanup import _process_tags, drop_incomplete_versions, mark_stale_runs  # noqa: F401
from training._tracking_guards import _sigterm_as_interrupt, check_alias  # noqa: F401 - re-exported: public API
from training._tracking_lineage import (  # noqa: F401 - re-exported: public API and run lineage helpers
    _BAD_KEY_CHARS,
    _PIP_PACKAGES,
    _REPO_ROOT,
    _clean_key,
    _environment_tags,
    _flatten,
    _git_state,
    _log_lineage,
    _pip_requirements,
    _user,
    metric_key,
)
from training._tracking_locks import registry_lock  # noqa: F401 - re-exported
from training._tracking_model_log import (
    _active,
    _class_path,
    _default_predict_method,
    _without_cloudpickle_advice,
)
from training._tracking_models import (  # noqa: F401 - re-exported: public API
    ModelInfo,
    _import_class,
    _info_from,
    _jsonable,
    _version_for,
    killed_registration,
    load_model,
    model_info,
)
from training._tracking_registry import (  # noqa: F401 - re-exported: registry helpers
    _REGISTRY_HISTORY_TAG,
    _push_history,
    alias_versions,
    champion_history,
    delete_alias,
    get_alias_version,
    get_model_tags,
    get_version_tags,
    register_model_uri,
    run_params,
    run_tags,
    set_alias,
    set_champion_history,
    set_model_tag,
    set_version_tags,
    tags_if_other_lines,
)
from training._tracking_runs import RunSummary, list_runs  # noqa: F401 - re-exported: public API
from training._tracking_store import _configure, _experiment_id, check_store  # noqa: F401 - re-exported
from training._tracking_uri import (  # noqa: F401 - re-exported: public API and store helpers
    _is_local_store,
    local_store_missing,
    shown_tracking_uri,
    store_source,
    tracking_uri,
    ui_command,
)
from training.errors import hide_url_passwords

__all__ = [
    "tracking_uri",
    "training_run",
    "TrainingRun",
    "load_model",
    "model_info",
    "ModelInfo",
    "RunSummary",
    "list_runs",
    "metric_key",
    "ui_command",
    "check_alias",
    "check_store",
]


# --------------------------------------------------------------------------- pyfunc wrapper


def _make_pyfunc_class() -> type:
    import mlflow.pyfunc

    class _EstimatorPyfunc(mlflow.pyfunc.PythonModel):
        """Loads a dealerml estimator with its own ``load`` and calls its main predict."""

        # No type hints on purpose: the signature comes from the input example. MLflow checks the
        # hints when the class is defined and warns "Add type hints ..." under its own
        # simplefilter("once"), which no caller's filter can silence (every train / tune printed
        # it); this attribute (set by MLflow's own PythonModel subclasses) skips that check, and
        # without hints the check's wrapper only called predict.
        _skip_type_hint_validation = True

        def __init__(self, class_path="", predict_method="predict"):
            self.class_path = class_path
            self.predict_method = predict_method

        def load_context(self, context):
            cls = _import_class(self.class_path)
            self.estimator = cls.load(Path(context.artifacts["estimator"]))

        def predict(self, context, model_input, params=None):
            return getattr(self.estimator, self.predict_method)(model_input)

    _EstimatorPyfunc.__module__ = __name__
    _EstimatorPyfunc.__qualname__ = "_EstimatorPyfunc"
    return _EstimatorPyfunc


_PYFUNC_CLASS: type | None = None


def __getattr__(name: str) -> Any:
    # The pyfunc wrapper subclasses mlflow's PythonModel; build it only when first needed so
    # importing this module does not import mlflow. Unpickling finds it here by name.
    global _PYFUNC_CLASS
    if name == "_EstimatorPyfunc":
        if _PYFUNC_CLASS is None:
            _PYFUNC_CLASS = _make_pyfunc_class()
        return _PYFUNC_CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- runs


class TrainingRun:
    """Handle on one active MLflow run; obtained from :func:`training_run`."""

    def __init__(self, client: Any, run_id: str, kind: str, experiment_id: str) -> None:
        self._client = client
        self.run_id = run_id
        self.kind = kind
        self.experiment_id = experiment_id
        self.model_uri: str | None = None
        self.model_metadata: dict[str, Any] = {}
        self._registrations: list[tuple[str, str]] = []
        self.registered: list[tuple[str, str]] = []  # (name, version) after a clean exit
        self._skipped: list[str] = []

    # -- params, metrics, tags
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params; nested dicts flatten with ``.``; values longer than 6000 chars are cut."""
        from mlflow.entities import Param

        flat = _flatten(params)
        items = [Param(_clean_key(k), hide_url_passwords(str(v))[:6000]) for k, v in flat.items()]
        for i in range(0, len(items), 100):
            self._client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(
        self,
        metrics: Mapping[str, Any],
        slice: Mapping[str, Any] | str | None = None,  # noqa: A002
        *,
        step: int = 0,
    ) -> None:
        """Log metrics (nested dicts flatten with ``.``) under the slice's key scheme."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = []
        for k, v in _flatten(metrics).items():
            key = metric_key(k, slice)
            try:
                fv = float(v)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(fv):
                self._skipped.append(key)
                continue
            items.append(Metric(key, fv, ts, step))
        for i in range(0, len(items), 500):
            self._client.log_batch(self.run_id, metrics=items[i : i + 500])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for k, v in _flatten(tags).items():
            self._client.set_tag(self.run_id, str(k), hide_url_passwords(str(v))[:5000])

    # -- artifacts
    def log_figure(self, fig: Any, path: str) -> None:
        """Log a matplotlib figure as an image artifact at ``path`` (e.g. ``plots/lift.png``), then close
        it: pyplot keeps every open figure, so a process that trains more than once (``experiment run``,
        a notebook, the tests) held each run's plots (matplotlib warned past 20 figures)."""
        try:
            self._client.log_figure(self.run_id, fig, path)
        finally:
            import matplotlib.pyplot as plt

            plt.close(fig)

    def log_dict(self, obj: Any, path: str) -> None:
        """Log a JSON/YAML-serialisable object as artifact ``path`` (``.json`` or ``.yaml``).
        Passwords of URLs in its strings are written ``***`` (a config's ``data:`` url with
        ``${PGPASSWORD}`` expanded, an alerts target), like params and tags: whoever reads the
        MLflow store needs no database credentials."""
        self._client.log_dict(self.run_id, hide_url_passwords(_jsonable(obj)), path)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Log a file. A config file (``.yaml`` / ``.yml`` / ``.json``) with a password written in
        one of its URLs (rather than ``${VAR}``) is logged with it as ``***``; the file is unchanged."""
        p = Path(local_path)
        masked = None
        if p.suffix.lower() in (".yaml", ".yml", ".json") and p.is_file():
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = None
            if text is not None and hide_url_passwords(text) != text:
                masked = hide_url_passwords(text)
        if masked is None:
            self._client.log_artifact(self.run_id, str(local_path), artifact_path)
            return
        with tempfile.TemporaryDirectory(prefix="dealerml-artifact-") as tmp:
            copy = Path(tmp) / p.name
            copy.write_text(masked, encoding="utf-8")
            self._client.log_artifact(self.run_id, str(copy), artifact_path)

    # -- model
    def log_model(
        self,
        estimator: Any,
        *,
        input_example: Any = None,
        metadata: Mapping[str, Any] | None = None,
        name: str = "model",
        predict_method: str | None = None,
    ) -> str:
        """Save ``estimator`` with its ``save(dir)`` and log it as an ``mlflow.pyfunc`` model.

        The pyfunc wrapper's ``load_context`` calls ``<class>.load(dir)`` and its ``predict``
        calls ``predict_method`` (default ``predict_proba`` if the estimator has it, else
        ``predict``). The signature is inferred from ``input_example`` and the estimator's
        output on it; an estimator with ``pyfunc_input_columns()`` names its input columns
        (optional ones included) instead. ``metadata`` (JSON-able; e.g. ``training_window``, ``backtest_metrics``)
        is stored in the MLmodel file and read back by :func:`model_info`. Returns the model URI.
        """
        import mlflow.pyfunc
        from mlflow.models import infer_signature

        if not hasattr(estimator, "save") or not hasattr(type(estimator), "load"):
            raise TypeError(f"{_class_path(estimator)} needs save(path) and classmethod load(path) to be logged")
        method = predict_method or _default_predict_method(estimator)
        meta = dict(_jsonable(dict(metadata or {})))
        meta.update({"estimator_class": _class_path(estimator), "predict_method": method, "kind": self.kind})
        signature = None
        if input_example is not None:
            try:
                out = getattr(estimator, method)(input_example)
            except Exception:  # the output is optional for the signature
                out = None
            columns = getattr(estimator, "pyfunc_input_columns", None)
            with warnings.catch_warnings():
                if callable(columns):  # the inputs inferred here are replaced below: MLflow's hint that an
                    # integer input column (the demand model's h) cannot hold missing values is about them
                    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column",
                                            category=UserWarning)
                signature = infer_signature(input_example, out)
            if callable(columns):  # the estimator names what predict reads, optional columns included
                from mlflow.models import ModelSignature
                from mlflow.types import ColSpec, Schema

                signature = ModelSignature(
                    inputs=Schema([ColSpec(t, n, required=r) for n, t, r in columns()]), outputs=signature.outputs
                )
        tmp = Path(tempfile.mkdtemp(prefix="dealerml-model-"))
        try:
            est_dir = tmp / "estimator"
            estimator.save(est_dir)
            if not est_dir.exists():
                raise RuntimeError(f"{_class_path(estimator)}.save({est_dir}) wrote nothing")
            with _active(self.run_id), warnings.catch_warnings(), _without_cloudpickle_advice():
                # the wrapper deliberately has no type hints: the signature comes from the example
                warnings.filterwarnings("ignore", message=".*type hint", category=UserWarning)
                wrapper = __getattr__("_EstimatorPyfunc")(meta["estimator_class"], method)
                info = mlflow.pyfunc.log_model(
                    name=name,
                    python_model=wrapper,
                    artifacts={"estimator": str(est_dir)},
                    signature=signature,
                    input_example=input_example,
                    pip_requirements=_pip_requirements(),
                    metadata=meta,
                )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.model_uri = info.model_uri
        self.model_metadata = meta
        return info.model_uri

    def register(self, name: str, alias: str = "challenger") -> None:
        """Ask for the logged model to be registered as ``name`` with ``alias`` when the run ends cleanly."""
        if self.model_uri is None:
            raise RuntimeError("register() needs log_model() first in the same run")
        check_alias(alias)
        self._registrations.append((name, alias))

    def _do_registrations(self) -> None:
        for name, alias in self._registrations:
            version = register_model_uri(
                self.model_uri or "",
                name,
                alias=alias,
                tags={"run_id": self.run_id, "kind": self.kind},
            )
            self.registered.append((name, version))


@contextlib.contextmanager
def training_run(
    kind: str,
    *,
    config: Any = None,
    config_path: str | Path | None = None,
    book: Any = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    seed: int | None = None,
    fingerprint: Mapping[str, Any] | None = None,
) -> Iterator[TrainingRun]:
    """Start an MLflow run in experiment ``dealerml-<kind>`` and record its lineage.

    ``config`` is an :class:`training.config.ExperimentConfig` (its file, seed and ``<kind>``
    section are logged); ``book`` an OrderBook (its ``fingerprint`` and quality report are
    logged); pass ``fingerprint`` directly for inputs that are not an order book. ``nested``
    makes it a child of the active run; ``parent_run_id`` a child of that run (used by tuning
    workers in other processes; defaults to ``$DEALERML_PARENT_RUN_ID``, which ``dealerml
    experiment run`` sets for its steps). Registration asked for with ``run.register`` happens only if
    the block exits cleanly; otherwise the run is marked FAILED (KILLED on Ctrl-C).
    """
    import os

    import mlflow

    if parent_run_id is None and not nested:
        # ``dealerml experiment run`` sets this so the runs of its steps nest under its run.
        parent_run_id = os.environ.get("DEALERML_PARENT_RUN_ID") or None
    client = _configure()
    exp_id = _experiment_id(client, kind)
    mark_stale_runs(client)  # runs of killed processes: RUNNING -> KILLED
    drop_incomplete_versions(client)  # versions whose registering process died mid-way
    commit, dirty = _git_state()
    all_tags: dict[str, str] = {
        "dealerml.kind": kind,
        "mlflow.source.git.commit": commit,
        "dealerml.git_commit": commit,
        "dealerml.git_dirty": str(dirty).lower(),
        "mlflow.user": _user(),
        **_process_tags(),
        **_environment_tags(),
    }
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    all_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
    name = run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    if parent_run_id:
        run = client.create_run(exp_id, run_name=name, tags=all_tags)
        active = mlflow.start_run(run_id=run.info.run_id, nested=mlflow.active_run() is not None)
    else:
        active = mlflow.start_run(experiment_id=exp_id, run_name=name, nested=nested, tags=all_tags)
    run = TrainingRun(client, active.info.run_id, kind, exp_id)
    status = "FAILED"
    with _sigterm_as_interrupt() as term:
        try:
            _log_lineage(run, kind, config=config, config_path=config_path, book=book, seed=seed, fingerprint=fingerprint)
            yield run
            if term["signal"] is not None:  # the handler's interrupt was swallowed somewhere: stop anyway
                raise KeyboardInterrupt(f"signal {term['signal']}")
            if run._skipped:
                run.set_tags({"dealerml.skipped_metrics": ",".join(run._skipped)})
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            mlflow.end_run(status=status)
            if mlflow.active_run() is not None and mlflow.active_run().info.run_id == run.run_id:
                mlflow.end_run(status=status)
        # only a FINISHED run registers: a version always comes from a run that completed, and
        # a failed registration (nothing half-registered remains) marks the run FAILED
        try:
            run._do_registrations()
        except BaseException as exc:
            client.set_tag(run.run_id, "dealerml.registration_failed", "true")
            client.set_terminated(run.run_id, status="FAILED" if isinstance(exc, Exception) else "KILLED")
            raise


