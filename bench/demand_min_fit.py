"""Young series at a long horizon: the members (borrowing the class choice and its conformal
quantiles from the established series) vs the short-history fallback, on the affected rows only.

    .venv/bin/dealerml data generate --out $DEALERML_HOME/synthetic --seed 42   # the embedded network
    .venv/bin/python bench/demand_min_fit.py default --h 26 --cutoffs 2023-06-26            # validation
    .venv/bin/python bench/demand_min_fit.py default --h 26 --cutoffs 2023-12-25,2024-06-24 # test
    .venv/bin/python bench/demand_min_fit.py default --h 13 --cutoffs \
        2022-12-26,2023-03-27,2023-06-26,2023-09-25,2023-12-25,2024-03-25                 # validation
    .venv/bin/python bench/demand_min_fit.py default --h 13 --cutoffs 2024-06-24,2024-09-23 # test
    .venv/bin/python bench/demand_min_fit.py online_retail --h 13 --cutoffs 2011-08-29      # the only one

(``--cache DIR`` keeps the member frames, ``--json OUT`` writes the summary and the per-row table.
Wall time without a cache on 2 cores: ~40 s, 90 s and 3 min per data set / horizon; each row's
figures do not depend on which other cutoffs are run.) Online Retail (52 weeks) allows one cutoff at
h = 13 (a selection window needs 26 periods before c - 13) and none at h = 26.

A series with demand has ``n`` observed periods at a cutoff; ``min_train`` = max(2h, 4) (the
members' need) and ``min_fit`` = max(h, 8) (session 12, fixed before measuring). The rows with
min_fit <= n < min_train are scored, per cutoff and pooled:

* ``fallback``: the product as it is (``ShortHistory``: mean of the last 4 periods, its bands);
* ``members``: every member fitted on those series at the cutoff (statsforecast members per series,
  season 1, point forecasts; LightGBM = the product's model at that cutoff, trained on the
  established series only, predicting the young ones), ``Final`` = the member (or Ensemble) the
  series' demand class chose on the established series' selection windows, with that class's Final
  split-conformal quantiles times the series' naive scale. Nothing of an established series changes.

Figures: MASE (MAE of the h periods / the series' in-sample naive MAE up to the cutoff; season 1, as
these series have under two seasons; series with a zero scale left out), bias ((sum f - sum y) /
sum y), coverage of the 80 / 95 % bands, and the 95 % reorder point / order-up-to level
(``fit_forecaster_policy`` as the product sizes: 14 +- 3 days lead time, review 1 week, history up
to the cutoff; the members' young series from their class's error pool) against the next 2 / 3
weeks' demand. Also every member's MASE on the same rows. Member frames are cached per data set and
horizon (``--cache``). BENCHMARKS.md "What was tried" (session 12) quotes the figures: under a rule
written first the members lost on the validation cutoffs (MASE
+119 % at h 26, +17 % at h 13 on the synthetic network) and gained 1.4 % on Online Retail: not adopted.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def min_fit_of(h: int) -> int:
    return max(int(h), 8)


def young_members(est, panel, c: int, h: int, young: np.ndarray, lgbm: dict) -> pd.DataFrame:
    """Every member's point forecast from cutoff index c for the series of the mask ``young``."""
    from models.demand_members import _ENSEMBLE_OF
    from models.demand_stat import STAT_MEMBERS, stat_forecast

    sub = panel.subset(young)
    future = pd.date_range(panel.dates[c], periods=h + 1, freq=panel.offset)[1:]
    out = pd.DataFrame({"unique_id": np.repeat(np.arange(sub.n), h), "ds": np.tile(future.values, sub.n),
                        "step": np.tile(np.arange(1, h + 1), sub.n)})
    stat = [m for m in est._members() if m in STAT_MEMBERS]
    if stat:  # fewer than two seasons: the season-1 versions, as the product gives such series
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = stat_forecast(sub.long(c, codes=True), stat, season=1, h=h, offset=panel.offset, levels=None,
                               n_jobs=est.n_jobs)
        out = out.merge(fc, on=["unique_id", "ds"], how="left")
    if "LightGBM" in est._members():
        model, first = lgbm["model"], lgbm["first"]
        Y = sub.Y[:, first: c + 1]
        Xf = None
        if sub.X is not None:
            Xh = sub.X[:, first: c + 1, :]
            Xfut = sub.X[:, c + 1: c + 1 + h, :] if sub.X.shape[1] >= c + 1 + h else np.repeat(sub.X[:, c: c + 1, :], h, axis=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ref = np.nanmean(np.abs(Xh), axis=1, keepdims=True)
            ref = np.where(np.isfinite(ref) & (ref > 0), ref, 1.0)
            Xf = np.concatenate([Xfut, Xfut / ref], axis=2)
        with warnings.catch_warnings():  # the series' own scale, as GlobalLGBM.fit computes it
            warnings.simplefilter("ignore", RuntimeWarning)
            full = np.nanmean(Y, axis=1)
            sw = model.scale_window
            scale = full if not sw else np.nanmean(Y[:, -int(sw):], axis=1)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, full)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        kept = model.scale_
        try:
            model.scale_ = scale
            out["LightGBM"] = model.predict(Y, future, Xf).reshape(-1)
        finally:
            model.scale_ = kept
    present = [m for m in _ENSEMBLE_OF if m in out.columns]
    if len(present) >= 2:
        out["Ensemble"] = out[present].mean(axis=1)
    out["unique_id"] = sub.uids[out["unique_id"].to_numpy()]
    out["cutoff"] = panel.dates[c]
    return out


