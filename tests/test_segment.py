"""Tests of the ``segment`` stage: shard round trip against soundfile, worker independence, padding, skips."""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr
from mirror_fixture import TinyData, tiny_data, write_raw

from jetatag.audio import MU, mu_law_compress
from jetatag.data.labels import load_labels, run_labels
from jetatag.data.segment import estimated_samples, plan_shards, run_segment
from jetatag.data.shards import INT16_SCALE, shard_name, to_float
from jetatag.errors import StageError


def reference(path: Path, sample_rate: int) -> np.ndarray:
    """Independent decode: soundfile float64, channel mean, soxr, x / max|x|."""
    wave, rate = sf.read(path, dtype="float64", always_2d=True)
    mono = wave.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return mono / np.abs(mono).max()


def stored_clip(audio_dir: Path, row: pd.Series) -> np.ndarray:
    shard = np.load(audio_dir / shard_name(int(row["shard"])), mmap_mode="r")
    return np.asarray(shard[row["offset"] : row["offset"] + row["n_samples"]])


def test_round_trip_matches_soundfile_and_soxr(tiny: tuple[Path, TinyData], tiny_labels: Path, tiny_audio: Path):
    raw, _ = tiny
    index = pd.read_parquet(tiny_audio / "index.parquet")
    meta = json.loads((tiny_audio / "meta.json").read_text())
    tags, clips = load_labels(tiny_labels)
    assert meta["tags"] == tags and meta["dtype"] == "int16" and meta["sample_rate"] == 16000
    assert meta["min_samples"] == 80000 and meta["peak_normalize"] is True
    assert index["clip_id"].tolist() == clips["clip_id"].tolist()  # every kept clip, in labels order
    assert index["split"].tolist() == clips["split"].tolist()
    np.testing.assert_array_equal(np.stack(index["tags"].to_numpy()), clips[tags].to_numpy(np.uint8))
    assert index["shard"].nunique() > 1 and meta["n_shards"] == index["shard"].max() + 1
    assert not index["padded"].any()
    for _, row in index.iterrows():
        shard_len = len(np.load(tiny_audio / shard_name(int(row["shard"])), mmap_mode="r"))
        assert row["offset"] + row["n_samples"] <= shard_len  # a clip never spans two shards
        got = to_float(stored_clip(tiny_audio, row))
        want = reference(raw / "mp3" / row["mp3_path"], 16000)
        assert len(got) == len(want)
        np.testing.assert_allclose(got, want, atol=0.5 / INT16_SCALE + 1e-6)  # int16 rounding only
    assert json.loads((tiny_audio / "skipped.json").read_text()) == []


def test_resampling_and_float16(tmp_path: Path, tiny: tuple[Path, TinyData], tiny_labels: Path, make_params):
    raw, _ = tiny
    params = make_params({"data": {"n_tags": 10}, "audio": {"sample_rate": 22050, "dtype": "float16", "workers": 1}})
    run_segment(params, labels_dir=tiny_labels, raw_dir=raw, out_dir=tmp_path)
    index = pd.read_parquet(tmp_path / "index.parquet")
    row = index.iloc[0]
    got = stored_clip(tmp_path, row)
    assert got.dtype == np.float16
    want = reference(raw / "mp3" / row["mp3_path"], 22050)
    assert len(got) == len(want)
    np.testing.assert_allclose(got.astype(np.float64), want, atol=2e-3)  # float16 precision (and soxr quality)


def test_mu_law_is_a21s_formula_and_librosa_expands_it() -> None:
    x = np.array([-1.0, -0.5, -1e-3, 0.0, 2e-4, 0.1, 0.9, 1.0], dtype=np.float32)
    want = np.sign(x) * np.log(1 + MU * np.abs(x)) / np.log(1 + MU)  # A21 preprocessing/preprocess.py:9-11
    got = mu_law_compress(x.copy())
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got, librosa.mu_compress(x, mu=MU, quantize=False), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(librosa.mu_expand(got, mu=MU, quantize=False), x, rtol=1e-5, atol=1e-7)
    overshoot = mu_law_compress(np.array([1.25, -1.25], dtype=np.float32))  # a decoded mp3 may exceed full scale
    np.testing.assert_allclose(overshoot, [np.log1p(MU * 1.25) / np.log1p(MU), -np.log1p(MU * 1.25) / np.log1p(MU)])


