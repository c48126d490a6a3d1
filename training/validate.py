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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.demand import MAX_UNITS
from training._validate_cancellations import NettingResult, net_cancellations, unmatched_text
from training._validate_columns import (
    _check_not_all_missing,
    _check_not_empty,
    _dup_mask,
    _id_arrow,
    _is_null,
    _missing_required,
    _pa_str,
    _startswith,
    _str_col,
    _take,
    unknown_id_hint,
)
from training._validate_dates import _isolated_early, _parse_dates, resolve_as_of
from training._validate_numbers import (
    MAX_MONEY,
    _infinite,
    _infinite_cells,
    _infinite_fix_text,
    _refuse_beyond,
    _to_flag,
    _to_float,
    _unreadable_cells,
    _unreadable_fix_text,
)
from training._validate_report import MAX_EXAMPLES, TableReport, _display, _finish_report
from training._validate_report import REASONS as REASONS
from training._validate_tables import (
    _reasons_text,
    derive_accounts,
    validate_accounts,
    validate_inventory,
    validate_lead_times,
    validate_promotions,
    validate_service_events,
)
from training.contract import TABLES
from training.errors import DataError

__all__ = [
    "TableReport",
    "validate_order_lines",
    "validate_accounts",
    "validate_service_events",
    "validate_inventory",
    "validate_lead_times",
    "validate_promotions",
    "derive_accounts",
    "resolve_as_of",
    "MAX_EXAMPLES",
]

# ----------------------------------------------------------------------------- order lines


def _isolated_text(order_date: pd.Series, isolated: np.ndarray, first_kept: pd.Timestamp | None) -> str:
    """What ``isolated_date`` dropped, in words: the dates, the rows and the date the book starts at."""
    from training._validate_dates import ISOLATED_YEARS

    rows = np.flatnonzero(isolated)
    def day(d: pd.Timestamp) -> str:
        return str(d.date()) if d == d.normalize() else str(d)

    dates = list(dict.fromkeys(day(d) for d in order_date.iloc[rows[:200]]))
    return (f"{len(rows):,} order line(s) dated {', '.join(dates[:3])}{' ...' if len(dates) > 3 else ''} (rows "
            f"{(rows[:5] + 1).tolist()}{' ...' if len(rows) > 5 else ''}; 1 = the first data row) lie more than "
            f"{ISOLATED_YEARS} years before the next order date {day(first_kept)} and were dropped (isolated_date): a typo or "
            "a placeholder date? Kept, they would stretch the history (and every weekly panel) back to them; fix "
            "them in the source to keep them")


def _flag_non_lines(raw: pd.DataFrame, flags: dict[str, np.ndarray], mapping: Mapping[str, str]) -> None:
    """Rows that are no order line get one reason each instead of a missing order id, an unparseable
    date, a missing quantity and a missing price at once: ``repeated_header`` (the header line again:
    exports saved in parts and concatenated, 'Invoice No' under order_id ...) and ``empty_row`` (every
    column empty: ',,,,,' lines a spreadsheet writes below the data)."""
    cols = [c for c in raw.columns if c in {col.name for col in TABLES["order_lines"]}]
    pos = np.arange(len(raw))
    for c in ["order_id", *[c for c in cols if c != "order_id"]]:  # the rare candidates narrowed column by column
        vals = raw[c].iloc[pos].astype("string").str.split().str.join(" ")
        pos = pos[(vals == " ".join(mapping.get(c, c).split())).fillna(False).to_numpy(dtype=bool)]
        if not len(pos):
            break
    hdr = np.zeros(len(raw), dtype=bool)
    hdr[pos] = True
    pos = np.arange(len(raw))
    for c in ["order_id", *[c for c in raw.columns if c != "order_id"]]:
        vals = raw[c].iloc[pos]
        pos = pos[(vals.isna() | (vals.astype("string").str.strip() == "")).fillna(True).to_numpy(dtype=bool)]
    blank = np.zeros(len(raw), dtype=bool)
    blank[pos] = True
    for reason, mask in (("repeated_header", hdr), ("empty_row", blank)):
        if mask.any():
            for name in flags:
                flags[name] = flags[name] & ~mask
            flags[reason] = mask


