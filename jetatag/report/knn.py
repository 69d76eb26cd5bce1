"""k-nearest-neighbour tag agreement: a number for how well a 2-D map groups the clips that carry a tag.

For each clip with the tag, the share of its k nearest neighbours (Euclidean, the clip itself excluded)
that also carry it, averaged over those clips. A map that ignores the tag scores about the base rate
(the share of clips with the tag); one that gathers the tagged clips into a cluster scores near 1. It
puts a figure on what Figure 2 asks the eye to judge.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

KNN_K = 10
"""Neighbours per clip."""


def knn_agreement(points: np.ndarray, has_tag: np.ndarray, *, k: int = KNN_K) -> float:
    """Mean share of tagged clips among the ``k`` nearest neighbours of each tagged clip.

    Parameters
    ----------
    points : [shape=(n, d)] coordinates (the panel's t-SNE map), n >= 2
    has_tag : bool [shape=(n,)] whether each clip carries the tag
    k : int >= 1 neighbours; clipped to n - 1 (every other clip)

    Returns
    -------
    agreement in [0, 1], or NaN when no clip carries the tag. Ties in distance are broken by
    scikit-learn's neighbour search (index order for exact ties).
    """
    points = np.asarray(points, dtype=np.float64)
    has_tag = np.asarray(has_tag, dtype=bool)
    n = len(points)
    if n < 2 or has_tag.shape != (n,):
        raise ValueError(f"need n >= 2 points and a mask of the same length, got {points.shape} and {has_tag.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not has_tag.any():
        return float("nan")
    search = NearestNeighbors(n_neighbors=min(k, n - 1)).fit(points)
    # query the tagged fitted points themselves (X=None): scikit-learn then leaves each point out of its own list
    neighbours = search.kneighbors(return_distance=False)[has_tag]  # (n_tagged, k)
    return float(has_tag[neighbours].mean(axis=1).mean())


def base_rate(has_tag: np.ndarray) -> float:
    """Share of clips carrying the tag: about what a map unrelated to the tag scores ((m - 1) / (n - 1) exactly)."""
    return float(np.mean(np.asarray(has_tag, dtype=bool)))
