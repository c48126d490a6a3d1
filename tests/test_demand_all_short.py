"""A young book: no series has the periods the members need (``min_train``), the short-history
fallback is on. ``fit`` (and so ``forecast`` / ``safety-stock --config``) serves every series with
demand from the fallback, the same numbers as :func:`models.demand_short.short_history_forecast`
gives a short series, with the labels of the mixed case; it still refuses where the fallback
cannot help (no demand, ``skip``, too few periods to measure its band), and the backtest, train
and replay refuse a book too short for them, saying how long it must be."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.demand import DemandForecaster, TooShortError
from models.demand_data import build_panel
from models.demand_short import SHORT_MODEL, short_history_forecast, short_note
from models.inventory import InventoryPolicy, fit_forecaster_policy

KW = dict(models=("AutoETS",))
BANDS = ["Final", "Final-lo-80", "Final-hi-80", "Final-lo-95", "Final-hi-95"]


def _young(T=7, seed=0):
    """Six series of 2..T weekly periods in a table of T periods: all short for h=4 (min_train 8)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=T, freq="W-MON")
    spec = [(T, 5.0), (T, 2.0), (T - 1, 9.0), (T - 2, 1.0), (3, 4.0), (2, 3.0)]
    return pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds[T - n:], "y": rng.poisson(r, n).astype(float)})
                      for i, (n, r) in enumerate(spec)], ignore_index=True)


@pytest.fixture(scope="module")
def young():
    df = _young()
    return df, DemandForecaster(freq="W", h=4, **KW).fit(df)


def test_every_series_gets_the_fallbacks_forecast_and_band(young):
    df, est = young
    assert est.all_short_ == {"n_series": 6, "max_periods": 7, "min_train": 8, "h": 4}
    fc = est.predict()
    assert (fc["final_model"] == SHORT_MODEL).all() and sorted(fc["unique_id"].unique()) == [f"s{i}" for i in range(6)]
    assert len(fc) == 6 * 4
    # the fallback's own numbers, called by hand on the same table: every series, every band
    p = build_panel(df, "W")
    rows, info = short_history_forecast(p.Y, p.uids, p.dates, p.offset, p.Y.shape[1] - 1, 4, np.zeros(p.n, bool), 8, 2,
                                        [80, 95])
    pd.testing.assert_frame_equal(fc[["unique_id", "ds", *BANDS]].reset_index(drop=True),
                                  rows[["unique_id", "ds", *BANDS]].reset_index(drop=True))
    # and by hand for one: s4 has 3 periods, its point is their mean, flat over the horizon
    y4 = df.loc[df["unique_id"] == "s4", "y"].to_numpy()
    assert fc.loc[fc["unique_id"] == "s4", "Final"].tolist() == pytest.approx([y4.mean()] * 4)
    y0 = df.loc[df["unique_id"] == "s0", "y"].to_numpy()
    assert fc.loc[fc["unique_id"] == "s0", "Final"].iloc[0] == pytest.approx(y0[-4:].mean())
    assert list(est.short_["n_periods"]) == [7, 7, 6, 5, 3, 2] and list(est.short_["window"]) == [4, 4, 4, 4, 3, 2]
    assert (fc["Final-lo-95"] <= fc["Final"]).all() and (fc["Final"] <= fc["Final-hi-95"]).all()
    # the safety stock is the fallback's sizing (ltd_source short_history), to the bit
    pol = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=500), fc, est, 2.0, 0.0).policy_
    like = SimpleNamespace(short_=info["short"], short_residuals_=info["residuals"], short_scale_=info["scale"])
    ref = fit_forecaster_policy(InventoryPolicy(0.95, 1.0, n_sims=500), rows, like, 2.0, 0.0).policy_
    assert (pol["ltd_source"] == "short_history").all() and (pol["reorder_point"] > 0).all()
    pd.testing.assert_frame_equal(pol.drop(columns="demand_class"), ref.drop(columns="demand_class"))
    assert pol["ltd_mean"].iloc[4] == pytest.approx(2 * y4.mean())


def test_a_plan_of_drivers_keeps_the_fallback_rows():
    df = _young().assign(price=5.0)
    est = DemandForecaster(freq="W", h=4, **KW).fit(df)
    plan = est.future_drivers().assign(price=1.0)
    pd.testing.assert_frame_equal(est.predict(X_df=plan), est.predict())
    with pytest.raises(ValueError):  # the plan is still checked
        est.predict(X_df=plan.drop(columns="price"))


