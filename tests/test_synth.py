"""Tests of the synthetic MTAT mirror: file formats through the real readers, determinism, catalogue, parts."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import stats

from jetatag.checksums import SHA256SUMS, parse_sha256sums, sha256_file
from jetatag.config import params_from_dict
from jetatag.errors import StageError
from jetatag.mtat import (
    ANNOTATIONS,
    CLIP_INFO,
    CLIP_INFO_COLUMNS,
    FOLDERS,
    SPLIT_OF_FOLDER,
    TAGS_188,
    ZIP_PIECES,
    read_annotations,
)
from jetatag.synth.catalog import build_catalog
from jetatag.synth.clip import design_clip, render_clip
from jetatag.synth.concepts import CONCEPT_INDEX, CONCEPTS, TAG_CONCEPTS, concept_vector
from jetatag.synth.instruments import INSTRUMENTS
from jetatag.synth.labels import DEFAULT_MODEL, TagModel, style_probabilities
from jetatag.synth.mirror import TINY_CLIPS, TINY_SECONDS, write_mirror, write_tiny_mirror
from jetatag.synth.notebank import NoteBank
from jetatag.synth.render import SAMPLE_RATE, render
from jetatag.synth.score import Score, Track, arrange, onset_rate
from jetatag.synth.styles import EFFECTS, PROGRESSIONS, SCALES, STYLE_NAMES, STYLES, plan_clip, plan_track
from jetatag.synth.voice import sing

STATS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "mtat_tag_stats.json"
MTAT_NAME = re.compile(r"^[0-9a-f]/[a-z0-9_]+-[a-z0-9_]+-\d{2}-[a-z0-9_]+-\d+-\d+\.mp3$")


@pytest.fixture(scope="module")
def tiny_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic mirror other tests may use too (16 clips of 3 s, seed 0)."""
    return write_tiny_mirror(tmp_path_factory.mktemp("synth") / "mirror")


def _zip_members(folder: Path) -> dict[str, bytes]:
    whole = b"".join((folder / name).read_bytes() for name in ZIP_PIECES)
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _decoded(folder: Path) -> dict[str, np.ndarray]:
    return {
        n: sf.read(io.BytesIO(b), dtype="float32")[0] for n, b in _zip_members(folder).items() if n.endswith(".mp3")
    }


# --- files and formats ----------------------------------------------------------------------------------


def test_annotations_round_trip_through_the_real_parser(tiny_mirror: Path) -> None:
    raw = (tiny_mirror / ANNOTATIONS).read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in b"".join(lines)  # CRLF everywhere, nothing else
    assert all(f.startswith(b'"') and f.endswith(b'"') for f in lines[1].split(b"\t"))
    ann = read_annotations(tiny_mirror / ANNOTATIONS)
    assert ann.tags == TAGS_188
    assert len(ann.clip_id) == TINY_CLIPS and np.all(np.diff(ann.clip_id) > 0)
    assert all(MTAT_NAME.match(p) for p in ann.mp3_path)
    specs = build_catalog(TINY_CLIPS, 0)
    expected = np.stack([design_clip(0, s.track, s.index, TINY_SECONDS).tags for s in specs])
    np.testing.assert_array_equal(ann.labels, expected)  # labels can be drawn without rendering audio


def test_zip_pieces_form_one_zip_of_folders_0_to_f(tiny_mirror: Path) -> None:
    sizes = [(tiny_mirror / n).stat().st_size for n in ZIP_PIECES]
    assert max(sizes) - min(sizes) <= 2  # consecutive byte thirds
    members = _zip_members(tiny_mirror)
    mp3s = sorted(n for n in members if n.endswith(".mp3"))
    assert sorted(n for n in members if n.endswith("/")) == [f"{f}/" for f in FOLDERS]
    assert {n.split("/")[0] for n in mp3s} == set(FOLDERS)
    assert mp3s == sorted(read_annotations(tiny_mirror / ANNOTATIONS).mp3_path)
    for name in mp3s[:4]:
        info = sf.info(io.BytesIO(members[name]))
        assert (info.samplerate, info.channels, info.format) == (SAMPLE_RATE, 1, "MP3")
        assert TINY_SECONDS <= info.duration < TINY_SECONDS + 0.2  # the encoder pads the last frame


def test_sha256sums_verify(tiny_mirror: Path) -> None:
    sums = parse_sha256sums((tiny_mirror / SHA256SUMS).read_text(encoding="utf-8"), str(tiny_mirror))
    assert set(sums) == {*ZIP_PIECES, ANNOTATIONS, CLIP_INFO}
    for name, digest in sums.items():
        assert sha256_file(tiny_mirror / name) == digest


