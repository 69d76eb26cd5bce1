"""Stage ``synth``: the synthetic MTAT mirror that ``download`` reads when ``data.source`` is ``synthetic``.

The synthetic generator is its own stage so that ``download`` of a real mirror does not depend on its code:
an edit under ``jetatag/synth/`` reruns this stage, and ``download`` only when the mirror it wrote changed.
``dvc.yaml`` is static, so DVC runs the stage whatever the source; for a source other than ``synthetic``
it writes only :data:`UNUSED` (the same bytes every time, so ``download`` stays up to date). Snakemake
leaves the stage out of the DAG then (``workflow/rules/common.smk``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from jetatag.checksums import SHA256SUMS
from jetatag.config import SYNTHETIC_SOURCE, Params, SynthParams
from jetatag.io import write_json

log = logging.getLogger(__name__)

SYNTH_PARAMS = "synth_params.json"
"""Stamp in the mirror folder: the ``synth`` params it was generated from."""
UNUSED = "unused.json"
"""What the folder holds when ``data.source`` is not synthetic."""


def run_synth(params: Params, *, out_dir: Path) -> None:
    """Write the synthetic mirror into ``out_dir`` if ``data.source`` is ``synthetic``, else only a note."""
    out_dir = Path(out_dir)
    if params.data.source.strip() != SYNTHETIC_SOURCE:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / UNUSED, {"synthetic_mirror": False, "reason": "data.source is not 'synthetic'"})
        log.info("data.source is not synthetic: no synthetic mirror (wrote %s)", out_dir / UNUSED)
        return
    synthetic_mirror(params.synth, out_dir)


def synthetic_mirror(synth: SynthParams, folder: Path) -> Path:
    """Generate the synthetic mirror into ``folder`` unless one from the same ``synth`` params is already there."""
    wanted = asdict(synth)
    stamp = folder / SYNTH_PARAMS
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == wanted and (folder / SHA256SUMS).is_file():
        log.info("synthetic mirror %s is up to date", folder)
        return folder
    from jetatag.synth.mirror import write_mirror  # heavy (MIDI rendering): only when needed

    write_mirror(folder, n_clips=synth.n_clips, clip_seconds=synth.clip_seconds, seed=synth.seed, workers=synth.workers)
    write_json(stamp, wanted)
    return folder