def candidate_final(yfc: pd.DataFrame, info: dict, panel, c: int, levels: list[int]) -> pd.DataFrame:
    """``Final`` of the young series: their class's choice, the class's Final conformal quantiles."""
    from models.demand_conformal import apply_conformal, nest_intervals
    from models.demand_select import naive_scale

    cls = info["classes"].set_index("unique_id")["demand_class"]
    fc = yfc.copy()
    fc["demand_class"] = fc["unique_id"].map(cls).fillna("unknown").to_numpy()
    fc["final_model"] = fc["unique_id"].map(info["choice"]).fillna("AutoETS").to_numpy()
    pick = fc["final_model"].to_numpy()
    fc["Final"] = np.nan
    for m in np.unique(pick):
        fc.loc[pick == m, "Final"] = fc.loc[pick == m, m]
    scale = pd.Series(naive_scale(panel.Y, c), index=panel.uids).loc[fc["unique_id"]].to_numpy()
    ints = apply_conformal(fc["Final"].to_numpy(), scale, fc["demand_class"].to_numpy(), fc["step"].to_numpy(),
                           info["conformal"]["Final"], levels)
    for lv, (lo, hi) in ints.items():
        fc[f"Final-lo-{lv}"], fc[f"Final-hi-{lv}"] = lo, hi
    nest_intervals(fc, "Final", levels)
    return fc


def stock_cover(fc: pd.DataFrame, like, history: pd.DataFrame, young_fc: pd.DataFrame | None, info: dict,
                seed: int) -> pd.DataFrame:
    """95 % reorder point / order-up-to per series (fallback: ``fit_forecaster_policy`` on the
    fallback's rows; members: ``InventoryPolicy.fit`` with the class pools)."""
    from models.inventory import InventoryPolicy, fit_forecaster_policy, lead_time_periods

    L, sdL = lead_time_periods(14, "W"), lead_time_periods(3, "W")
    pol = InventoryPolicy(service_level=0.95, review_period=1.0, cover_limit_periods=12, random_state=seed)
    if young_fc is None:
        return fit_forecaster_policy(pol, fc, like, L, sdL, history=history).policy_
    pools = young_fc.drop_duplicates("unique_id").set_index("unique_id")["demand_class"]
    return pol.fit(young_fc, info["residuals"], info["scale"], L, sdL, history=history, pools=pools).policy_


