"""The fastest a float32 training step could run on this CPU: its convs' FLOPs at the best rate measured here.

A no-JE training step (extractor + classifier, BCE, Adam; batch 16, paper width) runs each convolution
forward, for its weight gradient and, unless its input needs none (the waveform), for its input gradient.
No float32 implementation of those same convolutions can take less than their FLOPs over the CPU's
float32 throughput, whatever it does to the rest of the step. This script counts the FLOPs with forward
hooks on every ``nn.Conv1d``/``nn.Conv2d`` (Music-SincNet's FFT sinc front end is not one: its bound covers
the body only), takes the throughput as the best rate of a 2,048² matmul and of the extractor's own largest
convolution (best of ``--repeats`` runs each), and prints that bound beside the measured step. With
``--against REV`` the steps are timed in lockstep with revision REV's (as ``train_step.py --against``), and
the last column is the largest speed-up over REV the bound leaves.

    python benchmarks/conv_bound.py --extractors hcnn samplecnn_res --against e43ee53
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jetatag.runtime import configure_process

if __name__ == "__main__":  # before torch loads, as `jetatag` commands run: OpenMP reads its waiting settings then
    configure_process()

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import N_TAGS, PAPER_MODEL, against, no_je_step, time_steps  # noqa: E402  (a sibling script)

from jetatag.config import EXTRACTOR_IDS  # noqa: E402
from jetatag.models.tagger import build_tagger  # noqa: E402

SAMPLE_RATE = 16000


@dataclass
class ConvCount:
    """The FLOPs of one training step's convolutions, and the largest convolution's module and input."""

    flops: float = 0.0
    largest_flops: float = 0.0
    largest: tuple[nn.Module, torch.Size] | None = None


def count_conv_flops(extractor: str, *, batch: int) -> ConvCount:
    """Multiply-adds × 2 of every conv in one no-JE training step: forward, weight gradient, input gradient."""
    torch.manual_seed(0)
    tagger = build_tagger(extractor, PAPER_MODEL, n_tags=N_TAGS, sample_rate=SAMPLE_RATE).train()
    count = ConvCount()

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        forward = 2.0 * output.numel() * module.weight[0].numel()  # each output: C_in/groups × kernel products
        passes = 1 + module.weight.requires_grad + inputs[0].requires_grad
        count.flops += forward * passes
        if forward > count.largest_flops:
            count.largest_flops, count.largest = forward, (module, inputs[0].shape)

    handles = [m.register_forward_hook(hook) for m in tagger.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    wave = torch.rand(batch, PAPER_MODEL.crop_samples(extractor)) * 2 - 1  # (B, L)
    tagger(wave)
    for handle in handles:
        handle.remove()
    return count


def best_rate(run: Callable[[], object], flops: float, repeats: int) -> float:
    """The highest GFLOP/s ``run`` reached over ``repeats`` timed runs (after one untimed)."""
    run()
    fastest = min(_seconds(run) for _ in range(repeats))
    return flops / fastest / 1e9


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def peak_rate(count: ConvCount, repeats: int) -> float:
    """This CPU's float32 rate: the best of a 2,048² matmul and of the largest conv alone, forward (GFLOP/s)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    rates = [best_rate(lambda: a @ b, 2.0 * 2048**3, repeats)]
    if count.largest is not None:
        module, shape = count.largest
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            rates.append(best_rate(lambda: module(x), count.largest_flops, repeats))
    return max(rates)


def step_ms(extractor: str, *, batch: int, threads: int, steps: int) -> float:
    """Median ms of ``steps`` no-JE training steps of this tree (after two untimed)."""
    step = no_je_step(extractor, PAPER_MODEL, batch=batch, threads=threads, seed=0)
    step()  # and time_steps runs one more untimed
    return time_steps(step, steps, torch.device("cpu"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extractors", nargs="+", choices=EXTRACTOR_IDS, default=list(EXTRACTOR_IDS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per extractor")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each rate measurement")
    parser.add_argument("--against", metavar="REV", help="time the steps in lockstep with git revision REV's")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    lockstep = {}
    if args.against:
        rows = against(argparse.Namespace(**vars(args), sizes=["paper"], seed=0), {"paper": PAPER_MODEL})
        lockstep = {row["extractor"]: row for row in rows}
        print()
    columns = ["extractor", "conv GFLOP/step", "best rate GFLOP/s", "conv bound ms", "step ms", "bound / step"]
    if args.against:
        columns += [f"step ms at {args.against}", "speed-up", "ceiling (bound)"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for extractor in args.extractors:
        count = count_conv_flops(extractor, batch=args.batch)
        rate = peak_rate(count, args.repeats)
        bound = count.flops / rate / 1e6  # ms
        now = (
            lockstep[extractor]["now_ms"]
            if lockstep
            else step_ms(extractor, batch=args.batch, threads=args.threads, steps=args.steps)
        )
        cells = [
            extractor,
            f"{count.flops / 1e9:.0f}",
            f"{rate:.0f}",
            f"{bound:.0f}",
            f"{now:.0f}",
            f"{bound / now:.2f}",
        ]
        if lockstep:
            before = lockstep[extractor]["before_ms"]
            cells += [f"{before:.0f}", f"{before / now:.2f}x", f"{before / bound:.2f}x"]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"batch {args.batch}, width {PAPER_MODEL.width:g}, {args.threads} threads, float32")


if __name__ == "__main__":
    main()
