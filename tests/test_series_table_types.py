"""A ready series table (`--series FILE`, `demand.series`) read from Parquet keeps what its
column types say: a zoned timestamp its wall-clock date, a nullable integer y its missing
cells (as an empty CSV cell is read), never a traceback or a date moved back a day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.demand_data import build_panel
from training.demand_config import read_series_file

MONDAYS = pd.date_range("2024-01-01", periods=30, freq="W-MON")


def _table() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "a", "ds": MONDAYS, "y": (np.arange(30) % 4 + 3).astype("int64")})


def test_a_zoned_parquet_ds_keeps_its_wall_clock_dates(tmp_path):
    zoned = _table().assign(ds=MONDAYS.tz_localize("Europe/Berlin"))  # Monday 00:00+01:00 = Sunday 23:00 UTC
    zoned.to_parquet(tmp_path / "s.parquet")
    got = read_series_file(tmp_path / "s.parquet")
    assert got["ds"].tolist() == MONDAYS.tolist()
    monthly = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=12, freq="MS",
                                                                  tz="Asia/Tokyo"), "y": 5.0})
    monthly.to_parquet(tmp_path / "m.parquet")
    got = read_series_file(tmp_path / "m.parquet")
    assert got["ds"].dt.month.tolist() == list(range(1, 13))  # not Dec, Jan, ..., Nov (UTC's dates)
    assert (got["ds"].dt.day == 1).all()


def test_a_nullable_integer_y_with_missing_cells_reads_as_missing_periods(tmp_path):
    t = _table()
    t["y"] = t["y"].astype("Int64")
    t.loc[[4, 9], "y"] = pd.NA
    t.to_parquet(tmp_path / "s.parquet")
    got = read_series_file(tmp_path / "s.parquet")
    panel = build_panel(got, "W")  # raised TypeError: boolean value of NA is ambiguous
    plain = build_panel(_table().assign(y=t["y"].astype("float64")), "W")  # the same cells as NaN
    assert np.array_equal(panel.Y, plain.Y)
    assert panel.notes["filled"] == [{"unique_id": "a", "periods_filled": 2,
                                      "reason": "missing periods counted as zero demand"}]
    assert panel.Y[0][[4, 9]].tolist() == [0.0, 0.0]


def test_a_nullable_integer_y_still_names_a_negative_value_as_written():
    t = _table()
    t["y"] = t["y"].astype("Int64")
    t.loc[2, "y"] = -7
    t.loc[5, "y"] = pd.NA
    try:
        build_panel(t, "W")
    except ValueError as err:
        assert str(err) == "column y must be >= 0 (demand in units): 1 row(s) break it, first rows [3], e.g. -7"
    else:
        raise AssertionError("a negative y was accepted")
