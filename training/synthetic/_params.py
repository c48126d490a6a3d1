"""The knobs of the synthetic dealer network: segments, categories, regions, calendars.

Plain constants (no randomness, no I/O). Rates are per calendar day; gaps in days; prices in EUR.
"""

from __future__ import annotations

import numpy as np

SEGMENTS = (
    "strategic_key_account",
    "growing_retail_chain",
    "price_sensitive_small_shop",
    "channel_distributor",
    "ecommerce_reseller",
)
"""The five customer groups, in the order used by every per-segment array below."""

REGIONS = ("North", "South", "East", "West", "Central")
REGION_SHARE = np.array([0.22, 0.22, 0.18, 0.18, 0.20])
# Segment mix per region (rows: REGIONS, columns: SEGMENTS).
REGION_SEGMENT_MIX = np.array(
    [
        [0.05, 0.15, 0.45, 0.12, 0.23],  # North
        [0.03, 0.10, 0.60, 0.07, 0.20],  # South: many small shops
        [0.05, 0.18, 0.42, 0.15, 0.20],  # East
        [0.04, 0.12, 0.38, 0.06, 0.40],  # West: e-commerce heavy
        [0.09, 0.20, 0.35, 0.14, 0.22],  # Central: key accounts and distributors
    ]
)

# Per segment (order of SEGMENTS).
MEAN_GAP_DAYS = np.array([6.0, 9.0, 18.0, 40.0, 4.0])
"""Mean days between orders of an average-sized, flat account (before trends and seasonality)."""
GAP_SHAPE = np.array([3.0, 8.0, 0.8, 2.0, 1.5])
"""Gamma shape of the inter-order gap in activity time: high = regular rhythm, <1 = bursty."""
LINES_PER_ORDER = np.array([10.0, 6.0, 2.5, 2.0, 1.6])
"""Mean basket size (distinct SKUs per order)."""
BASE_QTY = np.array([8.0, 5.0, 2.0, 40.0, 1.5])
"""Mean units per line before the category scale."""
BREADTH = np.array([0.45, 0.30, 0.10, 0.03, 0.15])
"""Share of the catalogue an account buys from (its assortment)."""
SIZE_SCALE = np.array([2.0, 1.3, 0.6, 1.5, 0.8])
"""Multiplier of the lognormal account size."""
PRICE_DISCOUNT = np.array([0.12, 0.08, 0.0, 0.20, 0.05])
"""Contract discount off list price."""
PAYMENT_TERMS = np.array([60, 45, 30, 60, 14])
# Promotions: extra order intensity during a campaign, chance a line switches to a promoted SKU,
# and the quantity lift of a promoted line.
CAMPAIGN_BOOST = np.array([0.0, 0.15, 1.2, 0.0, 0.4])
PROMO_TILT = np.array([0.05, 0.15, 0.5, 0.0, 0.3])
PROMO_QTY_LIFT = np.array([1.5, 1.6, 2.2, 1.4, 1.6])
# Yearly seasonality of the order intensity: amplitude and peak day of year.
SEASON_AMP = np.array([0.20, 0.20, 0.30, 0.15, 0.45])
SEASON_PEAK = np.array([110, 110, 120, 100, 335])
# Weekly profile Mon..Sun (normalised to mean 1 in code).
WEEKDAY = np.array(
    [
        [1.35, 1.25, 1.15, 1.10, 0.95, 0.15, 0.05],
        [1.35, 1.25, 1.15, 1.10, 0.95, 0.15, 0.05],
        [1.30, 1.10, 1.05, 1.00, 1.10, 0.45, 0.00],
        [1.40, 1.20, 1.20, 1.10, 1.00, 0.05, 0.00],
        [1.50, 1.15, 1.00, 0.95, 0.90, 0.65, 0.85],
    ]
)
B2B = np.array([True, True, True, True, False])
"""B2B segments slow down over Christmas/New Year and in August; e-commerce peaks at Black Friday."""
# Lifecycle: full churn probability, partial churn probability, stage mix (growth, maturity, decline)
FULL_CHURN_P = np.array([0.06, 0.12, 0.26, 0.15, 0.22])
PARTIAL_CHURN_P = np.array([0.15, 0.12, 0.05, 0.08, 0.08])
STAGE_MIX = np.array(
    [
        [0.20, 0.65, 0.15],
        [0.60, 0.30, 0.10],
        [0.20, 0.50, 0.30],
        [0.15, 0.60, 0.25],
        [0.35, 0.45, 0.20],
    ]
)
SERVICE_PER_YEAR = np.array([12.0, 8.0, 2.0, 3.0, 6.0])
"""Service events (complaints, returns, tickets) per year of a healthy account."""
CHANNELS = ("EDI", "field", "phone", "web")
ORDER_CHANNEL_P = np.array(
    [
        [0.60, 0.40, 0.00, 0.00],
        [0.90, 0.00, 0.00, 0.10],
        [0.00, 0.50, 0.30, 0.20],
        [1.00, 0.00, 0.00, 0.00],
        [0.15, 0.00, 0.00, 0.85],
    ]
)
CHANNEL_TYPES = ("key_account", "retail_chain", "independent_shop", "distributor", "online")
# Recorded channel_type per true segment: an attribute that mostly, not always, matches.
CHANNEL_TYPE_P = np.array(
    [
        [0.60, 0.25, 0.00, 0.15, 0.00],
        [0.00, 0.92, 0.08, 0.00, 0.00],
        [0.00, 0.00, 0.90, 0.00, 0.10],
        [0.00, 0.05, 0.00, 0.95, 0.00],
        [0.00, 0.00, 0.10, 0.00, 0.90],
    ]
)
CREDIT_BASE = np.array([250_000.0, 80_000.0, 8_000.0, 150_000.0, 15_000.0])

# Product categories of an outdoor power-equipment manufacturer.
CATEGORIES = ("Machines", "Spare Parts", "Consumables", "Accessories", "Garden", "Winter")
CATEGORY_SHARE = np.array([0.10, 0.35, 0.15, 0.20, 0.12, 0.08])
CATEGORY_PRICE = np.array([420.0, 18.0, 9.0, 32.0, 65.0, 260.0])
"""Median list price per unit (EUR)."""
CATEGORY_QTY = np.array([0.15, 1.5, 2.5, 0.8, 0.6, 0.25])
"""Quantity scale: cheap consumables sell in larger units per line."""
CATEGORY_SEASON_AMP = np.array([0.35, 0.10, 0.15, 0.15, 0.65, 0.75])
CATEGORY_SEASON_PEAK = np.array([100, 120, 120, 130, 130, 350])
CATEGORY_LEAD_TIME = np.array([45.0, 20.0, 10.0, 25.0, 35.0, 50.0])
"""Mean replenishment lead time in days."""

PRICE_INCREASE_PER_YEAR = 0.03
CURRENCY = "EUR"
CHUNK_ACCOUNTS = 1000
"""Accounts simulated at once: bounds memory; fixed so output does not depend on machine."""
