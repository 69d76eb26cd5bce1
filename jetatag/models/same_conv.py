"""Stride-1 "same" convs (odd kernel, zero padding k // 2) whose backward takes the weight gradient its caller picks.

Of a conv's three products, the weight gradient's speed differs most between CPUs and shapes, so :class:`WeightGradConv`
keeps oneDNN's forward and input gradient, sums the bias gradient, and leaves the weight gradient to a function.

:func:`tap_weight_grad` is the one for CPUs without AVX-512. There oneDNN's weight-gradient kernels ran at 7-66
GFLOP/s where its forward and input gradient ran at 110-145 and MKL's matmul at about 100 (2-core AMD EPYC guest,
AVX2, batch 16, paper width): for Harmonic-CNN's 16 × 128 × 64 × 156 maps, 128 → 128 channels, 1,596 ms whole or
945 banded (:mod:`jetatag.models.conv3x3`) against 444-805 ms here; for Sample-CNN's 729-sample rows, 256 → 256
channels, 128 against 43 ms. Whole training steps in lockstep against the oneDNN paths: Harmonic-CNN 6,084 → 4,952
ms (1.23×), Sample-CNN 2,482 → 1,842 (1.35×). On an AVX-512 Xeon oneDNN's kernels had run the convs at 75-80 % of
the best float32 rate, so there the callers keep them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

WeightGrad = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(output gradient, input, weight) → the weight's gradient, for a :class:`WeightGradConv`'s backward."""

TAP_GEMM_CPU = torch.backends.cpu.get_cpu_capability() != "AVX512"
"""Whether this CPU lacks AVX-512, where :func:`tap_weight_grad` beat oneDNN's weight gradient."""
TAP_GEMM_FROM_CHANNELS = 128
"""Output channels from which convs take :func:`tap_weight_grad` (the paper's widths). With every conv taking it,
the demo's steps (16-64 channels) ran slower: 0.68× (Harmonic-CNN) to 0.94× as fast (AVX2, 2 cores, lockstep)."""
STACKED_TAPS_BELOW = 32
"""Input channels below which the taps' matmuls are one, over their columns side by side: a matmul only
C_in wide (Harmonic-CNN's first block, 6 harmonics) runs far below the rate of one taps × C_in wide."""


def takes_tap_gemm(out_channels: int) -> bool:
    """Whether a conv with ``out_channels`` outputs takes matmuls for its weight gradient on this CPU."""
    return TAP_GEMM_CPU and out_channels >= TAP_GEMM_FROM_CHANNELS


class WeightGradConv(torch.autograd.Function):
    """conv2d(x, weight, bias, padding=(kh // 2, kw // 2)), stride 1, on channels-last (B, C, H, W) maps.

    Backward: oneDNN's input gradient, the bias gradient as a sum, the weight gradient from ``weight_grad``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, weight_grad: WeightGrad
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.weight_grad = weight_grad
        return F.conv2d(x, weight, bias, padding=same_padding(weight))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)  # (B, C_out, H, W)
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        padding = same_padding(weight)
        grad_x = conv_backward(grad, x, weight, padding=padding, mask=(True, False))[0] if needs_x else None
        grad_w = ctx.weight_grad(grad, x, weight) if needs_w else None
        grad_b = grad.sum(dim=(0, 2, 3)) if needs_b else None  # (C_out,)
        return grad_x, grad_w, grad_b, None


def same_padding(weight: torch.Tensor) -> tuple[int, int]:
    """The zero padding that keeps a stride-1 conv's output the size of its input: (kh // 2, kw // 2)."""
    return weight.shape[2] // 2, weight.shape[3] // 2


def conv_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    padding: tuple[int, int],
    mask: tuple[bool, bool] = (False, True),
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """oneDNN's (input, weight) gradients of a stride-1 conv where ``mask`` asks; never the bias gradient."""
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, [1, 1], list(padding), [1, 1], False, [0, 0], 1, [*mask, False]
    )


