"""Stage ``evaluate``: score every evaluation crop of the test clips and write both protocols' metrics.

One pass over the test split's crops gives segment scores, the crops' extractor outputs h and (for
joint-embedding models) their projections z_m; clip-level values are the mean over a clip's crops.
Everything after inference is numpy (:mod:`jetatag.evaluate.summary`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from jetatag.config import Params
from jetatag.data.dataset import EvalCrops
from jetatag.errors import StageError
from jetatag.evaluate.summary import Scored, write_evaluation
from jetatag.models.tagger import Tagger, load_tagger
from jetatag.progress import progress

log = logging.getLogger(__name__)


@torch.inference_mode()
def score_crops(tagger: Tagger, crops: EvalCrops, *, batch_size: int, device: torch.device) -> Scored:
    """Run ``tagger`` on every crop of ``crops``, ``batch_size`` clips per forward pass."""
    tagger.to(device).eval()
    loader = DataLoader(crops, batch_size=batch_size, shuffle=False, num_workers=0)
    tags, scores, hs, zs = [], [], [], []
    with progress(total=len(crops), unit="clip", desc="evaluate") as bar:
        for waves, clip_tags in loader:
            n_clips, n_crops, length = waves.shape
            h = tagger.embed(waves.reshape(n_clips * n_crops, length).to(device))  # (B * C, h_dim)
            score = torch.sigmoid(tagger.classifier(h)).float()  # (B * C, n_tags)
            scores.append(score.reshape(n_clips, n_crops, -1).cpu().numpy())
            hs.append(h.float().reshape(n_clips, n_crops, -1).mean(dim=1).cpu().numpy())  # (B, h_dim)
            if tagger.projection is not None:
                z = tagger.projection(h).float().reshape(n_clips, n_crops, -1).mean(dim=1)  # (B, embed_dim)
                zs.append(z.cpu().numpy())
            tags.append(clip_tags.numpy().astype(np.uint8))
            bar.update(n_clips)
    return Scored(
        tags=np.concatenate(tags),
        segment_scores=np.concatenate(scores),
        h=np.concatenate(hs),
        z_m=np.concatenate(zs) if zs else None,
    )


@torch.inference_mode()
def tag_query_embeddings(tagger: Tagger, n_tags: int, device: torch.device) -> np.ndarray | None:
    """Tag-encoder embeddings z_t of the one-hot single-tag queries, [shape=(n_tags, embed_dim)], or None."""
    if tagger.tag_encoder is None:
        return None
    return tagger.tag_encoder(torch.eye(n_tags, device=device)).float().cpu().numpy()


def dataset_info(params: Params, crops: EvalCrops) -> dict[str, object]:
    """What the scores were computed on: dataset name and source, split, sample rate and tags."""
    source = params.data.source
    return {
        "name": "synthetic" if source == "synthetic" else "MTAT",
        "source": source,
        "split": "test",
        "sample_rate": crops.sample_rate,
        "n_tags": len(crops.tags),
        "tags": list(crops.tags),
    }


def run_evaluate(params: Params, *, model_path: Path, audio_dir: Path, out_json: Path, out_arrays: Path) -> None:
    """Evaluate the checkpoint ``model_path`` on the test clips of ``audio_dir``; write metrics and arrays."""
    tagger, meta = load_tagger(model_path)
    crops = EvalCrops(audio_dir, split="test", crop_samples=meta.crop_samples, n_crops=params.evaluate.n_crops)
    if list(meta.tags) != list(crops.tags):
        raise StageError(f"{model_path}: model tags differ from {audio_dir} tags; re-train on this audio")
    if meta.sample_rate != crops.sample_rate:
        raise StageError(
            f"{model_path}: model expects {meta.sample_rate} Hz but {audio_dir} holds {crops.sample_rate} Hz audio"
        )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log.info("evaluate %s-%s on %d test clips (%s)", meta.extractor, meta.variant, len(crops), device)

    scored = score_crops(tagger, crops, batch_size=params.evaluate.batch_size, device=device)
    record = write_evaluation(
        out_json=out_json,
        out_arrays=out_arrays,
        header={
            "extractor": meta.extractor,
            "variant": meta.variant,
            "model": str(model_path),
            "dataset": dataset_info(params, crops),
            "crop_samples": meta.crop_samples,
        },
        scored=scored,
        clip_ids=crops.clip_ids,
        tag_names=crops.tags,
        z_t=tag_query_embeddings(tagger, len(crops.tags), device),
        n_resamples=params.evaluate.bootstrap,
        seed=params.evaluate.seed,
    )
    log.info(
        "%s-%s: paper ROC-AUC %.4f PR-AUC %.4f | macro ROC-AUC %.4f AP %.4f -> %s",
        meta.extractor,
        meta.variant,
        record["paper"]["roc_auc"],
        record["paper"]["pr_auc"],
        record["literature"]["roc_auc"],
        record["literature"]["ap"],
        out_json,
    )
