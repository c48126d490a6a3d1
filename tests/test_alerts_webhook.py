"""`dealerml alerts --webhook` as a CRM integrator expects a webhook sender (GitHub / Stripe):
an HMAC-SHA256 signature of the exact body and a timestamp, keyed by $DEALERML_WEBHOOK_SECRET;
a delivery id that stays the same on retries and re-runs of a cutoff; bounded retries on
timeouts, unreachable receivers, 429 and 5xx, none on other 4xx; and nothing recorded unless
the delivery finally succeeded. Against a real HTTP receiver on 127.0.0.1 (no mocked httpx)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from training import _alerts_webhook, alerts
from training.alerts import record_alerts
from training.errors import ConfigError, DealermlError
from training.scores import open_db

SECRET = "whsec-s11-Zq8v3LrT0pKx"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def verify(secret: bytes, headers, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, exactly as proposed for the README."""
    ts = headers.get("X-Dealerml-Timestamp", "")
    delivery = headers.get("X-Dealerml-Delivery", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance:
        return False  # missing, or too old / in the future: a replay
    msg = f"{ts}.{delivery}.".encode() + body
    want = "sha256=" + hmac.new(secret, msg, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, headers.get("X-Dealerml-Signature", ""))


class _Receiver(BaseHTTPRequestHandler):
    """Answers each POST with the next (status, extra headers, body, delay) of ``script``,
    then 200; keeps the headers and the exact body bytes of every POST. A delay of ``TRICKLE_HEAD``
    sends the status line one byte a second; ``TRICKLE_BODY`` sends the headers at once and the body
    one byte a second (both stop when the sender hangs up)."""

    script: list = []
    posts: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.posts.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
        status, extra, text, delay = cls.script.pop(0) if cls.script else (200, {}, "ok", 0)
        if delay in (TRICKLE_HEAD, TRICKLE_BODY):
            return self._trickle(status, text.encode(), delay)
        time.sleep(delay)
        try:
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            data = text.encode()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the sender timed out and hung up
            pass

    def _trickle(self, status: int, data: bytes, how: str) -> None:
        head = f"HTTP/1.0 {status} OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        slow = head + data if how == TRICKLE_HEAD else data
        try:
            if how == TRICKLE_BODY:
                self.wfile.write(head)
            for i in range(len(slow)):
                self.wfile.write(slow[i:i + 1])
                self.wfile.flush()
                time.sleep(1.0)
        except OSError:  # the sender gave up and hung up
            pass

    def log_message(self, *a):
        pass


TRICKLE_HEAD, TRICKLE_BODY = "trickle-head", "trickle-body"


@pytest.fixture()
def hook(monkeypatch):
    """A receiver on 127.0.0.1 and short retry waits (0.2 s, 0.3 s instead of 1 s, 4 s)."""
    monkeypatch.setattr(_alerts_webhook, "WEBHOOK_BACKOFF_S", (0.2, 0.3))
    monkeypatch.delenv("DEALERML_WEBHOOK_SECRET", raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.script, _Receiver.posts = [], []
    yield f"http://127.0.0.1:{server.server_port}/crm/hook"
    server.shutdown()
    server.server_close()


def _scores(ids, tier="high") -> pd.DataFrame:
    return pd.DataFrame({"account_id": ids, "probability": 0.9, "tier": tier, "reason_1": "41 days overdue",
                         "expected_value": 100.0, "revenue_at_risk": 500.0, "model_version": "3"})


def _recorded(target, table="churn_alerts") -> tuple[int, int, int]:
    """(alerts, state rows, runs) in the target: (0, 0, 0) when nothing was recorded."""
    with open_db(target) as db:
        if not db.table_exists(f"{table}_runs"):
            return 0, 0, 0
        return tuple(int(db.query(f'select count(*) as n from "{t}"')["n"].iloc[0])
                     for t in (table, f"{table}_state", f"{table}_runs"))


@pytest.fixture()
def where(tmp_path, request):
    """(target, table) of the kind given by the test's ``kind`` parameter; PostgreSQL tables are
    unique to the test and dropped after it."""
    import uuid

    kind = request.node.callspec.params["kind"]
    if kind != "postgres":
        yield tmp_path / ("a.duckdb" if kind == "duckdb" else "a.sqlite"), "churn_alerts"
        return
    table = f"t_hook_{uuid.uuid4().hex[:8]}"
    yield PG_URL, table
    with open_db(PG_URL) as db:
        for t in (table, f"{table}_state", f"{table}_runs"):
            db.execute(f'drop table if exists "{t}"')


def test_signature_verifies_with_the_secret_and_fails_with_another(hook, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", SECRET)
    r = record_alerts(_scores(["A", "B"]), tmp_path / "a.duckdb", "2024-05-01", webhook=hook)
    assert r["attempts"] == 1 and len(_Receiver.posts) == 1
    post = _Receiver.posts[0]
    h, body = post["headers"], post["body"]
    assert verify(SECRET.encode(), h, body)
    assert not verify(b"another-secret-entirely", h, body)
    assert not verify(SECRET.encode(), h, body.replace(b'"A"', b'"Z"'))  # a changed body
    assert not verify(SECRET.encode(), {**h, "X-Dealerml-Delivery": "0" * 36}, body)  # a changed id
    assert not verify(SECRET.encode(), {**h, "X-Dealerml-Timestamp": str(int(h["X-Dealerml-Timestamp"]) - 3600)},
                      body)  # a replayed timestamp: neither its signature nor the window holds
    assert h["X-Dealerml-Signature"].startswith("sha256=") and len(h["X-Dealerml-Signature"]) == 7 + 64
    assert abs(int(h["X-Dealerml-Timestamp"]) - time.time()) < 60
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"] == f"dealerml/{_alerts_webhook._version()}" and _alerts_webhook._version()[0].isdigit()
    assert h["X-Dealerml-Delivery"] == r["delivery"]
    sent = json.loads(body)
    assert sent["cutoff"] == "2024-05-01" and [a["account_id"] for a in sent["alerts"]] == ["A", "B"]
    assert _recorded(tmp_path / "a.duckdb") == (2, 2, 1)
    out = capfd.readouterr()
    assert "not signed" not in out.err and SECRET not in out.out + out.err


def test_without_a_secret_the_post_is_unsigned_and_said_once(hook, tmp_path, capfd):
    notes: list[str] = []
    record_alerts(_scores(["A"]), tmp_path / "a.duckdb", "2024-05-01", webhook=hook, notify=notes.append)
    h = _Receiver.posts[0]["headers"]
    assert "X-Dealerml-Signature" not in h and "X-Dealerml-Delivery" in h
    assert not verify(SECRET.encode(), h, _Receiver.posts[0]["body"])  # a receiver that requires one refuses it
    assert len(notes) == 1 and "$DEALERML_WEBHOOK_SECRET is not set" in notes[0] and "not signed" in notes[0]
    # the library's default: stderr, once
    record_alerts(_scores(["A", "B"]), tmp_path / "a.duckdb", "2024-06-01", webhook=hook)
    err = capfd.readouterr().err
    assert err.count("not signed") == 1 and "DEALERML_WEBHOOK_SECRET" in err


def test_an_empty_secret_is_refused_before_the_database_is_touched(hook, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", "  ")
    with pytest.raises(ConfigError, match=r"\$DEALERML_WEBHOOK_SECRET is set but empty"):
        record_alerts(_scores(["A"]), tmp_path / "a.duckdb", "2024-05-01", webhook=hook)
    assert not (tmp_path / "a.duckdb").exists() and _Receiver.posts == []


@pytest.mark.parametrize("kind", KINDS)
def test_503_twice_then_200_is_one_recorded_run(hook, where, kind, monkeypatch):
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", SECRET)
    target, table = where
    _Receiver.script = [(503, {}, "busy", 0), (503, {}, "still busy", 0)]
    notes: list[str] = []
    t0 = time.monotonic()
    r = record_alerts(_scores(["A", "B", "C"]), target, "2024-05-01", table=table, webhook=hook,
                      notify=notes.append)
    assert r["attempts"] == 3 and len(r["new"]) == 3 and time.monotonic() - t0 >= 0.5  # waited 0.2 + 0.3 s
    posts = _Receiver.posts
    assert len(posts) == 3
    assert posts[1]["at"] - posts[0]["at"] >= 0.2 and posts[2]["at"] - posts[1]["at"] >= 0.3
    assert len({p["headers"]["X-Dealerml-Delivery"] for p in posts}) == 1  # one delivery, three attempts
    assert len({p["body"] for p in posts}) == 1  # the same bytes each time
    assert all(verify(SECRET.encode(), p["headers"], p["body"]) for p in posts)  # each attempt signed anew
    assert _recorded(target, table) == (3, 3, 1)
    assert [n.split(";")[0] for n in notes] == [f"webhook {hook} answered 503: busy",
                                                f"webhook {hook} answered 503: still busy"]
    assert "retrying in 0.2 s (attempt 2 of 3)" in notes[0] and "retrying in 0.3 s (attempt 3 of 3)" in notes[1]
    # a re-run of the recorded date posts nothing
    again = record_alerts(_scores(["A", "B", "C"]), target, "2024-05-01", table=table, webhook=hook)
    assert again["already_ran"] and len(_Receiver.posts) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_400_is_not_retried_and_records_nothing(hook, where, kind):
    target, table = where
    # tables and state exist from an earlier run: the failed one must leave them as they were
    record_alerts(_scores(["A"], tier="low"), target, "2024-04-01", table=table)
    before = _recorded(target, table)
    _Receiver.script = [(400, {"Content-Type": "application/json"}, '{"error": "unknown field tier"}', 0)]
    with pytest.raises(DealermlError) as err:
        record_alerts(_scores(["A", "B"]), target, "2024-05-01", table=table, webhook=hook, notify=lambda m: None)
    msg = str(err.value)
    assert len(_Receiver.posts) == 1  # not retried
    assert f'webhook {hook} answered 400: {{"error": "unknown field tier"}} (not retried' in msg
    assert "nothing was recorded for 2024-05-01" in msg and "--cutoff 2024-05-01" in msg
    assert _recorded(target, table) == before == (0, 1, 1)
    # the next run for that date delivers and records it
    record_alerts(_scores(["A", "B"]), target, "2024-05-01", table=table, webhook=hook, notify=lambda m: None)
    assert _recorded(target, table) == (2, 2, 2)


def test_delivery_id_is_the_same_on_a_rerun_of_the_same_cutoff(hook, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", SECRET)
    target = tmp_path / "a.duckdb"
    quiet = {"webhook": hook, "notify": lambda m: None}
    _Receiver.script = [(503, {}, "down", 0)] * 3
    with pytest.raises(DealermlError, match=r"answered 503: down \(attempt 3 of 3; giving up\)") as err:
        record_alerts(_scores(["A"]), target, "2024-05-01", **quiet)
    assert _recorded(target) == (0, 0, 0)
    first = {p["headers"]["X-Dealerml-Delivery"] for p in _Receiver.posts}
    assert len(first) == 1 and len(_Receiver.posts) == 3
    (delivery,) = first
    assert f"X-Dealerml-Delivery: {delivery}" in str(err.value)
    r = record_alerts(_scores(["A"]), target, "2024-05-01", **quiet)  # the retry run: delivered
    assert r["delivery"] == delivery and _Receiver.posts[-1]["headers"]["X-Dealerml-Delivery"] == delivery
    assert _recorded(target) == (1, 1, 1)
    # the same id from another spelling of the same file; others for another date, table or file
    assert alerts.webhook_delivery_id(str(target), "churn_alerts", "2024-05-01") == delivery
    assert alerts.webhook_delivery_id(tmp_path / "." / "a.duckdb", "churn_alerts", "2024-05-01") == delivery
    r2 = record_alerts(_scores(["A", "B"]), target, "2024-06-01", **quiet)
    assert r2["delivery"] != delivery and _Receiver.posts[-1]["headers"]["X-Dealerml-Delivery"] == r2["delivery"]
    assert alerts.webhook_delivery_id(target, "other_alerts", "2024-05-01") != delivery
    assert alerts.webhook_delivery_id(tmp_path / "b.duckdb", "churn_alerts", "2024-05-01") != delivery
    # a URL target: the id does not change with (nor reveal) the password
    pg = "postgresql+psycopg://crm:{}@db.example/crm"
    assert alerts.webhook_delivery_id(pg.format("pw1"), "t", "2024-05-01") == \
        alerts.webhook_delivery_id(pg.format("pw2"), "t", "2024-05-01")


def test_retry_after_is_honoured_and_a_long_one_ends_the_run(hook, tmp_path):
    target = tmp_path / "a.duckdb"
    quiet = {"webhook": hook, "notify": lambda m: None}
    _Receiver.script = [(429, {"Retry-After": "1"}, "slow down", 0)]
    record_alerts(_scores(["A"]), target, "2024-05-01", **quiet)
    p = _Receiver.posts
    assert len(p) == 2 and p[1]["at"] - p[0]["at"] >= 1.0  # 1 s asked, more than the 0.2 s backoff
    _Receiver.script = [(503, {"Retry-After": "120"}, "maintenance", 0)]
    t0 = time.monotonic()
    with pytest.raises(DealermlError, match=r"answered 503: maintenance and asked to retry after 120 s, longer than "
                                            r"dealerml waits \(10 s; attempt 1 of 3: not retried now\)") as err:
        record_alerts(_scores(["A", "B"]), target, "2024-06-01", **quiet)
    assert time.monotonic() - t0 < 5 and len(_Receiver.posts) == 3
    assert "nothing was recorded for 2024-06-01" in str(err.value)
    assert _recorded(target) == (1, 1, 1)


def test_timeouts_and_a_refused_connection_are_retried_then_nothing_is_recorded(hook, tmp_path, monkeypatch):
    import socket

    monkeypatch.setattr(_alerts_webhook, "WEBHOOK_TIMEOUT_S", 0.5)
    target = tmp_path / "a.duckdb"
    notes: list[str] = []
    _Receiver.script = [(200, {}, "late", 1.5)]  # answers after the sender gave up
    r = record_alerts(_scores(["A"]), target, "2024-05-01", webhook=hook, notify=notes.append)
    assert r["attempts"] == 2 and len(_Receiver.posts) == 2 and "timed out (ReadTimeout after 0.5 s)" in notes[1]
    # (the receiver got this delivery twice: it de-duplicates on X-Dealerml-Delivery)
    assert _Receiver.posts[0]["headers"]["X-Dealerml-Delivery"] == _Receiver.posts[1]["headers"]["X-Dealerml-Delivery"]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notes.clear()
    t0 = time.monotonic()
    with pytest.raises(DealermlError, match=r"could not be reached: .*\(attempt 3 of 3; giving up\); nothing was "
                                            r"recorded for 2024-06-01"):
        record_alerts(_scores(["A", "B"]), target, "2024-06-01", webhook=f"http://127.0.0.1:{port}/h",
                      notify=notes.append)
    assert 0.5 <= time.monotonic() - t0 < 5 and len(notes) == 3  # unsigned + 2 retries
    assert _recorded(target) == (1, 1, 1)


def test_redirects_are_final_and_hide_the_location_query(hook, tmp_path):
    _Receiver.script = [(302, {"Location": "https://crm.example/new?token=T0K3N"}, "", 0)]
    with pytest.raises(DealermlError, match="answered 302 .a redirect to https://crm.example/new.\\*\\*\\*") as err:
        record_alerts(_scores(["A"]), tmp_path / "a.duckdb", "2024-05-01", webhook=hook, notify=lambda m: None)
    assert "T0K3N" not in str(err.value) and len(_Receiver.posts) == 1
    assert _recorded(tmp_path / "a.duckdb") == (0, 0, 0)


def test_the_secret_never_appears_in_the_cli_output(hook, tmp_path, monkeypatch, synthetic_config, synthetic_book):
    """`dealerml alerts --webhook` end to end: a failed delivery (503 x 3) and then a delivered one;
    the secret is in no line it prints, on stdout or stderr, and the receiver can verify both."""
    import yaml
    from conftest import write_config
    from typer.testing import CliRunner

    from training.churn_backtest import churn_cutoffs, churn_settings, fit_churn
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", SECRET)
    config = write_config(synthetic_config, tmp_path / "churn.yaml",
                          churn={"n_train_cutoffs": 2, "model": {"n_estimators": 20},
                                 "tiers": {"high_probability": 0.3, "contact_cost": 1.0, "capacity_per_run": 5}})
    s = churn_settings(yaml.safe_load(config.read_text())["churn"])
    model, _, _ = fit_churn(synthetic_book, s, churn_cutoffs("2024-04-02", s, first_date="2022-01-01"), num_threads=1)
    model.save(tmp_path / "m")
    target = tmp_path / "crm.duckdb"
    args = ["alerts", "--config", str(config), "--cutoff", "2024-05-01", "--target", str(target),
            "--model", str(tmp_path / "m"), "--webhook", hook + "?token=T0K3N"]
    _Receiver.script = [(503, {}, "busy", 0)] * 3
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 2 and "giving up" in failed.output and "nothing was recorded" in failed.output
    assert _recorded(target) == (0, 0, 0)
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    n = _recorded(target)[0]
    assert n > 0 and f"{n} new alerts for 2024-05-01" in ok.output
    delivery = _Receiver.posts[-1]["headers"]["X-Dealerml-Delivery"]
    assert f"posted to {hook}?*** (X-Dealerml-Delivery: {delivery})" in ok.output
    assert len(_Receiver.posts) == 4 and {p["headers"]["X-Dealerml-Delivery"] for p in _Receiver.posts} == {delivery}
    assert all(verify(SECRET.encode(), p["headers"], p["body"]) for p in _Receiver.posts)
    for out in (failed.output, ok.output, getattr(failed, "stderr", ""), getattr(ok, "stderr", "")):
        assert SECRET not in out and "T0K3N" not in out


def test_cli_refuses_an_empty_secret_before_the_scoring(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", "")
    r = CliRunner().invoke(app, ["alerts", "--config", str(tmp_path / "none.yaml"), "--cutoff", "2024-06-01",
                                 "--target", str(tmp_path / "a.duckdb"), "--webhook", "https://crm.example/hook"])
    assert r.exit_code == 2 and "$DEALERML_WEBHOOK_SECRET is set but empty" in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "a.duckdb").exists()


def test_a_retry_after_that_is_not_ascii_digits_is_ignored_not_a_traceback(hook, tmp_path):
    """Retry-After is ASCII delta-seconds or an HTTP date; str.isdigit() also takes '²' or Arabic-Indic
    digits, and float('²') raised a ValueError out of the delivery (a traceback, not a retry)."""
    assert _alerts_webhook._retry_after("²") is None and _alerts_webhook._retry_after("٣") is None
    assert _alerts_webhook._retry_after("3") == 3.0 and _alerts_webhook._retry_after(" 3 ") == 3.0
    # a receiver answering 503 with such a header (sent as the byte 0xB2): the backoff, then delivered
    _Receiver.script = [(503, {"Retry-After": "²"}, "busy", 0)]
    r = record_alerts(_scores(["A"]), tmp_path / "a.duckdb", "2024-05-01", webhook=hook, notify=lambda m: None)
    assert r["attempts"] == 2 and len(_Receiver.posts) == 2
    assert _Receiver.posts[1]["at"] - _Receiver.posts[0]["at"] >= 0.2  # the (test's) 1st backoff
    assert _recorded(tmp_path / "a.duckdb") == (1, 1, 1)


def test_a_secret_of_raw_bytes_signs_with_those_bytes(hook, tmp_path, monkeypatch):
    """A secret that is not UTF-8 text (e.g. export DEALERML_WEBHOOK_SECRET=$(head -c 32 /dev/urandom)) reaches
    Python with its bytes as surrogate escapes; .encode('utf-8') raised a UnicodeEncodeError traceback before
    the scoring. It signs with the variable's bytes, which the receiver verifies with."""
    raw = b"whsec-\xff\xfe\x80-raw-bytes"
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", raw.decode("utf-8", "surrogateescape"))
    assert alerts.webhook_secret() == raw
    record_alerts(_scores(["A"]), tmp_path / "a.duckdb", "2024-05-01", webhook=hook, notify=lambda m: None)
    post = _Receiver.posts[0]
    assert verify(raw, post["headers"], post["body"]) and _recorded(tmp_path / "a.duckdb") == (1, 1, 1)


def test_a_trickling_answer_is_cut_off_at_the_attempt_deadline_and_nothing_is_recorded(hook, tmp_path, monkeypatch):
    """httpx's timeout bounds each read, so a receiver (or proxy) that trickles its answer a byte a second
    held an attempt - and the alerts table's lock - for as long as it trickled. Each attempt now ends
    at $DEALERML_WEBHOOK_TIMEOUT_SECONDS (1 s here; 10 s per read, never reached), is retried, and after
    the last one `dealerml alerts` records nothing and exits 2 naming the URL without its query."""
    import threading
    import types

    from typer.testing import CliRunner

    from training.cli import app
    from training.commands import churn as churn_cmd

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", "1")
    monkeypatch.setattr(churn_cmd, "_scores", lambda *a: (_scores(["A", "B"]), types.SimpleNamespace(
        alerts_table="churn_alerts")))
    target = tmp_path / "crm.duckdb"
    record_alerts(_scores(["A"], tier="low"), target, "2024-04-01")  # an earlier run: tables and state
    before = _recorded(target)
    threads = set(threading.enumerate())
    _Receiver.script = [(200, {}, "ok, got them", TRICKLE_BODY)] * 3  # 12 s of body each
    # read for churn.alerts_table before the scoring (e63ca4f: a recorded date is answered first); no data is read
    (tmp_path / "unused.yaml").write_text("name: u\ndata: {order_lines: {path: none.csv}}\n")
    args = ["alerts", "--config", str(tmp_path / "unused.yaml"), "--cutoff", "2024-05-01", "--target", str(target),
            "--webhook", hook + "?token=T0K3N"]
    t0 = time.monotonic()
    r = CliRunner().invoke(app, args)
    took = time.monotonic() - t0
    assert r.exit_code == 2, r.output
    p = [post["at"] for post in _Receiver.posts]
    assert len(p) == 3, r.output
    # each attempt ended at its 1 s deadline, then waited the (test's) 0.2 s / 0.3 s backoff; the receiver
    # stamps a POST when it arrives, after the attempt's start (its name lookup, connect), so a gap can
    # fall a few ms short of deadline + backoff (1.294 s seen against 1.3): 0.1 s of slack below
    assert 1.1 <= p[1] - p[0] < 1.7 and 1.2 <= p[2] - p[1] < 1.8 and 3.4 <= took < 5, (p, took)
    cut = "timed out (no complete answer within 1 s, $DEALERML_WEBHOOK_TIMEOUT_SECONDS)"
    assert f"webhook {hook}?*** {cut}; retrying in 0.2 s (attempt 2 of 3)" in r.output
    assert (f"error: webhook {hook}?*** {cut} (attempt 3 of 3; giving up); nothing was recorded for 2024-05-01"
            in " ".join(r.output.split()))
    assert "T0K3N" not in r.output and "Traceback" not in r.output
    assert _recorded(target) == before == (0, 1, 1)  # the earlier run's tables, unchanged
    # the delivery left no thread of its own behind (the receiver's trickling handlers aside)
    assert {t for t in threading.enumerate() if "process_request" not in t.name} <= threads


def test_a_trickled_status_line_is_cut_off_too_and_a_prompt_answer_is_unchanged(hook, tmp_path, monkeypatch):
    """The deadline also covers the wait for the headers (a status line sent a byte a second never
    reaches httpx's answer); an answer within it - prompt or 0.5 s late - is delivered as before."""
    monkeypatch.setenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", SECRET)
    target = tmp_path / "a.duckdb"
    notes: list[str] = []
    _Receiver.script = [(200, {}, "ok", TRICKLE_HEAD)]
    t0 = time.monotonic()
    r = record_alerts(_scores(["A"]), target, "2024-05-01", webhook=hook, notify=notes.append)
    assert r["attempts"] == 2 and 1.2 <= time.monotonic() - t0 < 2.0
    assert notes == [f"webhook {hook} timed out (no complete answer within 1 s, $DEALERML_WEBHOOK_TIMEOUT_SECONDS); "
                     "retrying in 0.2 s (attempt 2 of 3)"]
    assert _recorded(target) == (1, 1, 1)
    posts = _Receiver.posts
    assert len({p["body"] for p in posts}) == 1 and all(verify(SECRET.encode(), p["headers"], p["body"]) for p in posts)
    _Receiver.script = [(200, {}, "ok", 0.5)]  # slow, but within the attempt's second
    notes.clear()
    r = record_alerts(_scores(["A", "B"]), target, "2024-06-01", webhook=hook, notify=notes.append)
    assert r["attempts"] == 1 and notes == [] and _recorded(target) == (2, 2, 2)


@pytest.mark.parametrize("value", ["0", "0.5", "121", "-3", "abc", "nan", "inf", "1e9", "\u0661\u0665", "15 s"])
def test_a_bad_attempt_timeout_is_refused_naming_the_variable_before_the_database(tmp_path, monkeypatch, value):
    monkeypatch.setenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", value)
    with pytest.raises(ConfigError) as err:  # (nothing listens on port 9: it is never reached)
        record_alerts(_scores(["A"]), tmp_path / "a.duckdb", "2024-05-01", webhook="http://127.0.0.1:9/h",
                      notify=lambda m: None)
    assert str(err.value) == ("$DEALERML_WEBHOOK_TIMEOUT_SECONDS must be a number of seconds between 1 and 120 (the "
                              "most one webhook POST attempt may take, answer included; default 15); "
                              f"got {value!r}")
    assert not (tmp_path / "a.duckdb").exists()


def test_the_attempt_timeout_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", raising=False)
    assert alerts.webhook_timeout_seconds() == 15.0
    for raw, want in (("", 15.0), ("  ", 15.0), ("1", 1.0), (" 2.5 ", 2.5), ("120", 120.0), ("30", 30.0)):
        monkeypatch.setenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", raw)
        assert alerts.webhook_timeout_seconds() == want
    # a run without --webhook does not read it
    monkeypatch.setenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", "abc")
    assert len(record_alerts(_scores(["A"]), tmp_path / "a.duckdb", "2024-05-01")["new"]) == 1


def test_cli_refuses_a_bad_attempt_timeout_before_the_scoring(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", "0")
    r = CliRunner().invoke(app, ["alerts", "--config", str(tmp_path / "none.yaml"), "--cutoff", "2024-06-01",
                                 "--target", str(tmp_path / "a.duckdb"), "--webhook", "https://crm.example/hook"])
    assert r.exit_code == 2 and "$DEALERML_WEBHOOK_TIMEOUT_SECONDS must be a number of seconds between 1 and 120" \
        in " ".join(r.output.split()) and "got '0'" in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "a.duckdb").exists()


def test_a_hanging_name_lookup_is_cut_off_at_the_attempt_deadline_naming_the_host(hook, tmp_path, monkeypatch):
    """socket.create_connection resolves the host with no timeout, so a resolver that did not answer
    held `dealerml alerts` (and the alerts table's lock) indefinitely, outside the attempt's deadline.
    The lookup is now under it: each attempt ends at $DEALERML_WEBHOOK_TIMEOUT_SECONDS naming the host,
    is retried, and nothing is recorded. A slow lookup within the deadline delivers as before, to the
    resolved address with the URL's Host. (getaddrinfo is replaced for one name only: DNS is the
    system's, not dealerml's; the receiver is the real one on 127.0.0.1.)"""
    import socket

    real, release, lookups = socket.getaddrinfo, threading.Event(), []
    delay: dict[str, float | None] = {"s": None}

    def getaddrinfo(host, port, *args, **kw):
        if host != "crm-hook.test":
            return real(host, port, *args, **kw)
        lookups.append(time.monotonic())
        if delay["s"] is None:
            release.wait(60)  # a resolver that does not answer
        else:
            time.sleep(delay["s"])
        return real("127.0.0.1", port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("DEALERML_WEBHOOK_TIMEOUT_SECONDS", "1")
    url = hook.replace("127.0.0.1", "crm-hook.test")
    target = tmp_path / "a.duckdb"
    record_alerts(_scores(["A"], tier="low"), target, "2024-04-01")  # an earlier run: tables and state
    notes: list[str] = []
    try:
        t0 = time.monotonic()
        with pytest.raises(DealermlError) as err:
            record_alerts(_scores(["A", "B"]), target, "2024-05-01", webhook=url, notify=notes.append)
        end = time.monotonic()
        cut = "timed out resolving the host name 'crm-hook.test' (no address within 1 s, $DEALERML_WEBHOOK_TIMEOUT_SECONDS)"
        # from the first lookup: 3 attempts cut at 1 s and the (test's) 0.2 s + 0.3 s backoff
        assert len(lookups) == 3 and 3.45 <= end - lookups[0] < 4.2 and end - t0 < 6, (t0, lookups, end)
        assert 1.15 <= lookups[1] - lookups[0] < 1.6 and 1.25 <= lookups[2] - lookups[1] < 1.7, lookups
        assert _Receiver.posts == []
        assert str(err.value).startswith(f"webhook {url} {cut} (attempt 3 of 3; giving up); nothing was recorded "
                                         "for 2024-05-01"), str(err.value)
        assert notes[1:] == [f"webhook {url} {cut}; retrying in 0.2 s (attempt 2 of 3)",
                             f"webhook {url} {cut}; retrying in 0.3 s (attempt 3 of 3)"]
        assert _recorded(target) == (0, 1, 1)  # the earlier run's tables, unchanged
        # the per-wait timeout, when shorter than the attempt's, bounds the lookup too (and says so)
        lookups.clear()
        t0 = time.monotonic()
        with pytest.raises(DealermlError, match=r"timed out resolving the host name 'crm-hook.test' \(no address "
                                                r"within 0.5 s\) \(attempt 1 of 1; giving up\)"):
            _alerts_webhook._post(url, {"cutoff": "2024-05-01", "alerts": []}, "2024-05-01", delivery="d",
                                  secret=None, notify=lambda m: None, timeout=0.5, backoff=(), deadline=1.0)
        assert 0.45 <= time.monotonic() - t0 < 0.9 and len(lookups) == 1
    finally:
        release.set()  # the abandoned lookups end
    delay["s"] = 0.3  # slow, but within the attempt's second
    notes.clear()
    r = record_alerts(_scores(["A", "B"]), target, "2024-05-01", webhook=url, notify=notes.append)
    assert r["attempts"] == 1 and notes[1:] == [] and _recorded(target) == (2, 2, 2)
    assert _Receiver.posts[0]["headers"]["Host"] == url.split("/")[2]


@pytest.mark.postgres
def test_the_posted_alerts_carry_the_values_the_table_holds(hook, monkeypatch):
    """The body is '{"cutoff", "alerts": [one object per alerts-table row]}' (README): the probability
    0.9972972591998471 recorded in PostgreSQL (and answered by GET /churn_alerts) was posted as
    0.9972972592, and an amount of 3e-11 as 0.0 (pandas' to_json keeps 10 significant digits), so a
    receiver matching the webhook against the table found other numbers. Now the floats as recorded."""
    import uuid

    from training.alerts import read_alerts

    monkeypatch.setenv("DEALERML_WEBHOOK_SECRET", SECRET)
    table = f"t_hook_{uuid.uuid4().hex[:8]}"
    scores = _scores(["D00127", "D00191"]).assign(
        probability=[0.9972972591998471, 0.6664634203785879], expected_value=[133.99642614410726, 3e-11],
        revenue_at_risk=[184.4950684931507, float("nan")], reason_2=["no orders in the last 90 days", None])
    try:
        record_alerts(scores, PG_URL, "2024-12-01", table=table, webhook=hook)
        (post,) = _Receiver.posts
        assert verify(SECRET.encode(), post["headers"], post["body"])
        sent = json.loads(post["body"])["alerts"]
        with open_db(PG_URL) as db:
            held = db.query(f'select account_id, probability, expected_value, revenue_at_risk, reason_2 from "{table}" '
                            "order by account_id")
        assert [(a["account_id"], a["probability"], a["expected_value"], a["revenue_at_risk"], a["reason_2"])
                for a in sent] == [
            ("D00127", 0.9972972591998471, 133.99642614410726, 184.4950684931507, "no orders in the last 90 days"),
            ("D00191", 0.6664634203785879, 3e-11, None, None)]
        assert held["probability"].tolist() == [a["probability"] for a in sent]
        assert held["expected_value"].tolist() == [a["expected_value"] for a in sent]
        assert read_alerts(PG_URL, table=table)["probability"].tolist() == [a["probability"] for a in sent]
    finally:
        with open_db(PG_URL) as db:
            for t in (table, f"{table}_state", f"{table}_runs"):
                db.execute(f'drop table if exists "{t}"')
