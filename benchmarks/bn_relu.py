"""Milliseconds for the fused BatchNorm → (+ skip) → (max-pool) → ReLU against the same layers as torch ops.

Times forward + backward (gradients for the map, γ, β and the skip) of the conv-block tails at paper
width, batch 16, on CPU in float32, alternating the two in one process (median of ``--repeats``):

* Harmonic-CNN's first block, BN → MaxPool (2, 2) → ReLU on 16 × 128 × 128 × 313;
* its second (residual) block's tail, BN + skip → MaxPool (2, 2) → ReLU on 16 × 128 × 64 × 156;
* Sample-CNN's first block, BN → MaxPool 3 → ReLU on 16 × 128 × 1 × 19,683;
* Sample-CNN +Res's first BN → ReLU → Dropout 0.2, and +SE's BN → ReLU → (MaxPool 3, the gate's squeeze);
* Sample-CNN +Res+SE's first block tail, BN → SE gate + skip → MaxPool 3 → ReLU (gradients for the gate too).

    python benchmarks/bn_relu.py --repeats 7

``--accuracy`` instead prints, per extractor at width 0.25 with every tail fused (batch 4), how far the
training gradients of torch's layers and of the fused tails lie from a float64 run's.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from jetatag.runtime import configure_process

configure_process()  # as the `jetatag` training commands do, before torch loads

import torch  # noqa: E402
from torch import nn  # noqa: E402

from jetatag.config import EXTRACTOR_IDS, ModelParams  # noqa: E402
from jetatag.models import bn_relu, build_extractor  # noqa: E402
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


@contextmanager
def fused_tails(fused: bool, *, from_channels: int | None = None) -> Iterator[None]:
    """Inside the block the fused op's fast path is on (from ``from_channels`` channels, if given) or off."""
    fusable, floor = bn_relu._fusable, bn_relu.FUSED_FROM_CHANNELS
    if not fused:
        bn_relu._fusable = lambda *args: False
    if from_channels is not None:
        bn_relu.FUSED_FROM_CHANNELS = from_channels
    try:
        yield
    finally:
        bn_relu._fusable, bn_relu.FUSED_FROM_CHANNELS = fusable, floor


def tail(kind: str, fused: bool, se: SEGate | None) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The block tail of ``kind``, fused or as torch's layers (the fused op with its fast path switched off);
    the "gate" tail runs the SE gate ``se``."""

    def run(
        x: torch.Tensor, bn: nn.BatchNorm2d, pool: MaxPool2dSafe | None, skip: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        with fused_tails(fused):
            if kind == "squeeze":
                return bn_relu.batch_norm_relu_squeeze(x, bn, pool)
            if kind == "gate":
                return (bn_relu.batch_norm_gate_relu(x, bn, se, pool=pool, skip=skip),)
            dropout = WaveDropout(0.2) if kind == "dropout" else None
            return (bn_relu.batch_norm_relu(x, bn, pool=pool, skip=skip, dropout=dropout),)

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


def gradient_error(model: nn.Module, reference: nn.Module) -> float:
    """Gradient error of ``model`` against ``reference`` (float64), as a norm over the parameters that learn.

    Conv biases followed by BatchNorm are left out: their true gradient is 0 and both paths give rounding noise.
    """
    squared_error, squared_norm = 0.0, 0.0
    for (name, param), exact in zip(model.named_parameters(), reference.parameters(), strict=True):
        if name.endswith(("conv.bias", "conv1.bias", "conv2.bias")) or name == "head.dense.bias":
            continue
        squared_error += (param.grad.double() - exact.grad).square().sum().item()
        squared_norm += exact.grad.square().sum().item()
    return (squared_error / squared_norm) ** 0.5


def training_gradient_errors(name: str, *, width: float, batch: int) -> tuple[float, float]:
    """(torch's layers, fused tails): the gradient errors of one training step of extractor ``name`` against
    float64, every tail fused however narrow; the same weights, input and dropout masks for all three."""
    torch.manual_seed(0)
    fused = build_extractor(name, ModelParams(width=width), sample_rate=16000)
    plain, exact = copy.deepcopy(fused), copy.deepcopy(fused).double()
    rng = np.random.default_rng(0)
    wave = torch.from_numpy(rng.standard_normal((batch, 80000 if name == "hcnn" else 3**10), dtype=np.float32))
    for model, inputs, fuses in ((fused, wave, True), (plain, wave, False), (exact, wave.double(), False)):
        with fused_tails(fuses, from_channels=1):
            torch.manual_seed(1)  # the same dropout masks in each run
            model(inputs).square().sum().backward()
    return gradient_error(plain, exact), gradient_error(fused, exact)


def accuracy() -> None:
    """Print each extractor's training-gradient errors against float64, torch's layers and the fused tails."""
    print("relative error of one training step's gradients against float64, width 0.25, batch 4")
    print("| extractor | torch layers | fused tails |")
    print("|---|---|---|")
    for name in EXTRACTOR_IDS:
        torch_error, fused_error = training_gradient_errors(name, width=0.25, batch=4)
        print(f"| {name} | {torch_error:.1e} | {fused_error:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="alternating timings of each (after one warm-up)")
    parser.add_argument("--accuracy", action="store_true", help="print the gradient errors against float64 instead")
    args = parser.parse_args()
    if args.accuracy:
        accuracy()
        return
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
