"""Geometry of a set of embeddings: how spread out the joint-embedding vectors are.

Two figures per set of vectors z_1..z_n, both logged every stage-1 epoch for the tag embeddings z_t
(over the distinct tag vectors) and the audio embeddings z_m (over the validation crops):

* mean pairwise cosine, the mean of cos(z_i, z_j) over i ≠ j: 1 when every vector points the same
  way (a collapsed embedding), about 0 for directions spread over the sphere;
* effective rank (Roy & Vetterli, EUSIPCO 2007), exp of the entropy of the normalised singular values
  of the n × d matrix: 1 when the vectors span one direction, up to min(n, d).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def mean_pairwise_cosine(z: torch.Tensor) -> float:
    """Mean of cos(z_i, z_j) over ordered pairs i ≠ j of the rows of ``z`` [shape=(n ≥ 2, d)]."""
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 vectors, got {n}")
    unit = F.normalize(z.double(), dim=1)  # (n, d)
    total = unit.sum(dim=0)  # Σ_i u_i: Σ_{i,j} u_i·u_j = |Σ u|², the diagonal adds n
    return float((total @ total - n) / (n * (n - 1)))


def effective_rank(z: torch.Tensor) -> float:
    """exp(H(p)) with p the singular values of ``z`` [shape=(n, d)] divided by their sum (Roy & Vetterli 2007)."""
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def geometry(z: torch.Tensor, prefix: str) -> dict[str, float]:
    """``{prefix}_mean_cos`` and ``{prefix}_erank`` of the rows of ``z``; none with fewer than 2 rows.

    A validation split of one clip (or of one distinct tag set) has no pairs: the run goes on without
    these values, and Table 1 shows ``n/a`` for them.
    """
    if len(z) < 2:
        log.warning("%s geometry needs at least 2 vectors, got %d: not logged", prefix, len(z))
        return {}
    return {f"{prefix}_mean_cos": mean_pairwise_cosine(z), f"{prefix}_erank": effective_rank(z)}
