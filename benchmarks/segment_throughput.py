"""Throughput of ``segment`` against a plain serial soundfile decode loop, and of the training crop API.

Builds N clips of 29.1 s 16 kHz mono MP3 in a temporary folder (or uses a raw folder laid out like
``data/raw``), then prints: clips/s of the serial decode loop, clips/s of ``segment`` with 2 workers, their
ratio (target >= 1.6x on 2 cores), crops/s of ``TrainCrops`` at 59,049 samples (target >= 2,000), and the
shard count and index size that full MTAT would need.

    python benchmarks/segment_throughput.py [--clips 400] [--workers 2] [--repeats 8] [--raw data/raw]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from jetatag.config import params_from_dict
from jetatag.data.labels import load_labels, run_labels
from jetatag.data.segment import run_segment
from jetatag.mtat import ANNOTATIONS, FOLDERS, TAGS_188, write_annotations

SAMPLE_RATE = 16000
CLIP_SECONDS = 29.1
CROP = 59049
MTAT_CLIPS = 21108
MTAT_TAGS_PER_CLIP = 2.70


def build_raw(folder: Path, n_clips: int, *, seed: int = 0, n_unique: int = 20) -> None:
    """Write ``n_clips`` 29.1 s MP3 clips (``n_unique`` distinct recordings, copied) and an annotations file."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    sources = []
    for k in range(n_unique):
        wave = np.sin(2 * np.pi * rng.uniform(100, 2000) * t) * 0.5 + 0.1 * rng.standard_normal(len(t))
        sources.append(folder / f"source-{k}.mp3")
        sf.write(sources[-1], (0.9 * wave / np.abs(wave).max()).astype(np.float32), SAMPLE_RATE, format="MP3")
    paths = [f"{FOLDERS[i % 16]}/clip_{i:05d}.mp3" for i in range(n_clips)]
    for i, path in enumerate(paths):
        (folder / "mp3" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[i % n_unique], folder / "mp3" / path)
    labels = (rng.random((n_clips, len(TAGS_188))) < 0.03).astype(np.uint8)
    labels[:, 0] = 1  # every clip keeps at least one top tag
    write_annotations(folder / ANNOTATIONS, list(range(n_clips)), labels, paths)


def serial_decode(paths: list[Path]) -> float:
    """Seconds for a plain ``soundfile.read`` loop over ``paths``."""
    start = time.perf_counter()
    for path in paths:
        sf.read(path, dtype="float32")
    return time.perf_counter() - start


