"""training/dealers_backtest.py was ~575 lines, over the house limit of ~500 per module
(HOUSE_STYLE.md, practice 9): the churn risk the dealer ranking takes from the churn model lives
in training/dealers_churn_risk.py, and every name callers import from training.dealers_backtest
still comes from there (the same objects; a monkeypatch must target the module whose code makes
the call: training.dealers_churn_risk for the calls made inside it)."""

from __future__ import annotations

from pathlib import Path

import training.dealers_backtest as db

ROOT = Path(__file__).resolve().parents[1]
# training.dealers_backtest.__all__ before the split, and the private names tests import from it
BEFORE = ["DealersSettings", "load_settings", "top_decile_growth_capture", "top_decile_net_growth_share", "evaluate",
          "training_cutoffs", "scorer_from_settings", "fit_pipeline", "run_backtest", "promotion_evaluator",
          "backtest_churn_risk", "churn_model_risk", "load_churn_model"]
ALSO = ["TrainSettings", "LifecycleSettings", "evaluate_metrics", "CHURN_MODEL_NAME", "_score_churn",
        "_one_class_reason", "_too_short_reason"]


def test_dealers_modules_stay_under_the_house_limit():
    for rel in ("training/dealers_backtest.py", "training/dealers_churn_risk.py"):
        n = len((ROOT / rel).read_text(encoding="utf-8").splitlines())
        assert n <= 500, f"{rel}: {n} lines"


def test_every_name_still_imports_from_dealers_backtest():
    import training.dealers_churn_risk as cr

    assert set(BEFORE) <= set(db.__all__)
    for name in BEFORE + ALSO:
        assert hasattr(db, name), name
    for name in ("backtest_churn_risk", "churn_model_risk", "load_churn_model", "CHURN_MODEL_NAME", "_score_churn",
                 "_one_class_reason", "_too_short_reason"):
        assert getattr(db, name) is getattr(cr, name), name
    assert db.CHURN_MODEL_NAME == "dealerml-churn"
    # the churn-risk module does not import the backtest back (no cycle: it loads on its own)
    src = (ROOT / "training/dealers_churn_risk.py").read_text(encoding="utf-8")
    assert "from training.dealers_backtest" not in src and "import training.dealers_backtest" not in src
