"""Helpers of :meth:`training.tracking.TrainingRun.log_model`: the estimator's class path and
default predict method recorded in the model, MLflow's CloudPickle advice dropped while the pyfunc
wrapper is logged, and the run made MLflow's fluent active run for ``mlflow.pyfunc.log_model``
(which takes no run id).

Split from :mod:`training.tracking` to keep it under ~500 lines; private to the MLflow adapter (the
run and the pyfunc wrapper stay there: unpickling finds ``_EstimatorPyfunc`` under its name).
Nothing is configured at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _default_predict_method(estimator: Any) -> str:
    return "predict_proba" if hasattr(estimator, "predict_proba") else "predict"


class _DropCloudpickleAdvice:
    """Drops MLflow's "Passing a Python object as `python_model` ... CloudPickle ... Consider using a
    file path" warning: the wrapper is a small class by design (the estimator is saved by its own
    ``save``), the advice is not the user's to follow, and README's security notes say what a
    store holds."""

    @staticmethod
    def filter(record: Any) -> bool:
        return "CloudPickle" not in str(record.getMessage())


@contextlib.contextmanager
def _without_cloudpickle_advice() -> Iterator[None]:
    import logging

    logger = logging.getLogger("mlflow.pyfunc")
    drop = _DropCloudpickleAdvice()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


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
