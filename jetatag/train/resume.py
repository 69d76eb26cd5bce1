"""Resume files: the state a killed training run needs to carry on exactly where it stopped.

The file lives at ``<out dir>/.resume/<out name>``: beside the stage's output but not *being* it, so
``dvc repro`` (which deletes a stage's outputs before running it) and Snakemake (which deletes the
declared outputs of a failed job) leave it alone. It is rewritten atomically after every epoch and
removed once the stage output is written. A fingerprint of everything the result depends on
(stage, params, input files) guards against resuming a run that was started with other inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jetatag.checksums import sha256_file
from jetatag.config import Params
from jetatag.data.shards import INDEX, META
from jetatag.errors import StageError
from jetatag.io import atomic_open

log = logging.getLogger(__name__)

FORMAT = "jetatag-resume"
FORMAT_VERSION = 1


@dataclass
class ResumeState:
    """Training state after ``epochs_done`` complete epochs."""

    fingerprint: str
    epochs_done: int
    phase: int  # schedule phase the optimizer state belongs to
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch metrics, replayed into dvclive


def resume_path(out_path: Path) -> Path:
    """Where the resume file of the run writing ``out_path`` lives."""
    return out_path.parent / ".resume" / out_path.name


def fingerprint(config: dict[str, Any], files: dict[str, Path]) -> str:
    """SHA-256 over a JSON-able ``config`` and the contents of ``files`` (name → path)."""
    doc = {"config": config, "files": {name: sha256_file(path) for name, path in sorted(files.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def run_fingerprint(
    stage: str,
    params: Params,
    *,
    extractor: str,
    audio_dir: Path,
    variant: str | None = None,
    stage1_path: Path | None = None,
) -> str:
    """Fingerprint of a training run: what it trains, the params and the input files its result depends on.

    The small files (audio index and meta, stage-1 checkpoint) are hashed; the audio shards, which can
    be gigabytes, enter by size and modification time, so a re-run ``segment`` also starts training afresh.
    """
    train = dataclasses.replace(params.train, workers=0)  # the result does not depend on the worker count
    shards = sorted(audio_dir.glob("shard-*.npy"))
    config = {
        "stage": stage,
        "extractor": extractor,
        "variant": variant,
        "model": dataclasses.asdict(params.model),
        "train": dataclasses.asdict(train),
        "shards": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in shards],
    }
    files = {"index": audio_dir / INDEX, "meta": audio_dir / META}
    if stage1_path is not None:
        files["stage1"] = stage1_path
    return fingerprint(config, files)


def save_resume(path: Path, state: ResumeState) -> None:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the previous file intact)."""
    with atomic_open(path, "wb") as handle:  # a file object: the bytes do not depend on the temp file's name
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **vars(state)}, handle)


def load_resume(path: Path, *, expected_fingerprint: str, map_location: torch.device) -> ResumeState | None:
    """The resume state at ``path`` if it exists and belongs to this run, else None (a stale file is ignored)."""
    if not path.is_file():
        return None
    try:
        doc = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a torn or foreign file: say so and start afresh rather than crash
        log.warning("%s: unreadable resume file (%s); starting from scratch", path, err)
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StageError(f"{path}: not a jetatag resume file; move it away to start from scratch")
    if doc.get("format_version") != FORMAT_VERSION:
        log.warning("%s: resume format %r unknown; starting from scratch", path, doc.get("format_version"))
        return None
    if doc["fingerprint"] != expected_fingerprint:
        log.warning("%s: left by a run with other params or inputs; starting from scratch", path)
        return None
    return ResumeState(
        fingerprint=doc["fingerprint"],
        epochs_done=int(doc["epochs_done"]),
        phase=int(doc["phase"]),
        model=doc["model"],
        optimizer=doc["optimizer"],
        history=list(doc["history"]),
    )


def clear_resume(path: Path) -> None:
    """Remove the resume file, temporaries a killed save left beside it, and the folder once empty."""
    path.unlink(missing_ok=True)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)
    if path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()
