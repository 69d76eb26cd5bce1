"""SHA-256 of files and ``SHA256SUMS`` files (``sha256sum`` format): how mirrors and resume states are verified."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from jetatag.errors import StageError
from jetatag.io import atomic_open

SHA256SUMS = "SHA256SUMS"
"""Name of a folder's checksum file."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_sha256sums(folder: Path, names: Iterable[str]) -> None:
    """Write ``SHA256SUMS`` (``sha256sum`` format) for ``names`` inside ``folder``."""
    lines = [f"{sha256_file(folder / name)}  {name}\n" for name in names]
    with atomic_open(folder / SHA256SUMS, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def parse_sha256sums(text: str, source: str) -> dict[str, str]:
    """Parse ``sha256sum`` output (``<hex>  <name>`` or ``<hex> *<name>``) into name -> hex."""
    sums: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise StageError(f"{source}: line {n}: not a sha256sum line: {line!r}")
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums
