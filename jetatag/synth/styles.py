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

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian_dominant": (0, 1, 4, 5, 7, 8, 10),
    "pentatonic_major": (0, 2, 4, 7, 9),
    "pentatonic_minor": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "bhairav": (0, 1, 4, 5, 7, 8, 11),
    "whole_tone": (0, 2, 4, 6, 8, 10),
    "chromatic": tuple(range(12)),
}
"""Scale name -> semitone offsets from the tonic."""

PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "functional": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (1, 4, 0, 0), (0, 5, 2, 6), (0, 3, 0, 4)),
    "modal": ((0, 6, 0, 6), (0, 3, 0, 3), (0, 0, 6, 3), (0, 2, 3, 0)),
    "drone": ((0, 0, 0, 0),),
    "blues": ((0, 0, 3, 0), (3, 3, 0, 0), (4, 3, 0, 4)),
    "atonal": (),  # drawn at random per track
}
"""Harmony family -> chord progressions as scale-degree indices, one chord per bar (cycled)."""

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


def _p(role: str, instruments: Mapping[str, float], textures: Mapping[str, float]) -> PartSpec:
    return PartSpec(role, instruments, textures)


MELODY = {"melody": 1.0}
NO_VOCALS = {"none": 1.0}

STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            name="orchestral",
            bpm=(60, 130),
            scales={"major": 1, "minor": 1, "harmonic_minor": 0.4},
            harmony="functional",
            parts=(
                _p(
                    "lead",
                    {"violin": 3, "flute": 2, "oboe": 1, "french_horn": 1, "clarinet": 1, "strings": 1.5},
                    MELODY,
                ),
                _p("harmony", {"strings": 3, "slow_strings": 2}, {"pad": 3, "chords": 1, "arpeggio": 1}),
                _p("bass", {"cello": 1, "contrabass": 1}, {"root": 2, "pulse": 1}),
                _p("extra", {"none": 2, "french_horn": 1, "flute": 1, "harp": 1, "timpani": 0.5}, {"counter": 1}),
            ),
            drums={"none": 1.0},
            vocals={"none": 0.93, "choir": 0.07},
            dynamics={"loud": 0.25, "normal": 0.45, "quiet": 0.3},
            density=(0.5, 2.0),
            reverb=(60, 110),
        ),
        Style(
            name="baroque",
            bpm=(80, 140),
            scales={"major": 1.5, "minor": 1},
            harmony="functional",
            parts=(
                _p("lead", {"violin": 4, "flute": 2, "oboe": 1.5, "harpsichord": 2, "recorder": 1}, MELODY),
                _p("harmony", {"harpsichord": 5, "church_organ": 1, "strings": 1.5}, {"arpeggio": 3, "chords": 1}),
                _p("bass", {"cello": 3, "contrabass": 1, "bassoon": 1}, {"pulse": 2, "walking": 1}),
                _p("extra", {"none": 3, "violin": 1, "recorder": 0.5}, {"counter": 1}),
            ),
            drums={"none": 1.0},
            vocals={"none": 0.9, "opera_female": 0.05, "choir": 0.05},
            dynamics={"loud": 0.1, "normal": 0.7, "quiet": 0.2},
            density=(1.5, 4.0),
            reverb=(40, 90),
            triple_meter=0.15,
        ),
        Style(
            name="chamber",
            bpm=(55, 130),
            scales={"major": 1, "minor": 1.2},
            harmony="functional",
            parts=(
                _p("lead", {"violin": 4, "cello": 3, "flute": 1.5, "viola": 1, "clarinet": 1}, MELODY),
                _p(
                    "harmony",
                    {"piano": 4, "harpsichord": 1, "strings": 1, "harp": 1},
                    {"arpeggio": 2, "alberti": 1.5, "chords": 1},
                ),
                _p("bass", {"none": 2, "cello": 1}, {"root": 1}),
            ),
            drums={"none": 1.0},
            vocals=NO_VOCALS,
            dynamics={"loud": 0.1, "normal": 0.5, "quiet": 0.4},
            density=(0.75, 2.5),
            reverb=(50, 100),
            triple_meter=0.2,
        ),
        Style(
            name="piano_solo",
            bpm=(50, 140),
            scales={"major": 1, "minor": 1, "harmonic_minor": 0.3},
            harmony="functional",
            parts=(
                _p("lead", {"piano": 1}, MELODY),
                _p("harmony", {"same": 1}, {"alberti": 2, "arpeggio": 2, "chords": 1.5}),
            ),
            drums={"none": 1.0},
            vocals=NO_VOCALS,
            dynamics={"loud": 0.1, "normal": 0.45, "quiet": 0.45},
            density=(0.75, 3.0),
            reverb=(40, 95),
            triple_meter=0.2,
        ),
        Style(
            name="guitar_solo",
            bpm=(55, 130),
            scales={"major": 1, "minor": 1.3, "phrygian_dominant": 0.4},
            harmony="functional",
            parts=(
                _p("lead", {"nylon_guitar": 4, "steel_guitar": 1, "harp": 1}, MELODY),
                _p("harmony", {"same": 1}, {"arpeggio": 3, "strum": 1}),
            ),
            drums={"none": 1.0},
            vocals=NO_VOCALS,
            dynamics={"loud": 0.05, "normal": 0.5, "quiet": 0.45},
            density=(1.0, 3.0),
            reverb=(30, 80),
            triple_meter=0.2,
        ),
        Style(
            name="opera",
            bpm=(55, 110),
            scales={"major": 1, "minor": 1, "harmonic_minor": 0.4},
            harmony="functional",
            parts=(
                _p("harmony", {"strings": 3, "piano": 1.5, "slow_strings": 1}, {"pad": 2, "chords": 1, "arpeggio": 1}),
                _p("bass", {"cello": 1, "contrabass": 1, "none": 0.5}, {"root": 1}),
                _p("extra", {"none": 2, "flute": 1, "french_horn": 1, "oboe": 0.5}, {"counter": 1}),
            ),
            drums={"none": 1.0},
            vocals={"opera_female": 0.62, "opera_male": 0.38},
            dynamics={"loud": 0.35, "normal": 0.5, "quiet": 0.15},
            density=(0.5, 1.5),
            reverb=(70, 115),
        ),
        Style(
            name="choral",
            bpm=(50, 100),
            scales={"major": 1, "minor": 1, "dorian": 0.5},
            harmony="functional",
            parts=(
                _p("harmony", {"none": 2, "church_organ": 2, "choir_aahs": 1.5}, {"pad": 1}),
                _p("bass", {"none": 3, "church_organ": 1}, {"root": 1}),
            ),
            drums={"none": 1.0},
            vocals={"choir": 0.72, "chant": 0.28},
            dynamics={"loud": 0.1, "normal": 0.5, "quiet": 0.4},
            density=(0.5, 1.5),
            reverb=(90, 127),
        ),
        Style(
            name="early_music",
            bpm=(60, 120),
            scales={"dorian": 1.5, "mixolydian": 1, "minor": 0.5},
            harmony="modal",
            parts=(
                _p("lead", {"recorder": 2, "flute": 1, "fiddle": 1.5, "nylon_guitar": 1.5, "bagpipe": 0.4}, MELODY),
                _p("harmony", {"nylon_guitar": 2, "harp": 1.5, "harpsichord": 1}, {"arpeggio": 2, "drone": 1}),
            ),
            drums={"none": 2, "hand": 1},
            vocals={"none": 0.65, "chant": 0.2, "female": 0.15},
            dynamics={"loud": 0.05, "normal": 0.55, "quiet": 0.4},
            density=(1.0, 2.5),
            reverb=(50, 100),
            triple_meter=0.3,
        ),
        Style(
            name="techno",
            bpm=(118, 145),
            scales={"minor": 2, "phrygian_dominant": 0.5, "dorian": 1},
            harmony="modal",
            parts=(
                _p("lead", {"saw_lead": 2, "square_lead": 2, "poly_synth": 1.5, "none": 1.5}, MELODY),
                _p(
                    "harmony",
                    {"warm_pad": 1, "poly_synth": 1.5, "sweep_pad": 1, "none": 1},
                    {"arpeggio": 2, "pad": 1.5, "chords": 1},
                ),
                _p("bass", {"synth_bass": 1}, {"offbeat": 2, "pulse": 1}),
            ),
            drums={"techno": 5, "breakbeat": 1},
            vocals={"none": 0.93, "female": 0.07},
            dynamics={"loud": 0.4, "normal": 0.55, "quiet": 0.05},
            density=(1.0, 4.0),
            reverb=(20, 70),
            effects={"none": 10, "stutter": 1},
        ),
        Style(
            name="electronica",
            bpm=(85, 125),
            scales={"minor": 2, "dorian": 1, "major": 0.7},
            harmony="modal",
            parts=(
                _p("lead", {"square_lead": 1.5, "epiano": 1, "vibraphone": 1, "saw_lead": 1, "none": 1}, MELODY),
                _p(
                    "harmony",
                    {"warm_pad": 1.5, "epiano": 1, "poly_synth": 1, "halo_pad": 1},
                    {"pad": 2, "chords": 1, "arpeggio": 1},
                ),
                _p("bass", {"synth_bass": 2, "finger_bass": 1}, {"pulse": 1, "root": 1}),
            ),
            drums={"breakbeat": 2, "downtempo": 1.5, "techno": 1},
            vocals={"none": 0.82, "female": 0.13, "male": 0.05},
            dynamics={"loud": 0.15, "normal": 0.7, "quiet": 0.15},
            density=(0.75, 2.5),
            reverb=(30, 90),
            effects={"none": 6, "bitcrush": 1, "stutter": 1},
        ),
        Style(
            name="ambient",
            bpm=(50, 90),
            scales={"major": 1, "minor": 1, "dorian": 1, "pentatonic_major": 0.5},
            harmony="modal",
            parts=(
                _p(
                    "lead",
                    {"none": 2, "tubular_bells": 0.7, "celesta": 0.5, "piano": 1, "square_lead": 0.7, "fx_echoes": 0.7},
                    MELODY,
                ),
                _p(
                    "harmony",
                    {"halo_pad": 1, "warm_pad": 1, "new_age_pad": 1, "sweep_pad": 1, "fx_atmosphere": 0.8},
                    {"pad": 1},
                ),
                _p("bass", {"none": 3, "synth_bass": 1}, {"root": 1}),
                _p("extra", {"none": 4, "seashore": 0.5, "bird_tweet": 0.4}, {"fx": 1}),
            ),
            drums={"none": 3, "downtempo": 1},
            vocals={"none": 0.9, "female": 0.1},
            dynamics={"loud": 0.03, "normal": 0.4, "quiet": 0.57},
            density=(0.2, 0.8),
            reverb=(90, 127),
        ),
        Style(
            name="new_age",
            bpm=(55, 95),
            scales={"major": 2, "pentatonic_major": 1, "dorian": 0.6},
            harmony="modal",
            parts=(
                _p("lead", {"flute": 2, "pan_flute": 1.5, "piano": 2, "harp": 1.5, "celesta": 0.5}, MELODY),
                _p(
                    "harmony",
                    {"new_age_pad": 1.5, "warm_pad": 1, "harp": 1, "piano": 1, "slow_strings": 1},
                    {"pad": 2, "arpeggio": 1.5},
                ),
                _p("bass", {"none": 3, "synth_bass": 1}, {"root": 1}),
                _p("extra", {"none": 3, "seashore": 0.6, "bird_tweet": 0.6, "tubular_bells": 0.5}, {"fx": 1}),
            ),
            drums={"none": 4, "hand": 1},
            vocals={"none": 0.9, "female": 0.07, "choir": 0.03},
            dynamics={"loud": 0.02, "normal": 0.4, "quiet": 0.58},
            density=(0.4, 1.5),
            reverb=(80, 127),
        ),
        Style(
            name="rock",
            bpm=(100, 160),
            scales={"minor": 1, "mixolydian": 1, "major": 1, "blues": 0.6},
            harmony="functional",
            parts=(
                _p(
                    "lead",
                    {"distortion_guitar": 2, "overdrive_guitar": 2, "clean_guitar": 1, "organ": 0.6, "none": 1},
                    MELODY,
                ),
                _p(
                    "harmony",
                    {
                        "distortion_guitar": 2,
                        "overdrive_guitar": 1.5,
                        "clean_guitar": 1,
                        "steel_guitar": 0.7,
                        "organ": 0.5,
                    },
                    {"power": 3, "strum": 1.5, "chords": 0.5},
                ),
                _p("bass", {"pick_bass": 2, "finger_bass": 1}, {"pulse": 2, "root_fifth": 1}),
            ),
            drums={"rock": 1},
            vocals={"male": 0.62, "female": 0.18, "none": 0.2},
            dynamics={"loud": 0.6, "normal": 0.4},
            density=(1.0, 3.0),
            reverb=(20, 60),
        ),
        Style(
            name="metal",
            bpm=(130, 200),
            scales={"minor": 1, "phrygian_dominant": 0.6, "harmonic_minor": 0.5},
            harmony="modal",
            parts=(
                _p("lead", {"distortion_guitar": 3, "none": 1}, MELODY),
                _p("harmony", {"distortion_guitar": 1}, {"power": 1}),
                _p("bass", {"pick_bass": 1}, {"pulse": 1}),
            ),
            drums={"metal": 1},
            vocals={"male": 0.7, "none": 0.3},
            dynamics={"loud": 0.92, "normal": 0.08},
            density=(2.0, 4.0),
            reverb=(15, 50),
        ),
        Style(
            name="pop",
            bpm=(88, 130),
            scales={"major": 2, "minor": 1},
            harmony="functional",
            parts=(
                _p("lead", {"piano": 1, "epiano": 1, "square_lead": 0.7, "clean_guitar": 1, "none": 1.5}, MELODY),
                _p(
                    "harmony",
                    {"piano": 1.5, "steel_guitar": 1, "warm_pad": 1, "poly_synth": 1, "clean_guitar": 0.7},
                    {"chords": 2, "strum": 1.5, "pad": 1},
                ),
                _p("bass", {"finger_bass": 2, "synth_bass": 1}, {"root_fifth": 1, "pulse": 1}),
            ),
            drums={"pop": 6, "none": 1},
            vocals={"female": 0.55, "male": 0.4, "none": 0.05},
            dynamics={"loud": 0.3, "normal": 0.7},
            density=(0.75, 2.0),
            reverb=(30, 80),
        ),
        Style(
            name="folk",
            bpm=(70, 125),
            scales={"major": 2, "mixolydian": 1, "minor": 1},
            harmony="functional",
            parts=(
                _p("lead", {"none": 3, "flute": 0.7, "fiddle": 1, "accordion": 0.6, "banjo": 0.4}, MELODY),
                _p("harmony", {"steel_guitar": 3, "nylon_guitar": 2}, {"strum": 2, "arpeggio": 2}),
                _p("bass", {"none": 2, "acoustic_bass": 1}, {"root_fifth": 1}),
            ),
            drums={"none": 5, "hand": 1.5, "pop": 1},
            vocals={"male": 0.45, "female": 0.43, "none": 0.12},
            dynamics={"loud": 0.05, "normal": 0.6, "quiet": 0.35},
            density=(0.5, 1.5),
            reverb=(30, 80),
            triple_meter=0.25,
        ),
        Style(
            name="country",
            bpm=(90, 150),
            scales={"major": 3, "mixolydian": 1},
            harmony="functional",
            parts=(
                _p("lead", {"banjo": 2, "fiddle": 2, "clean_guitar": 1.5, "steel_guitar": 1}, MELODY),
                _p("harmony", {"steel_guitar": 1}, {"strum": 1}),
                _p("bass", {"acoustic_bass": 1, "finger_bass": 1}, {"root_fifth": 1}),
            ),
            drums={"country": 5, "none": 1},
            vocals={"male": 0.65, "female": 0.22, "none": 0.13},
            dynamics={"loud": 0.15, "normal": 0.75, "quiet": 0.1},
            density=(1.5, 3.0),
            reverb=(20, 60),
        ),
        Style(
            name="indian",
            bpm=(60, 140),
            scales={"bhairav": 2, "dorian": 1, "phrygian_dominant": 1},
            harmony="drone",
            parts=(
                _p("lead", {"sitar": 6, "shanai": 1, "flute": 1.2, "violin": 0.8}, MELODY),
                _p("harmony", {"sitar": 2, "strings": 0.5}, {"drone": 1}),
            ),
            drums={"tabla": 4, "none": 1},
            vocals={"none": 0.62, "female": 0.23, "male": 0.15},
            dynamics={"loud": 0.1, "normal": 0.7, "quiet": 0.2},
            density=(1.5, 4.0),
            reverb=(30, 80),
        ),
        Style(
            name="world",
            bpm=(70, 140),
            scales={"dorian": 1, "phrygian_dominant": 1.5, "pentatonic_minor": 1, "mixolydian": 1},
            harmony="modal",
            parts=(
                _p(
                    "lead",
                    {
                        "fiddle": 1,
                        "pan_flute": 1,
                        "shanai": 0.8,
                        "bagpipe": 0.5,
                        "accordion": 0.8,
                        "koto": 0.8,
                        "steel_drums": 0.6,
                        "marimba": 0.6,
                    },
                    MELODY,
                ),
                _p(
                    "harmony",
                    {"nylon_guitar": 2, "steel_guitar": 1, "harp": 1, "accordion": 0.5},
                    {"arpeggio": 1.5, "strum": 1.5, "drone": 0.5},
                ),
                _p("bass", {"none": 1, "acoustic_bass": 1}, {"root_fifth": 1}),
            ),
            drums={"hand": 3, "none": 2, "tabla": 0.5},
            vocals={"none": 0.6, "male": 0.2, "female": 0.2},
            dynamics={"loud": 0.1, "normal": 0.7, "quiet": 0.2},
            density=(1.0, 3.0),
            reverb=(30, 80),
            triple_meter=0.25,
        ),
        Style(
            name="jazz",
            bpm=(90, 180),
            scales={"dorian": 1, "major": 1, "blues": 1},
            harmony="blues",
            parts=(
                _p(
                    "lead",
                    {"tenor_sax": 1.5, "alto_sax": 1, "trumpet": 1, "piano": 1, "vibraphone": 0.6, "jazz_guitar": 0.7},
                    MELODY,
                ),
                _p("harmony", {"piano": 2, "jazz_guitar": 1, "epiano": 0.5}, {"comp": 1}),
                _p("bass", {"acoustic_bass": 1}, {"walking": 1}),
            ),
            drums={"jazz": 5, "none": 1},
            vocals={"none": 0.8, "female": 0.15, "male": 0.05},
            dynamics={"loud": 0.1, "normal": 0.6, "quiet": 0.3},
            density=(1.5, 3.5),
            reverb=(30, 80),
        ),
        Style(
            name="weird",
            bpm=(40, 200),
            scales={"chromatic": 2, "whole_tone": 1, "phrygian_dominant": 0.5},
            harmony="atonal",
            parts=(
                _p(
                    "lead",
                    {
                        "fx_goblins": 1,
                        "fx_scifi": 1,
                        "tubular_bells": 0.7,
                        "square_lead": 0.7,
                        "koto": 0.6,
                        "marimba": 0.6,
                        "piano": 0.6,
                    },
                    MELODY,
                ),
                _p(
                    "harmony",
                    {"none": 1, "fx_atmosphere": 1, "sweep_pad": 1, "church_organ": 0.5},
                    {"pad": 1, "arpeggio": 0.5},
                ),
                _p("bass", {"none": 1.5, "synth_bass": 1}, {"root": 1, "pulse": 1}),
                _p("extra", {"none": 2, "fx_echoes": 1, "bird_tweet": 0.3}, {"fx": 1}),
            ),
            drums={"none": 2, "breakbeat": 1, "hand": 1},
            vocals={"none": 0.82, "male": 0.1, "female": 0.08},
            dynamics={"loud": 0.25, "normal": 0.45, "quiet": 0.3},
            density=(0.5, 4.0),
            reverb=(20, 127),
            triple_meter=0.3,
            effects={"ringmod": 1.5, "bitcrush": 1, "stutter": 1, "none": 0.5},
        ),
        Style(
            name="electro_orchestral",
            bpm=(80, 135),
            scales={"minor": 2, "harmonic_minor": 1},
            harmony="functional",
            parts=(
                _p("lead", {"violin": 2, "saw_lead": 1, "strings": 1, "piano": 1}, MELODY),
                _p("harmony", {"strings": 2, "synth_strings": 1.5, "warm_pad": 1}, {"pad": 2, "arpeggio": 1}),
                _p("bass", {"synth_bass": 1}, {"pulse": 1, "offbeat": 1}),
            ),
            drums={"techno": 1, "breakbeat": 1.5, "downtempo": 1},
            vocals={"none": 0.8, "female": 0.1, "choir": 0.1},
            dynamics={"loud": 0.3, "normal": 0.6, "quiet": 0.1},
            density=(0.75, 2.5),
            reverb=(50, 100),
        ),
        Style(
            name="raga_fusion",
            bpm=(70, 125),
            scales={"bhairav": 1, "dorian": 1},
            harmony="drone",
            parts=(
                _p("lead", {"sitar": 3, "flute": 1, "shanai": 0.5}, MELODY),
                _p("harmony", {"halo_pad": 1, "warm_pad": 1, "sitar": 1}, {"drone": 1, "pad": 1}),
                _p("bass", {"synth_bass": 1, "none": 1}, {"root": 1, "pulse": 1}),
            ),
            drums={"tabla": 2, "downtempo": 1.5, "techno": 1},
            vocals={"none": 0.75, "female": 0.25},
            dynamics={"loud": 0.1, "normal": 0.7, "quiet": 0.2},
            density=(1.0, 3.0),
            reverb=(40, 100),
        ),
        Style(
            name="dance_pop",
            bpm=(115, 135),
            scales={"minor": 1, "major": 1},
            harmony="functional",
            parts=(
                _p("lead", {"saw_lead": 1, "square_lead": 1, "none": 1.5}, MELODY),
                _p(
                    "harmony",
                    {"poly_synth": 1.5, "warm_pad": 1, "piano": 0.7},
                    {"chords": 1.5, "arpeggio": 1, "pad": 1},
                ),
                _p("bass", {"synth_bass": 1}, {"offbeat": 1, "pulse": 1}),
            ),
            drums={"techno": 2, "pop": 1},
            vocals={"female": 0.65, "male": 0.25, "none": 0.1},
            dynamics={"loud": 0.4, "normal": 0.6},
            density=(1.0, 2.5),
            reverb=(30, 70),
        ),
        Style(
            name="symphonic_rock",
            bpm=(90, 160),
            scales={"minor": 2, "harmonic_minor": 1},
            harmony="functional",
            parts=(
                _p("lead", {"distortion_guitar": 2, "violin": 1, "strings": 1}, MELODY),
                _p("harmony", {"strings": 1, "distortion_guitar": 1}, {"pad": 1, "power": 1}),
                _p("bass", {"pick_bass": 1}, {"pulse": 1}),
                _p("extra", {"strings": 1, "church_organ": 0.5, "none": 0.5}, {"pad": 1}),
            ),
            drums={"rock": 2, "metal": 1},
            vocals={"male": 0.4, "opera_female": 0.25, "female": 0.15, "none": 0.2},
            dynamics={"loud": 0.75, "normal": 0.25},
            density=(1.0, 3.0),
            reverb=(40, 90),
        ),
    )
}
"""The latent styles, by name."""

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
    for part in parts:
        if part.instrument not in INSTRUMENTS:
            raise ValueError(f"style {style_name!r} names unknown instrument {part.instrument!r}")
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
