"""Sample-level CNNs on raw waveforms and their SE / residual variants.

* Sample-CNN: J. Lee, J. Park, K. L. Kim, J. Nam, "Sample-level deep convolutional neural networks
  for music auto-tagging using raw waveforms", SMC 2017.
* +SE, +Res, +Res+SE: T. Kim, J. Lee, J. Nam, "Sample-level CNN architectures for music auto-tagging
  using raw waveforms", ICASSP 2018 (code: resemul).

Layout (paper width): a strided stem Conv1d(1→128, k3, s3), nine blocks of widths
128,128,256,256,256,256,256,256,512 each ending in MaxPool 3 (59,049 = 3^10 samples → 1 frame),
and the multi-level head on the last three blocks → h ∈ R^1024. Every conv has a bias and is
followed by BatchNorm, as in the authors' Keras code; this reproduces their parameter counts.

Signals flow as (B, C, 1, T) channels-last rows through :class:`~jetatag.models.common.WaveConv`
(a Conv1d run as a Conv2d, same parameters), which is about twice as fast on CPU as conv1d. Where a
block ends in ReLU then MaxPool, it pools first: ReLU is monotone, so ``relu(pool(x)) == pool(relu(x))``
exactly, and the ReLU then touches a third of the samples. ReLUs run in place on the fresh outputs of
BatchNorm or pooling, whose backward passes do not read them: one tensor less to allocate and write.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from jetatag.config import ModelParams, SeSqueeze
from jetatag.models.bn_relu import batch_norm_gate_relu, batch_norm_relu, batch_norm_relu_squeeze
from jetatag.models.common import (
    H_DIM,
    MaxPool2dSafe,
    MultiLevelHead,
    WaveConv,
    WaveDropout,
    as_rows,
    keras_init,
    scaled,
    time_sums,
)

STEM_CHANNELS = 128
BLOCK_CHANNELS = (128, 128, 256, 256, 256, 256, 256, 256, 512)
SE_AMPLIFYING_RATIO = 16
"""The SE gate's hidden layer is C·16 wide: Kim et al. *expand* rather than squeeze."""


class SampleStem(nn.Module):
    """Strided stem: Conv1d(k3, stride 3) → BN → ReLU; one output frame per 3 samples."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = WaveConv(in_channels, out_channels, kernel_size=3, stride=3)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, 1, T)
        return batch_norm_relu(self.conv(x), self.bn)  # (B, C_out, 1, T // 3)


class SEGate(nn.Module):
    """Squeeze-and-excitation gate: GAP → Dense C·ratio → ReLU → Dense C → sigmoid, one weight per channel."""

    def __init__(self, channels: int, ratio: int = SE_AMPLIFYING_RATIO) -> None:
        super().__init__()
        self.excite = nn.Linear(channels, channels * ratio)
        self.gate = nn.Linear(channels * ratio, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 1, T)
        return self.excitation(time_sums(x) / x.shape[-1])  # (B, C, 1, 1)

    def excitation(self, squeezed: torch.Tensor) -> torch.Tensor:
        """The gate (B, C, 1, 1) for the time averages ``squeezed`` (B, C) of the signals it gates."""
        s = torch.sigmoid(self.gate(F.relu(self.excite(squeezed))))  # (B, C)
        return s[:, :, None, None]  # (B, C, 1, 1)


class BasicBlock(nn.Module):
    """Sample-CNN block: Conv1d k3 → BN → ReLU → MaxPool 3."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = WaveConv(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = MaxPool2dSafe((1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, 1, T)
        return batch_norm_relu(self.conv(x), self.bn, pool=self.pool)  # (B, C_out, 1, T // 3)


class SEBlock(nn.Module):
    """SE block: the basic block's conv → BN → ReLU, rescaled by an SE gate, then MaxPool 3.

    The gate's weights are positive (a sigmoid), and max-pooling commutes with scaling by a positive
    number, so the block pools first and rescales the pooled third of the samples: the same result.
    ``squeeze="block"`` computes the gate on the block's output before MaxPool; ``"pooled"`` computes it on
    the pooled output, as A21's ``se_block`` (the basic block, MaxPool included, then the gate).
    """

    def __init__(self, in_channels: int, out_channels: int, *, squeeze: SeSqueeze = "block") -> None:
        super().__init__()
        self.conv = WaveConv(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.se = SEGate(out_channels)
        self.pool = MaxPool2dSafe((1, 3))
        self.squeeze = squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, 1, T)
        x = self.conv(x)  # (B, C_out, 1, T) before BN
        if self.squeeze == "pooled":
            x = batch_norm_relu(x, self.bn, pool=self.pool)  # (B, C_out, 1, T // 3)
            return x * self.se(x)  # (B, C_out, 1, T // 3): the gate squeezes the pooled output (A21)
        pooled, sums = batch_norm_relu_squeeze(x, self.bn, self.pool)  # (B, C_out, 1, T // 3), (B, C_out)
        return pooled * self.se.excitation(sums / x.shape[-1])  # (B, C_out, 1, T // 3) = pool(y · gate)


