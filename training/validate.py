"""Validation and cleaning: raw canonical table -> (clean table, report section).

Pure functions, no I/O. Each ``validate_<table>`` flags every raw row for every drop reason
independently (a row can have several reasons), drops the rows with at least one reason,
fixes what can be fixed (float-looking ids, defaults, derived amounts) and returns the clean
table with exactly the dtypes of ``docs/ARCHITECTURE.md`` plus a :class:`TableReport` with the
counts and up to five example rows per reason.

Fatal problems raise :class:`training.errors.DataError` naming the source, the column, the
problem and example values: a missing required column, an empty table, no parseable dates,
a numeric column that is mostly text, a required column that is empty in every row, or no
rows left after cleaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.contract import TABLES
from training.errors import DataError

__all__ = [
    "TableReport",
    "validate_order_lines",
    "validate_accounts",
    "validate_service_events",
    "validate_inventory",
    "validate_lead_times",
    "derive_accounts",
    "resolve_as_of",
    "MAX_EXAMPLES",
]

MAX_EXAMPLES = 5
_FATAL_SHARE = 0.5  # a numeric/date column whose non-empty values are mostly unparseable is fatal

REASONS: dict[str, str] = {
    "missing_order_id": "order_id is empty",
    "unparseable_date": "date is empty or cannot be parsed",
    "future_date": "date is after the as-of time",
    "cancellation": "order_id starts with the cancellation prefix (a cancelled invoice)",
    "negative_quantity": "quantity < 0 (return, cancellation or stock adjustment)",
    "zero_quantity": "quantity = 0",
    "missing_quantity": "quantity is empty or not a number",
    "missing_price": "unit price (or line amount) is empty or not a number",
    "non_positive_price": "unit price <= 0 (free items, bad-debt or fee adjustments)",
    "missing_account": "account_id is empty",
    "unknown_account": "account_id is not in the accounts table",
    "missing_sku": "sku is empty",
    "duplicate": "exact duplicate of an earlier row (all mapped columns equal)",
    "duplicate_account": "account_id already appeared in an earlier row (first kept)",
    "missing_kind": "kind is empty",
    "missing_location": "location is empty",
    "missing_on_hand": "on_hand is empty or not a number",
    "invalid_lead_time": "lead_time_days is empty, not a number or <= 0",
    "duplicate_key": "(sku, location) already appeared in an earlier row (first kept)",
}


@dataclass
class TableReport:
    """What validation did to one table. ``reasons`` counts flagged raw rows per reason
    (a row can be flagged for several reasons); ``rows_dropped`` counts each dropped row once."""

    table: str
    source: str
    rows_in: int
    rows_out: int
    reasons: dict[str, dict[str, Any]] = field(default_factory=dict)
    fixes: dict[str, dict[str, Any]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        return self.rows_in - self.rows_out

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_dropped": self.rows_dropped,
            "reasons": self.reasons,
            "fixes": self.fixes,
            "defaults": self.defaults,
            "stats": self.stats,
            "warnings": list(self.warnings),
        }

    def render(self) -> str:
        pct = 100.0 * self.rows_dropped / self.rows_in if self.rows_in else 0.0
        lines = [
            f"{self.table}  ({self.source})",
            f"  rows in {self.rows_in:>12,}   kept {self.rows_out:>12,}   dropped {self.rows_dropped:>10,} ({pct:.1f}%)",
        ]
        if self.reasons:
            lines.append(f"  {'drop reason':<22}{'rows flagged':>14}{'only reason':>13}  meaning")
            for name, r in self.reasons.items():
                lines.append(f"  {name:<22}{r['rows']:>14,}{r['only_reason']:>13,}  {r['description']}")
                if r.get("examples"):
                    ex = r["examples"][0]
                    vals = ", ".join(f"{k}={v}" for k, v in ex.items() if k != "row")
                    line = f"      e.g. row {ex['row']:,}: {vals}"
                    lines.append(line if len(line) <= 140 else line[:137] + "...")
        if self.fixes:
            lines.append(f"  {'fixed (kept)':<22}{'rows':>14}  what")
            for name, f in self.fixes.items():
                lines.append(f"  {name:<22}{f['rows']:>14,}  {f['description']}")
        if self.defaults:
            lines.append("  defaults: " + ", ".join(f"{k}={v!r}" for k, v in self.defaults.items()))
        if self.stats:
            lines.append("  " + ", ".join(f"{k}: {_fmt_stat(v)}" for k, v in self.stats.items()))
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        if len(self.reasons) > 1:
            lines.append("  (a row can have several reasons: 'rows flagged' counts every row with the problem,"
                         " 'only reason' those dropped for it alone)")
        return "\n".join(lines)


def _fmt_stat(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


# ----------------------------------------------------------------------------- helpers


def resolve_as_of(as_of: Any = None) -> pd.Timestamp:
    """The exclusive upper bound for dates: ``as_of`` (a midnight means its whole day) or now."""
    if as_of is None:
        return pd.Timestamp.now().floor("s") + pd.Timedelta(seconds=1)
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    if ts == ts.normalize():
        return ts + pd.Timedelta(days=1)
    return ts + pd.Timedelta(microseconds=1)


def _pa_str(s: pd.Series):  # type: ignore[no-untyped-def]
    """Text values of a non-numeric column as a pyarrow string array: trimmed, '' -> null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_string(s.dtype.pyarrow_dtype):
        arr = s.array.__arrow_array__()  # zero-copy: file sources arrive as Arrow strings
    elif isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_large_string(s.dtype.pyarrow_dtype):
        arr = s.array.__arrow_array__().cast(pa.string())
    else:
        try:
            arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects (ints, bytes ...): print them
            arr = pa.array(s.map(lambda v: None if _isna(v) else str(v)).to_numpy(dtype=object), type=pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _pa_to_series(arr, index: pd.Index) -> pd.Series:  # type: ignore[no-untyped-def]
    return pd.Series(_arrow_to_objects(arr), index=index, dtype=object)


def _to_str(s: pd.Series) -> pd.Series:
    """Values as stripped ``str`` (object dtype), missing as None/NaN; float 17850.0 -> '17850'."""
    if pd.api.types.is_float_dtype(s.dtype):
        return _pa_to_series(_id_arrow(s)[0], s.index)
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("string").astype(object).where(s.notna(), np.nan)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype(str).where(s.notna(), np.nan).astype(object)
    return _pa_to_series(_pa_str(s), s.index)


_FLOATY_ID = r"^(-?\d+)\.0+$"


def _id_arrow(s: pd.Series):  # type: ignore[no-untyped-def]
    """(ids as an Arrow string array, numpy mask of values changed from '123.0' / float 123.0 to '123')."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64")
        ok = ~np.isnan(v)
        integral = ok & (np.abs(v) < 1e15)
        integral[integral] = v[integral] == np.floor(v[integral])
        arr = pa.array(np.where(integral, v, 0).astype(np.int64), mask=~integral).cast(pa.string())
        other = ok & ~integral
        if other.any():  # non-integral float ids: rare, print them
            arr = pc.replace_with_mask(arr, pa.array(other), pa.array([repr(float(x)) for x in v[other]], pa.string()))
        return arr, integral
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return _pa_str(_to_str(s)), np.zeros(len(s), dtype=bool)
    arr = _pa_str(s)
    mask = pc.fill_null(pc.match_substring_regex(arr, _FLOATY_ID), False)
    changed = mask.to_numpy(zero_copy_only=False)
    if changed.any():
        arr = pc.if_else(mask, pc.replace_substring_regex(arr, r"\.0+$", ""), arr)
    return arr, changed


def _normalise_id(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(ids as str, mask of values changed from '123.0' (or float 123.0) to '123')."""
    arr, changed = _id_arrow(s)
    return _pa_to_series(arr, s.index), pd.Series(changed, index=s.index)


def _is_null(x: Any) -> np.ndarray:
    import pyarrow.compute as pc

    if isinstance(x, pd.Series):
        return x.isna().to_numpy()
    return pc.is_null(x).to_numpy(zero_copy_only=False)


def _take(x: Any, order: np.ndarray) -> np.ndarray:
    """Rows ``order`` of a Series or Arrow array as a numpy array (text -> object of str)."""
    if isinstance(x, pd.Series):
        return x.to_numpy()[order]
    return _arrow_to_objects(x.take(order))


def _arrow_to_objects(arr) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Arrow text -> numpy object array with ONE Python str per distinct value (ids repeat a
    lot: this is ~8 bytes a row instead of ~60)."""
    import pyarrow.compute as pc

    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr)
    uniques = np.append(enc.dictionary.to_numpy(zero_copy_only=False).astype(object), None)
    idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    return uniques[idx]


def _startswith(s: Any, prefix: str) -> np.ndarray:
    import pyarrow.compute as pc

    arr = _pa_str(s) if isinstance(s, pd.Series) else s
    return pc.fill_null(pc.starts_with(arr, prefix), False).to_numpy(zero_copy_only=False)


def _lower(s: pd.Series) -> pd.Series:
    import pyarrow.compute as pc

    return _pa_to_series(pc.utf8_lower(_pa_str(s)), s.index)


def _examples_values(raw: pd.Series, mask: np.ndarray, n: int = 3) -> list[str]:
    vals = raw[mask].dropna().astype(str).unique()[:n]
    return [repr(v) for v in vals]


def _to_float(
    raw: pd.Series, *, col: str, table: str, source: str, mapping: Mapping[str, str]
) -> pd.Series:
    """Parse a numeric column; fatal if most non-empty values are not numbers."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("float64")
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return pd.to_numeric(raw, errors="coerce").astype("float64")
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _pa_str(raw)
    try:  # fast path: every non-empty value is a number
        num = pd.Series(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), index=raw.index, dtype="float64")
        st = None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        st = _pa_to_series(arr, raw.index)
        num = pd.to_numeric(st, errors="coerce").astype("float64")
    num = num.where(np.isfinite(num.to_numpy()))
    present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    if st is None:
        return num
    bad = present & num.isna().to_numpy()
    if present.sum() and bad.sum() > _FATAL_SHARE * present.sum():
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)} should hold numbers but "
            f"{bad.sum():,} of {present.sum():,} non-empty values are not numbers, "
            f"e.g. {', '.join(_examples_values(st, bad))}"
        )
    return num


