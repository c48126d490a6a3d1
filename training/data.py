"""Load a configured order book: read every table, validate it, report, fingerprint.

``load_order_book(cfg)`` is the only way data enters dealerml: nothing downstream runs on
unvalidated data. It returns an :class:`OrderBook` whose tables have exactly the dtypes of
``docs/ARCHITECTURE.md`` and a :class:`QualityReport` saying what was dropped or fixed and why.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from training._data_warnings import _as_written, _not_in_book, _unread_lookalikes
from training.config import _ENV_RE, ExperimentConfig, TableSource, load_config, read_yaml_mapping
from training.errors import ConfigError, DataError
from training.lineage import book_table_shas
from training.sources import DERIVED_PREFIX, read_table
from training.validate import (
    TableReport,
    derive_accounts,
    resolve_as_of,
    validate_accounts,
    validate_inventory,
    validate_lead_times,
    validate_order_lines,
    validate_promotions,
    validate_service_events,
)

__all__ = ["OrderBook", "QualityReport", "lines_as_of", "load_order_book", "order_lines_sha256", "parse_cutoff", "check_cutoff_in_book"]


@dataclass
class QualityReport:
    """Per-table validation reports of one load (``tables`` in contract order)."""

    config: str
    as_of: str
    tables: dict[str, TableReport] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"config", "as_of", "tables": {name: {rows_in, rows_out, reasons, ...}}}``."""
        return {
            "config": self.config,
            "as_of": self.as_of,
            "tables": {k: v.to_dict() for k, v in self.tables.items()},
        }

    def render(self) -> str:
        """A readable text report (what ``dealerml data validate`` prints)."""
        head = f"Data quality report: {self.config} (dates after {self.as_of} count as future)"
        parts = [head, "=" * min(len(head), 100)]
        parts += [t.render() + "\n" for t in self.tables.values()]
        return "\n".join(parts).rstrip() + "\n"


