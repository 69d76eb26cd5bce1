"""Tests of the ``download`` stage against a local HTTP mirror and local folders in the official layout."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import threading
import types
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from mirror_fixture import TinyData, tiny_data, write_mirror

from jetatag import pipeline
from jetatag.checksums import SHA256SUMS, write_sha256sums
from jetatag.config import Params
from jetatag.data.download import DOWNLOADS, MIRROR_FILES, VERIFIED, run_download
from jetatag.errors import StageError
from jetatag.mtat import ANNOTATIONS, CLIP_INFO, OFFICIAL_SHA256, ZIP_PIECES
from jetatag.synth.stage import run_synth

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Mirror:
    """Files a test server serves, and how it misbehaves."""

    files: dict[str, bytes]
    ranges: bool = True  # honour Range requests
    drop_after: dict[str, int] = field(default_factory=dict)  # name -> bytes sent before dropping, once
    always_drop: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (name, Range header)


def handler_for(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            name = self.path.rsplit("/", 1)[-1]
            mirror.requests.append((name, self.headers.get("Range")))
            if name not in mirror.files:
                self.send_error(404)
                return
            body, start = mirror.files[name], 0
            wanted = self.headers.get("Range")
            if mirror.ranges and wanted:
                start = int(wanted.removeprefix("bytes=").rstrip("-"))
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = mirror.drop_after.pop(name, None)
            if mirror.always_drop:
                cut = 10
            self.wfile.write(body[start:] if cut is None else body[start : start + cut])
            if cut is not None:
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[Mirror], str]]:
    """Start a threaded HTTP server on 127.0.0.1 for a :class:`Mirror`; yields a function returning its URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(mirror: Mirror) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(mirror))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/datasets/magnatagatune/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def mirror_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TinyData]:
    """A tiny mirror in the official layout (10 clips of 2 s, one of them empty) with SHA256SUMS."""
    rng = np.random.default_rng(11)
    data = tiny_data(10, rng=rng, empty=(4,))
    return write_mirror(tmp_path_factory.mktemp("mirror") / "m", data, seconds=2.0, rng=rng), data


def mirror_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def params_for(make_params: Callable, source: str, retries: int = 3) -> Params:
    return make_params({"data": {"source": source, "retries": retries, "backoff_s": 0.0, "timeout_s": 5.0}})


def assert_extracted(out: Path, mirror: Path, data: TinyData) -> None:
    """The raw folder holds both CSVs and every clip of the mirror's zip under mp3/<0-f>/, and no leftovers."""
    assert (out / ANNOTATIONS).read_bytes() == (mirror / ANNOTATIONS).read_bytes()
    assert (out / CLIP_INFO).read_bytes() == (mirror / CLIP_INFO).read_bytes()
    extracted = sorted(str(p.relative_to(out / "mp3")) for p in (out / "mp3").rglob("*.mp3"))
    assert extracted == sorted(data.mp3_paths)
    with zipfile.ZipFile(io.BytesIO(b"".join((mirror / name).read_bytes() for name in ZIP_PIECES))) as archive:
        for path in data.mp3_paths:
            assert (out / "mp3" / path).read_bytes() == archive.read(path)
    assert (out / "mp3" / data.mp3_paths[4]).stat().st_size == 0  # the empty clip is kept as it is
    assert not list(out.glob(".mp3-*")) and not list((out / "downloads").glob("*.part"))


def test_http_mirror_download_resume_and_rerun(tmp_path: Path, mirror_dir: tuple[Path, TinyData], serve, make_params):
    folder, data = mirror_dir
    mirror = Mirror(mirror_files(folder), drop_after={"mp3.zip.002": 1000})
    out = tmp_path / "raw"
    params = params_for(make_params, serve(mirror))

    run_download(params, out_dir=out)

    assert_extracted(out, folder, data)
    piece2 = [rng for name, rng in mirror.requests if name == "mp3.zip.002"]
    assert piece2 == [None, "bytes=1000-"]  # the dropped download resumed where it stopped
    assert mirror.requests[0] == (SHA256SUMS, None)  # checksums are fetched first
    for name in MIRROR_FILES:
        assert (out / "downloads" / name).read_bytes() == mirror.files[name]

    mirror.requests.clear()
    mp3_inode = (out / "mp3").stat().st_ino
    run_download(params, out_dir=out)
    assert mirror.requests == []  # everything verified and in place: no network I/O
    assert (out / "mp3").stat().st_ino == mp3_inode  # and no re-extraction


