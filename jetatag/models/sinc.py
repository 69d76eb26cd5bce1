"""Sinc band-pass filterbanks on raw waveforms: learnable (jetatag) or fixed as in the authors' A21 code.

M. Ravanelli, Y. Bengio, "Speaker recognition from raw waveform with SincNet", SLT 2018; used for
music as Music-SincNet (J. Lee, Shin, 2020). Each filter is an ideal band-pass (difference of two
windowed sinc low-passes) whose two cut-off frequencies are the only trainable parameters.
:class:`A21SincConv` is the A21 filterbank (jaehwlee/jetatag cb1c2ab, ``training/modules.py:364-450``):
computed once, designed for 22,050 Hz with a sinc lacking its π (FIDELITY.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import librosa
import numpy as np
import torch
from torch import nn

LOW_MEL = 80.0
"""Lowest filter centre of the mel-spaced initialisation, in (HTK) mel, as in the Music-SincNet code."""
A21_DESIGN_RATE = 22050
"""Sample rate A21's Music-SincNet designs its filters for (``model.py:192``), whatever the audio's rate."""
A21_MIN_HZ = 50.0
"""A21's floor added to each filter's low cut-off and to its bandwidth, in design Hz."""


def fft_convolve(wave: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """ "Same"-length convolution of (B, L) ``wave`` with symmetric (F, taps) ``filters`` through the FFT: (B, F, L).

    The paper's 256 filters × 2501 taps would cost ~38 GMAC per 59,049-sample crop as a direct convolution.
    """
    length, n_taps = wave.shape[-1], filters.shape[-1]
    n_fft = 1 << (length + n_taps - 2).bit_length()  # power of two ≥ full convolution length
    with torch.autocast(device_type=wave.device.type, enabled=False):
        spectrum = torch.fft.rfft(wave.float(), n=n_fft)  # (B, K)
        response = torch.fft.rfft(filters, n=n_fft)  # (F, K)
        # the full linear convolution's "same" part: filters are symmetric, so it starts half of them in
        return SameConvolution.apply(spectrum, response, n_fft, (n_taps - 1) // 2, length)  # (B, F, L)


class SameConvolution(torch.autograd.Function):
    """Samples ``start`` to ``start + length`` of irfft(spectrum · response): a filterbank's convolution, cut out.

    Computed clip by clip. For the whole batch at once the product of the spectra, the inverse transform, the
    zero-padded gradient and its spectra would each be a (B, F, n_fft) tensor, 1.07 GB at the paper's width
    (16 × 256 × 65,536): above the heap's 1 GiB ceiling (:mod:`jetatag.runtime`), so glibc maps each afresh
    in every step and the step page-faults through 4 GB. A clip's are 67 MB, reused from the heap. The
    transforms give the same bits either way.

    Autograd would take the filters' gradient through the full (B, F, n_fft) signal: pad the gradient with
    zeros, transform it, double the bins that stand for a conjugate pair (irfft's adjoint), multiply by the
    conjugate input spectrum and sum over the batch. Here the padding offset (a phase ramp) and the doubling
    apply to the (F, K) sum, accumulated clip by clip. The front end's forward and backward took 76 ms instead
    of 84 at the demo's width, 2.6 s instead of 3.1 at the paper's (2 cores, batch 16).

    The output is written clip by clip in channels-last memory, (B, L, F), which is the layout the body's
    :func:`~jetatag.models.common.as_rows` asks for: it then copies nothing. Writing it contiguous and
    transposing the whole batch afterwards cost one more pass over it (the front end's forward and backward
    at the demo's width: 488 → 441 ms on the 2-core AMD guest; the same bits).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, spectrum: torch.Tensor, response: torch.Tensor, n_fft: int, start: int, length: int
    ) -> torch.Tensor:
        ctx.save_for_backward(spectrum, response)
        ctx.n_fft, ctx.start = n_fft, start
        dtype = torch.promote_types(spectrum.dtype, response.dtype).to_real()  # float64 filters: a float64 output
        # (B, F, L) laid out as (B, L, F): the channels-last rows the extractor's body takes, with no copy between
        out = response.new_empty(spectrum.shape[0], length, response.shape[0], dtype=dtype).transpose(1, 2)
        for clip_spectrum, clip_out in zip(spectrum, out, strict=True):
            full = torch.fft.irfft(clip_spectrum * response, n=n_fft)  # (F, n_fft) linear convolution
            clip_out.copy_(full[:, start : start + length])
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        spectrum, response = ctx.saved_tensors  # (B, K), (F, K)
        bins = torch.arange(response.shape[-1], dtype=torch.float64, device=grad.device)
        paired = (bins > 0) & (bins <= ctx.n_fft - response.shape[-1])  # bins whose conjugate irfft also reads
        scale = torch.where(paired, 2.0, 1.0).double() / ctx.n_fft  # irfft's 1/n, twice for a conjugate pair
        # the gradient sits at `start` in the full signal: in frequency, a phase ramp
        ramp = torch.polar(scale, -2 * math.pi * ctx.start * bins / ctx.n_fft).to(response.dtype)  # (K,)
        needs_spectrum, needs_response = ctx.needs_input_grad[:2]
        grad_spectrum = torch.empty_like(spectrum) if needs_spectrum else None  # (B, K)
        grad_response = torch.zeros_like(response) if needs_response else None  # (F, K)
        conj_response = response.conj()
        for b, clip_grad in enumerate(zero_padded_clips(grad, ctx.n_fft)):
            clip_spectra = torch.fft.rfft(clip_grad)  # (F, K)
            if grad_spectrum is not None:
                grad_spectrum[b] = (clip_spectra * conj_response).sum(dim=0)
            if grad_response is not None:
                grad_response.addcmul_(clip_spectra, spectrum[b].conj())
        return (
            None if grad_spectrum is None else grad_spectrum * ramp,
            None if grad_response is None else grad_response * ramp,
            None,
            None,
            None,
        )


def zero_padded_clips(rows: torch.Tensor, n: int) -> Iterator[torch.Tensor]:
    """The clips of (B, F, L) ``rows`` one by one, each as a contiguous (F, n) tensor with zeros after its rows.

    The filterbank's gradient arrives channels-last, (B, L, F) in memory: each clip goes through an (F, L)
    buffer, which stays in cache, in torch's blocked transpose (``F.pad`` of the whole batch transposed it in one
    pass: 1.25 s at width 1.0, 16 × 256 × 59,049, against 0.82 s). The clips share one tensor, its zero tail
    written once: use each clip before taking the next.
    """
    channels, length = rows.shape[1:]
    padded = rows.new_zeros(channels, n)
    transposed = rows.new_empty(channels, length)
    for clip in rows:
        transposed.copy_(clip)  # (F, L) contiguous
        padded[:, :length].copy_(transposed)
        yield padded


def a21_filters(*, n_filters: int, n_taps: int, design_rate: int = A21_DESIGN_RATE) -> np.ndarray:
    """A21's fixed Music-SincNet filterbank, [shape=(n_filters, n_taps)], as its ``MusicSinc1D.__init__`` builds it.

    Band edges from the mel grid of :func:`mel_band_edges` at ``design_rate`` (first low edge 30 Hz, last high
    edge Nyquist − 100 Hz); low = edge + 50, high = low + |band| + 50. Each low-pass is 2·f/(10·rate) times
    sin(2·f·t)/(2·f·t) at t = k / rate, a sinc without π; the band-pass (difference of two low-passes) is scaled
    to a peak of 1 and Hamming-windowed. On audio at another rate a design frequency f lands at
    f · rate / (π · design_rate).
    """
    low_edge, high_edge = mel_band_edges(n_filters=n_filters, sample_rate=design_rate)
    low = np.abs(low_edge) + A21_MIN_HZ  # (F,) design Hz
    high = low + np.abs(high_edge - low_edge) + A21_MIN_HZ  # (F,)
    t = np.arange(1, (n_taps - 1) // 2 + 1) / design_rate  # (half,) seconds, right half of the taps

    def low_pass(cut: np.ndarray) -> np.ndarray:  # (F,) → (F, taps)
        right = np.sin(2 * cut[:, None] * t) / (2 * cut[:, None] * t)  # sinc without π
        sinc = np.concatenate([right[:, ::-1], np.ones((len(cut), 1)), right], axis=1)
        return 2 * cut[:, None] / (10 * design_rate) * sinc

    band_pass = low_pass(high) - low_pass(low)  # (F, taps)
    band_pass /= band_pass.max(axis=1, keepdims=True)
    return band_pass * np.hamming(n_taps)  # A21's 0.54 − 0.46·cos(2πn/N) at n = linspace(0, N, N) is this window


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
    Filters have unit gain in their pass band. The convolution runs through the FFT (:func:`fft_convolve`).
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
        return fft_convolve(wave, self.filters())  # (B, F, L)


class A21SincConv(nn.Module):
    """A21's sinc filterbank (:func:`a21_filters`) as a fixed convolution: (B, L) → (B, n_filters, L), "same" length.

    The filters are a buffer, not parameters: A21 computes them once in ``__init__`` and convolves them as
    a constant, so no gradient reaches them.
    """

    def __init__(self, n_filters: int, n_taps: int, *, design_rate: int = A21_DESIGN_RATE) -> None:
        super().__init__()
        if n_taps < 3 or n_taps % 2 == 0:
            raise ValueError(f"n_taps must be odd and >= 3, got {n_taps}")
        bank = a21_filters(n_filters=n_filters, n_taps=n_taps, design_rate=design_rate)
        self.register_buffer("bank", torch.tensor(bank, dtype=torch.float32), persistent=False)

    def filters(self) -> torch.Tensor:
        """The fixed impulse responses: [shape=(n_filters, n_taps)]."""
        return self.bank

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        return fft_convolve(wave, self.bank)  # (B, F, L)