def onednn_weight_grad(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """oneDNN's weight gradient of the "same" conv over the whole maps."""
    return conv_backward(grad, x, weight, padding=same_padding(weight))[1]


def tap_weight_grad(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The weight gradient (C_out, C_in, kh, kw) of the "same" conv, one matmul per kernel tap.

    It is the sum over output positions of grad ⊗ the input window. With channels-last (B, H, W) positions as the
    rows of one flat array, the input that tap (i, j) reads lies a fixed number of rows from its output position,
    (i − kh // 2) · W + (j − kw // 2); so that tap's gradient is (C_out × N) @ (N × C_in) over two row ranges of
    the flat arrays, views of the maps. One range for every tap, the rows whose tap rows all lie in the arrays,
    leaves out a few positions at the ends and pairs those whose tap reaches over a row's or map's edge (the conv's
    zero padding) with the neighbouring row's samples: :func:`_edge_fixes` adds the first back and takes the second
    out. Zero-padded copies of both maps, the earlier way, took 119 ms of a 3.9 s paper-width Harmonic-CNN step
    on a 2-core AMD EPYC guest; the fixes' gathers take 28.
    """
    c_out, c_in, kh, kw = weight.shape
    batch, _, height, width = x.shape
    flat_x, flat_grad = _rows(x), _rows(grad)  # (N, C_in), (N, C_out)
    pad_rows, pad_cols = same_padding(weight)
    offsets = [(i - pad_rows) * width + (j - pad_cols) for i in range(kh) for j in range(kw)]
    reach = pad_rows * width + pad_cols  # the farthest, in rows, that a tap reads from its output position
    n = max(flat_grad.shape[0] - 2 * reach, 0)  # the output rows reach … reach + n read tap rows inside the arrays
    outputs = flat_grad[reach : reach + n]
    if c_in < STACKED_TAPS_BELOW:
        columns = torch.cat([flat_x[reach + o : reach + o + n] for o in offsets], dim=1)  # (N', taps · C_in)
        per_tap = summed_products(outputs, columns).view(c_out, kh * kw, c_in).transpose(0, 1)
    else:
        per_tap = torch.stack([summed_products(outputs, flat_x[reach + o : reach + o + n]) for o in offsets])
    for tap, (rows, signs) in enumerate(_edge_fixes(batch, height, width, kh, kw)):
        if len(rows):  # (C_out × k) @ (k × C_in) over the k fixed positions
            per_tap[tap] += flat_grad[rows].t() @ (flat_x[rows + offsets[tap]] * signs.to(x.dtype)[:, None])
    return per_tap.reshape(kh, kw, c_out, c_in).permute(2, 3, 0, 1).contiguous()


TAP_CHUNK_ROWS = 8192
"""Rows per chunk of :func:`summed_products` on long products; at least :data:`TAP_MIN_CHUNKS` chunks."""
TAP_MIN_CHUNKS = 4
"""Chunks of :func:`summed_products` on products of at least :data:`TAP_CHUNK_ROWS` rows."""


def summed_products(left: torch.Tensor, right: torch.Tensor, *, chunks: int | None = None) -> torch.Tensor:
    """left^T @ right, (N, a) and (N, b) → (a, b), as a batched matmul over ``chunks`` chunks of rows summed, plus
    the rest; by default at least :data:`TAP_MIN_CHUNKS` of about :data:`TAP_CHUNK_ROWS` rows on long products.

    MKL runs these tall reductions (N up to 655,360 rows, a and b 54-256) faster cut into chunks, each thread
    taking whole chunks (2-core AMD EPYC guest, alternating: 99-126 → 116-143 GFLOP/s over Sample-CNN's and
    Harmonic-CNN's paper-width shapes).
    """
    n = left.shape[0]
    if chunks is None:
        chunks = max(TAP_MIN_CHUNKS, n // TAP_CHUNK_ROWS) if n >= TAP_CHUNK_ROWS else 1
    rows = n // chunks
    used = chunks * rows
    left_chunks = left[:used].reshape(chunks, rows, left.shape[1]).transpose(1, 2)  # (chunks, a, rows)
    product = torch.bmm(left_chunks, right[:used].reshape(chunks, rows, right.shape[1])).sum(dim=0)  # (a, b)
    if used < n:
        product.addmm_(left[used:].t(), right[used:])
    return product


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) as (B·H·W, C) rows: a view of channels-last maps, a copy of others."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


@functools.lru_cache(maxsize=64)
def _edge_fixes(batch: int, height: int, width: int, kh: int, kw: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per kernel tap of :func:`tap_weight_grad`: the output positions (flat rows) whose product its one row range
    gets wrong, with +1 for those it leaves out and reads inside the map, −1 for those it takes in and reads
    across an edge (into the conv's zero padding)."""
    pad_rows, pad_cols = kh // 2, kw // 2
    n_rows = batch * height * width
    reach = pad_rows * width + pad_cols
    position = torch.arange(n_rows)
    row, column = (position // width) % height, position % width
    in_range = (position >= reach) & (position < n_rows - reach)
    fixes = []
    for i in range(kh):
        for j in range(kw):
            tap_row, tap_column = row + i - pad_rows, column + j - pad_cols
            inside = (tap_row >= 0) & (tap_row < height) & (tap_column >= 0) & (tap_column < width)
            wrong = inside != in_range
            fixes.append((position[wrong], torch.where(inside[wrong], 1.0, -1.0)))
    return fixes
