"""No look-ahead, for EVERY feature function in ``features/``.

Every public function of a ``features.*`` module that takes ``order_lines`` and a ``cutoff``
is discovered and
checked (labels are excluded: they read the horizon after the cutoff by design and are
tested in ``test_features_labels.py``). For several cutoffs and argument variants:

1. the output on the full book equals the output on the book cut at the cutoff (so
   appending rows dated after the cutoff changes nothing);
2. changing every row dated after the cutoff (amounts, quantities, SKUs, categories,
   accounts, promo) and appending new ones - new accounts, SKUs, a row one minute after the
   cutoff, and for functions that read strictly before the cutoff a row exactly on it -
   changes nothing;
3. the inputs are not mutated.

Outputs are compared with exact frame equality. A new feature function with a required
argument this file does not know fails loudly: add it to ``_VARIANTS``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil

import numpy as np
import pandas as pd
import pytest

import features

# label functions: read [cutoff, cutoff + H) on purpose
_LABELS = {"labels.churn_labels", "labels.next_period_value", "labels.stack_snapshots",
           "labels.time_ordered_cutoffs", "dealers.next_period_value"}
# functions whose documented cutoff is inclusive ("last instant whose rows may be read")
_INCLUSIVE = {"demand.demand_series"}
_VARIANTS: dict[str, list[dict]] = {
    "accounts.account_features": [{}, {"windows": (7, 45, 400)}],
    "demand.demand_series": [{"freq": "D"}, {"freq": "W"}, {"freq": "M", "levels": ()},
                             {"freq": "W", "levels": ("sku",)}],
    "dealers.dealer_features": [{}, {"period_days": 60}],
}
_CUTOFFS = ["2023-03-15", "2023-06-30", "2023-07-03", "2023-12-01"]
_TABLE_ARGS = ("order_lines", "accounts", "service_events")


def _discover() -> list[tuple[str, object]]:
    found = []
    for info in sorted(pkgutil.iter_modules(features.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"features.{info.name}")
        for name in getattr(mod, "__all__", []):
            fn = getattr(mod, name)
            key = f"{info.name}.{name}"
            params = inspect.signature(fn).parameters if inspect.isfunction(fn) else {}
            if "cutoff" in params and "order_lines" in params and key not in _LABELS:
                found.append((key, fn))
    return found


_FUNCTIONS = _discover()
_CASES = [
    pytest.param(key, fn, variant, id=f"{key}-{i}")
    for key, fn in _FUNCTIONS
    for i, variant in enumerate(_VARIANTS.get(key, [{}]))
]


def _book(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_orders, n_acc, n_sku = 900, 30, 40
    start = pd.Timestamp("2022-01-01")
    o_time = start + pd.to_timedelta(np.sort(rng.integers(0, 730 * 24, n_orders)), unit="h")
    o_acc = rng.integers(0, n_acc, n_orders)
    sizes = rng.integers(1, 5, n_orders)
    idx = np.repeat(np.arange(n_orders), sizes)
    sku = rng.integers(0, n_sku, len(idx))
    qty = rng.integers(1, 10, len(idx)).astype(float)
    price = 3.0 + sku
    ol = pd.DataFrame(
        {
            "order_id": [f"O{i:05d}" for i in idx],
            "order_date": o_time[idx],
            "account_id": [f"A{a:03d}" for a in o_acc[idx]],
            "sku": [f"S{s:03d}" for s in sku],
            "quantity": qty,
            "unit_price": price,
            "line_amount": qty * price,
            "location": np.where(sku % 3 == 0, "north", "south"),
            "channel": np.where(o_acc[idx] % 4 == 0, "web", "field"),
            "category": [f"C{s % 5}" for s in sku],
            "promo": (rng.random(len(idx)) < 0.15).astype(float),
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{a:03d}" for a in range(n_acc)],
            "region": [["north", "south", "east"][a % 3] for a in range(n_acc)],
            "channel_type": [["shop", "distributor"][a % 2] for a in range(n_acc)],
            "onboarding_date": start - pd.to_timedelta(rng.integers(0, 400, n_acc), unit="D"),
        }
    )
    n_ev = 200
    events = pd.DataFrame(
        {
            "event_date": start + pd.to_timedelta(rng.integers(0, 730, n_ev), unit="D"),
            "account_id": [f"A{a:03d}" for a in rng.integers(0, n_acc, n_ev)],
            "kind": rng.choice(["complaint", "return", "ticket"], n_ev),
            "resolution_days": np.where(rng.random(n_ev) < 0.2, np.nan, rng.integers(0, 30, n_ev)),
        }
    )
    return ol, accounts, events


def _disturb_after(ol: pd.DataFrame, ev: pd.DataFrame, cut: pd.Timestamp, on_cutoff: bool):
    """Change every row after ``cut`` and append new rows after it."""
    ol = ol.copy()
    after = ol["order_date"] > cut
    ol.loc[after, "quantity"] = ol.loc[after, "quantity"] * 3 + 1
    ol.loc[after, "line_amount"] = ol.loc[after, "quantity"] * ol.loc[after, "unit_price"] * 7
    ol.loc[after, "sku"] = "S_NEW"
    ol.loc[after, "category"] = "C_NEW"
    ol.loc[after, "promo"] = 1.0 - ol.loc[after, "promo"]
    ol.loc[after, "account_id"] = ol.loc[after, "account_id"].str.replace("A0", "Z0")
    extra_dates = [cut + pd.Timedelta(minutes=1), cut + pd.Timedelta(days=1), cut + pd.Timedelta(days=40)]
    if on_cutoff:
        extra_dates.append(cut)
    extra = pd.DataFrame(
        {
            "order_id": [f"X{i}" for i in range(len(extra_dates))],
            "order_date": extra_dates,
            "account_id": ["A000", "NEWACC", "A001", "A002"][: len(extra_dates)],
            "sku": ["S000", "S_NEW2", "S001", "S002"][: len(extra_dates)],
            "quantity": 5.0,
            "unit_price": 11.0,
            "line_amount": 55.0,
            "location": "north",
            "channel": "web",
            "category": "C_NEW2",
            "promo": 1.0,
        }
    )
    ol = pd.concat([ol, extra], ignore_index=True).sort_values("order_date", kind="stable", ignore_index=True)
    ev = ev.copy()
    ev_after = ev["event_date"] >= cut if on_cutoff else ev["event_date"] > cut
    ev.loc[ev_after, "kind"] = "complaint"
    ev.loc[ev_after, "resolution_days"] = 1.0
    ev_extra = pd.DataFrame(
        {
            "event_date": [cut, cut + pd.Timedelta(days=2)] if on_cutoff else [cut + pd.Timedelta(days=2)] * 2,
            "account_id": ["A000", "A001"],
            "kind": ["complaint", "return"],
            "resolution_days": [0.0, 3.0],
        }
    )
    return ol, pd.concat([ev, ev_extra], ignore_index=True)


def _call(key, fn, variant, ol, accounts, events, cut):
    tables = {"order_lines": ol, "accounts": accounts, "service_events": events}
    kwargs = dict(variant)
    for name, p in inspect.signature(fn).parameters.items():
        if name in _TABLE_ARGS:
            kwargs[name] = tables[name]
        elif name == "cutoff":
            kwargs[name] = cut
        elif p.default is inspect.Parameter.empty and name not in kwargs:
            pytest.fail(f"{key} needs argument {name!r}: add it to _VARIANTS in {__file__}")
    return fn(**kwargs)


def test_discovery_finds_the_feature_functions():
    keys = {k for k, _ in _FUNCTIONS}
    assert "accounts.account_features" in keys
    for mod, fn in (("demand", "demand_series"), ("dealers", "dealer_features")):
        if importlib.util.find_spec(f"features.{mod}") is not None:
            assert f"{mod}.{fn}" in keys


@pytest.mark.parametrize(("key", "fn", "variant"), _CASES)
def test_no_lookahead(key, fn, variant):
    ol, accounts, events = _book()
    inclusive = key in _INCLUSIVE
    for cutoff in _CUTOFFS:
        cut = pd.Timestamp(cutoff)
        keep = ol["order_date"] <= cut if inclusive else ol["order_date"] < cut
        ev_keep = events["event_date"] < cut
        snapshot = [x.copy(deep=True) for x in (ol, accounts, events)]
        base = _call(key, fn, variant, ol, accounts, events, cut)
        for before, after in zip(snapshot, (ol, accounts, events), strict=True):
            pd.testing.assert_frame_equal(before, after)  # inputs not mutated
        assert len(base) > 0, f"{key} returned nothing at {cutoff}; the test would be vacuous"
        cut_only = _call(key, fn, variant, ol[keep].reset_index(drop=True), accounts,
                         events[ev_keep].reset_index(drop=True), cut)
        pd.testing.assert_frame_equal(base, cut_only, check_exact=True)
        ol2, ev2 = _disturb_after(ol, events, cut, on_cutoff=not inclusive)
        disturbed = _call(key, fn, variant, ol2, accounts, ev2, cut)
        pd.testing.assert_frame_equal(base, disturbed, check_exact=True)


def test_demand_classes_of_asof_series_have_no_lookahead():
    """``demand_classes`` takes no cutoff; composed with ``demand_series`` it must be as-of too."""
    if importlib.util.find_spec("features.demand") is None:
        return
    from features.demand import demand_classes, demand_series

    ol, _, events = _book()
    cut = pd.Timestamp("2023-06-30")
    base = demand_classes(demand_series(ol, cutoff=cut, freq="W"))
    ol2, _ = _disturb_after(ol, events, cut, on_cutoff=False)
    pd.testing.assert_frame_equal(base, demand_classes(demand_series(ol2, cutoff=cut, freq="W")))
