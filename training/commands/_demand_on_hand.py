"""The stock a safety-stock run advises on: the --on-hand file (``_read_on_hand``), the dates of
its counts (``_stock_dates``, --on-hand-date, the book's as-of date) and what they mean for the
advice (``_say_stock_dates``). Heavy libraries are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from training.errors import ConfigError, DataError

__all__: list[str] = []


def _id_text(col):
    """Ids as text; a Parquet float column of whole numbers (17850.0) as the order book reads it (17850)."""
    import pandas as pd

    if pd.api.types.is_float_dtype(col) and col.notna().all() and (col == col.round()).all():
        return col.astype("int64").astype(str)
    return col.astype(object).where(col.isna(), col.astype(str))


# optional columns of --on-hand beside on_hand (models.inventory.ORDER_RULES): empty = the default
_ORDER_RULE_TEXT = {"on_order": "units ordered and not received yet, >= 0 (empty: 0)",
                    "min_order_qty": "the smallest order, units >= 0 (empty: none)",
                    "order_multiple": "the pack size, units > 0 (empty: 1)"}


def _stock_dates(raw, src: str, as_of: Any) -> Any:
    """The ``snapshot_date`` column of an --on-hand file as ISO dates (None where empty): a date
    YYYY-MM-DD (a time of day is dropped) in every filled cell, none after the book's as-of date
    (``data.as_of``, else today). Raises DataError naming the rows and values."""
    import numpy as np
    import pandas as pd

    from training._validate_dates import resolve_as_of

    text = raw.astype(object).where(raw.notna(), None).map(lambda v: None if v is None else str(v).strip() or None)
    parsed: dict[str, pd.Timestamp | None] = {}
    for v in text.dropna().unique():
        try:
            t = pd.to_datetime(pd.Series([v]), format="ISO8601").iloc[0]
        except (ValueError, TypeError, OverflowError):
            t = None
        if t is not None and t.tzinfo is not None:  # the local date of the count
            t = t.tz_localize(None)
        parsed[v] = None if t is None or pd.isna(t) else t.normalize()
    bad = np.array([v is not None and parsed[v] is None for v in text], dtype=bool)
    if bad.any():
        pos = np.flatnonzero(bad)
        raise DataError(f"{src}: column snapshot_date must be a date like 2024-05-10 (YYYY-MM-DD) or empty; "
                        f"{len(pos)} row(s) are not, first rows {(pos[:5] + 1).tolist()}, e.g. {text.iloc[pos[:3]].tolist()}")
    when = pd.Series([None if v is None else parsed[v] for v in text], index=raw.index, dtype="datetime64[ns]")
    bound = resolve_as_of(as_of)
    late = (when >= bound).fillna(False).to_numpy(dtype=bool)
    if late.any():
        pos = np.flatnonzero(late)
        raise DataError(f"{src}: column snapshot_date is after {_as_of_words(as_of)} in {len(pos)} row(s), first rows "
                        f"{(pos[:5] + 1).tolist()}, e.g. {text.iloc[pos[:3]].tolist()} (a count cannot be dated later)")
    return when.map(lambda t: None if pd.isna(t) else t.date().isoformat()).astype(object)


def _near_misses(columns: list, known: list[str]) -> list[tuple[str, str]]:
    """(column, the known name it looks like) for each column of the file that is not a known name
    but spells one in another case or with other separators (OnOrder, on-order), or nearly
    (on_orders, min_order_quantity); other extra columns (a description, a name) are left alone."""
    import difflib

    from training._sources_columns import column_key

    out = []
    for c in columns:
        if not isinstance(c, str) or c in known:
            continue
        same = [k for k in known if column_key(k) == column_key(c)]
        close = same or difflib.get_close_matches(c.lower(), known, n=1, cutoff=0.8)
        if close and close[0] not in columns:
            out.append((c, close[0]))
    return out


def _as_of_words(as_of: Any) -> str:
    import pandas as pd

    if as_of is None:
        return f"today ({pd.Timestamp.now().date().isoformat()})"
    return f"the book's as-of date {pd.Timestamp(as_of).date().isoformat()} (data.as_of)"


def _read_on_hand(path: Path, keys: list[str] | None = None, *, on_hand_date: Any = None, as_of: Any = None):
    """``unique_id, on_hand`` from a CSV / Parquet file: ids as text, stock a finite number in
    every row (negative = backorders, as in the inventory table), one row per series; optionally
    ``on_order``, ``min_order_qty``, ``order_multiple`` per series, and ``snapshot_date``, the date
    the stock was counted (as the order book's inventory table; ``on_hand_date``, the
    --on-hand-date option, fills the rows without one; returned as ISO text, None = unknown).
    Instead of ``unique_id`` the file may carry the series' key columns (``keys``, e.g. ``sku,
    location``). Raises DataError naming the file, column and rows."""
    import numpy as np
    import pandas as pd

    from models.inventory import ORDER_RULES
    from training.user_files import read_series_table, text_ids

    src = f"--on-hand {path}"
    # the key columns as text too: read as numbers, SKU "007" at location "01" became "7/01"
    oh = read_series_table(path, src, "columns unique_id, on_hand",
                           text_cols=(*(keys or ()), "snapshot_date"))
    if near := _near_misses(list(oh.columns), ["unique_id", "on_hand", *(c for c, *_ in ORDER_RULES), "snapshot_date",
                                               *(keys or ())]):
        # read as no column at all: 500 units 'on_orders' were taken as none on order, and ordered again
        raise DataError(f"{src}: {', '.join(f'column {c!r} is not one dealerml reads; did you mean {k!r}?' for c, k in near)} "
                        "Rename it (the optional columns are on_order, min_order_qty, order_multiple, snapshot_date), or "
                        "the advice is sized without it")
    if "unique_id" not in oh.columns and keys and all(k in oh.columns for k in keys):
        kv = pd.DataFrame({k: _id_text(oh[k]) for k in keys})
        empty = (kv.isna() | kv.apply(lambda c: c.astype(str).str.strip().eq(""))).any(axis=1).to_numpy()
        if empty.any():
            raise DataError(f"{src}: the key columns {keys} are empty in {int(empty.sum())} row(s), first rows "
                            f"{(np.flatnonzero(empty)[:5] + 1).tolist()} (1 = the first data row)")
        # a header-only file has no rows to join: agg over none gave a DataFrame, and insert raised
        # "Expected a one-dimensional object" (a traceback) before the "no rows" message below
        uid = kv.astype(str).agg("/".join, axis=1) if len(kv) else pd.Series([], index=kv.index, dtype=object)
        oh.insert(0, "unique_id", uid)
    elif "unique_id" in oh.columns and keys and all(k in oh.columns for k in keys):
        _check_ids_agree(oh, keys, src)
    miss = [c for c in ("unique_id", "on_hand") if c not in oh.columns]
    if miss:
        also = f" (or the key columns {keys} instead of unique_id)" if keys and "unique_id" in miss else ""
        raise DataError(f"{src}: missing column(s) {miss}{also}; it has {list(oh.columns)}")
    if oh.empty:
        raise DataError(f"{src}: no rows (expected one row per series: unique_id, on_hand)")
    # a stock count exported with '.' grouping thousands (1.500 beside 40) was read as 1.5 units and sized an order
    # for stock that is there (a CSV only: its figures are read as text again)
    from training._sources_export_checks import refuse_dot_grouped_csv

    refuse_dot_grouped_csv(path, [c for c in ("on_hand", *(c for c, *_ in ORDER_RULES)) if c in oh.columns], source=src)
    oh = text_ids(oh, src)
    return _figures(oh, src, path, on_hand_date=on_hand_date, as_of=as_of)


def _figures(oh, src: str, path: Path, *, on_hand_date: Any = None, as_of: Any = None, ids: bool = True):
    """The figures and dates of an --on-hand table (``_read_on_hand`` after its columns and ids):
    on_hand a finite number of units in every row, one row per unique_id (``ids``), the order rules,
    snapshot_date. Raises DataError naming the file, column and rows."""
    import numpy as np
    import pandas as pd

    from models.inventory import ORDER_RULES, order_rule_values
    from training.user_files import comma_note, infinite_note

    for col in ("on_hand", *(c for c, *_ in ORDER_RULES)):
        if col in oh.columns and pd.api.types.is_bool_dtype(oh[col]):  # read as 1 and 0 units
            raise DataError(f"{src}: column {col} must be a number of units; it is a column of true/false values "
                            f"({', '.join(str(v).lower() for v in pd.unique(oh[col].dropna())[:2])}): check the file")
    stock = pd.to_numeric(oh["on_hand"], errors="coerce")
    bad = ~np.isfinite(stock.to_numpy(dtype=float))
    if bad.any():
        pos = np.flatnonzero(bad)
        raise DataError(f"--on-hand {path}: column on_hand must be a number of units in every row "
                        "(negative = backorders); "
                        f"{len(pos)} row(s) are not, first rows {(pos[:5] + 1).tolist()}, e.g. "
                        f"{oh['on_hand'].iloc[pos[:3]].tolist()}{comma_note(oh['on_hand'].iloc[pos])}"
                        f"{infinite_note(oh['on_hand'].iloc[pos])}")
    _refuse_huge(oh["on_hand"], stock, "on_hand", src)
    oh["on_hand"] = stock.astype(float)
    dup = oh["unique_id"].duplicated(keep=False).to_numpy() if ids else np.zeros(len(oh), dtype=bool)
    if dup.any():
        raise DataError(f"--on-hand {path}: {int(dup.sum())} rows repeat a unique_id (one row per series expected), "
                        f"e.g. {oh.loc[dup, 'unique_id'].unique()[:3].tolist()}, first rows {(np.flatnonzero(dup)[:5] + 1).tolist()}")
    rules = []
    for col, default, low, inclusive in ORDER_RULES:
        if col not in oh.columns:
            continue
        raw = oh[col]
        v, empty, bad = order_rule_values(raw, low, inclusive)
        if bad.any():
            pos = np.flatnonzero(bad)
            raise DataError(f"{src}: column {col} must be {_ORDER_RULE_TEXT[col]}; {len(pos)} row(s) are not, first rows "
                            f"{(pos[:5] + 1).tolist()}, e.g. {raw.iloc[pos[:3]].tolist()}{comma_note(raw.iloc[pos])}"
                            f"{infinite_note(raw.iloc[pos])}")
        _refuse_huge(raw, pd.Series(np.where(empty, 0.0, v), index=raw.index), col, src)
        oh[col] = np.where(empty, default, v)
        rules.append(col)
    if "snapshot_date" in oh.columns or on_hand_date is not None:
        dates = (_stock_dates(oh["snapshot_date"], src, as_of) if "snapshot_date" in oh.columns
                 else pd.Series(None, index=oh.index, dtype=object))
        if on_hand_date is not None:  # the file's date, for the rows without their own
            dates = dates.where(dates.notna(), pd.Timestamp(on_hand_date).date().isoformat())
        oh["snapshot_date"] = dates.astype(object)
        rules.append("snapshot_date")
    return oh[["unique_id", "on_hand", *rules]] if ids else oh[["on_hand", *rules]]


def _check_on_hand_early(path: Path, candidates: list[str], *, on_hand_date: Any = None, as_of: Any = None) -> None:
    """Before the order book is loaded (16-49 s on a real book) and the model: what ``_read_on_hand``
    checks that needs no series keys, with its messages. ``candidates`` are the columns the keys may be
    (the config's demand.levels, or its series' unique_id columns); the keys themselves (those of them the
    book has) are known only after the load, so a file naming series by key columns gets its id checks
    (and a missing unique_id) there, by ``_read_on_hand``."""
    from models.inventory import ORDER_RULES
    from training.user_files import read_series_table, text_ids

    src = f"--on-hand {path}"
    oh = read_series_table(path, src, "columns unique_id, on_hand", text_cols=(*candidates, "snapshot_date"))
    cols = list(oh.columns)
    if near := _near_misses([c for c in cols if c not in candidates],
                            ["unique_id", "on_hand", *(c for c, *_ in ORDER_RULES), "snapshot_date"]):
        raise DataError(f"{src}: {', '.join(f'column {c!r} is not one dealerml reads; did you mean {k!r}?' for c, k in near)} "
                        "Rename it (the optional columns are on_order, min_order_qty, order_multiple, snapshot_date), or "
                        "the advice is sized without it")
    if "unique_id" in cols and "on_hand" not in cols:
        raise DataError(f"{src}: missing column(s) ['on_hand']; it has {cols}")
    if oh.empty and "unique_id" in cols:
        raise DataError(f"{src}: no rows (expected one row per series: unique_id, on_hand)")
    if "on_hand" not in cols:
        return
    ids = "unique_id" in cols and not any(c in cols for c in candidates)  # ids as the file gives them
    _figures(text_ids(oh, src) if ids else oh, src, path, on_hand_date=on_hand_date, as_of=as_of, ids=ids)


def _refuse_huge(raw, values, col: str, src: str) -> None:
    """A finite figure beyond MAX_UNITS units (either sign) in ``col``: refused, naming the rows and values.
    1e300 units on hand were advised as 'promote or transfer -9223372036854775808 units' (an integer
    overflow), and 1e200 on order as an order to cut by a number of 200 digits."""
    import numpy as np

    from features.demand import MAX_UNITS

    v = np.asarray(values, dtype="float64")
    over = np.abs(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)) > MAX_UNITS
    if over.any():
        pos = np.flatnonzero(over)
        raise DataError(f"{src}: column {col} holds {len(pos)} value(s) beyond {MAX_UNITS:,.0f} units (either sign), "
                        f"first rows {(pos[:5] + 1).tolist()} (1 = the first data row), e.g. "
                        f"{[str(x).strip() for x in raw.iloc[pos[:3]].tolist()]}; expected a number of units between "
                        f"-{MAX_UNITS:,.0f} and {MAX_UNITS:,.0f}: check those rows (a figure in another unit, or an id "
                        f"in the {col} column)")


def _check_ids_agree(oh, keys: list[str], src: str) -> None:
    """A file with both ``unique_id`` and the key columns: refused, naming the rows, where they name
    different series (unique_id won without a word, so the stock of 'SKU1/DC2' counted at DC1 by
    its location column went to DC2). Rows whose key columns are empty are named by unique_id."""
    import numpy as np
    import pandas as pd

    if oh.empty:
        return
    kv = pd.DataFrame({k: _id_text(oh[k]) for k in keys})
    filled = ~(kv.isna() | kv.apply(lambda c: c.astype(str).str.strip().eq(""))).any(axis=1)
    joined = kv.astype(str).apply(lambda c: c.str.strip()).agg("/".join, axis=1)
    uid = oh["unique_id"].astype(str).str.strip()
    differ = (filled & oh["unique_id"].notna() & (joined != uid)).to_numpy()
    if differ.any():
        pos = np.flatnonzero(differ)
        eg = "; ".join(f"row {i + 1}: unique_id {uid.iloc[i]!r} but {'/'.join(keys)} {joined.iloc[i]!r}" for i in pos[:3])
        raise DataError(f"{src}: the columns unique_id and {', '.join(keys)} name different series in {len(pos)} "
                        f"row(s), first rows {(pos[:5] + 1).tolist()} (1 = the first data row): {eg}; expected "
                        f"unique_id = {'/'.join(keys)} joined with '/' in every row: correct those rows, or keep "
                        f"only unique_id or only the key columns")


def _on_hand_date(value: str | None, on_hand: Path | None):
    """--on-hand-date as a midnight (None when not given); refused without --on-hand."""
    if value is None:
        return None
    if on_hand is None:
        raise ConfigError("--on-hand-date is the date of the stock in --on-hand FILE; give --on-hand too "
                          "(the order book's inventory carries its own snapshot_date)")
    from training.data import parse_cutoff

    return parse_cutoff(value, "--on-hand-date")


def _book_as_of(config: Path | None) -> Any:
    """The config's data.as_of (None: today bounds the dates)."""
    if config is None:
        return None
    from training.config import load_config

    data = getattr(load_config(config), "data", None)
    return getattr(data, "as_of", None)


