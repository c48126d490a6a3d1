"""As-of account snapshot: one row of features per dealer account, known at a cutoff.

``account_features`` reads only rows dated strictly before ``cutoff`` (order lines by
``order_date``, service events by ``event_date``; a resolution time counts only once the
event was resolved by the cutoff) and never mutates its inputs. Everything is vectorised
numpy/pandas on integer codes, so ten million order lines take seconds, not minutes.

Time is measured in whole calendar days. ``cd`` is the cutoff's day number; an order on
day ``d`` is in the "last W days" window when ``cd - W <= d < cd``. An *order* is a distinct
``(account_id, order_id)``; a *purchase day* is a distinct ``(account_id, day)``; gaps and
the BG/NBD summary use purchase days (several orders on one day are one purchase event).
A window that reaches before the book's first order counts only the lines on record (the days
before the book add nothing; the value is not NaN): on a 120-day book ``orders_prev_90d`` counts
30 days. The reasons about such a window say so (``models.reasons``, given the book's first order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["account_features", "as_cutoff"]

_ORDER_COLUMNS = ("order_id", "order_date", "account_id", "sku")
_EVENT_COLUMNS = ("event_date", "account_id", "kind")
_EVENT_KINDS = {"complaint": "complaints", "return": "returns", "ticket": "tickets"}
_EVENT_WINDOWS = (60, 180)
_TREND_DAYS = 90
_SHIFT_PREV_DAYS = 180
_DAY_NS = 86_400 * 10**9


def as_cutoff(cutoff) -> pd.Timestamp:
    """Parse a cutoff (str, date, Timestamp) into a tz-naive midnight ``pd.Timestamp``.

    Features are daily, so a cutoff with a time of day is refused rather than rounded
    (rounding either way would silently move rows across the cutoff).
    """
    try:
        ts = pd.Timestamp(cutoff)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cutoff must be a date like '2011-09-10'; got {cutoff!r}") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"cutoff must be a date like '2011-09-10'; got {cutoff!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    if ts != ts.normalize():
        raise ValueError(
            f"cutoff must be a calendar date (midnight); got {ts} - use .normalize() "
            "to take the start of that day"
        )
    return ts


def _day_numbers(values) -> tuple[np.ndarray, np.ndarray]:
    """Datetime-like values -> (int64 day numbers since 1970-01-01, valid mask)."""
    arr = pd.to_datetime(pd.Series(values), errors="coerce")
    if getattr(arr.dt, "tz", None) is not None:
        arr = arr.dt.tz_convert(None)
    raw = arr.to_numpy(dtype="datetime64[ns]")
    valid = ~np.isnat(raw)
    ns = raw.view("int64")
    days = np.floor_divide(ns, _DAY_NS)
    return days, valid


def _require(df: pd.DataFrame, table: str, columns: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{table} must be a pandas DataFrame; got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{table} is missing required column(s) {missing}; has {list(df.columns)}"
        )


def _check_windows(windows) -> tuple[int, ...]:
    out = tuple(int(w) for w in windows)
    if not out or any(w <= 0 for w in out) or len(set(out)) != len(out):
        raise ValueError(f"windows must be distinct positive day counts; got {windows!r}")
    return tuple(sorted(out))


def _line_amount(ol: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    if "line_amount" in ol.columns:
        amt = ol["line_amount"].to_numpy(dtype="float64", na_value=np.nan)[mask]
    elif "quantity" in ol.columns and "unit_price" in ol.columns:
        q = ol["quantity"].to_numpy(dtype="float64", na_value=np.nan)[mask]
        p = ol["unit_price"].to_numpy(dtype="float64", na_value=np.nan)[mask]
        amt = q * p
    else:
        raise ValueError(
            "order_lines needs 'line_amount' or both 'quantity' and 'unit_price'; "
            f"has {list(ol.columns)}"
        )
    return np.nan_to_num(amt, nan=0.0)


def _codes(values: np.ndarray, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..k-1 of ``values``; missing values get their own code named 'unknown'."""
    codes, uniq = pd.factorize(values, sort=sort)
    codes = codes.astype(np.int64)
    uniq = np.asarray(uniq, dtype=object)
    missing = codes < 0
    if missing.any():
        codes[missing] = len(uniq)
        uniq = np.append(uniq, "unknown")
    return codes, uniq


