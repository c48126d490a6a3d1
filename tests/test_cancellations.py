"""Cancellation lines net the lines they cancel, and lines without an account stay demand.

Hand-made books with the figures worked out by hand: which line a cancellation takes its units
from (the latest earlier line of the same account and SKU, then the one before), how far back
it reaches (``cancellation_window_days``), what is left of a line cancelled in part (its amount
in proportion), and the warning naming cancellations that found nothing to cancel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.demand import demand_series
from training.config import load_config
from training.data import load_order_book
from training.validate import validate_order_lines

COLS = ["order_id", "order_date", "account_id", "sku", "quantity", "unit_price"]


def _lines(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([[None if v is None else str(v) for v in r] for r in rows], columns=COLS, dtype=object)


def _clean(rows: list[tuple], **kw):
    return validate_order_lines(_lines(rows), source="t.csv", cancellation_prefix="C", as_of="2025-01-01", **kw)


def test_cancellation_takes_units_off_the_latest_earlier_lines_first() -> None:
    out, rep = _clean([
        ("1", "2024-01-01 09:00", "A", "S", "10", "2"),
        ("2", "2024-01-05 09:00", "A", "S", "5", "2"),
        ("C3", "2024-01-06 09:00", "A", "S", "-7", "2"),  # 5 off line 2 (gone), 2 off line 1 (8 left)
        ("4", "2024-01-06 10:00", "A", "T", "3", "1"),  # another SKU: untouched
        ("5", "2024-01-06 10:00", "B", "S", "4", "1"),  # another account: untouched
    ])
    assert out.set_index("order_id")["quantity"].to_dict() == {"1": 8.0, "4": 3.0, "5": 4.0}
    assert out.set_index("order_id")["line_amount"].to_dict() == {"1": 16.0, "4": 3.0, "5": 4.0}
    assert rep.reasons["cancelled"]["rows"] == 1 and rep.reasons["cancelled"]["examples"][0]["order_id"] == "2"
    assert rep.reasons["cancelled"]["examples"][0]["quantity"] == 5  # as placed
    assert rep.fixes["quantity_net_of_cancellation"]["rows"] == 1
    assert rep.stats["orders"] == 3 and rep.stats["revenue"] == 23.0
    assert not rep.warnings


def test_cancellation_reaches_back_only_its_window_and_says_what_it_could_not_cancel() -> None:
    rows = [
        ("1", "2024-01-01", "A", "S", "10", "2"),
        ("C2", "2024-03-01", "A", "S", "-4", "2"),  # 60 days later: a return, not netted at 30 days
        ("C3", "2024-01-03", "B", "S", "-2", "2"),  # B never ordered S
        ("4", "2024-01-04", "B", "S", "1", "2"),  # ... before the cancellation: not cancelled by it
    ]
    out, rep = _clean(rows)
    assert out.set_index("order_id")["quantity"].to_dict() == {"1": 10.0, "4": 1.0}
    assert "cancelled" not in rep.reasons and not rep.fixes.get("quantity_net_of_cancellation")
    [w] = rep.warnings
    assert w.startswith("2 cancellation line(s) (6 of 6 cancelled units) found no earlier line of the same account and "
                        "SKU placed within 30 days before them (order_id C2, C3; rows [2, 3]; 1 = the first data row)")
    out, rep = _clean(rows, cancellation_window_days=90)  # reaches line 1 now
    assert out.set_index("order_id")["quantity"].to_dict() == {"1": 6.0, "4": 1.0}
    assert "(2 of 6 cancelled units)" in rep.warnings[0] and "order_id C3; rows [3]" in rep.warnings[0]
    out, rep = _clean(rows, cancellation_window_days=0)  # off: the cancellation only drops itself
    assert out.set_index("order_id")["quantity"].to_dict() == {"1": 10.0, "4": 1.0} and not rep.warnings


def test_a_cancelled_order_at_the_same_minute_and_an_over_cancellation() -> None:
    out, rep = _clean([
        ("C9", "2024-01-01 09:00", "A", "S", "-3", "2"),  # same minute as the order it cancels
        ("1", "2024-01-01 09:00", "A", "S", "3", "2"),
        ("2", "2024-02-01", "A", "S", "2", "2"),
        ("C8", "2024-02-02", "A", "S", "-5", "2"),  # 5 asked, 2 there: line 2 gone, 3 units unmatched
        ("3", "2024-02-03", "A", "S", "1", "2"),  # after it: kept
    ])
    assert list(out["order_id"]) == ["3"]
    assert rep.reasons["cancelled"]["rows"] == 2
    w = rep.warnings[0]
    # C8 found line 2, too small: the warning says so rather than only "found no earlier line"
    assert w.startswith("1 cancellation line(s) (3 of 8 cancelled units) found no earlier line of the same account "
                        "and SKU placed within 30 days before them (order_id C8; rows [4]; 1 = the first data row); 1 "
                        "of them found such lines but fewer units than they cancel, and cancel what they found: an order "
                        "placed before the book starts, goods returned more than 30 days after the order, or another "
                        "SKU code")


def test_only_usable_cancellations_net(tmp_path: Path) -> None:
    """A duplicate cancellation line (an export that wrote it twice) nets once; one without an
    account or a SKU cannot say what it cancels."""
    out, rep = _clean([
        ("1", "2024-01-01", "A", "S", "10", "2"),
        ("C2", "2024-01-02", "A", "S", "-3", "2"),
        ("C2", "2024-01-02", "A", "S", "-3", "2"),  # exact duplicate
        ("C3", "2024-01-02", None, "S", "-3", "2"),
        ("C4", "2024-01-02", "A", None, "-3", "2"),
    ])
    assert out["quantity"].tolist() == [7.0]


def _book(tmp_path: Path, rows: list[tuple], demand: str = "") -> Path:
    csv = tmp_path / "lines.csv"
    _lines(rows).to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 1\ndata:\n  order_lines: {{path: {csv}, cancellation_prefix: C}}\n"
                   f"  as_of: '2025-01-01'\n{demand}")
    return cfg


def test_lines_without_an_account_are_demand_but_no_account_order(tmp_path: Path) -> None:
    rows = [
        ("1", "2024-01-01", "A", "S", "4", "2"),
        ("2", "2024-01-02", None, "S", "6", "3"),  # a sale to no known account
        ("3", "2024-01-03", None, "S", "5", "0"),  # ... with price 0: dropped everywhere
        ("4", "2024-01-09", None, "S", "1", "3"),
        ("5", "2024-01-15", "A", "S", "1", "2"),
    ]
    cfg = _book(tmp_path, rows)
    book = load_order_book(cfg)
    assert book.order_lines["order_id"].tolist() == ["1", "5"]
    assert book.unattributed_lines["order_id"].tolist() == ["2", "4"]
    assert book.report.tables["order_lines"].reasons["missing_account"]["rows"] == 3
    assert book.report.tables["order_lines"].stats["lines_without_account_for_demand"] == 2
    assert book.accounts is None or set(book.accounts["account_id"]) == {"A"}
    ol = book.demand_lines()
    assert ol["order_id"].tolist() == ["1", "2", "4", "5"]
    weeks = demand_series(ol, cutoff=pd.Timestamp("2024-01-21"), freq="W", levels=["sku"])
    assert weeks["y"].tolist() == [10.0, 1.0, 1.0]  # weeks of Jan 1, 8 and 15
    assert book.demand_lines(False)["order_id"].tolist() == ["1", "5"]
    # they count in the book's fingerprint (demand models compare books by it)
    other = load_order_book(_book(tmp_path, rows[:1] + rows[4:]))
    assert other.fingerprint["order_lines_sha256"] != book.fingerprint["order_lines_sha256"]


def test_demand_setting_leaves_them_out(tmp_path: Path) -> None:
    from training.demand_config import demand_settings, load_demand_series

    rows = [(str(i), f"2024-01-{1 + i:02d}", "A" if i % 2 else None, "S", "1", "2") for i in range(28)]
    for flag, want in (("true", 28.0), ("false", 14.0)):
        cfg = load_config(_book(tmp_path, rows, f"demand: {{freq: D, include_lines_without_account: {flag}}}\n"))
        df, _ = load_demand_series(cfg, demand_settings(cfg))
        assert df["y"].sum() == want, flag


def test_window_is_an_order_lines_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ndata:\n  order_lines: {path: x.csv, cancellation_window_days: -1}\n")
    with pytest.raises(Exception, match="cancellation_window_days"):
        load_config(cfg)
    cfg.write_text("name: t\ndata:\n  order_lines: {path: x.csv}\n  accounts: {path: a.csv, cancellation_window_days: 5}\n")
    with pytest.raises(Exception, match="accounts.cancellation_window_days only applies to order_lines"):
        load_config(cfg)


@pytest.mark.timeout(60, method="signal")
def test_netting_a_long_account_sku_history_is_linear() -> None:
    """One account re-ordering one SKU 60,000 times (every 10 minutes for 416 days) and cancelling 3,000
    of those orders: each cancellation (3 units, 30 minutes after line i) empties line i (2 units) and
    takes 1 unit off line i - 1. The netting filtered the pair's whole history after every cancellation
    (3,000 x up to 60,000 lines: 20 s or more); it now keeps only lines within reach and pops the ones it
    emptied (about 0.5 s)."""
    import time

    import numpy as np

    from training._validate_cancellations import net_cancellations

    n_lines, every = 60_000, 20
    hit = np.arange(every, n_lines, every)  # the lines cancelled: 20, 40, ... 59,980
    minutes = np.concatenate([np.arange(n_lines) * 10, hit * 10 + 3])
    qty = np.concatenate([np.full(n_lines, 2.0), np.full(len(hit), -3.0)])
    cancel = np.arange(len(qty)) >= n_lines
    t0 = time.perf_counter()
    res = net_cancellations(cancel=cancel, keep=~cancel, account=np.full(len(qty), "A", dtype=object),
                            sku=np.full(len(qty), "S", dtype=object),
                            dates=np.datetime64("2024-01-01T00:00", "m") + minutes.astype("timedelta64[m]"),
                            quantity=qty, window_days=30)
    took = time.perf_counter() - t0
    assert np.flatnonzero(res.cancelled).tolist() == hit.tolist()
    assert np.flatnonzero(res.reduced).tolist() == (hit - 1).tolist()
    assert res.quantity[hit - 1].tolist() == [1.0] * len(hit) and res.quantity[: n_lines].sum() == 2 * n_lines - 3 * len(hit)
    assert res.matched_units == 3 * len(hit) and res.unmatched_units == 0 and not res.unmatched.any()
    assert took < 5, f"netting 63,000 lines of one account and SKU took {took:.1f} s"


def test_the_report_says_which_dropped_lines_stay_demand_and_the_window_used(tmp_path: Path) -> None:
    rows = [
        ("1", "2024-01-01", "A", "S", "4", "2"),
        ("2", "2024-01-02", None, "S", "6", "3"),
        ("C3", "2024-01-03", "A", "S", "-4", "2"),
        ("4", "2024-01-09", "A", "S", "1", "3"),
    ]
    csv = tmp_path / "lines.csv"
    _lines(rows).to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines: {{path: {csv}, cancellation_prefix: C, cancellation_window_days: 7}}\n"
                   "  as_of: '2025-01-01'\n")
    rep = load_order_book(cfg).report.tables["order_lines"]
    text = rep.render()
    assert "kept            1   dropped          3 (75.0%); 1 of the dropped lines have no account and stay demand" in text
    assert "lines with an account: orders: 1, accounts: 1" in text
    assert rep.reasons["cancelled"]["description"].endswith("(within 7 days, cancellation_window_days)")


def test_features_at_a_cutoff_read_the_book_as_it_stood_then(tmp_path: Path) -> None:
    """A cancellation dated on or after a cutoff does not net a line placed before it in what
    features at that cutoff read (a run on that day could not know it); labels read the book."""
    from training.data import lines_as_of

    rows = [
        ("1", "2024-01-01", "A", "S", "10", "2"),
        ("2", "2024-01-08", "A", "S", "4", "2"),
        ("C3", "2024-01-09", "A", "S", "-6", "2"),  # before the cutoff: 4 off line 2 (gone), 2 off line 1
        ("4", "2024-01-12", "B", "S", "5", "3"),
        ("C5", "2024-01-16", "A", "S", "-3", "2"),  # after the cutoff: 3 more off line 1 (5 left)
        ("C6", "2024-01-16", "B", "S", "-5", "3"),  # after the cutoff: line 4 cancelled in full
        ("7", "2024-01-20", "A", "S", "1", "2"),
    ]
    book = load_order_book(_book(tmp_path, rows))
    assert book.order_lines.set_index("order_id")["quantity"].to_dict() == {"1": 5.0, "7": 1.0}
    cut = pd.Timestamp("2024-01-15")
    then = lines_as_of(book, cut)
    assert then.set_index("order_id")["quantity"].to_dict() == {"1": 8.0, "4": 5.0}  # C3 applied, C5 / C6 not
    assert then.set_index("order_id")["line_amount"].to_dict() == {"1": 16.0, "4": 15.0}
    assert then["order_date"].is_monotonic_increasing and list(then.columns) == list(book.order_lines.columns)
    assert lines_as_of(book, pd.Timestamp("2024-01-09")).set_index("order_id")["quantity"].to_dict() == {"1": 10.0, "2": 4.0}
    assert lines_as_of(book, pd.Timestamp("2024-01-21")) is book.order_lines  # nothing later: the book itself
    from features.accounts import account_features

    f = account_features(then, None, None, cutoff=cut).set_index("account_id")
    assert f.loc["B", "n_orders_365d"] == 1  # B's order of 2024-01-12 counts at 2024-01-15
