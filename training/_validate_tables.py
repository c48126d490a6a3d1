"""Validators of the tables other than order lines: accounts (validated or derived from
order lines), service events, inventory, lead times and promotions.

Private helper module of :mod:`training.validate` (import the public names from there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.demand import MAX_UNITS
from training._validate_columns import (
    _FATAL_SHARE,
    _check_not_all_missing,
    _check_not_empty,
    _dup_mask,
    _lower,
    _missing_required,
    _normalise_id,
    _pa_str,
    _pa_to_series,
    _str_col,
    _to_str,
    unknown_id_hint,
)
from training._validate_dates import _parse_dates, resolve_as_of
from training._validate_numbers import (
    _COMMA_NUMBER,
    MAX_RESOLUTION_DAYS,
    _infinite_cells,
    _infinite_fix_text,
    _refuse_beyond,
    _refuse_comma_numbers,
    _to_float,
)
from training._validate_report import TableReport, _finish_report
from training.contract import TABLES
from training.errors import DataError


def _optional_non_negative(raw: pd.DataFrame, col: str, reason: str, fixes: dict, kw: Mapping[str, Any],
                           note: str = "") -> tuple[pd.Series, np.ndarray]:
    """An optional numeric column where negatives are set to NaN (counted under ``reason``);
    all NaN when the column is absent. Also the mask of infinite cells (inf, -Infinity, 1e999,
    float inf: NaN in the values), which are not counted as unreadable: the caller names them."""
    if col not in raw.columns:
        return pd.Series(np.nan, index=raw.index), np.zeros(len(raw), dtype=bool)
    v = _to_float(raw[col], col=col, **kw)
    infinite = _infinite_cells(raw[col], v)
    text = raw[col].astype("string").str.strip()
    unreadable = (v.isna() & text.notna() & (text != "")).to_numpy() & ~infinite
    if unreadable.any():  # a few (most would have stopped the run): kept, but said
        fixes[f"{col}_unreadable"] = (unreadable, f"{col} that is not a number set to empty (NaN){note}")
    neg = (v < 0).to_numpy()
    if neg.any():
        fixes[reason] = (neg, f"negative {col} set to empty (NaN){note}")
        v = v.where(~neg)
    return v, infinite


def _common_start(raw: pd.DataFrame, table: str, source: str, mapping: Mapping[str, str] | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    mapping = dict(mapping or {})
    req = [c.name for c in TABLES[table] if c.required]
    _missing_required(raw, req, table=table, source=source, mapping=mapping)
    _check_not_empty(raw, table=table, source=source)
    return raw.reset_index(drop=True), dict(table=table, source=source, mapping=mapping)


def _done(
    table: str, source: str, raw: pd.DataFrame, out: pd.DataFrame, parsed: dict[str, pd.Series],
    flags: dict[str, np.ndarray], fixes: dict[str, tuple[np.ndarray, str]], defaults: dict[str, str],
    hint: str | None = None,
) -> tuple[pd.DataFrame, TableReport]:
    keep = ~np.logical_or.reduce(list(flags.values())) if flags else np.ones(len(raw), dtype=bool)
    report = _finish_report(
        table=table, source=source, raw=raw, parsed=parsed, cols=list(raw.columns), flags=flags, fixes=fixes, keep=keep
    )
    report.defaults = defaults
    if hint:
        report.warnings.append(hint)
    out = out[keep].reset_index(drop=True)
    if len(out) == 0:
        raise DataError(f"{source}: no {table} rows left after validation ({len(raw):,} rows in); "
                        + _reasons_text(report) + (f"; {hint}" if hint else ""))
    return out, report


def _reasons_text(report: TableReport, n: int = 3) -> str:
    """The main drop reasons of a table with nothing left: count, what the reason means and the
    first example row (its 1-based number and values), so the user sees what was expected."""
    top = sorted(report.reasons.items(), key=lambda kv: -kv[1]["rows"])[:n]
    parts = []
    for name, r in top:
        eg = ""
        if r.get("examples"):
            ex = dict(r["examples"][0])
            row = ex.pop("row")
            eg = f", e.g. row {row:,}: " + ", ".join(f"{k}={v}" for k, v in ex.items())
        parts.append(f"{name} ({r['rows']:,} rows): {r['description']}{eg}")
    return "main reasons: " + "; ".join(parts)


def validate_accounts(
    raw: pd.DataFrame, *, source: str = "accounts", mapping: Mapping[str, str] | None = None,
    date_format: str | None = None, dayfirst: bool | None = None, as_of: Any = None,
    columns_present: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean accounts: account_id str (unique), region / channel_type str ('unknown' when
    absent or empty), onboarding_date datetime64[ns] (NaT when absent), extra attribute
    columns as str. A table where most rows repeat an account_id is refused (``columns_present``:
    all the source's columns, to say when it looks like the order lines); a few repeats are dropped."""
    raw, kw = _common_start(raw, "accounts", source, mapping)
    fixes: dict[str, tuple[np.ndarray, str]] = {}
    defaults: dict[str, str] = {}
    account_id, acct_fixed = _normalise_id(raw["account_id"])
    _check_not_all_missing(account_id, col="account_id", **kw)
    if acct_fixed.any():
        fixes["account_id_float"] = (acct_fixed.to_numpy(), "account_id like '17850.0' written as '17850'")
    out = pd.DataFrame({"account_id": account_id.astype(object)})
    out["region"] = _str_col(raw, "region", "unknown", defaults, fixes)
    out["channel_type"] = _str_col(raw, "channel_type", "unknown", defaults, fixes)
    parsed: dict[str, pd.Series] = {"account_id": account_id}
    if "onboarding_date" in raw.columns:
        d = _parse_dates(raw["onboarding_date"], col="onboarding_date", date_format=date_format, dayfirst=dayfirst, required=False, **kw)
        bad = raw["onboarding_date"].notna().to_numpy() & d.isna().to_numpy()
        if bad.any():
            fixes["onboarding_date_unparseable"] = (bad, "unparseable onboarding_date set to empty (NaT)")
        fut = (d >= resolve_as_of(as_of)).fillna(False).to_numpy(dtype=bool)
        if fut.any():
            fixes["onboarding_date_future"] = (fut, "onboarding_date after the as-of time set to empty (NaT)")
            d = d.where(~fut)
        out["onboarding_date"] = d.astype("datetime64[ns]")
        parsed["onboarding_date"] = d
    else:
        out["onboarding_date"] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    known = {c.name for c in TABLES["accounts"]}
    for c in raw.columns:
        if c not in known:
            out[c] = _attribute(raw[c], col=c, **kw)
    flags = {
        "missing_account": account_id.isna().to_numpy(),
        "duplicate_account": (account_id.notna() & account_id.duplicated(keep="first")).to_numpy(),
    }
    if flags["duplicate_account"].sum() > _FATAL_SHARE * len(raw):
        # most rows repeat an id: another table (the order lines), not a few duplicates to drop
        raise DataError(_repeated_accounts_text(raw, account_id, flags["duplicate_account"],
                                                list(columns_present or raw.columns), **kw))
    out, rep = _done("accounts", kw["source"], raw, out, parsed, flags, fixes, defaults)
    rep.stats = {"accounts": len(out), "regions": int(out["region"].nunique()), "channel_types": int(out["channel_type"].nunique())}
    return out, rep


