"""Tests of the General-MIDI sampler: pitch, length, release, looping, loudness law and the on-disk cache."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest

from jetatag.synth import notebank
from jetatag.synth.notebank import HOLD_S, SAMPLE_RATE, NoteBank, rendered_pitches
from jetatag.synth.render import play
from jetatag.synth.score import Score, Track


@pytest.fixture(scope="module")
def bank() -> NoteBank:
    return NoteBank()


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@pytest.mark.parametrize("pitch", [71, 72, 73])  # rendered at 71 and 74: exact, one up, one down
def test_note_sounds_at_the_written_pitch(bank: NoteBank, pitch: int) -> None:
    assert {71, 74} <= set(rendered_pitches(60, 96).tolist())
    wave = bank.note("flute", pitch, SAMPLE_RATE)
    f0 = librosa.yin(wave[1600:14400], fmin=200, fmax=2000, sr=SAMPLE_RATE, frame_length=1024)
    assert np.median(f0) == pytest.approx(librosa.midi_to_hz(pitch), rel=0.015)  # a quarter tone is 2.9 %


def test_short_note_stops_after_its_release(bank: NoteBank) -> None:
    n = SAMPLE_RATE // 2
    wave = bank.note("piano", 60, n)
    assert n < len(wave) <= n + SAMPLE_RATE  # the release follows the note-off, within the kept tail
    assert rms(wave[: n // 2]) > 0.01
    assert np.abs(wave[-200:]).max() < 0.02 * np.abs(wave).max()  # faded out by the end


def test_note_longer_than_the_rendering_is_looped(bank: NoteBank) -> None:
    n = int(2.5 * HOLD_S * SAMPLE_RATE)
    wave = bank.note("flute", 72, n)
    assert len(wave) >= n
    held, extended = rms(wave[SAMPLE_RATE // 2 : SAMPLE_RATE]), rms(wave[n - SAMPLE_RATE // 2 : n])
    assert 0.5 < extended / held < 2.0  # a sustained instrument keeps sounding while held


def test_loudness_follows_velocity_and_volume_squared(bank: NoteBank) -> None:
    def one_note(velocity: float, volume: float) -> np.ndarray:
        track = Track("piano", "lead", np.array([[0.1, 0.6, 60.0, velocity]]))
        return play(Score(1.0, 0, (track,), np.zeros((0, 4)), np.zeros((0, 4))), np.array([volume]), 0.8, bank)

    loud = one_note(100, 1.0)
    assert rms(loud[: SAMPLE_RATE // 10]) == 0.0 and rms(loud) > 0.01  # silent until the note starts
    np.testing.assert_allclose(one_note(50, 1.0), 0.25 * loud, atol=1e-6)
    np.testing.assert_allclose(one_note(100, 0.5), 0.25 * loud, atol=1e-6)


def test_drum_kit_covers_the_general_midi_keys(bank: NoteBank) -> None:
    assert rms(bank.hit(36)) > 0.01 and rms(bank.hit(49)) > 0.001  # kick, crash
    assert bank.hit(20).size == 0  # outside the GM kit: silent


def test_cache_is_written_once_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = NoteBank(root=tmp_path)
    assert "flute" in first.missing() and "drums" in first.missing()
    pitches, notes, releases = first.instrument("flute")
    assert "flute" not in first.missing()
    assert sorted(p.name for p in first.folder.iterdir()) == [f"{NoteBank._file_name('flute')}.npy"]  # no temp left

    def fail(*args: object) -> None:
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(notebank, "render_notes", fail)
    again = NoteBank(root=tmp_path).instrument("flute")
    np.testing.assert_array_equal(again[0], pitches)
    np.testing.assert_array_equal(again[1], notes)  # a fresh rendering equals what a later load returns
    np.testing.assert_array_equal(again[2], releases)


def test_damaged_cache_file_is_rendered_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = NoteBank(root=tmp_path).instrument("flute")[1]
    path = NoteBank(root=tmp_path).folder / f"{NoteBank._file_name('flute')}.npy"
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk
    with caplog.at_level("WARNING"):
        again = NoteBank(root=tmp_path).instrument("flute")[1]
    assert "unreadable note-bank file" in caplog.text and str(path) in caplog.text
    np.testing.assert_array_equal(again, good)
    np.testing.assert_array_equal(np.load(path).astype(np.float32), good)  # and the file is whole again


def test_unwritable_cache_still_plays(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should go")
    with caplog.at_level("WARNING"):
        notes = NoteBank(root=blocker).instrument("flute")[1]
    assert "cannot write the note-bank cache" in caplog.text and "JETATAG_CACHE_DIR" in caplog.text
    np.testing.assert_array_equal(notes, NoteBank().instrument("flute")[1])
