"""The run setup both training stages share: device, crop data, seed, checkpoint meta and the hand-over to fit.

A stage opens a :class:`Run` with :func:`start_run`, builds its model and :class:`~jetatag.train.loop.Task`,
and trains it with :meth:`Run.fit`; so both stages read their data, seed, describe their checkpoint and log
the same way, and a fact added to one stage's run cannot be missing from the other's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import DataLoader

from jetatag.config import Params, Phase
from jetatag.data.dataset import EvalCrops, TrainCrops
from jetatag.models.tagger import TaggerMeta
from jetatag.train.device import check_precision, resolve_device
from jetatag.train.loop import EpochData, Outputs, Task, fit, make_loader
from jetatag.train.schedule import l2_convs_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One training run of ``extractor``: its params, device, crop data and outputs."""

    params: Params
    extractor: str  # extractor id, a key of EXTRACTORS
    audio_dir: Path  # segmented audio folder (the stage's data dependency)
    out_path: Path  # the stage output (checkpoint)
    live_dir: Path  # dvclive metrics folder
    device: torch.device
    train_set: TrainCrops  # one random crop per train clip and epoch, at the extractor's crop length
    valid_set: EvalCrops  # ``train.valid_crops`` fixed crops per valid clip
    valid_loader: DataLoader  # valid_set in batches of ``train.batch_size`` clips

    def meta(self, variant: Literal["je", "noje"]) -> TaggerMeta:
        """What this run's checkpoint says about itself."""
        return TaggerMeta.from_training(
            extractor=self.extractor, variant=variant, model=self.params.model, audio=self.train_set
        )

    def fit(
        self,
        task: Task,
        data: EpochData,
        *,
        phases: Sequence[Phase],
        fingerprint: str,
        save: Callable[[Path], None],
        note: str = "",
    ) -> list[dict[str, float]]:
        """Log what runs on which data (``note`` adds to that line), then train ``task`` on ``data`` through
        ``phases`` into ``out_path`` with :func:`~jetatag.train.loop.fit`; its per-epoch metrics.

        ``train.conv_l2`` applies to the convs of ``task.model.extractor`` where the extractor's spec says so.
        """
        log.info(
            "%s: crop %d samples, %d valid clips of %s%s",
            task.name,
            self.train_set.crop_samples,
            len(self.valid_set),
            self.audio_dir,
            note,
        )
        outputs = Outputs(out_path=self.out_path, live_dir=self.live_dir, fingerprint=fingerprint, save=save)
        l2_convs = l2_convs_of(self.extractor, task.model.get_submodule("extractor"))
        return fit(
            task, data, phases=phases, train=self.params.train, device=self.device, outputs=outputs, l2_convs=l2_convs
        )


def start_run(params: Params, *, extractor: str, audio_dir: Path, out_path: Path, live_dir: Path) -> Run:
    """Resolve the device, open the crop data at ``extractor``'s crop length and seed the model initialisation.

    The global torch seed is set last, so whatever a stage builds next starts from ``train.seed``.
    """
    train = params.train
    audio_dir = Path(audio_dir)
    device = resolve_device(train.device)
    check_precision(device, train.precision)
    crop = params.model.crop_samples(extractor)
    train_set = TrainCrops(audio_dir, split="train", crop_samples=crop, seed=train.seed)
    valid_set = EvalCrops(audio_dir, split="valid", crop_samples=crop, n_crops=train.valid_crops)
    valid_loader = make_loader(valid_set, batch_size=train.batch_size, train=train, device=device)
    torch.manual_seed(train.seed)
    return Run(
        params=params,
        extractor=extractor,
        audio_dir=audio_dir,
        out_path=Path(out_path),
        live_dir=Path(live_dir),
        device=device,
        train_set=train_set,
        valid_set=valid_set,
        valid_loader=valid_loader,
    )
