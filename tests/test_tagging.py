"""Tagging tools: model bundles, tagging files of any format, collection index and tag search.

The models are tiny random-init taggers (Harmonic-CNN at width 1/32, 2.5 s crops): these tests check
behaviour (crops, averaging, formats, error handling, ranking), not tagging quality.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from jetatag.cli import main
from jetatag.config import ModelParams
from jetatag.errors import StageError
from jetatag.models.tagger import TaggerMeta, build_tagger, load_tagger, save_tagger
from jetatag.tagging.audio import find_audio, load_audio
from jetatag.tagging.bundle import MANIFEST, export_bundle, load_bundle, load_model
from jetatag.tagging.index import read_index, write_index
from jetatag.tagging.search import parse_tags, search
from jetatag.tagging.tag import crop_starts, pad_to_crop

SR = 16000
CROP = 40000  # 2.5 s: the 2-second test file is shorter than one crop
TAGS = ["guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock"]


def _save_model(path: Path, *, variant: str, seed: int, peak_normalize: bool = True, mu_law: bool = False) -> Path:
    """A random-init tiny tagger checkpoint (je ones carry projection head and tag encoder)."""
    torch.manual_seed(seed)
    model = ModelParams(width=0.03125, hcnn_crop_samples=CROP)
    tagger = build_tagger("hcnn", model, n_tags=len(TAGS), sample_rate=SR, joint_heads=variant == "je")
    meta = TaggerMeta(
        extractor="hcnn",
        variant=variant,
        tags=list(TAGS),
        sample_rate=SR,
        crop_samples=CROP,
        model=dataclasses.asdict(model),
        peak_normalize=peak_normalize,
        mu_law=mu_law,
    )
    save_tagger(path, tagger, meta=meta)
    return path


@pytest.fixture(scope="module")
def je_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_model(tmp_path_factory.mktemp("je") / "model.pt", variant="je", seed=0)


@pytest.fixture(scope="module")
def noje_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_model(tmp_path_factory.mktemp("noje") / "model.pt", variant="noje", seed=1)


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of test audio: mono wav, flac in a subfolder, stereo 44.1 kHz, a 2 s file and a corrupt mp3."""
    root = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(3)
    t16 = np.arange(6 * SR) / SR
    sf.write(root / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t16) + 0.05 * rng.standard_normal(t16.size), SR)
    (root / "sub").mkdir()
    sf.write(root / "sub" / "noise.flac", 0.2 * rng.standard_normal(4 * SR), SR)
    t44 = np.arange(5 * 44100) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 330 * t44), 0.4 * np.sin(2 * np.pi * 330 * t44)], axis=1)
    sf.write(root / "stereo44k.wav", stereo, 44100)
    sf.write(root / "short.wav", 0.1 * rng.standard_normal(2 * SR), SR)
    (root / "corrupt.mp3").write_bytes(rng.bytes(4000))
    (root / "notes.txt").write_text("not audio, not picked up from a folder")
    return root


def _probs_by_hand(
    model_path: Path,
    path: Path,
    *,
    crop_starts_: list[int],
    pad_to: int | None = None,
    normalize: bool = True,
    mu_law: bool = False,
) -> np.ndarray:
    """Mean sigmoid of the checkpoint's logits over the given crops, computed without the tagging code."""
    tagger, _ = load_tagger(model_path)
    wave, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == SR
    x = wave.mean(axis=1)
    x = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255) if mu_law else x
    x = x / np.abs(x).max() if normalize else x
    if pad_to is not None:
        x = np.concatenate([x, np.zeros(pad_to - x.size, np.float32)])
    crops = torch.from_numpy(np.stack([x[s : s + CROP] for s in crop_starts_]))
    with torch.no_grad():
        return torch.sigmoid(tagger(crops)).mean(dim=0).numpy()


