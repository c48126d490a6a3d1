"""Warnings :func:`training.data.load_order_book` adds to its quality report about ids and columns:
``_unread_lookalikes`` (an optional order-line column left at its default while the file has it in
another case), ``_as_written`` (each id as validation reads it -> the values the file writes) and
``_not_in_book`` (stock / lead-time rows whose SKU or location no kept order line has).

Split from :mod:`training.data` to keep it under ~500 lines; these helpers only build message
lines and are used by ``load_order_book`` alone. Private helper module of :mod:`training.data`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _unread_lookalikes(defaults: dict[str, str], present: list[str], mapping: dict[str, str]) -> list[str]:
    """A warning for each optional order-line column that took its default while the file has a
    column of that name in another case or with other separators ('Location', 'PROMO', 'Line-Amount'):
    names are case-sensitive, so 'Location' was never read and every line of a two-warehouse book
    became location 'ALL', one merged demand series per SKU, said only as a default."""
    from training._sources_columns import column_key

    used = set(mapping.values())
    out = []
    for col, default in defaults.items():
        like = [p for p in present if p not in used and column_key(p) == column_key(col)]
        if like:
            out.append(f"column {like[0]!r} is not read as {col!r} (column names are case-sensitive), so {col} is "
                       f"{default!r} on every line; map it under data.order_lines.columns ({col}: {like[0]}) or rename it")
    return out


# how validation reads each id column (training.validate): sku everywhere as an id ('123.0' -> '123'); location
# in every table as text (trimmed)
_READ_AS_ID = {("order_lines", "sku"), ("inventory", "sku"), ("lead_times", "sku")}


def _as_written(s: pd.Series, table: str, col: str) -> dict[str, set[str]]:
    """Each id of column ``col`` of ``table`` as validation reads it -> the values (trimmed) the file
    writes for it: '7.0' and '7' are both read as SKU '7', and a warning names what the user wrote."""
    from training._validate_columns import _normalise_id, _to_str

    u = s.dropna().drop_duplicates()
    read = _normalise_id(u)[0] if (table, col) in _READ_AS_ID else _to_str(u)
    out: dict[str, set[str]] = {}
    for w, r in zip(u.tolist(), read.tolist(), strict=True):
        if isinstance(r, str):
            out.setdefault(r, set()).add(str(w).strip())
    return out


def _not_in_book(table: pd.DataFrame, order_lines: pd.DataFrame, name: str, per_location: bool = True,
                 raw_values: dict[str, dict[str, set[str]]] | None = None,
                 written: dict[str, dict[str, set[str]]] | None = None) -> list[str]:
    """Warnings for stock / lead-time rows that no demand series can use: a SKU, or a location
    (other than 'ALL' = every location), that no order line has (kept; usually a mapping or
    code mismatch such as '007' vs '7'). With series per SKU over every location
    (``per_location`` False: ``demand.levels`` without ``location``) a row of any location counts
    towards its SKU's series, so such a location gets a note saying so, not "no series uses them".
    ``raw_values`` (column -> each id of the file's order lines, kept or not, as validation reads it ->
    the values the file writes for it, :func:`_as_written`): a value the file has but no kept line does
    (every line of it cancelled or dropped) is said so, apart. ``written`` (the same for ``table``'s
    file): the values are named as the files write them ('7.0'), not as read ('7')."""
    raw_values = raw_values or {}
    written = written or {}

    def as_written(ids: Any, forms: dict[str, set[str]]) -> list[str]:
        return sorted({w for v in ids for w in forms.get(v, {v})})[:5]

    out = []
    for col, what in (("sku", "SKU"), ("location", "location")):
        if col not in table.columns or col not in order_lines.columns:
            continue
        vals = table[col].astype(str)
        mine = written.get(col, {})
        bad = ~vals.isin(set(order_lines[col].astype(str))) & (vals != "ALL" if col == "location" else True)
        if col == "location" and not per_location:
            bad &= table["sku"].astype(str).isin(set(order_lines["sku"].astype(str))).to_numpy()
            if bad.any():
                how = ("their on-hand is summed into their SKU's series" if name == "inventory" else
                       "a SKU given only per location takes its longest lead time and largest spread")
                out.append(f"{int(bad.sum()):,} {name} rows name a location that no order line has (location: "
                           f"{as_written(set(vals[bad]), mine)}); kept: demand.levels has no location (series per "
                           f"SKU over every location), so {how}")
            continue
        # a value the file's lines have, but none of them kept (all cancelled, or dropped by validation):
        # "no order line has" sent the user looking for a code mismatch in a SKU they could see in the lines
        lines_forms = raw_values.get(col, {})
        gone = bad & vals.isin(set(lines_forms)).to_numpy()
        if gone.any():
            ids = set(vals[gone])
            ex = as_written(ids, mine)
            # the order lines write it otherwise ('7.0' there, '7' here): both read as one id, said so
            other = sorted({w for v in ids for w in lines_forms.get(v, ())} - set(ex))[:5]
            also = f"; the order lines write it as {other}, read as the same {what}" if other else ""
            out.append(f"{int(gone.sum()):,} {name} rows name a {what} that no kept order line has ({col}: "
                       f"{ex}{also}): every order line of it was cancelled or dropped (see the "
                       "order_lines drop reasons); no demand series uses them")
        bad &= ~gone
        if bad.any():
            ex = as_written(set(vals[bad]), mine)
            near = [min(lines_forms.get(v, {v})) for v in sorted(set(order_lines[col].astype(str)))[:3]]
            out.append(f"{int(bad.sum()):,} {name} rows name a {what} that no order line has ({col}: {ex}; "
                       f"the order lines have e.g. {near}); no demand series uses them")
    return out
