"""Vectorised clip bootstrap: exact against scikit-learn on explicit resamples, seeded, paired, stratified per tag."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from jetatag.evaluate.bootstrap import (
    ClipResamples,
    draw_resamples,
    macro_resamples,
    paired_difference,
    paper_resamples,
    percentile_ci,
    resample_counts,
    stratified_counts,
    weighted_tag_scores,
)
from jetatag.evaluate.metrics import clip_histograms, macro_scores, tf_pr_auc, tf_roc_auc, valid_tags
from jetatag.evaluate.summary import summarize_scores


def _clips(rng: np.random.Generator, n: int = 120, n_tags: int = 5) -> tuple[np.ndarray, np.ndarray]:
    tags = (rng.random((n, n_tags)) < 0.3).astype(np.uint8)
    scores = np.clip(0.6 * rng.random((n, n_tags)) + 0.3 * tags, 0, 1)
    return tags, np.round(scores, 2)  # rounding makes ties


def _rare_tag_set(n_crops: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """20 clips: 3 common tags scored well, 5 rare tags (one positive clip each) whose positive scores low.

    Returns tags uint8 (20, 8) and segment scores (20, n_crops, 8). A plain clip resample leaves each rare
    tag out ~36 % of the time, and dropping a badly scored tag raises the macro mean.
    """
    rng = np.random.default_rng(7)
    n = 20
    common = rng.random((n, 3)) < 0.4
    rare = np.zeros((n, 5), dtype=bool)
    rare[[1, 4, 7, 10, 13], np.arange(5)] = True
    tags = np.hstack([common, rare]).astype(np.uint8)
    clip = np.clip(0.6 * rng.random(tags.shape) + 0.35 * tags, 0, 1)
    clip[:, 3:] = np.where(rare, 0.2, rng.random((n, 5)))  # the rare tag's positive ranks low
    seg = np.clip(clip[:, None, :] + rng.normal(0, 0.05, (n, n_crops, tags.shape[1])), 0, 1)
    return tags, seg


def _unstratified_macro(tags: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """The former literature bootstrap: plain clip resamples, each resample's mean over the tags defined in it."""
    positive = tags != 0
    per_tag = [
        weighted_tag_scores(positive[:, j], scores[:, j], np.ascontiguousarray(counts.T))
        for j in np.flatnonzero(valid_tags(positive))
    ]
    return {k: np.nanmean([r[k] for r in per_tag], axis=0) for k in ("roc_auc", "ap")}


def _contains(samples: np.ndarray, estimate: float) -> bool:
    """Whether the raw 95 % percentile interval of ``samples`` (no safeguard) contains ``estimate``."""
    lo, hi = np.percentile(samples[np.isfinite(samples)], [2.5, 97.5])
    return bool(lo <= estimate <= hi)


def test_resample_counts_are_seeded_multiplicities() -> None:
    w = resample_counts(50, 30, seed=3)
    assert w.shape == (30, 50) and w.dtype == np.int32
    assert np.all(w.sum(axis=1) == 50)
    np.testing.assert_array_equal(w, resample_counts(50, 30, seed=3))
    assert not np.array_equal(w, resample_counts(50, 30, seed=4))
    resamples = draw_resamples(50, 30, seed=3)
    np.testing.assert_array_equal(resamples.counts, w)
    np.testing.assert_array_equal(resamples.counts_by_clip, w.T)
    assert np.all((resamples.reserve >= 0) & (resamples.reserve < 1))


def test_stratified_counts_keep_each_tags_class_sizes() -> None:
    resamples = draw_resamples(30, 20_000, seed=1)
    positive = np.zeros(30, dtype=bool)
    positive[[3, 7, 11]] = True
    counts = stratified_counts(positive, resamples)  # (30, B)
    assert counts.shape == (30, 20_000) and counts.dtype == np.int32 and counts.min() >= 0
    assert np.all(counts[positive].sum(axis=0) == 3) and np.all(counts[~positive].sum(axis=0) == 27)
    # multinomial over each class: mean multiplicity 1, variance 1 - 1/m (m = class size), classes independent
    np.testing.assert_allclose(counts.mean(axis=1), 1.0, atol=0.03)
    np.testing.assert_allclose(counts[positive].var(axis=1), 1 - 1 / 3, atol=0.03)
    np.testing.assert_allclose(counts[~positive].var(axis=1), 1 - 1 / 27, atol=0.04)
    assert abs(np.corrcoef(counts[3], counts[0])[0, 1]) < 0.03
    # coupled to the clip resample: where it drew exactly 3 positives, the stratified resample is that resample
    exact = resamples.counts[:, positive].sum(axis=1) == 3
    np.testing.assert_array_equal(counts[:, exact], resamples.counts_by_clip[:, exact])
    assert np.corrcoef(counts[0], resamples.counts[:, 0])[0, 1] > 0.9
    with pytest.raises(ValueError, match="one positive and one negative"):
        stratified_counts(np.ones(30, dtype=bool), resamples)


