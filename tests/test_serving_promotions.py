"""The service forecasts under the config's promotions table as read at start-up, as ``dealerml forecast
--alias champion --config`` does (serving._demand_promo): a campaign added to ``data.promotions`` after
``train demand`` moves the served forecast of exactly its series and periods, to the CLI's values, and
``/model_info``, ``/forecast`` and ``/safety_stock`` say where the plan comes from; a request's own
``drivers`` still override it. A table that cannot be read keeps the service unready naming it (503, not
500); a table the calendar cannot be matched with leaves the trained plan, said.

Small: the promotions tests' weekly book (3 SKUs, 90 weeks), AutoETS + LightGBM (40 trees), horizon 3,
one backtest window, no replay; in-process service (``DealerML.to_asgi()``, its real loader, real MLflow).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pandas as pd
import pytest
from _support_promotions import _calendar_book

KEY = "promo-admin-key-0001"
CAMPAIGN = "B,2024-09-16,2024-09-22\n"  # marketing's campaign for B in the first forecast week, after training


def _train(tmp, demand_line: str | None = None):
    from typer.testing import CliRunner

    from training.cli import app

    tmp.mkdir(parents=True, exist_ok=True)
    cfg = _calendar_book(tmp)
    if demand_line is not None:  # another demand: section (the hierarchy)
        text = cfg.read_text()
        cfg.write_text(text[: text.index("demand:")] + demand_line)
    res = CliRunner().invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay"])
    assert res.exit_code == 0, res.output
    return cfg


def _cli_forecast(cfg, out) -> pd.DataFrame:
    from typer.testing import CliRunner

    from training.cli import app

    res = CliRunner().invoke(app, ["forecast", "--alias", "champion", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return pd.read_csv(out)


def _cli_stock(cfg, out) -> pd.DataFrame:
    from typer.testing import CliRunner

    from training.cli import app

    res = CliRunner().invoke(app, ["safety-stock", "--alias", "champion", "--config", str(cfg), "--service-level",
                                   "0.95", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 period(s) of 1 series differ" in res.output, res.output
    return pd.read_csv(out, dtype={"unique_id": str}).set_index("unique_id")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One registry for the module: the plain champion, then (its own test) a hierarchical one."""
    tmp = tmp_path_factory.mktemp("promo_serve")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'home' / 'mlflow.db'}")
        mp.setenv("DEALERML_API_KEYS", f"{KEY}:*")
        mp.setenv("DEALERML_SERVE_MODELS", "demand")
        yield SimpleNamespace(tmp=tmp, mp=mp)


@pytest.fixture(scope="module")
def plain(home):
    cfg = _train(home.tmp / "plain")
    before = _cli_forecast(cfg, home.tmp / "plain" / "before.csv")  # the trained plan: the same calendar
    return SimpleNamespace(cfg=cfg, before=before)


@pytest.fixture(scope="module")
def located(home):
    """A plain weekly champion trained on demand.levels [sku, location] (ids ``A/ALL``), in its own registry (the
    plain champion keeps the alias in the module's): its home, to point DEALERML_HOME at, and its config."""
    own = home.tmp / "edited" / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(own))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{own / 'mlflow.db'}")
        cfg = _train(home.tmp / "edited", "demand: {freq: W, horizon: 3, windows: 1, drivers: [promo], levels: [sku, "
                     "location], models: [AutoETS, LightGBM], lgbm: {n_estimators: 10}, selection_windows: 1}\n")
    return SimpleNamespace(cfg=cfg, home=own)


def _use_home(monkeypatch, own):
    monkeypatch.setenv("DEALERML_HOME", str(own))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{own / 'mlflow.db'}")


def _serve(mp, cfg):
    """(client, service) of an in-process service reading ``cfg``, its start-up done."""
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    mp.setenv("DEALERML_CONFIG", str(cfg))
    client = TestClient(service_app(), raise_server_exceptions=False)
    client.__enter__()
    svc = bentoml.get_current_service()
    svc._loader.join(timeout=120)
    assert not svc._loader.is_alive()
    client.headers["X-API-Key"] = KEY
    return client, svc


