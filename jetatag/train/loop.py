"""The epoch loop every training stage shares: schedule phases, resume, NaN guard, dvclive and progress.

A stage describes *what* it trains as a :class:`Task`; :func:`fit` runs the schedule. Determinism: all
randomness of epoch ``e`` (shuffling, DataLoader worker seeds, dropout) is drawn from generators seeded
with (``train.seed``, ``e``) at the start of the epoch, and training crops are a pure function of
(seed, epoch, clip), so an epoch computes the same thing whether or not the run was resumed before it and
whatever ``train.workers`` is. Resuming therefore only needs the model, the optimizer and the epoch count.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from dvclive import Live
from torch import nn
from torch.utils.data import DataLoader, Dataset

from jetatag.config import OptimizerState, Phase, Precision, TrainParams
from jetatag.errors import StageError
from jetatag.progress import progress
from jetatag.train.device import autocast, pin_memory, to_device
from jetatag.train.resume import ResumeState, clear_resume, load_resume, resume_path, save_resume
from jetatag.train.schedule import make_optimizer, optimizer_runs, param_groups, phase_index, set_lr, total_epochs

log = logging.getLogger(__name__)

Losses = dict[str, torch.Tensor]
"""Loss terms of one batch: ``"loss"`` is what is minimised, other keys are its logged components."""


class EpochData(Protocol):
    """Training data whose items depend on the epoch: random waveform crops or cached crop embeddings."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def set_epoch(self, epoch: int) -> None: ...


@dataclass
class Task:
    """What one stage trains: its model, its batch loss and its validation metrics."""

    name: str  # shown in logs and on the progress bar, e.g. "stage1 hcnn"
    model: nn.Module  # all state that is checkpointed; parameters with requires_grad are optimised
    losses: Callable[[torch.Tensor, torch.Tensor], Losses]  # (inputs (B, ...), tags (B, n_tags)) on device → terms
    validate: Callable[[], dict[str, float]]  # metrics on the valid split, called with the model in eval mode


