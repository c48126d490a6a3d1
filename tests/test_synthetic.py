"""The synthetic dealer network: deterministic, on-contract, and the planted signal is really there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from training.contract import TABLES
from training.synthetic import SEGMENTS, generate

TINY = dict(n_accounts=60, n_skus=24, n_locations=2, start="2023-01-01", end="2023-12-31")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def syn(synthetic_dir: Path) -> dict[str, pd.DataFrame]:
    d = synthetic_dir
    t = pd.read_csv(d / "truth_accounts.csv", parse_dates=["churn_date", "decline_start", "onboarding_date"])
    ol = pd.read_parquet(d / "order_lines.parquet").merge(t[["account_id", "segment"]], on="account_id")
    orders = (
        ol.groupby("order_id")
        .agg(account_id=("account_id", "first"), date=("order_date", "first"), lines=("sku", "size"),
             amount=("line_amount", "sum"), segment=("segment", "first"))
        .reset_index()
        .sort_values(["account_id", "date"])
    )
    orders["gap"] = orders.groupby("account_id")["date"].diff().dt.days
    return {
        "lines": ol,
        "orders": orders,
        "truth": t,
        "skus": pd.read_csv(d / "truth_skus.csv"),
        "events": pd.read_csv(d / "service_events.csv", parse_dates=["event_date"]),
        "accounts": pd.read_csv(d / "accounts.csv", parse_dates=["onboarding_date"]),
        "inventory": pd.read_csv(d / "inventory.csv", parse_dates=["snapshot_date"]),
        "lead_times": pd.read_csv(d / "lead_times.csv"),
    }


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=3, **TINY)
    generate(tmp_path / "b", seed=3, **TINY)
    generate(tmp_path / "c", seed=4, **TINY)
    assert set(a) == {"order_lines", "accounts", "service_events", "inventory", "lead_times",
                      "truth_accounts", "truth_skus", "promo_calendar", "config"}
    da, db, dc = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert da == db
    assert da["order_lines.parquet"] != dc["order_lines.parquet"]
    assert sorted(da) == sorted(p.name for p in a.values())  # nothing else (no temp folder) left


def test_bad_sizes_raise_and_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"n_accounts must be at least 20 .*; got 5"):
        generate(tmp_path / "x", n_accounts=5)
    with pytest.raises(ValueError, match="at least one year"):
        generate(tmp_path / "x", start="2024-01-01", end="2024-03-01")
    assert not (tmp_path / "x").exists()


def test_files_follow_the_contract(syn: dict[str, pd.DataFrame], synthetic_dir: Path) -> None:
    for table in ("order_lines", "accounts", "service_events", "inventory", "lead_times"):
        frame = syn[{"order_lines": "lines", "service_events": "events"}.get(table, table)]
        missing = {c.name for c in TABLES[table]} - set(frame.columns)
        assert not missing, f"{table} lacks contract columns {missing}"
    ol = syn["lines"]
    assert str(ol["order_date"].dtype) == "datetime64[ns]"
    assert (ol["quantity"] > 0).all() and (ol["quantity"] == ol["quantity"].round()).all()
    assert (ol["unit_price"] > 0).all()
    np.testing.assert_allclose(ol["line_amount"], ol["quantity"] * ol["unit_price"], atol=0.006)
    assert ol["order_date"].min() >= pd.Timestamp("2022-01-01")
    assert ol["order_date"].max() <= pd.Timestamp("2024-06-30")
    assert set(ol["promo"].unique()) == {0.0, 1.0}
    assert set(ol["location"].unique()) == {"DC1", "DC2"}
    assert set(ol["currency"].unique()) == {"EUR"}
    assert not ol.duplicated(["order_id", "sku"]).any()
    per_order = ol.groupby("order_id").agg(a=("account_id", "nunique"), d=("order_date", "nunique"))
    assert (per_order == 1).all().all(), "an order belongs to one account and one date"
    assert set(ol["account_id"]) <= set(syn["accounts"]["account_id"])
    ev = syn["events"]
    assert set(ev["kind"].unique()) == {"complaint", "return", "ticket"}
    assert ev["event_date"].between("2022-01-01", "2024-06-30").all()
    assert (ev["resolution_days"].dropna() >= 0).all()
    inv, lt = syn["inventory"], syn["lead_times"]
    assert (inv["snapshot_date"] == pd.Timestamp("2024-06-30")).all() and (inv["on_hand"] >= 0).all()
    assert len(inv) == len(lt) == 120 * 2
    # on-hand is a base-stock policy's stock, not ~0 for every slow mover: of the series that
    # sold in the last year, only the planted stock-outs (8 %) hold nothing, and the median
    # holds about its lead time + one week of demand or more
    ol = syn["lines"]
    last = ol[ol["order_date"] >= pd.Timestamp("2024-06-30") - pd.Timedelta(days=364)]
    sold = last.groupby(["sku", "location"])["quantity"].sum()
    inv_sold = inv.set_index(["sku", "location"]).loc[sold.index]
    assert (inv_sold["on_hand"] == 0).mean() < 0.15
    lt_i = lt.set_index(["sku", "location"]).loc[sold.index]
    weekly = sold / 52
    cover_weeks = inv_sold["on_hand"] / weekly
    assert (cover_weeks >= lt_i["lead_time_days"] / 7 + 1).mean() > 0.6
    unsold = inv.set_index(["sku", "location"]).drop(sold.index, errors="ignore")
    assert (unsold["on_hand"] == 0).all()
    assert (lt["lead_time_days"] > 0).all() and (lt["lead_time_std_days"] >= 0).all()
    t = syn["truth"]
    assert set(t["segment"]) == set(SEGMENTS)
    assert set(t["lifecycle_stage"]) == {"growth", "maturity", "decline"}
    assert set(t["churn_kind"]) == {"none", "full", "partial"}
    assert t.loc[t["churn_kind"] == "none", "churn_date"].isna().all()
    assert t.loc[t["churn_kind"] != "none", "churn_date"].notna().all()
    assert (t.loc[t["churn_kind"] == "partial", "dropped_category"].notna()).all()
    assert set(syn["skus"]["demand_pattern"]) <= {"smooth", "erratic", "intermittent", "lumpy", "no_demand"}


def test_generated_config_loads_and_validates_clean(synthetic_book) -> None:  # noqa: ANN001
    rep = synthetic_book.report.to_dict()
    assert rep["tables"]["order_lines"]["rows_dropped"] == 0
    assert rep["tables"]["service_events"]["rows_dropped"] == 0
    assert len(synthetic_book.order_lines) > 30_000
    assert synthetic_book.accounts is not None and "credit_limit" in synthetic_book.accounts.columns
    assert synthetic_book.inventory is not None and synthetic_book.lead_times is not None


def test_churn_is_spread_over_time_and_full_churners_stop(syn: dict[str, pd.DataFrame]) -> None:
    t = syn["truth"]
    full = t[t["churn_kind"] == "full"]
    share = len(full) / len(t)
    assert 0.12 <= share <= 0.30, share
    assert 0.03 <= (t["churn_kind"] == "partial").mean() <= 0.15
    assert full["churn_date"].dt.to_period("Q").nunique() >= 6
    assert (full["churn_date"] > pd.Timestamp("2024-06-30") - pd.Timedelta(days=183)).sum() >= 5
    ol = syn["lines"].merge(full[["account_id", "churn_date"]], on="account_id")
    assert not (ol["order_date"] >= ol["churn_date"]).any(), "a full churner ordered on/after its churn_date"
    last = pd.to_datetime(full["last_order_date"])
    assert (last < full["churn_date"]).all()


def test_orders_thin_out_and_complaints_rise_before_churn(syn: dict[str, pd.DataFrame]) -> None:
    t = syn["truth"]
    full = t[(t["churn_kind"] == "full")].set_index("account_id")["churn_date"]
    o = syn["orders"]
    o = o[o["account_id"].isin(full.index)]
    days_before = (o["account_id"].map(full) - o["date"]).dt.days
    recent = (days_before.between(1, 90)).groupby(o["account_id"]).sum()
    earlier = (days_before.between(181, 450)).groupby(o["account_id"]).sum() / 3  # per 90 days
    has_history = earlier >= 1
    ratio = recent[has_history].sum() / earlier[has_history].sum()
    assert ratio < 0.6, f"orders in the last 90 days before churn are {ratio:.2f} of the earlier rate"
    assert (recent[has_history] < earlier[has_history]).mean() >= 0.75

    ev = syn["events"]
    ev = ev[ev["account_id"].isin(full.index) & (ev["kind"] == "complaint")]
    d = (ev["account_id"].map(full) - ev["event_date"]).dt.days
    c_recent = d.between(1, 90).sum()
    c_earlier = d.between(181, 450).sum() / 3
    assert c_recent >= 3 * c_earlier, (c_recent, c_earlier)
    res = ev.groupby(d.between(1, 90))["resolution_days"].mean()
    assert res[True] > 1.3 * res[False], "complaints before churn take longer to resolve"


def test_partial_churners_stop_buying_their_dropped_category(syn: dict[str, pd.DataFrame]) -> None:
    t = syn["truth"]
    part = t[t["churn_kind"] == "partial"][["account_id", "dropped_category", "churn_date"]]
    assert len(part) >= 5
    ol = syn["lines"].merge(part, on="account_id")
    in_cat = ol["category"] == ol["dropped_category"]
    before = ol["order_date"] < ol["churn_date"] - pd.Timedelta(days=60)
    after = ol["order_date"] >= ol["churn_date"]
    assert not (in_cat & after).any()
    share_before = in_cat[before].groupby(ol.loc[before, "account_id"]).mean()
    assert share_before.median() >= 0.15, "the dropped category was a real part of their business"
    # ...while they keep ordering the rest (those with at least 60 days left after the drop).
    late = part[part["churn_date"] <= pd.Timestamp("2024-06-30") - pd.Timedelta(days=60)]
    still = ol[after & ol["account_id"].isin(late["account_id"])].groupby("account_id").size()
    assert len(still) >= 0.8 * len(late)


def test_segments_differ_in_the_planted_direction(syn: dict[str, pd.DataFrame]) -> None:
    o = syn["orders"]
    basket = o.groupby("segment")["lines"].mean()
    assert basket["strategic_key_account"] > basket["growing_retail_chain"] > basket["price_sensitive_small_shop"] > basket["ecommerce_reseller"]
    assert basket["channel_distributor"] < basket["growing_retail_chain"]
    gap = o.groupby("segment")["gap"].median()
    assert gap["ecommerce_reseller"] < gap["strategic_key_account"] < gap["growing_retail_chain"] < gap["channel_distributor"]
    assert gap["price_sensitive_small_shop"] > gap["growing_retail_chain"]
    qty = syn["lines"].groupby("segment")["quantity"].median()
    assert qty.idxmax() == "channel_distributor"
    value = o.groupby("segment")["amount"].median()
    assert value.idxmax() == "strategic_key_account" and value.idxmin() == "ecommerce_reseller"
    cv = o.groupby(["segment", "account_id"])["gap"].agg(lambda g: g.std() / g.mean()).groupby("segment").median()
    assert cv["growing_retail_chain"] < 0.7 < cv["price_sensitive_small_shop"], cv.to_dict()
    breadth = syn["lines"].groupby(["segment", "account_id"])["sku"].nunique().groupby("segment").median()
    assert breadth.idxmax() == "strategic_key_account" and breadth.idxmin() == "channel_distributor"
    # e-commerce orders on weekends, B2B hardly
    wkend = o.assign(we=o["date"].dt.weekday >= 5).groupby("segment")["we"].mean()
    assert wkend["ecommerce_reseller"] > 0.15 > 0.05 > wkend["strategic_key_account"]


def test_lifecycle_stages_show_in_revenue_trends(syn: dict[str, pd.DataFrame]) -> None:
    t = syn["truth"]
    old = t[(t["churn_kind"] == "none") & (t["onboarding_date"] < "2022-01-01")]
    ol = syn["lines"][syn["lines"]["account_id"].isin(old["account_id"])]
    end = pd.Timestamp("2024-06-30")
    last = ol[ol["order_date"] > end - pd.Timedelta(days=365)].groupby("account_id")["line_amount"].sum()
    prev = ol[(ol["order_date"] <= end - pd.Timedelta(days=365)) & (ol["order_date"] > end - pd.Timedelta(days=730))]
    prev = prev.groupby("account_id")["line_amount"].sum()
    growth = (last / prev).dropna().to_frame("g").join(old.set_index("account_id")["lifecycle_stage"])
    med = growth.groupby("lifecycle_stage")["g"].median()
    assert med["growth"] > 1.2 and med["decline"] < 0.85 and med["decline"] < med["maturity"] < med["growth"], med


def test_demand_is_seasonal_promotional_and_often_intermittent(syn: dict[str, pd.DataFrame]) -> None:
    ol = syn["lines"]
    full_years = ol[ol["order_date"] < "2024-01-01"]
    by_month = full_years.groupby([full_years["order_date"].dt.month, "category"])["quantity"].sum().unstack()
    garden, winter = by_month["Garden"], by_month["Winter"]
    assert garden.idxmax() in (4, 5, 6, 7)
    assert garden[[4, 5, 6]].mean() > 2 * garden[[10, 11, 12, 1]].mean()
    assert winter[[10, 11, 12, 1, 2]].mean() > 2 * winter[[5, 6, 7, 8]].mean()
    totals = by_month.sum(axis=1)
    assert totals.max() / totals.min() > 1.3

    # promotions: a promoted SKU-week sells more units, at a lower price
    w = ol.assign(week=ol["order_date"].dt.to_period("W"))
    sw = w.groupby(["sku", "week"]).agg(q=("quantity", "sum"), promo=("promo", "max"))
    per = sw.groupby(["sku", "promo"])["q"].mean().unstack().dropna()
    assert (per[1.0] / per[0.0]).median() > 1.3
    key = w[w["segment"].isin(["strategic_key_account", "growing_retail_chain", "channel_distributor"])]
    price = key.groupby(["sku", "promo"])["unit_price"].median().unstack().dropna()
    assert (price[1.0] / price[0.0]).median() < 0.92
    pair = key.groupby(["account_id", "sku", "promo"])["quantity"].mean().unstack().dropna()
    assert pair[1.0].sum() / pair[0.0].sum() > 1.25, "same dealer, same SKU: promoted lines carry more units"

    # many intermittent SKU x location weekly series, a few smooth SKUs
    weeks = w["week"].nunique()
    nz = w.groupby(["sku", "location"])["week"].nunique()
    adi = weeks / nz
    assert (adi > 1.32).mean() >= 0.4
    pat = syn["skus"]["demand_pattern"].value_counts()
    assert pat.get("smooth", 0) >= 3 and pat.get("lumpy", 0) + pat.get("intermittent", 0) >= 0.25 * len(syn["skus"])


def test_regions_have_different_segment_mixes(syn: dict[str, pd.DataFrame]) -> None:
    t = syn["truth"]
    mix = pd.crosstab(t["region"], t["segment"], normalize="index")
    assert mix.loc["South", "price_sensitive_small_shop"] > mix.loc["West", "price_sensitive_small_shop"]
    assert mix.loc["West", "ecommerce_reseller"] > mix.loc["South", "ecommerce_reseller"]


def test_cli_generate_prints_counts_and_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    res = runner.invoke(app, ["data", "generate", "--accounts", "40", "--skus", "20", "--locations", "1",
                              "--start", "2023-01-01", "--end", "2023-12-31", "--seed", "5"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "home" / "synthetic"
    n = len(pd.read_parquet(out / "order_lines.parquet"))
    assert f"{n:,} rows" in res.output and "accounts.csv" in res.output and str(out) in res.output

    bad = runner.invoke(app, ["data", "generate", "--out", str(tmp_path / "bad"), "--start", "2024-05-01",
                              "--end", "2024-01-01"])
    assert bad.exit_code == 2
    assert bad.output.strip() == ("error: data generate: end 2024-01-01 is not after start 2024-05-01 (swapped?): the "
                                  "period must run forward and cover at least one year")
    assert not (tmp_path / "bad").exists()


def test_lines_target_hits_the_requested_size(tmp_path: Path) -> None:
    paths = generate(tmp_path, lines_target=40_000, n_skus=60, n_locations=1, start="2023-01-01", end="2024-12-31")
    n = len(pd.read_parquet(paths["order_lines"]))
    assert 0.8 * 40_000 <= n <= 1.2 * 40_000, n


def test_segment_and_stage_names_match_the_dealer_models() -> None:
    """The truth uses the same names as models.segments, so recovery can be scored directly."""
    from models.segments import SEGMENTS as MODEL_SEGMENTS

    assert tuple(SEGMENTS) == tuple(MODEL_SEGMENTS)


def test_interrupted_run_leaves_previous_files_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that dies half-way (here: Ctrl-C during the second chunk of accounts) keeps the
    earlier network byte for byte and leaves no temporary folder behind."""
    import training.synthetic._generate as G

    generate(tmp_path, seed=1, **TINY)
    before = _digest(tmp_path)
    real = G.simulate_chunk
    calls = {"n": 0}

    def dies_on_second_chunk(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(G, "simulate_chunk", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, seed=2, **{**TINY, "n_accounts": 1500})
    assert calls["n"] == 2
    assert _digest(tmp_path) == before
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "new", seed=2, **{**TINY, "n_accounts": 1500})
    assert not (tmp_path / "new").exists()