def test_server_without_range_support_restarts_the_file(
    tmp_path: Path, mirror_dir: tuple[Path, TinyData], serve, make_params
):
    folder, data = mirror_dir
    mirror = Mirror(mirror_files(folder), ranges=False, drop_after={"mp3.zip.001": 500})
    run_download(params_for(make_params, serve(mirror)), out_dir=tmp_path)
    assert [r for n, r in mirror.requests if n == "mp3.zip.001"] == [None, "bytes=500-"]
    assert_extracted(tmp_path, folder, data)


def test_wrong_checksum_is_an_error_and_leaves_no_complete_file(
    tmp_path: Path, mirror_dir: tuple[Path, TinyData], serve, make_params
):
    folder, _ = mirror_dir
    files = mirror_files(folder)
    files["mp3.zip.003"] = files["mp3.zip.003"][:-1] + bytes([files["mp3.zip.003"][-1] ^ 1])  # one flipped bit
    with pytest.raises(StageError, match=r"mp3\.zip\.003 from .*SHA-256 mismatch"):
        run_download(params_for(make_params, serve(Mirror(files))), out_dir=tmp_path)
    downloads = tmp_path / "downloads"
    assert not (downloads / "mp3.zip.003").exists() and not (downloads / "mp3.zip.003.part").exists()
    assert not (tmp_path / "mp3").exists() and not (tmp_path / ANNOTATIONS).exists()


def test_mirror_without_sha256sums_uses_the_official_checksums(
    tmp_path: Path, mirror_dir: tuple[Path, TinyData], serve, make_params
):
    files = mirror_files(mirror_dir[0])
    del files[SHA256SUMS]
    with pytest.raises(StageError, match=f"mp3.zip.001 .*expected {OFFICIAL_SHA256['mp3.zip.001']}"):
        run_download(params_for(make_params, serve(Mirror(files))), out_dir=tmp_path)
    assert not list((tmp_path / "downloads").glob("mp3.zip.*"))


def test_missing_file_and_dead_server_are_clear_errors(
    tmp_path: Path, mirror_dir: tuple[Path, TinyData], serve, make_params
):
    files = mirror_files(mirror_dir[0])
    del files["mp3.zip.002"]
    with pytest.raises(StageError, match=r"mp3\.zip\.002: HTTP 404"):
        run_download(params_for(make_params, serve(Mirror(files))), out_dir=tmp_path / "a")
    flaky = Mirror(mirror_files(mirror_dir[0]), always_drop=True)
    with pytest.raises(StageError, match="SHA256SUMS: download failed after 2 attempts"):
        run_download(params_for(make_params, serve(flaky), retries=2), out_dir=tmp_path / "b")
    assert len(flaky.requests) == 2


def test_local_folder_source(tmp_path: Path, mirror_dir: tuple[Path, TinyData], make_params):
    folder, data = mirror_dir
    params = params_for(make_params, str(folder))
    run_download(params, out_dir=tmp_path)
    assert_extracted(tmp_path, folder, data)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "downloads").iterdir()}
    run_download(params, out_dir=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "downloads").iterdir()} == stamps


