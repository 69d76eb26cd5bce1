"""Stage 1 (JE): train the tag autoencoder, the extractor and the projection head together.

Loss per batch ``L = L_AE + L_pair``: ``L_AE`` is the MSE between the tags and their reconstruction
through the tag autoencoder; ``L_pair`` pulls the audio embedding z_m of a crop towards the tag
embedding z_t of its clip (``model.pair_loss``: the paper's, A21's, A22's or jetatag's contrastive loss).
The output is a self-describing checkpoint of the whole :class:`JointEmbedding` that stage 2 (je) reads.
Validation also logs the geometry of the joint space every epoch (:mod:`jetatag.train.geometry`):
mean pairwise cosine and effective rank of z_t over the distinct tag vectors and of z_m over the
validation crops, the figures that show whether the embedding collapses.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from jetatag.config import ModelParams, Params, Precision
from jetatag.models.losses import pair_loss, reconstruction_loss
from jetatag.models.tagger import JointEmbedding, build_joint_embedding, save_joint
from jetatag.train.device import autocast
from jetatag.train.geometry import geometry
from jetatag.train.loop import Losses, Task
from jetatag.train.resume import run_fingerprint
from jetatag.train.setup import start_run
from jetatag.train.validation import crop_batches

log = logging.getLogger(__name__)


def joint_losses(
    out: dict[str, torch.Tensor], tags: torch.Tensor, model: ModelParams, *, pair_target: str = "joint"
) -> Losses:
    """``L = L_AE + L_pair`` and its terms for one batch of :class:`JointEmbedding` outputs, in float32.

    ``pair_target`` "joint" (the paper) lets L_pair's gradient reach the tag encoder as well as the audio
    branch; "detached" stops it at z_t, so the tag embedding is shaped by L_AE alone and the pair loss
    only pulls z_m towards it (no collapsed solution where both sides agree on one constant vector).
    """
    ae = reconstruction_loss(tags, out["tags_hat"].float())
    z_t = out["z_t"].float()
    if pair_target == "detached":
        z_t = z_t.detach()
    pair = pair_loss(out["z_m"].float(), z_t, kind=model.pair_loss, margin=model.margin)
    return {"loss": ae + pair, "ae_loss": ae, "pair_loss": pair}


def validate_joint(
    model: JointEmbedding,
    loader: DataLoader,
    device: torch.device,
    params: ModelParams,
    tag_vectors: torch.Tensor,
    *,
    precision: Precision,
) -> dict[str, float]:
    """Mean stage-1 loss terms on the valid crops, and the geometry of z_m (valid crops) and z_t (``tag_vectors``).

    Each crop position of a batch of clips is scored as one batch: that keeps a batch to one crop per
    clip, as in training, which the contrastive loss (pairs within the batch) needs. ``tag_vectors``
    [shape=(n, n_tags)] are the distinct tag vectors whose z_t geometry is measured.
    """
    sums: dict[str, float] = {}
    count = 0
    z_m = []
    for crops, tags in crop_batches(loader, device):
        b, k, length = crops.shape
        with autocast(device, precision):
            out = model(crops.reshape(b * k, length), tags.repeat_interleave(k, dim=0))
        out = {key: value.reshape(b, k, -1) for key, value in out.items()}  # (B, k, D) per output
        z_m.append(out["z_m"].float().reshape(b * k, -1).cpu())
        for j in range(k):
            terms = joint_losses({key: value[:, j] for key, value in out.items()}, tags, params)
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.item() * b
            count += b
    metrics = {key: total / count for key, total in sums.items()}
    z_t = model.tag_encoder(tag_vectors.to(device)).float().cpu()  # (n, embed_dim)
    return metrics | geometry(z_t, "zt") | geometry(torch.cat(z_m), "zm")


def distinct_tag_vectors(*tag_sets: torch.Tensor) -> torch.Tensor:
    """The distinct rows of the stacked clip tag matrices, [shape=(n_distinct, n_tags)]."""
    return torch.unique(torch.cat(tag_sets), dim=0)


def run_stage1(params: Params, *, extractor: str, audio_dir: Path, out_path: Path, live_dir: Path) -> None:
    """Train stage 1 for ``extractor`` on ``audio_dir``; write checkpoint ``out_path`` and metrics to ``live_dir``."""
    run = start_run(params, extractor=extractor, audio_dir=audio_dir, out_path=out_path, live_dir=live_dir)
    train, device = params.train, run.device
    tag_vectors = distinct_tag_vectors(run.train_set.tag_matrix, run.valid_set.tag_matrix)
    model = build_joint_embedding(
        extractor, params.model, n_tags=len(run.train_set.tags), sample_rate=run.train_set.sample_rate
    ).to(device)
    task = Task(
        name=f"stage1 {extractor}",
        model=model,
        losses=lambda wave, tags: joint_losses(model(wave, tags), tags, params.model, pair_target=train.pair_target),
        validate=lambda: validate_joint(
            model, run.valid_loader, device, params.model, tag_vectors, precision=train.precision
        ),
    )
    run.fit(
        task,
        run.train_set,
        phases=train.stage1_schedule,
        fingerprint=run_fingerprint("stage1", params, extractor=extractor, audio_dir=run.audio_dir),
        save=lambda path: save_joint(path, model.cpu(), meta=run.meta("je")),
    )
