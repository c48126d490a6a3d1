"""The churn alert store: only accounts that newly crossed into high risk, recorded once per
cutoff (``record_alerts``) and read back (``read_alerts``).

``record_alerts(scores, target, cutoff, ...)`` is the state machine. Three tables in the
target database (DuckDB file by default, PostgreSQL / SQLite by URL):

- ``<alerts>``: one row per alert (account_id, cutoff, probability, tier, reasons,
  expected_value, revenue_at_risk, model_version, created_at);
- ``<alerts>_state``: the last tier seen per account (account_id, tier, cutoff);
- ``<alerts>_runs``: one row per cutoff already processed (cutoff, run_at, n_alerts).

New tables type their dates: ``cutoff date``, ``created_at timestamp``, ``run_at timestamp``
(UTC, whole seconds), so a CRM can filter, index and join on them. SQLite has no date type:
there the columns are declared DATE / TIMESTAMP and hold ISO text (``YYYY-MM-DD``,
``YYYY-MM-DD HH:MM:SS``, what SQLite's date functions and Python's sqlite3 read). Tables
written by earlier versions keep text (``cutoff varchar(10)``, ``created_at`` /
``run_at varchar(32)``, ``YYYY-MM-DDTHH:MM:SS``): each column's type is read from the
existing table and its values are written in that type (a column of another type is
refused); a table is never altered (README "Churn alerts" has the SQL to migrate one).
``read_alerts`` and the service return the same text for both: ``cutoff`` ``YYYY-MM-DD``,
``created_at`` ``YYYY-MM-DDTHH:MM:SS``.

An account is alerted at cutoff ``c`` when its tier is ``high`` and its last recorded tier
is not ``high`` (absent, low or medium): a new crossing. Staying high alerts nothing;
dropping back and crossing again alerts again. Accounts missing from a run (no longer in
the population) leave the state, so a return followed by high risk alerts again.
Re-running a cutoff that is already in ``_runs`` adds nothing (idempotent); a cutoff
earlier than the latest processed one is refused. Everything - reading the state,
inserting alerts, replacing the state, logging the run and the optional webhook POST (last;
signed, with a stable delivery id and bounded retries: ``training._alerts_webhook._post``) -
happens inside one transaction: if the delivery finally fails, nothing is recorded and the next
run retries (at-least-once delivery). Runs on one table are serialized (``open_db(serialize=)``):
a second run for the same date waits for the first, then finds the date in ``_runs``. An
existing table of one of these names without the expected columns is refused (DataError).

Private to ``training.alerts``, which re-exports the public names; the tiers come from
``training._alerts_tiers`` and the webhook POST from ``training._alerts_webhook``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training import _alerts_webhook as _webhook
from training._alerts_tiers import TIERS
from training._alerts_webhook import webhook_delivery_id, webhook_secret, webhook_timeout_seconds
from training.errors import (
    AT_IN_CREDENTIALS,
    ConfigError,
    DataError,
    at_in_credentials,
)
from training.scores import _check_ident, check_target, describe_target, open_db, target_errors

_ALERT_COLUMNS = ["account_id", "cutoff", "probability", "tier", "reason_1", "reason_2", "reason_3",
                  "expected_value", "revenue_at_risk", "model_version", "created_at"]
# the date columns of the three tables and their type in new tables
_DATE_COLUMNS = {"cutoff": "date", "created_at": "timestamp", "run_at": "timestamp"}


class AlertRun(dict):
    """Result of one alerts run: ``new`` (DataFrame of alerts added), ``already_ran`` (bool)."""


def record_alerts(
    scores: pd.DataFrame,
    target: str | Path,
    cutoff,
    *,
    table: str = "churn_alerts",
    webhook: str | None = None,
    notify=None,
) -> AlertRun:
    """Run the state machine for ``cutoff`` on ``scores`` (see module docstring).

    ``scores`` needs ``account_id, probability, tier`` and may carry ``reason_1..3``,
    ``expected_value``, ``revenue_at_risk``, ``model_version``.

    ``webhook``: POST the new alerts there (``_post``: signed with ``$DEALERML_WEBHOOK_SECRET``
    when set, a stable ``X-Dealerml-Delivery``, bounded retries, each attempt within
    ``$DEALERML_WEBHOOK_TIMEOUT_SECONDS``) before the transaction commits;
    ``notify(message)`` gets the notes of the delivery (unsigned, retrying; stderr by default).
    The result then carries ``delivery`` (the id) and ``attempts`` (0 when nothing was posted).
    """
    missing = [c for c in ("account_id", "probability", "tier") if c not in scores.columns]
    if missing:
        raise ConfigError(f"scores for alerts are missing column(s) {missing}")
    bad = sorted(set(scores["tier"].astype(str)) - set(TIERS))
    if bad:
        raise ConfigError(f"tier must be one of {TIERS}; got {bad}")
    if scores["account_id"].duplicated().any():
        dup = scores.loc[scores["account_id"].duplicated(), "account_id"].head(3).tolist()
        raise ConfigError(f"scores hold duplicated account_id(s), e.g. {dup}")
    cut = pd.Timestamp(cutoff).normalize()
    cut_s = cut.strftime("%Y-%m-%d")
    if len(table or "") > 57:
        raise ConfigError(f"alerts table name {table!r} is too long: at most 57 characters (it also names "
                          f"{table}_state and {table}_runs, and database names stop at 63)")
    state_t, runs_t = f"{table}_state", f"{_check_ident(table)}_runs"
    check_target(target, what="alerts target", database=True)
    hook = None
    if webhook:  # an empty secret or a bad $DEALERML_WEBHOOK_TIMEOUT_SECONDS is refused before the database is touched
        hook = {"url": webhook, "secret": webhook_secret(), "notify": notify, "deadline": webhook_timeout_seconds(),
                "delivery": webhook_delivery_id(target, table, cut_s)}
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        return _record(scores, target, cut_s, now, table, state_t, runs_t, hook)
    except target_errors() as exc:
        raise DataError(f"alerts for {cut_s} in {describe_target(target, table)}: {_short(exc)}; nothing was "
                        "recorded") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _record(scores, target, cut_s, now, table, state_t, runs_t, hook) -> AlertRun:
    # serialize: two runs at the same time (cron overlap, a retry) must not both alert; the
    # second waits for the first, then finds the cutoff in _runs (already_ran)
    with open_db(target, serialize=f"alerts:{table}") as db:
        kinds = _ensure_tables(db, target, table, state_t, runs_t)
        done = db.query(f'select cutoff from "{runs_t}"')
        done_cuts = _run_dates(done["cutoff"], target, runs_t)
        if cut_s in done_cuts:
            prev = db.query(f'select * from "{table}" where cutoff = :c',
                            {"c": _stored(cut_s, kinds[table]["cutoff"], db.kind)})
            return AlertRun(new=prev.iloc[0:0], already_ran=True, n_existing=len(prev), cutoff=cut_s,
                            delivery=hook["delivery"] if hook else None, attempts=0)
        if done_cuts and cut_s < done_cuts[-1]:
            raise _later_cutoff(done_cuts[-1], cut_s)
        state = db.query(f'select account_id, tier from "{state_t}"')
        last = dict(zip(state["account_id"].astype(str), _state_tiers(state, target, state_t), strict=True))
        s = scores.copy()
        s["account_id"] = s["account_id"].astype(str)
        was_high = s["account_id"].map(lambda a: last.get(a) == "high")
        new = s[(s["tier"] == "high") & ~was_high].copy()
        new = _alert_frame(new, cut_s, now)
        if len(new):
            db.insert_df(table, _as_stored(new, kinds[table], db.kind))
        db.execute(f'delete from "{state_t}"')
        st = pd.DataFrame({"account_id": s["account_id"], "tier": s["tier"].astype(str), "cutoff": cut_s})
        if len(st):
            db.insert_df(state_t, _as_stored(st, kinds[state_t], db.kind))
        run = pd.DataFrame({"cutoff": [cut_s], "run_at": [now.isoformat(timespec="seconds")],
                            "n_alerts": [int(len(new))]})
        db.insert_df(runs_t, _as_stored(run, kinds[runs_t], db.kind))
        attempts = 0
        # last, inside the transaction: a delivery that finally fails raises, open_db rolls back the
        # alerts, the state and the run above, and nothing is recorded (the next run retries)
        if hook and len(new):
            attempts = _webhook._post(hook["url"], {"cutoff": cut_s, "alerts": _json_records(new)},
                                      cut_s, delivery=hook["delivery"], secret=hook["secret"],
                                      notify=hook["notify"], deadline=hook["deadline"])
    return AlertRun(new=new, already_ran=False, n_existing=0, cutoff=cut_s,
                    delivery=hook["delivery"] if hook else None, attempts=attempts)


def _later_cutoff(latest: str, cut_s: str) -> ConfigError:
    return ConfigError(f"alerts already ran for a later cutoff ({latest}); refusing {cut_s} "
                       "because it would rewrite the state of later runs")


def recorded_run(target: str | Path, cutoff, *, table: str = "churn_alerts") -> AlertRun | None:
    """Read only, before any scoring: ``AlertRun`` with ``already_ran`` (and ``n_existing``, the
    alerts of that date) when ``<table>_runs`` already records ``cutoff``; ConfigError when it records
    a later one (as ``record_alerts`` would, after the data load and scoring: minutes on a real book, to
    refuse a date in milliseconds); None when the date is new, or the tables cannot be read now (a DuckDB
    file another run holds for writing, no such tables): ``record_alerts`` decides, under its lock."""
    cut_s = pd.Timestamp(cutoff).normalize().strftime("%Y-%m-%d")
    if "://" not in str(target) and not Path(target).exists():
        return None
    runs_t = f"{_check_ident(table)}_runs"
    try:
        with open_db(target, read_only=True) as db:
            if not (db.table_exists(runs_t) and db.table_exists(table)):
                return None
            done_cuts = _run_dates(db.query(f'select cutoff from "{runs_t}"')["cutoff"], target, runs_t)
            if cut_s in done_cuts:
                kind = _date_kind(_columns(db, table).get("cutoff", ""))
                n = db.query(f'select count(*) as n from "{table}" where cutoff = :c', {"c": _stored(cut_s, kind, db.kind)})
                return AlertRun(new=pd.DataFrame(columns=_ALERT_COLUMNS), already_ran=True, n_existing=int(n["n"].iloc[0]),
                                cutoff=cut_s, delivery=None, attempts=0)
    except target_errors():
        return None
    if done_cuts and cut_s < done_cuts[-1]:
        raise _later_cutoff(done_cuts[-1], cut_s)
    return None


def _run_dates(values: pd.Series, target, runs_t: str) -> list[str]:
    """The cutoffs ``<alerts>_runs`` records, as sorted ``YYYY-MM-DD`` text. A row without one (NULL:
    SQLite's primary key allows it, a text table of an earlier version has none; or text that is no
    date) is refused, naming the table and the rows: compared with the run's date it raised
    "'<' not supported between instances of 'str' and 'NoneType'" (a traceback), and it cannot say
    which runs came before this one."""
    import re

    dates = [_iso(v, date_only=True) for v in values]
    empty = sum(d is None for d in dates)
    other = [str(v) for v, d in zip(values, dates, strict=True) if d is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", d)]
    if empty or other:
        what = ", ".join(filter(None, [f"{empty} with an empty cutoff (NULL)" if empty else "",
                                       f"{len(other)} whose cutoff is not a date YYYY-MM-DD (e.g. "
                                       f"{', '.join(repr(v) for v in list(dict.fromkeys(other))[:3])})" if other else ""]))
        raise DataError(f"{describe_target(target, runs_t)} holds {empty + len(other)} run row(s) without a date: "
                        f"{what}; each row records the cutoff (YYYY-MM-DD) a run of dealerml alerts processed, which "
                        "orders the runs and says which accounts are new: set those rows' cutoff to the date they ran, "
                        "or delete them; nothing was recorded")
    return sorted(d for d in dates if d is not None)


def _state_tiers(state: pd.DataFrame, target, state_t: str) -> list[str]:
    """The last tier ``<alerts>_state`` records per account. A row whose tier is empty (NULL or
    blank text) or none of low/medium/high is refused, naming the table and the rows: read as the
    text 'None' (or '') it was taken for "not high", so an account already alerted was alerted
    again at the next run, silently."""
    tiers = [None if pd.isna(t) else str(t) for t in state["tier"]]
    empty = [a for a, t in zip(state["account_id"], tiers, strict=True) if t is None or not t.strip()]
    other = [(a, t) for a, t in zip(state["account_id"], tiers, strict=True) if t and t.strip() and t not in TIERS]
    if empty or other:
        what = ", ".join(filter(None, [
            f"{len(empty)} with an empty tier (NULL or blank; account_id e.g. "
            f"{', '.join(repr(str(a)) for a in empty[:3])})" if empty else "",
            f"{len(other)} whose tier is none of {', '.join(TIERS)} (e.g. "
            f"{', '.join(f'{str(a)!r}: {t!r}' for a, t in other[:3])})" if other else ""]))
        raise DataError(f"{describe_target(target, state_t)} holds {len(empty) + len(other)} state row(s) without a "
                        f"valid tier: {what}; each row records the tier (low, medium or high) an account had at the "
                        "last run of dealerml alerts, which says whether it is newly high (alerted) or was already: "
                        "set those rows' tier to the tier they had (high if they were alerted), or delete them (the "
                        "account is then alerted again if high); nothing was recorded")
    return tiers


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts with the values the table holds: every float in full (to_json
    rounded to 10 significant digits, so the webhook's probability 0.9972972592 was not the table's
    or GET /churn_alerts' 0.9972972591998471, and an amount under 5e-11 became 0.0); NaN / inf as null."""
    def plain(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, (float, np.floating)):
            return float(v) if np.isfinite(v) else None
        if isinstance(v, (np.integer, np.bool_)):
            return v.item()
        return None if pd.isna(v) else v
    return [{c: plain(v) for c, v in zip(frame.columns, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)]


def _alert_frame(new: pd.DataFrame, cut_s: str, now: datetime) -> pd.DataFrame:
    """The alert rows as text dates (what the webhook posts and ``read_alerts`` returns)."""
    out = pd.DataFrame({"account_id": new["account_id"].astype(str).to_numpy()})
    out["cutoff"] = cut_s
    out["probability"] = new["probability"].astype(float).to_numpy()
    out["tier"] = "high"
    for c in ("reason_1", "reason_2", "reason_3", "model_version"):
        out[c] = new[c].astype("object").where(new[c].notna(), None).to_numpy() if c in new else None
        out[c] = out[c].astype("object")
    for c in ("expected_value", "revenue_at_risk"):
        out[c] = new[c].astype(float).to_numpy() if c in new else np.nan
    out["created_at"] = now.isoformat(timespec="seconds")
    return out[_ALERT_COLUMNS]


# ------------------------------------------------------------------ date columns
def _stored(iso: str, kind: str, db_kind: str) -> Any:
    """``iso`` (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``, UTC) as a column of ``kind`` holds it:
    text as is (tables of earlier versions); SQLite DATE / TIMESTAMP as SQLite's ISO text; else
    a date or datetime (timezone-aware UTC for ``timestamp with time zone``)."""
    if kind == "text":
        return iso
    ts = pd.Timestamp(iso)
    if db_kind == "sqlite":
        return ts.strftime("%Y-%m-%d") if kind == "date" else ts.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "date":
        return ts.date()
    return (ts.tz_localize("UTC") if kind == "timestamptz" else ts).to_pydatetime()


def _as_stored(frame: pd.DataFrame, kinds: dict[str, str], db_kind: str) -> pd.DataFrame:
    """A copy of ``frame`` with its date columns in the representation of the table's columns."""
    out = frame.copy()
    for col in _DATE_COLUMNS:
        if col in out.columns:
            out[col] = pd.Series([_stored(v, kinds[col], db_kind) for v in out[col]], index=out.index, dtype=object)
    return out


def _iso(v: Any, *, date_only: bool) -> str | None:
    """A stored date as text: ``YYYY-MM-DD`` (``date_only``) or ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, str):  # text columns (earlier versions) and SQLite
        if date_only:
            return v[:10]
        return f"{v[:10]}T{v[11:]}" if len(v) > 10 and v[10] == " " else v
    ts = pd.Timestamp(v)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if date_only:
        return ts.strftime("%Y-%m-%d")
    return ts.isoformat(timespec="microseconds" if ts.microsecond else "seconds")


def alert_dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a frame read from an alerts table with its dates as text, whatever the column
    types (typed or text from earlier versions): ``cutoff`` ``YYYY-MM-DD``, ``created_at`` and
    ``run_at`` ``YYYY-MM-DDTHH:MM:SS`` (UTC), None when null."""
    out = frame.copy()
    for col in _DATE_COLUMNS:
        if col in out.columns:
            out[col] = pd.Series([_iso(v, date_only=col == "cutoff") for v in out[col]], index=out.index,
                                 dtype=object)
    return out


def _date_kind(type_name: str) -> str:
    """``date``, ``timestamp``, ``timestamptz``, ``text`` or ``other`` for a column type as the
    database names it (DuckDB ``DATE``, PostgreSQL ``timestamp without time zone``, SQLite's
    declared ``VARCHAR(10)`` ...)."""
    t = type_name.strip().lower()
    if t.startswith("timestamp") and ("with time zone" in t and "without" not in t or t.startswith("timestamptz")):
        return "timestamptz"
    if t.startswith(("timestamp", "datetime")):
        return "timestamp"
    if t == "date":
        return "date"
    if t == "" or any(w in t for w in ("char", "text", "string", "clob")):
        return "text"
    return "other"


def _ensure_tables(db, target, table: str, state_t: str, runs_t: str) -> dict[str, dict[str, str]]:
    """Create the three tables, or check that existing ones have the columns this version writes.

    Returns, per table, the kind of each of its date columns (``_date_kind``): new tables get
    the types of ``_DATE_COLUMNS``; existing ones keep theirs (text from earlier versions)."""
    ddl = {
        table: ("account_id text, cutoff date, probability double precision, tier varchar(8), "
                "reason_1 text, reason_2 text, reason_3 text, expected_value double precision, "
                "revenue_at_risk double precision, model_version text, created_at timestamp"),
        state_t: "account_id text primary key, tier varchar(8), cutoff date",
        runs_t: "cutoff date primary key, run_at timestamp, n_alerts integer",
    }
    kinds: dict[str, dict[str, str]] = {}
    for name, cols in ddl.items():
        want = [c.split()[0] for c in cols.split(", ")]
        if not db.table_exists(name):
            db.execute(f'create table "{name}" ({cols})')
            kinds[name] = {c: _DATE_COLUMNS[c] for c in want if c in _DATE_COLUMNS}
            continue
        have = _columns(db, name)
        missing = [c for c in want if c not in have]
        if missing:
            raise DataError(
                f"{describe_target(target, name)} exists but is not a dealerml alerts table: it lacks column(s) "
                f"{missing} (has {list(have)[:12]}; expected {want}). It may belong to another tool or an older "
                f"dealerml: rename or drop it, or set churn.alerts_table to another name")
        kinds[name] = {c: _date_kind(have[c]) for c in want if c in _DATE_COLUMNS}
        bad = {c: have[c] for c, k in kinds[name].items() if k == "other"}
        if bad:
            raise DataError(
                f"{describe_target(target, name)}: column(s) {bad} hold neither dates nor text; dealerml writes "
                f"{ {c: _DATE_COLUMNS[c] for c in bad} } (or text YYYY-MM-DD... in tables of earlier versions): "
                "change the column type, or set churn.alerts_table to another name")
    return kinds


def _columns(db, name: str) -> dict[str, str]:
    """Column name -> type name of ``name``, in table order."""
    if db.kind == "duckdb":
        # DuckDB names are case-insensitive (Database.table_exists): churn_alerts is Churn_Alerts's table
        cols = db.query("select column_name, data_type from information_schema.columns where "
                        "lower(table_name) = lower(:t) order by ordinal_position", {"t": name})
        return {str(c): str(t) for c, t in zip(cols["column_name"], cols["data_type"], strict=True)}
    from sqlalchemy import inspect

    out = {}
    for c in inspect(db._conn).get_columns(name):
        try:
            out[c["name"]] = c["type"].compile(dialect=db._conn.dialect)
        except Exception:  # noqa: BLE001 - a type the dialect cannot print: not a date
            out[c["name"]] = type(c["type"]).__name__
    return out


def _no_table() -> pd.DataFrame:
    """No alerts, because there is no alerts table (or file) yet: ``attrs["table_missing"]`` tells it apart
    from a table with no alert on or after ``since`` (GET /churn_alerts says so in ``note``)."""
    frame = pd.DataFrame(columns=_ALERT_COLUMNS)
    frame.attrs["table_missing"] = True
    return frame


def read_alerts(target: str | Path, *, table: str = "churn_alerts", since=None,
                timeout: float | None = None) -> pd.DataFrame:
    """Alerts with ``cutoff >= since`` (all when None), oldest first; dates as text
    (``alert_dates_as_text``), the same for typed tables and text ones of earlier versions.

    ``timeout`` (seconds; the service passes ``$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS``): the most the
    read waits for the database, which then raises its own error (a target error): a SQLite / DuckDB
    file locked by a writer is waited for that long (30 s without it); on PostgreSQL it is the
    statement timeout of the read (``SET LOCAL``, so a pooler such as PgBouncer takes it too; none
    without it: a table locked by another session held the read for as long as the lock) and the
    connect timeout unless the URL sets one (at most ``training.scores.CONNECT_TIMEOUT_S``; libpq
    counts whole seconds, at least 2)."""
    if "://" not in str(target) and not Path(target).exists():
        return _no_table()
    if at_in_credentials(str(target)):  # else the connect error names the password's tail as the host
        raise ConfigError(f"alerts table {describe_target(target, table)}: not a valid database URL ({AT_IN_CREDENTIALS})")
    kw = {} if timeout is None else {"lock_timeout": float(timeout)}
    with open_db(_with_connect_timeout(target, timeout), read_only=True, **kw) as db:
        if timeout is not None and db.kind == "sqlalchemy" and db._conn.dialect.name == "postgresql":
            db.execute(f"set local statement_timeout = {max(1, int(float(timeout) * 1000))}")
        if not db.table_exists(table):
            return _no_table()
        if since is None:
            return alert_dates_as_text(db.query(f'select * from "{table}" order by cutoff, account_id'))
        s = pd.Timestamp(since).strftime("%Y-%m-%d")
        kind = _date_kind(_columns(db, table).get("cutoff", ""))
        return alert_dates_as_text(db.query(f'select * from "{table}" where cutoff >= :s order by cutoff, account_id',
                                            {"s": _stored(s, kind, db.kind)}))


def _with_connect_timeout(target: str | Path, timeout: float | None) -> str | Path:
    """A PostgreSQL URL (psycopg / psycopg2) without ``connect_timeout``, given one of ``timeout`` s
    (whole seconds, 2 .. ``CONNECT_TIMEOUT_S``); anything else as is."""
    if timeout is None or "://" not in str(target):
        return target
    import math

    from sqlalchemy.engine import make_url

    from training import scores

    try:
        u = make_url(str(target))
    except Exception:  # noqa: BLE001 - open_db names a URL that does not parse
        return target
    if (u.get_backend_name() != "postgresql" or u.get_driver_name() not in ("psycopg", "psycopg2")
            or "connect_timeout" in u.query):
        return target
    seconds = min(scores.CONNECT_TIMEOUT_S, max(2, math.ceil(float(timeout))))
    return u.update_query_dict({"connect_timeout": str(seconds)}).render_as_string(hide_password=False)
