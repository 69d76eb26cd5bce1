"""Typed, validated view of ``params.yaml``.

Every knob lives in ``params.yaml``; this module loads it (optionally layered with profile files)
into frozen dataclasses and rejects unknown keys, wrong types and impossible values *before* any
stage does work, with one message naming the offending key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from jetatag.extractors import EXTRACTOR_IDS, extractor_spec

VARIANTS = ("noje", "je")

TRAINING_SWITCHES = (
    "audio.mu_law",
    "model.pair_loss",
    "model.tag_encoder_norm",
    "model.hcnn_head",
    "model.hcnn_front_end",
    "model.sinc_design",
    "model.init_and_bn",
    "model.se_squeeze",
    "train.pair_target",
    "train.classifier_bias",
    "train.optimizer_state",
    "train.batch_order",
    "train.conv_l2",
    "train.je_embedding_cache",
    "train.precision",
)
"""Params keys where the demo, the paper's text and the authors' code may differ; Table 1 prints their values."""


PairLoss = Literal["paper", "a21", "a22", "contrastive"]
"""``model.pair_loss``: the paper's text, what the authors' code minimises (A21 = commit cb1c2ab, A22 = head
7d33628 of jaehwlee/jetatag), or jetatag's in-batch contrastive loss (:mod:`jetatag.models.losses`)."""

TagEncoderNorm = Literal["layernorm", "none"]
"""``model.tag_encoder_norm``: LayerNorm between the tag encoder's layers (the paper) or none (A21, A22)."""

HcnnHead = Literal["dense", "a21"]
"""``model.hcnn_head``: Harmonic-CNN's pooled blocks 5-7 then Dense → BN → ReLU (jetatag) or taken as h (A21, A22)."""

HcnnFrontEnd = Literal["won", "a21"]
"""``model.hcnn_front_end``: Harmonic-CNN's front end as Won et al. wrote it (centred power STFT, dB, harmonics
stacked as channels) or A21's (kapre: magnitude STFT padded at the start, dB floored 80 dB under each example's
maximum, and a Reshape that deals each frame's harmonic-major bands out over the six channels)."""

InitAndBn = Literal["jetatag", "a21"]
"""``model.init_and_bn``: extractor initialisation and BatchNorm as jetatag builds them (He-uniform convs, torch
BatchNorm: momentum 0.1, eps 1e-5) or as A21's Keras layers are (Glorot-uniform Harmonic-CNN and 1×1 shortcut
convs, BatchNorm momentum 0.99 in Keras' convention, eps 1e-3)."""

SeSqueeze = Literal["block", "pooled"]
"""``model.se_squeeze``: where Sample-CNN +SE's gate squeezes: the block's output before MaxPool (jetatag, Kim et
al.) or the pooled output (A21, A22: ``se_block`` gates ``basic_block``, which ends in MaxPool). Both gate the
pooled output."""

SincDesign = Literal["jetatag", "a21"]
"""``model.sinc_design``: Music-SincNet's learnable sinc filters designed at the audio's rate, then BN → ReLU
(jetatag, the Music-SincNet paper's code), or A21's: fixed, designed for 22,050 Hz with a sinc lacking π, no BN/ReLU."""

BatchOrder = Literal["shuffled", "annotation"]
"""``train.batch_order``: training batches shuffled each epoch, dropping the last partial batch (jetatag), or in
annotation-row order keeping it (A21, A22: no shuffling)."""

Precision = Literal["auto", "float32", "bf16"]
"""``train.precision``: training's forward passes under bf16 autocast on CUDA and in float32 on CPU ("auto"), in
float32 everywhere, or under bf16 autocast everywhere (on a CPU only fast with native bf16: AVX512-BF16 or AMX)."""

OptimizerState = Literal["fresh", "carry"]
"""``train.optimizer_state``: a fresh optimizer per schedule phase (jetatag), or consecutive phases of one optimizer
kind share it and only change its learning rate (A21, A22: SGD momentum carries across the drops)."""


class ParamsError(ValueError):
    """A params file is missing, malformed or holds a bad value."""


SYNTHETIC_SOURCE = "synthetic"
"""``data.source`` value that selects the synthetic mirror written by the ``synth`` stage."""


@dataclass(frozen=True)
class DataParams:
    source: str = SYNTHETIC_SOURCE
    n_tags: int = 50
    retries: int = 5
    timeout_s: float = 60.0
    backoff_s: float = 1.0

    def validate(self) -> None:
        _check(bool(self.source.strip()), "data.source", "must be 'synthetic', an http(s) URL or a local folder")
        _check(self.n_tags >= 2, "data.n_tags", "must be >= 2")
        _check(self.retries >= 1, "data.retries", "must be >= 1")
        _check(self.timeout_s > 0, "data.timeout_s", "must be > 0")
        _check(self.backoff_s >= 0, "data.backoff_s", "must be >= 0")


