"""Harmonic-CNN: harmonic STFT front end and a 2-D residual CNN.

M. Won, S. Chun, O. Nieto, X. Serra, "Data-driven harmonic filters for audio representation
learning", ICASSP 2020 (code: minzwon/data-driven-harmonic-filters). Body as in the joint-embedding
authors' version: seven 2-D blocks of widths 128,128,128,256,256,256,512 (three of them residual),
pooling frequency by 2 each and time by 2,2,2,2,2,3,3 (128 bands × 313 frames → 1 × 1 for 80,000
samples), then the multi-level head on blocks 5-7 (256 + 256 + 512) → h ∈ R^1024. ``model.hcnn_head``
"dense" ends that head in Dense → BN → ReLU like the Sample-CNN family; "a21" is the authors' head (A21
``training/modules.py:227-254``, the same in A22): the concatenated global max-pools themselves are h,
no dense layer.
"""

from __future__ import annotations

import torch
from torch import nn

from jetatag.config import HcnnFrontEnd, HcnnHead, ModelParams
from jetatag.models.bn_relu import batch_norm_relu
from jetatag.models.common import H_DIM, ChannelsLastGradBack, MaxPool2dSafe, MultiLevelHead, keras_init, scaled
from jetatag.models.conv3x3 import Conv3x3
from jetatag.models.harmonic import A21HarmonicSTFT, HarmonicSTFT

BLOCKS = (  # (channels, residual, (frequency pool, time pool))
    (128, False, (2, 2)),
    (128, True, (2, 2)),
    (128, True, (2, 2)),
    (256, False, (2, 2)),
    (256, True, (2, 2)),
    (256, True, (2, 3)),
    (512, False, (2, 3)),
)


class Conv2dBlock(nn.Module):
    """Conv2d 3×3 → BN → ReLU → MaxPool (computed as MaxPool then ReLU: the same, as ReLU is monotone)."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = MaxPool2dSafe(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, F, T)
        return batch_norm_relu(self.conv(x), self.bn, pool=self.pool)  # (B, C_out, F // pf, T // pt)


class Res2dBlock(nn.Module):
    """Residual 2-D block: conv-BN-ReLU-conv-BN + identity → ReLU → MaxPool (pooled before the ReLU, the same)."""

    def __init__(self, channels: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = Conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = Conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.pool = MaxPool2dSafe(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T)
        residual = self.conv2(batch_norm_relu(self.conv1(x), self.bn1))  # (B, C, F, T) before bn2
        return batch_norm_relu(residual, self.bn2, pool=self.pool, skip=x)  # (B, C, F // pf, T // pt)


class GlobalMaxConcat(nn.Module):
    """The authors' Harmonic-CNN head: the last blocks' global max-pools, concatenated (no dense layer)."""

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:  # each (B, C_i, F_i, T_i)
        return torch.cat([f.amax(dim=(2, 3)) for f in features], dim=1)  # (B, sum C_i)


class HarmonicCNN(nn.Module):
    """Harmonic-CNN cut before its classifier: raw waveform (B, L) → h (B, out_dim).

    ``width`` scales the 2-D blocks' channels (1.0 = paper); the front end does not change. With
    ``head`` "dense" h is always 1024-d; with "a21" it is the blocks 5-7 channels' sum (1024 at width 1).
    ``front_end`` "won" is Won et al.'s harmonic STFT, "a21" the authors' kapre version (:class:`A21HarmonicSTFT`).
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        width: float = 1.0,
        head: HcnnHead = "dense",
        front_end: HcnnFrontEnd = "won",
        n_harmonic: int = 6,
        semitone_scale: int = 2,
    ) -> None:
        super().__init__()
        # harmonic front end, normalised per harmonic channel
        front_end_class = HarmonicSTFT if front_end == "won" else A21HarmonicSTFT
        self.hstft = front_end_class(sample_rate=sample_rate, n_harmonic=n_harmonic, semitone_scale=semitone_scale)
        self.hstft_bn = nn.BatchNorm2d(n_harmonic)
        # 2-D CNN
        blocks: list[nn.Module] = []
        channels = n_harmonic
        for out_channels, residual, pool in BLOCKS:
            out_channels = scaled(out_channels, width)
            blocks.append(Res2dBlock(channels, pool) if residual else Conv2dBlock(channels, out_channels, pool))
            channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        # multi-level aggregation of the last three blocks → h
        last = [scaled(c, width) for c, _, _ in BLOCKS[-3:]]
        self.head = MultiLevelHead(last, H_DIM) if head == "dense" else GlobalMaxConcat()
        self.out_dim = H_DIM if head == "dense" else sum(last)
        self.apply(keras_init)

    @classmethod
    def from_params(cls, model: ModelParams, *, sample_rate: int) -> HarmonicCNN:
        """Build at ``model.width`` with ``model.hcnn_head`` and ``model.hcnn_front_end``, for ``sample_rate`` audio."""
        return cls(sample_rate=sample_rate, width=model.width, head=model.hcnn_head, front_end=model.hcnn_front_end)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        x = self.hstft_bn(self.hstft(wave))  # (B, 6, 128, T) contiguous
        x = ChannelsLastGradBack.apply(x)  # the 2-D body runs channels-last (oneDNN's fast path)
        outputs = []
        for block in self.blocks:
            x = block(x)  # (B, C_i, F_i, T_i)
            outputs.append(x)
        return self.head(outputs[-3:])  # (B, out_dim)
