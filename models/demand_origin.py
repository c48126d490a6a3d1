"""One forecast origin of :class:`models.demand.DemandForecaster`: the member choice and the
calibrated bands learnt on the selection windows before a cutoff, applied to the forecasts
from it (``_origin``, shared by ``fit``, ``cross_validation`` and ``predict`` with drivers), and
``rolling_forecasts``, the forecasts from many cutoffs that the inventory replay reads.

``_Origins`` is a mixin of ``DemandForecaster``: it uses the forecaster's settings and its
member runs (:mod:`models.demand_members`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.demand import demand_classes
from models.demand_conformal import (
    adaptive_alphas,
    apply_conformal,
    conformal_table,
    nest_intervals,
)
from models.demand_data import Panel, build_panel, panel_as_of, period_end
from models.demand_fallback_bands import (
    fallback_bands,
    note_unsized,
    served_residuals,
    served_tables,
)
from models.demand_members import _ENSEMBLE_OF, FINAL, STAT_MEMBERS
from models.demand_select import (
    FALLBACK_COLUMNS,
    Ranking,
    crossfit_point,
    final_served,
    naive_scale,
    pick_served,
    select_ranked,
)

__all__ = ["TooShortError"]


class TooShortError(ValueError):
    """The table is too short for what was asked: no series has the periods the members need at a
    cutoff, or the table has too few periods for the backtest windows (a ``ValueError``)."""


class _Origins:
    """Forecasts from one cutoff with their choice and bands (mixin of ``DemandForecaster``)."""

    # -- one forecast origin with its selection and calibration --------------------------------
    def _history_at(self, panel: Panel, c: int, history_as_of: Any, member_cache: Any, cache: dict) -> tuple[Panel, dict]:
        """The panel a forecast from cutoff index c reads and its member-frame cache: with
        ``history_as_of`` (called with the first instant after period c, e.g. the Monday after a
        weekly cutoff; it returns the long table as the data stood then, or None when unchanged)
        the periods up to c as they stood then (:func:`models.demand_data.panel_as_of`) and a cache
        of their own (``member_cache.part``: frames made from that history only); else ``panel`` and
        ``cache``. Actuals after c stay ``panel``'s: the forecast is scored on the final book."""
        if history_as_of is None:
            return panel, cache
        end = period_end(panel, c)
        p = panel_as_of(panel, c, history_as_of(end))
        if p is panel:
            return panel, cache
        return p, ({} if member_cache is None else member_cache.part(f"as of {end.date()}").frames_for(self, p))

    def _actuals(self, panel: Panel, fc: pd.DataFrame) -> np.ndarray:
        pos = pd.Series(np.arange(panel.n), index=panel.uids)
        ii = pos.loc[fc["unique_id"]].to_numpy()
        tt = panel.dates.get_indexer(pd.DatetimeIndex(fc["ds"]))
        y = np.full(len(fc), np.nan)
        ok = tt >= 0
        y[ok] = panel.Y[ii[ok], tt[ok]]
        return y

    def _candidates(self) -> list[str]:
        """What the choice picks from: the members, and the Ensemble when 2+ of its members run."""
        members = self._members()
        return [*members, *(["Ensemble"] if sum(m in members for m in _ENSEMBLE_OF) >= 2 else [])]

    def _needed(self, panel: Panel, c: int, h: int, choice: pd.Series, candidates: list[str]) -> dict[str, np.ndarray]:
        """Per candidate, the eligible series at c whose served point uses it: its chosen one,
        and every member of the Ensemble where that is chosen (``_members_at``'s ``need``)."""
        uids = panel.uids[self._eligible(panel, c, h)]
        pick = pd.Series(uids).map(choice).fillna(candidates[0]).to_numpy()
        need = {m: pick == m for m in candidates}
        for m in _ENSEMBLE_OF:
            if m in need and "Ensemble" in need:
                need[m] = need[m] | need["Ensemble"]
        return need

    def _origin(self, panel: Panel, c: int, h: int, cache: dict, X_future: np.ndarray | None = None,
                point_only: bool = False) -> tuple[pd.DataFrame, dict]:
        """Forecasts from cutoff index c with the choice and bands learnt on the windows before it.

        ``point_only`` (the inventory replay): only ``Final``, its bands and residuals, the same
        to the bit; the members are run at c only for the series whose choice uses them
        (``_needed``), the frame has no member or Ensemble columns and ``info["conformal"]``
        only Final's table. The windows before c are run in full (the choice needs them)."""
        levels = self._levels()
        hist_parts = []
        for j in range(1, self.selection_windows + 1):
            ci = c - j * h
            if ci < self._min_train(h) - 1:
                break
            key = (ci, h)
            if key not in cache:
                cache[key] = self._members_at(panel, ci, h)
            part = cache[key]
            if part.empty:
                continue
            part = part.copy()
            part["y"] = self._actuals(panel, part)
            scale = pd.Series(naive_scale(panel.Y, ci), index=panel.uids)
            part["scale"] = scale.loc[part["unique_id"]].to_numpy()
            hist_parts.append(part)
        fc = None
        if not point_only:
            if (c, h) in cache and X_future is None:
                fc = cache[(c, h)].copy()
            else:
                fc = self._members_at(panel, c, h, X_future)
                if X_future is None:
                    cache[(c, h)] = fc
                fc = fc.copy()
            if fc.empty:
                raise self._no_series(panel, c, h)
        cls_df = demand_classes(panel.long(c, codes=True))
        cls_df["unique_id"] = panel.uids[cls_df["unique_id"].to_numpy()]
        classes = cls_df.set_index("unique_id")["demand_class"]
        candidates = self._candidates() if fc is None else [m for m in (*self._members(), "Ensemble") if m in fc.columns]
        if hist_parts:
            hist = pd.concat(hist_parts, ignore_index=True)
            hist = hist[np.isfinite(hist["y"])]
            choice, scores, ranking = select_ranked(hist, candidates, classes, self.selection)
        else:
            hist = None
            fallback = "AutoETS" if "AutoETS" in candidates else candidates[0]
            choice, scores = pd.Series(fallback, index=classes.index), pd.DataFrame()
            ranking = Ranking.fixed(fallback, candidates)
        if fc is None:
            fc = self._members_at(panel, c, h, X_future, need=self._needed(panel, c, h, choice, candidates))
            if fc.empty:
                raise self._no_series(panel, c, h)
            fc = self._fill_fallback(panel, c, h, X_future, fc, candidates, choice)
        fc["demand_class"] = fc["unique_id"].map(classes).fillna("unknown").to_numpy()
        scale_c = pd.Series(naive_scale(panel.Y, c), index=panel.uids).loc[fc["unique_id"]].to_numpy()
        # the chosen member (the next one of its ranking where it has no forecast: final_served),
        # re-centred on its median error per class with selection "...+median"
        served = final_served(fc, hist, candidates, choice, classes, scale_c, self.selection, ranking=ranking)
        fc[FINAL], hist_final = served["point"], served["hpoint"]
        fc["final_model"] = served["used"]
        fallback_rec = served["fallback"]
        if fallback_rec["served"].isna().any():  # no candidate forecasts them: not forecast (fallback_ says why)
            gone = fc["unique_id"].isin(set(fallback_rec.loc[fallback_rec["served"].isna(), "unique_id"]))
            fc = fc[~gone.to_numpy()].reset_index(drop=True)
            scale_c = scale_c[~gone.to_numpy()]
            if fc.empty:
                raise self._no_series(panel, c, h, no_member=f'{fallback_rec["unique_id"].iloc[0]}: {fallback_rec["reason"].iloc[0]}')
        tables = {}
        final_resid = pd.DataFrame(columns=["demand_class", "step", "r", "unique_id", "cutoff"])
        conformal = (*[x for x in STAT_MEMBERS if self._fast()], "LightGBM", "Ensemble", FINAL)
        for m in [x for x in conformal if x in fc.columns and (x == FINAL or not point_only)]:
            if hist is None:
                continue
            if m == FINAL:
                pred = hist_final
                if getattr(self, "conformal", "in_sample") != "in_sample":
                    # errors of a choice made without the rows they calibrate (None: one group only)
                    cf = crossfit_point(hist, candidates, classes, self.selection, self.conformal)
                    pred = hist_final if cf is None else cf
            else:
                pred = hist[m].to_numpy()
            resid = pd.DataFrame(
                {
                    "demand_class": hist["unique_id"].map(classes).fillna("unknown").to_numpy(),
                    "step": hist["step"].to_numpy(),
                    "r": (hist["y"].to_numpy() - pred) / hist["scale"].to_numpy(),
                }
            )
            if m == FINAL:
                final_resid = resid.assign(unique_id=hist["unique_id"].to_numpy(), cutoff=hist["cutoff"].to_numpy())
            alphas = None
            if m == FINAL and getattr(self, "conformal_adapt", False):  # level corrected by its own miss rate
                alphas = adaptive_alphas(resid.assign(cutoff=hist["cutoff"].to_numpy()), levels)
            tables[m] = conformal_table(resid, levels, alphas=alphas)
            ints = apply_conformal(
                fc[m].to_numpy(), scale_c, fc["demand_class"].to_numpy(), fc["step"].to_numpy(), tables[m], levels
            )
            for lv, (lo, hi) in ints.items():
                fc[f"{m}-lo-{lv}"] = lo
                fc[f"{m}-hi-{lv}"] = hi
            nest_intervals(fc, m, levels)
        # a series served by a fallback candidate: Final's band from that candidate's errors, not the chosen
        # one's; without a +median shift every candidate's table is kept (fit: served_conformal_) for the
        # fallbacks of a plan (models.demand_plan; a plan with the shift re-runs this origin instead)
        keep_all = served["shift"] is None and not point_only
        served_conf = served_tables(hist, candidates, classes, levels, served["shift"], tables,
                                    only=None if keep_all else sorted(set(fallback_rec["served"].dropna())))
        fallback_rec = fallback_bands(fc, fallback_rec, served_conf, list(tables.values()), scale_c, levels)
        # and its safety stock from the same errors, as paths (models.inventory.fit_forecaster_policy)
        served_resid = served_residuals(hist, candidates, classes, served["shift"],
                                        only=sorted(set(fallback_rec["served"].dropna())))
        fallback_rec = note_unsized(fallback_rec, served_resid)
        if point_only:  # member columns hold only the rows the choice uses: leave them out
            fc = fc[[x for x in fc.columns if x == FINAL or x.startswith(f"{FINAL}-") or x not in candidates
                     and not any(x.startswith(f"{m}-lo-") or x.startswith(f"{m}-hi-") for m in candidates)]]
        info = {"choice": choice, "scores": scores, "classes": cls_df, "conformal": tables,
                "residuals": final_resid, "scale": pd.Series(naive_scale(panel.Y, c), index=panel.uids),
                "fallback": fallback_rec.drop(columns="cutoff").assign(cutoff=panel.dates[c])[FALLBACK_COLUMNS],
                "ranking": ranking, "served_conformal": served_conf, "served_residuals": served_resid}
        return fc, info

    def _fill_fallback(self, panel: Panel, c: int, h: int, X_future: np.ndarray | None, fc: pd.DataFrame,
                       candidates: list[str], choice: pd.Series) -> pd.DataFrame:
        """``point_only``: the members were run only where the choice uses them, so a series whose
        chosen candidate has no forecast has nothing to fall back on: run every candidate for those
        series (statsforecast members per series, LightGBM on every eligible series as before: the
        same numbers as a full run) and fill their columns."""
        _, _, rec = pick_served(fc, candidates, choice, Ranking(candidates))
        if rec.empty:
            return fc
        uids = panel.uids[self._eligible(panel, c, h)]
        bad = np.isin(uids, rec["unique_id"].to_numpy())
        more = self._members_at(panel, c, h, X_future, need={m: bad for m in candidates})
        if not (more["unique_id"].to_numpy() == fc["unique_id"].to_numpy()).all():  # same series, same order
            raise RuntimeError("the members' re-run for the fallback returned other rows than the first run")
        rows = np.repeat(bad, h)
        fc = fc.copy()
        for m in candidates:
            fc.loc[rows, m] = more.loc[rows, m].to_numpy()
        return fc

    def _no_series(self, panel: Panel, c: int, h: int, fallback: bool = False, no_member: str = "") -> TooShortError:
        """The members' refusal; ``fallback``: the short-history fallback could not forecast
        either (every series short), and why, when some series has demand; ``no_member``: every
        series was eligible but none had a member forecast for every period (one series' reason)."""
        if no_member:  # models.demand_select.pick_served
            return TooShortError(f"no series could be forecast from {panel.dates[c].date()}: no member has a forecast "
                                 f"for every period of any series; e.g. {no_member}")
        why = ""
        if fallback and (np.nansum(panel.Y[:, : c + 1], axis=1) > 0).any():
            # the fallback measures its band on the periods after an earlier cutoff: over h periods where
            # the table allows, else over as many as it has (models.demand_short), at least one
            if c < 1:
                why = ("; nor can the short-history fallback: it measures its band on the periods after an earlier "
                       f"cutoff, so it needs at least 2 periods (the table has {c + 1})")
            else:
                why = (f"; nor can the short-history fallback: no series had demand before {panel.dates[c].date()} "
                       "to measure its errors on a later period (it needs at least 2 periods, with a sale before "
                       "the last)")
        return TooShortError(
            f"no series has {self._min_train(h)} observed periods with some demand up to "
            f"{panel.dates[c].date()}; give longer series or a smaller horizon{why}"
        )

    def rolling_forecasts(self, df: pd.DataFrame, cutoffs: Sequence[pd.Timestamp], h: int, *,
                          point_only: bool = False, history_as_of: Any = None) -> list[tuple[pd.DataFrame, dict]]:
        """Forecasts (as ``predict`` columns + ``step``, ``y`` where known) made from each cutoff
        date using only data up to it; the windows may run past the end of ``df``. Each item is
        (forecast, info) with info ``residuals`` (scaled error paths) and ``scale`` per series.

        ``point_only=True`` (the inventory replay) returns ``Final`` and its bands but no member
        columns, and runs each member at a cutoff only for the series whose choice uses it: the
        same ``Final``, bands, residuals and scale to the bit, without fitting members that
        nothing reads (``_origin``). ``history_as_of``: each cutoff forecasts from the history as it
        stood then (``_history_at``; :meth:`DemandForecaster.cross_validation`); where that differs
        from ``df``'s, info ``history_panel`` holds it (the panel, read up to the cutoff only)."""
        self._check_params(h)
        panel = build_panel(df, self.freq, exog=self.exog)
        self._resolve(panel)
        cache: dict = {}
        out = []
        for cut in cutoffs:
            c = int(panel.dates.get_indexer([pd.Timestamp(cut)])[0])
            if c < 0:
                raise ValueError(f"cutoff {cut} is not a period of the series table")
            p, cc = self._history_at(panel, c, history_as_of, None, cache)
            fc, info = self._origin(p, c, h, cc, point_only=point_only)
            fc["y"] = self._actuals(panel, fc)
            if p is not panel:  # the history the cutoff read (the replay's sizing reads it too)
                info["history_panel"] = p
            out.append((fc, info))
        return out
