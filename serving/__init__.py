"""The dealerml BentoML service (``serving.service:DealerML``) and its request/response schemas.

Modules: ``service`` (the endpoints), ``schemas`` (pydantic bodies with bounds), ``auth``
(API keys with scopes), ``loader`` / ``state`` (champions loaded once at start-up, readiness),
``demand`` / ``inventory`` / ``churn`` / ``dealers`` (the backends), ``devserver`` (a real
``bentoml serve`` subprocess for tests and benchmarks). Nothing is imported here, so
``import serving`` stays light. Importing it turns off MLflow's and BentoML's usage telemetry
unless the user set the variables (``training/__init__.py`` says why).
"""

import os as _os

_os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
_os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

__all__: list[str] = []
