"""Tests for jetatag.models.bn_relu: the fused BatchNorm → (+ skip) → (max-pool) → ReLU op against torch's layers."""

from __future__ import annotations

import copy

import numba
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jetatag.models import bn_relu
from jetatag.models.bn_relu import batch_norm_gate_relu, batch_norm_relu, batch_norm_relu_squeeze
from jetatag.models.common import MaxPool2dSafe, WaveDropout
from jetatag.models.samplecnn import SEGate

FUSED_EXTRACTORS = ("hcnn", "sincnet", "samplecnn", "samplecnn_se", "samplecnn_res", "samplecnn_rese")


@pytest.fixture(autouse=True)
def fuse_narrow_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the fused path for these small test maps too (in training only maps of 128+ channels take it)."""
    monkeypatch.setattr(bn_relu, "FUSED_FROM_CHANNELS", 1)


def channels_last(rng: np.random.Generator, shape: tuple[int, ...], *, offset: float = 0.0) -> torch.Tensor:
    """A float32 (B, C, F, T) map in channels-last memory that asks for gradients."""
    x = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32) + offset)
    return x.contiguous(memory_format=torch.channels_last).requires_grad_()


def batch_norm(channels: int, rng: np.random.Generator) -> nn.BatchNorm2d:
    """A training-mode BatchNorm2d with γ and β away from their 1 and 0 defaults."""
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, channels).astype(np.float32)))
        bn.bias.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, channels).astype(np.float32)))
    return bn


def ran_fused(out: torch.Tensor) -> bool:
    """Whether ``out`` came from one of the fused ops (its grad_fn is theirs, not torch's BatchNorm, pool or ReLU)."""
    return out.grad_fn is not None and type(out.grad_fn).__name__.startswith("_BatchNorm")


def torch_layers(
    x: torch.Tensor, bn: nn.BatchNorm2d, pool: MaxPool2dSafe | None, skip: torch.Tensor | None
) -> torch.Tensor:
    """relu(pool(bn(x) + skip)) as the blocks computed it before the fused op."""
    z = bn(x) if skip is None else skip + bn(x)
    return F.relu(z if pool is None else pool(z))


CASES = [  # (shape, pool, skip)
    ((4, 8, 1, 30), None, False),  # Sample-CNN's stem and SE blocks: BN → ReLU
    ((4, 8, 1, 31), (1, 3), False),  # basic block; the last sample falls outside every window
    ((4, 8, 7, 9), (2, 3), True),  # Harmonic-CNN's residual block; a row and no column left over
    ((4, 8, 1, 2), (1, 3), True),  # the window shrinks to fit a short input
]


@pytest.mark.parametrize(("shape", "pool", "with_skip"), CASES)
def test_fused_op_equals_torchs_layers(
    shape: tuple[int, int, int, int], pool: tuple[int, int] | None, with_skip: bool, rng: np.random.Generator
) -> None:
    x = channels_last(rng, shape, offset=3.0)  # a mean that dwarfs the spread, as after a conv with bias
    skip = channels_last(rng, shape) if with_skip else None
    bn = batch_norm(shape[1], rng)
    bn_torch = copy.deepcopy(bn)
    pool_layer = MaxPool2dSafe(pool) if pool else None
    inputs = [x, bn.weight, bn.bias] + ([skip] if skip is not None else [])
    out = batch_norm_relu(x, bn, pool=pool_layer, skip=skip)
    assert ran_fused(out)
    expected = torch_layers(x, bn_torch, pool_layer, skip)
    assert out.shape == expected.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    grad_out = torch.from_numpy(rng.standard_normal(tuple(out.shape), dtype=np.float32))
    torch_inputs = [x, bn_torch.weight, bn_torch.bias] + ([skip] if skip is not None else [])
    for got, want in zip(
        torch.autograd.grad(out, inputs, grad_out), torch.autograd.grad(expected, torch_inputs, grad_out), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(bn, name), getattr(bn_torch, name), rtol=1e-5, atol=1e-6)


def test_fused_dropout_draws_and_applies_wave_dropouts_mask(rng: np.random.Generator) -> None:
    x = channels_last(rng, (4, 8, 1, 30), offset=0.5)
    bn, dropout = batch_norm(8, rng), WaveDropout(0.2)
    bn_torch = copy.deepcopy(bn)
    torch.manual_seed(5)
    out = batch_norm_relu(x, bn, dropout=dropout)
    assert ran_fused(out)
    torch.manual_seed(5)
    expected = dropout(F.relu(bn_torch(x)))
    passed = F.relu(bn_torch(x)) > 0
    assert 0.1 < (out[passed] == 0).float().mean() < 0.3  # dropout took about p = 0.2 of what the ReLU passed
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(out == 0, expected == 0)  # the same mask
    grad_out = torch.from_numpy(rng.standard_normal(tuple(out.shape), dtype=np.float32))
    got = torch.autograd.grad(out, (x, bn.weight, bn.bias), grad_out)
    want = torch.autograd.grad(expected, (x, bn_torch.weight, bn_torch.bias), grad_out)
    for got_grad, want_grad in zip(got, want, strict=True):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [27, 29])  # 29: two samples no window reaches, which the squeeze still sums
