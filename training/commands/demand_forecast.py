"""The ``forecast`` command: a forecaster fitted on all history (or the registered one) and its
table, with the short-history notes and the plan of known-future drivers. Heavy libraries are
imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from training.cli import app
from training.commands._alias_plan import calendar_plan, untrained_promo_note
from training.commands._common import check_out_path, check_separate_outputs, fail
from training.commands._demand_common import (
    _TABLE_SUFFIXES,
    _as_data_error,
    _fit,
    _fitted_elsewhere,
    _hier_levels,
    _key_columns,
    _registered,
    _say_hier_all_short,
    _settings_and_series,
    _short_notes,
    _table_writer,
    _with_keys,
    _write_table,
)
from training.commands._demand_hier_plan import _hier_predict_with_plan
from training.errors import ConfigError, DealermlError

__all__: list[str] = []


def _alias_keys(est, config: Path | None, minfo: Any = None) -> list[str]:
    """The key columns of a registered forecaster's ids (:func:`~training.commands._alias_plan.alias_key_columns`,
    as the service splits them): a hierarchical one knows its levels; for a plain one, the demand.levels its
    training run recorded, else the config's (or its series table's unique_id columns) when --config is given
    (only the demand: section is read; the ids must split into them, else no key columns). A config listing
    the levels in another order than the training run ([location, sku]) is said in a note."""
    if getattr(est, "levels", None) is not None and hasattr(est, "bottom_"):
        return [str(c) for c in est.levels]
    if config is None:
        return []
    from training.commands._alias_plan import alias_key_columns
    from training.config import load_config
    from training.demand_config import demand_settings

    keys, note = alias_key_columns(est, demand_settings(load_config(config)), getattr(minfo, "run_id", None),
                                   config=config)
    if note:
        typer.echo(f"note: {note}", err=True)
    return keys


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
            plan_note = ""
            keys = None  # the key columns, split once: a note on them is said once
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
                    # campaigns added to the config's promotions table since the version was trained
                    keys = _alias_keys(est, config, minfo)
                    plan, plan_note = calendar_plan(est, cinfo, keys, config=config, alias=alias)
                    if plan is not None:
                        est.set_planned_drivers(plan)
                    untrained = untrained_promo_note(est, cinfo.get("promo_for"), config=config,
                                                     model=f"dealerml-demand@{alias} (version {minfo.version})")
                    if untrained:  # trained before data.promotions: the calendar is not its promo
                        typer.echo(f"note: {untrained}", err=True)
            h = getattr(est, "bottom_", est).h if horizon is None else horizon
            try:
                if hasattr(est, "bottom_"):  # hierarchical: every level, in served ids, reconciled under the plan
                    fc, note = _hier_predict_with_plan(est, h, future, drivers_out, staged)
                    fc = _with_served_ids(est, fc)
                else:
                    fc, note = _predict_with_plan(est, h, future, drivers_out, staged)
            except ValueError as exc:
                raise ConfigError(f"--horizon: {exc} (dealerml-demand@{alias} is version {minfo.version})") from None
            fc = _with_notes(est, fc)
            # the version the rows came from, as /forecast answers it and the score tables carry it
            fc["model_version"] = f"dealerml-demand/{minfo.version}"
            if keys is None:
                keys = _alias_keys(est, config, minfo)
            _write_table(_with_keys(fc, keys), out, also=staged)
            typer.echo(f"wrote {len(fc)} rows ({fc['unique_id'].nunique()} series x {h} periods) from "
                       f"dealerml-demand@{alias} (version {minfo.version}) to {out}{plan_note}{note}"
                       + _short_summary(fc))
            return
        if config is None:
            raise ConfigError("--config: give the experiment config to fit on (or --alias champion to forecast with "
                              "the registered model)")
        s, df, info, seed = _settings_and_series(config, None, None, {"horizon": horizon})
        note = ""
        if s.hierarchy:
            from models.demand_hier import HierarchicalDemandForecaster

            levels = _hier_levels(info)
            try:
                est = HierarchicalDemandForecaster(levels, method=s.reconcile,
                                                   forecaster={"freq": s.freq, "h": s.horizon, **s.forecaster_kwargs(seed)}).fit(df)
                if info.get("planned_drivers") is not None:  # the promotions table's campaigns: the default plan
                    est.set_planned_drivers(info["planned_drivers"](s.horizon))
            except ValueError as exc:
                raise _as_data_error(exc, info["source"]) from None
            fc, note = _hier_predict_with_plan(est, s.horizon, future, drivers_out, staged)
            fc = _with_served_ids(est, fc)
            _say_hier_all_short(est)
        else:
            est = _fit(s, df, seed, s.horizon, info["source"], planned=info.get("planned_drivers"))
            fc, note = _predict_with_plan(est, s.horizon, future, drivers_out, staged)
        fc = _with_notes(est, fc)
        _write_table(_with_keys(fc, _key_columns(s, info)), out, also=staged)
    except DealermlError as err:
        fail(err)
    typer.echo(f"wrote {len(fc)} rows ({fc['unique_id'].nunique()} series x {s.horizon} periods) to {out}{note}"
               + _short_summary(fc))


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
    from models.demand_driver_range import warning_text
    from training.future_drivers import read_future_drivers

    # a reconciled (hierarchical) forecaster has no drivers of its own
    template = est.future_drivers() if hasattr(est, "future_drivers") else None
    if template is None:
        if future is not None or drivers_out is not None:
            raise ConfigError("--future / --drivers-out: this forecaster was fitted without known-future drivers "
                              "(demand.series.exog or demand.drivers in the config); there is nothing to plan")
        return est.predict(h), ""
    names = [c for c in template.columns if c not in ("unique_id", "ds")]
    # the default plan: the campaigns of the promotions table the forecaster was given at fit
    # (set_planned_drivers), else each series' last known value carried forward
    planned = [c for c in names if c == "promo" and getattr(est, "planned_drivers_", None) is not None]
    default = (f"{planned} from the promotions table (data.promotions: 0 outside a campaign)"
               + (f", the others ({[c for c in names if c not in planned]}) at each series' last known value"
                  if len(planned) < len(names) else "")
               if planned else "each series' last known value carried forward")
    if future is None:
        plan, note = template, (f"\ndrivers {names}: {default} over the horizon (give planned values with --future "
                                "FILE)")
    else:
        plan, summ = read_future_drivers(future, template)
        note = (f"\ndrivers {summ['drivers']} planned from {future} for {summ['series']} of {summ['of_series']} "
                f"series ({summ['cells']} values); everything else as without a plan: {default}")
        warned = est.driver_range_warnings(summ["planned"]) if hasattr(est, "driver_range_warnings") else []
        if warned is None:  # saved before the ranges were recorded
            note += ("\nthe planned values were not checked against the drivers' training range (this forecaster "
                     "was saved before it recorded them)")
        for w in warned or []:
            typer.secho(f"warning: --future {future}: {warning_text(w)}", fg=typer.colors.YELLOW, err=True)
    fc = est.predict(h) if future is None else est.predict(h, X_df=plan)  # the same without a plan (tested)
    if drivers_out is not None:
        used = plan[plan["ds"].isin(fc["ds"].unique())]
        if staged is None:
            _write_table(used, drivers_out, "--drivers-out")
        else:
            staged.append((drivers_out, _table_writer(used, drivers_out)))
        note += f"\nwrote the drivers used to {drivers_out}"
    return fc, note