class Shortcut(nn.Module):
    """Residual shortcut: identity, or Conv1d 1×1 → BN when the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = in_channels != out_channels
        if self.project:
            self.conv = WaveConv(in_channels, out_channels, kernel_size=1)
            self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, 1, T)
        return self.bn(self.conv(x)) if self.project else x  # (B, C_out, 1, T)


class ResBlock(nn.Module):
    """Res block: conv-BN-ReLU-Dropout(0.2)-conv-BN (+ optional SE gate) + shortcut → ReLU → MaxPool 3."""

    def __init__(self, in_channels: int, out_channels: int, *, se: bool = False, dropout: float = 0.2) -> None:
        super().__init__()
        self.shortcut = Shortcut(in_channels, out_channels)
        self.conv1 = WaveConv(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.dropout = WaveDropout(dropout)
        self.conv2 = WaveConv(out_channels, out_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.se = SEGate(out_channels) if se else None
        self.pool = MaxPool2dSafe((1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, 1, T)
        residual = batch_norm_relu(self.conv1(x), self.bn1, dropout=self.dropout)  # (B, C_out, 1, T)
        residual = self.conv2(residual)  # (B, C_out, 1, T) before bn2
        if self.se is None:
            return batch_norm_relu(residual, self.bn2, pool=self.pool, skip=self.shortcut(x))  # (B, C_out, 1, T // 3)
        # the gate rescales bn2's output before the addition
        return batch_norm_gate_relu(residual, self.bn2, self.se, pool=self.pool, skip=self.shortcut(x))


class ReSEBlock(ResBlock):
    """Res+SE block: the Res block with an SE gate on the residual branch before the addition."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, se=True)


class SampleCNN(nn.Module):
    """Sample-CNN (Lee et al., SMC 2017) cut before its classifier, with the multi-level 1024-d head.

    Maps raw waveforms (B, L) with L ≥ 3^10 to h (B, 1024). ``width`` scales every channel count
    (1.0 = paper); h stays 1024 wide. Subclasses swap the block type; ``block`` overrides it with a factory
    ``(in_channels, out_channels) -> block``.
    """

    block: ClassVar[type[nn.Module]] = BasicBlock

    def __init__(
        self, *, width: float = 1.0, in_channels: int = 1, block: Callable[[int, int], nn.Module] | None = None
    ) -> None:
        super().__init__()
        block = block or self.block
        channels = [scaled(c, width) for c in BLOCK_CHANNELS]
        # strided stem
        self.stem = SampleStem(in_channels, scaled(STEM_CHANNELS, width))
        # nine sample-level blocks
        widths_in = [scaled(STEM_CHANNELS, width), *channels[:-1]]
        self.blocks = nn.ModuleList(block(c_in, c_out) for c_in, c_out in zip(widths_in, channels, strict=True))
        # multi-level aggregation of the last three blocks → h
        self.head = MultiLevelHead(channels[-3:], H_DIM)
        self.apply(keras_init)

    @classmethod
    def from_params(cls, model: ModelParams, *, sample_rate: int) -> SampleCNN:
        """Build at ``model.width``; raw-waveform models do not depend on the sample rate."""
        del sample_rate
        return cls(width=model.width)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stem and blocks on (B, C, 1, L) channels-last rows (:func:`as_rows`) and return h (B, 1024)."""
        x = self.stem(x)  # (B, C0, 1, L // 3)
        outputs = []
        for block in self.blocks:
            x = block(x)  # (B, C_i, 1, T_i // 3)
            outputs.append(x)
        return self.head(outputs[-3:])  # (B, 1024)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        return self.features(as_rows(wave.unsqueeze(1)))  # (B, 1024)


class SampleCNNSE(SampleCNN):
    """Sample-CNN + SE (Kim, Lee, Nam, ICASSP 2018): every block gated by squeeze-and-excitation."""

    block = SEBlock

    @classmethod
    def from_params(cls, model: ModelParams, *, sample_rate: int) -> SampleCNNSE:
        """Build at ``model.width`` with the SE gate squeezing where ``model.se_squeeze`` says."""
        del sample_rate
        return cls(width=model.width, block=partial(SEBlock, squeeze=model.se_squeeze))


class SampleCNNRes(SampleCNN):
    """Sample-CNN + Res (Kim, Lee, Nam, ICASSP 2018): residual blocks."""

    block = ResBlock


class SampleCNNReSE(SampleCNN):
    """Sample-CNN + Res + SE, "ReSE-2" (Kim, Lee, Nam, ICASSP 2018): residual blocks with SE gates."""

    block = ReSEBlock
