"""Table 1 and Figure 2 from synthetic evaluation files written as ``evaluate`` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eval_fixture import TAGS, write_fake_evaluation, write_fake_figure2_stats, write_fake_probe, write_stage1_metrics
from PIL import Image
from threadpoolctl import threadpool_limits

from jetatag.config import TRAINING_SWITCHES, VARIANTS
from jetatag.errors import StageError
from jetatag.extractors import EXTRACTOR_IDS, EXTRACTOR_SPECS
from jetatag.report.figure2 import DPI, PANELS, make_figure2, panel_stats, run_figure2, tsne_map, tsne_panels
from jetatag.report.geometry import GEOMETRY_KEYS
from jetatag.report.knn import base_rate, knn_agreement
from jetatag.report.paper import PAPER_TABLE1
from jetatag.report.table1 import HEADLINE_METRICS, run_table1

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


OLD_STAGE1 = "samplecnn_res"
"""Its stage-1 metrics file predates the geometry keys."""


def _geometry(extractor: str) -> dict[str, float]:
    i = EXTRACTOR_IDS.index(extractor)
    return {"zt_mean_cos": 0.1 * i, "zt_erank": 10.0 + i, "zm_mean_cos": 0.05 * i, "zm_erank": 20.0 + i}


@pytest.fixture
def extras(tmp_path: Path) -> dict[str, Path]:
    """The probe report, Figure 2's statistics and six stage-1 dvclive folders: table1's other inputs."""
    train_dir = tmp_path / "train"
    for x in EXTRACTOR_IDS:
        write_stage1_metrics(train_dir, x, {} if x == OLD_STAGE1 else _geometry(x))
    probe, figure2 = tmp_path / "eval" / "probe.json", tmp_path / "figure2.json"
    write_fake_probe(probe)
    write_fake_figure2_stats(figure2)
    return {"probe_json": probe, "train_dir": train_dir, "figure2_json": figure2}


def _outs(folder: Path) -> dict[str, Path]:
    """table1's three outputs in ``folder``, as :func:`run_table1` keywords."""
    return {
        "out_table": folder / "table1.md",
        "out_metrics": folder / "metrics.json",
        "out_details": folder / "table1.json",
    }


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``."""
    return json.loads(path.read_text(encoding="utf-8"))


def _section(text: str, title: str) -> list[str]:
    """Table rows of the markdown section ``## title``."""
    body = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def test_table1_rows_metrics_and_header(evaluations, extras, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, records = evaluations
    outs = _outs(tmp_path / "reports")
    run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, **extras, **outs)
    text = outs["out_table"].read_text()

    header = text.splitlines()[2]
    assert "**synthetic**" in header and "80 test clips" in header and "profile: **demo**" in header
    assert "git revision: `" in header
    switches = text.splitlines()[4]
    assert switches.startswith("Training switches: `audio.mu_law=false` · `model.pair_loss=paper`")
    assert "`train.classifier_bias=zeros`" in switches and "`train.je_embedding_cache=true`" in switches
    assert "Missing evaluations: sincnet-noje, samplecnn_se-noje" in text

    # paper protocol: six rows in the paper's order, ours beside the paper's figures and the difference
    rows = _section(text, "Paper protocol")
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [spec.name for spec in EXTRACTOR_SPECS]
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

    metrics, details = _read_json(outs["out_metrics"]), _read_json(outs["out_details"])
    assert metrics["hcnn.je.paper.roc_auc"] == records["hcnn", "je"]["paper"]["roc_auc"]
    assert metrics["hcnn.noje.literature.ap"] == records["hcnn", "noje"]["literature"]["ap"]
    assert "sincnet.je.paper.pr_auc" in metrics and "sincnet.noje.paper.pr_auc" not in metrics
    assert all(isinstance(v, float) for v in metrics.values())
    assert details["hcnn.je_minus_noje.literature.roc_auc"] == pytest.approx(diff)
    assert details["hcnn.je.retrieval.joint_embedding_map"] == je_map
    assert details["hcnn.noje.exact_micro.ap"] == records["hcnn", "noje"]["exact_micro"]["ap"]
    assert not any(k.startswith("sincnet.je_minus_noje") for k in details)
    old = {f"{OLD_STAGE1}.stage1.valid.{key}" for key in GEOMETRY_KEYS}
    assert all(details[k] is None for k in old)
    # the run's training switches, as the header shows them
    switch_keys = {k for k in details if k.startswith("switches.")}
    assert switch_keys == {f"switches.{key}" for key in TRAINING_SWITCHES}
    assert details["switches.model.pair_loss"] == "paper" and details["switches.train.classifier_bias"] == "zeros"
    assert all(isinstance(v, float) for k, v in details.items() if k not in old | switch_keys)