def _pair_codes(a: np.ndarray, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Group codes for pairs (a, b) -> (codes, unique combined keys a*nb+b, ascending if dense)."""
    nb = max(nb, 1)
    key = a.astype(np.int64) * nb + b.astype(np.int64)
    size = (int(a.max()) + 1) * nb if len(a) else 0
    if size <= max(1 << 24, 4 * len(key)):  # small key space: dense counting, no hashing
        present = np.bincount(key, minlength=size) > 0
        uniq = np.flatnonzero(present).astype(np.int64)
        rank = np.cumsum(present, dtype=np.int64) - 1
        return rank[key], uniq
    codes, uniq = pd.factorize(key, sort=False)
    return codes.astype(np.int64), np.asarray(uniq, dtype=np.int64)


def _bincount(idx: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(idx, weights=weights, minlength=n)[:n] if n else np.zeros(0)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    out = np.full(num.shape, np.nan)
    ok = den != 0
    np.divide(num, den, out=out, where=ok)
    return out


def _trend(last: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed ratio (last+1)/(prev+1), pct change (last-prev)/prev; 0 if both 0, NaN if prev=0<last)."""
    last = last.astype("float64")
    prev = prev.astype("float64")
    ratio = (last + 1.0) / (prev + 1.0)
    pct = _safe_div(last - prev, prev)
    pct[(prev == 0) & (last == 0)] = 0.0
    return ratio, pct


def account_features(
    order_lines: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    service_events: pd.DataFrame | None = None,
    *,
    cutoff,
    windows: Sequence[int] = (30, 90, 180, 365),
) -> pd.DataFrame:
    """Features of every account with at least one order before ``cutoff``.

    Returns a new DataFrame, one row per account, sorted by ``account_id`` (a column,
    RangeIndex). Days are whole calendar days; money is in the order book's currency.

    Activity (order lines dated before the cutoff):
      - ``recency_days``: days from the last purchase day to the cutoff (>= 1).
      - ``tenure_days``: days from the first purchase day to the cutoff.
      - ``n_orders_{W}d`` / ``revenue_{W}d``: distinct orders / revenue in the last W days,
        for each W in ``windows``; ``n_orders_lifetime`` / ``revenue_lifetime`` over all history.
      - ``n_purchase_days``: distinct days with an order.
      - ``avg_order_value``: revenue_lifetime / n_orders_lifetime (currency per order).
    Rhythm (gaps in days between consecutive purchase days; NaN without enough gaps):
      - ``gap_mean_days``, ``gap_median_days`` (>= 1 gap), ``gap_std_days`` (sample std,
        >= 2 gaps), ``gap_cv`` (std / mean).
      - ``overdue_days`` = recency_days - gap_median_days (positive = later than usual);
        ``overdue_ratio`` = recency_days / gap_median_days (1 = exactly on rhythm).
    Trend (last 90 days ``[cd-90, cd)`` vs the 90 before ``[cd-180, cd-90)``):
      - ``orders_last_90d``, ``orders_prev_90d``, ``revenue_last_90d``, ``revenue_prev_90d``.
      - ``orders_trend_ratio`` / ``revenue_trend_ratio`` = (last + 1) / (prev + 1): finite,
        1 = flat (the +1 is one order / one currency unit).
      - ``orders_trend_pct`` / ``revenue_trend_pct`` = (last - prev) / prev as a fraction
        (-0.62 = down 62%); 0 when both are 0, NaN when prev is 0 and last is not.
    Breadth and mix:
      - ``n_skus_{W}d`` / ``n_categories_{W}d`` distinct SKUs / categories bought in the last
        W days; ``n_skus_lifetime`` / ``n_categories_lifetime``.
      - ``cat_share_max_drop``: the largest fall of any category's revenue share between the
        previous 180 days ``[cd-270, cd-90)`` and the last 90 days (fraction 0..1; NaN unless
        the account has revenue in both periods); ``cat_share_max_drop_category``: that
        category's name (str; None when NaN) - for reason texts, not a model input.
      - ``n_categories_dropped``: categories bought in the previous 180 days, none in the last 90.
      - ``promo_share``: fraction of lifetime revenue on promotion (0 without a promo column);
        ``promo_share_90d`` the same over the last 90 days (NaN without revenue there).
    Service (events dated before the cutoff; all NaN when ``service_events`` is None):
      - ``complaints_{60,180}d``, ``returns_{60,180}d``, ``tickets_{60,180}d``: counts;
        ``service_events_180d``: all kinds.
      - ``resolution_days_mean_180d``: mean resolution time (days) of events raised in the
        last 180 days and resolved by the cutoff (NaN if none).
      - ``open_events``: events raised before the cutoff not resolved by it (NaN for every
        account when no event before the cutoff has a ``resolution_days``: the book does not
        record resolutions, so no case is known to be open).
    Attributes (from ``accounts``; NaN when absent):
      - ``region``, ``channel_type``: pandas categoricals (categories = all values in
        ``accounts``, so the same across cutoffs).
      - ``onboarding_tenure_days``: days from onboarding_date to the cutoff (NaN if unknown
        or not before the cutoff).
    BG/NBD / Gamma-Gamma summary (purchase days; time unit = days):
      - ``bgnbd_frequency``: repeat purchase days (n_purchase_days - 1).
      - ``bgnbd_recency``: t_x, days from first to last purchase day (0 if no repeat).
      - ``bgnbd_T``: days from first purchase day to the cutoff (= tenure_days; > t_x).
      - ``bgnbd_monetary``: mean revenue per repeat purchase day (first day excluded, the
        Gamma-Gamma convention); 0 when bgnbd_frequency is 0.

    ``order_lines`` needs ``order_id, order_date, account_id, sku`` and ``line_amount`` (or
    ``quantity`` and ``unit_price``); ``category`` and ``promo`` are optional.
    """
    cut = as_cutoff(cutoff)
    wins = _check_windows(windows)
    _require(order_lines, "order_lines", _ORDER_COLUMNS)
    cd = int(cut.value // _DAY_NS)

    days_all, valid = _day_numbers(order_lines["order_date"])
    mask = valid & (days_all < cd)

    mask &= order_lines["account_id"].notna().to_numpy()
    day = days_all[mask]
    amount = _line_amount(order_lines, mask)
    acc, acc_uniq = pd.factorize(order_lines["account_id"].to_numpy()[mask], sort=True)
    acc = acc.astype(np.int64)
    n = len(acc_uniq)
    out: dict[str, object] = {"account_id": acc_uniq}

    # ---- orders: distinct (account, order_id) -------------------------------------------
    ocode, _ = _codes(order_lines["order_id"].to_numpy()[mask])
    n_ord = int(ocode.max()) + 1 if len(ocode) else 0
    o_acc = np.zeros(n_ord, dtype=np.int64)
    o_acc[ocode] = acc
    if not np.array_equal(o_acc[ocode], acc):  # an order_id shared by accounts: key on both
        ocode, okey = _pair_codes(acc, ocode, n_ord)
        n_ord = len(okey)
        o_acc = np.zeros(n_ord, dtype=np.int64)
        o_acc[ocode] = acc
    o_day = np.full(n_ord, np.iinfo(np.int64).max)
    np.minimum.at(o_day, ocode, day)
    o_rev = _bincount(ocode, n_ord, amount)

    for w in wins:
        sel = o_day >= cd - w
        out[f"n_orders_{w}d"] = _bincount(o_acc[sel], n).astype(np.int64)
        out[f"revenue_{w}d"] = _bincount(o_acc[sel], n, o_rev[sel]).astype("float64")
    n_orders = _bincount(o_acc, n).astype(np.int64)
    revenue = _bincount(o_acc, n, o_rev).astype("float64")
    out["n_orders_lifetime"] = n_orders
    out["revenue_lifetime"] = revenue
    out["avg_order_value"] = _safe_div(revenue, n_orders)

    # ---- purchase days: distinct (account, day), sorted by account then day --------------
    dmin = int(o_day.min()) if n_ord else 0
    span = int(cd - dmin + 1)
    pkey_o = o_acc * span + (o_day - dmin)
    pkey, pinv = np.unique(pkey_o, return_inverse=True)
    p_acc = pkey // span
    p_day = pkey % span + dmin
    p_rev = _bincount(pinv.ravel(), len(pkey), o_rev)
    n_pdays = _bincount(p_acc, n).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, p_acc[1:] != p_acc[:-1]]) if len(pkey) else np.zeros(0, int)
    first_day = np.zeros(n, dtype=np.int64)
    last_day = np.zeros(n, dtype=np.int64)
    first_day[p_acc[starts]] = p_day[starts]
    ends = np.r_[starts[1:] - 1, len(pkey) - 1] if len(pkey) else np.zeros(0, int)
    last_day[p_acc[ends]] = p_day[ends]
    recency = (cd - last_day).astype("float64")
    out["recency_days"] = recency
    out["tenure_days"] = (cd - first_day).astype("float64")
    out["n_purchase_days"] = n_pdays

    # ---- gaps between consecutive purchase days -----------------------------------------
    same = p_acc[1:] == p_acc[:-1]
    gaps = np.diff(p_day)[same].astype("float64")
    g_acc = p_acc[1:][same]
    g_n = _bincount(g_acc, n)
    g_sum = _bincount(g_acc, n, gaps)
    g_mean = _safe_div(g_sum, g_n)
    g_dev = gaps - g_mean[g_acc] if len(gaps) else gaps
    g_var = _safe_div(_bincount(g_acc, n, g_dev * g_dev), g_n - 1)
    g_var[g_n < 2] = np.nan
    g_std = np.sqrt(g_var)
    g_median = np.full(n, np.nan)
    if len(gaps):
        med = pd.Series(gaps).groupby(g_acc, sort=True).median()
        g_median[med.index.to_numpy()] = med.to_numpy()
    out["gap_mean_days"] = g_mean
    out["gap_median_days"] = g_median
    out["gap_std_days"] = g_std
    out["gap_cv"] = _safe_div(g_std, g_mean)
    out["overdue_days"] = recency - g_median
    out["overdue_ratio"] = _safe_div(recency, g_median)

    # ---- trends: last 90 vs previous 90 -------------------------------------------------
    last_o = o_day >= cd - _TREND_DAYS
    prev_o = (o_day >= cd - 2 * _TREND_DAYS) & ~last_o
    for name, w in (("orders", None), ("revenue", o_rev)):
        lst = _bincount(o_acc[last_o], n, None if w is None else w[last_o])
        prv = _bincount(o_acc[prev_o], n, None if w is None else w[prev_o])
        cast = np.int64 if w is None else "float64"
        out[f"{name}_last_90d"] = lst.astype(cast)
        out[f"{name}_prev_90d"] = prv.astype(cast)
        ratio, pct = _trend(lst, prv)
        out[f"{name}_trend_ratio"] = ratio
        out[f"{name}_trend_pct"] = pct

    # ---- breadth: distinct SKUs / categories, via each pair's last purchase day -----------
    sku, _ = _codes(order_lines["sku"].to_numpy()[mask])
    if "category" in order_lines.columns:
        cat, cat_uniq = _codes(order_lines["category"].to_numpy()[mask], sort=True)
    else:
        cat, cat_uniq = np.zeros(len(acc), dtype=np.int64), np.array(["ALL"], dtype=object)
    for label, codes, ncodes in (("skus", sku, int(sku.max()) + 1 if len(sku) else 1),
                                 ("categories", cat, len(cat_uniq))):
        pc, pk = _pair_codes(acc, codes, ncodes)
        pair_acc = pk // max(ncodes, 1)
        pair_last = np.full(len(pk), np.iinfo(np.int64).min)
        np.maximum.at(pair_last, pc, day)
        for w in wins:
            out[f"n_{label}_{w}d"] = _bincount(pair_acc[pair_last >= cd - w], n).astype(np.int64)
        out[f"n_{label}_lifetime"] = _bincount(pair_acc, n).astype(np.int64)

    # ---- category share shift: last 90 vs previous 180 ------------------------------------
    _category_shift(out, acc, cat, np.asarray(cat_uniq, dtype=object), day, amount, cd, n)

    # ---- promotions ---------------------------------------------------------------------
    if "promo" in order_lines.columns:
        promo = np.nan_to_num(order_lines["promo"].to_numpy(dtype="float64", na_value=0.0)[mask])
    else:
        promo = np.zeros(len(acc))
    promo_amt = amount * (promo > 0)
    out["promo_share"] = np.nan_to_num(_safe_div(_bincount(acc, n, promo_amt), revenue))
    l90 = day >= cd - _TREND_DAYS
    out["promo_share_90d"] = _safe_div(
        _bincount(acc[l90], n, promo_amt[l90]), _bincount(acc[l90], n, amount[l90])
    )

    _service_features(out, service_events, acc_uniq, cd, n)
    _account_attributes(out, accounts, acc_uniq, cd, n)

    # ---- BG/NBD summary -----------------------------------------------------------------
    freq = np.maximum(n_pdays - 1, 0)
    out["bgnbd_frequency"] = freq.astype(np.int64)
    out["bgnbd_recency"] = (last_day - first_day).astype("float64")
    out["bgnbd_T"] = (cd - first_day).astype("float64")
    first_rev = np.zeros(n)
    if len(pkey):
        first_rev[p_acc[starts]] = p_rev[starts]
    out["bgnbd_monetary"] = np.where(freq > 0, _safe_div(revenue - first_rev, freq), 0.0)

    return pd.DataFrame(out)