def run(name: str, h: int, cutoffs: list[str], cache_dir: Path) -> pd.DataFrame:
    from types import SimpleNamespace

    from models.demand import DemandForecaster
    from models.demand_conformal import nest_intervals
    from models.demand_data import build_panel
    from training.config import load_config
    from training.demand_config import demand_settings, load_demand_series

    cfg = load_config(ROOT / "experiments" / f"{name}.yaml")
    s = demand_settings(cfg)
    df, _ = load_demand_series(cfg, s)
    kw = s.forecaster_kwargs(cfg.seed)
    kw["min_train"] = None  # the default, max(2h, 4), at the horizon measured
    est = DemandForecaster(freq=s.freq, h=h, **kw)
    est._check_params(h)
    panel = build_panel(df, s.freq, exog=est.exog)
    est._resolve(panel)
    levels = est._levels()
    min_train, min_fit = est._min_train(h), min_fit_of(h)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cfile = cache_dir / f"{name}_h{h}.pkl"
    cache, ycache = pickle.loads(cfile.read_bytes()) if cfile.is_file() else ({}, {})
    rows, members_seen = [], set()
    for cut in sorted(pd.Timestamp(x) for x in cutoffs):
        c = int(panel.dates.get_indexer([cut])[0])
        if c < 0 or c + h > panel.Y.shape[1] - 1:
            raise SystemExit(f"cutoff {cut.date()} is not a period with {h} known periods after it")
        t0 = time.perf_counter()
        est._keep_lgbm_at, est.lgbm_ = c, None
        fc, info = est._origin(panel, c, h, cache)
        del est._keep_lgbm_at
        fcb, short = est._with_short(panel, c, h, fc, info)
        past = panel.Y[:, : c + 1]
        n_obs, total = np.isfinite(past).sum(axis=1), np.nansum(past, axis=1)
        young = (n_obs >= min_fit) & (n_obs < min_train) & (total > 0)
        if not young.any() or "Final" not in info["conformal"]:
            print(f"{name} h={h} {cut.date()}: {int(young.sum())} young series, "
                  f"{'no' if 'Final' not in info['conformal'] else 'a'} selection window: skipped")
            continue
        if (c, h) not in ycache:
            if est.lgbm_ is None:
                raise SystemExit(f"cached members without the young series' at {cut.date()}: delete {cfile}")
            ycache[(c, h)] = young_members(est, panel, c, h, young, est.lgbm_)
        yfc = ycache[(c, h)].copy()
        for mem in [x for x in yfc.columns if x not in ("unique_id", "ds", "step", "cutoff")]:
            nest_intervals(yfc, mem, levels)  # points clipped at 0, as the product clips every member's
        cand = candidate_final(yfc, info, panel, c, levels)
        uy = set(panel.uids[young])
        base = fcb[fcb["unique_id"].isin(uy)]
        assert (base["final_model"] == "ShortHistory").all() and base["unique_id"].nunique() == len(uy)
        # stock: the fallback sizes every short series (each from its own stream), the young ones kept
        hist = panel.long(c)
        like = SimpleNamespace(short_=short["short"], short_residuals_=short["residuals"],
                               short_scale_=short["scale"], residuals_=info["residuals"], scale_=info["scale"])
        shorts = fcb[fcb["final_model"] == "ShortHistory"]
        pb = stock_cover(shorts, like, hist, None, info, est.random_state).set_index("unique_id")
        pc = stock_cover(cand[["unique_id", "ds", "Final"]], None, hist, cand, info, est.random_state).set_index("unique_id")
        ii = np.flatnonzero(young)
        A = panel.Y[ii, c + 1: c + 1 + h]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nanmean(np.abs(np.diff(past[ii], axis=1)), axis=1)
        key = ["unique_id", "step"]
        b = base.set_index(key).sort_index()
        m = cand.set_index(key).sort_index()
        cls = m["demand_class"].groupby(level=0).first()
        for k, i in enumerate(ii):
            u = panel.uids[i]
            y = A[k]
            r = {"data": name, "h": h, "cutoff": str(cut.date()), "unique_id": u, "n_obs": int(n_obs[i]),
                 "scale": scale[k], "sum_y": float(y.sum()), "y2": float(y[:2].sum()), "y3": float(y[:3].sum()),
                 "demand_class": cls[u], "choice": m.loc[u, "final_model"].iloc[0]}
            for arm, t, p in (("fb", b.loc[u], pb), ("mb", m.loc[u], pc)):
                f = t["Final"].to_numpy(dtype=float)
                r[f"{arm}_ae"] = float(np.abs(y - f).mean())
                r[f"{arm}_sum"] = float(f.sum())
                for lv in levels:
                    lo, hi = t[f"Final-lo-{lv}"].to_numpy(dtype=float), t[f"Final-hi-{lv}"].to_numpy(dtype=float)
                    r[f"{arm}_in{lv}"] = float(((y >= lo) & (y <= hi)).mean())
                r[f"{arm}_rop"] = float(p.loc[u, "reorder_point"])
                r[f"{arm}_oup"] = float(p.loc[u, "order_up_to"])
            for mem in [x for x in yfc.columns if x not in ("unique_id", "ds", "step", "cutoff")]:
                members_seen.add(mem)
                r[f"ae_{mem}"] = float(np.abs(y - m.loc[u, mem].to_numpy(dtype=float)).mean())
            rows.append(r)
        print(f"{name} h={h} {cut.date()}: {len(ii)} young series ({min_fit}-{min_train - 1} periods), "
              f"choice {info['choice'].groupby(info['classes'].set_index('unique_id')['demand_class']).agg(lambda x: x.mode().iloc[0]).to_dict()}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        cfile.write_bytes(pickle.dumps((cache, ycache), protocol=pickle.HIGHEST_PROTOCOL))
    return pd.DataFrame(rows)


def summary(t: pd.DataFrame) -> dict:
    ok = t[np.isfinite(t["scale"]) & (t["scale"] > 0)]
    out = {"n": int(len(t)), "n_series": int(t["unique_id"].nunique()), "n_scaled": int(len(ok))}
    for arm in ("fb", "mb"):
        out[f"{arm}_mase"] = float((ok[f"{arm}_ae"] / ok["scale"]).mean())
        out[f"{arm}_mae"] = float(t[f"{arm}_ae"].mean())
        out[f"{arm}_bias"] = float((t[f"{arm}_sum"].sum() - t["sum_y"].sum()) / t["sum_y"].sum())
        for lv in (80, 95):
            out[f"{arm}_cov{lv}"] = float(t[f"{arm}_in{lv}"].mean())
        out[f"{arm}_rop_cov"] = float((t["y2"] <= t[f"{arm}_rop"]).mean())
        out[f"{arm}_oup_cov"] = float((t["y3"] <= t[f"{arm}_oup"]).mean())
        out[f"{arm}_oup_mean"] = float(t[f"{arm}_oup"].mean())
    out["members_mase"] = {c[3:]: round(float((ok[c] / ok["scale"]).mean()), 3) for c in t.columns if c.startswith("ae_")}
    out["choice"] = t["choice"].value_counts().to_dict()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", choices=("default", "online_retail"))
    ap.add_argument("--h", type=int, required=True)
    ap.add_argument("--cutoffs", required=True, help="comma-separated cutoff dates (periods of the series table)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/dealerml_min_fit_cache"))
    ap.add_argument("--json", type=Path, help="write the per-row table (parquet beside it) and the summary here")
    args = ap.parse_args()
    t = run(args.experiment, args.h, args.cutoffs.split(","), args.cache)
    if t.empty:
        raise SystemExit("no young series at these cutoffs")
    res = {"all": summary(t), "by_cutoff": {c: summary(g) for c, g in t.groupby("cutoff")}}
    for key, v in [("all", res["all"]), *res["by_cutoff"].items()]:
        print(f"{key:>10} n={v['n']:4d} MASE fb {v['fb_mase']:.3f} mb {v['mb_mase']:.3f} ({v['mb_mase'] / v['fb_mase'] - 1:+.1%})"
              f" | bias {v['fb_bias']:+.3f} {v['mb_bias']:+.3f} | cov80 {v['fb_cov80']:.3f} {v['mb_cov80']:.3f}"
              f" | cov95 {v['fb_cov95']:.3f} {v['mb_cov95']:.3f} | rop {v['fb_rop_cov']:.3f} {v['mb_rop_cov']:.3f}"
              f" | oup {v['fb_oup_cov']:.3f} {v['mb_oup_cov']:.3f} (mean {v['fb_oup_mean']:.1f} {v['mb_oup_mean']:.1f})")
    print("members' MASE on these rows:", res["all"]["members_mase"], "choice:", res["all"]["choice"])
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
        t.to_parquet(args.json.with_suffix(".parquet"))


if __name__ == "__main__":
    main()
