"""Render ``jetatag tag`` results as a readable table, JSON or CSV (one row per file and tag)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Literal

from jetatag.tagging.tag import ClipScores, top_tags

OutputFormat = Literal["table", "json", "csv"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "csv")


def render(results: Sequence[ClipScores], tags: Sequence[str], *, top_k: int, fmt: OutputFormat) -> str:
    """Top-``top_k`` tags per file in format ``fmt``; ends with a newline."""
    if fmt == "table":
        return _table(results, tags, top_k)
    if fmt == "json":
        return _json(results, tags, top_k)
    if fmt == "csv":
        return _csv(results, tags, top_k)
    raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _table(results: Sequence[ClipScores], tags: Sequence[str], top_k: int) -> str:
    width = max(map(len, tags))
    blocks = []
    for clip in results:
        lines = [f"{clip.path}  ({clip.duration_s:.1f} s, {clip.n_crops} crop{'s' if clip.n_crops != 1 else ''})"]
        lines += [f"  {tag:<{width}}  {score:.3f}" for tag, score in top_tags(clip.probs, tags, top_k)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _json(results: Sequence[ClipScores], tags: Sequence[str], top_k: int) -> str:
    doc = [
        {
            "file": str(clip.path),
            "duration_s": round(clip.duration_s, 3),
            "n_crops": clip.n_crops,
            "tags": [{"tag": tag, "score": round(score, 6)} for tag, score in top_tags(clip.probs, tags, top_k)],
        }
        for clip in results
    ]
    return json.dumps(doc, indent=2) + "\n"


def _csv(results: Sequence[ClipScores], tags: Sequence[str], top_k: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "rank", "tag", "score"])
    for clip in results:
        for rank, (tag, score) in enumerate(top_tags(clip.probs, tags, top_k), start=1):
            writer.writerow([str(clip.path), rank, tag, f"{score:.6f}"])
    return out.getvalue()
