"""Speakers from window embeddings: agglomerative clustering on cosine distance (scikit-learn).

The count, when the request leaves it open, is where average-linkage merging stops: two groups
of windows further apart than `distance_threshold` are taken for different speakers. The count
found is then held within the request's bounds; when the bounds are equal it is fixed.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from services.core.speakers import SpeakerBounds


def cluster(
    embeddings: np.ndarray, bounds: SpeakerBounds, distance_threshold: float, max_windows: int
) -> np.ndarray:
    """A speaker index (0, 1, ...) per row of `embeddings`, within `bounds` (both set).

    Past `max_windows` rows, clustering runs on an even subsample (its cost grows with the
    square of the rows) and every row then joins the nearest cluster centre.
    """
    count = len(embeddings)
    if count == 0:
        return np.zeros(0, dtype=int)
    if count == 1 or bounds.max_count == 1:
        return np.zeros(count, dtype=int)
    if count <= max_windows:
        return _fit(embeddings, bounds, distance_threshold)
    chosen = np.linspace(0, count - 1, max_windows).round().astype(int)
    labels = _fit(embeddings[chosen], bounds, distance_threshold)
    return nearest_centre(embeddings, embeddings[chosen], labels)


def _fit(embeddings: np.ndarray, bounds: SpeakerBounds, distance_threshold: float) -> np.ndarray:
    low = min(bounds.min_count, len(embeddings))
    high = min(bounds.max_count, len(embeddings))
    if low == high:
        return _with_count(embeddings, high)
    labels = AgglomerativeClustering(
        n_clusters=None,
        distance_threshold=distance_threshold,
        metric="cosine",
        linkage="average",
    ).fit_predict(embeddings)
    found = int(labels.max()) + 1
    if low <= found <= high:
        return labels
    return _with_count(embeddings, min(max(found, low), high))


def _with_count(embeddings: np.ndarray, count: int) -> np.ndarray:
    if count <= 1:
        return np.zeros(len(embeddings), dtype=int)
    return AgglomerativeClustering(
        n_clusters=count, metric="cosine", linkage="average"
    ).fit_predict(embeddings)


def nearest_centre(embeddings: np.ndarray, fitted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each embedding's cluster: the one whose mean direction is closest (cosine)."""
    centres = np.stack([fitted[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return np.argmax(embeddings @ centres.T, axis=1)
