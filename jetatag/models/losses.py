"""Training losses: the joint-embedding pair loss, tag reconstruction and tag classification."""

from __future__ import annotations

import typing

import torch
import torch.nn.functional as F

from jetatag.config import PairLoss


def cos_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``1 − a·b / (|a||b|)`` over rows of ``a`` and ``b`` (both (B, D))."""
    return (1.0 - F.cosine_similarity(a, b, dim=-1, eps=1e-8)).mean()


def paper_pair_loss(z_m: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """The paper's pair loss ``cos_loss(z_m, z_t) + cos_loss(1 − z_m, 1 − z_t)``.

    The second term compares the vectors' complements, which also penalises matching directions
    with mismatched magnitudes per dimension (the embeddings are unit-norm, so 1 − z is not).
    """
    return cos_loss(z_m, z_t) + cos_loss(1.0 - z_m, 1.0 - z_t)


def keras_cosine_similarity(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """``tf.keras.losses.CosineSimilarity()(y_true, y_pred)``: the batch mean of **−cos** of the rows.

    Keras L2-normalises each row as ``x / sqrt(max(|x|², 1e-12))`` and returns ``−Σ ŷ_true·ŷ_pred``
    per row, averaged over the batch (reduction ``SUM_OVER_BATCH_SIZE``).
    """
    cos = (F.normalize(y_true, dim=-1, eps=1e-6) * F.normalize(y_pred, dim=-1, eps=1e-6)).sum(dim=-1)  # (B,)
    return -cos.mean()


def a21_pair_loss(z_m: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """The pair loss A21 minimises: ``2 + mean cos(z_t, z_m) + mean cos(1 − z_t, 1 − z_m)``.

    A21 ``training/solver.py:84`` sets ``pw_loss = tf.keras.losses.CosineSimilarity()`` and lines
    121 and 164 compute ``(1 - pw_loss(z2, r1)) + (1 - pw_loss(1 - z2, 1 - r1))`` with z2 = z_t and
    r1 = z_m. That Keras loss is −cos, so the code minimises 1 + cos twice: it pushes z_m *away* from
    z_t, the opposite of the paper's text.
    """
    return (1.0 - keras_cosine_similarity(z_t, z_m)) + (1.0 - keras_cosine_similarity(1.0 - z_t, 1.0 - z_m))


def a22_pair_loss(z_m: torch.Tensor, z_t: torch.Tensor, *, margin: float = 0.4) -> torch.Tensor:
    """A22's element-wise margin loss ``mean(z_t·z_m² + (1 − z_t)·max(margin − z_m, 0)²)``.

    A22 ``training/solver.py:22-27`` defines ``pairwise_loss(y, preds, margin=0.4)`` as
    ``K.mean(y·preds² + (1 − y)·max(margin − preds, 0)²)`` and lines 217 and 259 call it as
    ``pairwise_loss(z2, r1)``: y = z_t, preds = z_m, the mean over every element of the batch. It is
    Hadsell et al.'s contrastive form applied per embedding dimension, with z_t as the "label".
    """
    return (z_t * z_m.square() + (1.0 - z_t) * F.relu(margin - z_m).square()).mean()


def contrastive_pair_loss(z_m: torch.Tensor, z_t: torch.Tensor, *, margin: float = 0.4) -> torch.Tensor:
    """jetatag's in-batch contrastive margin loss over all audio/tag pairs (neither the paper nor the authors').

    Hadsell et al.'s ``y·d² + (1 − y)·max(margin − d, 0)²`` applied to what it is meant for, pairs:
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


def pair_loss(z_m: torch.Tensor, z_t: torch.Tensor, *, kind: PairLoss = "paper", margin: float = 0.4) -> torch.Tensor:
    """Joint-embedding loss between audio embeddings ``z_m`` and tag embeddings ``z_t`` (both (B, D)).

    ``margin`` is used by the "a22" and "contrastive" kinds only.
    """
    if kind == "paper":
        return paper_pair_loss(z_m, z_t)
    if kind == "a21":
        return a21_pair_loss(z_m, z_t)
    if kind == "a22":
        return a22_pair_loss(z_m, z_t, margin=margin)
    if kind == "contrastive":
        return contrastive_pair_loss(z_m, z_t, margin=margin)
    raise ValueError(f"unknown pair loss {kind!r}: expected one of {', '.join(typing.get_args(PairLoss))}")


def reconstruction_loss(tags: torch.Tensor, tags_hat: torch.Tensor) -> torch.Tensor:
    """Tag autoencoder loss L_AE: mean squared error between tags and their reconstruction."""
    return F.mse_loss(tags_hat, tags)


def classification_loss(logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Multi-label tagging loss: binary cross-entropy on the classifier's logits (sigmoid inside)."""
    return F.binary_cross_entropy_with_logits(logits, tags)