def _repeated_accounts_text(raw: pd.DataFrame, account_id: pd.Series, dup: np.ndarray, columns: list[str], *,
                            table: str, source: str, mapping: Mapping[str, str]) -> str:
    """Why an accounts table where most rows repeat an account_id is refused: the ids and their rows,
    whether it looks like the order lines, and what an accounts table is."""
    from training._validate_columns import _from

    examples = []
    for acc in account_id[dup].unique()[:3]:
        rows = np.flatnonzero((account_id == acc).to_numpy())
        examples.append(f"{acc} (rows {', '.join(str(r + 1) for r in rows[:4])}{' ...' if len(rows) > 4 else ''})")
    lines_cols = [c for c in ("order_id", "order_date", "sku", "quantity", "unit_price")
                  if c in {str(x).lower() for x in columns}]
    looks = (f"; it has order-line columns ({', '.join(lines_cols)}), so data.accounts may name the order lines file"
             if lines_cols else "")
    return (f"{source}: {table} must hold one row per account, but {int(dup.sum()):,} of {len(raw):,} rows repeat an "
            f"account_id{_from('account_id', mapping)} of an earlier row, e.g. {'; '.join(examples)} (1 = the first "
            f"data row){looks}; expected one row per account_id with its attributes (region, channel_type, "
            "onboarding_date ...): give the accounts (customers) table, or leave data.accounts out (data.order_lines."
            "derive_accounts_from builds it from order-line columns such as a country)")


