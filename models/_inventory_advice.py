"""What to do with the stock on hand, given a fitted ``InventoryPolicy``: replenish, the routine
order, overstock or ok, the order quantity under the supplier's rules, and the suggestion text
(``_advise``, behind ``InventoryPolicy.advise``, whose docstring states the rules); and what a
stock count's date means for that advice (``stock_date_notes``, with ``sizing_start`` and
``forecast_offset``); and the note of a series that may have stopped selling (``stopped_series_notes``:
sized 0 from its own history, ``own_history_zero_notes``, or silent long against its own rhythm,
``long_silence_notes``), which the CLI's ``forecast_note`` and the service's ``note`` both say.

Apart from the sizing because it is a decision on today's stock, not a property of the demand
distribution: it reads only the fitted policy table and the order rules (``ORDER_RULES``, which
the CLI's ``--on-hand`` reader also checks a file against with ``order_rule_values``). Units:
stock and orders in units, cover in forecast periods. Private to ``models.inventory``, which
re-exports the public names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models._inventory_distribution import OWN_HISTORY_PERIODS
from models._inventory_forecaster import SHORT_SOURCE

if TYPE_CHECKING:
    from models.inventory import InventoryPolicy

_PERIOD_WORDS = {"D": "days", "W": "weeks", "M": "months"}
_PERIOD_WORD = {"D": "day", "W": "week", "M": "month"}


def forecast_offset(est, freq: str) -> str:
    """A fitted forecaster's period grid (``W-MON``, ``MS``, ...): its panel's (a hierarchical one's
    bottom level's), else the order book's for ``freq``."""
    for part in (est, getattr(est, "bottom_", None)):
        offset = getattr(getattr(part, "panel_", None), "offset", None)
        if offset:
            return str(offset)
    return {"D": "D", "W": "W-MON", "M": "MS"}.get(freq, "W-MON")


def sizing_start(last_observed, offset: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first forecast period's date and the next one's: the periods after ``last_observed``
    (the last period of history) on the forecast's ``offset`` grid (``W-MON``, ``MS``, ``D``)."""
    from pandas.tseries.frequencies import to_offset

    step = to_offset(offset)
    start = pd.Timestamp(last_observed) + step
    return start, start + step


def stock_date_notes(dates, last_observed, offset: str) -> list[str]:
    """Per stock row, what its count date means for the advice ('' when nothing to say).

    The policy compares the stock with the demand forecast from the sizing's start, the period
    after ``last_observed``; it does not project a count to that day (receipts between are not
    known). A count before ``last_observed`` (more than one period before the start) missed the
    demand since, and one a period or more after the start has already met some of the demand
    the forecast's first periods count (the order then leans high): both are said, with the days
    between, counted on calendar dates (a request's count may be dated before 1677, where pandas'
    nanosecond timestamps stop). ``dates``: ISO dates or None (unknown: nothing said here; the
    caller says it once)."""
    start, after = sizing_start(last_observed, offset)
    last = pd.Timestamp(last_observed)
    out = []
    for d in dates:
        if d is None or (not isinstance(d, str) and pd.isna(d)):
            out.append("")
            continue
        t = pd.Timestamp(d).normalize()
        day, begin = t.date().isoformat(), start.date().isoformat()
        if t < last:
            out.append(f"stock counted {day}, {(start.date() - t.date()).days} days before the sizing starts ({begin}): "
                       "demand since then is not subtracted from it (recount it or pass a newer snapshot)")
        elif t >= after:
            out.append(f"stock counted {day}, {(t.date() - start.date()).days} days after the sizing starts ({begin}): the "
                       "forecast's first periods count demand this stock has already met, so the advice errs "
                       "towards ordering (size from a forecast whose history reaches the count)")
        else:
            out.append("")
    return out



def _advise(policy: InventoryPolicy, on_hand: pd.DataFrame, freq: str | None) -> pd.DataFrame:
    """``InventoryPolicy.advise`` on a fitted ``policy`` (see its docstring for the columns and rules)."""
    if not {"unique_id", "on_hand"} <= set(on_hand.columns):
        raise ValueError(f"on_hand needs columns unique_id, on_hand; it has {list(on_hand.columns)}")
    stock = pd.to_numeric(on_hand["on_hand"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(stock)
    if bad.any():  # a missing stock figure must not read as "ok, order nothing"
        raise ValueError(f"on_hand must be a finite number of units; {int(bad.sum())} row(s) are not, "
                         f"e.g. {on_hand.loc[bad, ['unique_id', 'on_hand']].head(3).to_dict('records')}")
    if on_hand["unique_id"].duplicated().any():
        raise ValueError(f"on_hand has more than one row for unique_id(s) "
                         f"{on_hand.loc[on_hand['unique_id'].duplicated(), 'unique_id'].unique()[:3].tolist()}")
    rules = _order_rules(on_hand)
    df = policy.policy_.merge(on_hand[["unique_id", "on_hand"]].assign(**rules), on="unique_id", how="inner")
    d = df["mean_demand"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(d > 0, df["on_hand"].clip(lower=0.0) / d, np.inf)
    df["periods_of_cover"] = cover
    limit = policy.cover_limit_periods
    position = (df["on_hand"] + df["on_order"]).to_numpy()
    df["inventory_position"] = position
    rep = position < df["reorder_point"].to_numpy()
    top = ~rep & (position < df["order_up_to"].to_numpy())  # the routine order of this review
    buy = rep | top
    ceiling = np.maximum(limit * d, df["order_up_to"].to_numpy())
    # tolerance: stock within one review period's expected demand of the ceiling is used up by
    # the next review without an order, and a fraction of a unit cannot be moved
    tol = np.maximum(float(policy.policy_["review_period"].iloc[0]) * d, policy.overstock_tolerance_units)
    # overstock on the inventory position too: stock on order is stock once it arrives (with
    # nothing on order this is the on-hand rule; periods_of_cover stays the stock on hand)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos_cover = np.where(d > 0, np.clip(position, 0.0, None) / d, np.inf)
    over = ~buy & (pos_cover > limit) & (position > ceiling + tol)
    df["action"] = np.select([rep, top, over], ["replenish", "order", "overstock"], default="ok")
    raw = np.where(buy, np.clip(df["order_up_to"].to_numpy() - position, 0, None), 0.0)
    df["order_qty_unrounded"] = raw
    df["order_qty"] = np.where(buy, _round_order(raw, df["min_order_qty"].to_numpy(), df["order_multiple"].to_numpy()), 0.0)
    df["excess"] = np.where(over, np.floor(position - ceiling), 0.0)
    order_text = ("order " + df["order_qty"].map(_units) + " units (up to " + df["order_up_to"].round(1).astype(str)
                  + (", counting " + df["on_order"].map(_units) + " on order").where(df["on_order"] > 0, "")
                  # a backorder is filled from the order too: without this, 'order 1166 units (up to 963.8)'
                  # read as ordering past the order-up-to level
                  + (", plus " + (-df["on_hand"]).map(_units) + " backordered").where(df["on_hand"] < 0, "")
                  + _rounding_note(df) + ")")
    df["suggestion"] = np.select(
        [rep, top, over],
        [
            "below the reorder point " + df["reorder_point"].round(1).astype(str) + ": " + order_text,
            "routine order at this review: " + order_text,
            f"over {limit:g} {_PERIOD_WORDS.get(freq, 'periods')} of cover and the order-up-to level"
            + (", counting " + df["on_order"].map(_units) + " on order: reduce the open orders or").where(
                df["on_order"] > 0, ":")
            + " promote or transfer " + df["excess"].astype(int).astype(str) + " units",
        ],
        default="",
    )
    # excess above the stock on hand cannot be promoted or transferred: it is on order (an
    # excess of 910 with -304 on hand and 3037 on order said 'promote or transfer 910 units');
    # those rows say how much to cut from the open orders, and promote only what is on hand
    hand = np.clip(df["on_hand"].to_numpy(dtype=float), 0.0, None)
    short_hand = over & (df["excess"].to_numpy() > hand)
    if short_hand.any():
        cut = np.minimum(df["excess"].to_numpy(), df["on_order"].to_numpy())
        rest = df["excess"].to_numpy() - cut
        text = [f"over {limit:g} {_PERIOD_WORDS.get(freq, 'periods')} of cover and the order-up-to level, counting "
                f"{_units(o)} on order: reduce the open orders by {_units(c)} units"
                + (f" and promote or transfer {_units(r)} units" if r > 0 else "")
                for o, c, r in zip(df["on_order"].to_numpy()[short_hand], cut[short_hand], rest[short_hand], strict=True)]
        df.loc[short_hand, "suggestion"] = text
    if "ltd_source" in df.columns:
        # a short-history policy rests on a few recent periods: at validation cutoffs (session 11)
        # those of series with a longer lumpy past but no recent sale covered the next lead time's
        # demand only 69-83 % of the time at a 95 % target, so their 'excess' may be needed stock
        # (rows sized from their own lumpy past too, short_history+own_history, rest on more: no note)
        short_over = over & (df["ltd_source"] == SHORT_SOURCE).to_numpy()
        df.loc[short_over, "suggestion"] = df.loc[short_over, "suggestion"] + (
            " (sized from a short history, its last few periods only: check its sales before moving stock)")
    return df[["unique_id", "on_hand", "on_order", "inventory_position", "reorder_point", "order_up_to",
               "safety_stock", "periods_of_cover", "action", "order_qty", "order_qty_unrounded", "min_order_qty",
               "order_multiple", "excess", "suggestion"]]


# optional order rules beside on_hand in advise(): (column, default, smallest allowed, bound included)
ORDER_RULES = (("on_order", 0.0, 0.0, True), ("min_order_qty", 0.0, 0.0, True), ("order_multiple", 1.0, 0.0, False))


def order_rule_values(raw: pd.Series, low: float, inclusive: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values as floats, empty cells, bad cells) of one ``ORDER_RULES`` column: a cell is bad when
    it is neither empty nor a finite number ``>= low`` (``> low`` unless ``inclusive``)."""
    v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    empty = raw.isna().to_numpy() | raw.astype(str).str.strip().eq("").to_numpy()
    bad = ~empty & ~(np.isfinite(v) & ((v >= low) if inclusive else (v > low)))
    return v, empty, bad


def _order_rules(on_hand: pd.DataFrame) -> dict[str, np.ndarray]:
    """``on_order``, ``min_order_qty``, ``order_multiple`` per row of ``on_hand``: the column's
    values where it has them, the default where it is absent or empty; anything else (text, an
    infinity, a negative figure, a multiple of 0) is refused naming the column and the series."""
    out = {}
    for col, default, low, inclusive in ORDER_RULES:
        if col not in on_hand.columns:
            out[col] = np.full(len(on_hand), default)
            continue
        v, empty, bad = order_rule_values(on_hand[col], low, inclusive)
        if bad.any():
            rule = f">= {low:g}" if inclusive else f"> {low:g}"
            raise ValueError(f"{col} must be a number {rule} units (or empty: {default:g}); {int(bad.sum())} row(s) are not, "
                             f"e.g. {on_hand.loc[bad, ['unique_id', col]].head(3).to_dict('records')}")
        out[col] = np.where(empty, default, v)
    return out


def _round_order(raw: np.ndarray, moq: np.ndarray, multiple: np.ndarray) -> np.ndarray:
    """Order quantities from the units needed to reach the order-up-to level: whole units, rounded
    up; at least the minimum order; then up to a whole multiple of the pack size (a minimum order
    that is not a multiple is rounded up too). Rounding is always up, so the order still reaches
    the order-up-to level."""
    q = np.maximum(np.ceil(raw), moq)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        packs = np.ceil(q / multiple - 1e-9)  # 0.3 / 0.1 is 2.9999999999999996 in floats
        out = np.maximum(packs, 1.0) * multiple
    # a pack so small that q / multiple overflows (1e-300 units) cannot move a whole-unit order
    # (the answer is rounded to 1e-9 below): it was inf, and the service's JSON answer a 500
    return np.round(np.where(np.isfinite(out), out, q), 9)


def _units(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _rounding_note(df: pd.DataFrame) -> pd.Series:
    """'; 37 needed, raised to the minimum order 40 / rounded up to a multiple of 12' where the
    order rules changed the quantity."""
    need = np.ceil(df["order_qty_unrounded"].to_numpy())
    moq, mult, qty = (df[c].to_numpy() for c in ("min_order_qty", "order_multiple", "order_qty"))
    notes = []
    for n, m, k, q in zip(need, moq, mult, qty, strict=True):
        parts = []
        if m > n:
            parts.append(f"raised to the minimum order {_units(m)}")
        if q > max(n, m):
            parts.append(f"rounded up to a multiple of {_units(k)}")
        notes.append(f"; {_units(n)} needed, " + " and ".join(parts) if parts else "")
    return pd.Series(notes, index=df.index)


def _when(one: str, day: str) -> str:
    """'in the week of 2023-01-16' / 'in the month of ...'; a day is 'on 2023-01-16'."""
    return f"on {day}" if one == "day" else f"in the {one} of {day}"


# the own-history zero note needs the forecast to expect at least this many units over the lead time
ZERO_NOTE_MIN_UNITS = 1.0


def own_history_zero_notes(policy: pd.DataFrame, history: pd.DataFrame | None, freq: str | None = None,
                           window: int = OWN_HISTORY_PERIODS, silences: pd.DataFrame | None = None) -> list[str]:
    """Per row of ``policy`` (``InventoryPolicy.policy_`` or the CLI's table): the note of a series
    sized from its own history (``ltd_source`` ``own_history``) whose reorder point came out 0 while
    the forecast expects demand over the lead time (``ltd_mean`` at least ``ZERO_NOTE_MIN_UNITS`` and above
    the order-up-to level), '' for the others. (Before, any ``ltd_mean`` > 0 got it: the demo's series
    forecast at 1e-14 units were said to leave "0.0 units" unstocked, and ones whose order-up-to level
    covered the forecast, ordered each review, were said not to be stocked for it; a long silence there is
    said by ``long_silence_notes``.)

    The own-history bootstrap takes how often a sale comes from the series' own zero / non-zero
    periods; ``recentre`` (blend) scales only the size of a sale. A series that stopped selling
    (synthetic network, SKU00008: no sale in its last 70 of 104 weeks) has a sale within a
    lead time + review on ~3 % of its paths (only the chain's half pseudo-count lets one start), so
    its 95 % reorder point and order-up-to level are 0 however high the forecast runs (7 a week,
    52 by the end of the horizon there), while ``ltd_mean``, ``mean_demand`` and the ``normal_*``
    columns (233.6 units) come from that forecast. The note names the last sale, that at most
    1 - service level of the simulated lead times saw one, and the forecast's units not stocked
    for. A series whose last sale is ``window`` periods back or more (``InventoryPolicy``'s
    ``history_periods``) had no sale in what it was sized from: no path was simulated, and the note
    says that instead. ``history``: long ``unique_id, ds, y``, the demand the sizing saw
    (``forecaster_history``); None: no note (the last sale is not known). ``silences``: its
    :func:`sale_silences`, when computed already (the service: once at load); then ``history`` is not read."""
    out = [""] * len(policy)
    if (history is None and silences is None) or not len(policy) or "ltd_source" not in policy.columns:
        return out
    # only where the forecast's own lead-time demand is at least a unit and above the order-up-to level: a
    # forecast of 1e-14 units, or an order-up-to level that covers it, is stocked for as the forecast says
    ltd = policy["ltd_mean"].to_numpy(dtype=float)
    at = np.flatnonzero((policy["ltd_source"].astype(str) == "own_history").to_numpy()
                        & (policy["reorder_point"].to_numpy(dtype=float) <= 0)
                        & (ltd >= ZERO_NOTE_MIN_UNITS) & (policy["order_up_to"].to_numpy(dtype=float) < ltd))
    if not len(at):
        return out
    if silences is None:  # once for all (a scan per series was quadratic: 44 s for 2,000 stopped series)
        ids = set(policy["unique_id"].iloc[at].astype(str))
        silences = sale_silences(history[history["unique_id"].astype(str).isin(ids)])
    word = _PERIOD_WORDS.get(freq, "periods")
    one = _PERIOD_WORD.get(freq, "period")
    for i in at:
        r = policy.iloc[i]
        u = str(r["unique_id"])
        if u not in silences.index:
            continue
        when = silences.at[u, "last_sale"]
        since = int(silences.at[u, "silence"])
        q = float(r["service_level"]) if "service_level" in policy.columns else np.nan
        share = f"at most {100 * (1 - q):.3g} %" if np.isfinite(q) else "few"
        oup = float(r["order_up_to"])
        day = pd.Timestamp(when).date().isoformat()
        when_ = _when(one, day)
        last = (f"no sale in the last {since} {word if since != 1 else one} of its history (the last {when_})"
                if since else f"its last sale {when_}")
        how = (f"sized from its own history, whose last {window} {word} hold no sale" if since >= window else
               f"sized from its own history, {share} of its simulated lead times see a sale (the forecast scales the "
               "size of a sale, not how often one comes)")
        out[i] = (f"{last}: {how}, so the reorder point is 0 and " + ("the order-up-to level 0" if oup <= 0 else f"the order-up-to level {oup:.1f}")
                  + f"; the forecast's {float(r['ltd_mean']):.1f} units over the lead time (mean_demand "
                  f"{float(r['mean_demand']):.1f} a {one}) are not stocked for: check that it still sells before "
                  "stocking for the forecast")
    return out


# a series' current silence is long against its own rhythm (``long_silence_notes``) when it is at least
# SILENCE_MIN_PERIODS periods and more than SILENCE_GAP_FACTOR x its longest gap between two sales before
SILENCE_MIN_PERIODS = 13
SILENCE_GAP_FACTOR = 3.0


def sale_silences(history: pd.DataFrame) -> pd.DataFrame:
    """Per series of ``history`` (long ``unique_id, ds, y``, one row per period from the series' start to
    the end of the history, as ``forecaster_history`` gives it) with a sale: ``last_sale`` (its ds),
    ``silence`` (periods after it, to the last period of the history: the forecast origin), ``longest_gap``
    (the most periods without a sale between two of its sales before that; 0 with one sale or none between)
    and ``n_sales``, indexed by ``unique_id`` as text. Periods are positions on the history's grid of dates,
    so a series missing a row still counts it. Sorts once: linear in the rows but for the sort."""
    cols = ["last_sale", "silence", "longest_gap", "n_sales"]
    sold = np.zeros(0, dtype=bool) if history is None else history["y"].to_numpy(dtype=float) > 0
    if not sold.any():
        return pd.DataFrame(columns=cols, index=pd.Index([], name="unique_id"))
    ds = pd.to_datetime(history["ds"]).to_numpy()
    grid = np.unique(ds)
    s = pd.DataFrame({"unique_id": history["unique_id"].astype(str).to_numpy()[sold],
                      "pos": np.searchsorted(grid, ds[sold]), "ds": ds[sold]}).sort_values(["unique_id", "pos"])
    gap = s["pos"].diff().to_numpy() - 1.0
    gap[np.r_[True, s["unique_id"].to_numpy()[1:] != s["unique_id"].to_numpy()[:-1]]] = 0.0  # a series' first sale
    g = s.assign(gap=gap).groupby("unique_id", sort=False)
    out = pd.DataFrame({"last_sale": g["ds"].max(), "silence": len(grid) - 1 - g["pos"].max(),
                        "longest_gap": g["gap"].max().astype(int), "n_sales": g.size()})
    out.index.name = "unique_id"
    return out[cols]


def long_silence(silences: pd.DataFrame, min_periods: int = SILENCE_MIN_PERIODS,
                 factor: float = SILENCE_GAP_FACTOR) -> pd.Series:
    """Per series of ``sale_silences``: is its current silence long against its own rhythm (at least
    ``min_periods`` periods and more than ``factor`` x its longest gap between sales before it)?"""
    sil = silences["silence"].to_numpy(dtype=float)
    return pd.Series((sil >= min_periods) & (sil > factor * silences["longest_gap"].to_numpy(dtype=float)),
                     index=silences.index)


def long_silence_notes(policy: pd.DataFrame, history: pd.DataFrame | None, freq: str | None = None,
                       actions=None, zero_notes: list[str] | None = None,
                       silences: pd.DataFrame | None = None) -> list[str]:
    """Per row of ``policy`` (``InventoryPolicy.policy_``, the CLI's table or the service's sizing, with
    ``unique_id`` and ``order_up_to``; rows without ``ltd_source``, e.g. the CLI's ``no_policy`` rows, are
    left ''): the note of a series silent for long against its own rhythm (``long_silence``), whatever sized
    it, else ''. The note says how long and since which period, against what gaps, and where ``actions``
    (one per row; None or an empty value: no stock known) orders (``replenish`` / ``order``) that the order
    is sized on demand the series has not shown since; without stock, that its reorder point and
    order-up-to level are (when above 0). A row whose ``zero_notes`` entry (``own_history_zero_notes``,
    computed if not given) is set keeps that note alone: it says the same and more. Linear in the rows of
    ``history`` (one sort). ``history`` None: no note."""
    out = [""] * len(policy)
    if (history is None and silences is None) or not len(policy):
        return out
    ids = policy["unique_id"].astype(str)
    if silences is None:  # ``sale_silences`` of the whole history, e.g. computed once by the service at load
        silences = sale_silences(history[history["unique_id"].astype(str).isin(set(ids))])
    if zero_notes is None:
        zero_notes = own_history_zero_notes(policy, history, freq, silences=silences)
    sil = silences.reindex(pd.unique(ids)).dropna(subset=["silence"])  # the rows' series only (the service's
    sil = sil[long_silence(sil)]                                          # silences hold every series)
    flagged = dict(zip(sil.index, sil.itertuples(index=False), strict=True))  # one lookup per row below
    word = _PERIOD_WORDS.get(freq, "periods")
    one = _PERIOD_WORD.get(freq, "period")
    sized = (policy["ltd_source"].notna().to_numpy() if "ltd_source" in policy.columns
             else np.ones(len(policy), dtype=bool))
    acts = [None] * len(policy) if actions is None else list(actions)
    for i, (u, oup, act) in enumerate(zip(ids, policy["order_up_to"].to_numpy(dtype=float), acts, strict=True)):
        r = flagged.get(u)
        if r is None or zero_notes[i] or not sized[i]:
            continue
        n, m = int(r.silence), int(r.longest_gap)
        day = pd.Timestamp(r.last_sale).date().isoformat()
        if int(r.n_sales) < 2:  # no gap to compare with
            text = f"no sale in the last {n} {word} (its only sale {_when(one, day)})"
        else:
            text = (f"no sale in the last {n} {word} (the last {_when(one, day)}), against "
                    + (f"gaps of at most {m} {word if m != 1 else one} before" if m else f"a sale every {one} before"))
        act = act if isinstance(act, str) else None
        if act in ("replenish", "order"):
            text += ": the order is sized on demand the series has not shown since, check that it still sells"
        elif act is None and oup > 0:
            text += (": its reorder point and order-up-to level are sized on demand it has not shown since, "
                     "check that it still sells before stocking for them")
        out[i] = text
    return out


def stopped_series_notes(policy: pd.DataFrame, history: pd.DataFrame | None, freq: str | None = None,
                         actions=None, silences: pd.DataFrame | None = None) -> list[str]:
    """Per row of ``policy``: the note of a series that may have stopped selling, as the CLI's
    ``forecast_note`` and the service's ``note`` say it: ``own_history_zero_notes`` where it applies, else
    ``long_silence_notes`` (''  for the others). One function for both, so they say the same. ``silences``
    (:func:`sale_silences`, the service's computed at load) is computed once here when not given."""
    if silences is None and history is not None and len(policy):
        silences = sale_silences(history[history["unique_id"].astype(str).isin(set(policy["unique_id"].astype(str)))])
    zero = own_history_zero_notes(policy, history, freq, silences=silences)
    quiet = long_silence_notes(policy, history, freq, actions, zero_notes=zero, silences=silences)
    return [z or q for z, q in zip(zero, quiet, strict=True)]
