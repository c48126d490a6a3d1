"""Security review (s10): database passwords stay out of what is printed or logged, score files
keep their permissions, and a bad score / alerts target is refused before any work.

* An experiment config may give a source's URL as ``postgresql+psycopg://reader:${PGPASSWORD}@...``
  (docs/DATA.md): the MLflow run of a training logged ``config/resolved.json`` with the password
  expanded, for anyone who can read the store. Params, tags and dict / config-file artifacts now
  carry ``***`` instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from _support_cli import _err  # exit 2, no traceback, the message on one line
from _support_tuning import _client

SECRET = "Sup3r-S3cret-pw"


def _config(tmp_path: Path, url: str, alerts_target: str) -> Path:
    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-01,a,s,1,1\n")
    cfg = {"name": "sec", "seed": 7,
           "data": {"order_lines": {"path": str(csv)}, "accounts": {"url": url, "table": "accounts"}},
           "serving": {"alerts_target": alerts_target}}
    p = tmp_path / "sec.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def test_mlflow_run_logs_no_database_password(home, tmp_path, monkeypatch):
    from training import tracking
    from training.config import load_config

    monkeypatch.setenv("SEC_TEST_PGPASSWORD", SECRET)
    cfg_path = _config(tmp_path, "postgresql+psycopg://reader:${SEC_TEST_PGPASSWORD}@127.0.0.1:5432/test",
                       f"postgresql+psycopg://crm:{SECRET}@127.0.0.1:5432/test")
    cfg = load_config(cfg_path)
    assert SECRET in cfg.data.accounts.url  # the run itself reads with the password
    with tracking.training_run("churn", config=cfg) as run:
        run.log_params({"out": f"postgresql://u:{SECRET}@db/x#churn_scores"})
        run.set_tags({"target": f"postgresql://u:{SECRET}@db/x"})
    client = _client(home)
    r = client.get_run(run.run_id)
    assert r.data.params["out"] == "postgresql://u:***@db/x#churn_scores"
    assert r.data.tags["target"] == "postgresql://u:***@db/x"
    arts = Path(home / "mlruns" / "dealerml-churn" / run.run_id / "artifacts" / "config")
    resolved = json.loads((arts / "resolved.json").read_text())
    assert resolved["data"]["accounts"]["url"] == "postgresql+psycopg://reader:***@127.0.0.1:5432/test"
    assert resolved["serving"]["alerts_target"] == "postgresql+psycopg://crm:***@127.0.0.1:5432/test"
    logged_yaml = (arts / "sec.yaml").read_text()
    assert "crm:***@127.0.0.1" in logged_yaml and "${SEC_TEST_PGPASSWORD}" in logged_yaml
    assert SECRET in cfg_path.read_text()  # the user's file is left as it is
    for f in (home / "mlruns").rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET.encode() not in (home / "mlflow.db").read_bytes()


# ------------------------------------------------------------------ CLI and config messages
def _cli(*args):
    from typer.testing import CliRunner

    from training.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_and_config_errors_hide_url_passwords(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tmp_path / "c.yaml"
    # alerts --target URL#table: the message quoted the URL with its password
    out = _err(_cli("alerts", "--config", cfg, "--cutoff", "2024-06-01",
                    "--target", f"postgresql+psycopg://crm:{SECRET}@127.0.0.1/test#alerts"))
    assert SECRET not in out and "--target postgresql+psycopg://crm:***@127.0.0.1/test#alerts" in out
    out = _err(_cli("alerts", "--config", cfg, "--cutoff", "2024-06-01", "--webhook", f"ftp://u:{SECRET}@hooks/x"))
    assert SECRET not in out and "--webhook ftp://***@hooks/x" in out
    # without a scheme: named as given (it printed '://crm.example.com/hook'), credentials and query hidden
    out = _err(_cli("alerts", "--config", cfg, "--cutoff", "2024-06-01", "--webhook", f"u:{SECRET}@hooks/x?t=1"))
    assert SECRET not in out and "--webhook '***@hooks/x?***': expected an http:// or https:// URL" in out
    # a port that is not a number: a traceback after all the scoring; now refused before any work
    out = _err(_cli("alerts", "--config", cfg, "--cutoff", "2024-06-01",
                    "--target", f"postgresql+psycopg://crm:{SECRET}@127.0.0.1:5432x/test"))
    assert SECRET not in out and "crm:***@127.0.0.1:5432x/test: not a valid database URL" in out
    out = _err(_cli("score", "churn", "--config", cfg, "--cutoff", "2024-06-01",
                    "--out", f"postgresql+psycopg://crm:{SECRET}@127.0.0.1:pg/test#churn_scores"))
    assert SECRET not in out and "not a valid database URL" in out
    # a config whose data url is invalid quoted it whole; a YAML error quoted the line
    cfg.write_text("name: c\ndata:\n  order_lines:\n    path: o.csv\n  accounts:\n"
                   f"    url: postgresql+psycopg://reader:{SECRET}@db:port/erp\n    table: accounts\n")
    out = _err(_cli("data", "validate", "--config", cfg))
    assert SECRET not in out and "postgresql+psycopg://reader:***@db:port/erp" in out
    cfg.write_text("name: c\ndata:\n  order_lines:\n    path: o.csv\n  accounts:\n"
                   f"    url: 'postgresql+psycopg://reader:{SECRET}@db:5432/erp' x\n")
    out = _err(_cli("data", "validate", "--config", cfg))
    assert SECRET[3:] not in out and "not valid YAML" in out and "at line 6, column" in out


def test_url_password_holding_an_at_sign_is_refused_without_showing_it(tmp_path, monkeypatch):
    """A config url 'reader:${PGPASSWORD}@db' (README, "Security notes") with a password holding '@':
    SQLAlchemy read the password up to its first '@' and the rest as the host, so data validate tried
    the host 'S3cret-pw@127.0.0.1' and printed 'reader:***@S3cret-pw@127.0.0.1:5999/erp ... failed to
    resolve host 'S3cret-pw@127.0.0.1'': the password's tail in clear. A score --out URL likewise,
    after all the scoring. Both are refused naming the key / option and the fix, without the password."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SEC_TEST_PGPASSWORD", "Sup3r@S3cret-pw")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndata:\n  order_lines:\n"
                   "    url: postgresql+psycopg://reader:${SEC_TEST_PGPASSWORD}@127.0.0.1:5999/erp\n"
                   "    table: order_lines\n")
    out = _err(_cli("data", "validate", "--config", cfg))
    assert "Sup3r" not in out and "S3cret" not in out, out
    assert ("key 'data.order_lines.url': not a valid SQLAlchemy URL: its user name or password holds '@', which "
            "ends the password in a URL (the rest would be read as the host name): write each '@' in them as %40") in out
    assert "got 'postgresql+psycopg://reader:***@127.0.0.1:5999/erp'" in out, out
    ok = _config(tmp_path, "sqlite:///unused.db", "unused.duckdb")
    out = _err(_cli("score", "churn", "--config", ok, "--cutoff", "2024-06-01",
                    "--out", "postgresql+psycopg://crm:Sup3r@S3cret-pw@127.0.0.1:5999/test#churn_scores"))
    assert "Sup3r" not in out and "S3cret" not in out, out
    assert ("error: --out postgresql+psycopg://crm:***@127.0.0.1:5999/test#churn_scores: the database "
            "postgresql+psycopg://crm:***@127.0.0.1:5999/test: not a valid database URL (its user name "
            "or password holds '@'") in out, out


