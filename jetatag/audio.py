"""Audio as the models see it: mono at a sample rate, optionally mu-law companded (segment stage, tagging tool)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

MU = 255
"""Mu of the mu-law companding of ``audio.mu_law`` (A21's ``preprocessing/preprocess.py``)."""


def decode_mono(path: Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to float32 mono at ``sample_rate`` Hz (channel mean, soxr high-quality resampling)."""
    wave, source_rate = sf.read(path, dtype="float32", always_2d=True)  # (n, channels)
    mono = wave.mean(axis=1, dtype=np.float32) if wave.shape[1] > 1 else wave[:, 0]  # (n,)
    if source_rate != sample_rate:
        mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def mu_law_compress(wave: np.ndarray, mu: int = MU) -> np.ndarray:
    """Compand float32 ``wave`` in place, sign(x)·ln(1 + mu|x|) / ln(1 + mu), unquantised as in A21.

    Unlike ``librosa.mu_compress`` it accepts |x| > 1 (a decoded mp3 may overshoot), as A21's numpy formula does.
    """
    magnitude = np.abs(wave)
    np.multiply(magnitude, np.float32(mu), out=magnitude)
    np.log1p(magnitude, out=magnitude)
    np.multiply(magnitude, np.float32(1.0 / np.log1p(mu)), out=magnitude)
    np.copysign(magnitude, wave, out=wave)
    return wave
