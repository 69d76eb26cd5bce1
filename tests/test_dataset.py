"""Tests of the dataset API over the shards: crop shapes and content, seeded determinism, eval hops, DataLoader."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from jetatag.data.dataset import AudioIndex, EvalCrops, TrainCrops, crop_offset
from jetatag.data.labels import load_labels
from jetatag.data.shards import INT16_SCALE, shard_name
from jetatag.errors import StageError

L = 59049


def clip_samples(audio_dir: Path, row: pd.Series) -> np.ndarray:
    """Float samples of one index row, read with plain numpy (independent of the dataset code)."""
    shard = np.load(audio_dir / shard_name(int(row["shard"])))
    return shard[row["offset"] : row["offset"] + row["n_samples"]].astype(np.float64) / INT16_SCALE


def test_audio_index_matches_labels(tiny_audio: Path, tiny_labels: Path):
    index = AudioIndex(tiny_audio)
    tags, clips = load_labels(tiny_labels)
    assert index.tags == tags and index.sample_rate == 16000
    for split in ("train", "valid", "test"):
        assert index.frame(split)["clip_id"].tolist() == clips.loc[clips["split"] == split, "clip_id"].tolist()
    with pytest.raises(ValueError, match="unknown split"):
        index.frame("dev")


def test_train_crop_shapes_and_content(tiny_audio: Path):
    dataset = TrainCrops(tiny_audio, crop_samples=L, seed=3)
    frame = AudioIndex(tiny_audio).frame("train")
    assert len(dataset) == len(frame)
    dataset.set_epoch(2)
    for i in (0, len(dataset) - 1):
        wave, tags = dataset[i]
        assert wave.shape == (L,) and wave.dtype == torch.float32
        assert tags.shape == (len(dataset.tags),) and tags.dtype == torch.float32
        assert wave.abs().max() <= 1.0
        start = crop_offset(seed=3, epoch=2, index=i, n_samples=int(frame["n_samples"].iat[i]), crop_samples=L)
        np.testing.assert_allclose(wave.numpy(), clip_samples(tiny_audio, frame.iloc[i])[start : start + L], atol=1e-6)
        np.testing.assert_array_equal(tags.numpy(), frame["tags"].iat[i])


def test_train_crops_are_seeded_per_epoch(tiny_audio: Path):
    first = TrainCrops(tiny_audio, crop_samples=L, seed=0)
    again = TrainCrops(tiny_audio, crop_samples=L, seed=0)
    other_seed = TrainCrops(tiny_audio, crop_samples=L, seed=1)

    def starts(dataset: TrainCrops, epoch: int) -> list[int]:
        n = dataset._n_samples
        return [
            crop_offset(seed=dataset.seed, epoch=epoch, index=i, n_samples=n[i], crop_samples=L) for i in range(len(n))
        ]

    for epoch in (0, 1):
        first.set_epoch(epoch)
        again.set_epoch(epoch)
        for i in range(len(first)):
            assert torch.equal(first[i][0], again[i][0])
    assert starts(first, 0) != starts(first, 1)  # a new epoch draws new crops
    assert starts(first, 0) != starts(other_seed, 0)
    offsets = starts(first, 0) + starts(first, 1)
    assert min(offsets) >= 0 and max(offsets) <= first._n_samples.min() - L


def test_crop_offset_is_uniform_over_valid_starts():
    starts = [crop_offset(seed=0, epoch=0, index=i, n_samples=110, crop_samples=100) for i in range(5500)]
    counts = np.bincount(starts, minlength=11)
    assert len(counts) == 11 and counts.min() > 380  # 11 starts, ~500 each


def test_eval_crops_at_hop(tiny_audio: Path):
    dataset = EvalCrops(tiny_audio, split="test", crop_samples=L, n_crops=16)
    frame = AudioIndex(tiny_audio).frame("test")
    np.testing.assert_array_equal(dataset.clip_ids, frame["clip_id"].to_numpy())
    crops, tags = dataset[0]
    assert crops.shape == (16, L) and crops.dtype == torch.float32 and tags.shape == (len(dataset.tags),)
    samples = clip_samples(tiny_audio, frame.iloc[0])
    hop = (len(samples) - L) // 16
    for k in range(16):
        np.testing.assert_allclose(crops[k].numpy(), samples[k * hop : k * hop + L], atol=1e-6)


def test_crop_longer_than_clips_is_a_clear_error(tiny_audio: Path):
    with pytest.raises(StageError, match="crop_samples"):
        TrainCrops(tiny_audio, crop_samples=10**6, seed=0)
    with pytest.raises(StageError, match="not found"):
        EvalCrops(tiny_audio / "missing", crop_samples=L)


@pytest.mark.parametrize("dataset_kind", ["train", "eval"])
def test_dataloader_workers_give_the_same_items(tiny_audio: Path, dataset_kind: str):
    if dataset_kind == "train":
        dataset = TrainCrops(tiny_audio, crop_samples=L, seed=5)
        dataset.set_epoch(4)
    else:
        dataset = EvalCrops(tiny_audio, split="train", crop_samples=L, n_crops=4)
    dataset[0]  # open a shard in the parent first: workers must still read correctly
    serial = list(DataLoader(dataset, batch_size=4, num_workers=0))
    parallel = list(DataLoader(dataset, batch_size=4, num_workers=2))
    assert len(serial) == len(parallel)
    for (wave_a, tags_a), (wave_b, tags_b) in zip(serial, parallel, strict=True):
        assert torch.equal(wave_a, wave_b) and torch.equal(tags_a, tags_b)


def test_pickled_dataset_reopens_its_shards(tiny_audio: Path):
    dataset = TrainCrops(tiny_audio, crop_samples=L, seed=0)
    wave, _ = dataset[1]  # memory-maps a shard in this process
    copy = pickle.loads(pickle.dumps(dataset))  # what a spawned DataLoader worker receives
    assert copy._reader._maps == {}
    assert torch.equal(copy[1][0], wave)
