"""ChurnModel: LightGBM classifier on as-of account features with out-of-time calibration.

``fit(X, y, X_cal, y_cal)`` trains LightGBM on the (stacked, earlier) training snapshots and
fits the probability calibration (isotonic or sigmoid) on a *later* snapshot that the
booster never saw. ``predict_proba`` returns calibrated probabilities of churn (class 1 =
no order in the horizon). ``contributions`` gives LightGBM's own SHAP-style
``pred_contrib`` (log-odds of the *uncalibrated* booster; positive = pushes toward churn)
from which ``models.reasons`` writes the reasons.

Blend (``blend="bgnbd"``): the booster's log-odds are mixed with BG/NBD's log-odds of no
order in the horizon, ``z = w * logit(p_booster) + (1 - w) * logit(p_bgnbd)``. BG/NBD is
fitted (maximum likelihood, ``models.bgnbd``) on the calibration slice's
``bgnbd_frequency / bgnbd_recency / bgnbd_T`` and the weight ``w`` is the grid value
(0, 0.05, .., 1) with the best ROC AUC on the calibration slice, kept only if it out-ranks
the booster alone in at least 90% of 200 paired bootstrap resamples of that slice (else
``w = 1``: a gain within sampling noise is not worth the change); the calibrator is then fitted
on the blended score of that same slice. Nothing from the scored period is used. On Online
Retail the booster and BG/NBD rank about equally well and their errors differ, so the
blend ranks better than either on the validation cutoffs (see BENCHMARKS.md, Churn).
``contributions`` (and so the reasons) stay the booster's own.

The isotonic map is piecewise flat; to keep the served probabilities ranking exactly like
the booster (no artificial ties in the top-10% list) they are mixed with 1e-7 of the
booster's own probability. Persisted without pickle: booster text + JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ChurnModel", "feature_columns", "NotFittedError", "fit_score_calibrator", "apply_score_calibrator"]

# columns of a snapshot that are never model inputs
_NOT_FEATURES = {"account_id", "cutoff", "churned", "label_end", "next_value",
                 "cat_share_max_drop_category"}
_TIE_EPS = 1e-7
_BG_COLS = ("bgnbd_frequency", "bgnbd_recency", "bgnbd_T")
_BLEND_BOOT = 200         # paired bootstrap resamples of the calibration slice
_BLEND_CONFIDENCE = 0.9   # share of resamples in which the blend must out-rank the booster


class NotFittedError(RuntimeError):
    """predict/contributions/save called before fit."""


def feature_columns(df: pd.DataFrame, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Numeric, boolean and categorical columns of a snapshot usable as model inputs."""
    out = []
    for c in df.columns:
        if c in _NOT_FEATURES or c in exclude:
            continue
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            out.append(c)
    return out


