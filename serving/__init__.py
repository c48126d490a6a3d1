"""The dealerml BentoML service (``serving.service:DealerML``) and its request/response schemas.

Modules: ``service`` (the endpoints), ``schemas`` (pydantic bodies with bounds), ``auth``
(API keys with scopes), ``loader`` / ``state`` (champions loaded once at start-up, readiness),
``demand`` / ``inventory`` / ``churn`` / ``dealers`` (the backends), ``devserver`` (a real
``bentoml serve`` subprocess for tests and benchmarks). Nothing is imported here, so
``import serving`` stays light.
"""

__all__: list[str] = []
