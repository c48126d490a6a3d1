"""The one adapter between dealerml and MLflow: runs, lineage, models and the registry.

Every training path records itself through :func:`training_run`; serving resolves its
models once at start-up with :func:`load_model` / :func:`model_info`. No other module
imports ``mlflow``. Nothing is configured at import time: the tracking URI is read from
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
    * the seed as param ``seed``.

Metric keys
    MLflow keys may only hold letters, digits, ``_ - . / space`` (and ``:`` off Windows), so
    ``log_metrics({"auc": 0.8}, slice={"segment": "retail"})`` logs ``auc__segment.retail``:
    ``<metric>__<dimension>.<value>`` (several dimensions are joined with ``__`` in the order
    given; characters MLflow refuses become ``_``). Nested dicts flatten with ``.``:
    ``{"lightgbm": {"auc": x}}`` -> ``lightgbm.auc``. Non-finite values are skipped (and listed
    in the tag ``dealerml.skipped_metrics``) because the MLflow UI cannot plot them.

Registration is deferred
    ``run.register(name)`` only notes the wish; the model version is created when the ``with``
    block exits without an exception. A block that raises marks the run FAILED (KILLED for
    Ctrl-C) and registers nothing; a process killed with SIGKILL never reaches the end, so it
    registers nothing either (its run stays RUNNING in the store). When ``name`` has no
    ``champion`` yet, the first registered version also gets ``champion``.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import importlib.metadata
import json
import math
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import paths
from training.errors import ConfigError

__all__ = [
    "tracking_uri",
    "training_run",
    "TrainingRun",
    "load_model",
    "model_info",
    "ModelInfo",
    "metric_key",
    "ui_command",
]

_REGISTRY_HISTORY_TAG = "dealerml.champion_history"
_PIP_PACKAGES = (
    "mlflow",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
    "scikit-learn",
    "lightgbm",
    "statsforecast",
    "utilsforecast",
    "hierarchicalforecast",
    "pydantic",
    "pyyaml",
    "duckdb",
)
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")
_REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- store


def tracking_uri() -> str:
    """The MLflow tracking (and registry) URI in force now; see :func:`training.paths.mlflow_uri`."""
    return paths.mlflow_uri()


def ui_command() -> str:
    """The shell command that opens the MLflow UI on the current store."""
    return f"mlflow ui --backend-store-uri {tracking_uri()}"


def _is_local_store(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] in {"sqlite", "postgresql", "mysql", "mssql", "file"}


def _configure() -> Any:
    """Point MLflow's fluent API at :func:`tracking_uri` and return a client on it."""
    import os

    import mlflow
    from mlflow import MlflowClient

    # Per-file download progress bars flood CLI output and logs; opt back in with the env var.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    before = os.environ.get("MLFLOW_TRACKING_URI")
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # mlflow.set_tracking_uri also exports $MLFLOW_TRACKING_URI for subprocesses; that would pin
    # every later call (and every child process) to this store even after $DEALERML_HOME
    # changes. Put the environment back as the user had it; the fluent API keeps the URI.
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(client: Any, kind: str) -> str:
    name = f"dealerml-{kind}"
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if _is_local_store(tracking_uri()):
        location = (paths.home() / "mlruns" / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it between the two calls
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


# --------------------------------------------------------------------------- helpers


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _clean_key(key: str) -> str:
    return _BAD_KEY_CHARS.sub("_", key)


def metric_key(metric: str, slice: Mapping[str, Any] | str | None = None) -> str:  # noqa: A002
    """The MLflow key for ``metric`` on ``slice``: ``auc__segment.retail`` (see module doc).

    ``slice`` is a mapping ``{dimension: value}`` or a string ``"segment=retail"``.
    """
    key = _clean_key(metric)
    if slice is None:
        return key
    if isinstance(slice, str):
        if "=" not in slice:
            raise ValueError(f"slice must look like 'dimension=value'; got {slice!r}")
        dim, val = slice.split("=", 1)
        slice = {dim: val}
    for dim, val in slice.items():
        key += f"__{_clean_key(str(dim))}.{_clean_key(str(val))}"
    return key


def _git_state() -> tuple[str, bool]:
    """(commit sha, dirty) of the repository holding this code; ("unknown", False) outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown", False
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def _pip_requirements() -> list[str]:
    reqs = []
    for pkg in _PIP_PACKAGES:
        try:
            reqs.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return reqs


def _class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_class(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import estimator class {path!r} recorded in the model: {exc}") from None


def _default_predict_method(estimator: Any) -> str:
    return "predict_proba" if hasattr(estimator, "predict_proba") else "predict"


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


# --------------------------------------------------------------------------- pyfunc wrapper


def _make_pyfunc_class() -> type:
    import mlflow.pyfunc

    class _EstimatorPyfunc(mlflow.pyfunc.PythonModel):
        """Loads a dealerml estimator with its own ``load`` and calls its main predict."""

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
        items = [Param(_clean_key(k), str(v)[:6000]) for k, v in flat.items()]
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
            self._client.set_tag(self.run_id, str(k), str(v)[:5000])

    # -- artifacts
    def log_figure(self, fig: Any, path: str) -> None:
        """Log a matplotlib figure as an image artifact at ``path`` (e.g. ``plots/lift.png``)."""
        self._client.log_figure(self.run_id, fig, path)

    def log_dict(self, obj: Any, path: str) -> None:
        """Log a JSON/YAML-serialisable object as artifact ``path`` (``.json`` or ``.yaml``)."""
        self._client.log_dict(self.run_id, _jsonable(obj), path)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(local_path), artifact_path)

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
        output on it. ``metadata`` (JSON-able; e.g. ``training_window``, ``backtest_metrics``)
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
            signature = infer_signature(input_example, out)
        tmp = Path(tempfile.mkdtemp(prefix="dealerml-model-"))
        try:
            est_dir = tmp / "estimator"
            estimator.save(est_dir)
            if not est_dir.exists():
                raise RuntimeError(f"{_class_path(estimator)}.save({est_dir}) wrote nothing")
            with _active(self.run_id), warnings.catch_warnings():
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
        from mlflow.utils.validation import _validate_model_alias_name

        _validate_model_alias_name(alias)
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
def _active(run_id: str) -> Iterator[None]:
    """Make ``run_id`` the fluent active run (for APIs without a run_id argument)."""
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        yield
        return
    with mlflow.start_run(run_id=run_id, nested=active is not None):
        yield


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
    commit, dirty = _git_state()
    all_tags: dict[str, str] = {
        "dealerml.kind": kind,
        "mlflow.source.git.commit": commit,
        "dealerml.git_commit": commit,
        "dealerml.git_dirty": str(dirty).lower(),
        "mlflow.user": _user(),
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
    try:
        _log_lineage(run, kind, config=config, config_path=config_path, book=book, seed=seed, fingerprint=fingerprint)
        yield run
        if run._skipped:
            run.set_tags({"dealerml.skipped_metrics": ",".join(run._skipped)})
        run._do_registrations()
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        mlflow.end_run(status=status)
        if mlflow.active_run() is not None and mlflow.active_run().info.run_id == run.run_id:
            mlflow.end_run(status=status)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _log_lineage(
    run: TrainingRun,
    kind: str,
    *,
    config: Any,
    config_path: str | Path | None,
    book: Any,
    seed: int | None,
    fingerprint: Mapping[str, Any] | None,
) -> None:
    if config_path is None and config is not None:
        config_path = getattr(config, "config_path", None)
    if config_path is not None:
        p = Path(config_path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        run.log_artifact(p, "config")
        run.set_tags({"dealerml.config_file": str(p)})
    params: dict[str, Any] = {}
    if config is not None:
        dump = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
        run.log_dict(dump, "config/resolved.json")
        if seed is None:
            seed = dump.get("seed")
        if dump.get("name"):
            params["config_name"] = dump["name"]
        section = dump.get(kind)
        if isinstance(section, Mapping) and section:
            params.update({f"config.{kind}.{k}": v for k, v in _flatten(section).items()})
    if seed is not None:
        params["seed"] = seed
    if params:
        run.log_params(params)
    fp = fingerprint if fingerprint is not None else getattr(book, "fingerprint", None)
    if fp is not None:
        fp = _jsonable(dict(fp))
        run.log_dict(fp, "data/fingerprint.json")
        run.set_tags({f"data.{k}": v for k, v in _flatten(fp).items()})
    report = getattr(book, "report", None)
    if report is not None and hasattr(report, "to_dict"):
        run.log_dict(report.to_dict(), "data/quality_report.json")


# --------------------------------------------------------------------------- registry


def register_model_uri(model_uri: str, name: str, *, alias: str, tags: Mapping[str, str] | None = None) -> str:
    """Register ``model_uri`` as a new version of ``name`` with ``alias``; returns the version.

    The first version of a name without a champion also becomes ``champion``. If setting the
    aliases fails the new version is deleted again, so nothing half-registered remains.
    """
    import mlflow

    client = _configure()
    mv = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in (tags or {}).items()})
    try:
        client.set_registered_model_alias(name, alias, mv.version)
        if alias != "champion" and get_alias_version(name, "champion") is None:
            set_alias(name, "champion", mv.version)
        elif alias == "champion":
            _push_history(name, mv.version)
    except Exception:
        client.delete_model_version(name, mv.version)
        raise
    return str(mv.version)


def get_alias_version(name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None (also when the model name does not exist)."""
    from mlflow.exceptions import MlflowException

    client = _configure()
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``; moves of ``champion`` are appended to the history tag."""
    client = _configure()
    client.set_registered_model_alias(name, alias, str(version))
    if alias == "champion":
        _push_history(name, str(version))


def _push_history(name: str, version: str) -> None:
    hist = champion_history(name)
    if not hist or hist[-1] != str(version):
        hist.append(str(version))
    set_model_tag(name, _REGISTRY_HISTORY_TAG, json.dumps(hist[-200:]))


def champion_history(name: str) -> list[str]:
    """Versions that have been champion, oldest first (the last is the current one)."""
    raw = get_model_tags(name).get(_REGISTRY_HISTORY_TAG)
    return list(json.loads(raw)) if raw else []


def set_champion_history(name: str, history: list[str]) -> None:
    set_model_tag(name, _REGISTRY_HISTORY_TAG, json.dumps([str(v) for v in history][-200:]))


def get_model_tags(name: str) -> dict[str, str]:
    client = _configure()
    return dict(client.get_registered_model(name).tags)


def set_model_tag(name: str, key: str, value: str) -> None:
    _configure().set_registered_model_tag(name, key, str(value)[:5000])


def get_version_tags(name: str, version: str) -> dict[str, str]:
    return dict(_configure().get_model_version(name, str(version)).tags)


def set_version_tags(name: str, version: str, tags: Mapping[str, Any]) -> None:
    client = _configure()
    for k, v in tags.items():
        client.set_model_version_tag(name, str(version), str(k), str(v)[:5000])


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class ModelInfo:
    """What serving and ``GET /model_info`` report about one registered model version."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    estimator_class: str
    created_at: str
    training_window: Any = None
    backtest_metrics: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self.__dict__)


