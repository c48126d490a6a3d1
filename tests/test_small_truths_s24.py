"""Small untruths found by session 24's audits, each checked against what the code does.

* A misspelt key in the config's ``promotion:`` section said "did you mean ...?" as the other sections do
  (it listed the allowed keys, or the capabilities as a Python list).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.config import load_config
from training.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _config_error(tmp_path: Path, promotion: dict) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"order_lines": {"path": "ol.csv"}}, "promotion": promotion}))
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    return str(exc.value)


def test_a_misspelt_promotion_key_is_answered_with_did_you_mean(tmp_path):
    msg = _config_error(tmp_path, {"churn": {"metric": "auc", "margn": 0.005}})
    assert "key 'promotion': promotion.churn.margn: unknown key; did you mean 'margin'?" in msg, msg
    assert "allowed:" not in msg
    msg = _config_error(tmp_path, {"chrun": {"metric": "auc"}})
    assert "key 'promotion': unknown capability 'chrun' under promotion; did you mean 'churn'?" in msg, msg
    # nothing close: the keys it knows, as the other sections say them
    msg = _config_error(tmp_path, {"demand": {"xyz": 1, "directon": "minimize"}})
    assert "promotion.demand.directon: unknown key; did you mean 'direction'?" in msg, msg
    assert "promotion.demand.xyz: unknown key; known keys: metric, margin, direction" in msg, msg
