"""BatchNorm → (+ skip) → (max-pool) → ReLU, the tail of every conv block, as one op when training on CPU.

Run as torch ops, each step of that tail reads and writes whole maps: BatchNorm's statistics and
normalisation, the pool with its int64 indices, the ReLU, an SE gate's squeeze, and backward the
zero-filled pool gradient, the ReLU mask, the sum of the pool's and the squeeze's gradients and
BatchNorm's two passes. On a 2-core CPU these memory-bound passes took a third of a Sample-CNN
training step at paper width. Fused, the forward reads the map twice (statistics, then normalise-pool-ReLU,
which keeps each window's argmax as one byte) and the backward reads the pooled gradient and the map once
each: forward + backward of Harmonic-CNN's first block tail took 118 instead of 354 ms, Sample-CNN's 66
instead of 148 (``benchmarks/bn_relu.py``). The statistics are summed in float64 where torch sums in
float32, so the results are closer to exact arithmetic than torch's own: on a random map the size of
Harmonic-CNN's first block (16 × 128 × 128 × 313), torch's BN → pool → ReLU lay up to 4e-4 from float64's
and this op's 7e-7.

The fused path runs for float32 channels-last maps of at least :data:`FUSED_FROM_CHANNELS` channels through a
training-mode BatchNorm on CPU outside autocast; anything else (CUDA, evaluation, bf16, the demo's narrow
maps) runs the same layers as torch ops. Parameters, buffers and their updates are
:class:`torch.nn.BatchNorm2d`'s.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jetatag.models import bn_kernels
from jetatag.models.common import MaxPool2dSafe, WaveDropout

FUSED_FROM_CHANNELS = 128
"""Maps with fewer channels run torch's layers: at the demo's width (16-64 channels) the fused op made whole
training steps slower, 0.63-0.84× as fast (Harmonic-CNN and the Sample-CNN family, 2 cores)."""
NO_DROPOUT = (0, np.float32(1.0))
"""The threshold and keep scale the kernels take when there is no dropout (its bits are None)."""


def batch_norm_relu(
    x: torch.Tensor,
    bn: nn.BatchNorm2d,
    *,
    pool: MaxPool2dSafe | None = None,
    skip: torch.Tensor | None = None,
    dropout: WaveDropout | None = None,
) -> torch.Tensor:
    """relu(pool(bn(x) + skip)) for (B, C, F, T) maps, without ``skip`` or ``pool`` when they are None; or
    dropout(relu(bn(x))) (no pool or skip then)."""
    if dropout is not None and (pool is not None or skip is not None):
        raise ValueError("batch_norm_relu applies dropout only to relu(bn(x)), without a pool or skip")
    drops = dropout is not None and dropout.training and dropout.p > 0
    if not _fusable(x, bn, skip) or (drops and not dropout.draws_bits(x)):  # p = 1: nn.Dropout zeroes all
        z = bn(x)
        if skip is not None:
            z = skip + z
        y = F.relu(z if pool is None else pool(z), inplace=True)
        return y if dropout is None else dropout(y)
    window = pool.window(x) if pool is not None else (1, 1)
    stats = _batch_stats(x, bn)
    drop = (dropout.random_bits(x), dropout.threshold, dropout.keep_scale) if drops else None
    return _BatchNormPoolReLU.apply(x, bn.weight, bn.bias, skip, *stats, window, False, drop)


def batch_norm_relu_squeeze(
    x: torch.Tensor, bn: nn.BatchNorm2d, pool: MaxPool2dSafe
) -> tuple[torch.Tensor, torch.Tensor]:
    """pool(y) and y's sums over time, for y = relu(bn(x)) on (B, C, 1, T) rows: an SE block's pooled output and
    its gate's squeeze (times T); (B, C, 1, T // k) and (B, C)."""
    if not _fusable(x, bn, None) or x.shape[2] != 1:
        y = F.relu(bn(x), inplace=True)
        # the sums over time as sums over the (B, 1, T, C) view of channels-last rows, whose gradient is a
        # broadcast in that layout (over dims (2, 3) it would come back contiguous, and copying it costs more)
        return pool(y), y.permute(0, 2, 3, 1).sum(dim=(1, 2))
    return _BatchNormPoolReLU.apply(x, bn.weight, bn.bias, None, *_batch_stats(x, bn), pool.window(x), True, None)


