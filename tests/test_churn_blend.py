"""The BG/NBD blend of ChurnModel: weight chosen on the calibration slice only, noise gate, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.bgnbd import BGNBD
from models.churn import ChurnModel


def _frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Accounts with a BG/NBD summary (purchase days) and one unrelated feature x1."""
    T = rng.uniform(60, 300, n).round()
    lam = rng.gamma(1.0, 1 / 20.0, n)                   # orders per day
    x = rng.poisson(lam * T)
    tx = np.where(x > 0, (rng.uniform(0.2, 1.0, n) * T).round().clip(1, T - 1), 0.0)
    return pd.DataFrame({"account_id": [f"A{i}" for i in range(n)], "x1": rng.normal(size=n),
                         "bgnbd_frequency": x, "bgnbd_recency": tx, "bgnbd_T": T})


def _bg_p(X: pd.DataFrame) -> np.ndarray:
    f = X[["bgnbd_frequency", "bgnbd_recency", "bgnbd_T"]].to_numpy(float)
    return BGNBD(penalizer=0.001).fit(f[:, 0], f[:, 1], f[:, 2]).prob_no_purchase(90.0, f[:, 0], f[:, 1], f[:, 2])


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_blend_weight_is_the_calibration_slice_argmax_and_survives_save_load(tmp_path):
    rng = np.random.default_rng(1)
    X = _frame(3000, rng)
    # training period: churn driven by x1 only, so the booster learns x1 ...
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-2.0 * X["x1"]))).astype(int)
    # ... later (calibration and test) churn follows BG/NBD's P(no order) instead
    Xc, Xt = _frame(3000, rng), _frame(3000, rng)
    yc = (rng.random(len(Xc)) < _bg_p(Xc)).astype(int)
    yt = (rng.random(len(Xt)) < _bg_p(Xt)).astype(int)
    m = ChurnModel(n_estimators=40, num_threads=1, blend="bgnbd", random_state=0).fit(X, y, Xc, yc)
    b = m.blend_
    # the test's own recomputation on the calibration slice: the weight is that slice's argmax
    zb, zg = _logit(m._raw_proba(Xc)), _logit(m.bgnbd_probability(Xc))
    grid = np.round(np.linspace(0, 1, 21), 2)
    aucs = [roc_auc_score(yc, w * zb + (1 - w) * zg) for w in grid]
    assert b["best_grid_weight"] == grid[int(np.argmax(aucs))]
    assert b["weight"] == b["best_grid_weight"] < 0.5 and b["bootstrap_share_better"] >= 0.9
    # BG/NBD inside the model was fitted on the calibration slice, not on the training rows
    f = Xc[["bgnbd_frequency", "bgnbd_recency", "bgnbd_T"]].to_numpy(float)
    ref = BGNBD(penalizer=0.001).fit(f[:, 0], f[:, 1], f[:, 2]).params_
    assert b["bgnbd_params"] == pytest.approx(ref, rel=1e-6)
    # so on the later test slice the blend ranks far better than the booster alone
    auc_blend = roc_auc_score(yt, m.churn_probability(Xt))
    auc_boost = roc_auc_score(yt, m._raw_proba(Xt))
    assert auc_blend > auc_boost + 0.1
    m.save(tmp_path / "m")
    m2 = ChurnModel.load(tmp_path / "m")
    assert m2.blend_["weight"] == b["weight"]
    np.testing.assert_allclose(m2.churn_probability(Xt), m.churn_probability(Xt), rtol=1e-12)


