"""The demand commands run end to end through the real CLI: backtest on a ready table of 12
Stallion series (+ a too-short, an all-zero and a gappy series), errors that name the column,
forecast / safety-stock, and train demand into a real MLflow store under tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app

STALLION = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "stallion" / "stallion.parquet"
runner = CliRunner()
KEYS = {"mase", "rmsse", "pinball", "coverage_80", "coverage_95", "bias"}


def _stallion_subset(n: int) -> pd.DataFrame:
    df = pd.read_parquet(STALLION.resolve())
    s = pd.DataFrame({"unique_id": df["agency"].astype(str) + "/" + df["sku"].astype(str),
                      "ds": pd.to_datetime(df["date"]), "y": df["volume"], "price": df["price_actual"]})
    ids = sorted(s["unique_id"].unique())[:: max(1, 350 // n)][:n]
    return s[s["unique_id"].isin(ids)].reset_index(drop=True)


@pytest.mark.realdata
@pytest.mark.slow
def test_backtest_series_real_subset_with_edge_cases(tmp_path):
    s = _stallion_subset(12)  # every member and the edge cases; more real series add time, not checks
    months = pd.date_range("2013-01-01", periods=60, freq="MS")
    edge = pd.concat([
        pd.DataFrame({"unique_id": "edge/short", "ds": months[-5:], "y": [3.0, 1, 4, 1, 5]}),
        pd.DataFrame({"unique_id": "edge/zero", "ds": months, "y": 0.0}),
        pd.DataFrame({"unique_id": "edge/gaps", "ds": months[::3], "y": 7.0}),
    ])
    path = tmp_path / "series.parquet"
    pd.concat([s, edge], ignore_index=True).to_parquet(path)
    out = tmp_path / "report.json"
    res = runner.invoke(app, ["backtest", "demand", "--series", str(path), "--freq", "M", "--horizon", "6",
                              "--windows", "2", "--step", "6", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["final"] == "Final"
    assert {"Final", "SeasonalNaive", "AutoETS", "AutoTheta", "CrostonSBA", "TSB", "IMAPA", "ADIDA", "LightGBM"} <= set(rep["metrics"])
    for m, v in rep["metrics"].items():
        assert set(v) == KEYS, m
        assert v["mase"] is not None and v["mase"] > 0
        assert 0 <= v["coverage_80"] <= v["coverage_95"] <= 1
    assert rep["by_class"] and all("Final" in v for v in rep["by_class"].values())
    reasons = {(x["unique_id"], x["reason"].split(" ")[0]) for x in rep["skipped"]}
    # edge/short starts after both cutoffs: no period yet (the short-history fallback forecasts a series
    # with some demand before a cutoff; it has none there)
    assert ("edge/zero", "all") in reasons and ("edge/short", "no") in reasons
    assert {x["reason"] for x in rep["skipped"] if x["unique_id"] == "edge/short"} == {
        "no period up to the cutoff (first period 2017-08-01)"}
    assert [f["unique_id"] for f in rep["filled"]] == ["edge/gaps"]
    assert rep["setup"]["n_series_scored"] == 13  # 12 real + the gappy one
    assert rep["setup"]["cutoffs"] == ["2016-12-01", "2017-06-01"]


def test_backtest_series_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"unique_id": ["a"] * 3, "date": ["2024-01-01", "2024-02-01", "2024-03-01"], "y": [1, 2, 3]}).to_csv(bad, index=False)
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["backtest", "demand", "--series", str(bad), "--freq", "M", "--horizon", "2",
                              "--windows", "1", "--json", str(out)])
    assert res.exit_code == 2 and "missing column(s) ['ds']" in res.output and str(bad) in res.output
    assert not out.exists()
    neg = tmp_path / "neg.csv"
    pd.DataFrame({"unique_id": ["a"] * 3, "ds": ["2024-01-01", "2024-02-01", "2024-03-01"], "y": [1, -2, 3]}).to_csv(neg, index=False)
    res = runner.invoke(app, ["backtest", "demand", "--series", str(neg), "--freq", "M", "--horizon", "2",
                              "--windows", "1", "--json", str(out)])
    assert res.exit_code == 2 and "column y must be >= 0" in res.output and "first rows [2]" in res.output  # 1 = first data row
    res = runner.invoke(app, ["backtest", "demand", "--series", str(neg), "--json", str(out)])
    assert res.exit_code == 2 and "--freq" in res.output
    assert not out.exists()


def _bt(*args):
    return runner.invoke(app, ["backtest", "demand", "--freq", "M", "--horizon", "2", "--windows", "1", *map(str, args)])


def test_series_table_values_are_checked_not_coerced(tmp_path):
    out = tmp_path / "r.json"
    months = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]

    def table(name, **cols):
        p = tmp_path / name
        pd.DataFrame({"unique_id": ["a"] * 4, "ds": months, "y": [1, 2, 3, 4], **cols}).to_csv(p, index=False)
        return p

    # text in y is an error naming the rows and values, not zero demand
    res = _bt("--series", table("t.csv", y=[1, 2, "abc", 4]), "--json", out)
    assert res.exit_code == 2 and "column y must be a number" in res.output and "first rows [3]" in res.output
    assert "'abc'" in res.output
    # dates: numbers, day-first text, and an empty table
    res = _bt("--series", table("n.csv", ds=[0, 1, 2, 3]), "--json", out)
    assert res.exit_code == 2 and "column ds must hold dates like 2024-03-31; it holds numbers" in res.output
    res = _bt("--series", table("d.csv", ds=["2024-01-01", "2024-02-01", "2024-13-01", "2024-04-01"]), "--json", out)
    assert res.exit_code == 2 and "column ds must be a date like 2024-03-31" in res.output and "'2024-13-01'" in res.output
    assert "first rows [3]" in res.output
    hdr = tmp_path / "h.csv"
    hdr.write_text("unique_id,ds,y\n")
    res = _bt("--series", hdr, "--json", out)
    assert res.exit_code == 2 and "has no rows" in res.output
    # an empty id is an error with its row; ids stay text ("0001" keeps its zeros)
    res = _bt("--series", table("e.csv", unique_id=["a", "", "a", "a"]), "--json", out)
    assert res.exit_code == 2 and "must name a series in every row" in res.output and "first rows [2]" in res.output
    from training.demand_config import read_series_file

    ids = read_series_file(table("z.csv", unique_id=["0001"] * 4))["unique_id"].unique().tolist()
    assert ids == ["0001"]
    # UTC offsets are dropped, keeping the wall-clock date
    from models.demand_data import build_panel

    p = build_panel(pd.DataFrame({"unique_id": "a", "ds": [f"{m}T00:00:00+02:00" for m in months[:2]] + months[2:],
                                  "y": [1.0, 2, 3, 4]}), "M")
    assert list(p.dates.strftime("%Y-%m-%d")) == months
    assert not out.exists()


def test_cli_options_and_output_paths_are_checked_first(tmp_path):
    good = tmp_path / "g.csv"
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"), "y": 1.0}).to_csv(good, index=False)
    for opt, val in (("--horizon", 0), ("--windows", -1), ("--step", 0), ("--top-n", 0)):
        res = runner.invoke(app, ["backtest", "demand", "--series", str(good), "--freq", "M", opt, str(val),
                                  "--json", str(tmp_path / "r.json")])
        assert res.exit_code == 2 and f"{opt}: must be greater than or equal to 1; got {val}" in res.output, res.output
        assert "Traceback" not in res.output and "pydantic" not in res.output
    res = runner.invoke(app, ["backtest", "demand", "--series", str(good), "--freq", "X", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "--freq" in res.output
    # a folder as --json, a file as a parent folder, an unknown --cv-out ending: refused up front, nothing left
    (tmp_path / "dir").mkdir()
    res = _bt("--series", good, "--json", tmp_path / "dir")
    assert res.exit_code == 2 and "is a folder" in res.output
    res = _bt("--series", good, "--json", good / "r.json")
    assert res.exit_code == 2 and "is a file, not a folder" in res.output
    res = _bt("--series", good, "--json", tmp_path / "r.json", "--cv-out", tmp_path / "cv.txt")
    assert res.exit_code == 2 and "--cv-out must end in .csv" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "g.csv"]


def test_on_hand_file_is_checked_before_the_fit(tmp_path):
    data = tmp_path / "s.csv"
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"), "y": 1.0}).to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines:\n    path: {data}\ndemand:\n  freq: M\n  series: {{path: {data}}}\n")
    out = tmp_path / "pol.csv"
    cases = {
        "text.csv": ("unique_id,on_hand\na,abc\n", "column on_hand must be a number of units in every row (negative = backorders); 1 row(s) are not, first rows [1]"),
        "nan.csv": ("unique_id,on_hand\na,\n", "column on_hand must be a number"),
        "dup.csv": ("unique_id,on_hand\na,1\na,2\n", "2 rows repeat a unique_id"),
        "empty.csv": ("", "the file is empty"),
        "hdr.csv": ("unique_id,on_hand\n", "no rows"),
        "cols.csv": ("sku,stock\na,1\n", "missing column(s) ['unique_id', 'on_hand']"),
    }
    for name, (text, msg) in cases.items():
        (tmp_path / name).write_text(text)
        res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out), "--on-hand", str(tmp_path / name)])
        assert res.exit_code == 2 and msg in res.output and name in res.output, (name, res.output)
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out), "--on-hand", str(tmp_path / "nope.csv")])
    assert res.exit_code == 2 and "file not found" in res.output
    assert not out.exists()
    from models.inventory import InventoryPolicy

    pol = InventoryPolicy()
    pol.policy_ = pd.DataFrame({"unique_id": ["a"], "mean_demand": [1.0], "reorder_point": [2.0], "order_up_to": [3.0],
                                "safety_stock": [1.0], "review_period": [1.0]})
    with pytest.raises(ValueError, match="on_hand must be a finite number"):
        pol.advise(pd.DataFrame({"unique_id": ["a"], "on_hand": [np.nan]}))


@pytest.mark.skipif(not Path("/proc/1").is_dir(), reason="needs Linux /proc (a folder no one, root included, may write in)")
def test_out_in_a_folder_that_cannot_be_written_is_refused_before_the_fit(tmp_path, monkeypatch):
    """forecast / safety-stock / backtest / simulate with --out or --json in a folder this process may
    not write in (/proc/1, even for root) fitted everything, then said 'cannot write ... No such file or
    directory'; now refused first, naming the option, the path and the folder."""
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    data = tmp_path / "s.csv"
    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=30, freq="MS"), "y": 1.0}).to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata:\n  order_lines:\n    path: {data}\ndemand:\n  freq: M\n  series: {{path: {data}}}\n")
    bad = "/proc/1/x.csv"
    why = "no permission to write in the folder /proc/1; give a path in a folder you can write to"
    for args in (["forecast", "--config", cfg, "--horizon", "3", "--out", bad],
                 ["forecast", "--config", cfg, "--horizon", "3", "--out", tmp_path / "f.csv", "--drivers-out", bad],
                 ["safety-stock", "--config", cfg, "--out", bad],
                 ["backtest", "demand", "--series", data, "--freq", "M", "--json", "/proc/1/r.json"],
                 ["simulate", "inventory", "--config", cfg, "--json", "/proc/1/r.json"]):
        res = runner.invoke(app, [str(a) for a in args])
        opt = next(str(a) for a in reversed(args[:-1]) if str(a).startswith("--"))
        assert res.exit_code == 2, (args, res.output)
        assert res.output.strip() == f"error: {opt} {args[-1]}: {why}", (args, res.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "s.csv"]


