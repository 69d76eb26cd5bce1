"""Read the user's audio as the models saw MTAT: mono float32 at the model's sample rate, peak-normalised.

Any container/codec libsndfile decodes (wav, flac, ogg/vorbis/opus, mp3, aiff, ...) at any sample
rate and channel count is accepted; decoding is the ``segment`` stage's (:mod:`jetatag.audio`: channel mean,
soxr resampling), then the whole file is mu-law companded when the model was trained so, and divided by its
peak (``x / max|x|``), as ``segment`` does per clip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

from jetatag.audio import decode_mono, mu_law_compress
from jetatag.errors import StageError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf",
     ".w64", ".rf64"}
)  # fmt: skip
"""File name extensions picked up when a folder is searched for audio (explicit file arguments are always tried)."""


def find_audio(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Expand files and folders (recursively, audio extensions only) into ``(audio_files, missing_paths)``.

    Folders are walked in sorted order so output order is stable; a file named explicitly is kept
    whatever its extension (libsndfile decides whether it can read it); duplicates are dropped.
    """
    found: list[Path] = []
    missing: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not inside:
                log.warning("%s: folder holds no audio files (%s)", path, ", ".join(sorted(AUDIO_EXTENSIONS)))
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            missing.append(path)
    return list(dict.fromkeys(found)), missing


def load_audio(path: Path, *, sample_rate: int, peak_normalize: bool = True, mu_law: bool = False) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz, shape ``(n_samples,)``, mu-law companded and/or
    peak-normalised as the model's training shards were.

    Raises :class:`StageError` naming the file when it cannot be decoded or holds no samples.
    """
    try:
        wave = decode_mono(path, sample_rate)  # the decoder segment uses too: channel mean, soxr HQ
    except (sf.SoundFileError, RuntimeError, ValueError, OSError) as err:
        raise StageError(f"{path}: cannot decode audio (damaged, or a format libsndfile does not read): {err}") from err
    if wave.shape[0] == 0:
        raise StageError(f"{path}: holds no audio samples")
    if not np.isfinite(wave).all():
        raise StageError(f"{path}: decoded samples contain NaN or infinity")
    if mu_law:
        mu_law_compress(wave)  # before the peak, as segment does
    if peak_normalize:
        peak = float(np.abs(wave).max())
        if peak > 0:  # silence stays silence rather than becoming NaN
            wave /= peak
    return wave
