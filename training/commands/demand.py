"""Demand commands: ``backtest demand``, ``forecast``, ``safety-stock``, ``simulate inventory``,
``train demand``. Heavy libraries are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from training.cli import app, backtest_app, simulate_app, train_app
from training.commands._common import (
    check_out_path,
    check_separate_outputs,
    commit_files,
    fail,
    json_writer,
    note_model_environment,
    registered_text,
    stage_files,
    staged_outputs,
    write_files,
    write_json,
)
from training.errors import ConfigError, DataError, DealermlError

__all__: list[str] = []


# CLI options that override DemandSettings fields: a bad value is reported under the option's name
_OPTION_OF = {"horizon": "--horizon", "windows": "--windows", "step": "--step", "top_n": "--top-n", "freq": "--freq",
              "lead_time_days": "--lead-time-days"}


def _validated(DemandSettings, values: dict[str, Any], given: set[str]):
    from pydantic import ValidationError

    try:
        return DemandSettings.model_validate(values)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = str(e["loc"][0]) if e["loc"] else ""
            name = _OPTION_OF[key] if key in given and key in _OPTION_OF else f"demand.{'.'.join(map(str, e['loc']))}"
            lines.append(f"{name}: {e['msg'].replace('Input should be', 'must be')}; got {e.get('input')!r}")
        raise ConfigError("; ".join(lines)) from None


def _settings_and_series(config: Path | None, series: Path | None, freq: str | None, overrides: dict[str, Any]):
    from training.demand_config import (
        DemandSettings,
        demand_settings,
        load_demand_series,
        read_series_file,
    )
    from training.user_files import check_series_freq

    if (config is None) == (series is None):
        raise ConfigError("give exactly one of --config FILE (an experiment config) or --series FILE (a long unique_id, ds, y table)")
    if config is not None:
        from training.config import load_config

        cfg = load_config(config)
        s = demand_settings(cfg)
        upd = {k: v for k, v in overrides.items() if v is not None}
        if freq is not None:
            upd["freq"] = freq.upper()
        s = _validated(DemandSettings, {**s.model_dump(exclude_unset=True), **upd}, set(upd))
        df, info = load_demand_series(cfg, s)
        if info.get("kind") == "series":  # a ready table: its dates must show the configured period
            check_series_freq(df, s.freq, info["source"], "--freq" if freq is not None else "demand.freq:")
        seed = cfg.seed
    else:
        if freq is None:
            raise ConfigError("--series needs --freq D|W|M (the period of the table's ds column)")
        upd = {"freq": freq.upper(), **{k: v for k, v in overrides.items() if v is not None}}
        s = _validated(DemandSettings, upd, set(upd))
        df = read_series_file(series)
        check_series_freq(df, s.freq, str(series))
        info = {"source": str(series), "kind": "series"}
        seed = 0
    return s, df, info, seed


def _as_data_error(exc: ValueError, source: str) -> DataError:
    return DataError(f"{source}: {exc}")


_TRAIN_NEEDS_WINDOWS = "train demand registers a forecaster only with the evidence of its backtest windows"


def _too_short_error(exc: ValueError, source: str, s, what: str) -> DataError:
    """``_as_data_error``; a table too short for ``what`` (``TooShortError``) also hears where a young
    book's series are served: by the short-history fallback of ``forecast`` / ``safety-stock --config``."""
    from models.demand import TooShortError

    err = _as_data_error(exc, source)
    if isinstance(exc, TooShortError) and s.short_history == "fallback":
        err = DataError(f"{err}. {what}; for a young catalogue, `dealerml forecast --config` and `dealerml "
                        "safety-stock --config` serve series shorter than the members need from the short-history "
                        "fallback (final_model ShortHistory)")
    return err


@backtest_app.command("demand")
def backtest_demand(
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the report (JSON).")],
    config: Annotated[Path | None, typer.Option("--config", help="Experiment config with a demand: section.")] = None,
    series: Annotated[Path | None, typer.Option("--series", help="Ready long table: unique_id, ds, y (+ numeric drivers), CSV or Parquet.")] = None,
    freq: Annotated[str | None, typer.Option("--freq", help="D, W or M.")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", help="Periods ahead (default: config or 8).")] = None,
    windows: Annotated[int | None, typer.Option("--windows", help="Rolling-origin windows (default 2).")] = None,
    step: Annotated[int | None, typer.Option("--step", help="Periods between window cutoffs (default: horizon).")] = None,
    top_n: Annotated[int | None, typer.Option("--top-n", help="Keep the N series with the largest total demand.")] = None,
    cv_out: Annotated[Path | None, typer.Option("--cv-out", help="Also write every window forecast (Parquet).")] = None,
) -> None:
    """Rolling-origin backtest of the demand forecaster against every statsforecast baseline."""
    try:
        from training.demand_backtest import run_backtest

        check_out_path(json_out, "--json")
        if cv_out is not None:
            check_out_path(cv_out, "--cv-out", _TABLE_SUFFIXES)
        check_separate_outputs({"--json": json_out, "--cv-out": cv_out})
        s, df, info, seed = _settings_and_series(
            config, series, freq, {"horizon": horizon, "windows": windows, "step": step, "top_n": top_n}
        )
        if series is not None and s.top_n:  # rows in messages are the file's (keep_top_series)
            from training.demand_config import keep_top_series

            df, _ = keep_top_series(df, s.top_n, s.freq, info["source"])
        try:
            if s.hierarchy and series is None:
                from training.demand_hier_backtest import run_hier_backtest

                report, cv = run_hier_backtest(df, levels=_hier_levels(info), method=s.reconcile, freq=s.freq,
                                               h=s.horizon, n_windows=s.windows, step_size=s.step,
                                               forecaster_kwargs=s.forecaster_kwargs(seed), history_as_of=info.get("as_of"))
            else:
                report, cv = run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step,
                                          forecaster_kwargs=s.forecaster_kwargs(seed), history_as_of=info.get("as_of"))
        except ValueError as exc:
            raise _too_short_error(exc, info["source"], s, "The backtest scores the members on its windows") from None
        report["setup"]["source"] = _source_record(info)
        # both or neither: a report that fails to write no longer leaves the window forecasts behind
        write_files([(json_out, json_writer(report))]
                    + ([(cv_out, _table_writer(cv, cv_out))] if cv_out is not None else []))
    except DealermlError as err:
        fail(err)
    _print_backtest(report)
    typer.echo(f"skipped {len(report['skipped'])} series-windows; wrote {json_out}")
    filled = report.get("filled") or []
    if filled:  # periods absent from the table (or with an empty y) count as zero demand: say so
        n = sum(int(f.get("periods_filled", 0)) for f in filled)
        eg = [str(f["unique_id"]) for f in filled[:3]]
        typer.echo(f"note: {n:,} missing period(s) in {len(filled):,} series counted as zero demand (e.g. {eg}; "
                   "'filled' in the JSON)")


def _print_backtest(report: dict[str, Any]) -> None:
    """The backtest table: the served forecast (Final) beside every member and baseline."""
    m = report["metrics"]
    typer.echo(f"{'model':<14}{'MASE':>8}{'RMSSE':>8}{'pinball':>9}{'cov80':>7}{'cov95':>7}{'bias':>8}")
    for name, v in m.items():
        f = lambda x, p=3: "   -" if x is None else f"{x:.{p}f}"  # noqa: E731
        typer.echo(f"{name:<14}{f(v['mase']):>8}{f(v['rmsse']):>8}{f(v['pinball']):>9}{f(v['coverage_80'], 2):>7}{f(v['coverage_95'], 2):>7}{f(v['bias']):>8}")
    sh = report.get("short_history") or {}
    if sh:  # scored apart: those series have no member forecasts
        f = lambda x, p=3: "-" if x is None else f"{x:.{p}f}"  # noqa: E731
        typer.echo(f"short-history fallback (not in the table above): {sh['n_series_windows']} series-windows, "
                   f"MAE {f(sh['mae'])}, bias {f(sh['bias'])}, cov80 {f(sh.get('coverage_80'), 2)}, "
                   f"cov95 {f(sh.get('coverage_95'), 2)}")
    by_level = report.get("hierarchy", {}).get("by_level", {})
    if by_level:  # every level: the coherent Final, the level's own Base, its best baseline
        typer.echo(f"{'level':<16}{'series':>7}  {'model':<14}{'MASE':>8}{'cov80':>7}{'cov95':>7}")
    for name, lv in by_level.items():
        first = True
        for k, v in lv["metrics"].items():
            if k not in ("Final", "Base", lv["best_statsforecast_baseline"]) or not v or v.get("mase") is None:
                continue
            f = lambda x, p=3: "   -" if x is None else f"{x:.{p}f}"  # noqa: E731
            head = f"{name:<16}{lv['n_series']:>7}" if first else " " * 23
            typer.echo(f"{head}  {k:<14}{f(v['mase']):>8}{f(v.get('coverage_80'), 2):>7}{f(v.get('coverage_95'), 2):>7}")
            first = False


