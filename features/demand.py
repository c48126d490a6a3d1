"""Demand series from order lines, as of a cutoff, and their demand classes.

``demand_series`` turns the canonical ``order_lines`` table (see ``training/contract.py``)
into a long forecasting table ``unique_id, ds, y`` (+ key columns, + exogenous ``price`` and
``promo`` when the lines carry them) at a day / week / month grain. It never reads rows dated
after ``cutoff`` and only emits complete periods, so a partly observed last week does not look
like a demand drop.

``demand_classes`` labels each series smooth / erratic / intermittent / lumpy with the
Syntetos-Boylan-Croston cut-offs (ADI 1.32, CV squared 0.49).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "demand_series",
    "future_periods",
    "planned_promo_share",
    "aggregate_series",
    "demand_classes",
    "period_alias",
    "ADI_CUTOFF",
    "CV2_CUTOFF",
    "MAX_UNITS",
]

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49

MAX_UNITS = 1e12
"""The most units an order line, or a series' period, may hold (a trillion). Far beyond any real
order, and far enough below float range that the forecast bands, squared errors and the
safety-stock simulation stay finite: one line of 1e300 units (finite, so it passed as a quantity)
made an order of inf units, and 1e155 one of 2.8e154 (its square overflows)."""

_FREQ_ALIASES = {
    "D": "D",
    "DAY": "D",
    "DAILY": "D",
    "W": "W",
    "WEEK": "W",
    "WEEKLY": "W",
    "M": "M",
    "MS": "M",
    "MONTH": "M",
    "MONTHLY": "M",
}


def period_alias(freq: str) -> str:
    """Normalise a user frequency (``D``, ``W``, ``M``, ``MS``, ``week`` ...) to ``D``/``W``/``M``."""
    key = str(freq).strip().upper()
    if key.startswith("W-"):
        key = "W"
    if key not in _FREQ_ALIASES:
        raise ValueError(f"freq must be one of D, W, M (day, week, month); got {freq!r}")
    return _FREQ_ALIASES[key]


def _pandas_period(freq: str) -> str:
    # Weeks start on Monday; months at the first day of the month.
    return {"D": "D", "W": "W-SUN", "M": "M"}[period_alias(freq)]


def _offset(freq: str) -> str:
    """The pandas frequency of the ``ds`` column that ``demand_series`` emits (period starts)."""
    return {"D": "D", "W": "W-MON", "M": "MS"}[period_alias(freq)]


def _same_keys(work: pd.DataFrame, row: pd.Series, keys: list[str]) -> pd.Series:
    """Rows of ``work`` with the key values of ``row`` (all rows when there are no keys)."""
    mask = pd.Series(True, index=work.index)
    for c in keys:
        mask &= work[c] == row[c]
    return mask


def demand_series(
    order_lines: pd.DataFrame,
    *,
    cutoff: pd.Timestamp | str,
    freq: str = "W",
    levels: Sequence[str] = ("sku", "location"),
    start: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Long demand table as of ``cutoff``.

    Parameters
    ----------
    order_lines : canonical order lines (``order_date``, ``sku``, ``quantity`` and the
        ``levels`` columns; ``unit_price`` / ``line_amount`` and ``promo`` are used when present).
    cutoff : last instant whose rows may be read. Rows after it are ignored.
    freq : ``D``, ``W`` (weeks starting Monday) or ``M`` (calendar months).
    levels : key columns of a series, e.g. ``("sku", "location")``; ``()`` = one total series.
    start : first instant the order book covers (e.g. the first order date of the whole book);
        a period that began before it is only partly observed and is left out. None = keep all.

    Returns
    -------
    DataFrame with ``unique_id`` (keys joined by ``/``, ``"total"`` when ``levels`` is empty),
    ``ds`` (period start), ``y`` (units ordered in the period), the key columns, and when the
    lines carry them ``price`` (quantity-weighted mean unit price; carried forward over periods
    with no sale) and ``promo`` (share of units sold on promotion; 0 without sales). Each series
    runs from its first period with a sale to the last period that ends on or before ``cutoff``,
    zero-filled in between.
    """
    levels = tuple(levels)
    missing = [c for c in ("order_date", "quantity", *levels) if c not in order_lines.columns]
    if missing:
        raise ValueError(f"order_lines is missing column(s) {missing}; it has {list(order_lines.columns)}")
    cutoff = pd.Timestamp(cutoff)
    per = _pandas_period(freq)
    lines = order_lines.loc[order_lines["order_date"] <= cutoff]
    # Last complete period: the period containing cutoff is complete only if cutoff is its last day.
    cut_period = cutoff.to_period(per)
    if cutoff.normalize() < cut_period.end_time.normalize():
        cut_period = cut_period - 1
    last_ds = cut_period.start_time
    lines = lines.loc[lines["order_date"] < cut_period.end_time.normalize() + pd.Timedelta(days=1)]
    if start is not None:
        start = pd.Timestamp(start)
        first = start.to_period(per)
        if start > first.start_time:
            first = first + 1
        lines = lines.loc[lines["order_date"] >= first.start_time]

    out_cols = ["unique_id", "ds", "y", *levels]
    has_price = "line_amount" in lines.columns or "unit_price" in lines.columns
    has_promo = "promo" in lines.columns
    if lines.empty:
        extra = (["price"] if has_price else []) + (["promo"] if has_promo else [])
        return pd.DataFrame(columns=out_cols + extra)

    work = pd.DataFrame(
        {
            "ds": lines["order_date"].dt.to_period(per).dt.start_time,
            "y": lines["quantity"].astype("float64"),
        },
        index=lines.index,
    )
    for c in levels:
        work[c] = lines[c].astype(str)
    if has_price:
        amount = lines["line_amount"] if "line_amount" in lines.columns else lines["unit_price"] * lines["quantity"]
        work["_amount"] = amount.astype("float64")
    if has_promo:
        work["_promo_units"] = lines["promo"].astype("float64") * lines["quantity"].astype("float64")

    keys = list(levels) if levels else []
    agg = work.groupby([*keys, "ds"], sort=True, observed=True).sum(numeric_only=True).reset_index()
    if keys:
        uid = agg[keys[0]].astype(str)
        for c in keys[1:]:
            uid = uid + "/" + agg[c].astype(str)
        agg["unique_id"] = uid
        clash = agg.drop_duplicates(keys)[["unique_id", *keys]]
        clash = clash[clash["unique_id"].duplicated(keep=False)]
        if len(clash):  # else "N rows share a unique_id" about rows of a table the user never saw
            uid0 = clash["unique_id"].iloc[0]
            pairs = [tuple(r) for r in clash.loc[clash["unique_id"] == uid0, keys].itertuples(index=False)]
            raise ValueError(
                f"{clash['unique_id'].nunique()} series id(s) joined from the key columns {keys} would name different "
                f"series, e.g. {uid0!r} is both {' and '.join(repr(p) for p in pairs[:3])}: a key value holds '/', the "
                "separator of the joined id; replace the '/' in those values (e.g. with '-')")
    else:
        agg["unique_id"] = "total"
    # quantities too large to add up (e.g. two lines of 1e308 units in one week): pandas' compensated
    # sum gives NaN, which the zero-fill below turned into a period with no demand, silently
    # (or to more than MAX_UNITS, whose squares in the bands and the stock simulation overflow)
    y_sum = agg["y"].to_numpy(dtype="float64")
    over = ~np.isfinite(y_sum) | (np.abs(np.nan_to_num(y_sum)) > MAX_UNITS)
    if over.any():
        first = agg.loc[over].iloc[0]
        raise ValueError(
            f"order_lines.quantity: the units of {int(over.sum())} series-period(s) add up to more than "
            f"{MAX_UNITS:,.0f} units (or more than a number can hold), e.g. {first['unique_id']} in the period from "
            f"{first['ds'].date()} (its largest line: "
            f"{work.loc[(work['ds'] == first['ds']) & _same_keys(work, first, keys), 'y'].max():g} units); "
            f"expected at most {MAX_UNITS:,.0f} units per period: check those order lines")

    # Zero-fill each series from its first sale to the last complete period.
    offset = _offset(freq)
    first = agg.groupby("unique_id", sort=True)["ds"].min()
    # one date axis for every series (a date_range per series cost 10 s on Online Retail's 3,600 SKUs)
    axis = pd.date_range(first.min(), last_ds, freq=offset)
    pos = axis.get_indexer(pd.DatetimeIndex(first.to_numpy()))
    n = np.where(pos >= 0, len(axis) - pos, 0)
    at = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(pos, n)
    grid = pd.DataFrame({"unique_id": np.repeat(first.index.to_numpy(), n), "ds": axis[at]})
    keymap = agg.drop_duplicates("unique_id")[["unique_id", *keys]]
    grid = grid.merge(keymap, on="unique_id", how="left")
    num_cols = ["y"] + (["_amount"] if has_price else []) + (["_promo_units"] if has_promo else [])
    res = grid.merge(agg[["unique_id", "ds", *num_cols]], on=["unique_id", "ds"], how="left")
    res[num_cols] = res[num_cols].fillna(0.0)
    res = res.sort_values(["unique_id", "ds"], kind="mergesort").reset_index(drop=True)
    extra = []
    if has_price:
        with np.errstate(invalid="ignore", divide="ignore"):
            price = np.where(res["y"] > 0, res["_amount"] / res["y"].where(res["y"] > 0), np.nan)
        res["price"] = pd.Series(price, index=res.index).groupby(res["unique_id"]).ffill()
        extra.append("price")
    if has_promo:
        with np.errstate(invalid="ignore", divide="ignore"):
            res["promo"] = np.where(res["y"] > 0, res["_promo_units"] / res["y"].where(res["y"] > 0, 1.0), 0.0)
        extra.append("promo")
    res["y"] = res["y"].astype("float64")
    return res[out_cols + extra].reset_index(drop=True)


