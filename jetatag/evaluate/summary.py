"""All evaluation figures of one model from its scores (both protocols, bootstrap CIs, retrieval mAP), written out.

Numpy only: the ``evaluate`` stage calls this after inference, and tests call it on synthetic scores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jetatag.evaluate.arrays import EvalArrays, save_arrays
from jetatag.evaluate.bootstrap import CI_LEVEL, draw_resamples, macro_resamples, paper_resamples, percentile_ci
from jetatag.evaluate.metrics import NUM_THRESHOLDS, clip_histograms, exact_micro, macro_scores, tf_pr_auc, tf_roc_auc
from jetatag.evaluate.retrieval import embedding_query_scores, mean_average_precision
from jetatag.io import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """Inference output over a split: per-crop scores and per-clip means."""

    tags: np.ndarray  # (n_clips, n_tags) uint8 ground truth
    segment_scores: np.ndarray  # (n_clips, n_crops, n_tags) sigmoid scores
    h: np.ndarray  # (n_clips, h_dim) mean of the crops' h
    z_m: np.ndarray | None = None  # (n_clips, embed_dim) mean of the crops' z_m, joint-embedding models only


def summarize_scores(
    *,
    tags: np.ndarray,
    segment_scores: np.ndarray,
    tag_names: Sequence[str],
    n_resamples: int,
    seed: int,
    z_m: np.ndarray | None = None,
    z_t: np.ndarray | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics of one model on the test clips, and the per-resample headline values.

    Parameters
    ----------
    tags : uint8 [shape=(n_clips, n_tags)] ground truth of every clip (each crop carries its clip's tags)
    segment_scores : float [shape=(n_clips, n_crops, n_tags)] sigmoid scores in [0, 1]
    tag_names : n_tags names
    n_resamples : int >= 0 bootstrap resamples over clips (0: no CIs)
    seed : bootstrap seed (``np.random.default_rng(seed)``)
    z_m, z_t : clip embeddings [shape=(n_clips, d)] and one-hot tag-query embeddings [shape=(n_tags, d)]
        of a joint-embedding model, or None

    Returns
    -------
    report : JSON-ready dict with ``paper``, ``exact_micro``, ``literature``, ``retrieval``, ``bootstrap``
    boot : ``{"paper_roc_auc": (B,), "paper_pr_auc": (B,), "literature_roc_auc": (B,), "literature_ap": (B,)}``
    """
    segment_scores = np.asarray(segment_scores, dtype=np.float32)
    n_clips, n_crops, _ = segment_scores.shape
    clip_scores = segment_scores.mean(axis=1)  # (n_clips, n_tags): literature protocol uses the crop mean

    # paper protocol: tf-style AUCs over every (segment, tag) pair, from per-clip threshold histograms
    hists = clip_histograms(tags, segment_scores)  # (n_clips, 2, T)
    pooled = hists.sum(axis=0)
    paper = {"roc_auc": float(tf_roc_auc(pooled)), "pr_auc": float(tf_pr_auc(pooled))}
    segment_tags = np.broadcast_to(tags[:, None, :], segment_scores.shape)
    literature = macro_scores(tags, clip_scores, tag_names)

    resamples = draw_resamples(n_clips, n_resamples, seed=seed)  # shared by every metric (and by paired models)
    log.info("bootstrap: %d resamples of %d clips", n_resamples, n_clips)
    boot_paper = paper_resamples(hists, resamples.counts)  # plain clip multiplicities
    boot_lit = macro_resamples(tags, clip_scores, resamples)  # per tag stratified, coupled to the same draws
    boot = {
        "paper_roc_auc": boot_paper["roc_auc"],
        "paper_pr_auc": boot_paper["pr_auc"],
        "literature_roc_auc": boot_lit["roc_auc"],
        "literature_ap": boot_lit["ap"],
    }

    # retrieval: single-tag queries ranked by classifier score, and by z_m . z_t for joint-embedding models
    retrieval: dict[str, Any] = {"classifier": mean_average_precision(tags, clip_scores, tag_names)}
    if z_m is not None and z_t is not None:
        retrieval["joint_embedding"] = mean_average_precision(tags, embedding_query_scores(z_m, z_t), tag_names)

    report = {
        "paper": {
            **paper,
            "ci95": {m: percentile_ci(boot[f"paper_{m}"], estimate=paper[m]) for m in ("roc_auc", "pr_auc")},
            "pooling": "micro over (segment, tag) pairs",
            "n_pairs": int(segment_scores.size),
            "num_thresholds": NUM_THRESHOLDS,
        },
        "exact_micro": exact_micro(segment_tags, segment_scores),
        "literature": {
            "roc_auc": literature["roc_auc"],
            "ap": literature["ap"],
            "ci95": {m: percentile_ci(boot[f"literature_{m}"], estimate=literature[m]) for m in ("roc_auc", "ap")},
            "pooling": "macro over tags, clip scores = mean of crops",
            "n_tags": literature["n_tags"],
            "excluded_tags": literature["excluded_tags"],
            "per_tag": literature["per_tag"],
        },
        "retrieval": retrieval,
        "bootstrap": {
            "unit": "clip",
            "resamples": n_resamples,
            "seed": seed,
            "level": CI_LEVEL,
            "method": "percentile, widened to contain the estimate where it does not",
            "literature_resampling": "stratified per tag (fixed tag set), coupled to the clip resamples",
        },
        "n_test_clips": n_clips,
        "n_crops": n_crops,
    }
    return json_safe(report), boot


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so the JSON stays standard."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_evaluation(
    *,
    out_json: Path,
    out_arrays: Path,
    header: Mapping[str, Any],
    scored: Scored,
    clip_ids: np.ndarray,
    tag_names: Sequence[str],
    z_t: np.ndarray | None,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Summarize ``scored`` and write the metrics JSON (``header`` first) and the arrays file; return the JSON."""
    report, boot = summarize_scores(
        tags=scored.tags,
        segment_scores=scored.segment_scores,
        tag_names=tag_names,
        n_resamples=n_resamples,
        seed=seed,
        z_m=scored.z_m,
        z_t=z_t,
    )
    save_arrays(
        out_arrays,
        EvalArrays(
            clip_ids=clip_ids,
            tag_names=list(tag_names),
            tags=scored.tags,
            segment_scores=scored.segment_scores,
            clip_scores=np.asarray(scored.segment_scores, dtype=np.float32).mean(axis=1),
            h=scored.h,
            boot=boot,
            bootstrap_seed=seed,
            z_m=scored.z_m,
            z_t=z_t,
        ),
    )
    record = {**header, **report}
    write_json(out_json, record)
    return record