def test_fused_squeeze_equals_torchs_layers(length: int, rng: np.random.Generator) -> None:
    x = channels_last(rng, (4, 8, 1, length), offset=1.0)
    bn, pool = batch_norm(8, rng), MaxPool2dSafe((1, 3))
    bn_torch = copy.deepcopy(bn)
    pooled, sums = batch_norm_relu_squeeze(x, bn, pool)
    assert ran_fused(pooled)
    y = F.relu(bn_torch(x))
    want_pooled, want_sums = pool(y), y.sum(dim=(2, 3))
    torch.testing.assert_close(pooled, want_pooled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sums, want_sums, rtol=1e-5, atol=1e-4)
    grad_pooled = torch.from_numpy(rng.standard_normal(tuple(pooled.shape), dtype=np.float32))
    grad_sums = torch.from_numpy(rng.standard_normal(tuple(sums.shape), dtype=np.float32))
    got = torch.autograd.grad((pooled, sums), (x, bn.weight, bn.bias), (grad_pooled, grad_sums))
    want = torch.autograd.grad((want_pooled, want_sums), (x, bn_torch.weight, bn_torch.bias), (grad_pooled, grad_sums))
    for got_grad, want_grad in zip(got, want, strict=True):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length", [27, 29])
def test_fused_gate_tail_equals_torchs_layers(length: int, rng: np.random.Generator) -> None:
    x = channels_last(rng, (4, 8, 1, length), offset=2.0)
    skip = channels_last(rng, (4, 8, 1, length))
    bn, pool = batch_norm(8, rng), MaxPool2dSafe((1, 3))
    torch.manual_seed(3)
    se = SEGate(8, ratio=2)
    bn_torch, se_torch = copy.deepcopy(bn), copy.deepcopy(se)
    out = batch_norm_gate_relu(x, bn, se, pool=pool, skip=skip)
    assert ran_fused(out)
    z = bn_torch(x)
    expected = F.relu(pool(skip + z * se_torch(z)))  # the Res+SE block's tail as torch's layers
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    grad_out = torch.from_numpy(rng.standard_normal(tuple(out.shape), dtype=np.float32))
    got = torch.autograd.grad(out, (x, bn.weight, bn.bias, skip, *se.parameters()), grad_out)
    want = torch.autograd.grad(expected, (x, bn_torch.weight, bn_torch.bias, skip, *se_torch.parameters()), grad_out)
    for got_grad, want_grad in zip(got, want, strict=True):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-5)
    for name in ("running_mean", "running_var"):
        torch.testing.assert_close(getattr(bn, name), getattr(bn_torch, name), rtol=1e-5, atol=1e-6)


