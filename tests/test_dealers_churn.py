"""`dealerml score dealers` takes churn risk from the registered churn champion (scored as of the
same cutoff by the churn CLI's ``score_accounts``), as the service's /dealer_scores does, else from
1 - BG/NBD P(alive); ``--churn-scores`` wins over both. A real MLflow store under tmp_path, the real CLI, the session synthetic network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import write_config
from typer.testing import CliRunner

CUTOFF = "2024-06-01"
# The cheapest sections the commands accept (one training cutoff, few trees): the assertions are about where
# the dealers' churn risk comes from and what is said about it, not about either model's quality. Every
# `score dealers --fit` fits the dealers scorer again (2 cutoffs and 40 trees made each about a third longer).
SMALL_DEALERS = {"horizon_days": 182, "train": {"n_cutoffs": 1, "step_days": 60, "n_estimators": 10, "num_leaves": 7}}
SMALL_CHURN = {"n_train_cutoffs": 1, "model": {"n_estimators": 10},
               "tiers": {"high_probability": 0.3, "contact_cost": 1.0, "capacity_per_run": 20}}


@pytest.fixture()
def config(synthetic_config, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return write_config(synthetic_config, tmp_path / "cfg.yaml", dealers=SMALL_DEALERS, churn=SMALL_CHURN)


_FITTED: dict = {}
"""The dealers scorers fitted in this module, by what they were fitted from (see _fit_each_dealers_scorer_once)."""


def _content(frame) -> object:
    return None if frame is None else (frame.shape, tuple(frame.columns),
                                       int(pd.util.hash_pandas_object(frame, index=True).to_numpy().sum()))


@pytest.fixture(autouse=True)
def _fit_each_dealers_scorer_once(monkeypatch):
    """`score dealers --fit` and _served_table fit the dealers scorer again at every call, from the same rows,
    settings, cutoff and seed: a dozen identical fits in this module, most of its time. The fit is deterministic
    and scoring does not change a fitted scorer, so each distinct fit (keyed by the content of its inputs) runs
    once per module and its scorer is reused. The churn risk, what these tests are about, is still read from the
    registry (or --churn-scores) by every command; only the dealers fit is shared."""
    from training import dealers_backtest

    real = dealers_backtest.fit_pipeline

    def fit_once(order_lines, accounts, service_events, *, cutoff, settings, seed=0, progress=None, template=None):
        if progress is not None or template is not None:
            return real(order_lines, accounts, service_events, cutoff=cutoff, settings=settings, seed=seed,
                        progress=progress, template=template)
        key = (str(pd.Timestamp(cutoff)), settings.model_dump_json(), seed,
               _content(order_lines), _content(accounts), _content(service_events))
        if key not in _FITTED:
            _FITTED[key] = real(order_lines, accounts, service_events, cutoff=cutoff, settings=settings, seed=seed)
        return _FITTED[key]

    monkeypatch.setattr(dealers_backtest, "fit_pipeline", fit_once)


def _run(*args, code=0):
    from training.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == code, (r.output, r.exception)
    return r.output


def _score(config, out, *extra):
    text = _run("score", "dealers", "--config", config, "--cutoff", CUTOFF, "--fit", "--out", out, *extra)
    return pd.read_csv(out, dtype={"account_id": str}).set_index("account_id"), text


def _served_table(config, tmp_path):
    """The service's dealer ranking (serving.dealers.DealersBackend.build, as the loader calls it)
    at CUTOFF (serving.dealers_cutoff) with the scorer `score dealers --fit` fits at CUTOFF."""
    from types import SimpleNamespace

    import yaml

    from serving.dealers import DealersBackend
    from training.commands.dealers import _load
    from training.dealers_backtest import fit_pipeline

    raw = yaml.safe_load(config.read_text())
    raw["serving"] = {"dealers_cutoff": CUTOFF}
    pinned = tmp_path / "served.yaml"
    pinned.write_text(yaml.safe_dump(raw))
    cfg, settings, book = _load(pinned, None)
    scorer = fit_pipeline(book.order_lines, book.accounts, book.service_events, cutoff=pd.Timestamp(CUTOFF),
                          settings=settings, seed=cfg.seed)["scorer"]
    slot = SimpleNamespace(name="dealerml-dealers", version="fit")  # the registry slot's name and version
    return DealersBackend.build(scorer, slot, book, cfg)


def _same_rows(batch, backend):
    """The API's dealers (potential: (1 - churn risk) x upside, reasons with the churn sentence) are
    the batch table's rows, in its order."""
    served = pd.DataFrame(backend.records).set_index("account_id")
    assert served.index.tolist() == batch.index.tolist()
    assert np.allclose(served["potential"], batch["potential"], rtol=1e-9, atol=1e-9)
    reasons = batch[["reason_1", "reason_2", "reason_3"]].apply(lambda r: [x for x in r if isinstance(x, str) and x], axis=1)
    assert served["reasons"].tolist() == reasons.tolist()