def _from(col: str, mapping: Mapping[str, str]) -> str:
    user = mapping.get(col, col)
    return f" (column '{user}')" if user != col else ""


def _parse_dates(
    raw: pd.Series,
    *,
    col: str,
    table: str,
    source: str,
    mapping: Mapping[str, str],
    date_format: str | None,
    dayfirst: bool,
    required: bool = True,
) -> pd.Series:
    """Parse dates to tz-naive datetime64[ns]; NaT where empty or unparseable.

    Fatal when no value parses at all or most non-empty values do not parse (a wrong
    ``date_format``/``dayfirst`` usually).
    """
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        out = raw
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        return out.astype("datetime64[ns]")
    if not date_format and not pd.api.types.is_numeric_dtype(raw.dtype):
        fast = _arrow_iso_dates(raw)
        if fast is not None:
            return fast
    st = _to_str(raw)
    present = st.notna().to_numpy()
    out = _parse_str_dates(st, date_format, dayfirst)
    bad = present & out.isna().to_numpy()
    n_present = int(present.sum())
    if required and n_present == 0:
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)} is empty in all {len(raw):,} rows; "
            "expected a date or date-time"
        )
    if n_present and (bad.sum() == n_present or bad.sum() > _FATAL_SHARE * n_present):
        what = "no value" if bad.sum() == n_present else f"{bad.sum():,} of {n_present:,} non-empty values"
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)}: {what} can be parsed as a date, "
            f"e.g. {', '.join(_examples_values(st, bad))}; expected dates like 2024-03-31 or "
            "2024-03-31 14:05:00 (set date_format: / dayfirst: in the config for other layouts)"
        )
    return out


