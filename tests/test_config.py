"""Tests of params validation: a bad params.yaml value is one clear error naming the key, before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jetatag.cli import main
from jetatag.config import ParamsError, load_params, params_to_dict

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_repo_params_load_and_round_trip(tmp_path: Path):
    params = load_params(REPO_PARAMS)
    assert params.data.source == "synthetic" and params.audio.sample_rate == 16000
    copy = tmp_path / "params.yaml"
    copy.write_text(yaml.safe_dump(params_to_dict(params)))
    assert load_params(copy) == params


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"data": {"n_tagz": 50}}, "data.n_tagz: unknown key"),
        ({"dataa": {"n_tags": 50}}, "dataa: unknown key"),
        ({"audio": {"workers": "two"}}, "audio.workers: must be an integer"),
        ({"audio": {"workers": 1.5}}, "audio.workers: must be an integer"),
        ({"audio": {"peak_normalize": "yes"}}, "audio.peak_normalize: must be true or false"),
        ({"audio": {"mu_law": "a21"}}, "audio.mu_law: must be true or false"),
        ({"audio": {"short_clips": "crop"}}, "audio.short_clips: must be one of pad, reject"),
        ({"audio": {"dtype": "int8"}}, "audio.dtype: must be one of"),
        ({"audio": {"sample_rate": 100}}, "audio.sample_rate: must be within"),
        ({"audio": {"shard_mb": 0}}, "audio.shard_mb: must be > 0"),
        ({"data": {"retries": 0}}, "data.retries: must be >= 1"),
        ({"data": {"backoff_s": -1}}, "data.backoff_s: must be >= 0"),
        ({"data": {"n_tags": 1}}, "data.n_tags: must be >= 2"),
        ({"data": {"source": "  "}}, "data.source"),
        ({"data": "synthetic"}, "data: must be a mapping"),
        ({"probe": {"c": 0}}, "probe.c: must be > 0"),
        ({"probe": {"hop_length": 1024}}, "probe.hop_length: must be within 1..probe.n_fft"),
        ({"probe": {"n_mels": 0}}, "probe.n_mels: must be >= 1"),
        ({"probe": {"workers": 0}}, "probe.workers: must be >= 1"),
        ({"probe": {"C": 1.0}}, "probe.C: unknown key"),
        ({"train": {"classifier_bias": "ones"}}, "train.classifier_bias: must be one of zeros, prior"),
        ({"model": {"pair_loss": "cosine"}}, "model.pair_loss: must be one of paper, a21, a22, contrastive"),
        ({"model": {"tag_encoder_norm": "batchnorm"}}, "model.tag_encoder_norm: must be one of layernorm, none"),
        ({"model": {"hcnn_head": "a22"}}, "model.hcnn_head: must be one of dense, a21"),
        ({"model": {"sinc_design": "a22"}}, "model.sinc_design: must be one of jetatag, a21"),
        ({"model": {"hcnn_front_end": "kapre"}}, "model.hcnn_front_end: must be one of won, a21"),
        ({"model": {"init_and_bn": "keras"}}, "model.init_and_bn: must be one of jetatag, a21"),
        ({"model": {"se_squeeze": "gap"}}, "model.se_squeeze: must be one of block, pooled"),
        ({"train": {"optimizer_state": "shared"}}, "train.optimizer_state: must be one of fresh, carry"),
        ({"train": {"batch_order": "sorted"}}, "train.batch_order: must be one of shuffled, annotation"),
        ({"train": {"precision": "fp16"}}, "train.precision: must be one of auto, float32, bf16"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, override: dict, message: str):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    with pytest.raises(ParamsError, match=message.replace(".", r"\.")):
        load_params([REPO_PARAMS, bad])


def test_unreadable_params_files(tmp_path: Path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)


def test_download_with_bad_params_exits_1_and_writes_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {"retries": -3}}))
    out = tmp_path / "raw"
    # bad params are a runtime error (1), not a usage error (2)
    assert main(["download", "--params", str(REPO_PARAMS), "--params", str(bad), "--out", str(out)]) == 1
    assert "data.retries: must be >= 1" in caplog.text
    assert not out.exists()


def test_console_script_exit_status(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"audio": {"workers": "many"}}))
    out = tmp_path / "raw"
    result = subprocess.run(
        [sys.executable, "-m", "jetatag.cli", "download", "--params", str(bad), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "audio.workers: must be an integer" in result.stderr
    assert not out.exists()
