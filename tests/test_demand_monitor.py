"""``dealerml monitor demand``: the registered forecaster's own forecasts scored on the demand that has
happened since it was trained (training.demand_monitor, training.commands.demand_monitor): trained on
a book cut earlier (demand.cutoff), monitored with the whole book; the figures by hand."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import in_env
from typer.testing import CliRunner

from training.cli import app

SERIES = (("A", "n", 6), ("A", "s", 3), ("B", "n", 9), ("C", "s", 1.5))
DEMAND = ("freq: W, horizon: 4, windows: 1, selection_windows: 1, models: [SeasonalNaive, AutoETS, LightGBM], "
          "lgbm: {n_estimators: 10}")


def _lines(path, series=SERIES) -> pd.DataFrame:
    """Orders on Tuesdays and Thursdays from Monday 2 Jan 2023 to Thursday 2 May 2024 (its week still open)."""
    rng = np.random.default_rng(4)
    rows = []
    for i, d in enumerate(pd.date_range("2023-01-02", periods=70 * 7, freq="D")):
        if d.dayofweek not in (1, 3):
            continue
        for sku, loc, lam in series:
            q = int(rng.poisson(lam))
            if q:
                rows.append({"order_id": f"o{i}{sku}{loc}", "order_date": d, "account_id": "a", "sku": sku,
                             "location": loc, "quantity": q, "unit_price": 1.0})
    df = pd.DataFrame(rows)
    df.assign(order_date=df["order_date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return df


def _config(path, lines, cutoff: str | None = None, freq: str = "W"):
    cut = f", cutoff: '{cutoff}'" if cutoff else ""
    path.write_text(f"name: t\nseed: 1\ndata:\n  order_lines: {{path: {lines}}}\n"
                    f"demand: {{{DEMAND.replace('freq: W', f'freq: {freq}')}{cut}}}\n")
    return path


def _weekly(lines: pd.DataFrame) -> pd.DataFrame:
    """Weekly demand by hand: Monday-start weeks, 0 where nothing sold, from each series' first week with a sale."""
    wk = lines.assign(ds=lines["order_date"] - pd.to_timedelta(lines["order_date"].dt.dayofweek, unit="D"),
                      unique_id=lines["sku"] + "/" + lines["location"])
    tab = wk.pivot_table(index="ds", columns="unique_id", values="quantity", aggfunc="sum")
    tab = tab.reindex(pd.date_range(tab.index.min(), tab.index.max(), freq="W-MON")).fillna(0.0)
    return tab


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_template_db):
    tmp = tmp_path_factory.mktemp("monitor")
    lines = _lines(tmp / "lines.csv")
    (tmp / "home").mkdir()
    shutil.copy(mlflow_template_db, tmp / "home" / "mlflow.db")
    with in_env(DEALERML_HOME=str(tmp / "home"), MLFLOW_TRACKING_URI=None):
        # trained on the book as it stood on Sunday 10 March 2024: its last week is that of 4 March
        res = CliRunner().invoke(app, ["train", "demand", "--config", str(_config(tmp / "train.yaml", tmp / "lines.csv",
                                                                                    "2024-03-10")), "--no-replay"])
        assert res.exit_code == 0, res.output
        from training import tracking

        est, _ = tracking.load_model("dealerml-demand", alias="champion")
        fc = est.predict()
        out = tmp / "m.json"
        res = CliRunner().invoke(app, ["monitor", "demand", "--config", str(_config(tmp / "now.yaml", tmp / "lines.csv")),
                                       "--json", str(out)])
        assert res.exit_code == 0, res.output
        yield SimpleNamespace(tmp=tmp, lines=lines, fc=fc, report=json.loads(out.read_text()), output=res.output)