def validate_order_lines(
    raw: pd.DataFrame,
    *,
    source: str = "order_lines",
    mapping: Mapping[str, str] | None = None,
    cancellation_prefix: str | None = None,
    date_format: str | None = None,
    dayfirst: bool | None = None,
    as_of: Any = None,
    known_accounts: Sequence[str] | pd.Index | None = None,
    passthrough: Sequence[str] = (),
    cancellation_window_days: float = 30,
    keep_unattributed: bool = False,
) -> tuple[pd.DataFrame, TableReport]:
    """Clean raw order lines (canonical names, any dtypes) -> (order_lines, report).

    ``known_accounts``: when given, lines of other accounts are dropped (``unknown_account``).
    ``passthrough``: extra raw columns carried to the output as str (used to derive accounts).
    ``cancellation_window_days``: a cancellation line (``cancellation_prefix``) nets its units
    from the latest earlier lines of the same account and SKU placed at most this many days
    before it (``training._validate_cancellations``); 0: it only drops itself.
    ``keep_unattributed``: also return the lines whose only fault is a missing account (their
    ``account_id`` is None) after the others; they stay counted as dropped (``missing_account``)
    in the report, whose ``stats`` describe the lines with an account. Demand needs no account.
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
    qty_infinite = _infinite_cells(raw["quantity"], quantity)
    _refuse_beyond(quantity, raw["quantity"], MAX_UNITS, col="quantity", expected="a number of units per order line", **kw)

    fixes: dict[str, tuple[np.ndarray, str]] = {}
    # an infinite or unreadable (text) price or amount beside a usable other one: re-derived, and named
    # (text made once keep is known)
    named_fixes: dict[str, tuple[np.ndarray, str, str, Callable[..., str]]] = {}
    defaults: dict[str, str] = {}
    if "unit_price" in raw.columns:
        unit_price = _to_float(raw["unit_price"], col="unit_price", **kw)
        _refuse_beyond(unit_price, raw["unit_price"], MAX_MONEY, col="unit_price", expected="a price per unit",
                       slip="an id or a quantity", **kw)
        price_missing = unit_price.isna().to_numpy()
        if "line_amount" in raw.columns:
            given = _to_float(raw["line_amount"], col="line_amount", **kw)
            _refuse_beyond(given, raw["line_amount"], MAX_MONEY, col="line_amount", expected="an amount per line",
                           slip="an id or a quantity", **kw)
            up_inf = _infinite_cells(raw["unit_price"], unit_price)
            la_inf = _infinite_cells(raw["line_amount"], given)
            up_bad = _unreadable_cells(raw["unit_price"], unit_price, up_inf)
            la_bad = _unreadable_cells(raw["line_amount"], given, la_inf)
            from_amount = given / quantity.where(quantity != 0)
            fill = unit_price.isna().to_numpy() & from_amount.notna().to_numpy()
            if fill.any():
                if (fill & ~up_inf & ~up_bad).any():
                    fixes["unit_price_derived"] = (fill & ~up_inf & ~up_bad, "empty unit_price set to line_amount / quantity")
                how = "set to line_amount / quantity"
                named_fixes["unit_price_infinite"] = (fill & up_inf, "unit_price", how, _infinite_fix_text)
                named_fixes["unit_price_unreadable"] = (fill & up_bad, "unit_price", how, _unreadable_fix_text)
                unit_price = unit_price.where(~fill, from_amount)
                price_missing = unit_price.isna().to_numpy()
            derived = quantity * unit_price
            miss = given.isna().to_numpy() & derived.notna().to_numpy()
            if (miss & ~la_inf & ~la_bad).any():
                fixes["line_amount_derived"] = (miss & ~la_inf & ~la_bad, "empty line_amount set to quantity x unit_price")
            # an infinite or text line_amount is no amount: the line's quantity and price are, so it is derived from
            # them (as an empty one is) and counted apart, rather than dropping a sale the forecasts need ('abc'
            # was counted as an empty line_amount)
            how = "set to quantity x unit_price"
            named_fixes["line_amount_infinite"] = (miss & la_inf, "line_amount", how, _infinite_fix_text)
            named_fixes["line_amount_unreadable"] = (miss & la_bad, "line_amount", how, _unreadable_fix_text)
            line_amount = given.where(given.notna(), derived)
        else:
            line_amount = quantity * unit_price
            defaults["line_amount"] = "quantity x unit_price"
    else:
        line_amount = _to_float(raw["line_amount"], col="line_amount", **kw)
        _refuse_beyond(line_amount, raw["line_amount"], MAX_MONEY, col="line_amount", expected="an amount per line",
                       slip="an id or a quantity", **kw)
        price_missing = line_amount.isna().to_numpy()
        unit_price = line_amount / quantity.where(quantity != 0)
        defaults["unit_price"] = "line_amount / quantity"
    price_col = "unit_price" if "unit_price" in raw.columns else "line_amount"
    _check_not_all_missing(unit_price, col=price_col, **kw)
    # inf / -inf (a division by zero in the export) is read as no number: said as what it is; with both
    # columns, a row left without a price is infinite when either source of it was (an empty unit_price
    # beside an infinite line_amount too)
    price_infinite = _infinite(raw[price_col], price_missing & raw[price_col].notna().to_numpy())
    if "unit_price" in raw.columns and "line_amount" in raw.columns:
        price_infinite |= price_missing & (up_inf | la_inf)

    limit = resolve_as_of(as_of)
    q = quantity.to_numpy()
    p = unit_price.to_numpy()
    flags: dict[str, np.ndarray] = {
        "missing_order_id": _is_null(order_id),
        "unparseable_date": order_date.isna().to_numpy(),
        "future_date": (order_date >= limit).fillna(False).to_numpy(dtype=bool),
    }
    isolated, first_kept = _isolated_early(order_date, ~flags["unparseable_date"] & ~flags["future_date"])
    flags["isolated_date"] = isolated
    if cancellation_prefix:
        flags["cancellation"] = _startswith(order_id, cancellation_prefix)
    flags["negative_quantity"] = np.nan_to_num(q, nan=0.0) < 0
    flags["zero_quantity"] = q == 0
    flags["missing_quantity"] = np.isnan(q) & ~qty_infinite
    flags["infinite_quantity"] = qty_infinite
    flags["missing_price"] = price_missing & ~price_infinite
    flags["infinite_price"] = price_infinite
    flags["non_positive_price"] = np.nan_to_num(p, nan=1.0) <= 0
    flags["missing_account"] = _is_null(account_id)
    if known_accounts is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        known = pa.array(pd.Series(list(known_accounts), dtype=object).astype(str).unique(), pa.string())
        isin = pc.fill_null(pc.is_in(account_id, value_set=known), False).to_numpy(zero_copy_only=False)
        flags["unknown_account"] = ~flags["missing_account"] & ~isin
        id_hint = unknown_id_hint(account_id, flags["unknown_account"], known.to_pylist(), table="order_lines")
    else:
        id_hint = None
    flags["missing_sku"] = _is_null(sku)
    dup_cols = [c for c in raw.columns if c in {col.name for col in TABLES[table]}]
    flags["duplicate"] = _dup_mask(raw, dup_cols)
    _flag_non_lines(raw, flags, mapping)

    if acct_fixed.any():
        fixes["account_id_float"] = (acct_fixed, "account_id like '17850.0' written as '17850'")
    location = _str_col(raw, "location", "ALL", defaults, fixes)
    channel = _str_col(raw, "channel", "unknown", defaults, fixes)
    category = _str_col(raw, "category", "ALL", defaults, fixes)
    promo = _promo(raw, defaults, fixes, **kw)
    currency = _str_col(raw, "currency", "unknown", defaults, fixes) if "currency" in raw.columns else None

    keep = ~np.logical_or.reduce(list(flags.values()))
    netting = None
    quantity_placed = quantity  # as written: the report's examples show it
    line_amount_placed = line_amount
    if cancellation_prefix and cancellation_window_days > 0 and flags["cancellation"].any():
        netting = _net(flags, keep, account_id, sku, order_date, quantity, qty_infinite, cancellation_window_days)
        if netting.cancelled.any() or netting.reduced.any():
            ratio = netting.quantity / np.where(q == 0, 1.0, q)
            quantity = pd.Series(netting.quantity, index=quantity.index)
            line_amount = line_amount * np.where(netting.reduced, ratio, 1.0)
            flags["cancelled"] = netting.cancelled
            keep &= ~netting.cancelled
            fixes["quantity_net_of_cancellation"] = (netting.reduced, "quantity reduced by a later cancellation line of "
                                                     "the same account and SKU (line_amount in proportion)")
    for name, (mask, col, how, text) in named_fixes.items():
        if (mask & keep).any():
            fixes[name] = (mask, text(raw[col], mask & keep, col, how))
    parsed = {"order_date": order_date, "quantity": quantity_placed, "unit_price": unit_price, "account_id": account_id}
    report = _finish_report(
        table=table, source=source, raw=raw, parsed=parsed, cols=[c.name for c in TABLES[table]],
        flags=flags, fixes=fixes, keep=keep,
    )
    report.defaults = defaults
    if "cancelled" in report.reasons:
        report.reasons["cancelled"]["description"] = REASONS["cancelled"].replace(
            "cancellation_window_days", f"{cancellation_window_days:g} days, cancellation_window_days")
    if id_hint:
        report.warnings.append(id_hint)
    if isolated.any():
        report.warnings.append(_isolated_text(order_date, isolated, first_kept))
    if netting is not None:
        first = np.flatnonzero(netting.unmatched)[:50]
        lost = unmatched_text(netting, cancellation_window_days, example_ids=[str(x) for x in _take(order_id, first)])
        if lost:
            report.warnings.append(lost)
    if known_accounts is not None and flags["unknown_account"].any():
        import pyarrow as pa

        report.dropped_ids["unknown_account"] = sorted(
            str(x) for x in account_id.filter(pa.array(flags["unknown_account"])).unique().to_pylist())

    if not keep.any():
        raise DataError(
            f"{source}: no order_lines left after validation ({len(raw):,} rows in); "
            + _reasons_text(report) + (f"; {id_hint}" if id_hint else "")
        )
    # Kept rows in date order (stable); each column is taken once, text becomes str only here.
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(order_date.to_numpy()[kept], kind="stable")]
    n_attributed = len(order)
    if keep_unattributed:
        others = np.logical_or.reduce([f for k, f in flags.items() if k != "missing_account"])
        ua = np.flatnonzero(flags["missing_account"] & ~others)
        order = np.concatenate([order, ua[np.argsort(order_date.to_numpy()[ua], kind="stable")]])
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
    if netting is not None and netting.events is not None and len(netting.events):
        # the lines cancellations took units from, as placed, and where they are in the output: the book
        # as it stood before a date puts back what later cancellations took (OrderBook.lines_as_of)
        touched = np.flatnonzero(netting.cancelled | netting.reduced)
        placed = dict(columns, quantity=quantity_placed, line_amount=line_amount_placed)
        lines = _frame(placed, touched)
        pos = np.full(len(raw), -1, dtype="int64")
        pos[order[:n_attributed]] = np.arange(n_attributed)
        lines["pos"] = pos[touched]
        lines["row"] = touched
        report.netting = {"lines": lines, "events": netting.events}
    out = _frame(columns, order, consume=True)
    att = out.iloc[:n_attributed]
    report.stats = {
        "orders": int(att["order_id"].nunique()),
        "accounts": int(att["account_id"].nunique()),
        "skus": int(att["sku"].nunique()),
        "locations": int(att["location"].nunique()),
        "first_order_date": _display(att["order_date"].iloc[0]),
        "last_order_date": _display(att["order_date"].iloc[-1]),
        "revenue": round(float(att["line_amount"].sum()), 2),
    }
    if len(out) > n_attributed:
        report.stats["lines_without_account_for_demand"] = len(out) - n_attributed
    if "currency" in att.columns and att["currency"].nunique() > 1:
        named = sorted(c for c in att["currency"].unique() if c != "unknown")
        if len(named) > 1:
            report.warnings.append(
                f"more than one currency in order_lines: {named[:10]}; amounts are not converted"
            )
        else:  # one currency and some empty cells: not a mix of currencies
            n = int((att["currency"] == "unknown").sum())
            report.warnings.append(
                f"{n:,} order line(s) have no currency (read as 'unknown'); the others are {named[0]}"
            )
    share = report.rows_dropped / max(report.rows_in, 1)
    if share > 0.5:
        report.warnings.append(f"{share:.0%} of the order lines were dropped; check the column mapping")
    return out, report


def _frame(columns: dict[str, Any], rows: np.ndarray, *, consume: bool = False) -> pd.DataFrame:
    """The output table of raw ``rows`` (in that order) from the parsed ``columns`` (``consume``: pop
    each column as it is taken, so its memory can go)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(rows)))
    for c in list(columns):
        col = columns.pop(c) if consume else columns[c]
        v = _take(col, rows)
        if c in ("quantity", "unit_price", "line_amount", "promo"):
            v = v.astype("float64")
        elif c == "order_date":
            v = v.astype("datetime64[ns]")
        else:
            v = v.astype(object)
        out[c] = v  # one block per column: no consolidation copy of the text columns
    return out


