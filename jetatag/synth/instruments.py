"""General-MIDI instruments the generator plays: program, playable register and the audible facts each one adds.

A *fact* is something a listener can hear in a clip (``piano``, ``guitar_dist``, ``synth``...). Facts, not
instrument names, are what the tag model links tags to (see :mod:`jetatag.synth.concepts`), so two programs
that sound alike (violin and fiddle) share a fact.
"""

from __future__ import annotations

from dataclasses import dataclass

from jetatag.synth.tables import load, table_error


@dataclass(frozen=True)
class Instrument:
    """One General-MIDI melodic program (0-based, as pretty_midi numbers them) and what it sounds like."""

    program: int
    low: int  # lowest MIDI pitch played
    high: int  # highest MIDI pitch played
    facts: tuple[str, ...]
    sustained: bool = False  # bowed / blown / pad: long notes ring; plucked and struck ones decay
    heavy: bool = False  # layered/modulated soundfont preset that sounds dense on its own: play it thinly


def _instruments() -> dict[str, Instrument]:
    """The instruments of ``data/instruments.json``, in file order (the note bank renders them in this order)."""
    instruments: dict[str, Instrument] = {}
    for name, spec in load("instruments").items():  # keys are the Instrument fields (the schema's)
        if spec["low"] > spec["high"]:
            raise table_error("instruments", (name, "low"), f"{spec['low']} is above high {spec['high']}")
        instruments[name] = Instrument(**{**spec, "facts": tuple(spec["facts"])})
    return instruments


INSTRUMENTS: dict[str, Instrument] = _instruments()
"""Instrument name -> GM program, register and audible facts."""

INSTRUMENT_FACTS: tuple[str, ...] = tuple(sorted({f for inst in INSTRUMENTS.values() for f in inst.facts}))
"""Every fact an instrument can add, sorted."""
