"""A small formant singer: General MIDI has no singing voice, so vocals are synthesised in numpy.

Source-filter model: a glottal impulse train on the sung pitch contour (portamento, vibrato, slow pitch
drift), low-passed for the glottal spectral tilt, plus breath noise; then a cascade of formant resonators
per vowel (Klatt-style two-pole sections), one vowel per sung note; short noise bursts for consonants.
A choir is several such sources (detuned, doubled at harmony intervals) through one shared vowel filter;
opera adds wide vibrato and the singer's formant near 3 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

CONTROL_RATE = 400
"""Hz at which pitch and loudness contours are computed before interpolation to audio rate."""

VOWEL_FORMANTS: dict[str, tuple[tuple[float, float], ...]] = {
    # (frequency Hz, bandwidth Hz) of F1..F3 for an adult male voice; other voices scale the frequencies.
    "a": ((730, 90), (1090, 110), (2440, 160)),
    "e": ((530, 60), (1840, 100), (2480, 150)),
    "i": ((300, 50), (2200, 100), (2950, 160)),
    "o": ((570, 70), (840, 80), (2410, 150)),
    "u": ((330, 60), (870, 80), (2240, 140)),
}


@dataclass(frozen=True)
class VoiceType:
    """How one kind of singer sounds."""

    formant_scale: float  # multiplies the male formant frequencies
    vibrato_depth: tuple[float, float]  # semitones (range drawn per clip)
    vibrato_rate: tuple[float, float]  # Hz
    voices: int  # sources sharing the vowel filter
    intervals: tuple[int, ...]  # semitone offsets of the extra voices below the sung line
    singer_formant: bool  # add the ~3 kHz cluster of trained (operatic) voices
    breath: float  # breath-noise level relative to the pulses
    vowels: str  # vowels this singer uses


VOICE_TYPES: dict[str, VoiceType] = {
    "male": VoiceType(1.0, (0.05, 0.25), (4.5, 6.0), 1, (), False, 0.08, "aeiou"),
    "female": VoiceType(1.17, (0.05, 0.3), (4.5, 6.0), 1, (), False, 0.1, "aeiou"),
    "opera_female": VoiceType(1.2, (0.5, 0.9), (5.5, 6.8), 1, (), True, 0.03, "aoe"),
    "opera_male": VoiceType(1.02, (0.4, 0.8), (5.2, 6.5), 1, (), True, 0.03, "aoe"),
    "choir": VoiceType(1.1, (0.1, 0.35), (4.5, 6.0), 5, (0, -5, -9, -12, -17), False, 0.06, "aou"),
    "chant": VoiceType(0.97, (0.0, 0.08), (4.0, 5.0), 4, (0, 0, -12, -5), False, 0.05, "ou"),
}


def _resonator_sos(freq: float, bw: float, sr: int) -> np.ndarray:
    """Two-pole resonator with unit gain at DC, as one second-order section ``[b0 b1 b2 a0 a1 a2]``."""
    r = np.exp(-np.pi * bw / sr)
    b1, b2 = 2 * r * np.cos(2 * np.pi * freq / sr), -(r**2)
    return np.array([1.0 - b1 - b2, 0.0, 0.0, 1.0, -b1, -b2])


def _vowel_sos(vowel: str, kind: VoiceType, sr: int) -> np.ndarray:
    sections = [_resonator_sos(f * kind.formant_scale, bw, sr) for f, bw in VOWEL_FORMANTS[vowel]]
    if kind.singer_formant:
        sections.append(_resonator_sos(2900.0 * kind.formant_scale**0.3, 250.0, sr))
    return np.stack(sections)


def _glottal_pulses(midi: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited-ish impulse train on a per-sample MIDI pitch contour (fractional placement by 2 taps)."""
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    phase = np.cumsum(f0 / sr) + rng.random()
    wraps = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1  # first sample after each period boundary
    out = np.zeros(len(midi) + 1)
    frac = (phase[wraps] - np.floor(phase[wraps])) / (f0[wraps] / sr)  # how far past the boundary, in samples
    frac = np.clip(frac, 0.0, 1.0)
    out[wraps - 1] += frac  # indices are unique: a period is longer than two samples
    out[wraps] += 1.0 - frac
    return out[: len(midi)]


