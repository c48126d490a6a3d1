"""What a tuning study's trials are scored on, beyond its search space and default params. A
``--resume`` after changing demand.top_n / horizon, tuning.target.metric, churn.n_train_cutoffs /
train_horizon_days or the data itself resumed silently (checked on a synthetic book: top_n 6 -> 3
kept the best mase 0.687 of the 6-series problem while the 3-series one scored 1.09) and mixed
trials scored on different problems. Now each such setting (and a sha256 of the data scored) is
recorded with the study and a ``--resume`` on other values is refused naming each, before anything
is added to the study; serving: / alerts settings do not block it; a study recorded before these
keys resumes with a note naming them."""

from __future__ import annotations

import pytest
from _support_demand import _config
from _support_tuning import TinyTarget

from training.config import load_config


def _study_with_one_trial(storage: str, identity: dict, direction: str):
    """A study as ``run_study`` leaves it: one finished trial and the identity it was scored on."""
    import optuna

    from training.tuning_runtime import make_storage

    study = optuna.create_study(study_name="s", storage=make_storage(storage), direction=direction)
    study.set_user_attr("dealerml.identity", identity)
    study.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))
    return study


def _left_as_it_was(storage: str, identity: dict) -> None:
    import optuna

    from training.tuning_runtime import make_storage

    study = optuna.load_study(study_name="s", storage=make_storage(storage))
    assert len(study.trials) == 1 and study.user_attrs["dealerml.identity"] == identity  # nothing was added


def _refusal(storage: str, differ: str, data: bool = False) -> str:
    return (f"--resume: study 's' in journal file {storage} was tuned on other settings, so its trials are not "
            f"comparable with this run's: {differ}; resume it with the config {'and the data ' if data else ''}it was "
            "made with, or choose a new --study-name")


def _demand(tmp_path, *, demand: str = "", extra: str = "", target: str = "{n_folds: 1}", base: int = 8):
    """The demand target of a monthly series file (4 series, 24 months, horizon 3); ``demand``: lines added
    to the demand: section (or replacing its horizon), ``extra``: top-level sections."""
    from training.demand_tuning import tuning_target

    return tuning_target(load_config(_demand_config(tmp_path, demand=demand, extra=extra, target=target, base=base)))


def _demand_config(tmp_path, *, demand: str = "", extra: str = "", target: str = "{n_folds: 1}", base: int = 8):
    """The config file of :func:`_demand`'s target."""
    d = tmp_path / f"d{len(list(tmp_path.glob('d*')))}"
    d.mkdir()
    cfg_path, _ = _config(d, target=target, seed=5, start="2020-01-01", periods=24, n=4, base=base, slope=4,
                          models="[SeasonalNaive]", n_estimators=10)
    text = cfg_path.read_text()
    if demand.startswith("  horizon:"):
        text = text.replace("  horizon: 3\n", demand)
    elif demand:
        text = text.replace("  selection_windows: 1\n", "  selection_windows: 1\n" + demand)
    cfg_path.write_text(text + extra)
    return cfg_path


def test_demand_resume_on_other_scoring_settings_or_data_is_refused_naming_each(tmp_path, home):
    from training.errors import ConfigError
    from training.tuning import run_study
    from training.tuning_identity import study_identity

    made = _demand(tmp_path)
    ident = study_identity(made)
    sha = ident["demand series sha256"]
    assert ident["demand.horizon"] == "3" and ident["demand.top_n"] == "not set"
    assert ident["tuning.target.step"] == "not set (demand.horizon)"
    # what changes no trial's score leaves the identity as it was: a resume is not blocked by it
    same = _demand(tmp_path, demand="  service_level: 0.9\n  lead_time_days: 7\n  n_jobs: 2\n",
                   extra="serving: {max_body_bytes: 2000000}\npromotion: {demand: {metric: rmsse}}\n")
    assert study_identity(same) == ident
    storage = str(tmp_path / "j.log")
    _study_with_one_trial(storage, ident, "minimize")
    top3 = _demand(tmp_path, demand="  top_n: 3\n")
    cases = [
        (top3, f"demand.top_n: not set (this run: 3); demand series sha256: {sha} (this run: "
               f"{study_identity(top3)['demand series sha256']})", True),
        (_demand(tmp_path, target="{n_folds: 1, metric: rmsse}"),
         "metric: mase (minimize) (this run: rmsse (minimize)); tuning.target.metric: mase (this run: rmsse)", False),
    ]
    other_data = _demand(tmp_path, base=9)  # the same settings, other demand figures
    cases.append((other_data, f"demand series sha256: {sha} (this run: "
                              f"{study_identity(other_data)['demand series sha256']})", True))
    for target, differ, data in cases:
        with pytest.raises(ConfigError) as ei:
            run_study(target, n_trials=3, study_name="s", seed=1, storage=storage, register=False, resume=True,
                      log=lambda s: None)
        assert str(ei.value) == _refusal(storage, differ, data)
    _left_as_it_was(storage, ident)


