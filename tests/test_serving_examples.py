"""serving.examples against a deployment that loads churn alone (`dealerml serve --models churn`).

curl_examples took account ids from /dealer_scores and crashed with KeyError('dealers') when that
endpoint answered 404. The responses below are the shapes the real service gives for a churn-only
deployment (404 from /dealer_scores; alerts rows from /churn_alerts); test_serving.py runs the
same function against a real `bentoml serve` with every model loaded.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from serving.examples import curl_examples


def _server(alerts: list[dict]):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.startswith("/model_info"):
                self._send(200, {"models": [{"name": "dealerml-churn", "summary": {"as_of": "2024-07-01"}}]})
            elif self.path.startswith("/churn_alerts"):
                self._send(200, {"matched": len(alerts), "count": len(alerts), "alerts": alerts})
            else:
                self._send(404, {"error": "no endpoint"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(n) or b"{}")
            if self.path == "/dealer_scores":
                self._send(404, {"error": "this deployment does not serve the dealers model; it loads churn"})
            elif self.path == "/churn_scores":
                self._send(200, {"scores": [{"account_id": a} for a in body["account_ids"]], "not_scored": [],
                                 "unknown_ids": []})
            else:
                self._send(404, {"error": "no endpoint"})

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize("alerts", [[{"account_id": "A7", "model_version": "dealerml-churn/1"}], []])
def test_curl_examples_for_a_churn_only_deployment(alerts):
    srv = _server(alerts)
    try:
        out = curl_examples(f"http://127.0.0.1:{srv.server_port}", "k")
    finally:
        srv.shutdown()
    churn = [x for x in out.splitlines() if "/churn_scores" in x]
    assert len(churn) == 1 and "/dealer_scores" not in out and "/forecast'" not in out
    if alerts:  # an id the deployment really knows
        assert '"account_ids":["A7"]' in churn[0]
    else:  # none to borrow: a placeholder, said so
        assert '"account_ids":["<account_id>"]' in churn[0] and "dealerml score churn" in out
    assert "/churn_alerts?since=2024-07-01" in out