def _fusable(x: torch.Tensor, bn: nn.BatchNorm2d, skip: torch.Tensor | None) -> bool:
    """Whether this call takes the fused CPU path: a wide float32 channels-last map, a training-mode BatchNorm."""
    dense = x.dim() == 4 and x.shape[1] >= FUSED_FROM_CHANNELS and x.is_contiguous(memory_format=torch.channels_last)
    skip_fits = skip is None or (
        skip.shape == x.shape and skip.dtype == x.dtype and skip.is_contiguous(memory_format=torch.channels_last)
    )
    return (
        dense
        and skip_fits
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and bn.training
        and bn.affine
        and not torch.is_autocast_enabled("cpu")
    )


def _rows(x: torch.Tensor) -> np.ndarray:
    """A channels-last (B, C, F, T) tensor as the (B, F, T, C) NumPy view the kernels take (no copy)."""
    return x.detach().permute(0, 2, 3, 1).numpy()


def _numpy(x: torch.Tensor | None) -> np.ndarray | None:
    """A tensor's NumPy view, or None for None."""
    return None if x is None else x.numpy()


def _flat(x: torch.Tensor) -> np.ndarray:
    """A channels-last (B, C, F, T) tensor as (B·F·T, C) rows (no copy)."""
    return _rows(x).reshape(-1, x.shape[1])


