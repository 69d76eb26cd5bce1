"""Stage ``segment``: decode the kept clips in a process pool and store them as sample shards for training.

Each clip is decoded with soundfile, downmixed to mono, resampled with soxr, optionally mu-law companded
and peak-normalised, and converted to the shard dtype. Shards hold consecutive clips in ``clips.parquet`` order; their
boundaries are planned up front from clip lengths estimated from file sizes (MTAT's mp3s are
constant-bitrate), so that a shard holds about ``audio.shard_mb`` MiB (and a small data set still spreads
over :data:`MIN_SHARDS` shards). Exact lengths are recorded as the clips are decoded.
Each worker decodes whole shards, streaming every clip to the shard file as soon as it is decoded, and
returns only clip lengths, so samples never travel between processes; the output does not depend on
the number of workers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from jetatag.audio import decode_mono, mu_law_compress
from jetatag.config import Params
from jetatag.data.labels import file_problem, load_labels
from jetatag.data.shards import (
    FORMAT_VERSION,
    INDEX,
    META,
    NPY_HEADER_BYTES,
    SKIPPED,
    npy_header,
    shard_name,
    to_stored,
)
from jetatag.errors import StageError
from jetatag.extractors import EXTRACTOR_IDS
from jetatag.io import atomic_open, atomic_path, write_json
from jetatag.parallel import ordered_map
from jetatag.progress import progress

log = logging.getLogger(__name__)

MIN_SHARDS = 32
"""Data sets smaller than ``MIN_SHARDS`` full shards are cut into this many, so that every worker gets work..."""
MIN_SHARD_MB = 4.0
"""... unless that makes shards smaller than this: tiny data sets still get several clips per shard."""
PROBE_FILES = 16
"""Files whose headers calibrate the length-from-size estimate that plans the shards."""


@dataclass(frozen=True)
class Prepared:
    """One clip after decoding: stored samples (None when skipped), whether it was padded, why it was skipped."""

    wave: np.ndarray | None
    padded: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class Stored:
    """Where a clip ended up in its shard (``n_samples`` = 0 and a ``problem`` when it was skipped)."""

    offset: int
    n_samples: int
    padded: bool
    problem: str | None


def prepare_clip(
    path: Path,
    *,
    sample_rate: int,
    peak_normalize: bool,
    mu_law: bool,
    dtype: str,
    min_samples: int,
    pad_short: bool,
) -> Prepared:
    """Decode, normalise, convert and pad (or reject) one clip; a decoding failure is returned, not raised."""
    try:
        mono = decode_mono(path, sample_rate)
    except Exception as err:  # any decoder failure on one file skips that clip, never the stage
        return Prepared(None, problem=file_problem(path) or f"undecodable: {err}")
    n = len(mono)
    if n == 0:
        return Prepared(None, problem="decoded to 0 samples")
    if n < min_samples and not pad_short:
        return Prepared(None, problem=f"too short: {n} samples < {min_samples} (audio.short_clips: reject)")
    if mu_law:
        mu_law_compress(mono)  # A21 compands first, then peak-normalises the companded clip
    peak = float(max(mono.max(), -mono.min()))
    gain = 1.0 / peak if peak_normalize and peak > 0 else 1.0  # x / max|x|, as in the authors' preprocessing
    stored = to_stored(mono, dtype, gain=gain, peak=peak)
    if n < min_samples:
        stored = np.pad(stored, (0, min_samples - n))  # zero-pad at the end up to the longest crop
    return Prepared(stored, padded=n < min_samples)


def estimated_samples(paths: Sequence[Path], sample_rate: int, n_probe: int = PROBE_FILES) -> list[int]:
    """Clip lengths at ``sample_rate`` estimated from file sizes, scaled by the samples per byte that the headers
    of ``n_probe`` files spread over ``paths`` declare (their median): one stat per clip instead of one open.

    Shards only need approximate sizes; a missing or unreadable file counts as 0 and is reported when decoded.
    """
    sizes = [path.stat().st_size if path.is_file() else 0 for path in paths]
    rates = []
    for k in np.linspace(0, len(paths) - 1, min(n_probe, len(paths))).astype(int):
        try:
            info = sf.info(paths[k])
        except Exception:  # an unreadable file is reported when it is decoded
            continue
        if sizes[k] > 0:
            rates.append(info.frames * sample_rate / info.samplerate / sizes[k])
    samples_per_byte = float(np.median(rates)) if rates else 0.0
    return [math.ceil(size * samples_per_byte) for size in sizes]


def plan_shards(
    lengths: Sequence[int], *, capacity: int, min_shards: int = MIN_SHARDS, min_size: int = 1
) -> list[range]:
    """Cut clips ``0..n-1`` into consecutive ranges of at most ``capacity`` samples (one clip may exceed it).

    The target size is lowered to ``sum(lengths) / min_shards``, but not below ``min_size``, so that a
    small data set still spreads over several shards.
    """
    target = min(capacity, max(min_size, math.ceil(sum(lengths) / min_shards), 1))
    ranges, start, fill = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and fill + n > target:
            ranges.append(range(start, i))
            start, fill = i, 0
        fill += n
    if lengths:
        ranges.append(range(start, len(lengths)))
    return ranges


def write_shard(task: tuple[Path, Sequence[Path]], *, dtype: str, **options: Any) -> list[Stored]:
    """Decode the clips ``task = (shard file, mp3 paths)`` and write them back to back as one npy file."""
    shard_path, paths = task
    stored, offset = [], 0
    with atomic_open(shard_path, "wb") as handle:
        handle.seek(NPY_HEADER_BYTES)  # samples first, each clip as soon as it is decoded; the header last
        for path in paths:
            clip = prepare_clip(path, dtype=dtype, **options)
            if clip.wave is None:
                stored.append(Stored(offset, 0, False, clip.problem))
                continue
            handle.write(clip.wave.data)
            stored.append(Stored(offset, len(clip.wave), clip.padded, None))
            offset += len(clip.wave)
        handle.seek(0)
        handle.write(npy_header(dtype, offset))
    return stored


def _remove_stale(out_dir: Path) -> None:
    """Delete a previous run's outputs so that no old shard outlives the new index."""
    for path in [*out_dir.glob("shard-*.npy"), out_dir / INDEX, out_dir / META, out_dir / SKIPPED]:
        path.unlink(missing_ok=True)


