"""A weekly book with a promotions calendar, shared by the promotions tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _calendar_book(tmp_path):
    """A weekly book of SKUs A, B, C (history to the week of 9 Sep 2024) with a campaign every 6 weeks, and
    one planned for A in the week of 23 Sep 2024, after the history."""
    rng = np.random.default_rng(1)
    rows = []
    for i, d in enumerate(pd.date_range("2023-01-04", periods=90, freq="W-WED")):
        for sku in ("A", "B", "C"):
            promo = int(i % 6 == 0)
            rows.append({"order_id": f"o{i}{sku}", "order_date": f"{d:%Y-%m-%d}", "account_id": "a", "sku": sku,
                         "quantity": int(rng.poisson(4 + 12 * promo)) + 1, "unit_price": 1.0})
    pd.DataFrame(rows).to_csv(tmp_path / "lines.csv", index=False)
    starts = pd.date_range("2023-01-02", periods=90, freq="W-MON")[::6]
    cal = [f"{sku},{s:%Y-%m-%d},{s + pd.Timedelta(days=6):%Y-%m-%d}" for s in starts for sku in ("A", "B", "C")]
    cal.append("A,2024-09-23,2024-09-29")  # the second week after the history (which ends in the week of 9 Sep)
    (tmp_path / "promo.csv").write_text("sku,start_date,end_date\n" + "\n".join(cal) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 1\ndata:\n  as_of: '2024-09-30'\n  order_lines: {{path: {tmp_path / 'lines.csv'}}}\n"
                   f"  promotions: {{path: {tmp_path / 'promo.csv'}}}\n"
                   "demand: {freq: W, horizon: 3, windows: 1, drivers: [promo], levels: [sku],"
                   " models: [AutoETS, LightGBM], lgbm: {n_estimators: 40}, selection_windows: 1}\n")
    return cfg