def test_final_mase_and_coverage_equal_a_hand_computation(trained):
    rep, fc = trained.report, trained.fc
    weeks = pd.date_range("2024-03-11", periods=4, freq="W-MON")
    assert rep["periods"] == [str(d.date()) for d in weeks] and rep["n_series"] == 4
    assert rep["model_version"] == "dealerml-demand/1" and rep["final"] == "Final"
    assert rep["monitor"]["cutoff"] == "2024-03-04" and rep["monitor"]["seasonality"] == 1  # 62 weeks < 2 seasons
    tab = _weekly(trained.lines)
    mase, inside80, inside95, n = [], 0, 0, 0
    for u in sorted(fc["unique_id"].unique()):
        # the book's first week is left out: its first line is a Tuesday, so that week may have begun before the book
        hist = tab.loc["2023-01-09":"2024-03-04", u]
        scale = hist.diff().abs().mean()  # in-sample naive error up to the cutoff (season 1)
        f = fc[fc["unique_id"] == u].set_index("ds").loc[weeks]
        y = tab.loc[weeks, u].to_numpy()
        mase.append(np.mean(np.abs(y - f["Final"].to_numpy())) / scale)
        inside80 += int(((y >= f["Final-lo-80"]) & (y <= f["Final-hi-80"])).sum())
        inside95 += int(((y >= f["Final-lo-95"]) & (y <= f["Final-hi-95"])).sum())
        n += len(y)
    got = rep["metrics"]["Final"]
    assert got["mase"] == pytest.approx(np.mean(mase), rel=1e-9)
    assert round(got["coverage_80"] * n) == inside80 and round(got["coverage_95"] * n) == inside95
    ys = tab.loc[weeks, sorted(fc["unique_id"].unique())].to_numpy().sum()
    assert got["bias"] == pytest.approx((fc.loc[fc["ds"].isin(weeks), "Final"].sum() - ys) / ys, rel=1e-9)
    # every member the version's forecast frame carries, scored beside Final; the table names the best baseline
    assert {"SeasonalNaive", "AutoETS", "LightGBM", "Final"} <= set(rep["metrics"])
    assert rep["setup"]["best_statsforecast_baseline"] in ("SeasonalNaive", "AutoETS")
    assert "4 of its 4 periods have happened" in trained.output and "the best statsforecast baseline" in trained.output
    assert rep["by_class"] and all("Final" in v for v in rep["by_class"].values())


def test_the_run_is_logged_in_dealerml_monitoring_and_registers_nothing(trained):
    import mlflow

    uri = f"sqlite:///{trained.tmp / 'home' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("dealerml-monitoring")
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.params.get("periods_elapsed") == "4"]
    assert len(runs) == 1  # the whole book's (the refusals opened no run)
    run = runs[0]
    assert run.data.metrics["Final.mase"] == pytest.approx(trained.report["metrics"]["Final"]["mase"])
    assert run.data.metrics["AutoETS.coverage_80"] == pytest.approx(trained.report["metrics"]["AutoETS"]["coverage_80"])
    assert run.data.metrics["periods_elapsed"] == 4
    tags = run.data.tags
    assert (tags["dealerml.model_name"], tags["dealerml.model_version"], tags["dealerml.model_alias"]) == (
        "dealerml-demand", "1", "champion")
    assert tags["data.ds_max"].startswith("2024-04-22") and len(tags["data.order_lines_sha256"]) == 64
    assert [str(v.version) for v in client.search_model_versions("name='dealerml-demand'")] == ["1"]