class ChurnModel:
    """LightGBM churn classifier + calibration.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree,
    reg_lambda: LightGBM settings.
    calibration: ``"isotonic"``, ``"sigmoid"`` or ``"none"``.
    num_threads: LightGBM threads (1 for online scoring).
    random_state: seed for LightGBM's bagging / feature sampling.
    exclude: feature names never used as inputs.
    lookback_days: the churn population window it was trained on (accounts with an order in the
    ``lookback_days`` before a cutoff; ``churn.lookback_days``), kept so that it is scored on the
    same population; None for a model saved before it was kept (the config's is used then).
    The model itself does not read it.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 40,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        calibration: str = "isotonic",
        num_threads: int = 1,
        random_state: int = 0,
        exclude: tuple[str, ...] = (),
        blend: str = "none",
        horizon_days: int = 90,
        bgnbd_penalizer: float = 0.001,
        lookback_days: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.calibration = calibration
        self.num_threads = num_threads
        self.random_state = random_state
        self.exclude = exclude
        self.blend = blend
        self.horizon_days = horizon_days
        self.bgnbd_penalizer = bgnbd_penalizer
        self.lookback_days = lookback_days

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "n_estimators", "learning_rate", "num_leaves", "min_child_samples", "subsample",
            "colsample_bytree", "reg_lambda", "calibration", "num_threads", "random_state", "exclude",
            "blend", "horizon_days", "bgnbd_penalizer", "lookback_days")}

    # ------------------------------------------------------------------ helpers
    def _lgb_params(self) -> dict:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "num_threads": self.num_threads,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def _matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ValueError(f"features missing from the input: {missing[:10]} ({len(missing)} in all)")
        M = X[self.feature_names_].copy()
        for c, cats in self.categories_.items():
            M[c] = pd.Categorical(M[c].astype("object").where(M[c].notna(), None), categories=cats)
        for c in self.feature_names_:
            if c not in self.categories_:
                M[c] = pd.to_numeric(M[c], errors="coerce").astype("float64")
        return M

    def _check(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError("ChurnModel is not fitted; call fit(X, y, X_cal, y_cal) first")

    # ---------------------------------------------------------------------- fit
    def fit(self, X: pd.DataFrame, y, X_cal: pd.DataFrame | None = None, y_cal=None) -> ChurnModel:
        """Train on ``(X, y)``; calibrate on the later slice ``(X_cal, y_cal)``."""
        import lightgbm as lgb

        if self.calibration not in ("isotonic", "sigmoid", "none"):
            raise ValueError(f"calibration must be 'isotonic', 'sigmoid' or 'none'; got {self.calibration!r}")
        y = np.asarray(y, dtype=float)
        if len(X) != len(y) or len(y) == 0:
            raise ValueError(f"X and y must be non-empty and the same length; got {len(X)} and {len(y)}")
        if not set(np.unique(y)) <= {0.0, 1.0} or len(np.unique(y)) < 2:
            raise ValueError(f"y must hold both classes 0 and 1; got values {np.unique(y)[:5].tolist()}")
        if self.calibration != "none" and (X_cal is None or y_cal is None):
            raise ValueError(f"calibration={self.calibration!r} needs a later slice X_cal, y_cal")
        if self.blend not in ("none", "bgnbd"):
            raise ValueError(f"blend must be 'none' or 'bgnbd'; got {self.blend!r}")
        if self.blend == "bgnbd":
            if X_cal is None or y_cal is None:
                raise ValueError("blend='bgnbd' needs a later slice X_cal, y_cal to choose the blend weight on")
            missing = [c for c in _BG_COLS if c not in X_cal.columns]
            if missing:
                raise ValueError(f"blend='bgnbd' needs the columns {missing} in the calibration slice")

        self.feature_names_ = feature_columns(X, set(self.exclude))
        self.categories_ = {
            c: [str(v) for v in (X[c].cat.categories if isinstance(X[c].dtype, pd.CategoricalDtype)
                                 else sorted(X[c].dropna().astype(str).unique()))]
            for c in self.feature_names_
            if isinstance(X[c].dtype, pd.CategoricalDtype) or X[c].dtype == object
        }
        M = self._matrix(X)
        ds = lgb.Dataset(M, label=y, categorical_feature=list(self.categories_) or "auto",
                         free_raw_data=True)
        self.booster_ = lgb.train(self._lgb_params(), ds, num_boost_round=self.n_estimators)
        self.blend_ = {"kind": "none", "weight": 1.0}
        if self.blend == "bgnbd":
            self.blend_ = self._fit_blend(X_cal, np.asarray(y_cal, dtype=float))
        self.calibrator_ = {"kind": "none"}
        if self.calibration != "none":
            raw = self._score(X_cal)
            yc = np.asarray(y_cal, dtype=float)
            if len(np.unique(yc)) < 2:
                raise ValueError("the calibration slice must hold both churned and retained accounts")
            self.calibrator_ = _fit_calibrator(self.calibration, raw, yc)
        self.n_train_ = int(len(y))
        self.train_base_rate_ = float(y.mean())
        return self

    def _fit_blend(self, X_cal: pd.DataFrame, y_cal: np.ndarray) -> dict:
        """BG/NBD on the calibration slice + the log-odds weight with the best AUC there."""
        from models.bgnbd import BGNBD

        if len(np.unique(y_cal)) < 2:
            raise ValueError("the calibration slice must hold both churned and retained accounts")
        f = X_cal[list(_BG_COLS)].to_numpy(dtype=float)
        bg = BGNBD(penalizer=self.bgnbd_penalizer).fit(f[:, 0], f[:, 1], f[:, 2])
        zb = _logit(self._raw_proba(X_cal))
        zg = _logit(bg.prob_no_purchase(float(self.horizon_days), f[:, 0], f[:, 1], f[:, 2]))
        grid = np.round(np.linspace(0.0, 1.0, 21), 2)
        aucs = [_auc(y_cal, w * zb + (1.0 - w) * zg) for w in grid]
        best = int(np.argmax(aucs))  # first maximum: ties go to the smaller booster weight
        w = float(grid[best])
        # keep the blend only when it beats the booster alone beyond sampling noise on the
        # calibration slice: paired bootstrap, share of resamples where the blend ranks better
        rng = np.random.default_rng(self.random_state)
        zw = w * zb + (1.0 - w) * zg
        wins, n_ok = 0, 0
        for _ in range(_BLEND_BOOT):
            i = rng.integers(0, len(y_cal), len(y_cal))
            if y_cal[i].min() == y_cal[i].max():
                continue
            n_ok += 1
            # on the same resample AUC is U / (n1 n0): compare the U statistics, exact for ties
            wins += _twice_u(y_cal[i], zw[i]) > _twice_u(y_cal[i], zb[i])
        share = wins / max(n_ok, 1)
        kept = w < 1.0 and share >= _BLEND_CONFIDENCE
        return {"kind": "bgnbd", "weight": w if kept else 1.0, "best_grid_weight": w,
                "bootstrap_share_better": round(float(share), 4), "bgnbd_params": bg.params_,
                "horizon_days": float(self.horizon_days),
                "calibration_auc": {f"{g:.2f}": round(a, 6) for g, a in zip(grid, aucs, strict=True)}}

    # ------------------------------------------------------------------ predict
    def _raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._check()
        return self.booster_.predict(self._matrix(X), num_threads=self.num_threads)

    def bgnbd_probability(self, X: pd.DataFrame) -> np.ndarray:
        """P(no order in the horizon) from the BG/NBD fitted with the blend (blend='bgnbd' only)."""
        from models.bgnbd import BGNBD

        self._check()
        if self.blend_["kind"] != "bgnbd":
            raise ValueError("this ChurnModel was fitted without blend='bgnbd'")
        missing = [c for c in _BG_COLS if c not in X.columns]
        if missing:
            raise ValueError(f"features missing from the input: {missing} (needed by the BG/NBD blend)")
        bg = BGNBD()
        bg.params_ = self.blend_["bgnbd_params"]
        f = X[list(_BG_COLS)].to_numpy(dtype=float)
        return bg.prob_no_purchase(self.blend_["horizon_days"], f[:, 0], f[:, 1], f[:, 2])

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated risk score: the booster's probability, or the blend (a probability too)."""
        raw = self._raw_proba(X)
        if self.blend_["kind"] == "none" or self.blend_["weight"] >= 1.0:
            return raw  # the gate kept the booster alone: exactly its probability
        w = self.blend_["weight"]
        z = w * _logit(raw) + (1.0 - w) * _logit(self.bgnbd_probability(X))
        return 1.0 / (1.0 + np.exp(-z))

    def churn_probability(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(churn) per row (1-D)."""
        score = self._score(X)  # raises NotFittedError first when unfitted
        return _apply_calibrator(self.calibrator_, score)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """scikit-learn style ``(n, 2)``: columns P(retained), P(churn)."""
        p = self.churn_probability(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
        return (self.churn_probability(X) >= threshold).astype(int)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """LightGBM ``pred_contrib`` per feature (log-odds; + pushes toward churn) and ``bias``."""
        self._check()
        c = self.booster_.predict(self._matrix(X), pred_contrib=True, num_threads=self.num_threads)
        return pd.DataFrame(c, columns=[*self.feature_names_, "bias"], index=X.index)

    def feature_importance(self) -> pd.Series:
        self._check()
        return pd.Series(self.booster_.feature_importance("gain"), index=self.feature_names_).sort_values(ascending=False)

    # ------------------------------------------------------------------ persist
    def save(self, path: Path) -> None:
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "booster.txt").write_text(self.booster_.model_to_string())
        meta = {
            "params": {**self.get_params(), "exclude": list(self.exclude)},
            "feature_names": self.feature_names_,
            "categories": self.categories_,
            "calibrator": self.calibrator_,
            "blend": self.blend_,
            "n_train": self.n_train_,
            "train_base_rate": self.train_base_rate_,
        }
        (path / "churn_model.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, path: Path) -> ChurnModel:
        import lightgbm as lgb

        path = Path(path)
        meta_file = path / "churn_model.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{path} is not a saved ChurnModel (no churn_model.json)")
        try:  # a truncated or foreign file: one ValueError naming the folder, not a KeyError / LightGBMError
            meta = json.loads(meta_file.read_text())
            params = dict(meta["params"])
            params["exclude"] = tuple(params.get("exclude", ()))
            m = cls(**params)
            m.booster_ = lgb.Booster(model_str=(path / "booster.txt").read_text())
            m.feature_names_ = meta["feature_names"]
            m.categories_ = meta["categories"]
            m.calibrator_ = meta["calibrator"]
            m.blend_ = meta.get("blend", {"kind": "none", "weight": 1.0})
            m.n_train_ = meta["n_train"]
            m.train_base_rate_ = meta["train_base_rate"]
        except FileNotFoundError:
            raise
        except (ValueError, KeyError, TypeError, OSError, lgb.basic.LightGBMError) as exc:
            what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc).strip().splitlines()[0][:200]
            raise ValueError(f"{path} is not a readable saved ChurnModel: {what}") from None
        return m


# -------------------------------------------------------------- calibration
def _fit_calibrator(kind: str, raw: np.ndarray, y: np.ndarray) -> dict:
    """Fit a calibration map raw score -> probability; returned as plain JSON-able numbers."""
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        # Never 0 % or 100 %: a flat end step with no churner (or no survivor) in the
        # calibration slice says "fewer than one in n", not "impossible".
        eps = 0.5 / (len(y) + 1)
        iso = IsotonicRegression(y_min=eps, y_max=1.0 - eps, out_of_bounds="clip").fit(raw, y)
        return {"kind": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if kind == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        z = _logit(raw).reshape(-1, 1)
        lr = LogisticRegression(C=1e6).fit(z, y)
        return {"kind": "sigmoid", "coef": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}
    raise ValueError(f"unknown calibration {kind!r}")


def _apply_calibrator(cal: dict, raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw, dtype=float)
    if cal["kind"] == "none":
        return raw
    if cal["kind"] == "isotonic":
        p = np.interp(raw, np.asarray(cal["x"]), np.asarray(cal["y"]))
        # convex mix with the raw score: stays in [0, 1] and keeps the booster's ranking
        # inside the isotonic map's flat steps (changes a probability by < 1e-7)
        return (1.0 - _TIE_EPS) * p + _TIE_EPS * np.clip(raw, 0.0, 1.0)
    if cal["kind"] == "sigmoid":
        z = cal["coef"] * _logit(raw) + cal["intercept"]
        return 1.0 / (1.0 + np.exp(-z))
    raise ValueError(f"unknown calibrator {cal['kind']!r}")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_score_calibrator(kind: str, score: np.ndarray, y: np.ndarray) -> dict:
    """Calibrate any monotone risk score (e.g. the recency rule) on a later labelled slice."""
    return _fit_calibrator(kind, np.asarray(score, dtype=float), np.asarray(y, dtype=float))


def apply_score_calibrator(cal: dict, score: np.ndarray) -> np.ndarray:
    return _apply_calibrator(cal, np.asarray(score, dtype=float))


def _twice_u(y: np.ndarray, score: np.ndarray) -> float:
    """2 x the Mann-Whitney U of the positives (label 1) over the negatives: with average ranks for
    ties this is a whole number, so two scores of the same labels compare exactly (AUC = U / (n1 n0),
    as sklearn's roc_auc_score; a sort instead of its curve, ~25x faster on a few thousand rows, which
    the blend's 400 bootstrap AUCs per fit pay)."""
    from scipy.stats import rankdata

    pos = np.asarray(y) == 1
    n1 = int(pos.sum())
    return float(2.0 * rankdata(score)[pos].sum() - n1 * (n1 + 1))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for label 1 (:func:`_twice_u`)."""
    pos = np.asarray(y) == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return _twice_u(y, score) / (2.0 * n1 * n0)
