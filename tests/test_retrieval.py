"""Retrieval mAP of single-tag queries on cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from jetatag.evaluate.retrieval import embedding_query_scores, mean_average_precision


def test_map_known_answer() -> None:
    relevant = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.7, 0.5], [0.8, 0.9, 0.5], [0.3, 0.2, 0.5], [0.1, 0.3, 0.5]])
    result = mean_average_precision(relevant, scores, ["a", "b", "c"])
    # query a: relevant at ranks 1 and 3 -> (1 + 2/3) / 2; query b: ranks 1 and 2 -> 1; query c: no relevant clip
    assert result["per_query"] == pytest.approx({"a": 5 / 6, "b": 1.0})
    assert result["map"] == pytest.approx((5 / 6 + 1.0) / 2)
    assert result["n_queries"] == 2 and result["excluded_queries"] == ["c"]


def test_embedding_ranking_finds_tagged_clips_first() -> None:
    rng = np.random.default_rng(0)
    z_t = np.linalg.qr(rng.normal(size=(8, 3)))[0].T  # 3 orthonormal tag embeddings in R^8
    tags = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    z_m = tags @ z_t * 3.0 + 0.05 * rng.normal(size=(6, 8))  # near the embedding of the clip's tag, not unit-norm
    scores = embedding_query_scores(z_m, z_t)
    assert scores.shape == (6, 3) and np.all(scores <= 1 + 1e-9)
    assert mean_average_precision(tags, scores, ["a", "b", "c"])["map"] == pytest.approx(1.0)
    shuffled = mean_average_precision(tags, embedding_query_scores(z_m[::-1], z_t), ["a", "b", "c"])
    assert shuffled["map"] < 1.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="disagree"):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"])
