"""Series selection of the demand backend (``serving.demand.DemandBackend``): the rows a request's
``series_ids`` / ``sku`` / ``location`` select (404 for unknown ids, with the reason for ids the
champion saw but could not forecast; 422 for a filter the champion has no key for), the horizon
bound, and the levels / quantiles a request may read (only those the champion has intervals for).

``_RowsMixin`` holds these methods; ``DemandBackend`` inherits them. ``_level_key`` and ``_shown``
are imported from here.
"""

from __future__ import annotations

from typing import Any

from serving.errors import BadRequest, NoMatch, UnknownIds


def _level_key(level: float) -> int | None:
    """Integer percent of ``level`` if it is a whole number (within 1e-6), else None."""
    r = round(float(level))
    return int(r) if abs(float(level) - r) < 1e-6 else None


def _shown(x: float) -> str:
    """A requested number as sent, to 12 digits (``:g`` would show 99.9999999 as 100)."""
    return f"{float(x):.12g}"


class _RowsMixin:
    """Request-to-rows lookups of ``DemandBackend`` (its attributes, set in ``DemandBackend.__init__``)."""

    uids: list[str]
    row: dict[str, int]
    not_forecast: dict[str, str]
    index: dict[str, dict[str, set[int]]]
    key_columns: list[str]
    h: int
    model_version: str
    bounds: dict[int, tuple[Any, Any]]
    levels: list[int]

    # ------------------------------------------------------------------ helpers
    def _unknown_series(self, missing: list[str]) -> UnknownIds:
        """404 for series ids without a forecast. Ids the champion saw in its order book but
        could not forecast (no demand; too little history for a champion without the short-history
        fallback) are told apart from ids it never saw, with the reason, under ``not_forecast``."""
        short = {u: self.not_forecast[u] for u in missing if u in self.not_forecast}
        n = len(self.uids)
        if not short:
            return UnknownIds("series id", missing, known=n)
        u, why = next(iter(short.items()))
        if len(short) == len(missing):
            return UnknownIds("series id", missing, known=n, extra={"not_forecast": short},
                              message=(f"{len(short)} series id(s) are in the champion's history but were not forecast, "
                                       f"e.g. {u}: {why}; the served model forecasts {n} series (see not_forecast)"))
        return UnknownIds("series id", missing, known=n, extra={"not_forecast": short},
                          hint=f"{len(short)} of them are in its history but were not forecast, e.g. {u}: {why}")


    def _rows_for(self, request: Any) -> list[int]:
        """Rows of the series selected by ``series_ids`` and the filters (AND). A field left
        out (None) does not filter; the schema refuses empty lists."""
        series_ids = getattr(request, "series_ids", None)
        if series_ids is not None:
            missing = [u for u in dict.fromkeys(series_ids) if u not in self.row]
            if missing:
                raise self._unknown_series(missing)
            rows = [self.row[u] for u in dict.fromkeys(series_ids)]
        else:
            rows = list(range(len(self.uids)))
        used: list[tuple[str, list[str]]] = [] if series_ids is None else [("series_ids", list(series_ids))]
        for col in ("sku", "location"):
            wanted = getattr(request, col, None)
            if wanted is None:
                continue
            if col not in self.index:
                raise BadRequest(
                    f"filter {col!r} is not available: the champion's series are keyed by "
                    f"{self.key_columns or ['unique_id']}"
                )
            unknown = [v for v in dict.fromkeys(wanted) if v not in self.index[col]]
            if unknown:
                raise UnknownIds(col, unknown, known=len(self.index[col]), known_values=sorted(self.index[col]))
            allowed: set[int] = set()
            for v in wanted:
                allowed |= self.index[col][v]
            rows = [r for r in rows if r in allowed]
            used.append((col, list(dict.fromkeys(wanted))))
        if not rows:
            described = ", ".join(f"{name} {vals[:10]}{' ...' if len(vals) > 10 else ''}" for name, vals in used)
            raise NoMatch(f"no series matches all the filters ({described}); each value is known, "
                          "their combination selects nothing")
        return rows


    def _check_horizon(self, horizon: int) -> None:
        if horizon > self.h:
            raise BadRequest(
                f"horizon must be between 1 and {self.h} periods (the champion "
                f"{self.model_version} was fitted for {self.h}); got {horizon}"
            )


    def _levels_for(self, levels: list[float], quantiles: list[float]) -> tuple[list[int], list[tuple[float, int | None, str]]]:
        lv_out: list[int] = []
        for lv in levels:
            k = _level_key(lv)
            if k is None or k not in self.bounds:
                raise BadRequest(
                    f"level {_shown(lv)} is not available; the champion has intervals at {self.levels} %"
                )
            if k not in lv_out:
                lv_out.append(k)
        q_out: list[tuple[float, int | None, str]] = []
        for q in quantiles:
            if abs(q - 0.5) < 1e-9:
                raise BadRequest(
                    "quantile 0.5 is not available: the champion's point forecast ('mean') is a "
                    "mean, not a median; read 'mean' or ask for the quantiles of its intervals"
                )
            lv = 100.0 * (1.0 - 2.0 * q) if q < 0.5 else 100.0 * (2.0 * q - 1.0)
            k = _level_key(lv)
            if k is None or k not in self.bounds:
                avail = sorted({round((100 - x) / 200, 6) for x in self.levels} | {round((100 + x) / 200, 6) for x in self.levels})
                raise BadRequest(f"quantile {_shown(q)} is not available; the champion has quantiles {avail}")
            if all(q != seen for seen, _, _ in q_out):  # as levels: [0.1, 0.1] is one quantile, not two
                q_out.append((q, k, "lo" if q < 0.5 else "hi"))
        return lv_out, q_out

