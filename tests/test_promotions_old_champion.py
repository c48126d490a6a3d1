"""A demand champion trained without ``data.promotions`` (as by dealerml before the table existed: its ``promo``
driver the share of units sold on promotion, read off the order lines) under a config that now has the table:
``forecast`` / ``safety-stock --alias --config`` and the service keep its plan (each series' last promo value
carried forward), and say that the config's campaigns are not used until it is retrained
(training.commands._alias_plan.untrained_promo_note). Before, only "last known value carried forward" was said,
and safety-stock and the service said nothing.

Today's code still trains such a version: a config with ``demand.drivers: [promo]`` and no promotions table (it
warns of the leak). Small: the promotions tests' weekly book, SeasonalNaive + LightGBM (10 trees), one window.
"""

from __future__ import annotations

import pandas as pd
from _support_promotions import _calendar_book
from typer.testing import CliRunner

from training.cli import app

KEY = "promo-admin-key-0001"
SAID = "was trained without the promotions table (its promo was the share of units sold on promotion)"


def test_an_old_style_champion_says_the_calendar_is_not_its_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    cfg = _calendar_book(tmp_path)  # with data.promotions: campaign for A in the week of 23 Sep 2024
    text = cfg.read_text().replace("models: [AutoETS, LightGBM], lgbm: {n_estimators: 40}",
                                   "models: [SeasonalNaive, LightGBM], lgbm: {n_estimators: 10}")
    cfg.write_text(text)
    old = tmp_path / "old.yaml"  # the same book without the table: the promo share of the order lines
    old.write_text("\n".join(line for line in text.splitlines() if "promotions:" not in line) + "\n")
    run = CliRunner()
    res = run.invoke(app, ["train", "demand", "--config", str(old), "--no-replay"])
    assert res.exit_code == 0, res.output

    used = tmp_path / "used.csv"
    res = run.invoke(app, ["forecast", "--alias", "champion", "--config", str(cfg), "--out", str(tmp_path / "f.csv"),
                           "--drivers-out", str(used)])
    assert res.exit_code == 0, res.output
    note = (f"note: dealerml-demand@champion (version 1) {SAID}: its plan carries each series' last promo value "
            f"forward and {cfg}'s campaigns are not used: retrain with this config to plan them")
    assert note in res.output, res.output
    assert "last known value carried forward" in res.output  # and the plan is what it says: A's campaign unplanned
    d = pd.read_csv(used)
    assert d.groupby("unique_id")["promo"].nunique().eq(1).all(), d
    assert d.loc[(d["unique_id"] == "A") & (d["ds"] == "2024-09-23"), "promo"].item() != 1.0

    res = run.invoke(app, ["safety-stock", "--alias", "champion", "--config", str(cfg), "--out",
                           str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    assert note in res.output, res.output
    # the config it was trained with has no table: nothing to say; nor without --config
    res = run.invoke(app, ["forecast", "--alias", "champion", "--config", str(old), "--out", str(tmp_path / "g.csv")])
    assert res.exit_code == 0 and SAID not in res.output, res.output
    res = run.invoke(app, ["forecast", "--alias", "champion", "--out", str(tmp_path / "h.csv")])
    assert res.exit_code == 0 and SAID not in res.output, res.output

    # the service: /model_info's promo_plan and every /forecast answer say it; the table is not watched
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    monkeypatch.setenv("DEALERML_API_KEYS", f"{KEY}:*")
    monkeypatch.setenv("DEALERML_SERVE_MODELS", "demand")
    monkeypatch.setenv("DEALERML_CONFIG", str(cfg))
    client = TestClient(service_app(), raise_server_exceptions=False)
    client.__enter__()
    try:
        svc = bentoml.get_current_service()
        svc._loader.join(timeout=120)
        client.headers["X-API-Key"] = KEY
        assert client.get("/readyz").status_code == 200
        info = client.get("/model_info").json()
        plan = next(m for m in info["models"] if m["name"] == "dealerml-demand")["summary"]["promo_plan"]
        r = client.post("/forecast", json={"series_ids": ["A"], "horizon": 3})
        ss = client.post("/safety_stock", json={"series_ids": ["A"], "service_level": 0.95})
        watched = svc.state.slots["demand"].backend.promo_watch
    finally:
        client.__exit__(None, None, None)
    served = (f"dealerml-demand/1 {SAID}: its plan carries each series' last promo value forward and the config's "
              "campaigns are not used: retrain with this config to plan them")
    assert plan["source"] == "trained_without_table" and plan["note"] == served, plan
    assert r.status_code == 200 and r.json()["promo_plan"] == served, r.text
    assert ss.status_code == 200 and ss.json()["promo_plan"] == served, ss.text
    assert watched is None

    # a version with a calendar plan of its own (trained with the table) gets no such line
    from training._demand_promotions import _promo_for
    from training.commands._alias_plan import untrained_promo_note
    from training.commands._demand_common import _registered

    est, _ = _registered("champion")
    cal = pd.DataFrame({"sku": ["A"], "location": ["ALL"], "start_date": [pd.Timestamp("2024-09-23")],
                        "end_date": [pd.Timestamp("2024-09-29")]})
    assert SAID in untrained_promo_note(est, _promo_for(cal, "W"), model="m", config="c")
    assert untrained_promo_note(est, None, model="m", config="c") == ""  # no table (or no promo driver) in the config
    est.set_planned_drivers(est.future_drivers())
    assert untrained_promo_note(est, _promo_for(cal, "W"), model="m", config="c") == ""


def test_a_young_book_champion_trained_with_the_table_is_not_said_to_be_trained_without_it():
    """On a book too young for the members every series is on the short-history fallback (``all_short_``):
    ``set_planned_drivers`` keeps no plan (the fallback reads no drivers), so a version trained WITH the table
    has no ``planned_drivers_`` either; it was said to be trained without the table and asked for a retraining
    that would plan nothing."""
    import numpy as np

    from models.demand import DemandForecaster
    from training._demand_promotions import _promo_for
    from training.commands._alias_plan import untrained_promo_note

    ds = pd.date_range("2024-01-01", periods=7, freq="W-MON")  # 7 periods: all short for h=4 (min_train 8)
    df = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": np.arange(7.0) + 3 + k,
                                  "promo": [0.0, 1, 0, 0, 1, 0, 0]}) for k, u in enumerate("AB")], ignore_index=True)
    est = DemandForecaster(freq="W", h=4, models=("SeasonalNaive",), exog=["promo"]).fit(df)
    est.set_planned_drivers(est.future_drivers())  # as train demand does with the table
    assert est.all_short_ and est.exog_ == ["promo"] and getattr(est, "planned_drivers_", None) is None
    cal = pd.DataFrame({"sku": ["A"], "location": ["ALL"], "start_date": [pd.Timestamp("2024-02-19")],
                        "end_date": [pd.Timestamp("2024-02-25")]})
    assert untrained_promo_note(est, _promo_for(cal, "W"), model="m", config="c") == ""
