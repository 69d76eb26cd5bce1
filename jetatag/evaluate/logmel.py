"""Per-clip log-mel summary features for the reference probe: the mean and std over time of each mel band in dB.

A bag-of-frames summary with no learning in it: what a linear classifier reaches on these features is the
floor a learnt extractor should clear. Clips are read from the ``segment`` shards in chunks; the clips of a
chunk that have the same length go through one batched (multichannel) librosa call, and chunks may be
spread over a process pool. Chunks are cut in row order and computed with one BLAS thread, so the
features are the same bits whatever the number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from jetatag.data.shards import shard_name, to_float
from jetatag.parallel import ordered_map
from jetatag.progress import progress

CHUNK_CLIPS = 16
"""Clips per task: 16 ten-second clips hold ~40 MB of STFT, and a task is long enough to amortise its start."""

AMIN = 1e-10
"""Power floor before the log: a silent (zero-padded) frame reads -100 dB instead of -inf."""


@dataclass(frozen=True)
class MelOptions:
    """How the log-mel spectrogram is computed."""

    sample_rate: int  # Hz of the stored audio
    n_mels: int  # mel bands
    n_fft: int  # STFT frame, samples
    hop_length: int  # STFT hop, samples


def logmel_stats(waves: np.ndarray, options: MelOptions) -> np.ndarray:
    """Mean and std over frames of each band of the dB mel power spectrogram.

    Parameters
    ----------
    waves : float32 [shape=(n_clips, n_samples)] clips of equal length, in [-1, 1]
    options : :class:`MelOptions`

    Returns
    -------
    features : float32 [shape=(n_clips, 2 * n_mels)], the band means then the band standard deviations
    """
    mel = librosa.feature.melspectrogram(
        y=np.asarray(waves, dtype=np.float32),
        sr=options.sample_rate,
        n_fft=options.n_fft,
        hop_length=options.hop_length,
        n_mels=options.n_mels,
        power=2.0,
    )  # (n_clips, n_mels, n_frames)
    # an absolute reference and no top_db: each clip's dB values do not depend on the other clips of the batch
    db = librosa.power_to_db(mel, ref=1.0, amin=AMIN, top_db=None)
    return np.concatenate([db.mean(axis=-1), db.std(axis=-1)], axis=-1).astype(np.float32)


def _chunk_features(task: tuple[Path, np.ndarray], *, options: MelOptions) -> np.ndarray:
    """Features of one chunk of clips: ``task`` = (audio folder, int64 rows of (shard, offset, n_samples))."""
    audio_dir, spans = task
    shards = {int(k): np.load(Path(audio_dir) / shard_name(int(k)), mmap_mode="r") for k in np.unique(spans[:, 0])}
    out = np.empty((len(spans), 2 * options.n_mels), dtype=np.float32)
    # one BLAS thread: the processes already share the cores, and a threaded matrix product may round differently
    with threadpool_limits(limits=1, user_api="blas"):
        for length in np.unique(spans[:, 2]):
            rows = np.flatnonzero(spans[:, 2] == length)  # clips of one length share one batched call
            waves = np.stack([to_float(shards[int(k)][o : o + n]) for k, o, n in spans[rows]])  # (b, length)
            out[rows] = logmel_stats(waves, options)
    return out


def clip_features(audio_dir: Path, clips: pd.DataFrame, options: MelOptions, *, workers: int, desc: str) -> np.ndarray:
    """Log-mel mean/std features of every clip of ``clips`` (rows of an ``AudioIndex`` frame), in row order.

    Returns float32 [shape=(len(clips), 2 * n_mels)]; a progress bar named ``desc`` counts the clips.
    """
    spans = clips[["shard", "offset", "n_samples"]].to_numpy(np.int64)  # (n_clips, 3)
    tasks = [(Path(audio_dir), spans[lo : lo + CHUNK_CLIPS]) for lo in range(0, len(spans), CHUNK_CLIPS)]
    job = partial(_chunk_features, options=options)
    parts = []
    with ordered_map(workers) as map_clips, progress(total=len(spans), unit="clip", desc=desc) as bar:
        for part in map_clips(job, tasks):
            parts.append(part)
            bar.update(len(part))
    return np.concatenate(parts) if parts else np.empty((0, 2 * options.n_mels), dtype=np.float32)