@dataclass(frozen=True)
class OrderBook:
    """Validated canonical tables (``None`` for tables the config does not name)."""

    order_lines: pd.DataFrame
    accounts: pd.DataFrame | None
    service_events: pd.DataFrame | None
    inventory: pd.DataFrame | None
    lead_times: pd.DataFrame | None
    report: QualityReport
    fingerprint: dict[str, Any]
    unattributed_lines: pd.DataFrame | None = None
    """Order lines whose only fault is an empty ``account_id`` (counted as ``missing_account`` in the
    report): no account's order, so not in ``order_lines``, but sales of their SKU all the same."""

    promotions: pd.DataFrame | None = None
    """Planned campaigns (``data.promotions``): the promo driver of an order book's demand series."""

    netting: dict[str, pd.DataFrame] | None = field(default=None, repr=False)
    """What cancellation lines took off which lines (``training.validate``'s report ``netting``): read
    by :meth:`lines_as_of`; None when nothing was netted."""

    def lines_as_of(self, cutoff: Any) -> pd.DataFrame:
        """The order lines placed before ``cutoff`` as they stood then: ``order_lines`` nets every
        cancellation of the book, also one dated on or after ``cutoff`` that cancels a line placed
        before it, which a run on that day could not know. Here such a line keeps the units those later
        cancellations took (a line they cancelled in full is back). Features as of a cutoff read these
        (no look-ahead; the same as a live run at that cutoff); labels, which look after it, read
        ``order_lines``. Without such a cancellation: ``order_lines`` itself (every row, not a copy)."""
        ol = self.order_lines
        n = self.netting
        cut = pd.Timestamp(cutoff)
        if n is None or not len(n["events"]):
            return ol
        ev = n["events"]
        late = ev.loc[ev["cancelled_on"] >= cut]
        if not len(late):
            return ol
        lines = n["lines"].set_index("row")
        back = late.groupby("row")["units"].sum()
        lines = lines.loc[back.index]
        lines = lines.loc[lines["order_date"] < cut]
        if not len(lines):
            return ol
        # units as of the cutoff: as placed, less what cancellations before the cutoff took
        early = ev.loc[(ev["cancelled_on"] < cut) & ev["row"].isin(lines.index)].groupby("row")["units"].sum()
        qty = lines["quantity"] - early.reindex(lines.index, fill_value=0.0)
        amount = lines["line_amount"] * (qty / lines["quantity"])
        before = ol.loc[ol["order_date"] < cut].copy()
        present = lines["pos"].to_numpy() >= 0
        pos = lines["pos"].to_numpy()[present]
        at = before.index.get_indexer(pos)  # rows before the cutoff keep their labels (positions)
        before.iloc[at, before.columns.get_loc("quantity")] = qty.to_numpy()[present]
        before.iloc[at, before.columns.get_loc("line_amount")] = amount.to_numpy()[present]
        if (~present).any():
            gone = lines.loc[~present, list(ol.columns)].assign(quantity=qty[~present], line_amount=amount[~present])
            before = pd.concat([before, gone], ignore_index=True).sort_values("order_date", kind="stable",
                                                                             ignore_index=True)
        return before

    def demand_lines(self, include_unattributed: bool = True) -> pd.DataFrame:
        """The lines demand series are built from: ``order_lines`` plus, by default, the lines
        without an account (``account_id`` None), in date order."""
        return self._with_unattributed(self.order_lines, include_unattributed)

    def demand_lines_as_of(self, cutoff: Any, include_unattributed: bool = True) -> pd.DataFrame | None:
        """:meth:`demand_lines` placed before ``cutoff`` as they stood then (:meth:`lines_as_of`: a
        cancellation dated on or after ``cutoff`` does not net them; lines without an account are
        never netted, as they match no account's cancellation), or None when that is
        :meth:`demand_lines` itself up to ``cutoff`` (no cancellation dated later took anything
        from a line before it): the demand history a forecast made at ``cutoff`` could read."""
        ol = self.lines_as_of(cutoff)
        if ol is self.order_lines:
            return None
        return self._with_unattributed(ol, include_unattributed, before=pd.Timestamp(cutoff))

    def _with_unattributed(self, ol: pd.DataFrame, include: bool, before: pd.Timestamp | None = None) -> pd.DataFrame:
        extra = self.unattributed_lines
        if not include or extra is None or len(extra) == 0:
            return ol
        if before is not None:
            extra = extra.loc[extra["order_date"] < before]
        both = pd.concat([ol, extra[self.order_lines.columns]], ignore_index=True)
        return both.sort_values("order_date", kind="stable", ignore_index=True)


def order_lines_sha256(order_lines: pd.DataFrame, *more: pd.DataFrame) -> str:
    """A stable hash of the cleaned order lines, independent of row order and source format:
    sha256 over the column names and the sorted 64-bit hashes of the rows (of ``order_lines`` and
    of ``more`` tables with its columns, as if they were one: no concatenated copy)."""
    import numpy as np

    cols = sorted(order_lines.columns)
    rows = np.concatenate([pd.util.hash_pandas_object(t[cols], index=False).to_numpy() for t in (order_lines, *more)])
    h = hashlib.sha256()
    h.update(",".join(cols).encode())
    h.update(np.sort(rows).astype("<u8").tobytes())
    return h.hexdigest()


def _as_of_label(as_of: Any, limit: pd.Timestamp) -> str:
    if as_of is None:
        return f"now ({(limit - pd.Timedelta(seconds=1)).floor('s')})"
    ts = pd.Timestamp(as_of)
    if ts == ts.normalize():
        return f"{ts.date()} (whole day)"
    return str(ts)


def _file_info(src: TableSource) -> dict[str, Any]:
    info: dict[str, Any] = {"source": src.describe(), "format": src.resolved_format()}
    if src.path is not None and src.path.is_file():
        st = src.path.stat()
        info["bytes"] = st.st_size
    return info


