"""``dealerml backtest|train|score dealers``: dealer potential, segments, lifecycle and tiers.

* ``backtest dealers --config F [--cutoff D] [--horizon-days 182] --json OUT``: the time-ordered
  backtest of ``training.dealers_backtest`` (final model and baselines on the same accounts; churn
  risk from a churn model fitted on the config's ``churn:`` settings before the cutoff, as scoring
  serves it, else 1 - BG/NBD P(alive), said in the JSON's ``setup`` and the output); without
  ``--cutoff``, the cutoff ``train dealers`` would use (printed);
* ``train dealers --config F``: backtest at the config's ``dealers.cutoff`` (else the latest
  cutoff whose outcome window the book covers), then fit on the whole book, log run, plots and
  model to MLflow and register ``dealerml-dealers`` (alias ``challenger``; ``champion`` too
  when there is none yet);
* ``score dealers --config F --cutoff D --out TABLE_OR_FILE``: score every account active
  before D with the ``dealerml-dealers@champion`` model (or, with ``--fit``, one fitted on the
  rows before D) and write the table atomically. Churn risk: ``--churn-scores`` if given, else
  the registered ``dealerml-churn`` champion (``--churn-alias`` for another alias) scored as of D
  by the churn CLI's ``score_accounts``, else 1 - BG/NBD P(alive); the ``churn_source`` column
  says which, per row. The champion only, as the service's ``/dealer_scores`` takes it, so the
  table and the API give the same rows for the same cutoff and models (a challenger-only
  registry ranked with the churn model here and with BG/NBD in the service).
"""

from __future__ import annotations

from pathlib import Path

import typer

from training.cli import backtest_app, score_app, train_app

__all__ = ["backtest_dealers", "train_dealers", "score_dealers"]

REGISTERED_NAME = "dealerml-dealers"
SCORE_COLUMNS = ["account_id", "potential", "potential_low", "potential_high", "segment", "lifecycle", "tier",
                 "programme", "reason_1", "reason_2", "reason_3", "model_version", "scored_at"]


def _load(config: Path, horizon_days: int | None):
    from training.config import load_config
    from training.data import load_order_book
    from training.dealers_backtest import load_settings
    from training.errors import ConfigError

    cfg = load_config(config)
    section = dict(cfg.dealers)
    if horizon_days is not None:
        section["horizon_days"] = horizon_days
    try:
        settings = load_settings(section, where="dealers")
    except ConfigError as exc:  # the file once, in front, not inside every key
        raise ConfigError(f"{cfg.config_path}: {exc}") from None
    book = load_order_book(cfg)
    return cfg, settings, book


def _cutoff(value: str, option: str = "--cutoff"):
    from training.data import parse_cutoff

    return parse_cutoff(value, option)


def _public(result: dict) -> dict:
    """The JSON part of a backtest result; undefined metrics (NaN, e.g. the net growth share of a
    slice that shrank on net) become null."""
    import math

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return clean({k: v for k, v in result.items() if k not in ("table", "fitted")})


def _f3(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


@backtest_app.command("dealers")
def backtest_dealers(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml)."),  # noqa: B008
    cutoff: str | None = typer.Option(None, "--cutoff", help="Backtest cutoff YYYY-MM-DD: fit on rows before it "
                                      "(default: config dealers.cutoff, else the latest one whose outcome window "
                                      "the book covers, as train dealers)."),
    horizon_days: int | None = typer.Option(None, "--horizon-days", min=7, max=730,
                                            help="Outcome window in days (default: config dealers.horizon_days, else 182)."),
    json_out: Path = typer.Option(..., "--json", help="Write the metrics JSON here (atomic)."),  # noqa: B008
) -> None:
    """Backtest dealer potential at CUTOFF against last-period value and BG/NBD + Gamma-Gamma.

    JSON: {"final": "dealer_potential", "metrics": {model: {"spearman", "top_decile_growth_capture",
    "top_decile_net_growth_share", "mae"}}, "oracle": {...}, ...} plus per-segment metrics, the
    segment separation check and the training window.
    """
    from training.commands._common import check_out_path, fail, write_json
    from training.dealers_backtest import run_backtest
    from training.errors import DealermlError

    try:
        if cutoff:
            _cutoff(cutoff)  # a bad --cutoff fails before the data load
        check_out_path(json_out, "--json")  # an unwritable --json too, not after the backtest
        cfg, settings, book = _load(config, horizon_days)
        cut, why = _backtest_cutoff(cutoff, settings, book, config)
        res = run_backtest(book, cutoff=cut, settings=settings, seed=cfg.seed, churn=cfg)
    except DealermlError as err:
        fail(err)
        return
    out = _public(res)
    write_json(out, json_out)
    typer.echo(f"cutoff {cut.date()} ({why})")
    _print_backtest(out)
    typer.echo(f"wrote {json_out}")


