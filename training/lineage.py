"""Which tables each capability's model reads, and what two runs' data fingerprints say about them.

A run logs the sha256 of each table its model reads as tag ``data.<table>_sha256`` (the order
book's ``fingerprint``: ``order_lines_sha256``, ``accounts_sha256``, ``service_events_sha256``;
``none`` for a table the config does not name). ``experiment compare`` and ``promote`` call two
runs' data the same only when every table their model reads agrees, and name the table that does
not. A run logged before a table's sha256 was (the order lines' alone were, at first) says nothing
about that table: unknown, said so, never "different".

Demand reads the order lines only (its series); inventory and lead times feed the replay and
safety stock, not the forecaster's fit, so they do not make two demand runs' scores incomparable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TABLES_READ", "NOT_GIVEN", "sha_key", "table_label", "book_table_shas", "other_tables"]

TABLES_READ: dict[str, tuple[str, ...]] = {
    "churn": ("order_lines", "accounts", "service_events"),
    "dealers": ("order_lines", "accounts", "service_events"),
    "demand": ("order_lines",),
}
"""The tables whose rows change each capability's fitted model and backtest (order lines first)."""

NOT_GIVEN = "none"
"""The sha256 logged for a table the config does not name (a book without service events)."""


def sha_key(table: str) -> str:
    """The fingerprint key of ``table``'s sha256 (``data.`` + it is the run tag)."""
    return f"{table}_sha256"


def table_label(table: str) -> str:
    return table.replace("_", " ")


def book_table_shas(tables: Mapping[str, Any]) -> dict[str, str]:
    """``{accounts_sha256: ..., service_events_sha256: ...}`` for an order book's other tables
    (``tables``: name -> DataFrame or None), :data:`NOT_GIVEN` for one the config does not name. A
    table pandas cannot hash (a column of lists) is left out: its runs then compare as unknown."""
    from training.data import order_lines_sha256

    out: dict[str, str] = {}
    for name, frame in tables.items():
        if frame is None:
            out[sha_key(name)] = NOT_GIVEN
            continue
        try:
            out[sha_key(name)] = order_lines_sha256(frame)
        except TypeError:
            pass
    return out


def other_tables(capability: str, fingerprints: Sequence[Mapping[str, Any]], *, prefix: str = "data."
                 ) -> tuple[list[tuple[str, list[str | None]]], list[tuple[str, list[int]]]]:
    """The tables besides the order lines that ``capability`` reads, compared across ``fingerprints``
    (run tags with ``prefix`` ``data.``, or a book's fingerprint with ``prefix`` ''): ``(differ, unknown)``,
    ``differ`` the tables whose logged sha256 disagree with every run's value (None where not logged),
    ``unknown`` the tables some runs logged no sha256 of, with those runs' 0-based positions (only
    when another run did: when none did, nothing is known and nothing is said)."""
    differ: list[tuple[str, list[str | None]]] = []
    unknown: list[tuple[str, list[int]]] = []
    for table in TABLES_READ.get(capability, ())[1:]:
        key = prefix + sha_key(table)
        vals = [(fp.get(key) or None) for fp in fingerprints]
        if len({v for v in vals if v}) > 1:
            differ.append((table, vals))
        missing = [i for i, v in enumerate(vals) if not v]
        if missing and len(missing) < len(vals):
            unknown.append((table, missing))
    return differ, unknown
