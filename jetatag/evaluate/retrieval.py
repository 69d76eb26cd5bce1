"""Retrieval quality: mean average precision of single-tag queries over a clip collection.

Each tag is one query; a clip is relevant when it carries the tag. Clips are ranked either by the
classifier's score for the tag, or, for joint-embedding models, by the cosine between the clip's
projected embedding z_m and the tag encoder's embedding z_t of the one-hot query (both unit-norm, so
the dot product). AP per query is scikit-learn's ``average_precision_score``; queries without a
relevant clip are undefined and left out (listed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score


def mean_average_precision(relevant: np.ndarray, scores: np.ndarray, queries: Sequence[str]) -> dict[str, Any]:
    """mAP of ranking the clips by each query's column of ``scores``.

    relevant, scores [shape=(n_clips, n_queries)]; ``queries`` names the columns.
    Returns ``{"map", "n_queries", "per_query": {name: ap}, "excluded_queries": [...]}``.
    """
    if relevant.shape != scores.shape or relevant.shape[1] != len(queries):
        raise ValueError(f"relevance {relevant.shape}, scores {scores.shape} and {len(queries)} queries disagree")
    rel = np.asarray(relevant) != 0
    has_relevant = rel.any(axis=0)
    per_query = {
        queries[j]: float(average_precision_score(rel[:, j], scores[:, j])) for j in np.flatnonzero(has_relevant)
    }
    return {
        "map": float(np.mean(list(per_query.values()))) if per_query else float("nan"),
        "n_queries": len(per_query),
        "per_query": per_query,
        "excluded_queries": [queries[j] for j in np.flatnonzero(~has_relevant)],
    }


def embedding_query_scores(z_clips: np.ndarray, z_queries: np.ndarray) -> np.ndarray:
    """Cosine similarity of every clip embedding to every query embedding, [shape=(n_clips, n_queries)]."""
    a = z_clips / np.maximum(np.linalg.norm(z_clips, axis=1, keepdims=True), 1e-12)
    b = z_queries / np.maximum(np.linalg.norm(z_queries, axis=1, keepdims=True), 1e-12)
    return a @ b.T
