"""MagnaTagATune facts and file formats: official files, checksums, folder split, the annotations CSV.

The real ``annotations_final.csv`` is tab-separated with every field in double quotes and CRLF line
ends: ``"clip_id"``, the 188 tag columns in :data:`TAGS_188` order, ``"mp3_path"``. The synthetic
mirror writes the same format with :func:`write_annotations`; ``labels`` reads it with
:func:`read_annotations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jetatag.errors import StageError
from jetatag.io import atomic_open

OFFICIAL_URL = "https://mirg.city.ac.uk/datasets/magnatagatune/"
"""Official MTAT mirror; the older host ``http://mi.soi.city.ac.uk/datasets/magnatagatune/`` has the same layout."""

ZIP_PIECES = ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003")
ANNOTATIONS = "annotations_final.csv"
CLIP_INFO = "clip_info_final.csv"

OFFICIAL_SHA256 = {
    "mp3.zip.001": "f857fe185968773058cc71662c2ef5d8f2d4b7338e3c122cfd52f82dcb9760b9",
    "mp3.zip.002": "fc2e1ec441755556ed1398b1808f1b08b6034372f8bc27394510c0c58cdb52ce",
    "mp3.zip.003": "83a689824c17e82f6eb81cdbc4e4ca239a4cfc1fb41f1a5c80b861caec90450f",
    "annotations_final.csv": "99b94e95825d4fa576386a5367b9c96e0ec636e9f9c240aceb492f4728f68c3c",
    "clip_info_final.csv": "cb6108a10d3a91f0bfd7d2fbec2382559d15f20c8d28093f14e12162a47a3e78",
}
"""SHA-256 of the official files, checked when the mirror provides no ``SHA256SUMS``."""

FOLDERS = tuple("0123456789abcdef")
SPLIT_OF_FOLDER = {f: ("train" if f in "0123456789ab" else "valid" if f == "c" else "test") for f in FOLDERS}
"""The standard MTAT split by mp3 folder: 0-b train, c valid, d-f test."""

CLIP_INFO_COLUMNS = (
    "clip_id", "track_number", "title", "artist", "album", "url",
    "segmentStart", "segmentEnd", "original_url", "mp3_path",
)  # fmt: skip

TAGS_188 = (
    "no voice", "singer", "duet", "plucking", "hard rock", "world", "bongos", "harpsichord", "female singing",
    "clasical", "sitar", "chorus", "female opera", "male vocal", "vocals", "clarinet", "heavy", "silence", "beats",
    "men", "woodwind", "funky", "no strings", "chimes", "foreign", "no piano", "horns", "classical", "female",
    "no voices", "soft rock", "eerie", "spacey", "jazz", "guitar", "quiet", "no beat", "banjo", "electric", "solo",
    "violins", "folk", "female voice", "wind", "happy", "ambient", "new age", "synth", "funk", "no singing",
    "middle eastern", "trumpet", "percussion", "drum", "airy", "voice", "repetitive", "birds", "space", "strings",
    "bass", "harpsicord", "medieval", "male voice", "girl", "keyboard", "acoustic", "loud", "classic", "string",
    "drums", "electronic", "not classical", "chanting", "no violin", "not rock", "no guitar", "organ", "no vocal",
    "talking", "choral", "weird", "opera", "soprano", "fast", "acoustic guitar", "electric guitar", "male singer",
    "man singing", "classical guitar", "country", "violin", "electro", "reggae", "tribal", "dark", "male opera",
    "no vocals", "irish", "electronica", "horn", "operatic", "arabic", "lol", "low", "instrumental", "trance",
    "chant", "strange", "drone", "synthesizer", "heavy metal", "modern", "disco", "bells", "man", "deep",
    "fast beat", "industrial", "hard", "harp", "no flute", "jungle", "pop", "lute", "female vocal", "oboe", "mellow",
    "orchestral", "viola", "light", "echo", "piano", "celtic", "male vocals", "orchestra", "eastern", "old",
    "flutes", "punk", "spanish", "sad", "sax", "slow", "male", "blues", "vocal", "indian", "no singer", "scary",
    "india", "woman", "woman singing", "rock", "dance", "piano solo", "guitars", "no drums", "jazzy", "singing",
    "cello", "calm", "female vocals", "voices", "different", "techno", "clapping", "house", "monks", "flute",
    "not opera", "not english", "oriental", "beat", "upbeat", "soft", "noise", "choir", "female singer", "rap",
    "metal", "hip hop", "quick", "water", "baroque", "women", "fiddle", "english",
)  # fmt: skip
"""The 188 tag columns of ``annotations_final.csv``, in file column order."""