def _print_backtest(out: dict) -> None:
    """The backtest table: the served potential score beside both baselines and the oracle."""
    m = out["metrics"]
    typer.echo(f"dealers backtest at {out['cutoff']} (+{out['horizon_days']} days), {out['n_accounts']} accounts")
    for name, v in m.items():
        typer.echo(f"  {name:28s} spearman {_f3(v['spearman'])}  top-decile growth capture "
                   f"{_f3(v['top_decile_growth_capture'])}  net growth share {_f3(v['top_decile_net_growth_share'])}  "
                   f"mae {v['mae']:,.1f}")
    o = out["oracle"]
    typer.echo(f"  {'oracle (realized growth)':28s} top-decile growth capture {_f3(o['top_decile_growth_capture'])}  "
               f"net growth share {_f3(o['top_decile_net_growth_share'])}")
    typer.echo("  (spearman and mae score each row's next-period value forecast, so the rows built on the LightGBM "
               "forecast share them; growth capture and net growth share score each row's ranking)")
    net = out.get("total_net_growth")
    if o.get("top_decile_net_growth_share") is None and net is not None and net <= 0:
        typer.echo(f"  net growth share n/a: these accounts' realized net growth is {net:,.0f} in total (the book "
                   "shrank over the period), so a share of it is undefined; top-decile growth capture counts "
                   f"positive growth only ({out.get('total_positive_growth', 0):,.0f} in total)")
    typer.echo(_churn_line(out["setup"]))


def _churn_line(setup: dict) -> str:
    """The backtest's churn risk source in words."""
    n = setup.get("churn_risk_accounts", {})
    if setup["churn_source"] != "churn_model":
        return f"churn risk: {setup['churn_fallback_reason']}"
    return (f"churn risk: churn model fitted before the cutoff (training cutoffs {', '.join(setup['churn_train_cutoffs'])}, "
            f"calibration {setup['churn_calibration_cutoff']}; label windows end by {setup['churn_label_windows_end_by']}) "
            f"for {n.get('churn_model', 0)} accounts, 1 - BG/NBD P(alive) for {n.get('bgnbd', 0)}; "
            f"dealer_potential_bgnbd_risk = the same ranking with BG/NBD risk for every account")


