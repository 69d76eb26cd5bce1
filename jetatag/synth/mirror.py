"""Write a synthetic MTAT mirror: the official files, formats and folder rule, generated offline.

Output (the layout ``download`` accepts from any mirror): ``mp3.zip.001``, ``.002``, ``.003`` (consecutive
byte pieces of one zip whose members are ``0/...mp3`` ... ``f/...mp3``, 16 kHz mono 32 kbps MP3),
``annotations_final.csv`` (the 188 real tag columns), ``clip_info_final.csv`` and ``SHA256SUMS``. Clips are
rendered and encoded by a process pool; the files are written in a temporary folder renamed into place at
the end. Every clip depends only on ``(seed, clip)``, so the output is byte-identical for any worker count.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from jetatag.checksums import write_sha256sums
from jetatag.errors import StageError
from jetatag.mtat import ANNOTATIONS, CLIP_INFO, TAGS_188, ZIP_PIECES, write_annotations, write_clip_info
from jetatag.progress import progress
from jetatag.synth.catalog import ClipSpec, build_catalog, slug
from jetatag.synth.clip import design_clip, encode_mp3, render_clip
from jetatag.synth.notebank import NoteBank

log = logging.getLogger(__name__)

ZIP_DATE = (2009, 1, 1, 0, 0, 0)
"""Timestamp of every zip member: fixed, so the archive bytes depend only on the content."""

CLIP_URL = "http://synthetic.invalid/jetatag/{album}/"
"""``url`` / ``original_url`` of clip_info: a reserved, never-resolving host (the clips exist nowhere else)."""

_BANK: NoteBank | None = None  # per-process sampler, made on first use by _bank


def _bank() -> NoteBank:
    """This process's sampler (also the pool initializer, so that workers make it before their first task)."""
    global _BANK
    if _BANK is None:
        _BANK = NoteBank()
    return _BANK


def _load_part(part: str) -> None:
    """Worker: render one bank part into the cache (and keep it loaded in this process)."""
    _bank().load(part)


ClipResult = tuple[np.ndarray, bytes]
"""A clip's 188 tags and mp3 bytes."""


def _make_clip(job: tuple[int, float, int, int]) -> ClipResult:
    """Worker: ``(seed, seconds, track, index)`` -> (188 tags, mp3 bytes)."""
    seed, seconds, track, index = job
    design = design_clip(seed, track, index, seconds)
    return design.tags, encode_mp3(render_clip(design, _bank()))


@contextlib.contextmanager
def _clip_results(jobs: Sequence[tuple[int, float, int, int]], workers: int) -> Iterator[Iterator[ClipResult]]:
    """Results of :func:`_make_clip` in job order, from ``workers`` processes (in this one when 1).

    A pool first renders the bank parts missing from the cache, one part per task, so that no two workers
    render the same part; a single process renders parts as its clips need them. The pool starts on entry,
    before the caller opens a progress bar (whose monitor thread would rule out fork).
    """
    if workers == 1:
        yield map(_make_clip, jobs)
        return
    # fork starts workers at once with every module imported, but is only safe while no other thread runs
    # (a tqdm monitor, torch's pools); spawn then pays ~1 s of imports per worker.
    method = "fork" if threading.active_count() == 1 else "spawn"
    log.info("starting %d worker processes (%s)", workers, method)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_bank)
    try:
        bank = NoteBank()
        missing = bank.missing()
        if missing:
            renders = pool.map(_load_part, missing)
            log.info("rendering %d soundfont parts into %s (once per machine)", len(missing), bank.folder)
            list(progress(renders, total=len(missing), desc="note bank", unit="part"))
        yield pool.map(_make_clip, jobs, chunksize=4)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, drop the clips not started yet


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = ((0o40755 << 16) | 0x10) if name.endswith("/") else (0o100644 << 16)
    return info


