"""Audio: play a clip's score on the General-MIDI sampler, add the singer, and mix like a recording.

MIDI parts and drums are played from :class:`~jetatag.synth.notebank.NoteBank` (notes of the ``TimGM6mb.sf2``
soundfont that ships inside ``pretty_midi``, rendered once by ``midirenderer``), scaled by velocity and part
volume as the synthesiser scales them, then the singer joins and one room reverberates both. The mix jitters
what a shortcut classifier could read off one number: per-part levels, vocal level, an EQ tilt, a low cut,
saturation for loud clips, the output level and a noise floor.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from jetatag.synth.notebank import RENDER_VELOCITY, SAMPLE_RATE, NoteBank
from jetatag.synth.score import Score
from jetatag.synth.styles import ClipPlan
from jetatag.synth.voice import sing

ROLE_GAIN = {"lead": 0.85, "harmony": 0.6, "bass": 0.75, "extra": 0.5}
"""Mean part volume (as a MIDI CC7 value / 127) of each role before jitter."""

LEVEL = {"loud": (0.7, 0.98), "normal": (0.35, 0.9), "quiet": (0.12, 0.5)}
"""Peak output level range per dynamics (overlapping, so level alone does not give the tag away)."""

TILT = {"loud": 0.2, "normal": 0.0, "quiet": -0.35}
"""Mean log gain of the treble above ~1.2 kHz per dynamics (jittered by a standard deviation of 0.35)."""

DRIVE = {"loud": (1.2, 3.0), "normal": (0.3, 1.5), "quiet": (0.1, 0.8)}
"""Soft-clipper drive range per dynamics (overlapping: saturation alone does not give ``loud`` away)."""


def _add(out: np.ndarray, start_s: float, wave: np.ndarray, gain: float) -> None:
    """Mix ``wave * gain`` into ``out`` from ``start_s`` on (cut at the end of ``out``)."""
    i = int(round(start_s * SAMPLE_RATE))
    part = wave[: max(0, len(out) - i)]
    out[i : i + len(part)] += part * np.float32(gain)


def play(score: Score, gains: np.ndarray, drum_gain: float, bank: NoteBank) -> np.ndarray:
    """The score's MIDI parts (``gains``: volume 0..1 per part) and drums as float32 mono, ``seconds * 16000`` long.

    Loudness follows the synthesiser's law, amplitude ~ (velocity / 127)^2 * (volume)^2 (40 log10 in dB).
    """
    out = np.zeros(int(round(score.seconds * SAMPLE_RATE)), np.float32)
    for track, volume in zip(score.tracks, gains, strict=True):
        for start, end, pitch, velocity in track.notes:
            wave = bank.note(track.instrument, int(pitch), max(1, int(round((end - start) * SAMPLE_RATE))))
            _add(out, start, wave, (volume * velocity / RENDER_VELOCITY) ** 2)
    for start, _, key, velocity in score.drums:
        _add(out, start, bank.hit(int(key)), (drum_gain * velocity / RENDER_VELOCITY) ** 2)
    return out


def _room(x: np.ndarray, reverb: int, rng: np.random.Generator) -> np.ndarray:
    """Reverberate ``x`` with an exponentially decaying noise impulse response (RT60 from the CC91 send)."""
    rt60 = 0.2 + 1.8 * reverb / 127.0
    length = int(min(rt60, 1.2) * SAMPLE_RATE)
    decay = np.exp(-6.9 * np.arange(length) / (rt60 * SAMPLE_RATE))
    ir = rng.normal(0.0, 1.0, length) * decay
    ir *= 0.35 * reverb / 127.0 / np.sqrt(np.sum(ir**2))
    ir[0] += 1.0  # dry path
    return signal.oaconvolve(x, ir.astype(np.float32))[: len(x)]  # float32 FFTs: half the cost of float64


def _effect(x: np.ndarray, effect: str, rng: np.random.Generator) -> np.ndarray:
    """Apply a studio effect to the mix: ring modulation, bit crushing or a stutter (repeated slices)."""
    if effect == "none":
        return x
    if effect == "ringmod":  # metallic, inharmonic sidebands
        carrier = np.sin(2 * np.pi * rng.uniform(40.0, 600.0) * np.arange(len(x)) / SAMPLE_RATE)
        depth = rng.uniform(0.5, 0.9)
        return x * (1.0 - depth + depth * carrier)
    if effect == "bitcrush":  # sample-and-hold aliasing and coarse quantisation
        hold = int(rng.integers(2, 7))
        steps = 2 ** int(rng.integers(3, 7)) / (np.max(np.abs(x)) + 1e-9)
        return np.round(np.repeat(x[::hold], hold)[: len(x)] * steps) / steps
    if effect == "stutter":  # about one short slice per second repeated 2-4 times, like a glitching player
        out = x.copy()
        size = int(rng.uniform(0.04, 0.2) * SAMPLE_RATE)
        for start in rng.integers(0, max(1, len(x) - 5 * size), size=max(1, len(x) // SAMPLE_RATE)):
            repeats = int(rng.integers(2, 5))
            out[start : start + repeats * size] = np.tile(x[start : start + size], repeats)[: len(x) - start]
        return out
    raise ValueError(f"unknown effect {effect!r}")


def render(score: Score, plan: ClipPlan, bank: NoteBank, rng: np.random.Generator) -> np.ndarray:
    """Render and mix one clip: float32 mono at :data:`SAMPLE_RATE`, ``round(score.seconds * 16000)`` samples."""
    n = int(round(score.seconds * SAMPLE_RATE))
    gains = np.array([ROLE_GAIN[t.role] for t in score.tracks]) * np.exp(rng.normal(0.0, 0.25, len(score.tracks)))
    drum_gain = 0.8 * float(np.exp(rng.normal(0.0, 0.25)))
    music = play(score, np.clip(gains, 0.05, 1.0), min(drum_gain, 1.0), bank)
    music_rms = float(np.sqrt(np.mean(music**2))) + 1e-6
    if plan.vocal != "none" and len(score.vocal):
        voice = sing(score.vocal, plan.vocal, score.seconds, SAMPLE_RATE, rng)
        level_db = rng.uniform(-2.0, 6.0) + (3.0 if plan.vocal in ("opera_female", "opera_male", "choir") else 0.0)
        music = music + voice * (music_rms / 0.1 * 10 ** (level_db / 20)) if music_rms > 1e-4 else music + voice
    music = _room(music, score.reverb, rng)
    music = _effect(music, plan.track.effect, rng)
    # EQ: a random tilt around 1.2 kHz (soft playing sounds darker) and a random low cut, like different
    # recordings and masterings.
    pole = np.float32(np.exp(-2 * np.pi * 1200.0 / SAMPLE_RATE))
    low = signal.lfilter(np.array([1 - pole]), np.array([1, -pole]), music)  # float32 coefficients keep float32
    music = low + np.float32(np.exp(rng.normal(TILT[plan.track.dynamics], 0.35))) * (music - low)
    low_cut = signal.butter(1, rng.uniform(20.0, 150.0), "highpass", fs=SAMPLE_RATE, output="sos")
    music = signal.sosfilt(low_cut.astype(np.float32), music)
    # Mastering: a soft clipper, driven harder on loud clips (denser, less dynamic) but used on others too.
    peak = float(np.max(np.abs(music))) + 1e-9
    drive = rng.uniform(*DRIVE[plan.track.dynamics])
    music = np.tanh(np.float32(drive / peak) * music) / np.float32(np.tanh(drive))
    level = rng.uniform(*LEVEL[plan.track.dynamics])
    noise = 10 ** (rng.uniform(-80.0, -55.0) / 20) * rng.standard_normal(n, dtype=np.float32)  # below the peak
    return np.clip(level * (music + noise), -1.0, 1.0).astype(np.float32)
