"""Training schedules: phases of (optimizer, learning rate, epochs) and the optimizer each phase uses.

A schedule is the tuple of :class:`jetatag.config.Phase` from ``train.stage1_schedule`` or
``train.stage2_schedule``. With ``train.optimizer_state: fresh`` each phase starts a fresh optimizer (Adam,
or SGD with Nesterov momentum 0.9), so Adam moments and SGD momentum do not carry over; with ``carry``
consecutive phases of one optimizer kind share it and only change its learning rate, as the authors' code
keeps one SGD object per stage whose learning rate is re-assigned (FIDELITY.md). Their sharing of one Adam
between JE stages 1 and 2 is not reproduced.
The L2 penalty (``train.conv_l2``) applies to the convolution weights of the extractors on which the authors
declare one (Sample-CNN family, Music-SincNet).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from torch.optim import SGD, Adam, Optimizer

from jetatag.config import OptimizerState, Phase
from jetatag.extractors import extractor_spec

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


def optimizer_runs(phases: Sequence[Phase], state: OptimizerState) -> list[int]:
    """For each phase, the index of the phase whose optimizer it uses: its own (``fresh``), or with ``carry`` the
    first of the run of consecutive phases of the same optimizer kind it belongs to."""
    runs: list[int] = []
    for index, phase in enumerate(phases):
        carried = state == "carry" and index > 0 and phases[index - 1].optimizer == phase.optimizer
        runs.append(runs[-1] if carried else index)
    return runs


def set_lr(optimizer: Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate, keeping the optimizer's state (momentum, moments)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def l2_convs_of(extractor: str, module: nn.Module) -> nn.Module | None:
    """``module``, the built extractor ``extractor``, if the authors put L2 on its convs (its spec's
    ``conv_l2_regularised``), else None: the ``l2_convs`` of :func:`param_groups`."""
    return module if extractor_spec(extractor).conv_l2_regularised else None


def param_groups(model: nn.Module, *, conv_l2: float, l2_convs: nn.Module | None) -> list[dict[str, object]]:
    """Trainable parameters of ``model`` in two groups: convolution weights with L2 decay, the rest without.

    ``conv_l2`` is the Keras ``l2()`` coefficient (loss += conv_l2 · Σw²), whose gradient 2·conv_l2·w is
    torch's ``weight_decay = 2 · conv_l2``. Only the convs inside ``l2_convs`` decay: the extractor where its
    spec says the authors regularise it (``conv_l2_regularised``), else None. Frozen parameters are left out.
    """
    regularised = (
        {id(conv) for conv in l2_convs.modules() if isinstance(conv, nn.modules.conv._ConvNd)}
        if l2_convs is not None
        else set()
    )
    decay, rest, seen = [], [], set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (decay if id(module) in regularised and name == "weight" else rest).append(param)
    if not seen:
        raise ValueError("model has no trainable parameters")
    return [{"params": decay, "weight_decay": 2.0 * conv_l2}, {"params": rest, "weight_decay": 0.0}]


def make_optimizer(phase: Phase, groups: list[dict[str, object]]) -> Optimizer:
    """A fresh optimizer for ``phase`` over ``groups`` (from :func:`param_groups`).

    torch's fused kernels update all parameters in one op (CPU and CUDA): Adam's step over Music-SincNet's 134
    demo-width tensors took 3 ms instead of 12 (2 cores), the per-tensor loop's overhead.
    """
    groups = [dict(group) for group in groups]  # torch writes its defaults (lr, ...) into the group dicts
    if phase.optimizer == "adam":
        return Adam(groups, lr=phase.lr, fused=True)
    if phase.optimizer == "sgd":
        return SGD(groups, lr=phase.lr, momentum=SGD_MOMENTUM, nesterov=True, fused=True)
    raise ValueError(f"unknown optimizer {phase.optimizer!r} (adam or sgd)")
