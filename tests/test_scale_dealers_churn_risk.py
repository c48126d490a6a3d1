"""The dealer ranking's churn risk (``dealerml score dealers``, the dealers backtest and the
service's dealer slot) reads only the churn probability, so it must not pay for the per-account
feature contributions and reason sentences of ``score_accounts`` (a fifth of `score dealers` on a
4,000-dealer book, BENCHMARKS "Big synthetic book, main flows"). The probabilities stay those of
``dealerml score churn``. The session synthetic network, a small churn model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.churn_backtest import ChurnSettings, score_accounts
from training.dealers_backtest import _score_churn, backtest_churn_risk

CUTOFF = pd.Timestamp("2023-12-01")
SMALL_CHURN = {"n_train_cutoffs": 2, "model": {"n_estimators": 40}}


@pytest.fixture(scope="module")
def churn_model(synthetic_book):
    _, _, fit = backtest_churn_risk(synthetic_book, CUTOFF, ChurnSettings(**SMALL_CHURN), seed=0)
    assert fit is not None
    return fit["model"]


def _counting(monkeypatch, model):
    import models.reasons as reasons

    calls = {"contributions": 0, "reason_texts": 0}
    real_contrib, real_texts = model.contributions, reasons.reason_texts

    def contributions(X):
        calls["contributions"] += 1
        return real_contrib(X)

    def reason_texts(*a, **kw):
        calls["reason_texts"] += 1
        return real_texts(*a, **kw)

    monkeypatch.setattr(model, "contributions", contributions)
    monkeypatch.setattr(reasons, "reason_texts", reason_texts)
    return calls


def test_dealer_churn_risk_skips_contributions_and_reasons(synthetic_book, churn_model, monkeypatch):
    calls = _counting(monkeypatch, churn_model)
    risk = _score_churn(synthetic_book, ChurnSettings(**SMALL_CHURN), CUTOFF, churn_model)
    assert len(risk) > 50
    assert calls == {"contributions": 0, "reason_texts": 0}


def test_dealer_churn_risk_equals_the_churn_scores(synthetic_book, churn_model):
    s = ChurnSettings(**SMALL_CHURN)
    full = score_accounts(synthetic_book, churn_model, s, CUTOFF, model_version="x")
    risk = _score_churn(synthetic_book, s, CUTOFF, churn_model)
    assert list(risk.index) == list(full["account_id"])
    np.testing.assert_array_equal(risk.to_numpy(), full["probability"].to_numpy(dtype=float))
    # without reasons every other column is the same, the reasons empty
    bare = score_accounts(synthetic_book, churn_model, s, CUTOFF, model_version="x", reasons=False)
    same = [c for c in full.columns if not c.startswith("reason_") and c != "scored_at"]
    pd.testing.assert_frame_equal(bare[same], full[same])
    assert (bare[["reason_1", "reason_2", "reason_3"]] == "").all().all()
    assert (full["reason_1"] != "").any()
