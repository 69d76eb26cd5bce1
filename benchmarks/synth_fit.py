"""Fit the synthetic tag model to MTAT's tag statistics and write ``jetatag/synth/data/fitted.json``.

Offline tool (the package never reads MTAT figures at run time). It draws concept vectors of many clips of
every style with the real generator (plans, scores, onset rates), then fits by gradient descent (torch, Adam)

* the style prior, the tag-concept link rates of :data:`jetatag.synth.concepts.TAG_CONCEPTS`, per-tag
  false-positive rates and a discrete attention distribution

so that the model's *expected* statistics match ``mtat_tag_stats.json``: all 188 tag frequencies (tags
outside MTAT's top-50 at ``--outside-scale`` of theirs, so that the top-50 selection stays the same on a few
thousand clips), the top-50 co-occurrence normalised by counts ``P(u | t)``, and the mean, variance and
zero fraction of the number of top-50 tags per clip. The statistics ship in ``benchmarks/data/`` (source and
licence in its README), so a clone can rerun the fit. Usage::

    python benchmarks/synth_fit.py [--stats benchmarks/data/mtat_tag_stats.json] [--out jetatag/synth/data/fitted.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from jetatag.io import write_json
from jetatag.mtat import TAGS_188
from jetatag.synth.concepts import CONCEPTS, TAG_CONCEPTS, concept_vector
from jetatag.synth.score import arrange
from jetatag.synth.styles import STYLE_NAMES, plan_clip, plan_track

ROOT = Path(__file__).resolve().parents[1]
STATS = ROOT / "benchmarks" / "data" / "mtat_tag_stats.json"
"""MTAT's aggregated tag statistics, shipped with the repository (source and licence: ``benchmarks/data/README.md``)."""
FITTED = ROOT / "jetatag" / "synth" / "data" / "fitted.json"

ATTENTION_LEVELS = (0.05, 0.25, 0.5, 0.75, 1.0, 1.4, 2.0, 3.0)
FP_MAX = 0.004  # false positives stay rare: at most 0.4 % of clips per tag


