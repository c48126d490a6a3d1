"""A plan of drivers (``predict_plan``, the service's ``drivers``) under which the chosen member has
no forecast: the series falls back along its ranking exactly as a full re-run of the last origin
(``fit`` / ``predict``), or is not forecast with why; and a series served by a fallback member
gets a band calibrated on that member's errors, not on the chosen member's.

The LightGBM member is made to give no forecast for a series whose planned promo is 7 in every
period (``_nan_when_promo_7``); ``s03`` carries a 7 from its last period (so its LightGBM has no
forecast at fit), ``s04`` has no statsforecast member at fit (so nothing else can serve it)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from _support_demand import _promo_panel

from models.demand import DemandForecaster
from models.demand_conformal import apply_conformal
from models.demand_lgbm import GlobalLGBM
from models.demand_members import _MemberRuns

H = 4
BANDS = [f"Final-{s}-{lv}" for lv in (80, 95) for s in ("lo", "hi")]
_real_predict = GlobalLGBM.predict


def _nan_when_promo_7(self, Y, future, X_future=None, rows=None):
    out = _real_predict(self, Y, future, X_future, rows)
    if X_future is not None:
        out[(X_future[:, :, 0] == 7.0).all(axis=1)] = np.nan
    return out


def _no_stat_for_s04(mp: pytest.MonkeyPatch, last: int) -> None:
    """AutoETS and CrostonSBA (so the Ensemble) give no forecast for s04 from cutoff index ``last``."""
    real_members = _MemberRuns._members_at

    def patched(self, panel, c, h, *a, **k):
        out = real_members(self, panel, c, h, *a, **k)
        if c == last and len(out):
            out.loc[out["unique_id"] == "s04", ["AutoETS", "CrostonSBA", "Ensemble"]] = np.nan
        return out

    mp.setattr(_MemberRuns, "_members_at", patched)


def _fit(selection: str) -> DemandForecaster:
    """The forecaster of these tests (with LightGBM's forecasts patched by the caller)."""
    df = _promo_panel(n=6, T=60)
    df.loc[(df["unique_id"] == "s03") & (df["ds"] == df["ds"].max()), "promo"] = 7.0
    with pytest.MonkeyPatch.context() as fit_only:
        _no_stat_for_s04(fit_only, df["ds"].nunique() - 1)
        return DemandForecaster(freq="W", h=H, models=("AutoETS", "CrostonSBA", "LightGBM"), exog=["promo"],
                                selection=selection, profile="fast", lgbm_params={"n_estimators": 30},
                                random_state=0).fit(df)


@pytest.fixture(scope="module")
def est():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GlobalLGBM, "predict", _nan_when_promo_7)
        yield _fit("global")


def _rows(fc: pd.DataFrame, u: str) -> pd.DataFrame:
    return fc[fc["unique_id"] == u].reset_index(drop=True)


def test_a_fallback_series_band_is_calibrated_on_the_member_that_serves_it(est):
    assert est.choice_.eq("LightGBM").all()
    rec = est.fallback_.set_index("unique_id")
    assert list(rec.index) == ["s03"] and rec.loc["s03", "served"] == "CrostonSBA"
    fc = est.predict()
    s03 = _rows(fc, "s03")
    assert (s03["final_model"] == "CrostonSBA").all() and np.allclose(s03["Final"], s03["CrostonSBA"])
    # the fast profile calibrates every member on its own errors: Final's band of s03 is CrostonSBA's,
    # not the band of LightGBM's errors that the other series' Final carries
    for c in BANDS:
        np.testing.assert_allclose(s03[c], s03[c.replace("Final", "CrostonSBA")], rtol=1e-12)
    s02 = _rows(fc, "s02")
    for c in BANDS:
        np.testing.assert_allclose(s02[c], s02[c.replace("Final", "LightGBM")], rtol=1e-12)


