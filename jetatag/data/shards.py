"""On-disk format of the segmented audio: npy shards of concatenated clips, ``index.parquet`` and ``meta.json``.

A shard ``shard-NNNNN.npy`` is one 1-D array holding whole clips back to back (a clip never spans two
shards). ``index.parquet`` has one row per clip: ``clip_id``, ``mp3_path``, ``split``, ``shard``,
``offset`` and ``n_samples`` (in samples), ``padded`` and ``tags`` (uint8 list in ``meta.json``'s tag
order). Samples are stored as int16 at full scale :data:`INT16_SCALE` or as float16, and read back as
float32 in [-1, 1].
"""

from __future__ import annotations

import io

import numpy as np

INDEX = "index.parquet"
META = "meta.json"
SKIPPED = "skipped.json"
FORMAT_VERSION = 1

INT16_SCALE = 32767
"""int16 sample = round(x * 32767) for x in [-1, 1]: symmetric, so reading back stays within [-1, 1]."""


NPY_HEADER_BYTES = 128
"""Size of the .npy v1.0 header of a 1-D shard (the format pads it to a multiple of 64 bytes)."""


def npy_header(dtype: str, n_samples: int) -> bytes:
    """The .npy header of a 1-D ``dtype`` array of ``n_samples`` (a shard is streamed before its length is known)."""
    buffer = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": (n_samples,)})
    header = buffer.getvalue()
    if len(header) != NPY_HEADER_BYTES:
        raise ValueError(f"npy header of {n_samples} {dtype} samples is {len(header)} bytes, not {NPY_HEADER_BYTES}")
    return header


def shard_name(shard: int) -> str:
    """File name of shard number ``shard``."""
    return f"shard-{shard:05d}.npy"


def to_stored(wave: np.ndarray, dtype: str, *, gain: float = 1.0, peak: float | None = None) -> np.ndarray:
    """Scale float32 ``wave`` by ``gain``, clip to [-1, 1] and convert to ``dtype`` ("int16" or "float16").

    Works in place on ``wave`` (no temporaries) because it runs once per clip on long arrays. ``peak`` =
    max|wave|, when known, skips the clipping pass if ``gain * peak <= 1`` (always so after peak normalisation).
    """
    if dtype not in ("int16", "float16"):
        raise ValueError(f"unknown shard dtype {dtype!r} (int16 or float16)")
    full_scale = np.float32(INT16_SCALE if dtype == "int16" else 1.0)
    np.multiply(wave, np.float32(gain) * full_scale, out=wave)
    if peak is None or gain * peak > 1.0:
        np.clip(wave, -full_scale, full_scale, out=wave)
    if dtype == "int16":
        np.rint(wave, out=wave)
    return wave.astype(dtype)


def to_float(stored: np.ndarray) -> np.ndarray:
    """Stored samples (any shape) back to float32 in [-1, 1], in one pass."""
    if stored.dtype == np.int16:
        return np.multiply(stored, np.float32(1.0 / INT16_SCALE), dtype=np.float32)
    return stored.astype(np.float32)
