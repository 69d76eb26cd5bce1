"""Tests for jetatag.train: stage 1 and 2 on tiny real data, frozen extractor, determinism, resume, NaN guard."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from mirror_fixture import tiny_data, write_raw
from sklearn.metrics import roc_auc_score
from torch import nn

from jetatag.config import Params, Phase, params_from_dict, params_to_dict
from jetatag.data.dataset import EvalCrops, TrainCrops
from jetatag.errors import StageError
from jetatag.extractors import EXTRACTOR_SPECS, ExtractorSpec
from jetatag.models import H_DIM, h_dim
from jetatag.models.tagger import build_tagger, load_joint, load_tagger, save_joint
from jetatag.train import loop, setup
from jetatag.train.device import autocast, resolve_device
from jetatag.train.embeddings import CachedCrops, cached_crop_index, embed_crops
from jetatag.train.resume import (
    ResumeState,
    fingerprint,
    load_resume,
    resume_path,
    run_fingerprint,
    save_resume,
)
from jetatag.train.schedule import make_optimizer, optimizer_runs, param_groups, phase_index, total_epochs
from jetatag.train.stage1 import run_stage1
from jetatag.train.stage2 import run_stage2
from jetatag.train.validation import macro_roc_auc

N_TAGS = 10
TWO_PHASES = [{"optimizer": "adam", "lr": 1e-3, "epochs": 1}, {"optimizer": "sgd", "lr": 1e-3, "epochs": 1}]


def tiny_params(**train: Any) -> Params:
    """Tiny Harmonic-CNN runs on CPU: 1/32 width, 1 s crops, batch 8, two one-epoch phases per stage."""
    train = {
        "batch_size": 8,
        "device": "cpu",
        "valid_crops": 2,
        "stage1_schedule": TWO_PHASES,
        "stage2_schedule": TWO_PHASES,
    } | train
    return params_from_dict(
        {"data": {"n_tags": N_TAGS}, "model": {"width": 0.03125, "hcnn_crop_samples": 16000}, "train": train}
    )


def state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer (BN running statistics included), detached copies."""
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def assert_same_state(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"tensors differ: {different[:5]}"


def read_tsv(path: Path) -> list[float]:
    """Values of one dvclive metric, one per epoch."""
    lines = path.read_text().splitlines()[1:]
    return [float(line.split("\t")[1]) for line in lines]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these tiny models gain nothing from two, and lose much when the cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 clips of 4 s through the real labels and segment stages: 36 train, 3 valid (3 distinct tags), 9 test."""
    from jetatag.data.labels import run_labels
    from jetatag.data.segment import run_segment

    root = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(11)
    raw = write_raw(root / "raw", tiny_data(48, rng=rng), seconds=4.0, rng=rng)
    params = params_from_dict({"data": {"n_tags": N_TAGS}, "audio": {"workers": 1}})
    run_labels(params, raw_dir=raw, out_dir=root / "labels")
    run_segment(params, labels_dir=root / "labels", raw_dir=raw, out_dir=root / "audio")
    return root / "audio"


@pytest.fixture(scope="module")
def trained(audio: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage 1, then stage 2 je and noje, with :func:`tiny_params`; returns the run folder."""
    run = tmp_path_factory.mktemp("run")
    params = tiny_params()
    run_stage1(params, extractor="hcnn", audio_dir=audio, out_path=run / "je/stage1.pt", live_dir=run / "live/stage1")
    for variant in ("je", "noje"):
        run_stage2(
            params,
            extractor="hcnn",
            variant=variant,
            audio_dir=audio,
            stage1_path=run / "je/stage1.pt" if variant == "je" else None,
            out_path=run / f"{variant}/model.pt",
            live_dir=run / f"live/{variant}",
        )
    return run


# --- stages end to end --------------------------------------------------------------------------


def test_stages_write_loadable_self_describing_checkpoints(trained: Path, audio: Path) -> None:
    params = tiny_params()
    tags = TrainCrops(audio, crop_samples=16000, seed=0).tags
    joint, meta1 = load_joint(trained / "je/stage1.pt")
    assert (meta1.extractor, meta1.variant, meta1.tags, meta1.crop_samples) == ("hcnn", "je", tags, 16000)
    for variant in ("je", "noje"):
        tagger, meta = load_tagger(trained / f"{variant}/model.pt")
        assert (meta.extractor, meta.variant, meta.tags, meta.sample_rate) == ("hcnn", variant, tags, 16000)
        assert meta.crop_samples == 16000 and meta.model == dataclasses.asdict(params.model)
        assert (tagger.projection is not None) == (variant == "je")
        assert tagger(torch.zeros(2, 16000)).shape == (2, N_TAGS)
    # je carries the stage-1 projection head and tag encoder for retrieval
    je, _ = load_tagger(trained / "je/model.pt")
    assert_same_state(state(je.projection), state(joint.projection))
    assert_same_state(state(je.tag_encoder), state(joint.tag_encoder))
    # resume files are gone after success, the outputs are all there is
    assert not (trained / "je/.resume").exists() and not (trained / "noje/.resume").exists()


def test_both_stages_record_the_same_meta_audio_preprocessing_included(trained: Path, audio: Path) -> None:
    written = torch.load(trained / "je/stage1.pt", weights_only=True)["meta"]
    assert written["peak_normalize"] is True and written["mu_law"] is False  # recorded, not left to the defaults
    meta1 = load_joint(trained / "je/stage1.pt")[1]
    for variant in ("je", "noje"):
        assert dataclasses.replace(load_tagger(trained / f"{variant}/model.pt")[1], variant="je") == meta1


def test_stage2_je_leaves_every_extractor_weight_and_statistic_unchanged(trained: Path) -> None:
    joint, _ = load_joint(trained / "je/stage1.pt")
    je, _ = load_tagger(trained / "je/model.pt")
    before, after = state(joint.extractor), state(je.extractor)
    assert any("running_mean" in key for key in before)  # BN statistics are part of the comparison
    assert_same_state(before, after)
    # the noje extractor, trained from the same initial seed, did move
    noje, _ = load_tagger(trained / "noje/model.pt")
    assert not all(torch.equal(v, state(noje.extractor)[k]) for k, v in before.items())


def test_dvclive_logs_each_epoch_and_validation_auc_matches_sklearn(trained: Path, audio: Path) -> None:
    stage1 = trained / "live/stage1/plots/metrics"
    for name in ("train/loss", "train/ae_loss", "train/pair_loss", "valid/loss", "valid/ae_loss", "valid/pair_loss"):
        assert len(read_tsv(stage1 / f"{name}.tsv")) == 2, name
    loss, ae, pair = (read_tsv(stage1 / f"train/{n}.tsv") for n in ("loss", "ae_loss", "pair_loss"))
    assert np.allclose(loss, np.add(ae, pair), rtol=1e-5)
    # stage 2: the last logged valid ROC-AUC is the macro AUC of the saved model's mean crop scores
    logged = read_tsv(trained / "live/noje/plots/metrics/valid/roc_auc.tsv")
    assert len(logged) == 2
    tagger, _ = load_tagger(trained / "noje/model.pt")
    valid = EvalCrops(audio, split="valid", crop_samples=16000, n_crops=2)
    crops, tags = zip(*(valid[i] for i in range(len(valid))), strict=True)
    with torch.no_grad():
        scores = torch.sigmoid(tagger(torch.cat(crops))).reshape(len(valid), 2, N_TAGS).mean(1).numpy()
    truth = torch.stack(tags).numpy()
    both = truth.min(0) != truth.max(0)
    assert 0 < both.sum() < N_TAGS
    expected = np.mean([roc_auc_score(truth[:, j], scores[:, j]) for j in np.flatnonzero(both)])
    assert logged[-1] == pytest.approx(expected, abs=1e-6)


def test_same_seed_same_weights_whatever_the_workers(trained: Path, audio: Path, tmp_path: Path) -> None:
    for seed, workers in ((0, 2), (1, 0)):
        run_stage2(
            tiny_params(seed=seed, workers=workers),
            extractor="hcnn",
            variant="noje",
            audio_dir=audio,
            stage1_path=None,
            out_path=tmp_path / f"{seed}.pt",
            live_dir=tmp_path / f"live{seed}",
        )
    reference = state(load_tagger(trained / "noje/model.pt")[0])
    assert_same_state(state(load_tagger(tmp_path / "0.pt")[0]), reference)
    other = state(load_tagger(tmp_path / "1.pt")[0])
    assert not all(torch.equal(other[key], value) for key, value in reference.items())


def test_killed_run_resumes_and_ends_like_an_uninterrupted_run(audio: Path, tmp_path: Path) -> None:
    four = [{"optimizer": "adam", "lr": 1e-3, "epochs": 2}, {"optimizer": "sgd", "lr": 1e-3, "epochs": 2}]
    params = tiny_params(stage2_schedule=four)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params_to_dict(params)))
    out, live = tmp_path / "killed/model.pt", tmp_path / "killed/live"
    command = [sys.executable, "-m", "jetatag.cli", "stage2", "--params", str(params_file), "--extractor", "hcnn"]
    command += ["--variant", "noje", "--audio", str(audio), "--out", str(out), "--live", str(live)]

    env = os.environ | {"OMP_NUM_THREADS": "1"}  # as in this process (one_thread), so floating point agrees

    # kill -9 as soon as the first epoch's resume file is in place
    with open(tmp_path / "first.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while process.poll() is None and not resume_path(out).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not out.exists()
    epochs_done = torch.load(resume_path(out), weights_only=True)["epochs_done"]
    assert 1 <= epochs_done < 4

    second = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resuming after epoch {epochs_done} of 4" in second.stderr
    assert not resume_path(out).parent.exists()

    reference = tmp_path / "whole/model.pt"
    run_stage2(
        params,
        extractor="hcnn",
        variant="noje",
        audio_dir=audio,
        stage1_path=None,
        out_path=reference,
        live_dir=tmp_path / "whole/live",
    )
    assert_same_state(state(load_tagger(out)[0]), state(load_tagger(reference)[0]))
    # the resumed run's curves are complete and equal to the uninterrupted run's
    for name in ("train/loss", "valid/loss", "lr"):
        resumed = read_tsv(live / f"plots/metrics/{name}.tsv")
        assert resumed == read_tsv(tmp_path / f"whole/live/plots/metrics/{name}.tsv")
        assert len(resumed) == 4


def test_non_finite_loss_stops_naming_epoch_and_step(
    audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = TrainCrops.__getitem__

    def nan_from_second_epoch(self: TrainCrops, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        wave, tags = item(self, index)
        return (wave * float("nan") if self.epoch == 1 else wave), tags

    monkeypatch.setattr(TrainCrops, "__getitem__", nan_from_second_epoch)
    out = tmp_path / "model.pt"
    with pytest.raises(StageError, match=r"stage2 hcnn-noje: non-finite loss \(loss=nan\) at epoch 2 step 1 of 4"):
        run_stage2(
            tiny_params(),
            extractor="hcnn",
            variant="noje",
            audio_dir=audio,
            stage1_path=None,
            out_path=out,
            live_dir=tmp_path / "live",
        )
    assert not out.exists()


def test_schedule_switches_to_a_fresh_optimizer_at_each_phase(
    trained: Path, audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[torch.optim.Optimizer] = []
    train_epoch = loop._train_epoch

    def spy(task: loop.Task, loader: Any, optimizer: torch.optim.Optimizer, *args: Any, **kw: Any) -> Any:
        used.append(optimizer)
        return train_epoch(task, loader, optimizer, *args, **kw)

    monkeypatch.setattr(loop, "_train_epoch", spy)
    schedule = [
        {"optimizer": "adam", "lr": 1e-3, "epochs": 2},
        {"optimizer": "sgd", "lr": 1e-2, "epochs": 0},
        {"optimizer": "sgd", "lr": 1e-2, "epochs": 1},
        {"optimizer": "sgd", "lr": 1e-4, "epochs": 1},
    ]
    _je_stage2(tiny_params(stage2_schedule=schedule), trained, audio, tmp_path)
    assert [type(o).__name__ for o in used] == ["Adam", "Adam", "SGD", "SGD"]
    assert used[0] is used[1] and len({id(o) for o in used[1:]}) == 3
    assert [o.param_groups[0]["lr"] for o in used] == [1e-3, 1e-3, 1e-2, 1e-4]
    assert all(g["nesterov"] and g["momentum"] == 0.9 for o in used[2:] for g in o.param_groups)
    assert read_tsv(tmp_path / "live/plots/metrics/lr.tsv") == [1e-3, 1e-3, 1e-2, 1e-4]


def _je_stage2(params: Params, trained: Path, audio: Path, out_dir: Path) -> Path:
    """Train Harmonic-CNN's JE stage 2 on the tiny stage-1 checkpoint into ``out_dir``; the model's path."""
    out = out_dir / "model.pt"
    run_stage2(
        params,
        extractor="hcnn",
        variant="je",
        audio_dir=audio,
        stage1_path=trained / "je/stage1.pt",
        out_path=out,
        live_dir=out_dir / "live",
    )
    return out


def _momentum(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Copies of an SGD optimizer's momentum buffers (none before its first step)."""
    return [s["momentum_buffer"].clone() for s in optimizer.state.values() if "momentum_buffer" in s]


@pytest.mark.parametrize("optimizer_state", ["fresh", "carry"])
def test_sgd_momentum_survives_a_learning_rate_drop_only_when_carried(
    optimizer_state: str, trained: Path, audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    epochs: list[tuple[torch.optim.Optimizer, list[torch.Tensor], list[torch.Tensor]]] = []
    train_epoch = loop._train_epoch

    def spy(task: loop.Task, loader: Any, optimizer: torch.optim.Optimizer, *args: Any, **kw: Any) -> Any:
        before = _momentum(optimizer)
        result = train_epoch(task, loader, optimizer, *args, **kw)
        epochs.append((optimizer, before, _momentum(optimizer)))
        return result

    monkeypatch.setattr(loop, "_train_epoch", spy)
    schedule = [{"optimizer": "sgd", "lr": 1e-2, "epochs": 1}, {"optimizer": "sgd", "lr": 1e-3, "epochs": 1}]
    _je_stage2(tiny_params(stage2_schedule=schedule, optimizer_state=optimizer_state), trained, audio, tmp_path)
    (first, _, after_drop_1), (second, before_2, _) = epochs
    assert [g["lr"] for g in second.param_groups] == [1e-3] * len(second.param_groups)
    if optimizer_state == "carry":
        assert second is first and len(before_2) == len(after_drop_1) > 0
        assert all(torch.equal(a, b) for a, b in zip(before_2, after_drop_1, strict=True))  # the same momentum
    else:
        assert second is not first and before_2 == []  # a fresh SGD: momentum starts from zero


def test_a_run_resumed_inside_a_carried_sgd_run_ends_like_an_uninterrupted_one(
    audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = [{"optimizer": "sgd", "lr": 1e-2, "epochs": 1}, {"optimizer": "sgd", "lr": 1e-3, "epochs": 1}]
    params = tiny_params(stage2_schedule=schedule, optimizer_state="carry")
    train_epoch, calls = loop._train_epoch, []

    def dies_in_the_second_epoch(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # after epoch 1's resume file, before epoch 2 steps
        return train_epoch(*args, **kw)

    def run(out: Path) -> None:
        run_stage2(params, extractor="hcnn", variant="noje", audio_dir=audio, stage1_path=None, out_path=out,
                   live_dir=out.parent / "live")  # fmt: skip

    monkeypatch.setattr(loop, "_train_epoch", dies_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed/model.pt")
    assert torch.load(resume_path(tmp_path / "killed/model.pt"), weights_only=True)["epochs_done"] == 1
    monkeypatch.setattr(loop, "_train_epoch", train_epoch)
    run(tmp_path / "killed/model.pt")  # the SGD and its momentum come back from the resume file, at lr 1e-3
    run(tmp_path / "whole/model.pt")
    assert_same_state(
        state(load_tagger(tmp_path / "killed/model.pt")[0]), state(load_tagger(tmp_path / "whole/model.pt")[0])
    )


# --- units --------------------------------------------------------------------------------------


def _batches(n_items: int, batch_order: str) -> list[list[int]]:
    """Item indices of each training batch a loader of ``n_items`` draws under ``train.batch_order``."""
    dataset = torch.utils.data.TensorDataset(torch.arange(n_items))
    train = tiny_params(batch_order=batch_order).train
    generator = torch.Generator().manual_seed(0)
    loader = loop.make_loader(dataset, batch_size=4, train=train, device=torch.device("cpu"), generator=generator)
    return [batch.tolist() for (batch,) in loader]


def test_annotation_batch_order_keeps_dataset_order_and_the_last_partial_batch() -> None:
    assert _batches(10, "annotation") == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert _batches(9, "annotation") == [[0, 1, 2, 3], [4, 5, 6, 7]]  # a last batch of one cannot pass BatchNorm
    shuffled = _batches(10, "shuffled")
    assert [len(b) for b in shuffled] == [4, 4] and sum(shuffled, []) != list(range(8))  # permuted, ragged end dropped


def test_optimizer_runs_share_consecutive_phases_of_one_kind_only_when_carried() -> None:
    phases = (Phase("adam", 1e-4, 2), Phase("sgd", 1e-3, 1), Phase("sgd", 1e-4, 1), Phase("sgd", 1e-5, 1))
    assert optimizer_runs(phases, "fresh") == [0, 1, 2, 3]
    assert optimizer_runs(phases, "carry") == [0, 1, 1, 1]  # A21: one SGD per stage, its lr re-assigned
    assert optimizer_runs((*phases, Phase("adam", 1e-4, 1)), "carry") == [0, 1, 1, 1, 4]


def test_phase_index_and_total_epochs() -> None:
    phases = (Phase("adam", 1e-4, 2), Phase("sgd", 1e-3, 0), Phase("sgd", 1e-4, 3))
    assert total_epochs(phases) == 5
    assert [phase_index(phases, e) for e in range(5)] == [0, 0, 2, 2, 2]
    with pytest.raises(ValueError, match="past the schedule"):
        phase_index(phases, 5)


def test_l2_decay_applies_to_trainable_convolution_weights_only() -> None:
    extractor = nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2), nn.Conv2d(2, 2, 1), nn.Linear(2, 2))
    extractor[3].requires_grad_(False)
    head = nn.Conv1d(2, 2, 1)  # a conv outside l2_convs keeps no decay
    decay, rest = param_groups(nn.Sequential(extractor, head), conv_l2=1e-4, l2_convs=extractor)
    assert {id(p) for p in decay["params"]} == {id(extractor[0].weight), id(extractor[2].weight)}
    assert decay["weight_decay"] == pytest.approx(2e-4)  # gradient of 1e-4 · Σw² (Keras l2)
    expected_rest = {id(extractor[0].bias), id(extractor[1].weight), id(extractor[1].bias), id(extractor[2].bias)}
    assert {id(p) for p in rest["params"]} == expected_rest | {id(head.weight), id(head.bias)}
    assert rest["weight_decay"] == 0.0
    no_decay, _ = param_groups(nn.Sequential(extractor, head), conv_l2=1e-4, l2_convs=None)
    assert no_decay["params"] == []


@pytest.mark.parametrize("spec", EXTRACTOR_SPECS, ids=lambda spec: spec.id)
def test_training_decays_the_extractor_convs_its_spec_names(
    spec: ExtractorSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage's run hands fit() its extractor as ``l2_convs`` exactly where the spec says the authors regularise."""
    params = tiny_params()
    tagger = build_tagger(spec.id, params.model, n_tags=4, sample_rate=16000)
    handed: dict[str, Any] = {}
    monkeypatch.setattr(setup, "fit", lambda *args, **kwargs: handed.update(kwargs) or [])
    run = setup.Run(
        params=params,
        extractor=spec.id,
        audio_dir=Path("audio"),
        out_path=Path("out.pt"),
        live_dir=Path("live"),
        device=torch.device("cpu"),
        train_set=SimpleNamespace(crop_samples=16000),  # type: ignore[arg-type]
        valid_set=[],  # type: ignore[arg-type]
        valid_loader=None,  # type: ignore[arg-type]
    )
    task = loop.Task(name="t", model=tagger, losses=lambda wave, tags: {}, validate=dict)
    run.fit(task, [], phases=params.train.stage2_schedule, fingerprint="f", save=lambda path: None)
    decay, _ = param_groups(tagger, conv_l2=1e-4, l2_convs=handed["l2_convs"])
    convs = {id(m.weight) for m in tagger.extractor.modules() if isinstance(m, nn.modules.conv._ConvNd)}
    assert convs and {id(p) for p in decay["params"]} == (convs if spec.conv_l2_regularised else set())


def test_l2_decay_follows_the_authors() -> None:
    assert [spec.id for spec in EXTRACTOR_SPECS if not spec.conv_l2_regularised] == ["hcnn"]


def test_optimizers_of_the_phases() -> None:
    model = nn.Linear(2, 2)
    groups = [{"params": [model.weight], "weight_decay": 2e-4}, {"params": [model.bias], "weight_decay": 0.0}]
    adam = make_optimizer(Phase("adam", 1e-4, 1), groups)
    sgd = make_optimizer(Phase("sgd", 1e-3, 1), groups)  # the same groups, reused across phases
    assert isinstance(adam, torch.optim.Adam) and isinstance(sgd, torch.optim.SGD)
    assert [g["lr"] for g in sgd.param_groups] == [1e-3, 1e-3] and [g["lr"] for g in adam.param_groups] == [1e-4] * 2
    assert [g["weight_decay"] for g in sgd.param_groups] == [2e-4, 0.0]
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in sgd.param_groups)


def test_macro_roc_auc_skips_tags_without_both_classes() -> None:
    rng = np.random.default_rng(0)
    tags = (rng.random((40, 5)) < 0.4).astype(np.float32)
    tags[:, 3] = 0  # no positive: undefined, skipped
    scores = rng.random((40, 5))
    expected = np.mean([roc_auc_score(tags[:, j], scores[:, j]) for j in (0, 1, 2, 4)])
    assert macro_roc_auc(tags, scores) == pytest.approx(expected, rel=1e-12)
    assert macro_roc_auc(np.ones((4, 2)), scores[:4, :2]) is None


def test_resume_file_of_another_run_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    run_a, run_b = fingerprint({"seed": 0}, {"a": tmp_path / "a"}), fingerprint({"seed": 1}, {"a": tmp_path / "a"})
    assert run_a != run_b
    path = resume_path(tmp_path / "model.pt")
    save_resume(path, ResumeState(run_a, 1, 0, {"w": torch.ones(2)}, {}, [{"train/loss": 1.0}]))
    assert load_resume(path, expected_fingerprint=run_a, map_location=torch.device("cpu")).epochs_done == 1
    assert load_resume(path, expected_fingerprint=run_b, map_location=torch.device("cpu")) is None


def test_run_fingerprint_follows_params_and_inputs_but_not_workers(audio: Path) -> None:
    def run_id(params: Params) -> str:
        return run_fingerprint("stage2", params, extractor="hcnn", audio_dir=audio, variant="noje")

    base = run_id(tiny_params())
    assert run_id(tiny_params(workers=2)) == base
    assert run_id(tiny_params(seed=1)) != base
    shard = sorted(audio.glob("shard-*.npy"))[0]
    times = shard.stat()
    os.utime(shard, ns=(times.st_atime_ns, times.st_mtime_ns + 1))  # as a re-run segment would leave it
    try:
        assert run_id(tiny_params()) != base
    finally:
        os.utime(shard, ns=(times.st_atime_ns, times.st_mtime_ns))


def test_stage1_checkpoint_errors_name_the_file(trained: Path, audio: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(StageError, match="bad.pt: not a jetatag stage-1 checkpoint"):
        load_joint(bad)
    joint, meta = load_joint(trained / "je/stage1.pt")
    save_joint(bad, joint, meta=dataclasses.replace(meta, format_version=99))
    with pytest.raises(StageError, match="bad.pt: stage-1 checkpoint format version 99"):
        load_joint(bad)
    with pytest.raises(StageError, match=r"stage1.pt: stage-1 checkpoint does not match this run: model.width"):
        wider = params_to_dict(tiny_params()) | {"model": {"width": 0.0625, "hcnn_crop_samples": 16000}}
        _je_stage2(params_from_dict(wider), trained, audio, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_precision_picks_bf16_autocast_per_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a CUDA device object needs no GPU here
    for device, precision, bf16 in [(cpu, "auto", False), (cpu, "float32", False), (cpu, "bf16", True)]:
        with autocast(device, precision):
            assert torch.is_autocast_enabled("cpu") == bf16
    assert isinstance(autocast(cuda, "float32"), contextlib.nullcontext)  # float32 on CUDA too


def test_bf16_precision_trains_on_cpu_and_float32_equals_auto(audio: Path, tmp_path: Path) -> None:
    """train.precision: on CPU "auto" is float32 (the same weights), "bf16" trains under autocast to other weights."""
    weights = {}
    for precision in ("auto", "float32", "bf16"):
        out = tmp_path / precision / "model.pt"
        run_stage2(tiny_params(precision=precision), extractor="hcnn", variant="noje", audio_dir=audio,
                   stage1_path=None, out_path=out, live_dir=out.parent / "live")  # fmt: skip
        weights[precision] = state(load_tagger(out)[0])
        assert all(value.dtype != torch.bfloat16 for value in weights[precision].values())  # float32 parameters
        assert all(math.isfinite(v) for v in read_tsv(out.parent / "live/plots/metrics/valid/roc_auc.tsv"))
    assert_same_state(weights["auto"], weights["float32"])
    assert any(not torch.equal(weights["bf16"][k], weights["auto"][k]) for k in weights["auto"])


def test_cuda_requested_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(StageError, match="train.device is 'cuda'"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


# --- stage-1 geometry and the JE stage-2 embedding cache ---------------------------------------------


def test_stage1_logs_the_joint_space_geometry_every_epoch(trained: Path) -> None:
    metrics = trained / "live/stage1/plots/metrics/valid"
    for name in ("zt_mean_cos", "zt_erank", "zm_mean_cos", "zm_erank"):
        values = read_tsv(metrics / f"{name}.tsv")
        assert len(values) == 2, name
        if name.endswith("mean_cos"):
            assert all(-1.0 <= v <= 1.0 for v in values)
        else:
            assert all(v >= 1.0 for v in values)


def test_cached_crops_draw_one_grid_crop_per_clip_seeded_by_epoch() -> None:
    h = torch.arange(5 * 4 * H_DIM, dtype=torch.float32).reshape(5, 4, H_DIM)
    tags = torch.eye(5)
    data = CachedCrops(h, tags, seed=3)
    data.set_epoch(2)
    first = [data[i] for i in range(5)]
    for i, (item_h, item_tags) in enumerate(first):
        j = cached_crop_index(seed=3, epoch=2, index=i, n_crops=4)
        assert torch.equal(item_h, h[i, j]) and torch.equal(item_tags, tags[i])
    assert all(torch.equal(a[0], data[i][0]) for i, a in enumerate(first))  # pure function of (seed, epoch, clip)
    picks = {cached_crop_index(seed=3, epoch=e, index=0, n_crops=4) for e in range(40)}
    assert picks == {0, 1, 2, 3}


def test_embedding_cache_holds_the_frozen_extractors_h_of_the_grid_crops(trained: Path, audio: Path) -> None:
    joint, _ = load_joint(trained / "je/stage1.pt")
    extractor = joint.extractor.eval()
    grid = EvalCrops(audio, split="train", crop_samples=16000, n_crops=3)
    h, tags = embed_crops(extractor, grid, train=tiny_params().train, device=torch.device("cpu"))
    assert h.shape == (len(grid), 3, H_DIM)
    with torch.no_grad():
        for i in (0, len(grid) - 1):
            crops, clip_tags = grid[i]
            assert torch.allclose(h[i], extractor(crops), atol=1e-5)
            assert torch.equal(tags[i], clip_tags)


def test_authors_model_switches_train_and_reload(audio: Path, tmp_path: Path) -> None:
    """Stage 1 and cached JE stage 2 with A21's pair loss, tag encoder and Harmonic-CNN (h narrower than 1024)."""
    raw = params_to_dict(tiny_params())
    a21 = ("pair_loss", "hcnn_head", "hcnn_front_end", "init_and_bn")
    raw["model"] |= dict.fromkeys(a21, "a21") | {"tag_encoder_norm": "none"}
    params = params_from_dict(raw)
    stage1 = tmp_path / "je/stage1.pt"
    run_stage1(params, extractor="hcnn", audio_dir=audio, out_path=stage1, live_dir=tmp_path / "live/stage1")
    run_stage2(
        params,
        extractor="hcnn",
        variant="je",
        audio_dir=audio,
        stage1_path=stage1,
        out_path=tmp_path / "je/model.pt",
        live_dir=tmp_path / "live/je",
    )
    tagger, meta = load_tagger(tmp_path / "je/model.pt")
    width = h_dim(tagger.extractor)
    assert width < H_DIM and tagger.classifier.hidden1.dense.in_features == width
    assert meta.model["hcnn_head"] == "a21" and meta.model["tag_encoder_norm"] == "none"
    assert meta.model["hcnn_front_end"] == "a21" and tagger.extractor.hstft_bn.eps == 1e-3  # rebuilt as trained


def test_je_stage2_on_random_crops_is_a_switch(trained: Path, audio: Path, tmp_path: Path) -> None:
    outputs = {}
    for cache in (True, False):
        out = _je_stage2(tiny_params(je_embedding_cache=cache, je_cache_crops=2), trained, audio, tmp_path / f"{cache}")
        outputs[cache] = state(load_tagger(out)[0])
        assert len(read_tsv(tmp_path / f"{cache}/live/plots/metrics/valid/roc_auc.tsv")) == 2
    # the frozen extractor is the same either way; the classifiers saw different crops
    assert_same_state(
        {k: v for k, v in outputs[True].items() if k.startswith("extractor.")},
        {k: v for k, v in outputs[False].items() if k.startswith("extractor.")},
    )
    assert not torch.equal(outputs[True]["classifier.out.weight"], outputs[False]["classifier.out.weight"])
