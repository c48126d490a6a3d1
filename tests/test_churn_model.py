"""ChurnModel contract, calibration, time-ordered splits and metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.churn import ChurnModel, NotFittedError, apply_score_calibrator, fit_score_calibrator
from training.churn_backtest import (
    ChurnSettings,
    _stack,
    churn_cutoffs,
    churn_metrics,
    churn_settings,
    ece,
    fit_churn,
    snapshot,
)
from training.errors import ConfigError, DataError


def _frame(n: int, rng: np.random.Generator, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    seg = rng.choice(["a", "b", "c"], size=n)
    logit = 1.5 * x1 - 1.0 * x2 + np.where(seg == "a", 0.8, 0.0) - 1.0 + shift
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"account_id": [f"A{i}" for i in range(n)], "x1": x1, "x2": x2,
                      "channel_type": pd.Categorical(seg, categories=["a", "b", "c"])})
    return X, y


def test_metrics_hand_computed():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.05, 0.15, 0.6])
    m = churn_metrics(y, p)
    # top 10% = 1 account (p=0.9, churned): precision 1, lift 1 / 0.3
    assert m["precision_top10"] == 1.0 and m["lift_top10"] == pytest.approx(1 / 0.3, abs=1e-5)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-6)
    # AUC: 21 positive/negative pairs, positives 0.9, 0.7, 0.6 beat 7, 6, 6 negatives
    assert m["auc"] == pytest.approx(19 / 21, abs=1e-6)
    # 10 equal-frequency bins of one account each: ECE = mean |y - p|
    assert ece(y, p, n_bins=10) == pytest.approx(np.mean(np.abs(y - p)))
    # one class only: AUC undefined, reported as None
    assert churn_metrics(np.zeros(5), np.linspace(0, 1, 5))["auc"] is None


@pytest.mark.parametrize("kind", ["isotonic", "sigmoid"])
def test_calibration_fixes_shifted_probabilities(kind):
    rng = np.random.default_rng(0)
    # the booster learns on a period where churn was rarer (shift -1.5 in log-odds) ...
    X, y = _frame(6000, rng, shift=-1.5)
    # ... and is calibrated and tested on later periods with the true rate
    Xc, yc = _frame(4000, rng)
    Xt, yt = _frame(4000, rng)
    raw = ChurnModel(n_estimators=80, calibration="none", num_threads=1).fit(X, y)
    cal = ChurnModel(n_estimators=80, calibration=kind, num_threads=1).fit(X, y, Xc, yc)
    e_raw = ece(yt, raw.churn_probability(Xt))
    e_cal = ece(yt, cal.churn_probability(Xt))
    assert e_raw > 0.08 and e_cal < 0.03 and e_cal < e_raw / 3
    # calibration is monotone: the ranking (AUC) is kept
    a_raw = churn_metrics(yt, raw.churn_probability(Xt))["auc"]
    a_cal = churn_metrics(yt, cal.churn_probability(Xt))["auc"]
    assert a_cal == pytest.approx(a_raw, abs=0.005 if kind == "isotonic" else 1e-6)


def test_score_calibrator_for_baselines():
    rng = np.random.default_rng(1)
    s = rng.random(5000)
    y = (rng.random(5000) < s**3).astype(float)  # a monotone but badly calibrated score
    cal = fit_score_calibrator("isotonic", s[:2500], y[:2500])
    assert ece(y[2500:], apply_score_calibrator(cal, s[2500:])) < ece(y[2500:], s[2500:]) / 3


def test_estimator_contract_save_load_and_contributions(tmp_path):
    rng = np.random.default_rng(2)
    X, y = _frame(2000, rng)
    Xc, yc = _frame(1000, rng)
    m = ChurnModel(n_estimators=30, num_threads=1)
    assert m.get_params()["n_estimators"] == 30 and not hasattr(m, "booster_")
    with pytest.raises(NotFittedError, match="not fitted"):
        m.predict_proba(X)
    assert m.fit(X, y, Xc, yc) is m
    assert m.feature_names_ == ["x1", "x2", "channel_type"]
    P = m.predict_proba(X.head(50))
    assert P.shape == (50, 2) and np.allclose(P.sum(axis=1), 1)
    c = m.contributions(X.head(50))
    raw = m._raw_proba(X.head(50))
    # pred_contrib sums to the booster's log-odds
    assert np.allclose(c.sum(axis=1), np.log(raw / (1 - raw)), atol=1e-6)
    # categories unseen at fit time are treated as missing, not as a crash
    odd = X.head(3).assign(channel_type=pd.Categorical(["zzz", "a", None]))
    assert np.isfinite(m.churn_probability(odd)).all()
    m.save(tmp_path / "m")
    m2 = ChurnModel.load(tmp_path / "m")
    assert np.allclose(m2.churn_probability(X), m.churn_probability(X))
    with pytest.raises(ValueError, match="needs a later slice"):
        ChurnModel(calibration="isotonic").fit(X, y)
    with pytest.raises(ValueError, match="both classes"):
        ChurnModel(calibration="none").fit(X, np.zeros(len(X)))


def test_cutoffs_never_overlap():
    s = ChurnSettings(horizon_days=90, n_train_cutoffs=5, train_step_days=20)
    c = churn_cutoffs("2024-04-02", s, first_date="2022-01-01")
    assert c["calibration"] == pd.Timestamp("2024-01-03")
    assert c["train"][-1] == pd.Timestamp("2023-10-05") and len(c["train"]) == 5
    assert all(t + pd.Timedelta(days=90) <= c["calibration"] for t in c["train"])
    assert c["calibration"] + pd.Timedelta(days=90) <= c["test"]
    with pytest.raises(DataError, match="no training cutoff"):
        churn_cutoffs("2022-05-01", s, first_date="2022-01-01")
    with pytest.raises(ConfigError, match="churn.horizon_days"):
        churn_settings({"horizon_days": 0})


def test_training_never_sees_calibration_or_test_period(synthetic_book):
    """Changing every order on or after the calibration cutoff leaves the booster unchanged;
    changing orders on or after the test cutoff leaves the calibrated model unchanged."""
    s = ChurnSettings(n_train_cutoffs=3, model={"n_estimators": 40, "num_threads": 1})
    cuts = churn_cutoffs("2024-04-02", s, first_date=synthetic_book.order_lines["order_date"].min())
    m, train, cal = fit_churn(synthetic_book, s, cuts, seed=0, num_threads=1)
    assert train["label_end"].max() <= cuts["calibration"] and cal["label_end"].max() <= cuts["test"]
    assert set(train["cutoff"]) == set(cuts["train"])
    probe, _ = snapshot(synthetic_book, cuts["test"], s)

    class _Book:  # the same book with the future rewritten
        def __init__(self, ol):
            self.order_lines, self.accounts, self.service_events = ol, synthetic_book.accounts, synthetic_book.service_events

    ol = synthetic_book.order_lines
    after_cal = _Book(ol[ol["order_date"] < cuts["calibration"]])
    # the booster is fitted only on training snapshots: refit it on the truncated book
    t2 = _stack(after_cal, cuts["train"], s, 90)
    m_trunc = ChurnModel(**{**m.get_params(), "calibration": "none", "blend": "none"}).fit(t2, t2["churned"])
    assert np.array_equal(m_trunc._raw_proba(probe), m._raw_proba(probe))
    # the calibrated model is unchanged when everything from the test cutoff on is rewritten
    future = ol[ol["order_date"] >= cuts["test"]].copy()
    future["account_id"] = future["account_id"].iloc[::-1].to_numpy()  # scramble who ordered
    fake = _Book(pd.concat([ol[ol["order_date"] < cuts["test"]], future.iloc[: len(future) // 3]]))
    m3, _, _ = fit_churn(fake, s, cuts, seed=0, num_threads=1)
    assert np.array_equal(m3.churn_probability(probe), m.churn_probability(probe))
