"""The generator's data tables: JSON package data in ``jetatag/synth/data``, each checked against its schema.

Styles, instruments, tag-concept links and the fitted tag-model numbers are data, not code, so a reader can
read them without running anything and ``benchmarks/synth_fit.py`` can rewrite the fitted ones. :func:`load`
reads ``data/<name>.json`` and validates it against ``data/<name>.schema.json`` (JSON Schema 2020-12); the
modules that own a table check its cross-references (:func:`check_names`). Both raise :class:`TableError`
naming the file and the field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

PACKAGE = "jetatag.synth"
FOLDER = "data"
"""The tables are ``<FOLDER>/<name>.json`` inside :data:`PACKAGE`, with ``<name>.schema.json`` beside them."""


class TableError(ValueError):
    """A data table that does not match its schema or names something that does not exist."""


def table_error(name: str, field: Sequence[str | int], message: str) -> TableError:
    """A :class:`TableError` for ``field`` (a path of keys and indices) of table ``name``."""
    where = "/".join(str(part) for part in field) or "(top level)"
    return TableError(f"jetatag/synth/{FOLDER}/{name}.json: {where}: {message}")


def _read(filename: str) -> Any:
    return json.loads((resources.files(PACKAGE) / FOLDER / filename).read_text(encoding="utf-8"))


def validate(name: str, doc: Any) -> Any:
    """``doc`` if it matches the schema of table ``name``, else a :class:`TableError` for the most relevant field."""
    validator = jsonschema.Draft202012Validator(_read(f"{name}.schema.json"))
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        raise table_error(name, list(error.absolute_path), error.message)
    return doc


@functools.cache
def load(name: str) -> Any:
    """The contents of table ``name``, validated against its schema (read once per process; do not mutate)."""
    return validate(name, _read(f"{name}.json"))


def check_names(
    name: str, field: Sequence[str | int], names: Iterable[str], known: Collection[str], *, complete: bool = False
) -> None:
    """Raise a :class:`TableError` for ``field`` of table ``name`` if one of ``names`` is not in ``known``
    (or, with ``complete``, if one of ``known`` is not in ``names``)."""
    names = list(names)
    for entry in names:
        if entry not in known:
            raise table_error(name, field, f"unknown name {entry!r}")
    missing = [entry for entry in known if entry not in names] if complete else []
    if missing:
        raise table_error(name, field, f"missing names: {', '.join(map(repr, missing))}")