def _check_source_files(cfg: ExperimentConfig) -> None:
    """A table file that does not exist, named with the config key it came from and the path as
    written: 'online_retail.csv.gz file not found' alone did not say that a copied config's
    ``${DEALERML_SHARED:-../../shared}`` took its default, or which folder a relative path is read from."""
    for name, src in cfg.data.sources().items():
        if src.path is None or src.resolved_format() == "duckdb" or src.path.exists():
            continue
        if src.path.parent.name == "synthetic":
            continue  # read_table says to generate it first
        where = f"key 'data.{name}.path'" + (f" in {cfg.config_path}" if cfg.config_path else "")
        written = _written_path(cfg, name)
        said = []
        if written is not None and written != str(src.path):
            said.append(f"written {written!r}")
            unset = [(m.group(1), m.group(2)) for m in _ENV_RE.finditer(written)
                     if m.group(2) is not None and not os.environ.get(m.group(1))]
            for var, default in unset:
                said.append(f"${{{var}}} is not set, so its default {default!r} was used: set {var} or edit the path")
            expanded = _ENV_RE.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", written)
            if not os.path.isabs(os.path.expanduser(expanded)) and cfg.config_path is not None:
                said.append(f"a relative path is read from the config's folder {cfg.config_path.parent}")
        raise DataError(f"{src.path}: {name} file not found ({where}" + "".join(f"; {x}" for x in said) + ")")


def _written_path(cfg: ExperimentConfig, name: str) -> str | None:
    """``data.<name>.path`` as the config file writes it (before ``${VAR}`` and the folder are applied)."""
    if cfg.config_path is None:
        return None
    try:
        raw = read_yaml_mapping(Path(cfg.config_path))
    except ConfigError:
        return None
    value = ((raw.get("data") or {}).get(name) or {}).get("path") if isinstance(raw.get("data"), dict) else None
    return value if isinstance(value, str) else None


