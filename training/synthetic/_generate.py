"""``generate``: run the simulation chunk by chunk and write the files atomically."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from training.synthetic import _params as P
from training.synthetic._accounts import CHURN_KINDS, NO_DAY, STAGES, Accounts, make_accounts, take
from training.synthetic._catalog import Calendar, Catalog, make_calendar, make_catalog
from training.synthetic._orders import ChunkResult, simulate_chunk

SEGMENTS = P.SEGMENTS

FILES = (
    "order_lines.parquet",
    "accounts.csv",
    "service_events.csv",
    "inventory.csv",
    "lead_times.csv",
    "truth_accounts.csv",
    "truth_skus.csv",
    "promo_calendar.csv",
    "config.yaml",
)
_KINDS = np.array(["complaint", "return", "ticket"])


_STOCK_WEEKS = 52  # weeks of demand history behind the synthetic inventory snapshot


def _base_stock_level(weekly: np.ndarray, lead_time_days: np.ndarray, q: float = 0.95) -> np.ndarray:
    """Per row of ``weekly`` (series x weeks of units): the ``q`` quantile of demand summed over
    windows of lead time / 7 + 1 weeks (lead time + one review week; the last week counted by
    its fraction, as ``models.inventory`` sums a fractional lead time), at least one unit for a
    series that sold anything in the period."""
    n, w = weekly.shape
    length = np.clip(np.asarray(lead_time_days, dtype=float) / 7.0 + 1.0, 1.0, float(w))
    k = np.minimum(np.floor(length).astype(int), w)
    frac = length - k
    C = np.concatenate([np.zeros((n, 1)), np.cumsum(weekly, axis=1)], axis=1)
    out = np.zeros(n)
    for kk in np.unique(k):
        rows = np.flatnonzero(k == kk)
        n_win = w - kk if kk < w else 1  # windows whose fractional last week is inside the data
        starts = np.arange(n_win)
        sums = C[rows][:, starts + kk] - C[rows][:, starts]
        if kk < w:
            sums = sums + frac[rows, None] * weekly[rows][:, starts + kk]
        out[rows] = np.quantile(sums, q, axis=1)
    return np.where(weekly.sum(axis=1) > 0, np.maximum(out, 1.0), 0.0)


SNAPSHOT_STATES = ("normal", "low", "stockout", "overstock")


def _inventory_snapshot(rng: np.random.Generator, level: np.ndarray, weekly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """On-hand of a distributor running a weekly-review base-stock policy, and the planted state.

    ``level`` (n): the base-stock level; ``weekly`` (n x weeks): last year's demand. The stock
    stands for the inventory position (on hand + on order), as ``dealerml safety-stock`` reads
    it: each review raises it to the level and the week's demand draws it down, so a normal
    snapshot is ``level - u x (one week of demand)``, u ~ U(0, 1), the week drawn from the
    series' last year. Planted: 10 % running low (0.2-0.6 x level), 8 % stock-outs (0) and 4 %
    overstock (3-6 x level). States are indices into ``SNAPSHOT_STATES``.
    """
    n, w = weekly.shape
    week = weekly[np.arange(n), rng.integers(0, w, n)]
    on_hand = np.maximum(level - rng.random(n) * week, 0.0)
    state = np.zeros(n, dtype=int)
    low = rng.random(n) < 0.10
    on_hand[low] = level[low] * rng.uniform(0.2, 0.6, int(low.sum()))
    state[low] = 1
    out = rng.random(n) < 0.08
    on_hand[out] = 0.0
    state[out] = 2
    over = rng.random(n) < 0.04
    on_hand[over] = level[over] * rng.uniform(3.0, 6.0, int(over.sum()))
    state[over] = 3
    return np.round(on_hand), state


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def _check_args(n_accounts: int, n_skus: int, n_locations: int, start: str, end: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    if n_accounts < 20:
        raise ValueError(f"n_accounts must be at least 20 (every segment needs members); got {n_accounts}")
    if n_skus < 12:
        raise ValueError(f"n_skus must be at least 12 (two per category); got {n_skus}")
    if not 1 <= n_locations <= 50:
        raise ValueError(f"n_locations must be between 1 and 50; got {n_locations}")
    for name, text in (("start", start), ("end", end)):
        if re.match(r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b", str(text)):  # pandas read 03/04/2022 as March 4
            raise ValueError(f"{name} must be written year first, like 2022-01-01; got {text!r}: a date with the year "
                             "last is day first in some countries and month first in others")
    try:
        t0, t1 = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    except ValueError as exc:
        raise ValueError(f"start/end must be dates like 2022-01-01; got {start!r}, {end!r} ({exc})") from None
    if t0 < pd.Timestamp("1900-01-01") or t1 > pd.Timestamp("2200-12-31"):  # 1700 overflowed the ns calendar
        raise ValueError(f"start/end must lie between 1900-01-01 and 2200-12-31; got {t0.date()} .. {t1.date()}")
    if t1 <= t0:  # said as "must cover at least one year", which hid that the two were swapped
        raise ValueError(f"end {t1.date()} is not after start {t0.date()} (swapped?): the period must run forward "
                         "and cover at least one year")
    if (t1 - t0).days < 364:
        raise ValueError(f"the period must cover at least one year; got {t0.date()} .. {t1.date()}")
    return t0, t1


def _simulate(
    seed: int, n_accounts: int, n_skus: int, n_locations: int, t0: pd.Timestamp, t1: pd.Timestamp
) -> tuple[Calendar, Catalog, Accounts, Iterator[tuple[np.ndarray, ChunkResult]]]:
    cal = make_calendar(t0, t1)
    cat = make_catalog(_rng(seed, 0), n_skus, cal)
    acc = make_accounts(_rng(seed, 1), n_accounts, len(cal.days), n_locations)

    def chunks() -> Iterator[tuple[np.ndarray, ChunkResult]]:
        for c, lo in enumerate(range(0, n_accounts, P.CHUNK_ACCOUNTS)):
            idx = np.arange(lo, min(lo + P.CHUNK_ACCOUNTS, n_accounts))
            yield idx, simulate_chunk(_rng(seed, 100 + c), take(acc, idx), cat, cal, n_locations)

    return cal, cat, acc, chunks()


def estimate_lines_per_account(
    *, seed: int = 42, n_skus: int = 200, n_locations: int = 3, start: str = "2022-01-01", end: str = "2024-12-31"
) -> float:
    """Mean order lines per account for these settings, from a 2,000-account pilot (~1 s)."""
    t0, t1 = _check_args(2000, n_skus, n_locations, start, end)
    *_, it = _simulate(seed, 2000, n_skus, n_locations, t0, t1)
    return sum(len(r.day) for _, r in it) / 2000


def generate(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 42,
    n_accounts: int = 400,
    n_skus: int = 200,
    n_locations: int = 3,
    start: str = "2022-01-01",
    end: str = "2024-12-31",
    lines_target: int | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Write the synthetic dealer network to ``out_dir``; return ``{file stem: path}``.

    ``lines_target`` (optional) overrides ``n_accounts`` with the count that gives about that
    many order lines. Files are written to a temporary folder first and moved into place only
    when all are complete, so a failed run leaves ``out_dir`` as it was.
    """
    if lines_target is not None:
        if lines_target < 1000:
            raise ValueError(f"lines_target must be at least 1000; got {lines_target}")
        per = estimate_lines_per_account(seed=seed, n_skus=n_skus, n_locations=n_locations, start=start, end=end)
        n_accounts = max(20, int(round(lines_target / per)))
    t0, t1 = _check_args(n_accounts, n_skus, n_locations, start, end)
    out = Path(out_dir)
    _check_out_dir(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".generate-tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    ok = False
    try:
        _write_all(tmp, seed, n_accounts, n_skus, n_locations, t0, t1, progress)
        paths = {}
        for name in FILES:
            os.replace(tmp / name, out / name)
            paths[name.split(".")[0]] = out / name
        ok = True
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not ok and created:
            shutil.rmtree(out, ignore_errors=True)


_HEADER = "# Generated by `dealerml data generate`"
"""The first line of the config.yaml ``generate`` writes: it marks a folder as the generator's."""


def _check_out_dir(out: Path) -> None:
    """Only a new or empty folder, or one ``generate`` wrote, may receive the files: never
    replace a user's own ``accounts.csv`` / ``config.yaml``."""
    if not out.exists():
        if any(p.exists() and not p.is_dir() for p in out.parents):
            bad = next(p for p in out.parents if p.exists() and not p.is_dir())
            raise ValueError(f"output folder {out}: {bad} is a file, not a folder")
        return
    if not out.is_dir():
        raise ValueError(f"output folder {out} exists and is a file, not a folder; give a new or empty folder")
    names = {p.name for p in out.iterdir() if not p.name.startswith(".generate-tmp-")}
    if not names or _generated_here(out):
        return
    ours = sorted(names & set(FILES))
    others = sorted(names - set(FILES))
    shown = ours[:5] if ours else others[:5]
    raise ValueError(
        f"output folder {out} already holds files that data generate did not write ({', '.join(shown)}"
        f"{', ...' if len(ours or others) > 5 else ''}); refusing to replace them - choose a new or empty folder"
    )


def _generated_here(out: Path) -> bool:
    """The folder's config.yaml is the one ``generate`` wrote (its first line says so)."""
    try:
        with open(out / "config.yaml", encoding="utf-8", errors="replace") as fh:
            return fh.readline().startswith(_HEADER)
    except OSError:
        return False


def _progress(total: int, enabled: bool):  # noqa: ANN202 - rich or a no-op
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def _write_all(
    tmp: Path, seed: int, n_accounts: int, n_skus: int, n_locations: int, t0: pd.Timestamp, t1: pd.Timestamp, progress: bool
) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    cal, cat, acc, chunks = _simulate(seed, n_accounts, n_skus, n_locations, t0, t1)
    D, S, L = len(cal.days), n_skus, n_locations
    n_weeks = int(cal.week_idx[-1]) + 1
    locations = np.array([f"DC{i + 1}" for i in range(L)])
    day_ns = cal.days.values.astype("datetime64[ns]")
    order_prefix = pa.array(np.char.add("SO", cal.days.strftime("%Y%m%d").to_numpy().astype(str)))
    acct_num = pa.array(np.char.add("-", np.char.zfill(np.arange(1, n_accounts + 1).astype(str), 5)))
    pa_acct, pa_sku = pa.array(acc.ids), pa.array(cat.sku_ids)
    pa_loc, pa_chan = pa.array(locations), pa.array(np.array(P.CHANNELS))
    pa_cat = pa.array(np.array(P.CATEGORIES))

    schema = pa.schema(
        [
            ("order_id", pa.string()),
            ("order_date", pa.timestamp("ns")),
            ("account_id", pa.string()),
            ("sku", pa.string()),
            ("quantity", pa.float64()),
            ("unit_price", pa.float64()),
            ("line_amount", pa.float64()),
            ("location", pa.string()),
            ("channel", pa.string()),
            ("category", pa.string()),
            ("promo", pa.float64()),
            ("currency", pa.string()),
        ]
    )
    weekly = np.zeros(S * n_weeks)
    last_year = np.zeros(S * L * _STOCK_WEEKS)  # units per (sku, location, week) in the last 52 weeks
    n_orders = np.zeros(n_accounts, np.int64)
    first_day = np.full(n_accounts, NO_DAY)
    last_day = np.full(n_accounts, -1)
    revenue = np.zeros(n_accounts)
    events = []
    bar = _progress(n_accounts, progress)
    task = bar.add_task("simulating dealers", total=n_accounts) if bar else None
    if bar:
        bar.start()
    try:
        with pq.ParquetWriter(tmp / "order_lines.parquet", schema, compression="zstd") as writer:
            for idx, r in chunks:
                g = idx[r.acct]
                amount = np.round(r.quantity * r.unit_price, 2)
                n = len(g)
                table = pa.table(
                    {
                        "order_id": pc.binary_join_element_wise(
                            pc.take(order_prefix, pa.array(r.day)), pc.take(acct_num, pa.array(g)), ""
                        ),
                        "order_date": pa.array(day_ns[r.day], pa.timestamp("ns")),
                        "account_id": pc.take(pa_acct, pa.array(g)),
                        "sku": pc.take(pa_sku, pa.array(r.sku)),
                        "quantity": pa.array(r.quantity, pa.float64()),
                        "unit_price": pa.array(r.unit_price, pa.float64()),
                        "line_amount": pa.array(amount, pa.float64()),
                        "location": pc.take(pa_loc, pa.array(r.location)),
                        "channel": pc.take(pa_chan, pa.array(r.channel)),
                        "category": pc.take(pa_cat, pa.array(cat.category[r.sku])),
                        "promo": pa.array(r.promo, pa.float64()),
                        "currency": pa.array(np.full(n, P.CURRENCY)),
                    },
                    schema=schema,
                )
                writer.write_table(table, row_group_size=1 << 20)
                weekly += np.bincount(r.sku * n_weeks + cal.week_idx[r.day], weights=r.quantity, minlength=S * n_weeks)
                yr = r.day >= D - 7 * _STOCK_WEEKS
                wk = (r.day[yr] - (D - 7 * _STOCK_WEEKS)) // 7
                last_year += np.bincount((r.sku[yr] * L + r.location[yr]) * _STOCK_WEEKS + wk, weights=r.quantity[yr],
                                         minlength=S * L * _STOCK_WEEKS)
                # per-account realised stats (orders = distinct days, one order per account-day)
                key = np.unique(g.astype(np.int64) * D + r.day)
                n_orders += np.bincount(key // D, minlength=n_accounts)
                np.minimum.at(first_day, g, r.day)
                np.maximum.at(last_day, g, r.day)
                revenue += np.bincount(g, weights=amount, minlength=n_accounts)
                acc.dropped_category[idx] = r.dropped_category
                events.append((idx[r.ev_acct], r.ev_day, r.ev_kind, r.ev_resolution))
                if bar:
                    bar.update(task, advance=len(idx))
    finally:
        if bar:
            bar.stop()

    def dates(d: np.ndarray) -> np.ndarray:
        out = (t0 + pd.to_timedelta(np.where(d >= NO_DAY, 0, d), unit="D")).strftime("%Y-%m-%d").to_numpy().astype(object)
        out[(d >= NO_DAY) | (d < -10**6)] = ""
        return out

    onboarding = dates(acc.onboard)
    pd.DataFrame(
        {
            "account_id": acc.ids,
            "region": np.array(P.REGIONS)[acc.region],
            "channel_type": np.array(P.CHANNEL_TYPES)[acc.channel_type],
            "onboarding_date": onboarding,
            "credit_limit": np.round(P.CREDIT_BASE[acc.segment] * acc.size / P.SIZE_SCALE[acc.segment], -3),
            "payment_terms_days": P.PAYMENT_TERMS[acc.segment],
        }
    ).to_csv(tmp / "accounts.csv", index=False)

    ev_acct, ev_day, ev_kind, ev_res = (np.concatenate(x) for x in zip(*events, strict=True))
    o = np.lexsort((ev_kind, ev_acct, ev_day))
    pd.DataFrame(
        {
            "event_date": dates(ev_day[o]),
            "account_id": acc.ids[ev_acct[o]],
            "kind": _KINDS[ev_kind[o]],
            "resolution_days": ev_res[o],
        }
    ).drop_duplicates().to_csv(tmp / "service_events.csv", index=False)

    lt_rng = _rng(seed, 2)
    lt_mean = np.round(
        P.CATEGORY_LEAD_TIME[cat.category][:, None] * lt_rng.lognormal(0, 0.25, (S, L)) * lt_rng.uniform(0.85, 1.15, L)[None, :], 1
    )
    lt_std = np.round(lt_mean * lt_rng.uniform(0.15, 0.4, (S, L)), 1)
    pd.DataFrame(
        {
            "sku": np.repeat(cat.sku_ids, L),
            "location": np.tile(locations, S),
            "lead_time_days": lt_mean.ravel(),
            "lead_time_std_days": lt_std.ravel(),
        }
    ).to_csv(tmp / "lead_times.csv", index=False)

    # The snapshot of a distributor that runs a weekly-review base-stock policy: its level is the
    # 95th percentile of last year's demand over lead time + one review week, and the snapshot
    # falls at a random point of the week (level minus part of a week's demand); planted: 10 %
    # running low, 8 % stock-outs and 4 % overstock (see _inventory_snapshot). The stock never
    # exceeds the level outside the planted overstock: a base-stock policy orders up to it. Items
    # that sold nothing in the last year hold no stock.
    ly = last_year.reshape(S * L, _STOCK_WEEKS)
    level = _base_stock_level(ly, lt_mean.ravel())
    on_hand, _ = _inventory_snapshot(_rng(seed, 3), level, ly)
    on_hand = on_hand.reshape(S, L)
    pd.DataFrame(
        {
            "location": np.tile(locations, S),
            "sku": np.repeat(cat.sku_ids, L),
            "on_hand": on_hand.ravel(),
            "snapshot_date": t1.strftime("%Y-%m-%d"),
        }
    ).to_csv(tmp / "inventory.csv", index=False)

    pd.DataFrame(
        {
            "account_id": acc.ids,
            "segment": np.array(P.SEGMENTS)[acc.segment],
            "region": np.array(P.REGIONS)[acc.region],
            "lifecycle_stage": np.array(STAGES)[acc.stage],
            "churn_kind": np.array(CHURN_KINDS)[acc.churn_kind],
            "churn_date": dates(np.where(acc.churn_kind > 0, acc.churn_day, NO_DAY)),
            "dropped_category": np.where(acc.dropped_category >= 0, np.array(P.CATEGORIES)[np.maximum(acc.dropped_category, 0)], ""),
            "decline_start": dates(acc.decline_start),
            "onboarding_date": onboarding,
            "n_orders": n_orders,
            "first_order_date": dates(np.where(n_orders > 0, first_day, NO_DAY)),
            "last_order_date": dates(np.where(n_orders > 0, last_day, NO_DAY)),
            "revenue": np.round(revenue, 2),
        }
    ).to_csv(tmp / "truth_accounts.csv", index=False)

    _write_truth_skus(tmp, cat, cal, weekly.reshape(S, n_weeks), dates)
    _write_promo_calendar(tmp, cat, cal, dates)
    _write_config(tmp, seed, t1)


def _write_promo_calendar(tmp: Path, cat: Catalog, cal: Calendar, dates) -> None:  # noqa: ANN001
    """The planned campaigns, one row per (campaign, sku): known before the weeks they cover."""
    rows = []
    for c, members in enumerate(cat.campaign_skus):
        days = np.flatnonzero(cat.day_campaign == c)
        if len(days) == 0:
            continue
        rows.append(pd.DataFrame({
            "campaign_id": f"C{c + 1:03d}",
            "sku": cat.sku_ids[members],
            "start_date": dates(np.array([days.min()]))[0],
            "end_date": dates(np.array([days.max()]))[0],
            "discount": round(float(cat.campaign_discount[c]), 3),
        }))
    pd.concat(rows, ignore_index=True).to_csv(tmp / "promo_calendar.csv", index=False)


def _write_truth_skus(tmp: Path, cat: Catalog, cal: Calendar, weekly: np.ndarray, dates) -> None:  # noqa: ANN001
    """Realised demand class per SKU over the weeks it was on sale (launch .. discontinuation)."""
    S, W = weekly.shape
    nz = weekly > 0
    cnt = nz.sum(axis=1)
    launched = cat.predecessor >= 0
    discontinued = cat.successor >= 0
    first = np.where(launched, cal.week_idx[np.maximum(cat.switch_day, 0)], 0)
    last = np.where(discontinued, cal.week_idx[np.maximum(cat.switch_day - 1, 0)], W - 1)
    adi = np.where(cnt > 0, (last - first + 1) / np.maximum(cnt, 1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sizes = np.where(nz, weekly, np.nan)
        mean = np.nanmean(np.where(cnt[:, None] > 0, sizes, 0.0), axis=1)
        var = np.nanvar(np.where(cnt[:, None] > 0, sizes, 0.0), axis=1)
        cv2 = np.where(cnt > 1, var / mean**2, np.where(cnt == 1, 0.0, np.nan))
    pattern = np.where(
        cnt == 0,
        "no_demand",
        np.where(adi < 1.32, np.where(cv2 < 0.49, "smooth", "erratic"), np.where(cv2 < 0.49, "intermittent", "lumpy")),
    )
    pd.DataFrame(
        {
            "sku": cat.sku_ids,
            "category": np.array(P.CATEGORIES)[cat.category],
            "demand_pattern": pattern,
            "adi": np.round(adi, 4),
            "cv2": np.round(cv2, 4),
            "popularity": np.round(cat.weight, 6),
            "lumpy_quantities": cat.lumpy,
            "trend_per_year": np.round(cat.trend, 4),
            "list_price": cat.list_price,
            "launch_date": dates(np.where(cat.predecessor >= 0, cat.switch_day, NO_DAY)),
            "discontinued_date": dates(np.where(cat.successor >= 0, cat.switch_day, NO_DAY)),
        }
    ).to_csv(tmp / "truth_skus.csv", index=False)


def _write_config(tmp: Path, seed: int, t1: pd.Timestamp) -> None:
    (tmp / "config.yaml").write_text(
        f"{_HEADER}: the synthetic dealer network in this folder.\n"
        "# Paths are relative to this file. Ground truth: truth_accounts.csv, truth_skus.csv.\n"
        f"name: synthetic-seed{seed}\n"
        f"seed: {seed}\n"
        "data:\n"
        "  order_lines: {path: order_lines.parquet}\n"
        "  accounts:\n"
        "    path: accounts.csv\n"
        "    columns: {credit_limit: credit_limit, payment_terms_days: payment_terms_days}  # extra attributes\n"
        "  service_events: {path: service_events.csv}\n"
        "  inventory: {path: inventory.csv}\n"
        "  lead_times: {path: lead_times.csv}\n"
        "  promotions: {path: promo_calendar.csv}  # planned campaigns: the promo driver with demand.drivers: [promo]\n"
        f"  as_of: '{t1.strftime('%Y-%m-%d')}'\n"
    )