# ------------------------------------------------------------------ score files
def test_score_file_refresh_keeps_its_permissions(tmp_path):
    import os
    import stat

    import pandas as pd

    from training.scores import write_table

    df = pd.DataFrame({"account_id": ["A1", "A2"], "probability": [0.1, 0.9]})
    for name in ("scores.csv", "scores.parquet"):
        p = tmp_path / name
        write_table(df, p)
        os.chmod(p, 0o600)  # the CRM export holds account data: owner only
        write_table(df.assign(probability=[0.2, 0.8]), p)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, name  # was the umask's 0o644
        os.chmod(p, 0o640)
        write_table(df, p)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640, name
    assert pd.read_csv(tmp_path / "scores.csv")["probability"].tolist() == [0.1, 0.9]


def test_stale_temp_entry_that_cannot_be_removed_does_not_fail_the_write(tmp_path):
    import pandas as pd

    from training.scores import write_table

    p = tmp_path / "scores.csv"
    # what a dead writer's temp file looks like, but not removable by us (another user's in a
    # sticky shared folder; a folder here): the write failed with 'cannot write ...'
    (tmp_path / ".scores.csv.999999999-deadbeef.tmp").mkdir()
    write_table(pd.DataFrame({"account_id": ["A1"], "probability": [0.5]}), p)
    assert pd.read_csv(p, dtype={"account_id": str})["account_id"].tolist() == ["A1"]