@pytest.mark.realdata
@pytest.mark.slow
def test_forecast_safety_stock_and_train_register(tmp_path, home):
    # home: $DEALERML_HOME with a copy of the session's empty MLflow store (no migrations in train)
    s = _stallion_subset(12)
    data = tmp_path / "s.parquet"
    s.to_parquet(data)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: t\nseed: 1\ndata:\n  order_lines:\n    path: {data}\n"
        "demand:\n  freq: M\n  horizon: 3\n  windows: 1\n"
        f"  series: {{path: {data}, exog: {{price: price}}}}\n"
        "  models: [SeasonalNaive, AutoETS, LightGBM]\n  lgbm: {n_estimators: 20}\n  selection_windows: 1\n"
        "  lead_time_days: 30\n  cover_limit_periods: 3\n  n_sims: 500\n"
    )
    fc_out = tmp_path / "fc.csv"
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--horizon", "3", "--out", str(fc_out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(fc_out)
    assert len(fc) == 12 * 3 and (fc["Final-lo-95"] <= fc["Final-hi-95"]).all()

    on_hand = tmp_path / "oh.csv"
    ids = sorted(s["unique_id"].unique())
    # the first series is backordered (negative on hand, as the inventory table keeps it)
    pd.DataFrame({"unique_id": ids, "on_hand": [-5.0] + [0.0] * 5 + [1e7] * 6}).to_csv(on_hand, index=False)
    pol_out = tmp_path / "pol.parquet"
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--service-level", "0.9", "--out", str(pol_out),
                              "--on-hand", str(on_hand)])
    assert res.exit_code == 0, res.output
    pol = pd.read_parquet(pol_out).set_index("unique_id")
    assert (pol["reorder_point"] >= pol["ltd_mean"] - 1e-9).sum() >= 10
    assert (pol.loc[ids[:6], "action"] == "replenish").all()
    assert (pol.loc[ids[1:6], "order_qty"] == np.ceil(pol.loc[ids[1:6], "order_up_to"])).all()
    assert pol.loc[ids[0], "order_qty"] == np.ceil(pol.loc[ids[0], "order_up_to"] + 5)  # covers the backorders
    assert (pol.loc[ids[6:], "action"] == "overstock").all()
    assert {"normal_safety_stock", "normal_reorder_point", "normal_order_up_to"} <= set(pol.columns)

    (tmp_path / "dir").mkdir()  # an unwritable --json is refused before any work, and no run is logged
    res = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--json", str(tmp_path / "dir")])
    assert res.exit_code == 2 and "is a folder" in res.output
    res = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--holdout", "3", "--json", str(tmp_path / "bt.json")])
    assert res.exit_code == 0, res.output
    assert "registered dealerml-demand version 1 (challenger, and champion: the first version)" in res.output
    from training import tracking

    est, info = tracking.load_model("dealerml-demand", "champion")
    assert info.backtest_metrics["mase"] > 0 and "Final" in est.predict(2).columns
    # --json: the backtest report train ran and logged, as `backtest demand` writes it; printed with baselines
    bt = json.loads((tmp_path / "bt.json").read_text())
    assert bt["final"] == "Final" and {"Final", "SeasonalNaive", "AutoETS", "LightGBM"} <= set(bt["metrics"])
    assert bt["metrics"]["Final"] == info.backtest_metrics and bt["setup"]["source"]["kind"]
    assert "SeasonalNaive" in res.output and "MASE" in res.output
    best = bt["setup"]["best_statsforecast_baseline"]  # the summary line puts the best baseline beside Final
    assert (f"Final MASE {bt['metrics']['Final']['mase']:.3f} vs {bt['metrics'][best]['mase']:.3f} for {best}, "
            "the best statsforecast baseline") in res.output
    assert (f"on the windows with cutoffs {', '.join(bt['setup']['cutoffs'])} (each the last period trained on; "
            "forecasts from the next period)") in res.output
    import mlflow

    run = mlflow.get_run(info.run_id)
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(info.run_id, "plots")}
    assert arts == {"plots/fan_charts.png", "plots/accuracy_by_class.png", "plots/service_vs_target.png"}
    # a small table under profile auto resolves to full, and the run says so
    assert run.data.params["profile"] == "auto" and run.data.tags["dealerml.demand_profile"] == "full"
    assert "Final.mase" in run.data.metrics and any(k.startswith("distribution.cycle_service_level") for k in run.data.metrics)