def test_part_of_the_horizon_missing_and_new_series(trained):
    tmp = trained.tmp
    # the book of 24 March: two of the four weeks; C/s gone from the book (0 demand), D/n new
    lines = trained.lines
    keep = lines[(lines["sku"] != "C")]
    extra = lines[lines["sku"] == "B"].assign(sku="D", order_id=lambda d: d["order_id"] + "D")
    pd.concat([keep, extra]).assign(order_date=lambda d: d["order_date"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp / "lines2.csv", index=False)
    out = tmp / "m2.json"
    with in_env(DEALERML_HOME=str(tmp / "home"), MLFLOW_TRACKING_URI=None):
        res = CliRunner().invoke(app, ["monitor", "demand", "--config",
                                       str(_config(tmp / "later.yaml", tmp / "lines2.csv", "2024-03-24")),
                                       "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["periods"] == ["2024-03-11", "2024-03-18"] and rep["monitor"]["periods_elapsed"] == 2
    assert rep["monitor"]["missing_from_book_as_zero"] == ["C/s"] and rep["monitor"]["new_series_not_scored"] == ["D/n"]
    assert rep["n_series"] == 4 and "1 series of the version are not in the book" in res.output
    tab, fc = _weekly(lines), trained.fc
    weeks = pd.to_datetime(rep["periods"])
    ys = tab.loc[weeks, ["A/n", "A/s", "B/n"]].to_numpy().sum()  # C/s: 0
    assert rep["metrics"]["Final"]["bias"] == pytest.approx((fc.loc[fc["ds"].isin(weeks), "Final"].sum() - ys) / ys)


@pytest.mark.parametrize("case", ["not_yet", "month", "no_alias", "no_store", "other_levels"])
def test_refusals_write_nothing(trained, case, tmp_path):
    tmp = trained.tmp
    out = tmp_path / "r.json"
    home = tmp / "home" if case != "no_store" else tmp_path / "nohome"
    cfg = _config(tmp_path / "c.yaml", tmp / "lines.csv", "2024-03-12" if case == "not_yet" else None,
                  "M" if case == "month" else "W")
    if case == "other_levels":  # ids A, B, C where the version forecasts A/n, A/s ...: nothing in common, not 0s
        cfg.write_text(cfg.read_text().replace("demand: {", "demand: {levels: [sku], "))
    args = ["monitor", "demand", "--config", str(cfg), "--json", str(out)] + (["--alias", "nope"] if case == "no_alias" else [])
    with in_env(DEALERML_HOME=str(home), MLFLOW_TRACKING_URI=None):
        res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert not out.exists() and not (tmp_path / "nohome").exists()
    want = {"not_yet": "nothing to score yet: the book's last complete period is 2024-03-04, the forecast of "
                       "dealerml-demand@champion (version 1) starts 2024-03-11",
            "month": "its demand is read by 'M' periods; dealerml-demand@champion (version 1) forecasts 'W' periods",
            "no_alias": "has alias 'nope'", "no_store": "there is no MLflow store at",
            "other_levels": "none of the 4 series the version forecasts is in the book (the version's ids e.g. "
                            "['A/n', 'A/s', 'B/n'], the book's e.g. ['A', 'B', 'C'])"}[case]
    assert want in " ".join(res.output.split())


def test_a_series_table_config_scores_the_same(trained):
    """A config with demand.series (the book's weekly demand as a ready table) gives the same figures."""
    tmp = trained.tmp
    tab = _weekly(trained.lines).loc["2023-01-09":"2024-04-22"]  # the complete weeks the loader reads
    long = tab.reset_index(names="ds").melt(id_vars="ds", var_name="unique_id", value_name="y")
    long[["unique_id", "ds", "y"]].to_csv(tmp / "series.csv", index=False)
    cfg = tmp / "series.yaml"
    cfg.write_text(f"name: t\nseed: 1\ndata:\n  order_lines: {{path: {tmp / 'lines.csv'}}}\n"
                   f"demand: {{{DEMAND}, series: {{path: {tmp / 'series.csv'}}}}}\n")
    out = tmp / "s.json"
    with in_env(DEALERML_HOME=str(tmp / "home"), MLFLOW_TRACKING_URI=None):
        res = CliRunner().invoke(app, ["monitor", "demand", "--config", str(cfg), "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["periods"] == trained.report["periods"]
    for m, vals in trained.report["metrics"].items():
        assert rep["metrics"][m] == pytest.approx(vals, rel=1e-9)


def test_a_hierarchical_version_is_scored_at_every_level(tmp_path, mlflow_template_db):
    lines = _lines(tmp_path / "lines.csv")
    (tmp_path / "home").mkdir()
    shutil.copy(mlflow_template_db, tmp_path / "home" / "mlflow.db")
    hier = "demand: {hierarchy: true, levels: [sku, location], "
    train = _config(tmp_path / "train.yaml", tmp_path / "lines.csv", "2024-03-10")
    train.write_text(train.read_text().replace("demand: {", hier))
    now = _config(tmp_path / "now.yaml", tmp_path / "lines.csv")
    now.write_text(now.read_text().replace("demand: {", hier))
    out = tmp_path / "h.json"
    with in_env(DEALERML_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=None):
        res = CliRunner().invoke(app, ["train", "demand", "--config", str(train), "--no-replay"])
        assert res.exit_code == 0, res.output
        from training import tracking

        est, _ = tracking.load_model("dealerml-demand", alias="champion")
        fc = est.served(est.predict())
        res = CliRunner().invoke(app, ["monitor", "demand", "--config", str(now), "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["n_series"] == 4 and set(rep["hierarchy"]["by_level"]) == {"total", "sku"}
    assert rep["hierarchy"]["by_level"]["sku"]["n_series"] == 3
    # the total's Final MASE by hand: the book's weekly total against the coherent total forecast
    tab = _weekly(lines).loc["2023-01-09":]
    total = tab.sum(axis=1)
    weeks = pd.to_datetime(rep["periods"])
    f = fc[fc["unique_id"] == "*/*"].set_index("ds").loc[weeks, "Final"].to_numpy()
    want = np.mean(np.abs(total.loc[weeks].to_numpy() - f)) / total.loc[:"2024-03-04"].diff().abs().mean()
    assert rep["hierarchy"]["by_level"]["total"]["metrics"]["Final"]["mase"] == pytest.approx(want, rel=1e-9)
    assert "level            series" in res.output


def test_series_left_out_by_top_n_are_not_scored_as_zero(trained):
    tmp = trained.tmp
    cfg = _config(tmp / "top.yaml", tmp / "lines.csv")
    cfg.write_text(cfg.read_text().replace("demand: {", "demand: {top_n: 2, "))
    out = tmp / "top.json"
    with in_env(DEALERML_HOME=str(tmp / "home"), MLFLOW_TRACKING_URI=None):
        res = CliRunner().invoke(app, ["monitor", "demand", "--config", str(cfg), "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    # the two largest (B/n, A/n) scored; A/s and C/s are in the book, not 0: left out and said
    assert rep["n_series"] == 2 and rep["monitor"]["below_top_n_not_scored"] == ["A/s", "C/s"]
    assert rep["monitor"]["missing_from_book_as_zero"] == [] and "left out of the book by its demand.top_n" in res.output
