"""The inventory replay sizes each epoch as the product sizes it: a series a fallback member serves
(its chosen member had no forecast from the epoch's cutoff) on that member's error paths
(``ltd_source`` ``class_pool:<member>``, models.inventory.fit_forecaster_policy), the others as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _support_demand import MEMBERS, _panel

import training.demand_backtest as bt
from models.demand import DemandForecaster
from models.demand_members import _MemberRuns

T, HOLDOUT = 40, 4


def test_the_replay_sizes_a_fallback_series_on_its_serving_members_errors(monkeypatch):
    df = _panel(T=T)
    base = DemandForecaster(freq="W", h=4, selection="global", **MEMBERS).fit(df)
    chosen = str(base.choice_["s1"])
    real = _MemberRuns._members_at

    def members_at(self, panel, c, h, *a, **k):  # the chosen member has no forecast for s1 at the epochs
        out = real(self, panel, c, h, *a, **k)
        if c >= T - HOLDOUT - 1 and len(out) and chosen in out.columns:
            out.loc[out["unique_id"] == "s1", chosen] = np.nan
        return out

    monkeypatch.setattr(_MemberRuns, "_members_at", members_at)
    sources: list[pd.Series] = []
    import models.inventory as inv

    real_fit = inv.fit_forecaster_policy

    def spy(*a, **k):  # the product's sizer, which the replay imports where it runs: its ltd_source per epoch
        pol = real_fit(*a, **k)
        sources.append(pol.policy_.set_index("unique_id")["ltd_source"])
        return pol

    monkeypatch.setattr(inv, "fit_forecaster_policy", spy)
    rep = bt.run_inventory_replay(df, freq="W", lead_time_days=14, holdout=HOLDOUT, targets=(0.9,), n_sims=200,
                                  forecaster_kwargs=dict(selection="global", **MEMBERS))
    assert rep["targets"]["0.90"]["distribution"]["cycle_service_level_end_net"] is not None
    assert len(sources) == HOLDOUT  # one sizing per epoch (one target)
    for s in sources:
        assert s["s1"].startswith("class_pool:") and s["s1"] != f"class_pool:{chosen}"
        assert (s.drop(index="s1").isin(["class_pool", "own_history"])).all()
