"""Harmonic STFT front end with learnable bandwidth.

M. Won, S. Chun, O. Nieto, X. Serra, "Data-driven harmonic filters for audio representation
learning", ICASSP 2020. A power STFT is filtered by triangular band-pass filters centred on a
half-semitone grid and on its integer multiples (harmonics), giving a (harmonic, pitch, time) tensor
whose channels line up the harmonics of each candidate fundamental.
"""

from __future__ import annotations

from typing import Any, Literal

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BW_ALPHA = 0.1079
BW_BETA = 24.7
"""Equivalent rectangular bandwidth ERB(f) = 0.1079·f + 24.7 Hz (Glasberg & Moore, as used by Won et al.)."""

AMIN = 1e-10
"""Floor on power before converting to dB (torchaudio's AmplitudeToDB default, used by Won et al.)."""


def harmonic_centres(*, sample_rate: int, n_harmonic: int, semitone_scale: int) -> np.ndarray:
    """Centre frequencies in Hz, harmonic-major: [shape=(n_harmonic, level)].

    The base grid runs from C1 in steps of 1/``semitone_scale`` semitone up to (excluding) the note
    nearest ``sample_rate / (2·n_harmonic)``, so the highest harmonic of the highest band stays under
    Nyquist; row k holds the base grid times k + 1. 16 kHz, 6 harmonics, scale 2: 128 bands, C1–E6.
    """
    low_midi = librosa.note_to_midi("C1")
    high_midi = librosa.note_to_midi(librosa.hz_to_note(sample_rate / (2 * n_harmonic)))
    level = (high_midi - low_midi) * semitone_scale
    if level < 1:
        raise ValueError(f"sample_rate {sample_rate} Hz leaves no band above C1 for {n_harmonic} harmonics")
    midi = low_midi + np.arange(level) / semitone_scale  # half-semitone grid, top note excluded
    base = librosa.midi_to_hz(midi)  # (level,)
    return np.outer(np.arange(1, n_harmonic + 1), base)  # (n_harmonic, level)