def run_segment(params: Params, *, labels_dir: Path, raw_dir: Path, out_dir: Path) -> None:
    """Decode every clip kept by ``labels`` into shards + ``index.parquet`` + ``meta.json`` under ``out_dir``."""
    audio = params.audio
    tags, clips = load_labels(labels_dir)
    min_samples = max(params.model.crop_samples(x) for x in EXTRACTOR_IDS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(out_dir)

    paths = [Path(raw_dir) / "mp3" / p for p in clips["mp3_path"]]
    itemsize = np.dtype(audio.dtype).itemsize
    capacity = max(1, int(audio.shard_mb * 2**20) // itemsize)
    job = partial(
        write_shard,
        sample_rate=audio.sample_rate,
        peak_normalize=audio.peak_normalize,
        mu_law=audio.mu_law,
        dtype=audio.dtype,
        min_samples=min_samples,
        pad_short=audio.short_clips == "pad",
    )
    stored: list[Stored] = []
    shard_of: list[int] = []
    with ordered_map(audio.workers) as map_clips, progress(total=len(paths), unit="clip", desc="segment") as bar:
        lengths = estimated_samples(paths, audio.sample_rate)
        plan = plan_shards(
            [max(n, min_samples) for n in lengths], capacity=capacity, min_size=int(MIN_SHARD_MB * 2**20) // itemsize
        )
        tasks = [(out_dir / shard_name(k), [paths[i] for i in rows]) for k, rows in enumerate(plan)]
        for k, result in enumerate(map_clips(job, tasks)):
            stored.extend(result)
            shard_of.extend([k] * len(result))
            bar.update(len(result))

    skipped = [
        {"clip_id": int(clip_id), "mp3_path": mp3, "problem": clip.problem}
        for clip_id, mp3, clip in zip(clips["clip_id"], clips["mp3_path"], stored, strict=True)
        if clip.problem is not None
    ]
    for entry in skipped:
        log.warning("skipped %s: %s", Path(raw_dir) / "mp3" / entry["mp3_path"], entry["problem"])
    kept = [row for row, clip in enumerate(stored) if clip.problem is None]
    if not kept:
        raise StageError(f"{labels_dir}: none of the {len(paths)} clips could be decoded (see {out_dir / SKIPPED})")

    kept_clips = clips.iloc[kept]
    tag_matrix = kept_clips[tags].to_numpy(np.uint8)  # (n_kept, n_tags)
    index = pa.table(
        {
            "clip_id": pa.array(kept_clips["clip_id"].to_numpy(np.int64)),
            "mp3_path": pa.array(kept_clips["mp3_path"].tolist(), pa.string()),
            "split": pa.array(kept_clips["split"].tolist(), pa.string()),
            "shard": pa.array([shard_of[row] for row in kept], pa.int32()),
            "offset": pa.array([stored[row].offset for row in kept], pa.int64()),
            "n_samples": pa.array([stored[row].n_samples for row in kept], pa.int64()),
            "padded": pa.array([stored[row].padded for row in kept], pa.bool_()),
            "tags": pa.FixedSizeListArray.from_arrays(pa.array(tag_matrix.ravel(), pa.uint8()), len(tags)),
        }
    )
    write_json(out_dir / SKIPPED, skipped)
    write_json(
        out_dir / META,
        {
            "format_version": FORMAT_VERSION,
            "sample_rate": audio.sample_rate,
            "dtype": audio.dtype,
            "tags": tags,
            "peak_normalize": audio.peak_normalize,
            "mu_law": audio.mu_law,
            "min_samples": min_samples,
            "n_clips": len(kept),
            "n_shards": len(tasks),
        },
    )
    with atomic_path(out_dir / INDEX) as tmp:
        pq.write_table(index, tmp)
    log.info(
        "segment: %d clips in %d shards (%d padded, %d skipped) -> %s",
        len(kept),
        len(tasks),
        sum(stored[row].padded for row in kept),
        len(skipped),
        out_dir,
    )
