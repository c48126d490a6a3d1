"""`dealerml data generate --start/--end` refuse a date with the year last, as --cutoff and --as-of do.

`--start 03/04/2022` was read month first (2022-03-04) without a word, where many users mean 3 April."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from training.cli import app
from training.synthetic import generate


@pytest.mark.parametrize(("start", "end", "name"), [("03/04/2022", "2024-12-31", "start"),
                                                    ("2022-01-01", "31.12.2024", "end")])
def test_a_year_last_date_is_refused_naming_the_option(tmp_path, start, end, name):
    with pytest.raises(ValueError, match=rf"{name} must be written year first, like 2022-01-01; got '{end if name == 'end' else start}'"):
        generate(tmp_path / "x", start=start, end=end)
    assert not (tmp_path / "x").exists()


def test_the_cli_says_so_and_writes_nothing(tmp_path):
    r = CliRunner().invoke(app, ["data", "generate", "--out", str(tmp_path / "net"), "--start", "03/04/2022"])
    assert r.exit_code == 2, r.output
    assert "start must be written year first" in r.output and "'03/04/2022'" in r.output
    assert not (tmp_path / "net").exists()
