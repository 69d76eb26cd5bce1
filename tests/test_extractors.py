"""Tests for jetatag.extractors: the table resolves, is torch-free, and is what every enumerator lists."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from jetatag import cli, config, pipeline
from jetatag.config import ModelParams, load_params
from jetatag.extractors import CROP_KEYS, EXTRACTOR_IDS, EXTRACTOR_SPECS, ExtractorSpec, extractor_spec
from jetatag.models import EXTRACTORS, extractor_class

ROOT = Path(__file__).resolve().parent.parent


def test_ids_and_names_are_unique() -> None:
    assert len(set(EXTRACTOR_IDS)) == len(set(spec.name for spec in EXTRACTOR_SPECS)) == len(EXTRACTOR_SPECS)


@pytest.mark.parametrize("spec", EXTRACTOR_SPECS, ids=lambda spec: spec.id)
def test_class_path_names_an_extractor_class(spec: ExtractorSpec) -> None:
    cls = extractor_class(spec.id)
    assert issubclass(cls, nn.Module) and callable(cls.from_params)
    assert f"{cls.__module__}:{cls.__qualname__}" == spec.class_path


@pytest.mark.parametrize("spec", EXTRACTOR_SPECS, ids=lambda spec: spec.id)
def test_crop_key_is_a_model_param_giving_the_papers_length(spec: ExtractorSpec) -> None:
    assert spec.crop_key in {f.name for f in dataclasses.fields(ModelParams)}
    paper = load_params([ROOT / "params.yaml", ROOT / "profiles/paper.yaml"]).model
    assert paper.crop_samples(spec.id) == spec.paper_input_length


def test_unknown_extractor_lists_the_ids() -> None:
    with pytest.raises(ValueError, match="unknown extractor 'vggish': expected one of hcnn, sincnet, "):
        extractor_spec("vggish")


def _extractor_choices(command: str) -> tuple[str, ...]:
    """The ``--extractor`` choices of CLI subcommand ``command``."""
    sub = next(a for a in cli._build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return tuple(next(a for a in sub.choices[command]._actions if a.dest == "extractor").choices)


def test_enumerators_list_the_table_in_order() -> None:
    assert config.EXTRACTOR_IDS == tuple(EXTRACTORS) == EXTRACTOR_IDS
    assert all(_extractor_choices(command) == EXTRACTOR_IDS for command in ("stage1", "stage2", "export"))
    trained = [job["extractor"] for job in pipeline.stage("stage1").instances()]
    evaluated = dict.fromkeys(job["extractor"] for job in pipeline.stage("evaluate").instances())
    assert tuple(trained) == tuple(evaluated) == EXTRACTOR_IDS
    assert tuple(f"reports/train/{x}-stage1" for x in EXTRACTOR_IDS) == pipeline.STAGE1_LIVE
    assert {f"model.{key}" for key in CROP_KEYS} <= set(pipeline.stage("segment").params)


def test_training_stages_depend_on_every_extractor_module() -> None:
    modules = {f"{spec.module.replace('.', '/')}.py" for spec in EXTRACTOR_SPECS}
    assert modules <= set(pipeline.stage("stage1").code())


@pytest.mark.parametrize("module", ["jetatag.extractors", "jetatag.config", "jetatag.pipeline", "jetatag.cli"])
def test_listing_extractors_imports_no_torch(module: str) -> None:
    probe = f"import sys, {module}; print('torch' in sys.modules)"
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "False"
