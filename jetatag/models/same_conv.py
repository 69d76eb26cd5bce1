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

    It is the sum over output positions of grad ⊗ the input window. With the input and the gradient zero-padded
    alike and their (B, H, W) positions flattened into one axis, the input that tap (i, j) reads lies a fixed
    number of rows from its output position, (i − kh // 2) · padded width + (j − kw // 2); so that tap's gradient
    is (C_out × N) @ (N × C_in) over two row ranges of the flat arrays, no copies beyond the padding.
    """
    c_out, c_in, kh, kw = weight.shape
    pad_rows, pad_cols = same_padding(weight)
    width = x.shape[3] + 2 * pad_cols
    flat_x, flat_grad = _zero_padded_rows(x, pad_rows, pad_cols), _zero_padded_rows(grad, pad_rows, pad_cols)
    reach = pad_rows * width + pad_cols  # the farthest, in flat rows, that a tap reads from its output position
    n = flat_grad.shape[0] - 2 * reach  # every output position lies in rows reach … reach + n (padding rows are 0)
    outputs_t = flat_grad[reach : reach + n].t()  # (C_out, N)
    starts = [reach + (i - pad_rows) * width + (j - pad_cols) for i in range(kh) for j in range(kw)]
    if c_in < STACKED_TAPS_BELOW:
        columns = torch.cat([flat_x[s : s + n] for s in starts], dim=1)  # (N, taps · C_in)
        return (outputs_t @ columns).view(c_out, kh, kw, c_in).permute(0, 3, 1, 2).contiguous()
    per_tap = flat_x.new_empty(len(starts), c_out, c_in)
    for tap, s in enumerate(starts):
        torch.mm(outputs_t, flat_x[s : s + n], out=per_tap[tap])  # (C_out, C_in)
    return per_tap.view(kh, kw, c_out, c_in).permute(2, 3, 0, 1).contiguous()


def _zero_padded_rows(x: torch.Tensor, pad_rows: int, pad_cols: int) -> torch.Tensor:
    """Channels-last (B, C, H, W) zero-padded by ``pad_rows`` rows and ``pad_cols`` columns each side, as
    (B · (H + 2·pad_rows) · (W + 2·pad_cols), C) rows.

    Written once, the map into the middle and zeros into the border only: ``F.pad`` fills the whole tensor first
    (16 × 128 × 128 × 313: 55 against 35 ms).
    """
    batch, channels, height, width = x.shape
    padded = x.new_empty(batch, height + 2 * pad_rows, width + 2 * pad_cols, channels)
    padded[:, pad_rows : pad_rows + height, pad_cols : pad_cols + width] = x.permute(0, 2, 3, 1)
    padded[:, :pad_rows] = 0.0
    padded[:, pad_rows + height :] = 0.0
    padded[:, pad_rows : pad_rows + height, :pad_cols] = 0.0
    padded[:, pad_rows : pad_rows + height, pad_cols + width :] = 0.0
    return padded.view(-1, channels)
