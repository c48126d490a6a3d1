"""A young book shorter than the horizon + 1 (e.g. 10 weeks of sales, safety stock at a 17-week
horizon), and a young book with ``demand.hierarchy``: both are served by the short-history fallback
instead of refused.

* Too few periods to measure the fallback's errors over h periods after an earlier cutoff: its band
  and error paths are measured over the longest lookahead g < h the table has (every window of g
  periods before the cutoff), flagged in ``forecast_note`` and on stderr; it refuses only a table
  of one period or without a sale before its last period, saying it needs at least 2 periods.
* Every bottom series short with a hierarchy: every level on the fallback, the parents the sums of
  the bottom series' forecasts (bottom-up whatever ``reconcile``), each parent with the band of the
  fallback on its own summed demand moved onto that sum; the total, when that band would pool every
  error (its periods bucket not measured), with its level bucket's errors on the sum instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.demand import DemandForecaster, TooShortError
from models.demand_data import build_panel
from models.demand_hier import HierarchicalDemandForecaster
from models.demand_short import (
    SHORT_MODEL,
    count_band,
    level_bucket,
    short_history_forecast,
    short_note,
)

KW = dict(models=("AutoETS",))
BANDS = ["Final", "Final-lo-80", "Final-hi-80", "Final-lo-95", "Final-hi-95"]


def _young(T=7, seed=0):
    """Six series of 2..T weekly periods in a table of T periods (keys: region, sku)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=T, freq="W-MON")
    spec = [(T, 5.0), (T, 2.0), (T - 1, 9.0), (T - 2, 1.0), (3, 4.0), (2, 3.0)]
    parts = []
    for i, (n, r) in enumerate(spec):
        region, sku = ("E", "W")[i % 2], f"K{i // 2}"
        parts.append(pd.DataFrame({"unique_id": f"{region}/{sku}", "region": region, "sku": sku, "ds": ds[T - n:],
                                   "y": rng.poisson(r, n).astype(float)}))
    return pd.concat(parts, ignore_index=True)


# -- 1. fewer periods than h + 1 ------------------------------------------------------------------

def test_seven_weeks_get_an_eight_week_forecast_with_the_band_measured_over_six():
    df = _young()[["unique_id", "ds", "y"]]
    est = DemandForecaster(freq="W", h=8, **KW).fit(df)  # refused before: 'it needs at least 9 periods'
    assert est.all_short_ == {"n_series": 6, "max_periods": 7, "min_train": 16, "h": 8}
    assert est.short_lookahead_ == 6  # cutoff 6 periods back: the period 0 .. 6 errors
    fc = est.predict()
    assert len(fc) == 6 * 8 and (fc["final_model"] == SHORT_MODEL).all()
    # the point: the mean of the last (up to) 4 periods, flat over the 8 weeks
    last4 = df.groupby("unique_id")["y"].apply(lambda y: y.to_numpy()[-4:].mean())
    assert (fc.groupby("unique_id")["Final"].nunique() == 1).all()
    assert fc.groupby("unique_id")["Final"].first().to_dict() == pytest.approx(last4.to_dict())
    # the band: what the fallback measures at the 6-period horizon the table has, the same for every step
    p = build_panel(df, "W")
    rows6, info6 = short_history_forecast(p.Y, p.uids, p.dates, p.offset, 6, 6, np.zeros(p.n, bool), 16, 2, [80, 95])
    assert info6["lookahead"] == 6
    first = fc[fc["ds"] == fc["ds"].min()].reset_index(drop=True)
    pd.testing.assert_frame_equal(first[["unique_id", *BANDS]], rows6.loc[rows6["step"] == 1, ["unique_id", *BANDS]]
                                  .reset_index(drop=True))
    assert (fc.groupby("unique_id")[BANDS].nunique() == 1).all().all()
    assert (fc["Final-hi-95"] > fc["Final"]).all() and (fc["Final-lo-95"] <= fc["Final-lo-80"]).all()
    pd.testing.assert_frame_equal(est.short_residuals_, info6["residuals"])
    assert sorted(est.short_residuals_["step"].unique()) == [1, 2, 3, 4, 5, 6]


