"""Bootstrap over test clips, vectorised: every resample is a vector of clip multiplicities.

Resampling clips with replacement is the same as weighting each clip by how often it was drawn, so a
resample of the pooled paper-protocol metric is a weighted sum of per-clip threshold histograms, and a
resample of a per-tag ROC-AUC or AP is a weighted rank statistic. Both are computed for all resamples
at once. Two models evaluated on the same clips with the same seed see the same resamples, which is
what makes their difference a *paired* bootstrap.
"""

from __future__ import annotations

import numpy as np

from jetatag.evaluate.metrics import tf_pr_auc, tf_roc_auc, valid_tags

CI_LEVEL = 0.95


def resample_counts(n_items: int, n_resamples: int, *, seed: int) -> np.ndarray:
    """Multiplicity of every item in each resample with replacement, [shape=(n_resamples, n_items)] int32."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_items, size=(n_resamples, n_items))
    # count draws per (resample, item) with one bincount over row-offset indices
    flat = drawn + (np.arange(n_resamples) * n_items)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items).astype(np.int32)


def percentile_ci(samples: np.ndarray, level: float = CI_LEVEL) -> list[float]:
    """Percentile interval ``[lo, hi]`` of bootstrap ``samples``, ignoring NaN (undefined resamples)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return [float("nan"), float("nan")]
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def paper_resamples(hists: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """tf-style pooled ROC-AUC and PR-AUC of every resample from per-clip histograms.

    hists [shape=(n_clips, 2, T)], weights [shape=(B, n_clips)] → ``{"roc_auc": (B,), "pr_auc": (B,)}``.
    """
    n_clips, _, n_thr = hists.shape
    pooled = (weights.astype(np.float64) @ hists.reshape(n_clips, -1)).reshape(-1, 2, n_thr)  # (B, 2, T)
    return {"roc_auc": tf_roc_auc(pooled), "pr_auc": tf_pr_auc(pooled)}


def _tie_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending sort order of ``scores`` and the start index of every run of equal scores in it."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return order, starts


def weighted_roc_auc(positive: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact ROC-AUC of one tag for every row of clip ``weights`` (Mann–Whitney with ties counted ½).

    positive, scores [shape=(n,)], weights [shape=(B, n)] → [shape=(B,)]; NaN where a resample has no
    positive or no negative clip. Equals scikit-learn's ``roc_auc_score`` on the duplicated clips.
    """
    order, starts = _tie_groups(scores)
    w = weights[:, order].astype(np.float64)  # (B, n) in ascending score order
    pos = positive[order]
    w_pos = np.add.reduceat(w * pos, starts, axis=1)  # (B, G) positive weight per tie group
    w_neg = np.add.reduceat(w * ~pos, starts, axis=1)  # (B, G) negative weight per tie group
    neg_below = np.cumsum(w_neg, axis=1) - w_neg  # negatives strictly below each group
    n_pos, n_neg = w_pos.sum(axis=1), w_neg.sum(axis=1)
    wins = np.sum(w_pos * (neg_below + 0.5 * w_neg), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def weighted_average_precision(positive: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact average precision of one tag for every row of clip ``weights``.

    AP = Σ over distinct scores, high to low, of (recall gain) × (precision at that score), exactly as
    scikit-learn's ``average_precision_score``. [shape=(B,)]; NaN where a resample has no positive.
    """
    order, starts = _tie_groups(-scores)  # descending scores
    w = weights[:, order].astype(np.float64)
    pos = positive[order]
    tp_gain = np.add.reduceat(w * pos, starts, axis=1)  # (B, G)
    fp_gain = np.add.reduceat(w * ~pos, starts, axis=1)
    tp, fp = np.cumsum(tp_gain, axis=1), np.cumsum(fp_gain, axis=1)
    n_pos = tp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), 0.0)
        return np.where(n_pos > 0, np.sum(tp_gain * precision, axis=1) / n_pos, np.nan)


def macro_resamples(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, *, chunk: int = 250) -> dict:
    """Macro ROC-AUC and AP over the tags valid on the full set, for every resample.

    labels, scores [shape=(n_clips, n_tags)], weights [shape=(B, n_clips)] → ``{"roc_auc": (B,), "ap": (B,)}``.
    A tag that a resample leaves without positives (or negatives) is left out of that resample's mean.
    Resamples are processed ``chunk`` at a time to bound memory.
    """
    positive = np.asarray(labels) != 0
    tags = np.flatnonzero(valid_tags(positive))
    n_resamples = weights.shape[0]
    roc = np.empty((n_resamples, tags.size))
    ap = np.empty((n_resamples, tags.size))
    for lo in range(0, n_resamples, chunk):
        w = weights[lo : lo + chunk]
        for k, j in enumerate(tags):
            roc[lo : lo + chunk, k] = weighted_roc_auc(positive[:, j], scores[:, j], w)
            ap[lo : lo + chunk, k] = weighted_average_precision(positive[:, j], scores[:, j], w)
    return {"roc_auc": _mean_defined(roc), "ap": _mean_defined(ap)}


def _mean_defined(values: np.ndarray) -> np.ndarray:
    """Row means over the non-NaN entries; NaN for a row with none (no warning, unlike ``np.nanmean``)."""
    defined = np.isfinite(values)
    count = defined.sum(axis=1)
    total = np.where(defined, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def paired_difference(point_a: float, point_b: float, samples_a: np.ndarray, samples_b: np.ndarray) -> dict:
    """Difference ``b - a`` with its paired percentile CI (both sample arrays from the same resamples)."""
    if samples_a.shape != samples_b.shape:
        raise ValueError(f"paired bootstrap needs equal resample counts, got {samples_a.shape} and {samples_b.shape}")
    return {"diff": float(point_b - point_a), "ci95": percentile_ci(samples_b - samples_a)}