def load_order_book(
    cfg: ExperimentConfig | str | os.PathLike[str],
    *,
    as_of: Any = None,
    progress: bool = False,
) -> OrderBook:
    """Read and validate every table the config names.

    ``as_of``: rows dated after it are dropped as ``future_date`` (a date means its whole
    day); default ``cfg.data.as_of``, else now. Raises :class:`DataError` on fatal problems
    (missing required column, empty table, no parseable dates, mostly-text numbers, nothing
    left after cleaning).
    """
    if not isinstance(cfg, ExperimentConfig):
        cfg = load_config(cfg)
    _check_source_files(cfg)
    if as_of is None:
        as_of = cfg.data.as_of
    limit = resolve_as_of(as_of)
    as_of_label = _as_of_label(as_of, limit)
    report = QualityReport(config=str(cfg.config_path or cfg.name), as_of=as_of_label)
    fp_tables: dict[str, Any] = {}
    data = cfg.data

    accounts = None
    if data.accounts is not None:
        raw = read_table("accounts", data.accounts, progress=progress)
        accounts, rep = validate_accounts(
            raw.frame, source=raw.source, mapping=raw.mapping, date_format=data.accounts.date_format,
            dayfirst=data.accounts.dayfirst, as_of=as_of, columns_present=raw.columns_present,
        )
        report.tables["accounts"] = rep
        fp_tables["accounts"] = {**_file_info(data.accounts), "rows_in": rep.rows_in, "rows_out": rep.rows_out}

    ol_src = data.order_lines
    raw = read_table("order_lines", ol_src, progress=progress)
    passthrough = [c for c in raw.frame.columns if c.startswith(DERIVED_PREFIX)]
    order_lines, rep = validate_order_lines(
        raw.frame,
        source=raw.source,
        mapping=raw.mapping,
        cancellation_prefix=ol_src.cancellation_prefix,
        cancellation_window_days=ol_src.cancellation_window_days,
        keep_unattributed=True,
        date_format=ol_src.date_format,
        dayfirst=ol_src.dayfirst,
        as_of=as_of,
        known_accounts=None if accounts is None else accounts["account_id"],
        passthrough=passthrough,
    )
    report.tables["order_lines"] = rep
    # the SKUs and locations of every line as read, kept or not (_not_in_book: stock of a SKU whose lines were all
    # dropped); only for a book with stock or lead times to check, not a pass over every line of every load
    checked = getattr(data, "inventory", None) is not None or getattr(data, "lead_times", None) is not None
    raw_values = ({c: _as_written(raw.frame[c], "order_lines", c) for c in ("sku", "location")
                   if c in raw.frame.columns} if checked else {})
    rep.warnings.extend(_unread_lookalikes(rep.defaults, raw.columns_present, raw.mapping))
    fp_tables["order_lines"] = {**_file_info(ol_src), "rows_in": rep.rows_in, "rows_out": rep.rows_out}
    netting = rep.netting
    if netting is not None and passthrough:
        netting = {**netting, "lines": netting["lines"].drop(columns=passthrough)}
    # lines whose only fault is a missing account: no account's order, but the SKU's demand (demand_lines)
    no_account = order_lines["account_id"].isna().to_numpy()
    unattributed = order_lines.loc[no_account].drop(columns=passthrough).reset_index(drop=True)
    order_lines = order_lines.loc[~no_account].reset_index(drop=True) if no_account.any() else order_lines
    if passthrough:
        attrs = {c[len(DERIVED_PREFIX):]: c for c in passthrough}
        accounts, arep = derive_accounts(
            order_lines, attrs, source="order_lines", labels={c: raw.mapping[c] for c in passthrough}
        )
        order_lines = order_lines.drop(columns=passthrough)
        report.tables = {"accounts": arep, **report.tables}
        fp_tables["accounts"] = {"source": arep.source, "rows_in": arep.rows_in, "rows_out": arep.rows_out}

    others: dict[str, pd.DataFrame | None] = {"service_events": None, "inventory": None, "lead_times": None,
                                              "promotions": None}
    written: dict[str, dict[str, dict[str, set[str]]]] = {}
    for name in others:
        src = getattr(data, name)
        if src is None:
            continue
        raw = read_table(name, src, progress=progress)
        kw: dict[str, Any] = dict(source=raw.source, mapping=raw.mapping)
        if name == "service_events":
            df, trep = validate_service_events(
                raw.frame, date_format=src.date_format, dayfirst=src.dayfirst, as_of=as_of,
                known_accounts=None if accounts is None else accounts["account_id"], **kw,
            )
        elif name == "inventory":
            df, trep = validate_inventory(raw.frame, date_format=src.date_format, dayfirst=src.dayfirst, as_of=as_of, **kw)
        elif name == "promotions":
            df, trep = validate_promotions(raw.frame, date_format=src.date_format, dayfirst=src.dayfirst, **kw)
        else:
            df, trep = validate_lead_times(raw.frame, **kw)
        others[name] = df
        report.tables[name] = trep
        if name in ("inventory", "lead_times"):  # its ids as the file writes them, for _not_in_book's warnings
            written[name] = {c: _as_written(raw.frame[c], name, c) for c in ("sku", "location") if c in raw.frame.columns}
        fp_tables[name] = {**_file_info(src), "rows_in": trep.rows_in, "rows_out": trep.rows_out}

    # validate_order_lines already refuses an empty result; this guards any later change to it
    if len(order_lines) == 0:
        raise DataError(f"{ol_src.describe()}: no order lines left after validation")
    levels = (cfg.demand or {}).get("levels", ["sku", "location"]) if isinstance(cfg.demand, dict) else None
    per_location = not isinstance(levels, list | str) or "location" in ([levels] if isinstance(levels, str) else levels)
    # the lines the demand series are built from: with demand.include_lines_without_account (default true)
    # also those without an account, so stock of a SKU sold only to no account is not called unused
    with_unattributed = (cfg.demand or {}).get("include_lines_without_account", True) is not False
    sold = pd.concat([order_lines, unattributed]) if with_unattributed and len(unattributed) else order_lines
    for name in ("inventory", "lead_times"):
        if others[name] is not None:
            report.tables[name].warnings.extend(_not_in_book(others[name], sold, name, per_location, raw_values,
                                                                      written.get(name)))
    fingerprint = {
        "config": str(cfg.config_path) if cfg.config_path else cfg.name,
        "as_of": as_of_label,
        "tables": fp_tables,
        "order_date_min": str(order_lines["order_date"].iloc[0]),
        "order_date_max": str(order_lines["order_date"].iloc[-1]),
        # the lines without an account count: they are demand
        "order_lines_sha256": order_lines_sha256(order_lines, *([unattributed] if len(unattributed) else [])),
        # the other tables churn and dealers read ('none' when not given): compare and promote tell their data apart
        **book_table_shas({"accounts": accounts, "service_events": others["service_events"]}),
    }
    if len(unattributed):
        fingerprint["lines_without_account"] = len(unattributed)
    return OrderBook(
        order_lines=order_lines,
        accounts=accounts,
        service_events=others["service_events"],
        inventory=others["inventory"],
        lead_times=others["lead_times"],
        promotions=others["promotions"],
        report=report,
        fingerprint=fingerprint,
        unattributed_lines=unattributed,
        netting=netting,
    )


