"""Planned known-future drivers: ``DemandForecaster.future_drivers`` / ``predict(X_df=...)`` and
``dealerml forecast --future FILE``. A promotion planned for one series lifts that series'
forecast and no other; no plan gives exactly the forecast of ``predict()``; the shortcut that
re-runs only the LightGBM member equals a full re-run of the last origin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support_demand import _promo_panel
from typer.testing import CliRunner

from models.demand import DemandForecaster
from training.cli import app

runner = CliRunner()
H = 4


@pytest.fixture(scope="module")
def fitted():
    est = DemandForecaster(freq="W", h=H, models=("AutoETS", "LightGBM"), exog=["promo"],
                           lgbm_params={"n_estimators": 60}, random_state=0)
    return est.fit(_promo_panel())


def test_template_is_the_last_value_and_no_plan_changes_nothing(fitted, tmp_path):
    tmpl = fitted.future_drivers()
    assert list(tmpl.columns) == ["unique_id", "ds", "promo"] and len(tmpl) == 10 * H
    assert (tmpl["promo"] == 0.0).all()
    assert tmpl["ds"].min() == fitted.last_ds_ + pd.Timedelta(weeks=1)
    base = fitted.predict()
    pd.testing.assert_frame_equal(fitted.predict(X_df=tmpl), base, rtol=1e-9)
    # a forecaster without drivers has no template
    plain = DemandForecaster(freq="W", h=2, models=("AutoETS",)).fit(_promo_panel(n=3).drop(columns="promo"))
    assert plain.future_drivers() is None


def test_warm_builds_the_plan_lookups_once_and_changes_no_answer(fitted):
    # the service warms the forecaster at start-up so the first plan does not pay for the lookups
    fitted._cache.pop("plan_index", None)
    before = fitted.predict(X_df=fitted.future_drivers())
    fitted._cache.pop("plan_index", None)
    assert fitted.warm() is fitted
    idx = fitted._cache["plan_index"]
    assert list(idx["uids"]) == [f"s{i:02d}" for i in range(10)]
    pd.testing.assert_frame_equal(fitted.predict(X_df=fitted.future_drivers()), before)
    assert fitted._cache["plan_index"] is idx  # built once
    assert DemandForecaster(freq="W", h=2).warm() is not None  # unfitted: nothing to build, no error


def test_planned_promotion_lifts_only_its_series(fitted, tmp_path):
    base = fitted.predict()
    plan = fitted.future_drivers()
    plan.loc[plan["unique_id"] == "s04", "promo"] = 1.0
    fc = fitted.predict(X_df=plan)
    lg, lg0 = fc.set_index(["unique_id", "ds"])["LightGBM"], base.set_index(["unique_id", "ds"])["LightGBM"]
    assert lg.loc["s04"].sum() > 1.8 * lg0.loc["s04"].sum()  # demand triples on promotion
    others = lg.index.get_level_values(0) != "s04"
    np.testing.assert_allclose(lg[others].to_numpy(), lg0[others].to_numpy(), rtol=1e-12)
    # the served forecast follows where it uses LightGBM / the Ensemble; intervals move with it
    row = fc[fc["unique_id"] == "s04"]
    if row["final_model"].iloc[0] in ("LightGBM", "Ensemble"):
        assert row["Final"].sum() > base.loc[base["unique_id"] == "s04", "Final"].sum()
    assert (fc["Final-lo-95"] <= fc["Final-lo-80"]).all() and (fc["Final-lo-80"] <= fc["Final"] + 1e-9).all()
    assert (fc["Final"] <= fc["Final-hi-80"] + 1e-9).all() and (fc["Final-hi-80"] <= fc["Final-hi-95"]).all()
    # the shortcut equals a full re-run of the last origin with those drivers
    full, _ = fitted._origin(fitted.panel_, fitted.panel_.Y.shape[1] - 1, H, dict(fitted._cache),
                             fitted._future_exog(plan))
    cols = ["unique_id", "ds", "LightGBM", "Ensemble", "Final", "Final-lo-80", "Final-hi-95"]
    pd.testing.assert_frame_equal(fc[cols].reset_index(drop=True), full[cols].reset_index(drop=True), rtol=1e-9)
    # and survives save / load (no member cache after loading)
    fitted.save(tmp_path / "m")
    back = DemandForecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(X_df=plan), fc, rtol=1e-9)


def _config(tmp_path) -> tuple:
    data = tmp_path / "s.csv"
    _promo_panel(n=6, T=70).to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: t\nseed: 1\ndata:\n  order_lines:\n    path: {data}\n"
        f"demand:\n  freq: W\n  horizon: {H}\n  windows: 1\n"
        f"  series: {{path: {data}, exog: {{promo: promo}}}}\n"
        "  models: [AutoETS, LightGBM]\n  lgbm: {n_estimators: 40}\n  selection_windows: 1\n"
    )
    return cfg, data


def test_forecast_cli_takes_a_plan_and_names_bad_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg, _ = _config(tmp_path)
    base, used = tmp_path / "base.csv", tmp_path / "drivers.csv"
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(base), "--drivers-out", str(used)])
    assert res.exit_code == 0, res.output
    assert "drivers ['promo']: each series' last known value carried forward" in res.output
    tmpl = pd.read_csv(used, dtype={"unique_id": str})
    assert len(tmpl) == 6 * H and (tmpl["promo"] == 0).all()

    plan = tmpl.copy()
    plan.loc[plan["unique_id"] == "s02", "promo"] = 1
    plan = plan[plan["unique_id"] == "s02"]  # only the planned series; the rest keep the default
    plan_file = tmp_path / "plan.csv"
    plan.to_csv(plan_file, index=False)
    out = tmp_path / "fc.csv"
    res = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(out), "--future", str(plan_file)])
    assert res.exit_code == 0, res.output
    assert f"planned from {plan_file} for 1 of 6 series ({H} values)" in res.output
    a, b = pd.read_csv(base).set_index(["unique_id", "ds"]), pd.read_csv(out).set_index(["unique_id", "ds"])
    assert b.loc["s02", "LightGBM"].sum() > 1.5 * a.loc["s02", "LightGBM"].sum()
    rest = b.index.get_level_values(0) != "s02"
    np.testing.assert_allclose(b.loc[rest, "LightGBM"], a.loc[rest, "LightGBM"], rtol=1e-9)

    def bad(frame, *expect):
        f = tmp_path / "bad.csv"
        frame.to_csv(f, index=False)
        r = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(tmp_path / "x.csv"), "--future", str(f)])
        assert r.exit_code != 0 and "Traceback" not in r.output, r.output
        for e in expect:
            assert e in r.output, r.output
        assert not (tmp_path / "x.csv").exists()

    first = str(pd.Timestamp(tmpl["ds"].iloc[0]).date())
    bad(plan.assign(unique_id="nope"), "unique_id(s) the forecaster does not know", "'nope'", "rows [1, 2, 3, 4]")
    bad(plan.assign(ds="2030-01-07"), "column ds has 4 date(s) outside the forecast periods", first)
    bad(plan.assign(promo=["1", "yes", "1", "1"]), "column promo is not a finite number in 1 row(s)", "rows [2]", "'yes'")
    bad(plan.rename(columns={"promo": "promotion"}), "column(s) ['promotion'] are not drivers", "['promo']")
    bad(pd.concat([plan, plan.head(1)]), "rows repeat a (unique_id, ds) pair", "rows [1, 5]")
    r = runner.invoke(app, ["forecast", "--config", str(cfg), "--out", str(out), "--future", str(tmp_path / "no.csv")])
    assert r.exit_code != 0 and "--future" in r.output and "file not found" in r.output


def test_a_forecaster_without_drivers_api_still_forecasts_and_refuses_a_plan(tmp_path):
    # an estimator without future_drivers (the hierarchical forecaster had none before it took plans,
    # tests/test_demand_hier_plan*.py): `forecast --alias` must still work without a plan
    from training.commands.demand_forecast import _predict_with_plan
    from training.errors import ConfigError

    class Reconciled:  # the only method the CLI calls on it
        def predict(self, h):
            return pd.DataFrame({"unique_id": ["total"] * h, "ds": pd.date_range("2025-01-06", periods=h, freq="W-MON"),
                                 "Final": 1.0})

    fc, note = _predict_with_plan(Reconciled(), 2, None, None)
    assert len(fc) == 2 and note == ""
    with pytest.raises(ConfigError, match="fitted without known-future drivers"):
        _predict_with_plan(Reconciled(), 2, tmp_path / "plan.csv", None)


def test_forecast_needs_a_config_only_to_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    r = runner.invoke(app, ["forecast", "--out", str(tmp_path / "fc.csv")])
    assert r.exit_code != 0 and "--config: give the experiment config to fit on (or --alias champion" in r.output
    # with --alias the config is not needed: what is missing then is the registered model
    r = runner.invoke(app, ["forecast", "--alias", "champion", "--out", str(tmp_path / "fc.csv")])
    assert r.exit_code != 0 and "dealerml-demand" in r.output and "champion" in r.output, r.output
    assert "--config" not in r.output


def test_the_fitted_booster_is_kept_and_a_plan_for_some_series_equals_the_whole_plan(fitted, tmp_path):
    """``predict`` with drivers re-runs the booster kept at fit (no refit), ``predict_plan``
    forecasts only the series it is given, and both equal the refitting path of forecasters
    saved before the booster was kept."""
    import copy

    assert fitted.lgbm_ is not None and fitted.lgbm_["model"].booster_.num_trees() == 60
    plan = fitted.future_drivers()
    plan.loc[(plan["unique_id"] == "s04") & (plan["ds"] > plan["ds"].min()), "promo"] = 1.0
    plan.loc[plan["unique_id"] == "s07", "promo"] = 1.0
    whole = fitted.predict(X_df=plan)
    # an older forecaster without the kept member refits it: the same numbers
    old = copy.copy(fitted)
    old.lgbm_ = None
    pd.testing.assert_frame_equal(old.predict(X_df=plan), whole, rtol=1e-9)
    # a plan for two series: only their rows, in the plan's order, equal to the whole plan's rows
    some = plan[plan["unique_id"].isin(["s07", "s04"])].sort_values(["unique_id", "ds"], ascending=[False, True])
    part = fitted.predict_plan(some)
    assert part["unique_id"].drop_duplicates().tolist() == ["s07", "s04"]
    want = whole.set_index(["unique_id", "ds"]).loc[part.set_index(["unique_id", "ds"]).index].reset_index()
    pd.testing.assert_frame_equal(part, want, rtol=1e-9)
    pd.testing.assert_frame_equal(old.predict_plan(some), part, rtol=1e-9)
    # the first period of s04 is not promoted, the later ones are: its LightGBM forecast rises after it
    s04 = part[part["unique_id"] == "s04"]["LightGBM"].to_numpy()
    base = fitted.predict().query("unique_id == 's04'")["LightGBM"].to_numpy()
    assert s04[0] == pytest.approx(base[0], rel=1e-12) and (s04[1:] > 1.5 * base[1:]).all()
    # shorter horizon and fewer levels, as predict
    short = fitted.predict_plan(some, h=2, level=[80])
    assert len(short) == 4 and not any(c.endswith("-95") for c in short.columns)
    # kept through save / load
    fitted.save(tmp_path / "k")
    back = DemandForecaster.load(tmp_path / "k")
    assert back.lgbm_ is not None
    pd.testing.assert_frame_equal(back.predict_plan(some), part, rtol=1e-9)


def test_a_bad_plan_names_what_is_wrong(fitted):
    plan = fitted.future_drivers()
    one = plan[plan["unique_id"] == "s01"]
    with pytest.raises(ValueError, match=r"lacks finite values for 1 .*s01 at"):
        fitted.predict_plan(one.iloc[:-1])
    with pytest.raises(ValueError, match=r"more than one row"):
        fitted.predict_plan(pd.concat([one, one.iloc[:1]]))
    with pytest.raises(ValueError, match=r"without a forecast, e.g. \['nope'\]"):
        fitted.predict_plan(one.assign(unique_id="nope"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['promo'\]"):
        fitted.predict_plan(one.drop(columns="promo"))
    with pytest.raises(ValueError, match=r"lacks finite values"):
        fitted.predict_plan(one.assign(promo=np.inf))


def test_a_plan_with_median_recentring_takes_the_full_path():
    est = DemandForecaster(freq="W", h=H, models=("AutoETS", "LightGBM"), exog=["promo"], selection="class+median",
                           lgbm_params={"n_estimators": 30}, random_state=0).fit(_promo_panel(n=6))
    plan = est.future_drivers()
    plan.loc[plan["unique_id"] == "s02", "promo"] = 1.0
    whole = est.predict(X_df=plan)
    part = est.predict_plan(plan[plan["unique_id"].isin(["s02", "s05"])])
    want = whole[whole["unique_id"].isin(["s02", "s05"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, want, rtol=1e-9)
    assert part.query("unique_id == 's02'")["LightGBM"].sum() > est.predict().query("unique_id == 's02'")["LightGBM"].sum()


def test_the_registered_model_takes_a_plan_through_mlflow_pyfunc(tmp_path, monkeypatch, recwarn):
    """``train demand`` logs a signature with optional ``ds`` + driver columns, so the plain
    ``mlflow.pyfunc`` model answers both ``{unique_id, h}`` and a plan, with predict_plan's numbers."""
    import mlflow.pyfunc

    from training import tracking

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg, _ = _config(tmp_path)
    res = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay"])
    assert res.exit_code == 0, res.output
    # MLflow's hint that the integer h of the inferred inputs cannot hold missing values was printed to every
    # train demand, about inputs the declared signature below replaces
    assert not [w for w in recwarn if "Inferred schema contains integer" in str(w.message)]
    tracking.tracking_uri()
    pyf = mlflow.pyfunc.load_model("models:/dealerml-demand@champion")
    sig = {c.name: (c.required, c.type.name) for c in pyf.metadata.signature.inputs.inputs}
    assert sig == {"unique_id": (False, "string"), "h": (False, "long"), "ds": (False, "datetime"),
                   "promo": (False, "double")}
    plain = pyf.predict(pd.DataFrame({"unique_id": ["s02"], "h": [2]}))
    assert plain["unique_id"].tolist() == ["s02", "s02"]
    est, _ = tracking.load_model("dealerml-demand")
    plan = est.future_drivers().query("unique_id == 's02'").assign(promo=1.0)
    got = pyf.predict(plan.assign(h=H))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), est.predict_plan(plan), check_dtype=False, rtol=1e-9)
    assert got["LightGBM"].sum() > 1.5 * est.predict().query("unique_id == 's02'")["LightGBM"].sum()
    with pytest.raises(Exception, match=r"unique_id, ds and \['promo'\]"):
        pyf.predict(plan.assign(ds=pd.NaT))