@pytest.mark.slow
def test_score_dealers_takes_churn_risk_from_the_churn_model(config, tmp_path):
    # no churn model registered: BG/NBD for every account, and the summary says so
    before, text = _score(config, tmp_path / "bgnbd.csv")
    assert (before["churn_source"] == "bgnbd").all() and before["churn_model_version"].isna().all()
    # a home without a store (nothing trained yet): no champion, and no empty store created
    assert "churn model for 0 accounts (no MLflow store at " in text
    assert "so no dealerml-churn champion)" in text

    _run("train", "churn", "--config", config)
    _run("score", "churn", "--config", config, "--cutoff", CUTOFF, "--out", tmp_path / "churn.csv")
    churn = pd.read_csv(tmp_path / "churn.csv", dtype={"account_id": str}).set_index("account_id")

    # a challenger only (the first version is champion too; here its champion alias is removed, as an
    # operator may): the service's /dealer_scores takes the champion only, so the batch table does
    # too (it took the challenger: the table and the API ranked the same dealers differently)
    from training import tracking

    tracking.delete_alias("dealerml-churn", "champion")
    only_ch, text = _score(config, tmp_path / "challenger_only.csv")
    assert (only_ch["churn_source"] == "bgnbd").all()
    assert np.array_equal(only_ch.loc[before.index, "churn_risk"], before["churn_risk"])
    assert ("churn model for 0 accounts (no dealerml-churn champion; the challenger dealerml-churn/1 is not used, "
            "as the service's /dealer_scores does not use it)") in text
    assert "`dealerml promote churn --config" in text and "--churn-alias challenger" in text
    served = _served_table(config, tmp_path)  # what /dealer_scores ranks from, for the same cutoff and scorer
    _same_rows(only_ch, served)
    asked, text = _score(config, tmp_path / "asked.csv", "--churn-alias", "challenger")
    assert (asked["churn_source"] == "churn_model").any() and "(dealerml-churn/1, the challenger)" in text
    tracking.set_alias("dealerml-churn", "champion", "1")  # what `dealerml promote churn` does to a first version

    after, text = _score(config, tmp_path / "model.csv")
    assert np.array_equal(after["churn_risk"], asked.loc[after.index, "churn_risk"])
    served = _served_table(config, tmp_path)
    assert served.churn_source == "dealerml-churn/1"
    # the table names the churn version behind its potentials, as /dealer_scores does (churn_source)
    assert after["churn_model_version"].unique().tolist() == [served.churn_source]
    _same_rows(after, served)
    assert set(after.index) == set(before.index)
    from_model = after["churn_source"] == "churn_model"
    # every account the churn model scores (ordered in its lookback window) takes its probability
    assert set(after.index[from_model]) == set(churn.index) & set(after.index)
    assert from_model.sum() > 0.5 * len(after)
    got = after.loc[from_model, "churn_risk"]
    assert np.abs(got.to_numpy() - churn.loc[got.index, "probability"].to_numpy()).max() < 1e-9
    # the rest keep 1 - BG/NBD P(alive), unchanged from the first run
    rest = after.index[~from_model]
    assert np.allclose(after.loc[rest, "churn_risk"], before.loc[rest, "churn_risk"], atol=1e-12)
    assert f"churn model for {int(from_model.sum())} accounts (dealerml-churn/1, the champion)" in text
    # the risk is in the ranking: potential = (1 - risk) * (upside + w * headroom)
    gross = after["upside"] + 0.25 * after["headroom"]
    assert np.allclose(after["potential"], (1 - after["churn_risk"]) * gross, rtol=1e-9, atol=1e-6)
    assert not np.allclose(after.loc[got.index, "churn_risk"], before.loc[got.index, "churn_risk"])
    # reasons name the risk and its source, with the row's own numbers
    risky = after[from_model & (after["churn_risk"] >= 0.5) & (gross > 0)]
    assert len(risky) > 0
    for acc, r in risky.iterrows():
        want = (f"churn risk {r['churn_risk']:.0%} (churn model) discounts its upside: potential "
                f"{r['potential']:,.0f} instead of {gross[acc]:,.0f}")
        assert want in (r["reason_2"], r["reason_3"]), (acc, r[["reason_1", "reason_2", "reason_3"]].tolist())
    assert not after.loc[after["churn_risk"] < 0.5, ["reason_2", "reason_3"]].apply(
        lambda c: c.astype(str).str.startswith("churn risk")).any().any()

    # --churn-scores wins over the registry
    some = after.index[:5]
    pd.DataFrame({"account_id": some, "probability": 0.9}).to_csv(tmp_path / "given.csv", index=False)
    given, text = _score(config, tmp_path / "given_out.csv", "--churn-scores", tmp_path / "given.csv")
    assert (given.loc[some, "churn_risk"] == 0.9).all() and (given.loc[some, "churn_source"] == "churn_model").all()
    assert (given.drop(index=some)["churn_source"] == "bgnbd").all() and given["churn_model_version"].isna().all()
    assert f"churn model for 5 accounts (--churn-scores {tmp_path / 'given.csv'})" in text

    # an alias that is not registered is an error that names it, and writes nothing
    out = _run("score", "dealers", "--config", config, "--cutoff", CUTOFF, "--fit", "--out",
               tmp_path / "none.csv", "--churn-alias", "nosuch", code=2)
    assert "--churn-alias nosuch" in out and not (tmp_path / "none.csv").exists()

    # --churn-alias none: BG/NBD risk for every account although a champion is registered (its help
    # says so; it was read as an alias named 'none' and refused)
    bg, text = _score(config, tmp_path / "bg.csv", "--churn-alias", "none")
    assert (bg["churn_source"] == "bgnbd").all() and bg["churn_model_version"].isna().all()
    assert "churn model for 0 accounts (--churn-alias none: no churn model asked for)" in text
    assert "dealerml train churn" not in text  # no advice to register what was declined