def _plots(run, table, snapshot, scorer) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from models.segments import SEGMENTS

    fig, ax = plt.subplots(figsize=(7, 5))
    x = np.log10(1 + table["annual_value"].clip(lower=0))
    y = snapshot["orders_per_month"].reindex(table.index)
    for seg in SEGMENTS:
        m = table["segment"] == seg
        if m.any():
            ax.scatter(x[m], y[m], s=8, alpha=0.6, label=f"{seg} ({int(m.sum())})")
    ax.set_xlabel("log10(1 + annual purchase value)")
    ax.set_ylabel("orders per month")
    ax.set_yscale("symlog")
    ax.set_title("Segment map")
    ax.legend(fontsize=7)
    run.log_figure(fig, "plots/segment_map.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    cur = np.log10(1 + table["last_period_value"].clip(lower=0))
    pot = np.sign(table["potential"]) * np.log10(1 + table["potential"].abs())
    ax.scatter(cur, pot, s=8, alpha=0.5)
    ax.axvline(float(cur.median()), color="grey", lw=1)
    ax.axhline(float(pot.median()), color="grey", lw=1)
    ax.set_xlabel("log10(1 + last-period value)")
    ax.set_ylabel("potential score (signed log10)")
    ax.set_title("Potential vs current value (quadrants at the medians)")
    run.log_figure(fig, "plots/potential_quadrant.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    tiers = list(scorer.tiers_.thresholds_)
    top_regions = table["region"].value_counts().index[:12]
    ct = (table[table["region"].isin(top_regions)].groupby(["region", "tier"]).size().unstack(fill_value=0)
          .reindex(columns=tiers, fill_value=0))
    share = ct.div(ct.sum(axis=1), axis=0)
    share.index = [f"{r} ({int(n)})" for r, n in ct.sum(axis=1).items()]
    share.plot(kind="bar", stacked=True, ax=ax)
    ax.set_ylabel("share of the region's accounts")
    ax.set_title("Tier distribution per region (12 largest regions; accounts in brackets)")
    fig.tight_layout()
    run.log_figure(fig, "plots/tier_by_region.png")
    plt.close(fig)


@train_app.command("dealers")
def train_dealers(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml)."),  # noqa: B008
    cutoff: str | None = typer.Option(None, "--cutoff", help="Backtest cutoff (default: config dealers.cutoff, "
                                      "else the latest one whose outcome window the book covers)."),
    alias: str = typer.Option("challenger", "--alias", help="Alias given to the registered version "
                              "(not champion: the champion moves through `dealerml promote`)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the backtest report here (the JSON of "  # noqa: B008
                                         "`backtest dealers` at the same cutoff), so one run gives both."),
) -> None:
    """Backtest, fit on the whole book, log to MLflow and register dealerml-dealers."""
    import pandas as pd

    from training import tracking
    from training.commands._common import (
        check_out_path,
        commit_files,
        fail,
        json_writer,
        registered_text,
        stage_files,
        staged_outputs,
    )
    from training.dealers_backtest import fit_pipeline, run_backtest
    from training.errors import DealermlError

    try:
        tracking.check_alias(alias)  # before any work
        if json_out is not None:
            check_out_path(json_out, "--json")
        if cutoff:
            _cutoff(cutoff)  # a bad --cutoff fails before the data load
        tracking.check_store()
        cfg, settings, book = _load(config, None)
        ol = book.order_lines
        end = ol["order_date"].max().normalize() + pd.Timedelta(days=1)
        bt_cut, why = _backtest_cutoff(cutoff, settings, book, config, check_given=True)
        bt = run_backtest(book, cutoff=bt_cut, settings=settings, seed=cfg.seed, churn=cfg)
        with staged_outputs() as staged, tracking.training_run("dealers", config=cfg, book=book, seed=cfg.seed) as run:
            # horizon_days: the backtest's outcome window, which `experiment compare` checks beside the cutoff (and
            # the version's tags carry); without it runs at 91 and 182 days were 'comparable: yes'
            run.log_params({"backtest_cutoff": str(bt_cut.date()), "horizon_days": bt["horizon_days"],
                            "final_cutoff": str(end.date()),
                            "train_horizon_days": bt["train_horizon_days"], "n_train_rows": bt["n_train_rows"],
                            "backtest_churn_source": bt["setup"]["churn_source"]})
            run.log_metrics(bt["metrics"])
            for dim in ("segment", "region"):
                for key, d in bt[f"by_{dim}"].items():
                    run.log_metrics({"dealer_potential": d["dealer_potential"],
                                     "last_period_value": d["last_period_value"]}, slice={dim: key})
            chk = bt["segments_check"]
            run.log_metrics({k: chk[k] for k in ("silhouette_kmeans", "silhouette_segments", "ari_kmeans_vs_segments")
                             if k in chk})
            run.log_dict(_public(bt), "backtest.json")
            fitted = fit_pipeline(ol, book.accounts, book.service_events, cutoff=end, settings=settings, seed=cfg.seed)
            scorer, snap = fitted["scorer"], fitted["snapshot"]
            table = scorer.score(snap)
            _plots(run, table, snap, scorer)
            run.log_model(scorer, metadata={
                "training_window": {"start": str(ol["order_date"].min().date()), "cutoff": str(end.date())},
                "backtest_metrics": _public(bt)["metrics"], "horizon_days": settings.horizon_days})
            run.register(REGISTERED_NAME, alias=alias)
            # written inside the run (a failed write registers nothing), put in place after it (a
            # failed run leaves no report behind)
            if json_out is not None:
                staged += stage_files([(json_out, json_writer(_public(bt)))])
        if json_out is not None:
            commit_files(staged)
    except DealermlError as err:
        fail(err)
        return
    if json_out is not None:
        typer.echo(f"wrote {json_out}")
    typer.echo(f"backtest cutoff {bt_cut.date()} ({why})")
    _print_backtest(_public(bt))
    typer.echo(f"run {run.run_id}: backtest at {bt_cut.date()} dealer_potential "
               f"capture {bt['metrics']['dealer_potential']['top_decile_growth_capture']:.3f} "
               f"(last_period_value {bt['metrics']['last_period_value']['top_decile_growth_capture']:.3f})")
    typer.echo(registered_text(run.registered, alias, config=config))
    typer.echo(f"see it: {tracking.ui_command()}")


def _backtest_cutoff(cutoff: str | None, settings, book, config, *, check_given: bool = False) -> tuple:
    """(backtest cutoff, why it is that one): --cutoff, else dealers.cutoff, else the day after
    the last order minus dealers.horizon_days (the latest one whose outcome window the book
    covers); checked to leave enough history before it (a given --cutoff only with check_given)."""
    import pandas as pd

    if cutoff:
        cut = _cutoff(cutoff)
        if check_given:
            _check_backtest_history(book.order_lines, cut, "--cutoff", settings)
        return cut, "--cutoff"
    end = book.order_lines["order_date"].max().normalize() + pd.Timedelta(days=1)
    if settings.cutoff:
        cut, why = _cutoff(settings.cutoff, "dealers.cutoff"), f"dealers.cutoff in {config}"
    else:
        cut = end - pd.Timedelta(days=settings.horizon_days)
        why = (f"the default: the day after the last order ({(end - pd.Timedelta(days=1)).date()}) minus "
               f"dealers.horizon_days {settings.horizon_days}")
    _check_backtest_history(book.order_lines, cut, why, settings)
    return cut, why


def _check_backtest_history(ol, bt_cut, why: str, settings) -> None:
    """The dealers backtest needs min_history_days + 2 x 14 days of book before its cutoff
    (``training.dealers_backtest.training_cutoffs``): say so, with where the cutoff came from."""
    import pandas as pd

    from training.errors import DataError

    first = ol["order_date"].min().normalize()
    last = ol["order_date"].max().normalize()
    need = settings.train.min_history_days + 28
    have = (bt_cut - first).days
    if have >= need:
        return
    span = (last - first).days + 1
    msg = (f"the dealers backtest cutoff {bt_cut.date()} ({why}) leaves {max(have, 0)} days of order book "
           f"before it; it needs at least {need} (dealers.train.min_history_days {settings.train.min_history_days} "
           f"+ a training label window of at least 14 days, twice). The order book spans {first.date()} .. "
           f"{last.date()} ({span} days)")
    if why.startswith("the default"):
        shortest = need + settings.horizon_days
        msg += (f"; with a {settings.horizon_days}-day horizon it must span at least {shortest} days: use a "
                f"longer order book or a shorter dealers.horizon_days")
    else:
        msg += f"; choose a cutoff on or after {(first + pd.Timedelta(days=need)).date()}"
    raise DataError(msg)


def _read_churn(spec: str):
    """account_id -> churn probability from ``--churn-scores`` (:func:`training.dealers_churn_risk.read_churn_scores`)."""
    from training.dealers_churn_risk import read_churn_scores

    return read_churn_scores(spec)


@score_app.command("dealers")
def score_dealers(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml)."),  # noqa: B008
    cutoff: str = typer.Option(..., "--cutoff", help="Score as of this date: only rows before it are read."),
    out: str = typer.Option(..., "--out", "-o", help="scores.csv / scores.parquet, a table name in the "
                            "default DuckDB file, or TARGET#table (DuckDB/SQLite file or SQLAlchemy URL)."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias of dealerml-dealers to use."),
    fit: bool = typer.Option(False, "--fit", help="Fit a model on the rows before CUTOFF instead of using the registry."),
    churn_scores: str | None = typer.Option(None, "--churn-scores", help="The churn model's scores (as written by "
                                            "`dealerml score churn --out ...`: account_id, probability) to use as "
                                            "churn risk (wins over the registry); accounts not in it fall back to "
                                            "1 - BG/NBD P(alive)."),
    churn_alias: str | None = typer.Option(None, "--churn-alias", help="Registry alias of dealerml-churn to take "
                                           "churn risk from (default: champion, as /dealer_scores; none: "
                                           "1 - BG/NBD P(alive))."),
) -> None:
    """Write one row per account: potential and band, segment, lifecycle, tier, programme, 3 reasons."""
    import pandas as pd

    from features.dealers import dealer_snapshot
    from training.commands._common import fail, note_model_environment
    from training.dealers_backtest import fit_pipeline
    from training.errors import ConfigError, DataError, DealermlError
    from training.scores import describe_target, score_destination, write_table

    try:
        from training.data import check_cutoff_in_book, lines_as_of

        cut = _cutoff(cutoff)  # a bad --cutoff, --out or --churn-scores fails before the data load
        target, table_name = score_destination(out)  # unwritable (no permission): said now, not after the scoring
        churn_given = _read_churn(churn_scores) if churn_scores else None
        from training import tracking
        from training.commands.experiments import require_store

        cfg, settings, book = _load(config, None)
        check_cutoff_in_book(book, cut)
        # a home without an MLflow store: refused when a registered model is needed (opening it
        # created an empty store, then 'no model'); with --fit the ranking takes 1 - BG/NBD P(alive)
        # for churn risk, saying why, and creates nothing either
        # --churn-alias none: 1 - BG/NBD P(alive) for every account, no registry read (as its help says)
        no_churn_model = churn_alias is not None and churn_alias.strip().lower() == "none"
        if not fit:
            require_store("score dealers", "pass --fit (a model fitted on the rows before --cutoff)")
        elif churn_alias and not churn_scores and not no_churn_model:
            require_store(f"score dealers --churn-alias {churn_alias}", "pass --churn-scores FILE")
        no_store = tracking.local_store_missing()
        if fit:
            fitted = fit_pipeline(lines_as_of(book, cut), book.accounts, book.service_events, cutoff=cut,
                                  settings=settings, seed=cfg.seed)
            scorer, version = fitted["scorer"], f"unregistered-fit-{cut.date()}"
        else:
            scorer, info = tracking.load_model(REGISTERED_NAME, alias)
            note_model_environment(info)
            version = f"{REGISTERED_NAME}/{info.version}"
        ol = lines_as_of(book, cut)  # as the book stood at the cutoff
        hist = ol.loc[ol["order_date"] < cut]
        if hist.empty:
            raise DataError(f"{config}: no order before --cutoff {cut.date()}; nothing to score")
        snap = dealer_snapshot(hist, book.accounts, book.service_events, cutoff=cut, period_days=scorer.horizon_days)
        rest_words = ""  # why the rest take BG/NBD risk, when a churn model scored the others
        churn_version = None  # the registered churn version whose probabilities rank the dealers (/dealer_scores' churn_source)
        if churn_scores:
            risk, churn_from = churn_given, f"--churn-scores {churn_scores}"
            other = [d for d in churn_given.attrs.get("cutoffs", []) if d != cut.date()]
            if other:  # scores of another date rank these dealers: said, not silent
                typer.secho(f"caution: --churn-scores {churn_scores} holds churn scores as of "
                            f"{', '.join(str(d) for d in other[:3])}, not --cutoff {cut.date()}", fg=typer.colors.YELLOW,
                            err=True)
        elif no_churn_model:
            churn_model, risk = None, None
            churn_from = "--churn-alias none: no churn model asked for"
        elif no_store is not None:  # --fit without a store: no churn champion to read
            churn_model, risk = None, None
            churn_from = f"no MLflow store at {no_store}, so no dealerml-churn champion"
        else:
            from training.dealers_churn_risk import (
                churn_horizon_note,
                churn_lookback_note,
                churn_model_lookback,
                churn_model_risk,
                load_churn_model,
            )

            # the champion only, as the service's /dealer_scores takes it (serving.dealers), so the
            # batch table and the API rank the same dealers the same way; a challenger is used only
            # when asked for by --churn-alias
            aliases = (churn_alias,) if churn_alias else ("champion",)
            churn_model, churn_version = load_churn_model(aliases, on_load=note_model_environment)
            if churn_model is None and churn_alias:
                raise ConfigError(f"--churn-alias {churn_alias}: no dealerml-churn version has that alias")
            risk = None if churn_model is None else churn_model_risk(book, cfg, cut, churn_model)
            churn_from = (f"{churn_version}, the {churn_alias or 'champion'}" if churn_version
                          else _no_churn_champion())
            if churn_model is not None:  # it scores its own population (its lookback), said as score churn says it
                for note in (churn_lookback_note(cfg, cut, churn_model, churn_version),
                             churn_horizon_note(cfg, cut, churn_model, churn_version)):
                    if note:
                        typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
                rest_words = (f" (outside the churn model's population: no order in the "
                              f"{churn_model_lookback(cfg, churn_model)} days before {cut.date()})")
        t = scorer.score(snap, churn_risk=risk)
        t = t.reset_index().rename(columns={"index": "account_id"})
        t["model_version"] = version
        # the churn version behind the potentials (empty: 1 - BG/NBD P(alive) or --churn-scores), what
        # /dealer_scores answers as churn_source, so the table and the API can be told apart after a churn promote
        t["churn_model_version"] = churn_version
        t["scored_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
        t["cutoff"] = cut
        cols = SCORE_COLUMNS + [c for c in ("expected", "expected_low", "expected_high", "upside",
                                            "expected_growth", "expected_positive_growth", "last_period_value",
                                            "annual_value",
                                            "headroom", "peer_value", "churn_risk", "churn_source",
                                            "churn_model_version", "region",
                                            "segment_reason", "lifecycle_reason", "cutoff") if c in t]
        write_table(t[cols], target, table_name)
    except DealermlError as err:
        fail(err)
        return
    where = describe_target(target) if table_name is None else f"{describe_target(target)} (table {table_name})"
    n_model = int((t["churn_source"] == "churn_model").sum())
    typer.echo(f"scored {len(t)} accounts as of {cut.date()} with {version}; wrote {where}")
    typer.echo(f"churn risk: churn model for {n_model} accounts ({churn_from}), 1 - BG/NBD P(alive) for "
               f"{len(t) - n_model}{rest_words if len(t) > n_model else ''}")
    if not churn_scores and churn_model is None and not no_churn_model:  # what the user can do about it
        if "challenger" in churn_from:
            typer.echo(f"  for churn-model risk: `dealerml promote churn --config {config}` makes the challenger "
                       "champion (what /dealer_scores uses too), or pass --churn-alias challenger or --churn-scores")
        else:
            typer.echo(f"  for churn-model risk: `dealerml train churn --config {config}` registers dealerml-churn "
                       "(or pass --churn-scores, a `dealerml score churn --out` file)")


def _no_churn_champion() -> str:
    """Why no churn model ranks the dealers: none registered, or a challenger that is not champion."""
    from training import tracking
    from training.dealers_churn_risk import CHURN_MODEL_NAME

    ch = tracking.get_alias_version(CHURN_MODEL_NAME, "challenger")
    if ch is None:
        return "no dealerml-churn champion registered"
    return (f"no dealerml-churn champion; the challenger {CHURN_MODEL_NAME}/{ch} is not used, as the "
            "service's /dealer_scores does not use it")
