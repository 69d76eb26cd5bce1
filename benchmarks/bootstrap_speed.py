"""Time the evaluation bootstrap at MTAT test-set size: 4,332 clips x 16 crops x 50 tags, 1,000 resamples.

Prints seconds per step and the agreement of the vectorised resamples with a scikit-learn loop over a
few explicit resamples (per tag, the clips of its stratified resample duplicated by their multiplicities).
Usage: ``python benchmarks/bootstrap_speed.py [--clips 4332] [--resamples 1000]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from jetatag.evaluate.bootstrap import draw_resamples, macro_resamples, paper_resamples, stratified_counts
from jetatag.evaluate.metrics import clip_histograms, valid_tags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4332)
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--check", type=int, default=5, help="explicit resamples checked against scikit-learn")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    tags = (rng.random((args.clips, args.tags)) < 0.06).astype(np.uint8)  # MTAT-like: ~3 tags per clip
    logits = rng.normal(-2.5, 1.0, (args.clips, 1, args.tags)) + 2.0 * tags[:, None, :]
    seg = 1 / (1 + np.exp(-(logits + 0.5 * rng.normal(size=(args.clips, args.crops, args.tags)))))
    seg = seg.astype(np.float32)  # (n_clips, n_crops, n_tags)
    clip = seg.mean(axis=1)

    timings = {}

    def timed(name: str, fn, *fn_args):  # wall and CPU seconds (CPU is the figure on a shared machine)
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*fn_args)
        timings[f"{name}_wall_s"] = time.perf_counter() - wall
        timings[f"{name}_cpu_s"] = time.process_time() - cpu
        return out

    resamples = timed("draw_resamples", lambda: draw_resamples(args.clips, args.resamples, seed=0))
    weights = timed("resample_counts", lambda: resamples.counts)  # (B, n_clips) plain multiplicities
    hists = timed("clip_histograms", clip_histograms, tags, seg)
    paper = timed("paper_resamples", paper_resamples, hists, weights)
    macro = timed("literature_resamples", macro_resamples, tags, clip, resamples)

    # independent check: scikit-learn on explicitly duplicated clips for the first few resamples
    worst = 0.0
    keep = np.flatnonzero(valid_tags(tags))
    first = resamples.rows(slice(0, args.check))
    per_tag = {j: stratified_counts(tags[:, j] != 0, first) for j in keep}  # (n_clips, check) each
    for b in range(args.check):
        ref = []
        for j in keep:
            idx = np.repeat(np.arange(args.clips), per_tag[j][:, b])
            ref.append(roc_auc_score(tags[idx, j], clip[idx, j]))
        worst = max(worst, abs(np.mean(ref) - macro["roc_auc"][b]))
    result = {
        "clips": args.clips,
        "crops": args.crops,
        "tags": args.tags,
        "resamples": args.resamples,
        **{k: round(v, 3) for k, v in timings.items()},
        "max_abs_diff_vs_sklearn": worst,
        "paper_roc_auc_ci95": np.percentile(paper["roc_auc"], [2.5, 97.5]).round(4).tolist(),
        "literature_roc_auc_ci95": np.percentile(macro["roc_auc"], [2.5, 97.5]).round(4).tolist(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
