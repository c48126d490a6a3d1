"""Planned known-future drivers (price, promotion, ...) for ``dealerml forecast --future FILE``.

A planner's file holds ``unique_id, ds`` and one or more of the forecaster's driver columns for
the periods ahead, e.g. the promotions planned for next quarter. Rows given replace the
forecaster's default for that series and period (each series' last known value carried
forward, :meth:`models.demand.DemandForecaster.future_drivers`); an empty cell keeps the default.
Everything else is an error naming the file, column, rows and values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.errors import DataError
from training.user_files import comma_note, first_rows, read_series_table, text_ids

_MAX_SHOWN = 5


def read_future_drivers(path: Path, template: pd.DataFrame, option: str = "--future") -> tuple[pd.DataFrame, dict]:
    """``template`` (``unique_id, ds`` + driver columns, every series x future period) with the
    file's planned values laid over it. Returns (the merged table, a summary: rows, series,
    drivers given, and ``planned``: the file's rows as read). Raises DataError naming the file,
    column and rows of any problem."""
    path = Path(path)
    src = f"{option} {path}"
    drivers = [c for c in template.columns if c not in ("unique_id", "ds")]
    df = read_series_table(path, src, f"columns unique_id, ds and any of {drivers}")
    miss = [c for c in ("unique_id", "ds") if c not in df.columns]
    if miss:
        raise DataError(f"{src}: missing column(s) {miss}; it has {list(df.columns)} (expected unique_id, ds and "
                        f"any of the model's drivers {drivers})")
    extra = [c for c in df.columns if c not in ("unique_id", "ds", *drivers)]
    if extra:
        raise DataError(f"{src}: column(s) {extra} are not drivers of this forecaster; its drivers are {drivers}")
    given = [c for c in drivers if c in df.columns]
    if not given:
        raise DataError(f"{src}: no driver column; give any of {drivers} beside unique_id, ds")
    if df.empty:
        raise DataError(f"{src}: no rows (expected one row per series and planned period)")
    df = text_ids(df, src)
    if pd.api.types.is_numeric_dtype(df["ds"]):
        raise DataError(f"{src}: column ds holds numbers ({df['ds'].iloc[0]!r}, ...); expected dates such as "
                        f"{pd.Timestamp(template['ds'].iloc[0]).date()}")
    # 01/02/2018 is read in the order the values settle, as in the order book and series tables;
    # undecided or mixed orders stop (read month first it would silently plan the wrong period)
    dayfirst = False
    if not pd.api.types.is_datetime64_any_dtype(df["ds"]):
        from training._validate_columns import _to_str
        from training._validate_dates import _day_month_order

        dayfirst = _day_month_order(_to_str(df["ds"]), None, col="ds", table="plan", source=src, mapping={},
                                    remedy="write ds as ISO dates (2024-03-31)")
    raw_ds = df["ds"]
    if not pd.api.types.is_datetime64_any_dtype(raw_ds):  # a UTC offset is dropped, keeping the wall clock
        raw_ds = raw_ds.astype("string").str.strip().str.replace(r"(?:Z|[+-]\d\d:?\d\d)$", "", regex=True)
    ds = pd.to_datetime(raw_ds, errors="coerce", format="mixed", dayfirst=dayfirst)
    if getattr(ds.dt, "tz", None) is not None:
        # the plan's wall-clock dates (docs/DATA.md): tz_convert(None) moved Tokyo's Monday 00:00 to
        # Sunday 15:00 UTC, and the plan was refused as "outside the forecast periods"
        ds = ds.dt.tz_localize(None)
    bad = ds.isna().to_numpy()
    if bad.any():
        raise DataError(f"{src}: column ds is not a date in {int(bad.sum())} row(s), first rows {first_rows(bad)} "
                        f"(values {df['ds'][bad].head(3).tolist()})")
    df["ds"] = ds
    known = pd.Index(template["unique_id"].unique())
    unknown = ~df["unique_id"].isin(known).to_numpy()
    if unknown.any():
        names = sorted(set(df.loc[unknown, "unique_id"]))
        raise DataError(f"{src}: {len(names)} unique_id(s) the forecaster does not know, e.g. {names[:_MAX_SHOWN]} "
                        f"(rows {first_rows(unknown)}); its series look like {known[:3].tolist()}")
    dates = pd.DatetimeIndex(template["ds"].unique()).sort_values()
    off = ~df["ds"].isin(dates).to_numpy()
    if off.any():
        raise DataError(f"{src}: column ds has {int(off.sum())} date(s) outside the forecast periods, first rows "
                        f"{first_rows(off)} (values {[str(d.date()) for d in df.loc[off, 'ds'].head(3)]}); the forecaster "
                        f"forecasts {len(dates)} periods: {[str(d.date()) for d in dates[:4]]}"
                        f"{' ...' if len(dates) > 4 else ''}")
    dup = df.duplicated(["unique_id", "ds"], keep=False).to_numpy()
    if dup.any():
        raise DataError(f"{src}: {int(dup.sum())} rows repeat a (unique_id, ds) pair, first rows {first_rows(dup)}; give "
                        "one row per series and period")
    for c in given:
        raw = df[c]
        num = pd.to_numeric(raw, errors="coerce")
        text = (num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")).to_numpy()
        inf = ~np.isfinite(num.fillna(0.0).to_numpy(dtype=float))
        if text.any() or inf.any():
            badc = text | inf
            raise DataError(f"{src}: column {c} is not a finite number in {int(badc.sum())} row(s), first rows "
                            f"{first_rows(badc)} (values {raw[badc].head(3).tolist()}){comma_note(raw[text])}; leave a "
                            "cell empty to keep the last known value")
        df[c] = num
    out = template.set_index(["unique_id", "ds"])
    plan = df.set_index(["unique_id", "ds"])[given]
    out.update(plan)  # NaN (empty cells) in the plan keeps the default
    set_cells = plan.notna()
    # planned: the file's rows as read (unique_id, ds, its drivers; NaN: empty cell), for checks of the
    # values the planner set (DemandForecaster.driver_range_warnings), not the carried-forward ones
    summary = {"rows": int(len(df)), "series": int(df["unique_id"].nunique()), "of_series": int(len(known)),
               "drivers": given, "cells": int(set_cells.to_numpy().sum()),
               "planned": df[["unique_id", "ds", *given]].reset_index(drop=True)}
    return out.reset_index()[template.columns], summary
