"""Concepts: the audible facts of a clip, and which concepts each of MTAT's 188 tags may describe.

A clip's concept vector records its latent style and what is heard in it (instruments, drums, singer, fast or
slow onset rate, loud or quiet). The tag model (:mod:`jetatag.synth.labels`) draws each tag from the concepts
it is linked to in :data:`TAG_CONCEPTS`, the way TagATune players described what they heard: synonyms
(``female``, ``woman``, ``female vocal``...) link to the same concept and are drawn independently, loosely
related concepts link too (players call a harp a ``guitar``), and tags with no link are only false positives.
"""

from __future__ import annotations

import numpy as np

from jetatag.mtat import TAGS_188
from jetatag.synth.instruments import INSTRUMENT_FACTS, INSTRUMENTS
from jetatag.synth.score import Score, onset_rate
from jetatag.synth.styles import STYLE_NAMES, VOCALS, ClipPlan
from jetatag.synth.tables import check_names, load

FAST_ONSETS_PER_S = 6.0
"""Onset rate (distinct onsets per second, all parts) at or above which a clip counts as fast."""

SLOW_ONSETS_PER_S = 2.6
"""Onset rate at or below which a clip counts as slow."""

_KIT = ("rock", "metal", "pop", "jazz", "country")
_ELECTRONIC_BEAT = ("techno", "breakbeat", "downtempo")
_HAND = ("tabla", "hand")

CONCEPTS: tuple[str, ...] = (
    *(f"style:{s}" for s in STYLE_NAMES),
    *INSTRUMENT_FACTS,
    "drums_kit", "beat_electronic", "hand_perc", "no_drums",
    *VOCALS, "vocals", "instrumental",
    "solo", "drone", "processed", "fast", "slow", "loud", "quiet",
)  # fmt: skip
"""Concept names, in concept-vector order."""

CONCEPT_INDEX = {c: i for i, c in enumerate(CONCEPTS)}

TABLE = "tag_concepts"
"""The package data table (``data/tag_concepts.json``) linking tags to concepts."""


def _tag_concepts() -> dict[str, tuple[str, ...]]:
    """``data/tag_concepts.json``, checked to name every MTAT tag once and only known concepts."""
    table = load(TABLE)
    check_names(TABLE, (), table, TAGS_188, complete=True)
    for tag, concepts in table.items():
        check_names(TABLE, (tag,), concepts, CONCEPT_INDEX)
    return {tag: tuple(concepts) for tag, concepts in table.items()}


TAG_CONCEPTS: dict[str, tuple[str, ...]] = _tag_concepts()
"""Tag -> the concepts it may describe (every one of the 188 tags, every concept in :data:`CONCEPTS`)."""


def concept_vector(plan: ClipPlan, score: Score) -> np.ndarray:
    """Boolean ``(len(CONCEPTS),)`` vector of what one clip is and what can be heard in it."""
    x = np.zeros(len(CONCEPTS), dtype=bool)

    def on(name: str) -> None:
        x[CONCEPT_INDEX[name]] = True

    on(f"style:{plan.track.style}")
    sounding = {t.instrument for t in score.tracks if len(t.notes)}
    for name in sounding:
        for fact in INSTRUMENTS[name].facts:
            on(fact)
    has_drums = plan.drums != "none" and len(score.drums) > 0
    if not has_drums:
        on("no_drums")
    elif plan.drums in _KIT:
        on("drums_kit")
    elif plan.drums in _ELECTRONIC_BEAT:
        on("beat_electronic")
    elif plan.drums in _HAND:
        on("hand_perc")
    if plan.vocal != "none" and len(score.vocal):
        on(plan.vocal)
        on("vocals")
    else:
        on("instrumental")
    if len(sounding) == 1 and not has_drums and not x[CONCEPT_INDEX["vocals"]]:
        on("solo")
    if any(p.texture == "drone" for p in plan.parts):
        on("drone")
    if plan.track.effect != "none":
        on("processed")
    rate = onset_rate(score)
    if rate >= FAST_ONSETS_PER_S:
        on("fast")
    elif rate <= SLOW_ONSETS_PER_S:
        on("slow")
    if plan.track.dynamics in ("loud", "quiet"):
        on(plan.track.dynamics)
    return x
