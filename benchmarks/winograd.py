"""Milliseconds per forward + backward of Harmonic-CNN's 3×3 convs: direct (oneDNN) against Winograd F(4×4, 3×3).

Times one training pass (forward, then input, weight and bias gradients) of each paper-width conv shape of
Harmonic-CNN's blocks, batch 16, channels-last, float32: the direct path the trainers took before Winograd
(oneDNN's forward and input gradient, the weight gradient :func:`jetatag.models.conv3x3.weight_grad_method` picks
for this CPU) against :class:`jetatag.models.winograd.WinogradConv3x3`, alternating round by round. Prints the
median ms of each, direct over Winograd, and the largest difference of Winograd's output and gradients from the
direct ones, relative to each one's largest entry. Trainers take Winograd from
:data:`jetatag.models.conv3x3.WINOGRAD_FROM_CHANNELS` input channels on maps of
:data:`~jetatag.models.conv3x3.WINOGRAD_FROM_ROWS` rows or more (every shape here is timed both ways).

    python benchmarks/winograd.py --rounds 5
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from jetatag.runtime import configure_process

if __name__ == "__main__":  # before torch loads, as `jetatag` commands run: allocator and OpenMP settings
    configure_process()

import torch  # noqa: E402
from weight_grad import per_shape_options  # noqa: E402  (benchmarks/, this script's folder)

from jetatag.models.conv3x3 import WINOGRAD_FROM_CHANNELS, WINOGRAD_FROM_ROWS, weight_grad_method  # noqa: E402
from jetatag.models.same_conv import WeightGradConv  # noqa: E402
from jetatag.models.winograd import WinogradConv3x3  # noqa: E402

SHAPES = (  # (C_in, C_out, H, W): Harmonic-CNN's 3×3 convs at paper width, one clip of 80,000 samples
    (6, 128, 128, 313),  # block 1
    (128, 128, 64, 156),  # block 2 (two convs)
    (128, 128, 32, 78),  # block 3 (two)
    (128, 256, 16, 39),  # block 4
    (256, 256, 8, 19),  # block 5 (two)
    (256, 256, 4, 9),  # block 6 (two)
    (256, 512, 2, 3),  # block 7
)
Conv = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def direct(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The direct conv with the cheap backward of :class:`jetatag.models.conv3x3.Conv3x3` on this CPU."""
    return WeightGradConv.apply(x, weight, bias, weight_grad_method(x.shape[2]))


def winograd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The same conv by Winograd F(4×4, 3×3)."""
    return WinogradConv3x3.apply(x, weight, bias)


def training_pass(conv: Conv, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor):
    """Forward, then the input, weight and bias gradients: (output, grad x, grad weight, grad bias)."""
    out = conv(x, weight, bias)
    return (out, *torch.autograd.grad(out, (x, weight, bias), grad))


def time_shape(shape: tuple[int, int, int, int], *, batch: int, rounds: int) -> dict[str, float]:
    """Median ms of each path on one shape over ``rounds`` alternating rounds (after one untimed each), and
    Winograd's largest relative difference from the direct path over output and gradients."""
    c_in, c_out, height, width = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c_in, height, width, generator=generator).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(batch, c_out, height, width, generator=generator).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_out, c_in, 3, 3, generator=generator) * (2 / (9 * c_in)) ** 0.5
    bias = torch.randn(c_out, generator=generator)
    x.requires_grad_()
    weight.requires_grad_()
    bias.requires_grad_()
    paths = {"direct": direct, "winograd": winograd}
    results = {name: training_pass(conv, x, weight, bias, grad) for name, conv in paths.items()}
    error = max(
        ((w - d).abs().max() / d.abs().max()).item()
        for w, d in zip(results["winograd"], results["direct"], strict=True)
    )
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(rounds):
        for name in list(paths) if round_ % 2 == 0 else list(paths)[::-1]:
            start = time.perf_counter()
            training_pass(paths[name], x, weight, bias, grad)
            times[name].append(1e3 * (time.perf_counter() - start))
    direct_ms, winograd_ms = (statistics.median(times[name]) for name in paths)
    return {"direct_ms": direct_ms, "winograd_ms": winograd_ms, "speedup": direct_ms / winograd_ms, "error": error}


def main() -> None:
    args = per_shape_options(__doc__)
    print(
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; batch {args.batch}; trainers take Winograd "
        f"from {WINOGRAD_FROM_CHANNELS} input channels on maps of {WINOGRAD_FROM_ROWS} rows or more"
    )
    print("| C_in → C_out | map | direct ms | Winograd ms | direct / Winograd | max rel. diff |")
    print("|---|---|---|---|---|---|")
    for shape in SHAPES:
        row = time_shape(shape, batch=args.batch, rounds=args.rounds)
        c_in, c_out, height, width = shape
        print(
            f"| {c_in} → {c_out} | {height} × {width} | {row['direct_ms']:.1f} | {row['winograd_ms']:.1f} "
            f"| {row['speedup']:.2f} | {row['error']:.1e} |",
            flush=True,
        )
    print(f"median of {args.rounds} alternating rounds of forward + backward; {args.threads} threads, float32")


if __name__ == "__main__":
    main()
