"""PyTorch datasets over the shards written by ``segment``: seeded random training crops and evaluation crops.

Shards are memory-mapped lazily, once per process, so the datasets pickle cheaply into DataLoader
workers. A training crop's offset is a pure function of (seed, epoch, clip index), so a batch does not
depend on the number of workers or the order in which they fetch items.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from jetatag.data.shards import FORMAT_VERSION, INDEX, META, shard_name, to_float
from jetatag.errors import StageError

SPLITS = ("train", "valid", "test")


class AudioIndex:
    """The clip index and metadata of a segmented audio folder (``index.parquet`` + ``meta.json``)."""

    def __init__(self, audio_dir: Path | str) -> None:
        self.audio_dir = Path(audio_dir)
        meta_path, index_path = self.audio_dir / META, self.audio_dir / INDEX
        for path in (meta_path, index_path):
            if not path.is_file():
                raise StageError(f"{path}: not found; run `jetatag segment` to write {self.audio_dir}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise StageError(f"{meta_path}: unknown audio format version {meta.get('format_version')!r}")
        self.meta: dict[str, Any] = meta
        self.tags: list[str] = list(meta["tags"])
        self.sample_rate: int = int(meta["sample_rate"])
        self._index = pd.read_parquet(index_path)

    def frame(self, split: str) -> pd.DataFrame:
        """The clips of ``split`` (train/valid/test), in index order, with a fresh 0..n-1 index."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
        return self._index[self._index["split"] == split].reset_index(drop=True)


class _ShardReader:
    """Clip slices from memory-mapped shards, opened on first use in each process."""

    def __init__(self, audio_dir: Path) -> None:
        self.audio_dir = audio_dir
        self._maps: dict[int, np.ndarray] = {}

    def read(self, shard: int, start: int, stop: int) -> np.ndarray:
        """Stored samples ``[start, stop)`` of ``shard`` (a view into the memory map)."""
        mapped = self._maps.get(shard)
        if mapped is None:
            path = self.audio_dir / shard_name(shard)
            try:
                mapped = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise StageError(f"{path}: cannot memory-map shard: {err}") from err
            self._maps[shard] = mapped
        return mapped[start:stop]

    def __getstate__(self) -> dict[str, Any]:
        # memory maps are per process: a pickled copy (spawned DataLoader worker) reopens its own
        return {"audio_dir": self.audio_dir, "_maps": {}}


class _SplitCrops(Dataset):
    """Shared part of the crop datasets: one split's clip table, tag matrix and shard reader."""

    def __init__(self, audio_dir: Path | str, *, split: str, crop_samples: int) -> None:
        index = AudioIndex(audio_dir)
        frame = index.frame(split)
        if frame.empty:
            raise StageError(f"{index.audio_dir}: no clips in split {split!r}")
        if crop_samples < 1:
            raise ValueError(f"crop_samples must be >= 1, got {crop_samples}")
        shortest = int(frame["n_samples"].min())
        if shortest < crop_samples:
            raise StageError(
                f"{index.audio_dir}: shortest {split} clip has {shortest} samples < crop_samples {crop_samples}; "
                "re-run segment with the longer crop in model.*_crop_samples"
            )
        self.audio_dir = index.audio_dir
        self.tags = index.tags
        self.sample_rate = index.sample_rate
        self.peak_normalize = bool(index.meta.get("peak_normalize", True))
        self.mu_law = bool(index.meta.get("mu_law", False))  # shards written before audio.mu_law were not companded
        self.crop_samples = crop_samples
        self.clip_ids: np.ndarray = frame["clip_id"].to_numpy()
        self._shard = frame["shard"].to_numpy(np.int64)
        self._offset = frame["offset"].to_numpy(np.int64)
        self._n_samples = frame["n_samples"].to_numpy(np.int64)
        self._tags = torch.from_numpy(np.stack(frame["tags"].to_numpy()).astype(np.float32))  # (n_clips, n_tags)
        self._reader = _ShardReader(index.audio_dir)

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def tag_matrix(self) -> torch.Tensor:
        """Tags of every clip of the split, [shape=(n_clips, n_tags)] float32 in {0, 1}."""
        return self._tags

    def _clip(self, index: int, start: int, stop: int) -> np.ndarray:
        """Stored samples ``[start, stop)`` of clip ``index``."""
        base = self._offset[index]
        return self._reader.read(int(self._shard[index]), int(base + start), int(base + stop))


def crop_offset(*, seed: int, epoch: int, index: int, n_samples: int, crop_samples: int) -> int:
    """Uniform random crop start in ``[0, n_samples - crop_samples]`` derived only from (seed, epoch, index)."""
    rng = np.random.default_rng((seed, epoch, index))
    return int(rng.integers(0, n_samples - crop_samples + 1))


class TrainCrops(_SplitCrops):
    """One random crop of ``crop_samples`` per clip per epoch: item = (wave (L,), tags (n_tags,)), float32."""

    def __init__(self, audio_dir: Path | str, *, split: str = "train", crop_samples: int, seed: int) -> None:
        super().__init__(audio_dir, split=split, crop_samples=crop_samples)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crop offsets ``__getitem__`` returns.

        Call it before creating the DataLoader iterator: workers copy the dataset when they start, so
        persistent workers would keep the epoch they started with.
        """
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = crop_offset(
            seed=self.seed,
            epoch=self.epoch,
            index=index,
            n_samples=int(self._n_samples[index]),
            crop_samples=self.crop_samples,
        )
        wave = to_float(self._clip(index, start, start + self.crop_samples))  # (L,)
        return torch.from_numpy(wave), self._tags[index]


class EvalCrops(_SplitCrops):
    """``n_crops`` crops per clip at hop (len - L) // n_crops: item = (crops (n_crops, L), tags (n_tags,))."""

    def __init__(self, audio_dir: Path | str, *, split: str = "test", crop_samples: int, n_crops: int = 16) -> None:
        super().__init__(audio_dir, split=split, crop_samples=crop_samples)
        if n_crops < 1:
            raise ValueError(f"n_crops must be >= 1, got {n_crops}")
        self.n_crops = n_crops

    def starts(self, index: int) -> np.ndarray:
        """Crop starts of clip ``index``: k * hop for k < n_crops, hop = (len - L) // n_crops."""
        hop = (int(self._n_samples[index]) - self.crop_samples) // self.n_crops
        return np.arange(self.n_crops, dtype=np.int64) * hop

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = self.starts(index)
        clip = self._clip(index, 0, int(starts[-1]) + self.crop_samples)  # only the span the crops cover
        windows = np.lib.stride_tricks.sliding_window_view(clip, self.crop_samples)  # (span - L + 1, L) view
        crops = to_float(windows[starts])  # (n_crops, L)
        return torch.from_numpy(crops), self._tags[index]
