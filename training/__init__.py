"""dealerml's training side: data contract, features-to-models runs, MLflow records and registry, CLI.

Importing it turns off the usage telemetry of the libraries it drives (MLflow 3 fetches a
config from and posts usage events to its own servers; BentoML posts usage events), unless the
user has set the variables: dealerml runs on customers' order books and fetches nothing at run
time. Set ``MLFLOW_DISABLE_TELEMETRY=false`` / ``BENTOML_DO_NOT_TRACK=false`` to allow them.
"""

import os as _os

_os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
_os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
