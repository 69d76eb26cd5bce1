"""Entry functions of the tagging tools (``export``, ``tag``, ``index``, ``search``), one per command.

Each takes explicit paths and options and returns what the command prints (the CLI writes it to
stdout); problems are logged to stderr or raised as :class:`StageError`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from jetatag.errors import StageError
from jetatag.tagging.audio import find_audio
from jetatag.tagging.bundle import LoadedModel, export_bundle, load_model
from jetatag.tagging.formats import OutputFormat, render
from jetatag.tagging.index import build_index, read_index
from jetatag.tagging.search import Ranking, parse_tags, resolve_ranking, search
from jetatag.tagging.tag import ClipScores, score_files

log = logging.getLogger(__name__)


def run_export(model_path: Path, out_path: Path) -> str:
    """Bundle a training checkpoint into one ``.jetatag`` file; return a one-line summary."""
    manifest = export_bundle(model_path, out_path)
    size_mb = Path(out_path).stat().st_size / 2**20
    return (
        f"{out_path}: {manifest['extractor']}-{manifest['variant']}, {len(manifest['tags'])} tags, "
        f"{manifest['sample_rate']} Hz, crop {manifest['crop_samples']} samples, {size_mb:.1f} MiB\n"
    )


def run_tag(
    model_path: Path,
    paths: Sequence[Path],
    *,
    top_k: int,
    fmt: OutputFormat,
    hop_s: float | None,
    batch_size: int,
    device: str,
) -> str:
    """Tag every audio file under ``paths``; return the rendered top-k tags of the files that could be read.

    Unreadable or missing files are logged and skipped; :class:`StageError` only when none was tagged.
    """
    if top_k < 1:
        raise StageError(f"--top-k must be >= 1, got {top_k}")
    model = load_model(model_path)
    files, missing = find_audio(paths)
    for path in missing:
        log.warning("skipped %s: no such file or folder", path)
    clips = [
        r
        for r in score_files(
            model, files, hop_samples=_hop_samples(model, hop_s), batch_size=batch_size, device=_device(device)
        )
        if isinstance(r, ClipScores)
    ]
    n_inputs = len(files) + len(missing)
    if not clips:
        raise StageError(f"none of the {n_inputs} input paths could be tagged (see the messages above)")
    if len(clips) < n_inputs:
        log.warning("tagged %d of %d inputs; %d skipped", len(clips), n_inputs, n_inputs - len(clips))
    return render(clips, model.meta.tags, top_k=top_k, fmt=fmt)


def run_index(
    model_path: Path, paths: Sequence[Path], *, out_path: Path, hop_s: float | None, batch_size: int, device: str
) -> str:
    """Index every audio file under ``paths`` into parquet ``out_path``; return a one-line summary."""
    model = load_model(model_path)
    files, missing = find_audio(paths)
    for path in missing:
        log.warning("skipped %s: no such file or folder", path)
    if not files:
        raise StageError(f"no audio files found under {', '.join(map(str, paths))}")
    n = build_index(
        model,
        files,
        out_path=out_path,
        hop_samples=_hop_samples(model, hop_s),
        batch_size=batch_size,
        device=_device(device),
    )
    kind = "z_m + scores" if model.tagger.projection is not None else "scores only (noje model)"
    return f"{out_path}: {n} clips indexed ({kind})\n"


def run_search(index_path: Path, query: str, *, k: int, by: Ranking | None, model_path: Path | None) -> str:
    """Rank the indexed clips for the comma-separated tag ``query``; return a ranked table."""
    index = read_index(index_path)
    query_tags = parse_tags(query, index.tags)
    hits = search(index, query_tags, k=k, by=by, model_path=model_path)
    label = "cosine" if resolve_ranking(index, by) == "embedding" else "mean prob"
    lines = [f"query: {', '.join(query_tags)}", f"{'rank':>4}  {label:>9}  path"]
    lines += [f"{hit.rank:>4}  {hit.score:>9.4f}  {hit.path}" for hit in hits]
    return "\n".join(lines) + "\n"


def _hop_samples(model: LoadedModel, hop_s: float | None) -> int | None:
    """``--hop`` in seconds → samples at the model's rate (None keeps hop = crop length)."""
    if hop_s is None:
        return None
    hop = round(hop_s * model.meta.sample_rate)
    if hop < 1:
        raise StageError(f"--hop {hop_s} s is shorter than one sample at {model.meta.sample_rate} Hz")
    return hop


def _device(name: str) -> torch.device:
    """Parse ``--device`` and check that it is usable here."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise StageError(f"--device {name!r}: {err}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StageError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
    return device
