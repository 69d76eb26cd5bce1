"""The 3×3 "same" Conv2d of Harmonic-CNN's blocks, with a cheaper backward when training on CPU.

Two things in oneDNN's CPU convolution backward cost more than they need to on these maps (measured on
2 cores of an AVX-512 Xeon, width 1.0, batch 16; see ``benchmarks/train_step.py``):

* the bias gradient: oneDNN's costs about as much as a weight gradient (26 ms for the first block's
  16 × 128 × 128 × 313 output), where a plain sum over batch, frequency and time takes 10 ms;
* the weight gradient over tall maps: per row it runs faster on bands of a few rows. The weight gradient
  is a sum over output positions, so it can be taken over the map cut into bands of ``BAND_ROWS`` output
  rows, each with the input row above and below it (its halo), viewed as a larger batch.

At width 1.0 they took 2-7 % off a Harmonic-CNN training step on an idle 2-core machine (1,236-1,312 →
1,210-1,219 ms, alternating in one process) and 15 % with another training job sharing the cores (1.52 →
1.30 s). With the demo's 16-64 channels the plain conv was as fast or faster, so narrower convs keep it.
On CPUs without AVX-512 oneDNN's weight gradient is slower still, bands or not, and one matmul per kernel
tap (:func:`jetatag.models.same_conv.tap_weight_grad`) takes its place. Forward and input gradient are the
plain convolution's; the gradients equal ``nn.Conv2d``'s to float rounding.

From 128 input channels, on maps of 8 rows or more, the whole training pass runs as Winograd F(4×4, 3×3)
instead (:mod:`jetatag.models.winograd`): a quarter of the multiplications for the forward and both gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from jetatag.models.same_conv import (
    TAP_GEMM_CPU,
    WeightGrad,
    WeightGradConv,
    conv_backward,
    onednn_weight_grad,
    tap_weight_grad,
)
from jetatag.models.winograd import WinogradConv3x3

CHEAP_BACKWARD_FROM = 128
"""Output channels from which the cheap backward pays; narrower convs (the demo's) ran faster plain."""
WINOGRAD_FROM_CHANNELS = 128
"""Input channels from which those convs run as Winograd F(4×4, 3×3) (:mod:`jetatag.models.winograd`) on maps
at least :data:`WINOGRAD_FROM_ROWS` tall; the first block's 6 harmonics are too few for its matmuls (0.26-0.37×)."""
WINOGRAD_FROM_ROWS = 8
"""Map rows from which Winograd pays: on blocks 6-7's 4 × 9 and 2 × 3 maps its 4 × 4 tiles are a third to
two thirds padding, and it ran at 0.38-0.93× (``benchmarks/winograd.py``)."""
BAND_ROWS = 4
"""Output rows per band of the banded weight gradient (2-8 ran about equally fast; 4 is the middle)."""
BANDED_FROM_ROWS = 64
"""Maps at least this tall take the banded weight gradient; on shorter ones it saved nothing."""


class Conv3x3(nn.Conv2d):
    """Conv2d, kernel 3×3, stride 1, padding 1; same parameters and state dict as :class:`torch.nn.Conv2d`.

    Training on CPU in float32 with channels-last input, wide convs over tall enough maps run as
    :class:`WinogradConv3x3`; the others' backward runs through :class:`WeightGradConv`, its bias gradient a sum and
    its weight gradient :func:`weight_grad_method`'s pick (under autocast the plain conv runs, in oneDNN's bf16
    kernels).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, F, T)
        if not self._cheap_backward_pays(x):
            return super().forward(x)
        if self.in_channels >= WINOGRAD_FROM_CHANNELS and x.shape[2] >= WINOGRAD_FROM_ROWS:
            return WinogradConv3x3.apply(x, self.weight, self.bias)  # (B, C_out, F, T)
        return WeightGradConv.apply(x, self.weight, self.bias, weight_grad_method(x.shape[2]))  # (B, C_out, F, T)

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


def weight_grad_method(rows: int) -> WeightGrad:
    """The weight gradient for maps ``rows`` tall: one matmul per tap without AVX-512, else oneDNN's, banded
    on tall maps that split into whole bands."""
    if TAP_GEMM_CPU:
        return tap_weight_grad
    return banded_weight_grad if rows >= BANDED_FROM_ROWS and rows % BAND_ROWS == 0 else onednn_weight_grad


def banded_weight_grad(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """oneDNN's weight gradient over the maps cut into bands of :data:`BAND_ROWS` output rows, each band with its
    halo (bands and halos hold every product, so there is no padding across rows)."""
    return conv_backward(_bands(grad, BAND_ROWS), _halo_bands(x, BAND_ROWS), weight, padding=(0, 1))[1]


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
