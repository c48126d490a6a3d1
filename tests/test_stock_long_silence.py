"""A series silent for long against its own rhythm is said on its safety-stock row, whatever sized it.

The own-history bootstrap's sale timing has no memory of how long the last gap is: on a weekly book a
series that sold every other week and stopped 70 weeks ago was sized a reorder point of 16.4 and an
order-up-to level of 20.1, above the live series selling every other week (10.6-11.4), with nothing on
the row (h193's book, /tmp/s24/h193/cli, through ``dealerml safety-stock``). Smooth / erratic series are sized on the forecast
(class pool) however long they have been silent. The sizing is kept (measured and documented); the row's
note (the CLI's ``forecast_note``, the service's ``note``) now says it when the silence is at least 13
periods and more than 3 x the longest gap between two sales before it, and on a replenish / order row
that the order is sized on demand the series has not shown since. A row that already carries the
own-history zero note (``own_history_zero_notes``) keeps that note alone.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from _support_stock import service_backend

from models._inventory_advice import long_silence, sale_silences
from models.inventory import (
    InventoryPolicy,
    long_silence_notes,
    own_history_zero_notes,
    stopped_series_notes,
)

T = 230
DS = pd.date_range("2020-01-06", periods=T, freq="W-MON")
LIVE = [f"live{k}" for k in range(4)]


def _series() -> pd.DataFrame:
    rng = np.random.default_rng(5)

    def alt(n):  # a sale every other week, 3-8 units
        y = np.zeros(n)
        y[::2] = rng.integers(3, 9, len(y[::2]))
        return y

    rows = {u: alt(T) for u in LIVE}
    rows["alt71"] = np.r_[alt(T - 70), np.zeros(70)]  # every other week, the last sale 71 weeks back
    rows["week70"] = np.r_[rng.integers(3, 9, T - 70).astype(float), np.zeros(70)]  # every week, then 70 without
    rows["week30"] = np.r_[rng.integers(20, 40, T - 30).astype(float), np.zeros(30)]  # smooth: the class pool
    lumpy = np.zeros(T)
    lumpy[np.arange(5, T - 13, 10)] = rng.integers(5, 30, len(range(5, T - 13, 10)))  # every 10th week, the last 14 weeks back
    rows["lumpy"] = lumpy
    return pd.concat([pd.DataFrame({"unique_id": u, "ds": DS, "y": y}) for u, y in rows.items()], ignore_index=True)


IDS = [*LIVE, "alt71", "week70", "week30", "lumpy"]


def test_the_silence_and_the_gaps_before_it_are_counted_on_the_history_grid():
    sil = sale_silences(_series())
    assert sil.loc["alt71", ["silence", "longest_gap"]].tolist() == [71, 1]
    assert sil.loc["week70", ["silence", "longest_gap"]].tolist() == [70, 0]
    assert sil.loc["lumpy", ["silence", "longest_gap"]].tolist() == [14, 9]
    assert sil.loc["live0", "silence"] in (0, 1) and sil.loc["live0", "longest_gap"] == 1
    flagged = long_silence(sil)
    # live every other week, and a lumpy seller 14 weeks silent after gaps of 9 (not 3x), are not flagged
    assert sorted(flagged[flagged].index) == ["alt71", "week30", "week70"]
    # a missing row is a period on the grid (the panel fills it with 0): the silence counts it
    h = _series()
    gappy = h[~((h["unique_id"] == "alt71") & (h["ds"] > DS[-50]))]
    assert sale_silences(gappy).loc["alt71", "silence"] == 71
    # 13 periods is the floor: a weekly seller silent 12 weeks is not flagged, 13 weeks is
    y = np.r_[np.ones(50), np.zeros(12)]
    one = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-06", periods=62, freq="W-MON"), "y": y})
    assert not long_silence(sale_silences(one)).iloc[0]
    one = pd.concat([one, pd.DataFrame({"unique_id": "a", "ds": [one["ds"].iloc[-1] + pd.Timedelta(weeks=1)], "y": [0.0]})])
    assert long_silence(sale_silences(one)).iloc[0]


def _fit(uids=IDS):
    """InventoryPolicy on a flat forecast of 5 a week over 8 weeks, every series intermittent (the own
    history where it has one) but week30, smooth (the class pool)."""
    hist = _series()
    H = 8
    fds = pd.date_range(DS[-1] + pd.Timedelta(weeks=1), periods=H, freq="W-MON")
    fc = pd.DataFrame({"unique_id": np.repeat(uids, H), "ds": np.tile(fds, len(uids)), "Final": 5.0})
    rng = np.random.default_rng(1)
    res = pd.DataFrame([{"unique_id": f"p{p}", "demand_class": c, "cutoff": 0, "step": k + 1, "r": r}
                        for c in ("intermittent", "smooth") for p in range(25)
                        for k, r in enumerate(rng.normal(0.0, 1.0, H))])
    res = pd.concat([res, pd.DataFrame({"unique_id": IDS, "demand_class": ["smooth" if u == "week30" else "intermittent"
                                                                           for u in IDS],
                                        "cutoff": 9, "step": 1, "r": 0.0})], ignore_index=True)
    pol = InventoryPolicy(0.95, 1.0, n_sims=2000).fit(fc, res, pd.Series(1.0, index=uids), 2.5, 0.5, history=hist)
    return pol.policy_, hist


def test_a_series_silent_long_against_its_rhythm_is_said_on_its_row_whatever_sized_it():
    pol, hist = _fit()
    p = pol.set_index("unique_id")
    # the sizing is as it was: the stopped every-other-week seller above the live ones, the smooth one on the
    # forecast, the stopped weekly seller 0 from its own history
    assert p.loc["alt71", "ltd_source"] == "own_history" and p.loc["alt71", "reorder_point"] > p.loc[LIVE, "reorder_point"].max()
    assert p.loc["week30", "ltd_source"] == "class_pool" and p.loc["week30", "reorder_point"] > 0
    assert (p.loc["week70", "reorder_point"], p.loc["week70", "order_up_to"]) == (0.0, 0.0)
    actions = ["replenish"] * len(pol)
    notes = dict(zip(pol["unique_id"], stopped_series_notes(pol, hist, "W", actions), strict=True))
    assert notes["alt71"] == (
        "no sale in the last 71 weeks (the last in the week of 2023-01-16), against gaps of at most 1 week before: "
        "the order is sized on demand the series has not shown since, check that it still sells")
    assert notes["week30"] == (
        "no sale in the last 30 weeks (the last in the week of 2023-10-30), against a sale every week before: the "
        "order is sized on demand the series has not shown since, check that it still sells")
    # the own-history zero note alone (it names the last sale already), not both
    at = pol["unique_id"].tolist().index
    assert notes["week70"] == own_history_zero_notes(pol, hist, "W")[at("week70")] != ""
    assert "against" not in notes["week70"]
    assert all(notes[u] == "" for u in [*LIVE, "lumpy"])  # live intermittent / lumpy: nothing said
    # what is said after the silence follows the action: no order, no order clause; no stock known, the sizing
    by_action = {a: long_silence_notes(pol, hist, "W", [a] * len(pol))[at("alt71")]
                 for a in ("order", "ok", "overstock", None)}
    assert by_action["order"] == notes["alt71"]
    assert by_action["ok"] == by_action["overstock"] == notes["alt71"].split(":")[0]
    assert by_action[None] == (notes["alt71"].split(":")[0] + ": its reorder point and order-up-to level are sized on "
                               "demand it has not shown since, check that it still sells before stocking for them")
    # a CLI no_policy row (no ltd_source) and no history: nothing
    nop = pol.assign(ltd_source=[None if u == "alt71" else s for u, s in zip(pol["unique_id"], pol["ltd_source"], strict=True)])
    assert long_silence_notes(nop, hist, "W")[at("alt71")] == ""
    assert stopped_series_notes(pol, None, "W") == [""] * len(pol)


def test_a_single_sale_long_ago_and_months_are_said_in_their_words():
    ds = pd.date_range("2019-01-01", periods=40, freq="MS")
    y = np.zeros(40)
    y[20] = 4.0
    hist = pd.DataFrame({"unique_id": "one", "ds": ds, "y": y})
    pol = pd.DataFrame({"unique_id": ["one"], "ltd_source": ["short_history"], "order_up_to": [0.0],
                        "reorder_point": [0.0], "ltd_mean": [0.0]})
    assert long_silence_notes(pol, hist, "M", ["ok"]) == [
        "no sale in the last 19 months (its only sale in the month of 2020-09-01)"]


def test_the_notes_are_linear_in_the_number_of_series():
    """2,000 series of 104 weeks (the size a quadratic version of the zero note took 44 s on)."""
    n, weeks = 2000, 104
    ds = pd.date_range("2022-01-03", periods=weeks, freq="W-MON")
    rng = np.random.default_rng(0)
    y = (rng.random((n, weeks)) < 0.7) * rng.integers(1, 9, (n, weeks))
    y[::2, -40:] = 0  # half of them stopped 40 weeks ago
    uids = np.array([f"s{i:05d}" for i in range(n)], dtype=object)
    hist = pd.DataFrame({"unique_id": np.repeat(uids, weeks), "ds": np.tile(ds, n), "y": y.ravel().astype(float)})
    pol = pd.DataFrame({"unique_id": uids, "ltd_source": "own_history", "reorder_point": 3.0, "order_up_to": 5.0,
                        "ltd_mean": 4.0, "mean_demand": 2.0})
    t = time.perf_counter()
    notes = stopped_series_notes(pol, hist, "W", ["replenish"] * n)
    took = time.perf_counter() - t
    assert sum(bool(x) for x in notes) == n // 2 and all(notes[::2]) and not any(notes[1::2])
    assert took < 5.0, took


def test_the_cli_and_the_service_give_the_same_note(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from serving.schemas import SafetyStockRequest
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    _series().to_csv(tmp_path / "series.csv", index=False)
    pd.DataFrame({"unique_id": IDS, "on_hand": 0.0}).to_csv(tmp_path / "stock.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: h197\ndata:\n  order_lines: {path: series.csv}\ndemand:\n  freq: W\n  horizon: 8\n"
                   "  series: {path: series.csv}\n  models: [CrostonSBA]\n  selection_windows: 1\n  windows: 1\n"
                   "  lead_time_days: 14\n  lead_time_std_days: 3\n")
    out = tmp_path / "pol.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out),
                                   "--on-hand", str(tmp_path / "stock.csv"), "--on-hand-date", "2024-05-27"])
    assert res.exit_code == 0, res.output
    pol = pd.read_csv(out).set_index("unique_id")
    assert pol.loc["alt71", "action"] == "replenish" and pol.loc["alt71", "order_qty"] > 0
    assert pol.loc["alt71", "forecast_note"].startswith("no sale in the last 71 weeks (the last in the week of 2023-01-16), "
                                                        "against gaps of at most 1 week before: the order is sized on")
    assert pol.loc["week30", "forecast_note"].startswith("no sale in the last 30 weeks")
    assert pol.loc["week70", "forecast_note"].startswith("no sale in the last 70 weeks of its history")  # the zero note
    assert "against" not in pol.loc["week70", "forecast_note"]
    assert pol.loc[[*LIVE, "lumpy"], "forecast_note"].isna().all()
    # the console counts them (the notes were in the file only: a planner reading the output never saw them)
    quiet = int(pol["forecast_note"].notna().sum())
    assert quiet >= 3 and (f"{quiet} series may have stopped selling (no recent sale against their own rhythm): their "
                           "forecast_note names the last sale; check them before ordering") in res.output
    # the service on the same fit, with the same stock: the same actions and notes
    backend, _ = service_backend(cfg, _series())
    rows = {r["unique_id"]: r for r in backend.safety_stock(SafetyStockRequest(
        series_ids=IDS, on_hand=dict.fromkeys(IDS, 0.0)))["rows"]}
    for u in IDS:
        assert rows[u]["action"] == pol.loc[u, "action"], u
        assert rows[u]["reorder_point"] == pytest.approx(pol.loc[u, "reorder_point"], abs=1e-9), u
        said = pol.loc[u, "forecast_note"]
        assert rows[u]["note"] == (None if pd.isna(said) else said), u
    # without stock the service says what the sizing rests on, as the CLI file without stock would
    bare = {r["unique_id"]: r for r in backend.safety_stock(SafetyStockRequest(series_ids=["alt71"]))["rows"]}
    assert bare["alt71"]["action"] is None
    assert bare["alt71"]["note"].endswith("its reorder point and order-up-to level are sized on demand it has not shown "
                                          "since, check that it still sells before stocking for them")


def test_the_zero_note_is_not_given_where_the_forecast_is_below_a_unit_or_the_order_up_to_covers_it():
    """The demo's safety-stock (h201's check): SKU00154/DC1, forecast 1.25e-14 units over the lead time, was
    told "the forecast's 0.0 units ... are not stocked for"; SKU00039/DC3, order-up-to 1.29 against a forecast
    of 0.06 units and action ``order`` (2 units), was told the forecast is not stocked for. Neither is true:
    the zero note now needs a forecast of at least a unit over the lead time, above the order-up-to level;
    where it is not given, a long silence is said by ``long_silence_notes`` with what the order rests on."""
    hist = _series()
    pol = pd.DataFrame({"unique_id": ["week70"] * 4, "ltd_source": "own_history", "service_level": 0.95,
                        "reorder_point": 0.0, "order_up_to": [0.0, 1.29, 5.0, 3.0],
                        "ltd_mean": [1.25e-14, 0.06, 2.0, 17.5], "mean_demand": [0.0, 0.02, 0.8, 7.0]})
    zero = own_history_zero_notes(pol, hist, "W")
    assert zero[:3] == ["", "", ""]
    assert "the forecast's 17.5 units over the lead time" in zero[3] and "not stocked for" in zero[3]
    notes = stopped_series_notes(pol, hist, "W", ["ok", "order", "order", "replenish"])
    assert notes[0] == "no sale in the last 70 weeks (the last in the week of 2023-01-23), against a sale every week before"
    assert notes[1] == notes[2] == notes[0] + (": the order is sized on demand the series has not shown since, "
                                               "check that it still sells")
    assert notes[3] == zero[3]


def test_a_daily_series_names_the_day_of_its_last_sale():
    """Daily books read "(the last in the day of 2022-02-08)" (h206's review); a day is "on 2022-02-08"."""
    y = np.zeros(80)
    y[:40:2] = 3.0
    hist = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2022-01-01", periods=80, freq="D"), "y": y})
    pol = pd.DataFrame({"unique_id": ["a"], "ltd_source": ["class_pool"], "order_up_to": [2.0],
                        "reorder_point": [1.0], "ltd_mean": [1.0]})
    assert long_silence_notes(pol, hist, "D", ["order"]) == [
        "no sale in the last 41 days (the last on 2022-02-08), against gaps of at most 1 day before: the order is "
        "sized on demand the series has not shown since, check that it still sells"]
