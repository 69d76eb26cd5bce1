"""Whole models — the stage-1 joint embedding and the stage-2 tagger — and their self-describing checkpoints.

A tagger checkpoint carries everything needed to rebuild the model without params.yaml: the
extractor id, the model params, the tag names, the sample rate and crop length, and a format version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn

from jetatag.config import ModelParams, ParamsError
from jetatag.errors import StageError
from jetatag.io import atomic_open
from jetatag.models import EXTRACTORS, build_extractor, h_dim
from jetatag.models.heads import Classifier, ProjectionHead, TagDecoder, TagEncoder

TAGGER_FORMAT = "jetatag-tagger"
JOINT_FORMAT = "jetatag-stage1"
_KIND = {TAGGER_FORMAT: "tagger", JOINT_FORMAT: "stage-1"}
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)


class TrainingAudio(Protocol):
    """What a checkpoint records about the audio its model was trained on (the training crops know it)."""

    tags: Sequence[str]  # tag names, in the order of the tag vectors
    sample_rate: int  # Hz
    crop_samples: int  # training input length
    peak_normalize: bool  # whether the audio was scaled to x / max|x|
    mu_law: bool  # whether the audio was mu-law companded first


@dataclass(frozen=True)
class TaggerMeta:
    """What a tagger checkpoint says about itself."""

    extractor: str  # extractor id, a key of EXTRACTORS
    variant: Literal["je", "noje"]  # trained with (je) or without (noje) the joint-embedding stage 1
    tags: list[str]  # tag names in the order of the classifier's outputs
    sample_rate: int  # Hz of the audio the model expects
    crop_samples: int  # input length the model was trained on
    model: dict[str, Any] = field(default_factory=dict)  # ModelParams as a plain dict
    peak_normalize: bool = True  # whether training audio was scaled to x / max|x| (inference must match)
    mu_law: bool = False  # whether training audio was mu-law companded first (audio.mu_law; older checkpoints: no)
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_training(
        cls, *, extractor: str, variant: Literal["je", "noje"], model: ModelParams, audio: TrainingAudio
    ) -> TaggerMeta:
        """The meta of a model trained with ``model`` on ``audio``: the one constructor of both training stages,
        so that every checkpoint records every field (the preprocessing that inference must repeat included)."""
        return cls(
            extractor=extractor,
            variant=variant,
            tags=list(audio.tags),
            sample_rate=audio.sample_rate,
            crop_samples=audio.crop_samples,
            model=dataclasses.asdict(model),
            peak_normalize=audio.peak_normalize,
            mu_law=audio.mu_law,
        )

    def model_params(self) -> ModelParams:
        """The checkpoint's model params as a validated :class:`ModelParams`."""
        params = ModelParams(**self.model)
        params.validate()
        return params


