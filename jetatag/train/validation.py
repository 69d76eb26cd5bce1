"""Per-epoch validation on the valid split: a few fixed crops per clip, cheap enough to run every epoch.

Protocol: :class:`~jetatag.data.dataset.EvalCrops` with ``train.valid_crops`` crops per clip at hop
(len − L) // n (the test protocol's layout with fewer crops); clip scores are the mean of the crops'
sigmoid outputs; ROC-AUC is the macro average over the tags that have both positive and negative
valid clips (scikit-learn). The crops are fixed, so the figures are comparable from epoch to epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

from jetatag.train.device import to_device

log = logging.getLogger(__name__)


def crop_batches(loader: DataLoader, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of an EvalCrops loader on ``device``: crops (B, n_crops, L) and clip tags (B, n_tags)."""
    for crops, tags in loader:
        yield to_device(crops, device), to_device(tags, device)


def macro_roc_auc(tags: np.ndarray, scores: np.ndarray) -> float | None:
    """Macro ROC-AUC over the tags (columns) with both classes present; None when none has.

    tags : {0, 1} [shape=(n_clips, n_tags)]; scores : float [shape=(n_clips, n_tags)].
    """
    scored = tags.min(axis=0) != tags.max(axis=0)
    if not scored.any():
        log.warning("validation ROC-AUC undefined: no tag has both positive and negative valid clips")
        return None
    if not scored.all():
        log.debug("validation ROC-AUC over %d of %d tags (the others lack a class)", scored.sum(), scored.size)
    return float(roc_auc_score(tags[:, scored], scores[:, scored], average="macro"))
