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
and this op's 7e-7. The Res+SE block's tail, relu(pool(skip + z · gate(mean z))) with z = bn(x), is one
such op too (:func:`batch_norm_gate_relu`): the statistics pass also yields each signal's mean of z, the
gate's input, and the gate's small MLP runs inside the op.

The fused path runs for float32 channels-last maps of at least :data:`FUSED_FROM_CHANNELS` channels through a
training-mode BatchNorm on CPU outside autocast; anything else (CUDA, evaluation, bf16, the demo's narrow
maps) runs the same layers as torch ops. Parameters, buffers and their updates are
:class:`torch.nn.BatchNorm2d`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jetatag.models import bn_kernels
from jetatag.models.common import MaxPool2dSafe, WaveDropout, time_sums

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
    stats = _batch_stats(x, bn)
    if pool is None and skip is None:
        drop = (dropout.random_bits(x), dropout.threshold, dropout.keep_scale) if drops else None
        return _BatchNormReLU.apply(x, bn.weight, bn.bias, stats, drop)
    window = pool.window(x) if pool is not None else (1, 1)
    return _BatchNormPoolReLU.apply(x, bn.weight, bn.bias, skip, stats, window, False)


def batch_norm_relu_squeeze(
    x: torch.Tensor, bn: nn.BatchNorm2d, pool: MaxPool2dSafe
) -> tuple[torch.Tensor, torch.Tensor]:
    """pool(y) and y's sums over time, for y = relu(bn(x)) on (B, C, 1, T) rows: an SE block's pooled output and
    its gate's squeeze (times T); (B, C, 1, T // k) and (B, C)."""
    if not _fusable(x, bn, None) or x.shape[2] != 1:
        y = F.relu(bn(x), inplace=True)
        return pool(y), time_sums(y)
    return _BatchNormPoolReLU.apply(x, bn.weight, bn.bias, None, _batch_stats(x, bn), pool.window(x), True)