# ------------------------------------------------------------------ service: /churn_alerts
def test_churn_alerts_database_down_is_a_503_naming_no_database(caplog):
    """The alerts target a PostgreSQL URL that refuses connections: GET /churn_alerts was a 500
    ('Internal Server Error', a traceback in the log); the backend now raises NotReady (503 JSON)
    naming neither the database nor its password, and logs the cause with the password hidden.
    (Checked against a real ``bentoml serve``: 503 {"error": "the alerts table cannot be read ..."}.)"""
    import logging

    import pandas as pd

    from serving.churn import ChurnBackend
    from serving.state import NotReady

    empty = pd.DataFrame(columns=["account_id", "probability", "tier", "reason_1", "reason_2", "reason_3",
                                  "model_version"])
    backend = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1",
                           as_of=pd.Timestamp("2024-06-01"), table=empty,
                           alerts_target=f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/test",
                           alerts_table="churn_alerts")
    with caplog.at_level(logging.ERROR, logger="dealerml.serving"):
        with pytest.raises(NotReady) as info:
            backend.alerts(None, 10)
    assert str(info.value) == ("the alerts table cannot be read just now (the service log says why); "
                               "try again later")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "postgres:***@127.0.0.1:1/test" in logged and "Connection refused" in logged and SECRET not in logged
    # asked again at once: 503 without another connection attempt or log line
    n_logged = len(caplog.records)
    with caplog.at_level(logging.ERROR, logger="dealerml.serving"):
        with pytest.raises(NotReady):
            backend.alerts(None, 10)
    assert len(caplog.records) == n_logged