def _version_for(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise ConfigError(
            f"no model version of {name!r} has alias {alias!r} in {tracking_uri()}; "
            f"train one (dealerml train ...) or promote one (dealerml promote ...)"
        ) from None


def model_info(name: str, alias: str = "champion") -> ModelInfo:
    """Version, aliases, run id, training window and backtest metrics of ``name@alias``."""
    from mlflow.models import Model

    client = _configure()
    mv = _version_for(client, name, alias)
    with tempfile.TemporaryDirectory(prefix="dealerml-mlmodel-") as tmp:
        import mlflow.artifacts

        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{mv.version}/MLmodel", dst_path=tmp)
        meta = dict(Model.load(local).metadata or {})
    return _info_from(mv, meta)


def _info_from(mv: Any, meta: dict[str, Any]) -> ModelInfo:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((mv.creation_timestamp or 0) / 1000))
    return ModelInfo(
        name=mv.name,
        version=str(mv.version),
        aliases=tuple(sorted(mv.aliases or [])),
        run_id=mv.run_id or (mv.tags or {}).get("run_id"),
        estimator_class=str(meta.get("estimator_class", "")),
        created_at=created,
        training_window=meta.get("training_window"),
        backtest_metrics=dict(meta.get("backtest_metrics") or {}),
        metadata=meta,
        tags=dict(mv.tags or {}),
    )


