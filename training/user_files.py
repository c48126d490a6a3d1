"""Small per-series files a user hands a command (``--on-hand``, ``--future``): read them with
the series ids kept as text, and refuse empty ids, with errors that name the option, the file and
the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.errors import DataError


def first_rows(mask: np.ndarray, n: int = 5) -> list[int]:
    """1-based numbers of the first ``n`` data rows where ``mask`` holds."""
    return (np.flatnonzero(mask)[:n] + 1).tolist()


def read_series_table(path: Path, src: str, expected: str) -> pd.DataFrame:
    """A CSV or Parquet file with a ``unique_id`` column read as text ("007" stays "007").
    ``src`` prefixes every error (e.g. "--on-hand plan.csv"); ``expected`` says what the file
    should hold when it is empty."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{src}: is a folder; expected a CSV or Parquet file")
    if not path.is_file():
        raise DataError(f"{src}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        df = pd.read_csv(path, dtype={"unique_id": str})
    except pd.errors.EmptyDataError:
        raise DataError(f"{src}: the file is empty (expected {expected})") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data problem for the user
        raise DataError(f"{src}: cannot read ({type(exc).__name__}: {exc})") from None
    if len(df.columns) == 1:
        for sep, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if sep in str(df.columns[0]):
                raise DataError(f"{src}: the header is one column {str(df.columns[0])!r}: the file looks "
                                f"{label}-separated; write it comma-separated with '.' as the decimal mark "
                                f"(expected {expected}), or as Parquet")
    return df


def text_ids(df: pd.DataFrame, src: str) -> pd.DataFrame:
    """``df`` with ``unique_id`` as text; an empty id in any row is an error naming the rows."""
    uid = df["unique_id"]
    bad = (uid.isna() | (uid.astype(str).str.strip() == "")).to_numpy()
    if bad.any():
        raise DataError(f"{src}: column unique_id is empty in {int(bad.sum())} row(s), first rows {first_rows(bad)} "
                        "(1 = the first data row)")
    df["unique_id"] = uid.astype(str)
    return df