def future_periods(last: pd.Timestamp, h: int, freq: str) -> pd.DatetimeIndex:
    """The first days of the ``h`` periods after the period starting ``last`` (the ``ds`` grid
    :func:`demand_series` emits)."""
    return pd.date_range(pd.Timestamp(last), periods=int(h) + 1, freq=_offset(freq))[1:]


def planned_promo_share(series: pd.DataFrame, promotions: pd.DataFrame, freq: str) -> np.ndarray:
    """For each row of ``series`` (``unique_id, ds`` + ``sku``, and ``location`` when it is a level): the
    share of the days of its period (``ds``, the period's first day) that a campaign of ``promotions``
    (validated: ``sku, location`` ('ALL' = every location), ``start_date, end_date`` inclusive) covers
    for its SKU and location; 0 where none does. A series over all locations of a SKU counts a
    campaign at any of them. Campaigns overlapping count their days once. Known ahead, unlike the share
    of units sold on promotion (0 wherever nothing sold)."""
    out = np.zeros(len(series))
    if promotions is None or not len(promotions) or not len(series):
        return out
    n = ((promotions["end_date"] - promotions["start_date"]).dt.days + 1).to_numpy()
    n = np.maximum(n, 0)
    off = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    days = pd.DataFrame({"sku": np.repeat(promotions["sku"].astype(str).to_numpy(), n),
                         "c_loc": np.repeat(promotions["location"].astype(str).to_numpy(), n),
                         "day": np.repeat(promotions["start_date"].to_numpy(), n) + pd.to_timedelta(off, unit="D")})
    by_loc = "location" in series.columns
    keys = series[["unique_id", "sku", *(["location"] if by_loc else [])]].drop_duplicates("unique_id")
    keys = keys.assign(sku=keys["sku"].astype(str))
    hit = keys.merge(days, on="sku")
    if by_loc:
        hit = hit[(hit["c_loc"] == "ALL") | (hit["c_loc"] == hit["location"].astype(str))]
    hit = hit.drop_duplicates(["unique_id", "day"])
    hit = hit.assign(ds=hit["day"].dt.to_period(_pandas_period(freq)).dt.start_time)
    covered = hit.groupby(["unique_id", "ds"]).size().rename("days").reset_index()
    got = series[["unique_id", "ds"]].merge(covered, on=["unique_id", "ds"], how="left")["days"].fillna(0.0)
    p = period_alias(freq)
    length = 1.0 if p == "D" else 7.0 if p == "W" else pd.DatetimeIndex(series["ds"]).days_in_month.to_numpy(float)
    return got.to_numpy(dtype="float64") / length


