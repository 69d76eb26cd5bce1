"""How a jetatag process runs torch on a CPU: keep freed tensor memory, and let idle OpenMP threads sleep.

* Allocator. glibc serves every allocation above its mmap threshold (adaptive, at most 32 MiB) with
  fresh pages from the kernel and hands them back on free. A training step allocates and frees the same
  large activations each time (Music-SincNet's 16 × 32 × 59,049 float32 filterbank output alone is
  120 MB at width 0.125), so every step page-faults and zero-fills them again. Measured on 2 cores,
  width 0.125: half the CPU time of a Music-SincNet step and a third of a Harmonic-CNN step. Raising
  the mmap and trim thresholds keeps that memory in the heap for the next step.
* OpenMP waiting. torch's OpenMP threads spin between parallel regions; when the cores are shared (two
  Snakemake jobs, a busy laptop) the spinning threads steal the cores the working ones need, and a
  step took 2-6× longer. ``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it) makes them sleep.

Neither changes any result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""mallopt() parameter numbers from glibc's <malloc.h>."""

MMAP_THRESHOLD = 1 << 30
"""Allocations below 1 GiB come from the heap (glibc's own ceiling is far higher on 64-bit)."""
TRIM_THRESHOLD = (1 << 31) - 1
"""Free heap memory is returned to the kernel only beyond 2 GiB."""


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False (and no change) off glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    log.debug("glibc mmap/trim thresholds raised: %s", ok)
    return ok


def configure_process() -> None:
    """Set up this process for torch work on CPU: call before torch is first imported (OpenMP reads its
    environment when it loads)."""
    if "torch" in sys.modules:
        log.debug("torch already imported: OMP_WAIT_POLICY left as it is")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    keep_freed_memory()
