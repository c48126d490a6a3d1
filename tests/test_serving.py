"""The service end to end: a real ``bentoml serve`` on champions trained by the real CLI.

One module-scoped home (``$DEALERML_HOME`` in tmp): a small synthetic network, champions of
dealerml-demand / -churn / -dealers trained and registered with ``dealerml train ...`` into
a real MLflow store, and one server on a free port. Results are compared with the batch CLI
(``dealerml score churn``, ``forecast``, ``safety-stock``, ``score dealers``, ``alerts``) for
the same models. The corrupt-model test runs last in this module: it registers a corrupt
champion, checks the service stays unready and says why, rolls back and checks it gets ready.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import bentoml
import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import in_env

from serving.devserver import LocalServer, prepare_home

pytestmark = pytest.mark.slow

FC_KEY, CRM_KEY, SALES_KEY, ADMIN_KEY = "fc-key-000001", "crm-key-00001", "sales-key-0001", "adm-key-000001"
KEYS = f"{FC_KEY}:forecast;{CRM_KEY}:churn;{SALES_KEY}:dealers;{ADMIN_KEY}:*"
ENDPOINTS = {  # path -> (method, scope, a valid body)
    "/forecast": ("POST", "forecast", {"location": ["DC1"], "horizon": 2}),
    "/safety_stock": ("POST", "forecast", {"series_ids": ["X"], "lead_time_days": 7}),
    "/churn_scores": ("POST", "churn", {"account_ids": ["D00001"]}),
    "/churn_alerts": ("GET", "churn", None),
    "/dealer_scores": ("POST", "dealers", {"top_k": 3}),
}
SCOPE_KEY = {"forecast": FC_KEY, "churn": CRM_KEY, "dealers": SALES_KEY}


def _cli(home: Path, *args: str) -> str:
    """``dealerml <args>`` on ``home``, in-process (the batch side of a comparison: what is checked is
    what the command writes, not the process boundary; a subprocess per call paid the interpreter and
    the imports again, ~5 CPU-s each)."""
    from typer.testing import CliRunner

    from training.cli import app

    res = CliRunner().invoke(app, list(args), env={"DEALERML_HOME": str(home), "MLFLOW_TRACKING_URI": None})
    assert res.exit_code == 0, f"dealerml {' '.join(args)} failed ({res.exit_code}):\n{res.output[-3000:]}\n{res.exception!r}"
    return res.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh home with champions trained by the CLI (about a minute on an idle 2-core box)."""
    reuse = os.environ.get("DEALERML_TEST_SERVING_HOME")  # developer shortcut: a home prepare_home built
    if reuse:
        return Path(reuse), Path(reuse) / "synthetic" / "serving.yaml"
    h = tmp_path_factory.mktemp("serving-home")
    config = prepare_home(h)
    return h, config


@pytest.fixture(scope="module")
def server(home):
    h, config = home
    env = {"DEALERML_HOME": str(h), "DEALERML_CONFIG": str(config), "DEALERML_API_KEYS": KEYS}
    with LocalServer(env=env, log_path=h / "server.log") as srv:
        yield srv


def _post(srv, path, body, key=ADMIN_KEY, timeout=60):
    return httpx.post(srv.url + path, json=body, headers={"X-API-Key": key} if key else {}, timeout=timeout)


def _get(srv, path, key=ADMIN_KEY, params=None):
    return httpx.get(srv.url + path, headers={"X-API-Key": key} if key else {}, params=params, timeout=60)


def _all_accounts(srv) -> list[str]:
    r = _post(srv, "/dealer_scores", {"top_k": 5000})
    assert r.status_code == 200
    return [d["account_id"] for d in r.json()["dealers"]]


# ----------------------------------------------------------------- probes, info, auth
def test_probes_metrics_and_model_info(server):
    for p in ("/livez", "/readyz", "/metrics"):
        assert httpx.get(server.url + p).status_code == 200, p
    _post(server, "/dealer_scores", {"top_k": 1})
    metrics = httpx.get(server.url + "/metrics").text
    assert "bentoml_service_request_total" in metrics and 'endpoint="/dealer_scores"' in metrics
    info = _get(server, "/model_info").json()  # admin: every model in full, the config
    assert info["ready"] is True and info["config"] and "other_models" not in info
    by_name = {m["name"]: m for m in info["models"]}
    assert set(by_name) == {"dealerml-demand", "dealerml-churn", "dealerml-dealers"}
    for m in by_name.values():
        assert m["status"] == "ready" and m["version"] == "1" and m["alias"] == "champion"
        assert m["run_id"] and m["training_window"] and m["backtest_metrics"] and m["error"] is None
    assert "mase" in json.dumps(by_name["dealerml-demand"]["backtest_metrics"])
    window = by_name["dealerml-demand"]["training_window"]  # dates, not "2022-01-03 00:00:00"
    assert len(window["start"]) == len(window["end"]) == 10, window
    pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
    assert "auc" in json.dumps(by_name["dealerml-churn"]["backtest_metrics"])
    crm = _get(server, "/model_info", key=CRM_KEY).json()  # a churn key: churn in full, the others by status
    assert crm["ready"] is True and crm["config"] is None and [m["name"] for m in crm["models"]] == ["dealerml-churn"]
    assert crm["models"][0]["run_id"] == by_name["dealerml-churn"]["run_id"] and crm["models"][0]["backtest_metrics"]
    assert crm["other_models"] == [{"name": "dealerml-demand", "status": "ready"},
                                   {"name": "dealerml-dealers", "status": "ready"}]


def test_every_data_endpoint_needs_a_key_with_its_scope(server):
    for path, (method, scope, body) in ENDPOINTS.items():
        def call(key, path=path, method=method, body=body):
            return httpx.request(method, server.url + path, json=body, headers={"X-API-Key": key} if key else {})

        r = call(None)
        assert r.status_code == 401 and r.json()["error"] == "missing or invalid API key", path
        assert call("not-a-valid-key").status_code == 401, path
        other = next(k for s, k in SCOPE_KEY.items() if s != scope)
        r = call(other)
        assert r.status_code == 403 and f"'{scope}' scope" in r.json()["error"], path
        assert call(SCOPE_KEY[scope]).status_code in (200, 404), path  # 404: the dummy id above
    assert _get(server, "/model_info", key=None).status_code == 401
    # bentoml's own client with the key as a bearer token
    with bentoml.SyncHTTPClient(server.url, token=SALES_KEY) as client:
        out = client.dealer_scores({"top_k": 2})
    assert [d["rank"] for d in out["dealers"]] == [1, 2]


def test_responses_follow_the_published_schemas(server):
    """Bodies are built as plain JSON for speed; they must still validate against the schemas."""
    from serving import schemas

    accounts = _all_accounts(server)
    scored = _post(server, "/churn_scores", {"account_ids": accounts})
    ids = [a for a in accounts if a not in set(scored.json().get("unknown_ids", []))]
    checks = [
        (schemas.ForecastResponse, _post(server, "/forecast", {"location": ["DC1"], "quantiles": [0.1, 0.9]})),
        (schemas.SafetyStockResponse, _post(server, "/safety_stock", {"series_ids": [
            _post(server, "/forecast", {"location": ["DC2"], "horizon": 1}).json()["series"][0]["unique_id"]],
            "lead_time_days": 10})),
        (schemas.ChurnScoresResponse, _post(server, "/churn_scores", {"account_ids": ids})),
        (schemas.ChurnAlertsResponse, _get(server, "/churn_alerts")),
        (schemas.DealerScoresResponse, _post(server, "/dealer_scores", {"top_k": 5000})),
        (schemas.ModelInfoResponse, _get(server, "/model_info")),
    ]
    for model, r in checks:
        assert r.status_code == 200, (model.__name__, r.text[:300])
        model.model_validate(r.json())


