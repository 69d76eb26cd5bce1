"""Table 1 and Figure 2 from synthetic evaluation files written as ``evaluate`` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_fixture import TAGS, write_fake_evaluation
from PIL import Image

from jetatag.config import EXTRACTOR_IDS
from jetatag.errors import StageError
from jetatag.report.figure2 import DPI, make_figure2, run_figure2, tsne_map
from jetatag.report.paper import EXTRACTOR_NAMES, PAPER_TABLE1
from jetatag.report.table1 import run_table1

PRESENT = [("hcnn", "noje", 0.15), ("hcnn", "je", 0.3), ("samplecnn", "noje", 0.2), ("samplecnn", "je", 0.2)]
PRESENT += [("sincnet", "je", 0.25)]  # sincnet without its no-JE model


@pytest.fixture
def evaluations(tmp_path: Path) -> tuple[Path, Path, dict]:
    """Eval JSONs and arrays for two complete extractors and one half-done."""
    eval_dir, arrays_dir = tmp_path / "eval", tmp_path / "arrays"
    records = {
        (x, v): write_fake_evaluation(eval_dir, arrays_dir, x, v, skill=skill, n_resamples=200)
        for x, v, skill in PRESENT
    }
    return eval_dir, arrays_dir, records


def _section(text: str, title: str) -> list[str]:
    """Table rows of the markdown section ``## title``."""
    body = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def test_table1_rows_metrics_and_header(evaluations, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, records = evaluations
    table, metrics = tmp_path / "reports" / "table1.md", tmp_path / "reports" / "metrics.json"
    run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, out_table=table, out_metrics=metrics)
    text = table.read_text()

    header = text.splitlines()[2]
    assert "**synthetic**" in header and "80 test clips" in header and "profile: **demo**" in header
    assert "git revision: `" in header
    assert "Missing evaluations: sincnet-noje, samplecnn_se-noje" in text

    # paper protocol: six rows in the paper's order, ours beside the paper's figures and the difference
    rows = _section(text, "Paper protocol")
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [EXTRACTOR_NAMES[x] for x in EXTRACTOR_IDS]
    hcnn = rows[1].split(" | ")
    ours = records["hcnn", "noje"]["paper"]["roc_auc"]
    assert hcnn[1:4] == [f"{ours:.4f}", "0.9034", f"{ours - 0.9034:+.4f}"]
    se = rows[1 + EXTRACTOR_IDS.index("samplecnn_se")].split(" | ")
    assert se[1:3] == ["missing", f"{PAPER_TABLE1['samplecnn_se']['noje']['roc_auc']:.4f}"]

    # JE effect: paired differences with CIs where both models exist
    effect = _section(text, "Effect of JE (JE − no JE)")
    hcnn_effect = effect[1].split(" | ")
    diff = records["hcnn", "je"]["literature"]["roc_auc"] - records["hcnn", "noje"]["literature"]["roc_auc"]
    assert hcnn_effect[5].startswith(f"{diff:+.4f} [")
    assert effect[1 + EXTRACTOR_IDS.index("sincnet")].split(" | ")[1] == "missing"

    literature = _section(text, "Literature protocol")
    lit = records["samplecnn", "je"]["literature"]
    lo, hi = lit["ci95"]["roc_auc"]
    assert f"{lit['roc_auc']:.4f} [{lo:.4f}, {hi:.4f}]" in literature[1 + EXTRACTOR_IDS.index("samplecnn")]
    retrieval = _section(text, "Retrieval")
    je_map = records["hcnn", "je"]["retrieval"]["joint_embedding"]["map"]
    assert retrieval[1].endswith(f"| {je_map:.4f} |")

    flat = json.loads(metrics.read_text())
    assert flat["hcnn.je.paper.roc_auc"] == records["hcnn", "je"]["paper"]["roc_auc"]
    assert flat["hcnn.noje.literature.ap"] == records["hcnn", "noje"]["literature"]["ap"]
    assert flat["hcnn.je_minus_noje.literature.roc_auc"] == pytest.approx(diff)
    assert flat["hcnn.je.retrieval.joint_embedding_map"] == je_map
    assert "sincnet.je.paper.pr_auc" in flat and not any(k.startswith("sincnet.je_minus_noje") for k in flat)
    assert all(isinstance(v, float) for v in flat.values())


