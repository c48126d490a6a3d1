"""The ``demand:`` section of an experiment config and loading the demand series it names.

Two ways to get series:
- from the order book (``data.order_lines`` via ``training.data.load_order_book``), turned into
  ``unique_id, ds, y`` by ``features.demand.demand_series`` at ``freq`` for the ``levels`` keys;
- from a ready long table, ``demand.series``: a CSV / Parquet file whose columns are mapped with
  ``columns`` (``unique_id`` may be a list of columns joined with ``/``) and whose known-future
  drivers are listed in ``exog`` (``{name in dealerml: column in the file}``).

Example (experiments/stallion.yaml)::

    demand:
      freq: M
      horizon: 6
      series:
        path: ../shared/data/stallion/stallion.parquet
        columns: {unique_id: [agency, sku], ds: date, y: volume}
        exog: {price: price_actual, promo: discount_in_percent}

Cost (``profile``): ``full`` runs all seven statsforecast members (AutoETS, AutoTheta, ...) with
their own intervals, ~0.23 CPU-s per weekly series for a 2-window backtest; ``fast`` runs the
cheap members (SeasonalNaive, CrostonSBA, TSB, IMAPA, ADIDA) + LightGBM for point forecasts and
calibrates every member's intervals on the selection windows (split conformal), an order of
magnitude cheaper; ``auto`` (default) is fast above ``fast_above`` series (5,000). ``models``
still overrides the members in either profile; ``n_jobs: 2`` splits statsforecast over 2
processes. Figures: BENCHMARKS.md, "Speed and memory".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from training._config_numbers import NoBoolNumbers
from training._demand_lgbm_settings import LgbmSettings
from training._demand_promotions import _planned_promo, _promo_calendar, _promo_for
from training._demand_stock_tables import _lead_times, on_hand_by_series, on_hand_dates_by_series
from training.errors import ConfigError, DataError

# what load_demand_series' info holds besides data a report records: functions of the run (its history as of an
# instant, its planned drivers for h periods), left out of JSON reports (training.commands, bench)
INFO_FUNCTIONS = ("as_of", "planned_drivers", "promo_for")

__all__ = ["INFO_FUNCTIONS", "SeriesSource", "DemandSettings", "LgbmSettings", "demand_settings", "keep_top_series", "load_demand_series",
           "read_series_file"]


class SeriesSource(BaseModel):
    """A ready long demand table on disk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    columns: dict[str, str | list[str]] = Field(default_factory=dict)
    exog: dict[str, str] = Field(default_factory=dict)
    carry_forward: list[str] = Field(
        default_factory=list,
        description="drivers (names under exog) recorded from the sales, 0 or empty in periods without demand (a "
                    "realized price): there they take the series' last value from a period with demand, as a "
                    "planner's plan would (training.demand_driver_leaks.carry_over_unsold)")

    @model_validator(mode="after")
    def _carried_are_drivers(self) -> SeriesSource:
        unknown = [n for n in self.carry_forward if n not in self.exog]
        if unknown:
            raise ValueError(f"carry_forward {unknown}: not drivers under exog (its names are {sorted(self.exog)})")
        return self


