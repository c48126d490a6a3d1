"""Promotion and tuning of a hierarchical demand model (``demand.hierarchy: true``) against a real
MLflow store under tmp_path, through the commands a user runs.

A plain champion (v1) and a hierarchical challenger (v2, bottom-up over sku x location) trained
with the same settings: ``promote demand`` must score the hierarchical one with its own
LightGBM settings (read from its bottom forecaster, not the promote config's), on the bottom
level's coherent forecast, on the same series and window as the plain one (under bottom-up the
two are the same forecast, so the same MASE and no promotion), and record every level's figures
in the promotion run. A config whose series have no key columns cannot rebuild the hierarchy:
refused, naming the levels. ``tune demand`` with the hierarchy scores the bottom level, says so,
and registers a hierarchical challenger.

Small: the session's synthetic network, its 5 largest SKU x location series, SeasonalNaive +
LightGBM (10 trees), horizon 4, one window, no replay.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from conftest import write_config

H = 4


def _demand(**over) -> dict:
    d = {"freq": "W", "horizon": H, "windows": 1, "models": ["SeasonalNaive", "LightGBM"], "lgbm": {"n_estimators": 10},
         "selection_windows": 1, "top_n": 5, "levels": ["sku", "location"], "drivers": ["promo"], "n_sims": 500}
    d.update(over)
    return d


@pytest.fixture(scope="module")
def pair(synthetic_config, tmp_path_factory, mlflow_template_db):
    import shutil

    from typer.testing import CliRunner

    from training.cli import app

    tmp = tmp_path_factory.mktemp("hierpromote")
    tuning = {"target": {"n_folds": 1}}
    plain = write_config(synthetic_config, tmp / "plain.yaml", demand=_demand(), tuning=tuning)
    hier = write_config(synthetic_config, tmp / "hier.yaml", demand=_demand(hierarchy=True), tuning=tuning)
    # promote reads the data from this one; its own LightGBM settings (3 trees) must not be used
    other = write_config(synthetic_config, tmp / "promote.yaml", demand=_demand(hierarchy=True, lgbm={"n_estimators": 3}),
                         tuning=tuning)
    (tmp / "home").mkdir()  # with a copy of the session's empty MLflow store: no migrations in the first train
    shutil.copy(mlflow_template_db, tmp / "home" / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        reports = {}
        for name, cfg in (("plain", plain), ("hier", hier)):
            res = CliRunner().invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay",
                                           "--json", str(tmp / f"{name}.json")])
            assert res.exit_code == 0, res.output
            reports[name] = json.loads((tmp / f"{name}.json").read_text())
        # the second version is a challenger: the run says it is not served and gives the command to type
        assert f"not served: `dealerml promote demand --config {hier}`" in res.output.replace("\n", "")
        yield SimpleNamespace(tmp=tmp, plain=plain, hier=hier, other=other, reports=reports, mp=mp)


def test_promote_scores_the_hierarchy_on_the_bottom_level_with_its_own_settings(pair):
    import mlflow
    from typer.testing import CliRunner

    from training import tracking
    from training.cli import app

    out = pair.tmp / "promote.json"
    res = CliRunner().invoke(app, ["promote", "demand", "--config", str(pair.other), "--json", str(out)])
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    ch, champ = got["evaluation"]["challenger"], got["evaluation"]["champion"]
    assert (got["challenger_version"], got["champion_version"]) == ("2", "1")
    hier_rep, plain_rep = pair.reports["hier"], pair.reports["plain"]
    # each model refitted with its own 10 trees on the window train demand backtested (not the config's 3)
    assert ch["cutoff"] == champ["cutoff"]
    assert ch["mase"] == pytest.approx(hier_rep["metrics"]["Final"]["mase"], rel=1e-9)
    assert champ["mase"] == pytest.approx(plain_rep["metrics"]["Final"]["mase"], rel=1e-9)
    # same footing: the same 5 bottom series; bottom-up's bottom level is the plain forecast itself
    assert ch["scored_on"] == champ["scored_on"] and ch["n_series_scored"] == 5
    # the printed decision says what was compared: the 5 series, the window's cutoff and its periods
    shown = [ln for ln in res.output.splitlines() if ln.startswith("compared on ")]
    assert shown == [f"compared on 5 bottom series, window cut at {ch['cutoff']}, {H} periods, "
                     f"{5 * H} forecasts scored"], res.output
    assert ch["mase"] == pytest.approx(champ["mase"], rel=1e-9)
    assert got["decision"] == "refused" and "bottom_up over sku, location" == ch["hierarchy"]
    by_level = hier_rep["hierarchy"]["by_level"]
    for lv in ("total", "sku", "sku/location"):
        assert ch[f"level.{lv}.mase"] == pytest.approx(by_level[lv]["metrics"]["Final"]["mase"], rel=1e-9)
    assert not any(k.startswith("level.") for k in champ)
    # every level's figures are recorded in the promotion run
    tracking.tracking_uri()
    m = mlflow.get_run(got["evidence_run_id"]).data.metrics
    assert m["challenger.level.total.coverage_80"] == pytest.approx(by_level["total"]["metrics"]["Final"]["coverage_80"])
    assert m["challenger.mase"] == pytest.approx(ch["mase"]) and m["champion.mase"] == pytest.approx(champ["mase"])


def test_a_plain_config_scores_the_hierarchy_on_the_same_series(pair):
    from training import tracking
    from training.config import load_config
    from training.demand_tuning import tuning_target

    est, _ = tracking.load_model("dealerml-demand", "challenger")
    ev = tuning_target(load_config(pair.plain)).evaluate(est)  # demand.hierarchy off: key columns reloaded
    assert ev["mase"] == pytest.approx(pair.reports["hier"]["metrics"]["Final"]["mase"], rel=1e-9)
    assert "level.sku.mase" in ev


def test_a_config_without_key_columns_is_refused(pair):
    import pandas as pd
    from typer.testing import CliRunner

    from training.cli import app

    series = pair.tmp / "series.csv"  # one id column: the SKU x location keys are not there
    pd.DataFrame({"unique_id": ["A/L1"] * 30, "ds": pd.date_range("2023-01-02", periods=30, freq="W-MON"),
                  "y": 1.0}).to_csv(series, index=False)
    cfg = write_config(pair.plain, pair.tmp / "series.yaml",
                       demand={"freq": "W", "horizon": H, "series": {"path": str(series)}})
    res = CliRunner().invoke(app, ["promote", "demand", "--config", str(cfg)])
    assert res.exit_code != 0
    assert "is hierarchical (levels ['sku', 'location'])" in res.output and "key column" in res.output


def test_promotion_refuses_evaluations_on_different_footing(pair):
    from training import registry
    from training.errors import ConfigError

    def evaluate(est):  # a plain and a hierarchical model that say they scored different series
        return {"mase": 1.0 if hasattr(est, "bottom_") else 2.0,
                "scored_on": "8 bottom series" if hasattr(est, "bottom_") else "6 bottom series"}

    with pytest.raises(ConfigError, match="not scored on the same footing .*8 bottom series.*6 bottom series"):
        registry.promote("dealerml-demand", metric="mase", evaluate=evaluate)


def test_tune_demand_with_the_hierarchy_tunes_the_bottom_level_and_registers_a_hierarchy(pair):
    from typer.testing import CliRunner

    from models.demand_hier import HierarchicalDemandForecaster
    from training import tracking
    from training.cli import app

    out = pair.tmp / "tune.json"
    res = CliRunner().invoke(app, ["tune", "demand", "--config", str(pair.hier), "--trials", "1", "--seed", "1",
                                   "--storage", str(pair.tmp / "journal.log"), "--study-name", "hier",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "scored on the bottom level (sku/location)" in res.output
    got = json.loads(out.read_text())
    est, info = tracking.load_model("dealerml-demand", "challenger")
    assert info.version == got["registered_version"] == "3"
    assert isinstance(est, HierarchicalDemandForecaster) and est.method == "bottom_up"
    # the settings it was retrained with are the bottom forecaster's
    assert est.bottom_.selection == got["best_params"]["selection"]
    assert est.bottom_.lgbm_params == got["best_params"]["lgbm_params"]
    meta = info.metadata or {}
    assert set(meta["backtest_metrics"]["by_level"]) == {"total", "sku", "sku/location"}
    assert meta["backtest_metrics"]["mase"] == pytest.approx(meta["backtest_metrics"]["by_level"]["sku/location"]["mase"])
    # the untuned score is the bottom level's coherent MASE of the hierarchical backtest (train demand's)
    assert got["untuned_value"] == pytest.approx(pair.reports["hier"]["metrics"]["Final"]["mase"], rel=1e-9)
