"""Arrangement: turn a :class:`~jetatag.synth.styles.ClipPlan` into notes.

The score is bar-wise: a chord per bar from the track's progression; a harmony part that plays it as a
texture (pad, block chords, arpeggio, Alberti bass, guitar strum, power chords, jazz comping, drone); a bass
line; a melodic lead (a scale random walk that favours chord tones on strong beats, atonal leaps for *weird*);
an optional extra part; a 16-step drum pattern; and a vocal line on chord tones that the formant singer of
:mod:`jetatag.synth.voice` sings. Every note array is ``(n, 4)`` float64: ``start_s, end_s, pitch, velocity``.
Harmony and bass textures are small functions of one bar, looked up by name in :data:`HARMONY_TEXTURES` and
:data:`BASS_TEXTURES` (the names the styles table uses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from jetatag.synth.instruments import INSTRUMENTS, Instrument
from jetatag.synth.styles import SCALES, ClipPlan, PartPlan

VOCAL_RANGE = {
    "male": (47, 64),
    "female": (59, 76),
    "opera_female": (64, 84),
    "opera_male": (50, 69),
    "choir": (60, 74),
    "chant": (48, 57),
}
"""Vocal kind -> MIDI pitch range of the sung line (choir: the soprano line; the singer adds the others)."""

# General-MIDI percussion notes (channel 10).
_KICK, _RIM, _SNARE, _CLAP, _HAT, _PEDAL, _OPEN, _CRASH, _RIDE = 36, 37, 38, 39, 42, 44, 46, 49, 51
_BONGO_HI, _BONGO_LO, _CONGA_MUTE, _CONGA_HI, _CONGA_LO, _TAMB, _SHAKER = 60, 61, 62, 63, 64, 54, 70

DRUM_STEPS: dict[str, dict[int, tuple[int, ...]]] = {
    "rock": {_KICK: (0, 8, 10), _SNARE: (4, 12), _HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
    "metal": {_KICK: tuple(range(16)), _SNARE: (4, 12), _HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
    "pop": {_KICK: (0, 6, 8), _SNARE: (4, 12), _CLAP: (4, 12), _HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
    "techno": {_KICK: (0, 4, 8, 12), _OPEN: (2, 6, 10, 14), _CLAP: (4, 12), _HAT: tuple(range(16))},
    "breakbeat": {_KICK: (0, 10), _SNARE: (4, 7, 12, 15), _HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
    "downtempo": {_KICK: (0, 7), _SNARE: (8,), _RIM: (12,), _HAT: (0, 4, 8, 12, 14)},
    "jazz": {_RIDE: (0, 8), _HAT: (4, 6, 12, 14), _PEDAL: (4, 12), _KICK: (0,), _SNARE: (7, 15)},
    "country": {_KICK: (0, 8), _SNARE: (2, 4, 6, 10, 12, 14), _HAT: (0, 4, 8, 12)},
    "tabla": {_CONGA_LO: (0, 6, 10), _CONGA_MUTE: (2, 8, 12), _BONGO_HI: (3, 4, 7, 11, 14, 15), _BONGO_LO: (5, 13)},
    "hand": {_CONGA_LO: (0, 10), _CONGA_HI: (4, 6, 12), _SHAKER: (0, 2, 4, 6, 8, 10, 12, 14), _TAMB: (4, 12)},
}
"""Drum pattern -> GM drum note -> steps (sixteenths) of a 4/4 bar where it plays."""

_GHOSTS = {"breakbeat": (_SNARE, 0.15), "tabla": (_BONGO_HI, 0.25), "jazz": (_SNARE, 0.1), "hand": (_BONGO_HI, 0.15)}
"""Drum pattern -> (note, probability per sixteenth) of random ghost notes that make the groove less rigid."""

VELOCITY_OFFSET = {"loud": 18, "normal": 0, "quiet": -32}


@dataclass(frozen=True)
class Track:
    """One MIDI part: its instrument and notes."""

    instrument: str
    role: str
    notes: np.ndarray  # (n, 4) start_s, end_s, pitch, velocity


@dataclass(frozen=True)
class Score:
    """All notes of one clip: MIDI parts, drums (GM percussion notes) and the sung line."""

    seconds: float
    reverb: int  # CC91 send for every MIDI part
    tracks: tuple[Track, ...]
    drums: np.ndarray  # (n, 4)
    vocal: np.ndarray  # (n, 4)


class _Grid:
    """Timing of one clip: beats, bars, chords and pitch helpers for the scale."""

    def __init__(self, plan: ClipPlan, seconds: float, rng: np.random.Generator) -> None:
        track = plan.track
        self.beat = 60.0 / track.bpm
        self.bar = self.beat * track.beats_per_bar
        self.beats_per_bar = track.beats_per_bar
        self.offset = -float(rng.uniform(0.0, self.bar))  # the clip starts mid-bar, like a 29-s cut of a track
        self.n_bars = int(np.ceil((seconds - self.offset) / self.bar))
        self.scale = np.asarray(SCALES[track.scale])
        self.key = track.key
        self.swing = track.swing
        first = int(rng.integers(len(track.progression)))
        self.degrees = [track.progression[(first + b) % len(track.progression)] for b in range(self.n_bars)]

    def time(self, bar: int, beat: float) -> float:
        """Seconds of ``beat`` (may be fractional) in ``bar``, with off-beat eighths swung."""
        frac = beat % 1.0
        if abs(frac - 0.5) < 1e-9:
            beat += self.swing * 0.5
        return self.offset + bar * self.bar + beat * self.beat

    def pitch(self, degree: int, center: int) -> int:
        """MIDI pitch of scale ``degree`` (any integer; wraps octaves) in the octave nearest ``center``."""
        n = len(self.scale)
        pc = self.key + int(self.scale[degree % n]) + 12 * (degree // n)
        return int(pc + 12 * round((center - pc) / 12))

    def abs_pitch(self, degree: int, base: int) -> int:
        """MIDI pitch of scale ``degree`` counted from the tonic ``base`` (degrees past the scale go up octaves)."""
        n = len(self.scale)
        return int(base + self.scale[degree % n] + 12 * (degree // n))

    def chord(self, bar: int, size: int = 3) -> list[int]:
        """Scale degrees of the bar's chord, stacked in thirds (scale steps of two)."""
        root = self.degrees[bar]
        return [root + 2 * k for k in range(size)]