class DemandSettings(NoBoolNumbers):
    """Validated ``demand:`` section; every key optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    freq: Literal["D", "W", "M"] = "W"
    horizon: int = Field(8, ge=1, le=520)
    windows: int = Field(2, ge=1, le=52)
    step: int | None = Field(None, ge=1)
    levels: list[str] = Field(default_factory=lambda: ["sku", "location"])
    top_n: int | None = Field(None, ge=1, description="keep the N series with the largest total demand")
    cutoff: str | None = None
    models: list[str] | None = Field(None, description="members; default: the profile's (all seven "
                                     "statsforecast models + LightGBM for full, the cheap ones + LightGBM for fast)")
    profile: Literal["full", "fast", "auto"] = Field(
        "auto", description="full | fast | auto (= fast when the table has more than fast_above series)")
    fast_above: int = Field(5000, ge=0, description="series count above which profile auto runs fast")
    selection: Literal["class", "series", "global", "class+median", "series+median", "global+median"] = Field(
        "class", description="choice per demand class / series / overall; '+median': re-centre on the median error")
    selection_windows: int = Field(2, ge=1, le=12)
    season_length: int | None = Field(None, ge=1)
    min_train: int | None = Field(None, ge=2)
    short_history: Literal["fallback", "skip"] = Field(
        "fallback", description="series with demand but fewer than min_train periods: fallback = a forecast from "
        "the mean of their last short_window periods with a calibrated band (final_model ShortHistory; safety "
        "stock sized from it); skip = no forecast (no_policy rows). With hierarchy only when every bottom series "
        "is short (a young book: every level on the fallback, parents the sums); otherwise its bottom level skips them")
    short_window: int = Field(4, ge=1, le=520, description="periods the short-history fallback averages (the last ones)")
    lgbm: LgbmSettings = Field(default_factory=LgbmSettings)
    n_jobs: int = Field(1, ge=1, le=64, description="statsforecast worker processes")
    hierarchy: bool = Field(False, description="forecast every level of `levels` (total -> first key -> ... -> "
                            "bottom; for demand.series: the unique_id key columns) and make them coherent "
                            "(dealerml backtest demand / forecast)")
    reconcile: Literal["bottom_up", "mint_ols", "mint_wls"] = Field(
        "bottom_up", description="bottom_up keeps the bottom level's own forecast; MinTrace (mint_ols, mint_wls) "
        "moved Stallion's bottom level 1.3-27x worse in MASE on validation (BENCHMARKS.md)")
    series: SeriesSource | None = None
    drivers: list[Literal["price", "promo"]] = Field(
        default_factory=list,
        description="order-book series only: period price / promo share to use as known-future drivers. "
        "Off by default: a realised price only exists in periods with a sale, so using it as a "
        "'known' future value leaks whether a sale happened.",
    )
    # inventory policy
    include_lines_without_account: bool = Field(
        True, description="order-book series only: count the order lines whose account_id is empty (sales to no "
        "known account, left out of churn and dealer scores) as demand of their SKU")
    service_level: float = Field(0.95, gt=0.5, lt=1.0)
    # 0 = same-day supply (collected at a local DC, made or drop-shipped the same day): the reorder
    # point covers no lead time, the order-up-to level the review period alone
    # finite: an inf (YAML .inf) crashed safety-stock with "cannot convert float infinity to integer"
    # at most 100 years: 1e300 passed when no series used it, and simulate wrote it as a 300-digit period count
    lead_time_days: float = Field(14.0, ge=0, le=36500, allow_inf_nan=False)
    lead_time_std_days: float = Field(0.0, ge=0, le=36500, allow_inf_nan=False)
    review_period: int = Field(1, ge=1, description="periods between orders in the replay")
    cover_limit_periods: float = Field(12.0, gt=0, description="on-hand above this many periods of forecast demand = overstock")
    n_sims: int = Field(4000, ge=200, le=100000)

    @field_validator("levels", mode="before")
    @classmethod
    def _levels(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("levels")
    @classmethod
    def _levels_once(cls, v: list[str]) -> list[str]:
        # [sku, sku] crashed the series build with pandas' "cannot insert sku, already exists"
        twice = sorted({c for c in v if v.count(c) > 1})
        if twice:
            raise ValueError(f"each key column may be named once; {twice} appear more than once in {v}")
        return v

    def forecaster_kwargs(self, seed: int = 0) -> dict[str, Any]:
        kw: dict[str, Any] = {"selection": self.selection, "selection_windows": self.selection_windows,
                              "season_length": self.season_length, "min_train": self.min_train,
                              "lgbm_params": self.lgbm.model_dump(exclude_unset=True) or None, "random_state": seed, "n_jobs": self.n_jobs,
                              "profile": self.profile, "fast_above": self.fast_above,
                              "short_history": self.short_history, "short_window": self.short_window}
        if self.models:
            kw["models"] = tuple(self.models)
        return kw


def demand_settings(cfg: Any) -> DemandSettings:
    """Validate ``cfg.demand`` (an ExperimentConfig) into :class:`DemandSettings`."""
    raw = dict(cfg.demand or {})
    base = Path(cfg.config_path).parent if getattr(cfg, "config_path", None) else Path.cwd()
    if isinstance(raw.get("series"), dict) and "path" in raw["series"]:
        p = Path(str(raw["series"]["path"])).expanduser()
        raw["series"] = {**raw["series"], "path": p if p.is_absolute() else (base / p).resolve()}
    try:
        return DemandSettings.model_validate(raw)
    except ValidationError as err:  # every bad key at once (training.config.section_errors)
        from training.config import section_errors

        raise ConfigError(section_errors(err, "demand", DemandSettings, src=cfg.config_path or cfg.name)) from None


def read_series_file(path: Path, columns: dict[str, Any] | None = None, exog: dict[str, str] | None = None,
                     keep: list[str] | None = None) -> pd.DataFrame:
    """Read a long demand table (CSV or Parquet) into ``unique_id, ds, y`` + exogenous columns
    (+ the key columns ``keep``, as text, for a hierarchy).

    Without a mapping the file must have ``unique_id, ds, y``; other numeric columns are kept
    as exogenous drivers. Raises DataError naming the file and the missing column.
    """
    from models.demand_data import to_numbers
    from training.user_files import comma_note, read_user_table

    path = Path(path)
    if not path.exists():
        raise DataError(f"series file not found: {path}")
    columns = dict(columns or {})
    exog = dict(exog or {})
    wanted = {"unique_id": columns.get("unique_id", "unique_id"), "ds": columns.get("ds", "ds"), "y": columns.get("y", "y")}
    id_cols = wanted["unique_id"] if isinstance(wanted["unique_id"], list) else [wanted["unique_id"]]
    # ids stay text ("00123" stays "00123"); the rest is typed by pandas
    df = read_user_table(path, str(path), "a header with unique_id, ds, y and one row per series and period",
                         text_cols=id_cols, what="a series table", known_suffixes_only=True, folders=True)
    need = [c for v in list(wanted.values()) + list(exog.values()) for c in (v if isinstance(v, list) else [v])]
    miss = [c for c in need if c not in df.columns]
    if miss:
        raise DataError(f"{path}: missing column(s) {miss}; the file has {list(df.columns)}")
    # units exported with '.' grouping thousands (1.200 beside 40: a German sheet) were read as 1.2, silently
    from training._sources_export_checks import refuse_dot_grouped_csv

    refuse_dot_grouped_csv(path, [wanted["y"]], source=str(path), labels={wanted["y"]: f"{wanted['y']!r} (y)"},
                           fix="write y")
    empty = np.zeros(len(df), dtype=bool)
    for c in id_cols:
        empty |= (df[c].isna() | (df[c].astype(str).str.strip() == "")).to_numpy()
    if empty.any():
        rows = (np.flatnonzero(empty)[:5] + 1).tolist()
        raise DataError(f"{path}: column(s) {id_cols} must name a series in every row; {int(empty.sum())} row(s) "
                        f"are empty, first rows {rows} (1 = the first data row)")
    u = df[id_cols[0]].astype(str)
    for c in id_cols[1:]:
        u = u + "/" + df[c].astype(str)
    ds = df[wanted["ds"]]
    if isinstance(ds.dtype, pd.DatetimeTZDtype):
        # a zoned Parquet timestamp keeps its wall-clock time (docs/DATA.md): ``.values`` gave UTC,
        # so Berlin's Monday 00:00 became Sunday 23:00 and every day / month moved back one
        ds = ds.dt.tz_localize(None)
    out = pd.DataFrame({"unique_id": u.values, "ds": ds.values, "y": df[wanted["y"]].values})
    out["ds"] = _day_month_dates(out["ds"], path)
    for c in keep or []:
        out[c] = df[c].astype(str).values
    if exog:
        for k, c in exog.items():
            num = to_numbers(df[c])
            raw = df[c].astype("string").str.strip()
            text = (num.isna() & raw.notna() & (raw != "")).to_numpy()  # empty cells stay unknown (NaN)
            if text.any():
                vals = list(dict.fromkeys(df[c][text].astype(str)))[:3]
                comma = comma_note(df[c][text])
                raise DataError(f"{path}: driver {k!r} (column {c!r} under demand.series.exog) must be a number; "
                                f"{int(text.sum()):,} row(s) are not, first rows {(np.flatnonzero(text)[:5] + 1).tolist()} "
                                f"(1 = the first data row), e.g. {vals}{comma}; leave a cell empty when unknown")
            inf = np.isinf(num.to_numpy(dtype="float64"))  # inf, -Infinity, 1e999 or a Parquet float inf
            if inf.any():
                vals = list(dict.fromkeys(df[c][inf].astype(str).str.strip()))[:3]
                raise DataError(f"{path}: driver {k!r} (column {c!r} under demand.series.exog) must be a finite number; "
                                f"{int(inf.sum()):,} row(s) are infinite, first rows {(np.flatnonzero(inf)[:5] + 1).tolist()} "
                                f"(1 = the first data row), e.g. {vals}; leave a cell empty when unknown")
            out[k] = num.values
    elif not columns:
        for c in df.columns:
            if c in ("unique_id", "ds", "y"):
                continue
            col = df[c]
            if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                # a driver column pandas left as text because of a 1e999 (beyond float range) was silently
                # no driver: read as numbers when every other cell is one, so the panel refuses the inf
                num = to_numbers(col)
                raw = col.astype("string").str.strip()
                if np.isinf(num.to_numpy(dtype="float64")).any() and (num.notna() | raw.isna() | (raw == "")).all():
                    col = num
            if pd.api.types.is_numeric_dtype(col):
                out[c] = col.values
    return out


def _day_month_dates(ds: pd.Series, path: Path) -> pd.Series:
    """Text dates like 03/04/2024 read in the order their values settle (as the order book's
    are); undecided or mixed orders stop naming the file and rows. Other values unchanged."""
    if ds.dtype != object and not pd.api.types.is_string_dtype(ds):
        return ds
    from training._validate_columns import _to_str
    from training._validate_dates import _day_month_order

    st = _to_str(ds)
    if not _day_month_order(st, None, col="ds", table="series", source=str(path), mapping={},
                            remedy="write ds as ISO dates (2024-03-31)"):
        return ds
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(st, dayfirst=True, errors="coerce")


def load_demand_series(cfg: Any, settings: DemandSettings | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The demand table a config names, plus a small description of where it came from."""
    s = settings or demand_settings(cfg)
    if s.series is not None:
        keys = _series_levels(s) if s.hierarchy else []
        df = read_series_file(s.series.path, s.series.columns, s.series.exog, keep=keys)
        info: dict[str, Any] = {"source": str(s.series.path), "kind": "series"}
        if keys:
            info["levels"] = keys
        if s.series.exog:  # a driver read off the sales gives away the periods without demand: said, not refused
            from training.demand_driver_leaks import carry_over_unsold, zero_demand_markers

            if s.series.carry_forward:
                df = carry_over_unsold(df, s.series.carry_forward)
            info["driver_leaks"] = zero_demand_markers(df, s.series.exog, str(s.series.path))
    else:
        from features.demand import demand_series, planned_promo_share
        from training.data import load_order_book

        book = load_order_book(cfg)
        ol = book.demand_lines(s.include_lines_without_account)
        if s.cutoff:
            from training.data import check_cutoff_in_book, parse_cutoff

            # no zero-padded weeks after the data
            check_cutoff_in_book(book, parse_cutoff(s.cutoff, "demand.cutoff"), option="demand.cutoff")
            # the lines as the book stood at the end of that day: a cancellation dated later does not net
            # them (docs/DATA.md, "As of a cutoff"), as a run on that day would have read them
            then = book.demand_lines_as_of(pd.Timestamp(s.cutoff).normalize() + pd.Timedelta(days=1),
                                           s.include_lines_without_account)
            ol = ol if then is None else then
        cutoff = pd.Timestamp(s.cutoff) if s.cutoff else ol["order_date"].max()
        absent = [c for c in s.levels if c not in ol.columns]
        if absent and "levels" in s.model_fields_set:  # the default [sku, location] adapts to the book
            raise ConfigError(f"demand.levels {absent} are not columns of the order lines; they have "
                              f"{sorted(ol.columns)} (map yours under data.order_lines.columns)")
        levels = [c for c in s.levels if c in ol.columns]
        if not levels:
            raise ConfigError(f"none of demand.levels {s.levels} is a column of the order lines ({sorted(ol.columns)})")
        # the book's first period is partial unless the book starts on a period start: left out
        df = demand_series(ol, cutoff=cutoff, freq=s.freq, levels=levels, start=ol["order_date"].min())
        if df.empty:  # else a TypeError from top_n's nlargest on the empty table, or an empty forecast
            word = {"D": "day", "W": "week (Monday to Sunday)", "M": "calendar month"}.get(s.freq, s.freq)
            raise DataError(
                f"{cfg.config_path or cfg.name}: no demand series: the order lines span {ol['order_date'].min()} .. "
                f"{cutoff} and hold no whole {word} with a sale (demand.freq: {s.freq}; a first period that began "
                f"before the book and a last one still open at its end are left out); load a longer history"
                + (" or use a shorter demand.freq" if s.freq != "D" else ""))
        keys = levels if s.hierarchy else []
        calendar = _promo_calendar(book, s, levels)
        planned = None
        if calendar is not None:  # the planned campaigns give the promo driver, not the share sold on promotion
            df = df.assign(promo=planned_promo_share(df, calendar, s.freq))
            planned = _planned_promo(df[["unique_id", *levels]].drop_duplicates("unique_id"), df["ds"].max(),
                                     calendar, s.freq)
        no_driver = [c for c in s.drivers if c not in df.columns]
        if no_driver:
            raise ConfigError(f"demand.drivers {no_driver} are not in the order lines (map a {no_driver[0]} column "
                              "under data.order_lines.columns, or remove it from demand.drivers)")
        df = df[["unique_id", "ds", "y", *keys, *s.drivers]]
        info = {"source": book.fingerprint.get("source", str(cfg.config_path)) if isinstance(book.fingerprint, dict) else str(cfg.config_path),
                "kind": "order_book", "cutoff": str(cutoff), "levels": levels,
                # the order lines' fingerprint: train demand logs it, so compare and promote can tell two books apart
                "order_lines_sha256": book.fingerprint.get("order_lines_sha256") if isinstance(book.fingerprint, dict) else None}
        if planned is not None:  # the campaigns after the history: the forecast's default plan (training.commands)
            info["planned_drivers"] = planned
            # the same calendar for any grid of periods, e.g. a registered forecaster's own (forecast --alias)
            info["promo_for"] = _promo_for(calendar, s.freq)
        if "promo" in s.drivers and calendar is None:  # the share sold on promotion exists only where something sold
            from training.demand_driver_leaks import order_book_promo

            info["driver_leaks"] = [order_book_promo(str(info["source"]))]
        stock = on_hand_by_series(book.inventory, levels)
        if stock is not None:
            info["on_hand"] = stock
            info["on_hand_date"] = on_hand_dates_by_series(book.inventory, levels)  # per series, None if undated
            snap = book.inventory["snapshot_date"].dropna() if "snapshot_date" in book.inventory.columns else None
            if snap is not None and len(snap):
                latest = book.inventory.assign(d=book.inventory["snapshot_date"]).groupby(["sku", "location"])["d"].max().dropna()
                info["on_hand_dates"] = (str(latest.min().date()), str(latest.max().date()))
        lt = _lead_times(book.lead_times, levels, df["unique_id"].unique())
        if lt is not None:
            info["lead_times"] = lt
        if book.netting is not None and len(book.netting.get("events", ())):
            info["as_of"] = _history_as_of(book, s, levels, start=ol["order_date"].min())
    if s.top_n is not None:
        # the series left out (safety-stock names their stock's reason: not among the top_n)
        df, info["below_top_n"] = keep_top_series(df, s.top_n, s.freq, info["source"], check=info["kind"] == "series")
        info["top_n"] = s.top_n
    return df, info


