"""A new data scientist's train / tune / promote / rollback loop, as s11 met it (after the s9/s10 audits).

* every ``train`` / ``tune`` printed MLflow's "Add type hints to the `predict` method" warning and its
  "CloudPickle ... Consider using a file path" advice (the filter meant to drop the first could not:
  MLflow raises it under its own ``simplefilter("once")``); both are gone, the model still loads and
  predicts through plain MLflow;
* ``promote`` without ``promotion.<name>.margin`` compared with margin 0 and, for a tuned challenger,
  said "the margin is the guard": it now says the margin is 0 and where to set one;
* ``promote`` when the challenger already is the champion printed "challenger v2 auc=n/a, champion v2
  auc=n/a": it now says there is nothing to compare and what to do;
* ``backtest dealers`` printed "net growth share n/a" with no reason: it now says the book shrank.
"""

# ruff: noqa: F811  (fixtures imported from test_tuning are redefined as arguments)
from __future__ import annotations

import logging
import warnings

import numpy as np
from test_tuning import (  # noqa: F401 - fixtures
    FEATURES,
    TinyModel,
    home,
    make_data,
    mlflow_template_db,
)


def test_logging_a_model_prints_no_mlflow_type_hint_or_cloudpickle_advice(home, monkeypatch):
    import mlflow.pyfunc

    from training import tracking

    monkeypatch.setattr(tracking, "_PYFUNC_CLASS", None)  # the warning came when the class was made
    seen: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    grab = Grab()
    logging.getLogger("mlflow.pyfunc").addHandler(grab)
    df = make_data(120)
    model = TinyModel(n_estimators=5).fit(df, df["y"])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with tracking.training_run("churn") as run:
                run.log_model(model, input_example=df[FEATURES].head(5))
                run.register("dealerml-churn")
    finally:
        logging.getLogger("mlflow.pyfunc").removeHandler(grab)
    hints = [str(w.message) for w in caught if "type hint" in str(w.message)]
    assert hints == []
    assert not [m for m in seen if "CloudPickle" in m]
    assert logging.getLogger("mlflow.pyfunc").filters == []  # the filter is only there while logging
    pyf = mlflow.pyfunc.load_model("models:/dealerml-churn@champion")
    np.testing.assert_allclose(pyf.predict(df[FEATURES].head(7)), model.predict_proba(df.head(7)))
