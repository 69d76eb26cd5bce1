"""Params profiles: overlays of ``params.yaml`` such as ``profiles/paper.yaml`` and ``profiles/tiny.yaml``.

Snakemake layers a profile at run time (``--configfile``); for DVC, which tracks ``params.yaml``, a profile
is written into ``params.yaml`` by :func:`apply_profile`, so the change is an ordinary params change
(``dvc exp run`` records it, ``git checkout params.yaml`` undoes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter

from jetatag.config import ParamsError, load_params
from jetatag.io import atomic_open


def apply_profile(profile: Path, params_file: Path) -> list[str]:
    """Write the values of params overlay ``profile`` into ``params_file``, keeping its comments and order.

    The merged result is validated before anything is written. Returns the dotted keys that changed.
    """
    overlay = yaml.safe_load(Path(profile).read_text(encoding="utf-8")) if Path(profile).is_file() else None
    if not isinstance(overlay, Mapping):
        raise ParamsError(f"{profile}: not a params profile (a YAML mapping of params sections)")
    load_params([params_file, profile])  # validates the merged values, naming the file or key on error
    rt = YAML()
    rt.Representer = _Representer
    rt.width = 120
    rt.indent(mapping=2, sequence=4, offset=2)  # the layout of params.yaml
    doc = rt.load(Path(params_file).read_text(encoding="utf-8"))
    changed: list[str] = []

    def merge(dst: CommentedMap, src: Mapping[str, Any], prefix: str) -> None:
        for key, value in src.items():
            if isinstance(value, Mapping) and isinstance(dst.get(key), Mapping):
                merge(dst[key], value, f"{prefix}{key}.")
            elif dst.get(key) != value:
                if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
                    value = _flow_list(value, like=dst.get(key))  # schedules stay one phase per line
                dst[key] = value
                changed.append(f"{prefix}{key}")

    merge(doc, overlay, "")
    with atomic_open(params_file, "w", encoding="utf-8") as handle:
        rt.dump(doc, handle)
    return changed


def _represent_float(representer: Any, value: float) -> Any:
    """Floats as YAML 1.1 readers (PyYAML, hence DVC and Snakemake) read them back: ``1.0e-05``, not ``1e-05``."""
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


class _Representer(RoundTripRepresenter):
    """Round-trip representer writing new floats with :func:`_represent_float`."""


_Representer.add_representer(float, _represent_float)


def _flow_list(items: list[Mapping[str, Any]], *, like: Any) -> CommentedSeq:
    """``items`` as a list of flow mappings, keeping the comments that followed the list it replaces."""
    seq = CommentedSeq()
    for item in items:
        flow = CommentedMap(item)
        flow.fa.set_flow_style()
        seq.append(flow)
    if isinstance(like, CommentedSeq):
        seq.ca.comment, seq.ca.end = like.ca.comment, like.ca.end  # e.g. the blank line before the next section
    return seq
