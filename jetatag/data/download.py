"""Stage ``download``: acquire an MTAT mirror (http(s), local folder or synthetic), verify it and extract the mp3s.

Every file of the mirror (:data:`MIRROR_FILES`) is fetched into ``out_dir/downloads/`` as ``<name>.part``
(HTTP downloads resume with a Range request and retry with exponential backoff), checked against the
mirror's ``SHA256SUMS`` (or :data:`~jetatag.mtat.OFFICIAL_SHA256` when the mirror has none) and
only then renamed to ``<name>``; a mismatch deletes the file and stops the stage. The zip pieces are read
as one stream and extracted into a temporary folder that is renamed to ``out_dir/mp3`` when complete.
``downloads/verified.json`` records what was verified and extracted, so a re-run with everything in
place touches neither the network nor the archive. It holds file mtimes, so ``.dvcignore`` leaves it
out of the output's DVC hash: the same mirror hashes the same after any checkout.
"""

from __future__ import annotations

import bisect
import http.client
import io
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from jetatag.checksums import SHA256SUMS, parse_sha256sums, sha256_file
from jetatag.config import SYNTHETIC_SOURCE, DataParams, Params
from jetatag.errors import StageError
from jetatag.io import atomic_path, write_json
from jetatag.mtat import ANNOTATIONS, CLIP_INFO, FOLDERS, OFFICIAL_SHA256, ZIP_PIECES
from jetatag.progress import progress

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger(__name__)

MIRROR_FILES = (*ZIP_PIECES, ANNOTATIONS, CLIP_INFO)
DOWNLOADS = "downloads"
VERIFIED = "verified.json"
RETRY_HTTP_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
MISSING_HTTP_CODES = frozenset({403, 404, 410})  # how web servers say an optional file (SHA256SUMS) is absent
CHUNK = 1 << 20


def run_download(params: Params, *, out_dir: Path, synth_dir: Path | None = None) -> None:
    """Write ``out_dir/{annotations_final.csv, clip_info_final.csv, mp3/<0-f>/*.mp3}`` from ``data.source``.

    ``data.source: synthetic`` reads the synthetic mirror that the ``synth`` stage wrote into ``synth_dir``
    (this module never runs the generator, so its code is no dependency of a real download).
    """
    out_dir = Path(out_dir)
    source = params.data.source.strip()
    if source == SYNTHETIC_SOURCE:
        if synth_dir is None or not (Path(synth_dir) / SHA256SUMS).is_file():
            where = f"{synth_dir} holds none" if synth_dir is not None else "no --synth folder given"
            raise StageError(
                f"data.source is 'synthetic' but {where}: write the mirror first "
                "(`jetatag synth --params params.yaml --out data/synth`, the pipeline's synth stage)"
            )
        source = str(synth_dir)
    hashes = acquire(source, out_dir / DOWNLOADS, data=params.data)
    extract(out_dir / DOWNLOADS, out_dir, hashes)


# --- acquisition: fetch or copy, then verify --------------------------------------------------------


def is_url(source: str) -> bool:
    """Whether ``source`` names an http(s) mirror rather than a local folder."""
    return source.startswith(("http://", "https://"))