def test_clip_info_format(tiny_mirror: Path) -> None:
    text = (tiny_mirror / CLIP_INFO).read_bytes().decode("utf-8")
    rows = [line.split("\t") for line in text.split("\r\n") if line]
    assert [f.strip('"') for f in rows[0]] == list(CLIP_INFO_COLUMNS)
    assert all(len(r) == len(CLIP_INFO_COLUMNS) and all(f[0] == f[-1] == '"' for f in r) for r in rows)
    ann = read_annotations(tiny_mirror / ANNOTATIONS)
    assert [r[-1].strip('"') for r in rows[1:]] == list(ann.mp3_path)
    assert [int(r[0].strip('"')) for r in rows[1:]] == ann.clip_id.tolist()


def test_download_and_labels_stages_accept_the_mirror(tiny_mirror: Path, tmp_path: Path) -> None:
    from jetatag.data.download import run_download
    from jetatag.data.labels import run_labels

    params = params_from_dict({"data": {"source": str(tiny_mirror), "n_tags": 10}})
    run_download(params, out_dir=tmp_path / "raw")
    assert len(list((tmp_path / "raw" / "mp3").glob("*/*.mp3"))) == TINY_CLIPS
    run_labels(params, raw_dir=tmp_path / "raw", out_dir=tmp_path / "labels")
    ann = read_annotations(tiny_mirror / ANNOTATIONS)
    tags = [t["name"] for t in json.loads((tmp_path / "labels" / "tags.json").read_text())["tags"]]
    counts = ann.labels.sum(axis=0)
    assert sorted(counts[[TAGS_188.index(t) for t in tags]], reverse=True) == sorted(counts, reverse=True)[:10]
    clips = pd.read_parquet(tmp_path / "labels" / "clips.parquet")
    has_top = ann.labels[:, [TAGS_188.index(t) for t in tags]].any(axis=1)
    assert clips["clip_id"].tolist() == ann.clip_id[has_top].tolist()  # every kept mp3 decoded
    assert (clips["split"] == [SPLIT_OF_FOLDER[p[0]] for p in clips["mp3_path"]]).all()


def test_write_mirror_replaces_the_folder_and_rejects_bad_arguments(tmp_path: Path) -> None:
    out = tmp_path / "mirror"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    write_mirror(out, n_clips=16, clip_seconds=1.0, seed=3, workers=1)
    assert sorted(p.name for p in out.iterdir()) == sorted([*ZIP_PIECES, ANNOTATIONS, CLIP_INFO, SHA256SUMS])
    assert [p.name for p in tmp_path.iterdir()] == ["mirror"]  # no temporary folder left behind
    for bad in ({"n_clips": 15}, {"clip_seconds": 0.5}, {"workers": 0}):
        kwargs = {"n_clips": 16, "clip_seconds": 1.0, "seed": 0, "workers": 1} | bad
        with pytest.raises(StageError, match=str(out)):
            write_mirror(out, **kwargs)


# --- determinism ----------------------------------------------------------------------------------------


def test_same_output_for_one_or_two_workers(tmp_path: Path) -> None:
    for workers in (1, 2):
        write_mirror(tmp_path / f"w{workers}", n_clips=16, clip_seconds=1.5, seed=11, workers=workers)
    one, two = tmp_path / "w1", tmp_path / "w2"
    assert (one / ANNOTATIONS).read_bytes() == (two / ANNOTATIONS).read_bytes()
    audio_one, audio_two = _decoded(one), _decoded(two)
    assert audio_one.keys() == audio_two.keys()
    for name, wave in audio_one.items():
        np.testing.assert_array_equal(wave, audio_two[name])
    assert (one / SHA256SUMS).read_bytes() == (two / SHA256SUMS).read_bytes()


TINY_MIRROR_SHA256 = {
    "SHA256SUMS": "ee460ad93faea6977f9f200de62e4e8c14531c9be5fb84bbd2e6346f8948f827",
    "annotations_final.csv": "45f107101589e0ea944cb17fe36a9d058a170e25387e48662f0b2a4a1e88ddfe",
    "clip_info_final.csv": "c7b39e8c4ab3acd0fa5c077e649b0a1ef98c81be9ff125002dcba9331bd0f9ae",
    "mp3.zip.001": "6a11173d8435bbecd4daccf5477fd490e409c56bd0334bc01f1baa7de8f056f3",
    "mp3.zip.002": "53d97e7774720fe5aad986535b1ce32fc3f7852b31b8de6ccc48556fcd179149",
    "mp3.zip.003": "2d4493931506c0abb91fd4397b754c32d7c5e0ec0cdc478f91cd5ff9a3183697",
}
"""The tiny mirror's files (seed 0) as the generator wrote them when its tables were still Python literals
(2eec2b6). The audio bytes also depend on the soundfont renderer and the MP3 encoder (libsndfile) installed."""