def test_table1_shows_a_dash_where_the_paper_has_no_figure(
    evaluations, extras, make_params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eval_dir, arrays_dir, _ = evaluations
    monkeypatch.delitem(PAPER_TABLE1, "samplecnn")  # as for an extractor added after the paper
    outs = _outs(tmp_path / "reports")
    run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, **extras, **outs)
    text = outs["out_table"].read_text()
    row = 1 + EXTRACTOR_IDS.index("samplecnn")
    paper_row = _section(text, "Paper protocol")[row].split(" | ")
    assert paper_row[2:4] == ["–", "–"] and paper_row[1] != "missing"  # ours, then no paper figure or Δ
    effect_row = _section(text, "Effect of JE (JE − no JE)")[row].split(" | ")
    assert effect_row[2] == "–" and effect_row[4] == "–"


def test_table1_metrics_hold_only_the_headline_numbers(evaluations, extras, make_params, tmp_path: Path) -> None:
    # every model present: metrics.json (DVC) gets each model's headline numbers and the probe's, nothing else;
    # table1.json gets every other number, under the keys metrics.json had before they moved
    eval_dir, arrays_dir, _ = evaluations
    for x in EXTRACTOR_IDS:
        for v in VARIANTS:
            if not (eval_dir / f"{x}-{v}.json").is_file():
                write_fake_evaluation(eval_dir, arrays_dir, x, v, skill=0.2, n_resamples=200)
    outs = _outs(tmp_path)
    run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, **extras, **outs)
    metrics, details = _read_json(outs["out_metrics"]), _read_json(outs["out_details"])

    headline = [f"{p}.{m}" for p, ms in HEADLINE_METRICS.items() for m in ms]
    expected = {f"{x}.{v}.{h}" for x in EXTRACTOR_IDS for v in VARIANTS for h in headline}
    expected |= {"probe.literature.roc_auc", "probe.literature.ap"}
    assert set(metrics) == expected and len(metrics) == 50

    moved = [f"{v}.exact_micro.{m}" for v in VARIANTS for m in ("roc_auc", "ap")]
    moved += ["noje.retrieval.classifier_map", "je.retrieval.classifier_map", "je.retrieval.joint_embedding_map"]
    moved += [*(f"je_minus_noje.{h}" for h in headline), *(f"stage1.valid.{k}" for k in GEOMETRY_KEYS)]
    expected = {f"{x}.{key}" for x in EXTRACTOR_IDS for key in moved}
    expected |= {"figure2.base_rate", *(f"figure2.knn_agreement.{p}" for p in PANELS)}
    expected |= {f"switches.{key}" for key in TRAINING_SWITCHES}
    assert set(details) == expected


def test_table1_reference_rows_and_geometry(evaluations, extras, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    outs = _outs(tmp_path)
    run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, **extras, **outs)
    text = outs["out_table"].read_text()
    metrics, details = _read_json(outs["out_metrics"]), _read_json(outs["out_details"])

    # the probe: a reference row under the extractors of the literature protocol, and two metrics
    probe = _section(text, "Literature protocol")[-1].split(" | ")
    assert probe[0] == "| Log-mel mean/std + logistic regression (probe)"
    assert probe[1:3] == ["0.6100 [0.5600, 0.6600]", "–"] and probe[3].startswith("0.4200 [")
    assert metrics["probe.literature.roc_auc"] == 0.61 and metrics["probe.literature.ap"] == 0.42

    # Figure 2: one row per panel, and the numbers in table1.json
    rows = _section(text, "Figure 2: k-NN tag agreement")
    assert rows[0] == "| Panel | 10-NN agreement | base rate |"
    assert rows[1:] == [
        "| Harmonic-CNN h, without JE | 0.3000 | 0.3000 |",
        "| ground-truth tag vectors | 0.9000 | 0.3000 |",
        "| Harmonic-CNN h, with JE | 0.5000 | 0.3000 |",
    ]
    assert details["figure2.base_rate"] == 0.3
    assert [details[f"figure2.knn_agreement.{p}"] for p in PANELS] == [0.3, 0.9, 0.5]

    # geometry after stage 1: every extractor, n/a where the run predates the metrics
    rows = _section(text, "JE geometry after stage 1")
    assert len(rows) == 1 + len(EXTRACTOR_IDS)
    assert rows[1 + EXTRACTOR_IDS.index("sincnet")] == "| Music-SincNet | 0.1000 | 11.00 | 0.0500 | 21.00 |"
    assert rows[1 + EXTRACTOR_IDS.index(OLD_STAGE1)].endswith("| n/a | n/a | n/a | n/a |")
    for x in EXTRACTOR_IDS:
        for key, value in (_geometry(x) if x != OLD_STAGE1 else dict.fromkeys(GEOMETRY_KEYS)).items():
            assert details[f"{x}.stage1.valid.{key}"] == value