def _served(client, ids, **extra) -> tuple[dict, pd.Series]:
    r = client.post("/forecast", json={"series_ids": ids, "horizon": 3, **extra})
    assert r.status_code == 200, r.text
    body = r.json()
    mean = pd.Series({(s["unique_id"], p["ds"]): p["mean"] for s in body["series"] for p in s["forecast"]},
                     name="Final").rename_axis(["unique_id", "ds"])
    return body, mean


def _plan_cells(body) -> set[tuple[str, str, float]]:
    return {(s["unique_id"], p["ds"], p["drivers"]["promo"]) for s in body["series"] for p in s["forecast"]}


def _promo_summary(client) -> dict | None:
    info = client.get("/model_info").json()
    return next(m for m in info["models"] if m["name"] == "dealerml-demand")["summary"].get("promo_plan")


def _final(fc: pd.DataFrame) -> pd.Series:
    return fc.set_index(["unique_id", "ds"])["Final"]


def test_a_campaign_added_after_training_reaches_the_served_forecast(home, plain, caplog):
    # the same calendar as at training: the service says it read it, and nothing differs
    client, _ = _serve(home.mp, plain.cfg)
    try:
        assert client.get("/readyz").status_code == 200
        same = _promo_summary(client)
        body0, mean0 = _served(client, ["A", "B", "C"])
    finally:
        client.__exit__(None, None, None)
    pd.testing.assert_series_equal(mean0, _final(plain.before), rtol=1e-9)

    with open(plain.cfg.parent / "promo.csv", "a") as f:
        f.write(CAMPAIGN)
    cli = _final(_cli_forecast(plain.cfg, home.tmp / "plain" / "after.csv"))
    stock = _cli_stock(plain.cfg, home.tmp / "plain" / "stock.csv")
    caplog.set_level(logging.INFO, logger="dealerml.serving.demand")
    client, _ = _serve(home.mp, plain.cfg)
    try:
        assert client.get("/readyz").status_code == 200
        summary = _promo_summary(client)
        body, mean = _served(client, ["A", "B", "C"])
        ss = client.post("/safety_stock", json={"series_ids": ["A", "B", "C"], "service_level": 0.95})
        own = client.post("/forecast", json={"series_ids": ["B"], "horizon": 3,
                                             "drivers": [{"unique_id": "B", "ds": "2024-09-16", "promo": 0.0}]})
    finally:
        client.__exit__(None, None, None)
    # the served forecast is the CLI's under the table as it is now, and moved at B's campaign week only
    pd.testing.assert_series_equal(mean, cli, rtol=1e-9)
    # the plan differs at B's campaign week only; B's forecast moves from that week on (LightGBM's lags carry the
    # lifted week into the next ones), A's and C's not at all
    assert _plan_cells(body) - _plan_cells(body0) == {("B", "2024-09-16", 1.0)}
    moved = (mean - _final(plain.before)).abs() > 1e-9
    assert {u for u, _ in moved[moved].index} == {"B"} and moved[("B", "2024-09-16")]
    assert mean[("B", "2024-09-16")] > _final(plain.before)[("B", "2024-09-16")]  # the campaign lifts it
    # said: /model_info with its figures, every answer in a line, the log once
    assert summary["source"] == "promotions_table" and str(plain.cfg) not in str(summary)  # the log names the file
    assert (summary["periods_changed"], summary["series_changed"], summary["examples"]) == (1, 1, ["B"])
    assert "as read at start-up" in body["promo_plan"] and "1 period(s) of 1 series differ" in body["promo_plan"]
    assert ss.status_code == 200, ss.text
    assert ss.json()["promo_plan"] == body["promo_plan"]
    # and the stock is sized from that forecast, as `safety-stock --alias champion --config` sizes it
    for row in ss.json()["rows"]:
        for k in ("reorder_point", "order_up_to", "safety_stock"):
            assert row[k] == pytest.approx(stock.loc[row["unique_id"], k], rel=1e-9, abs=1e-9), (row["unique_id"], k)
    logged = [r.getMessage() for r in caplog.records if r.name == "dealerml.serving.demand"]
    assert [m for m in logged if "1 period(s) of 1 series differ" in m] == [f"{body['promo_plan']} (config {plain.cfg})"]
    # a request's own drivers still override the table's plan: B without the campaign is the trained forecast
    assert own.status_code == 200, own.text
    first = own.json()["series"][0]["forecast"][0]
    assert first["drivers"] == {"promo": 0.0}
    assert first["mean"] == pytest.approx(_final(plain.before)[("B", "2024-09-16")], rel=1e-9)
    # the same calendar as at training: read, and nothing differed
    assert same["source"] == "promotions_table" and (same["periods_changed"], same["series_changed"]) == (0, 0)


