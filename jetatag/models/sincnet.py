"""Music-SincNet: a learnable sinc filterbank in front of the Res+SE Sample-CNN.

J. Lee, Shin, "Music auto-tagging with learning filter banks" (Music-SincNet), KSC 2020 (code:
jaehwlee/Music-SincNet), building on SincNet (Ravanelli & Bengio 2018) and ReSE-2 (Kim et al. 2018).

Wiring, as in the authors' code: the sinc layer (256 filters × 2501 taps at paper size, stride 1,
"same" length) → BatchNorm → ReLU replaces the raw waveform as the input of the Sample-CNN stem,
whose strided Conv1d(k3, s3) then maps the 256 band signals to 128 channels; the nine Res+SE
blocks and the multi-level head follow unchanged. ``model.sinc_design: a21`` takes the authors' A21
filterbank instead: fixed, designed for 22,050 Hz, fed to the stem without BatchNorm or ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jetatag.config import ModelParams, SincDesign
from jetatag.models.common import as_rows, scaled
from jetatag.models.samplecnn import SampleCNNReSE
from jetatag.models.sinc import A21SincConv, SincConv


class SincFrontEnd(nn.Module):
    """Learnable sinc band-pass filterbank → BatchNorm → ReLU: (B, L) → (B, n_filters, 1, L) channels-last rows."""

    def __init__(self, n_filters: int, n_taps: int, *, sample_rate: int) -> None:
        super().__init__()
        self.sinc = SincConv(n_filters, n_taps, sample_rate=sample_rate)
        self.bn = nn.BatchNorm2d(n_filters)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        return F.relu(self.bn(as_rows(self.sinc(wave))), inplace=True)  # (B, F, 1, L)


class A21SincFrontEnd(nn.Module):
    """A21's fixed sinc filterbank with no BatchNorm or ReLU after it (``model.py:190-203``): (B, L) → (B, F, 1, L)."""

    def __init__(self, n_filters: int, n_taps: int) -> None:
        super().__init__()
        self.sinc = A21SincConv(n_filters, n_taps)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        return as_rows(self.sinc(wave))  # (B, F, 1, L)


class MusicSincNet(nn.Module):
    """Music-SincNet cut before its classifier: raw waveform (B, L ≥ 3^10) → h (B, 1024).

    ``sinc_filters`` is scaled by ``width`` like every other channel count; h stays 1024 wide.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        width: float = 1.0,
        sinc_filters: int = 256,
        sinc_taps: int = 2501,
        sinc_design: SincDesign = "jetatag",
    ) -> None:
        super().__init__()
        n_filters = scaled(sinc_filters, width)
        # sinc filterbank (learnable, or A21's fixed one)
        self.frontend = (
            A21SincFrontEnd(n_filters, sinc_taps)
            if sinc_design == "a21"
            else SincFrontEnd(n_filters, sinc_taps, sample_rate=sample_rate)
        )
        # Res+SE Sample-CNN on the band signals
        self.body = SampleCNNReSE(width=width, in_channels=n_filters)

    @classmethod
    def from_params(cls, model: ModelParams, *, sample_rate: int) -> MusicSincNet:
        """Build from ``model.width``, ``model.sinc_filters``, ``model.sinc_taps`` and ``model.sinc_design``."""
        return cls(
            sample_rate=sample_rate,
            width=model.width,
            sinc_filters=model.sinc_filters,
            sinc_taps=model.sinc_taps,
            sinc_design=model.sinc_design,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        bands = self.frontend(wave)  # (B, F, 1, L)
        return self.body.features(bands)  # (B, 1024)
