"""A sampler over the General-MIDI soundfont: each instrument's notes rendered once, then placed in numpy.

midirenderer synthesises 48 kHz stereo at about 4 ms of CPU per second of audio whatever is playing, so
rendering every clip's MIDI would cost 40 ms per 10-s clip before any note. SoundFont voices add up
linearly, so the generator instead renders each instrument once -- a note every :data:`PITCH_STEP`
semitones across its register, held :data:`HOLD_S` then released -- keeps those renderings at 16 kHz mono
in a cache folder, and plays a note by taking the nearest rendering, shifting it by at most one semitone
(resampling, as a SoundFont does between the keys of one sample), cutting it at the note's end with that
rendering's own release time and scaling it by velocity and part volume the way the synthesiser would.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import logging
import os
from pathlib import Path

import midirenderer
import numpy as np
import pretty_midi
import soundfile as sf
import soxr

from jetatag.errors import StageError
from jetatag.io import atomic_open
from jetatag.synth.instruments import INSTRUMENTS

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Rate of the stored notes and of the generated clips (MTAT's)."""

RENDER_RATE = 48000
"""midirenderer's fixed output rate."""

PITCH_STEP = 3
"""Semitones between rendered pitches: every note is at most one semitone from a rendering."""

HOLD_S = 2.0
"""Seconds each rendered note is held before its note-off; longer notes loop the last :data:`LOOP_S`."""

TAIL_S = 1.0
"""Seconds kept after the note-off: the release that sets how fast a shorter note dies away."""

SLOT_MARGIN_S = 0.5
"""Silence between the end of one kept rendering and the next note in the same MIDI file."""

LOOP_S = 0.5
"""Length of the crossfaded loop that extends a note held longer than :data:`HOLD_S`."""

DRUM_NOTES = range(35, 82)
"""General-MIDI percussion keys (channel 10), each rendered at its own key."""

DRUM_HOLD_S, DRUM_KEEP_S = 0.25, 1.5
"""Drum hits: note length when rendered and seconds kept (a crash rings about that long)."""

DRUMS = "drums"
"""Name of the drum kit among the bank's parts."""

RENDER_VELOCITY = 100
"""Velocity of the rendered notes; others are scaled by (velocity / 100)^2, the synthesiser's 40 log10 law."""

BANK_VERSION = 1
"""Bumped whenever the rendering recipe changes, so that an old cache is never read."""


SOUNDFONT = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
"""The TimGM6mb General-MIDI soundfont shipped with pretty_midi."""


def soundfont_bytes() -> bytes:
    """Bytes of :data:`SOUNDFONT`."""
    if not SOUNDFONT.is_file():
        raise StageError(f"{SOUNDFONT}: the TimGM6mb soundfont of the pretty_midi package is missing; reinstall it")
    return SOUNDFONT.read_bytes()


@functools.cache
def bank_folder_name() -> str:
    """Cache folder name of this bank recipe, renderer version and soundfont (hashed once per process)."""
    digest = hashlib.sha256(SOUNDFONT.read_bytes()).hexdigest()[:12] if SOUNDFONT.is_file() else "missing"
    renderer = importlib.metadata.version("midirenderer")
    return f"notebank-v{BANK_VERSION}-midirenderer{renderer}-{digest}"  # a new renderer or soundfont: new notes