def _attribute(s: pd.Series, **kw: Any) -> pd.Series:
    """An extra account attribute: float64 when every non-empty value is a number, else str; a
    column whose every value is a number written with a comma (13.000,00) is refused naming the
    ``decimal:`` setting (``kw``: col, table, source, mapping for that message)."""
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return _parse_dates(s, col="", table="", source="", mapping={}, date_format=None, dayfirst=False, required=False)
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _pa_str(s)
    if arr.null_count < len(arr):
        try:
            return pd.Series(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), index=s.index, dtype="float64")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    text = _pa_to_series(arr, s.index)
    present = text.notna().to_numpy()
    if kw and present.any() and text[present].astype(str).str.fullmatch(_COMMA_NUMBER).all():
        _refuse_comma_numbers(text, present, **kw)
    return text


def derive_accounts(
    order_lines: pd.DataFrame, attrs: Mapping[str, str], *, source: str, labels: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, TableReport]:
    """Accounts from order-line columns (``{accounts column: order_lines column}``): the most
    frequent value per account (ties: alphabetically first). ``labels`` names the columns in
    messages (the user's column names)."""
    labels = dict(labels or {})
    cols = list(attrs.values())
    base = order_lines[["account_id", *cols]]
    out = pd.DataFrame({"account_id": pd.Series(order_lines["account_id"].unique(), dtype=object)})
    warnings = []
    for name, col in attrs.items():
        counts = base.groupby(["account_id", col], dropna=False, observed=True).size().rename("n").reset_index()
        counts = counts.sort_values(["account_id", "n", col], ascending=[True, False, True], kind="mergesort")
        per = counts.groupby("account_id", sort=True).size()
        multi = int((per > 1).sum())
        if multi:  # with examples, as every other warning: which accounts, which values, which was kept
            shown = []
            for acc in per[per > 1].index[:3]:
                vals = counts.loc[counts["account_id"] == acc]
                seen = ", ".join(f"{v} ({n:,} lines)" for v, n in zip(vals[col], vals["n"], strict=True))
                shown.append(f"{acc}: {seen}")
            warnings.append(
                f"{multi:,} accounts have more than one {labels.get(col, col)}; the most frequent is kept as {name}, "
                f"e.g. {'; '.join(shown)}"
            )
        first = counts.drop_duplicates("account_id").set_index("account_id")[col]
        out[name] = out["account_id"].map(first).fillna("unknown").astype(object)
    for c, dflt in (("region", "unknown"), ("channel_type", "unknown")):
        if c not in out.columns:
            out[c] = dflt
    if "onboarding_date" not in out.columns:
        out["onboarding_date"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    front = ["account_id", "region", "channel_type", "onboarding_date"]
    out = out[front + [c for c in out.columns if c not in front]].sort_values("account_id", kind="mergesort").reset_index(drop=True)
    rep = TableReport(
        table="accounts",
        source=f"derived from {source} ({', '.join(f'{k} <- {labels.get(v, v)}' for k, v in attrs.items())})",
        rows_in=len(out), rows_out=len(out), warnings=warnings, stats={"accounts": len(out)},
    )
    return out, rep


def validate_service_events(
    raw: pd.DataFrame, *, source: str = "service_events", mapping: Mapping[str, str] | None = None,
    date_format: str | None = None, dayfirst: bool | None = None, as_of: Any = None,
    known_accounts: Sequence[str] | pd.Index | None = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean service events: event_date datetime64[ns], account_id str, kind str (lower case),
    resolution_days float64 (NaN when open / absent / negative), sorted by event_date."""
    raw, kw = _common_start(raw, "service_events", source, mapping)
    fixes: dict[str, tuple[np.ndarray, str]] = {}
    account_id, acct_fixed = _normalise_id(raw["account_id"])
    if acct_fixed.any():
        fixes["account_id_float"] = (acct_fixed.to_numpy(), "account_id like '17850.0' written as '17850'")
    d = _parse_dates(raw["event_date"], col="event_date", date_format=date_format, dayfirst=dayfirst, **kw)
    kind = _lower(raw["kind"])
    flags = {
        "unparseable_date": d.isna().to_numpy(),
        "future_date": (d >= resolve_as_of(as_of)).fillna(False).to_numpy(dtype=bool),
        "missing_account": account_id.isna().to_numpy(),
        "missing_kind": kind.isna().to_numpy(),
    }
    hint = None
    if known_accounts is not None:
        known = pd.Index(pd.Series(list(known_accounts), dtype=object).astype(str).unique())
        flags["unknown_account"] = account_id.notna().to_numpy() & ~account_id.isin(known).to_numpy()
        hint = unknown_id_hint(account_id, flags["unknown_account"], known, table="service_events")
    flags["duplicate"] = _dup_mask(raw, list(raw.columns))
    out = pd.DataFrame({"event_date": d, "account_id": account_id.astype(object), "kind": kind})
    note = ", which churn reads as a case still open: fix the dates in the export"
    out["resolution_days"], res_inf = _optional_non_negative(
        raw, "resolution_days", "resolution_days_negative", fixes, kw, note=note)
    if "resolution_days" in raw.columns:  # 1e300 days was a case open at every cutoff, silently
        _refuse_beyond(out["resolution_days"], raw["resolution_days"], MAX_RESOLUTION_DAYS, col="resolution_days",
                       expected="a number of days from raised to resolved (empty while open)", slip="a date or an id",
                       signed=False, **kw)
    kept_inf = res_inf & ~np.logical_or.reduce(list(flags.values()))
    if kept_inf.any():  # said as what it is, not as 'not a number'
        fixes["resolution_days_infinite"] = (res_inf, _infinite_fix_text(
            raw["resolution_days"], kept_inf, "resolution_days", f"set to empty (NaN){note}"))
    odd = ~kind.isin(["complaint", "return", "ticket"]).to_numpy() & kind.notna().to_numpy()
    out, rep = _done("service_events", kw["source"], raw, out, {"event_date": d}, flags, fixes, {}, hint=hint)
    rep.stats = {f"kind={k}": int(v) for k, v in out["kind"].value_counts().sort_index().items()}
    if odd.any():
        rep.warnings.append(f"{int(odd.sum()):,} events have a kind other than complaint/return/ticket (kept): "
                            f"{sorted(set(kind[odd].astype(str)))[:5]}; churn counts them only among all service "
                            "events, not as complaints, returns or tickets: recode them in the export to be counted so")
    out = out.sort_values("event_date", kind="mergesort").reset_index(drop=True)
    return out, rep


def validate_inventory(
    raw: pd.DataFrame, *, source: str = "inventory", mapping: Mapping[str, str] | None = None,
    date_format: str | None = None, dayfirst: bool | None = None, as_of: Any = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean inventory snapshots: location str, sku str, on_hand float64 (units; negative kept
    and warned), snapshot_date datetime64[ns] (NaT when absent)."""
    raw, kw = _common_start(raw, "inventory", source, mapping)
    # location as every other table reads it (text, stripped): read as an id here ('1.0' -> '1'), a location
    # the order lines and lead times write '1.0' never matched, and its stock was called unused
    location = _to_str(raw["location"])
    sku, _ = _normalise_id(raw["sku"])
    on_hand = _to_float(raw["on_hand"], col="on_hand", **kw)
    # 1e300 units on hand were read: safety-stock advised an overstock of 1e300 units
    _refuse_beyond(on_hand, raw["on_hand"], MAX_UNITS, col="on_hand", expected="a number of units on hand",
                   slip="an id", **kw)
    on_hand_inf = _infinite_cells(raw["on_hand"], on_hand)
    flags = {
        "missing_location": location.isna().to_numpy(),
        "missing_sku": sku.isna().to_numpy(),
        "missing_on_hand": on_hand.isna().to_numpy() & ~on_hand_inf,
        "infinite_on_hand": on_hand_inf,
    }
    parsed: dict[str, pd.Series] = {"on_hand": on_hand}
    if "snapshot_date" in raw.columns:
        d = _parse_dates(raw["snapshot_date"], col="snapshot_date", date_format=date_format, dayfirst=dayfirst, **kw)
        flags["unparseable_date"] = d.isna().to_numpy()
        flags["future_date"] = (d >= resolve_as_of(as_of)).fillna(False).to_numpy(dtype=bool)
        parsed["snapshot_date"] = d
    else:
        d = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    flags["duplicate"] = _dup_mask(raw, list(raw.columns))
    # one figure per SKU, location and snapshot: a second one (a bin or lot) is reported, not silently overwritten
    key = pd.DataFrame({"sku": sku, "location": location, "snapshot_date": d})
    flags["duplicate_snapshot"] = (key.duplicated(keep="first").to_numpy() & ~flags["duplicate"]
                                   & sku.notna().to_numpy() & location.notna().to_numpy())
    out = pd.DataFrame({"location": location.astype(object), "sku": sku.astype(object), "on_hand": on_hand, "snapshot_date": d})
    out, rep = _done("inventory", kw["source"], raw, out, parsed, flags, {}, {})
    rep.stats = {"locations": int(out["location"].nunique()), "skus": int(out["sku"].nunique()), "units_on_hand": round(float(out["on_hand"].sum()), 2)}
    neg = (out["on_hand"] < 0).to_numpy()
    if neg.any():
        eg = ", ".join(f"{k}/{loc}: {v:g}" for k, loc, v in
                       out.loc[neg, ["sku", "location", "on_hand"]].head(3).itertuples(index=False))
        rep.warnings.append(f"{int(neg.sum()):,} inventory rows have negative on_hand (kept as backorders: safety stock "
                            f"orders to cover them), e.g. sku/location {eg}")
    return out, rep


def validate_lead_times(
    raw: pd.DataFrame, *, source: str = "lead_times", mapping: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean lead times: sku str, location str ('ALL' when absent/empty), lead_time_days
    float64 >= 0 (days; 0 = same-day supply: collected at a local DC, made or drop-shipped the
    same day), lead_time_std_days float64 >= 0 (NaN when unknown)."""
    raw, kw = _common_start(raw, "lead_times", source, mapping)
    fixes: dict[str, tuple[np.ndarray, str]] = {}
    defaults: dict[str, str] = {}
    sku, _ = _normalise_id(raw["sku"])
    location = _str_col(raw, "location", "ALL", defaults, fixes)
    lt = _to_float(raw["lead_time_days"], col="lead_time_days", **kw)
    lt_inf = _infinite_cells(raw["lead_time_days"], lt)
    sd, sd_inf = _optional_non_negative(raw, "lead_time_std_days", "lead_time_std_negative", fixes, kw)
    flags = {
        "missing_sku": sku.isna().to_numpy(),
        "invalid_lead_time": ~(lt >= 0).to_numpy() & ~lt_inf,  # 0 is same-day supply; NaN (empty, text) fails too
        # an infinite spread set to empty would be sized as a spread of 0: the row goes, and the series is
        # sized as one without a row (its SKU's ALL row, else the config's lead time)
        "infinite_lead_time": lt_inf | sd_inf,
        "duplicate": _dup_mask(raw, list(raw.columns)),
    }
    key = pd.DataFrame({"sku": sku, "location": location})
    flags["duplicate_key"] = key.duplicated(keep="first").to_numpy() & ~flags["duplicate"] & sku.notna().to_numpy()
    out = pd.DataFrame({"sku": sku.astype(object), "location": location, "lead_time_days": lt, "lead_time_std_days": sd.astype("float64")})
    out, rep = _done("lead_times", kw["source"], raw, out, {"lead_time_days": lt}, flags, fixes, defaults)
    rep.stats = {"skus": int(out["sku"].nunique()), "mean_lead_time_days": round(float(out["lead_time_days"].mean()), 2)}
    return out, rep


def validate_promotions(
    raw: pd.DataFrame, *, source: str = "promotions", mapping: Mapping[str, str] | None = None,
    date_format: str | None = None, dayfirst: bool | None = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean planned campaigns: sku str, location str ('ALL' when absent / empty: every location),
    start_date and end_date datetime64[ns] (days, end inclusive; a row whose end is before its start
    is dropped), discount float64 share 0..1 (NaN when absent; another value set to NaN, row kept).
    Campaigns after ``as_of`` are kept: they are planned, which is what they are for."""
    raw, kw = _common_start(raw, "promotions", source, mapping)
    fixes: dict[str, tuple[np.ndarray, str]] = {}
    defaults: dict[str, str] = {}
    sku, _ = _normalise_id(raw["sku"])
    location = _str_col(raw, "location", "ALL", defaults, fixes)
    start = _parse_dates(raw["start_date"], col="start_date", date_format=date_format, dayfirst=dayfirst, **kw)
    end = _parse_dates(raw["end_date"], col="end_date", date_format=date_format, dayfirst=dayfirst, **kw)
    start, end = start.dt.normalize(), end.dt.normalize()
    disc, disc_inf = _optional_non_negative(raw, "discount", "discount_negative", fixes, kw)
    over = ((disc > 1).to_numpy() | disc_inf)
    if over.any():
        fixes["discount_above_one"] = (over, "discount above 1 or infinite set to empty (NaN): a share, 0.15 = 15 % off")
        disc = disc.where(~over)
    flags = {
        "missing_sku": sku.isna().to_numpy(),
        "unparseable_start_date": start.isna().to_numpy(),
        "unparseable_end_date": end.isna().to_numpy(),
        "end_before_start": (end < start).fillna(False).to_numpy(dtype=bool),
        "duplicate": _dup_mask(raw, list(raw.columns)),
    }
    out = pd.DataFrame({"sku": sku.astype(object), "location": location, "start_date": start, "end_date": end,
                        "discount": disc.astype("float64")})
    out, rep = _done("promotions", kw["source"], raw, out, {"start_date": start, "end_date": end}, flags, fixes,
                     defaults)
    rep.stats = {"skus": int(out["sku"].nunique()), "campaign_days": int(((out["end_date"] - out["start_date"]).dt.days
                                                                           + 1).sum())}
    return out, rep