def test_a_bad_promotions_table_is_named_not_a_500(home, plain):
    # a table that cannot be read: the order book cannot be read, unready naming it, as
    # `safety-stock --alias champion --config` refuses it
    bad = plain.cfg.parent / "bad"
    bad.mkdir()
    (bad / "promo.csv").write_text("sku,start\nB,2024-09-16\n")
    cfg = bad / "c.yaml"
    cfg.write_text(plain.cfg.read_text().replace(str(plain.cfg.parent / "promo.csv"), str(bad / "promo.csv")))
    client, svc = _serve(home.mp, cfg)
    try:
        r = client.post("/forecast", json={"series_ids": ["B"], "horizon": 3})
        assert r.status_code == 503, r.text
        assert "promo.csv: promotions is missing required column(s): 'start_date'" in r.json()["error"]
        assert client.get("/readyz").status_code == 503
    finally:
        client.__exit__(None, None, None)

    # a table the champion's series cannot be matched with (demand.levels without sku now): the trained plan
    # stands, said in /model_info and every answer (forecast --alias --config says a note and keeps it too)
    (bad / "promo.csv").write_text((plain.cfg.parent / "promo.csv").read_text().replace(CAMPAIGN, "") + CAMPAIGN)
    cfg.write_text(cfg.read_text().replace("levels: [sku]", "levels: [location]"))
    client, _ = _serve(home.mp, cfg)
    try:
        assert client.get("/readyz").status_code == 200
        summary = _promo_summary(client)
        body, mean = _served(client, ["A", "B", "C"])
    finally:
        client.__exit__(None, None, None)
    assert summary["source"] == "trained" and summary["periods_changed"] == 0
    assert "could not be used" in summary["note"] and "demand.levels ['location'] has no sku" in summary["note"]
    assert body["promo_plan"] == summary["note"]
    pd.testing.assert_series_equal(mean, _final(plain.before), rtol=1e-9)


def test_a_hierarchical_champion_serves_the_tables_campaign_at_every_level(home, monkeypatch):
    own = home.tmp / "hier" / "home"  # its own registry: the plain champion keeps the alias in the module's
    monkeypatch.setenv("DEALERML_HOME", str(own))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{own / 'mlflow.db'}")
    cfg = _train(home.tmp / "hier", "demand: {freq: W, horizon: 3, windows: 1, drivers: [promo], levels: [sku, "
                 "location], hierarchy: true, models: [AutoETS, LightGBM], lgbm: {n_estimators: 40}, "
                 "selection_windows: 1}\n")
    before = _final(_cli_forecast(cfg, home.tmp / "hier" / "before.csv"))
    with open(cfg.parent / "promo.csv", "a") as f:
        f.write(CAMPAIGN)
    cli = _final(_cli_forecast(cfg, home.tmp / "hier" / "after.csv"))
    client, _ = _serve(monkeypatch, cfg)
    try:
        summary = _promo_summary(client)
        _, mean = _served(client, sorted({u for u, _ in cli.index}))
    finally:
        client.__exit__(None, None, None)
    pd.testing.assert_series_equal(mean.sort_index(), cli.sort_index(), rtol=1e-9)
    assert (summary["periods_changed"], summary["series_changed"], summary["examples"]) == (1, 1, ["B/ALL"])
    moved = (mean - before).abs() > 1e-9  # B's series and the levels above it, from the campaign week on
    assert {u for u, _ in moved[moved].index} == {"B/ALL", "B/*", "*/*"}
    assert moved[[("B/ALL", "2024-09-16"), ("B/*", "2024-09-16"), ("*/*", "2024-09-16")]].all()