def sample_concepts(per_style: int, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique concept vectors per style with their counts: ``(X (U, C), style index (U,), count (U,))``."""
    rows: dict[tuple[int, bytes], int] = {}
    vectors: dict[tuple[int, bytes], np.ndarray] = {}
    for s, style in enumerate(STYLE_NAMES):
        for k in range(per_style):
            rng = np.random.default_rng([seed, s, k])
            plan = plan_clip(rng, plan_track(rng, style))
            x = concept_vector(plan, arrange(plan, seconds, rng))
            key = (s, x.tobytes())
            rows[key] = rows.get(key, 0) + 1
            vectors[key] = x
    keys = list(rows)
    return (
        np.stack([vectors[k] for k in keys]).astype(np.float32),
        np.array([k[0] for k in keys]),
        np.array([rows[k] for k in keys], dtype=np.float32),
    )


def targets(stats: dict, outside_scale: float) -> tuple[np.ndarray, list[int], np.ndarray, dict[str, float]]:
    """Target tag frequencies (188), top-50 column indices, P(u|t) over the top-50 and count statistics."""
    n = stats["n_clips"]
    top50 = stats["top50_in_frequency_order"]
    freq = np.array([stats["count_188_all_clips"][t] / n for t in TAGS_188])
    freq = np.where(np.isin(TAGS_188, top50), freq, freq * outside_scale)
    idx = [TAGS_188.index(t) for t in top50]
    co = np.array(stats["top50_cooccurrence_all_clips"], dtype=float)
    cond = co / np.diag(co)[:, None]
    hist = np.array(stats["n_top50_tags_per_clip_histogram"], dtype=float)
    k = np.arange(len(hist))
    mean = float((hist * k).sum() / hist.sum())
    var = float((hist * k**2).sum() / hist.sum() - mean**2)
    return freq, idx, cond, {"mean": mean, "var": var, "p0": float(hist[0] / hist.sum())}


def fit(
    x: np.ndarray,
    style: np.ndarray,
    count: np.ndarray,
    freq: np.ndarray,
    top: list[int],
    cond: np.ndarray,
    counts: dict[str, float],
    steps: int,
    seed: int,
) -> dict:
    """Adam on the calibration loss; returns the fitted tables and the achieved statistics."""
    torch.manual_seed(seed)
    n_tags, n_concepts, n_styles = len(TAGS_188), len(CONCEPTS), len(STYLE_NAMES)
    mask = torch.zeros(n_tags, n_concepts)
    for t, tag in enumerate(TAGS_188):
        for c in TAG_CONCEPTS[tag]:
            mask[t, CONCEPTS.index(c)] = 1.0
    X, S, W0 = torch.tensor(x), torch.tensor(style), torch.tensor(count)
    levels = torch.tensor(ATTENTION_LEVELS)
    target_f, target_c = torch.tensor(freq, dtype=torch.float32), torch.tensor(cond, dtype=torch.float32)
    top_idx = torch.tensor(top)
    off = ~torch.eye(len(top), dtype=torch.bool)

    rate_raw = torch.full((n_tags, n_concepts), -1.0, requires_grad=True)
    fp_raw = torch.full((n_tags,), -3.0, requires_grad=True)
    style_raw = torch.zeros(n_styles, requires_grad=True)
    att_raw = torch.zeros(len(ATTENTION_LEVELS), requires_grad=True)
    opt = torch.optim.Adam([rate_raw, fp_raw, style_raw, att_raw], lr=0.05)

    def model() -> dict[str, torch.Tensor]:
        rates = torch.nn.functional.softplus(rate_raw) * mask
        fp = FP_MAX * torch.sigmoid(fp_raw)
        per_style = W0.new_zeros(n_styles).index_add(0, S, W0)
        w = torch.softmax(style_raw, 0)[S] * W0 / per_style[S]  # (U,) clip weights, sum 1
        pi = torch.softmax(att_raw, 0)
        keep = torch.exp(-(X @ rates.T)[:, None, :] * levels[None, :, None])  # (U, G, T)
        p = 1.0 - (1.0 - fp) * keep
        wg = w[:, None] * pi[None, :]  # (U, G)
        marg = torch.einsum("ug,ugt->t", wg, p)
        pt = p[:, :, top_idx]  # (U, G, 50)
        scaled = (pt * wg.sqrt()[:, :, None]).reshape(-1, len(top))
        co = scaled.T @ scaled
        co = co - torch.diag(torch.diagonal(co)) + torch.diag(marg[top_idx])
        mean_ug = pt.sum(-1)
        mean = (wg * mean_ug).sum()
        var = (wg * ((pt * (1 - pt)).sum(-1) + mean_ug**2)).sum() - mean**2
        p0 = (wg * torch.exp(torch.log1p(-pt.clamp(max=1 - 1e-6)).sum(-1))).sum()
        return {
            "rates": rates,
            "fp": fp,
            "marg": marg,
            "cond": co / marg[top_idx][:, None],
            "mean": mean,
            "var": var,
            "p0": p0,
            "style": torch.softmax(style_raw, 0),
            "att": pi,
        }

    weight_tag = torch.ones(n_tags)
    weight_tag[top_idx] = 4.0
    for step in range(steps):
        out = model()
        loss_f = (weight_tag * (torch.log(out["marg"]) - torch.log(target_f)) ** 2).mean()
        loss_c = ((out["cond"] - target_c)[off] ** 2).mean() * 40.0
        loss_n = (
            ((out["mean"] - counts["mean"]) / counts["mean"]) ** 2
            + ((out["var"] - counts["var"]) / counts["var"]) ** 2
            + ((out["p0"] - counts["p0"]) / counts["p0"]) ** 2
        )
        loss_s = 0.02 * (torch.log(out["style"] * n_styles) ** 2).mean()  # keep every style in use
        loss = loss_f + loss_c + loss_n + loss_s
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(
                f"step {step:4d} loss {loss.item():.4f} freq {loss_f.item():.4f} cooc {loss_c.item():.4f} "
                f"counts {loss_n.item():.4f} mean {out['mean'].item():.3f} p0 {out['p0'].item():.3f} "
                f"var {out['var'].item():.2f}",
                flush=True,
            )
    with torch.no_grad():
        out = model()
    return {k: v.detach().numpy() for k, v in out.items()}


def _rounded(value: float, digits: int) -> float:
    return float(f"{value:.{digits}f}")


def write_table(path: Path, result: dict, source: str) -> None:
    """Write the fitted tables in the layout of ``fitted.schema.json``, atomically (rounded; zero links dropped)."""
    rates = {}
    for t, tag in enumerate(TAGS_188):
        links = {c: result["rates"][t, CONCEPTS.index(c)] for c in TAG_CONCEPTS[tag]}
        rates[tag] = {c: _rounded(r, 4) for c, r in links.items() if r >= 5e-4}
    table = {
        "source": source,
        "style_weights": {s: _rounded(w, 5) for s, w in zip(STYLE_NAMES, result["style"], strict=True)},
        "attention_levels": list(ATTENTION_LEVELS),
        "attention_probs": [_rounded(p, 5) for p in result["att"]],
        "false_positive": {t: _rounded(fp, 5) for t, fp in zip(TAGS_188, result["fp"], strict=True) if fp >= 5e-5},
        "tag_rates": rates,
    }
    write_json(path, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stats", type=Path, default=STATS)
    parser.add_argument("--out", type=Path, default=FITTED)
    parser.add_argument("--per-style", type=int, default=800, help="clips drawn per style")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--outside-scale", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    torch.set_num_threads(1)
    stats = json.loads(args.stats.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    x, style, count = sample_concepts(args.per_style, args.seconds, args.seed)
    print(
        f"{len(STYLE_NAMES)} styles x {args.per_style} clips -> {len(x)} unique concept vectors "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    freq, top, cond, counts = targets(stats, args.outside_scale)
    result = fit(x, style, count, freq, top, cond, counts, args.steps, args.seed)
    marg = result["marg"]
    top_set = set(top)
    order = np.argsort(-marg, kind="stable")
    print("fitted top-50 == MTAT top-50:", set(order[:50].tolist()) == top_set)
    off = ~np.eye(len(top), dtype=bool)
    print("expected Pearson P(u|t) off-diagonal:", float(np.corrcoef(result["cond"][off], cond[off])[0, 1]))
    print(f"style weights: {dict(zip(STYLE_NAMES, np.round(result['style'], 3), strict=True))}")
    source = f"{args.stats.name} ({stats['n_clips']} MTAT clips); {args.per_style} clips per style, {args.steps} steps"
    write_table(args.out, result, f"{source}, seed {args.seed}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
