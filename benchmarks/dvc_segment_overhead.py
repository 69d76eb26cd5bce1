"""What DVC adds to the ``segment`` stage: wall time against the stage command alone, and disk use.

Builds a synthetic MTAT-layout mirror of ``--clips`` clips of ``--seconds`` (default 2,000 × 29.1 s, the
size issue 13 measured) in a temporary copy of this checkout with ``dvc repro labels``, then times the
``segment`` command alone (into a scratch folder) against ``dvc repro segment`` (the same command plus
hashing its outputs with ``core.checksum_jobs`` threads and linking them into ``.dvc/cache`` as
``cache.type`` says): the first run, then ``--repeat`` alternating pairs of the command alone and
``dvc repro --force --single-item segment``, whose medians give the ratio. It also prints the disk used by
the outputs and the cache (``du`` counts a hard-linked file once). Targets (issue 13): ratio ≤ 1.15, disk
≤ 1.1 × the outputs.

    python benchmarks/dvc_segment_overhead.py [--clips 2000] [--seconds 29.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from pipeline_overhead import timed  # benchmarks/: this script's folder is on sys.path

from jetatag.pipeline import copy_checkout


def run(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of ``cmd`` in ``cwd`` (raises if it fails)."""
    return timed(cmd, cwd)[0]


def disk_mib(*paths: Path) -> float:
    """MiB on disk of ``paths`` together, each hard-linked file counted once (``du -sc``)."""
    out = subprocess.run(["du", "-sck", *map(str, paths)], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000, help="synthetic clips in the mirror")
    parser.add_argument("--seconds", type=float, default=29.1, help="length of each clip")
    parser.add_argument("--repeat", type=int, default=3, help="alternating pairs after the first run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jetatag-dvc-overhead-") as tmp:
        ws = Path(tmp)
        copy_checkout(ws)
        params = yaml.safe_load((ws / "params.yaml").read_text(encoding="utf-8"))
        params["synth"] |= {"n_clips": args.clips, "clip_seconds": args.seconds}
        (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"]):
            subprocess.run(cmd, cwd=ws, check=True, capture_output=True)
        print(f"building the mirror: {args.clips} clips of {args.seconds} s (dvc repro labels) in {ws}", flush=True)
        print(f"  {run(['dvc', 'repro', 'labels'], ws):.0f} s", flush=True)
        segment_alone = [
            sys.executable, "-m", "jetatag", "-q", "segment", "--params", "params.yaml", "--labels", "data/labels",
            "--raw", "data/raw", "--out", str(ws / "scratch-audio"),
        ]  # fmt: skip
        alone = [run(segment_alone, ws)]
        outputs = disk_mib(ws / "scratch-audio")
        cache_before = disk_mib(ws / ".dvc/cache")  # the mirror's own outputs (synth, download, labels)
        first = run(["dvc", "repro", "segment"], ws)
        total = disk_mib(ws / "data/audio", ws / ".dvc/cache") - cache_before
        config = {key: _dvc_config(key, ws) for key in ("cache.type", "core.checksum_jobs")}
        linked = sum(p.stat().st_nlink > 1 for p in (ws / "data/audio").iterdir() if p.is_file())
        rerun = []
        for _ in range(args.repeat):
            alone.append(run(segment_alone, ws))
            rerun.append(run(["dvc", "repro", "--force", "--single-item", "segment"], ws))
    base = statistics.median(alone)
    print(f"| {args.clips} clips of {args.seconds} s | wall s | ratio |")
    print("|---|---|---|")
    print(f"| segment alone (median of {len(alone)}) | {base:.1f} | 1.00 |")
    print(f"| dvc repro segment, first run | {first:.1f} | {first / base:.2f} |")
    if rerun:
        print(f"| dvc repro segment, forced (median of {len(rerun)}) | {statistics.median(rerun):.1f} | "
              f"{statistics.median(rerun) / base:.2f} |")  # fmt: skip
    settings = ", ".join(f"{key} {value}" for key, value in config.items())
    print(f"outputs {outputs:.0f} MiB; outputs + cache after dvc repro {total:.0f} MiB ({total / outputs:.2f}×), "
          f"{linked} output files hard-linked to the cache; {settings}")  # fmt: skip


def _dvc_config(key: str, ws: Path) -> str:
    """``dvc config key`` in ``ws``, or "default" where it is unset."""
    result = subprocess.run(["dvc", "config", key], cwd=ws, capture_output=True, text=True)
    return result.stdout.strip() or "default"


if __name__ == "__main__":
    main()
