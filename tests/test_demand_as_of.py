"""A demand backtest window forecasts from the book as it stood at its cutoff.

The order book nets a cancellation against the lines it cancels, also one dated after a cutoff
(docs/DATA.md, "As of a cutoff"). A run on the cutoff could not know that cancellation, so a
backtest window's history must keep the cancelled units, while its actuals (scored after the
cutoff) are the netted book's. Hand-made weekly book: SKU S sells 10 a week to account A; in the
week before the last window's cutoff A also orders 100 units, cancelled on the Monday after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.demand_data import build_panel, panel_as_of
from training.config import load_config
from training.demand_backtest import run_backtest
from training.demand_config import demand_settings, load_demand_series

START = pd.Timestamp("2024-01-01")  # a Monday: weeks start on Mondays
WEEKS = 20
H = 2
# the (only) window's cutoff week: the book's last week is partial (it ends on a Wednesday) and left
# out, the H weeks before it are the window's test
CUT = START + pd.Timedelta(weeks=WEEKS - 2 - H)


def _book(tmp_path: Path, late_cancel: bool = True) -> Path:
    rows = []
    for w in range(WEEKS):
        rows.append((f"{w}", str((START + pd.Timedelta(weeks=w, days=1)).date()), "A", "S", "10", "2"))
        rows.append((f"t{w}", str((START + pd.Timedelta(weeks=w, days=2)).date()), "B", "T", str(5 + w % 3), "1"))
    rows.append(("big", str((CUT + pd.Timedelta(days=4)).date()), "A", "S", "100", "2"))  # Friday of the cutoff week
    if late_cancel:  # the next Monday: after the cutoff week ended, before A's next weekly order
        rows.append(("Cbig", str((CUT + pd.Timedelta(days=7)).date()), "A", "S", "-100", "2"))
    csv = tmp_path / "lines.csv"
    pd.DataFrame(rows, columns=["order_id", "order_date", "account_id", "sku", "quantity", "unit_price"]).to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 1\ndata:\n  order_lines: {{path: {csv}, cancellation_prefix: C}}\n"
                   f"  as_of: '2025-01-01'\ndemand: {{freq: W, horizon: {H}, windows: 1, levels: [sku]}}\n")
    return cfg


def _loaded(tmp_path: Path, **kw):
    cfg = load_config(_book(tmp_path, **kw))
    s = demand_settings(cfg)
    return s, *load_demand_series(cfg, s)


def test_the_history_as_of_an_instant_keeps_the_units_a_later_cancellation_took(tmp_path: Path) -> None:
    s, df, info = _loaded(tmp_path)
    y = df.set_index(["unique_id", "ds"])["y"]
    assert y[("S", CUT)] == 10.0  # the netted book: the 100 units are gone
    end = CUT + pd.Timedelta(weeks=1)  # the Monday after the cutoff week, before the cancellation
    then = info["as_of"](end).set_index(["unique_id", "ds"])["y"]
    assert then[("S", CUT)] == 110.0 and then.index.get_level_values("ds").max() == CUT  # nothing after the cutoff read
    assert then[("T", CUT)] == y[("T", CUT)]  # untouched SKU
    assert info["as_of"](CUT + pd.Timedelta(days=8)) is None  # once the cancellation is dated: the book itself
    panel = build_panel(df, "W")
    c = int(panel.dates.get_indexer([CUT])[0])
    p = panel_as_of(panel, c, info["as_of"](end))
    i = list(panel.uids).index("S")
    assert p.Y[i, c] == 110.0 and panel.Y[i, c] == 10.0  # the original panel is not changed
    assert np.array_equal(p.Y[:, c + 1:], panel.Y[:, c + 1:], equal_nan=True)  # later periods are the book's
    assert panel_as_of(panel, c, None) is panel


def test_a_book_without_a_late_cancellation_has_no_as_of_history(tmp_path: Path) -> None:
    _, _, info = _loaded(tmp_path, late_cancel=False)
    assert "as_of" not in info


@pytest.mark.parametrize("as_of", [True, False])
def test_the_backtest_window_forecasts_from_the_history_as_it_stood(tmp_path: Path, as_of: bool) -> None:
    s, df, info = _loaded(tmp_path)
    kw = {"models": ["SeasonalNaive", "CrostonSBA"], "random_state": 1}
    report, cv = run_backtest(df, freq="W", h=H, n_windows=1, forecaster_kwargs=kw,
                              history_as_of=info["as_of"] if as_of else None)
    assert report["history_as_of_cutoff"] is as_of
    S = cv[cv["unique_id"] == "S"].sort_values("ds")
    assert (S["cutoff"] == CUT).all() and list(S["y"]) == [10.0, 10.0]  # scored on the netted book
    # the naive forecast repeats the last week: 110 as the book stood at the cutoff, 10 in hindsight
    assert list(S["SeasonalNaive"]) == ([110.0, 110.0] if as_of else [10.0, 10.0])
    T = cv[cv["unique_id"] == "T"]
    assert list(T["SeasonalNaive"]) == [float(df.set_index(["unique_id", "ds"])["y"][("T", CUT)])] * H


def test_a_demand_cutoff_reads_the_book_as_it_stood_at_the_end_of_that_day(tmp_path: Path) -> None:
    """demand.cutoff (forecast as of an earlier day): the series are the book as it stood then, so the
    cancellation dated after it does not net the cutoff week's 100 units; on the cancellation's day it does."""
    for day, want in ((CUT + pd.Timedelta(days=6), 110.0), (CUT + pd.Timedelta(days=7), 10.0)):
        cfg = _book(tmp_path)
        cfg.write_text(cfg.read_text().replace("levels: [sku]}", f"levels: [sku], cutoff: '{day.date()}'}}"))
        c = load_config(cfg)
        df, _ = load_demand_series(c, demand_settings(c))
        y = df.set_index(["unique_id", "ds"])["y"]
        assert y[("S", CUT)] == want, (day, y[("S", CUT)])
