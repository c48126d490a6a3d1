"""``dealerml data validate``: read and validate the order book a config names; print the report."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from training.cli import data_app

__all__ = ["validate"]


@data_app.command("validate")
def validate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Experiment config (experiments/*.yaml) naming the data.")],
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the report (+ data fingerprint) as JSON here; nothing is written on a fatal error."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Rows dated after this are 'future' and dropped (a date means its whole day). Default: data.as_of, else now."),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bars while reading (default: when stderr is a terminal)."),
    ] = None,
) -> None:
    """Validate the order book named in CONFIG: print rows dropped / fixed by reason, with examples.

    Exits 2 with a message naming the file, column and problem on fatal data or config errors
    (missing required column, empty table, no parseable dates ..., a misspelt key in any section
    of the config) and writes nothing then.
    """
    from training.commands._common import check_out_path, fail, write_json
    from training.config import load_config
    from training.data import load_order_book, refuse_year_last
    from training.errors import ConfigError, DealermlError

    if as_of is not None:
        import pandas as pd

        try:
            refuse_year_last(as_of, "--as-of", "2011-12-09 or 2011-12-09 18:00")
        except ConfigError as err:
            fail(err)
        from models.demand_data import TIME_ONLY_RE

        try:
            if re.fullmatch(TIME_ONLY_RE, as_of):  # pandas reads '10:00' as today at 10:00
                raise ValueError(as_of)
            pd.Timestamp(as_of)
        except (ValueError, TypeError):
            fail(ConfigError(f"--as-of must be a date or date-time like 2011-12-09; got {as_of!r}"))
    show = sys.stderr.isatty() if progress is None else progress
    try:
        if json_path is not None:  # before the load: a folder or a path below a file is refused first
            check_out_path(json_path, "--json")
        cfg = load_config(config)
        _check_sections(cfg)
        book = load_order_book(cfg, as_of=as_of, progress=show)
    except DealermlError as err:
        fail(err)
        return
    typer.echo(book.report.render())
    fp = book.fingerprint
    typer.echo(
        f"order_lines sha256 {fp['order_lines_sha256'][:16]}..., "
        f"order dates {fp['order_date_min']} .. {fp['order_date_max']}"
    )
    if json_path is not None:
        payload = book.report.to_dict()
        payload["fingerprint"] = book.fingerprint
        try:
            write_json(payload, json_path)
        except (DealermlError, OSError) as err:
            fail(err if isinstance(err, DealermlError) else ConfigError(f"--json {json_path}: cannot write ({err})"))
            return
        typer.echo(f"report written to {json_path}")


def _check_sections(cfg) -> None:  # type: ignore[no-untyped-def]
    """The capability sections later commands read (churn, demand, dealers, tuning, serving): a misspelt
    key or a bad value stops here, naming the key, instead of at the first backtest or train, or
    (``serving:``) at the service's start-up. The ``serving:`` check is the service's own
    (:func:`serving.settings.serving_settings`, a light module: no bentoml)."""
    from serving.settings import serving_settings
    from training.churn_backtest import churn_settings
    from training.dealers_backtest import load_settings
    from training.demand_config import demand_settings
    from training.errors import ConfigError
    from training.tuning_config import tuning_settings

    churn_settings(cfg)
    demand_settings(cfg)
    try:
        load_settings(cfg.dealers, where="dealers")
    except ConfigError as exc:
        raise ConfigError(f"{cfg.config_path}: {exc}") from None
    if cfg.tuning:
        tuning_settings(cfg, src=cfg.config_path)
    serving_settings(cfg)
