"""The reference probe: log-mel mean/std features, per-tag logistic regression, ``reports/eval/probe.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mirror_fixture import SAMPLE_RATE, tiny_data, write_mp3, write_raw
from sklearn.metrics import roc_auc_score

from jetatag.cli import main
from jetatag.config import params_from_dict
from jetatag.data.dataset import AudioIndex
from jetatag.evaluate.logmel import MelOptions, clip_features, logmel_stats
from jetatag.evaluate.probe import PROBE_NAME, fit_and_score, run_probe

N_MELS = 32
PROBE = {"n_mels": N_MELS, "workers": 1}
BAND_HZ = (250.0, 600.0, 1400.0, 3000.0, 6000.0)
"""Learnable audio: a clip whose main tag is j (of the five frequent ones) plays a tone at BAND_HZ[j]."""


@pytest.fixture(scope="module")
def learnable_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 clips of 4 s (48 train, 4 valid, 12 test) whose spectrum tells their main tag, through labels + segment."""
    from jetatag.data.labels import run_labels
    from jetatag.data.segment import run_segment

    root = tmp_path_factory.mktemp("probe_data")
    rng = np.random.default_rng(3)
    data = tiny_data(64, rng=rng)  # clip i carries tag i % 5, plus random rarer tags
    raw = write_raw(root / "raw", data, seconds=1.0, rng=rng)
    t = np.arange(int(4.0 * SAMPLE_RATE)) / SAMPLE_RATE
    for i, path in enumerate(data.mp3_paths):
        wave = 0.6 * np.sin(2 * np.pi * BAND_HZ[i % 5] * t) + 0.05 * rng.standard_normal(len(t))
        write_mp3(raw / "mp3" / path, (wave / np.abs(wave).max() * 0.9).astype(np.float32))
    params = params_from_dict({"data": {"n_tags": 8}, "audio": {"workers": 1}})
    run_labels(params, raw_dir=raw, out_dir=root / "labels")
    run_segment(params, labels_dir=root / "labels", raw_dir=raw, out_dir=root / "audio")
    return root / "audio"


def test_logmel_stats_shape_batching_and_band(rng: np.random.Generator) -> None:
    options = MelOptions(SAMPLE_RATE, N_MELS, 512, 256)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    waves = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 4000 * t)]).astype(np.float32)
    waves += 0.01 * rng.standard_normal(waves.shape).astype(np.float32)
    features = logmel_stats(waves, options)
    assert features.shape == (2, 2 * N_MELS) and features.dtype == np.float32
    np.testing.assert_allclose(features[1], logmel_stats(waves[1:], options)[0], rtol=0, atol=1e-4)
    low, high = (int(np.argmax(f[:N_MELS])) for f in features)  # loudest band mean
    assert low < high
    assert np.all(features[:, N_MELS:] >= 0)  # standard deviations


def test_clip_features_are_the_same_for_any_number_of_workers(tiny_audio: Path) -> None:
    index = AudioIndex(tiny_audio)
    frame = index.frame("train")
    options = MelOptions(index.sample_rate, N_MELS, 512, 256)
    one = clip_features(tiny_audio, frame, options, workers=1, desc="test")
    two = clip_features(tiny_audio, frame, options, workers=2, desc="test")
    assert one.shape == (len(frame), 2 * N_MELS)
    np.testing.assert_array_equal(one, two)


def test_fit_and_score_scores_unlearnable_tags_at_their_prevalence(rng: np.random.Generator) -> None:
    x = rng.normal(size=(60, 6))
    y = np.zeros((60, 3), dtype=np.uint8)
    y[:, 0] = x[:, 0] > 0  # learnable from the first feature
    y[:, 2] = 1  # every train clip carries it: nothing to fit
    result = fit_and_score(x[:40], y[:40], x[40:], c=1.0, max_iter=200)
    assert result.scores.shape == (20, 3)
    assert result.constant == [1, 2] and result.unconverged == []
    assert np.all(result.scores[:, 1] == 0.0) and np.all(result.scores[:, 2] == 1.0)
    assert roc_auc_score(y[40:, 0], result.scores[:, 0]) > 0.9


def test_probe_beats_chance_on_learnable_audio(learnable_audio: Path, make_params, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "eval" / "probe.json"
    params = make_params({"data": {"n_tags": 8}, "probe": PROBE, "evaluate": {"bootstrap": 50}})
    record = run_probe(params, audio_dir=learnable_audio, out_json=out)
    assert json.loads(out.read_text()) == record
    lit = record["literature"]
    assert lit["roc_auc"] > 0.7 and lit["ap"] > 0.4  # five of the eight tags are audible
    lo, hi = lit["ci95"]["roc_auc"]
    assert lo <= lit["roc_auc"] <= hi
    assert record["model"] == PROBE_NAME
    assert record["n_train_clips"] == 48 and record["n_test_clips"] == 12
    assert record["features"]["dim"] == 2 * N_MELS
    assert record["dataset"] == {"name": "synthetic", "source": "synthetic", "split": "test"} | {
        "sample_rate": 16000,
        "n_tags": 8,
    }
    assert record["bootstrap"]["resamples"] == 50


def test_probe_cli_writes_the_metrics_file(tiny_audio: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"data": {"n_tags": 10}, "probe": PROBE, "evaluate": {"bootstrap": 20}}))
    out = tmp_path / "probe.json"
    assert main(["probe", "--params", str(params), "--audio", str(tiny_audio), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record) >= {"model", "dataset", "n_train_clips", "n_test_clips", "literature", "bootstrap"}
    assert 0.0 <= record["literature"]["roc_auc"] <= 1.0
    assert main(["probe", "--params", str(params), "--audio", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