def test_a_plan_falls_back_as_a_full_rerun_of_the_last_origin(est):
    plan = est.future_drivers()
    plan.loc[plan["unique_id"] == "s01", "promo"] = 7.0  # LightGBM (chosen) has no forecast for s01
    plan.loc[plan["unique_id"] == "s02", "promo"] = 1.0
    plan.loc[plan["unique_id"] == "s03", "promo"] = 0.0  # its chosen LightGBM forecasts it again
    some = plan[plan["unique_id"].isin(["s01", "s02", "s03"])]
    got, rec = est.predict_plan(some, return_fallback=True)
    assert got["unique_id"].drop_duplicates().tolist() == ["s01", "s02", "s03"]
    assert got["final_model"].tolist() == ["CrostonSBA"] * H + ["LightGBM"] * 2 * H
    assert np.isfinite(got[["Final", *BANDS]].to_numpy()).all()
    # the same numbers as re-running every member at the last origin with the plan (fit's rule)
    p = est.panel_
    full, info = est._origin(p, p.Y.shape[1] - 1, H, dict(est._cache), est._future_exog(plan))
    want = full.set_index("unique_id").loc[["s01", "s02", "s03"]].reset_index()
    for c in ["Final", *BANDS, "LightGBM"]:
        np.testing.assert_allclose(got[c], want[c], rtol=1e-9, err_msg=c)
    assert got["final_model"].tolist() == want["final_model"].tolist()
    pd.testing.assert_frame_equal(est.predict(X_df=plan).query("unique_id in ['s01', 's02', 's03']")
                                  .reset_index(drop=True), got, rtol=1e-9)
    # s01's band is CrostonSBA's, as at fit for s03
    s01 = _rows(got, "s01")
    for c in BANDS:
        np.testing.assert_allclose(s01[c], _rows(est.predict(), "s01")[c.replace("Final", "CrostonSBA")], rtol=1e-12)
    # the record says who fell back under the plan, as fallback_ does at fit
    assert rec["unique_id"].tolist() == ["s01"] and rec["served"].tolist() == ["CrostonSBA"]
    assert rec["reason"].iloc[0].startswith("LightGBM (chosen by all series) has no forecast for 4 of 4 periods; "
                                            "served by CrostonSBA")
    assert set(info["fallback"]["unique_id"]) >= {"s01"}
    # no plan (the carried-forward drivers): exactly predict(), the fit's fallback of s03 included
    tmpl = est.future_drivers()
    pd.testing.assert_frame_equal(est.predict_plan(tmpl), est.predict(), rtol=1e-12)


def test_a_series_nothing_forecasts_under_a_plan_is_left_out_with_why(est):
    plan = est.future_drivers()
    plan.loc[plan["unique_id"] == "s04", "promo"] = 7.0  # its only member with a forecast was LightGBM
    some = plan[plan["unique_id"].isin(["s04", "s05"])]
    got, rec = est.predict_plan(some, return_fallback=True)
    assert got["unique_id"].unique().tolist() == ["s05"] and np.isfinite(got["Final"]).all()
    row = rec.set_index("unique_id").loc["s04"]
    assert row["served"] is None and row["reason"].startswith("not forecast: no candidate has a forecast for all 4")
    assert est.predict_plan(some[some["unique_id"] == "s04"]).empty
    assert "s04" not in set(est.predict(X_df=plan)["unique_id"])


def test_a_forecaster_saved_before_the_ranking_was_kept_falls_back_along_all_series_order(est):
    plan = est.future_drivers()
    plan.loc[plan["unique_id"] == "s01", "promo"] = 7.0
    one = plan[plan["unique_id"] == "s01"]
    new, new_rec = est.predict_plan(one, return_fallback=True)
    old = copy.copy(est)
    for attr in ("ranking_", "served_conformal_"):
        old.__dict__.pop(attr, None)
    got, rec = old.predict_plan(one, return_fallback=True)
    pd.testing.assert_frame_equal(got, new)  # all series' order; the members' own tables (no +median shift)
    pd.testing.assert_frame_equal(rec, new_rec)
    # no table of CrostonSBA's errors at all: the widest band of the kept ones, and the reason says so
    old.conformal_ = {m: t for m, t in est.conformal_.items() if m != "CrostonSBA"}
    got, rec = old.predict_plan(one, return_fallback=True)
    assert (got["final_model"] == "CrostonSBA").all() and np.isfinite(got[["Final", *BANDS]].to_numpy()).all()
    assert rec["reason"].iloc[0].endswith("no table of CrostonSBA's errors on the selection windows was kept, so its "
                                          "band is the widest of the kept bands for its demand class")
    scale = np.full(H, est.scale_["s01"])
    cls, step = np.full(H, est.classes_.set_index("unique_id").loc["s01", "demand_class"]), np.arange(1, H + 1)
    each = [apply_conformal(got["Final"].to_numpy(), scale, cls, step, t, [80, 95]) for t in old.conformal_.values()]
    for lv in (80, 95):  # per level the lowest lower and the highest upper bound of any kept table
        np.testing.assert_allclose(got[f"Final-lo-{lv}"], np.min([e[lv][0] for e in each], axis=0), rtol=1e-12)
        np.testing.assert_allclose(got[f"Final-hi-{lv}"], np.max([e[lv][1] for e in each], axis=0), rtol=1e-12)
    assert (got[BANDS].to_numpy() != new[BANDS].to_numpy()).any()


