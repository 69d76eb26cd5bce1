"""Atomic file writes: every output appears complete or not at all."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from jetatag.errors import StageError

_UMASK_LOCK = threading.Lock()


@functools.cache
def _process_umask() -> int:
    """The process's file-creation mask, read on first use: reading it means setting it, so under a lock."""
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files: give outputs the usual umask-based mode
            tmp_path.chmod(0o666 & ~_process_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_json(path: Path | str, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


def read_json_object(path: Path | str, what: str, hint: str) -> dict[str, Any]:
    """The JSON object at ``path``; a StageError naming ``what`` if it is missing (with ``hint``) or malformed."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: {what} not found; {hint}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise StageError(f"{path}: not readable JSON: {err}") from err
    if not isinstance(doc, dict):
        raise StageError(f"{path}: not a {what} (top level is not an object)")
    return doc
