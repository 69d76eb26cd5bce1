"""Evaluation summary and arrays file on synthetic scores; the evaluate stage end to end when models exist."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_fixture import TAGS, synthetic_scored
from sklearn.metrics import average_precision_score, roc_auc_score

from jetatag.errors import StageError
from jetatag.evaluate.arrays import BOOT_KEYS, load_arrays
from jetatag.evaluate.metrics import tf_auc
from jetatag.evaluate.summary import summarize_scores, write_evaluation


def test_summary_matches_direct_computations() -> None:
    scored, z_t = synthetic_scored(0)
    report, boot = summarize_scores(
        tags=scored.tags,
        segment_scores=scored.segment_scores,
        tag_names=TAGS,
        n_resamples=200,
        seed=3,
        z_m=scored.z_m,
        z_t=z_t,
    )
    seg_tags = np.broadcast_to(scored.tags[:, None, :], scored.segment_scores.shape)
    assert report["paper"]["roc_auc"] == pytest.approx(tf_auc(seg_tags, scored.segment_scores))
    assert report["paper"]["pr_auc"] == pytest.approx(tf_auc(seg_tags, scored.segment_scores, curve="PR"))
    assert report["exact_micro"]["roc_auc"] == pytest.approx(
        roc_auc_score(seg_tags.ravel(), scored.segment_scores.ravel())
    )
    clip = scored.segment_scores.mean(axis=1)
    assert report["literature"]["roc_auc"] == pytest.approx(roc_auc_score(scored.tags, clip, average="macro"))
    assert report["literature"]["ap"] == pytest.approx(average_precision_score(scored.tags, clip, average="macro"))
    assert set(report["literature"]["per_tag"]) == set(TAGS)
    assert report["retrieval"]["classifier"]["map"] == pytest.approx(report["literature"]["ap"])
    assert report["retrieval"]["joint_embedding"]["map"] > 0.9  # z_m sits near its tags' z_t
    assert report["n_test_clips"] == 80 and report["n_crops"] == 4
    for protocol, metric in (
        ("paper", "roc_auc"),
        ("paper", "pr_auc"),
        ("literature", "roc_auc"),
        ("literature", "ap"),
    ):
        lo, hi = report[protocol]["ci95"][metric]
        assert lo < report[protocol][metric] < hi
        assert boot[f"{protocol}_{metric}"].shape == (200,)
    json.dumps(report, allow_nan=False)  # standard JSON


def test_summary_is_reproducible_and_seeded() -> None:
    scored, _ = synthetic_scored(1)
    kwargs = {"tags": scored.tags, "segment_scores": scored.segment_scores, "tag_names": TAGS, "n_resamples": 50}
    a, boot_a = summarize_scores(**kwargs, seed=0)
    b, boot_b = summarize_scores(**kwargs, seed=0)
    c, _ = summarize_scores(**kwargs, seed=1)
    assert a == b and all(np.array_equal(boot_a[k], boot_b[k]) for k in BOOT_KEYS)
    assert a["literature"]["ci95"] != c["literature"]["ci95"]
    assert "joint_embedding" not in a["retrieval"]  # no embeddings given: classifier ranking only


def test_no_resamples_gives_null_cis() -> None:
    scored, _ = synthetic_scored(2)
    report, _ = summarize_scores(
        tags=scored.tags, segment_scores=scored.segment_scores, tag_names=TAGS, n_resamples=0, seed=0
    )
    assert report["paper"]["ci95"]["roc_auc"] == [None, None]
    json.dumps(report, allow_nan=False)


def test_write_evaluation_round_trip(tmp_path) -> None:
    scored, z_t = synthetic_scored(3)
    record = write_evaluation(
        out_json=tmp_path / "hcnn-je.json",
        out_arrays=tmp_path / "hcnn-je.npz",
        header={"extractor": "hcnn", "variant": "je"},
        scored=scored,
        clip_ids=np.arange(100, 180),
        tag_names=TAGS,
        z_t=z_t,
        n_resamples=20,
        seed=0,
    )
    assert json.loads((tmp_path / "hcnn-je.json").read_text()) == record
    assert list(record)[:2] == ["extractor", "variant"]
    arrays = load_arrays(tmp_path / "hcnn-je.npz")
    assert arrays.tag_names == TAGS and arrays.clip_ids.tolist() == list(range(100, 180))
    assert arrays.segment_scores.dtype == np.float16 and arrays.h.dtype == np.float16
    assert arrays.tags.dtype == np.uint8 and arrays.z_m is not None and arrays.z_m.shape == (80, 16)
    np.testing.assert_allclose(arrays.clip_scores, scored.segment_scores.mean(axis=1), rtol=1e-6)
    assert arrays.paired_with(arrays)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_load_arrays_names_bad_files(tmp_path) -> None:
    with pytest.raises(StageError, match="not found"):
        load_arrays(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(StageError, match="bad.npz"):
        load_arrays(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(StageError, match="missing clip_ids"):
        load_arrays(tmp_path / "other.npz")


@pytest.mark.parametrize("variant", ["je", "noje"])
def test_run_evaluate_on_a_tiny_model(variant: str, tiny_audio, make_params, tmp_path) -> None:
    import dataclasses

    import torch

    from jetatag.data.dataset import AudioIndex
    from jetatag.evaluate.stage import run_evaluate
    from jetatag.models.tagger import TaggerMeta, build_tagger, save_tagger

    index = AudioIndex(tiny_audio)
    model = dataclasses.replace(make_params({}).model, width=0.0625, hcnn_crop_samples=4096, embed_dim=8)
    torch.manual_seed(0)
    tagger = build_tagger(
        "hcnn", model, n_tags=len(index.tags), sample_rate=index.sample_rate, joint_heads=variant == "je"
    )
    meta = TaggerMeta("hcnn", variant, index.tags, index.sample_rate, 4096, dataclasses.asdict(model))
    save_tagger(tmp_path / "model.pt", tagger, meta=meta)
    params = make_params({"evaluate": {"n_crops": 3, "batch_size": 2, "bootstrap": 30, "seed": 1}})

    out_json, out_arrays = tmp_path / "eval" / f"hcnn-{variant}.json", tmp_path / "arrays" / f"hcnn-{variant}.npz"
    run_evaluate(
        params, model_path=tmp_path / "model.pt", audio_dir=tiny_audio, out_json=out_json, out_arrays=out_arrays
    )

    record = json.loads(out_json.read_text())
    n_test = len(index.frame("test"))
    assert (record["extractor"], record["variant"], record["n_test_clips"], record["n_crops"]) == (
        "hcnn",
        variant,
        n_test,
        3,
    )
    assert record["dataset"]["name"] == "synthetic" and record["dataset"]["tags"] == index.tags
    assert 0.0 <= record["paper"]["roc_auc"] <= 1.0 and record["bootstrap"]["resamples"] == 30
    assert ("joint_embedding" in record["retrieval"]) == (variant == "je")
    arrays = load_arrays(out_arrays)
    assert arrays.segment_scores.shape == (n_test, 3, len(index.tags))
    assert arrays.h.shape == (n_test, 1024) and arrays.clip_ids.tolist() == index.frame("test")["clip_id"].tolist()
    np.testing.assert_array_equal(arrays.tags, np.stack(index.frame("test")["tags"].to_numpy()))
    assert (arrays.z_m is not None) == (variant == "je")

    # the scores are the model's own: crop 0 of clip 0 scored directly
    from jetatag.data.dataset import EvalCrops

    crops, _ = EvalCrops(tiny_audio, crop_samples=4096, n_crops=3)[0]
    with torch.inference_mode():
        direct = torch.sigmoid(tagger.eval()(crops[:1])).numpy()[0]
    np.testing.assert_allclose(arrays.segment_scores[0, 0], direct, atol=2e-3)  # float16 storage


def test_run_evaluate_rejects_a_model_with_other_tags(tiny_audio, make_params, tmp_path) -> None:
    import dataclasses

    from jetatag.evaluate.stage import run_evaluate
    from jetatag.models.tagger import TaggerMeta, build_tagger, save_tagger

    model = dataclasses.replace(make_params({}).model, width=0.0625, hcnn_crop_samples=4096)
    tagger = build_tagger("hcnn", model, n_tags=3, sample_rate=16000)
    save_tagger(
        tmp_path / "m.pt",
        tagger,
        meta=TaggerMeta("hcnn", "noje", ["a", "b", "c"], 16000, 4096, dataclasses.asdict(model)),
    )
    with pytest.raises(StageError, match="tags differ"):
        run_evaluate(
            make_params({}),
            model_path=tmp_path / "m.pt",
            audio_dir=tiny_audio,
            out_json=tmp_path / "e.json",
            out_arrays=tmp_path / "e.npz",
        )