def test_the_service_names_the_periods_around_a_plan_date_between_them(fitted):
    """A /forecast plan row dated inside a forecast week (the Tuesday of the week dated by its Monday) was
    a 422 giving only the first and last period, so a planner had to guess how the periods are dated."""
    import json
    from types import SimpleNamespace

    from serving.demand import DemandBackend
    from serving.errors import BadRequest
    from serving.schemas import ForecastRequest, SafetyStockRequest

    cfg = SimpleNamespace(demand={"freq": "W", "lead_time_days": 7.0}, config_path=None, name="plan", seed=0)
    backend = DemandBackend.build(fitted, SimpleNamespace(name="dealerml-demand", version="1"), None, cfg)
    d = backend.date_strings
    span = f"the champion forecasts {d[0]} .. {d[-1]} (W)"
    inside = (pd.Timestamp(d[1]) + pd.Timedelta(days=1)).date().isoformat()
    before = (pd.Timestamp(d[0]) - pd.Timedelta(days=1)).date().isoformat()
    body = {"series_ids": ["s01"], "drivers": [{"unique_id": "s01", "ds": inside, "promo": 1.0},
                                               {"unique_id": "s01", "ds": before, "promo": 1.0}]}
    for request, answer in ((ForecastRequest, backend.forecast), (SafetyStockRequest, backend.safety_stock)):
        with pytest.raises(BadRequest) as err:
            answer(request.model_validate_json(json.dumps(body)))
        assert str(err.value) == (
            f"2 bad drivers row(s): drivers[0] (s01, {inside}): {inside} is not a forecast period; it lies between "
            f"the periods dated {d[1]} and {d[2]}, and a plan row gives a period's own date; {span}; "
            f"drivers[1] (s01, {before}): {before} is not a forecast period; {span}")


