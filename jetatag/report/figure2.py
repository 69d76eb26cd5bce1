"""Stage ``figure2``: the paper's Figure 2 (t-SNE of test embeddings) and a per-tag ROC-AUC comparison.

Figure 2 shows three t-SNE maps of the test clips, coloured by whether a clip carries one tag: the
extractor output h of Harmonic-CNN trained without JE, the ground-truth tag vectors, and h of
Harmonic-CNN with JE. If JE shapes h after the tag space, the third map should group the tagged clips
the way the second does. Each panel's k-NN agreement (:mod:`jetatag.report.knn`, in its 2-D map) puts a
number on that grouping; the agreements go to ``figure2.json`` for Table 1's metrics.

Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot, no global backend state); PNGs
are rendered by matplotlib's Agg canvas.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from jetatag.config import Params
from jetatag.errors import StageError
from jetatag.evaluate.arrays import load_arrays
from jetatag.extractors import extractor_spec
from jetatag.io import atomic_path, write_json
from jetatag.report.knn import KNN_K, base_rate, knn_agreement

log = logging.getLogger(__name__)

FIGURE2_EXTRACTOR = "hcnn"
"""The paper's Figure 2 shows Harmonic-CNN."""

PANELS = ("h_noje", "tag_vectors", "h_je")
"""Panel ids, left to right: keys of the maps and of the agreements in ``figure2.json`` and ``table1.json``."""

DPI = 150
PCA_DIMS = 50
"""t-SNE runs on the first principal components (scikit-learn's advice for wide inputs): faster, same map."""


def tsne_map(x: np.ndarray, *, perplexity: float, seed: int) -> np.ndarray:
    """2-D t-SNE of the rows of ``x`` [shape=(n, d)] → [shape=(n, 2)], seeded; perplexity clipped below n."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    perplexity = min(perplexity, (n - 1) / 3.0)  # keeps 3 * perplexity < n, as scikit-learn needs
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # one thread for BLAS (the PCAs) and OpenMP (t-SNE's gradient): the map is then the same whatever the
    # front end's thread count (DVC runs this with 2, Snakemake with 1), and t-SNE's spinning threads do
    # not stall (10-40x) when the pipeline runs other jobs on the same cores
    with threadpool_limits(limits=1):
        if x.shape[1] > PCA_DIMS and n > PCA_DIMS:
            x = PCA(n_components=PCA_DIMS, random_state=seed).fit_transform(x)
        return tsne.fit_transform(x)


def panel_titles(extractor: str) -> dict[str, str]:
    """Title of each panel, keyed by :data:`PANELS`."""
    name = extractor_spec(extractor).name
    return dict(zip(PANELS, (f"{name} h, without JE", "ground-truth tag vectors", f"{name} h, with JE"), strict=True))


def tsne_panels(
    h_noje: np.ndarray, tag_vectors: np.ndarray, h_je: np.ndarray, *, perplexity: float, seed: int
) -> dict[str, np.ndarray]:
    """The 2-D t-SNE map [shape=(n, 2)] of each panel's input, keyed by :data:`PANELS`."""
    inputs = dict(zip(PANELS, (h_noje, tag_vectors, h_je), strict=True))
    return {panel: tsne_map(x, perplexity=perplexity, seed=seed) for panel, x in inputs.items()}


def panel_stats(maps: Mapping[str, np.ndarray], has_tag: np.ndarray, *, tag: str, extractor: str) -> dict[str, Any]:
    """k-NN agreement of ``tag`` in each panel's map, with the base rate: the content of ``figure2.json``.

    An agreement is None (JSON null) when no clip carries the tag.
    """
    n = len(has_tag)
    agreement = {panel: knn_agreement(maps[panel], has_tag) for panel in PANELS}
    return {
        "extractor": extractor,
        "tag": tag,
        "k": min(KNN_K, n - 1),
        "space": "2-D t-SNE coordinates of each panel",
        "n_clips": n,
        "n_tagged": int(np.sum(has_tag)),
        "base_rate": base_rate(has_tag),
        "knn_agreement": {panel: value if np.isfinite(value) else None for panel, value in agreement.items()},
    }


