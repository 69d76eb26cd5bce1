"""Concepts: the audible facts of a clip, and which concepts each of MTAT's 188 tags may describe.

A clip's concept vector records its latent style and what is heard in it (instruments, drums, singer, fast or
slow onset rate, loud or quiet). The tag model (:mod:`jetatag.synth.labels`) draws each tag from the concepts
it is linked to in :data:`TAG_CONCEPTS`, the way TagATune players described what they heard: synonyms
(``female``, ``woman``, ``female vocal``...) link to the same concept and are drawn independently, loosely
related concepts link too (players call a harp a ``guitar``), and tags with no link are only false positives.
"""

from __future__ import annotations

import numpy as np

from jetatag.synth.instruments import INSTRUMENT_FACTS, INSTRUMENTS
from jetatag.synth.score import Score, onset_rate
from jetatag.synth.styles import STYLE_NAMES, VOCALS, ClipPlan

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

_CLASSICAL = ("style:orchestral", "style:baroque", "style:chamber", "style:piano_solo", "style:guitar_solo")
_VOICE_F = ("female", "opera_female")
_VOICE_M = ("male", "opera_male")

TAG_CONCEPTS: dict[str, tuple[str, ...]] = {
    "no voice": ("instrumental",),
    "singer": ("vocals",),
    "duet": ("vocals", "choir"),
    "plucking": ("guitar_nylon", "harp", "sitar", "banjo", "harpsichord"),
    "hard rock": ("style:rock", "style:metal", "guitar_dist"),
    "world": ("style:world", "style:indian", "style:raga_fusion"),
    "bongos": ("hand_perc",),
    "harpsichord": ("harpsichord",),
    "female singing": _VOICE_F,
    "clasical": _CLASSICAL,
    "sitar": ("sitar",),
    "chorus": ("choir", "chant"),
    "female opera": ("opera_female",),
    "male vocal": _VOICE_M,
    "vocals": ("vocals", "choir"),
    "clarinet": ("woodwind",),
    "heavy": ("style:metal", "guitar_dist", "loud"),
    "silence": ("quiet",),
    "beats": ("beat_electronic", "drums_kit"),
    "men": (*_VOICE_M, "chant"),
    "woodwind": ("woodwind", "flute"),
    "funky": ("style:electronica", "style:pop", "style:jazz"),
    "no strings": ("style:techno", "style:electronica"),
    "chimes": ("bells",),
    "foreign": ("style:indian", "style:world", "style:raga_fusion"),
    "no piano": ("style:rock", "style:techno"),
    "horns": ("brass",),
    "classical": (*_CLASSICAL, "style:opera", "style:choral", "style:early_music", "strings", "harpsichord", "violin"),
    "female": (*_VOICE_F, "choir"),
    "no voices": ("instrumental",),
    "soft rock": ("style:rock", "style:pop", "style:folk"),
    "eerie": ("style:weird", "style:ambient", "fx"),
    "spacey": ("style:ambient", "fx", "pad"),
    "jazz": ("style:jazz", "sax"),
    "guitar": ("guitar_nylon", "guitar_steel", "guitar_clean", "guitar_dist", "harp", "sitar", "banjo", "koto"),
    "quiet": ("quiet",),
    "no beat": ("no_drums",),
    "banjo": ("banjo",),
    "electric": ("guitar_clean", "guitar_dist", "keys_electric"),
    "solo": ("solo",),
    "violins": ("violin", "strings"),
    "folk": ("style:folk", "style:country", "style:world"),
    "female voice": _VOICE_F,
    "wind": ("flute", "woodwind", "brass"),
    "happy": ("style:pop", "style:country", "style:folk"),
    "ambient": ("style:ambient", "style:new_age", "pad"),
    "new age": ("style:new_age", "style:ambient"),
    "synth": ("synth", "pad"),
    "funk": ("style:pop", "style:electronica", "style:jazz"),
    "no singing": ("instrumental",),
    "middle eastern": ("style:world", "shanai", "style:indian"),
    "trumpet": ("brass",),
    "percussion": ("hand_perc", "drums_kit", "timpani"),
    "drum": ("drums_kit", "hand_perc", "beat_electronic"),
    "airy": ("flute", "pad", "style:new_age"),
    "voice": ("vocals",),
    "repetitive": ("style:techno", "beat_electronic"),
    "birds": ("nature",),
    "space": ("style:ambient", "fx"),
    "strings": ("strings", "violin", "cello", "viola", "guitar_nylon", "guitar_steel", "sitar", "harp"),
    "bass": ("bass",),
    "harpsicord": ("harpsichord",),
    "medieval": ("style:early_music", "harpsichord"),
    "male voice": _VOICE_M,
    "girl": ("female",),
    "keyboard": ("keys_electric", "piano", "organ", "synth"),
    "acoustic": ("guitar_nylon", "guitar_steel", "style:folk"),
    "loud": ("loud",),
    "classic": (*_CLASSICAL, "strings", "violin"),
    "string": ("strings", "violin", "cello", "guitar_nylon"),
    "drums": ("drums_kit", "hand_perc", "beat_electronic"),
    "electronic": (
        "style:techno", "style:electronica", "style:ambient", "style:electro_orchestral", "style:dance_pop",
        "style:raga_fusion", "style:weird", "synth",
    ),
    "not classical": ("style:rock", "style:techno", "style:pop"),
    "chanting": ("chant", "choir"),
    "no violin": ("style:techno",),
    "not rock": ("style:orchestral", "style:ambient"),
    "no guitar": ("style:techno",),
    "organ": ("organ",),
    "no vocal": ("instrumental",),
    "talking": ("vocals", "style:weird"),
    "choral": ("choir", "chant", "choir_pad"),
    "weird": ("style:weird", "fx", "processed"),
    "opera": ("opera_female", "opera_male", "choir"),
    "soprano": ("opera_female",),
    "fast": ("fast",),
    "acoustic guitar": ("guitar_nylon", "guitar_steel"),
    "electric guitar": ("guitar_clean", "guitar_dist"),
    "male singer": ("male",),
    "man singing": ("male",),
    "classical guitar": ("guitar_nylon", "style:guitar_solo"),
    "country": ("style:country", "banjo"),
    "violin": ("violin", "viola", "strings", "cello"),
    "electro": ("style:techno", "style:electronica", "style:dance_pop"),
    "reggae": ("style:pop",),
    "tribal": ("hand_perc", "style:world"),
    "dark": ("style:ambient", "style:metal", "style:weird"),
    "male opera": ("opera_male",),
    "no vocals": ("instrumental",),
    "irish": ("style:world", "bagpipe"),
    "electronica": ("style:electronica", "style:techno"),
    "horn": ("brass",),
    "operatic": ("opera_female", "opera_male"),
    "arabic": ("style:world", "shanai"),
    "lol": ("style:weird",),
    "low": ("bass", "cello", "male"),
    "instrumental": ("instrumental",),
    "trance": ("style:techno", "style:dance_pop"),
    "chant": ("chant",),
    "strange": ("style:weird", "processed"),
    "drone": ("drone", "style:ambient"),
    "synthesizer": ("synth",),
    "heavy metal": ("style:metal",),
    "modern": ("style:electronica", "style:techno", "style:weird"),
    "disco": ("style:dance_pop", "style:techno"),
    "bells": ("bells",),
    "man": _VOICE_M,
    "deep": ("bass", "style:ambient", "male"),
    "fast beat": ("fast", "beat_electronic"),
    "industrial": ("style:techno", "style:weird", "processed"),
    "hard": ("style:metal", "style:rock", "loud"),
    "harp": ("harp",),
    "no flute": ("style:techno",),
    "jungle": ("style:techno", "hand_perc"),
    "pop": ("style:pop", "style:dance_pop", "style:rock", "style:folk"),
    "lute": ("guitar_nylon", "style:early_music"),
    "female vocal": ("female",),
    "oboe": ("woodwind",),
    "mellow": ("quiet", "slow", "style:new_age"),
    "orchestral": ("style:orchestral", "strings"),
    "viola": ("viola",),
    "light": ("quiet",),
    "echo": ("fx", "style:ambient"),
    "piano": ("piano", "keys_electric"),
    "celtic": ("style:world", "bagpipe", "style:early_music"),
    "male vocals": ("male",),
    "orchestra": ("style:orchestral", "strings", "style:opera"),
    "eastern": ("style:indian", "style:world", "sitar", "style:raga_fusion"),
    "old": ("style:early_music", "style:baroque", "harpsichord"),
    "flutes": ("flute",),
    "punk": ("style:rock", "style:metal"),
    "spanish": ("guitar_nylon", "style:guitar_solo", "style:world"),
    "sad": ("slow", "quiet"),
    "sax": ("sax",),
    "slow": ("slow",),
    "male": (*_VOICE_M, "chant"),
    "blues": ("style:jazz", "style:rock"),
    "vocal": ("vocals", "choir"),
    "indian": ("style:indian", "style:raga_fusion", "sitar"),
    "no singer": ("instrumental",),
    "scary": ("style:weird", "fx"),
    "india": ("style:indian", "sitar"),
    "woman": _VOICE_F,
    "woman singing": ("female",),
    "rock": ("style:rock", "style:metal", "style:symphonic_rock", "guitar_dist", "style:pop"),
    "dance": ("style:techno", "style:dance_pop"),
    "piano solo": ("style:piano_solo",),
    "guitars": ("guitar_dist", "guitar_steel", "guitar_clean"),
    "no drums": ("no_drums",),
    "jazzy": ("style:jazz",),
    "singing": ("vocals",),
    "cello": ("cello",),
    "calm": ("quiet", "slow"),
    "female vocals": ("female",),
    "voices": ("choir", "vocals"),
    "different": ("style:weird", "processed"),
    "techno": ("style:techno", "style:dance_pop", "style:electronica", "beat_electronic"),
    "clapping": ("beat_electronic", "hand_perc"),
    "house": ("style:techno", "style:dance_pop"),
    "monks": ("chant",),
    "flute": ("flute",),
    "not opera": ("vocals",),
    "not english": ("vocals", "style:indian"),
    "oriental": ("style:world", "koto", "style:indian"),
    "beat": ("drums_kit", "beat_electronic"),
    "upbeat": ("fast", "style:pop"),
    "soft": ("quiet",),
    "noise": ("style:weird", "fx", "processed"),
    "choir": ("choir", "chant", "choir_pad"),
    "female singer": ("female",),
    "rap": ("style:dance_pop", "style:electronica"),
    "metal": ("style:metal", "style:symphonic_rock"),
    "hip hop": ("style:electronica",),
    "quick": ("fast",),
    "water": ("nature",),
    "baroque": ("style:baroque", "harpsichord"),
    "women": ("female", "choir"),
    "fiddle": ("violin", "style:country", "style:world"),
    "english": ("vocals",),
}  # fmt: skip
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
