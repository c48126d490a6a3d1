"""``dealerml experiment run``: steps dispatch to the real commands, nest under one MLflow
run, and re-running the same config on the same data with the same seed gives the same
metrics (the real churn backtest on a small synthetic network plus a tiny tuning study)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _support_experiment import _exp
from _support_tuning import _client, _env

from training.errors import ConfigError


def test_parse_steps_names_the_bad_entry():
    from training.experiment import parse_steps

    steps = parse_steps(["backtest_churn", {"tune_demand": {"trials": 5}}])
    assert [(s.verb, s.capability, s.options) for s in steps] == [
        ("backtest", "churn", {}),
        ("tune", "demand", {"trials": 5}),
    ]
    with pytest.raises(ConfigError, match=r"x.yaml: key 'steps\[1\]': unknown step 'fly_churn'"):
        parse_steps(["train_churn", "fly_churn"], file="x.yaml")
    with pytest.raises(ConfigError, match="non-empty list"):
        parse_steps(None, file="x.yaml")


def test_step_argv(tmp_path):
    from training.experiment import Step

    s = Step("tune_churn", "tune", "churn", {"trials": 4, "no_register": True, "storage": None})
    assert s.argv(tmp_path / "c.yaml", tmp_path) == [
        "tune", "churn", "--config", str(tmp_path / "c.yaml"), "--trials", "4", "--no-register",
        "--json", str(tmp_path / "tune_churn.json"),
    ]


def test_step_argv_switch_false_turns_a_default_on_switch_off(tmp_path):
    """`train_churn: {register: false}` was dropped from the argv, so --register kept its default and the
    experiment registered a version it was told not to; false is now the switch's --no- form."""
    from training.experiment import Step

    cfg = tmp_path / "c.yaml"
    head = ["train", "churn", "--config", str(cfg)]
    assert Step("train_churn", "train", "churn", {"register": False}).argv(cfg, tmp_path) == [*head, "--no-register"]
    assert Step("train_churn", "train", "churn", {"no_register": False}).argv(cfg, tmp_path) == [*head, "--register"]
    assert Step("train_demand", "train", "demand", {"replay": False}).argv(cfg, tmp_path) == [
        "train", "demand", "--config", str(cfg), "--no-replay"]
    # a plain flag is off by default: false leaves it out
    assert Step("promote_churn", "promote", "churn", {"force": False}).argv(cfg, tmp_path) == [
        "promote", "churn", "--config", str(cfg), "--json", str(tmp_path / "promote_churn.json")]


def test_step_option_given_a_mapping_is_refused_before_any_step(tmp_path):
    """`backtest_churn: {json: {a: 1}}` passed the check (str() of the mapping is a path), the step wrote a
    file named "{'a': 1}" in the working directory and the runner then died on Path(dict) with a traceback."""
    from training.experiment import Step, check_step

    with pytest.raises(ConfigError) as err:
        check_step(Step("backtest_churn", "backtest", "churn", {"json": {"a": 1}}), 0, file="x.yaml")
    assert str(err.value) == ("x.yaml: key 'steps[0].backtest_churn.json': --json takes a value such as a number, "
                              "a date or a path; got {'a': 1}")
    with pytest.raises(ConfigError, match=r"steps\[1\]\.score_churn\.cutoff': --cutoff takes a value such as"):
        check_step(Step("score_churn", "score", "churn", {"cutoff": {"2024-01-01": None}, "out": "t"}), 1,
                   file="x.yaml")