def test_refusals_stay_where_the_fallback_cannot_help():
    df = _young()
    head = "no series has 8 observed periods with some demand up to 2024-02-12; give longer series or a smaller horizon"
    with pytest.raises(TooShortError) as e:  # fallback off: the message as before
        DemandForecaster(freq="W", h=4, short_history="skip", **KW).fit(df)
    assert str(e.value) == head
    with pytest.raises(ValueError, match=r"^no series with demand left in the table \(all empty or all zero\)$"):
        DemandForecaster(freq="W", h=4, **KW).fit(df.assign(y=0.0))  # no demand at all: the table's refusal
    with pytest.raises(TooShortError) as e:  # 1 period: nothing before it to measure the fallback's band on
        DemandForecaster(freq="W", h=8, **KW).fit(df[df["ds"] == df["ds"].max()])
    assert str(e.value) == (
        "no series has 16 observed periods with some demand up to 2024-02-12; give longer series or a smaller "
        "horizon; nor can the short-history fallback: it measures its band on the periods after an earlier "
        "cutoff, so it needs at least 2 periods (the table has 1)")
    # (7 periods at h=8, refused until the fallback measured its band over fewer periods than h when the
    # table is that young: tests/test_demand_young_book.py)
    with pytest.raises(TooShortError, match="the data has 7 periods; 2 windows of h=4 with step 4 need at least 16"):
        DemandForecaster(freq="W", h=4, **KW).cross_validation(df, h=4, n_windows=2)


def test_replay_refuses_a_young_book_saying_how_long_it_must_be():
    from training.demand_backtest import run_inventory_replay

    with pytest.raises(TooShortError) as e:
        # 8-week lead time: a 10-period horizon, the members need 20 periods; 14 at the first epoch
        run_inventory_replay(_young(T=20), freq="W", lead_time_days=56, holdout=6, targets=[0.9], n_sims=200,
                             forecaster_kwargs=KW)
    assert str(e.value) == (
        "the replay refits the forecaster at 6 review epochs from 2024-04-01 (the holdout's first cutoff) and "
        "replays the series its members forecast at every epoch, sized from their errors on the 10 periods before "
        "it; no series has the 30 observed periods that takes by then (20 at its 10-period horizon + 10; the longest "
        "has 14): it needs at least 36 periods of history with a holdout of 6")


def _cli_book(tmp_path, T=12, extra=""):
    df = _young(T=T, seed=1)
    data = tmp_path / "s.csv"
    df.to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 3\ndata:\n  order_lines:\n    path: {data}\ndemand:\n  freq: W\n  horizon: 8\n"
                   f"  windows: 1\n  series: {{path: {data}}}\n  models: [AutoETS]\n  n_sims: 500\n{extra}")
    return df, cfg


def test_cli_safety_stock_and_forecast_serve_a_young_book_from_the_fallback(tmp_path, monkeypatch):
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    df, cfg = _cli_book(tmp_path)
    runner = CliRunner()
    out = tmp_path / "ss.csv"
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    line = ("all 6 series with demand are on the short-history fallback (final_model ShortHistory, forecast_note; "
            "safety stock from its distribution, ltd_source short_history): none has the 16 observed periods the "
            "members need at a 8-period horizon (the longest has 12)")
    assert line in res.output
    pol = pd.read_csv(out).set_index("unique_id")
    assert (pol["ltd_source"] == "short_history").all() and len(pol) == 6
    n = df.groupby("unique_id").size()
    assert pol["forecast_note"].to_dict() == {u: short_note(int(k)) for u, k in n.items()}
    last4 = df.groupby("unique_id")["y"].apply(lambda y: y.to_numpy()[-4:].mean())
    assert pol["mean_demand"].to_dict() == pytest.approx(last4.to_dict())
    # forecast --config at the sizing horizon: the fallback's forecast and band
    fc_out = tmp_path / "fc.csv"
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--horizon", "8", "--out", str(fc_out)])
    assert res.exit_code == 0, res.output
    assert line in res.output and "6 series with a short history got a fallback forecast" in res.output
    fc = pd.read_csv(fc_out, parse_dates=["ds"])
    assert (fc["final_model"] == SHORT_MODEL).all() and fc["forecast_note"].str.startswith("short history (").all()
    p = build_panel(df.assign(ds=pd.to_datetime(df["ds"])), "W")
    rows, _ = short_history_forecast(p.Y, p.uids, p.dates, p.offset, p.Y.shape[1] - 1, 8, np.zeros(p.n, bool), 16, 2,
                                     [80, 95])
    pd.testing.assert_frame_equal(fc[["unique_id", "ds", *BANDS]], rows[["unique_id", "ds", *BANDS]].reset_index(drop=True),
                                  check_dtype=False)
    # 1 period: too few for the fallback (it needs 2); refused, saying where the horizon 8 comes from
    _, cfg = _cli_book(tmp_path, T=7)
    data = tmp_path / "s.csv"
    one = pd.read_csv(data)
    one[one["ds"] == one["ds"].max()].to_csv(data, index=False)
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(tmp_path / "ss1.csv")])
    assert res.exit_code == 2 and not (tmp_path / "ss1.csv").exists()
    assert ("so it needs at least 2 periods (the table has 1) (safety-stock forecasts demand.horizon, 8 periods)"
            in " ".join(res.output.split())), res.output


