"""Loading registered models: ``name@alias`` resolved (a missing alias named with the aliases there
are), its files downloaded and the estimator loaded with its class's ``load``; :class:`ModelInfo` is
what serving reports about it. Private to the MLflow adapter (:mod:`training.tracking`, which
re-exports these names). Nothing is configured at import time.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import paths
from training._tracking_store import _configure
from training._tracking_uri import shown_tracking_uri
from training.errors import ConfigError


def _import_class(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import estimator class {path!r} recorded in the model: {exc}") from None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


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
    # {package: version} the model was trained with (its requirements.txt; read by load_model only)
    requirements: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self.__dict__)

    def environment(self) -> dict[str, Any]:
        """The recorded package versions against this environment's (:func:`training.model_env.environment_check`)."""
        from training.model_env import environment_check

        return environment_check(self.requirements)


def _version_for(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        if alias not in ("champion", "challenger"):  # train / promote never make it: say which aliases there are
            try:
                held = dict(client.get_registered_model(name).aliases or {})
            except MlflowException:  # no such model: train one, as below
                held = {}
            if held:
                number = (f"; {alias!r} is an alias, not a version number" if alias.strip().isdigit() else "")
                raise ConfigError(
                    f"no model version of {name!r} has alias {alias!r} in {shown_tracking_uri()}; its aliases are "
                    + ", ".join(f"{a} (v{v})" for a, v in sorted(held.items())) + number
                    + " (dealerml train / tune make the challenger, dealerml promote the champion)") from None
        raise ConfigError(
            f"no model version of {name!r} has alias {alias!r} in {shown_tracking_uri()}; "
            f"train one (dealerml train ...) or promote one (dealerml promote ...)"
        ) from None
    killed = _killed_registration(name, alias, mv)
    if killed is not None:
        raise ConfigError(killed)
    return mv


def _killed_registration(name: str, alias: str, mv: Any) -> str | None:
    """Why ``mv`` (``name@alias``) must not be used, when its registration never completed: tagged
    ``dealerml.registration`` = pending and its registering process gone (or, registered on another host,
    pending for longer than ``$DEALERML_PENDING_VERSION_TTL_HOURS``): the test the next run's clean-up
    deletes it by (``_incomplete``). None for a completed version, one registered before these tags
    existed, and one whose registration is still running. A first `train` killed after setting 'champion'
    left a version that `serve` and `score` loaded until the next `train` deleted it."""
    import socket

    from training._tracking_cleanup import (
        _HOST_TAG,
        _PID_TAG,
        _PREVIOUS_ALIAS_TAG,
        PENDING_TTL_ENV,
        _dead_process,
        _incomplete,
        _pending_ttl_ms,
        last_good_holder,
    )

    tags = dict(mv.tags or {})
    host = socket.gethostname()
    if not _incomplete(tags, mv.creation_timestamp, host, time.time() * 1000):
        return None
    if tags.get(_HOST_TAG) == host and tags.get(_PID_TAG):
        how = f"process {_dead_process(tags)} on {host} is gone"
    else:
        how = (f"registered from {tags.get(_HOST_TAG) or 'another machine'}, it has been pending for longer than "
               f"{_pending_ttl_ms() / 3_600_000:g} h (${PENDING_TTL_ENV})")
    held, _, previous = str(tags.get(_PREVIOUS_ALIAS_TAG) or "").partition("=")
    if held == alias and previous:  # past earlier killed registrations: the last good version that held it
        previous = last_good_holder(_configure(), name, alias, previous) or ""
    back = (f" and gives {alias!r} back to version {previous}, which held it before" if held == alias and previous
            else f", and the version it registers takes {alias!r}")
    target = name.removeprefix("dealerml-")
    return (f"{name}@{alias} is version {mv.version}, whose registration never completed: the process registering "
            f"it (dealerml train / tune) was killed after it set {alias!r} and before it marked the version complete "
            f"({how}; tag dealerml.registration=pending), so it is not used. Run `dealerml train {target} "
            f"--config ...` again: its start deletes version {mv.version}{back}; or delete version {mv.version} "
            f"of {name} in the MLflow UI")


def killed_registration(name: str, alias: str = "champion") -> str | None:
    """What :func:`load_model` would refuse ``name@alias`` with because its registration was killed
    (:func:`_killed_registration`); None when the alias is not there or its version is usable. For
    ``dealerml serve`` to refuse at start rather than start a service that stays unready."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _configure().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return _killed_registration(name, alias, mv)


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


def _info_from(mv: Any, meta: dict[str, Any], requirements: dict[str, str] | None = None) -> ModelInfo:
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
        requirements=dict(requirements or {}),
    )


def _refuse_moved_artifacts(client: Any, name: str, version: str) -> None:
    """A version whose files are recorded at a local path that does not exist here: a ConfigError saying
    why. A local store records absolute artifact paths, so a $DEALERML_HOME copied or mounted at another
    path (a container volume, another machine) found the registry but not the files, and MLflow said only
    'Could not find an "MLmodel" configuration file at /tmp/dealerml-...'."""
    from urllib.parse import unquote, urlparse

    try:
        uri = str(client.get_model_version_download_uri(name, version))
    except Exception:  # noqa: BLE001 - the download below reports it
        return
    if not uri.startswith("file:"):
        return
    where = Path(unquote(urlparse(uri).path))
    if where.exists():
        return
    trained_home = next((p.parent for p in where.parents if p.name == "mlruns"), None)
    err = ConfigError(
        f"model {name} version {version}: its files are recorded at {where}, which does not exist here. The "
        "MLflow store keeps absolute artifact paths, so a store copied or mounted at another path "
        f"(DEALERML_HOME={paths.home()}) finds the registry but not the files: mount it at "
        f"{trained_home or 'the path it was trained in'}, or keep the registry on a tracking server that serves "
        "the artifacts (mlflow server --serve-artifacts) and set MLFLOW_TRACKING_URI"
    )
    # the whole store's files are elsewhere (no mlruns/ at the recorded place): every version fails alike, so
    # promoting or rolling back does not help (serving._loader_hints says so); else this version's files are gone
    err.store_moved = trained_home is not None and not (trained_home / "mlruns").exists()  # type: ignore[attr-defined]
    raise err


def load_model(name: str, alias: str = "champion", *, dst_dir: str | Path | None = None) -> tuple[Any, ModelInfo]:
    """Resolve ``models:/<name>@<alias>``, download it and load the estimator with its class's ``load``.

    Returns ``(estimator, ModelInfo)``; ``ModelInfo.requirements`` holds the package versions the model was
    trained with and ``ModelInfo.environment()`` compares them with this environment's. Files are downloaded to ``dst_dir`` (default: a new
    temporary folder that is kept, since an estimator may read its files lazily). Raises
    ConfigError if the alias does not exist or the recorded class cannot be imported.
    """
    import mlflow.artifacts
    from mlflow.models import Model

    client = _configure()
    mv = _version_for(client, name, alias)
    _refuse_moved_artifacts(client, name, str(mv.version))
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
    try:
        estimator = _import_class(class_path).load(est_dir)
    except ConfigError:
        raise
    except ValueError as exc:  # a damaged file (ChurnModel.load names it): not a traceback
        raise ConfigError(f"model {name} version {mv.version}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file of another estimator (KeyError, LightGBMError ...)
        what = f"missing key {exc}" if isinstance(exc, KeyError) else (str(exc).strip().splitlines() or [""])[0][:300]
        raise ConfigError(f"model {name} version {mv.version}: its files cannot be read as a "
                          f"{class_path.rsplit('.', 1)[-1]} ({type(exc).__name__}: {what})") from None
    from training.model_env import read_requirements

    return estimator, _info_from(mv, meta, read_requirements(local / "requirements.txt"))
