"""Model bundles: one ``.jetatag`` file a user can copy around and tag music with.

A bundle is a zip archive of two members: ``jetatag-bundle.json`` (format marker and version, the
jetatag version that wrote it, the SHA-256 of the checkpoint and a readable summary: extractor,
variant, sample rate, crop length, tags) and ``model.pt``, the self-describing training checkpoint
written by :func:`jetatag.models.tagger.save_tagger`, byte for byte. ``unzip -p model.jetatag
jetatag-bundle.json`` shows what a bundle holds without Python.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jetatag import __version__
from jetatag.errors import StageError
from jetatag.io import atomic_path
from jetatag.models.tagger import Tagger, TaggerMeta, load_tagger

BUNDLE_FORMAT = "jetatag-bundle"
BUNDLE_VERSION = 1
"""Bundle layout version; readers accept versions up to this one."""

MANIFEST = "jetatag-bundle.json"
CHECKPOINT = "model.pt"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: exporting the same model twice gives identical bytes


@dataclass(frozen=True)
class LoadedModel:
    """A tagger ready for inference plus where it came from."""

    tagger: Tagger
    meta: TaggerMeta
    path: Path
    sha256: str  # of the checkpoint bytes: equal for a checkpoint and the bundle exported from it


def export_bundle(model_path: Path, out_path: Path) -> dict[str, Any]:
    """Bundle the training checkpoint ``model_path`` into ``out_path`` (atomic); return the manifest."""
    model_path, out_path = Path(model_path), Path(out_path)
    _, meta = load_tagger(model_path)  # refuse to bundle anything that is not a loadable checkpoint
    payload = model_path.read_bytes()
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "jetatag_version": __version__,
        "checkpoint": CHECKPOINT,
        "checkpoint_sha256": hashlib.sha256(payload).hexdigest(),
        "checkpoint_format_version": meta.format_version,
        "extractor": meta.extractor,
        "variant": meta.variant,
        "sample_rate": meta.sample_rate,
        "crop_samples": meta.crop_samples,
        "tags": list(meta.tags),
    }
    with atomic_path(out_path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(MANIFEST, _ZIP_EPOCH), json.dumps(manifest, indent=2) + "\n")
        archive.writestr(zipfile.ZipInfo(CHECKPOINT, _ZIP_EPOCH), payload)
    return manifest


def load_bundle(path: Path) -> LoadedModel:
    """Load a ``.jetatag`` bundle; :class:`StageError` names the file and says what is wrong with it."""
    path = Path(path)
    manifest, payload = _read_bundle(path)
    with tempfile.TemporaryDirectory(prefix="jetatag-bundle-") as tmp:
        checkpoint = Path(tmp) / CHECKPOINT
        checkpoint.write_bytes(payload)
        try:
            tagger, meta = load_tagger(checkpoint)
        except StageError as err:
            raise StageError(f"{path}: bundled checkpoint cannot be loaded: {err}") from err
    return LoadedModel(tagger=tagger, meta=meta, path=path, sha256=manifest["checkpoint_sha256"])


def load_model(path: Path) -> LoadedModel:
    """Load either a ``.jetatag`` bundle or a training checkpoint (``models/<x>/<variant>/model.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: model file not found")
    if is_bundle(path):
        return load_bundle(path)
    if not zipfile.is_zipfile(path):  # bundles and torch checkpoints are both zip archives
        raise StageError(
            f"{path}: not a jetatag model: expected a .jetatag bundle (from `jetatag export`) or a stage-2 "
            "model.pt, and this file is neither (it is not even a zip archive)"
        )
    tagger, meta = load_tagger(path)  # StageError naming the file for a foreign or too-new checkpoint
    return LoadedModel(tagger=tagger, meta=meta, path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a zip archive holding a bundle manifest (its contents are checked on load)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return MANIFEST in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _read_bundle(path: Path) -> tuple[dict[str, Any], bytes]:
    """Return the checked manifest and checkpoint bytes of bundle ``path``."""
    if not path.is_file():
        raise StageError(f"{path}: model bundle not found")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if MANIFEST not in names:
                hint = (
                    " (it looks like a PyTorch file: bundle a training checkpoint with `jetatag export --model`)"
                    if any(n.endswith("data.pkl") for n in names)
                    else ""
                )
                raise StageError(f"{path}: not a jetatag model bundle: no {MANIFEST} inside{hint}")
            manifest = _check_manifest(path, archive.read(MANIFEST))
            if manifest["checkpoint"] not in names:
                raise StageError(f"{path}: damaged model bundle: member {manifest['checkpoint']} is missing")
            payload = archive.read(manifest["checkpoint"])
    except zipfile.BadZipFile as err:
        raise StageError(f"{path}: not a jetatag model bundle (not a readable zip archive: {err})") from err
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest["checkpoint_sha256"]:
        raise StageError(
            f"{path}: damaged model bundle: checkpoint SHA-256 is {digest}, the manifest says "
            f"{manifest['checkpoint_sha256']}"
        )
    return manifest, payload


def _check_manifest(path: Path, raw: bytes) -> dict[str, Any]:
    """Parse the manifest and check its format marker, version and required keys."""
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StageError(f"{path}: damaged model bundle: {MANIFEST} is not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise StageError(f"{path}: not a jetatag model bundle: {MANIFEST} does not declare format {BUNDLE_FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise StageError(f"{path}: damaged model bundle: bad format_version {version!r}")
    if version > BUNDLE_VERSION:
        raise StageError(
            f"{path}: bundle format version {version} was written by jetatag {manifest.get('jetatag_version', '?')}; "
            f"this jetatag {__version__} reads versions up to {BUNDLE_VERSION}: upgrade jetatag"
        )
    missing = [key for key in ("checkpoint", "checkpoint_sha256") if not isinstance(manifest.get(key), str)]
    if missing:
        raise StageError(f"{path}: damaged model bundle: {MANIFEST} lacks {', '.join(missing)}")
    return manifest
