"""``dealerml features build`` read demand.include_lines_without_account (and freq / levels)
from the raw config, so 'yes please' was taken as true where ``train demand`` refuses it. It now
reads the validated ``demand:`` settings, refused with the same words as the other commands."""

from __future__ import annotations


def test_features_refuses_a_bad_demand_setting_as_train_demand_does(tmp_path, monkeypatch):
    from _support_demand import _book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, ["sku", "location"])
    cfg.write_text(cfg.read_text().replace("demand: {freq: W,", "demand: {include_lines_without_account: yes please, freq: W,"))
    run = CliRunner()
    train = run.invoke(app, ["train", "demand", "--config", str(cfg)])
    assert train.exit_code == 2
    said = [ln for ln in train.output.splitlines() if "include_lines_without_account" in ln]
    assert said and "'yes please'" in said[0], train.output
    out = tmp_path / "feats"
    res = run.invoke(app, ["features", "build", "--config", str(cfg), "--cutoff", "2024-05-01", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert said[0] in res.output.splitlines()
    assert not out.exists()


def test_features_leaves_out_lines_without_an_account_when_the_setting_says_false(tmp_path, monkeypatch):
    """The validated setting still decides (the default, true, counts them: test_demand_book_tables)."""
    import pandas as pd
    from _support_demand import _book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, ["sku", "location"])
    lines = tmp_path / "lines.csv"
    text = lines.read_text().splitlines()
    text[1] = text[1].replace(";007;", ";;")  # the first line (A1 at north, 2023-06-05, 1 unit) has no account
    lines.write_text("\n".join(text) + "\n")
    cfg.write_text(cfg.read_text().replace("demand: {freq: W,", "demand: {include_lines_without_account: false, freq: W,"))
    out = tmp_path / "feats"
    res = CliRunner().invoke(app, ["features", "build", "--config", str(cfg), "--cutoff", "2024-05-01", "--out", str(out)])
    assert res.exit_code == 0, res.output
    s = pd.read_parquet(out / "demand_series.parquet")
    first = s[(s["unique_id"] == "A1/north") & (s["ds"] == pd.Timestamp("2023-06-05"))]["y"]
    assert first.tolist() in ([], [0.0])  # the week's one line had no account
    assert len(s[s["unique_id"] == "A1/north"]) >= 40


def test_features_take_the_churn_horizon_and_lookback_from_the_config(tmp_path, monkeypatch):
    """churn.horizon_days / lookback_days decide the labels as in train / backtest churn (the build
    used 90 / 365 whatever the config said); --horizon-days / --lookback-days still win."""
    import json

    from _support_demand import _book
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    cfg = _book(tmp_path, ["sku", "location"])
    cfg.write_text(cfg.read_text() + "churn: {horizon_days: 30, lookback_days: 200}\n")
    run = CliRunner()
    for extra, want in (((), (30, 200)), (("--horizon-days", "45"), (45, 200))):
        out = tmp_path / f"feats{len(extra)}"
        res = run.invoke(app, ["features", "build", "--config", str(cfg), "--cutoff", "2024-05-01", "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        m = json.loads((out / "manifest.json").read_text())
        assert (m["horizon_days"], m["lookback_days"]) == want, m
