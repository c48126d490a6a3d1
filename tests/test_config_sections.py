"""The serving: and tuning: sections list every bad key at once, each under its full key path with
a did-you-mean for an unknown key and the value received for a bad one, led by the config file
(training.config.section_errors, as demand: / churn: / dealers: do). serving: stopped at its first
bad key; tuning: showed pydantic's raw text. And churn.tiers' per-group alert cap
(capacity_by + capacity_per_group) is refused when the churn: section is validated, with the
section's other problems, not first when accounts are scored (QA pass).

Through the commands a user runs: `dealerml alerts` (reads serving.alerts_target),
`dealerml tune`, `dealerml experiment run`, `dealerml backtest churn`.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from training.cli import app
from training.errors import ConfigError

RAW = ("Extra inputs are not permitted", "validation error for", "errors.pydantic.dev", "Traceback")


def _config(tmp_path, **sections):
    days = pd.date_range("2023-01-01", periods=60, freq="D")
    pd.DataFrame({"order_id": [f"O{i}" for i in range(60)], "order_date": days, "account_id": "A0", "sku": "S1",
                  "quantity": 1.0, "unit_price": 10.0}).to_csv(tmp_path / "ol.csv", index=False)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"order_lines": {"path": "ol.csv"}}, **sections}))
    return cfg


def _run(tmp_path, monkeypatch, argv):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert not any(r in res.output for r in RAW), res.output
    return res.output


def test_serving_section_lists_every_bad_key(tmp_path, monkeypatch):
    cfg = _config(tmp_path, serving={"modles": ["churn"], "models": ["stock"], "churn_cutoff": "2024-13-01",
                                     "alerts_taget": "x.duckdb"})
    out = _run(tmp_path, monkeypatch, ["alerts", "--config", str(cfg), "--cutoff", "2023-02-01"])
    lines = out.strip().splitlines()
    assert lines[0].endswith(f"{cfg}: invalid 'serving' section"), out
    assert lines[1:] == [
        "  key 'serving.models.0': Input should be 'demand', 'churn' or 'dealers'; got 'stock'",
        "  key 'serving.churn_cutoff': Input should be a valid date or datetime, month value is outside expected "
        "range of 1-12; got '2024-13-01'",
        "  key 'serving.alerts_taget': unknown key; did you mean 'alerts_target'?",
        "  key 'serving.modles': unknown key; did you mean 'models'?",
    ]
    assert not (tmp_path / "home").exists()  # refused before anything was written


def test_tuning_section_lists_every_bad_key(tmp_path, monkeypatch):
    cfg = _config(tmp_path, tuning={"trails": 5, "workers": 0, "grace_period": 1, "storag": "x.log"})
    out = _run(tmp_path, monkeypatch, ["tune", "churn", "--config", str(cfg)])
    lines = out.strip().splitlines()
    assert lines[0].endswith(f"{cfg}: invalid 'tuning' section"), out
    assert lines[1:] == [
        "  key 'tuning.workers': Input should be greater than or equal to 1; got 0",
        "  key 'tuning.grace_period': Input should be greater than or equal to 2; got 1",
        "  key 'tuning.storag': unknown key; did you mean 'storage'?",
        "  key 'tuning.trails': unknown key; did you mean 'trials'?",
    ]


def test_experiment_names_its_file_and_every_bad_tuning_key(tmp_path, monkeypatch):
    from training.experiment import run_experiment

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _config(tmp_path)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "e", "data": {"order_lines": {"path": "ol.csv"}},
                                   "tuning": {"trials": 0, "sed": 3}, "steps": ["backtest_churn"]}))
    with pytest.raises(ConfigError) as err:
        run_experiment(exp, invoke=lambda argv: pytest.fail(f"a step ran: {argv}"))
    msg = str(err.value)
    assert msg.splitlines() == [
        f"{exp}: invalid 'tuning' section",
        "  key 'tuning.trials': Input should be greater than or equal to 1; got 0",
        "  key 'tuning.sed': unknown key; did you mean 'seed'?",
    ]
    assert "dealerml-exp-" not in msg and not (tmp_path / "home").exists()


def test_tuning_target_lists_every_unknown_key_with_the_one_meant(tmp_path):
    from training.config import load_config
    from training.tuning_config import target_options

    cfg = load_config(_config(tmp_path, tuning={"target": {"n_fold": 3, "churn": {"fold_step": 30, "zzz": 1}}}))
    with pytest.raises(ConfigError) as err:
        target_options(cfg, "churn", ("n_folds", "fold_step_days", "metric", "num_threads"))
    allowed = "allowed keys: fold_step_days, metric, n_folds, num_threads"
    assert str(err.value).splitlines() == [
        f"{cfg.config_path}: invalid 'tuning' section",
        f"  key 'tuning.target.n_fold': unknown key for the churn tuning target; did you mean 'n_folds'? {allowed} "
        "(or per capability under tuning.target.churn/demand)",
        f"  key 'tuning.target.churn.fold_step': unknown key for the churn tuning target; did you mean "
        f"'fold_step_days' or 'n_folds'? {allowed}",
        f"  key 'tuning.target.churn.zzz': unknown key for the churn tuning target; {allowed}",
    ]
    # the good ones pass through, the capability's own winning
    ok = load_config(_config(tmp_path, tuning={"target": {"n_folds": 3, "churn": {"n_folds": 2, "metric": "auc"}}}))
    assert target_options(ok, "churn", ("n_folds", "metric")) == {"n_folds": 2, "metric": "auc"}


@pytest.mark.parametrize(("tiers", "want"), [
    ({"capacity_per_group": 5},
     "  key 'churn.tiers': churn.tiers.capacity_per_group is 5 but churn.tiers.capacity_by is not set: name the "
     "column to cap by (e.g. capacity_by: account_manager, an accounts column), or remove capacity_per_group"),
    ({"capacity_by": "account_manager"},
     "  key 'churn.tiers': churn.tiers.capacity_by is 'account_manager' but churn.tiers.capacity_per_group is not "
     "set: give the most high-risk accounts (and so alerts) per account_manager and run, e.g. capacity_per_group: "
     "10, or remove capacity_by"),
    # accepted, the accounts over the call capacity with 0.5 <= p < 0.8 were tiered low without a word
    ({"high_probability": 0.5, "medium_probability": 0.8},
     "  key 'churn.tiers': churn.tiers.medium_probability (0.8) is above churn.tiers.high_probability (0.5); "
     "expected medium_probability <= high_probability (the medium tier is the step below high: accounts over the "
     "call capacity between the two would be tiered low); lower medium_probability or raise high_probability"),
    ({"medium_probability": 0.6},
     "  key 'churn.tiers': churn.tiers.medium_probability (0.6) is above churn.tiers.high_probability (0.5, the "
     "default); "
     "expected medium_probability <= high_probability (the medium tier is the step below high: accounts over the "
     "call capacity between the two would be tiered low); lower medium_probability or raise high_probability"),
])
def test_group_cap_with_one_key_fails_when_the_config_loads(tmp_path, monkeypatch, tiers, want):
    # `backtest churn` reads no account (and fits nothing) before the section is refused; the
    # section's other mistakes are listed with it, not after it is fixed
    cfg = _config(tmp_path, churn={"tiers": {**tiers, "hig_probability": 0.3}, "horizn_days": 30})
    out = _run(tmp_path, monkeypatch, ["backtest", "churn", "--config", str(cfg), "--json", str(tmp_path / "b.json")])
    lines = out.strip().splitlines()
    assert lines[0].endswith(f"{cfg}: invalid 'churn' section"), out
    assert sorted(lines[1:]) == sorted([
        want,
        "  key 'churn.tiers.hig_probability': unknown key; did you mean 'high_probability' or 'medium_probability'?",
        "  key 'churn.horizn_days': unknown key; did you mean 'horizon_days' or 'train_horizon_days'?",
    ])
    assert not (tmp_path / "b.json").exists()


def test_tier_settings_refuse_one_group_key_and_alerts_still_check_unvalidated_ones():
    from pydantic import ValidationError

    from training.alerts import assign_tiers
    from training.churn_backtest import TierSettings, churn_settings

    with pytest.raises(ValidationError, match=r"churn.tiers.capacity_per_group is 5 but churn.tiers.capacity_by "
                                              r"is not set"):
        TierSettings(capacity_per_group=5)
    with pytest.raises(ValidationError, match=r"churn.tiers.capacity_by is 'am' but churn.tiers.capacity_per_group"):
        TierSettings(capacity_by="am")
    # both keys, or neither: valid, and the cap works as before
    both = churn_settings({"tiers": {"capacity_by": "am", "capacity_per_group": 1, "contact_cost": 0.0}}).tiers
    tiers, _ = assign_tiers([0.9, 0.8, 0.7], [100.0, 100.0, 100.0], both, groups=["m1", "m1", "m2"])
    assert tiers.tolist() == ["high", "medium", "high"]
    # settings built without validation (model_copy(update=...)) are still refused when scoring
    half = TierSettings().model_copy(update={"capacity_per_group": 2})
    with pytest.raises(ConfigError, match=r"churn.tiers.capacity_per_group is 2 but churn.tiers.capacity_by"):
        assign_tiers([0.9], [100.0], half)


def test_tier_probabilities_out_of_order_are_refused_and_equal_ones_kept():
    """medium_probability above high_probability is refused when the settings are built, alone or
    beside another bad key; equal is a configuration (medium holds only the accounts over capacity)."""
    from pydantic import ValidationError

    from training.alerts import assign_tiers
    from training.churn_backtest import TierSettings, churn_settings

    with pytest.raises(ValidationError, match=r"churn.tiers.medium_probability \(0.9\) is above "
                                              r"churn.tiers.high_probability \(0.7\)"):
        TierSettings(high_probability=0.7, medium_probability=0.9)
    with pytest.raises(ConfigError) as err:
        churn_settings({"tiers": {"high_probability": 0.3, "medium_probability": 0.4, "save_rate": 2}})
    assert str(err.value).splitlines()[1:] == [
        "  key 'churn.tiers.save_rate': Input should be less than or equal to 1; got 2",
        "  key 'churn.tiers': churn.tiers.medium_probability (0.4) is above churn.tiers.high_probability (0.3); "
        "expected medium_probability <= high_probability (the medium tier is the step below high: accounts over "
        "the call capacity between the two would be tiered low); lower medium_probability or raise high_probability"]
    with pytest.raises(ValidationError, match=r"churn.tiers.medium_probability \(0.25, the default\) is above "
                                              r"churn.tiers.high_probability \(0.05\)"):
        TierSettings(high_probability=0.05)
    same = TierSettings(high_probability=0.5, medium_probability=0.5, contact_cost=0.0, capacity_per_run=1)
    tiers, _ = assign_tiers([0.9, 0.6, 0.4], [100.0, 100.0, 100.0], same)
    assert tiers.tolist() == ["high", "medium", "low"]