def test_weighted_statistics_equal_sklearn_on_duplicated_clips(rng: np.random.Generator) -> None:
    tags, scores = _clips(rng)
    resamples = draw_resamples(len(tags), 8, seed=0)
    for j in range(tags.shape[1]):
        pos = tags[:, j] != 0
        for weights in (resamples.counts_by_clip, stratified_counts(pos, resamples)):  # (n, B) each
            result = weighted_tag_scores(pos, scores[:, j], weights)
            for b in range(weights.shape[1]):
                idx = np.repeat(np.arange(len(tags)), weights[:, b])  # the explicit resample
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
    n = len(tags)
    # the identity resample (every clip drawn once) is its own stratified resample for every tag
    identity = ClipResamples(draws=np.arange(n)[None, :], reserve=np.zeros((1, n)))
    macro = macro_scores(tags, scores, list("abcde"))
    boot = macro_resamples(tags, scores, identity)
    assert boot["roc_auc"][0] == pytest.approx(macro["roc_auc"], abs=1e-12)
    assert boot["ap"][0] == pytest.approx(macro["ap"], abs=1e-12)
    seg = np.clip(scores[:, None, :] + rng.normal(0, 0.05, (n, 4, 5)), 0, 1)
    hists = clip_histograms(tags, seg)
    paper = paper_resamples(hists, identity.counts)
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
    a = macro_resamples(tags, scores, draw_resamples(300, 200, seed=5), chunk=7)
    b = macro_resamples(tags, scores, draw_resamples(300, 200, seed=5))
    np.testing.assert_array_equal(a["roc_auc"], b["roc_auc"])  # chunking does not change the resamples
    lo, hi = percentile_ci(a["roc_auc"], estimate=point)
    assert lo < point < hi
    with pytest.raises(ValueError, match="resamples of 299 clips"):
        macro_resamples(tags, scores, draw_resamples(299, 2, seed=5))


def test_percentile_ci_ignores_undefined_resamples() -> None:
    assert percentile_ci(np.array([np.nan, 1.0, 1.0]), estimate=1.0) == [1.0, 1.0]
    assert all(np.isnan(percentile_ci(np.array([np.nan]), estimate=0.5)))
    assert percentile_ci(np.array([]), estimate=0.5) == pytest.approx([np.nan, np.nan], nan_ok=True)


def test_percentile_ci_is_widened_to_contain_its_estimate(caplog: pytest.LogCaptureFixture) -> None:
    samples = np.linspace(0.4, 0.6, 1001)
    with caplog.at_level(logging.WARNING, logger="jetatag.evaluate.bootstrap"):
        assert percentile_ci(samples, estimate=0.5) == pytest.approx([0.405, 0.595])
        assert not caplog.records
        assert percentile_ci(samples, estimate=0.3) == pytest.approx([0.3, 0.595])
        assert percentile_ci(samples, estimate=0.7) == pytest.approx([0.405, 0.7])
    assert len(caplog.records) == 2 and "widened" in caplog.records[0].getMessage()