def _replay_forecaster_kwargs(s, seed: int) -> dict[str, Any]:
    """The forecaster settings of the inventory replay (train demand's and simulate inventory's):
    as the registered model sizes them, a hierarchy's bottom level skips short series (models.demand_hier)."""
    kw = s.forecaster_kwargs(seed)
    return {**kw, "short_history": "skip"} if s.hierarchy else kw


def _hier_levels(info: dict[str, Any]) -> list[str]:
    """The key columns of a demand.hierarchy (order book: demand.levels; series: its id columns)."""
    levels = info.get("levels") or []
    if not levels:
        raise ConfigError("demand.hierarchy needs key columns: demand.levels (e.g. [sku, location]) for an order "
                          "book, or demand.series.columns.unique_id: [<parent>, <child>] for a series table")
    return list(levels)


_TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def _source_record(info: dict[str, Any]) -> dict[str, Any]:
    """Where the series came from, for a JSON report: the order book's stock and lead-time
    tables are summarised by how many series they cover, not printed."""
    out = {k: v for k, v in info.items() if k not in ("on_hand", "on_hand_date", "lead_times", "below_top_n", "as_of")}
    for k in ("on_hand", "lead_times", "below_top_n"):
        if info.get(k) is not None:
            out[f"{k}_series"] = int(len(info[k]))
    return out


def _table_writer(df, out: Path):
    """A :func:`write_files` writer of ``df`` as CSV or Parquet by the suffix of ``out``."""
    def write(tmp: Path) -> None:
        if out.suffix.lower() in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, compression="gzip" if out.name.lower().endswith(".gz") else None)
    return write


def _write_table(df, out: Path, option: str = "--out", also: list | None = None) -> None:
    """CSV or Parquet by suffix, atomically (temp file then rename; none left on failure), together
    with the ``also`` outputs (``(path, writer)``): all or none of them."""
    out = check_out_path(out, option, _TABLE_SUFFIXES)
    write_files([(out, _table_writer(df, out))] + list(also or []))


def _key_columns(s, info: dict[str, Any]) -> list[str]:
    """The key columns the series ids are made of (``<sku>/<location>``: ``[sku, location]``), or []."""
    if info.get("levels"):
        return [str(c) for c in info["levels"]]
    ids = s.series.columns.get("unique_id") if s.series is not None else None
    return [str(c) for c in ids] if isinstance(ids, list) else []


def _alias_keys(est, config: Path | None) -> list[str]:
    """The key columns of a registered forecaster's ids: a hierarchical one knows its levels; for a
    plain one, the config's demand.levels (or its series table's unique_id columns) when --config
    is given (only the demand: section is read; the ids must split into them, else no key columns)."""
    if getattr(est, "levels", None) is not None and hasattr(est, "bottom_"):
        return [str(c) for c in est.levels]
    if config is None:
        return []
    from training.config import load_config
    from training.demand_config import demand_settings

    s = demand_settings(load_config(config))
    if s.series is None:
        return [str(c) for c in s.levels]
    ids = s.series.columns.get("unique_id")
    return [str(c) for c in ids] if isinstance(ids, list) else []


def _with_keys(df, keys: list[str]):
    """``df`` with the key columns split out of ``unique_id`` beside it (``SKU1/DC1`` -> sku
    ``SKU1``, location ``DC1``; an upper level's ``*`` stays ``*``), as the service's ``keys``;
    unchanged when an id does not split into them (a key value holding '/') or a name is taken."""
    if not keys or any(k in df.columns for k in keys):
        return df
    parts = df["unique_id"].astype(str).str.split("/", regex=False)
    if not (parts.str.len() == len(keys)).all():
        return df
    out = df.copy()
    for i, k in enumerate(keys):
        out.insert(1 + i, k, parts.str[i].to_numpy())
    return out


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

    from training._validate_columns import resolve_as_of

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

    from models.inventory import ORDER_RULES, order_rule_values
    from training.user_files import comma_note, infinite_note, read_series_table, text_ids

    src = f"--on-hand {path}"
    # the key columns as text too: read as numbers, SKU "007" at location "01" became "7/01"
    oh = read_series_table(path, src, "columns unique_id, on_hand",
                           text_cols=(*(keys or ()), "snapshot_date"))
    if "unique_id" not in oh.columns and keys and all(k in oh.columns for k in keys):
        kv = pd.DataFrame({k: _id_text(oh[k]) for k in keys})
        empty = (kv.isna() | kv.apply(lambda c: c.astype(str).str.strip().eq(""))).any(axis=1).to_numpy()
        if empty.any():
            raise DataError(f"{src}: the key columns {keys} are empty in {int(empty.sum())} row(s), first rows "
                            f"{(np.flatnonzero(empty)[:5] + 1).tolist()} (1 = the first data row)")
        oh.insert(0, "unique_id", kv.astype(str).agg("/".join, axis=1))
    miss = [c for c in ("unique_id", "on_hand") if c not in oh.columns]
    if miss:
        also = f" (or the key columns {keys} instead of unique_id)" if keys else ""
        raise DataError(f"{src}: missing column(s) {miss}{also}; it has {list(oh.columns)}")
    if oh.empty:
        raise DataError(f"{src}: no rows (expected one row per series: unique_id, on_hand)")
    oh = text_ids(oh, src)
    stock = pd.to_numeric(oh["on_hand"], errors="coerce")
    bad = ~np.isfinite(stock.to_numpy(dtype=float))
    if bad.any():
        pos = np.flatnonzero(bad)
        raise DataError(f"--on-hand {path}: column on_hand must be a number of units in every row "
                        "(negative = backorders); "
                        f"{len(pos)} row(s) are not, first rows {(pos[:5] + 1).tolist()}, e.g. "
                        f"{oh['on_hand'].iloc[pos[:3]].tolist()}{comma_note(oh['on_hand'].iloc[pos])}"
                        f"{infinite_note(oh['on_hand'].iloc[pos])}")
    oh["on_hand"] = stock.astype(float)
    dup = oh["unique_id"].duplicated(keep=False).to_numpy()
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
        oh[col] = np.where(empty, default, v)
        rules.append(col)
    if "snapshot_date" in oh.columns or on_hand_date is not None:
        dates = (_stock_dates(oh["snapshot_date"], src, as_of) if "snapshot_date" in oh.columns
                 else pd.Series(None, index=oh.index, dtype=object))
        if on_hand_date is not None:  # the file's date, for the rows without their own
            dates = dates.where(dates.notna(), pd.Timestamp(on_hand_date).date().isoformat())
        oh["snapshot_date"] = dates.astype(object)
        rules.append("snapshot_date")
    return oh[["unique_id", "on_hand", *rules]]


def _fit(s, df, seed: int, h: int, source: str, member_cache=None, note_no_window: bool = True,
         horizon_why: str = ""):
    """``horizon_why``: where ``h`` comes from, added to a refusal of a table too short for it."""
    from models.demand import DemandForecaster, TooShortError

    try:
        est = DemandForecaster(freq=s.freq, h=h, **s.forecaster_kwargs(seed)).fit(df, member_cache=member_cache)
    except ValueError as exc:
        if horizon_why and isinstance(exc, TooShortError):
            raise DataError(f"{source}: {exc} ({horizon_why})") from None
        raise _as_data_error(exc, source) from None
    _say_left_out(est, df, h)
    _say_all_short(est, note_no_window)
    return est


def _say_all_short(est, note_no_window: bool = True) -> None:
    """A young table (no series has the periods the members need): every series with demand is on
    the short-history fallback; say so, with how long the series are and how long they must be.
    ``note_no_window``: also note members' forecasts without a band (``_no_error_window``)."""
    a = getattr(est, "all_short_", None)
    if a:
        typer.echo(f"all {a['n_series']} series with demand are on the short-history fallback (final_model "
                   f"ShortHistory, forecast_note; safety stock from its distribution, ltd_source short_history): "
                   f"none has the {a['min_train']} observed periods the members need at a {a['h']}-period horizon "
                   f"(the longest has {a['max_periods']})", err=True)
    elif note_no_window and (note := _no_error_window(est)):
        typer.echo(f"note: {note}", err=True)
    if note := _short_lookahead_note(est):
        typer.echo(f"note: {note}", err=True)


def _short_lookahead_note(est) -> str | None:
    """A young table (fewer than h + 1 periods, or no sale h periods back): the short-history
    fallback's band and error paths were measured over fewer periods than the horizon (its
    ``short_lookahead_``); None otherwise."""
    g, h = getattr(est, "short_lookahead_", None), int(getattr(est, "h", 0))
    if g is None or int(g) >= h:
        return None
    n = int(est.panel_.Y.shape[1])
    return (f"the table has {n} periods, too few to measure the short-history fallback's errors over the {h}-period "
            f"horizon (that takes {h + 1} periods, with a sale in the first): its band and the error paths that size "
            f"safety stock were measured over the {g} period{'' if g == 1 else 's'} after earlier cutoffs (paths "
            f"longer than that repeat their last step), so check these series' forecasts against their first sales "
            f"before committing stock")


