"""``dealerml forecast --future FILE`` / ``--drivers-out`` with a hierarchical forecaster
(``demand.hierarchy: true``, or a registered coherent model): the plan re-runs the bottom level
(SKU x location) under its drivers and every level is reconciled again
(:mod:`models.demand_hier_plan`). The file holds ``unique_id, ds`` and any of the drivers, for bottom
series (``<sku>/<location>``) and/or upper nodes (``<sku>/*``, ``*/*``: the value goes to every
series below); everything it leaves out keeps the default. Heavy libraries are imported inside."""

from __future__ import annotations

from pathlib import Path

import typer

from training.errors import ConfigError, DataError

__all__: list[str] = []


def _hier_predict_with_plan(est, h: int, future: Path | None, drivers_out: Path | None, staged: list):
    """``est.predict(h)`` (node ids) under the plan of ``future`` (if any) and a note for the user;
    the bottom series' drivers used are staged for ``drivers_out`` (``(path, writer)`` in ``staged``)."""
    import numpy as np
    import pandas as pd

    from models.demand_driver_range import warning_text
    from training.commands._demand_common import _table_writer
    from training.future_drivers import read_future_drivers

    template = est.future_drivers()
    if template is None:
        if future is not None or drivers_out is not None:
            raise ConfigError("--future / --drivers-out: this hierarchical forecaster's bottom level was fitted "
                              "without known-future drivers (demand.series.exog or demand.drivers in the config); "
                              "there is nothing to plan")
        return est.predict(h), ""
    names = [c for c in template.columns if c not in ("unique_id", "ds")]
    plan, note = None, ""
    if future is None:
        note = (f"\ndrivers {names} of the SKU x location series: as without a plan (each series' last known value "
                "carried forward, or the promotions table's campaigns) over the horizon (give planned values with "
                "--future FILE, for SKU x location series or a summed id such as <sku>/* or */*)")
    else:
        # the file may name upper nodes too (<sku>/*, */*): known ids for the checks of read_future_drivers
        nodes = est.nodes_
        upper = nodes.loc[nodes["level"] != nodes["level"].iloc[-1], "served_id"].astype(str).to_numpy()
        dates = pd.DatetimeIndex(template["ds"].unique())
        extra = pd.DataFrame({"unique_id": np.repeat(upper, len(dates)), "ds": np.tile(dates, len(upper))})
        for c in names:
            extra[c] = np.nan
        _, summ = read_future_drivers(future, pd.concat([template, extra], ignore_index=True))
        plan = summ["planned"]
        note = (f"\ndrivers {summ['drivers']} planned from {future} for {summ['series']} id(s) ({summ['cells']} values; "
                "a summed id's value goes to every SKU x location series below it); everything else as without a "
                "plan; every level reconciled under it")
        try:
            warned = est.driver_range_warnings(plan)
        except ValueError as exc:
            raise DataError(f"--future {future}: {exc}") from None
        if warned is None:  # saved before the ranges were recorded
            note += ("\nthe planned values were not checked against the drivers' training range (this forecaster "
                     "was saved before it recorded them)")
        for w in warned or []:
            typer.secho(f"warning: --future {future}: {warning_text(w)}", fg=typer.colors.YELLOW, err=True)
    try:
        fc = est.predict(h, X_df=plan)
    except ValueError as exc:
        if plan is None:
            raise
        raise DataError(f"--future {future}: {exc}") from None
    if drivers_out is not None:
        used = est.drivers_under(plan)
        used = used[used["ds"].isin(fc["ds"].unique())]
        staged.append((drivers_out, _table_writer(used, drivers_out)))
        note += f"\nwrote the SKU x location series' drivers used to {drivers_out}"
    return fc, note
