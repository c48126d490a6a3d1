"""A series that stopped selling, sized from its own history (h185's hand check, synthetic network
SKU00008: no sale in its last 70 weeks, forecast 7 a week rising to 52, reorder point = order-up-to
= 0, normal reorder point 233, and nothing on the row saying why).

The own-history bootstrap takes how often a sale comes from the series' own zero / non-zero periods;
re-centring (``recentre``, blend by default) scales only the size of a sale. So a series whose chain
gives a sale on fewer than 1 - service level of its lead times keeps a reorder point of 0 whatever the
forecast: the sizing follows its own history, as documented (models/inventory.py). What was missing
is the row saying so: ``own_history_zero_notes`` (the CLI's ``forecast_note``) names the last sale,
the share of lead times that saw one and the forecast's units not stocked for."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from models._inventory_distribution import _own_paths, _series_rng
from models.inventory import InventoryPolicy, own_history_zero_notes

H, T = 8, 160
DS = pd.date_range("2021-01-04", periods=T + H, freq="W-MON")
L, R = 2.5, 2.0


def _book():
    rng = np.random.default_rng(3)
    stopped = np.r_[rng.integers(20, 90, 100).astype(float), np.zeros(T - 100)]  # sold every week, then 60 zero weeks
    selling = np.where(np.arange(T) % 2 == 0, rng.integers(2, 6, T), 0).astype(float)  # every other week to the end
    hist = pd.concat([pd.DataFrame({"unique_id": u, "ds": DS[:T], "y": y})
                      for u, y in (("stopped", stopped), ("stopped_fc0", stopped), ("selling", selling))],
                     ignore_index=True)
    fc = pd.DataFrame({"unique_id": np.repeat(["stopped", "stopped_fc0", "selling"], H), "ds": np.tile(DS[T:], 3),
                       "Final": np.repeat([7.0, 0.0, 2.0], H)})
    res = pd.DataFrame([{"unique_id": f"p{p}", "demand_class": "intermittent", "cutoff": 0, "step": k + 1, "r": r}
                        for p in range(25) for k, r in enumerate(rng.normal(0.0, 1.0, H))])
    res = pd.concat([res, pd.DataFrame({"unique_id": ["stopped", "stopped_fc0", "selling"],
                                        "demand_class": "intermittent", "cutoff": 9, "step": 1, "r": 0.0})])
    return fc, res, hist, stopped


def _fit(recentre="blend"):
    fc, res, hist, _ = _book()
    scale = pd.Series(1.0, index=["stopped", "stopped_fc0", "selling"])
    return InventoryPolicy(0.95, R, recentre=recentre).fit(fc, res, scale, L, history=hist).policy_.set_index("unique_id")


def test_a_stopped_series_keeps_a_reorder_point_of_0_and_the_row_says_why():
    pol = _fit()
    p = pol.loc["stopped"]
    assert p["ltd_source"] == "own_history"
    assert p["ltd_mean"] == pytest.approx(7.0 * L) and p["mean_demand"] == pytest.approx(7.0)
    assert p["reorder_point"] == 0 and p["order_up_to"] == 0
    assert p["normal_reorder_point"] > 90  # the normal formula on the forecast and the history's sd (96.8)
    # why: the bootstrap (last 104 weeks: 44 with sales, then 60 zeros, no 0 -> sale transition) starts
    # a sale only through the chain's half pseudo-count, 0.5 / 61 a week: on under 5 % of lead times
    _, _, _, y = _book()
    D = _own_paths(y[-104:], 4000, H, _series_rng(0, "stopped"))
    sold = D[:, :2].sum(axis=1) + 0.5 * D[:, 2] > 0
    assert 0 < sold.mean() < 0.05
    # re-centring scales sizes only: no mode of it moves a reorder point of 0
    for mode in ("forecast", "none"):
        q = _fit(mode).loc["stopped"]
        assert (q["reorder_point"], q["order_up_to"]) == (0, 0)
    assert pol.loc["selling", "reorder_point"] > 0
    _, _, hist, _ = _book()
    notes = dict(zip(pol.index, own_history_zero_notes(pol.reset_index(), hist, "W"), strict=True))
    assert notes == {
        "stopped": "no sale in the last 60 weeks of its history (the last in the week of 2022-11-28): sized from its "
                   "own history, at most 5 % of its simulated lead times see a sale (the forecast scales the size of a "
                   "sale, not how often one comes), so the reorder point is 0 and the order-up-to level 0; the "
                   "forecast's 17.5 units over the lead time (mean_demand 7.0 a week) are not stocked for: check that "
                   "it still sells before stocking for the forecast",
        "stopped_fc0": "",  # a forecast of 0: a reorder point of 0 is what it says
        "selling": "",
    }
    # without the history the last sale is not known: no note
    assert own_history_zero_notes(pol.reset_index(), None, "W") == ["", "", ""]


def test_the_cli_adds_the_note_to_forecast_note():
    from training.commands.demand_stock import _own_history_notes

    pol = _fit().reset_index()
    _, _, hist, _ = _book()
    wide = hist.pivot(index="unique_id", columns="ds", values="y")
    est = types.SimpleNamespace(panel_=types.SimpleNamespace(Y=wide.to_numpy(), uids=list(wide.index),
                                                             dates=pd.Series(wide.columns)))
    pol["forecast_note"] = pol["unique_id"].map({"stopped": "", "stopped_fc0": "a note already there",
                                                  "selling": "served by the next member"})
    out = dict(zip(pol["unique_id"], _own_history_notes(pol, est, "W"), strict=True))
    assert out["stopped"].startswith("no sale in the last 60 weeks of its history (the last in the week of 2022-11-28)")
    # forecast 0: no zero note, but 60 weeks silent after weekly sales (tests/test_stock_long_silence.py)
    assert out["stopped_fc0"] == ("a note already there; no sale in the last 60 weeks (the last in the week of "
                                  "2022-11-28), against a sale every week before")
    assert out["selling"] == "served by the next member"
    pol.loc[pol["unique_id"] == "stopped", "forecast_note"] = "short note"
    joined = dict(zip(pol["unique_id"], _own_history_notes(pol, est, "W"), strict=True))["stopped"]
    assert joined == "short note; " + out["stopped"]


def test_the_service_says_the_same_note_from_the_silences_it_keeps():
    """/safety_stock (serving.inventory) answers the batch file's note in its row's ``note``: the sizing
    tuples it keeps per series, and each series' sale silences computed once when the champion loads
    (``DemandBackend.silences``); no history is read per request."""
    from models._inventory_advice import sale_silences
    from models.inventory import long_silence_notes
    from serving.inventory import _SIZED, _stopped_notes

    pol = _fit().reset_index()
    _, _, hist, _ = _book()
    batch = dict(zip(pol["unique_id"], own_history_zero_notes(pol, hist, "W"), strict=True))
    backend = types.SimpleNamespace(silences=sale_silences(hist))
    sizing = {r["unique_id"]: tuple(r[c] for c in _SIZED) for r in pol.to_dict("records")}
    uids = ["selling", "stopped", "stopped_fc0"]
    quiet = dict(zip(pol["unique_id"], long_silence_notes(pol, hist, "W"), strict=True))
    assert _stopped_notes(backend, uids, sizing, 0.95, "W", {}) == {"stopped": batch["stopped"],
                                                                   "stopped_fc0": quiet["stopped_fc0"]}
    assert _stopped_notes(types.SimpleNamespace(silences=None), uids, sizing, 0.95, "W", {}) == {}  # no history kept
