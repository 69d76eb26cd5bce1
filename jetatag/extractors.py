"""The feature extractors, one row each: the table that config, models, pipeline, CLI, reports and tests enumerate.

Torch-free, so that argument parsing, params validation and the pipeline generator can list extractors
without importing a model. Adding an extractor means one class and one row of :data:`EXTRACTOR_SPECS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

CropKey = Literal["hcnn_crop_samples", "samplecnn_crop_samples"]
"""A :class:`jetatag.config.ModelParams` field holding a training/evaluation crop length in samples."""


@dataclass(frozen=True)
class ExtractorSpec:
    """What the code outside an extractor's class needs to know about it."""

    id: str  # CLI choice, stage wildcard, models/<id>/ folder, checkpoint field
    name: str  # display name, as the paper's Table 1 writes it
    class_path: str  # "module:Class" of its nn.Module (raw waveform → h), imported by jetatag.models
    crop_key: CropKey  # the ModelParams field giving its crop length
    paper_input_length: int  # its crop length in the paper, in samples at 16 kHz
    conv_l2_regularised: bool  # the authors' code declares l2(1e-4) on its convs (inert there: FIDELITY.md)
    a21_glorot_convs: bool  # A21 leaves every conv Glorot-uniform (else he_uniform, Glorot on 1×1 shortcuts)
    two_d: bool  # a 2-D CNN on a spectrogram (the 1-D ones already run channels-last internally)

    @property
    def module(self) -> str:
        """The module that defines its class."""
        return self.class_path.partition(":")[0]


_SAMPLE_CNN: dict[str, Any] = {  # what the Sample-CNN family and Music-SincNet (a Sample-CNN body) share
    "crop_key": "samplecnn_crop_samples",
    "paper_input_length": 59049,  # 3^10
    "conv_l2_regularised": True,
    "a21_glorot_convs": False,
    "two_d": False,
}

EXTRACTOR_SPECS: tuple[ExtractorSpec, ...] = (
    ExtractorSpec(
        id="hcnn",
        name="Harmonic-CNN",
        class_path="jetatag.models.hcnn:HarmonicCNN",
        crop_key="hcnn_crop_samples",
        paper_input_length=80000,  # 5 s
        conv_l2_regularised=False,
        a21_glorot_convs=True,  # A21's Conv2D without an initializer
        two_d=True,
    ),
    ExtractorSpec("sincnet", "Music-SincNet", "jetatag.models.sincnet:MusicSincNet", **_SAMPLE_CNN),
    ExtractorSpec("samplecnn", "Sample-CNN", "jetatag.models.samplecnn:SampleCNN", **_SAMPLE_CNN),
    ExtractorSpec("samplecnn_se", "Sample-CNN +SE", "jetatag.models.samplecnn:SampleCNNSE", **_SAMPLE_CNN),
    ExtractorSpec("samplecnn_res", "Sample-CNN +Res", "jetatag.models.samplecnn:SampleCNNRes", **_SAMPLE_CNN),
    ExtractorSpec("samplecnn_rese", "Sample-CNN +Res+SE", "jetatag.models.samplecnn:SampleCNNReSE", **_SAMPLE_CNN),
)
"""Every extractor, in the paper's Table 1 order."""

EXTRACTOR_IDS: tuple[str, ...] = tuple(spec.id for spec in EXTRACTOR_SPECS)
"""Extractor ids in the paper's Table 1 order."""

CROP_KEYS: tuple[CropKey, ...] = tuple(dict.fromkeys(spec.crop_key for spec in EXTRACTOR_SPECS))
"""The ModelParams crop-length fields the extractors use, each once, in table order."""


def extractor_spec(extractor: str) -> ExtractorSpec:
    """The row of extractor id ``extractor``; ValueError listing the known ids otherwise."""
    for spec in EXTRACTOR_SPECS:
        if spec.id == extractor:
            return spec
    raise ValueError(f"unknown extractor {extractor!r}: expected one of {', '.join(EXTRACTOR_IDS)}")