def test_blend_gate_keeps_the_booster_when_the_gain_is_noise():
    rng = np.random.default_rng(2)
    X, Xc = _frame(2000, rng), _frame(2000, rng)
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-2.0 * X["x1"]))).astype(int)
    # calibration period: nearly the training rule, plus a trace of BG/NBD's P(no order)
    u = rng.random(len(Xc))
    yc = (u < 1 / (1 + np.exp(-2.0 * Xc["x1"] - 0.1 * _logit(_bg_p(Xc))))).astype(int)
    m = ChurnModel(n_estimators=40, num_threads=1, blend="bgnbd", random_state=0).fit(X, y, Xc, yc)
    # a blend wins the grid on this slice, but by less than the bootstrap backs: booster alone
    assert m.blend_["best_grid_weight"] < 1.0
    assert m.blend_["weight"] == 1.0 and m.blend_["bootstrap_share_better"] < 0.9
    np.testing.assert_allclose(m.churn_probability(Xc),
                               ChurnModel(n_estimators=40, num_threads=1, random_state=0)
                               .fit(X, y, Xc, yc).churn_probability(Xc), rtol=1e-9)


def test_blend_needs_the_bgnbd_columns_and_a_calibration_slice():
    rng = np.random.default_rng(3)
    X = _frame(300, rng)
    y = (rng.random(len(X)) < 0.5).astype(int)
    with pytest.raises(ValueError, match="X_cal, y_cal"):
        ChurnModel(n_estimators=5, blend="bgnbd", calibration="none").fit(X, y)
    with pytest.raises(ValueError, match="bgnbd_T"):
        ChurnModel(n_estimators=5, blend="bgnbd").fit(X, y, X.drop(columns="bgnbd_T"), y)
    with pytest.raises(ValueError, match="blend must be"):
        ChurnModel(n_estimators=5, blend="mean").fit(X, y, X, y)


def test_shorter_training_horizon_labels_and_never_reaches_calibration(synthetic_book):
    """train_horizon_days=60: training cutoffs sit 60 days before calibration, labelled over
    60 days (an account ordering only on days 60..89 after the cutoff is *churned* there),
    and no training label window reaches the calibration cutoff."""
    from training.churn_backtest import ChurnSettings, _stack, churn_cutoffs, fit_churn, snapshot

    s = ChurnSettings(n_train_cutoffs=2, train_horizon_days=60, blend="none",
                      model={"n_estimators": 20, "num_threads": 1})
    cuts = churn_cutoffs("2024-04-02", s, first_date=synthetic_book.order_lines["order_date"].min())
    cal = cuts["calibration"]
    assert cuts["train_horizon_days"] == 60 and cuts["horizon_days"] == 90
    assert cuts["train"] == [cal - pd.Timedelta(days=90), cal - pd.Timedelta(days=60)]
    m, train, calf = fit_churn(synthetic_book, s, cuts, seed=0, num_threads=1)
    assert (train["label_end"] - train["cutoff"]).dt.days.eq(60).all()
    assert train["label_end"].max() == cal and (calf["label_end"] - calf["cutoff"]).dt.days.eq(90).all()
    # the training labels are the 60-day ones, not the 90-day ones of the same cutoff
    last = cuts["train"][-1]
    t60 = train[train["cutoff"] == last].set_index("account_id")["churned"]
    t90 = snapshot(synthetic_book, last, s, horizon_days=90)[0].set_index("account_id")["churned"]
    assert (t60 >= t90.reindex(t60.index)).all() and (t60 > t90.reindex(t60.index)).sum() > 0
    assert _stack(synthetic_book, [last], s, 60)["churned"].to_numpy().tolist() == t60.to_numpy().tolist()


def test_the_blend_auc_is_sklearns_and_ties_compare_exactly():
    """_fit_blend's AUC (ranks, U statistic) equals sklearn's roc_auc_score; two scores that rank the
    same labels alike have equal U, whatever float rounding a curve would give them."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from models.churn import _auc, _twice_u

    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.4).astype(int)
    s = np.round(rng.normal(size=2000) + 0.6 * y, 1)  # many ties
    assert abs(_auc(y, s) - roc_auc_score(y, s)) < 1e-12
    assert _twice_u(y, s) == _twice_u(y, 3.0 * s + 0.1)  # a monotone map: the same ranking, exactly
    assert _twice_u(y, s) == float(int(_twice_u(y, s)))  # a whole number