def test_a_config_edited_after_training_splits_and_plans_as_the_champion_was_trained(home, located, monkeypatch,
                                                                                      caplog):
    """A plain champion trained on demand.levels [sku, location] and demand.freq W, served with a config that
    lists [location, sku] and says M: the ids split by the config's levels matched every campaign's SKU with a
    location (all dropped: A's planned campaign gone, B's new one not read, without a word) and answered sku
    'ALL'; the calendar read by months gave the weekly periods a share of 0. The service splits and plans as the CLI does now, and says so."""
    _use_home(monkeypatch, located.home)
    cfg = located.cfg
    with open(cfg.parent / "promo.csv", "a") as f:
        f.write(CAMPAIGN)
    edited = cfg.parent / "edited.yaml"
    edited.write_text(cfg.read_text().replace("freq: W", "freq: M").replace("levels: [sku, location]",
                                                                             "levels: [location, sku]"))
    cli = _final(_cli_forecast(edited, home.tmp / "edited" / "after.csv"))
    caplog.set_level(logging.INFO, logger="dealerml.serving.demand")
    client, _ = _serve(monkeypatch, edited)
    try:
        summary = _promo_summary(client)
        body, mean = _served(client, ["A/ALL", "B/ALL", "C/ALL"])
    finally:
        client.__exit__(None, None, None)
    assert summary["source"] == "promotions_table", summary
    assert (summary["periods_changed"], summary["series_changed"], summary["examples"]) == (1, 1, ["B/ALL"])
    assert ("B/ALL", "2024-09-16", 1.0) in _plan_cells(body)  # the whole week, not a share of a month
    assert {s["unique_id"]: s["keys"] for s in body["series"]}["B/ALL"] == {"sku": "B", "location": "ALL"}
    pd.testing.assert_series_equal(mean.sort_index(), cli.sort_index(), rtol=1e-9)  # as forecast --alias --config
    logged = [r.getMessage() for r in caplog.records if r.name == "dealerml.serving.demand"]
    assert (f"the champion's series ids are split into key columns (keys, filters, the promotions table) as "
            f"dealerml-demand's training run built its ids, demand.levels ['sku', 'location'], not the config's "
            f"['location', 'sku'] (config {edited})") in logged, logged
    assert "read for its periods of demand.freq W, which it was trained with, not the config's M" in \
        body["promo_plan"], body["promo_plan"]


def test_trained_periods_converts_the_configs_periods_to_the_champions():
    from training.commands._alias_plan import trained_periods
    from training.demand_config import DemandSettings

    weekly = SimpleNamespace(freq="W")
    monthly = DemandSettings(freq="M", review_period=1, cover_limit_periods=12)
    freq, review, cover, note = trained_periods(weekly, monthly, config="c.yaml", model="dealerml-demand@champion")
    assert (freq, review, cover) == ("W", pytest.approx(30.4375 / 7), pytest.approx(12 * 30.4375 / 7))
    assert note.startswith("stock sized in periods of demand.freq W, which dealerml-demand@champion was trained with, "
                           "not c.yaml's M: lead times in days / 7, demand.review_period 1 (M) = 4.348 periods"), note
    # a hierarchical champion's periods are its bottom forecaster's; the same freq: the config's values, no word
    hier = SimpleNamespace(bottom_=SimpleNamespace(freq="M"))
    assert trained_periods(hier, monthly, config="c.yaml", model="x") == ("M", 1.0, 12.0, "")


