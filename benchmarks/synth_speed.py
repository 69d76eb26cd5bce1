"""Speed of the synthetic mirror generator (issue 3 target: >= 20 clips/s for 10-s clips on the 2-core machine).

Prints, measured in one run:

* the one-off cost of the note bank (every instrument rendered once by midirenderer into the cache), when
  the cache is cold, and where the cache is (``--cold`` renders it into a fresh temporary folder first);
* end-to-end ``write_mirror`` throughput (clips/s, wall clock) for ``--clips`` clips of ``--seconds`` with
  ``--workers`` processes on a filled cache: plan, score, sampler, singer, mix, mp3 encoding, zip, CSVs,
  checksums, pool start-up included;
* the CPU time per clip of each step in this process (where the time goes);
* the wall time of the tiny test mirror (16 clips of 3 s, one process; target < 5 s);
* the machine's load average before and after, since other jobs share the cores. Usage::

    python benchmarks/synth_speed.py --clips 400 --seconds 10 --workers 2 [--cold]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from jetatag.synth.clip import design_clip, encode_mp3, render_clip
from jetatag.synth.mirror import write_mirror, write_tiny_mirror
from jetatag.synth.notebank import NoteBank
from jetatag.synth.render import play
from jetatag.synth.voice import sing


def step_profile(n: int, seconds: float) -> dict[str, float]:
    """Mean CPU milliseconds per clip of each generation step, over ``n`` clips in this process."""
    bank = NoteBank()
    for i in range(n):  # warm this process's bank (loaded instruments, pitch-shifted notes), as a worker's is
        render_clip(design_clip(99, i, i, seconds), bank)
    totals = dict.fromkeys(["design (plan, score, tags)", "sampler (notes)", "singer", "render total", "mp3"], 0.0)
    for i in range(n):
        t = time.process_time()
        design = design_clip(99, i, i, seconds)
        totals["design (plan, score, tags)"] += time.process_time() - t
        t = time.process_time()
        play(design.score, np.full(len(design.score.tracks), 0.7), 0.7, bank)
        totals["sampler (notes)"] += time.process_time() - t
        if design.plan.vocal != "none":
            t = time.process_time()
            sing(design.score.vocal, design.plan.vocal, seconds, 16000, np.random.default_rng(i))
            totals["singer"] += time.process_time() - t
        t = time.process_time()
        audio = render_clip(design, bank)
        totals["render total"] += time.process_time() - t
        t = time.process_time()
        encode_mp3(audio)
        totals["mp3"] += time.process_time() - t
    return {k: 1000 * v / n for k, v in totals.items()}


def fill_bank(workers: int) -> float:
    """Seconds to render every missing bank part with ``workers`` processes (0 when the cache is full)."""
    with tempfile.TemporaryDirectory() as tmp:  # a small mirror with a pool renders the missing parts first
        start = time.perf_counter()
        write_mirror(Path(tmp) / "m", n_clips=16, clip_seconds=1.0, seed=0, workers=max(2, workers))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile-clips", type=int, default=40)
    parser.add_argument("--cold", action="store_true", help="render the note bank into a fresh cache first")
    args = parser.parse_args()
    print(f"cpu cores: {os.cpu_count()}, load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.cold:
            os.environ["JETATAG_CACHE_DIR"] = str(Path(tmp) / "cache")
        missing = len(NoteBank().missing())
        fill_s = fill_bank(args.workers)
        print(f"note bank: {missing} parts missing, filled in {fill_s:.1f} s wall (incl. a 16-clip mirror of 1 s)")
        print(f"note bank folder: {NoteBank().folder}")
        t0 = time.perf_counter()
        write_mirror(Path(tmp) / "m", n_clips=args.clips, clip_seconds=args.seconds, seed=0, workers=args.workers)
        wall = time.perf_counter() - t0
        print(
            f"write_mirror: {args.clips} clips x {args.seconds} s, {args.workers} workers: {wall:.1f} s wall "
            f"= {args.clips / wall:.2f} clips/s (target >= 20), load average after: {os.getloadavg()}"
        )
        t0 = time.perf_counter()
        write_tiny_mirror(Path(tmp) / "tiny")
        print(f"tiny test mirror (16 clips x 3 s, 1 process): {time.perf_counter() - t0:.2f} s (target < 5)")
        profile = step_profile(args.profile_clips, args.seconds)
    print(f"CPU ms per clip over {args.profile_clips} clips of {args.seconds} s (one process, warm bank):")
    for name, ms in profile.items():
        print(f"  {name:28s} {ms:7.1f}")
    per_clip = profile["design (plan, score, tags)"] + profile["render total"] + profile["mp3"]
    print(f"  {'total per clip':28s} {per_clip:7.1f}  -> at most {2000 / per_clip:.1f} clips/s on 2 idle cores")


if __name__ == "__main__":
    main()
