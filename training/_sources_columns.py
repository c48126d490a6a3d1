"""Which columns of a source to read for a contract table, for :mod:`training.sources`.

``_wanted`` maps each canonical column (and the accounts' extra attributes, and the order-line
columns read only to derive accounts, prefixed ``DERIVED_PREFIX``) to the user's column,
forgiving spacing ('Unit  Price') and naming close matches ('did you mean ...?') or
abbreviations ('Qty' for 'Quantity') when one is missing; ``_one_column_each`` refuses one
column of yours read as two contract columns by accident.

Split from :mod:`training.sources` (which re-exports ``DERIVED_PREFIX``; import it from there) to
keep each module under ~500 lines. Used by every reader in :mod:`training.sources`; imports
nothing from it.
"""

from __future__ import annotations

import difflib
import re

from training.config import TableSource
from training.contract import TABLES
from training.errors import DataError


def column_key(name: object) -> str:
    """A column name without case or separators ('Location', 'on-order', 'On_Order' -> 'location',
    'onorder'): two names with the same key spell one column, so a header that differs from a
    known name only so is said (order lines' optional columns, ``--on-hand`` files)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


DERIVED_PREFIX = "__acct__"
"""Prefix of order-line columns read only to derive the accounts table (``derive_accounts_from``)."""


def _wanted(name: str, src: TableSource, present: list[str], hint: str = "") -> dict[str, str]:
    """canonical/extra name -> source column, for the columns to read; raise on missing required
    (``hint`` is added to that message) or on two contract columns read from one column."""
    present_set = set(present)
    by_spacing: dict[str, list[str]] = {}
    for p in present:
        by_spacing.setdefault(_spacing(p), []).append(p)

    def found(user: str) -> str | None:
        """``user`` as present, or the one present column that differs from it only by spaces around or
        between words ('Item ', ' Invoice Date', 'Unit  Price': invisible in a spreadsheet)."""
        if user in present_set:
            return user
        same = by_spacing.get(_spacing(user), [])
        return same[0] if len(same) == 1 else None

    wanted: dict[str, str] = {}
    missing: list[tuple[str, str]] = []
    for col in TABLES[name]:
        user = src.source_column(col.name)
        if (got := found(user)) is not None:
            wanted[col.name] = got
        elif col.required or col.name in src.columns:
            # A column the user mapped explicitly must exist, even if optional.
            missing.append((col.name, user))
    if name == "order_lines" and "unit_price" not in wanted and "line_amount" not in wanted:
        if not any(c == "unit_price" or c == "line_amount" for c, _ in missing):
            missing.append(("unit_price", src.source_column("unit_price")))
    if name == "accounts":
        known = {c.name for c in TABLES[name]}
        for extra, user in src.columns.items():
            if extra in known:
                continue
            if (got := found(user)) is not None:
                wanted[extra] = got
            else:
                missing.append((extra, user))
    if name == "order_lines" and src.derive_accounts_from:
        for attr, user in src.derive_accounts_from.items():
            if (got := found(user)) is not None:
                wanted[DERIVED_PREFIX + attr] = got
            else:
                missing.append((f"accounts.{attr} (derive_accounts_from)", user))
    if missing and len(present) == 1 and hint:
        # the whole header read as one column (another separator): said first and alone; each column's
        # "did you mean '<the whole header>'?" buried the fix at the end of a long message
        raise DataError(f"{src.describe()}: {name} is missing required column(s) {[c for c, _ in missing]}: the "
                        f"header was read as the one column {present[0]!r}{hint}")
    if missing:
        parts = []
        for canon, user in missing:
            how = f"mapped from '{user}'" if user != canon else f"looked up as '{user}' (not mapped in columns:)"
            close = difflib.get_close_matches(user, present, n=3, cutoff=0.6)
            close += [p for p in present if p.lower() == user.lower() and p not in close]
            if not close and len(user) >= 3:  # an abbreviation: 'Qty' for 'Quantity', 'Cust' for 'CustomerID'
                close = [p for p in present if _abbreviates(user, p)][:3]
            near = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""  # as config keys say it
            if close and (enc := _encoding_of(user, close[0], src.encoding)):  # 'Iloœæ' for 'Ilość': not a name
                near = f"; the header has {close[0]!r}, which is {user!r} in {enc} text: set encoding: {enc}"
            parts.append(f"'{canon}' {how}{near}")
        extra = ""
        if name == "order_lines" and any(c == "unit_price" for c, _ in missing):
            extra = " (order_lines needs unit_price or line_amount)"
        said = "; ".join(parts) + extra
        raise DataError(
            f"{src.describe()}: {name} is missing required column(s): {said}"
            + ("" if said.endswith("?") else ".") + f" Columns present: {present}{hint}"
        )
    _one_column_each(name, src, wanted)
    return wanted


def _encoding_of(user: str, found: str, encoding: str) -> str | None:
    """The encoding a header name read under ``encoding`` (``found``: 'Iloœæ') was written in when it is
    the name mapped (``user``: 'Ilość' from a Polish Excel's cp1250 file read as cp1252), else None."""
    if found == user:
        return None
    for enc in ("utf-8", "cp1250", "cp1252", "cp1251", "iso8859-2", "latin-1", "mac-roman"):
        try:
            if found.encode(encoding).decode(enc) == user:
                return enc
        except (UnicodeError, LookupError):
            continue
    return None


def _spacing(name: str) -> str:
    """A column name without spaces around it and with one space between words."""
    return " ".join(str(name).split())


def _abbreviates(short: str, name: str) -> bool:
    """``short``'s letters appear in ``name`` in order, starting with its first (case-insensitive)."""
    a, b = short.lower(), name.lower()
    if not b.startswith(a[0]):
        return False
    it = iter(b)
    return all(ch in it for ch in a)


def _one_column_each(name: str, src: TableSource, wanted: dict[str, str]) -> None:
    """A column of yours mapped to one contract column (``line_amount: price``) and also read as
    another, unmapped contract column that has its name (``price``... as ``unit_price`` when the
    file has a ``unit_price`` column mapped elsewhere) would copy one into the other: refuse it.
    Two explicit mappings to one column (``account_id: agency`` and ``location: agency``) are
    meant and allowed."""
    by_user: dict[str, list[str]] = {}
    for canon, user in wanted.items():
        if not canon.startswith(DERIVED_PREFIX):
            by_user.setdefault(user, []).append(canon)
    parts = []
    for user, canons in by_user.items():
        implicit = [c for c in canons if c not in src.columns]
        explicit = [c for c in canons if c in src.columns]
        if implicit and explicit:
            parts.append(f"your column '{user}' is mapped to {explicit} and would also be read as "
                         f"{implicit} (not mapped, so looked up under its own name)")
    if parts:
        raise DataError(
            f"{src.describe()}: {name}: {'; '.join(parts)}, one copying the other: map each of these contract "
            f"columns under data.{name}.columns to its own column of yours (or map both to it on purpose)"
        )