@pytest.mark.slow
@pytest.mark.postgres
def test_score_dealers_into_postgres_does_not_print_the_password(config):
    import uuid

    from training.scores import open_db, read_table

    pg = "postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:5432/test"  # trust auth ignores the password
    table = f"t_dealers_{uuid.uuid4().hex[:8]}"
    try:
        text = _run("score", "dealers", "--config", config, "--cutoff", CUTOFF, "--fit", "--out", f"{pg}#{table}")
        assert "s3cret-pw" not in text and f"postgres:***@127.0.0.1:5432/test (table {table})" in text
        got = read_table(pg, table)
        assert len(got) > 0 and got["account_id"].is_unique and str(got["cutoff"].iloc[0]) == "2024-06-01 00:00:00"
    finally:
        with open_db(pg) as db:
            db.execute(f'drop table if exists "{table}"')


def test_score_dealers_and_the_service_say_the_churn_models_own_lookback(config, tmp_path, caplog):
    """A churn champion trained with churn.lookback_days 120 ranked the dealers (score dealers, /dealer_scores)
    on its own 120-day population under a config of 365 days without a word, and nothing said which lookback
    left the other dealers on BG/NBD risk. Both say it now, naming the days used; /model_info shows it."""
    import logging
    from types import SimpleNamespace

    import yaml

    from serving.churn import ChurnBackend
    from training import tracking

    raw = yaml.safe_load(config.read_text())
    raw["churn"]["lookback_days"] = 120
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(raw))
    _run("train", "churn", "--config", short)  # v1, champion, 120 days
    got, text = _score(config, tmp_path / "d.csv")  # the config's 365 days
    n_model = int((got["churn_source"] == "churn_model").sum())
    said = " ".join(text.split())
    assert ("note: dealerml-churn/1 was trained with churn.lookback_days 120, not the config's 365: it scores its "
            f"own population, the accounts with an order in the 120 days before {CUTOFF}") in said, said
    assert (f"churn risk: churn model for {n_model} accounts (dealerml-churn/1, the champion), 1 - BG/NBD P(alive) "
            f"for {len(got) - n_model} (outside the churn model's population: no order in the 120 days before "
            f"{CUTOFF})") in said, said
    _, text = _score(short, tmp_path / "d120.csv")  # the same lookback as the model: no note
    assert "trained with churn.lookback_days" not in text and "no order in the 120 days before" in text

    with caplog.at_level(logging.WARNING, logger="dealerml.serving"):
        served = _served_table(config, tmp_path)
    assert served.churn_source == "dealerml-churn/1" and served.summary()["churn_lookback_days"] == 120
    assert ("dealerml-churn/1 (churn risk of /dealer_scores) was trained with churn.lookback_days 120, not the "
            "config's 365") in caplog.text
    _same_rows(got, served)

    model, _ = tracking.load_model("dealerml-churn", "champion")
    from training.config import load_config
    from training.data import load_order_book

    exp = load_config(config)
    be = ChurnBackend.build(model, SimpleNamespace(name="dealerml-churn", version="1"), load_order_book(exp), exp)
    assert be.summary()["lookback_days"] == 120 and be.summary()["horizon_days"] == 90


