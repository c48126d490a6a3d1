"""BG/NBD ("beta-geometric / negative binomial") model of repeat ordering.

Fader, Hardie & Lee (2005), "Counting your customers the easy way". Each account orders
as a Poisson process with rate ``lambda ~ Gamma(r, alpha)`` while alive and, after every
order, drops out for good with probability ``p ~ Beta(a, b)``. Fitted by maximum
likelihood (scipy) on one row per account:

- ``frequency``: number of repeat orders (distinct order days minus one),
- ``recency``: time from the first to the last order,
- ``T``: time from the first order to the cutoff,

all in the same time unit (days in dealerml). Used as the churn baseline
(``prob_no_purchase``) and by the customer-value baseline (``expected_purchases``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import optimize, special

from models._mle_persist import load_mle, save_mle

__all__ = ["BGNBD", "rfm_summary"]

_PARAMS = ("r", "alpha", "a", "b")


class BGNBD:
    """BG/NBD fitted by maximum likelihood.

    Parameters
    ----------
    penalizer:
        L2 penalty on the log-parameters (0 = plain maximum likelihood); a small value
        (e.g. 0.001) keeps the fit stable on small or degenerate samples.
    max_iter:
        Iterations of the L-BFGS-B optimizer.
    """

    def __init__(self, penalizer: float = 0.0, max_iter: int = 2000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    # ------------------------------------------------------------------ fitting
    @staticmethod
    def _validate(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(frequency, dtype=float).ravel()
        tx = np.asarray(recency, dtype=float).ravel()
        T = np.asarray(T, dtype=float).ravel()
        if not (len(x) == len(tx) == len(T)):
            raise ValueError(
                f"frequency, recency and T must have the same length; got {len(x)}, {len(tx)}, {len(T)}"
            )
        if len(x) == 0:
            raise ValueError("BG/NBD needs at least one account; got 0 rows")
        for name, arr in (("frequency", x), ("recency", tx), ("T", T)):
            bad = ~np.isfinite(arr) | (arr < 0)
            if bad.any():
                raise ValueError(
                    f"{name} must be finite and >= 0; {int(bad.sum())} rows are not "
                    f"(first: {arr[bad][:3].tolist()})"
                )
        bad = tx > T + 1e-9
        if bad.any():
            raise ValueError(f"recency must be <= T; {int(bad.sum())} rows have recency > T")
        bad = (x == 0) & (tx > 0)
        if bad.any():
            raise ValueError(f"recency must be 0 when frequency is 0; {int(bad.sum())} rows break this")
        return x, tx, T

    @staticmethod
    def _loglik_terms(params: np.ndarray, x, tx, T) -> np.ndarray:
        r, alpha, a, b = params
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = (
            special.gammaln(a + b)
            + special.gammaln(b + x)
            - special.gammaln(b)
            - special.gammaln(a + b + x)
        )
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                x > 0,
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx),
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(self, frequency, recency, T, weights=None) -> BGNBD:
        """Fit on one row per account (or per distinct (frequency, recency, T) with ``weights``)."""
        x, tx, T = self._validate(frequency, recency, T)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
        # collapse identical rows: much faster on large books
        keys = np.stack([x, tx, T], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        uw = np.bincount(inv.ravel(), weights=w)
        ux, utx, uT = uniq[:, 0], uniq[:, 1], uniq[:, 2]
        scale = max(float(np.mean(uT)), 1e-9)  # start alpha on the data's time scale
        n = float(uw.sum())

        def objective(log_params: np.ndarray) -> float:
            params = np.exp(log_params)
            ll = self._loglik_terms(params, ux, utx, uT)
            value = -(uw * ll).sum() / n + self.penalizer * float(np.sum(log_params**2))
            return float(value) if np.isfinite(value) else 1e100

        best = None
        for start in ([0.5, scale / 10, 1.0, 1.0], [1.0, scale, 0.5, 2.0]):
            res = optimize.minimize(
                objective,
                np.log(start),
                method="L-BFGS-B",
                bounds=[(-12, 12)] * 4,
                options={"maxiter": self.max_iter},
            )
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None
        self.params_ = dict(zip(_PARAMS, np.exp(best.x).tolist(), strict=True))
        self.loglik_ = float(-best.fun * n)
        self.converged_ = bool(best.success)
        self.n_accounts_ = int(round(n))
        return self

    # ------------------------------------------------------------- prediction
    def _check(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise RuntimeError("BGNBD is not fitted; call fit(frequency, recency, T) first")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def prob_alive(self, frequency, recency, T) -> np.ndarray:
        """P(account still alive at T | history)."""
        r, alpha, a, b = self._check()
        x, tx, T = self._validate(frequency, recency, T)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
            odds = np.where(
                x > 0, np.exp(np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + log_ratio), 0.0
            )
        return 1.0 / (1.0 + odds)

    def prob_no_purchase(self, t: float, frequency, recency, T) -> np.ndarray:
        """P(no order in (T, T + t] | history): dead, or alive and the Poisson clock stays silent.

        While alive, the posterior of the order rate is Gamma(r + x, alpha + T); a BG/NBD
        account can only drop out right after an order, so an alive account with no order in
        the window is still alive throughout it.
        """
        r, alpha, _, _ = self._check()
        x, tx, T = self._validate(frequency, recency, T)
        if t < 0:
            raise ValueError(f"t must be >= 0; got {t}")
        alive = self.prob_alive(x, tx, T)
        silent = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        return (1.0 - alive) + alive * silent

    def expected_purchases(self, t: float, frequency, recency, T) -> np.ndarray:
        """Expected number of orders in (T, T + t] given the history (FHL 2005, eq. 10)."""
        r, alpha, a, b = self._check()
        x, tx, T = self._validate(frequency, recency, T)
        if t < 0:
            raise ValueError(f"t must be >= 0; got {t}")
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        first = (a + b + x - 1) / (a - 1) if a > 1 else None
        if first is None:
            # a <= 1: closed form undefined; integrate expected rate by simulation-free quadrature
            return self._expected_purchases_numeric(t, x, tx, T)
        term = 1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
        return first * term * self.prob_alive(x, tx, T)

    def _expected_purchases_numeric(self, t, x, tx, T) -> np.ndarray:
        """E[orders in (T, T+t]] by integrating over the posterior of p (used when a <= 1).

        Given alive at T, lambda ~ Gamma(r+x, alpha+T) and p | alive has density proportional
        to p^(a-1) (1-p)^(b+x-1). For fixed (lambda, p) the expected count in t is
        (1 - exp(-lambda p t)) / p; lambda is integrated out in closed form. The substitution
        p = u^(1/a) removes the p^(a-1) singularity at 0, so Gauss-Legendre in u is accurate.
        """
        r, alpha, a, b = self._check()
        nodes, wts = np.polynomial.legendre.leggauss(200)
        u = 0.5 * (nodes + 1.0)
        w = 0.5 * wts
        p = np.clip(u ** (1.0 / a), 1e-300, 1 - 1e-12)
        out = np.empty_like(x)
        for lo in range(0, len(x), 5000):  # vectorised in blocks: (block, 200) matrices
            xs, Ts = x[lo:lo + 5000, None], T[lo:lo + 5000, None]
            logdens = (b + xs - 1) * np.log1p(-p)[None, :]
            dens = np.exp(logdens - logdens.max(axis=1, keepdims=True)) * w[None, :]
            dens /= dens.sum(axis=1, keepdims=True)
            shape, rate = r + xs, alpha + Ts
            mean_given_p = -np.expm1(shape * (np.log(rate) - np.log(rate + p[None, :] * t))) / p[None, :]
            out[lo:lo + 5000] = (dens * mean_given_p).sum(axis=1)
        return out * self.prob_alive(x, tx, T)

    # ---------------------------------------------------------------- persist
    def save(self, path: Path) -> None:
        self._check()
        save_mle(self, path, "bgnbd.json")

    @classmethod
    def load(cls, path: Path) -> BGNBD:
        return load_mle(cls, path, "bgnbd.json")


def rfm_summary(order_dates, account_ids, *, cutoff, unit_days: float = 1.0):
    """Per-account (frequency, recency, T) from order dates strictly before ``cutoff``.

    Repeat orders are counted on distinct order days, as in the BG/NBD literature.
    Returns a DataFrame indexed by account_id with ``frequency``, ``recency``, ``T``
    in units of ``unit_days`` days.
    """
    import pandas as pd

    cutoff = pd.Timestamp(cutoff)
    df = pd.DataFrame({"account_id": np.asarray(account_ids), "d": pd.to_datetime(order_dates)})
    df = df[df["d"] < cutoff]
    df["d"] = df["d"].dt.normalize()
    g = df.drop_duplicates().groupby("account_id")["d"]
    first, last, n = g.min(), g.max(), g.nunique()
    out = pd.DataFrame(
        {
            "frequency": (n - 1).astype(float),
            "recency": (last - first).dt.days / unit_days,
            "T": (cutoff.normalize() - first).dt.days / unit_days,
        }
    )
    return out
