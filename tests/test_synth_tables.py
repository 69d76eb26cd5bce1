"""Tests of the synthetic generator's data tables: schemas, loader errors, cross-references, texture dispatch."""

from __future__ import annotations

import copy
import json
from importlib import resources

import jsonschema
import pytest

from jetatag.synth import styles, tables
from jetatag.synth.score import BASS_TEXTURES, HARMONY_TEXTURES
from jetatag.synth.styles import STYLES
from jetatag.synth.tables import TableError

NAMES = ("styles", "instruments", "tag_concepts", "fitted")


def _data_files() -> set[str]:
    return {p.name for p in (resources.files(tables.PACKAGE) / tables.FOLDER).iterdir() if p.name.endswith(".json")}


def test_every_table_has_a_schema_and_loads() -> None:
    assert _data_files() == {f"{n}.json" for n in NAMES} | {f"{n}.schema.json" for n in NAMES}
    for name in NAMES:
        schema = json.loads((resources.files(tables.PACKAGE) / tables.FOLDER / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert tables.load(name)


@pytest.mark.parametrize(
    ("name", "path", "value", "field", "message"),
    [
        ("styles", ("styles", "orchestral", "reverb", 1), 200, "styles/orchestral/reverb/1", "200 is greater than"),
        ("styles", ("styles", "techno", "parts", 0, "role"), "solo", "styles/techno/parts/0/role", "'solo' is not"),
        ("instruments", ("piano", "program"), "0", "piano/program", "'0' is not of type 'integer'"),
        ("fitted", ("false_positive", "sitar"), 1.5, "false_positive/sitar", "1.5 is greater than or equal"),
        ("tag_concepts", ("guitar",), "harp", "guitar", "'harp' is not of type 'array'"),
    ],
)
def test_a_bad_value_names_the_file_and_field(name: str, path: tuple, value: object, field: str, message: str) -> None:
    doc = copy.deepcopy(tables.load(name))
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    target[last] = value
    with pytest.raises(TableError) as err:
        tables.validate(name, doc)
    assert str(err.value).startswith(f"jetatag/synth/data/{name}.json: {field}: ")
    assert message in str(err.value)


def test_a_missing_key_names_the_file() -> None:
    doc = {k: v for k, v in tables.load("fitted").items() if k != "tag_rates"}
    with pytest.raises(TableError, match=r"^jetatag/synth/data/fitted\.json: \(top level\): 'tag_rates' is a required"):
        tables.validate("fitted", doc)


def test_unknown_and_missing_names_are_reported() -> None:
    with pytest.raises(TableError, match=r"styles\.json: styles/x/drums: unknown name 'polka'"):
        tables.check_names("styles", ("styles", "x", "drums"), ["rock", "polka"], styles.DRUM_PATTERNS)
    with pytest.raises(TableError, match=r"fitted\.json: style_weights: missing names: 'metal'"):
        tables.check_names("fitted", ("style_weights",), ["rock"], ("rock", "metal"), complete=True)


def test_a_style_naming_an_unknown_instrument_or_a_reversed_range_is_rejected() -> None:
    spec = copy.deepcopy(tables.load("styles")["styles"]["rock"])
    spec["parts"][1]["instruments"]["kazoo"] = 1
    with pytest.raises(TableError, match=r"styles\.json: styles/rock/parts/1/instruments: unknown name 'kazoo'"):
        styles._style("rock", spec)
    spec = copy.deepcopy(tables.load("styles")["styles"]["rock"])
    spec["bpm"] = [160, 100]
    with pytest.raises(TableError, match=r"styles\.json: styles/rock/bpm: low 160 is above high 100"):
        styles._style("rock", spec)


def test_every_texture_a_style_names_is_dispatched() -> None:
    used = {(p.role, t) for s in STYLES.values() for p in s.parts for t in p.textures}
    assert {t for role, t in used if role == "harmony"} == set(HARMONY_TEXTURES)
    assert {t for role, t in used if role == "bass"} == set(BASS_TEXTURES)
    assert {t for role, t in used if role == "lead"} == {"melody"}
    assert {t for role, t in used if role == "extra"} <= {"counter", "fx", "pad"}