def test_simulate_inventory_series(tmp_path):
    rng = np.random.default_rng(4)
    ds = pd.date_range("2021-01-04", periods=40, freq="W-MON")
    df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(5 + 3 * i, 40).astype(float)})
                    for i in range(5)])
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "sim.json"
    res = runner.invoke(app, ["simulate", "inventory", "--series", str(path), "--freq", "W", "--holdout", "4",
                              "--targets", "0.9,0.98", "--lead-time-days", "7", "--json", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["lead_time_periods"] == 1 and r["n_series"] == 5 and set(r["targets"]) == {"0.90", "0.98"}
    for t in r["targets"].values():
        assert t["distribution"]["n_cycles"] == 5 * 3  # 4 epochs, the last cycle runs past the holdout
        assert 0 <= t["distribution"]["cycle_service_level"] <= 1 and 0 < t["normal"]["fill_rate"] <= 1
        # the same-service comparison is read on the target's definition; the older reading is kept apart
        assert {"normal_avg_on_hand_at_same_service", "normal_avg_on_hand_at_same_cycle_service_level"} <= set(t)
    hi, lo = r["targets"]["0.98"], r["targets"]["0.90"]
    assert hi["distribution"]["avg_on_hand"] > lo["distribution"]["avg_on_hand"]
    assert hi["normal"]["avg_on_hand"] > lo["normal"]["avg_on_hand"]
    # a holdout too short for any review cycle to complete: CSL is null and said to be n/a, no crash
    res = runner.invoke(app, ["simulate", "inventory", "--series", str(path), "--freq", "W", "--holdout", "1",
                              "--targets", "0.9", "--lead-time-days", "7", "--json", str(tmp_path / "short.json")])
    assert res.exit_code == 0, res.output
    short = json.loads((tmp_path / "short.json").read_text())["targets"]["0.90"]["distribution"]
    assert short["n_cycles"] == 0 and short["cycle_service_level"] is None
    assert "distribution CSL n/a" in res.output and "use a longer --holdout" in res.output
    res = runner.invoke(app, ["simulate", "inventory", "--series", str(path), "--freq", "W", "--targets", "0.4",
                              "--json", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "--targets must lie between 0.5 and 1" in res.output


def test_forecast_hierarchy_from_order_book_is_coherent(tmp_path, synthetic_dir):
    # SeasonalNaive + LightGBM: coherence is the reconciliation's, whatever the members (weekly AutoETS was
    # most of the fit)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: syn\nseed: 1\ndata:\n  order_lines: {{path: {synthetic_dir / 'order_lines.parquet'}}}\n"
        "  as_of: '2024-06-30'\n"
        "demand:\n  freq: W\n  horizon: 3\n  levels: [sku, location]\n  top_n: 8\n  hierarchy: true\n"
        "  models: [SeasonalNaive, LightGBM]\n  lgbm: {n_estimators: 20}\n  selection_windows: 1\n"
    )
    out = tmp_path / "fc.parquet"
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_parquet(out)
    # the ids the service answers: plain <sku>/<location> at the bottom, <sku>/* and */* above;
    # the reconciliation's node ids (total/<sku>/<location>) beside them
    assert (fc["node_id"].str.startswith("total")).all()
    wide = fc.set_index(["unique_id", "ds"])["Final"].unstack("ds")
    bottom = [u for u in wide.index if not u.endswith("/*")]
    skus = [u for u in wide.index if u.endswith("/*") and u != "*/*"]
    assert len(bottom) == 8 and "*/*" in wide.index
    assert set(fc.loc[fc["unique_id"].isin(bottom), "level"]) == {"sku/location"}
    np.testing.assert_allclose(wide.loc["*/*"], wide.loc[skus].sum(), rtol=1e-5, atol=1e-3)
    for sku in skus:
        kids = [u for u in bottom if u.startswith(sku[:-1])]
        assert kids
        np.testing.assert_allclose(wide.loc[sku], wide.loc[kids].sum(), rtol=1e-5, atol=1e-3)


def test_forecast_and_safety_stock_alias_say_when_the_model_was_fitted_on_another_book(tmp_path, home,
                                                                                     synthetic_dir):
    """forecast --alias champion (and safety-stock --alias) with another book's config wrote the registered
    model's forecasts (its series, its history; the same SKU/location ids) without a word. Both now caution,
    as promote does (273970b), naming both books, and go on (the same book with later orders differs too).
    SeasonalNaive + LightGBM: the cautions are about the book, not the forecast (weekly AutoETS was most of
    the fit); ``home`` holds a copy of the session's empty MLflow store."""
    lines = pd.read_parquet(synthetic_dir / "order_lines.parquet")
    other = tmp_path / "other.parquet"  # the book without 20 accounts: the same series ids, other order lines
    lines[~lines["account_id"].isin(sorted(lines["account_id"].unique())[:20])].to_parquet(other, index=False)
    demand = ("demand:\n  freq: W\n  horizon: 3\n  windows: 1\n  top_n: 6\n  models: [SeasonalNaive, LightGBM]\n"
              "  lgbm: {n_estimators: 20}\n  selection_windows: 1\n  lead_time_days: 7\n  n_sims: 200\n")
    ours, theirs = tmp_path / "ours.yaml", tmp_path / "theirs.yaml"
    for cfg, data in ((ours, synthetic_dir / "order_lines.parquet"), (theirs, other)):
        cfg.write_text(f"name: t\nseed: 1\ndata:\n  order_lines: {{path: {data}}}\n  as_of: '2024-06-30'\n{demand}")
    res = runner.invoke(app, ["train", "demand", "--config", str(ours), "--no-replay"])
    assert res.exit_code == 0, res.output
    from training import tracking
    from training.data import order_lines_sha256

    tags = tracking.run_tags(tracking.model_info("dealerml-demand", "champion").run_id)
    sha = tags["data.order_lines_sha256"]
    assert sha == order_lines_sha256(lines)

    res = runner.invoke(app, ["forecast", "--alias", "champion", "--config", str(theirs), "--out", str(tmp_path / "f.csv")])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())
    assert (f"caution: dealerml-demand@champion (version 1) was fitted on other order lines than {theirs}'s book: its "
            f"run read the order book of {ours} (6 demand series, {tags['data.ds_min'][:10]} .. "
            f"{tags['data.ds_max'][:10]}, order lines sha256 {sha[:12]}), {theirs} reads its order book (6 demand "
            "series, ") in said, said
    assert ("The forecasts are of its series and history, not this book's; train a version on this config (dealerml "
            f"train demand --config {theirs}) and use that one (if this is that book with later orders, they are not "
            "in its forecasts either)") in said, said
    assert len(pd.read_csv(tmp_path / "f.csv")) == 6 * 3  # a caution, not a refusal
    # every row names the version it came from, as /forecast answers it (the files carried none)
    assert pd.read_csv(tmp_path / "f.csv")["model_version"].unique().tolist() == ["dealerml-demand/1"]

    res = runner.invoke(app, ["safety-stock", "--alias", "champion", "--config", str(theirs), "--out",
                              str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())
    assert f"caution: dealerml-demand@champion (version 1) was fitted on other order lines than {theirs}'s book" in said
    assert "The policies size this book's lead times and stock on its forecasts of those order lines" in said, said
    assert pd.read_csv(tmp_path / "p.csv")["model_version"].unique().tolist() == ["dealerml-demand/1"]

    for cmd in (["forecast", "--out", str(tmp_path / "g.csv")], ["safety-stock", "--out", str(tmp_path / "q.csv")]):
        res = runner.invoke(app, [*cmd, "--alias", "champion", "--config", str(ours)])  # its own book: no caution
        assert res.exit_code == 0 and "fitted on other order lines" not in res.output, res.output


def test_backtest_demand_says_what_it_scored(tmp_path):
    """`backtest demand` printed the metrics table and 'skipped N series-windows' only: which windows,
    how many series (after --top-n) and Final against the best baseline were in the JSON alone."""
    rng = np.random.default_rng(3)
    weeks = pd.date_range("2023-01-02", periods=40, freq="W-MON")
    df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": weeks, "y": rng.poisson(5 + i, len(weeks)).astype(float)})
                    for i in range(4)])
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["backtest", "demand", "--series", str(path), "--freq", "W", "--horizon", "3",
                              "--windows", "2", "--top-n", "3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    setup = json.loads(out.read_text())["setup"]
    assert setup["cutoffs"] == ["2023-08-21", "2023-09-11"] and setup["n_series_scored"] == 3
    want = ("scored 3 series on 2 window(s) of 3 W period(s) each, with cutoffs 2023-08-21, 2023-09-11 (each the last "
            f"period trained on; forecasts from the next period); Final MASE "
            f"{setup['final_mase_ratio_to_best_baseline']:.3f}x {setup['best_statsforecast_baseline']}'s, the best "
            "statsforecast baseline")
    assert want in res.output.splitlines()


@pytest.mark.parametrize("text", [
    "unique_id,on_hand\na,abc\n",  # not a number
    "unique_id,on_hand\na,1\na,2\n",  # a unique_id twice
    "unique_id,on_hand\na,1e300\n",  # beyond MAX_UNITS
    "unique_id,on_hand,on_orders\na,1,5\n",  # a misspelt optional column
    "unique_id,on_hand,order_multiple\na,1,0\n",  # a pack of 0 units
    "unique_id,on_hand,snapshot_date\na,1,31/02/2024\n",  # not a date
    "unique_id,on_hand\n",  # no rows
    "unique_id,stock\na,1\n",  # no on_hand
    "sku,location,on_hand\nA1,north,x\n",  # by the key columns: the figures are checked early too
])
def test_a_bad_on_hand_file_is_refused_before_the_book_is_loaded(tmp_path, monkeypatch, text):
    """`safety-stock --on-hand FILE` refused a bad file only after loading the order book (16-49 s on a real
    book) and fitting or loading the model; what needs no series keys is checked first, with the message the
    later check gives (_read_on_hand). The config here names an order book that does not exist: a run that
    loads it fails on it, so the on-hand message shows the file was refused before the load."""
    from training.commands._demand_on_hand import _read_on_hand
    from training.errors import DataError

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    f = tmp_path / "oh.csv"
    f.write_text(text)
    with pytest.raises(DataError) as err:
        _read_on_hand(f, ["sku", "location"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\ndata: {{order_lines: {{path: {tmp_path / 'none.csv'}}}}}\n")
    out = tmp_path / "pol.csv"
    res = runner.invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out), "--on-hand", str(f)])
    assert res.exit_code == 2, res.output
    assert " ".join(res.output.split()) == " ".join(f"error: {err.value}".split())
    assert not out.exists()