def test_stock_is_sized_in_the_periods_the_champion_was_trained_with(home, plain, caplog):
    """A config whose demand.freq was edited after training (the weekly champion, a config saying D, review every
    7 days): safety-stock --alias --config converted the lead times and review period by days (14 + 7 periods for a
    2-week lead time and weekly review: beyond the 3-week horizon, refused) and wrote freq D, and the service took
    the review period of 7 days as 7 weeks (a 422), silently. Both size in the champion's weeks now, as the unedited config does, and say so once; and
    `forecast --alias --config` says a levels note once (it split the keys twice)."""
    from typer.testing import CliRunner

    from training.cli import app

    daily = plain.cfg.parent / "daily.yaml"
    daily.write_text(plain.cfg.read_text().replace("freq: W,", "freq: D, review_period: 7,"))
    said = "stock sized in periods of demand.freq W, which dealerml-demand@champion was trained with, not "
    tables, outputs = {}, {}
    for name, cfg in (("weekly", plain.cfg), ("daily", daily)):
        out = home.tmp / "plain" / f"stock-{name}.csv"
        res = CliRunner().invoke(app, ["safety-stock", "--alias", "champion", "--config", str(cfg), "--out", str(out)])
        assert res.exit_code == 0, res.output
        tables[name] = pd.read_csv(out, dtype={"unique_id": str}).set_index("unique_id")
        outputs[name] = res.output
    assert said not in outputs["weekly"], outputs["weekly"]
    assert outputs["daily"].count(said) == 1, outputs["daily"]
    assert (f"{said}{daily}'s D: lead times in days / 7, demand.review_period 7 (D) = 1 periods, "
            "demand.cover_limit_periods 12 (D) = 1.714 periods") in outputs["daily"], outputs["daily"]
    weekly, sized = tables["weekly"], tables["daily"]
    assert sorted(sized.index) == ["A", "B", "C"] and set(sized["freq"]) == {"W"}
    assert sized["lead_time"].tolist() == [2.0, 2.0, 2.0] and sized["review_period"].tolist() == [1.0, 1.0, 1.0]
    cols = ["lead_time", "review_period", "safety_stock", "reorder_point", "order_up_to", "freq", "last_observed"]
    pd.testing.assert_frame_equal(sized[cols], weekly[cols])

    caplog.set_level(logging.INFO, logger="dealerml.serving.demand")
    client, _ = _serve(home.mp, daily)
    try:
        ss = client.post("/safety_stock", json={"series_ids": ["A", "B", "C"], "service_level": 0.95})
    finally:
        client.__exit__(None, None, None)
    assert ss.status_code == 200, ss.text
    body = ss.json()
    assert body["freq"] == "W" and body["review_period_days"] == pytest.approx(7.0), body["review_period_days"]
    for row in body["rows"]:
        for k in ("reorder_point", "order_up_to", "safety_stock"):
            assert row[k] == pytest.approx(sized.loc[row["unique_id"], k], rel=1e-9, abs=1e-9), (row["unique_id"], k)
    logged = [r.getMessage() for r in caplog.records if r.name == "dealerml.serving.demand"]
    assert [m for m in logged if "stock sized in periods" in m] == [
        "stock sized in periods of demand.freq W, which the champion was trained with, not the config's D: lead times "
        "in days / 7, demand.review_period 7 (D) = 1 periods, demand.cover_limit_periods 12 (D) = 1.714 periods "
        f"(config {daily})"], logged

    # forecast --alias --config: a config whose demand.levels are not the training run's, said once
    located = plain.cfg.parent / "located.yaml"
    located.write_text(plain.cfg.read_text().replace("levels: [sku]", "levels: [sku, location]"))
    res = CliRunner().invoke(app, ["forecast", "--alias", "champion", "--config", str(located), "--out",
                                   str(home.tmp / "plain" / "located.csv")])
    assert res.exit_code == 0, res.output
    assert res.output.count("as dealerml-demand's training run built its ids, demand.levels ['sku'], not") == 1, \
        res.output