def test_mu_law_segment_compands_before_the_peak(
    tmp_path: Path, tiny: tuple[Path, TinyData], tiny_labels: Path, make_params
):
    raw, _ = tiny
    params = make_params({"data": {"n_tags": 10}, "audio": {"mu_law": True, "dtype": "float16", "workers": 1}})
    run_segment(params, labels_dir=tiny_labels, raw_dir=raw, out_dir=tmp_path)
    assert json.loads((tmp_path / "meta.json").read_text())["mu_law"] is True
    row = pd.read_parquet(tmp_path / "index.parquet").iloc[0]
    wave, rate = sf.read(raw / "mp3" / row["mp3_path"], dtype="float64", always_2d=True)
    mono = soxr.resample(wave.mean(axis=1), rate, 16000) if rate != 16000 else wave.mean(axis=1)
    companded = np.sign(mono) * np.log1p(MU * np.abs(mono)) / np.log1p(MU)
    want = companded / np.abs(companded).max()  # A21: mu-law, then x / max|x|
    got = stored_clip(tmp_path, row).astype(np.float64)
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, atol=2e-3)  # float16 precision (and soxr quality)


def test_output_does_not_depend_on_worker_count(
    tmp_path: Path, tiny: tuple[Path, TinyData], tiny_labels: Path, tiny_audio: Path, make_params
):
    params = make_params({"data": {"n_tags": 10}, "audio": {"workers": 2, "shard_mb": 0.5}})
    run_segment(params, labels_dir=tiny_labels, raw_dir=tiny[0], out_dir=tmp_path)
    shards = sorted(p.name for p in tmp_path.glob("shard-*.npy"))
    assert shards == sorted(p.name for p in tiny_audio.glob("shard-*.npy"))
    for name in shards:
        assert (tmp_path / name).read_bytes() == (tiny_audio / name).read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "index.parquet"), pd.read_parquet(tiny_audio / "index.parquet")
    )


@pytest.fixture
def mixed(tmp_path: Path, rng: np.random.Generator, make_params) -> tuple[Path, Path]:
    """Raw + labels (all 188 tags kept) of 6 clips of 6, 3, 6, 3, 6, 6 s (3 s < the 5 s longest crop)."""
    raw = write_raw(tmp_path / "raw", tiny_data(6, rng=rng), seconds=[6, 3, 6, 3, 6, 6], rng=rng)
    run_labels(make_params({"data": {"n_tags": 188}}), raw_dir=raw, out_dir=tmp_path / "labels")
    return raw, tmp_path / "labels"


def test_short_clips_are_padded_and_flagged(tmp_path: Path, mixed: tuple[Path, Path], make_params):
    raw, labels = mixed
    run_segment(make_params({"data": {"n_tags": 188}}), labels_dir=labels, raw_dir=raw, out_dir=tmp_path / "a")
    index = pd.read_parquet(tmp_path / "a" / "index.parquet")
    assert index["padded"].tolist() == [False, True, False, True, False, False]
    assert (index["n_samples"] >= 80000).all()
    for _, row in index[index["padded"]].iterrows():
        clip = stored_clip(tmp_path / "a", row)
        decoded = len(reference(raw / "mp3" / row["mp3_path"], 16000))
        assert row["n_samples"] == 80000 and decoded < 80000
        assert np.abs(clip[:decoded]).max() == INT16_SCALE and not clip[decoded:].any()  # zero tail


def test_short_clips_rejected_when_asked(tmp_path: Path, mixed: tuple[Path, Path], make_params):
    raw, labels = mixed
    params = make_params({"data": {"n_tags": 188}, "audio": {"short_clips": "reject"}})
    run_segment(params, labels_dir=labels, raw_dir=raw, out_dir=tmp_path / "a")
    index = pd.read_parquet(tmp_path / "a" / "index.parquet")
    skipped = json.loads((tmp_path / "a" / "skipped.json").read_text())
    _, clips = load_labels(labels)
    assert index["clip_id"].tolist() == clips["clip_id"].iloc[[0, 2, 4, 5]].tolist()
    assert [s["clip_id"] for s in skipped] == clips["clip_id"].iloc[[1, 3]].tolist()
    assert all(s["problem"].startswith("too short") for s in skipped)