def _arrow_iso_dates(raw: pd.Series) -> pd.Series | None:
    """All non-empty values ISO dates / date-times: parse in Arrow (fast, no Python objects).
    None when any value needs the slower pandas parser (or all are empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _pa_str(raw)
    if arr.null_count == len(arr):
        return None
    try:
        ts = pc.cast(arr, pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.Series(ts.to_numpy(zero_copy_only=False), index=raw.index).astype("datetime64[ns]")


def _parse_str_dates(st: pd.Series, date_format: str | None, dayfirst: bool) -> pd.Series:
    def attempt(s: pd.Series, **kw: Any) -> pd.Series:
        try:
            r = pd.to_datetime(s, errors="coerce", **kw)
        except (ValueError, TypeError):
            r = pd.to_datetime(s, errors="coerce", utc=True, **kw)
        if getattr(r.dt, "tz", None) is not None:
            r = r.dt.tz_localize(None)
        return r.astype("datetime64[ns]")

    if date_format:
        return attempt(st, format=date_format)
    out = attempt(st, format="ISO8601")
    todo = st.notna() & out.isna()
    if todo.any():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub = attempt(st[todo], dayfirst=dayfirst)
            still = sub.isna()
            if still.any() and still.sum() <= 200_000:
                sub[still] = attempt(st[todo][still], format="mixed", dayfirst=dayfirst)
        out[todo] = sub
    return out


def _missing_required(df: pd.DataFrame, cols: Sequence[str], *, table: str, source: str, mapping: Mapping[str, str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        parts = [f"'{c}'" + (f" (mapped from '{mapping[c]}')" if mapping.get(c, c) != c else "") for c in missing]
        raise DataError(
            f"{source}: {table} is missing required column(s) {', '.join(parts)}; "
            f"columns present: {list(df.columns)}"
        )


def _check_not_empty(df: pd.DataFrame, *, table: str, source: str) -> None:
    if len(df) == 0:
        raise DataError(f"{source}: {table} is empty (0 rows); expected at least one row")


def _check_not_all_missing(s: Any, *, col: str, table: str, source: str, mapping: Mapping[str, str]) -> None:
    if _is_null(s).all():
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)} is empty in all {len(s):,} rows; it is required"
        )


def _display(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    if isinstance(v, np.floating | float):
        f = float(v)
        return int(f) if f.is_integer() and abs(f) < 1e15 else f
    if isinstance(v, np.integer):
        return int(v)
    return str(v)


def _finish_report(
    *,
    table: str,
    source: str,
    raw: pd.DataFrame,
    parsed: Mapping[str, pd.Series],
    cols: Sequence[str],
    flags: dict[str, np.ndarray],
    fixes: dict[str, tuple[np.ndarray, str]],
    keep: np.ndarray,
) -> TableReport:
    """Count flags per reason (and rows whose only reason it is), with example rows.

    Example values are the parsed value where it parsed, else the raw text, so the same rows
    give the same report whether they came from text (CSV) or typed (Parquet/SQL) sources."""
    n = len(raw)
    n_flags = np.sum(np.vstack(list(flags.values())), axis=0) if flags else np.zeros(n, dtype=int)
    picked: dict[str, np.ndarray] = {}
    counts: dict[str, tuple[int, int]] = {}
    seen = np.zeros(n, dtype=bool)
    for name, f in flags.items():
        cnt = int(f.sum())
        first = f & ~seen  # rows for which this is the first reason: the most telling examples
        seen |= f
        if cnt == 0:
            continue
        idx = np.flatnonzero(first)[:MAX_EXAMPLES]
        if len(idx) < MAX_EXAMPLES:
            more = np.flatnonzero(f & ~first)[: MAX_EXAMPLES - len(idx)]
            idx = np.sort(np.concatenate([idx, more]))
        picked[name] = idx
        counts[name] = (cnt, int((f & (n_flags == 1)).sum()))
    rows = np.unique(np.concatenate(list(picked.values()))) if picked else np.array([], dtype=int)
    shown = {}
    for c in cols:
        if c not in raw.columns:
            continue
        vals = raw[c].iloc[rows].astype(object)
        if c in parsed:
            src_p = parsed[c]
            if isinstance(src_p, pd.Series):
                p = src_p.iloc[rows]
            else:
                p = pd.Series(src_p.take(rows).to_pylist(), index=vals.index, dtype=object)
            vals = p.astype(object).where(p.notna(), vals)
        shown[c] = dict(zip(rows.tolist(), vals.tolist(), strict=True))
    reasons: dict[str, dict[str, Any]] = {}
    for name, idx in picked.items():
        examples = [{"row": int(i) + 1, **{c: _display(shown[c][int(i)]) for c in shown}} for i in idx]
        reasons[name] = {
            "rows": counts[name][0],
            "only_reason": counts[name][1],
            "description": REASONS[name],
            "examples": examples,
        }
    fix_out = {}
    for name, (mask, desc) in fixes.items():
        cnt = int((mask & keep).sum())
        if cnt:
            fix_out[name] = {"rows": cnt, "description": desc}
    return TableReport(table=table, source=source, rows_in=n, rows_out=int(keep.sum()), reasons=reasons, fixes=fix_out)


def _codes(s: pd.Series) -> np.ndarray:
    """Integer codes with equal codes <=> equal values (missing = -1), without Python objects
    for Arrow text columns."""
    if isinstance(s.dtype, pd.ArrowDtype):
        import pyarrow.compute as pc

        arr = s.array.__arrow_array__()
        arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
        idx = pc.dictionary_encode(arr).indices
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return pd.factorize(s, use_na_sentinel=True)[0].astype(np.int64)


def _dup_mask(raw: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Exact duplicates of an earlier row over ``cols`` (compared through per-column codes)."""
    codes = [_codes(raw[c]) for c in cols]
    h = np.zeros(len(raw), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in codes:  # a 64-bit row hash finds the candidates ...
            h = h * np.uint64(1_000_003) + pd.util.hash_array(c)
    cand = np.flatnonzero(pd.Series(h).duplicated(keep=False).to_numpy())
    out = np.zeros(len(raw), dtype=bool)
    if len(cand):  # ... and the exact codes decide among them
        out[cand] = pd.DataFrame({i: c[cand] for i, c in enumerate(codes)}).duplicated(keep="first").to_numpy()
    return out


def _str_col(
    raw: pd.DataFrame, col: str, default: str | None, defaults: dict[str, str], fixes: dict[str, tuple[np.ndarray, str]]
) -> pd.Series:
    """An optional text column: filled with ``default`` where missing (a fix) or absent (a default)."""
    if col not in raw.columns:
        if default is not None:
            defaults[col] = default
        return pd.Series(default, index=raw.index, dtype=object)
    s = _to_str(raw[col])
    if default is not None:
        miss = s.isna().to_numpy()
        if miss.any():
            fixes[f"{col}_filled"] = (miss, f"empty {col} set to {default!r}")
            s = s.where(~miss, default)
    return s.astype(object)


# ----------------------------------------------------------------------------- order lines


def validate_order_lines(
    raw: pd.DataFrame,
    *,
    source: str = "order_lines",
    mapping: Mapping[str, str] | None = None,
    cancellation_prefix: str | None = None,
    date_format: str | None = None,
    dayfirst: bool = False,
    as_of: Any = None,
    known_accounts: Sequence[str] | pd.Index | None = None,
    passthrough: Sequence[str] = (),
) -> tuple[pd.DataFrame, TableReport]:
    """Clean raw order lines (canonical names, any dtypes) -> (order_lines, report).

    ``known_accounts``: when given, lines of other accounts are dropped (``unknown_account``).
    ``passthrough``: extra raw columns carried to the output as str (used to derive accounts).
    Output columns: order_id, order_date, account_id, sku, quantity, unit_price, line_amount,
    location, channel, category, promo (+ currency when mapped, + passthrough), sorted by
    order_date.
    """
    table = "order_lines"
    mapping = dict(mapping or {})
    _missing_required(raw, ["order_id", "order_date", "account_id", "sku", "quantity"], table=table, source=source, mapping=mapping)
    if "unit_price" not in raw.columns and "line_amount" not in raw.columns:
        _missing_required(raw, ["unit_price"], table=table, source=source, mapping=mapping)
    _check_not_empty(raw, table=table, source=source)
    raw = raw.reset_index(drop=True)
    kw = dict(table=table, source=source, mapping=mapping)

    order_id, _ = _id_arrow(raw["order_id"])
    account_id, acct_fixed = _id_arrow(raw["account_id"])
    sku, _ = _id_arrow(raw["sku"])
    for col, s in (("order_id", order_id), ("account_id", account_id), ("sku", sku)):
        _check_not_all_missing(s, col=col, **kw)
    order_date = _parse_dates(raw["order_date"], col="order_date", date_format=date_format, dayfirst=dayfirst, **kw)
    quantity = _to_float(raw["quantity"], col="quantity", **kw)
    _check_not_all_missing(quantity, col="quantity", **kw)

    fixes: dict[str, tuple[np.ndarray, str]] = {}
    defaults: dict[str, str] = {}
    if "unit_price" in raw.columns:
        unit_price = _to_float(raw["unit_price"], col="unit_price", **kw)
        price_missing = unit_price.isna().to_numpy()
        if "line_amount" in raw.columns:
            given = _to_float(raw["line_amount"], col="line_amount", **kw)
            from_amount = given / quantity.where(quantity != 0)
            fill = unit_price.isna().to_numpy() & from_amount.notna().to_numpy()
            if fill.any():
                fixes["unit_price_derived"] = (fill, "empty unit_price set to line_amount / quantity")
                unit_price = unit_price.where(~fill, from_amount)
                price_missing = unit_price.isna().to_numpy()
            derived = quantity * unit_price
            miss = given.isna().to_numpy() & derived.notna().to_numpy()
            if miss.any():
                fixes["line_amount_derived"] = (miss, "empty line_amount set to quantity x unit_price")
            line_amount = given.where(given.notna(), derived)
        else:
            line_amount = quantity * unit_price
            defaults["line_amount"] = "quantity x unit_price"
    else:
        line_amount = _to_float(raw["line_amount"], col="line_amount", **kw)
        price_missing = line_amount.isna().to_numpy()
        unit_price = line_amount / quantity.where(quantity != 0)
        defaults["unit_price"] = "line_amount / quantity"
    _check_not_all_missing(unit_price, col="unit_price" if "unit_price" in raw.columns else "line_amount", **kw)

    limit = resolve_as_of(as_of)
    q = quantity.to_numpy()
    p = unit_price.to_numpy()
    flags: dict[str, np.ndarray] = {
        "missing_order_id": _is_null(order_id),
        "unparseable_date": order_date.isna().to_numpy(),
        "future_date": (order_date >= limit).fillna(False).to_numpy(dtype=bool),
    }
    if cancellation_prefix:
        flags["cancellation"] = _startswith(order_id, cancellation_prefix)
    flags["negative_quantity"] = np.nan_to_num(q, nan=0.0) < 0
    flags["zero_quantity"] = q == 0
    flags["missing_quantity"] = np.isnan(q)
    flags["missing_price"] = price_missing
    flags["non_positive_price"] = np.nan_to_num(p, nan=1.0) <= 0
    flags["missing_account"] = _is_null(account_id)
    if known_accounts is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        known = pa.array(pd.Series(list(known_accounts), dtype=object).astype(str).unique(), pa.string())
        isin = pc.fill_null(pc.is_in(account_id, value_set=known), False).to_numpy(zero_copy_only=False)
        flags["unknown_account"] = ~flags["missing_account"] & ~isin
    flags["missing_sku"] = _is_null(sku)
    dup_cols = [c for c in raw.columns if c in {col.name for col in TABLES[table]}]
    flags["duplicate"] = _dup_mask(raw, dup_cols)

    if acct_fixed.any():
        fixes["account_id_float"] = (acct_fixed, "account_id like '17850.0' written as '17850'")
    location = _str_col(raw, "location", "ALL", defaults, fixes)
    channel = _str_col(raw, "channel", "unknown", defaults, fixes)
    category = _str_col(raw, "category", "ALL", defaults, fixes)
    promo = _promo(raw, defaults, fixes, **kw)
    currency = _str_col(raw, "currency", "unknown", defaults, fixes) if "currency" in raw.columns else None

    keep = ~np.logical_or.reduce(list(flags.values()))
    parsed = {"order_date": order_date, "quantity": quantity, "unit_price": unit_price, "account_id": account_id}
    report = _finish_report(
        table=table, source=source, raw=raw, parsed=parsed, cols=[c.name for c in TABLES[table]],
        flags=flags, fixes=fixes, keep=keep,
    )
    report.defaults = defaults

    if not keep.any():
        top = sorted(report.reasons.items(), key=lambda kv: -kv[1]["rows"])[:3]
        raise DataError(
            f"{source}: no order_lines left after validation ({len(raw):,} rows in); main reasons: "
            + ", ".join(f"{k} ({v['rows']:,} rows)" for k, v in top)
        )
    # Kept rows in date order (stable); each column is taken once, text becomes str only here.
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(order_date.to_numpy()[kept], kind="stable")]
    columns: dict[str, Any] = {
        "order_id": order_id,
        "order_date": order_date,
        "account_id": account_id,
        "sku": sku,
        "quantity": quantity,
        "unit_price": unit_price,
        "line_amount": line_amount,
        "location": location,
        "channel": channel,
        "category": category,
        "promo": promo,
    }
    if currency is not None:
        columns["currency"] = currency
    for c in passthrough:
        columns[c] = _pa_str(raw[c])
    out = pd.DataFrame(index=pd.RangeIndex(len(order)))
    for c in list(columns):
        col = columns.pop(c)
        v = _take(col, order)
        if c in ("quantity", "unit_price", "line_amount", "promo"):
            v = v.astype("float64")
        elif c == "order_date":
            v = v.astype("datetime64[ns]")
        else:
            v = v.astype(object)
        out[c] = v  # one block per column: no consolidation copy of the text columns
    report.stats = {
        "orders": int(out["order_id"].nunique()),
        "accounts": int(out["account_id"].nunique()),
        "skus": int(out["sku"].nunique()),
        "locations": int(out["location"].nunique()),
        "first_order_date": _display(out["order_date"].iloc[0]),
        "last_order_date": _display(out["order_date"].iloc[-1]),
        "revenue": round(float(out["line_amount"].sum()), 2),
    }
    if "currency" in out.columns and out["currency"].nunique() > 1:
        report.warnings.append(
            f"more than one currency in order_lines: {sorted(out['currency'].unique())[:10]}; amounts are not converted"
        )
    share = report.rows_dropped / max(report.rows_in, 1)
    if share > 0.5:
        report.warnings.append(f"{share:.0%} of the order lines were dropped; check the column mapping")
    return out, report


