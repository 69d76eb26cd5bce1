"""Shared test fixtures: a seeded rng, params from overrides, tiny MTAT-format data, a note-bank cache, benchmarks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mirror_fixture import TinyData, tiny_data, write_raw

from jetatag.config import Params, params_from_dict

# numba compiles librosa.yin (the pitch tests) for the host CPU. On a KVM guest that reports AMX tiles (the
# 2-core CI machine: llvmlite 0.50 detects "rocketlake" with +amx-tile), numba 0.68's compiled gufunc there
# segfaults; compiled for generic x86-64 it runs. Set before anything imports numba. jetatag's own numba
# kernels (the fused BatchNorm-ReLU of CPU training, jetatag.models.bn_kernels) run with numba's host settings
# on that machine in the demo's `dvc repro` and in benchmarks/train_step.py.
os.environ.setdefault("NUMBA_CPU_NAME", "generic")

TINY_SECONDS = 6.0
"""Clip length of the tiny data sets: longer than the default longest crop (80,000 samples = 5 s)."""


@pytest.fixture(scope="session", autouse=True)
def note_bank_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One note-bank cache for the whole session, shared with the jetatag subprocesses; never ``~/.cache``."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JETATAG_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the scripts of ``benchmarks/`` importable by name for this test (they are scripts, not a package)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, fresh for each test."""
    return np.random.default_rng(20240607)


@pytest.fixture
def make_params() -> Callable[[Mapping[str, Any]], Params]:
    """Build validated :class:`Params` from the defaults plus nested overrides, e.g. ``{"audio": {"workers": 1}}``."""
    return params_from_dict


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TinyData]:
    """A raw folder (as ``download`` writes it) with 24 clips of 6 s; clip 3 is empty and clip 7 is corrupt."""
    rng = np.random.default_rng(7)
    data = tiny_data(24, rng=rng, empty=(3,), corrupt=(7,))
    raw = write_raw(tmp_path_factory.mktemp("tiny") / "raw", data, seconds=TINY_SECONDS, rng=rng)
    return raw, data


@pytest.fixture(scope="session")
def tiny_labels(tiny: tuple[Path, TinyData], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``labels`` output for :func:`tiny`."""
    from jetatag.data.labels import run_labels

    out = tmp_path_factory.mktemp("tiny_labels")
    run_labels(params_from_dict({"data": {"n_tags": 10}}), raw_dir=tiny[0], out_dir=out)
    return out


@pytest.fixture(scope="session")
def tiny_audio(tiny: tuple[Path, TinyData], tiny_labels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``segment`` output for :func:`tiny` (int16, small shards so that clips spread over several)."""
    from jetatag.data.segment import run_segment

    out = tmp_path_factory.mktemp("tiny_audio")
    params = params_from_dict({"data": {"n_tags": 10}, "audio": {"workers": 1, "shard_mb": 0.5}})
    run_segment(params, labels_dir=tiny_labels, raw_dir=tiny[0], out_dir=out)
    return out