def test_embedded_default_config_reads_the_generated_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """experiments/default.yaml finds `dealerml data generate`'s output under $DEALERML_HOME."""
    from training.config import load_config
    from training.data import load_order_book

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    paths = generate(tmp_path / "synthetic", seed=9, **TINY)
    cfg = load_config(Path(__file__).resolve().parents[1] / "experiments" / "default.yaml")
    assert cfg.data.order_lines.path == paths["order_lines"]
    book = load_order_book(cfg)
    assert len(book.order_lines) == len(pd.read_parquet(paths["order_lines"]))
    assert book.report.to_dict()["tables"]["order_lines"]["rows_dropped"] == 0
    assert {"credit_limit", "payment_terms_days"} <= set(book.accounts.columns)


def test_many_warehouses_all_get_home_accounts(tmp_path: Path) -> None:
    paths = generate(tmp_path, seed=1, **{**TINY, "n_accounts": 200, "n_locations": 8})
    by_loc = pd.read_parquet(paths["order_lines"])["location"].value_counts()
    assert len(by_loc) == 8 and by_loc.min() > 0.03 * by_loc.sum()


def test_sku_truth_long_tail_and_succession(syn: dict[str, pd.DataFrame]) -> None:
    sk = syn["skus"]
    top = sk["popularity"] >= sk["popularity"].quantile(0.75)
    tail = sk["popularity"] <= sk["popularity"].quantile(0.5)
    assert sk.loc[tail, "adi"].median() > 1.32 > sk.loc[top, "adi"].median()
    ol = syn["lines"]
    new = sk.dropna(subset=["launch_date"])
    old = sk.dropna(subset=["discontinued_date"])
    assert len(new) >= 3 and len(new) == len(old)
    first_sale = ol[ol["sku"].isin(new["sku"])].groupby("sku")["order_date"].min()
    last_sale = ol[ol["sku"].isin(old["sku"])].groupby("sku")["order_date"].max()
    assert (first_sale >= pd.to_datetime(new.set_index("sku")["launch_date"]).reindex(first_sale.index)).all()
    assert (last_sale < pd.to_datetime(old.set_index("sku")["discontinued_date"]).reindex(last_sale.index)).all()