def test_one_step_errors_when_the_sales_start_late_and_the_refusals_left():
    # every series listed from week 1 with zeros, the first sale in week 8 of 10: no sale h periods back,
    # so the band is measured over the one period after each cutoff with a sale before it
    ds = pd.date_range("2024-01-01", periods=10, freq="W-MON")
    late = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": [0.0] * 7 + y})
                      for u, y in {"a": [3.0, 4.0, 2.0], "b": [1.0, 0.0, 2.0]}.items()], ignore_index=True)
    est = DemandForecaster(freq="W", h=8, **KW).fit(late)
    assert est.short_lookahead_ == 2 and len(est.predict()) == 16
    assert est.predict().groupby("unique_id")["Final"].first().to_dict() == pytest.approx({"a": 9 / 4, "b": 3 / 4})
    head = "give longer series or a smaller horizon; nor can the short-history fallback:"
    # one period: nothing before the cutoff to measure an error on
    with pytest.raises(TooShortError) as e:
        DemandForecaster(freq="W", h=8, **KW).fit(late[late["ds"] == ds[-1]])
    assert str(e.value).endswith(f"{head} it measures its band on the periods after an earlier cutoff, so it needs "
                                 "at least 2 periods (the table has 1)")
    # ten periods, the only sales in the last: no error of a mean with demand can be measured
    only_last = late.assign(y=np.where(late["ds"] == ds[-1], 5.0, 0.0))
    with pytest.raises(TooShortError) as e:
        DemandForecaster(freq="W", h=8, **KW).fit(only_last)
    assert str(e.value) == (f"no series has 16 observed periods with some demand up to 2024-03-04; {head} no series "
                            "had demand before 2024-03-04 to measure its errors on a later period (it needs at least "
                            "2 periods, with a sale before the last)")


def test_the_band_measured_over_fewer_periods_still_covers_the_whole_horizon():
    """Poisson series with 5 periods each, an 8-period horizon (band measured over 4): the 80 / 95 %
    bands cover about as often at steps 5-8 as at 1-4, and at least their level."""
    rng = np.random.default_rng(3)
    T, h, n = 5, 8, 300
    rates = rng.uniform(0.5, 30, n)
    ds = pd.date_range("2024-01-01", periods=T, freq="W-MON")
    Y = rng.poisson(rates[:, None], (n, T + h)).astype(float)
    df = pd.DataFrame({"unique_id": np.repeat([f"s{i:03d}" for i in range(n)], T), "ds": np.tile(ds, n),
                       "y": Y[:, :T].reshape(-1)})
    est = DemandForecaster(freq="W", h=h, **KW).fit(df)
    assert est.short_lookahead_ == 4
    fc = est.predict()
    y = Y[fc["unique_id"].str.slice(1).astype(int).to_numpy(), T - 1 + fc["ds"].rank(method="dense").astype(int)]
    for lv, at_least in ((80, 0.8), (95, 0.95)):
        inside = (y >= fc[f"Final-lo-{lv}"]) & (y <= fc[f"Final-hi-{lv}"])
        near, far = inside[fc["ds"] <= fc["ds"].unique()[3]].mean(), inside[fc["ds"] > fc["ds"].unique()[3]].mean()
        assert near >= at_least and far >= at_least and abs(far - near) < 0.03, (lv, near, far)


def _cfg(tmp_path, df, extra="", T=None):
    data = tmp_path / "s.csv"
    df.to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 3\ndata:\n  order_lines:\n    path: {data}\ndemand:\n  freq: W\n  horizon: 8\n"
                   f"  windows: 1\n  series: {{path: {data}, columns: {{unique_id: [region, sku], ds: ds, y: y}}}}\n"
                   f"  models: [AutoETS]\n  n_sims: 500\n{extra}")
    return cfg