def cpu_seconds() -> np.ndarray:
    """CPU seconds (user, system) of this process and of its finished children (the segment workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return np.array([own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime])


def crops_per_second(audio_dir: Path, min_seconds: float = 3.0) -> float:
    """Training crops of 59,049 samples per second from one process, over whole epochs."""
    # imported here, after the segment timing: `jetatag segment` runs without torch loaded
    from jetatag.data.dataset import TrainCrops

    dataset = TrainCrops(audio_dir, split="train", crop_samples=CROP, seed=0)
    n, epoch, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            dataset[i]
        n, epoch = n + len(dataset), epoch + 1
    return n / (time.perf_counter() - start)


def index_bytes_full_mtat(n_tags: int = 50, seed: int = 0) -> int:
    """Size of an ``index.parquet`` with 21,108 rows shaped like full MTAT's (written to a temp file)."""
    rng = np.random.default_rng(seed)
    n = MTAT_CLIPS
    samples = int(CLIP_SECONDS * SAMPLE_RATE)
    per_shard = (256 * 2**20 // 2) // samples
    table = pa.table(
        {
            "clip_id": pa.array(np.sort(rng.choice(60000, n, replace=False)).astype(np.int64)),
            "mp3_path": pa.array(
                [f"{FOLDERS[i % 16]}/artist-album_title-{i % 20:02d}-track-{i}.mp3" for i in range(n)]
            ),
            "split": pa.array(["train"] * 15247 + ["valid"] * 1529 + ["test"] * 4332),
            "shard": pa.array(np.arange(n) // per_shard, pa.int32()),
            "offset": pa.array((np.arange(n) % per_shard) * samples, pa.int64()),
            "n_samples": pa.array(np.full(n, samples), pa.int64()),
            "padded": pa.array(np.zeros(n, bool)),
            "tags": pa.FixedSizeListArray.from_arrays(
                pa.array((rng.random(n * n_tags) < MTAT_TAGS_PER_CLIP / n_tags).astype(np.uint8)), n_tags
            ),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(table, Path(tmp) / "index.parquet")
        return (Path(tmp) / "index.parquet").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=400, help="clips to generate (ignored with --raw)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--raw", type=Path, help="existing raw folder (annotations_final.csv + mp3/)")
    parser.add_argument("--repeats", type=int, default=8, help="timed runs of each; the best one counts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        raw = args.raw
        if raw is None:
            raw = tmp / "raw"
            raw.mkdir()
            build_raw(raw, args.clips)
        params = params_from_dict({"audio": {"workers": args.workers}})
        run_labels(params, raw_dir=raw, out_dir=tmp / "labels")
        _, clips = load_labels(tmp / "labels")
        paths = [raw / "mp3" / p for p in clips["mp3_path"]]
        serial_decode(paths)  # warm the page cache so both timings read from memory

        serial_s, segment_s = [], []  # alternate the two, keep the best of each: robust to other load
        serial_cpu, segment_cpu = np.zeros(2), np.zeros(2)  # CPU (user, system) of all processes, summed
        for _ in range(args.repeats):
            cpu = cpu_seconds()
            serial_s.append(serial_decode(paths))
            serial_cpu += cpu_seconds() - cpu
            shutil.rmtree(tmp / "audio", ignore_errors=True)  # each run writes a fresh folder, as dvc repro does
            cpu, start = cpu_seconds(), time.perf_counter()
            run_segment(params, labels_dir=tmp / "labels", raw_dir=raw, out_dir=tmp / "audio")
            segment_s.append(time.perf_counter() - start)
            segment_cpu += cpu_seconds() - cpu
        serial_rate, segment_rate = len(paths) / min(serial_s), len(paths) / min(segment_s)
        per_clip = 1e3 / (args.repeats * len(paths))
        crops = crops_per_second(tmp / "audio")

    total_bytes = MTAT_CLIPS * CLIP_SECONDS * SAMPLE_RATE * 2
    shards = math.ceil(total_bytes / (256 * 2**20))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"clips: {len(paths)} x {CLIP_SECONDS} s; {os.cpu_count()} CPUs; load average {load}; best of {args.repeats}")
    print(f"serial soundfile decode loop : {serial_rate:8.1f} clips/s")
    print(f"segment ({args.workers} workers)          : {segment_rate:8.1f} clips/s")
    print(f"ratio segment / serial       : {segment_rate / serial_rate:8.2f} x   (target >= 1.6)")
    (serial_user, serial_sys), (segment_user, segment_sys) = serial_cpu * per_clip, segment_cpu * per_clip
    print(
        f"CPU per clip (all processes, user + system): serial {serial_user:.2f} + {serial_sys:.2f} ms,"
        f" segment {segment_user:.2f} + {segment_sys:.2f} ms -> bound on an idle {args.workers}-core machine"
        f" {args.workers * serial_cpu.sum() / segment_cpu.sum():.2f} x"
    )
    print(f"TrainCrops, {CROP} samples   : {crops:8.0f} crops/s (target >= 2000)")
    index_mib = index_bytes_full_mtat() / 2**20
    print(
        f"full MTAT estimate: {MTAT_CLIPS} clips x {CLIP_SECONDS} s x {SAMPLE_RATE} Hz int16"
        f" = {total_bytes / 2**30:.1f} GiB -> {shards} shards of 256 MiB; index.parquet ~ {index_mib:.2f} MiB"
    )


if __name__ == "__main__":
    main()