def test_rare_tags_no_longer_push_the_interval_off_its_estimate(caplog: pytest.LogCaptureFixture) -> None:
    """The failure of issue 11: on a small set, rare tags dropped from resamples shift the macro AP interval.

    The former bootstrap (plain clip resamples, mean over the tags each defines) puts the whole macro AP
    interval above its estimate for every seed; per-tag stratified resamples centre every interval, and
    every paired JE − no-JE difference interval, on its estimate without the safeguard's help.
    """
    tags, seg = _rare_tag_set()
    better = np.clip(seg + 0.1 * tags[:, None, :], 0, 1)  # a second model, better on the positives
    names = [f"t{j}" for j in range(tags.shape[1])]
    clip = seg.astype(np.float32).mean(axis=1)
    point = macro_scores(tags, clip, names)
    for seed in range(4):
        # the former method excludes the estimate: the lower end lies above it
        old = _unstratified_macro(tags, clip, draw_resamples(len(tags), 1000, seed=seed).counts)
        assert np.percentile(old["ap"], 2.5) > point["ap"]

        with caplog.at_level(logging.WARNING, logger="jetatag.evaluate.bootstrap"):
            report_a, boot_a = summarize_scores(
                tags=tags, segment_scores=seg, tag_names=names, n_resamples=1000, seed=seed
            )
            report_b, boot_b = summarize_scores(
                tags=tags, segment_scores=better, tag_names=names, n_resamples=1000, seed=seed
            )
            for protocol, metric in (
                ("paper", "roc_auc"),
                ("paper", "pr_auc"),
                ("literature", "roc_auc"),
                ("literature", "ap"),
            ):
                key = f"{protocol}_{metric}"
                for report, boot in ((report_a, boot_a), (report_b, boot_b)):
                    lo, hi = report[protocol]["ci95"][metric]
                    assert lo <= report[protocol][metric] <= hi
                    assert _contains(boot[key], report[protocol][metric])
                paired = paired_difference(
                    report_a[protocol][metric], report_b[protocol][metric], boot_a[key], boot_b[key]
                )
                assert paired["ci95"][0] <= paired["diff"] <= paired["ci95"][1]
                assert _contains(boot_b[key] - boot_a[key], paired["diff"])
        assert not caplog.records  # the safeguard never had to act
    assert report_a["literature"]["ap"] == pytest.approx(point["ap"])


def test_safeguard_holds_where_stratification_alone_does_not(caplog: pytest.LogCaptureFixture) -> None:
    """60 tags with one positive each on 20 clips: AP = 1 / (1 + negatives above), convex, so its resamples
    run high even stratified; summed over 60 tags the bias exceeds the spread and the safeguard widens."""
    rng = np.random.default_rng(0)
    n, n_tags = 20, 60
    tags = np.zeros((n, n_tags), dtype=np.uint8)
    tags[rng.integers(0, n, n_tags), np.arange(n_tags)] = 1
    scores = rng.random((n, n_tags))
    scores[tags == 1] = 0.7
    point = macro_scores(tags, scores, [str(j) for j in range(n_tags)])["ap"]
    boot = macro_resamples(tags, scores, draw_resamples(n, 1000, seed=0))["ap"]
    assert not _contains(boot, point)
    with caplog.at_level(logging.WARNING, logger="jetatag.evaluate.bootstrap"):
        lo, hi = percentile_ci(boot, estimate=point)
    assert lo == point < hi and "widened" in caplog.text


def test_paired_difference(rng: np.random.Generator) -> None:
    tags, scores = _clips(rng, n=300)
    better = np.clip(scores + 0.05 * tags, 0, 1)  # the same model, slightly better on the positives
    resamples = draw_resamples(300, 300, seed=2)
    base, improved = macro_resamples(tags, scores, resamples), macro_resamples(tags, better, resamples)
    p_base = macro_scores(tags, scores, list("abcde"))["roc_auc"]
    p_better = macro_scores(tags, better, list("abcde"))["roc_auc"]
    paired = paired_difference(p_base, p_better, base["roc_auc"], improved["roc_auc"])
    assert paired["diff"] == pytest.approx(p_better - p_base)
    assert 0 < paired["ci95"][0] < paired["diff"] < paired["ci95"][1]
    # unpaired (independent resamples) is far wider for correlated models
    independent = macro_resamples(tags, better, draw_resamples(300, 300, seed=99))
    unpaired = percentile_ci(independent["roc_auc"] - base["roc_auc"], estimate=paired["diff"])
    assert unpaired[1] - unpaired[0] > 2 * (paired["ci95"][1] - paired["ci95"][0])
    same = paired_difference(p_base, p_base, base["roc_auc"], base["roc_auc"])
    assert same == {"diff": 0.0, "ci95": [0.0, 0.0]}
    with pytest.raises(ValueError, match="equal resample counts"):
        paired_difference(0.0, 0.0, base["roc_auc"], base["roc_auc"][:10])