def cache_root() -> Path:
    """Folder of the rendered notes: ``$JETATAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/jetatag``, else ``~/.cache``."""
    if os.environ.get("JETATAG_CACHE_DIR"):
        return Path(os.environ["JETATAG_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jetatag"


def rendered_pitches(low: int, high: int) -> np.ndarray:
    """Pitches rendered for a register ``low..high``: every :data:`PITCH_STEP` semitones, one beyond each end."""
    return np.arange(low - 1, high + PITCH_STEP, PITCH_STEP)


def _render_slots(
    font: bytes, program: int, is_drum: bool, pitches: np.ndarray, hold_s: float, slot_s: float
) -> np.ndarray:
    """One note per pitch, each in its own ``slot_s`` slot of one MIDI file -> (n_slots * slot,) 16 kHz mono."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    part = pretty_midi.Instrument(program=program, is_drum=is_drum)
    part.control_changes += [pretty_midi.ControlChange(cc, 0, 0.0) for cc in (91, 93)]  # dry: no reverb, no chorus
    part.control_changes.append(pretty_midi.ControlChange(7, 127, 0.0))
    for k, pitch in enumerate(pitches):
        start = k * slot_s
        part.notes.append(pretty_midi.Note(RENDER_VELOCITY, int(pitch), start, start + hold_s))
    part.control_changes.append(pretty_midi.ControlChange(7, 127, len(pitches) * slot_s))  # render to the end
    midi.instruments.append(part)
    buffer = io.BytesIO()
    midi.write(buffer)
    wave, rate = sf.read(io.BytesIO(midirenderer.render_wave_from(font, buffer.getvalue())), dtype="float32")
    if rate != RENDER_RATE:
        raise StageError(f"midirenderer returned {rate} Hz audio, expected {RENDER_RATE}")
    mono = wave.mean(axis=1) if wave.ndim == 2 else wave
    out = soxr.resample(mono, RENDER_RATE, SAMPLE_RATE)
    return np.pad(out, (0, max(0, int(len(pitches) * slot_s * SAMPLE_RATE) - len(out))))


def render_notes(font: bytes, program: int | None, pitches: np.ndarray, hold_s: float, keep_s: float) -> np.ndarray:
    """Render ``pitches`` of GM ``program`` (None: the drum kit) -> (n_pitches, keep_s * 16000) float32."""
    slot_s = keep_s + SLOT_MARGIN_S
    slot, keep = int(slot_s * SAMPLE_RATE), int(keep_s * SAMPLE_RATE)
    audio = _render_slots(font, program or 0, program is None, pitches, hold_s, slot_s)
    return np.stack([audio[k * slot : k * slot + keep] for k in range(len(pitches))])


def release_samples(note: np.ndarray, hold: int, floor_db: float = 40.0) -> int:
    """Samples after the note-off at ``hold`` until the note is ``floor_db`` below its level just before it."""
    frame = SAMPLE_RATE // 100  # 10-ms RMS frames
    before = np.sqrt(np.mean(note[hold - 5 * frame : hold] ** 2)) + 1e-9
    tail = note[hold : hold + (len(note) - hold) // frame * frame].reshape(-1, frame)
    below = np.flatnonzero(np.sqrt(np.mean(tail**2, axis=1)) < before * 10 ** (-floor_db / 20))
    return int((below[0] + 1) * frame) if below.size else tail.size


class NoteBank:
    """Rendered notes of every instrument and of the drum kit, loaded from (or rendered into) the cache."""

    def __init__(self, root: Path | None = None) -> None:
        self._font: bytes | None = None
        self._instruments: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._kit: np.ndarray | None = None
        self._pitched: dict[tuple[str, int], tuple[np.ndarray, int, int]] = {}
        self.folder = (root or cache_root()) / bank_folder_name()

    @property
    def font(self) -> bytes:
        if self._font is None:
            self._font = soundfont_bytes()
        return self._font

    def _load(self, name: str, program: int | None, pitches: np.ndarray, hold_s: float, keep_s: float) -> np.ndarray:
        """The cached renderings ``name`` (float32 (n_pitches, samples)), rendered and saved first if missing.

        A cache file that cannot be read or has the wrong shape is rendered again and replaced; a folder that
        cannot be written leaves the notes in memory only. Both are warnings, never a failed mirror.
        """
        path = self.folder / f"{name}.npy"
        shape = (len(pitches), int(keep_s * SAMPLE_RATE))
        if path.is_file():
            try:
                cached = np.load(path)
                if cached.shape == shape:
                    return cached.astype(np.float32)
                problem = f"shape {cached.shape}, expected {shape}"
            except (OSError, ValueError) as err:
                problem = str(err)
            log.warning("%s: unreadable note-bank file (%s); rendering it again", path, problem)
        notes = render_notes(self.font, program, pitches, hold_s, keep_s).astype(np.float16)
        try:
            with atomic_open(path, "wb") as handle:
                np.save(handle, notes)
        except OSError as err:
            hint = "set JETATAG_CACHE_DIR to a writable folder"
            log.warning("%s: cannot write the note-bank cache (%s); %s", path, err, hint)
        return notes.astype(np.float32)  # float16 like the file: a later load returns the same notes

    @staticmethod
    def _file_name(part: str) -> str:
        """Cache file stem of ``part`` (an instrument name or :data:`DRUMS`): program and rendered pitches."""
        if part == DRUMS:
            return DRUMS
        inst = INSTRUMENTS[part]
        pitches = rendered_pitches(inst.low, inst.high)
        return f"{inst.program:03d}-{pitches[0]}-{pitches[-1]}"

    def missing(self) -> list[str]:
        """Parts (instrument names, :data:`DRUMS`) not rendered into the cache yet."""
        parts = [DRUMS, *INSTRUMENTS]
        return [part for part in parts if not (self.folder / f"{self._file_name(part)}.npy").is_file()]

    def load(self, part: str) -> None:
        """Load ``part`` into this bank, rendering it into the cache first when it is missing."""
        if part == DRUMS:
            self.drums()
        else:
            self.instrument(part)

    def instrument(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Instrument ``name``: (rendered pitches, renderings (n, samples), release samples per rendering)."""
        if name not in self._instruments:
            inst = INSTRUMENTS[name]
            pitches = rendered_pitches(inst.low, inst.high)
            notes = self._load(self._file_name(name), inst.program, pitches, HOLD_S, HOLD_S + TAIL_S)
            hold = int(HOLD_S * SAMPLE_RATE)
            self._instruments[name] = pitches, notes, np.array([release_samples(n, hold) for n in notes])
        return self._instruments[name]

    def drums(self) -> np.ndarray:
        """The drum kit: (len(DRUM_NOTES), samples) one-shot hits, indexed by key - 35."""
        if self._kit is None:
            self._kit = self._load(DRUMS, None, np.asarray(DRUM_NOTES), DRUM_HOLD_S, DRUM_KEEP_S)
        return self._kit

    def _shifted(self, name: str, pitch: int) -> tuple[np.ndarray, int, int]:
        """Instrument ``name`` at ``pitch``: the nearest rendering shifted there, its held and release samples."""
        if (name, pitch) not in self._pitched:
            pitches, notes, releases = self.instrument(name)
            k = int(np.argmin(np.abs(pitches - pitch)))
            ratio = 2.0 ** ((pitch - int(pitches[k])) / 12)  # playing `ratio` times faster raises the pitch
            wave = notes[k] if ratio == 1.0 else soxr.resample(notes[k], SAMPLE_RATE * ratio, SAMPLE_RATE)
            self._pitched[name, pitch] = wave, int(HOLD_S * SAMPLE_RATE / ratio), int(releases[k] / ratio)
        return self._pitched[name, pitch]

    def note(self, name: str, pitch: int, n_samples: int) -> np.ndarray:
        """Instrument ``name`` playing ``pitch`` for ``n_samples`` then releasing, at velocity 100, full volume."""
        wave, hold, release = self._shifted(name, pitch)
        if n_samples > hold:
            wave = _extend(wave[:hold], n_samples + release)
        length = min(n_samples + release, len(wave))
        out = wave[:length].copy()
        fade = out[min(n_samples, length) :]
        fade *= np.exp(np.linspace(0.0, -4.6, len(fade), dtype=np.float32))  # -40 dB over the release
        return out

    def hit(self, key: int) -> np.ndarray:
        """One drum hit at velocity 100 (keys outside the GM kit are silent)."""
        kit = self.drums()
        return kit[key - DRUM_NOTES.start] if key in DRUM_NOTES else kit[:0, 0]


def _extend(held: np.ndarray, length: int) -> np.ndarray:
    """``held`` continued to ``length`` samples by repeating its last :data:`LOOP_S` with crossfades."""
    loop = int(LOOP_S * SAMPLE_RATE)
    fade = loop // 4
    segment = held[-loop:]
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = [held[:-fade]]
    total = len(held) - fade
    while total < length:
        joined = segment.copy()
        joined[:fade] = segment[:fade] * ramp + segment[-fade:] * ramp[::-1]  # crossfade the seam
        out.append(joined[:-fade])
        total += loop - fade
    return np.concatenate(out)[:length]