def _say_hier_all_short(est) -> None:
    """A young book with demand.hierarchy: every level is on the short-history fallback and the
    parents are the sums of the bottom series' forecasts; say so (``all_short_`` of the hierarchy)."""
    a = getattr(est, "all_short_", None)
    if not a:
        return
    how = "" if a.get("method", "bottom_up") == "bottom_up" else f", not demand.reconcile {a['method']}"
    typer.echo(f"all {a['n_series']} bottom series with demand are on the short-history fallback (final_model "
               f"ShortHistory, forecast_note): none has the {a['min_train']} observed periods the members need at a "
               f"{a['h']}-period horizon (the longest has {a['max_periods']}); each level above is the sum of their "
               f"forecasts (bottom-up{how}: there are no member forecasts to reconcile) with the band of the "
               "fallback on its own summed demand, moved onto that sum"
               + (" (the total's from the errors of the fallback's level bucket it falls in: its own periods were not "
                  "measured)" if est.young_total_key()[1] is not None else ""), err=True)
    if note := _short_lookahead_note(est.bottom_):
        typer.echo(f"note: {note}", err=True)


def _no_error_window(est) -> str | None:
    """Why the members' forecasts of a young table have no band and no error paths (no series has
    ``min_train`` + h periods: the members ran at the last cutoff but on no selection window before
    it), and what sizes them; None otherwise."""
    import numpy as np

    fc, resid = getattr(est, "forecast_", None), getattr(est, "residuals_", None)
    if fc is None or resid is None or len(resid) or getattr(est, "all_short_", None) or "final_model" not in fc:
        return None
    from models.demand_short import SHORT_MODEL

    n = fc.loc[fc["final_model"] != SHORT_MODEL, "unique_id"].nunique()
    if not n:
        return None
    mt, h = est._min_train(est.h), int(est.h)
    longest = int(np.isfinite(est.panel_.Y).sum(axis=1).max())
    return (f"the members forecast {n} series ({mt}+ periods) but no series has the {mt + h} periods they need to "
            f"measure their errors on a {h}-period window before the last one (the longest has {longest}), so those "
            f"forecasts have no band and no error paths to size safety stock from; set demand.min_train above "
            f"{longest} to forecast and size every series from the short-history fallback, or give {mt + h}+ periods")


def _say_left_out(est, df, h: int) -> None:
    """Series too short (or all zero) to forecast are left out: name them."""
    left = sorted(set(df["unique_id"].astype(str)) - set(est.forecast_["unique_id"].astype(str)))
    fb = getattr(est, "fallback_", None)
    no_member = ({} if fb is None or not len(fb) else
                 {str(u): str(r) for u, r, m in zip(fb["unique_id"], fb["reason"], fb["served"], strict=True)
                  if m is None or m != m})
    if no_member:  # eligible, but no member forecast every period (models.demand_select.pick_served)
        u = next(iter(no_member))
        typer.echo(f"left out {len(no_member)} series that no member could forecast for every period "
                   f"(e.g. {u}: {no_member[u]})", err=True)
    left = [u for u in left if u not in no_member]
    if left:
        why = ("no demand" if getattr(est, "short_history", "skip") == "fallback" else
               f"fewer than {est._min_train(h)} periods from their first sale to the last period, or no demand")
        typer.echo(f"left out {len(left)} of {df['unique_id'].nunique()} series that have no forecast: {why} "
                   f"(e.g. {left[:3]})", err=True)
    if fb is not None and len(fb) > len(no_member):
        served = fb[[m is not None and m == m for m in fb["served"]]]
        r = served.iloc[0]
        typer.echo(f"{len(served)} series are served by the next member of their ranking: the chosen one has no "
                   f"forecast for some periods (final_model names the member that serves them, forecast_note says "
                   f"why; e.g. {r['unique_id']}: {r['reason']})", err=True)


def _fit_hier(s, df, seed: int, levels: list[str], source: str, member_cache=None, h: int | None = None):
    """The coherent forecaster of every level (``demand.hierarchy``), fitted on all history
    (each level's selection windows from ``member_cache`` where the backtest filled it); ``h``
    (default ``demand.horizon``): its horizon."""
    from models.demand_hier import HierarchicalDemandForecaster

    h = s.horizon if h is None else h
    try:
        est = HierarchicalDemandForecaster(levels, method=s.reconcile,
                                           forecaster={"freq": s.freq, "h": h, **s.forecaster_kwargs(seed)}).fit(
                                               df, member_cache=member_cache)
    except ValueError as exc:
        raise _as_data_error(exc, source) from None
    _say_left_out(est.bottom_, df, h)
    _say_hier_all_short(est)
    return est


def _with_served_ids(est, fc):
    """A hierarchical forecast in the ids the service and the registered model use (``unique_id``:
    ``<sku>/<location>`` as without a hierarchy, ``<sku>/*``, ``*/*``), with its ``level`` and the
    reconciliation's node id (``node_id``: ``total/<sku>/<location>``, as the backtest's ``--cv-out``)."""
    served = est.served(fc)
    out = fc.copy()
    out.insert(1, "node_id", out["unique_id"].to_numpy())
    out.insert(2, "level", served["level"].to_numpy())
    out["unique_id"] = served["unique_id"].to_numpy()
    # bottom series it could not forecast (0 units for the reconciliation only) are left out and
    # named, as the plain forecast and the service (the model's predict_frame) leave them out
    left = est.not_forecast(out)
    if left.any():
        ids = sorted(out.loc[left, "unique_id"].unique())
        typer.echo(f"left out {len(ids)} bottom series that have no forecast (too short or no demand; counted as 0 "
                   f"units in the reconciliation only), as the service leaves them out (e.g. {ids[:3]})", err=True)
        out = out[~left].reset_index(drop=True)
    return out


def _bottom_forecast(est):
    """The coherent forecast of a hierarchical forecaster's bottom level (served ids), without the
    series it could not forecast (filled with 0 units for the reconciliation only)."""
    import pandas as pd

    fc = est.predict_frame(pd.DataFrame({"h": [est.bottom_.h]}))
    return fc[fc["level"] == est.nodes_["level"].iloc[-1]].drop(columns=["level"]).reset_index(drop=True)


def _bottom_cv(cv, df, levels: list[str]):
    """The bottom level's rows of a hierarchical cross-validation frame, under the series' own
    ids (``<sku>/<location>``, as ``df``'s unique_id) instead of the hierarchy's node ids."""
    from models.demand_hier import node_ids

    keys = df[["unique_id", *levels]].drop_duplicates("unique_id")
    plain = dict(zip(node_ids(keys, levels), keys["unique_id"].astype(str), strict=True))
    part = cv[cv["unique_id"].isin(set(plain))]
    return part.assign(unique_id=part["unique_id"].map(plain))


def _registered(alias: str):
    """The registered ``dealerml-demand`` version behind ``alias`` (what the service serves)."""
    from training import tracking

    est, info = tracking.load_model("dealerml-demand", alias=alias)
    note_model_environment(info)  # trained with other package versions: said once, on stderr
    return est, info


def _fitted_elsewhere(minfo: Any, alias: str, info: dict[str, Any], df: Any, use: str) -> str:
    """A caution when the training run of ``dealerml-demand@alias`` read other order lines than the
    ``--config`` book (its ``data.order_lines_sha256``, the check promote makes, 273970b): forecast /
    safety-stock --alias with another book's config wrote that model's series without a word. ``use``
    says what the command did with them. Empty when the same, or when either side has no
    fingerprint (a series-table config, a run logged before the fingerprint)."""
    from training import tracking

    ours = info.get("order_lines_sha256")
    tags = tracking.tags_if_other_lines(minfo, ours)
    if tags is None:
        return ""
    theirs = tags["data.order_lines_sha256"]

    def said(n: Any, first: Any, last: Any, sha: str) -> str:
        day = lambda v: str(v or "?").split(" ")[0]  # noqa: E731
        return f"{n or '?'} demand series, {day(first)} .. {day(last)}, order lines sha256 {sha[:12]}"

    config = info.get("source", "--config")
    return (f"dealerml-demand@{alias} (version {minfo.version}) was fitted on other order lines than {config}'s "
            f"book: its run read the order book of {tags.get('data.source') or '?'} ("
            + said(tags.get("data.n_series"), tags.get("data.ds_min"), tags.get("data.ds_max"), theirs)
            + f"), {config} reads its order book (" + said(df["unique_id"].nunique(), df["ds"].min(), df["ds"].max(), ours)
            + f"). {use}; train a version on this config (dealerml train demand --config {config}) and use that one "
            "(if this is that book with later orders, they are not in its forecasts either)")


