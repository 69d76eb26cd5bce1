"""General-MIDI instruments the generator plays: program, playable register and the audible facts each one adds.

A *fact* is something a listener can hear in a clip (``piano``, ``guitar_dist``, ``synth``...). Facts, not
instrument names, are what the tag model links tags to (see :mod:`jetatag.synth.concepts`), so two programs
that sound alike (violin and fiddle) share a fact.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    """One General-MIDI melodic program (0-based, as pretty_midi numbers them) and what it sounds like."""

    program: int
    low: int  # lowest MIDI pitch played
    high: int  # highest MIDI pitch played
    facts: tuple[str, ...]
    sustained: bool = False  # bowed / blown / pad: long notes ring; plucked and struck ones decay
    heavy: bool = False  # layered/modulated soundfont preset that sounds dense on its own: play it thinly


INSTRUMENTS: dict[str, Instrument] = {
    "piano": Instrument(0, 36, 96, ("piano",)),
    "epiano": Instrument(4, 41, 89, ("keys_electric",)),
    "harpsichord": Instrument(6, 41, 89, ("harpsichord",)),
    "celesta": Instrument(8, 60, 96, ("bells",)),
    "vibraphone": Instrument(11, 53, 89, ("bells",)),
    "marimba": Instrument(12, 48, 84, ("mallets",)),
    "tubular_bells": Instrument(14, 60, 77, ("bells",), heavy=True),
    "organ": Instrument(16, 36, 84, ("organ",), sustained=True),
    "church_organ": Instrument(19, 36, 84, ("organ",), sustained=True),
    "accordion": Instrument(21, 53, 84, ("accordion",), sustained=True),
    "nylon_guitar": Instrument(24, 40, 79, ("guitar_nylon",)),
    "steel_guitar": Instrument(25, 40, 79, ("guitar_steel",)),
    "jazz_guitar": Instrument(26, 40, 79, ("guitar_clean",)),
    "clean_guitar": Instrument(27, 40, 79, ("guitar_clean",)),
    "overdrive_guitar": Instrument(29, 40, 79, ("guitar_dist",), sustained=True),
    "distortion_guitar": Instrument(30, 40, 79, ("guitar_dist",), sustained=True),
    "acoustic_bass": Instrument(32, 28, 55, ("bass",)),
    "finger_bass": Instrument(33, 28, 55, ("bass",)),
    "pick_bass": Instrument(34, 28, 55, ("bass",)),
    "synth_bass": Instrument(38, 28, 55, ("bass", "synth")),
    "violin": Instrument(40, 55, 91, ("violin",), sustained=True),
    "viola": Instrument(41, 48, 81, ("viola",), sustained=True),
    "cello": Instrument(42, 36, 67, ("cello",), sustained=True),
    "contrabass": Instrument(43, 28, 55, ("bass",), sustained=True),
    "harp": Instrument(46, 36, 91, ("harp",)),
    "timpani": Instrument(47, 40, 55, ("timpani",)),
    "strings": Instrument(48, 43, 84, ("strings",), sustained=True, heavy=True),
    "slow_strings": Instrument(49, 43, 84, ("strings",), sustained=True, heavy=True),
    "synth_strings": Instrument(50, 43, 84, ("strings", "synth"), sustained=True, heavy=True),
    "choir_aahs": Instrument(52, 48, 76, ("choir_pad",), sustained=True, heavy=True),
    "trumpet": Instrument(56, 55, 82, ("brass",), sustained=True),
    "trombone": Instrument(57, 40, 72, ("brass",), sustained=True),
    "french_horn": Instrument(60, 41, 77, ("brass",), sustained=True, heavy=True),
    "alto_sax": Instrument(65, 49, 81, ("sax",), sustained=True),
    "tenor_sax": Instrument(66, 44, 76, ("sax",), sustained=True),
    "oboe": Instrument(68, 58, 91, ("woodwind",), sustained=True),
    "bassoon": Instrument(70, 34, 67, ("woodwind",), sustained=True),
    "clarinet": Instrument(71, 50, 91, ("woodwind",), sustained=True),
    "flute": Instrument(73, 60, 96, ("flute",), sustained=True),
    "recorder": Instrument(74, 60, 91, ("flute",), sustained=True),
    "pan_flute": Instrument(75, 60, 91, ("flute",), sustained=True),
    "square_lead": Instrument(80, 48, 84, ("synth",), sustained=True),
    "saw_lead": Instrument(81, 48, 84, ("synth",), sustained=True),
    "new_age_pad": Instrument(88, 43, 84, ("pad", "synth"), sustained=True, heavy=True),
    "warm_pad": Instrument(89, 43, 84, ("pad", "synth"), sustained=True),
    "poly_synth": Instrument(90, 43, 84, ("synth",), sustained=True, heavy=True),
    "halo_pad": Instrument(94, 43, 84, ("pad", "synth"), sustained=True, heavy=True),
    "sweep_pad": Instrument(95, 43, 84, ("pad", "synth"), sustained=True, heavy=True),
    "fx_atmosphere": Instrument(99, 43, 84, ("fx", "synth"), sustained=True, heavy=True),
    "fx_goblins": Instrument(101, 43, 84, ("fx", "synth"), sustained=True, heavy=True),
    "fx_echoes": Instrument(102, 48, 84, ("fx", "synth"), sustained=True, heavy=True),
    "fx_scifi": Instrument(103, 48, 84, ("fx", "synth"), sustained=True, heavy=True),
    "sitar": Instrument(104, 48, 84, ("sitar",)),
    "banjo": Instrument(105, 48, 84, ("banjo",)),
    "koto": Instrument(107, 48, 84, ("koto",)),
    "bagpipe": Instrument(109, 55, 79, ("bagpipe",), sustained=True),
    "fiddle": Instrument(110, 55, 91, ("violin",), sustained=True),
    "shanai": Instrument(111, 58, 86, ("shanai",), sustained=True),
    "steel_drums": Instrument(114, 52, 84, ("mallets",)),
    "bird_tweet": Instrument(123, 60, 84, ("nature",)),
    "seashore": Instrument(122, 48, 72, ("nature",), sustained=True, heavy=True),
}
"""Instrument name -> GM program, register and audible facts."""

INSTRUMENT_FACTS: tuple[str, ...] = tuple(sorted({f for inst in INSTRUMENTS.values() for f in inst.facts}))
"""Every fact an instrument can add, sorted."""
