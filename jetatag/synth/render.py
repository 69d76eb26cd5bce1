"""Audio: render a clip's score with the General-MIDI soundfont, add the singer, and mix like a recording.

MIDI parts go through ``midirenderer`` (a SoundFont synthesiser with reverb/chorus; 48 kHz stereo) using the
``TimGM6mb.sf2`` soundfont that ships inside the ``pretty_midi`` package, then ``soxr`` to 16 kHz mono. The
mix jitters what a shortcut classifier could read off one number: per-part levels, vocal level, an EQ tilt,
a low cut, saturation for loud clips, the output level and a noise floor.
"""

from __future__ import annotations

import io
from pathlib import Path

import midirenderer
import numpy as np
import pretty_midi
import soundfile as sf
import soxr
from scipy import signal

from jetatag.errors import StageError
from jetatag.synth.score import Score, midi_bytes
from jetatag.synth.styles import ClipPlan
from jetatag.synth.voice import sing

SAMPLE_RATE = 16000
"""Sample rate of the generated clips (MTAT's)."""

ROLE_GAIN = {"lead": 0.85, "harmony": 0.6, "bass": 0.75, "extra": 0.5}
"""Mean CC7 volume of each role before jitter."""

LEVEL = {"loud": (0.7, 0.98), "normal": (0.35, 0.9), "quiet": (0.12, 0.5)}
"""Peak output level range per dynamics (overlapping, so level alone does not give the tag away)."""

TILT = {"loud": 0.2, "normal": 0.0, "quiet": -0.35}
"""Mean log gain of the treble above ~1.2 kHz per dynamics (jittered by a standard deviation of 0.35)."""

DRIVE = {"loud": (1.2, 3.0), "normal": (0.3, 1.5), "quiet": (0.1, 0.8)}
"""Soft-clipper drive range per dynamics (overlapping: saturation alone does not give ``loud`` away)."""


def soundfont_bytes() -> bytes:
    """Bytes of the TimGM6mb General-MIDI soundfont shipped with pretty_midi (read once per process)."""
    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise StageError(f"{path}: the TimGM6mb soundfont that pretty_midi ships is missing; reinstall pretty_midi")
    return path.read_bytes()


def _synthesise(midi: bytes, soundfont: bytes, n: int) -> np.ndarray:
    """MIDI bytes -> mono float32 at SAMPLE_RATE, exactly ``n`` samples."""
    wav, rate = sf.read(io.BytesIO(midirenderer.render_wave_from(soundfont, midi)), dtype="float32")
    mono = wav.mean(axis=1) if wav.ndim == 2 else wav
    out = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.pad(out, (0, max(0, n - len(out))))[:n]


def _room(x: np.ndarray, reverb: int, rng: np.random.Generator) -> np.ndarray:
    """Reverberate ``x`` with an exponentially decaying noise impulse response (RT60 from the CC91 send)."""
    rt60 = 0.2 + 1.8 * reverb / 127.0
    length = int(min(rt60, 1.2) * SAMPLE_RATE)
    decay = np.exp(-6.9 * np.arange(length) / (rt60 * SAMPLE_RATE))
    ir = rng.normal(0.0, 1.0, length) * decay
    ir *= 0.35 * reverb / 127.0 / np.sqrt(np.sum(ir**2))
    ir[0] += 1.0  # dry path
    return signal.oaconvolve(x, ir)[: len(x)]


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


def render(score: Score, plan: ClipPlan, soundfont: bytes, rng: np.random.Generator) -> np.ndarray:
    """Render and mix one clip: float32 mono at :data:`SAMPLE_RATE`, ``round(score.seconds * 16000)`` samples."""
    n = int(round(score.seconds * SAMPLE_RATE))
    gains = np.array([ROLE_GAIN[t.role] for t in score.tracks]) * np.exp(rng.normal(0.0, 0.25, len(score.tracks)))
    drum_gain = 0.8 * float(np.exp(rng.normal(0.0, 0.25)))
    music = _synthesise(midi_bytes(score, np.clip(gains, 0.05, 1.0), min(drum_gain, 1.0)), soundfont, n)
    music_rms = float(np.sqrt(np.mean(music**2))) + 1e-6
    if plan.vocal != "none" and len(score.vocal):
        voice = _room(sing(score.vocal, plan.vocal, score.seconds, SAMPLE_RATE, rng), score.reverb, rng)
        level_db = rng.uniform(-2.0, 6.0) + (3.0 if plan.vocal in ("opera_female", "opera_male", "choir") else 0.0)
        music = music + voice * (music_rms / 0.1 * 10 ** (level_db / 20)) if music_rms > 1e-4 else music + voice
    music = _effect(music, plan.track.effect, rng)
    # EQ: a random tilt around 1.2 kHz (soft playing sounds darker) and a random low cut, like different
    # recordings and masterings.
    pole = np.exp(-2 * np.pi * 1200.0 / SAMPLE_RATE)
    low = signal.lfilter([1 - pole], [1, -pole], music)
    music = low + np.exp(rng.normal(TILT[plan.track.dynamics], 0.35)) * (music - low)
    music = signal.sosfilt(signal.butter(1, rng.uniform(20.0, 150.0), "highpass", fs=SAMPLE_RATE, output="sos"), music)
    # Mastering: a soft clipper, driven harder on loud clips (denser, less dynamic) but used on others too.
    peak = float(np.max(np.abs(music))) + 1e-9
    drive = rng.uniform(*DRIVE[plan.track.dynamics])
    music = np.tanh(drive * music / peak) / np.tanh(drive)
    level = rng.uniform(*LEVEL[plan.track.dynamics])
    noise = 10 ** (rng.uniform(-80.0, -55.0) / 20) * rng.standard_normal(n, dtype=np.float32)  # below the peak
    return np.clip(level * (music + noise), -1.0, 1.0).astype(np.float32)
