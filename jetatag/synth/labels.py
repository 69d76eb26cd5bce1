"""Tag sampling: how TagATune players would have tagged a clip, given what can be heard in it.

Each tag ``t`` is drawn independently with probability

    P(t | x, a) = 1 - (1 - fp_t) * exp(-a * sum_c x_c * rate[t, c])

where ``x`` is the clip's concept vector (:mod:`jetatag.synth.concepts`), ``rate[t, c] >= 0`` says how readily a
player names concept ``c`` with tag ``t`` (``1 - exp(-rate)`` is the chance at attention 1), ``fp_t`` is the
rare false-positive rate and ``a`` is the clip's *attention*: how many tags its players bothered to enter (a
low draw gives the ~18 % of MTAT clips with no top-50 tag). The numbers come from
the package data table ``data/fitted.json``, fitted offline to MTAT's tag statistics by ``benchmarks/synth_fit.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from jetatag.mtat import TAGS_188
from jetatag.synth.concepts import CONCEPT_INDEX, CONCEPTS, TAG_CONCEPTS
from jetatag.synth.styles import STYLE_NAMES
from jetatag.synth.tables import check_names, load, table_error

TABLE = "fitted"
"""The package data table (``data/fitted.json``) of fitted numbers, written by ``benchmarks/synth_fit.py``."""


@dataclass(frozen=True)
class TagModel:
    """Per-tag link rates to concepts, false-positive rates and the attention distribution."""

    rates: np.ndarray  # (n_tags, n_concepts) >= 0
    false_positive: np.ndarray  # (n_tags,) in [0, 1)
    attention_levels: np.ndarray  # (n_levels,) > 0
    attention_probs: np.ndarray  # (n_levels,) sums to 1
    tags: tuple[str, ...] = TAGS_188

    @classmethod
    def from_tables(
        cls,
        rates: Mapping[str, Mapping[str, float]],
        false_positive: Mapping[str, float],
        attention_levels: Sequence[float],
        attention_probs: Sequence[float],
    ) -> TagModel:
        """Build the model from ``{tag: {concept: rate}}`` and ``{tag: fp}``; links must be in TAG_CONCEPTS."""
        tag_index = {t: i for i, t in enumerate(TAGS_188)}
        matrix = np.zeros((len(TAGS_188), len(CONCEPTS)))
        for tag, links in rates.items():
            for concept, rate in links.items():
                if concept not in TAG_CONCEPTS[tag]:
                    raise ValueError(f"tag {tag!r} is not linked to concept {concept!r} in TAG_CONCEPTS")
                matrix[tag_index[tag], CONCEPT_INDEX[concept]] = rate
        fp = np.zeros(len(TAGS_188))
        for tag, value in false_positive.items():
            fp[tag_index[tag]] = value
        probs = np.asarray(attention_probs, dtype=float)
        return cls(matrix, fp, np.asarray(attention_levels, dtype=float), probs / probs.sum())

    def probabilities(self, concepts: np.ndarray, attention: float) -> np.ndarray:
        """``(n_tags,)`` probability of each tag for one clip at a given attention."""
        hazard = attention * (self.rates @ concepts.astype(float))
        return 1.0 - (1.0 - self.false_positive) * np.exp(-hazard)

    def expected(self, concepts: np.ndarray) -> np.ndarray:
        """``(n_clips, n_tags)`` tag probabilities with the attention averaged out (for calibration checks)."""
        hazard = concepts.astype(float) @ self.rates.T  # (N, T)
        keep = np.exp(-hazard[:, None, :] * self.attention_levels[None, :, None])  # (N, G, T)
        return 1.0 - (1.0 - self.false_positive) * np.einsum("ngt,g->nt", keep, self.attention_probs)

    def sample(self, concepts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one clip's ``(n_tags,)`` uint8 tag vector: an attention level, then every tag independently."""
        attention = self.attention_levels[rng.choice(len(self.attention_levels), p=self.attention_probs)]
        return (rng.random(len(self.tags)) < self.probabilities(concepts, attention)).astype(np.uint8)


def fitted_tables() -> dict:
    """``data/fitted.json``, checked to name every style and only known tags and tag-concept links."""
    table = load(TABLE)
    check_names(TABLE, ("style_weights",), table["style_weights"], STYLE_NAMES, complete=True)
    levels, probs = table["attention_levels"], table["attention_probs"]
    if len(probs) != len(levels):
        raise table_error(TABLE, ("attention_probs",), f"{len(probs)} probabilities for {len(levels)} levels")
    check_names(TABLE, ("false_positive",), table["false_positive"], TAGS_188)
    check_names(TABLE, ("tag_rates",), table["tag_rates"], TAGS_188)
    for tag, links in table["tag_rates"].items():
        check_names(TABLE, ("tag_rates", tag), links, TAG_CONCEPTS[tag])
    return table


_FITTED = fitted_tables()

DEFAULT_MODEL = TagModel.from_tables(
    _FITTED["tag_rates"], _FITTED["false_positive"], _FITTED["attention_levels"], _FITTED["attention_probs"]
)
"""The calibrated tag model used by the generator."""


def style_probabilities() -> tuple[tuple[str, ...], np.ndarray]:
    """Style names and their fitted prior probabilities (a track's style is drawn from these)."""
    names = tuple(_FITTED["style_weights"])
    weights = np.asarray([_FITTED["style_weights"][n] for n in names], dtype=float)
    return names, weights / weights.sum()