def test_churn_alerts_requests_do_not_queue_behind_a_database_that_never_answers(monkeypatch):
    """Each GET /churn_alerts waited its own connect attempt behind the alerts lock, in turn:
    8 requests to a server that never answers took 8 connect timeouts; now the first fails after
    one and the ones queued behind it answer 503 at once."""
    import socket
    import threading
    import time

    import pandas as pd

    from serving.churn import ChurnBackend
    from serving.state import NotReady
    from training import scores

    monkeypatch.setattr(scores, "CONNECT_TIMEOUT_S", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    empty = pd.DataFrame(columns=["account_id", "probability", "tier", "reason_1", "reason_2", "reason_3",
                                  "model_version"])
    backend = ChurnBackend(model_name="dealerml-churn", model_version="dealerml-churn/1",
                           as_of=pd.Timestamp("2024-06-01"), table=empty, alerts_table="churn_alerts",
                           alerts_target=f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/test")
    answers: list[str] = []

    def ask() -> None:
        try:
            backend.alerts(None, 10)
        except NotReady as err:
            answers.append(str(err))

    t0 = time.monotonic()
    threads = [threading.Thread(target=ask, daemon=True) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    took = time.monotonic() - t0
    silent.close()
    assert len(answers) == 8 and all(a.startswith("the alerts table cannot be read") for a in answers)
    assert took < 4, took  # one connect timeout (1 s), not eight


# ------------------------------------------------------------------ service: API keys
def test_401_never_echoes_a_key_sent_without_a_scheme():
    """``Authorization: <key>`` (no Bearer): the 401 named the header's first word, 20 characters
    of the key itself, as 'the scheme'; only real scheme names are named back now."""
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from serving.auth import APIKeyMiddleware, parse_keys

    async def ok(request):
        return JSONResponse({"ok": True})

    app = APIKeyMiddleware(Starlette(routes=[Route("/churn_scores", ok, methods=["POST"])]),
                           keyring=parse_keys("crm-key-0001-very-secret:churn"))

    async def call(headers):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post("/churn_scores", headers=headers, json={})

    r = asyncio.run(call({"Authorization": "crm-key-0001-very-secret"}))
    assert r.status_code == 401 and "crm-key" not in r.text and "very-secret" not in r.text
    assert r.json()["detail"].startswith("an Authorization header without the Bearer scheme is not read")
    r = asyncio.run(call({"Authorization": "Basic dXNlcjpwYXNz"}))
    assert r.status_code == 401 and "with the scheme 'Basic' is not read" in r.json()["detail"]
    assert "dXNlcjpwYXNz" not in r.text
    assert asyncio.run(call({"Authorization": "Bearer crm-key-0001-very-secret"})).status_code == 200


def test_webhook_url_httpx_cannot_parse_is_refused_before_the_scoring(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = _err(_cli("alerts", "--config", tmp_path / "none.yaml", "--cutoff", "2024-06-01", "--target",
                    tmp_path / "a.duckdb", "--webhook", f"https://crm:{SECRET}@hooks.example:44x/in?token=T0K3N"))
    assert SECRET not in out and "T0K3N" not in out
    assert "--webhook https://***@hooks.example" in out and "not a valid URL (Invalid port: '44x')" in out


# ------------------------------------------------------------------ database targets
def test_postgresql_target_that_never_answers_fails_in_seconds(monkeypatch):
    """A server that takes the TCP connection and never answers (an overloaded PostgreSQL, a
    half-open proxy): libpq waited for ever, so `dealerml alerts` hung and every GET /churn_alerts
    held a thread and the alerts lock. Now connect_timeout (10 s; 1 s here) ends it."""
    import socket
    import threading
    import time

    from training import alerts, scores
    from training.errors import DataError

    monkeypatch.setattr(scores, "CONNECT_TIMEOUT_S", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever answers
    port = silent.getsockname()[1]
    got: list = []

    def read() -> None:
        try:
            alerts.read_alerts(f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{port}/test")
        except DataError as err:
            got.append(str(err))

    t0 = time.monotonic()
    th = threading.Thread(target=read, daemon=True)
    th.start()
    th.join(15)
    silent.close()
    assert not th.is_alive(), "still connecting after 15 s"
    assert time.monotonic() - t0 < 10
    assert len(got) == 1 and f"postgres:***@127.0.0.1:{port}/test" in got[0] and SECRET not in got[0]


def test_postgresql_source_that_never_answers_fails_in_seconds(monkeypatch):
    """``data:`` read from a PostgreSQL URL whose server never answers: training hung for ever."""
    import socket
    import threading

    from training import scores
    from training.config import TableSource
    from training.errors import DataError
    from training.sources import read_table

    monkeypatch.setattr(scores, "CONNECT_TIMEOUT_S", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    src = TableSource(url=f"postgresql+psycopg://reader:{SECRET}@127.0.0.1:{silent.getsockname()[1]}/erp",
                      table="order_lines")
    got: list[str] = []

    def read() -> None:
        try:
            read_table("order_lines", src)
        except DataError as err:
            got.append(str(err))

    th = threading.Thread(target=read, daemon=True)
    th.start()
    th.join(15)
    silent.close()
    assert not th.is_alive(), "still connecting after 15 s"
    assert len(got) == 1 and "reader:***@127.0.0.1" in got[0] and "cannot read order_lines" in got[0]
    assert SECRET not in got[0]


def test_experiment_effective_config_keeps_password_placeholders(tmp_path, monkeypatch):
    """``dealerml experiment run`` keeps the config its steps read under
    $DEALERML_HOME/experiments/<name>/<run>/: it held ${PGPASSWORD} expanded, in clear. The copy
    now keeps the placeholder of a URL's password (other values are expanded as before) and the
    steps, loading it in the same environment, read the same URL."""
    from training.config import load_config
    from training.experiment import effective_config

    monkeypatch.setenv("SEC_TEST_PGPASSWORD", SECRET)
    monkeypatch.setenv("SEC_TEST_NAME", "sec-exp")
    cfg = _config(tmp_path, "postgresql+psycopg://reader:${SEC_TEST_PGPASSWORD}@127.0.0.1:5432/test",
                  "postgresql+psycopg://crm:${SEC_TEST_PGPASSWORD}@127.0.0.1:5432/test")
    raw = yaml.safe_load(cfg.read_text())
    raw["name"] = "${SEC_TEST_NAME}"
    out_dir = tmp_path / "eff"
    out_dir.mkdir()
    copy, _ = effective_config(cfg, raw, out_dir)
    text = copy.read_text()
    assert SECRET not in text and text.count("${SEC_TEST_PGPASSWORD}") == 2 and "name: sec-exp" in text
    loaded = load_config(copy)
    assert loaded.data.accounts.url == f"postgresql+psycopg://reader:{SECRET}@127.0.0.1:5432/test"
    assert loaded.data.order_lines.path == tmp_path / "orders.csv"


def test_ui_page_gets_a_csp_that_keeps_google_tag_manager_out():
    """BentoML's page at / (open, where an operator pastes a key into 'Try it out') loads Google
    Tag Manager; it is now served with a Content-Security-Policy allowing this origin only.
    (Against a real bentoml serve: the header is on GET /, 200.)"""
    import asyncio
    from pathlib import Path

    import _bentoml_impl.server
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    from serving.auth import APIKeyMiddleware, parse_keys

    page = Path(_bentoml_impl.server.__file__).parent / "main-openapi.html"
    assert "googletagmanager.com" in page.read_text()

    async def index(request):
        return FileResponse(page)

    async def info(request):
        return JSONResponse({"ok": True})

    app = APIKeyMiddleware(Starlette(routes=[Route("/", index), Route("/model_info", info)]),
                           keyring=parse_keys("ops-key-0000:*"))

    async def get(path, headers=None):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get(path, headers=headers or {})

    r = asyncio.run(get("/"))
    assert r.status_code == 200 and "swagger-ui" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' 'unsafe-eval';" in csp and "frame-src 'none'" in csp
    assert "connect-src 'self'" in csp and "googletagmanager" not in csp
    r = asyncio.run(get("/model_info", {"X-API-Key": "ops-key-0000"}))
    assert r.status_code == 200 and "content-security-policy" not in r.headers


def test_experiment_step_line_hides_the_out_url_password(home, tmp_path):
    """A step ``score_churn`` with ``out: postgresql://crm:PASSWORD@db/x#churn_scores``: the line
    'step score_churn: dealerml score churn ... --out URL' printed the password."""
    from training.errors import ConfigError
    from training.experiment import run_experiment

    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-01,a,s,1,1\n"
                   "2,2024-03-01,a,s,1,1\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "name": "sec-steps", "data": {"order_lines": {"path": str(csv)}},
        "steps": [{"score_churn": {"cutoff": "2024-02-01",
                                   "out": f"postgresql+psycopg://crm:{SECRET}@127.0.0.1:1/test#churn_scores"}}]}))
    lines: list[str] = []
    with pytest.raises(ConfigError, match="step score_churn failed"):
        run_experiment(exp, log=lines.append)
    step = [x for x in lines if x.startswith("step score_churn:")]
    assert step and "--out postgresql+psycopg://crm:***@127.0.0.1:1/test#churn_scores" in step[0]
    assert SECRET not in " ".join(lines)


def test_out_name_beside_a_folder_hides_the_target_password(tmp_path, monkeypatch):
    """score churn --target URL --out in, beside a folder 'in': the refusal said 'give URL#in'
    with the URL's password."""
    from training.errors import ConfigError
    from training.scores import resolve_out

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    with pytest.raises(ConfigError) as info:
        resolve_out("in", f"postgresql+psycopg://crm:{SECRET}@127.0.0.1/test")
    assert SECRET not in str(info.value)
    assert "give postgresql+psycopg://crm:***@127.0.0.1/test#in" in str(info.value)


def test_tracking_uri_password_is_not_printed(tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI of a PostgreSQL store (real, a schema of its own) with a password:
    'has no champion in postgresql://mlflow:PASSWORD@...' and 'see: mlflow ui --backend-store-uri
    ...' printed it (rollback, promote, score, serve, the service's /model_info reasons)."""
    import uuid

    import sqlalchemy as sa

    from training import tracking

    schema = f"sec_mlflow_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with engine.begin() as conn:
        conn.exec_driver_sql(f'create schema "{schema}"')
    uri = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    try:
        assert tracking.tracking_uri() == uri  # what MLflow connects with
        shown = f"postgresql+psycopg://postgres:***@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        assert tracking.ui_command() == f"mlflow ui --backend-store-uri '{shown}'"  # quoted: * and ? are shell globs
        out = _err(_cli("rollback", "churn"))
        assert SECRET not in out and f"dealerml-churn has no champion in {shown}; nothing to roll back" in out
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'drop schema "{schema}" cascade')
        engine.dispose()


def test_hide_url_passwords_hides_every_password_form_and_nothing_else():
    """A password with '@' in an http(s) URL (requests / MLflow read userinfo up to the last '@' of
    the authority) kept its tail in clear ('https://u:***@ss@mlflow'), and libpq's '?password=' form
    (postgresql://u@h/db?password=..., which SQLAlchemy hands to psycopg) was not hidden at all."""
    from training.errors import hide_url_passwords as hide

    cases = {
        f"https://u:p@{SECRET}@mlflow.example.com/x": "https://u:***@mlflow.example.com/x",
        f"postgresql://user:p@{SECRET}@db/test": "postgresql://user:***@db/test",
        f"postgresql+psycopg://crm@db:5432/test?password={SECRET}": "postgresql+psycopg://crm@db:5432/test?password=***",
        f"see postgresql://crm@db/test?sslmode=require&password={SECRET}&application_name=x for why":
            "see postgresql://crm@db/test?sslmode=require&password=***&application_name=x for why",
        f"mysql+pymysql://u:{SECRET}@h": "mysql+pymysql://u:***@h",
        f"cannot connect to postgresql://u:pa/ss:{SECRET}@h/db (timeout)": "cannot connect to postgresql://u:***@h/db (timeout)",
        # unchanged: placeholders, text that is not a URL, a host after the password, two URLs in compact JSON
        "postgresql://u:${PGPASSWORD}@h/db?password=${PGPASSWORD}": "postgresql://u:${PGPASSWORD}@h/db?password=${PGPASSWORD}",
        "at 10:30 mail ops@example.com; password=x": "at 10:30 mail ops@example.com; password=x",
        "postgresql://u:pw@h/db?x=a@b": "postgresql://u:***@h/db?x=a@b",
        '{"a":"postgresql://u:pw@h1/d","b":"mailto:x@y"}': '{"a":"postgresql://u:***@h1/d","b":"mailto:x@y"}',
        '["postgresql://u:a@h1","postgresql://u:b@h2"]': '["postgresql://u:***@h1","postgresql://u:***@h2"]',
    }
    for given, shown in cases.items():
        assert hide(given) == shown, given
        assert SECRET not in hide(given)


_CI_VARS = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK",
            "BENTOML_DO_NOT_TRACK", "PYTEST_XDIST_WORKER")


def _telemetry_state(module: str, **extra: str) -> tuple[str, str]:
    """(MLflow's is_telemetry_disabled(), BENTOML_DO_NOT_TRACK) after importing ``module`` in a fresh
    interpreter whose environment looks like a user's shell (no CI / pytest markers)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in _CI_VARS}
    env.update(extra)
    code = (f"import {module}, os\n"
            "from mlflow.telemetry.utils import is_telemetry_disabled\n"
            "print(is_telemetry_disabled(), os.environ.get('BENTOML_DO_NOT_TRACK'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    disabled, bento = out.stdout.split()
    return disabled, bento


def test_cli_and_service_turn_library_telemetry_off_unless_the_user_allows_it():
    # MLflow 3 fetches a config from its servers and posts usage events unless told not to; dealerml runs
    # on customers' order books and fetches nothing at run time. Without dealerml both are on in a
    # user's shell (the check this test relies on is live):
    assert _telemetry_state("mlflow") == ("False", "None")
    assert _telemetry_state("training.cli") == ("True", "True")
    assert _telemetry_state("serving") == ("True", "True")
    # a user who wants them keeps their setting
    assert _telemetry_state("training.cli", MLFLOW_DISABLE_TELEMETRY="false", BENTOML_DO_NOT_TRACK="false") == (
        "False", "false")
