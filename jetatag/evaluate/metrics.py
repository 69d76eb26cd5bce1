"""Tagging metrics in both protocols: the paper's tf-style pooled AUCs and the literature's macro scores.

Paper protocol
    The paper's Table 1 is ``tf.keras.metrics.AUC()`` with its defaults over every (test segment, tag)
    pair pooled together ("micro"). That metric never sees the scores themselves, only how many
    positive and negative labels fall above each of 200 fixed thresholds
    ``[0 - 1e-7, 1/199, 2/199, ..., 198/199, 1 + 1e-7]``; a prediction counts as positive at a
    threshold when ``score > threshold``. The ROC area is the trapezoid rule over those 200 points and
    the PR area uses the Davis & Goadrich (2006) interpolation (:func:`tf_pr_auc`). Because only the
    per-threshold counts matter, everything here works on *threshold histograms*: counts of positive
    and negative labels per bucket between successive thresholds. Histograms add, so a bootstrap
    resample of clips is a weighted sum of per-clip histograms and stays exact.

Literature protocol
    Won et al. (2020) report macro ROC-AUC and average precision over the tags on clip-level scores
    (mean of the crops), computed exactly (scikit-learn). Tags with no positive or no negative test
    clip have no defined ROC-AUC; they are excluded and listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

NUM_THRESHOLDS = 200
"""``tf.keras.metrics.AUC`` default number of thresholds."""

KERAS_EPSILON = 1e-7
"""``keras.backend.epsilon()``: pushes the end thresholds just outside [0, 1]."""


def tf_thresholds(num_thresholds: int = NUM_THRESHOLDS) -> np.ndarray:
    """Keras's default thresholds: ``[-eps, 1/(T-1), ..., (T-2)/(T-1), 1 + eps]``, shape ``(T,)``."""
    if num_thresholds < 3:
        raise ValueError(f"num_thresholds must be > 2, got {num_thresholds}")
    inner = np.arange(1, num_thresholds - 1, dtype=np.float64) / (num_thresholds - 1)
    return np.concatenate([[0.0 - KERAS_EPSILON], inner, [1.0 + KERAS_EPSILON]])


def threshold_buckets(scores: np.ndarray, num_thresholds: int = NUM_THRESHOLDS) -> np.ndarray:
    """Index of the highest threshold strictly below each score (same shape as ``scores``, int).

    A score in bucket ``b`` counts as positive at thresholds ``0..b`` and negative above: the documented
    rule ``score > threshold``, evaluated exactly in float64. Keras's fast path for its evenly spaced
    default thresholds computes ``ceil(199 * score) - 1`` in float32 instead; the two differ by one bucket
    only for scores within float32 rounding of a threshold (about 1 in 70,000 uniform float32 scores),
    which moves an AUC by ~1e-8.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size and not (np.all(scores >= 0.0) and np.all(scores <= 1.0)):
        raise ValueError("scores must be probabilities in [0, 1] (no NaN)")
    # number of thresholds t with t < score, minus one; the first threshold is below 0, so >= 0
    return np.searchsorted(tf_thresholds(num_thresholds), scores, side="left") - 1


def threshold_histogram(
    labels: np.ndarray, scores: np.ndarray, *, groups: np.ndarray | None = None, n_groups: int = 1
) -> np.ndarray:
    """Counts of positive and negative labels per threshold bucket, optionally per group.

    Parameters
    ----------
    labels : array of 0/1 (any nonzero counts as positive), same shape as ``scores``
    scores : array of probabilities in [0, 1]
    groups : int array broadcastable to ``scores``, values in ``[0, n_groups)``, or None (one group)
    n_groups : int >= 1

    Returns
    -------
    hist : float64 [shape=(n_groups, 2, NUM_THRESHOLDS)] — ``hist[g, 0]`` positives, ``hist[g, 1]`` negatives
    """
    scores = np.asarray(scores)
    positive = np.broadcast_to(np.asarray(labels) != 0, scores.shape).ravel()
    bucket = threshold_buckets(scores).ravel()
    group = np.zeros_like(bucket) if groups is None else np.broadcast_to(groups, scores.shape).ravel()
    # one flat bin per (group, class, bucket); class 0 = positive label, 1 = negative label
    flat = (group * 2 + (~positive).astype(np.int64)) * NUM_THRESHOLDS + bucket
    counts = np.bincount(flat, minlength=n_groups * 2 * NUM_THRESHOLDS)
    return counts.reshape(n_groups, 2, NUM_THRESHOLDS).astype(np.float64)


def clip_histograms(labels: np.ndarray, segment_scores: np.ndarray) -> np.ndarray:
    """Per-clip threshold histograms of all (crop, tag) pairs of each clip.

    labels [shape=(n_clips, n_tags)], segment_scores [shape=(n_clips, n_crops, n_tags)]
    → [shape=(n_clips, 2, NUM_THRESHOLDS)]. Summing over clips gives the pooled histogram.
    """
    n_clips, n_crops, n_tags = segment_scores.shape
    if labels.shape != (n_clips, n_tags):
        raise ValueError(f"labels shape {labels.shape} does not match scores {segment_scores.shape}")
    clip_of = np.arange(n_clips)[:, None, None]  # (n_clips, 1, 1) → broadcast over crops and tags
    return threshold_histogram(labels[:, None, :], segment_scores, groups=clip_of, n_groups=n_clips)


def confusion_counts(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN, TN at every threshold from histograms ``(..., 2, T)``; each ``(..., T)``."""
    # a label is predicted positive at threshold t when its bucket is >= t: reverse cumulative sums
    tp = np.flip(np.cumsum(np.flip(hist[..., 0, :], -1), -1), -1)
    fp = np.flip(np.cumsum(np.flip(hist[..., 1, :], -1), -1), -1)
    fn = hist[..., 0, :].sum(-1, keepdims=True) - tp
    tn = hist[..., 1, :].sum(-1, keepdims=True) - fp
    return tp, fp, fn, tn