@app.command("forecast")
def forecast(
    out: Annotated[Path, typer.Option("--out", help="Forecast table (.csv or .parquet).")],
    config: Annotated[Path | None, typer.Option("--config", help="Experiment config with a demand: section (needed to fit; with --alias only its demand.levels are read, to write the key columns).")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", help="Periods ahead (default: config).")] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="Use the registered dealerml-demand version with this alias (e.g. champion: what the service serves) instead of fitting on all history.")] = None,
    future: Annotated[Path | None, typer.Option("--future", help="Planned known-future drivers (CSV or Parquet: unique_id, ds and any of the model's drivers, e.g. price, promo) for the forecast periods; series and periods not in the file keep their last known value.")] = None,
    drivers_out: Annotated[Path | None, typer.Option("--drivers-out", help="Also write the drivers the forecast used (unique_id, ds + drivers): a template to edit into a --future plan.")] = None,
) -> None:
    """Fit the demand forecaster on all history (or take a registered one) and write the forecasts with 80/95 % intervals."""
    try:
        check_out_path(out, "--out", _TABLE_SUFFIXES)
        if drivers_out is not None:
            check_out_path(drivers_out, "--drivers-out", _TABLE_SUFFIXES)
        check_separate_outputs({"--out": out, "--drivers-out": drivers_out})
        staged: list = []  # --drivers-out, written with --out (a failed --out write left it behind)
        if future is not None:  # not found, a folder, a workbook: said before the (long) fit
            from training.user_files import check_user_file

            check_user_file(future, f"--future {future}")
        if alias is not None:
            from training.commands.experiments import require_store

            require_store(f"forecast --alias {alias}: no dealerml-demand@{alias} to forecast with",
                          "leave out --alias to fit a forecaster")
            est, minfo = _registered(alias)
            if config is not None:  # another book's config: its series, not this book's, said (a caution)
                try:
                    _, cdf, cinfo, _ = _settings_and_series(config, None, None, {})
                except DealermlError as exc:
                    typer.echo(f"note: cannot check dealerml-demand@{alias} against {config}'s order book: {exc}",
                               err=True)
                else:
                    caution = _fitted_elsewhere(minfo, alias, cinfo, cdf, "The forecasts are of its series and "
                                                "history, not this book's")
                    if caution:
                        typer.secho(f"caution: {caution}", fg=typer.colors.YELLOW, err=True)
            h = getattr(est, "bottom_", est).h if horizon is None else horizon
            try:
                if hasattr(est, "bottom_"):  # hierarchical: every level, in served ids, no plan
                    if future is not None or drivers_out is not None:
                        raise ConfigError(f"--future / --drivers-out: dealerml-demand@{alias} is hierarchical (coherent "
                                          "levels) and takes no plan of drivers")
                    fc, note = _with_served_ids(est, est.predict(h)), ""
                else:
                    fc, note = _predict_with_plan(est, h, future, drivers_out, staged)
            except ValueError as exc:
                raise ConfigError(f"--horizon: {exc} (dealerml-demand@{alias} is version {minfo.version})") from None
            fc = _with_notes(est, fc)
            # the version the rows came from, as /forecast answers it and the score tables carry it
            fc["model_version"] = f"dealerml-demand/{minfo.version}"
            _write_table(_with_keys(fc, _alias_keys(est, config)), out, also=staged)
            typer.echo(f"wrote {len(fc)} rows ({fc['unique_id'].nunique()} series x {h} periods) from "
                       f"dealerml-demand@{alias} (version {minfo.version}) to {out}{note}" + _short_summary(fc))
            return
        if config is None:
            raise ConfigError("--config: give the experiment config to fit on (or --alias champion to forecast with "
                              "the registered model)")
        s, df, info, seed = _settings_and_series(config, None, None, {"horizon": horizon})
        note = ""
        if s.hierarchy and (future is not None or drivers_out is not None):
            raise ConfigError("--future / --drivers-out: not available with demand.hierarchy (the reconciled "
                              "levels have no drivers of their own); drop demand.hierarchy to plan drivers")
        if s.hierarchy:
            from models.demand_hier import HierarchicalDemandForecaster

            levels = _hier_levels(info)
            try:
                est = HierarchicalDemandForecaster(levels, method=s.reconcile,
                                                   forecaster={"freq": s.freq, "h": s.horizon, **s.forecaster_kwargs(seed)}).fit(df)
                fc = _with_served_ids(est, est.predict(s.horizon))
            except ValueError as exc:
                raise _as_data_error(exc, info["source"]) from None
            _say_hier_all_short(est)
        else:
            est = _fit(s, df, seed, s.horizon, info["source"])
            fc, note = _predict_with_plan(est, s.horizon, future, drivers_out, staged)
        fc = _with_notes(est, fc)
        _write_table(_with_keys(fc, _key_columns(s, info)), out, also=staged)
    except DealermlError as err:
        fail(err)
    typer.echo(f"wrote {len(fc)} rows ({fc['unique_id'].nunique()} series x {s.horizon} periods) to {out}{note}"
               + _short_summary(fc))


def _short_notes(est, uids) -> list[str]:
    """Per id of ``uids``: the planner's note of a short-history fallback series (``short history
    (N periods): fallback forecast ...``), or of a series whose chosen member had no forecast and
    that the next member of its ranking serves (the estimator's ``fallback_``), empty for the others."""
    from models.demand_short import short_note

    est = getattr(est, "bottom_", est)
    fb = getattr(est, "fallback_", None)
    served_by_next = ({} if fb is None or not len(fb) else
                      {str(u): str(r) for u, r, m in zip(fb["unique_id"], fb["reason"], fb["served"], strict=True)
                       if m is not None and m == m})
    short = getattr(est, "short_", None)
    if short is None or not len(short):
        return [served_by_next.get(u, "") for u in map(str, uids)]
    g, h = getattr(est, "short_lookahead_", None), getattr(est, "h", None)
    n_of = dict(zip(short["unique_id"].astype(str), zip(short["n_periods"], short["window"], strict=True), strict=True))
    return [short_note(*n_of[u], g, h) if u in n_of else served_by_next.get(u, "") for u in map(str, uids)]


def _with_notes(est, fc):
    """The forecast table with ``forecast_note``: the words of a short-history fallback row
    (final_model ShortHistory: the mean of few periods, no member forecasts), empty elsewhere."""
    if hasattr(est, "bottom_"):  # hierarchical: its bottom forecaster skips short series, but in a young book
        if not getattr(est, "all_short_", None):
            return fc
        # every level is on the fallback: the bottom rows as a plain forecast's, a parent says it is a sum
        bottom = (fc["level"] == est.nodes_["level"].iloc[-1]).to_numpy()
        notes = _short_notes(est.bottom_, fc["unique_id"])
        upper = est.upper_.short_.assign(unique_id=est.upper_.short_["unique_id"].astype(str)).set_index("unique_id")
        by_level = est.young_total_key()[1] is not None  # the total's band: its level bucket's errors
        for i in map(int, (~bottom).nonzero()[0]):
            node = str(fc["node_id"].iloc[i])
            n = int(upper["n_periods"].get(node, 0))
            band = ("band from the errors of the fallback's level bucket it falls in (its own periods were not "
                    "measured), on that sum" if by_level and node == "total"
                    else "band from the fallback on its own summed demand, moved onto that sum")
            notes[i] = (f"short history ({n} period{'' if n == 1 else 's'}): the sum of the fallback forecasts of "
                        f"the series below it; {band}" if node in upper.index else "")
        return fc.assign(forecast_note=notes)
    return fc.assign(forecast_note=_short_notes(est, fc["unique_id"]))


def _short_summary(fc) -> str:
    """A console line on the series forecast by the short-history fallback (empty when none)."""
    if "final_model" not in fc.columns:
        return ""
    ids = fc.loc[fc["final_model"] == "ShortHistory", "unique_id"].astype(str).unique()
    if not len(ids):
        return ""
    return (f"\n{len(ids)} series with a short history got a fallback forecast (final_model ShortHistory, "
            f"forecast_note says so; e.g. {list(ids[:3])})")


def _predict_with_plan(est, h: int, future: Path | None, drivers_out: Path | None, staged: list | None = None):
    """``est.predict(h)`` with the planned drivers of ``future`` (if any); returns the forecast
    and a note for the user saying which drivers were planned and which carried forward. The
    ``drivers_out`` table is appended to ``staged`` as ``(path, writer)`` (written by the caller
    with its other outputs), or written now without ``staged``."""
    from training.future_drivers import read_future_drivers

    # a reconciled (hierarchical) forecaster has no drivers of its own
    template = est.future_drivers() if hasattr(est, "future_drivers") else None
    if template is None:
        if future is not None or drivers_out is not None:
            raise ConfigError("--future / --drivers-out: this forecaster was fitted without known-future drivers "
                              "(demand.series.exog or demand.drivers in the config); there is nothing to plan")
        return est.predict(h), ""
    names = [c for c in template.columns if c not in ("unique_id", "ds")]
    if future is None:
        plan, note = template, (f"\ndrivers {names}: each series' last known value carried forward over the "
                                "horizon (give planned values with --future FILE)")
    else:
        plan, summ = read_future_drivers(future, template)
        note = (f"\ndrivers {summ['drivers']} planned from {future} for {summ['series']} of {summ['of_series']} "
                f"series ({summ['cells']} values); everything else carries the last known value forward")
    fc = est.predict(h) if future is None else est.predict(h, X_df=plan)  # the same without a plan (tested)
    if drivers_out is not None:
        used = plan[plan["ds"].isin(fc["ds"].unique())]
        if staged is None:
            _write_table(used, drivers_out, "--drivers-out")
        else:
            staged.append((drivers_out, _table_writer(used, drivers_out)))
        note += f"\nwrote the drivers used to {drivers_out}"
    return fc, note


def _policy(s, df, info, seed: int, service_level: float, alias: str | None = None):
    from models.inventory import (
        InventoryPolicy,
        fit_forecaster_policy,
        forecaster_history,
        horizon_needed,
        lead_time_fits,
        lead_time_periods,
        series_lead_times,
    )

    L = lead_time_periods(s.lead_time_days, s.freq)
    sdL = lead_time_periods(s.lead_time_std_days, s.freq)
    lt = info.get("lead_times")
    if lt is not None:  # per-series lead times from the order book's lead_times table; config value elsewhere
        L, sdL = series_lead_times(df["unique_id"].unique(), lt, s.lead_time_days, s.lead_time_std_days, s.freq)
    why: dict[str, tuple[str, str]] = {}  # series without a policy -> (reason code, words)
    if alias is not None:
        # The registered forecaster (what the service serves): its horizon bounds the lead times
        # it can size stock for; longer series are left out and named, as the service refuses them.
        est, minfo = _registered(alias)
        caution = _fitted_elsewhere(minfo, alias, info, df, "The policies size this book's lead times and stock on "
                                    "its forecasts of those order lines")
        if caution:  # another book's config: sized on that book's forecasts, said (a caution)
            typer.secho(f"caution: {caution}", fg=typer.colors.YELLOW, err=True)
        why.update(_not_forecast_reasons(est))
        if hasattr(est, "bottom_"):  # hierarchical: stock sits at the bottom level, sized from its coherent forecast
            fc = _bottom_forecast(est)
            est = est.bottom_
            h = est.h
        else:
            h = est.h
            fc = est.predict(h)
        uids = fc["unique_id"].unique()
        Ls = L.reindex(uids) if hasattr(L, "reindex") else None
        if Ls is not None:
            sdLs = sdL.reindex(uids)
            # the champion's series that are not among today's (below today's demand.top_n, not sold
            # before the cutoff) have no lead time resolved from the book: not sized, as today's run
            # plans only today's series (their stock, if any, is a no_policy row with that reason);
            # their NaN lead time made horizon_needed fail with a traceback
            known = Ls.notna().to_numpy()
            if not known.all():
                typer.echo(f"left out {int((~known).sum())} series of the champion that are not among this run's "
                           f"demand series (e.g. {[str(u) for u in uids[~known][:3]]})", err=True)
            ok = known & lead_time_fits(Ls.fillna(0.0), sdLs.fillna(0.0), s.review_period, h)
            if not (ok | ~known).all():
                dropped = [str(u) for u in uids[known & ~ok]]
                need = horizon_needed(Ls[known & ~ok], sdLs[known & ~ok], s.review_period)
                typer.echo(f"left out {len(dropped)} series whose lead time + review + 2.33 x its spread exceeds the "
                           f"champion's {h}-period horizon (e.g. {dropped[:3]}; they need "
                           f"{need}: set demand.horizon and retrain)", err=True)
                for u in dropped:
                    why[u] = ("lead_time_beyond_horizon",
                              f"lead time + review + 2.33 x its spread exceeds the champion's {h}-period horizon "
                              f"(set demand.horizon to at least {horizon_needed(Ls[u], sdLs[u], s.review_period)} and retrain)")
            fc = fc[fc["unique_id"].isin(uids[ok])]
            L, sdL = Ls[ok], sdLs[ok]
        elif not lead_time_fits(L, sdL, s.review_period, h).all():
            raise ConfigError(f"lead time + review period + 2.33 x the lead-time spread ({L:.2f} + {s.review_period:g} + "
                              f"2.33 x {sdL:.2f} periods) exceeds the forecast horizon {h} of dealerml-demand@{alias}; "
                              f"it needs {horizon_needed(L, sdL, s.review_period)}: set demand.horizon and retrain")
    else:
        h = max(s.horizon, horizon_needed(L, sdL, s.review_period))
        if s.hierarchy:  # as the registered hierarchical model sizes it: the bottom level's coherent forecast
            est = _fit_hier(s, df, seed, _hier_levels(info), info["source"], h=h)
            why.update(_not_forecast_reasons(est))
            fc = _bottom_forecast(est)
            est = est.bottom_
        else:
            need = horizon_needed(L, sdL, s.review_period)
            est = _fit(s, df, seed, h, info["source"], note_no_window=False, horizon_why=(
                f"safety-stock forecasts {h} periods: the longest lead time + review period + 2.33 x its spread, "
                "plus one" if need > s.horizon else f"safety-stock forecasts demand.horizon, {h} periods"))
            if no_window := _no_error_window(est):  # the sizing would fail on its empty error paths: say why and what helps
                raise DataError(f"{info['source']}: {no_window}")
            why.update(_not_forecast_reasons(est))
            fc = est.predict(h)
    try:
        pol = fit_forecaster_policy(
            InventoryPolicy(service_level, s.review_period, n_sims=s.n_sims,
                            cover_limit_periods=s.cover_limit_periods, random_state=seed),
            fc, est, L, sdL,
            # intermittent / lumpy series: lead-time demand from their own history (what the
            # forecaster was fitted on); the service (serving/inventory.py) passes the same history,
            # so the batch and served numbers agree. Short-history fallback series: from the
            # fallback's error paths (models.inventory.fit_forecaster_policy).
            history=forecaster_history(est))
    except ValueError as exc:
        raise _as_data_error(exc, info["source"]) from None
    # the registered version sized from, as /safety_stock answers it (None: a forecaster fitted by this run)
    pol.model_version_ = f"dealerml-demand/{minfo.version}" if alias is not None else None
    return pol, est, why


def _not_forecast_reasons(est) -> dict[str, tuple[str, str]]:
    """Series of the forecaster's history it could not forecast, with why (the service's
    ``not_forecast`` words: too few observed periods, or no demand), in the policy's ids."""
    from models.demand import not_forecast_reasons

    if hasattr(est, "bottom_"):  # hierarchical: the bottom forecaster knows its series by their plain ids
        est = est.bottom_
    served = set(est.forecast_["unique_id"].astype(str)) if getattr(est, "forecast_", None) is not None else set()
    return {u: ("no_demand" if text.startswith("no demand") else
                "no_member_forecast" if text.startswith("no candidate") else "too_short", f"not forecast: {text}")
            for u, text in not_forecast_reasons(est, served).items()}


def _units_text(v) -> str:
    v = float(v)
    return f"{v:,.0f}" if v == round(v) else f"{v:,.2f}"


# action of a series the inventory holds stock of but the run could not size (no forecast)
NO_POLICY = "no_policy"


def _no_policy_rows(stock, sized: set[str], why: dict[str, tuple[str, str]], series_ids: set[str],
                    info: dict[str, Any], freq: str):
    """Rows of the policy file for stock (``unique_id``, ``on_hand``, optional ``on_order``) of
    series without a policy: action ``no_policy``, ``no_policy_reason`` (a code) and a
    suggestion saying why and what the stock is, so a planner reading the file sees it (it was
    said on the console only). Series holding nothing (0 on hand, nothing on order) are left out."""
    import numpy as np
    import pandas as pd

    st = stock[~stock["unique_id"].astype(str).isin(sized)].copy()
    on_order = st["on_order"].to_numpy(dtype=float) if "on_order" in st.columns else np.zeros(len(st))
    st = st[(st["on_hand"].to_numpy(dtype=float) != 0) | (on_order > 0)]
    if st.empty:
        return st.iloc[:0]
    top = info.get("top_n")
    has_order = "on_order" in st.columns
    rows = []
    for r in st.itertuples(index=False):
        u = str(r.unique_id)
        if u in why:
            code, text = why[u]
        elif u in info.get("below_top_n", ()):
            code, text = "below_top_n", f"not among the demand.top_n {top} series with the most units sold"
        elif u in series_ids:  # sold, but not in the registered forecaster's history
            code, text = "not_in_model", "not in the served forecaster's history (sold only since it was trained; retrain)"
        else:
            code = "no_sales"
            text = "no sale in the series before the cutoff (never sold, or an id spelt otherwise than the series')"
        held = f"{_units_text(r.on_hand)} units on hand"
        if has_order and float(r.on_order) > 0:
            held += f" and {_units_text(r.on_order)} on order"
        todo = ("review it by hand (dead stock: promote, transfer or write off)" if code in ("no_sales", "no_demand")
                else "review it by hand")
        row = {"unique_id": u, "freq": freq, "on_hand": float(r.on_hand)}
        if has_order:
            row.update(on_order=float(r.on_order), inventory_position=float(r.on_hand) + float(r.on_order))
        row.update(action=NO_POLICY, no_policy_reason=code,
                   suggestion=f"no policy for {held}: {text}; {todo}")
        rows.append(row)
    return pd.DataFrame(rows)


# what the policy table carries of InventoryPolicy.advise, beside the sizing
_ADVICE_COLUMNS = ["unique_id", "on_hand", "on_order", "inventory_position", "periods_of_cover", "action", "order_qty",
                   "order_qty_unrounded", "min_order_qty", "order_multiple", "excess", "suggestion"]


def _policy_table(policy, s, info: dict[str, Any]):
    """The policy with its units said: ``freq`` (the period of ``mean_demand``, ``lead_time``,
    ``lead_time_std``, ``review_period`` and ``periods_of_cover``), each series' lead time and
    spread in days beside the periods, and where they came from (``lead_time_source``:
    ``lead_times``, the order book's table, or ``config``, demand.lead_time_days / _std_days),
    by the rule ``models.inventory.series_lead_times`` sizes with."""
    import pandas as pd

    uids = policy["unique_id"].to_numpy()
    lt = info.get("lead_times")
    book = lt.reindex(uids) if lt is not None else pd.DataFrame(index=uids, columns=["lead_time_days", "lead_time_std_days"],
                                                                  dtype=float)
    out = policy.copy()
    at = out.columns.get_loc("lead_time_std") + 1
    out.insert(at, "freq", s.freq)
    out.insert(at + 1, "lead_time_days", book["lead_time_days"].fillna(float(s.lead_time_days)).to_numpy(dtype=float))
    out.insert(at + 2, "lead_time_std_days", book["lead_time_std_days"].fillna(float(s.lead_time_std_days)).to_numpy(dtype=float))
    out.insert(at + 3, "lead_time_source", ["lead_times" if x else "config" for x in book["lead_time_days"].notna()])
    return out


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


@app.command("safety-stock")
def safety_stock(
    config: Annotated[Path, typer.Option("--config", help="Experiment config with a demand: section.")],
    out: Annotated[Path, typer.Option("--out", help="Policy table (.csv or .parquet).")],
    service_level: Annotated[float, typer.Option("--service-level", help="Target cycle service level, e.g. 0.95.")] = 0.95,
    on_hand: Annotated[Path | None, typer.Option("--on-hand", help="Current stock: unique_id (or the key columns, e.g. sku, location), on_hand (CSV/Parquet) for replenish / overstock warnings; optional on_order, min_order_qty, order_multiple per series.")] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="Size stock from the registered dealerml-demand version with this alias (e.g. champion) instead of fitting a forecaster.")] = None,
    on_hand_date: Annotated[str | None, typer.Option("--on-hand-date", help="Date the stock in --on-hand was counted (YYYY-MM-DD), for its rows without a snapshot_date column value; said per row as on_hand_date.")] = None,
) -> None:
    """Safety stock, reorder point and order-up-to level per series (distribution-based and normal formula)."""
    import pandas as pd

    try:
        counted = _on_hand_date(on_hand_date, on_hand)
        if not 0.5 < service_level < 1:
            raise ConfigError(f"--service-level must be between 0.5 and 1; got {service_level}")
        check_out_path(out, "--out", _TABLE_SUFFIXES)
        if alias is not None:  # a home without a store: said before the data load, no empty store created
            from training.commands.experiments import require_store

            require_store(f"safety-stock --alias {alias}", "leave out --alias to fit a forecaster")
        if on_hand is not None and not on_hand.exists():
            raise DataError(f"--on-hand {on_hand}: file not found")
        as_of = _book_as_of(config)  # the latest date a stock count may carry
        from training._validate_columns import resolve_as_of

        if counted is not None and counted >= resolve_as_of(as_of):
            raise DataError(f"--on-hand-date {counted.date()} is after {_as_of_words(as_of)}: a count cannot be dated later")
        s, df, info, seed = _settings_and_series(config, None, None, {})
        keys = _key_columns(s, info)
        # before the (long) fit
        oh = _read_on_hand(on_hand, keys, on_hand_date=counted, as_of=as_of) if on_hand is not None else None
        pol, est, why = _policy(s, df, info, seed, service_level, alias=alias)
        table = _policy_table(pol.policy_, s, info)
        # short-history fallback series: sized from the fallback's distribution (ltd_source short_history), or
        # the higher of that and their own lumpy past's bootstrap (short_history+own_history)
        table.insert(table.columns.get_loc("ltd_source") + 1, "forecast_note", _short_notes(est, table["unique_id"]))
        sized, series_ids = set(table["unique_id"].astype(str)), set(df["unique_id"].astype(str))
        no_policy = None  # stock of series without a policy: rows of the file, action no_policy
        if on_hand is None and info.get("on_hand") is not None:  # the order book's inventory table
            stock = info["on_hand"]
            adv = pol.advise(pd.DataFrame({"unique_id": stock.index.astype(str), "on_hand": stock.to_numpy(dtype=float)}),
                             freq=s.freq)
            table = table.merge(adv[_ADVICE_COLUMNS], on="unique_id", how="left")
            no_stock = table.loc[table["on_hand"].isna(), "unique_id"].astype(str).tolist()
            dates = info.get("on_hand_dates")
            typer.echo(f"on-hand from the order book's inventory for {len(table) - len(no_stock)} of {len(table)} series"
                       + (f" (latest snapshots dated {dates[0]} .. {dates[1]})" if dates else "")
                       + (f"; {len(no_stock)} series have no inventory row and get no replenish / overstock advice "
                          f"(e.g. {no_stock[:3]})" if no_stock else ""), err=True)
            # stock of series without a policy (never sold, too short to forecast, a lead time beyond
            # the champion's horizon): often dead stock, so rows of the file with the reason, not
            # only a line on the console
            no_policy = _no_policy_rows(pd.DataFrame({"unique_id": stock.index.astype(str),
                                                      "on_hand": stock.to_numpy(dtype=float)}),
                                        sized, why, series_ids, info, s.freq)
            if len(no_policy):
                typer.echo(f"the inventory holds stock of {len(no_policy)} series without a policy (no forecast: never "
                           f"sold, too short, or a lead time beyond the horizon), {no_policy['on_hand'].sum():,.0f} units: "
                           f"rows of {out.name} with action {NO_POLICY} and the reason in no_policy_reason / suggestion "
                           f"(e.g. {dict(zip(no_policy['unique_id'][:3], no_policy['on_hand'][:3], strict=True))})",
                           err=True)
        if oh is not None:
            known = set(table["unique_id"])
            unmatched = oh.loc[~oh["unique_id"].isin(known), "unique_id"].tolist()
            if len(unmatched) == len(oh):
                raise DataError(f"--on-hand {on_hand}: none of its {len(oh)} unique_id values is a sized series "
                                f"(e.g. {unmatched[:3]}); the series look like {sorted(known)[:3]}")
            if unmatched:
                no_policy = _no_policy_rows(oh, sized, why, series_ids, info, s.freq)
                typer.echo(f"--on-hand: {len(unmatched)} unique_id value(s) match no sized series (e.g. {unmatched[:3]}); "
                           f"the {len(no_policy)} holding stock are rows of {out.name} with action {NO_POLICY} and the "
                           "reason in no_policy_reason / suggestion", err=True)
            adv = pol.advise(oh, freq=s.freq)
            table = table.merge(adv[_ADVICE_COLUMNS], on="unique_id", how="left")
            absent = sorted(known - set(oh["unique_id"]))
            if absent:
                typer.echo(f"--on-hand: {len(absent)} of {len(known)} sized series have no row in it and get no "
                           f"replenish / overstock advice (e.g. {absent[:3]})", err=True)
        if "action" in table.columns:
            table["no_policy_reason"] = pd.Series(pd.NA, index=table.index, dtype=object)
            if no_policy is not None and len(no_policy):
                table = pd.concat([table, no_policy.reindex(columns=table.columns)], ignore_index=True)
        # as of: the last period of history the sizing starts after (its first day, as /forecast's
        # last_observed), and the snapshot date of each row's on-hand from the book's inventory (the
        # oldest where a series sums several; empty for --on-hand, undated or no stock): a file read
        # later says how stale it is, as /safety_stock answers it
        last = getattr(est, "last_ds_", None)
        table["last_observed"] = None if last is None else pd.Timestamp(last).date().isoformat()
        if "on_hand" in table.columns:
            if on_hand is None:
                snap = info.get("on_hand_date")
            else:  # the file's snapshot_date / --on-hand-date (None: unknown)
                snap = oh.set_index("unique_id")["snapshot_date"] if "snapshot_date" in oh.columns else None
            when = (table["unique_id"].astype(str).map(snap) if snap is not None
                    else pd.Series(None, index=table.index, dtype=object))
            when = when.where(table["on_hand"].notna() & when.notna(), None).astype(object)
            table.insert(table.columns.get_loc("on_hand") + 1, "on_hand_date", when)
            if last is not None:
                _say_stock_dates(table, est, s.freq, pd.Timestamp(last), on_hand, oh)
        if pol.model_version_ is not None:  # every row of the file, the no_policy ones of this run too
            table["model_version"] = pol.model_version_
        table = _with_keys(table, keys)
        _write_table(table, out)
    except DealermlError as err:
        fail(err)
    n_none = int((table["action"] == NO_POLICY).sum()) if "action" in table.columns else 0
    n_short = int(table["ltd_source"].astype(str).str.startswith("short_history").sum()) if "ltd_source" in table.columns else 0
    typer.echo(f"wrote the policy of {len(table) - n_none} series at service level {service_level} to {out}"
               + (f", and {n_none} series with stock but no policy (action {NO_POLICY})" if n_none else "")
               + (f"; {n_short} of them have a short history and are sized from the fallback forecast's distribution "
                  "(ltd_source short_history; short_history+own_history where a lumpy past of 26+ periods sized it higher; forecast_note)" if n_short else ""))
    if "action" in table.columns:
        counts = table["action"].value_counts().to_dict()
        typer.echo(f"actions: {counts}")


