"""A planner's stock file (``safety-stock --on-hand``) carried no date: the policy file's
``on_hand_date`` was empty for it and nothing said the stock's date was unknown, nor that a count
weeks older than the history (or later than the sizing's start) is compared with the policy as if
it were the stock at the start of the forecast. The file may now say the date of its stock
(``snapshot_date`` per row, as the order book's inventory table, or ``--on-hand-date`` for the
whole file); a date that is not one, or one after the book's as-of date, is refused naming the
rows; a count more than one period from the sizing's start is named on the console and in the
row's suggestion (the book's inventory snapshots too); without a date the console says it is
unknown."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

# the four-series weekly book of test_safety_stock_planner: last whole week 2024-05-06, so the
# sizing starts 2024-05-13; its config's data.as_of is 2024-06-30


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    from _support_demand import _cli_book

    tmp = tmp_path_factory.mktemp("on_hand_date")
    return SimpleNamespace(cfg=_cli_book(tmp), tmp=tmp)


def _run(book, *args):
    from typer.testing import CliRunner

    from training.cli import app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(book.tmp / "home"))
        return CliRunner().invoke(app, ["safety-stock", "--config", str(book.cfg), *args])


def test_an_on_hand_file_says_the_date_of_its_stock(book):
    """snapshot_date per row, --on-hand-date for the rows without one; A1/south counted four weeks
    before the sizing starts and C3/south five weeks after it are named, the others are not."""
    oh = book.tmp / "dated.csv"
    oh.write_text("sku,location,on_hand,snapshot_date\nA1,north,4,2024-05-10\nA1,south,6,2024-04-15\n"
                  "B2,north,5,\nC3,south,2,2024-06-17\nZZ9,north,3,2024-05-10\n")
    out = book.tmp / "dated.parquet"
    res = _run(book, "--out", str(out), "--on-hand", str(oh), "--on-hand-date", "2024-05-12")
    assert res.exit_code == 0, res.output
    pol = pd.read_parquet(out).set_index("unique_id")
    assert pol["on_hand_date"].to_dict() == {"A1/north": "2024-05-10", "A1/south": "2024-04-15",
                                             "B2/north": "2024-05-12", "C3/south": "2024-06-17",
                                             "ZZ9/north": "2024-05-10"}
    assert (pol["last_observed"] == "2024-05-06").all()
    stale = "stock counted 2024-04-15, 28 days before the sizing starts (2024-05-13)"
    late = "stock counted 2024-06-17, 35 days after the sizing starts (2024-05-13)"
    assert stale in pol.loc["A1/south", "suggestion"] and late in pol.loc["C3/south", "suggestion"]
    for u in ("A1/north", "B2/north", "ZZ9/north"):
        assert "stock counted" not in str(pol.loc[u, "suggestion"]), u
    assert "on-hand of 1 series was counted more than one period before the sizing starts (2024-05-13" in res.output
    assert "'A1/south': '2024-04-15'" in res.output and "'C3/south': '2024-06-17'" in res.output
    assert "unknown" not in res.output

    # no date at all: said to be unknown, not implied
    plain = book.tmp / "plain.csv"
    plain.write_text("unique_id,on_hand\nA1/north,4\n")
    res = _run(book, "--out", str(book.tmp / "plain_out.csv"), "--on-hand", str(plain))
    assert res.exit_code == 0, res.output
    assert (f"the date of the stock in --on-hand {plain} is unknown (no snapshot_date column, no --on-hand-date): "
            "on_hand_date is empty and the advice takes it as the stock at the sizing start 2024-05-13") in res.output
    assert pd.read_csv(book.tmp / "plain_out.csv")["on_hand_date"].isna().all()


@pytest.mark.parametrize(("body", "args", "said"), [
    ("unique_id,on_hand,snapshot_date\nA1/north,4,2024-05-10\nB2/north,5,10/05/2024\nC3/south,1,soon\n", (),
     "column snapshot_date must be a date like 2024-05-10 (YYYY-MM-DD) or empty; 2 row(s) are not, first rows [2, 3], "
     "e.g. ['10/05/2024', 'soon']"),
    ("unique_id,on_hand,snapshot_date\nA1/north,4,2024-05-10\nB2/north,5,2024-07-02\n", (),
     "column snapshot_date is after the book's as-of date 2024-06-30 (data.as_of) in 1 row(s), first rows [2], "
     "e.g. ['2024-07-02']"),
    ("unique_id,on_hand\nA1/north,4\n", ("--on-hand-date", "yesterday"),
     "--on-hand-date must be a date like 2024-06-01 (YYYY-MM-DD); got 'yesterday'"),
    ("unique_id,on_hand\nA1/north,4\n", ("--on-hand-date", "2025-01-01"),
     "--on-hand-date 2025-01-01 is after the book's as-of date 2024-06-30 (data.as_of)"),
])
def test_bad_stock_dates_are_refused_naming_the_rows(book, body, args, said):
    oh = book.tmp / "bad.csv"
    oh.write_text(body)
    out = book.tmp / "never.csv"
    res = _run(book, "--out", str(out), "--on-hand", str(oh), *args)
    assert res.exit_code == 2, res.output
    assert said in " ".join(res.output.split()), res.output
    assert not out.exists()


def test_an_on_hand_date_needs_an_on_hand_file(book):
    res = _run(book, "--out", str(book.tmp / "never.csv"), "--on-hand-date", "2024-05-10")
    assert res.exit_code == 2
    assert "--on-hand-date is the date of the stock in --on-hand FILE; give --on-hand too" in res.output


def test_the_notes_are_pure_and_measured_from_the_sizing_start():
    """Within one period of the start (the last observed week's Monday .. the next Monday) no note;
    before it, days before the start; from a whole period after it on, days after."""
    from models.inventory import stock_date_notes

    dates = pd.Series([None, "2024-05-06", "2024-05-05", "2024-05-19", "2024-05-20"])
    notes = stock_date_notes(dates, pd.Timestamp("2024-05-06"), "W-MON")
    assert notes[:2] == ["", ""] and notes[3] == ""
    assert notes[2].startswith("stock counted 2024-05-05, 8 days before the sizing starts (2024-05-13)")
    assert notes[4].startswith("stock counted 2024-05-20, 7 days after the sizing starts (2024-05-13)")