class JointEmbedding(nn.Module):
    """Stage-1 model: extractor + projection head on audio, tag autoencoder on tags.

    ``forward(wave, tags)`` returns h (B, h_dim), z_m and z_t (B, embed_dim, unit norm) and the
    reconstructed tags (B, n_tags) in [0, 1]; the loss is ``reconstruction_loss + pair_loss``.
    """

    def __init__(
        self, extractor: nn.Module, projection: ProjectionHead, tag_encoder: TagEncoder, tag_decoder: TagDecoder
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.projection = projection
        self.tag_encoder = tag_encoder
        self.tag_decoder = tag_decoder

    def forward(self, wave: torch.Tensor, tags: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, L), (B, n_tags)
        # audio branch
        h = self.extractor(wave)  # (B, h_dim)
        z_m = self.projection(h)  # (B, embed_dim)
        # tag autoencoder
        z_t = self.tag_encoder(tags)  # (B, embed_dim)
        tags_hat = self.tag_decoder(z_t)  # (B, n_tags)
        return {"h": h, "z_m": z_m, "z_t": z_t, "tags_hat": tags_hat}


class Tagger(nn.Module):
    """Stage-2 / inference model: extractor → classifier logits.

    Taggers trained with JE also carry the stage-1 projection head and tag encoder, so audio and tag
    sets can be compared in the joint space (retrieval). ``freeze_extractor()`` makes the extractor a
    fixed feature function: no gradients, and it stays in eval mode (BN statistics untouched) even
    when the tagger is put in training mode.
    """

    def __init__(
        self,
        extractor: nn.Module,
        classifier: Classifier,
        projection: ProjectionHead | None = None,
        tag_encoder: TagEncoder | None = None,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.classifier = classifier
        self.projection = projection
        self.tag_encoder = tag_encoder
        self.extractor_frozen = False

    @classmethod
    def from_joint(cls, joint: JointEmbedding, classifier: Classifier) -> Tagger:
        """Tagger sharing a stage-1 model's extractor, projection head and tag encoder."""
        return cls(joint.extractor, classifier, projection=joint.projection, tag_encoder=joint.tag_encoder)

    def freeze_extractor(self) -> Tagger:
        """Stop training the extractor: no gradients, always eval mode. Returns self."""
        self.extractor.requires_grad_(False)
        self.extractor_frozen = True
        self.extractor.eval()
        return self

    def train(self, mode: bool = True) -> Tagger:
        """Set training mode, keeping a frozen extractor in eval mode."""
        super().train(mode)
        if self.extractor_frozen:
            self.extractor.eval()
        return self

    def embed(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        """Extractor output h (B, h_dim)."""
        return self.extractor(wave)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        return self.classifier(self.extractor(wave))  # (B, n_tags) logits

    def audio_embedding(self, wave: torch.Tensor) -> torch.Tensor:  # (B, L)
        """Joint-space audio embedding z_m (B, embed_dim); JE taggers only."""
        if self.projection is None:
            raise ValueError("this tagger has no projection head (trained without JE)")
        return self.projection(self.extractor(wave))

    def tag_embedding(self, tags: torch.Tensor) -> torch.Tensor:  # (B, n_tags)
        """Joint-space tag embedding z_t (B, embed_dim); JE taggers only."""
        if self.tag_encoder is None:
            raise ValueError("this tagger has no tag encoder (trained without JE)")
        return self.tag_encoder(tags)


def build_joint_embedding(extractor: str, model: ModelParams, *, n_tags: int, sample_rate: int) -> JointEmbedding:
    """Fresh stage-1 model: extractor ``extractor`` sized by ``model``, heads of ``model.embed_dim``."""
    audio = build_extractor(extractor, model, sample_rate=sample_rate)
    return JointEmbedding(
        audio,
        ProjectionHead(h_dim(audio), model.embed_dim),
        TagEncoder(n_tags, model.embed_dim, norm=model.tag_encoder_norm),
        TagDecoder(model.embed_dim, n_tags),
    )


def build_tagger(
    extractor: str, model: ModelParams, *, n_tags: int, sample_rate: int, joint_heads: bool = False
) -> Tagger:
    """Fresh tagger; with ``joint_heads`` it also carries (untrained) projection head and tag encoder."""
    audio = build_extractor(extractor, model, sample_rate=sample_rate)
    return Tagger(
        audio,
        Classifier(h_dim(audio), n_tags),
        projection=ProjectionHead(h_dim(audio), model.embed_dim) if joint_heads else None,
        tag_encoder=TagEncoder(n_tags, model.embed_dim, norm=model.tag_encoder_norm) if joint_heads else None,
    )


def save_tagger(path: Path | str, tagger: Tagger, *, meta: TaggerMeta) -> None:
    """Write ``tagger`` and ``meta`` to ``path`` atomically (a torch file of tensors and plain data only)."""
    if len(meta.tags) != tagger.classifier.out.out_features:
        raise ValueError(f"meta has {len(meta.tags)} tags but the classifier has {tagger.classifier.out.out_features}")
    _save(path, TAGGER_FORMAT, tagger, meta, joint_heads=tagger.projection is not None)


def load_tagger(path: Path | str, map_location: str | torch.device = "cpu") -> tuple[Tagger, TaggerMeta]:
    """Rebuild a tagger from its checkpoint alone; returns it in eval mode with its meta.

    Raises :class:`StageError` naming ``path`` when the file is missing, is not a jetatag tagger
    checkpoint, has an unknown format version, or does not match the model it describes.
    """
    checkpoint, meta, model = _load(path, TAGGER_FORMAT, map_location)
    tagger = build_tagger(
        meta.extractor,
        model,
        n_tags=len(meta.tags),
        sample_rate=meta.sample_rate,
        joint_heads=bool(checkpoint.get("joint_heads")),
    )
    _load_weights(path, tagger, checkpoint, meta)
    return tagger.to(map_location).eval(), meta


def save_joint(path: Path | str, model: JointEmbedding, *, meta: TaggerMeta) -> None:
    """Write the stage-1 :class:`JointEmbedding` and its meta to ``path`` atomically."""
    _save(path, JOINT_FORMAT, model, meta)


def load_joint(path: Path | str, map_location: str | torch.device = "cpu") -> tuple[JointEmbedding, TaggerMeta]:
    """Rebuild the stage-1 model from its checkpoint alone; :class:`StageError` naming ``path`` when it cannot."""
    checkpoint, meta, model_params = _load(path, JOINT_FORMAT, map_location)
    model = build_joint_embedding(meta.extractor, model_params, n_tags=len(meta.tags), sample_rate=meta.sample_rate)
    _load_weights(path, model, checkpoint, meta)
    return model.to(map_location), meta


def _save(path: Path | str, fmt: str, module: nn.Module, meta: TaggerMeta, **extra: Any) -> None:
    checkpoint = {"format": fmt, "meta": dataclasses.asdict(meta), **extra, "state_dict": module.state_dict()}
    with atomic_open(path, "wb") as handle:  # a file object: records named "archive/", not after the temp file
        torch.save(checkpoint, handle)


def _load(
    path: Path | str, fmt: str, map_location: str | torch.device
) -> tuple[dict[str, Any], TaggerMeta, ModelParams]:
    """Read a checkpoint of format ``fmt`` and check its marker, meta, version, extractor and model params."""
    path = Path(path)
    what = _KIND[fmt]
    if not path.is_file():
        raise StageError(f"{path}: {what} checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for foreign files (pickle, zip, EOF, ...)
        raise StageError(f"{path}: not a jetatag {what} checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != fmt:
        raise StageError(f"{path}: not a jetatag {what} checkpoint (no '{fmt}' format marker)")
    try:
        meta = TaggerMeta(**checkpoint["meta"])
    except (KeyError, TypeError) as err:
        raise StageError(f"{path}: {what} checkpoint has malformed meta data: {err}") from err
    if meta.format_version not in SUPPORTED_VERSIONS:
        raise StageError(
            f"{path}: {what} checkpoint format version {meta.format_version!r} is not supported "
            f"(this jetatag reads {', '.join(map(str, SUPPORTED_VERSIONS))}); re-run the stage that wrote it"
        )
    if meta.extractor not in EXTRACTORS:
        raise StageError(f"{path}: unknown extractor {meta.extractor!r} (known: {', '.join(EXTRACTORS)})")
    try:
        model = meta.model_params()
    except (TypeError, ParamsError) as err:
        raise StageError(f"{path}: {what} checkpoint has invalid model params: {err}") from err
    return checkpoint, meta, model


def _load_weights(path: Path | str, module: nn.Module, checkpoint: dict[str, Any], meta: TaggerMeta) -> None:
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError) as err:
        raise StageError(f"{path}: weights do not match the {meta.extractor} model they describe: {err}") from err
