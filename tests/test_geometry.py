"""Tests for jetatag.train.geometry: mean pairwise cosine and effective rank against direct definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from jetatag.train.geometry import effective_rank, geometry, mean_pairwise_cosine


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_mean_pairwise_cosine_is_the_off_diagonal_mean(rng: np.random.Generator) -> None:
    z = rng.normal(size=(30, 8)) + 0.5
    cos = cosine_similarity(z)
    expected = cos[~np.eye(30, dtype=bool)].mean()
    assert mean_pairwise_cosine(torch.from_numpy(z).float()) == pytest.approx(expected, abs=1e-6)


def test_collapsed_and_orthogonal_sets() -> None:
    same = torch.ones(5, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert mean_pairwise_cosine(same) == pytest.approx(1.0)
    assert effective_rank(same) == pytest.approx(1.0)
    eye = torch.eye(6)
    assert mean_pairwise_cosine(eye) == pytest.approx(0.0, abs=1e-12)
    assert effective_rank(eye) == pytest.approx(6.0)


def test_effective_rank_is_exp_entropy_of_normalised_singular_values(rng: np.random.Generator) -> None:
    z = rng.normal(size=(20, 6)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.1, 0.01])
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum()
    assert effective_rank(torch.from_numpy(z)) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert 1.0 < effective_rank(torch.from_numpy(z)) < 6.0


def test_geometry_names_and_too_few_vectors() -> None:
    assert set(geometry(torch.eye(3), "zt")) == {"zt_mean_cos", "zt_erank"}
    assert geometry(torch.ones(1, 4), "zm") == {}  # a one-clip validation split: nothing to measure, no crash
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_cosine(torch.ones(1, 3))
