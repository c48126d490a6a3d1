"""The service's safety-stock backend on a fresh fit of a book, as ``dealerml serve`` builds it from a champion
(tests/test_stock_long_silence.py, tests/test_stock_long_stopped.py: the CLI and the service on the same fit)."""

from __future__ import annotations

import pandas as pd


def service_backend(cfg, history: pd.DataFrame, h: int = 8):
    """(DemandBackend, estimator) of ``DemandForecaster`` fitted on ``history`` with ``cfg``'s demand settings."""
    from models.demand import DemandForecaster
    from serving.demand import DemandBackend
    from training.config import load_config
    from training.demand_config import demand_settings

    c = load_config(cfg)
    s = demand_settings(c)
    est = DemandForecaster(freq="W", h=h, **s.forecaster_kwargs(c.seed)).fit(history)
    fc = est.predict(h)
    uids = sorted(set(fc["unique_id"]))
    backend = DemandBackend(model_name="m", model_version="m/1", freq="W", uids=uids, keys=None,
                            dates=pd.DatetimeIndex(sorted(fc["ds"].unique())),
                            mean=fc.sort_values(["unique_id", "ds"])["Final"].to_numpy().reshape(len(uids), h),
                            bounds={}, last_observed=est.last_ds_, estimator=est,
                            policy_settings={"review_period": 1.0, "lead_time_days": 14.0, "lead_time_std_days": 3.0,
                                             "random_state": int(c.seed or 0), "n_sims": s.n_sims})
    return backend, est
