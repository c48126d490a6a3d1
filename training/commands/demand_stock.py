"""Stock commands: ``safety-stock`` (the policy per series, with replenish / overstock advice
and rows for stock without a policy) and ``simulate inventory`` (the policies replayed over a
holdout). Heavy libraries are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from training.cli import app, simulate_app
from training.commands._common import check_out_path, fail, write_json
from training.commands._demand_common import (
    _TABLE_SUFFIXES,
    _as_data_error,
    _fit,
    _fit_hier,
    _fitted_elsewhere,
    _hier_levels,
    _key_columns,
    _no_error_window,
    _registered,
    _replay_forecaster_kwargs,
    _settings_and_series,
    _short_notes,
    _source_record,
    _too_short_error,
    _with_keys,
    _write_table,
)
from training.commands._demand_on_hand import (
    _as_of_words,
    _book_as_of,
    _check_on_hand_early,
    _key_candidates,
    _on_hand_date,
    _read_on_hand,
    _say_stock_dates,
)
from training.commands._stock_no_policy import NO_POLICY, _no_policy_rows
from training.errors import ConfigError, DataError, DealermlError

__all__: list[str] = []


def _bottom_forecast(est):
    """The coherent forecast of a hierarchical forecaster's bottom level (served ids), without the
    series it could not forecast (filled with 0 units for the reconciliation only)."""
    import pandas as pd

    fc = est.predict_frame(pd.DataFrame({"h": [est.bottom_.h]}))
    return fc[fc["level"] == est.nodes_["level"].iloc[-1]].drop(columns=["level"]).reset_index(drop=True)


def _policy(s, df, info, seed: int, service_level: float, alias: str | None = None, config: Path | None = None,
            registered: tuple[Any, Any, list[str]] | None = None):
    """``registered``: with ``alias``, ``(est, minfo, keys)`` of the version already loaded by the caller, with the
    key columns its ids split into (:func:`~training.commands.demand_forecast._alias_keys`, its note said once)."""
    from models.inventory import (
        InventoryPolicy,
        fit_forecaster_policy,
        forecaster_history,
        horizon_needed,
        lead_time_fits,
        lead_time_periods,
        lead_times_beyond_forecaster,
        series_lead_times,
    )

    # the unit of the lead times, review period and cover: periods of the config's demand.freq, or of the
    # registered version's own (a config edited since training, W -> M, sized weekly forecasts in months)
    freq, R, cover = s.freq, s.review_period, s.cover_limit_periods
    if alias is not None:
        from training.commands._alias_plan import trained_periods

        # The registered forecaster (what the service serves): its horizon bounds the lead times
        # it can size stock for; longer series are left out and named, as the service refuses them.
        if registered is not None:
            est, minfo, alias_keys = registered
        else:
            from training.commands.demand_forecast import _alias_keys

            est, minfo = _registered(alias)
            alias_keys = _alias_keys(est, config, minfo)
        caution = _fitted_elsewhere(minfo, alias, info, df, "The policies size this book's lead times and stock on "
                                    "its forecasts of those order lines")
        if caution:  # another book's config: sized on that book's forecasts, said (a caution)
            typer.secho(f"caution: {caution}", fg=typer.colors.YELLOW, err=True)
        freq, R, cover, freq_note = trained_periods(est, s, config=config, model=f"dealerml-demand@{alias}")
        if freq_note:
            typer.echo(f"note: {freq_note}", err=True)
    L = lead_time_periods(s.lead_time_days, freq)
    sdL = lead_time_periods(s.lead_time_std_days, freq)
    lt = info.get("lead_times")
    if lt is not None:  # per-series lead times from the order book's lead_times table; config value elsewhere
        L, sdL = series_lead_times(df["unique_id"].unique(), lt, s.lead_time_days, s.lead_time_std_days, freq)
    why: dict[str, tuple[str, str]] = {}  # series without a policy -> (reason code, words)
    if alias is not None:
        # campaigns added to the config's promotions table since the version was trained
        from training.commands._alias_plan import calendar_plan, untrained_promo_note

        plan, plan_note = calendar_plan(est, info, alias_keys, config=config, alias=alias)
        if plan is not None:
            est.set_planned_drivers(plan)
            typer.echo(plan_note.strip(), err=True)
        untrained = untrained_promo_note(est, info.get("promo_for"), config=config,
                                         model=f"dealerml-demand@{alias} (version {minfo.version})")
        if untrained:  # trained before data.promotions: the calendar is not its promo
            typer.echo(f"note: {untrained}", err=True)
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
            ok = known & lead_time_fits(Ls.fillna(0.0), sdLs.fillna(0.0), R, h)
            if not (ok | ~known).all():
                dropped = [str(u) for u in uids[known & ~ok]]
                need = horizon_needed(Ls[known & ~ok], sdLs[known & ~ok], R)
                typer.echo(f"left out {len(dropped)} series whose lead time + review + 2.33 x its spread exceeds the "
                           f"champion's {h}-period horizon (e.g. {dropped[:3]}; they need "
                           f"{need}: set demand.horizon and retrain)", err=True)
                for u in dropped:
                    why[u] = ("lead_time_beyond_horizon",
                              f"lead time + review + 2.33 x its spread exceeds the champion's {h}-period horizon "
                              f"(set demand.horizon to at least {horizon_needed(Ls[u], sdLs[u], R)} and retrain)")
            fc = fc[fc["unique_id"].isin(uids[ok])]
            L, sdL = Ls[ok], sdLs[ok]
        elif not lead_time_fits(L, sdL, R, h).all():
            raise ConfigError(f"lead time + review period + 2.33 x the lead-time spread ({L:.2f} + {R:g} + "
                              f"2.33 x {sdL:.2f} periods) exceeds the forecast horizon {h} of dealerml-demand@{alias}; "
                              f"it needs {horizon_needed(L, sdL, R)}: set demand.horizon and retrain")
    else:
        if too_long := lead_times_beyond_forecaster(L, sdL, R, freq):
            raise DataError(f"{info['source']}: {too_long}")
        h = max(s.horizon, horizon_needed(L, sdL, R))
        if h > s.horizon:
            # the members are picked on h-period windows, so this forecast is not the one `forecast` writes at
            # demand.horizon (synthetic network, 8 vs 13 weeks: another member for every series, a lead time's
            # demand up to 114 units apart): a planner checking ltd_mean against a forecast file needs this one
            typer.echo(f"note: safety-stock forecasts {h} periods (the longest lead time + review period + 2.33 x its "
                       f"spread, plus one), more than demand.horizon {s.horizon}: ltd_mean, mean_demand and the policy "
                       f"come from that forecast, which `dealerml forecast --horizon {h}` writes; a forecast of "
                       f"{s.horizon} periods picks its members on {s.horizon}-period windows and may differ", err=True)
        if s.hierarchy:  # as the registered hierarchical model sizes it: the bottom level's coherent forecast
            est = _fit_hier(s, df, seed, _hier_levels(info), info["source"], h=h,
                            planned=info.get("planned_drivers"))
            why.update(_not_forecast_reasons(est))
            fc = _bottom_forecast(est)
            est = est.bottom_
        else:
            need = horizon_needed(L, sdL, R)
            est = _fit(s, df, seed, h, info["source"], note_no_window=False, horizon_why=(
                f"safety-stock forecasts {h} periods: the longest lead time + review period + 2.33 x its spread, "
                "plus one" if need > s.horizon else f"safety-stock forecasts demand.horizon, {h} periods"),
                planned=info.get("planned_drivers"))
            if no_window := _no_error_window(est):  # the sizing would fail on its empty error paths: say why and what helps
                raise DataError(f"{info['source']}: {no_window}")
            why.update(_not_forecast_reasons(est))
            fc = est.predict(h)
    try:
        pol = fit_forecaster_policy(
            InventoryPolicy(service_level, R, n_sims=s.n_sims,
                            cover_limit_periods=cover, random_state=seed),
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
    pol.freq_ = freq  # the period of its lead times, review period and cover (the file's freq column)
    return pol, est, why


def _own_history_notes(table, est, freq: str, said: list[str] | None = None) -> list[str]:
    """``forecast_note`` of the policy ``table`` with ``stopped_series_notes`` added (after a note already
    there, "; "), from the history the forecaster ``est`` was fitted on and the table's ``action`` if any.
    ``said``: a list that gets the stopped-series notes alone ('' for the other rows)."""
    from models.inventory import forecaster_history, stopped_series_notes

    extra = stopped_series_notes(table, forecaster_history(est), freq, table.get("action"))
    if said is not None:
        said[:] = extra
    return [("; ".join(x for x in (str(a) if isinstance(a, str) else "", b) if x))
            for a, b in zip(table["forecast_note"], extra, strict=True)]


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


# what the policy table carries of InventoryPolicy.advise, beside the sizing
_ADVICE_COLUMNS = ["unique_id", "on_hand", "on_order", "inventory_position", "periods_of_cover", "action", "order_qty",
                   "order_qty_unrounded", "min_order_qty", "order_multiple", "excess", "suggestion"]


def _policy_table(policy, s, info: dict[str, Any], freq: str):
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
    out.insert(at, "freq", freq)
    out.insert(at + 1, "lead_time_days", book["lead_time_days"].fillna(float(s.lead_time_days)).to_numpy(dtype=float))
    out.insert(at + 2, "lead_time_std_days", book["lead_time_std_days"].fillna(float(s.lead_time_std_days)).to_numpy(dtype=float))
    out.insert(at + 3, "lead_time_source", ["lead_times" if x else "config" for x in book["lead_time_days"].notna()])
    return out


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

    quiet: list[str] = []  # the stopped-series notes (counted on the console)
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
        from training._validate_dates import resolve_as_of

        if counted is not None and counted >= resolve_as_of(as_of):
            raise DataError(f"--on-hand-date {counted.date()} is after {_as_of_words(as_of)}: a count cannot be dated later")
        if on_hand is not None:  # its columns and figures, in a second: before the book (16-49 s) and the model
            _check_on_hand_early(on_hand, _key_candidates(config), on_hand_date=counted, as_of=as_of)
        s, df, info, seed = _settings_and_series(config, None, None, {})
        registered = None
        if alias is None:
            keys = _key_columns(s, info)
        else:
            # the registered version's ids split into the key columns its training run built them from (a
            # config listing demand.levels [location, sku] since swapped sku and location in the file and
            # keyed --on-hand rows wrongly), as forecast --alias and the service split them; said once
            from training.commands._alias_plan import book_as_trained
            from training.commands.demand_forecast import _alias_keys

            est, minfo = _registered(alias)
            keys = _alias_keys(est, config, minfo)
            registered = (est, minfo, keys)
            # the book's series ids (its lead times, inventory, the no_policy rows' reasons) as the version's:
            # keyed ALL/A by the edited config, the champion's A/ALL found no lead time and were left out
            df, info = book_as_trained(df, info, keys)
        # before the (long) fit
        oh = _read_on_hand(on_hand, keys, on_hand_date=counted, as_of=as_of) if on_hand is not None else None
        pol, est, why = _policy(s, df, info, seed, service_level, alias=alias, config=config, registered=registered)
        freq = pol.freq_  # the registered version's own demand.freq with --alias (a config edited since: said)
        table = _policy_table(pol.policy_, s, info, freq)
        # short-history fallback series: sized from the fallback's distribution (ltd_source short_history), or
        # the higher of that and their own lumpy past's bootstrap (short_history+own_history)
        table.insert(table.columns.get_loc("ltd_source") + 1, "forecast_note", _short_notes(est, table["unique_id"]))
        sized, series_ids = set(table["unique_id"].astype(str)), set(df["unique_id"].astype(str))
        no_policy = None  # stock of series without a policy: rows of the file, action no_policy
        if on_hand is None and info.get("on_hand") is not None:  # the order book's inventory table
            stock = info["on_hand"]
            adv = pol.advise(pd.DataFrame({"unique_id": stock.index.astype(str), "on_hand": stock.to_numpy(dtype=float)}),
                             freq=freq)
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
                                        sized, why, series_ids, info, freq)
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
                no_policy = _no_policy_rows(oh, sized, why, series_ids, info, freq)
                typer.echo(f"--on-hand: {len(unmatched)} unique_id value(s) match no sized series (e.g. {unmatched[:3]}); "
                           f"the {len(no_policy)} holding stock are rows of {out.name} with action {NO_POLICY} and the "
                           "reason in no_policy_reason / suggestion", err=True)
            adv = pol.advise(oh, freq=freq)
            table = table.merge(adv[_ADVICE_COLUMNS], on="unique_id", how="left")
            absent = sorted(known - set(oh["unique_id"]))
            if absent:
                typer.echo(f"--on-hand: {len(absent)} of {len(known)} sized series have no row in it and get no "
                           f"replenish / overstock advice (e.g. {absent[:3]})", err=True)
        # a series that stopped selling (sized 0 from its own history, or silent long against its rhythm): said, with
        # its last sale and, on an ordering row, that the order rests on demand it has not shown since
        table["forecast_note"] = _own_history_notes(table, est, freq, said=quiet)
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
                _say_stock_dates(table, est, freq, pd.Timestamp(last), on_hand, oh)
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
    n_quiet = sum(map(bool, quiet))
    if n_quiet:
        typer.echo(f"{n_quiet} series may have stopped selling (no recent sale against their own rhythm): their "
                   "forecast_note names the last sale; check them before ordering")


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