def _category_shift(out, acc, cat, cat_names, day, amount, cd, n) -> None:
    last = day >= cd - _TREND_DAYS
    prev = (day >= cd - _TREND_DAYS - _SHIFT_PREV_DAYS) & ~last
    ncat = max(len(cat_names), 1)
    sel = last | prev
    pc, pk = _pair_codes(acc[sel], cat[sel], ncat)
    rl = _bincount(pc[last[sel]], len(pk), amount[sel][last[sel]])
    rp = _bincount(pc[prev[sel]], len(pk), amount[sel][prev[sel]])
    pa, pcat = pk // ncat, pk % ncat
    tl = _bincount(pa, n, rl)
    tp = _bincount(pa, n, rp)
    both = (tl > 0) & (tp > 0)
    cand = (rp > 0) & both[pa] if len(pk) else np.zeros(0, bool)
    drop = rp[cand] / tp[pa[cand]] - rl[cand] / tl[pa[cand]]
    ca, cc = pa[cand], pcat[cand]
    max_drop = np.full(n, np.nan)
    max_cat = np.full(n, None, dtype=object)
    if len(drop):
        order = np.lexsort((cc, -drop, ca))  # per account: largest drop, then category name
        first = order[np.r_[True, ca[order][1:] != ca[order][:-1]]]
        max_drop[ca[first]] = drop[first]
        max_cat[ca[first]] = cat_names[cc[first]]
    out["cat_share_max_drop"] = max_drop
    out["cat_share_max_drop_category"] = max_cat
    out["n_categories_dropped"] = _bincount(pa[(rp > 0) & (rl == 0)], n).astype(np.int64)