TOP50_STANDARD_ORDER = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
"""The top-50 column order used by published MTAT work (musicnn, jongpillee, minzwon): frequency order whose
three tied pairs (no vocal/pop, male voice/female vocal, metal/female voice) follow no rule derivable from the
data, so ``labels`` uses this order to break frequency ties."""


def split_of(mp3_path: str) -> str:
    """Split (train/valid/test) of a clip from the folder of its ``mp3_path`` (e.g. ``"f/x.mp3"``)."""
    folder = mp3_path.split("/", 1)[0]
    if folder not in SPLIT_OF_FOLDER:
        raise ValueError(f"mp3_path {mp3_path!r} is not in a folder 0-f")
    return SPLIT_OF_FOLDER[folder]


@dataclass(frozen=True)
class Annotations:
    """Parsed ``annotations_final.csv``: one row per clip, one column per tag."""

    clip_id: np.ndarray  # (n_clips,) int64
    tags: tuple[str, ...]  # column names, file order
    labels: np.ndarray  # (n_clips, n_tags) uint8, 0/1
    mp3_path: tuple[str, ...]  # (n_clips,) "f/....mp3"


def _quote(field: str) -> str:
    return '"' + field + '"'


def write_annotations(
    path: Path, clip_ids: Sequence[int], labels: np.ndarray, mp3_paths: Sequence[str], tags: Sequence[str] = TAGS_188
) -> None:
    """Write ``annotations_final.csv`` in the exact official format (quoted, tab-separated, CRLF), atomically."""
    labels = np.asarray(labels)
    if labels.shape != (len(clip_ids), len(tags)) or len(mp3_paths) != len(clip_ids):
        raise ValueError(f"labels shape {labels.shape} does not match {len(clip_ids)} clips x {len(tags)} tags")
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(map(_quote, ["clip_id", *tags, "mp3_path"])) + "\r\n")
        for clip_id, row, mp3 in zip(clip_ids, labels, mp3_paths, strict=True):
            fields = [str(int(clip_id)), *("1" if v else "0" for v in row), mp3]
            handle.write("\t".join(map(_quote, fields)) + "\r\n")


def write_clip_info(path: Path, rows: Iterable[Sequence[object]]) -> None:
    """Write ``clip_info_final.csv`` (:data:`CLIP_INFO_COLUMNS`, same quoting/tab/CRLF format), atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(map(_quote, CLIP_INFO_COLUMNS)) + "\r\n")
        for n, row in enumerate(rows, 1):
            if len(row) != len(CLIP_INFO_COLUMNS):
                raise ValueError(f"clip info row {n} has {len(row)} fields, expected {len(CLIP_INFO_COLUMNS)}")
            handle.write("\t".join(_quote(str(f)) for f in row) + "\r\n")


def read_annotations(path: Path) -> Annotations:
    """Parse ``annotations_final.csv``; raise :class:`StageError` naming the file, line and problem."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: annotations file not found")
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    if not lines:
        raise StageError(f"{path}: empty annotations file")
    header = [_unquote(f, path, 1) for f in lines[0].split("\t")]
    if len(header) < 3 or header[0] != "clip_id" or header[-1] != "mp3_path":
        raise StageError(f"{path}: line 1: header must be clip_id, <tags...>, mp3_path")
    tags = tuple(header[1:-1])
    n = len(lines) - 1
    clip_id = np.empty(n, dtype=np.int64)
    labels = np.empty((n, len(tags)), dtype=np.uint8)
    mp3: list[str] = []
    for i, line in enumerate(lines[1:]):
        fields = [_unquote(f, path, i + 2) for f in line.split("\t")]
        if len(fields) != len(header):
            raise StageError(f"{path}: line {i + 2}: {len(fields)} fields, header has {len(header)}")
        try:
            clip_id[i] = int(fields[0])
            row = [int(v) for v in fields[1:-1]]
        except ValueError as err:
            raise StageError(f"{path}: line {i + 2}: {err}") from err
        if any(v not in (0, 1) for v in row):
            raise StageError(f"{path}: line {i + 2}: tag values must be 0 or 1")
        labels[i] = row
        mp3.append(fields[-1])
    return Annotations(clip_id=clip_id, tags=tags, labels=labels, mp3_path=tuple(mp3))


def _unquote(field: str, path: Path, line: int) -> str:
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1]
    raise StageError(f"{path}: line {line}: field {field!r} is not double-quoted")