@dataclass(frozen=True)
class SynthParams:
    n_clips: int = 480
    clip_seconds: float = 10.0
    seed: int = 0
    workers: int = 2

    def validate(self) -> None:
        _check(self.n_clips >= 16, "synth.n_clips", "must be >= 16 (one clip per folder 0-f at least)")
        _check(self.clip_seconds >= 1.0, "synth.clip_seconds", "must be >= 1.0")
        _check(self.workers >= 1, "synth.workers", "must be >= 1")


@dataclass(frozen=True)
class AudioParams:
    sample_rate: int = 16000
    peak_normalize: bool = True
    mu_law: bool = False  # mu-law companding (mu = 255) before peak normalisation, as A21's preprocessing
    dtype: Literal["int16", "float16"] = "int16"
    shard_mb: float = 256.0
    short_clips: Literal["pad", "reject"] = "pad"
    workers: int = 2

    def validate(self) -> None:
        _check(4000 <= self.sample_rate <= 96000, "audio.sample_rate", "must be within 4000..96000 Hz")
        _check(self.shard_mb > 0, "audio.shard_mb", "must be > 0")
        _check(self.workers >= 1, "audio.workers", "must be >= 1")


@dataclass(frozen=True)
class ModelParams:
    width: float = 0.125
    hcnn_crop_samples: int = 80000
    samplecnn_crop_samples: int = 59049
    sinc_filters: int = 256
    sinc_taps: int = 251
    embed_dim: int = 128
    pair_loss: PairLoss = "paper"
    margin: float = 0.4  # margin of the "a22" and "contrastive" pair losses
    tag_encoder_norm: TagEncoderNorm = "layernorm"
    hcnn_head: HcnnHead = "dense"
    hcnn_front_end: HcnnFrontEnd = "won"
    sinc_design: SincDesign = "jetatag"
    init_and_bn: InitAndBn = "jetatag"
    se_squeeze: SeSqueeze = "block"

    def validate(self) -> None:
        _check(0 < self.width <= 4, "model.width", "must be in (0, 4]")
        _check(self.hcnn_crop_samples >= 4096, "model.hcnn_crop_samples", "must be >= 4096")
        _check(
            self.samplecnn_crop_samples >= 3**10,
            "model.samplecnn_crop_samples",
            "must be >= 59049 (3^10: ten stride-3 stages)",
        )
        _check(self.sinc_filters >= 1, "model.sinc_filters", "must be >= 1")
        _check(self.sinc_taps >= 3 and self.sinc_taps % 2 == 1, "model.sinc_taps", "must be odd and >= 3")
        _check(self.embed_dim >= 2, "model.embed_dim", "must be >= 2")
        _check(self.margin >= 0, "model.margin", "must be >= 0")

    def crop_samples(self, extractor: str) -> int:
        """Training/evaluation crop length for ``extractor``: the field its spec's ``crop_key`` names."""
        return getattr(self, extractor_spec(extractor).crop_key)


@dataclass(frozen=True)
class Phase:
    """One phase of a training schedule: an optimizer at a fixed learning rate for some epochs."""

    optimizer: Literal["adam", "sgd"]
    lr: float
    epochs: int

    def validate(self, key: str) -> None:
        _check(self.lr > 0, f"{key}.lr", "must be > 0")
        _check(self.epochs >= 0, f"{key}.epochs", "must be >= 0")