def test_demand_horizon_and_step_are_named(tmp_path):
    from training.tuning_identity import _identity_differences, study_identity

    a = study_identity(_demand(tmp_path))
    h2 = _identity_differences(a, study_identity(_demand(tmp_path, demand="  horizon: 2\n")))
    assert [d.split(":")[0] for d in h2] == ["demand.horizon", "folds"] and h2[0] == "demand.horizon: 3 (this run: 2)"
    step = _identity_differences(a, study_identity(_demand(tmp_path, target="{n_folds: 1, step: 2}")))
    assert step == ["tuning.target.step: not set (demand.horizon) (this run: 2)"]  # one fold: the same window


def test_churn_resume_on_other_training_windows_is_refused_by_the_cli(synthetic_book, synthetic_config, tmp_path,
                                                                     home):
    from conftest import write_config
    from typer.testing import CliRunner

    from training.churn_tuning import tuning_target
    from training.cli import app
    from training.tuning_identity import study_identity

    churn = {"horizon_days": 90, "n_train_cutoffs": 2, "train_step_days": 60, "model": {"n_estimators": 20}}

    def cfg(name: str, **sections):
        return write_config(synthetic_config, tmp_path / name, tuning={"target": {"n_folds": 1}}, **sections)

    made = tuning_target(load_config(cfg("a.yaml", churn=churn)), synthetic_book)
    ident = study_identity(made, synthetic_book)
    assert ident["churn.n_train_cutoffs"] == "2" and ident["churn.train_horizon_days"] == "not set (churn.horizon_days)"
    assert len(ident["accounts sha256"]) == 64 and len(ident["service events sha256"]) == 64
    # tiers, slices and serving: score no trial
    same = cfg("same.yaml", churn={**churn, "slices": ["region"], "tiers": {"capacity_per_run": 5}},
               serving={"max_body_bytes": 2000000})
    assert study_identity(tuning_target(load_config(same), synthetic_book), synthetic_book) == ident
    storage = str(tmp_path / "c.log")
    _study_with_one_trial(storage, ident, "maximize")
    other = cfg("b.yaml", churn={**churn, "n_train_cutoffs": 3, "train_horizon_days": 60})
    r = CliRunner().invoke(app, ["tune", "churn", "--config", str(other), "--trials", "3", "--storage", storage,
                                 "--study-name", "s", "--resume", "--no-register"])
    assert r.exit_code == 2, r.output
    assert _refusal(storage, "churn.n_train_cutoffs: 2 (this run: 3); churn.train_horizon_days: not set "
                             "(churn.horizon_days) (this run: 60)") in " ".join(r.output.split()), r.output
    _left_as_it_was(storage, ident)


def test_what_a_config_says_before_the_data_load_is_the_study_identity_without_the_data(synthetic_book,
                                                                                       synthetic_config, tmp_path):
    """``config_identity`` (compared by ``tune --resume`` before the data load) holds, key for key, what
    ``run_study`` records after it, all of it but the folds and the data's sha256: a value of its own would
    refuse every resume of a study made with the same config."""
    from conftest import write_config

    from training import churn_tuning, demand_tuning
    from training.tuning_identity import study_identity

    cfg = load_config(write_config(
        synthetic_config, tmp_path / "a.yaml", tuning={"target": {"n_folds": 1, "churn": {"fold_step_days": 45},
                                                                "demand": {"step": 2}}},
        churn={"n_train_cutoffs": 2, "calibration": "sigmoid", "model": {"n_estimators": 20}},
        demand={"top_n": 5, "horizon": 4, "models": ["SeasonalNaive"]}))
    series = load_config(_demand_config(tmp_path, demand="  top_n: 3\n", target="{n_folds: 1, step: 2}"))
    shas = {"folds", "order lines sha256"}
    for module, c, data in ((churn_tuning, cfg, shas | {"accounts sha256", "service events sha256"}),
                            (demand_tuning, cfg, shas | {"demand series sha256"}),
                            (demand_tuning, series, {"folds", "demand series sha256"})):
        full = study_identity(module.tuning_target(c, synthetic_book), synthetic_book if c is cfg else None)
        early = module.config_identity(c)
        assert early == {k: full[k] for k in early}, module
        assert set(full) - set(early) == data, module
    assert "calibration=sigmoid" in churn_tuning.config_identity(cfg)["fixed settings"]