def _history_as_of(book: Any, s: DemandSettings, levels: list[str], *, start: pd.Timestamp):
    """``info["as_of"]`` of :func:`load_demand_series` for a book whose cancellations net earlier
    lines: the demand table as the book stood at an instant (``OrderBook.demand_lines_as_of``; None
    where no cancellation dated then or later took from a line before it), on the same period grid
    (the whole book's first order date decides which first period is partial). A backtest or replay
    passes it as ``history_as_of`` so each window forecasts from what a run on its cutoff could read
    (docs/DATA.md, "As of a cutoff")."""
    from features.demand import demand_series, planned_promo_share

    def as_of(at: pd.Timestamp) -> pd.DataFrame | None:
        lines = book.demand_lines_as_of(at, s.include_lines_without_account)
        if lines is None:
            return None
        df = demand_series(lines, cutoff=at, freq=s.freq, levels=levels, start=start)
        calendar = _promo_calendar(book, s, levels)
        return df if calendar is None else df.assign(promo=planned_promo_share(df, calendar, s.freq))

    return as_of


def keep_top_series(df: pd.DataFrame, top_n: int, freq: str, source: str, *,
                    check: bool = True) -> tuple[pd.DataFrame, frozenset[str]]:
    """The rows of the ``top_n`` series with the most units (``demand.top_n`` / ``--top-n``), and
    the ids of the series left out.

    A series table as read (``check``) is checked whole first, as the forecaster checks the rows
    it gets (:func:`models.demand_data.check_series_table`): a message then counts the file's data
    rows, where it counted those of the kept series (a negative y on the file's data row 56 was
    said to be on row 26), and the ranking sums valid demand only (a y of 'abc' ended in pandas'
    nlargest TypeError; inf ranked its series first). Raises DataError naming ``source``."""
    from models.demand_data import check_series_table, to_numbers

    if check:
        try:
            check_series_table(df, freq)
        except ValueError as exc:
            raise DataError(f"{source}: {exc}") from None
    top = to_numbers(df["y"]).astype("float64").groupby(df["unique_id"]).sum().nlargest(top_n).index
    below = frozenset(df["unique_id"].astype(str).unique()) - frozenset(map(str, top))
    return df[df["unique_id"].isin(top)].reset_index(drop=True), below


def _series_levels(s: DemandSettings) -> list[str]:
    """The hierarchy of a ``demand.series`` table: its unique_id key columns, top first in the
    order of ``demand.levels`` when that names the same columns."""
    ids = (s.series.columns or {}).get("unique_id", "unique_id")
    ids = ids if isinstance(ids, list) else [ids]
    if len(ids) < 2:
        raise ConfigError("demand.hierarchy with demand.series needs the series keys as columns: "
                          f"demand.series.columns.unique_id: [<parent>, <child>] (e.g. [agency, sku]); got {ids}")
    if "levels" in s.model_fields_set:
        if sorted(s.levels) != sorted(ids):
            raise ConfigError(f"demand.levels {s.levels} must order the series key columns {ids} (top first) "
                              "when demand.hierarchy reads demand.series")
        return list(s.levels)
    return list(ids)