def test_table1_reads_flat_dvclive_keys(evaluations, extras, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    path = extras["train_dir"] / "hcnn-stage1" / "metrics.json"
    path.write_text(json.dumps({f"valid/{k}": v for k, v in _geometry("sincnet").items()}))
    run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, **extras, **_outs(tmp_path))
    assert _read_json(tmp_path / "table1.json")["hcnn.stage1.valid.zt_erank"] == 11.0


def test_table1_missing_or_bad_extra_inputs(evaluations, extras, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    out = _outs(tmp_path)

    def table1(**changed: Path) -> None:
        run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, **(extras | changed), **out)

    stage1 = extras["train_dir"] / "sincnet-stage1"
    (stage1 / "metrics.json").unlink()
    with pytest.raises(StageError, match=r"sincnet-stage1/metrics\.json: stage-1 metrics not found"):
        table1()
    stage1.rmdir()
    with pytest.raises(StageError, match="sincnet-stage1: stage-1 dvclive folder not found"):
        table1()
    write_stage1_metrics(extras["train_dir"], "sincnet", {"zt_erank": "wide"})
    with pytest.raises(StageError, match="valid/zt_erank is 'wide', not a number"):
        table1()
    write_stage1_metrics(extras["train_dir"], "sincnet", _geometry("sincnet"))

    with pytest.raises(StageError, match="probe report not found; run `jetatag probe` first"):
        table1(probe_json=tmp_path / "nowhere.json")
    write_fake_probe(tmp_path / "other.json", n_clips=40)
    with pytest.raises(StageError, match="other.json: probe scored on"):
        table1(probe_json=tmp_path / "other.json")
    with pytest.raises(StageError, match="Figure 2 statistics not found; run `jetatag figure2` first"):
        table1(figure2_json=tmp_path / "nowhere.json")
    (tmp_path / "bad.json").write_text(json.dumps({"tag": "techno"}))
    with pytest.raises(StageError, match="not a Figure 2 statistics file"):
        table1(figure2_json=tmp_path / "bad.json")
    assert not any(path.exists() for path in out.values())


