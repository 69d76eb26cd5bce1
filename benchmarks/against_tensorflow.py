"""The authors' TensorFlow training step against jetatag's, alternating in one run on this machine.

Times a no-JE training step (batch 16, paper-size crops, Adam 1e-4) of each extractor in two long-lived
worker processes that take steps in turn: the authors' own ``Solver.get_model()`` and ``noJE_adam_step``
(``tf.function``), run by a separate TensorFlow interpreter from a checkout of their repository, and
jetatag's ``benchmarks/train_step.py`` worker. Neither the authors' code nor TensorFlow is a dependency
of jetatag: point the script at them.

    python3.11 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.15.1 tqdm librosa
    /tmp/tf/bin/pip install --no-deps kapre==0.3.4   # its tensorflow>=2.0 would pull the full tensorflow too
    git clone https://github.com/jaehwlee/jetatag /tmp/authors
    python benchmarks/against_tensorflow.py --authors /tmp/authors --tf-python /tmp/tf/bin/python
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

AUTHORS_MODEL = {  # jetatag extractor id → the authors' (encoder_type, block) for Solver.get_model(); Table 1 order
    "hcnn": ("HC", "basic"),
    "sincnet": ("MS", "rese"),
    "samplecnn": ("SC", "basic"),
    "samplecnn_se": ("SC", "se"),
    "samplecnn_res": ("SC", "res"),
    "samplecnn_rese": ("SC", "rese"),
}


def tf_worker(authors: Path, encoder: str, block: str, *, length: int, threads: int) -> None:
    """Runs under TensorFlow: the authors' no-JE step on a fixed random batch, once per "step" line on stdin."""
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(authors / "training"))
    from solver import Solver  # the authors' module

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    solver = Solver.__new__(Solver)  # its __init__ opens the dataset: set what get_model() and the step read
    solver.encoder_type, solver.block, solver.dataset, solver.latent = encoder, block, "mtat", 128
    solver.get_model()
    solver.get_optimizer()
    solver.get_loss()
    solver.get_metric()
    rng = np.random.default_rng(0)
    shape = (16, length) if encoder == "HC" else (16, length, 1)  # its loaders' layouts
    wave = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    labels = tf.constant((rng.random((16, 50)) < 0.1).astype("float32"))
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        start = time.perf_counter()
        solver.noJE_adam_step(wave, labels)
        print(f"{1e3 * (time.perf_counter() - start):.3f}", flush=True)


def compare(args: argparse.Namespace) -> None:
    """Alternate the two workers' steps per extractor and print the medians and their ratio."""
    # benchmarks/ is on sys.path; jetatag (and torch) are imported here, never in the TF worker
    from train_step import PAPER_MODEL, alternating_medians, start_worker, tree_environment, worker_command

    here = Path(__file__).resolve()
    print(f"load average before: {os.getloadavg()[0]:.1f}; threads {args.threads}")
    print("| extractor | authors' TensorFlow ms/step | jetatag ms/step | TensorFlow / jetatag |")
    print("|---|---:|---:|---:|")
    for extractor in args.extractors:
        ours = worker_command(extractor, PAPER_MODEL, batch=16, threads=args.threads, seed=0)
        theirs = [str(args.tf_python), str(here), "--tf-worker", *AUTHORS_MODEL[extractor], "--authors"]
        theirs += [
            str(args.authors),
            "--length",
            str(PAPER_MODEL.crop_samples(extractor)),
            "--threads",
            str(args.threads),
        ]
        workers = {
            "theirs": start_worker(theirs, os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}),
            "ours": start_worker(ours, tree_environment(here.parents[1])),
        }
        medians = alternating_medians(workers, steps=args.steps, warm_up=3)
        theirs_ms, ours_ms = medians["theirs"], medians["ours"]
        print(f"| {extractor} | {theirs_ms:.0f} | {ours_ms:.0f} | {theirs_ms / ours_ms:.2f}× |", flush=True)
    print(
        f"median of {args.steps} alternating steps after 3 warm-up steps each; "
        f"load average after: {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors", type=Path, required=True, help="checkout of github.com/jaehwlee/jetatag")
    parser.add_argument(
        "--tf-python", type=Path, help="python of an environment with tensorflow-cpu 2.15 and kapre 0.3.4"
    )
    parser.add_argument("--extractors", nargs="+", choices=list(AUTHORS_MODEL), default=list(AUTHORS_MODEL))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side (after three warm-up steps)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each side")
    parser.add_argument("--tf-worker", nargs=2, metavar=("ENCODER", "BLOCK"), help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_worker:
        tf_worker(args.authors, *args.tf_worker, length=args.length, threads=args.threads)
        return
    if args.tf_python is None or not (args.authors / "training" / "solver.py").is_file():
        parser.error("--tf-python is required, and --authors must hold the authors' training/solver.py")
    compare(args)


if __name__ == "__main__":
    main()
