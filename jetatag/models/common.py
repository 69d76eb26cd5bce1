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


class MaxPool1dSafe(nn.Module):
    """Max-pool over time that shrinks its window when the input is shorter, so no length drops below one."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return F.max_pool1d(x, min(self.kernel, x.shape[-1]))  # (B, C, T // kernel)


class MaxPool2dSafe(nn.Module):
    """2-D max-pool (frequency, time) that shrinks its window on short inputs, so no size drops below one."""

    def __init__(self, kernel: int | tuple[int, int]) -> None:
        super().__init__()
        self.kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T)
        kernel = (min(self.kernel[0], x.shape[-2]), min(self.kernel[1], x.shape[-1]))
        return F.max_pool2d(x, kernel)  # (B, C, F // kf, T // kt)


class MultiLevelHead(nn.Module):
    """Multi-level feature aggregation (Lee et al. 2017; Kim et al. 2018) ending in h.

    Global max-pool each of the last blocks' outputs over time (and frequency), concatenate,
    then Dense ``H_DIM`` → BatchNorm → ReLU. At paper width the concatenation is 256 + 256 + 512 = 1024.
    """

    def __init__(self, in_channels: list[int], out_dim: int = H_DIM) -> None:
        super().__init__()
        self.dense = nn.Linear(sum(in_channels), out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        pooled = [f.flatten(2).amax(dim=-1) for f in features]  # each (B, C_i)
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
