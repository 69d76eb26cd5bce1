"""Latent musical styles and the per-track / per-clip plans drawn from them.

A clip's *style* (orchestral, techno, indian...) is the latent cause of everything else: it sets the tempo
range, scale, instruments per role, how each part plays, the drum pattern, the singer and the dynamics.
:func:`plan_track` draws one :class:`TrackPlan` per track (all clips of a track share it, as the segments of
one MTAT track do); :func:`plan_clip` varies it per 29-s segment (a singer who rests, drums that drop out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from jetatag.synth.instruments import INSTRUMENTS
from jetatag.synth.tables import check_names, load, table_error

TABLE = "styles"
"""The package data table (``data/styles.json``) holding the scales, progressions and styles."""

SCALES: dict[str, tuple[int, ...]] = {name: tuple(steps) for name, steps in load(TABLE)["scales"].items()}
"""Scale name -> semitone offsets from the tonic."""

PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    family: tuple(tuple(p) for p in options) for family, options in load(TABLE)["progressions"].items()
}
"""Harmony family -> chord progressions as scale-degree indices, one chord per bar (cycled); ``atonal`` has none
(drawn at random per track)."""

DRUM_PATTERNS = ("rock", "metal", "pop", "techno", "breakbeat", "downtempo", "jazz", "country", "tabla", "hand")
VOCALS = ("male", "female", "opera_female", "opera_male", "choir", "chant")
DYNAMICS = ("loud", "normal", "quiet")
EFFECTS = ("ringmod", "bitcrush", "stutter")
"""Studio effects on the whole mix (see jetatag.synth.render): experimental and some electronic tracks."""


@dataclass(frozen=True)
class PartSpec:
    """A role in a style's arrangement: which instruments may take it and how it may play."""

    role: str  # "lead" | "harmony" | "bass" | "extra"
    instruments: Mapping[str, float]  # instrument name (or "same" = the lead's, or "none") -> weight
    textures: Mapping[str, float]  # texture name -> weight (see jetatag.synth.score)


@dataclass(frozen=True)
class Style:
    """A latent style: the distributions a track's plan is drawn from."""

    name: str
    bpm: tuple[float, float]
    scales: Mapping[str, float]
    harmony: str  # key of PROGRESSIONS
    parts: tuple[PartSpec, ...]
    drums: Mapping[str, float]  # pattern -> weight, "none" allowed
    vocals: Mapping[str, float]  # vocal kind -> weight, "none" allowed
    dynamics: Mapping[str, float]
    density: tuple[float, float]  # lead notes per beat
    reverb: tuple[int, int]  # CC91 reverb send range
    triple_meter: float = 0.0  # probability of 3 beats per bar
    effects: Mapping[str, float] = field(default_factory=lambda: {"none": 1.0})  # EFFECTS entry or "none"


_REFERENCES: dict[str, tuple[str, ...]] = {
    "scales": tuple(SCALES),
    "harmony": tuple(PROGRESSIONS),
    "drums": (*DRUM_PATTERNS, "none"),
    "vocals": (*VOCALS, "none"),
    "dynamics": DYNAMICS,
    "effects": (*EFFECTS, "none"),
}
"""Style field -> the names it may use (the schema checks the shapes, this the names)."""


def _style(name: str, spec: dict) -> Style:
    """Style ``name`` of ``data/styles.json``, its names and ranges checked."""
    where = ("styles", name)
    for key, known in _REFERENCES.items():
        if key in spec:
            check_names(TABLE, (*where, key), [spec[key]] if key == "harmony" else spec[key], known)
    for key in ("bpm", "density", "reverb"):
        low, high = spec[key]
        if low > high:
            raise table_error(TABLE, (*where, key), f"low {low} is above high {high}")
    parts = []
    for i, part in enumerate(spec["parts"]):
        check_names(TABLE, (*where, "parts", i, "instruments"), part["instruments"], (*INSTRUMENTS, "same", "none"))
        parts.append(PartSpec(part["role"], part["instruments"], part["textures"]))
    ranges = {key: tuple(spec[key]) for key in ("bpm", "density", "reverb")}
    return Style(name=name, **{**spec, **ranges, "parts": tuple(parts)})


