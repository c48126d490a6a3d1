"""Data lineage of runs: a run logs the sha256 of every table its model reads (churn and dealers: the
order lines, accounts and service events; demand: the order lines), and ``experiment compare`` and
``promote`` call two runs' data the same only when all of them agree, naming the table that does not.
A run from before the accounts' and service events' sha256 were logged is unknown there, not different."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import write_config
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def two_books(synthetic_config, tmp_path_factory):
    """The session network's book, and the same book with one service event fewer (its order lines and
    accounts unchanged): (config, fingerprint) of each."""
    from training.config import load_config
    from training.data import load_order_book

    d = tmp_path_factory.mktemp("fewer_events")
    events = pd.read_csv(synthetic_config.parent / "service_events.csv")
    events.iloc[1:].to_csv(d / "service_events.csv", index=False)
    other = write_config(synthetic_config, d / "config.yaml")
    text = other.read_text().replace(str((synthetic_config.parent / "service_events.csv").resolve()),
                                     str(d / "service_events.csv"))
    other.write_text(text)
    out = []
    for cfg in (write_config(synthetic_config, tmp_path_factory.mktemp("same") / "config.yaml"), other):
        out.append((cfg, load_order_book(load_config(cfg)).fingerprint))
    return out


def test_the_book_fingerprint_has_the_sha256_of_its_accounts_and_service_events(two_books, synthetic_config, tmp_path):
    """Only the order lines were hashed: a book with other service events had the same fingerprint."""
    (_, a), (_, b) = two_books
    assert a["order_lines_sha256"] == b["order_lines_sha256"]
    assert a["accounts_sha256"] == b["accounts_sha256"] and len(a["accounts_sha256"]) == 64
    assert a["service_events_sha256"] != b["service_events_sha256"] and len(b["service_events_sha256"]) == 64
    import yaml

    from training.config import load_config
    from training.data import load_order_book

    cfg = yaml.safe_load(write_config(synthetic_config, tmp_path / "c.yaml").read_text())
    del cfg["data"]["service_events"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    fp = load_order_book(load_config(tmp_path / "c.yaml")).fingerprint
    assert fp["service_events_sha256"] == "none" and fp["accounts_sha256"] == a["accounts_sha256"]


def _churn_run(fingerprint: dict, auc: float) -> str:
    from training import tracking

    with tracking.training_run("churn", fingerprint=fingerprint) as run:
        run.log_params({"horizon_days": 90, "backtest.test_cutoff": "2024-04-02"})
        run.log_metrics({"lightgbm": {"auc": auc}})
    return run.run_id


def test_compare_names_other_service_events_and_calls_an_old_run_unknown_there(home, two_books, tmp_path):
    """Two churn runs on other service events (same order lines) were 'comparable: yes (same data ...)'."""
    (_, a), (_, b) = two_books
    ra, rb = _churn_run(a, 0.80), _churn_run(b, 0.81)
    out = tmp_path / "cmp.json"
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", rb, "--run", ra, "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert ("comparable: NO, the figures were measured on different things: different service events "
            f"(data.service_events_sha256: {b['service_events_sha256'][:12]}, {a['service_events_sha256'][:12]})"
            ) in r.output
    cmp = json.loads(out.read_text())
    assert cmp["runs"][0]["data_sha256_by_table"] == {"order_lines": b["order_lines_sha256"],
                                                      "accounts": b["accounts_sha256"],
                                                      "service_events": b["service_events_sha256"]}
    # the same book twice: every table named beside the verdict
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", _churn_run(a, 0.82), "--run", ra])
    assert (f"comparable: yes (same data {a['order_lines_sha256'][:12]}..., accounts {a['accounts_sha256'][:12]}..., "
            f"service events {a['service_events_sha256'][:12]}..., same test:") in r.output, r.output
    # a run logged before the accounts' and service events' sha256: unknown there, said, still comparable
    old = _churn_run({"order_lines_sha256": a["order_lines_sha256"]}, 0.79)
    r = runner.invoke(app, ["experiment", "compare", "churn", "--run", rb, "--run", old, "--json", str(out)])
    assert r.exit_code == 0, r.output
    cmp = json.loads(out.read_text())
    assert cmp["comparable"] is True, cmp["not_comparable_because"]
    assert cmp["data_unconfirmed"] == [
        "accounts unconfirmed: run(s) #2 logged no data.accounts_sha256 (a run from before it was logged), so the "
        "same accounts cannot be confirmed",
        "service events unconfirmed: run(s) #2 logged no data.service_events_sha256 (a run from before it was "
        "logged), so the same service events cannot be confirmed"]
    assert f"comparable: yes (same data {a['order_lines_sha256'][:12]}..., same test:" in r.output
    assert "  service events unconfirmed: run(s) #2 logged no data.service_events_sha256" in r.output


def test_demand_runs_are_not_told_apart_by_service_events():
    """Demand reads the order lines only: other service events (or inventory) do not make its runs incomparable."""
    from training.commands.compare import compare_runs

    def run(i, tags):
        return SimpleNamespace(run_id=f"{i}" * 32, name=f"r{i}", status="FINISHED", started="2026-11-27 17:00",
                               params={"horizon": "8"}, metrics={"Final.mase": 0.9}, tags=tags, registered=())

    same = {"data.order_lines_sha256": "ab" * 32}
    cmp = compare_runs("demand", [run(1, {**same, "data.service_events_sha256": "cd" * 32}),
                                  run(2, {**same, "data.service_events_sha256": "ef" * 32})], "mase")
    assert cmp["comparable"] and cmp["data_unconfirmed"] == []
    cmp = compare_runs("dealers", [run(1, {**same, "data.accounts_sha256": "cd" * 32}),
                                   run(2, {**same, "data.accounts_sha256": "ef" * 32})], "mase")
    assert cmp["not_comparable_because"] == [f"different accounts (data.accounts_sha256: {'cd' * 6}, {'ef' * 6})"]


def test_promote_tells_a_challenger_fitted_on_other_service_events(home, two_books, capsys):
    """promote's "fitted on other data" check read the order lines' sha256 only: a churn challenger trained on
    other service events (the same order lines) was scored and promoted as if fitted on this book."""
    from training.commands.experiments import _fitted_on_other_data

    (_, a), (cfg_b, b) = two_books
    info = SimpleNamespace(run_id=_churn_run(a, 0.8), version="2")
    said = _fitted_on_other_data("churn", cfg_b, info, SimpleNamespace(fingerprint=b))
    assert said.startswith(
        f"challenger v2 was fitted on other service events than the ones this promote scored on: its run read service "
        f"events {a['tables']['service_events']['source']} ({a['tables']['service_events']['rows_out']} rows, sha256 "
        f"{a['service_events_sha256'][:12]}), {cfg_b} reads service events {b['tables']['service_events']['source']} "
        f"({b['tables']['service_events']['rows_out']} rows, sha256 {b['service_events_sha256'][:12]}). Both models'")
    assert "so nothing was scored or moved" in said.refusal()
    # demand reads no service events; the same book: nothing to say
    assert _fitted_on_other_data("demand", cfg_b, info, SimpleNamespace(fingerprint=b)) == ""
    assert _fitted_on_other_data("churn", cfg_b, info, SimpleNamespace(fingerprint=a)) == ""
    # a challenger from before the service events' sha256 was logged: not refused, said unknown
    old = SimpleNamespace(run_id=_churn_run({"order_lines_sha256": a["order_lines_sha256"]}, 0.8), version="3")
    capsys.readouterr()
    assert _fitted_on_other_data("churn", cfg_b, old, SimpleNamespace(fingerprint=b)) == ""
    assert ("note: challenger v3's run logged no sha256 of its accounts or service events (it is from before they "
            f"were logged), so promote cannot tell whether it was fitted on the ones {cfg_b} reads") in capsys.readouterr().err


def test_the_promotion_evidence_run_records_the_book_it_scored_on(home, two_books, monkeypatch):
    """The dealerml-promotion run said which versions and figures, not which data: no sha256 of the book."""
    from _support_tuning import TinyModel, TinyTarget, make_data

    from training import tracking
    from training.commands import experiments

    (cfg_a, a), _ = two_books
    df = make_data()
    for n in (10, 40):  # v1 champion, v2 challenger, both fitted on book a
        with tracking.training_run("churn", fingerprint=a) as run:
            run.log_model(TinyModel(n_estimators=n).fit(df.iloc[:300], df["y"].iloc[:300]))
            run.register("dealerml-churn")
    # the config's book is loaded and fingerprinted as for the churn evaluator; the tiny models are scored by theirs
    monkeypatch.setattr(experiments, "build_evaluator", lambda cap, cfg, spec, book=None: TinyTarget().evaluate)
    r = runner.invoke(app, ["promote", "churn", "--config", str(cfg_a), "--force"])
    assert r.exit_code == 0, r.output
    run_id = tracking.get_version_tags("dealerml-churn", "2")["promotion.run_id"]
    tags = tracking.run_tags(run_id)
    for key in ("order_lines_sha256", "accounts_sha256", "service_events_sha256", "order_date_min", "as_of"):
        assert tags[f"data.{key}"] == str(a[key]), key


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_tune_names_the_best_trial_and_the_untuned_figure_when_it_keeps_the_untuned(home, tmp_path, direction):
    """'no trial beat the untuned configuration (0.630205 vs 0.642531)' did not say which figure was the untuned
    one (the first) nor which way is better (tune demand: MASE, lower)."""
    from _support_tuning import _CrippledTarget

    from training.tuning import run_study

    class Target(_CrippledTarget):  # minimize: 1 - auc under another name, so the untuned still wins
        metric = "auc" if direction == "maximize" else "error"

        def score_fold(self, params, fold):
            s = super().score_fold(params, fold)
            return s if direction == "maximize" else 1 - s

    Target.direction = direction
    said: list[str] = []
    res = run_study(Target(), n_trials=2, study_name="c", seed=1, storage=str(tmp_path / "j.log"), log=said.append)
    assert res.best_is_untuned
    line = next(s for s in said if s.startswith("no trial beat"))
    better = "higher" if direction == "maximize" else "lower"
    assert line.startswith("no trial beat the untuned configuration on the same folds (best trial ")
    assert (f" vs untuned {res.untuned_value:.6g}, mean {Target.metric} over 3 fold(s), {better} is better); "
            "keeping it") in line
    best_trial = float(line.split("(best trial ")[1].split(" ")[0])
    assert (best_trial < res.untuned_value) if direction == "maximize" else (best_trial > res.untuned_value)



def test_compare_lines_up_a_tuned_demand_runs_settings_with_a_training_runs(tmp_path, home, monkeypatch):
    """The demand tuning target had no run_params: compare showed a tune run's best.lgbm_params.* and a train
    run's config.demand.lgbm.* on separate rows, each blank for the other run. Both now log the served
    forecaster's settings as model.selection / model.lgbm_params.*, one row each (as churn's model.*)."""
    from _support_demand import _small_config

    from training import tuning_report
    from training.config import load_config
    from training.demand_tuning import tuning_target
    from training.tuning import run_study

    cfg_path, _ = _small_config(tmp_path)  # demand.lgbm: {n_estimators: 10}; home: a copy of the empty store
    r = runner.invoke(app, ["train", "demand", "--config", str(cfg_path), "--no-replay"])
    assert r.exit_code == 0, r.output
    monkeypatch.setattr(tuning_report, "untuned_scores", lambda target: None)  # the trial's settings are kept
    cfg = load_config(cfg_path)  # tune demand's study, on the series table this config names (no order book)
    run_study(tuning_target(cfg), n_trials=1, study_name="d", seed=1, storage=str(tmp_path / "j.log"), config=cfg,
              log=lambda m: None)
    out = tmp_path / "cmp.json"
    r = runner.invoke(app, ["experiment", "compare", "demand", "--last", "2", "--json", str(out)])
    assert r.exit_code == 0, r.output
    cmp = json.loads(out.read_text())
    assert [x["kind"] for x in cmp["runs"]] == ["tune", "train"]
    differ = cmp["params_that_differ"]
    assert not [k for k in differ if k.startswith("best.")], differ
    from mlflow.tracking import MlflowClient

    from training import tracking

    tuned = MlflowClient(tracking.tracking_uri()).get_run(cmp["runs"][0]["run_id"]).data.params
    n = tuned["best.lgbm_params.n_estimators"]  # 50 .. 400 trees, beside the config's 10 on one row
    assert differ["model.lgbm_params.n_estimators"] == [n, "10"]
    assert differ["model.lgbm_params.num_leaves"] == [tuned["best.lgbm_params.num_leaves"], None]
    assert "config.demand.lgbm.n_estimators" not in differ  # both runs' config says 10
