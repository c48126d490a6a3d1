"""A series that stopped selling longer ago than its own-history window was stocked for its forecast.

Intermittent / lumpy series are sized from a bootstrap of their last ``history_periods`` (104) periods
when they have ``min_nonzero`` (3) periods with a sale. That count was taken over the window only, so a
weekly seller that stopped 70 weeks ago (34 sales in its window) got a reorder point of 0 and a note
(tests/test_stock_stopped_series.py), while one that stopped 103 weeks ago (1 sale in the window) or
110 weeks ago (none) fell to the class pool and was stocked for its forecast (the book below through
``dealerml safety-stock``, before the fix: reorder points 13.1 and 15.1, order-up-to 18.0 and 20.6, no note;
the live and the new series' numbers are the same before and after). The count is now over the
series' whole history since its first sale; a window without a sale is sized as stopped (reorder
point and order-up-to 0, ``ltd_source`` ``own_history``) and the note says its last 104 weeks hold
none. A series that never sold (no policy in the CLI) and a new one on the short-history fallback are
sized as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support_stock import service_backend

from models.inventory import InventoryPolicy, own_history_zero_notes

T = 230
DS = pd.date_range("2020-01-06", periods=T, freq="W-MON")
DEAD = (70, 103, 110)  # weeks without a sale at the end of a weekly seller's history


def _series() -> pd.DataFrame:
    rng = np.random.default_rng(5)

    def alt(n):  # a sale every other week, 3-8 units
        y = np.zeros(n)
        y[::2] = rng.integers(3, 9, len(y[::2]))
        return y

    rows = {f"live{k}": alt(T) for k in range(4)}
    for d in DEAD:
        rows[f"dead{d}"] = np.r_[rng.integers(3, 9, T - d).astype(float), np.zeros(d)]
    rows["never"] = np.zeros(T)
    df = pd.concat([pd.DataFrame({"unique_id": u, "ds": DS, "y": y}) for u, y in rows.items()], ignore_index=True)
    new = pd.DataFrame({"unique_id": "new", "ds": DS[-4:], "y": [5.0, 0.0, 6.0, 4.0]})  # first sold 4 weeks ago
    return pd.concat([df, new], ignore_index=True)


def _fit(uids, history=True):
    """InventoryPolicy on a flat forecast of 5 a week over 8 weeks, one pool of error paths."""
    hist = _series()
    H = 8
    fds = pd.date_range(DS[-1] + pd.Timedelta(weeks=1), periods=H, freq="W-MON")
    fc = pd.DataFrame({"unique_id": np.repeat(uids, H), "ds": np.tile(fds, len(uids)), "Final": 5.0})
    rng = np.random.default_rng(1)
    res = pd.DataFrame([{"unique_id": f"p{p}", "demand_class": "intermittent", "cutoff": 0, "step": k + 1, "r": r}
                        for p in range(25) for k, r in enumerate(rng.normal(0.0, 1.0, H))])
    every = ["live0", "live1", *(f"dead{d}" for d in DEAD), "never"]  # their class; the pool whatever is sized
    res = pd.concat([res, pd.DataFrame({"unique_id": every, "demand_class": "intermittent", "cutoff": 9, "step": 1,
                                        "r": 0.0})], ignore_index=True)
    pol = InventoryPolicy(0.95, 1.0, n_sims=2000).fit(fc, res, pd.Series(1.0, index=uids), 2.5, 0.5,
                                                      history=hist if history else None)
    return pol.policy_.set_index("unique_id"), hist


def test_every_stopped_series_is_sized_0_from_its_own_history_whatever_its_window_holds():
    uids = ["live0", "live1", *(f"dead{d}" for d in DEAD), "never"]
    pol, hist = _fit(uids)
    for d in DEAD:  # 34, 1 and 0 sales in the 104-week window: all sized from their own history, all 0
        p = pol.loc[f"dead{d}"]
        assert p["ltd_source"] == "own_history", d
        assert (p["reorder_point"], p["order_up_to"]) == (0.0, 0.0), d
        assert p["ltd_mean"] == pytest.approx(12.5) and p["normal_reorder_point"] > 12.5
    assert pol.loc["dead110", "sigma_d"] == 0.0  # the normal formula on the same (all-zero) window
    assert (pol.loc[["live0", "live1"], "reorder_point"] > 0).all()
    assert (pol.loc[["live0", "live1"], "ltd_source"] == "own_history").all()
    # other series' numbers do not depend on the stopped ones (own random streams), and a series that
    # never sold has no own history: the class pool, as without any history
    alone, _ = _fit(["live0", "live1", "never"])
    pd.testing.assert_frame_equal(pol.loc[["live0", "live1", "never"]], alone, check_exact=True)
    bare, _ = _fit(["never"], history=False)
    pd.testing.assert_frame_equal(pol.loc[["never"]], bare, check_exact=True)
    assert pol.loc["never", "ltd_source"] == "class_pool" and pol.loc["never", "reorder_point"] > 0
    notes = dict(zip(pol.index, own_history_zero_notes(pol.reset_index(), hist, "W"), strict=True))
    assert notes["dead110"] == (
        "no sale in the last 110 weeks of its history (the last in the week of 2022-04-18): sized from its own "
        "history, whose last 104 weeks hold no sale, so the reorder point is 0 and the order-up-to level 0; the "
        "forecast's 12.5 units over the lead time (mean_demand 5.0 a week) are not stocked for: check that it still "
        "sells before stocking for the forecast")
    for d in (70, 103):  # a sale in the window: the bootstrap ran, as the note of tests/test_stock_stopped_series says
        assert notes[f"dead{d}"].startswith(f"no sale in the last {d} weeks of its history")
        assert "at most 5 % of its simulated lead times see a sale" in notes[f"dead{d}"]
    assert notes["live0"] == notes["never"] == ""


def test_the_cli_and_the_service_size_and_note_a_long_stopped_series_alike(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from serving.schemas import SafetyStockRequest
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    _series().to_csv(tmp_path / "series.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: stopped\ndata:\n  order_lines: {path: series.csv}\ndemand:\n  freq: W\n  horizon: 8\n"
                   "  series: {path: series.csv}\n  models: [CrostonSBA]\n  selection_windows: 1\n  windows: 1\n"
                   "  lead_time_days: 14\n  lead_time_std_days: 3\n")
    out = tmp_path / "pol.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "no demand (e.g. ['never'])" in res.output  # never sold: no forecast, no policy, as before
    pol = pd.read_csv(out).set_index("unique_id")
    assert "never" not in pol.index
    for d in DEAD:
        p = pol.loc[f"dead{d}"]
        assert p["ltd_source"] == "own_history" and p["ltd_mean"] > 5, d  # CrostonSBA still forecasts demand
        assert (p["reorder_point"], p["order_up_to"]) == (0.0, 0.0), d
        assert p["forecast_note"].startswith(f"no sale in the last {d} weeks of its history"), d
    assert "whose last 104 weeks hold no sale" in pol.loc["dead110", "forecast_note"]
    assert (pol.loc[[f"live{k}" for k in range(4)], "reorder_point"] > 0).all()
    new = pol.loc["new"]  # the short-history fallback: untouched
    assert new["ltd_source"] == "short_history" and new["forecast_note"].startswith("short history (4 periods)")
    assert new["reorder_point"] > new["ltd_mean"] > 0
    # the service on the same fit: the same numbers and the note as the row's note
    backend, _ = service_backend(cfg, _series())
    ids = [f"dead{d}" for d in DEAD] + ["live0"]
    rows = {r["unique_id"]: r for r in backend.safety_stock(SafetyStockRequest(series_ids=ids))["rows"]}
    for u in ids:
        assert rows[u]["reorder_point"] == pytest.approx(pol.loc[u, "reorder_point"], abs=1e-9), u
        assert rows[u]["order_up_to"] == pytest.approx(pol.loc[u, "order_up_to"], abs=1e-9), u
        assert rows[u]["lead_time_demand_source"] == pol.loc[u, "ltd_source"], u
    for d in DEAD:
        assert rows[f"dead{d}"]["note"] == pol.loc[f"dead{d}", "forecast_note"]
    assert rows["live0"]["note"] is None


def test_a_live_sparse_series_with_fewer_sales_in_its_window_stays_on_the_class_pool():
    """The whole-history count is for series silent for half the window or more (the review of 1b9c2eb): a
    series that sold every other week for two years, then twice in its last 104 weeks (the last 5 weeks ago),
    was moved to its own history and sized from those 2 sales (reorder point 4.96, order-up-to 7.34), the
    case the 3-sale minimum keeps out; it is on the class pool again, as before 1b9c2eb (2.64 / 3.15)."""
    T, H = 230, 8
    ds = pd.date_range("2020-01-06", periods=T, freq="W-MON")
    rng = np.random.default_rng(5)
    y = np.zeros(T)
    y[:100:2] = rng.integers(3, 9, 50)
    y[T - 60], y[T - 5] = 6, 5
    hist = pd.DataFrame({"unique_id": "sparse", "ds": ds, "y": y})
    fc = pd.DataFrame({"unique_id": "sparse", "ds": pd.date_range(ds[-1] + pd.Timedelta(weeks=1), periods=H,
                                                                   freq="W-MON"), "Final": 0.3})
    r = np.random.default_rng(1)
    res = pd.DataFrame([{"unique_id": f"p{p}", "demand_class": "intermittent", "cutoff": 0, "step": k + 1, "r": v}
                        for p in range(25) for k, v in enumerate(r.normal(0, 1, H))])
    res = pd.concat([res, pd.DataFrame({"unique_id": ["sparse"], "demand_class": "intermittent", "cutoff": 9,
                                        "step": 1, "r": 0.0})])
    pol = InventoryPolicy(0.95, 1.0, n_sims=2000).fit(fc, res, pd.Series(1.0, index=["sparse"]), 2.5, 0.5,
                                                       history=hist).policy_.iloc[0]
    assert pol["ltd_source"] == "class_pool"
    assert (round(pol["reorder_point"], 2), round(pol["order_up_to"], 2)) == (2.64, 3.15)