TABLES_SHA256 = "975db2829102adb86c2eb675faced9f8b63273d4cb07c1579d754b01b413f013"
"""Digest of :func:`_tables_digest` recorded at 2eec2b6 (tables as Python literals)."""

STYLE_SCORES_SHA256 = "e82f65310c1bad727d1e0c4c16f4a0d7ca7bf0658058629e7a3130df9b0a60b2"
"""Digest of :func:`_style_scores_digest` recorded at 2eec2b6 (tables as Python literals)."""


def _tables_digest() -> str:
    """sha256 over every table as the generator's code sees it: the typed objects' reprs and the fitted arrays."""
    digest = hashlib.sha256(repr((SCALES, PROGRESSIONS, STYLES, INSTRUMENTS, TAG_CONCEPTS)).encode())
    model = DEFAULT_MODEL
    prior = style_probabilities()[1]
    for array in (prior, model.rates, model.false_positive, model.attention_levels, model.attention_probs):
        digest.update(array.tobytes())
    return digest.hexdigest()


def _style_scores_digest(per_style: int = 8) -> str:
    """sha256 over the style prior and, for ``per_style`` clips of every style, the plan, the notes of every
    part (every texture is played), the concept vector and the drawn tags: no audio, so platform-independent."""
    digest = hashlib.sha256(style_probabilities()[1].tobytes())
    for s, style in enumerate(STYLE_NAMES):
        for k in range(per_style):
            rng = np.random.default_rng([0, s, k])
            plan = plan_clip(rng, plan_track(rng, style))
            score = arrange(plan, 10.0, rng)
            x = concept_vector(plan, score)
            digest.update(repr(plan).encode())
            for notes in (*(t.notes for t in score.tracks), score.drums, score.vocal):
                digest.update(notes.tobytes())
            digest.update(x.tobytes())
            digest.update(DEFAULT_MODEL.sample(x, rng).tobytes())
    return digest.hexdigest()


def test_tiny_mirror_bytes_are_unchanged(tiny_mirror: Path) -> None:
    # moving the tables to package data and dispatching textures through tables must not change a byte
    assert {p.name: sha256_file(p) for p in sorted(tiny_mirror.iterdir())} == TINY_MIRROR_SHA256


def test_tables_hold_the_same_values() -> None:
    # any edit of a table value changes this, even one too small to change a draw of the two tests below
    assert _tables_digest() == TABLES_SHA256


def test_every_style_plays_the_same_notes_and_tags() -> None:
    # the tiny mirror draws few styles: this covers every style, texture and table value that reaches a score
    assert _style_scores_digest() == STYLE_SCORES_SHA256


def test_seed_changes_the_clip() -> None:
    a, b = design_clip(1, 0, 0, 2.0), design_clip(2, 0, 0, 2.0)
    assert a.plan != b.plan or not np.array_equal(a.tags, b.tags)


# --- catalogue, tags, audio parts -----------------------------------------------------------------------


def test_catalog_spreads_clips_like_mtat() -> None:
    specs = build_catalog(160, seed=5)
    assert [s.index for s in specs] == list(range(160))
    assert np.all(np.diff([s.clip_id for s in specs]) > 0)
    per_folder = pd.Series([s.folder for s in specs]).value_counts()
    assert set(per_folder.index) == set(FOLDERS) and (per_folder == 10).all()  # 12 train / 1 valid / 3 test
    assert len({s.mp3_path for s in specs}) == 160 and all(MTAT_NAME.match(s.mp3_path) for s in specs)
    tracks = pd.DataFrame({"track": [s.track for s in specs], "folder": [s.folder for s in specs]})
    assert (tracks.groupby("track")["folder"].nunique() == 1).all()  # a track never straddles the split


