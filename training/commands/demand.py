"""Demand commands: ``backtest demand``, ``forecast``, ``safety-stock``, ``simulate inventory``,
``train demand``. Heavy libraries are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from training.cli import app, backtest_app, simulate_app, train_app
from training.commands._common import fail, write_json
from training.errors import ConfigError, DataError, DealermlError

__all__: list[str] = []


def _settings_and_series(config: Path | None, series: Path | None, freq: str | None, overrides: dict[str, Any]):
    from training.demand_config import DemandSettings, demand_settings, load_demand_series, read_series_file

    if (config is None) == (series is None):
        raise ConfigError("give exactly one of --config FILE (an experiment config) or --series FILE (a long unique_id, ds, y table)")
    if config is not None:
        from training.config import load_config

        cfg = load_config(config)
        s = demand_settings(cfg)
        upd = {k: v for k, v in overrides.items() if v is not None}
        if freq is not None:
            upd["freq"] = freq.upper()
        s = DemandSettings.model_validate({**s.model_dump(), **upd})
        df, info = load_demand_series(cfg, s)
        seed = cfg.seed
    else:
        if freq is None:
            raise ConfigError("--series needs --freq D|W|M (the period of the table's ds column)")
        s = DemandSettings.model_validate({"freq": freq.upper(), **{k: v for k, v in overrides.items() if v is not None}})
        df = read_series_file(series)
        info = {"source": str(series), "kind": "series"}
        seed = 0
    return s, df, info, seed


def _as_data_error(exc: ValueError, source: str) -> DataError:
    return DataError(f"{source}: {exc}")


@backtest_app.command("demand")
def backtest_demand(
    config: Path | None = typer.Option(None, "--config", help="Experiment config with a demand: section."),
    series: Path | None = typer.Option(None, "--series", help="Ready long table: unique_id, ds, y (+ numeric drivers), CSV or Parquet."),
    freq: str | None = typer.Option(None, "--freq", help="D, W or M."),
    horizon: int | None = typer.Option(None, "--horizon", help="Periods ahead (default: config or 8)."),
    windows: int | None = typer.Option(None, "--windows", help="Rolling-origin windows (default 2)."),
    step: int | None = typer.Option(None, "--step", help="Periods between window cutoffs (default: horizon)."),
    top_n: int | None = typer.Option(None, "--top-n", help="Keep the N series with the largest total demand."),
    json_out: Path = typer.Option(..., "--json", help="Where to write the report (JSON)."),
    cv_out: Path | None = typer.Option(None, "--cv-out", help="Also write every window forecast (Parquet)."),
) -> None:
    """Rolling-origin backtest of the demand forecaster against every statsforecast baseline."""
    try:
        from training.demand_backtest import run_backtest

        s, df, info, seed = _settings_and_series(
            config, series, freq, {"horizon": horizon, "windows": windows, "step": step, "top_n": top_n}
        )
        if series is not None and s.top_n:
            top = df.groupby("unique_id")["y"].sum().nlargest(s.top_n).index
            df = df[df["unique_id"].isin(top)]
        try:
            report, cv = run_backtest(df, freq=s.freq, h=s.horizon, n_windows=s.windows, step_size=s.step,
                                      forecaster_kwargs=s.forecaster_kwargs(seed))
        except ValueError as exc:
            raise _as_data_error(exc, info["source"]) from None
        report["setup"]["source"] = info
        if cv_out is not None:
            cv_out.parent.mkdir(parents=True, exist_ok=True)
            tmp = cv_out.with_name(f".{cv_out.name}.tmp")
            cv.to_parquet(tmp, index=False)
            tmp.replace(cv_out)
        write_json(report, json_out)
    except DealermlError as err:
        fail(err)
    m = report["metrics"]
    typer.echo(f"{'model':<14}{'MASE':>8}{'RMSSE':>8}{'pinball':>9}{'cov80':>7}{'cov95':>7}{'bias':>8}")
    for name, v in m.items():
        f = lambda x, p=3: "   -" if x is None else f"{x:.{p}f}"  # noqa: E731
        typer.echo(f"{name:<14}{f(v['mase']):>8}{f(v['rmsse']):>8}{f(v['pinball']):>9}{f(v['coverage_80'], 2):>7}{f(v['coverage_95'], 2):>7}{f(v['bias']):>8}")
    typer.echo(f"skipped {len(report['skipped'])} series-windows; wrote {json_out}")
