"""The small dense networks around the extractor: tag autoencoder, projection head and classifier.

Sizes follow the paper (section 1 of the design brief) and the authors' code: every hidden dense
layer is Dense → LeakyReLU(0.3); the tag encoder and the projection head end on the unit sphere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jetatag.config import TagEncoderNorm
from jetatag.models.common import keras_init

LEAKY_SLOPE = 0.3
"""Negative slope of every LeakyReLU in the heads (Keras' default alpha in the authors' code)."""


class DenseLeakyReLU(nn.Module):
    """Dense → LeakyReLU(0.3): the hidden layer of every head."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_dim)
        return F.leaky_relu(self.dense(x), LEAKY_SLOPE)  # (B, out_dim)


class TagEncoder(nn.Module):
    """Tag encoder of the tag autoencoder: tags → z_t on the unit sphere.

    Two Dense(embed_dim)-LeakyReLU layers, then L2 normalisation. ``norm`` "layernorm" puts layer
    normalisation between them (the paper's "Layer Normalization between nodes of a layer"); "none"
    is the authors' code (A21 and A22 build a BatchNorm they never call: 23,040 parameters for 50 tags).
    """

    def __init__(self, n_tags: int, embed_dim: int = 128, *, norm: TagEncoderNorm = "layernorm") -> None:
        super().__init__()
        self.hidden1 = DenseLeakyReLU(n_tags, embed_dim)
        self.norm = nn.LayerNorm(embed_dim) if norm == "layernorm" else nn.Identity()
        self.hidden2 = DenseLeakyReLU(embed_dim, embed_dim)
        self.apply(keras_init)

    def forward(self, tags: torch.Tensor) -> torch.Tensor:  # (B, n_tags)
        x = self.norm(self.hidden1(tags))  # (B, embed_dim)
        x = self.hidden2(x)  # (B, embed_dim)
        return F.normalize(x, dim=-1)  # (B, embed_dim), unit norm


class TagDecoder(nn.Module):
    """Tag decoder of the tag autoencoder: z_t → reconstructed tags in [0, 1] (Dense-LeakyReLU, Dense, sigmoid)."""

    def __init__(self, embed_dim: int, n_tags: int) -> None:
        super().__init__()
        self.hidden = DenseLeakyReLU(embed_dim, embed_dim)
        self.out = nn.Linear(embed_dim, n_tags)
        self.apply(keras_init)

    def forward(self, z_t: torch.Tensor) -> torch.Tensor:  # (B, embed_dim)
        return torch.sigmoid(self.out(self.hidden(z_t)))  # (B, n_tags)


class ProjectionHead(nn.Module):
    """Projection head: h → z_m on the unit sphere (two Dense(embed_dim)-LeakyReLU layers, L2 normalisation)."""

    def __init__(self, in_dim: int, embed_dim: int = 128) -> None:
        super().__init__()
        self.hidden1 = DenseLeakyReLU(in_dim, embed_dim)
        self.hidden2 = DenseLeakyReLU(embed_dim, embed_dim)
        self.apply(keras_init)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, in_dim)
        return F.normalize(self.hidden2(self.hidden1(h)), dim=-1)  # (B, embed_dim), unit norm


class Classifier(nn.Module):
    """Tag classifier on h: Dense256-LReLU, Dense256-LReLU, L2 norm, Dropout 0.5, Dense n_tags.

    Returns logits; callers apply the sigmoid (training uses BCE with logits, which is stabler).
    """

    def __init__(self, in_dim: int, n_tags: int, *, hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.hidden1 = DenseLeakyReLU(in_dim, hidden)
        self.hidden2 = DenseLeakyReLU(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_tags)
        self.apply(keras_init)

    @torch.no_grad()
    def start_at_prior(self, frequency: torch.Tensor) -> None:
        """Set the output biases to the log-odds of each tag's train frequency (n_tags,).

        A zero bias (Keras' init) starts every tag at p = 0.5 while most tags are rare, so the first few
        hundred steps of BCE mostly push all logits down; starting at the prior spends them on features.
        """
        p = frequency.to(self.out.bias).clamp(1e-3, 1 - 1e-3)
        self.out.bias.copy_(torch.log(p) - torch.log1p(-p))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, in_dim)
        x = F.normalize(self.hidden2(self.hidden1(h)), dim=-1)  # (B, hidden), unit norm
        return self.out(self.dropout(x))  # (B, n_tags) logits
