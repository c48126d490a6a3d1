"""Usage errors on the command line (a bad option value, an unknown option or command): one plain
line on stderr naming the option, the value and what was expected, exit 2, as the commands' own
errors are said. typer drew a box of box-drawing characters around 'Input should be a valid
integer, unable to parse string as an integer' (no value named), in a terminal and in CI logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import app

_BOX = set("╭╮╰╯│─")


@pytest.mark.parametrize(("argv", "want"), [
    (["backtest", "demand", "--series", "s.csv", "--horizon", "abc"],
     "error: --horizon 'abc': expected a whole number (dealerml backtest demand --help lists the options)"),
    (["backtest", "demand", "--series", "s.csv", "--windows", "1.5"],
     "error: --windows '1.5': expected a whole number (dealerml backtest demand --help lists the options)"),
    (["safety-stock", "--service-level", "x", "--out", "ss.csv"],
     "error: --service-level 'x': expected a number (dealerml safety-stock --help lists the options)"),
    (["serve", "--port", "99999"], "error: --port '99999': expected at most 65535 (dealerml serve --help lists the options)"),
    (["backtest", "demand", "--bogus"], "error: no such option: --bogus (dealerml backtest demand --help lists the options)"),
    (["tarin"], "error: no such command 'tarin'. Did you mean 'train'? (dealerml --help lists the commands)"),
    (["backtest", "demand", "--horizon"], "error: option '--horizon' requires an argument"),
])
def test_a_bad_option_is_one_plain_line_naming_option_value_and_expectation(argv, want, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERML_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [want]
    assert not list(tmp_path.glob("*.csv"))


def test_piped_output_of_the_installed_command_has_no_box_nor_colour(tmp_path):
    """As CI logs it: stderr piped, the real entry point (`dealerml` = training.cli:app)."""
    env = {**os.environ, "DEALERML_HOME": str(tmp_path / "home"), "TERM": "xterm-256color"}
    res = subprocess.run([str(Path(sys.executable).with_name("dealerml")), "backtest", "demand", "--series", "s.csv",
                          "--horizon", "abc"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr == ("error: --horizon 'abc': expected a whole number (dealerml backtest demand --help lists the "
                          "options)\n")
    assert not _BOX & set(res.stderr) and "\x1b[" not in res.stderr


def test_a_group_without_a_command_still_prints_its_help():
    """no_args_is_help is no error to reword: the help is printed as before."""
    res = CliRunner().invoke(app, ["backtest"])
    assert "Usage: dealerml backtest" in " ".join(res.output.split()) or "Usage: root backtest" in " ".join(res.output.split())
    assert "error:" not in res.output