def test_local_folder_with_a_bad_archive(tmp_path: Path, make_params):
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in MIRROR_FILES:
        (folder / name).write_bytes(f"not a zip: {name}\n".encode())
    (folder / SHA256SUMS).write_text(
        "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in MIRROR_FILES)
    )
    with pytest.raises(StageError, match="not a valid zip archive"):
        run_download(params_for(make_params, str(folder)), out_dir=tmp_path / "raw")
    assert not (tmp_path / "raw" / "mp3").exists()
    with pytest.raises(StageError, match="data.source: .* is not 'synthetic'"):
        run_download(params_for(make_params, str(tmp_path / "nowhere")), out_dir=tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_synthetic_source_reads_the_synth_stage_mirror(
    tmp_path: Path, mirror_dir: tuple[Path, TinyData], make_params, monkeypatch: pytest.MonkeyPatch
):
    calls = []

    def fake_write_mirror(out_dir: Path, *, n_clips: int, clip_seconds: float, seed: int, workers: int) -> None:
        calls.append((n_clips, clip_seconds, seed, workers))
        shutil.rmtree(out_dir, ignore_errors=True)  # like the real one, it replaces the folder whole
        out_dir.mkdir(parents=True)
        for name, blob in mirror_files(mirror_dir[0]).items():
            (out_dir / name).write_bytes(blob)

    monkeypatch.setitem(sys.modules, "jetatag.synth.mirror", types.SimpleNamespace(write_mirror=fake_write_mirror))
    params = make_params({"data": {"source": "synthetic"}, "synth": {"n_clips": 16, "seed": 3}})
    synth = tmp_path / "synth"
    with pytest.raises(StageError, match="write the mirror first"):
        run_download(params, out_dir=tmp_path / "raw", synth_dir=synth)
    run_synth(params, out_dir=synth)
    run_synth(params, out_dir=synth)
    assert calls == [(16, 10.0, 3, 2)]  # generated once
    run_download(params, out_dir=tmp_path / "raw", synth_dir=synth)
    assert_extracted(tmp_path / "raw", mirror_dir[0], mirror_dir[1])
    run_synth(make_params({"data": {"source": "synthetic"}, "synth": {"n_clips": 16, "seed": 4}}), out_dir=synth)
    assert len(calls) == 2  # other synth params: a new mirror


def test_synth_stage_writes_a_constant_note_for_other_sources(tmp_path: Path, make_params) -> None:
    notes = []
    for i, source in enumerate(("https://example.invalid/mtat/", str(tmp_path))):
        out = tmp_path / f"synth{i}"
        run_synth(make_params({"data": {"source": source}, "synth": {"seed": i}}), out_dir=out)
        assert [p.name for p in out.iterdir()] == ["unused.json"]
        notes.append((out / "unused.json").read_bytes())
    assert notes[0] == notes[1]  # same bytes whatever the source: download stays up to date under DVC


def test_download_code_does_not_include_the_generator() -> None:
    # an edit of the synthetic generator must not rerun (and so delete) a real 3 GB download
    assert not [f for f in pipeline.stage("download").code() if f.startswith("jetatag/synth/")]
    assert "jetatag/synth/mirror.py" in pipeline.stage("synth").code()


def test_dvc_hashes_data_raw_without_the_resume_record() -> None:
    # verified.json keeps the mirror files' mtimes, which every checkout changes: inside data/raw's hash they
    # would rerun labels, segment and everything below them after a fresh `dvc checkout` of the same mirror
    raw = pipeline.stage("download").outs["raw"].path

    def ignored(name: str) -> bool:
        command = [sys.executable, "-m", "dvc", "check-ignore", f"{raw}/{DOWNLOADS}/{name}"]
        return subprocess.run(command, cwd=ROOT, capture_output=True, check=False).returncode == 0

    assert ignored(VERIFIED)
    assert not [name for name in MIRROR_FILES if ignored(name)]


def test_archive_members_outside_the_folders_are_not_extracted(tmp_path: Path, make_params, caplog):
    folder = tmp_path / "mirror"
    folder.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("0/", b"")
        archive.writestr("0/good.mp3", b"audio")
        archive.writestr("../evil.mp3", b"x")
        archive.writestr("__MACOSX/0/._good.mp3", b"x")
        archive.writestr("g/other.mp3", b"x")
    blob = buffer.getvalue()
    for name, piece in zip(ZIP_PIECES, (blob[:7], blob[7:100], blob[100:]), strict=True):
        (folder / name).write_bytes(piece)
    (folder / ANNOTATIONS).write_text("a")
    (folder / CLIP_INFO).write_text("b")
    write_sha256sums(folder, MIRROR_FILES)
    run_download(params_for(make_params, str(folder)), out_dir=tmp_path / "raw")
    assert sorted(str(p.relative_to(tmp_path / "raw")) for p in (tmp_path / "raw").rglob("*.mp3")) == ["mp3/0/good.mp3"]
    assert (tmp_path / "raw" / "mp3" / "0" / "good.mp3").read_bytes() == b"audio"
    assert not (tmp_path / "evil.mp3").exists() and "ignored 3 archive members" in caplog.text
