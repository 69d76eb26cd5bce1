"""The joint embedding's geometry after stage 1, read from each extractor's stage-1 dvclive folder.

Stage 1 logs, per epoch, the validation clips' mean pairwise cosine and effective rank of the tag
embeddings z_t and the audio embeddings z_m (``valid/zt_mean_cos``, ``valid/zt_erank``,
``valid/zm_mean_cos``, ``valid/zm_erank``); dvclive keeps the last epoch's values in
``<extractor>-stage1/metrics.json``. They show whether the pair loss spread the embeddings out or
collapsed them onto a few directions, which the AUCs alone do not. Runs older than these metrics lack
the keys: their values are None (shown as "n/a"); a missing folder or file is an error, because the
stage that should have written it did not run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jetatag.errors import StageError
from jetatag.extractors import EXTRACTOR_IDS
from jetatag.io import read_json_object

log = logging.getLogger(__name__)

GEOMETRY_KEYS = ("zt_mean_cos", "zt_erank", "zm_mean_cos", "zm_erank")
"""Stage-1 validation metrics (dvclive names ``valid/<key>``), in Table 1's column order."""

Geometry = dict[str, dict[str, float | None]]
"""Per extractor, the last stage-1 epoch's value of each of :data:`GEOMETRY_KEYS` (None: not logged)."""


def stage1_metrics_path(train_dir: Path, extractor: str) -> Path:
    """dvclive's latest-values file of ``extractor``'s stage 1 under ``train_dir`` (``reports/train``)."""
    return Path(train_dir) / f"{extractor}-stage1" / "metrics.json"


def _valid_value(doc: Mapping[str, Any], key: str) -> Any:
    """``valid/<key>`` of a dvclive metrics file: nested (``{"valid": {key: v}}``, dvclive's form) or flat."""
    nested = doc.get("valid")
    if isinstance(nested, Mapping) and key in nested:
        return nested[key]
    return doc.get(f"valid/{key}")


def read_stage1_geometry(path: Path) -> dict[str, float | None]:
    """The :data:`GEOMETRY_KEYS` values in the dvclive ``metrics.json`` at ``path``; None for an absent key."""
    if not path.parent.is_dir():
        raise StageError(f"{path.parent}: stage-1 dvclive folder not found; run stage 1 of this extractor first")
    doc = read_json_object(path, "stage-1 metrics", "dvclive writes it after each epoch; re-run stage 1")
    values: dict[str, float | None] = {}
    for key in GEOMETRY_KEYS:
        value = _valid_value(doc, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise StageError(f"{path}: valid/{key} is {value!r}, not a number")
        values[key] = None if value is None or not math.isfinite(value) else float(value)
    return values


def load_geometry(train_dir: Path) -> Geometry:
    """Stage-1 geometry of every extractor, from ``<train_dir>/<extractor>-stage1/metrics.json``."""
    geometry: Geometry = {}
    for extractor in EXTRACTOR_IDS:
        path = stage1_metrics_path(train_dir, extractor)
        geometry[extractor] = read_stage1_geometry(path)
        absent = [f"valid/{k}" for k, v in geometry[extractor].items() if v is None]
        if absent:
            log.warning("%s: no value for %s (a stage-1 run older than these metrics?); n/a", path, ", ".join(absent))
    return geometry
