"""Learnable sinc band-pass filterbank on raw waveforms.

M. Ravanelli, Y. Bengio, "Speaker recognition from raw waveform with SincNet", SLT 2018; used for
music as Music-SincNet (J. Lee, Shin, 2020). Each filter is an ideal band-pass (difference of two
windowed sinc low-passes) whose two cut-off frequencies are the only trainable parameters.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

LOW_MEL = 80.0
"""Lowest filter centre of the mel-spaced initialisation, in (HTK) mel, as in the Music-SincNet code."""


def mel_band_edges(*, n_filters: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial band edges in Hz: each band spans its two neighbours on a mel-spaced grid of centres.

    Centres run from 80 mel to the Nyquist frequency's mel (HTK formula); band i spans
    [centre_{i−1}, centre_{i+1}], with 30 Hz below the first and Nyquist − 100 Hz above the last.
    Returns ``(low, high)``, each [shape=(n_filters,)].
    """
    mels = np.linspace(LOW_MEL, librosa.hz_to_mel(sample_rate / 2, htk=True), n_filters)
    centres = librosa.mel_to_hz(mels, htk=True)  # (n_filters,)
    low = np.concatenate([[30.0], centres[:-1]])
    high = np.concatenate([centres[1:], [sample_rate / 2 - 100.0]])
    return low, high


class SincConv(nn.Module):
    """Sinc band-pass convolution: (B, L) → (B, n_filters, L), "same" length.

    Parameters
    ----------
    n_filters : int ≥ 1
    n_taps : odd int ≥ 3, filter length (Hamming-windowed)
    sample_rate : int > 0
    min_low_hz, min_band_hz : float ≥ 0, floors on the low cut-off and the bandwidth (keep filters valid)

    The cut-offs are ``low = min_low_hz + |a|`` and ``high = min(low + min_band_hz + |b|, sr/2)`` with
    trainable a, b initialised so that the bands start at :func:`mel_band_edges` (widened to the floors).
    Filters have unit gain in their pass band. The convolution runs through the FFT: the paper's 256
    filters × 2501 taps would cost ~38 GMAC per 59,049-sample crop as a direct convolution.
    """

    def __init__(
        self,
        n_filters: int,
        n_taps: int,
        *,
        sample_rate: int,
        min_low_hz: float = 30.0,
        min_band_hz: float = 50.0,
    ) -> None:
        super().__init__()
        if n_taps < 3 or n_taps % 2 == 0:
            raise ValueError(f"n_taps must be odd and >= 3, got {n_taps}")
        self.n_filters = n_filters
        self.n_taps = n_taps
        self.sample_rate = sample_rate
        self.min_low_hz = min_low_hz
        self.min_band_hz = min_band_hz
        # trainable cut-offs, in Hz
        low, high = mel_band_edges(n_filters=n_filters, sample_rate=sample_rate)
        low = np.maximum(low, min_low_hz)
        self.low_hz_ = nn.Parameter(torch.tensor(low - min_low_hz, dtype=torch.float32))
        self.band_hz_ = nn.Parameter(torch.tensor(np.maximum(high - low - min_band_hz, 0.0), dtype=torch.float32))
        # fixed tensors: tap times in samples (centred) and the Hamming window
        half = (n_taps - 1) // 2
        self.register_buffer("n", torch.arange(-half, half + 1, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hamming_window(n_taps, periodic=False), persistent=False)

    def band_edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current (low, high) cut-offs in Hz, each (n_filters,)."""
        low = self.min_low_hz + self.low_hz_.abs()
        high = (low + self.min_band_hz + self.band_hz_.abs()).clamp(max=self.sample_rate / 2)
        return low, high

    def filters(self) -> torch.Tensor:
        """Windowed band-pass impulse responses: [shape=(n_filters, n_taps)], symmetric in time."""
        low, high = self.band_edges()
        f1 = (low / self.sample_rate).unsqueeze(1)  # (F, 1) normalised cut-offs, cycles per sample
        f2 = (high / self.sample_rate).unsqueeze(1)  # (F, 1)
        # ideal band-pass = low-pass(f2) − low-pass(f1); torch.sinc(x) = sin(πx)/(πx)
        band_pass = 2 * f2 * torch.sinc(2 * f2 * self.n) - 2 * f1 * torch.sinc(2 * f1 * self.n)  # (F, taps)
        return band_pass * self.window  # (F, taps)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        length = wave.shape[-1]
        n_fft = 1 << (length + self.n_taps - 2).bit_length()  # power of two ≥ full convolution length
        half = (self.n_taps - 1) // 2
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spectrum = torch.fft.rfft(wave.float(), n=n_fft).unsqueeze(1)  # (B, 1, K)
            response = torch.fft.rfft(self.filters(), n=n_fft)  # (F, K)
            full = torch.fft.irfft(spectrum * response, n=n_fft)  # (B, F, n_fft) linear convolution
            return full[..., half : half + length]  # (B, F, L) "same" part; filters are symmetric