def test_fused_gate_tail_leaves_frozen_gate_parameters_without_gradients(rng: np.random.Generator) -> None:
    x, skip = channels_last(rng, (4, 8, 1, 27), offset=1.0), channels_last(rng, (4, 8, 1, 27))
    bn, se = batch_norm(8, rng), SEGate(8, ratio=2)
    se.requires_grad_(False)
    batch_norm_gate_relu(x, bn, se, pool=MaxPool2dSafe((1, 3)), skip=skip).sum().backward()
    assert all(p.grad is None for p in se.parameters())
    assert x.grad is not None and skip.grad is not None and bn.weight.grad is not None


def test_narrow_maps_run_torchs_layers(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bn_relu, "FUSED_FROM_CHANNELS", 128)
    wide, narrow = channels_last(rng, (2, 128, 1, 9)), channels_last(rng, (2, 127, 1, 9))
    assert ran_fused(batch_norm_relu(wide, batch_norm(128, rng)))
    assert not ran_fused(batch_norm_relu(narrow, batch_norm(127, rng)))


def test_eval_mode_cuda_like_and_autocast_calls_run_torchs_layers(rng: np.random.Generator) -> None:
    x = channels_last(rng, (2, 4, 1, 12))
    bn = batch_norm(4, rng).eval()
    out = batch_norm_relu(x, bn, pool=MaxPool2dSafe((1, 3)))
    assert not ran_fused(out)
    assert torch.equal(out, torch_layers(x, bn, MaxPool2dSafe((1, 3)), None))
    bn.train()
    contiguous = x.detach().contiguous().requires_grad_()  # (B, C, F, T) layout: not the kernels' channels-last
    assert not ran_fused(batch_norm_relu(contiguous, bn))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not ran_fused(batch_norm_relu(x, bn))


def test_nan_in_a_channel_reaches_the_output_as_with_torch(rng: np.random.Generator) -> None:
    x = channels_last(rng, (2, 3, 1, 9)).detach()
    x[0, 1, 0, 4] = float("nan")
    bn = batch_norm(3, rng)
    out = batch_norm_relu(x, bn, pool=MaxPool2dSafe((1, 3)))
    expected = torch_layers(x, copy.deepcopy(bn), MaxPool2dSafe((1, 3)), None)
    assert torch.equal(out.isnan(), expected.isnan()) and out[:, 1].isnan().all()
    torch.testing.assert_close(out[:, [0, 2]], expected[:, [0, 2]], rtol=1e-5, atol=1e-5)


def test_one_value_per_channel_is_rejected_like_torch(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_relu(channels_last(rng, (1, 4, 1, 1)), batch_norm(4, rng))


def test_results_do_not_depend_on_the_thread_count(rng: np.random.Generator) -> None:
    x = channels_last(rng, (8, 16, 4, 600), offset=1.0)
    skip = channels_last(rng, (8, 16, 4, 600))
    grad_out = torch.from_numpy(rng.standard_normal((8, 16, 2, 200), dtype=np.float32))
    bn = batch_norm(16, rng)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            out = batch_norm_relu(x, bn, pool=MaxPool2dSafe((2, 3)), skip=skip)
            results.append([out, *torch.autograd.grad(out, (x, bn.weight, bn.bias, skip), grad_out)])
    finally:
        torch.set_num_threads(threads)
    for one_thread, two_threads in zip(*results, strict=True):
        assert torch.equal(one_thread, two_threads)


def test_kernels_leave_torchs_thread_count_alone(rng: np.random.Generator) -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        out = batch_norm_relu(channels_last(rng, (4, 8, 1, 30)), batch_norm(8, rng), pool=MaxPool2dSafe((1, 3)))
        out.sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert numba.threading_layer() == "workqueue"


@pytest.mark.usefixtures("benchmarks_importable")
@pytest.mark.parametrize("name", FUSED_EXTRACTORS)
def test_training_gradients_are_as_close_to_exact_as_torchs(name: str) -> None:
    from bn_relu import training_gradient_errors  # the benchmark's --accuracy measurement

    torch_error, fused_error = training_gradient_errors(name, width=0.125, batch=4)
    assert fused_error < max(2 * torch_error, 1e-4), (fused_error, torch_error)
