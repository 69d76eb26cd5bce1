"""The 3×3 "same" Conv2d of Harmonic-CNN's blocks, with a cheaper backward when training on CPU.

Two things in oneDNN's CPU convolution backward cost more than they need to on these maps (measured on
2 cores, width 1.0, batch 16; see ``benchmarks/train_step.py``):

* the bias gradient: oneDNN's costs about as much as a weight gradient (26 ms for the first block's
  16 × 128 × 128 × 313 output), where a plain sum over batch, frequency and time takes 10 ms;
* the weight gradient over tall maps: per row it runs faster on bands of a few rows. The weight gradient
  is a sum over output positions, so it can be taken over the map cut into bands of ``BAND_ROWS`` output
  rows, each with the input row above and below it (its halo), viewed as a larger batch.

At width 1.0 they took 2-7 % off a Harmonic-CNN training step on an idle 2-core machine (1,236-1,312 →
1,210-1,219 ms, alternating in one process) and 15 % with another training job sharing the cores (1.52 →
1.30 s). With the demo's 16-64 channels the plain conv was as fast or faster, so narrower convs keep it.
Forward and input gradient are the plain convolution's; the gradients equal ``nn.Conv2d``'s to float rounding.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CHEAP_BACKWARD_FROM = 128
"""Output channels from which the cheap backward pays; narrower convs (the demo's) ran faster plain."""
BAND_ROWS = 4
"""Output rows per band of the banded weight gradient (2-8 ran about equally fast; 4 is the middle)."""
BANDED_FROM_ROWS = 64
"""Maps at least this tall take the banded weight gradient; on shorter ones it saved nothing."""


class Conv3x3(nn.Conv2d):
    """Conv2d, kernel 3×3, stride 1, padding 1; same parameters and state dict as :class:`torch.nn.Conv2d`.

    Training on CPU in float32 with channels-last input, the backward runs through :class:`CheapBackwardConv3x3`
    (under autocast the plain conv runs, in oneDNN's bf16 kernels).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, F, T)
        if not self._cheap_backward_pays(x):
            return super().forward(x)
        rows = x.shape[2]
        band_rows = BAND_ROWS if rows >= BANDED_FROM_ROWS and rows % BAND_ROWS == 0 else 0
        return CheapBackwardConv3x3.apply(x, self.weight, self.bias, band_rows)  # (B, C_out, F, T)

    def _cheap_backward_pays(self, x: torch.Tensor) -> bool:
        """Whether this call is a float32 CPU training step on channels-last input with many channels (else: plain)."""
        return (
            x.device.type == "cpu"
            and torch.is_grad_enabled()
            and not torch.is_autocast_enabled(x.device.type)
            and self.weight.requires_grad
            and x.is_contiguous(memory_format=torch.channels_last)
            and self.out_channels >= CHEAP_BACKWARD_FROM
        )


class CheapBackwardConv3x3(torch.autograd.Function):
    """3×3 "same" conv whose bias gradient is a sum and whose weight gradient may be taken band by band."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, band_rows: int
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.band_rows = band_rows
        return F.conv2d(x, weight, bias, padding=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)  # (B, C_out, F, T)
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        grad_x = _conv_backward(grad, x, weight, padding=(1, 1), mask=(True, False))[0] if needs_x else None
        grad_w = None
        if needs_w and ctx.band_rows:  # bands with their halos hold every product: no padding across rows
            bands, halo_bands = _bands(grad, ctx.band_rows), _halo_bands(x, ctx.band_rows)
            grad_w = _conv_backward(bands, halo_bands, weight, padding=(0, 1))[1]
        elif needs_w:
            grad_w = _conv_backward(grad, x, weight, padding=(1, 1))[1]
        grad_b = grad.sum(dim=(0, 2, 3)) if needs_b else None  # (C_out,)
        return grad_x, grad_w, grad_b, None


def _conv_backward(
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


def _bands(x: torch.Tensor, rows: int) -> torch.Tensor:
    """(B, C, F, T) channels-last as (B·F/rows, C, rows, T): consecutive bands of ``rows`` rows, a view."""
    batch, channels, height, width = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch * height // rows, rows, width, channels).permute(0, 3, 1, 2)


def _halo_bands(x: torch.Tensor, rows: int) -> torch.Tensor:
    """(B, C, F, T) as (B·F/rows, C, rows + 2, T) channels-last: each band with a row either side (zeros at edges).

    Written in one pass into the band tensor: padding the map first, then cutting its bands, wrote the map three
    times (16 × 128 × 64 × 156: 22 against 10 ms).
    """
    batch, channels, height, width = x.shape
    n_bands = height // rows
    source = x.permute(0, 2, 3, 1).reshape(batch, n_bands, rows, width, channels)  # a view of channels-last x
    bands = x.new_empty(batch, n_bands, rows + 2, width, channels)
    bands[:, :, 1:-1] = source
    bands[:, 1:, 0] = source[:, :-1, -1]  # the row above each band: the previous band's last
    bands[:, :-1, -1] = source[:, 1:, 0]  # the row below: the next band's first
    bands[:, 0, 0] = 0.0
    bands[:, -1, -1] = 0.0
    return bands.reshape(batch * n_bands, rows + 2, width, channels).permute(0, 3, 1, 2)
