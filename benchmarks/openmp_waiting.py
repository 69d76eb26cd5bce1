"""Training-step time under three ways OpenMP's idle threads wait: alone on the cores, and beside a second run.

torch's OpenMP threads wait between the parallel regions of a step. They can spin (libgomp's default,
300,000 spins), sleep at once (``OMP_WAIT_POLICY=PASSIVE``) or spin briefly then sleep
(``GOMP_SPINCOUNT``, what :mod:`jetatag.runtime` sets). This times no-JE training steps at the demo
width for each setting, first one run alone, then two runs of different extractors at the same time
(each with all the threads, as two queued experiments or a busy machine would have them), and prints
each setting's ms per step and its ratio to sleeping threads.

    python benchmarks/openmp_waiting.py                   # demo width, all extractors alone; hcnn beside samplecnn
    python benchmarks/openmp_waiting.py --sizes paper --extractors samplecnn
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def settings() -> dict[str, dict[str, str]]:
    """The OpenMP environments compared, by name: sleeping, jetatag's bounded spinning, libgomp's default."""
    from jetatag.runtime import SPIN_COUNT

    return {
        "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
        f"spin {SPIN_COUNT}": {"GOMP_SPINCOUNT": str(SPIN_COUNT)},
        "libgomp default": {},
    }


def worker(extractor: str, size: str, steps: int, threads: int) -> None:
    """Time ``steps`` no-JE training steps (after two warm-up steps) and print their median in ms."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from train_step import PAPER_MODEL, no_je_step, time_steps

    from jetatag.config import load_params

    model = PAPER_MODEL if size == "paper" else load_params(ROOT / "params.yaml").model
    step = no_je_step(extractor, model, batch=16, threads=threads, seed=0)  # sets up the allocator as jetatag does
    step()  # the first of two warm-up steps; time_steps takes the second
    wall_ms, _ = time_steps(step, steps, torch.device("cpu"))
    print(f"{wall_ms:.1f}", flush=True)


def run_workers(jobs: list[tuple[str, int]], environment: dict[str, str], size: str, threads: int) -> list[float]:
    """Run one worker per (extractor, steps) of ``jobs`` at the same time under ``environment``; their medians."""
    env = {key: value for key, value in os.environ.items() if key not in OPENMP_VARIABLES} | environment
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", extractor, "--size", size, "--steps", str(steps)]
            + ["--threads", str(threads)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for extractor, steps in jobs
    ]
    outputs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"a worker failed: exit statuses {[proc.returncode for proc in procs]}")
    return [float(out.split()[-1]) for out in outputs]


def main() -> None:
    from jetatag.config import EXTRACTOR_IDS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extractors", nargs="+", choices=EXTRACTOR_IDS, default=list(EXTRACTOR_IDS))
    parser.add_argument("--sizes", nargs="+", choices=("demo", "paper"), default=["demo"])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per run alone")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of every run")
    parser.add_argument(
        "--pair", nargs=2, default=["hcnn", "samplecnn"], metavar="EXTRACTOR", help="the two runs sharing the cores"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.size, args.steps, args.threads)
        return

    named = settings()
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.threads} threads per run, batch 16")
    print("| size | extractor | run | " + " | ".join(f"{name} ms" for name in named) + " | vs passive |")
    print("|---|---|---|" + "---|" * len(named) + "---|")
    for size in args.sizes:
        rows = {extractor: {} for extractor in args.extractors}
        for name, environment in named.items():
            for extractor in args.extractors:
                rows[extractor][name] = run_workers([(extractor, args.steps)], environment, size, args.threads)[0]
        totals = {name: sum(row[name] for row in rows.values()) for name in named}
        rows["sum of the above"] = totals
        # steps in inverse proportion to the runs' speeds alone, so that the two overlap from start to end
        alone = [rows[extractor]["passive"] if extractor in rows else None for extractor in args.pair]
        pair_steps = [args.steps] * 2 if None in alone else [round(args.steps * max(alone) / ms) for ms in alone]
        shared = {
            name: run_workers(list(zip(args.pair, pair_steps, strict=True)), environment, size, args.threads)
            for name, environment in named.items()
        }
        for extractor, row in rows.items():
            _print_row(size, extractor, "alone", row)
        for i, extractor in enumerate(args.pair):
            _print_row(size, extractor, f"beside {args.pair[1 - i]}", {name: ms[i] for name, ms in shared.items()})
    print(f"median of {args.steps} steps per run after 2 warm-up steps; load average after: {os.getloadavg()[0]:.1f}")


def _print_row(size: str, extractor: str, run: str, row: dict[str, float]) -> None:
    """One table row: ms per step of each setting, then each setting's ratio to the passive one."""
    passive = row["passive"]
    ratios = " / ".join(f"{ms / passive:.2f}" for ms in row.values())
    print(f"| {size} | {extractor} | {run} | " + " | ".join(f"{ms:.0f}" for ms in row.values()) + f" | {ratios} |")


if __name__ == "__main__":
    main()