def test_stock_keys_are_split_as_the_champion_was_trained(home, located, monkeypatch):
    """safety-stock --alias --config with a config listing demand.levels [location, sku] since the champion was
    trained on [sku, location]: the file's sku and location were split by the config's levels (sku ALL, location
    A: swapped) and an --on-hand file keyed by sku, location was read as ids ALL/A (none matched, refused). They
    are split as the training run built the ids now, as forecast --alias and the service do, and said once."""
    from typer.testing import CliRunner

    from training.cli import app

    _use_home(monkeypatch, located.home)
    swapped = located.cfg.parent / "swapped.yaml"
    swapped.write_text(located.cfg.read_text().replace("levels: [sku, location]", "levels: [location, sku]"))
    stock = located.cfg.parent / "stock.csv"
    stock.write_text("sku,location,on_hand\nA,ALL,5\nB,ALL,50\nC,ALL,500\n")
    said = (f"the key columns are written as dealerml-demand's training run built its ids, demand.levels "
            f"['sku', 'location'], not {swapped}'s ['location', 'sku']")
    tables = {}
    for name, cfg, extra in (("as_trained", located.cfg, []), ("swapped", swapped, []),
                             ("swapped_on_hand", swapped, ["--on-hand", str(stock)])):
        out = located.cfg.parent / f"stock-{name}.csv"
        res = CliRunner().invoke(app, ["safety-stock", "--alias", "champion", "--config", str(cfg), "--out", str(out),
                                       *extra])
        assert res.exit_code == 0, res.output
        assert res.output.count(said) == (0 if name == "as_trained" else 1), res.output
        tables[name] = pd.read_csv(out, dtype=str).set_index("unique_id")
        trained = tables["as_trained"]
        pd.testing.assert_frame_equal(tables[name][["sku", "location"]], trained[["sku", "location"]])
    assert sorted(trained.index) == ["A/ALL", "B/ALL", "C/ALL"]
    assert trained["sku"].tolist() == [u.split("/")[0] for u in trained.index] and set(trained["location"]) == {"ALL"}
    # each series got its own row's stock: A 5, B 50, C 500 units
    on_hand = tables["swapped_on_hand"].set_index("sku")["on_hand"].astype(float).to_dict()
    assert on_hand == {"A": 5.0, "B": 50.0, "C": 500.0}, on_hand

    # the book's lead_times table (a row per SKU, every location) keyed the series ALL/A by the edited config's
    # levels: the champion's A/ALL found none and were all left out as "not among this run's demand series".
    # Each gets its own row's lead time now: A 3.5 days, B 7, C 14 (weeks 0.5, 1, 2; within the 3-week horizon)
    (located.cfg.parent / "lt.csv").write_text("sku,location,lead_time_days\nA,,3.5\nB,,7\nC,,14\n")
    timed = located.cfg.parent / "swapped-lt.yaml"
    text = swapped.read_text()
    timed.write_text(text.replace("  promotions:", f"  lead_times: {{path: {located.cfg.parent / 'lt.csv'}}}\n"
                                                   "  promotions:", 1))
    out = located.cfg.parent / "stock-swapped-lt.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--alias", "champion", "--config", str(timed), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "not among this run's demand series" not in res.output, res.output
    sized = pd.read_csv(out, dtype={"unique_id": str, "sku": str, "location": str}).set_index("unique_id")
    assert sorted(sized.index) == ["A/ALL", "B/ALL", "C/ALL"]
    assert sized["lead_time_days"].to_dict() == {"A/ALL": 3.5, "B/ALL": 7.0, "C/ALL": 14.0}
    assert sized["lead_time"].to_dict() == pytest.approx({"A/ALL": 0.5, "B/ALL": 1.0, "C/ALL": 2.0})
    assert set(sized["lead_time_source"]) == {"lead_times"}
    pd.testing.assert_frame_equal(sized[["sku", "location"]].sort_index(), trained[["sku", "location"]].sort_index())
    # stock of a champion series below today's demand.top_n: a no_policy row saying so (it said no_sales: the
    # run's ids below top_n were ALL/<sku>), under the champion's id
    top = located.cfg.parent / "swapped-top.yaml"
    top.write_text(timed.read_text().replace("demand: {", "demand: {top_n: 2, ", 1))
    out = located.cfg.parent / "stock-swapped-top.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--alias", "champion", "--config", str(top), "--out", str(out),
                                   "--on-hand", str(stock)])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(out, dtype={"unique_id": str, "sku": str, "location": str}).set_index("unique_id")
    none = rows[rows["action"] == "no_policy"]
    assert len(none) == 1 and none["no_policy_reason"].tolist() == ["below_top_n"], none
    assert none.index[0] in {"A/ALL", "B/ALL", "C/ALL"} and none["location"].tolist() == ["ALL"], none


