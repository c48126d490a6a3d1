"""``cluster_view``: the independent check of the segments - k-means on the same standardized
behaviour, the silhouettes of its clusters and of the segments, their adjusted Rand index, and a
Kruskal-Wallis test per feature across the assigned segments.

Apart from the scorecard because it does not assign anything: it reads a standardized frame and
the segments (``SegmentModel.standardize`` / ``predict``) and only the backtest report calls it;
scipy and scikit-learn are imported inside it, as before. Private to ``models.segments``, which
re-exports it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def cluster_view(standardized: pd.DataFrame, segments: pd.Series, *, k: int = 5,
                 random_state: int = 0, max_silhouette_rows: int = 5000) -> dict:
    """k-means on standardized behaviour as an independent check that the groups are distinct.

    Returns ``silhouette_kmeans`` (k-means' own clusters), ``silhouette_segments`` (the rule
    segments in the same space), ``ari_kmeans_vs_segments``, and ``kruskal``: per feature the
    Kruskal-Wallis H and p-value across the assigned segments (p < 0.05: the segments differ
    on that feature). Features that are constant are skipped.
    """
    from scipy import stats
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    Z = standardized.loc[:, standardized.std() > 1e-9]
    out: dict = {"n_accounts": int(len(Z)), "features": list(Z.columns)}
    labels_seg = segments.reindex(Z.index).astype(str).to_numpy()
    k = int(min(k, len(Z) - 1)) if len(Z) > 2 else 0
    if k >= 2 and Z.shape[1] > 0:
        km = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit(Z.to_numpy())
        rng = np.random.default_rng(random_state)
        idx = rng.choice(len(Z), size=min(len(Z), max_silhouette_rows), replace=False)
        X = Z.to_numpy()[idx]
        out["silhouette_kmeans"] = float(silhouette_score(X, km.labels_[idx]))
        if len(set(labels_seg[idx])) > 1:
            out["silhouette_segments"] = float(silhouette_score(X, labels_seg[idx]))
        out["ari_kmeans_vs_segments"] = float(adjusted_rand_score(labels_seg, km.labels_))
        out["kmeans_labels"] = km.labels_.tolist()
    kw = {}
    groups = pd.Series(labels_seg, index=Z.index)
    if groups.nunique() > 1:
        for col in Z.columns:
            samples = [Z.loc[groups == g, col].to_numpy() for g in sorted(groups.unique())]
            samples = [s for s in samples if len(s) > 0]
            try:
                h, p = stats.kruskal(*samples)
            except ValueError:  # all values identical
                continue
            kw[col] = {"H": float(h), "p_value": float(p)}
    out["kruskal"] = kw
    out["segment_sizes"] = {str(k_): int(v) for k_, v in groups.value_counts().items()}
    return out