def _div_no_nan(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (TensorFlow's ``div_no_nan``)."""
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, 0.0, num / safe)


def tf_roc_auc(hist: np.ndarray) -> np.ndarray:
    """ROC-AUC as keras computes it: trapezoids between successive thresholds of (FPR, TPR).

    ``hist`` [shape=(..., 2, T)] → [shape=(...)]. With no positives (or negatives) the rates are 0
    everywhere (``div_no_nan``) and the area is 0, as keras returns.
    """
    tp, fp, fn, tn = confusion_counts(hist)
    tpr = _div_no_nan(tp, tp + fn)
    fpr = _div_no_nan(fp, fp + tn)
    heights = (tpr[..., :-1] + tpr[..., 1:]) / 2.0  # mid-point height of each interval
    return np.sum((fpr[..., :-1] - fpr[..., 1:]) * heights, axis=-1)


def tf_pr_auc(hist: np.ndarray) -> np.ndarray:
    """PR-AUC as keras's ``interpolate_pr_auc``: Davis–Goadrich interpolation between thresholds.

    Between two successive thresholds A (lower, more predicted positives) and B, TP and the number
    of predicted positives P = TP + FP are taken to vary linearly together, so TP = intercept +
    slope·P with slope = ΔTP/ΔP, and precision = TP/P. Integrating precision over recall = TP/n_pos
    gives, per interval, ``slope · (ΔTP + intercept · ln(P_A / P_B)) / n_pos``. As in keras, the log
    term is dropped when either P is 0 (the top interval), and every division by zero yields 0.

    ``hist`` [shape=(..., 2, T)] → [shape=(...)].
    """
    tp, fp, fn, _ = confusion_counts(hist)
    p = tp + fp
    d_tp = tp[..., :-1] - tp[..., 1:]  # TP_A - TP_B >= 0
    d_p = p[..., :-1] - p[..., 1:]  # P_A - P_B >= 0
    slope = _div_no_nan(d_tp, np.maximum(d_p, 0.0))
    intercept = tp[..., 1:] - slope * p[..., 1:]
    both_positive = (p[..., :-1] > 0) & (p[..., 1:] > 0)
    p_ratio = np.where(both_positive, _div_no_nan(p[..., :-1], np.maximum(p[..., 1:], 0.0)), 1.0)
    increment = _div_no_nan(slope * (d_tp + intercept * np.log(p_ratio)), np.maximum(tp[..., 1:] + fn[..., 1:], 0.0))
    return np.sum(increment, axis=-1)


def tf_auc(labels: np.ndarray, scores: np.ndarray, *, curve: str = "ROC") -> float:
    """``tf.keras.metrics.AUC(curve=curve)`` on all pairs of ``labels`` and ``scores`` pooled (micro)."""
    hist = threshold_histogram(labels, scores)[0]
    if curve == "ROC":
        return float(tf_roc_auc(hist))
    if curve == "PR":
        return float(tf_pr_auc(hist))
    raise ValueError(f"curve must be 'ROC' or 'PR', got {curve!r}")


def exact_micro(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Exact pooled ROC-AUC and average precision over all pairs (scikit-learn), or NaN if undefined."""
    y = (np.asarray(labels) != 0).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.all() or not y.any():
        return {"roc_auc": float("nan"), "ap": float("nan")}
    return {"roc_auc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s))}


def valid_tags(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of tags (columns) with at least one positive and one negative row."""
    positives = (np.asarray(labels) != 0).sum(axis=0)
    return (positives > 0) & (positives < labels.shape[0])


def macro_scores(labels: np.ndarray, scores: np.ndarray, tags: Sequence[str]) -> dict[str, Any]:
    """Macro ROC-AUC and AP over tags (scikit-learn), per-tag values and the excluded tags.

    labels, scores [shape=(n_clips, n_tags)]; ``tags`` names the columns. Tags without both a positive
    and a negative clip are excluded from the means and listed under ``excluded_tags``.
    """
    if labels.shape != scores.shape or labels.shape[1] != len(tags):
        raise ValueError(f"labels {labels.shape}, scores {scores.shape} and {len(tags)} tag names disagree")
    y = np.asarray(labels) != 0
    keep = valid_tags(y)
    if not keep.any():
        raise ValueError("no tag has both a positive and a negative clip: macro scores are undefined")
    per_tag: dict[str, dict[str, float]] = {}
    for j in np.flatnonzero(keep):
        per_tag[tags[j]] = {
            "roc_auc": float(roc_auc_score(y[:, j], scores[:, j])),
            "ap": float(average_precision_score(y[:, j], scores[:, j])),
            "n_pos": int(y[:, j].sum()),
        }
    return {
        "roc_auc": float(np.mean([v["roc_auc"] for v in per_tag.values()])),
        "ap": float(np.mean([v["ap"] for v in per_tag.values()])),
        "n_tags": int(keep.sum()),
        "excluded_tags": [tags[j] for j in np.flatnonzero(~keep)],
        "per_tag": per_tag,
    }