def _write_zip(path: Path, specs: Sequence[ClipSpec], seconds: float, seed: int, workers: int) -> np.ndarray:
    """Render every clip into one zip (members in folder/name order); return the (n_clips, 188) tag matrix."""
    order = sorted(specs, key=lambda s: s.mp3_path)
    tags = np.zeros((len(specs), len(TAGS_188)), dtype=np.uint8)
    jobs = [(seed, seconds, s.track, s.index) for s in order]
    with (
        _clip_results(jobs, workers) as results,
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        folder = None
        for spec, (clip_tags, mp3) in progress(
            zip(order, results, strict=True), total=len(order), desc="synth", unit="clip"
        ):
            if spec.folder != folder:
                folder = spec.folder
                archive.writestr(_zip_info(f"{folder}/"), b"")
            archive.writestr(_zip_info(spec.mp3_path), mp3)
            tags[spec.index] = clip_tags
    return tags


def _split_pieces(whole: Path, folder: Path) -> None:
    """Cut ``whole`` into the consecutive byte pieces ZIP_PIECES (last pieces first, truncating as it goes)."""
    size = whole.stat().st_size
    bounds = [size * k // len(ZIP_PIECES) for k in range(len(ZIP_PIECES) + 1)]
    with open(whole, "r+b") as src:
        for k in range(len(ZIP_PIECES) - 1, 0, -1):
            src.seek(bounds[k])
            with open(folder / ZIP_PIECES[k], "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            src.truncate(bounds[k])
    os.replace(whole, folder / ZIP_PIECES[0])


def _clip_info_rows(specs: Sequence[ClipSpec]) -> list[tuple[object, ...]]:
    rows = []
    for s in specs:
        url = CLIP_URL.format(album=slug(s.album))
        rows.append(
            (
                s.clip_id,
                s.track_number,
                s.title,
                s.artist,
                s.album,
                url,
                s.segment_start,
                s.segment_end,
                url + s.mp3_path.split("/", 1)[1],
                s.mp3_path,
            )
        )
    return rows


def _replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` onto ``target`` (an existing ``target`` is removed only afterwards)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old)


def write_mirror(out_dir: Path, *, n_clips: int, clip_seconds: float, seed: int, workers: int) -> None:
    """Write a synthetic MTAT mirror of ``n_clips`` clips of ``clip_seconds`` into ``out_dir`` (replaced whole)."""
    out_dir = Path(out_dir)
    if n_clips < 16:
        raise StageError(f"{out_dir}: n_clips={n_clips}: a mirror needs at least one clip per folder 0-f (16)")
    if not clip_seconds >= 1.0:
        raise StageError(f"{out_dir}: clip_seconds={clip_seconds}: must be >= 1.0")
    if workers < 1:
        raise StageError(f"{out_dir}: workers={workers}: must be >= 1")
    specs = build_catalog(n_clips, seed)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    tmp.chmod(0o755)
    try:
        log.info("rendering %d clips of %.1f s with %d worker(s) into %s", n_clips, clip_seconds, workers, out_dir)
        tags = _write_zip(tmp / "mp3.zip", specs, clip_seconds, seed, workers)
        _split_pieces(tmp / "mp3.zip", tmp)
        write_annotations(tmp / ANNOTATIONS, [s.clip_id for s in specs], tags, [s.mp3_path for s in specs])
        write_clip_info(tmp / CLIP_INFO, _clip_info_rows(specs))
        write_sha256sums(tmp, [*ZIP_PIECES, ANNOTATIONS, CLIP_INFO])
        for path in tmp.iterdir():  # temporary files are created private; a mirror is meant to be read
            path.chmod(0o644)
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote synthetic mirror %s (%d clips)", out_dir, n_clips)


TINY_CLIPS = 16
TINY_SECONDS = 3.0


def write_tiny_mirror(out_dir: Path, *, seed: int = 0, clip_seconds: float = TINY_SECONDS) -> Path:
    """A tiny synthetic mirror for tests (16 clips, one per folder, in-process): returns ``out_dir``."""
    write_mirror(out_dir, n_clips=TINY_CLIPS, clip_seconds=clip_seconds, seed=seed, workers=1)
    return Path(out_dir)
