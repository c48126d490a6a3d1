"""Helpers shared by the demand commands (``demand``, ``demand_forecast``, ``demand_stock``): the
settings and series a command reads, the forecasters it fits (``_fit``, ``_fit_hier``) or loads
(``_registered``) and what it says about them, the key columns of the ids and the table writer.
Heavy libraries are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from training.commands._common import check_out_path, note_model_environment, write_files
from training.errors import ConfigError, DataError

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
        try:
            df, info = load_demand_series(cfg, s)
        except ValueError as exc:  # the series build's words (e.g. units too large to add up): named, not a traceback
            raise DataError(f"{cfg.config_path or cfg.name}: {exc}") from None
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
        extra = [c for c in df.columns if c not in ("unique_id", "ds", "y")]  # the table's drivers
        if extra:
            from training.demand_driver_leaks import zero_demand_markers

            info["driver_leaks"] = zero_demand_markers(df, {c: c for c in extra}, str(series))
        seed = 0
    for leak in info.get("driver_leaks") or ():  # a driver read off the sales (training.demand_driver_leaks)
        typer.secho(f"warning: {leak}", fg=typer.colors.YELLOW, err=True)
    return s, df, info, seed


def _as_data_error(exc: ValueError, source: str) -> DataError:
    return DataError(f"{source}: {exc}")


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
    from training.demand_config import INFO_FUNCTIONS

    out = {k: v for k, v in info.items() if k not in ("on_hand", "on_hand_date", "lead_times", "below_top_n",
                                                      *INFO_FUNCTIONS)}
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


def _fit(s, df, seed: int, h: int, source: str, member_cache=None, note_no_window: bool = True,
         horizon_why: str = "", planned=None):
    """``horizon_why``: where ``h`` comes from, added to a refusal of a table too short for it.
    ``planned``: ``load_demand_series``' ``info["planned_drivers"]`` (h -> the drivers a promotions
    calendar plans after the history), made the forecast's default plan."""
    from models.demand import DemandForecaster, TooShortError

    try:
        est = DemandForecaster(freq=s.freq, h=h, **s.forecaster_kwargs(seed)).fit(df, member_cache=member_cache)
        if planned is not None:
            est.set_planned_drivers(planned(h))
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


def _fit_hier(s, df, seed: int, levels: list[str], source: str, member_cache=None, h: int | None = None,
              planned=None):
    """The coherent forecaster of every level (``demand.hierarchy``), fitted on all history
    (each level's selection windows from ``member_cache`` where the backtest filled it); ``h``
    (default ``demand.horizon``): its horizon. ``planned``: as :func:`_fit`'s, the bottom level's
    default plan (every level reconciled under it)."""
    from models.demand_hier import HierarchicalDemandForecaster

    h = s.horizon if h is None else h
    try:
        est = HierarchicalDemandForecaster(levels, method=s.reconcile,
                                           forecaster={"freq": s.freq, "h": h, **s.forecaster_kwargs(seed)}).fit(
                                               df, member_cache=member_cache)
        if planned is not None:
            est.set_planned_drivers(planned(h))
    except ValueError as exc:
        raise _as_data_error(exc, source) from None
    _say_left_out(est.bottom_, df, h)
    _say_hier_all_short(est)
    return est


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