def _use_torch_threads() -> None:
    """Run the kernels on as many threads as torch uses."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _batch_stats(x: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """The batch's per-channel mean and 1/std in float64; moves ``bn``'s running statistics toward them."""
    count = x.numel() // x.shape[1]
    if count <= 1:
        raise ValueError(f"BatchNorm needs more than 1 value per channel when training, got input size {x.shape}")
    _use_torch_threads()
    rows = _flat(x)
    shift = rows[0].copy()
    sums, squares = bn_kernels.shifted_sums(rows, shift)
    mean_shifted = sums.sum(axis=0) / count
    var = np.maximum(squares.sum(axis=0) / count - mean_shifted**2, 0.0)  # biased, as BatchNorm normalises
    mean = mean_shifted + shift
    _update_running_stats(bn, mean, var * count / (count - 1))
    return mean, 1.0 / np.sqrt(var + bn.eps)


@torch.no_grad()
def _update_running_stats(bn: nn.BatchNorm2d, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
    """Move ``bn``'s running statistics toward this batch's as its own forward does."""
    if not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        return
    bn.num_batches_tracked.add_(1)
    factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    bn.running_mean.mul_(1 - factor).add_(torch.from_numpy(mean).to(bn.running_mean.dtype), alpha=factor)
    bn.running_var.mul_(1 - factor).add_(torch.from_numpy(unbiased_var).to(bn.running_var.dtype), alpha=factor)


class _BatchNormPoolReLU(torch.autograd.Function):
    """relu(pool(γ·x̂ + β [+ skip])), and with ``squeeze`` its sums over time before the pool, given the batch's
    mean and 1/std; gradients for x, γ, β and skip."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,  # (B, C, F, T) channels-last
        weight: torch.Tensor,  # (C,) γ
        bias: torch.Tensor,  # (C,) β
        skip: torch.Tensor | None,  # (B, C, F, T) channels-last
        mean: np.ndarray,  # (C,) float64
        inv_std: np.ndarray,  # (C,) float64
        window: tuple[int, int],
        squeeze: bool,
        dropout: tuple[torch.Tensor, int, float] | None,  # (numel,) int16 random bits, threshold, keep scale
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        scale = weight.detach().double().numpy() * inv_std
        shift = bias.detach().double().numpy() - mean * scale
        ctx.coefficients = [v.astype(np.float32) for v in (scale, shift, mean, inv_std)]
        ctx.window, ctx.has_skip = window, skip is not None
        _use_torch_threads()
        if window == (1, 1) and skip is None and not squeeze:
            ctx.dropout = NO_DROPOUT if dropout is None else (dropout[1], np.float32(dropout[2]))
            out = torch.empty_like(x)
            bits = None if dropout is None else dropout[0].view(-1, x.shape[1])  # (N, C) int16, as x's rows
            bn_kernels.normalize_relu(_flat(x), *ctx.coefficients[:2], _numpy(bits), *ctx.dropout, _flat(out))
            ctx.save_for_backward(x, bits)
            return out
        batch, channels, rows, cols = x.shape
        pooled = (batch, channels, rows // window[0], cols // window[1])
        out = torch.empty(pooled, memory_format=torch.channels_last)  # (B, C, F / pf, T / pt)
        x_at_max = torch.empty_like(out)
        argmax = torch.empty((batch, *pooled[2:], channels), dtype=torch.uint8)  # (B, F / pf, T / pt, C)
        sums = np.zeros((batch, 3, channels)) if squeeze else None  # Σ relu(z), Σ [z > 0], Σ [z > 0] · x̂
        bn_kernels.normalize_pool_relu(
            _rows(x),
            *ctx.coefficients[:2],
            None if skip is None else _rows(skip),
            *window,
            _rows(out),
            _rows(x_at_max),
            argmax.numpy(),
            *ctx.coefficients[2:],
            sums,
        )
        ctx.save_for_backward(x, out, x_at_max, argmax)
        if not squeeze:
            return out
        ctx.active = sums[:, 1:]  # (B, 2, C): Σ [z > 0] and Σ [z > 0] · x̂ for the squeeze's gradient
        return out, torch.from_numpy(sums[:, 0].astype(np.float32))  # (B, C, F / pf, T / pt), (B, C)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *grad_squeeze: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        _use_torch_threads()
        grad = grad.contiguous(memory_format=torch.channels_last)
        x, *saved = ctx.saved_tensors
        pooling = saved if len(saved) == 3 else None  # (out, x_at_max, argmax), or the dropout bits alone
        bits, dropout = (None, NO_DROPOUT) if pooling else (_numpy(saved[0]), ctx.dropout)
        scale = ctx.coefficients[0]
        # pooled: the rows are the outputs, x the input at each maximum; else every position, its mask from z
        out_rows, x_rows = (_flat(pooling[0]), _flat(pooling[1])) if pooling else (None, _flat(x))
        sums, products = bn_kernels.relu_grad_sums(_flat(grad), x_rows, out_rows, bits, *dropout, *ctx.coefficients)
        grad_beta, grad_gamma = sums.sum(axis=0), products.sum(axis=0)
        squeeze = grad_squeeze[0].double().numpy() if grad_squeeze else None  # (B, C)
        if squeeze is not None:  # the squeeze's gradient reaches every position where z > 0
            grad_beta += (squeeze * ctx.active[:, 0]).sum(axis=0)
            grad_gamma += (squeeze * ctx.active[:, 1]).sum(axis=0)
        count = x.numel() // x.shape[1]
        beta_term = (scale * grad_beta / count).astype(np.float32)
        gamma_term = (scale * grad_gamma / count).astype(np.float32)
        grad_x = torch.empty_like(x)
        grad_skip = torch.empty_like(x) if ctx.has_skip and ctx.needs_input_grad[3] else None
        if not pooling:
            bn_kernels.batch_norm_relu_grad(
                _flat(x), _flat(grad), bits, *dropout, *ctx.coefficients, beta_term, gamma_term, _flat(grad_x)
            )
        else:
            bn_kernels.batch_norm_pool_relu_grad(
                _rows(x),
                _rows(grad),
                _rows(pooling[0]),
                pooling[2].numpy(),
                *ctx.coefficients,
                beta_term,
                gamma_term,
                *ctx.window,
                None if squeeze is None else squeeze.astype(np.float32),
                _rows(grad_x),
                None if grad_skip is None else _rows(grad_skip),
            )
        return grad_x, _as_float32(grad_gamma), _as_float32(grad_beta), grad_skip, None, None, None, None, None


def _as_float32(values: np.ndarray) -> torch.Tensor:
    """A float64 per-channel sum as the float32 gradient of a (C,) parameter."""
    return torch.from_numpy(values.astype(np.float32))