def _ratio(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def make_figure2(
    maps: Mapping[str, np.ndarray], has_tag: np.ndarray, stats: Mapping[str, Any], *, tag: str, extractor: str
) -> Figure:
    """Three t-SNE panels (h without JE, tag vectors, h with JE), points coloured by ``has_tag``.

    Each panel's title carries its k-NN agreement and the base rate from ``stats`` (:func:`panel_stats`).
    """
    titles = panel_titles(extractor)
    fig = Figure(figsize=(15, 5), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, panel in zip(axes, PANELS, strict=True):
        xy = maps[panel]
        ax.scatter(*xy[~has_tag].T, s=6, c="#b0b0b0", alpha=0.6, linewidths=0, label=f"without '{tag}'")
        ax.scatter(*xy[has_tag].T, s=10, c="#d62728", alpha=0.9, linewidths=0, label=f"with '{tag}'")
        agreement = _ratio(stats["knn_agreement"][panel])
        ax.set_title(f"{titles[panel]}\n{stats['k']}-NN agreement {agreement} (base rate {_ratio(stats['base_rate'])})")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(loc="best", markerscale=2, frameon=True)
    fig.suptitle(f"t-SNE of the {len(has_tag)} test clips, coloured by the tag '{tag}'")
    return fig


def make_per_tag_figure(per_tag_noje: dict[str, dict], per_tag_je: dict[str, dict], *, extractor: str) -> Figure:
    """Scatter of per-tag ROC-AUC, no JE (x) against JE (y), with the diagonal; biggest changes labelled."""
    tags = [t for t in per_tag_noje if t in per_tag_je]
    if not tags:
        raise ValueError("no tag has a ROC-AUC in both evaluations")
    x = np.array([per_tag_noje[t]["roc_auc"] for t in tags])
    y = np.array([per_tag_je[t]["roc_auc"] for t in tags])
    better = int(np.sum(y > x))
    fig = Figure(figsize=(6.5, 6.5), layout="constrained")
    ax = fig.subplots()
    lo = float(min(x.min(), y.min())) - 0.02
    ax.plot([lo, 1.0], [lo, 1.0], color="black", linewidth=0.8, linestyle="--", label="equal")
    ax.scatter(x[y > x], y[y > x], s=18, c="#1f77b4", zorder=3, label="JE better")
    ax.scatter(x[y <= x], y[y <= x], s=18, c="#ff7f0e", zorder=3, label="no JE better or equal")
    for i in np.argsort(-np.abs(y - x))[:8]:  # name the tags JE changed most
        ax.annotate(tags[i], (x[i], y[i]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(lo, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel("ROC-AUC without JE")
    ax.set_ylabel("ROC-AUC with JE")
    ax.set_title(f"{extractor_spec(extractor).name}: per-tag ROC-AUC (JE better on {better} of {len(tags)} tags)")
    ax.legend(loc="lower right")
    return fig


def _save(fig: Figure, path: Path) -> None:
    """Save ``fig`` as PNG at :data:`DPI`, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def _per_tag(eval_dir: Path, extractor: str, variant: str) -> dict[str, dict]:
    path = Path(eval_dir) / f"{extractor}-{variant}.json"
    if not path.is_file():
        raise StageError(f"{path}: evaluation not found; run `jetatag evaluate --extractor {extractor}` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))["literature"]["per_tag"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise StageError(f"{path}: not a jetatag evaluation with per-tag results: {err}") from err


def run_figure2(
    params: Params, *, arrays_dir: Path, eval_dir: Path, out_figure: Path, out_per_tag: Path, out_stats: Path
) -> None:
    """Write Figure 2 (t-SNE panels of Harmonic-CNN), its k-NN agreements (JSON) and the per-tag ROC-AUC plot."""
    report = params.report
    noje = load_arrays(Path(arrays_dir) / f"{FIGURE2_EXTRACTOR}-noje.npz")
    je = load_arrays(Path(arrays_dir) / f"{FIGURE2_EXTRACTOR}-je.npz")
    if not np.array_equal(noje.clip_ids, je.clip_ids):
        raise StageError(f"{arrays_dir}: {FIGURE2_EXTRACTOR}-noje and -je were scored on different test clips")
    if report.tsne_tag not in noje.tag_names:
        raise StageError(
            f"report.tsne_tag: {report.tsne_tag!r} is not one of the dataset's tags: {', '.join(noje.tag_names)}"
        )
    has_tag = noje.tags[:, noje.tag_names.index(report.tsne_tag)] != 0
    if not has_tag.any():
        log.warning("figure2: no test clip has the tag %r; every point will be grey", report.tsne_tag)
    log.info("figure2: t-SNE of %d clips (%d with '%s')", len(has_tag), int(has_tag.sum()), report.tsne_tag)
    maps = tsne_panels(noje.h, noje.tags, je.h, perplexity=report.tsne_perplexity, seed=report.seed)
    stats = panel_stats(maps, has_tag, tag=report.tsne_tag, extractor=FIGURE2_EXTRACTOR)
    log.info(
        "figure2: %d-NN agreement of '%s' %s (base rate %.3f)",
        stats["k"],
        report.tsne_tag,
        ", ".join(f"{panel} {_ratio(value)}" for panel, value in stats["knn_agreement"].items()),
        stats["base_rate"],
    )
    _save(make_figure2(maps, has_tag, stats, tag=report.tsne_tag, extractor=FIGURE2_EXTRACTOR), out_figure)
    write_json(out_stats, stats)

    extractor = report.per_tag_extractor
    per_tag = make_per_tag_figure(
        _per_tag(eval_dir, extractor, "noje"), _per_tag(eval_dir, extractor, "je"), extractor=extractor
    )
    _save(per_tag, out_per_tag)
    log.info("figure2 -> %s, %s, %s", out_figure, out_stats, out_per_tag)