def test_table1_paired_ci_shows_the_better_model(evaluations, extras, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    run_table1(make_params({}), eval_dir=eval_dir, arrays_dir=arrays_dir, **extras, **_outs(tmp_path))
    hcnn_effect = _section((tmp_path / "table1.md").read_text(), "Effect of JE (JE − no JE)")[1].split(" | ")
    lo = float(hcnn_effect[5].split("[")[1].split(",")[0])
    assert lo > 0  # JE fixture model has twice the skill: the paired CI excludes zero


def test_table1_bad_inputs(evaluations, extras, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    kwargs = {"arrays_dir": arrays_dir, **extras, **_outs(tmp_path)}
    with pytest.raises(StageError, match="no <extractor>-<variant>.json"):
        run_table1(make_params({}), eval_dir=tmp_path, **kwargs)
    (eval_dir / "samplecnn_res-je.json").write_text("{not json")
    with pytest.raises(StageError, match="samplecnn_res-je.json: not readable JSON"):
        run_table1(make_params({}), eval_dir=eval_dir, **kwargs)
    write_fake_evaluation(eval_dir, arrays_dir, "samplecnn_res", "je", skill=0.2, dataset="MTAT")
    with pytest.raises(StageError, match="different datasets"):
        run_table1(make_params({}), eval_dir=eval_dir, **kwargs)
    assert not (tmp_path / "table1.md").exists()


def test_figure2_panels(evaluations) -> None:
    from jetatag.evaluate.arrays import load_arrays

    _, arrays_dir, _ = evaluations
    noje, je = load_arrays(arrays_dir / "hcnn-noje.npz"), load_arrays(arrays_dir / "hcnn-je.npz")
    has_tag = noje.tags[:, 0] != 0
    maps = tsne_panels(noje.h, noje.tags, je.h, perplexity=5.0, seed=0)
    stats = panel_stats(maps, has_tag, tag="techno", extractor="hcnn")
    fig = make_figure2(maps, has_tag, stats, tag="techno", extractor="hcnn")
    rate = f"base rate {has_tag.mean():.3f}"
    assert [ax.get_title() for ax in fig.axes] == [
        f"Harmonic-CNN h, without JE\n10-NN agreement {stats['knn_agreement']['h_noje']:.3f} ({rate})",
        f"ground-truth tag vectors\n10-NN agreement {stats['knn_agreement']['tag_vectors']:.3f} ({rate})",
        f"Harmonic-CNN h, with JE\n10-NN agreement {stats['knn_agreement']['h_je']:.3f} ({rate})",
    ]
    # the tag vectors carry the tag itself: their map groups the tagged clips best
    assert stats["knn_agreement"]["tag_vectors"] > max(stats["knn_agreement"]["h_noje"], stats["base_rate"])
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


def test_tsne_map_does_not_depend_on_the_callers_thread_count(rng: np.random.Generator) -> None:
    # DVC runs figure2 with 2 threads, Snakemake with 1: both must draw the same map (BLAS PCA included)
    x = rng.normal(size=(243, 1024)).astype(np.float32)
    maps = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            maps.append(tsne_map(x, perplexity=30.0, seed=0))
    np.testing.assert_array_equal(maps[0], maps[1])


def test_run_figure2_writes_pngs_and_stats(evaluations, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    out, per_tag = tmp_path / "fig" / "figure2.png", tmp_path / "fig" / "per_tag_auc.png"
    stats_path = tmp_path / "fig" / "figure2.json"
    params = make_params({"report": {"tsne_perplexity": 500.0}})  # clipped below the 80 clips
    run_figure2(
        params, arrays_dir=arrays_dir, eval_dir=eval_dir, out_figure=out, out_per_tag=per_tag, out_stats=stats_path
    )
    stats = json.loads(stats_path.read_text())
    assert stats["tag"] == "techno" and stats["k"] == 10 and stats["n_clips"] == 80
    assert set(stats["knn_agreement"]) == set(PANELS)
    assert all(0.0 <= v <= 1.0 for v in stats["knn_agreement"].values())
    assert stats["base_rate"] == pytest.approx(stats["n_tagged"] / 80)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (15 * DPI, 5 * DPI)
        assert np.allclose(img.info["dpi"], (DPI, DPI), atol=0.5)
    with Image.open(per_tag) as img:
        assert img.format == "PNG" and img.size == (int(6.5 * DPI), int(6.5 * DPI))


def test_figure2_names_the_missing_tag_and_arrays(evaluations, make_params, tmp_path: Path) -> None:
    eval_dir, arrays_dir, _ = evaluations
    kwargs = {"eval_dir": eval_dir, "out_figure": tmp_path / "f.png", "out_per_tag": tmp_path / "p.png"}
    kwargs |= {"out_stats": tmp_path / "f.json"}
    with pytest.raises(StageError, match="'jazz' is not one of the dataset's tags: " + ", ".join(TAGS)):
        run_figure2(make_params({"report": {"tsne_tag": "jazz"}}), arrays_dir=arrays_dir, **kwargs)
    with pytest.raises(StageError, match="hcnn-noje.npz: evaluation arrays not found"):
        run_figure2(make_params({}), arrays_dir=tmp_path, **kwargs)
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "f.json").exists()


def _brute_force_agreement(points: np.ndarray, has_tag: np.ndarray, k: int) -> float:
    """The definition, literally: per tagged clip, sort the others by distance, count the tagged among the k first."""
    shares = []
    for i in np.flatnonzero(has_tag):
        distances = np.linalg.norm(points - points[i], axis=1)
        others = [j for j in np.argsort(distances, kind="stable") if j != i][:k]
        shares.append(np.mean(has_tag[others]))
    return float(np.mean(shares))


@pytest.mark.parametrize(("n", "k", "rate"), [(200, 10, 0.2), (50, 10, 0.5), (12, 10, 0.3), (6, 10, 0.5), (30, 1, 0.1)])
def test_knn_agreement_matches_brute_force(rng: np.random.Generator, n: int, k: int, rate: float) -> None:
    points = rng.normal(size=(n, 2))
    has_tag = rng.random(n) < rate
    has_tag[0] = True
    assert knn_agreement(points, has_tag, k=k) == pytest.approx(_brute_force_agreement(points, has_tag, min(k, n - 1)))


def test_knn_agreement_extremes(rng: np.random.Generator) -> None:
    has_tag = np.arange(100) < 30
    clustered = np.where(has_tag[:, None], 0.0, 100.0) + rng.normal(size=(100, 2))
    assert knn_agreement(clustered, has_tag) == 1.0
    assert base_rate(has_tag) == 0.3
    # a map that ignores the tag: about the base rate on average over random maps
    mean = np.mean([knn_agreement(rng.normal(size=(100, 2)), has_tag) for _ in range(20)])
    assert mean == pytest.approx(29 / 99, abs=0.05)
    assert np.isnan(knn_agreement(clustered, np.zeros(100, dtype=bool)))
    with pytest.raises(ValueError, match="n >= 2"):
        knn_agreement(clustered[:1], has_tag[:1])
