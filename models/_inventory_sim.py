"""The batched lead-time demand simulation behind ``models.inventory.InventoryPolicy.fit``.

``fit`` sizes series in small chunks of like series (``CHUNK_VALUES``); for each chunk this
module draws every series' random numbers from its own stream (``_series_rng``: seed + series
id, in the same order and sizes as one series at a time did) and then builds the demand paths,
their lead-time and lead time + review sums and the quantiles with array operations. Every
number is the same to the bit as the per-series loop it replaces (the operations per element
are the same, sums over steps and means over paths run in the same order, the quantile is the
same order statistic); ``tests/test_inventory_fast.py`` checks that against a verbatim copy of
the old loop. What it saves is work per series, not Python calls: one running sum over the
steps serves every interval (the old loop ran ``np.cumsum`` along 8-element rows 3-5 times per
series), a fixed lead time reads whole rows, quantiles are one partition, the error paths are
gathered steps-first. Arrays are laid out ``(step, series, path)`` so that each step is one
contiguous block. The random numbers themselves (about a third of the time with own-history
series, which draw 3 x paths x steps of them) cannot get cheaper without changing the answers.

Memory: a chunk holds ~8 arrays of ``chunk x n_sims x h`` floats; ``CHUNK_VALUES`` bounds
``chunk x n_sims x h`` (about 0.5 MB per array), whatever the number of series.
"""

from __future__ import annotations

import functools

import numpy as np

CHUNK_VALUES = 1 << 16
"""Upper bound on series x paths x steps simulated at once (~0.5 MB per float64 array; two
series at 4,000 paths x 8 steps). Larger chunks were slower, not faster: with 2-8 MB arrays
glibc's allocator hands the freed memory back to the system after every chunk and page-faults
it in again on the next (1,000 series, 4,000 paths: 290,000 page faults and 0.5 s of system
time with 8 MB arrays, ~6,000 and 0.01 s with 0.5 MB; user time the same)."""