@simulate_app.command("inventory")
def simulate_inventory(
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the replay result (JSON).")],
    config: Annotated[Path | None, typer.Option("--config", help="Experiment config with a demand: section.")] = None,
    series: Annotated[Path | None, typer.Option("--series", help="Ready long table: unique_id, ds, y.")] = None,
    freq: Annotated[str | None, typer.Option("--freq", help="D, W or M (with --series).")] = None,
    holdout: Annotated[int, typer.Option("--holdout", help="Periods replayed at the end of the history.")] = 12,
    targets: str = typer.Option("0.90,0.95,0.98", "--targets", help="Comma-separated target cycle service levels."),
    lead_time_days: Annotated[float | None, typer.Option("--lead-time-days", help="Mean replenishment lead time in days for series without a row in the order book's lead_times table (default: config demand.lead_time_days).")] = None,
    top_n: Annotated[int | None, typer.Option("--top-n", help="Keep the N series with the largest total demand.")] = None,
) -> None:
    """Replay the (R, S) policy over a holdout: achieved cycle service, fill rate, on-hand for both methods,
    overall and per lead-time band. Each series has its own lead time from the order book's lead_times
    table (as safety-stock), else the config's; with a spread, each simulated order's lead time is drawn
    from the distribution the policies are sized with."""
    try:
        from training.demand_backtest import run_inventory_replay

        check_out_path(json_out, "--json")
        s, df, info, seed = _settings_and_series(config, series, freq, {"top_n": top_n, "lead_time_days": lead_time_days})
        if series is not None and s.top_n:  # rows in messages are the file's (keep_top_series)
            from training.demand_config import keep_top_series

            df, _ = keep_top_series(df, s.top_n, s.freq, info["source"])
        try:
            tg = [float(x) for x in targets.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--targets must be comma-separated numbers like 0.90,0.95; got {targets!r}") from None
        if not tg or not all(0.5 < x < 1 for x in tg):
            raise ConfigError(f"--targets must lie between 0.5 and 1; got {targets!r}")
        try:
            res = run_inventory_replay(df, freq=s.freq, lead_time_days=s.lead_time_days, lead_time_std_days=s.lead_time_std_days,
                                       review_period=s.review_period, holdout=holdout, targets=tg, n_sims=min(s.n_sims, 2000),
                                       forecaster_kwargs=_replay_forecaster_kwargs(s, seed),
                                       random_state=seed,
                                       # the book's per-series lead times, as safety-stock sizes with
                                       lead_times=info.get("lead_times"),
                                       # each epoch sized from the book as it stood then (cancellations)
                                       history_as_of=info.get("as_of"))
        except ValueError as exc:
            raise _too_short_error(exc, info["source"], s, "The replay measures the members' policies") from None
        res["source"] = _source_record(info)
        write_json(res, json_out)
    except DealermlError as err:
        fail(err)
    def f(x, spec: str) -> str:  # a figure the replay could not measure is null in the JSON
        return "n/a" if x is None else format(x, spec)

    def figs(r: dict, bracket: str = "") -> str:  # one method's figures: both service levels, fill, on-hand
        return (f"CSL {f(r['cycle_service_level_end_net'], '.3f')} ({bracket}{f(r['cycle_service_level'], '.3f')}) "
                f"fill {f(r['fill_rate'], '.3f')} on-hand {f(r['avg_on_hand'], '.1f')}")

    dist = ", ".join(f"{k}: {v}" for k, v in res["lead_time_distribution"].items())
    typer.echo(f"lead times ({res['lead_times_source']}: {res['n_series_lead_time_from_book']} series from the order book, "
               f"{res['n_series_lead_time_from_config']} from the config), series per lead time in periods: {dist}; "
               f"arrivals {res['arrivals'].split(':')[0]}")
    if res["n_series_without_full_cycle"]:
        typer.echo(f"note: {res['n_series_without_full_cycle']} series have lead time + review longer than the "
                   f"{holdout}-period holdout, so no cycle of theirs is counted; use a longer --holdout", err=True)
    for k, v in res["targets"].items():
        typer.echo(f"target {k}: distribution {figs(v['distribution'], 'no unserved demand ')} | "
                   f"normal {figs(v['normal'])}")
        if len(v["by_lead_time"]) > 1:
            typer.echo("  by lead time: " + "; ".join(
                f"{b} ({r['distribution']['n_series']} series) CSL {f(r['distribution']['cycle_service_level_end_net'], '.3f')} "
                f"/ normal {f(r['normal']['cycle_service_level_end_net'], '.3f')}" for b, r in v["by_lead_time"].items()))
    sh = res.get("short_history") or {}
    if sh.get("n_series"):
        typer.echo(f"short history (new series, apart; the figures above leave them out): {sh['n_series']} series the "
                   f"fallback sized at some epoch ({sh['n_series_short_at_first_epoch']} short at the first, "
                   f"{sh['n_series_first_sale_in_holdout']} first sold in the holdout, {sh['n_series_graduating']} "
                   "long enough for the members later); over the cycles the fallback sized:")
        for k, v in sh["targets"].items():
            d, n = v["distribution"], v["normal"]
            typer.echo(f"  target {k}: {figs(d)}, {d['n_cycles']} cycles of {d['n_series']} series | normal CSL "
                       f"{f(n['cycle_service_level_end_net'], '.3f')} on-hand {f(n['avg_on_hand'], '.1f')}")
            w0, w1 = v["by_window"]["without_demand"], v["by_window"]["with_demand"]
            typer.echo(f"    fallback window without demand (level 0): {w0['n_cycles']} cycles, CSL "
                       f"{f(w0['cycle_service_level_end_net'], '.3f')} fill {f(w0['fill_rate'], '.3f')}; with demand: "
                       f"{w1['n_cycles']} cycles, CSL {f(w1['cycle_service_level_end_net'], '.3f')} fill {f(w1['fill_rate'], '.3f')}")
            o = v["by_sizing"]["short_history+own_history"]
            if o["n_cycles"]:
                typer.echo(f"    raised to the own-history bootstrap (lumpy past): {o['n_cycles']} cycles, CSL "
                           f"{f(o['cycle_service_level_end_net'], '.3f')} fill {f(o['fill_rate'], '.3f')}")
    typer.echo("CSL: share of cycles ending without a backorder (what the target sizes for); in brackets: share of "
               "cycles with no unserved demand")
    if any(v["distribution"]["cycle_service_level"] is None for v in res["targets"].values()):
        typer.echo(f"note: no review cycle completed inside the {holdout}-period holdout, so cycle service "
                   "is n/a; use a longer --holdout")
    typer.echo(f"wrote {json_out}")


@train_app.command("demand")
def train_demand(
    config: Annotated[Path, typer.Option("--config", help="Experiment config with a demand: section.")],
    replay: Annotated[bool, typer.Option("--replay/--no-replay", help="Also run the inventory replay and log its plot.")] = True,
    holdout: Annotated[int, typer.Option("--holdout", help="Replay holdout in periods.")] = 12,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the backtest report here (the JSON of "
                                                  "`backtest demand`), so one run gives both.")] = None,
) -> None:
    """Backtest, fit on all history, log metrics and plots to MLflow, register dealerml-demand."""
    try:
        if json_out is not None:
            check_out_path(json_out, "--json")  # before any work
        from models.demand_cache import MemberCache
        from training import tracking
        from training.config import load_config
        from training.demand_backtest import (
            check_backtest,
            check_inventory_replay,
            replay_metrics,
            run_backtest,
            run_inventory_replay,
        )
        from training.demand_plots import accuracy_by_class, fan_charts, service_vs_target

        cfg = load_config(config)
        s, df, info, seed = _settings_and_series(config, None, None, {})
        kw = s.forecaster_kwargs(seed)
        fingerprint = {"source": info["source"], "kind": info["kind"], "n_series": int(df["unique_id"].nunique()),
                       "n_rows": int(len(df)), "ds_min": str(df["ds"].min()), "ds_max": str(df["ds"].max())}
        if info.get("order_lines_sha256"):  # an order book (a series table has none): compare / promote tell books apart
            fingerprint["order_lines_sha256"] = info["order_lines_sha256"]
        # demand.hierarchy: the coherent forecaster of every level is backtested and registered;
        # the replay (and safety stock) stay on the bottom level, where stock sits
        levels = _hier_levels(info) if s.hierarchy else None
        # what the data and the settings alone refuse (a book too short for the backtest windows or
        # the replay's holdout) before the MLflow store and run are opened: a refusal leaves no
        # mlflow.db, run or version behind; the same checks, and messages, as inside the run below
        try:
            check_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step, forecaster_kwargs=kw)
        except ValueError as exc:
            raise _too_short_error(exc, info["source"], s, _TRAIN_NEEDS_WINDOWS) from None
        # the replay's settings, checked here before a run is opened and run the same way inside it; each
        # series' lead time from the book, as safety-stock and simulate inventory
        replay_kw = dict(freq=s.freq, lead_time_days=s.lead_time_days, lead_time_std_days=s.lead_time_std_days,
                         review_period=s.review_period, holdout=holdout, n_sims=min(s.n_sims, 2000), random_state=seed,
                         forecaster_kwargs=_replay_forecaster_kwargs(s, seed), lead_times=info.get("lead_times"),
                         history_as_of=info.get("as_of"))
        if replay:
            try:
                check_inventory_replay(df, **replay_kw)
            except ValueError as exc:
                raise _as_data_error(exc, info["source"]) from None
        with staged_outputs() as staged, tracking.training_run("demand", config=cfg, fingerprint=fingerprint,
                                                                seed=seed) as run:
            try:
                if levels:
                    from training.demand_hier_backtest import run_hier_backtest

                    # as below: the final fit takes each level's selection windows from the backtest
                    member_cache = MemberCache()
                    report, cv = run_hier_backtest(df, levels=levels, method=s.reconcile, freq=s.freq, h=s.horizon,
                                                   n_windows=s.windows, step_size=s.step, forecaster_kwargs=kw,
                                                   member_cache=member_cache, history_as_of=info.get("as_of"))
                    cv = _bottom_cv(cv, df, levels)  # the fan charts: SKU x location series, by their ids
                else:
                    # the final fit's selection windows are cutoffs of the backtest (same table and
                    # settings): it takes their member forecasts instead of refitting them
                    member_cache = MemberCache()
                    report, cv = run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step,
                                              forecaster_kwargs=kw, member_cache=member_cache,
                                              history_as_of=info.get("as_of"))
            except ValueError as exc:
                raise _too_short_error(exc, info["source"], s, _TRAIN_NEEDS_WINDOWS) from None
            from training.demand_tuning import model_params

            run.log_params({**model_params(kw),  # the tuned settings, under the names a tune run logs them
                            "freq": s.freq, "horizon": s.horizon, "windows": s.windows, "selection": s.selection,
                            "profile": s.profile, "fast_above": s.fast_above,
                            # a hierarchy's bottom level skips short series (models.demand_hier)
                            "short_history": "skip" if levels else s.short_history,
                            # the windows the backtest was scored on (what compare and the version's tags say)
                            **({"backtest.cutoffs": ",".join(report["setup"]["cutoffs"])}
                               if (report.get("setup") or {}).get("cutoffs") else {}),
                            **({"hierarchy": True, "reconcile": s.reconcile, "levels": ",".join(levels)} if levels else {})})
            for m, vals in report["metrics"].items():
                run.log_metrics({f"{m}.{k}": v for k, v in vals.items() if v is not None})
            for k, per in report["by_class"].items():
                run.log_metrics({f"{m}.{key}": v for m, vals in per.items() if isinstance(vals, dict)
                                 for key, v in vals.items() if v is not None}, slice={"demand_class": k})
            short = report.get("short_history") or {}  # the fallback's rows, scored apart from the headline
            if short:
                run.log_metrics({f"ShortHistory.{k}": float(v) for k, v in short.items()
                                 if isinstance(v, int | float) and not isinstance(v, bool)})
            for name, lv in report.get("hierarchy", {}).get("by_level", {}).items():  # e.g. Final.mase__level.sku
                run.log_metrics({f"{m}.{k}": v for m, vals in lv["metrics"].items() if isinstance(vals, dict)
                                 for k, v in vals.items() if v is not None}, slice={"level": name})
            report["setup"]["source"] = _source_record(info)
            run.log_dict(report, "backtest/report.json")
            _print_backtest(report)
            import matplotlib.pyplot as plt

            for fig, name in ((fan_charts(df, cv, seed=seed), "plots/fan_charts.png"),
                              (accuracy_by_class(report), "plots/accuracy_by_class.png")):
                run.log_figure(fig, name)
                plt.close(fig)
            if replay:
                try:
                    rep = run_inventory_replay(df, **replay_kw)
                except ValueError as exc:
                    raise _as_data_error(exc, info["source"]) from None
                run.log_dict(rep, "inventory/replay.json")
                for mets, sl in replay_metrics(rep):  # established series, and the short-history group apart
                    run.log_metrics(mets, slice=sl)
                fig = service_vs_target(rep)
                run.log_figure(fig, "plots/service_vs_target.png")
                plt.close(fig)
            import pandas as pd

            if levels:
                est = _fit_hier(s, df, seed, levels, info["source"], member_cache=member_cache)
                bottom = est.bottom_
                example = pd.DataFrame({"unique_id": [str(est.nodes_["served_id"].iloc[-1])], "h": [s.horizon]})
            else:
                est = bottom = _fit(s, df, seed, s.horizon, info["source"], member_cache=member_cache)
                example = pd.DataFrame({"unique_id": [str(est.panel_.uids[0])], "h": [s.horizon]})
            run.set_tags({"dealerml.demand_profile": bottom.profile_})  # what "auto" resolved to
            metrics = dict(report["metrics"].get("Final", {}))
            if levels:  # /model_info shows each level's coherent accuracy beside the bottom level's
                run.set_tags({"dealerml.demand_hierarchy": ",".join(levels)})
                metrics["by_level"] = {k: v["metrics"].get("Final") or {}
                                       for k, v in report["hierarchy"]["by_level"].items()}
            meta = {"training_window": {"start": str(df["ds"].min()), "end": str(bottom.last_ds_.date())},
                    "backtest_metrics": metrics, "freq": s.freq, "horizon": s.horizon,
                    **({"hierarchy": {"levels": levels, "method": s.reconcile}} if levels else {})}
            run.log_model(est, input_example=example, metadata=meta, predict_method="predict_frame")
            run.register("dealerml-demand")
            # the report is written inside the run (a failed write registers nothing) and put in
            # place after it (a failed run leaves no report behind)
            if json_out is not None:
                staged += stage_files([(json_out, json_writer(report))])
        if json_out is not None:
            commit_files(staged)
            typer.echo(f"wrote {json_out}")
        setup, mets = report.get("setup", {}), report["metrics"]
        best = setup.get("best_statsforecast_baseline")
        versus = (f" vs {mets[best]['mase']:.3f} for {best}, the best statsforecast baseline "
                  f"({setup['final_mase_ratio_to_best_baseline']:.3f}x)"
                  if best in mets and setup.get("final_mase_ratio_to_best_baseline") is not None else "")
        where = f" on the windows from {', '.join(setup['cutoffs'])}" if setup.get("cutoffs") else ""
        typer.echo(f"run {run.run_id}: Final MASE {mets['Final']['mase']:.3f}{versus}{where}; "
                   f"{registered_text(run.registered, config=config)}")
    except DealermlError as err:
        fail(err)
