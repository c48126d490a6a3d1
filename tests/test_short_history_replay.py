"""The inventory replay of the short-history fallback's series (new SKUs), reported apart.

The replay's per-cycle figures worked out by hand (the seeded two-series case of
test_inventory_replay), and ``run_inventory_replay`` on a small panel with three new series (one
short at the first review epoch that later has enough periods for the members, one whose first
sale falls inside the holdout, one whose fallback window has no demand when a lump comes) beside
a series just long enough at the first epoch: the new ones are replayed in their own
``short_history`` block, cycle by cycle by which policy sized them, and the established series'
figures are those of a replay without the fallback to the bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.inventory_replay import replay, replay_cycles_summary

KEYS = ("cycle_service_level", "cycle_service_level_end_net", "fill_rate", "avg_on_hand", "n_cycles")


def test_per_cycle_figures_by_hand():
    ids = np.array(["a", "b"], dtype=object)
    actual = np.array([[4.0, 3, 5, 2, 6, 4], [0.0, 7, 0, 0, 3, 0]])
    S = np.array([[10.0] * 6, [5.0] * 6])
    kw = dict(per_series=True, lead_time_std=np.array([1.0, 0.0]), random_state=4, series_ids=ids)
    plain = replay(actual, S, np.array([2, 1]), 1, **kw)
    r = replay(actual, S, np.array([2, 1]), 1, per_cycle=True, **kw)
    assert all(plain[k] == r[k] for k in KEYS)  # per_cycle changes no overall figure
    pc = r["per_cycle"]
    # a (L = 2): cycle c is period c + 2, counted for c <= 3; b (L = 1): period c + 1, c <= 4
    # (worked out period by period in test_inventory_replay.test_seeded_random_arrivals_by_hand)
    assert pc["counted"].tolist() == [[True] * 4 + [False] * 2, [True] * 5 + [False]]
    assert pc["ok"].tolist() == [[True, True, False, False, False, False], [False, True, True, True, True, False]]
    assert pc["ok_end_net"].tolist() == [[True, True, False, False, False, False], [False, False, True, True, True, False]]
    assert pc["served"].tolist() == [[5, 2, 3, 0, 0, 0], [5, 0, 0, 3, 0, 0]]
    assert pc["demand"].tolist() == [[5, 2, 6, 4, 0, 0], [7, 0, 0, 3, 0, 0]]
    assert pc["on_hand_sum"].tolist() == [[2, 0, 0, 0, 0, 0], [0, 0, 5, 2, 2, 0]]
    every = replay_cycles_summary(pc, np.ones((2, 6), dtype=bool))
    assert every["n_cycles"] == r["n_cycles"] == 9 and every["n_series"] == 2
    assert every["cycle_service_level"] == r["cycle_service_level"] == pytest.approx(6 / 9)
    assert every["cycle_service_level_end_net"] == r["cycle_service_level_end_net"] == pytest.approx(5 / 9)
    assert every["fill_rate"] == pytest.approx(18 / 27) and every["avg_on_hand"] == pytest.approx(11 / 9)
    # b's cycles from epoch 1 on: 4 cycles, 3 ending without a backorder, all served
    m = np.zeros((2, 6), dtype=bool)
    m[1, 1:] = True
    part = replay_cycles_summary(pc, m)
    assert (part["n_cycles"], part["n_series"]) == (4, 1)
    assert part["cycle_service_level_end_net"] == pytest.approx(3 / 4) and part["cycle_service_level"] == 1.0
    assert part["fill_rate"] == 1.0 and part["avg_on_hand"] == pytest.approx(9 / 4)
    none = replay_cycles_summary(pc, np.zeros((2, 6), dtype=bool))
    assert none["n_cycles"] == 0 and np.isnan(none["cycle_service_level_end_net"]) and np.isnan(none["fill_rate"])


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    T = 60
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    parts = [pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(5 + 3 * i, T).astype(float)}) for i in range(5)]
    # holdout 6: the first review epoch's cutoff is period 53. h = 4 (2-week lead time, review 1),
    # so the members need 8 periods: "n9" has 9 at the first epoch (established), "n4" 4 (short
    # until epoch 4), "n_in" starts at period 56, inside the holdout
    for name, start in (("n9", T - 6 - 9), ("n4", T - 6 - 4), ("n_in", T - 4)):
        parts.append(pd.DataFrame({"unique_id": name, "ds": ds[start:], "y": rng.poisson(4, T - start).astype(float)}))
    # "n_gap": one sale, then nothing for 5 periods (the fallback's window is empty at epochs 0 and
    # 1: level 0, the count floor alone), then a lump of 9 in the holdout's third period
    y = np.zeros(12)
    y[0], y[8] = 6.0, 9.0
    parts.append(pd.DataFrame({"unique_id": "n_gap", "ds": ds[T - 12:], "y": y}))
    return pd.concat(parts, ignore_index=True)


KW = dict(freq="W", lead_time_days=14, lead_time_std_days=0, holdout=6, targets=(0.9, 0.95), n_sims=300, random_state=3)
FK = {"models": ("AutoETS",), "selection_windows": 1}


def test_new_series_are_replayed_apart_and_leave_the_established_figures_unchanged():
    from training.demand_backtest import run_inventory_replay

    df = _panel()
    a = run_inventory_replay(df, **KW, forecaster_kwargs=FK)
    skip = run_inventory_replay(df, **KW, forecaster_kwargs={**FK, "short_history": "skip"})
    sh = a["short_history"]
    assert skip["short_history"]["n_series"] == 0
    main = {k: v for k, v in a.items() if k not in ("short_history", "seconds")}
    assert main == {k: v for k, v in skip.items() if k not in ("short_history", "seconds")}
    assert a["n_series"] == 6 and a["horizon_periods"] == 4  # s0..s4 and n9
    assert sh["n_series"] == 3 and sh["n_series_short_at_first_epoch"] == 2
    assert sh["n_series_first_sale_in_holdout"] == 1 and sh["n_series_graduating"] == 2
    # n4: fallback at epochs 0-3, members at 4-5; n_gap (6 periods at the first epoch): fallback at
    # 0-1, members at 2-5; n_in: nothing at 0-2 (no sale yet), fallback at 3-5
    assert sh["n_policies_by_source"] == {"short_history": 9, "members": 6, "none": 3}
    for t, floor in (("0.90", 1), ("0.95", 2)):
        v = sh["targets"][t]
        d, n = v["distribution"], v["normal"]
        # cycles c with c + L + R <= 6 (L = 2) count: the fallback's are n4's 0-3, n_gap's 0-1 and
        # n_in's 3; the members' n_gap's 2-3 (n4's 4-5 end after the holdout)
        assert (d["n_cycles"], d["n_series"]) == (7, 3) and (n["n_cycles"], n["n_series"]) == (7, 3)
        assert (v["after_graduating"]["distribution"]["n_cycles"], v["after_graduating"]["distribution"]["n_series"]) == (2, 1)
        for x in (d, n):
            assert 0 <= x["cycle_service_level_end_net"] <= x["cycle_service_level"] <= 1 and x["avg_on_hand"] > 0
        # n_gap's empty window: level 0, order-up-to the count floor (1 / 2 units); the lump of 9 in
        # period 2 falls in the lead time + review of epochs 0 and 1: both cycles end with a backorder,
        # only cycle 1 (no demand of its own) counts as served in the other reading
        w0, w1 = v["by_window"]["without_demand"], v["by_window"]["with_demand"]
        assert (w0["n_cycles"], w0["n_series"], w1["n_cycles"]) == (2, 1, 5)
        assert w0["cycle_service_level_end_net"] == 0.0 and w0["cycle_service_level"] == 0.5
        assert w0["fill_rate"] == pytest.approx(floor / 9) and w0["avg_on_hand"] == 0.0
        assert d["cycle_service_level_end_net"] == pytest.approx(w1["cycle_service_level_end_net"] * 5 / 7)
        # no past of 26 periods here: every fallback cycle is sized by the fallback alone
        assert v["by_sizing"]["short_history"] == d and v["by_sizing"]["short_history+own_history"]["n_cycles"] == 0
    # a higher target holds at least as much stock
    assert sh["targets"]["0.95"]["distribution"]["avg_on_hand"] >= sh["targets"]["0.90"]["distribution"]["avg_on_hand"]
    # the new series do not move the established ones: the same figures as on the panel without them
    # (here no selection window of theirs reaches the members' error pools)
    alone = run_inventory_replay(df[~df["unique_id"].isin(["n4", "n_in", "n_gap"])], **KW, forecaster_kwargs=FK)
    assert alone["targets"] == a["targets"] and alone["short_history"]["n_series"] == 0


def test_train_demand_logs_the_short_history_replay_apart():
    """train demand logs the replay's figures per target; the short-history group's under
    short_history.* beside the established series' (it was only in replay.json)."""
    from training.demand_backtest import replay_metrics, run_inventory_replay

    a = run_inventory_replay(_panel(), **KW, forecaster_kwargs=FK)
    logged = replay_metrics(a)
    assert [sl["target"] for _, sl in logged] == [*a["targets"], *a["short_history"]["targets"]]
    main, short = dict(logged[0][0]), dict(logged[len(a["targets"])][0])
    t0 = next(iter(a["targets"]))
    assert main["distribution.cycle_service_level_end_net"] == a["targets"][t0]["distribution"]["cycle_service_level_end_net"]
    assert not any(k.startswith("short_history.") for k in main)
    d = a["short_history"]["targets"][t0]
    assert short["short_history.distribution.fill_rate"] == d["distribution"]["fill_rate"]
    assert short["short_history.normal.n_cycles"] == d["normal"]["n_cycles"] == 7
    # a replay without short series logs only the established figures
    skip = run_inventory_replay(_panel(), **KW, forecaster_kwargs={**FK, "short_history": "skip"})
    assert len(replay_metrics(skip)) == len(skip["targets"])
