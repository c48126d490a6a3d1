"""Guards around a training run, for :mod:`training.tracking`.

``check_alias`` refuses, before any training, a registry alias a run may not ask for
(``champion``, or a name MLflow would refuse); ``_sigterm_as_interrupt`` makes SIGTERM end a run
like Ctrl-C (marked KILLED, nothing registered), and flags the signal for ``training_run``.

Split from :mod:`training.tracking` to keep each module under ~500 lines; both names are
re-exported there (import them from :mod:`training.tracking`). Used by ``training_run`` and
``TrainingRun.register`` there, by :mod:`training.commands.dealers` (``check_alias`` before any
work) and :mod:`training.demo` (``_sigterm_as_interrupt``). Imports nothing from :mod:`training.tracking`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def check_alias(alias: str) -> str:
    """A registry alias a training run may give its model: a valid MLflow alias name other than
    ``champion`` (the champion moves only through ``dealerml promote``, which records the
    evidence, or to the very first version of a name). Raises ConfigError; call it before
    training so a bad alias fails fast."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_alias_name

    from training.errors import ConfigError

    if str(alias).lower() == "champion":
        raise ConfigError("--alias champion: a trained model becomes champion only through `dealerml promote` "
                          "(which scores it against the champion and records the evidence); register it as "
                          "challenger (the default) and promote it")
    try:
        _validate_model_alias_name(alias)
    except MlflowException as exc:
        raise ConfigError(f"--alias {alias!r} is not a valid registry alias: {exc.message}") from None
    return alias


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[dict[str, int | None]]:
    """Inside a run, SIGTERM (``kill``, a stopped container) ends it like Ctrl-C: the run is
    marked KILLED at once and nothing is registered. Only the main thread can install it.

    Yields ``{"signal": None}``, set to the signal number when one arrived: the interrupt raised
    by the handler can be swallowed where Python ignores exceptions (a ``__del__`` or a garbage
    collector callback prints "Exception ignored" and goes on), so a caller that must not go on
    after a SIGTERM checks the flag too (``training_run`` before it registers)."""
    import signal
    import threading

    got: dict[str, int | None] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def _raise(signum, frame):  # noqa: ARG001
        got["signal"] = signum
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, previous)