def test_cli_forecast_and_safety_stock_of_seven_weeks_say_the_band_is_measured_over_six(tmp_path, monkeypatch):
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    df = _young(T=7, seed=1)
    cfg = _cfg(tmp_path, df)
    runner = CliRunner()
    note = ("note: the table has 7 periods, too few to measure the short-history fallback's errors over the 8-period "
            "horizon (that takes 9 periods, with a sale in the first): its band and the error paths that size safety "
            "stock were measured over the 6 periods after earlier cutoffs (paths longer than that repeat their last "
            "step), so check these series' forecasts against their first sales before committing stock")
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--horizon", "8", "--out", str(tmp_path / "fc.csv")])
    assert res.exit_code == 0 and note in " ".join(res.output.split()), res.output
    fc = pd.read_csv(tmp_path / "fc.csv")
    n = df[df.groupby("unique_id")["y"].transform("sum") > 0].groupby("unique_id").size()  # W/K1 sold nothing
    assert fc.groupby("unique_id")["forecast_note"].first().to_dict() == {u: short_note(int(k), 4, 6, 8) for u, k in n.items()}
    assert fc["forecast_note"].str.endswith("over the 6 periods after earlier cutoffs: the table is too young to "
                                            "measure them over the 8-period horizon)").all()
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(tmp_path / "ss.csv")])
    assert res.exit_code == 0 and note in " ".join(res.output.split()), res.output
    pol = pd.read_csv(tmp_path / "ss.csv")
    assert len(pol) == len(n) == 5 and (pol["ltd_source"] == "short_history").all() and (pol["reorder_point"] > 0).all()
    assert pol["forecast_note"].str.contains("over the 6 periods after earlier cutoffs").all()
    # one period: refused, saying the fallback needs 2
    res = runner.invoke(app, ["forecast", "--config", str(_cfg(tmp_path, df[df["ds"] == df["ds"].max()])),
                              "--out", str(tmp_path / "fc1.csv")])
    assert res.exit_code == 2 and "so it needs at least 2 periods (the table has 1)" in " ".join(res.output.split())
    assert not (tmp_path / "fc1.csv").exists()


# -- 2. every bottom series short, with a hierarchy -----------------------------------------------

@pytest.mark.parametrize("method", ["bottom_up", "mint_ols"])
def test_an_all_short_hierarchy_is_the_fallback_at_the_bottom_and_sums_above(method, tmp_path):
    df = _young(T=7, seed=2)
    est = HierarchicalDemandForecaster(("region", "sku"), method=method,
                                       forecaster={"freq": "W", "h": 4, **KW}).fit(df)  # TooShortError before
    assert est.all_short_ == {"n_series": 6, "max_periods": 7, "min_train": 8, "h": 4, "method": method}
    fc = est.served(est.predict())
    assert (fc["final_model"] == SHORT_MODEL).all() and fc["unique_id"].nunique() == 6 + 2 + 1
    wide = fc.set_index(["unique_id", "ds"])["Final"].unstack("ds")
    # the bottom level is the plain forecaster's fallback forecast and band, to the bit
    plain = DemandForecaster(freq="W", h=4, **KW).fit(df[["unique_id", "ds", "y"]]).predict()
    bottom = fc[fc["level"] == "region/sku"].drop(columns="level").reset_index(drop=True)
    pd.testing.assert_frame_equal(bottom[["unique_id", "ds", *BANDS]].sort_values(["unique_id", "ds"], ignore_index=True),
                                  plain[["unique_id", "ds", *BANDS]].sort_values(["unique_id", "ds"], ignore_index=True))
    # the parents are the sums of their bottom series (bottom-up, with mint_ols too)
    np.testing.assert_allclose(wide.loc["E/*"], wide.loc[["E/K0", "E/K1", "E/K2"]].sum(), rtol=1e-9)
    np.testing.assert_allclose(wide.loc["*/*"], wide.loc[["E/*", "W/*"]].sum(), rtol=1e-9)
    # a SKU's band: its own summed demand's fallback band, moved onto that sum
    up = est.upper_.predict().set_index(["unique_id", "ds"])

    def parents(fc):
        return fc[fc["level"] != "region/sku"].assign(node=lambda d: d["unique_id"].map(
            {"*/*": "total", "E/*": "total/E", "W/*": "total/W"})).set_index(["node", "ds"])

    def moved(par):
        return up.loc[par.index, "Final-hi-95"].to_numpy() + par["Final"].to_numpy() - up.loc[par.index, "Final"].to_numpy()

    par = parents(fc)
    sku = par.index.get_level_values("node") != "total"
    np.testing.assert_allclose(par.loc[sku, "Final-hi-95"], moved(par)[sku], rtol=1e-9)
    # the total's: the sum x (1 + q) of its level bucket's errors (its 4-period bucket was not measured in 7
    # periods at h = 4, and every error pooled, 1- to 3-period means of the two regions too, is far wider)
    own, table = est.upper_.short_.set_index("unique_id").loc["total"], est.upper_.short_conformal_
    assert own["window"] == 4 and own["bucket"] == "short:4-6" and ("short:4-6", 0) not in table
    q = table[("*|" + level_bucket(own["level"])[0], 0)]
    point = par.loc["total", "Final"].to_numpy()
    for lv in (80, 95):
        lo, hi = count_band(own["window_total"], own["window"], 1.0, lv)
        np.testing.assert_allclose(par.loc["total", f"Final-hi-{lv}"], np.maximum(point * (1 + q[lv][1]), hi), rtol=1e-9)
        np.testing.assert_allclose(par.loc["total", f"Final-lo-{lv}"],
                                   np.minimum(np.clip(point * (1 + q[lv][0]), 0, None), lo), rtol=1e-9)
    assert (par.loc["total", "Final-hi-95"] < moved(par)[~sku]).all()  # 66.7 (level bucket) < 131.3 (all pooled)
    assert (par["Final-hi-95"] > par["Final"]).all() and (par["Final-lo-95"] <= par["Final-lo-80"]).all()
    # saved and loaded: the same forecast
    again = HierarchicalDemandForecaster.load(est.save(tmp_path / "m"))
    assert again.all_short_ == est.all_short_
    pd.testing.assert_frame_equal(again.predict(), est.predict())
    # a model saved before the fallback kept level buckets loads, and its total keeps the moved band
    est.upper_.short_conformal_ = {k: v for k, v in table.items() if not k[0].startswith("*|")}
    old = parents(est.served(HierarchicalDemandForecaster.load(est.save(tmp_path / "old")).predict()))
    np.testing.assert_allclose(old["Final-hi-95"], moved(old), rtol=1e-9)


