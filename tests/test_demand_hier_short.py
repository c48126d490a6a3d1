"""A demand.hierarchy run and the short-history fallback: the hierarchical model's bottom level skips
short series (models.demand_hier: they get no forecast and, in safety-stock, no policy), so the run that
registers it must not replay and log fallback policies for them, nor log short_history=fallback.

Small: the session's synthetic network, its 5 largest SKU x location series, SeasonalNaive + LightGBM
(10 trees), horizon 4, one window, a 4-period replay."""

from __future__ import annotations

from conftest import write_config


def _capture_replay(monkeypatch) -> dict:
    """The keyword arguments of the next inventory replay (which still runs)."""
    import training.demand_backtest as bt

    seen: dict = {}
    real = bt.run_inventory_replay

    def replay(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(bt, "run_inventory_replay", replay)
    return seen


def test_a_hierarchy_run_replays_and_logs_short_series_as_its_model_serves_them(synthetic_config, tmp_path,
                                                                                 monkeypatch):
    import mlflow
    from typer.testing import CliRunner

    from training import tracking
    from training.cli import app

    demand = {"freq": "W", "horizon": 4, "windows": 1, "models": ["SeasonalNaive", "LightGBM"],
              "lgbm": {"n_estimators": 10}, "selection_windows": 1, "top_n": 5, "levels": ["sku", "location"],
              "hierarchy": True, "n_sims": 500, "lead_time_days": 7.0}
    cfg = write_config(synthetic_config, tmp_path / "hier.yaml", demand=demand)
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    seen = _capture_replay(monkeypatch)
    res = CliRunner().invoke(app, ["train", "demand", "--config", str(cfg), "--holdout", "4"])
    assert res.exit_code == 0, res.output
    est, info = tracking.load_model("dealerml-demand", alias="champion")
    assert est.bottom_.short_history == "skip"  # what the registered model does with short series
    assert seen["forecaster_kwargs"]["short_history"] == "skip"  # the replay logged on its run: the same
    tracking.tracking_uri()
    assert mlflow.get_run(info.run_id).data.params["short_history"] == "skip"


def test_safety_stock_and_simulate_inventory_of_a_hierarchy_config_size_as_its_champion(synthetic_config, tmp_path,
                                                                                        monkeypatch):
    """`safety-stock --config` of a demand.hierarchy config fitted the flat forecaster (with the short-history
    fallback), and `simulate inventory` replayed the fallback, while `--alias champion` sizes from the
    hierarchical model's bottom level (coherent forecast, short series skipped): the same config gave two
    sets of reorder points. Now --config fits the hierarchical forecaster as train demand registers it, so
    both give the same policies, and simulate inventory replays short series as skipped, as train demand."""
    import pandas as pd
    import yaml
    from typer.testing import CliRunner

    from training.cli import app

    demand = {"freq": "W", "horizon": 4, "windows": 1, "models": ["SeasonalNaive", "LightGBM"],
              "lgbm": {"n_estimators": 10}, "selection_windows": 1, "top_n": 5, "levels": ["sku", "location"],
              "hierarchy": True, "n_sims": 500, "lead_time_days": 7.0,
              "reconcile": "mint_ols"}  # the bottom level moves with the reconciliation (bottom_up keeps it)
    cfg = write_config(synthetic_config, tmp_path / "hier.yaml", demand=demand)
    # without the book's lead times (35-64 days): the config's 7 days fit the champion's 4-week horizon
    # for every series, so both ways size the same series
    book = yaml.safe_load(cfg.read_text())
    del book["data"]["lead_times"]
    cfg.write_text(yaml.safe_dump(book))
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = CliRunner().invoke
    assert run(app, ["train", "demand", "--config", str(cfg), "--no-replay"]).exit_code == 0
    for how, args in (("alias", ["--alias", "champion", "--config", str(cfg)]), ("config", ["--config", str(cfg)])):
        res = run(app, ["safety-stock", *args, "--service-level", "0.95", "--out", str(tmp_path / f"{how}.csv")])
        assert res.exit_code == 0, res.output
    cols = ["unique_id", "reorder_point", "order_up_to", "safety_stock", "normal_reorder_point"]
    by_alias, by_config = (pd.read_csv(tmp_path / f"{h}.csv").query("action != 'no_policy'")  # stock of other series
                           .sort_values("unique_id")[cols].reset_index(drop=True) for h in ("alias", "config"))
    assert len(by_config) == 5 and by_config["unique_id"].str.count("/").eq(1).all()  # SKU x location only
    pd.testing.assert_frame_equal(by_config, by_alias)

    seen = _capture_replay(monkeypatch)
    res = run(app, ["simulate", "inventory", "--config", str(cfg), "--holdout", "4", "--targets", "0.95",
                    "--json", str(tmp_path / "replay.json")])
    assert res.exit_code == 0, res.output
    assert seen["forecaster_kwargs"]["short_history"] == "skip"
