"""The validation report of one table (:class:`TableReport`) and how it is built.

Private helper module of :mod:`training.validate` (import the public names from there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5

REASONS: dict[str, str] = {
    "missing_order_id": "order_id is empty",
    "unparseable_date": "date is empty or cannot be parsed",
    "future_date": "date is after the as-of time",
    "isolated_date": "order date more than 5 years before the rest of the book (the next date), on at most 1% "
                     "of the rows: a typo, or a placeholder such as 1900-01-01",
    "cancellation": "order_id starts with the cancellation prefix (a cancelled invoice; its units are taken off the "
                    "lines it cancels, see cancelled)",
    "cancelled": "cancelled in full by a later cancellation line of the same account and SKU (within "
                 "cancellation_window_days)",
    "negative_quantity": "quantity < 0 (return, cancellation or stock adjustment)",
    "zero_quantity": "quantity = 0",
    "missing_quantity": "quantity is empty or not a number",
    "infinite_quantity": "quantity is infinite (inf or -inf); expected a finite number of units > 0",
    "missing_price": "unit price (or line amount) is empty or not a number",
    "infinite_price": "unit_price (or line_amount, when that is the price source) is infinite (inf or -inf); "
                      "expected a finite number > 0",
    "non_positive_price": "unit price <= 0 (free items, bad-debt or fee adjustments)",
    "missing_account": "account_id is empty (order_lines: no account's order; with no other fault still demand of "
                       "its SKU)",
    "unknown_account": "account_id is not in the accounts table",
    "missing_sku": "sku is empty",
    "duplicate": "exact duplicate of an earlier row (all mapped columns equal)",
    "repeated_header": "the row repeats the header line (exports saved in parts and concatenated)",
    "empty_row": "every column of the row is empty (blank lines a spreadsheet writes below the data)",
    "duplicate_account": "account_id already appeared in an earlier row (first kept)",
    "missing_kind": "kind is empty",
    "missing_location": "location is empty",
    "missing_on_hand": "on_hand is empty or not a number",
    "infinite_on_hand": "on_hand is infinite (inf or -inf); expected a finite number of units (negative = backorders)",
    "invalid_lead_time": "lead_time_days is empty, not a number or negative (< 0)",
    "infinite_lead_time": "lead_time_days or lead_time_std_days is infinite (inf or -inf); expected a finite number "
                          "of days >= 0 (the series is sized as one without a row)",
    "duplicate_key": "(sku, location) already appeared in an earlier row (first kept)",
    "unparseable_start_date": "start_date is empty or not a date",
    "unparseable_end_date": "end_date is empty or not a date",
    "end_before_start": "end_date is before start_date (a campaign's last day, inclusive, is on or after its first)",
    "duplicate_snapshot": "(sku, location, snapshot_date) already appeared in an earlier row with another on_hand "
                          "(first kept; sum bins or lots into one row per SKU and location)",
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
    dropped_ids: dict[str, list[str]] = field(default_factory=dict, repr=False)
    """reason -> the distinct ids it dropped (order lines: ``unknown_account``), for messages
    such as the service's reason for an id without a score; not part of ``to_dict``."""
    netting: dict[str, Any] | None = field(default=None, repr=False)
    """order_lines with cancellations netted: ``{"lines": the lines cancellations took units from, as
    placed (``pos``: their row in the output, -1 when cancelled in full), "events": line ``row``,
    ``cancelled_on``, ``units``}``, for reading the book as it stood before a date; not part of ``to_dict``."""

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
        demand_only = self.stats.get("lines_without_account_for_demand")
        lines = [
            f"{self.table}  ({self.source})",
            f"  rows in {self.rows_in:>12,}   kept {self.rows_out:>12,}   dropped {self.rows_dropped:>10,} ({pct:.1f}%)"
            + (f"; {demand_only:,} of the dropped lines have no account and stay demand of their SKU" if demand_only else ""),
        ]
        w = max([22, *(len(n) + 1 for n in (*self.reasons, *self.fixes))])  # long names keep the columns
        if self.reasons:
            lines.append(f"  {'drop reason':<{w}}{'rows flagged':>14}{'only reason':>13}  meaning")
            for name, r in self.reasons.items():
                lines.append(f"  {name:<{w}}{r['rows']:>14,}{r['only_reason']:>13,}  {r['description']}")
                if r.get("examples"):
                    ex = r["examples"][0]
                    vals = ", ".join(f"{k}={v}" for k, v in ex.items() if k != "row")
                    line = f"      e.g. row {ex['row']:,}: {vals}"
                    lines.append(line if len(line) <= 140 else line[:137] + "...")
        if self.fixes:
            lines.append(f"  {'fixed (kept)':<{w}}{'rows':>14}  what")
            for name, f in self.fixes.items():
                lines.append(f"  {name:<{w}}{f['rows']:>14,}  {f['description']}")
        if self.defaults:
            lines.append("  defaults: " + ", ".join(f"{k}={v!r}" for k, v in self.defaults.items()))
        if self.stats:
            lines.append("  " + ("lines with an account: " if demand_only else "")
                         + ", ".join(f"{k}: {_fmt_stat(v)}" for k, v in self.stats.items()))
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

def _display(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    if isinstance(v, np.floating | float):
        f = float(v)
        if not np.isfinite(f):  # Parquet inf: as text, so the report stays JSON
            return str(f)
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
