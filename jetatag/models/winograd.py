"""Winograd F(4×4, 3×3): a 3×3 "same" conv with a quarter of the multiplications, for CPU training steps.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016. The output is cut into 4×4 tiles;
each reads a 6×6 input tile. Input tiles and kernels are carried into a 6×6 transform domain (fixed matrices over
the points 0, ±1, ±2, ∞), where the conv becomes 36 independent matmuls, (tiles × C_in) @ (C_in × C_out), and the
products come back as the 4×4 output tiles. That is 36 multiply-adds per tile and channel pair against direct
convolution's 144, and the backward keeps the saving: the input gradient and the weight gradient are the same 36
matmuls transposed. The transforms (matmuls by the 1-D matrices' Kronecker squares) and the tile gathers are
the price: in a paper-width Harmonic-CNN step they took 0.54 s of matmuls and about 0.2 s of copies against the
36 matmuls' 0.91 s (``benchmarks/train_step.py --profile``).

Harmonic-CNN's convs at paper width (128-512 channels, batch 16) run at 180-225 GFLOP/s in oneDNN on 2 cores
of an AMD EPYC (Zen 4, AVX-512), near its float32 peak, so only fewer multiplications make them faster: forward
and backward of a 128 → 128 conv on 64 × 156 maps took 522 ms this way against 704 ms direct, on 16 × 39 and
8 × 19 maps 1.46-1.48× less (``benchmarks/winograd.py``). The results differ from direct convolution's by float32
rounding, about 1e-5 of each output's largest value.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

TILE = 4
"""Output rows and columns per tile."""
SPAN = TILE + 2
"""Input rows and columns a tile reads (the tile and the 3×3 kernel's reach either side)."""

_INPUT_1D = (  # B^T: input tile (6) → transform domain (6)
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_KERNEL_1D = (  # G: kernel (3) → transform domain (6)
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_OUTPUT_1D = (  # A^T: transform domain (6) → output tile (4)
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)


@functools.cache
def transforms(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 2-D transforms over row-major flattened tiles, Kronecker squares of the 1-D ones: input (36, 36),
    kernel (36, 9) and output (16, 36)."""
    return tuple(  # type: ignore[return-value]
        torch.kron(m, m).to(dtype=dtype, device=device)
        for m in (torch.tensor(t, dtype=torch.float64) for t in (_INPUT_1D, _KERNEL_1D, _OUTPUT_1D))
    )


class WinogradConv3x3(torch.autograd.Function):
    """conv2d(x, weight, bias, padding=1) for a 3×3 kernel on channels-last (B, C_in, H, W) maps, by F(4×4, 3×3).

    Saves the transformed input tiles for the weight gradient: 2.25× the input's size.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        batch, c_in, height, width = x.shape
        c_out = weight.shape[0]
        to_domain, kernel_to_domain, from_domain = transforms(x.dtype, x.device)
        tiles = (to_domain @ input_tiles(x)).view(SPAN * SPAN, -1, c_in)  # (36, N tiles, C_in)
        kernels = (kernel_to_domain @ weight.permute(2, 3, 1, 0).reshape(9, -1)).view(SPAN * SPAN, c_in, c_out)
        ctx.save_for_backward(tiles, kernels)
        ctx.map_shape = (batch, c_in, height, width)
        products = torch.bmm(tiles, kernels)  # (36, N, C_out)
        output_tiles = from_domain @ products.view(SPAN * SPAN, -1)  # (16, N · C_out)
        return untile(output_tiles, batch, height, width, c_out, bias)  # (B, C_out, H, W) channels-last

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        tiles, kernels = ctx.saved_tensors
        batch, c_in, height, width = ctx.map_shape
        c_out = kernels.shape[2]
        to_domain, kernel_to_domain, from_domain = transforms(grad.dtype, grad.device)
        grad = grad.contiguous(memory_format=torch.channels_last)  # (B, C_out, H, W)
        needs_x, needs_w, needs_b = ctx.needs_input_grad
        grad_products = (from_domain.t() @ output_grad_tiles(grad)).view(SPAN * SPAN, -1, c_out)  # (36, N, C_out)
        grad_x = grad_w = grad_b = None
        if needs_x:
            grad_tiles = torch.bmm(grad_products, kernels.transpose(1, 2))  # (36, N, C_in)
            grad_x = overlap_add(to_domain.t() @ grad_tiles.view(SPAN * SPAN, -1), batch, c_in, height, width)
        if needs_w:
            grad_kernels = torch.bmm(tiles.transpose(1, 2), grad_products)  # (36, C_in, C_out)
            grad_w = kernel_to_domain.t() @ grad_kernels.view(SPAN * SPAN, -1)  # (9, C_in · C_out)
            grad_w = grad_w.view(3, 3, c_in, c_out).permute(3, 2, 0, 1).contiguous()  # (C_out, C_in, 3, 3)
        if needs_b:
            grad_b = grad.sum(dim=(0, 2, 3))  # (C_out,)
        return grad_x, grad_w, grad_b


def tile_counts(height: int, width: int) -> tuple[int, int]:
    """Output tiles down and across maps of ``height`` × ``width`` (the last ones may reach past the edges)."""
    return -(-height // TILE), -(-width // TILE)


def input_tiles(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) channels-last → (36, N · C): each tile's 6 × 6 input window, zero-padded at the maps' edges,
    position-major so that each of the 36 positions is one (N tiles × C) matrix."""
    batch, channels, height, width = x.shape
    rows, cols = tile_counts(height, width)
    padded = F.pad(x, (1, TILE * cols + 1 - width, 1, TILE * rows + 1 - height))  # (B, C, 4·rows + 2, 4·cols + 2)
    padded = padded.permute(0, 2, 3, 1).contiguous()  # (B, H', W', C)
    s_batch, s_row, s_col, _ = padded.stride()
    windows = padded.as_strided(
        (SPAN, SPAN, batch, rows, cols, channels), (s_row, s_col, s_batch, TILE * s_row, TILE * s_col, 1)
    )
    return windows.reshape(SPAN * SPAN, -1)


def untile(
    output_tiles: torch.Tensor, batch: int, height: int, width: int, channels: int, bias: torch.Tensor | None
) -> torch.Tensor:
    """(16, N · C) output tiles → the (B, C, H, W) channels-last map, cut to H × W, plus ``bias``, in one pass."""
    rows, cols = tile_counts(height, width)
    tiled = output_tiles.view(TILE, TILE, batch, rows, cols, channels).permute(2, 3, 0, 4, 1, 5)  # (B, r, 4, c, 4, C)
    out = output_tiles.new_empty(batch, height, width, channels)
    if height == TILE * rows and width == TILE * cols:  # whole tiles: write them in place
        target, source = out.view(batch, rows, TILE, cols, TILE, channels), tiled
    else:
        target, source = out, tiled.reshape(batch, TILE * rows, TILE * cols, channels)[:, :height, :width]
    if bias is None:
        target.copy_(source)
    else:
        torch.add(source, bias, out=target)
    return out.permute(0, 3, 1, 2)


def output_grad_tiles(grad: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) channels-last gradient → (16, N · C): its 4 × 4 tiles, position-major, zeros past the edges."""
    batch, channels, height, width = grad.shape
    rows, cols = tile_counts(height, width)
    if height != TILE * rows or width != TILE * cols:
        grad = F.pad(grad, (0, TILE * cols - width, 0, TILE * rows - height))
    padded = grad.permute(0, 2, 3, 1)  # (B, 4·rows, 4·cols, C)
    tiled = padded.reshape(batch, rows, TILE, cols, TILE, channels).permute(2, 4, 0, 1, 3, 5)  # (4, 4, B, r, c, C)
    return tiled.reshape(TILE * TILE, -1)


def overlap_add(window_grads: torch.Tensor, batch: int, channels: int, height: int, width: int) -> torch.Tensor:
    """(36, N · C) gradients of the 6 × 6 input windows → the (B, C, H, W) channels-last input gradient.

    Neighbouring windows overlap by 2 rows or columns, so each window's last two rows are added to the next one's
    first two, and then the same across columns; the padding ring is dropped.
    """
    rows, cols = tile_counts(height, width)
    windows = window_grads.view(SPAN, SPAN, batch, rows, cols, channels)
    down = window_grads.new_zeros(TILE, SPAN, batch, rows + 1, cols, channels)  # rows folded: 4 per tile
    down[:, :, :, :rows] = windows[:TILE]
    down[: SPAN - TILE, :, :, 1:] += windows[TILE:]
    across = window_grads.new_zeros(TILE, TILE, batch, rows + 1, cols + 1, channels)  # and columns
    across[:, :, :, :, :cols] = down[:, :TILE]
    across[:, : SPAN - TILE, :, :, 1:] += down[:, TILE:]
    padded = across.permute(2, 3, 0, 4, 1, 5).reshape(batch, TILE * rows + TILE, TILE * cols + TILE, channels)
    inside = padded[:, 1 : height + 1, 1 : width + 1]  # (B, H, W, C): drop the zero-padding ring
    return inside.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