def test_broken_mp3_is_skipped_and_reported(
    tmp_path: Path, mixed: tuple[Path, Path], make_params, caplog: pytest.LogCaptureFixture
):
    raw, labels = mixed
    _, clips = load_labels(labels)
    (raw / "mp3" / clips["mp3_path"].iat[2]).write_bytes(b"ID3" + bytes(3000))  # broken after labels ran
    (raw / "mp3" / clips["mp3_path"].iat[4]).unlink()
    params = make_params({"data": {"n_tags": 188}, "audio": {"workers": 2}})
    run_segment(params, labels_dir=labels, raw_dir=raw, out_dir=tmp_path / "a")
    index = pd.read_parquet(tmp_path / "a" / "index.parquet")
    skipped = json.loads((tmp_path / "a" / "skipped.json").read_text())
    assert [s["mp3_path"] for s in skipped] == [clips["mp3_path"].iat[2], clips["mp3_path"].iat[4]]
    assert skipped[0]["problem"].startswith("undecodable") and skipped[1]["problem"] == "missing"
    assert index["clip_id"].tolist() == clips["clip_id"].iloc[[0, 1, 3, 5]].tolist()
    assert clips["mp3_path"].iat[2] in caplog.text


def test_rerun_replaces_stale_shards(tmp_path: Path, mixed: tuple[Path, Path], make_params):
    raw, labels = mixed
    out = tmp_path / "a"
    out.mkdir()
    (out / shard_name(99)).write_bytes(b"stale")
    run_segment(make_params({"data": {"n_tags": 188}}), labels_dir=labels, raw_dir=raw, out_dir=out)
    n_shards = json.loads((out / "meta.json").read_text())["n_shards"]
    assert sorted(p.name for p in out.glob("shard-*.npy")) == [shard_name(k) for k in range(n_shards)]


def test_missing_labels_is_a_clear_error(tmp_path: Path, make_params):
    with pytest.raises(StageError, match="tags.json: not found"):
        run_segment(make_params({}), labels_dir=tmp_path / "nolabels", raw_dir=tmp_path, out_dir=tmp_path / "a")


@pytest.mark.parametrize("seed", range(5))
def test_plan_shards_covers_clips_in_order_within_capacity(seed: int):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 100, size=int(rng.integers(1, 200))).tolist()
    plan = plan_shards(lengths, capacity=300, min_shards=4)
    assert [i for r in plan for i in r] == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 300 for r in plan)


def test_plan_shards_spreads_a_small_data_set_over_min_shards():
    assert plan_shards([10] * 32, capacity=10_000, min_shards=16) == [range(i, i + 2) for i in range(0, 32, 2)]
    assert len(plan_shards([10] * 32, capacity=40, min_shards=2)) == 8  # capacity still bounds each shard
    assert len(plan_shards([10] * 32, capacity=10_000, min_shards=16, min_size=80)) == 4  # but not below min_size


def test_plan_shards_gives_an_oversized_clip_its_own_shard():
    assert plan_shards([10, 500, 10], capacity=100, min_shards=1) == [range(0, 1), range(1, 2), range(2, 3)]


def test_estimated_lengths_follow_the_decoded_lengths(tmp_path: Path, tiny: tuple[Path, TinyData], tiny_audio: Path):
    raw, _ = tiny
    index = pd.read_parquet(tiny_audio / "index.parquet")
    paths = [raw / "mp3" / p for p in index["mp3_path"]] + [tmp_path / "missing.mp3"]
    estimated = estimated_samples(paths, 16000)
    assert estimated[-1] == 0  # a missing file counts as empty; segment reports it when decoding
    np.testing.assert_allclose(estimated[:-1], index["n_samples"], rtol=0.1)  # CBR: length ~ size, up to headers
