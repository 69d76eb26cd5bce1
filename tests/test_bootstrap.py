"""Vectorised clip bootstrap: exact against scikit-learn on explicit resamples, seeded, paired."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from jetatag.evaluate.bootstrap import (
    macro_resamples,
    paired_difference,
    paper_resamples,
    percentile_ci,
    resample_counts,
    weighted_tag_scores,
)
from jetatag.evaluate.metrics import clip_histograms, macro_scores, tf_pr_auc, tf_roc_auc


def _clips(rng: np.random.Generator, n: int = 120, n_tags: int = 5) -> tuple[np.ndarray, np.ndarray]:
    tags = (rng.random((n, n_tags)) < 0.3).astype(np.uint8)
    scores = np.clip(0.6 * rng.random((n, n_tags)) + 0.3 * tags, 0, 1)
    return tags, np.round(scores, 2)  # rounding makes ties


def test_resample_counts_are_seeded_multiplicities() -> None:
    w = resample_counts(50, 30, seed=3)
    assert w.shape == (30, 50) and w.dtype == np.int32
    assert np.all(w.sum(axis=1) == 50)
    np.testing.assert_array_equal(w, resample_counts(50, 30, seed=3))
    assert not np.array_equal(w, resample_counts(50, 30, seed=4))


def test_weighted_statistics_equal_sklearn_on_duplicated_clips(rng: np.random.Generator) -> None:
    tags, scores = _clips(rng)
    weights = resample_counts(len(tags), 8, seed=0)
    for j in range(tags.shape[1]):
        pos = tags[:, j] != 0
        result = weighted_tag_scores(pos, scores[:, j], weights.T)
        for b, w in enumerate(weights):
            idx = np.repeat(np.arange(len(tags)), w)  # the explicit resample
            assert result["roc_auc"][b] == pytest.approx(roc_auc_score(pos[idx], scores[idx, j]), abs=1e-12)
            assert result["ap"][b] == pytest.approx(average_precision_score(pos[idx], scores[idx, j]), abs=1e-12)


def test_weighted_statistics_without_ties(rng: np.random.Generator) -> None:
    pos = rng.random(200) < 0.2
    scores = rng.random(200)  # all distinct: the fast path without tie groups
    weights = resample_counts(200, 3, seed=1)
    result = weighted_tag_scores(pos, scores, weights.T)
    idx = np.repeat(np.arange(200), weights[2])
    assert result["roc_auc"][2] == pytest.approx(roc_auc_score(pos[idx], scores[idx]), abs=1e-12)
    assert result["ap"][2] == pytest.approx(average_precision_score(pos[idx], scores[idx]), abs=1e-12)


def test_resample_without_positives_is_nan() -> None:
    pos = np.array([True, False, False])
    weights = np.array([[0, 2, 1], [1, 1, 1]])
    result = weighted_tag_scores(pos, np.array([0.9, 0.1, 0.2]), weights.T)
    assert np.isnan(result["roc_auc"][0]) and result["roc_auc"][1] == 1.0
    assert np.isnan(result["ap"][0]) and result["ap"][1] == 1.0


def test_unit_weights_reproduce_point_estimates(rng: np.random.Generator) -> None:
    tags, scores = _clips(rng)
    ones = np.ones((1, len(tags)), dtype=np.int32)
    macro = macro_scores(tags, scores, list("abcde"))
    boot = macro_resamples(tags, scores, ones)
    assert boot["roc_auc"][0] == pytest.approx(macro["roc_auc"], abs=1e-12)
    assert boot["ap"][0] == pytest.approx(macro["ap"], abs=1e-12)
    seg = np.clip(scores[:, None, :] + rng.normal(0, 0.05, (len(tags), 4, 5)), 0, 1)
    hists = clip_histograms(tags, seg)
    paper = paper_resamples(hists, ones)
    assert paper["roc_auc"][0] == pytest.approx(tf_roc_auc(hists.sum(0)))
    assert paper["pr_auc"][0] == pytest.approx(tf_pr_auc(hists.sum(0)))


def test_paper_resample_equals_histogram_of_duplicated_clips(rng: np.random.Generator) -> None:
    tags, scores = _clips(rng)
    seg = np.clip(scores[:, None, :] + rng.normal(0, 0.05, (len(tags), 3, 5)), 0, 1)
    weights = resample_counts(len(tags), 4, seed=1)
    boot = paper_resamples(clip_histograms(tags, seg), weights)
    for b, w in enumerate(weights):
        idx = np.repeat(np.arange(len(tags)), w)
        assert boot["roc_auc"][b] == pytest.approx(tf_roc_auc(clip_histograms(tags[idx], seg[idx]).sum(0)))


def test_macro_bootstrap_is_reproducible_and_ci_holds_point(rng: np.random.Generator) -> None:
    tags, scores = _clips(rng, n=300)
    point = macro_scores(tags, scores, list("abcde"))["roc_auc"]
    a = macro_resamples(tags, scores, resample_counts(300, 200, seed=5), chunk=64)
    b = macro_resamples(tags, scores, resample_counts(300, 200, seed=5))
    np.testing.assert_array_equal(a["roc_auc"], b["roc_auc"])
    lo, hi = percentile_ci(a["roc_auc"])
    assert lo < point < hi


def test_percentile_ci_ignores_undefined_resamples() -> None:
    assert percentile_ci(np.array([np.nan, 1.0, 1.0])) == [1.0, 1.0]
    assert all(np.isnan(percentile_ci(np.array([np.nan]))))


def test_paired_difference(rng: np.random.Generator) -> None:
    tags, scores = _clips(rng, n=300)
    better = np.clip(scores + 0.05 * tags, 0, 1)  # the same model, slightly better on the positives
    weights = resample_counts(300, 300, seed=2)
    base, improved = macro_resamples(tags, scores, weights), macro_resamples(tags, better, weights)
    p_base = macro_scores(tags, scores, list("abcde"))["roc_auc"]
    p_better = macro_scores(tags, better, list("abcde"))["roc_auc"]
    paired = paired_difference(p_base, p_better, base["roc_auc"], improved["roc_auc"])
    assert paired["diff"] == pytest.approx(p_better - p_base)
    assert 0 < paired["ci95"][0] < paired["diff"] < paired["ci95"][1]
    # unpaired (independent resamples) is far wider for correlated models
    independent = macro_resamples(tags, better, resample_counts(300, 300, seed=99))
    unpaired = percentile_ci(independent["roc_auc"] - base["roc_auc"])
    assert unpaired[1] - unpaired[0] > 2 * (paired["ci95"][1] - paired["ci95"][0])
    same = paired_difference(p_base, p_base, base["roc_auc"], base["roc_auc"])
    assert same == {"diff": 0.0, "ci95": [0.0, 0.0]}
    with pytest.raises(ValueError, match="equal resample counts"):
        paired_difference(0.0, 0.0, base["roc_auc"], base["roc_auc"][:10])
