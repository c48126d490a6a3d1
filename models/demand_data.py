"""Checking and shaping a long ``unique_id, ds, y`` demand table into a regular panel.

Demand tables often omit periods without sales, so a missing period inside or after a
series counts as zero demand (and is reported). Exogenous numeric columns are carried
forward over filled periods. Nothing here drops rows silently: what is filled or left out
is listed in ``Panel.notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.demand import MAX_UNITS, period_alias

__all__ = ["Panel", "build_panel", "panel_as_of", "period_end", "check_series_table", "infer_offset", "to_numbers", "DEFAULT_SEASON", "TIME_ONLY_RE"]

# a time of day alone ('08:26', '8:26:00.5', '10:00 PM'), surrounding spaces allowed: no date, though
# pandas reads it as today at that time. The one definition: the order-book loader
# (training/_validate_dates.py) and `data validate --as-of` use it too.
TIME_ONLY_RE = r"\s*\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[AaPp]\.?[Mm]\.?)?\s*"

DEFAULT_SEASON = {"D": 7, "W": 52, "M": 12}
_PERIOD = {"D": "D", "W": "W-SUN", "M": "M"}
_ID_COLS = ("unique_id", "ds", "y")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _plain(v: object) -> str:
    """A value as a user would write it in a message: ``-5.0``, ``inf``, ``2024-01-07`` (with the
    time only when it has one), ``'abc'`` for text; never numpy's / pandas' repr."""
    import datetime as _dt
    import numbers

    if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float | np.floating) and np.isnan(v)):
        return "empty"
    if isinstance(v, bool | np.bool_):
        return str(bool(v)).lower()
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(v))
    if isinstance(v, _dt.datetime | np.datetime64):
        t = pd.Timestamp(v)
        if t == t.normalize():
            return t.strftime("%Y-%m-%d")
        return str(t) if t.second or t.microsecond or t.nanosecond else t.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, _dt.date):
        return v.isoformat()
    return repr(str(v))


def to_numbers(values: pd.Series) -> pd.Series:
    """``pd.to_numeric(values, errors="coerce")``, except that a number beyond float range written as
    text (``1e999``, which pandas reads as no number) is inf, as ``inf`` / ``-Infinity`` already are:
    messages then say it is infinite rather than not a number."""
    num = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return num
    todo = np.flatnonzero(num.isna().to_numpy() & values.notna().to_numpy())
    if not len(todo):
        return num
    num = num.astype("float64")

    def big(v: object) -> float:
        try:
            f = float(str(v).strip())
        except (TypeError, ValueError):
            return float("nan")
        return f if np.isinf(f) else float("nan")  # only the infinities pandas missed, nothing else new

    fixed = np.array([big(v) for v in values.iloc[todo].tolist()], dtype="float64")
    if np.isinf(fixed).any():
        arr = num.to_numpy(copy=True)
        arr[todo] = fixed
        num = pd.Series(arr, index=values.index)
    return num


def infer_offset(ds: pd.Series, freq: str) -> str:
    """The pandas offset that steps the dates of ``ds`` (e.g. ``W-MON``, ``MS``, ``ME``)."""
    f = period_alias(freq)
    d = pd.DatetimeIndex(ds.drop_duplicates())
    if f == "D":
        return "D"
    if f == "W":
        days = pd.Index(d.dayofweek).unique()
        if len(days) != 1:
            names = ", ".join(_WEEKDAYS[int(x)] for x in sorted(days.tolist()))
            eg = ", ".join(_plain(d[d.dayofweek == int(x)][0]) for x in sorted(days.tolist())[:3])
            raise ValueError(f"weekly series must all fall on one weekday; ds has {names} (e.g. {eg})")
        return "W-" + _WEEKDAYS[int(days[0])][:3].upper()
    if (d.day == 1).all():
        return "MS"
    if d.is_month_end.all():
        return "ME"
    bad = d[(d.day != 1) & ~d.is_month_end][:3]
    raise ValueError(
        f"monthly ds must be the first or the last day of a month; got e.g. {', '.join(_plain(x) for x in bad)}"
    )


@dataclass
class Panel:
    """A regular panel: ``Y`` (n series x T periods, NaN before a series starts), drivers ``X``."""

    uids: np.ndarray
    dates: pd.DatetimeIndex
    Y: np.ndarray
    X: np.ndarray | None
    exog: list[str]
    keys: pd.DataFrame | None
    freq: str
    offset: str
    notes: dict[str, list[dict]] = field(default_factory=lambda: {"skipped": [], "filled": []})

    @property
    def n(self) -> int:
        return len(self.uids)

    def starts(self) -> np.ndarray:
        """Index of the first observed period of each series."""
        return np.argmax(np.isfinite(self.Y), axis=1)

    def long(self, upto: int, codes: bool = False) -> pd.DataFrame:
        """Long ``unique_id, ds, y`` table of every observed period with index <= upto;
        ``codes=True`` gives the row number in ``uids`` as ``unique_id`` (same order, no strings
        to hash: much cheaper to group at 100k series)."""
        sub = self.Y[:, : upto + 1]
        ii, tt = np.nonzero(np.isfinite(sub))
        return pd.DataFrame({"unique_id": ii if codes else self.uids[ii], "ds": self.dates[tt], "y": sub[ii, tt]})

    def subset(self, mask: np.ndarray) -> Panel:
        return Panel(
            uids=self.uids[mask],
            dates=self.dates,
            Y=self.Y[mask],
            X=None if self.X is None else self.X[mask],
            exog=self.exog,
            keys=None if self.keys is None else self.keys.loc[mask].reset_index(drop=True),
            freq=self.freq,
            offset=self.offset,
            notes=self.notes,
        )


def _checked_rows(df: pd.DataFrame, f: str, exog: Sequence[str] | None,
                  key_columns: Sequence[str]) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """The row checks of :func:`build_panel`: ``(work, exog, period ordinals)`` or a ValueError
    naming the rows that break a rule, counted in ``df`` as given (1 = its first row)."""
    missing = [c for c in _ID_COLS if c not in df.columns]
    if missing:
        raise ValueError(f"the series table needs columns {list(_ID_COLS)}; missing {missing}; it has {list(df.columns)}")
    key_columns = [c for c in key_columns if c in df.columns]
    if exog is None:
        exog = [
            c
            for c in df.columns
            if c not in _ID_COLS and c not in key_columns and pd.api.types.is_numeric_dtype(df[c])
        ]
    else:
        bad = [c for c in exog if c not in df.columns]
        if bad:
            raise ValueError(f"exogenous column(s) {bad} not in the series table; it has {list(df.columns)}")
    exog = list(exog)
    if len(df) == 0:
        raise ValueError("the series table has no rows")
    work = df[[*_ID_COLS, *key_columns, *exog]].copy()

    _broken = _broken_rows
    uid_raw = work["unique_id"]
    _broken("unique_id", (uid_raw.isna() | (uid_raw == "")).to_numpy(), "must not be empty (one id per series)")
    work["unique_id"] = uid_raw.astype(str)
    ds_raw = work["ds"]
    work["ds"] = parse_ds_column(ds_raw)
    y_raw = work["y"]
    if pd.api.types.is_bool_dtype(y_raw):  # read as 1 and 0: a flag column taken for the demand
        raise ValueError(f"column y must be a number (demand in units); it is a column of true/false values "
                         f"({', '.join(str(v).lower() for v in pd.unique(y_raw.dropna())[:2])}): check which "
                         "column is read as y")
    work["y"] = to_numbers(y_raw)
    # the checks compare float64: a nullable Int64 / Float64 y (Parquet) kept pd.NA, and ``pd.NA < 0``
    # made the masks raise "boolean value of NA is ambiguous" (a traceback) instead of reading it as missing
    y_num = work["y"].astype("float64")
    if not pd.api.types.is_numeric_dtype(y_raw):
        txt = y_raw.astype("string").str.strip()
        bad = (work["y"].isna() & txt.notna() & (txt != "")).to_numpy()
        comma = bad.any() and bool(txt[bad].str.fullmatch(r"-?\d+,\d+").fillna(False).mean() > 0.5)
        _broken("y", bad, "must be a number (demand in units)"
                + ("; these are written with a decimal comma: series tables take '.' as the decimal mark" if comma else ""),
                y_raw)
    for name, mask, rule in (
        ("ds", work["ds"].isna(), "must be a date"),
        ("y", ~np.isfinite(y_num.fillna(0.0)), "must be a finite number (demand in units), not inf or -inf"),
        ("y", y_num < 0, "must be >= 0 (demand in units)"),
        # finite but so large that the bands' squared errors and the stock simulation overflow (1e300: inf orders)
        ("y", y_num.where(np.isfinite(y_num), 0.0) > MAX_UNITS,
         f"must be at most {MAX_UNITS:,.0f} (demand in units per period)"),
    ):
        _broken(name, mask.to_numpy(), rule, work["y"] if name == "y" else ds_raw)
    work["y"] = y_num
    for c in exog:
        work[c] = to_numbers(work[c]).astype("float64")
        # an infinite driver was fed to LightGBM as is (and carried forward over filled periods)
        _broken(c, np.isinf(work[c].to_numpy()),
                "must be a finite number (a driver; leave a cell empty when unknown), not inf or -inf", work[c])
    # integer codes for series and periods: the duplicate check and the panel fill below work
    # on int64 arrays (hashing strings / periods row by row dominated at 100k series)
    per_ord = work["ds"].dt.to_period(_PERIOD[f]).array.asi8
    codes, _ = pd.factorize(work["unique_id"], sort=False)
    span = int(per_ord.max() - per_ord.min()) + 1
    dup = pd.Series(codes.astype(np.int64) * span + (per_ord - per_ord.min()), index=work.index).duplicated(keep=False)
    if dup.any():
        pos = np.flatnonzero(dup.to_numpy())
        first = ", ".join(f"row {i + 1} (unique_id {_plain(work['unique_id'].iloc[i])}, ds {_plain(work['ds'].iloc[i])})"
                          for i in pos[:3])
        raise ValueError(
            f"{int(dup.sum())} rows share a unique_id and a {f} period (one row per series and period "
            f"expected); first: {first}"
        )
    return work, exog, per_ord


def check_series_table(df: pd.DataFrame, freq: str, *, exog: Sequence[str] | None = None,
                       key_columns: Sequence[str] = ()) -> None:
    """The row checks of :func:`build_panel` alone (ids, ds, y, drivers, one row per series and
    period), without building the panel: a caller that keeps some series only (``top_n``) runs
    them on the table as read first, so a message's rows are the file's rows (1 = the first
    data row) and the ranking sums valid demand only."""
    _checked_rows(df, period_alias(freq), exog, key_columns)


def build_panel(
    df: pd.DataFrame,
    freq: str,
    *,
    exog: Sequence[str] | None = None,
    key_columns: Sequence[str] = (),
    drop_all_zero: bool = True,
) -> Panel:
    """Validate a long demand table and return a regular :class:`Panel`.

    Raises ``ValueError`` naming the column, the rule, how many rows break it and the first
    of them. Series whose demand is all zero are left out and listed in ``notes['skipped']``
    (unless ``drop_all_zero`` is False); periods missing inside or after a series are filled
    with zero demand and listed in ``notes['filled']``.
    """
    f = period_alias(freq)
    work, exog, per_ord = _checked_rows(df, f, exog, key_columns)
    work["_p"] = per_ord
    offset = infer_offset(work["ds"], f)
    notes: dict[str, list[dict]] = {"skipped": [], "filled": []}

    nan_y = work["y"].isna()
    work = work.loc[~nan_y]
    if drop_all_zero:
        tot = work.groupby("unique_id")["y"].sum()
        zero = tot.index[tot <= 0]
        for u in zero:
            notes["skipped"].append({"unique_id": u, "reason": "all zero demand"})
        work = work.loc[~work["unique_id"].isin(zero)]
    if work.empty:
        raise ValueError("no series with demand left in the table (all empty or all zero)")

    p_ord = work["_p"].to_numpy()
    T = int(p_ord.max() - p_ord.min()) + 1
    dates = pd.date_range(work["ds"].min(), periods=T, freq=offset)
    inv, uids = pd.factorize(work["unique_id"], sort=True)  # sorted ids, as np.unique gives
    uids = np.asarray(uids)
    col = (p_ord - p_ord.min()).astype(np.int64)
    Y = np.full((len(uids), T), np.nan)
    Y[inv, col] = work["y"].to_numpy()
    starts = np.argmax(np.isfinite(Y), axis=1)
    after_start = np.arange(T)[None, :] >= starts[:, None]
    holes = after_start & ~np.isfinite(Y)
    n_holes = holes.sum(axis=1)
    for i in np.nonzero(n_holes)[0]:
        notes["filled"].append(
            {"unique_id": str(uids[i]), "periods_filled": int(n_holes[i]), "reason": "missing periods counted as zero demand"}
        )
    Y[holes] = 0.0
    X = None
    if exog:
        X = np.full((len(uids), T, len(exog)), np.nan)
        for k, c in enumerate(exog):
            X[inv, col, k] = work[c].to_numpy()
            X[:, :, k] = _ffill_bfill(X[:, :, k])
    keys = None
    if key_columns:
        keys = work.drop_duplicates("unique_id").set_index("unique_id").loc[uids, key_columns].reset_index()
    return Panel(uids=uids.astype(object), dates=dates, Y=Y, X=X, exog=exog, keys=keys, freq=f, offset=offset, notes=notes)


def period_end(panel: Panel, c: int) -> pd.Timestamp:
    """The first instant after period index ``c`` of ``panel`` (the next period's start, e.g. the
    Monday after a weekly cutoff): the instant a ``history_as_of`` callable is asked about."""
    if c + 1 < len(panel.dates):
        return panel.dates[c + 1]
    return panel.dates[c] + pd.tseries.frequencies.to_offset(panel.offset)


def panel_as_of(panel: Panel, upto: int, df: pd.DataFrame | None) -> Panel:
    """``panel`` with its periods up to index ``upto`` as ``df`` gives them: a long table of the same
    series as their history stood when period ``upto`` ended (an order book whose cancellations dated
    later had not yet netted the lines they cancel; ``OrderBook.demand_lines_as_of``). Later periods,
    the series and the dates are ``panel``'s; rows of ``df`` after ``upto`` or of series ``panel`` does
    not have are not read (a series whose every line a later cancellation took is not in ``panel``: it
    has no demand to forecast there). ``panel`` itself when ``df`` is None or changes nothing, so a
    caller can tell (``is``) whether the history it forecasts from differs."""
    if df is None or not len(df):
        return panel
    last = panel.dates[upto]
    df = df.loc[(pd.to_datetime(df["ds"]) <= last) & df["unique_id"].isin(set(panel.uids))]
    if not len(df):
        return panel
    exog = [c for c in panel.exog if c in df.columns] if panel.X is not None else []
    vin = build_panel(df[["unique_id", "ds", "y", *exog]], panel.freq, exog=exog, drop_all_zero=False)
    rows = pd.Index(panel.uids).get_indexer(vin.uids)
    cols = panel.dates.get_indexer(vin.dates)
    if (rows < 0).any() or (cols < 0).any() or (cols > upto).any():
        raise ValueError(f"the history as of {last.date()} has periods or series outside the panel's "
                         f"({int((cols < 0).sum())} dates not on its {panel.offset} grid)")
    Y = panel.Y.copy()
    block = Y[np.ix_(rows, cols)]
    have = np.isfinite(vin.Y)
    block[have] = vin.Y[have]  # a period the later book does not have (no sale then) keeps its NaN/0
    Y[np.ix_(rows, cols)] = block
    X = panel.X
    if exog:
        X = panel.X.copy()
        for k, c in enumerate(exog):
            j = panel.exog.index(c)
            xb = X[:, :, j][np.ix_(rows, cols)]
            xb[have] = vin.X[:, :, k][have]
            X[np.ix_(rows, cols, [j])] = xb[:, :, None]
    if np.array_equal(Y, panel.Y, equal_nan=True) and (X is panel.X or np.array_equal(X, panel.X, equal_nan=True)):
        return panel
    return Panel(uids=panel.uids, dates=panel.dates, Y=Y, X=X, exog=panel.exog, keys=panel.keys, freq=panel.freq,
                 offset=panel.offset, notes=panel.notes)


def _broken_rows(name: str, mask: np.ndarray, rule: str, raw: pd.Series | None = None) -> None:
    # rows are numbered from 1 = the first data row (as `dealerml data validate` counts them)
    if mask.any():
        pos = np.flatnonzero(mask)
        eg = f", e.g. {', '.join(_plain(raw.iloc[i]) for i in pos[:3])}" if raw is not None else ""
        raise ValueError(f"column {name} {rule}: {len(pos)} row(s) break it, first rows {(pos[:5] + 1).tolist()}{eg}")


def parse_ds_column(ds_raw: pd.Series) -> pd.Series:
    """A series table's ``ds`` as naive timestamps, as the forecaster reads it (text, dates or
    timestamps; a UTC offset is dropped). Raises ValueError naming the rows it cannot read."""
    if pd.api.types.is_numeric_dtype(ds_raw) or pd.api.types.is_bool_dtype(ds_raw):
        raise ValueError(f"column ds must hold dates like 2024-03-31; it holds numbers ({ds_raw.dtype}), "
                         f"e.g. {', '.join(_plain(v) for v in ds_raw.head(3))}")
    ds = ds_raw if pd.api.types.is_datetime64_any_dtype(ds_raw) else _parse_ds(ds_raw, _broken_rows)
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_localize(None)
    if ds.dtype != "datetime64[ns]":  # Parquet ms / us timestamps: outside 1677..2262 they do not fit the panel
        _broken_rows("ds", ~(ds.isna() | ((ds >= pd.Timestamp.min) & (ds <= pd.Timestamp.max))).to_numpy(),
                     f"must be a date between {pd.Timestamp.min:%Y-%m-%d} and {pd.Timestamp.max:%Y-%m-%d}", ds)
    return ds


def _parse_ds(raw: pd.Series, broken) -> pd.Series:
    """Text dates -> naive timestamps: ISO 8601 first, else pandas' inference for the whole
    column; a UTC offset is dropped, keeping the wall-clock time (as the order book does).
    ``broken(name, mask, rule, raw)`` raises for the rows that neither reads."""
    import warnings

    text = raw.astype("string").str.strip()
    text = text.str.replace(r"(?:Z|[+-]\d\d:?\d\d)$", "", regex=True)
    empty = (text.isna() | (text == "")).to_numpy()
    # a time of day alone ('08:26') is no date: pandas would read it as today at that time
    text = text.mask(text.str.fullmatch(TIME_ONLY_RE).fillna(False))
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    if (parsed.isna().to_numpy() & ~empty).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            guess = pd.to_datetime(text, errors="coerce")
        if guess.notna().sum() > parsed.notna().sum():
            parsed = guess
    broken("ds", parsed.isna().to_numpy() & ~empty,
           "must be a date like 2024-03-31 (ISO 8601 is read first, else one layout inferred for the whole column)", raw)
    return parsed


def _ffill_bfill(A: np.ndarray) -> np.ndarray:
    """Forward- then back-fill NaNs along axis 1 of a 2-D array."""
    df = pd.DataFrame(A.T)
    return df.ffill().bfill().to_numpy().T