def test_table1_paired_ci_shows_the_better_model(evaluations, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    run_table1(
        make_params({}),
        eval_dir=eval_dir,
        arrays_dir=arrays_dir,
        out_table=tmp_path / "t.md",
        out_metrics=tmp_path / "m.json",
    )
    hcnn_effect = _section((tmp_path / "t.md").read_text(), "Effect of JE (JE − no JE)")[1].split(" | ")
    lo = float(hcnn_effect[5].split("[")[1].split(",")[0])
    assert lo > 0  # JE fixture model has twice the skill: the paired CI excludes zero


def test_table1_bad_inputs(evaluations, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    kwargs = {"arrays_dir": arrays_dir, "out_table": tmp_path / "t.md", "out_metrics": tmp_path / "m.json"}
    with pytest.raises(StageError, match="no <extractor>-<variant>.json"):
        run_table1(make_params({}), eval_dir=tmp_path, **kwargs)
    (eval_dir / "samplecnn_res-je.json").write_text("{not json")
    with pytest.raises(StageError, match="samplecnn_res-je.json: not readable JSON"):
        run_table1(make_params({}), eval_dir=eval_dir, **kwargs)
    write_fake_evaluation(eval_dir, arrays_dir, "samplecnn_res", "je", skill=0.2, dataset="MTAT")
    with pytest.raises(StageError, match="different datasets"):
        run_table1(make_params({}), eval_dir=eval_dir, **kwargs)
    assert not (tmp_path / "t.md").exists()


def test_figure2_panels(evaluations) -> None:
    from jetatag.evaluate.arrays import load_arrays

    _, arrays_dir, _ = evaluations
    noje, je = load_arrays(arrays_dir / "hcnn-noje.npz"), load_arrays(arrays_dir / "hcnn-je.npz")
    fig = make_figure2(
        noje.h, noje.tags, je.h, noje.tags[:, 0] != 0, tag="techno", extractor="hcnn", perplexity=5.0, seed=0
    )
    assert [ax.get_title() for ax in fig.axes] == [
        "Harmonic-CNN h, without JE",
        "ground-truth tag vectors",
        "Harmonic-CNN h, with JE",
    ]
    assert all(len(ax.collections) == 2 for ax in fig.axes)  # clips with and without the tag
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["without 'techno'", "with 'techno'"]
    n_tagged = int((noje.tags[:, 0] != 0).sum())
    assert [len(ax.collections[1].get_offsets()) for ax in fig.axes] == [n_tagged] * 3


def test_tsne_map_is_seeded_and_clips_perplexity(rng: np.random.Generator) -> None:
    x = rng.normal(size=(20, 80))  # wider than the PCA step
    a = tsne_map(x, perplexity=30.0, seed=1)  # 30 >= n: clipped
    assert a.shape == (20, 2)
    np.testing.assert_array_equal(a, tsne_map(x, perplexity=30.0, seed=1))


def test_run_figure2_writes_pngs(evaluations, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    out, per_tag = tmp_path / "fig" / "figure2.png", tmp_path / "fig" / "per_tag_auc.png"
    params = make_params({"report": {"tsne_perplexity": 500.0}})  # clipped below the 80 clips
    run_figure2(params, arrays_dir=arrays_dir, eval_dir=eval_dir, out_figure=out, out_per_tag=per_tag)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (15 * DPI, 5 * DPI)
        assert np.allclose(img.info["dpi"], (DPI, DPI), atol=0.5)
    with Image.open(per_tag) as img:
        assert img.format == "PNG" and img.size == (int(6.5 * DPI), int(6.5 * DPI))


def test_figure2_names_the_missing_tag_and_arrays(evaluations, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    kwargs = {"eval_dir": eval_dir, "out_figure": tmp_path / "f.png", "out_per_tag": tmp_path / "p.png"}
    with pytest.raises(StageError, match="'jazz' is not one of the dataset's tags: " + ", ".join(TAGS)):
        run_figure2(make_params({"report": {"tsne_tag": "jazz"}}), arrays_dir=arrays_dir, **kwargs)
    with pytest.raises(StageError, match="hcnn-noje.npz: evaluation arrays not found"):
        run_figure2(make_params({}), arrays_dir=tmp_path, **kwargs)
    assert not (tmp_path / "f.png").exists()
