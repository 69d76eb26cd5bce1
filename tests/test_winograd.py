"""Winograd F(4×4, 3×3) (jetatag.models.winograd): the 3×3 conv and its gradients, and where training takes it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jetatag.models import conv3x3
from jetatag.models.conv3x3 import WINOGRAD_FROM_CHANNELS, WINOGRAD_FROM_ROWS, Conv3x3
from jetatag.models.hcnn import HarmonicCNN
from jetatag.models.same_conv import WeightGradConv
from jetatag.models.winograd import WinogradConv3x3


def channels_last(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    """Standard normal float32 (B, C, H, W) in channels-last memory."""
    return torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)).contiguous(memory_format=torch.channels_last)


def assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal to float32 rounding of the transforms: within 1e-5 of the largest entry."""
    assert got.shape == want.shape
    assert torch.allclose(got, want, rtol=0.0, atol=1e-5 * want.abs().max().item())


@pytest.mark.parametrize("size", [(8, 12), (7, 10), (5, 3), (1, 1), (9, 19)])  # whole tiles, or tiles past the edge
@pytest.mark.parametrize("with_bias", [True, False])
def test_output_and_gradients_equal_conv2ds(size: tuple[int, int], with_bias: bool, rng: np.random.Generator) -> None:
    x = channels_last(rng, 3, 5, *size).requires_grad_()
    weight = torch.from_numpy(rng.standard_normal((7, 5, 3, 3), dtype=np.float32)).requires_grad_()
    bias = torch.from_numpy(rng.standard_normal(7, dtype=np.float32)).requires_grad_() if with_bias else None
    grad = channels_last(rng, 3, 7, *size)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    got = WinogradConv3x3.apply(x, weight, bias)
    want = F.conv2d(x, weight, bias, padding=1)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert_close(got, want)
    got_grads = torch.autograd.grad(got, inputs, grad)
    assert got_grads[0].is_contiguous(memory_format=torch.channels_last)
    for got_grad, want_grad in zip(got_grads, torch.autograd.grad(want, inputs, grad), strict=True):
        assert_close(got_grad, want_grad)  # input (the windows' overlaps and the padding ring), weight, bias


def test_takes_only_the_gradients_asked_for(rng: np.random.Generator) -> None:
    """A frozen layer's conv (the weight without grad) still passes the input's gradient back."""
    x = channels_last(rng, 2, 4, 6, 6).requires_grad_()
    weight = torch.from_numpy(rng.standard_normal((3, 4, 3, 3), dtype=np.float32))
    (grad_x,) = torch.autograd.grad(WinogradConv3x3.apply(x, weight, None).sum(), x)
    (want,) = torch.autograd.grad(F.conv2d(x, weight, padding=1).sum(), x)
    assert_close(grad_x, want)


def recording_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which autograd function each :class:`Conv3x3` call from here on ran through, in call order."""
    paths: list[str] = []
    for function, name in ((WinogradConv3x3, "winograd"), (WeightGradConv, "weight-grad")):
        apply = function.apply
        monkeypatch.setattr(function, "apply", lambda *a, _apply=apply, _name=name: paths.append(_name) or _apply(*a))
    return paths


def test_cpu_training_takes_winograd_on_wide_convs_over_tall_enough_maps(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = recording_paths(monkeypatch)
    wide = Conv3x3(WINOGRAD_FROM_CHANNELS, WINOGRAD_FROM_CHANNELS)
    wide(channels_last(rng, 2, WINOGRAD_FROM_CHANNELS, WINOGRAD_FROM_ROWS, 5).requires_grad_())
    wide(channels_last(rng, 2, WINOGRAD_FROM_CHANNELS, WINOGRAD_FROM_ROWS - 1, 5).requires_grad_())  # short maps
    Conv3x3(6, WINOGRAD_FROM_CHANNELS)(channels_last(rng, 2, 6, WINOGRAD_FROM_ROWS, 5))  # the 6 harmonics
    with torch.no_grad():  # evaluation and tagging: oneDNN's forward
        wide(channels_last(rng, 2, WINOGRAD_FROM_CHANNELS, WINOGRAD_FROM_ROWS, 5))
    Conv3x3(WINOGRAD_FROM_CHANNELS // 2, WINOGRAD_FROM_CHANNELS // 2)(  # the demo's widths: plain
        channels_last(rng, 2, WINOGRAD_FROM_CHANNELS // 2, WINOGRAD_FROM_ROWS, 5).requires_grad_()
    )
    assert paths == ["winograd", "weight-grad", "weight-grad"]


def harmonic_cnn_step(
    model: HarmonicCNN, wave: torch.Tensor, winograd: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """One training-mode forward and backward of a copy of ``model``, its convs by Winograd or direct: h, every
    parameter's gradient and every buffer (BatchNorm statistics)."""
    monkeypatch.setattr(conv3x3, "WINOGRAD_FROM_CHANNELS", WINOGRAD_FROM_CHANNELS if winograd else 10**9)
    network = copy.deepcopy(model).to(wave.dtype)
    h = network(wave)
    grads = torch.autograd.grad(h.square().sum(), list(network.parameters()))
    return h.detach(), list(grads), [b.clone() for b in network.buffers()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_paper_width_harmonic_cnn_trains_as_with_direct_convs(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h in float32, and h, every gradient and the BatchNorm statistics in float64, equal the direct convs'
    (float32: the convs' outputs differ by about 5e-6 of their largest entry, h by up to 2e-4).

    Float32 gradients are compared in float64 because a max-pool routes each window's gradient to its largest
    entry: a float32 difference of 5e-6 between two kernels, Winograd or another direct one, swaps the largest of
    a few near-tied entries (1 of 12,288 windows of block 5 here) and moves that gradient whole.
    """
    torch.manual_seed(0)
    model = HarmonicCNN(sample_rate=16000, width=1.0).train()
    wave = torch.randn(4, 32000, dtype=dtype)
    paths = recording_paths(monkeypatch)
    h, grads, buffers = harmonic_cnn_step(model, wave, True, monkeypatch)
    assert paths.count("winograd") == 7  # blocks 2-5: every conv over 8+ rows after the first
    want_h, want_grads, want_buffers = harmonic_cnn_step(model, wave, False, monkeypatch)
    assert paths.count("winograd") == 7
    tolerance = 1e-3 if dtype == torch.float32 else 1e-9  # float32: the head's BatchNorm over 4 clips magnifies
    assert torch.allclose(h, want_h, rtol=0.0, atol=tolerance * want_h.abs().max().item())
    if dtype == torch.float64:
        scale = max(g.abs().max().item() for g in want_grads)  # conv biases ahead of BatchNorm: gradients of ~0
        for got, want in zip(grads, want_grads, strict=True):
            assert torch.allclose(got, want, rtol=tolerance, atol=tolerance * scale)
        for got, want in zip(buffers, want_buffers, strict=True):
            assert torch.allclose(got.double(), want.double(), rtol=tolerance, atol=tolerance)


@pytest.mark.usefixtures("benchmarks_importable")
def test_benchmark_times_both_paths_and_checks_winograd_against_direct() -> None:
    from winograd import time_shape

    row = time_shape((8, 8, 9, 10), batch=2, rounds=1)
    assert row["direct_ms"] > 0 and row["winograd_ms"] > 0
    assert row["speedup"] == pytest.approx(row["direct_ms"] / row["winograd_ms"])
    assert row["error"] < 1e-5