def _fit(pitch: int, low: int, high: int) -> int:
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


def _velocity(rng: np.random.Generator, base: float, n: int = 1) -> np.ndarray:
    return np.clip(base + rng.normal(0.0, 6.0, size=n), 12, 127)


@dataclass(frozen=True)
class _Bar:
    """One bar of an accompaniment part: its index, start and chord (scale degrees, and pitches for the part)."""

    index: int
    start: float
    chord: list[int]
    pitches: list[int]  # sorted, fitted to the instrument's register


Texture = Callable[[_Grid, Instrument, _Bar, int, float, np.random.Generator], list[tuple]]
"""Notes of one bar of a texture: ``(grid, instrument, bar, subdivisions per beat, velocity, rng) -> notes``."""


def _pad(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """The chord held for the whole bar."""
    return [(bar.start, bar.start + grid.bar * 0.98, p, vel) for p in bar.pitches]


def _chords(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """Block chords on every beat, or every other beat."""
    step = 2 if rng.random() < 0.5 else 1
    notes = []
    for beat in range(0, grid.beats_per_bar, step):
        t = grid.time(bar.index, beat)
        notes.extend((t, t + grid.beat * step * 0.85, p, vel) for p in bar.pitches)
    return notes


def _broken(order: list[int], grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float) -> list[tuple]:
    """The chord (plus the root an octave up) one note per subdivision, cycling through ``order``."""
    ext = [*bar.pitches, bar.pitches[0] + 12]
    dur = grid.beat / sub * (1.6 if not inst.sustained else 0.95)
    notes = []
    for k in range(grid.beats_per_bar * sub):
        t = grid.time(bar.index, k / sub)
        notes.append((t, t + dur, ext[order[k % len(order)] % len(ext)], vel))
    return notes


def _arpeggio(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """Up the chord in eighths, or up and down in sixteenths."""
    return _broken([0, 1, 2, 3] if sub == 2 else [0, 1, 2, 3, 2, 1], grid, inst, bar, sub, vel)


def _alberti(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """Alberti bass: low, high, middle, high."""
    return _broken([0, 2, 1, 2], grid, inst, bar, sub, vel)


def _strum(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """Guitar strums, alternating down (low to high) and softer up strokes."""
    pattern = [0.0, 1.0, 1.5, 2.5, 3.0, 3.5] if rng.random() < 0.5 else [0.0, 1.0, 2.0, 3.0]
    pitches = bar.pitches
    voiced = sorted({*pitches, pitches[0] + 12, _fit(pitches[0] - 12, inst.low, inst.high)})
    notes = []
    for j, beat in enumerate(b for b in pattern if b < grid.beats_per_bar):
        t = grid.time(bar.index, beat)
        down = j % 2 == 0
        for k, p in enumerate(voiced if down else voiced[::-1]):
            notes.append((t + 0.012 * k, t + grid.beat * 0.9, p, vel - (0 if down else 10)))
    return notes


def _power(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """Power chords (root and fifth, low in the register) on every subdivision, accents on the beat."""
    root = _fit(grid.pitch(bar.chord[0], inst.low + 7), inst.low, inst.low + 14)
    notes = []
    for k in range(grid.beats_per_bar * sub):
        t = grid.time(bar.index, k / sub)
        notes.extend((t, t + grid.beat / sub * 0.8, p, vel + (8 if k % sub == 0 else 0)) for p in (root, root + 7))
    return notes


def _comp(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """Jazz comping: short seventh chords off the beat."""
    notes = []
    for beat in (1.0, 2.5) if grid.beats_per_bar == 4 else (1.0,):
        t = grid.time(bar.index, beat)
        notes.extend((t, t + grid.beat * 0.6, p, vel) for p in bar.pitches)
    return notes


def _drone(grid: _Grid, inst: Instrument, bar: _Bar, sub: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """Tonic and fifth held (sustained instruments) or plucked tanpura-style, whatever the chord."""
    tonic = _fit(grid.pitch(0, inst.low + 6), inst.low, inst.low + 12)
    if inst.sustained:
        return [(bar.start, bar.start + grid.bar, p, vel - 10) for p in (tonic, tonic + 7)]
    notes = []
    for k, p in enumerate((tonic + 7, tonic + 12, tonic + 12, tonic)[: grid.beats_per_bar]):
        t = grid.time(bar.index, k)
        notes.append((t, t + grid.beat * 1.5, p, vel - 12))
    return notes


HARMONY_TEXTURES: dict[str, Texture] = {
    "pad": _pad,
    "chords": _chords,
    "arpeggio": _arpeggio,
    "alberti": _alberti,
    "strum": _strum,
    "power": _power,
    "comp": _comp,
    "drone": _drone,
}
"""Harmony texture name -> the notes of one bar of it."""


def _harmony(grid: _Grid, part: PartPlan, base_vel: float, rng: np.random.Generator) -> list[tuple]:
    """Notes of a harmony part playing each bar's chord as ``part.texture``."""
    inst = INSTRUMENTS[part.instrument]
    if part.texture not in HARMONY_TEXTURES:
        raise ValueError(f"unknown harmony texture {part.texture!r}")
    play = HARMONY_TEXTURES[part.texture]
    center = (inst.low + inst.high) // 2 - 4
    notes: list[tuple] = []
    sub = 4 if rng.random() < 0.35 else 2  # arpeggio / alberti / power: sixteenths or eighths
    for index in range(grid.n_bars):
        chord = grid.chord(index, 4 if part.texture == "comp" else 3)
        pitches = sorted(_fit(grid.pitch(d, center), inst.low, inst.high) for d in chord)
        bar = _Bar(index, grid.time(index, 0), chord, pitches)
        if inst.heavy:  # dense layered preset: one sustained chord tone per bar, whatever the texture
            notes.append((bar.start, bar.start + grid.bar * 0.98, pitches[index % 2], base_vel))
        else:
            notes.extend(play(grid, inst, bar, sub, base_vel, rng))
    return notes


BassLine = Callable[[_Grid, Instrument, int, int, float, np.random.Generator], list[tuple]]
"""Notes of one bar of a bass texture: ``(grid, instrument, bar, root pitch, velocity, rng) -> notes``."""


def _bass_root(grid: _Grid, inst: Instrument, bar: int) -> int:
    """Pitch of the root of ``bar``'s chord, low in the instrument's register."""
    return _fit(grid.pitch(grid.degrees[bar], inst.low + 8), inst.low, inst.low + 16)


def _root(grid: _Grid, inst: Instrument, bar: int, root: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """The root held for the bar."""
    return [(grid.time(bar, 0), grid.time(bar, 0) + grid.bar * 0.95, root, vel)]


def _pulse(grid: _Grid, inst: Instrument, bar: int, root: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """The root in eighths, the off-beats softer."""
    notes = []
    for k in range(grid.beats_per_bar):
        t = grid.time(bar, k)
        notes.append((t, t + grid.beat * 0.45, root, vel))
        t = grid.time(bar, k + 0.5)
        notes.append((t, t + grid.beat * 0.45, root, vel - 8))
    return notes


def _offbeat(grid: _Grid, inst: Instrument, bar: int, root: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """The root on the off-beat eighths only."""
    notes = []
    for k in range(grid.beats_per_bar):
        t = grid.time(bar, k + 0.5)
        notes.append((t, t + grid.beat * 0.45, root, vel))
    return notes


def _root_fifth(
    grid: _Grid, inst: Instrument, bar: int, root: int, vel: float, rng: np.random.Generator
) -> list[tuple]:
    """Root and fifth alternating on the beats."""
    notes = []
    for k in range(grid.beats_per_bar):
        t = grid.time(bar, k)
        notes.append((t, t + grid.beat * 0.8, root if k % 2 == 0 else root + 7, vel))
    return notes


def _walking(grid: _Grid, inst: Instrument, bar: int, root: int, vel: float, rng: np.random.Generator) -> list[tuple]:
    """A line from this bar's root towards the next bar's, one note per beat, with random steps."""
    target = _bass_root(grid, inst, (bar + 1) % grid.n_bars)
    bpb = grid.beats_per_bar
    line = np.linspace(root, target, bpb + 1)[:-1] + rng.integers(-2, 3, size=bpb)
    line[0] = root
    notes = []
    for k, p in enumerate(line):
        t = grid.time(bar, k)
        notes.append((t, t + grid.beat * 0.9, int(p), vel))
    return notes


BASS_TEXTURES: dict[str, BassLine] = {
    "root": _root,
    "pulse": _pulse,
    "offbeat": _offbeat,
    "root_fifth": _root_fifth,
    "walking": _walking,
}
"""Bass texture name -> the notes of one bar of it."""


def _bass(grid: _Grid, part: PartPlan, base_vel: float, rng: np.random.Generator) -> list[tuple]:
    """Notes of a bass line playing the chord roots as ``part.texture``."""
    if part.texture not in BASS_TEXTURES:
        raise ValueError(f"unknown bass texture {part.texture!r}")
    play = BASS_TEXTURES[part.texture]
    inst = INSTRUMENTS[part.instrument]
    notes: list[tuple] = []
    for bar in range(grid.n_bars):
        notes.extend(play(grid, inst, bar, _bass_root(grid, inst, bar), base_vel, rng))
    return notes


def _melody(
    grid: _Grid,
    low: int,
    high: int,
    density: float,
    sustained: bool,
    base_vel: float,
    atonal: bool,
    rng: np.random.Generator,
    phrase_rest: float = 0.3,
) -> list[tuple]:
    """A melodic line: scale random walk in [low, high], ~``density`` notes per beat, phrases with rests."""
    notes: list[tuple] = []
    n = len(grid.scale)
    center = (low + high) // 2
    base = grid.key + 12 * round((center - grid.key) / 12)  # the tonic nearest the middle of the range
    degree = 0
    # Note lengths in beats, chosen so the mean onset rate is about `density` per beat.
    lengths = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
    weights = np.exp(-np.abs(np.log(lengths * density)) * 2.5)
    weights /= weights.sum()
    steps, step_p = np.array([-3, -2, -1, 1, 2, 3]), np.array([0.05, 0.15, 0.3, 0.3, 0.15, 0.05])
    beat = 0.0
    total = grid.n_bars * grid.beats_per_bar
    phrase_end = 2 * grid.beats_per_bar
    while beat < total:
        length = float(lengths[rng.choice(len(lengths), p=weights)])
        if beat >= phrase_end:
            phrase_end = beat + 2 * grid.beats_per_bar
            if rng.random() < phrase_rest:
                beat += float(rng.choice([1.0, 2.0]))
                continue
        bar, in_bar = min(int(beat // grid.beats_per_bar), grid.n_bars - 1), beat % grid.beats_per_bar
        if atonal:
            pitch = int(rng.integers(low, high + 1))
        else:
            if in_bar % 1.0 == 0.0 and rng.random() < 0.6:  # strong beat: move to the nearest chord tone
                targets = [d + n * k for d in grid.chord(bar) for k in range(-3, 4)]
                degree = min(targets, key=lambda d: abs(d - degree) + rng.random() * 0.5)
            else:
                degree += int(rng.choice(steps, p=step_p))
            pitch = grid.abs_pitch(degree, base)
            if not low <= pitch <= high:  # fold back by an octave into the range
                degree -= n * int(np.sign(pitch - center))
                pitch = _fit(grid.abs_pitch(degree, base), low, high)
        t = grid.time(bar, in_bar)
        dur = length * grid.beat * (0.95 if sustained else 1.3)
        notes.append((t, t + dur, pitch, float(_velocity(rng, base_vel)[0])))
        beat += length
    return notes


def _drums(grid: _Grid, pattern: str, base_vel: float, rng: np.random.Generator) -> list[tuple]:
    """Drum hits of ``pattern`` for every bar (16 steps per 4/4 bar; 3/4 bars keep the first 12)."""
    steps = DRUM_STEPS[pattern]
    n_steps = 4 * grid.beats_per_bar
    ghost_note, ghost_p = _GHOSTS.get(pattern, (0, 0.0))
    notes: list[tuple] = []
    for bar in range(grid.n_bars):
        for note, where in steps.items():
            for s in where:
                if s < n_steps:
                    t = grid.time(bar, s / 4)
                    accent = 10 if s % 4 == 0 else -6 if s % 2 else 0
                    notes.append((t, t + 0.1, note, base_vel + accent))
        for s in range(n_steps):
            if ghost_p and rng.random() < ghost_p:
                t = grid.time(bar, s / 4)
                notes.append((t, t + 0.08, ghost_note, base_vel - 30))
        if bar % 4 == 0 and pattern in ("rock", "metal", "pop", "techno"):  # crashes ring long: one per 4 bars
            t = grid.time(bar, 0)
            notes.append((t, t + 0.5, _CRASH, base_vel))
    return notes


def _humanize(notes: list[tuple], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Array of notes with timing/velocity jitter, clipped to ``[0, seconds]``."""
    if not notes:
        return np.zeros((0, 4))
    arr = np.asarray(notes, dtype=np.float64)
    shift = rng.normal(0.0, 0.008, size=len(arr))
    arr[:, 0] += shift
    arr[:, 1] += shift
    arr[:, 3] = np.clip(np.round(arr[:, 3] + rng.normal(0.0, 5.0, size=len(arr))), 10, 127)
    arr[:, 0] = np.maximum(arr[:, 0], 0.0)
    arr[:, 1] = np.minimum(arr[:, 1], seconds)
    arr = arr[(arr[:, 1] - arr[:, 0] > 0.02) & (arr[:, 0] < seconds)]
    return arr[np.argsort(arr[:, 0], kind="stable")]


def arrange(plan: ClipPlan, seconds: float, rng: np.random.Generator) -> Score:
    """Write the notes of one clip of ``seconds`` from its plan."""
    track = plan.track
    grid = _Grid(plan, seconds, rng)
    dyn = VELOCITY_OFFSET[track.dynamics]
    tracks: list[Track] = []
    for part in plan.parts:
        inst = INSTRUMENTS[part.instrument]
        if part.role == "lead":
            low, high = max(inst.low, 55 if inst.low < 50 else inst.low), inst.high - 5
            density = min(track.density, 0.75) if inst.heavy else track.density
            notes = _melody(grid, low, high, density, inst.sustained, 92 + dyn, track.style == "weird", rng)
        elif part.role == "harmony":
            notes = _harmony(grid, part, 68 + dyn, rng)
        elif part.role == "bass":
            notes = _bass(grid, part, 86 + dyn, rng)
        else:  # extra: a slow counter-melody, a pad, or sparse effect notes
            if part.texture == "pad":
                notes = _harmony(grid, PartPlan(part.role, part.instrument, "pad"), 60 + dyn, rng)
            else:
                density = track.density / 3 if part.texture == "counter" else 0.25
                notes = _melody(grid, inst.low, inst.high, density, inst.sustained, 72 + dyn, False, rng, 0.5)
        tracks.append(Track(part.instrument, part.role, _humanize(notes, seconds, rng)))
    drums = _drums(grid, plan.drums, 96 + dyn, rng) if plan.drums != "none" else []
    vocal: list[tuple] = []
    if plan.vocal != "none":
        low, high = VOCAL_RANGE[plan.vocal]
        slow_voice = plan.vocal in ("opera_female", "opera_male", "choir", "chant")
        density = min(track.density, 0.8) if slow_voice else float(np.clip(track.density, 1.0, 2.0))
        vocal = _melody(grid, low, high, density, True, 90 + dyn, False, rng, 0.45)
    return Score(
        seconds=seconds,
        reverb=track.reverb,
        tracks=tuple(tracks),
        drums=_humanize(drums, seconds, rng),
        vocal=_humanize(vocal, seconds, rng),
    )


def onset_rate(score: Score, merge_s: float = 0.06) -> float:
    """Distinct note onsets per second over all parts, drums and voice (onsets closer than ``merge_s`` count once)."""
    starts = [t.notes[:, 0] for t in score.tracks] + [score.drums[:, 0], score.vocal[:, 0]]
    onsets = np.sort(np.concatenate(starts))
    if onsets.size == 0:
        return 0.0
    distinct = 1 + int(np.count_nonzero(np.diff(onsets) > merge_s))
    return distinct / score.seconds
