"""``dealerml experiment compare`` against a real MLflow store: runs logged the way the training
commands log them (``<model>.<metric>`` metrics, backtest params, data fingerprint), two of them
registered; the comparison shows the metric by model, the settings that differ, the versions
and aliases, and says when the runs were measured on different data or a different test."""

from __future__ import annotations

import json

from _support_tuning import TinyModel, make_data
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


def _run(label: str, *, auc: float, n_estimators: int, test_cutoff: str, sha: str, register: bool,
         trial: bool = False) -> str:
    from training import tracking

    tags = {"optuna.trial": 0} if trial else None
    with tracking.training_run("churn", run_name=label, tags=tags,
                               fingerprint={"order_lines_sha256": sha}) as run:
        run.log_params({"model.n_estimators": n_estimators, "horizon_days": 90, "backtest.test_cutoff": test_cutoff,
                        "backtest.train_cutoffs": f"{label}-cutoffs"})
        run.log_metrics({"base_rate": 0.3, "lightgbm": {"auc": auc, "brier": 0.2}, "recency": {"auc": 0.70},
                         "bgnbd": {"auc": 0.72}})
        run.log_metrics({"auc": auc - 0.05}, slice={"region": "north"})  # a slice: not a model row
        if register:
            df = make_data()
            run.log_model(TinyModel(n_estimators=5).fit(df.iloc[:60], df["y"].iloc[:60]))
            run.register("dealerml-churn")
    return run.run_id


def test_compare_shows_models_settings_versions_and_comparability(home, tmp_path):
    old = _run("old", auc=0.80, n_estimators=300, test_cutoff="2024-04-02", sha="a" * 64, register=True)
    new = _run("new", auc=0.83, n_estimators=60, test_cutoff="2024-04-02", sha="a" * 64, register=True)
    _run("trial", auc=0.99, n_estimators=7, test_cutoff="2024-04-02", sha="a" * 64, register=False, trial=True)

    out = tmp_path / "cmp.json"
    r = runner.invoke(app, ["experiment", "compare", "churn", "--last", "2", "--json", str(out)])
    assert r.exit_code == 0, r.output
    cmp = json.loads(out.read_text())
    assert [x["run_id"] for x in cmp["runs"]] == [new, old]  # newest first; the tuning trial left out
    assert cmp["by_model"] == {"lightgbm": [0.83, 0.80], "bgnbd": [0.72, 0.72], "recency": [0.70, 0.70]}
    assert cmp["final_metrics"] == {"auc": [0.83, 0.80], "brier": [0.2, 0.2]}
    assert cmp["params_that_differ"] == {"backtest.train_cutoffs": ["new-cutoffs", "old-cutoffs"],
                                         "model.n_estimators": ["60", "300"]}
    assert [x["registered"] for x in cmp["runs"]] == [["v2 @challenger"], ["v1 @champion"]]
    assert cmp["comparable"] is True and cmp["direction"] == "higher is better"
    assert "lightgbm (final)  0.8300  0.8000" in r.output
    assert "comparable: yes" in r.output and "v1 @champion" in r.output

    # a run on another test cutoff and other data is not comparable, and the output says why
    other = _run("other", auc=0.90, n_estimators=60, test_cutoff="2024-06-01", sha="b" * 64, register=False)
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", other[:10], "--run", new])
    assert r.exit_code == 0, r.output
    assert "comparable: NO" in r.output and "different backtest.test_cutoff (2024-06-01, 2024-04-02)" in r.output
    assert "different data (data.order_lines_sha256: bbbbbbbbbbbb, aaaaaaaaaaaa)" in r.output

    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", "zzzz"])
    assert r.exit_code != 0 and "--run zzzz: no run of dealerml-churn" in r.output
    r = runner.invoke(app, ["experiment", "compare", "churn", "--metric", "mase"])
    assert r.exit_code != 0 and "--metric 'mase' is not a churn metric" in r.output
    r = runner.invoke(app, ["experiment", "compare", "demand"])
    assert r.exit_code != 0 and "no dealerml-demand runs" in r.output


def test_compare_finds_top_level_runs_behind_many_tuning_trials(home):
    # a tuning study logs its trials after the runs a user wants to compare: --last N pages on
    # until it has N top-level runs (it read only the newest 50 runs before)
    from mlflow.tracking import MlflowClient

    from training import tracking
    from training._tracking_runs import _all_runs

    old = _run("old", auc=0.80, n_estimators=300, test_cutoff="2024-04-02", sha="a" * 64, register=False)
    new = _run("new", auc=0.83, n_estimators=60, test_cutoff="2024-04-02", sha="a" * 64, register=False)
    client = MlflowClient(tracking.tracking_uri())
    exp = client.get_experiment_by_name("dealerml-churn")
    for i in range(60):
        r = client.create_run(exp.experiment_id, run_name=f"trial-{i}", tags={"optuna.trial": str(i)})
        client.set_terminated(r.info.run_id)
    runs = tracking.list_runs("churn", last=2)
    assert [r.run_id for r in runs] == [new, old]
    # paging reads every run once, newest first
    ids = [r.info.run_id for r in _all_runs(client, exp.experiment_id, page=7)]
    assert len(ids) == len(set(ids)) == 62 and ids[-1] == old
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", old[:12]])
    assert r.exit_code == 0, r.output