def aggregate_series(series: pd.DataFrame, levels: Sequence[str]) -> pd.DataFrame:
    """Sum a bottom-level long table up to the series keyed by ``levels`` (``()`` = total).

    ``y`` is summed; ``price`` becomes the y-weighted mean (plain mean where y is 0) and
    ``promo`` the y-weighted share. Periods missing for a child count as zero.
    """
    levels = tuple(levels)
    missing = [c for c in levels if c not in series.columns]
    if missing:
        raise ValueError(f"series is missing key column(s) {missing}; it has {list(series.columns)}")
    work = series[["ds", "y", *levels]].copy()
    has_price = "price" in series.columns
    has_promo = "promo" in series.columns
    if has_price:
        work["_amount"] = series["price"].fillna(0.0) * series["y"]
        work["_price"] = series["price"]
    if has_promo:
        work["_promo_units"] = series["promo"].fillna(0.0) * series["y"]
    g = work.groupby([*levels, "ds"], sort=True, observed=True)
    agg = g[["y"] + (["_amount"] if has_price else []) + (["_promo_units"] if has_promo else [])].sum()
    if has_price:
        agg["_price"] = g["_price"].mean()
    agg = agg.reset_index()
    if levels:
        uid = agg[levels[0]].astype(str)
        for c in levels[1:]:
            uid = uid + "/" + agg[c].astype(str)
        agg["unique_id"] = uid
    else:
        agg["unique_id"] = "total"
    cols = ["unique_id", "ds", "y", *levels]
    if has_price:
        agg["price"] = np.where(agg["y"] > 0, agg["_amount"] / agg["y"].where(agg["y"] > 0, 1.0), agg["_price"])
        cols.append("price")
    if has_promo:
        agg["promo"] = np.where(agg["y"] > 0, agg["_promo_units"] / agg["y"].where(agg["y"] > 0, 1.0), 0.0)
        cols.append("promo")
    return agg[cols].sort_values(["unique_id", "ds"], kind="mergesort").reset_index(drop=True)


