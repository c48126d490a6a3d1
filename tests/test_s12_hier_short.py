"""A demand.hierarchy run and the short-history fallback: the hierarchical model's bottom level skips
short series (models.demand_hier: they get no forecast and, in safety-stock, no policy), so the run that
registers it must not replay and log fallback policies for them, nor log short_history=fallback.

Small: the session's synthetic network, its 5 largest SKU x location series, SeasonalNaive + LightGBM
(10 trees), horizon 4, one window, a 4-period replay."""

from __future__ import annotations

from conftest import write_config


def test_a_hierarchy_run_replays_and_logs_short_series_as_its_model_serves_them(synthetic_config, tmp_path,
                                                                                 monkeypatch):
    import mlflow
    from typer.testing import CliRunner

    import training.demand_backtest as bt
    from training import tracking
    from training.cli import app

    demand = {"freq": "W", "horizon": 4, "windows": 1, "models": ["SeasonalNaive", "LightGBM"],
              "lgbm": {"n_estimators": 10}, "selection_windows": 1, "top_n": 5, "levels": ["sku", "location"],
              "hierarchy": True, "n_sims": 500, "lead_time_days": 7.0}
    cfg = write_config(synthetic_config, tmp_path / "hier.yaml", demand=demand)
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    seen = {}
    real = bt.run_inventory_replay

    def replay(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(bt, "run_inventory_replay", replay)
    res = CliRunner().invoke(app, ["train", "demand", "--config", str(cfg), "--holdout", "4"])
    assert res.exit_code == 0, res.output
    est, info = tracking.load_model("dealerml-demand", alias="champion")
    assert est.bottom_.short_history == "skip"  # what the registered model does with short series
    assert seen["forecaster_kwargs"]["short_history"] == "skip"  # the replay logged on its run: the same
    tracking.tracking_uri()
    assert mlflow.get_run(info.run_id).data.params["short_history"] == "skip"
