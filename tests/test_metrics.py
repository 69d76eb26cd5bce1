"""tf.keras-style AUCs against hand-computed cases and scikit-learn; macro/micro scores against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from jetatag.evaluate.metrics import (
    NUM_THRESHOLDS,
    clip_histograms,
    exact_micro,
    macro_scores,
    tf_auc,
    tf_thresholds,
    threshold_buckets,
    threshold_histogram,
)


def test_thresholds_are_keras_defaults() -> None:
    t = tf_thresholds()
    assert t.shape == (NUM_THRESHOLDS,) == (200,)
    assert t[0] == -1e-7 and t[-1] == 1 + 1e-7
    np.testing.assert_allclose(t[1:-1], np.arange(1, 199) / 199, rtol=0, atol=0)


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, 17 / 199])
def test_all_equal_scores(value: float) -> None:
    # one bucket holds everything: the ROC is the chance diagonal and PR-AUC the prevalence
    labels = np.array([1, 0, 0, 0, 1, 0, 0, 0])
    scores = np.full(labels.shape, value)
    assert tf_auc(labels, scores) == pytest.approx(0.5, abs=1e-12)
    assert tf_auc(labels, scores, curve="PR") == pytest.approx(0.25, abs=1e-12)


def test_hand_computed_four_points() -> None:
    # ranks P N P N in distinct buckets: ROC = 3/4; PR by Davis–Goadrich interpolation, worked by hand:
    # (TP, P) goes (0,0) -> (1,1) -> (1,2) -> (2,3) -> (2,4); the intervals with a TP gain contribute
    # slope * (dTP + intercept * ln(P_A / P_B)) / n_pos = 1 * 1 / 2 and 1 * (1 - ln(3/2)) / 2
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    assert tf_auc(labels, scores) == pytest.approx(0.75, abs=1e-12)
    assert tf_auc(labels, scores, curve="PR") == pytest.approx(0.5 + (1 - math.log(1.5)) / 2, abs=1e-12)
    assert average_precision_score(labels, scores) == pytest.approx(5 / 6)  # the step rule differs


def test_tag_without_positives_gives_zero_like_keras() -> None:
    # keras divides with div_no_nan: no positives -> recall 0 at every threshold -> both areas 0
    scores = np.linspace(0, 1, 11)
    assert tf_auc(np.zeros(11), scores) == 0.0
    assert tf_auc(np.zeros(11), scores, curve="PR") == 0.0


def test_scores_exactly_on_thresholds_count_negative_there() -> None:
    inner = np.arange(1, 199) / 199
    # a score equal to threshold k is not > it: highest threshold strictly below is k - 1
    np.testing.assert_array_equal(threshold_buckets(inner), np.arange(0, 198))
    assert threshold_buckets(np.array([0.0, 1.0])).tolist() == [0, 198]
    # positive at 2/199, negative at 1/199: separated by the threshold 1/199 -> perfect areas
    assert tf_auc(np.array([1, 0]), np.array([2 / 199, 1 / 199])) == pytest.approx(1.0)
    assert tf_auc(np.array([1, 0]), np.array([2 / 199, 1 / 199]), curve="PR") == pytest.approx(1.0)
    # both exactly on 1/199 share a bucket: a tie
    assert tf_auc(np.array([1, 0]), np.array([1 / 199, 1 / 199])) == pytest.approx(0.5)


def test_buckets_match_keras_fast_path(rng: np.random.Generator) -> None:
    # keras's evenly-spaced path: ceil(199 * p) - 1 in float32, floored at 0 (an independent formula).
    # It can disagree by one bucket only where float32 rounding of 199 * p lands on a whole number.
    scores = rng.random(200_000).astype(np.float32)
    scores[:3] = [0.0, 1.0, 0.5]
    keras = np.maximum(np.ceil(scores * np.float32(NUM_THRESHOLDS - 1)) - 1, 0).astype(np.int64)
    ours = threshold_buckets(scores)
    differ = ours != keras
    assert differ.mean() < 1e-4
    assert np.all(np.abs(ours - keras)[differ] == 1)
    scaled = scores[differ].astype(np.float64) * (NUM_THRESHOLDS - 1)
    assert np.all(np.abs(scaled - np.round(scaled)) < 1e-4)  # within float32 rounding of a threshold


def test_scores_outside_unit_interval_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        threshold_buckets(np.array([0.2, 1.2]))
    with pytest.raises(ValueError):
        threshold_buckets(np.array([np.nan]))


def test_converges_to_exact_values_on_well_spread_scores(rng: np.random.Generator) -> None:
    # 200 buckets lose little when scores spread over (0, 1): |tf - exact| within stated tolerances
    n = 100_000
    labels = rng.random(n) < 0.1
    scores = 1 / (1 + np.exp(-(rng.normal(-2, 1.2, n) + 1.5 * labels)))
    assert tf_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=2e-4)
    assert tf_auc(labels, scores, curve="PR") == pytest.approx(average_precision_score(labels, scores), abs=5e-4)


def test_micro_pools_all_pairs(rng: np.random.Generator) -> None:
    labels = rng.random((300, 7)) < 0.2
    scores = rng.random((300, 7))
    assert tf_auc(labels, scores) == tf_auc(labels.ravel(), scores.ravel())
    micro = exact_micro(labels, scores)
    assert micro["roc_auc"] == pytest.approx(roc_auc_score(labels, scores, average="micro"))
    assert micro["ap"] == pytest.approx(average_precision_score(labels, scores, average="micro"))


def test_clip_histograms_sum_to_pooled(rng: np.random.Generator) -> None:
    tags = (rng.random((20, 5)) < 0.3).astype(np.uint8)
    seg = rng.random((20, 4, 5))
    hists = clip_histograms(tags, seg)
    assert hists.shape == (20, 2, NUM_THRESHOLDS)
    pooled = threshold_histogram(np.broadcast_to(tags[:, None, :], seg.shape), seg)[0]
    np.testing.assert_array_equal(hists.sum(axis=0), pooled)
    assert hists[:, 0].sum() == 4 * tags.sum()  # every crop carries its clip's tags


def test_macro_matches_sklearn(rng: np.random.Generator) -> None:
    labels = (rng.random((200, 6)) < 0.3).astype(np.uint8)
    scores = np.clip(rng.random((200, 6)) * 0.7 + 0.3 * labels, 0, 1)
    result = macro_scores(labels, scores, list("abcdef"))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, scores, average="macro"))
    assert result["ap"] == pytest.approx(average_precision_score(labels, scores, average="macro"))
    assert result["per_tag"]["c"]["roc_auc"] == pytest.approx(roc_auc_score(labels[:, 2], scores[:, 2]))
    assert result["excluded_tags"] == [] and result["n_tags"] == 6


def test_macro_excludes_tags_without_positives_or_negatives(rng: np.random.Generator) -> None:
    labels = (rng.random((50, 4)) < 0.5).astype(np.uint8)
    labels[:, 1] = 0  # no positive
    labels[:, 3] = 1  # no negative
    scores = rng.random((50, 4))
    result = macro_scores(labels, scores, ["a", "b", "c", "d"])
    assert result["excluded_tags"] == ["b", "d"]
    assert set(result["per_tag"]) == {"a", "c"}
    expected = np.mean([roc_auc_score(labels[:, j], scores[:, j]) for j in (0, 2)])
    assert result["roc_auc"] == pytest.approx(expected)