def test_a_score_steps_bad_out_is_refused_before_the_first_step(tmp_path):
    """`score_churn: {out: "bad name"}` (or an --out in a folder no one may write in) was found only when the
    step ran, after the backtests and trainings before it had run and registered their versions."""
    from training.experiment import _check_step_inputs, parse_steps

    steps = parse_steps(["train_churn", {"score_churn": {"cutoff": "2024-10-01", "out": "bad name"}}])
    with pytest.raises(ConfigError) as err:
        _check_step_inputs(None, steps, file="x.yaml")
    assert str(err.value).startswith("x.yaml: key 'steps[1].score_churn': --out 'bad name': neither a score file "
                                     "nor a table name")
    steps = parse_steps([{"score_dealers": {"cutoff": "2024-10-01", "out": "/proc/1/x.csv"}}])
    with pytest.raises(ConfigError) as err:
        _check_step_inputs(None, steps, file="x.yaml")
    assert str(err.value) == ("x.yaml: key 'steps[0].score_dealers': --out /proc/1/x.csv: no permission to "
                              "write in the folder /proc/1")
    ok = parse_steps([{"score_churn": {"cutoff": "2024-10-01", "out": "t", "target": str(tmp_path / "s.duckdb")}},
                      {"score_dealers": {"cutoff": "2024-10-01", "out": f"{tmp_path / 's.duckdb'}#d"}}])
    _check_step_inputs(None, ok, file="x.yaml")
    assert list(tmp_path.iterdir()) == []  # checked, nothing created


def test_a_name_that_leaves_the_output_folder_is_refused(tmp_path, monkeypatch):
    """The outputs go to $DEALERML_HOME/experiments/<name>/<run id>/: `name: ../../outside` wrote the effective
    config and the step reports outside the home (and logged a parent run) before any step ran."""
    from training.experiment import run_experiment

    home = tmp_path / "home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "lines.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-02,a,s,1,2\n")
    for name in ("../../outside", "a/b", ".."):
        exp = tmp_path / "exp.yaml"
        exp.write_text(f"name: '{name}'\ndata: {{order_lines: {{path: lines.csv}}}}\nsteps: [backtest_churn]\n")
        with pytest.raises(ConfigError) as err:
            run_experiment(exp, invoke=lambda argv: 0)
        assert str(err.value).startswith(f"{exp}: invalid experiment config\n  key 'name': the name is used for "), name
        assert str(err.value).endswith(f"; got {name!r}"), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml", "lines.csv"]  # no home, nothing outside it


def test_extends_merges_and_keeps_paths_relative_to_their_file(tmp_path):
    import yaml

    from training.config import load_config
    from training.experiment import _read_raw, effective_config

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "base.yaml").write_text(
        "name: base\nseed: 1\ndata:\n  order_lines: {path: orders.csv}\n"
        "churn: {horizon_days: 90, model: {n_estimators: 300, num_leaves: 15}}\n"
        "demand: {series: {path: ../series.parquet, columns: {ds: date}}}\n"
    )
    exp = tmp_path / "exp.yaml"
    exp.write_text("extends: base/base.yaml\nname: exp\nchurn: {model: {n_estimators: 50}}\nsteps: [train_churn]\n")
    (tmp_path / "run").mkdir()
    out, sources = effective_config(exp, _read_raw(exp), tmp_path / "run")
    merged = yaml.safe_load(out.read_text())
    assert "steps" not in merged and "extends" not in merged
    assert merged["churn"] == {"horizon_days": 90, "model": {"n_estimators": 50, "num_leaves": 15}}
    assert merged["data"]["order_lines"]["path"] == str(tmp_path / "base" / "orders.csv")
    assert merged["demand"]["series"] == {"path": str(tmp_path / "series.parquet"), "columns": {"ds": "date"}}
    assert sources == [exp, (tmp_path / "base" / "base.yaml").resolve()]
    cfg = load_config(out)
    assert cfg.name == "exp" and cfg.seed == 1


def _config(tmp_path, network) -> str:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"""
name: synthetic-exp
seed: 3
data:
  order_lines: {{path: {network}/order_lines.parquet}}
  accounts: {{path: {network}/accounts.csv}}
  service_events: {{path: {network}/service_events.csv}}
  as_of: '2024-12-31'
churn:
  horizon_days: 90
  n_train_cutoffs: 3
  model: {{n_estimators: 40, num_leaves: 7, min_child_samples: 10}}
tuning:
  n_startup_trials: 2
steps:
  - backtest_churn: {{threads: 1}}
  - tune_churn: {{target: "_support_tuning:tiny_target", trials: 3, no_register: true}}
""")
    return str(cfg)