# --- crops and audio ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "hop", "expected"),
    [
        (100, 40, [0]),  # shorter than one crop: one (padded) crop
        (CROP, CROP, [0]),
        (3 * CROP, CROP, [0, CROP, 2 * CROP]),
        (2 * CROP + 7, CROP, [0, CROP, CROP + 7]),  # tail covered by a crop aligned to the end
        (CROP + 30000, 20000, [0, 20000, 30000]),
    ],
)
def test_crop_starts(n: int, hop: int, expected: list[int]) -> None:
    assert crop_starts(n, crop_samples=CROP, hop_samples=hop).tolist() == expected


def test_pad_to_crop(rng: np.random.Generator) -> None:
    short = rng.standard_normal(1000).astype(np.float32)
    padded = pad_to_crop(short, CROP)
    assert padded.shape == (CROP,)
    np.testing.assert_array_equal(padded[:1000], short)
    assert not padded[1000:].any()
    long = rng.standard_normal(CROP + 1).astype(np.float32)
    assert pad_to_crop(long, CROP) is long


def test_load_audio_stereo_44k_resampled_mono_peak_normalised(music: Path) -> None:
    wave = load_audio(music / "stereo44k.wav", sample_rate=SR)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - 5 * SR) <= 1
    assert np.abs(wave).max() == pytest.approx(1.0)
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(wave.size, 1 / SR)[spectrum.argmax()] == pytest.approx(330, abs=1)  # pitch kept


def test_load_audio_corrupt_names_file(music: Path) -> None:
    with pytest.raises(StageError, match="corrupt.mp3"):
        load_audio(music / "corrupt.mp3", sample_rate=SR)


def test_find_audio_walks_folders_and_reports_missing(music: Path, tmp_path: Path) -> None:
    files, missing = find_audio([music, music / "tone.wav", tmp_path / "nope.wav"])
    names = sorted(p.name for p in files)
    assert names == ["corrupt.mp3", "noise.flac", "short.wav", "stereo44k.wav", "tone.wav"]  # no duplicate, no txt
    assert missing == [tmp_path / "nope.wav"]


# --- bundles -----------------------------------------------------------------------------------


def test_export_load_round_trip_gives_identical_scores(je_model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "model.jetatag"
    assert main(["export", "--model", str(je_model), "--out", str(bundle)]) == 0
    from_bundle, from_checkpoint = load_bundle(bundle), load_model(je_model)
    assert from_bundle.meta == from_checkpoint.meta
    assert from_bundle.sha256 == from_checkpoint.sha256
    wave = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, CROP)).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(from_bundle.tagger(wave), from_checkpoint.tagger(wave), rtol=0, atol=0)
    again = tmp_path / "again.jetatag"
    export_bundle(je_model, again)
    assert again.read_bytes() == bundle.read_bytes()  # exports are reproducible


def test_export_by_extractor_and_variant(je_model: Path, tmp_path: Path) -> None:
    models_dir = je_model.parent.parent
    (models_dir / "hcnn" / "je").mkdir(parents=True, exist_ok=True)
    (models_dir / "hcnn" / "je" / "model.pt").write_bytes(je_model.read_bytes())
    out = tmp_path / "m.jetatag"
    args = ["export", "--extractor", "hcnn", "--variant", "je", "--models-dir", str(models_dir), "--out", str(out)]
    assert main(args) == 0
    assert load_bundle(out).meta.extractor == "hcnn"
    assert main(["export", "--extractor", "hcnn", "--out", str(out)]) == 2  # variant missing


def _rewrite_bundle(src: Path, dst: Path, *, manifest: dict | None = None, payload: bytes | None = None) -> Path:
    with zipfile.ZipFile(src) as archive:
        old_manifest, old_payload = json.loads(archive.read(MANIFEST)), archive.read("model.pt")
    with zipfile.ZipFile(dst, "w") as archive:
        archive.writestr(MANIFEST, json.dumps({**old_manifest, **(manifest or {})}))
        archive.writestr("model.pt", old_payload if payload is None else payload)
    return dst


