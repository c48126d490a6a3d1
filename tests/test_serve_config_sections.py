"""A bad demand: / churn: section of a served model is the config's fault, said as such.

`dealerml serve` started a service whose demand model stayed unready with the advice "promote or
roll back to another version (dealerml promote / rollback demand)", which cannot fix a config."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from serving.loader import check_sections, config_hint
from training.cli import app
from training.config import load_config
from training.errors import ConfigError


def _config(tmp_path, section: str) -> str:
    (tmp_path / "lines.csv").write_text("order_id,order_date,account_id,sku,quantity,unit_price\n"
                                        "O1,2024-01-02,A1,S1,3,2.5\n")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"name: bad\ndata:\n  order_lines:\n    path: lines.csv\n{section}\n")
    return str(cfg)


def _serve(tmp_path, monkeypatch, *args: str):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path))
    monkeypatch.setenv("DEALERML_API_KEYS", "long-enough-key:*")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DEALERML_SERVE_MODELS", raising=False)
    monkeypatch.setattr("os.execvpe", lambda *a: pytest.fail("bentoml was started"))
    return CliRunner().invoke(app, ["serve", "--port", "3", *args])


def test_serve_refuses_a_bad_section_of_a_served_model_naming_the_key(tmp_path, monkeypatch):
    cfg = _config(tmp_path, "demand:\n  horizon: -3")
    r = _serve(tmp_path, monkeypatch, "--config", cfg)
    assert r.exit_code == 2, r.output
    assert "invalid 'demand' section" in r.output
    assert "key 'demand.horizon': Input should be greater than or equal to 1; got -3" in r.output
    assert not (tmp_path / "mlflow.db").exists()
    # a deployment that does not serve demand does not read that section: the next check speaks
    r = _serve(tmp_path, monkeypatch, "--config", cfg, "--models", "churn")
    assert r.exit_code == 2 and "demand" not in r.output and "no MLflow store" in r.output, r.output


def test_the_dealer_ranking_reads_the_churn_section(tmp_path):
    cfg = load_config(_config(tmp_path, "churn:\n  horizon_days: 0\ndemand:\n  horizon: -3"))
    for keys in (["churn"], ["dealers"]):
        with pytest.raises(ConfigError, match=r"key 'churn\.horizon_days'"):
            check_sections(cfg, keys)
    with pytest.raises(ConfigError, match=r"key 'demand\.horizon'"):
        check_sections(cfg, ["demand"])
    check_sections(cfg, [])
    hint = config_hint("x.yaml")
    assert "fix the config (x.yaml" in hint and "restart" in hint and "rolling back would not help" in hint


def test_the_service_names_a_bad_section_as_the_configs_fault(tmp_path, monkeypatch):
    """The demand slot fails saying to fix the config (not to roll back); churn still loads."""
    from serving import loader
    from serving.state import FAILED, ModelSlot, ServingState

    cfg = load_config(_config(tmp_path, "demand:\n  horizon: -3"))
    monkeypatch.setattr(loader, "registry_champions", lambda names: {n: "1" for n in names})
    monkeypatch.setattr(loader, "_load_book", lambda cfg_file: (cfg, type("Book", (), {"order_lines": []})()))
    monkeypatch.setattr(loader, "resolve_champion", lambda name: ({"model": name}, {"version": "1"}))
    monkeypatch.setattr(loader, "_builder", lambda key: lambda estimator, slot, book, cfg, **kw: f"backend-{key}")
    st = ServingState([ModelSlot("demand", "dealerml-demand"), ModelSlot("churn", "dealerml-churn")], "bad.yaml")
    loader.load_all(st, "bad.yaml")
    demand = st.slots["demand"]
    assert demand.state == FAILED and "key 'demand.horizon'" in demand.error
    assert "fix the config (bad.yaml" in demand.hint and "promote or roll back" not in demand.hint
    assert not demand.model_failed  # not loaded again when the alias moves: a restart reads the fixed config
    assert st.slots["churn"].state != FAILED


def test_a_served_cutoff_after_the_book_is_the_configs_fault_named_by_its_key(tmp_path, monkeypatch):
    """serving.churn_cutoff after the book's last order failed the slot as the champion's fault ('promote or
    roll back'), saying '--cutoff 2030-01-01', an option of score; it is now the config's, by its key."""
    import pandas as pd

    from serving import loader
    from serving.state import FAILED, ModelSlot, ServingState

    cfg = load_config(_config(tmp_path, "serving:\n  churn_cutoff: 2030-01-01\n  dealers_cutoff: 2024-01-03"))
    book = type("Book", (), {"order_lines": pd.DataFrame({"order_date": pd.to_datetime(["2024-01-02"])})})()
    monkeypatch.setattr(loader, "registry_champions", lambda names: {n: "1" for n in names})
    monkeypatch.setattr(loader, "_load_book", lambda cfg_file: (cfg, book))
    monkeypatch.setattr(loader, "resolve_champion", lambda name: ({"model": name}, {"version": "1"}))
    monkeypatch.setattr(loader, "_builder", lambda key: lambda estimator, slot, book, cfg, **kw: f"backend-{key}")
    st = ServingState([ModelSlot("churn", "dealerml-churn"), ModelSlot("dealers", "dealerml-dealers")], "c.yaml")
    loader.load_all(st, "c.yaml")
    churn = st.slots["churn"]
    assert churn.state == FAILED and not churn.model_failed and "fix the config" in churn.hint
    assert churn.error == (
        f"cannot use the config: {cfg.config_path}: key 'serving.churn_cutoff': serving.churn_cutoff 2030-01-01 is "
        "after the end of the order book: its last order is on 2024-01-02, so the 2190 days before the cutoff would "
        "look like days without orders. The latest valid cutoff is 2024-01-03 (the day after the last order); use "
        "serving.churn_cutoff 2024-01-03 or earlier, or load newer data")
    assert st.slots["dealers"].state != FAILED  # the day after the last order is a valid cutoff
    # one on or before the first order: no account to score ('no account ordered in the 365 days before ...')
    cfg = load_config(_config(tmp_path, "serving:\n  churn_cutoff: 2021-01-01"))
    st = ServingState([ModelSlot("churn", "dealerml-churn")], "c.yaml")
    loader.load_all(st, "c.yaml")
    assert st.slots["churn"].error == (
        f"cannot use the config: {cfg.config_path}: key 'serving.churn_cutoff': 2021-01-01 is on or before the book's "
        "first order (2024-01-02), so no account has an order before it to score; expected a date after 2024-01-02, "
        "up to 2024-01-03 (the day after the last order)")
