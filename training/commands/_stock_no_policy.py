"""``safety-stock``'s rows for stock the run could not size: series without a policy (action ``no_policy``)."""

from __future__ import annotations

from typing import Any

# action of a series the inventory holds stock of but the run could not size (no forecast)
NO_POLICY = "no_policy"


def _units_text(v) -> str:
    v = float(v)
    return f"{v:,.0f}" if v == round(v) else f"{v:,.2f}"


def _no_policy_rows(stock, sized: set[str], why: dict[str, tuple[str, str]], series_ids: set[str],
                    info: dict[str, Any], freq: str):
    """Rows of the policy file for stock (``unique_id``, ``on_hand``, optional ``on_order``) of
    series without a policy: action ``no_policy``, ``no_policy_reason`` (a code) and a
    suggestion saying why and what the stock is, so a planner reading the file sees it (it was
    said on the console only). Series holding nothing (0 on hand, nothing on order) are left out."""
    import numpy as np
    import pandas as pd

    st = stock[~stock["unique_id"].astype(str).isin(sized)].copy()
    on_order = st["on_order"].to_numpy(dtype=float) if "on_order" in st.columns else np.zeros(len(st))
    st = st[(st["on_hand"].to_numpy(dtype=float) != 0) | (on_order > 0)]
    if st.empty:
        return st.iloc[:0]
    top = info.get("top_n")
    has_order = "on_order" in st.columns
    rows = []
    for r in st.itertuples(index=False):
        u = str(r.unique_id)
        if u in why:
            code, text = why[u]
        elif u in info.get("below_top_n", ()):
            code, text = "below_top_n", f"not among the demand.top_n {top} series with the most units sold"
        elif u in series_ids:  # sold, but not in the registered forecaster's history
            code, text = "not_in_model", "not in the served forecaster's history (sold only since it was trained; retrain)"
        else:
            code = "no_sales"
            text = "no sale in the series before the cutoff (never sold, or an id spelt otherwise than the series')"
        held = f"{_units_text(r.on_hand)} units on hand"
        if has_order and float(r.on_order) > 0:
            held += f" and {_units_text(r.on_order)} on order"
        todo = ("review it by hand (dead stock: promote, transfer or write off)" if code in ("no_sales", "no_demand")
                else "review it by hand")
        row = {"unique_id": u, "freq": freq, "on_hand": float(r.on_hand)}
        if has_order:
            row.update(on_order=float(r.on_order), inventory_position=float(r.on_hand) + float(r.on_order))
        row.update(action=NO_POLICY, no_policy_reason=code,
                   suggestion=f"no policy for {held}: {text}; {todo}")
        rows.append(row)
    return pd.DataFrame(rows)