def test_load_rejects_foreign_and_damaged_files(je_model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "ok.jetatag"
    export_bundle(je_model, bundle)
    text = tmp_path / "notes.jetatag"
    text.write_text("hello")
    with pytest.raises(StageError, match=r"notes\.jetatag: not a jetatag model"):
        load_model(text)
    with pytest.raises(StageError, match=r"notes\.jetatag: not a jetatag model bundle \(not a readable zip"):
        load_bundle(text)
    with pytest.raises(StageError, match=r"model\.pt: not a jetatag model bundle: no jetatag-bundle\.json.*export"):
        load_bundle(je_model)
    foreign_zip = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign_zip, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(StageError, match=r"foreign\.zip: not a jetatag tagger checkpoint"):
        load_model(foreign_zip)
    newer = _rewrite_bundle(bundle, tmp_path / "newer.jetatag", manifest={"format_version": 99})
    with pytest.raises(StageError, match=r"newer\.jetatag: bundle format version 99 .* upgrade jetatag"):
        load_model(newer)
    other = _rewrite_bundle(bundle, tmp_path / "other.jetatag", manifest={"format": "something-else"})
    with pytest.raises(StageError, match=r"other\.jetatag: not a jetatag model bundle"):
        load_model(other)
    payload = bytearray(je_model.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    flipped = _rewrite_bundle(bundle, tmp_path / "flipped.jetatag", payload=bytes(payload))
    with pytest.raises(StageError, match=r"flipped\.jetatag: damaged model bundle: checkpoint SHA-256"):
        load_model(flipped)
    assert main(["tag", str(je_model.parent), "--model", str(text)]) == 1


# --- tag ---------------------------------------------------------------------------------------


def test_tag_mixed_inputs_json(
    je_model: Path, music: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        rc = main(["tag", str(music), "--model", str(je_model), "--format", "json", "--top-k", "3"])
    assert rc == 0
    results = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(results) == ["noise.flac", "short.wav", "stereo44k.wav", "tone.wav"]
    assert "corrupt.mp3" in caplog.text and "skipped" in caplog.text
    for r in results.values():
        scores = [t["score"] for t in r["tags"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert {t["tag"] for t in r["tags"]} <= set(TAGS) and all(0 < s < 1 for s in scores)
    assert results["short.wav"]["n_crops"] == 1 and results["short.wav"]["duration_s"] == pytest.approx(2.0)
    assert results["stereo44k.wav"]["duration_s"] == pytest.approx(5.0, abs=1e-3)
    assert results["tone.wav"]["n_crops"] == 3  # 6 s = crops at 0, 2.5 s and one ending at 6 s


def test_tag_scores_are_mean_crop_probabilities(
    je_model: Path, music: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tone, short = music / "tone.wav", music / "short.wav"
    args = ["tag", str(tone), str(short), "--model", str(je_model), "--format", "csv", "--top-k", str(len(TAGS))]
    args += ["--batch-size", "2"]  # the 3 crops of tone.wav span two batches
    assert main(args) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 * len(TAGS)
    expected = {
        str(tone): _probs_by_hand(je_model, tone, crop_starts_=[0, CROP, 6 * SR - CROP]),
        str(short): _probs_by_hand(je_model, short, crop_starts_=[0], pad_to=CROP),
    }
    for row in rows:
        assert float(row["score"]) == pytest.approx(expected[row["file"]][TAGS.index(row["tag"])], abs=2e-6)
    ranks = [int(r["rank"]) for r in rows if r["file"] == str(tone)]
    assert ranks == list(range(1, len(TAGS) + 1))


def test_tag_feeds_raw_levels_to_a_model_trained_without_peak_normalisation(
    music: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _save_model(tmp_path / "raw.pt", variant="noje", seed=2, peak_normalize=False)
    tone, starts = music / "tone.wav", [0, CROP, 6 * SR - CROP]
    assert main(["tag", str(tone), "--model", str(model), "--format", "csv", "--top-k", str(len(TAGS))]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    raw = _probs_by_hand(model, tone, crop_starts_=starts, normalize=False)
    assert not np.allclose(raw, _probs_by_hand(model, tone, crop_starts_=starts), atol=1e-4)  # the level matters
    assert len(rows) == len(TAGS)
    for row in rows:
        assert float(row["score"]) == pytest.approx(raw[TAGS.index(row["tag"])], abs=2e-6)


def test_tag_compands_for_a_model_trained_on_mu_law_shards(
    music: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _save_model(tmp_path / "mu.pt", variant="noje", seed=3, mu_law=True)
    assert load_tagger(model)[1].mu_law is True
    tone, starts = music / "tone.wav", [0, CROP, 6 * SR - CROP]
    assert main(["tag", str(tone), "--model", str(model), "--format", "csv", "--top-k", str(len(TAGS))]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    companded = _probs_by_hand(model, tone, crop_starts_=starts, mu_law=True)
    assert not np.allclose(companded, _probs_by_hand(model, tone, crop_starts_=starts), atol=1e-4)
    for row in rows:
        assert float(row["score"]) == pytest.approx(companded[TAGS.index(row["tag"])], abs=2e-6)


def test_checkpoint_without_mu_law_loads_as_not_companded(tmp_path: Path) -> None:
    path = _save_model(tmp_path / "old.pt", variant="noje", seed=4)
    checkpoint = torch.load(path, weights_only=False)
    del checkpoint["meta"]["mu_law"]  # written before audio.mu_law existed
    torch.save(checkpoint, path)
    assert load_tagger(path)[1].mu_law is False


def test_tag_table_and_hop(je_model: Path, music: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tag", str(music / "tone.wav"), "--model", str(je_model), "--hop", "1.0", "--top-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("tone.wav  (6.0 s, 5 crops)")  # hop 1 s: starts 0, 1, 2, 3, 3.5 s
    assert len(out) == 3 and out[1].split()[0] in TAGS


def test_tag_exit_status_nonzero_only_when_nothing_tagged(
    je_model: Path, music: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["tag", str(music / "corrupt.mp3"), str(tmp_path / "missing.wav"), "--model", str(je_model)]) == 1
    assert "could be tagged" in caplog.text and "missing.wav" in caplog.text
    assert main(["tag", str(music / "short.wav"), str(tmp_path / "missing.wav"), "--model", str(je_model)]) == 0


# --- index and search --------------------------------------------------------------------------


def _info(model_path: Path, *, variant: str = "je") -> dict:
    model = load_model(model_path)
    return {
        "format": "jetatag-index",
        "format_version": 1,
        "tags": TAGS,
        "extractor": "hcnn",
        "variant": variant,
        "sample_rate": SR,
        "crop_samples": CROP,
        "hop_samples": CROP,
        "model_path": str(model_path),
        "model_sha256": model.sha256,
    }


def _z_t(model_path: Path, tags: list[str]) -> np.ndarray:
    tagger, _ = load_tagger(model_path)
    multi_hot = torch.tensor([[float(t in tags) for t in TAGS]])
    with torch.no_grad():
        return tagger.tag_encoder(multi_hot)[0].numpy()


def test_search_by_embedding_puts_tag_carriers_first(
    je_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], rng: np.random.Generator
) -> None:
    # 12 clips: 0-2 sit at z_t({techno}), 3-5 at z_t({techno, rock}), 6-8 at z_t({rock}), the rest at random
    targets = [["techno"]] * 3 + [["techno", "rock"]] * 3 + [["rock"]] * 3
    z = rng.standard_normal((12, 128)).astype(np.float32)
    for i, tags in enumerate(targets):
        z[i] = _z_t(je_model, tags) + 0.02 * rng.standard_normal(128)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    paths = [f"clip{i:02d}.wav" for i in range(12)]
    order = rng.permutation(12)  # stored shuffled so position cannot give the answer away
    index_path = tmp_path / "index.parquet"
    write_index(
        index_path,
        paths=[paths[i] for i in order],
        durations=np.full(12, 30.0),
        n_crops=np.full(12, 6),
        scores=np.full((12, len(TAGS)), 0.5),
        z_m=z[order],
        info=_info(je_model),
    )
    assert main(["search", "--index", str(index_path), "--tags", "rock, Techno", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "query: rock, techno"
    top = [line.split()[-1] for line in out[2:]]
    assert sorted(top) == ["clip03.wav", "clip04.wav", "clip05.wav"]
    hits = search(read_index(index_path), ["techno"], k=6, model_path=je_model)
    assert {h.path for h in hits[:3]} == {"clip00.wav", "clip01.wav", "clip02.wav"}
    assert all(h.score > 0.9 for h in hits[:3]) and [h.rank for h in hits] == list(range(1, 7))


def test_search_by_scores_and_errors(
    noje_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    scores = np.full((4, len(TAGS)), 0.1, np.float32)
    scores[:, TAGS.index("rock")] = [0.9, 0.2, 0.6, 0.8]
    scores[:, TAGS.index("slow")] = [0.1, 0.9, 0.8, 0.2]  # mean(rock, slow): .50 .55 .70 .50
    index_path = tmp_path / "scores.parquet"
    paths = ["a.wav", "b.wav", "c.wav", "d.wav"]
    write_index(
        index_path,
        paths=paths,
        durations=np.ones(4),
        n_crops=np.ones(4),
        scores=scores,
        z_m=None,
        info=_info(noje_model, variant="noje"),
    )
    assert main(["search", "--index", str(index_path), "--tags", "slow,rock"]) == 0  # no z_m: ranks by scores
    out = capsys.readouterr().out.splitlines()
    assert "mean prob" in out[1]
    assert [line.split()[-1] for line in out[2:]] == ["c.wav", "b.wav", "a.wav", "d.wav"]
    assert float(out[2].split()[1]) == pytest.approx(0.70, abs=1e-4)
    assert main(["search", "--index", str(index_path), "--tags", "slow", "--by", "embedding"]) == 1
    assert "no joint embeddings" in caplog.text
    assert main(["search", "--index", str(index_path), "--tags", "tecno,rock"]) == 1
    assert "unknown tag 'tecno'; did you mean 'techno'?" in caplog.text
    with pytest.raises(StageError, match="empty tag query"):
        parse_tags(" , ", TAGS)


def test_search_refuses_a_different_model(je_model: Path, tmp_path: Path) -> None:
    other = _save_model(tmp_path / "other.pt", variant="je", seed=5)
    index_path = tmp_path / "index.parquet"
    z = np.eye(2, 128, dtype=np.float32)
    write_index(
        index_path,
        paths=["a.wav", "b.wav"],
        durations=np.ones(2),
        n_crops=np.ones(2),
        scores=np.zeros((2, len(TAGS))),
        z_m=z,
        info=_info(je_model),
    )
    with pytest.raises(StageError, match=r"other\.pt: not the model this index was built with"):
        search(read_index(index_path), ["rock"], k=1, model_path=other)
    with pytest.raises(StageError, match=r"not a jetatag index"):
        read_index(_plain_parquet(tmp_path / "plain.parquet"))


def _plain_parquet(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": ["x"]}), path)
    return path


def test_index_cli_then_search(
    je_model: Path, noje_model: Path, music: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_path = tmp_path / "je.parquet"
    assert main(["index", str(music), "--model", str(je_model), "--out", str(index_path)]) == 0
    index = read_index(index_path)
    assert sorted(Path(p).name for p in index.paths) == ["noise.flac", "short.wav", "stereo44k.wav", "tone.wav"]
    assert index.scores.shape == (4, len(TAGS)) and index.z_m is not None and index.z_m.shape == (4, 128)
    np.testing.assert_allclose(np.linalg.norm(index.z_m, axis=1), 1.0, atol=1e-5)
    tone = index.paths.index(str(music / "tone.wav"))
    expected = _probs_by_hand(je_model, music / "tone.wav", crop_starts_=[0, CROP, 6 * SR - CROP])
    np.testing.assert_allclose(index.scores[tone], expected, atol=2e-6)
    capsys.readouterr()
    assert main(["search", "--index", str(index_path), "--tags", "techno", "-k", "2"]) == 0  # model path from index
    assert len(capsys.readouterr().out.splitlines()) == 2 + 2
    noje_index = tmp_path / "noje.parquet"
    assert main(["index", str(music / "tone.wav"), "--model", str(noje_model), "--out", str(noje_index)]) == 0
    assert read_index(noje_index).z_m is None
