"""Service-event reasons on a service events table that starts later than the order book (helper-126).

The service sentences said "N complaints in the last 180 days" and "service cases took ... in the last
180 days" whatever the service events cover; the reasons knew only the order book's first date. The
synthetic network with its service events cut to the 45 days before the cutoff (the order book untouched)
said "5 complaints in the last 60 days" of 45 days of events. ``score_accounts`` now passes the service
events' first date and the sentences name the days on record. Figures are recomputed from the events.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from _support_churn_reasons import check_reason

from models.reasons import reason_texts
from training.churn_backtest import ChurnSettings, score_accounts

CUT = pd.Timestamp("2024-06-01")


class _Model:
    """Every account at 0.5, complaints and resolution times as the only drivers."""

    def churn_probability(self, pop: pd.DataFrame) -> np.ndarray:
        return np.full(len(pop), 0.5)

    def contributions(self, pop: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"complaints_180d": np.full(len(pop), 0.9),
                             "resolution_days_mean_180d": np.full(len(pop), 0.5)})


def _complaints(ev: pd.DataFrame, days: int) -> pd.Series:
    w = ev[(ev["kind"] == "complaint") & (ev["event_date"] >= CUT - pd.Timedelta(days=days))
           & (ev["event_date"] < CUT)]
    return w.groupby("account_id").size()


def test_service_events_starting_late_are_said_as_their_days_on_record(synthetic_book):
    ev = synthetic_book.service_events
    short = ev[ev["event_date"] >= CUT - pd.Timedelta(days=45)].reset_index(drop=True)
    assert short["event_date"].min() == pd.Timestamp("2024-04-17")  # 45 days before the cutoff
    assert synthetic_book.order_lines["order_date"].min() < pd.Timestamp("2022-02-01")  # the orders reach back
    book = dataclasses.replace(synthetic_book, service_events=short)
    said = score_accounts(book, _Model(), ChurnSettings(), CUT, model_version="t").set_index("account_id")

    n = _complaints(short, 45)
    assert n["D00057"] == 5
    # was "5 complaints in the last 60 days"
    assert said.at["D00057", "reason_1"] == "5 complaints in the 45 days on record (the service events start 2024-04-17)"
    # every account with a complaint on record: its count of the 45 days, none of the whole window's words
    with_c = [a for a in said.index if a in n.index]
    assert len(with_c) >= 30
    for a in with_c:
        c = n[a]
        assert said.at[a, "reason_1"] == (f"{c} complaint{'' if c == 1 else 's'} in the 45 days on record "
                                          f"(the service events start 2024-04-17)"), a
    assert not said[[f"reason_{j}" for j in (1, 2, 3)]].apply(lambda s: s.str.contains("last 180 days|last 60 days")).any().any()
    # the resolution sentence of the slowest resolver, recomputed: cases raised in the 45 days and resolved by the cutoff
    r = short[(short["event_date"] < CUT) & short["resolution_days"].notna()
              & (short["event_date"] + pd.to_timedelta(short["resolution_days"], unit="D") <= CUT)]
    mean = r.groupby("account_id")["resolution_days"].mean().reindex(said.index).dropna()
    slow = mean.idxmax()
    text = [t for t in said.loc[slow, ["reason_1", "reason_2"]] if t.startswith("service cases")]
    assert text == [f"service cases took {mean[slow]:.0f} days on average to resolve in the 45 days on record (the "
                    f"service events start 2024-04-17) against a median of {mean.median():.0f} days across the "
                    f"{len(mean)} accounts scored with a resolved case"]

    # every sentence passes the figure checks of the features it was said of
    from training.churn_backtest import snapshot

    pop = snapshot(book, CUT, ChurnSettings(), labels=False)[0]
    res = pop["resolution_days_mean_180d"]
    rows = pop.assign(cutoff=CUT, __median_resolution=float(res[np.isfinite(res)].median())).set_index("account_id")
    for a, r in said.iterrows():
        for t in (r.reason_1, r.reason_2, r.reason_3):
            assert not t or check_reason(t, rows.loc[a].to_dict()), (a, t)

    # the full table covers the window: the last 60 days, as before
    full = score_accounts(synthetic_book, _Model(), ChurnSettings(), CUT, model_version="t").set_index("account_id")
    assert full.at["D00057", "reason_1"] == f"{_complaints(ev, 60)['D00057']} complaints in the last 60 days"


def test_service_window_partly_on_record():
    # service events from 100 days before the cutoff: the last 60 days are covered, the last 180 are not
    rows = pd.DataFrame({"complaints_60d": [2.0, 0.0, 0.0], "complaints_180d": [3.0, 1.0, 0.0],
                         "returns_60d": [0.0, 0.0, 1.0], "returns_180d": [0.0, 0.0, 1.0]})
    contrib = pd.DataFrame({"complaints_180d": [0.9] * 3, "returns_180d": [0.5] * 3})
    kw = dict(book_start="2022-01-01", cutoff=CUT)
    texts, _ = reason_texts(rows, contrib, service_start=CUT - pd.Timedelta(days=100), **kw)
    assert texts == [["2 complaints in the last 60 days"],
                     ["1 complaint in the 100 days on record (the service events start 2024-02-22)"],
                     ["1 return in the last 60 days"]]
    # events that start on or after the cutoff hold no day of the window: nothing said of them
    texts, _ = reason_texts(rows, contrib, service_start=CUT, **kw)
    assert texts == [[], [], []]
    # without service_start: the table is taken to cover the window (the sentences before)
    assert reason_texts(rows, contrib, **kw)[0][1] == ["1 complaint in the last 180 days"]
    with pytest.raises(ValueError, match="service_start needs the cutoff"):
        reason_texts(rows, contrib, service_start="2024-02-22")
