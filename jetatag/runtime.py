"""How a jetatag process runs torch on a CPU: keep freed tensor memory, and bound OpenMP's idle spinning.

* Allocator. glibc serves every allocation above its mmap threshold (adaptive, at most 32 MiB) with
  fresh pages from the kernel and hands them back on free. A training step allocates and frees the same
  large activations each time (Music-SincNet's 16 × 32 × 59,049 float32 filterbank output alone is
  120 MB at width 0.125), so every step page-faults and zero-fills them again. Measured on 2 cores,
  width 0.125: half the CPU time of a Music-SincNet step and a third of a Harmonic-CNN step. Raising
  the mmap and trim thresholds keeps that memory in the heap for the next step.
* OpenMP waiting. Between parallel regions, torch's OpenMP (libgomp) threads spin 300,000 times before
  they sleep. Alone on the cores that is fastest; when another process shares them (two training runs,
  a busy laptop) the spinning threads can steal the cores the working ones need: a Harmonic-CNN step
  beside a Sample-CNN run took 1.2-6× as long as with sleeping threads, varying from run to run.
  Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) costs every lone run instead: the demo's training steps
  took 1.23× as long, as each of a step's hundreds of short parallel regions wakes its threads from
  sleep. ``GOMP_SPINCOUNT=8000`` (unless the user chose a policy or a count) spins briefly, then sleeps:
  on 2 cores the demo's steps were within 3-6 % of full spinning, and steps on shared cores 1.15-1.3×
  those of sleeping threads (``benchmarks/openmp_waiting.py``, ``benchmarks/results/``).

* Garbage collector. Importing a stage's libraries (torch, scikit-learn, dvclive) builds millions of
  objects, and the cyclic collector walks them again and again while it does: a training stage's imports
  took 6.2 s, 5.4 s with the collector paused. Every full collection after them walks them once more: those
  of the stage's own work (``torch.optim`` imports ``torch._dynamo`` at the first optimizer, 2.5-3 s) and
  the interpreter's teardown at exit (2.0 s). A process that runs one command and exits freezes them once
  they are imported (``gc.freeze``: left out of every later collection); what it creates afterwards is
  collected as usual. Each stage of the pipeline is its own process, so this is paid once per stage: 37
  times in one ``dvc repro``.

None of these changes any result.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import sys
from collections.abc import Iterator, MutableMapping

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


SPIN_COUNT = 8000
"""libgomp's spins before an idle thread sleeps (its default is 300,000); see the module docstring."""


def bound_openmp_spinning(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` in ``environ`` unless the user set it or ``OMP_WAIT_POLICY``.

    Returns whether ``environ`` changed. OpenMP reads these variables once, when torch loads it.
    """
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return False
    environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return True


def configure_process() -> None:
    """Set up this process for torch work on CPU: call before torch is first imported (OpenMP reads its
    environment when it loads)."""
    if "torch" in sys.modules:
        log.debug("torch already imported: OpenMP's waiting left as it is")
    bound_openmp_spinning()
    keep_freed_memory()


_one_shot = False
"""Whether this interpreter exits after one command (:func:`declare_one_shot_process`)."""


def declare_one_shot_process() -> None:
    """Declare that this interpreter runs one command and exits (``python -m jetatag``): from now on,
    :func:`collector_paused` freezes what its block imported, and those objects are never collected."""
    global _one_shot
    _one_shot = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block (a stage's lazy imports) without cyclic garbage collection.

    In a one-shot process (:func:`declare_one_shot_process`) the objects alive after the block are frozen:
    no later collection walks them again. A process that goes on (the tests calling ``cli.main``) keeps its
    collector as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if _one_shot:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()


def freeze_before_exit() -> None:
    """Leave every live object out of the interpreter's teardown collection (see the module docstring).

    Only for a process about to exit: frozen objects are never collected.
    """
    gc.freeze()
