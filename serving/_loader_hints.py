"""What the loader tells the operator when a served model cannot be loaded, and how often the
champion aliases are re-read (``$DEALERML_SERVE_CHAMPION_CHECK_SECONDS``, which the hints quote).

:func:`_failure_hint` tells a fault of the installation (the service's own code or its packages fail
to import, so every version would fail alike) from a fault of the model version, and says what fixes
each; :func:`check_sections` / :func:`config_hint` do the same for a config section the served models
read. Used by :mod:`serving.loader`, which re-exports every name (``dealerml serve`` and the tests
import them from there).
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import traceback
import types
from typing import Any

from training.errors import ConfigError

CHECK_ENV = "DEALERML_SERVE_CHAMPION_CHECK_SECONDS"
DEFAULT_CHECK_SECONDS = 60.0


def champion_check_seconds(environ: dict[str, str] | None = None) -> float:
    """``$DEALERML_SERVE_CHAMPION_CHECK_SECONDS``: how often the champion aliases are re-read
    (default 60; 0 = never). ConfigError naming the variable for anything else."""
    env = os.environ if environ is None else environ
    raw = env.get(CHECK_ENV, "").strip()
    if not raw:
        return DEFAULT_CHECK_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value == 0 or 1 <= value <= 86400):
        raise ConfigError(f"${CHECK_ENV} must be 0 (never) or a number of seconds between 1 and 86400; got {raw[:50]!r}")
    return value


def champion_check_seconds_or_zero() -> float:
    try:
        return champion_check_seconds()
    except ConfigError:
        return 0.0


def _code_failure(err: BaseException | None) -> BaseException | None:
    """The error (``err`` or one it was raised from, e.g. the ImportError behind a ConfigError) that
    shows the service's own code or its installed packages cannot be imported, else None.

    Such a failure is not the model's: every version would fail alike. It is a SyntaxError, or an
    ImportError / AttributeError raised while a module body ran (a ``<module>`` frame below the
    catching one), by an ``import`` statement, or naming a module file (``cannot import name 'x'
    from 'serving.settings' (.../settings.py)``), or an attribute missing from a module that code
    (not a name read from the model, as ``getattr(module, name)`` does) asked for. A model's own
    records fail differently: unpickling a class or module this code lacks raises from inside
    ``pickle`` ("Can't get attribute ...", "No module named ..." with no import statement), and
    an estimator class path recorded in the model from ``importlib.import_module`` / ``getattr``, unless
    the package it names is not installed at all ("No module named 'lightgbm'")."""
    seen: set[int] = set()
    todo = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or len(seen) > 20:
            continue
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
        if isinstance(e, SyntaxError):
            return e
        if not isinstance(e, ImportError | AttributeError):
            continue
        frames = list(traceback.walk_tb(e.__traceback__))
        if any(f.f_code.co_name == "<module>" for f, _ in frames[1:]):
            return e
        last = ""
        if frames:
            f, lineno = frames[-1]
            last = linecache.getline(f.f_code.co_filename, lineno).strip()
        if isinstance(e, ImportError) and (e.path is not None or last.startswith(("import ", "from "))):
            return e
        if isinstance(e, ModuleNotFoundError) and e.name and importlib.util.find_spec(e.name.partition(".")[0]) is None:
            return e  # a package this installation lacks (a module of an installed one: the model's record)
        if (isinstance(e, AttributeError) and isinstance(getattr(e, "obj", None), types.ModuleType)
                and "getattr(" not in last):
            return e
    return None


def _failure_hint(key: str, version: str | None, err: BaseException | None = None) -> str:
    """What the operator can do about a model that failed to load, as the service behaves."""
    every = champion_check_seconds_or_zero()
    code = _code_failure(err)
    if code is not None:
        shown = "" if code is err else f" ({type(code).__name__}: {code})"
        return (f"not a fault of this model version: the service's own code or its installed packages fail to import"
                f"{shown}, so every version of the {key} model would fail alike and promoting or rolling back would not "
                "help; fix the installation (reinstall dealerml with the package versions of constraints.txt, e.g. "
                "`make install`, or rebuild the bento) and restart the service")
    if getattr(err, "store_moved", False):
        return ("not a fault of this model version: the MLflow store's files are recorded under another path (the "
                "store was copied or mounted elsewhere), so every version of the "
                f"{key} model would fail alike and promoting or rolling back would not help; mount the store at the "
                "path the error names, or serve the artifacts from a tracking server (mlflow server "
                "--serve-artifacts, MLFLOW_TRACKING_URI), and restart the service")
    if version is None:
        if every:
            return f"the service loads the champion within {every:g} s of its promotion (${CHECK_ENV})"
        return f"restart the service once there is a champion (${CHECK_ENV}=0: the alias is not re-read)"
    fix = (f"not retried while version {version} is the champion, as its files would fail alike: promote or roll "
           f"back to another version (dealerml promote / rollback {key})")
    if every:
        return f"{fix}; the service loads the new champion within {every:g} s (${CHECK_ENV}), or restart it"
    return f"{fix} and restart the service (${CHECK_ENV}=0: the alias is not re-read)"


# The config sections each served model's backend reads (the dealer ranking scores churn risk with
# the churn: section). A bad one is the config's fault: the service said "promote or roll back to
# another version", which cannot help.
SECTIONS = {"demand": ("demand",), "churn": ("churn",), "dealers": ("churn",)}


def check_sections(cfg: Any, keys: list[str]) -> None:
    """ConfigError naming each bad key of a config section that the models ``keys`` read."""
    from training.churn_backtest import churn_settings
    from training.demand_config import demand_settings

    readers = {"demand": demand_settings, "churn": churn_settings}
    for section in dict.fromkeys(s for k in keys for s in SECTIONS.get(k, ())):
        if hasattr(cfg, section):  # an ExperimentConfig has every section (empty: the defaults)
            readers[section](cfg)


def check_cutoff(cfg: Any, book: Any, key: str) -> None:
    """ConfigError when ``serving.churn_cutoff`` / ``serving.dealers_cutoff`` (the model ``key``'s) is
    after the day that follows the book's last order: the config's fault, named by its key. The slot
    failed as the champion's ('promote or roll back'), saying '--cutoff 2030-01-01', an option of
    score, not of the config."""
    if key not in ("churn", "dealers"):
        return
    from serving.settings import serving_settings
    from training.data import check_cutoff_in_book
    from training.errors import ConfigError, DataError

    chosen = getattr(serving_settings(cfg), f"{key}_cutoff")
    if chosen is None:
        return
    where = f"{getattr(cfg, 'config_path', None) or 'config'}: key 'serving.{key}_cutoff'"
    try:
        cut = check_cutoff_in_book(book, chosen, option=f"serving.{key}_cutoff")
    except DataError as err:
        raise ConfigError(f"{where}: {err}") from None
    import pandas as pd

    first = pd.Timestamp(book.order_lines["order_date"].min()).normalize()
    if cut <= first:  # no account has an order before it: 'no account ordered in the 365 days before ...'
        latest = pd.Timestamp(book.order_lines["order_date"].max()).normalize() + pd.Timedelta(days=1)
        raise ConfigError(f"{where}: {cut.date()} is on or before the book's first order ({first.date()}), so no "
                          f"account has an order before it to score; expected a date after {first.date()}, up to "
                          f"{latest.date()} (the day after the last order)")


def config_hint(cfg_file: str) -> str:
    """What the operator can do about a config section the service refused."""
    return (f"not a fault of the model version: fix the config ({cfg_file}; `dealerml data validate --config` "
            "checks it) and restart the service; promoting or rolling back would not help")