def test_small_shops_react_to_promotions(syn: dict[str, pd.DataFrame]) -> None:
    ol, o = syn["lines"], syn["orders"]
    share = ol.groupby("segment")["promo"].mean()
    assert share["price_sensitive_small_shop"] > 1.5 * share["strategic_key_account"]
    assert share["price_sensitive_small_shop"] > 1.5 * share["channel_distributor"]
    campaign_days = set(ol.loc[ol["promo"] == 1, "order_date"])
    on = o["date"].isin(campaign_days)
    n_on = len(campaign_days)
    n_off = o["date"].nunique() - n_on
    rate = o.groupby([o["segment"], on]).size().unstack() / [n_off, n_on]  # orders per trading day
    lift = rate[True] / rate[False]
    assert lift["price_sensitive_small_shop"] > 1.5 and lift["price_sensitive_small_shop"] > lift["strategic_key_account"] + 0.4


def test_promo_calendar_covers_every_promoted_line(syn: dict[str, pd.DataFrame], synthetic_dir: Path) -> None:
    cal = pd.read_csv(synthetic_dir / "promo_calendar.csv", parse_dates=["start_date", "end_date"])
    assert len(cal) > 0 and cal["discount"].between(0.1, 0.25).all()
    assert ((cal["end_date"] - cal["start_date"]).dt.days == 13).all()
    promo = syn["lines"][syn["lines"]["promo"] == 1][["sku", "order_date"]].drop_duplicates()
    m = promo.merge(cal, on="sku")
    inside = m[(m["order_date"] >= m["start_date"]) & (m["order_date"] <= m["end_date"])]
    assert len(inside.drop_duplicates(["sku", "order_date"])) == len(promo)
    plain = syn["lines"][syn["lines"]["promo"] == 0][["sku", "order_date"]].drop_duplicates()
    m = plain.merge(cal, on="sku")
    assert not ((m["order_date"] >= m["start_date"]) & (m["order_date"] <= m["end_date"])).any()
