"""``forecast --alias`` / ``safety-stock --alias`` with ``--config``: the promotions table as it is now.

A registered forecaster keeps the plan of the campaigns its training run knew
(``DemandForecaster.set_planned_drivers``). A campaign added to ``data.promotions`` after that run
reached its forecast only by retraining. Here the config's calendar is read for the version's own
forecast periods and, where it plans other values than the version's plan, it becomes the plan the
forecast is made under, and the run says how many periods changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.commands._demand_common import _with_keys


def calendar_plan(est: Any, cinfo: dict[str, Any] | None, keys: list[str], *, config: Any,
                  alias: str) -> tuple[pd.DataFrame | None, str]:
    """``(plan, note)``: the version's default plan (its :meth:`future_drivers`) with ``promo`` as the
    config's promotions table plans it now (``cinfo["promo_for"]``, :func:`training.demand_config.load_demand_series`),
    and a line for the user; ``(None, "")`` when nothing changes: no calendar in the config, a version
    without a calendar plan of its own (its promo is another driver: the share sold on promotion), or
    the same values. ``keys``: the key columns the version's ids split into (``sku``, ``location``)."""
    promo_for = (cinfo or {}).get("promo_for")
    # a hierarchical forecaster plans its bottom forecaster's series (ids total/<sku>/<location>)
    if promo_for is None or getattr(getattr(est, "bottom_", est), "planned_drivers_", None) is None \
            or not hasattr(est, "future_drivers"):
        return None, ""
    template = est.future_drivers()
    if template is None or "promo" not in template.columns:
        return None, ""
    template = template.reset_index(drop=True)
    served = template["unique_id"].astype(str)
    if hasattr(est, "nodes_"):  # the bottom series' node ids as served (<sku>/<location>), which split into keys
        nodes = est.nodes_
        served = served.map(dict(zip(nodes["unique_id"].astype(str), nodes["served_id"].astype(str), strict=True)))
        served = served.fillna(template["unique_id"].astype(str))
    grid = _with_keys(pd.DataFrame({"unique_id": served, "ds": template["ds"]}), keys)
    if "sku" not in grid.columns:
        return None, (f"\nnote: {config}'s promotions table was not read for dealerml-demand@{alias}: its series ids "
                      f"do not split into a sku column (key columns {keys}), so the plan it was trained with stands")
    new = promo_for(grid)["promo"].to_numpy(dtype="float64")
    old = template["promo"].to_numpy(dtype="float64")
    changed = ~np.isclose(new, old)
    if not changed.any():
        return None, ""
    ids = pd.unique(served[changed])
    note = (f"\npromo planned from {config}'s promotions table as it is now: {int(changed.sum())} period(s) of "
            f"{len(ids)} series differ from the plan dealerml-demand@{alias} was trained with (e.g. "
            f"{list(ids[:3])}), so the forecast is made under the table's campaigns")
    return template.assign(promo=new), note
