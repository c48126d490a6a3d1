"""Start-up loading: resolve each champion once, read the order book, build the backends.

Runs in a background thread of the service so ``/livez`` answers while models load and
``/readyz`` says 503 until everything is ready. Any failure is caught per model and
recorded on its slot (``serving.state``) with a log line naming the model, the version and
the error; the service stays unready and never serves a half-loaded model.

Which models are served: ``serving.models`` in the config, or ``$DEALERML_SERVE_MODELS``
(comma separated, e.g. ``churn,demand``); default all three.

The registry is checked first: a local store that does not exist is refused (opening it would
create an empty one, and every model would then be 'missing'), and a tracking server that cannot
be reached is reported in seconds (MLflow's own HTTP retries, minutes per call, are cut to
:data:`MLFLOW_HTTP_DEFAULTS` unless set). After start-up the champion aliases are re-read every
``$DEALERML_SERVE_CHAMPION_CHECK_SECONDS`` (default 60, ``0`` = never; :func:`check_champions`):
a promote or rollback after start-up is logged and shown in ``/model_info`` as ``stale``
(models are read once; a restart serves the new champion); the dealer ranking is stale too when the
churn champion it took its churn risk from moved (``dealerml score dealers`` ranks with the new one), and the
demand model when the promotions table it plans under changed since start-up (``serving._promo_watch``). A model that failed to load (corrupt
files, no champion) is not tried again while its champion stays the same version, and is loaded
again once the alias points at another one (:func:`retry_moved_champions`).

A champion trained with other package versions than the service runs (its recorded requirements against
``importlib.metadata``, :mod:`training.model_env`) is served all the same, with one warning naming each
package and both versions, and ``environment`` in ``/model_info`` (:func:`warn_environment`).

This module loads and watches (:func:`load_all`, :func:`check_champions`, :func:`watch_champions`,
:func:`retry_moved_champions`); the registry reads (:func:`resolve_champion`,
:func:`registry_champions`, the /model_info description) live in ``serving._loader_registry`` and
the operator's hints for a failed load, the champion-check interval and the config-section check in
``serving._loader_hints``. Every name is importable from here as before, and ``load_all`` /
``check_champions`` look ``resolve_champion``, ``registry_champions``, ``_load_book`` and
``_builder`` up here, where the tests patch them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from serving._loader_hints import (  # noqa: F401 - re-exported
    CHECK_ENV,
    DEFAULT_CHECK_SECONDS,
    SECTIONS,
    _code_failure,
    _failure_hint,
    champion_check_seconds,
    champion_check_seconds_or_zero,
    check_cutoff,
    check_sections,
    config_hint,
)
from serving._loader_registry import (  # noqa: F401 - re-exported; tests patch resolve_champion / registry_champions here
    ALIAS,
    _describe_info,
    _get,
    _plain,
    registry_champions,
    resolve_champion,
)
from serving._promo_watch import check_promotions
from serving.state import FAILED, ModelSlot, ServingState, utc_now
from training.errors import ConfigError

__all__ = ["MODEL_NAMES", "config_path", "new_state", "load_all", "resolve_champion", "check_champions",
           "champion_check_seconds", "watch_champions", "retry_moved_champions", "warn_environment", "CHECK_ENV",
           "MLFLOW_HTTP_DEFAULTS"]

logger = logging.getLogger("dealerml.serving.loader")

MODEL_NAMES = {
    "demand": "dealerml-demand",
    "churn": "dealerml-churn",
    "dealers": "dealerml-dealers",
}
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
"""MLflow's HTTP client retries a call 7 times with a backoff factor of 2 (about 4 minutes per call, two
calls per model), so a tracking server that is down at start-up was named in the log after ~25 minutes;
with these defaults (each can be set in the environment) it is named within seconds."""


def config_path() -> str:
    """The experiment config the service reads: ``$DEALERML_CONFIG`` or the default one."""
    return os.environ.get("DEALERML_CONFIG", "experiments/default.yaml")


def served_models(environ: dict[str, str] | None = None, configured: list[str] | None = None) -> list[str]:
    """``$DEALERML_SERVE_MODELS`` (comma separated), else ``serving.models``, else all three."""
    env = os.environ if environ is None else environ
    spec = env.get("DEALERML_SERVE_MODELS", "").strip()
    if not spec:
        return list(configured or MODEL_NAMES)
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODEL_NAMES]
    if unknown:
        raise ValueError(
            f"DEALERML_SERVE_MODELS: unknown model(s) {unknown}; allowed {list(MODEL_NAMES)}"
        )
    return keys


def _configured_models(cfg_file: str) -> list[str] | None:
    """``serving.models`` of the config, if it can be read (load_all reports a broken config)."""
    try:
        from serving.settings import serving_settings
        from training.config import load_config

        return serving_settings(load_config(cfg_file)).models
    except Exception:  # noqa: BLE001 - reported by load_all with the order book
        return None


def new_state(environ: dict[str, str] | None = None) -> ServingState:
    cfg_file = config_path()
    keys = served_models(environ, _configured_models(cfg_file))
    return ServingState([ModelSlot(k, MODEL_NAMES[k]) for k in keys], cfg_file)


def check_champions(state: ServingState) -> None:
    """Re-read the champion alias of every slot and record it (``/model_info``: ``registry_champion``,
    ``stale``); a loaded model whose champion moved is logged once per move, with the fix (restart).
    A registry that cannot be read is logged (once per distinct error) and the last answer kept."""
    slots = list(state.slots.values())
    names = [s.name for s in slots]
    if "dealers" in state.slots and MODEL_NAMES["churn"] not in names:
        names.append(MODEL_NAMES["churn"])  # the dealer ranking's churn risk: its champion's move makes it stale
    try:
        versions = registry_champions(names)
    except Exception as err:  # noqa: BLE001 - logged; the service keeps serving what it loaded
        if str(err) != state.champion_check_error:
            logger.warning("champion check: %s", err)
        state.champion_check_error = str(err)
        return
    state.champion_check_error = None
    checked = utc_now()
    for slot in slots:
        before = (slot.registry_champion, slot.registry_checked_at, slot.churn_champion, slot.churn_checked)
        slot.registry_champion, slot.registry_checked_at = versions.get(slot.name), checked
        if slot.key == "dealers":
            slot.churn_champion, slot.churn_checked = versions.get(MODEL_NAMES["churn"]), True
        churn_moved = slot.key == "dealers" and (before[2] != slot.churn_champion or not before[3])
        if slot.stale and (before[0] != slot.registry_champion or before[1] is None or churn_moved):
            logger.warning("%s", slot.stale_message())


def watch_champions(state: ServingState, interval: float, after: threading.Thread | None = None,
                    stop: threading.Event | None = None, cfg_file: str | None = None) -> None:
    """Once ``after`` (the loader) is done, :func:`check_champions` every ``interval`` seconds until ``stop``.

    With ``cfg_file``, a start-up that failed because the registry could not be read (a tracking server
    down for a minute, a store not mounted yet) is retried at that pace instead: it stayed unready until
    someone restarted it, while ``/livez`` kept an orchestrator from doing so. Such a retry costs a
    registry read; other failures (a corrupt champion, an unreadable book) wait for a restart."""
    if after is not None:
        after.join()
    stop = stop or threading.Event()
    while not stop.wait(interval):
        if cfg_file is not None and state.registry_failed and all(s.state == FAILED for s in state.slots.values()):
            load_all(state, cfg_file)
            if not state.registry_failed:
                logger.info("start-up retried: the registry can be read now")
            continue
        check_champions(state)
        check_promotions(state)  # the promotions table the demand champion plans under: changed since start-up?
        if cfg_file is not None:
            retry_moved_champions(state, cfg_file)


def retry_moved_champions(state: ServingState, cfg_file: str) -> list[str]:
    """Load again each model that failed to load (a corrupt or unreadable artifact, a champion that did not
    exist) once its champion alias points at another version than the one that failed: the operator's fix
    (promote, rollback, a first train) is taken up by the running service, which is unready anyway, instead
    of after a restart that /livez kept an orchestrator from doing. The same champion is not tried again:
    its files would fail alike. Returns the keys retried."""
    moved = [k for k, s in state.slots.items() if s.state == FAILED and s.model_failed
             and s.registry_champion is not None and s.registry_champion != s.failed_champion]
    for key in moved:
        slot = state.slots[key]
        was = f"version {slot.failed_champion} (which failed to load)" if slot.failed_champion else "no version"
        logger.info("the champion of %s moved from %s to version %s: loading it", slot.name, was, slot.registry_champion)
    dealers = state.slots.get("dealers")
    if "churn" in moved and dealers is not None and dealers.state == FAILED and dealers.model_failed \
            and "dealers" not in moved:  # the dealer ranking loads the churn champion: it may have failed on it
        logger.info("loading %s again with the new churn champion", dealers.name)
        moved.append("dealers")
    if moved:
        load_all(state, cfg_file, only=moved)
    return moved


def warn_environment(name: str, version: str | None, environment: dict[str, Any] | None) -> None:
    """One warning when the model was trained with other package versions than the service runs (it is
    served all the same; ``/model_info`` shows the same in ``environment``)."""
    from training.model_env import mismatch_note

    note = mismatch_note(name, version, environment or {})
    if note is not None:
        logger.warning("%s", note)


# ----------------------------------------------------------------- the book
class _BadConfig(Exception):
    """The config itself (or its ``serving:`` section) was refused, before any order book was read."""


def _load_book(cfg_file: str):
    from serving.settings import serving_settings
    from training.config import load_config
    from training.data import load_order_book

    try:
        cfg = load_config(cfg_file)
        serving_settings(cfg)  # a bad serving: section stops here, named
    except Exception as err:  # noqa: BLE001 - re-raised with where it happened
        raise _BadConfig(f"{type(err).__name__}: {err}") from err
    return cfg, load_order_book(cfg)


def _builder(key: str):
    if key == "demand":
        from serving.demand import DemandBackend

        return DemandBackend.build
    if key == "churn":
        from serving.churn import ChurnBackend

        return ChurnBackend.build
    from serving.dealers import DealersBackend

    return DealersBackend.build


def _churn_for_dealers(loaded: dict[str, tuple[Any, dict[str, Any]]]) -> tuple[Any, str | None]:
    """The churn champion for the dealer ranking as (model, "dealerml-churn/<version>"): the one
    the churn slot already loaded, else read from the registry ((None, None) when there is none)."""
    name = MODEL_NAMES["churn"]
    if name in loaded:
        model, desc = loaded[name]
        return model, f"{name}/{desc.get('version')}"
    from training.dealers_backtest import load_churn_model

    return load_churn_model(("champion",))


def load_all(state: ServingState, cfg_file: str, only: list[str] | None = None) -> None:
    """Load every slot of ``state`` (``only``: those keys, the others left as they are); never raises
    (failures are recorded on the slots).

    Each champion is read from the registry once: the dealer ranking reuses the churn
    champion the churn slot loaded (slots load in the order demand, churn, dealers)."""
    for var, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(var, value)
    t0 = time.perf_counter()
    if only is None:
        state.phase = "the service is reading the champion aliases from the model registry"
    try:  # the registry first: seconds, where the order book can take minutes
        champions = registry_champions([slot.name for slot in state.slots.values()])
    except Exception as err:  # noqa: BLE001 - recorded, service stays unready
        reason = str(err) if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
        if only is not None:  # a retry: the slots keep their failure; the next check tries again
            logger.warning("cannot load the new champion of %s yet: %s", ", ".join(only), reason)
            return
        again = state.registry_failed and all(s.error == reason for s in state.slots.values())
        for key in state.slots:
            state.fail(key, reason)
        state.registry_failed, state.phase = True, None
        every = champion_check_seconds_or_zero()
        if not again:  # a retry that fails the same way says nothing new
            logger.error("service stays UNREADY: %s%s", reason,
                         f" (retried every {every:g} s, ${CHECK_ENV})" if every else "")
        return
    state.registry_failed = False
    checked = utc_now()
    for slot in state.slots.values():
        slot.registry_champion, slot.registry_checked_at = champions.get(slot.name), checked
    if only is None:
        state.phase = f"the service is reading the order book of config {cfg_file}"
    try:
        cfg, book = _load_book(cfg_file)
    except Exception as err:  # noqa: BLE001 - recorded, service stays unready
        reason = (f"cannot use config {cfg_file}: {err}" if isinstance(err, _BadConfig)
                  else f"cannot read the order book of config {cfg_file}: {type(err).__name__}: {err}")
        state.phase = None
        for key in only if only is not None else state.slots:
            state.fail(key, reason)  # waits for a restart, as at start-up (not retried at every check)
            state.slots[key].model_failed, state.slots[key].hint = False, None
        logger.error("service stays UNREADY: %s", reason)
        return
    logger.info(
        "order book of %s loaded in %.1fs (%d order lines)",
        cfg_file,
        time.perf_counter() - t0,
        len(book.order_lines),
    )
    state.phase = None
    loaded: dict[str, tuple[Any, dict[str, Any]]] = {}
    order = sorted(only if only is not None else state.slots,
                   key=lambda k: list(MODEL_NAMES).index(k) if k in MODEL_NAMES else len(MODEL_NAMES))
    for key in order:
        slot = state.slots[key]
        t1 = time.perf_counter()
        state.start(key)
        slot.version = slot.environment = None  # a retry: the version that failed before is not this attempt's
        try:
            check_sections(cfg, [key])
            check_cutoff(cfg, book, key)
        except ConfigError as err:  # waits for a restart, as a bad serving: section does
            reason = f"cannot use the config: {err}"  # the error names the file and the key
            state.fail(key, reason)
            slot.model_failed, slot.hint = False, config_hint(cfg_file)
            logger.error("model %s could not be loaded; service stays UNREADY: %s; %s", slot.name, reason, slot.hint)
            continue
        unregistered = champions.get(slot.name) is None
        try:
            if unregistered:
                from training import tracking

                raise ConfigError(
                    f"no model version of {slot.name!r} has alias {ALIAS!r} in {tracking.shown_tracking_uri()}; train one "
                    f"(dealerml train {key} ...) or promote one (dealerml promote {key} ...), or leave {key} out of "
                    "this deployment (dealerml serve --models, $DEALERML_SERVE_MODELS or serving.models)"
                )
            estimator, desc = resolve_champion(slot.name)
            loaded[slot.name] = (estimator, desc)
            slot.version = desc.get("version")
            # the alias as resolve_champion just read it: a promote since the read above (the book can take
            # minutes) is the version loaded, not a stale one ('restart to serve <the old version>')
            slot.registry_champion, slot.registry_checked_at = slot.version, utc_now()
            slot.alias = desc.get("alias") or ALIAS
            slot.run_id = desc.get("run_id")
            slot.training_window = desc.get("training_window") or {}
            slot.backtest_metrics = desc.get("backtest_metrics") or {}
            slot.environment = desc.get("environment")
            warn_environment(slot.name, slot.version, slot.environment)
            extra = {"churn_champion": _churn_for_dealers(loaded)} if key == "dealers" else {}
            backend = _builder(key)(estimator, slot, book, cfg, **extra)
        except Exception as err:  # noqa: BLE001 - recorded, service stays unready
            version = slot.version or getattr(err, "dealerml_version", None) or champions.get(slot.name) or "?"
            slot.version = version if version != "?" else None
            message = f"{type(err).__name__}: {err}"
            state.fail(key, message, unregistered=unregistered)
            slot.model_failed, slot.failed_champion = True, None if unregistered else slot.version
            slot.hint = _failure_hint(key, slot.failed_champion, err)
            logger.error(
                "model %s version %s (alias %s) could not be loaded; service stays UNREADY: %s; %s",
                slot.name,
                version,
                ALIAS,
                message,
                slot.hint,
            )
            continue
        state.succeed(key, backend)
        if key == "dealers":  # the churn champion its ranking was just built with (check_champions watches it)
            slot.churn_champion, slot.churn_checked = slot.served_churn_version(), True
        logger.info(
            "model %s version %s (alias %s, run %s) ready in %.1fs",
            slot.name,
            slot.version,
            slot.alias,
            slot.run_id,
            time.perf_counter() - t1,
        )
    if state.ready:
        logger.info("all models READY in %.1fs (config %s)", time.perf_counter() - t0, cfg_file)


def set_single_thread(estimator: Any, _depth: int = 0, _seen: set[int] | None = None) -> int:
    """Set ``n_jobs=1`` / ``num_threads=1`` on every LightGBM model inside ``estimator``.

    Online requests are tiny; letting LightGBM spawn threads per call only adds latency.
    Estimators with a ``num_threads`` attribute (``models.churn.ChurnModel``) get it set to 1.
    Returns how many LightGBM objects were changed.
    """
    seen = _seen if _seen is not None else set()
    if estimator is None or id(estimator) in seen or _depth > 4:
        return 0
    seen.add(id(estimator))
    changed = 0
    mod = type(estimator).__module__ or ""
    if mod.startswith("models.") and isinstance(getattr(estimator, "num_threads", None), int):
        estimator.num_threads = 1
        changed += 1
    if mod.startswith("lightgbm"):
        # scikit-learn wrappers take n_jobs per predict. Bare Boosters are left alone
        # (Booster.reset_parameter on a booster loaded from text segfaults in LightGBM 4.x);
        # they follow OMP_NUM_THREADS=1, which the service sets before LightGBM loads.
        if hasattr(estimator, "set_params") and hasattr(estimator, "n_jobs"):
            estimator.set_params(n_jobs=1)
            changed += 1
        return changed
    children: list[Any] = []
    if isinstance(estimator, dict):
        children = list(estimator.values())
    elif isinstance(estimator, (list, tuple)):
        children = list(estimator)
    elif hasattr(estimator, "__dict__") and not isinstance(estimator, (type, Path)):
        children = list(vars(estimator).values())
    for child in children:
        if isinstance(child, (str, bytes, int, float, bool)) or child is None:
            continue
        changed += set_single_thread(child, _depth + 1, seen)
    return changed
