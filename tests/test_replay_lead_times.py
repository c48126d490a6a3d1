"""The inventory replay with a lead time per series: tiny replays worked out by hand (two
series whose orders take 1 and 2 periods, then 1 and 5 with a review period of 2), the
per-series replay equal to the old one-lead-time replay to the bit when every series has the
same lead time (a copy of the old function is kept here), and ``simulate inventory`` on a
synthetic order book with a ``lead_times`` table: the JSON says the lead times came from the
book and reports each lead-time band."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _support_demand import _cases
from typer.testing import CliRunner

from models.inventory import horizon_needed, replay, replay_summary
from training.cli import app

runner = CliRunner()


def _old_replay(actual: np.ndarray, order_up_to: np.ndarray, lead_time: int, review_period: int) -> dict[str, float]:
    """models.inventory.replay as it was before per-series lead times (commit 3afc45a), verbatim."""
    actual = np.asarray(actual, dtype=float)
    S = np.asarray(order_up_to, dtype=float)
    n, T = actual.shape
    L, R = int(lead_time), int(review_period)
    E = S.shape[1]
    net = S[:, 0].copy()
    pipeline = np.zeros((n, T + L + 1))
    served = demand = 0.0
    onhand_sum = 0.0
    periods = 0
    cycle_ok = np.ones((n, E), dtype=bool)
    cycle_seen = np.zeros((n, E), dtype=bool)
    for t in range(T):
        e = t // R
        if t % R == 0 and e < E and t > 0:
            ip = net + pipeline[:, t:].sum(axis=1)
            q = np.clip(S[:, e] - ip, 0.0, None)
            pipeline[:, t + L] += q
        net += pipeline[:, t]
        avail = np.clip(net, 0.0, None)
        d = actual[:, t]
        served += float(np.minimum(avail, d).sum())
        demand += float(d.sum())
        short = d > avail + 1e-9
        net -= d
        c = (t - L) // R
        if 0 <= c < E:
            cycle_seen[:, c] = True
            cycle_ok[:, c] &= ~short
        onhand_sum += float(np.clip(net, 0.0, None).sum())
        periods += n
    full = cycle_seen.copy()
    for c in range(E):
        if c * R + L + R > T:
            full[:, c] = False
    n_cycles = int(full.sum())
    return {
        "cycle_service_level": float(cycle_ok[full].mean()) if n_cycles else float("nan"),
        "fill_rate": served / demand if demand > 0 else float("nan"),
        "avg_on_hand": onhand_sum / periods if periods else float("nan"),
        "n_cycles": n_cycles,
    }


def _same(a: dict, b: dict) -> bool:
    """Equal to the bit (nan == nan) on every figure of ``a`` (the old replay's; the new one adds
    the end-net cycle service level)."""
    if not set(a) <= set(b):
        return False
    return all((isinstance(a[k], float) and np.isnan(a[k]) and np.isnan(b[k])) or a[k] == b[k] for k in a)


def test_two_lead_times_by_hand():
    # A: L = 1, S = 10, demand 5 5 12 5 5 5. B: L = 2, S = 12, demand 4 4 4 9 4 4. R = 1, T = 6.
    # A, period by period (order placed at the start of t >= 1, = S - (net + pipeline)):
    #   t0 net 10 -> 5 | t1 order 5 (arrives t2), 5 -> 0, cycle 0 ok | t2 order 5 (t3), 0 + 5 = 5
    #   for 12: 5 served, net -7, cycle 1 short | t3 order 12 (t4), -7 + 5 = -2, 0 served, net -7,
    #   cycle 2 short | t4 order 5 (t5), -7 + 12 = 5, served, net 0, cycle 3 ok | t5 order 5 (t6),
    #   5 served, cycle 4 ok. Cycles 0..4 lie in the holdout (c + 1 + 1 <= 6): 3 of 5 ok;
    #   served 25 of 37; end-of-period on hand 5 0 0 0 0 0.
    # B: t0 12 -> 8 | t1 order 4 (arrives t3), 8 -> 4 | t2 order 4 (t4), 4 -> 0, cycle 0 ok |
    #   t3 order 4 (t5), 0 + 4 = 4 for 9: net -5, cycle 1 short | t4 order 9 (t6: ip -5 + 4 + 4),
    #   -5 + 4 = -1, nothing served, net -5, cycle 2 short | t5 order 4 (t7), -5 + 4 = -1, net -5,
    #   cycle 3 short. Cycles 0..3 in the holdout (c + 2 + 1 <= 6): 1 of 4 ok; served 16 of 29;
    #   on hand 8 4 0 0 0 0.
    actual = np.array([[5.0, 5, 12, 5, 5, 5], [4.0, 4, 4, 9, 4, 4]])
    S = np.array([[10.0] * 6, [12.0] * 6])
    r = replay(actual, S, np.array([1, 2]), 1, per_series=True)
    assert r["n_cycles"] == 9
    assert r["cycle_service_level"] == pytest.approx(4 / 9)
    assert r["fill_rate"] == pytest.approx(41 / 66)
    assert r["avg_on_hand"] == pytest.approx(17 / 12)
    ps = r["per_series"]
    assert ps["cycles_ok"].tolist() == [3, 1] and ps["n_cycles"].tolist() == [5, 4]
    assert ps["served"].tolist() == [25.0, 16.0] and ps["demand"].tolist() == [37.0, 29.0]
    assert ps["on_hand_sum"].tolist() == [5.0, 12.0]
    a, b = replay_summary(ps, np.array([True, False])), replay_summary(ps, np.array([False, True]))
    assert a["cycle_service_level"] == pytest.approx(3 / 5) and a["fill_rate"] == pytest.approx(25 / 37)
    assert a["avg_on_hand"] == pytest.approx(5 / 6) and a["n_cycles"] == 5 and a["n_series"] == 1
    assert b["cycle_service_level"] == pytest.approx(1 / 4) and b["fill_rate"] == pytest.approx(16 / 29)
    assert b["avg_on_hand"] == pytest.approx(2.0) and b["n_cycles"] == 4
    # all series: the replay's own overall figures
    both = replay_summary(ps)
    assert both["cycle_service_level"] == pytest.approx(r["cycle_service_level"])
    assert both["fill_rate"] == pytest.approx(r["fill_rate"]) and both["avg_on_hand"] == pytest.approx(r["avg_on_hand"])
    # each series alone at its own lead time gives the same figures: series do not interact
    for i, L in enumerate((1, 2)):
        alone = replay(actual[i:i + 1], S[i:i + 1], L, 1)
        assert alone["n_cycles"] == ps["n_cycles"][i]
        assert alone["fill_rate"] == pytest.approx(ps["served"][i] / ps["demand"][i])


def test_review_period_two_and_a_lead_time_longer_than_the_holdout_by_hand():
    # R = 2, T = 6, epochs at t = 0, 2, 4. A: L = 1, S = 10, demand 3 each period:
    #   net 10 7 4 | t2 order 6 (t3) | 4 1 | t3 +6 = 7 4 | t4 order 6 (t5) 4 1 | t5 7 4. Cycle c
    #   covers t = 2c + 1, 2c + 2; cycles 0 and 1 fit (2c + 1 + 2 <= 6), both ok. On hand
    #   7 4 1 4 1 4 = 21, everything served.
    # B: L = 5, S = 8, demand 2: net 8 6 4 | t2 order 4 arrives t7 (after the holdout) | 4 2 0 |
    #   t4 order 4 (t9) | -2 -4: t4 and t5 unserved. Its first cycle would end at 0 + 5 + 2 = 7 > 6:
    #   no cycle counted. On hand 6 4 2 0 0 0 = 12; served 8 of 12.
    actual = np.array([[3.0] * 6, [2.0] * 6])
    S = np.array([[10.0] * 3, [8.0] * 3])
    r = replay(actual, S, np.array([1, 5]), 2, per_series=True)
    assert r["n_cycles"] == 2 and r["cycle_service_level"] == 1.0
    assert r["fill_rate"] == pytest.approx(26 / 30) and r["avg_on_hand"] == pytest.approx(33 / 12)
    b = replay_summary(r["per_series"], np.array([False, True]))
    assert b["n_cycles"] == 0 and np.isnan(b["cycle_service_level"]) and b["fill_rate"] == pytest.approx(8 / 12)
    assert b["avg_on_hand"] == pytest.approx(2.0)


def test_one_lead_time_for_all_gives_the_old_replay_to_the_bit():
    cases = 0
    for actual, S, L, R, _ in _cases():  # the same 24 seeded cases as test_inventory_replay
        old = _old_replay(actual, S, L, R)
        assert _same(old, replay(actual, S, L, R)), (actual.shape, L, R)
        new = replay(actual, S, np.full(len(actual), L), R, per_series=True)
        assert _same(old, {k: v for k, v in new.items() if k != "per_series"}), (actual.shape, L, R)
        cases += 1
    assert cases == 24


def test_lead_time_arrays_are_checked_and_the_horizon_covers_the_longest():
    a, S = np.ones((2, 4)), np.full((2, 4), 3.0)
    with pytest.raises(ValueError, match="whole periods"):
        replay(a, S, np.array([1.5, 2.0]), 1)
    with pytest.raises(ValueError, match="whole periods"):
        replay(a, S, np.array([-1, 2]), 1)
    with pytest.raises(ValueError, match="one per series"):
        replay(a, S, np.array([1, 2, 3]), 1)
    # the longest lead time + review + 2.33 x its spread, plus one period of room
    assert horizon_needed(np.array([1.0, 4.0, 2.0]), np.array([0.0, 1.0, 3.0]), 1) == int(np.ceil(2 + 1 + 2.326 * 3)) + 1
    assert horizon_needed(np.array([1.0, 14.0]), np.array([0.0, 0.0]), 1) == 16


def _book_config(tmp_path, synthetic_dir):
    """Top 9 sku x location series of the synthetic book; lead times 7 days (1 week) for the
    first of every three SKUs (by id), 28 days +- 7 (4 weeks) for the second, none for the third
    (the config's 14 days +- 3 = 2 weeks). One cheap member (SeasonalNaive): the assertions are on the
    lead times, bands and cycle counts, not the forecast (AutoETS here took ~40 s of a 45 s replay, for the
    same service figures)."""
    lines = pd.read_parquet(synthetic_dir / "order_lines.parquet", columns=["sku"])
    skus = sorted(lines["sku"].astype(str).unique())
    rows = [{"sku": s, "lead_time_days": 7.0 if i % 3 == 0 else 28.0, "lead_time_std_days": 0.0 if i % 3 == 0 else 7.0}
            for i, s in enumerate(skus) if i % 3 != 2]
    pd.DataFrame(rows).to_csv(tmp_path / "lt.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: syn\nseed: 1\ndata:\n  order_lines: {{path: {synthetic_dir / 'order_lines.parquet'}}}\n"
        f"  lead_times: {{path: {tmp_path / 'lt.csv'}}}\n  as_of: '2024-06-30'\n"
        "demand:\n  freq: W\n  horizon: 3\n  levels: [sku, location]\n  top_n: 9\n"
        "  models: [SeasonalNaive]\n  selection_windows: 1\n"
        "  lead_time_days: 14\n  lead_time_std_days: 3\n  n_sims: 400\n"
    )
    want = {s: (1 if i % 3 == 0 else 4 if i % 3 == 1 else 2) for i, s in enumerate(skus)}
    return cfg, want


def test_simulate_inventory_uses_the_books_lead_times(tmp_path, synthetic_dir):
    cfg, want = _book_config(tmp_path, synthetic_dir)
    out = tmp_path / "sim.json"
    holdout = 6
    res = runner.invoke(app, ["simulate", "inventory", "--config", str(cfg), "--holdout", str(holdout),
                              "--targets", "0.9,0.95", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "lead times (book" in res.output and "not this replay" not in res.output
    r = json.loads(out.read_text())
    assert r["lead_times_source"] == "book" and "note" not in r
    # the book's spreads (and the config's 3 days) size the levels, so each order's lead time is drawn
    assert r["arrivals"].startswith("random") and "arrivals random" in res.output
    assert r["n_series"] == 9 and r["config_lead_time_periods"] == 2 and r["n_series_without_full_cycle"] == 0
    # each series' weeks from its SKU's row (7 days -> 1, 28 -> 4), the config's 2 where the book has none
    from training.config import load_config
    from training.demand_config import demand_settings, load_demand_series

    c = load_config(cfg)
    df, _ = load_demand_series(c, demand_settings(c))
    weeks = pd.Series([want[u.split("/")[0]] for u in df["unique_id"].unique()]).value_counts()
    assert r["lead_time_distribution"] == {str(k): int(v) for k, v in weeks.sort_index().items()}
    assert r["n_series_lead_time_from_config"] == int(weeks.get(2, 0))
    assert r["n_series_lead_time_from_book"] == 9 - int(weeks.get(2, 0)) > 0
    assert len(weeks) >= 2, "the test needs series of at least two lead times"
    # the horizon covers the longest lead time + review + 2.33 x its spread (+ one period)
    longest = max(weeks.index)
    assert r["horizon_periods"] == horizon_needed(np.array([float(longest)]), np.array([1.0 if longest == 4 else 3 / 7]), 1)
    bands = {b["band"]: b for b in r["lead_time_bands"]}
    assert set(bands) == {f"L {k}" for k in r["lead_time_distribution"]}
    for t in r["targets"].values():
        by = t["by_lead_time"]
        assert set(by) == set(bands)
        for name, b in by.items():
            L = int(name.split()[1])
            n_band = r["lead_time_distribution"][str(L)]
            for meth in ("distribution", "normal"):
                # series of lead time L have holdout - L - R + 1 whole cycles in the holdout
                assert b[meth]["n_series"] == n_band and b[meth]["n_cycles"] == n_band * (holdout - L)
                assert isinstance(b[meth]["n_cycles"], int)
                assert 0 <= b[meth]["cycle_service_level"] <= 1 and 0 <= b[meth]["fill_rate"] <= 1
                assert 0 <= b[meth]["cycle_service_level_end_net"] <= b[meth]["cycle_service_level"]
        for meth in ("distribution", "normal"):
            assert t[meth]["n_cycles"] == sum(b[meth]["n_cycles"] for b in by.values())
            ok = sum(b[meth]["cycle_service_level"] * b[meth]["n_cycles"] for b in by.values())
            assert t[meth]["cycle_service_level"] == pytest.approx(ok / t[meth]["n_cycles"])


def test_a_book_that_repeats_the_config_lead_time_gives_the_config_figures():
    from training.demand_backtest import run_inventory_replay

    rng = np.random.default_rng(4)
    ds = pd.date_range("2021-01-04", periods=60, freq="W-MON")
    df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds,
                                  "y": (rng.poisson(5 + 3 * i, 60) * (rng.random(60) < (0.3 if i % 2 else 1))).astype(float)})
                    for i in range(4)])
    kw = dict(freq="W", lead_time_days=20, lead_time_std_days=4, holdout=6, targets=(0.9, 0.95), n_sims=300,
              forecaster_kwargs={"models": ("AutoETS",), "selection_windows": 1}, random_state=3)
    idx = pd.Index([f"s{i}" for i in range(4)], name="unique_id")
    config = run_inventory_replay(df, **kw)
    same = run_inventory_replay(df, **kw, lead_times=pd.DataFrame({"lead_time_days": 20.0, "lead_time_std_days": 4.0}, index=idx))
    other = run_inventory_replay(df, **kw, lead_times=pd.DataFrame({"lead_time_days": [7.0], "lead_time_std_days": [0.0]},
                                                                   index=pd.Index(["not-a-series"], name="unique_id")))
    assert config["lead_times_source"] == "config" and other["lead_times_source"] == "config"
    assert same["lead_times_source"] == "book" and same["n_series_lead_time_from_book"] == 4
    # 20 days = 2.86 weeks -> 3; the same value per series (a pd.Series) sizes and replays exactly as the scalar
    assert config["lead_time_periods"] == same["lead_time_periods"] == 3 and config["lead_time_distribution"] == {"3": 4}
    assert config["targets"] == same["targets"] == other["targets"]


@pytest.mark.slow
def test_train_demand_replays_with_the_books_lead_times(tmp_path, synthetic_dir, home):
    """``train demand`` logs a replay sized and delivered with each series' lead time from the
    book (config default where it has none), as ``simulate inventory`` and ``safety-stock`` do.
    ``home``: $DEALERML_HOME with a copy of the session's empty MLflow store (its migrations, ~8 s, run
    once per session instead of in each train)."""
    cfg, want = _book_config(tmp_path, synthetic_dir)
    holdout = 5
    res = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--holdout", str(holdout)])
    assert res.exit_code == 0, res.output
    import mlflow

    from training import tracking
    from training.tracking import metric_key

    _, info = tracking.load_model("dealerml-demand", "champion")
    rep = mlflow.artifacts.load_dict(f"runs:/{info.run_id}/inventory/replay.json")
    from training.config import load_config
    from training.demand_config import demand_settings, load_demand_series

    c = load_config(cfg)
    df, _ = load_demand_series(c, demand_settings(c))
    weeks = pd.Series([want[u.split("/")[0]] for u in df["unique_id"].unique()]).value_counts().sort_index()
    assert rep["lead_times_source"] == "book" and rep["arrivals"].startswith("random")
    assert rep["lead_time_distribution"] == {str(k): int(v) for k, v in weeks.items()}
    assert rep["n_series_lead_time_from_book"] == 9 - int(weeks.get(2, 0)) > 0
    for t in rep["targets"].values():
        for name, b in t["by_lead_time"].items():
            L = int(name.split()[1])
            assert b["distribution"]["n_cycles"] == weeks[L] * (holdout - L)
    metrics = mlflow.get_run(info.run_id).data.metrics
    for t in ("0.90", "0.95", "0.98"):
        for meth in ("distribution", "normal"):
            for k in ("cycle_service_level", "cycle_service_level_end_net"):
                assert metrics[metric_key(f"{meth}.{k}", {"target": t})] == rep["targets"][t][meth][k]
