"""Milliseconds for the fused BatchNorm → (+ skip) → (max-pool) → ReLU against the same layers as torch ops.

Times forward + backward (gradients for the map, γ, β and the skip) of the conv-block tails at paper
width, batch 16, on CPU in float32, alternating the two in one process (median of ``--repeats``):

* Harmonic-CNN's first block, BN → MaxPool (2, 2) → ReLU on 16 × 128 × 128 × 313;
* its second (residual) block's tail, BN + skip → MaxPool (2, 2) → ReLU on 16 × 128 × 64 × 156;
* Sample-CNN's first block, BN → MaxPool 3 → ReLU on 16 × 128 × 1 × 19,683;
* Sample-CNN +Res's first BN → ReLU → Dropout 0.2, and +SE's BN → ReLU → (MaxPool 3, the gate's squeeze);
* Sample-CNN +Res+SE's first block tail, BN → SE gate + skip → MaxPool 3 → ReLU (gradients for the gate too).

    python benchmarks/bn_relu.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from jetatag.runtime import configure_process

configure_process()  # as the `jetatag` training commands do, before torch loads

import torch  # noqa: E402
from torch import nn  # noqa: E402

from jetatag.models import bn_relu  # noqa: E402
from jetatag.models.common import MaxPool2dSafe, WaveDropout  # noqa: E402
from jetatag.models.samplecnn import SEGate  # noqa: E402

CASES = {  # name: ((B, C, F, T), pool window or None, with skip, tail kind)
    "hcnn block 1": ((16, 128, 128, 313), (2, 2), False, "pool"),
    "hcnn block 2 (residual)": ((16, 128, 64, 156), (2, 2), True, "pool"),
    "samplecnn block 1": ((16, 128, 1, 19683), (1, 3), False, "pool"),
    "samplecnn +Res bn1 + dropout": ((16, 128, 1, 19683), None, False, "dropout"),
    "samplecnn +SE block 1 (squeeze)": ((16, 128, 1, 19683), (1, 3), False, "squeeze"),
    "samplecnn +Res+SE block 1 (gate + skip)": ((16, 128, 1, 19683), (1, 3), True, "gate"),
}


def tail(kind: str, fused: bool, se: SEGate | None) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The block tail of ``kind``, fused or as torch's layers (the fused op with its fast path switched off);
    the "gate" tail runs the SE gate ``se``."""

    def run(
        x: torch.Tensor, bn: nn.BatchNorm2d, pool: MaxPool2dSafe | None, skip: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        fusable = bn_relu._fusable
        if not fused:
            bn_relu._fusable = lambda *args: False
        try:
            if kind == "squeeze":
                return bn_relu.batch_norm_relu_squeeze(x, bn, pool)
            if kind == "gate":
                return (bn_relu.batch_norm_gate_relu(x, bn, se, pool=pool, skip=skip),)
            dropout = WaveDropout(0.2) if kind == "dropout" else None
            return (bn_relu.batch_norm_relu(x, bn, pool=pool, skip=skip, dropout=dropout),)
        finally:
            bn_relu._fusable = fusable

    return run


def step_ms(
    run: Callable[..., tuple[torch.Tensor, ...]],
    x: torch.Tensor,
    bn: nn.BatchNorm2d,
    pool: MaxPool2dSafe | None,
    skip: torch.Tensor | None,
    inputs: list[torch.Tensor],
) -> float:
    """One forward + backward of ``run`` (gradients for ``inputs``), in ms."""
    start = time.perf_counter()
    outputs = run(x, bn, pool, skip)
    torch.autograd.grad(outputs, inputs, [torch.ones_like(out) for out in outputs])
    return 1000 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="alternating timings of each (after one warm-up)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; forward + backward, median ms")
    print("| block tail | shape | torch layers | fused | speed-up |")
    print("|---|---|---|---|---|")
    for name, (shape, window, with_skip, kind) in CASES.items():
        torch.manual_seed(0)
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
        skip = torch.randn_like(x).requires_grad_() if with_skip else None
        bn, pool = nn.BatchNorm2d(shape[1]), MaxPool2dSafe(window) if window else None
        se = SEGate(shape[1]) if kind == "gate" else None
        inputs = [x, bn.weight, bn.bias, *([skip] if skip is not None else []), *(se.parameters() if se else [])]
        times: dict[bool, list[float]] = {True: [], False: []}
        for repeat in range(args.repeats + 1):
            for fused in (repeat % 2 == 0, repeat % 2 == 1):  # the order swaps every round
                ms = step_ms(tail(kind, fused, se), x, bn, pool, skip, inputs)
                if repeat:
                    times[fused].append(ms)
        plain, fused = statistics.median(times[False]), statistics.median(times[True])
        dims = " × ".join(map(str, shape))
        print(f"| {name} | {dims} | {plain:.1f} | {fused:.1f} | {plain / fused:.2f}x |")


if __name__ == "__main__":
    main()