def demand_classes(series: pd.DataFrame) -> pd.DataFrame:
    """Syntetos-Boylan demand class of each series of a long ``unique_id, ds, y`` table.

    Returns ``unique_id``, ``adi`` (periods per non-zero period: mean inter-demand interval),
    ``cv2`` (squared coefficient of variation of the non-zero demand sizes) and
    ``demand_class``: ``smooth`` (ADI < 1.32, CV2 < 0.49), ``erratic`` (ADI < 1.32,
    CV2 >= 0.49), ``intermittent`` (ADI >= 1.32, CV2 < 0.49), ``lumpy`` (ADI >= 1.32,
    CV2 >= 0.49); ``zero`` for a series with no demand at all.
    """
    if not {"unique_id", "y"} <= set(series.columns):
        raise ValueError(f"series needs columns unique_id and y; it has {list(series.columns)}")
    y = series["y"].astype("float64")
    pos = y.where(y > 0)
    g = pd.DataFrame({"unique_id": series["unique_id"].values, "y": y.values, "pos": pos.values})
    grp = g.groupby("unique_id", sort=True)
    n = grp["y"].size()
    nz = grp["pos"].count()
    mean_nz = grp["pos"].mean()
    std_nz = grp["pos"].std(ddof=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        adi = n / nz.where(nz > 0)
        cv2 = (std_nz / mean_nz) ** 2
    cv2 = cv2.where(nz > 0)
    cls = np.where(
        nz.values == 0,
        "zero",
        np.where(
            adi.values < ADI_CUTOFF,
            np.where(cv2.values < CV2_CUTOFF, "smooth", "erratic"),
            np.where(cv2.values < CV2_CUTOFF, "intermittent", "lumpy"),
        ),
    )
    return pd.DataFrame(
        {"unique_id": n.index.values, "adi": adi.values, "cv2": cv2.values, "demand_class": cls}
    )