@dataclass(frozen=True)
class TrainParams:
    batch_size: int = 16
    seed: int = 0
    workers: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Precision = "auto"
    conv_l2: float = 1e-4
    valid_crops: int = 4
    pair_target: Literal["joint", "detached"] = "joint"
    classifier_bias: Literal["zeros", "prior"] = "zeros"
    je_embedding_cache: bool = True
    je_cache_crops: int = 16
    optimizer_state: OptimizerState = "fresh"
    batch_order: BatchOrder = "shuffled"
    stage1_schedule: tuple[Phase, ...] = (Phase("adam", 1e-3, 4), Phase("sgd", 1e-3, 1))
    stage2_schedule: tuple[Phase, ...] = (Phase("adam", 1e-3, 4), Phase("sgd", 1e-3, 1))

    def validate(self) -> None:
        _check(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        _check(self.workers >= 0, "train.workers", "must be >= 0")
        _check(self.seed >= 0, "train.seed", "must be >= 0")
        _check(self.conv_l2 >= 0, "train.conv_l2", "must be >= 0")
        _check(self.valid_crops >= 1, "train.valid_crops", "must be >= 1")
        _check(self.je_cache_crops >= 1, "train.je_cache_crops", "must be >= 1")
        for name in ("stage1_schedule", "stage2_schedule"):
            phases = getattr(self, name)
            _check(len(phases) >= 1, f"train.{name}", "needs at least one phase")
            for i, phase in enumerate(phases):
                phase.validate(f"train.{name}[{i}]")
            _check(sum(p.epochs for p in phases) >= 1, f"train.{name}", "needs at least one epoch in total")


@dataclass(frozen=True)
class EvaluateParams:
    n_crops: int = 16
    batch_size: int = 32
    bootstrap: int = 1000
    seed: int = 0

    def validate(self) -> None:
        _check(self.n_crops >= 1, "evaluate.n_crops", "must be >= 1")
        _check(self.batch_size >= 1, "evaluate.batch_size", "must be >= 1")
        _check(self.bootstrap >= 0, "evaluate.bootstrap", "must be >= 0")


@dataclass(frozen=True)
class ProbeParams:
    """The reference probe: logistic regression on per-clip log-mel mean/std features."""

    n_mels: int = 128  # mel bands of the log-mel spectrogram; features = mean and std of each band (2 * n_mels)
    n_fft: int = 512  # STFT frame, samples (32 ms at 16 kHz)
    hop_length: int = 256  # STFT hop, samples
    c: float = 0.1  # inverse L2 strength of the logistic regression (scikit-learn's C), standardised features
    max_iter: int = 1000  # lbfgs iterations per tag
    workers: int = 2  # feature-extraction processes (the output does not depend on them)

    def validate(self) -> None:
        _check(self.n_mels >= 1, "probe.n_mels", "must be >= 1")
        _check(self.n_fft >= 16, "probe.n_fft", "must be >= 16")
        _check(1 <= self.hop_length <= self.n_fft, "probe.hop_length", "must be within 1..probe.n_fft")
        _check(self.c > 0, "probe.c", "must be > 0")
        _check(self.max_iter >= 1, "probe.max_iter", "must be >= 1")
        _check(self.workers >= 1, "probe.workers", "must be >= 1")


@dataclass(frozen=True)
class ReportParams:
    tsne_tag: str = "techno"
    tsne_perplexity: float = 30.0
    per_tag_extractor: str = "hcnn"
    seed: int = 0
    profile: str = "demo"

    def validate(self) -> None:
        _check(self.tsne_perplexity > 0, "report.tsne_perplexity", "must be > 0")
        _check(bool(self.profile.strip()), "report.profile", "must name the profile (e.g. demo, paper)")
        _check(
            self.per_tag_extractor in EXTRACTOR_IDS,
            "report.per_tag_extractor",
            f"must be one of {', '.join(EXTRACTOR_IDS)}",
        )


@dataclass(frozen=True)
class Params:
    """All of ``params.yaml``: one section per pipeline part."""

    data: DataParams = field(default_factory=DataParams)
    synth: SynthParams = field(default_factory=SynthParams)
    audio: AudioParams = field(default_factory=AudioParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    probe: ProbeParams = field(default_factory=ProbeParams)
    report: ReportParams = field(default_factory=ReportParams)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).validate()


def _check(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ParamsError(f"{key}: {problem}")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base`` recursively (mappings merge, everything else replaces)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_params(paths: Path | str | Sequence[Path | str]) -> Params:
    """Load, layer (later files override earlier ones) and validate params files.

    Raises :class:`ParamsError` naming the file or key on any problem.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    raw: dict[str, Any] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise ParamsError(f"{path}: params file not found")
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ParamsError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(doc, Mapping):
            raise ParamsError(f"{path}: top level must be a mapping of sections")
        raw = deep_merge(raw, doc)
    return params_from_dict(raw)


def params_from_dict(raw: Mapping[str, Any]) -> Params:
    """Build validated :class:`Params` from a plain mapping (e.g. Snakemake's ``config``)."""
    params = _build(Params, raw, "")
    params.validate()
    return params


def params_to_dict(params: Params) -> dict[str, Any]:
    """Plain-data form of ``params`` (lists for schedules), suitable for YAML or checkpoints."""
    return _plain(dataclasses.asdict(params))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, checking keys and types."""
    where = prefix or "params"
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{where}: must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ParamsError(
            f"{prefix + '.' if prefix else ''}{unknown[0]}: unknown key (known: {', '.join(sorted(names))})"
        )
    kwargs = {key: _coerce(hints[key], value, f"{prefix}.{key}" if prefix else key) for key, value in raw.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``hint`` and convert it (int -> float, list -> tuple)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ParamsError(f"{key}: must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin is tuple:
        (item, _) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: must be a list, got {type(value).__name__}")
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported union in params schema at {key}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported type {hint!r} in params schema at {key}")


def param_value(params: Mapping[str, Any], key: str) -> Any:
    """The value of dotted ``key`` ("section.name", or a whole "section") in a params mapping.

    Takes the mapping form (:func:`params_to_dict`, or a Snakemake config) so that DVC stage declarations,
    Snakemake rules and the reports read a key the same way.
    """
    value: Any = params
    for part in key.split("."):
        value = value[part]
    return value
