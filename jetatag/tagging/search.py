"""Search an indexed collection with a tag query.

Two rankings: ``embedding`` (je models) ranks clips by the cosine between their z_m and the tag
encoder's z_t of the query's multi-hot tag vector, the retrieval that the joint embedding makes
possible; ``scores`` (any model) ranks by the mean classifier probability of the query tags.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from jetatag.errors import StageError
from jetatag.tagging.bundle import LoadedModel, load_model
from jetatag.tagging.index import CollectionIndex

log = logging.getLogger(__name__)

Ranking = Literal["embedding", "scores"]
RANKINGS: tuple[Ranking, ...] = ("embedding", "scores")


@dataclass(frozen=True)
class Hit:
    """One search result."""

    rank: int
    path: str
    score: float  # cosine (embedding) or mean probability (scores)


def parse_tags(query: str, tags: Sequence[str]) -> list[str]:
    """Split a comma-separated query into known tag names (case-insensitive, duplicates dropped).

    Raises :class:`StageError` for an empty query or an unknown tag, listing close matches.
    """
    by_lower = {t.lower(): t for t in tags}
    wanted = [part.strip() for part in query.split(",") if part.strip()]
    if not wanted:
        raise StageError("empty tag query; give comma-separated tags, e.g. --tags 'techno,fast'")
    chosen: list[str] = []
    for name in wanted:
        tag = by_lower.get(name.lower())
        if tag is None:
            close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(by_lower[c]) for c in close)}?" if close else ""
            raise StageError(f"unknown tag {name!r}{hint} (the model knows {len(tags)} tags: {', '.join(tags)})")
        if tag not in chosen:
            chosen.append(tag)
    return chosen


@torch.inference_mode()
def query_embedding(model: LoadedModel, query_tags: Sequence[str]) -> np.ndarray:
    """z_t (embed_dim,) of the multi-hot vector of ``query_tags`` under the model's tag encoder."""
    encoder = model.tagger.tag_encoder
    if encoder is None:
        raise StageError(
            f"{model.path}: {model.meta.variant} model has no tag encoder, so no joint embedding; use --by scores"
        )
    tags = list(model.meta.tags)
    multi_hot = torch.zeros(1, len(tags))  # (1, n_tags)
    multi_hot[0, [tags.index(t) for t in query_tags]] = 1.0
    encoder = encoder.cpu().eval()
    return encoder(multi_hot)[0].numpy()  # (embed_dim,), unit norm


def rank(values: np.ndarray, paths: Sequence[str], k: int) -> list[Hit]:
    """The ``k`` best clips by ``values`` (n_clips,), highest first (ties keep index order)."""
    order = np.argsort(-values, kind="stable")[:k]
    return [Hit(rank=i + 1, path=paths[j], score=float(values[j])) for i, j in enumerate(order)]


def resolve_ranking(index: CollectionIndex, by: Ranking | None) -> Ranking:
    """``by`` if given, else ``embedding`` for an index holding z_m and ``scores`` otherwise."""
    return by or ("embedding" if index.z_m is not None else "scores")


def search(
    index: CollectionIndex,
    query_tags: Sequence[str],
    *,
    k: int,
    by: Ranking | None = None,
    model_path: Path | None = None,
) -> list[Hit]:
    """Rank ``index`` clips for ``query_tags`` (already checked by :func:`parse_tags`).

    ``by`` defaults to ``embedding`` when the index holds z_m, else ``scores``. The embedding
    ranking needs the model that built the index: ``model_path`` or the path recorded in the
    index; a different model (SHA-256 mismatch) is refused, since its z_t would not match the z_m.
    """
    if k < 1:
        raise StageError(f"-k must be >= 1, got {k}")
    by = resolve_ranking(index, by)
    if by == "scores":
        columns = [index.tags.index(t) for t in query_tags]
        return rank(index.scores[:, columns].mean(axis=1), index.paths, k)
    if index.z_m is None:
        raise StageError(
            f"index built with a {index.info['variant']} model holds no joint embeddings (z_m); use --by scores"
        )
    if model_path is None:
        model_path = Path(index.info["model_path"])
        if not model_path.is_file():
            raise StageError(
                f"the model this index was built with, {model_path}, is not there any more; pass it with --model"
            )
    model = load_model(model_path)
    if model.sha256 != index.info["model_sha256"]:
        raise StageError(
            f"{model.path}: not the model this index was built with ({index.info['model_path']}, SHA-256 "
            f"{index.info['model_sha256'][:12]}…); pass that model with --model or rebuild the index"
        )
    z_t = query_embedding(model, query_tags)
    return rank(index.z_m @ z_t, index.paths, k)  # both unit norm: the dot product is the cosine