STYLES: dict[str, Style] = {name: _style(name, spec) for name, spec in load(TABLE)["styles"].items()}
"""The latent styles, by name (file order)."""

STYLE_NAMES: tuple[str, ...] = tuple(STYLES)


@dataclass(frozen=True)
class PartPlan:
    """One melodic part of a track: role, instrument and texture."""

    role: str
    instrument: str
    texture: str


@dataclass(frozen=True)
class TrackPlan:
    """Everything shared by the clips of one track."""

    style: str
    bpm: float
    beats_per_bar: int
    key: int  # tonic MIDI pitch class 0..11
    scale: str
    progression: tuple[int, ...]  # scale-degree index of the chord of each bar, cycled
    parts: tuple[PartPlan, ...]
    drums: str  # DRUM_PATTERNS entry or "none"
    vocal: str  # VOCALS entry or "none"
    dynamics: str  # DYNAMICS entry
    density: float  # lead notes per beat
    reverb: int  # CC91 reverb send 0..127
    swing: float  # 0 = straight, up to 0.33 = triplet swing of off-beat eighths
    effect: str  # EFFECTS entry or "none"


@dataclass(frozen=True)
class ClipPlan:
    """A track plan as heard in one segment: parts, drums and singer that actually play in it."""

    track: TrackPlan
    parts: tuple[PartPlan, ...]
    drums: str
    vocal: str


def _choice(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def plan_track(rng: np.random.Generator, style_name: str) -> TrackPlan:
    """Draw the plan of one track of style ``style_name``."""
    style = STYLES[style_name]
    scale = _choice(rng, style.scales)
    if style.harmony == "atonal":
        progression = tuple(int(d) for d in rng.integers(0, len(SCALES[scale]), size=4))
    else:
        options = PROGRESSIONS[style.harmony]
        progression = options[int(rng.integers(len(options)))]
    parts: list[PartPlan] = []
    lead = "none"
    for spec in style.parts:
        name = _choice(rng, spec.instruments)
        if name == "same":
            name = lead
        if spec.role == "lead":
            lead = name
        if name != "none":
            parts.append(PartPlan(spec.role, name, _choice(rng, spec.textures)))
    if not parts:  # a vocal-only style still needs one instrument to carry the harmony
        parts.append(PartPlan("harmony", "church_organ", "pad"))
    bpm = float(rng.uniform(*style.bpm))
    return TrackPlan(
        style=style_name,
        bpm=bpm,
        beats_per_bar=3 if rng.random() < style.triple_meter else 4,
        key=int(rng.integers(12)),
        scale=scale,
        progression=progression,
        parts=tuple(parts),
        drums=_choice(rng, style.drums),
        vocal=_choice(rng, style.vocals),
        dynamics=_choice(rng, style.dynamics),
        density=float(rng.uniform(*style.density)),
        reverb=int(rng.integers(style.reverb[0], style.reverb[1] + 1)),
        swing=float(rng.uniform(0.15, 0.33)) if style.name == "jazz" else float(rng.uniform(0.0, 0.08)),
        effect=_choice(rng, style.effects),
    )


def plan_clip(rng: np.random.Generator, track: TrackPlan) -> ClipPlan:
    """Vary a track plan for one segment: the singer rests in some, drums or a part drop out in a few."""
    vocal = (
        track.vocal if track.vocal == "none" or track.style in ("opera", "choral") or rng.random() < 0.85 else "none"
    )
    keep_drums = 0.5 if track.dynamics == "quiet" else 0.92  # quiet passages often play without drums
    drums = track.drums if track.drums == "none" or rng.random() < keep_drums else "none"
    parts = tuple(p for p in track.parts if p.role in ("lead", "harmony") or rng.random() < 0.9)
    if not any(p.role in ("lead", "harmony") for p in parts) and vocal == "none":
        parts = track.parts
    return ClipPlan(track=track, parts=parts, drums=drums, vocal=vocal)
