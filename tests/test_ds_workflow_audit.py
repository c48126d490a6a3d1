"""The data scientist's tune / promote / compare loop as a new user meets it (s9 audit).

Through the commands a user types, on the tiny real LightGBM target of _support_tuning (registered
under ``dealerml-churn`` so ``experiment compare churn`` reads it), with a real MLflow store and
Optuna journal under tmp_path:

* ``--resume`` of a study the storage does not hold is refused (exit 2, no traceback, nothing
  created or registered), instead of silently starting a new study and registering its best;
* a study name in use is refused before the data load, saying what to type when the study
  already holds the requested number of trials;
* a database URL with its ``://`` mistyped, and an unreachable database, are refused in plain words;
* a tune interrupted mid-trial (Ctrl-C / SIGTERM) registers nothing, exits 130 with the command
  that resumes it, and the study resumes; Optuna's traceback for the interrupt is dropped;
* tune prints each fold's test window, the best beside the untuned configuration by fold and on
  the latest fold, and logs that fold like a training run's backtest, so ``experiment compare``
  shows a tune run beside a training run with its kind, its untuned baseline and what it was
  tested on (and says so when a run does not say it);
* a target's ``note`` (demand under ``demand.hierarchy``) is printed once per command by tune and
  promote, never by the library (``demand_tuning.tuning_target`` used to print it from every
  worker and every evaluator).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support_tuning import TinyTarget, write_config  # noqa: E402 - after tests/ is put on sys.path

# --------------------------------------------------------------------------- targets (CLI --target specs)


class AuditTarget(TinyTarget):
    """TinyTarget as ``churn``, with the optional attributes the real targets give the tuner."""

    report_model = "lightgbm"
    note = "trials are scored on the tiny folds"

    def __init__(self, interrupt_at: int | None = None, counter: Path | None = None) -> None:
        super().__init__(name="churn")
        self.interrupt_at = interrupt_at
        self.counter = counter

    @property
    def fold_windows(self) -> list[str]:
        return [f"rows {c}..{c + 49}" for c in self.cutoffs]

    def evaluate(self, estimator) -> dict:  # promote's evaluation: on the latest fold, as the real targets do
        test = self.df.iloc[300:350]
        from _support_tuning import _auc

        return {"auc": _auc(test["y"], estimator.predict_proba(test)), "cutoff": "rows 300..349"}

    def fit_final(self, params: dict):
        model, metrics = super().fit_final(params)
        return model, {k: v for k, v in metrics.items() if k != "cutoff"}

    @property
    def evaluation_params(self) -> dict:
        return {"backtest.test_cutoff": "row-300", "horizon_days": 50}

    def score_fold(self, params: dict, fold: int) -> float:
        if self.interrupt_at is not None and self.counter is not None:
            n = int(self.counter.read_text() or 0) if self.counter.exists() else 0
            self.counter.write_text(str(n + 1))
            if n + 1 == self.interrupt_at:
                raise KeyboardInterrupt("signal 15")  # what tracking turns SIGTERM into
        return super().score_fold(params, fold)


def audit_target(cfg, book=None) -> AuditTarget:
    opts = dict((cfg.tuning or {}).get("target") or {})
    at = opts.get("interrupt_at")
    return AuditTarget(interrupt_at=at, counter=Path(opts["counter"]) if at else None)


def audit_evaluator(cfg, book=None):
    return AuditTarget().evaluate


def _run(*args: str):
    from typer.testing import CliRunner

    from training.cli import app

    return CliRunner().invoke(app, list(args))


def _tune(cfg: Path, *args: str):
    return _run("tune", "churn", "--config", str(cfg), "--target", "test_ds_workflow_audit:audit_target", *args)


def _versions(home: Path) -> list[str]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted((str(v.version) for v in c.search_model_versions("name='dealerml-churn'")), key=int)


def _no_traceback(out: str) -> None:
    assert "Traceback" not in out, out


# --------------------------------------------------------------------------- tests


def test_resume_of_an_unknown_study_is_refused_and_creates_nothing(home, tmp_path):
    import optuna

    from training.tuning_runtime import make_storage

    cfg = write_config(tmp_path)
    journal = tmp_path / "j.log"
    r = _tune(cfg, "--trials", "2", "--storage", str(journal), "--study-name", "first")
    assert r.exit_code == 0, r.output
    assert _versions(home) == ["1"]
    r = _tune(cfg, "--trials", "2", "--storage", str(journal), "--study-name", "frist", "--resume")
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert "--resume: there is no study 'frist' with trials in journal file" in r.output
    assert "did you mean 'first'?" in r.output and "leave out --resume to start a new study" in r.output
    # nothing created, nothing registered
    assert [s.study_name for s in optuna.get_all_study_summaries(make_storage(str(journal)))] == ["first"]
    assert _versions(home) == ["1"]
    # the library refuses it too (run_study called directly)
    from training.errors import ConfigError
    from training.tuning import run_study

    with pytest.raises(ConfigError, match="there is no study 'other'"):
        run_study(AuditTarget(), n_trials=1, study_name="other", seed=1, storage=str(journal), resume=True,
                  log=lambda s: None)


def test_a_study_in_use_is_refused_saying_what_to_type(home, tmp_path):
    cfg = write_config(tmp_path)
    journal = str(tmp_path / "j.log")
    assert _tune(cfg, "--trials", "2", "--storage", journal, "--study-name", "s", "--no-register").exit_code == 0
    r = _tune(cfg, "--trials", "2", "--storage", journal, "--study-name", "s")
    assert r.exit_code == 2
    _no_traceback(r.output)
    assert "study 's' already has 2 trials (2 finished, 0 failed)" in r.output
    # it already holds --trials 2: the advice is to ask for more, not to "continue it until it has 2"
    assert "add --resume with --trials above 2 to run more of it" in r.output
    r = _tune(cfg, "--trials", "5", "--storage", journal, "--study-name", "s")
    assert r.exit_code == 2 and "add --resume to continue it until it has 5 finished trials" in r.output


def test_storage_url_mistakes_are_said_in_plain_words(home, tmp_path):
    from training.errors import ConfigError
    from training.tuning_runtime import make_storage

    with pytest.raises(ConfigError, match="looks like a database URL without '://'"):
        make_storage("postgresql//postgres@127.0.0.1/test")
    assert not Path("postgresql").exists()
    cfg = write_config(tmp_path)
    r = _tune(cfg, "--trials", "1", "--storage", "postgresql://nobody@127.0.0.1:1/test", "--study-name", "x")
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert "cannot open the Optuna storage postgresql+psycopg://nobody@127.0.0.1:1/test: connection" in r.output
    assert "Background on this error" not in r.output and "(psycopg." not in r.output
    assert "tuning churn:" not in r.output  # refused before the data were loaded and the study announced


def test_a_storage_url_that_cannot_be_read_says_what_was_expected():
    """--storage http://host/optuna or a port that is not a number was refused with the driver's words alone
    ("Can't load plugin: sqlalchemy.dialects:http"), not what a storage should be."""
    from training.errors import ConfigError
    from training.tuning_runtime import make_storage

    expected = ("; expected a database URL such as postgresql://user@host:5432/optuna (the PostgreSQL driver comes "
                "with dealerml), or a journal file path")
    for url, said in (
        ("http://example.com/optuna", "http://example.com/optuna: Can't load plugin: sqlalchemy.dialects:http"),
        ("postgresql://127.0.0.1:abc/optuna",
         "postgresql+psycopg://127.0.0.1:abc/optuna: invalid literal for int() with base 10: 'abc'"),
    ):
        with pytest.raises(ConfigError) as ei:
            make_storage(url)
        assert str(ei.value) == f"cannot open the Optuna storage {said}{expected}"


def test_interrupted_tune_registers_nothing_says_how_to_resume_and_resumes(home, tmp_path):
    import optuna

    from training.tuning_runtime import make_storage

    counter = tmp_path / "calls"
    cfg = write_config(tmp_path, tuning={"target": {"interrupt_at": 5, "counter": str(counter)}})
    journal = str(tmp_path / "j.log")
    r = _tune(cfg, "--trials", "3", "--storage", journal, "--study-name", "k")
    assert r.exit_code == 130, r.output
    _no_traceback(r.output)
    assert "interrupted: nothing was registered; the finished trials stay in study 'k'" in r.output
    assert f"--study-name k --resume --trials 3 --storage {journal}" in r.output
    assert _versions(home) == []
    states = [t.state.name for t in optuna.load_study(study_name="k", storage=make_storage(journal)).trials]
    assert states == ["COMPLETE", "FAIL"]  # 3 folds of trial 0, then trial 1 stopped in its 2nd fold
    cfg = write_config(tmp_path)  # the same config without the interruption
    r = _tune(cfg, "--trials", "3", "--storage", journal, "--study-name", "k", "--resume")
    assert r.exit_code == 0, r.output
    assert "resuming study 'k': 1 of 3 trial(s) already finished" in r.output and "running 2 more" in r.output
    assert _versions(home) == ["1"]


def test_the_commands_printed_to_resume_promote_and_look_survive_the_shell(home, tmp_path, monkeypatch):
    """The resume command an interrupted tune prints, the promote command of a new challenger and the
    mlflow ui line were printed unquoted: with --study-name 'nightly; v2' the pasted resume ran `v2` as a
    command and resumed study 'nightly', and a config or $DEALERML_HOME with a space split in two."""
    import shlex

    folder = tmp_path / "my configs"
    folder.mkdir()
    counter = tmp_path / "calls"
    cfg = write_config(folder, tuning={"target": {"interrupt_at": 5, "counter": str(counter)}})
    journal = str(tmp_path / "j.log")
    r = _tune(cfg, "--trials", "3", "--storage", journal, "--study-name", "nightly; v2")
    assert r.exit_code == 130, r.output
    line = next(x for x in r.output.splitlines() if "Continue it with: " in x).split("Continue it with: ", 1)[1]
    argv = shlex.split(line)
    assert argv == ["dealerml", "tune", "churn", "--config", str(cfg), "--study-name", "nightly; v2", "--resume",
                    "--trials", "3", "--storage", journal]
    cfg = write_config(folder)  # the same config without the interruption
    r = _run(*argv[1:], "--target", "test_ds_workflow_audit:audit_target")
    assert r.exit_code == 0, r.output
    assert "resuming study 'nightly; v2': 1 of 3 trial(s) already finished" in r.output
    ui = next(x for x in r.output.splitlines() if x.startswith("see it with: ")).removeprefix("see it with: ")
    assert shlex.split(ui)[-1] == f"sqlite:///{home / 'mlflow.db'}"
    from training import tracking
    from training.commands._common import promote_hint

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "a home"))
    assert shlex.split(tracking.ui_command()) == ["mlflow", "ui", "--backend-store-uri",
                                                  f"sqlite:///{tmp_path / 'a home' / 'mlflow.db'}"]

    hint = promote_hint("dealerml-churn", "1", cfg)
    assert shlex.split(hint.split("`")[1]) == ["dealerml", "promote", "churn", "--config", str(cfg)]


def test_optuna_drops_the_traceback_of_an_interrupt_only():
    from training.tuning import _NoInterruptTraceback

    f = _NoInterruptTraceback()
    for exc, kept in ((KeyboardInterrupt("signal 15"), False), (ValueError("bad fold"), True)):
        try:
            raise exc
        except BaseException:  # noqa: BLE001
            rec = logging.LogRecord("optuna", logging.WARNING, __file__, 1, "Trial 2 failed", None, sys.exc_info())
        assert f.filter(rec) is True
        assert (rec.exc_info is not None) is kept


def test_tune_prints_folds_and_baselines_and_compare_reads_it_beside_train(home, tmp_path):
    from mlflow import MlflowClient

    cfg = write_config(tmp_path)
    journal = str(tmp_path / "j.log")
    r = _tune(cfg, "--trials", "3", "--storage", journal, "--study-name", "t", "--seed", "3")
    assert r.exit_code == 0, r.output
    out = r.output
    # the note once, the folds with their windows, best beside untuned by fold and on the latest fold
    assert out.count("note: trials are scored on the tiny folds") == 1
    assert "3 rolling-origin fold(s), each fitted only on data before its cutoff" in out
    assert "  fold 0: rows 200..249" in out and "  fold 2: rows 300..349" in out
    assert "untuned (the config's settings, same folds):" in out and "higher is better" in out
    assert "  by fold (earliest first): best " in out and "; untuned " in out
    assert "  latest fold, rows 300..349: tuned auc " in out and " beside untuned " in out
    assert "optimistic" in out
    # the parent run logs the latest fold as a backtest: the tuned model, the untuned one, the test
    uri = f"sqlite:///{home / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v = c.get_model_version("dealerml-churn", "1")
    run = c.get_run(v.run_id)
    m, p = run.data.metrics, run.data.params
    assert m["lightgbm.auc"] == pytest.approx(m["auc"])
    assert m["untuned.auc"] == pytest.approx(m["untuned_auc__fold.2"])
    assert p["backtest.test_cutoff"] == "row-300" and p["tune.folds"].startswith("rows 200..249 | ")
    # compare: two tune runs on the same folds, each with its kind, the untuned baseline and the test
    r = _tune(cfg, "--trials", "1", "--storage", journal, "--study-name", "t2", "--no-register")
    assert r.exit_code == 0, r.output
    r = _run("experiment", "compare", "churn", "--last", "2")
    assert r.exit_code == 0, r.output
    assert " tune " in r.output and "tune run(s) #1, #2: lightgbm = the tuned settings" in r.output
    assert "untuned" in r.output.split("by model:")[1]
    assert "comparable: yes (same data" in r.output and "same test: backtest.test_cutoff row-300, horizon_days 50" in r.output


def test_compare_says_when_a_run_does_not_say_what_it_was_tested_on():
    from types import SimpleNamespace

    from training.commands.compare import compare_runs, render

    def run(i, params, tags):
        return SimpleNamespace(run_id=f"{i}" * 32, name=f"r{i}", status="FINISHED", started="2026-11-26 17:00",
                               params=params, metrics={"lightgbm.auc": 0.8, "untuned.auc": 0.7}, tags=tags,
                               registered=())

    new = run(1, {"backtest.test_cutoff": "2024-10-03", "horizon_days": "90", "tune.n_trials": "4"},
              {"dealerml.step": "tune"})
    old = run(2, {"tune.n_trials": "4"}, {"dealerml.step": "tune"})
    cmp = compare_runs("churn", [new, old], "auc")
    assert not cmp["comparable"]
    assert any(s.startswith("run #2 does not say what it was tested on (a tuning run") for s in cmp["not_comparable_because"])
    text = render(cmp)
    assert "comparable: NO" in text and "untuned" in text
    # a run without a data fingerprint is "cannot be confirmed", not "different data"
    fp = {"data.order_lines_sha256": "ab" * 32}
    cmp = compare_runs("churn", [run(4, dict(new.params), {"dealerml.step": "tune", **fp}),
                                 run(5, dict(new.params), {})], "auc")
    assert cmp["not_comparable_because"] == ["run(s) #2 logged no data fingerprint (data.order_lines_sha256), so the "
                                             "same data cannot be confirmed"]
    cmp = compare_runs("churn", [new, run(3, dict(new.params), {"dealerml.step": "tune"})], "auc")
    assert cmp["comparable"] and cmp["measured_on"] == {"backtest.test_cutoff": "2024-10-03", "horizon_days": "90"}
    assert "same test: backtest.test_cutoff 2024-10-03, horizon_days 90" in render(cmp)


def test_the_note_is_printed_by_the_commands_once_never_by_the_library(home, tmp_path):
    # promote: the evaluator's target says its note once
    cfg = write_config(tmp_path)
    journal = str(tmp_path / "j.log")
    assert _tune(cfg, "--trials", "1", "--storage", journal, "--study-name", "a").exit_code == 0
    assert _tune(cfg, "--trials", "1", "--storage", journal, "--study-name", "b").exit_code == 0
    r = _run("promote", "churn", "--config", str(cfg), "--evaluator", "test_ds_workflow_audit:audit_evaluator",
             "--metric", "auc")
    assert r.exit_code == 0, r.output
    assert r.output.count("note: trials are scored on the tiny folds") == 1
    # the tuned challenger is scored on the fold it was picked on: said
    assert "caution: the challenger was tuned (study b) on a fold with this cutoff (rows 300..349)" in r.output
    assert "optimistic" in r.output
    # a worker process builds the target but says nothing of it
    r = _tune(cfg, "--trials", "1", "--storage", journal, "--study-name", "w", "--worker")
    assert r.exit_code == 0 and "note:" not in r.output


def test_demand_tuning_target_keeps_its_hierarchy_note_to_itself(synthetic_config, tmp_path, capfd):
    from conftest import write_config as write_synthetic_config

    from training.config import load_config
    from training.demand_tuning import tuning_target

    demand = {"freq": "W", "horizon": 4, "windows": 1, "levels": ["sku", "location"], "hierarchy": True, "top_n": 5}
    cfg = write_synthetic_config(synthetic_config, tmp_path / "hier.yaml", demand=demand,
                                 tuning={"target": {"n_folds": 2}})
    capfd.readouterr()
    t = tuning_target(load_config(cfg))
    out, err = capfd.readouterr()
    assert "note:" not in out + err  # the library is silent; the commands print t.note once
    assert t.note is not None and "scored on the bottom level (sku/location)" in t.note
    plain = write_synthetic_config(synthetic_config, tmp_path / "plain.yaml", demand={**demand, "hierarchy": False})
    tp = tuning_target(load_config(plain))
    assert tp.note is None
    # the folds it prints: two windows of 4 weeks, 4 weeks apart, the latest ending on the last week
    w = tp.fold_windows
    assert len(w) == 2 and all("(4 periods)" in x for x in w)
    last = str(tp.series["ds"].max())[:10]
    assert w[1].endswith(f"..{last} (4 periods)")
    assert tp.evaluation_params == {"horizon": 4, "windows": 1, "freq": "W"}


def test_a_promote_killed_before_its_decision_took_effect_says_so_in_its_evidence(home, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from training import registry, tracking

    cfg = write_config(tmp_path)
    journal = str(tmp_path / "j.log")
    assert _tune(cfg, "--trials", "1", "--storage", journal, "--study-name", "a", "--seed", "1").exit_code == 0
    assert _tune(cfg, "--trials", "2", "--storage", journal, "--study-name", "b", "--seed", "2").exit_code == 0
    evaluate = AuditTarget().evaluate
    real_set_alias = tracking.set_alias

    def killed(*a, **k):  # the process dies between the evidence run and the alias move
        raise KeyboardInterrupt("signal 9")

    monkeypatch.setattr(tracking, "set_alias", killed)
    with pytest.raises(KeyboardInterrupt):
        registry.promote("dealerml-churn", metric="auc", evaluate=evaluate, force=True)
    monkeypatch.setattr(tracking, "set_alias", real_set_alias)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = c.get_experiment_by_name("dealerml-promotion")
    (run,) = c.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["promotion.complete"] == "false"
    assert tracking.get_alias_version("dealerml-churn", "champion") == "1"
    # run again: the decision takes effect and its evidence says so
    d = registry.promote("dealerml-churn", metric="auc", evaluate=evaluate, force=True)
    assert d.champion_after == "2" and tracking.get_alias_version("dealerml-churn", "champion") == "2"
    assert c.get_run(d.evidence_run_id).data.tags["promotion.complete"] == "true"


@pytest.mark.parametrize("argv", [["experiment", "compare", "churn"], ["rollback", "churn"],
                                  ["promote", "churn", "--config", "CFG"]])
def test_read_only_commands_on_a_home_without_a_store_refuse_and_create_nothing(tmp_path, monkeypatch, argv):
    home = tmp_path / "typo-home"
    monkeypatch.setenv("DEALERML_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    argv = [str(write_config(tmp_path)) if a == "CFG" else a for a in argv]
    r = _run(*argv)
    assert r.exit_code == 2, r.output
    _no_traceback(r.output)
    assert f"there is no MLflow store at {home / 'mlflow.db'} (DEALERML_HOME={home})" in r.output
    assert not (home / "mlflow.db").exists()
