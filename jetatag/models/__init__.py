"""Models: the six feature extractors (raw waveform → h, 1024-d at paper width), the heads, losses and checkpoints.

``EXTRACTORS`` maps each id of :data:`jetatag.extractors.EXTRACTOR_SPECS` to the class its row names,
in the paper's Table 1 order; the row holds everything else known about the extractor.
"""

from __future__ import annotations

import importlib

from torch import nn

from jetatag.config import ModelParams
from jetatag.extractors import EXTRACTOR_SPECS, extractor_spec
from jetatag.models.common import H_DIM, a21_init_and_bn
from jetatag.models.heads import Classifier, ProjectionHead, TagDecoder, TagEncoder


def _load(class_path: str) -> type[nn.Module]:
    """The class that ``"module:Class"`` names."""
    module, _, name = class_path.partition(":")
    return getattr(importlib.import_module(module), name)


EXTRACTORS: dict[str, type[nn.Module]] = {spec.id: _load(spec.class_path) for spec in EXTRACTOR_SPECS}


def extractor_class(name: str) -> type[nn.Module]:
    """The extractor class registered as ``name``; ValueError listing the known ids otherwise."""
    return EXTRACTORS[extractor_spec(name).id]


def build_extractor(name: str, model: ModelParams, *, sample_rate: int) -> nn.Module:
    """Build extractor ``name`` sized by ``model`` (width, sinc layer, switches) for audio at ``sample_rate``.

    The module maps (B, L) float32 waveforms to h (B, :func:`h_dim`).
    """
    spec = extractor_spec(name)
    extractor = extractor_class(name).from_params(model, sample_rate=sample_rate)
    if model.init_and_bn == "a21":
        a21_init_and_bn(extractor, glorot_convs=spec.a21_glorot_convs)
    return extractor


def h_dim(extractor: nn.Module) -> int:
    """Size of ``extractor``'s output h: its ``out_dim`` where it sets one (Harmonic-CNN), else ``H_DIM``.

    Every extractor ends in 1024 dimensions except Harmonic-CNN with ``model.hcnn_head: a21`` below
    width 1, whose h is its last three blocks' channels; the heads on h are sized from this.
    """
    return getattr(extractor, "out_dim", H_DIM)


__all__ = [
    "EXTRACTORS",
    "H_DIM",
    "Classifier",
    "ProjectionHead",
    "TagDecoder",
    "TagEncoder",
    "build_extractor",
    "extractor_class",
    "h_dim",
]
