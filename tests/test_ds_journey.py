"""A new data scientist's train / tune / promote / rollback loop, as s11 met it (after the s9/s10 audits).

* every ``train`` / ``tune`` printed MLflow's "Add type hints to the `predict` method" warning and its
  "CloudPickle ... Consider using a file path" advice (the filter meant to drop the first could not:
  MLflow raises it under its own ``simplefilter("once")``); both are gone, the model still loads and
  predicts through plain MLflow;
* ``promote`` without ``promotion.<name>.margin`` compared with margin 0 and, for a tuned challenger,
  said "the margin is the guard": it now says the margin is 0 and where to set one;
* ``promote`` when the challenger already is the champion printed "challenger v2 auc=n/a, champion v2
  auc=n/a": it now says there is nothing to compare and what to do;
* ``backtest dealers`` printed "net growth share n/a" with no reason: it now says the book shrank.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from _support_tuning import FEATURES, TinyModel, make_data


def test_logging_a_model_prints_no_mlflow_type_hint_or_cloudpickle_advice(home, monkeypatch):
    import mlflow.pyfunc

    from training import tracking

    monkeypatch.setattr(tracking, "_PYFUNC_CLASS", None)  # the warning came when the class was made
    seen: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    grab = Grab()
    logging.getLogger("mlflow.pyfunc").addHandler(grab)
    df = make_data(120)
    model = TinyModel(n_estimators=5).fit(df, df["y"])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with tracking.training_run("churn") as run:
                run.log_model(model, input_example=df[FEATURES].head(5))
                run.register("dealerml-churn")
    finally:
        logging.getLogger("mlflow.pyfunc").removeHandler(grab)
    hints = [str(w.message) for w in caught if "type hint" in str(w.message)]
    assert hints == []
    assert not [m for m in seen if "CloudPickle" in m]
    assert logging.getLogger("mlflow.pyfunc").filters == []  # the filter is only there while logging
    pyf = mlflow.pyfunc.load_model("models:/dealerml-churn@champion")
    np.testing.assert_allclose(pyf.predict(df[FEATURES].head(7)), model.predict_proba(df.head(7)))


def _register(model, label: str) -> str:
    from training import tracking

    with tracking.training_run("churn", run_name=label) as run:
        run.log_model(model, metadata={"label": label})
        run.register("dealerml-churn")
    return run.registered[0][1]


def test_promote_says_a_margin_of_0_and_that_an_unchanged_champion_had_nothing_to_compare(home, tmp_path):
    from _support_tuning import write_config
    from typer.testing import CliRunner

    from training.cli import app

    df = make_data()
    _register(TinyModel(n_estimators=20, min_child_samples=5).fit(df.iloc[:60], df["y"].iloc[:60]), "mid")
    _register(TinyModel(n_estimators=40).fit(df.iloc[:350], df["y"].iloc[:350]), "good")
    cfg = write_config(tmp_path)  # no promotion: section

    def promote(*extra):
        r = CliRunner().invoke(app, ["promote", "churn", "--config", str(cfg), "--evaluator",
                                     "_support_tuning:tiny_evaluator", *extra])
        assert r.exit_code == 0, r.output
        return r.output

    out = promote()
    assert "dealerml-churn: promoted — challenger v2" in out and "margin 0 (maximize)" in out
    assert (f"note: margin 0: neither --margin nor promotion.churn.margin in {cfg} sets one, so any gain in auc, "
            "however small, promotes; set one (e.g. promotion: {churn: {margin: 0.005}}") in out
    out = promote()  # v2 is challenger and champion: nothing was scored
    assert "n/a" not in out and "note: margin" not in out
    assert out.splitlines()[0] == ("dealerml-churn: unchanged — the challenger v2 already is the champion, so there is "
                                   "nothing to compare; make a new challenger (dealerml train churn or dealerml tune "
                                   "churn), then promote it")
    # a margin that is set, even --margin 0, is the user's choice: no note
    _register(TinyModel(n_estimators=41).fit(df.iloc[:350], df["y"].iloc[:350]), "good2")
    assert "note: margin" not in promote("--margin", "0")


def test_a_tuned_challenger_scored_on_its_own_fold_is_not_said_to_be_guarded_by_a_margin_of_0():
    import training.cli  # noqa: F401 - the commands register on the app (imported first, as the CLI does)
    from training.commands.experiments import _selected_on

    tuned = {"study": "s", "folds": ["test cutoff 2024-10-03 (labels ...)"]}
    evaluations = [{"cutoff": "2024-10-03", "auc": 0.9}]
    guarded = _selected_on(tuned, evaluations, 0.005)
    assert "optimistic; the margin (0.005) is the guard. When the data allow" in guarded
    bare = _selected_on(tuned, evaluations, 0.0)
    assert "the margin" not in bare and "with a margin of 0 nothing guards against that: set one." in bare
    assert _selected_on(tuned, [{"cutoff": "2024-11-02"}], 0.0) == ""  # not tuned on that cutoff: nothing to say


def _dealers_out(net: float, share) -> dict:
    row = {"spearman": 0.87, "top_decile_growth_capture": 0.03, "top_decile_net_growth_share": share, "mae": 3534.4}
    return {"cutoff": "2024-07-03", "horizon_days": 182, "n_accounts": 400, "metrics": {"dealer_potential": row},
            "oracle": {"top_decile_growth_capture": 0.69, "top_decile_net_growth_share": share},
            "total_net_growth": net, "total_positive_growth": 409312.8,
            "setup": {"churn_source": "bgnbd", "churn_fallback_reason": "no churn model"}}


def test_dealers_backtest_says_why_the_net_growth_share_is_n_a(capsys):
    from training.commands.dealers import _print_backtest

    _print_backtest(_dealers_out(-2423609.36, None))  # the synthetic default's book shrinks
    out = capsys.readouterr().out
    assert "net growth share n/a  mae 3,534.4" in out
    # four rows showed the same spearman and mae and no word of why
    assert ("(spearman and mae score each row's next-period value forecast, so the rows built on the LightGBM "
            "forecast share them; growth capture and net growth share score each row's ranking)") in out
    assert ("net growth share n/a: these accounts' realized net growth is -2,423,609 in total (the book shrank over "
            "the period), so a share of it is undefined; top-decile growth capture counts positive growth only "
            "(409,313 in total)") in out
    _print_backtest(_dealers_out(1000.0, 1.32))
    assert "n/a" not in capsys.readouterr().out


def test_a_missing_table_file_names_the_config_key_the_path_as_written_and_an_unset_variable(tmp_path, monkeypatch):
    """README's first step copies experiments/online_retail.yaml, whose path takes
    ${DEALERML_SHARED:-../../shared}: in a clone elsewhere that is 'file not found' and nothing more."""
    import pytest

    from training.data import load_order_book
    from training.errors import DataError

    monkeypatch.delenv("DEALERML_SHARED", raising=False)
    cfg = tmp_path / "experiments" / "mine.yaml"
    cfg.parent.mkdir()
    cfg.write_text("name: mine\ndata:\n  order_lines:\n"
                   "    path: ${DEALERML_SHARED:-../../shared}/data/online_retail/online_retail.csv.gz\n")
    with pytest.raises(DataError) as err:
        load_order_book(cfg)
    want = (tmp_path.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz").resolve()
    assert str(err.value) == (
        f"{want}: order_lines file not found (key 'data.order_lines.path' in {cfg}; written "
        "'${DEALERML_SHARED:-../../shared}/data/online_retail/online_retail.csv.gz'; ${DEALERML_SHARED} is not set, "
        "so its default '../../shared' was used: set DEALERML_SHARED or edit the path; a relative path is read "
        f"from the config's folder {cfg.parent})")
    # an accounts file beside the config, misspelt: the key and the folder it was looked for in
    (tmp_path / "lines.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-02,a,s,1,2\n")
    cfg.write_text("name: mine\ndata:\n  order_lines: {path: ../lines.csv}\n  accounts: {path: customer.csv}\n")
    with pytest.raises(DataError) as err:
        load_order_book(cfg)
    assert str(err.value) == (f"{cfg.parent / 'customer.csv'}: accounts file not found (key 'data.accounts.path' in "
                              f"{cfg}; written 'customer.csv'; a relative path is read from the config's folder "
                              f"{cfg.parent})")


def test_a_misspelt_column_suggestion_reads_like_the_config_key_suggestions(tmp_path):
    import pytest

    from training.data import load_order_book
    from training.errors import DataError

    (tmp_path / "lines.csv").write_text("InvoiceNo,InvoiceDate,CustomerID,StockCode,Quantity,UnitPrice\n"
                                        "1,2024-01-02,a,s,1,2\n")
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("name: mine\ndata:\n  order_lines:\n    path: lines.csv\n    columns: {order_id: InvoiceNo, "
                   "order_date: InvoiceDate, account_id: Customer_ID, sku: StockCode, quantity: Quantity, "
                   "unit_price: UnitPrice}\n")
    with pytest.raises(DataError) as err:
        load_order_book(cfg)
    assert (": order_lines is missing required column(s): 'account_id' mapped from 'Customer_ID'; did you mean "
            "'CustomerID'? Columns present: ['InvoiceNo',") in str(err.value)
    # an abbreviation difflib finds nothing for: 'Qty' for 'Quantity'
    cfg.write_text(cfg.read_text().replace("account_id: Customer_ID", "account_id: CustomerID")
                   .replace("quantity: Quantity", "quantity: Qty"))
    with pytest.raises(DataError) as err:
        load_order_book(cfg)
    assert "'quantity' mapped from 'Qty'; did you mean 'Quantity'? Columns present" in str(err.value)
    from training.sources import _abbreviates

    assert [_abbreviates(a, b) for a, b in (("Cust", "CustomerID"), ("Date", "InvoiceDate"), ("qty", "UnitPrice"),
                                            ("SKU", "StockCode"))] == [True, False, False, False]


def test_a_year_last_as_of_in_the_config_says_how_to_write_it(tmp_path):
    import pytest

    from training.config import load_config
    from training.errors import ConfigError

    cfg = tmp_path / "mine.yaml"
    for value, ok in (("'10/12/2011'", False), ("10.12.2011", False), ("2011-12-10", True), ("'2011-12-10 18:00'", True)):
        cfg.write_text(f"name: mine\ndata:\n  as_of: {value}\n  order_lines: {{path: lines.csv}}\n")
        if ok:
            assert load_config(cfg).data.as_of.date().isoformat() == "2011-12-10"
            continue
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        assert str(err.value).splitlines()[1] == (
            "  key 'data.as_of': write the date as YYYY-MM-DD (e.g. 2024-12-31); a date with the year last is refused "
            f"rather than guessed (day or month first?); got {value.strip(chr(39))!r}")


def test_tune_and_promote_churn_show_bgnbd_and_recency_as_the_backtest_scores_them(synthetic_book, synthetic_config,
                                                                                     tmp_path):
    """tune churn printed the tuned model beside the untuned one only, promote churn the two models only:
    on Online Retail tuned 0.7393 / untuned 0.7371 / BG/NBD 0.7366, so neither was a win over BG/NBD."""
    import pandas as pd
    import pytest
    from conftest import write_config

    import training.cli  # noqa: F401 - the commands register on the app (imported first, as the CLI does)
    from training.churn_backtest import churn_settings, run_backtest
    from training.churn_tuning import promotion_evaluator, tuning_target
    from training.commands.experiments import _baselines_said
    from training.config import load_config

    sections = {"churn": {"horizon_days": 90, "n_train_cutoffs": 2, "train_step_days": 60,
                          "model": {"n_estimators": 20, "num_leaves": 7}}}
    cfg = load_config(write_config(synthetic_config, tmp_path / "c.yaml", **sections))
    t = tuning_target(cfg, synthetic_book)
    final, _ = t.fit_final({"n_estimators": 20, "num_leaves": 7})
    bt = run_backtest(synthetic_book, churn_settings(cfg), t.t_last, seed=cfg.seed)
    report = bt.report
    for name in ("bgnbd", "recency"):  # the same figures as `dealerml backtest churn --cutoff T`
        for k in ("auc", "brier"):
            assert t.final_baselines[name][k] == pytest.approx(report["metrics"][name][k], abs=2e-6)
    ev = promotion_evaluator(cfg, synthetic_book)(final)
    assert ev["cutoff"] == str(pd.Timestamp(t.t_last).date()) and ev["baselines"] == t.final_baselines
    # the tune run logs the registered model's settings and windows as train churn logs them
    params = t.run_params(final)
    assert {k for k in params if k.startswith("model.")} == {f"model.{k}" for k in final.get_params()}
    assert params["model.n_estimators"] == 20 and params["model.num_threads"] == 1
    assert params["backtest.calibration_cutoff"] == str(bt.cutoffs["calibration"].date())
    assert params["backtest.train_cutoffs"] == ",".join(str(c.date()) for c in bt.cutoffs["train"])
    said = _baselines_said([ev], "auc")
    assert said == (f"baselines on the same labels: bgnbd auc={ev['baselines']['bgnbd']['auc']:.6g}, "
                    f"recency auc={ev['baselines']['recency']['auc']:.6g}")
    assert _baselines_said([{"auc": 0.9}], "auc") == "" and _baselines_said([], "auc") == ""


def test_an_experiment_steps_year_last_cutoff_or_misspelt_option_is_refused_before_the_first_step():
    """'backtest_churn: {cutoff: 01/10/2024}' passed the check, ran the steps before it (MLflow runs,
    registered versions) and only failed at its own step; 'trails' listed the options without the
    one meant."""
    import datetime

    import pytest

    from training.errors import ConfigError
    from training.experiment import check_step, parse_steps

    steps = parse_steps([{"backtest_churn": {"cutoff": "01/10/2024"}}, {"tune_churn": {"trails": 3}},
                         {"score_dealers": {"cutoff": "2024-13-01", "out": "x.csv"}},
                         {"train_dealers": {"cutoff": datetime.date(2024, 10, 1)}}])
    with pytest.raises(ConfigError) as err:
        check_step(steps[0], 0, file="x.yaml")
    assert str(err.value).startswith("x.yaml: key 'steps[0].backtest_churn.cutoff': --cutoff must be written year "
                                     "first, like 2024-06-01 (YYYY-MM-DD); got '01/10/2024'")
    with pytest.raises(ConfigError) as err:
        check_step(steps[1], 1, file="x.yaml")
    assert ("key 'steps[1].tune_churn.trails': 'dealerml tune churn' has no option --trails; did you mean 'trials'? "
            "its options: ") in str(err.value)
    with pytest.raises(ConfigError, match=r"steps\[2\]\.score_dealers\.cutoff': --cutoff must be a date like "
                                          r"2024-06-01 \(YYYY-MM-DD\); got '2024-13-01'"):
        check_step(steps[2], 2, file="x.yaml")
    check_step(steps[3], 3, file="x.yaml")  # YAML reads 2024-10-01 as a date: fine


def test_compare_puts_a_tune_runs_settings_on_the_training_runs_rows():
    """A tune run said best.learning_rate, a training run model.learning_rate: two half-empty rows per
    setting, and every setting they share listed as a difference."""
    from types import SimpleNamespace

    import training.cli  # noqa: F401 - the commands register on the app (imported first, as the CLI does)
    from training.commands.compare import compare_runs

    def run(i, params, tags=None):
        return SimpleNamespace(run_id=f"r{i}", name=f"r{i}", status="FINISHED", started="2026-11-26 22:30",
                               registered=[], metrics={"lightgbm.auc": 0.7}, params=params,
                               tags={"data.order_lines_sha256": "ab" * 32, **(tags or {})})

    common = {"backtest.test_cutoff": "2011-09-11", "horizon_days": "90", "model.calibration": "isotonic"}
    tune = run(1, {**common, "best.learning_rate": "0.0186", "model.learning_rate": "0.0186",
                   "best.num_leaves": "35", "model.num_leaves": "35", "tune.n_trials": "3"}, {"dealerml.step": "tune"})
    train = run(2, {**common, "model.learning_rate": "0.03", "model.num_leaves": "35"})
    cmp = compare_runs("churn", [tune, train], "auc")
    assert cmp["params_that_differ"] == {"model.learning_rate": ["0.0186", "0.03"], "tune.n_trials": ["3", None]}
    # a tune run from before run_params (best.* only) keeps its best.* rows
    old = run(3, {**common, "best.learning_rate": "0.0186", "tune.n_trials": "3"}, {"dealerml.step": "tune"})
    assert "best.learning_rate" in compare_runs("churn", [old, train], "auc")["params_that_differ"]


def test_a_new_challenger_is_said_to_be_unserved_until_promoted_with_the_command(home):
    import training.cli  # noqa: F401 - the commands register on the app (imported first, as the CLI does)
    from training.commands._common import registered_text

    df = make_data(120)
    v1 = _register(TinyModel(n_estimators=5).fit(df, df["y"]), "one")
    assert registered_text([("dealerml-churn", v1)], config="mine.yaml") == (
        "registered dealerml-churn version 1 (challenger, and champion: the first version)")
    v2 = _register(TinyModel(n_estimators=6).fit(df, df["y"]), "two")
    assert registered_text([("dealerml-churn", v2)], config="experiments/mine.yaml") == (
        "registered dealerml-churn version 2 (challenger, not served: `dealerml promote churn --config "
        "experiments/mine.yaml` scores it against champion v1 on the latest backtest and moves the champion if it wins)")
    # `train dealers --alias nightly`: promote takes the 'challenger' version only, so it is not told to promote it
    # (it was: 'promote ... scores it against champion v1', and promote then compared nothing: v2 is challenger)
    from training import tracking

    with tracking.training_run("churn", run_name="three") as run:
        run.log_model(TinyModel(n_estimators=7).fit(df, df["y"]))
        run.register("dealerml-churn", alias="nightly")
    assert registered_text(run.registered, "nightly", config="mine.yaml") == (
        "registered dealerml-churn version 3 (nightly, not served; `dealerml promote churn` scores the 'challenger' "
        "version (v2), not this one)")


def test_experiment_run_says_what_each_promote_step_decided(home, tmp_path, monkeypatch):
    """Its summary listed promote_churn.challenger_score / champion_score and not whether the champion moved."""
    import json
    from pathlib import Path

    from _support_tuning import _client
    from typer.testing import CliRunner

    import training.experiment as experiment
    from training.cli import app

    (tmp_path / "lines.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price\n1,2024-01-02,a,s,1,2\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: e\nseed: 1\ndata: {order_lines: {path: lines.csv}}\nsteps: [promote_churn, promote_dealers]\n")
    said = {"churn": {"decision": "promoted", "champion_version": "1", "champion_after": "2"},
            "dealers": {"decision": "refused", "champion_version": "1", "champion_after": "1"}}

    def invoke(argv):  # what `dealerml promote <cap> --json ...` writes
        base = {"bgnbd": {"auc": 0.75}}
        Path(argv[argv.index("--json") + 1]).write_text(json.dumps({
            **said[argv[1]], "challenger_score": 0.8, "champion_score": 0.7,
            "challenger_metrics": {"auc": 0.8, "baselines": base}, "champion_metrics": {"auc": 0.7, "baselines": base}}))
        return 0

    res = experiment.run_experiment(exp, invoke=invoke, log=lambda s: None)
    assert res.decisions == {"promote_churn": "promoted: champion v1 -> v2",
                             "promote_dealers": "refused: champion stays v1"}
    # the baselines both evaluations carry are logged once
    assert {k: v for k, v in res.metrics.items() if k.startswith("promote_churn.")} == {
        "promote_churn.challenger_score": 0.8, "promote_churn.champion_score": 0.7,
        "promote_churn.challenger_metrics.auc": 0.8, "promote_churn.champion_metrics.auc": 0.7,
        "promote_churn.baselines.bgnbd.auc": 0.75}
    tags = _client(home).get_run(res.run_id).data.tags
    assert tags["promote_churn.decision"] == "promoted" and tags["promote_dealers.champion_after"] == "1"
    # the command prints them under the figures
    real = experiment.run_experiment
    monkeypatch.setattr(experiment, "run_experiment", lambda path, log: real(path, invoke=invoke, log=log))
    r = CliRunner().invoke(app, ["experiment", "run", str(exp)])
    assert r.exit_code == 0, r.output
    assert "promote_churn: promoted: champion v1 -> v2\npromote_dealers: refused: champion stays v1\n" in r.output


def test_a_refused_promotion_says_by_how_much_it_fell_short_and_that_the_champion_stays():
    """'refused — ...; champion is now v1' read as if the champion had moved."""
    from training.registry import PromotionDecision

    def said(ch, champ, margin, direction="maximize", metric="auc"):
        return PromotionDecision("dealerml-churn", "refused", metric, direction, margin, "2", "1", ch, champ, "1",
                                 "u", "t").message()

    assert said(0.919585, 0.915968, 0.005) == (
        "dealerml-churn: refused — challenger v2 auc=0.919585, champion v1 auc=0.915968, margin 0.005 (maximize); "
        "it gains +0.003617, less than the margin 0.005, so the champion stays v1 (--force promotes it anyway, "
        "recorded as forced)")
    assert "; it is no better (+0), so the champion stays v1" in said(0.57, 0.57, 0.0)
    assert "; it is no better (-0.01), so the champion stays v1" in said(1.02, 1.01, 0.0, "minimize", "mase")
    assert "; it is no better (+0), so" in said(0.22054, 0.22054, 0.0, "minimize", "brier")  # not "-0"
    assert "it gains +0.02, less than the margin 0.05" in said(0.99, 1.01, 0.05, "minimize", "mase")


def test_derived_accounts_with_several_values_name_examples_and_the_value_kept(tmp_path):
    """'8 accounts have more than one Country' gave no account to look at (Online Retail: 12370 Cyprus / Austria)."""
    from training.data import load_order_book

    rows = ["1,2024-01-02,A,s,1,2,Cyprus", "2,2024-01-03,A,s,1,2,Cyprus", "3,2024-01-04,A,s,1,2,Austria",
            "4,2024-01-05,B,s,1,2,Spain"]
    (tmp_path / "lines.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price,Country\n"
                                        + "\n".join(rows) + "\n")
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("name: mine\ndata:\n  order_lines: {path: lines.csv, derive_accounts_from: {region: Country}}\n")
    book = load_order_book(cfg, as_of="2024-12-31")
    assert book.report.tables["accounts"].warnings == [
        "1 accounts have more than one Country; the most frequent is kept as region, e.g. A: Cyprus (2 lines), "
        "Austria (1 lines)"]
    assert dict(zip(book.accounts["account_id"], book.accounts["region"], strict=True)) == {"A": "Cyprus", "B": "Spain"}


def test_the_promotion_evidence_keeps_the_baselines_once_as_metrics(home):
    from _support_tuning import _client

    from training import registry

    df = make_data()
    _register(TinyModel(n_estimators=20, min_child_samples=5).fit(df.iloc[:60], df["y"].iloc[:60]), "mid")
    _register(TinyModel(n_estimators=40).fit(df.iloc[:350], df["y"].iloc[:350]), "good")
    test = df.iloc[350:]

    def evaluate(model):
        from training.churn_backtest import churn_metrics

        m = churn_metrics(test["y"], model.predict_proba(test))
        return {"auc": m["auc"], "cutoff": "2024-10-03", "baselines": {"bgnbd": {"auc": 0.61, "brier": 0.2}}}

    d = registry.promote("dealerml-churn", metric="auc", evaluate=evaluate)
    r = _client(home).get_run(d.evidence_run_id)
    assert r.data.metrics["baseline.bgnbd.auc"] == 0.61 and r.data.metrics["baseline.bgnbd.brier"] == 0.2
    assert "challenger.baselines" not in r.data.params and "champion.baselines" not in r.data.params
    assert r.data.params["challenger.cutoff"] == '"2024-10-03"'


def test_the_shipped_tuning_experiment_trains_a_champion_before_it_tunes_a_challenger():
    """On a fresh store its tune step registered the first version, which became champion unscored, and its
    promote step said 'unchanged': 'promote it only if it wins' did not hold on a first run."""
    from pathlib import Path

    import yaml

    from training.experiment import check_step, parse_steps

    path = Path(__file__).resolve().parents[1] / "experiments" / "churn_online_retail_tuning.yaml"
    steps = parse_steps(yaml.safe_load(path.read_text())["steps"], file=str(path))
    for i, step in enumerate(steps):
        check_step(step, i, file=str(path))
    names = [s.name for s in steps]
    assert names.index("train_churn") < names.index("tune_churn") < names.index("promote_churn")
