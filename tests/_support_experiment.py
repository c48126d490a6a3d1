"""``_exp``: an experiment file over a base config on the ``network`` fixture (conftest.py).

Used by test_experiment and test_tuning_study_identity.
"""

from __future__ import annotations


def _exp(tmp_path, network, body: str, name: str = "exp.yaml"):
    base = tmp_path / "base.yaml"
    base.write_text(f"""
name: base
seed: 3
data:
  order_lines: {{path: {network}/order_lines.parquet}}
  accounts: {{path: {network}/accounts.csv}}
churn: {{horizon_days: 90, n_train_cutoffs: 2}}
""")
    p = tmp_path / name
    p.write_text(body)
    return p
