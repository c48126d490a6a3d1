"""Dealer behaviour snapshot as of a cutoff: what segments, lifecycle, tiers and potential read.

``dealer_features(order_lines, accounts=None, *, cutoff, period_days=182)`` returns one row per
account with at least one order line strictly before ``cutoff``. Pure: reads no row dated on or
after the cutoff, never mutates its inputs, no I/O. Units: days, currency of the book, units.

Columns (index ``account_id``):

Windows: "the last D days" are the order lines dated in ``[cutoff - D days, cutoff)``, start
included, cutoff excluded (a line's age ``cutoff - order_date`` in days, time of day kept, is in
``(0, D]``); on a daily book, the D calendar days before the cutoff, as in
``features.accounts`` (``cd - D <= day < cd``). An earlier window ``[cutoff - B, cutoff - A)``
likewise (age in ``(A, B]``).

- ``tenure_days``: cutoff minus first order (days); ``recency_days``: cutoff minus last order.
- ``n_orders``: distinct orders ever; ``orders_per_month``: orders in the last 365 days
  (or the book's history if shorter) per 30.4 days.
- ``mean_interval_days`` / ``cv_interval``: mean and coefficient of variation of the gaps between
  distinct order days (NaN with fewer than 2 order days); ``overdue_ratio`` = recency / mean gap.
- ``annual_value``: purchase value in the last 365 days, scaled to a year when the
  book has less than 365 days of history before the cutoff (currency per year).
- ``last_period_value`` / ``prev_period_value``: value in ``[cutoff - P, cutoff)`` and
  ``[cutoff - 2P, cutoff - P)``, P = ``period_days``; ``growth_log_ratio`` = log((last+1)/(prev+1)).
  NaN when the book's history before the cutoff (``history_days``) is shorter than 95% of the
  span back to the window's start (2P here): a censored window is unknown, not zero; the same
  for ``value_prev_90d`` / ``trend_90d`` (180 days) and the year-ago pair (365 + P days).
- ``year_ago_period_value``: value in ``[cutoff - 365 - P, cutoff - 365)``; ``yoy_log_ratio`` =
  log((last+1)/(year_ago+1)): growth free of the yearly season (NaN without that history).
- ``value_90d`` / ``value_prev_90d``: value in ``[cutoff - 90, cutoff)`` and
  ``[cutoff - 180, cutoff - 90)``; ``trend_90d`` = log((v90+1)/(vprev90+1)).
- ``avg_order_value`` (currency per order), ``avg_lines_per_order``, ``avg_qty_per_line`` (units),
  ``n_skus_365`` and ``n_categories_365`` (basket breadth in the last 365 days).
- ``promo_share``: share of lines sold on promotion; ``price_index``: value-weighted mean of the
  paid unit price over the SKU's median price in the book before the cutoff (< 1 = pays less).
- ``online_share``: share of value through web / e-commerce / marketplace / online channels.
- ``history_days``: days of book history before the cutoff (same for every account).
- ``season_sin`` / ``season_cos``: the cutoff's day of year on the unit circle (same for every
  account): lets a model stacked over cutoffs learn that growth depends on the season ahead.
- ``region``, ``channel_type`` from ``accounts`` when given ('unknown' otherwise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["dealer_features", "dealer_snapshot", "model_matrix", "ONLINE_CHANNELS"]

ONLINE_CHANNELS = ("web", "online", "ecommerce", "e-commerce", "marketplace", "webshop", "shop-app")
"""Channel names (lower case, substring match) counted as online in ``online_share``. EDI is
system-to-system ordering of large B2B buyers, not e-commerce, so it does not count."""


def _as_ts(cutoff) -> pd.Timestamp:
    ts = pd.Timestamp(cutoff)
    if ts.tzinfo is not None:
        raise ValueError(f"cutoff must be tz-naive like order_date; got {cutoff!r}")
    return ts


def dealer_features(
    order_lines: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    *,
    cutoff,
    period_days: int = 182,
) -> pd.DataFrame:
    """One row per account active before ``cutoff``; see the module docstring for columns."""
    cutoff = _as_ts(cutoff)
    if period_days < 1:
        raise ValueError(f"period_days must be >= 1; got {period_days}")
    need = {"order_id", "order_date", "account_id", "sku", "quantity", "line_amount"}
    missing = sorted(need - set(order_lines.columns))
    if missing:
        raise ValueError(f"order_lines is missing column(s) {missing}")
    ol = order_lines.loc[order_lines["order_date"] < cutoff]
    if ol.empty:
        return pd.DataFrame(columns=_COLUMNS).rename_axis("account_id")

    book_start = ol["order_date"].min()
    history_days = max((cutoff - book_start).total_seconds() / 86400.0, 1.0)
    dates = ol["order_date"]
    amount = ol["line_amount"].to_numpy(dtype=float)
    age = (cutoff - dates).dt.total_seconds().to_numpy() / 86400.0  # days before cutoff, > 0
    acc = ol["account_id"].astype(str)

    lines = pd.DataFrame(
        {
            "account_id": acc.to_numpy(),
            "order_id": ol["order_id"].astype(str).to_numpy(),
            "sku": ol["sku"].astype(str).to_numpy(),
            "category": (ol["category"].astype(str) if "category" in ol else pd.Series("ALL", index=ol.index)).to_numpy(),
            "amount": amount,
            "qty": ol["quantity"].to_numpy(dtype=float),
            "age": age,
            "promo": (ol["promo"].to_numpy(dtype=float) if "promo" in ol else np.zeros(len(ol))),
            "online": _online_mask(ol),
        }
    )
    win = lambda lo, hi: lines["amount"].where((lines["age"] > lo) & (lines["age"] <= hi), 0.0)  # noqa: E731
    lines["v365"] = win(0, 365)
    lines["v_last"] = win(0, period_days)
    lines["v_prev"] = win(period_days, 2 * period_days)
    lines["v_yoy"] = win(365, 365 + period_days)
    lines["v90"] = win(0, 90)
    lines["vprev90"] = win(90, 180)
    lines["online_amt"] = lines["amount"] * lines["online"]

    # price index against the SKU's median unit price in the book before the cutoff
    if "unit_price" in ol:
        up = ol["unit_price"].to_numpy(dtype=float)
        med = pd.Series(up).groupby(lines["sku"].to_numpy()).transform("median").to_numpy()
        lines["rel_price_amt"] = np.where(med > 0, up / med, 1.0) * amount
    else:
        lines["rel_price_amt"] = amount

    g = lines.groupby("account_id", sort=True)
    out = g.agg(
        n_lines=("amount", "size"),
        value_total=("amount", "sum"),
        qty_total=("qty", "sum"),
        annual_raw=("v365", "sum"),
        last_period_value=("v_last", "sum"),
        prev_period_value=("v_prev", "sum"),
        year_ago_period_value=("v_yoy", "sum"),
        value_90d=("v90", "sum"),
        value_prev_90d=("vprev90", "sum"),
        promo_lines=("promo", "sum"),
        online_amt=("online_amt", "sum"),
        rel_price_amt=("rel_price_amt", "sum"),
    )
    recent = lines[lines["age"] <= 365]
    rg = recent.groupby("account_id")
    out["n_skus_365"] = rg["sku"].nunique().reindex(out.index).fillna(0).astype(float)
    out["n_categories_365"] = rg["category"].nunique().reindex(out.index).fillna(0).astype(float)

    orders = lines.groupby(["account_id", "order_id"], sort=False).agg(
        age=("age", "max"), value=("amount", "sum"), n=("amount", "size")
    )
    orders = orders.reset_index()
    og = orders.groupby("account_id")
    out["n_orders"] = og.size().astype(float)
    out["avg_order_value"] = out["value_total"] / out["n_orders"]
    out["avg_lines_per_order"] = out["n_lines"] / out["n_orders"]
    out["avg_qty_per_line"] = out["qty_total"] / out["n_lines"]
    window = min(365.0, history_days)
    out["orders_per_month"] = (
        orders[orders["age"] <= 365].groupby("account_id").size().reindex(out.index).fillna(0) / window * 30.4
    )
    out["tenure_days"] = og["age"].max()
    out["recency_days"] = og["age"].min()

    # gaps between distinct order days
    days = orders.assign(day=np.floor(orders["age"])).drop_duplicates(["account_id", "day"])
    days = days.sort_values(["account_id", "day"], ascending=[True, False])
    gaps = -days.groupby("account_id")["day"].diff()
    gstats = gaps.groupby(days["account_id"]).agg(["mean", "std"])
    out["mean_interval_days"] = gstats["mean"].reindex(out.index)
    out["cv_interval"] = (gstats["std"] / gstats["mean"]).reindex(out.index)
    out["overdue_ratio"] = out["recency_days"] / out["mean_interval_days"]

    out["annual_value"] = out["annual_raw"] * (365.0 / window)
    out["growth_log_ratio"] = np.log1p(out["last_period_value"].clip(lower=0)) - np.log1p(
        out["prev_period_value"].clip(lower=0)
    )
    out["yoy_log_ratio"] = np.log1p(out["last_period_value"].clip(lower=0)) - np.log1p(
        out["year_ago_period_value"].clip(lower=0))
    out["trend_90d"] = np.log1p(out["value_90d"].clip(lower=0)) - np.log1p(out["value_prev_90d"].clip(lower=0))
    out["promo_share"] = out["promo_lines"] / out["n_lines"]
    tot = out["value_total"].where(out["value_total"] > 0)
    out["price_index"] = (out["rel_price_amt"] / tot).fillna(1.0)
    out["online_share"] = (out["online_amt"] / tot).fillna(0.0)
    out["history_days"] = history_days
    doy = 2 * np.pi * (cutoff.dayofyear - 1) / 365.25  # where in the year the cutoff falls
    out["season_sin"], out["season_cos"] = np.sin(doy), np.cos(doy)
    # a window the book's history does not cover (>= 5% missing) is unknown, not zero
    for cols, reach in ((["prev_period_value", "growth_log_ratio"], 2 * period_days),
                        (["year_ago_period_value", "yoy_log_ratio"], 365 + period_days),
                        (["value_prev_90d", "trend_90d"], 180)):
        if history_days < 0.95 * reach:
            out[cols] = np.nan

    out["region"] = "unknown"
    out["channel_type"] = "unknown"
    if accounts is not None and len(accounts):
        a = accounts.assign(account_id=accounts["account_id"].astype(str)).drop_duplicates("account_id")
        a = a.set_index("account_id")
        for col in ("region", "channel_type"):
            if col in a.columns:
                out[col] = a[col].astype(str).reindex(out.index).fillna("unknown").to_numpy()
    out.index.name = "account_id"
    return out[_COLUMNS].copy()


def _online_mask(ol: pd.DataFrame) -> np.ndarray:
    if "channel" not in ol:
        return np.zeros(len(ol))
    ch = ol["channel"].astype(str).str.lower()
    uniq = pd.Series(ch.unique())
    is_online = {c: any(k in c for k in ONLINE_CHANNELS) for c in uniq}
    return ch.map(is_online).to_numpy(dtype=float)


_COLUMNS = [
    "tenure_days", "recency_days", "n_orders", "orders_per_month", "mean_interval_days",
    "cv_interval", "overdue_ratio", "annual_value", "last_period_value", "prev_period_value",
    "growth_log_ratio", "year_ago_period_value", "yoy_log_ratio", "value_90d", "value_prev_90d", "trend_90d", "avg_order_value",
    "avg_lines_per_order", "avg_qty_per_line", "n_skus_365", "n_categories_365", "promo_share",
    "price_index", "online_share", "history_days", "season_sin", "season_cos", "region", "channel_type",
]


_DROP = {"cat_share_max_drop_category", "label_end", "next_value", "history_days", "cutoff"}


def dealer_snapshot(order_lines: pd.DataFrame, accounts: pd.DataFrame | None = None,
                    service_events: pd.DataFrame | None = None, *, cutoff, period_days: int = 182) -> pd.DataFrame:
    """As-of features of every account with an order before ``cutoff`` (index ``account_id``).

    ``features.accounts.account_features`` joined with ``dealer_features`` (the latter's names
    win where both define one; ``region`` / ``channel_type`` stay the categoricals of
    ``account_features``). Pure like both.
    """
    from features.accounts import account_features

    base = account_features(order_lines, accounts, service_events, cutoff=cutoff).set_index("account_id")
    base.index = base.index.astype(str)
    mine = dealer_features(order_lines, accounts, cutoff=cutoff, period_days=period_days)
    keep = base.drop(columns=[c for c in mine.columns if c in base.columns and c not in ("region", "channel_type")])
    return keep.join(mine.drop(columns=["region", "channel_type"]), how="inner")


def model_matrix(snapshot: pd.DataFrame) -> pd.DataFrame:
    """Columns the potential regressor reads: numeric features and categorical region / channel type."""
    cols = []
    for c in snapshot.columns:
        if c in _DROP:
            continue
        dt = snapshot[c].dtype
        if isinstance(dt, pd.CategoricalDtype) or (
            pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)
        ):
            cols.append(c)
    X = snapshot[cols].copy()
    for c in X.columns:
        if not isinstance(X[c].dtype, pd.CategoricalDtype):
            X[c] = X[c].astype(float)
    return X
