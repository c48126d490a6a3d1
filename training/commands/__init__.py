"""CLI command modules. Each module registers its commands on the groups of ``training.cli``.

Keep imports of heavy libraries (pandas, lightgbm, mlflow, statsforecast) inside the
command functions so ``dealerml --help`` stays fast.
"""
