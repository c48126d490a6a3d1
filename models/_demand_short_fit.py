"""The short-history fallback's part of :class:`models.demand.DemandForecaster`'s fit and
predict: ``_with_short`` (the fallback's rows appended to the members' forecasts from a cutoff),
``_short_only`` (a table where no series has the periods the members need) and ``_short_rows``
(the fitted fallback rows a forecast with a plan keeps). The fallback itself is
:mod:`models.demand_short`.

``_ShortHistory`` is a mixin of ``DemandForecaster`` (it reads the forecaster's settings and
calls its member-run helpers), split from :mod:`models.demand` to keep that module under ~500
lines; the class stays defined there (saved forecasters and pickles name it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.demand import demand_classes
from models.demand_data import Panel
from models.demand_select import FALLBACK_COLUMNS, naive_scale
from models.demand_short import SHORT_MODEL, empty_short_info, short_history_forecast


class _ShortHistory:
    """The short-history fallback inside fit / predict (mixin of ``DemandForecaster``)."""

    def _with_short(self, panel: Panel, c: int, h: int, fc: pd.DataFrame, info: dict) -> tuple[pd.DataFrame, dict]:
        """``fc`` (the members' forecasts from cutoff index c) with the short-history fallback's
        rows appended (``short_history="fallback"``), and the fallback's info
        (:func:`models.demand_short.short_history_forecast`; empty with ``skip``)."""
        if getattr(self, "short_history", "skip") != "fallback":
            return fc, empty_short_info()
        classes = info["classes"].set_index("unique_id")["demand_class"] if len(info.get("classes", ())) else None
        rows, short = short_history_forecast(
            panel.Y, panel.uids, panel.dates, panel.offset, c, h, self._eligible(panel, c, h), self._min_train(h),
            self.selection_windows, self._levels(), classes, self.random_state, int(getattr(self, "short_window", 4)))
        if len(rows):
            fc = rows if fc.columns.empty else pd.concat([fc, rows], ignore_index=True)
        return fc, short

    def _short_only(self, panel: Panel, c: int, h: int) -> tuple[pd.DataFrame, dict, dict]:
        """Fit at cutoff index c of a table where no series has the ``min_train`` periods the members
        need (``short_history="fallback"``): every series with demand is forecast by the fallback,
        exactly as a short series of a mixed table (:func:`models.demand_short.short_history_forecast`,
        its band and error paths measured on this table's own periods before c). Sets ``all_short_``
        (series, the most periods any has, the periods the members need). Raises the members' refusal
        (``_no_series``, with why the fallback cannot help) when it forecasts nothing: no demand, or
        no window of h periods before c to measure its errors on."""
        cls_df = demand_classes(panel.long(c, codes=True))
        cls_df["unique_id"] = panel.uids[cls_df["unique_id"].to_numpy()]
        info = {"choice": pd.Series(dtype=object), "scores": pd.DataFrame(), "classes": cls_df, "conformal": {},
                "residuals": pd.DataFrame(columns=["demand_class", "step", "r", "unique_id", "cutoff"]),
                "scale": pd.Series(naive_scale(panel.Y, c), index=panel.uids),
                "fallback": pd.DataFrame(columns=FALLBACK_COLUMNS)}
        fc, short = self._with_short(panel, c, h, pd.DataFrame(), info)
        if not len(fc):
            raise self._no_series(panel, c, h, fallback=True)
        n_obs = np.isfinite(panel.Y[:, : c + 1]).sum(axis=1)
        self.all_short_ = {"n_series": int(len(short["short"])), "max_periods": int(n_obs.max()),
                           "min_train": int(self._min_train(h)), "h": int(h)}
        return fc, info, short

    def _short_rows(self, fc: pd.DataFrame) -> pd.DataFrame:
        """The short-history fallback's rows of ``forecast_`` that are not in ``fc`` (they do not
        read drivers, so a forecast with a plan keeps them as fitted)."""
        fitted = self.forecast_
        if "final_model" not in fitted.columns:
            return fc
        short = fitted[fitted["final_model"] == SHORT_MODEL]
        if short.empty:
            return fc
        short = short[~short["unique_id"].isin(set(fc["unique_id"]))]
        return pd.concat([fc, short], ignore_index=True) if len(short) else fc