def chunk_size(n_sims: int, h: int) -> int:
    """Series per chunk for ``n_sims`` paths of ``h`` steps (at least 1)."""
    return max(1, CHUNK_VALUES // max(1, int(n_sims) * int(h)))


def step_cumsum(D: np.ndarray) -> np.ndarray:
    """``C[k]`` = demand of the first ``k`` steps of each path (``C[0]`` = 0), for ``D`` of shape
    ``(h, ...)``; the steps are added in order, as ``np.cumsum`` along the steps does."""
    h = D.shape[0]
    C = np.empty((h + 1,) + D.shape[1:])
    C[0] = 0.0
    C[1] = D[0]
    for k in range(1, h):
        np.add(C[k], D[k], out=C[k + 1])
    return C


def interval_sum(C: np.ndarray, D: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Demand over the first ``length`` (fractional) steps of each path: ``D`` is ``(h, m, n)``
    or ``(h, m, 1)`` (one path for all), ``C`` its ``step_cumsum``; ``length`` is ``(m, n)``, or
    ``(m, 1)`` for a fixed lead time (the same length on every path of a series). Returns
    ``(m, n)`` (``(m, 1)`` when both are). The same arithmetic as
    ``models._inventory_distribution._interval_sum`` on one series' ``(n, h)`` paths."""
    h, m, w = D.shape
    length = np.clip(length, 0.0, float(h))
    k = np.floor(length).astype(np.intp)
    frac = length - k
    nxt = np.minimum(k, h - 1)
    if length.shape[1] == 1:  # one length per series: whole rows
        r = np.arange(m)
        Ck, Dn = C[k[:, 0], r], D[nxt[:, 0], r]
    else:
        cell = np.arange(m)[:, None] * w + (np.arange(length.shape[1])[None, :] if w > 1 else 0)
        Ck = np.ascontiguousarray(C).ravel().take(k * (m * w) + cell)
        Dn = np.ascontiguousarray(D).ravel().take(nxt * (m * w) + cell)
    return Ck + frac * np.where(k < h, Dn, 0.0)


def path_mean(X: np.ndarray, n: int) -> np.ndarray:
    """Each row's mean over its ``n`` paths (``X`` ``(m, n)``, or ``(m, 1)``: one value on every
    path, summed ``n`` times as the paths would be)."""
    if X.shape[1] != n:
        X = np.ascontiguousarray(np.broadcast_to(X, (X.shape[0], n)))
    return X.mean(axis=1)


@functools.lru_cache(maxsize=64)
def _kth(n: int, q: float) -> int:
    """The 0-based rank ``np.quantile(..., q, method="inverted_cdf")`` picks among ``n`` values."""
    return int(np.quantile(np.arange(n, dtype=float), q, method="inverted_cdf"))


def order_statistic(X: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(X[j], q, method="inverted_cdf")`` for every row ``j`` of ``X``: an order
    statistic (the value itself, no interpolation), found by a partition along the rows."""
    kth = _kth(X.shape[1], float(q))
    out = np.partition(X, kth, axis=1)[:, kth]
    nan = np.isnan(out) | np.isnan(X).any(axis=1)  # as np.quantile: NaN where a row has one
    out[nan] = np.nan
    return out


def lead_times(rng: np.random.Generator, L: float, sdL: float, n: int, h: int, R: float) -> np.ndarray:
    """One series' simulated lead times: Normal(L, sdL) cut to [0, h - R], or L on every path."""
    return np.clip(rng.normal(L, sdL, n), 0.0, h - R) if sdL > 0 else np.full(n, L)


class OwnHistory:
    """One series' bootstrap parameters (``models._inventory_distribution._own_paths``): the
    two-state Markov chain of its zero / non-zero periods and its non-zero sizes."""

    __slots__ = ("sizes", "p01", "p11", "state", "integer")

    def __init__(self, y: np.ndarray) -> None:
        nz = y > 0
        self.sizes = y[nz]
        prev, nxt = nz[:-1], nz[1:]
        # transition probabilities with half a pseudo-count each way (a chain seen once is not certain)
        self.p01 = (np.sum(~prev & nxt) + 0.5) / (np.sum(~prev) + 1.0)
        self.p11 = (np.sum(prev & nxt) + 0.5) / (np.sum(prev) + 1.0)
        self.state = bool(nz[-1])
        self.integer = bool(np.all(self.sizes == np.round(self.sizes)))

    def draw(self, rng: np.random.Generator, U: np.ndarray, pick: np.ndarray, Z: np.ndarray) -> None:
        """Draw the random numbers of ``n`` paths of ``h`` steps into ``U`` ``(h, n)``: the
        uniforms of the occurrence chain, step by step (the same numbers as h draws of n), and
        into ``pick`` / ``Z`` ``(n, h)``: the size picks and their jitter, path by path."""
        rng.random(out=U)
        pick[...] = rng.integers(0, len(self.sizes), pick.shape)
        rng.standard_normal(out=Z)


def own_paths(hists: list[OwnHistory], U: np.ndarray, pick: np.ndarray, Z: np.ndarray, K: int | None = None) -> np.ndarray:
    """Bootstrapped demand ``(K, m, n)`` (the first ``K`` of ``h`` steps, all by default) for
    ``m`` series from their ``OwnHistory`` and draws (``U``: ``(m, h, n)``; ``pick``, ``Z``:
    ``(m, n, h)``, as ``OwnHistory.draw`` fills them): occurrence from each series' Markov chain,
    started from its last period's state; sizes picked from its non-zero sizes and jittered,
    x + z sqrt(x) (kept at x where that is <= 0), rounded for integer histories."""
    m, h, n = U.shape
    h = h if K is None else K
    pick, Z = pick[:, :, :h], Z[:, :, :h]
    p11 = np.array([s.p11 for s in hists])[:, None]
    p01 = np.array([s.p01 for s in hists])[:, None]
    state = np.broadcast_to(np.array([s.state for s in hists])[:, None], (m, n))
    occ = np.empty((h, m, n), dtype=bool)
    for k in range(h):
        # u < (p11 if the last period sold else p01), on booleans
        state = np.where(state, U[:, k] < p11, U[:, k] < p01)
        occ[k] = state
    x = np.empty((m, n, h))
    for s, st in enumerate(hists):  # the picks are in range: "clip" only skips the bounds check
        np.take(st.sizes, pick[s], out=x[s], mode="clip")
    j = np.sqrt(x)
    j *= Z
    j += x  # x + z sqrt(x)
    integer = np.array([s.integer for s in hists])
    if integer.all():
        np.round(j, out=j)
    elif integer.any():
        r = np.flatnonzero(integer)
        j[r] = np.round(j[r])
    low = np.flatnonzero(~(j > 0))  # few: kept at x where the jitter takes it to <= 0
    j.ravel()[low] = x.ravel()[low]
    # steps first, and no demand where the chain says none (j > 0 here: j x 0 = 0.0)
    return np.multiply(j.transpose(2, 0, 1), occ)


def thin(sim_mean: float, target_mean: float, rng: np.random.Generator, n: int) -> np.ndarray | None:
    """Which of ``n`` simulated paths to keep (the others are zeroed whole) so their mean demand
    matches ``target_mean``; None to keep all.

    ``max(0, forecast + error)`` with a forecast near zero keeps every positive error of the
    class's pool and clips every negative one, so the simulated demand of a series the
    forecaster expects (almost) nothing from averages far more than the unclipped
    ``forecast + error`` - a series with no sale in a year got a reorder point of several
    units. Keeping each path with probability ``target_mean / sim_mean`` keeps the size of a
    demand event but makes it as rare as the target says (a target of 0 gives all-zero paths:
    reorder point 0). The caller passes the unclipped mean, not the point forecast: thinning to
    the point forecast also threw away the pool's mean error, and for the intermittent / lumpy
    classes, whose point forecasts run low, that left reorder points of ~0 that the next
    lead time's demand exceeded in a third of the cases (synthetic network, 4 origins).
    """
    if sim_mean <= target_mean or sim_mean <= 0:
        return None
    return rng.random(n) < max(target_mean, 0.0) / sim_mean


def size_chunk(rows: np.ndarray, *, P: np.ndarray, sc: np.ndarray, L: np.ndarray, sdL: np.ndarray, R: float,
               n: int, q: float, rngs: list[np.random.Generator], pool_T: np.ndarray, pool_off: np.ndarray,
               pool_len: np.ndarray, own: list[OwnHistory | None], recentre: str, thin_below: float,
               mean_pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder point and order-up-to level (the ``q`` quantiles of simulated demand over the lead
    time and over lead time + review) of the series ``rows``, each drawing from its generator in
    ``rngs`` (one per row, fresh). ``P`` / ``sc`` / ``L`` / ``sdL`` / ``mean_pid`` / ``own`` /
    ``pool_off`` / ``pool_len`` are per series of the whole fit; ``pool_T`` holds every class
    pool's error paths, steps first (``h x paths``), series ``i`` drawing from ``pool_off[i]`` +
    [0, ``pool_len[i]``).

    Class-pool series: ``max(0, forecast + scale x error path)``, thinned (``thin``) when the
    forecast over lead time + review is below ``thin_below`` units. Own-history series:
    ``own_paths``, re-centred as ``recentre`` says."""
    h = P.shape[1]
    is_own = np.array([own[i] is not None for i in rows], dtype=bool)
    pj, oj = np.flatnonzero(~is_own), np.flatnonzero(is_own)
    bias = recentre == "bias_corrected"
    # each series' numbers from its own stream, in the order one series at a time drew them:
    # error-path picks (class pool; own history re-centred with the pool's bias), lead times,
    # then the own-history bootstrap's uniforms, size picks and jitter
    idx = np.empty((len(rows), n), dtype=np.int64)
    fixed = not (sdL[rows] > 0).any()  # no spread: one lead time per series, no draws (as before)
    Ls = L[rows][:, None].astype(float) if fixed else np.empty((len(rows), n))
    U = np.empty((len(oj), h, n))
    pick = np.empty((len(oj), n, h), dtype=np.int64)
    Z = np.empty((len(oj), n, h))
    s = 0
    for j, i in enumerate(rows):
        rng = rngs[j]
        if not is_own[j] or bias:
            idx[j] = rng.integers(0, pool_len[i], n)
        if not fixed:
            Ls[j] = lead_times(rng, L[i], sdL[i], n, h, R)
        if is_own[j]:
            own[i].draw(rng, U[s], pick[s], Z[s])
            s += 1
    rop, oup = np.empty(len(rows)), np.empty(len(rows))
    # only the steps that some path's lead time + review reaches, and the one its fraction reads,
    # can move a number: the later steps were drawn above (each stream advances as before) but
    # are not built. With K < h every length is < K, so the sums below are the same with K as h.
    K = min(h, int(np.floor(min(max(float(np.max(Ls)) + R, 0.0), float(h)))) + 1)
    PK = P[:, :K]

    def paths(sel: np.ndarray) -> np.ndarray:  # forecast + scale x error path, unclipped (K, m, n)
        at = idx[sel] + pool_off[rows[sel]][:, None]
        G = np.empty((K, len(sel), n))
        for k in range(K):  # step by step: the result stays laid out (step, series, path)
            np.take(pool_T[k], at, out=G[k], mode="clip")  # picks are in range: no bounds check
        G *= sc[rows[sel]][None, :, None]
        G += PK[rows[sel]].T[:, :, None]
        return G

    if len(pj):
        D = paths(pj)
        LR = Ls[pj] + R
        thinned = np.flatnonzero(mean_pid[rows[pj]] < thin_below)
        raw = D[:, thinned] if len(thinned) else None  # a copy: the unclipped paths of the series to thin
        np.clip(D, 0.0, None, out=D)
        C = step_cumsum(D)
        if len(thinned):
            # thin to the mean of the unclipped paths (forecast + the pool's mean error), not to
            # the point forecast: only the demand that clipping invented is removed
            target = path_mean(interval_sum(step_cumsum(raw), raw, LR[thinned]), n)
            Dt, Ct = D[:, thinned], C[:, thinned]
            sim = path_mean(interval_sum(Ct, Dt, LR[thinned]), n)
            changed = []
            for t, j in enumerate(thinned):
                keep = thin(sim[t], max(0.0, float(target[t])), rngs[pj[j]], n)
                if keep is not None:
                    D[:, j] = Dt[:, t] * keep[None, :]
                    changed.append(j)
            if changed:
                C[:, changed] = step_cumsum(D[:, changed])
        rop[pj] = order_statistic(interval_sum(C, D, Ls[pj]), q)
        oup[pj] = order_statistic(interval_sum(C, D, LR), q)
    if len(oj):
        D = own_paths([own[i] for i in rows[oj]], U, pick, Z, K)
        LR = Ls[oj] + R
        if recentre in ("forecast", "bias_corrected", "blend"):
            # the forecast drives the level: scale the sizes so the paths' mean over lead time +
            # review equals the forecast's (blend: halfway to the history's own); occurrence and
            # shape stay the series' own
            sim = path_mean(interval_sum(step_cumsum(D), D, LR), n)
            F = paths(oj) if bias else PK[rows[oj]].T[:, :, None]
            want = path_mean(interval_sum(step_cumsum(F), F, LR), n)
            factor = np.empty(len(oj))
            for t in range(len(oj)):
                si, wi = float(sim[t]), float(want[t])
                if recentre == "blend":
                    wi = 0.5 * wi + 0.5 * si
                factor[t] = max(wi, 0.0) / si if si > 0 else 0.0
            D *= factor[None, :, None]
        C = step_cumsum(D)
        rop[oj] = order_statistic(interval_sum(C, D, Ls[oj]), q)
        oup[oj] = order_statistic(interval_sum(C, D, LR), q)
    return rop, oup
