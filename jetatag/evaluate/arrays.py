"""The evaluation arrays file (``data/eval/<extractor>-<variant>.npz``): what ``evaluate`` scored, compactly.

Written by ``evaluate``, read by ``table1`` (paired bootstrap) and ``figure2`` (t-SNE of h). Arrays:

* ``clip_ids`` int64 (n_clips,), ``tag_names`` str (n_tags,), ``tags`` uint8 (n_clips, n_tags)
* ``segment_scores`` float16 (n_clips, n_crops, n_tags): sigmoid score of every evaluation crop
* ``clip_scores`` float32 (n_clips, n_tags): mean of the crops' scores
* ``h`` float16 (n_clips, 1024): mean of the crops' extractor outputs
* ``z_m`` float16 (n_clips, embed_dim) and ``z_t`` float32 (n_tags, embed_dim): joint-embedding models only
* ``boot_<protocol>_<metric>`` float64 (n_resamples,): the headline metric on every bootstrap resample of
  the clips, and ``bootstrap_seed`` / ``bootstrap_n``; two files with equal clip ids, tags and bootstrap
  settings share their resamples (the literature protocol's are stratified by the tags), so their
  per-resample differences form a paired bootstrap.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jetatag.errors import StageError
from jetatag.io import atomic_open

BOOT_KEYS = ("paper_roc_auc", "paper_pr_auc", "literature_roc_auc", "literature_ap")
"""Bootstrapped headline metrics, ``boot_<key>`` in the file."""


@dataclass(frozen=True)
class EvalArrays:
    """Contents of one evaluation arrays file (see module docstring for shapes)."""

    clip_ids: np.ndarray
    tag_names: list[str]
    tags: np.ndarray
    segment_scores: np.ndarray
    clip_scores: np.ndarray
    h: np.ndarray
    boot: dict[str, np.ndarray]
    bootstrap_seed: int
    z_m: np.ndarray | None = None
    z_t: np.ndarray | None = None

    def paired_with(self, other: EvalArrays) -> bool:
        """Whether ``other`` scored the same clips with the same bootstrap resamples."""
        return (
            np.array_equal(self.clip_ids, other.clip_ids)
            and np.array_equal(self.tags, other.tags)  # the per-tag strata of the literature resamples
            and self.bootstrap_seed == other.bootstrap_seed
            and all(self.boot[k].shape == other.boot[k].shape for k in BOOT_KEYS)
        )


def save_arrays(path: Path | str, arrays: EvalArrays) -> None:
    """Write ``arrays`` to ``path`` as a compressed npz, atomically, in the documented dtypes."""
    payload = {
        "clip_ids": np.asarray(arrays.clip_ids, dtype=np.int64),
        "tag_names": np.asarray(arrays.tag_names, dtype=str),
        "tags": np.asarray(arrays.tags, dtype=np.uint8),
        "segment_scores": np.asarray(arrays.segment_scores, dtype=np.float16),
        "clip_scores": np.asarray(arrays.clip_scores, dtype=np.float32),
        "h": np.asarray(arrays.h, dtype=np.float16),
        "bootstrap_seed": np.int64(arrays.bootstrap_seed),
        **{f"boot_{k}": np.asarray(arrays.boot[k], dtype=np.float64) for k in BOOT_KEYS},
    }
    if arrays.z_m is not None and arrays.z_t is not None:
        payload["z_m"] = np.asarray(arrays.z_m, dtype=np.float16)
        payload["z_t"] = np.asarray(arrays.z_t, dtype=np.float32)
    with atomic_open(path, "wb") as handle:  # a file handle: np.savez would append ".npz" to a temp name
        np.savez_compressed(handle, **payload)


def load_arrays(path: Path | str) -> EvalArrays:
    """Read an evaluation arrays file; StageError naming the file when it is missing or incomplete."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: evaluation arrays not found; run `jetatag evaluate` for this model")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise StageError(f"{path}: not a readable npz file: {err}") from err
    required = ["clip_ids", "tag_names", "tags", "segment_scores", "clip_scores", "h", "bootstrap_seed"]
    missing = [k for k in required + [f"boot_{k}" for k in BOOT_KEYS] if k not in data]
    if missing:
        raise StageError(f"{path}: not a jetatag evaluation arrays file (missing {', '.join(missing)})")
    n_clips, n_tags = data["tags"].shape
    if data["clip_scores"].shape != (n_clips, n_tags) or data["h"].shape[0] != n_clips:
        raise StageError(f"{path}: inconsistent shapes: tags {data['tags'].shape}, scores {data['clip_scores'].shape}")
    return EvalArrays(
        clip_ids=data["clip_ids"],
        tag_names=[str(t) for t in data["tag_names"]],
        tags=data["tags"],
        segment_scores=data["segment_scores"],
        clip_scores=data["clip_scores"],
        h=data["h"],
        boot={k: data[f"boot_{k}"] for k in BOOT_KEYS},
        bootstrap_seed=int(data["bootstrap_seed"]),
        z_m=data.get("z_m"),
        z_t=data.get("z_t"),
    )
