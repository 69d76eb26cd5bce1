"""Models: the six feature extractors (raw waveform → h, 1024-d at paper width), the heads, losses and checkpoints.

``EXTRACTORS`` is the one registry the CLI, the pipelines and the tests enumerate, in the paper's
Table 1 order; each class carries its paper crop length as ``paper_input_length``.
"""

from __future__ import annotations

from torch import nn

from jetatag.config import ModelParams
from jetatag.models.common import H_DIM, a21_init_and_bn
from jetatag.models.hcnn import HarmonicCNN
from jetatag.models.heads import Classifier, ProjectionHead, TagDecoder, TagEncoder
from jetatag.models.samplecnn import SampleCNN, SampleCNNRes, SampleCNNReSE, SampleCNNSE
from jetatag.models.sincnet import MusicSincNet

EXTRACTORS: dict[str, type[nn.Module]] = {  # ids = jetatag.config.EXTRACTOR_IDS (checked by the tests)
    "hcnn": HarmonicCNN,
    "sincnet": MusicSincNet,
    "samplecnn": SampleCNN,
    "samplecnn_se": SampleCNNSE,
    "samplecnn_res": SampleCNNRes,
    "samplecnn_rese": SampleCNNReSE,
}


def extractor_class(name: str) -> type[nn.Module]:
    """The extractor class registered as ``name``; ValueError listing the known ids otherwise."""
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise ValueError(f"unknown extractor {name!r}: expected one of {', '.join(EXTRACTORS)}") from None


def build_extractor(name: str, model: ModelParams, *, sample_rate: int) -> nn.Module:
    """Build extractor ``name`` sized by ``model`` (width, sinc layer, switches) for audio at ``sample_rate``.

    The module maps (B, L) float32 waveforms to h (B, :func:`h_dim`).
    """
    extractor = extractor_class(name).from_params(model, sample_rate=sample_rate)
    if model.init_and_bn == "a21":
        a21_init_and_bn(extractor, glorot_convs=extractor.a21_glorot_convs)
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
