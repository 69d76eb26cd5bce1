"""benchmarks/train_step.py: the step it times is the step training takes."""

from __future__ import annotations

import pytest
import torch

from jetatag.config import Phase
from jetatag.train.schedule import make_optimizer


@pytest.mark.usefixtures("benchmarks_importable")
def test_the_timed_step_updates_weights_with_the_optimizer_training_builds() -> None:
    """A stand-in optimizer (torch's per-tensor Adam where training runs the fused one) would time another step."""
    from train_step import training_optimizer

    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(8, 3)), torch.nn.Parameter(torch.randn(8))]
    timed = training_optimizer(weights)
    trained = make_optimizer(Phase(optimizer="adam", lr=1e-4, epochs=1), [{"params": weights}])
    assert type(timed) is type(trained)
    assert timed.defaults == trained.defaults
    assert timed.defaults["fused"] is True

    for weight in weights:
        weight.grad = torch.ones_like(weight)
    before = [weight.detach().clone() for weight in weights]
    timed.step()
    for weight, old in zip(weights, before, strict=True):  # Adam's first step: lr · sign(grad)
        torch.testing.assert_close(weight - old, torch.full_like(old, -1e-4), rtol=0, atol=1e-6)  # ulps of |w| ~ 2
