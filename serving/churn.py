"""Churn backend: scores of every active account as of the last cutoff, held in a dict.

At start-up the champion ``ChurnModel`` scores the order book with
``training.churn_backtest.score_accounts`` - the very function behind
``dealerml score churn`` - as of the day after the last order (or ``serving.churn_cutoff``
in the config), so tiers (which depend on the whole population through the call capacity)
and reasons are the batch ones. A request is a dict lookup per account id; ids without a
score are answered with the reason (lapsed: last order before the lookback; never ordered;
unknown id), from the accounts table and the last order dates kept at start-up. Alerts are
read from the alerts table that ``dealerml alerts`` writes, per request (with a 2-second
cache); a request gets the newest ``limit`` of them. What a read may take is bounded
(``serving.settings.alerts_limits``): one request reads at a time, at most ``readers`` wait for the
database at once (more are answered 503 at once), none waits more than ``timeout_seconds`` for the
read another has in progress, and the read itself gives up after that long (PostgreSQL statement
timeout, SQLite / DuckDB file lock), so a slow or silent alerts database costs a few threads, not
the worker's (it held one per request, each up to the 120 s request timeout, and with 256 of them
BentoML refused every other endpoint with 429).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.errors import UnknownIds
from serving.state import utc_now
from training._alerts_store import _no_table
from training.churn_backtest import dropped_unknown_accounts, last_orders

logger = logging.getLogger("dealerml.serving")

__all__ = ["ChurnBackend", "serving_cutoff"]

REGISTERED_NAME = "dealerml-churn"
_ALERTS_TTL_S = 2.0
_ALERTS_RETRY_S = 5.0
"""After the alerts database failed, requests within this many seconds answer 503 at once."""
ALERTS_RETRY_AFTER_S = int(_ALERTS_RETRY_S)
"""``Retry-After`` of every 503 of GET /churn_alerts the alerts table causes: a failed database is not
asked again for ``_ALERTS_RETRY_S`` seconds."""
_ALERTS_DOWN = "the alerts table cannot be read just now (the service log says why); try again later"
_ALERTS_BUSY = ("the alerts table cannot be read just now: the alerts database is slow or unreachable and {n} "
                "request(s) are already waiting for it; try again later")
_ALERTS_SLOW = ("the alerts table cannot be read just now: the alerts database did not answer within {s:g} s "
                "(slow or unreachable); try again later")
_ALERTS_TIMED_OUT = ("the alerts table cannot be read just now: the alerts database did not answer within {s:g} s "
                     "(slow, or a table locked by another session); try again later")
_ALERTS_BEING_WRITTEN = ("the alerts table cannot be read just now: its file is being written (dealerml alerts?); "
                         "try again in a moment")


def serving_cutoff(book: Any, cfg: Any) -> pd.Timestamp:
    """As-of date of the served scores: ``serving.churn_cutoff`` or the day after the last order."""
    from serving.settings import serving_settings

    chosen = serving_settings(cfg).churn_cutoff
    if chosen is not None:
        return pd.Timestamp(chosen)
    return pd.Timestamp(book.order_lines["order_date"].max()).normalize() + pd.Timedelta(days=1)


def _none_if_nan(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _read_duckdb_alerts(path: str, table: str) -> pd.DataFrame:
    """The alerts table of a DuckDB file, opened read-only (several workers may read at once).

    The service never writes the file; ``dealerml alerts`` does. DuckDB lets one process write
    or several read, so a read that meets a running ``dealerml alerts`` fails here (503, retry)
    rather than blocking it.
    """
    import re

    import duckdb

    from serving.state import NotReady

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", table):
        raise ValueError(f"alerts table name must be letters, digits and underscores; got {table!r}")
    try:
        con = duckdb.connect(path, read_only=True)  # another process writing it: fails at once, never waits
    except duckdb.Error as err:
        logger.warning("GET /churn_alerts: the alerts file %s cannot be opened (being written?): %s", path,
                       str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise NotReady(_ALERTS_BEING_WRITTEN, retry_after=ALERTS_RETRY_AFTER_S) from None
    try:
        n = con.execute("select count(*) from information_schema.tables where lower(table_name) = lower(?)",
                        [table]).fetchone()[0]  # DuckDB names are case-insensitive (training.scores.Database)
        if not n:
            return _no_table()
        return con.execute(f'select * from "{table}" order by cutoff, account_id').df()
    finally:
        con.close()


def _is_timeout(err: BaseException) -> bool:
    """Whether a read failed because the database did not answer in time: PostgreSQL's statement
    timeout (QueryCanceled), a SQLite file locked past the busy timeout."""
    orig = getattr(err, "orig", None)
    text = f"{err} {orig or ''}".lower()
    return (type(orig).__name__ == "QueryCanceled" or "statement timeout" in text
            or "database is locked" in text)


class ChurnBackend:
    """Precomputed churn scores + the alerts table reader."""

    def __init__(self, *, model_name: str, model_version: str, as_of: pd.Timestamp, table: pd.DataFrame,
                 alerts_target: str, alerts_table: str, lookback_days: int = 365,
                 last_orders: dict[str, str | None] | None = None, unknown_accounts: Any = (),
                 alerts_timeout: float | None = None, alerts_readers: int | None = None) -> None:
        """``model_version``: "dealerml-churn/<version>" (as on every score); ``last_orders``:
        account id -> last order date before the cutoff (None: never ordered) of every known
        account, for the reasons of the ids that have no score; ``unknown_accounts``: ids whose
        order lines the loader dropped because the accounts table lacks them; ``alerts_timeout`` /
        ``alerts_readers``: the bounds of the alerts reads (default: ``serving.settings.alerts_limits()``,
        i.e. ``$DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS`` / ``_READERS``; their defaults when a value is bad,
        which the service reports, staying unready)."""
        from serving.settings import AlertsLimits, alerts_limits
        from training.errors import ConfigError

        try:
            limits = alerts_limits()
        except ConfigError:
            limits = AlertsLimits()

        self.unknown_accounts = {str(a) for a in unknown_accounts}
        self.lookback_days = lookback_days
        self.horizon_days: int | None = None  # the model's own horizon (ChurnBackend.build), for /model_info
        self.model_name = model_name
        self.model_version = model_version
        self.last_orders = dict(last_orders or {})
        self.as_of = pd.Timestamp(as_of)
        as_of_s = self.as_of.date().isoformat()
        self.rows: dict[str, dict[str, Any]] = {}
        for r in table.itertuples(index=False):
            self.rows[str(r.account_id)] = {
                "account_id": str(r.account_id),
                "probability": float(r.probability),
                "tier": str(r.tier),
                "reasons": [x for x in (r.reason_1, r.reason_2, r.reason_3) if isinstance(x, str) and x],
                "model_version": str(r.model_version),
                "as_of": as_of_s,
            }
        self.alerts_target = alerts_target
        self.alerts_table = alerts_table
        self._alerts_lock = threading.Lock()  # one read of the database at a time (the others use its result)
        self.alerts_timeout = float(alerts_timeout or limits.timeout_seconds)
        self.alerts_readers = int(alerts_readers or limits.readers)
        self._alerts_slots = threading.BoundedSemaphore(self.alerts_readers)  # requests waiting for the database
        self._alerts_cache: tuple[float, pd.DataFrame] | None = None
        self._alerts_failed: float | None = None  # when the last read of the alerts table failed
        # what /model_info says of the alerts database (alerts_status: read without the lock, never waits)
        self._alerts_last: tuple[str, str] | None = None  # ("ok" | "failing", UTC time of that read)
        self._alerts_reading_since: float | None = None  # time.time() a read in progress started

    @classmethod
    def build(cls, estimator: Any, slot: Any, book: Any, cfg: Any) -> ChurnBackend:
        from training.churn_backtest import (
            churn_settings,
            horizon_note,
            lookback_note,
            model_horizon_days,
            model_lookback_days,
            score_accounts,
        )

        settings = churn_settings(cfg)
        if hasattr(estimator, "num_threads"):
            estimator.num_threads = 1  # online scoring, as the batch CLI does
        cutoff = serving_cutoff(book, cfg)
        version = f"{REGISTERED_NAME}/{slot.version}"
        # served on its own population, its probabilities over its own horizon: said when the config's differ
        for note in (lookback_note(estimator, settings, cutoff, version),
                     horizon_note(estimator, settings, cutoff, version)):
            if note:
                logger.warning("%s", note)
        table = score_accounts(book, estimator, settings, cutoff, model_version=version)
        bad = ~np.isfinite(table["probability"].to_numpy(dtype=float))
        if bad.any():
            raise ValueError(f"the champion produced {int(bad.sum())} non-finite churn probabilities")
        from serving.settings import alerts_target

        backend = cls(model_name=slot.name, model_version=version, as_of=cutoff, table=table,
                   alerts_target=alerts_target(cfg), alerts_table=settings.alerts_table,
                   lookback_days=model_lookback_days(estimator, settings), last_orders=last_orders(book, cutoff),
                   unknown_accounts=dropped_unknown_accounts(book))
        backend.horizon_days = model_horizon_days(estimator, settings)
        return backend

    def summary(self) -> dict[str, Any]:
        tiers: dict[str, int] = {}
        for r in self.rows.values():
            tiers[r["tier"]] = tiers.get(r["tier"], 0) + 1
        out = {"n_accounts": len(self.rows), "as_of": self.as_of.date().isoformat(), "tiers": tiers,
               "lookback_days": self.lookback_days}  # the population it serves: the model's own lookback
        if self.horizon_days is not None:  # its probabilities' horizon (and revenue at risk's): the model's own
            out["horizon_days"] = self.horizon_days
        return out

    # ------------------------------------------------------------------ endpoints
    def not_scored_reason(self, account_id: str) -> str:
        """Why ``account_id`` has no churn score (it is not in the scored population)."""
        cutoff = self.as_of.date().isoformat()
        if account_id not in self.last_orders:
            if account_id in self.unknown_accounts:
                return ("not in the accounts table: its order lines were dropped (unknown_account) when the order "
                        "book was loaded; add the account to the accounts table")
            return "unknown account id"
        last = self.last_orders[account_id]
        if last is None:
            return (f"not in the churn population: no order before {cutoff} "
                    f"(the {self.lookback_days}-day lookback ends there)")
        start = (self.as_of - pd.Timedelta(days=self.lookback_days)).date().isoformat()
        if last < start:
            return (f"not in the churn population: last order {last}, before the "
                    f"{self.lookback_days}-day lookback ending {cutoff}")
        return f"not in the churn population scored as of {cutoff} (last order {last})"

    def scores(self, request: Any) -> dict[str, Any]:
        """Scores of the scorable ids plus ``not_scored`` [{account_id, reason}]; 404 only
        when no id has a score."""
        rows = self.rows
        ids = list(dict.fromkeys(request.account_ids))
        scores = [rows[a] for a in ids if a in rows]
        not_scored = [{"account_id": a, "reason": self.not_scored_reason(a)} for a in ids if a not in rows]
        if not scores:
            shown = "; ".join(f"{x['account_id']}: {x['reason']}" for x in not_scored[:20])
            more = f"; and {len(not_scored) - 20} more" if len(not_scored) > 20 else ""
            raise UnknownIds(
                "account id",
                [x["account_id"] for x in not_scored],
                known=len(rows),
                extra={"not_scored": not_scored},
                message=(f"none of the {len(ids)} account id(s) has a churn score (the served model scores "
                         f"{len(rows)} accounts: those that ordered in the {self.lookback_days} days before "
                         f"{self.as_of.date()}): {shown}{more}"),
            )
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "as_of": self.as_of.date().isoformat(),
            "scores": scores,
            "not_scored": not_scored,
        }

    def _alerts_frame(self) -> pd.DataFrame:
        """The whole alerts table, dates as text (``cutoff`` YYYY-MM-DD, ``created_at`` ISO) for
        typed tables and the text ones of earlier versions alike.

        Never waits long: a fresh cached table (2 s) is answered at once; within 5 s of a failed read,
        503 at once; when ``alerts_readers`` requests already wait for the database, 503 at once; a
        request waits at most ``alerts_timeout`` s for the read another one has in progress (then 503),
        and a read gives up after about that long (PostgreSQL statement timeout, connect timeout unless
        the URL sets one, SQLite busy timeout; a DuckDB file being written fails at once)."""
        from serving.state import NotReady

        cached = self._alerts_cache
        if cached is not None and time.monotonic() - cached[0] < _ALERTS_TTL_S:
            return cached[1]
        self._raise_if_failed_recently()
        if not self._alerts_slots.acquire(blocking=False):
            raise NotReady(_ALERTS_BUSY.format(n=self.alerts_readers), retry_after=ALERTS_RETRY_AFTER_S)
        try:
            if not self._alerts_lock.acquire(timeout=self.alerts_timeout):
                since = self._alerts_reading_since
                logger.warning("GET /churn_alerts: the read of the alerts table %s in progress has taken %.1f s; "
                               "answered 503 after waiting %g s for it ($DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS)",
                               self.alerts_table, time.time() - since if since else 0.0, self.alerts_timeout)
                raise NotReady(_ALERTS_SLOW.format(s=self.alerts_timeout), retry_after=ALERTS_RETRY_AFTER_S)
            try:
                return self._read_alerts_locked()
            finally:
                self._alerts_lock.release()
        finally:
            self._alerts_slots.release()

    def _raise_if_failed_recently(self) -> None:
        # a database that failed a moment ago is not asked again by every request queued
        # behind that attempt (each waited up to the connect timeout, in turn, holding a thread)
        from serving.state import NotReady

        failed = self._alerts_failed
        if failed is not None and time.monotonic() - failed < _ALERTS_RETRY_S:
            raise NotReady(_ALERTS_DOWN, retry_after=ALERTS_RETRY_AFTER_S)

    def _read_alerts_locked(self) -> pd.DataFrame:
        """Read the table (under ``_alerts_lock``), unless the request before this one just did."""
        from serving.state import NotReady
        from training.alerts import alert_dates_as_text, read_alerts
        from training.errors import DealermlError, hide_url_passwords
        from training.scores import check_target, target_errors

        now = time.monotonic()
        if self._alerts_cache is not None and now - self._alerts_cache[0] < _ALERTS_TTL_S:
            return self._alerts_cache[1]
        self._raise_if_failed_recently()
        target = self.alerts_target
        local = "://" not in target
        self._alerts_reading_since = time.time()
        try:
            if local and Path(target).is_dir():  # was 503 'its file is being written; try again in a moment', forever
                check_target(target, write=False, what="the alerts target", database=True, instead=(
                    "set serving.alerts_target in the service's config (or DEALERML_HOME) to where `dealerml alerts` "
                    "writes, and start the service again"))
            if local and not Path(target).exists():
                frame = _no_table()
            elif local and target.lower().endswith((".duckdb", ".ddb")):
                frame = alert_dates_as_text(_read_duckdb_alerts(target, self.alerts_table))
            else:
                frame = read_alerts(target, table=self.alerts_table, timeout=self.alerts_timeout)
        except NotReady:  # a DuckDB file being written: 503 at once, asked again by the next request
            self._alerts_last = ("failing", utc_now())
            raise
        except (DealermlError, *target_errors()) as err:
            self._alerts_failed = time.monotonic()
            self._alerts_last = ("failing", utc_now())
            why = str(err).splitlines()[0] if str(err) else type(err).__name__
            timed_out = _is_timeout(err)
            logger.error("GET /churn_alerts: cannot read the alerts table %s: %s%s (the next %g s of requests "
                         "answer 503 without asking again)", self.alerts_table, hide_url_passwords(why),
                         f" (no answer within $DEALERML_SERVE_ALERTS_TIMEOUT_SECONDS = {self.alerts_timeout:g} s)"
                         if timed_out else "", _ALERTS_RETRY_S)
            raise NotReady(_ALERTS_TIMED_OUT.format(s=self.alerts_timeout) if timed_out else _ALERTS_DOWN,
                           retry_after=ALERTS_RETRY_AFTER_S) from None
        finally:
            self._alerts_reading_since = None
        self._alerts_failed = None
        self._alerts_last = ("ok", utc_now())
        self._alerts_cache = (now, frame)
        return frame

    def alerts_status(self) -> dict[str, Any]:
        """The alerts database as the last read of GET /churn_alerts found it, for /model_info, which
        must not wait for it (a silent database held each read for the connect timeout): ``status``
        ``ok`` / ``failing`` (GET /churn_alerts answers 503; the log says why) / ``not_read`` (no request
        has read it since start-up), ``checked_at`` (UTC) and ``reading_for_s``, how long the read in
        progress has waited (None: none). Names neither the database nor its error."""
        last, since = self._alerts_last, self._alerts_reading_since
        return {"status": last[0] if last else "not_read", "checked_at": last[1] if last else None,
                "reading_for_s": None if since is None else round(max(0.0, time.time() - since), 1)}

    def alerts(self, since: Any, limit: int) -> dict[str, Any]:
        """The newest ``limit`` alerts on or after ``since`` (oldest first) and how many matched.

        An alerts database that cannot be read (down, a wrong password, not answering) is a 503
        naming neither the database nor its error (the log does, password hidden): it was a 500
        with a plain-text body and a traceback in the log."""
        frame = self._alerts_frame()
        missing = bool(frame.attrs.get("table_missing"))
        if since is not None and len(frame):
            frame = frame[frame["cutoff"] >= pd.Timestamp(since).strftime("%Y-%m-%d")]
        matched = len(frame)
        frame = frame.sort_values(["cutoff", "account_id"], kind="mergesort").tail(limit)
        alerts = []
        for r in frame.to_dict("records"):
            alerts.append(
                {
                    "account_id": str(r["account_id"]),
                    "cutoff": str(r["cutoff"])[:10],
                    "probability": _none_if_nan(r.get("probability")),
                    "tier": r.get("tier"),
                    "reasons": [r[k] for k in ("reason_1", "reason_2", "reason_3") if isinstance(r.get(k), str) and r[k]],
                    "expected_value": _none_if_nan(r.get("expected_value")),
                    "model_version": r.get("model_version"),
                    "created_at": r.get("created_at"),
                }
            )
        # no table yet: said, as 0 alerts alone looked the same as a quiet day to a CRM polling a service whose
        # alerts target is not where `dealerml alerts` writes
        note = (f"there is no alerts table {self.alerts_table!r} where this service reads alerts "
                "(serving.alerts_target): `dealerml alerts` has not written there yet; run it, or check that it and "
                "the service use the same target") if missing else None
        return {"since": None if since is None else pd.Timestamp(since).date().isoformat(),
                "matched": int(matched), "count": len(alerts), "alerts": alerts, "note": note}