def test_tag_model_formula_and_link_check() -> None:
    model = TagModel.from_tables({"piano": {"piano": 1.2}}, {"piano": 0.01}, (0.5, 2.0), (1.0, 3.0))
    x = np.zeros(len(CONCEPTS), dtype=bool)
    x[CONCEPT_INDEX["piano"]] = True
    p = model.probabilities(x, 2.0)
    assert p[TAGS_188.index("piano")] == pytest.approx(1 - 0.99 * np.exp(-2.4))
    assert p[TAGS_188.index("guitar")] == 0.0
    expected = model.expected(x[None])[0, TAGS_188.index("piano")]
    assert expected == pytest.approx(1 - 0.99 * (0.25 * np.exp(-0.6) + 0.75 * np.exp(-2.4)))
    with pytest.raises(ValueError, match="not linked"):
        TagModel.from_tables({"piano": {"guitar_dist": 1.0}}, {}, (1.0,), (1.0,))


def test_every_tag_links_to_known_concepts() -> None:
    assert set(TAG_CONCEPTS) == set(TAGS_188)
    assert {c for links in TAG_CONCEPTS.values() for c in links} <= set(CONCEPTS)


def test_tag_sampler_statistics_resemble_mtat() -> None:
    designs = [design_clip(0, i, i, 10.0) for i in range(600)]
    expected = DEFAULT_MODEL.expected(np.stack([d.concepts for d in designs]))  # (600, 188)
    drawn = np.stack([d.tags for d in designs])
    top_cols = np.argsort(-expected.mean(axis=0), kind="stable")[:50]
    per_clip = expected[:, top_cols].sum(axis=1).mean()
    assert 2.0 < per_clip < 3.5 and abs(drawn[:, top_cols].sum(axis=1).mean() - per_clip) < 0.4
    mtat = json.loads(STATS.read_text(encoding="utf-8"))
    real = np.array([mtat["count_188_all_clips"][t] for t in TAGS_188], dtype=float)
    top50 = [TAGS_188.index(t) for t in mtat["top50_in_frequency_order"]]
    assert stats.spearmanr(expected.mean(axis=0)[top50], real[top50]).statistic > 0.8
    assert stats.spearmanr(expected.mean(axis=0), real).statistic > 0.7


def test_onset_rate_counts_distinct_onsets() -> None:
    notes = np.array([[0.0, 0.5, 60, 90], [0.01, 0.5, 64, 90], [1.0, 1.5, 62, 90]])
    score = Score(2.0, 40, (Track("piano", "lead", notes),), np.array([[1.5, 1.6, 36, 100]]), np.zeros((0, 4)))
    assert onset_rate(score) == pytest.approx(3 / 2.0)  # the 10-ms chord spread counts once


@pytest.mark.parametrize(("kind", "pitch"), [("male", 50), ("female", 69), ("opera_female", 76)])
def test_singer_sings_the_written_pitch(kind: str, pitch: int, rng: np.random.Generator) -> None:
    voice = sing(np.array([[0.0, 1.5, pitch, 95]]), kind, 1.5, SAMPLE_RATE, rng)
    assert voice.dtype == np.float32 and voice.shape == (int(1.5 * SAMPLE_RATE),)
    f0 = librosa.yin(voice[4000:20000], fmin=80, fmax=1200, sr=SAMPLE_RATE, frame_length=2048)
    assert np.median(f0) == pytest.approx(librosa.midi_to_hz(pitch), rel=0.04)


def test_rendered_clip_is_16k_mono_and_audible() -> None:
    design = design_clip(4, 0, 0, 2.0)
    audio = render_clip(design, NoteBank())
    assert audio.dtype == np.float32 and audio.shape == (2 * SAMPLE_RATE,)
    assert 0.05 < np.abs(audio).max() <= 1.0 and np.sqrt(np.mean(audio**2)) > 1e-3


def test_every_style_renders(rng: np.random.Generator) -> None:
    bank = NoteBank()
    for style in STYLE_NAMES:
        plan = plan_clip(rng, plan_track(rng, style))
        audio = render(arrange(plan, 1.5, rng), plan, bank, rng)
        assert audio.shape == (int(1.5 * SAMPLE_RATE),) and np.isfinite(audio).all(), style
        assert np.abs(audio).max() > 0.05, style


@pytest.mark.parametrize("effect", EFFECTS)
def test_mix_effects_change_the_sound(effect: str) -> None:
    design = design_clip(4, 0, 0, 2.0)
    bank = NoteBank()
    plain = render_clip(design, bank)
    track = dataclasses.replace(design.plan.track, effect=effect)
    plan = dataclasses.replace(design.plan, track=track)
    processed = render(design.score, plan, bank, np.random.default_rng(design.audio_seed))
    assert processed.shape == plain.shape and not np.allclose(processed, plain, atol=1e-3)
