"""Hand-computed values of ``features.accounts.account_features`` on a tiny order book."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.accounts import account_features, as_cutoff

CUT = pd.Timestamp("2024-07-01")


def _d(k: int, hours: int = 0) -> pd.Timestamp:
    """The day ``k`` days before the cutoff (negative k = after), plus some hours."""
    return CUT - pd.Timedelta(days=k) + pd.Timedelta(hours=hours)


def _book() -> pd.DataFrame:
    rows = [
        # A: purchase days k = 200, 105, 45, 25, 15, 5 (two orders on k=5)
        ("a1", 200, "A", "s1", "X", 50.0, 0.0),
        ("a2", 105, "A", "s1", "X", 200.0, 0.0),
        ("a3", 45, "A", "s2", "X", 100.0, 0.0),
        ("a4", 25, "A", "s1", "X", 100.0, 0.0),
        ("a5", 15, "A", "s3", "Y", 100.0, 1.0),
        ("a6", 5, "A", "s1", "X", 60.0, 0.0),
        ("a6", 5, "A", "s4", "Y", 40.0, 0.0),
        ("a7", 5, "A", "s1", "X", 20.0, 0.0),
        # B: previous-180 window X 60 + Y 40 in one order; last 90 only X 50 -> Y share drops 0.4
        ("b1", 100, "B", "s1", "X", 60.0, 0.0),
        ("b1", 100, "B", "s3", "Y", 40.0, 0.0),
        ("b2", 10, "B", "s2", "X", 50.0, 0.0),
        # C: one promo order 3 days ago
        ("c1", 3, "C", "s1", "X", 30.0, 1.0),
        # D: first order exactly on the cutoff -> not an account at this cutoff
        ("d1", 0, "D", "s1", "X", 10.0, 0.0),
        # E: one order long ago
        ("e1", 400, "E", "s2", "Z", 10.0, 0.0),
        # after the cutoff: must be ignored
        ("a8", -3, "A", "s9", "Q", 999.0, 1.0),
        ("a9", 0, "A", "s9", "Q", 999.0, 1.0),
    ]
    df = pd.DataFrame(rows, columns=["order_id", "k", "account_id", "sku", "category", "line_amount", "promo"])
    df["order_date"] = [_d(k, 9) if k == 5 else _d(k) for k in df["k"]]
    df["quantity"] = 1.0
    df["unit_price"] = df["line_amount"]
    return df.drop(columns="k").sort_values("order_date", ignore_index=True)


def _events() -> pd.DataFrame:
    rows = [
        (10, "A", "complaint", 3.0),  # resolved 7 days before the cutoff
        (100, "A", "Complaint ", 5.0),  # kind is normalised
        (30, "A", "return", np.nan),  # open
        (2, "A", "ticket", 10.0),  # resolved after the cutoff -> open, not in the mean
        (0, "A", "complaint", 1.0),  # on the cutoff -> ignored
        (-5, "A", "complaint", 1.0),  # after -> ignored
        (200, "B", "complaint", 2.0),  # outside 180 days
        (20, "Z", "complaint", 1.0),  # account without orders -> ignored
    ]
    df = pd.DataFrame(rows, columns=["k", "account_id", "kind", "resolution_days"])
    df["event_date"] = [_d(k) for k in df["k"]]
    return df.drop(columns="k")


def _accounts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "Z"],
            "region": ["north", "south", None, "east"],
            "channel_type": ["shop", "distributor", "shop", "shop"],
            "onboarding_date": [_d(300), pd.NaT, _d(-10), _d(5)],
        }
    )


@pytest.fixture(scope="module")
def feats() -> pd.DataFrame:
    return account_features(_book(), _accounts(), _events(), cutoff=CUT).set_index("account_id")


def test_population_and_order(feats):
    assert list(feats.index) == ["A", "B", "C", "E"]  # D starts on the cutoff; sorted by id


def test_recency_tenure_counts_windows(feats):
    a = feats.loc["A"]
    assert a["recency_days"] == 5 and a["tenure_days"] == 200
    assert a["n_orders_lifetime"] == 7 and a["n_purchase_days"] == 6
    assert a["revenue_lifetime"] == pytest.approx(670.0)
    assert a["avg_order_value"] == pytest.approx(670.0 / 7)
    assert (a["n_orders_30d"], a["revenue_30d"]) == (4, pytest.approx(320.0))
    assert (a["n_orders_90d"], a["revenue_90d"]) == (5, pytest.approx(420.0))
    assert (a["n_orders_180d"], a["revenue_180d"]) == (6, pytest.approx(620.0))
    assert a["n_skus_30d"] == 3 and a["n_skus_90d"] == 4 and a["n_skus_lifetime"] == 4
    assert a["n_categories_30d"] == 2 and a["n_categories_lifetime"] == 2
    assert feats.loc["E", "n_orders_365d"] == 0 and feats.loc["E", "recency_days"] == 400


def test_gaps_and_overdue(feats):
    a = feats.loc["A"]  # gaps 95, 60, 20, 10, 10
    assert a["gap_mean_days"] == pytest.approx(39.0)
    assert a["gap_median_days"] == pytest.approx(20.0)
    assert a["gap_std_days"] == pytest.approx(math.sqrt(5620 / 4))
    assert a["gap_cv"] == pytest.approx(math.sqrt(5620 / 4) / 39.0)
    assert a["overdue_days"] == pytest.approx(-15.0)
    assert a["overdue_ratio"] == pytest.approx(0.25)
    b = feats.loc["B"]  # one gap of 90 days, recency 10
    assert b["gap_median_days"] == 90 and np.isnan(b["gap_std_days"])
    assert b["overdue_days"] == -80 and b["overdue_ratio"] == pytest.approx(10 / 90)
    c = feats.loc["C"]
    assert np.isnan(c["gap_mean_days"]) and np.isnan(c["overdue_days"])


def test_trends(feats):
    a = feats.loc["A"]  # last 90: 5 orders / 420; previous 90: 1 order / 200
    assert (a["orders_last_90d"], a["orders_prev_90d"]) == (5, 1)
    assert a["orders_trend_ratio"] == pytest.approx(6 / 2)
    assert a["orders_trend_pct"] == pytest.approx(4.0)
    assert a["revenue_trend_pct"] == pytest.approx(1.1)
    assert a["revenue_trend_ratio"] == pytest.approx(421 / 201)
    b = feats.loc["B"]  # last 90: 1 order, previous 90 (k=100): 1 order
    assert b["orders_trend_pct"] == 0.0 and b["revenue_trend_pct"] == pytest.approx(-0.5)
    c = feats.loc["C"]  # nothing before: pct undefined, ratio finite
    assert np.isnan(c["orders_trend_pct"]) and c["orders_trend_ratio"] == 2.0
    e = feats.loc["E"]  # nothing in either window: flat
    assert e["orders_trend_pct"] == 0.0 and e["revenue_trend_ratio"] == 1.0


def test_category_shift_and_promo(feats):
    b = feats.loc["B"]
    assert b["cat_share_max_drop"] == pytest.approx(0.4)
    assert b["cat_share_max_drop_category"] == "Y"
    assert b["n_categories_dropped"] == 1
    a = feats.loc["A"]  # prev 180 (k 91..270): X 250; last 90: X 280, Y 140 -> X drops 1 - 2/3
    assert a["cat_share_max_drop"] == pytest.approx(1 / 3)
    assert a["cat_share_max_drop_category"] == "X"
    assert a["n_categories_dropped"] == 0
    assert np.isnan(feats.loc["C", "cat_share_max_drop"])
    assert feats.loc["C", "cat_share_max_drop_category"] is None
    assert a["promo_share"] == pytest.approx(100 / 670)
    assert a["promo_share_90d"] == pytest.approx(100 / 420)
    assert feats.loc["C", "promo_share"] == 1.0
    assert np.isnan(feats.loc["E", "promo_share_90d"])


def test_service_events(feats):
    a = feats.loc["A"]
    assert (a["complaints_60d"], a["complaints_180d"]) == (1, 2)
    assert (a["returns_60d"], a["tickets_60d"], a["tickets_180d"]) == (1, 1, 1)
    assert a["service_events_180d"] == 4
    assert a["resolution_days_mean_180d"] == pytest.approx(4.0)
    assert a["open_events"] == 2
    b = feats.loc["B"]
    assert b["complaints_180d"] == 0 and np.isnan(b["resolution_days_mean_180d"])


def test_attributes(feats):
    assert feats["region"].dtype == "category"
    assert list(feats["region"].cat.categories) == ["east", "north", "south"]
    assert feats.loc["A", "region"] == "north" and pd.isna(feats.loc["C", "region"])
    assert pd.isna(feats.loc["E", "channel_type"])  # not in the accounts table
    assert feats.loc["A", "onboarding_tenure_days"] == 300
    assert np.isnan(feats.loc["B", "onboarding_tenure_days"])  # unknown
    assert np.isnan(feats.loc["C", "onboarding_tenure_days"])  # after the cutoff


def test_bgnbd_summary(feats):
    a = feats.loc["A"]
    assert (a["bgnbd_frequency"], a["bgnbd_recency"], a["bgnbd_T"]) == (5, 195, 200)
    assert a["bgnbd_monetary"] == pytest.approx(620 / 5)
    c = feats.loc["C"]
    assert (c["bgnbd_frequency"], c["bgnbd_recency"], c["bgnbd_T"], c["bgnbd_monetary"]) == (0, 0, 3, 0)
    assert (feats["bgnbd_recency"] < feats["bgnbd_T"]).all()


def test_without_optional_tables_and_amount_from_price():
    book = _book().drop(columns=["line_amount", "category", "promo"])
    f = account_features(book, cutoff=CUT).set_index("account_id")
    full = account_features(_book(), _accounts(), _events(), cutoff=CUT)
    assert list(f.reset_index().columns) == list(full.columns)  # stable schema
    assert f.loc["A", "revenue_lifetime"] == pytest.approx(670.0)
    assert f["complaints_60d"].isna().all() and f["region"].isna().all()
    assert (f["n_categories_lifetime"] == 1).all() and (f["promo_share"] == 0).all()


def test_missing_ids_and_kinds_are_not_accounts_or_events():
    book = pd.concat([_book(), _book().iloc[:2].assign(account_id=None)], ignore_index=True)
    book.loc[book["order_id"] == "a1", "sku"] = None
    ev = pd.concat([_events(), _events().iloc[:1].assign(kind=None)], ignore_index=True)
    f = account_features(book, None, ev, cutoff=CUT).set_index("account_id")
    assert list(f.index) == ["A", "B", "C", "E"]
    assert f.loc["A", "complaints_180d"] == 2 and f.loc["A", "service_events_180d"] == 5
    assert f.loc["A", "n_skus_lifetime"] == 5  # the missing SKU counts as one 'unknown' SKU


def test_custom_windows_and_empty_result():
    f = account_features(_book(), cutoff=CUT, windows=(7, 60))
    assert "n_orders_7d" in f and "n_orders_30d" not in f
    assert f.set_index("account_id").loc["A", "n_orders_7d"] == 2
    empty = account_features(_book(), _accounts(), _events(), cutoff="2020-01-01")
    assert empty.empty
    assert list(empty.columns) == list(account_features(_book(), cutoff=CUT).columns)


def test_inputs_not_mutated():
    book, acc, ev = _book(), _accounts(), _events()
    copies = [x.copy(deep=True) for x in (book, acc, ev)]
    account_features(book, acc, ev, cutoff=CUT)
    for before, after in zip(copies, (book, acc, ev), strict=True):
        pd.testing.assert_frame_equal(before, after)


def test_clear_errors():
    with pytest.raises(ValueError, match="order_lines is missing required column.*'sku'"):
        account_features(_book().drop(columns="sku"), cutoff=CUT)
    with pytest.raises(ValueError, match="line_amount"):
        account_features(_book().drop(columns=["line_amount", "unit_price"]), cutoff=CUT)
    with pytest.raises(ValueError, match="service_events is missing.*'kind'"):
        account_features(_book(), None, _events().drop(columns="kind"), cutoff=CUT)
    with pytest.raises(ValueError, match="cutoff must be a calendar date"):
        account_features(_book(), cutoff="2024-07-01 12:00")
    with pytest.raises(ValueError, match="windows must be distinct positive"):
        account_features(_book(), cutoff=CUT, windows=(30, 0))
    dup = pd.concat([_accounts(), _accounts().iloc[:1]])
    with pytest.raises(ValueError, match="duplicated account_id.*'A'"):
        account_features(_book(), dup, cutoff=CUT)
    assert as_cutoff("2024-07-01") == CUT


# ---- dealerml features build (end to end on a small synthetic network) -------------------


@pytest.fixture(scope="module")
def synthetic_config(tmp_path_factory) -> Path:
    from training.synthetic import generate

    out = tmp_path_factory.mktemp("syn")
    generate(out, seed=3, n_accounts=40, n_skus=30, n_locations=2, start="2023-01-01", end="2024-06-30")
    return out / "config.yaml"


def _run_cli(*args: str):
    from typer.testing import CliRunner

    from training.cli import app

    return CliRunner().invoke(app, ["features", "build", *args])


def test_cli_build_writes_tables_consistent_with_functions(synthetic_config, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    from features.demand import demand_series
    from features.labels import churn_labels
    from training.data import load_order_book

    out = tmp_path / "feat"
    res = _run_cli("--config", str(synthetic_config), "--cutoff", "2024-03-01", "--out", str(out),
                   "--horizon-days", "90", "--no-progress")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "account_features.parquet", "churn_labels.parquet", "demand_classes.parquet",
        "demand_series.parquet", "manifest.json"]
    book = load_order_book(synthetic_config)
    feats = pd.read_parquet(out / "account_features.parquet")
    direct = account_features(book.order_lines, book.accounts, book.service_events, cutoff="2024-03-01")
    pd.testing.assert_frame_equal(feats, direct)
    labels = pd.read_parquet(out / "churn_labels.parquet")
    pd.testing.assert_frame_equal(labels, churn_labels(book.order_lines, cutoff="2024-03-01", horizon_days=90))
    series = pd.read_parquet(out / "demand_series.parquet")
    assert series["ds"].max() < pd.Timestamp("2024-03-01")  # last complete week before the cutoff
    assert len(series) == len(demand_series(book.order_lines, cutoff="2024-02-29 23:59", freq="W"))
    assert f"account_features.parquet: {len(feats):,} rows" in res.output
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"]["churn_labels"] == len(labels) and manifest["cutoff"] == "2024-03-01"


def test_cli_skips_unobservable_labels_and_failed_runs_write_nothing(synthetic_config, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    out = tmp_path / "feat"
    res = _run_cli("--config", str(synthetic_config), "--cutoff", "2024-06-01", "--out", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    assert not (out / "churn_labels.parquet").exists()
    assert ("churn labels skipped: the book ends 2024-06-30, before the label window [2024-06-01, 2024-08-30) "
            "is complete") in res.output and "skipped: skipped" not in res.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for bad, msg in (
        (["--cutoff", "2020-01-01"], "no order lines before --cutoff 2020-01-01"),
        (["--cutoff", "2024-06-01", "--levels", "sku,warehouse"], "warehouse"),
        (["--cutoff", "not-a-date"], "--cutoff"),
    ):
        res = _run_cli("--config", str(synthetic_config), "--out", str(out), "--no-progress", *bad)
        assert res.exit_code == 2, res.output
        assert msg in res.output
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # previous output intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    res = _run_cli("--config", str(synthetic_config), "--out", str(precious), "--cutoff", "2024-06-01", "--no-progress")
    assert res.exit_code == 2 and "refusing to replace" in res.output
    assert (precious / "notes.txt").read_text() == "keep me" and len(list(precious.iterdir())) == 1


def test_matches_a_naive_per_account_loop_on_a_random_book():
    """Cross-implementation check: a slow, obvious per-account loop gives the same numbers."""
    rng = np.random.default_rng(5)
    n = 1500
    book = pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in rng.integers(0, 500, n)],
            "sku": [f"S{i}" for i in rng.integers(0, 25, n)],
            "line_amount": rng.integers(1, 100, n).astype(float),
            "promo": (rng.random(n) < 0.2).astype(float),
        }
    )
    acc_of_order = {f"O{i}": f"A{i % 17}" for i in range(500)}
    day_of_order = {f"O{i}": int(d) for i, d in enumerate(rng.integers(0, 500, 500))}
    book["account_id"] = book["order_id"].map(acc_of_order)
    book["order_date"] = pd.Timestamp("2023-01-01") + pd.to_timedelta(book["order_id"].map(day_of_order), unit="D")
    book["category"] = "K" + (book["sku"].str[1:].astype(int) % 4).astype(str)
    cut = pd.Timestamp("2024-03-01")
    f = account_features(book, cutoff=cut).set_index("account_id")
    b = book[book["order_date"] < cut]
    for acc, g in b.groupby("account_id"):
        age = (cut - g["order_date"]).dt.days
        row = f.loc[acc]
        for w in (30, 90, 180, 365):
            inw = g[age <= w]
            assert row[f"n_orders_{w}d"] == inw["order_id"].nunique(), (acc, w)
            assert row[f"revenue_{w}d"] == pytest.approx(inw["line_amount"].sum())
            assert row[f"n_skus_{w}d"] == inw["sku"].nunique()
            assert row[f"n_categories_{w}d"] == inw["category"].nunique()
        assert row["orders_prev_90d"] == g[(age > 90) & (age <= 180)]["order_id"].nunique()
        last, prev = g[age <= 90], g[(age > 90) & (age <= 270)]
        if last["line_amount"].sum() > 0 and prev["line_amount"].sum() > 0:
            sl = last.groupby("category")["line_amount"].sum() / last["line_amount"].sum()
            sp = prev.groupby("category")["line_amount"].sum() / prev["line_amount"].sum()
            drop = (sp - sl.reindex(sp.index, fill_value=0.0)).sort_index()
            assert row["cat_share_max_drop"] == pytest.approx(drop.max())
            assert row["cat_share_max_drop_category"] == drop.idxmax()
        else:
            assert np.isnan(row["cat_share_max_drop"])
        assert row["promo_share"] == pytest.approx((g["line_amount"] * g["promo"]).sum() / g["line_amount"].sum())
        per_day = g.groupby(g["order_date"].dt.normalize())["line_amount"].sum().sort_index()
        if len(per_day) > 1:
            assert row["bgnbd_monetary"] == pytest.approx(per_day.iloc[1:].mean())
            gaps = per_day.index.to_series().diff().dt.days.dropna()
            if len(gaps) > 1:
                assert row["gap_std_days"] == pytest.approx(gaps.std())
                assert row["gap_median_days"] == gaps.median()