def test_a_table_changed_after_start_up_makes_the_demand_model_stale(home, plain, caplog):
    # models and tables are read once: a campaign added while the service runs reaches the answers at a
    # restart; until then the champion check (every $DEALERML_SERVE_CHAMPION_CHECK_SECONDS) says so
    import threading
    import time

    from serving._promo_watch import check_promotions
    from serving.loader import watch_champions

    own = plain.cfg.parent / "watched"
    own.mkdir()
    table = own / "promo.csv"
    first = (plain.cfg.parent / "promo.csv").read_text().replace(CAMPAIGN, "")
    table.write_text(first)
    cfg = own / "c.yaml"
    cfg.write_text(plain.cfg.read_text().replace(str(plain.cfg.parent / "promo.csv"), str(table)))
    caplog.set_level(logging.INFO, logger="dealerml.serving.demand")
    client, svc = _serve(home.mp, cfg)
    # the service's own check loop, every 0.2 s here (60 s by default), stopped with the test
    stop = threading.Event()
    watcher = threading.Thread(target=watch_champions, args=(svc.state, 0.2, None, stop), daemon=True)
    watcher.start()

    def info() -> dict:
        return next(m for m in client.get("/model_info").json()["models"] if m["name"] == "dealerml-demand")

    def put(text: str) -> None:  # written beside and renamed in: the 0.2 s check never reads a half-written file
        tmp = table.with_name("promo.csv.part")
        tmp.write_text(text)
        tmp.replace(table)

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "dealerml.serving.demand"
                and r.levelno == logging.WARNING and "promotions table" in r.getMessage()]

    try:
        time.sleep(1.0)  # the check ran a few times: the same table, nothing said
        assert info()["stale"] is False and info()["stale_reason"] is None and warned() == []
        _, before = _served(client, ["B"])
        # the same campaigns in another row order and a touched file: not a change
        put(first.splitlines()[0] + "\n" + "\n".join(reversed(first.splitlines()[1:])) + "\n")
        check_promotions(svc.state)
        assert info()["stale"] is False and warned() == []

        put(first + CAMPAIGN)  # marketing adds B's campaign: the running service's own check sees it
        deadline = time.monotonic() + 30
        while not info()["stale"] and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()  # the checks below are called directly, not raced by the loop
        watcher.join(timeout=30)
        d = info()
        assert d["stale"] is True and d["registry_champion"] == d["version"] == "1", d
        assert d["stale_reason"].startswith("the promotions table (data.promotions) has changed since start-up (read at "
                                            f"{d['summary']['promo_plan']['read_at']}; a difference seen at ")
        assert d["stale_reason"].endswith(": the forecasts and safety stock of dealerml-demand version 1 are still "
                                          "planned under the campaigns read at start-up: restart the service to plan "
                                          "under the table as it is now (no retraining needed)")
        assert str(table) not in d["stale_reason"] and client.get("/readyz").status_code == 200
        # the answers are still those planned at start-up: B's campaign week is not lifted until a restart
        _, still = _served(client, ["B"])
        pd.testing.assert_series_equal(still, before)
        check_promotions(svc.state)
        assert warned() == [f"{d['stale_reason']} ({table})"]  # said once per change, the log names the file

        table.unlink()  # gone: a restart would stay unready, said with the error
        check_promotions(svc.state)
        d = info()
        assert d["stale"] is True and d["stale_reason"].startswith(
            "the promotions table (data.promotions) could not be read at the last check (") and \
            d["stale_reason"].endswith("and a restart would stay unready until it is fixed")
        assert len(warned()) == 2

        put(first)  # back to what was read at start-up: no longer stale
        check_promotions(svc.state)
        assert info()["stale"] is False and info()["stale_reason"] is None
        assert any("is as read at start-up again" in r.getMessage() for r in caplog.records)
    finally:
        stop.set()
        client.__exit__(None, None, None)