def load_model(name: str, alias: str = "champion", *, dst_dir: str | Path | None = None) -> tuple[Any, ModelInfo]:
    """Resolve ``models:/<name>@<alias>``, download it and load the estimator with its class's ``load``.

    Returns ``(estimator, ModelInfo)``. Files are downloaded to ``dst_dir`` (default: a new
    temporary folder that is kept, since an estimator may read its files lazily). Raises
    ConfigError if the alias does not exist or the recorded class cannot be imported.
    """
    import mlflow.artifacts
    from mlflow.models import Model

    client = _configure()
    mv = _version_for(client, name, alias)
    dst = Path(dst_dir) if dst_dir is not None else Path(tempfile.mkdtemp(prefix=f"dealerml-{name}-v{mv.version}-"))
    dst.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(dst)))
    meta = dict(Model.load(local / "MLmodel").metadata or {})
    class_path = meta.get("estimator_class")
    if not class_path:
        raise ConfigError(f"model {name} version {mv.version} has no estimator_class in its metadata")
    est_dir = local / "artifacts" / "estimator"
    if not est_dir.exists():
        raise ConfigError(f"model {name} version {mv.version}: estimator files missing at {est_dir}")
    estimator = _import_class(class_path).load(est_dir)
    return estimator, _info_from(mv, meta)
