"""The dealers backtest ranks with the churn risk scoring serves: a churn model fitted on labels
that end by the backtest cutoff, scored as of the cutoff; BG/NBD risk outside the churn lookback,
and for every account (said in the JSON and the CLI output) when no churn model fits before the
cutoff. The session synthetic network (300 accounts, 2022-01-01 .. 2024-06-30), small models.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_config
from typer.testing import CliRunner

from training.churn_backtest import ChurnSettings, score_accounts
from training.dealers_backtest import backtest_churn_risk, evaluate, load_settings, run_backtest

CUTOFF = pd.Timestamp("2023-12-01")
SMALL_DEALERS = {"horizon_days": 182, "train": {"n_cutoffs": 2, "step_days": 60, "n_estimators": 40, "num_leaves": 7}}
SMALL_CHURN = {"n_train_cutoffs": 2, "model": {"n_estimators": 40}}


@pytest.fixture(scope="module")
def spied_backtest(synthetic_book):
    """run_backtest at CUTOFF, with every churn label window it builds recorded."""
    import features.labels as labels

    seen: list[tuple[pd.Timestamp, int]] = []
    real = labels.churn_labels

    def spy(order_lines, *, cutoff, horizon_days=90, **kw):
        seen.append((pd.Timestamp(cutoff), int(horizon_days)))
        return real(order_lines, cutoff=cutoff, horizon_days=horizon_days, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(labels, "churn_labels", spy)
    try:
        res = run_backtest(synthetic_book, cutoff=CUTOFF, settings=load_settings(SMALL_DEALERS), seed=0,
                           churn=ChurnSettings(**SMALL_CHURN))
    finally:
        mp.undo()
    return res, seen


def test_no_churn_label_window_reaches_past_the_cutoff(spied_backtest):
    res, seen = spied_backtest
    setup = res["setup"]
    assert setup["churn_source"] == "churn_model" and setup["churn_fallback_reason"] is None
    # 2 training snapshots + the calibration snapshot, every label window [c, c + H) ends by the cutoff
    assert len(seen) == 3
    ends = [c + pd.Timedelta(days=h) for c, h in seen]
    assert max(ends) <= CUTOFF
    # the calibration window is the last one before the cutoff: [cutoff - 90, cutoff)
    assert (CUTOFF - pd.Timedelta(days=90), 90) in seen
    assert setup["churn_calibration_cutoff"] == "2023-09-02" and setup["churn_label_windows_end_by"] == "2023-12-01"
    fit = res["fitted"]["churn"]
    assert fit["train"]["label_end"].max() <= pd.Timestamp(setup["churn_calibration_cutoff"])
    assert (fit["calibration"]["label_end"] == CUTOFF).all()
    assert setup["churn_train_cutoffs"] == sorted(str(c.date()) for c, h in seen if c + pd.Timedelta(days=h) < CUTOFF)


def test_churn_risk_does_not_see_the_outcome_window(synthetic_book):
    """Rewriting every order on or after the cutoff leaves the backtest's churn risk as it was."""
    s = ChurnSettings(**SMALL_CHURN)
    risk, setup, _ = backtest_churn_risk(synthetic_book, CUTOFF, s, seed=0)
    ol = synthetic_book.order_lines.copy()
    future = ol["order_date"] >= CUTOFF
    ol = ol.loc[~future | (np.arange(len(ol)) % 3 == 0)]  # two thirds of the future orders gone
    ol.loc[ol["order_date"] >= CUTOFF, "quantity"] *= 7
    other = dataclasses.replace(synthetic_book, order_lines=ol)
    risk2, setup2, _ = backtest_churn_risk(other, CUTOFF, s, seed=0)
    assert future.sum() > 1000 and setup2 == setup
    pd.testing.assert_series_equal(risk.sort_index(), risk2.sort_index())


def test_final_ranking_uses_the_churn_models_risk(spied_backtest, synthetic_book):
    res, _ = spied_backtest
    t = res["table"]
    model = res["fitted"]["churn"]["model"]
    scored = score_accounts(synthetic_book, model, ChurnSettings(**SMALL_CHURN), CUTOFF, model_version="t")
    p = scored.set_index("account_id")["probability"]
    from_model = t["churn_source"] == "churn_model"
    # every account the churn model scores takes its probability; the rest keep BG/NBD
    assert set(t.index[from_model]) == set(p.index) & set(t.index) and from_model.mean() > 0.5
    assert np.abs(t.loc[from_model, "churn_risk"] - p.reindex(t.index[from_model])).max() < 1e-12
    assert res["setup"]["churn_risk_accounts"] == {"churn_model": int(from_model.sum()),
                                                   **({"bgnbd": int((~from_model).sum())} if (~from_model).any() else {})}
    bg = res["fitted"]["scorer"].score(res["fitted"]["snapshot"])  # BG/NBD risk for every account
    assert np.allclose(t.loc[~from_model, "churn_risk"], bg.loc[t.index[~from_model], "churn_risk"], atol=1e-12)
    # the final ranking is (1 - churn model risk) x (upside + w x headroom), and it is what is measured
    gross = t["upside"] + 0.25 * t["headroom"]
    assert np.allclose(t["potential"], (1 - t["churn_risk"]) * gross, rtol=1e-9, atol=1e-6)
    m = res["metrics"]
    assert m["dealer_potential"] == evaluate(t["expected"], t["potential"], t["last_period_value"], t["next_value"])
    y = t["next_value"].reindex(bg.index)
    assert m["dealer_potential_bgnbd_risk"] == evaluate(bg["expected"], bg["potential"], bg["last_period_value"], y)
    # the two rankings differ (on this small book their top deciles happen to hold the same accounts)
    assert not np.allclose(t["potential"], bg["potential"].reindex(t.index))
    assert list(t.index) != list(bg.index)
    # the forecast-only entries do not depend on churn risk
    assert m["lgbm_expected_value"]["spearman"] == m["dealer_potential"]["spearman"]


def test_fallback_when_the_book_is_too_short_for_the_churn_model(synthetic_config, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    p = write_config(synthetic_config, tmp_path / "cfg.yaml", dealers=SMALL_DEALERS, churn=SMALL_CHURN)
    out = tmp_path / "bt.json"
    from training.cli import app

    # 4 months of book: the churn model's calibration cutoff (cutoff - 90 days) leaves no
    # training cutoff with 30 days of history before it
    r = CliRunner().invoke(app, ["backtest", "dealers", "--config", str(p), "--cutoff", "2022-05-01",
                                 "--json", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    s = res["setup"]
    assert s["churn_source"] == "bgnbd"
    assert s["churn_fallback_reason"].startswith("no churn model fits before 2022-05-01 (no training cutoff fits")
    assert s["churn_risk_accounts"] == {"bgnbd": res["n_accounts"]}
    assert f"churn risk: {s['churn_fallback_reason']}" in r.output
    assert "1 - BG/NBD P(alive) for every account" in r.output
    m = res["metrics"]
    assert res["final"] == "dealer_potential" and m["dealer_potential_bgnbd_risk"] == m["dealer_potential"]
    assert {"last_period_value", "bgnbd_gg", "lgbm_expected_value"} <= set(m) and "oracle" in res
