"""A hierarchical demand champion end to end: ``train demand`` with ``demand.hierarchy: true``
backtests and registers the coherent forecaster (real MLflow store under tmp_path, real
registry), and the service (``DealerML.to_asgi()``, its real loader reading that champion and
the order book) answers every level: SKU x location series under their plain ids, SKU totals
as ``<sku>/*``, the total as ``*/*``, adding up; safety stock only at SKU x location.

Small: the session's synthetic network, its 8 largest SKU x location series, SeasonalNaive +
LightGBM (20 trees, promo as a driver), horizon 4, one backtest window, no replay.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import write_config

KEY = "hier-admin-key-0001"
H = 4


@pytest.fixture(scope="module")
def trained(synthetic_config, tmp_path_factory):
    from typer.testing import CliRunner

    from training.cli import app

    tmp = tmp_path_factory.mktemp("hier")
    demand = {"freq": "W", "horizon": H, "windows": 1, "models": ["SeasonalNaive", "LightGBM"], "lgbm": {"n_estimators": 20},
              "selection_windows": 1, "top_n": 8, "levels": ["sku", "location"], "hierarchy": True,
              "n_sims": 500, "lead_time_days": 7.0, "drivers": ["promo"]}
    cfg = write_config(synthetic_config, tmp / "hier.yaml", demand=demand)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        res = CliRunner().invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay",
                                       "--json", str(tmp / "report.json")])
        assert res.exit_code == 0, res.output
        from training import tracking

        est, info = tracking.load_model("dealerml-demand", alias="champion")
        yield SimpleNamespace(tmp=tmp, cfg=cfg, output=res.output, est=est, info=info,
                              report=json.loads((tmp / "report.json").read_text()), mp=mp)


def test_train_demand_backtests_and_registers_the_coherent_forecaster(trained):
    from models.demand_hier import HierarchicalDemandForecaster

    est, rep = trained.est, trained.report
    assert isinstance(est, HierarchicalDemandForecaster) and est.bottom_.exog_ == ["promo"]
    by_level = rep["hierarchy"]["by_level"]
    assert list(by_level) == ["total", "sku", "sku/location"]
    assert by_level["total"]["n_series"] == 1 and by_level["sku/location"]["n_series"] == 8
    # the per-level table prints coverage beside MASE, with the report's numbers
    line = next(x for x in trained.output.splitlines() if x.startswith("sku/location"))
    fin = by_level["sku/location"]["metrics"]["Final"]
    assert line.split()[2:6] == ["Final", f"{fin['mase']:.3f}", f"{fin['coverage_80']:.2f}", f"{fin['coverage_95']:.2f}"]
    assert "cov80" in trained.output.splitlines()[[i for i, x in enumerate(trained.output.splitlines())
                                                   if x.startswith("level")][0]]
    # the bottom level's report is the top-level one
    assert rep["metrics"]["Final"]["mase"] == pytest.approx(fin["mase"])
    # per-level metrics logged on the run; the model's metadata carries them for /model_info
    import mlflow

    from training import tracking

    tracking.tracking_uri()
    metrics = mlflow.get_run(trained.info.run_id).data.metrics
    assert metrics["Final.mase__level.sku"] == pytest.approx(by_level["sku"]["metrics"]["Final"]["mase"])
    assert metrics["Final.coverage_95__level.total"] == pytest.approx(by_level["total"]["metrics"]["Final"]["coverage_95"])
    # the pyfunc model answers in served ids, every level
    pyf = mlflow.pyfunc.load_model("models:/dealerml-demand@champion")
    sku = est.nodes_.loc[est.nodes_["level"] == "sku", "served_id"].iloc[0]
    got = pyf.predict(pd.DataFrame({"unique_id": [sku, "*/*"], "h": [2, 2]}))
    assert sorted(got["unique_id"].unique()) == sorted([sku, "*/*"]) and len(got) == 4
    assert set(got["level"]) == {"sku", "total"}


def test_batch_forecast_and_safety_stock_from_the_hierarchical_champion(trained):
    from typer.testing import CliRunner

    from training.cli import app

    out = trained.tmp / "fc.csv"
    res = CliRunner().invoke(app, ["forecast", "--alias", "champion", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    nodes = trained.est.nodes_
    assert sorted(fc["unique_id"].unique()) == sorted(nodes["served_id"])  # the ids the service answers
    assert dict(zip(fc["node_id"], fc["unique_id"], strict=False)) == dict(zip(nodes["unique_id"], nodes["served_id"],
                                                                             strict=True))
    ss = trained.tmp / "ss.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(trained.cfg), "--alias", "champion",
                                   "--out", str(ss)])
    assert res.exit_code == 0, res.output
    pol = pd.read_csv(ss)
    # SKU x location series only (those whose lead time fits h); the stock of the others is a
    # row with action no_policy and its reason
    none = pol["action"] == "no_policy"
    sized = pol.loc[~none, "unique_id"]
    assert len(sized) and set(sized) <= set(nodes.loc[nodes["level"] == "sku/location", "served_id"])
    assert pol.loc[none, "no_policy_reason"].notna().all() and pol.loc[none, "reorder_point"].isna().all()
    # the config's demand.top_n leaves most SKU x location series out of the champion; a few lead times
    # exceed its horizon
    why = pol.loc[none].set_index("unique_id")
    assert set(why["no_policy_reason"]) == {"below_top_n", "lead_time_beyond_horizon"}
    assert why["suggestion"].str.startswith("no policy for ").all()
    assert why.loc[why["no_policy_reason"] == "lead_time_beyond_horizon", "suggestion"].str.contains(
        "exceeds the champion's .*-period horizon \\(set demand.horizon to at least", regex=True).all()
    assert not set(why.index) & set(sized)


@pytest.fixture(scope="module")
def client(trained):
    import bentoml
    from _serving_app import service_app
    from starlette.testclient import TestClient

    mp = trained.mp
    mp.setenv("DEALERML_CONFIG", str(trained.cfg))
    mp.setenv("DEALERML_API_KEYS", f"{KEY}:*")
    mp.setenv("DEALERML_SERVE_MODELS", "demand")

    with TestClient(service_app(), raise_server_exceptions=False) as c:
        svc = bentoml.get_current_service()
        svc._loader.join(timeout=120)
        assert c.get("/readyz").status_code == 200, svc.state.slots["demand"].describe()
        c.headers["X-API-Key"] = KEY
        yield c


def _summary(client) -> dict:
    info = client.get("/model_info").json()
    return next(m for m in info["models"] if m["name"] == "dealerml-demand")["summary"]


def test_model_info_says_hierarchical_and_lists_the_levels(client, trained):
    info = next(m for m in client.get("/model_info").json()["models"] if m["name"] == "dealerml-demand")
    by_level = trained.report["hierarchy"]["by_level"]
    assert info["backtest_metrics"]["by_level.sku.coverage_80"] == pytest.approx(by_level["sku"]["metrics"]["Final"]["coverage_80"])
    assert info["backtest_metrics"]["mase"] == pytest.approx(trained.report["metrics"]["Final"]["mase"])
    s = _summary(client)
    hz = s["hierarchy"]
    assert hz["method"] == "bottom_up" and hz["key_columns"] == ["sku", "location"]
    assert [(lv["level"], lv["ids"]) for lv in hz["levels"]] == [
        ("total", "*/*"), ("sku", "<sku>/*"), ("sku/location", "<sku>/<location>")]
    n_sku = trained.est.nodes_["level"].eq("sku").sum()
    assert [lv["n_series"] for lv in hz["levels"]] == [1, n_sku, 8] and s["n_series"] == 9 + n_sku
    assert hz["safety_stock_level"] == "sku/location"
    assert s["drivers"] == ["promo"]  # the bottom level's drivers: a plan re-runs it and every level is reconciled


def test_forecast_answers_every_level_coherently(client, trained):
    s = _summary(client)
    bottom = client.post("/forecast", json={"location": s["filters"]["location"], "horizon": H}).json()["series"]
    # filters select SKU x location series, under the plain model's ids
    assert len(bottom) == 8
    assert all(b["unique_id"] == f"{b['keys']['sku']}/{b['keys']['location']}" for b in bottom)
    skus = sorted({b["keys"]["sku"] for b in bottom})
    body = client.post("/forecast", json={"series_ids": ["*/*", *[f"{k}/*" for k in skus]], "horizon": H,
                                          "quantiles": [0.1, 0.9]})
    assert body.status_code == 200, body.text
    upper = {x["unique_id"]: x for x in body.json()["series"]}
    assert upper["*/*"]["keys"] == {} and upper[f"{skus[0]}/*"]["keys"] == {"sku": skus[0]}
    assert {x["model"] for x in upper.values()} == {"bottom_up"}
    # each series says its level, named by the key columns (as /model_info lists them)
    assert upper["*/*"]["level"] == "total" and {upper[f"{k}/*"]["level"] for k in skus} == {"sku"}
    assert {b["level"] for b in bottom} == {"sku/location"}
    mean = lambda x: np.array([p["mean"] for p in x["forecast"]])  # noqa: E731
    for k in skus:
        np.testing.assert_allclose(mean(upper[f"{k}/*"]), sum(mean(b) for b in bottom if b["keys"]["sku"] == k),
                                   rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mean(upper["*/*"]), sum(mean(upper[f"{k}/*"]) for k in skus), rtol=1e-6)
    for x in [*upper.values(), *bottom]:  # every band holds its point
        for p in x["forecast"]:
            for iv in p["intervals"]:
                assert iv["lo"] - 1e-9 <= p["mean"] <= iv["hi"] + 1e-9
    # bottom-up: the SKU x location forecast is the bottom forecaster's own (as a plain champion's)
    own = trained.est.bottom_.predict(H).set_index(["unique_id", "ds"])["Final"]
    for b in bottom:
        want = own.loc[b["unique_id"]].to_numpy()
        np.testing.assert_allclose(mean(b), want, rtol=1e-9)


def test_upper_levels_get_no_safety_stock(client):
    s = _summary(client)
    b = client.post("/forecast", json={"location": s["filters"]["location"][:1], "horizon": 1}).json()["series"][0]
    sku_id = f"{b['keys']['sku']}/*"
    for ids in ([sku_id], ["*/*"], [b["unique_id"], sku_id]):
        r = client.post("/safety_stock", json={"series_ids": ids, "service_level": 0.95, "lead_time_days": 7})
        assert r.status_code == 422, r.text
        assert "sized per sku x location" in r.json()["error"] and ids[-1] in r.json()["error"]
    ok = client.post("/safety_stock", json={"series_ids": [b["unique_id"]], "service_level": 0.95, "lead_time_days": 7})
    assert ok.status_code == 200, ok.text
    assert ok.json()["rows"][0]["safety_stock"] >= 0
    r = client.post("/forecast", json={"series_ids": ["NO-SUCH-SKU/*"]})
    assert r.status_code == 404


def test_a_plain_champion_is_served_as_before(trained):
    """The same bottom forecaster served as a plain champion: same ids, same numbers, no levels."""
    from serving.demand import DemandBackend
    from serving.schemas import ForecastRequest
    from training.config import load_config

    cfg = load_config(trained.cfg)
    plain = DemandBackend.build(trained.est.bottom_, SimpleNamespace(name="dealerml-demand", version="9"), None, cfg)
    hier = DemandBackend.build(trained.est, SimpleNamespace(name="dealerml-demand", version="1"), None, cfg)
    assert "hierarchy" not in plain.summary() and plain.hierarchy is None and not plain.upper_rows
    assert plain.summary()["drivers"] == ["promo"]
    bottom = [u for u in hier.uids if hier.row[u] not in hier.upper_rows]
    assert sorted(plain.uids) == sorted(bottom)
    a = plain.forecast(ForecastRequest(series_ids=bottom, horizon=H))["series"]
    b = hier.forecast(ForecastRequest(series_ids=bottom, horizon=H))["series"]
    assert [x["keys"] for x in a] == [x["keys"] for x in b]
    assert {x["level"] for x in a} == {None} and {x["level"] for x in b} == {"sku/location"}
    np.testing.assert_allclose([p["mean"] for x in a for p in x["forecast"]],
                               [p["mean"] for x in b for p in x["forecast"]], rtol=1e-9)


def _planned_series(client) -> tuple[dict, float]:
    """A SKU x location series its LightGBM member serves (it reads the promo driver) and a promo value
    other than the one it carries in its first period."""
    s = _summary(client)
    bottom = client.post("/forecast", json={"location": s["filters"]["location"], "horizon": H}).json()["series"]
    b = next(x for x in bottom if x["model"] in ("LightGBM", "Ensemble"))
    now = b["forecast"][0]["drivers"]["promo"]
    return b, (1.0 if now < 0.5 else 0.0)


def test_a_plan_moves_the_series_and_its_parents_by_the_same_amount(client):
    b, promo = _planned_series(client)
    sku = f"{b['keys']['sku']}/*"
    ids = [b["unique_id"], sku, "*/*"]
    mean = lambda body: {x["unique_id"]: np.array([p["mean"] for p in x["forecast"]])  # noqa: E731
                         for x in body["series"]}
    before = client.post("/forecast", json={"series_ids": ids, "horizon": H}).json()
    plan = [{"unique_id": b["unique_id"], "ds": p["ds"], "promo": promo} for p in b["forecast"]]
    r = client.post("/forecast", json={"series_ids": ids, "horizon": H, "drivers": plan})
    assert r.status_code == 200, r.text
    after = r.json()
    d = {u: mean(after)[u] - mean(before)[u] for u in ids}
    assert np.abs(d[b["unique_id"]]).max() > 1e-6  # the plan moves the series ...
    for u in (sku, "*/*"):  # ... and each parent by as much (bottom-up)
        np.testing.assert_allclose(d[u], d[b["unique_id"]], rtol=1e-6, atol=1e-6)
    got = {x["unique_id"]: x for x in after["series"]}
    assert got[b["unique_id"]]["drivers"] == "planned" and got[sku]["drivers"] is None
    assert [p["drivers"] for p in got[b["unique_id"]]["forecast"]] == [{"promo": promo}] * H
    assert got["*/*"]["forecast"][0]["drivers"] is None and got["*/*"]["model"] == "bottom_up"
    # a plan for a series not asked for still reaches its asked-for parent
    r = client.post("/forecast", json={"series_ids": [sku], "horizon": H, "drivers": plan}).json()
    np.testing.assert_allclose(mean(r)[sku], mean(after)[sku], rtol=1e-9)
    # stock is sized from the coherent forecast under the plan
    ss = client.post("/safety_stock", json={"series_ids": [b["unique_id"]], "service_level": 0.95,
                                            "lead_time_days": 7, "drivers": plan})
    assert ss.status_code == 200, ss.text
    assert ss.json()["rows"][0]["drivers"] == "planned"


def test_bad_plans_are_refused_naming_the_ids(client):
    b, promo = _planned_series(client)
    sku, ds = f"{b['keys']['sku']}/*", b["forecast"][0]["ds"]
    r = client.post("/forecast", json={"series_ids": [sku], "drivers": [
        {"unique_id": sku, "ds": ds, "promo": promo}, {"unique_id": b["unique_id"], "ds": ds, "promo": 1 - promo}]})
    assert r.status_code == 422, r.text
    assert "different ids" in r.json()["error"] and sku in r.json()["error"] and b["unique_id"] in r.json()["error"]
    r = client.post("/forecast", json={"series_ids": [sku], "drivers": [{"unique_id": "NOPE/x", "ds": ds, "promo": 1}]})
    assert r.status_code == 422 and "'NOPE/x' is not a series the champion forecasts" in r.json()["error"]
    # a summed id plans every series below it: the same as planning each of them
    one = client.post("/forecast", json={"series_ids": ["*/*"], "drivers": [{"unique_id": sku, "ds": ds, "promo": promo}]})
    assert one.status_code == 200, one.text


def test_a_range_warning_names_the_summed_id_as_sent(client, trained):
    """A plan row for `<sku>/*` with a promo far outside the trained range was warned about, by the service and
    by `forecast --future`, as the SKU x location series it was spread to, counted once each; both now name the
    id as sent, count the one row, and say how many series it reached."""
    from typer.testing import CliRunner

    from training.cli import app

    b, _ = _planned_series(client)
    sku, ds = f"{b['keys']['sku']}/*", b["forecast"][0]["ds"]
    n = trained.est.bottom_plan(pd.DataFrame({"unique_id": [sku], "ds": [ds], "promo": [7.0]}))["unique_id"].nunique()
    assert n >= 2  # a SKU at several locations: the warning named one of them, and counted n rows
    r = client.post("/forecast", json={"series_ids": [sku], "drivers": [{"unique_id": sku, "ds": ds, "promo": 7}]})
    assert r.status_code == 200, r.text
    w = r.json()["warnings"][0]
    assert (w["kind"], w["driver"], w["rows"], w["of_rows"], w["above"]) == ("value", "promo", 1, 1, 1)
    assert w["examples"] == [{"unique_id": sku, "ds": ds, "value": 7.0, "relative": None, "series": n,
                              "series_outside": n}]
    assert "in 1 of 1 planned row (1 above " in w["message"] and f"{sku} {ds} 7 (its {n} series);" in w["message"]
    plan = trained.tmp / "sku_plan.csv"
    pd.DataFrame({"unique_id": [sku], "ds": [ds], "promo": [7.0]}).to_csv(plan, index=False)
    res = CliRunner().invoke(app, ["forecast", "--alias", "champion", "--out", str(trained.tmp / "fc_sku.csv"),
                                   "--future", str(plan)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert f"warning: --future {plan}: promo is outside the range the forecast responds to in 1 of 1 planned row " in said
    assert f"{sku} {ds} 7 (its {n} series);" in said and b["unique_id"] + f" {ds} 7" not in said


def test_forecast_alias_takes_a_plan_file(trained):
    from typer.testing import CliRunner

    from training.cli import app

    est = trained.est
    fc0 = est.served(est.predict(H)).set_index(["unique_id", "ds"])["Final"]
    bottom = est.bottom_.predict(H)
    uid = bottom.loc[bottom["final_model"].isin(["LightGBM", "Ensemble"]), "unique_id"].iloc[0]
    carried = est.future_drivers().query("unique_id == @uid")
    plan = carried.assign(promo=np.where(carried["promo"] < 0.5, 1.0, 0.0))
    plan.to_csv(trained.tmp / "plan.csv", index=False)
    out, used = trained.tmp / "fc_plan.csv", trained.tmp / "used.csv"
    res = CliRunner().invoke(app, ["forecast", "--alias", "champion", "--out", str(out), "--future",
                                   str(trained.tmp / "plan.csv"), "--drivers-out", str(used)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out, parse_dates=["ds"]).set_index(["unique_id", "ds"])["Final"]
    d = (fc - fc0).unstack("ds")
    sku = uid.split("/")[0] + "/*"
    assert np.abs(d.loc[uid]).max() > 1e-6
    np.testing.assert_allclose(d.loc[sku], d.loc[uid], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d.loc["*/*"], d.loc[uid], rtol=1e-6, atol=1e-6)
    u = pd.read_csv(used)
    assert u.loc[u["unique_id"] == uid, "promo"].tolist() == plan["promo"].tolist()
    bad = trained.tmp / "bad.csv"
    pd.DataFrame({"unique_id": [sku, uid], "ds": [plan["ds"].iloc[0]] * 2, "promo": [0.0, 1.0]}).to_csv(bad, index=False)
    res = CliRunner().invoke(app, ["forecast", "--alias", "champion", "--out", str(trained.tmp / "no.csv"),
                                   "--future", str(bad)])
    assert res.exit_code != 0 and f"--future {bad}" in res.output and "different ids" in res.output, res.output
    assert not (trained.tmp / "no.csv").exists()
