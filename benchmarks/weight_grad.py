"""Milliseconds per conv weight gradient at paper width: oneDNN's (whole maps, and banded) against one matmul per tap.

Times :func:`jetatag.models.same_conv.onednn_weight_grad`, :func:`jetatag.models.conv3x3.banded_weight_grad`
(Harmonic-CNN's maps tall enough for bands) and :func:`jetatag.models.same_conv.tap_weight_grad` on the "same"
convs of Harmonic-CNN's blocks and of Sample-CNN's rows, batch 16, the methods alternating round by round; prints
the median ms, GFLOP/s, each method's time over the tap matmuls', and the largest difference from oneDNN's result
relative to its largest entry. The trainers pick tap matmuls on CPUs without AVX-512 (``TAP_GEMM_CPU``).

    python benchmarks/weight_grad.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from jetatag.runtime import configure_process

if __name__ == "__main__":  # before torch loads, as `jetatag` commands run: allocator and OpenMP settings
    configure_process()

import torch  # noqa: E402

from jetatag.models.conv3x3 import BAND_ROWS, BANDED_FROM_ROWS, banded_weight_grad  # noqa: E402
from jetatag.models.same_conv import TAP_GEMM_CPU, onednn_weight_grad, tap_weight_grad  # noqa: E402

SHAPES = (  # (C_in, C_out, H, W, kernel height, kernel width): paper-width maps of one clip
    (6, 128, 128, 313, 3, 3),  # Harmonic-CNN block 1
    (128, 128, 64, 156, 3, 3),  # blocks 2 (two convs) ...
    (128, 128, 32, 78, 3, 3),
    (128, 256, 16, 39, 3, 3),
    (256, 256, 8, 19, 3, 3),
    (128, 128, 1, 19683, 1, 3),  # Sample-CNN block 1 ...
    (128, 256, 1, 2187, 1, 3),
    (256, 256, 1, 729, 1, 3),
)
Method = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def methods_for(height: int) -> dict[str, Method]:
    """The weight-gradient methods that apply to maps ``height`` rows tall."""
    methods: dict[str, Method] = {"oneDNN": onednn_weight_grad, "taps": tap_weight_grad}
    if height >= BANDED_FROM_ROWS and height % BAND_ROWS == 0:
        methods["oneDNN banded"] = banded_weight_grad
    return methods


def time_shape(shape: tuple[int, ...], *, batch: int, rounds: int) -> list[dict[str, float | str]]:
    """Median ms of each method on one shape over ``rounds`` alternating rounds (after one untimed), with results."""
    c_in, c_out, height, width, kh, kw = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c_in, height, width, generator=generator).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(batch, c_out, height, width, generator=generator).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_out, c_in, kh, kw, generator=generator)
    methods = methods_for(height)
    reference = onednn_weight_grad(grad, x, weight)
    scale = reference.abs().max().item()
    errors = {name: (run(grad, x, weight) - reference).abs().max().item() / scale for name, run in methods.items()}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for round_ in range(rounds):
        for name in list(methods) if round_ % 2 == 0 else list(methods)[::-1]:
            start = time.perf_counter()
            methods[name](grad, x, weight)
            times[name].append(1e3 * (time.perf_counter() - start))
    gflop = 2 * batch * height * width * c_in * c_out * kh * kw / 1e9
    taps_ms = statistics.median(times["taps"])
    return [
        {
            "method": name,
            "ms": statistics.median(t),
            "gflops": gflop / statistics.median(t) * 1e3,
            "over_taps": statistics.median(t) / taps_ms,
            "error": errors[name],
        }
        for name, t in times.items()
    ]


def per_shape_options(description: str) -> argparse.Namespace:
    """The command line of the per-shape conv benchmarks (this one and ``winograd.py``): batch, rounds and
    threads, the threads set for torch."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per shape (after one untimed)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def main() -> None:
    args = per_shape_options(__doc__)
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"CPU capability {capability} (trainers use tap matmuls: {TAP_GEMM_CPU}); batch {args.batch}")
    print("| C_in → C_out | map | kernel | method | ms | GFLOP/s | × taps' time | max rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        c_in, c_out, height, width, kh, kw = shape
        for row in time_shape(shape, batch=args.batch, rounds=args.rounds):
            print(
                f"| {c_in} → {c_out} | {height} × {width} | {kh}×{kw} | {row['method']} | {row['ms']:.0f} "
                f"| {row['gflops']:.0f} | {row['over_taps']:.2f} | {row['error']:.1e} |",
                flush=True,
            )
    print(f"median of {args.rounds} alternating rounds; {args.threads} threads, float32")


if __name__ == "__main__":
    main()
