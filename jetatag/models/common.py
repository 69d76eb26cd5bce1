"""Building blocks shared by several extractors: width scaling, safe pooling, the multi-level head, Keras-style init."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

H_DIM = 1024
"""Size of the extractor output h (the paper changes every extractor to end in 1024 dimensions)."""


def scaled(channels: int, width: float) -> int:
    """Channel count ``channels`` scaled by the ``model.width`` multiplier (rounded, at least 1)."""
    return max(1, round(channels * width))


class WaveConv(nn.Conv1d):
    """A Conv1d over time that runs as a Conv2d on (B, C, 1, T) tensors in channels-last memory.

    Same parameters and state dict as :class:`torch.nn.Conv1d`. On CPU the channels-last Conv2d takes
    oneDNN's direct path, and keeping the whole sample-level network in that layout lets BatchNorm,
    ReLU and max-pooling skip the layout reorders that conv1d's (B, C, T) layout costs around every
    convolution: about 2× faster per training step for the narrow, long signals of these models.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, 1, T) channels-last
        weight = self.weight.unsqueeze(2)  # (C_out, C_in, 1, k)
        stride, padding = self.stride[0], self.padding[0]
        y = F.conv2d(x, weight, self.bias, stride=(1, stride), padding=(0, padding))  # (B, C_out, 1, T')
        # a one-channel input is both layouts at once and torch then picks (B, C, 1, T): restore channels-last
        return y.contiguous(memory_format=torch.channels_last)


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) signals as the (B, C, 1, T) channels-last tensor that :class:`WaveConv` layers take."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C, 1, T)


class MaxPool2dSafe(nn.Module):
    """2-D max-pool (frequency, time) that shrinks its window on short inputs, so no size drops below one.

    The sample-level models pool their (B, C, 1, T) rows over time with a (1, k) window.
    """

    def __init__(self, kernel: int | tuple[int, int]) -> None:
        super().__init__()
        self.kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T)
        kernel = (min(self.kernel[0], x.shape[-2]), min(self.kernel[1], x.shape[-1]))
        return F.max_pool2d(x, kernel)  # (B, C, F // kf, T // kt)


class MultiLevelHead(nn.Module):
    """Multi-level feature aggregation (Lee et al. 2017; Kim et al. 2018) ending in h.

    Global max-pool each of the last blocks' (B, C_i, F_i, T_i) outputs over frequency and time, concatenate,
    then Dense ``H_DIM`` → BatchNorm → ReLU. At paper width the concatenation is 256 + 256 + 512 = 1024.
    """

    def __init__(self, in_channels: list[int], out_dim: int = H_DIM) -> None:
        super().__init__()
        self.dense = nn.Linear(sum(in_channels), out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        pooled = [f.amax(dim=(2, 3)) for f in features]  # each (B, C_i)
        x = torch.cat(pooled, dim=1)  # (B, sum C_i)
        return F.relu(self.bn(self.dense(x)))  # (B, out_dim)


def keras_init(module: nn.Module) -> None:
    """Initialise like the authors' Keras code: He-uniform convs, Glorot-uniform dense layers, zero biases.

    Use with ``model.apply(keras_init)``; other layers keep PyTorch's defaults (BatchNorm: γ = 1, β = 0).
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
    elif isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)
