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

from jetatag.config import Params, Phase, TrainParams
from jetatag.data.dataset import EvalCrops, TrainCrops
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


def crop_data(
    params: Params, extractor: str, audio_dir: Path, device: torch.device
) -> tuple[TrainCrops, EvalCrops, DataLoader]:
    """Training crops and the validation loader at ``extractor``'s crop length (both stages train on these)."""
    train = params.train
    crop = params.model.crop_samples(extractor)
    train_set = TrainCrops(audio_dir, split="train", crop_samples=crop, seed=train.seed)
    valid_set = EvalCrops(audio_dir, split="valid", crop_samples=crop, n_crops=train.valid_crops)
    return train_set, valid_set, make_loader(valid_set, batch_size=train.batch_size, train=train, device=device)


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


def fit(
    task: Task,
    train_set: EpochData,
    *,
    phases: Sequence[Phase],
    train: TrainParams,
    device: torch.device,
    fingerprint: str,
    out_path: Path,
    save: Callable[[Path], None],
    live_dir: Path,
) -> list[dict[str, float]]:
    """Train ``task.model`` through the schedule ``phases``, then write the stage output with ``save(out_path)``.

    After every epoch the full state is written atomically to the resume file of ``out_path``; a run
    started again with the same ``fingerprint`` carries on from there. The resume file is removed once
    the output is written. Per-epoch metrics go to dvclive in ``live_dir`` and are returned.
    Raises :class:`StageError` when a loss turns NaN/inf, naming the epoch and step.
    """
    n_epochs = total_epochs(phases)
    resume_file = resume_path(out_path)
    log.info(
        "%s: %d epochs on %d train clips → %s (metrics in %s, resume file %s)",
        task.name,
        n_epochs,
        len(train_set),
        out_path,
        live_dir,
        resume_file,
    )
    task.model.to(device)
    groups = param_groups(task.model, conv_l2=train.conv_l2)
    generator = torch.Generator()
    loader = make_loader(train_set, batch_size=train.batch_size, train=train, device=device, generator=generator)
    if len(loader) == 0:
        raise StageError(
            f"{task.name}: the train split has {len(train_set)} clips, fewer than train.batch_size {train.batch_size}"
        )

    runs = optimizer_runs(phases, train.optimizer_state)  # phase → the phase whose optimizer it uses
    start, history, optimizer, optimizer_run, phase_started = 0, [], None, -1, -1
    state = load_resume(resume_file, expected_fingerprint=fingerprint, map_location=device)
    if state is not None:
        task.model.load_state_dict(state.model)
        start, history = state.epochs_done, state.history
        if start < n_epochs and runs[phase_index(phases, start)] == runs[state.phase]:
            optimizer_run = runs[state.phase]
            optimizer = make_optimizer(phases[state.phase], groups)
            optimizer.load_state_dict(state.optimizer)
        log.info("%s: resuming after epoch %d of %d from %s", task.name, start, n_epochs, resume_file)

    live_dir.mkdir(parents=True, exist_ok=True)
    with Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for record in history:  # a resumed run rebuilds the full curves (dvc repro may have deleted live_dir)
            _log_epoch(live, record)
        for epoch in range(start, n_epochs):
            index = phase_index(phases, epoch)
            phase = phases[index]
            if index != phase_started:
                if runs[index] != optimizer_run:
                    optimizer, optimizer_run = make_optimizer(phase, groups), runs[index]
                set_lr(optimizer, phase.lr)  # a carried optimizer keeps its momentum / moments at the new rate
                phase_started = index
                log.info(
                    "%s: phase %d from epoch %d: %s lr %g", task.name, index + 1, epoch + 1, phase.optimizer, phase.lr
                )
            model_seed, data_seed = epoch_seeds(train.seed, epoch)
            torch.manual_seed(model_seed)
            generator.manual_seed(data_seed)
            train_set.set_epoch(epoch)

            tic = time.perf_counter()
            task.model.train()  # a frozen extractor stays in eval mode (Tagger.freeze_extractor)
            train_metrics = _train_epoch(task, loader, optimizer, device, epoch=epoch, n_epochs=n_epochs)
            train_s = time.perf_counter() - tic
            task.model.eval()
            with torch.inference_mode():
                valid_metrics = task.validate()
            valid_s = time.perf_counter() - tic - train_s

            record = {"lr": phase.lr}
            record |= {f"train/{key}": value for key, value in train_metrics.items()}
            record |= {f"valid/{key}": value for key, value in valid_metrics.items()}
            history.append(record)
            _log_epoch(live, record)
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
            save_resume(
                resume_file,
                ResumeState(
                    fingerprint=fingerprint,
                    epochs_done=epoch + 1,
                    phase=index,
                    model=task.model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    history=history,
                ),
            )
    save(out_path)
    clear_resume(resume_file)
    log.info("%s: wrote %s", task.name, out_path)
    return history


def _train_epoch(
    task: Task,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    epoch: int,
    n_epochs: int,
) -> dict[str, float]:
    """One pass over ``loader``; returns the clip-weighted mean of each loss term."""
    sums: dict[str, float] = {}
    seen = 0
    n_steps = len(loader)
    desc = f"{task.name} {epoch + 1}/{n_epochs}"
    bar = progress(total=n_steps * loader.batch_size, desc=desc, unit="clip", leave=False)
    with bar:
        for step, (inputs, tags) in enumerate(loader):
            inputs, tags = to_device(inputs, device), to_device(tags, device)  # (B, L) crops or (B, 1024) h
            with autocast(device):
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