def _demand_run(label: str, *, n_rows: int, mase: float) -> str:
    """A run as train demand logs it: its fingerprint is the series table's source, size and dates (no
    order-lines sha256)."""
    from training import tracking

    fp = {"source": f"/books/{label}/config.yaml", "kind": "order_book", "n_series": 80, "n_rows": n_rows,
          "ds_min": "2022-01-03 00:00:00", "ds_max": "2024-06-24 00:00:00"}
    with tracking.training_run("demand", run_name=label, fingerprint=fp) as run:
        run.log_params({"freq": "W", "horizon": 8, "windows": 1})
        run.log_metrics({"Final": {"mase": mase}, "SeasonalNaive": {"mase": 1.1}})
    return run.run_id


def test_demand_runs_on_two_books_are_not_called_comparable(home, tmp_path):
    """Demand runs log no order-lines sha256, so a train demand on one book and one on another were
    'comparable: yes (same data -..., same test: freq W, horizon 8, windows 1)' (measured: seed-7 and
    seed-11 synthetic books, MASE 0.68 beside 0.99). Without a fingerprint their size and dates are compared."""
    a = _demand_run("a", n_rows=9895, mase=0.68)
    b = _demand_run("b", n_rows=9652, mase=0.99)
    out = tmp_path / "cmp.json"
    r = runner.invoke(app, ["experiment", "compare", "demand", "--run", b, "--run", a, "--json", str(out)])
    assert r.exit_code == 0, r.output
    cmp = json.loads(out.read_text())
    assert cmp["comparable"] is False
    assert cmp["not_comparable_because"] == ["different data (data.n_rows: 9652, 9895)"]
    assert "comparable: NO, the figures were measured on different things: different data (data.n_rows: 9652, 9895)" \
        in r.output
    a2 = _demand_run("a2", n_rows=9895, mase=0.70)  # the same book again (another config file)
    r = runner.invoke(app, ["experiment", "compare", "demand", "--run", a2, "--run", a])
    assert r.exit_code == 0, r.output
    assert ("comparable: yes (same data by its size and dates, n_rows 9895, n_series 80, ds_min 2022-01-03 00:00:00, "
            "ds_max 2024-06-24 00:00:00, same test: freq W, horizon 8, windows 1)") in r.output


def test_train_demand_logs_the_order_lines_fingerprint(home, tmp_path):
    """train demand logged only its series table's size and dates, so two books of the same shape (here one
    quantity changed) were 'comparable: yes' and promote could not tell them apart; it now logs the order
    lines' sha256 as train churn / dealers do, and compare names the different data."""
    from _support_demand import _cli_book

    from training import tracking
    from training.config import load_config
    from training.data import load_order_book

    runs = []
    for name, change in (("a", False), ("b", True)):
        d = tmp_path / name
        d.mkdir()
        cfg = _cli_book(d)
        if change:  # the same series, weeks and row count; one line's quantity differs
            lines = d / "lines.csv"
            text = lines.read_text().splitlines()
            cells = text[1].split(";")  # Doc;Date;Cust;Item;Qty;Price;Whs
            cells[4] = str(int(cells[4]) + 3)
            text[1] = ";".join(cells)
            lines.write_text("\n".join(text) + "\n")
        r = runner.invoke(app, ["train", "demand", "--config", str(cfg), "--no-replay"])
        assert r.exit_code == 0, r.output
        sha = load_order_book(load_config(cfg)).fingerprint["order_lines_sha256"]
        run_id = tracking.model_info("dealerml-demand", "challenger").run_id
        assert tracking.run_tags(run_id)["data.order_lines_sha256"] == sha
        runs.append((run_id, sha))
    r = runner.invoke(app, ["experiment", "compare", "demand", "--run", runs[1][0], "--run", runs[0][0]])
    assert r.exit_code == 0, r.output
    assert (f"comparable: NO, the figures were measured on different things: different data "
            f"(data.order_lines_sha256: {runs[1][1][:12]}, {runs[0][1][:12]})") in r.output