def test_a_resume_on_other_settings_is_refused_before_the_data_load(synthetic_book, synthetic_config, tmp_path,
                                                                     home, monkeypatch):
    """``tune --resume`` with settings the study was not tuned on was refused only after the order book was
    loaded and the features built (minutes on a large book); now before, naming each setting; the same
    settings go on to the load (where the data's sha256 is checked)."""
    from conftest import write_config
    from typer.testing import CliRunner

    from training.churn_tuning import tuning_target
    from training.cli import app
    from training.tuning_identity import study_identity

    loads: list = []

    def no_load(cfg):
        loads.append(cfg)
        raise AssertionError("the data were loaded")

    monkeypatch.setattr("training.commands.experiments._load_book", no_load)
    churn = {"horizon_days": 90, "n_train_cutoffs": 2, "train_step_days": 60, "model": {"n_estimators": 20}}

    def cfg(name: str, **sections):
        return write_config(synthetic_config, tmp_path / name, **{"tuning": {"target": {"n_folds": 1}}, **sections})

    made = cfg("a.yaml", churn=churn)
    ident = study_identity(tuning_target(load_config(made), synthetic_book), synthetic_book)
    storage = str(tmp_path / "c.log")
    _study_with_one_trial(storage, ident, "maximize")
    tune = ["tune", "churn", "--trials", "3", "--storage", storage, "--study-name", "s", "--resume", "--no-register"]
    other = cfg("b.yaml", churn={**churn, "n_train_cutoffs": 3}, tuning={"target": {"n_folds": 1, "metric": "pr_auc"}})
    r = CliRunner().invoke(app, [*tune, "--config", str(other)])
    assert r.exit_code == 2, (r.output, r.exception)
    assert _refusal(storage, "metric: auc (maximize) (this run: pr_auc (maximize)); churn.n_train_cutoffs: 2 (this "
                             "run: 3); tuning.target.metric: auc (this run: pr_auc)") in " ".join(r.output.split())
    assert loads == [] and "rolling-origin fold" not in r.output
    _left_as_it_was(storage, ident)
    r = CliRunner().invoke(app, [*tune, "--config", str(made)])  # the same settings: on to the data load
    assert isinstance(r.exception, AssertionError) and len(loads) == 1, r.output
    # demand, on a series table: the setting named, without the sha256 the series would have given
    target = _demand(tmp_path)
    storage = str(tmp_path / "d.log")
    _study_with_one_trial(storage, study_identity(target), "minimize")
    r = CliRunner().invoke(app, ["tune", "demand", "--config", str(_demand_config(tmp_path, demand="  top_n: 3\n")),
                                 "--trials", "3", "--storage", storage, "--study-name", "s", "--resume"])
    assert r.exit_code == 2, (r.output, r.exception)
    assert _refusal(storage, "demand.top_n: not set (this run: 3)") in " ".join(r.output.split()), r.output
    assert len(loads) == 1


class _WithIdentity(TinyTarget):
    identity = {"tiny.window": 50, "tiny data sha256": "aa" * 32}


def test_a_study_recorded_before_the_new_keys_resumes_with_a_note_and_records_them(home, tmp_path):
    import optuna

    from training.errors import ConfigError
    from training.tuning import run_study
    from training.tuning_runtime import make_storage

    storage = str(tmp_path / "j.log")
    run_study(TinyTarget(), n_trials=2, study_name="s", seed=1, storage=storage, register=False, log=lambda s: None)
    study = optuna.load_study(study_name="s", storage=make_storage(storage))
    old = dict(study.user_attrs["dealerml.identity"])  # as a study made before identity keys were added
    assert "tiny.window" not in old
    said: list[str] = []
    res = run_study(_WithIdentity(), n_trials=3, study_name="s", seed=1, storage=storage, register=False, resume=True,
                    log=said.append)
    assert res.n_already_finished == 2 and res.n_complete + res.n_pruned == 3
    assert said[0] == (
        "note: study 's' was made before dealerml recorded tiny.window, tiny data sha256 with its trials, so this run "
        "could not check that its earlier trials were scored on the same; they are recorded now (this run's values) "
        "and checked by later runs. If any of them changed since the study was made, its earlier trials are not "
        "comparable with this run's: stop and choose a new --study-name")
    now = optuna.load_study(study_name="s", storage=make_storage(storage)).user_attrs["dealerml.identity"]
    assert now == {**old, "tiny.window": "50", "tiny data sha256": "aa" * 32}
    # recorded: the next resume checks them
    other = type("OtherWindow", (TinyTarget,), {"identity": {"tiny.window": 40, "tiny data sha256": "aa" * 32}})()
    with pytest.raises(ConfigError) as ei:
        run_study(other, n_trials=4, study_name="s", seed=1, storage=storage, register=False, resume=True,
                  log=lambda s: None)
    assert str(ei.value) == _refusal(storage, "tiny.window: 50 (this run: 40)")
    assert len(optuna.load_study(study_name="s", storage=make_storage(storage)).trials) == 3