def test_score_dealers_and_the_service_say_the_churn_models_own_horizon(config, tmp_path, caplog):
    """A churn champion trained with churn.horizon_days 60 gave the dealers (score dealers, /dealer_scores)
    its P(no order in 60 days) as churn risk under a config of 90 days without a word, though both noted
    another lookback (4176c62) and score churn noted the horizon (e46626d). Both say it now."""
    import logging

    import yaml

    raw = yaml.safe_load(config.read_text())
    raw["churn"]["horizon_days"] = 60
    short = tmp_path / "h60.yaml"
    short.write_text(yaml.safe_dump(raw))
    _run("train", "churn", "--config", short)  # v1, champion, 60 days
    _, text = _score(config, tmp_path / "d.csv")  # the config's 90 days
    said = " ".join(text.split())
    assert ("note: dealerml-churn/1 was trained with churn.horizon_days 60, not the config's 90: the dealers' churn "
            f"risk is its P(no order in the 60 days after {CUTOFF}); set churn.horizon_days: 60 in the config to "
            "match it, or train a model with 90") in said, said
    assert "churn.lookback_days" not in said
    _, text = _score(short, tmp_path / "d60.csv")  # the same horizon as the model: no note
    assert "churn.horizon_days" not in text

    with caplog.at_level(logging.WARNING, logger="dealerml.serving"):
        served = _served_table(config, tmp_path)
    assert served.churn_source == "dealerml-churn/1"
    assert ("dealerml-churn/1 (churn risk of /dealer_scores) was trained with churn.horizon_days 60, not the "
            "config's 90: the dealers' churn risk is its P(no order in the 60 days after") in caplog.text


def test_bad_churn_scores_file_is_named_and_writes_nothing(config, tmp_path):
    """--churn-scores with a text probability died in astype(float) with a traceback (exit 1), and one with an
    account twice at different probabilities was taken silently (the last row won). Both are refused before the
    data load, naming the rows / accounts; the same probability twice is still one account."""
    base = pd.DataFrame({"account_id": ["D00001", "D00002", "D00003"], "probability": ["0.2", "high", "0.4"]})
    base.to_csv(tmp_path / "text.csv", index=False)
    out = tmp_path / "out.csv"
    text = _run("score", "dealers", "--config", config, "--cutoff", CUTOFF, "--fit", "--out", out,
                "--churn-scores", tmp_path / "text.csv", code=2)
    assert text.strip() == (f"error: --churn-scores {tmp_path / 'text.csv'}: column probability must be a number in "
                            "[0, 1]; 1 rows are not (first: row 2: 'high')")
    pd.DataFrame({"account_id": ["D00001", "D00002", "D00001", "D00002"],
                  "probability": [0.2, 0.3, 0.9, 0.3]}).to_csv(tmp_path / "twice.csv", index=False)
    text = _run("score", "dealers", "--config", config, "--cutoff", CUTOFF, "--fit", "--out", out,
                "--churn-scores", tmp_path / "twice.csv", code=2)
    assert text.strip() == (f"error: --churn-scores {tmp_path / 'twice.csv'}: 1 account_id(s) appear more than once "
                            "with different probabilities (e.g. D00001 (2 rows, 0.200 .. 0.900)); expected one row "
                            "per account, as `score churn` writes")
    assert not out.exists()

    from training.commands.dealers import _read_churn

    same = pd.DataFrame({"account_id": ["D00001", "D00001"], "probability": [0.25, 0.25]})
    same.to_csv(tmp_path / "same.csv", index=False)
    assert _read_churn(str(tmp_path / "same.csv")).to_dict() == {"D00001": 0.25}


def test_churn_scores_of_another_date_are_cautioned(config, tmp_path):
    """--churn-scores written by `score churn` at another --cutoff ranked the dealers with that date's churn risk
    without a word; the file's cutoff column is now compared with --cutoff and a caution names both."""
    pd.DataFrame({"account_id": ["D00001", "D00002"], "probability": [0.2, 0.3],
                  "cutoff": ["2024-01-01", "2024-01-01"]}).to_csv(tmp_path / "old.csv", index=False)
    _, text = _score(config, tmp_path / "o.csv", "--churn-scores", tmp_path / "old.csv")
    assert (f"caution: --churn-scores {tmp_path / 'old.csv'} holds churn scores as of 2024-01-01, not --cutoff "
            f"{CUTOFF}") in " ".join(text.split())
    pd.DataFrame({"account_id": ["D00001"], "probability": [0.2], "cutoff": [CUTOFF]}).to_csv(tmp_path / "same.csv",
                                                                                            index=False)
    _, text = _score(config, tmp_path / "o2.csv", "--churn-scores", tmp_path / "same.csv")
    assert "caution" not in text