def test_the_service_answers_a_plan_with_the_fallback_member_or_a_422_saying_why(est):
    from serving.demand import DemandBackend
    from serving.errors import BadRequest
    from serving.schemas import ForecastRequest

    fc = est.predict().sort_values(["unique_id", "ds"])
    uids = fc["unique_id"].drop_duplicates().tolist()

    def grid(c):
        return fc[c].to_numpy().reshape(len(uids), H)

    backend = DemandBackend(model_name="m", model_version="m/1", freq="W", uids=uids, keys=None,
                            dates=pd.DatetimeIndex(sorted(fc["ds"].unique())), mean=grid("Final"),
                            bounds={lv: (grid(f"Final-lo-{lv}"), grid(f"Final-hi-{lv}")) for lv in (80, 95)},
                            last_observed=est.last_ds_, estimator=est,
                            members=fc.groupby("unique_id", sort=False)["final_model"].first().tolist())
    days = backend.date_strings

    def ask(plan: dict[str, float]):
        rows = [{"unique_id": u, "ds": d, "promo": v} for u, v in plan.items() for d in days]
        req = ForecastRequest.model_validate({"series_ids": list(plan), "horizon": H, "drivers": rows})
        return backend.forecast(req)

    out = ask({"s01": 7.0, "s03": 0.0})
    json.dumps(out, allow_nan=False)  # no NaN in the answer
    by = {s["unique_id"]: s for s in out["series"]}
    assert by["s01"]["model"] == "CrostonSBA" and by["s01"]["note"].startswith("LightGBM (chosen by all series)")
    assert by["s03"]["model"] == "LightGBM" and by["s03"]["note"] is None  # the fit's fallback note no longer applies
    want = est.predict_plan(pd.DataFrame({"unique_id": "s01", "ds": pd.to_datetime(days), "promo": 7.0}))
    assert [p["mean"] for p in by["s01"]["forecast"]] == pytest.approx(want["Final"].tolist(), rel=1e-12)
    unplanned = backend.forecast(ForecastRequest.model_validate({"series_ids": ["s03"], "horizon": H}))
    assert unplanned["series"][0]["model"] == "CrostonSBA" and unplanned["series"][0]["note"].startswith("LightGBM")
    with pytest.raises(BadRequest, match=r"1 planned series cannot be forecast under this plan \(s04: no candidate has a forecast for all 4"):
        ask({"s04": 7.0, "s05": 0.0})


def test_a_plan_with_median_recentring_falls_back_and_leaves_out_as_fit(monkeypatch):
    """The +median path re-runs the last origin: a planned series nothing forecasts was a KeyError (a 500
    in the service); it is left out with why, and a fallback series' band is its serving member's moved
    by Final's shift (not the chosen LightGBM's)."""
    monkeypatch.setattr(GlobalLGBM, "predict", _nan_when_promo_7)
    med = _fit("global+median")
    _no_stat_for_s04(monkeypatch, med.panel_.Y.shape[1] - 1)  # this path re-runs those members too
    plan = med.future_drivers()
    plan.loc[plan["unique_id"].isin(["s01", "s04"]), "promo"] = 7.0
    got, rec = med.predict_plan(plan[plan["unique_id"].isin(["s01", "s04", "s05"])], return_fallback=True)
    assert got["unique_id"].unique().tolist() == ["s01", "s05"]
    rec = rec.set_index("unique_id")
    assert rec.loc["s01", "served"] == "CrostonSBA" and rec.loc["s04", "served"] is None
    assert rec.loc["s04", "reason"].startswith("not forecast: no candidate has a forecast for all 4 periods")
    s01 = _rows(got, "s01")
    assert (s01["final_model"] == "CrostonSBA").all() and np.isfinite(s01[["Final", *BANDS]].to_numpy()).all()
    # not Final's table (LightGBM's errors): the band s05 (served by LightGBM) has about its point
    s05 = _rows(got, "s05")
    assert not np.allclose((s01["Final-hi-80"] - s01["Final"]) / med.scale_["s01"],
                           (s05["Final-hi-80"] - s05["Final"]) / med.scale_["s05"])
