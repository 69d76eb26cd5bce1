"""Speed of the synthetic mirror generator (issue 3 target: >= 20 clips/s for 10-s clips on the 2-core machine).

Prints, measured in one run:

* end-to-end ``write_mirror`` throughput (clips/s, wall clock) for ``--clips`` clips of ``--seconds`` with
  ``--workers`` processes: plan, score, MIDI rendering, singer, mix, mp3 encoding, zip, CSVs, checksums;
* the CPU time per clip of each step in this process (where the time goes);
* the wall time of the tiny test mirror (16 clips of 3 s, one process; target < 5 s);
* the machine's load average before and after, since other jobs share the cores. Usage::

    python benchmarks/synth_speed.py --clips 400 --seconds 10 --workers 2
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import midirenderer
import numpy as np
import soundfile as sf
import soxr

from jetatag.synth.clip import design_clip, encode_mp3, render_clip
from jetatag.synth.mirror import write_mirror, write_tiny_mirror
from jetatag.synth.render import soundfont_bytes
from jetatag.synth.score import Score, Track, midi_bytes
from jetatag.synth.voice import sing


def step_profile(n: int, seconds: float) -> dict[str, float]:
    """Mean CPU milliseconds per clip of each generation step, over ``n`` clips in this process."""
    font = soundfont_bytes()
    totals = {
        "design (plan, score, tags)": 0.0,
        "midi bytes": 0.0,
        "synthesiser 48 kHz": 0.0,
        "resample to 16 kHz": 0.0,
        "singer (all clips)": 0.0,
        "render total (incl. mix)": 0.0,
        "mp3 encode": 0.0,
    }
    for i in range(n):
        t = time.process_time()
        design = design_clip(99, i, i, seconds)
        totals["design (plan, score, tags)"] += time.process_time() - t
        t = time.process_time()
        midi = midi_bytes(design.score, np.full(len(design.score.tracks), 0.7), 0.7)
        totals["midi bytes"] += time.process_time() - t
        t = time.process_time()
        wav, rate = sf.read(io.BytesIO(midirenderer.render_wave_from(font, midi)), dtype="float32")
        totals["synthesiser 48 kHz"] += time.process_time() - t
        t = time.process_time()
        soxr.resample(wav.mean(axis=1), rate, 16000)
        totals["resample to 16 kHz"] += time.process_time() - t
        if design.plan.vocal != "none":
            t = time.process_time()
            sing(design.score.vocal, design.plan.vocal, seconds, 16000, np.random.default_rng(i))
            totals["singer (all clips)"] += time.process_time() - t
        t = time.process_time()
        audio = render_clip(design, font)
        totals["render total (incl. mix)"] += time.process_time() - t
        t = time.process_time()
        encode_mp3(audio)
        totals["mp3 encode"] += time.process_time() - t
    return {k: 1000 * v / n for k, v in totals.items()}


def synth_floor_ms(seconds: float, repeats: int = 10) -> float:
    """CPU milliseconds midirenderer needs for ``seconds`` of one short note: the cost before any music."""
    note = Track("piano", "lead", np.array([[0.0, 0.2, 60.0, 80.0]]))
    midi = midi_bytes(Score(seconds, 40, (note,), np.zeros((0, 4)), np.zeros((0, 4))), np.array([0.7]), 0.7)
    font = soundfont_bytes()
    t = time.process_time()
    for _ in range(repeats):
        midirenderer.render_wave_from(font, midi)
    return 1000 * (time.process_time() - t) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile-clips", type=int, default=40)
    args = parser.parse_args()
    print(f"cpu cores: {os.cpu_count()}, load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
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
    print(f"CPU ms per clip over {args.profile_clips} clips of {args.seconds} s (one process):")
    for name, ms in profile.items():
        print(f"  {name:28s} {ms:7.1f}")
    per_clip = profile["design (plan, score, tags)"] + profile["render total (incl. mix)"] + profile["mp3 encode"]
    print(f"  {'synthesiser floor (1 note)':28s} {synth_floor_ms(args.seconds):7.1f}  (fixed cost of 48 kHz rendering)")
    print(f"  {'total per clip':28s} {per_clip:7.1f}  -> at most {2000 / per_clip:.1f} clips/s on 2 idle cores")


if __name__ == "__main__":
    main()