def _network(weeks=40, seed=5):
    """Weekly Poisson demand of 6 fast SKUs (30-50 units a week at each of 3 locations) and 24 slow ones
    (0.3-3 a week): a network whose total is in the level bucket of its fast SKUs' sums (100+)."""
    rng = np.random.default_rng(seed)
    rates = np.r_[rng.uniform(30, 50, 6), rng.uniform(0.3, 3, 24)]
    ds = pd.date_range("2024-01-01", periods=weeks, freq="W-MON")
    return pd.concat([pd.DataFrame({"unique_id": f"K{i:02d}/{loc}", "sku": f"K{i:02d}", "location": loc, "ds": ds,
                                    "y": rng.poisson(r, weeks).astype(float)})
                      for i, r in enumerate(rates) for loc in ("L1", "L2", "L3")], ignore_index=True)


def test_the_total_of_a_young_network_is_not_banded_by_every_error_pooled():
    """Books of the last 5 weeks before 7 origins, h = 8: only one-period means were measured before the
    cutoff (over 4 periods), none of the 4 the total averages. With every error pooled (slow SKUs' one-week
    means among them) the total's 95 % band was 3.0-13x its point (coverage 1.00 / 1.00 at 80 / 95 %);
    from its level bucket's errors (the fast SKUs' and its own) 0.36-0.59x, and it still covers the next 8
    weeks' total in 55 of 56 weeks at both levels."""
    df, h = _network(), 8
    ds = np.sort(df["ds"].unique())
    cover, width = {80: [], 95: []}, []
    for o in range(5, 32, 4):
        book = df[(df["ds"] > ds[o - 5]) & (df["ds"] <= ds[o])]
        est = HierarchicalDemandForecaster(("sku", "location"), forecaster={"freq": "W", "h": h, **KW}).fit(book)
        assert est.all_short_["max_periods"] == 5 and est.upper_.short_lookahead_ == 4
        tot = est.served(est.predict()).query("unique_id == '*/*'").sort_values("ds")
        y = df[(df["ds"] > ds[o]) & (df["ds"] <= ds[o + h])].groupby("ds")["y"].sum().to_numpy()
        for lv in (80, 95):
            cover[lv] += list((y >= tot[f"Final-lo-{lv}"]) & (y <= tot[f"Final-hi-{lv}"]))
        width.append(float(((tot["Final-hi-95"] - tot["Final-lo-95"]) / tot["Final"]).median()))
    assert max(width) < 1.0, width  # every error pooled: 3.0-13.0
    assert np.mean(cover[80]) >= 0.9 and np.mean(cover[95]) >= 0.95, (np.mean(cover[80]), np.mean(cover[95]))
    # the SKU totals keep their own fallback band moved onto their sums (fast ones in the 100+ bucket too)
    fc = est.served(est.predict()).query("level == 'sku'").set_index(["unique_id", "ds"])
    up = est.upper_.predict().assign(unique_id=lambda d: d["unique_id"].str.slice(6) + "/*").set_index(["unique_id", "ds"])
    np.testing.assert_allclose(fc["Final-hi-95"], up.loc[fc.index, "Final-hi-95"] + fc["Final"] - up.loc[fc.index, "Final"],
                               rtol=1e-9)


