"""``dealerml data generate``: write the synthetic dealer network (the embedded default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli import data_app
from training.commands._common import fail


def _row_counts(paths: dict[str, Path]) -> dict[str, int]:
    """Rows per written table (Parquet from its footer, CSV by counting lines)."""
    import pyarrow.parquet as pq

    counts = {}
    for name, p in paths.items():
        if p.suffix == ".parquet":
            counts[name] = pq.ParquetFile(p).metadata.num_rows
        elif p.suffix == ".csv":
            with p.open("rb") as f:
                counts[name] = sum(1 for _ in f) - 1
    return counts


@data_app.command("generate")
def generate_cmd(
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: $DEALERML_HOME/synthetic).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (0 or more); the same seed and sizes give the same bytes.")] = 42,
    accounts: Annotated[
        int | None,
        typer.Option("--accounts", min=20, show_default=False,
                     help="Number of dealer accounts (~225 order lines each over 3 years; default 400), "
                          "or give --lines."),
    ] = None,
    skus: Annotated[int, typer.Option("--skus", min=12, help="Number of SKUs in the catalogue.")] = 200,
    locations: Annotated[
        int, typer.Option("--locations", min=1, max=50, help="Number of warehouses (DC1, DC2, ...).")
    ] = 3,
    start: Annotated[str, typer.Option("--start", help="First order date (YYYY-MM-DD).")] = "2022-01-01",
    end: Annotated[
        str, typer.Option("--end", help="Last order date (YYYY-MM-DD); also the inventory snapshot date.")
    ] = "2024-12-31",
    lines: Annotated[
        int | None,
        typer.Option("--lines", min=1000, help="Aim at about this many order lines (instead of --accounts), e.g. 10000000."),
    ] = None,
) -> None:
    """Generate the synthetic dealer network with its ground truth and a ready config.yaml."""
    from training import paths
    from training.synthetic import generate

    if accounts is not None and lines is not None:
        # --lines sets the number of accounts: the --accounts given was dropped without a word
        # (--accounts 60 --lines 3000 wrote 20 accounts)
        from training.errors import ConfigError

        fail(ConfigError(f"data generate: --accounts {accounts} and --lines {lines} both set the size of the network "
                         "(--lines picks the number of accounts that gives about that many order lines); give one "
                         "of them"))
        return
    accounts = 400 if accounts is None else accounts
    out_dir = out if out is not None else paths.synthetic_dir()
    big = (lines or accounts * 225) >= 1_000_000
    try:
        written = generate(
            out_dir,
            seed=seed,
            n_accounts=accounts,
            n_skus=skus,
            n_locations=locations,
            start=start,
            end=end,
            lines_target=lines,
            progress=big,
        )
    except ValueError as err:
        from training.errors import ConfigError

        fail(ConfigError(f"data generate: {err}"))
        return
    except OSError as err:  # a read-only or missing place: said, not a traceback (the folder is left as it was)
        from training.errors import DealermlError

        where = f" ({err.filename})" if err.filename else ""
        fail(DealermlError(f"data generate: cannot write --out {out_dir}: {err.strerror or err}{where}"))
        return
    counts = _row_counts(written)
    typer.echo(f"wrote the synthetic dealer network (seed {seed}) to {Path(out_dir).resolve()}:")
    for name, p in written.items():
        rows = f"{counts[name]:>12,} rows" if name in counts else " " * 17
        typer.echo(f"  {p.name:<22}{rows}")
    import pandas as pd

    truth = pd.read_csv(written["truth_accounts"], usecols=["segment", "churn_kind"])
    kinds = truth["churn_kind"].value_counts()
    segs = ", ".join(f"{k} {v}" for k, v in truth["segment"].value_counts().sort_index().items())
    typer.echo(f"ground truth: {kinds.get('full', 0)} full and {kinds.get('partial', 0)} partial churners; {segs}")
    typer.echo(f"use it with: dealerml data validate --config {Path(out_dir).resolve() / 'config.yaml'}")