class HarmonicSTFT(nn.Module):
    """Harmonic filterbank on a power STFT, in dB: (B, samples) → (B, n_harmonic, level, frames).

    Parameters
    ----------
    sample_rate : int > 0
    n_fft : int > 0, FFT size (Hann window of ``win_length`` = ``n_fft`` unless given)
    win_length : int ≤ n_fft or None
    hop_length : int > 0
    n_harmonic : int ≥ 1, number of harmonic channels (1 = the fundamental only)
    semitone_scale : int ≥ 1, bands per semitone
    bw_Q : float > 0, initial quality factor; bandwidth = ERB(f) / Q
    learn_bw : "only_Q" makes Q a trainable parameter, "fix" keeps it constant (a buffer)

    Frames = 1 + samples // hop_length (centred, reflect-padded STFT). Each filter is a triangle of
    height 1 at its centre f_c, reaching 0 at f_c ± bandwidth / 2.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int | None = None,
        hop_length: int = 256,
        n_harmonic: int = 6,
        semitone_scale: int = 2,
        bw_Q: float = 1.0,  # Won et al.'s name for Q
        learn_bw: Literal["only_Q", "fix"] = "only_Q",
    ) -> None:
        super().__init__()
        if learn_bw not in ("only_Q", "fix"):
            raise ValueError(f"learn_bw must be 'only_Q' or 'fix', got {learn_bw!r}")
        self.n_fft = n_fft
        self.win_length = win_length or n_fft
        self.hop_length = hop_length
        self.n_harmonic = n_harmonic
        centres = harmonic_centres(sample_rate=sample_rate, n_harmonic=n_harmonic, semitone_scale=semitone_scale)
        self.level = centres.shape[1]
        # fixed tensors: analysis window, STFT bin frequencies, filter centres
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
        self.register_buffer("fft_hz", torch.tensor(fft_hz, dtype=torch.float32), persistent=False)
        self.register_buffer("f0", torch.tensor(centres.reshape(-1), dtype=torch.float32), persistent=False)
        # bandwidth: learnable quality factor Q
        q = torch.tensor([bw_Q], dtype=torch.float32)
        if learn_bw == "only_Q":
            self.bw_Q = nn.Parameter(q)
        else:
            self.register_buffer("bw_Q", q)

    def filterbank(self) -> torch.Tensor:
        """Triangular harmonic filters on the STFT bins: [shape=(n_fft // 2 + 1, n_harmonic · level)]."""
        bw = (BW_ALPHA * self.f0 + BW_BETA) / self.bw_Q  # (n_band,) bandwidth in Hz
        distance = (self.fft_hz.unsqueeze(1) - self.f0.unsqueeze(0)).abs()  # (n_bins, n_band)
        return F.relu(1.0 - 2.0 * distance / bw)  # (n_bins, n_band) triangle: 1 at f0, 0 at f0 ± bw/2

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        # computed in float32 even under autocast: the dB of small powers needs the precision
        with torch.autocast(device_type=wave.device.type, enabled=False):
            bands = self._bands(wave.float(), centred=True, power=True)  # (B, n_harmonic·level, T)
            bands = bands.unflatten(1, (self.n_harmonic, self.level))  # (B, n_harmonic, level, T)
            return 10.0 * torch.log10(bands.clamp(min=AMIN))  # (B, n_harmonic, level, T) dB

    def _bands(self, wave: torch.Tensor, *, centred: bool, power: bool) -> torch.Tensor:  # (B, L)
        """The harmonic filters applied to the STFT's power or magnitude: (B, n_harmonic · level, frames)."""
        spec = torch.stft(
            wave,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=centred,
            pad_mode="reflect",
            return_complex=True,
        )  # (B, n_bins, T)
        values = spec.real.square() + spec.imag.square() if power else spec.abs()  # (B, n_bins, T)
        filters = self.filterbank().t()  # (n_harmonic·level, n_bins)
        if values.device.type != "cpu":  # one batched matmul: the groups' matmuls and bin ranges cost a sync there
            return torch.matmul(filters, values)  # (B, n_harmonic·level, T)
        return BandedFilterbank.apply(filters, values)  # (B, n_harmonic·level, T)


BAND_GROUP = 16
"""Consecutive bands whose filters :class:`BandedFilterbank` applies as one matmul over their common bins."""


class BandedFilterbank(torch.autograd.Function):
    """filters @ values for (bands, bins) triangular filters and (B, bins, T) spectra: (B, bands, T), contiguous.

    Each filter is non-zero on a few bins around its centre (2 % of the 768 × 257 matrix at 16 kHz), so each
    group of :data:`BAND_GROUP` consecutive bands is one matmul over the bins where any of them is non-zero: 8 %
    of the dense product's multiplications. The groups follow the filters of each call, whose bandwidth is
    learnt. The filters' gradient is the dense one on the bins each group covers and zero elsewhere, where the
    triangles are clipped to zero and pass no gradient on. As one batched matmul, forward and filter gradient
    took 52 ms of a demo-width Harmonic-CNN training step (2-core AMD EPYC, batch 16, 80,000 samples). CPU only:
    on CUDA the bin ranges would cost a device sync per call and the groups 48 small kernels, for one cheap product.
    """

    @staticmethod
    def forward(ctx: Any, filters: torch.Tensor, values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        groups = band_groups(filters)
        ctx.save_for_backward(filters, values)
        ctx.groups = groups
        batch, _, frames = values.shape
        parts = [
            filters[start:end, low:high] @ values[:, low:high]  # (G, w) @ (B, w, T) → (B, G, T)
            if high > low
            else values.new_zeros(batch, end - start, frames)
            for start, end, low, high in groups
        ]
        return torch.cat(parts, dim=1)  # (B, bands, T)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        filters, values = ctx.saved_tensors
        needs_filters, needs_values = ctx.needs_input_grad
        grad_filters = torch.zeros_like(filters) if needs_filters else None  # (bands, bins)
        grad_values = torch.zeros_like(values) if needs_values else None  # (B, bins, T)
        for start, end, low, high in ctx.groups:
            if high == low:
                continue
            rows = grad[:, start:end]  # (B, G, T)
            if grad_filters is not None:
                grad_filters[start:end, low:high] = torch.bmm(rows, values[:, low:high].transpose(1, 2)).sum(dim=0)
            if grad_values is not None:
                grad_values[:, low:high] += filters[start:end, low:high].t() @ rows  # (w, G) @ (B, G, T)
        return grad_filters, grad_values


def band_groups(filters: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """(first band, end band, first bin, end bin) of each :data:`BAND_GROUP` consecutive bands of (bands, bins)
    ``filters``: the bins where any of them is non-zero (first bin = end bin when none is)."""
    nonzero = (filters.detach() > 0).cpu()  # (bands, bins)
    groups = []
    for start in range(0, nonzero.shape[0], BAND_GROUP):
        end = min(start + BAND_GROUP, nonzero.shape[0])
        bins = nonzero[start:end].any(dim=0).nonzero()  # (n, 1)
        low, high = (int(bins[0]), int(bins[-1]) + 1) if len(bins) else (0, 0)
        groups.append((start, end, low, high))
    return groups


A21_AMIN = 1e-5
"""kapre 0.3's ``MagnitudeToDecibel`` floor on its input before the log."""

A21_DYNAMIC_RANGE = 80.0
"""kapre 0.3's ``MagnitudeToDecibel`` range: values more than 80 dB under the example's maximum are raised to it."""


class A21HarmonicSTFT(HarmonicSTFT):
    """A21's harmonic front end as its kapre layers compute it: (B, samples) → (B, n_harmonic, level, frames).

    Three differences from Won et al.'s (A21 ``training/modules.py:93-95``, ``:136-146``):

    * the STFT is of ``n_fft - hop_length`` zeros then the clip, uncentred (kapre ``STFT(pad_begin=True)``),
      so frames = samples // hop_length, and its **magnitude** (not power) goes through the filters;
    * dB is 10·log10(max(x, 1e-5)), floored 80 dB under each example's maximum (kapre ``MagnitudeToDecibel``);
    * ``Reshape((-1, level, n_harmonic))`` on each frame's harmonic-major bands: channel j of row i holds band
      ``n_harmonic·i + j`` of the concatenated harmonics, so channels mix harmonics instead of stacking them.
    """

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        with torch.autocast(device_type=wave.device.type, enabled=False):
            padded = F.pad(wave.float(), (self.n_fft - self.hop_length, 0))  # (B, n_fft - hop + L)
            bands = self._bands(padded, centred=False, power=False)  # (B, n_harmonic·level, T), T = L // hop
            db = 10.0 * torch.log10(bands.clamp(min=A21_AMIN))  # (B, n_harmonic·level, T)
            floor = db.amax(dim=(1, 2), keepdim=True) - A21_DYNAMIC_RANGE  # (B, 1, 1) per example
            db = torch.maximum(db, floor)
            # the Reshape: frame t's 768 harmonic-major values read as (level, n_harmonic), row-major
            db = db.unflatten(1, (self.level, self.n_harmonic)).transpose(1, 2)  # (B, n_harmonic, level, T)
            return db.contiguous()  # the layout Harmonic-CNN's front-end BatchNorm runs fastest on
