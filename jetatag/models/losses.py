"""Training losses: the joint-embedding pair loss, tag reconstruction and tag classification."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

PairLossKind = Literal["cosine", "margin"]


def cos_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``1 − a·b / (|a||b|)`` over rows of ``a`` and ``b`` (both (B, D))."""
    return (1.0 - F.cosine_similarity(a, b, dim=-1, eps=1e-8)).mean()


def cosine_pair_loss(z_m: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """The paper's pair loss ``cos_loss(z_m, z_t) + cos_loss(1 − z_m, 1 − z_t)``.

    The second term compares the vectors' complements, which also penalises matching directions
    with mismatched magnitudes per dimension (the embeddings are unit-norm, so 1 − z is not).
    """
    return cos_loss(z_m, z_t) + cos_loss(1.0 - z_m, 1.0 - z_t)


def margin_pair_loss(z_m: torch.Tensor, z_t: torch.Tensor, *, margin: float = 0.4) -> torch.Tensor:
    """Contrastive margin loss over all audio/tag pairs of the batch (the authors' code's option).

    The authors' code applies ``y·d² + (1 − y)·max(margin − d, 0)²`` (Hadsell et al. 2006) with
    margin 0.4 element-wise to (z_t, z_m). We apply the same form to what it is meant for, pairs:
    ``d_ij = 1 − cos(z_m_i, z_t_j)`` is the cosine distance between clip i's audio embedding and clip
    j's tag embedding, ``y_ij = 1`` for the matching pair (i = j) and 0 otherwise. Matching pairs are
    pulled together; non-matching ones are pushed at least ``margin`` apart. The two groups are
    averaged separately and summed, so the batch size does not change their balance.
    """
    d = 1.0 - F.normalize(z_m, dim=-1) @ F.normalize(z_t, dim=-1).T  # (B, B) cosine distances
    match = torch.eye(d.shape[0], dtype=torch.bool, device=d.device)  # (B, B)
    positive = d[match].square().mean()
    if d.shape[0] == 1:
        return positive
    negative = F.relu(margin - d[~match]).square().mean()
    return positive + negative


def pair_loss(
    z_m: torch.Tensor, z_t: torch.Tensor, *, kind: PairLossKind = "cosine", margin: float = 0.4
) -> torch.Tensor:
    """Joint-embedding loss between audio embeddings ``z_m`` and tag embeddings ``z_t`` (both (B, D))."""
    if kind == "cosine":
        return cosine_pair_loss(z_m, z_t)
    if kind == "margin":
        return margin_pair_loss(z_m, z_t, margin=margin)
    raise ValueError(f"unknown pair loss {kind!r}: expected 'cosine' or 'margin'")


def reconstruction_loss(tags: torch.Tensor, tags_hat: torch.Tensor) -> torch.Tensor:
    """Tag autoencoder loss L_AE: mean squared error between tags and their reconstruction."""
    return F.mse_loss(tags_hat, tags)


def classification_loss(logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Multi-label tagging loss: binary cross-entropy on the classifier's logits (sigmoid inside)."""
    return F.binary_cross_entropy_with_logits(logits, tags)
