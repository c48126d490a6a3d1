"""Small demand panels, books and configs shared by the demand, safety-stock and replay tests.

- ``_promo_panel`` (test_demand_drivers, test_demand_plan_fallback): series with a promotion driver;
- ``MEMBERS``, ``_panel``, ``_missing_at_last`` (test_demand_fallback, test_fallback_safety_stock,
  test_replay_fallback): the fallback ensemble's members, a panel, and a member missing at the last cutoff;
- ``_config``, ``_small_config`` (test_demand_tuning, test_tuning_identity, test_data_lineage): tuning configs;
- ``_book`` (test_demand_book_tables, test_features_demand_settings) and ``_cli_book`` (test_safety_stock_*,
  test_compare, test_cli_review_defects, test_zero_lead_time): a four-series weekly book on disk;
- ``_cases`` (test_inventory_replay, test_replay_lead_times): inventory replay cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.demand_members import _MemberRuns


def _promo_panel(n=10, T=90, seed=3) -> pd.DataFrame:
    """Weekly series whose demand triples in promotion weeks (promo 1 in ~25 % of weeks, none in
    the last week, so 'carry the last value forward' means no promotion)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    rows = []
    for i in range(n):
        promo = (rng.random(T) < 0.25).astype(float)
        promo[-1] = 0.0
        y = rng.poisson(rng.uniform(5, 20) * (1 + 2.0 * promo)).astype(float)
        rows.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": ds, "y": y, "promo": promo}))
    return pd.concat(rows, ignore_index=True)


MEMBERS = dict(models=("SeasonalNaive", "CrostonSBA", "LightGBM"), lgbm_params={"n_estimators": 20})


def _panel(n: int = 8, T: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-04", periods=T, freq="W-MON")
    return pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(rng.uniform(3, 20), T).astype(float)})
                      for i in range(n)], ignore_index=True)


def _missing_at_last(monkeypatch, T: int, gone: dict[str, list[str]]):
    """The members' output at cutoff index T - 1 (the last one of a fit) without a forecast for ``gone``
    (series -> members); the selection windows before it are untouched."""
    real = _MemberRuns._members_at

    def patched(self, panel, c, h, *a, **k):
        out = real(self, panel, c, h, *a, **k)
        if c == T - 1 and len(out):
            for u, members in gone.items():
                for m in members:
                    if m in out.columns:
                        out.loc[out["unique_id"] == u, m] = np.nan
        return out

    monkeypatch.setattr(_MemberRuns, "_members_at", patched)


def _config(tmp_path, *, target: str, seed: int, start: str, periods: int, n: int, base: int, slope: int,
            models: str, n_estimators: int):
    """A config over a monthly series file of ``n`` Poisson series (means base + slope * i)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, periods=periods, freq="MS")
    df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(base + slope * i, periods).astype(float)})
                    for i in range(n)])
    data = tmp_path / "s.csv"
    df.to_csv(data, index=False)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        f"name: t\nseed: 3\ndata:\n  order_lines:\n    path: {data}\n"
        f"demand:\n  freq: M\n  horizon: 3\n  series: {{path: {data}}}\n"
        f"  models: {models}\n  lgbm: {{n_estimators: {n_estimators}}}\n  selection_windows: 1\n"
        f"tuning:\n  target: {target}\n"
    )
    return cfg_path, ds


def _small_config(tmp_path, target: str = "{n_folds: 1}"):
    return _config(tmp_path, target=target, seed=5, start="2020-01-01", periods=30, n=4, base=8, slope=4,
                   models="[SeasonalNaive, LightGBM]", n_estimators=10)


def _book(tmp_path: Path, levels: list[str]) -> Path:
    rows = []
    for i, d in enumerate(pd.date_range("2023-06-05", periods=50, freq="W-MON")):
        for sku, loc in (("A1", "north"), ("A1", "south"), ("B2", "north"), ("C3", "south")):
            rows.append({"Doc": f"{d:%Y%m%d}{sku}{loc}", "Date": f"{d:%d.%m.%Y}", "Cust": "007", "Item": sku,
                         "Qty": str(1 + (i * 7) % 5), "Price": "2.5", "Whs": loc})
    pd.DataFrame(rows).to_csv(tmp_path / "lines.csv", sep=";", index=False)
    # lead times: A1 everywhere (empty location), B2 only at north, C3 at south plus an all-locations row
    (tmp_path / "lt.csv").write_text("Item;Whs;Days;Sd\nA1;;21;4\nB2;north;10;2\nC3;;30;5\nC3;south;7;1\n")
    # two snapshots; the later one wins per (sku, location); a SKU the book never sold
    (tmp_path / "inv.csv").write_text(
        "Whs,Item,Stock,Day\n"
        "north,A1,100,2024-05-01\nnorth,A1,40,2024-05-10\nsouth,A1,7,2024-05-10\nsouth,A1,9,2024-05-01\n"
        "north,B2,5,2024-05-10\nsouth,C3,11,2024-05-10\nnorth,ZZ9,3,2024-05-10\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: t\ndata:\n  as_of: '2024-06-30'\n"
        "  order_lines: {path: lines.csv, sep: ';', date_format: '%d.%m.%Y', columns: {order_id: Doc, order_date: Date,"
        " account_id: Cust, sku: Item, quantity: Qty, unit_price: Price, location: Whs}}\n"
        "  lead_times: {path: lt.csv, sep: ';', columns: {sku: Item, location: Whs, lead_time_days: Days, lead_time_std_days: Sd}}\n"
        "  inventory: {path: inv.csv, columns: {location: Whs, sku: Item, on_hand: Stock, snapshot_date: Day}}\n"
        f"demand: {{freq: W, levels: [{', '.join(levels)}], lead_time_days: 14, lead_time_std_days: 3}}\n")
    return cfg


def _cli_book(tmp_path, c3_south_days: float = 7):
    """``_book``'s four-series book (A1/north, A1/south, B2/north, C3/south;
    weekly), with B2 left out of the lead-time table (it takes the config's 14 +- 3 days) and C3 at
    south's own row of ``c3_south_days`` days, no spread."""
    cfg = _book(tmp_path, ["sku", "location"])
    (tmp_path / "lt.csv").write_text(f"Item;Whs;Days;Sd\nA1;;21;4\nC3;;30;5\nC3;south;{c3_south_days:g};\n")
    cfg.write_text(cfg.read_text().replace(
        "demand: {freq: W,", "demand: {horizon: 8, windows: 1, selection_windows: 1, models: [SeasonalNaive, AutoETS], freq: W,"))
    return cfg


def _cases():
    rng = np.random.default_rng(11)
    for n, T, L, R, E in [(1, 4, 1, 1, 4), (7, 12, 2, 1, 12), (5, 13, 0, 1, 13), (9, 12, 3, 2, 6), (4, 20, 6, 3, 6),
                          (6, 10, 4, 1, 7), (3, 9, 12, 1, 9), (12, 26, 5, 2, 13)]:
        for dist in ("poisson", "lumpy", "float"):
            if dist == "poisson":
                actual = rng.poisson(4.0, (n, T)).astype(float)
            elif dist == "lumpy":
                actual = rng.poisson(6.0, (n, T)) * (rng.random((n, T)) < 0.2).astype(float)
            else:
                actual = rng.gamma(2.0, 1.7, (n, T))
            yield actual, rng.uniform(0.0, 30.0, (n, E)), L, R, rng.integers(0, L + 3, n)
