"""``dealerml features build``: as-of account features, churn labels and demand series to parquet."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import typer

from training.cli import features_app

__all__ = ["build"]


def _steps(enabled: bool, total: int):  # noqa: ANN202 - rich Progress or None
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), transient=False, console=None)
    bar.start()
    bar.add_task("features build", total=total)
    return bar


def _step(bar, text: str) -> None:
    if bar is not None:
        task = bar.task_ids[0]
        bar.update(task, description=text)


def _done(bar) -> None:
    if bar is not None:
        bar.advance(bar.task_ids[0])


_OUTPUTS = {"account_features.parquet", "churn_labels.parquet", "demand_series.parquet",
            "demand_classes.parquet", "manifest.json"}


def _check_replaceable(out: Path) -> None:
    """Only an empty folder or a previous ``features build`` output may be replaced."""
    from training.errors import ConfigError

    if not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    names = {p.name for p in out.iterdir()}
    if names and ("manifest.json" not in names or not names <= _OUTPUTS):
        extra = sorted(names - _OUTPUTS)[:5]
        raise ConfigError(
            f"--out {out} holds files that features build did not write ({extra}); "
            "refusing to replace it - choose a new or empty folder"
        )


def _clean_after_killed_builds(out: Path) -> None:
    """Folders a killed ``features build`` of ``out`` left (SIGKILL, power loss: its ``finally`` never
    ran), once their process is gone: ``.OUT.tmp-PID`` (half-written tables) is removed, and
    ``.OUT.old-PID`` (the previous output, moved aside just before the new one took its place) is put
    back as OUT when OUT is missing (killed between the two renames), else removed. Each run named its
    folder by its own pid, so the next run never reused it and they piled up beside OUT."""
    import glob

    from training._tracking_cleanup import _alive

    for side in sorted(out.parent.glob(f".{glob.escape(out.name)}.*-*")):
        kind, _, pid = side.name[len(out.name) + 2:].partition("-")
        if kind not in ("tmp", "old") or not pid.isdigit() or not side.is_dir() or side.is_symlink():
            continue
        if _alive(int(pid), None):  # another build of OUT at work (also another user's)
            continue
        if kind == "old" and not out.exists():
            os.replace(side, out)
        else:
            shutil.rmtree(side, ignore_errors=True)


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``; an existing ``out`` is replaced whole."""
    if out.exists():
        _check_replaceable(out)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:  # a SIGTERM (KeyboardInterrupt) or an OSError between the renames: the old back
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _cannot_write(out: Path, exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"cannot write --out {out}: {exc.strerror or exc}{where}; nothing was written"


@features_app.command("build")
def build(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (experiments/*.yaml) naming the data."),  # noqa: B008
    cutoff: str = typer.Option(..., "--cutoff", help="As-of date (YYYY-MM-DD): features read only rows before it."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; written whole or not at all. An existing one is replaced only if it is empty or a previous features build."),  # noqa: B008
    horizon_days: int | None = typer.Option(None, "--horizon-days", min=1, max=730, help="Churn horizon H: churned = no order in [cutoff, cutoff + H) (default: config churn.horizon_days, else 90)."),
    lookback_days: int | None = typer.Option(None, "--lookback-days", min=1, help="Churn population: accounts with an order in the lookback window (default: config churn.lookback_days, else 365)."),
    freq: str | None = typer.Option(None, "--freq", help="Demand series frequency D / W / M (default: config demand.freq, else W)."),
    levels: str | None = typer.Option(None, "--levels", help="Comma-separated demand series keys (default: config demand.levels, else sku,location)."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: when stderr is a terminal)."),
) -> None:
    """Build the as-of feature tables of CONFIG's order book at CUTOFF into OUT.

    Writes ``account_features.parquet`` (one row per account with an order before the
    cutoff), ``churn_labels.parquet`` (only when the order book covers the whole horizon),
    ``demand_series.parquet`` + ``demand_classes.parquet`` (series end with the last period
    complete before the cutoff) and ``manifest.json`` (cutoff, row counts, data fingerprint).
    Everything is written into a temporary folder first, so a failed run leaves OUT as it was.
    """
    from training.commands._common import check_not_below_a_file, fail, write_json
    from training.errors import ConfigError, DataError, DealermlError

    t_start = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    try:
        import pandas as pd

        from features.accounts import account_features
        from features.labels import churn_labels
        from training.config import load_config
        from training.data import check_cutoff_in_book, lines_as_of, load_order_book, parse_cutoff
        from training.demand_config import demand_settings

        cut = parse_cutoff(cutoff)
        check_not_below_a_file(Path(out).resolve(), "--out")  # before the load, as a bad cutoff
        cfg = load_config(config)
        # the demand: section as every other command reads it (validated: a bad value is refused
        # in the same words as by train demand, not read as a default)
        ds = demand_settings(cfg)
        # the churn: section likewise (the labels' horizon and population, as train / backtest churn read them)
        from training.churn_backtest import churn_settings

        cs = churn_settings(cfg)
        horizon_days = cs.horizon_days if horizon_days is None else horizon_days
        lookback_days = cs.lookback_days if lookback_days is None else lookback_days
        freq_ = (freq or ds.freq).upper()
        if freq_ not in ("D", "W", "M"):
            raise ConfigError(f"--freq must be D, W or M; got {freq_!r}")
        if levels is not None:
            levels_ = tuple(x.strip() for x in levels.split(",") if x.strip())
            twice = sorted({c for c in levels_ if levels_.count(c) > 1})
            if twice:  # it stopped with pandas' "cannot insert sku, already exists" after loading the book
                raise ConfigError(f"--levels names {twice} more than once ({levels!r}); give each key column once, "
                                  "e.g. sku,location")
        else:
            levels_ = tuple(ds.levels)

        book = load_order_book(cfg, progress=show)  # its own progress bars while reading
        bar = _steps(show, 4)
        try:
            ol = book.order_lines
            check_cutoff_in_book(book, cut)
            before = int((ol["order_date"] < cut).sum())
            if before == 0:
                raise DataError(
                    f"{config}: no order lines before --cutoff {cut.date()}; the order book spans "
                    f"{ol['order_date'].min().date()} .. {ol['order_date'].max().date()}"
                )
            missing = [c for c in levels_ if c not in ol.columns]
            if missing:
                raise ConfigError(f"--levels {missing} are not order_lines columns; have {list(ol.columns)}")

            out = Path(out).resolve()
            if out.parent.is_dir():
                _clean_after_killed_builds(out)
            if out.exists():
                _check_replaceable(out)  # before any work, so a bad --out fails fast
            tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
            except OSError as exc:  # a read-only or missing place: said, not a traceback
                raise DealermlError(_cannot_write(out, exc)) from None
            # SIGTERM (`kill`, a stopped container) unwinds like Ctrl-C, so the `finally` below removes the
            # temporary folder (it was left, half written, beside OUT); then the process ends as SIGTERM'd
            from training._scores_atomic import _sigterm_as_interrupt

            with _sigterm_as_interrupt():
                try:
                    counts: dict[str, int] = {}
                    _step(bar, "account features")
                    feats = account_features(lines_as_of(book, cut), book.accounts, book.service_events, cutoff=cut)
                    feats.to_parquet(tmp / "account_features.parquet", index=False)
                    counts["account_features"] = len(feats)
                    _done(bar)

                    _step(bar, "churn labels")
                    last_day = ol["order_date"].max().normalize()
                    label_end = cut + pd.Timedelta(days=horizon_days)
                    observable = last_day >= label_end - pd.Timedelta(days=1)
                    if observable:
                        labels = churn_labels(ol, cutoff=cut, horizon_days=horizon_days, lookback_days=lookback_days)
                        labels.to_parquet(tmp / "churn_labels.parquet", index=False)
                        counts["churn_labels"] = len(labels)
                    _done(bar)

                    _step(bar, f"demand series ({freq_}, {'/'.join(levels_) or 'total'})")
                    from features.demand import demand_classes, demand_series

                    # demand_series reads rows up to and including its cutoff instant; give it the
                    # last instant before our cutoff so every table uses the same rows.
                    series = demand_series(book.demand_lines(ds.include_lines_without_account), cutoff=cut - pd.Timedelta(nanoseconds=1),
                                           freq=freq_, levels=levels_)
                    classes = demand_classes(series)
                    series.to_parquet(tmp / "demand_series.parquet", index=False)
                    classes.to_parquet(tmp / "demand_classes.parquet", index=False)
                    counts["demand_series"] = len(series)
                    counts["demand_classes"] = len(classes)
                    _done(bar)

                    _step(bar, "writing")
                    manifest = {
                        "cutoff": str(cut.date()),
                        "config": str(config),
                        "horizon_days": horizon_days,
                        "lookback_days": lookback_days,
                        "churn_labels": "written" if observable else (
                            f"skipped: the book ends {last_day.date()}, before the label window "
                            f"[{cut.date()}, {label_end.date()}) is complete"
                        ),
                        "demand": {"freq": freq_, "levels": list(levels_),
                                   "classes": classes["demand_class"].value_counts().sort_index().to_dict()},
                        "rows": counts,
                        "order_lines_before_cutoff": before,
                        "fingerprint": book.fingerprint,
                    }
                    write_json(manifest, tmp / "manifest.json")
                    _replace_dir(tmp, out)
                    _done(bar)
                except OSError as exc:  # a full disk while writing: the temporary folder goes, OUT stays as it was
                    raise DealermlError(_cannot_write(out, exc)) from None
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if bar is not None:
                bar.stop()
    except DealermlError as err:
        fail(err)
        return
    except ValueError as err:  # feature functions name the table/column in their messages
        fail(DataError(str(err)))
        return

    typer.echo(f"features as of {cut.date()} -> {out}  ({time.perf_counter() - t_start:.1f} s)")
    for name, n in counts.items():
        typer.echo(f"  {out / (name + '.parquet')}: {n:,} rows")
    if not observable:
        typer.echo(f"  churn labels {manifest['churn_labels']}")  # "skipped: the book ends ..."
    typer.echo(f"  {out / 'manifest.json'}")