def make_loader(
    dataset: Dataset | EpochData,
    *,
    batch_size: int,
    train: TrainParams,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A DataLoader with the run's worker count and pinning; a training loader (seeded by ``generator``) in
    ``train.batch_order``, an evaluation loader (no generator) in dataset order with every item.

    ``shuffled`` drops the ragged last batch, which keeps a batch of one from reaching BatchNorm in training
    mode; the clips it holds change from epoch to epoch, so over the run every clip is seen. ``annotation``
    (A21) keeps it, unless it would hold a single clip: that clip is then never trained on.
    """
    training = generator is not None
    shuffle = training and train.batch_order == "shuffled"
    lone_last = training and not shuffle and len(dataset) % batch_size == 1 and batch_size > 1
    if lone_last:
        log.warning("train.batch_order annotation: the last clip would form a batch of one (BatchNorm); dropped")
    # workers are not persistent: each epoch's fresh workers get a copy of the dataset after set_epoch()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle or lone_last,
        num_workers=train.workers,
        pin_memory=pin_memory(device),
        generator=generator,
    )


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """Independent seeds for epoch ``epoch``'s global torch RNG (dropout) and its DataLoader generator."""
    model_seed, data_seed = np.random.SeedSequence([seed, epoch]).generate_state(2)
    return int(model_seed), int(data_seed)


@dataclass(frozen=True)
class Outputs:
    """Where a run writes, and what identifies it so that a killed run carries on only its own work."""

    out_path: Path  # the stage output; its resume file lives beside it (resume_path)
    live_dir: Path  # dvclive metrics, one step per epoch
    fingerprint: str  # the run's identity (run_fingerprint): a resume file of another run is ignored
    save: Callable[[Path], None]  # writes the stage output once the schedule is done


def fit(
    task: Task,
    data: EpochData,
    *,
    phases: Sequence[Phase],
    train: TrainParams,
    device: torch.device,
    outputs: Outputs,
    l2_convs: nn.Module | None,
) -> list[dict[str, float]]:
    """Train ``task.model`` on ``data`` through the schedule ``phases``, then write the stage output.

    The convolution weights inside ``l2_convs`` (a part of ``task.model``, or None) take ``train.conv_l2``.

    After every epoch the full state is written atomically to the resume file of ``outputs.out_path``; a run
    started again with the same fingerprint carries on from there. The resume file is removed once the
    output is written. Per-epoch metrics go to dvclive in ``outputs.live_dir`` and are returned.
    Raises :class:`StageError` when a loss turns NaN/inf, naming the epoch and step.
    """
    n_epochs = total_epochs(phases)
    resume_file = resume_path(outputs.out_path)
    log.info(
        "%s: %d epochs on %d train clips → %s (metrics in %s, resume file %s)",
        task.name,
        n_epochs,
        len(data),
        outputs.out_path,
        outputs.live_dir,
        resume_file,
    )
    task.model.to(device)
    optimizers = _PhaseOptimizers(
        phases, param_groups(task.model, conv_l2=train.conv_l2, l2_convs=l2_convs), train.optimizer_state
    )
    generator = torch.Generator()
    loader = _train_loader(task, data, train=train, device=device, generator=generator)
    start, history = _restore(task, optimizers, resume_file, fingerprint=outputs.fingerprint, device=device)

    outputs.live_dir.mkdir(parents=True, exist_ok=True)
    with Live(dir=str(outputs.live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for record in history:  # a resumed run rebuilds the full curves (dvc repro may have deleted live_dir)
            _log_epoch(live, record)
        for epoch in range(start, n_epochs):
            phase, optimizer = optimizers.enter(epoch, task.name)
            _seed_epoch(train.seed, epoch, generator, data)
            record = _run_epoch(
                task, loader, optimizer, device, precision=train.precision, lr=phase.lr, epoch=epoch, n_epochs=n_epochs
            )
            history.append(record)
            _log_epoch(live, record)
            _write_checkpoint(
                resume_file, task, optimizers, outputs.fingerprint, epochs_done=epoch + 1, history=history
            )
    outputs.save(outputs.out_path)
    clear_resume(resume_file)
    log.info("%s: wrote %s", task.name, outputs.out_path)
    return history


class _PhaseOptimizers:
    """The optimizer of each epoch's phase: a new one at the start of each optimizer run (``optimizer_runs``),
    set to the phase's learning rate at the phase's first epoch (a carried one keeps its momentum / moments)."""

    def __init__(self, phases: Sequence[Phase], groups: list[dict[str, object]], state: OptimizerState) -> None:
        self.phases = phases
        self.groups = groups  # from param_groups
        self.runs = optimizer_runs(phases, state)  # phase → the phase whose optimizer it uses
        self.optimizer: torch.optim.Optimizer | None = None
        self.run = -1  # the optimizer run ``optimizer`` belongs to
        self.phase = -1  # the phase whose learning rate ``optimizer`` has; -1 until the next epoch sets it

    def restore(self, state: ResumeState) -> None:
        """Take back the saved optimizer, if the next epoch's phase still uses it."""
        done = state.epochs_done
        if done < total_epochs(self.phases) and self.runs[phase_index(self.phases, done)] == self.runs[state.phase]:
            self.run = self.runs[state.phase]
            self.optimizer = make_optimizer(self.phases[state.phase], self.groups)
            self.optimizer.load_state_dict(state.optimizer)

    def enter(self, epoch: int, name: str) -> tuple[Phase, torch.optim.Optimizer]:
        """The phase of 0-based ``epoch`` and its optimizer; logs the start of a phase under ``name``."""
        index = phase_index(self.phases, epoch)
        phase = self.phases[index]
        if index != self.phase:
            if self.runs[index] != self.run:
                self.optimizer, self.run = make_optimizer(phase, self.groups), self.runs[index]
            set_lr(self.optimizer, phase.lr)
            self.phase = index
            log.info("%s: phase %d from epoch %d: %s lr %g", name, index + 1, epoch + 1, phase.optimizer, phase.lr)
        return phase, self.optimizer


def _train_loader(
    task: Task, data: EpochData, *, train: TrainParams, device: torch.device, generator: torch.Generator
) -> DataLoader:
    """The training loader of ``data``, shuffled by ``generator``; :class:`StageError` when it has no batch."""
    loader = make_loader(data, batch_size=train.batch_size, train=train, device=device, generator=generator)
    if len(loader) == 0:
        raise StageError(
            f"{task.name}: the train split has {len(data)} clips, fewer than train.batch_size {train.batch_size}"
        )
    return loader


def _restore(
    task: Task, optimizers: _PhaseOptimizers, resume_file: Path, *, fingerprint: str, device: torch.device
) -> tuple[int, list[dict[str, float]]]:
    """Load this run's resume file, if any, into the model and ``optimizers``; the epochs done and their metrics."""
    state = load_resume(resume_file, expected_fingerprint=fingerprint, map_location=device)
    if state is None:
        return 0, []
    task.model.load_state_dict(state.model)
    optimizers.restore(state)
    n_epochs = total_epochs(optimizers.phases)
    log.info("%s: resuming after epoch %d of %d from %s", task.name, state.epochs_done, n_epochs, resume_file)
    return state.epochs_done, state.history


def _seed_epoch(seed: int, epoch: int, generator: torch.Generator, data: EpochData) -> None:
    """Draw all of epoch ``epoch``'s randomness from (``seed``, ``epoch``): dropout, shuffling and the crops."""
    model_seed, data_seed = epoch_seeds(seed, epoch)
    torch.manual_seed(model_seed)
    generator.manual_seed(data_seed)
    data.set_epoch(epoch)


def _run_epoch(
    task: Task,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    precision: Precision,
    lr: float,
    epoch: int,
    n_epochs: int,
) -> dict[str, float]:
    """Train one epoch at ``lr`` and validate; logs and returns the epoch's record (lr, train/*, valid/*)."""
    tic = time.perf_counter()
    task.model.train()  # a frozen extractor stays in eval mode (Tagger.freeze_extractor)
    train_metrics = _train_epoch(task, loader, optimizer, device, precision=precision, epoch=epoch, n_epochs=n_epochs)
    train_s = time.perf_counter() - tic
    task.model.eval()
    with torch.inference_mode():
        valid_metrics = task.validate()
    valid_s = time.perf_counter() - tic - train_s

    record = {"lr": lr}
    record |= {f"train/{key}": value for key, value in train_metrics.items()}
    record |= {f"valid/{key}": value for key, value in valid_metrics.items()}
    log.info(
        "%s: epoch %d/%d  %s  (train %.1f s = %.0f ms/step, valid %.1f s)",
        task.name,
        epoch + 1,
        n_epochs,
        "  ".join(f"{key} {value:.4g}" for key, value in record.items()),
        train_s,
        1000 * train_s / len(loader),
        valid_s,
    )
    return record


def _write_checkpoint(
    resume_file: Path,
    task: Task,
    optimizers: _PhaseOptimizers,
    fingerprint: str,
    *,
    epochs_done: int,
    history: list[dict[str, float]],
) -> None:
    """Write the state after ``epochs_done`` epochs (metrics ``history``) to the resume file, atomically."""
    state = ResumeState(
        fingerprint=fingerprint,
        epochs_done=epochs_done,
        phase=optimizers.phase,
        model=task.model.state_dict(),
        optimizer=optimizers.optimizer.state_dict(),
        history=history,
    )
    save_resume(resume_file, state)


def _train_epoch(
    task: Task,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    precision: Precision,
    epoch: int,
    n_epochs: int,
) -> dict[str, float]:
    """One pass over ``loader`` (forward passes in ``precision``); returns the clip-weighted mean of each loss term."""
    sums: dict[str, float] = {}
    seen = 0
    n_steps = len(loader)
    desc = f"{task.name} {epoch + 1}/{n_epochs}"
    bar = progress(total=n_steps * loader.batch_size, desc=desc, unit="clip", leave=False)
    with bar:
        for step, (inputs, tags) in enumerate(loader):
            inputs, tags = to_device(inputs, device), to_device(tags, device)  # (B, L) crops or (B, 1024) h
            with autocast(device, precision):
                losses = task.losses(inputs, tags)
            terms = torch.stack([value.detach() for value in losses.values()]).tolist()  # one device sync
            values = dict(zip(losses, terms, strict=True))
            if not all(math.isfinite(value) for value in values.values()):
                bad = ", ".join(f"{key}={value}" for key, value in values.items() if not math.isfinite(value))
                raise StageError(
                    f"{task.name}: non-finite loss ({bad}) at epoch {epoch + 1} step {step + 1} of {n_steps}; "
                    "lower the learning rate of this phase or check the input audio"
                )
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()

            batch = len(inputs)
            seen += batch
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value * batch
            bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}", refresh=False)
            bar.update(batch)
    return {key: total / seen for key, total in sums.items()}


def _log_epoch(live: Live, record: dict[str, float]) -> None:
    """One epoch's metrics as one dvclive step."""
    for key, value in record.items():
        live.log_metric(key, value)
    live.next_step()