def acquire(source: str, downloads: Path, *, data: DataParams) -> dict[str, str]:
    """Bring every mirror file into ``downloads`` verified; return name -> SHA-256."""
    folder = None if is_url(source) else Path(source).expanduser()
    if folder is not None and not folder.is_dir():
        raise StageError(f"data.source: {source!r} is not 'synthetic', an http(s) URL or an existing folder")
    record = _read_record(downloads)
    if record.get("source") == source and all(_unchanged(downloads / n, record["files"].get(n)) for n in MIRROR_FILES):
        log.info("all %d mirror files already verified in %s", len(MIRROR_FILES), downloads)
        return {name: record["files"][name]["sha256"] for name in MIRROR_FILES}

    def fetch(name: str, part: Path, missing_ok: bool = False) -> bool:
        if folder is None:
            return http_download(source.rstrip("/") + "/" + name, part, data=data, missing_ok=missing_ok)
        return copy_local(folder / name, part, missing_ok=missing_ok)

    downloads.mkdir(parents=True, exist_ok=True)
    expected = _expected_hashes(fetch, downloads, source)
    previous = record.get("files", {})
    record = {**record, "source": source, "files": {}}  # lists only what this run verified against ``source``
    for name in MIRROR_FILES:
        target = downloads / name
        if target.is_file() and _known_hash(target, previous.get(name)) == expected[name]:
            log.info("%s: already verified", target)
        else:
            part = target.with_name(name + ".part")
            fetch(name, part)
            verify(part, expected[name], label=f"{name} from {source}")
            os.replace(part, target)
        stat = target.stat()
        record["files"][name] = {"sha256": expected[name], "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        write_json(downloads / VERIFIED, record)
    return expected


def _expected_hashes(fetch: Callable[..., bool], downloads: Path, source: str) -> dict[str, str]:
    """SHA-256 per mirror file: the mirror's ``SHA256SUMS`` when it has one, else the official checksums."""
    sums_path = downloads / SHA256SUMS
    part = sums_path.with_name(SHA256SUMS + ".part")
    part.unlink(missing_ok=True)  # never resume a checksum list: it cannot be verified
    if fetch(SHA256SUMS, part, missing_ok=True):
        os.replace(part, sums_path)
        sums = parse_sha256sums(sums_path.read_text(encoding="utf-8"), f"{source} {SHA256SUMS}")
        log.info("verifying against %s's %s", source, SHA256SUMS)
        missing = [name for name in MIRROR_FILES if name not in sums]
        if missing:
            raise StageError(f"{source}: {SHA256SUMS} lists no checksum for {', '.join(missing)}")
        return {name: sums[name] for name in MIRROR_FILES}
    sums_path.unlink(missing_ok=True)
    log.info("%s has no %s: verifying against the official MTAT checksums", source, SHA256SUMS)
    return {name: OFFICIAL_SHA256[name] for name in MIRROR_FILES}


def verify(path: Path, expected: str, *, label: str) -> None:
    """Check ``path``'s SHA-256; on a mismatch delete it and raise :class:`StageError` naming the file."""
    actual = sha256_file(path)
    if actual != expected:
        path.unlink()
        raise StageError(
            f"{label}: SHA-256 mismatch (expected {expected}, got {actual}); the file was deleted, re-run to fetch it"
        )


def _read_record(downloads: Path) -> dict[str, Any]:
    path = downloads / VERIFIED
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _unchanged(path: Path, entry: dict[str, Any] | None) -> bool:
    """Whether ``path`` still has the size and mtime it had when ``entry`` recorded it as verified."""
    if entry is None or not path.is_file():
        return False
    stat = path.stat()
    return stat.st_size == entry["size"] and stat.st_mtime_ns == entry["mtime_ns"]


def _known_hash(path: Path, entry: dict[str, Any] | None) -> str:
    """SHA-256 of ``path``: from the record when the file is unchanged since, else computed."""
    return entry["sha256"] if entry is not None and _unchanged(path, entry) else sha256_file(path)


def copy_local(source: Path, part: Path, *, missing_ok: bool = False) -> bool:
    """Hard-link (or, across file systems, copy) ``source`` to ``part``; False if it is absent and ``missing_ok``."""
    if not source.is_file():
        if missing_ok:
            return False
        raise StageError(f"{source}: not found in the mirror folder")
    part.unlink(missing_ok=True)
    try:
        os.link(source, part)
    except OSError:
        with open(source, "rb") as src, open(part, "wb") as dst, _bar(source.name, source.stat().st_size) as bar:
            while block := src.read(CHUNK):
                dst.write(block)
                bar.update(len(block))
    return True


def _bar(name: str, total: int | None, initial: int = 0) -> tqdm:
    return progress(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def http_download(url: str, part: Path, *, data: DataParams, missing_ok: bool = False) -> bool:
    """Download ``url`` into ``part``, resuming what ``part`` holds; False on HTTP 403/404/410 if ``missing_ok``.

    Connection errors, timeouts, short bodies and HTTP 408/425/429/5xx are retried up to ``data.retries``
    times, waiting ``data.backoff_s * 2**(k-1)`` seconds before retry k.
    """
    problem = ""
    for attempt in range(1, data.retries + 1):
        try:
            _http_attempt(url, part, timeout_s=data.timeout_s)
            return True
        except HTTPError as err:
            if err.code in MISSING_HTTP_CODES and missing_ok:
                return False
            if err.code == 416 and part.is_file():  # nothing left after our Range start: the part is complete
                return True
            if err.code not in RETRY_HTTP_CODES:
                raise StageError(f"{url}: HTTP {err.code} {err.reason}") from err
            problem = f"HTTP {err.code} {err.reason}"
        except (OSError, http.client.HTTPException) as err:  # URLError, refused or reset connections, timeouts
            problem = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if attempt < data.retries:
            delay = data.backoff_s * 2 ** (attempt - 1)
            log.warning("%s: %s; retry %d/%d in %.1f s", url, problem, attempt, data.retries - 1, delay)
            time.sleep(delay)
    raise StageError(f"{url}: download failed after {data.retries} attempts: {problem}")


def _http_attempt(url: str, part: Path, *, timeout_s: float) -> None:
    """One request: continue ``part`` from its current size (Range) or restart it when the server ignores Range."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with urlopen(Request(url, headers=headers), timeout=timeout_s) as response:
        if offset and response.status != 206:  # Range not honoured: the body is the whole file
            log.info("%s: server ignored the Range request; downloading from the start", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        with open(part, "ab" if offset else "wb") as handle, _bar(part.name[: -len(".part")], total, offset) as bar:
            while block := response.read(CHUNK):
                handle.write(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received < total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")


# --- extraction ------------------------------------------------------------------------------------


class ConcatReader(io.RawIOBase):
    """A read-only, seekable stream over several files back to back (the zip pieces, without a joined copy)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._files = [open(path, "rb") for path in paths]  # noqa: SIM115 (closed in close())
        self._starts = list(accumulate((os.fstat(f.fileno()).st_size for f in self._files), initial=0))
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view) and self._pos < self._starts[-1]:
            k = bisect.bisect_right(self._starts, self._pos) - 1  # the piece holding self._pos
            piece = self._files[k]
            piece.seek(self._pos - self._starts[k])
            n = piece.readinto(view[filled : filled + self._starts[k + 1] - self._pos])
            if not n:
                break
            filled += n
            self._pos += n
        return filled

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


def extract(downloads: Path, out_dir: Path, hashes: dict[str, str]) -> None:
    """Extract the verified zip pieces into ``out_dir/mp3/<0-f>/`` and place the two CSVs in ``out_dir``."""
    record = _read_record(downloads)
    pieces = {name: hashes[name] for name in ZIP_PIECES}
    mp3_dir = out_dir / "mp3"
    if record.get("extracted") == pieces and mp3_dir.is_dir():
        log.info("%s already holds the extracted archive", mp3_dir)
    else:
        _extract_archive([downloads / name for name in ZIP_PIECES], mp3_dir)
        write_json(downloads / VERIFIED, {**record, "extracted": pieces})
    for name in (ANNOTATIONS, CLIP_INFO):
        target = out_dir / name
        if not (target.is_file() and os.path.samefile(target, downloads / name)):
            with atomic_path(target) as tmp:
                tmp.unlink()
                try:
                    os.link(downloads / name, tmp)
                except OSError:
                    shutil.copyfile(downloads / name, tmp)


def _extract_archive(pieces: Sequence[Path], mp3_dir: Path) -> None:
    """Unzip the concatenated ``pieces`` into a temporary folder, then rename it to ``mp3_dir``."""
    staging = Path(tempfile.mkdtemp(prefix=".mp3-", dir=mp3_dir.parent))
    try:
        n_mp3, ignored = 0, []
        with ConcatReader(pieces) as stream, zipfile.ZipFile(stream) as archive:
            for info in progress(archive.infolist(), unit="file", desc="extract"):
                folder, _, name = info.filename.partition("/")
                if info.is_dir():
                    continue
                if folder not in FOLDERS or not name.endswith(".mp3") or "/" in name or name.startswith("."):
                    ignored.append(info.filename)
                    continue
                (staging / folder).mkdir(exist_ok=True)
                with archive.open(info) as src, open(staging / folder / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                n_mp3 += 1
        if ignored:
            log.warning("ignored %d archive members outside <0-f>/*.mp3, e.g. %s", len(ignored), ignored[0])
        if n_mp3 == 0:
            raise StageError(f"{pieces[0]}: the archive holds no <0-f>/*.mp3 member")
        if mp3_dir.exists():
            old = mp3_dir.with_name(f".{mp3_dir.name}-old-{os.getpid()}")
            os.replace(mp3_dir, old)
            shutil.rmtree(old)
        os.replace(staging, mp3_dir)
        log.info("extracted %d mp3 files into %s", n_mp3, mp3_dir)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        names = " + ".join(p.name for p in pieces)
        raise StageError(f"{pieces[0].parent}/{names}: not a valid zip archive: {err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