def test_an_all_short_hierarchy_with_short_history_skip_is_still_refused():
    with pytest.raises(TooShortError, match=r"^no series has 8 observed periods with some demand up to 2024-02-12; "
                                            r"give longer series or a smaller horizon$"):
        HierarchicalDemandForecaster(("region", "sku"), forecaster={"freq": "W", "h": 4, "short_history": "skip",
                                                                    **KW}).fit(_young(T=7))


def test_cli_forecast_and_safety_stock_of_an_all_short_hierarchy(tmp_path, monkeypatch):
    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    df = _young(T=12, seed=1)
    cfg = _cfg(tmp_path, df, "  hierarchy: true\n  reconcile: mint_wls\n")
    runner = CliRunner()
    line = ("all 6 bottom series with demand are on the short-history fallback (final_model ShortHistory, "
            "forecast_note): none has the 16 observed periods the members need at a 8-period horizon (the longest "
            "has 12); each level above is the sum of their forecasts (bottom-up, not demand.reconcile mint_wls: there "
            "are no member forecasts to reconcile) with the band of the fallback on its own summed demand, moved "
            "onto that sum (the total's from the errors of the fallback's level bucket it falls in: its own periods "
            "were not measured)")
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(tmp_path / "fc.csv")])
    assert res.exit_code == 0 and line in " ".join(res.output.split()), res.output
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert sorted(fc["unique_id"].unique()) == ["*/*", "E/*", "E/K0", "E/K1", "E/K2", "W/*", "W/K0", "W/K1", "W/K2"]
    notes = fc.groupby("unique_id")["forecast_note"].first()
    n = df.groupby("unique_id").size()
    assert notes[n.index].to_dict() == {u: short_note(int(k)) for u, k in n.items()}
    below = "short history (12 periods): the sum of the fallback forecasts of the series below it; band from the "
    assert notes["E/*"] == below + "fallback on its own summed demand, moved onto that sum"
    # the total's band: its level bucket's errors, its 4-6-period bucket not measured (2e1c7b7)
    assert notes["*/*"] == below + ("errors of the fallback's level bucket it falls in (its own periods were not "
                                    "measured), on that sum")
    wide = fc.set_index(["unique_id", "ds"])["Final"].unstack("ds")
    np.testing.assert_allclose(wide.loc["*/*"], wide.loc[list(n.index)].sum(), rtol=1e-9)
    # safety stock: the bottom level sized as without the hierarchy (the same fallback forecast and paths)
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(tmp_path / "ss.csv")])
    assert res.exit_code == 0 and line.split(": none")[0] in " ".join(res.output.split()), res.output
    (tmp_path / "p").mkdir()
    plain = _cfg(tmp_path / "p", df)
    res = runner.invoke(app, ["safety-stock", "--config", str(plain), "--out", str(tmp_path / "ss_plain.csv")])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ss.csv"), pd.read_csv(tmp_path / "ss_plain.csv"))
    # the backtest still refuses (no window to score), and now points to the fallback with a hierarchy too
    res = runner.invoke(app, ["backtest", "demand", "--config", str(cfg), "--json", str(tmp_path / "bt.json")])
    assert res.exit_code == 2 and "for a young catalogue, `dealerml forecast --config`" in " ".join(res.output.split())

