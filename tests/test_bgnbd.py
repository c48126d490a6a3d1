"""BG/NBD: recovers parameters from data simulated by the BG/NBD process; predictions agree
with a direct simulation of the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.bgnbd import BGNBD, rfm_summary

TRUE = {"r": 0.8, "alpha": 20.0, "a": 1.6, "b": 6.0}  # time unit: days


def _simulate(n: int, T: float, params: dict, rng: np.random.Generator, horizon: float = 0.0):
    """Simulate BG/NBD accounts from first order at time 0 to T (and orders in (T, T+horizon])."""
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], size=n)
    p = rng.beta(params["a"], params["b"], size=n)
    x = np.zeros(n)
    tx = np.zeros(n)
    future = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t > T + horizon:
                break
            if t <= T:
                x[i] += 1
                tx[i] = t
            else:
                future[i] += 1
            if rng.random() < p[i]:  # drops out right after a repeat order
                break
    return x, tx, np.full(n, T), future


def test_recovers_known_parameters():
    rng = np.random.default_rng(7)
    x, tx, T, _ = _simulate(4000, 365.0, TRUE, rng)
    m = BGNBD().fit(x, tx, T)
    assert m.converged_
    for k, v in TRUE.items():
        assert m.params_[k] == pytest.approx(v, rel=0.30), (k, m.params_)
    # the fitted likelihood is at least that of the true parameters
    true_ll = BGNBD._loglik_terms(np.array([TRUE[k] for k in ("r", "alpha", "a", "b")]), x, tx, T).sum()
    assert m.loglik_ >= true_ll - 1e-6


def test_predictions_match_simulated_future():
    rng = np.random.default_rng(11)
    x, tx, T, future = _simulate(6000, 200.0, TRUE, rng, horizon=90.0)
    m = BGNBD()
    m.params_ = dict(TRUE)
    m.loglik_, m.converged_, m.n_accounts_ = 0.0, True, len(x)
    p_none = m.prob_no_purchase(90.0, x, tx, T)
    exp_n = m.expected_purchases(90.0, x, tx, T)
    # aggregate agreement with what the process actually did
    assert p_none.mean() == pytest.approx((future == 0).mean(), abs=0.02)
    assert exp_n.mean() == pytest.approx(future.mean(), rel=0.08)
    # closed form (a > 1) agrees with the numeric integral used when a <= 1
    idx = np.arange(50)
    assert np.allclose(m._expected_purchases_numeric(90.0, x[idx], tx[idx], T[idx]), exp_n[idx], rtol=2e-3)
    # monotone sanity: a long-silent account is less likely alive than a recent one
    pa = m.prob_alive([5, 5], [190, 20], [200, 200])
    assert pa[0] > 0.75 and pa[1] < 0.05
    assert np.all((p_none >= 0) & (p_none <= 1))


def test_unfitted_and_bad_input_errors(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        BGNBD().prob_alive([1], [1], [2])
    with pytest.raises(ValueError, match="recency must be <= T"):
        BGNBD().fit([1, 2], [5, 1], [3, 3])
    m = BGNBD(penalizer=0.001).fit([0, 1, 3, 2], [0, 10, 30, 5], [40, 40, 40, 40])
    m.save(tmp_path / "m")
    m2 = BGNBD.load(tmp_path / "m")
    assert m2.params_ == m.params_


def test_rfm_summary_uses_only_rows_before_cutoff():
    dates = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-11", "2024-02-01", "2024-03-05"])
    acc = ["a", "a", "a", "b", "a"]
    s = rfm_summary(dates, acc, cutoff="2024-03-01")
    assert s.loc["a"].tolist() == [1.0, 10.0, 60.0]
    assert s.loc["b"].tolist() == [0.0, 0.0, 29.0]


def test_expected_purchases_when_a_below_one_matches_simulation():
    params = {"r": 0.8, "alpha": 20.0, "a": 0.4, "b": 2.0}  # a <= 1: numeric path
    rng = np.random.default_rng(5)
    x, tx, T, future = _simulate(6000, 200.0, params, rng, horizon=90.0)
    m = BGNBD()
    m.params_ = dict(params)
    m.loglik_, m.converged_, m.n_accounts_ = 0.0, True, len(x)
    exp_n = m.expected_purchases(90.0, x, tx, T)
    assert exp_n.mean() == pytest.approx(future.mean(), rel=0.08)
    # and per frequency group (the posterior of p really depends on x), within 3 standard errors
    for lo, hi in ((0, 0), (1, 3), (4, 1000)):
        g = (x >= lo) & (x <= hi)
        se = future[g].std() / np.sqrt(g.sum())
        assert abs(exp_n[g].mean() - future[g].mean()) < 3 * se, (lo, hi)