class Gate(Protocol):
    """An SE gate: (B, C, 1, 1) channel weights for (B, C, 1, T) rows, from their time averages."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def excitation(self, squeezed: torch.Tensor) -> torch.Tensor:
        """The gate (B, C, 1, 1) for the time averages ``squeezed`` (B, C)."""
        ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


def batch_norm_gate_relu(
    x: torch.Tensor, bn: nn.BatchNorm2d, se: Gate, *, pool: MaxPool2dSafe, skip: torch.Tensor
) -> torch.Tensor:
    """relu(pool(skip + z · se(z))) for z = bn(x) on (B, C, 1, T) rows: the Res+SE block's tail, its gate
    squeezing the residual branch before the addition; (B, C, 1, T // k)."""
    if not _fusable(x, bn, skip) or x.shape[2] != 1:
        z = bn(x)
        z = z * se(z)
        return F.relu(pool(skip + z), inplace=True)
    return _BatchNormGatePoolReLU.apply(
        x, bn.weight, bn.bias, skip, _batch_stats(x, bn), pool.window(x), se, *se.parameters()
    )


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


def _signals(x: torch.Tensor) -> np.ndarray:
    """A channels-last (B, C, F, T) tensor as (B, F·T, C): each signal's rows (no copy)."""
    return _rows(x).reshape(x.shape[0], -1, x.shape[1])


def _use_torch_threads() -> None:
    """Run the kernels on as many threads as torch uses."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


class BatchStats(NamedTuple):
    """A batch's BatchNorm statistics in float64: per channel (C,), and each signal's mean (B, C)."""

    mean: np.ndarray
    inv_std: np.ndarray
    signal_means: np.ndarray


def _batch_stats(x: torch.Tensor, bn: nn.BatchNorm2d) -> BatchStats:
    """The batch's statistics; moves ``bn``'s running statistics toward them."""
    count = x.numel() // x.shape[1]
    if count <= 1:
        raise ValueError(f"BatchNorm needs more than 1 value per channel when training, got input size {x.shape}")
    _use_torch_threads()
    signals = _signals(x)  # (B, F·T, C)
    shift = signals[0, 0].copy()
    sums, squares = bn_kernels.shifted_sums(signals, shift)  # (B, chunks, C) each
    signal_sums = sums.sum(axis=1)  # (B, C)
    mean_shifted = signal_sums.sum(axis=0) / count
    var = np.maximum(squares.sum(axis=(0, 1)) / count - mean_shifted**2, 0.0)  # biased, as BatchNorm normalises
    mean = mean_shifted + shift
    _update_running_stats(bn, mean, var * count / (count - 1))
    return BatchStats(mean, 1.0 / np.sqrt(var + bn.eps), signal_sums / signals.shape[1] + shift)


@torch.no_grad()
def _update_running_stats(bn: nn.BatchNorm2d, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
    """Move ``bn``'s running statistics toward this batch's as its own forward does."""
    if not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        return
    bn.num_batches_tracked.add_(1)
    factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    bn.running_mean.mul_(1 - factor).add_(torch.from_numpy(mean).to(bn.running_mean.dtype), alpha=factor)
    bn.running_var.mul_(1 - factor).add_(torch.from_numpy(unbiased_var).to(bn.running_var.dtype), alpha=factor)


def _coefficients(weight: torch.Tensor, bias: torch.Tensor, stats: BatchStats) -> list[np.ndarray]:
    """float32 (C,) scale, shift, mean and 1/std: z = x · scale + shift, x̂ = (x − mean) · 1/std."""
    scale = weight.detach().double().numpy() * stats.inv_std
    shift = bias.detach().double().numpy() - stats.mean * scale
    return [v.astype(np.float32) for v in (scale, shift, stats.mean, stats.inv_std)]


def _pool_forward(
    x: torch.Tensor,
    coefficients: list[np.ndarray],
    window: tuple[int, int],
    *,
    gate: np.ndarray | None = None,
    skip: torch.Tensor | None = None,
    squeeze: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """relu(pool(z · gate + skip)) (B, C, F / pf, T / pt) channels-last, x at each window's maximum (same shape),
    and the maximum's place in its window (B, F / pf, T / pt, C) uint8; ``squeeze`` gets what the kernel says."""
    batch, channels, rows, cols = x.shape
    pooled = (batch, channels, rows // window[0], cols // window[1])
    out = torch.empty(pooled, memory_format=torch.channels_last)
    x_at_max = torch.empty_like(out)
    argmax = torch.empty((batch, *pooled[2:], channels), dtype=torch.uint8)
    bn_kernels.normalize_pool_relu(
        _rows(x),
        *coefficients[:2],
        gate,
        None if skip is None else _rows(skip),
        *window,
        _rows(out),
        _rows(x_at_max),
        argmax.numpy(),
        *coefficients[2:],
        squeeze,
    )
    return out, x_at_max, argmax


def _routed_sums(
    grad: torch.Tensor, out: torch.Tensor, x_at_max: torch.Tensor, coefficients: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per signal (B, C), the sums of the gradient the pool routes back and of it times x̂ at the maximum."""
    sums, products = bn_kernels.relu_grad_sums(
        _signals(grad), _signals(x_at_max), _signals(out), None, *NO_DROPOUT, *coefficients
    )
    return sums.sum(axis=1), products.sum(axis=1)


def _pool_backward(
    x: torch.Tensor,
    grad: torch.Tensor,
    out: torch.Tensor,
    argmax: torch.Tensor,
    coefficients: list[np.ndarray],
    beta_term: np.ndarray,  # (B, C)
    gamma_term: np.ndarray,  # (C,)
    window: tuple[int, int],
    *,
    gate: np.ndarray | None = None,
    grad_squeeze: np.ndarray | None = None,
    with_skip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x's gradient through BatchNorm, (gate,) pool and ReLU, and the skip's when ``with_skip``."""
    grad_x = torch.empty_like(x)
    grad_skip = torch.empty_like(x) if with_skip else None
    bn_kernels.batch_norm_pool_relu_grad(
        _rows(x),
        _rows(grad),
        _rows(out),
        argmax.numpy(),
        *coefficients,
        np.ascontiguousarray(beta_term, np.float32),  # C order: a broadcast's astype() comes out in Fortran's
        gamma_term.astype(np.float32),
        *window,
        gate,
        grad_squeeze,
        _rows(grad_x),
        None if grad_skip is None else _rows(grad_skip),
    )
    return grad_x, grad_skip


class _BatchNormReLU(torch.autograd.Function):
    """relu(γ·x̂ + β), then dropout by the given random bits unless None, given the batch's statistics;
    gradients for x, γ and β."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,  # (B, C, F, T) channels-last
        weight: torch.Tensor,  # (C,) γ
        bias: torch.Tensor,  # (C,) β
        stats: BatchStats,
        dropout: tuple[torch.Tensor, int, float] | None,  # (numel,) int16 random bits, threshold, keep scale
    ) -> torch.Tensor:
        ctx.coefficients = _coefficients(weight, bias, stats)
        ctx.dropout = NO_DROPOUT if dropout is None else (dropout[1], np.float32(dropout[2]))
        out = torch.empty_like(x)
        bits = None if dropout is None else dropout[0].view(-1, x.shape[1])  # (N, C) int16, as x's rows
        bn_kernels.normalize_relu(_flat(x), *ctx.coefficients[:2], _numpy(bits), *ctx.dropout, _flat(out))
        ctx.save_for_backward(x, bits)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        _use_torch_threads()
        grad = grad.contiguous(memory_format=torch.channels_last)
        x, bits = ctx.saved_tensors
        batch, channels = x.shape[:2]
        bits = _numpy(bits)  # (N, C) int16 or None
        signal_bits = None if bits is None else bits.reshape(batch, -1, channels)
        sums, products = bn_kernels.relu_grad_sums(
            _signals(grad), _signals(x), None, signal_bits, *ctx.dropout, *ctx.coefficients
        )
        grad_beta, grad_gamma = sums.sum(axis=(0, 1)), products.sum(axis=(0, 1))
        scale, count = ctx.coefficients[0], x.numel() // channels
        grad_x = torch.empty_like(x)
        bn_kernels.batch_norm_relu_grad(
            _flat(x),
            _flat(grad),
            bits,
            *ctx.dropout,
            *ctx.coefficients,
            (scale * grad_beta / count).astype(np.float32),
            (scale * grad_gamma / count).astype(np.float32),
            _flat(grad_x),
        )
        return grad_x, _as_float32(grad_gamma), _as_float32(grad_beta), None, None


class _BatchNormPoolReLU(torch.autograd.Function):
    """relu(pool(γ·x̂ + β [+ skip])), and with ``squeeze`` its sums over time before the pool, given the batch's
    statistics; gradients for x, γ, β and skip."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,  # (B, C, F, T) channels-last
        weight: torch.Tensor,  # (C,) γ
        bias: torch.Tensor,  # (C,) β
        skip: torch.Tensor | None,  # (B, C, F, T) channels-last
        stats: BatchStats,
        window: tuple[int, int],
        squeeze: bool,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        ctx.coefficients = _coefficients(weight, bias, stats)
        ctx.window, ctx.has_skip = window, skip is not None
        sums = np.zeros((x.shape[0], 3, x.shape[1])) if squeeze else None  # Σ relu(z), Σ [z > 0], Σ [z > 0] · x̂
        out, x_at_max, argmax = _pool_forward(x, ctx.coefficients, window, skip=skip, squeeze=sums)
        ctx.save_for_backward(x, out, x_at_max, argmax)
        if not squeeze:
            return out
        ctx.active = sums[:, 1:]  # (B, 2, C): Σ [z > 0] and Σ [z > 0] · x̂ for the squeeze's gradient
        return out, torch.from_numpy(sums[:, 0].astype(np.float32))  # (B, C, F / pf, T / pt), (B, C)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *grad_squeeze: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        _use_torch_threads()
        grad = grad.contiguous(memory_format=torch.channels_last)
        x, out, x_at_max, argmax = ctx.saved_tensors
        batch, channels = x.shape[:2]
        sums, products = _routed_sums(grad, out, x_at_max, ctx.coefficients)  # (B, C) each
        grad_beta, grad_gamma = sums.sum(axis=0), products.sum(axis=0)
        squeeze = grad_squeeze[0].double().numpy() if grad_squeeze else None  # (B, C)
        if squeeze is not None:  # the squeeze's gradient reaches every position where z > 0
            grad_beta += (squeeze * ctx.active[:, 0]).sum(axis=0)
            grad_gamma += (squeeze * ctx.active[:, 1]).sum(axis=0)
        scale, count = ctx.coefficients[0], x.numel() // channels
        grad_x, grad_skip = _pool_backward(
            x,
            grad,
            out,
            argmax,
            ctx.coefficients,
            np.broadcast_to(scale * grad_beta / count, (batch, channels)),
            scale * grad_gamma / count,
            ctx.window,
            grad_squeeze=None if squeeze is None else squeeze.astype(np.float32),
            with_skip=ctx.has_skip and ctx.needs_input_grad[3],
        )
        return grad_x, _as_float32(grad_gamma), _as_float32(grad_beta), grad_skip, None, None, None


class _BatchNormGatePoolReLU(torch.autograd.Function):
    """relu(pool(skip + z · gate(mean z))) for z = γ·x̂ + β on (B, C, 1, T) rows, given the batch's statistics;
    gradients for x, γ, β, skip and the gate's parameters.

    The squeeze is each signal's mean of z, γ·mean(x̂) + β, from the statistics pass. The gate's MLP runs in
    torch inside the op and its backward by :func:`torch.autograd.grad`, so the map's gradient, which needs the
    squeeze's, is written in one pass.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,  # (B, C, 1, T) channels-last
        weight: torch.Tensor,  # (C,) γ
        bias: torch.Tensor,  # (C,) β
        skip: torch.Tensor,  # (B, C, 1, T) channels-last
        stats: BatchStats,
        window: tuple[int, int],
        se: Gate,
        *se_params: nn.Parameter,
    ) -> torch.Tensor:
        ctx.coefficients = _coefficients(weight, bias, stats)
        ctx.window, ctx.gamma, ctx.beta = window, weight.detach().double().numpy(), bias.detach().double().numpy()
        ctx.x_hat_means = (stats.signal_means - stats.mean) * stats.inv_std  # (B, C): each signal's mean of x̂
        with torch.enable_grad():
            squeezed = torch.from_numpy((ctx.gamma * ctx.x_hat_means + ctx.beta).astype(np.float32)).requires_grad_()
            gate = se.excitation(squeezed)  # (B, C, 1, 1)
        ctx.gate_graph = squeezed, gate, se_params
        out, x_at_max, argmax = _pool_forward(
            x, ctx.coefficients, window, gate=gate.detach().reshape(x.shape[:2]).numpy(), skip=skip
        )
        ctx.save_for_backward(x, out, x_at_max, argmax)
        return out  # (B, C, 1, T / k)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        _use_torch_threads()
        grad = grad.contiguous(memory_format=torch.channels_last)
        x, out, x_at_max, argmax = ctx.saved_tensors
        batch, channels, _, length = x.shape
        # Σ over time of the gradient the pool routes back, u's, and of it times x̂ (B, C): z's gradient is
        # that times the gate, the gate's is its sum times z = γ·x̂ + β
        routed, routed_x_hat = _routed_sums(grad, out, x_at_max, ctx.coefficients)
        grad_gate = ctx.gamma * routed_x_hat + ctx.beta * routed
        squeezed, gate, se_params = ctx.gate_graph
        wanted = [p for p, needed in zip(se_params, ctx.needs_input_grad[7:], strict=True) if needed]
        with torch.enable_grad():
            grad_squeezed, *grad_wanted = torch.autograd.grad(
                gate, [squeezed, *wanted], torch.from_numpy(grad_gate.astype(np.float32)).view_as(gate)
            )
        gate_rows = gate.detach().reshape(batch, channels).numpy()  # (B, C) float32
        squeeze = grad_squeezed.double().numpy()  # (B, C); it reaches every one of the signal's T positions / T
        grad_beta = (gate_rows * routed + squeeze).sum(axis=0)
        grad_gamma = (gate_rows * routed_x_hat + squeeze * ctx.x_hat_means).sum(axis=0)
        scale, count = ctx.coefficients[0].astype(np.float64), batch * length
        grad_x, grad_skip = _pool_backward(
            x,
            grad,
            out,
            argmax,
            ctx.coefficients,
            scale * grad_beta / count - scale * squeeze / length,  # (B, C): the squeeze's share folds in here
            scale * grad_gamma / count,
            ctx.window,
            gate=gate_rows,
            with_skip=ctx.needs_input_grad[3],
        )
        given = iter(grad_wanted)
        grad_params = [next(given) if needed else None for needed in ctx.needs_input_grad[7:]]
        return grad_x, _as_float32(grad_gamma), _as_float32(grad_beta), grad_skip, None, None, None, *grad_params


def _as_float32(values: np.ndarray) -> torch.Tensor:
    """A float64 per-channel sum as the float32 gradient of a (C,) parameter."""
    return torch.from_numpy(values.astype(np.float32))
