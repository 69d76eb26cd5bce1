"""Stage 2: the tag classifier, on the frozen stage-1 extractor (je) or trained end to end with it (noje).

je: the stage-1 extractor is frozen (no gradients) and held in eval mode, so its weights, BatchNorm
statistics and dropout stay exactly as stage 1 left them; only the classifier learns, on h. By default
h is computed once for a fixed grid of crops per clip (:mod:`jetatag.train.embeddings`) rather than
in every epoch. The saved tagger also carries the stage-1 projection head and tag encoder, for
retrieval in the joint space.
noje (the paper's baseline): a fresh extractor and the classifier trained together.
Both minimise binary cross-entropy on the classifier's logits and write a :func:`save_tagger` checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from jetatag.config import Params, Precision
from jetatag.data.dataset import EvalCrops
from jetatag.errors import StageError
from jetatag.models import h_dim
from jetatag.models.heads import Classifier
from jetatag.models.losses import classification_loss
from jetatag.models.tagger import Tagger, build_tagger, load_joint, save_tagger
from jetatag.train.device import autocast
from jetatag.train.embeddings import CachedCrops, cache_embeddings, cached_batches
from jetatag.train.loop import EpochData, Task
from jetatag.train.resume import run_fingerprint
from jetatag.train.setup import start_run
from jetatag.train.validation import crop_batches, macro_roc_auc

log = logging.getLogger(__name__)


def validate_tagger(
    forward: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    precision: Precision,
) -> dict[str, float]:
    """Crop-level BCE and clip-level macro ROC-AUC (mean of the crops' sigmoid scores) on the valid crops.

    ``batches`` yields per-clip inputs (B, k, ...) (waveform crops, or their cached h) and clip tags
    (B, n_tags); ``forward`` maps (B·k, ...) inputs to logits.
    """
    scores, truth = [], []
    loss_sum, count = 0.0, 0
    for inputs, tags in batches:
        b, k = inputs.shape[:2]
        with autocast(device, precision):
            logits = forward(inputs.flatten(0, 1)).float().reshape(b, k, -1)  # (B, k, n_tags)
        loss_sum += classification_loss(logits, tags[:, None].expand_as(logits)).item() * b
        count += b
        scores.append(torch.sigmoid(logits).mean(dim=1).cpu())  # (B, n_tags) clip scores
        truth.append(tags.cpu())
    metrics = {"loss": loss_sum / count}
    auc = macro_roc_auc(torch.cat(truth).numpy(), torch.cat(scores).numpy())
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _je_tagger(stage1_path: Path, *, extractor: str, params: Params, tags: list[str], sample_rate: int) -> Tagger:
    """Classifier on the frozen stage-1 model of ``stage1_path``, after checking it matches this run."""
    joint, meta = load_joint(stage1_path)
    current = dataclasses.asdict(params.model)
    mismatch = [
        f"model.{key}={meta.model.get(key)!r} (params: {value!r})"
        for key, value in current.items()
        if meta.model.get(key) != value
    ]
    if meta.extractor != extractor:
        mismatch.insert(0, f"extractor {meta.extractor!r} (asked: {extractor!r})")
    if meta.tags != tags or meta.sample_rate != sample_rate:
        mismatch.append("its tags or sample rate differ from the audio folder's")
    if mismatch:
        raise StageError(
            f"{stage1_path}: stage-1 checkpoint does not match this run: {'; '.join(mismatch)}; re-run stage1"
        )
    tagger = Tagger.from_joint(joint, Classifier(h_dim(joint.extractor), len(tags))).freeze_extractor()
    for head in (tagger.projection, tagger.tag_encoder):  # carried for retrieval, not trained here
        head.requires_grad_(False)
    return tagger


def _cached_task(
    name: str, tagger: Tagger, params: Params, valid_set: EvalCrops, *, crops: EvalCrops, device: torch.device
) -> tuple[CachedCrops, Task]:
    """The JE classifier's training data and task on h cached once from the frozen extractor.

    ``crops`` supplies the train clips; h is cached for ``train.je_cache_crops`` crops of each at hop
    (len − L) // K and for the ``valid_set`` crops. Logs how long caching took.
    """
    train = params.train
    grid = EvalCrops(crops.audio_dir, split="train", crop_samples=crops.crop_samples, n_crops=train.je_cache_crops)
    train_h, train_tags = cache_embeddings(tagger.extractor, grid, train=train, device=device, what="train")
    valid_h, valid_tags = cache_embeddings(tagger.extractor, valid_set, train=train, device=device, what="valid")
    classifier = tagger.classifier
    task = Task(
        name=name,
        model=tagger,
        losses=lambda h, batch_tags: {"loss": classification_loss(classifier(h).float(), batch_tags)},
        validate=lambda: validate_tagger(
            classifier,
            cached_batches(valid_h, valid_tags, batch_size=train.batch_size, device=device),
            device,
            train.precision,
        ),
    )
    return CachedCrops(train_h, train_tags, seed=train.seed), task


def run_stage2(
    params: Params,
    *,
    extractor: str,
    variant: str,
    audio_dir: Path,
    stage1_path: Path | None,
    out_path: Path,
    live_dir: Path,
) -> None:
    """Train stage-2 tagger ``variant`` (je|noje) of ``extractor``; write ``out_path``, metrics to ``live_dir``."""
    if variant not in ("je", "noje"):
        raise StageError(f"stage2: unknown variant {variant!r} (je or noje)")
    if variant == "je" and stage1_path is None:
        raise StageError("stage2 --variant je needs the stage-1 checkpoint")
    if variant == "noje" and stage1_path is not None:
        log.warning("stage2 noje trains from scratch: ignoring the stage-1 checkpoint %s", stage1_path)
        stage1_path = None
    run = start_run(params, extractor=extractor, audio_dir=audio_dir, out_path=out_path, live_dir=live_dir)
    train, device, train_set = params.train, run.device, run.train_set
    tags = list(train_set.tags)
    if stage1_path is not None:
        stage1_path = Path(stage1_path)
        tagger = _je_tagger(
            stage1_path, extractor=extractor, params=params, tags=tags, sample_rate=train_set.sample_rate
        )
    else:
        tagger = build_tagger(extractor, params.model, n_tags=len(tags), sample_rate=train_set.sample_rate)
    if train.classifier_bias == "prior":
        tagger.classifier.start_at_prior(train_set.tag_matrix.mean(dim=0))
    tagger.to(device)
    name = f"stage2 {extractor}-{variant}"
    data: EpochData = train_set
    if stage1_path is not None and train.je_embedding_cache:
        data, task = _cached_task(name, tagger, params, run.valid_set, crops=train_set, device=device)
    else:
        task = Task(
            name=name,
            model=tagger,
            losses=lambda wave, batch_tags: {"loss": classification_loss(tagger(wave).float(), batch_tags)},
            validate=lambda: validate_tagger(tagger, crop_batches(run.valid_loader, device), device, train.precision),
        )
    run.fit(
        task,
        data,
        phases=train.stage2_schedule,
        fingerprint=run_fingerprint(
            "stage2", params, extractor=extractor, variant=variant, audio_dir=run.audio_dir, stage1_path=stage1_path
        ),
        save=lambda path: save_tagger(path, tagger.cpu(), meta=run.meta(variant)),
        note=f", extractor frozen from {stage1_path}" if stage1_path else "",
    )