def test_curl_examples_answer(server):
    """The curl lines printed for the demo run as they are and answer 200 with JSON."""
    from serving.examples import curl_examples, curl_examples_static

    lines = [x for x in curl_examples(server.url, ADMIN_KEY).splitlines() if x.startswith("curl ")]
    assert {p for p in ENDPOINTS} | {"/model_info"} <= {x.split("'")[-2].split("?")[0].replace(server.url, "") for x in lines}
    series = _post(server, "/forecast", {"location": ["DC1"], "horizon": 1}).json()["series"][0]["unique_id"]
    account = next(a for a in _all_accounts(server)
                   if _post(server, "/churn_scores", {"account_ids": [a]}).status_code == 200)
    static = curl_examples_static(server.url, ADMIN_KEY, series_id=series, account_id=account, since="2024-01-01")
    lines += [x for x in static.splitlines() if x.startswith("curl ")]
    for line in lines:
        res = subprocess.run(line + " -w '\\n%{http_code}'", shell=True, capture_output=True, text=True, timeout=60)
        body, code = res.stdout.rsplit("\n", 1)
        assert code == "200", (line, body[:300])
        json.loads(body)


# ----------------------------------------------------------------- churn
def test_churn_scores_match_batch_cli(server, home, tmp_path):
    h, config = home
    accounts = _all_accounts(server)
    with bentoml.SyncHTTPClient(server.url, token=CRM_KEY) as client:
        probe = client.churn_scores({"account_ids": accounts[:1]})
    as_of = probe["as_of"]
    out = tmp_path / "churn.csv"
    _cli(h, "score", "churn", "--config", str(config), "--cutoff", as_of, "--out", str(out))
    batch = pd.read_csv(out, dtype={"account_id": str}, keep_default_na=False)
    ids = batch["account_id"].tolist()
    r = _post(server, "/churn_scores", {"account_ids": ids}, key=CRM_KEY)
    assert r.status_code == 200
    body = r.json()
    served = {s["account_id"]: s for s in body["scores"]}
    assert list(served) == ids and body["as_of"] == as_of and body["model_version"] == "dealerml-churn/1"
    assert body["not_scored"] == []
    for row in batch.itertuples(index=False):
        s = served[row.account_id]
        assert s["probability"] == pytest.approx(row.probability, abs=1e-12)
        assert s["tier"] == row.tier
        assert s["reasons"] == [x for x in (row.reason_1, row.reason_2, row.reason_3) if x]
        assert s["model_version"] == row.model_version == "dealerml-churn/1"
    assert set(batch["tier"]) <= {"high", "medium", "low"} and any(len(s["reasons"]) == 3 for s in served.values())
    # a CRM batch with accounts the batch did not score (lapsed) and an unknown id: 200 with the
    # scores of the scorable ids and the others under not_scored with the reason
    inactive = sorted(set(accounts) - set(ids))
    assert inactive, "the synthetic network has lapsed dealers"
    r = _post(server, "/churn_scores", {"account_ids": [ids[0], *inactive, "NO-SUCH-ID"]}, key=CRM_KEY)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert [s["account_id"] for s in body["scores"]] == [ids[0]]
    reasons = {x["account_id"]: x["reason"] for x in body["not_scored"]}
    assert list(reasons) == [*inactive, "NO-SUCH-ID"] and reasons["NO-SUCH-ID"] == "unknown account id"
    for a in inactive:
        assert reasons[a].startswith("not in the churn population: "), reasons[a]
    lapsed = next(a for a in inactive if "last order" in reasons[a])
    assert f"before the 365-day lookback ending {as_of}" in reasons[lapsed]
    # only when no id has a score: 404 with the reasons
    r = _post(server, "/churn_scores", {"account_ids": [lapsed, "NO-SUCH-ID"]}, key=CRM_KEY)
    assert r.status_code == 404 and r.json()["unknown_ids"] == [lapsed, "NO-SUCH-ID"]
    err = r.json()["error"]
    assert f"{lapsed}: not in the churn population: last order" in err and "NO-SUCH-ID: unknown account id" in err
    assert [x["account_id"] for x in r.json()["not_scored"]] == [lapsed, "NO-SUCH-ID"]
    # a batch of 5,000 ids (duplicates collapse) in one call
    many = (ids * (5000 // len(ids) + 1))[:5000]
    r = _post(server, "/churn_scores", {"account_ids": many}, key=CRM_KEY)
    assert r.status_code == 200 and len(r.json()["scores"]) == len(set(many))


def test_churn_alerts_from_the_alerts_table(server, home):
    h, config = home
    as_of = _post(server, "/churn_scores", {"account_ids": [_all_accounts(server)[0]]}).json()
    as_of = as_of["as_of"] if "as_of" in as_of else None
    assert as_of, "churn_scores must answer for the first dealer"
    _cli(h, "alerts", "--config", str(config), "--cutoff", as_of)
    time.sleep(2.2)  # the service caches the alerts table for 2 s
    from training.alerts import read_alerts
    from training.paths import scores_db

    os.environ["DEALERML_HOME"] = str(h)
    try:
        table = read_alerts(str(scores_db()), table="churn_alerts")
    finally:
        os.environ.pop("DEALERML_HOME", None)
    r = _get(server, "/churn_alerts", key=CRM_KEY, params={"since": as_of})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(table) > 0
    assert [a["account_id"] for a in body["alerts"]] == table["account_id"].astype(str).tolist()
    assert all(a["tier"] == "high" and a["cutoff"] == as_of and a["reasons"] for a in body["alerts"])
    later = (pd.Timestamp(as_of) + pd.Timedelta(days=1)).date().isoformat()
    assert _get(server, "/churn_alerts", key=CRM_KEY, params={"since": later}).json()["count"] == 0
    # limit: the newest N (oldest first), and how many matched
    r = _get(server, "/churn_alerts", key=CRM_KEY, params={"limit": 1}).json()
    assert r["count"] == 1 and r["matched"] == body["matched"] == len(table)
    newest = table.sort_values(["cutoff", "account_id"], kind="mergesort")["account_id"].astype(str).tolist()[-1]
    assert [a["account_id"] for a in r["alerts"]] == [newest]
    # bad or unknown query parameters: 400 {"error"} naming the parameter and what is expected
    for params, words in (({"since": "not-a-date"}, ["'since'", "a date YYYY-MM-DD"]),
                          ({"since": "yesterday"}, ["'since'", "a date YYYY-MM-DD"]),
                          ({"limit": 0}, ["'limit'", "an integer between 1 and 5000"]),
                          ({"limit": "abc"}, ["'limit'", "an integer between 1 and 5000"]),
                          ({"sinse": "2025-01-01"}, ["unknown query parameter(s) ['sinse']", "allowed: ['limit', 'since']"])):
        r = _get(server, "/churn_alerts", key=CRM_KEY, params=params)
        assert r.status_code == 400, (params, r.status_code, r.text[:300])
        assert all(w in r.json()["error"] for w in words), (params, r.json())


# ----------------------------------------------------------------- demand
def test_forecast_matches_batch_cli(server, home, tmp_path):
    h, config = home
    out = tmp_path / "forecast.csv"
    _cli(h, "forecast", "--config", str(config), "--alias", "champion", "--out", str(out))
    batch = pd.read_csv(out, parse_dates=["ds"])
    uids = sorted(batch["unique_id"].unique())
    r = _post(server, "/forecast", {"series_ids": uids, "horizon": 8, "levels": [80, 95], "quantiles": [0.1, 0.975]}, key=FC_KEY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["unique_id"] for s in body["series"]] == uids
    # one version format on every endpoint and table: "<registered name>/<version>"
    assert body["model_name"] == "dealerml-demand" and body["model_version"] == "dealerml-demand/1"
    served = {(s["unique_id"], p["ds"]): p for s in body["series"] for p in s["forecast"]}
    assert len(served) == len(batch)
    for row in batch.to_dict("records"):
        p = served[(row["unique_id"], row["ds"].date().isoformat())]
        iv = {i["level"]: i for i in p["intervals"]}
        assert p["mean"] == pytest.approx(row["Final"], rel=1e-6, abs=1e-9)
        for lv in (80, 95):
            assert iv[float(lv)]["lo"] == pytest.approx(row[f"Final-lo-{lv}"], rel=1e-6, abs=1e-9)
            assert iv[float(lv)]["hi"] == pytest.approx(row[f"Final-hi-{lv}"], rel=1e-6, abs=1e-9)
        assert iv[95.0]["lo"] <= iv[80.0]["lo"] <= iv[80.0]["hi"] <= iv[95.0]["hi"]
        q = {x["q"]: x["value"] for x in p["quantiles"]}
        assert q[0.1] == iv[80.0]["lo"] and q[0.975] == iv[95.0]["hi"]
    # filters: every series at a location, with its keys
    r = _post(server, "/forecast", {"location": ["DC2"], "horizon": 3}, key=FC_KEY).json()
    assert r["series"] and all(s["keys"]["location"] == "DC2" and len(s["forecast"]) == 3 for s in r["series"])
    assert {s["unique_id"] for s in r["series"]} == {u for u in uids if u.endswith("/DC2")}


def test_safety_stock_matches_the_policy_of_the_same_champion(server, home, tmp_path):
    """The served numbers equal ``dealerml safety-stock --alias champion`` (the batch CLI on the
    same registered model) and ``models.inventory`` run on the served champion itself, with the
    order book's lead times and the config's settings."""
    h, config = home
    from models.inventory import (
        InventoryPolicy,
        forecaster_history,
        lead_time_fits,
        lead_time_periods,
    )
    from training import tracking
    from training.config import load_config
    from training.demand_config import demand_settings

    os.environ["DEALERML_HOME"] = str(h)
    try:
        est, _ = tracking.load_model("dealerml-demand")
    finally:
        os.environ.pop("DEALERML_HOME", None)
    cfg = load_config(config)
    s = demand_settings(cfg)
    lt = pd.read_csv(h / "synthetic" / "lead_times.csv")
    lt["unique_id"] = lt["sku"] + "/" + lt["location"]
    lt = lt.set_index("unique_id")
    fc = est.predict()
    uids = sorted(u for u in fc["unique_id"].unique()
                  if lead_time_fits(lead_time_periods(lt.loc[u, "lead_time_days"], "W"),
                                    lead_time_periods(lt.loc[u, "lead_time_std_days"], "W"), s.review_period, est.h))
    assert len(uids) >= 10
    fc = fc[fc["unique_id"].isin(uids)]
    L = lt.loc[uids, "lead_time_days"] / 7.0
    sdL = lt.loc[uids, "lead_time_std_days"] / 7.0
    pol = InventoryPolicy(0.9, s.review_period, n_sims=s.n_sims, cover_limit_periods=s.cover_limit_periods,
                          random_state=cfg.seed).fit(fc, est.residuals_, est.scale_, L, sdL,
                                                     history=forecaster_history(est)).policy_.set_index("unique_id")
    assert (pol["ltd_source"] == "own_history").any()  # some intermittent / lumpy series use their own history
    r = _post(server, "/safety_stock", {"series_ids": uids, "service_level": 0.9}, key=FC_KEY)
    assert r.status_code == 200, r.text
    served = r.json()
    rows = {x["unique_id"]: x for x in served["rows"]}
    for u in uids:
        x, b = rows[u], pol.loc[u]
        assert x["lead_time_days"] == pytest.approx(lt.loc[u, "lead_time_days"])
        for mine, theirs in (("reorder_point", "reorder_point"), ("order_up_to", "order_up_to"),
                             ("safety_stock", "safety_stock"), ("safety_stock_normal", "normal_safety_stock")):
            assert x[mine] == pytest.approx(b[theirs], rel=1e-9, abs=1e-9), (u, mine)
        assert x["reorder_point"] <= x["order_up_to"] + 1e-9
        assert x["lead_time_demand_source"] == b["ltd_source"]
    # the batch CLI on the same champion gives the same numbers
    out = tmp_path / "policy.csv"
    _cli(h, "safety-stock", "--config", str(config), "--service-level", "0.9", "--alias", "champion", "--out", str(out))
    batch = pd.read_csv(out, dtype={"unique_id": str}).set_index("unique_id")
    assert set(uids) <= set(batch.index)
    for u in uids:
        x = rows[u]
        for mine, theirs in (("reorder_point", "reorder_point"), ("order_up_to", "order_up_to"),
                             ("safety_stock", "safety_stock"), ("safety_stock_normal", "normal_safety_stock")):
            assert x[mine] == pytest.approx(batch.loc[u, theirs], rel=1e-9, abs=1e-9), (u, mine, "batch")
    # and the same as-of dates: the last period of history (as /forecast) and each row's stock snapshot
    inv = pd.read_csv(h / "synthetic" / "inventory.csv")
    inv["unique_id"] = inv["sku"] + "/" + inv["location"]
    snap = inv.sort_values("snapshot_date").drop_duplicates("unique_id", keep="last").set_index("unique_id")
    assert served["last_observed"] == pd.Timestamp(est.last_ds_).date().isoformat()
    assert batch["last_observed"].unique().tolist() == [served["last_observed"]]
    assert served["last_observed"] == _post(server, "/forecast", {"series_ids": uids[:1]}).json()["last_observed"]
    for u in uids:
        assert rows[u]["on_hand_date"] == batch.loc[u, "on_hand_date"] == str(snap.loc[u, "snapshot_date"])[:10], u
    # one series asked alone gets the numbers it got among all the others (its own random stream)
    for u in uids[:3]:
        one = _post(server, "/safety_stock", {"series_ids": [u], "service_level": 0.9}, key=FC_KEY).json()["rows"][0]
        for k in ("reorder_point", "order_up_to", "safety_stock"):
            assert one[k] == rows[u][k], (u, k, "alone")
    # a spread alone applies to the order book's mean lead time; a spread that does not fit is refused
    u = uids[0]
    wide = _post(server, "/safety_stock", {"series_ids": [u], "service_level": 0.9, "lead_time_std_days": 0.0},
                 key=FC_KEY).json()["rows"][0]
    assert wide["lead_time_std_days"] == 0.0 and wide["lead_time_days"] == pytest.approx(lt.loc[u, "lead_time_days"])
    r = _post(server, "/safety_stock", {"series_ids": [u], "lead_time_std_days": 100.0}, key=FC_KEY)
    assert r.status_code == 422 and "2.33 x the lead-time spread" in r.json()["error"] and "they need" in r.json()["error"]
    # warnings from on-hand given in the request; else from the order book's inventory snapshot
    a, b = uids[0], uids[1]
    r = _post(server, "/safety_stock", {"series_ids": [a, b], "lead_time_days": 14.0, "on_hand": {a: 0.0, b: 1e6}},
              key=FC_KEY).json()
    low, high = r["rows"]
    assert low["warning"] == "replenish" and low["suggested_order"] == np.ceil(low["order_up_to"])
    assert high["warning"] == "overstock" and "promote or transfer" in high["message"]
    inv = pd.read_csv(h / "synthetic" / "inventory.csv")
    inv["unique_id"] = inv["sku"] + "/" + inv["location"]
    stock = inv.sort_values("snapshot_date").drop_duplicates("unique_id", keep="last").set_index("unique_id")["on_hand"]
    r = _post(server, "/safety_stock", {"series_ids": [a], "lead_time_days": 14.0}, key=FC_KEY).json()
    assert r["rows"][0]["on_hand"] == pytest.approx(float(stock[a]))
    # a lead time beyond the champion's horizon is refused with the reason
    r = _post(server, "/safety_stock", {"series_ids": [a], "lead_time_days": 365.0}, key=FC_KEY)
    assert r.status_code == 422 and "forecast horizon" in r.json()["error"]


def test_safety_stock_counts_stock_on_order_and_rounds_orders_to_the_supplier(server):
    """A planner's request: stock already on order is not ordered again (replenish is decided on
    on_hand + on_order), and the suggested order is raised to the minimum order and rounded up to
    whole packs; each row names its sku and location."""
    base = {"lead_time_days": 14.0, "service_level": 0.95}
    a = _post(server, "/forecast", {"location": ["DC1"], "horizon": 1}, key=FC_KEY).json()["series"][0]["unique_id"]
    ans = _post(server, "/safety_stock", {**base, "series_ids": [a], "on_hand": {a: 0.0}}, key=FC_KEY).json()
    assert ans["freq"] == "W" and ans["review_period_days"] == 7.0  # the config's review_period: 1 week, said in days
    first = ans["rows"][0]
    assert _post(server, "/safety_stock", {**base, "series_ids": [a], "review_period_days": 14.0},
                 key=FC_KEY).json()["review_period_days"] == 14.0
    assert first["keys"] == dict(zip(["sku", "location"], a.split("/"), strict=True))
    assert first["warning"] == "replenish" and first["on_order"] == 0.0 and first["inventory_position"] == 0.0
    out = first["order_up_to"]
    assert first["suggested_order"] == np.ceil(out) and first["suggested_order_unrounded"] == pytest.approx(out)
    # the suggested order has been placed: next week nothing more to order while it is in transit
    placed = _post(server, "/safety_stock", {**base, "series_ids": [a], "on_hand": {a: 0.0},
                                             "on_order": {a: first["suggested_order"]}}, key=FC_KEY).json()["rows"][0]
    assert placed["inventory_position"] == first["suggested_order"]
    assert placed["warning"] is None and placed["suggested_order"] == 0.0 and placed["action"] == "ok"
    assert first["action"] == "replenish"
    # at the reorder point: no warning, but the routine order of this review up to the order-up-to
    # level (the level covers lead time + review, so the service level needs it)
    rop = first["reorder_point"]
    assert 0.0 < rop < out
    routine = _post(server, "/safety_stock", {**base, "series_ids": [a], "on_hand": {a: rop}}, key=FC_KEY).json()["rows"][0]
    assert routine["action"] == "order" and routine["warning"] is None
    assert routine["suggested_order"] == np.ceil(out - rop) and routine["message"].startswith("routine order at this review")
    # a minimum order of 10 packs of 12 and pack size 12
    moq = 12.0 * (np.ceil(out / 12.0) + 10)
    rounded = _post(server, "/safety_stock", {**base, "series_ids": [a], "on_hand": {a: 0.0}, "min_order_qty": {a: moq},
                                              "order_multiple": {a: 12.0}}, key=FC_KEY).json()["rows"][0]
    assert rounded["suggested_order"] == moq and rounded["min_order_qty"] == moq and rounded["order_multiple"] == 12.0
    assert "raised to the minimum order" in rounded["message"]
    packs = _post(server, "/safety_stock", {**base, "series_ids": [a], "on_hand": {a: 0.0}, "order_multiple": {a: 7.0}},
                  key=FC_KEY).json()["rows"][0]
    assert packs["suggested_order"] == 7.0 * np.ceil(np.ceil(out) / 7.0) and packs["suggested_order"] % 7 == 0
    # the sizing is the same whatever the order rules (they apply after it)
    for k in ("reorder_point", "order_up_to", "safety_stock"):
        assert rounded[k] == packs[k] == placed[k] == first[k]
    big = _post(server, "/safety_stock", {**base, "series_ids": [a], "on_hand": {a: 1e6}, "max_periods_of_cover": 10.0},
                key=FC_KEY).json()["rows"][0]
    assert big["warning"] == "overstock" and big["message"].startswith("over 10 weeks of cover")  # was '10.0 periods'
    # lead times per series (a planner's own lead-time file) in one request: each series gets what it
    # gets asked alone with that lead time; the others keep the book's
    dc1 = [x["unique_id"] for x in _post(server, "/forecast", {"location": ["DC1"], "horizon": 1}, key=FC_KEY).json()["series"]]
    b = dc1[1]
    c = next(u for u in dc1[2:] if _post(server, "/safety_stock", {"series_ids": [u]}, key=FC_KEY).status_code == 200)
    per = _post(server, "/safety_stock", {"series_ids": [a, b, c], "lead_times": {
        a: {"lead_time_days": 21.0, "lead_time_std_days": 4.0}, b: {"lead_time_days": 10.0}}}, key=FC_KEY)
    assert per.status_code == 200, per.text
    got = {x["unique_id"]: x for x in per.json()["rows"]}
    for u, days, sd in ((a, 21.0, 4.0), (b, 10.0, 0.0)):
        alone = _post(server, "/safety_stock", {"series_ids": [u], "lead_time_days": days, "lead_time_std_days": sd},
                      key=FC_KEY).json()["rows"][0]
        assert (got[u]["lead_time_days"], got[u]["lead_time_std_days"]) == (days, sd)
        assert all(got[u][k] == alone[k] for k in ("reorder_point", "order_up_to", "safety_stock")), u
    assert got[c] == _post(server, "/safety_stock", {"series_ids": [c]}, key=FC_KEY).json()["rows"][0]  # the book's
    # a same-day lead time (collected at a local DC) covers no lead time: reorder point and safety stock 0
    r = _post(server, "/safety_stock", {"series_ids": [a], "lead_times": {a: {"lead_time_days": 0.0}}}, key=FC_KEY)
    assert r.status_code == 200, r.text
    z = r.json()["rows"][0]
    assert (z["lead_time_days"], z["lead_time_std_days"], z["lead_time_demand_mean"]) == (0.0, 0.0, 0.0)
    assert (z["reorder_point"], z["safety_stock"], z["reorder_point_normal"], z["safety_stock_normal"]) == (0, 0, 0, 0)
    assert 0 < z["order_up_to"] < got[a]["order_up_to"]
    r = _post(server, "/safety_stock", {"series_ids": [a], "lead_times": {a: {"lead_time_days": -1.0}}}, key=FC_KEY)
    assert r.status_code == 400 and f"lead_times.{a}.lead_time_days" in r.json()["error"]
    r = _post(server, "/safety_stock", {"series_ids": [a], "lead_times": {b: {"lead_time_days": 7.0}}}, key=FC_KEY)
    assert r.status_code == 400 and "give lead_times only for the series you ask for" in r.json()["error"]
    # bad rules are a 400 naming the field and the series
    r = _post(server, "/safety_stock", {**base, "series_ids": [a], "order_multiple": {a: 0.0}}, key=FC_KEY)
    assert r.status_code == 400 and f"order_multiple.{a}" in r.json()["error"]
    r = _post(server, "/safety_stock", {**base, "series_ids": [a], "on_order": {"NOPE/DC9": 1.0}}, key=FC_KEY)
    assert r.status_code == 400 and "give on_order only for the series you ask for" in r.json()["error"]


def test_a_planned_promotion_is_forecast_and_stocked_for_just_its_series(server, home):
    """``drivers`` in /forecast and /safety_stock: the planned series equal the champion's own
    ``predict_plan`` (the numbers ``dealerml forecast --future`` gives), the others are
    untouched, every point says which driver values it assumes, and bad plans are 422s naming
    the row, series, period and driver."""
    h, _ = home
    from training import tracking

    os.environ["DEALERML_HOME"] = str(h)
    try:
        est, _ = tracking.load_model("dealerml-demand")
    finally:
        os.environ.pop("DEALERML_HOME", None)
    info = {m["name"]: m for m in _get(server, "/model_info").json()["models"]}
    assert info["dealerml-demand"]["summary"]["drivers"] == ["promo"]
    base = est.predict()
    lgbm_served = base[base["final_model"].isin(["LightGBM", "Ensemble"])]["unique_id"].unique().tolist()
    assert lgbm_served, "no series is served by a member that reads the drivers"
    u, other = sorted(lgbm_served)[0], sorted(set(base["unique_id"]) - {sorted(lgbm_served)[0]})[0]
    dates = sorted(base["ds"].dt.date.astype(str).unique())
    plain = _post(server, "/forecast", {"series_ids": [u, other], "horizon": 4}, key=FC_KEY).json()
    assert [s["drivers"] for s in plain["series"]] == ["carried_forward", "carried_forward"]
    served_by = base.drop_duplicates("unique_id").set_index("unique_id")["final_model"]
    assert [s["model"] for s in plain["series"]] == [served_by[u], served_by[other]]
    carried = plain["series"][0]["forecast"][0]["drivers"]["promo"]
    plan = [{"unique_id": u, "ds": d, "promo": 1.0 - carried} for d in dates[1:4]]
    r = _post(server, "/forecast", {"series_ids": [u, other], "horizon": 4, "levels": [80, 95], "drivers": plan}, key=FC_KEY)
    assert r.status_code == 200, r.text
    got = r.json()["series"]
    assert [s["drivers"] for s in got] == ["planned", "carried_forward"]
    assert [p["drivers"]["promo"] for p in got[0]["forecast"]] == [carried, *[1.0 - carried] * 3]
    assert got[1] == {**plain["series"][1], "forecast": [{**p, "intervals": got[1]["forecast"][k]["intervals"]}
                                                         for k, p in enumerate(plain["series"][1]["forecast"])]}
    X = est.future_drivers()
    X = X[X["unique_id"] == u].copy()
    X.loc[X["ds"].dt.date.astype(str).isin(dates[1:4]), "promo"] = 1.0 - carried
    want = est.predict_plan(X)
    for k, p in enumerate(got[0]["forecast"]):
        assert p["mean"] == pytest.approx(want["Final"].iloc[k], rel=1e-9)
        iv = {i["level"]: i for i in p["intervals"]}
        assert iv[95.0]["hi"] == pytest.approx(want["Final-hi-95"].iloc[k], rel=1e-9)
    assert got[0]["forecast"][0]["mean"] == pytest.approx(plain["series"][0]["forecast"][0]["mean"], rel=1e-9)
    assert [p["mean"] for p in got[0]["forecast"][1:]] != [p["mean"] for p in plain["series"][0]["forecast"][1:]]
    # safety stock sized from the planned forecast: the planned series moves, the other does not
    body = {"series_ids": [u, other], "service_level": 0.95, "lead_time_days": 14.0}
    s0 = {x["unique_id"]: x for x in _post(server, "/safety_stock", body, key=FC_KEY).json()["rows"]}
    s1 = {x["unique_id"]: x for x in _post(server, "/safety_stock", {**body, "drivers": plan}, key=FC_KEY).json()["rows"]}
    assert s1[u]["drivers"] == "planned" and s1[other] == s0[other]
    assert s1[u]["lead_time_demand_mean"] != pytest.approx(s0[u]["lead_time_demand_mean"], rel=1e-6)
    # bad plans: 422 naming the row and what is wrong; schema errors 400
    bad = {
        "gives no driver value": [{"unique_id": u, "ds": dates[0]}],
        "unknown driver(s) ['price']": [{"unique_id": u, "ds": dates[0], "price": 2.0}],
        "is not selected by series_ids": [{"unique_id": sorted(set(base["unique_id"]) - {u, other})[0],
                                           "ds": dates[0], "promo": 1.0}],
        "is not a series the champion forecasts": [{"unique_id": "NOPE/DC9", "ds": dates[0], "promo": 1.0}],
        "is not a forecast period": [{"unique_id": u, "ds": "1999-01-04", "promo": 1.0}],
        "after the requested horizon": [{"unique_id": u, "ds": dates[5], "promo": 1.0}],
        "sets 'promo' again": [{"unique_id": u, "ds": dates[0], "promo": 1.0}, {"unique_id": u, "ds": dates[0], "promo": 0.0}],
    }
    for needle, rows in bad.items():
        r = _post(server, "/forecast", {"series_ids": [u, other], "horizon": 4, "drivers": rows}, key=FC_KEY)
        assert r.status_code == 422 and needle in r.json()["error"] and "drivers[" in r.json()["error"], (needle, r.text)
    for rows in ([{"unique_id": u, "ds": dates[0], "promo": "1"}], [{"unique_id": u, "ds": "2024-7-1", "promo": 1.0}], []):
        r = _post(server, "/forecast", {"series_ids": [u], "drivers": rows}, key=FC_KEY)
        assert r.status_code == 400 and "drivers" in r.json()["error"], r.text


def _uncached_demand_backend(h: Path, config: Path):
    """The service's demand backend built in-process from the same home, with the sizing cache
    off (``$DEALERML_SS_CACHE_ENTRIES=0``): every answer is a fresh simulation."""
    from serving.loader import MODEL_NAMES, load_all
    from serving.state import ModelSlot, ServingState

    with in_env(DEALERML_HOME=str(h), DEALERML_SS_CACHE_ENTRIES="0", MLFLOW_TRACKING_URI=None):
        state = ServingState([ModelSlot("demand", MODEL_NAMES["demand"])], str(config))
        load_all(state, str(config))
        backend = state.backend("demand")
    assert backend.sizing_cache.max_entries == 0
    return backend


def test_cached_safety_stock_equals_a_fresh_simulation(server, home):
    """The service keeps the sizing of unplanned series (serving.inventory.SizingCache): a repeated
    request, a batch mixing sized and new series, new on-hand for sized series and a request with a
    plan all answer exactly (every field, to the bit) what a fresh simulation gives - the same
    champion in-process with the cache off - and a plan neither reads nor fills the cache."""
    from serving.inventory import SizingCache
    from serving.schemas import SafetyStockRequest

    h, config = home
    fresh = _uncached_demand_backend(h, config)

    def uncached(body: dict) -> dict:
        ans = fresh.safety_stock(SafetyStockRequest.model_validate(body))
        return json.loads(json.dumps(ans))

    def served(body: dict) -> dict:
        r = _post(server, "/safety_stock", body, key=FC_KEY)
        assert r.status_code == 200, r.text
        return r.json()

    fc = _post(server, "/forecast", {"location": ["DC1"], "horizon": 1}, key=FC_KEY).json()["series"]
    lgbm = sorted(s["unique_id"] for s in fc if s["model"] in ("LightGBM", "Ensemble"))
    others = sorted(s["unique_id"] for s in fc if s["unique_id"] not in lgbm)
    assert lgbm and len(others) >= 12
    a = [lgbm[0], *others[:5]]  # sized first
    b = others[5:12]  # new in the mixed batch
    base = {"service_level": 0.93, "lead_time_days": 10.0, "lead_time_std_days": 2.0}  # settings no other test asks
    cold = served({**base, "series_ids": a})
    assert cold == uncached({**base, "series_ids": a})
    assert served({**base, "series_ids": a[::-1]}) == cold  # every series from the cache
    low = next(x["unique_id"] for x in cold["rows"] if x["reorder_point"] > 0)
    mixed = {**base, "series_ids": b[:3] + a + b[3:], "on_hand": {low: 0.0, b[0]: 1e6}, "max_periods_of_cover": 4.0}
    got = served(mixed)
    assert got == uncached(mixed)
    assert [x["unique_id"] for x in got["rows"]] == sorted(a + b)
    rows = {x["unique_id"]: x for x in got["rows"]}
    assert rows[low]["warning"] == "replenish" and rows[b[0]]["warning"] == "overstock"  # on-hand is not cached
    for x in cold["rows"]:  # the sizing of the cached series is unchanged by the new on-hand
        for k in ("safety_stock", "reorder_point", "order_up_to", "safety_stock_normal", "lead_time_demand_mean"):
            assert rows[x["unique_id"]][k] == x[k]
    # other settings are other keys: a service level or lead time not asked before is simulated
    for other in ({**base, "service_level": 0.97}, {**base, "lead_time_days": 12.0}, {**base, "lead_time_std_days": 0.0},
                  {**base, "review_period_days": 14.0}):
        want = uncached({**other, "series_ids": a})
        assert served({**other, "series_ids": a}) == want
        def sizing(ans):
            return [(x["reorder_point"], x["order_up_to"]) for x in ans["rows"]]

        assert sizing(want) != sizing(cold), other
    # a plan: the planned series is simulated from its planned forecast, the rest come from the cache
    points = _post(server, "/forecast", {"series_ids": [a[0]]}, key=FC_KEY).json()["series"][0]["forecast"]
    plan = [{"unique_id": a[0], "ds": p["ds"], "promo": 1.0 - p["drivers"]["promo"]} for p in points]
    body = {**base, "series_ids": a, "drivers": plan}
    planned = served(body)
    assert planned == uncached(body)
    prow = {x["unique_id"]: x for x in planned["rows"]}
    crow = {x["unique_id"]: x for x in cold["rows"]}
    assert prow[a[0]]["drivers"] == "planned"
    assert prow[a[0]]["lead_time_demand_mean"] != crow[a[0]]["lead_time_demand_mean"]
    assert all(prow[u] == crow[u] for u in a[1:])
    assert served({**base, "series_ids": a}) == cold  # the plan did not replace the cached unplanned sizing
    # the bound: a cache of 3 keeps the 3 most recently sized series and still answers the same
    ref = uncached({**base, "series_ids": a + b})
    fresh.sizing_cache = SizingCache(3)
    assert uncached({**base, "series_ids": a + b}) == ref
    assert len(fresh.sizing_cache) == 3 and fresh.sizing_cache.hits == 0
    assert uncached({**base, "series_ids": a + b}) == ref
    assert len(fresh.sizing_cache) == 3 and fresh.sizing_cache.hits == 3  # the last 3 of the 13; 10 simulated again
    last = sorted(a + b)[-1]  # evicted by those 10
    assert uncached({**base, "series_ids": [last]})["rows"] == [ref["rows"][-1]]
    assert fresh.sizing_cache.hits == 3
    assert uncached({**base, "series_ids": [last]})["rows"] == [ref["rows"][-1]]
    assert fresh.sizing_cache.hits == 4


def test_sizing_cache_bound_and_setting():
    from serving.inventory import DEFAULT_CACHE_ENTRIES, SizingCache
    from serving.settings import sizing_cache_entries

    c = SizingCache(2)
    c.put_many({("a",): (1.0,), ("b",): (2.0,)})
    assert c.get_many([("a",)]) == {("a",): (1.0,)}  # "a" is now the most recently used
    c.put_many({("c",): (3.0,)})
    assert len(c) == 2 and c.get_many([("a",), ("b",), ("c",)]) == {("a",): (1.0,), ("c",): (3.0,)}
    assert (c.hits, c.misses) == (3, 1)
    off = SizingCache(0)
    off.put_many({("a",): (1.0,)})
    assert len(off) == 0
    def entries(value):
        return sizing_cache_entries({} if value is None else {"DEALERML_SS_CACHE_ENTRIES": value})

    assert entries(None) == entries("") == entries("  ") == DEFAULT_CACHE_ENTRIES == 50_000
    assert entries("0") == 0 and entries("250000") == 250000
    for bad in ("-1", "lots", "1.5"):
        with pytest.raises(ValueError, match="DEALERML_SS_CACHE_ENTRIES must be a whole number of entries >= 0"):
            entries(bad)
    with pytest.raises(ValueError, match="must be >= 0 entries; got -5"):
        SizingCache(-5)


# ----------------------------------------------------------------- dealers
def test_dealer_scores_match_batch_cli(server, home, tmp_path):
    h, config = home
    full = _post(server, "/dealer_scores", {"top_k": 5000}, key=SALES_KEY).json()
    out = tmp_path / "dealers.csv"
    _cli(h, "score", "dealers", "--config", str(config), "--cutoff", full["as_of"], "--out", str(out))
    batch = pd.read_csv(out, dtype={"account_id": str}, keep_default_na=False)
    assert [d["account_id"] for d in full["dealers"]] == batch["account_id"].tolist()
    assert full["model_version"] == batch["model_version"].iloc[0] == "dealerml-dealers/1"
    # the churn version behind the potentials, which score dealers took too (its stdout names it)
    assert full["churn_source"] == "dealerml-churn/1"
    for d, row in zip(full["dealers"], batch.itertuples(index=False), strict=True):
        assert d["potential"] == pytest.approx(row.potential, rel=1e-9)
        assert (d["segment"], d["lifecycle"], d["tier"]) == (row.segment, row.lifecycle, row.tier)
        assert d["programme"] == row.programme and d["programme"] in ("gold", "silver", "bronze")
        assert d["reasons"] == [x for x in (row.reason_1, row.reason_2, row.reason_3) if x]
    region = full["dealers"][0]["region"]
    seg = full["dealers"][0]["segment"]
    r = _post(server, "/dealer_scores", {"region": [region], "segment": [seg], "top_k": 5}, key=SALES_KEY).json()
    expected = [d for d in full["dealers"] if d["region"] == region and d["segment"] == seg]
    assert r["matched"] == len(expected) and r["dealers"] == expected[:5]
    pots = [d["potential"] for d in r["dealers"]]
    assert pots == sorted(pots, reverse=True)
    r = _post(server, "/dealer_scores", {"region": ["Atlantis", region]}, key=SALES_KEY)
    assert r.status_code == 404 and r.json()["unknown_ids"] == ["Atlantis"]
    regions = sorted({d["region"] for d in full["dealers"]})  # few: listed in the message
    assert r.json()["error"] == f"1 unknown region(s): ['Atlantis']; the served model knows {len(regions)}: {regions}"


# ----------------------------------------------------------------- validation
def test_bad_requests_are_4xx_and_nothing_secret_is_logged(server):
    marker = "BODY-MARKER-7731"
    cases = [
        ("/forecast", {"series_ids": ["a"], "horizon": 0}, 400),
        ("/forecast", {"series_ids": ["a"], "horizon": 105}, 400),
        ("/forecast", {"series_ids": [marker], "horizon": 9}, 404),
        ("/forecast", {"location": ["DC1"], "horizon": 9}, 422),
        ("/forecast", {"location": ["DC1"], "levels": [100]}, 400),
        ("/forecast", {"location": ["DC1"], "levels": [90]}, 422),
        ("/forecast", {"location": ["DC1"], "quantiles": [0.5]}, 422),
        ("/forecast", {"horizon": 4}, 400),
        ("/forecast", {"series_ids": ["x"] * 5001}, 400),
        ("/safety_stock", {"series_ids": ["a"], "service_level": 1.0}, 400),
        ("/safety_stock", {"series_ids": ["a"], "lead_time_days": -1}, 400),
        ("/safety_stock", {"series_ids": ["a"], "on_hand": {"b": 1}}, 400),
        ("/churn_scores", {"account_ids": []}, 400),
        ("/churn_scores", {"account_ids": ["a"], "secret_note": marker}, 400),
        ("/dealer_scores", {"top_k": 0}, 400),
    ]
    for path, body, status in cases:
        r = _post(server, path, body)
        assert r.status_code == status, (path, body, r.status_code, r.text[:300])
        assert "error" in (r.json() if isinstance(r.json(), dict) else r.json()[0])
    r = httpx.post(server.url + "/churn_scores", content=b'{"account_ids": [', headers={"X-API-Key": ADMIN_KEY,
                   "content-type": "application/json"})
    assert r.status_code == 400
    r = _post(server, "/safety_stock", {"series_ids": ["nope"], "lead_time_days": 7})
    assert r.status_code == 404 and r.json()["unknown_ids"] == ["nope"]
    time.sleep(0.5)
    log = server.log_text()
    assert "rejected request" in log
    for secret in (marker, FC_KEY, CRM_KEY, SALES_KEY, ADMIN_KEY):
        assert secret not in log, f"{secret!r} appears in the server log"


def test_request_contract_messages(server):
    """Empty filters, wrong JSON types, bounds, unknown filter values, an empty filter
    combination and non-JSON bodies: 4xx with a message that says what was expected."""
    fc = _post(server, "/forecast", {"location": ["DC1"], "horizon": 1}).json()["series"]
    a, b = fc[0], next(s for s in fc if s["keys"]["sku"] != fc[0]["keys"]["sku"])
    cases = [  # body, status, words in the error
        ("/dealer_scores", {"account_ids": []}, 400, ["account_ids: must not be empty; leave the field out for no filter"]),
        ("/dealer_scores", {"region": []}, 400, ["region: must not be empty; leave the field out for no filter"]),
        ("/forecast", {"series_ids": [], "location": ["DC1"]}, 400, ["series_ids: must not be empty"]),
        ("/forecast", {"location": ["DC1"], "horizon": True}, 400, ["horizon: Input should be a valid integer",
                                                                     "an integer between 1 and 104"]),
        ("/forecast", {"location": ["DC1"], "horizon": "8"}, 400, ["horizon: Input should be a valid integer"]),
        ("/safety_stock", {"series_ids": [a["unique_id"]], "service_level": "0.9"}, 400, ["service_level: Input should be a valid number"]),
        ("/safety_stock", {"series_ids": [a["unique_id"]], "service_level": 0.5}, 400, ["service_level", "between 0.5 and 1, exclusive"]),
        ("/safety_stock", {"series_ids": [a["unique_id"]], "service_level": 0.3}, 400, ["service_level", "between 0.5 and 1, exclusive"]),
        ("/dealer_scores", {"top_k": "5"}, 400, ["top_k: Input should be a valid integer"]),
        ("/dealer_scores", {"top_k": 2.0}, 400, ["top_k: Input should be a valid integer"]),
        ("/forecast", {"location": ["DC1"], "levels": [float("nan")]}, 400,
         ["levels.0: Input should be a finite number", "a finite number between 0 and 100, exclusive"]),
        ("/churn_scores", {"account_ids": [], "note": 1}, 400, ["invalid request body: 2 problems: ",
                                                                "note: Extra inputs are not permitted"]),
        ("/forecast", {"location": ["dc9"]}, 404, ["1 unknown location(s): ['dc9']; the served model knows 2: ['DC1', 'DC2']"]),
        ("/forecast", {"series_ids": [a["unique_id"]], "sku": [b["keys"]["sku"]]}, 404,
         [f"no series matches all the filters (series_ids ['{a['unique_id']}'], sku ['{b['keys']['sku']}'])"]),
    ]
    for path, body, status, words in cases:
        content = json.dumps(body)  # NaN as JSON's NaN literal, as a client may send it
        r = httpx.post(server.url + path, content=content, headers={"X-API-Key": ADMIN_KEY, "content-type": "application/json"})
        assert r.status_code == status, (path, body, r.status_code, r.text[:300])
        err = r.json()["error"]
        assert all(w in err for w in words), (path, body, err)
        assert "validation error for" not in err and "IODescriptor" not in err and "<none>" not in err
        if status == 404:
            assert "<none>" not in r.json().get("unknown_ids", [])
    # a (JSON) body sent with curl's default form content type: 400, and the body stays out of the log
    marker = "FORM-BODY-MARKER-5521"
    r = httpx.post(server.url + "/churn_scores", content=json.dumps({"account_ids": [marker]}),
                   headers={"X-API-Key": ADMIN_KEY, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"].startswith("send a JSON body with Content-Type: application/json")
    r = httpx.post(server.url + "/churn_scores", content=b"account_ids=x",
                   headers={"X-API-Key": ADMIN_KEY, "content-type": "text/plain"})
    assert r.status_code == 400 and "send a JSON body" in r.json()["error"]
    r = _post(server, "/churn_scores", {"account_ids": ["a"], marker: 1})
    assert r.status_code == 400 and "Extra inputs are not permitted" in r.json()["error"]
    time.sleep(0.5)
    log = server.log_text()
    assert marker not in log and "<extra field>" in log


# ----------------------------------------------------------------- schemathesis
FUZZ_EXAMPLES = int(os.environ.get("DEALERML_TEST_FUZZ_EXAMPLES", "150"))
"""Generated requests per endpoint, derandomized (the same ones every run). 150 keeps the suite's time
budget; 500 per endpoint (~3,000 in all, the setting until session 13, every answer < 500) cost
minutes more. Set it higher for a deeper sweep."""


def test_schemathesis_no_5xx(server):
    """>= FUZZ_EXAMPLES generated requests (valid and invalid) per data endpoint: no 5xx."""
    import requests
    import schemathesis

    schema = schemathesis.openapi.from_url(server.url + "/docs.json")
    session = requests.Session()
    session.headers["X-API-Key"] = ADMIN_KEY
    wanted = {"/forecast", "/safety_stock", "/churn_scores", "/churn_alerts", "/dealer_scores", "/model_info"}
    seen: dict[str, dict[int, int]] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path not in wanted:
            continue
        counts = _fuzz(op, server.url, session)
        while sum(counts.values()) < FUZZ_EXAMPLES:  # small input spaces (GET /model_info) run out of new cases
            resp = session.request(op.method.upper(), server.url + op.path, timeout=60)
            counts[resp.status_code] = counts.get(resp.status_code, 0) + 1
            assert resp.status_code < 500
        seen[op.path] = counts
    assert set(seen) == wanted
    for path, counts in seen.items():
        assert sum(counts.values()) >= FUZZ_EXAMPLES, (path, counts)
        assert not any(s >= 500 for s in counts), (path, counts)
    print(json.dumps(seen))


def _fuzz(op, url: str, session) -> dict[int, int]:
    """Up to FUZZ_EXAMPLES schemathesis cases (valid and invalid) against one operation; status counts."""
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode

    counts: dict[int, int] = {}
    strategy = op.as_strategy(GenerationMode.POSITIVE) | op.as_strategy(GenerationMode.NEGATIVE)

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(case=strategy)
    def run(case):
        resp = case.call(base_url=url, session=session, timeout=60)
        counts[resp.status_code] = counts.get(resp.status_code, 0) + 1
        assert resp.status_code < 500, (op.path, resp.status_code, resp.text[:300], case.body)

    run()
    return counts


def test_invalid_key_configuration_keeps_the_service_unready(home):
    h, config = home
    env = {"DEALERML_HOME": str(h), "DEALERML_CONFIG": str(config), "DEALERML_API_KEYS": "ok-key-000001:churn;short:churn",
           "DEALERML_SERVE_MODELS": "dealers"}
    with LocalServer(env=env, wait_ready=False) as srv:
        deadline = time.monotonic() + 120
        while "READY" not in srv.log_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        log = srv.log_text()
        assert "the API key configuration is invalid: DEALERML_API_KEYS: entry 2: keys must be at least 8 characters" in log
        assert "ok-key-000001" not in log
        assert httpx.get(srv.url + "/readyz").status_code == 503
        assert _post(srv, "/dealer_scores", {"top_k": 1}, key="ok-key-000001").status_code == 401


# ----------------------------------------------------------------- bad deployment (last)
def test_corrupt_champion_keeps_service_unready_then_rollback_makes_it_ready(home):
    h, config = home
    from training import tracking

    started = time.time()
    # in-process: the registry is what the service reads, not which process wrote it
    with in_env(DEALERML_HOME=str(h), MLFLOW_TRACKING_URI=None):
        est, _ = tracking.load_model("dealerml-churn")
        with tracking.training_run("churn", run_name="corrupt-deploy") as run:
            run.log_model(est, predict_method="predict_proba", metadata={"training_window": {}, "backtest_metrics": {}})
            run.register("dealerml-churn")
        tracking.set_alias("dealerml-churn", "champion", run.registered[0][1])  # as promote --force moves it
    run_id, version = run.run_id, run.registered[0][1]
    boosters = [p for p in h.rglob("booster.txt") if p.stat().st_mtime >= started - 1]
    assert boosters, f"no booster.txt logged by run {run_id} under {h}"
    for p in boosters:
        p.write_text("this is not a LightGBM model\n")
    env = {"DEALERML_HOME": str(h), "DEALERML_CONFIG": str(config), "DEALERML_API_KEYS": KEYS,
           "DEALERML_SERVE_MODELS": "churn"}
    with LocalServer(env=env, wait_ready=False, log_path=h / "server-corrupt.log") as srv:
        deadline = time.monotonic() + 120
        while "could not be loaded" not in srv.log_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        log = srv.log_text()
        line = next(x for x in log.splitlines() if "could not be loaded" in x)
        assert f"model dealerml-churn version {version} (alias champion)" in line and "UNREADY" in line
        assert httpx.get(srv.url + "/readyz").status_code == 503
        assert httpx.get(srv.url + "/livez").status_code == 200
        info = _get(srv, "/model_info").json()
        assert info["ready"] is False and info["models"][0]["status"] == "failed" and info["models"][0]["version"] == version
        r = _post(srv, "/churn_scores", {"account_ids": ["D00001"]})
        assert r.status_code == 503 and f"dealerml-churn (version {version}) failed to load" in r.json()["error"]
        time.sleep(3)
        assert srv.proc.poll() is None and srv.log_text().count("Service dealerml initialized") == 1  # no crash loop
    _cli(h, "rollback", "churn")
    with LocalServer(env=env, log_path=h / "server-rollback.log", via_cli=True) as srv:  # dealerml serve
        info = _get(srv, "/model_info").json()
        assert info["ready"] is True and info["models"][0]["version"] == "1"
        assert _post(srv, "/churn_scores", {"account_ids": [_known_churn_id(srv)]}).status_code == 200


def _known_churn_id(srv) -> str:
    for i in range(1, 400):
        a = f"D{i:05d}"
        if _post(srv, "/churn_scores", {"account_ids": [a]}).status_code == 200:
            return a
    raise AssertionError("no scored account among D00001..D00399")
