"""Tiny MTAT-format data for tests: generated 16 kHz mono MP3 clips, the raw layout and the official mirror layout.

``write_raw`` writes what ``download`` produces (``annotations_final.csv``, ``clip_info_final.csv``,
``mp3/<0-f>/*.mp3``); ``write_mirror`` packs the same clips like the official mirror (one zip cut into
three byte pieces ``mp3.zip.001..003``, the two CSVs and, optionally, ``SHA256SUMS``).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import soundfile as sf

from jetatag.checksums import write_sha256sums
from jetatag.mtat import (
    ANNOTATIONS,
    CLIP_INFO,
    CLIP_INFO_COLUMNS,
    FOLDERS,
    TAGS_188,
    ZIP_PIECES,
    write_annotations,
)

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class TinyData:
    """What a tiny data set holds: clip ids, mp3 paths (relative, ``f/x.mp3``) and the 188-tag label matrix."""

    clip_ids: list[int]
    mp3_paths: list[str]
    labels: np.ndarray  # (n_clips, 188) uint8
    broken: dict[str, str]  # mp3_path -> "empty" | "corrupt"


def tone(seconds: float, *, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A random sine chord plus noise, float32 mono in [-0.9, 0.9]."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    freqs = rng.uniform(110.0, 2000.0, size=3)
    wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs) / 3
    wave = 0.7 * wave + 0.1 * rng.standard_normal(len(t))
    return (0.9 * wave / np.abs(wave).max()).astype(np.float32)


def write_mp3(path: Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write ``wave`` as an MP3 file (soundfile's LAME encoder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, sample_rate, format="MP3", subtype="MPEG_LAYER_III")


def tiny_data(
    n_clips: int, *, rng: np.random.Generator, empty: tuple[int, ...] = (), corrupt: tuple[int, ...] = ()
) -> TinyData:
    """Clip ids, paths spread over folders 0-f, and labels where every clip has one of the 5 first tags."""
    clip_ids = [2 + 3 * i for i in range(n_clips)]
    mp3_paths = [f"{FOLDERS[i % 16]}/artist_{i}-album_{i}-{i % 10:02d}-song_{i}-0-29.mp3" for i in range(n_clips)]
    labels = (rng.random((n_clips, len(TAGS_188))) < 0.05).astype(np.uint8)
    labels[np.arange(n_clips), np.arange(n_clips) % 5] = 1
    broken = {mp3_paths[i]: "empty" for i in empty} | {mp3_paths[i]: "corrupt" for i in corrupt}
    return TinyData(clip_ids, mp3_paths, labels, broken)


def _clip_info_row(clip_id: int, mp3_path: str) -> list[str]:
    return [str(clip_id), "1", f"song {clip_id}", "artist", "album", "http://example.org", "0", "29", "", mp3_path]


def write_clip_info(path: Path, data: TinyData) -> None:
    """``clip_info_final.csv`` in the official format (quoted, tab-separated, CRLF)."""
    rows = [list(CLIP_INFO_COLUMNS)] + [
        _clip_info_row(c, p) for c, p in zip(data.clip_ids, data.mp3_paths, strict=True)
    ]
    path.write_bytes("".join("\t".join(f'"{f}"' for f in row) + "\r\n" for row in rows).encode())


def _mp3_bytes(path: str, kind: str | None, seconds: float, rng: np.random.Generator, tmp: Path) -> bytes:
    if kind == "empty":
        return b""
    if kind == "corrupt":
        return b"ID3" + bytes(4000)  # an ID3 tag start followed by no MPEG frame at all
    write_mp3(tmp, tone(seconds, rng=rng))
    return tmp.read_bytes()


def write_raw(folder: Path, data: TinyData, *, seconds: float | Sequence[float], rng: np.random.Generator) -> Path:
    """Write the layout ``download`` produces: the two CSVs and ``mp3/<0-f>/*.mp3`` (``seconds``: all or per clip)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_annotations(folder / ANNOTATIONS, data.clip_ids, data.labels, data.mp3_paths)
    write_clip_info(folder / CLIP_INFO, data)
    durations = [seconds] * len(data.mp3_paths) if isinstance(seconds, (int, float)) else list(seconds)
    for path, duration in zip(data.mp3_paths, durations, strict=True):
        target = folder / "mp3" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_mp3_bytes(path, data.broken.get(path), duration, rng, folder / ".tmp.mp3"))
    (folder / ".tmp.mp3").unlink(missing_ok=True)
    return folder


def zip_pieces(mp3_root: Path, paths: list[str]) -> list[bytes]:
    """One zip (folder entries, then ``<0-f>/x.mp3`` members) cut into three consecutive byte pieces."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for folder in sorted({p.split("/")[0] for p in paths}):
            archive.writestr(f"{folder}/", b"")
        for path in paths:
            archive.write(mp3_root / path, arcname=path)
    blob = buffer.getvalue()
    cuts = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    return [blob[a:b] for a, b in pairwise(cuts)]


def write_mirror(
    folder: Path, data: TinyData, *, seconds: float | Sequence[float], rng: np.random.Generator, sha256sums: bool = True
) -> Path:
    """Write a mirror in the official layout: ``mp3.zip.001..003``, both CSVs and (optionally) ``SHA256SUMS``."""
    staging = write_raw(folder / ".staging", data, seconds=seconds, rng=rng)
    for name, piece in zip(ZIP_PIECES, zip_pieces(staging / "mp3", data.mp3_paths), strict=True):
        (folder / name).write_bytes(piece)
    for name in (ANNOTATIONS, CLIP_INFO):
        (staging / name).rename(folder / name)
    for path in sorted(staging.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    staging.rmdir()
    if sha256sums:
        write_sha256sums(folder, [*ZIP_PIECES, ANNOTATIONS, CLIP_INFO])
    return folder
