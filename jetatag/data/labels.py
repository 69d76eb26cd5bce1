"""Stage ``labels``: pick the top-N tags, split clips by folder and drop clips that cannot be used.

Tags are ranked by their count over all rows of ``annotations_final.csv``, descending. Ties are broken
by :data:`~jetatag.mtat.TOP50_STANDARD_ORDER` (the column order of published MTAT top-50 label
matrices) and then by annotation column order, so the ranking is deterministic and on real MTAT gives
exactly the standard top-50 order. A clip is dropped when it has none of the top-N tags or when its mp3
is missing, empty or cannot be decoded; every drop is reported by name in ``dropped.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from jetatag.config import Params
from jetatag.errors import StageError
from jetatag.io import atomic_path, write_json
from jetatag.mtat import ANNOTATIONS, TOP50_STANDARD_ORDER, Annotations, read_annotations, split_of
from jetatag.progress import progress

log = logging.getLogger(__name__)

CLIPS = "clips.parquet"
TAGS = "tags.json"
DROPPED = "dropped.json"
SPLITS = ("train", "valid", "test")
NO_TOP_TAG = "no top-N tag"


@dataclass(frozen=True)
class Selection:
    """Result of tag selection over an annotations table: the top-N tags and which rows are kept."""

    tags: tuple[str, ...]  # top-N tag names, frequency order
    counts: tuple[int, ...]  # count of each top tag over all annotation rows
    columns: np.ndarray  # (n_tags,) annotation column of each top tag
    split: np.ndarray  # (n_clips,) train/valid/test by folder
    keep: np.ndarray  # (n_clips,) bool
    dropped: dict[int, str]  # annotation row -> reason


def top_tags(labels: np.ndarray, tags: Sequence[str], n_tags: int) -> np.ndarray:
    """Columns of the ``n_tags`` most frequent tags: count descending, then standard MTAT order, then column."""
    if n_tags > len(tags):
        raise StageError(f"data.n_tags = {n_tags} but the annotations have only {len(tags)} tag columns")
    counts = labels.sum(axis=0, dtype=np.int64)  # (n_all_tags,)
    standard = {tag: rank for rank, tag in enumerate(TOP50_STANDARD_ORDER)}
    ranked = sorted(range(len(tags)), key=lambda col: (-counts[col], standard.get(tags[col], len(standard)), col))
    return np.asarray(ranked[:n_tags], dtype=np.int64)


def select_clips(annotations: Annotations, *, n_tags: int, unreadable: Mapping[str, str]) -> Selection:
    """Top-N tags and kept rows; ``unreadable`` maps mp3_path -> problem for audio files that cannot be used."""
    columns = top_tags(annotations.labels, annotations.tags, n_tags)
    top = annotations.labels[:, columns]  # (n_clips, n_tags)
    split = np.array([split_of(path) for path in annotations.mp3_path])
    dropped: dict[int, str] = {}
    for row, path in enumerate(annotations.mp3_path):
        if path in unreadable:
            dropped[row] = unreadable[path]
        elif not top[row].any():
            dropped[row] = NO_TOP_TAG
    keep = np.ones(len(split), dtype=bool)
    keep[list(dropped)] = False
    return Selection(
        tags=tuple(annotations.tags[c] for c in columns),
        counts=tuple(int(v) for v in annotations.labels[:, columns].sum(axis=0, dtype=np.int64)),
        columns=columns,
        split=split,
        keep=keep,
        dropped=dropped,
    )


def file_problem(path: Path) -> str | None:
    """ "missing" or "empty" when ``path`` cannot hold audio at all, else None."""
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    return None


def probe_mp3(path: Path) -> str | None:
    """Why ``path`` cannot be used as audio ("missing", "empty", "undecodable: ..."), or None if it decodes."""
    if problem := file_problem(path):
        return problem
    try:
        with sf.SoundFile(path) as audio:
            if audio.frames == 0 or len(audio.read(frames=2048, dtype="float32")) == 0:
                return "undecodable: no audio frames"
    except Exception as err:  # any decoder failure marks this one file unusable
        return f"undecodable: {err}"
    return None


def _check_annotations(annotations: Annotations, path: Path) -> None:
    """Reject duplicate clip ids and mp3 paths outside the folders 0-f, naming the annotations file and line."""
    for row, mp3 in enumerate(annotations.mp3_path):
        try:
            split_of(mp3)
        except ValueError as err:
            raise StageError(f"{path}: line {row + 2}: {err}") from err
    ids, counts = np.unique(annotations.clip_id, return_counts=True)
    if (counts > 1).any():
        raise StageError(f"{path}: clip_id {int(ids[counts > 1][0])} appears more than once")


def run_labels(params: Params, *, raw_dir: Path, out_dir: Path) -> None:
    """Write ``tags.json``, ``clips.parquet`` and ``dropped.json`` for the annotations and mp3s in ``raw_dir``."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    annotations_path = raw_dir / ANNOTATIONS
    annotations = read_annotations(annotations_path)
    _check_annotations(annotations, annotations_path)

    # probe only clips that carry a top-N tag: the others are dropped anyway
    has_top = annotations.labels[:, top_tags(annotations.labels, annotations.tags, params.data.n_tags)].any(axis=1)
    unreadable: dict[str, str] = {}
    to_probe = [p for p, ok in zip(annotations.mp3_path, has_top, strict=True) if ok]
    for mp3 in progress(to_probe, unit="mp3", desc="probe"):
        problem = probe_mp3(raw_dir / "mp3" / mp3)
        if problem is not None:
            unreadable[mp3] = problem
            log.warning("dropping %s: %s", raw_dir / "mp3" / mp3, problem)
    selection = select_clips(annotations, n_tags=params.data.n_tags, unreadable=unreadable)

    kept = np.flatnonzero(selection.keep)
    if len(kept) == 0:
        raise StageError(f"{annotations_path}: no clip has a top-{params.data.n_tags} tag and a readable mp3")
    clips = pd.DataFrame(
        {
            "clip_id": annotations.clip_id[kept],
            "mp3_path": [annotations.mp3_path[i] for i in kept],
            "split": selection.split[kept],
        }
    )
    top = annotations.labels[np.ix_(kept, selection.columns)]  # (n_kept, n_tags) uint8
    clips = pd.concat([clips, pd.DataFrame(top, columns=list(selection.tags))], axis=1)
    n_clips = {s: int((selection.split[kept] == s).sum()) for s in SPLITS}

    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / CLIPS) as tmp:
        clips.to_parquet(tmp, index=False)
    write_json(
        out_dir / DROPPED,
        [
            {"clip_id": int(annotations.clip_id[row]), "mp3_path": annotations.mp3_path[row], "reason": reason}
            for row, reason in sorted(selection.dropped.items())
        ],
    )
    write_json(
        out_dir / TAGS,
        {
            "tags": [{"name": t, "count": c} for t, c in zip(selection.tags, selection.counts, strict=True)],
            "n_clips": n_clips,
            "tie_break": "count descending, then standard MTAT top-50 order, then annotation column order",
        },
    )
    no_tag = sum(reason == NO_TOP_TAG for reason in selection.dropped.values())
    log.info(
        "labels: top-%d tags; kept train/valid/test = %d/%d/%d; dropped %d without a top tag, %d unreadable mp3s",
        params.data.n_tags,
        n_clips["train"],
        n_clips["valid"],
        n_clips["test"],
        no_tag,
        len(unreadable),
    )


def load_labels(labels_dir: Path) -> tuple[list[str], pd.DataFrame]:
    """Read the ``labels`` outputs: top-N tag names (column order) and the kept clips table."""
    labels_dir = Path(labels_dir)
    tags_path, clips_path = labels_dir / TAGS, labels_dir / CLIPS
    for path in (tags_path, clips_path):
        if not path.is_file():
            raise StageError(f"{path}: not found; run `jetatag labels` to write {labels_dir}")
    tags = [entry["name"] for entry in json.loads(tags_path.read_text(encoding="utf-8"))["tags"]]
    clips = pd.read_parquet(clips_path)
    missing = [c for c in ("clip_id", "mp3_path", "split", *tags) if c not in clips.columns]
    if missing:
        raise StageError(f"{clips_path}: missing columns {missing}")
    return tags, clips
