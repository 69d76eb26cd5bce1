"""Training schedules: phases of (optimizer, learning rate, epochs) and the optimizer each phase uses.

A schedule is the tuple of :class:`jetatag.config.Phase` from ``train.stage1_schedule`` or
``train.stage2_schedule``. Each phase starts a fresh optimizer, as the authors' Keras code does when it
recompiles the model between phases (so Adam moments and SGD momentum do not carry over):
Adam, or SGD with Nesterov momentum 0.9, over the parameter groups of :func:`jetatag.models.param_groups`
(which carry each extractor's L2 penalty on its convolution kernels).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import SGD, Adam, Optimizer

from jetatag.config import Phase

SGD_MOMENTUM = 0.9
"""Nesterov momentum of the SGD phases (authors' code)."""


def total_epochs(phases: Sequence[Phase]) -> int:
    """Number of epochs the whole schedule runs."""
    return sum(phase.epochs for phase in phases)


def phase_index(phases: Sequence[Phase], epoch: int) -> int:
    """Index of the phase that runs 0-based ``epoch`` (phases of zero epochs are skipped)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    end = 0
    for index, phase in enumerate(phases):
        end += phase.epochs
        if epoch < end:
            return index
    raise ValueError(f"epoch {epoch} is past the schedule's {end} epochs")


def make_optimizer(phase: Phase, groups: list[dict[str, object]]) -> Optimizer:
    """A fresh optimizer for ``phase`` over ``groups`` (from :func:`jetatag.models.param_groups`)."""
    groups = [dict(group) for group in groups]  # torch writes its defaults (lr, ...) into the group dicts
    if phase.optimizer == "adam":
        return Adam(groups, lr=phase.lr)
    if phase.optimizer == "sgd":
        return SGD(groups, lr=phase.lr, momentum=SGD_MOMENTUM, nesterov=True)
    raise ValueError(f"unknown optimizer {phase.optimizer!r} (adam or sgd)")