def test_a_plan_row_after_the_horizon_says_whether_the_horizon_was_sent():
    """A request that left horizon out (8 periods of a 10-period champion) and planned the 9th period was
    told it is 'after the requested horizon', which it never sent, and not how far a horizon may go."""
    import json
    from types import SimpleNamespace

    from serving.demand import DemandBackend
    from serving.errors import BadRequest
    from serving.schemas import ForecastRequest

    est = DemandForecaster(freq="W", h=10, models=("SeasonalNaive", "LightGBM"), exog=["promo"],
                           lgbm_params={"n_estimators": 20}, random_state=0).fit(_promo_panel(n=3))
    cfg = SimpleNamespace(demand={"freq": "W", "lead_time_days": 7.0}, config_path=None, name="plan", seed=0)
    backend = DemandBackend.build(est, SimpleNamespace(name="dealerml-demand", version="1"), None, cfg)
    d = backend.date_strings
    row = {"unique_id": "s01", "ds": d[8], "promo": 1.0}
    said = {}
    for horizon in (None, 3):
        body = {"series_ids": ["s01"], "drivers": [row], **({} if horizon is None else {"horizon": horizon})}
        with pytest.raises(BadRequest) as err:
            backend.forecast(ForecastRequest.model_validate_json(json.dumps(body)))
        said[horizon] = str(err.value)
    assert said[None] == (f"1 bad drivers row(s): drivers[0] (s01, {d[8]}): {d[8]} is after the 8 periods answered "
                          f"when horizon is left out (its last period is {d[7]}); send a horizon up to 10 to plan it")
    assert said[3] == (f"1 bad drivers row(s): drivers[0] (s01, {d[8]}): {d[8]} is after the requested horizon of 3 "
                       f"periods (its last period is {d[2]}); send a horizon up to 10 to plan it")
    ok = backend.forecast(ForecastRequest.model_validate_json(json.dumps({"series_ids": ["s01"], "horizon": 9,
                                                                          "drivers": [row]})))
    assert ok["series"][0]["forecast"][8]["drivers"] == {"promo": 1.0}
