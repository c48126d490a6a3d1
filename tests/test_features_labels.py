"""Churn / value labels on hand cases, stacked snapshots, and time-ordered cutoffs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.accounts import account_features
from features.labels import churn_labels, next_period_value, stack_snapshots, time_ordered_cutoffs

CUT = pd.Timestamp("2024-07-01")


def _d(k: int) -> pd.Timestamp:
    return CUT + pd.Timedelta(days=k)


def _book() -> pd.DataFrame:
    rows = [
        ("a1", -10, "A", 10.0), ("a2", 5, "A", 20.0), ("a3", 95, "A", 99.0),  # orders again in H
        ("b1", -100, "B", 10.0), ("b2", 90, "B", 30.0),  # next order on day H: outside [c, c+90)
        ("c1", -366, "C", 10.0), ("c2", 3, "C", 10.0),  # last order before lookback: not in population
        ("d1", -365, "D", 10.0),  # exactly at the lookback start: in population, churned
        ("e1", -1, "E", 10.0), ("e2", 89, "E", 40.0), ("e3", 89, "E", 2.0),  # last day of H
        ("f1", 0, "F", 10.0),  # first order on the cutoff: not in population
        ("z1", 120, "Z", 1.0),  # keeps the book observable to day 120
    ]
    df = pd.DataFrame(rows, columns=["order_id", "k", "account_id", "line_amount"])
    df["order_date"] = [_d(k) + pd.Timedelta(hours=10) for k in df["k"]]
    df["sku"] = "s1"
    return df.drop(columns="k")


def test_churn_labels_hand_cases():
    lab = churn_labels(_book(), cutoff=CUT, horizon_days=90, lookback_days=365)
    assert list(lab.columns) == ["account_id", "churned", "label_end"]
    got = dict(zip(lab["account_id"], lab["churned"], strict=True))
    assert got == {"A": 0, "B": 1, "D": 1, "E": 0}
    assert (lab["label_end"] == pd.Timestamp("2024-09-29")).all()
    assert lab["churned"].dtype == "int64"


def test_lines_without_account_are_ignored():
    book = pd.concat([_book(), _book().iloc[:3].assign(account_id=None)], ignore_index=True)
    pd.testing.assert_frame_equal(churn_labels(book, cutoff=CUT), churn_labels(_book(), cutoff=CUT))
    pd.testing.assert_frame_equal(next_period_value(book, cutoff=CUT, horizon_days=90),
                                  next_period_value(_book(), cutoff=CUT, horizon_days=90))


def test_churn_lookback_and_horizon_are_parameters():
    lab = churn_labels(_book(), cutoff=CUT, horizon_days=91, lookback_days=400)
    got = dict(zip(lab["account_id"], lab["churned"], strict=True))
    assert got == {"A": 0, "B": 0, "C": 0, "D": 1, "E": 0}  # B's day-90 order now counts


def test_churn_refuses_unobservable_horizon():
    churn_labels(_book(), cutoff="2024-08-01", horizon_days=90)  # window ends with the data: fine
    with pytest.raises(ValueError, match=r"not observable: the order book ends on 2024-10-29"):
        churn_labels(_book(), cutoff="2024-08-02", horizon_days=90)
    lab = churn_labels(_book(), cutoff="2024-08-02", horizon_days=90, require_observable=False)
    assert len(lab) > 0
    with pytest.raises(ValueError, match="horizon_days must be a positive whole number"):
        churn_labels(_book(), cutoff=CUT, horizon_days=0)


def test_next_period_value():
    val = next_period_value(_book(), cutoff=CUT, horizon_days=90)
    got = dict(zip(val["account_id"], val["next_value"], strict=True))
    # same population as account_features (any order before the cutoff)
    assert list(val["account_id"]) == list(account_features(_book(), cutoff=CUT)["account_id"])
    assert got == {"A": 20.0, "B": 0.0, "C": 10.0, "D": 0.0, "E": 42.0}
    val365 = next_period_value(_book(), cutoff=CUT, horizon_days=90, lookback_days=365)
    assert "C" not in set(val365["account_id"])


def test_labels_read_only_their_window():
    """Churn labels ignore rows before the lookback and on/after label_end."""
    book = _book()
    base = churn_labels(book, cutoff=CUT, horizon_days=90)
    later = book.copy()
    late = later["order_date"] >= _d(90)
    later.loc[late, "account_id"] = "B"  # would un-churn B if the window leaked
    pd.testing.assert_frame_equal(base, churn_labels(later, cutoff=CUT, horizon_days=90))


def test_stack_snapshots_has_cutoff_features_and_labels():
    book = _book()
    cuts = ["2024-07-01", "2024-04-01"]
    st = stack_snapshots(book, cutoffs=cuts, horizon_days=90, label_kwargs={"require_observable": False})
    assert list(st["cutoff"].drop_duplicates()) == [pd.Timestamp("2024-04-01"), CUT]  # ascending
    one = st[st["cutoff"] == CUT].drop(columns="cutoff").reset_index(drop=True)
    feats = account_features(book, cutoff=CUT)
    lab = churn_labels(book, cutoff=CUT, horizon_days=90)
    pd.testing.assert_frame_equal(one, feats.merge(lab, on="account_id"))
    assert {"recency_days", "churned", "label_end"} <= set(st.columns)
    nv = stack_snapshots(book, cutoffs=[CUT], horizon_days=30, label_fn=next_period_value)
    assert "next_value" in nv and len(nv) == len(feats)
    with pytest.raises(ValueError, match="distinct"):
        stack_snapshots(book, cutoffs=[CUT, "2024-07-01"], horizon_days=90)


@pytest.mark.parametrize(("horizon", "n", "step"), [(90, 5, None), (30, 8, 45), (180, 3, 180), (1, 4, 7)])
def test_time_ordered_cutoffs_never_overlap(horizon, n, step):
    last = pd.Timestamp("2011-12-09")
    cuts = time_ordered_cutoffs(last, horizon_days=horizon, n=n, step_days=step)
    assert len(cuts) == n and cuts == sorted(cuts)
    # the last label window ends exactly with the data: [c, c + H) covers up to last_date
    assert cuts[-1] + pd.Timedelta(days=horizon) == last + pd.Timedelta(days=1)
    for earlier, later in zip(cuts, cuts[1:], strict=False):
        assert earlier + pd.Timedelta(days=horizon) <= later  # label window ends before later cutoff
    # with real labels: every training label window ends on or before the test cutoff
    assert all(c + pd.Timedelta(days=horizon) <= cuts[-1] for c in cuts[:-1])


def test_time_ordered_cutoffs_refuse_overlap():
    with pytest.raises(ValueError, match="step_days must be >= horizon_days"):
        time_ordered_cutoffs("2011-12-09", horizon_days=90, n=3, step_days=30)


def test_time_ordered_cutoffs_labels_observable_on_book():
    book = _book()  # data to 2024-10-29
    cuts = time_ordered_cutoffs(book["order_date"].max(), horizon_days=60, n=3)
    for c in cuts:  # observable by construction: no error
        churn_labels(book, cutoff=c, horizon_days=60)
    with pytest.raises(ValueError, match="not observable"):
        churn_labels(book, cutoff=cuts[-1] + pd.Timedelta(days=1), horizon_days=60)


# ---- real data: Online Retail through the real loader, checked against plain pandas -----


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_features_and_labels_match_plain_pandas(tmp_path, monkeypatch):
    """At cutoff 2011-09-10 (the churn acceptance cutoff), H = 90: an independent, naive
    pandas computation on the validated book gives the same recency, frequency, revenue,
    median gap and churn labels. Order dates carry times of day, so day flooring is tested."""
    from pathlib import Path

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    from training.data import load_order_book

    cfg = Path(__file__).resolve().parents[1] / "experiments" / "online_retail.yaml"
    ol = load_order_book(cfg).order_lines
    cut = pd.Timestamp("2011-09-10")
    feats = account_features(ol, cutoff=cut).set_index("account_id")
    before = ol[ol["order_date"] < cut].assign(day=lambda d: d["order_date"].dt.normalize())
    g = before.groupby("account_id")
    assert list(feats.index) == sorted(g.groups)
    recency = (cut - g["day"].max()).dt.days
    assert (feats["recency_days"] == recency.loc[feats.index].to_numpy()).all()
    assert (feats["n_orders_lifetime"] == g["order_id"].nunique().loc[feats.index].to_numpy()).all()
    assert np.allclose(feats["revenue_lifetime"], g["line_amount"].sum().loc[feats.index])
    days = before[["account_id", "day"]].drop_duplicates().sort_values(["account_id", "day"])
    gaps = days.groupby("account_id")["day"].diff().dt.days.dropna()
    med = gaps.groupby(days.loc[gaps.index, "account_id"]).median()
    assert np.allclose(feats.loc[med.index, "gap_median_days"], med)
    assert feats.drop(index=med.index)["gap_median_days"].isna().all()
    last90 = before[before["day"] >= cut - pd.Timedelta(days=90)].groupby("account_id")["order_id"].nunique()
    assert (feats.loc[last90.index, "orders_last_90d"] == last90).all()

    lab = churn_labels(ol, cutoff=cut, horizon_days=90, lookback_days=365)
    active = set(before.loc[before["day"] >= cut - pd.Timedelta(days=365), "account_id"])
    after = ol[(ol["order_date"] >= cut) & (ol["order_date"] < cut + pd.Timedelta(days=90))]
    ordered_again = set(after["account_id"])
    expected = {a: int(a not in ordered_again) for a in active}
    assert dict(zip(lab["account_id"], lab["churned"], strict=True)) == expected
    assert 0.3 < lab["churned"].mean() < 0.55  # 0.43 measured: a real, unbalanced label