@pytest.mark.slow
def test_experiment_rerun_gives_same_metrics_and_nests_runs(home, tmp_path, network):
    from training.experiment import run_experiment

    cfg = _config(tmp_path, network)
    first = run_experiment(cfg, log=lambda s: None)
    second = run_experiment(cfg, log=lambda s: None)
    assert first.run_id != second.run_id
    assert "backtest_churn.lightgbm.auc" in first.metrics and "tune_churn.best_value" in first.metrics
    assert 0.5 < first.metrics["backtest_churn.lightgbm.auc"] <= 1
    assert first.metrics == second.metrics  # bit for bit
    client = _client(home)
    parent = client.get_run(first.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["backtest_churn.lightgbm.auc"] == first.metrics["backtest_churn.lightgbm.auc"]
    assert {a.path for a in client.list_artifacts(first.run_id, "config")} >= {"config/exp.yaml"}
    # the tuning step's parent run (dealerml-tiny) hangs under the experiment run
    exp = client.get_experiment_by_name("dealerml-tiny")
    tune_runs = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{first.run_id}'")
    assert len(tune_runs) == 1 and tune_runs[0].data.tags["dealerml.step"] == "tune"


def test_failing_step_fails_the_experiment(home, tmp_path, network):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"""
name: bad
data:
  order_lines: {{path: {network}/order_lines.parquet}}
steps:
  - tune_churn: {{target: "no_such_module:factory", trials: 1}}
""")
    p = subprocess.run([sys.executable, "-c", "from training.cli import app; app(prog_name='dealerml')",
                        "experiment", "run", str(cfg)], env=_env(home), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "step tune_churn failed with exit code 2" in p.stderr
    assert "cannot import 'no_such_module:factory'" in p.stderr
    client = _client(home)
    exp = client.get_experiment_by_name("dealerml-experiment")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def _nothing_created(home) -> None:
    assert not (home / "experiments").exists()
    assert _client(home).get_experiment_by_name("dealerml-experiment") is None


def test_config_errors_name_the_experiment_file_and_key(home, tmp_path, network):
    from training.experiment import run_experiment

    calls = []
    exp = _exp(tmp_path, network, "extends: base.yaml\nname: e\nfoo: 1\nsteps: [backtest_churn]\n")
    with pytest.raises(ConfigError) as err:
        run_experiment(exp, invoke=calls.append, log=lambda s: None)
    msg = str(err.value)
    assert msg.startswith(f"{exp} (extends {tmp_path / 'base.yaml'}): invalid experiment config")
    assert "key 'foo': unknown key" in msg and "dealerml-exp-" not in msg
    exp = _exp(tmp_path, network, "extends: ../cfg/nope.yaml\nname: e\nsteps: [backtest_churn]\n")
    with pytest.raises(ConfigError) as err:
        run_experiment(exp, invoke=calls.append, log=lambda s: None)
    assert str(err.value).startswith(f"{exp}: key 'extends': config file not found: "
                                     f"{(tmp_path.parent / 'cfg' / 'nope.yaml').resolve()}")
    assert calls == []
    _nothing_created(home)


@pytest.mark.parametrize("body, expected", [
    ("steps: [backtest_churn, {train_churn: {bogus_option: 1}}]",
     "key 'steps[1].train_churn.bogus_option': 'dealerml train churn' has no option --bogus-option; its options: "),
    ("steps: [backtest_churn, {tune_churn: {trials: 0}}]",
     "key 'steps[1].tune_churn.trials': --trials 0: expected at least 1"),
    ("steps: [{backtest_churn: {horizon_days: abc}}]",
     "key 'steps[0].backtest_churn.horizon_days': --horizon-days 'abc': expected a whole number"),
    ("steps: [backtest_churn, {train_churn: {no_register: maybe}}]",
     "key 'steps[1].train_churn.no_register': --no-register is a switch"),
    ("steps: [backtest_churn, score_churn]",
     "key 'steps[1].score_churn': 'dealerml score churn' needs option --cutoff"),
    ("steps: [backtest_churn, tune_dealers]", "there is no command 'dealerml tune dealers'"),
    ("churn: {horizon_dayz: 90}\nsteps: [backtest_churn]", "churn.horizon_dayz"),
    ("tuning: {target: {n_fold: 2}}\nsteps: [backtest_churn, tune_churn]", "tuning.target.n_fold"),
    ("data: {service_events: {path: missing.csv}}\nsteps: [backtest_churn]",
     "key 'data.service_events.path': file not found: "),
    # what the step's command refuses up front ran only after the steps before it
    ("steps: [backtest_churn, {promote_churn: {metric: mase}}]",
     "key 'steps[1].promote_churn': --metric 'mase' is not a churn metric; churn promotion can compare auc, "),
    ("steps: [backtest_churn, {promote_churn: {json: /}}]",
     "key 'steps[1].promote_churn': --json / is a folder; give a file path inside it"),
    ("steps: [backtest_churn, {train_churn: {save_to: /proc/1/m}}]",
     "key 'steps[1].train_churn': --save-to /proc/1/m: no permission to write in the folder /proc/1"),
    ("steps: [backtest_churn, {tune_churn: {storage: 'postgresql:/x'}}]",
     "key 'steps[1].tune_churn': Optuna storage postgresql:/x: looks like a database URL without '://'"),
    ("steps: [backtest_churn, {tune_churn: {resume: true}}]",
     "key 'steps[1].tune_churn': --resume needs the --study-name (or tuning.study_name) of the study to continue"),
    ("steps: [backtest_churn, {tune_churn: {study_name: ' '}}]",
     "key 'steps[1].tune_churn': --study-name ' ': expected a study name (e.g. nightly-churn), not an empty or blank"),
])
def test_experiment_is_checked_before_any_step_runs(home, tmp_path, network, body, expected):
    from training.experiment import run_experiment

    calls = []
    exp = _exp(tmp_path, network, "extends: base.yaml\nname: e\n" + body + "\n")
    with pytest.raises(ConfigError) as err:
        run_experiment(exp, invoke=calls.append, log=lambda s: None)
    assert expected in str(err.value) and str(exp) in str(err.value)
    assert "dealerml-exp-" not in str(err.value)
    assert calls == []  # not even the first step ran
    _nothing_created(home)


def test_valid_step_options_pass_the_check(tmp_path):
    from training.experiment import check_step, parse_steps

    for i, s in enumerate(parse_steps(["backtest_churn", {"train_churn": {"cutoff": "2024-01-01", "threads": 2}},
                                       {"tune_demand": {"trials": 3, "no_register": True, "target": "m:f"}},
                                       {"promote_dealers": {"margin": 0.1, "force": True}},
                                       {"score_dealers": {"cutoff": "2024-01-01", "out": "x.csv"}}])):
        check_step(s, i, file="x.yaml")


def test_a_promote_steps_figures_are_logged_once(home, tmp_path, network):
    """The promote JSON holds the evaluations twice (challenger_ / champion_metrics and
    'evaluation'); the experiment run logged both copies as metrics."""
    import json
    from pathlib import Path

    from training.experiment import run_experiment

    def invoke(argv):  # what `dealerml promote churn --json ...` writes
        out = Path(argv[argv.index("--json") + 1])
        ev = {"auc": 0.8, "cutoff": "2024-01-01"}
        out.write_text(json.dumps({"decision": "refused", "challenger_score": 0.8, "champion_score": 0.9,
                                   "challenger_metrics": ev, "champion_metrics": {"auc": 0.9},
                                   "evaluation": {"challenger": ev, "champion": {"auc": 0.9}}}))
        return 0

    exp = _exp(tmp_path, network, "extends: base.yaml\nname: e\nsteps: [promote_churn]\n")
    res = run_experiment(exp, invoke=invoke, log=lambda s: None)
    assert res.metrics == {"promote_churn.challenger_score": 0.8, "promote_churn.champion_score": 0.9,
                           "promote_churn.challenger_metrics.auc": 0.8, "promote_churn.champion_metrics.auc": 0.9}
