"""Synthetic evaluation outputs for tests: scores of a model of chosen skill, written as ``evaluate`` writes them."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from jetatag.evaluate.summary import Scored, write_evaluation

TAGS = ["techno", "rock", "piano", "quiet", "guitar"]


def synthetic_scored(
    seed: int, *, n_clips: int = 80, n_crops: int = 4, skill: float = 0.25, truth_seed: int | None = None
) -> tuple[Scored, np.ndarray]:
    """Scores that rank tagged clips higher by ``skill``, embeddings near each clip's tags, and the tag queries z_t.

    ``truth_seed`` fixes the ground truth and the clip-level noise separately from ``seed``, so two "models" of
    different skill can share the same test clips (as JE and no-JE models do).
    """
    truth = np.random.default_rng(seed if truth_seed is None else truth_seed)
    tags = (truth.random((n_clips, len(TAGS))) < 0.35).astype(np.uint8)
    clip_noise = truth.random((n_clips, 1, len(TAGS)))  # what averaging the crops cannot remove
    rng = np.random.default_rng(seed)
    crop_noise = rng.random((n_clips, n_crops, len(TAGS)))
    seg = np.clip(0.5 * clip_noise + 0.2 * crop_noise + skill * tags[:, None, :], 0, 1).astype(np.float32)
    z_t = np.linalg.qr(rng.normal(size=(16, len(TAGS))))[0].T  # (n_tags, 16), orthonormal rows
    z_m = tags @ z_t + 0.3 * rng.normal(size=(n_clips, 16))
    h = rng.normal(size=(n_clips, 48)) + 3 * skill * tags @ rng.normal(size=(len(TAGS), 48))
    return Scored(tags=tags, segment_scores=seg, h=h, z_m=z_m), z_t


def write_fake_evaluation(
    eval_dir: Path,
    arrays_dir: Path,
    extractor: str,
    variant: str,
    *,
    skill: float,
    n_clips: int = 80,
    n_resamples: int = 100,
    dataset: str = "synthetic",
) -> dict[str, Any]:
    """Write ``<extractor>-<variant>.json`` and ``.npz`` for a synthetic model on shared synthetic test clips."""
    scored, z_t = synthetic_scored(
        zlib.crc32(f"{extractor}-{variant}".encode()), n_clips=n_clips, skill=skill, truth_seed=0
    )
    return write_evaluation(
        out_json=Path(eval_dir) / f"{extractor}-{variant}.json",
        out_arrays=Path(arrays_dir) / f"{extractor}-{variant}.npz",
        header={
            "extractor": extractor,
            "variant": variant,
            "model": f"models/{extractor}/{variant}/model.pt",
            "dataset": {
                "name": dataset,
                "source": dataset,
                "split": "test",
                "sample_rate": 16000,
                "n_tags": len(TAGS),
                "tags": TAGS,
            },
            "crop_samples": 4096,
        },
        scored=scored if variant == "je" else Scored(scored.tags, scored.segment_scores, scored.h),
        clip_ids=np.arange(n_clips) * 3 + 2,
        tag_names=TAGS,
        z_t=z_t if variant == "je" else None,
        n_resamples=n_resamples,
        seed=0,
    )


def write_fake_probe(
    path: Path, *, roc_auc: float = 0.61, ap: float = 0.42, n_clips: int = 80, dataset: str = "synthetic"
) -> dict[str, Any]:
    """Write a ``probe.json`` as the ``probe`` stage writes it, for the fixture's test clips."""
    record = {
        "model": "Log-mel mean/std + logistic regression (probe)",
        "dataset": {"name": dataset, "source": dataset, "split": "test", "sample_rate": 16000, "n_tags": len(TAGS)},
        "n_train_clips": 3 * n_clips,
        "n_test_clips": n_clips,
        "literature": {
            "roc_auc": roc_auc,
            "ap": ap,
            "ci95": {"roc_auc": [roc_auc - 0.05, roc_auc + 0.05], "ap": [ap - 0.05, ap + 0.05]},
            "n_tags": len(TAGS),
            "excluded_tags": [],
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def write_fake_figure2_stats(path: Path, *, agreement: tuple[float, float, float] = (0.3, 0.9, 0.5)) -> dict[str, Any]:
    """Write a ``figure2.json`` as the ``figure2`` stage writes it."""
    stats = {
        "extractor": "hcnn",
        "tag": "techno",
        "k": 10,
        "space": "2-D t-SNE coordinates of each panel",
        "n_clips": 80,
        "n_tagged": 24,
        "base_rate": 0.3,
        "knn_agreement": dict(zip(("h_noje", "tag_vectors", "h_je"), agreement, strict=True)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stats))
    return stats


def write_stage1_metrics(train_dir: Path, extractor: str, valid: dict[str, float]) -> Path:
    """Write ``<train_dir>/<extractor>-stage1/metrics.json`` as dvclive keeps it (latest values, nested)."""
    path = Path(train_dir) / f"{extractor}-stage1" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"lr": 0.001, "train": {"loss": 1.2}, "valid": {"loss": 1.3, **valid}, "step": 4}
    path.write_text(json.dumps(doc, indent=4))
    return path