def test_one_run_named_twice_is_shown_once_and_an_empty_run_is_refused(home):
    """`--run ID --run PREFIX` of one run showed '2 run(s)' with the run beside itself ('settings: identical',
    'comparable: yes'); `--run ''` said '3 runs ... start with that id; give more characters'."""
    a = _run("a", auc=0.80, n_estimators=60, test_cutoff="2024-04-02", sha="a" * 64, register=False)
    _run("b", auc=0.81, n_estimators=60, test_cutoff="2024-04-02", sha="a" * 64, register=False)
    _run("c", auc=0.82, n_estimators=60, test_cutoff="2024-04-02", sha="a" * 64, register=False)
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", a, "--run", a[:8]])
    assert r.exit_code == 0, r.output
    assert "dealerml-churn: 1 run(s), newest first" in r.output and "comparable" not in r.output
    assert f"note: --run {a[:8]} names run {a[:8]} again (--run {a}); it is shown once" in r.output
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", a, "--run", ""])
    assert r.exit_code == 2 and "error: --run number 2 is empty; give a run id (or a unique prefix of one)" in r.output


def test_train_demand_logs_its_backtest_windows_and_its_version_says_them(home, tmp_path):
    """train demand printed 'on the windows from 2024-04-29' but logged no cutoff (params: freq, horizon,
    windows), so compare's 'same test' and the registered version could not say which windows a demand
    model was scored on. It logs them as backtest.cutoffs; the version carries them with the data's sha256,
    and the printed Final MASE is the logged one."""
    import re

    from _support_demand import _cli_book
    from mlflow.tracking import MlflowClient

    from training import tracking

    d = tmp_path / "a"
    d.mkdir()
    r = runner.invoke(app, ["train", "demand", "--config", str(_cli_book(d)), "--no-replay"])
    assert r.exit_code == 0, r.output
    said = re.search(r"run (\w+): Final MASE ([0-9.]+) .* on the windows with cutoffs ([0-9, -]+) \(each the last", r.output)
    assert said, r.output
    run = MlflowClient(tracking.tracking_uri()).get_run(said[1])
    assert run.data.params["backtest.cutoffs"] == said[3].replace(", ", ",")
    assert f"{run.data.metrics['Final.mase']:.3f}" == said[2]
    mv = MlflowClient(tracking.tracking_uri()).get_model_version("dealerml-demand", "1")
    assert mv.run_id == said[1]
    assert mv.tags["backtest.cutoffs"] == run.data.params["backtest.cutoffs"]
    assert mv.tags["data.order_lines_sha256"] == run.data.tags["data.order_lines_sha256"]
    assert {k: mv.tags[k] for k in ("freq", "horizon", "windows")} == {
        k: run.data.params[k] for k in ("freq", "horizon", "windows")}


def test_a_run_of_another_kind_is_named_as_such(home):
    """`compare churn --run <a dealers run>` said only 'no run of dealerml-churn ... starts with that id', as
    for a mistyped id; it now says which experiment holds the run and how to compare it."""
    from training import tracking

    churn = _run("a", auc=0.80, n_estimators=60, test_cutoff="2024-04-02", sha="a" * 64, register=False)
    with tracking.training_run("dealers", run_name="d") as run:
        run.log_params({"backtest.test_cutoff": "2024-04-02"})
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", run.run_id[:10]])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert " ".join(r.output.split()).endswith(
        f"--run {run.run_id[:10]}: no run of dealerml-churn in {tracking.shown_tracking_uri()} start(s) with that id; "
        "it is a run of dealerml-dealers: compare it with `dealerml experiment compare dealers`")
    r = runner.invoke(app, ["experiment", "compare", "dealers", "--run", churn])
    assert r.exit_code == 2 and "it is a run of dealerml-churn: compare it with `dealerml experiment compare churn`" \
        in " ".join(r.output.split()), r.output
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", "ffffffffff"])  # nowhere: as before
    assert r.exit_code == 2 and " ".join(r.output.split()).endswith("start(s) with that id"), r.output


def test_an_unwritable_json_is_an_error_before_the_table(home, tmp_path):
    """`compare churn --json DIR` (or a folder no one may write in) printed the comparison and then ended in a
    ConfigError traceback (exit 1); it is now `error: --json ...` (exit 2) before anything is printed."""
    _run("a", auc=0.80, n_estimators=60, test_cutoff="2024-04-02", sha="a" * 64, register=False)
    for out, said in ((tmp_path, f"error: --json {tmp_path} is a folder; give a file path inside it"),
                      ("/proc/1/x.json", "error: --json /proc/1/x.json: no permission to write in the folder /proc/1")):
        r = runner.invoke(app, ["experiment", "compare", "churn", "--json", str(out)])
        assert r.exit_code == 2 and r.output.startswith(said) and "auc (higher is better)" not in r.output, r.output
    r = runner.invoke(app, ["experiment", "compare", "churn", "--json", str(tmp_path / "cmp.json")])
    assert r.exit_code == 0 and json.loads((tmp_path / "cmp.json").read_text())["experiment"] == "dealerml-churn", r.output