def _service_features(out, events, acc_uniq, cd, n) -> None:
    cols = [f"{k}_{w}d" for w in _EVENT_WINDOWS for k in _EVENT_KINDS.values()]
    if events is None:
        for c in [*cols, "service_events_180d", "resolution_days_mean_180d", "open_events"]:
            out[c] = np.full(n, np.nan)
        return
    _require(events, "service_events", _EVENT_COLUMNS)
    eday, valid = _day_numbers(events["event_date"])
    m = valid & (eday < cd)
    eacc = pd.Index(acc_uniq).get_indexer(events["account_id"].to_numpy()[m])
    keep = eacc >= 0
    eacc, eday = eacc[keep].astype(np.int64), eday[m][keep]
    kind = events["kind"].astype("string").str.strip().str.lower().fillna("").to_numpy(dtype=object)[m][keep]
    if "resolution_days" in events.columns:
        res = events["resolution_days"].to_numpy(dtype="float64", na_value=np.nan)[m][keep]
    else:
        res = np.full(len(eacc), np.nan)
    for w in _EVENT_WINDOWS:
        inw = eday >= cd - w
        for k, name in _EVENT_KINDS.items():
            out[f"{name}_{w}d"] = _bincount(eacc[inw & (kind == k)], n).astype("float64")
    in180 = eday >= cd - 180
    out["service_events_180d"] = _bincount(eacc[in180], n).astype("float64")
    resolved = ~np.isnan(res) & (eday + np.nan_to_num(res) <= cd)
    r = in180 & resolved
    out["resolution_days_mean_180d"] = _safe_div(_bincount(eacc[r], n, res[r]), _bincount(eacc[r], n))
    # a book that records no resolution at all (the optional column absent, or empty for every
    # event before the cutoff) cannot say which cases are open: unknown, not "all still open"
    known = bool(np.isfinite(res).any())
    out["open_events"] = _bincount(eacc[~resolved], n).astype("float64") if known else np.full(n, np.nan)


