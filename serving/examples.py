"""Working ``curl`` examples for every endpoint of a running service (for the demo and docs).

``curl_examples(url, key)`` asks the running service (``/model_info``, ``/dealer_scores``,
``/forecast``) for ids it really serves, so every printed command answers 200.
"""

from __future__ import annotations

import json

import httpx

__all__ = ["curl_examples", "curl_examples_static"]


def _cmd(url: str, key: str, method: str, path: str, body: dict | None = None, query: str = "") -> str:
    parts = [f"curl -s -H 'X-API-Key: {key}'"]
    if method == "POST":
        parts.append("-H 'Content-Type: application/json'")
        parts.append(f"-d '{json.dumps(body, separators=(',', ':'))}'")
    parts.append(f"'{url}{path}{query}'")
    return " ".join(parts)


def curl_examples(url: str, key: str) -> str:
    """One runnable curl line per endpoint, with ids taken from the running service."""
    h = {"X-API-Key": key}
    info = httpx.get(f"{url}/model_info", headers=h, timeout=30).json()
    summary = {m["name"]: m.get("summary") or {} for m in info["models"]}
    lines = [f"# probes (no key): curl -s {url}/readyz ; curl -s {url}/metrics | head"]
    lines.append(_cmd(url, key, "GET", "/model_info"))
    demand = summary.get("dealerml-demand")
    if demand:
        loc = (demand.get("filters", {}).get("location") or [None])[0]
        # a champion without a location key (demand.levels: [sku], a series table) has no location
        # filter: start from an id it names in /model_info, and filter by its sku when it has one
        ask = {"location": [loc]} if loc is not None else {"series_ids": demand["series_examples"][:1]}
        fc = httpx.post(f"{url}/forecast", headers=h, json={**ask, "horizon": 1}, timeout=30).json()
        sid = fc["series"][0]["unique_id"]
        lines.append(_cmd(url, key, "POST", "/forecast", {"series_ids": [sid], "horizon": min(4, demand["horizon"]),
                                                            "levels": demand["levels"][:2]}))
        flt = ask if loc is not None else {c: [v] for c, v in fc["series"][0]["keys"].items() if c == "sku"}
        if flt:
            lines.append(_cmd(url, key, "POST", "/forecast", {**flt, "horizon": 2}))
        if demand.get("hierarchy"):  # coherent levels: the series' SKU total and the grand total
            cols = demand["hierarchy"]["key_columns"]
            sku_total = "/".join([fc["series"][0]["keys"][cols[0]], *["*"] * (len(cols) - 1)])
            lines.append(_cmd(url, key, "POST", "/forecast", {"series_ids": ["/".join(["*"] * len(cols)), sku_total],
                                                                "horizon": 2}))
        if demand.get("drivers"):  # a what-if: the first driver planned for a series whose member reads it
            reads = [s for s in fc["series"] if s.get("model") in ("LightGBM", "Ensemble")] or fc["series"]
            name, pid, first = demand["drivers"][0], reads[0]["unique_id"], reads[0]["forecast"][0]
            now = first["drivers"][name]
            planned = 1.0 - now if now in (0.0, 1.0) else round(0.9 * now, 6)  # a flag flipped, else 10 % lower
            lines.append(_cmd(url, key, "POST", "/forecast", {"series_ids": [pid], "horizon": 2, "drivers": [
                {"unique_id": pid, "ds": first["ds"], name: planned}]}))
        lines.append(_cmd(url, key, "POST", "/safety_stock", {"series_ids": [sid], "service_level": 0.95,
                                                                "lead_time_days": 7, "on_hand": {sid: 10}}))
    if summary.get("dealerml-dealers"):
        lines.append(_cmd(url, key, "POST", "/dealer_scores", {"top_k": 5}))
    if summary.get("dealerml-churn"):
        since = summary["dealerml-churn"]["as_of"]
        ids = scorable_accounts(url, h, _some_account_ids(url, h, since))
        if ids:
            lines.append(_cmd(url, key, "POST", "/churn_scores", {"account_ids": ids[:2]}))
        else:  # no id to borrow from a running endpoint: say what to put there
            lines.append("# churn scores: put ids from `dealerml score churn` in account_ids")
            lines.append(_cmd(url, key, "POST", "/churn_scores", {"account_ids": ["<account_id>"]}))
        lines.append(_cmd(url, key, "GET", "/churn_alerts", query=f"?since={since}"))
    return "\n".join(lines)


def _some_account_ids(url: str, headers: dict, since: str) -> list[str]:
    """Account ids the deployment knows: the top dealers when it serves dealer scores, else the
    accounts of its churn alerts (a deployment may load churn alone: ``--models churn``)."""
    r = httpx.post(f"{url}/dealer_scores", headers=headers, json={"top_k": 50}, timeout=30)
    if r.status_code == 200:
        return [d["account_id"] for d in r.json()["dealers"]]
    r = httpx.get(f"{url}/churn_alerts", headers=headers, params={"since": since}, timeout=30)
    if r.status_code == 200:
        body = r.json()
        rows = body.get("alerts", []) if isinstance(body, dict) else []
        return [a["account_id"] for a in rows if isinstance(a, dict) and "account_id" in a][:50]
    return []


def scorable_accounts(url: str, headers: dict, ids: list[str]) -> list[str]:
    """The ids of ``ids`` the served churn model scores: not lapsed (outside its lookback) or
    unknown, as ``/churn_scores`` lists them under ``not_scored`` / ``unknown_ids``."""
    import httpx

    r = httpx.post(f"{url}/churn_scores", headers=headers, json={"account_ids": ids}, timeout=60)
    if r.status_code not in (200, 404):
        return ids
    body = r.json()
    out = set(body.get("unknown_ids", [])) | {x["account_id"] for x in body.get("not_scored", [])}
    return [a for a in ids if a not in out]


def curl_examples_static(url: str, key: str, *, series_id: str, account_id: str, since: str,
                         levels: tuple[int, ...] = (80, 95)) -> str:
    """The same lines without a running service (for printing before ``dealerml serve`` starts).

    ``series_id`` / ``account_id`` must be ones the champions serve (e.g. from the batch
    ``dealerml forecast`` / ``dealerml score churn`` outputs of the same run).
    """
    loc = series_id.split("/")[-1]
    lines = [f"# probes (no key): curl -s {url}/readyz ; curl -s {url}/metrics | head",
             _cmd(url, key, "GET", "/model_info"),
             _cmd(url, key, "POST", "/forecast", {"series_ids": [series_id], "horizon": 4, "levels": list(levels)}),
             _cmd(url, key, "POST", "/forecast", {"location": [loc], "horizon": 2}),
             _cmd(url, key, "POST", "/safety_stock", {"series_ids": [series_id], "service_level": 0.95,
                                                        "lead_time_days": 7, "on_hand": {series_id: 10}}),
             _cmd(url, key, "POST", "/churn_scores", {"account_ids": [account_id]}),
             _cmd(url, key, "GET", "/churn_alerts", query=f"?since={since}"),
             _cmd(url, key, "POST", "/dealer_scores", {"top_k": 5})]
    return "\n".join(lines)