def _say_stock_dates(table, est, freq: str, last, on_hand: Path | None, oh) -> None:
    """What the on-hand dates mean for the advice: rows whose count is more than one period from
    the sizing's start get it said in their suggestion (``models.inventory.stock_date_notes``)
    and counted on the console; stock of unknown date is said to be taken as at the start."""
    import pandas as pd

    from models.inventory import forecast_offset, sizing_start, stock_date_notes

    offset = forecast_offset(est, freq)
    start = sizing_start(last, offset)[0].date().isoformat()
    held = table["on_hand"].notna().to_numpy()
    notes = pd.Series(stock_date_notes(table["on_hand_date"].where(held, None), last, offset), index=table.index)
    if "suggestion" in table.columns:
        old = table["suggestion"].fillna("").astype(str)
        table["suggestion"] = old.where(notes.eq(""), (old + "; ").where(old.ne(""), "") + notes)
    for word, what in (("before", "more than one period before"), ("after", "a period or more after")):
        at = notes.str.contains(f" days {word} the sizing starts", regex=False).to_numpy()
        if at.any():
            eg = dict(zip(table.loc[at, "unique_id"].astype(str)[:3], table.loc[at, "on_hand_date"][:3], strict=True))
            why = ("demand since the count is not subtracted" if word == "before" else
                   "the forecast's first periods count demand the stock has already met")
            typer.echo(f"on-hand of {int(at.sum())} series was counted {what} the sizing starts ({start}; "
                       f"last_observed {last.date()}): {why}; their suggestion says when, e.g. {eg}", err=True)
    unknown = held & table["on_hand_date"].isna().to_numpy()
    if not unknown.any():
        return
    if on_hand is not None and "snapshot_date" not in oh.columns:
        typer.echo(f"the date of the stock in --on-hand {on_hand} is unknown (no snapshot_date column, no "
                   f"--on-hand-date): on_hand_date is empty and the advice takes it as the stock at the sizing "
                   f"start {start}", err=True)
    else:
        source = (f"its snapshot_date is empty in --on-hand {on_hand}" if on_hand is not None
                  else "the order book's inventory gives no snapshot_date")
        typer.echo(f"the date of the stock of {int(unknown.sum())} series is unknown ({source}), e.g. "
                   f"{table.loc[unknown, 'unique_id'].astype(str).head(3).tolist()}: on_hand_date is empty and the "
                   f"advice takes it as the stock at the sizing start {start}", err=True)


def _key_candidates(config: Path | None) -> list[str]:
    """The columns a series' keys may be, from the config alone: demand.levels and a demand.series
    table's unique_id columns (the book's own columns decide which of them are keys, after its load)."""
    if config is None:
        return []
    from training.config import load_config
    from training.demand_config import demand_settings

    s = demand_settings(load_config(config))
    ids = (s.series.columns or {}).get("unique_id") if s.series is not None else None
    return list(dict.fromkeys([*map(str, s.levels), *(map(str, ids) if isinstance(ids, list) else ())]))