def test_cli_backtest_and_train_refuse_a_young_book_and_point_to_the_fallback(tmp_path, monkeypatch):
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    _, cfg = _cli_book(tmp_path)
    runner = CliRunner()
    need = "the data has 12 periods; 1 window of h=8 with step 8 need at least 24"
    tail = ("for a young catalogue, `dealerml forecast --config` and `dealerml safety-stock --config` serve series "
            "shorter than the members need from the short-history fallback (final_model ShortHistory)")
    res = runner.invoke(app, ["backtest", "demand", "--config", str(cfg), "--json", str(tmp_path / "bt.json")])
    assert res.exit_code == 2 and need in res.output and tail in " ".join(res.output.split()), res.output
    res = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay"])
    assert res.exit_code == 2 and need in res.output and "registers a forecaster only with the evidence" in res.output
    # refused before the MLflow store is opened: no store, no run left behind
    assert not (tmp_path / "home").exists() or sorted(p.name for p in (tmp_path / "home").iterdir()) == []
    res = runner.invoke(app, ["simulate", "inventory", "--config", str(cfg), "--json", str(tmp_path / "r.json"),
                              "--holdout", "4"])
    assert res.exit_code == 2 and "no series has the 12 observed periods that takes" in res.output, res.output
    assert not (tmp_path / "bt.json").exists() and not (tmp_path / "r.json").exists()


def _runs_and_versions(home):
    import sqlite3

    con = sqlite3.connect(home / "mlflow.db")
    try:
        return (con.execute("select name, status from runs order by start_time").fetchall(),
                con.execute("select name, version from model_versions").fetchall())
    finally:
        con.close()


def test_train_demand_refuses_a_short_book_before_the_store_and_adds_no_run_to_one(tmp_path, monkeypatch):
    """A book long enough for the backtest window (24 periods) but not for a 14-period replay
    holdout: train demand refuses it before opening the MLflow store (no mlflow.db, no mlruns), as
    it does a book too short for the windows; into an existing store it adds no run and no version."""
    from training import tracking
    from training.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _, cfg = _cli_book(tmp_path, T=24)
    runner = CliRunner()
    why = ("the replay refits the forecaster at 14 review epochs from 2024-03-04 (the holdout's first cutoff)",
           "it needs at least 26 periods of history with a holdout of 14")
    res = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--holdout", "14"])
    assert res.exit_code == 2 and all(w in " ".join(res.output.split()) for w in why), res.output
    assert not home.exists() or list(home.iterdir()) == []
    # a store with one finished run: the refusals (the replay's, the windows') leave it as it was
    with tracking.training_run("demand", run_name="earlier"):
        pass
    assert _runs_and_versions(home) == ([("earlier", "FINISHED")], [])
    res = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--holdout", "14"])
    assert res.exit_code == 2 and why[1] in " ".join(res.output.split()), res.output
    _, short = _cli_book(tmp_path, T=12)
    res = runner.invoke(app, ["train", "demand", "--config", str(short), "--no-replay"])
    assert res.exit_code == 2 and "the data has 12 periods; 1 window of h=8" in res.output, res.output
    assert _runs_and_versions(home) == ([("earlier", "FINISHED")], [])


def test_cli_members_without_an_error_window_are_said_and_not_sized(tmp_path, monkeypatch):
    """18 periods at h=8: four series have the 16 the members need at the last cutoff, none the 24 of a
    selection window before it, so their forecasts have no band and no error paths: forecast says so,
    safety-stock refuses naming the fix (and writes nothing); with demand.min_train above the longest
    series, every series is on the fallback and sized."""
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    _, cfg = _cli_book(tmp_path, T=18)
    runner = CliRunner()
    why = ("the members forecast 4 series (16+ periods) but no series has the 24 periods they need to measure their "
           "errors on a 8-period window before the last one (the longest has 18), so those forecasts have no band and "
           "no error paths to size safety stock from; set demand.min_train above 18 to forecast and size every series "
           "from the short-history fallback, or give 24+ periods")
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(tmp_path / "fc.csv")])
    assert res.exit_code == 0 and f"note: {why}" in " ".join(res.output.split()), res.output
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert fc.loc[fc["final_model"] != SHORT_MODEL, "Final-lo-95"].isna().all()  # what the note is about
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(tmp_path / "ss.csv")])
    assert res.exit_code == 2 and why in " ".join(res.output.split()) and not (tmp_path / "ss.csv").exists()
    _, cfg = _cli_book(tmp_path, T=18, extra="  min_train: 19\n")
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(tmp_path / "ss.csv")])
    assert res.exit_code == 0 and "all 6 series with demand are on the short-history fallback" in res.output
    assert (pd.read_csv(tmp_path / "ss.csv")["ltd_source"] == "short_history").all()
