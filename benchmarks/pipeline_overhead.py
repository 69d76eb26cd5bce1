"""Front-end overhead: wall time of a no-op ``dvc repro`` and of ``snakemake -n`` over the whole DAG.

Run in a workspace where ``dvc repro`` has completed (otherwise the first figure is not a no-op)::

    python benchmarks/pipeline_overhead.py [--repeat 5] [--workspace PATH]

Prints the median of ``--repeat`` runs of each command (targets: no-op ``dvc repro`` < 3 s,
``snakemake -n`` of the full DAG < 5 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "dvc repro (no-op)": ["dvc", "repro"],
    "dvc status": ["dvc", "status"],
    "snakemake -n (up to date)": ["snakemake", "-n"],
    "snakemake -n --forceall (all jobs planned)": ["snakemake", "-n", "--forceall"],
}


def timed(cmd: list[str], workspace: Path) -> tuple[float, str]:
    """Wall seconds and output of one run of ``cmd``."""
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workspace", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    for label, cmd in COMMANDS.items():
        runs = [timed(cmd, args.workspace) for _ in range(args.repeat)]
        note = " (NOT a no-op: a stage ran)" if cmd == ["dvc", "repro"] and "Running stage" in runs[-1][1] else ""
        seconds = [s for s, _ in runs]
        print(f"{label:45s} median {statistics.median(seconds):5.2f} s  min {min(seconds):5.2f} s{note}")


if __name__ == "__main__":
    main()