def sing(notes: np.ndarray, kind_name: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Render a sung line.

    Parameters
    ----------
    notes : np.ndarray [shape=(n, 4)]
        ``start_s, end_s, midi_pitch, velocity`` of each sung note (non-overlapping, sorted).
    kind_name : str
        A :data:`VOICE_TYPES` key.
    seconds : float > 0
        Output length.
    sr : int > 0
        Sample rate.

    Returns
    -------
    np.ndarray [shape=(round(seconds * sr),)], float32, RMS about 0.1 where the voice sings.
    """
    kind = VOICE_TYPES[kind_name]
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float32)
    if len(notes) == 0:
        return out
    # Control-rate contours (pitch and loudness change slowly), interpolated to audio rate at the end.
    tc = np.arange(int(seconds * CONTROL_RATE) + 2) / CONTROL_RATE
    idx = np.clip(np.searchsorted(notes[:, 0], tc, side="right") - 1, 0, len(notes) - 1)
    start, end, pitch, vel = notes[idx, 0], notes[idx, 1], notes[idx, 2], notes[idx, 3]
    attack = np.clip((tc - start) / 0.05, 0.0, 1.0)
    release = np.clip((end - tc) / 0.08, 0.0, 1.0)
    amp_c = ((tc >= start) & (tc < end)) * np.minimum(attack, release) * (vel / 100.0) ** 1.5
    # Pitch: portamento (one-pole smoothing), vibrato growing within each note, slow random drift.
    glide = np.exp(-1.0 / (0.035 * CONTROL_RATE))
    midi_c = signal.lfilter([1 - glide], [1, -glide], pitch, zi=[pitch[0] * glide])[0]
    depth = rng.uniform(*kind.vibrato_depth)
    rate = rng.uniform(*kind.vibrato_rate)
    vib_env = np.clip((tc - start) / 0.35, 0.0, 1.0)
    drift = signal.lfilter([1.0], [1, -0.95], rng.normal(0.0, 1.0, len(tc)))
    midi_c += depth * vib_env * np.sin(2 * np.pi * rate * tc + rng.uniform(0, 2 * np.pi))
    midi_c += 0.1 * drift / (np.std(drift) + 1e-9)
    t = np.arange(n) / sr
    midi = np.interp(t, tc, midi_c)
    amp = np.interp(t, tc, amp_c)
    inside = amp > 0
    # Sources: the sung line plus harmony/doubling voices, each slightly detuned and with its own vibrato.
    source = _glottal_pulses(midi, sr, rng)
    for interval in kind.intervals[1 : kind.voices]:
        wobble = depth * 0.3 * np.sin(2 * np.pi * rng.uniform(4.0, 6.5) * tc + rng.uniform(0, 2 * np.pi))
        source += 0.8 * _glottal_pulses(np.interp(t, tc, midi_c + interval + rng.normal(0.0, 0.12) + wobble), sr, rng)
    # Spectral tilt of glottal flow plus lip radiation (-6 dB/octave above ~300 Hz), breath noise, loudness.
    tilt = np.float32(np.exp(-2 * np.pi * 300.0 / sr))
    source = signal.lfilter(np.array([1 - tilt]), np.array([1, -tilt]), source.astype(np.float32))  # float32 on
    source = source / (np.std(source[inside]) + 1e-9) + kind.breath * rng.standard_normal(n, dtype=np.float32)
    source *= amp.astype(np.float32)
    note_of_sample = np.clip(np.searchsorted(notes[:, 0], t, side="right") - 1, 0, len(notes) - 1)
    # Vowels: one per note. Each vowel's filter runs once over the source gated to that vowel's notes; the
    # gates switch where the loudness envelope is near zero, and the resonators ring on across the switch.
    vowels = rng.permutation(list(kind.vowels))[:3]
    note_vowel = rng.integers(0, len(vowels), size=len(notes))[note_of_sample]
    voiced = np.zeros(n, np.float32)
    for v, vowel in enumerate(vowels):
        gate = note_vowel == v
        if gate.any():
            sos = _vowel_sos(str(vowel), kind, sr).astype(np.float32)
            voiced += signal.sosfilt(sos, np.where(gate, source, np.float32(0.0)))
    # Consonants: short high-passed noise bursts at most note onsets (filtered together in one call).
    burst = int(0.03 * sr)
    onsets = (notes[:, 0] * sr).astype(int)
    onsets = onsets[(onsets + burst < n) & (rng.random(len(onsets)) < 0.6)]
    if len(onsets):
        hp = signal.butter(2, 3500.0, btype="highpass", fs=sr, output="sos")
        noise = signal.sosfilt(hp, rng.normal(0.0, 1.0, (len(onsets), burst)), axis=1) * np.hanning(burst)
        np.add.at(voiced, onsets[:, None] + np.arange(burst), (0.25 * noise).astype(np.float32))
    rms = np.sqrt(np.mean(voiced[inside] ** 2)) + 1e-9
    out[:] = voiced * (0.1 / rms)
    return out
