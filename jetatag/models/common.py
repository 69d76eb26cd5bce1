"""Building blocks shared by several extractors: width scaling, safe pooling, the multi-level head, Keras-style init."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jetatag.models.same_conv import WeightGradConv, summed_products, takes_tap_gemm, tap_weight_grad

H_DIM = 1024
"""Size of the extractor output h (the paper changes every extractor to end in 1024 dimensions)."""


def scaled(channels: int, width: float) -> int:
    """Channel count ``channels`` scaled by the ``model.width`` multiplier (rounded, at least 1)."""
    return max(1, round(channels * width))


SEGMENTED_ABOVE = 729
"""Rows longer than this get their conv weight gradients computed on short segments."""
SEGMENT_LENGTH = 81
"""Preferred segment length: oneDNN's weight gradient ran fastest on rows of 81-243 samples (2 cores, AVX-512)."""


def segment_count(length: int, *, stride: int = 1) -> int:
    """Number of equal segments, SEGMENT_LENGTH/3 to SEGMENT_LENGTH samples and a whole number of strides long.

    1 for rows of at most :data:`SEGMENTED_ABOVE` samples, or whose length has no such divisor.
    """
    if length <= SEGMENTED_ABOVE:
        return 1
    lengths = range(SEGMENT_LENGTH, SEGMENT_LENGTH // 3, -1)
    return next((length // s for s in lengths if length % s == 0 and s % stride == 0), 1)


def segment_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """(B, C, 1, T) channels-last rows as (B, n, T/n, C): each row's n equal segments, channels last; a view."""
    batch, channels, _, length = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, n, length // n, channels)


def as_segments(x: torch.Tensor, n: int) -> torch.Tensor:
    """(B, C, 1, T) channels-last rows as (B·n, C, 1, T/n) rows of n equal segments each: a view, no copy."""
    batch, channels, _, length = x.shape
    return segment_rows(x, n).reshape(batch * n, 1, length // n, channels).permute(0, 3, 1, 2)


class SegmentedWeightGradConv(torch.autograd.Function):
    """Conv over (B, C, 1, T) rows whose weight gradient is computed on the rows cut into segments.

    On CPU, oneDNN's weight-gradient kernel is much slower per sample on rows of thousands of samples
    than on rows of about a hundred: 1.5-3× for Sample-CNN's first block (19,683 samples × 128 channels),
    12× for Music-SincNet's stem (59,049 × 256). The weight gradient is a sum over output positions, so
    it can be taken over the segments viewed as a larger batch. Two kinds of conv allow that:

    * stride-1 "same" convs (odd k, padding k // 2): the segments' zero padding leaves out the kernel
      taps that reach across a cut, and :func:`_add_cut_terms` adds them back;
    * unpadded convs with kernel ≤ stride over segments of whole strides: no window crosses a cut.

    Forward and input gradient are the plain convolution's.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, segments: int
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.segments, ctx.bias_shape = stride, segments, None if bias is None else bias.shape
        return F.conv2d(x, weight, bias, stride=(1, stride), padding=(0, _padding(weight, stride)))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        grad_x = (
            _conv_backward(grad, x, weight, ctx.stride, ctx.bias_shape, (True, False, False))[0] if needs_x else None
        )
        n = ctx.segments
        _, grad_w, grad_b = _conv_backward(
            as_segments(grad, n), as_segments(x, n), weight, ctx.stride, ctx.bias_shape, (False, needs_w, needs_b)
        )
        if needs_w and ctx.stride == 1:
            _add_cut_terms(grad_w, x, grad, n)
        return grad_x, grad_w, grad_b, None, None


def _padding(weight: torch.Tensor, stride: int) -> int:
    """Time padding of a :class:`SegmentedWeightGradConv`: "same" (k // 2) at stride 1, none when strided."""
    return weight.shape[-1] // 2 if stride == 1 else 0


def _conv_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: int,
    bias_shape: torch.Size | None,
    mask: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of a :class:`SegmentedWeightGradConv` for (input, weight, bias), each only where ``mask`` asks."""
    bias_sizes = None if bias_shape is None else list(bias_shape)
    mask = (mask[0], mask[1], mask[2] and bias_shape is not None)
    padding = [0, _padding(weight, stride)]
    return torch.ops.aten.convolution_backward(
        grad, x, weight, bias_sizes, [1, stride], padding, [1, 1], False, [0, 0], 1, list(mask)
    )


def _add_cut_terms(grad_w: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, n: int) -> None:
    """Add to ``grad_w`` (C_out, C_in, 1, k) the products of the "same" conv's taps that reach across a cut."""
    pad = grad_w.shape[-1] // 2
    xs, gs = segment_rows(x, n), segment_rows(grad, n)  # (B, n, S, C_in), (B, n, S, C_out)
    last = xs.shape[2] - 1
    for offset in range(1, pad + 1):
        for u in range(offset):
            # output u of a segment reads input u − offset: the end of the segment before
            grad_w[:, :, 0, pad - offset] += torch.einsum(
                "bso,bsi->oi", gs[:, 1:, u], xs[:, :-1, last + 1 + u - offset]
            )
            # output S−1−u reads input S−1−u+offset: the start of the segment after
            grad_w[:, :, 0, pad + offset] += torch.einsum(
                "bso,bsi->oi", gs[:, :-1, last - u], xs[:, 1:, offset - 1 - u]
            )


class WaveConv(nn.Conv1d):
    """A Conv1d over time that runs as a Conv2d on (B, C, 1, T) tensors in channels-last memory.

    Same parameters and state dict as :class:`torch.nn.Conv1d`. On CPU the channels-last Conv2d takes
    oneDNN's direct path, and keeping the whole sample-level network in that layout lets BatchNorm,
    ReLU and max-pooling skip the layout reorders that conv1d's (B, C, T) layout costs around every
    convolution: about 2× faster per training step for the narrow, long signals of these models.
    Training on CPU in float32, convs over long rows take their weight gradient segment by segment
    (:class:`SegmentedWeightGradConv`), or, wide stride-1 ones on CPUs without AVX-512, as one matmul per tap
    (:func:`jetatag.models.same_conv.tap_weight_grad`); under autocast they run plain, in oneDNN's bf16 kernels.
    On CPU a conv whose windows tile a one-channel signal (Sample-CNN's stem) is a matmul of its frames
    (:func:`framed_conv`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, 1, T) channels-last
        if self._tiles_signal(x):
            return framed_conv(x, self.weight, self.bias)  # (B, C_out, 1, T // k)
        weight = self.weight.unsqueeze(2)  # (C_out, C_in, 1, k)
        stride, padding = self.stride[0], self.padding[0]
        segmentable = self._segmentable(x)
        segments = segment_count(x.shape[-1], stride=stride) if segmentable else 1
        if segmentable and self._takes_tap_gemm():
            y = WeightGradConv.apply(x, weight, self.bias, tap_weight_grad)  # (B, C_out, 1, T)
        elif segments > 1:
            y = SegmentedWeightGradConv.apply(x, weight, self.bias, stride, segments)  # (B, C_out, 1, T')
        else:
            y = F.conv2d(x, weight, self.bias, stride=(1, stride), padding=(0, padding))  # (B, C_out, 1, T')
        # a one-channel input is both layouts at once and torch then picks (B, C, 1, T): restore channels-last
        return y.contiguous(memory_format=torch.channels_last)

    def _tiles_signal(self, x: torch.Tensor) -> bool:
        """Whether this is a CPU conv whose windows tile its input (kernel = stride, no padding) over one channel,
        or, on a CPU without AVX-512, over many channels in channels-last rows into a wide output."""
        k, stride, padding = self.kernel_size[0], self.stride[0], self.padding[0]
        tiles = k == stride and padding == 0 and self.dilation == (1,) and self.groups == 1 and x.device.type == "cpu"
        many_channels = takes_tap_gemm(self.out_channels) and x.is_contiguous(memory_format=torch.channels_last)
        return tiles and (self.in_channels == 1 or many_channels)

    def _takes_tap_gemm(self) -> bool:
        """Whether a segmentable call takes its weight gradient as one matmul per tap instead: a wide stride-1
        "same" conv on a CPU without AVX-512 (:mod:`jetatag.models.same_conv`)."""
        k, stride, padding = self.kernel_size[0], self.stride[0], self.padding[0]
        return takes_tap_gemm(self.out_channels) and stride == 1 and padding == k // 2

    def _segmentable(self, x: torch.Tensor) -> bool:
        """Whether this call may take :class:`SegmentedWeightGradConv`: a float32 CPU training step, fitting conv."""
        k, stride, padding = self.kernel_size[0], self.stride[0], self.padding[0]
        same = stride == 1 and k % 2 == 1 and padding == k // 2
        windows_apart = padding == 0 and k <= stride
        return (
            (same or windows_apart)
            and self.dilation == (1,)
            and self.groups == 1
            and x.device.type == "cpu"
            and torch.is_grad_enabled()
            and not torch.is_autocast_enabled(x.device.type)
            and self.weight.requires_grad
            and x.is_contiguous(memory_format=torch.channels_last)
        )


BIAS_IN_MATMUL_FROM = 128
"""Stem width from which :func:`framed_conv` takes its bias into the frames' matmul (the paper's 128 channels)."""


def framed_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A Conv1d whose k-sample windows tile its channels-last input, computed as one matmul of its k-sample frames.

    In channels-last rows a frame, k samples × C_in channels, lies contiguous in memory, so the frames are a view.
    On CPU oneDNN runs such a conv over one channel (Sample-CNN's stem) in the (B, C, 1, T) layout, which then
    costs a copy to channels-last, and its weight gradient a copy back: 100 ms of a paper-width step, against 48
    ms here. Over many channels (Music-SincNet's 256 filters into its 128-channel stem) oneDNN's AVX2 weight
    gradient is slow (:mod:`jetatag.models.same_conv`), so CPUs without AVX-512 take the matmul there too.
    Over one channel, from :data:`BIAS_IN_MATMUL_FROM` output channels, the bias is the weight of a constant 1
    appended to each frame: ``addmm`` copies the bias into every output row first (16 × 59,049 samples, 128
    channels: forward + backward 64 → 27 ms); wider frames would cost a copy of the input for their extra column,
    and narrower stems (the demo's 16 channels) ran faster with ``addmm``. Few-column frames (one channel) take
    :class:`FramesMatmul`'s chunked weight and bias gradients.
    """
    batch, c_in, _, length = x.shape  # (B, C_in, 1, T) channels-last
    c_out, _, k = weight.shape  # (C_out, C_in, k)
    n = length // k
    rows = x.permute(0, 2, 3, 1).reshape(batch, length * c_in)  # (B, T·C_in): sample-major, a view
    frames = rows[:, : n * k * c_in].reshape(batch * n, k * c_in)  # (B·T', k·C_in): frame t is samples k·t … k·t + k
    kernels = weight.permute(0, 2, 1).reshape(c_out, k * c_in).t()  # (k·C_in, C_out), sample-major like the frames
    if bias is not None and c_out >= BIAS_IN_MATMUL_FROM and c_in == 1:  # (B·T', k + 1) @ (k + 1, C_out)
        frames = torch.cat([frames, frames.new_ones(batch * n, 1)], dim=1)
        kernels, bias = torch.cat([kernels, bias.unsqueeze(0)]), None
    y = FramesMatmul.apply(frames, kernels, bias) if k * c_in < CHUNKED_BELOW_FRAME else _matmul(frames, kernels, bias)
    return y.view(batch, 1, n, c_out).permute(0, 3, 1, 2)  # (B, C_out, 1, T') channels-last


def _matmul(frames: torch.Tensor, kernels: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """frames @ kernels (+ bias): (N, K) @ (K, C_out)."""
    return frames @ kernels if bias is None else torch.addmm(bias, frames, kernels)


CHUNKED_BELOW_FRAME = 32
"""Frames narrower than this (a one-channel stem's k or k + 1 samples) take :class:`FramesMatmul`'s backward."""
CHUNK_ROWS = 2048
"""About how many frames each chunk of :class:`FramesMatmul`'s weight gradient sums."""


class FramesMatmul(torch.autograd.Function):
    """frames @ kernels (+ bias) for a few-column (N, K) frames matrix, whose backward sums chunk by chunk.

    The weight gradient frames^T @ grad reduces over N = batch × frames, hundreds of thousands of rows, to a
    K × C_out result; MKL ran that one matmul at 1-3 GFLOP/s (2-core AMD EPYC, 16 × 19,683 frames of 3 samples:
    25 ms at 16 channels, 41-103 ms at 128) and torch's bias sum over the rows took 7-16 ms. As a batched matmul
    over chunks of about :data:`CHUNK_ROWS` rows, then a sum of the chunks' products: 3 and 21-26 ms, the bias 1 ms.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, frames: torch.Tensor, kernels: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(frames, kernels)
        return _matmul(frames, kernels, bias)  # (N, C_out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        frames, kernels = ctx.saved_tensors
        grad = grad.contiguous()  # (N, C_out)
        needs_frames, needs_kernels, needs_bias = ctx.needs_input_grad
        chunks = row_chunks(frames.shape[0])  # a divisor of N: every row in a chunk
        grad_frames = grad @ kernels.t() if needs_frames else None  # (N, K)
        grad_kernels = summed_products(frames, grad, chunks=chunks) if needs_kernels else None  # (K, C_out)
        grad_bias = grad.view(chunks, -1, grad.shape[1]).sum(dim=1).sum(dim=0) if needs_bias else None  # (C_out,)
        return grad_frames, grad_kernels, grad_bias


def row_chunks(rows: int) -> int:
    """How many equal chunks to cut ``rows`` rows into: the most that leaves each at least :data:`CHUNK_ROWS`
    rows (1 when no divisor does)."""
    return next((c for c in range(rows // CHUNK_ROWS, 1, -1) if rows % c == 0), 1)


class WaveDropout(nn.Dropout):
    """Dropout whose CPU training mask costs one 64-bit random draw per four elements.

    torch's CPU ``bernoulli_`` draws a random number per element on one thread: 0.3 s per training step
    for Sample-CNN +Res's first block alone (16 × 128 × 19,683 elements). Here each element compares its
    own 16 random bits with the drop probability, quantised to 1/65,536 (0.2 → 0.199997); the mask comes
    from torch's generator, so ``torch.manual_seed`` repeats it. Elsewhere (CUDA, evaluation) this is
    :class:`torch.nn.Dropout`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.draws_bits(x):
            return super().forward(x)
        # 0 or 1 / (1 - p) per element; torch.where with two scalars took twice as long on CPU
        keep = self.random_bits(x).ge(self.threshold).to(x.dtype).mul_(self.keep_scale)
        return x * keep.as_strided(x.shape, x.stride())  # the mask laid out as x, which is dense in memory

    def draws_bits(self, x: torch.Tensor) -> bool:
        """Whether this call drops by :meth:`random_bits`: training on CPU, 0 < p < 1, ``x`` dense in memory."""
        dense = x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)
        return self.training and 0 < self.p < 1 and x.device.type == "cpu" and dense

    def random_bits(self, x: torch.Tensor) -> torch.Tensor:
        """(numel,) int16: 16 uniform random bits per element of ``x``, in its memory order; kept where ≥ threshold."""
        words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # 64 random bits
        return words.view(torch.int16)[: x.numel()]

    @property
    def threshold(self) -> int:
        """The int16 value from which random bits keep their element: a fraction 1 − p of them."""
        return round(self.p * 2**16) - 2**15

    @property
    def keep_scale(self) -> float:
        """What kept elements are multiplied by, 1 / (1 − p)."""
        return 1.0 / (1.0 - self.p)


class ChannelsLastGradBack(torch.autograd.Function):
    """Channels-last copy of a contiguous (B, C, H, W) map whose gradient goes back contiguous.

    Harmonic-CNN's front end ends in a BatchNorm over 6 harmonic channels, which runs contiguous (its
    channels-last kernels are ~10× slower for so few channels) before the body takes the map channels-last.
    Handed the body's channels-last gradient, that BatchNorm's backward took 11 ms, and 7 ms after one copy
    of the gradient into its own layout (2 cores, 16 × 6 × 128 × 313).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.contiguous()


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) signals as the (B, C, 1, T) channels-last tensor that :class:`WaveConv` layers take."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C, 1, T)


def time_sums(x: torch.Tensor) -> torch.Tensor:
    """Each signal's sums over time (B, C) of (B, C, 1, T) channels-last rows: an SE gate's squeeze, times T.

    Summed over the (B, 1, T, C) view, whose gradient is a broadcast in that layout; summed over dims (2, 3)
    the gradient would come back contiguous, a full-size (B, C, 1, T) map in the other layout that the ReLU
    backward shared with the max-pool then ran 4× slower on, and copying it costs more.
    """
    return x.permute(0, 2, 3, 1).sum(dim=(1, 2))  # (B, C)


class MaxPool2dSafe(nn.Module):
    """2-D max-pool (frequency, time) that shrinks its window on short inputs, so no size drops below one.

    The sample-level models pool their (B, C, 1, T) rows over time with a (1, k) window.
    """

    def __init__(self, kernel: int | tuple[int, int]) -> None:
        super().__init__()
        self.kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)

    def window(self, x: torch.Tensor) -> tuple[int, int]:
        """The (frequency, time) window for a (B, C, F, T) input: the kernel, shrunk to fit."""
        return min(self.kernel[0], x.shape[-2]), min(self.kernel[1], x.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T)
        return F.max_pool2d(x, self.window(x))  # (B, C, F // kf, T // kt)


class MultiLevelHead(nn.Module):
    """Multi-level feature aggregation (Lee et al. 2017; Kim et al. 2018) ending in h.

    Global max-pool each of the last blocks' (B, C_i, F_i, T_i) outputs over frequency and time, concatenate,
    then Dense ``H_DIM`` → BatchNorm → ReLU. At paper width the concatenation is 256 + 256 + 512 = 1024.
    """

    def __init__(self, in_channels: list[int], out_dim: int = H_DIM) -> None:
        super().__init__()
        self.dense = nn.Linear(sum(in_channels), out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        pooled = [f.amax(dim=(2, 3)) for f in features]  # each (B, C_i)
        x = torch.cat(pooled, dim=1)  # (B, sum C_i)
        return F.relu(self.bn(self.dense(x)))  # (B, out_dim)


def keras_init(module: nn.Module) -> None:
    """Initialise like the authors' Keras code: He-uniform convs, Glorot-uniform dense layers, zero biases.

    Use with ``model.apply(keras_init)``; other layers keep PyTorch's defaults (BatchNorm: γ = 1, β = 0).
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
    elif isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)


KERAS_BN_MOMENTUM = 0.01
"""Keras' BatchNormalization momentum 0.99 in torch's convention (the weight of the new batch's statistics)."""
KERAS_BN_EPS = 1e-3
"""Keras' BatchNormalization epsilon (torch: 1e-5)."""


def a21_init_and_bn(extractor: nn.Module, *, glorot_convs: bool) -> None:
    """Give ``extractor`` A21's Keras layer defaults (``model.init_and_bn: a21``), after :func:`keras_init`.

    Every BatchNorm takes Keras' momentum and eps. Convs are re-drawn Glorot-uniform where A21 names no
    initializer: all of them with ``glorot_convs`` (Harmonic-CNN's Conv2D), else only the 1×1 ones (Sample-CNN's
    shortcuts; its other convs are he_uniform, as :func:`keras_init` draws them).
    """
    for module in extractor.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.momentum, module.eps = KERAS_BN_MOMENTUM, KERAS_BN_EPS
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)) and (glorot_convs or module.weight[0, 0].numel() == 1):
            nn.init.xavier_uniform_(module.weight)
