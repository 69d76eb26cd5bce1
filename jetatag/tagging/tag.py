"""Score whole audio files: sliding crops of the model's input length, crop probabilities averaged.

Training saw one crop of ``crop_samples`` at a time, so a file of any length is cut into crops at a
hop (default: the crop length), the last crop aligned to the file's end so no tail is left out, and
a file shorter than one crop is zero-padded to one crop. Clip-level tag scores are the mean of the
crops' sigmoid probabilities (as the evaluation's clip-level protocol); the clip's joint embedding
is the mean of the crops' z_m, put back on the unit sphere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from jetatag.errors import StageError
from jetatag.models.tagger import Tagger
from jetatag.progress import progress
from jetatag.tagging.audio import load_audio
from jetatag.tagging.bundle import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipScores:
    """What a model says about one audio file."""

    path: Path
    duration_s: float  # at the model's sample rate, before padding
    n_crops: int
    probs: np.ndarray  # (n_tags,) mean crop probability per tag
    z_m: np.ndarray | None  # (embed_dim,) unit-norm mean projected embedding; None without a projection head


@dataclass(frozen=True)
class Failure:
    """A file that could not be scored, and why."""

    path: Path
    reason: str


def crop_starts(n_samples: int, *, crop_samples: int, hop_samples: int) -> np.ndarray:
    """Start offsets of the crops covering ``n_samples``; the last crop ends at the file's end.

    ``n_samples <= crop_samples`` gives the single start 0 (the caller pads).
    """
    if crop_samples < 1 or hop_samples < 1:
        raise ValueError(f"crop_samples and hop_samples must be >= 1, got {crop_samples}, {hop_samples}")
    last = max(n_samples - crop_samples, 0)
    starts = np.arange(0, last + 1, hop_samples, dtype=np.int64)
    if starts[-1] != last:  # cover the tail with one crop aligned to the end
        starts = np.append(starts, last)
    return starts


def pad_to_crop(wave: np.ndarray, crop_samples: int) -> np.ndarray:
    """``wave`` (n,) zero-padded at the end to at least one crop, as ``segment`` pads short clips."""
    return np.pad(wave, (0, crop_samples - wave.shape[0])) if wave.shape[0] < crop_samples else wave


@torch.inference_mode()
def score_wave(
    tagger: Tagger, wave: np.ndarray, *, crop_samples: int, hop_samples: int, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Mean crop probabilities ``(n_tags,)``, unit-norm mean z_m ``(embed_dim,)`` (or None) and the crop count.

    Crops are cut batch by batch, so a long file at a small hop never holds all its crops in memory.
    """
    wave = pad_to_crop(wave, crop_samples)
    starts = crop_starts(wave.shape[0], crop_samples=crop_samples, hop_samples=hop_samples)
    probs, z_ms = [], []
    for first in range(0, starts.shape[0], batch_size):
        batch = np.stack([wave[s : s + crop_samples] for s in starts[first : first + batch_size]])  # (B, L)
        h = tagger.embed(torch.from_numpy(batch).to(device))  # (B, 1024)
        probs.append(torch.sigmoid(tagger.classifier(h)).cpu())  # (B, n_tags)
        if tagger.projection is not None:
            z_ms.append(tagger.projection(h).cpu())  # (B, embed_dim)
    mean_probs = torch.cat(probs).mean(dim=0).numpy()
    if not z_ms:
        return mean_probs, None, starts.shape[0]
    z_m = torch.nn.functional.normalize(torch.cat(z_ms).mean(dim=0), dim=0)  # back onto the unit sphere
    return mean_probs, z_m.numpy(), starts.shape[0]


def score_files(
    model: LoadedModel,
    files: Sequence[Path],
    *,
    hop_samples: int | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> Iterator[ClipScores | Failure]:
    """Score each file in turn (progress bar on a terminal when there are several); unreadable files yield a Failure."""
    meta, device = model.meta, torch.device(device)
    crop = meta.crop_samples
    hop = crop if hop_samples is None else hop_samples
    if hop < 1:
        raise StageError(f"hop must be at least one sample, got {hop}")
    if batch_size < 1:
        raise StageError(f"batch size must be >= 1, got {batch_size}")
    tagger = model.tagger.to(device).eval()
    with logging_redirect_tqdm():  # warnings about skipped files do not tear the progress bar
        for path in progress(files, desc="tagging", unit="file", disable=len(files) < 2):
            try:
                wave = load_audio(
                    path, sample_rate=meta.sample_rate, peak_normalize=meta.peak_normalize, mu_law=meta.mu_law
                )
            except StageError as err:
                log.warning("skipped %s", err)
                yield Failure(path=path, reason=str(err))
                continue
            probs, z_m, n_crops = score_wave(
                tagger, wave, crop_samples=crop, hop_samples=hop, batch_size=batch_size, device=device
            )
            yield ClipScores(
                path=path,
                duration_s=wave.shape[0] / meta.sample_rate,
                n_crops=n_crops,
                probs=probs,
                z_m=z_m,
            )


def top_tags(probs: np.ndarray, tags: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` highest-scoring ``(tag, probability)`` pairs, best first (ties keep tag order)."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(tags[i], float(probs[i])) for i in order]
