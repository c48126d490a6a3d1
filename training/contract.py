"""The data contract: canonical tables, columns, types and units.

A user's export is mapped onto these names by the ``columns:`` section of an experiment
config; everything downstream (features, models, serving) sees only these names.
``docs/DATA.md`` documents the same contract for people.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Column", "TABLES", "REQUIRED_TABLES"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "string" | "datetime" | "float" | "int"
    required: bool
    unit: str
    description: str


TABLES: dict[str, tuple[Column, ...]] = {
    "order_lines": (
        Column("order_id", "string", True, "-", "Order / invoice id; one order has one or more lines."),
        Column("order_date", "datetime", True, "timestamp", "When the order was placed (date or date-time)."),
        Column("account_id", "string", True, "-", "The dealer (customer account) that ordered."),
        Column("sku", "string", True, "-", "Product / stock-keeping unit."),
        Column("quantity", "float", True, "units", "Units ordered; negative = return / cancellation."),
        Column("unit_price", "float", False, "currency/unit", "Net price per unit. Required unless line_amount is given."),
        Column("line_amount", "float", False, "currency", "quantity x unit_price; derived when absent."),
        Column("location", "string", False, "-", "Warehouse / ship-from location; 'ALL' when absent."),
        Column("channel", "string", False, "-", "Sales channel of the line (e.g. web, field, EDI)."),
        Column("category", "string", False, "-", "Product category; 'ALL' when absent."),
        Column("currency", "string", False, "ISO 4217", "Currency of the prices; one currency per book."),
        Column("promo", "float", False, "0/1", "1 if the line was sold on promotion."),
    ),
    "accounts": (
        Column("account_id", "string", True, "-", "The dealer id used in order_lines."),
        Column("region", "string", False, "-", "Sales region / country."),
        Column("channel_type", "string", False, "-", "Kind of dealer (distributor, retail chain, shop, e-commerce, key account)."),
        Column("onboarding_date", "datetime", False, "date", "When the account was opened."),
    ),
    "service_events": (
        Column("event_date", "datetime", True, "date", "When the event was raised."),
        Column("account_id", "string", True, "-", "The dealer concerned."),
        Column("kind", "string", True, "-", "complaint | return | ticket."),
        Column("resolution_days", "float", False, "days", "Days from raised to resolved; empty if open."),
    ),
    "inventory": (
        Column("location", "string", True, "-", "Stocking location (matches order_lines.location)."),
        Column("sku", "string", True, "-", "Product."),
        Column("on_hand", "float", True, "units", "Units on hand at the snapshot."),
        Column("snapshot_date", "datetime", False, "date", "Date of the snapshot; latest wins."),
    ),
    "lead_times": (
        Column("sku", "string", True, "-", "Product."),
        Column("location", "string", False, "-", "Location; empty = all locations."),
        Column("lead_time_days", "float", True, "days", "Mean replenishment lead time, >= 0 (0 = same-day supply)."),
        Column("lead_time_std_days", "float", False, "days", "Standard deviation of the lead time, if known."),
    ),
    "promotions": (
        Column("sku", "string", True, "-", "Product on promotion."),
        Column("start_date", "datetime", True, "date", "First day of the campaign."),
        Column("end_date", "datetime", True, "date", "Last day of the campaign (inclusive)."),
        Column("location", "string", False, "-", "Location; empty = all locations."),
        Column("discount", "float", False, "share", "Share off the price (0.15 = 15 %), if known; for reference."),
    ),
}

REQUIRED_TABLES = ("order_lines",)
