"""Gamma-Gamma model of average order value (Fader, Hardie & Lee 2005, "RFM and CLV").

Each account's order values are Gamma(p, nu) around its own mean; the accounts' scale
``nu`` is Gamma(q, gamma) across the book. Given an account's ``frequency`` (number of
repeat orders, x) and the mean value of those orders (``monetary``, m_x, in currency),
the model shrinks m_x towards the book's mean by how many orders back it:

    E[M | x, m_x] = (q - 1) / (p x + q - 1) * (p gamma / (q - 1))
                    + p x / (p x + q - 1) * m_x

Fitted by maximum likelihood with scipy on accounts with x >= 1 and m_x > 0. Multiplied by
BG/NBD's expected number of orders it gives the classic customer-value baseline
(``dealerml``'s ``bgnbd_gg``). Requires q > 1 for a finite population mean; the fit
constrains q to (1, inf).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import optimize, special

from models._mle_persist import load_mle, save_mle

__all__ = ["GammaGamma"]

_PARAMS = ("p", "q", "v")


class NotFittedError(RuntimeError):
    """Raised when a GammaGamma model is used before ``fit``."""


class GammaGamma:
    """Gamma-Gamma spend model fitted by maximum likelihood.

    Parameters
    ----------
    penalizer:
        L2 penalty on the log-parameters (0 = plain maximum likelihood).
    max_iter:
        Iterations of the L-BFGS-B optimizer.

    Learned attributes: ``params_`` (dict p, q, v; v is the gamma scale parameter),
    ``loglik_``, ``converged_``, ``n_accounts_``.
    """

    def __init__(self, penalizer: float = 0.0, max_iter: int = 2000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    @staticmethod
    def _validate(frequency, monetary) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(frequency, dtype=float).ravel()
        m = np.asarray(monetary, dtype=float).ravel()
        if len(x) != len(m):
            raise ValueError(f"frequency and monetary must have the same length; got {len(x)} and {len(m)}")
        for name, arr in (("frequency", x), ("monetary", m)):
            bad = ~np.isfinite(arr) | (arr < 0)
            if bad.any():
                raise ValueError(
                    f"{name} must be finite and >= 0; {int(bad.sum())} rows are not "
                    f"(first: {arr[bad][:3].tolist()})"
                )
        return x, m

    @staticmethod
    def _loglik_terms(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, v = params
        return (
            special.gammaln(p * x + q)
            - special.gammaln(p * x)
            - special.gammaln(q)
            + q * np.log(v)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(v + m * x)
        )

    def fit(self, frequency, monetary) -> GammaGamma:
        """Fit on one row per account; rows with frequency 0 or monetary 0 are ignored.

        ``frequency``: repeat orders (x); ``monetary``: mean value of those orders (currency).
        """
        x, m = self._validate(frequency, monetary)
        keep = (x > 0) & (m > 0)
        if keep.sum() < 2:
            raise ValueError(
                f"Gamma-Gamma needs at least 2 accounts with a repeat order and positive value; got {int(keep.sum())}"
            )
        x, m = x[keep], m[keep]
        n = float(len(x))
        scale = float(np.mean(m))

        def objective(theta: np.ndarray) -> float:
            # p, v > 0 via exp; q = 1 + exp(.) > 1 so the population mean exists
            params = np.array([np.exp(theta[0]), 1.0 + np.exp(theta[1]), np.exp(theta[2])])
            ll = self._loglik_terms(params, x, m)
            value = -ll.sum() / n + self.penalizer * float(np.sum(theta**2))
            return float(value) if np.isfinite(value) else 1e100

        best = None
        for start in ([1.0, 1.0, scale], [5.0, 3.0, scale * 2.0], [0.5, 0.5, scale / 2.0]):
            theta0 = np.log([start[0], start[1], start[2]])
            res = optimize.minimize(
                objective, theta0, method="L-BFGS-B", bounds=[(-15, 15), (-15, 15), (-30, 30)],
                options={"maxiter": self.max_iter},
            )
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None
        t = best.x
        self.params_ = {"p": float(np.exp(t[0])), "q": float(1.0 + np.exp(t[1])), "v": float(np.exp(t[2]))}
        self.loglik_ = float(-best.fun * n)
        self.converged_ = bool(best.success)
        self.n_accounts_ = int(n)
        return self

    def _check(self) -> tuple[float, float, float]:
        if not hasattr(self, "params_"):
            raise NotFittedError("GammaGamma is not fitted; call fit(frequency, monetary) first")
        return self.params_["p"], self.params_["q"], self.params_["v"]

    def population_mean(self) -> float:
        """Mean order value of a new account: p * v / (q - 1) (currency)."""
        p, q, v = self._check()
        return p * v / (q - 1.0)

    def conditional_expected_value(self, frequency, monetary) -> np.ndarray:
        """E[order value | x, m_x] per account (currency); the population mean when x = 0."""
        p, q, v = self._check()
        x, m = self._validate(frequency, monetary)
        return (p * (v + x * m)) / (p * x + q - 1.0)

    def save(self, path: Path) -> None:
        self._check()
        save_mle(self, path, "gamma_gamma.json")

    @classmethod
    def load(cls, path: Path) -> GammaGamma:
        return load_mle(cls, path, "gamma_gamma.json")