def _promo(raw: pd.DataFrame, defaults: dict[str, str], fixes: dict[str, tuple[np.ndarray, str]], **kw: Any) -> pd.Series:
    if "promo" not in raw.columns:
        defaults["promo"] = "0"
        return pd.Series(0.0, index=raw.index)
    s = raw["promo"]
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce").astype("float64")
    else:
        st = _lower(s)
        words = {"true": 1.0, "yes": 1.0, "y": 1.0, "t": 1.0, "false": 0.0, "no": 0.0, "n": 0.0, "f": 0.0}
        num = pd.to_numeric(st, errors="coerce").astype("float64")
        num = num.where(num.notna(), st.map(words).astype("float64"))
    bad = num.isna().to_numpy()
    if bad.any():
        fixes["promo_filled"] = (bad, "empty or unreadable promo set to 0")
    num = num.fillna(0.0)
    clipped = (num > 1).to_numpy() | (num < 0).to_numpy()
    if clipped.any():
        fixes["promo_clipped"] = (clipped, "promo outside 0..1 set to 1 if > 0 else 0")
        num = num.where(~clipped, (num > 0).astype(float))
    return num


# ----------------------------------------------------------------------------- other tables


def _common_start(raw: pd.DataFrame, table: str, source: str, mapping: Mapping[str, str] | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    mapping = dict(mapping or {})
    req = [c.name for c in TABLES[table] if c.required]
    _missing_required(raw, req, table=table, source=source, mapping=mapping)
    _check_not_empty(raw, table=table, source=source)
    return raw.reset_index(drop=True), dict(table=table, source=source, mapping=mapping)


def _done(
    table: str, source: str, raw: pd.DataFrame, out: pd.DataFrame, parsed: dict[str, pd.Series],
    flags: dict[str, np.ndarray], fixes: dict[str, tuple[np.ndarray, str]], defaults: dict[str, str],
) -> tuple[pd.DataFrame, TableReport]:
    keep = ~np.logical_or.reduce(list(flags.values())) if flags else np.ones(len(raw), dtype=bool)
    report = _finish_report(
        table=table, source=source, raw=raw, parsed=parsed, cols=list(raw.columns), flags=flags, fixes=fixes, keep=keep
    )
    report.defaults = defaults
    out = out[keep].reset_index(drop=True)
    if len(out) == 0:
        raise DataError(f"{source}: no {table} rows left after validation ({len(raw):,} rows in): {sorted(report.reasons)}")
    return out, report


def validate_accounts(
    raw: pd.DataFrame, *, source: str = "accounts", mapping: Mapping[str, str] | None = None,
    date_format: str | None = None, dayfirst: bool = False, as_of: Any = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean accounts: account_id str (unique), region / channel_type str ('unknown' when
    absent or empty), onboarding_date datetime64[ns] (NaT when absent), extra attribute
    columns as str."""
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
            out[c] = _attribute(raw[c])
    flags = {
        "missing_account": account_id.isna().to_numpy(),
        "duplicate_account": (account_id.notna() & account_id.duplicated(keep="first")).to_numpy(),
    }
    out, rep = _done("accounts", kw["source"], raw, out, parsed, flags, fixes, defaults)
    rep.stats = {"accounts": len(out), "regions": int(out["region"].nunique()), "channel_types": int(out["channel_type"].nunique())}
    return out, rep


def _attribute(s: pd.Series) -> pd.Series:
    """An extra account attribute: float64 when every non-empty value is a number, else str."""
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
    return _pa_to_series(arr, s.index)


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
        multi = int((counts.groupby("account_id").size() > 1).sum())
        if multi:
            warnings.append(
                f"{multi:,} accounts have more than one {labels.get(col, col)}; the most frequent is kept as {name}"
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
    date_format: str | None = None, dayfirst: bool = False, as_of: Any = None,
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
    if known_accounts is not None:
        known = pd.Index(pd.Series(list(known_accounts), dtype=object).astype(str).unique())
        flags["unknown_account"] = account_id.notna().to_numpy() & ~account_id.isin(known).to_numpy()
    flags["duplicate"] = _dup_mask(raw, list(raw.columns))
    out = pd.DataFrame({"event_date": d, "account_id": account_id.astype(object), "kind": kind})
    if "resolution_days" in raw.columns:
        r = _to_float(raw["resolution_days"], col="resolution_days", **kw)
        neg = (r < 0).to_numpy()
        if neg.any():
            fixes["resolution_days_negative"] = (neg, "negative resolution_days set to empty (NaN)")
            r = r.where(~neg)
        out["resolution_days"] = r
    else:
        out["resolution_days"] = np.nan
    odd = ~kind.isin(["complaint", "return", "ticket"]).to_numpy() & kind.notna().to_numpy()
    out, rep = _done("service_events", kw["source"], raw, out, {"event_date": d}, flags, fixes, {})
    rep.stats = {f"kind={k}": int(v) for k, v in out["kind"].value_counts().sort_index().items()}
    if odd.any():
        rep.warnings.append(f"{int(odd.sum()):,} events have a kind other than complaint/return/ticket (kept): "
                            f"{sorted(set(kind[odd].astype(str)))[:5]}")
    out = out.sort_values("event_date", kind="mergesort").reset_index(drop=True)
    return out, rep


def validate_inventory(
    raw: pd.DataFrame, *, source: str = "inventory", mapping: Mapping[str, str] | None = None,
    date_format: str | None = None, dayfirst: bool = False, as_of: Any = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean inventory snapshots: location str, sku str, on_hand float64 (units; negative kept
    and warned), snapshot_date datetime64[ns] (NaT when absent)."""
    raw, kw = _common_start(raw, "inventory", source, mapping)
    location, _ = _normalise_id(raw["location"])
    sku, _ = _normalise_id(raw["sku"])
    on_hand = _to_float(raw["on_hand"], col="on_hand", **kw)
    flags = {
        "missing_location": location.isna().to_numpy(),
        "missing_sku": sku.isna().to_numpy(),
        "missing_on_hand": on_hand.isna().to_numpy(),
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
    out = pd.DataFrame({"location": location.astype(object), "sku": sku.astype(object), "on_hand": on_hand, "snapshot_date": d})
    out, rep = _done("inventory", kw["source"], raw, out, parsed, flags, {}, {})
    rep.stats = {"locations": int(out["location"].nunique()), "skus": int(out["sku"].nunique()), "units_on_hand": round(float(out["on_hand"].sum()), 2)}
    neg = int((out["on_hand"] < 0).sum())
    if neg:
        rep.warnings.append(f"{neg:,} inventory rows have negative on_hand (kept: backorders?)")
    return out, rep


def validate_lead_times(
    raw: pd.DataFrame, *, source: str = "lead_times", mapping: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean lead times: sku str, location str ('ALL' when absent/empty), lead_time_days
    float64 > 0 (days), lead_time_std_days float64 >= 0 (NaN when unknown)."""
    raw, kw = _common_start(raw, "lead_times", source, mapping)
    fixes: dict[str, tuple[np.ndarray, str]] = {}
    defaults: dict[str, str] = {}
    sku, _ = _normalise_id(raw["sku"])
    location = _str_col(raw, "location", "ALL", defaults, fixes)
    lt = _to_float(raw["lead_time_days"], col="lead_time_days", **kw)
    if "lead_time_std_days" in raw.columns:
        sd = _to_float(raw["lead_time_std_days"], col="lead_time_std_days", **kw)
        neg = (sd < 0).to_numpy()
        if neg.any():
            fixes["lead_time_std_negative"] = (neg, "negative lead_time_std_days set to empty (NaN)")
            sd = sd.where(~neg)
    else:
        sd = pd.Series(np.nan, index=raw.index)
    flags = {
        "missing_sku": sku.isna().to_numpy(),
        "invalid_lead_time": ~(lt > 0).to_numpy(),
        "duplicate": _dup_mask(raw, list(raw.columns)),
    }
    key = pd.DataFrame({"sku": sku, "location": location})
    flags["duplicate_key"] = key.duplicated(keep="first").to_numpy() & ~flags["duplicate"] & sku.notna().to_numpy()
    out = pd.DataFrame({"sku": sku.astype(object), "location": location, "lead_time_days": lt, "lead_time_std_days": sd.astype("float64")})
    out, rep = _done("lead_times", kw["source"], raw, out, {"lead_time_days": lt}, flags, fixes, defaults)
    rep.stats = {"skus": int(out["sku"].nunique()), "mean_lead_time_days": round(float(out["lead_time_days"].mean()), 2)}
    return out, rep
