"""Save / load of the small maximum-likelihood models (BG/NBD, Gamma-Gamma) as one JSON file.

Both store the same things: their constructor arguments (``penalizer``, ``max_iter``) and the
fitted ``params_``, ``loglik_``, ``converged_``, ``n_accounts_``. No pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_FITTED = ("params", "loglik", "converged", "n_accounts")


def save_mle(model: Any, path: Path, filename: str) -> None:
    """Write ``model``'s arguments and fitted attributes to ``path/filename`` (JSON)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {"penalizer": model.penalizer, "max_iter": model.max_iter}
    state.update({k: getattr(model, f"{k}_") for k in _FITTED})
    (path / filename).write_text(json.dumps(state))


def load_mle(cls: type, path: Path, filename: str) -> Any:
    """Rebuild a fitted ``cls`` from what :func:`save_mle` wrote."""
    d = json.loads((Path(path) / filename).read_text())
    m = cls(penalizer=d["penalizer"], max_iter=d["max_iter"])
    for k in _FITTED:
        setattr(m, f"{k}_", d[k])
    return m
