"""One clip from start to finish: style, plan, score, concepts, tags, audio and mp3 bytes.

Randomness is keyed, never shared: the track plan comes from ``(seed, track)``, and the clip's score, tags
and mix from three independent streams spawned from ``(seed, clip index)``. A clip is therefore the same
whichever process makes it and in whatever order, and its tags can be drawn without rendering its audio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from jetatag.synth.concepts import concept_vector
from jetatag.synth.labels import DEFAULT_MODEL, TagModel, style_probabilities
from jetatag.synth.notebank import NoteBank
from jetatag.synth.render import SAMPLE_RATE, render
from jetatag.synth.score import Score, arrange
from jetatag.synth.styles import ClipPlan, plan_clip, plan_track

MP3_COMPRESSION = 0.85
"""libsndfile MP3 compression level that gives 32 kbps constant bit rate at 16 kHz mono, as MTAT's files."""


@dataclass(frozen=True)
class ClipDesign:
    """Everything about a clip except its audio."""

    plan: ClipPlan
    score: Score
    concepts: np.ndarray  # (n_concepts,) bool
    tags: np.ndarray  # (188,) uint8
    audio_seed: np.random.SeedSequence


def design_clip(seed: int, track: int, index: int, seconds: float, model: TagModel = DEFAULT_MODEL) -> ClipDesign:
    """Plan, score and tag clip ``index`` (of track ``track``) of a mirror generated with ``seed``."""
    track_rng = np.random.default_rng([seed, 0, track])
    names, probs = style_probabilities()
    style = names[int(track_rng.choice(len(names), p=probs))]
    track_plan = plan_track(track_rng, style)
    score_seed, tag_seed, audio_seed = np.random.SeedSequence([seed, 1, index]).spawn(3)
    score_rng = np.random.default_rng(score_seed)
    plan = plan_clip(score_rng, track_plan)
    score = arrange(plan, seconds, score_rng)
    concepts = concept_vector(plan, score)
    tags = model.sample(concepts, np.random.default_rng(tag_seed))
    return ClipDesign(plan=plan, score=score, concepts=concepts, tags=tags, audio_seed=audio_seed)


def render_clip(design: ClipDesign, bank: NoteBank) -> np.ndarray:
    """Audio of a designed clip: float32 mono at 16 kHz."""
    return render(design.score, design.plan, bank, np.random.default_rng(design.audio_seed))


def encode_mp3(audio: np.ndarray) -> bytes:
    """MP3 bytes (16 kHz mono, 32 kbps CBR, written by soundfile/libsndfile) of float audio in [-1, 1]."""
    buffer = io.BytesIO()
    sf.write(
        buffer,
        audio,
        SAMPLE_RATE,
        format="MP3",
        subtype="MPEG_LAYER_III",
        bitrate_mode="CONSTANT",
        compression_level=MP3_COMPRESSION,
    )
    return buffer.getvalue()