def lines_as_of(book: Any, cutoff: Any) -> pd.DataFrame:
    """The order lines features at ``cutoff`` read: as they stood then (a cancellation dated later does
    not net a line placed before it; :meth:`OrderBook.lines_as_of`); a book without that (a stand-in
    with ``order_lines`` only): its order lines."""
    at = getattr(book, "lines_as_of", None)
    return at(cutoff) if callable(at) else book.order_lines


def refuse_year_last(text: str, option: str, like: str) -> None:
    """ConfigError when ``text`` is a date written with the year last (``01/12/2011``): pandas
    reads it month first, and in many countries it is day first, so no reading is safe."""
    import re

    if re.match(r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b", text):
        raise ConfigError(f"{option} must be written year first, like {like}; got {text!r}: a date with the year "
                          "last is day first in some countries and month first in others")


def parse_cutoff(value: Any, option: str = "--cutoff") -> pd.Timestamp:
    """A command-line cutoff as a tz-naive midnight; ConfigError naming ``option`` otherwise.

    The one parser behind every cutoff option (``--cutoff`` of the churn, dealers and features
    commands, ``demand.cutoff``)."""
    text = str(value).strip() if value is not None else ""
    refuse_year_last(text, option, "2024-06-01 (YYYY-MM-DD)")
    try:
        ts = pd.Timestamp(text) if text else pd.NaT
    except (TypeError, ValueError, OverflowError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise ConfigError(f"{option} must be a date like 2024-06-01 (YYYY-MM-DD); got {value!r}")
    if ts.tzinfo is not None:
        raise ConfigError(f"{option} must be a date without a time zone, like 2024-06-01; got {value!r}")
    if ts != ts.normalize():
        raise ConfigError(f"{option} must be a calendar date without a time of day, like 2024-06-01; got {value!r}")
    return ts


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def check_cutoff_in_book(book, cutoff, *, option: str = "--cutoff") -> pd.Timestamp:
    """Refuse a cutoff after the day that follows the book's last order.

    Features as of a later date would read the days without data as days without orders (every
    account drifting towards 'churned', demand series padded with zeros). The latest valid
    cutoff is the day after the last order. Returns the cutoff (a midnight)."""
    ol = book.order_lines if hasattr(book, "order_lines") else book
    cut = pd.Timestamp(cutoff).normalize()
    dates = ol["order_date"]
    if len(dates) == 0 or pd.isna(dates.max()):
        raise DataError("the order book has no dated order; cannot score or build features")
    last = pd.Timestamp(dates.max())
    latest = last.normalize() + pd.Timedelta(days=1)
    if cut > latest:
        report = getattr(book, "report", None)
        as_of = getattr(report, "as_of", None)
        as_of_s = f" (data as_of {as_of})" if as_of else ""
        raise DataError(
            f"{option} {cut.date()} is after the end of the order book: its last order is on "
            f"{last.date()}{as_of_s}, so the {_days(int((cut - latest).days))} before the cutoff would look like "
            f"days without orders. The latest valid cutoff is {latest.date()} (the day after the last "
            f"order); use {option} {latest.date()} or earlier, or load newer data"
        )
    return cut