def _account_attributes(out, accounts, acc_uniq, cd, n) -> None:
    if accounts is None:
        for c in ("region", "channel_type"):
            out[c] = pd.Categorical(np.full(n, np.nan), categories=[])
        out["onboarding_tenure_days"] = np.full(n, np.nan)
        return
    _require(accounts, "accounts", ("account_id",))
    ids = accounts["account_id"].to_numpy()
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise ValueError(
            f"accounts has {int(dup.sum())} duplicated account_id(s), e.g. {list(ids[dup][:3])}"
        )
    pos = pd.Index(ids).get_indexer(acc_uniq)
    hit = pos >= 0
    for c in ("region", "channel_type"):
        if c in accounts.columns:
            col = accounts[c].astype("string")
            cats = sorted(col.dropna().unique().tolist())
            vals = np.full(n, None, dtype=object)
            vals[hit] = col.to_numpy(dtype=object, na_value=None)[pos[hit]]
            out[c] = pd.Categorical(vals, categories=cats)
        else:
            out[c] = pd.Categorical(np.full(n, np.nan), categories=[])
    ten = np.full(n, np.nan)
    if "onboarding_date" in accounts.columns:
        od, ok = _day_numbers(accounts["onboarding_date"])
        t = np.where(ok, cd - od, np.nan).astype("float64")[pos[hit]]
        ten[hit] = np.where(t > 0, t, np.nan)
    out["onboarding_tenure_days"] = ten