def _net(flags: dict[str, np.ndarray], keep: np.ndarray, account_id: Any, sku: Any, order_date: pd.Series,
         quantity: pd.Series, qty_infinite: np.ndarray, window_days: float) -> NettingResult:
    """Cancellation lines that can name what they cancel (an account, a SKU, a usable date and
    quantity, not an exact duplicate) netted from the kept lines of their account and SKU."""
    usable = ~(flags["missing_order_id"] | flags["unparseable_date"] | flags["future_date"] | flags["isolated_date"]
               | flags["missing_account"] | flags["missing_sku"] | flags["duplicate"] | flags["zero_quantity"]
               | np.isnan(quantity.to_numpy()) | qty_infinite | flags.get("unknown_account", False))
    cancel = flags["cancellation"] & usable
    return net_cancellations(cancel=cancel, keep=keep, account=_codes(account_id), sku=_codes(sku),
                             dates=order_date.to_numpy(), quantity=quantity.to_numpy(), window_days=window_days)


def _codes(ids: Any) -> np.ndarray:
    """Integer codes of an id column (equal ids, equal codes; empty: -1), without making Python strings."""
    if isinstance(ids, pd.Series):
        return pd.factorize(ids)[0]
    import pyarrow.compute as pc

    arr = ids.combine_chunks() if hasattr(ids, "combine_chunks") else ids
    return pc.fill_null(pc.dictionary_encode(arr).indices, -1).to_numpy(zero_copy_only=False)


def _promo(raw: pd.DataFrame, defaults: dict[str, str], fixes: dict[str, tuple[np.ndarray, str]], **kw: Any) -> pd.Series:
    if "promo" not in raw.columns:
        defaults["promo"] = "0"
        return pd.Series(0.0, index=raw.index)
    # fatal when most values are neither numbers nor true/false words (a text column mapped by mistake)
    num = _to_flag(raw["promo"], col="promo", **kw)
    bad = num.isna().to_numpy()
    if bad.any():
        fixes["promo_filled"] = (bad, "empty or unreadable promo set to 0")
    num = num.fillna(0.0)
    clipped = (num > 1).to_numpy() | (num < 0).to_numpy()
    if clipped.any():
        fixes["promo_clipped"] = (clipped, "promo outside 0..1 set to 1 if > 0 else 0")
        num = num.where(~clipped, (num > 0).astype(float))
    return num
