"""The coherent (``demand.hierarchy``) backtest forecasts every level from the book as it stood at
each window's cutoff, as the flat backtest does (tests/test_demand_as_of.py; docs/DATA.md "As of a
cutoff").

Hand-made weekly book, levels [sku, location]: SKUs S and T at locations L1 and L2, plus a small SKU
U that ``top_n: 4`` leaves out. In the week before the window's cutoff S/L1 and U/L1 each take an
order of 100 units that is cancelled on the Monday after. The backtest read the netted book for
every level before: S/L1, SKU S and the total forecast as if the 100 units had never been ordered,
while a run on the cutoff day sees them. Now a window's forecasts of every level, and the parents'
bands, equal those of a run on the table as it stood then; U's 100 units reach no parent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.demand_hier import HierarchicalDemandForecaster
from training.config import load_config
from training.demand_config import demand_settings, load_demand_series
from training.demand_hier_backtest import run_hier_backtest

START = pd.Timestamp("2024-01-01")  # a Monday: weeks start on Mondays
WEEKS = 22
H = 2
# the window's cutoff week: the book's last week is partial (it ends on a Wednesday) and left out,
# the H weeks before it are the window's test
CUT = START + pd.Timedelta(weeks=WEEKS - 2 - H)
KW = {"models": ["SeasonalNaive", "CrostonSBA"], "selection_windows": 2, "random_state": 1}
# every column a window forecasts: the coherent point and bands, each level's own (Base) ones and the members'
SAME = ["Final", "Final-lo-80", "Final-hi-80", "Final-lo-95", "Final-hi-95", "Base", "Base-lo-95", "Base-hi-95",
        "SeasonalNaive", "CrostonSBA"]


def _book(tmp_path: Path, late_cancel: bool = True) -> Path:
    rng = np.random.default_rng(3)
    rows = []
    for w in range(WEEKS):
        day = START + pd.Timedelta(weeks=w, days=1)
        for sku, loc, lam in (("S", "L1", 10), ("S", "L2", 6), ("T", "L1", 8), ("T", "L2", 4), ("U", "L1", 1)):
            q = int(rng.poisson(lam)) + (1 if sku != "U" else 0)
            rows.append((f"{sku}{loc}{w}", str(day.date()), "A", sku, loc, str(q), "2"))
    friday = str((CUT + pd.Timedelta(days=4)).date())  # the cutoff week's Friday
    monday = str((CUT + pd.Timedelta(days=7)).date())  # after the cutoff week ended
    for sku in ("S", "U"):
        rows.append((f"big{sku}", friday, "A", sku, "L1", "100", "2"))
        if late_cancel:
            rows.append((f"Cbig{sku}", monday, "A", sku, "L1", "-100", "2"))
    # and account B's order of 60 T at L1 five weeks earlier, cancelled on the same Monday: a history
    # before the internal windows' cutoffs, so their naive scales (which calibrate the parents' bands)
    # are those of the book as it stood too
    rows.append(("early", str((CUT - pd.Timedelta(weeks=5, days=-4)).date()), "B", "T", "L1", "60", "2"))
    if late_cancel:
        rows.append(("Cearly", monday, "B", "T", "L1", "-60", "2"))
    csv = tmp_path / "lines.csv"
    pd.DataFrame(rows, columns=["order_id", "order_date", "account_id", "sku", "location", "quantity",
                                "unit_price"]).to_csv(csv, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\nseed: 1\ndata:\n  order_lines: {{path: {csv}, cancellation_prefix: C, cancellation_window_days: 60}}\n"
                   f"  as_of: '2025-01-01'\ndemand: {{freq: W, horizon: {H}, windows: 1, levels: [sku, location], "
                   "top_n: 4, hierarchy: true}\n")
    return cfg


def _loaded(tmp_path: Path, **kw):
    cfg = load_config(_book(tmp_path, **kw))
    return load_demand_series(cfg, demand_settings(cfg))


def _cv(df: pd.DataFrame, history_as_of=None) -> pd.DataFrame:
    """The backtest's window forecasts of every level (``run_hier_backtest``'s frame, without its report)."""
    est = HierarchicalDemandForecaster(["sku", "location"], forecaster={"freq": "W", "h": H, **KW})
    cv = est.cross_validation(df, h=H, n_windows=1, history_as_of=history_as_of)
    return cv[cv["y"].notna()].sort_values(["unique_id", "ds"]).reset_index(drop=True)


def _then(df: pd.DataFrame, as_of) -> pd.DataFrame:
    """``df`` with its periods up to the cutoff as the book stood at the end of the cutoff week: the
    table a run on that day would have read (its later periods are never read by the window)."""
    then = as_of(CUT + pd.Timedelta(weeks=1)).set_index(["unique_id", "ds"])["y"]
    out = df.copy()
    key = pd.MultiIndex.from_frame(out[["unique_id", "ds"]])
    at = (out["ds"] <= CUT).to_numpy()
    out.loc[at, "y"] = then.reindex(key[at]).to_numpy()
    return out


def test_every_level_of_a_window_forecasts_from_the_book_as_it_stood_at_its_cutoff(tmp_path: Path) -> None:
    df, info = _loaded(tmp_path)
    assert sorted(df["unique_id"].unique()) == ["S/L1", "S/L2", "T/L1", "T/L2"]  # U left out by top_n
    y = df.set_index(["unique_id", "ds"])["y"]
    then = _then(df, info["as_of"])
    assert then.set_index(["unique_id", "ds"])["y"][("S/L1", CUT)] == y[("S/L1", CUT)] + 100  # the units a run then saw

    report, cv = run_hier_backtest(df, levels=["sku", "location"], method="bottom_up", freq="W", h=H, n_windows=1,
                                   forecaster_kwargs=KW, history_as_of=info["as_of"])
    assert report["history_as_of_cutoff"] is True
    cv_old, want = _cv(df), _cv(then)  # in hindsight; a run on the table as it stood at the cutoff
    assert (cv["cutoff"] == CUT).all()
    key = ["unique_id", "ds"]
    got = cv.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, _cv(df, info["as_of"]))  # the report's frame is the forecaster's
    assert list(got["unique_id"]) == list(want["unique_id"])
    assert {"total", "total/S", "total/T", "total/S/L1"} <= set(got["unique_id"])
    pd.testing.assert_frame_equal(got[key + SAME], want[key + SAME])  # every level, points and bands
    # scored on the netted book: the 100 units were cancelled
    np.testing.assert_array_equal(got["y"], cv_old["y"])
    # the naive forecast repeats the cutoff week: with the 100 units as the book stood then, at the bottom
    # and in its parents (each level's own forecast), not in hindsight
    last = {u: y[(u, CUT)] for u in ("S/L1", "S/L2", "T/L1", "T/L2")}
    naive = got.groupby("unique_id")["SeasonalNaive"].first()
    old = cv_old.groupby("unique_id")["SeasonalNaive"].first()
    assert naive["total/S/L1"] == last["S/L1"] + 100 and old["total/S/L1"] == last["S/L1"]
    assert naive["total/S"] == last["S/L1"] + last["S/L2"] + 100 and old["total/S"] == last["S/L1"] + last["S/L2"]
    # U (not among the top_n) reaches no parent: the total has S's 100 units only
    assert naive["total"] == sum(last.values()) + 100
    assert naive["total/T"] == old["total/T"] == last["T/L1"] + last["T/L2"]
    early = CUT - pd.Timedelta(weeks=5)
    assert then.set_index(["unique_id", "ds"])["y"][("T/L1", early)] == y[("T/L1", early)] + 60
    # the parents' bands were calibrated on the history as it stood: they differ from hindsight's
    par = got["unique_id"].isin(["total", "total/S"])
    assert not np.allclose(got.loc[par, "Final-hi-95"], cv_old.loc[par, "Final-hi-95"])


def test_without_a_change_the_backtest_is_the_same_as_without_history_as_of(tmp_path: Path) -> None:
    """A book whose cancellations net nothing later has no ``as_of``; a callable that gives the book
    itself (every series, U included, with their key columns) changes no number either."""
    df, info = _loaded(tmp_path, late_cancel=False)
    assert "as_of" not in info
    cfg = load_config(_book(tmp_path, late_cancel=False))
    whole, _ = load_demand_series(cfg, demand_settings(cfg).model_copy(update={"top_n": None}))
    assert "U/L1" in set(whole["unique_id"])

    def same(at: pd.Timestamp) -> pd.DataFrame:
        return whole[whole["ds"] < at]

    pd.testing.assert_frame_equal(_cv(df, same), _cv(df))


def test_the_final_fit_after_an_as_of_backtest_reads_the_final_book(tmp_path: Path) -> None:
    """``train demand``: the final fit takes each level's selection windows from the backtest's member
    cache; the windows that read the book as it stood keep their frames apart, so the fit is that of
    the final book (the same forecast as a fit without the cache)."""
    from models.demand_cache import MemberCache

    df, info = _loaded(tmp_path)
    cache = MemberCache()
    kw = {"freq": "W", "h": H, **KW}
    HierarchicalDemandForecaster(["sku", "location"], forecaster=kw).cross_validation(
        df, h=H, n_windows=1, member_cache=cache, history_as_of=info["as_of"])
    shared = HierarchicalDemandForecaster(["sku", "location"], forecaster=kw).fit(df, member_cache=cache).predict()
    alone = HierarchicalDemandForecaster(["sku", "location"], forecaster=kw).fit(df).predict()
    pd.testing.assert_frame_equal(shared, alone)


def test_a_tuning_fold_of_a_hierarchical_model_reads_the_book_as_it_stood(tmp_path: Path) -> None:
    """``tune demand`` / ``promote demand`` score a hierarchical model's fold as ``backtest demand`` does:
    from the book as it stood at the cutoff (a plain model's folds already were; both are compared)."""
    from training.demand_tuning import DemandTuningTarget

    cfg = load_config(_book(tmp_path))
    s = demand_settings(cfg)
    df, info = load_demand_series(cfg, s)
    s = s.model_copy(update={k: v for k, v in KW.items() if k != "random_state"})
    target = DemandTuningTarget(df, s, seed=1, n_folds=1, levels=info["levels"], as_of=info["as_of"])
    report = target._report(target.default_params, 0, target._own_hier())
    assert report["history_as_of_cutoff"] is True and report["cutoffs"] == [str(CUT.date())]
