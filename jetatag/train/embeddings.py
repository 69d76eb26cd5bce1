"""JE stage 2 on cached embeddings: the frozen extractor's h, computed once for a fixed grid of crops.

Stage 2 of the JE models trains only the classifier; the stage-1 extractor is frozen and held in eval
mode, so h of a given crop never changes. Instead of running the extractor on a fresh random crop of
every clip in every epoch (the authors' loop, kept as ``train.je_embedding_cache: false``), h is
computed once for ``train.je_cache_crops`` = K crops per train clip at hop (len − L) // K (the test
protocol's grid), and once for the validation crops; each epoch then draws one of the K cached crops
per clip, seeded by (seed, epoch, clip) like the random crops. The difference to the paper's protocol:
crop offsets come from a grid of K instead of every sample position. The cache lives in memory inside
the stage (n_clips × K × 1024 float32: 1 GB for MTAT's 15,247 train clips at K = 16), so it can never
be stale.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from jetatag.config import TrainParams
from jetatag.data.dataset import EvalCrops
from jetatag.models import h_dim
from jetatag.train.device import autocast, pin_memory, to_device
from jetatag.train.validation import crop_batches

log = logging.getLogger(__name__)


@torch.inference_mode()
def embed_crops(
    extractor: nn.Module, crops: EvalCrops, *, train: TrainParams, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """h of every crop of ``crops`` on CPU, [shape=(n_clips, n_crops, h_dim)] float32, and the clip tags.

    ``extractor`` must be in eval mode (frozen); batches hold ``train.batch_size`` crops.
    """
    clips_per_batch = max(1, train.batch_size // crops.n_crops)
    loader = DataLoader(crops, batch_size=clips_per_batch, num_workers=train.workers, pin_memory=pin_memory(device))
    h = torch.empty(len(crops), crops.n_crops, h_dim(extractor))
    tags = torch.empty(len(crops), len(crops.tags))
    done = 0
    for wave, clip_tags in crop_batches(loader, device):
        b, k, length = wave.shape
        with autocast(device, train.precision):
            out = extractor(wave.reshape(b * k, length))  # (b·k, h_dim)
        h[done : done + b] = out.float().reshape(b, k, -1).cpu()
        tags[done : done + b] = clip_tags.cpu()
        done += b
    return h, tags


def cache_embeddings(
    extractor: nn.Module, crops: EvalCrops, *, train: TrainParams, device: torch.device, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`embed_crops`, logging what was cached and how long it took."""
    tic = time.perf_counter()
    h, tags = embed_crops(extractor, crops, train=train, device=device)
    log.info(
        "cached h of %d %s clips × %d crops (%.0f MiB) in %.1f s",
        len(crops),
        what,
        crops.n_crops,
        h.numel() * h.element_size() / 2**20,
        time.perf_counter() - tic,
    )
    return h, tags


def cached_crop_index(*, seed: int, epoch: int, index: int, n_crops: int) -> int:
    """Which of the ``n_crops`` cached crops clip ``index`` trains on in ``epoch``; a pure function of the seeds."""
    return int(np.random.default_rng((seed, epoch, index)).integers(0, n_crops))


class CachedCrops(Dataset):
    """One cached crop embedding per clip per epoch: item = (h (1024,), tags (n_tags,))."""

    def __init__(self, h: torch.Tensor, tags: torch.Tensor, *, seed: int) -> None:
        if len(h) != len(tags):
            raise ValueError(f"{len(h)} embedded clips but {len(tags)} tag rows")
        self.h = h  # (n_clips, K, 1024)
        self.tags = tags  # (n_clips, n_tags)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.h)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crop choices ``__getitem__`` returns."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = cached_crop_index(seed=self.seed, epoch=self.epoch, index=index, n_crops=self.h.shape[1])
        return self.h[index, j], self.tags[index]


def cached_batches(
    h: torch.Tensor, tags: torch.Tensor, *, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Clip batches of cached validation embeddings on ``device``: h (B, n_crops, 1024), tags (B, n_tags)."""
    for start in range(0, len(h), batch_size):
        yield to_device(h[start : start + batch_size], device), to_device(tags[start : start + batch_size], device)
