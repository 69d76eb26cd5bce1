"""Collection index: one parquet row per audio file with its tag scores and joint embedding z_m.

Columns: ``path`` (string), ``duration_s`` (float64), ``n_crops`` (int32), ``scores`` (fixed-size
list of float32, one per tag, in the model's tag order) and, for models with a projection head
(je), ``z_m`` (fixed-size list of float32, unit norm). The schema metadata key ``jetatag`` holds
JSON: format marker and version, the tags, extractor, variant, crop and hop, and the path and
SHA-256 of the model, so ``search`` can find the tag encoder that matches the stored z_m.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from jetatag import __version__
from jetatag.errors import StageError
from jetatag.io import atomic_path
from jetatag.tagging.bundle import LoadedModel
from jetatag.tagging.tag import ClipScores, score_files

log = logging.getLogger(__name__)

INDEX_FORMAT = "jetatag-index"
INDEX_VERSION = 1
_META_KEY = b"jetatag"


@dataclass(frozen=True)
class CollectionIndex:
    """An index read back into arrays."""

    info: dict[str, Any]  # the ``jetatag`` schema metadata
    paths: list[str]
    scores: np.ndarray  # (n_clips, n_tags) float32
    z_m: np.ndarray | None  # (n_clips, embed_dim) float32, or None for models without JE

    @property
    def tags(self) -> list[str]:
        return list(self.info["tags"])


def build_index(
    model: LoadedModel,
    files: Sequence[Path],
    *,
    out_path: Path,
    hop_samples: int | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> int:
    """Score ``files`` with ``model`` and write the index to ``out_path``; return the number of rows.

    Unreadable files are logged and skipped; :class:`StageError` when none could be indexed.
    """
    results = score_files(model, files, hop_samples=hop_samples, batch_size=batch_size, device=device)
    clips = [r for r in results if isinstance(r, ClipScores)]
    if not clips:
        raise StageError(f"{out_path}: none of the {len(files)} audio files could be read; no index written")
    meta = model.meta
    info = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_VERSION,
        "jetatag_version": __version__,
        "tags": list(meta.tags),
        "extractor": meta.extractor,
        "variant": meta.variant,
        "sample_rate": meta.sample_rate,
        "crop_samples": meta.crop_samples,
        "hop_samples": meta.crop_samples if hop_samples is None else hop_samples,
        "model_path": str(Path(model.path).resolve()),
        "model_sha256": model.sha256,
    }
    has_z = clips[0].z_m is not None
    write_index(
        out_path,
        paths=[str(c.path) for c in clips],
        durations=np.array([c.duration_s for c in clips]),
        n_crops=np.array([c.n_crops for c in clips]),
        scores=np.stack([c.probs for c in clips]),
        z_m=np.stack([c.z_m for c in clips]) if has_z else None,
        info=info,
    )
    log.info("indexed %d of %d files into %s", len(clips), len(files), out_path)
    return len(clips)


def write_index(
    out_path: Path,
    *,
    paths: Sequence[str],
    durations: np.ndarray,
    n_crops: np.ndarray,
    scores: np.ndarray,
    z_m: np.ndarray | None,
    info: dict[str, Any],
) -> None:
    """Write index rows and ``info`` metadata to ``out_path`` atomically (see the module docstring for the schema)."""
    n_tags = len(info["tags"])
    if scores.shape != (len(paths), n_tags):
        raise ValueError(f"scores must be (n_clips={len(paths)}, n_tags={n_tags}), got {scores.shape}")
    columns = {
        "path": pa.array(list(paths), pa.string()),
        "duration_s": pa.array(np.asarray(durations, np.float64)),
        "n_crops": pa.array(np.asarray(n_crops, np.int32)),
        "scores": _fixed_list(scores),
    }
    if z_m is not None:
        if z_m.shape[0] != len(paths):
            raise ValueError(f"z_m must have one row per path ({len(paths)}), got {z_m.shape}")
        columns["z_m"] = _fixed_list(z_m)
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(info).encode()})
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp)


def read_index(path: Path) -> CollectionIndex:
    """Read an index written by :func:`write_index`; :class:`StageError` names the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: index file not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise StageError(f"{path}: not a parquet file: {err}") from err
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise StageError(f"{path}: not a jetatag index (no '{_META_KEY.decode()}' metadata); build one with `index`")
    info = json.loads(raw)
    if info.get("format") != INDEX_FORMAT or not isinstance(info.get("format_version"), int):
        raise StageError(f"{path}: not a jetatag index (format {info.get('format')!r})")
    if info["format_version"] > INDEX_VERSION:
        raise StageError(
            f"{path}: index format version {info['format_version']} is newer than this jetatag {__version__} "
            f"reads ({INDEX_VERSION}): upgrade jetatag or rebuild the index"
        )
    missing = [c for c in ("path", "scores") if c not in table.column_names]
    if missing:
        raise StageError(f"{path}: damaged jetatag index: column(s) {', '.join(missing)} missing")
    return CollectionIndex(
        info=info,
        paths=table.column("path").to_pylist(),
        scores=_matrix(table.column("scores")),
        z_m=_matrix(table.column("z_m")) if "z_m" in table.column_names else None,
    )


def _fixed_list(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """(n, d) float matrix → parquet-friendly fixed-size-list column of float32."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """Fixed-size-list column → (n, d) float32 matrix."""
    array = column.combine_chunks()
    return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), array.type.list_size)
